// HLS playlist writers, RFC 8216bis (draft-pantos-hls-rfc8216bis): §4.4.1-4.4.3 basic and media
// playlist tags, §4.4.4 media segment tags, §4.4.4.9 EXT-X-PART, §4.4.5 EXT-X-SKIP /
// EXT-X-PRELOAD-HINT / EXT-X-RENDITION-REPORT, §4.4.6 multivariant tags (EXT-X-MEDIA,
// EXT-X-STREAM-INF), §6.2.5 delivery directives (_HLS_msn, _HLS_part, _HLS_skip).
// Pure text generation: the index and the options in, the playlist text out.

import type { AudioTrack, Track, VideoTrack } from '../../media/types.js';
import { codecString } from '../../media/codec-string.js';
import { HazeError } from '../../util/errors.js';
import { lastPosition, pendingSequence, type HlsPart, type HlsSegment, type SegmentIndex } from './segment-index.js';

// ---- shared formatting ---------------------------------------------------------------------

/** Seconds with 3 decimals, as EXTINF / DURATION / PART-TARGET carry them. */
export function secondsText(ms: number): string {
  return (Math.round(ms) / 1000).toFixed(3);
}

/** ISO 8601 with milliseconds, UTC (EXT-X-PROGRAM-DATE-TIME). */
export function isoDateTime(ms: number): string {
  return new Date(Math.round(ms)).toISOString();
}

/** A URI with the query suffix appended (`?q` or `&q` when the URI already has a query). */
export function withQuery(uri: string, query: string | undefined): string {
  if (!query) return uri;
  const q = query.startsWith('?') || query.startsWith('&') ? query.slice(1) : query;
  if (!q) return uri;
  return uri + (uri.includes('?') ? '&' : '?') + q;
}

