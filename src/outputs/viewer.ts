// One viewer's side of a feed: writes shared chunks to its sink (never copying them) and
// applies the slow-reader policy (STYLE "Readers never slow the publisher"): when the bytes
// queued for it pass a high-water mark it skips to the next keyframe; one that stays behind
// longer than the bound is disconnected. Memory per viewer is bounded by the high-water mark.

/** Where a viewer's bytes go: a socket, an RTMP play output. */
export interface ByteSink {
  write(bytes: Buffer): boolean;
  /** Several chunks in one go (one writev system call on a socket); optional. */
  writev?(chunks: readonly Buffer[]): void;
  /** Bytes queued in user space, not yet handed to the kernel. */
  readonly writableLength: number;
  close(reason: string): void;
}

export interface ViewerPolicy {
  /** Queued bytes above which packets are skipped until the next keyframe. */
  highWaterBytes: number;
  /** Queued bytes below which a skipping viewer resumes (at a keyframe). */
  lowWaterBytes: number;
  /** Media time a viewer may spend skipping before it is disconnected. */
  maxBehindMs: number;
}

export const DEFAULT_VIEWER_POLICY: ViewerPolicy = {
  highWaterBytes: 4 * 1024 * 1024,
  lowWaterBytes: 512 * 1024,
  maxBehindMs: 15_000,
};

export class Viewer {
  private skipping = false;
  private skipSinceMs = 0;
  private started = false;
  private closed = false;
  private readonly closeHandlers: Array<(reason: string) => void> = [];
  /** Chunks of the current event-loop turn, written together by flush(). */
  private pending: Buffer[] = [];
  bytesOut = 0;
  packetsOut = 0;
  droppedPackets = 0;
  /** Media time of the newest packet written. */
  positionMs = -1;

  constructor(
    private readonly sink: ByteSink,
    private readonly policy: ViewerPolicy = DEFAULT_VIEWER_POLICY,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  onClose(fn: (reason: string) => void): void {
    if (this.closed) fn('closed');
    else this.closeHandlers.push(fn);
  }

  /** Header and the current GOP; live packets follow through send(). */
  start(header: Buffer, gop: readonly Buffer[]): void {
    this.started = true;
    // With no GOP to start from, wait for the next keyframe: a decoder cannot start mid-GOP.
    if (gop.length === 0) {
      this.skipping = true;
      this.skipSinceMs = Number.POSITIVE_INFINITY;
    }
    // header and GOP in one writev
    if (header.length > 0) this.queue(header);
    for (const b of gop) this.queue(b);
    this.flush();
  }

  /** Bytes every viewer must get (codec changes); never skipped, written with the turn's packets. */
  sendControl(bytes: Buffer): void {
    if (this.started && !this.closed) this.queue(bytes);
  }

  send(bytes: Buffer, syncKey: boolean, timeMs: number): void {
    if (!this.started || this.closed) return;
    const queued = this.sink.writableLength;
    if (this.skipping) {
      if (!syncKey || queued > this.policy.lowWaterBytes) {
        if (this.skipSinceMs === Number.POSITIVE_INFINITY) return; // still waiting for the first keyframe
        this.droppedPackets++;
        if (timeMs - this.skipSinceMs > this.policy.maxBehindMs) this.close(`too slow: more than ${this.policy.maxBehindMs} ms behind`);
        return;
      }
      this.skipping = false;
    } else if (queued > this.policy.highWaterBytes) {
      this.skipping = true;
      this.skipSinceMs = timeMs;
      this.droppedPackets++;
      return;
    }
    this.positionMs = timeMs;
    this.packetsOut++;
    this.queue(bytes);
  }

  private queue(bytes: Buffer): void {
    this.bytesOut += bytes.length;
    this.pending.push(bytes);
  }

  /**
   * Writes what send() queued in this turn of the event loop: the packets of one read from
   * the publisher go out in one system call instead of one each (the feed calls this from a
   * microtask, so it adds no measurable latency).
   */
  flush(): void {
    const n = this.pending.length;
    if (n === 0) return;
    if (this.closed) {
      this.pending.length = 0;
      return;
    }
    if (n === 1) this.sink.write(this.pending[0]!);
    else if (this.sink.writev) this.sink.writev(this.pending);
    else for (const b of this.pending) this.sink.write(b);
    this.pending = [];
  }

  close(reason: string): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.sink.close(reason);
    for (const fn of this.closeHandlers.splice(0)) fn(reason);
  }
}
