// Small codec-header readers the FLV demuxer needs to fill track fields (rate, channels,
// width/height) when onMetaData does not give them:
// - AudioSpecificConfig, ISO/IEC 14496-3 §1.6.2.1 (object type, frequency index, channels)
// - MPEG audio frame header, ISO/IEC 11172-3 §2.4.1.3 / 13818-3 (version, rate, mode)
// - AC-3 syncinfo + bsi, ATSC A/52 §5.3.1-5.3.2 (fscod, acmod, lfeon)
// - OpusHead, RFC 7845 §5.1; FLAC STREAMINFO, RFC 9639 §8.2
// - H.264 SPS, ITU-T H.264 §7.3.2.1.1 (via avcC, ISO/IEC 14496-15 §5.3.3.1) for the picture size
// - H.265 SPS, ITU-T H.265 §7.3.2.2 (via hvcC, ISO/IEC 14496-15 §8.3.3.1) for the picture size
// Every reader returns undefined on input it cannot interpret instead of throwing: these only
// refine track fields, they never decide whether a stream is usable.

import { BitReader } from '../../util/bytes.js';

export interface AudioParams {
  rate: number;
  channels: number;
}

const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/** Sample rate and channel count from an AudioSpecificConfig. */
export function parseAudioSpecificConfig(asc: Uint8Array): AudioParams | undefined {
  try {
    const br = new BitReader(asc);
    const objectType = (): number => {
      const t = br.bits(5);
      return t === 31 ? 32 + br.bits(6) : t;
    };
    const frequency = (): number | undefined => {
      const idx = br.bits(4);
      return idx === 15 ? br.bits(24) : AAC_RATES[idx];
    };
    const aot = objectType();
    let rate = frequency();
    const channelConfig = br.bits(4);
    // HE-AAC (SBR 5, PS 29) with explicit signalling: the output rate is the extension rate.
    if (aot === 5 || aot === 29) rate = frequency() ?? rate;
    if (rate === undefined || rate === 0) return undefined;
    const channels = channelConfig === 7 ? 8 : channelConfig;
    return { rate, channels };
  } catch {
    return undefined;
  }
}

const MP3_RATES = [44100, 48000, 32000];

/** Sample rate and channels from the first MPEG audio frame header in `data`. */
export function parseMpegAudioHeader(data: Uint8Array): AudioParams | undefined {
  if (data.length < 4 || data[0] !== 0xff || (data[1]! & 0xe0) !== 0xe0) return undefined;
  const version = (data[1]! >> 3) & 3; // 0: MPEG 2.5, 2: MPEG 2, 3: MPEG 1
  const rateIdx = (data[2]! >> 2) & 3;
  if (version === 1 || rateIdx === 3) return undefined;
  const base = MP3_RATES[rateIdx]!;
  const rate = version === 3 ? base : version === 2 ? base / 2 : base / 4;
  const mode = data[3]! >> 6;
  return { rate, channels: mode === 3 ? 1 : 2 };
}

const AC3_RATES = [48000, 44100, 32000];
const AC3_CHANNELS = [2, 1, 2, 3, 3, 4, 4, 5];

/** Sample rate and channels from an AC-3 frame. */
export function parseAc3Header(data: Uint8Array): AudioParams | undefined {
  if (data.length < 8 || data[0] !== 0x0b || data[1] !== 0x77) return undefined;
  try {
    const br = new BitReader(data, 4);
    const fscod = br.bits(2);
    br.bits(6); // frmsizecod
    const bsid = br.bits(5);
    if (fscod === 3 || bsid > 10) return undefined;
    br.bits(3); // bsmod
    const acmod = br.bits(3);
    if ((acmod & 1) !== 0 && acmod !== 1) br.bits(2); // cmixlev
    if ((acmod & 4) !== 0) br.bits(2); // surmixlev
    if (acmod === 2) br.bits(2); // dsurmod
    const lfe = br.bits(1);
    return { rate: AC3_RATES[fscod]!, channels: AC3_CHANNELS[acmod]! + lfe };
  } catch {
    return undefined;
  }
}

