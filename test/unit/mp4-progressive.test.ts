// Progressive MP4 layout on synthetic sample tables: the moov is read back with Haze's MP4
// reader (every sample's time, offset, size, keyframe flag and file position), the tables are
// checked box by box (stts runs, ctts, stss, stco/co64, elst), the mdat order and the byte ->
// sample lookup are checked for every sample, a > 4 GiB layout gets co64 and an mdat
// largesize, and random tables give a consistent layout or a HazeError.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isHaze } from '../helpers.js';
import { openMp4, type ByteSource, type Mp4Index } from '../../src/containers/mp4/demux.js';
import { findBox, findBoxes, readBoxes, type Mp4Box } from '../../src/containers/mp4/box.js';
import { layoutProgressiveMp4, type ProgressiveLayout, type ProgressiveTrackInput } from '../../src/containers/mp4/progressive.js';
import { HazeError } from '../../src/util/errors.js';
import type { AudioTrack, MetaTrack, VideoTrack } from '../../src/media/types.js';

// A real avcC (x264 baseline 64x48) and an AAC-LC 44.1 kHz stereo AudioSpecificConfig.
const AVCC = Buffer.from('0142c00affe100156742c00ada11ec0440000003004000000c83c489a801000468ce0fc8', 'hex');
const ASC_44100 = Buffer.from('1210', 'hex');
const ASC_48000 = Buffer.from('1190', 'hex');

function video(id = 1): VideoTrack {
  return { type: 'video', codec: 'H264', id, init: AVCC, bps: 0, lang: 'und', width: 64, height: 48, fpks: 25000 };
}

function aac(id = 2, asc = ASC_44100, rate = 44100): AudioTrack {
  return { type: 'audio', codec: 'AAC', id, init: asc, bps: 0, lang: 'eng', rate, channels: 2, size: 16 };
}

interface Table {
  timeMs: number[];
  offsetMs: number[];
  size: number[];
  key: boolean[];
}

function input(track: VideoTrack | AudioTrack | MetaTrack, t: Table): ProgressiveTrackInput {
  return {
    track,
    count: t.timeMs.length,
    timeMs: (i) => t.timeMs[i]!,
    offsetMs: (i) => t.offsetMs[i]!,
    size: (i) => t.size[i]!,
    keyframe: (i) => t.key[i]!,
  };
}

/** 25 fps video with two B-frames (decode I P B B P B B ..., presented two frames late), a keyframe every 25. */
function videoTable(n: number, startMs = 0): Table {
  const t: Table = { timeMs: [], offsetMs: [], size: [], key: [] };
  for (let i = 0; i < n; i++) {
    t.timeMs.push(startMs + i * 40);
    t.offsetMs.push(i === 0 ? 80 : i % 3 === 1 ? 160 : 40);
    t.size.push(100 + ((i * 7919) % 900));
    t.key.push(i % 25 === 0);
  }
  return t;
}

/** AAC frames of 1024 samples at `rate`, ms floored from the exact sample times. */
function audioTable(n: number, rate: number, startMs = 0): Table {
  const t: Table = { timeMs: [], offsetMs: [], size: [], key: [] };
  for (let i = 0; i < n; i++) {
    t.timeMs.push(startMs + Math.floor((i * 1024 * 1000) / rate));
    t.offsetMs.push(0);
    t.size.push(200 + (i % 13));
    t.key.push(true);
  }
  return t;
}

/** The layout's header as a file: the header bytes, then zeros up to totalBytes. */
function headerSource(l: ProgressiveLayout): ByteSource {
  return {
    size: l.totalBytes,
    read(pos: number, length: number): Promise<Buffer> {
      const n = Math.max(0, Math.min(length, l.totalBytes - pos, 1 << 20));
      const out = Buffer.alloc(n);
      if (pos < l.header.length) l.header.copy(out, 0, pos, Math.min(l.header.length, pos + n));
      return Promise.resolve(out);
    },
  };
}

