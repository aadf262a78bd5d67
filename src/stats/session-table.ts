// The controller's statistics (reference §7.1, §7.3): the workers' shares of each session added
// up, the finished sessions, per-stream totals, and a per-second history of the last 600 s for
// `totals`. Pure: the collector (controller/stats-collector.ts) feeds it the workers' reports
// and saves its checkpoint; nothing here does I/O.
//
// A session's figures are the sum over workers of each worker's share; a share only grows, so a
// report that comes late or twice changes nothing (the larger one is kept). What survives a
// controller restart: the live sessions (the workers report them whole on the first request)
// and, through the checkpoint, the totals of finished sessions and which sessions were counted.

import type { SessionKind } from './session-id.js';
import type { AccessEntry, ByteCounts, PacketCounts, SessionCounts, StreamFigures } from './snapshot.js';

/** History kept (MistServer's STAT_CUTOFF). */
export const HISTORY_S = 600;
/** A session with no connection for this long is current no more (MistServer's 15 s). */
export const CURRENT_MS = 15_000;
/** A live session nobody reported for this long is dropped (its owner died with it). */
const LOST_MS = 60_000;
/** Finished sessions remembered: late reports of them are not a new session. */
const ENDED_MEMORY_MS = 120_000;
/** Finished sessions kept for the WebSocket API's history. */
const RECENT_ACCESSES = 100;
/** Sessions tracked at most; beyond, new ones are not (the workers still end and log them). */
const MAX_SESSIONS = 100_000;
/** Tags per session and per stream. */
const MAX_TAGS = 32;

/** One worker's share of a session as it reports it (ViewerSessions.report()). */
export interface ReportedShare {
  id: string;
  kind: SessionKind;
  stream: string;
  host: string;
  /** The reporting worker owns the session (ends it, writes its access log line). */
  owner: boolean;
  /** Connections open there now, and the connectors of the share (open ones first). */
  open: number;
  connectors: string[];
  firstMs: number;
  lastActiveMs: number;
  /** Milliseconds with a connection open there. */
  activeMs: number;
  down: number;
  up: number;
  positionMs?: number | undefined;
  packets: [number, number, number];
  tags: string[];
  /** Whose share it is, when the reporting worker read it from another's file (full reports). */
  worker?: number;
}

/** A session a worker ended, numbered in the order it ended there (SessionStats). */
export interface ReportedFinish {
  seq: number;
  sessionId: string;
  kind: SessionKind;
  stream: string;
  connectors: string;
  host: string;
  token: string;
  durationS: number;
  bytesUp: number;
  bytesDown: number;
  tags: readonly string[];
  startMs: number;
  endMs: number;
}

interface Share {
  down: number;
  up: number;
  activeMs: number;
  open: number;
  lastActiveMs: number;
  positionMs: number | undefined;
  packets: [number, number, number];
}

export interface LiveSession extends Pick<ReportedShare, 'id' | 'kind' | 'stream' | 'host'> {
  connectors: string[];
  tags: Set<string>;
  firstMs: number;
  lastActiveMs: number;
  shares: Map<number, Share>;
  /** Sums of the shares, and the bytes per second over the last tick. */
  down: number;
  up: number;
  downbps: number;
  upbps: number;
  /** The sums at the last tick (-1 before the first). */
  prevDown: number;
  prevUp: number;
  open: number;
  activeMs: number;
  positionMs: number | undefined;
  packets: [number, number, number];
  lastSeenMs: number;
}

/** Figures of finished sessions per stream (and what the checkpoint keeps). */
interface StreamTotals {
  viewers: number;
  inputs: number;
  outputs: number;
  unspecified: number;
  down: number;
  up: number;
  viewMs: number;
  packets: [number, number, number];
}

/** One second of history: per (kind, stream, connector) the sessions current and their rates. */
interface HistoryRow {
  kind: SessionKind;
  stream: string;
  connector: string;
  count: number;
  downbps: number;
  upbps: number;
  packets: [number, number, number];
}

interface HistorySecond {
  t: number;
  rows: HistoryRow[];
}

