// HLS with MPEG-TS segments, MistServer's URLs (reference §6.3): `/hls/NAME/index.m3u8` is the
// multivariant playlist (hls-variants.ts: one variant per video track, audio muxed in or grouped),
// `/hls/NAME/V_A/index.m3u8` a media playlist (V, A: track indexes, empty for none) and
// `/hls/NAME/V_A/START_END.ts` its segments. A segmenter per stream and variant cuts the
// feed where the hub marks segment starts (keyframes about 1.9 s apart, MistServer's fragment
// target; the marks and their numbers are the same in every worker, so a player's requests may
// land on any of them), builds each segment once and serves the same bytes to every viewer; it
// starts from the whole DVR window and keeps segments as long as the stream's buffer does.

import { TsMuxer } from '../containers/ts/mux.js';
import { mediaPlaylist, multivariantPlaylist, targetDurationS } from '../containers/hls/playlist.js';
import { SEGMENT_TARGET_MS, type HubListener, type StreamHub } from '../hub/stream-hub.js';
import type { FragmentMark, Packet, Track } from '../media/types.js';
import type { MediaRoute } from '../protocols/http/media-server.js';
import type { TrackSelection } from './feed.js';
import { resolveStream, tokenQuery } from './play.js';
import { selectTracks } from './track-select.js';
import { TS_CAPABILITY } from './ts-writer.js';
import { HubScoped } from './hub-scoped.js';
import { PlaylistCache, discontinuitySequence, prependSegments, trimSegments, type WindowSegment } from './segment-window.js';
import { variantPlan } from './hls-variants.js';

/** A segmenter nobody asked for in this long stops. */
const IDLE_MS = 60_000;
const FIRST_SEGMENT_WAIT_MS = 6000;
/** MistServer's TS playlists are version 3 (EXT-X-TARGETDURATION rounded up). */
const TS_PLAYLIST_VERSION = 3;

interface TsSegment extends WindowSegment {
  data: Buffer;
}

