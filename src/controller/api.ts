// The controller's JSON API commands (reference/mistserver.md §3.2-§3.4): one request object
// holds any number of calls; the answer always has `authorize` and `LTS: 1`, and unless
// `minimal` the full `streams` (with runtime `online`/`error`), `config` (+ iid, version, time,
// serverid) and the last 100 `log` lines. Calls Haze does not answer yet, and bad arguments,
// give an `error` member naming the problem; nothing here throws to the caller.

import fs from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { errorText, isHazeError } from '../util/errors.js';
import { log } from '../util/log.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { HAZE_VERSION } from '../util/version.js';
import { authorizeRequest, logout, unauthorizedBlock, normalizeAddress, type AuthResult, type AuthState } from './auth.js';
import type { ConfigStore } from './config-store.js';
import { MODULE_CALLS } from './api-modules.js';
import { triggerCapabilities } from './api-admin.js';
import type { WorkerLink } from './worker-link.js';
import type { CustomVariables } from './custom-variables.js';
import type { TriggerDispatcher } from '../triggers/dispatch.js';
import { streamOptions } from './stream-options.js';
import type { TypedEmitter } from '../util/events.js';
import type { SessionTable } from '../stats/session-table.js';
import type { AccessEntry, LiveFeedEvents, LogEntry, StatsSnapshot, StreamStateEntry } from '../stats/snapshot.js';
import { CONNECTORS, isPlainObject, validateStreamConfig, type HazeConfig, type StreamConfig } from './default-config.js';

export interface ActiveStreamStats {
  status: string /* 'Online'|'Booting'|'Offline'... */;
  viewers: number;
  inputs: number;
  outputs: number;
  clients: number;
  unspecified: number;
  tracks: number;
  views: number;
  viewseconds: number;
  upbytes: number;
  downbytes: number;
  packsent: number;
  packloss: number;
  packretrans: number;
  firstms: number;
  lastms: number;
  zerounix: number;
  health: unknown;
  pid: number;
  sourcepids: number[];
  tags: string[];
}

export interface ApiHost {
  config: ConfigStore;
  instanceId: string;
  /** live state of running streams, gathered from the workers by the lead's code */
  streamStats(): Promise<Record<string, Partial<ActiveStreamStats>>>;
  /** recent log lines [unixSeconds, kind, message] */
  logs(): readonly LogEntry[];
  /** the running workers (absent in unit tests of the API alone) */
  workers?: WorkerLink;
  /** values of the custom variables with a target (variable_list) */
  variables?: Pick<CustomVariables, 'current'>;
  /** the controller's triggers (STREAM_ADD / STREAM_CONFIG / STREAM_REMOVE) */
  triggers?: TriggerDispatcher;
  /** the statistics now (Prometheus, reference §7.3); absent in unit tests of the API alone */
  metrics?(): StatsSnapshot;
  /** log lines, finished sessions and stream states as they come (the WebSocket API, §3.5) */
  feed?: LiveFeed;
  /** the port of each listening connector in this run (config with the command line's flags applied) */
  ports?(): Record<string, number>;
  /** the sessions (clients, totals, stats_streams, tags); absent in unit tests of the API alone */
  stats?: SessionTable;
  /** measured cost per viewer / Mbit/s (the `capacity` call); absent in unit tests of the API alone */
  capacity?: Pick<import('./api-capacity.js').CapacitySampler, 'answer'>;
}

/** What the WebSocket API subscribes to: the recent history of each kind, then events. */
export interface LiveFeed {
  /** The last log lines (up to 100), oldest first. */
  logs(): readonly LogEntry[];
  /** The last finished sessions (up to 100), oldest first. */
  accesses(): readonly AccessEntry[];
  /** Every active stream's state now. */
  streamStates(): StreamStateEntry[];
  readonly events: TypedEmitter<LiveFeedEvents>;
}

export interface ApiRequestContext {
  peer: string;
  headers: Record<string, string | string[] | undefined>;
  auth: AuthState /* per connection */;
}

