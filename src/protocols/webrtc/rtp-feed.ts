// The RTP payloads of one stream, made once for all of its WebRTC viewers (DESIGN §4 "serialize
// once"): every packet of a track Haze can send over WebRTC (H.264, VP8, VP9, AV1, Opus) is cut
// into RTP payloads here; a viewer only writes its own 12-byte header and encrypts. The feed
// keeps the payloads since the newest keyframe of the sync (video) track, so a new viewer starts
// at once at that keyframe (an RTMP publisher cannot be asked for one).
//
// Timestamps: an RTP timestamp is the presentation time (decode time + composition offset) in
// the codec's clock, frames go in decode order. Browsers drop a frame whose RTP time is older
// than the last one decoded and cannot hold frames back for reordering, so H.264 B-frames are
// not sent (packetize.ts); the I and P frames left have increasing presentation times.

import type { HubListener, StreamHub } from '../../hub/stream-hub.js';
import type { Packet, Track } from '../../media/types.js';
import { errorText } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { packetizerFor, type Packetizer } from './packetize.js';

/** One RTP payload of the stream, shared by every viewer. */
export interface RtpChunk {
  trackId: number;
  payload: Buffer;
  marker: boolean;
  /** RTP timestamp in the track's clock (before a viewer's random base). */
  timestamp: number;
  /** The first payload of a keyframe. */
  keyStart: boolean;
}

export interface RtpFeedViewer {
  /** The payloads of one frame, in order. */
  onChunks(chunks: readonly RtpChunk[]): void;
  onTracks(tracks: readonly Track[]): void;
  onEnd(reason: string): void;
}

/** Clock rate of the RTP timestamps of a codec (RFC 7587: Opus is always 48 kHz). */
export function rtpClockRate(track: Track): number {
  return track.type === 'video' ? 90_000 : track.codec === 'opus' ? 48_000 : track.type === 'audio' ? track.rate : 90_000;
}

/** Codecs a WebRTC viewer can be sent. */
export const WEBRTC_CODECS: { video: readonly string[]; audio: readonly string[] } = { video: ['H264', 'VP8', 'VP9', 'AV1'], audio: ['opus'] };

/** Payloads kept for new viewers at most (a long GOP of a high-rate stream). */
const MAX_GOP_BYTES = 32 * 1024 * 1024;

interface TrackCutter {
  codec: string;
  init: Buffer;
  clockRate: number;
  packetizer: Packetizer;
}

const feeds = new WeakMap<StreamHub, RtpFeed>();

export class RtpFeed implements HubListener {
  private readonly viewers = new Set<RtpFeedViewer>();
  private readonly cutters = new Map<number, TrackCutter>();
  private syncTrackId = -1;
  private gop: RtpChunk[][] = [];
  private gopBytes = 0;
  private unsubscribe: (() => void) | undefined;
  private tracks: readonly Track[] = [];

  private constructor(
    readonly hub: StreamHub,
    private readonly log: Logger,
  ) {}

  /** The hub's feed, made on first use. */
  static of(hub: StreamHub, log: Logger): RtpFeed {
    let f = feeds.get(hub);
    if (!f) feeds.set(hub, (f = new RtpFeed(hub, log)));
    return f;
  }

  /** Adds a viewer: it gets the payloads since the newest keyframe now, then everything as it comes. */
  add(viewer: RtpFeedViewer): () => void {
    if (this.hub.isEnded) {
      viewer.onEnd('stream ended');
      return () => {};
    }
    if (!this.unsubscribe) {
      this.onTracks(this.hub.tracks);
      for (const p of this.hub.packetsFromLatestKey()) this.onPacket(p);
      this.unsubscribe = this.hub.subscribe(this);
    }
    this.viewers.add(viewer);
    viewer.onTracks(this.tracks);
    for (const frame of this.gop) viewer.onChunks(frame);
    return () => {
      if (!this.viewers.delete(viewer) || this.viewers.size > 0) return;
      // the last viewer left: stop cutting (a new viewer starts again from the hub's buffer)
      this.unsubscribe?.();
      this.unsubscribe = undefined;
      this.gop = [];
      this.gopBytes = 0;
      this.cutters.clear();
      if (feeds.get(this.hub) === this) feeds.delete(this.hub);
    };
  }

  onTracks(tracks: readonly Track[]): void {
    this.tracks = tracks;
    const ids = new Set<number>();
    for (const t of tracks) {
      if (t.type !== 'video' && t.type !== 'audio') continue;
      const wanted = t.type === 'video' ? WEBRTC_CODECS.video : WEBRTC_CODECS.audio;
      if (!wanted.includes(t.codec)) continue;
      ids.add(t.id);
      const old = this.cutters.get(t.id);
      if (old && old.codec === t.codec && old.init.equals(t.init)) continue;
      try {
        const packetizer = packetizerFor(t.codec, t.init);
        if (packetizer) this.cutters.set(t.id, { codec: t.codec, init: t.init, clockRate: rtpClockRate(t), packetizer });
      } catch (err) {
        this.log.warn(`WebRTC: track ${t.id} (${t.codec}) cannot be sent: ${errorText(err)}`);
      }
    }
    for (const id of [...this.cutters.keys()]) if (!ids.has(id)) this.cutters.delete(id);
    const video = tracks.find((t) => t.type === 'video' && this.cutters.has(t.id));
    const sync = video?.id ?? tracks.find((t) => this.cutters.has(t.id))?.id ?? -1;
    if (sync !== this.syncTrackId) {
      this.syncTrackId = sync;
      this.gop = [];
      this.gopBytes = 0;
    }
    for (const v of this.viewers) v.onTracks(tracks);
  }

  onPacket(p: Packet): void {
    const cutter = this.cutters.get(p.trackId);
    if (!cutter) return;
    let payloads: Buffer[];
    try {
      payloads = cutter.packetizer.packetize(p.data, p.keyframe);
    } catch (err) {
      // one bad frame is skipped; the stream goes on
      this.log.debug(`WebRTC: frame of track ${p.trackId} not packetized: ${errorText(err)}`);
      return;
    }
    if (payloads.length === 0) return;
    const timestamp = Math.round(((p.timeMs + p.offsetMs) * cutter.clockRate) / 1000) >>> 0;
    const frame: RtpChunk[] = new Array<RtpChunk>(payloads.length);
    let bytes = 0;
    for (let i = 0; i < payloads.length; i++) {
      frame[i] = { trackId: p.trackId, payload: payloads[i]!, marker: i === payloads.length - 1, timestamp, keyStart: i === 0 && p.keyframe };
      bytes += payloads[i]!.length;
    }
    if (p.trackId === this.syncTrackId && p.keyframe) {
      this.gop = [];
      this.gopBytes = 0;
    }
    // before the first sync keyframe nothing is kept: a viewer could not start there
    if (this.gop.length > 0 || (p.trackId === this.syncTrackId && p.keyframe)) {
      if (this.gopBytes + bytes <= MAX_GOP_BYTES) {
        this.gop.push(frame);
        this.gopBytes += bytes;
      } else {
        this.gop = [];
        this.gopBytes = 0;
      }
    }
    for (const v of this.viewers) v.onChunks(frame);
  }

  onEnd(reason: string): void {
    this.unsubscribe = undefined;
    if (feeds.get(this.hub) === this) feeds.delete(this.hub);
    for (const v of [...this.viewers]) v.onEnd(reason);
    this.viewers.clear();
  }
}
