// The access calls of the API (reference §3.3): stream keys (`streamkeys`, `streamkey_add`,
// `streamkey_del`), JSON Web Keys (`jwks`, `addjwks`, `deletejwks`), which are config the workers
// read, and session control (`stop_sessions`, `stop_sessid`, `invalidate_sessions`), sent to every
// worker (worker/session-control.ts). Answers follow MistServer's shapes; bad input is reported
// as text in `error`, never thrown to the client.

import { keyObjectOf, MAX_JWKS, permsOf, splitJwksEntry } from '../access/jwt.js';
import { HazeError } from '../util/errors.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import type { ApiCall, ApiCallContext } from './api-calls.js';
import { isPlainObject } from './default-config.js';

/** Stream keys kept at most. */
export const MAX_STREAM_KEYS = 10_000;
/** A key: 1-256 printable ASCII characters without space, `?`, `/`, `#` (it is the stream name part of a push URL). */
const KEY_SHAPE = /^[\x21-\x7e]{1,256}$/;
const KEY_FORBIDDEN = /[?/#]/;
/** Largest JWK (as JSON) accepted. */
const MAX_JWK_JSON = 16 * 1024;
/** Items one session-control call names at most. */
const MAX_SESSION_ITEMS = 10_000;
const SESSION_ID = /^[0-9a-f]{64}$/;

function short(v: unknown): string {
  const s = typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v));
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}...` : s);
}

/** A valid key/stream pair, or an error text that does not show the key in full. */
function checkStreamKey(key: string, stream: unknown): { stream: string } | { error: string } {
  if (!KEY_SHAPE.test(key) || KEY_FORBIDDEN.test(key)) return { error: `a stream key is 1-256 printable characters without space, ?, / or # (got one of ${key.length} characters)` };
  if (typeof stream !== 'string') return { error: `the stream of key ${key.slice(0, 2)}... must be a string` };
  const name = sanitizeStreamName(stream);
  if (!name) return { error: `invalid stream name ${short(stream)}` };
  return { stream: name };
}

// ---- stream keys ---------------------------------------------------------------------------

/** `streamkeys` with an object replaces every key; it runs before streamkey_del/_add, as MistServer's. */
const streamKeysReplace: ApiCall = {
  name: 'streamkeys',
  run(arg, c) {
    if (!isPlainObject(arg)) return;
    const next: Record<string, string> = {};
    const entries = Object.entries(arg);
    if (entries.length > MAX_STREAM_KEYS) throw new HazeError('HAZE_ERR_TOO_LARGE', `at most ${MAX_STREAM_KEYS} stream keys`);
    for (const [key, stream] of entries) {
      const r = checkStreamKey(key, stream);
      if ('error' in r) c.errors.push(`streamkeys: ${r.error}`);
      else next[key] = r.stream;
    }
    c.host.config.update((cfg) => {
      cfg.streamkeys = next;
    });
  },
};

/** The `streamkeys` answer: the map after every key call of the request. */
const streamKeysAnswer: ApiCall = {
  name: 'streamkeys',
  run: (_arg, c) => ({ streamkeys: { ...c.host.config.get().streamkeys } }),
};

const streamKeyDel: ApiCall = {
  name: 'streamkey_del',
  run(arg, c) {
    const keys = c.host.config.get().streamkeys;
    const deleted: string[] = [];
    const has = (k: unknown): k is string => typeof k === 'string' && Object.hasOwn(keys, k);
    if (typeof arg === 'string' || Array.isArray(arg)) {
      for (const k of (Array.isArray(arg) ? arg : [arg]).slice(0, MAX_STREAM_KEYS)) if (has(k) && !deleted.includes(k)) deleted.push(k);
    } else if (isPlainObject(arg)) {
      // {key: stream}: only a key that still names that stream
      for (const [k, stream] of Object.entries(arg)) if (has(k) && typeof stream === 'string' && keys[k] === sanitizeStreamName(stream)) deleted.push(k);
    } else {
      c.errors.push('streamkey_del: expected a key, an array of keys or an object {key: stream}');
      return { streamkey_del: { deleted } };
    }
    if (deleted.length) {
      c.host.config.update((cfg) => {
        for (const k of deleted) delete cfg.streamkeys[k];
      });
    }
    return { streamkey_del: { deleted } };
  },
};