function moovOf(l: ProgressiveLayout): Buffer {
  const at = l.header.readUInt32BE(0); // after the ftyp
  const moov = readBoxes(l.header.subarray(at, at + l.header.readUInt32BE(at)))[0];
  assert.equal(moov?.type, 'moov');
  return moov.payload;
}

/** The stbl children of the n-th trak. */
function stblOf(l: ProgressiveLayout, n: number): Map<string, Mp4Box> {
  const trak = findBoxes(moovOf(l), [], 'trak')[n]!;
  const stbl = findBox(trak.payload, 'mdia', 'minf', 'stbl')!;
  return new Map(readBoxes(stbl.payload).map((b) => [b.type, b]));
}

/** A FullBox table's u32 words after version/flags. */
function words(b: Mp4Box): number[] {
  const out: number[] = [];
  for (let o = 4; o + 4 <= b.payload.length; o += 4) out.push(b.payload.readUInt32BE(o));
  return out;
}

function elst(l: ProgressiveLayout, n: number): { version: number; edits: [number, number][] } {
  const trak = findBoxes(moovOf(l), [], 'trak')[n]!;
  const e = findBox(trak.payload, 'edts', 'elst')!;
  const version = e.payload[0]!;
  const count = e.payload.readUInt32BE(4);
  const edits: [number, number][] = [];
  for (let i = 0, o = 8; i < count; i++) {
    if (version === 1) {
      edits.push([Number(e.payload.readBigUInt64BE(o)), Number(e.payload.readBigInt64BE(o + 8))]);
      o += 20;
    } else {
      edits.push([e.payload.readUInt32BE(o), e.payload.readInt32BE(o + 4)]);
      o += 12;
    }
  }
  return { version, edits };
}

async function readBack(l: ProgressiveLayout, editList: 'apply' | 'ignore' = 'ignore'): Promise<Mp4Index> {
  const idx = await openMp4(headerSource(l), { editList });
  assert.deepEqual(idx.warnings, []);
  return idx;
}

/** Every sample read back equals the input (times relative to the track's first), at its `order` offset. */
async function checkRoundTrip(l: ProgressiveLayout, inputs: readonly ProgressiveTrackInput[]): Promise<void> {
  const idx = await readBack(l);
  const where = new Map<string, number>();
  for (let k = 0; k < l.order.track.length; k++) where.set(`${l.order.track[k]}/${l.order.sample[k]}`, l.order.offset[k]!);
  inputs.forEach((inp, ti) => {
    const ours = idx.samples.filter((s) => s.trackId === inp.track.id);
    assert.equal(ours.length, inp.count, `track ${ti}: sample count`);
    const base = inp.count > 0 ? inp.timeMs(0) : 0;
    for (let i = 0; i < inp.count; i++) {
      const s = ours[i]!;
      assert.equal(s.timeMs, inp.timeMs(i) - base, `track ${ti} sample ${i}: dts`);
      assert.equal(s.offsetMs, inp.offsetMs(i), `track ${ti} sample ${i}: offset`);
      assert.equal(s.size, inp.size(i), `track ${ti} sample ${i}: size`);
      assert.equal(s.keyframe, inp.track.type !== 'video' || inp.keyframe(i), `track ${ti} sample ${i}: keyframe`);
      assert.equal(s.pos, where.get(`${ti}/${i}`), `track ${ti} sample ${i}: file offset`);
    }
  });
}

/** order is a permutation of all samples, contiguous from the header on, each track in decode order. */
function checkOrder(l: ProgressiveLayout, inputs: readonly ProgressiveTrackInput[]): void {
  const total = inputs.reduce((a, t) => a + t.count, 0);
  assert.equal(l.order.track.length, total);
  const nextSample = inputs.map(() => 0);
  let pos = l.header.length;
  for (let k = 0; k < total; k++) {
    const t = l.order.track[k]!;
    const s = l.order.sample[k]!;
    assert.equal(s, nextSample[t], `order ${k}: track ${t} in decode order`);
    nextSample[t]!++;
    assert.equal(l.order.offset[k], pos, `order ${k}: offset`);
    pos += inputs[t]!.size(s);
  }
  assert.equal(pos, l.totalBytes);
  assert.equal(l.header.readUInt32BE(l.header.length - 8), l.totalBytes - l.header.length + 8, 'mdat size');
  assert.equal(l.header.toString('latin1', l.header.length - 4), 'mdat');
}