/** The fields of `active_streams`, in MistServer's order (reference §3.3). */
export const ACTIVE_STREAM_FIELDS: readonly (keyof ActiveStreamStats)[] = [
  'status',
  'viewers',
  'inputs',
  'outputs',
  'clients',
  'unspecified',
  'tracks',
  'views',
  'viewseconds',
  'upbytes',
  'downbytes',
  'packsent',
  'packloss',
  'packretrans',
  'firstms',
  'lastms',
  'zerounix',
  'health',
  'pid',
  'sourcepids',
  'tags',
];

/** Calls this module answers; any other request key gets an error naming it. */
export const API_CALLS: readonly string[] = [
  'authorize',
  'minimal',
  'config',
  'streams',
  'addstream',
  'deletestream',
  'active_streams',
  'capabilities',
  'save',
  'version',
  'log',
  'logout',
  ...MODULE_CALLS.map((c) => c.name),
];

/** `config` keys settable through the API (reference §3.3). */
const CONFIG_KEYS = [
  'debug',
  'protocols',
  'trustedproxy',
  'controller',
  'serverid',
  'triggers',
  'accesslog',
  'prometheus',
  'sessionViewerMode',
  'sessionInputMode',
  'sessionOutputMode',
  'sessionUnspecifiedMode',
  'sessionStreamInfoMode',
  'tknMode',
  'defaultStream',
  'location',
] as const;
/** keys the answer's `config` block adds; a client sending the block back is not an error */
const CONFIG_ANSWER_KEYS = new Set(['iid', 'version', 'time']);
const INCOMPLETE = 'incomplete list';
const LOG_LINES = 100;
const MAX_LISTED = 10;

const alog = log.child({ proc: 'api' });

// ---- helpers -------------------------------------------------------------------------------

function listed(names: string[]): string {
  const shown = names.slice(0, MAX_LISTED).map((n) => JSON.stringify(n.slice(0, 100)));
  return shown.join(', ') + (names.length > MAX_LISTED ? `, ... (${names.length} in all)` : '');
}

