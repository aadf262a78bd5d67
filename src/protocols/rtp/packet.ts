// RTP fixed header, RFC 3550 §5.1 (with the header extension of §5.3.1 and padding):
//
//    0                   1                   2                   3
//    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//   |                           timestamp                           |
//   |           synchronization source (SSRC) identifier            |
//   |            contributing source (CSRC) identifiers (CC x 32)   |
//   [ profile-defined (16) | extension length in 32-bit words (16) | extension ... ]
//   payload ... [ padding, its last byte counting the padding bytes ]
//
// The payload is a subarray of the input, never a copy.

import { HazeError } from '../../util/errors.js';

export const RTP_HEADER_SIZE = 12;

export interface RtpPacket {
  payloadType: number;
  marker: boolean;
  /** 16-bit sequence number. */
  sequence: number;
  /** 32-bit media timestamp in the payload format's clock. */
  timestamp: number;
  ssrc: number;
  payload: Buffer;
}

/** True when `buf` starts like an RTP or RTCP packet (version 2). */
export function isRtpVersion2(buf: Uint8Array): boolean {
  return buf.length >= 1 && buf[0]! >> 6 === 2;
}

/** RTCP shares the ports of RTP in some setups (RFC 5761 §4): payload types 64-95 with the marker are RTCP. */
export function looksLikeRtcp(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[1]! >= 192 && buf[1]! <= 223;
}

export function parseRtp(buf: Buffer): RtpPacket {
  if (buf.length < RTP_HEADER_SIZE) throw new HazeError('HAZE_ERR_SHORT_READ', `RTP packet of ${buf.length} bytes`);
  const b0 = buf[0]!;
  if (b0 >> 6 !== 2) throw new HazeError('HAZE_ERR_MALFORMED', `RTP version ${b0 >> 6}`);
  const csrcCount = b0 & 0x0f;
  let pos = RTP_HEADER_SIZE + 4 * csrcCount;
  if (b0 & 0x10) {
    if (buf.length < pos + 4) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTP header extension cut short');
    pos += 4 + 4 * buf.readUInt16BE(pos + 2);
  }
  let end = buf.length;
  if (b0 & 0x20) {
    const pad = buf[end - 1]!;
    if (pad === 0) throw new HazeError('HAZE_ERR_MALFORMED', 'RTP padding count 0');
    end -= pad;
  }
  if (end < pos) throw new HazeError('HAZE_ERR_MALFORMED', `RTP header of ${pos} bytes and padding leave no payload in ${buf.length}`);
  return {
    payloadType: buf[1]! & 0x7f,
    marker: (buf[1]! & 0x80) !== 0,
    sequence: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    payload: buf.subarray(pos, end),
  };
}

/** Writes a 12-byte header (no CSRC, extension or padding) at `offset`; returns the offset after it. */
export function writeRtpHeader(out: Buffer, offset: number, payloadType: number, marker: boolean, sequence: number, timestamp: number, ssrc: number): number {
  out[offset] = 0x80;
  out[offset + 1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  out.writeUInt16BE(sequence & 0xffff, offset + 2);
  out.writeUInt32BE(timestamp >>> 0, offset + 4);
  out.writeUInt32BE(ssrc >>> 0, offset + 8);
  return offset + RTP_HEADER_SIZE;
}

/** One RTP packet as bytes (header + payload parts): for tests and senders of single packets. */
export function serializeRtp(p: Omit<RtpPacket, 'payload'>, ...payload: Uint8Array[]): Buffer {
  let size = RTP_HEADER_SIZE;
  for (const part of payload) size += part.length;
  const out = Buffer.allocUnsafe(size);
  let pos = writeRtpHeader(out, 0, p.payloadType, p.marker, p.sequence, p.timestamp, p.ssrc);
  for (const part of payload) {
    out.set(part, pos);
    pos += part.length;
  }
  return out;
}

/** The distance from `from` to `to` in 16-bit sequence space, in [-32768, 32767]. */
export function seqDelta(from: number, to: number): number {
  return ((((to - from) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
}
