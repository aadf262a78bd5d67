// Push-based Matroska / WebM reader: RFC 8794 (EBML) and RFC 9559 (Matroska): §6.2 unknown-size
// Segment and Cluster (live WebM), §5.1.2 Info, §5.1.4 Tracks, §5.1.5 Cues, §10 Block structure
// (SimpleBlock §10.2, Block in BlockGroup §10.1 with ReferenceBlock for non-keyframes, lacing
// §10.3-10.4). The input is read element by element: Segment and Cluster are descended into
// without buffering them, SimpleBlock/BlockGroup and the small header elements (EBML header,
// Info, Tracks, Cues, SeekHead) are collected whole up to a size cap, everything else (Void,
// CRC-32, Tags, Chapters, Attachments, unknown IDs) is skipped as it streams past.
//
// Timestamps: a block's time is (Cluster Timestamp + relative int16) * TimestampScale ns, minus
// the track's CodecDelay; timeMs = floor(ns / 1e6). Matroska stores presentation times; for
// H.264/HEVC the decode time is derived as libavformat does (reorder.ts), other tracks get
// timeMs = PTS and offsetMs = 0. Laced frames after the first are spaced by DefaultDuration
// (else BlockDuration / frames, else not at all). Track ids are the Matroska TrackNumbers.
// Packets come out per track in storage order, which Matroska muxers keep in decode order.

import { HazeError, isHazeError } from '../../util/errors.js';
import type { Packet, Track } from '../../media/types.js';
import { joinNalUnits, splitNalUnits } from '../../media/nal-units.js';
import { child, childrenOf, ID, readElements, readFloat, readSimpleBlock, readString, readUint, type EbmlElement } from './ebml.js';
import { splitLaces } from './lacing.js';
import { DtsFromPts } from './reorder.js';
import { parseTrackEntry, type MkvTrackInfo } from './tracks.js';

/** IDs the writer's table lacks (RFC 9559 §5.1). */
export const MKV_ID = {
  ReferenceBlock: 0xfb,
  BlockDuration: 0x9b,
  Seek: 0x4dbb,
  SeekID: 0x53ab,
  SeekPosition: 0x53ac,
  CuePoint: 0xbb,
  CueTime: 0xb3,
  CueTrackPositions: 0xb7,
  CueTrack: 0xf7,
  CueClusterPosition: 0xf1,
  CueRelativePosition: 0xf0,
  DocTypeReadVersion: 0x4285,
} as const;

export interface MkvPacket extends Packet {
  /** Byte offset in the input of the SimpleBlock / BlockGroup element the frame came from. */
  pos: number;
  /** Bytes of the frame as stored (before any NAL length or byte order rewriting). */
  size: number;
}

export interface MkvCue {
  timeMs: number;
  trackId: number;
  /** Absolute byte offset of the Cluster in the input (CueClusterPosition + Segment data start). */
  clusterPos: number;
}

export interface MkvInfo {
  durationMs?: number;
  timestampScaleNs: number;
}

export interface MkvDemuxResult {
  /** Set when a Tracks element was read (each time one is: a new EBML stream resends it). */
  tracks?: Track[];
  packets: MkvPacket[];
  cues?: MkvCue[];
  info?: MkvInfo;
  warnings: string[];
}

export interface MatroskaDemuxerOptions {
  /** Largest SimpleBlock / BlockGroup accepted, bytes (default 64 MiB). */
  maxBlockBytes?: number;
  /** Largest EBML header / Info / Tracks / Cues / SeekHead accepted, bytes (default 32 MiB). */
  maxHeaderBytes?: number;
  /** Subtract CodecDelay from block timestamps, as RFC 9559 and ffmpeg do (default true). */
  applyCodecDelay?: boolean;
  /** Called with the absolute offset of each Cluster as the reader enters it (before its blocks). */
  onCluster?: (pos: number) => void;
}

/** Segment-level elements: any of these ends an unknown-size Cluster (RFC 9559 §6.2). */
const SEGMENT_LEVEL: ReadonlySet<number> = new Set([
  ID.SeekHead, ID.Info, ID.Tracks, ID.Cluster, ID.Cues, ID.Chapters, ID.Tags, ID.Attachments,
]);

/** Elements read whole and parsed as a tree. */
const HEADER_IDS: ReadonlySet<number> = new Set([ID.EBML, ID.Info, ID.Tracks, ID.Cues, ID.SeekHead]);

