// The `recordings` API call (issue 8 point 4, the UI's recordings list): the files recording
// pushes wrote. Which folders: every file target of a running push (push_list) and of an
// automatic push rule (auto_push), custom variables filled in; the folder is the target's path up
// to its first component that still holds a $variable, and only paths matching the rest of the
// template ($stream, $datetime ... as patterns) are looked at, to the template's depth, never
// through a symbolic link. An HLS recording (split= with m3u8=) is listed as its playlist with
// the summed size of its segments. Lengths come from the files' first and last bytes
// (pushes/recording-duration.ts, containers/mkv|mp4), cached by path, size and mtime.

import fs from 'node:fs/promises';
import path from 'node:path';
import { parseAutoPushRule } from '../pushes/auto-push.js';
import { parsePushTarget, type PushTarget } from '../pushes/push-target.js';
import { applyVariablesWith, BUILTIN_VARIABLES } from '../pushes/variables.js';
import { flvDurationMs, hlsPlaylistSegments, mkvDurationMs, tsDurationMs } from '../pushes/recording-duration.js';
import { readMkvIndex } from '../containers/mkv/mkv-index.js';
import { readDtscFileHeader } from '../containers/dtsc/file.js';
import { fileByteSource, openMp4 } from '../containers/mp4/demux.js';
import { errorText } from '../util/errors.js';
import type { ApiCall, ApiCallContext } from './api-calls.js';
import { isPlainObject } from './default-config.js';

/** Entries answered at most (newest first). */
export const MAX_RECORDINGS = 500;
/** Bounds of one listing: folders opened, entries read per folder, files considered. */
const MAX_DIRS = 2000;
const MAX_DIR_ENTRIES = 20_000;
const MAX_CANDIDATES = 20_000;
/** Path components below a target's folder the template may have. */
const MAX_TEMPLATE_DEPTH = 8;
/** A file changed this recently counts as growing even without a push writing it. */
const GROWING_MS = 3000;
/** Length probes: bytes read at each end, time and bytes spent per answer, MP4 files parsed. */
const HEAD_BYTES = 256 * 1024;
const TAIL_BYTES = 1024 * 1024;
const MAX_TAIL_BYTES = 64 * 1024 * 1024;
const PROBE_BUDGET_MS = 1500;
const PROBE_BUDGET_BYTES = 96 * 1024 * 1024;
const MAX_MP4_PROBE_BYTES = 128 * 1024 * 1024;
const MAX_PLAYLIST_BYTES = 4 * 1024 * 1024;
const MAX_CACHE = 4096;

/** Extensions a recording may have (push-target.ts RECORDING_EXTENSIONS) and HLS playlists. */
const MEDIA_EXT = /\.(flv|ts|mp4|fmp4|mkv|webm|dtsc|wav|aac|mp3|ogg|m3u8)$/i;

export interface RecordingEntry {
  path: string;
  name: string;
  stream: string | null;
  size: number;
  /** Unix seconds of the last change. */
  modified: number;
  duration_ms: number | null;
  growing: boolean;
}

/** A file target as a folder plus a pattern per path component below it. */
interface Template {
  folder: string;
  parts: RegExp[];
  /** The rule's stream pattern or the push's stream, for entries whose path does not name it. */
  stream?: string;
  /** Listed as an HLS playlist. */
  hls: boolean;
}

