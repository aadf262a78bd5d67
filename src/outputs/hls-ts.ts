// HLS with MPEG-TS segments, MistServer's URLs (reference §6.3): `/hls/NAME/index.m3u8` is the
// multivariant playlist (one variant per video track, with the first audio track),
// `/hls/NAME/V_A/index.m3u8` a media playlist (V, A: track indexes, empty for none) and
// `/hls/NAME/V_A/START_END.ts` its segments. A segmenter per stream and variant cuts the
// feed at keyframes (about 1.9 s, MistServer's fragment target), builds each segment once
// and serves the same bytes to every viewer; it starts from the whole DVR window and keeps
// segments as long as the stream's buffer does.

import { TsMuxer } from '../containers/ts/mux.js';
import { mediaPlaylist, multivariantPlaylist, type HlsVariant } from '../containers/hls/playlist.js';
import type { HlsSegment } from '../containers/hls/segment-index.js';
import type { HubListener, StreamHub } from '../hub/stream-hub.js';
import type { Packet, Track } from '../media/types.js';
import type { MediaRoute } from '../protocols/http/media-server.js';
import type { TrackSelection } from './feed.js';
import { resolveStream } from './play.js';
import { selectTracks } from './track-select.js';
import { TS_CAPABILITY } from './ts-writer.js';
import { HubScoped } from './hub-scoped.js';

const TARGET_SEGMENT_MS = 1900;
/** A segmenter nobody asked for in this long stops. */
const IDLE_MS = 60_000;
const MAX_SEGMENTS = 600;
const FIRST_SEGMENT_WAIT_MS = 6000;

interface TsSegment extends HlsSegment {
  data: Buffer;
}

