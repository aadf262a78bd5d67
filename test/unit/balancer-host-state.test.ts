// HostState (src/balancer/host-state.ts) fed the JSON Haze's own writer produces
// (src/stats/prometheus.ts prometheusJson): speeds from counter deltas, per-viewer bandwidth,
// prediction and its decay, badness of failed polls, bounds, and fuzzed malformed answers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HostState, MAX_STREAMS_PER_HOST, MAX_TAGS, baseName, hostAddress } from '../../src/balancer/host-state.js';
import { prometheusJson } from '../../src/stats/prometheus.js';
import type { StatsSnapshot, StreamFigures } from '../../src/stats/snapshot.js';
import { HazeError } from '../../src/util/errors.js';

const KIB = 1024;
const MIB = 1024 * 1024;

function stream(viewers: number, inputs: number, sent: number, received: number, replicated = false): StreamFigures {
  return {
    current: { viewers, inputs, outputs: 0, unspecified: 0 },
    total: { viewers, inputs, outputs: 0 },
    // Haze's ByteCounts: up = from clients, down = to clients
    bytes: { up: received, down: sent },
    viewSeconds: 0,
    packets: { sent: 0, lost: 0, retrans: 0 },
    replicated,
  };
}

function snapshot(o: { cpu?: number; sent: number; received?: number; streams?: Record<string, StreamFigures>; conf?: string[]; tags?: string[]; loc?: [number, number]; shm?: [number, number] }): StatsSnapshot {
  return {
    timeMs: 0,
    vitals: { cpuTenths: o.cpu ?? 100, memTotalKiB: 8_000_000, memUsedKiB: 2_000_000, shmTotalKiB: o.shm?.[0] ?? 4_000_000, shmUsedKiB: o.shm?.[1] ?? 0, nic: { up: 0, down: 0 } },
    logs: 0,
    current: { viewers: 0, inputs: 0, outputs: 0, unspecified: 0, cached: 0 },
    total: { viewers: 0, inputs: 0, outputs: 0, unspecified: 0 },
    viewSeconds: 0,
    bandwidth: { up: o.received ?? 0, down: o.sent },
    other: { up: 0, down: 0 },
    bandwidthLimit: 128 * MIB,
    packets: { sent: 0, lost: 0, retrans: 0 },
    outputs: {},
    streams: o.streams ?? {},
    triggers: {},
    location: { lat: o.loc?.[0] ?? 0, lon: o.loc?.[1] ?? 0, name: '' },
    configuredStreams: o.conf ?? [],
    tags: o.tags ?? [],
    outputUrls: { DTSC: 'dtsc://HOST:4201/$', HLS: 'http://HOST:8081/hls/$/index.m3u8', RTMP: 'rtmp://HOST:1936/play/$' },
  };
}

const poll = (o: Parameters<typeof snapshot>[0]): unknown => JSON.parse(JSON.stringify(prometheusJson(snapshot(o))));