interface OpenMaster {
  id: number;
  /** Absolute end offset, Infinity for unknown size. */
  end: number;
  /** Absolute offset of the first child (Segment positions are relative to it). */
  dataStart: number;
}

interface TrackRuntime {
  info: MkvTrackInfo;
  dts: DtsFromPts<MkvPacket> | undefined;
}

/** The element header at `pos`: undefined when more bytes are needed (`need` says how many in all). */
interface ElementHeader {
  id: number;
  headerSize: number;
  /** -1 for unknown size. */
  size: number;
}

function readHeader(buf: Buffer, pos: number, abs: number): ElementHeader | number {
  const avail = buf.length - pos;
  if (avail < 1) return 1;
  const first = buf[pos]!;
  const idWidth = Math.clz32(first) - 23;
  if (first === 0 || idWidth > 4) throw new HazeError('HAZE_ERR_MALFORMED', `invalid element ID at byte ${abs}`);
  if (avail < idWidth + 1) return idWidth + 1;
  const id = buf.readUIntBE(pos, idWidth);
  const s0 = buf[pos + idWidth]!;
  if (s0 === 0) throw new HazeError('HAZE_ERR_MALFORMED', `element size at byte ${abs + idWidth} wider than 8 bytes`);
  const sizeWidth = Math.clz32(s0) - 23;
  if (avail < idWidth + sizeWidth) return idWidth + sizeWidth;
  let size = s0 & (0xff >> sizeWidth);
  let allOnes = size === 0xff >> sizeWidth;
  for (let i = 1; i < sizeWidth; i++) {
    const b = buf[pos + idWidth + i]!;
    if (b !== 0xff) allOnes = false;
    size = size * 256 + b;
  }
  if (allOnes) return { id, headerSize: idWidth + sizeWidth, size: -1 };
  if (!Number.isSafeInteger(size)) throw new HazeError('HAZE_ERR_TOO_LARGE', `element size at byte ${abs + idWidth} beyond 2^53`);
  return { id, headerSize: idWidth + sizeWidth, size };
}

function emptyResult(): MkvDemuxResult {
  return { packets: [], warnings: [] };
}

/** Little-endian PCM samples -> big-endian, into one new buffer. */
function swapPcm(data: Buffer, width: number): Buffer {
  const out = Buffer.allocUnsafe(data.length - (data.length % width));
  for (let i = 0; i + width <= data.length; i += width) for (let j = 0; j < width; j++) out[i + j] = data[i + width - 1 - j]!;
  return out;
}

/**
 * Incremental Matroska/WebM demuxer: `push` bytes as they arrive, `end` at the end of input.
 * Each call returns what became known. Memory is bounded by the caps on buffered elements.
 */
export class MatroskaDemuxer {
  private readonly maxBlockBytes: number;
  private readonly maxHeaderBytes: number;
  private readonly applyCodecDelay: boolean;
  private readonly onCluster: ((pos: number) => void) | undefined;

  /** Unparsed bytes: buf[bufPos..] sits at absolute offset bufAbs + bufPos. */
  private buf: Buffer = Buffer.alloc(0);
  private bufPos = 0;
  private bufAbs = 0;
  /** Chunks received while waiting for `need` bytes, joined once enough have come. */
  private queue: Buffer[] = [];
  private queued = 0;
  private need = 1;
  /** Bytes of a skipped element still to come. */
  private skipLeft = 0;

  private readonly stack: OpenMaster[] = [];
  private timestampScaleNs = 1_000_000;
  private clusterTs = 0;
  private clusterTsSeen = true;
  private segmentDataStart = 0;
  private readonly tracks = new Map<number, TrackRuntime>();
  private tracksSeen = false;
  private readonly warnedTracks = new Set<number>();
  private ended = false;
  private out: MkvDemuxResult = emptyResult();

  constructor(opts: MatroskaDemuxerOptions = {}) {
    this.maxBlockBytes = opts.maxBlockBytes ?? 64 * 1024 * 1024;
    this.maxHeaderBytes = opts.maxHeaderBytes ?? 32 * 1024 * 1024;
    this.applyCodecDelay = opts.applyCodecDelay ?? true;
    this.onCluster = opts.onCluster;
  }

