import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ACTIVE_STREAM_FIELDS, handleApiCommand, type ActiveStreamStats, type ApiHost, type ApiRequestContext } from '../../src/controller/api.js';
import { createAuthState } from '../../src/controller/auth.js';
import { ConfigStore } from '../../src/controller/config-store.js';
import { repoRoot, tmpDir } from '../helpers.js';

type Stats = Record<string, Partial<ActiveStreamStats>>;

function setup(opts: { stats?: Stats | (() => Promise<Stats>); file?: string; logs?: () => Array<[number, string, string]> } = {}) {
  const store = ConfigStore.open(opts.file);
  const lines: Array<[number, string, string]> = Array.from({ length: 150 }, (_, i) => [1_700_000_000 + i, 'INFO', `line ${i}`]);
  const stats = opts.stats;
  const host: ApiHost = {
    config: store,
    instanceId: 'iid-test',
    streamStats: typeof stats === 'function' ? stats : async () => stats ?? {},
    logs: opts.logs ?? (() => lines),
  };
  const ctx: ApiRequestContext = { peer: '127.0.0.1', headers: {}, auth: createAuthState() };
  const call = (req: Record<string, unknown>): Promise<Record<string, any>> => handleApiCommand(req, ctx, host);
  return { store, host, call };
}

test('an empty request answers the full state', async () => {
  const { call } = setup();
  const r = await call({});
  assert.deepEqual(r['authorize'], { status: 'OK', local: true });
  assert.equal(r['LTS'], 1);
  assert.deepEqual(Object.keys(r['streams']), ['live', 'demo']);
  assert.equal(r['streams'].live.source, 'push://127.0.0.1');
  assert.equal(r['streams'].live.online, 0);
  assert.match(r['streams'].live.error, /offline/i);
  const c = r['config'];
  assert.equal(c.iid, 'iid-test');
  assert.equal(c.version, JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version);
  assert.ok(Math.abs(c.time - Date.now() / 1000) < 5);
  assert.equal(c.serverid, '');
  assert.equal(c.controller.port, 4242);
  assert.ok(Array.isArray(c.protocols));
  assert.equal(r['log'].length, 100);
  assert.deepEqual(r['log'][99], [1_700_000_149, 'INFO', 'line 149']);
  assert.equal(r['error'], undefined);
});

test('minimal answers only what was asked', async () => {
  const { call } = setup();
  assert.deepEqual(await call({ minimal: 1 }), { authorize: { status: 'OK', local: true }, LTS: 1 });
  const r = await call({ minimal: true, log: true, version: true });
  assert.deepEqual(Object.keys(r).sort(), ['LTS', 'authorize', 'log', 'version']);
  assert.equal(typeof r['version'].version, 'string');
  assert.equal(r['version'].release, 'Haze');
  assert.match(r['version'].date, /^[A-Z][a-z]{2} [ \d]\d \d{4}$/);
  assert.match(r['version'].time, /^\d\d:\d\d:\d\d$/);
});

test('addstream adds valid streams, answers only them, names the invalid ones', async () => {
  const { store, call } = setup();
  const r = await call({ addstream: { Cam1: { source: 'push://', DVR: 60000 }, broken: { DVR: 5 }, vod: { source: '/nonexistent/a.mp4' } } });
  assert.deepEqual(Object.keys(r['streams']).sort(), ['cam1', 'incomplete list', 'vod']);
  assert.equal(r['streams']['incomplete list'], 1);
  assert.deepEqual(store.get().streams['cam1'], { name: 'cam1', source: 'push://', DVR: 60000 });
  assert.equal(r['streams'].vod.online, 0);
  assert.equal(r['streams'].vod.error, 'Stream offline: Not found: /nonexistent/a.mp4');
  assert.ok(!('broken' in store.get().streams));
  assert.match(r['error'], /broken/);
  assert.match(r['error'], /source/);
  // update an existing one (replaced as a whole, runtime keys dropped)
  await call({ addstream: { cam1: { source: 'push://10.0.0.1', online: 1, error: 'x' } } });
  assert.deepEqual(store.get().streams['cam1'], { name: 'cam1', source: 'push://10.0.0.1' });
  // wrong shapes
  for (const bad of [true, 'x', ['a']]) assert.match((await call({ addstream: bad }))['error'], /addstream/);
  assert.match((await call({ addstream: { 'a+b': { source: 'push://' } } }))['error'], /\+/);
});

test('deletestream takes a name, an array or an object', async () => {
  const { store, call } = setup();
  await call({ addstream: { a: { source: 'push://' }, b: { source: 'push://' }, c: { source: 'push://' }, d: { source: 'push://' } } });
  let r = await call({ deletestream: 'a' });
  assert.deepEqual(r['streams'], { 'incomplete list': 1 });
  assert.ok(!('a' in store.get().streams));
  await call({ deletestream: ['b', 'nonexistent'] });
  await call({ deletestream: { C: true } });
  assert.deepEqual(Object.keys(store.get().streams).sort(), ['d', 'demo', 'live']);
  r = await call({ deletestream: 'nonexistent' });
  assert.equal(r['error'], undefined, 'deleting what is not there is not an error');
  assert.match((await call({ deletestream: 5 }))['error'], /deletestream/);
  assert.match((await call({ deletestream: [5] }))['error'], /deletestream/);
});