test('host-state: speeds and per-viewer bandwidth from the deltas of two polls', () => {
  const h = new HostState('10.0.0.7:4243', 100 * MIB);
  assert.equal(h.status, 'starting');
  h.update(10_000, poll({ sent: 1_000_000, received: 50_000, streams: { a: stream(4, 1, 100_000, 50_000), b: stream(0, 1, 0, 10) }, tags: ['eu'], loc: [52.37, 4.9], conf: ['live', 'a'] }));
  assert.equal(h.status, 'online');
  assert.equal(h.upSpeed, 0, 'one poll: no delta yet');
  assert.equal(h.streams.get('a')!.bwPerViewer, 0);
  // 5 s later: 10 MB more sent (2 MB/s), 1 MB received; stream a sent 5 MB to 5 viewers
  h.update(15_000, poll({ sent: 11_000_000, received: 1_050_000, streams: { a: stream(5, 1, 5_100_000, 1_050_000), b: stream(0, 1, 0, 10), 'c+x': stream(1, 0, 7, 0, true) }, tags: ['eu'], loc: [52.37, 4.9], conf: ['live', 'a'] }));
  assert.equal(h.upSpeed, 2_000_000);
  assert.equal(h.downSpeed, 200_000);
  const a = h.streams.get('a')!;
  assert.equal(a.up, 1_000_000);
  assert.equal(a.down, 200_000);
  assert.equal(a.bwPerViewer, 1_000_000 / 4.5, '1 MB/s over 4.5 viewers (4 at the first poll, 5 at the second)');
  assert.equal(h.upLoad, 2_000_000 + 1_000_000 / 4.5 / 2, 'the measured upload and half of the viewer who came during the interval');
  assert.equal(a.viewers, 5);
  assert.equal(a.inputs, 1);
  assert.equal(h.streams.get('c+x')!.replicated, true);
  assert.equal(h.streams.get('c+x')!.bwPerViewer, 0, 'new stream: no delta yet');
  assert.equal(h.viewers(), 6);
  assert.equal(h.viewers('a'), 5);
  assert.equal(h.viewers('nope'), 0);
  assert.deepEqual([...h.confStreams!], ['live', 'a']);
  assert.deepEqual(h.tags, ['eu']);
  assert.deepEqual(h.geo, { lat: 52.37, lon: 4.9 });
  assert.equal(h.outputs['HLS'], 'http://10.0.0.7:8081/hls/$/index.m3u8');
  assert.equal(h.dtscPort, 4201);
  assert.equal(h.dtscUrl(), 'dtsc://10.0.0.7:4201');
  assert.equal(new HostState('[::1]:4242', MIB).dtscUrl(), undefined, 'not polled yet');
  assert.equal(h.cpu, 100);
  assert.equal(h.ramMax, 8_000_000);
  assert.equal(h.ramUsed, 2_000_000);

  // a counter going back (server restarted) gives no speed rather than a negative one
  h.update(20_000, poll({ sent: 500, streams: {} }));
  assert.equal(h.upSpeed, 0);
  assert.equal(h.streams.size, 0);
  assert.equal(h.confStreams, undefined, 'an empty conf_streams restricts nothing');
  assert.equal(h.geo, undefined, 'Haze writes 0,0 for no location');

  const sum = h.summary({ cpu: 1, ram: 2, bw: 3 });
  assert.equal(sum['state'], 'online');
  assert.equal(sum['cpu'], 10);
  assert.equal(sum['ram'], 25);
  assert.equal(sum['bwlimit'], 100 * MIB);
  assert.deepEqual(sum['score'], { cpu: 1, ram: 2, bw: 3 });
  for (const k of ['up', 'up_add', 'down', 'streams', 'viewers', 'geo', 'tags']) assert.ok(k in sum, k);
});

test('host-state: shm fuller than RAM counts as the RAM ratio', () => {
  const h = new HostState('h:1', MIB);
  h.update(0, poll({ sent: 0, shm: [1000, 900] }));
  assert.equal(h.ramUsed, 0.9 * 8_000_000);
});

