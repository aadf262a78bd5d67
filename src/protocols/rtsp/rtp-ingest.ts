// RTP streams of one RTSP session (a publisher's RECORD or a pulled camera's PLAY) into Haze
// packets: per track the packets are put in order (UDP), depacketized into access units, and
// their RTP timestamps mapped to one millisecond timeline shared by all tracks.
//
// Lining tracks up: each track's RTP clock starts at a random value (RFC 3550 §5.1), so the
// tracks are related through an anchor per track, all of one kind: the rtptime of each track's
// RTP-Info (the same instant for all, RFC 2326 §12.33), or the NTP time of an RTCP sender
// report (§6.4.1). Frames wait until every track has one (at most SYNC_WAIT_MS); without, the
// arrival times stand in.
//
// Video timestamps are presentation times in decode order (B-frames go back in time), while a
// Haze packet has a decode time and a composition offset. Decode times are derived without
// holding frames back: dts = max(previous dts + 1, pts - D), which stays at or before pts as
// long as D covers the largest step back behind the highest pts so far. D is measured on the
// first REORDER_FRAMES frames (which wait for it at the start only; 0 without B-frames) and
// grows if a larger step comes later. The whole timeline starts D late so no decode time is
// negative.

import type { Packet, Track } from '../../media/types.js';
import { videoParams } from '../../containers/flv/codec-info.js';
import { HazeError } from '../../util/errors.js';
import { parseRtp } from '../rtp/packet.js';
import { parseRtcp, unixMsFromNtp, type ReportBlock } from '../rtp/rtcp.js';
import type { Depacketizer, RtpFrame } from '../rtp/payload.js';
import { SequenceOrder } from '../rtp/sequence.js';
import type { IncomingTrack } from './sdp-tracks.js';

/** Where the packets go: a StreamHub, or anything shaped like its input side. */
export interface IngestSink {
  setTrack(track: Track): void;
  push(packet: Packet): void;
}

/** How long frames wait for every track's anchor before the arrival times are used. */
export const SYNC_WAIT_MS = 1000;
/** Frames held while waiting (a bound on memory whatever the rate). */
const MAX_QUEUED = 2000;
/** Video frames looked at before the first goes out, to measure how far B-frames reorder. */
const REORDER_FRAMES = 8;

type AnchorKind = 'info' | 'sr';

interface Anchor {
  /** The anchor's time in ms in its kind's domain (sender NTP for SR, 0 for RTP-Info). */
  ms: number;
  /** Its RTP timestamp (32 bits). */
  rtp: number;
}

interface TrackState {
  spec: IncomingTrack;
  track: Track;
  order: SequenceOrder;
  depack: Depacketizer;
  /** The track was given to the sink (its init is known). */
  announced: boolean;
  /** A keyframe went out (video before the first one is dropped). */
  keyed: boolean;
  /** 32-bit timestamp of the previous frame and its unwrapped value. */
  last32: number;
  lastExt: number;
  firstExt: number;
  firstArrival: number;
  info?: Anchor;
  sr?: Anchor;
  ssrc: number;
  /** Mapping: ms = (ext - refExt) * 1000 / clock + refMs, set when the timeline is fixed. */
  refExt?: number;
  refMs?: number;
  lastDtsMs: number;
  /** Video reordering allowance (ms). */
  reorderMs: number;
  /** Frames seen (to know when REORDER_FRAMES are there). */
  frameCount: number;
  /** The highest presentation time so far (ms), for the reordering measure. */
  maxPtsMs: number;
  packets: number;
  highestSeq: number;
  cycles: number;
}

interface QueuedFrame {
  state: TrackState;
  ext: number;
  frame: RtpFrame;
}

export class RtpIngest {
  private readonly states: TrackState[];
  private queue: QueuedFrame[] | undefined = [];
  private firstArrival = -1;
  private kind: AnchorKind | 'arrival' | undefined;
  /** Domain ms - local arrival ms, learned from the first track when the timeline is fixed. */
  private domainOffset = 0;
  private zeroMs = 0;
  /** Added to every time so the first decode times are not negative (the initial reordering allowance). */
  private shiftMs = 0;
  bytesIn = 0;
  packetsIn = 0;

