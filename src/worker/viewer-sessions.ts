// Viewer sessions (reference/mistserver.md §7.1): the connections of one viewer (stream, client
// address, token: sessionViewerMode 14) merged into a session that ends 15 s after its last
// connection, with MistServer's USER_END fields. A session's connections reach every worker (an
// HLS player's requests are spread over them), while MistServer runs one MistSession process per
// session; here the worker that saw the session first owns it:
//
//   run/viewer-sessions/SESSIONID/owner        pid and worker index of the owner (created with O_EXCL)
//   run/viewer-sessions/SESSIONID/wN.json      worker N's share (bytes, connection-seconds, active
//                                              intervals, open connections), written by the
//                                              non-owners at most once a second while something
//                                              changes and every 5 s while a connection is open
//
// The owner keeps its own share in memory. When it has had no connection for 15 s it reads the
// other shares: a share with an open connection (and fresh) or recent activity puts the end off;
// otherwise it adds them up, removes the folder and reports the session's end. Each session has
// its own timers (no scan of all sessions); the sessions one worker tracks are capped. A
// non-owner whose owner died takes the session over (a rename of the owner file decides who).
// The same records carry the statistics (issue 6): each worker reports its share of every
// session it tracks to the controller (report()), which adds the shares up; inputs and outputs
// are sessions too (their ids carry MistServer's I/O prefix).

import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { isAlive } from '../util/run-dir.js';
import { isSessionId, type SessionKind } from '../stats/session-id.js';
import type { ReportedShare } from '../stats/session-table.js';
import type { ConnectionBytes, ConnectionProgress } from '../stats/tracker.js';

/** A session ends this long after its last connection (MistServer's STATS_DELAY). */
export const SESSION_END_MS = 15_000;
/** A non-owner writes its share at most this often while something changes... */
const FLUSH_MS = 1000;
/** ...and this often while it has a connection open (the owner's sign that the session lives). */
const HEARTBEAT_MS = 5000;
/** Sessions one worker tracks at most; beyond, new sessions are not tracked (logged once). */
const MAX_SESSIONS = 10_000;
/** Active intervals kept per share (the closest ones are merged beyond). */
const MAX_INTERVALS = 64;
/** Hosts, connectors and streams counted per share. */
const MAX_KEYS = 32;
/** Gaps up to this between two active intervals are merged (the next request of a player). */
const MERGE_GAP_MS = 1000;
/** Folders of sessions whose owner is gone and that saw nothing for this long are removed at start. */
const LEFTOVER_MS = 60_000;

/** What identifies a viewer session and where its first connection came from. */
export interface SessionIdentity {
  sessionId: string;
  stream: string;
  host: string;
  token: string;
  connector: string;
  /** Viewer unless said (inputs and outputs are sessions too). */
  kind?: SessionKind;
  /** Tags the session starts with (`UA:` the user agent). */
  tags?: readonly string[];
}

/** A connection's part in a session; end() is idempotent. */
export interface SessionConnection {
  end(): void;
}

/** A finished session, as USER_END reports it. */
export interface SessionSummary {
  sessionId: string;
  kind: SessionKind;
  /** The client address of the session's first connection. */
  host: string;
  /** When its first connection opened and its last one closed (unix ms). */
  startMs: number;
  endMs: number;
  /** The stream the session was opened for (the stream its triggers match). */
  stream: string;
  token: string;
  /** Seconds with at least one connection open. */
  durationS: number;
  bytesDown: number;
  bytesUp: number;
  /** Connection-seconds per host, connector and stream (MistServer counts each connection each second). */
  hostSeconds: ReadonlyMap<string, number>;
  connectorSeconds: ReadonlyMap<string, number>;
  streamSeconds: ReadonlyMap<string, number>;
  tags: readonly string[];
}

/** One worker's share of a session (the wN.json file). */
interface Share {
  active: number;
  lastActiveMs: number;
  bytesDown: number;
  bytesUp: number;
  hostMs: Record<string, number>;
  connectorMs: Record<string, number>;
  streamMs: Record<string, number>;
  intervals: [number, number][];
  tags?: string[];
}

interface OpenConnection {
  host: string;
  connector: string;
  stream: string;
  startMs: number;
  bytes: () => ConnectionBytes;
  progress: (() => ConnectionProgress) | undefined;
}

