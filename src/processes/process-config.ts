// The `processes[]` entries of a stream's config (reference §5.6, MistServer's MistProc* options):
// what each process is fed, the command it runs, when it must not start, and how it restarts.
// Pure: a config value in, a ProcessSpec (or a HazeError naming the bad field) out.
//
//   {"process": "FFMPEG", "x-LSP-kind": "audio", "codec": "opus", "source_track": "AAC", "rate": 96000}
//   {"process": "FFMPEG", "codec": "H264", "resolution": "640x360", "rate": 800000}
//   {"process": "MKVExec", "exec": "my-filter --in - --out -", "track_select": "video=all&audio=none"}
//
// Common to all (MistServer's generic process options): `track_inhibit` (a selector that, when it
// selects a track, keeps the process from starting), `restart_type` fixed|backoff|disabled,
// `restart_delay` (ms), `inconsequential`. MistServer's AV process (libav in-process) runs as
// FFMPEG here with the same options. Track masks (`source_mask`, `target_mask`, `exit_unmask`),
// overlay `sources` and another `sink` stream are not supported: the new tracks join the same
// stream, visible to viewers and pushes and never fed to another process (MistServer's default
// target mask), and the source tracks stay visible.

import type { Track, TrackType } from '../media/types.js';
import type { FormatCapability, SelectorQuery } from '../outputs/track-select.js';
import { selectTracks } from '../outputs/track-select.js';
import { HazeError } from '../util/errors.js';
import { ffmpegArgs, H264_PROFILES, X264_PRESETS, type FfmpegOptions, type ProcessAudioCodec, type ProcessVideoCodec } from './ffmpeg-command.js';
import { shellSplit } from './shell-split.js';

export type RestartType = 'fixed' | 'backoff' | 'disabled';

export interface RestartPolicy {
  type: RestartType;
  /** `fixed`: the pause before each restart; `backoff`: the longest pause (0: BACKOFF_MAX_MS). */
  delayMs: number;
}

export interface ProcessSpec {
  /** Identity: the entry as canonical JSON (a changed entry is a new process, as in MistServer). */
  key: string;
  /** The process type as MistServer names it: FFMPEG, AV, MKVExec. */
  process: string;
  /** The command; arguments may hold stream variables ($stream, $basename, ...). */
  argv: string[];
  /** Which of the stream's tracks the process reads. */
  selectors: SelectorQuery;
  /** Only the first selected track (an FFMPEG process encodes one track). */
  singleTrack: boolean;
  /** A selector that keeps the process from starting when it selects a track. */
  inhibit: SelectorQuery | undefined;
  restart: RestartPolicy;
  /** The stream counts as fully active without this process (kept and listed; Haze does not hold streams back for processes). */
  inconsequential: boolean;
  /** FFMPEG: the type and codec of the track it makes. */
  output?: { type: 'audio' | 'video'; codec: string };
}

/** Processes per stream at most. */
export const MAX_PROCESSES = 16;
/** `fixed` restarts never come faster than this (MistServer's buffer checks its processes every 200 ms). */
export const MIN_RESTART_MS = 200;
/** First pause of the `backoff` policy; it doubles with each failure in a row... */
export const BACKOFF_FIRST_MS = 500;
/** ...up to `restart_delay`, or this without one. */
export const BACKOFF_MAX_MS = 30_000;

/** The codecs a process can be fed: what the Matroska writer carries. */
export const PROCESS_INPUT_CAPABILITY: FormatCapability = {
  codecs: { video: ['H264', 'HEVC', 'AV1', 'VP8', 'VP9'], audio: ['AAC', 'MP3', 'opus', 'AC3', 'vorbis', 'FLAC', 'PCM'] },
  singlePerType: false,
};

const VIDEO_CODECS: Record<string, ProcessVideoCodec> = { h264: 'H264', hevc: 'HEVC', h265: 'HEVC', vp9: 'VP9' };
const AUDIO_CODECS: Record<string, ProcessAudioCodec> = { aac: 'AAC', opus: 'opus', mp3: 'MP3' };
const SELECTOR_TYPES: readonly TrackType[] = ['audio', 'video', 'subtitle', 'meta'];
const MAX_SELECTOR_CHARS = 1024;

