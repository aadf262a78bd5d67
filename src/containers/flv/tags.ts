// FLV file framing (Adobe "Video File Format Specification" v10.1, Annex E.2 header, E.3 body,
// E.4.1 tag header):
//
//   header: 'F' 'L' 'V' | version u8 (1) | flags u8 (0b00000A0V) | data offset u32 (9)
//   body:   PreviousTagSize0 u32 (0) | { tag | PreviousTagSize u32 (11 + data size) }*
//   tag:    reserved(2) filter(1) type(5) | data size u24 | timestamp u24 | timestamp ext u8
//           (bits 31..24) | stream id u24 (0) | data
//
// The reader is incremental (chunks may split anywhere) and keeps only the bytes of the tag it
// is waiting for; tag bodies are subarrays of the input where a tag sits inside one chunk.

import { ByteReader } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';

export const FLV_TAG_AUDIO = 8;
export const FLV_TAG_VIDEO = 9;
export const FLV_TAG_SCRIPT = 18;
export type FlvTagType = 8 | 9 | 18;

/** Largest tag body the reader accepts by default (the u24 field allows 16 MiB). */
export const FLV_MAX_TAG_BYTES = 16 * 1024 * 1024;

export interface FlvHeader {
  version: number;
  hasAudio: boolean;
  hasVideo: boolean;
}

export interface FlvTag {
  type: number;
  /** Timestamp in ms (24 bits + extension byte as bits 31..24). */
  timeMs: number;
  /** The tag data: an audio/video tag body or an AMF0 script body; a subarray of the pushed chunk when the tag sat inside one. */
  body: Buffer;
  /** Whether the tag header's Filter bit was set (encrypted content, not supported downstream). */
  filtered: boolean;
}

/** FLV header (9 bytes) + PreviousTagSize0 (4 bytes), the first 13 bytes of a file. */
export function writeFlvHeader(hasVideo: boolean, hasAudio: boolean): Buffer {
  const b = Buffer.alloc(13);
  b.write('FLV', 0, 'latin1');
  b[3] = 1;
  b[4] = (hasAudio ? 0x04 : 0) | (hasVideo ? 0x01 : 0);
  b.writeUInt32BE(9, 5);
  // bytes 9..12: PreviousTagSize0 = 0
  return b;
}

/** Parses the 9-byte FLV header; returns it and the offset of PreviousTagSize0. */
export function readFlvHeader(buf: Buffer): { header: FlvHeader; bodyOffset: number } {
  const r = new ByteReader(buf);
  r.need(9);
  if (buf[0] !== 0x46 || buf[1] !== 0x4c || buf[2] !== 0x56) throw new HazeError('HAZE_ERR_MALFORMED', 'not an FLV file (no "FLV" signature)');
  r.skip(3);
  const version = r.u8();
  const flags = r.u8();
  const dataOffset = r.u32();
  if (dataOffset < 9 || dataOffset > 1024) throw new HazeError('HAZE_ERR_MALFORMED', `FLV header size ${dataOffset}`);
  return { header: { version, hasAudio: (flags & 0x04) !== 0, hasVideo: (flags & 0x01) !== 0 }, bodyOffset: dataOffset };
}

/**
 * One FLV tag: 11-byte header, body, PreviousTagSize; one allocation. The timestamp is written
 * modulo 2^32 (24 low bits + extension byte), as RTMP timestamps wrap.
 */
export function writeFlvTag(type: FlvTagType, timestampMs: number, body: Uint8Array): Buffer {
  if (body.length > 0xffffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `FLV tag body of ${body.length} bytes`);
  const ts = (Math.max(0, Math.round(timestampMs)) % 0x1_0000_0000) >>> 0;
  const out = Buffer.allocUnsafe(11 + body.length + 4);
  out[0] = type;
  out.writeUIntBE(body.length, 1, 3);
  out.writeUIntBE(ts & 0xffffff, 4, 3);
  out[7] = ts >>> 24;
  out.writeUIntBE(0, 8, 3);
  out.set(body, 11);
  out.writeUInt32BE(11 + body.length, 11 + body.length);
  return out;
}

export interface FlvTagReaderOptions {
  /** Whether the stream starts with the 9-byte FLV header + PreviousTagSize0 (default true). */
  expectHeader?: boolean;
  /** Largest accepted tag body in bytes (default FLV_MAX_TAG_BYTES). */
  maxTagBytes?: number;
}

/**
 * Incremental FLV reader: `push` any chunk, get the complete tags it finished. Bytes of a tag
 * split across chunks are gathered in one buffer allocated at the tag's size (bounded by
 * maxTagBytes). After a HazeError the stream is out of sync: discard the reader.
 */
