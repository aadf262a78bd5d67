// Progressive ("moov first") MP4 for VoD: ftyp + moov + mdat, laid out from a sample index
// before any media byte is read, so an HTTP server can answer byte ranges of a file that does
// not exist yet. ISO/IEC 14496-12: §4.3 ftyp, §8.1.1 mdat (largesize past 4 GiB), §8.2.2 mvhd,
// §8.3.2 tkhd, §8.6.5/§8.6.6 edts/elst, §8.4.2 mdhd, §8.4.3 hdlr, §12.1.2 vmhd, §12.2.2 smhd,
// §8.7.1-2 dinf/dref, §8.5.2 stsd (sample entries from init.ts), §8.6.1.2 stts,
// §8.6.1.3 ctts, §8.6.2 stss, §8.7.4 stsc, §8.7.3.2 stsz, §8.7.5 stco / co64.
//
//   file = ftyp moov mdat          moov = mvhd trak*
//   trak = tkhd edts(elst) mdia    stbl = stsd stts [ctts] [stss] stsc stsz stco|co64
//   mdat = chunks of ~chunkMs of one track's samples, all tracks' chunks by first decode time
//
// Timing (documented contract):
// - Timescales are trackTimescale()'s: 90000 for video, the sample rate for audio. Video keeps
//   90000 rather than 1000: every integer ms is exactly 90 ticks, and 90 kHz also holds the
//   NTSC cadences (3003 ticks) that ms timestamps only approximate.
// - Each track's media timeline starts at its first decode time (stts cannot start elsewhere).
//   A sample's decode tick is chosen inside the tick range that floors back to its ms
//   (relative to the first sample): floor(tick * 1000 / timescale) == timeMs(i) - timeMs(0),
//   so a reader that floors (demux.ts, ffprobe within 1 ms) gets the input ms back exactly.
//   Inside that range the tick continues the track's nominal frame duration (AAC 1024 samples,
//   MP3 1152/576, AC-3 1536, else the track's average) when it can, which recovers the
//   original uniform durations from ms timestamps and keeps stts to a few entries; otherwise it
//   is the lowest tick of the range. Composition times are chosen the same way.
// - A sample lasts until the next one; the last one repeats the one before (or the average).
// - Edit list: presentation time 0 of the movie is the earliest first composition time over
//   the tracks (`startMs`). A track whose first composition time is later gets an empty edit
//   of the difference (A/V sync as the ms timeline has it), then one edit whose media_time is
//   the first sample's composition offset, as ffmpeg writes for B-frame streams: the first
//   frame is presented at the edit start, with no gap and no shift of the B-frame delay.

import type { Track } from '../../media/types.js';
import { AC3_SAMPLES_PER_FRAME } from '../../media/audio-headers.js';
import { parseAsc } from '../../media/aac.js';
import { HazeError, isHazeError } from '../../util/errors.js';
import { box, fields, fullBox, serialize, type BoxPart } from './box.js';
import { hdlr, packLanguage, sampleEntry, trackTimescale, UNITY_MATRIX } from './init.js';

export interface ProgressiveTrackInput {
  /** Haze track (codec, init, dims/rate, lang, id); filter with mp4Supports(). */
  track: Track;
  /** Samples. */
  count: number;
  /** Decode time (ms, non-decreasing). */
  timeMs(i: number): number;
  /** Composition offset (ms, >= 0; a negative one gives a version 1 ctts). */
  offsetMs(i: number): number;
  /** Bytes. */
  size(i: number): number;
  /** Sync sample (audio: all true). */
  keyframe(i: number): boolean;
}

export interface ProgressiveOptions {
  /** Target duration of one track's run of samples in mdat (default 500 ms). */
  chunkMs?: number;
  /** A first frame per track id, for AC-3 (dac3) and MP3 as in InitSegmentOptions. */
  firstFrames?: ReadonlyMap<number, Buffer>;
}

