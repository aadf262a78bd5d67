// `config.triggers` (reference/mistserver.md §4.1): validation, normalisation and stream
// matching. Handlers come as objects {handler, sync, streams, params, default} or in the legacy
// form [url, sync, [streams]]; both normalise to TriggerHandler with the stream list compiled
// once, so matching on every connection costs a few Set lookups and no allocation.

import { isTriggerName, TRIGGERS, type TriggerName } from './trigger-map.js';
import { log } from '../util/log.js';

/** Bounds on what one handler may carry (MistServer's shared page held 128/256 bytes). */
export const MAX_HANDLER_CHARS = 2048;
export const MAX_TEXT_CHARS = 2048;
export const MAX_STREAM_ENTRIES = 256;
export const MAX_STREAM_ENTRY_CHARS = 256;
export const MAX_HANDLERS_PER_TRIGGER = 64;

/** The stream list, split once so matching is cheap. */
export interface StreamMatcher {
  /** Names that match the full stream name or its base name (before `+`/space). */
  readonly names: ReadonlySet<string>;
  readonly notNames: ReadonlySet<string>;
  /** Tags without the `#`. */
  readonly tags: ReadonlySet<string>;
  readonly notTags: ReadonlySet<string>;
  /** True when there is no positive entry: an empty list, or only negations. */
  readonly all: boolean;
}

export interface TriggerHandler {
  /** http(s) URL or absolute path of an executable. */
  readonly handler: string;
  readonly isUrl: boolean;
  /** Blocking: the reply is waited for and used. */
  readonly sync: boolean;
  /** The entries as configured. */
  readonly streams: readonly string[];
  readonly params: string;
  /** The reply used when the handler fails or is asynchronous; '' means "true". */
  readonly default: string;
  readonly match: StreamMatcher;
}

export type TriggerConfig = { readonly [N in TriggerName]?: readonly TriggerHandler[] };

/** The form written back to config.json and shown by the API (the object form). */
export interface TriggerHandlerJson {
  handler: string;
  sync: boolean;
  streams: string[];
  params?: string;
  default?: string;
}

export type TriggerValidation<T> = { ok: true; value: T } | { ok: false; error: string };

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function compileStreams(entries: readonly string[]): StreamMatcher {
  const names = new Set<string>();
  const notNames = new Set<string>();
  const tags = new Set<string>();
  const notTags = new Set<string>();
  for (const e of entries) {
    const neg = e.startsWith('!');
    const body = neg ? e.slice(1) : e;
    if (body === '') continue;
    if (body.startsWith('#')) {
      if (body.length > 1) (neg ? notTags : tags).add(body.slice(1));
    } else {
      (neg ? notNames : names).add(body);
    }
  }
  return { names, notNames, tags, notTags, all: names.size === 0 && tags.size === 0 };
}

function textField(v: unknown, what: string): TriggerValidation<string> {
  if (v === undefined || v === null) return { ok: true, value: '' };
  // the MistServer UI and older configs store numbers/booleans here ("Default response: 1 or 0")
  if (typeof v === 'number' || typeof v === 'boolean') return { ok: true, value: String(v) };
  if (typeof v !== 'string') return { ok: false, error: `${what} must be a string` };
  if (v.length > MAX_TEXT_CHARS) return { ok: false, error: `${what} is longer than ${MAX_TEXT_CHARS} characters` };
  return { ok: true, value: v };
}

function syncField(v: unknown, what: string): TriggerValidation<boolean> {
  if (v === undefined || v === null) return { ok: true, value: false };
  if (typeof v === 'boolean') return { ok: true, value: v };
  if (v === 0 || v === 1) return { ok: true, value: v === 1 };
  return { ok: false, error: `${what} must be true or false` };
}