test('streams replaces the whole set; one bad entry changes nothing', async () => {
  const { store, call } = setup();
  let r = await call({ streams: { x: { source: 'push://' }, y: { source: '/tmp' } } });
  assert.deepEqual(Object.keys(store.get().streams).sort(), ['x', 'y']);
  assert.deepEqual(Object.keys(r['streams']).sort(), ['x', 'y'], 'the full list, no "incomplete list"');
  assert.equal(r['streams'].y.online, 2);
  assert.equal(r['streams'].y.error, 'Available');
  r = await call({ streams: { z: { source: 'push://' }, bad: {} } });
  assert.deepEqual(Object.keys(store.get().streams).sort(), ['x', 'y']);
  assert.match(r['error'], /bad/);
  assert.match(r['error'], /nothing changed/);
  assert.match((await call({ streams: 'x' }))['error'], /streams/);
  // an answer's list sent back works
  r = await call({ streams: { ...r['streams'], 'incomplete list': 1 } });
  assert.equal(r['error'], undefined);
  assert.deepEqual(Object.keys(store.get().streams).sort(), ['x', 'y']);
  assert.equal(store.get().streams['y']!['online'], undefined, 'runtime keys are not stored');
});

test('stream runtime state follows the host statistics', async () => {
  const { call } = setup({
    stats: { a: { status: 'Online' }, b: { status: 'Booting' }, c: { status: 'Waiting for data' }, d: { viewers: 3 }, e: { status: 'Invalid' } },
  });
  const r = await call({ addstream: { a: { source: 'push://' }, b: { source: 'push://' }, c: { source: 'push://' }, d: { source: 'push://' }, e: { source: 'push://' } } });
  const s = r['streams'];
  assert.deepEqual([s.a.online, s.a.error], [1, undefined]);
  assert.deepEqual([s.b.online, s.b.error], [2, 'Loading...']);
  assert.deepEqual([s.c.online, s.c.error], [2, 'Waiting for data...']);
  assert.deepEqual([s.d.online, s.d.error], [1, undefined]);
  assert.deepEqual([s.e.online, s.e.error], [0, 'Invalid']);
});

const STATS: Stats = {
  live: { status: 'Online', viewers: 3, lastms: 1000, tags: [] },
  'live+alice': { status: 'Online', viewers: 1, lastms: 2000, tags: ['paid'] },
  other: { status: 'Booting', viewers: 0 },
};

test('active_streams: every form', async () => {
  const { call } = setup({ stats: STATS });
  const names = (await call({ active_streams: true, minimal: 1 }))['active_streams'];
  assert.deepEqual(names, ['live', 'live+alice', 'other']);
  assert.deepEqual((await call({ active_streams: 1, minimal: 1 }))['active_streams'], names);

  assert.deepEqual((await call({ active_streams: ['viewers', 'lastms'], minimal: 1 }))['active_streams'], {
    live: [3, 1000],
    'live+alice': [1, 2000],
    other: [0, 0],
  });

  const all = (await call({ active_streams: {}, minimal: 1 }))['active_streams'];
  assert.deepEqual(all.fields, ACTIVE_STREAM_FIELDS);
  assert.deepEqual(Object.keys(all.data), names);
  assert.equal(all.data.live.length, ACTIVE_STREAM_FIELDS.length);
  assert.equal(all.data.other[ACTIVE_STREAM_FIELDS.indexOf('health')], null);
  assert.deepEqual(all.data.other[ACTIVE_STREAM_FIELDS.indexOf('sourcepids')], []);

  assert.deepEqual((await call({ active_streams: { fields: ['viewers'], streams: ['live+'], longform: true }, minimal: 1 }))['active_streams'], {
    'live+alice': { viewers: 1 },
  });
  assert.deepEqual((await call({ active_streams: { fields: ['status'], stream: 'other' }, minimal: 1 }))['active_streams'], {
    fields: ['status'],
    data: { other: ['Booting'] },
  });
  assert.deepEqual((await call({ active_streams: { fields: ['viewers'], streams: ['#paid', 'nonexistent'] }, minimal: 1 }))['active_streams'], {
    fields: ['viewers'],
    data: { 'live+alice': [1] },
  });

  const bad = await call({ active_streams: ['viewers', 'bogus'], minimal: 1 });
  assert.match(bad['error'], /bogus/);
  assert.deepEqual(bad['active_streams'].live, [3]);
});

test('statistics that fail are an error member, not a failure', async () => {
  const { call } = setup({
    stats: async () => {
      throw new Error('workers unreachable');
    },
  });
  const r = await call({ active_streams: true });
  assert.deepEqual(r['active_streams'], []);
  assert.match(r['error'], /workers unreachable/);
  assert.equal(r['streams'].live.online, 0);
});