export class TsSegmenter implements HubListener {
  readonly segments: TsSegment[] = [];
  private muxer: TsMuxer | undefined;
  private selection: TrackSelection;
  private chunks: Buffer[] = [];
  /** The segment being cut: its mark and first media time; undefined until a mark arrives. */
  private current: { mark: FragmentMark; startMs: number } | undefined;
  private ended = false;
  /**
   * EXT-X-TARGETDURATION so far: it only grows (RFC 8216 §6.2.1), from what segments cut at
   * SEGMENT_TARGET_MS take, so a short first segment does not announce a target that grows later.
   */
  private targetS = Math.ceil(SEGMENT_TARGET_MS / 1000);
  /** The number of the newest segment cut, so an empty window still numbers on. */
  private lastIndex = -1;
  private readonly rendered = new PlaylistCache();
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
    if (!this.muxer) return;
    // A mark on any track (the sync track may not be in this variant) starts the next segment.
    if (p.fragment) {
      if (this.current) this.cut(p.timeMs);
      this.current = { mark: p.fragment, startMs: p.timeMs };
      // A muxer per segment: continuity counters and PSI start afresh, so every worker's
      // segment is the same bytes whichever worker a player's previous request reached.
      this.muxer = this.makeMuxer();
    }
    if (!this.current || !this.muxer || !this.selection.ids.has(p.trackId)) return;
    this.chunks.push(this.muxer.mux(p));
  }

  onTracks(tracks: readonly Track[]): void {
    if (this.current && this.hub.lastMs > this.current.startMs) this.cut(this.hub.lastMs);
    this.chunks = [];
    this.current = undefined;
    this.selection = this.select(tracks);
    this.muxer = this.makeMuxer();
    this.rendered.invalidate();
  }

  onEnd(): void {
    if (this.current && this.hub.lastMs > this.current.startMs) this.cut(this.hub.lastMs);
    this.current = undefined;
    this.ended = true;
    this.wake();
  }

  private cut(endMs: number): void {
    const { mark, startMs } = this.current!;
    this.current = undefined;
    this.lastIndex = mark.index;
    const previous = this.segments[this.segments.length - 1];
    const data = Buffer.concat(this.chunks);
    this.segments.push({
      sequence: mark.index,
      startMs,
      durationMs: endMs - startMs,
      uri: `${startMs}_${endMs}.ts`,
      discontinuity: (previous && previous.epoch !== mark.epoch) || undefined,
      epoch: mark.epoch,
      programDateTimeMs: this.hub.unixZeroMs + startMs,
      // one copy per segment, shared by every viewer
      data,
      bytes: data.length,
    });
    this.chunks = [];
    this.targetS = Math.max(this.targetS, targetDurationS(this.segments.slice(-1), TS_PLAYLIST_VERSION));
    trimSegments(this.segments, this.hub.firstMs, this.targetS);
    this.wake();
  }

  private wake(): void {
    this.rendered.invalidate();
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
    return this.rendered.get(query, () => {
      const segments = this.segments.map(({ data: _data, epoch: _epoch, bytes: _bytes, ...s }) => s);
      const nextSequence = this.current?.mark.index ?? this.lastIndex + 1;
      const index = { segments, nextSequence, discontinuitySequence: discontinuitySequence(this.segments, this.current?.mark.epoch ?? 0), targetDurationS: this.targetS, ended: this.ended };
      return mediaPlaylist(index, { query, version: TS_PLAYLIST_VERSION });
    });
  }

  segment(uri: string): Buffer | undefined {
    return this.segments.find((s) => s.uri === uri)?.data;
  }

  /** Carries on the segments of the same variant of the stream this one continues. */
  adopt(earlier: TsSegmenter): void {
    prependSegments(this.segments, earlier.segments);
    this.targetS = Math.max(this.targetS, earlier.targetS);
    this.rendered.invalidate();
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
  const key = `${video}_${audio}`;
  const s = segmenters.get(hub, key, (forget) => {
    const query = { video: video === '' ? 'none' : video, audio: audio === '' ? 'none' : audio };
    const made = new TsSegmenter(hub, (tracks) => selectTracks(tracks, query, TS_CAPABILITY), forget);
    const earlier = hub.continuedFrom && segmenters.peek(hub.continuedFrom, key);
    if (earlier) made.adopt(earlier);
    return made;
  });
  s.touch();
  return s;
}

export interface HlsDeps {
  forViewer(name: string): Promise<StreamHub>;
  /** The hub of a stream that ended lately (its playlists end with ENDLIST), if any. */
  endedHub?(name: string): StreamHub | undefined;
}

const PLAYLIST_HEADERS = { 'Content-Type': 'application/vnd.apple.mpegurl', 'Cache-Control': 'no-cache' };

export function hlsTsRoute(deps: HlsDeps): MediaRoute {
  return async (req, res) => {
    const m = /^\/hls\/([^/]+)\/(?:index\.m3u8|(\d*)_(\d*)\/(index\.m3u8|\d+_\d+\.ts))$/.exec(req.path);
    if (!m) return false;
    const stream = await resolveStream(m[1]!, req, res, deps.forViewer, deps.endedHub);
    if (!stream) return true;
    const { name, hub, session } = stream;
    const query = tokenQuery(req);
    if (m[2] === undefined) {
      const plan = variantPlan(hub.tracks, (t) => TS_CAPABILITY.codecs[t.type]?.includes(t.codec) === true, hub.bitrateBps());
      if (plan.variants.length === 0) {
        res.send(415, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Haze-Session': session }, `No track of ${name} fits HLS\n`);
        return true;
      }
      res.send(200, { ...PLAYLIST_HEADERS, 'X-Haze-Session': session }, multivariantPlaylist(plan.variants, plan.audioGroups, query ? { query } : {}));
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
