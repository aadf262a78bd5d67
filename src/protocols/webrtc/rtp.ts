// RTP fixed header (RFC 3550 §5.1) and the RTP/RTCP split on a muxed port (RFC 5761 §4).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                           timestamp                           |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |           synchronization source (SSRC) identifier            |
//  +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//  |  CSRCs (CC x 32 bits), header extension (X), payload, padding (P) |

import { HazeError } from '../../util/errors.js';
import { seqDelta } from '../rtp/packet.js';

export const RTP_HEADER_BYTES = 12;

export interface RtpPacket {
  marker: boolean;
  payloadType: number;
  sequenceNumber: number;
  timestamp: number;
  ssrc: number;
  /** The payload without padding (a subarray of the datagram). */
  payload: Buffer;
}

/** RFC 5761 §4: on a muxed port, packet types 192..223 (second byte, marker bit included) are RTCP. */
export function isRtcp(buf: Buffer): boolean {
  return buf.length >= 2 && buf[1]! >= 192 && buf[1]! <= 223;
}

export function parseRtp(buf: Buffer): RtpPacket {
  if (buf.length < RTP_HEADER_BYTES) throw new HazeError('HAZE_ERR_SHORT_READ', `an RTP packet of ${buf.length} bytes`);
  const b0 = buf[0]!;
  if (b0 >> 6 !== 2) throw new HazeError('HAZE_ERR_MALFORMED', `RTP version ${b0 >> 6}`);
  let start = RTP_HEADER_BYTES + (b0 & 0x0f) * 4;
  if (b0 & 0x10) {
    if (buf.length < start + 4) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTP: a truncated header extension');
    start += 4 + buf.readUInt16BE(start + 2) * 4;
  }
  let end = buf.length;
  if (b0 & 0x20) {
    const pad = buf[buf.length - 1]!;
    if (pad === 0) throw new HazeError('HAZE_ERR_MALFORMED', 'RTP: padding of 0 bytes');
    end -= pad;
  }
  if (start > end) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTP: the header and padding are longer than the packet');
  return {
    marker: (buf[1]! & 0x80) !== 0,
    payloadType: buf[1]! & 0x7f,
    sequenceNumber: buf.readUInt16BE(2),
    timestamp: buf.readUInt32BE(4),
    ssrc: buf.readUInt32BE(8),
    payload: buf.subarray(start, end),
  };
}

/** Writes a 12-byte header (no CSRC, no extension) at `offset`. */
export function writeRtpHeader(out: Buffer, offset: number, marker: boolean, payloadType: number, sequenceNumber: number, timestamp: number, ssrc: number): void {
  out[offset] = 0x80;
  out[offset + 1] = (marker ? 0x80 : 0) | (payloadType & 0x7f);
  out.writeUInt16BE(sequenceNumber & 0xffff, offset + 2);
  out.writeUInt32BE(timestamp >>> 0, offset + 4);
  out.writeUInt32BE(ssrc >>> 0, offset + 8);
}

/** A whole RTP packet (tests, and peers that send in the clear). */
export function serializeRtp(p: RtpPacket): Buffer {
  const out = Buffer.allocUnsafe(RTP_HEADER_BYTES + p.payload.length);
  writeRtpHeader(out, 0, p.marker, p.payloadType, p.sequenceNumber, p.timestamp, p.ssrc);
  p.payload.copy(out, RTP_HEADER_BYTES);
  return out;
}

/** `a - b` for 16-bit sequence numbers, in -32768..32767 (rtp/packet.ts seqDelta, argument order of a subtraction). */
export function seqDiff(a: number, b: number): number {
  return seqDelta(b, a);
}