  /**
   * Continues at absolute offset `pos` of the input: the next pushed byte is the one at `pos`.
   * For seeking: push the file's start up to its first Cluster (EBML header, Segment header,
   * Info, Tracks), then resumeAt(a Cluster's offset) and push from there. Only allowed between
   * elements at Segment level (nothing buffered, no Cluster open).
   */
  resumeAt(pos: number): void {
    if (this.ended) throw new HazeError('HAZE_ERR_PROTOCOL', 'resumeAt after end');
    if (this.bufPos < this.buf.length || this.queued > 0 || this.skipLeft > 0) throw new HazeError('HAZE_ERR_PROTOCOL', `resumeAt(${pos}) with unparsed bytes at ${this.abs()}`);
    while (this.stack.length > 0 && this.stack[this.stack.length - 1]!.end <= this.abs()) this.stack.pop();
    const top = this.stack[this.stack.length - 1];
    if (!top || top.id !== ID.Segment || this.stack.length !== 1) throw new HazeError('HAZE_ERR_PROTOCOL', `resumeAt(${pos}) outside a Segment's top level (at ${this.abs()})`);
    if (pos < this.abs() || pos >= top.end) throw new HazeError('HAZE_ERR_MALFORMED', `resume position ${pos} outside the Segment (${this.abs()}..${top.end})`);
    this.buf = Buffer.alloc(0);
    this.bufPos = 0;
    this.bufAbs = pos;
    this.need = 1;
  }

  push(chunk: Buffer): MkvDemuxResult {
    if (this.ended) throw new HazeError('HAZE_ERR_PROTOCOL', 'push after end');
    this.out = emptyResult();
    if (chunk.length === 0) return this.out;
    if (this.skipLeft > 0 && this.bufPos >= this.buf.length) {
      // Skipping: drop bytes straight from the chunk, nothing is kept.
      const n = Math.min(this.skipLeft, chunk.length);
      this.skipLeft -= n;
      this.bufAbs += this.buf.length + n;
      this.buf = chunk.subarray(n);
      this.bufPos = 0;
      if (this.buf.length === 0) return this.out;
      chunk = Buffer.alloc(0);
    }
    if (chunk.length > 0) {
      this.queue.push(chunk);
      this.queued += chunk.length;
    }
    if (this.buf.length - this.bufPos + this.queued < this.need) return this.out;
    this.coalesce();
    this.parse();
    return this.out;
  }

  /** End of input: releases held-back frames and notes a truncated last element. */
  end(): MkvDemuxResult {
    if (this.ended) return emptyResult();
    this.out = emptyResult();
    this.ended = true;
    this.coalesce();
    const left = this.buf.length - this.bufPos;
    if (left > 0 || this.skipLeft > 0) {
      this.out.warnings.push(`input ends inside an element at byte ${this.bufAbs + this.bufPos} (${left} bytes unparsed)`);
    }
    for (const m of this.stack) {
      if (m.end !== Infinity && m.end > this.bufAbs + this.buf.length + this.skipLeft) {
        this.out.warnings.push(`element 0x${m.id.toString(16)} ends at ${m.end}, past the end of the input`);
        break;
      }
    }
    for (const t of this.tracks.values()) if (t.dts) this.out.packets.push(...t.dts.flush());
    return this.out;
  }

  private coalesce(): void {
    if (this.queue.length === 0) return;
    const rest = this.buf.subarray(this.bufPos);
    this.bufAbs += this.bufPos;
    this.buf = rest.length === 0 && this.queue.length === 1 ? this.queue[0]! : Buffer.concat([rest, ...this.queue]);
    this.bufPos = 0;
    this.queue = [];
    this.queued = 0;
  }

  private abs(): number {
    return this.bufAbs + this.bufPos;
  }

