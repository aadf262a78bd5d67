// MP4 box writer and walker: sizes, nesting, largesize, and fuzzing of the walker.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { box, fullBox, readBoxes, serialize, findBox, type Mp4Box } from '../../src/containers/mp4/box.js';
import { HazeError } from '../../src/util/errors.js';
import { hex, isHaze } from '../helpers.js';
import { initSegment } from '../../src/containers/mp4/init.js';
import { buildAvcC } from '../../src/media/h264.js';

test('box and fullBox compute sizes and nest', () => {
  const buf = serialize(box('moov', fullBox('mvhd', 1, 0x000203, Buffer.from([9, 9])), box('free')));
  assert.deepEqual(buf, hex('0000001e 6d6f6f76', '0000000e 6d766864 01000203 0909', '00000008 66726565'));
  const [moov] = readBoxes(buf);
  assert.equal(moov!.type, 'moov');
  assert.equal(moov!.size, buf.length);
  const kids = readBoxes(moov!.payload);
  assert.deepEqual(
    kids.map((b) => [b.type, b.size]),
    [
      ['mvhd', 14],
      ['free', 8],
    ],
  );
  assert.deepEqual(findBox(buf, 'moov', 'mvhd')!.payload, hex('01000203 0909'));
  assert.equal(findBox(buf, 'moov', 'trak'), undefined);
});

test('walker: largesize, size 0 to the end, and errors', () => {
  const large = hex('00000001 6d646174 00000000 00000012 aabb', '00000000 66726565 cc');
  const boxes = readBoxes(large);
  assert.deepEqual(
    boxes.map((b) => [b.type, b.start, b.size, b.payload.toString('hex')]),
    [
      ['mdat', 0, 18, 'aabb'],
      ['free', 18, 9, 'cc'],
    ],
  );
  assert.throws(() => readBoxes(hex('00000007 66726565')), isHaze); // below its header
  assert.throws(() => readBoxes(hex('00000010 66726565')), isHaze); // past the end
  assert.throws(() => readBoxes(hex('000000')), isHaze);
  assert.throws(() => readBoxes(hex('00000001 6d646174 00000000')), isHaze);
  assert.throws(() => readBoxes(hex('00000001 6d646174 ffffffff 00000000')), isHaze);
  assert.throws(() => box('toolong'), isHaze);
});

/** Walks every box as a possible container, depth-bounded; each child inside its parent. */
function walkAll(buf: Buffer, depth: number, seen: Mp4Box[]): void {
  if (depth > 6) return;
  let boxes: Mp4Box[];
  try {
    boxes = readBoxes(buf);
  } catch (e) {
    if (!(e instanceof HazeError)) throw e;
    return;
  }
  let pos = 0;
  for (const b of boxes) {
    assert.equal(b.start, pos);
    assert.ok(b.size >= 8 && b.start + b.size <= buf.length);
    assert.ok(b.payload.length <= b.size - 8);
    seen.push(b);
    pos += b.size;
    walkAll(b.payload, depth + 1, seen);
  }
  assert.equal(pos, buf.length);
}

test('fuzz: random bytes give boxes inside their parents or a HazeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
      walkAll(Buffer.from(bytes), 0, []);
    }),
    { numRuns: 2000 },
  );
});

test('fuzz: box trees written then walked come back the same', () => {
  type Tree = { type: string; payload: Uint8Array; kids: Tree[] };
  const typeArb = fc.constantFrom('moov', 'trak', 'mdia', 'free', 'skip', 'udta');
  const leafArb = fc.record({ type: typeArb, payload: fc.uint8Array({ maxLength: 20 }), kids: fc.constant([] as Tree[]) });
  const { tree: arb } = fc.letrec<{ tree: Tree }>((tie) => ({
    tree: fc.oneof(
      { maxDepth: 4, depthIdentifier: 'box' },
      leafArb,
      fc.record({ type: typeArb, payload: fc.constant(new Uint8Array(0)), kids: fc.array(tie('tree'), { minLength: 1, maxLength: 3 }) }),
    ),
  }));
  const write = (t: Tree): ReturnType<typeof box> => (t.kids.length > 0 ? box(t.type, ...t.kids.map(write)) : box(t.type, t.payload));
  const check = (t: Tree, b: Mp4Box): void => {
    assert.equal(b.type, t.type);
    if (t.kids.length === 0) {
      assert.deepEqual(new Uint8Array(b.payload), new Uint8Array(t.payload));
      return;
    }
    const kids = readBoxes(b.payload);
    assert.equal(kids.length, t.kids.length);
    kids.forEach((k, i) => check(t.kids[i]!, k));
  };
  fc.assert(
    fc.property(arb, (t) => {
      const buf = serialize(write(t));
      const top = readBoxes(buf);
      assert.equal(top.length, 1);
      check(t, top[0]!);
    }),
    { numRuns: 300 },
  );
});

test('fuzz: a real init segment with corrupted bytes walks or gives a HazeError', () => {
  const init = initSegment([
    { type: 'video', id: 1, codec: 'H264', init: buildAvcC(hex('67 64 00 0d ac d9 41 41 fa 10 00 00 03 00 10 00 00 03 03 20 f1 42 99 60'), hex('68 eb e3 cb 22 c0')), bps: 0, lang: 'und', width: 64, height: 64, fpks: 0 },
    { type: 'audio', id: 2, codec: 'AAC', init: hex('1190'), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 },
  ]);
  const seen: Mp4Box[] = [];
  walkAll(init, 0, seen);
  assert.ok(seen.some((b) => b.type === 'trex'), 'the intact segment walks down to trex');
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(init.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(init.length), (edits, cutAt) => {
      const buf = Buffer.from(init.subarray(0, Math.max(cutAt, 1)));
      for (const [at, v] of edits) if (at < buf.length) buf[at] = v;
      walkAll(buf, 0, []);
    }),
    { numRuns: 1000 },
  );
});
