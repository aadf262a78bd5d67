// `ts-exec:COMMAND` sources (reference/mistserver.md §5.2, the TS input): a command writing
// MPEG-TS to its stdout, such as MistServer's videogen recipe
// `ts-exec:ffmpeg -re -f lavfi -i "..." ... -f mpegts -`. The command runs under `sh -c`, so the
// quoting of a recipe copied from a shell script means what it meant there (MistServer splits
// on spaces itself, which breaks quoted filter graphs). A connection is one run of the
// process: it counts as connected once the first bytes come out (a command that fails at once
// is retried a few times, then the input aborts with its last stderr line), and ends when the
// process exits; the pull framework starts it again with backoff. stderr goes to the log line
// by line (debug level: ffmpeg is chatty), its last lines into the error of a failed run.
// The process runs in its own process group so that stopping the input stops every process of
// a pipeline, not only the shell.

import { spawn, type ChildProcess } from 'node:child_process';
import { errorText, HazeError, isHazeError } from '../../util/errors.js';
import { reconnectingPull, type PullConnection, type PullContext, type PullKind, type PullSink } from './pull-input.js';
import { trackPullConnection } from './pull-common.js';
import { TsPullFeed } from './ts-feed.js';
import { tsExecCommand } from './ts-source.js';

export interface TsExecPullOptions {
  /** The command must write its first bytes within this long (default 30 s). */
  startTimeoutMs?: number;
  /** After SIGTERM, a process still running this long later gets SIGKILL (default 2 s). */
  killAfterMs?: number;
  /** First pause before a restart (default 1 s; doubles while runs keep failing). */
  minRestartMs?: number;
}

const STDERR_LINES_KEPT = 5;
const MAX_LINE_CHARS = 500;

/** The pull kind of `ts-exec:` sources. */
export function tsExecPull(opts: TsExecPullOptions = {}): PullKind {
  return {
    name: 'TSEXEC',
    accepts: (source) => tsExecCommand(source) !== undefined,
    start: (ctx) => startTsExecPull(ctx, opts),
  };
}

/** Signals a process group (falls back to the process itself when it is no group leader). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // gone already
    }
  }
}

function startTsExecPull(ctx: PullContext, opts: TsExecPullOptions): { stop(): void } {
  const command = tsExecCommand(ctx.source)!;
  /** The process of the run being started, so that a stop during its start kills it. */
  let starting: ExecRun | undefined;
  const loop = reconnectingPull(
    ctx,
    async (sink, attempt) => {
      const run = new ExecRun(ctx, sink, command, attempt, opts);
      starting = run;
      try {
        await run.started;
      } finally {
        if (starting === run) starting = undefined;
      }
      return run;
    },
    { minDelayMs: opts.minRestartMs ?? 1000 },
  );
  return {
    stop: () => {
      loop.stop();
      starting?.close();
    },
  };
}

/** One run of the command. */
class ExecRun implements PullConnection {
  readonly done: Promise<string>;
  /** Resolves at the first bytes on stdout; rejects when the process ends or stays silent before. */
  readonly started: Promise<void>;
  private resolveStarted!: () => void;
  private rejectStarted!: (err: Error) => void;
  private resolveDone!: (why: string) => void;
  private rejectDone!: (err: Error) => void;
  private readonly child: ChildProcess;
  private readonly feed: TsPullFeed;
  private readonly stderrTail: string[] = [];
  private partialLine = '';
  private hasOutput = false;
  private exited = false;
  private settled = false;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly startTimer: NodeJS.Timeout;

  constructor(
    private readonly ctx: PullContext,
    sink: PullSink,
    command: string,
    attempt: number,
    private readonly opts: TsExecPullOptions,
  ) {
    this.started = new Promise((resolve, reject) => {
      this.resolveStarted = resolve;
      this.rejectStarted = reject;
    });
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // a failed start is reported through `started`; `done` only matters once started
    this.done.catch(() => {});
    this.feed = new TsPullFeed(sink, ctx.log, `stream ${ctx.name}: ts-exec`);
    this.child = spawn('sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    ctx.log.info(`stream ${ctx.name}: ts-exec run ${attempt} (pid ${this.child.pid ?? '?'}): ${command.slice(0, 300)}`);
    const tracked = trackPullConnection(ctx, 'INPUT:TS', '127.0.0.1', () => ({ down: 0, up: this.feed.bytes }));
    void this.done.finally(() => tracked.end()).catch(() => {});
    const startMs = opts.startTimeoutMs ?? 30_000;
    this.startTimer = setTimeout(() => this.fail(new Error(`no output within ${startMs / 1000} s`)), startMs);
    this.startTimer.unref();

    this.child.stdout!.on('data', (chunk: Buffer) => this.onData(chunk));
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (text: string) => this.onStderr(text));
    this.child.once('error', (err) => this.fail(new Error(`cannot run the command: ${err.message}`)));
    this.child.once('exit', () => {
      this.exited = true;
      if (this.killTimer) clearTimeout(this.killTimer);
    });
    // 'close' comes after the exit and the last of stdout and stderr: no output is lost
    this.child.once('close', (code, signal) => {
      this.exited = true;
      this.flushStderr();
      if (this.settled) return;
      const last = this.stderrTail.length > 0 ? `: ${this.stderrTail[this.stderrTail.length - 1]}` : '';
      if (code === 0) this.finish(`the command exited${this.hasOutput ? '' : ' without output'}`, !this.hasOutput);
      else this.fail(new Error(`the command ${signal ? `was killed by ${signal}` : `exited with code ${code}`}${last}`));
    });
  }

  private onData(chunk: Buffer): void {
    if (this.settled) return;
    try {
      this.feed.push(chunk);
    } catch (err) {
      this.fail(isHazeError(err) ? new HazeError(err.code, `the command's output: ${err.message}`, { fatal: false }) : new Error(`demuxer: ${errorText(err)}`));
      return;
    }
    if (!this.hasOutput) {
      this.hasOutput = true;
      clearTimeout(this.startTimer);
      this.resolveStarted();
    }
  }

  private onStderr(text: string): void {
    const lines = (this.partialLine + text).split(/\r\n|\r|\n/);
    this.partialLine = (lines.pop() ?? '').slice(-MAX_LINE_CHARS);
    for (const line of lines) this.stderrLine(line);
  }

  private flushStderr(): void {
    if (this.partialLine) this.stderrLine(this.partialLine);
    this.partialLine = '';
  }

  private stderrLine(raw: string): void {
    const line = raw.trim().slice(0, MAX_LINE_CHARS);
    if (!line) return;
    this.ctx.log.debug(`stream ${this.ctx.name}: ts-exec: ${line}`);
    this.stderrTail.push(line);
    if (this.stderrTail.length > STDERR_LINES_KEPT) this.stderrTail.shift();
  }

  close(): void {
    this.finish('stopped', false);
  }

  /** The run ended well (the process exited 0, or we stopped it). */
  private finish(why: string, asFailure: boolean): void {
    if (asFailure) {
      this.fail(new Error(why));
      return;
    }
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.rejectStarted(new Error(why));
    this.resolveDone(why);
  }

  private fail(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.cleanup();
    this.rejectStarted(err);
    this.rejectDone(err);
  }

  private cleanup(): void {
    clearTimeout(this.startTimer);
    this.feed.end();
    this.child.stdout?.destroy();
    if (this.exited) return;
    signalGroup(this.child, 'SIGTERM');
    this.killTimer = setTimeout(() => signalGroup(this.child, 'SIGKILL'), this.opts.killAfterMs ?? 2000);
    this.killTimer.unref();
  }
}
