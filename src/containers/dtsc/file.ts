// DTSC files (reference §2.4): a DTSC header, then DTP2 packets; a header may carry
// `moreheader`, the byte offset of a later, complete header. A writer streams: its first header
// has no index and `moreheader` 0, each packet is written with its own file offset as `bpos`,
// and at the end it appends the complete header (with the VoD index) and patches the first
// header's `moreheader` to point at it. A reader follows the chain to the newest header. Pure:
// the caller does the file I/O (the write patch, the reads).

import type { Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { DtscIndexBuilder } from './index-builder.js';
import { encodeDtp2, DTSC_MAX_FRAME_BYTES } from './packets.js';
import { readDtscHeader, writeDtscHeader, type DtscStreamMeta, type DtscTrack } from './header.js';

/** Bytes from the end of a header frame to its `moreheader` value (an 8-byte int, then `00 00 EE`). */
const MOREHEADER_FROM_END = 3 + 8;
/** A chain longer than this is a loop or garbage. */
const MAX_HEADER_HOPS = 16;

export interface DtscFileMeta {
  tracks: readonly Track[];
  /** Unix ms at media time 0 (live recordings). */
  unixzeroMs?: number;
}

export class DtscFileWriter {
  private readonly index = new DtscIndexBuilder();
  private offset = 0;
  private headerBytes = 0;
  private readonly video = new Set<number>();

  constructor(private readonly meta: DtscFileMeta) {
    for (const t of meta.tracks) {
      this.index.addTrack(t.id, t.type === 'video');
      if (t.type === 'video') this.video.add(t.id);
    }
  }

  private streamMeta(withTables: boolean): DtscStreamMeta {
    const tracks = this.meta.tracks.map((t, i): DtscTrack => {
      const idx = withTables ? this.index.track(t.id) : undefined;
      return { ...t, idx: i, firstMs: idx?.firstMs ?? 0, lastMs: idx?.lastMs ?? 0, bps: idx?.bps ?? t.bps, maxBps: idx?.maxBps ?? t.bps, ...(idx ? { tables: idx.tables } : {}) };
    });
    return { live: false, vod: true, ...(this.meta.unixzeroMs !== undefined ? { unixzeroMs: this.meta.unixzeroMs } : {}), tracks, ...(withTables ? {} : { moreheader: 0 }) };
  }

  /** The file's first bytes: the tracks, no index yet, `moreheader` 0 until finish() patches it. */
  header(): Buffer {
    if (this.offset !== 0) throw new HazeError('HAZE_ERR_INVALID_ARG', 'DTSC file: header() must come first');
    const bytes = writeDtscHeader(this.streamMeta(false), { withIndex: false });
    this.headerBytes = bytes.length;
    this.offset = bytes.length;
    return bytes;
  }

  /** A packet's DTP2 frame, written at the current end of the file (its offset is its `bpos`). */
  packet(p: Packet): Buffer {
    if (this.offset === 0) throw new HazeError('HAZE_ERR_INVALID_ARG', 'DTSC file: header() must come first');
    // only video keeps keyframe flags in DTSC (audio keys come from time, as in MistServer's files)
    const stored = p.keyframe && !this.video.has(p.trackId) ? { ...p, keyframe: false } : p;
    const frame = encodeDtp2(stored, p.trackId, this.offset);
    this.index.add({ trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, size: p.data.length, bpos: this.offset });
    this.offset += frame.length;
    return frame;
  }

  /**
   * The closing header with the index, to append, and the bytes to write at `position` so the
   * first header points at it.
   */
  finish(): { trailer: Buffer; patch: { position: number; bytes: Buffer } } {
    if (this.offset === 0) throw new HazeError('HAZE_ERR_INVALID_ARG', 'DTSC file: header() must come first');
    const trailer = writeDtscHeader(this.streamMeta(true));
    const bytes = Buffer.alloc(8);
    bytes.writeBigInt64BE(BigInt(this.offset));
    return { trailer, patch: { position: this.headerBytes - MOREHEADER_FROM_END, bytes } };
  }
}

/** Reads `length` bytes at `position` of the file (fewer only at its end). */
export type ReadAt = (position: number, length: number) => Promise<Buffer>;

/** The frame (magic, length, body) at `position`, checked against the file size. */
async function frameAt(read: ReadAt, position: number, fileSize: number): Promise<Buffer> {
  const head = await read(position, 8);
  if (head.length < 8) throw new HazeError('HAZE_ERR_SHORT_READ', `DTSC: no frame at byte ${position}`);
  if (head.toString('latin1', 0, 4) !== 'DTSC') throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: no header at byte ${position} (found ${JSON.stringify(head.toString('latin1', 0, 4))})`);
  const total = 8 + head.readUInt32BE(4);
  if (total > DTSC_MAX_FRAME_BYTES || position + total > fileSize) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: header at byte ${position} claims ${total} bytes`);
  const frame = await read(position, total);
  if (frame.length < total) throw new HazeError('HAZE_ERR_SHORT_READ', `DTSC: header at byte ${position} is cut short`);
  return frame;
}

/**
 * The newest header of a DTSC file: the first one, or the end of its `moreheader` chain (a
 * `moreheader` of 0 is a file still being written: its first header is all there is yet).
 * Also where the packets start (after the first header).
 */
export async function readDtscFileHeader(read: ReadAt, fileSize: number): Promise<{ meta: DtscStreamMeta; dataStart: number; headerAt: number }> {
  const first = await frameAt(read, 0, fileSize);
  let meta = readDtscHeader(first);
  let at = 0;
  for (let hop = 0; meta.moreheader && meta.moreheader > 0; hop++) {
    if (hop >= MAX_HEADER_HOPS || meta.moreheader <= at) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: moreheader chain loops or goes back at byte ${meta.moreheader}`);
    at = meta.moreheader;
    meta = readDtscHeader(await frameAt(read, at, fileSize));
  }
  return { meta, dataStart: first.length, headerAt: at };
}
