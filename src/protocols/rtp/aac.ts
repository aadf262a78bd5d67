// AAC over RTP as mpeg4-generic, RFC 3640 §3.2-3.3 (modes AAC-hbr and AAC-lbr, or any mode the
// fmtp describes with sizeLength/indexLength/...):
//
//   [AU-headers-length (16 bits, in bits)] [AU-header]* [pad to byte] [auxiliary] [AU]*
//   AU-header: AU-size(sizeLength) AU-Index(indexLength) or AU-Index-delta(indexDeltaLength)
//              [CTS-flag CTS-delta] [DTS-flag DTS-delta] [RAP-flag] [stream-state]
//
// An AU larger than a packet is fragmented: each fragment's single AU-header gives the whole
// AU's size, the marker bit ends it. Haze sends one AU per packet (AAC-hbr: sizeLength 13,
// indexLength 3, indexDeltaLength 3), for latency.

import type { Packet } from '../../media/types.js';
import { BitReader } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';
import type { RtpPacket } from './packet.js';
import { DEFAULT_MAX_PAYLOAD, MAX_FRAME_BYTES, type Depacketizer, type Packetizer, type RtpFrame, type RtpPayload } from './payload.js';

/** The fmtp fields of an mpeg4-generic stream that shape its payload. */
export interface AuHeaderParams {
  sizeLength: number;
  indexLength: number;
  indexDeltaLength: number;
  ctsDeltaLength: number;
  dtsDeltaLength: number;
  randomAccessIndication: boolean;
  streamStateIndication: number;
  auxiliaryDataSizeLength: number;
  /** Bytes of every AU when sizeLength is 0. */
  constantSize: number;
}

export const AAC_HBR: AuHeaderParams = {
  sizeLength: 13,
  indexLength: 3,
  indexDeltaLength: 3,
  ctsDeltaLength: 0,
  dtsDeltaLength: 0,
  randomAccessIndication: false,
  streamStateIndication: 0,
  auxiliaryDataSizeLength: 0,
  constantSize: 0,
};

/** AU header parameters from fmtp (keys compared case-insensitively, as RFC 3640 §4.1 says). */
export function auHeaderParams(fmtp: ReadonlyMap<string, string>): AuHeaderParams {
  const num = (k: string): number => {
    const v = Number(fmtp.get(k.toLowerCase()) ?? 0);
    return Number.isInteger(v) && v >= 0 && v <= 32 ? v : 0;
  };
  const constant = Number(fmtp.get('constantsize') ?? 0);
  return {
    sizeLength: num('sizeLength'),
    indexLength: num('indexLength'),
    indexDeltaLength: num('indexDeltaLength'),
    ctsDeltaLength: num('CTSDeltaLength'),
    dtsDeltaLength: num('DTSDeltaLength'),
    randomAccessIndication: num('randomAccessIndication') > 0,
    streamStateIndication: num('streamStateIndication'),
    auxiliaryDataSizeLength: num('auxiliaryDataSizeLength'),
    constantSize: Number.isInteger(constant) && constant > 0 && constant <= MAX_FRAME_BYTES ? constant : 0,
  };
}

interface AuHeader {
  size: number;
  /** Index steps since the previous AU (1 + AU-Index-delta), 0 for the first. */
  step: number;
}

export class AacDepacketizer implements Depacketizer {
  private fragment: Buffer[] | undefined;
  private fragmentSize = 0;
  private fragmentWanted = 0;
  private fragmentTs = 0;

