// Firing triggers (reference/mistserver.md §4.1, MistServer's lib/triggers.cpp behaviour): every
// handler whose stream list matches gets the payload, a URL as an HTTP(S) POST and an executable
// on stdin. Blocking (`sync`) handlers are awaited and their reply decides; asynchronous ones run
// in the background and count as their default reply. Nothing here throws or rejects: a handler
// that fails, hangs or cannot start yields its default reply. Works in any process (workers fire
// their own triggers so they keep working while the controller is down).

import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { payloadText, TRIGGERS, type TriggerName, type TriggerPayload } from './trigger-map.js';
import { matches, type TriggerConfig, type TriggerHandler } from './trigger-config.js';
import { log as rootLog, type Logger } from '../util/log.js';
import { errorText } from '../util/errors.js';

export interface TriggerIdentity {
  /** The instance id (X-Instance, MIST_INSTANCE). */
  readonly iid: string;
  /** The configured server name (X-Name, MIST_NAME). */
  readonly serverid: string;
}

/** One handler execution, for `trigger_stat` / the mist_trigger_* Prometheus counters. */
export interface TriggerStat {
  readonly name: TriggerName;
  readonly ms: number;
  readonly ok: boolean;
}

export interface TriggerOutcome {
  /** Reply text of the last blocking handler ('' without one); trimmed for rewrite triggers. */
  readonly response: string;
  /** Every matching handler's reply (or default) read as a boolean, AND-ed; true when none. */
  readonly allowed: boolean;
  /** At least one handler matched. */
  readonly handled: boolean;
}

export interface FireOptions {
  /** Tags of the stream, for `#tag` entries. */
  readonly tags?: readonly string[];
  /** Extra filter on a handler's `params` (LIVE_BANDWIDTH: fire only when bps >= params). */
  readonly params?: (params: string) => boolean;
}

export interface TriggerDispatcherOptions {
  /** The current, normalised configuration (see compileTriggers); called on every fire. */
  readonly config: () => TriggerConfig;
  readonly identity: TriggerIdentity | (() => TriggerIdentity);
  /** Called once per handler execution; exceptions are swallowed. */
  readonly stat?: (s: TriggerStat) => void;
  /** Blocking handler time limit: HTTP abort, executable SIGTERM. Default 10 000. */
  readonly timeoutMs?: number;
  /** Executable SIGKILL. Default timeoutMs * 1.4 (14 s). */
  readonly killAfterMs?: number;
  /** Give up waiting for an executable (default reply). Default timeoutMs * 1.5 (15 s). */
  readonly giveUpAfterMs?: number;
  /** Reply bodies / stdout beyond this are cut off. Default 64 KiB. */
  readonly maxResponseBytes?: number;
  /** Executions of one trigger running at once; more wait in a queue. Default 16. */
  readonly maxConcurrent?: number;
  /** Executions of one trigger waiting; beyond this they get the default reply at once. Default 1024. */
  readonly maxQueued?: number;
  /** An asynchronous executable still running after this is terminated. Default 1 hour. */
  readonly asyncExecLimitMs?: number;
  readonly logger?: Logger;
}

interface HandlerResult {
  ok: boolean;
  text: string;
}

const NOT_HANDLED_OUTCOME: TriggerOutcome = Object.freeze({ response: '', allowed: true, handled: false });
/** One shared settled promise: firing with no listener allocates nothing. */
const NOT_HANDLED: Promise<TriggerOutcome> = Promise.resolve(NOT_HANDLED_OUTCOME);
const FAILED: HandlerResult = Object.freeze({ ok: false, text: '' }) as HandlerResult;
const MAX_STDERR_LOG_BYTES = 8192;

/** MistServer's boolean reading of a reply: starts with 1, yes, true or cont (any case, leading whitespace ignored). */
export function triggerReplyIsTrue(reply: string): boolean {
  const s = reply.trimStart().slice(0, 4).toLowerCase();
  return s.startsWith('1') || s.startsWith('yes') || s === 'true' || s === 'cont';
}

