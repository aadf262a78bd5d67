// JSON Web Tokens as MistServer accepts them (reference §5.1, §6.5; RFC 7515 JWS compact form,
// RFC 7517 JWK, RFC 7518 algorithms): a stream name or a viewer token that is a signed JWT is
// checked against the configured `jwks`, each key with its permissions {input, output, admin,
// stream}. Pure: node:crypto only, no I/O; nothing here throws on any input.
//
//   token = base64url(header JSON) "." base64url(claims JSON) "." base64url(signature)
//   header {alg, kid?}; claims {sub?, exp?, nbf?, ipa?}
//
// HS256/384/512 (HMAC), RS256/384/512 (RSASSA-PKCS1-v1_5), PS256/384/512 (RSASSA-PSS, salt =
// hash length) and ES256/384/512 (ECDSA P-256/P-384/P-521, r||s signatures). `none` and any
// other algorithm are refused. A `kid` naming a configured key selects that key; without one
// (or with an unknown one) every key of the algorithm's type is tried, as MistServer does.

import crypto from 'node:crypto';

export type JwtPermission = 'input' | 'output' | 'admin';

export interface JwkPerms {
  input: boolean;
  output: boolean;
  admin: boolean;
  /** Stream name patterns the key may be used for (`*` once per pattern is a wildcard). */
  stream: string[];
}

/** Permissions of a key stored without them (MistServer's JWK_DFLT_*: play and push, no admin, any stream). */
export const DEFAULT_JWK_PERMS: Readonly<JwkPerms> = Object.freeze({ input: true, output: true, admin: false, stream: ['*'] });

export interface JwtKey {
  kty: 'oct' | 'RSA' | 'EC';
  kid?: string;
  /** The JWK's own `alg`, when it restricts the key to one algorithm. */
  alg?: string;
  key: crypto.KeyObject;
  perms: JwkPerms;
}

/** Longest token looked at (a JWT in a URL path or header; real ones are well under 2 KiB). */
export const MAX_JWT_CHARS = 8192;
/** Stream patterns per key looked at. */
const MAX_STREAM_PATTERNS = 100;
/** Shortest RSA modulus accepted. */
const MIN_RSA_BITS = 2048;
/** Keys used at most. */
export const MAX_JWKS = 1000;

interface AlgSpec {
  kty: JwtKey['kty'];
  hash: 'sha256' | 'sha384' | 'sha512';
  kind: 'hmac' | 'pkcs1' | 'pss' | 'ecdsa';
  /** ECDSA: the curve (Node's name) and the r||s signature length. */
  curve?: string;
  sigBytes?: number;
}

const ALGS: Readonly<Record<string, AlgSpec>> = {
  HS256: { kty: 'oct', hash: 'sha256', kind: 'hmac' },
  HS384: { kty: 'oct', hash: 'sha384', kind: 'hmac' },
  HS512: { kty: 'oct', hash: 'sha512', kind: 'hmac' },
  RS256: { kty: 'RSA', hash: 'sha256', kind: 'pkcs1' },
  RS384: { kty: 'RSA', hash: 'sha384', kind: 'pkcs1' },
  RS512: { kty: 'RSA', hash: 'sha512', kind: 'pkcs1' },
  PS256: { kty: 'RSA', hash: 'sha256', kind: 'pss' },
  PS384: { kty: 'RSA', hash: 'sha384', kind: 'pss' },
  PS512: { kty: 'RSA', hash: 'sha512', kind: 'pss' },
  ES256: { kty: 'EC', hash: 'sha256', kind: 'ecdsa', curve: 'prime256v1', sigBytes: 64 },
  ES384: { kty: 'EC', hash: 'sha384', kind: 'ecdsa', curve: 'secp384r1', sigBytes: 96 },
  ES512: { kty: 'EC', hash: 'sha512', kind: 'ecdsa', curve: 'secp521r1', sigBytes: 132 },
};

export const JWT_ALGORITHMS: readonly string[] = Object.keys(ALGS);