export interface ProgressiveLayout {
  /** ftyp + moov + the mdat box header: the first bytes of the file. */
  header: Buffer;
  /** Total file size in bytes (header + all sample bytes). */
  totalBytes: number;
  /**
   * The samples in mdat order: track index (into the inputs) and sample index, with each
   * sample's absolute byte offset in the file.
   */
  order: { track: Uint8Array; sample: Uint32Array; offset: Float64Array };
  /** The position in `order` of the sample containing byte `pos`; -1 inside the header or past the end. */
  sampleAt(pos: number): number;
  /** The input ms shown at presentation time 0 of the file (the earliest first composition time). */
  startMs: number;
  /** Presentation duration of the movie in ms (mvhd). */
  durationMs: number;
}

const MOVIE_TIMESCALE = 1000;
const U32_MAX = 0xffff_ffff;
const I32_MAX = 0x7fff_ffff;
/** Track indices are stored in a Uint8Array. */
const MAX_TRACKS = 255;
/** Samples over all tracks (a 24 h file of 60 fps video and 48 kHz AAC is ~9.2 million). */
const MAX_SAMPLES = 50_000_000;

/**
 * One track's sample tables, built in a single pass over its index. Table arrays are sized for
 * the worst case and hold `*Len` words (no count word); nothing is kept per sample but the sizes.
 */
interface TrackPlan {
  track: Track;
  timescale: number;
  count: number;
  sizes: Uint32Array;
  /** Whether every sample has the size of the first (stsz without a table). */
  sameSize: boolean;
  /** stts (count, delta) pairs. */
  stts: Uint32Array;
  sttsLen: number;
  /** ctts (count, offset) pairs; undefined when every offset is 0. */
  ctts: Uint32Array | undefined;
  cttsLen: number;
  /** Some composition offset is negative (ctts version 1). */
  cttsSigned: boolean;
  /** stss sample numbers; undefined for audio or when every sample is sync. */
  stss: Uint32Array | undefined;
  stssLen: number;
  /** Per chunk: first sample, first decode time (ms), bytes, and (after the merge) file offset. */
  chunkFirst: Uint32Array;
  chunkMs: Float64Array;
  chunkBytes: Float64Array;
  chunkOffset: Float64Array;
  /** The first sample's composition offset, ticks (the media edit's media_time). */
  firstCto: number;
  /** Sum of the durations (mdhd duration), ticks. */
  mediaDuration: number;
  /** The end of the latest presented sample, ticks. */
  presentEnd: number;
  /** Input ms of the first composition time. */
  firstPtsMs: number;
  /** Empty edit and media edit durations, ms. */
  emptyMs: number;
  editMs: number;
}

function invalid(msg: string): HazeError {
  return new HazeError('HAZE_ERR_INVALID_ARG', msg);
}

/** The lowest tick that floors back to `ms`. */
function lowTick(ms: number, timescale: number): number {
  return Math.ceil((ms * timescale) / 1000);
}

/** The audio frame length in ticks, when the codec fixes it and the timescale is the sample rate. */
function codecFrameTicks(t: Track, timescale: number): number {
  if (t.type !== 'audio') return 0;
  if (t.codec === 'AAC' && t.init.length > 0) {
    try {
      return parseAsc(t.init).samplesPerFrame;
    } catch (err) {
      if (!isHazeError(err)) throw err;
      return 0;
    }
  }
  if (t.codec === 'MP3') return timescale < 32000 ? 576 : 1152;
  if (t.codec === 'AC3') return AC3_SAMPLES_PER_FRAME;
  return 0;
}

/** A duration for a track of one sample: one frame. */
function defaultDuration(t: Track, timescale: number, frameTicks: number): number {
  if (frameTicks > 0) return frameTicks;
  if (t.type === 'video' && t.fpks > 0) return Math.max(1, Math.round((timescale * 1000) / t.fpks));
  if (t.type === 'video') return Math.round(timescale / 25);
  return Math.round(timescale / 50); // 20 ms, an Opus frame
}

/** Appends a (count, value) run or extends the last one; returns the new length. */
function run(runs: Uint32Array, len: number, value: number): number {
  if (len > 0 && runs[len - 1] === value) {
    runs[len - 2]!++;
    return len;
  }
  runs[len] = 1;
  runs[len + 1] = value;
  return len + 2;
}

