// Decode timestamps for Matroska video, which stores only presentation timestamps (RFC 9559
// §10.1: a Block's timestamp is its PTS). The reorder depth comes from the SPS:
// - H.264: vui_parameters' bitstream_restriction max_num_reorder_frames (ITU-T H.264 §E.1.1);
//   without it 0 for Baseline (no B-slices) and otherwise the level's DPB size in frames
//   (Table A-1 MaxDpbMbs / frame size in macroblocks), capped at 16.
// - HEVC: sps_max_num_reorder_pics of the highest sub-layer (ITU-T H.265 §7.3.2.2).
// The DTS of a frame is then what libavformat computes for such streams: with a reorder depth
// d, the (d+1)-th largest PTS seen so far on the track. The first d frames of a track have
// no such value; they get the first known DTS minus one frame duration per frame still to go.

import { BitReader } from '../../util/bytes.js';
import { HazeError, isHazeError } from '../../util/errors.js';
import { unescapeRbsp } from '../../media/nal-units.js';

const MAX_DELAY = 16;

/** Table A-1: level_idc -> MaxDpbMbs. */
const MAX_DPB_MBS: ReadonlyMap<number, number> = new Map([
  [9, 396], [10, 396], [11, 900], [12, 2376], [13, 2376], [20, 2376], [21, 4752], [22, 8100], [30, 8100], [31, 18000],
  [32, 20480], [40, 32768], [41, 32768], [42, 34816], [50, 110400], [51, 184320], [52, 184320],
]);

const HIGH_PROFILES = new Set([100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135]);

function skipScalingList(br: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) next = (((last + br.se()) % 256) + 256) % 256;
    if (next !== 0) last = next;
  }
}

function skipHrd(br: BitReader): void {
  const cpbCnt = br.ue() + 1;
  if (cpbCnt > 32) throw new HazeError('HAZE_ERR_MALFORMED', `cpb_cnt ${cpbCnt}`);
  br.bits(8); // bit_rate_scale, cpb_size_scale
  for (let i = 0; i < cpbCnt; i++) {
    br.ue();
    br.ue();
    br.bits(1);
  }
  br.bits(20); // four 5-bit length/delay fields
}

/** Frames of reordering in an H.264 SPS (NAL header byte included). */
export function h264ReorderFrames(nal: Uint8Array): number {
  const br = new BitReader(unescapeRbsp(nal), 1);
  const profile = br.bits(8);
  br.bits(8);
  const level = br.bits(8);
  br.ue();
  if (HIGH_PROFILES.has(profile)) {
    const chroma = br.ue();
    if (chroma === 3) br.bits(1);
    br.ue();
    br.ue();
    br.bits(1);
    if (br.flag()) for (let i = 0; i < (chroma === 3 ? 12 : 8); i++) if (br.flag()) skipScalingList(br, i < 6 ? 16 : 64);
  }
  br.ue(); // log2_max_frame_num_minus4
  const pocType = br.ue();
  if (pocType === 0) br.ue();
  else if (pocType === 1) {
    br.bits(1);
    br.se();
    br.se();
    const n = br.ue();
    if (n > 255) throw new HazeError('HAZE_ERR_MALFORMED', `num_ref_frames_in_pic_order_cnt_cycle ${n}`);
    for (let i = 0; i < n; i++) br.se();
  }
  const maxRefFrames = br.ue();
  br.bits(1);
  const widthMbs = br.ue() + 1;
  const heightUnits = br.ue() + 1;
  const frameMbsOnly = br.flag();
  const heightMbs = heightUnits * (frameMbsOnly ? 1 : 2);
  if (!frameMbsOnly) br.bits(1);
  br.bits(1);
  if (br.flag()) for (let i = 0; i < 4; i++) br.ue();
  const fallback = (): number => {
    if (profile === 66 || maxRefFrames === 0) return 0;
    const dpb = MAX_DPB_MBS.get(level);
    return Math.min(MAX_DELAY, dpb ? Math.floor(dpb / (widthMbs * heightMbs)) : MAX_DELAY);
  };
  if (!br.flag()) return fallback(); // no VUI
  if (br.flag() && br.bits(8) === 255) br.bits(32); // aspect ratio (+ extended SAR)
  if (br.flag()) br.bits(1); // overscan
  if (br.flag()) {
    br.bits(4);
    if (br.flag()) br.bits(24); // colour description
  }
  if (br.flag()) {
    br.ue();
    br.ue();
  }
  if (br.flag()) br.bits(65); // timing info
  const nalHrd = br.flag();
  if (nalHrd) skipHrd(br);
  const vclHrd = br.flag();
  if (vclHrd) skipHrd(br);
  if (nalHrd || vclHrd) br.bits(1);
  br.bits(1); // pic_struct_present_flag
  if (!br.flag()) return fallback();
  br.bits(1);
  for (let i = 0; i < 4; i++) br.ue();
  return Math.min(MAX_DELAY, br.ue());
}

