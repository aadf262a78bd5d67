// MP4 / MOV reader with random access: builds a sample index from the moov (and any moof
// boxes) without reading the media, then reads single samples on demand.
// ISO/IEC 14496-12: §4.2 boxes (largesize, size 0), §8.2.2 mvhd, §8.3.2 tkhd, §8.4.2 mdhd,
// §8.4.3 hdlr, §8.6.1.2 stts, §8.6.1.3 ctts (version 1: signed offsets), §8.6.2 stss,
// §8.7.3 stsz / stz2, §8.7.4 stsc, §8.7.5 stco / co64, §8.6.6 elst, §8.8 movie fragments
// (mvex/trex §8.8.3, tfhd §8.8.7, trun §8.8.8, tfdt §8.8.12). QuickTime File Format for the
// 'qt  ' brand basics (sound sample description versions, raw PCM chunks).
//
// Timing rules (documented contract):
// - Track ids are the file's tkhd track_IDs.
// - timeMs = floor(dtsTicks * 1000 / timescale); offsetMs = floor(ptsTicks * 1000 / timescale) - timeMs,
//   so timeMs + offsetMs is the floored pts.
// - Edit lists (option `editList`, default 'apply'): leading empty edits delay the track by their
//   duration, and the first non-empty edit's media_time is subtracted from every timestamp, as
//   ffmpeg/ffprobe present them. ffmpeg's B-frame files (media_time = the first composition
//   offset) therefore start with pts 0 and a NEGATIVE first dts (e.g. -80 ms). Later edits
//   (cuts, rate changes) are not applied; they add a warning. 'ignore' uses the raw media times.
// - Raw PCM / G.711 tracks get one sample per chunk (QuickTime stores one "sample" per PCM frame).
// - Samples past the end of the source (a truncated file) are dropped with a warning.

import type { Packet, Track } from '../../media/types.js';
import { convertPcmByteOrder } from '../wav/pcm.js';
import { ByteReader } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';
import { readBoxes, type Mp4Box } from './box.js';
import type { ByteSource } from './byte-source.js';
import { parseSampleDescription, SAMPLE_AS_STORED, SAMPLE_NAL_LENGTH_3, SAMPLE_SWAP_16, SAMPLE_SWAP_24, type EntryResult } from './sample-entry.js';
import { SAMPLE_NON_SYNC, TFHD_BASE_DATA_OFFSET, TFHD_DEFAULT_BASE_IS_MOOF, TFHD_DEFAULT_DURATION, TFHD_DEFAULT_FLAGS, TFHD_DEFAULT_SIZE, TFHD_SAMPLE_DESCRIPTION, TRUN_CTO, TRUN_DATA_OFFSET, TRUN_DURATION, TRUN_FIRST_FLAGS, TRUN_FLAGS, TRUN_SIZE } from './fragment.js';

export { bufferByteSource, fileByteSource, type ByteSource, type FileByteSource } from './byte-source.js';

export interface SampleRef {
  trackId: number;
  /** Decode time, ms (see the timing rules above). */
  timeMs: number;
  /** pts - dts, ms. */
  offsetMs: number;
  keyframe: boolean;
  /** Byte offset of the stored sample in the source. */
  pos: number;
  /** Stored size in bytes. */
  size: number;
  /** How readSample converts the stored bytes (SAMPLE_* in sample-entry.ts; 0 = as stored). */
  sampleFormat: number;
}

export interface Mp4Index {
  tracks: Track[];
  /** All tracks' samples, sorted by decode time, then file order (then track id). */
  samples: SampleRef[];
  durationMs: number;
  /** ftyp major brand ('' without ftyp). */
  brand: string;
  /** Whether samples came from movie fragments. */
  fragmented: boolean;
  warnings: string[];
}

