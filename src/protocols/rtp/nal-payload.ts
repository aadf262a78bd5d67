// The NAL unit payload formats of H.264 (RFC 6184, non-interleaved mode) and HEVC (RFC 7798),
// which differ only in their header layout and type numbers:
//
//   single NAL unit packet:  [NAL unit]
//   aggregation (STAP-A 24 / AP 48):  [payload header] { [size16] [NAL unit] }*
//   fragmentation (FU-A 28 / FU 49):  [payload header] [FU header: S E R|0 type] [fragment]
//
// H.264's payload header is one byte (F NRI type), HEVC's two (F type(6) LayerId(6) TID(3)).
// The HEVC DONL/DOND fields (sprop-max-don-diff > 0) are read when the SDP says so and never
// written. Access units end at the marker bit or a timestamp change. Parameter sets received
// in-band update the track's decoder configuration and are taken out of the access units; the
// packetizer puts them before every keyframe that lacks them.

import type { Packet } from '../../media/types.js';
import { checkNalLengthSize, readNalLength } from '../../media/nal-units.js';
import { HazeError } from '../../util/errors.js';
import type { RtpPacket } from './packet.js';
import { DEFAULT_MAX_PAYLOAD, MAX_FRAME_BYTES, type Depacketizer, type Packetizer, type RtpFrame, type RtpPayload } from './payload.js';

export interface NalFormat {
  name: string;
  /** Bytes of the NAL unit header (1 for H.264, 2 for HEVC). */
  headerSize: 1 | 2;
  nalType(nal: Uint8Array): number;
  /** A NAL type that makes its access unit a random access point. */
  isKey(type: number): boolean;
  /** Parameter set types in the order the decoder configuration lists them (VPS, SPS, PPS). */
  paramTypes: readonly number[];
  /** The sequence parameter set's type: a keyframe without one is sent after the track's parameter sets. */
  spsType: number;
  /** Builds the decoder configuration record from parameter sets grouped as paramTypes. */
  buildInit(sets: readonly Buffer[][]): Buffer;
  /** Parameter sets (grouped as paramTypes) and NAL length size of a decoder configuration record. */
  readInit(init: Buffer): { sets: Buffer[][]; lengthSize: number };
  aggregateType: number;
  fragmentType: number;
  /** Other packet types to skip silently (HEVC PACI). */
  ignoredTypes: readonly number[];
  /** A payload header of `type` for a packet carrying `nals` (F and NRI/layer bits from them). */
  header(type: number, nals: readonly Uint8Array[]): Buffer;
}

/** One NAL unit being collected: its parts are joined when the access unit is written. */
interface NalParts {
  parts: Buffer[];
  size: number;
}

export class NalDepacketizer implements Depacketizer {
  private timestamp = -1;
  private nals: NalParts[] = [];
  private bytes = 0;
  private fu: NalParts | undefined;
  private sets: Buffer[][];
  private initBytes: Buffer;
  private pendingInit: Buffer | undefined;
  /** Parameter sets seen in the current access unit, grouped as format.paramTypes. */
  private seen: Buffer[][] | undefined;

  constructor(
    private readonly format: NalFormat,
    init: Buffer,
    /** HEVC sprop-max-don-diff > 0: aggregation and fragmentation units carry DONL/DOND. */
    private readonly donl = false,
  ) {
    this.initBytes = init;
    this.sets = init.length > 0 ? safeSets(format, init) : format.paramTypes.map(() => []);
  }

  takeInit(): Buffer | undefined {
    const i = this.pendingInit;
    this.pendingInit = undefined;
    return i;
  }

  push(pkt: RtpPacket, lost: boolean): RtpFrame[] {
    const out: RtpFrame[] = [];
    if (this.timestamp !== -1 && pkt.timestamp !== this.timestamp) this.finish(out);
    if (lost) this.fu = undefined;
    this.timestamp = pkt.timestamp;
    this.payload(pkt.payload);
    if (pkt.marker) this.finish(out);
    return out;
  }

  flush(): RtpFrame[] {
    const out: RtpFrame[] = [];
    this.finish(out);
    return out;
  }