test('host-state: prediction clamps, decays x0.75 per poll, badness on failures', () => {
  const h = new HostState('h:4242', 100 * MIB);
  assert.equal(h.addViewer('x'), 128 * KIB, 'nothing known: 128 KiB/s');
  h.update(0, poll({ sent: 0, streams: { hi: stream(1, 1, 0, 0), lo: stream(10, 1, 0, 0) } }));
  assert.equal(h.addBandwidth, 128 * KIB * 0.75);
  // hi: 10 MB/s for one viewer -> clamped to 1 MiB/s; lo: 100 kB/s for 10 -> 10 kB each -> 64 KiB/s
  h.update(1000, poll({ sent: 10_100_000, streams: { hi: stream(1, 1, 10_000_000, 0), lo: stream(10, 1, 100_000, 0) } }));
  assert.equal(h.streams.get('hi')!.bwPerViewer, 10_000_000);
  const before = h.addBandwidth;
  assert.equal(h.addViewer('hi'), MIB);
  assert.equal(h.addViewer('lo'), 64 * KIB);
  // unknown stream: the caller's figure for it first, then the host's upload per viewer (10.1 MB/s / 11)
  assert.equal(h.addViewer('new', 300_000), 300_000);
  assert.equal(h.addViewer('new2'), 10_100_000 / 11, "the host's upload per viewer");
  assert.ok(Math.abs(h.addBandwidth - (before + MIB + 64 * KIB + 300_000 + 10_100_000 / 11)) < 1e-6);
  assert.ok(h.carries('new'), 'a stream sent here counts as carried before a poll shows it');
  const added = h.addBandwidth;
  h.update(2000, poll({ sent: 20_200_000, streams: {} }));
  assert.ok(Math.abs(h.addBandwidth - added * 0.75) < 1e-6);
  h.update(3000, poll({ sent: 20_200_000, streams: {} }));
  h.update(4000, poll({ sent: 20_200_000, streams: {} }));
  assert.ok(!h.carries('new'), 'the prediction of a stream fades with the polls');

  const f = new HostState('f:1', 100 * MIB);
  f.failed(5000, 'ECONNREFUSED');
  assert.equal(f.status, 'error');
  assert.equal(f.lastError, 'ECONNREFUSED');
  assert.equal(f.addBandwidth, MIB * 1.2);
  f.failed(10000, 'timeout');
  assert.ok(Math.abs(f.addBandwidth - (MIB * 1.2 + MIB) * 1.2) < 1e-6);
  f.update(15000, poll({ sent: 0 }));
  assert.equal(f.status, 'online');
  assert.equal(f.lastError, undefined);
  assert.ok(Math.abs(f.addBandwidth - (MIB * 1.2 + MIB) * 1.2 * 0.75) < 1e-6);
});

test('host-state: viewers a poll shows leave the prediction; the load counts them at their stream\'s figure', () => {
  const h = new HostState('h:4242', 100 * MIB);
  h.update(0, poll({ sent: 0, streams: { a: stream(10, 1, 0, 0) } }));
  // 10 viewers at 100 kB/s each
  h.update(1000, poll({ sent: 1_000_000, streams: { a: stream(10, 1, 1_000_000, 0) } }));
  assert.equal(h.streams.get('a')!.bwPerViewer, 100_000);
  for (let i = 0; i < 8; i++) assert.equal(h.addViewer('a'), 100_000);
  // a stream new here: the host's upload per viewer
  for (let i = 0; i < 4; i++) assert.equal(h.addViewer('new'), 100_000);
  assert.equal(h.addBandwidth, 12 * 100_000);
  // the next poll shows 6 of the 8 (they came during the interval: the upload shows them for half
  // of it) and 3 of the 4 of a stream that has no figure of its own yet
  h.update(2000, poll({ sent: 2_300_000, streams: { a: stream(16, 1, 2_300_000, 0), new: stream(3, 0, 0, 0) } }));
  assert.equal(h.upSpeed, 1_300_000);
  assert.equal(h.streams.get('a')!.bwPerViewer, 1_300_000 / 13);
  assert.equal(h.upLoad, 1_300_000 + (6 * 100_000) / 2 + (3 * 100_000) / 2, 'the upload and the half the interval\'s average misses of the 9 who came (the new stream\'s at its predicted figure)');
  assert.ok(Math.abs(h.addBandwidth - 3 * 100_000 * 0.75) < 1e-6, `${h.addBandwidth}: the 2 + 1 not shown yet, faded once`);
  assert.ok(Math.abs(h.pending.get('a')!.viewers - 1.5) < 1e-9);
  assert.ok(h.load() > h.upSpeed / h.capacityBytesPerS);
  // a quieter interval lowers a stream's per-viewer figure by at most 10 % a poll (peak hold)
  h.update(3000, poll({ sent: 2_300_000 + 16 * 50_000, streams: { a: stream(16, 1, 2_300_000 + 16 * 50_000, 0), new: stream(3, 0, 0, 0) } }));
  assert.equal(h.streams.get('a')!.bwPerViewer, 90_000);
  assert.equal(h.upLoad, h.upSpeed, 'nobody came: the load is what was measured');
  h.update(4000, poll({ sent: 3_100_000 + 16 * 95_000, streams: { a: stream(16, 1, 3_100_000 + 16 * 95_000, 0), new: stream(3, 0, 0, 0) } }));
  assert.equal(h.streams.get('a')!.bwPerViewer, 95_000, 'a higher figure counts at once');
});

