// Triggers fired by a worker (reference §4): the dispatcher reads `config.triggers` from the
// effective config, so triggers keep working while the controller is down. The viewer gate runs
// USER_NEW once per session (stream + client + token, reference §7.1) and keeps its decision for
// the session's life (at most 600 s, as MistServer's denied sessions), so an HLS player's many
// requests cost one handler call. A session's requests reach every worker: the decision is
// shared through a file per session in the run folder (MistServer keeps one session process).
// Session control (session-control.ts) stores refusals here too (stop_sessions, stop_sessid),
// forgets decisions (invalidate_sessions) and re-runs USER_NEW for live sessions; a viewer with
// a valid JWT token skips USER_NEW.

import { countTrigger } from '../stats/trigger-figures.js';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TriggerDispatcher } from '../triggers/dispatch.js';
import { compileTriggers } from '../triggers/trigger-config.js';
import type { Logger } from '../util/log.js';
import type { ConfigView } from './config-view.js';
import type { ViewerAdmission } from '../outputs/access-route.js';
import type { SessionDirectory, SessionInfo } from './session-control.js';

/** How long a USER_NEW decision is kept for its session. */
const SESSION_DECISION_MS = 600_000;
/** Sessions remembered at most (the oldest decision goes first). */
const MAX_SESSIONS = 100_000;
/** How often expired shared decisions are removed. */
const PRUNE_MS = 60_000;

export function workerTriggers(config: ConfigView, log: Logger): TriggerDispatcher {
  const setting = (key: string): string => {
    const v = config.get().config?.[key];
    return typeof v === 'string' ? v : '';
  };
  return new TriggerDispatcher({
    config: () => compileTriggers(config.get().config?.['triggers']),
    identity: () => ({ iid: setting('iid'), serverid: setting('serverid') }),
    logger: log,
    stat: countTrigger,
  });
}


/** A session's decision: `atMs` when it was made (invalidate_sessions drops older ones). */
interface Decision {
  allowed: boolean;
  untilMs: number;
  stream: string;
  atMs: number;
}

const SESSION_ID = /^[0-9a-f]{64}$/;

export class ViewerGate {
  private readonly decisions = new Map<string, Decision>();
  private readonly pruner: NodeJS.Timeout;

  /**
   * `dir`: the run folder's sessions directory, shared by the workers. `directory`: where the
   * admitted sessions are noted (session control); without it only USER_NEW decides.
   */
  constructor(
    private readonly triggers: TriggerDispatcher,
    private readonly dir: string,
    private readonly directory?: SessionDirectory,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.pruner = setInterval(() => void this.prune(), PRUNE_MS);
    this.pruner.unref();
  }

  close(): void {
    clearInterval(this.pruner);
  }

  /** Another worker's decision for the session, if it is recent enough. */
  private async shared(sessionId: string, stream: string, now: number): Promise<Decision | undefined> {
    try {
      const file = path.join(this.dir, sessionId);
      const [text, st] = await Promise.all([fsp.readFile(file, 'latin1'), fsp.stat(file)]);
      const untilMs = st.mtimeMs + SESSION_DECISION_MS;
      return untilMs > now && (text === '1' || text === '0') ? { allowed: text === '1', untilMs, stream, atMs: st.mtimeMs } : undefined;
    } catch {
      return undefined;
    }
  }

