// The §8.2 score (src/balancer/score.ts rate) rule by rule, tag_adjust parsing (fuzzed), and the
// Chooser's source / ingest / viewer choices on small hand-made clusters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HostState } from '../../src/balancer/host-state.js';
import { Chooser, DEFAULT_WEIGHTS, FILL, greatCircleAngle, parseTagAdjust, rate } from '../../src/balancer/score.js';
import { HazeError } from '../../src/util/errors.js';

const MIB = 1024 * 1024;
const W = DEFAULT_WEIGHTS;

interface Opts {
  cpu?: number;
  memUsed?: number;
  sent?: number;
  streams?: Record<string, { v: number; i?: number; sent?: number; rep?: boolean }>;
  conf?: string[];
  tags?: string[];
  loc?: { lat: number; lon: number };
}

/** A host after two polls 1 s apart: upload = `sent` bytes/s; per stream `sent` bytes/s. */
function host(name: string, capacity: number, o: Opts = {}): HostState {
  const h = new HostState(name, capacity);
  const json = (t: number): unknown => {
    const streams: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(o.streams ?? {})) streams[k] = { curr: [s.v, s.i ?? 0, 0, 0], bw: [0, (s.sent ?? 0) * t], tot: [0, 0, 0], ...(s.rep ? { rep: true } : {}) };
    return { cpu: o.cpu ?? 0, mem_total: 1000, mem_used: o.memUsed ?? 0, bw: [0, (o.sent ?? 0) * t], streams, conf_streams: o.conf ?? [], tags: o.tags ?? [], loc: o.loc ?? { lat: 0, lon: 0 }, outputs: { DTSC: 'dtsc://HOST:4200/$' } };
  };
  h.update(0, json(0));
  h.update(1000, json(1));
  return h;
}

const near = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

test('score: cpu, ram and bandwidth parts; bonus for a stream already there', () => {
  const h = host('a:1', 100 * MIB, { cpu: 250, memUsed: 400, sent: 25 * MIB, streams: { s: { v: 10, sent: 2 * MIB } } });
  const r = rate(h, 's', W);
  near(r.cpu, 500 - 250 * 0.5);
  near(r.ram, 500 - 400 * 0.5);
  near(r.bw, 1000 - 250);
  assert.equal(r.bonus, 50);
  assert.equal(r.geo, 0, 'no client location: no geo part');
  near(r.score, 375 + 300 + 750 + 50);
  assert.equal(rate(h, 'other', W).bonus, 0);
  assert.equal(rate(h, undefined, W).bonus, 0);
  // predicted extra bandwidth lowers the bandwidth part at once
  h.addBandwidth = 25 * MIB;
  near(rate(h, 's', W).bw, 500);
  // weights scale each part
  const r2 = rate(h, 's', { cpu: 1000, ram: 0, bw: 0, geo: 0, bonus: 0 });
  near(r2.score, 750);
});

test('score: ineligible hosts score 0', () => {
  const ok = host('ok:1', 100 * MIB, { sent: 10 * MIB });
  assert.ok(rate(ok, 's', W).score > 0);
  // upload at capacity, or with the prediction at capacity
  assert.equal(rate(host('full:1', 100 * MIB, { sent: 100 * MIB }), 's', W).score, 0);
  const pred = host('pred:1', 100 * MIB, { sent: 60 * MIB });
  pred.addBandwidth = 40 * MIB;
  assert.equal(rate(pred, 's', W).score, 0);
  pred.addBandwidth = 39 * MIB;
  assert.ok(rate(pred, 's', W).score > 0);
  // RAM or bandwidth unknown
  assert.equal(rate(host('nocap:1', 0), 's', W).score, 0);
  const noRam = new HostState('noram:1', MIB);
  noRam.update(0, { cpu: 0, mem_total: 0, mem_used: 0, bw: [0, 0] });
  assert.equal(rate(noRam, 's', W).score, 0);
  // not polled yet, or the last poll failed
  assert.equal(rate(new HostState('new:1', MIB), 's', W).score, 0);
  const dead = host('dead:1', 100 * MIB);
  dead.failed(2000, 'ECONNREFUSED');
  assert.equal(rate(dead, 's', W).score, 0);
  // conf_streams: the stream or its base name must be configured there
  const conf = host('conf:1', 100 * MIB, { conf: ['live', 'demo'] });
  assert.ok(rate(conf, 'live+alice', W).score > 0);
  assert.ok(rate(conf, 'demo', W).score > 0);
  assert.equal(rate(conf, 'other', W).score, 0);
  assert.equal(rate(conf, 'other+live', W).score, 0);
  assert.ok(rate(conf, undefined, W).score > 0, 'an ingest has no stream to check');
});

