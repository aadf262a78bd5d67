// Vorbis in Ogg (Vorbis I specification §4.2 headers, Appendix A "Embedding Vorbis into an Ogg
// stream"): the identification header alone on the first page, the comment and setup headers
// on the following page(s), the setup header ending its page, then audio packets.
//
// A Vorbis track's init is the three headers as Matroska's CodecPrivate holds them (Matroska
// codec mappings, "Xiph lacing"): count-1 (=2), the sizes of the first two headers in Xiph
// lacing (255s then a value below 255), then the three headers back to back. The other common
// form, three headers each behind a 16-bit big-endian length, is accepted as well.
//
//   identification: type(8)=1 "vorbis" version(u32le)=0 channels(8) rate(u32le)
//                   bitrate_max/nominal/min(3 * s32le) blocksize_0(4) blocksize_1(4) framing(1)

import { ByteReader } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';

export interface VorbisHeaders {
  identification: Buffer;
  comment: Buffer;
  setup: Buffer;
  channels: number;
  rate: number;
}

function isHeader(b: Buffer, type: number): boolean {
  return b.length >= 7 && b[0] === type && b.toString('latin1', 1, 7) === 'vorbis';
}

function splitXiphLaced(init: Buffer): Buffer[] {
  const r = new ByteReader(init);
  const count = r.u8() + 1;
  if (count !== 3) throw new HazeError('HAZE_ERR_MALFORMED', `Vorbis CodecPrivate holds ${count} packets, not 3`);
  const sizes: number[] = [];
  for (let i = 0; i < count - 1; i++) {
    let size = 0;
    for (;;) {
      const v = r.u8();
      size += v;
      if (v < 255) break;
    }
    sizes.push(size);
  }
  const out = sizes.map((s) => r.bytes(s));
  out.push(r.bytes(r.remaining));
  return out;
}

function splitLengthPrefixed(init: Buffer): Buffer[] {
  const r = new ByteReader(init);
  const out: Buffer[] = [];
  for (let i = 0; i < 3; i++) out.push(r.bytes(r.u16()));
  return out;
}

/** The three Vorbis headers of a track's init; HAZE_ERR_MALFORMED when they are not there. */
export function splitVorbisHeaders(init: Buffer): VorbisHeaders {
  if (init.length < 2) throw new HazeError('HAZE_ERR_SHORT_READ', 'Vorbis init data is empty');
  // A Xiph-laced init starts with 0x02; a length-prefixed one with the 30-byte id header's 0x00 0x1E.
  const parts = init[0] === 0x02 ? splitXiphLaced(init) : splitLengthPrefixed(init);
  const [identification, comment, setup] = parts as [Buffer, Buffer, Buffer];
  if (!isHeader(identification, 1) || identification.length < 30) throw new HazeError('HAZE_ERR_MALFORMED', 'no Vorbis identification header');
  if (!isHeader(comment, 3)) throw new HazeError('HAZE_ERR_MALFORMED', 'no Vorbis comment header');
  if (!isHeader(setup, 5)) throw new HazeError('HAZE_ERR_MALFORMED', 'no Vorbis setup header');
  const channels = identification[11]!;
  const rate = identification.readUInt32LE(12);
  if (channels === 0 || rate === 0) throw new HazeError('HAZE_ERR_MALFORMED', `Vorbis identification header: ${channels} channels at ${rate} Hz`);
  return { identification, comment, setup, channels, rate };
}

/** Xiph-laced CodecPrivate from three headers (the inverse of splitVorbisHeaders). */
export function xiphLace(packets: readonly Buffer[]): Buffer {
  if (packets.length < 1 || packets.length > 256) throw new HazeError('HAZE_ERR_INVALID_ARG', `${packets.length} packets to lace`);
  let size = 1;
  for (let i = 0; i < packets.length; i++) size += packets[i]!.length + (i < packets.length - 1 ? Math.floor(packets[i]!.length / 255) + 1 : 0);
  const out = Buffer.allocUnsafe(size);
  let pos = 0;
  out[pos++] = packets.length - 1;
  for (let i = 0; i < packets.length - 1; i++) {
    let n = packets[i]!.length;
    while (n >= 255) {
      out[pos++] = 255;
      n -= 255;
    }
    out[pos++] = n;
  }
  for (const p of packets) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}