export class FlvTagReader {
  header: FlvHeader | undefined;
  private readonly maxTagBytes: number;
  /** 'header': waiting for the file header; 'prev': PreviousTagSize; 'tag': a tag header+body. */
  private state: 'header' | 'skip' | 'prev' | 'tag';
  /** Bytes still to skip in state 'skip' (an over-long header's extra bytes). */
  private skipLeft = 0;
  /** Partial bytes of the current unit when it spans chunks. */
  private partial: Buffer | undefined;
  private partialLen = 0;
  /** Size of the unit being gathered in `partial`. */
  private partialNeed = 0;
  private readonly fixed = Buffer.allocUnsafe(13);

  constructor(opts: FlvTagReaderOptions = {}) {
    this.maxTagBytes = opts.maxTagBytes ?? FLV_MAX_TAG_BYTES;
    this.state = opts.expectHeader === false ? 'tag' : 'header';
  }

  push(chunk: Buffer): FlvTag[] {
    const tags: FlvTag[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.state === 'skip') {
        const n = Math.min(this.skipLeft, chunk.length - pos);
        pos += n;
        this.skipLeft -= n;
        if (this.skipLeft === 0) this.state = 'prev';
        continue;
      }
      const need = this.unitSize(chunk, pos);
      if (need === undefined) {
        // Not even the fixed-size part is complete: keep what there is.
        pos = this.gatherFixed(chunk, pos);
        continue;
      }
      let unit: Buffer;
      if (this.partialLen === 0 && chunk.length - pos >= need) {
        unit = chunk.subarray(pos, pos + need);
        pos += need;
      } else {
        if (this.partial === undefined || this.partialNeed !== need) {
          const grown = Buffer.allocUnsafe(need);
          const src = this.partial ?? this.fixed;
          src.copy(grown, 0, 0, this.partialLen);
          this.partial = grown;
          this.partialNeed = need;
        }
        const n = Math.min(need - this.partialLen, chunk.length - pos);
        chunk.copy(this.partial, this.partialLen, pos, pos + n);
        this.partialLen += n;
        pos += n;
        if (this.partialLen < need) continue;
        unit = this.partial;
        this.partial = undefined;
        this.partialLen = 0;
        this.partialNeed = 0;
      }
      this.consume(unit, tags);
    }
    return tags;
  }

  /** The size of the unit starting at the gathered bytes + chunk[pos..], once its fixed part is known. */
  private unitSize(chunk: Buffer, pos: number): number | undefined {
    if (this.state === 'prev') return 4;
    if (this.state === 'header') return 9;
    // 'tag': the size is in bytes 1..3 of the 11-byte header.
    const have = this.partialLen + (chunk.length - pos);
    if (have < 11) return undefined;
    const b0 = this.byteAt(chunk, pos, 0);
    const type = b0 & 0x1f;
    if (type !== FLV_TAG_AUDIO && type !== FLV_TAG_VIDEO && type !== FLV_TAG_SCRIPT) {
      throw new HazeError('HAZE_ERR_MALFORMED', `FLV tag type ${type}`);
    }
    if ((b0 & 0xc0) !== 0) throw new HazeError('HAZE_ERR_MALFORMED', 'FLV tag reserved bits set');
    const size = (this.byteAt(chunk, pos, 1) << 16) | (this.byteAt(chunk, pos, 2) << 8) | this.byteAt(chunk, pos, 3);
    if (size > this.maxTagBytes) throw new HazeError('HAZE_ERR_TOO_LARGE', `FLV tag of ${size} bytes (max ${this.maxTagBytes})`);
    return 11 + size;
  }

  /** Byte `i` of the current unit: from the gathered bytes first, then from the chunk. */
  private byteAt(chunk: Buffer, pos: number, i: number): number {
    return i < this.partialLen ? (this.partial ?? this.fixed)[i]! : chunk[pos + i - this.partialLen]!;
  }

  private gatherFixed(chunk: Buffer, pos: number): number {
    const n = chunk.length - pos;
    chunk.copy(this.fixed, this.partialLen, pos, pos + n);
    this.partialLen += n;
    return pos + n;
  }

  private consume(unit: Buffer, tags: FlvTag[]): void {
    if (this.state === 'header') {
      const { header, bodyOffset } = readFlvHeader(unit);
      this.header = header;
      this.skipLeft = bodyOffset - 9;
      this.state = this.skipLeft > 0 ? 'skip' : 'prev';
      return;
    }
    if (this.state === 'prev') {
      // PreviousTagSize is redundant for forward reading; tolerated when wrong, as players do.
      this.state = 'tag';
      return;
    }
    const timeMs = (unit.readUIntBE(4, 3) + unit[7]! * 0x1000000) >>> 0;
    tags.push({ type: unit[0]! & 0x1f, timeMs, body: unit.subarray(11), filtered: (unit[0]! & 0x20) !== 0 });
    this.state = 'prev';
  }
}

/** All tags of a complete FLV file held in memory. */
export function readFlvTags(buf: Buffer): { header: FlvHeader; tags: FlvTag[] } {
  const reader = new FlvTagReader();
  const tags = reader.push(buf);
  if (!reader.header) throw new HazeError('HAZE_ERR_SHORT_READ', 'FLV file shorter than its header');
  return { header: reader.header, tags };
}