  constructor(
    tracks: readonly IncomingTrack[],
    private readonly sink: IngestSink,
    private readonly opts: { reorder: boolean; now?: () => number; onWarn?: (msg: string) => void } = { reorder: false },
  ) {
    this.states = tracks.map((spec) => ({
      spec,
      track: spec.track,
      order: new SequenceOrder(opts.reorder ? 32 : 0),
      depack: spec.makeDepacketizer(),
      announced: false,
      keyed: false,
      last32: 0,
      lastExt: -1,
      firstExt: 0,
      firstArrival: 0,
      ssrc: 0,
      lastDtsMs: -Infinity,
      reorderMs: 0,
      frameCount: 0,
      maxPtsMs: -Infinity,
      packets: 0,
      highestSeq: 0,
      cycles: 0,
    }));
  }

  private now(): number {
    return this.opts.now ? this.opts.now() : Date.now();
  }

  get trackCount(): number {
    return this.states.length;
  }

  /** The rtptime of track `index` from RTP-Info: the same instant for every track. */
  anchorInfo(index: number, rtptime: number): void {
    const s = this.states[index];
    if (s) s.info = { ms: 0, rtp: rtptime >>> 0 };
  }

  /** One RTP packet of track `index`; throws a HazeError for one that cannot be read. */
  rtp(index: number, buf: Buffer): void {
    const s = this.states[index];
    if (!s) throw new HazeError('HAZE_ERR_PROTOCOL', `RTP for unknown track ${index}`);
    const pkt = parseRtp(buf);
    this.bytesIn += buf.length;
    this.packetsIn++;
    s.ssrc = pkt.ssrc;
    s.packets++;
    for (const { packet, lost } of s.order.push(pkt)) {
      // packets come out in order: a smaller number is a wrap of the 16-bit counter
      if (s.highestSeq > 0 && packet.sequence < (s.highestSeq & 0xffff)) s.cycles++;
      s.highestSeq = s.cycles * 0x10000 + packet.sequence;
      this.frames(s, s.depack.push(packet, lost));
    }
  }

  /** One RTCP packet of track `index` (sender reports anchor the timeline). */
  rtcp(index: number, buf: Buffer): void {
    const s = this.states[index];
    if (!s) return;
    this.bytesIn += buf.length;
    for (const p of parseRtcp(buf)) {
      if (p.type === 'sr') s.sr = { ms: unixMsFromNtp(p.ntpSeconds, p.ntpFraction), rtp: p.rtpTimestamp };
    }
    // a queue waiting for anchors may be complete now
    if (this.queue && this.queue.length > 0) this.tryResolve();
  }

  /** The stream ended: what is still held goes out. */
  close(): void {
    for (const s of this.states) {
      for (const { packet, lost } of s.order.flush()) this.frames(s, s.depack.push(packet, lost));
      this.frames(s, s.depack.flush());
    }
    if (this.queue) this.resolve();
  }

  /** Receiver report blocks for each track that received something (RFC 3550 §6.4.2, without jitter). */
  reportBlocks(): ReportBlock[] {
    return this.states
      .filter((s) => s.packets > 0)
      .map((s) => ({ ssrc: s.ssrc, fractionLost: 0, cumulativeLost: s.order.lostPackets, highestSequence: s.highestSeq >>> 0, jitter: 0, lastSr: 0, delaySinceLastSr: 0 }));
  }

  /** Whether a track can be given to the sink: video needs its parameter sets. */
  private static usable(s: TrackState): boolean {
    return s.track.type !== 'video' || s.track.init.length > 0;
  }

  private announce(s: TrackState): void {
    s.announced = true;
    this.sink.setTrack(s.track);
  }

  private frames(s: TrackState, frames: RtpFrame[]): void {
    const init = s.depack.takeInit();
    if (init && s.track.type === 'video') {
      const p = videoParams(s.track.codec, init);
      s.track = { ...s.track, init, ...(p ? { width: p.width, height: p.height, fpks: p.fpks || s.track.fpks } : {}) };
      // a track already announced is re-initialised; others are announced with their first frame
      if (s.announced) this.announce(s);
    }
    const now = this.now();
    for (const f of frames) {
      if (s.lastExt < 0) {
        s.lastExt = s.firstExt = f.timestamp;
        s.firstArrival = now;
        if (this.firstArrival < 0) this.firstArrival = now;
      } else {
        s.lastExt += (f.timestamp - s.last32) | 0;
      }
      s.last32 = f.timestamp;
      s.frameCount++;
      if (this.queue) {
        if (this.queue.length < MAX_QUEUED) this.queue.push({ state: s, ext: s.lastExt, frame: f });
      } else {
        this.emit(s, s.lastExt, f);
      }
    }
    if (this.queue && this.queue.length > 0) this.tryResolve();
  }

