// RTP payloads back into media frames, for what WHIP publishers send: H.264 (RFC 6184: single
// NAL unit packets, STAP-A §5.7.1, FU-A §5.8), VP8 (RFC 7741 §4.2 payload descriptor) and Opus
// (RFC 7587: one packet per RTP payload). Packets come in sequence order (reorder.ts); a frame
// ends at the marker bit or when the timestamp changes. A frame with a lost packet in it is
// dropped, and so is every frame after it until a keyframe (`needKeyframe` tells the session to
// ask the publisher for one). Bounded: a frame over `maxFrameBytes` is dropped.

import { HazeError } from '../../util/errors.js';
import type { OrderedPacket } from './reorder.js';

/** A 4K keyframe fits easily; a frame larger than this is not media. */
export const MAX_FRAME_BYTES = 8 * 1024 * 1024;

export interface ReceivedFrame {
  /** RTP timestamp of the frame. */
  timestamp: number;
  keyframe: boolean;
  /** H.264: AVCC (4-byte lengths) without SPS/PPS/AUD; VP8 and Opus: the frame as it is. */
  data: Buffer;
  /** H.264 only: the SPS and PPS that came with it (the track's codec configuration). */
  sps?: Buffer;
  pps?: Buffer;
}

export interface FrameAssembler {
  /** Takes the next packet in order; returns the frames it completes. */
  push(p: OrderedPacket): ReceivedFrame[];
  /** True after a loss, until a keyframe came (the session sends PLI meanwhile). */
  readonly needKeyframe: boolean;
  /** Frames dropped for loss or size. */
  readonly dropped: number;
}

// ---- H.264 ----------------------------------------------------------------------------------

const STAP_A = 24;
const FU_A = 28;

