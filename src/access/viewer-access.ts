// JWTs on the viewing side (reference §5.1, §6.5): a stream name that is a JWT plays the stream
// its `sub` names when the token has the output permission (the JWT is then the session's
// token); a viewer token (`tkn` or `jwt` URL variable, `tkn`/`jwt` cookie, `Authorization:
// Bearer`) that is a valid JWT for the stream makes USER_NEW unnecessary (tokenValid).

import type { IncomingHttpHeaders } from 'node:http';
import { sanitizeStreamName } from '../util/stream-name.js';
import { decodeJws } from './jwt.js';
import type { JwtKeyring } from './keyring.js';

/** Longest Cookie header looked at. */
const MAX_COOKIE_CHARS = 8192;

function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.slice(0, MAX_COOKIE_CHARS).split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * `tknMode` (reference §6.5, default 15): 1 the URL's `tkn`/`sid`/`sessId`/`jwt`, 2 the `tkn`/`jwt`
 * cookies (a Bearer token always counts), 4 playlists carry the token into the URLs they list,
 * 8 responses set the `tkn` cookie for 10 minutes.
 * A worker sets it from its config.
 */
let tokenMode = 15;

export function setTokenMode(mode: unknown): void {
  tokenMode = typeof mode === 'number' && Number.isInteger(mode) && mode >= 0 && mode <= 15 ? mode : 15;
}

/** Whether playlists append the viewer's token to the URLs they list (tknMode bit 4). */
export function tokenInPlaylists(): boolean {
  return (tokenMode & 4) !== 0;
}

/** The `Set-Cookie` value that keeps a viewer's token for its next requests (tknMode bit 8), if any. */
export function tokenCookie(token: string): string | undefined {
  return tokenMode & 8 && token ? `tkn=${encodeURIComponent(token)}; Max-Age=600; Path=/` : undefined;
}

/** The session token a request carries: `tkn`, `jwt` (URL), `tkn`, `jwt` (cookie), then a Bearer token; '' when none. */
export function viewerToken(query: URLSearchParams, headers: IncomingHttpHeaders): string {
  if (tokenMode & 1) {
    const fromUrl = query.get('tkn') ?? query.get('sid') ?? query.get('sessId') ?? query.get('jwt');
    if (fromUrl) return fromUrl;
  }
  if (tokenMode & 2) {
    const cookies = typeof headers.cookie === 'string' ? headers.cookie : undefined;
    const fromCookie = cookie(cookies, 'tkn') ?? cookie(cookies, 'jwt');
    if (fromCookie) return fromCookie;
  }
  const auth = headers.authorization;
  const m = typeof auth === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(auth) : null;
  return m ? m[1]! : '';
}

export type PlayNameGrant = { ok: true; stream: string } | { ok: false; reason: string };

/**
 * For a requested stream name that is a JWT: the stream its `sub` names when the token may be
 * played (output permission), or why not. Undefined when the name is not a JWT.
 */
export function playNameGrant(rawName: string, keyring: JwtKeyring, peer: string): PlayNameGrant | undefined {
  if (!decodeJws(rawName)) return undefined;
  const r = keyring.verify(rawName, { perm: 'output', peer });
  if (!r.ok) return { ok: false, reason: r.reason };
  const stream = sanitizeStreamName(r.sub ?? '');
  return stream ? { ok: true, stream } : { ok: false, reason: 'the sub claim is not a stream name' };
}

/** Whether a viewer's token is a JWT that allows playing `stream` (USER_NEW's tokenValid). */
export function viewerTokenValid(token: string, stream: string, keyring: JwtKeyring, peer: string): boolean {
  return token.length > 0 && decodeJws(token) !== undefined && keyring.verify(token, { perm: 'output', stream, peer }).ok;
}
