// Session control in a worker (reference §3.3 `stop_sessions`, `stop_sessid`,
// `invalidate_sessions`; §7.1): the controller sends each command to every worker, and each acts
// on what it serves:
// - stop_sessions {targets: [{stream, connector?}]}: ends the matching viewer connections
//   (HTTP progressive, RTMP play) and refuses the current sessions' further requests (the
//   decision is stored like a USER_NEW refusal, so an HLS/CMAF player is refused at its next
//   request); a session is current when it made a request in the last 20 s;
// - stop_sessid {ids}: the same for sessions by id;
// - invalidate_sessions {streams, atMs}: forgets the sessions' decisions so USER_NEW runs again
//   at their next request; sessions with a connection open now are re-checked at once (USER_NEW
//   with its first six fields, as MistServer's re-check) and their connections end when refused.
// A session is known to a worker from the requests it admitted (SessionDirectory); a session's
// requests may reach every worker, and every worker gets the command.

import type { ViewerAdmission } from '../outputs/access-route.js';
import type { Logger } from '../util/log.js';
import type { WorkerControl } from './worker-control.js';
import type { ViewerGate } from './worker-triggers.js';
import type { LiveViewer, WorkerStats } from './worker-stats.js';

/** Sessions remembered at most (the least recently seen goes first). */
const MAX_SESSIONS = 20_000;
/** Characters of a session's token and request URL kept (bounds a session's memory to a few KiB). */
const MAX_TEXT = 1024;
/** A session not seen for this long is forgotten (MistServer's session timeout). */
const SESSION_IDLE_MS = 600_000;
const PRUNE_MS = 60_000;
/**
 * A session counts as current (stop_sessions) when a request of it came this recently: MistServer
 * ends a session 15 s after its last connection; a segmented player asks every few seconds.
 */
const SESSION_CURRENT_MS = 20_000;
/** Connectors remembered per session. */
const MAX_CONNECTORS = 8;
/** USER_NEW re-checks run at once at most. */
const RECHECK_PARALLEL = 16;
/** Items of one command looked at. */
const MAX_ITEMS = 10_000;

export interface SessionInfo {
  sessionId: string;
  stream: string;
  host: string;
  token: string;
  tokenValid: boolean;
  /** The connector and URL of the session's latest request. */
  connector: string;
  requestUrl: string;
  connectors: Set<string>;
  lastMs: number;
}

/** The viewer sessions a worker admitted requests of recently, bounded. */
export class SessionDirectory {
  private readonly sessions = new Map<string, SessionInfo>();
  /** `stream \n connector \n host` -> the latest session admitted for them. */
  private readonly latest = new Map<string, string>();
  private readonly pruner: NodeJS.Timeout;

  constructor() {
    this.pruner = setInterval(() => this.prune(Date.now()), PRUNE_MS);
    this.pruner.unref();
  }

  close(): void {
    clearInterval(this.pruner);
  }

  /** Records an admitted request; true when the session is new to this worker. */
  note(v: ViewerAdmission, nowMs = Date.now()): boolean {
    let s = this.sessions.get(v.sessionId);
    const fresh = s === undefined;
    if (s) this.sessions.delete(v.sessionId);
    else {
      if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
      s = { sessionId: v.sessionId, stream: v.stream, host: v.host, token: v.token.slice(0, MAX_TEXT), tokenValid: v.tokenValid === true, connector: v.connector, requestUrl: '', connectors: new Set(), lastMs: nowMs };
    }
    s.connector = v.connector;
    s.requestUrl = v.requestUrl.slice(0, MAX_TEXT);
    s.lastMs = nowMs;
    if (s.connectors.size < MAX_CONNECTORS) s.connectors.add(v.connector);
    this.sessions.set(v.sessionId, s);
    const key = `${v.stream}\n${v.connector}\n${v.host}`;
    this.latest.delete(key);
    if (this.latest.size >= MAX_SESSIONS) this.latest.delete(this.latest.keys().next().value!);
    this.latest.set(key, v.sessionId);
    return fresh;
  }

  get(sessionId: string): SessionInfo | undefined {
    return this.sessions.get(sessionId);
  }

  /** The session last admitted for a stream, connector and client address. */
  lastSession(stream: string, connector: string, host: string): string | undefined {
    return this.latest.get(`${stream}\n${connector}\n${host}`);
  }