/** The NAL units of one H.264 RTP payload; a FU-A fragment is appended to `fu` and yields its NAL at the end. */
export function h264PayloadNals(payload: Buffer, fu: { parts: Buffer[]; bytes: number } | undefined): { nals: Buffer[]; fu: { parts: Buffer[]; bytes: number } | undefined } {
  if (payload.length < 1) throw new HazeError('HAZE_ERR_SHORT_READ', 'H.264 RTP: an empty payload');
  const type = payload[0]! & 0x1f;
  if (type >= 1 && type <= 23) return { nals: [payload], fu: undefined };
  if (type === STAP_A) {
    const nals: Buffer[] = [];
    for (let pos = 1; pos < payload.length; ) {
      if (pos + 2 > payload.length) throw new HazeError('HAZE_ERR_SHORT_READ', 'H.264 RTP: a truncated STAP-A size');
      const size = payload.readUInt16BE(pos);
      pos += 2;
      if (size === 0 || pos + size > payload.length) throw new HazeError('HAZE_ERR_MALFORMED', 'H.264 RTP: a STAP-A unit past the end');
      nals.push(payload.subarray(pos, pos + size));
      pos += size;
    }
    return { nals, fu: undefined };
  }
  if (type === FU_A) {
    if (payload.length < 3) throw new HazeError('HAZE_ERR_SHORT_READ', 'H.264 RTP: a short FU-A');
    const start = (payload[1]! & 0x80) !== 0;
    const end = (payload[1]! & 0x40) !== 0;
    let cur = fu;
    if (start) {
      const head = Buffer.from([(payload[0]! & 0xe0) | (payload[1]! & 0x1f)]);
      cur = { parts: [head], bytes: 1 };
    } else if (!cur) throw new HazeError('HAZE_ERR_MALFORMED', 'H.264 RTP: a FU-A continuation without its start');
    const body = payload.subarray(2);
    cur.parts.push(body);
    cur.bytes += body.length;
    if (cur.bytes > MAX_FRAME_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', 'H.264 RTP: a fragmented NAL unit over the frame limit');
    if (!end) return { nals: [], fu: cur };
    return { nals: [Buffer.concat(cur.parts, cur.bytes)], fu: undefined };
  }
  throw new HazeError('HAZE_ERR_UNSUPPORTED', `H.264 RTP: packet type ${type} (only packetization-mode 1 without interleaving)`);
}

export class H264Assembler implements FrameAssembler {
  private nals: Buffer[] = [];
  private bytes = 0;
  private timestamp = -1;
  private fu: { parts: Buffer[]; bytes: number } | undefined;
  private broken = false;
  needKeyframe = true;
  dropped = 0;

  push(o: OrderedPacket): ReceivedFrame[] {
    const out: ReceivedFrame[] = [];
    const p = o.packet;
    if (this.timestamp !== p.timestamp && this.nals.length > 0) this.finish(out);
    if (this.timestamp !== p.timestamp) {
      // a new frame: a fragment cannot continue across frames
      this.fu = undefined;
      this.broken = false;
    }
    this.timestamp = p.timestamp;
    if (o.gap) {
      this.broken = true;
      this.fu = undefined;
    }
    try {
      const r = h264PayloadNals(p.payload, this.fu);
      this.fu = r.fu;
      for (const n of r.nals) {
        this.nals.push(n);
        this.bytes += n.length;
      }
      if (this.bytes > MAX_FRAME_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', 'H.264 RTP: a frame over the limit');
    } catch {
      // a malformed payload spoils this frame only
      this.broken = true;
      this.fu = undefined;
    }
    if (p.marker) this.finish(out);
    return out;
  }

  private finish(out: ReceivedFrame[]): void {
    const nals = this.nals;
    this.nals = [];
    this.bytes = 0;
    this.fu = undefined;
    // a frame that lost packets is gone even when none of its NAL units was complete
    if (this.broken) {
      this.broken = false;
      this.dropped++;
      this.needKeyframe = true;
      return;
    }
    if (nals.length === 0) return;
    let sps: Buffer | undefined;
    let pps: Buffer | undefined;
    let keyframe = false;
    const keep: Buffer[] = [];
    for (const n of nals) {
      const type = n[0]! & 0x1f;
      if (type === 7) sps = n;
      else if (type === 8) pps = n;
      else if (type === 9 || type === 12) continue;
      else {
        if (type === 5) keyframe = true;
        keep.push(n);
      }
    }
    if (keep.length === 0) return;
    if (this.needKeyframe && !keyframe) {
      this.dropped++;
      return;
    }
    if (keyframe) this.needKeyframe = false;
    let size = 0;
    for (const n of keep) size += 4 + n.length;
    const data = Buffer.allocUnsafe(size);
    let pos = 0;
    for (const n of keep) {
      data.writeUInt32BE(n.length, pos);
      n.copy(data, pos + 4);
      pos += 4 + n.length;
    }
    out.push({ timestamp: this.timestamp, keyframe, data, ...(sps ? { sps } : {}), ...(pps ? { pps } : {}) });
  }
}

// ---- VP8 ------------------------------------------------------------------------------------

/** The VP8 payload descriptor's length and flags (RFC 7741 §4.2). */
export function vp8Descriptor(payload: Buffer): { length: number; start: boolean; partition: number } {
  if (payload.length < 1) throw new HazeError('HAZE_ERR_SHORT_READ', 'VP8 RTP: an empty payload');
  const b0 = payload[0]!;
  let len = 1;
  if (b0 & 0x80) {
    if (payload.length < 2) throw new HazeError('HAZE_ERR_SHORT_READ', 'VP8 RTP: a truncated descriptor');
    const x = payload[1]!;
    len = 2;
    if (x & 0x80) {
      // PictureID: 7 or 15 bits
      if (payload.length < 3) throw new HazeError('HAZE_ERR_SHORT_READ', 'VP8 RTP: a truncated PictureID');
      len += payload[2]! & 0x80 ? 2 : 1;
    }
    if (x & 0x40) len += 1; // TL0PICIDX
    if (x & 0x30) len += 1; // TID / KEYIDX
  }
  if (len > payload.length) throw new HazeError('HAZE_ERR_SHORT_READ', 'VP8 RTP: the descriptor is longer than the payload');
  return { length: len, start: (b0 & 0x10) !== 0, partition: b0 & 0x07 };
}

export class Vp8Assembler implements FrameAssembler {
  private parts: Buffer[] = [];
  private bytes = 0;
  private timestamp = -1;
  private broken = false;
  private started = false;
  needKeyframe = true;
  dropped = 0;

  push(o: OrderedPacket): ReceivedFrame[] {
    const out: ReceivedFrame[] = [];
    const p = o.packet;
    if (this.timestamp !== p.timestamp) {
      if (this.parts.length > 0) this.finish(out);
      this.broken = false;
      this.started = false;
    }
    this.timestamp = p.timestamp;
    if (o.gap) this.broken = true;
    try {
      const d = vp8Descriptor(p.payload);
      if (d.start && d.partition === 0) this.started = true;
      else if (!this.started) this.broken = true;
      const body = p.payload.subarray(d.length);
      this.parts.push(body);
      this.bytes += body.length;
      if (this.bytes > MAX_FRAME_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', 'VP8 RTP: a frame over the limit');
    } catch {
      this.broken = true;
    }
    if (p.marker) this.finish(out);
    return out;
  }

  private finish(out: ReceivedFrame[]): void {
    const parts = this.parts;
    const bytes = this.bytes;
    this.parts = [];
    this.bytes = 0;
    if (this.broken) {
      this.broken = false;
      this.dropped++;
      this.needKeyframe = true;
      return;
    }
    if (bytes === 0) return;
    const data = parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts, bytes);
    // frame tag (RFC 6386 §9.1): bit 0 of the first byte is 0 on a key frame
    const keyframe = (data[0]! & 0x01) === 0;
    if (this.needKeyframe && !keyframe) {
      this.dropped++;
      return;
    }
    if (keyframe) this.needKeyframe = false;
    out.push({ timestamp: this.timestamp, keyframe, data });
  }
}

/** Width and height of a VP8 key frame (RFC 6386 §9.1), undefined for an inter frame. */
export function vp8FrameSize(data: Buffer): { width: number; height: number } | undefined {
  if (data.length < 10 || data[0]! & 0x01) return undefined;
  if (data[3] !== 0x9d || data[4] !== 0x01 || data[5] !== 0x2a) return undefined;
  return { width: data.readUInt16LE(6) & 0x3fff, height: data.readUInt16LE(8) & 0x3fff };
}

// ---- Opus -----------------------------------------------------------------------------------

export class OpusAssembler implements FrameAssembler {
  readonly needKeyframe = false;
  dropped = 0;

  push(o: OrderedPacket): ReceivedFrame[] {
    const p = o.packet;
    // DTX sends 1-byte packets (TOC only, no audio): they are frames all the same
    if (p.payload.length === 0) return [];
    return [{ timestamp: p.timestamp, keyframe: true, data: Buffer.from(p.payload) }];
  }
}
