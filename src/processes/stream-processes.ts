// The stream processes of one worker (reference §5.6): for every stream whose source hub this
// worker hosts, the `processes[]` of its config (and the ones asked for on demand, ensureOpus)
// run while the stream is live. A process starts once the stream is online, its source tracks
// exist and its `track_inhibit` selects nothing; it restarts by its policy when it dies while
// the stream is live, and stops with the stream. Its output tracks keep their ids across
// restarts, so viewers of them carry on. `proc_list` lists them with MistServer's fields.

import type { StreamHub } from '../hub/stream-hub.js';
import type { AudioTrack, Track } from '../media/types.js';
import { applyVariables } from '../pushes/variables.js';
import { errorText } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { isInhibited, OPUS_PRESET, parseProcess, parseProcesses, processInputTracks, restartDelayMs, type ProcessSpec } from './process-config.js';
import { ProcessRun, type RunEnd, type Spawn } from './process-run.js';

/** Track ids of process outputs start here, far above what publishers and containers use. */
export const PROCESS_TRACK_BASE = 1_000_000;
/** Processes are checked this often (MistServer: 200 ms at first, then up to 5 s). */
const TICK_MS = 1000;
/** A run that lasted this long with output was healthy: the backoff starts over after it. */
const HEALTHY_RUN_MS = 30_000;
/** How long ensureOpus waits for the Opus track. */
export const ENSURE_OPUS_WAIT_MS = 8000;
/** The key of the on-demand Opus process (ensureOpus). */
const ON_DEMAND_OPUS = 'ensureOpus';

/** What the processes need of the worker's hubs (worker/hub-manager.ts). */
export interface ProcessHubs {
  on(event: 'sourceOnline' | 'sourceStart' | 'sourceEnd', fn: (e: { name: string; hub: StreamHub }) => void): unknown;
  localSource(name: string): StreamHub | undefined;
  readonly hubs: ReadonlyMap<string, { hub: StreamHub; local: boolean }>;
}

export interface StreamProcessesOptions {
  worker: number;
  hubs: ProcessHubs;
  /** The stream's settings (its `processes` and `source`), wildcard instances included. */
  settings(name: string): Record<string, unknown> | undefined;
  /** Registers a callback for config changes. */
  onConfigChange(fn: () => void): void;
  /** ensureOpus for a stream another worker hosts: asks that worker (undefined without one). */
  forward?: (stream: string, request: Record<string, unknown>) => Promise<unknown>;
  log: Logger;
  spawn?: Spawn;
  /** Tests: how long a run may go without output before it is reported. */
  noOutputMs?: number;
  /** Tests: the CatchUpGate window of first runs (0: none). */
  catchUpMs?: number;
}

interface Entry {
  spec: ProcessSpec;
  onDemand: boolean;
  run: ProcessRun | undefined;
  /** Hub track ids of its output tracks, by their index in the child's output. */
  outIds: number[];
  restarts: number;
  failures: number;
  everStarted: boolean;
  retry: NodeJS.Timeout | undefined;
  /** Taken out of the config (or the stream ended): never restarted. */
  removed: boolean;
  /** Its last run ended and the policy says no more. */
  gaveUp: boolean;
  /** What keeps it from running now ('waiting for tracks', 'inhibited'), for proc_list. */
  waiting: string | undefined;
  last: { pid: number | undefined; command: string; logs: string[]; inputTracks: number[]; outputTracks: number[]; sourceMs: number; sinkMs: number; startedAt: number; end: RunEnd } | undefined;
}

interface StreamState {
  name: string;
  hub: StreamHub;
  entries: Map<string, Entry>;
  /** Every hub track id given to a process output on this hub. */
  processTracks: Set<number>;
  /** Newest time each process output track reached. */
  lastTimes: Map<number, number>;
  /** The hub's timeline shift for the current source (process-run.ts pushOut). */
  hubShift: { ms: number | undefined };
  /** Processes asked for on demand (ensureOpus), by key. */
  onDemand: Map<string, ProcessSpec>;
  /** The config problems last logged, so each is logged once. */
  loggedErrors: string;
}

