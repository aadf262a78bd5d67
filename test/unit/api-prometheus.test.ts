import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { createApiRequestHandler } from '../../src/controller/api-http.js';
import type { ApiHost } from '../../src/controller/api.js';
import { ConfigStore } from '../../src/controller/config-store.js';
import type { StatsSnapshot } from '../../src/stats/snapshot.js';
import { tmpDir } from '../helpers.js';

const require = createRequire(import.meta.url);
const parsePrometheus = require('parse-prometheus-text-format') as (text: string) => { name: string; type: string; metrics: { value: string; labels?: Record<string, string> }[] }[];

function snapshot(): StatsSnapshot {
  return {
    timeMs: Date.now(),
    vitals: { cpuTenths: 250, memTotalKiB: 2000, memUsedKiB: 1500, shmTotalKiB: 1000, shmUsedKiB: 10, nic: { up: 70, down: 80 } },
    logs: 5,
    current: { viewers: 3, inputs: 1, outputs: 0, unspecified: 0, cached: 4 },
    total: { viewers: 9, inputs: 1, outputs: 0, unspecified: 0 },
    viewSeconds: 60,
    bandwidth: { up: 100, down: 2000 },
    other: { up: 0, down: 0 },
    bandwidthLimit: 1000,
    packets: { sent: 0, lost: 0, retrans: 0 },
    outputs: { HLS: 3 },
    streams: {
      live: {
        current: { viewers: 3, inputs: 1, outputs: 0, unspecified: 0 },
        total: { viewers: 9, inputs: 1, outputs: 0 },
        bytes: { up: 100, down: 2000 },
        viewSeconds: 60,
        packets: { sent: 0, lost: 0, retrans: 0 },
        replicated: false,
      },
    },
    triggers: { USER_NEW: { count: 9, ms: 30, fails: 1 } },
    location: { lat: 1.5, lon: 2.5, name: 'here' },
    configuredStreams: ['live'],
    tags: [],
    outputUrls: { HLS: 'http://HOST:8080/hls/$/index.m3u8' },
  };
}

interface Setup {
  server: http.Server;
  base: string;
  store: ConfigStore;
}

async function serve(prometheus: string | undefined, withMetrics = true): Promise<Setup> {
  const store = ConfigStore.open(path.join(tmpDir(), 'config.json'));
  if (prometheus !== undefined) store.update((c) => void (c.config.prometheus = prometheus));
  const host: ApiHost = {
    config: store,
    instanceId: 'prom-iid',
    streamStats: async () => ({}),
    logs: () => [],
    ...(withMetrics ? { metrics: snapshot } : {}),
  };
  const server = http.createServer(createApiRequestHandler(host));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, store };
}

const servers: http.Server[] = [];
let on: Setup;
before(async () => {
  on = await serve('secret');
  servers.push(on.server);
});
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

