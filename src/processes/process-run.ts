// One run of a stream process (reference §5.6): the child is spawned with explicit stdio, fed
// the selected tracks of the stream as Matroska on its stdin (MatroskaWriter; a tap of the hub,
// so it is neither a viewer nor keeps the stream alive), and its stdout is read back as Matroska
// (MatroskaDemuxer) into new tracks of the same hub, on the stream's timeline (time-map.ts).
// Its stderr goes to the worker log line by line, bounded; a run whose output never comes says
// so in the log. The run ends when the child exits, when stop() is called, when the source
// tracks it reads change (Matroska cannot change tracks mid-stream: the manager starts a new
// run) or when its output cannot be read. Restarting is the manager's business
// (stream-processes.ts).

import { spawn as nodeSpawn, type ChildProcessWithoutNullStreams, type SpawnOptionsWithoutStdio } from 'node:child_process';
import type { HubListener, StreamHub } from '../hub/stream-hub.js';
import { MatroskaDemuxer, type MkvDemuxResult } from '../containers/mkv/demux.js';
import { MatroskaWriter } from '../containers/mkv/writer.js';
import type { Packet, Track } from '../media/types.js';
import { errorText } from '../util/errors.js';
import { TypedEmitter } from '../util/events.js';
import type { Logger } from '../util/log.js';
import { LineSplitter } from './line-splitter.js';
import { processInputTracks, type ProcessSpec } from './process-config.js';
import { CATCH_UP_WINDOW_MS, CatchUpGate, InputGate, OutputGate, TimeMap } from './time-map.js';

/** Input bytes queued for a child that reads too slowly before packets are dropped (to the next keyframe). */
export const MAX_PENDING_INPUT_BYTES = 8 * 1024 * 1024;
/** A run with input but no output this long gets a log line saying so. */
export const NO_OUTPUT_MS = 10_000;
/** stderr lines kept for proc_list (MistServer keeps 25). */
export const KEPT_LOG_LINES = 25;
/** stderr lines of one run written to the worker log; the rest are counted. */
const LOGGED_LINES_PER_RUN = 10;
/** After SIGTERM, a child still running this long is killed. */
const KILL_AFTER_MS = 2000;
/** After the child exits, how long its output may still be read before the run ends. */
const EXIT_GRACE_MS = 1000;
/** Largest block the output may hold (a keyframe of a 4K encode fits easily). */
const MAX_OUTPUT_BLOCK_BYTES = 32 * 1024 * 1024;

export type Spawn = (cmd: string, args: readonly string[], opts: SpawnOptionsWithoutStdio) => ChildProcessWithoutNullStreams;

/** How the run maps a stream's hub: its tracks, the ids of the tracks processes made, the output ids. */
export interface RunHost {
  /** Whether a track of the hub was made by a process (processes never read those). */
  isProcessTrack(id: number): boolean;
  /** The hub track id for output track `index` (0-based, in the order the child declares them). */
  outputTrackId(index: number, track: Track): number;
  /** The newest time an output track reached so far (-Infinity for none). */
  lastTimeOf(hubId: number): number;
  /** Called with each output packet's stream time, for lastTimeOf. */
  noteTime(hubId: number, timeMs: number): void;
  /**
   * The shift the hub adds to what its source pushes after a change of source (StreamHub keeps
   * the timeline monotonic that way); learned from the first push, see pushOut.
   */
  hubShift: { ms: number | undefined };
}

export interface RunOptions {
  stream: string;
  spec: ProcessSpec;
  /** The command with its variables filled in. */
  argv: readonly string[];
  hub: StreamHub;
  host: RunHost;
  /** A restart: feed from the first sync keyframe after this time in the DVR window (-Infinity: a first run, from the next live keyframe). */
  resumeAfterMs: number;
  log: Logger;
  spawn?: Spawn;
  noOutputMs?: number;
  /** CatchUpGate's window for a first run's output (0: none). */
  catchUpMs?: number;
}

export interface RunEnd {
  reason: string;
  /** The run was ended by stop() (not by the child or its output). */
  stopped: boolean;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Output packets it delivered. */
  packetsOut: number;
  /** It ended because the source tracks it reads changed or went (a new run may start at once). */
  sourceChanged: boolean;
}

export type RunState = 'starting' | 'running' | 'no output' | 'stopping' | 'ended';

interface OutTrack {
  hubId: number;
  track: Track;
  gate: OutputGate;
  /** A first run's output waits until it keeps pace (undefined for a restart: it fills its hole). */
  catchUp: CatchUpGate | undefined;
}