  private parse(): void {
    for (;;) {
      if (this.skipLeft > 0) {
        const n = Math.min(this.skipLeft, this.buf.length - this.bufPos);
        this.bufPos += n;
        this.skipLeft -= n;
        if (this.skipLeft > 0) {
          this.need = 1;
          return;
        }
      }
      const abs = this.abs();
      // Close the known-size masters this position has reached.
      while (this.stack.length > 0 && this.stack[this.stack.length - 1]!.end <= abs) this.stack.pop();
      const h = readHeader(this.buf, this.bufPos, abs);
      if (typeof h === 'number') {
        this.need = h;
        return;
      }
      this.closeUnknown(h.id);
      const parent = this.stack[this.stack.length - 1];
      const dataStart = abs + h.headerSize;
      if (h.size >= 0 && parent && dataStart + h.size > parent.end) {
        throw new HazeError('HAZE_ERR_MALFORMED', `element 0x${h.id.toString(16)} at byte ${abs} runs past its parent's end ${parent.end}`);
      }
      const level = parent?.id;
      // Masters descended into without buffering.
      if ((h.id === ID.Segment && level === undefined) || (h.id === ID.Cluster && level === ID.Segment)) {
        if (h.size < 0 && h.id === ID.Cluster && this.stack.length !== 1) throw new HazeError('HAZE_ERR_MALFORMED', `Cluster at ${abs} outside a Segment`);
        this.stack.push({ id: h.id, end: h.size < 0 ? Infinity : dataStart + h.size, dataStart });
        this.bufPos += h.headerSize;
        if (h.id === ID.Segment) this.segmentDataStart = dataStart;
        else {
          this.clusterTs = 0;
          this.clusterTsSeen = false;
          this.onCluster?.(abs);
        }
        continue;
      }
      const whole = this.wantsWhole(h.id, level);
      if (whole === 0) {
        if (h.size < 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `unknown size on element 0x${h.id.toString(16)} at byte ${abs}`);
        this.bufPos += h.headerSize;
        this.skipLeft = h.size;
        continue;
      }
      if (h.size < 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `unknown size on element 0x${h.id.toString(16)} at byte ${abs}`);
      if (h.size > whole) throw new HazeError('HAZE_ERR_TOO_LARGE', `element 0x${h.id.toString(16)} at byte ${abs} has ${h.size} bytes, cap ${whole}`);
      const total = h.headerSize + h.size;
      if (this.buf.length - this.bufPos < total) {
        this.need = total;
        return;
      }
      const data = this.buf.subarray(this.bufPos + h.headerSize, this.bufPos + total);
      this.bufPos += total;
      this.element(h.id, abs, data);
    }
  }

  /**
   * An element whose ID cannot be a child of the open unknown-size master closes it: a
   * Segment-level ID closes a Cluster, an EBML header (a new stream) closes everything.
   */
  private closeUnknown(id: number): void {
    if (id === ID.EBML || id === ID.Segment) {
      this.stack.length = 0;
      return;
    }
    const top = this.stack[this.stack.length - 1];
    if (top && top.id === ID.Cluster && SEGMENT_LEVEL.has(id)) this.stack.pop();
  }

  /** Max bytes to read an element whole, or 0 to skip it. */
  private wantsWhole(id: number, level: number | undefined): number {
    if (level === undefined) return id === ID.EBML ? this.maxHeaderBytes : 0;
    if (level === ID.Segment) return HEADER_IDS.has(id) ? this.maxHeaderBytes : 0;
    if (level === ID.Cluster) {
      if (id === ID.SimpleBlock || id === ID.BlockGroup) return this.maxBlockBytes;
      if (id === ID.Timestamp) return 8;
    }
    return 0;
  }

  private element(id: number, abs: number, data: Buffer): void {
    switch (id) {
      case ID.EBML:
        return this.ebmlHeader(abs, data);
      case ID.Info:
        return this.info(abs, data);
      case ID.Tracks:
        return this.readTracks(abs, data);
      case ID.Cues:
        return this.readCues(abs, data);
      case ID.SeekHead:
        return; // positions only matter to readMkvIndex, which reads them itself
      case ID.Timestamp: {
        let v = 0;
        for (const b of data) v = v * 256 + b;
        this.clusterTs = v;
        this.clusterTsSeen = true;
        return;
      }
      case ID.SimpleBlock:
        return this.block(abs, data, true, false, 0);
      case ID.BlockGroup:
        return this.blockGroup(abs, data);
    }
  }

  private tree(abs: number, data: Buffer): EbmlElement[] {
    try {
      return readElements(data, { maxDepth: 8, maxElements: Math.max(16, data.length) });
    } catch (err) {
      if (isHazeError(err)) throw new HazeError(err.code, `in element at byte ${abs}: ${err.message}`);
      throw err;
    }
  }

