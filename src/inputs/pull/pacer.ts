// Releases packets that arrive in bursts (a whole HLS segment at once) at the pace of their
// timestamps, so the hub and its viewers see a live stream rather than a download. The first
// packet anchors media time to the wall clock; a packet is released once the wall clock has
// passed its time minus `leadMs` (a lead of one segment lets the first segment out at once, so
// a new viewer starts without waiting). A source that falls behind re-anchors (late packets go
// out now, the ones after them at pace again); a queue that grows beyond `maxAheadMs` ahead of
// the clock is let out faster, so the lag behind the source stays bounded.

import type { Packet } from '../../media/types.js';

export interface PacerOptions {
  /** How far ahead of the wall clock packets go out (ms). */
  leadMs: number;
  /** Queued media beyond this far ahead of the clock is released at once (ms; default 4 x leadMs, at least 10 s). */
  maxAheadMs?: number;
  /** Now, in ms (tests). */
  now?: () => number;
}

export class Pacer {
  private queue: Packet[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private anchorWallMs = 0;
  private anchorMediaMs = 0;
  private anchored = false;
  private stopped = false;
  private drainWaiters: (() => void)[] = [];
  private readonly now: () => number;
  private readonly maxAheadMs: number;

  constructor(
    private readonly out: (p: Packet) => void,
    private readonly opts: PacerOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.maxAheadMs = opts.maxAheadMs ?? Math.max(10_000, 4 * opts.leadMs);
  }

  /** Packets queued and not yet released. */
  get queued(): number {
    return this.queue.length - this.head;
  }

  add(packets: readonly Packet[]): void {
    if (this.stopped || packets.length === 0) return;
    const now = this.now();
    const first = packets[0]!;
    if (!this.anchored) {
      this.anchored = true;
      this.anchorWallMs = now;
      this.anchorMediaMs = first.timeMs;
    } else if (this.queued === 0 && this.dueAt(first) < now - this.opts.leadMs) {
      // the source fell behind: late packets go now, the ones after them at pace from here
      this.anchorWallMs = now - this.opts.leadMs;
      this.anchorMediaMs = first.timeMs;
    }
    for (const p of packets) this.queue.push(p);
    // too much queued ahead of the clock: move the anchor so the excess goes out now
    const last = packets[packets.length - 1]!;
    const ahead = this.dueAt(last) - now;
    if (ahead > this.maxAheadMs) this.anchorWallMs -= ahead - this.maxAheadMs;
    this.release();
  }

  /** Resolves once every queued packet was released (at once when none is queued). */
  drained(): Promise<void> {
    if (this.queued === 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Drops what is queued; nothing is released after. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue = [];
    this.head = 0;
    this.wakeDrained();
  }

  /** Wall time (ms) at which `p` is due. */
  private dueAt(p: Packet): number {
    return this.anchorWallMs + (p.timeMs - this.anchorMediaMs) - this.opts.leadMs;
  }

  private release(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    while (!this.stopped && this.head < this.queue.length) {
      const p = this.queue[this.head]!;
      if (this.dueAt(p) > now) break;
      this.head++;
      this.out(p);
    }
    if (this.stopped) return;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
      this.wakeDrained();
      return;
    }
    // compact now and then so the array does not grow with the released head
    if (this.head > 1024) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    const wait = Math.max(1, this.dueAt(this.queue[this.head]!) - now);
    this.timer = setTimeout(() => this.release(), wait);
  }

  private wakeDrained(): void {
    const w = this.drainWaiters;
    this.drainWaiters = [];
    for (const f of w) f();
  }
}