function streamsField(v: unknown, what: string): TriggerValidation<string[]> {
  if (v === undefined || v === null) return { ok: true, value: [] };
  if (!Array.isArray(v)) return { ok: false, error: `${what} must be an array of stream names, "!name" or "#tag" entries` };
  if (v.length > MAX_STREAM_ENTRIES) return { ok: false, error: `${what} has more than ${MAX_STREAM_ENTRIES} entries` };
  const out: string[] = [];
  for (let i = 0; i < v.length; i++) {
    const e: unknown = v[i];
    if (typeof e !== 'string') return { ok: false, error: `${what}[${i}] must be a string` };
    if (e === '' || e === '!' || e === '#' || e === '!#') return { ok: false, error: `${what}[${i}] must name a stream or a #tag` };
    if (e.length > MAX_STREAM_ENTRY_CHARS) return { ok: false, error: `${what}[${i}] is longer than ${MAX_STREAM_ENTRY_CHARS} characters` };
    if (/[\u0000-\u001f\u007f]/.test(e)) return { ok: false, error: `${what}[${i}] contains a control character` };
    out.push(e);
  }
  return { ok: true, value: out };
}

function handlerField(v: unknown, what: string): TriggerValidation<{ handler: string; isUrl: boolean }> {
  if (typeof v !== 'string' || v === '') return { ok: false, error: `${what} must be an http(s) URL or the absolute path of an executable` };
  if (v.length > MAX_HANDLER_CHARS) return { ok: false, error: `${what} is longer than ${MAX_HANDLER_CHARS} characters` };
  if (/[\u0000-\u001f\u007f]/.test(v)) return { ok: false, error: `${what} contains a control character` };
  if (v.includes('://')) {
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      return { ok: false, error: `${what} is not a valid URL: ${v}` };
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return { ok: false, error: `${what}: only http:// and https:// URLs are supported (got ${url.protocol}//)` };
    return { ok: true, value: { handler: v, isUrl: true } };
  }
  if (!v.startsWith('/')) return { ok: false, error: `${what} must be an http(s) URL or an absolute path (starting with /), got "${v}"` };
  return { ok: true, value: { handler: v, isUrl: false } };
}

/** Checks and normalises one handler (object or legacy array form). `where` names it in errors. */
export function validateHandler(raw: unknown, where: string): TriggerValidation<TriggerHandler> {
  let handlerRaw: unknown;
  let syncRaw: unknown;
  let streamsRaw: unknown;
  let paramsRaw: unknown;
  let defaultRaw: unknown;
  if (Array.isArray(raw)) {
    // legacy [url, sync, [streams]]
    if (raw.length < 1 || raw.length > 3) return { ok: false, error: `${where}: the legacy form is [handler, sync, [streams]]` };
    [handlerRaw, syncRaw, streamsRaw] = raw as unknown[];
  } else if (isPlainObject(raw)) {
    handlerRaw = raw['handler'];
    syncRaw = raw['sync'];
    streamsRaw = raw['streams'];
    paramsRaw = raw['params'];
    defaultRaw = raw['default'];
  } else {
    return { ok: false, error: `${where} must be an object {handler, sync, streams, params, default} or [handler, sync, [streams]]` };
  }
  const h = handlerField(handlerRaw, `${where}.handler`);
  if (!h.ok) return h;
  const sync = syncField(syncRaw, `${where}.sync`);
  if (!sync.ok) return sync;
  const streams = streamsField(streamsRaw, `${where}.streams`);
  if (!streams.ok) return streams;
  const params = textField(paramsRaw, `${where}.params`);
  if (!params.ok) return params;
  const def = textField(defaultRaw, `${where}.default`);
  if (!def.ok) return def;
  return {
    ok: true,
    value: {
      handler: h.value.handler,
      isUrl: h.value.isUrl,
      sync: sync.value,
      streams: streams.value,
      params: params.value,
      default: def.value,
      match: compileStreams(streams.value),
    },
  };
}

/**
 * Checks and normalises `config.triggers`; the first problem is returned as an error string
 * for the API ("config.triggers.USER_NEW[0].handler must be ...").
 */