/** Reads one track's index and builds its tables (see the timing contract). */
function planTrack(input: ProgressiveTrackInput, index: number, chunkMs: number): TrackPlan {
  const t = input.track;
  const n = input.count;
  if (!Number.isInteger(n) || n < 0 || n > MAX_SAMPLES) throw invalid(`track ${index}: sample count ${n}`);
  const timescale = trackTimescale(t);
  const video = t.type === 'video';
  const sizes = new Uint32Array(n);
  const stts = new Uint32Array(2 * n);
  const ctts = new Uint32Array(2 * n);
  const stss = video ? new Uint32Array(n) : undefined;
  const chunkFirst = new Uint32Array(n);
  const chunkStartMs = new Float64Array(n);
  const chunkBytes = new Float64Array(n);
  const plan: TrackPlan = {
    track: t, timescale, count: n, sizes, sameSize: n > 0,
    stts, sttsLen: 0, ctts: undefined, cttsLen: 0, cttsSigned: false, stss: undefined, stssLen: 0,
    chunkFirst, chunkMs: chunkStartMs, chunkBytes, chunkOffset: new Float64Array(0),
    firstCto: 0, mediaDuration: 0, presentEnd: 0, firstPtsMs: 0, emptyMs: 0, editMs: 0,
  };
  if (n === 0) return plan;

  const baseMs = input.timeMs(0);
  const lastMs = input.timeMs(n - 1);
  if (!Number.isFinite(baseMs) || !Number.isFinite(lastMs) || lastMs < baseMs) throw invalid(`track ${index}: decode times ${baseMs}..${lastMs} ms`);
  const frameTicks = codecFrameTicks(t, timescale);
  const nominal = frameTicks > 0 ? frameTicks : n > 1 ? Math.round(lowTick(lastMs - baseMs, timescale) / (n - 1)) : 0;

  let prevMs = -Infinity;
  let prevTick = 0;
  let prevCto = 0;
  let prevDuration = 0;
  let end = 0;
  let sttsLen = 0;
  let cttsLen = 0;
  let stssLen = 0;
  let anyCto = false;
  let sameSize = true;
  let chunks = 0;
  let chunkAt = 0;
  let bytes = 0;
  const size0 = input.size(0);
  for (let i = 0; i < n; i++) {
    const ms = input.timeMs(i);
    if (!(ms >= prevMs) || ms === Infinity) throw invalid(`track ${index} sample ${i}: decode time ${ms} ms after ${prevMs} ms`);
    prevMs = ms;
    const size = input.size(i);
    if (size >>> 0 !== size) throw invalid(`track ${index} sample ${i}: size ${size}`); // an integer in 0..2^32-1
    sizes[i] = size;
    if (size !== size0) sameSize = false;
    if (chunks === 0 || ms - chunkAt >= chunkMs) {
      if (chunks > 0) chunkBytes[chunks - 1] = bytes;
      bytes = 0;
      chunkFirst[chunks] = i;
      chunkStartMs[chunks++] = chunkAt = ms;
    }
    bytes += size;

    // Decode tick: inside the range that floors back to ms, continuing the nominal duration.
    const rel = ms - baseMs;
    const lo = Math.max(lowTick(rel, timescale), prevTick);
    const hi = lowTick(rel + 1, timescale) - 1;
    const guess = prevTick + nominal;
    const tick = i > 0 && nominal > 0 && guess >= lo && guess <= hi ? guess : lo;
    if (i > 0) {
      const d = tick - prevTick;
      if (d > U32_MAX) throw new HazeError('HAZE_ERR_TOO_LARGE', `track ${index}: a gap of ${d} ticks before sample ${i}`);
      sttsLen = run(stts, sttsLen, d);
      end = Math.max(end, tick + prevCto);
      prevDuration = d;
    }

    // Composition offset: the pts tick chosen the same way (never before the dts when off >= 0).
    const off = input.offsetMs(i);
    if (!Number.isFinite(off)) throw invalid(`track ${index} sample ${i}: composition offset ${off}`);
    let cto = 0;
    if (off !== 0) {
      const ptsRel = rel + off;
      const ptsLo = off > 0 ? Math.max(lowTick(ptsRel, timescale), tick) : lowTick(ptsRel, timescale);
      const ptsHi = lowTick(ptsRel + 1, timescale) - 1;
      let pts = ptsLo;
      if (nominal > 0) {
        const snapped = tick + Math.round((off * timescale) / 1000 / nominal) * nominal;
        if (snapped >= ptsLo && snapped <= ptsHi) pts = snapped;
      }
      cto = pts - tick;
      if (cto > I32_MAX || cto < -I32_MAX) throw new HazeError('HAZE_ERR_TOO_LARGE', `track ${index} sample ${i}: composition offset ${off} ms`);
      if (cto !== 0) anyCto = true;
      if (cto < 0) plan.cttsSigned = true;
    }
    cttsLen = run(ctts, cttsLen, cto >>> 0); // two's complement for a version 1 ctts
    if (i === 0) {
      plan.firstCto = cto;
      plan.firstPtsMs = ms + off;
    }
    if (stss && input.keyframe(i)) stss[stssLen++] = i + 1;
    prevTick = tick;
    prevCto = cto;
  }

  chunkBytes[chunks - 1] = bytes;
  // sample_size 0 means "a table follows" (ISO/IEC 14496-12 §8.7.3.2): equal sizes of 0 need the table
  plan.sameSize = sameSize && n > 0 && sizes[0]! > 0;
  // The last sample repeats the one before, else the average, else one frame.
  let last = prevDuration;
  if (last === 0 && n > 1) last = Math.round(prevTick / (n - 1));
  if (last === 0) last = defaultDuration(t, timescale, frameTicks);
  plan.sttsLen = run(stts, sttsLen, last);
  plan.mediaDuration = prevTick + last;
  plan.presentEnd = Math.max(end, plan.mediaDuration + prevCto);
  if (anyCto) {
    plan.ctts = ctts;
    plan.cttsLen = cttsLen;
  }
  if (stss && stssLen < n) {
    plan.stss = stss;
    plan.stssLen = stssLen;
  }
  plan.chunkFirst = chunkFirst.subarray(0, chunks);
  plan.chunkMs = chunkStartMs.subarray(0, chunks);
  plan.chunkBytes = chunkBytes.subarray(0, chunks);
  plan.chunkOffset = new Float64Array(chunks);
  return plan;
}

