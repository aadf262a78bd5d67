// Triggers fired by a worker (reference §4): the dispatcher reads `config.triggers` from the
// effective config, so triggers keep working while the controller is down. The viewer gate runs
// USER_NEW once per session (stream + client + token, reference §7.1) and keeps its decision for
// the session's life (at most 600 s, as MistServer's denied sessions), so an HLS player's many
// requests cost one handler call. A session's requests reach every worker: the decision is
// shared through a file per session in the run folder (MistServer keeps one session process).

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { TriggerDispatcher } from '../triggers/dispatch.js';
import { compileTriggers } from '../triggers/trigger-config.js';
import type { Logger } from '../util/log.js';
import type { ConfigView } from './config-view.js';
import type { ViewerAdmission } from '../outputs/access-route.js';

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
  });
}


export class ViewerGate {
  private readonly decisions = new Map<string, { allowed: boolean; untilMs: number }>();
  private readonly pruner: NodeJS.Timeout;

  /** `dir`: the run folder's sessions directory, shared by the workers. */
  constructor(
    private readonly triggers: TriggerDispatcher,
    private readonly dir: string,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.pruner = setInterval(() => void this.prune(), PRUNE_MS);
    this.pruner.unref();
  }

  close(): void {
    clearInterval(this.pruner);
  }

  /** Another worker's decision for the session, if it is recent enough. */
  private async shared(sessionId: string, now: number): Promise<{ allowed: boolean; untilMs: number } | undefined> {
    try {
      const file = path.join(this.dir, sessionId);
      const [text, st] = await Promise.all([fsp.readFile(file, 'latin1'), fsp.stat(file)]);
      const untilMs = st.mtimeMs + SESSION_DECISION_MS;
      return untilMs > now && (text === '1' || text === '0') ? { allowed: text === '1', untilMs } : undefined;
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
    if (!this.triggers.hasHandlers('USER_NEW', v.stream)) return true;
    const now = Date.now();
    if (!/^[0-9a-f]{64}$/.test(v.sessionId)) return false;
    const known = this.decisions.get(v.sessionId) ?? (await this.shared(v.sessionId, now));
    if (known && known.untilMs > now) {
      this.remember(v.sessionId, known);
      return known.allowed;
    }
    const outcome = await this.triggers.fire('USER_NEW', v.stream, {
      stream: v.stream,
      host: v.host,
      token: v.token,
      connector: v.connector,
      requestUrl: v.requestUrl,
      sessionId: v.sessionId,
      tokenValid: 'false',
    });
    this.remember(v.sessionId, { allowed: outcome.allowed, untilMs: now + SESSION_DECISION_MS });
    await this.share(v.sessionId, outcome.allowed);
    return outcome.allowed;
  }

  private remember(sessionId: string, d: { allowed: boolean; untilMs: number }): void {
    if (!this.decisions.has(sessionId) && this.decisions.size >= MAX_SESSIONS) this.decisions.delete(this.decisions.keys().next().value!);
    this.decisions.set(sessionId, d);
  }
}
