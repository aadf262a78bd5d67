// The controller's side of the statistics (DESIGN §3: the workers keep them, the controller
// takes them over): once a second it asks every worker for the session shares that changed and
// the sessions it finished, adds them up in the session table, and saves a checkpoint (the
// totals of finished sessions and what was counted) to the run directory before it acknowledges
// the finished sessions to their worker. A controller killed at any moment therefore neither
// loses nor double-counts a finished session, and the live sessions come back whole from the
// workers' first answers. It also assembles the snapshot Prometheus prints and the live feed of
// the WebSocket API.

import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { Logger } from '../util/log.js';
import { TypedEmitter } from '../util/events.js';
import { SessionTable, type ReportedFinish, type ReportedShare, type TableCheckpoint } from '../stats/session-table.js';
import { addTriggerFigures, triggerFigures } from '../stats/trigger-figures.js';
import type { LiveFeedEvents, LogEntry, MachineVitals, StatsSnapshot, StreamStateEntry, TriggerFigures } from '../stats/snapshot.js';
import type { WorkerLink } from './worker-link.js';
import type { LiveFeed } from './api.js';

const TICK_MS = 1000;
/** A report slower than this is skipped for the second (the worker is busy or gone). */
const ASK_TIMEOUT_MS = 2000;
/** Shares are asked from a little before the last answer (clock steps between processes). */
const OVERLAP_MS = 2000;
/** The checkpoint is written at most this often when only live figures changed. */
const CHECKPOINT_MS = 5000;

interface WorkerState {
  startedMs: number;
  lastAskMs: number;
  triggers: Record<string, TriggerFigures>;
  /** The last log line taken from it. */
  logSeq: number;
}

interface WorkerAnswer {
  worker: number;
  startedMs: number;
  sessions: ReportedShare[];
  finished: ReportedFinish[];
  triggers: unknown;
  logs?: unknown[];
  pid?: number;
}

function isAnswer(v: unknown): v is WorkerAnswer {
  const a = v as WorkerAnswer | null;
  return typeof a === 'object' && a !== null && typeof a.startedMs === 'number' && Array.isArray(a.sessions) && Array.isArray(a.finished);
}

export interface StatsCollectorOptions {
  workers: WorkerLink;
  /** The checkpoint file (run/stats.json). */
  checkpointFile: string;
  vitals(): Promise<MachineVitals>;
  /** What the snapshot adds from the config: location, bandwidth, streams, tags, output URLs. */
  config(): Pick<StatsSnapshot, 'location' | 'bandwidthLimit' | 'configuredStreams' | 'tags' | 'outputUrls'> & { exceptions: (host: string) => boolean };
  /** Stream state from the workers (status and the like), for the feed's `stream` entries. */
  streamStatus(): Promise<Record<string, { status?: string }>>;
  logs(): readonly LogEntry[];
  logCount(): number;
  /** A worker's log line, for the controller's log (the API's `log`, the WebSocket feed). */
  workerLog(entry: LogEntry): void;
  /** Called after every round (the capacity sampler rides on this tick). */
  afterRound?: () => void;
  log: Logger;
}

export class StatsCollector {
  readonly table: SessionTable;
  readonly feed: LiveFeed;
  private readonly events = new TypedEmitter<LiveFeedEvents>();
  private readonly states = new Map<number, WorkerState>();
  private timer: NodeJS.Timeout | undefined;
  private lastTickMs = Date.now();
  private lastSavedMs = 0;
  private saving = false;
  /** The acknowledgements the last saved checkpoint holds (sent with the next requests). */
  private durableAcks = new Map<number, { startedMs: number; seq: number }>();
  private vitals: MachineVitals = { cpuTenths: 0, memTotalKiB: 0, memUsedKiB: 0, shmTotalKiB: 0, shmUsedKiB: 0, nic: { up: 0, down: 0 } };
  private lastStates = new Map<string, string>();
  private streamStatus: Record<string, { status?: string }> = {};
  private running = false;

