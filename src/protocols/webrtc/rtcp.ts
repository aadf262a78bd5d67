// RTCP packets a WebRTC media server reads and writes (RFC 3550 §6.4 SR/RR, §6.5 SDES, §6.6
// BYE; RFC 4585 §6.2.1 generic NACK, §6.3.1 PLI; RFC 5104 §4.3.1 FIR; REMB,
// draft-alvestrand-rmcat-remb §2.2), in compound packets (RFC 3550 §6.1; reduced-size RTCP,
// RFC 5506, is accepted too).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |V=2|P| RC/FMT  |      PT       |     length (32-bit words - 1) |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                  SSRC of packet sender                        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | SR: NTP time (64), RTP time, packet and octet counts; then report blocks |
//  | feedback (205/206): SSRC of media source, then FCI                     |

import { HazeError } from '../../util/errors.js';
import { ntpFromUnixMs } from '../rtp/rtcp.js';

export const RTCP_SR = 200;
export const RTCP_RR = 201;
export const RTCP_SDES = 202;
export const RTCP_BYE = 203;
export const RTCP_RTPFB = 205;
export const RTCP_PSFB = 206;

/** One NACK packet expands to at most this many lost sequence numbers (each FCI names 17). */
const MAX_NACKED = 1024;

export interface ReportBlock {
  ssrc: number;
  /** Fraction lost since the previous report, 0..255 (/256). */
  fractionLost: number;
  /** Cumulative packets lost (signed 24 bits). */
  totalLost: number;
  highestSeq: number;
  jitter: number;
  /** Middle 32 bits of the NTP time of the last SR received (0 without one). */
  lastSr: number;
  /** Delay since that SR in 1/65536 s. */
  delaySinceLastSr: number;
}

export type RtcpMessage =
  | { type: 'sr'; ssrc: number; ntpSeconds: number; ntpFraction: number; rtpTimestamp: number; packets: number; octets: number; reports: ReportBlock[] }
  | { type: 'rr'; ssrc: number; reports: ReportBlock[] }
  | { type: 'nack'; senderSsrc: number; mediaSsrc: number; lost: number[] }
  | { type: 'pli'; senderSsrc: number; mediaSsrc: number }
  | { type: 'fir'; senderSsrc: number; entries: { ssrc: number; seq: number }[] }
  | { type: 'remb'; senderSsrc: number; bitrateBps: number; ssrcs: number[] }
  | { type: 'bye'; ssrcs: number[] }
  | { type: 'other'; packetType: number; format: number };

function readReports(buf: Buffer, pos: number, count: number, end: number): ReportBlock[] {
  const out: ReportBlock[] = [];
  for (let i = 0; i < count; i++, pos += 24) {
    if (pos + 24 > end) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTCP: a truncated report block');
    const lost = buf.readUIntBE(pos + 5, 3);
    out.push({
      ssrc: buf.readUInt32BE(pos),
      fractionLost: buf[pos + 4]!,
      totalLost: lost & 0x800000 ? lost - 0x1000000 : lost,
      highestSeq: buf.readUInt32BE(pos + 8),
      jitter: buf.readUInt32BE(pos + 12),
      lastSr: buf.readUInt32BE(pos + 16),
      delaySinceLastSr: buf.readUInt32BE(pos + 20),
    });
  }
  return out;
}

