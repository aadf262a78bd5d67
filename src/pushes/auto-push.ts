// Auto-push rules (reference/mistserver.md §3.3 push_auto_add / push_auto_list /
// push_auto_remove, §5.5 "Auto-push"): the API's shapes, validation, which streams a rule
// applies to, and the start/stop decision the controller makes every second from the rule's
// schedule and its start_rule / end_rule conditions `[variable, operator, value]`. Pure: the
// clock and variable values are passed in.

import { createHash } from 'node:crypto';
import { HazeError } from '../util/errors.js';
import { parsePushTarget } from './push-target.js';

/**
 * Condition operators: 0 the variable is true, 1 it is false, 2 equal, 3 not equal,
 * 10-13 numeric > >= < <=, 20-23 lexical > >= < <=.
 */
export const RULE_OPERATORS = [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23] as const;
export type RuleOperator = (typeof RULE_OPERATORS)[number];

/** `[variableName, operator, value]`. */
export type PushCondition = [variable: string, operator: RuleOperator, value: string];

export interface AutoPushRule {
  /** Stream name, `base+` (every wildcard instance of base) or `#tag`. */
  stream: string;
  target: string;
  /** Unix seconds: not before. */
  scheduletime?: number;
  /** Unix seconds: the rule is dropped after. */
  completetime?: number;
  start_rule?: PushCondition;
  end_rule?: PushCondition;
  /** Stream patterns (names, `base+`, `#tag`) this rule never pushes. */
  inhibit?: string[];
  'x-LSP-notes'?: string;
}

const isOperator = (n: unknown): n is RuleOperator => typeof n === 'number' && (RULE_OPERATORS as readonly number[]).includes(n);

function bad(message: string): HazeError {
  return new HazeError('HAZE_ERR_INVALID_ARG', `push_auto_add: ${message}`);
}

function optUnix(v: unknown, what: string): number | undefined {
  if (v === undefined || v === null || v === '' || v === 0 || v === '0') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw bad(`${what} must be unix seconds, got ${JSON.stringify(v)}`);
  return n;
}

function condition(variable: unknown, op: unknown, value: unknown, what: string): PushCondition | undefined {
  if (variable === undefined || variable === null || variable === '') return undefined;
  if (typeof variable !== 'string') throw bad(`${what}: the variable name must be a string`);
  const opNum = typeof op === 'string' && op.trim() !== '' ? Number(op) : op;
  if (!isOperator(opNum)) throw bad(`${what}: unknown operator ${JSON.stringify(op)} (0, 1, 2, 3, 10-13, 20-23)`);
  return [variable, opNum, value === undefined || value === null ? '' : String(value)];
}

function conditionFrom(v: unknown, what: string): PushCondition | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw bad(`${what} must be [variable, operator, value]`);
  return condition(v[0], v[1], v[2], what);
}

/** One rule from the object form or the list form `[stream, target, sched, complete, startVar, startOp, startVal, endVar, endOp, endVal]`. */
export function parseAutoPushRule(input: unknown, opts: { checkTarget?: boolean } = {}): AutoPushRule {
  let rule: AutoPushRule;
  if (Array.isArray(input)) {
    const [stream, target, sched, complete, sv, so, sval, ev, eo, evalue] = input as unknown[];
    rule = { stream: String(stream ?? ''), target: String(target ?? '') };
    const s = optUnix(sched, 'scheduletime');
    const c = optUnix(complete, 'completetime');
    if (s !== undefined) rule.scheduletime = s;
    if (c !== undefined) rule.completetime = c;
    const start = condition(sv, so, sval, 'start rule');
    const end = condition(ev, eo, evalue, 'end rule');
    if (start) rule.start_rule = start;
    if (end) rule.end_rule = end;
  } else if (input !== null && typeof input === 'object') {
    const o = input as Record<string, unknown>;
    if (typeof o['stream'] !== 'string' || typeof o['target'] !== 'string') throw bad('stream and target must be strings');
    rule = { stream: o['stream'], target: o['target'] };
    const s = optUnix(o['scheduletime'], 'scheduletime');
    const c = optUnix(o['completetime'], 'completetime');
    if (s !== undefined) rule.scheduletime = s;
    if (c !== undefined) rule.completetime = c;
    const start = conditionFrom(o['start_rule'], 'start_rule');
    const end = conditionFrom(o['end_rule'], 'end_rule');
    if (start) rule.start_rule = start;
    if (end) rule.end_rule = end;
    const inhibit = o['inhibit'];
    if (inhibit !== undefined && inhibit !== null && inhibit !== '') {
      const list = Array.isArray(inhibit) ? inhibit : [inhibit];
      if (!list.every((x) => typeof x === 'string')) throw bad('inhibit must be a string or a list of strings');
      const cleaned = (list as string[]).map((x) => x.trim()).filter((x) => x !== '');
      if (cleaned.length > 0) rule.inhibit = cleaned;
    }
    if (typeof o['x-LSP-notes'] === 'string') rule['x-LSP-notes'] = o['x-LSP-notes'];
  } else {
    throw bad('expected {stream, target, ...} or [stream, target, ...]');
  }
  rule.stream = rule.stream.trim();
  rule.target = rule.target.trim();
  if (!rule.stream) throw bad('stream missing');
  if (!rule.target) throw bad('target missing');
  if (rule.scheduletime !== undefined && rule.completetime !== undefined && rule.completetime <= rule.scheduletime) {
    throw bad(`completetime (${rule.completetime}) must be after scheduletime (${rule.scheduletime})`);
  }
  if (opts.checkTarget ?? true) parsePushTarget(rule.target);
  return rule;
}

