// MP3 / ADTS / WAV FileSources on synthetic files: tags and the Xing frame skipped, resync over
// garbage (bounded), truncation at the end, readFrom() from any frame, PCM byte order, fuzz.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../helpers.js';
import { openMp3Source } from '../../src/inputs/files/mp3.js';
import { openAdtsSource } from '../../src/inputs/files/adts.js';
import { openWavSource } from '../../src/inputs/files/wav.js';
import { RESYNC_BYTES } from '../../src/inputs/files/audio-frame-file.js';
import { adtsHeader, defaultAsc, parseAsc } from '../../src/media/aac.js';
import { writeWavHeader, WAVE_FORMAT_ALAW, WAVE_FORMAT_PCM } from '../../src/containers/wav/wav.js';
import { id3v2Size, isMp3InfoFrame } from '../../src/containers/mp3/mp3.js';
import type { AudioTrack } from '../../src/media/types.js';
import { HazeError } from '../../src/util/errors.js';
import { checkReadFrom, fuzzSource, plain, scanAll } from './file-source-check.js';

/** An MPEG-1 Layer III frame, 128 kbit/s, 44.1 kHz, joint stereo, no padding: 417 bytes. */
function mp3Frame(n: number): Buffer {
  const f = Buffer.alloc(417, 0);
  f.writeUInt32BE(0xfffb9044, 0);
  f.writeUInt32BE(n, 40); // something to tell frames apart
  return f;
}

function xingFrame(): Buffer {
  const f = mp3Frame(0).fill(0, 4);
  f.write('Info', 4 + 32, 'latin1');
  return f;
}

function id3v2(bodyBytes: number): Buffer {
  const b = Buffer.alloc(10 + bodyBytes, 0);
  b.write('ID3', 0, 'latin1');
  b[3] = 4;
  let s = bodyBytes;
  for (let i = 9; i >= 6; i--) {
    b[i] = s & 0x7f;
    s >>= 7;
  }
  return b;
}