/** Channels from an OpusHead; Opus always decodes at 48 kHz (RFC 7845 §5.1 "Input Sample Rate" is informational). */
export function parseOpusHead(head: Uint8Array): AudioParams | undefined {
  if (head.length < 19 || Buffer.from(head.buffer, head.byteOffset, 8).toString('latin1') !== 'OpusHead') return undefined;
  const channels = head[9]!;
  return channels > 0 ? { rate: 48000, channels } : undefined;
}

/** Rate and channels from "fLaC" + STREAMINFO (the enhanced-FLV FLAC sequence start). */
export function parseFlacHeader(data: Uint8Array): AudioParams | undefined {
  // "fLaC" (4) + block header (4) + min/max block (4) + min/max frame (6) + rate/channels...
  if (data.length < 4 + 4 + 18 || data[0] !== 0x66 || data[1] !== 0x4c || data[2] !== 0x61 || data[3] !== 0x43) return undefined;
  if ((data[4]! & 0x7f) !== 0) return undefined; // first block must be STREAMINFO
  const o = 8 + 10;
  const rate = (data[o]! << 12) | (data[o + 1]! << 4) | (data[o + 2]! >> 4);
  const channels = ((data[o + 2]! >> 1) & 7) + 1;
  return rate > 0 ? { rate, channels } : undefined;
}

/** NAL unit payload without emulation-prevention bytes (00 00 03 -> 00 00). */
function unescapeRbsp(nal: Uint8Array, maxBytes: number): Uint8Array {
  const n = Math.min(nal.length, maxBytes);
  const out = new Uint8Array(n);
  let o = 0;
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    zeros = b === 0 ? zeros + 1 : 0;
    out[o++] = b;
  }
  return out.subarray(0, o);
}

export interface PictureSize {
  width: number;
  height: number;
}

function skipScalingList(br: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (last + br.se() + 256) % 256;
    last = next === 0 ? last : next;
  }
}

/** Picture size from an H.264 SPS NAL unit (with its 1-byte NAL header). */
export function parseH264SpsSize(nal: Uint8Array): PictureSize | undefined {
  try {
    const rbsp = unescapeRbsp(nal, 512);
    const br = new BitReader(rbsp, 1);
    const profile = br.bits(8);
    br.bits(16); // constraint flags + level
    br.ue(); // sps id
    let chromaFormat = 1;
    let separateColour = false;
    if ([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].includes(profile)) {
      chromaFormat = br.ue();
      if (chromaFormat === 3) separateColour = br.flag();
      br.ue(); // bit depth luma
      br.ue(); // bit depth chroma
      br.flag(); // qpprime bypass
      if (br.flag()) {
        const count = chromaFormat !== 3 ? 8 : 12;
        for (let i = 0; i < count; i++) if (br.flag()) skipScalingList(br, i < 6 ? 16 : 64);
      }
    }
    br.ue(); // log2 max frame num
    const pocType = br.ue();
    if (pocType === 0) br.ue();
    else if (pocType === 1) {
      br.flag();
      br.se();
      br.se();
      const cycle = br.ue();
      if (cycle > 255) return undefined;
      for (let i = 0; i < cycle; i++) br.se();
    }
    br.ue(); // max ref frames
    br.flag(); // gaps allowed
    const widthMbs = br.ue() + 1;
    const heightUnits = br.ue() + 1;
    const frameMbsOnly = br.flag();
    if (!frameMbsOnly) br.flag();
    br.flag(); // direct 8x8
    let cropL = 0;
    let cropR = 0;
    let cropT = 0;
    let cropB = 0;
    if (br.flag()) {
      cropL = br.ue();
      cropR = br.ue();
      cropT = br.ue();
      cropB = br.ue();
    }
    const arrayType = separateColour ? 0 : chromaFormat;
    const cropX = arrayType === 0 ? 1 : arrayType === 3 ? 1 : 2;
    const cropY = (arrayType === 0 ? 1 : arrayType === 1 ? 2 : 1) * (frameMbsOnly ? 1 : 2);
    const width = widthMbs * 16 - cropX * (cropL + cropR);
    const height = heightUnits * 16 * (frameMbsOnly ? 1 : 2) - cropY * (cropT + cropB);
    return width > 0 && height > 0 ? { width, height } : undefined;
  } catch {
    return undefined;
  }
}

