// RTMP chunk stream reader (Adobe RTMP 1.0 §5.3), sans-I/O: push bytes, get whole messages.
//
// Chunk = basic header | message header | [extended timestamp] | payload (<= chunk size)
//   basic header: fmt(2 bits) csid(6 bits); csid 0 -> 1 more byte (csid = b1 + 64),
//                 csid 1 -> 2 more bytes (csid = b2 * 256 + b1 + 64), so csid 2..65599
//   fmt 0 (11 bytes): timestamp(3) length(3) type(1) message stream id(4, little endian)
//   fmt 1 (7 bytes):  timestamp delta(3) length(3) type(1)
//   fmt 2 (3 bytes):  timestamp delta(3)
//   fmt 3 (0 bytes):  everything from the previous chunk of this chunk stream
//   A 3-byte timestamp field of 0xFFFFFF means a 4-byte extended timestamp follows; fmt 3
//   chunks of such a chunk stream repeat it (§5.3.1.3 as ffmpeg/librtmp/OBS write it).
//   A fmt 3 chunk that starts a new message adds the previous delta (after a fmt 0, the
//   fmt 0 timestamp itself, §5.3.1.2.4).
//
// Zero copy where possible: a message that arrives whole inside one pushed buffer and fits
// one chunk is returned as a subarray of that buffer; other messages get one allocation at
// their length. Every buffer is bounded: message length, number of chunk streams and the sum
// of partially received messages.

import { HazeError } from '../../util/errors.js';

export interface RtmpMessage {
  csid: number;
  typeId: number;
  /** Absolute timestamp in milliseconds (32-bit, wraps as RTMP does). */
  timestamp: number;
  streamId: number;
  body: Buffer;
}

export const RTMP_DEFAULT_CHUNK_SIZE = 128;
/** Chunk sizes above this are clamped: larger chunks than the largest message mean nothing. */
export const RTMP_MAX_CHUNK_SIZE = 16 * 1024 * 1024;
/** The 3-byte length field caps a message at 16 MiB - 1 anyway. */
export const RTMP_MAX_MESSAGE_BYTES = 0xffffff;

export interface ChunkReaderOptions {
  /** Largest accepted message body; larger ones throw HAZE_ERR_TOO_LARGE. */
  maxMessageBytes?: number;
  /** Most distinct chunk stream ids one peer may use (real peers use fewer than ten). */
  maxChunkStreams?: number;
  /** Most bytes held in partially received messages at once, over all chunk streams. */
  maxInFlightBytes?: number;
  /**
   * Apply Set Chunk Size (1) and Abort (2) messages as soon as they are parsed, so the chunks
   * that follow in the same pushed buffer are read right. Default true. The messages are
   * still returned.
   */
  applyControl?: boolean;
}

interface ChunkStream {
  /** Absolute timestamp of the current (or last) message. */
  timestamp: number;
  /** Timestamp delta to apply for a fmt 3 chunk that starts a new message. */
  delta: number;
  length: number;
  typeId: number;
  streamId: number;
  /** The last header used an extended timestamp; fmt 3 chunks then carry one too. */
  extended: boolean;
  /** Value of the last extended timestamp field. */
  extValue: number;
  /** Body of the message being assembled, or null between messages. */
  buf: Buffer | null;
  filled: number;
  /** True while a message on this chunk stream is incomplete. */
  inProgress: boolean;
}

const MAX_HEADER = 18; // 3 basic + 11 message + 4 extended

/** Scratch result of parsing one chunk header; applied only once the header is complete. */
interface HeaderScratch {
  fmt: number;
  csid: number;
  tsField: number;
  length: number;
  typeId: number;
  streamId: number;
  ext: number;
  /** For fmt 3: whether the 4 extended-timestamp bytes were present. */
  extPresent: boolean;
}

const EMPTY = Buffer.alloc(0);

export class ChunkReader {
  private chunkSize = RTMP_DEFAULT_CHUNK_SIZE;
  private readonly streams = new Map<number, ChunkStream>();
  private readonly maxMessageBytes: number;
  private readonly maxChunkStreams: number;
  private readonly maxInFlightBytes: number;
  private readonly applyControl: boolean;
  private inFlightBytes = 0;

  /** Header bytes carried over from the previous push (a header split across buffers). */
  private readonly scratch = Buffer.alloc(MAX_HEADER);
  private scratchLen = 0;
  private readonly h: HeaderScratch = { fmt: 0, csid: 0, tsField: 0, length: 0, typeId: 0, streamId: 0, ext: 0, extPresent: false };

  /** The chunk stream whose payload is being read, and how many payload bytes remain in this chunk. */
  private cur: ChunkStream | null = null;
  private curCsid = 0;
  private chunkRemaining = 0;

