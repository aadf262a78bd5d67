import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { handleApiCommand, type ApiHost, type ApiRequestContext } from '../../src/controller/api.js';
import {
  authorizeHeader,
  challengeAnswer,
  challengeFor,
  createAuthState,
  isLocalRequest,
  isLoopbackAddress,
  normalizeAddress,
  type AuthState,
} from '../../src/controller/auth.js';
import { ConfigStore } from '../../src/controller/config-store.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const REMOTE = '203.0.113.5';

function hostWith(store = ConfigStore.open(undefined)): ApiHost {
  return { config: store, instanceId: 'test-iid', streamStats: async () => ({}), logs: () => [] };
}

function remote(auth: AuthState = createAuthState(), peer = REMOTE): ApiRequestContext {
  return { peer, headers: { host: 'haze.example:4242' }, auth };
}

test('challenge: md5("<day>-<month 0-11>-<year>" + ip), local time, IPv4-mapped addresses normalised', () => {
  const day = new Date(2024, 0, 5, 13, 0, 0);
  assert.equal(challengeFor('203.0.113.5', day), md5('5-0-2024203.0.113.5'));
  assert.equal(challengeFor('::ffff:203.0.113.5', day), md5('5-0-2024203.0.113.5'));
  assert.equal(challengeFor('203.0.113.5', new Date(2024, 11, 31, 23, 59)), md5('31-11-2024203.0.113.5'));
  assert.notEqual(challengeFor('203.0.113.5', day), challengeFor('203.0.113.6', day));
  assert.equal(challengeAnswer('pw', 'c'), md5(md5('pw') + 'c'));
});

