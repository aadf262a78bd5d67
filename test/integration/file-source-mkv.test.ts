// Matroska / WebM file source against ffmpeg-made files (H.264 with B-frames + AAC, HEVC + AAC,
// H.264 + Vorbis, VP9 + Opus WebM, a file without Cues): scan() equals readFilePackets, every
// bpos is a Cluster's offset, and readFrom(bpos) on a fresh source gives scan()'s packets from
// that Cluster on, for several keyframes (decode times of B-frame video included).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runOk, tmpDir } from '../helpers.js';
import { openMkvSource } from '../../src/inputs/files/mkv.js';
import { checkReadFrom, checkScanMatchesLegacy, keyPositions, scanFile, type Scanned } from '../unit/file-source-common.js';

const dir = tmpDir('haze-fs-mkv-int-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const VIDEO_IN = ['-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25:duration=4'];
const AUDIO_IN = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=4'];
const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '2', '-g', '25', '-pix_fmt', 'yuv420p'];

async function make(name: string, args: string[], input = [...VIDEO_IN, ...AUDIO_IN]): Promise<string> {
  const file = path.join(dir, name);
  await runOk('ffmpeg', ['-v', 'error', '-y', ...input, ...args, file], { timeoutMs: 120_000 });
  return file;
}

/** Every bpos is the offset of a Cluster element (ID 1F 43 B6 75). */
function assertClusterPositions(file: string, s: Scanned): void {
  const bytes = fs.readFileSync(file);
  for (const bpos of new Set(s.packets.map((p) => p.bpos))) assert.equal(bytes.readUInt32BE(bpos), 0x1f43b675, `bpos ${bpos} is a Cluster`);
}

async function roundTrip(file: string): Promise<Scanned> {
  const s = await checkScanMatchesLegacy(openMkvSource, file);
  assertClusterPositions(file, s);
  const video = s.tracks.find((t) => t.type === 'video');
  const keys = keyPositions(s, 6, video?.id);
  assert.ok(keys.length >= 3, `${path.basename(file)}: several clusters with keyframes (${keys.length})`);
  await checkReadFrom(openMkvSource, file, s, keys);
  return s;
}

test('H.264 with B-frames + AAC (.mkv)', async () => {
  const s = await roundTrip(await make('h264.mkv', [...X264, '-c:a', 'aac', '-b:a', '64k']));
  assert.ok(s.packets.some((p) => p.offsetMs > 0), 'decode times derived for B-frames');
});

test('HEVC + AAC (.mkv)', async () => {
  await roundTrip(await make('hevc.mkv', ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error:keyint=25:bframes=2', '-c:a', 'aac']));
});

test('H.264 + Vorbis (.mkv)', async () => {
  await roundTrip(await make('vorbis.mkv', [...X264, '-c:a', 'libvorbis']));
});

test('VP9 + Opus (.webm)', async () => {
  await roundTrip(await make('vp9.webm', ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-g', '25', '-b:v', '200k', '-c:a', 'libopus']));
});

test('H.264 at 30000/1001 fps without Cues (live-style, unknown sizes)', async () => {
  const input = ['-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=30000/1001:duration=4', ...AUDIO_IN];
  const file = await make('live.mkv', [...X264, '-g', '30', '-c:a', 'aac', '-live', '1', '-cues_to_front', '0'], input);
  await roundTrip(file);
});

test('Matroska cut in the middle of a block: the packets before it, with a warning', async () => {
  const file = await make('cut-src.mkv', [...X264, '-c:a', 'aac']);
  const whole = await scanFile(openMkvSource, file);
  const cut = path.join(dir, 'cut.mkv');
  const bytes = fs.readFileSync(file);
  fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
  const s = await scanFile(openMkvSource, cut);
  assert.ok(s.packets.length > 0 && s.packets.length < whole.packets.length);
  assert.ok(s.warnings.some((w) => w.includes('ends inside an element')), s.warnings.join('; '));
});
