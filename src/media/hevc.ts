// H.265 / HEVC helpers.
// hvcC: ISO/IEC 14496-15 §8.3.3.1 (HEVCDecoderConfigurationRecord).
// SPS: ITU-T H.265 §7.3.2.2.1 (seq_parameter_set_rbsp) up to the conformance window and bit
// depths, with profile_tier_level §7.3.3. NAL header §7.3.1.2 (2 bytes, type = bits 1..6).
// Access unit delimiter §7.3.2.5 (NAL type 35).
//
//   hvcC: u8 version=1 | space(2) tier(1) profile(5) | u32 compat | 48b constraints | u8 level
//         | 1111 minSpatialSeg(12) | 111111 parallelism(2) | 111111 chroma(2) | 11111 lumaDepth-8(3)
//         | 11111 chromaDepth-8(3) | u16 avgFrameRate | cfr(2) layers(3) nested(1) lenMinusOne(2)
//         | u8 numArrays | { complete(1) 0 type(6) | u16 n | { u16 len, nal }* }*

import { BitReader, ByteReader, ByteWriter } from '../util/bytes.js';
import { HazeError } from '../util/errors.js';
import { annexBUnitSize, toAnnexBUnit, unescapeRbsp, writeAnnexBUnit, type AnnexBRules } from './nal-units.js';

export const HEVC_NAL_BLA_W_LP = 16;
export const HEVC_NAL_RSV_IRAP_23 = 23;
export const HEVC_NAL_VPS = 32;
export const HEVC_NAL_SPS = 33;
export const HEVC_NAL_PPS = 34;
export const HEVC_NAL_AUD = 35;

export interface HvcArray {
  nalType: number;
  complete: boolean;
  nalus: Buffer[];
}

export interface HevcConfig {
  profileSpace: number;
  tierFlag: number;
  profileIdc: number;
  /** general_profile_compatibility_flags as an unsigned 32-bit number. */
  compatibilityFlags: number;
  /** The 6 bytes of general constraint indicator flags. */
  constraintFlags: Buffer;
  levelIdc: number;
  chromaFormat: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  numTemporalLayers: number;
  temporalIdNested: boolean;
  /** Bytes of each NAL unit's length prefix in packet data (1, 2 or 4). */
  nalLengthSize: number;
  arrays: HvcArray[];
  vps: Buffer[];
  sps: Buffer[];
  pps: Buffer[];
}

export interface HevcSps {
  profileSpace: number;
  tierFlag: number;
  profileIdc: number;
  levelIdc: number;
  maxSubLayers: number;
  temporalIdNested: boolean;
  chromaFormatIdc: number;
  width: number;
  height: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
}

/** The NAL unit type of an HEVC NAL unit (bits 1..6 of its first byte). */
export function hevcNalType(nal: Uint8Array): number {
  return nal.length > 0 ? (nal[0]! >> 1) & 0x3f : -1;
}

export function isHevcIrap(type: number): boolean {
  return type >= HEVC_NAL_BLA_W_LP && type <= HEVC_NAL_RSV_IRAP_23;
}

// ---------------------------------------------------------------------------------------------
// hvcC

