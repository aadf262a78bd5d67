// The balancer's HTTP API (reference §8.3) as a pure function of (method, URL, headers, peer
// address) -> answer, over a Balancer model that holds the monitored hosts, the weights, the
// policy and the decision counters. No sockets and no timers here: balancer-main.ts owns the
// HTTP server and the poller and calls handleBalancerRequest per request, so the whole API is
// tested without a socket.
//
// Answers are text/plain with CORS headers, JSON where the reference says an object.
// Decisions made here (documented in docs/balancer.md):
// - the query commands are read on `/` only; any other path is `GET /<stream>`;
// - `GET /metrics` is the Prometheus text (so a stream named `metrics` is not balanced by path);
// - `?source=` excludes the asking server named by `?exclude=HOST:APIPORT`, else by the peer
//   address with `?port=APIPORT`; with neither nothing is excluded;
// - `?addserver=`, `?delserver=`, a non-empty `?weights=` and a non-empty `?policy=` change the
//   config and are accepted only from a loopback peer unless remoteConfig (MistServer's -L);
// - bad input is a 400 with a one-line text; an unexpected error a 500 with no stack trace.

import { HazeError, isHazeError, errorText } from '../util/errors.js';
import { log } from '../util/log.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { isLoopbackAddress, normalizeAddress } from '../controller/auth.js';
import { HostState } from './host-state.js';
import { Chooser, DEFAULT_WEIGHTS, POLICIES, parseTagAdjust, rate, streamViewerBps, type Client, type Policy, type TagAdjust, type Weights } from './score.js';
import { MAX_SERVERS, parseServerSpec, type ServerSpec } from './store.js';

const alog = log.child({ proc: 'balancer-api' });

/** Longest request target looked at; anything longer is a 414. */
export const MAX_URL_CHARS = 8192;
const MAX_WEIGHT = 1_000_000;
const MIB = 1024 * 1024;

export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
  'Access-Control-Allow-Headers': 'X-Latitude, X-Longitude, X-Tag-Adjust',
  'Access-Control-Max-Age': '600',
};

export interface BalancerRequest {
  method?: string;
  /** The request target: path and query, as on the request line. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** The peer's address as the socket gives it. */
  peer: string;
}

export interface BalancerAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/** What the Balancer tells its owner: start/stop polling a host, save the config. */
export interface BalancerHooks {
  onAdd?(host: HostState): void;
  onRemove?(name: string): void;
  /** Called after any config change (servers, weights, policy). */
  onChange?(): void;
}

export interface BalancerOptions {
  fallback?: string;
  remoteConfig?: boolean;
  policy?: Policy;
  weights?: Partial<Weights>;
  hooks?: BalancerHooks;
}

/** The balancer's state: hosts by name, weights, the chooser and decision counters. */
export class Balancer {
  readonly hosts = new Map<string, HostState>();
  weights: Weights;
  readonly chooser: Chooser;
  fallback: string;
  remoteConfig: boolean;
  /** Decisions by the policy in force when they were made. */
  readonly decisionsByPolicy = new Map<Policy, number>();
  hooks: BalancerHooks;

  constructor(opts: BalancerOptions = {}) {
    this.weights = { ...DEFAULT_WEIGHTS, ...(opts.weights ?? {}) };
    this.chooser = new Chooser(opts.policy ?? 'media-aware');
    this.fallback = opts.fallback ?? 'FULL';
    this.remoteConfig = opts.remoteConfig ?? false;
    this.hooks = opts.hooks ?? {};
  }

  get policy(): Policy {
    return this.chooser.policy;
  }

  list(): HostState[] {
    return [...this.hosts.values()];
  }

  /** Adds (or updates the capacity of) a server; at most MAX_SERVERS. */
  addServer(spec: ServerSpec): HostState {
    const capacity = spec.capacityMiBps * MIB;
    const had = this.hosts.get(spec.name);
    if (had) {
      had.capacityBytesPerS = capacity;
      return had;
    }
    if (this.hosts.size >= MAX_SERVERS) throw new HazeError('HAZE_ERR_TOO_LARGE', `at most ${MAX_SERVERS} servers`, { status: 400 });
    const host = new HostState(spec.name, capacity);
    this.hosts.set(spec.name, host);
    this.hooks.onAdd?.(host);
    return host;
  }

