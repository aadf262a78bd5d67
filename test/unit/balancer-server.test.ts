// The balancer's HTTP API (reference §8.3) through the pure request handler, over real
// HostStates fed synthetic Prometheus JSON polls (no sockets), plus persistence and the poller
// with a fake fetch.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { Balancer, handleBalancerRequest, metricsText, type BalancerRequest } from '../../src/balancer/api.js';
import { loadStore, mergeServers, parseServerSpec, saveStore, storeFile } from '../../src/balancer/store.js';
import { Poller, type FetchJson } from '../../src/balancer/poller.js';
import type { HostState } from '../../src/balancer/host-state.js';
import { parseBalanceArgs } from '../../src/cli/balance.js';
import { repoRoot, sleep, tmpDir } from '../helpers.js';
import { checkDashboard } from '../grafana-dashboard.js';

const require = createRequire(import.meta.url);
const parsePrometheus = require('parse-prometheus-text-format') as (text: string) => { name: string; type: string; metrics: { value: string; labels?: Record<string, string> }[] }[];

interface FakeStream {
  viewers?: number;
  inputs?: number;
  sent?: number;
  rep?: boolean;
}

/** A §7.3 Prometheus JSON as Haze writes it (bw[1] = bytes sent to clients). */
function pollJson(o: { cpu?: number; sent?: number; streams?: Record<string, FakeStream>; dtsc?: number; http?: number; loc?: { lat: number; lon: number }; tags?: string[] } = {}): unknown {
  const streams: Record<string, unknown> = {};
  for (const [n, s] of Object.entries(o.streams ?? {})) {
    streams[n] = { tot: [s.viewers ?? 0, s.inputs ?? 0, 0], bw: [0, s.sent ?? 0], curr: [s.viewers ?? 0, s.inputs ?? 0, 0, 0], pkts: [0, 0, 0], ...(s.rep ? { rep: true } : {}) };
  }
  return {
    cpu: o.cpu ?? 100,
    mem_total: 1_000_000,
    mem_used: 200_000,
    shm_total: 100_000,
    shm_used: 1000,
    logs: 0,
    curr: [0, 0, 0, 0, 0],
    tot: [0, 0, 0, 0],
    st: [0, 0],
    bw: [0, o.sent ?? 0],
    pkts: [0, 0, 0],
    bwlimit: 128 * 1024 * 1024,
    triggers: {},
    loc: o.loc ?? { lat: 0, lon: 0, name: '' },
    obw: [0, 0],
    streams,
    output_counts: {},
    conf_streams: [],
    tags: o.tags ?? [],
    outputs: { HLS: `http://HOST:${o.http ?? 8080}/hls/$/index.m3u8`, HTTP: `http://HOST:${o.http ?? 8080}/$.html`, ...(o.dtsc ? { DTSC: `dtsc://HOST:${o.dtsc}/$` } : {}) },
  };
}

function req(url: string, peer = '127.0.0.1', headers: BalancerRequest['headers'] = {}): BalancerRequest {
  return { method: 'GET', url, headers, peer };
}

/** Two online servers: A carries live+x (an input), B is idle; both polled twice. */
function twoHosts(): { bal: Balancer; a: HostState; b: HostState } {
  const bal = new Balancer();
  const a = bal.addServer(parseServerSpec('a.test:4242'));
  const b = bal.addServer(parseServerSpec('b.test:4343/100'));
  for (const t of [0, 1000]) {
    a.update(t, pollJson({ streams: { 'live+x': { inputs: 1 } }, dtsc: 4200, http: 8080 }));
    b.update(t, pollJson({ dtsc: 4201, http: 8081 }));
  }
  return { bal, a, b };
}