/** Picture size from the first SPS of an avcC record. */
export function avcCPictureSize(avcC: Uint8Array): PictureSize | undefined {
  if (avcC.length < 8 || avcC[0] !== 1) return undefined;
  const numSps = avcC[5]! & 0x1f;
  if (numSps === 0) return undefined;
  const len = (avcC[6]! << 8) | avcC[7]!;
  if (8 + len > avcC.length) return undefined;
  return parseH264SpsSize(avcC.subarray(8, 8 + len));
}

/** Picture size from an H.265 SPS NAL unit (with its 2-byte NAL header). */
export function parseHevcSpsSize(nal: Uint8Array): PictureSize | undefined {
  try {
    const rbsp = unescapeRbsp(nal, 512);
    const br = new BitReader(rbsp, 2);
    br.bits(4); // vps id
    const maxSubLayersMinus1 = br.bits(3);
    br.bits(1); // temporal id nesting
    // profile_tier_level(1, maxSubLayersMinus1): general part is 88 bits + 8 bits level.
    br.bits(32);
    br.bits(32);
    br.bits(24);
    br.bits(8); // general_level_idc
    const subProfile: boolean[] = [];
    const subLevel: boolean[] = [];
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      subProfile.push(br.flag());
      subLevel.push(br.flag());
    }
    if (maxSubLayersMinus1 > 0) for (let i = maxSubLayersMinus1; i < 8; i++) br.bits(2);
    for (let i = 0; i < maxSubLayersMinus1; i++) {
      if (subProfile[i]) {
        br.bits(32);
        br.bits(32);
        br.bits(24);
      }
      if (subLevel[i]) br.bits(8);
    }
    br.ue(); // sps id
    const chromaFormat = br.ue();
    let separateColour = false;
    if (chromaFormat === 3) separateColour = br.flag();
    let width = br.ue();
    let height = br.ue();
    if (br.flag()) {
      const arrayType = separateColour ? 0 : chromaFormat;
      const subW = arrayType === 1 || arrayType === 2 ? 2 : 1;
      const subH = arrayType === 1 ? 2 : 1;
      const l = br.ue();
      const r = br.ue();
      const t = br.ue();
      const b = br.ue();
      width -= subW * (l + r);
      height -= subH * (t + b);
    }
    return width > 0 && height > 0 ? { width, height } : undefined;
  } catch {
    return undefined;
  }
}

/** Picture size from the first SPS (NAL type 33) in an hvcC record's arrays. */
export function hvcCPictureSize(hvcC: Uint8Array): PictureSize | undefined {
  if (hvcC.length < 23) return undefined;
  let p = 22;
  const numArrays = hvcC[p++]!;
  for (let a = 0; a < numArrays; a++) {
    if (p + 3 > hvcC.length) return undefined;
    const type = hvcC[p]! & 0x3f;
    const count = (hvcC[p + 1]! << 8) | hvcC[p + 2]!;
    p += 3;
    for (let i = 0; i < count; i++) {
      if (p + 2 > hvcC.length) return undefined;
      const len = (hvcC[p]! << 8) | hvcC[p + 1]!;
      p += 2;
      if (p + len > hvcC.length) return undefined;
      if (type === 33) return parseHevcSpsSize(hvcC.subarray(p, p + len));
      p += len;
    }
  }
  return undefined;
}