/** A quoted-string attribute value (§4.2): no double quote, CR or LF allowed. */
function quoted(value: string, what: string): string {
  if (/["\r\n]/.test(value)) throw new HazeError('HAZE_ERR_INVALID_ARG', `${what} cannot contain a quote or line break: ${JSON.stringify(value)}`);
  return `"${value}"`;
}

/** A URI line: no line break allowed. */
function uriLine(uri: string): string {
  if (/[\r\n]/.test(uri) || uri.length === 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `bad segment URI ${JSON.stringify(uri)}`);
  return uri;
}

// ---- multivariant playlist -----------------------------------------------------------------

export interface HlsAudioRendition {
  name: string;
  track: AudioTrack;
  /** Media playlist of the rendition; omitted when the audio is muxed into the variant streams. */
  uri?: string;
  default?: boolean;
  autoselect?: boolean;
  /** Language (default: the track's `lang` unless `und`). */
  language?: string;
}

export interface HlsAudioGroup {
  groupId: string;
  renditions: HlsAudioRendition[];
}

export interface HlsVariant {
  /** Media playlist URI. */
  uri: string;
  /** Tracks muxed into this variant's segments (video, and audio unless it comes from a group). */
  tracks: Track[];
  /** GROUP-ID of an audio group whose renditions play with this variant. */
  audioGroup?: string;
  /** Peak bits per second; default: the tracks' (and largest audio rendition's) `bps` × 8. */
  bandwidthBps?: number;
  /** AVERAGE-BANDWIDTH, written only when given. */
  averageBandwidthBps?: number;
}

export interface MultivariantOptions {
  /** EXT-X-VERSION (default 3; 7 suits fMP4/CMAF variants). */
  version?: number;
  /** EXT-X-INDEPENDENT-SEGMENTS (default true: every segment starts at a keyframe). */
  independentSegments?: boolean;
  /** Appended to every URI (tokens). */
  query?: string;
}

function frameRateText(fpks: number): string {
  return (fpks / 1000).toFixed(3);
}

function uniq(list: string[]): string[] {
  return [...new Set(list)];
}

/** The multivariant (master) playlist: audio groups first, then one EXT-X-STREAM-INF per variant. */
export function multivariantPlaylist(variants: readonly HlsVariant[], audioGroups: readonly HlsAudioGroup[], opts: MultivariantOptions = {}): string {
  const lines = ['#EXTM3U', `#EXT-X-VERSION:${opts.version ?? 3}`];
  if (opts.independentSegments ?? true) lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  const groups = new Map<string, HlsAudioGroup>();
  for (const g of audioGroups) {
    if (groups.has(g.groupId)) throw new HazeError('HAZE_ERR_INVALID_ARG', `duplicate audio group ${g.groupId}`);
    groups.set(g.groupId, g);
    for (const r of g.renditions) {
      const attrs = [`TYPE=AUDIO`, `GROUP-ID=${quoted(g.groupId, 'GROUP-ID')}`, `NAME=${quoted(r.name, 'NAME')}`];
      const lang = r.language ?? (r.track.lang && r.track.lang !== 'und' ? r.track.lang : undefined);
      if (lang) attrs.push(`LANGUAGE=${quoted(lang, 'LANGUAGE')}`);
      attrs.push(`DEFAULT=${r.default ? 'YES' : 'NO'}`, `AUTOSELECT=${(r.autoselect ?? r.default) ? 'YES' : 'NO'}`);
      if (r.track.channels > 0) attrs.push(`CHANNELS="${r.track.channels}"`);
      if (r.uri !== undefined) attrs.push(`URI=${quoted(withQuery(r.uri, opts.query), 'URI')}`);
      lines.push(`#EXT-X-MEDIA:${attrs.join(',')}`);
    }
  }
  for (const v of variants) {
    const group = v.audioGroup === undefined ? undefined : groups.get(v.audioGroup);
    if (v.audioGroup !== undefined && !group) throw new HazeError('HAZE_ERR_INVALID_ARG', `variant ${v.uri} names unknown audio group ${v.audioGroup}`);
    const video = v.tracks.find((t): t is VideoTrack => t.type === 'video');
    const codecs: string[] = [];
    let bps = 0;
    for (const t of v.tracks) {
      if (t.type === 'video' || t.type === 'audio') codecs.push(codecString(t));
      bps += t.bps;
    }
    if (group) {
      // CODECS must name every format any rendition of the group may bring (§4.4.6.2).
      let groupBps = 0;
      for (const r of group.renditions) {
        codecs.push(codecString(r.track));
        groupBps = Math.max(groupBps, r.track.bps);
      }
      bps += groupBps;
    }
    const bandwidth = Math.max(1, Math.round(v.bandwidthBps ?? bps * 8));
    const attrs = [`BANDWIDTH=${bandwidth}`];
    if (v.averageBandwidthBps !== undefined) attrs.push(`AVERAGE-BANDWIDTH=${Math.round(v.averageBandwidthBps)}`);
    if (video && video.width > 0 && video.height > 0) attrs.push(`RESOLUTION=${video.width}x${video.height}`);
    if (video && video.fpks > 0) attrs.push(`FRAME-RATE=${frameRateText(video.fpks)}`);
    const list = uniq(codecs);
    if (list.length > 0) attrs.push(`CODECS=${quoted(list.join(','), 'CODECS')}`);
    if (group) attrs.push(`AUDIO=${quoted(group.groupId, 'AUDIO')}`);
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(',')}`, uriLine(withQuery(v.uri, opts.query)));
  }
  return lines.join('\n') + '\n';
}

// ---- media playlist ------------------------------------------------------------------------

export interface HlsRenditionReport {
  /** Media playlist URI of the other rendition (relative to this playlist). */
  uri: string;
  lastMsn: number;
  lastPart?: number;
}

export interface LowLatencyOptions {
  /** PART-TARGET, ms (MistServer: 500). */
  partTargetMs: number;
  /** CAN-SKIP-UNTIL, ms; omitted means delta updates are not offered. At least 6 × target duration. */
  canSkipUntilMs?: number;
  /** Other renditions' positions (EXT-X-RENDITION-REPORT). */
  renditionReports?: HlsRenditionReport[];
  /** Parts are listed for segments ending within this many ms of the live edge (default 3 × target duration). */
  partWindowMs?: number;
}

export interface MediaPlaylistOptions {
  /** fMP4 initialisation segment (EXT-X-MAP); without it the playlist is for TS segments. */
  initUri?: string;
  /** Appended to every URI (tokens). */
  query?: string;
  /** Sliding window: only the newest N complete segments are listed. */
  windowSegments?: number;
  /** EXT-X-PLAYLIST-TYPE (EVENT or VOD). */
  playlistType?: 'EVENT' | 'VOD';
  /** EXT-X-VERSION; default 3 (TS), 7 (fMP4), 9 when a delta update may be served. */
  version?: number;
  /** LL-HLS tags; omitted for classic HLS. */
  lowLatency?: LowLatencyOptions;
  /** Serve a delta update (the client asked `_HLS_skip=YES`); ignored without `canSkipUntilMs`. */
  skip?: boolean;
  /** EXT-X-INDEPENDENT-SEGMENTS (default false in media playlists). */
  independentSegments?: boolean;
}

/**
 * EXT-X-TARGETDURATION: the longest segment in whole seconds, at least 1. From protocol version
 * 6 on, each EXTINF rounded to the nearest integer must be at most the target (RFC 8216
 * §4.3.3.1); older clients expect the target not to be exceeded at all, so it is rounded up.
 */
export function targetDurationS(segments: readonly HlsSegment[], version = 7): number {
  let maxMs = 0;
  for (const s of segments) maxMs = Math.max(maxMs, s.durationMs);
  return Math.max(1, version >= 6 ? Math.round(maxMs / 1000) : Math.ceil(Math.round(maxMs) / 1000));
}

/**
 * How many leading segments a delta update may replace with EXT-X-SKIP (§4.4.5.2, §6.2.5.1):
 * those that end at least CAN-SKIP-UNTIL before the end of the playlist, in playlist time (the
 * sum of EXTINF durations, not media timestamps, which jump across a discontinuity).
 */
export function skippableSegments(segments: readonly HlsSegment[], canSkipUntilMs: number): number {
  let remainingMs = 0;
  for (const s of segments) remainingMs += s.durationMs;
  let n = 0;
  while (n < segments.length) {
    remainingMs -= segments[n]!.durationMs;
    if (remainingMs < canSkipUntilMs) break;
    n++;
  }
  return n;
}

function partLine(p: HlsPart, query: string | undefined): string {
  const attrs = [`DURATION=${secondsText(p.durationMs)}`, `URI=${quoted(withQuery(p.uri, query), 'URI')}`];
  if (p.independent) attrs.push('INDEPENDENT=YES');
  return `#EXT-X-PART:${attrs.join(',')}`;
}

/** A media playlist for one rendition (TS or fMP4, classic or low-latency). */
export function mediaPlaylist(index: SegmentIndex, opts: MediaPlaylistOptions = {}): string {
  const q = opts.query;
  let segments = index.segments;
  let discontinuitySeq = index.discontinuitySequence ?? 0;
  if (opts.windowSegments !== undefined && opts.windowSegments >= 1 && segments.length > opts.windowSegments) {
    const drop = segments.length - Math.floor(opts.windowSegments);
    // Dropped discontinuities move into the discontinuity sequence (§4.4.3.3).
    for (let i = 0; i < drop; i++) if (segments[i]!.discontinuity) discontinuitySeq++;
    segments = segments.slice(drop);
  }
  const ll = opts.lowLatency;
  const canSkip = ll?.canSkipUntilMs !== undefined && ll.canSkipUntilMs > 0;
  const version = opts.version ?? (canSkip ? 9 : opts.initUri !== undefined ? 7 : 3);
  // a live playlist's target duration never changes (§6.2.1): the segmenter may hold a larger one
  const target = Math.max(index.targetDurationS ?? 1, targetDurationS(segments, version));
  const firstSeq = segments[0]?.sequence ?? pendingSequence(index);

  const lines = ['#EXTM3U', `#EXT-X-VERSION:${version}`, `#EXT-X-TARGETDURATION:${target}`];
  if (opts.independentSegments) lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  if (ll) {
    if (!(ll.partTargetMs > 0)) throw new HazeError('HAZE_ERR_INVALID_ARG', `part target ${ll.partTargetMs} ms`);
    const sc = ['CAN-BLOCK-RELOAD=YES'];
    if (canSkip) sc.push(`CAN-SKIP-UNTIL=${secondsText(ll.canSkipUntilMs!)}`);
    sc.push(`PART-HOLD-BACK=${secondsText(3 * ll.partTargetMs)}`);
    lines.push(`#EXT-X-SERVER-CONTROL:${sc.join(',')}`, `#EXT-X-PART-INF:PART-TARGET=${secondsText(ll.partTargetMs)}`);
  }
  lines.push(`#EXT-X-MEDIA-SEQUENCE:${firstSeq}`, `#EXT-X-DISCONTINUITY-SEQUENCE:${discontinuitySeq}`);
  if (opts.playlistType) lines.push(`#EXT-X-PLAYLIST-TYPE:${opts.playlistType}`);
  if (opts.initUri !== undefined) lines.push(`#EXT-X-MAP:URI=${quoted(withQuery(opts.initUri, q), 'URI')}`);

  let skipped = 0;
  // an ended playlist is always sent whole (8216bis §6.2.5.1)
  if (canSkip && opts.skip && !index.ended) {
    skipped = skippableSegments(segments, ll!.canSkipUntilMs!);
    if (skipped > 0) lines.push(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skipped}`);
  }

  // Parts are listed only near the live edge; older segments are addressed whole.
  const last = segments[segments.length - 1];
  const edgeMs = last ? last.startMs + last.durationMs : 0;
  const partWindowMs = ll?.partWindowMs ?? 3 * target * 1000;
  for (let i = skipped; i < segments.length; i++) {
    const s = segments[i]!;
    // A skipped segment's discontinuity is counted by the client from the full playlist; the
    // first listed segment after a skip still carries its own tag.
    if (s.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (s.programDateTimeMs !== undefined) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${isoDateTime(s.programDateTimeMs)}`);
    if (ll && s.parts && !index.ended && edgeMs - (s.startMs + s.durationMs) < partWindowMs) {
      for (const p of s.parts) lines.push(partLine(p, q));
    }
    lines.push(`#EXTINF:${secondsText(s.durationMs)},`, uriLine(withQuery(s.uri, q)));
  }
  if (ll && !index.ended) {
    for (const p of index.pendingParts ?? []) lines.push(partLine(p, q));
    if (index.preloadHint) lines.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI=${quoted(withQuery(index.preloadHint.uri, q), 'URI')}`);
    for (const r of ll.renditionReports ?? []) {
      const attrs = [`URI=${quoted(withQuery(r.uri, q), 'URI')}`, `LAST-MSN=${r.lastMsn}`];
      if (r.lastPart !== undefined) attrs.push(`LAST-PART=${r.lastPart}`);
      lines.push(`#EXT-X-RENDITION-REPORT:${attrs.join(',')}`);
    }
  }
  if (index.ended) lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}

