// Triggers fired by a worker (reference §4): the dispatcher reads `config.triggers` from the
// effective config, so triggers keep working while the controller is down. The viewer gate runs
// USER_NEW once per session (stream + client + token, reference §7.1) and keeps its decision for
// the session's life (at most 600 s, as MistServer's denied sessions), so an HLS player's many
// requests cost one handler call.

import { TriggerDispatcher } from '../triggers/dispatch.js';
import { compileTriggers } from '../triggers/trigger-config.js';
import type { Logger } from '../util/log.js';
import type { ConfigView } from './config-view.js';

/** How long a USER_NEW decision is kept for its session. */
const SESSION_DECISION_MS = 600_000;
/** Sessions remembered at most (the oldest decision goes first). */
const MAX_SESSIONS = 100_000;

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

export interface ViewerRequest {
  stream: string;
  host: string;
  token: string;
  /** MistServer's connector name (HLS, CMAF, FLV, MP4, RTMP ...). */
  connector: string;
  requestUrl: string;
  sessionId: string;
}

export class ViewerGate {
  private readonly decisions = new Map<string, { allowed: boolean; untilMs: number }>();

  constructor(private readonly triggers: TriggerDispatcher) {}

  /** Whether the viewer may watch: USER_NEW for a new session, the session's decision after that. */
  async admit(v: ViewerRequest): Promise<boolean> {
    if (!this.triggers.hasHandlers('USER_NEW', v.stream)) return true;
    const now = Date.now();
    const known = this.decisions.get(v.sessionId);
    if (known && known.untilMs > now) return known.allowed;
    const outcome = await this.triggers.fire('USER_NEW', v.stream, {
      stream: v.stream,
      host: v.host,
      token: v.token,
      connector: v.connector,
      requestUrl: v.requestUrl,
      sessionId: v.sessionId,
      tokenValid: 'false',
    });
    if (this.decisions.size >= MAX_SESSIONS) this.decisions.delete(this.decisions.keys().next().value!);
    this.decisions.set(v.sessionId, { allowed: outcome.allowed, untilMs: now + SESSION_DECISION_MS });
    return outcome.allowed;
  }
}
