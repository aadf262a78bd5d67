// DTSC files read in time order (reference/mistserver.md §2.3 DTP2 packets, §2.4 the header
// index and the `moreheader` chain), for `haze merge` (mix, defrag, append) and for players of
// appended files.
//
// A DTSC file is time-ordered only per region: an appended file is
//
//   [first header][original packets][old index header][appended packets][new header] ...
//
// and each region interleaves its own tracks by time. The index of the newest header gives,
// per track, the byte position of every key (`keys[].bpos`) and the packet count (`parts`).
// Tracks whose key spans [first key bpos, last key bpos] overlap share one cursor (they are
// interleaved in one region); the others get their own. Each cursor reads sequentially in
// bounded chunks, queues the packets of the tracks it owns and skips other frames without
// reading them, and stops once its tracks have all their indexed packets. A k-way merge over
// the per-track queue heads gives (timeMs, track rank) order. When a shared cursor has
// MAX_QUEUED_BYTES queued while looking for one track's next packet (a region that is badly
// interleaved), that track moves to a cursor of its own, started right after its last packet:
// memory stays bounded, the price is re-reading some bytes.
//
// A file without an index in its newest header (MistServer's DTSC streams saved to a file, or
// an index whose key positions do not point at the track's packets) is scanned once first and
// indexed with DtscIndexBuilder, as MistServer does before writing a `.dtsh`. A file whose
// first header says `moreheader` 0 is still being written and is refused.
//
// Packets going back in time on their track are dropped, as the index builder drops them.
// Pure: the caller passes a ReadAt for each file.

import type { Packet } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { readDtscFileHeader, type ReadAt } from './file.js';
import type { DtscStreamMeta, DtscTrack } from './header.js';
import { DtscIndexBuilder } from './index-builder.js';
import { decodeDtp2WithBpos, DTSC_MAX_FRAME_BYTES, DTP2_PREFIX_BYTES } from './packets.js';

/** Bytes a cursor reads at a time. */
export const CURSOR_CHUNK_BYTES = 1024 * 1024;
/** Packet bytes a shared cursor may hold for its other tracks before a track gets its own cursor. */
export const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

/** One DTSC file to read: positional reads, its size when opened, a name for messages. */
export interface DtscInput {
  read: ReadAt;
  size: number;
  name: string;
}

const EMPTY = Buffer.alloc(0);

interface FrameAt {
  at: number;
  size: number;
  magic: string;
  /** DTP2 only; -1 otherwise. */
  trackId: number;
}

/** Sequential frame reader from a byte position, one bounded chunk in memory. */
class FrameCursor {
  private buf: Buffer = EMPTY;
  private bufAt = 0;

  constructor(
    private readonly src: DtscInput,
    public pos: number,
  ) {}

  /** Makes [pos, pos + n) readable from the buffer. */
  private async ensure(n: number): Promise<Buffer> {
    const off = this.pos - this.bufAt;
    if (off >= 0 && off + n <= this.buf.length) return this.buf.subarray(off, off + n);
    if (this.pos + n > this.src.size) throw new HazeError('HAZE_ERR_SHORT_READ', `${this.src.name}: frame at byte ${this.pos} runs past the end of the file`);
    const want = Math.min(Math.max(n, CURSOR_CHUNK_BYTES), this.src.size - this.pos);
    const b = await this.src.read(this.pos, want);
    if (b.length < n) throw new HazeError('HAZE_ERR_SHORT_READ', `${this.src.name}: file ended at byte ${this.pos + b.length} inside a frame`);
    this.buf = b;
    this.bufAt = this.pos;
    return b.subarray(0, n);
  }

