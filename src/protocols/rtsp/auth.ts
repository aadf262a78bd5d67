// Client credentials for RTSP (IP cameras): HTTP Basic (RFC 7617) and Digest (RFC 2617, with
// the MD5-sess and SHA-256 algorithms of RFC 7616), answering a 401's WWW-Authenticate
// challenges. Digest is preferred when a server offers both.
//
//   HA1 = H(user:realm:password)        [-sess: H(HA1:nonce:cnonce)]
//   HA2 = H(method:uri)
//   response = H(HA1:nonce:nc:cnonce:qop:HA2)   or, without qop, H(HA1:nonce:HA2)

import { createHash, randomBytes } from 'node:crypto';

export interface Challenge {
  scheme: 'basic' | 'digest';
  params: Map<string, string>;
}

/** Parses one challenge (`Digest realm="x", nonce="y", qop="auth"`). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'basic' && scheme !== 'digest') return undefined;
  const params = new Map<string, string>();
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2]!)) !== null) params.set(p[1]!.toLowerCase(), p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? ''));
  return { scheme, params };
}

/** The challenge to answer among a response's WWW-Authenticate headers: Digest before Basic. */
export function pickChallenge(headers: readonly string[]): Challenge | undefined {
  const all = headers.map(parseChallenge).filter((c): c is Challenge => c !== undefined);
  return all.find((c) => c.scheme === 'digest') ?? all.find((c) => c.scheme === 'basic');
}

/** Answers challenges of one server; counts Digest nonce uses (nc). */
export class Credentials {
  private challenge: Challenge | undefined;
  private nonceCount = 0;

  constructor(
    readonly user: string,
    private readonly password: string,
    /** The client nonce of each Digest answer (fixed in tests of the RFC's examples). */
    private readonly makeCnonce: () => string = () => randomBytes(8).toString('hex'),
  ) {}

  /** Takes the challenge of a 401; false when it cannot be answered (or was already answered and failed). */
  accept(headers: readonly string[]): boolean {
    const c = pickChallenge(headers);
    if (!c) return false;
    const stale = c.params.get('stale')?.toLowerCase() === 'true';
    // the same challenge again means the password was wrong, unless the nonce went stale
    const same = this.challenge && this.challenge.scheme === c.scheme && this.challenge.params.get('nonce') === c.params.get('nonce');
    if (same && !stale) return false;
    this.challenge = c;
    this.nonceCount = 0;
    return true;
  }

  get ready(): boolean {
    return this.challenge !== undefined;
  }

  /** The Authorization header for a request, or undefined before any challenge. */
  authorization(method: string, uri: string): string | undefined {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return `Basic ${Buffer.from(`${this.user}:${this.password}`).toString('base64')}`;
    const realm = c.params.get('realm') ?? '';
    const nonce = c.params.get('nonce') ?? '';
    const algorithm = c.params.get('algorithm') ?? 'MD5';
    const alg = algorithm.toUpperCase();
    const hashName = alg.startsWith('SHA-256') ? 'sha256' : 'md5';
    const h = (s: string): string => createHash(hashName).update(s).digest('hex');
    const qops = (c.params.get('qop') ?? '').split(',').map((s) => s.trim().toLowerCase());
    const qop = qops.includes('auth') ? 'auth' : undefined;
    const cnonce = this.makeCnonce();
    const nc = (++this.nonceCount).toString(16).padStart(8, '0');
    let ha1 = h(`${this.user}:${realm}:${this.password}`);
    if (alg.endsWith('-SESS')) ha1 = h(`${ha1}:${nonce}:${cnonce}`);
    const ha2 = h(`${method}:${uri}`);
    const response = qop ? h(`${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : h(`${ha1}:${nonce}:${ha2}`);
    const q = (s: string): string => `"${s.replace(/["\\]/g, '\\$&')}"`;
    const parts = [`username=${q(this.user)}`, `realm=${q(realm)}`, `nonce=${q(nonce)}`, `uri=${q(uri)}`, `response=${q(response)}`];
    if (c.params.has('algorithm')) parts.push(`algorithm=${algorithm}`);
    const opaque = c.params.get('opaque');
    if (opaque !== undefined) parts.push(`opaque=${q(opaque)}`);
    if (qop) parts.push(`qop=${qop}`, `nc=${nc}`, `cnonce=${q(cnonce)}`);
    return `Digest ${parts.join(', ')}`;
  }
}