  constructor(private readonly opts: StatsCollectorOptions) {
    this.table = new SessionTable(readCheckpoint(opts.checkpointFile, opts.log));
    for (const [w, a] of this.table.acks) this.durableAcks.set(w, { ...a });
    this.table.onAccess = (entry) => this.events.emit('access', entry);
    this.feed = {
      logs: () => opts.logs(),
      accesses: () => this.table.recentAccesses,
      streamStates: () => this.streamStates(),
      events: this.events,
    };
  }

  start(): void {
    this.timer = setInterval(() => void this.collect(), TICK_MS);
    this.timer.unref();
    void this.collect();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A log line for the WebSocket API. */
  logLine(entry: LogEntry): void {
    this.events.emit('log', entry);
  }

  /** One round: ask, add up, tick, save; a round still running makes the next one wait. */
  async collect(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const now = Date.now();
      const workers = this.opts.workers.workers();
      const [answers, vitals, status] = await Promise.all([
        Promise.all(workers.map((i) => this.ask(i))),
        this.opts.vitals().catch(() => this.vitals),
        this.opts.streamStatus().catch(() => this.streamStatus),
      ]);
      this.vitals = vitals;
      this.streamStatus = status;
      let finishedSome = false;
      const at = Date.now();
      for (const a of answers) {
        if (!a) continue;
        this.table.ingestShares(a.worker, a.sessions, at);
        const before = this.table.acks.get(a.worker)?.seq ?? 0;
        const state = this.states.get(a.worker);
        const after = this.table.ingestFinished(a.worker, a.startedMs, a.finished, at);
        if (after !== before || (state && state.startedMs !== a.startedMs)) finishedSome = true;
        const triggers: Record<string, TriggerFigures> = {};
        addTriggerFigures(triggers, a.triggers);
        let logSeq = state && state.startedMs === a.startedMs ? state.logSeq : 0;
        for (const l of a.logs ?? []) {
          if (!Array.isArray(l) || typeof l[0] !== 'number' || l[0] <= logSeq) continue;
          logSeq = l[0];
          const [, time, kind, message, stream] = l as [number, number, string, string, string];
          this.opts.workerLog([time, kind, message, stream, a.pid ?? 0, `worker-${a.worker}`]);
        }
        this.states.set(a.worker, { startedMs: a.startedMs, lastAskMs: now, triggers, logSeq });
      }
      for (const w of [...this.states.keys()]) if (!workers.includes(w)) this.states.delete(w);
      this.table.tick(at, at - this.lastTickMs);
      this.lastTickMs = at;
      if (this.table.takeFullWarning()) this.opts.log.warn('the statistics track their maximum of sessions; new ones are left out');
      this.emitStreamChanges();
      this.opts.afterRound?.();
      if (finishedSome || at - this.lastSavedMs >= CHECKPOINT_MS) await this.save(at);
    } catch (err) {
      this.opts.log.warn(`statistics round: ${(err as Error).message}`);
    } finally {
      this.running = false;
    }
  }

