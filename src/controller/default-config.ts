// The config file shape (reference/mistserver.md Appendix A.6, §3.3, §3.4; DESIGN §5): MistServer's
// config.json, so a MistServer user's file and integration scripts carry over. This module holds
// the embedded default, the connector table (which protocol Haze has built so far, default
// ports, URL patterns for `capabilities`), the validators and the CLI port overrides.

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sanitizeStreamName } from '../util/stream-name.js';
import { validateTriggers } from '../triggers/trigger-config.js';

/** The demo VoD file shipped with Haze (media/demo.mp4 in the package; this module runs from dist/src/controller). */
export const DEMO_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../media/demo.mp4');

export interface ProtocolConfig {
  connector: string;
  port?: number;
  interface?: string;
  [option: string]: unknown;
}

export interface StreamConfig {
  name: string;
  source: string;
  /** live buffer (DVR window) in milliseconds */
  DVR?: number;
  processes?: unknown[];
  tags?: string[];
  [option: string]: unknown;
}

export interface ControllerSettings {
  port?: number;
  interface?: string;
  username?: string;
  [key: string]: unknown;
}

export interface ServerConfig {
  controller: ControllerSettings;
  protocols: ProtocolConfig[];
  triggers: Record<string, unknown>;
  debug: number;
  serverid: string;
  accesslog: string;
  prometheus: string;
  defaultStream: string;
  trustedproxy: string[];
  location: { lat: number; lon: number; name: string };
  sessionViewerMode: number;
  sessionInputMode: number;
  sessionOutputMode: number;
  sessionUnspecifiedMode: number;
  sessionStreamInfoMode: number;
  tknMode: number;
  [key: string]: unknown;
}

export interface AccountConfig {
  /** md5 hex of the plain password (MistServer's storage) */
  password: string;
  [key: string]: unknown;
}

export interface HazeConfig {
  account: Record<string, AccountConfig>;
  config: ServerConfig;
  streams: Record<string, StreamConfig>;
  auto_push: Record<string, unknown>;
  push_settings: { wait: number; maxspeed: number };
  variables: Record<string, unknown>;
  streamkeys: Record<string, string>;
  jwks: unknown[];
  tags: string[];
  bandwidth: { limit: number; exceptions: string[] };
  ui_settings: Record<string, unknown>;
  config_split: Record<string, unknown>;
  /** keys of a MistServer file that Haze does not use yet are kept and written back */
  [key: string]: unknown;
}

/** CLI port flags of `haze serve`; they override the file for one run and are never saved. */
export interface PortOverrides {
  api?: number;
  http?: number;
  rtmp?: number;
  rtsp?: number;
  srt?: number;
  dtsc?: number;
  webrtc?: number;
}

export interface ConnectorInfo {
  /** MistServer's connector name (DESIGN §5) */
  name: string;
  desc: string;
  /** own listening port; HTTP-dependent outputs (deps "HTTP") have none */
  defaultPort?: number;
  transport: 'tcp' | 'udp' | 'http';
  /** the `haze serve` flag that overrides its port */
  flag?: Exclude<keyof PortOverrides, 'api'>;
  deps?: 'HTTP';
  url_match?: string[];
  url_prefix?: string;
  url_rel?: string;
  /**
   * Whether this Haze build serves the connector. A configured connector that is not built yet
   * is logged ("not built yet") and skipped; each later issue flips its entry to true.
   */
  built: boolean;
}