// ---- tables ------------------------------------------------------------------------------------

/** A FullBox of u32 words: `head` words, then `len` words of `words`, written straight into the output. */
function wordsBox(type: string, version: number, head: readonly number[], words?: Uint32Array, len = 0): BoxPart {
  const size = 12 + 4 * head.length + 4 * len;
  return {
    size,
    write(out: Buffer, offset: number): number {
      const dv = new DataView(out.buffer, out.byteOffset + offset, size);
      dv.setUint32(0, size);
      out.write(type, offset + 4, 4, 'latin1');
      dv.setUint32(8, (version << 24) >>> 0);
      let o = 12;
      for (const h of head) {
        dv.setUint32(o, h);
        o += 4;
      }
      for (let i = 0; i < len; i++, o += 4) dv.setUint32(o, words![i]!);
      return offset + size;
    },
  };
}

/** stsc: (first_chunk, samples_per_chunk, sample_description_index) where the count changes. */
function stsc(p: TrackPlan): BoxPart {
  const chunks = p.chunkFirst.length;
  const rows = new Uint32Array(3 * chunks);
  let k = 0;
  for (let c = 0; c < chunks; c++) {
    const samples = (c + 1 < chunks ? p.chunkFirst[c + 1]! : p.count) - p.chunkFirst[c]!;
    if (k > 0 && rows[k - 2] === samples) continue;
    rows[k++] = c + 1;
    rows[k++] = samples;
    rows[k++] = 1;
  }
  return wordsBox('stsc', 0, [k / 3], rows, k);
}

