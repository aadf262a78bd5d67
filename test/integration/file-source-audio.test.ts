// MP3 / ADTS / WAV FileSources on files ffmpeg made: packet count, timestamps (within 1 ms) and
// payload hashes against ffmpeg's own demuxing (-c copy -f framemd5); WAV samples against
// ffmpeg's raw big-endian / G.711 output; readFrom() on fresh sources from several packets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseFramemd5, runOk, tmpDir } from '../helpers.js';
import { openMp3Source } from '../../src/inputs/files/mp3.js';
import { openAdtsSource } from '../../src/inputs/files/adts.js';
import { openWavSource } from '../../src/inputs/files/wav.js';
import type { FileSourceOpener } from '../../src/inputs/files/file-source.js';
import type { AudioTrack } from '../../src/media/types.js';
import { checkReadFrom, scanAll } from '../unit/file-source-check.js';

const md5 = (b: Buffer): string => crypto.createHash('md5').update(b).digest('hex');

async function ffmpeg(args: string[]): Promise<Buffer> {
  return runOk('ffmpeg', ['-v', 'error', '-y', ...args], { timeoutMs: 60_000 });
}

/** Compares a scan with ffmpeg's packets of the same file (framemd5 of `-c copy`, optionally through a bsf). */
async function compareWithFfmpeg(open: FileSourceOpener, file: string, bsf: string[] = []): Promise<void> {
  const scan = await scanAll(open, file);
  const text = (await ffmpeg(['-i', file, '-c', 'copy', ...bsf, '-f', 'framemd5', '-'])).toString();
  const tb = /#tb 0: 1\/(\d+)/.exec(text);
  assert.ok(tb);
  const den = Number(tb[1]);
  const frames = parseFramemd5(text);
  assert.ok(frames.length > 50);
  assert.equal(scan.packets.length, frames.length, 'packet count');
  // framemd5 moves MP3 times back by the encoder delay of the LAME tag (ffprobe's pts start at 0, as ours)
  const firstDts = frames[0]!.dts;
  scan.packets.forEach((p, i) => {
    const f = { ...frames[i]!, dts: frames[i]!.dts - firstDts };
    assert.equal(p.data.length, f.size, `packet ${i} size`);
    assert.equal(md5(p.data), f.hash, `packet ${i} payload`);
    assert.ok(Math.abs(p.timeMs - (f.dts * 1000) / den) < 1, `packet ${i}: ${p.timeMs} ms vs ${(f.dts * 1000) / den}`);
  });
  assert.deepEqual(scan.warnings, []);
  const n = scan.packets.length;
  await checkReadFrom(open, file, scan, [0, 1, Math.floor(n / 3), Math.floor(n / 2) + 1, n - 1].map((i) => scan.packets[i]!.bpos));
}

test('MP3 by libmp3lame (ID3v2 + Info frame; CBR and VBR, 44.1 kHz mono and 22.05 kHz stereo) equals ffmpeg\'s packets', async () => {
  const dir = tmpDir();
  try {
    const cbr = path.join(dir, 'cbr.mp3');
    await ffmpeg(['-f', 'lavfi', '-i', 'sine=f=440:r=44100', '-t', '3', '-c:a', 'libmp3lame', '-b:a', '128k', cbr]);
    await compareWithFfmpeg(openMp3Source, cbr);
    const t = (await scanAll(openMp3Source, cbr)).tracks![0] as AudioTrack;
    assert.deepEqual([t.codec, t.rate, t.channels], ['MP3', 44100, 1]);
    const vbr = path.join(dir, 'vbr.mp3');
    await ffmpeg(['-f', 'lavfi', '-i', 'sine=f=300:r=22050', '-ac', '2', '-t', '4', '-c:a', 'libmp3lame', '-q:a', '4', vbr]);
    await compareWithFfmpeg(openMp3Source, vbr);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('AAC in ADTS by ffmpeg equals ffmpeg\'s raw AAC packets (aac_adtstoasc)', async () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'a.aac');
    await ffmpeg(['-f', 'lavfi', '-i', 'sine=f=440:r=48000', '-ac', '2', '-t', '3', '-c:a', 'aac', '-b:a', '96k', '-f', 'adts', file]);
    await compareWithFfmpeg(openAdtsSource, file, ['-bsf:a', 'aac_adtstoasc']);
    const scan = await scanAll(openAdtsSource, file);
    const t = scan.tracks![0] as AudioTrack;
    assert.deepEqual([t.codec, t.rate, t.channels], ['AAC', 48000, 2]);
    // the config ffmpeg derives from the same header
    const probe = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', file])).toString()) as { streams: { profile: string; sample_rate: string }[] };
    assert.equal(probe.streams[0]!.profile, 'LC');
    assert.equal(t.init.toString('hex'), '1190');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('WAV by ffmpeg (s16le, s24le extensible, A-law, mu-law): samples equal ffmpeg\'s big-endian / G.711 output', async () => {
  const dir = tmpDir();
  try {
    const cases: { name: string; codec: string; args: string[]; raw: string[]; expect: [string, number, number, number] }[] = [
      { name: 's16.wav', codec: 'pcm_s16le', args: ['-ac', '2', '-ar', '44100'], raw: ['-f', 's16be'], expect: ['PCM', 44100, 2, 16] },
      { name: 's24.wav', codec: 'pcm_s24le', args: ['-ac', '3', '-ar', '48000'], raw: ['-f', 's24be'], expect: ['PCM', 48000, 3, 24] },
      { name: 'u8.wav', codec: 'pcm_u8', args: ['-ac', '1', '-ar', '16000'], raw: ['-f', 's8'], expect: ['PCM', 16000, 1, 8] },
      { name: 'alaw.wav', codec: 'pcm_alaw', args: ['-ac', '1', '-ar', '8000'], raw: ['-c:a', 'copy', '-f', 'alaw'], expect: ['ALAW', 8000, 1, 8] },
      { name: 'ulaw.wav', codec: 'pcm_mulaw', args: ['-ac', '1', '-ar', '8000'], raw: ['-c:a', 'copy', '-f', 'mulaw'], expect: ['ULAW', 8000, 1, 8] },
    ];
    for (const c of cases) {
      const file = path.join(dir, c.name);
      await ffmpeg(['-f', 'lavfi', '-i', 'sine=f=440:r=48000', '-t', '2', ...c.args, '-c:a', c.codec, file]);
      const scan = await scanAll(openWavSource, file);
      const t = scan.tracks![0] as AudioTrack;
      assert.deepEqual([t.codec, t.rate, t.channels, t.size], c.expect, c.name);
      const raw = await ffmpeg(['-i', file, ...c.raw, '-']);
      const ours = Buffer.concat(scan.packets.map((p) => p.data));
      assert.equal(ours.length, raw.length, c.name);
      assert.ok(ours.equals(raw), `${c.name}: samples`);
      assert.equal(scan.packets[1]!.timeMs, 20);
      assert.equal(scan.packets.at(-1)!.timeMs, Math.floor(((scan.packets.length - 1) * 20)));
      const n = scan.packets.length;
      await checkReadFrom(openWavSource, file, scan, [scan.packets[0]!.bpos, scan.packets[Math.floor(n / 2)]!.bpos, scan.packets[n - 1]!.bpos]);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