export function parseHvcC(buf: Buffer): HevcConfig {
  const r = new ByteReader(buf);
  const version = r.u8();
  if (version !== 1) throw new HazeError('HAZE_ERR_MALFORMED', `hvcC version ${version}`);
  const b1 = r.u8();
  const compatibilityFlags = r.u32();
  const constraintFlags = r.bytes(6);
  const levelIdc = r.u8();
  r.skip(2); // min_spatial_segmentation_idc
  r.skip(1); // parallelismType
  const chromaFormat = r.u8() & 3;
  const bitDepthLuma = (r.u8() & 7) + 8;
  const bitDepthChroma = (r.u8() & 7) + 8;
  r.skip(2); // avgFrameRate
  const b21 = r.u8();
  const nalLengthSize = (b21 & 3) + 1;
  if (nalLengthSize === 3) throw new HazeError('HAZE_ERR_MALFORMED', 'hvcC lengthSizeMinusOne 2 is reserved');
  const numArrays = r.u8();
  const arrays: HvcArray[] = [];
  const vps: Buffer[] = [];
  const sps: Buffer[] = [];
  const pps: Buffer[] = [];
  for (let i = 0; i < numArrays; i++) {
    const h = r.u8();
    const nalType = h & 0x3f;
    const n = r.u16();
    // Every entry needs at least its 2-byte length, so n is bounded by the buffer.
    r.need(n * 2);
    const nalus: Buffer[] = [];
    for (let j = 0; j < n; j++) nalus.push(r.bytes(r.u16()));
    arrays.push({ nalType, complete: (h & 0x80) !== 0, nalus });
    if (nalType === HEVC_NAL_VPS) vps.push(...nalus);
    else if (nalType === HEVC_NAL_SPS) sps.push(...nalus);
    else if (nalType === HEVC_NAL_PPS) pps.push(...nalus);
  }
  return {
    profileSpace: b1 >> 6,
    tierFlag: (b1 >> 5) & 1,
    profileIdc: b1 & 0x1f,
    compatibilityFlags,
    constraintFlags,
    levelIdc,
    chromaFormat,
    bitDepthLuma,
    bitDepthChroma,
    numTemporalLayers: (b21 >> 3) & 7,
    temporalIdNested: (b21 & 4) !== 0,
    nalLengthSize,
    arrays,
    vps,
    sps,
    pps,
  };
}

/**
 * Builds an hvcC (4-byte NAL lengths, arrays complete) from VPS/SPS/PPS NAL units; the profile,
 * tier, level and format fields are taken from the first SPS.
 */
export function buildHvcC(vps: readonly Buffer[], sps: readonly Buffer[], pps: readonly Buffer[]): Buffer {
  const first = sps[0];
  if (!first) throw new HazeError('HAZE_ERR_MALFORMED', 'buildHvcC needs an SPS');
  const info = parseHevcSps(first);
  // general_profile_tier_level is byte aligned: RBSP bytes 3..14 (after the 2-byte NAL header
  // and the vps_id/max_sub_layers/nesting byte).
  const rbsp = unescapeRbsp(first);
  const ptl = rbsp.subarray(3, 15);
  const arrays: Array<[number, readonly Buffer[]]> = [
    [HEVC_NAL_VPS, vps],
    [HEVC_NAL_SPS, sps],
    [HEVC_NAL_PPS, pps],
  ];
  let size = 23;
  for (const [, list] of arrays) {
    if (list.length > 0xffff) throw new HazeError('HAZE_ERR_TOO_LARGE', 'too many parameter sets');
    if (list.length > 0) size += 3;
    for (const p of list) {
      if (p.length > 0xffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `parameter set of ${p.length} bytes`);
      size += 2 + p.length;
    }
  }
  const w = new ByteWriter(size);
  w.u8(1).bytes(ptl);
  w.u16(0xf000).u8(0xfc).u8(0xfc | info.chromaFormatIdc);
  w.u8(0xf8 | (info.bitDepthLuma - 8)).u8(0xf8 | (info.bitDepthChroma - 8));
  w.u16(0);
  w.u8((info.maxSubLayers << 3) | (info.temporalIdNested ? 4 : 0) | 3);
  w.u8(arrays.filter(([, l]) => l.length > 0).length);
  for (const [type, list] of arrays) {
    if (list.length === 0) continue;
    w.u8(0x80 | type).u16(list.length);
    for (const p of list) w.u16(p.length).bytes(p);
  }
  return w.done();
}

// ---------------------------------------------------------------------------------------------
// SPS

