// Pieces of an MP3 file that are not audio frames:
// - ID3v2 tag (ID3v2.4.0 "main structure" §3.1): "ID3" major(8) revision(8) flags(8)
//   size(4 x 7-bit syncsafe, excluding the 10-byte header) [footer of 10 bytes when flags bit 4];
// - ID3v1 tag: the last 128 bytes of the file, starting "TAG";
// - APEv2 tag (APE tag item format 2.0): "APETAGEX" version(u32le) size(u32le: items + footer)
//   items(u32le) flags(u32le) 8 reserved; the 32-byte header, then `size` bytes;
// - the Xing/Info (LAME) or VBRI frame: a valid MPEG audio frame whose side information is
//   zero and which carries "Xing"/"Info" right after the side info (17 or 32 bytes for MPEG-1,
//   9 or 17 for MPEG-2/2.5, mono or not), or "VBRI" 32 bytes after the header (Fraunhofer).
//   It decodes to silence and describes the stream; players skip it.

import { parseMpegAudioHeader } from '../../media/audio-headers.js';

export const ID3V2_HEADER_BYTES = 10;
export const ID3V1_BYTES = 128;
export const APE_HEADER_BYTES = 32;

/** Total bytes of the ID3v2 tag at buf[p] (header, body, footer); undefined when none starts there. */
export function id3v2Size(buf: Buffer, p: number): number | undefined {
  if (buf.length - p < ID3V2_HEADER_BYTES || buf[p] !== 0x49 || buf[p + 1] !== 0x44 || buf[p + 2] !== 0x33) return undefined;
  // version bytes are never 0xFF, size bytes have their top bit clear
  if (buf[p + 3] === 0xff || buf[p + 4] === 0xff) return undefined;
  let size = 0;
  for (let i = 6; i < 10; i++) {
    const b = buf[p + i]!;
    if (b & 0x80) return undefined;
    size = size * 128 + b;
  }
  const footer = buf[p + 5]! & 0x10 ? 10 : 0;
  return ID3V2_HEADER_BYTES + size + footer;
}

/** Whether an ID3v1 tag starts at buf[p] (the caller checks that it ends the file). */
export function isId3v1(buf: Buffer, p: number): boolean {
  return buf.length - p >= 3 && buf[p] === 0x54 && buf[p + 1] === 0x41 && buf[p + 2] === 0x47;
}

/** Total bytes of the APEv2 tag whose header starts at buf[p]; undefined when none does. */
export function apeTagSize(buf: Buffer, p: number): number | undefined {
  if (buf.length - p < APE_HEADER_BYTES || buf.toString('latin1', p, p + 8) !== 'APETAGEX') return undefined;
  return APE_HEADER_BYTES + buf.readUInt32LE(p + 12);
}

/** Whether the MPEG audio frame `frame` (header at 0) is a Xing/Info/VBRI information frame. */
export function isMp3InfoFrame(frame: Buffer): boolean {
  const h = parseMpegAudioHeader(frame);
  if (!h) return false;
  const mono = h.channels === 1;
  const side = h.version === 1 ? (mono ? 17 : 32) : mono ? 9 : 17;
  // with a CRC (protection_bit 0) the side info starts 2 bytes later
  const crc = (frame[1]! & 1) === 0 ? 2 : 0;
  for (const at of [4 + side, 4 + side + crc]) {
    const tag = frame.toString('latin1', at, at + 4);
    if (tag === 'Xing' || tag === 'Info') return true;
  }
  return frame.toString('latin1', 36, 40) === 'VBRI';
}
