// FLV FileSource: bpos as MistServer records it (small.flv.dtsh), readFrom() on a fresh source,
// Enhanced FLV (HEVC + Opus, repeated sequence headers), truncated and growing files, fuzz.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, tmpDir } from '../helpers.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { sequenceHeaderBody, writeFlvFile } from '../../src/containers/flv/mux.js';
import { FLV_TAG_VIDEO, writeFlvTag } from '../../src/containers/flv/tags.js';
import { isFlvConfigTag } from '../../src/containers/flv/tag-kind.js';
import { readDtscHeader } from '../../src/containers/dtsc/header.js';
import { openFlvSource } from '../../src/inputs/files/flv.js';
import type { AudioTrack, Packet, VideoTrack } from '../../src/media/types.js';
import { HazeError } from '../../src/util/errors.js';
import { checkReadFrom, fuzzSource, keyPositions, plain, readFromAll, scanAll } from './file-source-check.js';

const smallFlv = path.join(mistFixtures, 'small.flv');

test('small.flv: scan() bpos are the positions in MistServer\'s small.flv.dtsh', async () => {
  const scan = await scanAll(openFlvSource, smallFlv);
  const whole = parseFlvFile(fs.readFileSync(smallFlv));
  assert.ok(scan.tracksFirst);
  assert.deepEqual(scan.tracks!.map((t) => [t.id, t.codec]), whole.tracks.map((t) => [t.id, t.codec]));
  assert.deepEqual(scan.packets.map(plain), whole.packets.map(plain));
  assert.deepEqual(scan.warnings, []);

  // Every key's bpos in MistServer's index, track by track, from our scan.
  const mist = readDtscHeader(fs.readFileSync(path.join(mistFixtures, 'small.flv.dtsh')));
  for (const codec of ['H264', 'AAC']) {
    const theirs = mist.tracks.find((t) => t.codec === codec)!;
    const id = scan.tracks!.find((t) => t.codec === codec)!.id;
    const ours = scan.packets.filter((p) => p.trackId === id);
    const keys = theirs.tables!.keys;
    assert.ok(keys.length > 1);
    for (const k of keys) {
      // the key's first packet: the one at the key's time (parts are in order)
      const first = ours.find((p) => p.timeMs === k.timeMs)!;
      assert.equal(first.bpos, k.bpos, `${codec} key ${k.number} at ${k.timeMs} ms`);
    }
  }
  // the first video frame's read begins at the sequence headers after onMetaData
  const firstVideo = scan.packets.find((p) => p.trackId === 1)!;
  const buf = fs.readFileSync(smallFlv);
  const tagAt = buf[firstVideo.bpos]! & 0x1f;
  assert.ok(tagAt === 8 || tagAt === 9);
  assert.ok(isFlvConfigTag(tagAt, buf.subarray(firstVideo.bpos + 11, firstVideo.bpos + 11 + buf.readUIntBE(firstVideo.bpos + 1, 3))));
});

test('small.flv: readFrom() on a fresh source, with and without tracks, from every key', async () => {
  const scan = await scanAll(openFlvSource, smallFlv);
  await checkReadFrom(openFlvSource, smallFlv, scan, keyPositions(scan, 100));
  // the first bpos holds the sequence headers: no tracks needed
  const first = scan.packets[0]!;
  const got = await readFromAll(openFlvSource, smallFlv, first.bpos, []);
  assert.deepEqual(got.map(plain), scan.packets.map(plain));
  // a frame in the middle, not a key, still reads on
  const mid = scan.packets[Math.floor(scan.packets.length / 2)]!;
  await checkReadFrom(openFlvSource, smallFlv, scan, [mid.bpos]);
});

const hvcc = Buffer.from('0101600000009000000000003cf000fcfdf8f800000f', 'hex');

