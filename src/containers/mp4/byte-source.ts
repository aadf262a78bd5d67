// Random-access byte sources for the MP4 reader: a file (fs.promises FileHandle, positional
// reads) or a Buffer (tests, small in-memory files). A read past the end returns fewer bytes;
// the reader checks every length it gets back.

import fs from 'node:fs/promises';
import { HazeError } from '../../util/errors.js';

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Up to `length` bytes at `pos` (fewer only at the end of the source). */
  read(pos: number, length: number): Promise<Buffer>;
}

export interface FileByteSource extends ByteSource {
  close(): Promise<void>;
}

function checkRange(pos: number, length: number): void {
  if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(length) || pos < 0 || length < 0) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `read of ${length} bytes at ${pos}`);
  }
}

/** A Buffer as a ByteSource; reads are subarrays (no copies). */
export function bufferByteSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    read(pos: number, length: number): Promise<Buffer> {
      checkRange(pos, length);
      return Promise.resolve(buf.subarray(Math.min(pos, buf.length), Math.min(pos + length, buf.length)));
    },
  };
}

/** Opens a file for positional reads; the caller closes it. */
export async function fileByteSource(path: string): Promise<FileByteSource> {
  const fh = await fs.open(path, 'r');
  let size: number;
  try {
    size = (await fh.stat()).size;
  } catch (err) {
    await fh.close();
    throw err;
  }
  return {
    size,
    async read(pos: number, length: number): Promise<Buffer> {
      checkRange(pos, length);
      const want = Math.max(0, Math.min(length, size - pos));
      const out = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(out, got, want - got, pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got === want ? out : out.subarray(0, got);
    },
    close: () => fh.close(),
  };
}