  delServer(name: string): boolean {
    if (!this.hosts.delete(name)) return false;
    this.hooks.onRemove?.(name);
    return true;
  }

  setPolicy(p: Policy): void {
    this.chooser.policy = p;
  }

  countDecision(): void {
    this.decisionsByPolicy.set(this.policy, (this.decisionsByPolicy.get(this.policy) ?? 0) + 1);
  }

  decisionsTotal(): number {
    let n = 0;
    for (const v of this.decisionsByPolicy.values()) n += v;
    return n;
  }

  /** What balancer.json holds. */
  servers(): ServerSpec[] {
    return this.list().map((h) => ({ name: h.name, capacityMiBps: h.capacityBytesPerS / MIB }));
  }
}

// ---- answers ----

function answer(status: number, body: string, extra: Record<string, string> = {}): BalancerAnswer {
  // nosniff: `?fallback=` text is echoed back and must stay text
  return { status, body, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', ...CORS_HEADERS, ...extra } };
}

function json(value: unknown, status = 200): BalancerAnswer {
  return answer(status, JSON.stringify(value) + '\n');
}

function badRequest(text: string): HazeError {
  return new HazeError('HAZE_ERR_INVALID_ARG', text, { status: 400 });
}

function headerOf(headers: BalancerRequest['headers'], name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** `?lat=&lon=` or X-Latitude/X-Longitude; both or neither; degrees in range. */
export function parseClient(q: URLSearchParams, headers: BalancerRequest['headers']): Client | undefined {
  const lat = q.get('lat') ?? headerOf(headers, 'x-latitude');
  const lon = q.get('lon') ?? headerOf(headers, 'x-longitude');
  if ((lat === undefined || lat === null || lat === '') && (lon === undefined || lon === null || lon === '')) return undefined;
  const la = Number(lat);
  const lo = Number(lon);
  if (lat == null || lon == null || lat.trim() === '' || lon.trim() === '' || !Number.isFinite(la) || !Number.isFinite(lo) || Math.abs(la) > 90 || Math.abs(lo) > 180) {
    throw badRequest('lat/lon: give both, as degrees (lat -90..90, lon -180..180)');
  }
  return { lat: la, lon: lo };
}

function parseTags(q: URLSearchParams, headers: BalancerRequest['headers']): TagAdjust | undefined {
  const text = q.get('tag_adjust') ?? headerOf(headers, 'x-tag-adjust');
  if (text === undefined || text === null || text === '') return undefined;
  try {
    return parseTagAdjust(text);
  } catch (err) {
    throw badRequest(`tag_adjust: ${isHazeError(err) ? err.message : 'want a JSON object of numbers'}`);
  }
}

/** A stream name from a path segment or a query value; 400 when it cannot be one. */
export function parseStream(raw: string, what = 'stream'): string {
  const name = sanitizeStreamName(raw);
  if (!name) throw badRequest(`${what}: not a valid stream name`);
  return name;
}

/** `{"cpu":..,"ram":..,"bw":..,"geo":..,"bonus":..}`, any subset, finite numbers 0..1e6. */
export function parseWeights(text: string, current: Weights): Weights {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw badRequest('weights: not JSON (want {"cpu":500,"ram":500,"bw":1000,"geo":1000,"bonus":50})');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('weights: want a JSON object');
  const out: Weights = { ...current };
  for (const [k, n] of Object.entries(v as Record<string, unknown>)) {
    if (!(k in DEFAULT_WEIGHTS)) throw badRequest(`weights: unknown weight ${JSON.stringify(k.slice(0, 20))} (cpu, ram, bw, geo, bonus)`);
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0 || n > MAX_WEIGHT) throw badRequest(`weights: ${k} must be a number from 0 to ${MAX_WEIGHT}`);
    out[k as keyof Weights] = n;
  }
  return out;
}

/** Host part of HOST:APIPORT (brackets of an IPv6 address kept). */
export function hostOf(name: string): string {
  const i = name.lastIndexOf(':');
  return i > 0 ? name.slice(0, i) : name;
}

/** The DTSC port of a host: from its state, else from its DTSC output template. */
function dtscPortOf(h: HostState): number | undefined {
  if (h.dtscPort) return h.dtscPort;
  const m = /:(\d+)(?:\/|$)/.exec(h.outputs['DTSC'] ?? '');
  return m ? Number(m[1]) : undefined;
}

/** An output template with HOST and `$` filled in, plus the remaining query variables. */
export function outputUrl(template: string, host: HostState, stream: string, rest: URLSearchParams): string {
  let url = template.replace(/HOST/g, hostOf(host.name)).replace(/\$/g, encodeURIComponent(stream).replace(/%2B/gi, '+'));
  const extra = rest.toString();
  if (extra) url += (url.includes('?') ? '&' : '?') + extra;
  return url;
}

function requireLocal(bal: Balancer, req: BalancerRequest, what: string): void {
  if (bal.remoteConfig) return;
  if (!isLoopbackAddress(normalizeAddress(req.peer))) {
    throw new HazeError('HAZE_ERR_AUTH', `${what} is accepted only from localhost (start with --remote-config to allow it from anywhere)`, { status: 403 });
  }
}

function hostSummary(bal: Balancer, h: HostState): Record<string, unknown> {
  // the score of a viewer of no particular stream, split into its terms (§8.3 score{cpu,ram,bw})
  const r = rate(h, undefined, bal.weights);
  return h.summary({ cpu: round1(r.cpu), ram: round1(r.ram), bw: round1(r.bw), total: round1(r.score) });
}

function round1(n: number): number {
  return Math.round(n * 10) / 10;
}

function allHosts(bal: Balancer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const h of bal.list()) out[h.name] = hostSummary(bal, h);
  return out;
}

