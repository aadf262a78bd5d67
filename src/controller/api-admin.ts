// The administration calls of the API that the web UI needs (reference/mistserver.md §3.3, §4):
// `config_backup` / `config_restore` (the whole config, validated by the same normalizeConfig
// that loads config.json), `ui_settings` (MistServer's opaque UI store), and Haze's account
// calls `account_list` / `account_set` / `account_delete` (MistServer only creates the first
// account through `authorize`). Also the `capabilities.triggers` descriptions, derived from the
// trigger map alone so the UI, docs/triggers.md and the code cannot disagree.

import { log } from '../util/log.js';
import { TRIGGER_NAMES, TRIGGERS, type TriggerKind, type TriggerSpec } from '../triggers/trigger-map.js';
import type { ApiCall, ApiCallContext } from './api-calls.js';
import { vetStreamChanges } from './api.js';
import { MAX_PASSWORD_CHARS, md5Hex, USERNAME_RE } from './auth.js';
import { isPlainObject, normalizeConfig, type StreamConfig } from './default-config.js';

/** Largest `ui_settings` object stored, as JSON (it is saved in config.json with everything else). */
export const MAX_UI_SETTINGS_BYTES = 64 * 1024;
/** Deepest nesting of `ui_settings`: the config is cloned and serialised recursively on every change. */
const MAX_UI_SETTINGS_DEPTH = 32;

const alog = log.child({ proc: 'api' });

// ---- capabilities.triggers -----------------------------------------------------------------

/** One entry of `capabilities.triggers` (MistServer's members, plus Haze's kind/fields/optional/note). */
export interface TriggerDescription {
  when: string;
  /** false: a global trigger (fires with an empty stream name, every handler's stream list matches) */
  stream_specific: boolean;
  kind: TriggerKind;
  /** the payload's field names, one per line, as the handler receives the values */
  payload: string;
  fields: string[];
  optional?: string[];
  /** what the reply does: notify triggers ignore it, bool/rewrite ones use a blocking handler's */
  response: 'ignored' | 'always' | 'when-blocking';
  /** what a false (bool) or empty (rewrite) reply does; '' for notify triggers */
  response_action: string;
  note?: string;
}

/** `capabilities.triggers`: every trigger Haze fires, described from TRIGGERS only. */
export function triggerCapabilities(): Record<string, TriggerDescription> {
  const out: Record<string, TriggerDescription> = {};
  for (const name of TRIGGER_NAMES) {
    const spec: TriggerSpec = TRIGGERS[name];
    const d: TriggerDescription = {
      when: spec.when,
      stream_specific: !spec.global,
      kind: spec.kind,
      payload: spec.fields.join('\n'),
      fields: [...spec.fields],
      response: spec.kind === 'notify' ? 'ignored' : 'when-blocking',
      response_action: spec.defaultBehaviour ?? '',
    };
    if (spec.optional?.length) d.optional = [...spec.optional];
    if (spec.note !== undefined) d.note = spec.note;
    out[name] = d;
  }
  return out;
}

// ---- config_backup / config_restore --------------------------------------------------------

/** The whole config as saved to disk, accounts (password hashes) included: every API user is an admin. */
const configBackup: ApiCall = {
  name: 'config_backup',
  run: (_arg, c) => ({ config_backup: structuredClone(c.host.config.get()) }),
};

/**
 * Replaces the config with a backup. Validation is normalizeConfig's, as for config.json, and
 * a bad object changes nothing. Stream changes go through the STREAM_ADD / STREAM_CONFIG /
 * STREAM_REMOVE vetting of the `streams` call: a refused stream keeps its current state (named
 * in `error`), the rest is restored. A backup without accounts keeps the current ones, so a
 * restore cannot leave the API without a login (and open to whoever creates the first account).
 */
const configRestore: ApiCall = {
  name: 'config_restore',
  async run(arg, c) {
    if (!isPlainObject(arg)) {
      c.errors.push('config_restore: expected the config object (as config_backup answers it); nothing changed');
      return;
    }
    const r = normalizeConfig(arg);
    if (!r.ok) {
      c.errors.push(`config_restore: ${r.error}; nothing changed`);
      return;
    }
    const next = r.value;
    const keepAccounts = Object.keys(next.account).length === 0;
    const store = c.host.config;
    const wanted = new Map<string, StreamConfig>(Object.entries(next.streams));
    const gone = Object.keys(store.get().streams).filter((n) => !wanted.has(n));
    const { changed, removed } = await vetStreamChanges(c.host, 'config_restore', wanted, gone, c.errors);
    const before = store.get();
    // one update: the workers see either the old config or the restored one, never a mix
    store.update((draft) => {
      const streams = draft.streams;
      for (const n of removed) delete streams[n];
      for (const [n, cfg] of changed) streams[n] = cfg;
      const replace = (k: string): boolean => k !== 'streams' && !(keepAccounts && k === 'account');
      for (const k of Object.keys(draft)) if (replace(k)) delete draft[k];
      for (const [k, v] of Object.entries(next)) if (replace(k)) draft[k] = v;
      draft.streams = streams;
    });
    // update() saves what changed; a restore of what is already running still writes the file
    if (store.get() === before) store.save();
    const kept = keepAccounts ? '; the backup has no accounts, the current ones were kept' : '';
    alog.info(`config restored through the API from ${c.ctx.peer}${kept}`);
    return { config_restore: { ok: true, streams: Object.keys(store.get().streams).length } };
  },
};

