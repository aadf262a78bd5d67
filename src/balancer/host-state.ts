// What the balancer knows about one monitored server (reference/mistserver.md §8.1): the figures
// of its last successful polls of the Prometheus JSON (§7.3, Haze's writer: src/stats/prometheus.ts
// prometheusJson), speeds from the counter deltas of two polls, and the bandwidth predicted for
// viewers sent there since (§8.2 "surge handling"). Pure: no sockets, no timers; the poller calls
// update() / failed() with the time of each poll, so tests and the simulator replay polls at will.
//
// Direction of the byte counters: Haze names them from the clients' side (snapshot.ts ByteCounts:
// `bw[0]` = up = bytes clients sent to the server, `bw[1]` = down = bytes sent to clients), the
// reverse of MistServer's. What loads a server's uplink is what it sends, so the balancer's
// `upSpeed` (the server's upload) comes from `bw[1]` and `downSpeed` from `bw[0]`; the same for
// each stream's `bw`.

import { HazeError } from '../util/errors.js';

export type HostStatus = 'starting' | 'online' | 'error' | 'offline';

/** §8.1: at most 1000 monitored hosts (the server's list enforces it); per host at most these many entries. */
export const MAX_HOSTS = 1000;
export const MAX_STREAMS_PER_HOST = 1000;
export const MAX_CONF_STREAMS = 4096;
export const MAX_TAGS = 64;
export const MAX_OUTPUTS = 64;

const KIB = 1024;
const MIB = 1024 * 1024;
/** §8.2: the per-viewer prediction when nothing better is known, and its clamp. */
export const DEFAULT_VIEWER_BPS = 128 * KIB;
export const MIN_VIEWER_BPS = 64 * KIB;
export const MAX_VIEWER_BPS = 1 * MIB;
/** §8.1: the predicted extra decays by this factor on each poll (the polls take over). */
export const ADD_DECAY = 0.75;
/** A stream's per-viewer figure falls to a lower measurement by at most this factor per poll. */
export const PEAK_HOLD = 0.9;
/** §8.1 "badness" of a failed poll: +1 MiB/s, then x1.2. */
export const FAIL_ADD_BPS = 1 * MIB;
export const FAIL_FACTOR = 1.2;

export interface StreamState {
  /** Viewers and inputs now (curr[0], curr[1]). */
  viewers: number;
  inputs: number;
  /** Upload bytes/s of this stream per viewer, held at its recent peak (0 when unknown). */
  bwPerViewer: number;
  /** Pulled from another server (`rep`): never an origin. */
  replicated: boolean;
  /** Bytes/s sent to this stream's clients (server upload) and received for it. */
  up: number;
  down: number;
}

interface Counters {
  atMs: number;
  sent: number;
  received: number;
  streams: Map<string, { sent: number; received: number }>;
}

function malformed(what: string): HazeError {
  return new HazeError('HAZE_ERR_MALFORMED', `poll answer: ${what}`, { fatal: false });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A required non-negative finite number. */
function num(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw malformed(`${key} is not a non-negative number`);
  return v;
}

/** An optional non-negative number (missing -> 0; present but wrong -> malformed). */
function optNum(o: Record<string, unknown>, key: string): number {
  return o[key] === undefined ? 0 : num(o, key);
}

/** An array of at least `n` non-negative numbers. */
function numArray(v: unknown, n: number, what: string): number[] {
  if (!Array.isArray(v) || v.length < n) throw malformed(`${what} is not an array of ${n} numbers`);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = v[i];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0) throw malformed(`${what}[${i}] is not a non-negative number`);
    out.push(x);
  }
  return out;
}

function stringArray(v: unknown, what: string, max: number): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw malformed(`${what} is not an array`);
  const out: string[] = [];
  for (const x of v) {
    if (typeof x !== 'string') throw malformed(`${what} holds a non-string`);
    if (out.length < max) out.push(x);
  }
  return out;
}

/** `[::1]:4242` -> `[::1]`, `10.0.0.1:4242` -> `10.0.0.1`, `host` -> `host`. */
export function hostAddress(name: string): string {
  const colon = name.lastIndexOf(':');
  if (colon <= 0 || name.endsWith(']')) return name;
  return name.slice(0, colon);
}

/** A stream's configuration name: `live+alice` is an instance of `live`. */
export function baseName(stream: string): string {
  const plus = stream.indexOf('+');
  return plus < 0 ? stream : stream.slice(0, plus);
}

export function clampViewerBps(bps: number): number {
  return Math.min(MAX_VIEWER_BPS, Math.max(MIN_VIEWER_BPS, bps));
}

export class HostState {
  readonly name: string;
  /** The server's upload capacity in bytes/s (`--server HOST:PORT/MiBps`). */
  capacityBytesPerS: number;
  status: HostStatus = 'starting';
  lastError?: string;