test('GET /<stream> answers the host carrying the stream and counts the viewer', () => {
  const { bal, a } = twoHosts();
  const r = handleBalancerRequest(bal, req('/live+x'));
  assert.equal(r.status, 200);
  assert.equal(r.body, 'a.test:4242');
  assert.match(r.headers['Content-Type']!, /^text\/plain/);
  assert.equal(r.headers['Access-Control-Allow-Origin'], '*');
  assert.ok(a.addBandwidth > 0, 'the viewer was counted (predicted bandwidth)');
  assert.equal(bal.decisionsTotal(), 1);
  // a space (a URL decoder's +) is the same name
  assert.equal(handleBalancerRequest(bal, req('/live%20x')).body, 'a.test:4242');
});

test('?proto= redirects to the output URL with the stream and the remaining query', () => {
  const { bal } = twoHosts();
  const r = handleBalancerRequest(bal, req('/live+x?proto=HLS&lat=10&lon=20&tkn=abc'));
  assert.equal(r.status, 307);
  assert.equal(r.headers['Location'], 'http://a.test:8080/hls/live+x/index.m3u8?tkn=abc');
  const before = bal.decisionsTotal();
  const none = handleBalancerRequest(bal, req('/live+x?proto=NOPE'));
  assert.equal(none.status, 404);
  assert.equal(bal.decisionsTotal(), before, 'no viewer counted for a 404');
  assert.match(none.body, /no NOPE output/);
  // a polled template that would inject a header line is no output
  bal.hosts.get('a.test:4242')!.outputs['EVIL'] = 'http://x/$\r\nSet-Cookie: a=b';
  assert.equal(handleBalancerRequest(bal, req('/live+x?proto=EVIL')).status, 404);
});

test('?source= answers dtsc://HOST:DTSCPORT of a host with the input, excluding the asker', () => {
  const { bal, b } = twoHosts();
  assert.equal(handleBalancerRequest(bal, req('/?source=live+x')).body, 'dtsc://a.test:4200');
  // the asking server excludes itself: no other source -> the fallback
  assert.equal(handleBalancerRequest(bal, req('/?source=live+x&exclude=a.test:4242')).body, 'FULL');
  assert.equal(handleBalancerRequest(bal, req('/?source=live+x&exclude=A.test')).body, 'FULL', 'names are normalised (default API port 4242)');
  assert.equal(handleBalancerRequest(bal, req('/?source=live+x&exclude=a.test:4242&fallback=dtsc://origin:4200')).body, 'dtsc://origin:4200');
  // a replicated copy is never a source
  for (const t of [2000, 3000]) b.update(t, pollJson({ streams: { 'live+x': { inputs: 1, rep: true } }, dtsc: 4201 }));
  assert.equal(handleBalancerRequest(bal, req('/?source=live+x&exclude=a.test:4242')).body, 'FULL');
  // peer address + ?port= names the asker
  const bal2 = new Balancer();
  const h = bal2.addServer(parseServerSpec('127.0.0.1:4242'));
  h.update(0, pollJson({ streams: { s: { inputs: 1 } }, dtsc: 4200 }));
  assert.equal(handleBalancerRequest(bal2, req('/?source=s', '::ffff:127.0.0.1')).body, 'dtsc://127.0.0.1:4200');
  assert.equal(handleBalancerRequest(bal2, req('/?source=s&port=4242', '::ffff:127.0.0.1')).body, 'FULL');
});