  private async share(sessionId: string, allowed: boolean): Promise<void> {
    const file = path.join(this.dir, sessionId);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      await fsp.writeFile(tmp, allowed ? '1' : '0');
      await fsp.rename(tmp, file);
    } catch {
      await fsp.rm(tmp, { force: true });
    }
  }

  /** Removes decisions older than a session's life. */
  private async prune(): Promise<void> {
    const now = Date.now();
    for (const name of await fsp.readdir(this.dir).catch(() => [] as string[])) {
      const file = path.join(this.dir, name);
      const st = await fsp.stat(file).catch(() => undefined);
      if (st && now - st.mtimeMs > SESSION_DECISION_MS) await fsp.rm(file, { force: true });
    }
  }

  /** Whether the viewer may watch: USER_NEW for a new session, the session's decision after that. */
  async admit(v: ViewerAdmission): Promise<boolean> {
    const firstSight = this.directory?.note(v) ?? false;
    const handlers = this.triggers.hasHandlers('USER_NEW', v.stream);
    // nothing to decide: no handler, no stored decision, a session this worker already checked
    if (!handlers && !firstSight && !this.decisions.has(v.sessionId)) return true;
    const now = Date.now();
    if (!SESSION_ID.test(v.sessionId)) return !handlers;
    let known = this.decisions.get(v.sessionId);
    // another worker's decision (a refusal by session control even without USER_NEW handlers)
    if (!(known && known.untilMs > now) && (handlers || firstSight)) known = await this.shared(v.sessionId, v.stream, now);
    if (known && known.untilMs > now) {
      this.remember(v.sessionId, known);
      return known.allowed;
    }
    if (!handlers || v.tokenValid) return true;
    const outcome = await this.triggers.fire('USER_NEW', v.stream, {
      stream: v.stream,
      host: v.host,
      token: v.token,
      connector: v.connector,
      requestUrl: v.requestUrl,
      sessionId: v.sessionId,
      tokenValid: 'false',
    });
    await this.decide(v.sessionId, v.stream, outcome.allowed, now);
    return outcome.allowed;
  }

  private async decide(sessionId: string, stream: string, allowed: boolean, now = Date.now()): Promise<void> {
    this.remember(sessionId, { allowed, untilMs: now + SESSION_DECISION_MS, stream, atMs: now });
    await this.share(sessionId, allowed);
  }

  /** Refuses a session for a session's life (stop_sessions, stop_sessid), on every worker through the shared file. */
  async deny(sessionId: string, stream: string): Promise<void> {
    if (!SESSION_ID.test(sessionId)) return;
    const known = stream || this.decisions.get(sessionId)?.stream;
    // a session this worker has not seen: the shared file tells it at its first request here
    if (known) await this.decide(sessionId, known, false);
    else await this.share(sessionId, false);
  }

  /**
   * Forgets the decisions about `stream`'s sessions made at or before `beforeMs`
   * (invalidate_sessions), here and in the shared files; answers how many.
   */
  async forget(stream: string, beforeMs: number): Promise<number> {
    const ids = new Set<string>();
    for (const [id, d] of this.decisions) {
      if (d.stream !== stream || d.atMs > beforeMs) continue;
      this.decisions.delete(id);
      ids.add(id);
    }
    for (const s of this.directory?.matching(stream) ?? []) ids.add(s.sessionId);
    for (const id of ids) {
      const file = path.join(this.dir, id);
      const st = await fsp.stat(file).catch(() => undefined);
      // a decision another worker made after the command stays
      if (st && st.mtimeMs <= beforeMs) await fsp.rm(file, { force: true });
    }
    return ids.size;
  }

  /**
   * USER_NEW again for a session playing now (after invalidate_sessions), with the first six
   * fields only, as MistServer's re-check; the answer is stored. True when still allowed.
   */
  async recheck(s: SessionInfo): Promise<boolean> {
    if (!SESSION_ID.test(s.sessionId) || !this.triggers.hasHandlers('USER_NEW', s.stream)) return true;
    const outcome = await this.triggers.fire('USER_NEW', s.stream, {
      stream: s.stream,
      host: s.host,
      token: s.token,
      connector: s.connector,
      requestUrl: s.requestUrl,
      sessionId: s.sessionId,
    });
    await this.decide(s.sessionId, s.stream, outcome.allowed);
    return outcome.allowed;
  }

  private remember(sessionId: string, d: Decision): void {
    if (!this.decisions.has(sessionId) && this.decisions.size >= MAX_SESSIONS) this.decisions.delete(this.decisions.keys().next().value!);
    this.decisions.set(sessionId, d);
  }
}
