// One outgoing push or recording of a live StreamHub (reference/mistserver.md §5.5): parses the
// target (trailing-? rule), applies the variables, and runs a file Recording, an RTMP(S)
// re-push or a DTSC push (dtsc://, dtscs://). It keeps what push_list shows (status with the last 10 log
// lines) and ends with what PUSH_END / RECORDING_END / OUTPUT_END report. The lead wires it
// to the API (push_start/push_list/push_stop) and the workers.

import { TypedEmitter } from '../util/events.js';
import { errorText } from '../util/errors.js';
import { parsePushTarget, type PushKind, type PushTarget } from './push-target.js';
import { Recording, outputEndPayload, type EndReason, type OutputEnd, type RecordingOptions } from './recording.js';
import { DtscPush } from './dtsc-push.js';
import { RtmpPush } from './rtmp-push.js';
import { SrtPush } from './srt-push.js';
import { TsUdpPush } from './ts-udp-push.js';
import type { ReconnectPolicy } from './reconnecting-push.js';
import { applyVariablesWith, streamVariables } from './variables.js';

/** Log lines kept for push_list / PUSH_END (MistServer keeps the last 10). */
export const PUSH_LOG_LINES = 10;

/** A recording's options (file system, queue bound, clock, variables) with the target as text. */
export interface PushRunnerOptions extends Omit<RecordingOptions, 'target' | 'log'> {
  /** The target as requested (after PUSH_OUT_START's rewrite, if any). */
  target: string;
  /** RTMP and DTSC: reconnect policy, per-step timeout and TLS options (rtmps://, dtscs://). */
  reconnect?: ReconnectPolicy;
  rtmpTimeoutMs?: number;
  tls?: import('node:tls').ConnectionOptions;
  /** DTSC: a ping after this long without sending (default 5 s). maxQueueBytes bounds its socket queue. */
  keepaliveMs?: number;
}

export type PushState = 'starting' | 'waiting' | 'recording' | 'connecting' | 'active' | 'reconnecting' | 'finishing' | 'ended';

/** What push_list shows per push (its status object) and PUSH_END's last status. */
export interface PushStatus {
  target: string;
  actualTarget: string;
  kind: PushKind | 'unknown';
  connector: string;
  state: PushState;
  bytes: number;
  /** Media ms sent / written, and the stream times of the first and last packet (-1 if none). */
  mediaMs: number;
  firstMs: number;
  lastMs: number;
  activeSeconds: number;
  droppedPackets: number;
  /** Recordings: bytes waiting for the disk (bounded by maxQueueBytes). */
  queuedBytes: number;
  reconnects: number;
  lastError: string | undefined;
  files: string[];
  logs: string[];
}

export interface PushRunnerEvents {
  end: OutputEnd;
}

export class PushRunner extends TypedEmitter<PushRunnerEvents> {
  readonly done: Promise<OutputEnd>;
  private resolveDone!: (e: OutputEnd) => void;
  private readonly logs: string[] = [];
  private parsed: PushTarget | undefined;
  private actualTarget: string;
  private recording: Recording | undefined;
  /** The network push (RTMP, DTSC or SRT), whichever runs. */
  private remote: RtmpPush | DtscPush | SrtPush | TsUdpPush | undefined;
  private readonly startedAt = Date.now();
  private ended: OutputEnd | undefined;
  private started = false;
  private readonly stream: string;

  constructor(private readonly opts: PushRunnerOptions) {
    super();
    this.done = new Promise((r) => (this.resolveDone = r));
    this.actualTarget = opts.target;
    this.stream = opts.stream ?? opts.hub.name;
  }

  get target(): string {
    return this.opts.target;
  }

  private addLog(line: string): void {
    this.logs.push(`${Math.floor(Date.now() / 1000)} ${line}`);
    if (this.logs.length > PUSH_LOG_LINES) this.logs.splice(0, this.logs.length - PUSH_LOG_LINES);
  }

  /** Starts the push; a bad target ends it at once with UNSUPPORTED and the reason. */
  start(): this {
    if (this.started) return this;
    this.started = true;
    try {
      this.parsed = parsePushTarget(this.opts.target);
    } catch (err) {
      this.finishWith('UNSUPPORTED', errorText(err));
      return this;
    }
    const t = this.parsed;
    if (t.kind === 'file') {
      const rec = new Recording({
        hub: this.opts.hub,
        target: t,
        stream: this.stream,
        ...(this.opts.variables ? { variables: this.opts.variables } : {}),
        ...(this.opts.now ? { now: this.opts.now } : {}),
        ...(this.opts.utc !== undefined ? { utc: this.opts.utc } : {}),
        ...(this.opts.fs ? { fs: this.opts.fs } : {}),
        ...(this.opts.maxQueueBytes !== undefined ? { maxQueueBytes: this.opts.maxQueueBytes } : {}),
        log: (line) => this.addLog(line),
      });
      this.recording = rec;
      void rec.done.then((e) => this.finish(e));
      void rec.start().catch((err: unknown) => rec.finish('WRITE_ERROR', errorText(err)));
      return this;
    }
    const url = applyVariablesWith(
      t.url,
      streamVariables({ stream: this.stream, now: this.opts.now?.() ?? new Date(), ...(this.opts.utc !== undefined ? { utc: this.opts.utc } : {}), ...(this.opts.variables ? { custom: this.opts.variables } : {}) }),
    );
    this.actualTarget = url;
    const pushOpts = {
      hub: this.opts.hub,
      target: t,
      url,
      ...(this.opts.reconnect ? { reconnect: this.opts.reconnect } : {}),
      ...(this.opts.rtmpTimeoutMs !== undefined ? { timeoutMs: this.opts.rtmpTimeoutMs } : {}),
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
      log: (line: string) => this.addLog(line),
    };
    const push =
      t.kind === 'dtsc'
        ? new DtscPush({
            ...pushOpts,
            ...(this.opts.maxQueueBytes !== undefined ? { maxQueueBytes: this.opts.maxQueueBytes } : {}),
            ...(this.opts.keepaliveMs !== undefined ? { keepaliveMs: this.opts.keepaliveMs } : {}),
          })
        : t.kind === 'srt'
          ? new SrtPush(pushOpts)
          : t.kind === 'tsudp'
            ? new TsUdpPush({ ...pushOpts, ...(this.opts.maxQueueBytes !== undefined ? { maxQueueBytes: this.opts.maxQueueBytes } : {}) })
            : new RtmpPush(pushOpts);
    this.remote = push;
    void push.done.then((e) => this.finishWith(e.reason, e.message));
    push.start();
    return this;
  }