  private payload(p: Buffer): void {
    const f = this.format;
    const h = f.headerSize;
    if (p.length < h) throw new HazeError('HAZE_ERR_MALFORMED', `${f.name} RTP payload of ${p.length} bytes`);
    const type = f.nalType(p);
    if (type === f.aggregateType) {
      let pos = h + (this.donl ? 2 : 0);
      while (pos < p.length) {
        if (pos + 2 > p.length) throw new HazeError('HAZE_ERR_MALFORMED', `${f.name} aggregation packet: size field cut short`);
        const size = p.readUInt16BE(pos);
        pos += 2;
        if (size === 0 || pos + size > p.length) throw new HazeError('HAZE_ERR_MALFORMED', `${f.name} aggregated NAL unit of ${size} bytes at ${pos} in ${p.length}`);
        this.addNal([p.subarray(pos, pos + size)], size);
        pos += size + (this.donl ? 1 : 0);
      }
    } else if (type === f.fragmentType) {
      const skip = h + 1 + (this.donl ? 2 : 0);
      if (p.length < skip) throw new HazeError('HAZE_ERR_MALFORMED', `${f.name} fragmentation unit of ${p.length} bytes`);
      const fuh = p[h]!;
      const start = (fuh & 0x80) !== 0;
      const end = (fuh & 0x40) !== 0;
      const frag = p.subarray(skip);
      if (start) {
        const hdr = Buffer.allocUnsafe(h);
        if (h === 1) hdr[0] = (p[0]! & 0xe0) | (fuh & 0x1f);
        else {
          hdr[0] = (p[0]! & 0x81) | ((fuh & 0x3f) << 1);
          hdr[1] = p[1]!;
        }
        this.fu = { parts: [hdr, frag], size: h + frag.length };
        this.grow(h + frag.length);
      } else if (this.fu) {
        // a middle or end without its start (lost) is dropped
        this.fu.parts.push(frag);
        this.fu.size += frag.length;
        this.grow(frag.length);
      }
      if (end && this.fu) {
        this.nals.push(this.fu);
        this.noteParamSet(this.fu);
        this.fu = undefined;
      }
    } else if (f.ignoredTypes.includes(type)) {
      return;
    } else {
      this.addNal([p], p.length);
    }
  }

  private grow(n: number): void {
    this.bytes += n + 4;
    if (this.bytes > MAX_FRAME_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `${this.format.name} access unit past ${MAX_FRAME_BYTES} bytes`);
  }

  private addNal(parts: Buffer[], size: number): void {
    this.grow(size);
    const nal = { parts, size };
    this.nals.push(nal);
    this.noteParamSet(nal);
  }

  private noteParamSet(nal: NalParts): void {
    const type = this.format.nalType(nal.parts[0]!);
    const i = this.format.paramTypes.indexOf(type);
    if (i < 0) return;
    this.seen ??= this.format.paramTypes.map(() => []);
    this.seen[i]!.push(Buffer.concat(nal.parts, nal.size));
  }

  private finish(out: RtpFrame[]): void {
    const nals = this.nals;
    this.fu = undefined;
    this.nals = [];
    this.bytes = 0;
    if (this.seen) this.updateSets(this.seen);
    this.seen = undefined;
    let size = 0;
    let keyframe = false;
    let kept = 0;
    for (const n of nals) {
      const type = this.format.nalType(n.parts[0]!);
      // parameter sets live in the track's init (Haze packets carry them as RTMP and MP4 do)
      if (this.format.paramTypes.includes(type)) continue;
      kept++;
      size += 4 + n.size;
      if (this.format.isKey(type)) keyframe = true;
    }
    if (kept === 0) return;
    const data = Buffer.allocUnsafe(size);
    let pos = 0;
    for (const n of nals) {
      if (this.format.paramTypes.includes(this.format.nalType(n.parts[0]!))) continue;
      data.writeUInt32BE(n.size, pos);
      pos += 4;
      for (const part of n.parts) {
        data.set(part, pos);
        pos += part.length;
      }
    }
    out.push({ timestamp: this.timestamp, data, keyframe });
  }

  /** In-band parameter sets that differ from the current ones give a new decoder configuration. */
  private updateSets(seen: Buffer[][]): void {
    const next = this.sets.map((cur, i) => (seen[i]!.length > 0 ? seen[i]! : cur));
    if (next.some((group) => group.length === 0)) {
      this.sets = next;
      return;
    }
    let init: Buffer;
    try {
      init = this.format.buildInit(next);
    } catch (err) {
      if (err instanceof HazeError) return; // a parameter set we cannot read: keep the old configuration
      throw err;
    }
    this.sets = next;
    if (!init.equals(this.initBytes)) {
      this.initBytes = init;
      this.pendingInit = init;
    }
  }
}

function safeSets(format: NalFormat, init: Buffer): Buffer[][] {
  try {
    return format.readInit(init).sets;
  } catch (err) {
    if (err instanceof HazeError) return format.paramTypes.map(() => []);
    throw err;
  }
}