  /** Sessions of `stream`, those that used `connector` when one is given (any case), seen since `sinceMs`. */
  matching(stream: string, connector?: string, sinceMs = 0): SessionInfo[] {
    const want = connector?.toUpperCase();
    const out: SessionInfo[] = [];
    for (const s of this.sessions.values()) {
      if (s.stream !== stream || s.lastMs < sinceMs) continue;
      if (want !== undefined && ![...s.connectors].some((c) => c.toUpperCase() === want)) continue;
      out.push(s);
    }
    return out;
  }

  get size(): number {
    return this.sessions.size;
  }

  prune(nowMs: number): void {
    for (const [id, s] of this.sessions) {
      if (nowMs - s.lastMs <= SESSION_IDLE_MS) break; // oldest first: the rest are newer
      this.sessions.delete(id);
    }
    for (const [key, id] of this.latest) if (!this.sessions.has(id)) this.latest.delete(key);
  }
}

export interface SessionControlDeps {
  gate: ViewerGate;
  stats: WorkerStats;
  directory: SessionDirectory;
  log: Logger;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v.slice(0, MAX_ITEMS) : [];
}

const sameConnector = (a: string, b: string): boolean => a.toUpperCase() === b.toUpperCase();

/** Registers the three session commands on the worker's control socket. */
export function registerSessionControl(control: WorkerControl, deps: SessionControlDeps): void {
  const { gate, stats, directory, log } = deps;

  /** Ends `viewers` and refuses their sessions and `sessions` from now on; answers the counts. */
  const stop = async (viewers: LiveViewer[], sessions: Map<string, string>, why: string): Promise<{ connections: number; sessions: number }> => {
    for (const v of viewers) if (v.session) sessions.set(v.session, v.stream);
    await Promise.all([...sessions].map(([id, stream]) => gate.deny(id, stream)));
    for (const v of viewers) v.close(why);
    if (viewers.length || sessions.size) log.info(`${why}: ${viewers.length} connection(s) ended, ${sessions.size} session(s) refused`);
    return { connections: viewers.length, sessions: sessions.size };
  };

  control.on('stop_sessions', async (args) => {
    const targets = list(args['targets']).filter((t): t is { stream: string; connector?: unknown } => typeof t === 'object' && t !== null && typeof (t as { stream?: unknown }).stream === 'string');
    const viewers: LiveViewer[] = [];
    const sessions = new Map<string, string>();
    for (const t of targets) {
      const connector = typeof t.connector === 'string' && t.connector ? t.connector : undefined;
      for (const v of stats.liveViewers()) if (v.stream === t.stream && (connector === undefined || sameConnector(connector, v.connector))) viewers.push(v);
      for (const s of directory.matching(t.stream, connector, Date.now() - SESSION_CURRENT_MS)) sessions.set(s.sessionId, s.stream);
    }
    return stop([...new Set(viewers)], sessions, 'stopped through the API (stop_sessions)');
  });

  control.on('stop_sessid', async (args) => {
    const ids = new Set(list(args['ids']).filter((x): x is string => typeof x === 'string' && /^[0-9a-f]{64}$/.test(x)));
    const viewers = [...stats.liveViewers()].filter((v) => v.session !== undefined && ids.has(v.session));
    const sessions = new Map<string, string>();
    for (const id of ids) sessions.set(id, directory.get(id)?.stream ?? viewers.find((v) => v.session === id)?.stream ?? '');
    return stop(viewers, sessions, 'stopped through the API (stop_sessid)');
  });

  control.on('invalidate_sessions', async (args) => {
    const streams = new Set(list(args['streams']).filter((x): x is string => typeof x === 'string'));
    const atMs = typeof args['atMs'] === 'number' ? args['atMs'] : Date.now();
    let forgotten = 0;
    for (const s of streams) forgotten += await gate.forget(s, atMs);
    // sessions playing now are asked again right away; their connections end if refused
    const live = new Map<string, LiveViewer[]>();
    for (const v of stats.liveViewers()) {
      if (!streams.has(v.stream) || !v.session) continue;
      const group = live.get(v.session);
      if (group) group.push(v);
      else live.set(v.session, [v]);
    }
    void recheck(live);
    return { forgotten, rechecking: live.size };
  });

  const recheck = async (live: Map<string, LiveViewer[]>): Promise<void> => {
    const queue = [...live];
    const worker = async (): Promise<void> => {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const [id, viewers] = item;
        const info = directory.get(id);
        if (!info || info.tokenValid) continue;
        try {
          if (!(await gate.recheck(info))) for (const v of viewers) v.close('refused by USER_NEW after invalidate_sessions');
        } catch (err) {
          log.warn(`re-check of session ${id.slice(0, 12)}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(RECHECK_PARALLEL, queue.length) }, worker));
  };
}
