// Outgoing push / recording targets (reference/mistserver.md §5.5): which output a target
// goes to, and the Mist push parameters it carries. The TRAILING-? RULE: everything after the
// LAST `?` of the target is push parameters and is removed from the target, so a target that
// needs its own query string ends in an extra `?` (`rtmp://x/app/key?token=abc?` or
// `rtmp://x/app/key?token=abc?split=60`). A target may also name its connector:
// `NAME:rest` without `//` where NAME is a connector (`FLV:/rec/a.bin`). Pure: no I/O.

import { HazeError } from '../util/errors.js';
import { parseDtscPushUrl } from '../protocols/dtsc/push-url.js';
import { parseTsUdpUrl } from '../inputs/pull/ts-source.js';

export type PushKind = 'rtmp' | 'rtmps' | 'dtsc' | 'srt' | 'tsudp' | 'file';

/** File extensions Haze records (the container is chosen purely by extension, as in MistServer). */
export const RECORDING_EXTENSIONS = ['flv', 'ts', 'mp4', 'fmp4', 'mkv', 'webm', 'dtsc', 'wav', 'aac', 'mp3', 'ogg'] as const;
export type RecordingExtension = (typeof RECORDING_EXTENSIONS)[number];

/** MistServer connector names a `NAME:rest` target may use, and the file format each writes. */
const CONNECTOR_EXTENSION: Readonly<Record<string, RecordingExtension>> = {
  flv: 'flv',
  httpts: 'ts',
  ts: 'ts',
  mp4: 'mp4',
  ebml: 'mkv',
  dtsc: 'dtsc',
  wav: 'wav',
  aac: 'aac',
  mp3: 'mp3',
  ogg: 'ogg',
};

/** The connector name MistServer reports for a recording of each extension (RECORDING_END's `connector`). */
export const CONNECTOR_BY_EXTENSION: Readonly<Record<RecordingExtension, string>> = {
  flv: 'FLV',
  ts: 'HTTPTS',
  mp4: 'MP4',
  fmp4: 'MP4',
  mkv: 'EBML',
  webm: 'EBML',
  dtsc: 'DTSC',
  wav: 'WAV',
  aac: 'AAC',
  mp3: 'MP3',
  ogg: 'OGG',
};

