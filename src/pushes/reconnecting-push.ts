// What the RTMP and DTSC re-pushes share (reference §5.5): connect, feed the hub's packets until
// the connection drops, then again after a back-off (doubling from 500 ms to 10 s) until
// stopped; the counters and status push_list shows; the end report. A subclass says how to
// connect, how to feed, and which failures are final (a target that refuses the push would
// refuse it again on every retry).

import type { StreamHub } from '../hub/stream-hub.js';
import { errorText } from '../util/errors.js';
import { HubTap, type TapHandler, type TapOptions } from './hub-tap.js';
import type { EndReason } from './recording.js';

export interface ReconnectPolicy {
  /** First wait after a drop (default 500 ms), doubled per failed attempt... */
  initialDelayMs?: number;
  /** ...up to this (default 10 s). */
  maxDelayMs?: number;
  /** Consecutive failed attempts before giving up (default: never). */
  maxAttempts?: number;
}

export type PushConnectionState = 'connecting' | 'waiting' | 'active' | 'reconnecting' | 'ended';

export interface PushConnectionStatus {
  state: PushConnectionState;
  bytes: number;
  packets: number;
  droppedPackets: number;
  reconnects: number;
  lastError: string | undefined;
  firstMs: number;
  lastMs: number;
}

export interface PushConnectionEnd {
  reason: EndReason;
  message: string;
}

/** The connection a push feeds: closed state, a 'close' event and an abrupt end. */
export interface PushConnection {
  readonly closed: boolean;
  on(event: 'close', fn: (reason: string) => void): () => void;
  destroy(reason: string): void;
}

export interface ReconnectingPushOptions {
  hub: StreamHub;
  /** The URL after variables. */
  url: string;
  reconnect?: ReconnectPolicy;
  log?: (line: string) => void;
}

export abstract class ReconnectingPush<C extends PushConnection> {
  readonly done: Promise<PushConnectionEnd>;
  private resolveDone!: (e: PushConnectionEnd) => void;
  protected client: C | undefined;
  protected tap: HubTap | undefined;
  protected state: PushConnectionState = 'connecting';
  protected stopping: PushConnectionEnd | undefined;
  private attempts = 0;
  private reconnects = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;
  protected lastError: string | undefined;
  protected bytes = 0;
  protected packets = 0;
  protected dropped = 0;
  protected firstMs = -1;
  protected lastMs = -1;

  constructor(private readonly base: ReconnectingPushOptions) {
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  protected log(line: string): void {
    this.base.log?.(line);
  }

  status(): PushConnectionStatus {
    return { state: this.state, bytes: this.bytes, packets: this.packets, droppedPackets: this.dropped, reconnects: this.reconnects, lastError: this.lastError, firstMs: this.firstMs, lastMs: this.lastMs };
  }

  start(): void {
    void this.run();
  }

  /**
   * A connection ready to be fed (published / cleared), or a throw. Set `this.client` as soon
   * as the connection object exists, so that a stop during the connect closes it.
   */
  protected abstract connect(): Promise<C>;
  /** Feeds the connection from the hub; resolves with why it ended. */
  protected abstract feed(client: C): Promise<string>;
  /** Ends the connection gracefully. */
  protected abstract closeClient(client: C, reason: string): Promise<void>;
  /** The end of a push whose attempt failed this way for good, or undefined to retry. */
  protected abstract finalFailure(client: C | undefined, err: unknown): PushConnectionEnd | undefined;

  /** Counts a packet handed to the connection. */
  protected sent(bytes: number, timeMs: number): void {
    this.state = 'active';
    this.bytes += bytes;
    this.packets++;
    if (this.firstMs < 0) this.firstMs = timeMs;
    if (timeMs > this.lastMs) this.lastMs = timeMs;
  }

  private async run(): Promise<void> {
    const policy = this.base.reconnect ?? {};
    const initial = policy.initialDelayMs ?? 500;
    const max = policy.maxDelayMs ?? 10_000;
    while (!this.stopping) {
      this.state = this.reconnects > 0 || this.attempts > 0 ? 'reconnecting' : 'connecting';
      this.client = undefined;
      let dropped: string;
      let failed: unknown;
      try {
        const client = await this.connect();
        this.client = client;
        if (this.stopping) {
          await this.closeClient(client, 'stopped').catch(() => undefined);
          break;
        }
        this.attempts = 0;
        dropped = await this.feed(client);
      } catch (err) {
        failed = err;
        dropped = errorText(err);
      }
      if (this.stopping) break;
      const final = this.finalFailure(this.client, failed);
      if (final) {
        this.lastError = dropped;
        this.end(final.reason, final.message);
        break;
      }
      this.lastError = dropped;
      this.attempts++;
      if (policy.maxAttempts !== undefined && this.attempts >= policy.maxAttempts) {
        this.end('PUSH_FAILED', `gave up after ${this.attempts} attempt(s): ${dropped}`);
        break;
      }
      const delay = Math.min(max, initial * 2 ** Math.min(20, this.attempts - 1));
      this.state = 'reconnecting';
      this.log(`connection to ${this.base.url} lost (${dropped}); retrying in ${delay} ms`);
      await new Promise<void>((resolve) => {
        this.wakeRetry = resolve;
        this.retryTimer = setTimeout(resolve, delay);
      });
      this.wakeRetry = undefined;
      if (!this.stopping) this.reconnects++;
    }
    this.state = 'ended';
    this.resolveDone(this.stopping ?? { reason: 'STOPPED', message: 'stopped' });
  }

  /**
   * Taps the hub for one connection until that connection closes (the tap is closed then);
   * resolves with the close reason.
   */
  protected tapUntilClosed(client: C, options: TapOptions, handler: TapHandler): Promise<string> {
    return new Promise((resolve) => {
      const tap = new HubTap(this.base.hub, options, handler);
      this.tap = tap;
      const off = client.on('close', (reason) => {
        off();
        tap.close();
        resolve(reason);
      });
      if (client.closed) {
        off();
        resolve('connection closed');
        return;
      }
      tap.open();
    });
  }

  protected end(reason: EndReason, message: string): void {
    if (this.stopping) return;
    this.stopping = { reason, message };
    this.tap?.close();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    const c = this.client;
    if (c && !c.closed) void this.closeClient(c, message).catch(() => undefined);
  }

  /** Stops: ends the connection cleanly for the target; resolves when the loop has ended. */
  stop(message = 'stopped on request'): Promise<PushConnectionEnd> {
    this.end('STOPPED', message);
    return this.done;
  }
}
