// JWT verification (src/access/jwt.ts) with keys made by node:crypto, cross-checked against
// tokens signed by other code (RFC 7515's example, the openssl CLI), and a fuzz test: any
// string gives a result, never an exception, and no mangled token ever verifies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { decodeJws, isJws, JWT_ALGORITHMS, parseJwks, permsOf, signJwt, subjectCovers, verifyJwt, wildcardMatch, type JwtKey } from '../../src/access/jwt.js';
import { JwtKeyring } from '../../src/access/keyring.js';
import { PushAccess, maskSecret } from '../../src/access/push-access.js';
import { playNameGrant, viewerToken, viewerTokenValid } from '../../src/access/viewer-access.js';
import { isHaze, runOk, tmpDir } from '../helpers.js';

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const NOW = Date.UTC(2030, 0, 1);
const nowS = NOW / 1000;

// one key pair per family, shared by the tests (RSA generation is slow)
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec: Record<string, crypto.KeyPairKeyObjectResult> = {
  ES256: crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ES384: crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }),
  ES512: crypto.generateKeyPairSync('ec', { namedCurve: 'P-521' }),
};
const secrets: Record<string, Buffer> = { HS256: crypto.randomBytes(32), HS384: crypto.randomBytes(48), HS512: crypto.randomBytes(64) };

function jwkFor(alg: string): Record<string, unknown> {
  if (alg.startsWith('HS')) return { kty: 'oct', k: secrets[alg]!.toString('base64url') };
  if (alg.startsWith('ES')) return ec[alg]!.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  return rsa.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
}
function signingKey(alg: string): crypto.KeyObject | Buffer {
  if (alg.startsWith('HS')) return secrets[alg]!;
  if (alg.startsWith('ES')) return ec[alg]!.privateKey;
  return rsa.privateKey;
}
function keysOf(entries: unknown[]): JwtKey[] {
  const r = parseJwks(entries);
  assert.deepEqual(r.errors, []);
  return r.keys;
}

test('every algorithm: a token signed with the key verifies; another key, a changed claim or signature does not', () => {
  assert.deepEqual([...JWT_ALGORITHMS].sort(), ['ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512']);
  const otherRsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  for (const alg of JWT_ALGORITHMS) {
    const keys = keysOf([[jwkFor(alg), { output: true }]]);
    const token = signJwt({ sub: 'live', exp: nowS + 60 }, alg, signingKey(alg));
    const ok = verifyJwt(token, keys, { perm: 'output', nowMs: NOW });
    assert.deepEqual(ok, { ok: true, sub: 'live', claims: { sub: 'live', exp: nowS + 60 } }, alg);
    // a different key of the same type
    const other = alg.startsWith('HS')
      ? { kty: 'oct', k: crypto.randomBytes(32).toString('base64url') }
      : alg.startsWith('ES')
        ? crypto.generateKeyPairSync('ec', { namedCurve: (ec[alg]!.publicKey.asymmetricKeyDetails!.namedCurve as string) }).publicKey.export({ format: 'jwk' })
        : otherRsa.publicKey.export({ format: 'jwk' });
    assert.deepEqual(verifyJwt(token, keysOf([other]), { perm: 'output', nowMs: NOW }), { ok: false, reason: 'bad signature' }, `${alg} other key`);
    // the claims changed after signing (another stream)
    const [h, , s] = token.split('.');
    const forged = `${h}.${b64({ sub: 'other', exp: nowS + 60 })}.${s}`;
    assert.deepEqual(verifyJwt(forged, keys, { perm: 'output', nowMs: NOW }), { ok: false, reason: 'bad signature' }, `${alg} forged`);
    // one signature bit flipped
    const sig = Buffer.from(s!, 'base64url');
    sig[sig.length >> 1]! ^= 1;
    assert.equal(verifyJwt(`${h}.${token.split('.')[1]}.${sig.toString('base64url')}`, keys, { perm: 'output', nowMs: NOW }).ok, false, `${alg} bit flip`);
  }
});