function describeError(call: string, err: unknown): string {
  if (isHazeError(err)) return `${call}: ${err.message}`;
  alog.error(`${call} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  return `${call}: internal error`;
}

// ---- package version and build time --------------------------------------------------------

export interface VersionInfo {
  version: string;
  release: string;
  date: string;
  time: string;
}
let versionCache: VersionInfo | undefined;

/** Haze's version (package.json) and build time (this module's mtime), as MistServer shows them. */
export function versionInfo(): VersionInfo {
  if (versionCache) return versionCache;
  const here = fileURLToPath(import.meta.url);
  let built = new Date();
  try {
    built = fs.statSync(here).mtime;
  } catch {
    // keep now
  }
  // C's __DATE__ / __TIME__ forms, as MistServer answers them
  const month = built.toLocaleString('en-US', { month: 'short' });
  const pad = (n: number): string => String(n).padStart(2, '0');
  versionCache = {
    version: HAZE_VERSION,
    release: 'Haze',
    date: `${month} ${String(built.getDate()).padStart(2, ' ')} ${built.getFullYear()}`,
    time: `${pad(built.getHours())}:${pad(built.getMinutes())}:${pad(built.getSeconds())}`,
  };
  return versionCache;
}

// ---- stream runtime state ------------------------------------------------------------------

/** `online` (0 offline/error, 1 active, 2 booting/available) and `error` text of one stream. */
export async function streamRuntime(cfg: StreamConfig, stats: Partial<ActiveStreamStats> | undefined): Promise<{ online: number; error?: string }> {
  const status = typeof stats?.status === 'string' ? stats.status : stats ? 'Online' : 'Offline';
  switch (status.toLowerCase()) {
    case 'online':
    case 'ready':
      return { online: 1 };
    case 'initializing':
      return { online: 2, error: 'Initializing...' };
    case 'booting':
    case 'loading':
      return { online: 2, error: 'Loading...' };
    case 'waiting':
    case 'waiting for data':
      return { online: 2, error: 'Waiting for data...' };
    case 'shutting down':
      return { online: 2, error: 'Shutting down...' };
    case 'offline':
      break;
    default:
      return { online: 0, error: status };
  }
  const source = cfg.source;
  if (source.startsWith('push://')) return { online: 0, error: 'Stream offline: waiting for a publisher' };
  if (source.startsWith('/')) {
    try {
      await fs.promises.stat(source);
      return { online: 2, error: 'Available' };
    } catch {
      return { online: 0, error: `Stream offline: Not found: ${source}` };
    }
  }
  return { online: 2, error: 'Available' };
}

async function streamsBlock(config: HazeConfig, names: string[], stats: Record<string, Partial<ActiveStreamStats>>): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const states = await Promise.all(names.map((n) => streamRuntime(config.streams[n]!, Object.hasOwn(stats, n) ? stats[n] : undefined)));
  names.forEach((n, i) => {
    out[n] = { ...config.streams[n], ...states[i] };
  });
  return out;
}

// ---- active_streams ------------------------------------------------------------------------

const FIELD_DEFAULTS: Record<string, unknown> = { status: 'Offline', health: null, sourcepids: [], tags: [] };

function fieldValue(stats: Partial<ActiveStreamStats>, field: string): unknown {
  const v = (stats as Record<string, unknown>)[field];
  if (v !== undefined) return v;
  return Object.hasOwn(FIELD_DEFAULTS, field) ? FIELD_DEFAULTS[field] : 0;
}

function checkFields(raw: unknown, errors: string[], call: string): string[] {
  const list = Array.isArray(raw) ? raw : [raw];
  const fields: string[] = [];
  const bad: string[] = [];
  for (const f of list) {
    if (typeof f === 'string' && (ACTIVE_STREAM_FIELDS as readonly string[]).includes(f)) fields.push(f);
    else bad.push(typeof f === 'string' ? f : JSON.stringify(f) ?? String(f));
  }
  if (bad.length) errors.push(`${call}: unknown fields ${listed(bad)} (known: ${ACTIVE_STREAM_FIELDS.join(', ')})`);
  return fields;
}

/** Selects by exact name, `base+` (every wildcard instance of base) or `#tag`. */
function streamMatcher(raw: unknown, errors: string[], call: string): ((name: string, st: Partial<ActiveStreamStats>) => boolean) | undefined {
  if (raw === undefined) return undefined;
  const list = Array.isArray(raw) ? raw : [raw];
  const names = new Set<string>();
  const prefixes: string[] = [];
  const tags: string[] = [];
  for (const item of list) {
    if (typeof item !== 'string') {
      errors.push(`${call}: "streams" must be a stream name or an array of them`);
      continue;
    }
    if (item.startsWith('#')) tags.push(item.slice(1));
    else if (item.endsWith('+')) prefixes.push(item);
    else names.add(item);
  }
  return (name, st) =>
    names.has(name) || prefixes.some((p) => name.startsWith(p)) || (tags.length > 0 && Array.isArray(st.tags) && st.tags.some((t) => tags.includes(t)));
}

/** active_streams (and stats_streams, `call`) over `stats`: names, field arrays, or the object form. */
export function activeStreams(arg: unknown, stats: Record<string, Partial<ActiveStreamStats>>, errors: string[], call = 'active_streams'): unknown {
  const names = Object.keys(stats).sort();
  if (Array.isArray(arg)) {
    const fields = checkFields(arg, errors, call);
    const out: Record<string, unknown[]> = {};
    for (const n of names) out[n] = fields.map((f) => fieldValue(stats[n]!, f));
    return out;
  }
  if (!isPlainObject(arg)) return names;
  const rawFields = arg['fields'];
  const fields = rawFields === undefined || (Array.isArray(rawFields) && rawFields.length === 0) ? [...ACTIVE_STREAM_FIELDS] : checkFields(rawFields, errors, call);
  const match = streamMatcher(arg['streams'] ?? arg['stream'], errors, call);
  const selected = match ? names.filter((n) => match(n, stats[n]!)) : names;
  const longform = arg['longform'] !== undefined && arg['longform'] !== false && arg['longform'] !== 0;
  if (longform) {
    const out: Record<string, Record<string, unknown>> = {};
    for (const n of selected) {
      const row: Record<string, unknown> = {};
      for (const f of fields) row[f] = fieldValue(stats[n]!, f);
      out[n] = row;
    }
    return out;
  }
  const data: Record<string, unknown[]> = {};
  for (const n of selected) data[n] = fields.map((f) => fieldValue(stats[n]!, f));
  return { fields, data };
}

// ---- capabilities --------------------------------------------------------------------------

interface InputInfo {
  name: string;
  desc: string;
  source_match: string[];
  priority: number;
}

/** Inputs this build has (MistServer capability shape and names, reference §5.2); later issues add pull inputs. */
export const INPUTS: readonly InputInfo[] = [
  { name: 'Buffer', desc: 'Live buffer: accepts pushes on any push-capable protocol', source_match: ['push://*'], priority: 9 },
  { name: 'MP4', desc: 'MP4/MOV files (progressive and fragmented)', source_match: ['/*.mp4', '/*.mov', '/*.m4a', '/*.m4v'], priority: 9 },
  { name: 'EBML', desc: 'Matroska and WebM files', source_match: ['/*.mkv', '/*.mka', '/*.webm'], priority: 9 },
  { name: 'FLV', desc: 'FLV files', source_match: ['/*.flv'], priority: 9 },
  { name: 'TS', desc: 'MPEG-TS files, and live MPEG-TS over UDP (unicast/multicast), HTTP or from a command', source_match: ['/*.ts', '/*.m2ts', 'tsudp://*', 'http://*.ts', 'https://*.ts', 'http-ts://*', 'https-ts://*', 'ts-exec:*'], priority: 9 },
  { name: 'DTSC', desc: 'DTSC files (also while they are being written), and dtsc:// pulls from another Haze or MistServer (origin to edge)', source_match: ['/*.dtsc', 'dtsc://*'], priority: 9 },
  { name: 'Balancer', desc: 'balance: sources: asks a load balancer (haze balance) for the origin that has the stream and pulls it over dtsc://, asking again when it drops (failover); ?fallback=dtsc://... when it has none', source_match: ['balance:*'], priority: 9 },
  { name: 'MP3', desc: 'MP3 files', source_match: ['/*.mp3'], priority: 9 },
  { name: 'AAC', desc: 'AAC files (ADTS)', source_match: ['/*.aac'], priority: 9 },
  { name: 'WAV', desc: 'WAV files (PCM, A-law, mu-law)', source_match: ['/*.wav'], priority: 9 },
  { name: 'Folder', desc: 'A folder: NAME+file.ext plays that file of it', source_match: ['/*/'], priority: 9 },
  { name: 'Playlist', desc: 'A playlist of files played in order as a live stream', source_match: ['/*.pls'], priority: 9 },
  { name: 'HLS', desc: 'HLS pulls: follows a live playlist (the highest-bandwidth variant of a multivariant one; TS or fMP4 segments), plays a VoD playlist once', source_match: ['http://*.m3u8', 'https://*.m3u8', 'http-hls://*', 'https-hls://*'], priority: 9 },
  { name: 'RTMP', desc: 'RTMP pulls: plays the stream from another RTMP server (rtmp:// or rtmps://; MistServer has no RTMP pull input)', source_match: ['rtmp://*', 'rtmps://*'], priority: 9 },
  { name: 'TSSRT', desc: 'MPEG-TS over SRT: srt://host:port sources Haze calls, srt://:port sources that call Haze', source_match: ['srt://*'], priority: 9 },
  { name: 'RTSP', desc: 'RTSP pulls: plays a camera or server over rtsp:// (Basic/Digest auth, RTP over UDP or TCP)', source_match: ['rtsp://*'], priority: 9 },
];

function globMatch(pattern: string, s: string): boolean {
  const re = new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$', 's');
  return re.test(s);
}

function connectorCapabilities(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of Object.values(CONNECTORS)) {
    if (!c.built) continue;
    const capa: Record<string, unknown> = { name: c.name, desc: c.desc };
    if (c.deps) capa['deps'] = c.deps;
    if (c.url_match) capa['url_match'] = c.url_match.length === 1 ? c.url_match[0] : c.url_match;
    if (c.url_prefix) capa['url_prefix'] = c.url_prefix;
    if (c.url_rel) capa['url_rel'] = c.url_rel;
    if (c.defaultPort !== undefined) {
      capa['port'] = c.defaultPort;
      capa['optional'] = {
        port: { name: c.transport === 'udp' ? 'UDP port' : 'TCP port', help: `Port to listen on (default ${c.defaultPort})`, option: '--port', type: 'uint', default: c.defaultPort },
        interface: { name: 'Interface', help: 'Address to listen on (default all)', option: '--interface', type: 'str' },
      };
    }
    out[c.name] = capa;
  }
  return out;
}

let lastCpuTimes: { idle: number; total: number } | undefined;

/** CPU use in per-mille since the previous call (since boot on the first one). */
function cpuUse(): number {
  let idle = 0;
  let total = 0;
  for (const c of os.cpus()) {
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
  }
  const prev = lastCpuTimes ?? { idle: 0, total: 0 };
  lastCpuTimes = { idle, total };
  const dTotal = total - prev.total;
  if (dTotal <= 0) return 0;
  return Math.max(0, Math.min(1000, Math.round((1000 * (dTotal - (idle - prev.idle))) / dTotal)));
}

function memInfo(): Record<string, number> {
  const mib = (bytes: number): number => Math.round(bytes / 1048576);
  const mem: Record<string, number> = { total: mib(os.totalmem()), free: mib(os.freemem()), cached: 0, used: 0, swapfree: 0, swaptotal: 0, shmfree: 0, shmtotal: 0 };
  try {
    const text = fs.readFileSync('/proc/meminfo', 'utf8');
    const kib = (key: string): number | undefined => {
      const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) * 1024 : undefined;
    };
    mem['cached'] = mib((kib('Cached') ?? 0) + (kib('Buffers') ?? 0));
    // os.freemem() is MemAvailable (free + reclaimable cache) on Linux: used = total - available,
    // and `free` is MemFree, as MistServer reports them (total - free - cached would count the cache twice)
    const free = kib('MemFree');
    const available = kib('MemAvailable');
    if (free !== undefined) mem['free'] = mib(free);
    if (available !== undefined) mem['used'] = Math.max(0, mem['total']! - mib(available));
    mem['swaptotal'] = mib(kib('SwapTotal') ?? 0);
    mem['swapfree'] = mib(kib('SwapFree') ?? 0);
  } catch {
    // not Linux: leave the zeros
  }
  try {
    const st = fs.statfsSync('/dev/shm');
    mem['shmtotal'] = mib(st.blocks * st.bsize);
    mem['shmfree'] = mib(st.bavail * st.bsize);
  } catch {
    // no /dev/shm
  }
  mem['used'] ||= Math.max(0, mem['total']! - mem['free']! - mem['cached']!);
  return mem;
}

