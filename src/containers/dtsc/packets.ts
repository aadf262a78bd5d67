// DTSC frames (reference/mistserver.md §2.2, §2.3, §2.6; Appendix A.1, A.2):
//
//   "DTSC" u32 len <DTMI object>                      stream header
//   "DTPD" u32 len <DTMI object: trackid, time, ...>  media packet v1 (read only)
//   "DTP2" u32 len u32 trackId u64 timeMs <DTMI object>   media packet v2
//   "DTCM" u32 len <DTMI object with "cmd">           dtsc:// command
//
// len counts the bytes after the 8-byte prefix. A DTP2 payload object is written as MistServer's
// Packet::genericFill does, members in the order offset, bpos, keyframe, data, each only when
// non-zero (data always):
//
//   0 "DTP2" | 4 len | 8 track id | 12 time (ms) | 20 E0
//     [00 06 "offset" 01 i64] [00 04 "bpos" 01 u64] [00 08 "keyframe" 01 00..01]
//     00 04 "data" 02 u32 n <n bytes> | 00 00 EE
//
// Readers look members up by name, and a "Keyframe" member (MistServer clears the flag in place
// by capitalising it and zeroing the value) is not a keyframe. Commands are written with their
// members sorted by key at every level, as MistServer's JSON::Value (a std::map) packs them.

import { HazeError } from '../../util/errors.js';
import type { Packet } from '../../media/types.js';
import {
  DTMI_INT,
  DTMI_LEGACY_OBJECT,
  DTMI_OBJECT,
  DTMI_STRING,
  decodeDtmi,
  fromJs,
  getBytes,
  getInt,
  packedSize,
  readInt64,
  skipDtmi,
  sortedDtmi,
  writeDtmi,
  type DtmiDecodeLimits,
  type DtmiObject,
  type DtmiValue,
} from './dtmi.js';

export type DtscMagic = 'DTSC' | 'DTPD' | 'DTP2' | 'DTCM';

/** Default bound on one frame (prefix included): larger length fields are HAZE_ERR_TOO_LARGE. */
export const DTSC_MAX_FRAME_BYTES = 64 * 1024 * 1024;

/** DTP2 bytes before the payload object: magic, length, track id, time. */
export const DTP2_PREFIX_BYTES = 20;

export type DtscFrame =
  | { kind: 'header'; raw: Buffer; header: DtmiObject }
  | { kind: 'packet'; raw: Buffer; version: 1 | 2; packet: Packet; bpos: number }
  | { kind: 'command'; raw: Buffer; command: DtmiObject };

export interface DecodedDtp2 {
  packet: Packet;
  /** Byte position in the source file (0 when absent). */
  bpos: number;
}

// ---------------------------------------------------------------------------------------------
// Writing

const MEMBER_OFFSET = Buffer.from('\x00\x06offset\x01', 'latin1');
const MEMBER_BPOS = Buffer.from('\x00\x04bpos\x01', 'latin1');
const MEMBER_KEYFRAME = Buffer.from('\x00\x08keyframe\x01\x00\x00\x00\x00\x00\x00\x00\x01', 'latin1');
const MEMBER_DATA = Buffer.from('\x00\x04data\x02', 'latin1');
const OBJECT_END = Buffer.from([0x00, 0x00, 0xee]);

function checkU32(v: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new HazeError('HAZE_ERR_INVALID_ARG', `DTSC: ${what} ${v} is not a u32`);
}

function checkSafe(v: number, what: string, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) throw new HazeError('HAZE_ERR_INVALID_ARG', `DTSC: ${what} ${v} is not a${min === 0 ? ' non-negative' : 'n'} integer`);
}

function writeI64(buf: Buffer, pos: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  buf.writeInt32BE(hi, pos);
  buf.writeUInt32BE(v - hi * 0x1_0000_0000, pos + 4);
}

/** Size of a DTP2 frame (§2.3: 24 + 17? + 15? + 19? + 11 + n) of `payloadBytes` of data. */
export function dtp2SizeFor(payloadBytes: number, offsetMs: number, keyframe: boolean, bpos = 0): number {
  return 24 + (offsetMs !== 0 ? 17 : 0) + (bpos !== 0 ? 15 : 0) + (keyframe ? 19 : 0) + 11 + payloadBytes;
}