/** Parses a (compound) RTCP packet; throws on a header that does not fit. Unknown types come back as `other`. */
export function parseRtcp(buf: Buffer): RtcpMessage[] {
  const out: RtcpMessage[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 4 > buf.length) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTCP: a truncated header');
    const b0 = buf[pos]!;
    if (b0 >> 6 !== 2) throw new HazeError('HAZE_ERR_MALFORMED', `RTCP version ${b0 >> 6}`);
    const count = b0 & 0x1f;
    const pt = buf[pos + 1]!;
    const end = pos + (buf.readUInt16BE(pos + 2) + 1) * 4;
    if (end > buf.length) throw new HazeError('HAZE_ERR_SHORT_READ', `RTCP: packet type ${pt} longer than the datagram`);
    const body = pos + 4;
    const need = (n: number): void => {
      if (body + n > end) throw new HazeError('HAZE_ERR_SHORT_READ', `RTCP: packet type ${pt} too short`);
    };
    switch (pt) {
      case RTCP_SR:
        need(24);
        out.push({
          type: 'sr',
          ssrc: buf.readUInt32BE(body),
          ntpSeconds: buf.readUInt32BE(body + 4),
          ntpFraction: buf.readUInt32BE(body + 8),
          rtpTimestamp: buf.readUInt32BE(body + 12),
          packets: buf.readUInt32BE(body + 16),
          octets: buf.readUInt32BE(body + 20),
          reports: readReports(buf, body + 24, count, end),
        });
        break;
      case RTCP_RR:
        need(4);
        out.push({ type: 'rr', ssrc: buf.readUInt32BE(body), reports: readReports(buf, body + 4, count, end) });
        break;
      case RTCP_BYE: {
        const ssrcs: number[] = [];
        for (let i = 0; i < count && body + i * 4 + 4 <= end; i++) ssrcs.push(buf.readUInt32BE(body + i * 4));
        out.push({ type: 'bye', ssrcs });
        break;
      }
      case RTCP_RTPFB:
        need(8);
        if (count === 1) {
          const lost: number[] = [];
          for (let p = body + 8; p + 4 <= end && lost.length < MAX_NACKED; p += 4) {
            const pid = buf.readUInt16BE(p);
            const blp = buf.readUInt16BE(p + 2);
            lost.push(pid);
            for (let bit = 0; bit < 16; bit++) if (blp & (1 << bit)) lost.push((pid + bit + 1) & 0xffff);
          }
          out.push({ type: 'nack', senderSsrc: buf.readUInt32BE(body), mediaSsrc: buf.readUInt32BE(body + 4), lost });
        } else out.push({ type: 'other', packetType: pt, format: count });
        break;
      case RTCP_PSFB:
        need(8);
        if (count === 1) out.push({ type: 'pli', senderSsrc: buf.readUInt32BE(body), mediaSsrc: buf.readUInt32BE(body + 4) });
        else if (count === 4) {
          const entries: { ssrc: number; seq: number }[] = [];
          for (let p = body + 8; p + 8 <= end && entries.length < 64; p += 8) entries.push({ ssrc: buf.readUInt32BE(p), seq: buf[p + 4]! });
          out.push({ type: 'fir', senderSsrc: buf.readUInt32BE(body), entries });
        } else if (count === 15 && end - body >= 16 && buf.toString('latin1', body + 8, body + 12) === 'REMB') {
          const n = buf[body + 12]!;
          const exp = buf[body + 13]! >> 2;
          const mantissa = ((buf[body + 13]! & 0x03) << 16) | buf.readUInt16BE(body + 14);
          const ssrcs: number[] = [];
          for (let i = 0; i < n && body + 16 + i * 4 + 4 <= end; i++) ssrcs.push(buf.readUInt32BE(body + 16 + i * 4));
          out.push({ type: 'remb', senderSsrc: buf.readUInt32BE(body), bitrateBps: mantissa * 2 ** exp, ssrcs });
        } else out.push({ type: 'other', packetType: pt, format: count });
        break;
      default:
        out.push({ type: 'other', packetType: pt, format: count });
    }
    pos = end;
  }
  return out;
}

function header(out: Buffer, offset: number, countOrFormat: number, pt: number, bytes: number): void {
  out[offset] = 0x80 | (countOrFormat & 0x1f);
  out[offset + 1] = pt;
  out.writeUInt16BE(bytes / 4 - 1, offset + 2);
}

