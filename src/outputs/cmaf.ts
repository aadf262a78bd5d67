// CMAF output, MistServer's URLs (reference §6.3): fMP4 HLS v7 with LL-HLS (RFC 8216bis §4.4.4.9
// EXT-X-PART, §4.4.5.2 EXT-X-PRELOAD-HINT, §6.2.5.2 blocking reload, §6.2.5.1 delta updates)
// and DASH (ISO/IEC 23009-1 §5.3.9.6 SegmentTimeline, `$RepresentationID$/chunk_$Time$.m4s`).
//
//   /cmaf/NAME/index.m3u8                 multivariant playlist (hls-variants.ts: one variant per
//                                          video track, audio muxed in or grouped)
//   /cmaf/NAME/V_A/index.m3u8             media playlist (V, A: track indexes, empty for none)
//   /cmaf/NAME/V_A/init.m4s               init segment of the variant's tracks
//   /cmaf/NAME/V_A/chunk_<startMs>.m4s    a segment (~1.9 s, starts at a keyframe)
//   /cmaf/NAME/V_A/chunk_<startMs>.<n>.m4s  part n of that segment (~500 ms)
//   /cmaf/NAME/index.mpd                  dynamic MPD, one representation per track
//   /cmaf/NAME/<trackId>/init.m4s, /cmaf/NAME/<trackId>/chunk_<startMs>.m4s  its segments
//
// A segmenter per stream and rendition set cuts the feed once and every viewer gets the same
// bytes. HLS parts are moof+mdat fragments holding every track of the variant; a segment is its
// parts back to back (one buffer, the parts are views into it). DASH representations get a
// single-track fragment per segment, cut at the same keyframes so the sets stay aligned.

import { initSegment, mp4Supports } from '../containers/mp4/init.js';
import { FragmentWriter, type FragmentGroup } from '../containers/mp4/fragment.js';
import { isReady, isTooFarAhead, mediaPlaylist, multivariantPlaylist, parseBlockingRequest, renditionReportFor, targetDurationS } from '../containers/hls/playlist.js';
import type { HlsPart, SegmentIndex } from '../containers/hls/segment-index.js';
import { mpd, type DashRepresentation } from '../containers/dash/mpd.js';
import { SEGMENT_TARGET_MS, type HubListener, type StreamHub } from '../hub/stream-hub.js';
import type { AudioTrack, FragmentMark, Packet, Track, VideoTrack } from '../media/types.js';
import type { MediaRoute } from '../protocols/http/media-server.js';
import { isHazeError } from '../util/errors.js';
import type { TrackSelection } from './feed.js';
import { resolveStream, tokenQuery } from './play.js';
import { selectTracks, type FormatCapability } from './track-select.js';
import { HubScoped } from './hub-scoped.js';
import { PlaylistCache, discontinuitySequence, prependSegments, trimSegments, type WindowSegment } from './segment-window.js';
import { playlistUris, variantPlan, type VariantPlan } from './hls-variants.js';

/** PART-TARGET (MistServer's `partDurationMaxMs`). */
export const CMAF_PART_TARGET_MS = 500;
/** A segmenter nobody asked for in this long stops. */
const IDLE_MS = 60_000;
const FIRST_SEGMENT_WAIT_MS = 6000;
/** Parts beyond this many in one segment (a GOP far longer than the target) join the last one. */
const MAX_PARTS_PER_SEGMENT = 1000;
/** Frame duration assumed before two frames of the sync track were seen. */
const DEFAULT_FRAME_MS = 40;
/** A part request further than this beyond the published ones is not held. */
const MAX_PARTS_AHEAD = 8;

export const CMAF_CAPABILITY: FormatCapability = {
  codecs: { video: ['H264', 'HEVC', 'AV1', 'VP9'], audio: ['AAC', 'MP3', 'opus', 'AC3'] },
  singlePerType: false,
};

export interface CmafPart extends HlsPart {
  data: Buffer;
}