  /** The next frame's position, size and kind (its body is not read); undefined at the end of the file. */
  async peek(): Promise<FrameAt | undefined> {
    if (this.pos >= this.src.size) return undefined;
    if (this.pos + 8 > this.src.size) throw new HazeError('HAZE_ERR_SHORT_READ', `${this.src.name}: ${this.src.size - this.pos} stray bytes at the end (byte ${this.pos})`);
    const head = await this.ensure(Math.min(DTP2_PREFIX_BYTES, this.src.size - this.pos));
    const magic = head.toString('latin1', 0, 4);
    if (magic !== 'DTP2' && magic !== 'DTSC' && magic !== 'DTPD' && magic !== 'DTCM') {
      throw new HazeError('HAZE_ERR_MALFORMED', `${this.src.name}: no DTSC frame at byte ${this.pos} (found ${head.subarray(0, 4).toString('hex')})`);
    }
    const size = 8 + head.readUInt32BE(4);
    if (size > DTSC_MAX_FRAME_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `${this.src.name}: frame of ${size} bytes at byte ${this.pos}`);
    if (this.pos + size > this.src.size) throw new HazeError('HAZE_ERR_SHORT_READ', `${this.src.name}: frame at byte ${this.pos} (${size} bytes) runs past the end of the file`);
    if (magic === 'DTP2' && head.length < 12) throw new HazeError('HAZE_ERR_MALFORMED', `${this.src.name}: DTP2 frame at byte ${this.pos} is too short`);
    return { at: this.pos, size, magic, trackId: magic === 'DTP2' ? head.readUInt32BE(8) : -1 };
  }

  /** The whole frame last peeked (a subarray of the chunk, or its own read when larger). */
  body(f: FrameAt): Promise<Buffer> {
    return this.ensure(f.size);
  }

  skip(f: FrameAt): void {
    this.pos = f.at + f.size;
  }
}

/** A track as the timeline serves it. */
export interface TimelineTrack {
  /** Index of its file in the inputs given to open(). */
  input: number;
  /** The track from the file's newest header, with the index (scanned when the header had none). */
  track: DtscTrack;
  /** Packets the index lists. */
  packetCount: number;
}

export interface TimelinePacket {
  input: number;
  packet: Packet;
}

interface Feed {
  rank: number;
  input: number;
  trackId: number;
  total: number;
  taken: number;
  lastMs: number;
  /** File position after the last packet taken (where a cursor of its own would start). */
  lastEnd: number;
  startBpos: number;
  queue: Packet[];
  qHead: number;
  cursor: TrackCursor | null;
}

class TrackCursor {
  readonly owned = new Map<number, Feed>();
  queuedBytes = 0;
  readonly frames: FrameCursor;

  constructor(
    readonly src: DtscInput,
    pos: number,
  ) {
    this.frames = new FrameCursor(src, pos);
  }

  /** Reads one frame; false at the end of the file. */
  async step(): Promise<boolean> {
    const f = await this.frames.peek();
    if (!f) {
      for (const feed of this.owned.values()) {
        throw new HazeError('HAZE_ERR_MALFORMED', `${this.src.name}: track ${feed.trackId} has ${feed.taken} of the ${feed.total} packets its index lists`);
      }
      return false;
    }
    const feed = f.trackId >= 0 ? this.owned.get(f.trackId) : undefined;
    if (feed) {
      const { packet } = decodeDtp2WithBpos(await this.frames.body(f));
      if (feed.taken === 0 || packet.timeMs >= feed.lastMs) {
        feed.queue.push(packet);
        feed.taken++;
        feed.lastMs = packet.timeMs;
        feed.lastEnd = f.at + f.size;
        this.queuedBytes += packet.data.length;
        if (feed.taken === feed.total) this.owned.delete(feed.trackId);
      }
    }
    this.frames.skip(f);
    return true;
  }
}

export interface TimelineOpenOptions {
  /** Which tracks to serve (default all). */
  select?: (input: number, track: DtscTrack) => boolean;
  /** Bytes a shared cursor may queue (default MAX_QUEUED_BYTES). */
  maxQueuedBytes?: number;
}

export interface TimelineFile {
  /** The newest header; its tracks carry the index (scanned when the file had none). */
  meta: DtscStreamMeta;
  dataStart: number;
  headerAt: number;
  /** The index was built by reading the file (the header had none, or a wrong one). */
  scanned: boolean;
}