/** Size of the DTP2 frame encodeDtp2 writes. */
export function dtp2Size(packet: Packet, bpos = 0): number {
  return dtp2SizeFor(packet.data.length, packet.offsetMs, packet.keyframe, bpos);
}

/**
 * Encodes a media packet as a DTP2 frame, allocated once at its size. `wireTrackId` defaults to
 * packet.trackId (on dtsc:// MistServer sends track index + 1); `bpos` is written when non-zero.
 */
export function encodeDtp2(packet: Packet, wireTrackId: number = packet.trackId, bpos = 0): Buffer {
  checkU32(wireTrackId, 'track id');
  checkSafe(packet.timeMs, 'timeMs', 0);
  checkSafe(packet.offsetMs, 'offsetMs', Number.MIN_SAFE_INTEGER);
  checkSafe(bpos, 'bpos', 0);
  const size = dtp2Size(packet, bpos);
  if (size - 8 > 0xffff_ffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTSC: packet of ${packet.data.length} bytes does not fit a frame`);
  const buf = Buffer.allocUnsafe(size);
  buf.write('DTP2', 0, 'latin1');
  buf.writeUInt32BE(size - 8, 4);
  buf.writeUInt32BE(wireTrackId, 8);
  writeI64(buf, 12, packet.timeMs);
  buf[20] = DTMI_OBJECT;
  let p = 21;
  if (packet.offsetMs !== 0) {
    buf.set(MEMBER_OFFSET, p);
    writeI64(buf, p + 9, packet.offsetMs);
    p += 17;
  }
  if (bpos !== 0) {
    buf.set(MEMBER_BPOS, p);
    writeI64(buf, p + 7, bpos);
    p += 15;
  }
  if (packet.keyframe) {
    buf.set(MEMBER_KEYFRAME, p);
    p += 19;
  }
  buf.set(MEMBER_DATA, p);
  buf.writeUInt32BE(packet.data.length, p + 7);
  buf.set(packet.data, p + 11);
  p += 11 + packet.data.length;
  buf.set(OBJECT_END, p);
  return buf;
}

/** Encodes a DTMI object behind a 4-byte magic and u32 length, in one allocation. */
export function encodeObjectFrame(magic: 'DTSC' | 'DTCM' | 'DTPD', obj: DtmiObject): Buffer {
  const size = packedSize(obj);
  if (size > 0xffff_ffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTSC: ${magic} object of ${size} bytes does not fit a frame`);
  const buf = Buffer.allocUnsafe(8 + size);
  buf.write(magic, 0, 'latin1');
  buf.writeUInt32BE(size, 4);
  const end = writeDtmi(obj, buf, 8);
  if (end !== buf.length) throw new Error(`DTSC: wrote ${end} of ${buf.length} bytes`);
  return buf;
}

/** A "DTSC" header frame around a header object, members in the order given (see header.ts for MistServer's order). */
export function encodeDtscHeader(header: DtmiObject): Buffer {
  return encodeObjectFrame('DTSC', header);
}

/**
 * A "DTCM" command frame. Members are sorted by key at every level (§2.6). Accepts a DtmiObject
 * or a plain object (converted with fromJs: integral numbers and booleans become ints).
 */
export function encodeDtcm(command: DtmiObject | Record<string, unknown>): Buffer {
  const obj = fromJs(command);
  if (obj.kind !== 'object') throw new HazeError('HAZE_ERR_INVALID_ARG', 'DTSC: a command must be an object');
  return encodeObjectFrame('DTCM', sortedDtmi(obj) as DtmiObject);
}

// ---------------------------------------------------------------------------------------------
// Reading one complete frame

const KEY_OFFSET = Buffer.from('offset', 'latin1');
const KEY_BPOS = Buffer.from('bpos', 'latin1');
const KEY_KEYFRAME = Buffer.from('keyframe', 'latin1');
const KEY_DATA = Buffer.from('data', 'latin1');
const EMPTY = Buffer.alloc(0);

function keyIs(buf: Buffer, p: number, len: number, key: Buffer): boolean {
  if (len !== key.length) return false;
  for (let i = 0; i < len; i++) if (buf[p + i] !== key[i]) return false;
  return true;
}