/** A sender report without report blocks, followed by an SDES CNAME chunk (a compound packet). */
export function writeSenderReport(ssrc: number, unixMs: number, rtpTimestamp: number, packets: number, octets: number, cname: string): Buffer {
  const name = Buffer.from(cname.slice(0, 255), 'utf8');
  // SDES: header, SSRC, CNAME item (type 1, length, text), end byte, padded to 4
  const sdesBytes = Math.ceil((4 + 4 + 2 + name.length + 1) / 4) * 4;
  const out = Buffer.alloc(28 + sdesBytes);
  header(out, 0, 0, RTCP_SR, 28);
  const ntp = ntpFromUnixMs(unixMs);
  out.writeUInt32BE(ssrc >>> 0, 4);
  out.writeUInt32BE(ntp.seconds, 8);
  out.writeUInt32BE(ntp.fraction, 12);
  out.writeUInt32BE(rtpTimestamp >>> 0, 16);
  out.writeUInt32BE(packets >>> 0, 20);
  out.writeUInt32BE(octets >>> 0, 24);
  header(out, 28, 1, RTCP_SDES, sdesBytes);
  out.writeUInt32BE(ssrc >>> 0, 32);
  out[36] = 1;
  out[37] = name.length;
  name.copy(out, 38);
  return out;
}

/** A receiver report with the given blocks. */
export function writeReceiverReport(ssrc: number, reports: readonly ReportBlock[]): Buffer {
  const blocks = reports.slice(0, 31);
  const out = Buffer.alloc(8 + blocks.length * 24);
  header(out, 0, blocks.length, RTCP_RR, out.length);
  out.writeUInt32BE(ssrc >>> 0, 4);
  blocks.forEach((r, i) => {
    const p = 8 + i * 24;
    out.writeUInt32BE(r.ssrc >>> 0, p);
    out[p + 4] = r.fractionLost & 0xff;
    out.writeUIntBE((r.totalLost < 0 ? r.totalLost + 0x1000000 : Math.min(r.totalLost, 0x7fffff)) & 0xffffff, p + 5, 3);
    out.writeUInt32BE(r.highestSeq >>> 0, p + 8);
    out.writeUInt32BE(r.jitter >>> 0, p + 12);
    out.writeUInt32BE(r.lastSr >>> 0, p + 16);
    out.writeUInt32BE(r.delaySinceLastSr >>> 0, p + 20);
  });
  return out;
}

/** A generic NACK for the given lost sequence numbers, packed into PID + bitmask entries. */
export function writeNack(senderSsrc: number, mediaSsrc: number, lost: readonly number[]): Buffer {
  const sorted = [...new Set(lost.map((s) => s & 0xffff))];
  const fci: [number, number][] = [];
  for (const seq of sorted) {
    const last = fci[fci.length - 1];
    const d = last ? (seq - last[0]) & 0xffff : 0;
    if (last && d >= 1 && d <= 16) last[1] |= 1 << (d - 1);
    else fci.push([seq, 0]);
  }
  const out = Buffer.alloc(12 + fci.length * 4);
  header(out, 0, 1, RTCP_RTPFB, out.length);
  out.writeUInt32BE(senderSsrc >>> 0, 4);
  out.writeUInt32BE(mediaSsrc >>> 0, 8);
  fci.forEach(([pid, blp], i) => {
    out.writeUInt16BE(pid, 12 + i * 4);
    out.writeUInt16BE(blp, 14 + i * 4);
  });
  return out;
}

export function writePli(senderSsrc: number, mediaSsrc: number): Buffer {
  const out = Buffer.alloc(12);
  header(out, 0, 1, RTCP_PSFB, 12);
  out.writeUInt32BE(senderSsrc >>> 0, 4);
  out.writeUInt32BE(mediaSsrc >>> 0, 8);
  return out;
}

export function writeFir(senderSsrc: number, mediaSsrc: number, seq: number): Buffer {
  const out = Buffer.alloc(20);
  header(out, 0, 4, RTCP_PSFB, 20);
  out.writeUInt32BE(senderSsrc >>> 0, 4);
  out.writeUInt32BE(mediaSsrc >>> 0, 12);
  out[16] = seq & 0xff;
  return out;
}

/** REMB: the bit rate the receiver asks the sender to stay under, for the given SSRCs. */
export function writeRemb(senderSsrc: number, bitrateBps: number, ssrcs: readonly number[]): Buffer {
  const list = ssrcs.slice(0, 255);
  const out = Buffer.alloc(20 + list.length * 4);
  header(out, 0, 15, RTCP_PSFB, out.length);
  out.writeUInt32BE(senderSsrc >>> 0, 4);
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