const VARIABLE = /\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;
const BUILTINS_LONGEST_FIRST = [...BUILTIN_VARIABLES].sort((a, b) => b.length - a.length);
const TWO = '\\d{2}';
const VARIABLE_PATTERN: Readonly<Record<string, string>> = {
  datetime: '\\d{4}\\.\\d{2}\\.\\d{2}\\.\\d{2}\\.\\d{2}\\.\\d{2}',
  year: '\\d{4}',
  month: TWO,
  day: TWO,
  hour: TWO,
  minute: TWO,
  second: TWO,
  week: TWO,
  yday: '\\d{3}',
  wday: '\\d',
  segmentCounter: '\\d+',
  currentMediaTime: '\\d+',
  stream: '[^/]+?',
  basename: '[^/+]+?',
  wildcard: '[^/]*?',
  pluswildcard: '(?:\\+[^/]*?)?',
};
const CAPTURED = new Set(['stream', 'basename', 'wildcard', 'pluswildcard']);

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One path component of a template as a RegExp; the stream variables are named groups. */
export function componentPattern(component: string): RegExp {
  let re = '';
  let last = 0;
  const named = new Set<string>();
  const variable = (name: string | undefined): string => {
    if (name === undefined) return '[^/]*?';
    const p = VARIABLE_PATTERN[name] ?? '[^/]*?';
    if (!CAPTURED.has(name) || named.has(name)) return `(?:${p})`;
    named.add(name);
    return `(?<${name}>${p})`;
  };
  for (const m of component.matchAll(VARIABLE)) {
    re += escapeRe(component.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1] !== undefined) {
      re += variable(m[1]);
      continue;
    }
    // bare $name: the longest variable name it starts with, the rest is text (as variables.ts)
    const bare = m[2]!;
    const name = BUILTINS_LONGEST_FIRST.find((n) => bare.startsWith(n));
    re += variable(name) + escapeRe(name === undefined ? '' : bare.slice(name.length));
  }
  re += escapeRe(component.slice(last));
  return new RegExp(`^${re}$`);
}

/** The folder and component patterns of an absolute path template; undefined if too deep. */
export function templateOf(file: string): { folder: string; parts: RegExp[] } | undefined {
  const comps = path.normalize(file).split('/');
  let i = comps.findIndex((c) => c.includes('$'));
  if (i < 0) i = comps.length - 1; // no variable: the folder is the file's own
  if (i < 1 || comps.length - i > MAX_TEMPLATE_DEPTH) return undefined;
  return { folder: comps.slice(0, i).join('/') || '/', parts: comps.slice(i).map(componentPattern) };
}

function customVariables(c: ApiCallContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(c.host.config.get().variables)) {
    const v = (spec as { value?: unknown } | null)?.value;
    if (typeof v === 'string') out[name] = v;
    const live = c.host.variables?.current(name);
    if (live) out[name] = live.value;
  }
  return out;
}

/** The templates of one push target; [] for a target that is not a file. */
function templatesOf(target: string, stream: string | undefined, custom: Record<string, string>): Template[] {
  let t: PushTarget;
  try {
    t = parsePushTarget(target);
  } catch {
    return [];
  }
  if (t.kind !== 'file') return [];
  const file = applyVariablesWith(t.url, custom);
  if (!path.isAbsolute(file)) return [];
  const m3u8 = t.params.m3u8;
  const where = m3u8 !== undefined ? path.resolve(path.dirname(file), applyVariablesWith(m3u8, custom)) : file;
  const tpl = templateOf(where);
  if (!tpl) return [];
  return [{ ...tpl, ...(stream !== undefined ? { stream } : {}), hls: m3u8 !== undefined }];
}

/** The stream an entry belongs to, from what its path matched and what the push/rule names. */
function streamOf(groups: Record<string, string>, hint: string | undefined): string | null {
  if (groups['stream']) return groups['stream'];
  const wildcard = groups['wildcard'] ?? (groups['pluswildcard'] !== undefined ? groups['pluswildcard'].replace(/^\+/, '') : undefined);
  if (groups['basename']) return wildcard ? `${groups['basename']}+${wildcard}` : groups['basename'];
  if (hint === undefined || hint.startsWith('#')) return null;
  if (hint.endsWith('+')) return wildcard ? `${hint}${wildcard}` : null;
  return hint;
}

interface Candidate {
  path: string;
  stream: string | null;
  hls: boolean;
  folder: string;
}

interface Budget {
  dirs: number;
  candidates: number;
}