function adtsFrame(n: number): Buffer {
  const payload = Buffer.alloc(100 + (n % 50), n & 0xff);
  return Buffer.concat([adtsHeader(defaultAsc(48000, 2), payload.length), payload]);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = tmpDir();
  try {
    await fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('MP3: ID3v2, the Info frame and ID3v1 are skipped; times from the sample count; readFrom from any frame', () =>
  withDir(async (dir) => {
    const frames = Array.from({ length: 60 }, (_, i) => mp3Frame(i + 1));
    const tag = id3v2(300);
    assert.equal(id3v2Size(tag, 0), 310);
    assert.ok(isMp3InfoFrame(xingFrame()));
    assert.ok(!isMp3InfoFrame(frames[0]!));
    const v1 = Buffer.alloc(128, 0x20);
    v1.write('TAG', 0, 'latin1');
    const file = path.join(dir, 'a.mp3');
    fs.writeFileSync(file, Buffer.concat([tag, xingFrame(), ...frames, v1]));
    const scan = await scanAll(openMp3Source, file);
    const t = scan.tracks![0] as AudioTrack;
    assert.deepEqual([t.codec, t.rate, t.channels, t.id], ['MP3', 44100, 2, 1]);
    assert.deepEqual(scan.warnings, []);
    assert.equal(scan.packets.length, 60);
    scan.packets.forEach((p, i) => {
      assert.deepEqual(p.data, frames[i]);
      assert.equal(p.timeMs, Math.floor((i * 1152 * 1000) / 44100));
      assert.equal(p.bpos, 310 + 417 + i * 417);
      assert.equal(p.keyframe, true);
    });
    await checkReadFrom(openMp3Source, file, scan, [scan.packets[0]!.bpos, scan.packets[1]!.bpos, scan.packets[37]!.bpos, scan.packets[59]!.bpos]);
    const src = await openMp3Source(file);
    try {
      const it = src.readFrom(scan.packets[3]!.bpos + 1, scan.tracks!);
      await assert.rejects(it.next(), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_INVALID_ARG' && e.message.includes(file));
    } finally {
      await src.close();
    }
  }));

test('MP3: garbage between frames is skipped with a warning; a cut last frame is a warning; too much garbage is malformed', () =>
  withDir(async (dir) => {
    const frames = Array.from({ length: 20 }, (_, i) => mp3Frame(i + 1));
    const junk = Buffer.alloc(1000, 0xff); // sync bytes but no valid header
    junk.fill(0x12, 500);
    const file = path.join(dir, 'b.mp3');
    fs.writeFileSync(file, Buffer.concat([...frames.slice(0, 10), junk, ...frames.slice(10), frames[0]!.subarray(0, 200)]));
    const scan = await scanAll(openMp3Source, file);
    assert.equal(scan.packets.length, 20);
    assert.deepEqual(scan.packets.map((p) => p.data), frames);
    assert.equal(scan.packets[10]!.bpos, 10 * 417 + 1000);
    assert.equal(scan.warnings.length, 2);
    assert.match(scan.warnings[0]!, /skipped 1000 bytes .* at byte 4170/);
    assert.match(scan.warnings[1]!, /ends inside a frame at byte 9340|ends with 200 bytes/);
    await checkReadFrom(openMp3Source, file, scan, [scan.packets[9]!.bpos, scan.packets[10]!.bpos, scan.packets[15]!.bpos]);

    fs.writeFileSync(file, Buffer.concat([...frames.slice(0, 10), Buffer.alloc(RESYNC_BYTES + 1000, 0x33), ...frames.slice(10)]));
    await assert.rejects(scanAll(openMp3Source, file), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED' && e.message.includes(file) && e.message.includes('at byte 4170'));
  }));

test('ADTS: raw payloads, the AudioSpecificConfig of the header, 1024 samples per frame, resync', () =>
  withDir(async (dir) => {
    const frames = Array.from({ length: 80 }, (_, i) => adtsFrame(i));
    const file = path.join(dir, 'a.aac');
    fs.writeFileSync(file, Buffer.concat([id3v2(20), ...frames.slice(0, 40), Buffer.from('garbage!'), ...frames.slice(40)]));
    const scan = await scanAll(openAdtsSource, file);
    const t = scan.tracks![0] as AudioTrack;
    assert.deepEqual([t.codec, t.rate, t.channels], ['AAC', 48000, 2]);
    const asc = parseAsc(t.init);
    assert.deepEqual([asc.objectType, asc.sampleRate, asc.channelConfig], [2, 48000, 2]);
    assert.equal(scan.packets.length, 80);
    scan.packets.forEach((p, i) => {
      assert.deepEqual(p.data, frames[i]!.subarray(7));
      assert.equal(p.timeMs, Math.floor((i * 1024 * 1000) / 48000));
    });
    assert.equal(scan.warnings.length, 1);
    await checkReadFrom(openAdtsSource, file, scan, [scan.packets[0]!.bpos, scan.packets[39]!.bpos, scan.packets[40]!.bpos, scan.packets[79]!.bpos]);
  }));

test('WAV: PCM becomes signed big-endian, G.711 passes, 20 ms packets of whole blocks, cut block at the end', () =>
  withDir(async (dir) => {
    const samples = Buffer.alloc(44100 * 4 + 6); // 1 s of 16-bit stereo and a cut block
    for (let i = 0; i < samples.length - 1; i += 2) samples.writeInt16LE(((i * 37) % 65536) - 32768, i);
    const file = path.join(dir, 'a.wav');
    fs.writeFileSync(file, Buffer.concat([writeWavHeader({ formatTag: WAVE_FORMAT_PCM, channels: 2, sampleRate: 44100, bitsPerSample: 16 }, 44100 * 4 + 6), samples]));
    const scan = await scanAll(openWavSource, file);
    const t = scan.tracks![0] as AudioTrack;
    assert.deepEqual([t.codec, t.rate, t.channels, t.size], ['PCM', 44100, 2, 16]);
    assert.equal(scan.packets.length, 51); // 50 x 882 samples, then the 1.5 blocks left: 1 block
    assert.equal(scan.packets[1]!.timeMs, 20);
    assert.equal(scan.packets[1]!.data.length, 882 * 4);
    assert.equal(scan.packets[0]!.data.readInt16BE(2), samples.readInt16LE(2));
    assert.equal(scan.packets[50]!.data.length, 4);
    assert.match(scan.warnings.join(), /ends inside a sample block/);
    await checkReadFrom(openWavSource, file, scan, [scan.packets[0]!.bpos, scan.packets[17]!.bpos, scan.packets[50]!.bpos]);

    // live-style header (unknown sizes), A-law, 8 kHz mono: 160-byte packets
    const alaw = Buffer.alloc(8000, 0xd5);
    fs.writeFileSync(file, Buffer.concat([writeWavHeader({ formatTag: WAVE_FORMAT_ALAW, channels: 1, sampleRate: 8000, bitsPerSample: 8 }), alaw]));
    const a = await scanAll(openWavSource, file);
    assert.deepEqual([(a.tracks![0] as AudioTrack).codec, a.packets.length, a.packets[0]!.data.length, a.packets[49]!.timeMs], ['ALAW', 50, 160, 980]);
    assert.deepEqual(a.warnings, []);
    fs.writeFileSync(file, Buffer.from('RIFF\0\0\0\0AVI LIST'));
    await assert.rejects(openWavSource(file), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED');
  }));

test('fuzz: random, mutated and truncated MP3 / ADTS / WAV files give packets or a HazeError naming the file', () =>
  withDir(async (dir) => {
    const mp3 = Buffer.concat([id3v2(30), xingFrame(), ...Array.from({ length: 8 }, (_, i) => mp3Frame(i))]);
    await fuzzSource(openMp3Source, dir, 'mp3', mp3, { timeMs: 1500, runs: 100 });
    const aac = Buffer.concat(Array.from({ length: 20 }, (_, i) => adtsFrame(i)));
    await fuzzSource(openAdtsSource, dir, 'aac', aac, { timeMs: 1500, runs: 100 });
    const wav = Buffer.concat([writeWavHeader({ formatTag: WAVE_FORMAT_PCM, channels: 1, sampleRate: 8000, bitsPerSample: 16 }, 1000), Buffer.alloc(1000, 7)]);
    await fuzzSource(openWavSource, dir, 'wav', wav, { timeMs: 1500, runs: 100 });
    // scans of the mutated files are the same through any checkpoint: plain() of each packet is stable
    assert.ok(plain);
  }));
