// RTP payload packetizers for what Haze sends over WebRTC: one media frame (a Haze packet's
// data) in, the RTP payloads of that frame out, the last one carrying the marker bit. Pure and
// per stream: the payloads are made once and shared by every viewer (DESIGN §4), only the
// 12-byte header differs per viewer.
//
// - H.264, RFC 6184 packetization-mode 1, cut by src/protocols/rtp/h264.ts: single NAL unit
//   packets (a NAL that fits, sent as the NAL itself, no copy) and FU-A fragments (§5.8); SPS
//   and PPS go in a STAP-A (§5.7.1) before every keyframe that lacks them, so a viewer can start
//   at any keyframe; access unit delimiters and filler data are left out. Frames of B slices
//   are left out: browsers decode WebRTC H.264 one frame in, one frame out, and a decoder that
//   must hold frames back to reorder them fails (Chromium asks for a keyframe after every
//   such frame and shows only the keyframes). Without its B-frames a stream decodes in order
//   at a lower frame rate (x264's P B B: a third of it); a stream process can make a
//   rendition without B-frames for the full rate.
// - VP8, RFC 7741 §4.2: payload descriptor with a 15-bit PictureID, S set on the first packet.
// - VP9, RFC 9628 §4.2: flexible mode, 15-bit PictureID, B/E on the first/last packet, P and one
//   P_DIFF of 1 on inter frames, the scalability structure (resolution) on keyframes.
// - AV1, the AOM RTP payload format v1.0 §4: OBUs without size fields and without temporal
//   delimiters, W = the element count (the last one without a length) or 0 past three,
//   fragments marked with Z/Y, N on keyframes.
// - Opus, RFC 7587: the packet as it is.

import { HazeError } from '../../util/errors.js';
import { H264_NAL_AUD } from '../../media/h264.js';
import { h264Packetizer, H264_NAL_FILLER, isH264BFrame } from '../rtp/h264.js';
import type { NalPacketizer } from '../rtp/nal-payload.js';

/** Largest RTP payload: 1200 bytes stays under every path MTU with SRTP and IP/UDP headers. */
export const DEFAULT_MAX_PAYLOAD = 1200;

/** The RTP payloads of one frame; `marker` is set on the last by the sender. */
export type FramePayloads = Buffer[];

export interface Packetizer {
  /** The payloads of one frame (empty when there is nothing to send, e.g. a frame of only delimiters). */
  packetize(data: Buffer, keyframe: boolean): FramePayloads;
}

// ---- H.264 ----------------------------------------------------------------------------------

/** H.264 through the RTP packetizer of src/protocols/rtp/ with what WebRTC viewers need (see the file's comment). */
export class H264Packetizer implements Packetizer {
  private readonly nal: NalPacketizer;
  /** Frames of B slices left out (see the file's comment). */
  droppedBFrames = 0;

  constructor(avcC: Buffer, maxPayload = DEFAULT_MAX_PAYLOAD) {
    this.nal = h264Packetizer(avcC, maxPayload, {
      aggregate: 'parameter-sets',
      dropTypes: [H264_NAL_AUD, H264_NAL_FILLER],
      skipFrame: (nals, keyframe) => {
        if (keyframe || !isH264BFrame(nals)) return false;
        this.droppedBFrames++;
        return true;
      },
    });
  }

  packetize(data: Buffer, keyframe: boolean): FramePayloads {
    // a payload of several parts (STAP-A, FU-A) is joined once here, for every viewer
    return this.nal.packetizeFrame(data, keyframe).map((p) => (p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts)));
  }
}

// ---- VP8 ------------------------------------------------------------------------------------

export class Vp8Packetizer implements Packetizer {
  private pictureId = Math.floor(Math.random() * 0x8000);

  constructor(private readonly maxPayload = DEFAULT_MAX_PAYLOAD) {}

  packetize(data: Buffer): FramePayloads {
    const out: Buffer[] = [];
    const pid = this.pictureId;
    this.pictureId = (this.pictureId + 1) & 0x7fff;
    const room = this.maxPayload - 4;
    for (let pos = 0; pos < data.length; pos += room) {
      const end = Math.min(data.length, pos + room);
      const p = Buffer.allocUnsafe(4 + end - pos);
      p[0] = 0x80 | (pos === 0 ? 0x10 : 0); // X, S (partition index 0)
      p[1] = 0x80; // I: PictureID present
      p[2] = 0x80 | (pid >> 8); // M: 15-bit PictureID
      p[3] = pid & 0xff;
      data.copy(p, 4, pos, end);
      out.push(p);
    }
    return out;
  }
}