  private ebmlHeader(abs: number, data: Buffer): void {
    const kids = this.tree(abs, data);
    const el = { id: ID.EBML, offset: abs, headerSize: 0, unknownSize: false, data, children: kids };
    const docType = child(el, ID.DocType);
    const type = docType ? readString(docType) : 'matroska';
    if (type !== 'matroska' && type !== 'webm') throw new HazeError('HAZE_ERR_UNSUPPORTED', `EBML DocType "${type}" at byte ${abs}`);
    const maxId = child(el, ID.EBMLMaxIDLength);
    const maxSize = child(el, ID.EBMLMaxSizeLength);
    if ((maxId && readUint(maxId) > 4) || (maxSize && readUint(maxSize) > 8)) {
      throw new HazeError('HAZE_ERR_UNSUPPORTED', `EBML header at byte ${abs} allows IDs/sizes wider than 4/8 bytes`);
    }
    // A new EBML stream (concatenated live WebM) starts from scratch.
    this.flushTracks();
    this.tracks.clear();
    this.tracksSeen = false;
    this.timestampScaleNs = 1_000_000;
  }

  private info(abs: number, data: Buffer): void {
    const el: EbmlElement = { id: ID.Info, offset: abs, headerSize: 0, unknownSize: false, data, children: this.tree(abs, data) };
    const scale = child(el, ID.TimestampScale);
    this.timestampScaleNs = scale ? readUint(scale) : 1_000_000;
    if (this.timestampScaleNs === 0) throw new HazeError('HAZE_ERR_MALFORMED', `TimestampScale 0 at byte ${abs}`);
    const info: MkvInfo = { timestampScaleNs: this.timestampScaleNs };
    const dur = child(el, ID.Duration);
    if (dur) {
      const d = readFloat(dur);
      if (Number.isFinite(d) && d >= 0) info.durationMs = Math.round((d * this.timestampScaleNs) / 1e6);
    }
    this.out.info = info;
  }

  private readTracks(abs: number, data: Buffer): void {
    const kids = this.tree(abs, data);
    // Tracks repeated in the same Segment (allowed) replace the previous ones.
    this.flushTracks();
    this.tracks.clear();
    const tracks: Track[] = [];
    for (const entry of kids) {
      if (entry.id !== ID.TrackEntry) continue;
      const t = parseTrackEntry(entry);
      if (typeof t === 'string') {
        this.out.warnings.push(t);
        const n = child(entry, ID.TrackNumber);
        if (n) this.warnedTracks.add(readUint(n));
        continue;
      }
      if (this.tracks.has(t.number)) throw new HazeError('HAZE_ERR_MALFORMED', `duplicate TrackNumber ${t.number} at byte ${abs}`);
      const frameMs = t.defaultDurationNs > 0 ? t.defaultDurationNs / 1e6 : 1;
      this.tracks.set(t.number, { info: t, dts: t.reorderDelay > 0 ? new DtsFromPts<MkvPacket>(t.reorderDelay, frameMs) : undefined });
      tracks.push(t.track);
    }
    this.tracksSeen = true;
    this.out.tracks = tracks;
  }

  /** Frames held for DTS derivation are released before their track goes away. */
  private flushTracks(): void {
    for (const t of this.tracks.values()) if (t.dts) this.out.packets.push(...t.dts.flush());
  }

  private readCues(abs: number, data: Buffer): void {
    this.out.cues = parseCues(this.tree(abs, data), this.timestampScaleNs, this.segmentDataStart);
  }

  private blockGroup(abs: number, data: Buffer): void {
    const kids = this.tree(abs, data);
    const el: EbmlElement = { id: ID.BlockGroup, offset: abs, headerSize: 0, unknownSize: false, data, children: kids };
    const block = child(el, ID.Block);
    if (!block) throw new HazeError('HAZE_ERR_MALFORMED', `BlockGroup at byte ${abs} without a Block`);
    const durEl = child(el, MKV_ID.BlockDuration);
    // No ReferenceBlock: the frame depends on no other, a keyframe (RFC 9559 §10.1).
    this.block(abs, block.data, false, childrenOf(el, MKV_ID.ReferenceBlock).length === 0, durEl ? readUint(durEl) : 0);
  }