const JWS_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonPart(b64: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(b64, 'base64url').toString('utf8'));
    return isObject(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

export interface DecodedJws {
  header: Record<string, unknown>;
  alg: string;
  claims: Record<string, unknown>;
  /** `header.claims`, the bytes the signature covers. */
  signingInput: string;
  signature: Buffer;
}

/**
 * The parts of a JWS compact token, or undefined when `s` is not one: three base64url parts
 * whose header is a JSON object with an `alg` and whose claims are a JSON object. (A stream name
 * such as `show.part.two` has the shape but not the JSON, so it stays a stream name.)
 */
export function decodeJws(s: string): DecodedJws | undefined {
  if (typeof s !== 'string' || s.length > MAX_JWT_CHARS || !JWS_SHAPE.test(s)) return undefined;
  const dot1 = s.indexOf('.');
  const dot2 = s.indexOf('.', dot1 + 1);
  const header = jsonPart(s.slice(0, dot1));
  if (!header || typeof header['alg'] !== 'string') return undefined;
  const claims = jsonPart(s.slice(dot1 + 1, dot2));
  if (!claims) return undefined;
  return { header, alg: header['alg'], claims, signingInput: s.slice(0, dot2), signature: Buffer.from(s.slice(dot2 + 1), 'base64url') };
}

/** True when `s` is a JWS compact token (see decodeJws); says nothing about its validity. */
export function isJws(s: string): boolean {
  return decodeJws(s) !== undefined;
}

// ---- keys ----------------------------------------------------------------------------------

/** The members of a JWK that carry public key material, by key type (private parts are left out). */
const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = { RSA: ['kty', 'n', 'e'], EC: ['kty', 'crv', 'x', 'y'] };

/** The KeyObject of a JWK (oct: the secret; RSA/EC: the public key); throws on a bad key. */
export function keyObjectOf(jwk: Record<string, unknown>): { kty: JwtKey['kty']; key: crypto.KeyObject } {
  const kty = jwk['kty'];
  if (kty === 'oct') {
    const k = jwk['k'];
    if (typeof k !== 'string' || k.length === 0) throw new Error('an oct key needs "k" (base64url)');
    const bytes = Buffer.from(k, 'base64url');
    if (bytes.length === 0) throw new Error('the oct key "k" is empty');
    return { kty, key: crypto.createSecretKey(bytes) };
  }
  if (kty === 'RSA' || kty === 'EC') {
    const pub: Record<string, unknown> = {};
    for (const m of PUBLIC_MEMBERS[kty]!) {
      if (typeof jwk[m] !== 'string') throw new Error(`an ${kty} key needs "${m}"`);
      pub[m] = jwk[m];
    }
    const key = crypto.createPublicKey({ key: pub as crypto.JsonWebKey, format: 'jwk' });
    // RFC 7518 §3.3: RSA keys of 2048 bits or more
    const bits = key.asymmetricKeyDetails?.modulusLength;
    if (kty === 'RSA' && (bits === undefined || bits < MIN_RSA_BITS)) throw new Error(`an RSA key needs at least ${MIN_RSA_BITS} bits (this one has ${bits ?? 'no'} bits)`);
    return { kty, key };
  }
  throw new Error(`unsupported key type ${JSON.stringify(kty)} (oct, RSA or EC)`);
}

/** Permissions as stored (any subset of {input, output, admin, stream}) with the defaults filled in. */
export function permsOf(raw: unknown): JwkPerms {
  const p = isObject(raw) ? raw : {};
  const flag = (name: 'input' | 'output' | 'admin'): boolean => (typeof p[name] === 'boolean' ? (p[name] as boolean) : DEFAULT_JWK_PERMS[name]);
  const s = p['stream'];
  let stream = typeof s === 'string' ? [s] : Array.isArray(s) ? s.filter((x): x is string => typeof x === 'string').slice(0, MAX_STREAM_PATTERNS) : [];
  if (stream.length === 0) stream = [...DEFAULT_JWK_PERMS.stream];
  return { input: flag('input'), output: flag('output'), admin: flag('admin'), stream };
}

/** A stored `jwks` entry split into the key and its permissions: `[jwk, perms]`, a bare jwk, or a URL (`url` set). */
export function splitJwksEntry(entry: unknown): { jwk?: Record<string, unknown>; url?: string; perms: unknown } {
  if (typeof entry === 'string') return { url: entry, perms: undefined };
  if (Array.isArray(entry)) {
    const [first, perms] = entry as unknown[];
    if (typeof first === 'string') return { url: first, perms };
    return isObject(first) ? { jwk: first, perms } : { perms };
  }
  return isObject(entry) ? { jwk: entry, perms: undefined } : { perms: undefined };
}

export interface ParsedJwks {
  keys: JwtKey[];
  /** JWKS endpoint URLs among the entries (not fetched: see README). */
  urls: string[];
  /** One text per entry that could not be used. */
  errors: string[];
}

/** The usable keys of a config's `jwks` list (MistServer's stored form); never throws. */
export function parseJwks(stored: unknown): ParsedJwks {
  const out: ParsedJwks = { keys: [], urls: [], errors: [] };
  if (!Array.isArray(stored)) return out;
  for (const [i, entry] of stored.slice(0, MAX_JWKS).entries()) {
    const { jwk, url, perms } = splitJwksEntry(entry);
    if (url !== undefined) {
      out.urls.push(url);
      continue;
    }
    if (!jwk) {
      out.errors.push(`jwks[${i}]: not a key`);
      continue;
    }
    try {
      const { kty, key } = keyObjectOf(jwk);
      const kid = typeof jwk['kid'] === 'string' ? jwk['kid'] : undefined;
      const alg = typeof jwk['alg'] === 'string' ? jwk['alg'] : undefined;
      out.keys.push({ kty, key, perms: permsOf(perms), ...(kid !== undefined ? { kid } : {}), ...(alg !== undefined ? { alg } : {}) });
    } catch (err) {
      out.errors.push(`jwks[${i}]: ${(err as Error).message}`);
    }
  }
  if (stored.length > MAX_JWKS) out.errors.push(`jwks: only the first ${MAX_JWKS} keys are used`);
  return out;
}

// ---- matching ------------------------------------------------------------------------------

/**
 * Whether two names match when either may hold one `*` wildcard (MistServer's
 * equalsWithWildcard): `*` alone matches everything; `live+*` matches `live+alice` (not `live`).
 */
export function wildcardMatch(a: string, b: string): boolean {
  if (a === '*' || b === '*') return true;
  const ai = a.indexOf('*');
  const bi = b.indexOf('*');
  if (ai < 0 && bi < 0) return a === b;
  if (ai < 0 || bi < 0) {
    // one pattern, one name: the name starts with the part before the `*` and ends with the part after it
    const [pat, name, at] = ai >= 0 ? [a, b, ai] : [b, a, bi];
    const pre = pat.slice(0, at);
    const suf = pat.slice(at + 1);
    return name.length >= pre.length + suf.length && name.startsWith(pre) && name.endsWith(suf);
  }
  // two patterns: they agree on the overlap of their fixed parts
  const pre = Math.min(ai < 0 ? a.length : ai, bi < 0 ? b.length : bi);
  if (a.slice(0, pre) !== b.slice(0, pre)) return false;
  const suf = Math.min(ai < 0 ? a.length : a.length - ai - 1, bi < 0 ? b.length : b.length - bi - 1);
  return a.slice(a.length - suf) === b.slice(b.length - suf);
}

/** Whether a token's `sub` covers `stream`: the name, its wildcard base (`live` covers `live+x`), or a `*` pattern. */
export function subjectCovers(sub: string, stream: string): boolean {
  const plus = stream.indexOf('+');
  return wildcardMatch(sub, stream) || (plus > 0 && sub === stream.slice(0, plus));
}

function addressMatches(ipa: unknown, peer: string): boolean {
  const norm = (a: string): string => (a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a);
  const list = Array.isArray(ipa) ? ipa : [ipa];
  return list.some((a) => typeof a === 'string' && norm(a) === norm(peer));
}

// ---- verification --------------------------------------------------------------------------

export interface VerifyOptions {
  /** What the token must allow: `output` to play, `input` to push. */
  perm: JwtPermission;
  /** The stream asked for when the token is a viewer's `tkn`; absent when the token is the stream name (its `sub` is). */
  stream?: string;
  /** The client's address, for the `ipa` claim. */
  peer?: string;
  /** Now, for exp/nbf (default Date.now()). */
  nowMs?: number;
}

export type VerifyResult = { ok: true; sub?: string; claims: Record<string, unknown>; kid?: string } | { ok: false; reason: string };

function signatureValid(spec: AlgSpec, k: JwtKey, jws: DecodedJws): boolean {
  const data = Buffer.from(jws.signingInput, 'latin1');
  switch (spec.kind) {
    case 'hmac': {
      const mac = crypto.createHmac(spec.hash, k.key).update(data).digest();
      return mac.length === jws.signature.length && crypto.timingSafeEqual(mac, jws.signature);
    }
    case 'pkcs1':
      return k.key.asymmetricKeyType === 'rsa' && crypto.verify(spec.hash, data, { key: k.key, padding: crypto.constants.RSA_PKCS1_PADDING }, jws.signature);
    case 'pss':
      return (
        k.key.asymmetricKeyType === 'rsa' &&
        crypto.verify(spec.hash, data, { key: k.key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST }, jws.signature)
      );
    case 'ecdsa':
      return (
        k.key.asymmetricKeyType === 'ec' &&
        k.key.asymmetricKeyDetails?.namedCurve === spec.curve &&
        jws.signature.length === spec.sigBytes &&
        crypto.verify(spec.hash, data, { key: k.key, dsaEncoding: 'ieee-p1363' }, jws.signature)
      );
  }
}

function claimsProblem(claims: Record<string, unknown>, opts: VerifyOptions): string | undefined {
  const nowS = (opts.nowMs ?? Date.now()) / 1000;
  const exp = claims['exp'];
  const nbf = claims['nbf'];
  if (exp !== undefined && (typeof exp !== 'number' || !Number.isFinite(exp))) return 'exp is not a number';
  if (nbf !== undefined && (typeof nbf !== 'number' || !Number.isFinite(nbf))) return 'nbf is not a number';
  if (typeof exp === 'number' && nowS > exp) return 'expired';
  if (typeof nbf === 'number' && nowS < nbf) return 'not valid yet (nbf)';
  const sub = claims['sub'];
  if (sub !== undefined && typeof sub !== 'string') return 'sub is not a string';
  if (opts.stream === undefined) {
    if (typeof sub !== 'string' || sub.length === 0) return 'no sub claim naming the stream';
    if (sub.includes('*')) return 'a wildcard sub cannot name a stream';
  } else if (typeof sub === 'string' && !subjectCovers(sub, opts.stream)) return `sub does not cover stream ${opts.stream}`;
  if (claims['ipa'] !== undefined && !addressMatches(claims['ipa'], opts.peer ?? '')) return 'client address does not match ipa';
  return undefined;
}

/**
 * Checks a token against `keys`: a supported algorithm, a valid signature by a key that has
 * `opts.perm` for the stream (the `sub`, or `opts.stream` for a viewer token), exp/nbf, and the
 * sub and ipa claims. Never throws: any problem is `{ok: false, reason}` (safe to log; it
 * never contains the token).
 */
export function verifyJwt(token: string, keys: readonly JwtKey[], opts: VerifyOptions): VerifyResult {
  try {
    const jws = decodeJws(token);
    if (!jws) return { ok: false, reason: 'not a JWT' };
    const spec = Object.hasOwn(ALGS, jws.alg) ? ALGS[jws.alg] : undefined;
    if (!spec) return { ok: false, reason: `algorithm ${JSON.stringify(jws.alg.slice(0, 20))} refused` };
    if (jws.signature.length === 0) return { ok: false, reason: 'no signature' };
    const problem = claimsProblem(jws.claims, opts);
    if (problem) return { ok: false, reason: problem };
    const sub = typeof jws.claims['sub'] === 'string' ? jws.claims['sub'] : undefined;
    const target = sub !== undefined && !sub.includes('*') ? sub : (opts.stream ?? '');
    const kid = typeof jws.header['kid'] === 'string' ? jws.header['kid'] : undefined;
    const byKid = kid === undefined ? [] : keys.filter((k) => k.kid === kid);
    const candidates = (byKid.length > 0 ? byKid : keys).filter((k) => k.kty === spec.kty && (k.alg === undefined || k.alg === jws.alg));
    if (candidates.length === 0) return { ok: false, reason: `no ${spec.kty} key for ${jws.alg}` };
    let permitted = false;
    for (const k of candidates) {
      if (!k.perms[opts.perm] || !k.perms.stream.some((p) => wildcardMatch(p, target))) continue;
      permitted = true;
      if (signatureValid(spec, k, jws)) return { ok: true, claims: jws.claims, ...(sub !== undefined ? { sub } : {}), ...(k.kid !== undefined ? { kid: k.kid } : {}) };
    }
    return { ok: false, reason: permitted ? 'bad signature' : `no key with the ${opts.perm} permission for ${target || 'this stream'}` };
  } catch (err) {
    return { ok: false, reason: `unusable token (${(err as Error).message ?? 'error'})` };
  }
}

// ---- signing (tests, tools) ----------------------------------------------------------------

/**
 * Signs `claims` as a JWS compact token with `alg` and a private key (or an HMAC secret). For
 * tests and tools that make tokens for Haze; the server only verifies.
 */
export function signJwt(claims: Record<string, unknown>, alg: string, key: crypto.KeyObject | Buffer, header: Record<string, unknown> = {}): string {
  const spec = Object.hasOwn(ALGS, alg) ? ALGS[alg] : undefined;
  if (!spec) throw new Error(`unsupported algorithm ${alg}`);
  const input = `${Buffer.from(JSON.stringify({ ...header, alg, typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const data = Buffer.from(input, 'latin1');
  let sig: Buffer;
  if (spec.kind === 'hmac') sig = crypto.createHmac(spec.hash, key).update(data).digest();
  else if (spec.kind === 'pkcs1') sig = crypto.sign(spec.hash, data, { key: key as crypto.KeyObject, padding: crypto.constants.RSA_PKCS1_PADDING });
  else if (spec.kind === 'pss') sig = crypto.sign(spec.hash, data, { key: key as crypto.KeyObject, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST });
  else sig = crypto.sign(spec.hash, data, { key: key as crypto.KeyObject, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}