/**
 * Is there an index, and does every indexed track's first key point at a DTP2 frame of that
 * track with the key's time? (A track without tables in an indexed header had no packets:
 * DtscFileWriter writes it so.)
 */
async function indexPointsHere(src: DtscInput, meta: DtscStreamMeta, dataStart: number): Promise<boolean> {
  if (!meta.tracks.some((t) => t.tables)) return false;
  for (const t of meta.tracks) {
    const tb = t.tables;
    if (!tb || tb.parts.length === 0) continue;
    const k = tb.keys[0];
    if (!k || k.bpos < dataStart || k.bpos + DTP2_PREFIX_BYTES > src.size) return false;
    const head = await src.read(k.bpos, DTP2_PREFIX_BYTES);
    if (head.length < DTP2_PREFIX_BYTES || head.toString('latin1', 0, 4) !== 'DTP2' || head.readUInt32BE(8) !== t.id) return false;
    const timeMs = head.readUInt32BE(12) * 0x1_0000_0000 + head.readUInt32BE(16);
    if (timeMs !== k.timeMs) return false;
  }
  return true;
}

/** Indexes a file by reading it once (MistServer's scan before it writes a `.dtsh`). */
async function scanIndex(src: DtscInput, meta: DtscStreamMeta, dataStart: number): Promise<DtscStreamMeta> {
  const index = new DtscIndexBuilder();
  for (const t of meta.tracks) index.addTrack(t.id, t.type === 'video');
  const frames = new FrameCursor(src, dataStart);
  for (let f = await frames.peek(); f; f = await frames.peek()) {
    if (f.magic === 'DTP2') {
      const { packet } = decodeDtp2WithBpos(await frames.body(f));
      index.add({ trackId: packet.trackId, timeMs: packet.timeMs, offsetMs: packet.offsetMs, keyframe: packet.keyframe, size: packet.data.length, bpos: f.at });
    }
    frames.skip(f);
  }
  const tracks = meta.tracks.map((t): DtscTrack => {
    const idx = index.track(t.id);
    if (!idx) {
      const { tables: _t, ...rest } = t;
      return { ...rest, tables: { fragments: [], keys: [], keySizes: [], parts: [] } } as DtscTrack;
    }
    return { ...t, tables: idx.tables, firstMs: idx.firstMs, lastMs: idx.lastMs, bps: idx.bps, maxBps: idx.maxBps };
  });
  return { ...meta, tracks };
}

/** Reads the newest header of a file and makes sure its tracks carry an index that points into it. */
export async function openTimelineFile(src: DtscInput): Promise<TimelineFile> {
  let head: Awaited<ReturnType<typeof readDtscFileHeader>>;
  try {
    head = await readDtscFileHeader(src.read, src.size);
  } catch (err) {
    if (err instanceof HazeError) throw new HazeError(err.code, `${src.name}: not a readable DTSC file (${err.message})`, { cause: err });
    throw err;
  }
  if (head.meta.moreheader === 0) {
    throw new HazeError('HAZE_ERR_UNSUPPORTED', `${src.name}: the DTSC file is still being written (its first header has moreheader 0 and no index yet)`);
  }
  const ids = new Set<number>();
  for (const t of head.meta.tracks) {
    if (ids.has(t.id)) throw new HazeError('HAZE_ERR_MALFORMED', `${src.name}: two tracks with id ${t.id}`);
    ids.add(t.id);
  }
  if (await indexPointsHere(src, head.meta, head.dataStart)) return { ...head, scanned: false };
  return { meta: await scanIndex(src, head.meta, head.dataStart), dataStart: head.dataStart, headerAt: head.headerAt, scanned: true };
}

/**
 * The packets of the tracks of one or more DTSC files, merged in (timeMs, rank) order where rank
 * is the order of `tracks` (files in the order given, tracks in header order).
 */
export class DtscTimeline {
  private readonly feeds: Feed[] = [];
  private readonly maxQueuedBytes: number;
  /** Tracks that moved to a cursor of their own because their region was interleaved too loosely. */
  splits = 0;