/** Every connector name Haze knows, built or not (reference §6.1, §6.3). */
export const CONNECTORS: Readonly<Record<string, ConnectorInfo>> = {
  HTTP: {
    name: 'HTTP',
    desc: 'HTTP connector: player page, player.js, stream info JSON; hosts every HTTP-based output',
    defaultPort: 8080,
    transport: 'tcp',
    flag: 'http',
    // its own pages (`/$.html`, `/json_$.js`, `/info_$.js`, `/player.js`) come with the player
    built: true,
  },
  RTMP: {
    name: 'RTMP',
    desc: 'Real Time Messaging Protocol: publish and play',
    defaultPort: 1935,
    transport: 'tcp',
    flag: 'rtmp',
    url_rel: '/play/$',
    built: true,
  },
  FLV: { name: 'FLV', desc: 'Progressive FLV over HTTP', transport: 'http', deps: 'HTTP', url_match: ['/$.flv'], built: true },
  HTTPTS: { name: 'HTTPTS', desc: 'Progressive MPEG-TS over HTTP', transport: 'http', deps: 'HTTP', url_match: ['/$.ts'], built: true },
  HLS: { name: 'HLS', desc: 'HTTP Live Streaming (MPEG-TS segments)', transport: 'http', deps: 'HTTP', url_prefix: '/hls/$/', built: true },
  CMAF: {
    name: 'CMAF',
    desc: 'CMAF: fragmented MP4 over HLS (v7, LL-HLS) and DASH',
    transport: 'http',
    deps: 'HTTP',
    url_prefix: '/cmaf/$/',
    built: true,
  },
  MP4: { name: 'MP4', desc: 'Progressive fragmented MP4 over HTTP', transport: 'http', deps: 'HTTP', url_match: ['/$.mp4', '/$.fmp4'], built: true },
  EBML: { name: 'EBML', desc: 'Progressive WebM / Matroska over HTTP', transport: 'http', deps: 'HTTP', url_match: ['/$.webm', '/$.mkv'], built: true },
  OGG: { name: 'OGG', desc: 'Progressive Ogg (Opus, Vorbis) over HTTP', transport: 'http', deps: 'HTTP', url_match: ['/$.ogg'], built: true },
  MP3: { name: 'MP3', desc: 'MP3 audio over HTTP', transport: 'http', deps: 'HTTP', url_match: ['/$.mp3'], built: true },
  AAC: { name: 'AAC', desc: 'AAC audio (ADTS) over HTTP', transport: 'http', deps: 'HTTP', url_match: ['/$.aac'], built: true },
  WAV: { name: 'WAV', desc: 'WAV audio (PCM, A-law, mu-law) over HTTP', transport: 'http', deps: 'HTTP', url_match: ['/$.wav'], built: true },
  RTSP: { name: 'RTSP', desc: 'Real Time Streaming Protocol (RTP over UDP or TCP)', defaultPort: 5554, transport: 'tcp', flag: 'rtsp', built: true },
  TSSRT: { name: 'TSSRT', desc: 'MPEG-TS over SRT', defaultPort: 8889, transport: 'udp', flag: 'srt', built: true },
  DTSC: { name: 'DTSC', desc: 'DTSC server-to-server (dtsc://): pulls of any stream and pushes', defaultPort: 4200, transport: 'tcp', flag: 'dtsc', built: true },
  WebRTC: {
    name: 'WebRTC',
    desc: 'WebRTC (WHIP/WHEP, WebSocket signalling on the HTTP port; media over UDP)',
    defaultPort: 18203,
    transport: 'udp',
    flag: 'webrtc',
    url_prefix: '/webrtc/$',
    built: true,
  },
};

/** True when this build serves `connector`; false for planned and unknown names. */
export function isConnectorBuilt(connector: string): boolean {
  return CONNECTORS[connector]?.built === true;
}

export const DEFAULT_API_PORT = 4242;
export const DEFAULT_DVR_MS = 50_000;
export const MIN_DVR_MS = 1000;