/** stco / co64 from the chunks' file offsets (filled in by the merge before serialising). */
function chunkOffsets(p: TrackPlan, co64: boolean): BoxPart {
  const chunks = p.chunkOffset.length;
  const size = 16 + chunks * (co64 ? 8 : 4);
  return {
    size,
    write(out: Buffer, offset: number): number {
      const dv = new DataView(out.buffer, out.byteOffset + offset, size);
      dv.setUint32(0, size);
      out.write(co64 ? 'co64' : 'stco', offset + 4, 4, 'latin1');
      dv.setUint32(8, 0);
      dv.setUint32(12, chunks);
      let o = 16;
      for (let c = 0; c < chunks; c++) {
        const v = p.chunkOffset[c]!;
        if (co64) {
          dv.setUint32(o, Math.floor(v / 0x1_0000_0000));
          dv.setUint32(o + 4, v % 0x1_0000_0000);
          o += 8;
        } else {
          dv.setUint32(o, v);
          o += 4;
        }
      }
      return offset + size;
    },
  };
}

// ---- headers -----------------------------------------------------------------------------------

function mvhd(durationMs: number, nextTrackId: number): BoxPart {
  const v1 = durationMs > U32_MAX;
  return fullBox(
    'mvhd',
    v1 ? 1 : 0,
    0,
    fields(v1 ? 108 : 96, (w) => {
      if (v1) w.u64(0).u64(0).u32(MOVIE_TIMESCALE).u64(durationMs);
      else w.u32(0).u32(0).u32(MOVIE_TIMESCALE).u32(durationMs);
      w.u32(0x0001_0000).u16(0x0100).u16(0).u32(0).u32(0); // rate 1.0, volume 1.0, reserved
      for (const m of UNITY_MATRIX) w.u32(m);
      for (let i = 0; i < 6; i++) w.u32(0); // pre_defined
      w.u32(nextTrackId);
    }),
  );
}

function tkhd(t: Track, durationMs: number): BoxPart {
  const v1 = durationMs > U32_MAX;
  const width = t.type === 'video' ? t.width : 0;
  const height = t.type === 'video' ? t.height : 0;
  // flags: track_enabled | track_in_movie
  return fullBox(
    'tkhd',
    v1 ? 1 : 0,
    3,
    fields(v1 ? 92 : 80, (w) => {
      if (v1) w.u64(0).u64(0).u32(t.id).u32(0).u64(durationMs);
      else w.u32(0).u32(0).u32(t.id).u32(0).u32(durationMs);
      w.u32(0).u32(0).u16(0).u16(0); // reserved, layer, alternate_group
      w.u16(t.type === 'audio' ? 0x0100 : 0).u16(0);
      for (const m of UNITY_MATRIX) w.u32(m);
      w.u32((width & 0xffff) * 0x1_0000).u32((height & 0xffff) * 0x1_0000);
    }),
  );
}

function mdhd(t: Track, timescale: number, durationTicks: number): BoxPart {
  const v1 = durationTicks > U32_MAX;
  return fullBox(
    'mdhd',
    v1 ? 1 : 0,
    0,
    fields(v1 ? 32 : 20, (w) => {
      if (v1) w.u64(0).u64(0).u32(timescale).u64(durationTicks);
      else w.u32(0).u32(0).u32(timescale).u32(durationTicks);
      w.u16(packLanguage(t.lang)).u16(0);
    }),
  );
}

/** elst: an optional empty edit (media_time -1), then the media from the first composition time. */
function edts(p: TrackPlan): BoxPart {
  const mediaTime = p.firstCto;
  const edits: [number, number][] = [];
  if (p.emptyMs > 0) edits.push([p.emptyMs, -1]);
  edits.push([p.editMs, mediaTime]);
  const v1 = edits.some(([d, m]) => d > U32_MAX || m > I32_MAX || m < -1);
  return box(
    'edts',
    fullBox(
      'elst',
      v1 ? 1 : 0,
      0,
      fields(4 + edits.length * (v1 ? 20 : 12), (w) => {
        w.u32(edits.length);
        for (const [d, m] of edits) {
          if (v1) w.u64(d).i64(m);
          else w.u32(d).u32(m >>> 0);
          w.u16(1).u16(0); // media_rate 1.0
        }
      }),
    ),
  );
}