test('config updates the allowed keys, all or nothing', async () => {
  const { store, call } = setup();
  let r = await call({
    config: { debug: 6, serverid: 'edge-1', controller: { port: 4343 }, location: { name: 'Here' }, trustedproxy: ['10.0.0.1'], protocols: [{ connector: 'RTMP', port: 1936 }], iid: 'x', time: 1 },
  });
  assert.equal(r['error'], undefined);
  const c = store.get().config;
  assert.equal(c.debug, 6);
  assert.equal(c.serverid, 'edge-1');
  assert.deepEqual(c.controller, { port: 4343, interface: '127.0.0.1' }, 'controller keys merge');
  assert.deepEqual(c.location, { lat: 0, lon: 0, name: 'Here' });
  assert.deepEqual(c.protocols, [{ connector: 'RTMP', port: 1936 }], 'protocols are replaced wholesale');
  assert.equal(r['config'].serverid, 'edge-1');
  assert.equal(r['config'].iid, 'iid-test');

  r = await call({ config: { debug: 'loud', serverid: 'changed' } });
  assert.match(r['error'], /debug/);
  assert.equal(store.get().config.serverid, 'edge-1', 'nothing applied');
  r = await call({ config: { protocols: [{ connector: 'RTMP', port: 99999 }] } });
  assert.match(r['error'], /port/);
  r = await call({ config: { serverid: 'again', account: { evil: { password: 'x' } }, streams: {} } });
  assert.match(r['error'], /account/);
  assert.equal(store.get().config.serverid, 'again');
  assert.deepEqual(store.get().account, {}, 'accounts cannot be set through config');
  assert.match((await call({ config: [1] }))['error'], /config/);
});

test('capabilities: connectors, load and per-source answers', async () => {
  const { call } = setup();
  const r = await call({ capabilities: true, minimal: 1 });
  const capa = r['capabilities'];
  assert.equal(capa.connectors.HTTP.port, 8080);
  assert.equal(capa.connectors.RTMP.port, 1935);
  assert.equal(capa.connectors.FLV.url_match, '/$.flv');
  assert.equal(capa.connectors.FLV.deps, 'HTTP');
  assert.equal(capa.connectors.RTSP.port, 5554);
  assert.ok(capa.cpu.length >= 1 && typeof capa.cpu[0].model === 'string');
  assert.ok(capa.threads >= 1);
  assert.ok(capa.mem.total > 0);
  for (const k of ['mem', 'shm', 'one', 'five', 'fifteen']) assert.equal(typeof capa.load[k], 'number', k);
  assert.ok(capa.cpu_use >= 0 && capa.cpu_use <= 1000);
  assert.ok('Buffer' in capa.inputs);

  assert.equal((await call({ capabilities: 'push://1.2.3.4', minimal: 1 }))['capabilities'].name, 'Buffer');
  assert.equal((await call({ capabilities: '/media/x.mp4', minimal: 1 }))['capabilities'].name, 'MP4');
  assert.equal((await call({ capabilities: '/media/films/', minimal: 1 }))['capabilities'].name, 'Folder');
  assert.match((await call({ capabilities: '/media/x.xyz', minimal: 1 }))['capabilities'].error, /no input/);
});

test('unknown calls and hostile keys give an error member', async () => {
  const { store, call } = setup();
  const r = await call(JSON.parse('{"nuke_stream": "x", "frobnicate": 1, "__proto__": {"x": 1}}'));
  assert.match(r['error'], /nuke_stream/);
  assert.match(r['error'], /frobnicate/);
  assert.equal(({} as Record<string, unknown>)['x'], undefined);
  const r2 = await call(JSON.parse('{"addstream": {"__proto__": {"source": "push://"}, "constructor": {"source": "push://"}}}'));
  assert.match(r2['error'], /reserved/);
  assert.deepEqual(Object.keys(store.get().streams), ['live', 'demo']);
  assert.equal(Object.getPrototypeOf(store.get().streams), Object.prototype);
  assert.deepEqual(await handleApiCommand(null as unknown as Record<string, unknown>, { peer: '127.0.0.1', headers: {}, auth: createAuthState() }, setup().host), {
    error: 'the API request must be a JSON object',
    LTS: 1,
  });
});

test('a failing log source or save is reported, not thrown', async () => {
  const dir = path.join(tmpDir(), 'data');
  const { call } = setup({
    file: path.join(dir, 'config.json'),
    logs: () => {
      throw new Error('ring gone');
    },
  });
  fs.writeFileSync(dir, 'a file where the data folder should be');
  const r = await call({ save: true, addstream: { a: { source: 'push://' } } });
  assert.match(r['error'], /save: cannot write config file/);
  assert.match(r['error'], /could not be saved/);
  assert.match(r['error'], /log: internal error/);
  assert.ok(!/at .*\.js:\d+/.test(r['error']), 'no stack trace');
  assert.equal(r['streams'].a.source, 'push://', 'the change itself stays in memory');
});

test('save writes the file', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'config.json');
  const { call } = setup({ file });
  assert.ok(!fs.existsSync(file));
  const r = await call({ save: true, minimal: 1 });
  assert.equal(r['error'], undefined);
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).streams.live.source, 'push://127.0.0.1');
});