  private block(abs: number, data: Buffer, simple: boolean, groupKey: boolean, durationTicks: number): void {
    let v;
    try {
      v = readSimpleBlock(data);
    } catch (err) {
      if (isHazeError(err)) throw new HazeError('HAZE_ERR_MALFORMED', `block at byte ${abs}: ${err.message}`);
      throw err;
    }
    const rt = this.tracks.get(v.trackNumber);
    if (!rt) {
      if (!this.warnedTracks.has(v.trackNumber)) {
        this.warnedTracks.add(v.trackNumber);
        this.out.warnings.push(
          this.tracksSeen ? `blocks of unknown track ${v.trackNumber} skipped (first at byte ${abs})` : `blocks before Tracks skipped (first at byte ${abs})`,
        );
      }
      return;
    }
    if (!this.clusterTsSeen) {
      this.clusterTsSeen = true;
      this.out.warnings.push(`Cluster without Timestamp before the block at byte ${abs}; using 0`);
    }
    const info = rt.info;
    const frames = splitLaces(v.frame, v.lacing, abs);
    const scale = this.timestampScaleNs;
    const blockNs = (this.clusterTs + v.relTimestamp) * scale - (this.applyCodecDelay ? info.codecDelayNs : 0);
    let frameNs = info.defaultDurationNs;
    if (frameNs === 0 && durationTicks > 0) frameNs = (durationTicks * scale) / frames.length;
    const keyframe = simple ? v.keyframe : groupKey;
    const track = info.track;
    for (let i = 0; i < frames.length; i++) {
      const stored = frames[i]!;
      let data = stored;
      if (info.nalLengthSize !== 0) {
        try {
          data = joinNalUnits(splitNalUnits(stored, info.nalLengthSize));
        } catch (err) {
          if (isHazeError(err)) throw new HazeError('HAZE_ERR_MALFORMED', `block at byte ${abs}: ${err.message}`);
          throw err;
        }
      } else if (info.swapBytes !== 0) data = swapPcm(stored, info.swapBytes);
      const timeMs = Math.floor((blockNs + i * frameNs) / 1e6);
      // Laced audio frames are each a random access point when the block is.
      const p: MkvPacket = { trackId: track.id, timeMs, offsetMs: 0, keyframe: keyframe && (i === 0 || track.type !== 'video'), data, pos: abs, size: stored.length };
      if (rt.dts) this.out.packets.push(...rt.dts.add(p));
      else this.out.packets.push(p);
    }
  }
}

/**
 * Children of an element the generic reader treats as binary (ebml.ts descends only into the
 * masters the writer uses; CuePoint, CueTrackPositions and Seek are read here on demand).
 */
export function subElements(el: EbmlElement): EbmlElement[] {
  return el.children ?? readElements(el.data, { maxDepth: 4, maxElements: Math.max(16, el.data.length) });
}

/** Cues (RFC 9559 §5.1.5) -> cue list; positions made absolute from the Segment's data start. */
export function parseCues(kids: EbmlElement[], timestampScaleNs: number, segmentDataStart: number): MkvCue[] {
  const cues: MkvCue[] = [];
  for (const point of kids) {
    if (point.id !== MKV_ID.CuePoint) continue;
    const pk = subElements(point);
    const t = pk.find((e) => e.id === MKV_ID.CueTime);
    if (!t) continue;
    const timeMs = Math.floor((readUint(t) * timestampScaleNs) / 1e6);
    for (const tp of pk) {
      if (tp.id !== MKV_ID.CueTrackPositions) continue;
      const tk = subElements(tp);
      const track = tk.find((e) => e.id === MKV_ID.CueTrack);
      const pos = tk.find((e) => e.id === MKV_ID.CueClusterPosition);
      if (!track || !pos) continue;
      cues.push({ timeMs, trackId: readUint(track), clusterPos: segmentDataStart + readUint(pos) });
    }
  }
  return cues;
}

/** Convenience: a whole file at once. */
export function demuxMatroska(file: Buffer, opts?: MatroskaDemuxerOptions): MkvDemuxResult {
  const d = new MatroskaDemuxer(opts);
  const a = d.push(file);
  const b = d.end();
  return mergeResults([a, b]);
}

/** Joins the results of several push/end calls (tests, whole-file use). */
export function mergeResults(results: MkvDemuxResult[]): MkvDemuxResult {
  const out: MkvDemuxResult = { packets: [], warnings: [] };
  for (const r of results) {
    if (r.tracks) out.tracks = r.tracks;
    if (r.cues) out.cues = r.cues;
    if (r.info) out.info = r.info;
    for (const p of r.packets) out.packets.push(p);
    for (const w of r.warnings) out.warnings.push(w);
  }
  return out;
}