test('Enhanced FLV (HEVC with B-frame offsets + Opus): scan and readFrom from mid-file keys', async () => {
  const dir = tmpDir();
  try {
    const video: VideoTrack = { type: 'video', id: 1, codec: 'HEVC', init: hvcc, bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 };
    const opusHead = Buffer.from('4f707573486561640102380180bb00000000', 'hex');
    const audio: AudioTrack = { type: 'audio', id: 2, codec: 'opus', init: opusHead, bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };
    const packets: Packet[] = [];
    for (let i = 0; i < 100; i++) {
      packets.push({ trackId: 1, timeMs: i * 40, offsetMs: i % 3 === 1 ? 80 : 0, keyframe: i % 25 === 0, data: Buffer.from([0, 0, 0, 3, 0x26, 0x01, i]) });
      packets.push({ trackId: 2, timeMs: i * 40 + 5, offsetMs: 0, keyframe: true, data: Buffer.from([0xfc, i, i]) });
    }
    const body = writeFlvFile([video, audio], packets);
    // a repeated sequence header before the key at frame 50 (as encoders send them)
    const seq = writeFlvTag(FLV_TAG_VIDEO, 2000, sequenceHeaderBody(video)!);
    const split = findTagOf(body, 2000);
    const file = path.join(dir, 'hevc.flv');
    fs.writeFileSync(file, Buffer.concat([body.subarray(0, split), seq, body.subarray(split)]));

    const scan = await scanAll(openFlvSource, file);
    assert.deepEqual(scan.packets.map(plain), packets.map(plain));
    assert.deepEqual(scan.tracks!.map((t) => t.codec), ['HEVC', 'opus']);
    const key50 = scan.packets.find((p) => p.trackId === 1 && p.timeMs === 2000)!;
    assert.equal(key50.bpos, split, 'the read of the frame after a sequence header starts at the header');
    await checkReadFrom(openFlvSource, file, scan, keyPositions(scan, 8, 1));
    await checkReadFrom(openFlvSource, file, scan, [scan.packets[33]!.bpos, scan.packets[34]!.bpos]);
    // without the tracks, a read from a frame with no header before it drops HEVC frames until one comes
    const k75 = scan.packets.find((p) => p.trackId === 1 && p.timeMs === 3000)!;
    const noCtx = await readFromAll(openFlvSource, file, k75.bpos, []);
    assert.ok(noCtx.every((p) => p.trackId === 2));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** Offset of the first video tag with this timestamp. */
function findTagOf(flv: Buffer, timeMs: number): number {
  let pos = 13;
  while (pos + 11 <= flv.length) {
    const size = flv.readUIntBE(pos + 1, 3);
    const t = flv.readUIntBE(pos + 4, 3);
    if ((flv[pos]! & 0x1f) === 9 && t === timeMs) return pos;
    pos += 15 + size;
  }
  throw new Error('no tag');
}

test('truncated and growing files: a cut tag at the end is a warning; the next scan reads on', async () => {
  const dir = tmpDir();
  try {
    const buf = fs.readFileSync(smallFlv);
    const full = await scanAll(openFlvSource, smallFlv);
    const file = path.join(dir, 'rec.flv');
    const cut = Math.floor(buf.length / 2);
    fs.writeFileSync(file, buf.subarray(0, cut));
    const half = await scanAll(openFlvSource, file);
    assert.ok(half.packets.length > 10 && half.packets.length < full.packets.length);
    assert.equal(half.warnings.length, 1);
    assert.match(half.warnings[0]!, /ends inside a tag at byte \d+/);
    assert.deepEqual(half.packets.map(plain), full.packets.slice(0, half.packets.length).map(plain));
    // the recording goes on
    fs.appendFileSync(file, buf.subarray(cut));
    const later = await scanAll(openFlvSource, file);
    assert.deepEqual(later.packets.map(plain), full.packets.map(plain));
    assert.deepEqual(later.warnings, []);
    // without the last PreviousTagSize: quiet
    fs.writeFileSync(file, buf.subarray(0, buf.length - 4));
    assert.deepEqual((await scanAll(openFlvSource, file)).warnings, []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('garbage: errors name the file and the byte; not-FLV is refused at open', async () => {
  const dir = tmpDir();
  try {
    const buf = Buffer.from(fs.readFileSync(smallFlv));
    const file = path.join(dir, 'bad.flv');
    const full = await scanAll(openFlvSource, smallFlv);
    const victim = full.packets[40]!.bpos;
    buf[victim] = 0x1f; // tag type 31
    fs.writeFileSync(file, buf);
    await assert.rejects(scanAll(openFlvSource, file), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED' && e.message.includes(file) && e.message.includes(`at byte ${victim}`));
    fs.writeFileSync(file, Buffer.from('RIFF0000WAVEfmt '));
    await assert.rejects(openFlvSource(file), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED' && e.message.includes(file));
    await assert.rejects(openFlvSource(path.join(dir, 'none.flv')), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_NOT_FOUND');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fuzz: random, mutated and truncated FLV files give packets or a HazeError naming the file', async () => {
  const dir = tmpDir();
  try {
    // the first 40 KiB of small.flv: headers and some frames of both tracks
    await fuzzSource(openFlvSource, dir, 'flv', fs.readFileSync(smallFlv).subarray(0, 40_000), { timeMs: 4000 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
