// The statistics calls of the API (reference §3.3, §7): `clients` (the sessions now), `totals`
// (per-second history of the last 600 s with MistServer's interval compression),
// `stats_streams` (every stream with statistics), and the runtime tags: `tag_sessid`,
// `tag_stream`, `untag_stream`, `stream_tags`, `stop_tag`.

import { isPlainObject } from './default-config.js';
import { activeStreams, type ActiveStreamStats } from './api.js';
import type { ApiCall, ApiCallContext } from './api-calls.js';
import { HISTORY_S, type LiveSession, type SessionTable } from '../stats/session-table.js';
import type { StreamFigures } from '../stats/snapshot.js';
import { isSessionId } from '../stats/session-id.js';
import { HazeError } from '../util/errors.js';

const CLIENT_FIELDS = ['host', 'stream', 'protocol', 'conntime', 'position', 'down', 'up', 'downbps', 'upbps', 'sessid', 'pktcount', 'pktlost', 'pktretransmit'] as const;
const TOTAL_FIELDS = ['clients', 'inputs', 'outputs', 'downbps', 'upbps', 'perc_lost', 'perc_retrans'] as const;
/** Requests one call answers at most (an array of queries), tags per call. */
const MAX_ITEMS = 64;
const MAX_TAG_CHARS = 256;

function table(c: ApiCallContext): SessionTable {
  if (!c.host.stats) throw new HazeError('HAZE_ERR_OFFLINE', 'statistics are not running');
  return c.host.stats;
}

function stringList(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string').slice(0, 1024);
}

function pickFields<T extends string>(raw: unknown, known: readonly T[], call: string, errors: string[]): T[] {
  const list = stringList(raw);
  if (!list || list.length === 0) return [...known];
  const bad = list.filter((f) => !(known as readonly string[]).includes(f));
  if (bad.length) errors.push(`${call}: unknown fields ${bad.join(', ')} (known: ${known.join(', ')})`);
  return list.filter((f): f is T => (known as readonly string[]).includes(f));
}

/** `time`/`start`/`end`: ≤ 0 is relative to now (seconds), otherwise unix seconds. */
function unixTime(v: unknown, nowS: number, fallback: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return fallback;
  return v <= 0 ? nowS + Math.trunc(v) : Math.trunc(v);
}

function clientValue(s: LiveSession, field: (typeof CLIENT_FIELDS)[number], nowMs: number): unknown {
  switch (field) {
    case 'host':
      return s.host;
    case 'stream':
      return s.stream;
    case 'protocol':
      return s.connectors.join(',');
    case 'conntime':
      return Math.round(s.activeMs / 1000) || Math.max(0, Math.round((nowMs - s.firstMs) / 1000));
    case 'position':
      return s.positionMs === undefined ? 0 : Math.round(s.positionMs / 1000);
    case 'down':
      return s.down;
    case 'up':
      return s.up;
    case 'downbps':
      return s.downbps;
    case 'upbps':
      return s.upbps;
    case 'sessid':
      return s.id;
    case 'pktcount':
      return s.packets[0];
    case 'pktlost':
      return s.packets[1];
    case 'pktretransmit':
      return s.packets[2];
  }
}

function clientsQuery(q: unknown, c: ApiCallContext): Record<string, unknown> {
  const t = table(c);
  const arg = isPlainObject(q) ? q : {};
  const nowMs = Date.now();
  const nowS = Math.floor(nowMs / 1000);
  const fields = pickFields(arg['fields'], CLIENT_FIELDS, 'clients', c.errors);
  const streams = stringList(arg['streams']);
  const protocols = stringList(arg['protocols']);
  const data: unknown[][] = [];
  for (const s of t.live.values()) {
    if (!t.isCurrent(s, nowMs)) continue;
    if (streams?.length && !streams.includes(s.stream)) continue;
    if (protocols?.length && !s.connectors.some((p) => protocols.includes(p))) continue;
    data.push(fields.map((f) => clientValue(s, f, nowMs)));
  }
  // the figures are the current ones whatever `time` asked (history is kept per second in totals)
  return { time: unixTime(arg['time'], nowS, nowS), fields, data };
}