  /** Whole machine CPU in tenths of a percent (0-1000). */
  cpu = 0;
  /** RAM in use and its maximum in KiB; 0 max = unknown (ineligible until known). */
  ramUsed = 0;
  ramMax = 0;
  /** Bytes/s the server sends (its upload) and receives, from the last two polls. */
  upSpeed = 0;
  downSpeed = 0;
  /**
   * The upload the last poll says the server carries now: upSpeed, plus the half of the
   * viewers who arrived during the last interval that upSpeed (an average over it) misses. What
   * decisions weigh against the capacity.
   */
  upLoad = 0;
  /** Bytes/s predicted for viewers sent here that no poll has shown yet, and failed polls' badness. */
  addBandwidth = 0;
  /** The server's own bandwidth.limit (bwlimit), informative. */
  bwLimit = 0;
  streams = new Map<string, StreamState>();
  confStreams: Set<string> | undefined;
  tags: string[] = [];
  tagSet = new Set<string>();
  geo?: { lat: number; lon: number };
  /** geo in radians with cos(lat), for the great-circle angle on the hot path. */
  geoRad?: { lat: number; lon: number; cosLat: number };
  outputs: Record<string, string> = {};
  dtscPort?: number;
  lastPollMs?: number;

  /**
   * Viewers sent here per stream that no poll has shown yet, and their predicted bytes/s (part of
   * addBandwidth): a stream this balancer just started sending here counts as carried (the
   * clustering bonus) before a poll shows it, and when a poll shows new viewers of a stream,
   * that many predicted ones leave addBandwidth (the poll's figures hold them now). The rest
   * decays like addBandwidth; bounded like the stream map.
   */
  readonly pending = new Map<string, { viewers: number; bytesPerS: number }>();
  private totalViewers = 0;
  private prev: Counters | undefined;
  private readonly address: string;

  constructor(name: string, capacityBytesPerS: number) {
    this.name = name;
    this.capacityBytesPerS = capacityBytesPerS;
    this.address = hostAddress(name);
  }