export interface CmafSegment extends WindowSegment {
  parts: CmafPart[];
  /** HLS: the muxed segment (its parts back to back). Empty in DASH mode. */
  data: Buffer;
  /** DASH: one single-track fragment per track id that had packets in the segment. */
  byTrack: Map<number, Buffer> | undefined;
}

/** `hls`: one muxed rendition with parts; `dash`: one single-track rendition per track, no parts. */
export type CmafMode = 'hls' | 'dash';

export class CmafSegmenter implements HubListener {
  readonly segments: CmafSegment[] = [];
  /** Parts of the segment being cut (HLS). */
  readonly pendingParts: CmafPart[] = [];
  private selection: TrackSelection;
  private tracks: Track[] = [];
  private readonly trackIds = new Set<number>();
  private writer: FragmentWriter | undefined;
  private init: Buffer | undefined;
  private readonly initByTrack = new Map<number, Buffer>();
  private readonly firstFrames = new Map<number, Buffer>();
  /** Packets since the last part (HLS) or segment (DASH) cut, in arrival order. */
  private packets: Packet[] = [];
  /** The segment being cut: the hub's mark and its first media time; undefined until a mark arrives. */
  private current: { mark: FragmentMark; startMs: number } | undefined;
  private partStartMs = -1;
  private partIndependent = false;
  private lastSyncMs = -1;
  private frameMs = DEFAULT_FRAME_MS;
  private ended = false;
  private stopped = false;
  /**
   * EXT-X-TARGETDURATION so far: it only grows (RFC 8216 §6.2.1), from what segments cut at
   * SEGMENT_TARGET_MS take, so a short first segment does not announce a target that grows later.
   */
  private targetS = Math.ceil(SEGMENT_TARGET_MS / 1000);
  /** The number of the newest segment cut, so an empty window still numbers on. */
  private lastIndex = -1;
  /** The init segment before a track change, until the next segment shows whether it still holds. */
  private initBeforeChange: Buffer | undefined;
  /** Media playlists rendered from the current state (HLS). */
  readonly rendered = new PlaylistCache();
  private waiters: Array<() => void> = [];
  private readonly unsubscribe: () => void;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly hub: StreamHub,
    readonly mode: CmafMode,
    private readonly select: (tracks: readonly Track[]) => TrackSelection,
    private readonly onStop: () => void,
  ) {
    this.selection = select(hub.tracks);
    this.setup();
    // the whole DVR window becomes segments at once
    for (const p of hub.packetsFromTime(hub.firstMs)) this.onPacket(p);
    this.unsubscribe = hub.subscribe(this);
    this.touch();
  }

  private setup(): void {
    this.tracks = this.hub.tracks.filter((t) => this.selection.ids.has(t.id) && mp4Supports(t));
    this.trackIds.clear();
    for (const t of this.tracks) this.trackIds.add(t.id);
    this.writer = this.tracks.length > 0 ? new FragmentWriter(this.tracks) : undefined;
    this.init = undefined;
    this.initByTrack.clear();
    this.firstFrames.clear();
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

  get trackList(): readonly Track[] {
    return this.tracks;
  }

  /** DASH availabilityStartTime: the hub's wall clock of media time 0, the same in every worker. */
  get availabilityStartTimeMs(): number {
    return this.hub.unixZeroMs;
  }

  onPacket(p: Packet): void {
    if (!this.writer) return;
    // A mark on any track (the sync track may not be in this rendition) starts the next segment.
    if (p.fragment) {
      if (this.current) this.cutSegment(p.timeMs);
      this.current = { mark: p.fragment, startMs: p.timeMs };
      this.partStartMs = p.timeMs;
      this.partIndependent = true;
      // Part boundaries depend only on the segment's own packets, so every worker cuts the same parts.
      this.lastSyncMs = -1;
      this.frameMs = DEFAULT_FRAME_MS;
    }
    if (!this.current || !this.trackIds.has(p.trackId)) return;
    if (p.trackId === this.selection.syncTrackId) {
      if (this.mode === 'hls' && this.packets.length > 0) {
        // Cut before this packet when including it would take the part past its target.
        const elapsedMs = p.timeMs - this.partStartMs;
        if (elapsedMs > 0 && elapsedMs + this.frameMs > CMAF_PART_TARGET_MS) this.cutPart(p.timeMs, p.keyframe);
      }
      if (this.lastSyncMs >= 0 && p.timeMs > this.lastSyncMs) this.frameMs = Math.min(p.timeMs - this.lastSyncMs, 200);
      this.lastSyncMs = p.timeMs;
    }
    if (!this.firstFrames.has(p.trackId)) this.firstFrames.set(p.trackId, p.data);
    this.packets.push(p);
  }

  /** Carries on the segments of the same rendition of the stream this one continues, if its init segment still plays them. */
  adopt(earlier: CmafSegmenter): void {
    const a = earlier.initFor();
    const b = this.initFor();
    if (!a || !b || !a.equals(b)) return;
    prependSegments(this.segments, earlier.segments);
    this.targetS = Math.max(this.targetS, earlier.targetS);
    this.wake();
  }

  onTracks(tracks: readonly Track[]): void {
    this.finishSegment();
    // A publisher comes back track by track: whether the init segment changed shows at the
    // next segment (see cutSegment), compared with the one from before the first change.
    if (this.initBeforeChange === undefined && this.segments.length > 0) this.initBeforeChange = this.initFor();
    this.selection = this.select(tracks);
    this.setup();
    this.wake();
  }

  onEnd(): void {
    this.finishSegment();
    this.ended = true;
    this.wake();
  }

  /** Cuts what is buffered as a (shorter) last segment, ending one frame after the newest packet. */
  private finishSegment(): void {
    if (this.current && this.packets.length + this.pendingParts.length > 0) {
      let lastMs = this.current.startMs;
      for (const p of this.packets) lastMs = Math.max(lastMs, p.timeMs);
      this.cutSegment(Math.max(lastMs + this.frameMs, this.partStartMs + 1));
    }
    this.current = undefined;
    this.packets = [];
    this.pendingParts.length = 0;
  }

  /** The packets of `list` grouped per track, in the tracks' order; tracks without packets left out. */
  private groups(list: readonly Packet[]): FragmentGroup[] {
    const groups: FragmentGroup[] = [];
    for (const t of this.tracks) {
      const packets = list.filter((p) => p.trackId === t.id);
      if (packets.length > 0) groups.push({ trackId: t.id, packets });
    }
    return groups;
  }

  /**
   * The moof sequence number of part `n` of segment `index` (HLS) or of segment `index`
   * (DASH): derived from the hub's mark, so it is the same in every worker.
   */
  private static sequenceNumber(index: number, part: number): number {
    return index * MAX_PARTS_PER_SEGMENT + part + 1;
  }

  /** Publishes the buffered packets as the next part; `last` (the segment's end) always does. */
  private cutPart(endMs: number, nextIndependent: boolean, last = false): void {
    const { mark, startMs } = this.current!;
    if (this.packets.length > 0 && (last || this.pendingParts.length < MAX_PARTS_PER_SEGMENT - 1)) {
      const n = this.pendingParts.length;
      const data = this.writer!.fragmentMulti(this.groups(this.packets), CmafSegmenter.sequenceNumber(mark.index, n));
      this.pendingParts.push({ durationMs: endMs - this.partStartMs, uri: `chunk_${startMs}.${n}.m4s`, independent: this.partIndependent, data });
      this.packets = [];
    }
    this.partStartMs = endMs;
    this.partIndependent = nextIndependent;
    this.wake();
  }

  private cutSegment(endMs: number): void {
    const { mark, startMs } = this.current!;
    let data = EMPTY;
    let byTrack: Map<number, Buffer> | undefined;
    let parts: CmafPart[] = [];
    if (this.mode === 'hls') {
      this.cutPart(endMs, true, true);
      parts = this.pendingParts.splice(0);
      // One buffer per segment; the parts become views into it.
      data = Buffer.concat(parts.map((p) => p.data));
      let o = 0;
      for (const part of parts) {
        const n = part.data.length;
        part.data = data.subarray(o, o + n);
        o += n;
      }
    } else {
      byTrack = new Map();
      for (const g of this.groups(this.packets)) byTrack.set(g.trackId, this.writer!.fragment(g.trackId, g.packets, CmafSegmenter.sequenceNumber(mark.index, 0)));
    }
    this.packets = [];
    this.current = undefined;
    this.lastIndex = mark.index;
    if (parts.length > 0 || (byTrack && byTrack.size > 0)) {
      // Same codec settings after a track change: the playlist goes on (with a discontinuity);
      // a new init segment cannot play the older segments, so they go.
      if (this.initBeforeChange !== undefined) {
        if (!this.initBeforeChange.equals(this.initFor() ?? EMPTY)) this.segments.length = 0;
        this.initBeforeChange = undefined;
      }
      const previous = this.segments[this.segments.length - 1];
      this.segments.push({
        sequence: mark.index,
        startMs,
        durationMs: endMs - startMs,
        uri: `chunk_${startMs}.m4s`,
        discontinuity: (previous && previous.epoch !== mark.epoch) || undefined,
        epoch: mark.epoch,
        programDateTimeMs: this.hub.unixZeroMs + startMs,
        parts,
        data,
        byTrack,
        bytes: data.length + [...(byTrack?.values() ?? [])].reduce((n, b) => n + b.length, 0),
      });
      this.targetS = Math.max(this.targetS, targetDurationS(this.segments.slice(-1)));
      trimSegments(this.segments, this.hub.firstMs, this.targetS);
    }
    this.wake();
  }

  private wake(): void {
    this.rendered.invalidate();
    const list = this.waiters;
    this.waiters = [];
    for (const w of list) w();
  }

  /**
   * Resolves true as soon as `ready()` holds, false when it still does not after `timeoutMs`
   * (or the segmenter ended or stopped first). Woken by every new part and segment, no polling.
   */
  waitUntil(ready: () => boolean, timeoutMs: number): Promise<boolean> {
    if (ready()) return Promise.resolve(true);
    if (this.ended || this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const check = (): void => {
        if (ready()) {
          clearTimeout(timer);
          resolve(true);
        } else if (this.ended || this.stopped) {
          clearTimeout(timer);
          resolve(false);
        } else this.waiters.push(check);
      };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(check);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(ready());
      }, timeoutMs);
      this.waiters.push(check);
    });
  }

  /** Resolves once a segment exists (or the stream ended), at most after `timeoutMs`. */
  async waitFirst(timeoutMs: number): Promise<void> {
    await this.waitUntil(() => this.segments.length > 0, timeoutMs);
  }

  /** The LL-HLS segment index of this (HLS) segmenter. */
  index(): SegmentIndex {
    const current = this.ended ? undefined : this.current;
    return {
      segments: this.segments,
      pendingParts: current ? this.pendingParts : [],
      nextSequence: current?.mark.index ?? this.lastIndex + 1,
      discontinuitySequence: discontinuitySequence(this.segments, current?.mark.epoch ?? 0),
      preloadHint: current ? { uri: `chunk_${current.startMs}.${this.pendingParts.length}.m4s` } : undefined,
      targetDurationS: this.targetS,
      ended: this.ended,
    };
  }

  /** EXT-X-TARGETDURATION so far (it only grows). */
  get targetDurationS(): number {
    return this.targetS;
  }

  /** How long a blocking request may be held: three target durations (§6.2.5.2). */
  blockTimeoutMs(): number {
    return 3000 * Math.max(this.targetS, Math.ceil(SEGMENT_TARGET_MS / 1000));
  }

  /** The init segment of every track (HLS) or of one (DASH); undefined when there is none. */
  initFor(trackId?: number): Buffer | undefined {
    if (trackId === undefined) {
      if (this.tracks.length === 0) return undefined;
      this.init ??= initSegment(this.tracks, { firstFrames: this.firstFrames });
      return this.init;
    }
    const track = this.tracks.find((t) => t.id === trackId);
    if (!track) return undefined;
    let init = this.initByTrack.get(trackId);
    if (!init) this.initByTrack.set(trackId, (init = initSegment([track], { firstFrames: this.firstFrames })));
    return init;
  }

  /** Whether `startMs` names the segment being cut now. */
  isInProgress(startMs: number): boolean {
    return !this.ended && this.current?.startMs === startMs;
  }

  findSegment(startMs: number): CmafSegment | undefined {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const s = this.segments[i]!;
      if (s.startMs === startMs) return s;
      if (s.startMs < startMs) break;
    }
    return undefined;
  }

  /** Part `n` of the segment starting at `startMs`, complete or among the pending ones. */
  findPart(startMs: number, n: number): CmafPart | undefined {
    if (this.isInProgress(startMs)) return this.pendingParts[n];
    return this.findSegment(startMs)?.parts[n];
  }

  /** A part request the segmenter may hold: the segment in progress, at most a few parts ahead. */
  mayWaitForPart(startMs: number, n: number): boolean {
    return this.isInProgress(startMs) && n < this.pendingParts.length + MAX_PARTS_AHEAD;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.unsubscribe();
    this.wake();
    this.onStop();
  }
}

