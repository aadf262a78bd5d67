// DASH MPD writer, ISO/IEC 23009-1: §5.3.1 MPD (type, availabilityStartTime, publishTime,
// minimumUpdatePeriod, timeShiftBufferDepth, suggestedPresentationDelay, minBufferTime),
// §5.3.3 AdaptationSet, §5.3.5 Representation, §5.3.9.4 SegmentTemplate with $RepresentationID$
// and $Time$, §5.3.9.6 SegmentTimeline (S@t, S@d, S@r run-length), §8.4 isoff-live profile;
// CMAF profile urn:mpeg:dash:profile:cmaf:2019 (ISO/IEC 23009-1 §8.12). Media time is in ms
// (timescale 1000) so `$Time$` is the chunk start ms, as MistServer's `chunk_<startMs>.m4s`.
// Pure text generation.

import type { AudioTrack, VideoTrack } from '../../media/types.js';
import { codecString } from '../../media/codec-string.js';
import { HazeError } from '../../util/errors.js';

export const DASH_PROFILE_LIVE = 'urn:mpeg:dash:profile:isoff-live:2011';
export const DASH_PROFILE_CMAF = 'urn:mpeg:dash:profile:cmaf:2019';
export const DASH_MEDIA_TEMPLATE = '$RepresentationID$/chunk_$Time$.m4s';
export const DASH_INIT_TEMPLATE = '$RepresentationID$/init.m4s';
const AUDIO_CHANNEL_SCHEME = 'urn:mpeg:dash:23003:3:audio_channel_configuration:2011';

/** One segment of a representation's timeline, in ms of media time. */
export interface DashSegment {
  startMs: number;
  durationMs: number;
}

export interface DashRepresentation {
  /** Representation@id; also `$RepresentationID$` in the URL templates (MistServer: the track id). */
  id: string;
  track: VideoTrack | AudioTrack;
  /** Representation@bandwidth, bits/s; default the track's `bps` × 8. */
  bandwidthBps?: number;
  /** Segments oldest first (the time shift window). */
  segments: DashSegment[];
}

export interface MpdOptions {
  /** Dynamic (live) MPD, or static when the presentation has ended. */
  ended: boolean;
  /** Wall clock (ms since epoch) of media time 0: MPD@availabilityStartTime. */
  availabilityStartTimeMs: number;
  /** MPD@publishTime, ms since epoch. */
  publishTimeMs: number;
  /** MPD@minimumUpdatePeriod (dynamic only; default 2000 ms). */
  minimumUpdatePeriodMs?: number;
  /** MPD@timeShiftBufferDepth (dynamic only; default: the longest timeline). */
  timeShiftBufferDepthMs?: number;
  /** MPD@suggestedPresentationDelay (dynamic only; default 3 × the longest segment). */
  suggestedPresentationDelayMs?: number;
  /** MPD@minBufferTime (default the longest segment, at least 1 s). */
  minBufferTimeMs?: number;
  /** Also announce the CMAF profile. */
  cmaf?: boolean;
  /** Appended to the media and initialization templates (tokens). */
  query?: string;
  /** Overrides of the URL templates. */
  mediaTemplate?: string;
  initTemplate?: string;
  /**
   * Dynamic only: the server's clock as UTCTiming `urn:mpeg:dash:utc:direct:2014` (§5.8.5.7)
   * at this time (ms since epoch), so players sync to the server instead of a time service
   * of their own choosing. Default: publishTimeMs.
   */
  utcTimeMs?: number;
}

/** XML attribute/text escaping (XML 1.0 §2.4, §3.3.3). Control characters are refused. */
export function xmlEscape(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(s)) throw new HazeError('HAZE_ERR_INVALID_ARG', 'control character in MPD value');
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

/** xs:duration in seconds with ms precision: PT12.345S. */
export function isoDuration(ms: number): string {
  const r = Math.max(0, Math.round(ms));
  const s = Math.floor(r / 1000);
  const frac = r % 1000;
  return frac === 0 ? `PT${s}S` : `PT${s}.${String(frac).padStart(3, '0').replace(/0+$/, '')}S`;
}

function isoDate(ms: number): string {
  return new Date(Math.round(ms)).toISOString();
}

function withQuery(uri: string, query: string | undefined): string {
  if (!query) return uri;
  const q = query.startsWith('?') || query.startsWith('&') ? query.slice(1) : query;
  return q ? uri + (uri.includes('?') ? '&' : '?') + q : uri;
}

function attrs(list: [string, string | number | undefined][]): string {
  let out = '';
  for (const [k, v] of list) if (v !== undefined) out += ` ${k}="${xmlEscape(String(v))}"`;
  return out;
}

/** S elements with run-length: `t` only where the timeline jumps, `r` for repeats of `d`. */
export function segmentTimeline(segments: readonly DashSegment[]): string[] {
  const out: string[] = [];
  let i = 0;
  let expected = Number.NaN;
  while (i < segments.length) {
    const s = segments[i]!;
    const t = Math.round(s.startMs);
    const d = Math.round(s.durationMs);
    if (!(d > 0)) throw new HazeError('HAZE_ERR_INVALID_ARG', `segment at ${t} ms has duration ${d}`);
    let r = 0;
    let end = t + d;
    while (i + r + 1 < segments.length) {
      const n = segments[i + r + 1]!;
      if (Math.round(n.startMs) !== end || Math.round(n.durationMs) !== d) break;
      r++;
      end += d;
    }
    out.push(`<S${attrs([['t', t === expected ? undefined : t], ['d', d], ['r', r > 0 ? r : undefined]])}/>`);
    expected = end;
    i += r + 1;
  }
  return out;
}

