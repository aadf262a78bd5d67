// MPEG-TS file source on a file made in-process (small.mp4's H.264 with B-frames + AAC through
// Haze's TsMuxer, also shifted to cross the 33-bit PTS wrap): scan() equals readFilePackets,
// readFrom(bpos) on fresh sources gives scan()'s packets from there (after at most a few of
// scan()'s packets just before, PES packets interleave), and random / mutated / truncated
// files give only HazeErrors naming the file.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, tmpDir } from '../helpers.js';
import { openTsSource } from '../../src/inputs/files/ts.js';
import { openMp4Source } from '../../src/inputs/files/mp4.js';
import { TsMuxer } from '../../src/containers/ts/mux.js';
import { isHazeError } from '../../src/util/errors.js';
import { checkReadFrom, checkScanMatchesLegacy, fuzzSource, keyPositions, readAll, scanFile } from './file-source-common.js';

const dir = tmpDir('haze-fs-ts-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const plainTs = path.join(dir, 'small.ts');
const wrapTs = path.join(dir, 'wrap.ts');
/** 2^33 ticks in ms, rounded down, minus 2 s: the clock wraps 2 s into the file. */
const WRAP_START_MS = Math.floor(2 ** 33 / 90) - 2000;

before(async () => {
  const s = await scanFile(openMp4Source, path.join(mistFixtures, 'small.mp4'));
  for (const [file, shift] of [[plainTs, 0], [wrapTs, WRAP_START_MS]] as const) {
    const mux = new TsMuxer(s.tracks);
    fs.writeFileSync(file, Buffer.concat(s.packets.map((p) => mux.mux({ ...p, timeMs: p.timeMs + shift }))));
  }
});

test('scan() equals readFilePackets; readFrom(bpos) from keyframes and audio packets', async () => {
  const s = await checkScanMatchesLegacy(openTsSource, plainTs);
  const bytes = fs.readFileSync(plainTs);
  for (const p of s.packets) assert.equal(bytes[p.bpos], 0x47);
  const video = s.tracks.find((t) => t.type === 'video')!.id;
  const audio = s.packets.filter((p) => p.trackId !== video);
  await checkReadFrom(openTsSource, plainTs, s, [...keyPositions(s, 6, video), audio[10]!.bpos, audio.at(-1)!.bpos], true);
});

test('a file crossing the 33-bit wrap keeps counting from any position', async () => {
  const s = await checkScanMatchesLegacy(openTsSource, wrapTs);
  const times = s.packets.map((p) => p.timeMs);
  assert.ok(Math.max(...times) > WRAP_START_MS + 3000 && Math.min(...times) >= WRAP_START_MS - 200);
  await checkReadFrom(openTsSource, wrapTs, s, keyPositions(s, 6), true);
});

test('a missing file is HAZE_ERR_NOT_FOUND, a non-TS file HAZE_ERR_MALFORMED, naming the file; closed sources refuse', async () => {
  const missing = path.join(dir, 'none.ts');
  await assert.rejects(openTsSource(missing), (e: unknown) => isHazeError(e) && e.code === 'HAZE_ERR_NOT_FOUND' && e.message.includes(missing));
  const junk = path.join(dir, 'junk.ts');
  fs.writeFileSync(junk, Buffer.alloc(100_000, 1));
  await assert.rejects(openTsSource(junk), (e: unknown) => isHazeError(e) && e.code === 'HAZE_ERR_MALFORMED' && e.message.includes(junk));
  const src = await openTsSource(plainTs);
  await src.close();
  await src.close();
  await assert.rejects(readAll(src, 0, []), (e: unknown) => isHazeError(e) && e.code === 'HAZE_ERR_CLOSED');
});

test('fuzz: random, mutated and truncated files give packets or HazeErrors naming the file', async () => {
  await fuzzSource(openTsSource, fs.readFileSync(plainTs), dir, 'ts', 100);
});
