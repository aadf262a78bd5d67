// The outgoing pushes and recordings a worker runs (reference/mistserver.md §5.5): the ones the
// API starts (push_start, sent here by the controller) and the automatic ones of the `auto_push`
// rules in the effective config, which this worker runs for the streams whose source it hosts.
// Automatic pushes therefore keep starting and ending while the controller is down. Every push
// asks PUSH_OUT_START first (its answer may replace the target; empty cancels) and reports
// PUSH_END, OUTPUT_END and, for files, RECORDING_END when it ends.

import type { StreamHub } from '../hub/stream-hub.js';
import { autoPushDecision, matchesStream, parseAutoPushRule, parsePushSettings, type AutoPushRule, type PushSettings } from '../pushes/auto-push.js';
import { startPush, type PushRunner, type PushStatus } from '../pushes/push-runner.js';
import { outputEndFields, type OutputEnd } from '../pushes/recording.js';
import type { TriggerDispatcher } from '../triggers/dispatch.js';
import type { TriggerPayload } from '../triggers/trigger-map.js';
import { errorText, HazeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { ConnectionTracker } from '../stats/tracker.js';
import type { ConfigView } from './config-view.js';
import type { HubManager } from './hub-manager.js';
import type { WorkerControl } from './worker-control.js';

/** Push ids are unique across workers: the worker's index times this, plus a counter. */
const IDS_PER_WORKER = 1_000_000;
/** Pushes one worker runs at most. */
const MAX_PUSHES = 1000;
/** How long a push started through the API waits for its stream to come online. */
const STREAM_WAIT_MS = 10_000;
/** An automatic push that failed is tried again after this long, doubling up to the maximum. */
const RETRY_FIRST_MS = 2_000;
const RETRY_MAX_MS = 60_000;
/** Auto-push rules are evaluated this often (MistServer: every second). */
const RULE_TICK_MS = 1_000;

/** One row of push_list: `[id, stream, originalTarget, actualTarget, last10logs, status]`. */
export type PushListRow = [number, string, string, string, string[], PushStatus | { state: string }];

interface RunningPush {
  id: number;
  stream: string;
  target: string;
  /** The auto-push rule that started it. */
  ruleId?: string;
  runner?: PushRunner;
  /** Set when stopped before the runner existed. */
  cancelled?: boolean;
}

export interface WorkerPushesOptions {
  worker: number;
  hubs: HubManager;
  config: ConfigView;
  triggers: TriggerDispatcher;
  /** The custom variables' current values (variable_add), names without `$`. */
  variables: () => Readonly<Record<string, string>>;
  /** A push of `stream` started (STREAM_END's total outputs). */
  onOutput?: (stream: string) => void;
  /** The statistics: each push is an output session (`OUTPUT:RTMP`, `OUTPUT:FILE` ...). */
  tracker?: ConnectionTracker;
  log: Logger;
}

/** An output session's host and connector: the target's host and scheme (a recording: this machine, FILE). */
function outputSession(target: string): { host: string; connector: string } {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(?:[^@/]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(target);
  if (!m || m[1]!.toLowerCase() === 'file') return { host: '127.0.0.1', connector: 'OUTPUT:FILE' };
  return { host: m[2]!.replace(/^\[|\]$/g, ''), connector: `OUTPUT:${m[1]!.toUpperCase()}` };
}

export class WorkerPushes {
  private readonly pushes = new Map<number, RunningPush>();
  private nextId = 1;
  private readonly timer: NodeJS.Timeout;
  /** Per (rule, stream): when an automatic push may be tried again, and the current delay. */
  private readonly retry = new Map<string, { atMs: number; delayMs: number }>();
  /** Rules with a scheduletime and no completetime run once (reference §5.5). */
  private readonly startedOnce = new Set<string>();
  /** When each hosted stream came online (push_settings.wait counts from there). */
  private readonly onlineSince = new Map<string, number>();
  private startsThisSecond = { second: 0, count: 0 };
  private closed = false;

  constructor(private readonly opts: WorkerPushesOptions) {
    opts.hubs.on('sourceOnline', ({ name }) => {
      this.onlineSince.set(name, Date.now());
      this.evaluateRules();
    });
    this.timer = setInterval(() => this.evaluateRules(), RULE_TICK_MS);
    this.timer.unref();
  }

  /** The controller's push operations on this worker. */
  register(control: WorkerControl): void {
    control.on('push_start', (a) => ({ id: this.start(String(a['stream'] ?? ''), String(a['target'] ?? '')) }));
    control.on('push_list', () => ({ pushes: this.list() }));
    control.on('push_stop', (a) => ({ stopped: this.stop(Array.isArray(a['ids']) ? a['ids'].map(Number) : [], Array.isArray(a['streams']) ? a['streams'].map(String) : []) }));
  }

  list(): PushListRow[] {
    return [...this.pushes.values()].map((p) => {
      const s = p.runner?.status();
      return [p.id, p.stream, p.target, s?.actualTarget ?? p.target, s?.logs ?? [], s ?? { state: 'starting' }];
    });
  }

  /** Stops the pushes with these ids and every push of these streams; returns the ids stopped. */
  stop(ids: readonly number[], streams: readonly string[]): number[] {
    const stopped: number[] = [];
    for (const p of this.pushes.values()) {
      if (!ids.includes(p.id) && !streams.includes(p.stream)) continue;
      this.stopOne(p, 'stopped through the API');
      stopped.push(p.id);
    }
    return stopped;
  }

  private stopOne(p: RunningPush, why: string): void {
    if (p.runner) void p.runner.stop(why);
    else p.cancelled = true;
  }

  /**
   * Starts a push of `stream` to `target` and returns its id at once; the push waits for the
   * stream to come online (up to 10 s) and ends with a reason if it does not.
   */
  start(stream: string, target: string, ruleId?: string, hub?: StreamHub): number {
    if (!stream || !target) throw new HazeError('HAZE_ERR_INVALID_ARG', 'push_start: stream and target are required');
    if (this.pushes.size >= MAX_PUSHES) throw new HazeError('HAZE_ERR_TOO_LARGE', `push_start: this worker already runs ${MAX_PUSHES} pushes`);
    if (!this.opts.hubs.isConfigured(stream)) throw new HazeError('HAZE_ERR_NOT_FOUND', `push_start: stream ${stream} is not configured`);
    const id = this.opts.worker * IDS_PER_WORKER + this.nextId++;
    const p: RunningPush = { id, stream, target, ...(ruleId ? { ruleId } : {}) };
    this.pushes.set(id, p);
    void this.run(p, hub);
    return id;
  }

  private async run(p: RunningPush, knownHub: StreamHub | undefined): Promise<void> {
    const log = this.opts.log;
    let target = p.target;
    const asked = await this.opts.triggers.fire('PUSH_OUT_START', p.stream, { stream: p.stream, target });
    if (asked.handled) target = asked.response.trim();
    let hub = knownHub;
    let failure: string | undefined;
    if (!target) failure = 'cancelled by PUSH_OUT_START';
    else if (!hub) {
      try {
        hub = await this.opts.hubs.forViewer(p.stream, STREAM_WAIT_MS);
      } catch (err) {
        failure = errorText(err);
      }
    }
    if (p.cancelled || failure || !hub || this.closed) {
      this.pushes.delete(p.id);
      const reason = p.cancelled ? 'stopped before it started' : (failure ?? 'worker stopping');
      log.warn(`push ${p.id} of ${p.stream} to ${p.target} not started: ${reason}`);
      void this.opts.triggers.fire('PUSH_END', p.stream, { pushId: String(p.id), stream: p.stream, originalTarget: p.target, actualTarget: target, logLines: JSON.stringify([reason]), status: JSON.stringify({ state: 'ended', lastError: reason }) });
      if (p.ruleId) this.noteFailure(p.ruleId, p.stream);
      return;
    }
    const runner = startPush({ hub, target, stream: p.stream, variables: this.opts.variables() });
    p.runner = runner;
    this.opts.onOutput?.(p.stream);
    const tracked = this.opts.tracker?.open({ ...outputSession(target), kind: 'output', stream: p.stream, token: '', requestUrl: target, bytes: () => ({ down: runner.status().bytes, up: 0 }), progress: () => ({ positionMs: Math.max(0, runner.status().lastMs) }) });
    log.info(`push ${p.id}: ${p.stream} to ${target}${target !== p.target ? ` (PUSH_OUT_START rewrote ${p.target})` : ''}${p.ruleId ? ` (auto-push ${p.ruleId})` : ''}`);
    const end = await runner.done;
    tracked?.end();
    this.pushes.delete(p.id);
    this.ended(p, runner, end);
  }

  private ended(p: RunningPush, runner: PushRunner, end: OutputEnd): void {
    const status = runner.status();
    this.opts.log.info(`push ${p.id} of ${p.stream} to ${end.actualTarget} ended: ${end.reason}: ${end.message}`);
    const t = this.opts.triggers;
    void t.fire('PUSH_END', p.stream, { pushId: String(p.id), stream: p.stream, originalTarget: p.target, actualTarget: end.actualTarget, logLines: JSON.stringify(status.logs), status: JSON.stringify(status) });
    const fields = outputEndFields(end);
    if (status.kind === 'file') void t.fire('RECORDING_END', p.stream, fields as TriggerPayload<'RECORDING_END'>);
    void t.fire('OUTPUT_END', p.stream, fields);
    if (!p.ruleId) return;
    if (end.reason === 'STREAM_END' || end.reason === 'STOPPED' || end.reason === 'CLEAN_END') this.retry.delete(`${p.ruleId}\n${p.stream}`);
    else this.noteFailure(p.ruleId, p.stream);
  }

  private noteFailure(ruleId: string, stream: string): void {
    const key = `${ruleId}\n${stream}`;
    const delayMs = Math.min(RETRY_MAX_MS, (this.retry.get(key)?.delayMs ?? RETRY_FIRST_MS / 2) * 2);
    this.retry.set(key, { atMs: Date.now() + delayMs, delayMs });
  }

  // ---- automatic pushes ----------------------------------------------------------------------

  private rules(): Map<string, AutoPushRule> {
    const raw = this.opts.config.get()['auto_push'];
    const out = new Map<string, AutoPushRule>();
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return out;
    for (const [id, r] of Object.entries(raw as Record<string, unknown>)) {
      try {
        out.set(id, parseAutoPushRule(r, { checkTarget: false }));
      } catch {
        // the controller validated it; a hand-edited bad rule is skipped
      }
    }
    return out;
  }

  private settings(): PushSettings {
    try {
      return parsePushSettings(this.opts.config.get()['push_settings']);
    } catch {
      return { wait: 0, maxspeed: 0 };
    }
  }

  /** The once-a-second pass: stops what its rule no longer wants, starts what it wants. */
  private evaluateRules(): void {
    if (this.closed) return;
    const rules = this.rules();
    const running = [...this.pushes.values()].filter((p) => p.ruleId !== undefined);
    if (rules.size === 0 && running.length === 0) return;
    const nowMs = Date.now();
    const custom = this.opts.variables();
    const lookup = (name: string): string | undefined => custom[name];
    const decisions = new Map([...rules].map(([id, r]) => [id, autoPushDecision(r, nowMs / 1000, lookup)] as const));
    for (const p of running) {
      const d = decisions.get(p.ruleId!);
      if (!d || d.mustStop) this.stopOne(p, d ? 'its auto-push rule ended it' : 'its auto-push rule was removed');
    }
    const { wait, maxspeed } = this.settings();
    for (const [name, { hub, local }] of this.opts.hubs.hubs) {
      if (!local || !hub.online || hub.isEnded) continue;
      if (nowMs - (this.onlineSince.get(name) ?? 0) < wait * 1000) continue;
      const tags = this.tagsOf(name);
      for (const [id, rule] of rules) {
        if (!decisions.get(id)!.mayStart || !matchesStream(rule, name, tags) || this.startedOnce.has(id)) continue;
        if (running.some((p) => p.ruleId === id && p.stream === name)) continue;
        if ((this.retry.get(`${id}\n${name}`)?.atMs ?? 0) > nowMs) continue;
        if (!this.mayStartNow(maxspeed, nowMs)) return;
        try {
          running.push(this.pushes.get(this.start(name, rule.target, id, hub))!);
          if (decisions.get(id)!.removeAfterStart) this.startedOnce.add(id);
        } catch (err) {
          this.opts.log.warn(`auto-push ${id} for ${name}: ${errorText(err)}`);
          this.noteFailure(id, name);
        }
      }
    }
    for (const name of this.onlineSince.keys()) if (!this.opts.hubs.localSource(name)) this.onlineSince.delete(name);
  }

  /** push_settings.maxspeed: starts per second (0: no limit). */
  private mayStartNow(maxspeed: number, nowMs: number): boolean {
    if (maxspeed <= 0) return true;
    const second = Math.floor(nowMs / 1000);
    if (this.startsThisSecond.second !== second) this.startsThisSecond = { second, count: 0 };
    if (this.startsThisSecond.count >= maxspeed) return false;
    this.startsThisSecond.count++;
    return true;
  }

  private tagsOf(name: string): string[] {
    const tags = this.opts.config.stream(name)?.['tags'];
    return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [];
  }

  /** Stops every push (the worker is stopping); resolves when their files are closed. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const runners = [...this.pushes.values()].map((p) => p.runner).filter((r): r is PushRunner => r !== undefined);
    await Promise.all(runners.map((r) => r.stop('server stopping')));
  }
}
