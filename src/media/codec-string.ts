// RFC 6381 `codecs` parameter strings for a Track (HLS CODECS=, DASH @codecs, MSE types).
// avc1: RFC 6381 §3.3 (profile_idc, constraint byte, level_idc from avcC, hex).
// hvc1/hev1: ISO/IEC 14496-15 Annex E.3. mp4a: RFC 6381 §3.3 (OTI 40 + audioObjectType; 6B = MP3).
// av01: AV1 Codec ISO Media File Format Binding §5 (av1C). vp09: VP Codec ISO Media File Format
// Binding §5 (vpcC). opus / ac-3 / flac: their ISOBMFF sample entry names.

import type { Track } from './types.js';
import { parseAsc } from './aac.js';
import { parseHvcC } from './hevc.js';
import { isHazeError } from '../util/errors.js';

export interface CodecStringOptions {
  /** Sample entry for HEVC: `hvc1` (parameter sets only in hvcC) or `hev1` (also in-band). */
  hevcEntry?: 'hvc1' | 'hev1';
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

function reverseBits32(v: number): number {
  let r = 0;
  for (let i = 0; i < 32; i++) {
    r = r * 2 + (v & 1);
    v >>>= 1;
  }
  return r;
}

/** Runs a parser on init data; malformed init data falls back to a generic string. */
function tryParse<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (isHazeError(err)) return undefined;
    throw err;
  }
}

function avcString(init: Buffer): string {
  // avcC bytes 1..3 are AVCProfileIndication, profile_compatibility, AVCLevelIndication.
  if (init.length >= 4 && init[0] === 1) return `avc1.${hex2(init[1]!)}${hex2(init[2]!)}${hex2(init[3]!)}`;
  return 'avc1.42e01e';
}

function hevcString(init: Buffer, entry: 'hvc1' | 'hev1'): string {
  const c = init.length > 0 ? tryParse(() => parseHvcC(init)) : undefined;
  if (!c) return `${entry}.1.6.L93.B0`;
  const space = ['', 'A', 'B', 'C'][c.profileSpace]!;
  let s = `${entry}.${space}${c.profileIdc}.${reverseBits32(c.compatibilityFlags).toString(16)}.${c.tierFlag ? 'H' : 'L'}${c.levelIdc}`;
  // Constraint bytes in hex, trailing zero bytes omitted.
  let last = c.constraintFlags.length;
  while (last > 0 && c.constraintFlags[last - 1] === 0) last--;
  for (let i = 0; i < last; i++) s += `.${c.constraintFlags[i]!.toString(16).toUpperCase()}`;
  return s;
}

function aacString(init: Buffer): string {
  const asc = init.length > 0 ? tryParse(() => parseAsc(init)) : undefined;
  return `mp4a.40.${asc ? asc.objectType : 2}`;
}

function av1String(init: Buffer): string {
  // av1C: marker(1) version(7) | seq_profile(3) seq_level_idx_0(5) | tier(1) high_bitdepth(1)
  // twelve_bit(1) monochrome(1) subsampling_x(1) subsampling_y(1) chroma_position(2) | ...
  if (init.length < 4 || init[0] !== 0x81) return 'av01.0.04M.08';
  const profile = init[1]! >> 5;
  const level = init[1]! & 0x1f;
  const tier = init[2]! & 0x80 ? 'H' : 'M';
  const high = (init[2]! & 0x40) !== 0;
  const twelve = (init[2]! & 0x20) !== 0;
  const depth = profile === 2 && high ? (twelve ? 12 : 10) : high ? 10 : 8;
  return `av01.${profile}.${String(level).padStart(2, '0')}${tier}.${String(depth).padStart(2, '0')}`;
}

function vp9String(init: Buffer): string {
  // vpcC (version 1, FullBox body): u8 version, u24 flags, u8 profile, u8 level,
  // bitDepth(4) chromaSubsampling(3) fullRange(1), ...
  if (init.length >= 7 && init[0] === 1) {
    const depth = init[6]! >> 4;
    return `vp09.${String(init[4]!).padStart(2, '0')}.${String(init[5]!).padStart(2, '0')}.${String(depth).padStart(2, '0')}`;
  }
  return 'vp09.00.40.08';
}

/** The RFC 6381 codecs string for a track. */
export function codecString(track: Track, opts: CodecStringOptions = {}): string {
  switch (track.codec) {
    case 'H264':
      return avcString(track.init);
    case 'HEVC':
      return hevcString(track.init, opts.hevcEntry ?? 'hvc1');
    case 'AV1':
      return av1String(track.init);
    case 'VP9':
      return vp9String(track.init);
    case 'VP8':
      return 'vp8';
    case 'AAC':
      return aacString(track.init);
    case 'MP3':
      return 'mp4a.6B';
    case 'opus':
      return 'opus';
    case 'AC3':
      return 'ac-3';
    case 'FLAC':
      return 'flac';
    case 'vorbis':
      return 'vorbis';
    case 'ALAW':
      return 'alaw';
    case 'ULAW':
      return 'ulaw';
    case 'PCM':
      return 'ipcm';
    default:
      return track.codec.toLowerCase();
  }
}