function magicOf(buf: Buffer, pos: number): DtscMagic | undefined {
  if (buf[pos] !== 0x44 || buf[pos + 1] !== 0x54) return undefined; // "DT"
  const c2 = buf[pos + 2];
  const c3 = buf[pos + 3];
  if (c2 === 0x53 && c3 === 0x43) return 'DTSC';
  if (c2 === 0x50 && c3 === 0x32) return 'DTP2';
  if (c2 === 0x50 && c3 === 0x44) return 'DTPD';
  if (c2 === 0x43 && c3 === 0x4d) return 'DTCM';
  return undefined;
}

/** Checks a frame's prefix and returns its magic and end (8 + len); throws on a short or unknown frame. */
function frameBounds(frame: Buffer): { magic: DtscMagic; end: number } {
  if (frame.length < 8) throw new HazeError('HAZE_ERR_SHORT_READ', `DTSC: frame of ${frame.length} bytes, need 8`);
  const magic = magicOf(frame, 0);
  if (magic === undefined) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: unknown frame magic ${frame.subarray(0, 4).toString('hex')}`);
  const end = 8 + frame.readUInt32BE(4);
  if (end > frame.length) throw new HazeError('HAZE_ERR_SHORT_READ', `DTSC: ${magic} frame says ${end} bytes, have ${frame.length}`);
  return { magic, end };
}

/** A 64-bit int that must be a safe integer (timestamps, offsets and byte positions always are). */
function readSafeInt64(buf: Buffer, pos: number, what: string): number {
  const v = readInt64(buf, pos);
  if (typeof v === 'bigint') throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: ${what} ${v} out of range`);
  return v;
}

/**
 * Scans a DTP2/DTPD payload object (a flat object) at `pos` for the media members without
 * building a DTMI tree. Returns the position after the object.
 */
function scanMediaObject(buf: Buffer, pos: number, end: number, out: { offsetMs: number; bpos: number; keyframe: boolean; data: Buffer; hasData: boolean }): number {
  if (pos >= end) throw new HazeError('HAZE_ERR_SHORT_READ', 'DTSC: packet object missing');
  const type = buf[pos];
  if (type !== DTMI_OBJECT && type !== DTMI_LEGACY_OBJECT) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: packet payload is not an object (type 0x${type!.toString(16)})`);
  let p = pos + 1;
  let seenOffset = false;
  let seenBpos = false;
  let seenKey = false;
  for (;;) {
    if (p + 2 > end) throw new HazeError('HAZE_ERR_SHORT_READ', `DTSC: packet member expected at ${p}`);
    const keyLen = buf.readUInt16BE(p);
    if (keyLen === 0) {
      if (p + 3 > end) throw new HazeError('HAZE_ERR_SHORT_READ', 'DTSC: packet end marker cut');
      if (buf[p + 2] !== 0xee) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: bad end marker at ${p}`);
      return p + 3;
    }
    const k = p + 2;
    const v = k + keyLen;
    if (v >= end) throw new HazeError('HAZE_ERR_SHORT_READ', 'DTSC: packet member runs past the end');
    const vt = buf[v];
    const next = skipDtmi(buf, v, end, 1);
    // First occurrence wins, as MistServer's getMember finds the first.
    if (vt === DTMI_INT) {
      if (!seenOffset && keyIs(buf, k, keyLen, KEY_OFFSET)) {
        out.offsetMs = readSafeInt64(buf, v + 1, 'offset');
        seenOffset = true;
      } else if (!seenBpos && keyIs(buf, k, keyLen, KEY_BPOS)) {
        out.bpos = readSafeInt64(buf, v + 1, 'bpos');
        seenBpos = true;
      } else if (!seenKey && keyIs(buf, k, keyLen, KEY_KEYFRAME)) {
        // Any non-zero value is set (getFlag casts the int to bool).
        out.keyframe = buf.readUInt32BE(v + 1) !== 0 || buf.readUInt32BE(v + 5) !== 0;
        seenKey = true;
      }
    } else if (vt === DTMI_STRING && !out.hasData && keyIs(buf, k, keyLen, KEY_DATA)) {
      out.data = buf.subarray(v + 5, next);
      out.hasData = true;
    }
    p = next;
  }
}

