// DTSC files as a FileSource (file-source.ts; reference/mistserver.md §2.2-§2.4): a DTSC header,
// then DTP2 frames (DTPD, the v1 packet, read too); header frames later in the file (the
// index copies a writer appends, and the newer header a `haze merge --append` writes after the
// packets it adds) are skipped. The tracks are the newest header's, at the end of the
// `moreheader` chain: a file that gained tracks later lists them there. A file still being
// written (moreheader 0, no trailer yet) is read to its current end. bpos = the frame's offset.

import type { FileHandle } from 'node:fs/promises';
import type { Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { readDtscFileHeader } from '../../containers/dtsc/file.js';
import { plainTrack } from '../../containers/dtsc/header.js';
import { DTSC_MAX_FRAME_BYTES, decodeDtp2WithBpos, decodeDtpd, type DecodedDtp2 } from '../../containers/dtsc/packets.js';
import type { FileSource, FileSourceOpener, ScanChunk, ScannedPacket } from './file-source.js';
import { PLAY_READ_BYTES, ReadWindow, WINDOW_BYTES, checkBpos, fileError, openHandle, HandleSource } from './file-reads.js';

const BATCH_PACKETS = 256;

interface Layout {
  tracks: Track[];
  /** Offset of the first frame after the first header. */
  dataStart: number;
}

class DtscFileSource extends HandleSource implements FileSource {
  private readonly window: ReadWindow;

  constructor(file: string, fh: FileHandle) {
    super(file, fh);
    this.window = new ReadWindow(fh);
  }

  private async layout(): Promise<Layout> {
    const size = (await this.fh.stat()).size;
    try {
      const { meta, dataStart } = await readDtscFileHeader((position, length) => {
        if (length > DTSC_MAX_FRAME_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTSC: header of ${length} bytes`);
        return this.window.at(position, length);
      }, size);
      return { tracks: meta.tracks.map(plainTrack), dataStart };
    } catch (err) {
      throw fileError(this.file, 0, err);
    }
  }

  /** Packets from `start` to the current end of the file, in batches. */
  private async *frames(start: number, tracks: readonly Track[], warnings: string[] | undefined, windowBytes = WINDOW_BYTES): AsyncGenerator<ScannedPacket[]> {
    // a window per read: concurrent readers of one source must not take turns refilling one
    const video = new Set<number>();
    const known = new Set<number>();
    for (const t of tracks) {
      known.add(t.id);
      if (t.type === 'video') video.add(t.id);
    }
    const unknown = new Set<number>();
    let batch: ScannedPacket[] = [];
    const window = new ReadWindow(this.fh, windowBytes);
    let pos = start;
    for (;;) {
      this.check();
      const head = await window.at(pos, 8);
      if (head.length < 8) {
        if (head.length > 0) warnings?.push(`${this.file}: ends inside a frame at byte ${pos}`);
        break;
      }
      const magic = head.toString('latin1', 0, 4);
      const size = 8 + head.readUInt32BE(4);
      if (magic !== 'DTP2' && magic !== 'DTPD' && magic !== 'DTSC' && magic !== 'DTCM') {
        throw new HazeError('HAZE_ERR_MALFORMED', `${this.file}: no DTSC frame (found ${head.subarray(0, 4).toString('hex')}) at byte ${pos}`);
      }
      if (size > DTSC_MAX_FRAME_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `${this.file}: DTSC frame of ${size} bytes at byte ${pos}`);
      if (magic === 'DTSC' || magic === 'DTCM') {
        // headers (index copies, newer headers) and commands are not media; a cut-off one at the end is the writer at work
        const tail = await window.at(pos + size - 1, 1);
        if (tail.length === 0) {
          warnings?.push(`${this.file}: ends inside a frame at byte ${pos}`);
          break;
        }
        pos += size;
        continue;
      }
      const frame = await window.at(pos, size);
      if (frame.length < size) {
        warnings?.push(`${this.file}: ends inside a frame at byte ${pos}`);
        break;
      }
      let d: DecodedDtp2;
      try {
        d = magic === 'DTP2' ? decodeDtp2WithBpos(frame) : decodeDtpd(frame);
      } catch (err) {
        throw fileError(this.file, pos, err);
      }
      const p = d.packet;
      if (!known.has(p.trackId)) {
        // a track the newest header does not list yet (its header comes after its packets)
        if (!unknown.has(p.trackId)) {
          unknown.add(p.trackId);
          warnings?.push(`${this.file}: packets of track ${p.trackId}, which no header lists, skipped (first at byte ${pos})`);
        }
      } else {
        // DTSC flags keyframes on video only; in Haze every audio/meta frame is a start point
        batch.push({ trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: video.has(p.trackId) ? p.keyframe : true, data: p.data, bpos: pos });
        if (batch.length >= BATCH_PACKETS) {
          yield batch;
          batch = [];
        }
      }
      pos += size;
    }
    if (batch.length > 0) yield batch;
  }

  async *scan(): AsyncGenerator<ScanChunk> {
    const { tracks, dataStart } = await this.layout();
    let first = true;
    const warnings: string[] = [];
    for await (const packets of this.frames(dataStart, tracks, warnings)) {
      const out: ScanChunk = { packets };
      if (first) out.tracks = tracks;
      first = false;
      if (warnings.length > 0) out.warnings = warnings.splice(0);
      yield out;
    }
    if (first || warnings.length > 0) yield { ...(first ? { tracks } : {}), packets: [], ...(warnings.length > 0 ? { warnings } : {}) };
  }

  async *readFrom(bpos: number, tracks: readonly Track[]): AsyncGenerator<Packet[]> {
    checkBpos(this.file, bpos);
    const set = tracks.length > 0 ? tracks : (await this.layout()).tracks;
    for await (const packets of this.frames(bpos, set, undefined, PLAY_READ_BYTES)) {
      yield packets.map((p): Packet => ({ trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data }));
    }
  }

}

export const openDtscSource: FileSourceOpener = async (file) => {
  const fh = await openHandle(file);
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    if (bytesRead === 4 && head.toString('latin1') !== 'DTSC') throw new HazeError('HAZE_ERR_MALFORMED', `${file}: not a DTSC file (no "DTSC" header) at byte 0`);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return new DtscFileSource(file, fh);
};
