// Elementary audio files made of self-delimiting frames (MP3, ADTS AAC) as a FileSource: tags
// (ID3v2 anywhere, APEv2, a final ID3v1) are skipped, garbage between frames is skipped with a
// warning up to RESYNC_BYTES (a candidate frame counts only when the frame after it also
// parses and matches the stream), every frame is a keyframe packet, and timeMs is
// floor(samples * 1000 / rate) of the samples before it. bpos = the frame's offset.
//
// A frame's time depends on every frame before it, so readFrom() walks frame headers from the
// nearest checkpoint (kept every CHECKPOINT_FRAMES frames by any walk of this source) or from the
// start; that reads headers only through the page cache, and returns the same frames scan() did.

import type { FileHandle } from 'node:fs/promises';
import type { AudioTrack, Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { NEED_MORE, type AudioFrame, type ProbeResult } from '../../containers/ts/audio-frames.js';
import { apeTagSize, id3v2Size, ID3V1_BYTES, isId3v1 } from '../../containers/mp3/mp3.js';
import type { FileSource, ScanChunk, ScannedPacket } from './file-source.js';
import { PLAY_READ_BYTES, ReadWindow, WINDOW_BYTES, checkBpos, HandleSource } from './file-reads.js';

/** Longest stretch of garbage skipped between frames before the file is called malformed. */
export const RESYNC_BYTES = 64 * 1024;
/** More than any MP3 (2881) or ADTS (8191) frame. */
const MAX_FRAME_BYTES = 8192;
const BATCH_PACKETS = 256;
const CHECKPOINT_FRAMES = 512;

export interface FrameFormat {
  /** For messages: "MP3", "ADTS". */
  name: string;
  probe(buf: Buffer, p: number): ProbeResult;
  /** Whether `b` continues the stream `a` started (fixed header fields equal). */
  same(a: AudioFrame, b: AudioFrame): boolean;
  /** The track the first media frame defines (`frame` = its bytes, header included). */
  track(f: AudioFrame, frame: Buffer): AudioTrack;
  /** Whether the file's first frame is an information frame, not media (MP3 Xing/Info/VBRI). */
  isInfoFrame?(frame: Buffer): boolean;
}

interface Found {
  pos: number;
  frame: AudioFrame;
}

interface Walked {
  pos: number;
  /** Samples before this frame. */
  samples: number;
  frame: AudioFrame;
  bytes: Buffer;
}

export class AudioFrameFileSource extends HandleSource implements FileSource {
  /** The stream's first media frame, once a walk met it: later frames must match it. */
  private ref: { frame: AudioFrame; track: AudioTrack } | undefined;
  /** Frame starts with the samples before them, ascending (positions a walk from the start met). */
  private readonly checkpoints: { pos: number; samples: number }[] = [];

  constructor(
    file: string,
    fh: FileHandle,
    private readonly format: FrameFormat,
  ) {
    super(file, fh);
  }

  /** Skipped bytes (tags) at `pos`, 0 when none; -1 at an ID3v1 tag that ends the file. */
  private tagAt(buf: Buffer): number {
    const id3 = id3v2Size(buf, 0);
    if (id3 !== undefined) return id3;
    if (isId3v1(buf, 0) && buf.length === ID3V1_BYTES) return -1;
    return apeTagSize(buf, 0) ?? 0;
  }

  /** A frame at buf[p] that matches `ref` when there is one (NEED_MORE: cut off by the buffer's end). */
  private frameAt(buf: Buffer, p: number, ref: AudioFrame | undefined): ProbeResult {
    const f = this.format.probe(buf, p);
    if (f === undefined || f === NEED_MORE) return f;
    if (f.payloadLen === 0) return undefined;
    if (ref && !this.format.same(ref, f)) return undefined;
    return f;
  }

  /**
   * The first confirmed frame at or after `pos` within RESYNC_BYTES: it parses, and the next
   * frame does too (or the file ends, or a tag follows). `end`: no frame before the file's end.
   */
  private async resync(window: ReadWindow, pos: number, ref: AudioFrame | undefined): Promise<Found | 'end' | undefined> {
    const buf = await window.at(pos, RESYNC_BYTES + 2 * MAX_FRAME_BYTES);
    const atEof = buf.length < RESYNC_BYTES + 2 * MAX_FRAME_BYTES;
    const limit = Math.min(buf.length, RESYNC_BYTES);
    for (let p = 0; p < limit; p++) {
      if (buf[p] !== 0xff) continue;
      const f = this.frameAt(buf, p, ref);
      if (f === undefined) continue;
      if (f === NEED_MORE) return atEof ? 'end' : undefined;
      const n = p + f.headerLen + f.payloadLen;
      if (n === buf.length && atEof) return { pos: pos + p, frame: f };
      const g = this.format.probe(buf, n);
      const confirmed = g !== undefined && g !== NEED_MORE ? this.format.same(f, g) : g === NEED_MORE ? atEof : this.tagAt(buf.subarray(n, n + MAX_FRAME_BYTES)) !== 0;
      if (confirmed) return { pos: pos + p, frame: f };
    }
    // nothing up to the file's end, or nothing within the bound
    return atEof && buf.length <= RESYNC_BYTES ? 'end' : undefined;
  }

  /**
   * Frames from `pos` (samples before it: `samples`) to the current end of the file. From the
   * start (no `ref`) the first frames decide the stream; from a checkpoint, the stream the walk
   * that made it found. Deterministic: the same bytes give the same frames.
   */
  private async *walk(pos: number, samples: number, ref: AudioFrame | undefined, warnings: string[] | undefined, windowBytes = WINDOW_BYTES): AsyncGenerator<Walked> {
    // a window per walk: concurrent readers of one source must not take turns refilling one
    const window = new ReadWindow(this.fh, windowBytes);
    let count = 0;
    for (;;) {
      this.check();
      const buf = await window.at(pos, MAX_FRAME_BYTES + 16);
      if (buf.length === 0) return;
      const tag = this.tagAt(buf);
      if (tag === -1) return;
      if (tag > 0) {
        pos += tag;
        continue;
      }
      let f = ref ? this.frameAt(buf, 0, ref) : undefined;
      if (f === NEED_MORE) {
        warnings?.push(`${this.file}: ends inside a frame at byte ${pos}`);
        return;
      }
      if (f === undefined) {
        // not a frame here (or the first frame, which must be confirmed): look for the next one
        const found = await this.resync(window, pos, ref);
        if (found === 'end') {
          warnings?.push(`${this.file}: ends with ${buf.length < MAX_FRAME_BYTES + 16 ? buf.length : 'some'} bytes that are not ${this.format.name} frames at byte ${pos}`);
          return;
        }
        if (found === undefined) throw new HazeError('HAZE_ERR_MALFORMED', `${this.file}: no ${this.format.name} frame in the ${RESYNC_BYTES} bytes at byte ${pos}`);
        if (found.pos !== pos) {
          warnings?.push(`${this.file}: skipped ${found.pos - pos} bytes that are not ${this.format.name} frames at byte ${pos}`);
          pos = found.pos;
          continue;
        }
        f = found.frame;
      }
      const len = f.headerLen + f.payloadLen;
      const frameBuf = await window.at(pos, len);
      if (!ref) {
        if (this.format.isInfoFrame?.(frameBuf)) {
          pos += len;
          continue;
        }
        ref = f;
        this.ref ??= { frame: f, track: this.format.track(f, frameBuf) };
      }
      if (count++ % CHECKPOINT_FRAMES === 0) this.checkpoint(pos, samples);
      yield { pos, samples, frame: f, bytes: frameBuf.subarray(f.headerLen, len) };
      samples += f.samples;
      pos += len;
    }
  }

  private checkpoint(pos: number, samples: number): void {
    const c = this.checkpoints;
    if (c.length === 0 || c[c.length - 1]!.pos < pos) c.push({ pos, samples });
    else if (!c.some((x) => x.pos === pos)) {
      c.push({ pos, samples });
      c.sort((a, b) => a.pos - b.pos);
    }
  }

  private packet(w: Walked): ScannedPacket {
    const rate = this.ref!.frame.rate;
    return { trackId: this.ref!.track.id, timeMs: Math.floor((w.samples * 1000) / rate), offsetMs: 0, keyframe: true, data: w.bytes, bpos: w.pos };
  }

  async *scan(): AsyncGenerator<ScanChunk> {
    const warnings: string[] = [];
    let batch: ScannedPacket[] = [];
    let sentTracks = false;
    const flush = (): ScanChunk => {
      const out: ScanChunk = { packets: batch };
      if (!sentTracks && this.ref) {
        out.tracks = [this.ref.track];
        sentTracks = true;
      }
      if (warnings.length > 0) out.warnings = warnings.splice(0);
      batch = [];
      return out;
    };
    for await (const w of this.walk(0, 0, undefined, warnings)) {
      batch.push(this.packet(w));
      if (batch.length >= BATCH_PACKETS) yield flush();
    }
    if (batch.length > 0 || warnings.length > 0 || !sentTracks) yield flush();
  }

  async *readFrom(bpos: number, _tracks: readonly Track[]): AsyncGenerator<Packet[]> {
    checkBpos(this.file, bpos);
    let start = { pos: 0, samples: 0 };
    for (const c of this.checkpoints) if (c.pos <= bpos) start = c;
    let batch: Packet[] = [];
    let found = false;
    for await (const w of this.walk(start.pos, start.samples, start.pos > 0 ? this.ref?.frame : undefined, undefined, PLAY_READ_BYTES)) {
      if (!found) {
        if (w.pos < bpos) continue;
        if (w.pos > bpos) throw new HazeError('HAZE_ERR_INVALID_ARG', `${this.file}: ${bpos} is not a ${this.format.name} frame position`);
        found = true;
      }
      const p = this.packet(w);
      batch.push({ trackId: p.trackId, timeMs: p.timeMs, offsetMs: 0, keyframe: true, data: p.data });
      if (batch.length >= BATCH_PACKETS) {
        yield batch;
        batch = [];
      }
    }
    if (!found) throw new HazeError('HAZE_ERR_INVALID_ARG', `${this.file}: ${bpos} is not a ${this.format.name} frame position`);
    if (batch.length > 0) yield batch;
  }

}