test('host-state: maps stay bounded whatever a server reports', () => {
  const h = new HostState('h:1', MIB);
  const streams: Record<string, StreamFigures> = {};
  for (let i = 0; i < MAX_STREAMS_PER_HOST + 500; i++) streams[`s${i}`] = stream(1, 0, 0, 0);
  const tags = Array.from({ length: 500 }, (_, i) => `t${i}`);
  h.update(0, poll({ sent: 0, streams, tags }));
  assert.equal(h.streams.size, MAX_STREAMS_PER_HOST);
  assert.equal(h.tags.length, MAX_TAGS);
  for (let i = 0; i < MAX_STREAMS_PER_HOST + 500; i++) h.addViewer(`p${i}`);
  assert.equal(h.pending.size, MAX_STREAMS_PER_HOST);
});

test('host-state: names', () => {
  assert.equal(hostAddress('10.1.2.3:4242'), '10.1.2.3');
  assert.equal(hostAddress('[::1]:4242'), '[::1]');
  assert.equal(hostAddress('example.org'), 'example.org');
  assert.equal(baseName('live+alice'), 'live');
  assert.equal(baseName('demo'), 'demo');
});

test('host-state: malformed answers are HazeErrors and change nothing (fuzz)', () => {
  const good = poll({ sent: 5_000, streams: { a: stream(3, 1, 100, 0) }, tags: ['x'] }) as Record<string, unknown>;
  for (const bad of [null, 3, 'x', [], { ...good, cpu: 'high' }, { ...good, bw: [1] }, { ...good, bw: [1, -1] }, { ...good, streams: { a: { curr: [1], bw: [0, 0] } } }, { ...good, tags: [1] }, { ...good, loc: { lat: 91, lon: 0 } }, { ...good, outputs: { HLS: 5 } }, { ...good, mem_total: Infinity }]) {
    const h = new HostState('h:1', MIB);
    h.update(0, good);
    assert.throws(() => h.update(5000, bad), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED', JSON.stringify(bad));
    assert.equal(h.streams.get('a')!.viewers, 3, 'state untouched');
    assert.equal(h.lastPollMs, 0);
  }
  const leaf = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 8 }), fc.boolean(), fc.constant(null));
  const anyJson = fc.letrec((tie) => ({
    v: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(fc.constantFrom('cpu', 'mem_total', 'mem_used', 'bw', 'streams', 'curr', 'tags', 'loc', 'lat', 'lon', 'outputs', 'conf_streams', 'x'), tie('v'), { maxKeys: 6 })),
  })).v;
  // mutations of a valid answer: one field replaced by anything
  const mutated = fc.tuple(fc.constantFrom(...Object.keys(good), 'streams.a'), anyJson).map(([k, v]) => {
    const j = structuredClone(good) as Record<string, unknown>;
    if (k === 'streams.a') (j['streams'] as Record<string, unknown>)['a'] = v;
    else j[k] = v;
    return j;
  });
  fc.assert(
    fc.property(fc.oneof(anyJson, mutated), (j) => {
      const h = new HostState('h:1', MIB);
      try {
        h.update(1000, j);
        assert.ok(Number.isFinite(h.upSpeed) && Number.isFinite(h.cpu) && h.streams.size <= MAX_STREAMS_PER_HOST);
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }),
    { numRuns: 1500 },
  );
});

test('host-state: the badness of a long outage stops at the capacity', () => {
  const h = new HostState('a:4242', 100 * 1024 * 1024);
  for (let i = 0; i < 10_000; i++) h.failed(i, 'connection refused');
  assert.ok(Number.isFinite(h.addBandwidth) && h.addBandwidth <= h.capacityBytesPerS, `${h.addBandwidth}`);
  assert.equal(h.addBandwidth, h.capacityBytesPerS);
});