/** JSON with sorted keys, so equal rules give equal ids. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A rule's default id: md5 hex of its canonical JSON. */
export function autoPushId(rule: AutoPushRule): string {
  return createHash('md5').update(canonicalJson(rule)).digest('hex');
}

const looksLikeRule = (v: unknown): boolean =>
  (Array.isArray(v) && typeof v[0] === 'string') || (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as Record<string, unknown>)['stream'] === 'string');

/**
 * The rules of a push_auto_add argument: one rule (object or list form), a list of rules, or an
 * object whose keys are ids. Returns id -> rule.
 */
export function parseAutoPushAdd(input: unknown, opts: { checkTarget?: boolean } = {}): Map<string, AutoPushRule> {
  const out = new Map<string, AutoPushRule>();
  if (looksLikeRule(input)) {
    const r = parseAutoPushRule(input, opts);
    out.set(autoPushId(r), r);
  } else if (Array.isArray(input)) {
    for (const item of input) {
      const r = parseAutoPushRule(item, opts);
      out.set(autoPushId(r), r);
    }
  } else if (input !== null && typeof input === 'object') {
    for (const [id, item] of Object.entries(input as Record<string, unknown>)) {
      if (!id) throw bad('empty rule id');
      out.set(id, parseAutoPushRule(item, opts));
    }
  } else {
    throw bad('expected a rule, a list of rules or an object of rules by id');
  }
  if (out.size === 0) throw bad('no rule given');
  return out;
}

/** The legacy list form of a rule (push_auto_list arrays). */
export function autoPushRuleToList(rule: AutoPushRule): (string | number)[] {
  const list: (string | number)[] = [rule.stream, rule.target, rule.scheduletime ?? 0, rule.completetime ?? 0];
  if (rule.start_rule || rule.end_rule) list.push(...(rule.start_rule ?? ['', 0, '']));
  if (rule.end_rule) list.push(...rule.end_rule);
  return list;
}

/**
 * Which rules push_auto_remove removes: an id, a stream name (all of its rules), a rule spec
 * (the rule equal to it), or an array of those.
 */
export function autoPushRemovals(rules: ReadonlyMap<string, AutoPushRule>, arg: unknown): string[] {
  const ids = new Set<string>();
  const one = (a: unknown): void => {
    if (typeof a === 'string') {
      if (rules.has(a)) ids.add(a);
      for (const [id, r] of rules) if (r.stream === a) ids.add(id);
      return;
    }
    if (looksLikeRule(a)) {
      const spec = parseAutoPushRule(a, { checkTarget: false });
      const key = canonicalJson({ stream: spec.stream, target: spec.target });
      for (const [id, r] of rules) if (canonicalJson({ stream: r.stream, target: r.target }) === key) ids.add(id);
      return;
    }
    if (Array.isArray(a)) for (const x of a) one(x);
  };
  one(arg);
  return [...ids];
}