function checkSampleAt(l: ProgressiveLayout, inputs: readonly ProgressiveTrackInput[]): void {
  assert.equal(l.sampleAt(0), -1);
  assert.equal(l.sampleAt(l.header.length - 1), -1);
  assert.equal(l.sampleAt(l.totalBytes), -1);
  assert.equal(l.sampleAt(-1), -1);
  for (let k = 0; k < l.order.track.length; k++) {
    const size = inputs[l.order.track[k]!]!.size(l.order.sample[k]!);
    if (size === 0) continue;
    const first = l.order.offset[k]!;
    assert.equal(l.sampleAt(first), k, `sample ${k}: first byte`);
    assert.equal(l.sampleAt(first + size - 1), k, `sample ${k}: last byte`);
  }
}

test('video with B-frames and 44.1 kHz AAC: the moov reads back to the input, sample for sample', async () => {
  const v = input(video(), videoTable(120, 10_000));
  const a = input(aac(), audioTable(200, 44100, 10_000));
  const l = layoutProgressiveMp4([v, a]);
  assert.deepEqual(readBoxes(l.header.subarray(0, l.header.length - 8)).map((b) => b.type), ['ftyp', 'moov']);
  checkOrder(l, [v, a]);
  checkSampleAt(l, [v, a]);
  await checkRoundTrip(l, [v, a]);

  const vt = stblOf(l, 0);
  assert.deepEqual([...vt.keys()], ['stsd', 'stts', 'ctts', 'stss', 'stsc', 'stsz', 'stco']);
  assert.deepEqual(words(vt.get('stts')!), [1, 120, 3600], 'one run of 40 ms at 90 kHz');
  assert.equal(vt.get('ctts')!.payload[0], 0, 'ctts version 0');
  assert.deepEqual(words(vt.get('stss')!), [5, 1, 26, 51, 76, 101]);
  const at = stblOf(l, 1);
  assert.deepEqual([...at.keys()], ['stsd', 'stts', 'stsc', 'stsz', 'stco'], 'audio: no ctts, no stss');
  // The floored ms of 1024-sample frames give back exact 1024-sample durations.
  assert.deepEqual(words(at.get('stts')!), [1, 200, 1024]);
  assert.equal(l.startMs, 10_000);
});

test('29.97 fps in ms is laid out at 3003 ticks a frame; ms round-trip exactly', async () => {
  const t: Table = { timeMs: [], offsetMs: [], size: [], key: [] };
  for (let i = 0; i < 300; i++) {
    t.timeMs.push(Math.floor((i * 1001) / 30));
    t.offsetMs.push(i % 2 ? 0 : Math.floor(((i + 2) * 1001) / 30) - Math.floor((i * 1001) / 30));
    t.size.push(50);
    t.key.push(i === 0);
  }
  const v = input(video(), t);
  const l = layoutProgressiveMp4([v]);
  await checkRoundTrip(l, [v]);
  const tables = stblOf(l, 0);
  assert.deepEqual(words(tables.get('stts')!), [1, 300, 3003]);
  assert.deepEqual(words(tables.get('ctts')!).slice(0, 5), [300, 1, 6006, 1, 0]);
  assert.deepEqual(words(tables.get('stsz')!), [50, 300], 'equal sizes: no table');
  assert.deepEqual(words(tables.get('stss')!), [1, 1]);
});