/** Parses an HEVC SPS NAL unit (starting with its 2-byte NAL header) up to the bit depths. */
export function parseHevcSps(nal: Uint8Array): HevcSps {
  if (nal.length < 15) throw new HazeError('HAZE_ERR_SHORT_READ', 'HEVC SPS too short');
  if (hevcNalType(nal) !== HEVC_NAL_SPS) throw new HazeError('HAZE_ERR_MALFORMED', `NAL type ${hevcNalType(nal)} is not an SPS`);
  const br = new BitReader(unescapeRbsp(nal), 2);
  br.bits(4); // sps_video_parameter_set_id
  const maxSubLayersMinus1 = br.bits(3);
  if (maxSubLayersMinus1 > 6) throw new HazeError('HAZE_ERR_MALFORMED', 'sps_max_sub_layers_minus1 above 6');
  const temporalIdNested = br.flag();
  // profile_tier_level(1, maxSubLayersMinus1)
  const profileSpace = br.bits(2);
  const tierFlag = br.bits(1);
  const profileIdc = br.bits(5);
  br.bits(32); // compatibility flags
  br.bits(32); // progressive/interlaced/non-packed/frame-only + 44 bits of constraints...
  br.bits(16); // ...48 bits in all
  const levelIdc = br.bits(8);
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
  const spsId = br.ue();
  if (spsId > 15) throw new HazeError('HAZE_ERR_MALFORMED', `sps id ${spsId}`);
  const chromaFormatIdc = br.ue();
  if (chromaFormatIdc > 3) throw new HazeError('HAZE_ERR_MALFORMED', `chroma_format_idc ${chromaFormatIdc}`);
  let separateColourPlane = false;
  if (chromaFormatIdc === 3) separateColourPlane = br.flag();
  const fullWidth = br.ue();
  const fullHeight = br.ue();
  let left = 0;
  let right = 0;
  let top = 0;
  let bottom = 0;
  if (br.flag()) {
    left = br.ue();
    right = br.ue();
    top = br.ue();
    bottom = br.ue();
  }
  const bitDepthLuma = br.ue() + 8;
  const bitDepthChroma = br.ue() + 8;
  if (bitDepthLuma > 16 || bitDepthChroma > 16) throw new HazeError('HAZE_ERR_MALFORMED', 'bit depth above 16');
  // Table 6-1: the conformance window is in chroma sample units.
  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
  const subHeightC = chromaArrayType === 1 ? 2 : 1;
  const width = fullWidth - subWidthC * (left + right);
  const height = fullHeight - subHeightC * (top + bottom);
  if (fullWidth > 65536 || fullHeight > 65536 || width <= 0 || height <= 0) {
    throw new HazeError('HAZE_ERR_MALFORMED', `SPS picture size ${width}x${height}`);
  }
  return {
    profileSpace,
    tierFlag,
    profileIdc,
    levelIdc,
    maxSubLayers: maxSubLayersMinus1 + 1,
    temporalIdNested,
    chromaFormatIdc,
    width,
    height,
    bitDepthLuma,
    bitDepthChroma,
  };
}

// ---------------------------------------------------------------------------------------------
// Length-prefixed -> Annex B

/** AUD: NAL header (type 35, layer 0, tid 1), pic_type 2 (I, P, B) + rbsp stop bit. */
const AUD_NAL = Buffer.from([0x46, 0x01, 0x50]);
const rulesByConfig = new WeakMap<HevcConfig, AnnexBRules>();

/** The Annex B rules of one hvcC, made once per config. */
function hevcRules(cfg: HevcConfig): AnnexBRules {
  let r = rulesByConfig.get(cfg);
  if (!r) {
    r = {
      lengthSize: cfg.nalLengthSize,
      nalType: (b) => (b >> 1) & 0x3f,
      audType: HEVC_NAL_AUD,
      aud: AUD_NAL,
      paramSets: [
        { type: HEVC_NAL_VPS, nals: cfg.vps },
        { type: HEVC_NAL_SPS, nals: cfg.sps },
        { type: HEVC_NAL_PPS, nals: cfg.pps },
      ],
      isRandomAccess: isHevcIrap,
    };
    rulesByConfig.set(cfg, r);
  }
  return r;
}

/** Bytes hevcToAnnexB would produce. */
export function hevcAnnexBSize(data: Buffer, cfg: HevcConfig, keyframe: boolean): number {
  return annexBUnitSize(data, hevcRules(cfg), keyframe);
}

/** Writes the Annex B form into `out` at `offset`; returns the end offset. */
export function writeHevcAnnexB(data: Buffer, cfg: HevcConfig, keyframe: boolean, out: Buffer, offset: number): number {
  return writeAnnexBUnit(data, hevcRules(cfg), keyframe, out, offset);
}

/**
 * One access unit from length-prefixed NAL units to Annex B (4-byte start codes): an AUD (type
 * 35) first unless present, then on keyframes / IRAP units lacking them the VPS/SPS/PPS from
 * hvcC. Allocates once at the computed size.
 */
export function hevcToAnnexB(data: Buffer, cfg: HevcConfig, keyframe: boolean): Buffer {
  return toAnnexBUnit(data, hevcRules(cfg), keyframe);
}