/** How a NalPacketizer differs for one kind of receiver (RTSP's peers take the defaults). */
export interface NalPacketizerOptions {
  /**
   * Which units share an aggregation packet: 'any' run of units that fit together (the default),
   * or only the 'parameter-sets' put before a keyframe, every other unit going alone as a single
   * NAL unit packet, which is the unit itself and needs no copy (WebRTC).
   */
  aggregate?: 'any' | 'parameter-sets';
  /** NAL unit types left out (WebRTC: access unit delimiters and filler data, which browsers do not need). */
  dropTypes?: readonly number[];
  /** Leaves out a whole frame when this says so of its units (WebRTC drops H.264 B-frames, see webrtc/packetize.ts). */
  skipFrame?: (nals: readonly Buffer[], keyframe: boolean) => boolean;
}

export class NalPacketizer implements Packetizer {
  private lengthSize = 4;
  private sets: Buffer[][] = [];

  constructor(
    private readonly format: NalFormat,
    init: Buffer,
    private readonly maxPayload = DEFAULT_MAX_PAYLOAD,
    private readonly opts: NalPacketizerOptions = {},
  ) {
    if (init.length > 0) {
      const r = format.readInit(init);
      this.lengthSize = r.lengthSize;
      this.sets = r.sets;
    }
    checkNalLengthSize(this.lengthSize);
  }

  packetize(p: Packet): RtpPayload[] {
    return this.packetizeFrame(p.data, p.keyframe);
  }

  /** The payloads of one frame (length-prefixed NAL units), the last with the marker bit. */
  packetizeFrame(data: Buffer, keyframe: boolean): RtpPayload[] {
    const f = this.format;
    const nals: Buffer[] = [];
    let pos = 0;
    let hasSps = false;
    while (pos + this.lengthSize <= data.length) {
      const len = readNalLength(data, pos, this.lengthSize);
      pos += this.lengthSize;
      if (len > data.length - pos) throw new HazeError('HAZE_ERR_MALFORMED', `${f.name} NAL length ${len} runs past the packet`);
      if (len >= f.headerSize) {
        const nal = data.subarray(pos, pos + len);
        const type = f.nalType(nal);
        if (type === f.spsType) hasSps = true;
        if (!this.opts.dropTypes?.includes(type)) nals.push(nal);
      }
      pos += len;
    }
    if (this.opts.skipFrame?.(nals, keyframe)) return [];
    // a receiver that joins at this keyframe, or whose SDP was not read, needs the parameter sets
    // (a keyframe that brings its own SPS is taken to bring the others with it)
    let inserted = 0;
    if (keyframe && !hasSps) {
      const sets = this.sets.flat();
      nals.unshift(...sets);
      inserted = sets.length;
    }
    const aggregateEnd = this.opts.aggregate === 'parameter-sets' ? inserted : nals.length;
    const out: RtpPayload[] = [];
    const h = f.headerSize;
    let i = 0;
    while (i < nals.length) {
      const nal = nals[i]!;
      if (nal.length > this.maxPayload) {
        this.fragment(nal, out);
        i++;
        continue;
      }
      // aggregate the units that follow while they fit
      let size = h + 2 + nal.length;
      let j = i + 1;
      while (j < aggregateEnd && size + 2 + nals[j]!.length <= this.maxPayload) size += 2 + nals[j++]!.length;
      if (j === i + 1) {
        out.push({ parts: [nal], marker: false, tsOffset: 0 });
      } else {
        const group = nals.slice(i, j);
        const parts: Buffer[] = [f.header(f.aggregateType, group)];
        for (const n of group) {
          const len = Buffer.allocUnsafe(2);
          len.writeUInt16BE(n.length, 0);
          parts.push(len, n);
        }
        out.push({ parts, marker: false, tsOffset: 0 });
      }
      i = j;
    }
    const last = out[out.length - 1];
    if (last) last.marker = true;
    return out;
  }

  private fragment(nal: Buffer, out: RtpPayload[]): void {
    const f = this.format;
    const h = f.headerSize;
    const type = f.nalType(nal);
    const indicator = f.header(f.fragmentType, [nal]);
    const room = this.maxPayload - h - 1;
    for (let pos = h; pos < nal.length; pos += room) {
      const end = Math.min(nal.length, pos + room);
      const hdr = Buffer.allocUnsafe(h + 1);
      indicator.copy(hdr, 0);
      hdr[h] = (pos === h ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type;
      out.push({ parts: [hdr, nal.subarray(pos, end)], marker: false, tsOffset: 0 });
    }
  }
}
