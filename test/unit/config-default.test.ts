import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import {
  CONNECTORS,
  applyPortOverrides,
  defaultConfig,
  effectivePorts,
  isConnectorBuilt,
  normalizeConfig,
  validateProtocol,
  validateStreamConfig,
} from '../../src/controller/default-config.js';

test('default config: MistServer shape, documented ports, live stream, no accounts', () => {
  const c = defaultConfig();
  for (const key of ['account', 'config', 'streams', 'auto_push', 'push_settings', 'variables', 'streamkeys', 'jwks', 'tags', 'bandwidth', 'ui_settings', 'config_split']) {
    assert.ok(key in c, key);
  }
  assert.deepEqual(c.account, {});
  assert.deepEqual(c.config.controller, { port: 4242, interface: '127.0.0.1' });
  const port = (name: string): number | undefined => c.config.protocols.find((p) => p.connector === name)?.port;
  assert.equal(port('HTTP'), 8080);
  assert.equal(port('RTMP'), 1935);
  assert.equal(port('RTSP'), 5554);
  assert.equal(port('TSSRT'), 8889);
  assert.equal(port('DTSC'), 4200);
  assert.equal(port('WebRTC'), 18203);
  assert.deepEqual(c.streams['live'], { name: 'live', source: 'push://127.0.0.1', DVR: 50000, processes: [] });
  assert.ok(fs.existsSync(c.streams['demo']!.source), `the demo VoD file ships: ${c.streams['demo']!.source}`);
  assert.equal(c.config.sessionViewerMode, 14);
  assert.equal(c.config.sessionInputMode, 15);
  assert.equal(c.config.tknMode, 15);
  // every default protocol names a connector Haze knows
  for (const p of c.config.protocols) assert.ok(CONNECTORS[p.connector], p.connector);
  // and the default is itself valid
  const r = normalizeConfig(c);
  assert.ok(r.ok);
  // fresh copies, not one shared object
  c.streams['x'] = { name: 'x', source: 'push://' };
  assert.ok(!('x' in defaultConfig().streams));
});

test('connectors not built yet are marked', () => {
  assert.ok(isConnectorBuilt('HTTP'));
  assert.ok(isConnectorBuilt('RTMP'));
  assert.equal(isConnectorBuilt('TSSRT'), true);
  assert.equal(isConnectorBuilt('RTSP'), true);
  assert.equal(isConnectorBuilt('WebRTC'), true);
  assert.equal(isConnectorBuilt('DTSC'), true);
  assert.equal(isConnectorBuilt('NoSuchThing'), false);
});

test('validateStreamConfig: accepts and normalises', () => {
  const r = validateStreamConfig('Cam1', { source: 'push://', DVR: 60000, online: 1, error: 'x', 'x-LSP-note': 'kept' });
  assert.ok(r.ok);
  assert.deepEqual(r.value, { name: 'cam1', source: 'push://', DVR: 60000, 'x-LSP-note': 'kept' });
  const input = { source: '/media/a.mp4', processes: [{ process: 'FFMPEG' }] };
  const r2 = validateStreamConfig('vod', input);
  assert.ok(r2.ok);
  r2.value.processes!.push(1);
  assert.equal(input.processes.length, 1, 'the value is a copy');
});

test('validateStreamConfig: refuses bad input with a message naming the problem', () => {
  const bad: Array<[string, unknown, RegExp]> = [
    ['live', { DVR: 5000 }, /source/],
    ['live', { source: 42 }, /source/],
    ['live', { source: '  ' }, /source/],
    ['live', { source: 'push://', DVR: 999 }, /DVR/],
    ['live', { source: 'push://', DVR: 1500.5 }, /DVR/],
    ['live', { source: 'push://', DVR: '60000' }, /DVR/],
    ['live', { source: 'push://', processes: {} }, /processes/],
    ['live', { source: 'push://', tags: [1] }, /tags/],
    ['live', 'push://', /object/],
    ['live', null, /object/],
    ['', { source: 'push://' }, /invalid stream name/],
    ['!!!', { source: 'push://' }, /invalid stream name/],
    ['..', { source: 'push://' }, /invalid stream name/],
    ['a'.repeat(101), { source: 'push://' }, /invalid stream name/],
    ['__proto__', { source: 'push://' }, /reserved/],
    ['constructor', { source: 'push://' }, /reserved/],
    ['live+x', { source: 'push://' }, /\+/],
    ['my stream', { source: 'push://' }, /\+/],
    ['live', { source: 'x'.repeat(5000) }, /longer/],
  ];
  for (const [name, obj, re] of bad) {
    const r = validateStreamConfig(name, obj);
    assert.ok(!r.ok, `${name} ${JSON.stringify(obj)?.slice(0, 40)}`);
    assert.match(r.error, re);
  }
  assert.ok(validateStreamConfig('live', { source: 'push://', DVR: 1000 }).ok);
});