class LocalSession {
  /** undefined while the claim on the folder runs. */
  owner: boolean | undefined = undefined;
  readonly conns = new Set<OpenConnection>();
  bytesDown = 0;
  bytesUp = 0;
  readonly hostMs = new Map<string, number>();
  readonly connectorMs = new Map<string, number>();
  readonly streamMs = new Map<string, number>();
  readonly tags: Set<string>;
  readonly firstMs: number;
  packets: [number, number, number] = [0, 0, 0];
  intervals: [number, number][] = [];
  activeSinceMs = -1;
  lastActiveMs: number;
  idleTimer: NodeJS.Timeout | undefined;
  flushTimer: NodeJS.Timeout | undefined;
  flushAtMs = 0;
  flushing: Promise<void> | undefined;
  /** Set while the owner ends the session (its folder is being removed). */
  ending: Promise<void> | undefined;
  /** A predecessor with the same id that is still ending: the claim waits for it. */
  after: Promise<void> | undefined;

  constructor(
    readonly id: SessionIdentity,
    nowMs: number,
  ) {
    this.lastActiveMs = nowMs;
    this.firstMs = nowMs;
    this.tags = new Set(id.tags ?? []);
  }

  /** Forgets what the previous session with this id carried here (it ended meanwhile). */
  reset(): void {
    this.bytesDown = this.bytesUp = 0;
    this.hostMs.clear();
    this.connectorMs.clear();
    this.streamMs.clear();
    this.intervals = [];
    this.packets = [0, 0, 0];
  }
}

export interface ViewerSessionsOptions {
  /** The folder shared by the workers (run/viewer-sessions). */
  dir: string;
  /** This worker's index (names its share file). */
  worker: number;
  log: Logger;
  /** A session this worker owns ended (USER_END). */
  onEnd(summary: SessionSummary): void;
  endAfterMs?: number;
  maxSessions?: number;
  /** Share writes: soonest after a change, and the heartbeat while connected (tests shorten them). */
  flushMs?: number;
  heartbeatMs?: number;
}

function addMs(map: Map<string, number>, key: string, ms: number): void {
  if (!key) return;
  const had = map.get(key);
  if (had === undefined && map.size >= MAX_KEYS) return;
  map.set(key, (had ?? 0) + ms);
}

/** Adds [start, end] to sorted, disjoint intervals, merging small gaps; keeps at most MAX_INTERVALS. */
function addInterval(list: [number, number][], start: number, end: number): void {
  const last = list[list.length - 1];
  if (last && start - last[1] <= MERGE_GAP_MS) last[1] = Math.max(last[1], end);
  else list.push([start, end]);
  if (list.length > MAX_INTERVALS) {
    let best = 0;
    for (let i = 1; i < list.length - 1; i++) if (list[i + 1]![0] - list[i]![1] < list[best + 1]![0] - list[best]![1]) best = i;
    list[best]![1] = list[best + 1]![1];
    list.splice(best + 1, 1);
  }
}

