// RTCP feedback messages (RFC 4585 §6.1): generic NACK (§6.2.1, RTPFB FMT 1), PLI (§6.3.1,
// PSFB FMT 1), FIR (RFC 5104 §4.3.1, PSFB FMT 4) and REMB (draft-alvestrand-rmcat-remb §2.2,
// PSFB FMT 15 with the "REMB" identifier). parseRtcp (rtcp.ts) hands the bodies of packet
// types 205 and 206 here; the writers give whole RTCP packets to send alone or in a compound.
//
//   |V=2|P|   FMT   |   PT (205/206)  |     length (32-bit words - 1) |
//   |                  SSRC of packet sender                        |
//   |                  SSRC of media source                         |
//   |  feedback control information (FCI): NACK: PID(16) BLP(16) ...; FIR: SSRC, seq(8), 0(24) ... |

import { HazeError } from '../../util/errors.js';

export const RTCP_RTPFB = 205;
export const RTCP_PSFB = 206;

/** One NACK packet expands to at most this many lost sequence numbers (each FCI names 17). */
export const MAX_NACKED = 1024;
/** FIR entries read from one packet at most. */
const MAX_FIR_ENTRIES = 64;

export interface Nack {
  type: 'nack';
  senderSsrc: number;
  mediaSsrc: number;
  lost: number[];
}

export interface Pli {
  type: 'pli';
  senderSsrc: number;
  mediaSsrc: number;
}

export interface Fir {
  type: 'fir';
  senderSsrc: number;
  entries: { ssrc: number; seq: number }[];
}

export interface Remb {
  type: 'remb';
  senderSsrc: number;
  bitrateBps: number;
  ssrcs: number[];
}

export type RtcpFeedback = Nack | Pli | Fir | Remb;

/**
 * The feedback message of an RTPFB or PSFB packet whose body is buf[body, end), undefined for a
 * format Haze does not read (the caller keeps it as an unknown packet).
 */
export function parseFeedback(buf: Buffer, pt: number, format: number, body: number, end: number): RtcpFeedback | undefined {
  if (body + 8 > end) throw new HazeError('HAZE_ERR_SHORT_READ', `RTCP: packet type ${pt} too short`);
  const senderSsrc = buf.readUInt32BE(body);
  if (pt === RTCP_RTPFB) {
    if (format !== 1) return undefined;
    const lost: number[] = [];
    for (let p = body + 8; p + 4 <= end && lost.length < MAX_NACKED; p += 4) {
      const pid = buf.readUInt16BE(p);
      const blp = buf.readUInt16BE(p + 2);
      lost.push(pid);
      for (let bit = 0; bit < 16; bit++) if (blp & (1 << bit)) lost.push((pid + bit + 1) & 0xffff);
    }
    return { type: 'nack', senderSsrc, mediaSsrc: buf.readUInt32BE(body + 4), lost };
  }
  if (pt !== RTCP_PSFB) return undefined;
  if (format === 1) return { type: 'pli', senderSsrc, mediaSsrc: buf.readUInt32BE(body + 4) };
  if (format === 4) {
    const entries: { ssrc: number; seq: number }[] = [];
    for (let p = body + 8; p + 8 <= end && entries.length < MAX_FIR_ENTRIES; p += 8) entries.push({ ssrc: buf.readUInt32BE(p), seq: buf[p + 4]! });
    return { type: 'fir', senderSsrc, entries };
  }
  if (format === 15 && end - body >= 16 && buf.toString('latin1', body + 8, body + 12) === 'REMB') {
    const n = buf[body + 12]!;
    const exp = buf[body + 13]! >> 2;
    const mantissa = ((buf[body + 13]! & 0x03) << 16) | buf.readUInt16BE(body + 14);
    const ssrcs: number[] = [];
    for (let i = 0; i < n && body + 16 + i * 4 + 4 <= end; i++) ssrcs.push(buf.readUInt32BE(body + 16 + i * 4));
    return { type: 'remb', senderSsrc, bitrateBps: mantissa * 2 ** exp, ssrcs };
  }
  return undefined;
}

/** A feedback packet of `bytes` (header, sender SSRC, media SSRC) with the FCI left to fill. */
function feedbackPacket(format: number, pt: number, bytes: number, senderSsrc: number, mediaSsrc: number): Buffer {
  const out = Buffer.alloc(bytes);
  out[0] = 0x80 | (format & 0x1f);
  out[1] = pt;
  out.writeUInt16BE(bytes / 4 - 1, 2);
  out.writeUInt32BE(senderSsrc >>> 0, 4);
  out.writeUInt32BE(mediaSsrc >>> 0, 8);
  return out;
}

/** A generic NACK for the given lost sequence numbers, packed into PID + bitmask entries. */
export function serializeNack(senderSsrc: number, mediaSsrc: number, lost: readonly number[]): Buffer {
  const sorted = [...new Set(lost.map((s) => s & 0xffff))];
  const fci: [number, number][] = [];
  for (const seq of sorted) {
    const last = fci[fci.length - 1];
    const d = last ? (seq - last[0]) & 0xffff : 0;
    if (last && d >= 1 && d <= 16) last[1] |= 1 << (d - 1);
    else fci.push([seq, 0]);
  }
  const out = feedbackPacket(1, RTCP_RTPFB, 12 + fci.length * 4, senderSsrc, mediaSsrc);
  fci.forEach(([pid, blp], i) => {
    out.writeUInt16BE(pid, 12 + i * 4);
    out.writeUInt16BE(blp, 14 + i * 4);
  });
  return out;
}

export function serializePli(senderSsrc: number, mediaSsrc: number): Buffer {
  return feedbackPacket(1, RTCP_PSFB, 12, senderSsrc, mediaSsrc);
}

/** A FIR with one entry; the media source SSRC of the common header is 0 (RFC 5104 §4.3.1.2). */
export function serializeFir(senderSsrc: number, mediaSsrc: number, seq: number): Buffer {
  const out = feedbackPacket(4, RTCP_PSFB, 20, senderSsrc, 0);
  out.writeUInt32BE(mediaSsrc >>> 0, 12);
  out[16] = seq & 0xff;
  return out;
}

/** REMB: the bit rate the receiver asks the sender to stay under, for the given SSRCs. */
export function serializeRemb(senderSsrc: number, bitrateBps: number, ssrcs: readonly number[]): Buffer {
  const list = ssrcs.slice(0, 255);
  const out = feedbackPacket(15, RTCP_PSFB, 20 + list.length * 4, senderSsrc, 0);
  out.write('REMB', 12, 'latin1');
  out[16] = list.length;
  let exp = 0;
  let mantissa = Math.max(0, Math.floor(bitrateBps));
  while (mantissa > 0x3ffff) {
    mantissa = Math.floor(mantissa / 2);
    exp++;
  }
  out[17] = (exp << 2) | (mantissa >> 16);
  out.writeUInt16BE(mantissa & 0xffff, 18);
  list.forEach((s, i) => out.writeUInt32BE(s >>> 0, 20 + i * 4));
  return out;
}