/** What the checkpoint file holds (controller/stats-collector.ts writes it atomically). */
export interface TableCheckpoint {
  savedMs: number;
  streams: Record<string, StreamTotals>;
  /** Sessions already counted in the totals (live ones: not counted again after a restart). */
  counted: string[];
  /** Ended sessions still remembered, id → end ms. */
  ended: [string, number][];
  streamTags: Record<string, string[]>;
  /** Per worker: the process the acknowledged sequence belongs to and the sequence. */
  acks: Record<string, { startedMs: number; seq: number }>;
}

const emptyTotals = (): StreamTotals => ({ viewers: 0, inputs: 0, outputs: 0, unspecified: 0, down: 0, up: 0, viewMs: 0, packets: [0, 0, 0] });
const KIND_KEY: Record<SessionKind, 'viewers' | 'inputs' | 'outputs' | 'unspecified'> = { viewer: 'viewers', input: 'inputs', output: 'outputs', unspecified: 'unspecified' };

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

export class SessionTable {
  readonly live = new Map<string, LiveSession>();
  /** Finished sessions' totals per stream, plus the live sessions counted (viewers etc. ever). */
  private readonly totals = new Map<string, StreamTotals>();
  private readonly counted = new Set<string>();
  private readonly ended = new Map<string, number>();
  private readonly history: HistorySecond[] = [];
  readonly recentAccesses: AccessEntry[] = [];
  readonly streamTags = new Map<string, Set<string>>();
  /** Acknowledged finish sequence per worker (what the checkpoint made durable). */
  readonly acks = new Map<number, { startedMs: number; seq: number }>();
  /** Told of each finished session (the WebSocket API's `access`). */
  onAccess: ((entry: AccessEntry) => void) | undefined;
  private warnedFull = false;

  constructor(checkpoint?: TableCheckpoint) {
    if (checkpoint) this.restore(checkpoint);
  }

  private streamTotals(stream: string): StreamTotals {
    let t = this.totals.get(stream);
    if (!t) this.totals.set(stream, (t = emptyTotals()));
    return t;
  }

  /** A worker's report: its shares of the live sessions. */
  ingestShares(worker: number, shares: readonly ReportedShare[], nowMs: number): void {
    for (const r of shares) {
      if (typeof r?.id !== 'string') continue;
      const endedAt = this.ended.get(r.id);
      if (endedAt !== undefined) {
        if (num(r.lastActiveMs) <= endedAt) continue;
        this.ended.delete(r.id);
      }
      let s = this.live.get(r.id);
      if (!s) {
        if (this.live.size >= MAX_SESSIONS) {
          this.warnedFull = true;
          continue;
        }
        s = {
          id: r.id,
          kind: r.kind,
          stream: r.stream,
          host: r.host,
          connectors: [],
          tags: new Set(),
          firstMs: num(r.firstMs) || nowMs,
          lastActiveMs: 0,
          shares: new Map(),
          down: 0,
          up: 0,
          downbps: 0,
          upbps: 0,
          prevDown: -1,
          prevUp: -1,
          open: 0,
          activeMs: 0,
          positionMs: undefined,
          packets: [0, 0, 0],
          lastSeenMs: nowMs,
        };
        this.live.set(r.id, s);
        if (!this.counted.has(r.id)) {
          this.counted.add(r.id);
          this.streamTotals(r.stream)[KIND_KEY[r.kind] ?? 'unspecified']++;
        }
      }
      const key = typeof r.worker === 'number' ? r.worker : worker;
      const had = s.shares.get(key);
      // shares only grow: an older copy (read from disk, or late) does not replace a newer one
      if (had && key !== worker && num(r.down) < had.down) continue;
      s.shares.set(key, { down: num(r.down), up: num(r.up), activeMs: num(r.activeMs), open: key === worker ? num(r.open) : 0, lastActiveMs: num(r.lastActiveMs), positionMs: r.positionMs, packets: Array.isArray(r.packets) ? [num(r.packets[0]), num(r.packets[1]), num(r.packets[2])] : [0, 0, 0] });
      for (const c of r.connectors ?? []) if (typeof c === 'string' && !s.connectors.includes(c) && s.connectors.length < MAX_TAGS) s.connectors.push(c);
      for (const t of r.tags ?? []) if (typeof t === 'string' && s.tags.size < MAX_TAGS) s.tags.add(t);
      s.firstMs = Math.min(s.firstMs, num(r.firstMs) || s.firstMs);
      s.lastActiveMs = Math.max(s.lastActiveMs, num(r.lastActiveMs));
      s.lastSeenMs = nowMs;
      this.sum(s);
    }
  }

