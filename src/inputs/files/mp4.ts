// MP4 / MOV / M4A / M4V file source (ISO/IEC 14496-12, through src/containers/mp4/demux.ts):
// the moov (and any moofs) are indexed once per source, then samples are read in index order
// (decode time, then file order, then track id: what readFilePackets gives). bpos is a sample's
// file offset; readFrom(bpos) continues the index from the first sample stored there. Edit
// lists are not applied (as MistServer reads MP4). Samples are read in runs: one read covers
// a sample and the following samples stored next to it (up to READ_BYTES), and the packets'
// data are subarrays of that read.

import type { Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { fileByteSource, openMp4, sampleData, type FileByteSource, type Mp4Index, type SampleRef } from '../../containers/mp4/demux.js';
import type { FileSource, FileSourceOpener, ScanChunk, ScannedPacket } from './file-source.js';
import { inFile } from './file-reads.js';

/** Largest single read of adjacent samples. */
const READ_BYTES = 1024 * 1024;
/** Samples looked at ahead of the one read, to find the ones stored next to it. */
const LOOKAHEAD = 1024;
/** A gap between samples small enough to read over rather than start another read. */
const MAX_GAP = 4096;
/** Reads kept for samples further on in the index (one per interleaved track, roughly). */
const WINDOWS = 6;
/** Largest sample accepted (the index already keeps every sample inside the file). */
const MAX_SAMPLE_BYTES = 256 * 1024 * 1024;
const BATCH = 256;

interface Window {
  pos: number;
  buf: Buffer;
}

class Mp4Source implements FileSource {
  private windows: Window[] = [];
  private closed = false;

  constructor(
    readonly file: string,
    private readonly src: FileByteSource,
    private readonly index: Mp4Index,
  ) {}

  async *scan(): AsyncGenerator<ScanChunk> {
    this.check();
    yield { tracks: this.index.tracks, packets: [], warnings: this.index.warnings };
    for await (const batch of this.packets(0)) yield { packets: batch };
  }

  async *readFrom(bpos: number, _tracks: readonly Track[]): AsyncGenerator<Packet[]> {
    this.check();
    const samples = this.index.samples;
    let start = samples.findIndex((s) => s.pos === bpos);
    // Not a reported position (another version of the file?): the first sample stored at or after it.
    if (start < 0) start = samples.findIndex((s) => s.pos >= bpos);
    if (start < 0) return;
    yield* this.packets(start);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.windows = [];
    await this.src.close();
  }

  private check(): void {
    if (this.closed) throw new HazeError('HAZE_ERR_CLOSED', `${this.file}: source closed`);
  }

  private async *packets(from: number): AsyncGenerator<ScannedPacket[]> {
    const samples = this.index.samples;
    let batch: ScannedPacket[] = [];
    for (let i = from; i < samples.length; i++) {
      const ref = samples[i]!;
      let data: Buffer;
      try {
        data = sampleData(await this.stored(i), ref);
      } catch (err) {
        throw inFile(this.file, err);
      }
      batch.push({ trackId: ref.trackId, timeMs: ref.timeMs, offsetMs: ref.offsetMs, keyframe: ref.keyframe, data, bpos: ref.pos });
      if (batch.length >= BATCH) {
        yield batch;
        batch = [];
      }
    }
    if (batch.length > 0) yield batch;
  }

  /** The stored bytes of sample `i`, from a window read earlier or from a new run read. */
  private async stored(i: number): Promise<Buffer> {
    const ref = this.index.samples[i]!;
    const end = ref.pos + ref.size;
    for (let w = this.windows.length - 1; w >= 0; w--) {
      const win = this.windows[w]!;
      if (win.pos <= ref.pos && end <= win.pos + win.buf.length) {
        if (w !== this.windows.length - 1) {
          this.windows.splice(w, 1);
          this.windows.push(win); // most recently used last
        }
        return win.buf.subarray(ref.pos - win.pos, end - win.pos);
      }
    }
    if (ref.size > MAX_SAMPLE_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `sample at byte ${ref.pos} of ${ref.size} bytes (limit ${MAX_SAMPLE_BYTES})`);
    const runEnd = this.runEnd(i);
    const buf = await this.src.read(ref.pos, runEnd - ref.pos);
    if (buf.length < ref.size) throw new HazeError('HAZE_ERR_SHORT_READ', `sample at byte ${ref.pos}: read ${buf.length} of ${ref.size} bytes`);
    this.windows.push({ pos: ref.pos, buf });
    if (this.windows.length > WINDOWS) this.windows.shift();
    return buf.subarray(0, ref.size);
  }

  /** Where a read starting at sample `i` ends: over the samples ahead stored right after it. */
  private runEnd(i: number): number {
    const samples = this.index.samples;
    const first = samples[i]!;
    const limit = first.pos + Math.max(READ_BYTES, first.size);
    // Samples of several tracks interleave in the index, so collect the nearby ones and sort.
    const near: SampleRef[] = [];
    for (let j = i + 1; j < samples.length && j <= i + LOOKAHEAD; j++) {
      const s = samples[j]!;
      if (s.pos > first.pos && s.pos + s.size <= limit) near.push(s);
    }
    near.sort((a, b) => a.pos - b.pos);
    let end = first.pos + first.size;
    for (const s of near) {
      if (s.pos > end + MAX_GAP) break;
      end = Math.max(end, s.pos + s.size);
    }
    return end;
  }
}

/** Opens an MP4/MOV file and indexes it (HAZE_ERR_NOT_FOUND / HAZE_ERR_MALFORMED naming the file). */
export const openMp4Source: FileSourceOpener = async (file) => {
  let src: FileByteSource;
  try {
    src = await fileByteSource(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new HazeError('HAZE_ERR_NOT_FOUND', `${file}: no such file`, { cause: err });
    throw err;
  }
  try {
    const index = await openMp4(src, { editList: 'ignore', partialFragment: 'warn' });
    return new Mp4Source(file, src, index);
  } catch (err) {
    await src.close();
    throw inFile(file, err);
  }
};