  constructor(opts: ChunkReaderOptions = {}) {
    this.maxMessageBytes = Math.min(opts.maxMessageBytes ?? RTMP_MAX_MESSAGE_BYTES, RTMP_MAX_MESSAGE_BYTES);
    this.maxChunkStreams = opts.maxChunkStreams ?? 64;
    this.maxInFlightBytes = opts.maxInFlightBytes ?? 64 * 1024 * 1024;
    this.applyControl = opts.applyControl ?? true;
  }

  /** The peer's chunk size currently in force. */
  get peerChunkSize(): number {
    return this.chunkSize;
  }

  /** Sets the peer's chunk size (from its Set Chunk Size message): 1..0x7FFFFFFF, clamped to 16 MiB. */
  setChunkSize(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > 0x7fffffff) {
      throw new HazeError('HAZE_ERR_PROTOCOL', `invalid RTMP chunk size ${n}`);
    }
    this.chunkSize = Math.min(n, RTMP_MAX_CHUNK_SIZE);
  }

  /** Drops the partial message of a chunk stream (Abort Message, §5.4.2). */
  abort(csid: number): void {
    const st = this.streams.get(csid);
    if (!st || !st.inProgress) return;
    if (st.buf) this.inFlightBytes -= st.length;
    st.buf = null;
    st.filled = 0;
    st.inProgress = false;
  }

  /** Parses as many complete messages as `chunk` finishes. Throws HazeError on bad input. */
  push(chunk: Buffer): RtmpMessage[] {
    const out: RtmpMessage[] = [];
    let pos = 0;
    const end = chunk.length;
    for (;;) {
      if (this.cur !== null) {
        // Payload of the current chunk.
        const st = this.cur;
        const n = Math.min(this.chunkRemaining, end - pos);
        if (n === 0) break;
        chunk.copy(st.buf!, st.filled, pos, pos + n);
        st.filled += n;
        pos += n;
        this.chunkRemaining -= n;
        if (this.chunkRemaining === 0) {
          this.cur = null;
          if (st.filled === st.length) {
            const body = st.buf!;
            st.buf = null;
            st.inProgress = false;
            this.inFlightBytes -= st.length;
            this.emit(out, this.curCsid, st, body);
          }
        }
        continue;
      }
      // A chunk header, possibly continued from the previous push.
      if (this.scratchLen > 0) {
        const take = Math.min(MAX_HEADER - this.scratchLen, end - pos);
        if (take === 0) break;
        chunk.copy(this.scratch, this.scratchLen, pos, pos + take);
        const n = this.parseHeader(this.scratch, 0, this.scratchLen + take);
        if (n < 0) {
          this.scratchLen += take;
          pos += take;
          break;
        }
        pos += n - this.scratchLen;
        this.scratchLen = 0;
      } else {
        if (pos >= end) break;
        const n = this.parseHeader(chunk, pos, end);
        if (n < 0) {
          chunk.copy(this.scratch, 0, pos, end);
          this.scratchLen = end - pos;
          pos = end;
          break;
        }
        pos += n;
      }
      pos = this.beginChunk(chunk, pos, end, out);
    }
    return out;
  }

  /**
   * Parses one chunk header from buf[start..end) into `this.h` without side effects.
   * Returns the header length, or -1 if more bytes are needed.
   */
  private parseHeader(buf: Buffer, start: number, end: number): number {
    let p = start;
    if (p >= end) return -1;
    const b0 = buf[p++]!;
    const h = this.h;
    h.fmt = b0 >> 6;
    let csid = b0 & 0x3f;
    if (csid === 0) {
      if (p + 1 > end) return -1;
      csid = buf[p++]! + 64;
    } else if (csid === 1) {
      if (p + 2 > end) return -1;
      csid = buf[p]! + buf[p + 1]! * 256 + 64;
      p += 2;
    }
    h.csid = csid;
    const st = this.streams.get(csid);
    switch (h.fmt) {
      case 0:
        if (p + 11 > end) return -1;
        h.tsField = buf.readUIntBE(p, 3);
        h.length = buf.readUIntBE(p + 3, 3);
        h.typeId = buf[p + 6]!;
        h.streamId = buf.readUInt32LE(p + 7);
        p += 11;
        break;
      case 1:
        if (p + 7 > end) return -1;
        h.tsField = buf.readUIntBE(p, 3);
        h.length = buf.readUIntBE(p + 3, 3);
        h.typeId = buf[p + 6]!;
        p += 7;
        break;
      case 2:
        if (p + 3 > end) return -1;
        h.tsField = buf.readUIntBE(p, 3);
        p += 3;
        break;
      default: {
        h.tsField = 0;
        h.extPresent = false;
        if (st && st.extended) {
          // Peers are supposed to repeat the extended timestamp here; a few omit it. Take the
          // 4 bytes only if they repeat the last value (payload bytes matching it by chance
          // would need the peer to also have omitted it: both rare, the product negligible).
          if (p + 4 > end) return -1;
          if (buf.readUInt32BE(p) === st.extValue) {
            h.extPresent = true;
            h.ext = st.extValue;
            p += 4;
          }
        }
        return p - start;
      }
    }
    if (h.tsField === 0xffffff) {
      if (p + 4 > end) return -1;
      h.ext = buf.readUInt32BE(p);
      p += 4;
    }
    return p - start;
  }

  /** Applies the parsed header and starts the chunk's payload; returns the new read position. */
  private beginChunk(chunk: Buffer, pos: number, end: number, out: RtmpMessage[]): number {
    const h = this.h;
    let st = this.streams.get(h.csid);
    if (!st) {
      if (h.fmt !== 0) {
        throw new HazeError('HAZE_ERR_PROTOCOL', `RTMP chunk stream ${h.csid} starts with a fmt ${h.fmt} header (needs fmt 0)`);
      }
      if (this.streams.size >= this.maxChunkStreams) {
        throw new HazeError('HAZE_ERR_TOO_LARGE', `more than ${this.maxChunkStreams} RTMP chunk streams`);
      }
      st = { timestamp: 0, delta: 0, length: 0, typeId: 0, streamId: 0, extended: false, extValue: 0, buf: null, filled: 0, inProgress: false };
      this.streams.set(h.csid, st);
    }
    if (h.fmt !== 3 && st.inProgress) {
      throw new HazeError('HAZE_ERR_PROTOCOL', `RTMP chunk stream ${h.csid}: fmt ${h.fmt} header before the previous message ended`);
    }
    switch (h.fmt) {
      case 0: {
        st.extended = h.tsField === 0xffffff;
        const ts = st.extended ? h.ext : h.tsField;
        if (st.extended) st.extValue = h.ext;
        st.timestamp = ts;
        st.delta = ts;
        st.length = h.length;
        st.typeId = h.typeId;
        st.streamId = h.streamId;
        break;
      }
      case 1:
      case 2: {
        st.extended = h.tsField === 0xffffff;
        const delta = st.extended ? h.ext : h.tsField;
        if (st.extended) st.extValue = h.ext;
        st.delta = delta;
        st.timestamp = (st.timestamp + delta) >>> 0;
        if (h.fmt === 1) {
          st.length = h.length;
          st.typeId = h.typeId;
        }
        break;
      }
      default:
        if (!st.inProgress) st.timestamp = (st.timestamp + st.delta) >>> 0;
        break;
    }

    if (!st.inProgress) {
      const length = st.length;
      if (length > this.maxMessageBytes) {
        throw new HazeError('HAZE_ERR_TOO_LARGE', `RTMP message of ${length} bytes exceeds ${this.maxMessageBytes}`);
      }
      if (length === 0) {
        this.emit(out, h.csid, st, EMPTY);
        return pos;
      }
      if (length <= this.chunkSize && pos + length <= end) {
        // Whole message inside this buffer: hand out a view, no copy.
        const body = chunk.subarray(pos, pos + length);
        this.emit(out, h.csid, st, body);
        return pos + length;
      }
      if (this.inFlightBytes + length > this.maxInFlightBytes) {
        throw new HazeError('HAZE_ERR_TOO_LARGE', `RTMP partial messages exceed ${this.maxInFlightBytes} bytes`);
      }
      st.buf = Buffer.allocUnsafe(length);
      st.filled = 0;
      st.inProgress = true;
      this.inFlightBytes += length;
    }
    this.cur = st;
    this.curCsid = h.csid;
    this.chunkRemaining = Math.min(this.chunkSize, st.length - st.filled);
    return pos;
  }

  private emit(out: RtmpMessage[], csid: number, st: ChunkStream, body: Buffer): void {
    out.push({ csid, typeId: st.typeId, timestamp: st.timestamp, streamId: st.streamId, body });
    if (!this.applyControl) return;
    if (st.typeId === 1) {
      if (body.length < 4) throw new HazeError('HAZE_ERR_MALFORMED', 'RTMP Set Chunk Size shorter than 4 bytes');
      // The top bit is reserved (must be zero); mask it as the spec's 31-bit field.
      this.setChunkSize(body.readUInt32BE(0) & 0x7fffffff);
    } else if (st.typeId === 2) {
      if (body.length < 4) throw new HazeError('HAZE_ERR_MALFORMED', 'RTMP Abort shorter than 4 bytes');
      this.abort(body.readUInt32BE(0));
    }
  }
}