  private sum(s: LiveSession): void {
    let down = 0;
    let up = 0;
    let open = 0;
    let activeMs = 0;
    let position: number | undefined;
    const packets: [number, number, number] = [0, 0, 0];
    for (const x of s.shares.values()) {
      down += x.down;
      up += x.up;
      open += x.open;
      activeMs = Math.max(activeMs, x.activeMs);
      if (x.positionMs !== undefined) position = Math.max(position ?? 0, x.positionMs);
      for (let i = 0; i < 3; i++) packets[i]! += x.packets[i]!;
    }
    s.down = down;
    s.up = up;
    s.open = open;
    s.activeMs = activeMs;
    s.positionMs = position;
    s.packets = packets;
  }

  /**
   * A worker's finished sessions after what was acknowledged from it: each counts once (its
   * figures move from the live session to its stream's totals). Returns the last sequence taken.
   */
  ingestFinished(worker: number, startedMs: number, finished: readonly ReportedFinish[], nowMs: number): number {
    let ack = this.acks.get(worker);
    if (!ack || ack.startedMs !== startedMs) {
      ack = { startedMs, seq: 0 };
      this.acks.set(worker, ack);
    }
    for (const f of finished) {
      if (typeof f?.seq !== 'number' || f.seq <= ack.seq) continue;
      ack.seq = f.seq;
      this.finish(f, nowMs);
    }
    return ack.seq;
  }

  private finish(f: ReportedFinish, nowMs: number): void {
    const live = this.live.get(f.sessionId);
    this.live.delete(f.sessionId);
    const t = this.streamTotals(f.stream);
    if (!this.counted.has(f.sessionId) && !live) t[KIND_KEY[f.kind] ?? 'unspecified']++;
    this.counted.delete(f.sessionId);
    t.down += num(f.bytesDown);
    t.up += num(f.bytesUp);
    if (f.kind === 'viewer') t.viewMs += num(f.durationS) * 1000;
    if (live) for (let i = 0; i < 3; i++) t.packets[i]! += live.packets[i]!;
    this.ended.set(f.sessionId, Math.max(num(f.endMs), live?.lastActiveMs ?? 0));
    const entry: AccessEntry = [Math.floor(num(f.endMs) / 1000) || Math.floor(nowMs / 1000), f.sessionId, f.stream, f.connectors, f.host, num(f.durationS), num(f.bytesUp), num(f.bytesDown), (f.tags ?? []).join(' ')];
    this.recentAccesses.push(entry);
    if (this.recentAccesses.length > RECENT_ACCESSES) this.recentAccesses.shift();
    this.onAccess?.(entry);
  }

