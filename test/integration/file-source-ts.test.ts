// MPEG-TS / M2TS file source against ffmpeg-made files (H.264 with B-frames + AAC, H.264 + MP3,
// HEVC + AAC, a file starting at 10 s, one crossing the 33-bit PTS wrap, M2TS with 192-byte
// packets): scan() equals readFilePackets, bpos are TS packet starts, and readFrom(bpos) on a
// fresh source gives scan()'s packets from that bpos on, for several keyframes.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runOk, tmpDir } from '../helpers.js';
import { openTsSource } from '../../src/inputs/files/ts.js';
import { checkReadFrom, checkScanMatchesLegacy, keyPositions, scanFile, type Scanned } from '../unit/file-source-common.js';

const dir = tmpDir('haze-fs-ts-int-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const VIDEO_IN = ['-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25:duration=4'];
const AUDIO_IN = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=4'];
const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '2', '-g', '25', '-pix_fmt', 'yuv420p'];

async function make(name: string, args: string[]): Promise<string> {
  const file = path.join(dir, name);
  await runOk('ffmpeg', ['-v', 'error', '-y', ...VIDEO_IN, ...AUDIO_IN, ...args, file], { timeoutMs: 120_000 });
  return file;
}

async function roundTrip(file: string, stride = 188): Promise<Scanned> {
  const s = await checkScanMatchesLegacy(openTsSource, file);
  const bytes = fs.readFileSync(file);
  for (const bpos of new Set(s.packets.map((p) => p.bpos))) {
    assert.equal(bytes[bpos], 0x47, `bpos ${bpos} is a sync byte`);
    assert.equal((bpos - (stride === 192 ? 4 : 0)) % stride, 0, `bpos ${bpos} on the packet grid`);
  }
  const video = s.tracks.find((t) => t.type === 'video')!;
  const keys = keyPositions(s, 6, video.id);
  assert.ok(keys.length >= 3, `${path.basename(file)}: several keyframes`);
  const audio = s.packets.filter((p) => p.trackId !== video.id);
  const more = audio.length > 0 ? [audio[Math.floor(audio.length / 2)]!.bpos] : [];
  await checkReadFrom(openTsSource, file, s, [...keys, ...more], true);
  return s;
}

test('H.264 with B-frames + AAC (.ts)', async () => {
  const s = await roundTrip(await make('h264.ts', [...X264, '-c:a', 'aac']));
  assert.ok(s.packets.some((p) => p.offsetMs > 0));
});

test('H.264 + MP3 (.ts)', async () => {
  await roundTrip(await make('mp3.ts', [...X264, '-c:a', 'libmp3lame']));
});

test('HEVC + AAC (.ts)', async () => {
  await roundTrip(await make('hevc.ts', ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error:keyint=25:bframes=2', '-c:a', 'aac']));
});

test('timestamps starting at 10 s stay absolute from any position', async () => {
  const s = await roundTrip(await make('late.ts', [...X264, '-c:a', 'aac', '-output_ts_offset', '10']));
  assert.ok(Math.min(...s.packets.map((p) => p.timeMs)) >= 9900);
});

test('across the 33-bit PTS wrap: times keep counting up from any position', async () => {
  // 2^33 / 90000 = 95443.72 s: start 2 s before the wrap.
  const s = await roundTrip(await make('wrap.ts', [...X264, '-c:a', 'aac', '-output_ts_offset', '95441.7']));
  const times = s.packets.map((p) => p.timeMs);
  assert.ok(Math.max(...times) > 95443_800, 'past the wrap');
  assert.ok(Math.min(...times) > 95_000_000, 'never wrapped back');
});

test('M2TS with 192-byte packets (.m2ts)', async () => {
  const file = await make('bd.m2ts', [...X264, '-c:a', 'ac3', '-f', 'mpegts', '-mpegts_m2ts_mode', '1']);
  const s = await roundTrip(file, 192);
  assert.deepEqual(s.tracks.map((t) => t.codec).sort(), ['AC3', 'H264']);
});

test('a file cut inside a PES ends quietly', async () => {
  const file = await make('cut-src.ts', [...X264, '-c:a', 'aac']);
  const whole = await scanFile(openTsSource, file);
  const cut = path.join(dir, 'cut.ts');
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6) + 100));
  const s = await scanFile(openTsSource, cut);
  assert.ok(s.packets.length > 0 && s.packets.length < whole.packets.length);
});