// ---- ui_settings ---------------------------------------------------------------------------

function depthOf(v: unknown, limit: number): number {
  if (typeof v !== 'object' || v === null) return 0;
  if (limit <= 0) return 1;
  let max = 0;
  for (const child of Object.values(v as Record<string, unknown>)) {
    max = Math.max(max, depthOf(child, limit - 1));
    if (max >= limit) break;
  }
  return 1 + max;
}

/** An object is stored verbatim and echoed; `true` reads (MistServer's call). */
const uiSettings: ApiCall = {
  name: 'ui_settings',
  run(arg, c) {
    const store = c.host.config;
    if (isPlainObject(arg)) {
      const text = depthOf(arg, MAX_UI_SETTINGS_DEPTH) > MAX_UI_SETTINGS_DEPTH ? undefined : JSON.stringify(arg);
      if (text === undefined) c.errors.push(`ui_settings: nested deeper than ${MAX_UI_SETTINGS_DEPTH} levels; not stored`);
      else if (Buffer.byteLength(text, 'utf8') > MAX_UI_SETTINGS_BYTES) c.errors.push(`ui_settings: larger than ${MAX_UI_SETTINGS_BYTES} bytes as JSON; not stored`);
      else {
        store.update((cfg) => {
          cfg.ui_settings = JSON.parse(text) as Record<string, unknown>;
        });
      }
    } else if (arg !== true) {
      c.errors.push('ui_settings: expected an object to store, or true to read');
    }
    return { ui_settings: structuredClone(store.get().ui_settings) };
  },
};

// ---- accounts (Haze extensions) ------------------------------------------------------------

function accountNames(c: ApiCallContext): string[] {
  return Object.keys(c.host.config.get().account).sort();
}

function validName(v: unknown): v is string {
  // names like __proto__ would reach Object.prototype through account[name] (as in auth.ts)
  return typeof v === 'string' && USERNAME_RE.test(v) && !(v in Object.prototype);
}

const accountList: ApiCall = {
  name: 'account_list',
  run: (_arg, c) => ({ account_list: accountNames(c) }),
};

/**
 * `{username, password}` (plain): creates the account or changes its password, stored as
 * md5(plain) like every account. The logging-in state of connections is left alone: a
 * connection logged in as this user stays logged in (it must use the new password for its
 * next challenge answer).
 */
const accountSet: ApiCall = {
  name: 'account_set',
  run(arg, c) {
    if (!isPlainObject(arg)) {
      c.errors.push('account_set: expected {username, password}');
      return;
    }
    const { username, password } = arg;
    if (!validName(username)) {
      c.errors.push('account_set: the username must be 1-64 characters of A-Z a-z 0-9 _ . @ -');
      return;
    }
    if (typeof password !== 'string' || password === '' || password.length > MAX_PASSWORD_CHARS) {
      c.errors.push(`account_set: the password must be a non-empty string of at most ${MAX_PASSWORD_CHARS} characters`);
      return;
    }
    const existed = Object.hasOwn(c.host.config.get().account, username);
    c.host.config.update((cfg) => {
      const old = Object.hasOwn(cfg.account, username) ? cfg.account[username] : undefined;
      cfg.account[username] = { ...old, password: md5Hex(password) };
    });
    alog.info(`${existed ? 'changed the password of' : 'created'} account ${username} through the API from ${c.ctx.peer}`);
    return { account_set: username };
  },
};

/** One account name; the last account is never deleted (no account = anyone may create one). */
const accountDelete: ApiCall = {
  name: 'account_delete',
  run(arg, c) {
    if (typeof arg !== 'string' || arg === '') {
      c.errors.push('account_delete: expected an account name');
      return;
    }
    const names = accountNames(c);
    if (!validName(arg) || !names.includes(arg)) {
      c.errors.push(`account_delete: no account named ${JSON.stringify(arg.slice(0, 64))}`);
      return;
    }
    if (names.length === 1) {
      c.errors.push(`account_delete: ${arg} is the last account; create another one first (without accounts anyone could create one)`);
      return;
    }
    c.host.config.update((cfg) => {
      delete cfg.account[arg];
    });
    alog.info(`deleted account ${arg} through the API from ${c.ctx.peer}`);
    return { account_delete: arg };
  },
};

/** Backup before restore (a request holding both answers the old config); accounts listed after their changes. */
export const ADMIN_CALLS: readonly ApiCall[] = [configBackup, configRestore, uiSettings, accountSet, accountDelete, accountList];
