// Positional reads shared by the file sources (file-source.ts): bounded reads through one
// fs.promises FileHandle (the OS page cache does the caching), reading to the size the file
// has when the reader gets there (a recording may still be growing), and errors that name
// the file and the byte position.

import fs from 'node:fs/promises';
import { HazeError, isHazeError } from '../../util/errors.js';
import type { Packet, Track } from '../../media/types.js';
import type { ScanChunk, ScannedPacket } from './file-source.js';

/** What the push demuxers (TS, Matroska) give for each chunk pushed. */
export interface PushDemuxResult<P extends Packet> {
  packets: P[];
  tracks?: Track[];
  warnings: string[];
}

/**
 * scan() over a push demuxer: the whole file in CHUNK_BYTES reads, each packet as
 * `toScanned` makes it (its bpos), chunks without news left out, errors naming the file.
 */
export async function* scanPushDemuxer<P extends Packet>(
  file: string,
  fh: fs.FileHandle,
  demux: { push(b: Buffer): PushDemuxResult<P>; end(): PushDemuxResult<P> },
  toScanned: (p: P) => ScannedPacket,
): AsyncGenerator<ScanChunk> {
  const convert = (r: PushDemuxResult<P>): ScanChunk | undefined => {
    const chunk: ScanChunk = { packets: r.packets.map(toScanned) };
    if (r.tracks) chunk.tracks = r.tracks;
    if (r.warnings.length > 0) chunk.warnings = r.warnings;
    return chunk.tracks || chunk.warnings || chunk.packets.length > 0 ? chunk : undefined;
  };
  try {
    for await (const b of chunksFrom(fh, 0)) {
      const c = convert(demux.push(b));
      if (c) yield c;
    }
    const c = convert(demux.end());
    if (c) yield c;
  } catch (err) {
    throw inFile(file, err);
  }
}

/** Bytes per sequential read of the streaming containers. */
export const CHUNK_BYTES = 1024 * 1024;
/** Default bytes of a ReadWindow. */
export const WINDOW_BYTES = CHUNK_BYTES;
/**
 * Bytes per read of a viewer's readFrom(): smaller than a scan's, since every viewer holds one
 * (200 viewers of 200 files hold 200 of them) and a viewer is paced by its socket anyway.
 */
export const PLAY_READ_BYTES = 256 * 1024;

/** Opens `file` for reading; a missing file is HAZE_ERR_NOT_FOUND naming it. */
export async function openHandle(file: string): Promise<fs.FileHandle> {
  try {
    return await fs.open(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new HazeError('HAZE_ERR_NOT_FOUND', `${file}: no such file`, { cause: err });
    if (code === 'EISDIR') throw new HazeError('HAZE_ERR_MALFORMED', `${file}: is a directory`, { cause: err });
    throw err;
  }
}

/** Up to `length` bytes at `pos` in a new buffer (fewer at the end of the file). */
export async function readAt(fh: fs.FileHandle, pos: number, length: number): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(out, got, length - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === length ? out : out.subarray(0, got);
}

/**
 * The file from `pos` to its end (or to `end`) in new buffers of up to `chunkBytes`: a new one
 * each time, since the push demuxers keep subarrays of what they are given.
 */
export async function* chunksFrom(fh: fs.FileHandle, pos: number, chunkBytes = CHUNK_BYTES, end = Infinity): AsyncGenerator<Buffer> {
  for (;;) {
    const want = Math.min(chunkBytes, end - pos);
    if (want <= 0) return;
    const b = await readAt(fh, pos, want);
    if (b.length === 0) return;
    pos += b.length;
    yield b;
    if (b.length < want) return;
  }
}

/** readFrom() over a push demuxer: the file from `start` in PLAY_READ_BYTES reads, the packets `keep` takes from each result. */
export async function* readPushDemuxer<P extends Packet>(
  file: string,
  fh: fs.FileHandle,
  start: number,
  demux: { push(b: Buffer): PushDemuxResult<P>; end(): PushDemuxResult<P> },
  keep: (r: PushDemuxResult<P>) => Packet[],
): AsyncGenerator<Packet[]> {
  try {
    for await (const b of chunksFrom(fh, start, PLAY_READ_BYTES)) {
      const out = keep(demux.push(b));
      if (out.length > 0) yield out;
    }
    const out = keep(demux.end());
    if (out.length > 0) yield out;
  } catch (err) {
    throw inFile(file, err);
  }
}

/**
 * One window of file bytes at a time, for readers that look at units at positions: every refill
 * allocates a new buffer, because packets handed out earlier are subarrays of the old one.
 */
export class ReadWindow {
  private buf: Buffer = Buffer.alloc(0);
  /** File offset of buf[0]. */
  private start = 0;

  constructor(
    private readonly fh: fs.FileHandle,
    private readonly windowBytes = WINDOW_BYTES,
  ) {}

  /**
   * `n` bytes of the file at `pos`, or fewer when the file (as it is now) ends sooner; a
   * subarray of the window, valid as long as the caller keeps it. `n` is bounded by the caller.
   */
  async at(pos: number, n: number): Promise<Buffer> {
    const end = this.start + this.buf.length;
    if (pos >= this.start && pos + n <= end) return this.buf.subarray(pos - this.start, pos - this.start + n);
    this.buf = await readAt(this.fh, pos, Math.max(this.windowBytes, n));
    this.start = pos;
    return this.buf.subarray(0, Math.min(n, this.buf.length));
  }
}

/**
 * A HazeError from a pure parser, rethrown with the file's name and the byte position of the
 * unit it was reading (messages that already name the file pass as they are).
 */
export function fileError(file: string, pos: number, err: unknown): unknown {
  if (!(err instanceof HazeError)) return err;
  if (err.message.includes(file)) return err;
  return new HazeError(err.code, `${file}: ${err.message} at byte ${pos}`, { cause: err });
}

/** Rejects a readFrom() position that is not a safe non-negative integer. */
export function checkBpos(file: string, bpos: number): void {
  if (!Number.isSafeInteger(bpos) || bpos < 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `${file}: read position ${bpos} is not a byte offset`);
}

/** What every file source over one FileHandle shares: the handle, closing it once, refusing reads after. */
export abstract class HandleSource {
  protected closed = false;

  constructor(
    readonly file: string,
    protected readonly fh: fs.FileHandle,
  ) {}

  /** Throws HAZE_ERR_CLOSED once the source is closed (a reader still running when it was). */
  protected check(): void {
    if (this.closed) throw new HazeError('HAZE_ERR_CLOSED', `${this.file}: source closed`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/** A HazeError from a parser, re-thrown with the file's name in front; anything else as is. */
export function inFile(file: string, err: unknown): unknown {
  if (isHazeError(err) && !err.message.startsWith(`${file}:`)) return new HazeError(err.code, `${file}: ${err.message}`, { cause: err, fatal: err.fatal });
  return err;
}