function totalsQuery(q: unknown, c: ApiCallContext): Record<string, unknown> {
  const t = table(c);
  const arg = isPlainObject(q) ? q : {};
  const nowS = Math.floor(Date.now() / 1000);
  const fields = pickFields(arg['fields'], TOTAL_FIELDS, 'totals', c.errors);
  const streams = stringList(arg['streams']);
  const protocols = stringList(arg['protocols']);
  const start = unixTime(arg['start'], nowS, nowS - HISTORY_S);
  const end = unixTime(arg['end'], nowS, nowS);
  const data: number[][] = [];
  const interval: [number, number][] = [];
  let first: number | undefined;
  let last: number | undefined;
  for (const second of t.historyBetween(start, end)) {
    const sum = { clients: 0, inputs: 0, outputs: 0, downbps: 0, upbps: 0, sent: 0, lost: 0, retrans: 0 };
    let any = false;
    for (const r of second.rows) {
      if (streams?.length && !streams.includes(r.stream)) continue;
      if (protocols?.length && !protocols.includes(r.connector)) continue;
      any = true;
      if (r.kind === 'viewer') sum.clients += r.count;
      else if (r.kind === 'input') sum.inputs += r.count;
      else if (r.kind === 'output') sum.outputs += r.count;
      sum.downbps += r.downbps;
      sum.upbps += r.upbps;
      sum.sent += r.packets[0];
      sum.lost += r.packets[1];
      sum.retrans += r.packets[2];
    }
    if (!any) continue;
    const pct = (n: number): number => (sum.sent > 0 ? Math.round((n * 10000) / sum.sent) / 100 : 0);
    const row: Record<(typeof TOTAL_FIELDS)[number], number> = { clients: sum.clients, inputs: sum.inputs, outputs: sum.outputs, downbps: sum.downbps, upbps: sum.upbps, perc_lost: pct(sum.lost), perc_retrans: pct(sum.retrans) };
    data.push(fields.map((f) => row[f]));
    // MistServer's compression: runs of equal steps between the seconds that have data
    if (last !== undefined) {
      const step = second.t - last;
      const run = interval[interval.length - 1];
      if (run && run[1] === step) run[0]++;
      else interval.push([1, step]);
    }
    first ??= second.t;
    last = second.t;
  }
  return { start: first ?? start, end: last ?? end, fields, data, interval };
}

/** A call that takes one query object or an array of them (answered alike). */
function queryCall(name: string, run: (q: unknown, c: ApiCallContext) => Record<string, unknown>): ApiCall {
  return {
    name,
    run(arg, c) {
      return { [name]: Array.isArray(arg) ? arg.slice(0, MAX_ITEMS).map((q) => run(q, c)) : run(arg, c) };
    },
  };
}

/**
 * A stream's `active_streams` fields with what its sessions say (counts now, sessions ever, bytes,
 * view seconds, packets) over what its workers report; inputs are the larger count (a pull or a
 * playlist feeds a stream without an input session).
 */
export function withSessions(live: Partial<ActiveStreamStats>, f: StreamFigures, tags: ReadonlySet<string> | undefined): Partial<ActiveStreamStats> {
  const c = f.current;
  return {
    ...live,
    viewers: c.viewers,
    inputs: Math.max(live.inputs ?? 0, c.inputs),
    outputs: c.outputs,
    unspecified: c.unspecified,
    clients: c.viewers + c.inputs + c.outputs + c.unspecified,
    views: f.total.viewers,
    viewseconds: f.viewSeconds,
    upbytes: f.bytes.up,
    downbytes: f.bytes.down,
    packsent: f.packets.sent,
    packloss: f.packets.lost,
    packretrans: f.packets.retrans,
    ...(tags ? { tags: [...tags] } : {}),
  };
}