test('stream figures: ?stream=, ?viewers=1, ?streamstats=', () => {
  const bal = new Balancer();
  const a = bal.addServer(parseServerSpec('a.test'));
  const b = bal.addServer(parseServerSpec('b.test'));
  // the same viewers at both polls (a per-viewer figure divides by the mean viewers of the interval)
  a.update(0, pollJson({ streams: { s: { viewers: 2, inputs: 1, sent: 0 }, t: { viewers: 1 } } }));
  a.update(1000, pollJson({ streams: { s: { viewers: 2, inputs: 1, sent: 200_000 }, t: { viewers: 1 } } }));
  b.update(0, pollJson({ streams: { s: { viewers: 3, sent: 0 } } }));
  b.update(1000, pollJson({ streams: { s: { viewers: 3, sent: 600_000 } } }));
  assert.equal(handleBalancerRequest(bal, req('/?stream=s')).body, '5');
  assert.equal(handleBalancerRequest(bal, req('/?stream=none')).body, '0');
  assert.deepEqual(JSON.parse(handleBalancerRequest(bal, req('/?viewers=1')).body), { s: 5, t: 1 });
  const st = JSON.parse(handleBalancerRequest(bal, req('/?streamstats=s')).body) as Record<string, number[]>;
  // 200 kB/s over 2 viewers and 600 kB/s over 3: 800 kB/s over 5 viewers
  assert.deepEqual(st, { s: [5, 160_000, 800_000, 0] });
  assert.deepEqual(Object.keys(JSON.parse(handleBalancerRequest(bal, req('/?streamstats=*')).body) as object).sort(), ['s', 't']);
});

test('GET /, ?host=, ?lstserver=1 show states and scores', () => {
  const { bal, b } = twoHosts();
  b.failed(2000, 'ECONNREFUSED');
  const all = JSON.parse(handleBalancerRequest(bal, req('/')).body) as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(all), ['a.test:4242', 'b.test:4343']);
  assert.equal(all['a.test:4242']!['state'], 'online');
  assert.equal(all['b.test:4343']!['state'], 'error');
  assert.equal(all['b.test:4343']!['error'], 'ECONNREFUSED');
  assert.equal(all['b.test:4343']!['bwlimit'], 100 * 1024 * 1024);
  assert.equal(typeof (all['a.test:4242']!['score'] as Record<string, unknown>)['cpu'], 'number');
  const one = JSON.parse(handleBalancerRequest(bal, req('/?host=a.test:4242')).body) as Record<string, unknown>;
  assert.equal(one['state'], 'online');
  assert.equal(handleBalancerRequest(bal, req('/?host=zzz:1')).status, 404);
  assert.deepEqual(JSON.parse(handleBalancerRequest(bal, req('/?lstserver=1')).body), { 'a.test:4242': 'online', 'b.test:4343': 'error' });
  // a host in error gets no viewers
  assert.equal(handleBalancerRequest(bal, req('/other')).body, 'a.test:4242');
});

test('addserver/delserver/weights/policy: localhost only unless remoteConfig; changes persist through onChange', () => {
  const added: string[] = [];
  const removed: string[] = [];
  let changes = 0;
  const bal = new Balancer({ hooks: { onAdd: (h) => added.push(h.name), onRemove: (n) => removed.push(n), onChange: () => changes++ } });
  const remote = '203.0.113.9';
  for (const u of ['/?addserver=c.test:4242', '/?delserver=c.test:4242', '/?weights={"cpu":1}', '/?policy=round-robin']) {
    const r = handleBalancerRequest(bal, req(u, remote));
    assert.equal(r.status, 403, u);
    assert.match(r.body, /only from localhost/);
  }
  assert.equal(changes, 0);
  // reading weights and policy is allowed from anywhere
  assert.equal(handleBalancerRequest(bal, req('/?weights=', remote)).status, 200);
  assert.equal(handleBalancerRequest(bal, req('/?policy=', remote)).body, 'media-aware');

  let r = handleBalancerRequest(bal, req('/?addserver=C.test:4242/50', '::1'));
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { 'c.test:4242': 'starting' });
  assert.equal(bal.hosts.get('c.test:4242')!.capacityBytesPerS, 50 * 1024 * 1024);
  r = handleBalancerRequest(bal, req('/?weights={"cpu":100,"bonus":0}'));
  assert.deepEqual(JSON.parse(r.body), { cpu: 100, ram: 500, bw: 1000, geo: 1000, bonus: 0 });
  assert.equal(handleBalancerRequest(bal, req('/?policy=least-loaded')).body, 'least-loaded');
  assert.equal(bal.chooser.policy, 'least-loaded');
  assert.equal(handleBalancerRequest(bal, req('/?delserver=c.test:4242')).body, '{}\n');
  assert.equal(handleBalancerRequest(bal, req('/?delserver=c.test:4242')).status, 404);
  assert.deepEqual(added, ['c.test:4242']);
  assert.deepEqual(removed, ['c.test:4242']);
  assert.equal(changes, 4);

  const open = new Balancer({ remoteConfig: true });
  assert.equal(handleBalancerRequest(open, req('/?addserver=d.test', remote)).status, 200);
  assert.ok(open.hosts.has('d.test:4242'));
});