const streamKeyAdd: ApiCall = {
  name: 'streamkey_add',
  run(arg, c) {
    const added: string[] = [];
    if (!isPlainObject(arg)) {
      c.errors.push('streamkey_add: expected an object {key: stream}');
      return { streamkey_add: { added } };
    }
    const keys = c.host.config.get().streamkeys;
    const changes: Record<string, string> = {};
    for (const [key, stream] of Object.entries(arg)) {
      const r = checkStreamKey(key, stream);
      if ('error' in r) c.errors.push(`streamkey_add: ${r.error}`);
      else if (keys[key] !== r.stream) changes[key] = r.stream;
    }
    const total = new Set([...Object.keys(keys), ...Object.keys(changes)]).size;
    if (total > MAX_STREAM_KEYS) throw new HazeError('HAZE_ERR_TOO_LARGE', `at most ${MAX_STREAM_KEYS} stream keys`);
    if (Object.keys(changes).length) {
      c.host.config.update((cfg) => {
        Object.assign(cfg.streamkeys, changes);
      });
      added.push(...Object.keys(changes));
    }
    return { streamkey_add: { added } };
  },
};

// ---- JSON Web Keys -------------------------------------------------------------------------

/** The JWK members kept, by key type; private key parts are dropped (Haze only verifies). */
const JWK_MEMBERS: Readonly<Record<string, readonly string[]>> = { oct: ['k'], RSA: ['n', 'e'], EC: ['crv', 'x', 'y'] };
const JWK_META = ['kty', 'use', 'key_ops', 'alg', 'kid', 'x5u', 'x5c', 'x5t', 'x5t#S256'];
/** The members that identify a key when it has no kid (MistServer's duplicate test). */
const JWK_IDENTITY: Readonly<Record<string, readonly string[]>> = { oct: ['k'], RSA: ['n'], EC: ['x', 'y'] };

type StoredJwk = [Record<string, unknown>, Record<string, unknown>] | string | [string, Record<string, unknown>];

function cleanJwk(jwk: Record<string, unknown>): Record<string, unknown> {
  const kty = typeof jwk['kty'] === 'string' ? jwk['kty'] : '';
  if (!Object.hasOwn(JWK_MEMBERS, kty)) throw new HazeError('HAZE_ERR_INVALID_ARG', `unsupported key type ${short(jwk['kty'])} (oct, RSA or EC)`);
  if ((JSON.stringify(jwk) ?? '').length > MAX_JWK_JSON) throw new HazeError('HAZE_ERR_TOO_LARGE', `a key is larger than ${MAX_JWK_JSON} bytes`);
  const out: Record<string, unknown> = {};
  for (const m of [...JWK_MEMBERS[kty]!, ...JWK_META]) if (jwk[m] !== undefined) out[m] = jwk[m];
  if (out['kid'] !== undefined && typeof out['kid'] !== 'string') throw new HazeError('HAZE_ERR_INVALID_ARG', 'a key\'s kid must be a string');
  try {
    keyObjectOf(out);
  } catch (err) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `unusable ${kty} key${out['kid'] ? ` ${short(out['kid'])}` : ''}: ${(err as Error).message}`);
  }
  return out;
}

