// MP4 reader on hand-built files (64-bit sizes and offsets, stz2, signed ctts, edit lists, NAL
// length conversion), on Haze's own fMP4 writer output, and fuzzed with fast-check.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { box, fields, fullBox, serialize, type BoxChild } from '../../src/containers/mp4/box.js';
import { initSegment } from '../../src/containers/mp4/init.js';
import { FragmentWriter } from '../../src/containers/mp4/fragment.js';
import { bufferByteSource, openMp4, readSample, type ByteSource, type Mp4Index } from '../../src/containers/mp4/demux.js';
import { HazeError } from '../../src/util/errors.js';
import type { Packet, Track } from '../../src/media/types.js';

const SPS = Buffer.from('67640016acd940a02ff9610000030001000003003c8f162d96', 'hex');
const PPS = Buffer.from('68ebe3cb22c0', 'hex');

function u32s(...v: number[]): Buffer {
  return fields(v.length * 4, (w) => {
    for (const x of v) w.u32(x);
  });
}

function avcC(lengthSize: number): Buffer {
  return Buffer.concat([Buffer.from([1, 0x64, 0, 0x16, 0xfc | (lengthSize - 1), 0xe1]), u32s(SPS.length).subarray(2), SPS, Buffer.from([1]), u32s(PPS.length).subarray(2), PPS]);
}

function visualEntry(config: BoxChild): BoxChild {
  return box(
    'avc1',
    fields(78, (w) => {
      w.u32(0).u16(0).u16(1).u32(0).u32(0).u32(0).u32(0);
      w.u16(320).u16(180).u32(0x480000).u32(0x480000).u32(0).u16(1);
      for (let i = 0; i < 8; i++) w.u32(0);
      w.u16(0x18).u16(0xffff);
    }),
    config,
  );
}

/** NAL units with 2-byte lengths, as a stored sample. */
function sample2(...nals: Buffer[]): Buffer {
  return Buffer.concat(nals.flatMap((n) => [Buffer.from([n.length >> 8, n.length & 255]), n]));
}

/**
 * A progressive file: ftyp, a largesize mdat holding three H.264 samples with 2-byte NAL lengths,
 * then a moov with co64, stz2, ctts version 1 (negative), no stss, and an edit list with an
 * empty edit (100 ms = 1000 ticks) and media_time 2000 ticks: a shift of -1000 ticks.
 */
function handBuilt(): { file: Buffer; samples: Buffer[] } {
  const samples = [sample2(Buffer.from([0x65, 1, 2, 3])), sample2(Buffer.from([0x41, 9]), Buffer.from([0x41, 8, 7])), sample2(Buffer.from([0x41, 5]))];
  const ftyp = box('ftyp', Buffer.from('isom'), u32s(0), Buffer.from('isomavc1'));
  const ftypSize = ftyp.size;
  const mdatPayload = Buffer.concat(samples);
  const mdatHeader = fields(16, (w) => w.u32(1).bytes(Buffer.from('mdat')).u64(16 + mdatPayload.length));
  const firstOffset = ftypSize + 16;
  const timescale = 10000;
  const stz2 = fullBox('stz2', 0, 0, fields(8 + samples.length, (w) => {
    w.u24(0).u8(8).u32(samples.length);
    for (const s of samples) w.u8(s.length);
  }));
  const stbl = box(
    'stbl',
    fullBox('stsd', 0, 0, u32s(1), visualEntry(box('avcC', avcC(2)))),
    fullBox('stts', 0, 0, u32s(1, 3, 400)),
    fullBox('ctts', 1, 0, u32s(2, 2, 1000, 1, 0xffff_fc18 /* -1000 */)),
    fullBox('stsc', 0, 0, u32s(1, 1, 3, 1)),
    stz2,
    fullBox('co64', 0, 0, fields(12, (w) => w.u32(1).u64(firstOffset))),
  );
  const mdhd = fullBox('mdhd', 0, 0, u32s(0, 0, timescale, 1200), Buffer.from([0x15, 0xc7, 0, 0])); // 'eng'
  const hdlr = fullBox('hdlr', 0, 0, u32s(0), Buffer.from('vide'), u32s(0, 0, 0), Buffer.from('v\0'));
  const elst = fullBox('elst', 0, 0, u32s(2, 100, 0xffff_ffff, 0x10000, 1200, 2000, 0x10000));
  const tkhd = fullBox('tkhd', 0, 3, u32s(0, 0, 7, 0, 0), Buffer.alloc(60));
  // minf normally holds vmhd/dinf too; the reader needs only stbl.
  const trak = box('trak', tkhd, box('edts', elst), box('mdia', mdhd, hdlr, box('minf', stbl)));
  const mvhd = fullBox('mvhd', 0, 0, u32s(0, 0, 1000, 120), Buffer.alloc(80));
  const file = serialize(ftyp, mdatHeader, mdatPayload, box('moov', mvhd, trak));
  return { file, samples };
}

async function readAll(src: ByteSource, idx: Mp4Index): Promise<Packet[]> {
  const out: Packet[] = [];
  for (const s of idx.samples) out.push(await readSample(src, s));
  return out;
}