test('edit lists: media_time is the first composition offset; later tracks get an empty edit', async () => {
  // Video decode starts with the audio, its first frame is presented 80 ms later.
  const v = input(video(), videoTable(49, 1000));
  const a = input(aac(2, ASC_48000, 48000), audioTable(100, 48000, 1000));
  const l = layoutProgressiveMp4([v, a]);
  assert.equal(l.startMs, 1000);
  assert.deepEqual(elst(l, 0), { version: 0, edits: [[80, -1], [1960, 7200]] });
  assert.deepEqual(elst(l, 1).edits, [[2133, 0]]);
  assert.equal(l.durationMs, 2133);

  // Read with the edits applied, presentation times are the input's minus startMs.
  const idx = await readBack(l, 'apply');
  const ours = idx.samples.filter((s) => s.trackId === 1);
  for (let i = 0; i < v.count; i++) {
    assert.ok(Math.abs(ours[i]!.timeMs + ours[i]!.offsetMs - (v.timeMs(i) + v.offsetMs(i) - l.startMs)) <= 1, `video pts ${i}`);
  }
  assert.equal(idx.samples.find((s) => s.trackId === 2)!.timeMs, 0);

  // A video-only B-frame stream starts with its first frame: no empty edit, no shift.
  const alone = layoutProgressiveMp4([input(video(), videoTable(10, 500))]);
  assert.deepEqual(elst(alone, 0).edits, [[400, 7200]]);
  const back = await readBack(alone, 'apply');
  assert.equal(back.samples[0]!.timeMs + back.samples[0]!.offsetMs, 0);
});

test('mdat order: ~chunkMs runs of one track, interleaved by first decode time, ties in input order', () => {
  const v = input(video(), videoTable(100));
  const a = input(aac(), audioTable(180, 44100));
  for (const chunkMs of [500, 200, 1000, 1]) {
    const l = layoutProgressiveMp4([v, a], { chunkMs });
    checkOrder(l, [v, a]);
    // Split order into runs; each run is one chunk: within chunkMs, and starts in time order.
    const runs: { track: number; firstMs: number; lastMs: number }[] = [];
    for (let k = 0; k < l.order.track.length; k++) {
      const t = l.order.track[k]!;
      const ms = [v, a][t]!.timeMs(l.order.sample[k]!);
      const last = runs[runs.length - 1];
      if (last && last.track === t && ms - last.firstMs < chunkMs) last.lastMs = ms;
      else runs.push({ track: t, firstMs: ms, lastMs: ms });
    }
    for (let r = 1; r < runs.length; r++) {
      const p = runs[r - 1]!;
      const c = runs[r]!;
      assert.ok(c.firstMs > p.firstMs || (c.firstMs === p.firstMs && c.track > p.track), `chunkMs ${chunkMs}: run ${r} out of order`);
    }
    assert.equal(runs[0]!.track, 0, 'tie at 0 ms: the first input first');
    // Each track's chunk count matches stsc/stco.
    const stco = words(stblOf(l, 1).get('stco')!);
    assert.equal(stco[0], runs.filter((r) => r.track === 1).length);
  }
  assert.throws(() => layoutProgressiveMp4([v], { chunkMs: 0 }), isHaze);
});

test('sampleAt finds every sample by its first and last byte, skipping empty samples', () => {
  const t = audioTable(50, 44100);
  t.size[3] = 0;
  t.size[4] = 0;
  t.size[49] = 0;
  const a = input(aac(), t);
  const v = input(video(), videoTable(30));
  const l = layoutProgressiveMp4([a, v], { chunkMs: 100 });
  checkSampleAt(l, [a, v]);
  const k5 = [...l.order.sample].findIndex((s, k) => l.order.track[k] === 0 && s === 5);
  assert.equal(l.sampleAt(l.order.offset[k5]!), k5, 'a byte shared with empty samples belongs to the sized one');
});