test('GET /<prometheus>: exposition text 0.0.4 with CORS, no authorization asked', async () => {
  // a forwarded request is not auto-authorized as local, and still gets the metrics
  const r = await fetch(`${on.base}/secret`, { headers: { 'X-Forwarded-For': '203.0.113.9' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  const fams = parsePrometheus(await r.text());
  const byName = new Map(fams.map((f) => [f.name, f]));
  assert.equal(byName.get('mist_cpu')?.metrics[0]?.value, '250');
  assert.equal(byName.get('mist_cpu')?.type, 'GAUGE');
  assert.deepEqual(byName.get('mist_outputs')?.metrics, [{ value: '3', labels: { output: 'HLS' } }]);
  assert.deepEqual(byName.get('mist_trigger_fails')?.metrics, [{ value: '1', labels: { trigger: 'USER_NEW' } }]);

  const head = await fetch(`${on.base}/secret`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(await head.text(), '');
});

test('GET /<prometheus>.json: the JSON form; ?callback= and ?jsonp= wrap it', async () => {
  const r = await fetch(`${on.base}/secret.json`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type')!, /^application\/json/);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  const j: any = await r.json();
  assert.equal(j.cpu, 250);
  assert.deepEqual(j.curr, [3, 1, 0, 0, 4]);
  assert.deepEqual(j.tot, [9, 1, 0, 0]);
  assert.deepEqual(j.st, [70, 80]);
  assert.deepEqual(j.streams, { live: { tot: [9, 1, 0], bw: [100, 2000], curr: [3, 1, 0, 0], pkts: [0, 0, 0] } });
  assert.deepEqual(j.loc, { lat: 1.5, lon: 2.5, name: 'here' });
  assert.deepEqual(j.outputs, { HLS: 'http://HOST:8080/hls/$/index.m3u8' });

  for (const q of ['callback=f', 'jsonp=f']) {
    const p = await fetch(`${on.base}/secret.json?${q}`);
    assert.match(p.headers.get('content-type')!, /^text\/javascript/);
    const text = await p.text();
    const m = /^f\((.*)\);\n$/s.exec(text);
    assert.ok(m, `JSONP: ${text.slice(0, 40)}`);
    assert.deepEqual(JSON.parse(m[1]!), j);
  }
  const bad = await fetch(`${on.base}/secret.json?callback=alert(1)`);
  assert.equal(bad.status, 400);
});

test('other paths still reach the API; POST to the metrics path is not metrics', async () => {
  const other = await fetch(`${on.base}/other`);
  assert.match(other.headers.get('content-type')!, /^text\/html/, 'the web UI');
  const api = await fetch(`${on.base}/api2?command=${encodeURIComponent('{"config":true}')}`);
  assert.equal(api.status, 200);
  assert.equal(((await api.json()) as any).LTS, 1);
  const post = await fetch(`${on.base}/secret`, { method: 'POST' });
  assert.equal(post.status, 404);
  assert.match(post.headers.get('content-type')!, /^text\/javascript/);
});

test('config changes apply at once: a new path moves the endpoint; empty turns it off', async () => {
  const s = await serve('first');
  servers.push(s.server);
  assert.equal((await fetch(`${s.base}/first`)).status, 200);
  s.store.update((c) => void (c.config.prometheus = 'second'));
  assert.match((await fetch(`${s.base}/first`)).headers.get('content-type')!, /^text\/html/, 'no longer metrics: the web UI');
  assert.equal((await fetch(`${s.base}/second.json`)).status, 200);
  s.store.update((c) => void (c.config.prometheus = ''));
  const off = await fetch(`${s.base}/second`, { method: 'POST' });
  assert.equal(off.status, 404);
  assert.match(off.headers.get('content-type')!, /^text\/javascript/, 'the API answered');
});

test('no prometheus configured: /secret is not metrics; no metrics source: 503', async () => {
  const none = await serve(undefined);
  servers.push(none.server);
  const r = await fetch(`${none.base}/secret`);
  assert.match(r.headers.get('content-type')!, /^text\/html/, 'the web UI');
  assert.ok(!(await r.text()).includes('mist_cpu'));

  const noSource = await serve('secret', false);
  servers.push(noSource.server);
  const u = await fetch(`${noSource.base}/secret`);
  assert.equal(u.status, 503);
  assert.match(u.headers.get('content-type')!, /^text\/plain/);
  await u.text();
});

test('the API config call accepts `prometheus` as a string only', async () => {
  const s = await serve(undefined);
  servers.push(s.server);
  const call = async (cmd: unknown): Promise<any> =>
    (await fetch(`${s.base}/api2`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(cmd) })).json();
  const ok = await call({ config: { prometheus: 'viaapi' } });
  assert.equal(ok.error, undefined);
  assert.equal(s.store.get().config.prometheus, 'viaapi');
  assert.equal((await fetch(`${s.base}/viaapi`)).status, 200);
  const bad = await call({ config: { prometheus: 42 } });
  assert.ok(JSON.stringify(bad).includes('prometheus'), `rejected: ${JSON.stringify(bad).slice(0, 200)}`);
  assert.equal(s.store.get().config.prometheus, 'viaapi');
});