function cleanPerms(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (!isPlainObject(raw)) throw new HazeError('HAZE_ERR_INVALID_ARG', 'key permissions must be an object {input, output, admin, stream}');
  const out: Record<string, unknown> = {};
  for (const p of ['input', 'output', 'admin']) {
    if (raw[p] === undefined) continue;
    if (typeof raw[p] !== 'boolean') throw new HazeError('HAZE_ERR_INVALID_ARG', `permission ${p} must be true or false`);
    out[p] = raw[p];
  }
  const s = raw['stream'];
  if (s !== undefined) {
    if (!(typeof s === 'string' || (Array.isArray(s) && s.length <= 100 && s.every((x) => typeof x === 'string' && x.length <= 200)))) {
      throw new HazeError('HAZE_ERR_INVALID_ARG', 'permission stream must be a stream name pattern or a list of them');
    }
    out['stream'] = s;
  }
  return out;
}

/** A stored entry with MistServer's default permissions filled in, as `jwks` lists it. */
function withDefaults(entry: unknown): unknown {
  const { jwk, url, perms } = splitJwksEntry(entry);
  const p = permsOf(perms);
  const full = { input: p.input, output: p.output, admin: p.admin, stream: p.stream.length === 1 ? p.stream[0] : p.stream };
  return [url ?? jwk ?? entry, full];
}

function sameKey(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  if (typeof a['kid'] === 'string' && a['kid'] === b['kid']) return true;
  if (a['kty'] !== b['kty']) return false;
  const id = JWK_IDENTITY[String(a['kty'])] ?? [];
  return id.length > 0 && id.every((m) => JSON.stringify(a[m]) === JSON.stringify(b[m]));
}

/**
 * Parses what jwks/addjwks take (MistServer's forms): a JWK, `[jwk, perms]`, a JWKS `{keys:[...]}`
 * or `[{keys}, perms]`, a JWKS URL or `[url, perms]`, or an array of those. Problems go to
 * `errors`, one per entry.
 */
function parseKeysInput(input: unknown, call: string, errors: string[]): StoredJwk[] {
  const out: StoredJwk[] = [];
  const add = (item: unknown, inherited?: unknown, depth = 0): void => {
    if (out.length >= MAX_JWKS) return;
    if (depth > 4) {
      errors.push(`${call}: keys nested too deeply`);
      return;
    }
    try {
      if (typeof item === 'string') {
        if (!/^https?:\/\/\S+$/.test(item) || item.length > 2000) throw new HazeError('HAZE_ERR_INVALID_ARG', `${short(item)} is neither a key nor a JWKS URL`);
        out.push(inherited === undefined ? item : [item, cleanPerms(inherited)]);
        return;
      }
      if (Array.isArray(item)) {
        const [first, perms] = item as unknown[];
        if (typeof first === 'string' || isPlainObject(first)) add(first, perms ?? inherited, depth + 1);
        else throw new HazeError('HAZE_ERR_INVALID_ARG', 'expected [key, permissions]');
        return;
      }
      if (isPlainObject(item) && Array.isArray(item['keys'])) {
        for (const k of item['keys']) add(k, inherited, depth + 1);
        return;
      }
      if (!isPlainObject(item)) throw new HazeError('HAZE_ERR_INVALID_ARG', `expected a key object, got ${short(item)}`);
      out.push([cleanJwk(item), cleanPerms(inherited)]);
    } catch (err) {
      errors.push(`${call}: ${err instanceof HazeError ? err.message : String(err)}`);
    }
  };
  // a single pair [key, perms] or [url, perms] is one entry, not a list of two
  const single = Array.isArray(input) && input.length === 2 && (isPlainObject(input[0]) || typeof input[0] === 'string') && isPlainObject(input[1]) && !Array.isArray((input[1] as Record<string, unknown>)['keys']) && (input[1] as Record<string, unknown>)['kty'] === undefined;
  if (Array.isArray(input) && !single) for (const item of input.slice(0, MAX_JWKS)) add(item);
  else add(input);
  if (Array.isArray(input) && input.length > MAX_JWKS) errors.push(`${call}: only ${MAX_JWKS} keys are kept`);
  return out;
}

