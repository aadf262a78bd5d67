// H.264 over RTP, RFC 6184 (packetization-mode 1: single NAL unit, STAP-A, FU-A). The NAL
// header is one byte (F | NRI(2) | type(5)); STAP-A is type 24, FU-A type 28 with the FU
// indicator carrying F/NRI and the FU header (S | E | R | type) the original type.

import { buildAvcC, H264_NAL_IDR, H264_NAL_PPS, H264_NAL_SPS, parseAvcC } from '../../media/h264.js';
import { NalDepacketizer, NalPacketizer, type NalFormat } from './nal-payload.js';

export const H264_STAP_A = 24;
export const H264_FU_A = 28;

export const H264_FORMAT: NalFormat = {
  name: 'H264',
  headerSize: 1,
  nalType: (nal) => nal[0]! & 0x1f,
  isKey: (type) => type === H264_NAL_IDR,
  paramTypes: [H264_NAL_SPS, H264_NAL_PPS],
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

export function h264Packetizer(init: Buffer, maxPayload?: number): NalPacketizer {
  return new NalPacketizer(H264_FORMAT, init, maxPayload);
}