const EMPTY = Buffer.alloc(0);

const segmenters = new HubScoped<CmafSegmenter>();

function segmenter(hub: StreamHub, key: string, mode: CmafMode, select: (tracks: readonly Track[]) => TrackSelection): CmafSegmenter {
  const s = segmenters.get(hub, key, (forget) => {
    const made = new CmafSegmenter(hub, mode, select, forget);
    const earlier = hub.continuedFrom && segmenters.peek(hub.continuedFrom, key);
    if (earlier) made.adopt(earlier);
    return made;
  });
  s.touch();
  return s;
}

function hlsSegmenter(hub: StreamHub, video: string, audio: string): CmafSegmenter {
  const query = { video: video === '' ? 'none' : video, audio: audio === '' ? 'none' : audio };
  return segmenter(hub, `${video}_${audio}`, 'hls', (tracks) => selectTracks(tracks, query, CMAF_CAPABILITY));
}

/** DASH: the first video track and every audio track the format carries. */
function dashSegmenter(hub: StreamHub): CmafSegmenter {
  return segmenter(hub, 'dash', 'dash', (tracks) => selectTracks(tracks, { audio: 'all' }, CMAF_CAPABILITY));
}

function supported(t: Track, type: 'video' | 'audio'): boolean {
  return t.type === type && CMAF_CAPABILITY.codecs[type]!.includes(t.codec) && mp4Supports(t);
}

