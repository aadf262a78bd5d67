// Program Specific Information: ISO/IEC 13818-1 §2.4.4.3 (PAT), §2.4.4.8 (PMT), §2.4.4.4
// (pointer_field), descriptors §2.6 (registration 0x05, ISO 639 language 0x0A) and the DVB
// extension descriptor 0x7F (ETSI EN 300 468 §6.2.16).
//
//   section: table_id(8) | 1 0 11 section_length(12) | id(16) | 11 version(5) current(1)
//            | section_number(8) | last_section_number(8) | body | CRC_32
//   PAT body: { program_number(16) | 111 PID(13) }*
//   PMT body: 111 PCR_PID(13) | 1111 program_info_length(12) | descriptors
//             | { stream_type(8) | 111 PID(13) | 1111 ES_info_length(12) | descriptors }*

import { HazeError } from '../../util/errors.js';
import { crc32Mpeg2 } from './crc32.js';

export const TS_PACKET_SIZE = 188;
export const TS_SYNC_BYTE = 0x47;
export const PAT_PID = 0;
/** A section's bytes after section_length are at most 1021 (§2.4.4.3). */
const MAX_SECTION_LENGTH = 1021;

export interface PmtStream {
  streamType: number;
  pid: number;
  /** Complete descriptors (tag, length, body), concatenated. */
  descriptors: Buffer;
}

function section(tableId: number, id: number, version: number, body: Buffer): Buffer {
  const sectionLength = 5 + body.length + 4;
  if (sectionLength > MAX_SECTION_LENGTH) throw new HazeError('HAZE_ERR_TOO_LARGE', `PSI section of ${sectionLength} bytes`);
  const out = Buffer.allocUnsafe(3 + sectionLength);
  out[0] = tableId;
  out[1] = 0xb0 | (sectionLength >> 8);
  out[2] = sectionLength & 0xff;
  out.writeUInt16BE(id, 3);
  out[5] = 0xc1 | ((version & 0x1f) << 1);
  out[6] = 0;
  out[7] = 0;
  body.copy(out, 8);
  out.writeUInt32BE(crc32Mpeg2(out, 0, out.length - 4), out.length - 4);
  return out;
}

/** A program_association_section with one program. */
export function patSection(transportStreamId: number, programNumber: number, pmtPid: number): Buffer {
  const body = Buffer.from([programNumber >> 8, programNumber & 0xff, 0xe0 | (pmtPid >> 8), pmtPid & 0xff]);
  return section(0x00, transportStreamId, 0, body);
}

/** A TS_program_map_section. */
export function pmtSection(programNumber: number, pcrPid: number, streams: readonly PmtStream[], version = 0): Buffer {
  let size = 4;
  for (const s of streams) size += 5 + s.descriptors.length;
  const body = Buffer.allocUnsafe(size);
  body[0] = 0xe0 | (pcrPid >> 8);
  body[1] = pcrPid & 0xff;
  body[2] = 0xf0;
  body[3] = 0;
  let o = 4;
  for (const s of streams) {
    if (s.descriptors.length > 0xfff) throw new HazeError('HAZE_ERR_TOO_LARGE', 'ES descriptors too long');
    body[o++] = s.streamType;
    body[o++] = 0xe0 | (s.pid >> 8);
    body[o++] = s.pid & 0xff;
    body[o++] = 0xf0 | (s.descriptors.length >> 8);
    body[o++] = s.descriptors.length & 0xff;
    o += s.descriptors.copy(body, o);
  }
  return section(0x02, programNumber, version, body);
}

/**
 * Splits a section into TS packets on `pid` (pointer_field 0 in the first, 0xFF stuffing after
 * the section). Continuity counters are left 0 for the muxer to patch.
 */
export function packetizeSection(pid: number, sec: Buffer): Buffer {
  const payload = 1 + sec.length;
  const count = Math.ceil(payload / 184);
  const out = Buffer.alloc(count * TS_PACKET_SIZE, 0xff);
  let src = -1; // -1 = the pointer_field
  for (let k = 0; k < count; k++) {
    const p = k * TS_PACKET_SIZE;
    out[p] = TS_SYNC_BYTE;
    out[p + 1] = (k === 0 ? 0x40 : 0) | (pid >> 8);
    out[p + 2] = pid & 0xff;
    out[p + 3] = 0x10; // payload only
    let o = p + 4;
    const end = p + TS_PACKET_SIZE;
    if (src < 0) {
      out[o++] = 0;
      src = 0;
    }
    const n = Math.min(end - o, sec.length - src);
    sec.copy(out, o, src, src + n);
    src += n;
  }
  return out;
}

// Descriptors ---------------------------------------------------------------------------------

export function registrationDescriptor(formatIdentifier: string): Buffer {
  const b = Buffer.alloc(6);
  b[0] = 0x05;
  b[1] = 4;
  b.write(formatIdentifier.slice(0, 4).padEnd(4, ' '), 2, 'latin1');
  return b;
}

export function languageDescriptor(lang: string): Buffer {
  const b = Buffer.alloc(6);
  b[0] = 0x0a;
  b[1] = 4;
  b.write(lang.slice(0, 3).padEnd(3, ' '), 2, 'latin1');
  b[5] = 0; // audio_type: undefined
  return b;
}

/** DVB extension descriptor with extension tag 0x80 (Opus audio descriptor). */
export function opusDescriptor(channelConfigCode: number): Buffer {
  return Buffer.from([0x7f, 2, 0x80, channelConfigCode & 0xff]);
}