  /** Once a second: rates, the history second, and the sessions whose worker is gone. */
  tick(nowMs: number, dtMs: number): void {
    const rows = new Map<string, HistoryRow>();
    for (const s of this.live.values()) {
      if (s.prevDown >= 0 && dtMs > 0) {
        s.downbps = Math.max(0, Math.round(((s.down - s.prevDown) * 1000) / dtMs));
        s.upbps = Math.max(0, Math.round(((s.up - s.prevUp) * 1000) / dtMs));
      }
      s.prevDown = s.down;
      s.prevUp = s.up;
      if (nowMs - s.lastSeenMs > LOST_MS && s.open === 0) {
        this.live.delete(s.id);
        this.counted.delete(s.id);
        const t = this.streamTotals(s.stream);
        t.down += s.down;
        t.up += s.up;
        if (s.kind === 'viewer') t.viewMs += s.activeMs;
        continue;
      }
      if (!this.isCurrent(s, nowMs)) continue;
      const connector = s.connectors[0] ?? '';
      const key = `${s.kind}\n${s.stream}\n${connector}`;
      let row = rows.get(key);
      if (!row) rows.set(key, (row = { kind: s.kind, stream: s.stream, connector, count: 0, downbps: 0, upbps: 0, packets: [0, 0, 0] }));
      row.count++;
      row.downbps += s.downbps;
      row.upbps += s.upbps;
      for (let i = 0; i < 3; i++) row.packets[i]! += s.packets[i]!;
    }
    for (const [id, at] of this.ended) if (nowMs - at > ENDED_MEMORY_MS) this.ended.delete(id);
    const t = Math.floor(nowMs / 1000);
    if (this.history.length > 0 && this.history[this.history.length - 1]!.t === t) this.history.pop();
    if (rows.size > 0) this.history.push({ t, rows: [...rows.values()] });
    while (this.history.length > 0 && this.history[0]!.t <= t - HISTORY_S) this.history.shift();
  }

  /** Viewers, outputs and unspecified count while they had data in the last 15 s; inputs within 2 s. */
  isCurrent(s: LiveSession, nowMs: number): boolean {
    if (s.open > 0) return true;
    return nowMs - s.lastActiveMs < (s.kind === 'input' ? 2000 : CURRENT_MS);
  }

  /** Whether sessions beyond the table's cap were left out (once). */
  takeFullWarning(): boolean {
    const w = this.warnedFull;
    this.warnedFull = false;
    return w;
  }

  // ---- figures ------------------------------------------------------------------------------

  /** Per stream: current and total sessions, bytes, view seconds, packets. */
  streamFigures(nowMs: number): Record<string, StreamFigures> {
    const out: Record<string, StreamFigures> = {};
    const fig = (stream: string): StreamFigures => {
      let f = out[stream];
      if (!f) {
        const t = this.totals.get(stream) ?? emptyTotals();
        f = out[stream] = {
          current: { viewers: 0, inputs: 0, outputs: 0, unspecified: 0 },
          total: { viewers: t.viewers, inputs: t.inputs, outputs: t.outputs },
          bytes: { up: t.up, down: t.down },
          viewSeconds: Math.round(t.viewMs / 1000),
          packets: { sent: t.packets[0], lost: t.packets[1], retrans: t.packets[2] },
          replicated: false,
        };
      }
      return f;
    };
    for (const stream of this.totals.keys()) fig(stream);
    const viewMs = new Map<string, number>();
    for (const s of this.live.values()) {
      const f = fig(s.stream);
      if (this.isCurrent(s, nowMs)) f.current[KIND_KEY[s.kind] ?? 'unspecified']++;
      // an input session tagged `replicated` (a dtsc:// pull from another server) marks its stream
      if (s.kind === 'input' && s.tags.has('replicated') && this.isCurrent(s, nowMs)) f.replicated = true;
      f.bytes.up += s.up;
      f.bytes.down += s.down;
      f.packets.sent += s.packets[0];
      f.packets.lost += s.packets[1];
      f.packets.retrans += s.packets[2];
      if (s.kind === 'viewer') viewMs.set(s.stream, (viewMs.get(s.stream) ?? 0) + s.activeMs);
    }
    for (const [stream, ms] of viewMs) out[stream]!.viewSeconds += Math.round(ms / 1000);
    return out;
  }