/** Whether a stream pattern (`name`, `base+`, `#tag`) covers a stream. */
export function matchesPattern(pattern: string, name: string, tags: readonly string[] = []): boolean {
  if (pattern.startsWith('#')) return tags.includes(pattern.slice(1));
  if (pattern.endsWith('+')) return name.length > pattern.length && name.startsWith(pattern);
  return name === pattern;
}

/** Whether `rule` applies to the active stream `name` (with its tags), inhibit patterns included. */
export function matchesStream(rule: Pick<AutoPushRule, 'stream' | 'inhibit'> | string, name: string, tags: readonly string[] = []): boolean {
  const r = typeof rule === 'string' ? { stream: rule } : rule;
  if (!matchesPattern(r.stream, name, tags)) return false;
  return !(r.inhibit ?? []).some((p) => matchesPattern(p, name, tags));
}

const FALSE_WORDS = new Set(['', '0', 'false', 'no', 'off']);

/** A variable's value as a boolean (empty, 0, false, no, off are false). */
export function variableIsTrue(value: string | undefined): boolean {
  return value !== undefined && !FALSE_WORDS.has(value.trim().toLowerCase());
}

function numeric(v: string): number {
  const n = Number.parseFloat(v);
  return Number.isFinite(n) ? n : 0;
}

/** Looks a variable up by name (with or without `$` / `${}`); undefined when unset. */
export type VariableLookup = (name: string) => string | undefined;

/** Evaluates `[variable, operator, value]` against the variables' current values. */
export function evaluateCondition(cond: PushCondition, lookup: VariableLookup): boolean {
  const [rawName, op, want] = cond;
  const name = rawName.replace(/^\$\{?/, '').replace(/\}$/, '');
  const have = lookup(name);
  const v = have ?? '';
  switch (op) {
    case 0:
      return variableIsTrue(have);
    case 1:
      return !variableIsTrue(have);
    case 2:
      return v === want;
    case 3:
      return v !== want;
    case 10:
      return numeric(v) > numeric(want);
    case 11:
      return numeric(v) >= numeric(want);
    case 12:
      return numeric(v) < numeric(want);
    case 13:
      return numeric(v) <= numeric(want);
    case 20:
      return v > want;
    case 21:
      return v >= want;
    case 22:
      return v < want;
    case 23:
      return v <= want;
  }
}

export interface AutoPushDecision {
  /** completetime passed: drop the rule (and stop its pushes). */
  expired: boolean;
  /** New pushes may start now for matching streams. */
  mayStart: boolean;
  /** Running pushes of this rule must stop (end_rule true, start_rule false, or expired). */
  mustStop: boolean;
  /** Remove the rule once it has started a push (scheduletime without completetime). */
  removeAfterStart: boolean;
}

/** The once-a-second decision for one rule. */
export function autoPushDecision(rule: AutoPushRule, nowUnix: number, lookup: VariableLookup): AutoPushDecision {
  const expired = rule.completetime !== undefined && nowUnix > rule.completetime;
  const scheduled = rule.scheduletime === undefined || nowUnix >= rule.scheduletime;
  const startOk = rule.start_rule ? evaluateCondition(rule.start_rule, lookup) : true;
  const endHit = rule.end_rule ? evaluateCondition(rule.end_rule, lookup) : false;
  return {
    expired,
    mayStart: !expired && scheduled && startOk && !endHit,
    mustStop: expired || endHit || !startOk,
    removeAfterStart: rule.scheduletime !== undefined && rule.completetime === undefined,
  };
}

/** push_settings: `wait` (seconds to wait before starting auto-pushes) and `maxspeed` (starts per second, 0 = unlimited). */
export interface PushSettings {
  wait: number;
  maxspeed: number;
}

export function parsePushSettings(input: unknown, current: PushSettings = { wait: 0, maxspeed: 0 }): PushSettings {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return current;
  const o = input as Record<string, unknown>;
  const out = { ...current };
  for (const key of ['wait', 'maxspeed'] as const) {
    if (o[key] === undefined) continue;
    const n = Number(o[key]);
    if (!Number.isFinite(n) || n < 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `push_settings: ${key} must be a non-negative number`);
    out[key] = n;
  }
  return out;
}