test('addresses: normalisation and loopback', () => {
  assert.equal(normalizeAddress('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(normalizeAddress('::FFFF:10.1.2.3'), '10.1.2.3');
  assert.equal(normalizeAddress('[::1]'), '::1');
  assert.equal(normalizeAddress('fe80::1%eth0'), 'fe80::1');
  assert.equal(normalizeAddress(undefined), '');
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopbackAddress(a), a);
  for (const a of ['10.0.0.1', '128.0.0.1', '::2', '::ffff:10.0.0.1', 'localhost', '', 'garbage']) assert.ok(!isLoopbackAddress(a), a);
});

test('local requests: loopback peer without proxy headers; browsers only from loopback origins', () => {
  assert.ok(isLocalRequest('127.0.0.1', {}));
  assert.ok(isLocalRequest('::ffff:127.0.0.1', { host: 'whatever:4242' }), 'non-browser clients are not checked for Host');
  assert.ok(isLocalRequest('::1', {}));
  assert.ok(!isLocalRequest('127.0.0.1', { 'x-forwarded-for': '198.51.100.1' }));
  assert.ok(!isLocalRequest('127.0.0.1', { 'x-real-ip': '198.51.100.1' }));
  assert.ok(!isLocalRequest('127.0.0.1', { forwarded: 'for=198.51.100.1' }));
  assert.ok(!isLocalRequest('192.0.2.10', {}));
  // browsers (Origin / Sec-Fetch-*): a foreign page or a DNS-rebound name is not local
  assert.ok(!isLocalRequest('127.0.0.1', { origin: 'http://evil.example', host: '127.0.0.1:4242' }));
  assert.ok(!isLocalRequest('127.0.0.1', { origin: 'null', host: '127.0.0.1:4242' }));
  assert.ok(!isLocalRequest('127.0.0.1', { 'sec-fetch-site': 'same-origin', host: 'rebound.example:4242' }));
  assert.ok(isLocalRequest('127.0.0.1', { origin: 'http://localhost:3000', host: '127.0.0.1:4242' }));
  assert.ok(isLocalRequest('127.0.0.1', { origin: 'http://[::1]:4242', host: '[::1]:4242', 'sec-fetch-site': 'same-origin' }));
  assert.ok(isLocalRequest('127.0.0.1', { 'sec-fetch-mode': 'navigate', host: 'localhost:4242' }));
});

test('remote login: NOACC, account creation, challenge, answer, per-connection memory, logout', async () => {
  const store = ConfigStore.open(undefined);
  const host = hostWith(store);
  const conn = createAuthState();

  // no account yet: NOACC without challenge, nothing but the authorize block
  let r = await handleApiCommand({ addstream: { x: { source: 'push://' } } }, remote(conn), host);
  assert.deepEqual(r, { authorize: { status: 'NOACC' }, LTS: 1 });
  assert.ok(!('x' in store.get().streams));

  // a bad account name is refused
  r = await handleApiCommand({ authorize: { new_username: '__proto__', new_password: 'pw' } }, remote(conn), host);
  assert.deepEqual(r['authorize'], { status: 'NOACC' });
  assert.deepEqual(Object.keys(store.get().account), []);

  r = await handleApiCommand({ authorize: { new_username: 'admin', new_password: 's3cret' } }, remote(conn), host);
  assert.deepEqual(r, { authorize: { status: 'ACC_MADE' }, LTS: 1 });
  assert.deepEqual(store.get().account, { admin: { password: md5('s3cret') } });

  // with an account, a remote client cannot make another
  r = await handleApiCommand({ authorize: { new_username: 'mallory', new_password: 'x' } }, remote(conn), host);
  assert.equal((r['authorize'] as { status: string }).status, 'CHALL');
  assert.ok(!('mallory' in store.get().account));

  // ask for the challenge
  r = await handleApiCommand({ authorize: { username: 'admin', password: '' } }, remote(conn), host);
  const challenge = challengeFor(REMOTE);
  assert.deepEqual(r, { authorize: { status: 'CHALL', challenge }, LTS: 1 });

  // wrong answers: the challenge again, nothing else
  for (const password of ['nope', md5('s3cret'), challengeAnswer('wrong', challenge), challengeAnswer('s3cret', challengeFor('203.0.113.6'))]) {
    r = await handleApiCommand({ authorize: { username: 'admin', password }, addstream: { x: { source: 'push://' } } }, remote(conn), host);
    assert.deepEqual(r, { authorize: { status: 'CHALL', challenge }, LTS: 1 }, password);
  }
  r = await handleApiCommand({ authorize: { username: 'ghost', password: challengeAnswer('s3cret', challenge) } }, remote(conn), host);
  assert.equal((r['authorize'] as { status: string }).status, 'CHALL');

  // the right answer runs the calls in the same request
  r = await handleApiCommand(
    { authorize: { username: 'admin', password: challengeAnswer('s3cret', challenge) }, addstream: { x: { source: 'push://' } } },
    remote(conn),
    host,
  );
  assert.deepEqual(r['authorize'], { status: 'OK' });
  assert.ok('x' in store.get().streams);
  assert.ok('config' in r && 'streams' in r);
  assert.ok(!('account' in (r['config'] as object)), 'password hashes are never answered');
  assert.ok(!JSON.stringify(r).includes(md5('s3cret')));

  // the connection stays logged in; another connection does not
  r = await handleApiCommand({}, remote(conn), host);
  assert.deepEqual(r['authorize'], { status: 'OK' });
  r = await handleApiCommand({}, remote(createAuthState()), host);
  assert.deepEqual(r, { authorize: { status: 'CHALL', challenge }, LTS: 1 });

  // logout ends it
  r = await handleApiCommand({ logout: true }, remote(conn), host);
  assert.deepEqual(r['authorize'], { status: 'CHALL', challenge });
  r = await handleApiCommand({}, remote(conn), host);
  assert.deepEqual(r, { authorize: { status: 'CHALL', challenge }, LTS: 1 });

  // removing the account ends a login made with it
  await handleApiCommand({ authorize: { username: 'admin', password: challengeAnswer('s3cret', challenge) } }, remote(conn), host);
  assert.equal(conn.authorized, true);
  store.update((c) => {
    c.account = { other: { password: md5('x') } };
  });
  r = await handleApiCommand({}, remote(conn), host);
  assert.equal((r['authorize'] as { status: string }).status, 'CHALL');
});

test('local connections are authorised and may create or reset accounts', async () => {
  const store = ConfigStore.open(undefined);
  store.update((c) => {
    c.account['admin'] = { password: md5('old') };
  });
  const host = hostWith(store);
  const local: ApiRequestContext = { peer: '::ffff:127.0.0.1', headers: {}, auth: createAuthState() };
  let r = await handleApiCommand({}, local, host);
  assert.deepEqual(r['authorize'], { status: 'OK', local: true });
  r = await handleApiCommand({ authorize: { new_username: 'admin', new_password: 'new' } }, local, host);
  assert.deepEqual(r['authorize'], { status: 'ACC_MADE', local: true });
  assert.equal(store.get().account['admin']!.password, md5('new'));
  r = await handleApiCommand({ logout: true }, local, host);
  assert.deepEqual(r['authorize'], { status: 'OK', local: true });

  // the same peer behind a proxy header is remote
  r = await handleApiCommand({}, { peer: '127.0.0.1', headers: { 'x-forwarded-for': '198.51.100.7' }, auth: createAuthState() }, host);
  assert.deepEqual(r, { authorize: { status: 'CHALL', challenge: challengeFor('127.0.0.1') }, LTS: 1 });
});

test('Authorization: json header', () => {
  const store = ConfigStore.open(undefined);
  store.update((c) => {
    c.account['admin'] = { password: md5('pw') };
  });
  const req = remote();
  const challenge = challengeFor(REMOTE);
  assert.equal(authorizeHeader('Basic abc', req, store), undefined);
  assert.deepEqual(authorizeHeader('json {"username":"admin","password":"x"}', req, store), { ok: false, block: { status: 'CHALL', challenge } });
  assert.deepEqual(authorizeHeader('json {not json', req, store), { ok: false, block: { status: 'CHALL', challenge } });
  assert.equal(req.auth.authorized, false);
  const good = authorizeHeader(`json ${JSON.stringify({ username: 'admin', password: challengeAnswer('pw', challenge) })}`, req, store);
  assert.deepEqual(good, { ok: true, block: { status: 'OK' } });
  assert.equal(req.auth.authorized, true);
  assert.equal(req.auth.username, 'admin');
});
