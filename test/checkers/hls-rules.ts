// Conformance checker for HLS playlists: RFC 8216 §4 (playlist format), §6.2.1/§6.2.2 (what a
// live server may change between reloads), §7 (protocol versions), and draft-pantos-hls-
// rfc8216bis for LL-HLS: §4.4.3.7 EXT-X-PART-INF, §4.4.3.8 EXT-X-SERVER-CONTROL, §4.4.4.9
// EXT-X-PART, §4.4.5.2 EXT-X-SKIP, §4.4.5.3 EXT-X-PRELOAD-HINT, §4.4.5.4 EXT-X-RENDITION-REPORT,
// §6.2.5 delivery directives. Test-only and pure: playlist text in, a list of violations out
// (empty = valid). Each violation names its rule's section, the line number and the line.
// Rules stricter than the RFC (Haze's own promises) say "house rule".

import { readPlaylist, violation, type Line, type PlaylistLine, type TagLine } from './m3u8.js';

export interface HlsPartInfo {
  uri: string;
  durationS: number;
  independent: boolean;
  gap: boolean;
  line: Line;
}

export interface HlsSegmentInfo {
  msn: number;
  uri: string;
  durationS: number;
  discontinuity: boolean;
  programDateTime: string | undefined;
  /** EXT-X-MAP URI in effect for this segment. */
  mapUri: string | undefined;
  /** Partial segments listed before the EXTINF (possibly only the newest ones, §6.2.2). */
  parts: HlsPartInfo[];
  /** The part list is the whole segment (so part i has Part Index i). */
  partsComplete: boolean;
  line: Line;
}

export interface MediaPlaylistInfo {
  version: number | undefined;
  targetDurationS: number | undefined;
  mediaSequence: number;
  discontinuitySequence: number;
  /** SKIPPED-SEGMENTS of an EXT-X-SKIP (delta update), else 0. */
  skippedSegments: number;
  endList: boolean;
  playlistType: string | undefined;
  independentSegments: boolean;
  serverControl: Map<string, string> | undefined;
  partTargetS: number | undefined;
  /** Listed segments; the first has msn `mediaSequence + skippedSegments`. */
  segments: HlsSegmentInfo[];
  /** Parts after the last EXTINF: the segment being cut (msn = last msn + 1), from Part Index 0. */
  pendingParts: HlsPartInfo[];
  preloadHints: Array<{ type: string; uri: string; line: Line }>;
  renditionReports: Array<{ uri: string; lastMsn: number | undefined; lastPart: number | undefined; line: Line }>;
}

export interface MediaPlaylistCheckOptions {
  /** The playlist answers a request with `_HLS_skip=YES|v2`: it may (and must, when it can) be a delta update. */
  deltaRequested?: boolean;
  /** The playlist answers a blocking request (`_HLS_msn`, `_HLS_part`): it must hold that position. */
  blockingRequest?: { msn: number; part?: number };
  /** Treat segments as fMP4 (needing EXT-X-MAP) whatever their URI says; default: by extension. */
  fmp4?: boolean;
  /** Rounding slack per printed duration, seconds (default 0.001). */
  toleranceS?: number;
  /** House rule: the first part of every segment is INDEPENDENT=YES (default true). */
  independentFirstPart?: boolean;
  /**
   * Segments may list only their newest parts (8216bis §6.2.2 removes parts oldest first); by
   * default every segment that lists parts must list all of them, as Haze does.
   */
  allowPartialPartLists?: boolean;
}

const FMP4_EXT = /\.(m4s|mp4|m4v|m4a|cmfv|cmfa|cmft|cmfm)$/i;