test('past 4 GiB: co64 chunk offsets and an mdat largesize, read back to the right positions', async () => {
  // 3000 video frames of ~1.5 MiB and audio: ~4.4 GiB of samples that are never allocated.
  const vt = videoTable(3000);
  vt.size = vt.size.map((s) => 1_500_000 + s);
  vt.key = vt.key.map(() => true);
  const v = input(video(), vt);
  const a = input(aac(), audioTable(5000, 44100));
  const l = layoutProgressiveMp4([v, a]);
  assert.ok(l.totalBytes > 2 ** 32);
  assert.equal(l.header.readUInt32BE(l.header.length - 16), 1, 'mdat size 1: largesize follows');
  assert.equal(l.header.toString('latin1', l.header.length - 12, l.header.length - 8), 'mdat');
  assert.equal(Number(l.header.readBigUInt64BE(l.header.length - 8)), l.totalBytes - l.header.length + 16);
  for (const n of [0, 1]) {
    const tables = stblOf(l, n);
    assert.ok(tables.has('co64') && !tables.has('stco'), `track ${n}: co64`);
  }
  assert.ok(!stblOf(l, 0).has('stss'), 'all sync: no stss');
  await checkRoundTrip(l, [v, a]);
  assert.equal(l.sampleAt(l.totalBytes - 1), l.order.track.length - 1);
  let past = 0;
  while (l.order.offset[past + 1]! <= 2 ** 32 + 12345) past++;
  assert.equal(l.sampleAt(2 ** 32 + 12345), past);

  // Just under 4 GiB keeps stco.
  const small = layoutProgressiveMp4([input(video(), { ...vt, timeMs: vt.timeMs.slice(0, 2000), offsetMs: vt.offsetMs.slice(0, 2000), size: vt.size.slice(0, 2000), key: vt.key.slice(0, 2000) })]);
  assert.ok(stblOf(small, 0).has('stco'));

  // At the boundary the deciding offset is the last chunk's start, not the file's end.
  const edge = (sizes: number[]): ProgressiveLayout => layoutProgressiveMp4([input(video(), { timeMs: [0, 40, 80], offsetMs: [0, 0, 0], size: sizes, key: [true, true, true] })], { chunkMs: 1 });
  const below = edge([2 ** 31, 2 ** 31 - 2 ** 20, 2 ** 22]);
  assert.ok(below.totalBytes > 2 ** 32 && below.order.offset[2]! < 2 ** 32);
  assert.ok(stblOf(below, 0).has('stco'), 'last chunk below 4 GiB: stco');
  await checkRoundTrip(below, [input(video(), { timeMs: [0, 40, 80], offsetMs: [0, 0, 0], size: [2 ** 31, 2 ** 31 - 2 ** 20, 2 ** 22], key: [true, true, true] })]);
  const above = edge([2 ** 31, 2 ** 31, 2 ** 22]);
  assert.ok(above.order.offset[2]! > 2 ** 32);
  assert.ok(stblOf(above, 0).has('co64'), 'last chunk past 4 GiB: co64');
});

test('ctts: absent without offsets, version 1 for negative offsets', async () => {
  const t = videoTable(20);
  const flat = input(video(), { ...t, offsetMs: t.offsetMs.map(() => 0) });
  assert.ok(!stblOf(layoutProgressiveMp4([flat]), 0).has('ctts'));
  const neg = input(video(), { ...t, offsetMs: t.offsetMs.map((o, i) => (i === 3 ? -40 : o)) });
  const l = layoutProgressiveMp4([neg]);
  assert.equal(stblOf(l, 0).get('ctts')!.payload[0], 1);
  await checkRoundTrip(l, [neg]);
});

test('an empty track next to others, and one-sample tracks', async () => {
  const empty = input(aac(3), { timeMs: [], offsetMs: [], size: [], key: [] });
  const one = input(video(), { timeMs: [5], offsetMs: [0], size: [10], key: [true] });
  const l = layoutProgressiveMp4([one, empty]);
  await checkRoundTrip(l, [one, empty]);
  assert.deepEqual(words(stblOf(l, 0).get('stts')!), [1, 1, 3600], 'one frame at 25 fps');
  checkSampleAt(l, [one, empty]);
});