function frameRate(fpks: number): string | undefined {
  if (!(fpks > 0)) return undefined;
  return fpks % 1000 === 0 ? String(fpks / 1000) : `${fpks}/1000`;
}

function timelineEndMs(segs: readonly DashSegment[]): number {
  const last = segs[segs.length - 1];
  return last ? last.startMs + last.durationMs : 0;
}

/** The MPD of one period holding every representation, grouped into one AdaptationSet per type. */
export function mpd(reps: readonly DashRepresentation[], opts: MpdOptions): string {
  const ids = new Set<string>();
  let maxSegMs = 0;
  let firstMs = Number.POSITIVE_INFINITY;
  let endMs = 0;
  for (const r of reps) {
    if (!/^[A-Za-z0-9_.-]+$/.test(r.id)) throw new HazeError('HAZE_ERR_INVALID_ARG', `representation id ${JSON.stringify(r.id)} is not URL-safe`);
    if (ids.has(r.id)) throw new HazeError('HAZE_ERR_INVALID_ARG', `duplicate representation id ${r.id}`);
    ids.add(r.id);
    for (const s of r.segments) maxSegMs = Math.max(maxSegMs, s.durationMs);
    if (r.segments.length > 0) firstMs = Math.min(firstMs, r.segments[0]!.startMs);
    endMs = Math.max(endMs, timelineEndMs(r.segments));
  }
  if (!Number.isFinite(firstMs)) firstMs = 0;

  const profiles = opts.cmaf ? `${DASH_PROFILE_LIVE},${DASH_PROFILE_CMAF}` : DASH_PROFILE_LIVE;
  const minBuffer = opts.minBufferTimeMs ?? Math.max(1000, maxSegMs);
  const mpdAttrs: [string, string | number | undefined][] = [
    ['xmlns', 'urn:mpeg:dash:schema:mpd:2011'],
    ['profiles', profiles],
    ['type', opts.ended ? 'static' : 'dynamic'],
    ['availabilityStartTime', isoDate(opts.availabilityStartTimeMs)],
    ['publishTime', isoDate(opts.publishTimeMs)],
  ];
  if (opts.ended) {
    mpdAttrs.push(['mediaPresentationDuration', isoDuration(endMs)]);
  } else {
    mpdAttrs.push(
      ['minimumUpdatePeriod', isoDuration(opts.minimumUpdatePeriodMs ?? 2000)],
      ['timeShiftBufferDepth', isoDuration(opts.timeShiftBufferDepthMs ?? endMs - firstMs)],
      ['suggestedPresentationDelay', isoDuration(opts.suggestedPresentationDelayMs ?? 3 * maxSegMs)],
    );
  }
  mpdAttrs.push(['minBufferTime', isoDuration(minBuffer)]);

  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', `<MPD${attrs(mpdAttrs)}>`, `  <Period${attrs([['id', '0'], ['start', 'PT0S']])}>`];
  const media = withQuery(opts.mediaTemplate ?? DASH_MEDIA_TEMPLATE, opts.query);
  const init = withQuery(opts.initTemplate ?? DASH_INIT_TEMPLATE, opts.query);
  let setId = 0;
  for (const type of ['video', 'audio'] as const) {
    const group = reps.filter((r) => r.track.type === type);
    if (group.length === 0) continue;
    const lang = group[0]!.track.lang && group[0]!.track.lang !== 'und' ? group[0]!.track.lang : undefined;
    lines.push(
      `    <AdaptationSet${attrs([
        ['id', setId++],
        ['contentType', type],
        ['mimeType', `${type}/mp4`],
        ['lang', lang],
        ['segmentAlignment', 'true'],
        ['startWithSAP', '1'],
      ])}>`,
    );
    for (const r of group) {
      const t = r.track;
      const ra: [string, string | number | undefined][] = [
        ['id', r.id],
        ['codecs', codecString(t)],
        ['bandwidth', Math.max(1, Math.round(r.bandwidthBps ?? t.bps * 8))],
      ];
      if (t.type === 'video') {
        ra.push(['width', t.width > 0 ? t.width : undefined], ['height', t.height > 0 ? t.height : undefined], ['frameRate', frameRate(t.fpks)]);
      } else {
        ra.push(['audioSamplingRate', t.rate > 0 ? t.rate : undefined]);
      }
      lines.push(`      <Representation${attrs(ra)}>`);
      if (t.type === 'audio' && t.channels > 0) lines.push(`        <AudioChannelConfiguration${attrs([['schemeIdUri', AUDIO_CHANNEL_SCHEME], ['value', t.channels]])}/>`);
      lines.push(`        <SegmentTemplate${attrs([['timescale', 1000], ['initialization', init], ['media', media]])}>`);
      lines.push('          <SegmentTimeline>');
      for (const s of segmentTimeline(r.segments)) lines.push(`            ${s}`);
      lines.push('          </SegmentTimeline>', '        </SegmentTemplate>', '      </Representation>');
    }
    lines.push('    </AdaptationSet>');
  }
  lines.push('  </Period>');
  // UTCTiming follows the Periods in the MPD type's sequence.
  if (!opts.ended) lines.push(`  <UTCTiming${attrs([['schemeIdUri', 'urn:mpeg:dash:utc:direct:2014'], ['value', isoDate(opts.utcTimeMs ?? opts.publishTimeMs)]])}/>`);
  lines.push('</MPD>');
  return lines.join('\n') + '\n';
}
