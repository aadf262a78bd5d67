// H.264 over RTP, RFC 6184 (packetization-mode 1: single NAL unit, STAP-A, FU-A). The NAL
// header is one byte (F | NRI(2) | type(5)); STAP-A is type 24, FU-A type 28 with the FU
// indicator carrying F/NRI and the FU header (S | E | R | type) the original type.

import { buildAvcC, H264_NAL_IDR, H264_NAL_PPS, H264_NAL_SLICE, H264_NAL_SPS, parseAvcC } from '../../media/h264.js';
import { BitReader } from '../../util/bytes.js';
import { NalDepacketizer, NalPacketizer, type NalFormat, type NalPacketizerOptions } from './nal-payload.js';

export const H264_STAP_A = 24;
export const H264_FU_A = 28;
/** Filler data (H.264 §7.3.2.7): padding for constant bit rates, nothing to decode. */
export const H264_NAL_FILLER = 12;
/** slice_type of a B slice, after folding the +5 forms. */
export const H264_SLICE_B = 1;

export const H264_FORMAT: NalFormat = {
  name: 'H264',
  headerSize: 1,
  nalType: (nal) => nal[0]! & 0x1f,
  isKey: (type) => type === H264_NAL_IDR,
  paramTypes: [H264_NAL_SPS, H264_NAL_PPS],
  spsType: H264_NAL_SPS,
  buildInit: (sets) => buildAvcC(sets[0]!, sets[1]!),
  readInit: (init) => {
    const c = parseAvcC(init);
    return { sets: [c.sps, c.pps], lengthSize: c.nalLengthSize };
  },
  aggregateType: H264_STAP_A,
  fragmentType: H264_FU_A,
  ignoredTypes: [],
  header: (type, nals) => {
    // F is set if any unit has it; NRI is the highest of them (RFC 6184 §5.7.1)
    let f = 0;
    let nri = 0;
    for (const n of nals) {
      f |= n[0]! & 0x80;
      nri = Math.max(nri, n[0]! & 0x60);
    }
    return Buffer.from([f | nri | type]);
  },
};

export function h264Depacketizer(init: Buffer): NalDepacketizer {
  return new NalDepacketizer(H264_FORMAT, init);
}

export function h264Packetizer(init: Buffer, maxPayload?: number, opts?: NalPacketizerOptions): NalPacketizer {
  return new NalPacketizer(H264_FORMAT, init, maxPayload, opts);
}

/** The slice_type of a slice NAL unit (H.264 §7.3.3; 0..4, the +5 forms folded), -1 if unreadable. */
export function h264SliceType(nal: Buffer): number {
  try {
    const br = new BitReader(nal, 1);
    br.ue(); // first_mb_in_slice
    return br.ue() % 5;
  } catch {
    return -1;
  }
}

/** True when the first non-IDR slice of a frame's units is a B slice (the frame's type). */
export function isH264BFrame(nals: readonly Buffer[]): boolean {
  const slice = nals.find((n) => (n[0]! & 0x1f) === H264_NAL_SLICE);
  return slice !== undefined && h264SliceType(slice) === H264_SLICE_B;
}