function trak(p: TrackPlan, co64: boolean, firstFrames: ReadonlyMap<number, Buffer> | undefined): BoxPart {
  const t = p.track;
  const video = t.type === 'video';
  const mediaHeader = video ? fullBox('vmhd', 0, 1, fields(8, (w) => w.u32(0).u32(0))) : fullBox('smhd', 0, 0, fields(4, (w) => w.u32(0)));
  const dinf = box('dinf', fullBox('dref', 0, 0, fields(4, (w) => w.u32(1)), fullBox('url ', 0, 1)));
  const entry = sampleEntry(t, firstFrames ? { firstFrames } : {});
  const tables: BoxPart[] = [fullBox('stsd', 0, 0, fields(4, (w) => w.u32(1)), entry), wordsBox('stts', 0, [p.sttsLen / 2], p.stts, p.sttsLen)];
  if (p.ctts) tables.push(wordsBox('ctts', p.cttsSigned ? 1 : 0, [p.cttsLen / 2], p.ctts, p.cttsLen));
  if (p.stss) tables.push(wordsBox('stss', 0, [p.stssLen], p.stss, p.stssLen));
  tables.push(stsc(p));
  tables.push(p.sameSize ? wordsBox('stsz', 0, [p.sizes[0]!, p.count]) : wordsBox('stsz', 0, [0, p.count], p.sizes, p.count));
  tables.push(chunkOffsets(p, co64));
  const mdia = box('mdia', mdhd(t, p.timescale, p.mediaDuration), hdlr(video ? 'vide' : 'soun', video ? 'VideoHandler' : 'SoundHandler'), box('minf', mediaHeader, dinf, box('stbl', ...tables)));
  return p.count > 0 ? box('trak', tkhd(t, p.emptyMs + p.editMs), edts(p), mdia) : box('trak', tkhd(t, 0), mdia);
}

function ftyp(plans: readonly TrackPlan[]): BoxPart {
  const brands = ['isom', 'iso2', 'mp41'];
  if (plans.some((p) => p.track.codec === 'H264')) brands.splice(2, 0, 'avc1');
  if (plans.some((p) => p.track.codec === 'AV1')) brands.push('av01');
  return box('ftyp', Buffer.from('isom', 'latin1'), fields(4, (w) => w.u32(0x200)), ...brands.map((b) => Buffer.from(b, 'latin1')));
}


// ---- layout ------------------------------------------------------------------------------------

/**
 * Lays out a progressive MP4 of the tracks: the header bytes (ftyp, moov, mdat header), the
 * mdat order of the samples with their file offsets, and a byte -> sample lookup. Pure and
 * synchronous; no sample byte is needed. Tracks must be MP4-carriable (mp4Supports).
 */
