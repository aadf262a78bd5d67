import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createApiRequestHandler, MAX_API_BODY_BYTES } from '../../src/controller/api-http.js';
import type { ApiHost } from '../../src/controller/api.js';
import { challengeAnswer, challengeFor } from '../../src/controller/auth.js';
import { ConfigStore } from '../../src/controller/config-store.js';
import { tmpDir } from '../helpers.js';

let store: ConfigStore;
let server: http.Server;
let base: string;
let configFile: string;

function makeHost(s: ConfigStore): ApiHost {
  return {
    config: s,
    instanceId: 'http-iid',
    streamStats: async () => ({ live: { status: 'Online', viewers: 2 } }),
    logs: () => [[1_700_000_000, 'INFO', 'hello']],
  };
}

async function listen(handler: http.RequestListener, host: string): Promise<http.Server> {
  const srv = http.createServer(handler);
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  return srv;
}

before(async () => {
  configFile = path.join(tmpDir(), 'config.json');
  store = ConfigStore.open(configFile);
  server = await listen(createApiRequestHandler(makeHost(store)), '127.0.0.1');
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

async function api(pathAndQuery: string, init: RequestInit = {}): Promise<{ status: number; headers: Headers; text: string; json: any }> {
  const res = await fetch(base + pathAndQuery, init);
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

const cmd = (o: unknown): string => encodeURIComponent(JSON.stringify(o));

test('GET /api: full state as text/javascript, JSON + blank line, CORS', async () => {
  const r = await api('/api');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type')!, /^text\/javascript/);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.ok(r.text.endsWith('}\n\n'));
  assert.deepEqual(r.json.authorize, { status: 'OK', local: true });
  assert.equal(r.json.LTS, 1);
  assert.equal(r.json.streams.live.online, 1);
  assert.equal(r.json.config.iid, 'http-iid');
  assert.deepEqual(r.json.log, [[1_700_000_000, 'INFO', 'hello']]);
});

test('GET /api2 implies minimal; the command comes from the query string', async () => {
  const r = await api(`/api2?command=${cmd({ active_streams: ['viewers'] })}`);
  assert.deepEqual(r.json, { authorize: { status: 'OK', local: true }, active_streams: { live: [2] }, LTS: 1 });
  const full = await api(`/api2?command=${cmd({ minimal: false })}`);
  assert.ok('streams' in full.json, 'an explicit minimal wins');
});

test('POST application/json: the body is the command; addstream persists to disk', async () => {
  const r = await api('/api', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ addstream: { cam: { source: 'push://', DVR: 30000 } } }),
  });
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.json.streams).sort(), ['cam', 'incomplete list']);
  const onDisk = ConfigStore.open(configFile);
  assert.deepEqual(onDisk.get(), store.get());
  assert.equal(onDisk.get().streams['cam']!.DVR, 30000);
});

