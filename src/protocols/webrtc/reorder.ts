// Puts one SSRC's received RTP packets back in sequence order (a WHIP publisher over a lossy
// path), says which ones are missing (for NACKs) and gives up on a gap once it has waited long
// enough or too much is queued behind it: the frame assembler then drops the broken frame and
// waits for a keyframe. Bounded: at most `capacity` packets are held.

import { seqDelta, type RtpPacket } from '../rtp/packet.js';

export interface ReorderOptions {
  /** Packets held at most (a power of two). */
  capacity?: number;
  /** How long a gap is waited for before the packets after it are let through (ms). */
  maxWaitMs?: number;
}

/** What the buffer lets out: packets in order, `gap` set on the first packet after lost ones. */
export interface OrderedPacket {
  packet: RtpPacket;
  gap: boolean;
}

export class ReorderBuffer {
  private readonly capacity: number;
  private readonly maxWaitMs: number;
  private readonly slots: (RtpPacket | undefined)[];
  private readonly arrivals: Float64Array;
  /** The next sequence number to let out; -1 before the first packet. */
  private next = -1;
  /** Highest sequence number received (as a distance-preserving 16-bit number). */
  private highest = 0;
  private held = 0;
  private gapPending = false;
  /** Packets given up on. */
  lost = 0;
  /** Packets that came twice or too late. */
  duplicates = 0;

  constructor(opts: ReorderOptions = {}) {
    this.capacity = opts.capacity ?? 512;
    this.maxWaitMs = opts.maxWaitMs ?? 300;
    this.slots = new Array<RtpPacket | undefined>(this.capacity);
    this.arrivals = new Float64Array(this.capacity);
  }

  get expected(): number {
    return this.next;
  }

  /** Takes a packet; returns what can be let out now, in order. */
  push(p: RtpPacket, nowMs: number): OrderedPacket[] {
    const out: OrderedPacket[] = [];
    if (this.next < 0) {
      this.next = p.sequence;
      this.highest = p.sequence;
    }
    const d = seqDelta(this.next, p.sequence);
    if (d < 0) {
      this.duplicates++;
      return out;
    }
    if (d >= this.capacity) {
      // a jump further than the buffer: a restarted sender or a long outage; start over there
      this.lost += this.held;
      this.clear();
      this.next = p.sequence;
      this.highest = p.sequence;
      this.gapPending = true;
    }
    const slot = p.sequence & (this.capacity - 1);
    if (this.slots[slot] !== undefined) {
      this.duplicates++;
      return out;
    }
    this.slots[slot] = p;
    this.arrivals[slot] = nowMs;
    this.held++;
    if (seqDelta(this.highest, p.sequence) > 0) this.highest = p.sequence;
    this.drain(out);
    this.expire(nowMs, out);
    return out;
  }

  /** Lets through what waited too long behind a gap (call on a timer too). */
  poll(nowMs: number): OrderedPacket[] {
    const out: OrderedPacket[] = [];
    this.expire(nowMs, out);
    return out;
  }

  /** Sequence numbers missing between the next expected and the highest received (at most `max`). */
  missing(max = 64): number[] {
    const out: number[] = [];
    if (this.next < 0) return out;
    const span = seqDelta(this.next, this.highest);
    for (let i = 0; i < span && out.length < max; i++) {
      const seq = (this.next + i) & 0xffff;
      if (this.slots[seq & (this.capacity - 1)] === undefined) out.push(seq);
    }
    return out;
  }

  private drain(out: OrderedPacket[]): void {
    for (;;) {
      const slot = this.next & (this.capacity - 1);
      const p = this.slots[slot];
      if (p === undefined || p.sequence !== this.next) return;
      this.slots[slot] = undefined;
      this.held--;
      out.push({ packet: p, gap: this.gapPending });
      this.gapPending = false;
      this.next = (this.next + 1) & 0xffff;
    }
  }

  /** Skips the gap at `next` when the oldest packet behind it waited too long or the buffer is half full. */
  private expire(nowMs: number, out: OrderedPacket[]): void {
    while (this.held > 0) {
      // the first held packet after the gap
      let first = -1;
      for (let i = 1; i < this.capacity; i++) {
        const seq = (this.next + i) & 0xffff;
        const p = this.slots[seq & (this.capacity - 1)];
        if (p !== undefined && p.sequence === seq) {
          first = i;
          break;
        }
      }
      if (first < 0) return;
      const firstSeq = (this.next + first) & 0xffff;
      const waited = nowMs - this.arrivals[firstSeq & (this.capacity - 1)]!;
      if (waited < this.maxWaitMs && this.held < this.capacity / 2) return;
      this.lost += first;
      this.next = firstSeq;
      this.gapPending = true;
      this.drain(out);
    }
  }

  private clear(): void {
    this.slots.fill(undefined);
    this.held = 0;
  }
}