function serverList(bal: Balancer): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of bal.list()) out[h.name] = h.status;
  return out;
}

/** The query variables that steer the choice and are not passed on to the media server. */
const OWN_VARS = ['proto', 'lat', 'lon', 'tag_adjust'];

function viewer(bal: Balancer, req: BalancerRequest, rawPath: string, q: URLSearchParams): BalancerAnswer {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath.slice(1));
  } catch {
    throw badRequest('path: bad percent-encoding');
  }
  const stream = parseStream(decoded);
  const client = parseClient(q, req.headers);
  const tags = parseTags(q, req.headers);
  const proto = q.get('proto');
  if (proto !== null && !/^[A-Za-z0-9_:+.-]{1,40}$/.test(proto)) throw badRequest('proto: not a connector name');
  const hosts = bal.list();
  // the viewer is counted (its predicted bandwidth added) only once the answer is a good one
  const host = bal.chooser.viewer(hosts, stream, { weights: bal.weights, count: false, ...(client ? { client } : {}), ...(tags ? { tags } : {}) });
  if (!host) return answer(200, bal.fallback);
  const template = proto === null ? undefined : host.outputs[proto];
  // a template is polled text: one with control characters would break the Location header
  if (proto !== null && (template === undefined || /[\x00-\x1f\x7f]/.test(template))) return answer(404, `${host.name} has no ${proto} output`);
  host.addViewer(stream, streamViewerBps(hosts, stream));
  bal.countDecision();
  if (template === undefined) return answer(200, host.name);
  const rest = new URLSearchParams(q);
  for (const v of OWN_VARS) rest.delete(v);
  const url = outputUrl(template, host, stream, rest);
  return answer(307, url, { Location: url });
}