test('alg none, unknown algorithms, missing signatures and algorithm confusion are refused', () => {
  const keys = keysOf([jwkFor('HS256'), jwkFor('RS256'), jwkFor('ES256')]);
  const claims = b64({ sub: 'live' });
  assert.deepEqual(verifyJwt(`${b64({ alg: 'none' })}.${claims}.`, keys, { perm: 'output' }), { ok: false, reason: 'algorithm "none" refused' });
  assert.deepEqual(verifyJwt(`${b64({ alg: 'none' })}.${claims}.AAAA`, keys, { perm: 'output' }), { ok: false, reason: 'algorithm "none" refused' });
  assert.deepEqual(verifyJwt(`${b64({ alg: 'HS1' })}.${claims}.AAAA`, keys, { perm: 'output' }), { ok: false, reason: 'algorithm "HS1" refused' });
  assert.deepEqual(verifyJwt(`${b64({ alg: 'HS256' })}.${claims}.`, keys, { perm: 'output' }), { ok: false, reason: 'no signature' });
  // HS256 "signed" with the RSA public key as the HMAC secret: the RSA key is never used for HMAC
  const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
  const confused = signJwt({ sub: 'live' }, 'HS256', Buffer.from(pem));
  assert.deepEqual(verifyJwt(confused, keysOf([jwkFor('RS256')]), { perm: 'output' }), { ok: false, reason: 'no oct key for HS256' });
  // an ECDSA signature in DER form (not r||s) is refused
  const der = crypto.sign('sha256', Buffer.from(`${b64({ alg: 'ES256' })}.${claims}`), ec['ES256']!.privateKey).toString('base64url');
  assert.equal(verifyJwt(`${b64({ alg: 'ES256' })}.${claims}.${der}`, keys, { perm: 'output' }).ok, false);
  // a P-384 key does not verify ES256 even when the signature length fits
  const p384 = keysOf([jwkFor('ES384')]);
  assert.equal(verifyJwt(signJwt({ sub: 'live' }, 'ES256', ec['ES256']!.privateKey), p384, { perm: 'output' }).ok, false);
  // a key restricted to one algorithm (its alg member) is not used for another
  const rs512only = keysOf([{ ...jwkFor('RS256'), alg: 'RS512' }]);
  assert.deepEqual(verifyJwt(signJwt({ sub: 'live' }, 'RS256', rsa.privateKey), rs512only, { perm: 'output' }), { ok: false, reason: 'no RSA key for RS256' });
  assert.equal(verifyJwt(signJwt({ sub: 'live' }, 'RS512', rsa.privateKey), rs512only, { perm: 'output' }).ok, true);
});