/** The full capabilities answer (reference §3.3 `capabilities`). */
export function capabilities(): Record<string, unknown> {
  const cpus = os.cpus();
  const byModel = new Map<string, { model: string; cores: number; threads: number; mhz: number }>();
  for (const c of cpus) {
    const e = byModel.get(c.model) ?? { model: c.model, cores: 0, threads: 0, mhz: c.speed };
    e.cores++;
    e.threads++;
    byModel.set(c.model, e);
  }
  const mem = memInfo();
  const [one = 0, five = 0, fifteen = 0] = os.loadavg();
  const pct = (used: number, total: number): number => (total > 0 ? Math.round((100 * used) / total) : 0);
  const inputs: Record<string, unknown> = {};
  for (const i of INPUTS) inputs[i.name] = { ...i, optional: streamOptions(i.name) };
  return {
    connectors: connectorCapabilities(),
    inputs,
    triggers: triggerCapabilities(),
    cpu: [...byModel.values()],
    speed: cpus.reduce((s, c) => s + c.speed, 0),
    threads: cpus.length,
    mem,
    load: {
      mem: pct(mem['used']!, mem['total']!),
      shm: pct(mem['shmtotal']! - mem['shmfree']!, mem['shmtotal']!),
      one: Math.round(one * 100),
      five: Math.round(five * 100),
      fifteen: Math.round(fifteen * 100),
    },
    cpu_use: cpuUse(),
  };
}