/** A row of proc_list: MistServer's fields (status spread, source, sink, process, logs, terminated) and Haze's. */
export type ProcListRow = Record<string, unknown>;

export interface EnsureOpusResult {
  ok: boolean;
  /** The Opus track's id on the worker hosting the stream. */
  track?: number;
  reason?: string;
}

export class StreamProcesses {
  private readonly streams = new Map<string, StreamState>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: StreamProcessesOptions) {
    const { hubs } = opts;
    hubs.on('sourceStart', ({ name, hub }) => {
      // a new source: the hub's timeline shift is learned again from its first push
      const s = this.streams.get(name);
      if (s && s.hub === hub) s.hubShift = { ms: undefined };
    });
    hubs.on('sourceOnline', ({ name }) => this.reconcile(name));
    hubs.on('sourceEnd', ({ name, hub }) => this.streamEnded(name, hub, 'its source ended'));
    opts.onConfigChange(() => this.reconcileAll());
    this.timer = setInterval(() => this.reconcileAll(), TICK_MS);
    this.timer.unref();
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  private reconcileAll(): void {
    for (const [name, { local, hub }] of this.opts.hubs.hubs) if (local && !hub.isEnded) this.reconcile(name);
    for (const [name, s] of [...this.streams]) if (this.opts.hubs.localSource(name) !== s.hub || s.hub.isEnded) this.streamEnded(name, s.hub, 'the stream is no longer hosted here');
  }

  private state(name: string, hub: StreamHub): StreamState {
    let s = this.streams.get(name);
    if (s && s.hub !== hub) {
      this.streamEnded(name, s.hub, 'the stream has a new buffer');
      s = undefined;
    }
    if (!s) {
      s = { name, hub, entries: new Map(), processTracks: new Set(), lastTimes: new Map(), hubShift: { ms: undefined }, onDemand: new Map(), loggedErrors: '' };
      this.streams.set(name, s);
    }
    return s;
  }

  /** The processes a stream should run: its config's and the on-demand ones. */
  private wanted(s: StreamState): Map<string, { spec: ProcessSpec; onDemand: boolean }> {
    const { specs, errors } = parseProcesses(this.opts.settings(s.name)?.['processes']);
    const text = errors.join('; ');
    if (text !== s.loggedErrors) {
      s.loggedErrors = text;
      for (const e of errors) this.opts.log.error(`stream ${s.name}: ${e}`);
    }
    const out = new Map<string, { spec: ProcessSpec; onDemand: boolean }>();
    for (const spec of specs) out.set(spec.key, { spec, onDemand: false });
    for (const [key, spec] of s.onDemand) if (!out.has(key)) out.set(key, { spec, onDemand: true });
    return out;
  }

  /** Starts, stops and keeps the processes of one stream as its config and tracks say. */
  reconcile(name: string): void {
    if (this.closed) return;
    const hub = this.opts.hubs.localSource(name);
    if (!hub || hub.isEnded) {
      const s = this.streams.get(name);
      if (s) this.streamEnded(name, s.hub, 'the stream is not hosted here');
      return;
    }
    const configured = this.opts.settings(name)?.['processes'];
    // a stream without processes (most of them) costs nothing here
    if (!this.streams.has(name) && (configured === undefined || configured === null || (Array.isArray(configured) && configured.length === 0))) return;
    const s = this.state(name, hub);
    const want = this.wanted(s);
    for (const [key, e] of [...s.entries]) {
      if (!want.has(key)) this.remove(s, key, e, 'it was removed from the config');
    }
    if (!hub.sourceAttached) return;
    const sources = hub.tracks.filter((t) => !s.processTracks.has(t.id));
    for (const [key, { spec, onDemand }] of want) {
      let e = s.entries.get(key);
      if (!e) {
        e = { spec, onDemand, run: undefined, outIds: [], restarts: 0, failures: 0, everStarted: false, retry: undefined, removed: false, gaveUp: false, waiting: undefined, last: undefined };
        s.entries.set(key, e);
      }
      if (e.run || e.retry || e.gaveUp) continue;
      // a first start waits for the stream to be online (every track keyed); a restart does not
      if (!e.everStarted && !hub.online) continue;
      if (processInputTracks(spec, sources).length === 0) {
        e.waiting = 'waiting for its source tracks';
        continue;
      }
      if (isInhibited(spec, sources)) {
        e.waiting = 'inhibited by track_inhibit';
        continue;
      }
      e.waiting = undefined;
      this.start(s, e);
    }
  }

  private start(s: StreamState, e: Entry): void {
    const settings = this.opts.settings(s.name);
    const source = typeof settings?.['source'] === 'string' ? settings['source'] : undefined;
    const now = new Date();
    const argv = e.spec.argv.map((a) => (a.includes('$') ? applyVariables(a, { stream: s.name, ...(source === undefined ? {} : { source }), now }) : a));
    let resumeAfterMs = -Infinity;
    for (const id of e.outIds) resumeAfterMs = Math.max(resumeAfterMs, s.lastTimes.get(id) ?? -Infinity);
    const log = this.opts.log.child({ stream: s.name, proc: e.spec.process });
    const run = new ProcessRun({
      stream: s.name,
      spec: e.spec,
      argv,
      hub: s.hub,
      resumeAfterMs,
      log,
      ...(this.opts.spawn ? { spawn: this.opts.spawn } : {}),
      ...(this.opts.noOutputMs !== undefined ? { noOutputMs: this.opts.noOutputMs } : {}),
      ...(this.opts.catchUpMs !== undefined ? { catchUpMs: this.opts.catchUpMs } : {}),
      host: {
        isProcessTrack: (id) => s.processTracks.has(id),
        outputTrackId: (index) => (e.outIds[index] ??= this.allocateTrackId(s)),
        lastTimeOf: (id) => s.lastTimes.get(id) ?? -Infinity,
        noteTime: (id, t) => s.lastTimes.set(id, t),
        hubShift: s.hubShift,
      },
    });
    e.run = run;
    if (e.everStarted) e.restarts++;
    e.everStarted = true;
    log.info(`process ${e.spec.process} ${e.restarts > 0 ? `restarted (${e.restarts})` : 'started'} for ${s.name}${run.pid !== undefined ? ` (pid ${run.pid})` : ''}: ${run.command}`);
    run.on('exit', (end) => this.runEnded(s, e, run, end));
  }

  private allocateTrackId(s: StreamState): number {
    let id = PROCESS_TRACK_BASE;
    const used = new Set(s.hub.tracks.map((t) => t.id));
    while (used.has(id) || s.processTracks.has(id)) id++;
    s.processTracks.add(id);
    return id;
  }

  private runEnded(s: StreamState, e: Entry, run: ProcessRun, end: RunEnd): void {
    if (e.run === run) e.run = undefined;
    e.last = { pid: run.pid, command: run.command, logs: [...run.logs], inputTracks: run.inputTracks, outputTracks: [...run.outputTracks], sourceMs: run.sourceMs, sinkMs: run.sinkMs, startedAt: run.startedAt, end };
    const log = this.opts.log.child({ stream: s.name, proc: e.spec.process });
    const live = !this.closed && !e.removed && this.streams.get(s.name) === s && this.opts.hubs.localSource(s.name) === s.hub && !s.hub.isEnded;
    log.info(`process ${e.spec.process} for ${s.name}${run.pid !== undefined ? ` (pid ${run.pid})` : ''} ended: ${end.reason}`);
    if (!live) return;
    if (end.sourceChanged) {
      // not a failure: a new run starts as soon as the source tracks allow
      setImmediate(() => this.reconcile(s.name));
      return;
    }
    if (end.packetsOut > 0 && Date.now() - run.startedAt >= HEALTHY_RUN_MS) e.failures = 0;
    e.failures++;
    const delay = restartDelayMs(e.spec.restart, e.failures);
    if (delay === undefined) {
      e.gaveUp = true;
      log.warn(`process ${e.spec.process} for ${s.name} is not restarted (restart_type disabled)`);
      return;
    }
    log.warn(`process ${e.spec.process} for ${s.name} stopped while the stream is live (${end.reason}); restarting in ${delay} ms`);
    e.retry = setTimeout(() => {
      e.retry = undefined;
      this.reconcile(s.name);
    }, delay);
    e.retry.unref();
  }

  /** Stops a process for good and takes its tracks out of the stream. */
  private remove(s: StreamState, key: string, e: Entry, why: string): void {
    e.removed = true;
    if (e.retry) clearTimeout(e.retry);
    e.retry = undefined;
    e.run?.stop(why);
    s.entries.delete(key);
    for (const id of e.outIds) if (s.hub.tracks.some((t) => t.id === id)) s.hub.removeTrack(id);
  }

  /** The stream's source left (or it ended, or moved): its processes stop. */
  private streamEnded(name: string, hub: StreamHub, why: string): void {
    const s = this.streams.get(name);
    if (!s || s.hub !== hub) return;
    this.streams.delete(name);
    for (const e of s.entries.values()) {
      e.removed = true;
      if (e.retry) clearTimeout(e.retry);
      e.retry = undefined;
      e.run?.stop(why);
    }
  }

  /** Stops every process (the worker is stopping). */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const [name, s] of [...this.streams]) this.streamEnded(name, s.hub, 'server stopping');
  }

  // ---- on demand ----------------------------------------------------------------------------

  /**
   * Makes sure `name` has an Opus track (for WebRTC viewers of an AAC stream): when the stream's
   * source has audio but no Opus, an AAC -> Opus process (OPUS_PRESET) runs for it until the
   * stream ends. Resolves once the stream has the Opus track (ok), or with the reason it will
   * not. A stream hosted by another worker is asked of that worker; its Opus track then reaches
   * this worker's relay of the stream like any other track.
   */
  async ensureOpus(name: string, waitMs = ENSURE_OPUS_WAIT_MS): Promise<EnsureOpusResult> {
    const hub = this.opts.hubs.localSource(name);
    if (!hub) {
      if (!this.opts.forward) return { ok: false, reason: `stream ${name} is not live here` };
      const answer = (await this.opts.forward(name, { op: 'proc_ensure_opus', stream: name, waitMs })) as EnsureOpusResult | { error?: string } | undefined;
      if (answer && 'ok' in answer) return answer;
      return { ok: false, reason: (answer as { error?: string } | undefined)?.error ?? `the worker hosting ${name} did not answer` };
    }
    const opus = (): Track | undefined => hub.tracks.find((t) => t.type === 'audio' && t.codec === 'opus');
    const have = opus();
    if (have) return { ok: true, track: have.id };
    const s = this.state(name, hub);
    if (!s.onDemand.has(ON_DEMAND_OPUS)) {
      const spec = { ...parseProcess(OPUS_PRESET), key: ON_DEMAND_OPUS };
      if (processInputTracks(spec, hub.tracks.filter((t) => !s.processTracks.has(t.id))).length === 0) return { ok: false, reason: `stream ${name} has no audio track to make Opus from` };
      s.onDemand.set(ON_DEMAND_OPUS, spec);
      this.reconcile(name);
    }
    const track = await waitForTrack(hub, (t) => t.type === 'audio' && t.codec === 'opus', waitMs);
    return track ? { ok: true, track: track.id } : { ok: false, reason: `no Opus track within ${waitMs} ms` };
  }

  // ---- proc_list ----------------------------------------------------------------------------

  /** The processes of `stream` (every stream when empty), by pid, as MistServer's proc_list has them. */
  list(stream = ''): Record<string, ProcListRow> {
    const rows: Record<string, ProcListRow> = {};
    for (const s of this.streams.values()) {
      if (stream && stream !== s.name) continue;
      for (const e of s.entries.values()) {
        const run = e.run;
        const last = e.last;
        const pid = run?.pid ?? last?.pid;
        if (pid === undefined) continue;
        const startedAt = run?.startedAt ?? last!.startedAt;
        const status = run ? run.state : e.retry ? 'restarting' : e.gaveUp ? 'ended' : (e.waiting ?? 'ended');
        const row: ProcListRow = {
          // MistServer: the process's status object (proc_status_update) ...
          active_seconds: Math.floor((Date.now() - startedAt) / 1000),
          ainfo: { child_pid: pid, cmd: run?.command ?? last!.command, sourceTime: Math.max(0, run?.sourceMs ?? last!.sourceMs), sinkTime: Math.max(0, run?.sinkMs ?? last!.sinkMs) },
          source_tracks: run?.inputTracks ?? last!.inputTracks,
          sink_tracks: run?.outputTracks ?? last!.outputTracks,
          // ... and the controller's fields
          source: s.name,
          sink: s.name,
          process: e.spec.process,
          logs: run ? [...run.logs] : last!.logs,
          // Haze's
          pid,
          status,
          restarts: e.restarts,
          worker: this.opts.worker,
          inconsequential: e.spec.inconsequential,
          on_demand: e.onDemand,
        };
        if (!run) {
          row['terminated'] = true;
          row['last_exit'] = last!.end.reason;
        }
        rows[String(pid)] = row;
      }
    }
    return rows;
  }

  /** The worker-control operations: proc_list and proc_ensure_opus (another worker's WebRTC viewer). */
  register(control: { on(op: string, handler: (args: Record<string, unknown>) => unknown): void }): void {
    control.on('proc_list', (a) => ({ procs: this.list(typeof a['stream'] === 'string' ? a['stream'] : '') }));
    control.on('proc_ensure_opus', async (a) => {
      const stream = typeof a['stream'] === 'string' ? a['stream'] : '';
      const waitMs = typeof a['waitMs'] === 'number' && a['waitMs'] > 0 ? Math.min(a['waitMs'], 30_000) : ENSURE_OPUS_WAIT_MS;
      if (!this.opts.hubs.localSource(stream)) return { ok: false, reason: `stream ${stream} is not hosted by worker ${this.opts.worker}` };
      try {
        return await this.ensureOpus(stream, waitMs);
      } catch (err) {
        return { ok: false, reason: errorText(err) };
      }
    });
  }
}

/** Resolves the first track of `hub` that `match` accepts, waiting up to `waitMs` for one to appear. */
export function waitForTrack(hub: StreamHub, match: (t: Track) => boolean, waitMs: number): Promise<Track | undefined> {
  const now = hub.tracks.find(match);
  if (now || hub.isEnded) return Promise.resolve(now);
  return new Promise((resolve) => {
    let untap: () => void = () => {};
    const done = (t: Track | undefined): void => {
      clearTimeout(timer);
      untap();
      resolve(t);
    };
    const timer = setTimeout(() => done(undefined), waitMs);
    untap = hub.tap({
      onPacket: () => {},
      onTracks: (tracks) => {
        const t = tracks.find(match);
        if (t) done(t);
      },
      onEnd: () => done(undefined),
    });
  });
}

/** waitForTrack for an Opus track (a WebRTC output after ensureOpus). */
export function waitForOpus(hub: StreamHub, waitMs = ENSURE_OPUS_WAIT_MS): Promise<AudioTrack | undefined> {
  return waitForTrack(hub, (t) => t.type === 'audio' && t.codec === 'opus', waitMs) as Promise<AudioTrack | undefined>;
}
