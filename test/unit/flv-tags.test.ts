// FLV framing: header and tag writer/reader, extended timestamps, incremental reading with chunks
// split anywhere (must equal the whole-file result), bounds, and fuzzing with random bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures } from '../helpers.js';
import { FlvTagReader, readFlvHeader, readFlvTags, writeFlvHeader, writeFlvTag, type FlvTag } from '../../src/containers/flv/tags.js';
import { HazeError } from '../../src/util/errors.js';

const smallFlv = fs.readFileSync(path.join(mistFixtures, 'small.flv'));

test('FLV header is 9 bytes + PreviousTagSize0 and reads back', () => {
  assert.deepEqual(writeFlvHeader(true, true), Buffer.from('464c5601050000000900000000', 'hex'));
  assert.deepEqual(writeFlvHeader(true, false), Buffer.from('464c5601010000000900000000', 'hex'));
  assert.deepEqual(writeFlvHeader(false, true), Buffer.from('464c5601040000000900000000', 'hex'));
  assert.deepEqual(readFlvHeader(smallFlv).header, { version: 1, hasAudio: true, hasVideo: true });
  assert.throws(() => readFlvHeader(Buffer.from('FLX\x01\x05\0\0\0\x09', 'latin1')), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED');
});

test('writeFlvTag: 11-byte header with extended timestamp, body, previous tag size', () => {
  const body = Buffer.from([1, 2, 3]);
  assert.deepEqual(writeFlvTag(9, 0x12345678, body), Buffer.from('09 000003 345678 12 000000 010203 0000000e'.replace(/ /g, ''), 'hex'));
  assert.deepEqual(writeFlvTag(8, 1000, Buffer.alloc(0)), Buffer.from('08 000000 0003e8 00 000000 0000000b'.replace(/ /g, ''), 'hex'));
  const r = new FlvTagReader({ expectHeader: false });
  // A tag stream without the file header starts with a tag; PreviousTagSize follows each tag.
  const tags = r.push(Buffer.concat([writeFlvTag(18, 0xff000001, body), writeFlvTag(8, 5, body)]));
  assert.deepEqual(
    tags.map((t) => [t.type, t.timeMs, [...t.body]]),
    [
      [18, 0xff000001, [1, 2, 3]],
      [8, 5, [1, 2, 3]],
    ],
  );
});

test('readFlvTags of small.flv re-serialises to the same bytes', () => {
  const { header, tags } = readFlvTags(smallFlv);
  // onMetaData, two sequence headers, 120 + 189 packets, the AVC end-of-sequence tag ffmpeg appends
  assert.equal(tags.length, 1 + 2 + 309 + 1);
  assert.deepEqual([...tags.at(-1)!.body], [0x17, 2, 0, 0, 0]);
  const rebuilt = Buffer.concat([writeFlvHeader(header.hasVideo, header.hasAudio), ...tags.map((t) => writeFlvTag(t.type as 8 | 9 | 18, t.timeMs, t.body))]);
  assert.deepEqual(rebuilt, smallFlv);
});

function summary(tags: FlvTag[]): string[] {
  return tags.map((t) => `${t.type}:${t.timeMs}:${t.body.toString('base64')}`);
}

test('fuzz: small.flv in random chunk splits gives the same tags as whole', () => {
  const whole = summary(new FlvTagReader().push(smallFlv));
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: smallFlv.length - 1 }), { maxLength: 40 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const reader = new FlvTagReader();
      const got: FlvTag[] = [];
      let prev = 0;
      for (const p of [...points, smallFlv.length]) {
        got.push(...reader.push(smallFlv.subarray(prev, p)));
        prev = p;
      }
      assert.deepEqual(summary(got), whole);
    }),
    { numRuns: 100 },
  );
  // The extreme split: one byte at a time.
  const reader = new FlvTagReader();
  const got: FlvTag[] = [];
  for (let i = 0; i < smallFlv.length; i++) got.push(...reader.push(smallFlv.subarray(i, i + 1)));
  assert.deepEqual(summary(got), whole);
});

test('tag size beyond the bound is refused before allocating', () => {
  const r = new FlvTagReader({ expectHeader: false, maxTagBytes: 1000 });
  assert.throws(() => r.push(Buffer.from('09 0003e9 000000 00 000000'.replace(/ /g, ''), 'hex')), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_TOO_LARGE');
  const r2 = new FlvTagReader({ expectHeader: false });
  assert.throws(() => r2.push(Buffer.from('07 000001 000000 00 000000'.replace(/ /g, ''), 'hex')), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED');
  assert.throws(() => writeFlvTag(9, 0, Buffer.alloc(0x1000000)), HazeError);
});

test('fuzz: random bytes and mutated small.flv give tags or HazeError', () => {
  const check = (chunks: Buffer[]): void => {
    const r = new FlvTagReader({ maxTagBytes: 1 << 20 });
    try {
      for (const c of chunks) r.push(c);
    } catch (e) {
      if (!(e instanceof HazeError)) throw e;
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (u, withHeader) => {
      const b = Buffer.from(u);
      check([withHeader ? Buffer.concat([writeFlvHeader(true, true), b]) : b]);
    }),
    { numRuns: 1000 },
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(smallFlv.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(smallFlv.length), (muts, cut) => {
      const b = Buffer.from(smallFlv);
      for (const [pos, val] of muts) b[pos] = val;
      check([b.subarray(0, cut), b.subarray(cut)]);
    }),
    { numRuns: 300 },
  );
});