/** A fresh copy of the embedded default config (DESIGN §5: no file -> this). */
export function defaultConfig(): HazeConfig {
  return {
    account: {},
    config: {
      controller: { port: DEFAULT_API_PORT, interface: '127.0.0.1' },
      protocols: [
        { connector: 'HTTP', port: 8080 },
        { connector: 'RTMP', port: 1935 },
        { connector: 'FLV' },
        { connector: 'HTTPTS' },
        { connector: 'HLS' },
        { connector: 'CMAF' },
        { connector: 'MP4' },
        { connector: 'EBML' },
        { connector: 'OGG' },
        { connector: 'MP3' },
        { connector: 'AAC' },
        { connector: 'WAV' },
        { connector: 'RTSP', port: 5554 },
        { connector: 'TSSRT', port: 8889 },
        { connector: 'DTSC', port: 4200 },
        { connector: 'WebRTC', port: 18203 },
      ],
      triggers: {},
      debug: 4,
      serverid: '',
      accesslog: 'LOG',
      prometheus: '',
      defaultStream: '',
      trustedproxy: [],
      location: { lat: 0, lon: 0, name: '' },
      sessionViewerMode: 14,
      sessionInputMode: 15,
      sessionOutputMode: 15,
      sessionUnspecifiedMode: 0,
      sessionStreamInfoMode: 1,
      tknMode: 15,
    },
    streams: {
      live: { name: 'live', source: 'push://127.0.0.1', DVR: DEFAULT_DVR_MS, processes: [] },
      demo: { name: 'demo', source: DEMO_FILE, processes: [] },
    },
    auto_push: {},
    push_settings: { wait: 0, maxspeed: 0 },
    variables: {},
    streamkeys: {},
    jwks: [],
    tags: [],
    bandwidth: { limit: 0, exceptions: ['::1', '127.0.0.0/8', '10.0.0.0/8', '192.168.0.0/16', '172.16.0.0/12'] },
    ui_settings: {},
    config_split: {},
  };
}

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

const MAX_SOURCE_CHARS = 4096;

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPort(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;
}

/** Keys the controller adds to stream objects in answers; never stored. */
const RUNTIME_STREAM_KEYS = ['online', 'error'];

/**
 * Checks one stream config (reference §3.4). `name` is the key it is stored under: it is
 * sanitised and must be a plain configured name (no `+`: `live+x` instances use `live`).
 * The value returned is a copy with `name` forced to the key and runtime keys removed.
 */
