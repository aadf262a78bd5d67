// MP4 file source against ffmpeg-made files (H.264 with B-frames + AAC, HEVC, MOV, fragmented
// MP4 and a moov-first file cut short): scan() equals readFilePackets, and readFrom(bpos) on a
// fresh source gives scan()'s packets from that bpos on, for several keyframes.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runOk, tmpDir } from '../helpers.js';
import { openMp4Source } from '../../src/inputs/files/mp4.js';
import { checkReadFrom, checkScanMatchesLegacy, keyPositions, scanFile } from '../unit/file-source-common.js';

const dir = tmpDir('haze-fs-mp4-int-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const VIDEO_IN = ['-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25:duration=3'];
const AUDIO_IN = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=3'];
const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '2', '-g', '25', '-pix_fmt', 'yuv420p'];

async function make(name: string, args: string[]): Promise<string> {
  const file = path.join(dir, name);
  await runOk('ffmpeg', ['-v', 'error', '-y', ...VIDEO_IN, ...AUDIO_IN, ...args, file], { timeoutMs: 120_000 });
  return file;
}

async function roundTrip(file: string): Promise<void> {
  const s = await checkScanMatchesLegacy(openMp4Source, file);
  const video = s.tracks.find((t) => t.type === 'video');
  const keys = keyPositions(s, 6, video?.id);
  assert.ok(keys.length >= 3, `${path.basename(file)}: several keyframes`);
  const audio = s.packets.filter((p) => p.trackId !== video?.id);
  await checkReadFrom(openMp4Source, file, s, [...keys, audio[Math.floor(audio.length / 2)]!.bpos]);
}

test('H.264 with B-frames + AAC (.mp4)', async () => {
  const file = await make('h264.mp4', [...X264, '-c:a', 'aac', '-b:a', '64k']);
  await roundTrip(file);
  const s = await scanFile(openMp4Source, file);
  assert.ok(s.packets.some((p) => p.offsetMs > 0), 'B-frames give composition offsets');
});

test('HEVC + AAC (.mov)', async () => {
  await roundTrip(await make('hevc.mov', ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error:keyint=25:bframes=2', '-tag:v', 'hvc1', '-c:a', 'aac']));
});

test('fragmented MP4 (moof per keyframe)', async () => {
  const file = await make('frag.mp4', [...X264, '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov']);
  await roundTrip(file);
});

test('moov-first file cut inside the mdat: the samples present, with a warning', async () => {
  const file = await make('fast.mp4', [...X264, '-c:a', 'aac', '-movflags', 'faststart']);
  const whole = await scanFile(openMp4Source, file);
  const cut = path.join(dir, 'fast-cut.mp4');
  const size = fs.statSync(file).size;
  fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, size - 20_000));
  const s = await scanFile(openMp4Source, cut);
  assert.ok(s.packets.length > 0 && s.packets.length < whole.packets.length);
  assert.ok(s.warnings.some((w) => w.includes('past the end')), s.warnings.join('; '));
  for (const p of s.packets) assert.ok(p.bpos + p.data.length <= size - 20_000);
});

test('fragmented recording cut inside a moof: the complete fragments, with a warning', async () => {
  const file = await make('frag2.mp4', [...X264, '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov']);
  const bytes = fs.readFileSync(file);
  const lastMoof = bytes.lastIndexOf('moof') - 4;
  const cut = path.join(dir, 'frag-cut.mp4');
  fs.writeFileSync(cut, bytes.subarray(0, lastMoof + 20));
  const s = await scanFile(openMp4Source, cut);
  assert.ok(s.packets.length > 0);
  assert.ok(s.warnings.some((w) => w.includes(`inside a moof at byte ${lastMoof}`)), s.warnings.join('; '));
});