  /** Sums over the streams: current sessions, sessions ever, bytes, view seconds, packets, viewers per connector. */
  serverFigures(nowMs: number): { current: SessionCounts; total: SessionCounts; bytes: ByteCounts; viewSeconds: number; packets: PacketCounts; outputs: Record<string, number>; streams: Record<string, StreamFigures> } {
    const streams = this.streamFigures(nowMs);
    const current: SessionCounts = { viewers: 0, inputs: 0, outputs: 0, unspecified: 0 };
    const total: SessionCounts = { viewers: 0, inputs: 0, outputs: 0, unspecified: 0 };
    const bytes: ByteCounts = { up: 0, down: 0 };
    const packets: PacketCounts = { sent: 0, lost: 0, retrans: 0 };
    let viewSeconds = 0;
    for (const [name, f] of Object.entries(streams)) {
      for (const k of ['viewers', 'inputs', 'outputs', 'unspecified'] as const) current[k] += f.current[k];
      total.viewers += f.total.viewers;
      total.inputs += f.total.inputs;
      total.outputs += f.total.outputs;
      total.unspecified += this.totals.get(name)?.unspecified ?? 0;
      bytes.up += f.bytes.up;
      bytes.down += f.bytes.down;
      packets.sent += f.packets.sent;
      packets.lost += f.packets.lost;
      packets.retrans += f.packets.retrans;
      viewSeconds += f.viewSeconds;
    }
    const outputs: Record<string, number> = {};
    for (const s of this.live.values()) {
      if (s.kind !== 'viewer' || !this.isCurrent(s, nowMs)) continue;
      const c = s.connectors[0] ?? '';
      outputs[c] = (outputs[c] ?? 0) + 1;
    }
    return { current, total, bytes, viewSeconds, packets, outputs, streams };
  }

  /** The history seconds from `start` to `end` (unix s). */
  historyBetween(start: number, end: number): readonly HistorySecond[] {
    return this.history.filter((h) => h.t >= start && h.t <= end);
  }

  /** The oldest and newest second of history. */
  historySpan(): [number, number] | undefined {
    return this.history.length ? [this.history[0]!.t, this.history[this.history.length - 1]!.t] : undefined;
  }

  // ---- tags ---------------------------------------------------------------------------------

  tagSession(id: string, tag: string): boolean {
    const s = this.live.get(id);
    if (!s || s.tags.size >= MAX_TAGS) return false;
    s.tags.add(tag);
    return true;
  }

  tagStream(stream: string, tag: string): void {
    let set = this.streamTags.get(stream);
    if (!set) this.streamTags.set(stream, (set = new Set()));
    if (set.size < MAX_TAGS) set.add(tag);
  }

  untagStream(stream: string, tag: string): void {
    const set = this.streamTags.get(stream);
    set?.delete(tag);
    if (set?.size === 0) this.streamTags.delete(stream);
  }

  // ---- checkpoint ---------------------------------------------------------------------------

  checkpoint(nowMs: number): TableCheckpoint {
    return {
      savedMs: nowMs,
      streams: Object.fromEntries(this.totals),
      counted: [...this.counted],
      ended: [...this.ended],
      streamTags: Object.fromEntries([...this.streamTags].map(([k, v]) => [k, [...v]])),
      acks: Object.fromEntries([...this.acks].map(([k, v]) => [String(k), { ...v }])),
    };
  }

  private restore(c: TableCheckpoint): void {
    for (const [name, t] of Object.entries(c.streams ?? {})) {
      const x = emptyTotals();
      for (const k of ['viewers', 'inputs', 'outputs', 'unspecified', 'down', 'up', 'viewMs'] as const) x[k] = num(t?.[k]);
      if (Array.isArray(t?.packets)) x.packets = [num(t.packets[0]), num(t.packets[1]), num(t.packets[2])];
      this.totals.set(name, x);
    }
    for (const id of c.counted ?? []) if (typeof id === 'string') this.counted.add(id);
    for (const e of c.ended ?? []) if (Array.isArray(e) && typeof e[0] === 'string') this.ended.set(e[0], num(e[1]));
    for (const [stream, tags] of Object.entries(c.streamTags ?? {})) for (const t of Array.isArray(tags) ? tags : []) if (typeof t === 'string') this.tagStream(stream, t);
    for (const [w, a] of Object.entries(c.acks ?? {})) if (typeof a?.seq === 'number' && typeof a.startedMs === 'number') this.acks.set(Number(w), { startedMs: a.startedMs, seq: a.seq });
  }
}
