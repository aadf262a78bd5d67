// RTMP chunk stream writer (Adobe RTMP 1.0 §5.3): one message -> one buffer of chunks.
//
// The first chunk carries a fmt 0..2 header (see chunk-reader.ts for the layouts), every
// further chunk of the same message a fmt 3 header; when the timestamp (or delta) field is
// 0xFFFFFF the 4-byte extended timestamp follows every header, fmt 3 ones included, which is
// what ffmpeg, librtmp and OBS expect.
//
// `encodeMessageType0` is pure: its output depends on nothing but its arguments, so the
// server serialises each media message once and writes the same bytes to every viewer.

import { HazeError } from '../../util/errors.js';
import { RTMP_DEFAULT_CHUNK_SIZE, RTMP_MAX_CHUNK_SIZE } from './chunk-reader.js';

/** Chunk size the server announces to every peer (Set Chunk Size right after connect). */
export const RTMP_SERVER_CHUNK_SIZE = 4096;
/** Chunk stream ids the server uses for played media (shared, pre-serialised bytes). */
export const RTMP_CSID_CONTROL = 2;
export const RTMP_CSID_COMMAND = 3;
export const RTMP_CSID_AUDIO = 4;
export const RTMP_CSID_DATA = 5;
export const RTMP_CSID_VIDEO = 6;
/** Message stream id of every played stream (so the serialised bytes are the same for all viewers). */
export const RTMP_PLAY_STREAM_ID = 1;

function basicHeaderLen(csid: number): number {
  if (!Number.isInteger(csid) || csid < 2 || csid > 65599) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `RTMP chunk stream id ${csid} outside 2..65599`);
  }
  return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

function writeBasicHeader(buf: Buffer, pos: number, fmt: number, csid: number): number {
  if (csid < 64) {
    buf[pos] = (fmt << 6) | csid;
    return pos + 1;
  }
  if (csid < 320) {
    buf[pos] = fmt << 6;
    buf[pos + 1] = csid - 64;
    return pos + 2;
  }
  buf[pos] = (fmt << 6) | 1;
  buf[pos + 1] = (csid - 64) & 0xff;
  buf[pos + 2] = (csid - 64) >> 8;
  return pos + 3;
}

/** A timestamp as the 32-bit value RTMP carries (wraps after ~49.7 days, as RTMP does). */
function ts32(ms: number): number {
  if (!(ms > 0)) return 0;
  return Math.floor(ms) % 0x1_0000_0000;
}

function checkChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < 1 || chunkSize > RTMP_MAX_CHUNK_SIZE) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `RTMP chunk size ${chunkSize} outside 1..${RTMP_MAX_CHUNK_SIZE}`);
  }
}

function checkBody(body: Uint8Array): void {
  if (body.length > 0xffffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `RTMP message of ${body.length} bytes exceeds 16 MiB - 1`);
}

/**
 * Serialises one message as fmt 0 + fmt 3 chunks into a single allocation.
 * `field` is the value of the 3-byte timestamp field's source (the timestamp for fmt 0,
 * the delta for fmt 1/2).
 */
function encodeChunks(fmt: 0 | 1 | 2 | 3, csid: number, typeId: number, field: number, streamId: number, body: Uint8Array, chunkSize: number): Buffer {
  const basic = basicHeaderLen(csid);
  const len = body.length;
  const chunks = len === 0 ? 1 : Math.ceil(len / chunkSize);
  const ext = field >= 0xffffff;
  const msgHeader = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
  const size = chunks * basic + msgHeader + (ext ? 4 * chunks : 0) + len;
  const buf = Buffer.allocUnsafe(size);
  let p = writeBasicHeader(buf, 0, fmt, csid);
  if (fmt <= 2) {
    buf.writeUIntBE(ext ? 0xffffff : field, p, 3);
    p += 3;
  }
  if (fmt <= 1) {
    buf.writeUIntBE(len, p, 3);
    buf[p + 3] = typeId;
    p += 4;
  }
  if (fmt === 0) {
    buf.writeUInt32LE(streamId >>> 0, p);
    p += 4;
  }
  if (ext) p = buf.writeUInt32BE(field, p);
  let off = 0;
  for (;;) {
    const n = Math.min(chunkSize, len - off);
    buf.set(body.subarray(off, off + n), p);
    p += n;
    off += n;
    if (off >= len) break;
    p = writeBasicHeader(buf, p, 3, csid);
    if (ext) p = buf.writeUInt32BE(field, p);
  }
  if (p !== size) throw new Error(`encodeChunks: wrote ${p} of ${size} bytes`);
  return buf;
}