test('hand-built file: largesize mdat, co64, stz2, signed ctts, edit list, 2-byte NAL lengths', async () => {
  const { file, samples } = handBuilt();
  const src = bufferByteSource(file);
  const idx = await openMp4(src);
  assert.deepEqual(idx.warnings, []);
  assert.equal(idx.tracks.length, 1);
  const t = idx.tracks[0]!;
  assert.equal(t.id, 7);
  assert.equal(t.lang, 'eng');
  assert.ok(t.type === 'video' && t.codec === 'H264' && t.width === 320 && t.height === 180);
  assert.equal(t.init[4]! & 3, 3, 'avcC rewritten to 4-byte NAL lengths');
  // dts ticks 0, 400, 800 minus (2000 - 1000); composition offsets 1000, 1000, -1000 ticks.
  assert.deepEqual(
    idx.samples.map((s) => [s.timeMs, s.offsetMs, s.keyframe]),
    [
      [-100, 100, true],
      [-60, 100, true],
      [-20, -100, true],
    ],
  );
  const packets = await readAll(src, idx);
  assert.deepEqual(packets[1]!.data, Buffer.from([0, 0, 0, 2, 0x41, 9, 0, 0, 0, 3, 0x41, 8, 7]));
  assert.equal(idx.samples[0]!.pos, file.indexOf(samples[0]!));
  assert.equal(idx.samples[2]!.size, samples[2]!.length);
  const ignored = await openMp4(src, { editList: 'ignore' });
  assert.deepEqual(
    ignored.samples.map((s) => s.timeMs),
    [0, 40, 80],
  );
  assert.deepEqual(
    ignored.samples.map((s) => s.timeMs + s.offsetMs),
    [100, 140, -20],
  );
});

test('hostile counts are errors, not allocations', async () => {
  const { file } = handBuilt();
  // stz2 sample_count -> 0xffffffff
  const at = file.indexOf(Buffer.from('stz2')) + 4 + 4 + 4;
  const bad = Buffer.from(file);
  bad.writeUInt32BE(0xffff_ffff, at);
  await assert.rejects(openMp4(bufferByteSource(bad)), (e) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED');
  await assert.rejects(openMp4(bufferByteSource(Buffer.alloc(0))), (e) => e instanceof HazeError);
  // A moov claiming 4 GB in a tiny file.
  const big = serialize(box('ftyp', Buffer.from('isom'), u32s(0)), u32s(0xffff_fff0), Buffer.from('moov'));
  await assert.rejects(openMp4(bufferByteSource(big)), (e) => e instanceof HazeError && e.code === 'HAZE_ERR_SHORT_READ');
});

const video: Track = { type: 'video', codec: 'H264', id: 1, init: avcC(4), bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 };
const audio: Track = { type: 'audio', codec: 'AAC', id: 2, init: Buffer.from([0x11, 0x90]), bps: 0, lang: 'swe', rate: 48000, channels: 2, size: 16 };

function hazeFmp4(): { file: Buffer; packets: Packet[] } {
  const packets: Packet[] = [];
  const w = new FragmentWriter([video, audio]);
  const parts: Buffer[] = [initSegment([video, audio])];
  let seq = 1;
  for (let f = 0; f < 3; f++) {
    const v: Packet[] = [];
    const a: Packet[] = [];
    for (let i = 0; i < 10; i++) {
      const n = f * 10 + i;
      v.push({ trackId: 1, timeMs: 1000 + n * 40, offsetMs: i % 3 === 1 ? 80 : 0, keyframe: i === 0, data: Buffer.from([0, 0, 0, 3, i === 0 ? 0x65 : 0x41, n, f]) });
    }
    for (let i = 0; i < 19; i++) {
      const n = f * 19 + i;
      a.push({ trackId: 2, timeMs: 1000 + Math.floor((n * 1024 * 1000) / 48000), offsetMs: 0, keyframe: true, data: Buffer.from([0x21, n & 255, f]) });
    }
    parts.push(w.fragmentMulti([{ trackId: 1, packets: v }, { trackId: 2, packets: a }], seq++));
    packets.push(...v, ...a);
  }
  return { file: Buffer.concat(parts), packets };
}

test("Haze's own fMP4 writer output reads back packet for packet", async () => {
  const { file, packets } = hazeFmp4();
  const src = bufferByteSource(file);
  const idx = await openMp4(src);
  assert.deepEqual(idx.warnings, []);
  assert.ok(idx.fragmented);
  assert.deepEqual(
    idx.tracks.map((t) => [t.id, t.codec, t.lang]),
    [
      [1, 'H264', 'und'],
      [2, 'AAC', 'swe'],
    ],
  );
  const got = await readAll(src, idx);
  const key = (p: Packet): string => `${p.trackId}/${p.timeMs}/${p.offsetMs}/${p.keyframe}/${p.data.toString('hex')}`;
  const sortKey = (a: Packet, b: Packet): number => a.timeMs - b.timeMs || a.trackId - b.trackId;
  assert.deepEqual(got.map(key), [...packets].sort(sortKey).map(key));
  assert.equal(idx.durationMs >= 2160, true);
});

async function resultOrHaze(buf: Buffer): Promise<void> {
  const src = bufferByteSource(buf);
  try {
    const idx = await openMp4(src, { maxSamples: 100_000 });
    for (const s of idx.samples.slice(0, 50)) {
      try {
        await readSample(src, s);
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }
  } catch (e) {
    if (!(e instanceof HazeError)) throw e;
  }
}

test('fuzz: random bytes, mutated and truncated files give a result or a HazeError', async () => {
  const files = [handBuilt().file, hazeFmp4().file];
  const started = Date.now();
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (b) => resultOrHaze(Buffer.from(b))), { numRuns: 300 });
  await fc.assert(
    fc.asyncProperty(fc.nat(files.length - 1), fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 8 }), async (which, muts) => {
      const f = Buffer.from(files[which]!);
      for (const [at, v] of muts) f[at % f.length] = v;
      await resultOrHaze(f);
    }),
    { numRuns: 500 },
  );
  await fc.assert(
    fc.asyncProperty(fc.nat(files.length - 1), fc.nat(), async (which, cut) => {
      const f = files[which]!;
      await resultOrHaze(f.subarray(0, cut % f.length));
    }),
    { numRuns: 300 },
  );
  assert.ok(Date.now() - started < 20_000, 'fuzzing stays fast');
});