/** Adds entries to `target`, a new one replacing a stored one with the same kid, key material or URL. */
function mergeKeys(target: unknown[], entries: StoredJwk[]): void {
  for (const e of entries) {
    const { jwk, url } = splitJwksEntry(e);
    for (let i = target.length - 1; i >= 0; i--) {
      const old = splitJwksEntry(target[i]);
      if ((url !== undefined && old.url === url) || (jwk && old.jwk && sameKey(jwk, old.jwk))) target.splice(i, 1);
    }
    target.push(e);
  }
}

function noteUrls(entries: StoredJwk[], call: string, errors: string[]): void {
  if (entries.some((e) => splitJwksEntry(e).url !== undefined)) errors.push(`${call}: JWKS URLs are kept in the config but not fetched by Haze; add the keys themselves`);
}

const jwks: ApiCall = {
  name: 'jwks',
  run(arg, c) {
    const store = c.host.config;
    if (Array.isArray(arg) || (typeof arg === 'string' && arg.includes('://'))) {
      const entries = parseKeysInput(arg, 'jwks', c.errors);
      noteUrls(entries, 'jwks', c.errors);
      const next: unknown[] = [];
      mergeKeys(next, entries);
      store.update((cfg) => {
        cfg.jwks = next;
      });
      return { jwks: next.map(withDefaults) };
    }
    return { jwks: store.get().jwks.map(withDefaults) };
  },
};

const deleteJwks: ApiCall = {
  name: 'deletejwks',
  run(arg, c) {
    const store = c.host.config;
    const stored = [...store.get().jwks];
    const removed: unknown[] = [];
    const items = Array.isArray(arg) && !(arg.length === 2 && isPlainObject(arg[0]) && isPlainObject(arg[1]) && arg[1]['kty'] === undefined) ? arg : [arg];
    for (const item of items.slice(0, MAX_JWKS)) {
      const probe = Array.isArray(item) ? item[0] : item;
      let index = -1;
      if (typeof probe === 'string') {
        // a URL, or a kid
        index = stored.findIndex((e) => {
          const s = splitJwksEntry(e);
          return probe.includes('://') ? s.url === probe : s.jwk?.['kid'] === probe;
        });
      } else if (isPlainObject(probe)) {
        index = stored.findIndex((e) => {
          const s = splitJwksEntry(e);
          if (!s.jwk) return false;
          if (typeof probe['kid'] === 'string' && probe['kid'].length > 0) return s.jwk['kid'] === probe['kid'];
          return sameKey(probe, s.jwk);
        });
      } else {
        c.errors.push(`deletejwks: expected a kid, a key, a URL or an array of them, got ${short(item)}`);
        continue;
      }
      if (index >= 0) {
        stored.splice(index, 1);
        removed.push(probe);
      }
    }
    if (removed.length) {
      store.update((cfg) => {
        cfg.jwks = stored;
      });
    }
    return { deletejwks: removed };
  },
};

const addJwks: ApiCall = {
  name: 'addjwks',
  run(arg, c) {
    const store = c.host.config;
    const entries = parseKeysInput(arg, 'addjwks', c.errors);
    noteUrls(entries, 'addjwks', c.errors);
    if (entries.length) {
      const next = [...store.get().jwks];
      mergeKeys(next, entries);
      if (next.length > MAX_JWKS) throw new HazeError('HAZE_ERR_TOO_LARGE', `at most ${MAX_JWKS} keys`);
      store.update((cfg) => {
        cfg.jwks = next;
      });
    }
    return { addjwks: entries.map(withDefaults) };
  },
};

// ---- session control -----------------------------------------------------------------------

/** What stop_sessions names: streams, each with a connector (protocol) or all of them. */
export interface SessionTarget {
  stream: string;
  connector?: string;
}

function streamName(v: unknown, call: string, errors: string[]): string | undefined {
  const name = typeof v === 'string' ? sanitizeStreamName(v) : '';
  if (!name) errors.push(`${call}: invalid stream name ${short(v)}`);
  return name || undefined;
}