/** Decodes a DTP2 frame (exactly `8 + len` bytes at its start are used); data is a subarray of `frame`. */
export function decodeDtp2WithBpos(frame: Buffer): DecodedDtp2 {
  const { magic, end } = frameBounds(frame);
  if (magic !== 'DTP2') throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: expected DTP2, got ${magic}`);
  if (end < DTP2_PREFIX_BYTES + 4) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: DTP2 frame of ${end} bytes is too short`);
  const trackId = frame.readUInt32BE(8);
  const timeMs = readSafeInt64(frame, 12, 'timestamp');
  if (timeMs < 0) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: timestamp out of range`);
  const m = { offsetMs: 0, bpos: 0, keyframe: false, data: EMPTY, hasData: false };
  const after = scanMediaObject(frame, DTP2_PREFIX_BYTES, end, m);
  if (after !== end) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: ${end - after} bytes after the DTP2 object`);
  return { packet: { trackId, timeMs, offsetMs: m.offsetMs, keyframe: m.keyframe, data: m.data }, bpos: m.bpos };
}

/** Decodes a DTP2 frame into a Packet (trackId is the id on the wire); data is not copied. */
export function decodeDtp2(frame: Buffer): Packet {
  return decodeDtp2WithBpos(frame).packet;
}

/** Decodes a legacy DTPD frame: a DTMI object holding trackid, time, data and the optional members. */
export function decodeDtpd(frame: Buffer, limits?: DtmiDecodeLimits): DecodedDtp2 {
  const { magic, end } = frameBounds(frame);
  if (magic !== 'DTPD') throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: expected DTPD, got ${magic}`);
  const obj = decodeObject(frame, end, limits);
  const trackId = getInt(obj, 'trackid');
  const timeMs = getInt(obj, 'time');
  if (trackId === undefined || trackId < 0 || trackId > 0xffff_ffff) throw new HazeError('HAZE_ERR_MALFORMED', 'DTSC: DTPD packet without a valid trackid');
  if (timeMs === undefined || !Number.isSafeInteger(timeMs) || timeMs < 0) throw new HazeError('HAZE_ERR_MALFORMED', 'DTSC: DTPD packet without a valid time');
  const offsetMs = getInt(obj, 'offset') ?? 0;
  const bpos = getInt(obj, 'bpos') ?? 0;
  if (!Number.isSafeInteger(offsetMs) || !Number.isSafeInteger(bpos)) throw new HazeError('HAZE_ERR_MALFORMED', 'DTSC: DTPD offset/bpos out of range');
  const keyframe = (getInt(obj, 'keyframe') ?? 0) !== 0;
  const data = getBytes(obj, 'data') ?? EMPTY;
  return { packet: { trackId, timeMs, offsetMs, keyframe, data }, bpos };
}

function decodeObject(frame: Buffer, end: number, limits?: DtmiDecodeLimits): DtmiObject {
  const v: DtmiValue = decodeDtmi(frame.subarray(8, end), limits);
  if (v.kind !== 'object') throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: ${frame.toString('latin1', 0, 4)} payload is not an object`);
  return v;
}

/** Decodes the object of a DTSC header frame (members in wire order). */
export function decodeDtscHeaderObject(frame: Buffer, limits?: DtmiDecodeLimits): DtmiObject {
  const { magic, end } = frameBounds(frame);
  if (magic !== 'DTSC') throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: expected DTSC, got ${magic}`);
  return decodeObject(frame, end, limits);
}

/** Decodes the object of a DTCM command frame. */
export function decodeDtcm(frame: Buffer, limits?: DtmiDecodeLimits): DtmiObject {
  const { magic, end } = frameBounds(frame);
  if (magic !== 'DTCM') throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: expected DTCM, got ${magic}`);
  return decodeObject(frame, end, limits);
}

/** Decodes one complete frame of any kind; `raw` is the frame's `8 + len` bytes. */
export function decodeFrame(frame: Buffer, limits?: DtmiDecodeLimits): DtscFrame {
  const { magic, end } = frameBounds(frame);
  const raw = end === frame.length ? frame : frame.subarray(0, end);
  switch (magic) {
    case 'DTP2': {
      const d = decodeDtp2WithBpos(raw);
      return { kind: 'packet', raw, version: 2, packet: d.packet, bpos: d.bpos };
    }
    case 'DTPD': {
      const d = decodeDtpd(raw, limits);
      return { kind: 'packet', raw, version: 1, packet: d.packet, bpos: d.bpos };
    }
    case 'DTSC':
      return { kind: 'header', raw, header: decodeObject(raw, end, limits) };
    case 'DTCM':
      return { kind: 'command', raw, command: decodeObject(raw, end, limits) };
  }
}