/** Header values must be visible ASCII; anything else (a UTF-8 server name) becomes '?'. */
function headerValue(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : s.replace(/[^\x20-\x7e]/g, '?');
}

class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    private readonly max: number,
    private readonly maxQueued: number,
  ) {}

  /** Runs fn when a slot is free; `rejected` when the queue is full or the wait exceeds waitMs. */
  run(fn: () => Promise<HandlerResult>, waitMs: number, onDropped: (why: string) => void): Promise<HandlerResult> {
    if (this.active < this.max) return this.start(fn);
    if (this.queue.length >= this.maxQueued) {
      onDropped(`queue full (${this.maxQueued} waiting)`);
      return Promise.resolve(FAILED);
    }
    return new Promise<HandlerResult>((resolve) => {
      const go = (): void => {
        clearTimeout(timer);
        void this.start(fn).then(resolve);
      };
      const timer = setTimeout(() => {
        const i = this.queue.indexOf(go);
        if (i >= 0) this.queue.splice(i, 1);
        onDropped(`waited ${waitMs} ms for a free slot`);
        resolve(FAILED);
      }, waitMs);
      this.queue.push(go);
    });
  }

  private start(fn: () => Promise<HandlerResult>): Promise<HandlerResult> {
    this.active++;
    let p: Promise<HandlerResult>;
    try {
      p = fn();
    } catch {
      p = Promise.resolve(FAILED);
    }
    return p.then(
      (r) => {
        this.release();
        return r;
      },
      () => {
        this.release();
        return FAILED;
      },
    );
  }

  private release(): void {
    this.active--;
    const next = this.queue.shift();
    if (next) next();
  }
}