test('bad input is a 400 with a clear text', () => {
  const { bal } = twoHosts();
  const cases: [string, RegExp][] = [
    ['/?weights={"cpu":-1}', /cpu must be a number/],
    ['/?weights=nope', /weights: not JSON/],
    ['/?weights={"speed":1}', /unknown weight/],
    ['/?policy=random', /policy: one of/],
    ['/?addserver=bad host', /bad server/],
    ['/?addserver=h:99999', /port out of range/],
    ['/?ingest=150', /ingest/],
    ['/s?lat=100&lon=0', /lat\/lon/],
    ['/s?lat=1', /lat\/lon/],
    ['/s?tag_adjust=[1]', /tag_adjust/],
    ['/%zz', /percent-encoding/],
    ['/..', /not a valid stream name/],
    ['/?source=', /source: not a valid stream name/],
    ['/?source=s&port=0', /port/],
    ['/?source=s&exclude=no%20such', /bad server/],
  ];
  for (const [u, re] of cases) {
    const r = handleBalancerRequest(bal, req(u));
    assert.equal(r.status, 400, u);
    assert.match(r.body, re, u);
    assert.doesNotMatch(r.body, /\n\s+at /, 'no stack trace');
  }
  assert.equal(handleBalancerRequest(bal, { ...req('/s'), method: 'POST' }).status, 405);
  assert.equal(handleBalancerRequest(bal, req('/' + 'a'.repeat(9000))).status, 414);
  assert.equal(handleBalancerRequest(bal, { ...req('/s'), method: 'OPTIONS' }).status, 204);
});

test('client location and tag adjustments steer the choice', () => {
  const bal = new Balancer();
  const ams = bal.addServer(parseServerSpec('ams.test'));
  const nyc = bal.addServer(parseServerSpec('nyc.test'));
  for (const t of [0, 1000]) {
    ams.update(t, pollJson({ loc: { lat: 52.37, lon: 4.9 }, tags: ['eu'] }));
    nyc.update(t, pollJson({ loc: { lat: 40.7, lon: -74 }, tags: ['us'] }));
  }
  // a new stream each time: a stream already sent to a host stays there (media-aware clustering)
  assert.equal(handleBalancerRequest(bal, req('/s1?lat=51.5&lon=-0.1')).body, 'ams.test:4242');
  assert.equal(handleBalancerRequest(bal, req('/s2', '127.0.0.1', { 'x-latitude': '42', 'x-longitude': '-71' })).body, 'nyc.test:4242');
  // a big enough tag bonus wins over geography
  assert.equal(handleBalancerRequest(bal, req('/s3?lat=51.5&lon=-0.1&tag_adjust=' + encodeURIComponent('{"us":5000}'))).body, 'nyc.test:4242');
  assert.equal(handleBalancerRequest(bal, req('/s4?lat=51.5&lon=-0.1', '127.0.0.1', { 'x-tag-adjust': '{"us":5000}' })).body, 'nyc.test:4242');
  // and the first viewer's stream keeps its host for a client elsewhere
  assert.equal(handleBalancerRequest(bal, req('/s1?lat=42&lon=-71')).body, 'ams.test:4242');
});

