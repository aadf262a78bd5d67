// The pushing side of dtsc:// (reference/mistserver.md §2.6; MistServer's OutDTSC in push mode):
// one TCP (dtsc://) or TLS (dtscs://) connection to a DTSC listener that carries one stream.
//
//   server -> {"cmd":"hi",...}                                            on accept (logged)
//   client -> {"cmd":"push","password":P,"stream":S,"version":"Haze/.."}  (members sorted)
//   server -> {"cmd":"ok","msg":"You're cleared for pushing! DTSC_HEAD please?"}
//   client -> DTSC header (live, tracks numbered 1..n, no index tables)
//   server -> {"cmd":"ok","msg":"DTSC_HEAD parsed, we went from X to Y tracks. ..."}
//   client -> DTP2 packets; a new header whenever the tracks change
//   Both ways: ping -> {"cmd":"ok","msg":"Pong!"}. {"cmd":"error","msg":..} ends the push: the
//   server refused it or found it broken, and trying again would give the same answer.
//
// The URL parser and the reply classification are pure; DtscPushClient owns the socket. A
// server that neither sends nor answers for a while is found by a ping (a push that has no
// packets to send keeps the listener's idle timeout from firing the same way).

import net from 'node:net';
import tls from 'node:tls';
import { getText, type DtmiObject } from '../../containers/dtsc/dtmi.js';
import { DtscFrameReader, encodeDtcm } from '../../containers/dtsc/packets.js';
import { HazeError, errorText } from '../../util/errors.js';
import { TypedEmitter } from '../../util/events.js';
import { HAZE_VERSION } from '../../util/version.js';
import type { DtscPushUrl } from './push-url.js';

/** The `push` command that opens a push (MistServer sends the password even when empty). */
export function pushCommandFrame(stream: string, password: string): Buffer {
  return encodeDtcm({ cmd: 'push', password, stream, version: `Haze/${HAZE_VERSION}` });
}

/** A command the server sent, as the pusher sees it. */
export type DtscPushReply =
  | { kind: 'ok'; message: string; tracks?: { from: number; to: number } }
  | { kind: 'error'; message: string }
  | { kind: 'ping' }
  | { kind: 'hi'; version: string }
  | { kind: 'other'; cmd: string };

const HEAD_PARSED = /^DTSC_HEAD parsed, we went from (\d+) to (\d+) tracks/;

/** Classifies one DTCM command from the server; never throws. */
export function parsePushReply(cmd: DtmiObject): DtscPushReply {
  const name = getText(cmd, 'cmd') ?? '';
  const msg = getText(cmd, 'msg') ?? '';
  switch (name) {
    case 'ok': {
      const m = HEAD_PARSED.exec(msg);
      return m ? { kind: 'ok', message: msg, tracks: { from: Number(m[1]), to: Number(m[2]) } } : { kind: 'ok', message: msg };
    }
    case 'error':
      return { kind: 'error', message: msg || 'error without a message' };
    case 'ping':
      return { kind: 'ping' };
    case 'hi':
      return { kind: 'hi', version: getText(cmd, 'version') ?? '' };
    default:
      return { kind: 'other', cmd: name };
  }
}

export interface DtscPushClientOptions {
  /** TCP/TLS connect, clearance and each header's `ok` may take this long (default 10 s). */
  timeoutMs?: number;
  /** dtscs://: TLS options (`ca`, `rejectUnauthorized`, ...); the URL's host name is the SNI. */
  tls?: tls.ConnectionOptions;
  /** A ping goes out after this long without sending (default 5 s); no answer within timeoutMs ends the connection. */
  keepaliveMs?: number;
  /** Largest frame the server may send (its commands are small; default 1 MiB). */
  maxFrameBytes?: number;
  log?: (line: string) => void;
}

export interface DtscPushClientEvents {
  /** The connection ended; the payload says why. */
  close: string;
}

interface Waiter {
  resolve(message: string): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const PONG = { cmd: 'ok', msg: 'Pong!' } as const;

export class DtscPushClient extends TypedEmitter<DtscPushClientEvents> {
  private socket: net.Socket | undefined;
  private readonly reader: DtscFrameReader;
  private closedReason: string | undefined;
  /** The server's `error` text, once it sent one. */
  private refusal: string | undefined;
  /** Callers waiting for the next `ok` (clearance, header parsed), in order. */
  private readonly waiters: Waiter[] = [];
  private keepalive: NodeJS.Timeout | undefined;
  private lastSentAt = Date.now();
  private lastRecvAt = Date.now();
  private pingSentAt = 0;
  private sentBytes = 0;
  /** The server's version from its `hi`. */
  serverVersion = '';

  constructor(private readonly opts: DtscPushClientOptions = {}) {
    super();
    this.reader = new DtscFrameReader({ maxFrameBytes: opts.maxFrameBytes ?? 1024 * 1024 });
  }

  private get timeoutMs(): number {
    return this.opts.timeoutMs ?? 10_000;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** The server's `error` message, if it sent one (the push must not be retried as is). */
  get serverError(): string | undefined {
    return this.refusal;
  }

  /** Bytes written to the socket and not yet handed to the kernel. */
  get writableLength(): number {
    return this.socket?.writableLength ?? 0;
  }

  get bytesSent(): number {
    return this.sentBytes;
  }

  /**
   * Connects, sends `push` and resolves once the server cleared it. A refusal rejects with
   * HAZE_ERR_REFUSED carrying the server's text; no answer in time with HAZE_ERR_TIMEOUT.
   */
  async connect(url: DtscPushUrl): Promise<void> {
    if (this.socket) throw new HazeError('HAZE_ERR_PROTOCOL', 'DtscPushClient.connect called twice');
    const socket = await this.open(url);
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.onClosed(`connection error: ${err.message}`));
    socket.on('end', () => this.onClosed('the target closed the connection'));
    socket.on('close', () => this.onClosed('connection closed'));
    const cleared = this.nextOk('push clearance');
    this.write(pushCommandFrame(url.stream, url.password));
    await cleared;
    this.keepalive = setInterval(() => this.tick(), Math.max(50, Math.min(1000, (this.opts.keepaliveMs ?? 5000) / 2)));
    this.keepalive.unref();
  }

