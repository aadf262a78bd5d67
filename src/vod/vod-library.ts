// The VoD files a worker has open: one index and one reader per file, shared by every viewer of
// it (reference §2.5). Opening a file takes its index from, in order: the worker's memory; the
// file's own header (a finished DTSC file); the `.dtsh` sidecar, when it is at least 15 s newer
// than the file (MistServer's rule: a file written to lately may still grow); a scan of the file,
// after which the sidecar is written. A file whose size or mtime changed since it was indexed is
// indexed again on its next open (an append to a DTSC file, a recording that grows), so a viewer
// learns of new tracks and media from the next manifest it asks for.

import fs from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { openFileSource, extensionOf } from '../inputs/files/open.js';
import type { FileSource } from '../inputs/files/file-source.js';
import { readDtscFileHeader } from '../containers/dtsc/file.js';
import { readDtscHeader, writeDtscHeader, DTSH_VERSION } from '../containers/dtsc/header.js';
import { HazeError, errorText } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { indexFromMeta, metaFromIndex, scanIndex, type VodIndex } from './vod-index.js';

/** A `.dtsh` counts only when written this long after its file's last change (MistServer's rule). */
export const DTSH_MIN_AGE_MS = 15_000;
/** A changed file is indexed again at most this often (a recording growing under many viewers). */
const REINDEX_INTERVAL_MS = 1_000;
/** A replaced reader is closed once its last viewer is done, or after this long. */
const RETIRE_MS = 10 * 60_000;
/** The largest `.dtsh` read (a header of some million parts). */
const MAX_DTSH_BYTES = 256 * 1024 * 1024;

export function dtshPath(file: string): string {
  return `${file}.dtsh`;
}

export class VodFile {
  private users = 0;
  private retired = false;

  constructor(
    readonly file: string,
    readonly source: FileSource,
    readonly index: VodIndex,
    readonly sizeBytes: number,
    readonly mtimeMs: number,
    /** A DTSC file still being written (no index trailer yet): its end moves on. */
    readonly growing: boolean,
  ) {}

  /** Marks a reader in use; call the returned function when done with it. */
  use(): () => void {
    this.users++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.users--;
      if (this.retired && this.users === 0) void this.source.close();
    };
  }

  /** A newer index replaced this one: close the reader once nobody reads through it. */
  retire(): void {
    this.retired = true;
    if (this.users === 0) void this.source.close();
    else setTimeout(() => void this.source.close(), RETIRE_MS).unref();
  }
}

interface Entry {
  current: Promise<VodFile>;
  checkedMs: number;
}

export class VodLibrary {
  private readonly files = new Map<string, Entry>();

  constructor(private readonly log: Logger) {}

  /** The indexed file at `file` (an absolute path the caller has checked). */
  async open(file: string): Promise<VodFile> {
    const entry = this.files.get(file);
    const now = Date.now();
    if (entry && now - entry.checkedMs < REINDEX_INTERVAL_MS) return entry.current;
    const st = await statFile(file);
    if (entry) {
      entry.checkedMs = now;
      const have = await entry.current.catch(() => undefined);
      if (have && have.sizeBytes === st.size && have.mtimeMs === st.mtimeMs) return have;
      const next = this.load(file, st);
      entry.current = next;
      next.then(() => have?.retire(), () => this.files.delete(file));
      return next;
    }
    const current = this.load(file, st);
    this.files.set(file, { current, checkedMs: now });
    current.catch(() => this.files.delete(file));
    return current;
  }

  private async load(file: string, st: Stats): Promise<VodFile> {
    const source = await openFileSource(file);
    try {
      if (extensionOf(file) === 'dtsc') {
        const own = await dtscOwnIndex(file, st.size);
        if (own) return new VodFile(file, source, own, st.size, st.mtimeMs, false);
        const { index } = await scanIndex(source);
        return new VodFile(file, source, index, st.size, st.mtimeMs, true);
      }
      const cached = await this.readSidecar(file, st);
      if (cached) return new VodFile(file, source, cached, st.size, st.mtimeMs, false);
      const started = performance.now();
      const { index, warnings } = await scanIndex(source);
      for (const w of warnings) this.log.warn(`${file}: ${w}`);
      this.log.info(`indexed ${file} in ${Math.round(performance.now() - started)} ms (${index.tracks.map((t) => `${t.track.codec} ${t.partCount}`).join(', ')})`);
      await this.writeSidecar(file, index);
      return new VodFile(file, source, index, st.size, st.mtimeMs, false);
    } catch (err) {
      await source.close();
      throw err;
    }
  }

  private async readSidecar(file: string, st: Stats): Promise<VodIndex | undefined> {
    const side = dtshPath(file);
    const sst = await fs.stat(side).catch(() => undefined);
    if (!sst || sst.mtimeMs < st.mtimeMs + DTSH_MIN_AGE_MS || sst.size > MAX_DTSH_BYTES) return undefined;
    try {
      const meta = readDtscHeader(await fs.readFile(side));
      if (meta.version !== DTSH_VERSION) return undefined;
      return indexFromMeta(meta);
    } catch (err) {
      this.log.warn(`ignoring ${side}: ${errorText(err)}`);
      return undefined;
    }
  }

  /** Writes the sidecar atomically; a folder Haze may not write to only costs the next open a scan. */
  private async writeSidecar(file: string, index: VodIndex): Promise<void> {
    const side = dtshPath(file);
    const tmp = `${side}.${process.pid}.tmp`;
    try {
      await fs.writeFile(tmp, writeDtscHeader(metaFromIndex(index)));
      await fs.rename(tmp, side);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      this.log.debug(`cannot write ${side}: ${errorText(err)}`);
    }
  }

  close(): void {
    for (const e of this.files.values()) e.current.then((f) => f.retire(), () => {});
    this.files.clear();
  }
}

async function statFile(file: string): Promise<Stats> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) throw new HazeError('HAZE_ERR_NOT_FOUND', `${file} is not a file`, { status: 404 });
    return st;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new HazeError('HAZE_ERR_NOT_FOUND', `${file} does not exist`, { status: 404 });
    throw err;
  }
}

/** A finished DTSC file's own index (its newest header carries the tables); undefined while it is being written. */
async function dtscOwnIndex(file: string, size: number): Promise<VodIndex | undefined> {
  const fh = await fs.open(file, 'r');
  try {
    const read = async (position: number, length: number): Promise<Buffer> => {
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await fh.read(buf, 0, length, position);
      return buf.subarray(0, bytesRead);
    };
    const { meta } = await readDtscFileHeader(read, size);
    return indexFromMeta(meta);
  } finally {
    await fh.close();
  }
}