test('no eligible host -> the fallback text; ?ingest= picks a host', () => {
  const bal = new Balancer({ fallback: 'NONE-LEFT' });
  assert.equal(handleBalancerRequest(bal, req('/s')).body, 'NONE-LEFT');
  assert.equal(handleBalancerRequest(bal, req('/?ingest=10')).body, 'NONE-LEFT');
  const { bal: two } = twoHosts();
  assert.match(handleBalancerRequest(two, req('/?ingest=10')).body, /^[ab]\.test:4[23]4[23]$/);
});

test('GET /metrics is valid Prometheus text with decisions, scores, predictions, status', () => {
  const { bal, b } = twoHosts();
  handleBalancerRequest(bal, req('/live+x'));
  handleBalancerRequest(bal, req('/?policy=round-robin'));
  handleBalancerRequest(bal, req('/live+x'));
  b.failed(5000, 'down');
  const r = handleBalancerRequest(bal, req('/metrics'));
  assert.equal(r.status, 200);
  assert.match(r.headers['Content-Type']!, /version=0\.0\.4/);
  assert.equal(r.body, metricsText(bal));
  const fams = new Map(parsePrometheus(r.body).map((f) => [f.name, f]));
  assert.equal(fams.get('haze_balancer_decisions_total')!.type, 'COUNTER');
  assert.equal(fams.get('haze_balancer_decisions_total')!.metrics[0]!.value, '2');
  const byPolicy = Object.fromEntries(fams.get('haze_balancer_policy_decisions_total')!.metrics.map((m) => [m.labels!['policy'], m.value]));
  assert.deepEqual(byPolicy, { 'media-aware': '1', 'round-robin': '1', 'least-loaded': '0' });
  const scores = fams.get('haze_balancer_server_score')!.metrics;
  assert.ok(Number(scores.find((m) => m.labels!['host'] === 'a.test:4242')!.value) > 0);
  assert.equal(Number(scores.find((m) => m.labels!['host'] === 'b.test:4343')!.value), 0, 'a host in error scores 0');
  const pred = fams.get('haze_balancer_server_predicted_bytes_per_second')!.metrics;
  assert.ok(Number(pred.find((m) => m.labels!['host'] === 'b.test:4343')!.value) >= 1024 * 1024, 'failed poll badness');
  const st = fams.get('haze_balancer_server_status')!.metrics.filter((m) => m.value === '1').map((m) => `${m.labels!['host']}=${m.labels!['status']}`);
  assert.deepEqual(st.sort(), ['a.test:4242=online', 'b.test:4343=error']);
});

test('the balancer\'s Grafana dashboard reads only metrics GET /metrics emits, and shows load against capacity', () => {
  const { bal } = twoHosts();
  const emitted = new Set(parsePrometheus(metricsText(bal)).map((f) => f.name));
  checkDashboard(path.join(repoRoot, 'dashboards/grafana-haze-balancer.json'), emitted, [
    'haze_balancer_decisions_total',
    'haze_balancer_policy_decisions_total',
    'haze_balancer_server_score',
    'haze_balancer_server_load_bytes_per_second',
    'haze_balancer_server_predicted_bytes_per_second',
    'haze_balancer_server_capacity_bytes_per_second',
    'haze_balancer_server_viewers',
    'haze_balancer_server_status',
  ]);
});