  private async ask(worker: number): Promise<WorkerAnswer | undefined> {
    const state = this.states.get(worker);
    const since = state ? Math.max(1, state.lastAskMs - OVERLAP_MS) : 0;
    const ack = this.durableAcks.get(worker);
    // log lines after the last one taken from the same process (all it keeps at first)
    let timer: NodeJS.Timeout | undefined;
    const answer = await Promise.race([
      this.opts.workers.ask(worker, { op: 'stats', since, ack: ack?.seq ?? 0, ackStartedMs: ack?.startedMs ?? 0, logsAfter: state?.logSeq ?? 0, logStartedMs: state?.startedMs ?? 0 }),
      new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ASK_TIMEOUT_MS))),
    ])
      .catch(() => undefined)
      // (a pending timer would keep the answer, a whole report, alive until it fires)
      .finally(() => clearTimeout(timer));
    if (!isAnswer(answer)) return undefined;
    // a restarted worker (a new process) reports everything anew
    if (state && state.startedMs !== answer.startedMs && since !== 0) {
      this.states.delete(worker);
      return this.ask(worker);
    }
    return { ...answer, worker };
  }

  /** Writes the checkpoint (atomically) and makes its acknowledgements the ones sent. */
  private async save(now: number): Promise<void> {
    if (this.saving) return;
    this.saving = true;
    const cp = this.table.checkpoint(now);
    const tmp = `${this.opts.checkpointFile}.${process.pid}.tmp`;
    try {
      await fsp.writeFile(tmp, JSON.stringify(cp));
      await fsp.rename(tmp, this.opts.checkpointFile);
      this.lastSavedMs = now;
      this.durableAcks = new Map(Object.entries(cp.acks).map(([k, v]) => [Number(k), v]));
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      this.opts.log.warn(`statistics checkpoint ${this.opts.checkpointFile}: ${(err as Error).message}`);
    } finally {
      this.saving = false;
    }
  }

  private streamStates(): StreamStateEntry[] {
    const figures = this.table.streamFigures(Date.now());
    const names = new Set([...Object.keys(this.streamStatus), ...Object.keys(figures)]);
    return [...names].sort().map((name): StreamStateEntry => {
      const f = figures[name];
      const tags = [...(this.table.streamTags.get(name) ?? [])];
      return [name, this.streamStatus[name]?.status ?? (f ? 'Online' : 'Offline'), f?.current.viewers ?? 0, f?.current.inputs ?? 0, f?.current.outputs ?? 0, tags];
    });
  }

  private emitStreamChanges(): void {
    const seen = new Set<string>();
    for (const entry of this.streamStates()) {
      seen.add(entry[0]);
      const key = JSON.stringify(entry.slice(1));
      if (this.lastStates.get(entry[0]) === key) continue;
      this.lastStates.set(entry[0], key);
      this.events.emit('stream', entry);
    }
    for (const name of [...this.lastStates.keys()]) {
      if (seen.has(name)) continue;
      this.lastStates.delete(name);
      this.events.emit('stream', [name, 'Offline', 0, 0, 0, []]);
    }
  }

  /** The figures now (Prometheus). */
  snapshot(): StatsSnapshot {
    const now = Date.now();
    const server = this.table.serverFigures(now);
    const cfg = this.opts.config();
    const triggers: Record<string, TriggerFigures> = {};
    addTriggerFigures(triggers, triggerFigures());
    for (const s of this.states.values()) addTriggerFigures(triggers, s.triggers);
    const other = { up: 0, down: 0 };
    for (const s of this.table.live.values()) {
      if (!cfg.exceptions(s.host)) continue;
      other.up += s.up;
      other.down += s.down;
    }
    for (const [name, tags] of this.table.streamTags) {
      const f = server.streams[name];
      if (f && tags.has('replicated')) f.replicated = true;
    }
    return {
      timeMs: now,
      vitals: this.vitals,
      logs: this.opts.logCount(),
      current: { ...server.current, cached: 0 },
      total: server.total,
      viewSeconds: server.viewSeconds,
      bandwidth: server.bytes,
      other,
      bandwidthLimit: cfg.bandwidthLimit,
      packets: server.packets,
      outputs: server.outputs,
      streams: server.streams,
      triggers,
      location: cfg.location,
      configuredStreams: cfg.configuredStreams,
      tags: cfg.tags,
      outputUrls: cfg.outputUrls,
    };
  }
}

function readCheckpoint(file: string, log: Logger): TableCheckpoint | undefined {
  try {
    const cp = JSON.parse(fs.readFileSync(file, 'utf8')) as TableCheckpoint;
    if (typeof cp !== 'object' || cp === null || typeof cp.savedMs !== 'number') throw new Error('not a statistics checkpoint');
    log.info(`statistics continue from the checkpoint of ${new Date(cp.savedMs).toISOString()}`);
    return cp;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.warn(`statistics checkpoint ${file}: ${(err as Error).message}; starting anew`);
    return undefined;
  }
}