/** Push URL patterns MistServer has that Haze does not (yet): a clear refusal naming them. */
const NOT_SUPPORTED: readonly [RegExp, string][] = [
  [/^rist:\/\//i, 'RIST pushes (rist://) are not supported'],
  [/^ts(rtp|tcp):\/\//i, 'MPEG-TS pushes over RTP or TCP (tsrtp://, tstcp://) are not supported (tsudp:// is)'],
  [/^whips?:\/\//i, 'WebRTC WHIP pushes are not supported'],
  [/^cmafs?:\/\//i, 'CMAF pushes (cmaf://) are not supported'],
  [/^(ts|mkv)-exec:/i, 'exec targets (ts-exec:, mkv-exec:) are not supported'],
  [/^https?:\/\//i, 'HTTP upload targets are not supported'],
  [/^s3\+?/i, 'S3 upload targets are not supported'],
];

/** Mist push parameters, typed. Times: `*ms` are media milliseconds, `*unix` unix seconds. */
export interface PushParams {
  audio?: string;
  video?: string;
  subtitle?: string;
  meta?: string;
  /** Seconds per file: a new file at the first keyframe after this much media. */
  split?: number;
  /** HLS playlist of the split files (relative to the target's folder unless absolute). */
  m3u8?: string;
  /** Media ms: nothing before it is recorded / the recording ends at it. */
  recstart?: number;
  recstop?: number;
  /** Seconds to record (ends at the first recorded ms + duration). */
  duration?: number;
  /** Media ms to start reading at (inside the DVR window) / to stop at. */
  start?: number;
  stop?: number;
  /** Unix seconds (values up to 36000000 are relative to now). */
  startunix?: number;
  stopunix?: number;
  recstartunix?: number;
  recstopunix?: number;
  append: boolean;
  waittrackcount?: number;
  mintrackkeys?: number;
  mintrackms?: number;
  maxtrackms?: number;
  maxwaittrackms?: number;
  rate?: number;
  realtime?: boolean;
  pushdelay?: number;
  segment?: string;
  targetAge?: number;
  maxEntries?: number;
  noendlist: boolean;
  adjustSplit?: number;
  unmask: boolean;
  /** Every parameter as given (unknown ones included), for status reports. */
  raw: Record<string, string>;
}

export interface PushTarget {
  /** The target as given. */
  original: string;
  /** The target without push parameters (and without a connector prefix). */
  url: string;
  kind: PushKind;
  /** File targets: the format's extension. */
  extension?: RecordingExtension;
  /** MistServer connector name of the output (RTMP, FLV, HTTPTS, MP4, EBML, DTSC, ...). */
  connector: string;
  params: PushParams;
}

/**
 * Splits a target at its LAST `?`: the text before is the target, after it the push parameters.
 * No `?`: no parameters.
 */
export function splitPushParams(target: string): { url: string; query: string | null } {
  const at = target.lastIndexOf('?');
  if (at < 0) return { url: target, query: null };
  return { url: target.slice(0, at), query: target.slice(at + 1) };
}

/**
 * Whether `target` matches a MistServer push URL pattern (one `*` glob). The target's text after
 * its last `?` is ignored, or after its first `?` when the pattern itself ends in `?` (a pattern
 * such as `https://*\/http_upload_hls?` for targets that carry their own query).
 */
export function matchPushPattern(pattern: string, target: string): boolean {
  let t: string;
  if (pattern.endsWith('?')) {
    const q = target.indexOf('?');
    t = q < 0 ? target : target.slice(0, q + 1);
  } else {
    t = splitPushParams(target).url;
  }
  const star = pattern.indexOf('*');
  if (star < 0) return t === pattern;
  const head = pattern.slice(0, star);
  const tail = pattern.slice(star + 1);
  return t.length >= head.length + tail.length && t.startsWith(head) && t.endsWith(tail);
}

const NUMBER_PARAMS = [
  'split',
  'recstart',
  'recstop',
  'duration',
  'start',
  'stop',
  'startunix',
  'stopunix',
  'recstartunix',
  'recstopunix',
  'waittrackcount',
  'mintrackkeys',
  'mintrackms',
  'maxtrackms',
  'maxwaittrackms',
  'rate',
  'pushdelay',
  'targetAge',
  'maxEntries',
  'adjustSplit',
] as const;
type NumberParam = (typeof NUMBER_PARAMS)[number];

/** A flag parameter: present without a value, or any value but 0/false/no. */
function flag(v: string | undefined): boolean {
  if (v === undefined) return false;
  return !/^(0|false|no)$/i.test(v.trim());
}

/** Parses the push-parameter part of a target (`a=1&b=2`). */
export function parsePushParams(query: string | null): PushParams {
  const raw: Record<string, string> = {};
  if (query) {
    for (const [k, v] of new URLSearchParams(query)) raw[k] = v;
  }
  const p: PushParams = { append: flag(raw['append']), noendlist: flag(raw['noendlist']), unmask: flag(raw['unmask']), raw };
  for (const key of ['audio', 'video', 'subtitle', 'meta', 'm3u8', 'segment'] as const) {
    const v = raw[key];
    if (v !== undefined && v !== '') p[key] = v;
  }
  if (raw['realtime'] !== undefined) p.realtime = flag(raw['realtime']);
  for (const key of NUMBER_PARAMS) {
    const v = raw[key];
    if (v === undefined || v === '') continue;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new HazeError('HAZE_ERR_INVALID_ARG', `push parameter ${key}=${JSON.stringify(v)} is not a number`);
    if (n < 0 && key !== 'adjustSplit') throw new HazeError('HAZE_ERR_INVALID_ARG', `push parameter ${key}=${v} must not be negative`);
    (p as Record<NumberParam, number | undefined>)[key] = n;
  }
  if (p.split !== undefined && p.split <= 0) delete p.split;
  // m3u8 without split: MistServer segments every 60 s
  if (p.m3u8 !== undefined && p.split === undefined) p.split = 60;
  return p;
}

/** The extension of a path's last component, lower-case, '' if none. */
function extensionOf(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
}

const SEGMENT_VARIABLE = /\$(\{)?(segmentCounter|currentMediaTime)\b/;

/** Parses and classifies a push target; HAZE_ERR_UNSUPPORTED / HAZE_ERR_INVALID_ARG with a clear message. */
export function parsePushTarget(target: string): PushTarget {
  const original = target;
  const trimmed = target.trim();
  if (!trimmed) throw new HazeError('HAZE_ERR_INVALID_ARG', 'empty push target');
  const { url: withPrefix, query } = splitPushParams(trimmed);
  const params = parsePushParams(query);

  // `NAME:rest` without `//` where NAME is a connector: that connector, prefix stripped
  let url = withPrefix;
  let forced: RecordingExtension | undefined;
  const colon = withPrefix.indexOf(':');
  if (colon > 0 && !withPrefix.includes('//')) {
    const ext = CONNECTOR_EXTENSION[withPrefix.slice(0, colon).toLowerCase()];
    if (ext) {
      forced = ext;
      url = withPrefix.slice(colon + 1);
    }
  }

  const base = { original, url, params };
  if (!forced) {
    if (/^rtmp:\/\//i.test(url)) return { ...base, kind: 'rtmp', connector: 'RTMP' };
    if (/^rtmps:\/\//i.test(url)) return { ...base, kind: 'rtmps', connector: 'RTMP' };
    if (/^srt:\/\//i.test(url)) return { ...base, kind: 'srt', connector: 'TSSRT' };
    if (/^tsudp:\/\//i.test(url)) {
      // checked now unless variables still stand in it; a push needs a host to send to
      if (!url.includes('$') && parseTsUdpUrl(url).host === '') throw new HazeError('HAZE_ERR_INVALID_ARG', `a tsudp push needs a host to send to (tsudp://host:port): ${original}`);
      return { ...base, kind: 'tsudp', connector: 'TS' };
    }
    if (/^dtscs?:\/\//i.test(url)) {
      // checked now unless variables still stand in it (they are filled in when the push starts)
      if (!url.includes('$')) {
        try {
          parseDtscPushUrl(url, params.raw);
        } catch (err) {
          throw new HazeError('HAZE_ERR_INVALID_ARG', `invalid DTSC target: ${(err as Error).message}`);
        }
      }
      return { ...base, kind: 'dtsc', connector: 'DTSC' };
    }
    for (const [re, why] of NOT_SUPPORTED) if (re.test(url)) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${why}: ${original}`);
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && !/^file:\/\//i.test(url)) throw new HazeError('HAZE_ERR_UNSUPPORTED', `no output pushes to ${url.slice(0, url.indexOf(':'))}:// targets: ${original}`);
  }
  const path = url.startsWith('file://') ? url.slice('file://'.length) : url;
  // a path may start with a variable ($recdir/...): the recording checks the path it resolves to
  if (!path.startsWith('/') && !path.startsWith('$')) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `a recording target must be an absolute path (/folder/name.ext) or a push URL: ${original}`);
  }
  const ext = forced ?? extensionOf(path);
  if (ext === 'm3u8') {
    throw new HazeError('HAZE_ERR_UNSUPPORTED', `a .m3u8 target is not a recording format: record .ts segments with split= and name the playlist with m3u8= (e.g. /rec/seg_$segmentCounter.ts?m3u8=index.m3u8): ${original}`);
  }
  if (!(RECORDING_EXTENSIONS as readonly string[]).includes(ext)) {
    throw new HazeError('HAZE_ERR_UNSUPPORTED', `cannot record .${ext || '(no extension)'} files (recordable: ${RECORDING_EXTENSIONS.join(', ')}): ${original}`);
  }
  const extension = ext as RecordingExtension;
  if (params.split !== undefined && !SEGMENT_VARIABLE.test(path)) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `split${params.m3u8 !== undefined ? '/m3u8' : ''} needs $segmentCounter or $currentMediaTime in the file name, or every segment overwrites the last: ${original}`);
  }
  if (params.append && params.split !== undefined) throw new HazeError('HAZE_ERR_INVALID_ARG', `append and split cannot be combined: ${original}`);
  return { ...base, url: path, kind: 'file', extension, connector: CONNECTOR_BY_EXTENSION[extension] };
}