test('store: parse, atomic save, load, merge with flags', () => {
  assert.deepEqual(parseServerSpec('Example.COM'), { name: 'example.com:4242', capacityMiBps: 128 });
  assert.deepEqual(parseServerSpec('[::1]:4300/12.5'), { name: '[::1]:4300', capacityMiBps: 12.5 });
  assert.throws(() => parseServerSpec('a:b'), /bad server/);
  assert.throws(() => parseServerSpec('a/0'), /capacity/);
  const dir = tmpDir('haze-bal-');
  try {
    assert.deepEqual(loadStore(dir), { servers: [] });
    saveStore(dir, { servers: [{ name: 'a:1', capacityMiBps: 10 }], weights: { cpu: 1, ram: 2, bw: 3, geo: 4, bonus: 5 }, policy: 'round-robin' });
    assert.deepEqual(fs.readdirSync(dir), ['balancer.json'], 'no tmp file left');
    const s = loadStore(dir);
    assert.deepEqual(s, { servers: [{ name: 'a:1', capacityMiBps: 10 }], weights: { cpu: 1, ram: 2, bw: 3, geo: 4, bonus: 5 }, policy: 'round-robin' });
    assert.deepEqual(mergeServers(s.servers, [parseServerSpec('a:1/20'), parseServerSpec('b:2')]), [
      { name: 'a:1', capacityMiBps: 20 },
      { name: 'b:2', capacityMiBps: 128 },
    ]);
    fs.writeFileSync(storeFile(dir), '{"servers":[{"name":"bad name"},{"name":"ok:5"},7],"weights":{"cpu":"x"},"policy":"zz"}');
    assert.deepEqual(loadStore(dir), { servers: [{ name: 'ok:5', capacityMiBps: 128 }], weights: {} });
    fs.writeFileSync(storeFile(dir), '{');
    assert.throws(() => loadStore(dir), /not JSON/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.equal(path.basename(storeFile('/x')), 'balancer.json');
});

test('flags of haze balance', () => {
  const o = parseBalanceArgs(['--port', '9000', '--server', 'a:1/5', '--server=b', '--policy', 'least-loaded', '--poll-ms', '500', '--remote-config', '--fallback', 'X']);
  assert.equal(o.port, 9000);
  assert.deepEqual(o.servers, [
    { name: 'a:1', capacityMiBps: 5 },
    { name: 'b:4242', capacityMiBps: 128 },
  ]);
  assert.equal(o.policy, 'least-loaded');
  assert.equal(o.pollMs, 500);
  assert.equal(o.remoteConfig, true);
  assert.equal(o.fallback, 'X');
  assert.equal(o.passphrase, 'koekjes');
  assert.throws(() => parseBalanceArgs(['--poll-ms', '5']), /--poll-ms must be/);
  assert.throws(() => parseBalanceArgs(['--policy', 'x']), /--policy must be/);
  assert.throws(() => parseBalanceArgs(['--nope']), /unknown flag/);
});

test('poller: one chain per server, failures marked, removal stops polling', async () => {
  const calls: string[] = [];
  let answerB: unknown = 'not an object';
  const fetch: FetchJson = async (url) => {
    calls.push(url);
    if (url.includes('a.test')) return pollJson();
    if (url.includes('c.test')) throw new Error('ECONNREFUSED');
    return answerB;
  };
  const bal = new Balancer();
  const poller = new Poller({ passphrase: 'PASS', pollMs: 30, fetch });
  bal.hooks = { onAdd: (h) => poller.add(h), onRemove: (n) => poller.remove(n) };
  const a = bal.addServer(parseServerSpec('a.test'));
  const b = bal.addServer(parseServerSpec('b.test'));
  const c = bal.addServer(parseServerSpec('c.test'));
  try {
    await sleep(100);
    assert.equal(a.status, 'online');
    assert.equal(b.status, 'error');
    assert.match(b.lastError!, /not a JSON object/);
    assert.equal(c.status, 'error');
    assert.match(c.lastError!, /ECONNREFUSED/);
    assert.ok(calls.includes('http://a.test:4242/PASS.json'));
    answerB = pollJson();
    await sleep(80);
    assert.equal(b.status, 'online', 'recovers on the next good poll');
    bal.delServer('a.test:4242');
    const n = calls.filter((u) => u.includes('a.test')).length;
    await sleep(80);
    assert.equal(calls.filter((u) => u.includes('a.test')).length, n, 'no poll after removal');
  } finally {
    poller.stop();
  }
});
