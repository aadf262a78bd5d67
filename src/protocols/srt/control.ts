// SRT control packets (draft-sharabayko-srt §3.2 Table 1, §3.2.3-§3.2.9) and the packet
// sequence list coding of loss reports (Appendix A):
//
//   ACK CIF:   last acknowledged seq + 1 | RTT us | RTT variance us | available buffer (packets)
//              | packets receiving rate (pkt/s) | estimated link capacity (pkt/s) | receiving rate (B/s)
//              (a light ACK has only the first word, a small ACK the first four)
//   NAK CIF:   0|seq (one lost packet) or 1|first, 0|last (a range), repeated
//   DROPREQ:   type info = message number; CIF first seq | last seq
//   ACKACK:    type info = the ACK number it answers; no CIF
//   KEEPALIVE, SHUTDOWN: no CIF

import { HazeError } from '../../util/errors.js';
import { SEQ_MASK, seqDiff } from './packet.js';

export const CTRL_HANDSHAKE = 0x0000;
export const CTRL_KEEPALIVE = 0x0001;
export const CTRL_ACK = 0x0002;
export const CTRL_NAK = 0x0003;
export const CTRL_CONGESTION = 0x0004;
export const CTRL_SHUTDOWN = 0x0005;
export const CTRL_ACKACK = 0x0006;
export const CTRL_DROPREQ = 0x0007;
export const CTRL_PEERERROR = 0x0008;
/** User-defined type: key material refresh (subtype KMREQ 3 / KMRSP 4). */
export const CTRL_USER = 0x7fff;

export interface Ack {
  /** Last acknowledged sequence number + 1: the first packet not yet received. */
  lastAckSeq: number;
  /** Present in full and small ACKs. */
  rttUs?: number;
  rttVarUs?: number;
  availableBuffer?: number;
  /** Present in full ACKs only. */
  packetsPerSecond?: number;
  linkCapacity?: number;
  receiveRateBps?: number;
}

export function parseAck(cif: Buffer): Ack {
  if (cif.length < 4) throw new HazeError('HAZE_ERR_SHORT_READ', `SRT ACK of ${cif.length} bytes`);
  const ack: Ack = { lastAckSeq: cif.readUInt32BE(0) & SEQ_MASK };
  if (cif.length >= 16) {
    ack.rttUs = cif.readUInt32BE(4);
    ack.rttVarUs = cif.readUInt32BE(8);
    ack.availableBuffer = cif.readUInt32BE(12);
  }
  if (cif.length >= 28) {
    ack.packetsPerSecond = cif.readUInt32BE(16);
    ack.linkCapacity = cif.readUInt32BE(20);
    ack.receiveRateBps = cif.readUInt32BE(24);
  }
  return ack;
}

/** The CIF of an ACK: light (sequence only), small, or full, depending on the fields given. */
export function serializeAck(ack: Ack): Buffer {
  const full = ack.packetsPerSecond !== undefined;
  const small = ack.rttUs !== undefined;
  const out = Buffer.alloc(full ? 28 : small ? 16 : 4);
  out.writeUInt32BE(ack.lastAckSeq & SEQ_MASK, 0);
  if (small || full) {
    out.writeUInt32BE((ack.rttUs ?? 0) >>> 0, 4);
    out.writeUInt32BE((ack.rttVarUs ?? 0) >>> 0, 8);
    out.writeUInt32BE((ack.availableBuffer ?? 0) >>> 0, 12);
  }
  if (full) {
    out.writeUInt32BE((ack.packetsPerSecond ?? 0) >>> 0, 16);
    out.writeUInt32BE((ack.linkCapacity ?? 0) >>> 0, 20);
    out.writeUInt32BE((ack.receiveRateBps ?? 0) >>> 0, 24);
  }
  return out;
}

/** An inclusive range of lost sequence numbers. */
export type SeqRange = readonly [first: number, last: number];

/** The most lost packets one range in a loss report may name (bounds what a NAK makes a sender do). */
export const MAX_RANGE_PACKETS = 1 << 16;

/**
 * Decodes a loss list. A range whose end is before its start, or that spans more than
 * MAX_RANGE_PACKETS, is malformed (it would make the sender walk a huge span).
 */
export function parseLossList(cif: Buffer): SeqRange[] {
  if (cif.length % 4 !== 0) throw new HazeError('HAZE_ERR_MALFORMED', `SRT loss list of ${cif.length} bytes (not whole words)`);
  const out: SeqRange[] = [];
  for (let i = 0; i < cif.length; i += 4) {
    const w = cif.readUInt32BE(i);
    const first = w & SEQ_MASK;
    if (w & 0x80000000) {
      if (i + 4 >= cif.length) throw new HazeError('HAZE_ERR_MALFORMED', 'SRT loss list range without its end');
      i += 4;
      const last = cif.readUInt32BE(i);
      if (last & 0x80000000) throw new HazeError('HAZE_ERR_MALFORMED', 'SRT loss list range end with the range bit set');
      const span = seqDiff(last, first);
      if (span < 0 || span >= MAX_RANGE_PACKETS) throw new HazeError('HAZE_ERR_MALFORMED', `SRT loss list range ${first}..${last}`);
      out.push([first, last]);
    } else {
      out.push([first, first]);
    }
  }
  return out;
}

/** Encodes ranges (a single packet as one word, a longer range as two). */
export function serializeLossList(ranges: readonly SeqRange[]): Buffer {
  let words = 0;
  for (const [a, b] of ranges) words += a === b ? 1 : 2;
  const out = Buffer.allocUnsafe(words * 4);
  let o = 0;
  for (const [a, b] of ranges) {
    if (a === b) {
      out.writeUInt32BE(a & SEQ_MASK, o);
      o += 4;
    } else {
      out.writeUInt32BE(((a & SEQ_MASK) | 0x80000000) >>> 0, o);
      out.writeUInt32BE(b & SEQ_MASK, o + 4);
      o += 8;
    }
  }
  return out;
}

export interface DropRequest {
  messageNumber: number;
  firstSeq: number;
  lastSeq: number;
}

export function parseDropRequest(typeInfo: number, cif: Buffer): DropRequest {
  if (cif.length < 8) throw new HazeError('HAZE_ERR_SHORT_READ', `SRT drop request of ${cif.length} bytes`);
  return { messageNumber: typeInfo, firstSeq: cif.readUInt32BE(0) & SEQ_MASK, lastSeq: cif.readUInt32BE(4) & SEQ_MASK };
}

export function serializeDropRequest(d: DropRequest): Buffer {
  const out = Buffer.allocUnsafe(8);
  out.writeUInt32BE(d.firstSeq & SEQ_MASK, 0);
  out.writeUInt32BE(d.lastSeq & SEQ_MASK, 4);
  return out;
}
