// Stream variables (reference/mistserver.md §5.3, MistServer's Util::streamVariables), applied
// to push targets, sources and fallback names: `$name` and `${name}`, substituted repeatedly
// (a value may hold variables) up to 10 levels. Pure: the clock and the custom variables are
// passed in.

import { HazeError } from '../util/errors.js';

/** Substitution passes before giving up (a variable that refers to itself stops here). */
export const MAX_VARIABLE_DEPTH = 10;

export interface VariableContext {
  /** The full stream name (`base+wildcard`). */
  stream: string;
  /** The stream's configured source (`$source`). */
  source?: string;
  /** The moment the variables describe. */
  now: Date;
  /** Read the clock as UTC instead of local time (MistServer uses local time). */
  utc?: boolean;
  /** Custom variables (`variable_add`), name without `$`. */
  custom?: Readonly<Record<string, string>>;
  /** Recording segments: the number of the segment (from 0)... */
  segmentCounter?: number;
  /** ...and the media time of its first packet in ms. */
  currentMediaTime?: number;
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

/** ISO 8601 week number (01-53) of a calendar date. */
function isoWeek(year: number, month0: number, day: number): number {
  const d = new Date(Date.UTC(year, month0, day));
  const wday = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - wday); // the Thursday of this week decides its year
  const jan1 = Date.UTC(d.getUTCFullYear(), 0, 1);
  return Math.floor((d.getTime() - jan1) / 86_400_000 / 7) + 1;
}

/** Every variable and its value for a context (names without `$`). */
export function streamVariables(ctx: VariableContext): Record<string, string> {
  const t = ctx.now;
  const u = ctx.utc === true;
  const year = u ? t.getUTCFullYear() : t.getFullYear();
  const month0 = u ? t.getUTCMonth() : t.getMonth();
  const day = u ? t.getUTCDate() : t.getDate();
  const hour = u ? t.getUTCHours() : t.getHours();
  const minute = u ? t.getUTCMinutes() : t.getMinutes();
  const second = u ? t.getUTCSeconds() : t.getSeconds();
  const weekday = u ? t.getUTCDay() : t.getDay();
  const yday = Math.round((Date.UTC(year, month0, day) - Date.UTC(year, 0, 1)) / 86_400_000) + 1;
  const plus = ctx.stream.search(/[+ ]/);
  const basename = plus < 0 ? ctx.stream : ctx.stream.slice(0, plus);
  const wildcard = plus < 0 ? '' : ctx.stream.slice(plus + 1);
  const vars: Record<string, string> = {
    ...(ctx.custom ?? {}),
    stream: ctx.stream,
    basename,
    wildcard,
    pluswildcard: wildcard ? `+${wildcard}` : '',
    source: ctx.source ?? '',
    year: String(year),
    month: pad(month0 + 1),
    day: pad(day),
    hour: pad(hour),
    minute: pad(minute),
    second: pad(second),
    wday: String(weekday === 0 ? 7 : weekday),
    yday: pad(yday, 3),
    week: pad(isoWeek(year, month0, day)),
  };
  vars['datetime'] = `${vars['year']}.${vars['month']}.${vars['day']}.${vars['hour']}.${vars['minute']}.${vars['second']}`;
  if (ctx.segmentCounter !== undefined) vars['segmentCounter'] = String(ctx.segmentCounter);
  if (ctx.currentMediaTime !== undefined) vars['currentMediaTime'] = String(Math.round(ctx.currentMediaTime));
  return vars;
}