/**
 * A complete, self-contained chunked message: fmt 0 first chunk, fmt 3 continuations,
 * extended timestamps when needed, in one allocation. Depends only on its arguments.
 */
export function encodeMessageType0(csid: number, typeId: number, timestampMs: number, streamId: number, body: Uint8Array, chunkSize: number): Buffer {
  checkChunkSize(chunkSize);
  checkBody(body);
  return encodeChunks(0, csid, typeId, ts32(timestampMs), streamId, body, chunkSize);
}

interface LastHeader {
  timestamp: number;
  delta: number;
  length: number;
  typeId: number;
  streamId: number;
  /** Format of the last first-chunk header, to avoid fmt 3 after fmt 0 (readers disagree there). */
  fmt: number;
}

export interface ChunkWriterOptions {
  chunkSize?: number;
  /** Use fmt 1/2/3 headers when the previous message of the chunk stream allows. Default true. */
  compress?: boolean;
}

/**
 * Per-connection writer: tracks the outgoing chunk size and, with compression on, the last
 * header of each chunk stream. Chunk streams written with `encodeMessageType0` by someone
 * else need no `forget`: their fmt 0 headers are self-contained, and this writer keeps its
 * own state per chunk stream id, so do not use the same csid from both.
 */
export class ChunkWriter {
  private size: number;
  private readonly compress: boolean;
  private readonly last = new Map<number, LastHeader>();

  constructor(opts: ChunkWriterOptions = {}) {
    this.size = opts.chunkSize ?? RTMP_DEFAULT_CHUNK_SIZE;
    checkChunkSize(this.size);
    this.compress = opts.compress ?? true;
  }

  get chunkSize(): number {
    return this.size;
  }

  /** Call after the Set Chunk Size message announcing `n` has been written. */
  setChunkSize(n: number): void {
    checkChunkSize(n);
    this.size = n;
  }

  /** Forgets the header state of a chunk stream (the next message on it gets fmt 0). */
  forget(csid: number): void {
    this.last.delete(csid);
  }

  /** Serialises one message with the current chunk size. */
  write(csid: number, typeId: number, timestampMs: number, streamId: number, body: Uint8Array): Buffer {
    checkBody(body);
    const ts = ts32(timestampMs);
    const prev = this.compress ? this.last.get(csid) : undefined;
    let fmt: 0 | 1 | 2 | 3 = 0;
    let field = ts;
    const delta = prev ? ts - prev.timestamp : 0;
    if (prev && prev.streamId === streamId && delta >= 0 && delta < 0xffffff && ts < 0xffffff) {
      field = delta;
      if (prev.length !== body.length || prev.typeId !== typeId) fmt = 1;
      else if (delta !== prev.delta || prev.fmt === 0) fmt = 2;
      else fmt = 3;
    }
    const buf = encodeChunks(fmt, csid, typeId, field, streamId, body, this.size);
    if (this.compress) {
      const d = fmt === 0 ? ts : delta;
      if (prev) {
        prev.timestamp = ts;
        prev.delta = d;
        prev.length = body.length;
        prev.typeId = typeId;
        prev.streamId = streamId;
        prev.fmt = fmt;
      } else {
        this.last.set(csid, { timestamp: ts, delta: d, length: body.length, typeId, streamId, fmt });
      }
    }
    return buf;
  }
}