export function validateStreamConfig(name: string, obj: unknown): Validation<StreamConfig> {
  const clean = typeof name === 'string' ? sanitizeStreamName(name) : '';
  if (!clean) return { ok: false, error: `invalid stream name ${JSON.stringify(name)}: use a-z, 0-9, _ . - (at most 100 characters)` };
  // `__proto__` or `constructor` as a key would reach Object.prototype through streams[name]
  if (clean in Object.prototype) return { ok: false, error: `stream name ${JSON.stringify(name)} is reserved` };
  if (clean.includes('+')) {
    return { ok: false, error: `stream name ${JSON.stringify(name)} contains '+': wildcard instances (base+NAME) use the config of their base stream` };
  }
  if (!isPlainObject(obj)) return { ok: false, error: `stream ${clean}: the stream config must be an object` };
  const source = obj['source'];
  if (typeof source !== 'string' || source.trim() === '') return { ok: false, error: `stream ${clean}: "source" is required and must be a non-empty string` };
  if (source.length > MAX_SOURCE_CHARS) return { ok: false, error: `stream ${clean}: "source" is longer than ${MAX_SOURCE_CHARS} characters` };
  const dvr = obj['DVR'];
  if (dvr !== undefined && (!Number.isSafeInteger(dvr) || (dvr as number) < MIN_DVR_MS)) {
    return { ok: false, error: `stream ${clean}: "DVR" must be an integer number of milliseconds >= ${MIN_DVR_MS}` };
  }
  const processes = obj['processes'];
  if (processes !== undefined && !Array.isArray(processes)) return { ok: false, error: `stream ${clean}: "processes" must be an array` };
  const tags = obj['tags'];
  if (tags !== undefined && (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string'))) {
    return { ok: false, error: `stream ${clean}: "tags" must be an array of strings` };
  }
  const value: StreamConfig = { ...(structuredClone(obj) as Record<string, unknown>), name: clean, source };
  for (const k of RUNTIME_STREAM_KEYS) delete value[k];
  return { ok: true, value };
}

/** Checks one `config.protocols[]` entry. */
export function validateProtocol(p: unknown, index: number): Validation<ProtocolConfig> {
  if (!isPlainObject(p)) return { ok: false, error: `protocols[${index}] must be an object` };
  if (typeof p['connector'] !== 'string' || p['connector'] === '') return { ok: false, error: `protocols[${index}]: "connector" must be a non-empty string` };
  if (p['port'] !== undefined && !isPort(p['port'])) return { ok: false, error: `protocols[${index}] (${p['connector']}): "port" must be an integer 1-65535` };
  if (p['interface'] !== undefined && typeof p['interface'] !== 'string') return { ok: false, error: `protocols[${index}]: "interface" must be a string` };
  // public addresses for the stream info's URLs (reference §6.4), one URL or a list
  const pubaddr = p['pubaddr'];
  if (pubaddr !== undefined && !(Array.isArray(pubaddr) ? pubaddr : [pubaddr]).every((u) => typeof u === 'string' && /^https?:\/\/[^\s"'<>?#]+$/.test(u))) {
    return { ok: false, error: `protocols[${index}]: "pubaddr" must be an http(s) base URL or a list of them` };
  }
  return { ok: true, value: p as ProtocolConfig };
}

type Check = (v: unknown) => boolean;
const isString: Check = (v) => typeof v === 'string';
const isInt = (min: number, max: number): Check => (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const isStringArray: Check = (v) => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isFiniteNumber: Check = (v) => typeof v === 'number' && Number.isFinite(v);

/** Checks of the `config` section's keys (reference §3.3 `config`); other keys pass through. */
export const SERVER_CONFIG_CHECKS: Readonly<Record<string, { check: Check; want: string }>> = {
  debug: { check: isInt(0, 10), want: 'an integer 0-10' },
  serverid: { check: isString, want: 'a string' },
  accesslog: { check: isString, want: 'a string' },
  prometheus: { check: isString, want: 'a string' },
  defaultStream: { check: isString, want: 'a string' },
  trustedproxy: { check: isStringArray, want: 'an array of strings' },
  sessionViewerMode: { check: isInt(0, 15), want: 'an integer 0-15' },
  sessionInputMode: { check: isInt(0, 15), want: 'an integer 0-15' },
  sessionOutputMode: { check: isInt(0, 15), want: 'an integer 0-15' },
  sessionUnspecifiedMode: { check: isInt(0, 15), want: 'an integer 0-15' },
  sessionStreamInfoMode: { check: isInt(0, 15), want: 'an integer 0-15' },
  tknMode: { check: isInt(0, 15), want: 'an integer 0-15' },
  location: {
    check: (v) =>
      isPlainObject(v) &&
      (v['lat'] === undefined || isFiniteNumber(v['lat'])) &&
      (v['lon'] === undefined || isFiniteNumber(v['lon'])) &&
      (v['name'] === undefined || isString(v['name'])),
    want: 'an object {lat: number, lon: number, name: string}',
  },
  controller: {
    check: (v) =>
      isPlainObject(v) &&
      (v['port'] === undefined || isPort(v['port'])) &&
      (v['interface'] === undefined || isString(v['interface'])) &&
      (v['username'] === undefined || isString(v['username'])),
    want: 'an object {port: 1-65535, interface: string, username: string}',
  },
};

/** Checks the `config` section; returns the first problem or undefined. */
export function checkServerConfig(c: unknown): string | undefined {
  if (!isPlainObject(c)) return '"config" must be an object';
  for (const [key, { check, want }] of Object.entries(SERVER_CONFIG_CHECKS)) {
    if (c[key] !== undefined && !check(c[key])) return `config.${key} must be ${want}`;
  }
  if (c['triggers'] !== undefined) {
    const t = validateTriggers(c['triggers']);
    if (!t.ok) return t.error;
  }
  if (!Array.isArray(c['protocols'])) return 'config.protocols must be an array';
  for (let i = 0; i < c['protocols'].length; i++) {
    const r = validateProtocol(c['protocols'][i], i);
    if (!r.ok) return `config.${r.error}`;
  }
  return undefined;
}

/**
 * Checks a whole config (as read from a file or after an API change) and fills keys it lacks:
 * missing top-level keys and `config.*` keys take the embedded default's values, except
 * `streams` and `account`, which are empty when absent (a file that names no streams has none).
 */
export function normalizeConfig(raw: unknown): Validation<HazeConfig> {
  if (!isPlainObject(raw)) return { ok: false, error: 'the config must be a JSON object' };
  const def = defaultConfig();
  const out: Record<string, unknown> = { ...def, streams: {}, account: {}, ...raw };
  if (raw['config'] !== undefined && !isPlainObject(raw['config'])) return { ok: false, error: '"config" must be an object' };
  out['config'] = { ...def.config, ...(raw['config'] as Record<string, unknown> | undefined) };
  const problem = checkServerConfig(out['config']);
  if (problem) return { ok: false, error: problem };

  const account = out['account'];
  if (!isPlainObject(account)) return { ok: false, error: '"account" must be an object' };
  for (const [user, acc] of Object.entries(account)) {
    if (user in Object.prototype) return { ok: false, error: `account name ${JSON.stringify(user)} is reserved` };
    if (!isPlainObject(acc) || typeof acc['password'] !== 'string') return { ok: false, error: `account.${user}.password must be a string (md5 hex)` };
  }

  const streams = out['streams'];
  if (!isPlainObject(streams)) return { ok: false, error: '"streams" must be an object' };
  const checked: Record<string, StreamConfig> = {};
  for (const [key, value] of Object.entries(streams)) {
    const r = validateStreamConfig(key, value);
    if (!r.ok) return { ok: false, error: `streams.${key}: ${r.error}` };
    if (r.value.name !== key) return { ok: false, error: `streams.${key}: the key is not a canonical stream name (it sanitises to "${r.value.name}")` };
    checked[key] = r.value;
  }
  out['streams'] = checked;

  for (const key of ['auto_push', 'variables', 'streamkeys', 'ui_settings', 'config_split', 'push_settings', 'bandwidth'] as const) {
    if (!isPlainObject(out[key])) return { ok: false, error: `"${key}" must be an object` };
  }
  for (const key of ['jwks', 'tags'] as const) {
    if (!Array.isArray(out[key])) return { ok: false, error: `"${key}" must be an array` };
  }
  return { ok: true, value: out as HazeConfig };
}

/**
 * The port each listening thing uses for this run: `controller` (the API) plus every configured
 * connector with a port of its own (the first entry of a connector name wins), with the CLI
 * flags applied. A flag for a connector missing from `protocols` adds it for this run: the user
 * asked for it. HTTP-dependent outputs have no port and are absent. Nothing is written back.
 */
export function effectivePorts(config: HazeConfig, overrides: PortOverrides = {}): Record<string, number> {
  const ports: Record<string, number> = {};
  ports['controller'] = overrides.api ?? config.config.controller.port ?? DEFAULT_API_PORT;
  for (const p of config.config.protocols) {
    if (ports[p.connector] !== undefined) continue;
    const info = CONNECTORS[p.connector];
    const port = p.port ?? info?.defaultPort;
    if (port !== undefined) ports[p.connector] = port;
  }
  for (const info of Object.values(CONNECTORS)) {
    const v = info.flag ? overrides[info.flag] : undefined;
    if (v !== undefined) ports[info.name] = v;
  }
  return ports;
}

/**
 * The config as this run uses it: `effectivePorts` applied to `config.controller.port` and to
 * the first `protocols[]` entry of each overridden connector (appended when absent). A copy.
 */
export function applyPortOverrides(config: HazeConfig, overrides: PortOverrides = {}): HazeConfig {
  const out = structuredClone(config) as HazeConfig;
  if (overrides.api !== undefined) out.config.controller = { ...out.config.controller, port: overrides.api };
  for (const info of Object.values(CONNECTORS)) {
    const port = info.flag ? overrides[info.flag] : undefined;
    if (port === undefined) continue;
    const entry = out.config.protocols.find((p) => p.connector === info.name);
    if (entry) entry.port = port;
    else out.config.protocols.push({ connector: info.name, port });
  }
  return out;
}