/** Walks `dir` along the component patterns; folders and files only, never a symbolic link. */
async function walk(dir: string, parts: RegExp[], depth: number, groups: Record<string, string>, tpl: Template, out: Map<string, Candidate>, budget: Budget): Promise<void> {
  if (budget.dirs <= 0 || budget.candidates <= 0) return;
  budget.dirs--;
  const re = parts[depth]!;
  const leaf = depth === parts.length - 1;
  let handle: import('node:fs').Dir;
  try {
    handle = await fs.opendir(dir);
  } catch {
    return; // not there (yet), not readable
  }
  const subdirs: [string, Record<string, string>][] = [];
  try {
    let n = 0;
    for await (const e of handle) {
      if (++n > MAX_DIR_ENTRIES) break;
      const m = re.exec(e.name);
      if (!m) continue;
      const g = { ...groups, ...(m.groups ?? {}) };
      const full = path.join(dir, e.name);
      if (leaf) {
        if (!e.isFile() || !MEDIA_EXT.test(e.name) || out.has(full)) continue;
        if (--budget.candidates < 0) break;
        out.set(full, { path: full, stream: streamOf(g, tpl.stream), hls: tpl.hls || /\.m3u8$/i.test(e.name), folder: tpl.folder });
      } else if (e.isDirectory()) {
        subdirs.push([full, g]);
      }
    }
  } catch {
    // a folder that went away while being read: what was read counts
  }
  for (const [sub, g] of subdirs) await walk(sub, parts, depth + 1, g, tpl, out, budget);
}

// ---- lengths ---------------------------------------------------------------------------------

/** Lengths by path, valid while size and mtime stay the same (bounded; oldest entries leave first). */
const durationCache = new Map<string, { size: number; mtimeMs: number; durationMs: number | null }>();

interface ProbeBudget {
  untilMs: number;
  bytes: number;
}

