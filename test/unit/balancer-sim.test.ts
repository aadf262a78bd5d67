// The balancer simulator (issue 9: "replays statistics of 200 servers into the scoring code, no
// sockets, and checks the spread under a surge"). 200 servers with varied CPU, RAM, capacity and
// background upload, polled twice (Haze's own JSON writer, prometheusJson, 5 s apart) so speeds
// and per-viewer figures come from counter deltas as in production; three streams at 2 Mbit/s
// already on a few servers (their origins and one edge). Then a surge of 5,000 viewers decided in
// one burst, no poll in between, under each policy in the same test: media-aware must keep every
// server under its capacity (predicted and true load) and each stream on at most 2 servers more
// than the capacities force; round-robin and least-loaded are printed beside it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostState } from '../../src/balancer/host-state.js';
import { Chooser, DEFAULT_WEIGHTS, type Policy } from '../../src/balancer/score.js';
import { syntheticPoll } from '../balancer-polls.js';
import { seededRandom } from '../../src/util/prng.js';

const MIB = 1024 * 1024;
const VIEWER_BPS = 2_000_000 / 8; // 2 Mbit/s
const SERVERS = 200;
const POLL_S = 5;
const SURGE: Record<string, number> = { news: 2500, sport: 1500, talk: 1000 };

interface ServerSpec {
  name: string;
  capacity: number;
  cpu: number;
  memUsedKiB: number;
  /** stream -> [viewers, inputs, replicated] before the surge */
  streams: Record<string, [number, number, boolean]>;
}

function cluster(): ServerSpec[] {
  const rnd = seededRandom(9);
  const caps = [40, 64, 100, 128, 200];
  const out: ServerSpec[] = [];
  for (let i = 0; i < SERVERS; i++) {
    const capacity = caps[Math.floor(rnd() * caps.length)]! * MIB;
    // background viewers of other streams: 0-60% of the capacity
    const bgViewers = Math.floor((rnd() * 0.6 * capacity) / VIEWER_BPS);
    out.push({ name: `10.0.${i >> 8}.${i & 255}:4242`, capacity, cpu: Math.floor(50 + rnd() * 650), memUsedKiB: Math.floor(1e6 + rnd() * 5e6), streams: { [`bg${i % 17}`]: [bgViewers, 0, true] } });
  }
  // origins (an input each) and one edge of `news` already relaying it with viewers
  out[3]!.streams['news'] = [40, 1, false];
  out[77]!.streams['news'] = [120, 0, true];
  out[120]!.streams['sport'] = [10, 1, false];
  out[150]!.streams['talk'] = [5, 1, false];
  // nobody starts past 90% of its capacity (the surge is the test, not the starting point)
  for (const s of out) {
    const bg = Object.keys(s.streams).find((k) => k.startsWith('bg'))!;
    const other = Object.entries(s.streams).reduce((a, [k, [v]]) => a + (k === bg ? 0 : v), 0);
    s.streams[bg]![0] = Math.max(0, Math.min(s.streams[bg]![0], Math.floor((0.9 * s.capacity) / VIEWER_BPS) - other));
  }
  return out;
}

/** The §7.3 JSON server `s` answers at time `t` s (counters grow at 2 Mbit/s per viewer). */
function pollJson(s: ServerSpec, t: number): unknown {
  const streams = Object.fromEntries(Object.entries(s.streams).map(([name, [viewers, inputs, replicated]]) => [name, { viewers, inputs, replicated }]));
  return syntheticPoll({ capacity: s.capacity, cpu: s.cpu, memTotalKiB: 8e6, memUsedKiB: s.memUsedKiB, streams }, t, VIEWER_BPS);
}

interface Outcome {
  policy: Policy;
  unplaced: number;
  serversPerStream: Record<string, number>;
  relays: number;
  peakTrue: number;
  peakPredicted: number;
  overflowing: number;
  ms: number;
}