const VARIABLE = /\$\{([A-Za-z0-9_]+)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * Replaces variables in `text`. `${name}` must name a variable exactly; bare `$name` takes the
 * longest variable name the text starts with (`$streamX` is `$stream` + `X`, as MistServer's
 * plain string replacement behaves). Unknown variables stay as written.
 */
export function applyVariablesWith(text: string, vars: Readonly<Record<string, string>>): string {
  const names = Object.keys(vars).sort((a, b) => b.length - a.length);
  let current = text;
  for (let depth = 0; depth < MAX_VARIABLE_DEPTH; depth++) {
    const next = current.replace(VARIABLE, (whole, braced: string | undefined, bare: string | undefined) => {
      if (braced !== undefined) return Object.hasOwn(vars, braced) ? vars[braced]! : whole;
      const name = names.find((n) => bare!.startsWith(n));
      return name === undefined ? whole : vars[name]! + bare!.slice(name.length);
    });
    if (next === current) return next;
    current = next;
  }
  return current;
}

/** Replaces the variables of `ctx` in `text`. */
export function applyVariables(text: string, ctx: VariableContext): string {
  return applyVariablesWith(text, streamVariables(ctx));
}

/** Whether `text` uses a per-segment variable ($segmentCounter / $currentMediaTime). */
export function hasSegmentVariable(text: string): boolean {
  return /\$\{?(segmentCounter|currentMediaTime)/.test(text);
}

/** A custom variable as `variable_add` takes it (reference §5.3). */
export interface CustomVariableSpec {
  name: string;
  /** A URL (HTTP GET, header `X-Custom-Variable: name`) or a shell command whose output is the value. */
  target?: string;
  /** Seconds between re-runs of `target` (0: once). */
  interval?: number;
  /** A static value. */
  value?: string;
  /** Seconds to wait for `target` before keeping the old value. */
  waitTime?: number;
}

/** Built-in names a custom variable cannot take. */
export const BUILTIN_VARIABLES = ['source', 'datetime', 'day', 'month', 'year', 'hour', 'minute', 'second', 'wday', 'yday', 'week', 'stream', 'basename', 'wildcard', 'pluswildcard', 'segmentCounter', 'currentMediaTime'] as const;

/** Validates a `variable_add` argument: the object form, or `[name, value]` / `[name, target, interval, waitTime]`. */
export function parseCustomVariable(input: unknown): CustomVariableSpec {
  let spec: Record<string, unknown>;
  if (Array.isArray(input)) {
    const [name, second, interval, waitTime] = input as unknown[];
    spec = { name };
    if (input.length === 2) spec['value'] = second;
    else if (input.length > 2) Object.assign(spec, { target: second, interval, waitTime });
  } else if (input !== null && typeof input === 'object') {
    spec = input as Record<string, unknown>;
  } else {
    throw new HazeError('HAZE_ERR_INVALID_ARG', 'variable_add: expected an object {name, value|target, interval, waitTime} or an array');
  }
  const rawName = spec['name'];
  if (typeof rawName !== 'string') throw new HazeError('HAZE_ERR_INVALID_ARG', 'variable_add: name missing');
  const name = rawName.replace(/^\$/, '');
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) throw new HazeError('HAZE_ERR_INVALID_ARG', `variable_add: invalid name ${JSON.stringify(rawName)} (letters, digits, _)`);
  if ((BUILTIN_VARIABLES as readonly string[]).includes(name)) throw new HazeError('HAZE_ERR_INVALID_ARG', `variable_add: $${name} is a built-in variable`);
  const out: CustomVariableSpec = { name };
  const num = (key: string): number | undefined => {
    const v = spec[key];
    if (v === undefined || v === null || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `variable_add: ${key} must be a non-negative number`);
    return n;
  };
  if (typeof spec['target'] === 'string' && spec['target'] !== '') out.target = spec['target'];
  if (spec['value'] !== undefined && spec['value'] !== null) out.value = String(spec['value']);
  const interval = num('interval');
  const waitTime = num('waitTime');
  if (interval !== undefined) out.interval = interval;
  if (waitTime !== undefined) out.waitTime = waitTime;
  if (out.target === undefined && out.value === undefined) throw new HazeError('HAZE_ERR_INVALID_ARG', `variable_add: $${name} needs a value or a target`);
  return out;
}