test('exp and nbf; sub and ipa claims', () => {
  const keys = keysOf([jwkFor('HS256')]);
  const t = (claims: Record<string, unknown>): string => signJwt(claims, 'HS256', secrets['HS256']!);
  assert.deepEqual(verifyJwt(t({ sub: 'live', exp: nowS - 1 }), keys, { perm: 'output', nowMs: NOW }), { ok: false, reason: 'expired' });
  assert.equal(verifyJwt(t({ sub: 'live', exp: nowS }), keys, { perm: 'output', nowMs: NOW }).ok, true, 'exp is the last valid second');
  assert.deepEqual(verifyJwt(t({ sub: 'live', nbf: nowS + 5 }), keys, { perm: 'output', nowMs: NOW }), { ok: false, reason: 'not valid yet (nbf)' });
  assert.equal(verifyJwt(t({ sub: 'live', nbf: nowS - 5, exp: nowS + 5 }), keys, { perm: 'output', nowMs: NOW }).ok, true);
  assert.deepEqual(verifyJwt(t({ sub: 'live', exp: '2031' }), keys, { perm: 'output', nowMs: NOW }), { ok: false, reason: 'exp is not a number' });
  // the token names the stream: it needs a sub without wildcard
  assert.deepEqual(verifyJwt(t({}), keys, { perm: 'output' }), { ok: false, reason: 'no sub claim naming the stream' });
  assert.deepEqual(verifyJwt(t({ sub: 'live+*' }), keys, { perm: 'output' }), { ok: false, reason: 'a wildcard sub cannot name a stream' });
  assert.deepEqual(verifyJwt(t({ sub: 7 }), keys, { perm: 'output' }), { ok: false, reason: 'sub is not a string' });
  // a viewer token for a stream: its sub must cover the stream, when it has one
  assert.equal(verifyJwt(t({}), keys, { perm: 'output', stream: 'live' }).ok, true);
  assert.equal(verifyJwt(t({ sub: 'live' }), keys, { perm: 'output', stream: 'live+alice' }).ok, true, 'the base covers its wildcard streams');
  assert.equal(verifyJwt(t({ sub: 'live+*' }), keys, { perm: 'output', stream: 'live+alice' }).ok, true);
  assert.deepEqual(verifyJwt(t({ sub: 'other' }), keys, { perm: 'output', stream: 'live' }), { ok: false, reason: 'sub does not cover stream live' });
  // ipa: the client's address
  assert.equal(verifyJwt(t({ sub: 'live', ipa: '10.0.0.7' }), keys, { perm: 'output', peer: '10.0.0.7' }).ok, true);
  assert.equal(verifyJwt(t({ sub: 'live', ipa: ['10.0.0.8', '10.0.0.7'] }), keys, { perm: 'output', peer: '::ffff:10.0.0.7' }).ok, true);
  assert.deepEqual(verifyJwt(t({ sub: 'live', ipa: '10.0.0.8' }), keys, { perm: 'output', peer: '10.0.0.7' }), { ok: false, reason: 'client address does not match ipa' });
});

test('permissions: input/output per key, stream patterns, kid selects the key', () => {
  const hs = jwkFor('HS256');
  const t = (claims: Record<string, unknown>, header: Record<string, unknown> = {}): string => signJwt(claims, 'HS256', secrets['HS256']!, header);
  const playOnly = keysOf([[hs, { input: false, output: true }]]);
  assert.equal(verifyJwt(t({ sub: 'live' }), playOnly, { perm: 'output' }).ok, true);
  assert.deepEqual(verifyJwt(t({ sub: 'live' }), playOnly, { perm: 'input' }), { ok: false, reason: 'no key with the input permission for live' });
  const liveOnly = keysOf([[hs, { stream: ['live+*', 'studio'] }]]);
  assert.equal(verifyJwt(t({ sub: 'live+bob' }), liveOnly, { perm: 'output' }).ok, true);
  assert.equal(verifyJwt(t({ sub: 'studio' }), liveOnly, { perm: 'input' }).ok, true);
  assert.deepEqual(verifyJwt(t({ sub: 'other' }), liveOnly, { perm: 'output' }), { ok: false, reason: 'no key with the output permission for other' });
  // two keys with kids: the kid picks one; an unknown kid falls back to trying every key
  const second = { kty: 'oct', k: crypto.randomBytes(32).toString('base64url'), kid: 'b' };
  const keys = keysOf([[{ ...hs, kid: 'a' }, { output: false }], second]);
  assert.deepEqual(verifyJwt(t({ sub: 'live' }, { kid: 'a' }), keys, { perm: 'output' }), { ok: false, reason: 'no key with the output permission for live' });
  assert.deepEqual(verifyJwt(t({ sub: 'live' }, { kid: 'b' }), keys, { perm: 'output' }), { ok: false, reason: 'bad signature' });
  assert.deepEqual(verifyJwt(t({ sub: 'live' }, { kid: 'a' }), keys, { perm: 'input' }), { ok: true, sub: 'live', claims: { sub: 'live' }, kid: 'a' });
  assert.equal(verifyJwt(t({ sub: 'live' }, { kid: 'zzz' }), keys, { perm: 'input' }).ok, true);
  // defaults: play and push, no admin, every stream
  assert.deepEqual(permsOf(undefined), { input: true, output: true, admin: false, stream: ['*'] });
  assert.deepEqual(permsOf({ input: false, stream: 'live' }), { input: false, output: true, admin: false, stream: ['live'] });
  assert.deepEqual(permsOf({ input: 'no', stream: [] }), { input: true, output: true, admin: false, stream: ['*'] });
});