test('normalizeConfig: fills missing keys, keeps unknown ones, refuses bad sections', () => {
  const r = normalizeConfig({ streams: { a: { source: 'push://' } }, config: { debug: 3 }, custom_thing: { x: 1 } });
  assert.ok(r.ok);
  assert.equal(r.value.config.debug, 3);
  assert.equal(r.value.config.controller.port, 4242);
  assert.equal(r.value.config.protocols.length, defaultConfig().config.protocols.length);
  assert.deepEqual(Object.keys(r.value.streams), ['a']);
  assert.equal(r.value.streams['a']!.name, 'a');
  assert.deepEqual(r.value['custom_thing'], { x: 1 });
  assert.deepEqual(normalizeConfig({}), { ok: true, value: { ...defaultConfig(), streams: {} } });

  const bad: Array<[unknown, RegExp]> = [
    [[], /object/],
    ['x', /object/],
    [{ config: 1 }, /config/],
    [{ config: { debug: 'x' } }, /debug/],
    [{ config: { protocols: {} } }, /protocols/],
    [{ config: { protocols: [{ port: 1 }] } }, /connector/],
    [{ config: { protocols: [{ connector: 'RTMP', port: 70000 }] } }, /port/],
    [{ config: { controller: { port: 0 } } }, /controller/],
    [{ config: { trustedproxy: 'x' } }, /trustedproxy/],
    [{ streams: { Live: { source: 'push://' } } }, /canonical/],
    [{ streams: { live: { DVR: 5000 } } }, /source/],
    [{ streams: [] }, /streams/],
    [{ account: { admin: { password: 5 } } }, /account/],
    [{ jwks: {} }, /jwks/],
  ];
  for (const [raw, re] of bad) {
    const x = normalizeConfig(raw);
    assert.ok(!x.ok, JSON.stringify(raw));
    assert.match(x.error, re);
  }
});

test('effectivePorts and applyPortOverrides: flags win for the run only', () => {
  const c = defaultConfig();
  assert.deepEqual(effectivePorts(c), { controller: 4242, HTTP: 8080, RTMP: 1935, RTSP: 5554, TSSRT: 8889, DTSC: 4200, WebRTC: 18203 });
  const o = { api: 5000, http: 8081, rtmp: 1936, rtsp: 5555, srt: 8890, dtsc: 4201, webrtc: 18204 };
  assert.deepEqual(effectivePorts(c, o), { controller: 5000, HTTP: 8081, RTMP: 1936, RTSP: 5555, TSSRT: 8890, DTSC: 4201, WebRTC: 18204 });
  const applied = applyPortOverrides(c, o);
  assert.equal(applied.config.controller.port, 5000);
  assert.equal(applied.config.protocols.find((p) => p.connector === 'RTMP')!.port, 1936);
  assert.equal(c.config.protocols.find((p) => p.connector === 'RTMP')!.port, 1935, 'input untouched');

  // a connector absent from the file: its default port unless flagged; a flag adds it for the run
  const slim = normalizeConfig({ config: { protocols: [{ connector: 'RTMP' }] } });
  assert.ok(slim.ok);
  assert.deepEqual(effectivePorts(slim.value), { controller: 4242, RTMP: 1935 });
  assert.deepEqual(effectivePorts(slim.value, { http: 9000 }), { controller: 4242, RTMP: 1935, HTTP: 9000 });
  assert.deepEqual(
    applyPortOverrides(slim.value, { http: 9000 }).config.protocols.map((p) => [p.connector, p.port]),
    [
      ['RTMP', undefined],
      ['HTTP', 9000],
    ],
  );
  // the first entry of a connector wins
  const two = normalizeConfig({ config: { protocols: [{ connector: 'RTMP', port: 1000 }, { connector: 'RTMP', port: 2000 }] } });
  assert.ok(two.ok);
  assert.equal(effectivePorts(two.value).RTMP, 1000);
});

test('validateProtocol: pubaddr is an http(s) base URL or a list of them', () => {
  assert.ok(validateProtocol({ connector: 'HTTP', port: 8080, pubaddr: 'https://cdn.example/haze/' }, 0).ok);
  assert.ok(validateProtocol({ connector: 'HTTP', pubaddr: ['https://a.example', 'http://10.0.0.5:8080/'] }, 0).ok);
  for (const bad of ['cdn.example', 'javascript:alert(1)', ['https://a.example', 3], 'https://a.example/?x=1']) {
    const r = validateProtocol({ connector: 'HTTP', pubaddr: bad }, 2);
    assert.ok(!r.ok && /protocols\[2\]: "pubaddr"/.test(r.error), JSON.stringify(bad));
  }
});