/** `capabilities: "<source>"`: the input that would take that source, or an error. */
function sourceCapabilities(source: string): Record<string, unknown> {
  const input = INPUTS.filter((i) => i.source_match.some((p) => globMatch(p, source))).sort((a, b) => b.priority - a.priority)[0];
  if (!input) return { error: `no input of this Haze build accepts the source ${JSON.stringify(source.slice(0, 200))}` };
  return { ...input, optional: streamOptions(input.name), source };
}

// ---- stream config calls -------------------------------------------------------------------

function validateStreams(obj: Record<string, unknown>, call: string, errors: string[]): Map<string, StreamConfig> {
  const ok = new Map<string, StreamConfig>();
  for (const [key, value] of Object.entries(obj)) {
    if (key === INCOMPLETE) continue; // a `streams` answer sent back
    const r = validateStreamConfig(key, value);
    if (r.ok) ok.set(r.value.name, r.value);
    else errors.push(`${call}: ${r.error}`);
  }
  return ok;
}

function deleteNames(arg: unknown, config: HazeConfig, errors: string[]): string[] | undefined {
  let raw: unknown[];
  if (typeof arg === 'string') raw = [arg];
  else if (Array.isArray(arg)) raw = arg;
  else if (isPlainObject(arg)) raw = Object.keys(arg);
  else {
    errors.push('deletestream: expected a stream name, an array of names or an object keyed by name');
    return undefined;
  }
  const names: string[] = [];
  for (const r of raw) {
    if (typeof r !== 'string') {
      errors.push('deletestream: stream names must be strings');
      continue;
    }
    if (Object.hasOwn(config.streams, r)) names.push(r);
    else {
      const clean = sanitizeStreamName(r);
      if (clean && Object.hasOwn(config.streams, clean)) names.push(clean);
      // deleting a stream that does not exist is not an error: deletion is idempotent
    }
  }
  return names;
}

