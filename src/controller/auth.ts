// API authorization (reference/mistserver.md §3.2, Appendix A.4, C.11; DESIGN §5).
// MistServer's challenge login: challenge = md5("<day>-<month 0-11>-<year>" + clientIp) in local
// time (stable per client per day), answer = md5(md5(plain) + challenge), accounts stored as
// account.<user>.password = md5(plain). With no account the status is NOACC and
// {new_username, new_password} creates the first one (ACC_MADE). Loopback peers without proxy
// headers are authorised automatically, decided afresh on every request. A login is remembered
// per TCP connection in an AuthState object owned by the caller.
//
// One conscious hardening over MistServer: a *browser* request (it carries Origin or
// Sec-Fetch-* headers) is only auto-authorised as local when its Origin and Host name loopback
// hosts, so a web page the local user visits (or a DNS-rebinding one) cannot drive the API.
// Scripts and curl on the machine are unaffected.

import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { log } from '../util/log.js';
import type { ConfigStore } from './config-store.js';
import { isPlainObject } from './default-config.js';

export type Headers = Record<string, string | string[] | undefined>;

/** The login one TCP connection has made (local authorisation is never stored here). */
export interface AuthState {
  authorized: boolean;
  /** the account logged in with, if any */
  username: string | undefined;
}

export function createAuthState(): AuthState {
  return { authorized: false, username: undefined };
}

export type AuthStatus = 'OK' | 'CHALL' | 'NOACC' | 'ACC_MADE';

/** The `authorize` member of every API answer. */
export interface AuthorizeBlock {
  status: AuthStatus;
  challenge?: string;
  local?: boolean;
}

export interface AuthRequest {
  /** the TCP peer address (normalised here) */
  peer: string;
  headers: Headers;
  /**
   * The connection's state. For a request relayed by a proxy (hasForwardHeaders) pass a fresh
   * one: a proxy carries requests of different clients over one kept-alive connection, so those
   * authorise per request (MistServer's UI sends `authorize` with every request anyway).
   */
  auth: AuthState;
}

const alog = log.child({ proc: 'auth' });

/** Account names (also used by the account_* API calls). */
export const USERNAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
export const MAX_PASSWORD_CHARS = 1024;
const MAX_AUTH_HEADER_CHARS = 4096;

export function md5Hex(s: string): string {
  return createHash('md5').update(s, 'utf8').digest('hex');
}

/** `::ffff:1.2.3.4` -> `1.2.3.4` (DESIGN §5); strips an IPv6 zone; '' for undefined. */
export function normalizeAddress(addr: string | undefined): string {
  if (!addr) return '';
  let a = addr.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(a);
  if (m) return m[1]!;
  const zone = a.indexOf('%');
  if (zone >= 0 && a.includes(':')) a = a.slice(0, zone);
  return a.toLowerCase();
}

/** 127.0.0.0/8 and ::1 (IPv4-mapped forms included). */
export function isLoopbackAddress(addr: string): boolean {
  const a = normalizeAddress(addr);
  if (net.isIPv4(a)) return a.startsWith('127.');
  if (net.isIPv6(a)) return a === '::1' || a === '0:0:0:0:0:0:0:1';
  return false;
}

function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Request headers that say a proxy relayed it (then the peer is the proxy, not the client). */
export function hasForwardHeaders(headers: Headers): boolean {
  return headers['x-forwarded-for'] !== undefined || headers['x-real-ip'] !== undefined || headers['forwarded'] !== undefined;
}

function isLoopbackHostname(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost') || isLoopbackAddress(h);
}

/** The host name of a Host header value (`[::1]:4242` -> `::1`, `a:80` -> `a`). */
function hostOfHostHeader(v: string): string {
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    return end > 0 ? v.slice(1, end) : v;
  }
  const colon = v.lastIndexOf(':');
  return colon >= 0 && v.indexOf(':') === colon ? v.slice(0, colon) : v;
}

/** A browser sent it (fetch metadata or an Origin): see the hardening note at the top. */
function isBrowserRequest(headers: Headers): boolean {
  return headers['origin'] !== undefined || headers['sec-fetch-site'] !== undefined || headers['sec-fetch-mode'] !== undefined;
}

