// The access calls of the API (src/controller/api-access.ts) through handleApiCommand with a
// real ConfigStore: stream keys and JWKs in MistServer's shapes, what is stored, bad input as
// text in `error`; session control sent to every worker (a recording WorkerLink).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { handleApiCommand, type ApiHost, type ApiRequestContext } from '../../src/controller/api.js';
import { createAuthState } from '../../src/controller/auth.js';
import { ConfigStore } from '../../src/controller/config-store.js';
import type { WorkerLink } from '../../src/controller/worker-link.js';
import { parseJwks } from '../../src/access/jwt.js';

function setup(workers?: WorkerLink) {
  const store = ConfigStore.open(undefined);
  const host: ApiHost = { config: store, instanceId: 'iid', streamStats: async () => ({}), logs: () => [], ...(workers ? { workers } : {}) };
  const ctx: ApiRequestContext = { peer: '127.0.0.1', headers: {}, auth: createAuthState() };
  const call = (req: Record<string, unknown>): Promise<Record<string, any>> => handleApiCommand({ minimal: 1, ...req }, ctx, host);
  return { store, call };
}

function recordingLink(n = 2, answer: (req: Record<string, unknown>) => unknown = () => ({})): WorkerLink & { sent: Record<string, unknown>[] } {
  const sent: Record<string, unknown>[] = [];
  return {
    sent,
    workers: () => Array.from({ length: n }, (_, i) => i),
    hostOf: () => undefined,
    ask: async (_w, req) => answer(req),
    async broadcast(req) {
      sent.push(req);
      return Array.from({ length: n }, () => answer(req));
    },
  };
}

test('streamkeys: replace and list; stream names sanitised; bad keys and names reported', async () => {
  const { store, call } = setup();
  let r = await call({ streamkeys: true });
  assert.deepEqual(r['streamkeys'], {});
  r = await call({ streamkeys: { UhFQ4DSY: 'live', 'Other-Key.2': 'Live Stream', 'has space': 'live', 'a/b': 'live', bad: 'Ω' } });
  assert.deepEqual(r['streamkeys'], { UhFQ4DSY: 'live', 'Other-Key.2': 'live+Stream' });
  assert.match(r['error'], /streamkeys: a stream key is 1-256 printable characters/);
  assert.match(r['error'], /invalid stream name "Ω"/);
  assert.ok(!r['error'].includes('has space'), 'the error does not show the key');
  assert.deepEqual(store.get().streamkeys, { UhFQ4DSY: 'live', 'Other-Key.2': 'live+Stream' });
  // a replacement drops the keys it does not list
  r = await call({ streamkeys: { k1: 'live' } });
  assert.deepEqual(r['streamkeys'], { k1: 'live' });
  assert.ok(!('error' in r));
  // anything but an object only lists
  r = await call({ streamkeys: 'x' });
  assert.deepEqual(r['streamkeys'], { k1: 'live' });
});

test('streamkey_add / streamkey_del: MistServer\'s answers; one request runs replace, delete, add, then lists', async () => {
  const { store, call } = setup();
  let r = await call({ streamkey_add: { k1: 'live', k2: 'live+b' } });
  assert.deepEqual(r['streamkey_add'], { added: ['k1', 'k2'] });
  r = await call({ streamkey_add: { k1: 'live', k2: 'demo' } });
  assert.deepEqual(r['streamkey_add'], { added: ['k2'] }, 'only keys that changed');
  r = await call({ streamkey_add: ['k3'] });
  assert.deepEqual(r['streamkey_add'], { added: [] });
  assert.match(r['error'], /streamkey_add: expected an object/);
  r = await call({ streamkey_del: { k1: 'demo', k2: 'demo' } });
  assert.deepEqual(r['streamkey_del'], { deleted: ['k2'] }, 'an object deletes a key only while it names that stream');
  r = await call({ streamkey_del: ['k1', 'nope', 'k1'] });
  assert.deepEqual(r['streamkey_del'], { deleted: ['k1'] });
  r = await call({ streamkey_del: 'nope' });
  assert.deepEqual(r['streamkey_del'], { deleted: [] });
  r = await call({ streamkey_del: 5 });
  assert.match(r['error'], /streamkey_del: expected/);
  r = await call({ streamkeys: { a: 'live', b: 'live' }, streamkey_del: 'a', streamkey_add: { c: 'demo' } });
  assert.deepEqual(r['streamkeys'], { b: 'live', c: 'demo' });
  assert.deepEqual(r['streamkey_del'], { deleted: ['a'] });
  assert.deepEqual(r['streamkey_add'], { added: ['c'] });
  assert.deepEqual(store.get().streamkeys, { b: 'live', c: 'demo' });
});