  private tryResolve(): void {
    const all = (k: AnchorKind): boolean => this.states.every((s) => s[k] !== undefined);
    // every track has a first frame (time 0 is the earliest of them; a sender may hold audio back
    // to fill packets) and every video track showed its reordering
    const ready = this.states.every((s) => s.frameCount > 0 && (s.track.type !== 'video' || s.frameCount >= REORDER_FRAMES));
    if (((all('info') || all('sr')) && ready) || this.now() - this.firstArrival >= SYNC_WAIT_MS || this.queue!.length >= MAX_QUEUED) this.resolve();
  }

  /** Fixes the timeline and sends the frames that waited. */
  private resolve(): void {
    const queue = this.queue ?? [];
    this.queue = undefined;
    const framed = this.states.filter((s) => s.lastExt >= 0);
    const has = (k: AnchorKind): boolean => framed.length > 0 && framed.every((s) => s[k] !== undefined);
    this.kind = has('info') ? 'info' : has('sr') ? 'sr' : 'arrival';
    // every framed track's first frame in the domain; the earliest is time 0
    let zero = Infinity;
    for (const s of framed) {
      this.fixTrack(s);
      zero = Math.min(zero, s.refMs!);
    }
    this.zeroMs = Number.isFinite(zero) ? zero : 0;
    const first = framed[0];
    if (first) this.domainOffset = first.refMs! - first.firstArrival;
    // the reordering of each video track in the frames that waited
    for (const q of queue) {
      const s = q.state;
      if (s.track.type !== 'video') continue;
      const pts = this.ptsOf(s, q.ext);
      if (pts < s.maxPtsMs) s.reorderMs = Math.max(s.reorderMs, Math.ceil(s.maxPtsMs - pts) + 1);
      s.maxPtsMs = Math.max(s.maxPtsMs, pts);
    }
    this.shiftMs = Math.max(0, ...this.states.map((s) => s.reorderMs));
    // the tracks that sent something are announced together, so the stream comes online with all
    // of them; one that never sends (a camera's silent audio) does not keep it offline
    for (const s of framed) if (RtpIngest.usable(s)) this.announce(s);
    for (const q of queue) this.emit(q.state, q.ext, q.frame);
  }

  /** The mapping of a track's timestamps to the domain's ms, from its anchor or its arrival. */
  private fixTrack(s: TrackState): void {
    const a = this.kind === 'info' || this.kind === 'sr' ? s[this.kind] : undefined;
    const clock = s.spec.clockRate;
    if (a) {
      // the anchor's timestamp unwrapped near the track's first one
      const anchorExt = s.firstExt + ((a.rtp - (s.firstExt >>> 0)) | 0);
      s.refExt = s.firstExt;
      s.refMs = a.ms + ((s.firstExt - anchorExt) * 1000) / clock;
    } else {
      s.refExt = s.firstExt;
      s.refMs = s.firstArrival + this.domainOffset;
    }
  }

  /** A frame's presentation time on the stream's timeline (ms, before rounding and shift). */
  private ptsOf(s: TrackState, ext: number): number {
    return ((ext - s.refExt!) * 1000) / s.spec.clockRate + s.refMs! - this.zeroMs;
  }

  private emit(s: TrackState, ext: number, f: RtpFrame): void {
    if (s.refExt === undefined) {
      // a track whose first frame came after the wait: its anchor places it, or its arrival
      this.fixTrack(s);
    }
    if (!s.announced) {
      if (!RtpIngest.usable(s)) return; // video whose parameter sets have not come yet
      this.announce(s);
    }
    if (s.track.type === 'video' && !s.keyed) {
      if (!f.keyframe) return;
      s.keyed = true;
    }
    const ptsMs = Math.max(0, Math.round(this.ptsOf(s, ext) + this.shiftMs));
    let dtsMs: number;
    if (s.track.type === 'video') {
      dtsMs = Math.max(s.lastDtsMs + 1, ptsMs - s.reorderMs);
      if (dtsMs > ptsMs) {
        // a frame presented before one decoded earlier: B-frames; allow that much reordering from now on
        s.reorderMs += dtsMs - ptsMs;
        if (s.reorderMs > 10_000) s.reorderMs = 10_000;
      }
    } else {
      dtsMs = Math.max(s.lastDtsMs, ptsMs);
    }
    s.lastDtsMs = dtsMs;
    this.sink.push({ trackId: s.track.id, timeMs: dtsMs, offsetMs: Math.max(0, ptsMs - dtsMs), keyframe: f.keyframe, data: f.data });
  }
}
