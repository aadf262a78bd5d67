// The file operations a recording needs, as a small interface so tests can inject failures
// (disk full, unwritable folders) and the recorder never touches `fs` directly.

import fs from 'node:fs/promises';
import path from 'node:path';

export interface RecordFile {
  /** Appends the buffers, in order, at the current end of the file. */
  writev(chunks: Buffer[]): Promise<void>;
  /** Overwrites bytes at `position` (DTSC's first header patch). */
  writeAt(bytes: Buffer, position: number): Promise<void>;
  close(): Promise<void>;
}

export interface RecordFs {
  /** Creates a folder and its parents (no error when it exists). */
  mkdirp(dir: string): Promise<void>;
  /** Opens for writing: 'w' truncates or creates, 'a' appends (creates if missing). */
  open(file: string, mode: 'w' | 'a'): Promise<RecordFile>;
  /** The file's size, undefined when it does not exist. */
  size(file: string): Promise<number | undefined>;
  /** Up to `length` bytes at `position`. */
  read(file: string, position: number, length: number): Promise<Buffer>;
  /** Replaces a small text file atomically (write beside it, rename over). */
  replaceText(file: string, text: string): Promise<void>;
}

/** The real file system. */
export const nodeRecordFs: RecordFs = {
  async mkdirp(dir) {
    await fs.mkdir(dir, { recursive: true });
  },
  async open(file, mode) {
    const fh = await fs.open(file, mode);
    return {
      async writev(chunks) {
        // writev may write part of the data (a full disk): the rest goes in further calls
        let pending = chunks;
        for (;;) {
          const total = pending.reduce((n, b) => n + b.length, 0);
          if (total === 0) return;
          const { bytesWritten } = await fh.writev(pending);
          if (bytesWritten >= total) return;
          if (bytesWritten === 0) throw Object.assign(new Error('no bytes written (disk full?)'), { code: 'ENOSPC' });
          pending = skipBytes(pending, bytesWritten);
        }
      },
      async writeAt(bytes, position) {
        await fh.write(bytes, 0, bytes.length, position);
      },
      async close() {
        await fh.close();
      },
    };
  },
  async size(file) {
    try {
      return (await fs.stat(file)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  },
  async read(file, position, length) {
    const fh = await fs.open(file, 'r');
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, position);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  },
  async replaceText(file, text) {
    const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
    await fs.writeFile(tmp, text);
    await fs.rename(tmp, file);
  },
};

function skipBytes(chunks: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const c of chunks) {
    if (skip >= c.length) {
      skip -= c.length;
      continue;
    }
    out.push(skip > 0 ? c.subarray(skip) : c);
    skip = 0;
  }
  return out;
}
