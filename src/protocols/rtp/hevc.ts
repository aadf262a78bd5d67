// HEVC over RTP, RFC 7798: single NAL unit packets, aggregation packets (AP, type 48) and
// fragmentation units (FU, type 49; FU header S | E | FuType(6)); PACI (50) is skipped. The
// payload header is the two-byte NAL unit header F | Type(6) | LayerId(6) | TID(3).

import { buildHvcC, HEVC_NAL_PPS, HEVC_NAL_SPS, HEVC_NAL_VPS, isHevcIrap, parseHvcC } from '../../media/hevc.js';
import { NalDepacketizer, NalPacketizer, type NalFormat } from './nal-payload.js';

export const HEVC_AP = 48;
export const HEVC_FU = 49;
export const HEVC_PACI = 50;

export const HEVC_FORMAT: NalFormat = {
  name: 'HEVC',
  headerSize: 2,
  nalType: (nal) => (nal[0]! >> 1) & 0x3f,
  isKey: isHevcIrap,
  paramTypes: [HEVC_NAL_VPS, HEVC_NAL_SPS, HEVC_NAL_PPS],
  spsType: HEVC_NAL_SPS,
  buildInit: (sets) => buildHvcC(sets[0]!, sets[1]!, sets[2]!),
  readInit: (init) => {
    const c = parseHvcC(init);
    return { sets: [c.vps, c.sps, c.pps], lengthSize: c.nalLengthSize };
  },
  aggregateType: HEVC_AP,
  fragmentType: HEVC_FU,
  ignoredTypes: [HEVC_PACI],
  header: (type, nals) => {
    // F if any unit has it; LayerId and TID the lowest of them (RFC 7798 §4.4.2)
    let f = 0;
    let layer = 63;
    let tid = 7;
    for (const n of nals) {
      f |= n[0]! & 0x80;
      layer = Math.min(layer, ((n[0]! & 1) << 5) | (n[1]! >> 3));
      tid = Math.min(tid, n[1]! & 7);
    }
    return Buffer.from([f | (type << 1) | (layer >> 5), ((layer & 0x1f) << 3) | tid]);
  },
};

export function hevcDepacketizer(init: Buffer, donl = false): NalDepacketizer {
  return new NalDepacketizer(HEVC_FORMAT, init, donl);
}

export function hevcPacketizer(init: Buffer, maxPayload?: number): NalPacketizer {
  return new NalPacketizer(HEVC_FORMAT, init, maxPayload);
}