  /** One successful poll: validates the §7.3 shape first, so a bad answer changes nothing. */
  update(atMs: number, json: unknown): void {
    if (!isObject(json)) throw malformed('not a JSON object');
    const cpu = num(json, 'cpu');
    const memTotal = num(json, 'mem_total');
    const memUsed = num(json, 'mem_used');
    const shmTotal = optNum(json, 'shm_total');
    const shmUsed = optNum(json, 'shm_used');
    const [received, sent] = numArray(json['bw'], 2, 'bw') as [number, number];
    const bwLimit = optNum(json, 'bwlimit');

    const rawStreams = json['streams'] ?? {};
    if (!isObject(rawStreams)) throw malformed('streams is not an object');
    const parsed: { name: string; viewers: number; inputs: number; sent: number; received: number; rep: boolean }[] = [];
    for (const name of Object.keys(rawStreams)) {
      const s = rawStreams[name];
      if (!isObject(s)) throw malformed(`streams.${name} is not an object`);
      const curr = numArray(s['curr'], 2, `streams.${name}.curr`);
      const bw = numArray(s['bw'], 2, `streams.${name}.bw`);
      // the first MAX_STREAMS_PER_HOST only: a server with more is no use to bound memory on
      if (parsed.length < MAX_STREAMS_PER_HOST) parsed.push({ name, viewers: curr[0]!, inputs: curr[1]!, received: bw[0]!, sent: bw[1]!, rep: s['rep'] === true });
    }
    const conf = stringArray(json['conf_streams'], 'conf_streams', MAX_CONF_STREAMS);
    const tags = stringArray(json['tags'], 'tags', MAX_TAGS);
    let geo: { lat: number; lon: number } | undefined;
    const loc = json['loc'];
    if (loc !== undefined) {
      if (!isObject(loc)) throw malformed('loc is not an object');
      const lat = loc['lat'];
      const lon = loc['lon'];
      if (lat !== undefined || lon !== undefined) {
        if (typeof lat !== 'number' || typeof lon !== 'number' || !(Math.abs(lat) <= 90) || !(Math.abs(lon) <= 180)) throw malformed('loc.lat/lon out of range');
        // Haze writes 0,0 for "no location configured" (default-config.ts); nobody hosts there
        if (lat !== 0 || lon !== 0) geo = { lat, lon };
      }
    }
    const outputsRaw = json['outputs'] ?? {};
    if (!isObject(outputsRaw)) throw malformed('outputs is not an object');
    const outputs: Record<string, string> = {};
    let nOut = 0;
    for (const k of Object.keys(outputsRaw)) {
      const t = outputsRaw[k];
      if (typeof t !== 'string') throw malformed(`outputs.${k} is not a string`);
      if (nOut++ < MAX_OUTPUTS) outputs[k] = t.replaceAll('HOST', this.address);
    }

    // ---- valid: apply ----
    const prev = this.prev;
    const dtS = prev ? (atMs - prev.atMs) / 1000 : 0;
    // A counter that went down means the server restarted: no speed from that pair of polls.
    const rate = (now: number, before: number | undefined): number => (dtS > 0 && before !== undefined && now >= before ? (now - before) / dtS : 0);
    if (dtS > 0 || !prev) {
      this.upSpeed = rate(sent, prev?.sent);
      this.downSpeed = rate(received, prev?.received);
    }
    this.cpu = Math.min(1000, cpu);
    this.ramMax = memTotal;
    // §8.1: RAM use is the higher of the two ratios (memory, and shared memory on its own
    // file system), expressed against mem_total so score.ts has one ratio to take.
    const shmRatio = shmTotal > 0 ? shmUsed / shmTotal : 0;
    this.ramUsed = memTotal > 0 ? Math.max(memUsed, shmRatio * memTotal) : 0;
    this.bwLimit = bwLimit;

    const streams = new Map<string, StreamState>();
    const counters = new Map<string, { sent: number; received: number }>();
    let total = 0;
    for (const p of parsed) {
      const before = prev?.streams.get(p.name);
      const up = rate(p.sent, before?.sent);
      const down = rate(p.received, before?.received);
      const old = this.streams.get(p.name);
      // per-viewer bandwidth only from a pair of polls with viewers (otherwise keep the last one):
      // the upload over the viewers there were on average, as viewers that came or went during
      // the interval were sent to for part of it; held at its recent peak, fading PEAK_HOLD per
      // poll, so a variable bit rate's quiet second does not fill a server for its busy one
      const meanViewers = (p.viewers + (old?.viewers ?? 0)) / 2;
      const measured = p.viewers > 0 && before !== undefined && dtS > 0 ? up / meanViewers : 0;
      const bwPerViewer = measured > 0 ? Math.max(measured, (old?.bwPerViewer ?? 0) * PEAK_HOLD) : (old?.bwPerViewer ?? 0);
      streams.set(p.name, { viewers: p.viewers, inputs: p.inputs, bwPerViewer, replicated: p.rep, up, down });
      counters.set(p.name, { sent: p.sent, received: p.received });
      total += p.viewers;
    }
    // predicted viewers that this poll shows leave the prediction (§8.1 lets it fade over
    // several polls instead, counting a surge twice meanwhile: once measured, once predicted);
    // a stream new here has no figure of its own yet, so its viewers keep their predicted one
    const predicted = new Map<string, number>();
    for (const [name, p] of this.pending) {
      const arrived = (streams.get(name)?.viewers ?? 0) - (this.streams.get(name)?.viewers ?? 0);
      if (arrived <= 0) continue;
      predicted.set(name, p.bytesPerS / p.viewers);
      const shown = Math.min(p.viewers, arrived);
      const bytes = (p.bytesPerS * shown) / p.viewers;
      this.addBandwidth = Math.max(0, this.addBandwidth - bytes);
      p.bytesPerS -= bytes;
      p.viewers -= shown;
    }
    // viewers that came during the interval were sent to for half of it, on average: upSpeed
    // shows half of their upload (viewers that left are gone from it, though the server still
    // counts them for a while)
    let arriving = 0;
    for (const [name, st] of streams) {
      const arrived = st.viewers - (this.streams.get(name)?.viewers ?? 0);
      if (arrived > 0) arriving += (arrived * (st.bwPerViewer > 0 ? st.bwPerViewer : (predicted.get(name) ?? 0))) / 2;
    }
    this.upLoad = this.upSpeed + arriving;
    this.streams = streams;
    this.totalViewers = total;
    this.confStreams = conf.length > 0 ? new Set(conf) : undefined;
    this.tags = tags;
    this.tagSet = new Set(tags);
    if (geo) {
      this.geo = geo;
      const lat = (geo.lat * Math.PI) / 180;
      this.geoRad = { lat, lon: (geo.lon * Math.PI) / 180, cosLat: Math.cos(lat) };
    } else {
      this.geo = undefined;
      this.geoRad = undefined;
    }
    this.outputs = outputs;
    const dtsc = outputs['DTSC'];
    const port = dtsc ? /:(\d{1,5})(?:\/|$)/.exec(dtsc.replace(/^[a-z]+:\/\//i, '').replace(/^\[[^\]]*\]/, '')) : null;
    if (port && Number(port[1]) > 0 && Number(port[1]) < 65536) this.dtscPort = Number(port[1]);
    else this.dtscPort = undefined;

    // §8.1: the prediction fades as the polls show the real traffic
    this.addBandwidth *= ADD_DECAY;
    for (const [k, v] of this.pending) {
      v.viewers *= ADD_DECAY;
      v.bytesPerS *= ADD_DECAY;
      // (what is left of a deleted entry's bytes stays in addBandwidth and fades there)
      if (v.viewers < 0.5) this.pending.delete(k);
    }
    this.prev = { atMs, sent, received, streams: counters };
    this.lastPollMs = atMs;
    this.status = 'online';
    this.lastError = undefined;
  }

  /** A failed poll (§8.1): no viewers go here while in error, and its predicted load grows. */
  failed(atMs: number, error: string): void {
    this.status = 'error';
    this.lastError = error;
    this.lastPollMs = atMs;
    // capped at the host's capacity: a long outage would otherwise grow it without bound (Infinity
    // after ~3,900 failures) and keep a recovered host ineligible for many polls; at the cap it is
    // full until its first good poll, then takes viewers again as the prediction decays
    this.addBandwidth = Math.min(this.capacityBytesPerS, (this.addBandwidth + FAIL_ADD_BPS) * FAIL_FACTOR);
  }

  /** Whether the stream is here (last poll) or this balancer sent viewers of it here since. */
  carries(stream: string): boolean {
    return this.carriesWith(this.streams.get(stream), stream);
  }

  /** carries() from the stream's entry here, for callers that looked it up. */
  carriesWith(s: StreamState | undefined, stream: string): boolean {
    return (s !== undefined && s.viewers + s.inputs > 0) || (this.pending.size > 0 && this.pending.has(stream));
  }

  /**
   * The bandwidth one more viewer of `stream` is predicted to take here (§8.2): the stream's
   * per-viewer figure on this host, else `hintBps` (the caller's figure for the stream from other
   * hosts: a stream new here still costs what it costs elsewhere), else this host's upload per
   * viewer, else 128 KiB/s; clamped to [64 KiB/s, 1 MiB/s].
   */
  viewerBps(stream: string, hintBps = 0): number {
    return this.viewerBpsOf(this.streams.get(stream)?.bwPerViewer ?? 0, hintBps);
  }

  /** viewerBps() from the stream's per-viewer figure here (0: none), for callers that looked it up. */
  viewerBpsOf(here: number, hintBps: number): number {
    if (here > 0) return clampViewerBps(here);
    if (hintBps > 0) return clampViewerBps(hintBps);
    // the upload only: down is mostly ingest, which does not grow with viewers
    if (this.totalViewers > 0 && this.upLoad > 0) return clampViewerBps(this.upLoad / this.totalViewers);
    return DEFAULT_VIEWER_BPS;
  }

  /** Counts one viewer sent here: its predicted bandwidth goes onto addBandwidth. Returns it. */
  addViewer(stream: string, hintBps = 0): number {
    const bps = this.viewerBps(stream, hintBps);
    this.addBandwidth += bps;
    const p = this.pending.get(stream);
    if (p !== undefined) {
      p.viewers++;
      p.bytesPerS += bps;
    } else if (this.pending.size < MAX_STREAMS_PER_HOST) this.pending.set(stream, { viewers: 1, bytesPerS: bps });
    return bps;
  }

  /** `dtsc://HOST:DTSCPORT` (DESIGN §5: the `?source=` answer), once a poll named the DTSC port. */
  dtscUrl(): string | undefined {
    return this.dtscPort === undefined ? undefined : `dtsc://${this.address}:${this.dtscPort}`;
  }

  /** Current + predicted upload as a fraction of capacity (least-loaded's measure). */
  load(): number {
    return this.capacityBytesPerS > 0 ? (this.upLoad + this.addBandwidth) / this.capacityBytesPerS : Infinity;
  }

  /** Viewers of one stream, or of all, as the last poll showed them. */
  viewers(stream?: string): number {
    if (stream === undefined) return this.totalViewers;
    return this.streams.get(stream)?.viewers ?? 0;
  }

  /** The per-host state of GET / and ?host= (§8.3); `score` is the caller's (it holds the weights). */
  summary(score?: Record<string, number>): Record<string, unknown> {
    const out: Record<string, unknown> = {
      state: this.status,
      cpu: Math.round(this.cpu) / 10,
      ram: this.ramMax > 0 ? Math.round((this.ramUsed / this.ramMax) * 1000) / 10 : 0,
      up: Math.round(this.upSpeed),
      up_load: Math.round(this.upLoad),
      up_add: Math.round(this.addBandwidth),
      down: Math.round(this.downSpeed),
      streams: this.streams.size,
      viewers: this.totalViewers,
      bwlimit: this.capacityBytesPerS,
      geo: this.geo ? { lat: this.geo.lat, lon: this.geo.lon } : null,
      tags: [...this.tags],
    };
    if (this.lastError !== undefined) out['error'] = this.lastError;
    if (score) out['score'] = score;
    return out;
  }
}