test('jwks / addjwks / deletejwks: stored as [key, perms], listed with defaults, private parts dropped', async () => {
  const { store, call } = setup();
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaPrivate: Record<string, unknown> = { ...rsa.privateKey.export({ format: 'jwk' }), kid: 'r1', alg: 'RS256' };
  const ecPub: Record<string, unknown> = { ...crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }), kid: 'e1' };
  const oct = { kty: 'oct', k: crypto.randomBytes(32).toString('base64url') };

  let r = await call({ addjwks: [[rsaPrivate, { input: false, stream: 'live+*' }], ecPub] });
  assert.ok(!('error' in r), r['error']);
  const rsaPublic = { kty: 'RSA', n: rsaPrivate['n'], e: rsaPrivate['e'], alg: 'RS256', kid: 'r1' };
  assert.deepEqual(r['addjwks'], [
    [rsaPublic, { input: false, output: true, admin: false, stream: 'live+*' }],
    [ecPub, { input: true, output: true, admin: false, stream: '*' }],
  ]);
  assert.deepEqual(store.get().jwks, [
    [rsaPublic, { input: false, stream: 'live+*' }],
    [ecPub, {}],
  ]);
  assert.ok(!JSON.stringify(store.get().jwks).includes(String(rsaPrivate['d'])), 'the private exponent is not stored');
  assert.equal(parseJwks(store.get().jwks).keys.length, 2, 'the workers can use what is stored');

  // a JWKS object with shared permissions; the same kid replaces the stored key
  r = await call({ addjwks: [{ keys: [oct, { ...ecPub, x: ecPub['x'] }] }, { admin: true }] });
  assert.equal(r['addjwks'].length, 2);
  assert.equal(store.get().jwks.length, 3);
  assert.deepEqual(store.get().jwks[2], [ecPub, { admin: true }]);

  r = await call({ jwks: true });
  assert.deepEqual(r['jwks'].map((e: unknown[]) => (e[0] as Record<string, unknown>)['kty']), ['RSA', 'oct', 'EC']);
  assert.deepEqual(r['jwks'][1][1], { input: true, output: true, admin: true, stream: '*' });

  // bad keys and permissions are reported, the good ones kept
  r = await call({ addjwks: [{ kty: 'oct' }, { kty: 'RSA', n: 'AQAB', e: 'AQAB', kid: 'tiny' }, [oct, { input: 'yes' }], { kty: 'XX' }, 7, 'https://issuer.example/jwks.json'] });
  assert.equal(r['addjwks'].length, 1, 'only the URL');
  const errors = String(r['error']);
  assert.match(errors, /an oct key needs "k"/);
  assert.match(errors, /unusable RSA key "tiny": an RSA key needs at least 2048 bits/);
  assert.match(errors, /permission input must be true or false/);
  assert.match(errors, /unsupported key type "XX"/);
  assert.match(errors, /JWKS URLs are kept in the config but not fetched/);
  assert.equal(store.get().jwks.length, 4);

  r = await call({ deletejwks: ['r1', 'https://issuer.example/jwks.json', { kty: 'oct', k: oct.k }, 'nope'] });
  assert.deepEqual(r['deletejwks'], ['r1', 'https://issuer.example/jwks.json', { kty: 'oct', k: oct.k }]);
  assert.deepEqual(store.get().jwks, [[ecPub, { admin: true }]]);
  r = await call({ deletejwks: ecPub });
  assert.deepEqual(r['deletejwks'], [ecPub]);

  // jwks with an array replaces everything
  r = await call({ jwks: [oct] });
  assert.deepEqual(r['jwks'], [[oct, { input: true, output: true, admin: false, stream: '*' }]]);
  assert.deepEqual(store.get().jwks, [[oct, {}]]);
  r = await call({ jwks: [] });
  assert.deepEqual(store.get().jwks, []);
});

test('session control goes to every worker; arguments in MistServer\'s shapes', async () => {
  const link = recordingLink();
  const { call } = setup(link);
  const id = 'ab'.repeat(32);
  let r = await call({ stop_sessions: 'Live Stream' });
  assert.ok(!('error' in r));
  assert.deepEqual(link.sent.at(-1), { op: 'stop_sessions', targets: [{ stream: 'live+Stream' }] });
  await call({ stop_sessions: ['live', { demo: 'HLS', other: '' }] });
  assert.deepEqual(link.sent.at(-1), { op: 'stop_sessions', targets: [{ stream: 'live' }, { stream: 'demo', connector: 'HLS' }, { stream: 'other' }] });
  await call({ stop_sessions: { live: 'RTMP' } });
  assert.deepEqual(link.sent.at(-1), { op: 'stop_sessions', targets: [{ stream: 'live', connector: 'RTMP' }] });
  await call({ stop_sessid: [id, id.toUpperCase()] });
  assert.deepEqual(link.sent.at(-1), { op: 'stop_sessid', ids: [id, id] });
  r = await call({ stop_sessid: 'not-a-session' });
  assert.match(r['error'], /stop_sessid: "not-a-session" is not a session id/);
  const before = Date.now();
  await call({ invalidate_sessions: ['live', 'demo'] });
  const inv = link.sent.at(-1)!;
  assert.deepEqual({ ...inv, atMs: 0 }, { op: 'invalidate_sessions', streams: ['live', 'demo'], atMs: 0 });
  assert.ok((inv['atMs'] as number) >= before && (inv['atMs'] as number) <= Date.now());
  const sentBefore = link.sent.length;
  r = await call({ invalidate_sessions: [''], stop_sessions: 42 });
  assert.match(r['error'], /invalidate_sessions: invalid stream name ""/);
  assert.match(r['error'], /stop_sessions: expected a stream name/);
  assert.equal(link.sent.length, sentBefore, 'nothing sent for bad arguments');

  // a worker's error is reported; no workers at all is an error too
  const failing = setup(recordingLink(1, () => ({ error: 'control: boom' })));
  r = await failing.call({ stop_sessions: 'live' });
  assert.match(r['error'], /stop_sessions: control: boom/);
  r = await setup().call({ invalidate_sessions: 'live' });
  assert.match(r['error'], /invalidate_sessions: no media worker is running/);
});