test('bad input is a HazeError', () => {
  const v = videoTable(5);
  const bad = (t: Partial<Table>, track: VideoTrack | MetaTrack = video()) => () => layoutProgressiveMp4([input(track, { ...v, ...t })]);
  assert.throws(bad({ timeMs: [0, 40, 30, 80, 120] }), isHaze, 'decreasing time');
  assert.throws(bad({ timeMs: [0, 40, NaN, 80, 120] }), isHaze, 'NaN time');
  assert.throws(bad({ size: [1, -1, 1, 1, 1] }), isHaze, 'negative size');
  assert.throws(bad({ size: [1, 1.5, 1, 1, 1] }), isHaze, 'fractional size');
  assert.throws(bad({ size: [1, 2 ** 32, 1, 1, 1] }), isHaze, 'size past 32 bits');
  assert.throws(bad({ offsetMs: [0, Infinity, 0, 0, 0] }), isHaze, 'infinite offset');
  assert.throws(bad({}, { type: 'meta', codec: 'JSON', id: 1, init: Buffer.alloc(0), bps: 0, lang: 'und' }), isHaze, 'meta track');
  assert.throws(() => layoutProgressiveMp4([]), isHaze);
  assert.throws(() => layoutProgressiveMp4([input(video(1), v), input(video(1), v)]), isHaze, 'duplicate id');
  assert.throws(() => layoutProgressiveMp4([input(video(0), v)]), isHaze, 'track id 0');
  assert.throws(() => layoutProgressiveMp4([{ ...input(video(), v), count: -1 }]), isHaze);
});

test('random sample tables: a consistent layout or a HazeError', async () => {
  const table = fc.array(fc.record({ dt: fc.integer({ min: 0, max: 100 }), off: fc.integer({ min: 0, max: 200 }), size: fc.integer({ min: 0, max: 3000 }), key: fc.boolean() }), { maxLength: 60 });
  await fc.assert(
    fc.asyncProperty(table, table, fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 1, max: 1000 }), async (vs, as, start, chunkMs) => {
      const mk = (rows: typeof vs, audio: boolean): Table => {
        const t: Table = { timeMs: [], offsetMs: [], size: [], key: [] };
        let ms = start;
        for (const r of rows) {
          ms += r.dt;
          t.timeMs.push(ms);
          t.offsetMs.push(audio ? 0 : r.off);
          t.size.push(r.size);
          t.key.push(audio || r.key);
        }
        return t;
      };
      const inputs = [input(video(), mk(vs, false)), input(aac(), mk(as, true))];
      let l: ProgressiveLayout;
      try {
        l = layoutProgressiveMp4(inputs, { chunkMs });
      } catch (e) {
        if (e instanceof HazeError) return;
        throw e;
      }
      checkOrder(l, inputs);
      checkSampleAt(l, inputs);
      await checkRoundTrip(l, inputs);
    }),
    { numRuns: 150 },
  );
});

test('a 10-minute moov (15000 video + 28000 audio samples) builds in well under 100 ms', () => {
  const v = input({ ...video(), width: 1280, height: 720 }, videoTable(15_000));
  const a = input(aac(2, ASC_48000, 48000), audioTable(28_125, 48000));
  const cpuMs = (): number => {
    const c0 = process.cpuUsage();
    layoutProgressiveMp4([v, a]);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000;
  };
  const t0 = performance.now();
  const l = layoutProgressiveMp4([v, a]);
  const coldMs = performance.now() - t0;
  const runs = [cpuMs(), cpuMs(), cpuMs(), cpuMs(), cpuMs()];
  const best = Math.min(...runs);
  console.log(`progressive moov, 10 min (15000 + 28125 samples, header ${l.header.length} bytes): first call ${coldMs.toFixed(1)} ms wall, then ${runs.map((r) => r.toFixed(1)).join(' / ')} ms CPU`);
  assert.ok(best < 100, `layout took ${best} ms CPU`);
  assert.ok(coldMs < 1000, `first layout took ${coldMs} ms`);
});