/** This rendition's position, as another rendition's playlist reports it. */
export function renditionReportFor(uri: string, index: SegmentIndex): HlsRenditionReport {
  const pos = lastPosition(index);
  return pos.part === undefined ? { uri, lastMsn: pos.msn } : { uri, lastMsn: pos.msn, lastPart: pos.part };
}

// ---- blocking playlist reload (§6.2.5.2) ---------------------------------------------------

export interface BlockingRequest {
  msn?: number;
  part?: number;
  /** `_HLS_skip=YES` (segments) or `v2` (segments and date ranges). */
  skip?: 'YES' | 'v2';
}

const MAX_DIRECTIVE = 2 ** 53 - 1;

function directiveInt(name: string, value: string): number {
  if (!/^[0-9]{1,16}$/.test(value)) throw new HazeError('HAZE_ERR_INVALID_ARG', `${name} must be a decimal integer, got ${JSON.stringify(value.slice(0, 40))}`, { status: 400, fatal: false });
  const n = Number(value);
  if (n > MAX_DIRECTIVE) throw new HazeError('HAZE_ERR_INVALID_ARG', `${name} out of range`, { status: 400, fatal: false });
  return n;
}

/**
 * The delivery directives of a playlist request (`_HLS_msn`, `_HLS_part`, `_HLS_skip`). Takes the
 * query string (with or without `?`) or parsed parameters. Bad values, repeats, and `_HLS_part`
 * without `_HLS_msn` are a HazeError HAZE_ERR_INVALID_ARG (HTTP 400, as §6.2.5.2 asks).
 */
