// H.264 / AVC helpers.
// avcC: ISO/IEC 14496-15 §5.3.3.1 (AVCDecoderConfigurationRecord).
// SPS: ITU-T H.264 §7.3.2.1.1 (seq_parameter_set_data) and Annex E.1.1 (vui_parameters).
// Byte stream (Annex B): ITU-T H.264 Annex B; access unit delimiter §7.3.2.4 (NAL type 9).
//
//   avcC: u8 version=1 | u8 profile | u8 compat | u8 level | 111111 lengthSizeMinusOne(2)
//         | 111 numSps(5) | { u16 len, sps }* | u8 numPps | { u16 len, pps }* | [high-profile ext]

import { BitReader, ByteReader, ByteWriter } from '../util/bytes.js';
import { HazeError } from '../util/errors.js';
import { annexBUnitSize, toAnnexBUnit, unescapeRbsp, writeAnnexBUnit, type AnnexBRules } from './nal-units.js';

export const H264_NAL_SLICE = 1;
export const H264_NAL_IDR = 5;
export const H264_NAL_SEI = 6;
export const H264_NAL_SPS = 7;
export const H264_NAL_PPS = 8;
export const H264_NAL_AUD = 9;

export interface AvcConfig {
  profile: number;
  compatibility: number;
  level: number;
  /** Bytes of each NAL unit's length prefix in packet data (1, 2 or 4). */
  nalLengthSize: number;
  sps: Buffer[];
  pps: Buffer[];
}

export interface H264Sps {
  profileIdc: number;
  constraintFlags: number;
  levelIdc: number;
  spsId: number;
  chromaFormatIdc: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  width: number;
  height: number;
  frameMbsOnly: boolean;
  /** Sample aspect ratio from the VUI, 1:1 when absent. */
  sarWidth: number;
  sarHeight: number;
  /** Frames per 1000 s from VUI timing (time_scale / (2 * num_units_in_tick)), 0 if absent. */
  fpks: number;
}

/** The NAL unit type of an H.264 NAL unit (low 5 bits of its first byte). */
export function h264NalType(nal: Uint8Array): number {
  return nal.length > 0 ? nal[0]! & 0x1f : -1;
}

// ---------------------------------------------------------------------------------------------
// avcC

export function parseAvcC(buf: Buffer): AvcConfig {
  const r = new ByteReader(buf);
  const version = r.u8();
  if (version !== 1) throw new HazeError('HAZE_ERR_MALFORMED', `avcC version ${version}`);
  const profile = r.u8();
  const compatibility = r.u8();
  const level = r.u8();
  const nalLengthSize = (r.u8() & 3) + 1;
  if (nalLengthSize === 3) throw new HazeError('HAZE_ERR_MALFORMED', 'avcC lengthSizeMinusOne 2 is reserved');
  const numSps = r.u8() & 0x1f;
  const sps: Buffer[] = [];
  for (let i = 0; i < numSps; i++) sps.push(r.bytes(r.u16()));
  const numPps = r.u8();
  const pps: Buffer[] = [];
  for (let i = 0; i < numPps; i++) pps.push(r.bytes(r.u16()));
  // The high-profile extension (chroma format, bit depths, SPS ext) carries nothing we need.
  return { profile, compatibility, level, nalLengthSize, sps, pps };
}

/** Builds an avcC (4-byte NAL lengths) from SPS and PPS NAL units (with their NAL header byte). */
export function buildAvcC(sps: Buffer | readonly Buffer[], pps: Buffer | readonly Buffer[]): Buffer {
  const spsList = Buffer.isBuffer(sps) ? [sps] : sps;
  const ppsList = Buffer.isBuffer(pps) ? [pps] : pps;
  const first = spsList[0];
  if (!first || first.length < 4) throw new HazeError('HAZE_ERR_MALFORMED', 'buildAvcC needs an SPS');
  if (spsList.length > 31 || ppsList.length > 255) throw new HazeError('HAZE_ERR_TOO_LARGE', 'too many parameter sets');
  for (const p of [...spsList, ...ppsList]) {
    if (p.length > 0xffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `parameter set of ${p.length} bytes`);
  }
  const profile = first[1]!;
  // 14496-15 requires the chroma/bit-depth extension for these profiles.
  const ext = profile === 100 || profile === 110 || profile === 122 || profile === 144;
  let info: H264Sps | undefined;
  if (ext) info = parseH264Sps(first);
  let size = 6 + 1;
  for (const p of spsList) size += 2 + p.length;
  for (const p of ppsList) size += 2 + p.length;
  if (ext) size += 4;
  const w = new ByteWriter(size);
  w.u8(1).u8(profile).u8(first[2]!).u8(first[3]!).u8(0xff).u8(0xe0 | spsList.length);
  for (const p of spsList) w.u16(p.length).bytes(p);
  w.u8(ppsList.length);
  for (const p of ppsList) w.u16(p.length).bytes(p);
  if (info) {
    w.u8(0xfc | info.chromaFormatIdc).u8(0xf8 | (info.bitDepthLuma - 8)).u8(0xf8 | (info.bitDepthChroma - 8)).u8(0);
  }
  return w.done();
}

