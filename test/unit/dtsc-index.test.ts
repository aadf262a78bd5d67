// The VoD index (keys, fragments, parts, key sizes, bps) built from a file's packets matches,
// table for table, the ones MistServer 3.10 wrote into small.flv.dtsh and small.mp4.dtsh.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures } from '../helpers.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { readDtscHeader } from '../../src/containers/dtsc/header.js';
import { AUDIO_KEY_INTERVAL_MS, DtscIndexBuilder, MIN_FRAGMENT_MS } from '../../src/containers/dtsc/index-builder.js';
import { bufferByteSource, openMp4 } from '../../src/containers/mp4/demux.js';

/**
 * Byte position of each FLV frame tag's packet as MistServer's FLV input records it: where its
 * read began, so tags that make no packet of their own (sequence headers) before a frame count
 * to it; the metadata tag is a packet (the JSON track) of its own.
 */
function framePositions(flv: Buffer): number[] {
  const out: number[] = [];
  let pos = 13; // 9-byte header + PreviousTagSize0
  let readStart = pos;
  while (pos + 11 <= flv.length) {
    const type = flv[pos]! & 0x1f;
    const size = flv.readUIntBE(pos + 1, 3);
    const body = flv.subarray(pos + 11, pos + 11 + size);
    const isVideoFrame = type === 9 && (body[0]! & 0x0f) === 7 && body[1] === 1;
    const isAudioFrame = type === 8 && body[0]! >> 4 === 10 && body[1] === 1;
    if (isVideoFrame || isAudioFrame) out.push(readStart);
    pos += 11 + size + 4;
    if (isVideoFrame || isAudioFrame || type === 18) readStart = pos;
  }
  return out;
}

test('small.flv: the index equals MistServer\'s small.flv.dtsh for the video and audio tracks', () => {
  const flvBytes = fs.readFileSync(path.join(mistFixtures, 'small.flv'));
  const flv = parseFlvFile(flvBytes);
  const positions = framePositions(flvBytes);
  assert.equal(positions.length, flv.packets.length);
  const builder = new DtscIndexBuilder();
  for (const t of flv.tracks) builder.addTrack(t.id, t.type === 'video');
  flv.packets.forEach((p, i) => builder.add({ trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, size: p.data.length, bpos: positions[i]! }));

  const mist = readDtscHeader(fs.readFileSync(path.join(mistFixtures, 'small.flv.dtsh')));
  for (const codec of ['H264', 'AAC']) {
    const theirs = mist.tracks.find((t) => t.codec === codec)!;
    const ours = builder.track(flv.tracks.find((t) => t.codec === codec)!.id)!;
    assert.deepEqual(ours.tables, theirs.tables, codec);
    assert.deepEqual([ours.firstMs, ours.lastMs, ours.bps, ours.maxBps], [theirs.firstMs, theirs.lastMs, theirs.bps, theirs.maxBps], codec);
  }
});

test('small.mp4: the index equals MistServer\'s small.mp4.dtsh (sample offsets as bpos, edit list not applied, as MistServer reads MP4)', async () => {
  const mp4 = await openMp4(bufferByteSource(fs.readFileSync(path.join(mistFixtures, 'small.mp4'))), { editList: 'ignore' });
  const builder = new DtscIndexBuilder();
  for (const t of mp4.tracks) builder.addTrack(t.id, t.type === 'video');
  for (const s of mp4.samples) builder.add({ trackId: s.trackId, timeMs: s.timeMs, offsetMs: s.offsetMs, keyframe: s.keyframe, size: s.size, bpos: s.pos });
  const mist = readDtscHeader(fs.readFileSync(path.join(mistFixtures, 'small.mp4.dtsh')));
  for (const theirs of mist.tracks) {
    const ours = builder.track(mp4.tracks.find((t) => t.codec === theirs.codec)!.id)!;
    assert.deepEqual(ours.tables, theirs.tables, theirs.codec);
    assert.deepEqual([ours.firstMs, ours.lastMs, ours.bps, ours.maxBps], [theirs.firstMs, theirs.lastMs, theirs.bps, theirs.maxBps], theirs.codec);
  }
});

test('index invariants over random packet sequences', () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(fc.record({ gap: fc.integer({ min: 0, max: 3000 }), key: fc.boolean(), size: fc.integer({ min: 0, max: 5000 }), back: fc.boolean() }), { minLength: 1, maxLength: 200 }),
      (video, steps) => {
        const b = new DtscIndexBuilder();
        b.addTrack(1, video);
        let t = 0;
        let accepted = 0;
        let bytes = 0;
        let lastMs = -1;
        for (const s of steps) {
          const time = s.back && lastMs > 0 ? lastMs - 1 : (t += s.gap);
          b.add({ trackId: 1, timeMs: time, offsetMs: 0, keyframe: s.key, size: s.size, bpos: 100 });
          if (time >= lastMs) {
            accepted++;
            bytes += s.size;
            lastMs = time;
          }
        }
        const idx = b.track(1)!;
        const { keys, fragments, parts, keySizes } = idx.tables;
        assert.equal(parts.length, accepted, 'a part per accepted packet');
        assert.equal(keys.reduce((n, k) => n + k.partCount, 0), accepted, 'keys cover every part');
        assert.equal(fragments.reduce((n, f) => n + f.keyCount, 0), keys.length, 'fragments cover every key');
        assert.equal(fragments.reduce((n, f) => n + f.sizeBytes, 0), bytes, 'fragment sizes are the payload');
        assert.equal(keySizes.length, keys.length);
        keys.forEach((k, i) => {
          assert.equal(k.number, i);
          // audio keys come from the interval only; video keys are the keyframes (and the first packet)
          if (i > 0 && !video) assert.ok(k.timeMs - keys[i - 1]!.timeMs >= AUDIO_KEY_INTERVAL_MS);
          if (i > 0) assert.ok(k.timeMs >= keys[i - 1]!.timeMs);
        });
        fragments.forEach((f, i) => {
          if (i === 0) return assert.equal(f.firstKey, 0);
          const start = keys[f.firstKey]!.timeMs;
          assert.ok(start >= MIN_FRAGMENT_MS && start - MIN_FRAGMENT_MS >= keys[fragments[i - 1]!.firstKey]!.timeMs);
          assert.equal(fragments[i - 1]!.durationMs, start - keys[fragments[i - 1]!.firstKey]!.timeMs);
        });
        assert.equal(idx.lastMs, lastMs);
      },
    ),
    { numRuns: 200 },
  );
});