export interface OpenMp4Options {
  /** Largest moov (or single moof) read into memory (default 256 MiB). */
  maxMoovBytes?: number;
  /** Most samples indexed over all tracks (default 20 million). */
  maxSamples?: number;
  /** Most top-level boxes walked (default 2 million). */
  maxTopLevelBoxes?: number;
  /** 'apply' (default) or 'ignore' edit lists; see the timing rules. */
  editList?: 'apply' | 'ignore';
  /**
   * A moof running past the end of the source: 'throw' (default, HAZE_ERR_SHORT_READ) or 'warn'
   * (stop indexing there with a warning: a fragmented recording still being written).
   */
  partialFragment?: 'throw' | 'warn';
}

/** A packet read from the file, with the index fields that locate it. */
export type Mp4Packet = Packet & { pos: number; size: number };

interface TrackTables {
  id: number;
  timescale: number;
  entry: EntryResult;
  lang: string;
  /** Ticks subtracted from every timestamp (edit list). */
  shiftTicks: number;
  dts: number[];
  cto: number[];
  pos: number[];
  size: number[];
  key: boolean[];
  /** The decode time after the last sample (where a fragment without tfdt continues). */
  endTicks: number;
  /** trex defaults. */
  defDuration: number;
  defSize: number;
  defFlags: number;
}

class Context {
  readonly warnings: string[] = [];
  total = 0;
  constructor(
    readonly srcSize: number,
    readonly maxSamples: number,
  ) {}
  warn = (m: string): void => {
    if (this.warnings.length < 100) this.warnings.push(m);
  };
  /** Reserves `n` more samples against the global cap. */
  reserve(n: number, where: number): void {
    this.total += n;
    if (this.total > this.maxSamples) throw new HazeError('HAZE_ERR_TOO_LARGE', `more than ${this.maxSamples} samples (table at ${where})`);
  }
}