// ---- VP9 ------------------------------------------------------------------------------------

/** Width and height of a VP9 keyframe's uncompressed header (profile 0-3), undefined if unreadable. */
export function vp9FrameSize(data: Buffer): { width: number; height: number } | undefined {
  let bit = 0;
  const read = (n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++, bit++) {
      const byte = data[bit >> 3];
      if (byte === undefined) throw new HazeError('HAZE_ERR_SHORT_READ', 'VP9: a short header');
      v = (v << 1) | ((byte >> (7 - (bit & 7))) & 1);
    }
    return v;
  };
  try {
    if (read(2) !== 2) return undefined; // frame marker
    const profile = read(1) | (read(1) << 1);
    if (profile === 3) read(1);
    if (read(1)) return undefined; // show_existing_frame
    if (read(1) !== 0) return undefined; // frame_type: 0 = key frame
    read(2); // show_frame, error_resilient_mode
    if (read(24) !== 0x498342) return undefined; // sync code
    if (profile >= 2) read(1); // ten_or_twelve_bit
    const colorSpace = read(3);
    if (colorSpace !== 7) {
      read(1);
      if (profile === 1 || profile === 3) read(4);
    } else if (profile === 1 || profile === 3) read(4);
    return { width: read(16) + 1, height: read(16) + 1 };
  } catch {
    return undefined;
  }
}

export class Vp9Packetizer implements Packetizer {
  private pictureId = Math.floor(Math.random() * 0x8000);

  constructor(private readonly maxPayload = DEFAULT_MAX_PAYLOAD) {}

  packetize(data: Buffer, keyframe: boolean): FramePayloads {
    const out: Buffer[] = [];
    const pid = this.pictureId;
    this.pictureId = (this.pictureId + 1) & 0x7fff;
    const size = keyframe ? vp9FrameSize(data) : undefined;
    // descriptor: flags, PictureID (2), then P_DIFF on inter frames or the SS on keyframes
    const ss = size ? 5 : 0;
    const head = 3 + (keyframe ? 0 : 1);
    for (let pos = 0; pos < data.length || pos === 0; ) {
      const first = pos === 0;
      const headBytes = head + (first ? ss : 0);
      const end = Math.min(data.length, pos + this.maxPayload - headBytes);
      const last = end === data.length;
      const p = Buffer.allocUnsafe(headBytes + end - pos);
      // I | P | L | F | B | E | V | Z
      p[0] = 0x80 | (keyframe ? 0 : 0x40) | 0x10 | (first ? 0x08 : 0) | (last ? 0x04 : 0) | (first && size ? 0x02 : 0);
      p[1] = 0x80 | (pid >> 8);
      p[2] = pid & 0xff;
      let o = 3;
      if (!keyframe) p[o++] = 1 << 1; // P_DIFF 1, N = 0
      if (first && size) {
        p[o++] = 0x10; // N_S = 0 (one spatial layer), Y = 1, G = 0
        p.writeUInt16BE(size.width, o);
        p.writeUInt16BE(size.height, o + 2);
        o += 4;
      }
      data.copy(p, o, pos, end);
      out.push(p);
      pos = end;
      if (last) break;
    }
    return out;
  }
}

// ---- AV1 ------------------------------------------------------------------------------------

const OBU_SEQUENCE_HEADER = 1;
const OBU_TEMPORAL_DELIMITER = 2;
const OBU_TILE_LIST = 8;
const OBU_PADDING = 15;

function readLeb128(data: Buffer, pos: number): { value: number; bytes: number } {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    const b = data[pos + i];
    if (b === undefined) throw new HazeError('HAZE_ERR_SHORT_READ', 'AV1: a truncated leb128');
    value += (b & 0x7f) * 2 ** (7 * i);
    if (!(b & 0x80)) return { value, bytes: i + 1 };
  }
  throw new HazeError('HAZE_ERR_MALFORMED', 'AV1: a leb128 over 8 bytes');
}

function leb128Size(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

function writeLeb128(out: Buffer, pos: number, v: number): number {
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out[pos++] = b;
  } while (v > 0);
  return pos;
}