test('score: geo part from the great-circle angle', () => {
  near(greatCircleAngle(0, 0, 0, 180), Math.PI);
  near(greatCircleAngle(90, 0, -90, 0), Math.PI);
  near(greatCircleAngle(52, 4, 52, 4), 0);
  near(greatCircleAngle(0, 0, 0, 90), Math.PI / 2);
  // Amsterdam - New York ~ 5860 km on a 6371 km sphere
  near(greatCircleAngle(52.37, 4.9, 40.71, -74.01) * 6371, 5860, 15);
  const ams = host('ams:1', 100 * MIB, { loc: { lat: 52.37, lon: 4.9 } });
  near(rate(ams, 's', W, { lat: 52.37, lon: 4.9 }).geo, 1000);
  near(rate(ams, 's', W, { lat: -52.37, lon: -175.1 }).geo, 0, 1e-6);
  near(rate(ams, 's', W, { lat: 0, lon: 4.9 }).geo, 1000 - 1000 * (52.37 / 180), 1e-6);
  // server location unknown: no geo part (not a penalty)
  assert.equal(rate(host('x:1', 100 * MIB), 's', W, { lat: 1, lon: 1 }).geo, 0);
  // the chooser prefers the near host, all else equal
  const nyc = host('nyc:1', 100 * MIB, { loc: { lat: 40.71, lon: -74.01 } });
  assert.equal(new Chooser().viewer([ams, nyc], 's', { weights: W, client: { lat: 41, lon: -73 }, count: false }), nyc);
  assert.equal(new Chooser().viewer([ams, nyc], 's', { weights: W, client: { lat: 50, lon: 5 }, count: false }), ams);
});

test('score: tag adjustments, "-tag" inversion and the clamp to 0', () => {
  const eu = host('eu:1', 100 * MIB, { tags: ['eu', 'ssd'] });
  const us = host('us:1', 100 * MIB, { tags: ['us'] });
  const base = rate(eu, 's', W).score;
  assert.equal(base, 2000);
  const adj = parseTagAdjust('{"eu,asia": 100, "-ssd": 30, "us": -5000}');
  const re = rate(eu, 's', W, undefined, adj);
  assert.equal(re.tags, 100, 'eu matches (any listed tag), -ssd does not (it has ssd)');
  assert.equal(re.score, 2100);
  const ru = rate(us, 's', W, undefined, adj);
  assert.equal(ru.tags, 30 - 5000);
  assert.equal(ru.score, 0, 'a negative total past the score clamps to 0');
  assert.equal(new Chooser().viewer([us, eu], 's', { weights: W, tags: adj, count: false }), eu);
  assert.equal(new Chooser().viewer([us, eu], 's', { weights: W, tags: parseTagAdjust('{"-eu": 300}'), count: false }), us);
  assert.deepEqual({ ...parseTagAdjust('{"__proto__": 5}') }, { ['__proto__']: 5 });
});

test('parseTagAdjust: bad input is a HazeError (fuzz)', () => {
  for (const bad of ['', 'x', '[]', 'null', '5', '{"a": "1"}', '{"a": null}', '{"": 1}', '{"-": 1}', '{"a,,b": 1}', '{"a": 1e999}', '{' + '"a":1,'.repeat(5000) + '"b":1}']) {
    assert.throws(() => parseTagAdjust(bad), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_INVALID_ARG', bad.slice(0, 40));
  }
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 60 }), fc.json({ maxDepth: 2 }), fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.double(), fc.integer(), fc.string())).map((d) => JSON.stringify(d))), (text) => {
      try {
        const adj = parseTagAdjust(text);
        for (const v of Object.values(adj)) assert.ok(Number.isFinite(v));
        assert.ok(Number.isFinite(rate(host('h:1', MIB, { tags: ['a'] }), 's', W, undefined, adj).score));
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }),
    { numRuns: 800 },
  );
});

test('chooser: source is an active, non-replicated origin other than the asker', () => {
  const origin = host('10.0.0.1:4242', 100 * MIB, { cpu: 600, streams: { s: { v: 2, i: 1 } } });
  const edge = host('10.0.0.2:4242', 100 * MIB, { streams: { s: { v: 50, i: 1, rep: true } } });
  const idle = host('10.0.0.3:4242', 100 * MIB, { streams: { s: { v: 3, i: 0 } } });
  const other = host('10.0.0.1:4243', 100 * MIB, { cpu: 100, streams: { s: { v: 0, i: 1 } } });
  const c = new Chooser();
  assert.equal(c.source([origin, edge, idle, other], 's', { weights: W }), other, 'best score of the two origins');
  assert.equal(c.source([origin, edge, idle, other], 's', { weights: W, exclude: '10.0.0.1:4243' }), origin, 'same address, other port: still a different server');
  assert.equal(c.source([edge, idle], 's', { weights: W }), undefined);
  assert.equal(c.source([origin], 'nope', { weights: W }), undefined);
  assert.equal(origin.dtscPort, 4200);
  assert.equal(c.decisions, 4);
  // an origin full of viewers is still a source (its edges would have nothing), after any other
  other.addBandwidth = 100 * MIB;
  assert.equal(c.viewer([other], 's', { weights: W }), undefined, 'full for viewers');
  assert.equal(c.source([other, edge, idle], 's', { weights: W }), other, 'but a source');
  assert.equal(c.source([other, origin], 's', { weights: W }), origin, 'after one with room');
});