async function readRange(fh: fs.FileHandle, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(Math.max(0, len));
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** The length of a media file from its ends (mkv/webm: its stated Duration first), undefined if unknown. */
async function probeDuration(file: string, size: number, budget: ProbeBudget): Promise<number | undefined> {
  const ext = path.extname(file).slice(1).toLowerCase();
  if (ext === 'mp4' || ext === 'fmp4') {
    if (size > MAX_MP4_PROBE_BYTES) return undefined;
    budget.bytes -= Math.min(size, 4 * 1024 * 1024);
    const src = await fileByteSource(file);
    try {
      const idx = await openMp4(src, { partialFragment: 'warn', maxSamples: 2_000_000, maxTopLevelBoxes: 100_000 });
      return idx.samples.length > 0 ? idx.durationMs : undefined;
    } finally {
      await src.close();
    }
  }
  if (ext !== 'flv' && ext !== 'ts' && ext !== 'mkv' && ext !== 'webm' && ext !== 'dtsc') return undefined;
  const fh = await fs.open(file, 'r');
  try {
    if (ext === 'dtsc') {
      // a finished recording's closing header has every track's first and last ms; one being
      // written has only its opening header (no times) yet
      const { meta, headerAt } = await readDtscFileHeader((pos, len) => readRange(fh, pos, len), size);
      if (headerAt === 0 || meta.tracks.length === 0) return undefined;
      return Math.max(...meta.tracks.map((t) => t.lastMs)) - Math.min(...meta.tracks.map((t) => t.firstMs));
    }
    if (ext === 'mkv' || ext === 'webm') {
      try {
        const index = await readMkvIndex({ size, read: (pos, len) => readRange(fh, pos, len) });
        // a finished Haze recording states its length; one being written says 0 there
        if (index.info.durationMs !== undefined && index.info.durationMs > 0) return index.info.durationMs;
      } catch {
        // no usable header: the blocks tell
      }
    }
    const head = await readRange(fh, 0, Math.min(size, HEAD_BYTES));
    budget.bytes -= head.length;
    // the last FLV tag or Matroska Cluster may be longer than the tail: read 8 times more, twice
    for (let tailBytes = TAIL_BYTES; ; tailBytes *= 8) {
      let from = Math.max(0, size - tailBytes);
      if (ext === 'ts') from -= from % 188; // a TS tail starts on a packet boundary
      const tail = await readRange(fh, from, size - from);
      budget.bytes -= tail.length;
      const d = ext === 'flv' ? flvDurationMs(head, tail) : ext === 'ts' ? tsDurationMs(head, tail) : mkvDurationMs(head, tail);
      if (d !== undefined || from === 0 || tailBytes >= MAX_TAIL_BYTES || budget.bytes <= 0) return d;
    }
  } finally {
    await fh.close();
  }
}

/** A media file's length in ms as `recordings` reads it (no cache, one answer's budget); undefined if unknown. */
export async function recordingDurationMs(file: string): Promise<number | undefined> {
  const st = await fs.stat(file);
  return probeDuration(file, st.size, { untilMs: Date.now() + PROBE_BUDGET_MS, bytes: PROBE_BUDGET_BYTES });
}

async function durationOf(file: string, size: number, mtimeMs: number, budget: ProbeBudget): Promise<number | null> {
  const hit = durationCache.get(file);
  if (hit && hit.size === size && hit.mtimeMs === mtimeMs) return hit.durationMs;
  if (Date.now() > budget.untilMs || budget.bytes <= 0) return null; // next time
  let d: number | null = null;
  try {
    d = (await probeDuration(file, size, budget)) ?? null;
  } catch {
    d = null; // unreadable or not what its name says: unknown length
  }
  durationCache.delete(file);
  durationCache.set(file, { size, mtimeMs, durationMs: d });
  if (durationCache.size > MAX_CACHE) durationCache.delete(durationCache.keys().next().value!);
  return d;
}

/** An HLS playlist's segments inside `folder`: summed size, EXTINF sum, newest change. */
async function playlistFigures(file: string, folder: string): Promise<{ size: number; durationMs: number; mtimeMs: number; segments: string[] }> {
  const fh = await fs.open(file, 'r');
  let text: string;
  try {
    text = (await readRange(fh, 0, MAX_PLAYLIST_BYTES)).toString('utf8');
  } finally {
    await fh.close();
  }
  const { uris, durationMs } = hlsPlaylistSegments(text, MAX_DIR_ENTRIES);
  let size = 0;
  let mtimeMs = 0;
  const segments: string[] = [];
  for (const uri of uris) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) continue; // a URL, not a file of ours
    let rel: string;
    try {
      rel = decodeURIComponent(uri.split('?')[0]!);
    } catch {
      continue;
    }
    const seg = path.resolve(path.dirname(file), rel);
    const inside = path.relative(folder, seg);
    if (inside.startsWith('..') || path.isAbsolute(inside)) continue; // never outside the target's folder
    try {
      const st = await fs.lstat(seg);
      if (!st.isFile()) continue;
      size += st.size;
      mtimeMs = Math.max(mtimeMs, st.mtimeMs);
      segments.push(seg);
    } catch {
      // removed (a sliding window)
    }
  }
  return { size, durationMs, mtimeMs, segments };
}

// ---- the call --------------------------------------------------------------------------------

type PushRow = [number, string, string, string, unknown, { state?: string; kind?: string; files?: unknown; actualTarget?: string } | undefined];