function applyConfigCall(arg: unknown, store: ConfigStore, errors: string[]): void {
  if (!isPlainObject(arg)) {
    errors.push('config: expected an object');
    return;
  }
  const allowed = CONFIG_KEYS as readonly string[];
  const ignored = Object.keys(arg).filter((k) => !allowed.includes(k) && !CONFIG_ANSWER_KEYS.has(k));
  if (ignored.length) errors.push(`config: ignored keys that cannot be set through the API: ${listed(ignored)}`);
  store.update((c) => {
    for (const key of CONFIG_KEYS) {
      if (!Object.hasOwn(arg, key)) continue;
      const v = structuredClone(arg[key]);
      if (key === 'controller' && isPlainObject(v)) {
        const next = { ...c.config.controller };
        for (const k of ['port', 'interface', 'username']) if (Object.hasOwn(v, k)) next[k] = v[k];
        c.config.controller = next;
      } else if (key === 'location' && isPlainObject(v)) {
        const next = { ...c.config.location } as Record<string, unknown>;
        for (const k of ['lat', 'lon', 'name']) if (Object.hasOwn(v, k)) next[k] = v[k];
        c.config.location = next as HazeConfig['config']['location'];
      } else {
        (c.config as Record<string, unknown>)[key] = v;
      }
    }
  });
}