  private constructor(
    private readonly inputs: readonly DtscInput[],
    readonly files: readonly TimelineFile[],
    readonly tracks: readonly TimelineTrack[],
    opts: TimelineOpenOptions,
  ) {
    this.maxQueuedBytes = opts.maxQueuedBytes ?? MAX_QUEUED_BYTES;
    this.plan();
  }

  static async open(inputs: readonly DtscInput[], opts: TimelineOpenOptions = {}): Promise<DtscTimeline> {
    const files: TimelineFile[] = [];
    for (const src of inputs) files.push(await openTimelineFile(src));
    const tracks: TimelineTrack[] = [];
    files.forEach((f, input) => {
      for (const t of f.meta.tracks) {
        if (opts.select && !opts.select(input, t)) continue;
        tracks.push({ input, track: t, packetCount: t.tables?.parts.length ?? 0 });
      }
    });
    return new DtscTimeline(inputs, files, tracks, opts);
  }

  /** One cursor per group of tracks whose key spans overlap (one region of one file). */
  private plan(): void {
    this.tracks.forEach((tt, rank) => {
      const keys = tt.track.tables?.keys ?? [];
      this.feeds.push({
        rank,
        input: tt.input,
        trackId: tt.track.id,
        total: tt.packetCount,
        taken: 0,
        lastMs: 0,
        lastEnd: 0,
        startBpos: keys[0]?.bpos ?? 0,
        queue: [],
        qHead: 0,
        cursor: null,
      });
    });
    for (let input = 0; input < this.inputs.length; input++) {
      const spans = this.feeds
        .filter((f) => f.input === input && f.total > 0)
        .map((f) => {
          const keys = this.tracks[f.rank]!.track.tables!.keys;
          return { feed: f, start: f.startBpos, end: keys[keys.length - 1]!.bpos };
        })
        .sort((a, b) => a.start - b.start);
      let cursor: TrackCursor | null = null;
      let groupEnd = -1;
      for (const s of spans) {
        if (!cursor || s.start > groupEnd) {
          cursor = new TrackCursor(this.inputs[input]!, s.start);
          groupEnd = s.end;
        } else {
          groupEnd = Math.max(groupEnd, s.end);
        }
        cursor.owned.set(s.feed.trackId, s.feed);
        s.feed.cursor = cursor;
      }
    }
  }

  /** Makes the feed's queue non-empty unless all its packets were served. */
  private async fill(feed: Feed): Promise<void> {
    while (feed.qHead === feed.queue.length && feed.taken < feed.total) {
      let c = feed.cursor!;
      if (c.owned.size > 1 && c.queuedBytes >= this.maxQueuedBytes) {
        // the region is interleaved too loosely to buffer: this track reads on by itself
        c.owned.delete(feed.trackId);
        this.splits++;
        c = new TrackCursor(this.inputs[feed.input]!, feed.taken > 0 ? feed.lastEnd : feed.startBpos);
        c.owned.set(feed.trackId, feed);
        feed.cursor = c;
      }
      if (!(await c.step())) break;
    }
  }

  /** The next packet in time order; undefined when every track is done. */
  async next(): Promise<TimelinePacket | undefined> {
    let best: Feed | undefined;
    let bestMs = 0;
    for (const f of this.feeds) {
      await this.fill(f);
      if (f.qHead === f.queue.length) continue;
      const t = f.queue[f.qHead]!.timeMs;
      if (!best || t < bestMs) {
        best = f;
        bestMs = t;
      }
    }
    if (!best) return undefined;
    const packet = best.queue[best.qHead]!;
    best.queue[best.qHead++] = undefined as unknown as Packet;
    if (best.qHead === best.queue.length) {
      best.queue.length = 0;
      best.qHead = 0;
    } else if (best.qHead > 1024 && best.qHead * 2 > best.queue.length) {
      best.queue.splice(0, best.qHead);
      best.qHead = 0;
    }
    best.cursor!.queuedBytes -= packet.data.length;
    return { input: best.input, packet };
  }
}
