// DTSC files as Haze writes them: a first header without index whose `moreheader` is patched to
// point at the complete header appended at the end; packets carry their file offsets as bpos.
// Read back: the chain leads to the indexed header, the packets are the source's, the index
// is the one the builder makes from the same packets; a file still being written (moreheader 0)
// reads as its first header; broken chains are errors.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { isHaze, mistFixtures } from '../helpers.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { DtscFileWriter, readDtscFileHeader, type ReadAt } from '../../src/containers/dtsc/file.js';
import { DtscFrameReader } from '../../src/containers/dtsc/packets.js';
import { DtscIndexBuilder } from '../../src/containers/dtsc/index-builder.js';

function reader(file: Buffer): ReadAt {
  return async (position, length) => file.subarray(position, Math.min(file.length, position + length));
}

function writeFile(): { file: Buffer; growing: Buffer; flv: ReturnType<typeof parseFlvFile> } {
  const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
  const w = new DtscFileWriter({ tracks: flv.tracks });
  const parts = [w.header(), ...flv.packets.map((p) => w.packet(p))];
  const growing = Buffer.concat(parts);
  const { trailer, patch } = w.finish();
  const file = Buffer.concat([growing, trailer]);
  patch.bytes.copy(file, patch.position);
  return { file, growing, flv };
}

test('a written DTSC file reads back: the chain, the packets, the index', async () => {
  const { file, flv } = writeFile();
  const { meta, dataStart, headerAt } = await readDtscFileHeader(reader(file), file.length);
  assert.ok(headerAt > dataStart, 'the complete header is at the end');
  assert.equal(meta.vod, true);
  assert.deepEqual(meta.tracks.map((t) => t.codec), flv.tracks.map((t) => t.codec));

  const frames = new DtscFrameReader().push(file.subarray(dataStart, headerAt));
  const packets = frames.filter((f) => f.kind === 'packet');
  assert.equal(packets.length, flv.packets.length);
  const expected = new DtscIndexBuilder();
  for (const t of flv.tracks) expected.addTrack(t.id, t.type === 'video');
  let offset = dataStart;
  packets.forEach((f, i) => {
    const src = flv.packets[i]!;
    assert.ok(f.kind === 'packet');
    assert.equal(f.packet.trackId, src.trackId);
    assert.equal(f.packet.timeMs, src.timeMs);
    assert.equal(f.packet.offsetMs, src.offsetMs);
    assert.deepEqual(f.packet.data, src.data);
    assert.equal(f.bpos, offset, 'bpos is the frame offset in the file');
    // only video keeps its keyframe flags
    assert.equal(f.packet.keyframe, src.keyframe && flv.tracks.find((t) => t.id === src.trackId)!.type === 'video');
    expected.add({ trackId: src.trackId, timeMs: src.timeMs, offsetMs: src.offsetMs, keyframe: src.keyframe, size: src.data.length, bpos: offset });
    offset += f.raw.length;
  });
  for (const t of meta.tracks) {
    const idx = expected.track(t.id)!;
    assert.deepEqual(t.tables, idx.tables, t.codec);
    assert.deepEqual([t.firstMs, t.lastMs, t.bps, t.maxBps], [idx.firstMs, idx.lastMs, idx.bps, idx.maxBps]);
    // every key points at a keyframe's frame (video) or a packet (audio) of its track
    for (const k of idx.tables.keys) {
      const f = new DtscFrameReader().push(file.subarray(k.bpos, k.bpos + 1_000_000))[0]!;
      assert.ok(f.kind === 'packet' && f.packet.trackId === t.id && f.packet.timeMs === k.timeMs);
    }
  }
});

test('a file still being written reads as its first header; broken chains are errors', async () => {
  const { file, growing } = writeFile();
  const live = await readDtscFileHeader(reader(growing), growing.length);
  assert.equal(live.headerAt, 0);
  assert.ok(live.meta.tracks.every((t) => t.tables === undefined));

  assert.throws(() => new DtscFileWriter({ tracks: [] }).finish(), isHaze, 'no header written');
  // a moreheader pointing past the end, into the first header, or at packet data
  for (const target of [file.length + 10, 5, live.dataStart]) {
    const bad = Buffer.from(file);
    const at = live.dataStart - 11;
    bad.writeBigInt64BE(BigInt(target), at);
    await assert.rejects(readDtscFileHeader(reader(bad), bad.length), isHaze, String(target));
  }
});

test('random bytes and truncations give a header or a HazeError', async () => {
  const { file } = writeFile();
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)), fc.integer({ min: 0, max: file.length }).map((n) => file.subarray(0, n))), async (bytes) => {
      try {
        await readDtscFileHeader(reader(bytes), bytes.length);
      } catch (err) {
        assert.ok(isHaze(err), String(err));
      }
    }),
    { numRuns: 200 },
  );
});