test('chooser: ingest needs the CPU headroom', () => {
  const busy = host('busy:1', 100 * MIB, { cpu: 800 });
  const calm = host('calm:1', 100 * MIB, { cpu: 500 });
  const c = new Chooser();
  assert.equal(c.ingest([busy, calm], 10, { weights: W }), calm);
  assert.equal(c.ingest([busy, calm], 40, { weights: W }), calm);
  assert.equal(c.ingest([busy, calm], 60, { weights: W }), undefined);
  assert.equal(c.ingest([busy], 20, { weights: W }), busy);
});

test('chooser: viewer policies on a small cluster', () => {
  const mk = (): HostState[] => [
    host('a:1', 10 * MIB, { cpu: 100, sent: 2 * MIB, streams: { s: { v: 8, i: 1, sent: 2 * MIB } } }), // 256 KiB/s per viewer
    host('b:1', 10 * MIB, { cpu: 0 }),
    host('c:1', 10 * MIB, { cpu: 0 }),
  ];
  // media-aware keeps the stream on `a` until it is full, then opens one more host
  const hosts = mk();
  const ma = new Chooser('media-aware');
  const got: string[] = [];
  for (let i = 0; i < 40; i++) got.push(ma.viewer(hosts, 's', { weights: W })?.name ?? 'none');
  const onA = got.filter((n) => n === 'a:1').length;
  assert.equal(onA, 28, '90 % of 10 MiB/s = 9 MiB/s, 7 MiB/s of room / 256 KiB/s (FILL)');
  assert.equal(FILL, 0.9);
  assert.equal(new Set(got).size, 2, got.join());
  for (const h of hosts) assert.ok(h.upLoad + h.addBandwidth <= h.capacityBytesPerS * FILL, h.name);
  // the stream's figure from `a` is used for hosts that have not carried it
  assert.equal(hosts.find((h) => h.name !== 'a:1' && h.addBandwidth > 0)!.addBandwidth, 12 * 256 * 1024);
  assert.equal(ma.decisions, 40);
  // count=false predicts nothing
  const before = hosts.map((h) => h.addBandwidth);
  ma.viewer(hosts, 's', { weights: W, count: false });
  assert.deepEqual(hosts.map((h) => h.addBandwidth), before);

  const rr = new Chooser('round-robin');
  const rrHosts = mk();
  rrHosts[1]!.failed(2000, 'down');
  assert.deepEqual([0, 1, 2, 3].map(() => rr.viewer(rrHosts, 's', { weights: W })!.name), ['a:1', 'c:1', 'a:1', 'c:1'], 'skips the failed host');

  const ll = new Chooser('least-loaded');
  const llHosts = mk();
  const llGot = [0, 1, 2].map(() => ll.viewer(llHosts, 's', { weights: W })!.name);
  assert.ok(!llGot.includes('a:1'), 'a is the loaded one');
  assert.equal(new Set(llGot).size, 2, 'alternates between the two idle hosts');
  assert.equal(new Chooser().viewer([], 's', { weights: W }), undefined);
});

test('chooser: a server whose poll fails gets no viewer from the next decision on', () => {
  const a = host('a:1', 100 * MIB, { streams: { s: { v: 10, i: 1, sent: 2 * MIB } } });
  const b = host('b:1', 100 * MIB);
  const c = new Chooser();
  assert.equal(c.viewer([a, b], 's', { weights: W }), a, 'a carries the stream');
  a.failed(6000, 'ECONNREFUSED');
  for (let i = 0; i < 5; i++) assert.equal(c.viewer([a, b], 's', { weights: W }), b);
  assert.equal(c.source([a, b], 's', { weights: W }), undefined, 'a dead origin is no source');
  // back at the next good poll, with its badness still decaying in the prediction
  a.update(11_000, { cpu: 0, mem_total: 1000, mem_used: 0, bw: [0, 22 * MIB], streams: { s: { curr: [10, 1, 0, 0], bw: [0, 22 * MIB] } } });
  assert.equal(a.status, 'online');
  assert.ok(a.addBandwidth > 0);
  assert.equal(c.viewer([a, b], 's', { weights: W, count: false }), a);
});