export class TriggerDispatcher {
  private readonly getConfig: () => TriggerConfig;
  private readonly getIdentity: () => TriggerIdentity;
  private readonly onStat: ((s: TriggerStat) => void) | undefined;
  private readonly timeoutMs: number;
  private readonly killAfterMs: number;
  private readonly giveUpAfterMs: number;
  private readonly maxResponseBytes: number;
  private readonly maxConcurrent: number;
  private readonly maxQueued: number;
  private readonly asyncExecLimitMs: number;
  private readonly log: Logger;
  private readonly limiters = new Map<TriggerName, Limiter>();
  private running = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: TriggerDispatcherOptions) {
    this.getConfig = opts.config;
    const identity = opts.identity;
    this.getIdentity = typeof identity === 'function' ? identity : () => identity;
    this.onStat = opts.stat;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.killAfterMs = opts.killAfterMs ?? Math.round(this.timeoutMs * 1.4);
    this.giveUpAfterMs = opts.giveUpAfterMs ?? Math.round(this.timeoutMs * 1.5);
    this.maxResponseBytes = opts.maxResponseBytes ?? 64 * 1024;
    this.maxConcurrent = opts.maxConcurrent ?? 16;
    this.maxQueued = opts.maxQueued ?? 1024;
    this.asyncExecLimitMs = opts.asyncExecLimitMs ?? 3_600_000;
    this.log = opts.logger ?? rootLog;
  }

  /**
   * Whether firing would reach a handler (MistServer's shouldTrigger): lets a caller skip
   * building an expensive payload.
   */
  hasHandlers(name: TriggerName, stream: string, opts?: FireOptions): boolean {
    let list: readonly TriggerHandler[] | undefined;
    try {
      list = this.getConfig()[name];
    } catch {
      return false;
    }
    if (list === undefined || list.length === 0) return false;
    const s = TRIGGERS[name].global ? '' : stream;
    for (let i = 0; i < list.length; i++) if (this.applies(list[i]!, s, opts)) return true;
    return false;
  }

  /**
   * Fires a trigger for a stream. Global triggers ignore `stream` (they fire with an empty
   * name, so every handler matches). `payload` may be a function, called only when a handler
   * matches. Never rejects.
   */
  fire<N extends TriggerName>(name: N, stream: string, payload: TriggerPayload<N> | (() => TriggerPayload<N>), opts?: FireOptions): Promise<TriggerOutcome> {
    let list: readonly TriggerHandler[] | undefined;
    try {
      list = this.getConfig()[name];
    } catch (err) {
      this.log.error(`trigger ${name}: reading the trigger config failed: ${errorText(err)}`);
      return NOT_HANDLED;
    }
    if (list === undefined || list.length === 0) return NOT_HANDLED;
    const s = TRIGGERS[name].global ? '' : stream;
    let first = -1;
    for (let i = 0; i < list.length; i++) {
      if (this.applies(list[i]!, s, opts)) {
        first = i;
        break;
      }
    }
    if (first < 0) return NOT_HANDLED;
    const matching: TriggerHandler[] = [];
    for (let i = first; i < list.length; i++) if (i === first || this.applies(list[i]!, s, opts)) matching.push(list[i]!);
    return this.dispatch(name, matching, payload).catch((err: unknown) => {
      // Only a caller bug (a payload function that throws) gets here: every handler counts as its default.
      this.log.error(`trigger ${name}: ${errorText(err)}; using the default replies`);
      let allowed = true;
      for (const h of matching) allowed &&= triggerReplyIsTrue(h.default || 'true');
      return { response: '', allowed, handled: true };
    });
  }

  /** Executions (blocking or not) currently running or queued. */
  get inFlight(): number {
    return this.running;
  }

  /** Resolves when no execution is running or queued (tests, graceful shutdown). */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private applies(h: TriggerHandler, stream: string, opts: FireOptions | undefined): boolean {
    if (!matches(h, stream, opts?.tags)) return false;
    if (opts?.params === undefined) return true;
    try {
      return opts.params(h.params);
    } catch {
      return false;
    }
  }

  private async dispatch<N extends TriggerName>(name: N, handlers: readonly TriggerHandler[], payload: TriggerPayload<N> | (() => TriggerPayload<N>)): Promise<TriggerOutcome> {
    const body = payloadText(name, typeof payload === 'function' ? payload() : payload);
    const identity = this.getIdentity();
    const blocking: Promise<string>[] = [];
    let allowed = true;
    for (const h of handlers) {
      const fallback = h.default === '' ? 'true' : h.default;
      if (h.sync) {
        blocking.push(this.execute(name, h, body, identity, true).then((r) => (r.ok ? r.text : fallback)));
      } else {
        // fire and forget: execute() never rejects and logs its own failures
        void this.execute(name, h, body, identity, false);
        allowed &&= triggerReplyIsTrue(fallback);
      }
    }
    let response = '';
    if (blocking.length > 0) {
      // run side by side: n hanging handlers cost one timeout, not n
      const replies = await Promise.all(blocking);
      for (const r of replies) allowed &&= triggerReplyIsTrue(r);
      response = replies[replies.length - 1]!;
      // a script's `echo` adds a newline a stream name or URL never ends with
      if (TRIGGERS[name].kind === 'rewrite') response = response.trim();
    }
    return { response, allowed, handled: true };
  }

  private limiter(name: TriggerName): Limiter {
    let l = this.limiters.get(name);
    if (!l) {
      l = new Limiter(this.maxConcurrent, this.maxQueued);
      this.limiters.set(name, l);
    }
    return l;
  }

  /** One handler run through the per-trigger limiter; resolves (never rejects) with ok/text. */
  private execute(name: TriggerName, h: TriggerHandler, body: string, identity: TriggerIdentity, sync: boolean): Promise<HandlerResult> {
    this.running++;
    const startMs = performance.now();
    const run = (): Promise<HandlerResult> => (h.isUrl ? this.post(name, h, body, identity, sync) : this.exec(name, h, body, identity, sync));
    const dropped = (why: string): void => this.log.warn(`trigger ${name} -> ${h.handler}: not run, ${why}; using the default reply`);
    return this.limiter(name)
      .run(run, this.giveUpAfterMs, dropped)
      .then((r) => {
        this.report(name, performance.now() - startMs, r.ok);
        return r;
      })
      .finally(() => {
        this.running--;
        if (this.running === 0 && this.idleWaiters.length > 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
  }

  private report(name: TriggerName, ms: number, ok: boolean): void {
    if (!this.onStat) return;
    try {
      this.onStat({ name, ms: Math.round(ms), ok });
    } catch (err) {
      this.log.error(`trigger stat callback threw: ${errorText(err)}`);
    }
  }

  private post(name: TriggerName, h: TriggerHandler, body: string, identity: TriggerIdentity, sync: boolean): Promise<HandlerResult> {
    return new Promise<HandlerResult>((resolve) => {
      const cap = this.maxResponseBytes;
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (ok: boolean, text: string, why?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!ok) this.log.warn(`trigger ${name} -> ${h.handler} failed (${why ?? 'error'})${sync ? `; using the default reply "${h.default || 'true'}"` : ''}`);
        resolve({ ok, text });
      };
      const payload = Buffer.from(body, 'utf8');
      const now = new Date();
      let req: http.ClientRequest;
      try {
        const url = new URL(h.handler);
        const mod = url.protocol === 'https:' ? https : http;
        req = mod.request(url, {
          method: 'POST',
          headers: {
            'Content-Type': 'text/plain',
            'Content-Length': String(payload.length),
            'X-Trigger': name,
            'X-Instance': headerValue(identity.iid),
            'X-Name': headerValue(identity.serverid),
            'X-PID': String(process.pid),
            'X-Trigger-UUID': randomUUID(),
            'X-Trigger-UnixMillis': String(now.getTime()),
            Date: now.toUTCString(),
          },
        });
      } catch (err) {
        finish(false, '', errorText(err));
        return;
      }
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status < 300;
        if (!sync || !ok) {
          // nothing to read: drain so a kept-alive socket can be reused
          res.resume();
          res.on('end', () => finish(ok, '', `HTTP ${status}`));
          res.on('error', () => finish(ok, '', `HTTP ${status}`));
          res.on('close', () => finish(ok, '', `HTTP ${status}`));
          return;
        }
        let buf: Buffer | undefined;
        let size = 0;
        res.on('data', (d: Buffer) => {
          if (done) return;
          if (buf === undefined) buf = Buffer.allocUnsafe(Math.min(cap, Math.max(d.length, 1024)));
          const take = Math.min(d.length, cap - size);
          if (size + take > buf.length) {
            const grown = Buffer.allocUnsafe(Math.min(cap, Math.max(buf.length * 2, size + take)));
            buf.copy(grown, 0, 0, size);
            buf = grown;
          }
          d.copy(buf, size, 0, take);
          size += take;
          if (size >= cap) {
            this.log.warn(`trigger ${name} -> ${h.handler}: reply cut off at ${cap} bytes`);
            finish(true, buf.toString('utf8', 0, size));
            res.destroy();
          }
        });
        res.on('end', () => finish(true, buf === undefined ? '' : buf.toString('utf8', 0, size)));
        res.on('error', (err) => finish(false, '', errorText(err)));
        res.on('close', () => finish(false, '', 'connection closed before the reply ended'));
      });
      req.on('error', (err) => finish(false, '', errorText(err)));
      timer = setTimeout(() => {
        finish(false, '', `no reply within ${this.timeoutMs} ms`);
        req.destroy();
      }, this.timeoutMs);
      req.end(payload);
    });
  }

  private exec(name: TriggerName, h: TriggerHandler, body: string, identity: TriggerIdentity, sync: boolean): Promise<HandlerResult> {
    return new Promise<HandlerResult>((resolve) => {
      const cap = this.maxResponseBytes;
      const def = h.default === '' ? 'true' : h.default;
      const timers: NodeJS.Timeout[] = [];
      let done = false;
      let timedOut = false;
      let child: ChildProcess;
      const finish = (ok: boolean, text: string, why?: string): void => {
        if (done) return;
        done = true;
        if (!ok) this.log.warn(`trigger ${name} -> ${h.handler} failed (${why ?? 'error'})${sync ? `; using the default reply "${def}"` : ''}`);
        resolve({ ok, text });
      };
      const clearTimers = (): void => {
        for (const t of timers) clearTimeout(t);
      };
      try {
        child = spawn(h.handler, [name], {
          stdio: ['pipe', 'pipe', 'pipe'],
          env: {
            ...process.env,
            MIST_TRIGGER: name,
            MIST_TRIG_DEF: def,
            MIST_PID: String(process.pid),
            MIST_INSTANCE: identity.iid,
            MIST_NAME: identity.serverid,
          },
        });
      } catch (err) {
        finish(false, '', `cannot start: ${errorText(err)}`);
        return;
      }
      child.on('error', (err) => {
        clearTimers();
        finish(false, '', `cannot start: ${errorText(err)}`);
      });
      // a script that exits without reading its stdin makes this write fail with EPIPE
      child.stdin!.on('error', () => {});
      child.stdin!.end(body);

      let out: Buffer | undefined;
      let outSize = 0;
      if (sync) {
        child.stdout!.on('data', (d: Buffer) => {
          const take = Math.min(d.length, cap - outSize);
          if (take <= 0) return; // keep draining so the script does not block on a full pipe
          if (out === undefined) out = Buffer.allocUnsafe(cap);
          d.copy(out, outSize, 0, take);
          outSize += take;
        });
      } else {
        child.stdout!.resume();
      }
      const plog = this.log.child({ trigger: name, pid: child.pid });
      let errLogged = 0;
      let errRest = '';
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (d: string) => {
        if (errLogged >= MAX_STDERR_LOG_BYTES) return;
        errLogged += d.length;
        const lines = (errRest + d).split('\n');
        errRest = lines.pop() ?? '';
        for (const line of lines) if (line !== '') plog.warn(`${h.handler}: ${line}`);
      });

      if (sync) {
        timers.push(
          setTimeout(() => {
            timedOut = true;
            this.log.warn(`trigger ${name} -> ${h.handler}: no reply within ${this.timeoutMs} ms, sending SIGTERM`);
            child.kill('SIGTERM');
          }, this.timeoutMs),
          setTimeout(() => child.kill('SIGKILL'), this.killAfterMs),
          setTimeout(() => {
            // the process (or a child holding its stdout) would not go away: stop waiting
            child.stdout!.destroy();
            child.stderr!.destroy();
            finish(false, '', `gave up after ${this.giveUpAfterMs} ms`);
          }, this.giveUpAfterMs),
        );
      } else {
        // the slot is freed after the give-up time; the process itself may run on (uploads)
        // up to a hard limit
        const release = setTimeout(() => finish(true, ''), this.giveUpAfterMs);
        const term = setTimeout(() => {
          this.log.warn(`trigger ${name} -> ${h.handler}: still running after ${this.asyncExecLimitMs} ms, terminating`);
          child.kill('SIGTERM');
          const kill = setTimeout(() => child.kill('SIGKILL'), this.killAfterMs - this.timeoutMs);
          kill.unref();
          timers.push(kill);
        }, this.asyncExecLimitMs);
        release.unref();
        term.unref();
        timers.push(release, term);
      }

      child.on('close', (code, signal) => {
        clearTimers();
        if (errRest !== '' && errLogged < MAX_STDERR_LOG_BYTES) plog.warn(`${h.handler}: ${errRest}`);
        if (timedOut) return finish(false, '', `killed after the ${this.timeoutMs} ms time limit`);
        if (code !== 0) return finish(false, '', signal ? `killed by ${signal}` : `exit code ${code}`);
        if (outSize >= cap) this.log.warn(`trigger ${name} -> ${h.handler}: reply cut off at ${cap} bytes`);
        finish(true, out === undefined ? '' : out.toString('utf8', 0, outSize));
      });
    });
  }
}