/** The multivariant layout; `bandwidthBps` only where a playlist announces it. */
function hlsPlan(hub: StreamHub, bandwidthBps = 0): VariantPlan {
  return variantPlan(hub.tracks, (t) => (t.type === 'video' || t.type === 'audio') && supported(t, t.type), bandwidthBps);
}

/**
 * The other media playlists of the stream (rendition key `V_A`) with their segmenter when one
 * runs; a rendition nobody plays reports this one's position (the segments are numbered alike).
 */
function otherRenditions(hub: StreamHub, key: string): Array<[string, CmafSegmenter | undefined]> {
  return playlistUris(hlsPlan(hub))
    .map((uri) => uri.slice(0, -'/index.m3u8'.length))
    .filter((k) => k !== key)
    .map((k) => [k, segmenters.peek(hub, k)]);
}

function dashManifest(seg: CmafSegmenter, hub: StreamHub, query: string | undefined): string {
  const reps: DashRepresentation[] = [];
  const avBps = hub.bitrateBps();
  for (const t of seg.trackList) {
    if (t.type !== 'video' && t.type !== 'audio') continue;
    const segments = seg.segments.filter((s) => s.byTrack?.has(t.id));
    const bandwidthBps = t.bps > 0 ? t.bps * 8 : Math.max(1, Math.round(avBps / seg.trackList.length));
    reps.push({ id: String(t.id), track: t as VideoTrack | AudioTrack, bandwidthBps, segments });
  }
  // The time shift buffer reaches back to the oldest listed segment (after a publisher gap the
  // timeline has holes, so the sum of the durations would fall short).
  const now = Date.now();
  const oldestMs = Math.min(...reps.map((r) => r.segments[0]?.startMs ?? Infinity));
  const depth = Number.isFinite(oldestMs) ? { timeShiftBufferDepthMs: Math.max(0, now - (seg.availabilityStartTimeMs + oldestMs)) } : {};
  return mpd(reps, {
    ended: seg.isEnded,
    availabilityStartTimeMs: seg.availabilityStartTimeMs,
    publishTimeMs: now,
    ...depth,
    minimumUpdatePeriodMs: SEGMENT_TARGET_MS,
    cmaf: true,
    ...(query ? { query } : {}),
  });
}