function source(bal: Balancer, req: BalancerRequest, q: URLSearchParams): BalancerAnswer {
  const stream = parseStream(q.get('source')!, 'source');
  let exclude: string | undefined;
  const ex = q.get('exclude');
  const port = q.get('port');
  if (ex) exclude = parseServerSpec(ex).name;
  else if (port) {
    const p = Number(port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw badRequest('port: want the asking server\'s API port, 1..65535');
    const peer = normalizeAddress(req.peer);
    exclude = `${peer.includes(':') ? `[${peer}]` : peer}:${p}`;
  }
  const host = bal.chooser.source(bal.list(), stream, { weights: bal.weights, ...(exclude !== undefined ? { exclude } : {}) });
  const dtsc = host && dtscPortOf(host);
  if (!host || !dtsc) return answer(200, q.get('fallback') || bal.fallback);
  bal.countDecision();
  return answer(200, `dtsc://${hostOf(host.name)}:${dtsc}`);
}

function ingest(bal: Balancer, q: URLSearchParams): BalancerAnswer {
  const raw = q.get('ingest')!;
  const cpu = raw === '' ? 0 : Number(raw);
  if (!Number.isFinite(cpu) || cpu < 0 || cpu > 100) throw badRequest('ingest: want the CPU percentage the ingest needs, 0..100');
  const host = bal.chooser.ingest(bal.list(), cpu, { weights: bal.weights });
  if (!host) return answer(200, q.get('fallback') || bal.fallback);
  bal.countDecision();
  return answer(200, host.name);
}

function viewersMerged(bal: Balancer): Record<string, number> {
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const h of bal.list()) for (const [name, s] of h.streams) out[name] = (out[name] ?? 0) + s.viewers;
  return { ...out };
}

function streamStats(bal: Balancer, which: string): Record<string, [number, number, number, number]> {
  const all = which === '*';
  const name = all ? '' : parseStream(which, 'streamstats');
  const out = new Map<string, [number, number, number, number]>();
  for (const h of bal.list()) {
    for (const [n, s] of h.streams) {
      if (!all && n !== name) continue;
      const cur = out.get(n) ?? [0, 0, 0, 0];
      // bandwidth per viewer: the viewer-weighted mean over the hosts that carry the stream
      const viewers = cur[0] + s.viewers;
      cur[1] = viewers > 0 ? (cur[1] * cur[0] + s.bwPerViewer * s.viewers) / viewers : Math.max(cur[1], s.bwPerViewer);
      cur[0] = viewers;
      cur[2] += s.up;
      cur[3] += s.down;
      out.set(n, cur);
    }
  }
  return Object.fromEntries(out);
}

