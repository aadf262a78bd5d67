// Scoring and choosing (reference/mistserver.md §8.2, MistServer's hostDetails::rate) and the
// three policies the balancer can run: 'media-aware' (the §8.2 score with prediction, and viewers
// of a stream kept on the servers already carrying it while they have room), and the two classic
// methods the issue compares it with, 'round-robin' and 'least-loaded'. Pure: HostStates in, a
// choice out; the HTTP server and the simulator (test/unit/balancer-sim.test.ts) share it.

import { HazeError } from '../util/errors.js';
import { baseName, type HostState } from './host-state.js';

export interface Weights {
  cpu: number;
  ram: number;
  bw: number;
  geo: number;
  bonus: number;
}

/** §8.1: -C 500, -R 500, -B 1000, -G 1000, -X 50. */
export const DEFAULT_WEIGHTS: Weights = Object.freeze({ cpu: 500, ram: 500, bw: 1000, geo: 1000, bonus: 50 });

export interface Client {
  lat: number;
  lon: number;
}

/** §8.2 `{"tagA,tagB": +N, "-tagC": -M}`. */
export type TagAdjust = Record<string, number>;

export const MAX_TAG_ADJUST_TEXT = 4096;
export const MAX_TAG_ADJUST_KEYS = 64;

/** `?tag_adjust=` / `X-Tag-Adjust`: a JSON object of finite numbers; anything else is a HazeError. */
export function parseTagAdjust(text: string): TagAdjust {
  const bad = (why: string): HazeError => new HazeError('HAZE_ERR_INVALID_ARG', `tag_adjust: ${why}`, { status: 400, fatal: false });
  if (text.length > MAX_TAG_ADJUST_TEXT) throw bad(`longer than ${MAX_TAG_ADJUST_TEXT} characters`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad('not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('not a JSON object');
  const keys = Object.keys(v);
  if (keys.length > MAX_TAG_ADJUST_KEYS) throw bad(`more than ${MAX_TAG_ADJUST_KEYS} keys`);
  // a null prototype: keys such as "__proto__" are plain tags, not the object's prototype
  const out = Object.create(null) as TagAdjust;
  for (const k of keys) {
    const n = (v as Record<string, unknown>)[k];
    if (typeof n !== 'number' || !Number.isFinite(n)) throw bad(`"${k.slice(0, 50)}" is not a finite number`);
    const names = (k.startsWith('-') ? k.slice(1) : k).split(',');
    if (names.some((t) => t.length === 0)) throw bad(`"${k.slice(0, 50)}" has an empty tag`);
    out[k] = n;
  }
  return out;
}

interface TagRule {
  invert: boolean;
  tags: string[];
  amount: number;
}

// rate() runs once per host per decision: a tag_adjust object is split into rules once.
const compiled = new WeakMap<TagAdjust, TagRule[]>();
function rulesOf(adj: TagAdjust): TagRule[] {
  let r = compiled.get(adj);
  if (!r) {
    r = Object.keys(adj).map((k) => {
      const invert = k.startsWith('-');
      return { invert, tags: (invert ? k.slice(1) : k).split(','), amount: adj[k]! };
    });
    compiled.set(adj, r);
  }
  return r;
}

/** Σ of the rules matching the host: a key matches when the host has any listed tag; `-` inverts. */
export function tagAdjustment(host: HostState, adj: TagAdjust): number {
  let sum = 0;
  for (const rule of rulesOf(adj)) {
    let has = false;
    for (const t of rule.tags) {
      if (host.tagSet.has(t)) {
        has = true;
        break;
      }
    }
    if (has !== rule.invert) sum += rule.amount;
  }
  return sum;
}

const RAD = Math.PI / 180;

/** The great-circle angle between two points in degrees, in radians (0..π); haversine, stable for near points. */
export function greatCircleAngle(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const dLat = (lat2 - lat1) * RAD;
  const dLon = (lon2 - lon1) * RAD;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * RAD) * Math.cos(lat2 * RAD) * Math.sin(dLon / 2) ** 2;
  return 2 * Math.asin(Math.min(1, Math.sqrt(a)));
}

export interface Rating {
  score: number;
  cpu: number;
  ram: number;
  bw: number;
  geo: number;
  bonus: number;
  tags: number;
}

// One scratch record for the hot path (the chooser rates every host for every viewer); rate()
// hands out a copy.
const scratch: Rating = { score: 0, cpu: 0, ram: 0, bw: 0, geo: 0, bonus: 0, tags: 0 };

// The client's position in radians, kept while the same Client object is rated against every host.
let lastClient: Client | undefined;
let cLat = 0;
let cLon = 0;
let cCosLat = 1;

/** The geo part: greatCircleAngle() with the host's and the client's trigonometry done once. */
function geoPart(client: Client, g: { lat: number; lon: number; cosLat: number }, wGeo: number): number {
  if (client !== lastClient) {
    lastClient = client;
    cLat = client.lat * RAD;
    cLon = client.lon * RAD;
    cCosLat = Math.cos(cLat);
  }
  const sLat = Math.sin((g.lat - cLat) / 2);
  const sLon = Math.sin((g.lon - cLon) / 2);
  const a = sLat * sLat + cCosLat * g.cosLat * sLon * sLon;
  return wGeo - (wGeo * 2 * Math.asin(Math.min(1, Math.sqrt(a)))) / Math.PI;
}

/** `carried`: whether the host carries the stream, when the caller already knows. */
function rateInto(r: Rating, host: HostState, stream: string | undefined, w: Weights, client?: Client, tags?: TagAdjust, carried?: boolean): number {
  r.score = r.cpu = r.ram = r.bw = r.geo = r.bonus = r.tags = 0;
  // a host whose last poll failed (or never succeeded) gets nothing: a dead edge stops receiving
  // viewers at its first failed poll, not once its badness has piled up
  if (host.status !== 'online') return 0;
  const cap = host.capacityBytesPerS;
  // §8.2: RAM or bandwidth unknown -> ineligible
  if (!(host.ramMax > 0) || !(cap > 0)) return 0;
  const used = host.upLoad + host.addBandwidth;
  if (used >= cap) return 0;
  if (stream !== undefined && host.confStreams !== undefined && !host.confStreams.has(stream) && !host.confStreams.has(baseName(stream))) return 0;
  r.cpu = w.cpu - (Math.min(1000, host.cpu) * w.cpu) / 1000;
  r.ram = w.ram - (Math.min(host.ramUsed, host.ramMax) * w.ram) / host.ramMax;
  r.bw = w.bw - (used * w.bw) / cap;
  if (client !== undefined && host.geoRad !== undefined) r.geo = geoPart(client, host.geoRad, w.geo);
  if (stream !== undefined && (carried ?? host.carries(stream))) r.bonus = w.bonus;
  const base = r.cpu + r.ram + r.bw + r.geo + r.bonus;
  if (tags !== undefined) r.tags = tagAdjustment(host, tags);
  // §8.2: a negative adjustment larger than the score clamps to 0 (ineligible)
  r.score = Math.max(0, base + r.tags);
  return r.score;
}

/** §8.2's score of a host for a viewer of `stream` (undefined: no stream, e.g. an ingest); 0 = ineligible. */
export function rate(host: HostState, stream: string | undefined, w: Weights, client?: Client, tags?: TagAdjust): Rating {
  rateInto(scratch, host, stream, w, client, tags);
  return { ...scratch };
}

/** The stream's upload per viewer over the hosts that measured one (0 when none did). */
export function streamViewerBps(hosts: readonly HostState[], stream: string): number {
  let sum = 0;
  let n = 0;
  for (const h of hosts) {
    const s = h.streams.get(stream);
    if (s !== undefined && s.bwPerViewer > 0) {
      sum += s.bwPerViewer * s.viewers;
      n += s.viewers;
    }
  }
  return n > 0 ? sum / n : 0;
}

/** The score of an origin that is full for viewers, as a source for edges: below any other. */
const FULL_SOURCE_SCORE = 1e-6;

export type Policy = 'media-aware' | 'round-robin' | 'least-loaded';
export const POLICIES: readonly Policy[] = ['media-aware', 'round-robin', 'least-loaded'];

export class Chooser {
  policy: Policy;
  /** Decisions taken (viewer, source, ingest), for the balancer's metrics. */
  decisions = 0;
  private rr = 0;

  constructor(policy: Policy = 'media-aware') {
    this.policy = policy;
  }

  /** Best host for a viewer of `stream`; counts the viewer (addViewer) unless count=false. */
  viewer(hosts: readonly HostState[], stream: string, opts: { weights: Weights; client?: Client; tags?: TagAdjust; count?: boolean }): HostState | undefined {
    this.decisions++;
    let chosen: HostState | undefined;
    let hint: number;
    if (this.policy === 'media-aware') {
      chosen = mediaAware(hosts, stream, opts.weights, opts.client, opts.tags);
      hint = mediaHint;
    } else {
      hint = streamViewerBps(hosts, stream);
      chosen = this.policy === 'round-robin' ? this.roundRobin(hosts) : leastLoaded(hosts);
    }
    if (chosen !== undefined && opts.count !== false) chosen.addViewer(stream, hint);
    return chosen;
  }

  /** Best origin for an edge: has the stream with an active input, not replicated, not `exclude` (HOST:APIPORT). */
  source(hosts: readonly HostState[], stream: string, opts: { weights: Weights; exclude?: string }): HostState | undefined {
    this.decisions++;
    let best: HostState | undefined;
    let bestScore = 0;
    for (const h of hosts) {
      if (h.name === opts.exclude) continue;
      const s = h.streams.get(stream);
      if (s === undefined || s.inputs <= 0 || s.replicated) continue;
      // an origin full of viewers still feeds edges (a relay is one viewer's worth, and without
      // it the edge's viewers get nothing): it scores just above nothing
      const score = rateInto(scratch, h, stream, opts.weights) || (h.status === 'online' ? FULL_SOURCE_SCORE : 0);
      if (score > bestScore) {
        best = h;
        bestScore = score;
      }
    }
    return best;
  }

  /** Best host for a new ingest needing `cpuPercent` of CPU headroom. */
  ingest(hosts: readonly HostState[], cpuPercent: number, opts: { weights: Weights }): HostState | undefined {
    this.decisions++;
    const need = Math.max(0, cpuPercent) * 10;
    let best: HostState | undefined;
    let bestScore = 0;
    for (const h of hosts) {
      if (h.cpu + need > 1000) continue;
      const score = rateInto(scratch, h, undefined, opts.weights);
      if (score > bestScore) {
        best = h;
        bestScore = score;
      }
    }
    return best;
  }

  /** Classic round-robin: the next host whose last poll succeeded, load unseen. */
  private roundRobin(hosts: readonly HostState[]): HostState | undefined {
    const n = hosts.length;
    for (let i = 0; i < n; i++) {
      const h = hosts[(this.rr + i) % n]!;
      if (h.status === 'online') {
        this.rr = (this.rr + i + 1) % n;
        return h;
      }
    }
    return undefined;
  }
}

/** Lowest (current + predicted upload) / capacity among hosts whose last poll succeeded. */
function leastLoaded(hosts: readonly HostState[]): HostState | undefined {
  let best: HostState | undefined;
  let bestLoad = Infinity;
  for (const h of hosts) {
    if (h.status !== 'online') continue;
    const l = h.load();
    if (l < bestLoad) {
      best = h;
      bestLoad = l;
    }
  }
  return best;
}

/**
 * The part of its capacity the media-aware policy fills with viewers: the rest is for what the
 * polls see late or vary (each new viewer's first second carries the newest GOP at once, viewers
 * show in the statistics a poll or so after they were sent, a variable bit rate's seconds differ
 * by 5 % and more) and for relays to edges.
 */
export const FILL = 0.9;

/**
 * §8.2 with prediction, made media-aware. Eligibility is §8.2's, plus room for this viewer's
 * predicted bandwidth within FILL of the capacity, so a burst does not push a host past it. The
 * ranking is the §8.2 score with its bandwidth term replaced:
 * - a host already carrying the stream (polled, or sent viewers of it since) counts 2 x Wbw: its
 *   bandwidth as if it were all free, and Wbw more so it also beats the roomiest idle host. The
 *   +50 bonus alone cannot keep a stream together: one 2 Mbit/s viewer moves a 1 Gbit/s host's
 *   bandwidth term by ~2 points, so after ~25 viewers an idle host outscores the carrying one
 *   and the stream spreads over every server, a relay each;
 * - a host not carrying it counts Wbw x its free upload in bytes/s / the most any host has free.
 *   §8.2's term is a ratio, which rates an idle 40 MiB/s host like an idle 200 MiB/s one, but a
 *   stream needs fewer servers on the larger.
 * So a new server is opened only when the carrying ones are full (or far worse on CPU, RAM,
 * geography or tags, which still weigh as in §8.2), and then the roomiest.
 */
let mediaHint = 0;
function mediaAware(hosts: readonly HostState[], stream: string, w: Weights, client?: Client, tags?: TagAdjust): HostState | undefined {
  // first pass: the most free upload, and the stream's per-viewer figure (streamViewerBps) for
  // hosts that have none yet, left in mediaHint for the caller's addViewer
  let maxFree = 0;
  let sum = 0;
  let viewers = 0;
  for (const h of hosts) {
    const free = h.capacityBytesPerS * FILL - h.upLoad - h.addBandwidth;
    if (free > maxFree) maxFree = free;
    const st = h.streams.get(stream);
    if (st !== undefined && st.bwPerViewer > 0) {
      sum += st.bwPerViewer * st.viewers;
      viewers += st.viewers;
    }
  }
  const hint = viewers > 0 ? sum / viewers : 0;
  mediaHint = hint;
  let best: HostState | undefined;
  let bestScore = -Infinity;
  for (const h of hosts) {
    const st = h.streams.get(stream);
    const carried = h.carriesWith(st, stream);
    const score = rateInto(scratch, h, stream, w, client, tags, carried);
    if (score <= 0) continue;
    const free = h.capacityBytesPerS * FILL - h.upLoad - h.addBandwidth;
    if (h.viewerBpsOf(st?.bwPerViewer ?? 0, hint) > free) continue;
    const ranked = score - scratch.bw + (carried ? 2 * w.bw : (w.bw * free) / maxFree);
    if (ranked > bestScore) {
      best = h;
      bestScore = ranked;
    }
  }
  return best;
}