/**
 * The shift StreamHub adds to every timestamp it is given after a change of source (it keeps the
 * timeline monotonic that way), so the output, already on the stream's timeline, is pushed
 * that much earlier. StreamHub has no accessor for it: its field is read when present; without
 * it the shift is learned from the first push (which then lands shifted).
 */
function hubTimeShift(hub: StreamHub): number | undefined {
  const v = (hub as unknown as { timeOffsetMs?: unknown }).timeOffsetMs;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export class ProcessRun extends TypedEmitter<{ exit: RunEnd }> implements HubListener {
  readonly startedAt = Date.now();
  readonly pid: number | undefined;
  readonly command: string;
  state: RunState = 'starting';
  /** Stream track ids fed to the child. */
  inputTracks: number[] = [];
  /** Hub track ids the child's output became. */
  readonly outputTracks: number[] = [];
  /** stderr, the last KEPT_LOG_LINES lines. */
  readonly logs: string[] = [];
  /** Newest stream time written to the child / delivered from it (MistServer's sourceTime / sinkTime). */
  sourceMs = -1;
  sinkMs = -1;
  packetsIn = 0;
  packetsOut = 0;
  droppedIn = 0;
  /** Output packets of a first run held back while it caught up (CatchUpGate). */
  heldBack = 0;

  private readonly child: ChildProcessWithoutNullStreams | undefined;
  private readonly time = new TimeMap();
  private gate: InputGate;
  private readonly demuxer = new MatroskaDemuxer({ maxBlockBytes: MAX_OUTPUT_BLOCK_BYTES });
  private readonly lines = new LineSplitter();
  private readonly outTracks = new Map<number, OutTrack>();
  private writer: MatroskaWriter | undefined;
  private inputIds = new Set<number>();
  /** The input tracks as fed (a re-initialised one ends the run). */
  private inputDefs = new Map<number, Track>();
  private untap: (() => void) | undefined;
  private endReason: string | undefined;
  private stopped = false;
  private finished = false;
  private killTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private droppingUntilKey = false;
  private sourceChanged = false;
  private syncTrackId = -1;
  private loggedLines = 0;
  private unloggedLines = 0;
  private readonly log: Logger;

  constructor(private readonly opts: RunOptions) {
    super();
    this.log = opts.log;
    this.command = opts.argv.join(' ');
    const tracks = this.sourceTracks(opts.hub.tracks);
    this.gate = new InputGate(opts.resumeAfterMs, -1);
    if (tracks.length === 0) {
      this.endReason = 'no source track to read';
      queueMicrotask(() => this.finish(null, null));
      return;
    }
    try {
      this.writer = new MatroskaWriter(tracks, { webm: false });
    } catch (err) {
      this.endReason = `cannot feed the source tracks: ${errorText(err)}`;
      queueMicrotask(() => this.finish(null, null));
      return;
    }
    this.setInputs(tracks);
    const spawn = opts.spawn ?? (nodeSpawn as unknown as Spawn);
    let child: ChildProcessWithoutNullStreams;
    try {
      child = spawn(opts.argv[0]!, opts.argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: process.env });
    } catch (err) {
      this.endReason = `cannot start ${opts.argv[0]}: ${errorText(err)}`;
      queueMicrotask(() => this.finish(null, null));
      return;
    }
    this.child = child;
    this.pid = child.pid;
    child.on('error', (err) => {
      // ENOENT and the like: the child never ran ('close' follows)
      this.endReason ??= `cannot run ${opts.argv[0]}: ${err.message}`;
      if (child.pid === undefined) this.finish(null, null);
    });
    child.stdin.on('error', () => {
      // EPIPE: the child went away; its exit says why
    });
    child.stdout.on('data', (chunk: Buffer) => this.onOutput(chunk));
    child.stderr.on('data', (chunk: Buffer) => this.onStderr(this.lines.push(chunk)));
    child.on('close', (code, signal) => this.finish(code, signal));
    // 'close' waits for stdout and stderr to close too, which a grandchild that inherited them
    // can keep open: the run ends a moment after the child itself is gone either way
    child.on('exit', (code, signal) => {
      setTimeout(() => {
        if (this.finished) return;
        child.stdout.destroy();
        child.stderr.destroy();
        this.finish(code, signal);
      }, EXIT_GRACE_MS).unref();
    });
    if (child.pid === undefined) return;
    child.stdin.write(this.writer.header());
    // A restart is fed from the DVR window right after what its tracks reached, so they go on
    // without a hole. A first run starts live, at the next keyframe: replaying the newest GOP
    // would hand the hub a burst of old packets, which its health check takes for jitter (DRY).
    // (from the keyframe before that point: the newest keyframe may be newer than what was delivered)
    if (opts.resumeAfterMs !== -Infinity) for (const p of opts.hub.packetsFromTime(opts.resumeAfterMs)) this.feed(p);
    if (!opts.hub.isEnded) this.untap = opts.hub.tap(this);
  }

  /** The hub's tracks a process may read, and of those the ones this process reads. */
  private sourceTracks(all: readonly Track[]): Track[] {
    return processInputTracks(
      this.opts.spec,
      all.filter((t) => !this.opts.host.isProcessTrack(t.id)),
    );
  }

  private setInputs(tracks: Track[]): void {
    this.inputTracks = tracks.map((t) => t.id);
    this.inputIds = new Set(this.inputTracks);
    this.inputDefs = new Map(tracks.map((t) => [t.id, t]));
    this.syncTrackId = (tracks.find((t) => t.type === 'video') ?? tracks[0])!.id;
    this.gate = new InputGate(this.opts.resumeAfterMs, this.syncTrackId);
  }

  // ---- input --------------------------------------------------------------------------------

  onPacket(p: Packet): void {
    this.feed(p);
  }

  onTracks(tracks: readonly Track[]): void {
    if (this.endReason !== undefined) return;
    const now = this.sourceTracks(tracks);
    const same = now.length === this.inputDefs.size && now.every((t) => {
      const was = this.inputDefs.get(t.id);
      return was !== undefined && was.codec === t.codec && was.init.equals(t.init);
    });
    if (same) return;
    this.sourceChanged = true;
    this.stop(now.length === 0 ? 'its source tracks are gone' : 'its source tracks changed');
  }

  onEnd(reason: string): void {
    this.stop(`stream ended (${reason})`);
  }

  private feed(p: Packet): void {
    const child = this.child;
    if (!child || this.endReason !== undefined || !this.inputIds.has(p.trackId)) return;
    if (!this.gate.pass(p.trackId, p.timeMs, p.keyframe)) return;
    // a child that cannot keep up loses packets up to the next sync keyframe, never the worker's memory
    if (child.stdin.writableLength > MAX_PENDING_INPUT_BYTES) {
      if (!this.droppingUntilKey) this.log.warn(`process ${this.opts.spec.process} (pid ${this.pid}) reads too slowly: dropping its input up to the next keyframe`);
      this.droppingUntilKey = true;
    }
    if (this.droppingUntilKey) {
      if (child.stdin.writableLength > MAX_PENDING_INPUT_BYTES / 2 || p.trackId !== this.syncTrackId || !p.keyframe) {
        this.droppedIn++;
        return;
      }
      this.droppingUntilKey = false;
    }
    const written = this.time.toProcess(p.timeMs);
    let bytes: Buffer;
    try {
      bytes = this.writer!.packet({ trackId: p.trackId, timeMs: written, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data });
    } catch (err) {
      this.stop(`cannot write its input: ${errorText(err)}`);
      return;
    }
    child.stdin.write(bytes);
    this.packetsIn++;
    if (p.timeMs > this.sourceMs) this.sourceMs = p.timeMs;
    if (!this.watchdog && this.packetsOut === 0) {
      const waitMs = this.opts.noOutputMs ?? NO_OUTPUT_MS;
      this.watchdog = setTimeout(() => {
        if (this.packetsOut > 0 || this.endReason !== undefined) return;
        this.state = 'no output';
        const last = this.logs.length > 0 ? `; its last stderr line: ${this.logs[this.logs.length - 1]}` : '; it wrote nothing to stderr';
        this.log.warn(`process ${this.opts.spec.process} for ${this.opts.stream} (pid ${this.pid}) produced no output ${waitMs / 1000} s after its input started (${this.packetsIn} packets in)${last}; command: ${this.command}`);
      }, waitMs);
      this.watchdog.unref();
    }
  }

  // ---- output -------------------------------------------------------------------------------

  private onOutput(chunk: Buffer): void {
    if (this.finished) return;
    let r: MkvDemuxResult;
    try {
      r = this.demuxer.push(chunk);
    } catch (err) {
      this.stop(`its output is not readable Matroska: ${errorText(err)}`);
      return;
    }
    this.take(r);
  }

  private take(r: MkvDemuxResult): void {
    for (const w of r.warnings) this.log.warn(`process ${this.opts.spec.process} for ${this.opts.stream} (pid ${this.pid}) output: ${w}`);
    if (r.tracks) this.mapTracks(r.tracks);
    for (const p of r.packets) this.pushOut(p);
  }

  private mapTracks(tracks: readonly Track[]): void {
    this.outTracks.clear();
    tracks.forEach((t, index) => {
      const hubId = this.opts.host.outputTrackId(index, t);
      const windowMs = this.opts.catchUpMs ?? CATCH_UP_WINDOW_MS;
      const catchUp = this.opts.resumeAfterMs === -Infinity && windowMs > 0 ? new CatchUpGate(windowMs) : undefined;
      this.outTracks.set(t.id, { hubId, track: { ...t, id: hubId }, gate: new OutputGate(t.type === 'video', this.opts.host.lastTimeOf(hubId)), catchUp });
      if (!this.outputTracks.includes(hubId)) this.outputTracks.push(hubId);
    });
  }

  private pushOut(p: Packet): void {
    const hub = this.opts.hub;
    const out = this.outTracks.get(p.trackId);
    if (!out || hub.isEnded || this.stopped) return;
    const timeMs = this.time.fromProcess(p.timeMs);
    if (timeMs === undefined) return;
    if (out.catchUp && !out.catchUp.pass(performance.now(), timeMs)) {
      this.heldBack++;
      return;
    }
    if (!out.gate.pass(timeMs, p.keyframe)) return;
    // the track joins the stream with its first packet (a keyframe): the stream is not held
    // offline waiting for a track whose data has not come yet
    if (!hub.tracks.some((t) => t.id === out.hubId)) hub.setTrack(out.track);
    if (!hub.tracks.some((t) => t.id === out.hubId)) return;
    const shift = this.opts.host.hubShift;
    const known = hubTimeShift(hub) ?? shift.ms;
    const pushed: Packet = { trackId: out.hubId, timeMs: timeMs - (known ?? 0), offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data };
    const before = pushed.timeMs;
    hub.push(pushed);
    // StreamHub adds its timeline shift to what it is given (it rewrites the packet): what it
    // added is what the next pushes take off beforehand
    const actual = pushed.timeMs - before;
    if (known === undefined && actual !== 0) this.log.info(`stream ${this.opts.stream}: its timeline is shifted by ${actual} ms; process output follows from the next packet`);
    shift.ms = actual;
    this.opts.host.noteTime(out.hubId, timeMs);
    this.packetsOut++;
    if (timeMs > this.sinkMs) this.sinkMs = timeMs;
    if (this.state === 'starting' || this.state === 'no output') {
      if (this.state === 'no output') this.log.info(`process ${this.opts.spec.process} for ${this.opts.stream} (pid ${this.pid}) produces output now`);
      this.state = 'running';
    }
  }

  // ---- stderr -------------------------------------------------------------------------------

  private onStderr(lines: string[]): void {
    for (const line of lines) {
      this.logs.push(line);
      if (this.logs.length > KEPT_LOG_LINES) this.logs.shift();
      if (this.loggedLines < LOGGED_LINES_PER_RUN) {
        this.loggedLines++;
        this.log.warn(`process ${this.opts.spec.process} for ${this.opts.stream} (pid ${this.pid}): ${line}`);
      } else this.unloggedLines++;
    }
  }

  // ---- end ----------------------------------------------------------------------------------

  /** Ends the run: the child's stdin closes, it gets SIGTERM, and SIGKILL if it lingers. */
  stop(reason: string): void {
    if (this.endReason !== undefined && this.stopped) return;
    this.endReason ??= reason;
    this.stopped = true;
    this.untap?.();
    this.untap = undefined;
    const child = this.child;
    if (!child || this.finished) return;
    this.state = 'stopping';
    child.stdin.end();
    child.kill('SIGTERM');
    this.killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    this.killTimer.unref();
  }

  private finish(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.finished) return;
    // output still buffered in the demuxer (a child that ended on its own)
    if (!this.stopped) {
      try {
        this.take(this.demuxer.end());
      } catch {
        // a truncated last element: nothing more to take
      }
    }
    this.finished = true;
    this.state = 'ended';
    this.untap?.();
    this.untap = undefined;
    if (this.killTimer) clearTimeout(this.killTimer);
    if (this.watchdog) clearTimeout(this.watchdog);
    this.onStderr(this.lines.flush());
    if (this.unloggedLines > 0) this.log.warn(`process ${this.opts.spec.process} for ${this.opts.stream} (pid ${this.pid}): ${this.unloggedLines} more stderr lines not logged`);
    const how = signal ? `killed by ${signal}` : code !== null ? `exited with code ${code}` : 'ended';
    const reason = this.endReason ?? `the process ${how}`;
    this.emit('exit', { reason, stopped: this.stopped, code, signal, packetsOut: this.packetsOut, sourceChanged: this.sourceChanged });
  }

  get ended(): boolean {
    return this.finished;
  }
}
