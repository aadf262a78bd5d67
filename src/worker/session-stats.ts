// A worker's statistics (reference §7.1; issue 6): every connection a protocol opens (viewers,
// publishers, pushes) joins its session in ViewerSessions, which merges the workers' shares and
// ends a session 15 s after its last connection. The worker that ends a session fires USER_END
// and writes its access log line, from one summary, so both agree; it also queues the finished
// session for the controller. The controller asks every second (the `stats` control operation)
// for the shares that changed and the finished sessions; a finished session leaves the queue
// only when a later request acknowledges it, so a controller killed in between gets it again.

import type { TriggerDispatcher } from '../triggers/dispatch.js';
import { addLogSink, type Logger } from '../util/log.js';
import { AccessLog, type FinishedSession } from '../stats/access-log.js';
import { sessionIdOf } from '../stats/session-id.js';
import { triggerFigures } from '../stats/trigger-figures.js';
import type { ConnectionTracker, TrackedConnection, TrackSpec } from '../stats/tracker.js';
import type { ConfigView } from './config-view.js';
import { fireUserEnd } from './viewer-access.js';
import type { SessionSummary, ViewerSessions } from './viewer-sessions.js';
import type { ReportedFinish, ReportedShare } from '../stats/session-table.js';
import type { WorkerControl } from './worker-control.js';

/** Finished sessions kept for the controller at most (it may be down); beyond, the oldest go. */
const MAX_FINISHED = 10_000;
/** Characters of a user agent kept in the `UA:` tag. */
const MAX_UA_CHARS = 200;
/** Log lines kept for the controller's `log` (its API and WebSocket feed). */
const MAX_LOG_LINES = 100;

/** A log line of this worker: [sequence, unix s, kind, message, stream]. */
export type WorkerLogLine = [number, number, string, string, string];

/** The answer of the `stats` operation. */
export interface StatsReport {
  worker: number;
  pid: number;
  /** When this worker process started (a new one starts its sequence anew). */
  startedMs: number;
  sessions: ReportedShare[];
  finished: ReportedFinish[];
  triggers: ReturnType<typeof triggerFigures>;
  /** Log lines after the one the request named. */
  logs: WorkerLogLine[];
}

/** What the access log and the controller keep of a finished session. */
function finishedSession(s: SessionSummary): FinishedSession {
  return {
    sessionId: s.sessionId,
    stream: s.stream,
    connectors: [...s.connectorSeconds.keys()].join(','),
    host: [...s.hostSeconds.keys()].join(',') || s.host,
    durationS: s.durationS,
    bytesUp: s.bytesUp,
    bytesDown: s.bytesDown,
    tags: s.tags,
    endMs: s.endMs,
  };
}

export class SessionStats implements ConnectionTracker {
  private readonly finished: ReportedFinish[] = [];
  private seq = 0;
  private droppedFinished = 0;
  private readonly startedMs = Date.now();
  private readonly logLines: WorkerLogLine[] = [];
  private logSeq = 0;
  readonly accessLog: AccessLog;

  constructor(
    private readonly opts: {
      worker: number;
      sessions: ViewerSessions;
      triggers: TriggerDispatcher;
      config: ConfigView;
      log: Logger;
      /** Told of each connection opened (the worker's per-stream counters); returns what ends it. */
      onOpen?: (spec: TrackSpec) => (() => void) | undefined;
    },
  ) {
    this.accessLog = new AccessLog(() => {
      const v = opts.config.get().config?.['accesslog'];
      return typeof v === 'string' ? v : 'LOG';
    }, opts.log.child({ proc: 'access' }));
    addLogSink((level, message, context) => {
      if (level === 'debug') return;
      const stream = typeof context['stream'] === 'string' ? context['stream'] : '';
      this.logLines.push([++this.logSeq, Math.floor(Date.now() / 1000), level.toUpperCase(), message, stream]);
      if (this.logLines.length > MAX_LOG_LINES) this.logLines.shift();
    });
  }

  open(spec: TrackSpec): TrackedConnection {
    const sessionId = sessionIdOf(spec.kind, spec.stream, spec.host, spec.token, spec.connector);
    const tags = [...(spec.userAgent ? [`UA:${spec.userAgent.slice(0, MAX_UA_CHARS)}`] : []), ...(spec.tags ?? [])];
    const conn = this.opts.sessions.connect(
      { sessionId, stream: spec.stream, host: spec.host, token: spec.token, connector: spec.connector, kind: spec.kind, tags },
      () => spec.bytes(),
      spec.progress ? () => spec.progress!() : undefined,
    );
    const counted = this.opts.onOpen?.(spec);
    return {
      sessionId,
      end: () => {
        conn.end();
        counted?.();
      },
    };
  }

  /** ViewerSessions' onEnd: USER_END, the access log line, and the controller's queue. */
  readonly ended = (s: SessionSummary): void => {
    if (s.kind === 'viewer') fireUserEnd(this.opts.triggers, s);
    const f = finishedSession(s);
    this.accessLog.write(f);
    if (this.finished.length >= MAX_FINISHED) {
      this.finished.shift();
      if (this.droppedFinished++ === 0) this.opts.log.warn(`the controller has not collected ${MAX_FINISHED} finished sessions; the oldest are dropped (the access log has them)`);
    }
    this.finished.push({ ...f, seq: ++this.seq, kind: s.kind, token: s.token, startMs: s.startMs });
  };

  /**
   * The shares that had a connection since `sinceMs` (all with 0, plus the other workers' shares
   * of the sessions this worker owns) and the finished sessions after `ack`.
   */
  async report(sinceMs: number, ack: number, logsAfter = 0): Promise<StatsReport> {
    while (this.finished.length > 0 && this.finished[0]!.seq <= ack) this.finished.shift();
    if (this.finished.length === 0) this.droppedFinished = 0;
    return {
      worker: this.opts.worker,
      pid: process.pid,
      startedMs: this.startedMs,
      sessions: await this.opts.sessions.report(sinceMs, sinceMs === 0),
      finished: this.finished.slice(),
      triggers: triggerFigures(),
      logs: this.logLines.filter((l) => l[0] > logsAfter),
    };
  }

  register(control: WorkerControl): void {
    control.on('stats', (args) => {
      const since = typeof args['since'] === 'number' ? args['since'] : 0;
      // an acknowledgement meant for an earlier process of this worker acknowledges nothing here
      const ack = typeof args['ack'] === 'number' && args['ackStartedMs'] === this.startedMs ? args['ack'] : 0;
      const logsAfter = typeof args['logsAfter'] === 'number' && args['logStartedMs'] === this.startedMs ? args['logsAfter'] : 0;
      return this.report(since, ack, logsAfter);
    });
    control.on('tag_session', (args) => {
      const id = args['id'];
      const tag = args['tag'];
      if (typeof id !== 'string' || typeof tag !== 'string' || !tag) return { error: 'tag_session: id and tag must be strings' };
      return { tagged: this.opts.sessions.tag(id, tag) };
    });
  }
}