// ---------------------------------------------------------------------------------------------
// Incremental reader

export interface DtscFrameReaderOptions {
  /** Largest frame accepted, prefix included (default 64 MiB). */
  maxFrameBytes?: number;
  /** Bounds for decoding header and command objects. */
  limits?: DtmiDecodeLimits;
}

/**
 * Splits a byte stream (a socket, a .dtsc file) into decoded frames. Chunks may be split
 * anywhere. A frame inside one chunk is a subarray of that chunk (so chunks must not be reused
 * by the caller); a frame spanning chunks is assembled in one buffer allocated at its size.
 * Any error is sticky: the stream has lost framing and later pushes throw the same error (frames
 * completed earlier in the failing chunk are not returned).
 */
export class DtscFrameReader {
  private readonly maxFrameBytes: number;
  private readonly limits: DtmiDecodeLimits | undefined;
  /** Bytes of a frame prefix seen so far, while fewer than 8. */
  private readonly head = Buffer.alloc(8);
  private headFill = 0;
  /** The frame being assembled across chunks. */
  private partial: Buffer | null = null;
  private partialFill = 0;
  private failed: HazeError | null = null;

  constructor(opts: DtscFrameReaderOptions = {}) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DTSC_MAX_FRAME_BYTES;
    this.limits = opts.limits;
  }

  /** Bytes held for an incomplete frame. */
  get bufferedBytes(): number {
    return this.partial !== null ? this.partialFill : this.headFill;
  }

  push(chunk: Buffer): DtscFrame[] {
    if (this.failed) throw this.failed;
    try {
      return this.consume(chunk);
    } catch (err) {
      this.failed = err instanceof HazeError ? err : new HazeError('HAZE_ERR_MALFORMED', String(err), { cause: err });
      throw this.failed;
    }
  }

  /** Call at end of stream: throws HAZE_ERR_SHORT_READ if a frame was cut off. */
  finish(): void {
    if (this.failed) throw this.failed;
    const n = this.bufferedBytes;
    if (n > 0) throw new HazeError('HAZE_ERR_SHORT_READ', `DTSC: stream ended inside a frame (${n} bytes buffered)`);
  }

  private frameSize(buf: Buffer, pos: number): number {
    if (magicOf(buf, pos) === undefined) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: unknown frame magic ${buf.subarray(pos, pos + 4).toString('hex')}`);
    const size = 8 + buf.readUInt32BE(pos + 4);
    if (size > this.maxFrameBytes) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTSC: frame of ${size} bytes exceeds ${this.maxFrameBytes}`);
    return size;
  }

  private consume(chunk: Buffer): DtscFrame[] {
    const frames: DtscFrame[] = [];
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      if (this.partial !== null) {
        const n = Math.min(this.partial.length - this.partialFill, len - pos);
        chunk.copy(this.partial, this.partialFill, pos, pos + n);
        this.partialFill += n;
        pos += n;
        if (this.partialFill === this.partial.length) {
          const frame = this.partial;
          this.partial = null;
          this.partialFill = 0;
          frames.push(decodeFrame(frame, this.limits));
        }
        continue;
      }
      if (this.headFill > 0 || len - pos < 8) {
        const n = Math.min(8 - this.headFill, len - pos);
        chunk.copy(this.head, this.headFill, pos, pos + n);
        this.headFill += n;
        pos += n;
        if (this.headFill < 8) continue;
        this.headFill = 0;
        const size = this.frameSize(this.head, 0);
        this.partial = Buffer.allocUnsafe(size);
        this.head.copy(this.partial, 0);
        this.partialFill = 8;
        if (size === 8) {
          const frame = this.partial;
          this.partial = null;
          this.partialFill = 0;
          frames.push(decodeFrame(frame, this.limits));
        }
        continue;
      }
      const size = this.frameSize(chunk, pos);
      if (len - pos >= size) {
        frames.push(decodeFrame(chunk.subarray(pos, pos + size), this.limits));
        pos += size;
      } else {
        this.partial = Buffer.allocUnsafe(size);
        chunk.copy(this.partial, 0, pos, len);
        this.partialFill = len - pos;
        pos = len;
      }
    }
    return frames;
  }
}