export function parseBlockingRequest(query: string | URLSearchParams): BlockingRequest {
  const params = typeof query === 'string' ? new URLSearchParams(query.startsWith('?') ? query.slice(1) : query) : query;
  const one = (name: string): string | undefined => {
    const all = params.getAll(name);
    if (all.length > 1) throw new HazeError('HAZE_ERR_INVALID_ARG', `${name} given ${all.length} times`, { status: 400, fatal: false });
    return all[0];
  };
  const out: BlockingRequest = {};
  const msn = one('_HLS_msn');
  const part = one('_HLS_part');
  const skip = one('_HLS_skip');
  if (msn !== undefined) out.msn = directiveInt('_HLS_msn', msn);
  if (part !== undefined) {
    if (msn === undefined) throw new HazeError('HAZE_ERR_INVALID_ARG', '_HLS_part without _HLS_msn', { status: 400, fatal: false });
    out.part = directiveInt('_HLS_part', part);
  }
  if (skip !== undefined) {
    if (skip !== 'YES' && skip !== 'v2') throw new HazeError('HAZE_ERR_INVALID_ARG', `_HLS_skip must be YES or v2, got ${JSON.stringify(skip.slice(0, 40))}`, { status: 400, fatal: false });
    out.skip = skip;
  }
  return out;
}

/**
 * Whether a blocking reload for (msn, part) can be answered now: the playlist holds segment
 * `msn` complete, or (with `part`) at least part `part` of segment `msn`. An ended playlist
 * answers at once. Without `part` the whole segment must be complete (§6.2.5.2).
 */
export function isReady(index: SegmentIndex, msn: number, part?: number): boolean {
  if (index.ended) return true;
  const pendingSeq = pendingSequence(index);
  if (msn < pendingSeq) return true;
  if (msn > pendingSeq || part === undefined) return false;
  return part < (index.pendingParts?.length ?? 0);
}

/**
 * A request more than two segments beyond the last one in the playlist is answered 400 at once
 * rather than held (§6.2.5.2).
 */
export function isTooFarAhead(index: SegmentIndex, msn: number): boolean {
  if (index.ended) return false;
  return msn > pendingSequence(index) + 1;
}
