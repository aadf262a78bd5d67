// RTCP, RFC 3550 §6.4 (SR, RR), §6.5 (SDES), §6.6 (BYE), and the feedback messages of
// rtcp-feedback.ts (NACK, PLI, FIR, REMB); compound packets (§6.1, and the reduced-size ones of
// RFC 5506) are parsed into their parts. Every RTCP packet starts with:
//
//   |V=2|P|  RC/SC  |      PT       |        length (32-bit words - 1)       |
//
//   SR (PT 200): SSRC | NTP seconds | NTP fraction | RTP timestamp | packet count | octet count
//                | RC report blocks
//   RR (PT 201): SSRC | RC report blocks
//   report block: SSRC | fraction lost (8) cumulative lost (24) | extended highest sequence
//                | interarrival jitter | last SR (middle 32 bits of its NTP time) | delay since last SR
//
// The sender report's NTP/RTP pair is what lets a receiver line up audio and video.

import { HazeError } from '../../util/errors.js';
import { parseFeedback, RTCP_PSFB, RTCP_RTPFB, type RtcpFeedback } from './rtcp-feedback.js';

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;

/** Seconds from 1900 (NTP's epoch) to 1970 (Unix's). */
const NTP_UNIX_OFFSET_S = 2_208_988_800;

export interface ReportBlock {
  ssrc: number;
  fractionLost: number;
  /** Signed 24-bit cumulative count. */
  cumulativeLost: number;
  highestSequence: number;
  jitter: number;
  lastSr: number;
  delaySinceLastSr: number;
}

export interface SenderReport {
  type: 'sr';
  ssrc: number;
  ntpSeconds: number;
  ntpFraction: number;
  rtpTimestamp: number;
  packetCount: number;
  octetCount: number;
  reports: ReportBlock[];
}

export interface ReceiverReport {
  type: 'rr';
  ssrc: number;
  reports: ReportBlock[];
}

export interface Bye {
  type: 'bye';
  ssrcs: number[];
}

export interface OtherRtcp {
  type: 'other';
  packetType: number;
  /** The RC/FMT field of the header. */
  format: number;
  body: Buffer;
}

export type RtcpPacket = SenderReport | ReceiverReport | Bye | RtcpFeedback | OtherRtcp;

/** NTP time (seconds since 1900 and 2^-32 fractions) of a Unix time in ms. */
export function ntpFromUnixMs(ms: number): { seconds: number; fraction: number } {
  const whole = Math.floor(ms / 1000);
  return { seconds: (whole + NTP_UNIX_OFFSET_S) >>> 0, fraction: Math.floor(((ms - whole * 1000) / 1000) * 0x1_0000_0000) >>> 0 };
}

/** Unix time in ms of an NTP time (valid until NTP era 0 ends in 2036; later seconds wrap past it). */
export function unixMsFromNtp(seconds: number, fraction: number): number {
  // era 1 starts in 2036: a small seconds value then means the next era
  const s = seconds < 0x8000_0000 ? seconds + 0x1_0000_0000 : seconds;
  return (s - NTP_UNIX_OFFSET_S) * 1000 + (fraction / 0x1_0000_0000) * 1000;
}

function readBlocks(buf: Buffer, pos: number, count: number, end: number): ReportBlock[] {
  if (pos + 24 * count > end) throw new HazeError('HAZE_ERR_SHORT_READ', `RTCP report blocks cut short`);
  const out: ReportBlock[] = [];
  for (let i = 0; i < count; i++, pos += 24) {
    out.push({
      ssrc: buf.readUInt32BE(pos),
      fractionLost: buf[pos + 4]!,
      cumulativeLost: buf.readIntBE(pos + 5, 3),
      highestSequence: buf.readUInt32BE(pos + 8),
      jitter: buf.readUInt32BE(pos + 12),
      lastSr: buf.readUInt32BE(pos + 16),
      delaySinceLastSr: buf.readUInt32BE(pos + 20),
    });
  }
  return out;
}