/** A temporal unit's OBUs as RTP elements: header without the size flag (+ extension) and payload. */
export function av1Elements(data: Buffer): { elements: Buffer[]; sequenceHeader: boolean } {
  const elements: Buffer[] = [];
  let sequenceHeader = false;
  for (let pos = 0; pos < data.length; ) {
    const h = data[pos]!;
    if (h & 0x80) throw new HazeError('HAZE_ERR_MALFORMED', 'AV1: forbidden bit set');
    const type = (h >> 3) & 0x0f;
    const ext = (h & 0x04) !== 0;
    const hasSize = (h & 0x02) !== 0;
    const headLen = ext ? 2 : 1;
    if (pos + headLen > data.length) throw new HazeError('HAZE_ERR_SHORT_READ', 'AV1: a truncated OBU header');
    let payloadStart = pos + headLen;
    let payloadEnd = data.length;
    if (hasSize) {
      const leb = readLeb128(data, payloadStart);
      payloadStart += leb.bytes;
      payloadEnd = payloadStart + leb.value;
      if (payloadEnd > data.length) throw new HazeError('HAZE_ERR_MALFORMED', 'AV1: an OBU past the end');
    }
    if (type !== OBU_TEMPORAL_DELIMITER && type !== OBU_TILE_LIST && type !== OBU_PADDING) {
      if (type === OBU_SEQUENCE_HEADER) sequenceHeader = true;
      const el = Buffer.allocUnsafe(headLen + payloadEnd - payloadStart);
      el[0] = h & ~0x02;
      if (ext) el[1] = data[pos + 1]!;
      data.copy(el, headLen, payloadStart, payloadEnd);
      elements.push(el);
    }
    pos = payloadEnd;
  }
  return { elements, sequenceHeader };
}

export class Av1Packetizer implements Packetizer {
  constructor(private readonly maxPayload = DEFAULT_MAX_PAYLOAD) {}

  packetize(data: Buffer, keyframe: boolean): FramePayloads {
    const { elements, sequenceHeader } = av1Elements(data);
    const out: Buffer[] = [];
    let parts: { bytes: Buffer; start: number; end: number }[] = [];
    let used = 1;
    // Z of the packet being filled: its first element continues the previous packet's last (Y)
    let z = false;
    const flush = (y: boolean): void => {
      // W = the element count when it fits in 2 bits: the last element then has no length field
      const w = parts.length <= 3 ? parts.length : 0;
      const last = parts[parts.length - 1]!;
      const size = w === 0 ? used : used - leb128Size(last.end - last.start);
      const p = Buffer.allocUnsafe(size);
      p[0] = (z ? 0x80 : 0) | (y ? 0x40 : 0) | (w << 4) | (keyframe && sequenceHeader && out.length === 0 ? 0x08 : 0);
      let o = 1;
      parts.forEach((part, i) => {
        if (w === 0 || i < parts.length - 1) o = writeLeb128(p, o, part.end - part.start);
        part.bytes.copy(p, o, part.start, part.end);
        o += part.end - part.start;
      });
      out.push(p);
      parts = [];
      used = 1;
      z = y;
    };
    for (const el of elements) {
      let pos = 0;
      while (pos < el.length) {
        const room = this.maxPayload - used;
        // a fragment needs its length prefix and some bytes: start a new packet (only happens between elements)
        if (room < 3) {
          flush(false);
          continue;
        }
        const left = el.length - pos;
        const take = Math.max(1, Math.min(left, room - leb128Size(Math.min(left, room))));
        parts.push({ bytes: el, start: pos, end: pos + take });
        used += leb128Size(take) + take;
        pos += take;
        if (pos < el.length) flush(true);
      }
    }
    if (parts.length > 0) flush(false);
    return out;
  }
}

// ---- Opus -----------------------------------------------------------------------------------

export class OpusPacketizer implements Packetizer {
  packetize(data: Buffer): FramePayloads {
    return data.length > 0 ? [data] : [];
  }
}

/** The packetizer for a track codec Haze sends over WebRTC, or undefined. */
export function packetizerFor(codec: string, init: Buffer, maxPayload = DEFAULT_MAX_PAYLOAD): Packetizer | undefined {
  switch (codec) {
    case 'H264':
      return new H264Packetizer(init, maxPayload);
    case 'VP8':
      return new Vp8Packetizer(maxPayload);
    case 'VP9':
      return new Vp9Packetizer(maxPayload);
    case 'AV1':
      return new Av1Packetizer(maxPayload);
    case 'opus':
      return new OpusPacketizer();
    default:
      return undefined;
  }
}