function isFmp4Uri(uri: string): boolean {
  return FMP4_EXT.test(uri.split(/[?#]/)[0]!);
}

function num(v: string | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

interface Walk {
  playlist: MediaPlaylistInfo;
  violations: string[];
  lines: PlaylistLine[];
  /** Line of EXT-X-PART-INF, EXT-X-SKIP, EXT-X-ENDLIST, first segment start. */
  partInfLine: number;
  skipLine: number;
}

const MULTIVARIANT_ONLY = new Set(['multivariant']);
const MEDIA_ONLY = new Set(['media', 'segment', 'metadata']);

/** Reads a media playlist into segments and parts; syntax and structure violations included. */
export function parseMediaPlaylist(text: string, opts: { fmp4?: boolean } = {}): { playlist: MediaPlaylistInfo; violations: string[] } {
  return walkMedia(text, opts).playlistAndViolations;
}

function walkMedia(text: string, opts: { fmp4?: boolean }): { playlistAndViolations: { playlist: MediaPlaylistInfo; violations: string[] }; walk: Walk } {
  const out: string[] = [];
  const lines = readPlaylist(text, out);
  const pl: MediaPlaylistInfo = {
    version: undefined,
    targetDurationS: undefined,
    mediaSequence: 0,
    discontinuitySequence: 0,
    skippedSegments: 0,
    endList: false,
    playlistType: undefined,
    independentSegments: false,
    serverControl: undefined,
    partTargetS: undefined,
    segments: [],
    pendingParts: [],
    preloadHints: [],
    renditionReports: [],
  };
  const walk: Walk = { playlist: pl, violations: out, lines, partInfLine: -1, skipLine: -1 };
  const first = lines[0];
  if (!first || first.kind !== 'tag' || first.name !== 'EXTM3U' || first.no !== 1) {
    out.push(violation('RFC 8216 §4.3.1.1', first, 'the first line must be #EXTM3U'));
  }

  // What applies to the segment being read.
  let disc = false;
  let pdt: string | undefined;
  let extinf: { durationS: number; line: TagLine } | undefined;
  let parts: HlsPartInfo[] = [];
  let mapUri: string | undefined;
  let segmentStarted = false;
  let endListLine: TagLine | undefined;
  let firstDiscLine: TagLine | undefined;

  for (const l of lines) {
    if (endListLine && l !== endListLine) {
      out.push(violation('RFC 8216 §4.3.3.4', l, 'content after EXT-X-ENDLIST (house rule: ENDLIST is the last line)'));
    }
    if (l.kind === 'uri') {
      segmentStarted = true;
      if (!extinf) {
        out.push(violation('RFC 8216 §4.3.2.1', l, 'segment URI without an EXTINF (EXTINF is REQUIRED for each Media Segment)'));
      }
      const msn = pl.mediaSequence + pl.skippedSegments + pl.segments.length;
      if (isFmp4Uri(l.text) || opts.fmp4) {
        if (mapUri === undefined) out.push(violation('RFC 8216 §3.3', l, 'fMP4 segment without a preceding EXT-X-MAP (Media Initialization Section REQUIRED)'));
      }
      pl.segments.push({
        msn,
        uri: l.text,
        durationS: extinf?.durationS ?? Number.NaN,
        discontinuity: disc,
        programDateTime: pdt,
        mapUri,
        parts,
        partsComplete: false,
        line: l,
      });
      disc = false;
      pdt = undefined;
      extinf = undefined;
      parts = [];
      continue;
    }
    const spec = l.spec;
    if (!spec) continue;
    if (MULTIVARIANT_ONLY.has(spec.kind)) {
      out.push(violation('RFC 8216 §4.1', l, `multivariant tag ${l.name} in a media playlist (a playlist is one or the other)`));
      continue;
    }
    const a = l.attrs;
    switch (l.name) {
      case 'EXT-X-VERSION':
        pl.version = num(l.value);
        break;
      case 'EXT-X-TARGETDURATION':
        pl.targetDurationS ??= num(l.value);
        break;
      case 'EXT-X-MEDIA-SEQUENCE':
        if (segmentStarted) out.push(violation(spec.section, l, 'EXT-X-MEDIA-SEQUENCE after the first Media Segment (MUST appear before it)'));
        else pl.mediaSequence = num(l.value) ?? 0;
        break;
      case 'EXT-X-DISCONTINUITY-SEQUENCE':
        if (segmentStarted) out.push(violation(spec.section, l, 'EXT-X-DISCONTINUITY-SEQUENCE after the first Media Segment (MUST appear before it)'));
        else pl.discontinuitySequence = num(l.value) ?? 0;
        if (firstDiscLine) out.push(violation(spec.section, l, 'EXT-X-DISCONTINUITY-SEQUENCE after an EXT-X-DISCONTINUITY (MUST appear before any)'));
        break;
      case 'EXT-X-ENDLIST':
        pl.endList = true;
        endListLine = l;
        break;
      case 'EXT-X-PLAYLIST-TYPE':
        pl.playlistType = l.value;
        break;
      case 'EXT-X-INDEPENDENT-SEGMENTS':
        pl.independentSegments = true;
        break;
      case 'EXT-X-SERVER-CONTROL':
        pl.serverControl = a;
        break;
      case 'EXT-X-PART-INF':
        pl.partTargetS = num(a?.get('PART-TARGET'));
        walk.partInfLine = l.no;
        break;
      case 'EXTINF': {
        segmentStarted = true;
        if (extinf) out.push(violation(spec.section, l, `second EXTINF before the URI of the segment of line ${extinf.line.no}`));
        const m = /^([0-9]+(?:\.[0-9]+)?),/.exec(l.value ?? '');
        extinf = { durationS: m ? Number(m[1]) : Number.NaN, line: l };
        break;
      }
      case 'EXT-X-DISCONTINUITY':
        firstDiscLine ??= l;
        if (parts.length > 0) out.push(violation('8216bis §4.4.4.9', l, 'EXT-X-DISCONTINUITY after the first EXT-X-PART of its segment (MUST appear before it)'));
        disc = true;
        break;
      case 'EXT-X-PROGRAM-DATE-TIME':
        if (parts.length > 0) out.push(violation('8216bis §4.4.4.9', l, 'EXT-X-PROGRAM-DATE-TIME after the first EXT-X-PART of its segment (MUST appear before it)'));
        pdt = l.value;
        break;
      case 'EXT-X-MAP':
        if (parts.length > 0) out.push(violation('8216bis §4.4.4.9', l, 'EXT-X-MAP after the first EXT-X-PART of its segment (MUST appear before it)'));
        mapUri = a?.get('URI');
        break;
      case 'EXT-X-KEY':
        if (parts.length > 0) out.push(violation('8216bis §4.4.4.9', l, 'EXT-X-KEY after the first EXT-X-PART of its segment (MUST appear before it)'));
        break;
      case 'EXT-X-PART': {
        segmentStarted = true;
        if (walk.partInfLine < 0) out.push(violation('8216bis §4.4.3.7', l, 'EXT-X-PART before (or without) EXT-X-PART-INF'));
        const uri = a?.get('URI') ?? '';
        if ((isFmp4Uri(uri) || opts.fmp4) && mapUri === undefined) out.push(violation('RFC 8216 §3.3', l, 'fMP4 part without a preceding EXT-X-MAP'));
        parts.push({ uri, durationS: Number(a?.get('DURATION') ?? Number.NaN), independent: a?.get('INDEPENDENT') === 'YES', gap: a?.get('GAP') === 'YES', line: l });
        break;
      }
      case 'EXT-X-SKIP':
        walk.skipLine = l.no;
        if (segmentStarted) out.push(violation(spec.section, l, 'EXT-X-SKIP after the first listed segment (it replaces the oldest segments)'));
        else pl.skippedSegments = num(a?.get('SKIPPED-SEGMENTS')) ?? 0;
        break;
      case 'EXT-X-PRELOAD-HINT':
        pl.preloadHints.push({ type: a?.get('TYPE') ?? '', uri: a?.get('URI') ?? '', line: l });
        break;
      case 'EXT-X-RENDITION-REPORT':
        pl.renditionReports.push({ uri: a?.get('URI') ?? '', lastMsn: num(a?.get('LAST-MSN')), lastPart: num(a?.get('LAST-PART')), line: l });
        break;
      default:
        break;
    }
  }
  if (extinf) out.push(violation('RFC 8216 §4.3.2.1', extinf.line, 'EXTINF without a segment URI after it'));
  if ((disc || pdt !== undefined) && parts.length === 0) {
    out.push(violation('RFC 8216 §4.3.2', undefined, 'EXT-X-DISCONTINUITY or EXT-X-PROGRAM-DATE-TIME at the end applies to no segment'));
  }
  pl.pendingParts = parts;

  // Part lists are removed oldest first (§6.2.2), so a segment after one that still lists parts
  // lists all of its own; the first one is whole when its parts add up to its EXTINF.
  let prevHadParts = false;
  for (const s of pl.segments) {
    if (s.parts.length > 0) {
      const sum = s.parts.reduce((t, p) => t + p.durationS, 0);
      s.partsComplete = prevHadParts || Math.abs(sum - s.durationS) <= 0.001 * (s.parts.length + 1);
    }
    prevHadParts = s.parts.length > 0;
  }
  return { playlistAndViolations: { playlist: pl, violations: out }, walk };
}

/** Every violation of the RFC 8216 / rfc8216bis media playlist rules in `text`. */
export function checkMediaPlaylist(text: string, opts: MediaPlaylistCheckOptions = {}): string[] {
  const { walk } = walkMedia(text, opts);
  const pl = walk.playlist;
  const out = walk.violations;
  const tol = opts.toleranceS ?? 0.001;
  const lines = walk.lines;
  const tag = (name: string): TagLine | undefined => lines.find((l): l is TagLine => l.kind === 'tag' && l.name === name);

  // ---- target duration (§4.3.3.1) and segment durations ----
  const td = pl.targetDurationS;
  const tdLine = tag('EXT-X-TARGETDURATION');
  if (!tdLine) out.push(violation('RFC 8216 §4.3.3.1', undefined, 'EXT-X-TARGETDURATION is missing (REQUIRED)'));
  const version = pl.version ?? 1;
  for (const s of pl.segments) {
    if (td === undefined || Number.isNaN(s.durationS)) continue;
    // Version 6 changed the target duration to the maximum rounded to the nearest integer (§7).
    const over = version >= 6 ? Math.round(s.durationS) > td : s.durationS > td;
    if (over) {
      out.push(violation('RFC 8216 §4.3.3.1', s.line, `EXTINF ${s.durationS} ${version >= 6 ? `rounds to ${Math.round(s.durationS)}, more than` : 'exceeds'} EXT-X-TARGETDURATION ${td}`));
    }
  }

  // ---- protocol version (§7 / 8216bis §8) ----
  const needs: Array<[number, string]> = [];
  for (const l of lines) {
    if (l.kind !== 'tag') continue;
    if (l.name === 'EXTINF' && /^[0-9]+\.[0-9]+,/.test(l.value ?? '')) needs.push([3, `floating-point EXTINF (line ${l.no})`]);
    if (l.name === 'EXT-X-KEY' && l.attrs?.has('IV')) needs.push([2, `EXT-X-KEY IV (line ${l.no})`]);
    if (l.name === 'EXT-X-KEY' && (l.attrs?.get('METHOD') === 'SAMPLE-AES' || l.attrs?.has('KEYFORMAT') || l.attrs?.has('KEYFORMATVERSIONS'))) needs.push([5, `EXT-X-KEY SAMPLE-AES/KEYFORMAT (line ${l.no})`]);
    if (l.name === 'EXT-X-BYTERANGE' || l.name === 'EXT-X-I-FRAMES-ONLY') needs.push([4, `${l.name} (line ${l.no})`]);
    if (l.name === 'EXT-X-MAP') needs.push(tag('EXT-X-I-FRAMES-ONLY') ? [5, `EXT-X-MAP (line ${l.no})`] : [6, `EXT-X-MAP without EXT-X-I-FRAMES-ONLY (line ${l.no})`]);
    if (l.name === 'EXT-X-DEFINE') needs.push([l.attrs?.has('QUERYPARAM') ? 11 : 8, `EXT-X-DEFINE (line ${l.no})`]);
    if (l.name === 'EXT-X-SKIP') needs.push([l.attrs?.has('RECENTLY-REMOVED-DATERANGES') ? 10 : 9, `EXT-X-SKIP (line ${l.no})`]);
    if (l.attrs && [...l.attrs.keys()].some((k) => k.startsWith('REQ-'))) needs.push([12, `a REQ- attribute (line ${l.no})`]);
  }
  const vLine = tag('EXT-X-VERSION');
  for (const [need, why] of needs) {
    if (version < need) {
      out.push(violation('RFC 8216 §7', vLine, vLine ? `EXT-X-VERSION ${version} is below ${need}, required by ${why}` : `no EXT-X-VERSION, but ${why} requires version ${need}`));
      break;
    }
  }
  if (version >= 7 && tag('EXT-X-ALLOW-CACHE')) out.push(violation('RFC 8216 §7', tag('EXT-X-ALLOW-CACHE'), 'EXT-X-ALLOW-CACHE was removed in version 7'));

  // ---- program date time: checked per line by the reader; each applies to a segment ----

  // ---- LL-HLS ----
  checkLowLatency(walk, opts, tol, out);

  // ---- blocking reload (8216bis §6.2.5.2) ----
  if (opts.blockingRequest && !pl.endList) {
    const { msn, part } = opts.blockingRequest;
    const lastMsn = pl.mediaSequence + pl.skippedSegments + pl.segments.length - 1;
    const last = pl.segments[pl.segments.length - 1];
    let ok: boolean;
    if (part === undefined) ok = lastMsn >= msn;
    else if (lastMsn >= msn + 1) ok = true;
    else if (lastMsn === msn) ok = last !== undefined && (part < last.parts.length || pl.pendingParts.length > 0);
    else if (lastMsn === msn - 1) ok = pl.pendingParts.length > part;
    else ok = false;
    if (!ok) {
      out.push(
        violation('8216bis §6.2.5.2', undefined, `blocking request _HLS_msn=${msn}${part === undefined ? '' : `&_HLS_part=${part}`} answered with a playlist that does not hold it (last msn ${lastMsn}, ${pl.pendingParts.length} pending parts)`),
      );
    }
  }
  return out;
}

function checkLowLatency(walk: Walk, opts: MediaPlaylistCheckOptions, tol: number, out: string[]): void {
  const pl = walk.playlist;
  const lines = walk.lines;
  const td = pl.targetDurationS;
  const sc = pl.serverControl;
  const scLine = lines.find((l): l is TagLine => l.kind === 'tag' && l.name === 'EXT-X-SERVER-CONTROL');
  const partInfLine = lines.find((l): l is TagLine => l.kind === 'tag' && l.name === 'EXT-X-PART-INF');
  const allParts = [...pl.segments.flatMap((s) => s.parts), ...pl.pendingParts];
  const pt = pl.partTargetS;

  if (sc) {
    const f = (k: string): number | undefined => (sc.has(k) ? Number(sc.get(k)) : undefined);
    const canSkip = f('CAN-SKIP-UNTIL');
    if (canSkip !== undefined && td !== undefined && canSkip < 6 * td) out.push(violation('8216bis §4.4.3.8', scLine, `CAN-SKIP-UNTIL ${canSkip} is less than six times the target duration ${td}`));
    if (sc.has('CAN-SKIP-DATERANGES') && canSkip === undefined) out.push(violation('8216bis §4.4.3.8', scLine, 'CAN-SKIP-DATERANGES without CAN-SKIP-UNTIL'));
    const holdBack = f('HOLD-BACK');
    if (holdBack !== undefined && td !== undefined && holdBack < 3 * td) out.push(violation('8216bis §4.4.3.8', scLine, `HOLD-BACK ${holdBack} is less than three times the target duration ${td}`));
    const phb = f('PART-HOLD-BACK');
    if (pt !== undefined && phb === undefined) out.push(violation('8216bis §4.4.3.8', scLine, 'PART-HOLD-BACK is REQUIRED with EXT-X-PART-INF'));
    if (pt !== undefined && phb !== undefined && phb < 3 * pt - 1e-9) {
      out.push(violation('8216bis §4.4.3.8', scLine, `PART-HOLD-BACK ${phb} is less than three times PART-TARGET ${pt} (MUST be >= 2x, SHOULD be >= 3x; Apple HLS authoring spec 14.3: MUST >= 3x)`));
    }
  } else if (pt !== undefined) {
    out.push(violation('8216bis §4.4.3.8', partInfLine, 'EXT-X-PART-INF without EXT-X-SERVER-CONTROL PART-HOLD-BACK (REQUIRED)'));
  }
  if (allParts.length > 0 && !partInfLine) out.push(violation('8216bis §4.4.3.7', allParts[0]!.line, 'EXT-X-PART without EXT-X-PART-INF (REQUIRED when parts are present)'));
  if (pt !== undefined && td !== undefined && pt > td) out.push(violation('8216bis §4.4.3.7', partInfLine, `PART-TARGET ${pt} exceeds the target duration ${td}`));
  if (pl.endList && pl.pendingParts.length > 0) out.push(violation('8216bis §4.4.4.9', pl.pendingParts[0]!.line, 'parts after the last segment of an ended playlist'));

  // Part durations (§4.4.4.9): at most PART-TARGET; at least 85 % of it except INDEPENDENT or
  // GAP parts, parts followed by a GAP part, and the final part of a parent segment.
  if (pt !== undefined) {
    const groups: Array<{ parts: HlsPartInfo[]; final: boolean }> = pl.segments.map((s) => ({ parts: s.parts, final: true }));
    groups.push({ parts: pl.pendingParts, final: false });
    for (const g of groups) {
      g.parts.forEach((p, i) => {
        if (p.durationS > pt + 1e-9) out.push(violation('8216bis §4.4.4.9', p.line, `part DURATION ${p.durationS} exceeds PART-TARGET ${pt}`));
        const isFinal = g.final && i === g.parts.length - 1;
        const exempt = p.independent || p.gap || g.parts[i + 1]?.gap === true || isFinal || (!g.final && i === g.parts.length - 1);
        if (!exempt && p.durationS < 0.85 * pt - 1e-9) out.push(violation('8216bis §4.4.4.9', p.line, `part DURATION ${p.durationS} is below 85% of PART-TARGET ${pt}`));
      });
    }
  }
  // Parts of a complete segment hold the same media as the segment (8216bis §3.2).
  for (const s of pl.segments) {
    if (s.parts.length === 0) continue;
    const sum = s.parts.reduce((t, p) => t + p.durationS, 0);
    const slack = tol * (s.parts.length + 1);
    const complete = opts.allowPartialPartLists ? s.partsComplete : true;
    if (complete ? Math.abs(sum - s.durationS) > slack : sum > s.durationS + slack) {
      out.push(violation('8216bis §3.2', s.line, `parts add up to ${sum.toFixed(3)} s, the segment's EXTINF is ${s.durationS}`));
    }
    if (opts.independentFirstPart !== false && complete && !s.parts[0]!.independent) {
      out.push(violation('8216bis §4.4.4.9', s.parts[0]!.line, 'first part of a segment lacks INDEPENDENT=YES (house rule: every segment starts with a keyframe)'));
    }
  }
  if (opts.independentFirstPart !== false && pl.pendingParts.length > 0 && !pl.pendingParts[0]!.independent) {
    out.push(violation('8216bis §4.4.4.9', pl.pendingParts[0]!.line, 'first part of the segment in progress lacks INDEPENDENT=YES (house rule)'));
  }

  // Preload hints (§4.4.5.3).
  const byType = new Map<string, number>();
  for (const h of pl.preloadHints) {
    const n = (byType.get(h.type) ?? 0) + 1;
    byType.set(h.type, n);
    if (n === 2) out.push(violation('8216bis §4.4.5.3', h.line, `more than one EXT-X-PRELOAD-HINT of TYPE ${h.type} (§6.2.6: SHOULD NOT; clients use the first)`));
    if (pl.endList) out.push(violation('8216bis §4.4.5.3', h.line, 'EXT-X-PRELOAD-HINT in a playlist with EXT-X-ENDLIST (MUST NOT)'));
    if (h.type === 'PART' && allParts.some((p) => p.uri === h.uri)) out.push(violation('8216bis §4.4.5.3', h.line, `the hinted part ${h.uri} is already listed`));
    if (h.type === 'PART' && pt === undefined) out.push(violation('8216bis §4.4.5.3', h.line, 'a PART preload hint in a playlist without EXT-X-PART-INF'));
  }

  // Rendition reports (§4.4.5.4).
  for (const r of pl.renditionReports) {
    if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(r.uri)) out.push(violation('8216bis §4.4.5.4', r.line, 'URI MUST be relative to the media playlist'));
    if (r.lastPart !== undefined && r.lastMsn === undefined) out.push(violation('8216bis §4.4.5.4', r.line, 'LAST-PART without LAST-MSN'));
  }

  // Delta updates (§4.4.5.2, §6.2.5.1).
  const skipLine = walk.skipLine >= 0 ? lines.find((l) => l.no === walk.skipLine) : undefined;
  const canSkip = sc?.has('CAN-SKIP-UNTIL') ? Number(sc.get('CAN-SKIP-UNTIL')) : undefined;
  if (skipLine) {
    if (!opts.deltaRequested) out.push(violation('8216bis §6.2.5.1', skipLine, 'EXT-X-SKIP in a playlist that does not answer an _HLS_skip request (only delta updates carry it)'));
    if (canSkip === undefined) out.push(violation('8216bis §6.2.5.1', skipLine, 'EXT-X-SKIP in a playlist without CAN-SKIP-UNTIL'));
    if (pl.endList) out.push(violation('8216bis §6.2.5.1', skipLine, 'EXT-X-SKIP in an ended playlist (the server MUST ignore _HLS_skip there)'));
  }
  if (opts.deltaRequested && canSkip !== undefined && !pl.endList && td !== undefined) {
    // The skip boundary lies CAN-SKIP-UNTIL before the end of the last complete segment.
    const total = pl.segments.reduce((t, s) => t + s.durationS, 0);
    const boundary = total - canSkip;
    let end = 0;
    for (const s of pl.segments) {
      end += s.durationS;
      if (end < boundary - tol * pl.segments.length) {
        out.push(violation('8216bis §6.2.5.1', s.line, `segment ${s.msn} lies wholly before the skip boundary of a delta update request but is listed (MUST be replaced by EXT-X-SKIP)`));
        break;
      }
    }
    if (pl.skippedSegments > 0 && total < canSkip - td - tol * pl.segments.length) {
      out.push(violation('8216bis §6.2.5.1', skipLine, `delta update lists only ${total.toFixed(3)} s, less than CAN-SKIP-UNTIL ${canSkip} (skipped segments within the skip boundary)`));
    }
  }
}

// ---- multivariant playlist -----------------------------------------------------------------

/** RFC 6381 codec list: comma-separated `fourcc[.params]` entries. */
const CODEC = /^[A-Za-z0-9-]{4}(\.[A-Za-z0-9]+)*$/;

/** Every violation of the RFC 8216 multivariant playlist rules in `text`. */
export function checkMultivariantPlaylist(text: string): string[] {
  const out: string[] = [];
  const lines = readPlaylist(text, out);
  const first = lines[0];
  if (!first || first.kind !== 'tag' || first.name !== 'EXTM3U' || first.no !== 1) out.push(violation('RFC 8216 §4.3.1.1', first, 'the first line must be #EXTM3U'));

  const groups = new Map<string, Map<string, TagLine[]>>(); // TYPE -> GROUP-ID -> renditions
  const variants: TagLine[] = [];
  let versionLine: TagLine | undefined;
  let awaitingUri: TagLine | undefined;
  for (const l of lines) {
    if (l.kind === 'uri') {
      if (!awaitingUri) out.push(violation('RFC 8216 §4.3.4.2', l, 'URI line not preceded by EXT-X-STREAM-INF'));
      awaitingUri = undefined;
      continue;
    }
    if (awaitingUri && l.spec) {
      out.push(violation('RFC 8216 §4.3.4.2', awaitingUri, 'EXT-X-STREAM-INF is not followed by its URI line'));
      awaitingUri = undefined;
    }
    if (!l.spec) continue;
    if (MEDIA_ONLY.has(l.spec.kind)) {
      out.push(violation('RFC 8216 §4.1', l, `media playlist tag ${l.name} in a multivariant playlist (a playlist is one or the other)`));
      continue;
    }
    if (l.name === 'EXT-X-VERSION') versionLine = l;
    if (l.name === 'EXT-X-STREAM-INF') {
      variants.push(l);
      awaitingUri = l;
    }
    if (l.name === 'EXT-X-MEDIA' && l.attrs) {
      const type = l.attrs.get('TYPE') ?? '';
      const gid = l.attrs.get('GROUP-ID') ?? '';
      let byId = groups.get(type);
      if (!byId) groups.set(type, (byId = new Map()));
      const list = byId.get(gid) ?? [];
      list.push(l);
      byId.set(gid, list);
      checkRendition(l, out);
    }
  }
  if (awaitingUri) out.push(violation('RFC 8216 §4.3.4.2', awaitingUri, 'EXT-X-STREAM-INF is not followed by its URI line'));
  if (variants.length === 0) out.push(violation('RFC 8216 §4.3.4.2', undefined, 'no EXT-X-STREAM-INF: nothing to play'));

  for (const [type, byId] of groups) {
    for (const [gid, list] of byId) {
      const defaults = list.filter((r) => r.attrs?.get('DEFAULT') === 'YES');
      if (defaults.length > 1) out.push(violation('RFC 8216 §4.3.4.1.1', defaults[1], `group ${type} "${gid}" has more than one DEFAULT=YES member (MUST NOT)`));
      const names = new Set<string>();
      for (const r of list) {
        const name = r.attrs?.get('NAME') ?? '';
        if (names.has(name)) out.push(violation('RFC 8216 §4.3.4.1.1', r, `two renditions named "${name}" in group ${type} "${gid}" (MUST NOT)`));
        names.add(name);
      }
    }
  }

  const version = versionLine ? Number(versionLine.value) : 1;
  for (const v of variants) {
    const a = v.attrs;
    if (!a) continue;
    const codecs = a.get('CODECS');
    if (codecs !== undefined) {
      for (const c of codecs.split(',')) if (!CODEC.test(c)) out.push(violation('RFC 8216 §4.3.4.2', v, `CODECS entry "${c}" is not an RFC 6381 codec identifier`));
    }
    const fr = a.get('FRAME-RATE');
    if (fr !== undefined && /\.\d{4,}$/.test(fr)) out.push(violation('RFC 8216 §4.3.4.2', v, 'FRAME-RATE must be rounded to three decimal places'));
    const res = a.get('RESOLUTION');
    if (res !== undefined && /(^0+x)|(x0+$)/.test(res)) out.push(violation('RFC 8216 §4.3.4.2', v, 'RESOLUTION has a zero dimension'));
    if (version >= 6 && a.has('PROGRAM-ID')) out.push(violation('RFC 8216 §7', v, 'PROGRAM-ID was removed in protocol version 6'));
    for (const [attr, type] of [['AUDIO', 'AUDIO'], ['VIDEO', 'VIDEO'], ['SUBTITLES', 'SUBTITLES'], ['CLOSED-CAPTIONS', 'CLOSED-CAPTIONS']] as const) {
      const gid = a.get(attr);
      if (gid === undefined || (attr === 'CLOSED-CAPTIONS' && gid === 'NONE')) continue;
      if (!groups.get(type)?.has(gid)) out.push(violation('RFC 8216 §4.3.4.2', v, `${attr}="${gid}" names no EXT-X-MEDIA group of TYPE=${type}`));
    }
  }
  for (const l of lines) {
    if (l.kind === 'tag' && l.name === 'EXT-X-MEDIA' && l.attrs?.get('INSTREAM-ID')?.startsWith('SERVICE') && version < 7) {
      out.push(violation('RFC 8216 §7', versionLine ?? l, 'INSTREAM-ID SERVICE values need EXT-X-VERSION 7'));
    }
  }
  return out;
}

function checkRendition(l: TagLine, out: string[]): void {
  const a = l.attrs!;
  const type = a.get('TYPE');
  const section = 'RFC 8216 §4.3.4.1';
  if (a.get('DEFAULT') === 'YES' && a.get('AUTOSELECT') === 'NO') out.push(violation(section, l, 'AUTOSELECT must be YES when DEFAULT is YES'));
  if (type === 'CLOSED-CAPTIONS') {
    if (a.has('URI')) out.push(violation(section, l, 'CLOSED-CAPTIONS renditions MUST NOT have a URI'));
    if (!a.has('INSTREAM-ID')) out.push(violation(section, l, 'INSTREAM-ID is REQUIRED for CLOSED-CAPTIONS'));
  } else if (a.has('INSTREAM-ID')) {
    out.push(violation(section, l, 'INSTREAM-ID is only for CLOSED-CAPTIONS'));
  }
  if (type === 'SUBTITLES' && !a.has('URI')) out.push(violation(section, l, 'URI is REQUIRED for SUBTITLES'));
  if (a.has('FORCED') && type !== 'SUBTITLES') out.push(violation(section, l, 'FORCED is only for SUBTITLES'));
  const ch = a.get('CHANNELS');
  if (ch !== undefined && !/^[0-9]+(\/.*)?$/.test(ch)) out.push(violation(section, l, 'CHANNELS must start with a decimal channel count'));
}

// ---- live reload -----------------------------------------------------------------------------

export interface CompareOptions {
  /** Time between fetching `previous` and `next`, ms: enables the update-cadence rules. */
  elapsedMs?: number;
  /** Slack for the cadence rules, ms (HTTP and scheduling; default 500). */
  slackMs?: number;
}

interface Slot {
  msn: number;
  seg: HlsSegmentInfo | undefined;
}

/** Segments by msn over the whole range a playlist covers, with unknown slots for skipped ones. */
function slots(pl: MediaPlaylistInfo): Slot[] {
  const list: Slot[] = [];
  for (let i = 0; i < pl.skippedSegments; i++) list.push({ msn: pl.mediaSequence + i, seg: undefined });
  for (const s of pl.segments) list.push({ msn: s.msn, seg: s });
  return list;
}

/**
 * Discontinuity Sequence Number of each slot (§4.3.3.3): the tag value plus the discontinuities up
 * to and including the slot. Skipped slots borrow their flag from `other`; unknown after a gap.
 */
function discNumbers(pl: MediaPlaylistInfo, other: Map<number, HlsSegmentInfo>): Map<number, number> {
  const out = new Map<number, number>();
  let n = pl.discontinuitySequence;
  for (const s of slots(pl)) {
    const seg = s.seg ?? other.get(s.msn);
    if (!seg) return out; // a skipped segment nobody listed: what follows is unknown
    if (seg.discontinuity) n++;
    out.set(s.msn, n);
  }
  return out;
}

/** Parts keyed `msn.index`, only from lists known to start at Part Index 0. */
function partsByKey(pl: MediaPlaylistInfo): Map<string, HlsPartInfo> {
  const m = new Map<string, HlsPartInfo>();
  for (const s of pl.segments) if (s.partsComplete) s.parts.forEach((p, i) => m.set(`${s.msn}.${i}`, p));
  const pendingMsn = pl.mediaSequence + pl.skippedSegments + pl.segments.length;
  pl.pendingParts.forEach((p, i) => m.set(`${pendingMsn}.${i}`, p));
  return m;
}

function lastMsnOf(pl: MediaPlaylistInfo): number {
  return pl.mediaSequence + pl.skippedSegments + pl.segments.length - 1;
}

/**
 * What RFC 8216 §6.2.1/§6.2.2 forbid between two successive versions of one live media playlist:
 * the media sequence decreasing, a segment changing URI, duration, discontinuity number, date or
 * map for the same msn, segments vanishing from the end, segments removed below three target
 * durations, the target duration changing, anything changing after EXT-X-ENDLIST; parts changing
 * for the same msn and index. Delta updates (EXT-X-SKIP) are merged with what `previous` knew.
 */
export function comparePlaylists(previous: string, next: string, opts: CompareOptions = {}): string[] {
  const out: string[] = [];
  const a = parseMediaPlaylist(previous).playlist;
  const b = parseMediaPlaylist(next).playlist;
  const at = (s: HlsSegmentInfo): Line => s.line;

  if (b.mediaSequence < a.mediaSequence) {
    out.push(violation('RFC 8216 §6.2.2', undefined, `EXT-X-MEDIA-SEQUENCE went from ${a.mediaSequence} to ${b.mediaSequence} (MUST NOT decrease)`));
  }
  if (b.discontinuitySequence < a.discontinuitySequence) {
    out.push(violation('RFC 8216 §6.2.2', undefined, `EXT-X-DISCONTINUITY-SEQUENCE went from ${a.discontinuitySequence} to ${b.discontinuitySequence} (may only be incremented)`));
  }
  if (a.targetDurationS !== undefined && b.targetDurationS !== a.targetDurationS) {
    out.push(violation('RFC 8216 §6.2.1', undefined, `EXT-X-TARGETDURATION changed from ${a.targetDurationS} to ${b.targetDurationS} (not among the allowed changes)`));
  }
  if (a.endList && !b.endList) out.push(violation('RFC 8216 §6.2.1', undefined, 'EXT-X-ENDLIST disappeared: an ended playlist changed'));

  const aSegs = new Map(a.segments.map((s) => [s.msn, s]));
  const bSegs = new Map(b.segments.map((s) => [s.msn, s]));
  const aLast = lastMsnOf(a);
  const bLast = lastMsnOf(b);
  if (bLast < aLast) {
    const gone = a.segments.filter((s) => s.msn > bLast).map((s) => `${s.msn} (${s.uri})`);
    out.push(violation('RFC 8216 §6.2.1', undefined, `segments vanished from the end: msn ${gone.join(', ') || `${bLast + 1}..${aLast}`} (only removal from the start is allowed)`));
  }
  if (a.endList && (b.mediaSequence !== a.mediaSequence || bLast !== aLast)) out.push(violation('RFC 8216 §6.2.1', undefined, 'segments changed after EXT-X-ENDLIST'));

  const aDisc = discNumbers(a, bSegs);
  const bDisc = discNumbers(b, aSegs);
  for (const [msn, sb] of bSegs) {
    const sa = aSegs.get(msn);
    if (!sa) continue;
    const what: string[] = [];
    if (sa.uri !== sb.uri) what.push(`URI ${sa.uri} -> ${sb.uri}`);
    if (Math.abs(sa.durationS - sb.durationS) > 1e-9) what.push(`EXTINF ${sa.durationS} -> ${sb.durationS}`);
    if (sa.programDateTime !== sb.programDateTime && sa.programDateTime !== undefined && sb.programDateTime !== undefined) {
      what.push(`PROGRAM-DATE-TIME ${sa.programDateTime} -> ${sb.programDateTime}`);
    }
    if (sa.mapUri !== sb.mapUri) what.push(`EXT-X-MAP ${sa.mapUri} -> ${sb.mapUri}`);
    const da = aDisc.get(msn);
    const db = bDisc.get(msn);
    if (da !== undefined && db !== undefined && da !== db) what.push(`discontinuity sequence number ${da} -> ${db}`);
    if (what.length > 0) out.push(violation('RFC 8216 §6.2.1', at(sb), `segment msn ${msn} changed: ${what.join('; ')}`));
  }

  // Removal from the start (§6.2.2): never below three target durations in a live playlist.
  const removed = b.mediaSequence - a.mediaSequence;
  if (removed > 0 && !b.endList && b.targetDurationS !== undefined) {
    let total = 0;
    for (const s of slots(b)) total += s.seg?.durationS ?? aSegs.get(s.msn)?.durationS ?? b.targetDurationS;
    if (total < 3 * b.targetDurationS - 1e-9) {
      out.push(violation('RFC 8216 §6.2.2', undefined, `removed ${removed} segment(s) leaving ${total.toFixed(3)} s, less than three target durations (${3 * b.targetDurationS} s)`));
    }
  }
  // Removed discontinuities move into the discontinuity sequence (§6.2.2, §4.3.3.3).
  if (removed > 0 && b.mediaSequence <= aLast + 1 && a.skippedSegments === 0) {
    const gone = a.segments.filter((s) => s.msn < b.mediaSequence && s.discontinuity).length;
    if (b.discontinuitySequence !== a.discontinuitySequence + gone) {
      out.push(violation('RFC 8216 §6.2.2', undefined, `EXT-X-DISCONTINUITY-SEQUENCE is ${b.discontinuitySequence}; removing ${removed} segment(s) with ${gone} discontinuity tag(s) from ${a.discontinuitySequence} makes ${a.discontinuitySequence + gone}`));
    }
  }

  // Parts (8216bis §6.2.1: parts may leave the playlist, but never change).
  const pa = partsByKey(a);
  const pb = partsByKey(b);
  for (const [key, p] of pb) {
    const q = pa.get(key);
    if (!q) continue;
    if (q.uri !== p.uri || Math.abs(q.durationS - p.durationS) > 1e-9 || q.independent !== p.independent) {
      out.push(violation('8216bis §6.2.1', p.line, `part ${key} changed: ${q.uri} ${q.durationS}${q.independent ? ' INDEPENDENT' : ''} -> ${p.uri} ${p.durationS}${p.independent ? ' INDEPENDENT' : ''}`));
    }
  }

  // Cadence: a new segment within 1.5 target durations (§6.2.1), a new part within one part
  // target (8216bis §6.2.1), unless the playlist ended.
  if (opts.elapsedMs !== undefined && !b.endList && !a.endList) {
    const slack = opts.slackMs ?? 500;
    const tdMs = (a.targetDurationS ?? 0) * 1000;
    if (tdMs > 0 && bLast === aLast && opts.elapsedMs > 1.5 * tdMs + slack) {
      out.push(violation('RFC 8216 §6.2.1', undefined, `no new segment in ${opts.elapsedMs} ms (MUST within 1.5 x target duration = ${1.5 * tdMs} ms)`));
    }
    const ptMs = (a.partTargetS ?? 0) * 1000;
    if (ptMs > 0 && bLast === aLast && b.pendingParts.length === a.pendingParts.length && opts.elapsedMs > ptMs + slack) {
      out.push(violation('8216bis §6.2.1', undefined, `no new part in ${opts.elapsedMs} ms (MUST within one part target = ${ptMs} ms)`));
    }
  }
  return out;
}