  /** Sends a DTSC header and resolves with the server's `ok` text ("DTSC_HEAD parsed, ..."). */
  sendHeader(frame: Buffer): Promise<string> {
    const parsed = this.nextOk('DTSC_HEAD parsed');
    this.write(frame);
    return parsed;
  }

  /**
   * Sends one frame (a DTP2 packet, or a header whose `ok` nobody waits for: the server
   * handles frames in order, so packets behind a header are read after it). Returns false
   * when the connection is closed.
   */
  send(frame: Buffer): boolean {
    return this.write(frame);
  }

  /** Resolves when the socket's buffer has drained, or it closed. */
  drain(): Promise<void> {
    const s = this.socket;
    if (!s || this.closed || !s.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        s.off('drain', done);
        s.off('close', done);
        resolve();
      };
      s.on('drain', done);
      s.on('close', done);
    });
  }

  /** Ends the connection gracefully (the listener takes a closed push as a clean end). */
  close(reason = 'closed'): Promise<void> {
    const s = this.socket;
    if (!s || this.closed) {
      this.onClosed(reason);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => s.destroy(), 2000);
      timer.unref();
      s.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      s.end();
      this.onClosed(reason);
    });
  }

  /** Drops the connection at once. */
  destroy(reason: string): void {
    this.socket?.destroy();
    this.onClosed(reason);
  }

  // ---- internals ----------------------------------------------------------------------------

  private open(url: DtscPushUrl): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      // SNI carries host names only (RFC 6066 §3)
      const s: net.Socket = url.secure
        ? tls.connect({ host: url.host, port: url.port, ...(net.isIP(url.host) ? {} : { servername: url.host }), ...this.opts.tls })
        : net.connect({ host: url.host, port: url.port });
      const what = `${url.secure ? 'TLS' : 'TCP'} connect to ${url.host}:${url.port}`;
      const timer = setTimeout(() => {
        s.destroy();
        reject(new HazeError('HAZE_ERR_TIMEOUT', `${what} timed out`));
      }, this.timeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(new HazeError('HAZE_ERR_CLOSED', `${what}: ${err.message}`));
      };
      s.once('error', onError);
      s.once(url.secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.off('error', onError);
        s.setNoDelay(true);
        resolve(s);
      });
    });
  }

  private write(frame: Buffer): boolean {
    const s = this.socket;
    if (!s || this.closed || s.destroyed) return false;
    this.lastSentAt = Date.now();
    this.sentBytes += frame.length;
    s.write(frame);
    return true;
  }

  /** A promise of the next `ok`; rejected by an `error`, the close or the timeout. */
  private nextOk(what: string): Promise<string> {
    if (this.closedReason !== undefined) return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(new HazeError('HAZE_ERR_TIMEOUT', `no ${what} from the target within ${this.timeoutMs} ms`));
          this.destroy(`no ${what} within ${this.timeoutMs} ms`);
        }, this.timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  private closedError(): HazeError {
    return this.refusal !== undefined ? new HazeError('HAZE_ERR_REFUSED', this.refusal) : new HazeError('HAZE_ERR_CLOSED', this.closedReason ?? 'connection closed');
  }

  private onData(chunk: Buffer): void {
    this.lastRecvAt = Date.now();
    this.pingSentAt = 0;
    let frames;
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      this.destroy(`unreadable data from the target: ${errorText(err)}`);
      return;
    }
    for (const f of frames) {
      if (this.closed) return;
      if (f.kind !== 'command') {
        // a DTSC listener sends commands only to a pusher
        this.destroy(`the target sent a ${f.kind} frame to a pusher`);
        return;
      }
      this.onReply(parsePushReply(f.command));
    }
  }

  private onReply(r: DtscPushReply): void {
    switch (r.kind) {
      case 'ok':
      {
        // "Pong!" answers our keepalive ping; any other `ok` is the one a caller waits for
        if (r.message === PONG.msg) return;
        const w = this.waiters.shift();
        if (w) {
          clearTimeout(w.timer);
          w.resolve(r.message);
        } else this.opts.log?.(`target: ${r.message}`);
        return;
      }
      case 'error':
        this.refusal = r.message;
        this.destroy(`the target answered with an error: ${r.message}`);
        return;
      case 'ping':
        this.write(encodeDtcm(PONG));
        return;
      case 'hi':
        this.serverVersion = r.version;
        return;
      case 'other':
        this.opts.log?.(`unhandled command from the target: ${JSON.stringify(r.cmd)}`);
    }
  }

  /** Keepalive: a ping when idle; a target that answers nothing to it within timeoutMs is gone. */
  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    if (this.pingSentAt > 0 && this.lastRecvAt < this.pingSentAt && now - this.pingSentAt >= this.timeoutMs) {
      this.destroy(`the target did not answer a ping within ${this.timeoutMs} ms`);
      return;
    }
    if (this.pingSentAt === 0 && now - this.lastSentAt >= (this.opts.keepaliveMs ?? 5000)) {
      this.pingSentAt = now;
      this.write(encodeDtcm({ cmd: 'ping' }));
    }
  }

  private onClosed(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    if (this.keepalive) clearInterval(this.keepalive);
    const err = this.closedError();
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.emit('close', reason);
  }
}