export function layoutProgressiveMp4(tracks: readonly ProgressiveTrackInput[], opts: ProgressiveOptions = {}): ProgressiveLayout {
  const chunkMs = opts.chunkMs ?? 500;
  if (!(chunkMs > 0) || !Number.isFinite(chunkMs)) throw invalid(`chunkMs ${chunkMs}`);
  if (tracks.length === 0) throw invalid('a progressive MP4 needs at least one track');
  if (tracks.length > MAX_TRACKS) throw invalid(`${tracks.length} tracks (at most ${MAX_TRACKS})`);
  const ids = new Set<number>();
  let total = 0;
  for (const input of tracks) {
    const id = input.track.id;
    if (!Number.isInteger(id) || id < 1 || id > 0xffff_fffe) throw invalid(`track id ${id} is not a valid MP4 track_ID`);
    if (ids.has(id)) throw invalid(`duplicate track id ${id}`);
    ids.add(id);
    if (!Number.isInteger(input.count) || input.count < 0) throw invalid(`track ${id}: sample count ${input.count}`);
    total += input.count;
    if (total > MAX_SAMPLES) throw new HazeError('HAZE_ERR_TOO_LARGE', `more than ${MAX_SAMPLES} samples`);
  }
  const plans = tracks.map((input, i) => planTrack(input, i, chunkMs));

  // Movie time 0 = the earliest first composition time; later tracks start with an empty edit.
  let startMs = Infinity;
  for (const p of plans) if (p.count > 0) startMs = Math.min(startMs, p.firstPtsMs);
  if (startMs === Infinity) startMs = 0;
  let durationMs = 0;
  let payload = 0;
  // The chunk written last (merge order: first decode time, then input order) has the highest offset.
  let lastChunkMs = -Infinity;
  let lastChunkBytes = 0;
  for (const p of plans) {
    const chunks = p.chunkFirst.length;
    if (p.count === 0) continue;
    p.emptyMs = Math.round(p.firstPtsMs - startMs);
    p.editMs = Math.round(((p.presentEnd - p.firstCto) * MOVIE_TIMESCALE) / p.timescale);
    durationMs = Math.max(durationMs, p.emptyMs + p.editMs);
    for (let c = 0; c < chunks; c++) payload += p.chunkBytes[c]!;
    if (p.chunkMs[chunks - 1]! >= lastChunkMs) {
      lastChunkMs = p.chunkMs[chunks - 1]!;
      lastChunkBytes = p.chunkBytes[chunks - 1]!;
    }
  }
  const mdatHeader = payload + 8 > U32_MAX ? 16 : 8;

  // The header's size depends on stco vs co64, so try the 32-bit table first.
  const ftypBox = ftyp(plans);
  const nextTrackId = Math.max(...ids) + 1;
  const build = (co64: boolean): BoxPart => box('moov', mvhd(durationMs, nextTrackId), ...plans.map((p) => trak(p, co64, opts.firstFrames)));
  let moov = build(false);
  if (ftypBox.size + moov.size + mdatHeader + payload - lastChunkBytes > U32_MAX) moov = build(true);
  const dataStart = ftypBox.size + moov.size + mdatHeader;

  // mdat order: merge the tracks' chunks by first decode time (ties: input order).
  const order = { track: new Uint8Array(total), sample: new Uint32Array(total), offset: new Float64Array(total) };
  const next = new Uint32Array(plans.length);
  let k = 0;
  let pos = dataStart;
  for (;;) {
    let best = -1;
    let bestMs = Infinity;
    for (let t = 0; t < plans.length; t++) {
      const p = plans[t]!;
      const c = next[t]!;
      if (c < p.chunkMs.length && p.chunkMs[c]! < bestMs) {
        bestMs = p.chunkMs[c]!;
        best = t;
      }
    }
    if (best < 0) break;
    const p = plans[best]!;
    const c = next[best]!++;
    p.chunkOffset[c] = pos;
    const end = c + 1 < p.chunkFirst.length ? p.chunkFirst[c + 1]! : p.count;
    for (let i = p.chunkFirst[c]!; i < end; i++) {
      order.track[k] = best;
      order.sample[k] = i;
      order.offset[k++] = pos;
      pos += p.sizes[i]!;
    }
  }
  const totalBytes = pos;

  const mdatSize = payload + mdatHeader;
  const mdat = fields(mdatHeader, (w) => {
    if (mdatHeader === 16) w.u32(1).bytes(Buffer.from('mdat', 'latin1')).u64(mdatSize);
    else w.u32(mdatSize).bytes(Buffer.from('mdat', 'latin1'));
  });
  const header = serialize(ftypBox, moov, mdat);
  const offsets = order.offset;

  return {
    header,
    totalBytes,
    order,
    startMs,
    durationMs,
    sampleAt(at: number): number {
      if (!(at >= dataStart && at < totalBytes)) return -1;
      // The last sample starting at or before `at` (zero-size samples before it hold no byte).
      let lo = 0;
      let hi = total - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (offsets[mid]! <= at) lo = mid;
        else hi = mid - 1;
      }
      return lo;
    },
  };
}
