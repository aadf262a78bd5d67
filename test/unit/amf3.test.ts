// AMF3: hand-assembled bytes from the AMF3 spec (U29 boundaries, string/object/traits
// references, arrays, objects, dates, XML, ByteArray), round trips, bad input and fuzzing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Amf3Array, Amf3Object, Amf3Xml, decodeAmf3, encodeAmf3, type Amf3Value } from '../../src/containers/amf/amf3.js';
import { decodeAmf0, encodeAmf0, Amf0Avmplus } from '../../src/containers/amf/amf0.js';
import { HazeError } from '../../src/util/errors.js';
import { hex } from '../helpers.js';

const f64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return b;
};

const obj = (entries: [string, Amf3Value][], className = '', sealed: string[] = [], dynamic = true): Amf3Object =>
  new Amf3Object(className, sealed, new Map(entries), dynamic);

const cases: { name: string; values: Amf3Value[]; bytes: Buffer }[] = [
  { name: 'constants', values: [undefined, null, false, true], bytes: hex('00 01 02 03') },
  { name: 'U29 one byte', values: [0, 127], bytes: hex('04 00 04 7f') },
  { name: 'U29 two bytes', values: [128, 16383], bytes: hex('04 8100 04 ff7f') },
  { name: 'U29 three bytes', values: [16384, 0x1fffff], bytes: hex('04 818000 04 ffff7f') },
  { name: 'U29 four bytes', values: [0x200000, 0x0fffffff], bytes: hex('04 80c08000 04 bfffffff') },
  { name: 'negative integers (29-bit two\'s complement)', values: [-1, -0x10000000], bytes: hex('04 ffffffff 04 c0808000') },
  { name: 'doubles outside the integer range', values: [1.5, 0x10000000, -0x10000001], bytes: hex('05', f64(1.5), '05', f64(0x10000000), '05', f64(-0x10000001)) },
  { name: 'strings with a reference; empty string never referenced', values: ['abc', 'abc', '', ''], bytes: hex('06 07 616263 06 00 06 01 06 01') },
  { name: 'date', values: [new Date(1700000000000)], bytes: hex('08 01', f64(1700000000000)) },
  { name: 'dense array', values: [new Amf3Array([1, 2])], bytes: hex('09 05 01 04 01 04 02') },
  {
    name: 'array with associative part',
    values: [new Amf3Array(['x'], new Map<string, Amf3Value>([['k', true]]))],
    bytes: hex('09 03 03 6b 03 01 06 03 78'),
  },
  { name: 'anonymous dynamic object', values: [obj([['a', 1]])], bytes: hex('0a 0b 01 03 61 04 01 01') },
  {
    name: 'sealed class, traits reference on reuse',
    values: [obj([['x', 5]], 'C', ['x'], false), obj([['x', 6]], 'C', ['x'], false)],
    bytes: hex('0a 13 03 43 03 78 04 05', '0a 01 04 06'),
  },
  { name: 'xml and legacy xml document', values: [new Amf3Xml('<a/>'), new Amf3Xml('<b/>', true)], bytes: hex('0b 09 3c612f3e 07 09 3c622f3e') },
  { name: 'byte array', values: [Buffer.from([1, 2, 3])], bytes: hex('0c 07 010203') },
];

test('AMF3 table is byte exact both ways', () => {
  for (const c of cases) {
    assert.deepEqual(encodeAmf3(c.values), c.bytes, `encode ${c.name}`);
    assert.deepStrictEqual(decodeAmf3(c.bytes), c.values, `decode ${c.name}`);
    assert.deepEqual(encodeAmf3(decodeAmf3(c.bytes)), c.bytes, `re-encode ${c.name}`);
  }
});