export class TsSegmenter implements HubListener {
  readonly segments: TsSegment[] = [];
  private nextSequence = 0;
  private discontinuitySequence = 0;
  private muxer: TsMuxer | undefined;
  private selection: TrackSelection;
  private chunks: Buffer[] = [];
  private startMs = -1;
  private discontinuity = false;
  private ended = false;
  private waiters: Array<() => void> = [];
  private readonly unsubscribe: () => void;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly hub: StreamHub,
    private readonly select: (tracks: readonly Track[]) => TrackSelection,
    private readonly onStop: () => void,
  ) {
    this.selection = select(hub.tracks);
    this.muxer = this.makeMuxer();
    // the whole DVR window becomes segments at once
    for (const p of hub.packetsFromTime(hub.firstMs)) this.onPacket(p);
    this.unsubscribe = hub.subscribe(this);
    this.touch();
  }

  private makeMuxer(): TsMuxer | undefined {
    const tracks = this.hub.tracks.filter((t) => this.selection.ids.has(t.id));
    return tracks.length > 0 ? new TsMuxer(tracks) : undefined;
  }

  /** Keeps the segmenter alive while playlists or segments are requested. */
  touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), IDLE_MS);
    this.idleTimer.unref();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  onPacket(p: Packet): void {
    if (!this.muxer || !this.selection.ids.has(p.trackId)) return;
    const isKey = p.keyframe && p.trackId === this.selection.syncTrackId;
    if (isKey && this.startMs >= 0 && p.timeMs - this.startMs >= TARGET_SEGMENT_MS) this.cut(p.timeMs);
    if (this.startMs < 0) {
      if (!isKey) return; // a segment starts with a keyframe (and the muxer's PAT/PMT)
      this.startMs = p.timeMs;
    }
    this.chunks.push(this.muxer.mux(p));
  }

  onTracks(tracks: readonly Track[]): void {
    if (this.startMs >= 0 && this.hub.lastMs > this.startMs) this.cut(this.hub.lastMs);
    this.chunks = [];
    this.startMs = -1;
    this.selection = this.select(tracks);
    this.muxer = this.makeMuxer();
    this.discontinuity = true;
  }

  onEnd(): void {
    if (this.startMs >= 0 && this.hub.lastMs > this.startMs) this.cut(this.hub.lastMs);
    this.ended = true;
    this.wake();
  }

  private cut(endMs: number): void {
    const sequence = this.nextSequence++;
    this.segments.push({
      sequence,
      startMs: this.startMs,
      durationMs: endMs - this.startMs,
      uri: `${this.startMs}_${endMs}.ts`,
      discontinuity: this.discontinuity || undefined,
      programDateTimeMs: Date.now() - Math.max(0, this.hub.lastMs - this.startMs),
      // one copy per segment, shared by every viewer
      data: Buffer.concat(this.chunks),
    });
    this.discontinuity = false;
    this.chunks = [];
    this.startMs = -1;
    // keep what the stream's DVR window keeps (and a hard bound)
    const firstMs = this.hub.firstMs;
    while (this.segments.length > MAX_SEGMENTS || (this.segments.length > 3 && firstMs >= 0 && this.segments[0]!.startMs + this.segments[0]!.durationMs < firstMs)) {
      if (this.segments.shift()!.discontinuity) this.discontinuitySequence++;
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once a segment exists (or the stream ended), at most after `timeoutMs`. */
  waitFirst(timeoutMs: number): Promise<void> {
    if (this.segments.length > 0 || this.ended) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  playlist(query: string): string {
    const segments = this.segments.map(({ data: _data, ...s }) => s);
    return mediaPlaylist(
      { segments, nextSequence: this.nextSequence, discontinuitySequence: this.discontinuitySequence, ended: this.ended },
      { query },
    );
  }

  segment(uri: string): Buffer | undefined {
    return this.segments.find((s) => s.uri === uri)?.data;
  }

  stop(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.unsubscribe();
    this.wake();
    this.onStop();
  }
}

const segmenters = new HubScoped<TsSegmenter>();

function segmenter(hub: StreamHub, video: string, audio: string): TsSegmenter {
  const s = segmenters.get(hub, `${video}_${audio}`, (forget) => {
    const query = { video: video === '' ? 'none' : video, audio: audio === '' ? 'none' : audio };
    return new TsSegmenter(hub, (tracks) => selectTracks(tracks, query, TS_CAPABILITY), forget);
  });
  s.touch();
  return s;
}

/** One variant per video track (with the first audio track); audio only when there is no video. */
function variants(hub: StreamHub): HlsVariant[] {
  const tracks = hub.tracks;
  const idx = (t: Track): number => tracks.indexOf(t);
  const video = tracks.filter((t) => t.type === 'video' && TS_CAPABILITY.codecs.video!.includes(t.codec));
  const audio = tracks.find((t) => t.type === 'audio' && TS_CAPABILITY.codecs.audio!.includes(t.codec));
  const bandwidthBps = hub.bitrateBps();
  if (video.length === 0) return audio ? [{ uri: `_${idx(audio)}/index.m3u8`, tracks: [audio], bandwidthBps }] : [];
  return video.map((v) => ({ uri: `${idx(v)}_${audio ? idx(audio) : ''}/index.m3u8`, tracks: audio ? [v, audio] : [v], bandwidthBps }));
}

export interface HlsDeps {
  forViewer(name: string): Promise<StreamHub>;
}

const PLAYLIST_HEADERS = { 'Content-Type': 'application/vnd.apple.mpegurl', 'Cache-Control': 'no-cache' };

export function hlsTsRoute(deps: HlsDeps): MediaRoute {
  return async (req, res) => {
    const m = /^\/hls\/([^/]+)\/(?:index\.m3u8|(\d*)_(\d*)\/(index\.m3u8|\d+_\d+\.ts))$/.exec(req.path);
    if (!m) return false;
    const stream = await resolveStream(m[1]!, req, res, deps.forViewer);
    if (!stream) return true;
    const { name, hub, session } = stream;
    const tkn = req.query.get('tkn');
    const query = tkn ? `tkn=${encodeURIComponent(tkn)}` : undefined;
    if (m[2] === undefined) {
      const list = variants(hub);
      if (list.length === 0) {
        res.send(415, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Haze-Session': session }, `No track of ${name} fits HLS\n`);
        return true;
      }
      res.send(200, { ...PLAYLIST_HEADERS, 'X-Haze-Session': session }, multivariantPlaylist(list, [], query ? { query } : {}));
      return true;
    }
    const seg = segmenter(hub, m[2], m[3]!);
    if (m[4] === 'index.m3u8') {
      await seg.waitFirst(FIRST_SEGMENT_WAIT_MS);
      res.send(200, { ...PLAYLIST_HEADERS, 'X-Haze-Session': session }, seg.playlist(query ?? ''));
      return true;
    }
    const data = seg.segment(m[4]!);
    if (!data) {
      res.send(404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Haze-Session': session }, `Segment ${m[4]} is not (or no longer) in the live window of ${name}\n`);
      return true;
    }
    // a segment never changes once cut
    res.send(200, { 'Content-Type': 'video/mp2t', 'Cache-Control': 'public, max-age=3600, immutable', 'X-Haze-Session': session }, data);
    return true;
  };
}
