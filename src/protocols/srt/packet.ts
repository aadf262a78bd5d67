// SRT packet framing (draft-sharabayko-srt §3, §3.1, §3.2): every UDP datagram holds one SRT
// packet, a 16-byte header and the packet's contents.
//
// Why Haze speaks SRT in pure TypeScript rather than through a binding to libsrt: a binding
// needs node-gyp and libsrt-dev (headers, a compiler) at install time, which `npm ci` on a
// plain machine does not have; and libsrt wants to own its UDP socket, while Haze's angel binds
// the SRT port once and hands that one dgram.Socket to the worker that serves it (DESIGN §3),
// which then demultiplexes many SRT connections on it by socket id and peer address
// (multiplexer.ts). The protocol needed for MPEG-TS live streaming (caller/listener handshake
// v5, TSBPD latency, ACK/NAK retransmission, AES-CTR encryption) is small enough to write from
// the specification, and Node's crypto module has every primitive it uses. The modules here:
//   packet.ts         header framing, 31-bit sequence arithmetic
//   control.ts        ACK, NAK loss lists, ACKACK, keep-alive, shutdown, drop request
//   handshake.ts      the handshake CIF and its extension blocks (HSREQ/HSRSP, KM, SID)
//   key-material.ts   the KM message (KMREQ/KMRSP)
//   crypto.ts         PBKDF2 KEK, RFC 3394 key wrap, AES-CTR payload cipher
//   stream-id.ts      the streamid conventions (plain name, `#!::r=NAME,m=publish`)
//   connection.ts     one connection's state machine: (datagram, now) -> datagrams/payloads/timers
//   multiplexer.ts    many connections on one dgram.Socket, listener handshakes
//   caller.ts         a caller (or a one-caller listener) with its own socket, srt:// URL options
//   ts-payloads.ts    MPEG-TS cut into payloads of seven TS packets
//
// Data packet:                            Control packet:
//   0|  packet sequence number (31)         1| control type (15) | subtype (16)
//   PP|O|KK|R| message number (26)          type-specific information (32)
//   timestamp (32, microseconds)            timestamp (32, microseconds)
//   destination socket id (32)              destination socket id (32)
//   payload ...                             control information field (CIF) ...

import { HazeError } from '../../util/errors.js';

export const SRT_HEADER_BYTES = 16;
/** Sequence numbers are 31 bits wide and wrap. */
export const SEQ_MASK = 0x7fffffff;
const SEQ_HALF = 0x40000000;
const SEQ_SPAN = 0x80000000;
/** Message numbers are 26 bits wide. */
export const MSGNO_MASK = 0x03ffffff;

/** Packet position in a message (PP): live streaming sends every packet as a whole message. */
export const PP_SOLO = 3;

/** KK: which stream encrypting key encrypted the payload (0: none). */
export type KeyIndex = 0 | 1 | 2;
export const KK_NONE = 0;
export const KK_EVEN = 1;
export const KK_ODD = 2;

export interface DataPacket {
  control: false;
  seq: number;
  /** PP: 2 first, 1 last, 3 solo, 0 middle. */
  position: number;
  inOrder: boolean;
  keyIndex: KeyIndex;
  retransmitted: boolean;
  messageNumber: number;
  timestampUs: number;
  destSocketId: number;
  payload: Buffer;
}

export interface ControlPacket {
  control: true;
  type: number;
  subtype: number;
  typeInfo: number;
  timestampUs: number;
  destSocketId: number;
  cif: Buffer;
}

export type SrtPacket = DataPacket | ControlPacket;

/** a - b in sequence space (positive when a is after b), for numbers less than 2^30 apart. */
export function seqDiff(a: number, b: number): number {
  let d = (a - b) & SEQ_MASK;
  if (d >= SEQ_HALF) d -= SEQ_SPAN;
  return d;
}

export function seqAdd(a: number, n: number): number {
  return (a + n + SEQ_SPAN) & SEQ_MASK;
}

/** Parses one datagram; HAZE_ERR_SHORT_READ / HAZE_ERR_MALFORMED on bytes that are no SRT packet. */
export function parsePacket(buf: Buffer): SrtPacket {
  if (buf.length < SRT_HEADER_BYTES) throw new HazeError('HAZE_ERR_SHORT_READ', `SRT packet of ${buf.length} bytes (the header alone is 16)`);
  const w0 = buf.readUInt32BE(0);
  const w1 = buf.readUInt32BE(4);
  const timestampUs = buf.readUInt32BE(8);
  const destSocketId = buf.readUInt32BE(12);
  if (w0 & 0x80000000) {
    return { control: true, type: (w0 >>> 16) & 0x7fff, subtype: w0 & 0xffff, typeInfo: w1, timestampUs, destSocketId, cif: buf.subarray(SRT_HEADER_BYTES) };
  }
  const kk = (w1 >>> 27) & 3;
  if (kk === 3) throw new HazeError('HAZE_ERR_MALFORMED', 'SRT data packet with key flags 11 (only control packets use it)');
  return {
    control: false,
    seq: w0 & SEQ_MASK,
    position: w1 >>> 30,
    inOrder: ((w1 >>> 29) & 1) === 1,
    keyIndex: kk as KeyIndex,
    retransmitted: ((w1 >>> 26) & 1) === 1,
    messageNumber: w1 & MSGNO_MASK,
    timestampUs,
    destSocketId,
    payload: buf.subarray(SRT_HEADER_BYTES),
  };
}

/** Whether a datagram is an SRT control packet (without parsing it). */
export function isControl(buf: Buffer): boolean {
  return buf.length >= SRT_HEADER_BYTES && (buf[0]! & 0x80) !== 0;
}

/** The data packet's bytes: one allocation, header then payload. */
export function serializeData(p: Omit<DataPacket, 'control'>): Buffer {
  const out = Buffer.allocUnsafe(SRT_HEADER_BYTES + p.payload.length);
  writeDataHeader(out, p);
  p.payload.copy(out, SRT_HEADER_BYTES);
  return out;
}

export function writeDataHeader(out: Buffer, p: Omit<DataPacket, 'control' | 'payload'>): void {
  out.writeUInt32BE(p.seq & SEQ_MASK, 0);
  const w1 = (((p.position & 3) << 30) | ((p.inOrder ? 1 : 0) << 29) | ((p.keyIndex & 3) << 27) | ((p.retransmitted ? 1 : 0) << 26) | (p.messageNumber & MSGNO_MASK)) >>> 0;
  out.writeUInt32BE(w1, 4);
  out.writeUInt32BE(p.timestampUs >>> 0, 8);
  out.writeUInt32BE(p.destSocketId >>> 0, 12);
}

/** Sets the retransmitted flag (R) of a serialized data packet in place. */
export function markRetransmitted(datagram: Buffer): void {
  datagram[4] = datagram[4]! | 0x04;
}

export function serializeControl(p: Omit<ControlPacket, 'control'>): Buffer {
  const out = Buffer.allocUnsafe(SRT_HEADER_BYTES + p.cif.length);
  out.writeUInt32BE((0x80000000 | ((p.type & 0x7fff) << 16) | (p.subtype & 0xffff)) >>> 0, 0);
  out.writeUInt32BE(p.typeInfo >>> 0, 4);
  out.writeUInt32BE(p.timestampUs >>> 0, 8);
  out.writeUInt32BE(p.destSocketId >>> 0, 12);
  p.cif.copy(out, SRT_HEADER_BYTES);
  return out;
}