export async function listRecordings(c: ApiCallContext, onlyStream: string | undefined): Promise<RecordingEntry[]> {
  const custom = customVariables(c);
  const templates: Template[] = [];
  /** Files a running push writes now, and the stream each push's files belong to. */
  const writing = new Set<string>();
  const known = new Map<string, string>();
  const answers = c.host.workers ? await c.host.workers.broadcast({ op: 'push_list' }).catch(() => []) : [];
  for (const a of answers) {
    for (const row of ((a as { pushes?: unknown[] } | undefined)?.pushes ?? []) as PushRow[]) {
      if (!Array.isArray(row) || typeof row[2] !== 'string') continue;
      const [, stream, target, actual, , status] = row;
      templates.push(...templatesOf(target, typeof stream === 'string' ? stream : undefined, custom));
      if (status?.kind !== 'file') continue;
      const files = Array.isArray(status.files) ? status.files.filter((f): f is string => typeof f === 'string' && path.isAbsolute(f)) : [];
      for (const f of files) known.set(f, stream);
      const state = status.state ?? '';
      if (state !== 'ended' && typeof actual === 'string' && path.isAbsolute(actual)) writing.add(path.resolve(actual));
    }
  }
  for (const rule of Object.values(c.host.config.get().auto_push)) {
    try {
      const r = parseAutoPushRule(rule, { checkTarget: false });
      templates.push(...templatesOf(r.target, r.stream, custom));
    } catch {
      // a hand-edited rule that does not parse records nothing
    }
  }
  const candidates = new Map<string, Candidate>();
  const budget: Budget = { dirs: MAX_DIRS, candidates: MAX_CANDIDATES };
  const seen = new Set<string>();
  for (const t of templates) {
    const key = `${t.folder}\0${t.parts.map((p) => p.source).join('/')}\0${t.stream ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    await walk(t.folder, t.parts, 0, {}, t, candidates, budget);
  }
  // files a push reported writing that no template found (PUSH_OUT_START rewrote the target)
  for (const [f, stream] of known) {
    if (!candidates.has(f) && MEDIA_EXT.test(f)) candidates.set(f, { path: f, stream, hls: false, folder: path.dirname(f) });
  }
  const now = Date.now();
  const rows: { c: Candidate; size: number; mtimeMs: number; durationMs: number | null | undefined; growing: boolean }[] = [];
  const segmentsOfPlaylists = new Set<string>();
  for (const cand of candidates.values()) {
    const stream = known.get(cand.path) ?? cand.stream;
    cand.stream = stream;
    if (onlyStream !== undefined && stream !== onlyStream) continue;
    try {
      const st = await fs.lstat(cand.path);
      if (!st.isFile()) continue;
      if (cand.hls) {
        const pl = await playlistFigures(cand.path, cand.folder);
        for (const s of pl.segments) segmentsOfPlaylists.add(s);
        const mtimeMs = Math.max(st.mtimeMs, pl.mtimeMs);
        rows.push({ c: cand, size: pl.size, mtimeMs, durationMs: pl.durationMs, growing: pl.segments.some((s) => writing.has(s)) || now - mtimeMs < GROWING_MS });
      } else {
        rows.push({ c: cand, size: st.size, mtimeMs: st.mtimeMs, durationMs: undefined, growing: writing.has(cand.path) || now - st.mtimeMs < GROWING_MS });
      }
    } catch {
      // gone since it was listed
    }
  }
  // an HLS recording's segments are part of its playlist's entry
  const listed = rows.filter((r) => r.c.hls || !segmentsOfPlaylists.has(r.c.path));
  listed.sort((a, b) => b.mtimeMs - a.mtimeMs || a.c.path.localeCompare(b.c.path));
  const top = listed.slice(0, MAX_RECORDINGS);
  const probe: ProbeBudget = { untilMs: Date.now() + PROBE_BUDGET_MS, bytes: PROBE_BUDGET_BYTES };
  const out: RecordingEntry[] = [];
  for (const r of top) {
    const d = r.durationMs !== undefined ? r.durationMs : await durationOf(r.c.path, r.size, r.mtimeMs, probe);
    out.push({ path: r.c.path, name: path.basename(r.c.path), stream: r.c.stream, size: r.size, modified: Math.floor(r.mtimeMs / 1000), duration_ms: d, growing: r.growing });
  }
  return out;
}

const recordings: ApiCall = {
  name: 'recordings',
  async run(arg, c) {
    let stream: string | undefined;
    if (isPlainObject(arg) && arg['stream'] !== undefined) {
      if (typeof arg['stream'] !== 'string' || !arg['stream']) {
        c.errors.push('recordings: stream must be a stream name');
        return;
      }
      stream = arg['stream'];
    } else if (arg !== true && !isPlainObject(arg)) {
      c.errors.push('recordings: expected true or {stream: "name"}');
      return;
    }
    try {
      return { recordings: await listRecordings(c, stream) };
    } catch (err) {
      c.errors.push(`recordings: ${errorText(err)}`);
      return { recordings: [] };
    }
  },
};

export const RECORDING_CALLS: readonly ApiCall[] = [recordings];