/** stop_sessions' argument: a stream name, an array of names (or objects), or {stream: protocol}. */
export function parseStopSessions(arg: unknown, errors: string[]): SessionTarget[] {
  const out: SessionTarget[] = [];
  const fromObject = (o: Record<string, unknown>): void => {
    for (const [s, proto] of Object.entries(o).slice(0, MAX_SESSION_ITEMS)) {
      const stream = streamName(s, 'stop_sessions', errors);
      if (stream) out.push(typeof proto === 'string' && proto.length > 0 && proto.length <= 40 ? { stream, connector: proto } : { stream });
    }
  };
  if (typeof arg === 'string') {
    const stream = streamName(arg, 'stop_sessions', errors);
    if (stream) out.push({ stream });
  } else if (Array.isArray(arg)) {
    for (const item of arg.slice(0, MAX_SESSION_ITEMS)) {
      if (isPlainObject(item)) fromObject(item);
      else {
        const stream = streamName(item, 'stop_sessions', errors);
        if (stream) out.push({ stream });
      }
    }
  } else if (isPlainObject(arg)) fromObject(arg);
  else errors.push('stop_sessions: expected a stream name, an array of them or an object {stream: protocol}');
  return out;
}

/** stop_sessid's argument: a session id or an array (or object values) of them. */
export function parseSessionIds(arg: unknown, errors: string[]): string[] {
  const list = Array.isArray(arg) ? arg : isPlainObject(arg) ? Object.values(arg) : [arg];
  const ids: string[] = [];
  for (const v of list.slice(0, MAX_SESSION_ITEMS)) {
    const id = typeof v === 'string' ? v.trim().toLowerCase() : '';
    if (SESSION_ID.test(id)) ids.push(id);
    else errors.push(`stop_sessid: ${short(v)} is not a session id (64 hex digits)`);
  }
  return ids;
}

/** invalidate_sessions' argument: a stream name or an array of them. */
export function parseStreamList(arg: unknown, call: string, errors: string[]): string[] {
  const out: string[] = [];
  for (const v of (Array.isArray(arg) ? arg : [arg]).slice(0, MAX_SESSION_ITEMS)) {
    const s = streamName(v, call, errors);
    if (s) out.push(s);
  }
  return out;
}

/** Sends one session command to every worker; a worker's error is reported. */
async function toWorkers(c: ApiCallContext, call: string, request: Record<string, unknown>): Promise<void> {
  const w = c.host.workers;
  if (!w || w.workers().length === 0) throw new HazeError('HAZE_ERR_OFFLINE', 'no media worker is running');
  for (const a of await w.broadcast({ op: call, ...request })) {
    const err = (a as { error?: unknown } | undefined)?.error;
    if (typeof err === 'string') c.errors.push(`${call}: ${err}`);
  }
}

const stopSessions: ApiCall = {
  name: 'stop_sessions',
  async run(arg, c) {
    const targets = parseStopSessions(arg, c.errors);
    if (targets.length) await toWorkers(c, 'stop_sessions', { targets });
  },
};

const stopSessid: ApiCall = {
  name: 'stop_sessid',
  async run(arg, c) {
    const ids = parseSessionIds(arg, c.errors);
    if (ids.length) await toWorkers(c, 'stop_sessid', { ids });
  },
};

const invalidateSessions: ApiCall = {
  name: 'invalidate_sessions',
  async run(arg, c) {
    const streams = parseStreamList(arg, 'invalidate_sessions', c.errors);
    // decisions made before this moment are dropped; a worker that decides again meanwhile keeps its new decision
    if (streams.length) await toWorkers(c, 'invalidate_sessions', { streams, atMs: Date.now() });
  },
};

/** In MistServer's order: keys replaced, deleted, added, then listed; JWKs listed/replaced, deleted, added. */
export const ACCESS_CALLS: readonly ApiCall[] = [
  streamKeysReplace,
  streamKeyDel,
  streamKeyAdd,
  streamKeysAnswer,
  jwks,
  deleteJwks,
  addJwks,
  stopSessions,
  stopSessid,
  invalidateSessions,
];