const statsStreams: ApiCall = {
  name: 'stats_streams',
  async run(arg, c) {
    const t = table(c);
    // the active streams come with their session figures already (host.streamStats); the others
    // are known from their finished sessions only
    const rows = await c.host.streamStats();
    for (const [name, f] of Object.entries(t.streamFigures(Date.now()))) rows[name] ??= withSessions({ status: 'Offline' }, f, t.streamTags.get(name) ?? new Set());
    // MistServer's default for stats_streams: clients and lastms
    return { stats_streams: activeStreams(arg === true ? ['clients', 'lastms'] : arg, rows, c.errors, 'stats_streams') };
  },
};

function tagText(v: unknown, call: string, errors: string[]): string | undefined {
  if (typeof v === 'string' && v.length > 0 && v.length <= MAX_TAG_CHARS) return v;
  errors.push(`${call}: a tag must be a non-empty string of at most ${MAX_TAG_CHARS} characters`);
  return undefined;
}

/** `{key: tag | [tags]}` as pairs. */
function tagPairs(arg: unknown, call: string, errors: string[]): [string, string][] {
  if (!isPlainObject(arg)) {
    errors.push(`${call}: expected an object {name: tag or [tags]}`);
    return [];
  }
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(arg).slice(0, MAX_ITEMS)) {
    for (const tag of (Array.isArray(v) ? v : [v]).slice(0, MAX_ITEMS)) {
      const t = tagText(tag, call, errors);
      if (t) out.push([k, t]);
    }
  }
  return out;
}

const tagSessid: ApiCall = {
  name: 'tag_sessid',
  async run(arg, c) {
    const t = table(c);
    for (const [id, tag] of tagPairs(arg, 'tag_sessid', c.errors)) {
      if (!isSessionId(id)) {
        c.errors.push(`tag_sessid: ${id.slice(0, 80)} is not a session id`);
        continue;
      }
      const known = t.tagSession(id, tag);
      // the workers carry it into USER_END and the access log line
      const answers = (await c.host.workers?.broadcast({ op: 'tag_session', id, tag })) ?? [];
      if (!known && !answers.some((a) => (a as { tagged?: unknown })?.tagged === true)) c.errors.push(`tag_sessid: no session ${id}`);
    }
  },
};

const tagStream: ApiCall = {
  name: 'tag_stream',
  run(arg, c) {
    const t = table(c);
    for (const [stream, tag] of tagPairs(arg, 'tag_stream', c.errors)) t.tagStream(stream, tag);
  },
};

const untagStream: ApiCall = {
  name: 'untag_stream',
  run(arg, c) {
    const t = table(c);
    for (const [stream, tag] of tagPairs(arg, 'untag_stream', c.errors)) t.untagStream(stream, tag);
  },
};

const streamTags: ApiCall = {
  name: 'stream_tags',
  run(arg, c) {
    const t = table(c);
    const names = typeof arg === 'string' ? [arg] : Array.isArray(arg) ? arg.filter((x): x is string => typeof x === 'string') : [...t.streamTags.keys()];
    return { stream_tags: Object.fromEntries(names.map((n) => [n, [...(t.streamTags.get(n) ?? [])]])) };
  },
};

/** Ends every session with the tag, and every session of a stream with the tag. */
const stopTag: ApiCall = {
  name: 'stop_tag',
  async run(arg, c) {
    const t = table(c);
    const tags = (Array.isArray(arg) ? arg : [arg]).slice(0, MAX_ITEMS).map((x) => tagText(x, 'stop_tag', c.errors)).filter((x): x is string => x !== undefined);
    if (tags.length === 0) return;
    const ids = [...t.live.values()].filter((s) => tags.some((tag) => s.tags.has(tag) || t.streamTags.get(s.stream)?.has(tag))).map((s) => s.id);
    const viewers = ids.filter((id) => /^[0-9a-f]{64}$/.test(id));
    if (viewers.length && c.host.workers) await c.host.workers.broadcast({ op: 'stop_sessid', ids: viewers });
    return { stop_tag: { sessions: viewers.length } };
  },
};

export const STATS_CALLS: readonly ApiCall[] = [queryCall('clients', clientsQuery), queryCall('totals', totalsQuery), statsStreams, tagSessid, tagStream, untagStream, streamTags, stopTag];