// ---------------------------------------------------------------------------------------------
// SPS

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function skipScalingList(br: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      const delta = br.se();
      next = (((last + delta) % 256) + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}

/** Parses an SPS NAL unit (starting with its NAL header byte). */
export function parseH264Sps(nal: Uint8Array): H264Sps {
  if (nal.length < 4) throw new HazeError('HAZE_ERR_SHORT_READ', 'SPS too short');
  if ((nal[0]! & 0x1f) !== H264_NAL_SPS) throw new HazeError('HAZE_ERR_MALFORMED', `NAL type ${nal[0]! & 0x1f} is not an SPS`);
  const br = new BitReader(unescapeRbsp(nal), 1);
  const profileIdc = br.bits(8);
  const constraintFlags = br.bits(8);
  const levelIdc = br.bits(8);
  const spsId = br.ue();
  if (spsId > 31) throw new HazeError('HAZE_ERR_MALFORMED', `sps id ${spsId}`);
  let chromaFormatIdc = 1;
  let separateColourPlane = false;
  let bitDepthLuma = 8;
  let bitDepthChroma = 8;
  if (HIGH_PROFILES.has(profileIdc)) {
    chromaFormatIdc = br.ue();
    if (chromaFormatIdc > 3) throw new HazeError('HAZE_ERR_MALFORMED', `chroma_format_idc ${chromaFormatIdc}`);
    if (chromaFormatIdc === 3) separateColourPlane = br.flag();
    bitDepthLuma = br.ue() + 8;
    bitDepthChroma = br.ue() + 8;
    if (bitDepthLuma > 14 || bitDepthChroma > 14) throw new HazeError('HAZE_ERR_MALFORMED', 'bit depth above 14');
    br.flag(); // qpprime_y_zero_transform_bypass_flag
    if (br.flag()) {
      const lists = chromaFormatIdc !== 3 ? 8 : 12;
      for (let i = 0; i < lists; i++) {
        if (br.flag()) skipScalingList(br, i < 6 ? 16 : 64);
      }
    }
  }
  br.ue(); // log2_max_frame_num_minus4
  const pocType = br.ue();
  if (pocType === 0) {
    br.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === 1) {
    br.flag();
    br.se();
    br.se();
    const cycle = br.ue();
    if (cycle > 255) throw new HazeError('HAZE_ERR_MALFORMED', `num_ref_frames_in_pic_order_cnt_cycle ${cycle}`);
    for (let i = 0; i < cycle; i++) br.se();
  } else if (pocType !== 2) {
    throw new HazeError('HAZE_ERR_MALFORMED', `pic_order_cnt_type ${pocType}`);
  }
  br.ue(); // max_num_ref_frames
  br.flag(); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = br.ue() + 1;
  const heightMapUnits = br.ue() + 1;
  const frameMbsOnly = br.flag();
  if (!frameMbsOnly) br.flag(); // mb_adaptive_frame_field_flag
  br.flag(); // direct_8x8_inference_flag
  let cropLeft = 0;
  let cropRight = 0;
  let cropTop = 0;
  let cropBottom = 0;
  if (br.flag()) {
    cropLeft = br.ue();
    cropRight = br.ue();
    cropTop = br.ue();
    cropBottom = br.ue();
  }
  // Table 6-1: crop units depend on chroma subsampling; field coding doubles the vertical unit.
  const chromaArrayType = separateColourPlane ? 0 : chromaFormatIdc;
  const subWidthC = chromaArrayType === 1 || chromaArrayType === 2 ? 2 : 1;
  const subHeightC = chromaArrayType === 1 ? 2 : 1;
  const cropUnitX = chromaArrayType === 0 ? 1 : subWidthC;
  const cropUnitY = (chromaArrayType === 0 ? 1 : subHeightC) * (frameMbsOnly ? 1 : 2);
  const fullWidth = widthMbs * 16;
  const fullHeight = heightMapUnits * 16 * (frameMbsOnly ? 1 : 2);
  const width = fullWidth - cropUnitX * (cropLeft + cropRight);
  const height = fullHeight - cropUnitY * (cropTop + cropBottom);
  if (fullWidth > 65536 || fullHeight > 65536 || width <= 0 || height <= 0) {
    throw new HazeError('HAZE_ERR_MALFORMED', `SPS picture size ${width}x${height}`);
  }

  let sarWidth = 1;
  let sarHeight = 1;
  let fpks = 0;
  if (br.flag()) {
    // vui_parameters (E.1.1); only the fields up to timing_info are read.
    if (br.flag()) {
      const idc = br.bits(8);
      if (idc === 255) {
        sarWidth = br.bits(16);
        sarHeight = br.bits(16);
      } else if (idc > 0 && idc < SAR_TABLE.length) {
        [sarWidth, sarHeight] = SAR_TABLE[idc]!;
      }
    }
    if (br.flag()) br.flag(); // overscan
    if (br.flag()) {
      br.bits(4); // video_format, video_full_range_flag
      if (br.flag()) br.bits(24); // colour description
    }
    if (br.flag()) {
      br.ue();
      br.ue();
    }
    if (br.flag()) {
      const numUnitsInTick = br.bits(32);
      const timeScale = br.bits(32);
      if (numUnitsInTick > 0 && timeScale > 0) fpks = Math.round((timeScale * 1000) / (2 * numUnitsInTick));
    }
  }
  return {
    profileIdc,
    constraintFlags,
    levelIdc,
    spsId,
    chromaFormatIdc,
    bitDepthLuma,
    bitDepthChroma,
    width,
    height,
    frameMbsOnly,
    sarWidth,
    sarHeight,
    fpks,
  };
}

// Table E-1 (aspect_ratio_idc 1..16).
const SAR_TABLE: ReadonlyArray<readonly [number, number]> = [
  [1, 1], [1, 1], [12, 11], [10, 11], [16, 11], [40, 33], [24, 11], [20, 11], [32, 11],
  [80, 33], [18, 11], [15, 11], [64, 33], [160, 99], [4, 3], [3, 2], [2, 1],
];

// ---------------------------------------------------------------------------------------------
// Length-prefixed -> Annex B (the codec-independent part is in nal-units.ts)

/** AUD: NAL header 0x09, primary_pic_type 7 (any slice type) + rbsp stop bit. */
const AUD_NAL = Buffer.from([0x09, 0xf0]);
const rulesByConfig = new WeakMap<AvcConfig, AnnexBRules>();

/** The Annex B rules of one avcC, made once per config (the muxer calls this per packet). */
function avcRules(cfg: AvcConfig): AnnexBRules {
  let r = rulesByConfig.get(cfg);
  if (!r) {
    r = {
      lengthSize: cfg.nalLengthSize,
      nalType: (b) => b & 0x1f,
      audType: H264_NAL_AUD,
      aud: AUD_NAL,
      paramSets: [
        { type: H264_NAL_SPS, nals: cfg.sps },
        { type: H264_NAL_PPS, nals: cfg.pps },
      ],
      isRandomAccess: () => false,
    };
    rulesByConfig.set(cfg, r);
  }
  return r;
}

/** Bytes avccToAnnexB would produce, for callers that write into their own buffer. */
export function annexBSize(data: Buffer, cfg: AvcConfig, keyframe: boolean): number {
  return annexBUnitSize(data, avcRules(cfg), keyframe);
}

/** Writes avccToAnnexB's output into `out` at `offset`; returns the end offset. */
export function writeAnnexB(data: Buffer, cfg: AvcConfig, keyframe: boolean, out: Buffer, offset: number): number {
  return writeAnnexBUnit(data, avcRules(cfg), keyframe, out, offset);
}

/**
 * One access unit from length-prefixed NAL units to Annex B (4-byte start codes), with an AUD
 * first and, on keyframes that lack them, the avcC's SPS/PPS. Allocates once at the computed size.
 */
export function avccToAnnexB(data: Buffer, cfg: AvcConfig, keyframe: boolean): Buffer {
  return toAnnexBUnit(data, avcRules(cfg), keyframe);
}
