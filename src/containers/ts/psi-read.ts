// Reading Program Specific Information: ISO/IEC 13818-1 §2.4.4 (pointer_field §2.4.4.2, PAT
// §2.4.4.3, PMT §2.4.4.8), CRC_32 per Annex A, descriptors §2.6 (registration 0x05, ISO 639
// language 0x0A), DVB descriptors from ETSI EN 300 468 (AC-3 0x6A, enhanced AC-3 0x7A, extension
// 0x7F). The writers are in psi.ts; the section layout is drawn there.
//
// Sections arrive split over TS packets; PsiAssembler joins them per PID into a buffer bounded
// by the largest legal section (3 + 1021 bytes for PAT/PMT; longer private sections are skipped).

import { ByteReader } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';
import { crc32Mpeg2 } from './crc32.js';

/** section_length of PAT/PMT sections is at most 1021 (§2.4.4.3, §2.4.4.8). */
const MAX_SECTION = 3 + 1021;

export const TABLE_PAT = 0x00;
export const TABLE_PMT = 0x02;

export interface PsiSection {
  tableId: number;
  /** transport_stream_id (PAT) or program_number (PMT). */
  id: number;
  version: number;
  current: boolean;
  /** The bytes between the 8-byte long-form header and the CRC_32. */
  body: Buffer;
}

export interface PatEntry {
  programNumber: number;
  pid: number;
}

export interface PmtEntry {
  streamType: number;
  pid: number;
  descriptors: Descriptor[];
}

export interface Pmt {
  programNumber: number;
  version: number;
  pcrPid: number;
  programDescriptors: Descriptor[];
  streams: PmtEntry[];
}

export interface Descriptor {
  tag: number;
  body: Buffer;
}

/**
 * Collects the sections of one PID from TS packet payloads. Returns complete sections (with
 * their CRC still unchecked); a section that is never completed is dropped at the next
 * payload_unit_start_indicator.
 */
export class PsiAssembler {
  private readonly buf = Buffer.allocUnsafe(MAX_SECTION);
  private len = 0;
  /** Bytes of the section being collected (3 until its header is in); 0 when idle. */
  private want = 0;

  reset(): void {
    this.len = 0;
    this.want = 0;
  }

  /** Feeds one TS packet payload; appends finished sections (copies) to `out`. */
  push(payload: Buffer, pusi: boolean, out: Buffer[]): void {
    if (!pusi) {
      // Only a payload_unit_start packet may start a section, so the rest after one ends is stuffing.
      if (this.want > 0) this.feed(payload, 0, payload.length, out);
      return;
    }
    if (payload.length < 1) return;
    const start = 1 + payload[0]!;
    // The bytes before the pointed-to start finish the previous section.
    if (this.want > 0) this.feed(payload, 1, Math.min(start, payload.length), out);
    this.reset();
    let p = start;
    while (p < payload.length && payload[p] !== 0xff) {
      this.want = 3;
      p = this.feed(payload, p, payload.length, out);
      if (this.want > 0) return; // continues in the next packet
    }
  }

  /** Copies bytes of [from, to) into the section; returns where it stopped. */
  private feed(src: Buffer, from: number, to: number, out: Buffer[]): number {
    let p = from;
    while (this.want > 0 && p < to) {
      const n = Math.min(to - p, this.want - this.len);
      src.copy(this.buf, this.len, p, p + n);
      this.len += n;
      p += n;
      if (this.want === 3 && this.len === 3) {
        const total = 3 + (((this.buf[1]! & 0x0f) << 8) | this.buf[2]!);
        if (total > MAX_SECTION || total < 12) {
          // Not a long-form PAT/PMT section (or garbage): skip the rest of the packet.
          this.reset();
          return to;
        }
        this.want = total;
      }
      if (this.len === this.want && this.want > 3) {
        out.push(Buffer.from(this.buf.subarray(0, this.want)));
        this.reset();
      }
    }
    return p;
  }
}

/** Parses a long-form section and checks its CRC_32. */
export function parseSection(sec: Buffer): PsiSection {
  if (sec.length < 12) throw new HazeError('HAZE_ERR_SHORT_READ', `PSI section of ${sec.length} bytes`);
  const tableId = sec[0]!;
  if ((sec[1]! & 0x80) === 0) throw new HazeError('HAZE_ERR_MALFORMED', `table 0x${tableId.toString(16)} without section_syntax_indicator`);
  const total = 3 + (((sec[1]! & 0x0f) << 8) | sec[2]!);
  if (total !== sec.length) throw new HazeError('HAZE_ERR_MALFORMED', `section_length ${total - 3} for ${sec.length} bytes`);
  if (crc32Mpeg2(sec, 0, sec.length) !== 0) throw new HazeError('HAZE_ERR_MALFORMED', `CRC_32 mismatch in table 0x${tableId.toString(16)}`);
  return {
    tableId,
    id: sec.readUInt16BE(3),
    version: (sec[5]! >> 1) & 0x1f,
    current: (sec[5]! & 1) === 1,
    body: sec.subarray(8, sec.length - 4),
  };
}

export function parsePat(body: Buffer): PatEntry[] {
  if (body.length % 4 !== 0) throw new HazeError('HAZE_ERR_MALFORMED', `PAT body of ${body.length} bytes`);
  const out: PatEntry[] = [];
  for (let o = 0; o < body.length; o += 4) {
    out.push({ programNumber: body.readUInt16BE(o), pid: body.readUInt16BE(o + 2) & 0x1fff });
  }
  return out;
}

export function parseDescriptors(buf: Buffer): Descriptor[] {
  const r = new ByteReader(buf);
  const out: Descriptor[] = [];
  while (r.remaining >= 2) {
    const tag = r.u8();
    const len = r.u8();
    if (len > r.remaining) throw new HazeError('HAZE_ERR_MALFORMED', `descriptor 0x${tag.toString(16)} of ${len} bytes overruns its loop`);
    out.push({ tag, body: r.bytes(len) });
  }
  return out;
}

export function parsePmt(sec: PsiSection): Pmt {
  const r = new ByteReader(sec.body);
  const pcrPid = r.u16() & 0x1fff;
  const programInfoLength = r.u16() & 0x0fff;
  const programDescriptors = parseDescriptors(r.bytes(programInfoLength));
  const streams: PmtEntry[] = [];
  while (r.remaining > 0) {
    const streamType = r.u8();
    const pid = r.u16() & 0x1fff;
    const esInfoLength = r.u16() & 0x0fff;
    streams.push({ streamType, pid, descriptors: parseDescriptors(r.bytes(esInfoLength)) });
  }
  return { programNumber: sec.id, version: sec.version, pcrPid, programDescriptors, streams };
}

/** The format_identifier of a registration descriptor, if any. */
export function registration(descs: readonly Descriptor[]): string | undefined {
  const d = descs.find((x) => x.tag === 0x05 && x.body.length >= 4);
  return d ? d.body.toString('latin1', 0, 4) : undefined;
}

/** ISO 639 language code of an ISO_639_language_descriptor, 'und' without one. */
export function language(descs: readonly Descriptor[]): string {
  const d = descs.find((x) => x.tag === 0x0a && x.body.length >= 3);
  if (!d) return 'und';
  const code = d.body.toString('latin1', 0, 3).toLowerCase();
  return /^[a-z]{3}$/.test(code) ? code : 'und';
}