test('tokens made by other code: RFC 7515 A.1 (HS256) and the openssl CLI (RS256, PS256, HS512)', async () => {
  const rfc = 'eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
  const rfcKey = keysOf([{ kty: 'oct', k: 'AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow' }]);
  assert.equal(verifyJwt(rfc, rfcKey, { perm: 'output', stream: 'live', nowMs: 1300819380_000 }).ok, true);
  assert.deepEqual(verifyJwt(rfc, rfcKey, { perm: 'output', stream: 'live', nowMs: 1300819381_000 }), { ok: false, reason: 'expired' });

  const dir = tmpDir('haze-jwt-');
  try {
    const keyPem = path.join(dir, 'key.pem');
    fs.writeFileSync(keyPem, rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const input = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ sub: 'live' })}`;
    fs.writeFileSync(path.join(dir, 'in'), input);
    const rs = await runOk('openssl', ['dgst', '-sha256', '-sign', keyPem, path.join(dir, 'in')]);
    const keys = keysOf([jwkFor('RS256')]);
    assert.equal(verifyJwt(`${input}.${rs.toString('base64url')}`, keys, { perm: 'output' }).ok, true, 'RS256 by openssl');

    const psInput = `${b64({ alg: 'PS256' })}.${b64({ sub: 'live' })}`;
    fs.writeFileSync(path.join(dir, 'in'), psInput);
    const ps = await runOk('openssl', ['dgst', '-sha256', '-sign', keyPem, '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:digest', path.join(dir, 'in')]);
    assert.equal(verifyJwt(`${psInput}.${ps.toString('base64url')}`, keys, { perm: 'output' }).ok, true, 'PS256 by openssl');
    // a PSS signature is not a PKCS#1 v1.5 one
    assert.equal(verifyJwt(`${b64({ alg: 'RS256' })}.${b64({ sub: 'live' })}.${ps.toString('base64url')}`, keys, { perm: 'output' }).ok, false);

    const hsInput = `${b64({ alg: 'HS512' })}.${b64({ sub: 'live' })}`;
    fs.writeFileSync(path.join(dir, 'in'), hsInput);
    const mac = await runOk('openssl', ['dgst', '-sha512', '-mac', 'HMAC', '-macopt', `hexkey:${secrets['HS512']!.toString('hex')}`, '-binary', path.join(dir, 'in')]);
    assert.equal(verifyJwt(`${hsInput}.${mac.toString('base64url')}`, keysOf([jwkFor('HS512')]), { perm: 'output' }).ok, true, 'HS512 by openssl');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('decodeJws tells JWTs from stream names; wildcard and subject matching', () => {
  const token = signJwt({ sub: 'live' }, 'HS256', secrets['HS256']!);
  assert.ok(isJws(token));
  for (const name of ['live', 'show.part.two', 'a.b.c', 'live+alice', `${b64({ alg: 'HS256' })}.bm90anNvbg.sig`, `${b64(['alg'])}.${b64({})}.x`, `${b64({ typ: 'JWT' })}.${b64({})}.x`, '', 'x'.repeat(9000)]) {
    assert.equal(decodeJws(name), undefined, name.slice(0, 40));
  }
  assert.equal(decodeJws(`${b64({ alg: 'HS256' })}.${b64({ sub: 'x' })}.`)?.signature.length, 0);
  const cases: Array<[string, string, boolean]> = [
    ['*', 'anything', true],
    ['live', 'live', true],
    ['live', 'live2', false],
    ['live+*', 'live+alice', true],
    ['live+*', 'live', false],
    ['*+cam', 'studio+cam', true],
    ['a*z', 'abcz', true],
    ['a*z', 'abc', false],
    ['live+a*', 'live+*', true],
  ];
  for (const [a, b, want] of cases) {
    assert.equal(wildcardMatch(a, b), want, `${a} ~ ${b}`);
    assert.equal(wildcardMatch(b, a), want, `${b} ~ ${a}`);
  }
  assert.ok(subjectCovers('live', 'live+x'));
  assert.ok(!subjectCovers('live', 'livex'));
  assert.ok(!subjectCovers('live+x', 'live'));
});

test('parseJwks: MistServer\'s stored forms; bad entries are reported, never thrown', () => {
  const r = parseJwks([
    [jwkFor('HS256'), { input: false }],
    { ...jwkFor('ES256'), kid: 'e1' },
    'https://issuer.example/jwks.json',
    ['https://issuer.example/other.json', { output: false }],
    { kty: 'oct' },
    { kty: 'RSA', n: 'AQAB' },
    { kty: 'XYZ' },
    42,
    [[], {}],
  ]);
  assert.equal(r.keys.length, 2);
  assert.deepEqual(r.keys[0]!.perms, { input: false, output: true, admin: false, stream: ['*'] });
  assert.equal(r.keys[1]!.kid, 'e1');
  assert.deepEqual(r.urls, ['https://issuer.example/jwks.json', 'https://issuer.example/other.json']);
  assert.equal(r.errors.length, 5, r.errors.join('; '));
  assert.match(r.errors[0]!, /^jwks\[4\]: an oct key needs "k"/);
  assert.deepEqual(parseJwks('nope'), { keys: [], urls: [], errors: [] });
  // a private JWK works as its public key
  const priv = rsa.privateKey.export({ format: 'jwk' });
  assert.equal(verifyJwt(signJwt({ sub: 'live' }, 'RS256', rsa.privateKey), parseJwks([priv]).keys, { perm: 'output' }).ok, true);
});

test('viewer tokens: URL tkn/jwt, cookies, Bearer; JWT stream names and tokenValid through a keyring', () => {
  const q = (s: string): URLSearchParams => new URLSearchParams(s);
  assert.equal(viewerToken(q('tkn=a&jwt=b'), { cookie: 'tkn=c', authorization: 'Bearer d' }), 'a');
  assert.equal(viewerToken(q('jwt=b'), { cookie: 'tkn=c' }), 'b');
  assert.equal(viewerToken(q(''), { cookie: 'x=1; jwt=e ; tkn=c' }), 'c');
  assert.equal(viewerToken(q(''), { cookie: 'x=1; jwt=e' }), 'e');
  assert.equal(viewerToken(q(''), { authorization: 'bearer  d ' }), 'd');
  assert.equal(viewerToken(q(''), { authorization: 'Basic abc' }), '');

  let jwks: unknown = [[jwkFor('HS256'), { input: true, output: true, stream: 'live*' }]];
  const ring = new JwtKeyring(() => jwks);
  const play = signJwt({ sub: 'live+cam' }, 'HS256', secrets['HS256']!);
  assert.deepEqual(playNameGrant(play, ring, '127.0.0.1'), { ok: true, stream: 'live+cam' });
  assert.equal(playNameGrant('live+cam', ring, '127.0.0.1'), undefined);
  assert.deepEqual(playNameGrant(signJwt({ sub: 'other' }, 'HS256', secrets['HS256']!), ring, '127.0.0.1'), { ok: false, reason: 'no key with the output permission for other' });
  const viewer = signJwt({ exp: Date.now() / 1000 + 60 }, 'HS256', secrets['HS256']!);
  assert.ok(viewerTokenValid(viewer, 'live', ring, '127.0.0.1'));
  assert.ok(!viewerTokenValid('plain-token', 'live', ring, '127.0.0.1'));
  assert.ok(!viewerTokenValid(viewer, 'studio', ring, '127.0.0.1'), 'the key does not cover studio');
  // a config change replaces the keys
  jwks = [];
  assert.deepEqual(playNameGrant(play, ring, '127.0.0.1'), { ok: false, reason: 'no JWT keys are configured' });
});

test('push access: stream keys and input JWTs name the stream; keys never appear in full', () => {
  let keys: unknown = { 'Se3cret-Key_1': 'Live', orphan: 'nowhere' };
  const ring = new JwtKeyring(() => [[jwkFor('HS256'), { input: true, output: false }]]);
  const access = new PushAccess({ streamKeys: () => keys, keyring: ring, isConfigured: (s) => s === 'live' || s.startsWith('live+') });
  assert.deepEqual(access.grant('Se3cret-Key_1', '127.0.0.1'), { stream: 'live', via: 'stream key' });
  assert.equal(access.grant('se3cret-key_1', '127.0.0.1'), undefined, 'keys are case-sensitive');
  assert.equal(access.grant('live', '127.0.0.1'), undefined);
  assert.equal(access.grant('toString', '127.0.0.1'), undefined, 'no prototype members');
  assert.throws(() => access.grant('orphan', '127.0.0.1'), (e: unknown) => isHaze(e) && /not configured/.test((e as Error).message) && !(e as Error).message.includes('orphan'));
  assert.equal(access.forLog('Se3cret-Key_1'), `stream key ${maskSecret('Se3cret-Key_1')}`);
  assert.ok(!access.forLog('Se3cret-Key_1').includes('cret'));
  const push = signJwt({ sub: 'live+bob' }, 'HS256', secrets['HS256']!);
  assert.deepEqual(access.grant(push, '127.0.0.1'), { stream: 'live+bob', via: 'JWT' });
  assert.equal(access.forLog(push), 'a JWT');
  assert.throws(() => access.grant(signJwt({ sub: 'live', exp: 1 }, 'HS256', secrets['HS256']!), '127.0.0.1'), /push with a JWT refused: expired/);
  assert.throws(() => access.grant(signJwt({ sub: 'studio' }, 'HS256', secrets['HS256']!), '127.0.0.1'), /not a configured stream/);
  keys = null;
  assert.equal(access.grant('Se3cret-Key_1', '127.0.0.1'), undefined);
});

test('fuzz: any string, and any mangling of a valid token, gives a result and never verifies wrongly', () => {
  const keys = keysOf([jwkFor('HS256'), jwkFor('RS256'), jwkFor('ES256')]);
  const valid = ['HS256', 'RS256', 'ES256'].map((alg) => signJwt({ sub: 'live', exp: nowS + 3600 }, alg, signingKey(alg)));
  const b64part = fc.string({ unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')), maxLength: 80 });
  const anyToken = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.tuple(b64part, b64part, b64part).map(([a, b, c]) => `${a}.${b}.${c}`),
    fc.tuple(fc.jsonValue(), fc.jsonValue(), b64part).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${s}`),
    fc.tuple(fc.constantFrom(...JWT_ALGORITHMS, 'none', 'HS', ''), fc.jsonValue(), b64part).map(([alg, p, s]) => `${b64({ alg })}.${b64(p)}.${s}`),
  );
  fc.assert(
    fc.property(anyToken, fc.constantFrom<'input' | 'output'>('input', 'output'), fc.option(fc.string({ maxLength: 20 }), { nil: undefined }), (token, perm, stream) => {
      const r = verifyJwt(token, keys, { perm, ...(stream !== undefined ? { stream } : {}), nowMs: NOW });
      assert.equal(typeof r.ok, 'boolean');
      assert.equal(r.ok, false, 'no random token verifies');
      decodeJws(token);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.nat({ max: 2 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (which, pos, xor) => {
      const t = Buffer.from(valid[which]!, 'latin1');
      const i = pos % t.length;
      t[i] = t[i]! ^ xor;
      const mangled = t.toString('latin1');
      const r = verifyJwt(mangled, keys, { perm: 'output', nowMs: NOW });
      // base64url has spare bits: a change that decodes to the same bytes is the same token
      const same = decodeJws(mangled) && decodeJws(mangled)!.signature.equals(decodeJws(valid[which]!)!.signature) && JSON.stringify(decodeJws(mangled)!.header) === JSON.stringify(decodeJws(valid[which]!)!.header) && decodeJws(mangled)!.signingInput === decodeJws(valid[which]!)!.signingInput;
      if (!same) assert.equal(r.ok, false, `mangled at ${i}`);
    }),
    { numRuns: 1500 },
  );
});