function route(bal: Balancer, req: BalancerRequest): BalancerAnswer {
  const method = (req.method ?? 'GET').toUpperCase();
  if (method === 'OPTIONS') return answer(204, '');
  if (method !== 'GET' && method !== 'HEAD') return answer(405, 'only GET', { Allow: 'GET, HEAD, OPTIONS' });
  if (req.url.length > MAX_URL_CHARS) return answer(414, `request target longer than ${MAX_URL_CHARS} characters`);
  const qi = req.url.indexOf('?');
  const rawPath = qi >= 0 ? req.url.slice(0, qi) : req.url;
  const q = new URLSearchParams(qi >= 0 ? req.url.slice(qi + 1) : '');
  if (rawPath === '/metrics') return answer(200, metricsText(bal), { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
  if (rawPath !== '/' && rawPath !== '') {
    if (!rawPath.startsWith('/')) throw badRequest('request target must start with /');
    return viewer(bal, req, rawPath, q);
  }
  if (q.has('source')) return source(bal, req, q);
  if (q.has('ingest')) return ingest(bal, q);
  if (q.has('stream')) {
    const name = parseStream(q.get('stream')!);
    let n = 0;
    for (const h of bal.list()) n += h.viewers(name);
    return answer(200, String(n));
  }
  if (q.has('viewers')) return json(viewersMerged(bal));
  if (q.has('streamstats')) return json(streamStats(bal, q.get('streamstats') || '*'));
  if (q.has('host')) {
    const name = q.get('host')!.toLowerCase();
    const h = bal.hosts.get(name) ?? bal.hosts.get(`${name}:4242`);
    if (!h) return answer(404, `no server ${JSON.stringify(name.slice(0, 300))}`);
    return json(hostSummary(bal, h));
  }
  if (q.has('lstserver')) return json(serverList(bal));
  if (q.has('addserver')) {
    requireLocal(bal, req, 'addserver');
    const spec = parseServerSpec(q.get('addserver')!);
    bal.addServer(spec);
    bal.hooks.onChange?.();
    return json(serverList(bal));
  }
  if (q.has('delserver')) {
    requireLocal(bal, req, 'delserver');
    const name = parseServerSpec(q.get('delserver')!).name;
    if (!bal.delServer(name)) return answer(404, `no server ${name}`);
    bal.hooks.onChange?.();
    return json(serverList(bal));
  }
  if (q.has('weights')) {
    const text = q.get('weights')!;
    if (text !== '') {
      requireLocal(bal, req, 'weights');
      bal.weights = parseWeights(text, bal.weights);
      bal.hooks.onChange?.();
    }
    return json(bal.weights);
  }
  if (q.has('policy')) {
    const p = q.get('policy')!;
    if (p !== '') {
      requireLocal(bal, req, 'policy');
      if (!(POLICIES as readonly string[]).includes(p)) throw badRequest(`policy: one of ${POLICIES.join(', ')}`);
      bal.setPolicy(p as Policy);
      bal.hooks.onChange?.();
    }
    return answer(200, bal.policy);
  }
  return json(allHosts(bal));
}

/** The whole API: never throws; bad input is a 4xx text, anything unexpected a 500 line. */
export function handleBalancerRequest(bal: Balancer, req: BalancerRequest): BalancerAnswer {
  try {
    const a = route(bal, req);
    if ((req.method ?? 'GET').toUpperCase() === 'HEAD') a.body = '';
    return a;
  } catch (err) {
    if (isHazeError(err) && err.status !== undefined && err.status < 500) return answer(err.status, err.message);
    alog.error(`request ${req.url.slice(0, 200)} failed: ${errorText(err)}`);
    return answer(500, 'internal error (see the balancer log)');
  }
}

// ---- metrics (Prometheus text exposition 0.0.4) ----

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

const STATUSES = ['starting', 'online', 'error', 'offline'] as const;

export function metricsText(bal: Balancer): string {
  const lines: string[] = [];
  const fam = (name: string, type: string, help: string, samples: [string, number][]): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, v] of samples) lines.push(`${name}${labels} ${v}`);
  };
  fam('haze_balancer_decisions_total', 'counter', 'Balancing decisions made (viewers, sources, ingests).', [['', bal.decisionsTotal()]]);
  fam(
    'haze_balancer_policy_decisions_total',
    'counter',
    'Balancing decisions by the policy in force when made.',
    (POLICIES as readonly Policy[]).map((p): [string, number] => [`{policy="${p}"}`, bal.decisionsByPolicy.get(p) ?? 0]),
  );
  fam('haze_balancer_servers', 'gauge', 'Monitored servers.', [['', bal.hosts.size]]);
  const score: [string, number][] = [];
  const add: [string, number][] = [];
  const up: [string, number][] = [];
  const load: [string, number][] = [];
  const capacity: [string, number][] = [];
  const viewers: [string, number][] = [];
  const status: [string, number][] = [];
  for (const h of bal.list()) {
    const l = `host="${label(h.name)}"`;
    score.push([`{${l}}`, num(rate(h, undefined, bal.weights).score)]);
    add.push([`{${l}}`, num(Math.round(h.addBandwidth))]);
    up.push([`{${l}}`, num(Math.round(h.upSpeed))]);
    load.push([`{${l}}`, num(Math.round(h.upLoad))]);
    capacity.push([`{${l}}`, num(h.capacityBytesPerS)]);
    viewers.push([`{${l}}`, h.viewers()]);
    for (const st of STATUSES) status.push([`{${l},status="${st}"}`, h.status === st ? 1 : 0]);
  }
  fam('haze_balancer_server_score', 'gauge', 'Score of each server for a viewer of no particular stream.', score);
  fam('haze_balancer_server_predicted_bytes_per_second', 'gauge', 'Predicted extra upload from the viewers sent since the last polls.', add);
  fam('haze_balancer_server_up_bytes_per_second', 'gauge', 'Measured upload speed at the last poll.', up);
  fam('haze_balancer_server_load_bytes_per_second', 'gauge', 'Upload the last poll says the server carries now (measured, plus what it misses of viewers who arrived during the interval).', load);
  fam('haze_balancer_server_capacity_bytes_per_second', 'gauge', 'Configured upload capacity.', capacity);
  fam('haze_balancer_server_viewers', 'gauge', 'Viewers at the last poll.', viewers);
  fam('haze_balancer_server_status', 'gauge', 'Server status (1 for the current one).', status);
  return lines.join('\n') + '\n';
}