/**
 * The stream changes that STREAM_ADD / STREAM_CONFIG / STREAM_REMOVE allow (reference §4.2: a
 * false answer of a blocking handler rejects that stream's change, not the whole request).
 */
export async function vetStreamChanges(host: ApiHost, call: string, changed: Map<string, StreamConfig>, removed: string[], errors: string[]): Promise<{ changed: Map<string, StreamConfig>; removed: string[] }> {
  const t = host.triggers;
  if (!t) return { changed, removed };
  const current = host.config.get().streams;
  const okChanged = new Map<string, StreamConfig>();
  for (const [name, cfg] of changed) {
    const before = Object.hasOwn(current, name) ? current[name] : undefined;
    if (before && JSON.stringify(before) === JSON.stringify(cfg)) {
      okChanged.set(name, cfg);
      continue;
    }
    const trigger = before ? 'STREAM_CONFIG' : 'STREAM_ADD';
    const r = await t.fire(trigger, name, { stream: name, config: JSON.stringify(cfg) });
    if (r.allowed) okChanged.set(name, cfg);
    else errors.push(`${call}: ${trigger} refused the ${before ? 'change of' : 'new'} stream ${name}`);
  }
  const okRemoved: string[] = [];
  for (const name of removed) {
    if ((await t.fire('STREAM_REMOVE', name, { stream: name })).allowed) okRemoved.push(name);
    else errors.push(`${call}: STREAM_REMOVE kept stream ${name}`);
  }
  return { changed: okChanged, removed: okRemoved };
}

// ---- the request ---------------------------------------------------------------------------

function present(request: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(request, key);
}

function flag(v: unknown): boolean {
  return v !== undefined && v !== false && v !== 0 && v !== null;
}

/**
 * Runs one API request. `ctx.auth` is the connection's AuthState (see auth.ts for proxied
 * requests). Never throws: problems become an `error` member.
 */