function surge(specs: ServerSpec[], replies: [unknown, unknown][], order: string[], policy: Policy): Outcome {
  const hosts = specs.map((s, i) => {
    const h = new HostState(s.name, s.capacity);
    h.update(0, replies[i]![0]);
    h.update(POLL_S * 1000, replies[i]![1]);
    return h;
  });
  const carriedBefore = new Map(Object.keys(SURGE).map((st) => [st, new Set(hosts.filter((h) => h.viewers(st) > 0 || h.streams.get(st)?.inputs).map((h) => h.name))]));
  const used = new Map(Object.keys(SURGE).map((st) => [st, new Set<string>()]));
  const added = new Map<HostState, number>();
  const chooser = new Chooser(policy);
  let unplaced = 0;
  const t0 = performance.now();
  for (const st of order) {
    const h = chooser.viewer(hosts, st, { weights: DEFAULT_WEIGHTS });
    if (!h) {
      unplaced++;
      continue;
    }
    used.get(st)!.add(h.name);
    added.set(h, (added.get(h) ?? 0) + VIEWER_BPS);
  }
  const ms = performance.now() - t0;
  let relays = 0;
  for (const [st, set] of used) for (const n of set) if (!carriedBefore.get(st)!.has(n)) relays++;
  let peakTrue = 0;
  let peakPredicted = 0;
  let overflowing = 0;
  for (const h of hosts) {
    const trueLoad = (h.upSpeed + (added.get(h) ?? 0)) / h.capacityBytesPerS;
    peakTrue = Math.max(peakTrue, trueLoad);
    peakPredicted = Math.max(peakPredicted, (h.upSpeed + h.addBandwidth) / h.capacityBytesPerS);
    if (trueLoad > 1) overflowing++;
  }
  const serversPerStream = Object.fromEntries([...used].map(([st, set]) => [st, set.size]));
  return { policy, unplaced, serversPerStream, relays, peakTrue, peakPredicted, overflowing, ms };
}

test('simulator: a surge of 5,000 viewers over 200 servers, media-aware vs round-robin vs least-loaded', () => {
  const specs = cluster();
  const replies = specs.map((s): [unknown, unknown] => [pollJson(s, 100), pollJson(s, 100 + POLL_S)]);
  // the surge: viewers of the three streams interleaved at random
  const rnd = seededRandom(42);
  const order: string[] = [];
  for (const [st, n] of Object.entries(SURGE)) for (let i = 0; i < n; i++) order.push(st);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }

  // The fewest servers each stream alone could fit on: the largest rooms first (a lower bound).
  const rooms = specs.map((s) => Math.floor((s.capacity - Object.values(s.streams).reduce((a, [v]) => a + v * VIEWER_BPS, 0)) / VIEWER_BPS)).sort((a, b) => b - a);
  const minimum: Record<string, number> = {};
  for (const [st, n] of Object.entries(SURGE)) {
    let left = n;
    let k = 0;
    while (left > 0) left -= rooms[k++]!;
    minimum[st] = k;
  }

  const results = (['media-aware', 'round-robin', 'least-loaded'] as const).map((p) => surge(specs, replies, order, p));
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  console.log(`surge: ${order.length} viewers at 2 Mbit/s over ${SERVERS} servers; fewest servers per stream the capacities allow: ${JSON.stringify(minimum)}`);
  for (const r of results) {
    console.log(
      `${r.policy.padEnd(12)} servers per stream ${JSON.stringify(r.serversPerStream)}, relays created ${r.relays}, peak load ${pct(r.peakTrue)} (predicted ${pct(r.peakPredicted)}), servers over capacity ${r.overflowing}, unplaced ${r.unplaced}, ${r.ms.toFixed(0)} ms (${Math.round((order.length / r.ms) * 1000)} decisions/s)`,
    );
  }

  const [ma, rr, ll] = results as [Outcome, Outcome, Outcome];
  assert.equal(ma.unplaced, 0);
  assert.ok(ma.peakPredicted <= 1, `predicted peak ${ma.peakPredicted}`);
  assert.ok(ma.peakTrue <= 1, `true peak ${ma.peakTrue}`);
  assert.equal(ma.overflowing, 0);
  for (const st of Object.keys(SURGE)) {
    assert.ok(ma.serversPerStream[st]! <= minimum[st]! + 2, `${st}: ${ma.serversPerStream[st]} servers, minimum ${minimum[st]}`);
    assert.ok(ma.serversPerStream[st]! < rr.serversPerStream[st]! && ma.serversPerStream[st]! < ll.serversPerStream[st]!, st);
  }
  assert.ok(ma.relays < rr.relays && ma.relays < ll.relays);
  // the classic methods do spread: each stream over most of the 200 servers
  for (const st of Object.keys(SURGE)) assert.ok(rr.serversPerStream[st]! > 100 && ll.serversPerStream[st]! > 50, st);
  assert.ok(rr.overflowing > 0, 'round-robin, blind to load, overflows the small busy servers');
});