/** sps_max_num_reorder_pics of the highest sub-layer of an HEVC SPS (2-byte NAL header included). */
export function hevcReorderFrames(nal: Uint8Array): number {
  const br = new BitReader(unescapeRbsp(nal), 2);
  br.bits(4);
  const maxSubLayersMinus1 = br.bits(3);
  br.bits(1);
  // profile_tier_level(1, maxSubLayersMinus1): general part is 88 + 8 bits.
  br.bits(88);
  br.bits(8);
  const profilePresent: boolean[] = [];
  const levelPresent: boolean[] = [];
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    profilePresent.push(br.flag());
    levelPresent.push(br.flag());
  }
  if (maxSubLayersMinus1 > 0) for (let i = maxSubLayersMinus1; i < 8; i++) br.bits(2);
  for (let i = 0; i < maxSubLayersMinus1; i++) {
    if (profilePresent[i]) br.bits(88);
    if (levelPresent[i]) br.bits(8);
  }
  br.ue(); // sps_seq_parameter_set_id
  if (br.ue() === 3) br.bits(1); // chroma_format_idc, separate_colour_plane_flag
  br.ue();
  br.ue();
  if (br.flag()) for (let i = 0; i < 4; i++) br.ue(); // conformance window
  br.ue();
  br.ue();
  br.ue(); // log2_max_pic_order_cnt_lsb_minus4
  const allLayers = br.flag();
  let reorder = 0;
  for (let i = allLayers ? 0 : maxSubLayersMinus1; i <= maxSubLayersMinus1; i++) {
    br.ue();
    reorder = br.ue();
    br.ue();
  }
  return Math.min(MAX_DELAY, reorder);
}

/** Reorder depth for a track; unreadable SPS -> a safe guess (too deep only shifts DTS earlier). */
export function reorderDelay(codec: 'H264' | 'HEVC', sps: Buffer | undefined): number {
  if (!sps) return 2;
  try {
    return codec === 'H264' ? h264ReorderFrames(sps) : hevcReorderFrames(sps);
  } catch (err) {
    if (!isHazeError(err)) throw err;
    return 2;
  }
}

/** A frame waiting for its DTS; `timeMs` holds the PTS until the DTS is known. */
export interface ReorderItem {
  timeMs: number;
  offsetMs: number;
}

/**
 * Per-track DTS derivation. `add` takes frames in decode (= storage) order with timeMs = PTS
 * and returns the frames whose DTS is now known (timeMs = DTS, offsetMs = PTS - DTS), in
 * order. At most `delay` frames are held back, at the start of the track only.
 */
export class DtsFromPts<T extends ReorderItem> {
  /** The delay+1 largest PTS so far, ascending; -Infinity fills the slots not yet used. */
  private readonly largest: number[];
  private readonly held: T[] = [];
  private lastDts = -Infinity;

  constructor(
    private readonly delay: number,
    private readonly frameMs: number,
  ) {
    this.largest = new Array<number>(delay + 1).fill(-Infinity);
  }

  add(item: T): T[] {
    const pts = item.timeMs;
    const l = this.largest;
    if (pts > l[0]!) {
      l[0] = pts;
      for (let i = 0; i < this.delay && l[i]! > l[i + 1]!; i++) {
        const t = l[i]!;
        l[i] = l[i + 1]!;
        l[i + 1] = t;
      }
    }
    if (l[0] === -Infinity) {
      this.held.push(item);
      return [];
    }
    const out: T[] = [];
    if (this.held.length > 0) this.release(l[0]!, out);
    this.assign(item, l[0]!);
    out.push(item);
    return out;
  }

  /** Frames still held at the end of the input (a track shorter than its reorder depth). */
  flush(): T[] {
    if (this.held.length === 0) return [];
    let minPts = Infinity;
    for (const h of this.held) minPts = Math.min(minPts, h.timeMs);
    const out: T[] = [];
    const last = this.held.pop()!;
    this.release(minPts, out);
    this.assign(last, minPts);
    out.push(last);
    return out;
  }

  private release(firstDts: number, out: T[]): void {
    const n = this.held.length;
    for (let k = 0; k < n; k++) this.assign(this.held[k]!, firstDts - Math.round((n - k) * this.frameMs));
    out.push(...this.held);
    this.held.length = 0;
  }

  private assign(item: T, candidate: number): void {
    const pts = item.timeMs;
    // A stream deeper than its SPS says would give DTS > PTS; keep DTS <= PTS and never backwards.
    const dts = Math.max(this.lastDts, Math.min(candidate, pts));
    this.lastDts = dts;
    item.timeMs = dts;
    item.offsetMs = pts - dts;
  }
}
