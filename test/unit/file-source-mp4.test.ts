// MP4 file source on a real file (MistServer's fixture small.mp4, ffmpeg-made): scan() equals
// readFilePackets, readFrom(bpos) on fresh sources equals scan() from there, reads are batched
// over adjacent samples, and random / mutated / truncated files give only HazeErrors naming
// the file.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, tmpDir } from '../helpers.js';
import { openMp4Source } from '../../src/inputs/files/mp4.js';
import { isHazeError } from '../../src/util/errors.js';
import { checkReadFrom, checkScanMatchesLegacy, fuzzSource, keyPositions, readAll, scanFile } from './file-source-common.js';

const small = path.join(mistFixtures, 'small.mp4');
const dir = tmpDir('haze-fs-mp4-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('scan() equals readFilePackets and every packet has its sample offset as bpos', async () => {
  const s = await checkScanMatchesLegacy(openMp4Source, small);
  assert.equal(s.packets.length, 120 + 189);
  for (const p of s.packets) assert.ok(p.bpos > 0 && p.bpos < fs.statSync(small).size);
  assert.equal(new Set(s.packets.map((p) => p.bpos)).size, s.packets.length, 'one sample per offset');
});

test('readFrom(bpos) on a fresh source equals scan() from that packet on (video keys, audio packets)', async () => {
  const s = await scanFile(openMp4Source, small);
  const video = s.tracks.find((t) => t.type === 'video')!.id;
  const audio = s.packets.filter((p) => p.trackId !== video);
  await checkReadFrom(openMp4Source, small, s, [...keyPositions(s, 8, video), audio[0]!.bpos, audio[100]!.bpos, s.packets.at(-1)!.bpos]);
});

test('adjacent samples come from one read', async () => {
  const src = await openMp4Source(small);
  try {
    const packets = await readAll(src, 0, []);
    const buffers = new Set(packets.map((p) => p.data.buffer));
    assert.ok(buffers.size < packets.length / 4, `${buffers.size} reads for ${packets.length} samples`);
  } finally {
    await src.close();
  }
});

test('a missing file is HAZE_ERR_NOT_FOUND, garbage HAZE_ERR_MALFORMED, both naming the file; closed sources refuse', async () => {
  const missing = path.join(dir, 'none.mp4');
  await assert.rejects(openMp4Source(missing), (e: unknown) => isHazeError(e) && e.code === 'HAZE_ERR_NOT_FOUND' && e.message.includes(missing));
  const junk = path.join(dir, 'junk.mp4');
  fs.writeFileSync(junk, Buffer.alloc(100, 7));
  await assert.rejects(openMp4Source(junk), (e: unknown) => isHazeError(e) && e.message.includes(junk));
  const src = await openMp4Source(small);
  await src.close();
  await src.close();
  await assert.rejects(readAll(src, 0, []), (e: unknown) => isHazeError(e) && e.code === 'HAZE_ERR_CLOSED');
});

test('a file cut before its moov (moov at the end) is an error naming the file', async () => {
  const cut = path.join(dir, 'cut.mp4');
  const whole = fs.readFileSync(small);
  fs.writeFileSync(cut, whole.subarray(0, whole.indexOf('moov') - 4));
  await assert.rejects(openMp4Source(cut), (e: unknown) => isHazeError(e) && e.code === 'HAZE_ERR_MALFORMED' && e.message.includes(cut));
});

test('fuzz: random, mutated and truncated files give packets or HazeErrors naming the file', async () => {
  await fuzzSource(openMp4Source, fs.readFileSync(small), dir, 'mp4', 150);
});