/** Total length of the union of intervals from several workers. */
export function unionMs(lists: readonly (readonly [number, number][])[]): number {
  const all = lists.flat().sort((a, b) => a[0] - b[0]);
  let total = 0;
  let curStart = -1;
  let curEnd = -1;
  for (const [s, e] of all) {
    if (s > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = s;
      curEnd = e;
    } else if (e > curEnd) curEnd = e;
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}

function isShare(v: unknown): v is Share {
  const s = v as Share | null;
  return s !== null && typeof s === 'object' && typeof s.active === 'number' && typeof s.lastActiveMs === 'number' && typeof s.bytesDown === 'number' && typeof s.bytesUp === 'number' && Array.isArray(s.intervals);
}

const NO_CONNECTION: SessionConnection = Object.freeze({ end: () => {} });

export class ViewerSessions {
  private readonly sessions = new Map<string, LocalSession>();
  private readonly endAfterMs: number;
  private readonly maxSessions: number;
  private readonly flushMs: number;
  private readonly heartbeatMs: number;
  private readonly shareName: string;
  private warnedFull = false;
  private closed = false;

  constructor(private readonly opts: ViewerSessionsOptions) {
    this.endAfterMs = opts.endAfterMs ?? SESSION_END_MS;
    this.maxSessions = opts.maxSessions ?? MAX_SESSIONS;
    this.flushMs = opts.flushMs ?? FLUSH_MS;
    this.heartbeatMs = opts.heartbeatMs ?? HEARTBEAT_MS;
    this.shareName = `w${opts.worker}.json`;
  }

  /** Sessions this worker tracks now. */
  get size(): number {
    return this.sessions.size;
  }

  /** A connection of a viewer session opened; `bytes` is read when it ends and when the share is written. */
  connect(id: SessionIdentity, bytes: () => ConnectionBytes, progress?: () => ConnectionProgress): SessionConnection {
    if (this.closed || !isSessionId(id.sessionId)) return NO_CONNECTION;
    const now = Date.now();
    let s = this.sessions.get(id.sessionId);
    if (s?.ending) {
      // the owner is ending the previous session of this viewer: this is a new one
      const prev = s;
      s = undefined;
      this.sessions.delete(id.sessionId);
      s = this.create(id, now, prev.ending);
    } else if (!s) {
      if (this.sessions.size >= this.maxSessions) {
        if (!this.warnedFull) this.opts.log.warn(`tracking ${this.maxSessions} viewer sessions: new sessions are not tracked (no USER_END for them)`);
        this.warnedFull = true;
        return NO_CONNECTION;
      }
      s = this.create(id, now, undefined);
    }
    const session = s;
    if (session.idleTimer) {
      clearTimeout(session.idleTimer);
      session.idleTimer = undefined;
    }
    for (const t of id.tags ?? []) if (session.tags.size < MAX_KEYS) session.tags.add(t);
    const conn: OpenConnection = { host: id.host, connector: id.connector, stream: id.stream, startMs: now, bytes, progress };
    if (session.conns.size === 0) session.activeSinceMs = now;
    session.conns.add(conn);
    session.lastActiveMs = now;
    this.changed(session);
    let ended = false;
    return {
      end: () => {
        if (ended) return;
        ended = true;
        this.disconnect(session, conn);
      },
    };
  }

  /** Adds a tag to a session this worker tracks (tag_sessid); false when it tracks none by that id. */
  tag(sessionId: string, tag: string): boolean {
    const s = this.sessions.get(sessionId);
    if (!s || s.tags.size >= MAX_KEYS) return false;
    s.tags.add(tag);
    this.changed(s);
    return true;
  }

  /** The sessions this worker tracks with a tag, or of a stream. */
  sessionIds(match: (id: SessionIdentity, tags: ReadonlySet<string>) => boolean): string[] {
    return [...this.sessions.values()].filter((s) => match(s.id, s.tags)).map((s) => s.id.sessionId);
  }

  /**
   * This worker's share of each session it tracks that had a connection open since `sinceMs`
   * (every session with 0). `withDisk`: an owner adds the shares the other workers wrote to the
   * session's folder (a restarted controller learns the parts of idle contributors that way).
   */
  async report(sinceMs: number, withDisk: boolean): Promise<ReportedShare[]> {
    const now = Date.now();
    const out: ReportedShare[] = [];
    for (const s of this.sessions.values()) {
      if (s.conns.size === 0 && s.lastActiveMs < sinceMs) continue;
      // (what share() writes, without its per-key maps: this runs for every session each second)
      let down = s.bytesDown;
      let up = s.bytesUp;
      let activeMs = s.activeSinceMs >= 0 ? now - s.activeSinceMs : 0;
      for (const [from, to] of s.intervals) activeMs += to - from;
      let position: number | undefined;
      const packets: [number, number, number] = [...s.packets];
      const connectors: string[] = [];
      for (const c of s.conns) {
        const b = c.bytes();
        down += b.down;
        up += b.up;
        const p = c.progress?.();
        if (p?.positionMs !== undefined) position = Math.max(position ?? 0, p.positionMs);
        if (p?.packets) {
          packets[0] += p.packets.sent;
          packets[1] += p.packets.lost;
          packets[2] += p.packets.retrans;
        }
        if (!connectors.includes(c.connector)) connectors.push(c.connector);
      }
      for (const k of s.connectorMs.keys()) if (!connectors.includes(k)) connectors.push(k);
      const base = { id: s.id.sessionId, kind: s.id.kind ?? 'viewer', stream: s.id.stream, host: s.id.host } as const;
      out.push({ ...base, owner: s.owner === true, open: s.conns.size, connectors, firstMs: s.firstMs, lastActiveMs: s.conns.size > 0 ? now : s.lastActiveMs, activeMs, down, up, positionMs: position, packets, tags: [...s.tags] });
      if (withDisk && s.owner === true) {
        for (const o of await this.otherShares(s)) {
          const x = o.share;
          out.push({ ...base, owner: false, open: 0, connectors: Object.keys(x.connectorMs ?? {}), firstMs: x.intervals[0]?.[0] ?? s.firstMs, lastActiveMs: x.lastActiveMs, activeMs: unionMs([x.intervals]), down: x.bytesDown, up: x.bytesUp, positionMs: undefined, packets: [0, 0, 0], tags: x.tags ?? [], worker: o.worker });
        }
      }
    }
    return out;
  }

  /** Stops the timers (the worker is stopping); sessions are not reported. */
  close(): void {
    this.closed = true;
    for (const s of this.sessions.values()) {
      clearTimeout(s.idleTimer);
      clearTimeout(s.flushTimer);
    }
    this.sessions.clear();
  }

  /** Removes the folders of sessions whose owner is gone and that saw nothing lately (a stopped server). */
  async removeLeftovers(): Promise<void> {
    const names = await fsp.readdir(this.opts.dir).catch(() => [] as string[]);
    const now = Date.now();
    for (const name of names) {
      if (this.sessions.has(name)) continue;
      const dir = path.join(this.opts.dir, name);
      const st = await fsp.stat(dir).catch(() => undefined);
      if (!st || now - st.mtimeMs < LEFTOVER_MS) continue;
      const owner = await this.ownerPid(dir);
      if (owner === undefined || !isAlive(owner)) await fsp.rm(dir, { recursive: true, force: true }).catch(() => {});
    }
  }

  private create(id: SessionIdentity, now: number, after: Promise<void> | undefined): LocalSession {
    const s = new LocalSession(id, now);
    s.after = after;
    this.sessions.set(id.sessionId, s);
    void this.claim(s, true);
    return s;
  }

  private dirOf(s: LocalSession): string {
    return path.join(this.opts.dir, s.id.sessionId);
  }

  /** Becomes the owner (first to create the owner file) or a contributor; `fresh` restores an earlier share of this worker. */
  private async claim(s: LocalSession, fresh: boolean): Promise<void> {
    if (s.after) await s.after;
    const dir = this.dirOf(s);
    try {
      await fsp.mkdir(dir, { recursive: true });
      await fsp.writeFile(path.join(dir, 'owner'), `${process.pid} ${this.opts.worker}\n`, { flag: 'wx' });
      s.owner = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        // no shared folder: the session is this worker's alone
        this.opts.log.warn(`viewer session ${s.id.sessionId.slice(0, 12)}: ${(err as Error).message}; tracked by this worker alone`);
        s.owner = true;
      } else {
        s.owner = false;
        if (fresh) await this.restore(s);
      }
    }
    if (this.sessions.get(s.id.sessionId) !== s) return;
    if (s.owner) {
      clearTimeout(s.flushTimer);
      s.flushTimer = undefined;
      if (s.conns.size === 0) this.armIdle(s, this.endAfterMs - (Date.now() - s.lastActiveMs));
    } else this.changed(s);
  }

  /** A contributor seen anew continues the totals it wrote before (its record was dropped when idle). */
  private async restore(s: LocalSession): Promise<void> {
    const earlier = await this.readShare(path.join(this.dirOf(s), this.shareName));
    if (!earlier) return;
    s.bytesDown += earlier.share.bytesDown;
    s.bytesUp += earlier.share.bytesUp;
    for (const [k, v] of Object.entries(earlier.share.hostMs ?? {})) addMs(s.hostMs, k, v);
    for (const [k, v] of Object.entries(earlier.share.connectorMs ?? {})) addMs(s.connectorMs, k, v);
    for (const [k, v] of Object.entries(earlier.share.streamMs ?? {})) addMs(s.streamMs, k, v);
    const mine = s.intervals;
    s.intervals = [];
    for (const [a, b] of [...earlier.share.intervals, ...mine].sort((x, y) => x[0] - y[0])) addInterval(s.intervals, a, b);
  }

  private disconnect(s: LocalSession, conn: OpenConnection): void {
    if (!s.conns.delete(conn)) return;
    const now = Date.now();
    const b = conn.bytes();
    s.bytesDown += b.down;
    s.bytesUp += b.up;
    const p = conn.progress?.().packets;
    if (p) {
      s.packets[0] += p.sent;
      s.packets[1] += p.lost;
      s.packets[2] += p.retrans;
    }
    const ms = now - conn.startMs;
    addMs(s.hostMs, conn.host, ms);
    addMs(s.connectorMs, conn.connector, ms);
    addMs(s.streamMs, conn.stream, ms);
    s.lastActiveMs = now;
    if (s.conns.size === 0) {
      addInterval(s.intervals, s.activeSinceMs, now);
      s.activeSinceMs = -1;
      this.armIdle(s, this.endAfterMs);
    }
    this.changed(s);
  }

  /** The share as of now: closed connections plus the open ones so far. */
  private share(s: LocalSession, now: number): Share {
    let bytesDown = s.bytesDown;
    let bytesUp = s.bytesUp;
    const hostMs = new Map(s.hostMs);
    const connectorMs = new Map(s.connectorMs);
    const streamMs = new Map(s.streamMs);
    for (const c of s.conns) {
      const b = c.bytes();
      bytesDown += b.down;
      bytesUp += b.up;
      addMs(hostMs, c.host, now - c.startMs);
      addMs(connectorMs, c.connector, now - c.startMs);
      addMs(streamMs, c.stream, now - c.startMs);
    }
    const intervals = s.intervals.map((i): [number, number] => [i[0], i[1]]);
    if (s.activeSinceMs >= 0) addInterval(intervals, s.activeSinceMs, now);
    return {
      active: s.conns.size,
      lastActiveMs: s.conns.size > 0 ? now : s.lastActiveMs,
      bytesDown,
      bytesUp,
      hostMs: Object.fromEntries(hostMs),
      connectorMs: Object.fromEntries(connectorMs),
      streamMs: Object.fromEntries(streamMs),
      intervals,
      tags: [...s.tags],
    };
  }

  /** Something changed: a contributor writes its share soon (owners keep theirs in memory). */
  private changed(s: LocalSession): void {
    if (s.owner === true || this.closed) return;
    this.scheduleFlush(s, this.flushMs);
  }

  /** Writes the share in `inMs` unless a write is due sooner already. */
  private scheduleFlush(s: LocalSession, inMs: number): void {
    const at = Date.now() + inMs;
    if (s.flushTimer) {
      if (s.flushAtMs <= at) return;
      clearTimeout(s.flushTimer);
    }
    s.flushAtMs = at;
    s.flushTimer = setTimeout(() => {
      s.flushTimer = undefined;
      void this.flush(s);
    }, inMs);
    s.flushTimer.unref();
  }

  private async flush(s: LocalSession): Promise<void> {
    if (s.owner !== false || this.sessions.get(s.id.sessionId) !== s) return;
    if (s.flushing) return s.flushing;
    s.flushing = this.writeShare(s).finally(() => (s.flushing = undefined));
    await s.flushing;
    // the owner learns that the session lives from a fresh share
    if (s.conns.size > 0 && !this.closed && this.sessions.get(s.id.sessionId) === s) this.scheduleFlush(s, this.heartbeatMs);
  }

  private async writeShare(s: LocalSession): Promise<void> {
    const file = path.join(this.dirOf(s), this.shareName);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      await fsp.writeFile(tmp, JSON.stringify(this.share(s, Date.now())));
      await fsp.rename(tmp, file);
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && this.sessions.get(s.id.sessionId) === s) {
        // the owner ended the session meanwhile: what happens now is a new session
        s.owner = undefined;
        s.reset();
        await this.claim(s, false);
      }
    }
  }

  private armIdle(s: LocalSession, inMs: number): void {
    clearTimeout(s.idleTimer);
    if (this.closed) return;
    s.idleTimer = setTimeout(() => {
      s.idleTimer = undefined;
      void this.onIdle(s);
    }, Math.max(50, inMs));
    s.idleTimer.unref();
  }

  private async onIdle(s: LocalSession): Promise<void> {
    if (this.sessions.get(s.id.sessionId) !== s || s.conns.size > 0) return;
    if (s.owner === undefined) return this.armIdle(s, 500);
    if (s.owner) return this.checkEnd(s);
    // a contributor: its share is written; the record goes (restored if the viewer comes back)
    clearTimeout(s.flushTimer);
    s.flushTimer = undefined;
    await this.flush(s);
    if (this.sessions.get(s.id.sessionId) !== s || s.conns.size > 0 || s.owner !== false) return;
    const dir = this.dirOf(s);
    const owner = await this.ownerPid(dir);
    if (owner !== undefined && !isAlive(owner) && (await this.takeOver(s, dir))) return this.checkEnd(s);
    this.sessions.delete(s.id.sessionId);
  }

  /** The owner died: whoever renames its owner file away first owns the session now. */
  private async takeOver(s: LocalSession, dir: string): Promise<boolean> {
    const ownerFile = path.join(dir, 'owner');
    const stale = `${ownerFile}.${process.pid}.stale`;
    try {
      await fsp.rename(ownerFile, stale);
      await fsp.rm(stale, { force: true });
      await fsp.writeFile(ownerFile, `${process.pid} ${this.opts.worker}\n`, { flag: 'wx' });
    } catch {
      return false;
    }
    this.opts.log.info(`viewer session ${s.id.sessionId.slice(0, 12)}: its owner is gone, taken over`);
    s.owner = true;
    // this worker's own share is now kept in memory (its file would be counted twice)
    await fsp.rm(path.join(dir, this.shareName), { force: true }).catch(() => {});
    return true;
  }

  private async ownerPid(dir: string): Promise<number | undefined> {
    try {
      const pid = Number((await fsp.readFile(path.join(dir, 'owner'), 'latin1')).split(' ')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  private async readShare(file: string): Promise<{ share: Share; mtimeMs: number } | undefined> {
    try {
      const [text, st] = await Promise.all([fsp.readFile(file, 'utf8'), fsp.stat(file)]);
      const share = JSON.parse(text) as unknown;
      return isShare(share) ? { share, mtimeMs: st.mtimeMs } : undefined;
    } catch {
      return undefined;
    }
  }

  /** The other workers' shares of a session this worker owns. */
  private async otherShares(s: LocalSession): Promise<{ share: Share; mtimeMs: number; worker: number }[]> {
    const dir = this.dirOf(s);
    const names = (await fsp.readdir(dir).catch(() => [] as string[])).filter((n) => /^w\d+\.json$/.test(n) && n !== this.shareName);
    const shares = await Promise.all(names.map(async (n) => ({ read: await this.readShare(path.join(dir, n)), worker: Number(n.slice(1, -5)) })));
    return shares.flatMap((x) => (x.read ? [{ ...x.read, worker: x.worker }] : []));
  }

  /** The owner has been idle for the end delay: ends the session unless another worker saw it lately. */
  private async checkEnd(s: LocalSession): Promise<void> {
    const others = await this.otherShares(s);
    if (this.sessions.get(s.id.sessionId) !== s || s.conns.size > 0) return;
    const now = Date.now();
    let lastSeen = s.lastActiveMs;
    let othersLive = false;
    for (const o of others) {
      // open connections count while their share is fresh (three heartbeats: its worker may have died)
      if (o.share.active > 0 && now - o.mtimeMs < 3 * this.heartbeatMs) othersLive = true;
      else lastSeen = Math.max(lastSeen, o.share.lastActiveMs);
    }
    if (othersLive) {
      // another worker has a connection open: look again after its next heartbeat
      this.armIdle(s, this.heartbeatMs + this.flushMs);
      return;
    }
    if (now - lastSeen < this.endAfterMs) {
      this.armIdle(s, lastSeen + this.endAfterMs - now);
      return;
    }
    const mine = this.share(s, now);
    const shares = [mine, ...others.map((o) => o.share)];
    const sum = (pick: (x: Share) => Record<string, number>): Map<string, number> => {
      const out = new Map<string, number>();
      for (const x of shares) for (const [k, v] of Object.entries(pick(x) ?? {})) if (typeof v === 'number') out.set(k, (out.get(k) ?? 0) + v);
      return new Map([...out.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([k, v]) => [k, Math.round(v / 1000)]));
    };
    const tags = new Set<string>();
    for (const x of shares) for (const t of x.tags ?? []) if (typeof t === 'string') tags.add(t);
    const starts = shares.flatMap((x) => x.intervals.map((i) => i[0]));
    const summary: SessionSummary = {
      sessionId: s.id.sessionId,
      kind: s.id.kind ?? 'viewer',
      host: s.id.host,
      startMs: Math.min(s.firstMs, ...starts),
      endMs: lastSeen,
      stream: s.id.stream,
      token: s.id.token,
      durationS: Math.round(unionMs(shares.map((x) => x.intervals)) / 1000),
      bytesDown: shares.reduce((a, x) => a + x.bytesDown, 0),
      bytesUp: shares.reduce((a, x) => a + x.bytesUp, 0),
      hostSeconds: sum((x) => x.hostMs),
      connectorSeconds: sum((x) => x.connectorMs),
      streamSeconds: sum((x) => x.streamMs),
      tags: [...tags],
    };
    s.ending = fsp.rm(this.dirOf(s), { recursive: true, force: true }).catch(() => {});
    await s.ending;
    if (this.sessions.get(s.id.sessionId) === s) this.sessions.delete(s.id.sessionId);
    try {
      this.opts.onEnd(summary);
    } catch (err) {
      this.opts.log.error(`viewer session end handler threw: ${(err as Error).message}`);
    }
  }
}