export function validateTriggers(raw: unknown): TriggerValidation<TriggerConfig> {
  if (raw === undefined || raw === null) return { ok: true, value: {} };
  if (!isPlainObject(raw)) return { ok: false, error: 'config.triggers must be an object {TRIGGER_NAME: [handlers]}' };
  const out: { [N in TriggerName]?: TriggerHandler[] } = {};
  for (const [name, list] of Object.entries(raw)) {
    if (!isTriggerName(name)) return { ok: false, error: `config.triggers: unknown trigger "${name}"` };
    if (list === null) continue;
    if (!Array.isArray(list)) return { ok: false, error: `config.triggers.${name} must be an array of handlers` };
    if (list.length > MAX_HANDLERS_PER_TRIGGER) return { ok: false, error: `config.triggers.${name} has more than ${MAX_HANDLERS_PER_TRIGGER} handlers` };
    const handlers: TriggerHandler[] = [];
    for (let i = 0; i < list.length; i++) {
      const r = validateHandler(list[i], `config.triggers.${name}[${i}]`);
      if (!r.ok) return r;
      handlers.push(r.value);
    }
    if (handlers.length > 0) out[name] = handlers;
  }
  return { ok: true, value: out };
}

/** The object form of a normalised configuration, for config.json and the API. */
export function triggersToJson(config: TriggerConfig): Record<string, TriggerHandlerJson[]> {
  const out: Record<string, TriggerHandlerJson[]> = {};
  for (const [name, list] of Object.entries(config) as [TriggerName, readonly TriggerHandler[]][]) {
    out[name] = list.map((h) => {
      const j: TriggerHandlerJson = { handler: h.handler, sync: h.sync, streams: [...h.streams] };
      if (h.params !== '') j.params = h.params;
      if (h.default !== '') j.default = h.default;
      return j;
    });
  }
  return out;
}

const compiledCache = new WeakMap<object, TriggerConfig>();

/**
 * The normalised configuration of a raw `config.triggers` object, cached per object so a
 * dispatcher's config getter can call this on every fire. Lenient: handlers (and unknown
 * trigger names) that do not validate are skipped with a warning instead of disabling the rest.
 */
export function compileTriggers(raw: unknown): TriggerConfig {
  if (!isPlainObject(raw)) return {};
  const cached = compiledCache.get(raw);
  if (cached) return cached;
  const out: { [N in TriggerName]?: TriggerHandler[] } = {};
  for (const [name, list] of Object.entries(raw)) {
    if (!isTriggerName(name)) {
      log.warn(`config.triggers: unknown trigger "${name}" ignored`);
      continue;
    }
    if (!Array.isArray(list)) continue;
    const handlers: TriggerHandler[] = [];
    for (let i = 0; i < list.length && i < MAX_HANDLERS_PER_TRIGGER; i++) {
      const r = validateHandler(list[i], `config.triggers.${name}[${i}]`);
      if (r.ok) handlers.push(r.value);
      else log.warn(`${r.error}; handler ignored`);
    }
    if (handlers.length > 0) out[name] = handlers;
  }
  compiledCache.set(raw, out);
  return out;
}

function baseName(stream: string): string {
  for (let i = 0; i < stream.length; i++) {
    const c = stream.charCodeAt(i);
    if (c === 0x2b || c === 0x20) return stream.slice(0, i);
  }
  return stream;
}

function hasTag(set: ReadonlySet<string>, tags: readonly string[] | undefined): boolean {
  if (!tags || set.size === 0) return false;
  for (const t of tags) {
    if (set.has(t.startsWith('#') ? t.slice(1) : t)) return true;
  }
  return false;
}

/**
 * Whether a handler applies to a stream (§4.1): an empty stream name (global trigger) always
 * matches; an entry matches the full name or the base name before `+`/space, `#tag` a tag of
 * the stream; `!` entries exclude and win over positive ones; a list without positive entries
 * (empty, or negations only) matches every stream not excluded.
 */
export function matches(handler: Pick<TriggerHandler, 'match'>, streamName: string, tags?: readonly string[]): boolean {
  if (streamName === '') return true;
  const m = handler.match;
  if (m.all && m.notNames.size === 0 && m.notTags.size === 0) return true;
  const base = baseName(streamName);
  if (m.notNames.has(streamName) || (base !== streamName && m.notNames.has(base)) || hasTag(m.notTags, tags)) return false;
  if (m.all) return true;
  return m.names.has(streamName) || (base !== streamName && m.names.has(base)) || hasTag(m.tags, tags);
}

/** Whether a trigger fires with an empty stream name. */
export function isGlobalTrigger(name: TriggerName): boolean {
  return TRIGGERS[name].global;
}