function fullBoxReader(b: Mp4Box, minVersion = 0, maxVersion = 1): { r: ByteReader; version: number; flags: number } {
  const r = new ByteReader(b.payload);
  const version = r.u8();
  const flags = r.u24();
  if (version < minVersion || version > maxVersion) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${b.type} version ${version} at ${b.start}`);
  return { r, version, flags };
}

function child(boxes: readonly Mp4Box[], type: string): Mp4Box | undefined {
  return boxes.find((b) => b.type === type);
}

function need(boxes: readonly Mp4Box[], type: string, parent: Mp4Box): Mp4Box {
  const b = child(boxes, type);
  if (!b) throw new HazeError('HAZE_ERR_MALFORMED', `${parent.type} at ${parent.start} has no ${type}`);
  return b;
}

/** Entry count of a table box, checked against the bytes that hold the entries. */
function tableCount(r: ByteReader, entrySize: number, b: Mp4Box): number {
  const n = r.u32();
  if (n * entrySize > r.remaining) throw new HazeError('HAZE_ERR_MALFORMED', `${b.type} at ${b.start} claims ${n} entries in ${r.remaining} bytes`);
  return n;
}

function unpackLanguage(v: number): string {
  if (v < 0x400 || v === 0x7fff) return 'und'; // QuickTime Macintosh language codes, or unset
  const s = String.fromCharCode(((v >> 10) & 31) + 0x60, ((v >> 5) & 31) + 0x60, (v & 31) + 0x60);
  return /^[a-z]{3}$/.test(s) ? s : 'und';
}

/** The edit list shift in media ticks: media_time of the first real edit minus leading empty edits. */
function editShift(edts: Mp4Box | undefined, movieTimescale: number, mediaTimescale: number, ctx: Context, trackId: number): number {
  if (!edts) return 0;
  const elst = child(readBoxes(edts.payload), 'elst');
  if (!elst) return 0;
  const { r, version } = fullBoxReader(elst);
  const n = tableCount(r, version === 1 ? 20 : 12, elst);
  let delayMovie = 0;
  let shift: number | undefined;
  let used = 0;
  for (let i = 0; i < n; i++) {
    const duration = version === 1 ? r.u64() : r.u32();
    const mediaTime = version === 1 ? r.i64() : r.i32();
    r.skip(4); // media_rate
    if (mediaTime === -1) {
      if (shift === undefined) delayMovie += duration;
      continue;
    }
    used++;
    if (shift === undefined) shift = mediaTime;
  }
  if (used > 1) ctx.warn(`track ${trackId}: edit list with ${used} edits; only the first is applied`);
  const delayTicks = movieTimescale > 0 ? Math.round((delayMovie * mediaTimescale) / movieTimescale) : 0;
  return (shift ?? 0) - delayTicks;
}

/** Steps through run-length tables (stts, ctts): `count` samples share `value`. */
class RunCursor {
  private i = 0;
  private left: number;
  constructor(
    private readonly counts: number[],
    private readonly values: number[],
  ) {
    this.left = counts[0] ?? 0;
  }
  /** The current value (0 past the end), then moves `n` samples on; returns the sum of values passed. */
  value(): number {
    this.skipEmpty();
    return this.i < this.values.length ? this.values[this.i]! : 0;
  }
  advance(n: number): number {
    let sum = 0;
    while (n > 0) {
      this.skipEmpty();
      if (this.i >= this.counts.length) break;
      const k = Math.min(n, this.left);
      sum += k * this.values[this.i]!;
      this.left -= k;
      n -= k;
    }
    return sum;
  }
  private skipEmpty(): void {
    while (this.left === 0 && this.i < this.counts.length) {
      this.i++;
      this.left = this.counts[this.i] ?? 0;
    }
  }
}

function readRuns(b: Mp4Box | undefined, signed: boolean): { counts: number[]; values: number[] } {
  const counts: number[] = [];
  const values: number[] = [];
  if (!b) return { counts, values };
  const { r } = fullBoxReader(b);
  const n = tableCount(r, 8, b);
  for (let i = 0; i < n; i++) {
    counts.push(r.u32());
    // ctts version 0 is unsigned by the spec, but writers put negative offsets there too, and an
    // offset past 2^31 ticks (hours) is never meant: composition offsets are read signed always.
    values.push(signed ? r.i32() : r.u32());
  }
  return { counts, values };
}

function readTrak(trak: Mp4Box, movieTimescale: number, ctx: Context, opts: Required<OpenMp4Options>): TrackTables | undefined {
  const boxes = readBoxes(trak.payload);
  const tkhd = fullBoxReader(need(boxes, 'tkhd', trak));
  tkhd.r.skip(tkhd.version === 1 ? 16 : 8);
  const id = tkhd.r.u32();
  const mdia = need(boxes, 'mdia', trak);
  const mdiaBoxes = readBoxes(mdia.payload);
  const mdhd = fullBoxReader(need(mdiaBoxes, 'mdhd', mdia));
  mdhd.r.skip(mdhd.version === 1 ? 16 : 8);
  const timescale = mdhd.r.u32();
  mdhd.r.skip(mdhd.version === 1 ? 8 : 4);
  const lang = unpackLanguage(mdhd.r.u16() & 0x7fff);
  if (timescale === 0) throw new HazeError('HAZE_ERR_MALFORMED', `track ${id}: mdhd timescale 0`);
  const hdlr = fullBoxReader(need(mdiaBoxes, 'hdlr', mdia), 0, 0);
  hdlr.r.skip(4);
  const handler = hdlr.r.buf.toString('latin1', hdlr.r.pos, hdlr.r.pos + 4);
  hdlr.r.skip(4);
  const minf = need(mdiaBoxes, 'minf', mdia);
  const stbl = need(readBoxes(minf.payload), 'stbl', minf);
  const st = readBoxes(stbl.payload);
  const stsd = fullBoxReader(need(st, 'stsd', stbl), 0, 1);
  const entry = parseSampleDescription(stsd.r.buf, handler, (m) => ctx.warn(`track ${id}: ${m}`));
  if (!entry) return undefined;

  const t: TrackTables = {
    id,
    timescale,
    entry,
    lang,
    shiftTicks: opts.editList === 'apply' ? editShift(child(boxes, 'edts'), movieTimescale, timescale, ctx, id) : 0,
    dts: [],
    cto: [],
    pos: [],
    size: [],
    key: [],
    endTicks: 0,
    defDuration: 0,
    defSize: 0,
    defFlags: 0,
  };

  // Sample sizes: stsz (constant or a table) or stz2 (4/8/16-bit fields).
  let constSize = 0;
  let sizes: ByteReader | undefined;
  let fieldBits = 32;
  let count: number;
  const stsz = child(st, 'stsz');
  const stz2 = child(st, 'stz2');
  if (stsz) {
    const { r } = fullBoxReader(stsz, 0, 0);
    constSize = r.u32();
    count = r.u32();
    if (constSize === 0) {
      if (count * 4 > r.remaining) throw new HazeError('HAZE_ERR_MALFORMED', `stsz at ${stsz.start} claims ${count} sizes in ${r.remaining} bytes`);
      sizes = r;
    } else if (entry.pcmFrameBytes === 0 && count > ctx.srcSize / constSize) {
      throw new HazeError('HAZE_ERR_MALFORMED', `stsz at ${stsz.start}: ${count} samples of ${constSize} bytes exceed the file`);
    }
  } else if (stz2) {
    const { r } = fullBoxReader(stz2, 0, 0);
    r.skip(3);
    fieldBits = r.u8();
    if (fieldBits !== 4 && fieldBits !== 8 && fieldBits !== 16) throw new HazeError('HAZE_ERR_MALFORMED', `stz2 at ${stz2.start} field size ${fieldBits}`);
    count = r.u32();
    if (Math.ceil((count * fieldBits) / 8) > r.remaining) throw new HazeError('HAZE_ERR_MALFORMED', `stz2 at ${stz2.start} claims ${count} sizes in ${r.remaining} bytes`);
    sizes = r;
  } else {
    throw new HazeError('HAZE_ERR_MALFORMED', `stbl at ${stbl.start} has neither stsz nor stz2`);
  }
  const sampleSize = (i: number): number => {
    if (!sizes) return constSize;
    const base = sizes.pos;
    if (fieldBits === 32) return sizes.buf.readUInt32BE(base + 4 * i);
    if (fieldBits === 16) return sizes.buf.readUInt16BE(base + 2 * i);
    if (fieldBits === 8) return sizes.buf[base + i]!;
    const b = sizes.buf[base + (i >> 1)]!;
    return i & 1 ? b & 15 : b >> 4;
  };

  // Chunk offsets.
  const stco = child(st, 'stco');
  const co64 = child(st, 'co64');
  const coBox = stco ?? co64;
  if (!coBox) {
    if (count > 0) throw new HazeError('HAZE_ERR_MALFORMED', `stbl at ${stbl.start} has samples but no stco/co64`);
    t.endTicks = 0;
    return t;
  }
  const co = fullBoxReader(coBox, 0, 0);
  const chunkCount = tableCount(co.r, stco ? 4 : 8, coBox);
  const chunkOffset = (i: number): number => (stco ? co.r.buf.readUInt32BE(co.r.pos + 4 * i) : co.r.buf.readUInt32BE(co.r.pos + 8 * i) * 0x1_0000_0000 + co.r.buf.readUInt32BE(co.r.pos + 8 * i + 4));

  // Samples per chunk.
  const stscBox = child(st, 'stsc');
  const stscFirst: number[] = [];
  const stscPer: number[] = [];
  if (stscBox) {
    const { r } = fullBoxReader(stscBox, 0, 0);
    const n = tableCount(r, 12, stscBox);
    for (let i = 0; i < n; i++) {
      stscFirst.push(r.u32());
      stscPer.push(r.u32());
      r.skip(4);
    }
  } else if (count > 0) throw new HazeError('HAZE_ERR_MALFORMED', `stbl at ${stbl.start} has no stsc`);

  const stts = readRuns(child(st, 'stts'), false);
  const ctts = readRuns(child(st, 'ctts'), true);
  const durations = new RunCursor(stts.counts, stts.values);
  const offsets = new RunCursor(ctts.counts, ctts.values);
  const stssBox = child(st, 'stss');
  let sync: ByteReader | undefined;
  let syncCount = 0;
  if (stssBox) {
    const { r } = fullBoxReader(stssBox, 0, 0);
    syncCount = tableCount(r, 4, stssBox);
    sync = r;
  }
  let syncIdx = 0;
  const isSync = (sampleNumber: number): boolean => {
    if (!sync) return true;
    while (syncIdx < syncCount && sync.buf.readUInt32BE(sync.pos + 4 * syncIdx) < sampleNumber) syncIdx++;
    return syncIdx < syncCount && sync.buf.readUInt32BE(sync.pos + 4 * syncIdx) === sampleNumber;
  };

  const pcm = entry.pcmFrameBytes;
  if (pcm === 0) ctx.reserve(count, stbl.start);
  let dts = 0;
  let sample = 0;
  let stscIdx = 0;
  let dropped = 0;
  for (let c = 0; c < chunkCount && sample < count; c++) {
    while (stscIdx + 1 < stscFirst.length && stscFirst[stscIdx + 1]! <= c + 1) stscIdx++;
    const per = Math.min(stscPer[stscIdx] ?? 0, count - sample);
    if (per === 0) continue;
    let pos = chunkOffset(c);
    if (pcm > 0) {
      // One packet per chunk of raw PCM frames.
      const size = per * pcm;
      ctx.reserve(1, stbl.start);
      if (pos + size > ctx.srcSize) dropped++;
      else {
        t.dts.push(dts);
        t.cto.push(0);
        t.pos.push(pos);
        t.size.push(size);
        t.key.push(true);
      }
      dts += durations.advance(per);
      sample += per;
      continue;
    }
    for (let k = 0; k < per; k++, sample++) {
      const size = sampleSize(sample);
      if (pos + size > ctx.srcSize) dropped++;
      else {
        t.dts.push(dts);
        t.cto.push(offsets.value());
        t.pos.push(pos);
        t.size.push(size);
        t.key.push(isSync(sample + 1));
      }
      offsets.advance(1);
      dts += durations.advance(1);
      pos += size;
    }
  }
  if (sample < count) ctx.warn(`track ${id}: chunks hold ${sample} of ${count} samples`);
  if (dropped > 0) ctx.warn(`track ${id}: ${dropped} samples lie past the end of the file (truncated?)`);
  t.endTicks = dts;
  return t;
}

function readMoof(moofStart: number, moof: Buffer, tracks: Map<number, TrackTables>, skipped: Set<number>, ctx: Context): void {
  const boxes = readBoxes(moof);
  let prevEnd = moofStart; // base for a traf without base-data-offset or default-base-is-moof
  let first = true;
  for (const traf of boxes) {
    if (traf.type !== 'traf') continue;
    const tb = readBoxes(traf.payload);
    const tfhdBox = need(tb, 'tfhd', traf);
    const tfhd = fullBoxReader(tfhdBox, 0, 0);
    const id = tfhd.r.u32();
    const t = tracks.get(id);
    if (!t) {
      if (!skipped.has(id)) ctx.warn(`moof at ${moofStart}: traf of unknown track ${id}`);
      continue;
    }
    const f = tfhd.flags;
    let base = f & TFHD_BASE_DATA_OFFSET ? tfhd.r.u64() : f & TFHD_DEFAULT_BASE_IS_MOOF || first ? moofStart : prevEnd;
    if (f & TFHD_SAMPLE_DESCRIPTION) tfhd.r.skip(4);
    const defDuration = f & TFHD_DEFAULT_DURATION ? tfhd.r.u32() : t.defDuration;
    const defSize = f & TFHD_DEFAULT_SIZE ? tfhd.r.u32() : t.defSize;
    const defFlags = f & TFHD_DEFAULT_FLAGS ? tfhd.r.u32() : t.defFlags;
    first = false;
    const tfdtBox = child(tb, 'tfdt');
    if (tfdtBox) {
      const tfdt = fullBoxReader(tfdtBox);
      t.endTicks = tfdt.version === 1 ? tfdt.r.u64() : tfdt.r.u32();
    }
    let dataPos = base;
    for (const trunBox of tb) {
      if (trunBox.type !== 'trun') continue;
      const { r, flags } = fullBoxReader(trunBox);
      const n = r.u32();
      const perSample = ((flags & TRUN_DURATION ? 4 : 0) + (flags & TRUN_SIZE ? 4 : 0) + (flags & TRUN_FLAGS ? 4 : 0) + (flags & TRUN_CTO ? 4 : 0));
      if (flags & TRUN_DATA_OFFSET) dataPos = base + r.i32();
      const firstFlags = flags & TRUN_FIRST_FLAGS ? r.u32() : undefined;
      // Per-sample fields must be in the box; default-sized samples must fit the file.
      if (n * perSample > r.remaining || (!(flags & TRUN_SIZE) && n * Math.max(defSize, 1) > ctx.srcSize)) {
        throw new HazeError('HAZE_ERR_MALFORMED', `trun in the moof at ${moofStart} claims ${n} samples in ${r.remaining} bytes`);
      }
      ctx.reserve(n, moofStart + trunBox.start);
      let dropped = 0;
      for (let i = 0; i < n; i++) {
        const duration = flags & TRUN_DURATION ? r.u32() : defDuration;
        const size = flags & TRUN_SIZE ? r.u32() : defSize;
        const sflags = flags & TRUN_FLAGS ? r.u32() : i === 0 && firstFlags !== undefined ? firstFlags : defFlags;
        const cto = flags & TRUN_CTO ? r.i32() : 0; // signed in either version, as for ctts
        if (dataPos < 0 || dataPos + size > ctx.srcSize) dropped++;
        else {
          t.dts.push(t.endTicks);
          t.cto.push(cto);
          t.pos.push(dataPos);
          t.size.push(size);
          t.key.push(t.entry.track.type !== 'video' || (sflags & SAMPLE_NON_SYNC) === 0);
        }
        t.endTicks += duration;
        dataPos += size;
      }
      if (dropped > 0) ctx.warn(`track ${id}: ${dropped} fragment samples lie outside the file`);
    }
    prevEnd = dataPos;
    base = dataPos;
  }
}

/**
 * Indexes an MP4/MOV file: walks the top-level box headers (never reading mdat), reads the moov
 * and any moof boxes, and lists every sample. Unsupported tracks are skipped with a warning.
 */
export async function openMp4(src: ByteSource, options: OpenMp4Options = {}): Promise<Mp4Index> {
  const opts: Required<OpenMp4Options> = {
    maxMoovBytes: options.maxMoovBytes ?? 256 * 1024 * 1024,
    maxSamples: options.maxSamples ?? 20_000_000,
    maxTopLevelBoxes: options.maxTopLevelBoxes ?? 2_000_000,
    editList: options.editList ?? 'apply',
    partialFragment: options.partialFragment ?? 'throw',
  };
  const ctx = new Context(src.size, opts.maxSamples);
  let moov: Buffer | undefined;
  let moovPos = 0;
  let brand = '';
  const moofs: { start: number; payload: Buffer }[] = [];
  let pos = 0;
  let boxes = 0;
  while (src.size - pos >= 8) {
    if (++boxes > opts.maxTopLevelBoxes) throw new HazeError('HAZE_ERR_TOO_LARGE', `more than ${opts.maxTopLevelBoxes} top-level boxes`);
    const h = await src.read(pos, 16);
    if (h.length < 8) throw new HazeError('HAZE_ERR_SHORT_READ', `box header at ${pos} cut short`);
    let size = h.readUInt32BE(0);
    const type = h.toString('latin1', 4, 8);
    let header = 8;
    if (size === 1) {
      if (h.length < 16) throw new HazeError('HAZE_ERR_SHORT_READ', `largesize of box '${type}' at ${pos} cut short`);
      const hi = h.readUInt32BE(8);
      if (hi >= 0x20_0000) throw new HazeError('HAZE_ERR_TOO_LARGE', `box '${type}' at ${pos}: largesize beyond 2^53`);
      size = hi * 0x1_0000_0000 + h.readUInt32BE(12);
      header = 16;
    } else if (size === 0) size = src.size - pos;
    if (size < header) throw new HazeError('HAZE_ERR_MALFORMED', `box '${type}' at ${pos} has size ${size} below its header`);
    const truncated = size > src.size - pos;
    if (type === 'moof' && truncated && opts.partialFragment === 'warn') {
      ctx.warn(`file ends inside a moof at byte ${pos} (${size} bytes, ${src.size - pos} present)`);
      break;
    }
    if (type === 'moov' || type === 'moof' || type === 'ftyp') {
      if (truncated) throw new HazeError('HAZE_ERR_SHORT_READ', `box '${type}' at ${pos} of ${size} bytes runs past the end (${src.size})`);
      if (size > opts.maxMoovBytes) throw new HazeError('HAZE_ERR_TOO_LARGE', `box '${type}' at ${pos} of ${size} bytes (limit ${opts.maxMoovBytes})`);
      const body = await src.read(pos + header, size - header);
      if (body.length !== size - header) throw new HazeError('HAZE_ERR_SHORT_READ', `box '${type}' at ${pos}: read ${body.length} of ${size - header} bytes`);
      if (type === 'moov') {
        if (moov) ctx.warn(`second moov at ${pos} ignored`);
        else {
          moov = body;
          moovPos = pos + header;
        }
      } else if (type === 'moof') moofs.push({ start: pos, payload: body });
      else if (body.length >= 4) brand = body.toString('latin1', 0, 4);
    } else if (truncated) {
      ctx.warn(`box '${type}' at ${pos} runs past the end of the file (truncated?)`);
      break;
    }
    pos += size;
  }
  if (!moov) throw new HazeError('HAZE_ERR_MALFORMED', `no moov box in ${src.size} bytes`);

  const moovBoxes = readBoxes(moov);
  const mvhdBox = child(moovBoxes, 'mvhd');
  let movieTimescale = 0;
  let movieDuration = 0;
  if (mvhdBox) {
    const { r, version } = fullBoxReader(mvhdBox);
    r.skip(version === 1 ? 16 : 8);
    movieTimescale = r.u32();
    movieDuration = version === 1 ? r.u64() : r.u32();
  }
  const tables = new Map<number, TrackTables>();
  const skipped = new Set<number>();
  for (const b of moovBoxes) {
    if (b.type !== 'trak') continue;
    const at: Mp4Box = { ...b, start: moovPos + b.start };
    const t = readTrak(at, movieTimescale, ctx, opts);
    if (!t) continue;
    if (t.id === 0 || tables.has(t.id)) throw new HazeError('HAZE_ERR_MALFORMED', `track id ${t.id} at ${at.start} is zero or repeated`);
    tables.set(t.id, t);
  }
  // Tracks skipped as unsupported still own their fragments.
  for (const b of moovBoxes) {
    if (b.type !== 'trak') continue;
    const tkhd = child(readBoxes(b.payload), 'tkhd');
    if (tkhd) {
      const { r, version } = fullBoxReader(tkhd);
      r.skip(version === 1 ? 16 : 8);
      const id = r.u32();
      if (!tables.has(id)) skipped.add(id);
    }
  }
  const mvex = child(moovBoxes, 'mvex');
  if (mvex) {
    for (const b of readBoxes(mvex.payload)) {
      if (b.type !== 'trex') continue;
      const { r } = fullBoxReader(b, 0, 0);
      const t = tables.get(r.u32());
      if (!t) continue;
      r.skip(4);
      t.defDuration = r.u32();
      t.defSize = r.u32();
      t.defFlags = r.u32();
    }
  }
  for (const m of moofs) readMoof(m.start, m.payload, tables, skipped, ctx);

  const tracks: Track[] = [];
  const samples: SampleRef[] = [];
  let durationMs = 0;
  for (const t of tables.values()) {
    const ts = t.timescale;
    const shift = t.shiftTicks;
    const n = t.dts.length;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const d = t.dts[i]! - shift;
      const timeMs = Math.floor((d * 1000) / ts);
      samples.push({
        trackId: t.id,
        timeMs,
        offsetMs: Math.floor(((d + t.cto[i]!) * 1000) / ts) - timeMs,
        keyframe: t.key[i]!,
        pos: t.pos[i]!,
        size: t.size[i]!,
        sampleFormat: t.entry.sampleFormat,
      });
      bytes += t.size[i]!;
    }
    const startMs = n > 0 ? Math.floor(((t.dts[0]! - shift) * 1000) / ts) : 0;
    const endMs = Math.floor(((t.endTicks - shift) * 1000) / ts);
    durationMs = Math.max(durationMs, endMs);
    const spanMs = endMs - startMs;
    const bps = spanMs > 0 ? Math.round((bytes * 1000) / spanMs) : 0;
    const track = { ...t.entry.track, id: t.id, lang: t.lang, bps } as Track;
    if (track.type === 'video' && spanMs > 0) track.fpks = Math.round((n * 1_000_000) / spanMs);
    tracks.push(track);
  }
  if (samples.length === 0 && movieTimescale > 0) durationMs = Math.floor((movieDuration * 1000) / movieTimescale);
  // Equal decode times go in file order: a reader resuming at a sample's position (VoD seeking
  // by bpos) then gets every sample of that time stored after it. ffmpeg stores an AAC track's
  // priming frame before the first video frame, both at 0 ms: ordered by track id, the video
  // frame came first and was lost to a read resuming at the audio key.
  samples.sort((a, b) => a.timeMs - b.timeMs || a.pos - b.pos || a.trackId - b.trackId);
  return { tracks, samples, durationMs, brand, fragmented: moofs.length > 0, warnings: ctx.warnings };
}

/** NAL units with `lengthSize`-byte lengths -> 4-byte lengths (one allocation). */
function toLength4(data: Buffer, lengthSize: number, at: number): Buffer {
  let total = 0;
  let p = 0;
  while (p < data.length) {
    if (p + lengthSize > data.length) throw new HazeError('HAZE_ERR_MALFORMED', `sample at ${at}: NAL length cut short at ${p}`);
    const len = data.readUIntBE(p, lengthSize);
    p += lengthSize + len;
    if (p > data.length) throw new HazeError('HAZE_ERR_MALFORMED', `sample at ${at}: NAL unit runs past the sample`);
    total += 4 + len;
  }
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  p = 0;
  while (p < data.length) {
    const len = data.readUIntBE(p, lengthSize);
    p += lengthSize;
    out.writeUInt32BE(len, o);
    data.copy(out, o + 4, p, p + len);
    o += 4 + len;
    p += len;
  }
  return out;
}

/** A sample's stored bytes in Haze's payload format: `stored` itself, or a converted copy. */
export function sampleData(stored: Buffer, ref: SampleRef): Buffer {
  const f = ref.sampleFormat;
  if (f === SAMPLE_AS_STORED) return stored;
  if (f <= SAMPLE_NAL_LENGTH_3) return toLength4(stored, f, ref.pos);
  if (f === SAMPLE_SWAP_16 || f === SAMPLE_SWAP_24) return convertPcmByteOrder(stored, f);
  return stored;
}

/** Reads one indexed sample as a Haze packet (converted to Haze's payload format where needed). */
export async function readSample(src: ByteSource, ref: SampleRef): Promise<Mp4Packet> {
  const stored = await src.read(ref.pos, ref.size);
  if (stored.length !== ref.size) throw new HazeError('HAZE_ERR_SHORT_READ', `sample at ${ref.pos}: read ${stored.length} of ${ref.size} bytes`);
  const data = sampleData(stored, ref);
  return { trackId: ref.trackId, timeMs: ref.timeMs, offsetMs: ref.offsetMs, keyframe: ref.keyframe, data, pos: ref.pos, size: ref.size };
}