/** Parses a compound RTCP packet into its parts. */
export function parseRtcp(buf: Buffer): RtcpPacket[] {
  const out: RtcpPacket[] = [];
  let pos = 0;
  if (buf.length < 4) throw new HazeError('HAZE_ERR_SHORT_READ', `RTCP packet of ${buf.length} bytes`);
  while (pos < buf.length) {
    if (buf.length - pos < 4) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTCP header cut short');
    const b0 = buf[pos]!;
    if (b0 >> 6 !== 2) throw new HazeError('HAZE_ERR_MALFORMED', `RTCP version ${b0 >> 6}`);
    const count = b0 & 0x1f;
    const pt = buf[pos + 1]!;
    const end = pos + 4 * (buf.readUInt16BE(pos + 2) + 1);
    if (end > buf.length) throw new HazeError('HAZE_ERR_SHORT_READ', `RTCP packet type ${pt} of ${end - pos} bytes in ${buf.length - pos}`);
    const body = pos + 4;
    if (pt === RTCP_SR) {
      if (end - body < 24) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTCP SR cut short');
      out.push({
        type: 'sr',
        ssrc: buf.readUInt32BE(body),
        ntpSeconds: buf.readUInt32BE(body + 4),
        ntpFraction: buf.readUInt32BE(body + 8),
        rtpTimestamp: buf.readUInt32BE(body + 12),
        packetCount: buf.readUInt32BE(body + 16),
        octetCount: buf.readUInt32BE(body + 20),
        reports: readBlocks(buf, body + 24, count, end),
      });
    } else if (pt === RTCP_RR) {
      if (end - body < 4) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTCP RR cut short');
      out.push({ type: 'rr', ssrc: buf.readUInt32BE(body), reports: readBlocks(buf, body + 4, count, end) });
    } else if (pt === RTCP_BYE) {
      if (end - body < 4 * count) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTCP BYE cut short');
      const ssrcs: number[] = [];
      for (let i = 0; i < count; i++) ssrcs.push(buf.readUInt32BE(body + 4 * i));
      out.push({ type: 'bye', ssrcs });
    } else {
      const fb = pt === RTCP_RTPFB || pt === RTCP_PSFB ? parseFeedback(buf, pt, count, body, end) : undefined;
      out.push(fb ?? { type: 'other', packetType: pt, format: count, body: buf.subarray(body, end) });
    }
    pos = end;
  }
  return out;
}

function header(out: Buffer, offset: number, count: number, pt: number, bytes: number): void {
  out[offset] = 0x80 | (count & 0x1f);
  out[offset + 1] = pt;
  out.writeUInt16BE(bytes / 4 - 1, offset + 2);
}

/** A sender report without report blocks (Haze only sends). */
export function serializeSr(sr: Omit<SenderReport, 'type' | 'reports'>): Buffer {
  const out = Buffer.allocUnsafe(28);
  header(out, 0, 0, RTCP_SR, 28);
  out.writeUInt32BE(sr.ssrc >>> 0, 4);
  out.writeUInt32BE(sr.ntpSeconds >>> 0, 8);
  out.writeUInt32BE(sr.ntpFraction >>> 0, 12);
  out.writeUInt32BE(sr.rtpTimestamp >>> 0, 16);
  out.writeUInt32BE(sr.packetCount >>> 0, 20);
  out.writeUInt32BE(sr.octetCount >>> 0, 24);
  return out;
}

/** A receiver report with its report blocks. */
export function serializeRr(ssrc: number, reports: readonly ReportBlock[] = []): Buffer {
  if (reports.length > 31) throw new HazeError('HAZE_ERR_TOO_LARGE', `${reports.length} report blocks`);
  const size = 8 + 24 * reports.length;
  const out = Buffer.allocUnsafe(size);
  header(out, 0, reports.length, RTCP_RR, size);
  out.writeUInt32BE(ssrc >>> 0, 4);
  let pos = 8;
  for (const r of reports) {
    out.writeUInt32BE(r.ssrc >>> 0, pos);
    out[pos + 4] = r.fractionLost & 0xff;
    out.writeIntBE(Math.max(-0x800000, Math.min(0x7fffff, r.cumulativeLost)), pos + 5, 3);
    out.writeUInt32BE(r.highestSequence >>> 0, pos + 8);
    out.writeUInt32BE(r.jitter >>> 0, pos + 12);
    out.writeUInt32BE(r.lastSr >>> 0, pos + 16);
    out.writeUInt32BE(r.delaySinceLastSr >>> 0, pos + 20);
    pos += 24;
  }
  return out;
}

/** An SDES packet with one chunk carrying a CNAME (required in every compound packet, §6.1). */
export function serializeSdesCname(ssrc: number, cname: string): Buffer {
  const text = Buffer.from(cname.slice(0, 255), 'utf8').subarray(0, 255);
  // SSRC + CNAME item (type, length, text) + END item, padded to a 32-bit boundary
  const size = (4 + 4 + 2 + text.length + 1 + 3) & ~3;
  const out = Buffer.alloc(size);
  header(out, 0, 1, RTCP_SDES, size);
  out.writeUInt32BE(ssrc >>> 0, 4);
  out[8] = 1;
  out[9] = text.length;
  out.set(text, 10);
  return out;
}

/** A compound packet (§6.1): a sender report of the time `unixMs` and the SDES CNAME that must come with it. */
export function serializeSrCname(ssrc: number, unixMs: number, rtpTimestamp: number, packetCount: number, octetCount: number, cname: string): Buffer {
  const ntp = ntpFromUnixMs(unixMs);
  const sr = serializeSr({ ssrc, ntpSeconds: ntp.seconds, ntpFraction: ntp.fraction, rtpTimestamp, packetCount, octetCount });
  return Buffer.concat([sr, serializeSdesCname(ssrc, cname)]);
}

export function serializeBye(ssrc: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  header(out, 0, 1, RTCP_BYE, 8);
  out.writeUInt32BE(ssrc >>> 0, 4);
  return out;
}