export async function handleApiCommand(request: Record<string, unknown>, ctx: ApiRequestContext, host: ApiHost): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const errors: string[] = [];
  const store = host.config;
  try {
    if (!isPlainObject(request)) return { error: 'the API request must be a JSON object', LTS: 1 };

    let auth: AuthResult;
    try {
      auth = authorizeRequest(request['authorize'], ctx, store);
    } catch (err) {
      errors.push(describeError('authorize', err));
      auth = { authorized: false, block: unauthorizedBlock(normalizeAddress(ctx.peer), store) };
    }
    out['authorize'] = auth.block;
    if (!auth.authorized) {
      if (errors.length) out['error'] = errors.join('; ');
      out['LTS'] = 1;
      return out;
    }

    const minimal = flag(request['minimal']);
    const unknown = Object.keys(request).filter((k) => !API_CALLS.includes(k));
    if (unknown.length) errors.push(`unknown or not yet supported calls: ${listed(unknown)}`);

    // changes first, so that the answer shows their result
    if (present(request, 'config')) {
      try {
        applyConfigCall(request['config'], store, errors);
      } catch (err) {
        errors.push(describeError('config', err));
      }
    }
    if (present(request, 'streams')) {
      try {
        const arg = request['streams'];
        if (!isPlainObject(arg)) errors.push('streams: expected an object of stream configs (the full set)');
        else {
          const before = errors.length;
          const valid = validateStreams(arg, 'streams', errors);
          // the full set deletes what it lacks: a typo must not delete everything, so all or nothing
          if (errors.length === before) {
            const gone = Object.keys(store.get().streams).filter((n) => !valid.has(n));
            const { changed, removed } = await vetStreamChanges(host, 'streams', valid, gone, errors);
            store.update((c) => {
              for (const n of removed) delete c.streams[n];
              for (const [n, cfg] of changed) c.streams[n] = cfg;
            });
          } else errors.push('streams: nothing changed');
        }
      } catch (err) {
        errors.push(describeError('streams', err));
      }
    }
    let added: string[] = [];
    if (present(request, 'addstream')) {
      try {
        const arg = request['addstream'];
        if (!isPlainObject(arg)) errors.push('addstream: expected an object {name: {source, ...}}');
        else {
          const valid = (await vetStreamChanges(host, 'addstream', validateStreams(arg, 'addstream', errors), [], errors)).changed;
          if (valid.size) {
            store.update((c) => {
              for (const [name, cfg] of valid) c.streams[name] = cfg;
            });
          }
          added = [...valid.keys()];
        }
      } catch (err) {
        errors.push(describeError('addstream', err));
      }
    }
    if (present(request, 'deletestream')) {
      try {
        const asked = deleteNames(request['deletestream'], store.get(), errors);
        const names = asked?.length ? (await vetStreamChanges(host, 'deletestream', new Map(), asked, errors)).removed : [];
        if (names.length) {
          store.update((c) => {
            for (const n of names) delete c.streams[n];
          });
        }
      } catch (err) {
        errors.push(describeError('deletestream', err));
      }
    }
    if (present(request, 'save')) {
      try {
        store.save();
      } catch (err) {
        errors.push(describeError('save', err));
      }
    }
    for (const call of MODULE_CALLS) {
      if (!present(request, call.name)) continue;
      try {
        const members = await call.run(request[call.name], { host, request, ctx, errors });
        if (members) Object.assign(out, members);
      } catch (err) {
        errors.push(describeError(call.name, err));
      }
    }
    if (store.saveError !== undefined) errors.push(`the config could not be saved: ${store.saveError}`);

    let statsCache: Promise<Record<string, Partial<ActiveStreamStats>>> | undefined;
    const stats = (): Promise<Record<string, Partial<ActiveStreamStats>>> =>
      (statsCache ??= host.streamStats().then(
        (s) => (isPlainObject(s) ? (s as Record<string, Partial<ActiveStreamStats>>) : {}),
        (err: unknown) => {
          errors.push(`stream statistics unavailable: ${errorText(err)}`);
          return {};
        },
      ));

    if (present(request, 'active_streams')) {
      try {
        out['active_streams'] = activeStreams(request['active_streams'], await stats(), errors);
      } catch (err) {
        errors.push(describeError('active_streams', err));
      }
    }
    if (present(request, 'capabilities')) {
      try {
        const arg = request['capabilities'];
        // `listening` (a Haze extension): the ports in use, which the command line may have changed
        out['capabilities'] = typeof arg === 'string' ? sourceCapabilities(arg) : { ...capabilities(), ...(host.ports ? { listening: host.ports() } : {}) };
      } catch (err) {
        errors.push(describeError('capabilities', err));
      }
    }
    if (present(request, 'version')) out['version'] = versionInfo();

    const config = store.get();
    // MistServer: addstream/deletestream answer only the streams they touched, marked
    // "incomplete list", unless the request also holds the full `streams` set
    const partial = !present(request, 'streams') && (present(request, 'addstream') || present(request, 'deletestream'));
    if (partial || !minimal || present(request, 'streams')) {
      try {
        if (!partial) {
          out['streams'] = await streamsBlock(config, Object.keys(config.streams), await stats());
        } else {
          const names = added.filter((n) => Object.hasOwn(config.streams, n));
          out['streams'] = { [INCOMPLETE]: 1, ...(await streamsBlock(config, names, await stats())) };
        }
      } catch (err) {
        errors.push(describeError('streams', err));
      }
    }
    if (!minimal || present(request, 'config')) {
      out['config'] = { ...config.config, iid: host.instanceId, version: versionInfo().version, time: Math.floor(Date.now() / 1000), serverid: config.config.serverid };
    }
    if (!minimal || present(request, 'log')) {
      try {
        out['log'] = host.logs().slice(-LOG_LINES);
      } catch (err) {
        errors.push(describeError('log', err));
      }
    }
    if (present(request, 'logout') && flag(request['logout'])) out['authorize'] = logout(ctx, store);
  } catch (err) {
    errors.push(describeError('request', err));
  }
  if (errors.length) out['error'] = errors.join('; ');
  out['LTS'] = 1;
  return out;
}