  status(): PushStatus {
    const t = this.parsed;
    const base = {
      target: this.opts.target,
      kind: t?.kind ?? ('unknown' as const),
      connector: t?.connector ?? '',
      activeSeconds: Math.round(((this.ended ? this.ended.unixStop * 1000 : Date.now()) - this.startedAt) / 1000),
      logs: [...this.logs],
    };
    if (this.ended) {
      return { ...base, actualTarget: this.ended.actualTarget, state: 'ended', bytes: this.ended.bytes, mediaMs: this.ended.mediaMs, firstMs: this.ended.firstMs, lastMs: this.ended.lastMs, droppedPackets: this.ended.droppedPackets, queuedBytes: 0, reconnects: this.remote?.status().reconnects ?? 0, lastError: this.ended.reason === 'CLEAN_END' || this.ended.reason === 'STOPPED' ? undefined : this.ended.message, files: this.ended.files };
    }
    if (this.recording) {
      const s = this.recording.status();
      return { ...base, actualTarget: s.currentFile ?? this.actualTarget, state: s.state === 'ended' ? 'finishing' : s.state, bytes: s.bytes, mediaMs: s.firstMs >= 0 ? s.lastMs - s.firstMs : 0, firstMs: s.firstMs, lastMs: s.lastMs, droppedPackets: s.droppedPackets, queuedBytes: s.queuedBytes, reconnects: 0, lastError: undefined, files: s.files };
    }
    if (this.remote) {
      const s = this.remote.status();
      return { ...base, actualTarget: this.actualTarget, state: s.state === 'ended' ? 'finishing' : s.state, bytes: s.bytes, mediaMs: s.firstMs >= 0 ? s.lastMs - s.firstMs : 0, firstMs: s.firstMs, lastMs: s.lastMs, droppedPackets: s.droppedPackets, queuedBytes: 0, reconnects: s.reconnects, lastError: s.lastError, files: [] };
    }
    return { ...base, actualTarget: this.actualTarget, state: 'starting', bytes: 0, mediaMs: 0, firstMs: -1, lastMs: -1, droppedPackets: 0, queuedBytes: 0, reconnects: 0, lastError: undefined, files: [] };
  }

  /** Stops (STOPPED) and resolves with the end report once files are closed / the connection is gone. */
  async stop(message = 'stopped on request'): Promise<OutputEnd> {
    if (!this.started) this.finishWith('STOPPED', message);
    else if (this.recording) void this.recording.stop(message);
    else if (this.remote) void this.remote.stop(message);
    return this.done;
  }

  /** RECORDING_END / OUTPUT_END payload of the finished push (undefined while running). */
  endPayload(): string | undefined {
    return this.ended ? outputEndPayload(this.ended) : undefined;
  }

  private finishWith(reason: EndReason, message: string): void {
    const s = this.remote?.status();
    const now = Date.now();
    this.finish({
      stream: this.stream,
      target: this.opts.target,
      actualTarget: this.actualTarget,
      connector: this.parsed?.connector ?? '',
      bytes: s?.bytes ?? 0,
      secondsActive: Math.round((now - this.startedAt) / 1000),
      unixStart: Math.floor(this.startedAt / 1000),
      unixStop: Math.floor(now / 1000),
      mediaMs: s && s.firstMs >= 0 ? s.lastMs - s.firstMs : 0,
      firstMs: s?.firstMs ?? -1,
      lastMs: s?.lastMs ?? -1,
      reason,
      message,
      files: [],
      droppedPackets: s?.droppedPackets ?? 0,
    });
  }

  private finish(e: OutputEnd): void {
    if (this.ended) return;
    this.ended = e;
    this.addLog(`ended: ${e.reason}: ${e.message}`);
    this.resolveDone(e);
    this.emit('end', e);
  }
}

/** Starts a push of `opts.hub` to `opts.target`. */
export function startPush(opts: PushRunnerOptions): PushRunner {
  return new PushRunner(opts).start();
}