/**
 * True when a request counts as local and is authorised without a login: loopback peer, no
 * proxy headers, and for browser requests a loopback Origin (if any) and Host.
 */
export function isLocalRequest(peer: string, headers: Headers): boolean {
  if (!isLoopbackAddress(peer) || hasForwardHeaders(headers)) return false;
  if (!isBrowserRequest(headers)) return true;
  const origin = header(headers, 'origin');
  if (origin !== undefined) {
    let host: string;
    try {
      host = new URL(origin).hostname;
    } catch {
      return false; // includes "null" (sandboxed frames, file: pages)
    }
    if (!isLoopbackHostname(host.replace(/^\[|\]$/g, ''))) return false;
  }
  const hostHeader = header(headers, 'host');
  if (hostHeader !== undefined && !isLoopbackHostname(hostOfHostHeader(hostHeader))) return false;
  return true;
}

/** md5("<day of month>-<month 0-11>-<full year>" + ip), local time (reference C.11). */
export function challengeFor(ip: string, now: Date = new Date()): string {
  return md5Hex(`${now.getDate()}-${now.getMonth()}-${now.getFullYear()}${normalizeAddress(ip)}`);
}

/** The answer a client sends for `plain` (what a test or a script computes). */
export function challengeAnswer(plainPassword: string, challenge: string): string {
  return md5Hex(md5Hex(plainPassword) + challenge);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

function accountHash(store: ConfigStore, user: string): string | undefined {
  const accounts = store.get().account;
  if (!Object.hasOwn(accounts, user)) return undefined;
  const pw = accounts[user]?.password;
  return typeof pw === 'string' ? pw : undefined;
}

function hasAccounts(store: ConfigStore): boolean {
  return Object.keys(store.get().account).length > 0;
}

/** Checks one {username, password} pair against the accounts; logs failed attempts. */
function checkCredentials(store: ConfigStore, user: unknown, answer: unknown, challenge: string, peer: string): boolean {
  if (typeof user !== 'string' || user === '' || typeof answer !== 'string' || answer.length > MAX_PASSWORD_CHARS) return false;
  const stored = accountHash(store, user);
  if (stored !== undefined && safeEqual(md5Hex(stored + challenge), answer)) return true;
  if (answer !== '') alog.warn(`failed login attempt for ${JSON.stringify(user.slice(0, 64))} from ${peer}`);
  return false;
}

/** The block an unauthorised request sees: NOACC when there is no account, else a challenge. */
export function unauthorizedBlock(peer: string, store: ConfigStore, now: Date = new Date()): AuthorizeBlock {
  if (!hasAccounts(store)) return { status: 'NOACC' };
  return { status: 'CHALL', challenge: challengeFor(peer, now) };
}

export interface AuthResult {
  /** whether this request may run API calls */
  authorized: boolean;
  block: AuthorizeBlock;
}

/** When each user was last logged logging in from each address (bounded). */
const loginsLogged = new Map<string, number>();
/** A proxied client (the web UI behind a reverse proxy) logs in with every request: one line per this long. */
const LOGIN_LOG_QUIET_MS = 10 * 60_000;

function noteLogin(user: string, peer: string, nowMs: number): void {
  const key = `${user}\n${peer}`;
  const last = loginsLogged.get(key);
  if (last !== undefined && nowMs - last < LOGIN_LOG_QUIET_MS) return;
  if (loginsLogged.size >= 1024) loginsLogged.clear();
  loginsLogged.set(key, nowMs);
  alog.info(`user ${user} logged in from ${peer}`);
}

/**
 * The authorize step of one API request (`member` = the request's `authorize` value, if any).
 * Updates `req.auth` and returns the block for the answer. Account creation (new_username +
 * new_password) is allowed while no account exists, and at any time from a local connection
 * (which may so reset a forgotten password); it saves the config. Throws only what
 * ConfigStore.update throws.
 */
export function authorizeRequest(member: unknown, req: AuthRequest, store: ConfigStore, now: Date = new Date()): AuthResult {
  const peer = normalizeAddress(req.peer);
  const local = isLocalRequest(peer, req.headers);
  const state = req.auth;
  const a = isPlainObject(member) ? member : {};
  let created = false;

  const newUser = a['new_username'];
  const newPass = a['new_password'];
  if (typeof newUser === 'string' && newUser !== '' && typeof newPass === 'string' && newPass !== '') {
    // names like __proto__ or constructor would reach Object.prototype through c.account[name]
    if (!USERNAME_RE.test(newUser) || newUser in Object.prototype) {
      alog.warn(`refused account name ${JSON.stringify(newUser.slice(0, 64))} from ${peer}`);
    } else if (newPass.length > MAX_PASSWORD_CHARS) {
      alog.warn(`refused an over-long password from ${peer}`);
    } else if (local || !hasAccounts(store)) {
      store.update((c) => {
        c.account[newUser] = { password: md5Hex(newPass) };
      });
      alog.info(`created account ${newUser} through the API from ${peer}`);
      created = true;
    }
  }

  // Local authorisation is decided per request and not remembered: a later request on the same
  // connection with proxy headers or a foreign browser origin must not inherit it.
  if (local) {
    return { authorized: true, block: { status: created ? 'ACC_MADE' : 'OK', local: true } };
  }
  // MistServer answers ACC_MADE without logging in: the client logs in next with a challenge
  if (created) return { authorized: false, block: { status: 'ACC_MADE' } };

  const challenge = challengeFor(peer, now);
  const user = a['username'];
  if (typeof user === 'string' && user !== '') {
    if (checkCredentials(store, user, a['password'], challenge, peer)) {
      if (!state.authorized || state.username !== user) noteLogin(user, peer, now.getTime());
      state.authorized = true;
      state.username = user;
      return { authorized: true, block: { status: 'OK' } };
    }
    // a wrong password on a logged-in connection ends that login (the client wants another)
    if (typeof a['password'] === 'string' && a['password'] !== '') {
      state.authorized = false;
      state.username = undefined;
    }
  }
  // an account removed since the login ends it
  if (state.authorized && state.username !== undefined && accountHash(store, state.username) === undefined) {
    state.authorized = false;
    state.username = undefined;
  }
  if (state.authorized) return { authorized: true, block: { status: 'OK' } };
  return { authorized: false, block: unauthorizedBlock(peer, store, now) };
}

/**
 * `Authorization: json {"username":..,"password":..}` (password = the challenge answer).
 * On success the connection is authorised; on failure the caller answers 403 with
 * `WWW-Authenticate: json <block>`. Returns undefined when the header is not of this form.
 */
export function authorizeHeader(value: string, req: AuthRequest, store: ConfigStore, now: Date = new Date()): { ok: boolean; block: AuthorizeBlock } | undefined {
  if (!/^json\s/i.test(value)) return undefined;
  const peer = normalizeAddress(req.peer);
  if (value.length > MAX_AUTH_HEADER_CHARS) return { ok: false, block: unauthorizedBlock(peer, store, now) };
  let creds: unknown;
  try {
    creds = JSON.parse(value.slice(5));
  } catch {
    creds = undefined;
  }
  if (isPlainObject(creds) && hasAccounts(store) && checkCredentials(store, creds['username'], creds['password'], challengeFor(peer, now), peer)) {
    const state = req.auth;
    state.authorized = true;
    state.username = creds['username'] as string;
    return { ok: true, block: { status: 'OK' } };
  }
  return { ok: false, block: unauthorizedBlock(peer, store, now) };
}

/** `logout`: forgets the connection's login. A local connection stays authorised. */
export function logout(req: AuthRequest, store: ConfigStore, now: Date = new Date()): AuthorizeBlock {
  req.auth.authorized = false;
  req.auth.username = undefined;
  const peer = normalizeAddress(req.peer);
  if (isLocalRequest(peer, req.headers)) return { status: 'OK', local: true };
  return unauthorizedBlock(peer, store, now);
}