  constructor(
    private readonly params: AuHeaderParams,
    /** RTP clock ticks of one AU (1024 for AAC-LC at its own sample rate). */
    private readonly ticksPerFrame: number,
  ) {
    if (params.sizeLength === 0 && params.constantSize === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', 'mpeg4-generic without sizeLength or constantSize');
  }

  takeInit(): Buffer | undefined {
    return undefined;
  }

  flush(): RtpFrame[] {
    this.fragment = undefined;
    return [];
  }

  private headers(p: Buffer): { headers: AuHeader[]; dataStart: number } {
    const q = this.params;
    const hasHeaders = q.sizeLength + q.indexLength + q.indexDeltaLength + q.ctsDeltaLength + q.dtsDeltaLength + (q.randomAccessIndication ? 1 : 0) + q.streamStateIndication > 0;
    let pos = 0;
    const headers: AuHeader[] = [];
    if (hasHeaders) {
      if (p.length < 2) throw new HazeError('HAZE_ERR_MALFORMED', 'mpeg4-generic payload without AU-headers-length');
      const bits = p.readUInt16BE(0);
      const bytes = Math.ceil(bits / 8);
      if (2 + bytes > p.length) throw new HazeError('HAZE_ERR_MALFORMED', `AU headers of ${bits} bits in ${p.length - 2} bytes`);
      const br = new BitReader(p.subarray(2, 2 + bytes));
      let used = 0;
      const take = (n: number): number => {
        used += n;
        if (used > bits) throw new HazeError('HAZE_ERR_MALFORMED', 'AU header runs past AU-headers-length');
        return n > 0 ? br.bits(n) : 0;
      };
      while (used < bits) {
        const first = headers.length === 0;
        const size = q.sizeLength > 0 ? take(q.sizeLength) : q.constantSize;
        const index = take(first ? q.indexLength : q.indexDeltaLength);
        if (q.ctsDeltaLength > 0 && take(1)) take(q.ctsDeltaLength);
        if (q.dtsDeltaLength > 0 && take(1)) take(q.dtsDeltaLength);
        if (q.randomAccessIndication) take(1);
        take(q.streamStateIndication);
        headers.push({ size, step: first ? 0 : 1 + index });
        if (headers.length > 512) throw new HazeError('HAZE_ERR_MALFORMED', 'more than 512 AU headers in one packet');
      }
      pos = 2 + bytes;
    }
    if (q.auxiliaryDataSizeLength > 0) {
      if (pos + 4 > p.length) throw new HazeError('HAZE_ERR_MALFORMED', 'auxiliary section cut short');
      const auxBits = new BitReader(p.subarray(pos, pos + 4)).bits(Math.min(32, q.auxiliaryDataSizeLength));
      pos += Math.ceil((q.auxiliaryDataSizeLength + auxBits) / 8);
    }
    if (!hasHeaders) {
      // constant-size AUs without headers: as many as fit
      for (let n = Math.floor((p.length - pos) / q.constantSize); n > 0; n--) headers.push({ size: q.constantSize, step: headers.length === 0 ? 0 : 1 });
    }
    return { headers, dataStart: pos };
  }

  push(pkt: RtpPacket, lost: boolean): RtpFrame[] {
    if (lost) this.fragment = undefined;
    const p = pkt.payload;
    const { headers, dataStart } = this.headers(p);
    const out: RtpFrame[] = [];
    let pos = dataStart;
    // a single AU larger than what the packet holds: a fragment (§3.2.3)
    if (headers.length === 1 && headers[0]!.size > p.length - pos) {
      const size = headers[0]!.size;
      if (size > MAX_FRAME_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `AAC AU of ${size} bytes`);
      if (!this.fragment || this.fragmentTs !== pkt.timestamp || this.fragmentWanted !== size) {
        this.fragment = [];
        this.fragmentSize = 0;
        this.fragmentWanted = size;
        this.fragmentTs = pkt.timestamp;
      }
      const part = p.subarray(pos);
      this.fragment.push(part);
      this.fragmentSize += part.length;
      if (this.fragmentSize >= size) {
        out.push({ timestamp: pkt.timestamp, data: Buffer.concat(this.fragment).subarray(0, size), keyframe: true });
        this.fragment = undefined;
      } else if (pkt.marker) {
        this.fragment = undefined; // the AU ended short: a lost fragment
      }
      return out;
    }
    this.fragment = undefined;
    let ts = pkt.timestamp;
    for (const h of headers) {
      if (pos + h.size > p.length) throw new HazeError('HAZE_ERR_MALFORMED', `AU of ${h.size} bytes at ${pos} in a ${p.length}-byte payload`);
      ts = (ts + h.step * this.ticksPerFrame) >>> 0;
      if (h.size > 0) out.push({ timestamp: ts, data: p.subarray(pos, pos + h.size), keyframe: true });
      pos += h.size;
    }
    return out;
  }
}

/** AAC-hbr, one AU per packet, fragmented when larger than a packet. */
export class AacPacketizer implements Packetizer {
  constructor(private readonly maxPayload = DEFAULT_MAX_PAYLOAD) {}

  packetize(p: Packet): RtpPayload[] {
    const size = p.data.length;
    if (size >= 1 << 13) throw new HazeError('HAZE_ERR_TOO_LARGE', `AAC frame of ${size} bytes does not fit AAC-hbr's 13-bit AU-size`);
    const header = Buffer.allocUnsafe(4);
    header.writeUInt16BE(16, 0); // one 16-bit AU header
    header.writeUInt16BE(size << 3, 2); // AU-size, AU-Index 0
    const room = this.maxPayload - 4;
    if (size <= room) return [{ parts: [header, p.data], marker: true, tsOffset: 0 }];
    const out: RtpPayload[] = [];
    for (let pos = 0; pos < size; pos += room) {
      const end = Math.min(size, pos + room);
      out.push({ parts: [header, p.data.subarray(pos, end)], marker: end === size, tsOffset: 0 });
    }
    return out;
  }
}

/** The fmtp of the AAC streams Haze sends (their `config=` is added per track). */
export const AAC_HBR_FMTP = 'streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3';
