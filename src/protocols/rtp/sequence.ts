// Puts RTP packets that arrived over UDP back in sequence order (RFC 3550 §A.1's 16-bit
// sequence arithmetic): a packet ahead of the next expected one waits until the gap fills or
// `maxHeld` packets wait, then the gap counts as lost. Late duplicates are dropped; a jump of
// more than MAX_JUMP (a restarted sender) starts over at the new number.

import { seqDelta, type RtpPacket } from './packet.js';

const MAX_JUMP = 3000;

export interface Sequenced {
  packet: RtpPacket;
  /** Packets before this one were lost. */
  lost: boolean;
}

export class SequenceOrder {
  private expected = -1;
  private readonly held = new Map<number, RtpPacket>();
  lostPackets = 0;
  receivedPackets = 0;

  /** `maxHeld` 0: no reordering (TCP); gaps are only counted. */
  constructor(private readonly maxHeld = 32) {}

  push(pkt: RtpPacket): Sequenced[] {
    this.receivedPackets++;
    if (this.expected < 0) {
      this.expected = pkt.sequence;
    }
    const d = seqDelta(this.expected, pkt.sequence);
    if (d < -MAX_JUMP || d > MAX_JUMP) {
      this.held.clear();
      this.expected = pkt.sequence;
      return this.take(pkt, true);
    }
    if (d < 0) return []; // late or duplicate
    if (d === 0) {
      const out = this.take(pkt, false);
      this.drain(out);
      return out;
    }
    if (this.maxHeld === 0) {
      this.lostPackets += d;
      this.expected = pkt.sequence;
      return this.take(pkt, true);
    }
    this.held.set(pkt.sequence, pkt);
    if (this.held.size <= this.maxHeld) return [];
    // the gap did not fill: skip to the first packet held
    let first = -1;
    let best = Infinity;
    for (const s of this.held.keys()) {
      const ds = seqDelta(this.expected, s);
      if (ds < best) {
        best = ds;
        first = s;
      }
    }
    this.lostPackets += best;
    const p = this.held.get(first)!;
    this.held.delete(first);
    this.expected = first;
    const out = this.take(p, true);
    this.drain(out);
    return out;
  }

  private take(pkt: RtpPacket, lost: boolean): Sequenced[] {
    this.expected = (pkt.sequence + 1) & 0xffff;
    return [{ packet: pkt, lost }];
  }

  private drain(out: Sequenced[]): void {
    for (;;) {
      const next = this.held.get(this.expected);
      if (!next) return;
      this.held.delete(this.expected);
      out.push(...this.take(next, false));
    }
  }

  /** The packets still held, in order (the stream ended). */
  flush(): Sequenced[] {
    const rest = [...this.held.values()].sort((a, b) => seqDelta(b.sequence, a.sequence));
    this.held.clear();
    return rest.map((packet, i) => ({ packet, lost: i === 0 }));
  }
}