function invalid(msg: string): HazeError {
  return new HazeError('HAZE_ERR_INVALID_ARG', msg);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON with object keys sorted, so the same entry written in another order is the same process. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .filter((k) => v[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * A track selector as a query string (`audio=AAC&video=none`, MistServer's `track_select` and
 * `track_inhibit`); keys other than the track types are ignored.
 */
export function parseSelectorQuery(text: string): SelectorQuery {
  if (text.length > MAX_SELECTOR_CHARS) throw invalid(`track selector longer than ${MAX_SELECTOR_CHARS} characters`);
  const q: SelectorQuery = {};
  for (const [k, v] of new URLSearchParams(text.startsWith('?') ? text.slice(1) : text)) {
    if ((SELECTOR_TYPES as readonly string[]).includes(k)) q[k as TrackType] = v;
  }
  return q;
}

/** Numbers as MistServer's UI stores them: numbers or numeric strings. */
function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

function flag(v: unknown): boolean {
  return v === true || v === 1 || v === '1' || v === 'true';
}

/** An option that is absent, null or '' (MistServer's UI writes empty selects as ''). */
function unset(v: unknown): boolean {
  return v === undefined || v === null || v === '';
}

/** A bitrate as ffmpeg takes it: bits per second, or with a k/M suffix. */
function bitrate(v: unknown, field: string): string | undefined {
  if (unset(v)) return undefined;
  const n = num(v);
  if (n !== undefined) {
    if (n <= 0 || n > 10_000_000_000) throw invalid(`"${field}" must be a positive number of bits per second`);
    return String(Math.round(n));
  }
  if (typeof v === 'string' && /^\d+(\.\d+)?[kKmM]$/.test(v.trim())) return v.trim();
  throw invalid(`"${field}" must be bits per second (96000) or ffmpeg's short form (96k, 2M)`);
}

function intIn(v: unknown, field: string, min: number, max: number): number | undefined {
  if (unset(v)) return undefined;
  const n = num(v);
  if (n === undefined || !Number.isInteger(n) || n < min || n > max) throw invalid(`"${field}" must be an integer from ${min} to ${max}`);
  return n;
}

function restartPolicy(entry: Record<string, unknown>): RestartPolicy {
  const t = entry['restart_type'];
  let type: RestartType = 'backoff';
  if (!unset(t)) {
    if (t !== 'fixed' && t !== 'backoff' && t !== 'disabled') throw invalid('"restart_type" must be fixed, backoff or disabled');
    type = t;
  }
  const delayMs = intIn(entry['restart_delay'], 'restart_delay', 0, 86_400_000) ?? 0;
  return { type, delayMs };
}

/** The pause before restart number `failures` (1 for the first) of a process that stopped; undefined: no restart. */
export function restartDelayMs(policy: RestartPolicy, failures: number): number | undefined {
  if (policy.type === 'disabled') return undefined;
  if (policy.type === 'fixed') return Math.max(MIN_RESTART_MS, policy.delayMs);
  const cap = policy.delayMs > 0 ? Math.max(MIN_RESTART_MS, policy.delayMs) : BACKOFF_MAX_MS;
  const exp = Math.min(30, Math.max(0, failures - 1));
  return Math.min(cap, BACKOFF_FIRST_MS * 2 ** exp);
}

/** The ffmpeg binary the FFMPEG processes run. */
export function ffmpegBinary(): string {
  return process.env['HAZE_FFMPEG'] || 'ffmpeg';
}

function resolution(v: unknown): { width?: number; height?: number } {
  if (unset(v)) return {};
  const m = typeof v === 'string' ? /^\s*(-1|\d{1,5})?\s*[xX:]\s*(-1|\d{1,5})?\s*$/.exec(v) : null;
  if (!m) throw invalid('"resolution" must be WIDTHxHEIGHT (640x360; -1 or nothing on one side keeps the aspect ratio)');
  const width = m[1] === undefined ? -1 : Number(m[1]);
  const height = m[2] === undefined ? -1 : Number(m[2]);
  if (width === 0 || height === 0 || (width < 0 && height < 0)) throw invalid('"resolution" needs a width or a height above 0');
  return { ...(width > 0 ? { width } : {}), ...(height > 0 ? { height } : {}) };
}

function ffmpegSpec(entry: Record<string, unknown>, name: string): Omit<ProcessSpec, 'key' | 'restart' | 'inhibit' | 'inconsequential'> {
  const rawCodec = entry['codec'];
  if (typeof rawCodec !== 'string' || rawCodec === '') throw invalid('"codec" is required (H264, HEVC, VP9, AAC, opus or MP3)');
  const video = VIDEO_CODECS[rawCodec.toLowerCase()];
  const audio = AUDIO_CODECS[rawCodec.toLowerCase()];
  if (!video && !audio) throw invalid(`"codec" ${JSON.stringify(rawCodec)} is not one of H264, HEVC, VP9, AAC, opus, MP3`);
  const kind = video ? 'video' : 'audio';
  const declared = entry['x-LSP-kind'];
  if (!unset(declared) && declared !== kind) throw invalid(`"x-LSP-kind" ${JSON.stringify(declared)} does not match codec ${rawCodec} (${kind})`);
  const sources = entry['sources'];
  if (Array.isArray(sources) && sources.some((s) => !isObject(s) || (!unset(s['src']) && s['src'] !== '-'))) throw invalid('overlay "sources" are not supported');
  const flagsText = entry['flags'];
  if (!unset(flagsText) && typeof flagsText !== 'string') throw invalid('"flags" must be a string');
  const o: FfmpegOptions = { binary: ffmpegBinary(), kind, codec: video ?? audio! };
  const rate = bitrate(entry['rate'], 'rate');
  if (rate !== undefined) o.bitrate = rate;
  const minRate = bitrate(entry['min_rate'], 'min_rate');
  if (minRate !== undefined) o.minRate = minRate;
  const maxRate = bitrate(entry['max_rate'], 'max_rate');
  if (maxRate !== undefined) o.maxRate = maxRate;
  if (typeof flagsText === 'string' && flagsText.trim() !== '') o.flags = shellSplit(flagsText);
  if (kind === 'audio') {
    const sampleRate = intIn(entry['sample_rate'], 'sample_rate', 8000, 192_000);
    if (sampleRate !== undefined) o.sampleRate = sampleRate;
  } else {
    Object.assign(o, resolution(entry['resolution']));
    const crf = intIn(entry['crf'], 'crf', 0, video === 'VP9' ? 63 : 51);
    if (crf !== undefined) o.crf = crf;
    const preset = entry['preset'];
    if (!unset(preset)) {
      if (!(X264_PRESETS as readonly unknown[]).includes(preset)) throw invalid(`"preset" must be one of ${X264_PRESETS.join(', ')}`);
      o.preset = preset as string;
    }
    const profile = entry['profile'];
    if (!unset(profile)) {
      if (!(H264_PROFILES as readonly unknown[]).includes(profile)) throw invalid(`"profile" must be one of ${H264_PROFILES.join(', ')}`);
      o.profile = profile as string;
    }
    const keys = entry['keys'];
    if (keys === 'frames') o.keys = { frames: intIn(entry['keyfrms'], 'keyfrms', 1, 100_000) ?? 250 };
    else if (keys === 'secs') {
      const secs = num(entry['keysecs']);
      if (secs === undefined || secs <= 0 || secs > 3600) throw invalid('"keysecs" must be a number of seconds above 0');
      o.keys = { secs };
    } else if (!unset(keys)) throw invalid('"keys" must be "", frames or secs');
  }
  const sourceTrack = entry['source_track'];
  if (!unset(sourceTrack) && typeof sourceTrack !== 'string') throw invalid('"source_track" must be a track selector string');
  // "automatic" is the UI's placeholder for the default: the first track of the kind
  const sel = typeof sourceTrack === 'string' && sourceTrack !== 'automatic' ? sourceTrack : '';
  if (sel.length > MAX_SELECTOR_CHARS) throw invalid('"source_track" is too long');
  const selectors: SelectorQuery = kind === 'audio' ? { audio: sel, video: 'none', subtitle: 'none', meta: 'none' } : { video: sel, audio: 'none', subtitle: 'none', meta: 'none' };
  return { process: name, argv: ffmpegArgs(o), selectors, singleTrack: true, output: { type: kind, codec: video ?? audio! } };
}

function execSpec(entry: Record<string, unknown>, name: string): Omit<ProcessSpec, 'key' | 'restart' | 'inhibit' | 'inconsequential'> {
  const exec = entry['exec'];
  if (typeof exec !== 'string' || exec.trim() === '') throw invalid('"exec" (the command to run) is required');
  const argv = shellSplit(exec);
  if (argv.length === 0) throw invalid('"exec" names no command');
  const sel = entry['track_select'];
  if (!unset(sel) && typeof sel !== 'string') throw invalid('"track_select" must be a selector string (audio=all&video=all)');
  // MistServer starts from audio=all&video=all and applies track_select over it
  const selectors: SelectorQuery = { audio: 'all', video: 'all', subtitle: 'none', meta: 'none', ...(typeof sel === 'string' ? parseSelectorQuery(sel) : {}) };
  return { process: name, argv, selectors, singleTrack: false };
}

/** One `processes[]` entry; throws HAZE_ERR_INVALID_ARG / _UNSUPPORTED naming what is wrong. */
export function parseProcess(entry: unknown): ProcessSpec {
  if (!isObject(entry)) throw invalid('a process entry must be an object');
  const name = entry['process'];
  if (typeof name !== 'string' || name === '') throw invalid('"process" (FFMPEG, AV or MKVExec) is required');
  const type = name.toLowerCase().replace(/[-_ ]/g, '');
  let base: Omit<ProcessSpec, 'key' | 'restart' | 'inhibit' | 'inconsequential'>;
  if (type === 'ffmpeg' || type === 'av') base = ffmpegSpec(entry, name);
  else if (type === 'mkvexec') base = execSpec(entry, name);
  else throw new HazeError('HAZE_ERR_UNSUPPORTED', `process type ${JSON.stringify(name)} is not supported (FFMPEG, AV, MKVExec)`);
  const inhibitText = entry['track_inhibit'];
  if (!unset(inhibitText) && typeof inhibitText !== 'string') throw invalid('"track_inhibit" must be a selector string');
  let inhibit: SelectorQuery | undefined;
  if (typeof inhibitText === 'string' && inhibitText !== '') {
    const q = parseSelectorQuery(inhibitText);
    // a type the inhibitor does not name selects nothing (MistServer's default is none for each)
    inhibit = { audio: q.audio || 'none', video: q.video || 'none', subtitle: q.subtitle || 'none', meta: q.meta || 'none' };
    if (SELECTOR_TYPES.every((t) => inhibit![t] === 'none')) inhibit = undefined;
  }
  return { ...base, key: canonicalJson(entry), restart: restartPolicy(entry), inhibit, inconsequential: flag(entry['inconsequential']) };
}

/** A stream's `processes` setting: the valid entries, and a message per invalid one. */
export function parseProcesses(list: unknown): { specs: ProcessSpec[]; errors: string[] } {
  const specs: ProcessSpec[] = [];
  const errors: string[] = [];
  if (list === undefined || list === null) return { specs, errors };
  if (!Array.isArray(list)) return { specs, errors: ['"processes" must be an array'] };
  const keys = new Set<string>();
  list.forEach((entry, i) => {
    if (i >= MAX_PROCESSES) {
      if (i === MAX_PROCESSES) errors.push(`processes[${i}...]: at most ${MAX_PROCESSES} processes per stream; the rest are ignored`);
      return;
    }
    try {
      const spec = parseProcess(entry);
      // the same entry twice is one process (MistServer keys processes by their JSON)
      if (keys.has(spec.key)) return;
      keys.add(spec.key);
      specs.push(spec);
    } catch (err) {
      errors.push(`processes[${i}]: ${err instanceof Error ? err.message : String(err)}`);
    }
  });
  return { specs, errors };
}

/** The tracks a process reads from `tracks` (the stream's tracks that no process made). */
export function processInputTracks(spec: ProcessSpec, tracks: readonly Track[]): Track[] {
  const sel = selectTracks(tracks, spec.selectors, PROCESS_INPUT_CAPABILITY);
  const picked = tracks.filter((t) => sel.ids.has(t.id));
  return spec.singleTrack ? picked.slice(0, 1) : picked;
}

/** Whether the process's `track_inhibit` selects one of `tracks`. */
export function isInhibited(spec: ProcessSpec, tracks: readonly Track[]): boolean {
  if (!spec.inhibit) return false;
  const anyCodec: FormatCapability = { codecs: Object.fromEntries(SELECTOR_TYPES.map((t) => [t, [...new Set(tracks.filter((x) => x.type === t).map((x) => x.codec))]])), singlePerType: false };
  return selectTracks(tracks, spec.inhibit, anyCodec).ids.size > 0;
}

/** The AAC (or any audio) to Opus process, for WebRTC viewers: does nothing when the stream has Opus already. */
export const OPUS_PRESET = { process: 'FFMPEG', 'x-LSP-kind': 'audio', codec: 'opus', rate: 96000, track_inhibit: 'audio=opus' } as const;

/** A lower H.264 rendition of the stream's first video track (an ABR ladder step). */
export function h264RenditionPreset(width: number, height: number, bitrateBps: number): Record<string, unknown> {
  return { process: 'FFMPEG', 'x-LSP-kind': 'video', codec: 'H264', resolution: `${width}x${height}`, rate: bitrateBps };
}