export interface CmafDeps {
  forViewer(name: string): Promise<StreamHub>;
  /** The hub of a stream that ended lately (its playlists end with ENDLIST), if any. */
  endedHub?(name: string): StreamHub | undefined;
}

const TEXT = 'text/plain; charset=utf-8';
const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const NO_CACHE = 'no-cache';
/** A segment or part never changes once cut. */
const IMMUTABLE = 'public, max-age=3600, immutable';

/** `/cmaf/NAME/...`; see the file comment for the URL table. */
export function cmafRoute(deps: CmafDeps): MediaRoute {
  return async (req, res) => {
    const m = /^\/cmaf\/([^/]+)\/(.+)$/.exec(req.path);
    if (!m) return false;
    const rest = m[2]!;
    const top = /^index\.(m3u8|mpd)$/.exec(rest);
    const hls = /^(\d*)_(\d*)\/(index\.m3u8|init\.m4s|chunk_(\d{1,15})(?:\.(\d{1,6}))?\.m4s)$/.exec(rest);
    const dash = /^(\d{1,10})\/(init\.m4s|chunk_(\d{1,15})\.m4s)$/.exec(rest);
    if (!top && !hls && !dash) return false;

    const stream = await resolveStream(m[1]!, req, res, deps.forViewer, deps.endedHub);
    if (!stream) return true;
    const { name, hub, session } = stream;
    const text = (status: number, body: string, extra: Record<string, string> = {}): true => {
      res.send(status, { 'Content-Type': TEXT, 'X-Haze-Session': session, ...extra }, body);
      return true;
    };
    const query = tokenQuery(req);
    const media = (body: Buffer, contentType: string, cache: string): true => {
      res.send(200, { 'Content-Type': contentType, 'Cache-Control': cache, 'X-Haze-Session': session }, body);
      return true;
    };

    if (top?.[1] === 'm3u8') {
      const plan = hlsPlan(hub, hub.bitrateBps());
      if (plan.variants.length === 0) return text(415, `No track of ${name} fits CMAF\n`);
      res.send(200, { 'Content-Type': PLAYLIST_TYPE, 'Cache-Control': NO_CACHE, 'X-Haze-Session': session }, multivariantPlaylist(plan.variants, plan.audioGroups, { version: 7, ...(query ? { query } : {}) }));
      return true;
    }

    if (top?.[1] === 'mpd' || dash) {
      const seg = dashSegmenter(hub);
      if (seg.trackList.length === 0) return text(415, `No track of ${name} fits CMAF\n`);
      if (top) {
        await seg.waitFirst(FIRST_SEGMENT_WAIT_MS);
        res.send(200, { 'Content-Type': 'application/dash+xml', 'Cache-Control': NO_CACHE, 'X-Haze-Session': session }, dashManifest(seg, hub, query));
        return true;
      }
      const trackId = Number(dash![1]);
      const track = seg.trackList.find((t) => t.id === trackId);
      if (!track) return text(404, `No representation ${trackId} in ${name}\n`);
      const contentType = track.type === 'audio' ? 'audio/mp4' : 'video/mp4';
      if (dash![2] === 'init.m4s') {
        await seg.waitFirst(FIRST_SEGMENT_WAIT_MS);
        const init = seg.initFor(trackId);
        return init ? media(init, contentType, NO_CACHE) : text(404, `No init segment for ${trackId}\n`);
      }
      const startMs = Number(dash![3]);
      if (seg.isInProgress(startMs)) await seg.waitUntil(() => !seg.isInProgress(startMs), seg.blockTimeoutMs());
      const data = seg.findSegment(startMs)?.byTrack?.get(trackId);
      return data ? media(data, contentType, IMMUTABLE) : text(404, `Segment ${dash![2]} is not (or no longer) in the live window of ${name}\n`);
    }

    const h = hls!;
    const seg = hlsSegmenter(hub, h[1]!, h[2]!);
    if (seg.trackList.length === 0) return text(404, `No tracks ${h[1]}_${h[2]} in ${name}\n`);
    if (h[3] === 'index.m3u8') {
      let directives;
      try {
        directives = parseBlockingRequest(req.query);
      } catch (err) {
        if (isHazeError(err)) return text(400, `${err.message}\n`);
        throw err;
      }
      await seg.waitFirst(FIRST_SEGMENT_WAIT_MS);
      if (directives.msn !== undefined) {
        const msn = directives.msn;
        const part = directives.part;
        if (isTooFarAhead(seg.index(), msn)) return text(400, `_HLS_msn=${msn} is too far beyond the live edge\n`);
        const ready = await seg.waitUntil(() => isReady(seg.index(), msn, part), seg.blockTimeoutMs());
        if (!ready && !seg.isEnded) return text(503, `msn ${msn}${part === undefined ? '' : ` part ${part}`} did not become available in time\n`, { 'Retry-After': '1' });
      }
      const lowLatency = req.headers['x-mist-llhls'] !== '0';
      const canSkipUntilMs = 6000 * seg.targetDurationS;
      const index = seg.index();
      const renditionReports = lowLatency ? otherRenditions(hub, `${h[1]}_${h[2]}`).map(([key, other]) => renditionReportFor(`../${key}/index.m3u8`, other?.index() ?? index)) : [];
      const skip = lowLatency && directives.skip !== undefined;
      const cacheKey = `${query ?? ''}|${lowLatency}|${skip}|${renditionReports.map((r) => `${r.lastMsn}.${r.lastPart ?? ''}`).join(',')}`;
      const body = seg.rendered.get(cacheKey, () =>
        mediaPlaylist(index, {
          initUri: 'init.m4s',
          ...(query ? { query } : {}),
          ...(lowLatency ? { lowLatency: { partTargetMs: CMAF_PART_TARGET_MS, canSkipUntilMs, renditionReports }, skip } : {}),
          independentSegments: true,
        }),
      );
      res.send(200, { 'Content-Type': PLAYLIST_TYPE, 'Cache-Control': NO_CACHE, 'X-Haze-Session': session }, body);
      return true;
    }
    if (h[3] === 'init.m4s') {
      await seg.waitFirst(FIRST_SEGMENT_WAIT_MS);
      const init = seg.initFor();
      return init ? media(init, 'video/mp4', NO_CACHE) : text(404, `No init segment for ${name}\n`);
    }
    const startMs = Number(h[4]);
    if (h[5] === undefined) {
      // a whole segment still being cut is held until it is complete
      if (seg.isInProgress(startMs)) await seg.waitUntil(() => !seg.isInProgress(startMs), seg.blockTimeoutMs());
      const s = seg.findSegment(startMs);
      return s ? media(s.data, 'video/mp4', IMMUTABLE) : text(404, `Segment ${h[3]} is not (or no longer) in the live window of ${name}\n`);
    }
    const n = Number(h[5]);
    // the preload hint names the next part before it exists: hold the request until it does
    if (!seg.findPart(startMs, n) && seg.mayWaitForPart(startMs, n)) {
      await seg.waitUntil(() => seg.findPart(startMs, n) !== undefined || !seg.isInProgress(startMs), seg.blockTimeoutMs());
    }
    const part = seg.findPart(startMs, n);
    return part ? media(part.data, 'video/mp4', IMMUTABLE) : text(404, `Part ${h[3]} is not (or no longer) in the live window of ${name}\n`);
  };
}