test('other content types: the `command` variable of a urlencoded or multipart body; other bodies are ignored', async () => {
  let r = await api('/api2', {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `command=${cmd({ addstream: { form1: { source: 'push://' } } })}`,
  });
  assert.equal(r.json.error, undefined);
  assert.ok('form1' in store.get().streams);

  const fd = new FormData();
  fd.append('other', 'x');
  fd.append('command', JSON.stringify({ addstream: { form2: { source: 'push://' } } }));
  r = await api('/api2', { method: 'POST', body: fd });
  assert.equal(r.json.error, undefined);
  assert.ok('form2' in store.get().streams);

  // JSON in a text/plain body is not a command (DESIGN §5)
  r = await api('/api2', { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ addstream: { plain: { source: 'push://' } } }) });
  assert.equal(r.status, 200);
  assert.ok(!('plain' in store.get().streams));

  // a POST body variable wins over the query string
  r = await api(`/api2?command=${cmd({ deletestream: 'form1' })}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `command=${cmd({ version: true })}`,
  });
  assert.ok('version' in r.json);
  assert.ok('form1' in store.get().streams);
});

test('JSONP with callback or jsonp; a hostile callback name is refused', async () => {
  let r = await api(`/api2?callback=cb&command=${cmd({ version: true })}`);
  assert.match(r.text, /^cb\(\{.*\}\);\n\n$/s);
  r = await api(`/api2?jsonp=my.handler&command=${cmd({})}`);
  assert.ok(r.text.startsWith('my.handler({'));
  r = await api(`/api2?callback=${encodeURIComponent('alert(1);x')}`);
  assert.equal(r.status, 400);
  assert.match(r.json.error, /callback/);
});

test('malformed input answers error objects with a status, never a stack trace', async () => {
  let r = await api('/api', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"addstream": ' });
  assert.equal(r.status, 400);
  assert.match(r.json.error, /malformed JSON/);
  assert.ok(!r.text.includes('    at '));
  r = await api(`/api?command=${encodeURIComponent('[1,2]')}`);
  assert.equal(r.status, 400);
  assert.match(r.json.error, /JSON object/);
  r = await api('/api', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '' });
  assert.equal(r.status, 200, 'an empty body is an empty request');
  r = await api(`/api2?command=${cmd({ frobnicate: true })}`);
  assert.equal(r.status, 200);
  assert.match(r.json.error, /frobnicate/);
});

test('an oversized body is refused with 413', async () => {
  const big = JSON.stringify({ addstream: { huge: { source: 'push://', pad: 'x'.repeat(MAX_API_BODY_BYTES + 10) } } });
  const r = await api('/api', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: big });
  assert.equal(r.status, 413);
  assert.match(r.json.error, /too large/);
  assert.ok(!('huge' in store.get().streams));
  // the server still answers afterwards
  assert.equal((await api('/api2')).status, 200);
});

test('paths, methods, HEAD and OPTIONS', async () => {
  // any other GET is the web UI's page, with a <base> back to where the port is mounted
  let r = await api('/');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type')!, /^text\/html/);
  assert.match(r.headers.get('content-security-policy')!, /default-src 'self'/);
  assert.match(r.text, /<base href="\.\/">/);
  assert.match(r.text, /src="ui\/main\.js"/);
  r = await api('/streams/cam');
  assert.equal(r.status, 200);
  assert.match(r.text, /<base href="\.\.\/">/);
  r = await api('/deep/under/ui/main.js', { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type')!, /^text\/javascript/);
  assert.match(r.text, /import/, 'the module itself (fetch undoes the gzip)');
  const etag = r.headers.get('etag')!;
  assert.equal((await api('/ui/main.js', { headers: { 'If-None-Match': etag } })).status, 304);
  assert.equal((await api('/ui/nosuch.js')).status, 404);
  assert.equal((await api('/ui/../../package.json')).status, 200, 'a path out of ui/ is only a page path');
  assert.doesNotMatch((await api('/ui/..%2f..%2fpackage.json')).text, /"devDependencies"/);
  r = await api('/nope', { method: 'POST' });
  assert.equal(r.status, 404);
  assert.match(r.json.error, /not found/);
  r = await api(`/?command=${cmd({ minimal: 1 })}`);
  assert.deepEqual(r.json, { authorize: { status: 'OK', local: true }, LTS: 1 });
  r = await api('/api/');
  assert.equal(r.status, 200);
  r = await api('/api', { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.text, '');
  assert.ok(Number(r.headers.get('content-length')) > 0);
  r = await api('/api', { method: 'OPTIONS', headers: { Origin: 'http://x.example', 'Access-Control-Request-Method': 'POST' } });
  assert.equal(r.status, 204);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.match(r.headers.get('access-control-allow-headers')!, /Authorization/);
  r = await api('/api', { method: 'PUT', body: 'x' });
  assert.equal(r.status, 405);
  assert.match(r.json.error, /not allowed/);
});

test('behind a proxy header: the challenge login over HTTP, and the Authorization header', async () => {
  const dir = tmpDir();
  const s = ConfigStore.open(path.join(dir, 'config.json'));
  const srv = await listen(createApiRequestHandler(makeHost(s)), '127.0.0.1');
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}/api`;
  const post = async (body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': '198.51.100.9', ...headers }, body: JSON.stringify(body) });
    return { status: res.status, headers: res.headers, json: JSON.parse(await res.text()) };
  };
  try {
    let r = await post({});
    assert.deepEqual(r.json, { authorize: { status: 'NOACC' }, LTS: 1 });
    r = await post({ authorize: { new_username: 'admin', new_password: 'pw' } });
    assert.equal(r.json.authorize.status, 'ACC_MADE');
    r = await post({ authorize: { username: 'admin', password: '' } });
    // the challenge is computed on the TCP peer (the proxy), as MistServer does
    const challenge = challengeFor('127.0.0.1');
    assert.deepEqual(r.json, { authorize: { status: 'CHALL', challenge }, LTS: 1 });
    r = await post({ authorize: { username: 'admin', password: challengeAnswer('pw', challenge) }, addstream: { viaproxy: { source: 'push://' } } });
    assert.deepEqual(r.json.authorize, { status: 'OK' });
    assert.ok('viaproxy' in s.get().streams);
    // proxied requests authorise per request: the proxy's kept-alive connection carries others too
    r = await post({});
    assert.deepEqual(r.json, { authorize: { status: 'CHALL', challenge }, LTS: 1 });

    r = await post({}, { Authorization: 'json {"username":"admin","password":"wrong"}' });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('www-authenticate'), `json ${JSON.stringify({ status: 'CHALL', challenge })}`);
    assert.equal(r.json.authorize.status, 'CHALL');
    r = await post({ minimal: 1 }, { Authorization: `json ${JSON.stringify({ username: 'admin', password: challengeAnswer('pw', challenge) })}` });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { authorize: { status: 'OK' }, LTS: 1 });
  } finally {
    srv.closeAllConnections();
    srv.close();
  }
});

test('a browser page from a foreign origin is not auto-authorised on localhost', async () => {
  const r = await api('/api', { headers: { Origin: 'http://evil.example' } });
  assert.deepEqual(Object.keys(r.json).sort(), ['LTS', 'authorize']);
  assert.equal(r.json.authorize.status, 'NOACC');
  const ok = await api('/api2', { headers: { Origin: 'http://localhost:8080' } });
  assert.equal(ok.json.authorize.status, 'OK');
});


// Per-connection login memory for a remote peer is covered by the handleApiCommand unit tests:
// tests send traffic to loopback addresses only, and every loopback peer is local.

test('the config file written through the API is private (0600)', () => {
  assert.equal(fs.statSync(configFile).mode & 0o777, 0o600);
});