test('object references: a repeated and a self-referencing object', () => {
  const inner = obj([['v', 1]]);
  const outer = new Amf3Array([inner, inner]);
  const b = encodeAmf3([outer]);
  // the second element is a reference to object #1 (the array is #0): 0a 02
  assert.deepEqual(b.subarray(-2), hex('0a 02'));
  const [back] = decodeAmf3(b) as [Amf3Array];
  assert.equal(back.dense[0], back.dense[1]);

  const self = obj([]);
  self.values.set('me', self);
  const sb = encodeAmf3([self]);
  const [sback] = decodeAmf3(sb) as [Amf3Object];
  assert.equal(sback.values.get('me'), sback);
  assert.deepEqual(encodeAmf3([sback]), sb);
});

test('AMF3 inside AMF0 (AVM+ switch) as Flash sends RTMP commands with objectEncoding 3', () => {
  const values = ['connect', 1, new Amf0Avmplus(obj([['app', 'live'], ['objectEncoding', 3]]))];
  const b = encodeAmf0(values);
  assert.deepStrictEqual(decodeAmf0(b), values);
});

test('bad AMF3 input throws HazeError', () => {
  const bad: [string, Buffer, string][] = [
    ['short U29', hex('04 ff'), 'HAZE_ERR_SHORT_READ'],
    ['string reference out of range', hex('06 02'), 'HAZE_ERR_MALFORMED'],
    ['object reference out of range', hex('0a 00'), 'HAZE_ERR_MALFORMED'],
    ['traits reference out of range', hex('0a 05'), 'HAZE_ERR_MALFORMED'],
    ['reference to an object of another type', hex('09 01 01 08 00'), 'HAZE_ERR_MALFORMED'],
    ['externalizable', hex('0a 07 03 43'), 'HAZE_ERR_UNSUPPORTED'],
    ['vector', hex('0d 03 00 00000001'), 'HAZE_ERR_UNSUPPORTED'],
    ['unknown marker', hex('20'), 'HAZE_ERR_MALFORMED'],
    ['dense count beyond buffer', hex('09 ffffff0f 01'), 'HAZE_ERR_MALFORMED'],
    ['deep nesting', Buffer.concat([...Array.from({ length: 100 }, () => hex('09 03 01')), hex('01')]), 'HAZE_ERR_TOO_LARGE'],
  ];
  for (const [name, bytes, code] of bad) {
    assert.throws(() => decodeAmf3(bytes), (e: unknown) => e instanceof HazeError && e.code === code, name);
  }
});

const amf3Arb: fc.Arbitrary<Amf3Value> = fc.letrec<{ v: Amf3Value }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<Amf3Value>(undefined, null, true, false),
    fc.integer({ min: -0x10000000, max: 0x0fffffff }),
    fc.double({ noNaN: true }),
    fc.string(),
    fc.uint8Array({ maxLength: 8 }).map((u) => Buffer.from(u)),
    fc.array(tie('v'), { maxLength: 4 }).map((d) => new Amf3Array(d)),
    fc.array(fc.tuple(fc.string({ minLength: 1 }), tie('v')), { maxLength: 3 }).map((e) => obj(e)),
  ),
})).v;

test('fuzz: generated values survive encode -> decode -> encode', () => {
  fc.assert(
    fc.property(fc.array(amf3Arb, { maxLength: 4 }), (values) => {
      const b = encodeAmf3(values);
      assert.deepEqual(encodeAmf3(decodeAmf3(b)), b);
    }),
    { numRuns: 300 },
  );
});

test('fuzz: random and mutated bytes decode or throw HazeError', () => {
  const seeds = cases.map((c) => c.bytes);
  const check = (b: Buffer): void => {
    try {
      decodeAmf3(b);
    } catch (e) {
      if (!(e instanceof HazeError)) throw e;
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (u) => check(Buffer.from(u))),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.nat(seeds.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (i, muts) => {
      const b = Buffer.from(seeds[i]!);
      for (const [pos, val] of muts) b[pos % b.length] = val;
      check(b);
    }),
    { numRuns: 2000 },
  );
});
