// DTMI encoder/decoder (reference/mistserver.md §2.1): byte-exact round trips, bounds, fuzz.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HazeError } from '../../src/util/errors.js';
import {
  decodeDtmi,
  decodeDtmiAt,
  dtmiArray,
  dtmiDouble,
  dtmiGet,
  dtmiInt,
  dtmiNull,
  dtmiObject,
  dtmiString,
  encodeDtmi,
  fromJs,
  getBytes,
  getInt,
  getNumber,
  getObject,
  getText,
  packedSize,
  skipDtmi,
  sortedDtmi,
  toJs,
  type DtmiEntry,
  type DtmiObject,
  type DtmiValue,
} from '../../src/containers/dtsc/dtmi.js';
import { hex, isHaze } from '../helpers.js';

test('encodes each type as §2.1 lays it out', () => {
  assert.deepEqual(encodeDtmi(dtmiInt(1)), hex('01 0000000000000001'));
  assert.deepEqual(encodeDtmi(dtmiInt(-2)), hex('01 fffffffffffffffe'));
  assert.deepEqual(encodeDtmi(dtmiInt(2n ** 64n - 1n)), hex('01 ffffffffffffffff'));
  assert.deepEqual(encodeDtmi(dtmiDouble(1)), hex('04 3ff0000000000000'));
  assert.deepEqual(encodeDtmi(dtmiString('AB')), hex('02 00000002 4142'));
  assert.deepEqual(encodeDtmi(dtmiNull()), hex('03'));
  assert.deepEqual(encodeDtmi(dtmiArray([dtmiNull(), dtmiInt(0)])), hex('0a 03 01 0000000000000000 0000ee'));
  assert.deepEqual(encodeDtmi(dtmiObject([['a', dtmiNull()]])), hex('e0 0001 61 03 0000ee'));
  assert.deepEqual(encodeDtmi(dtmiObject([['a', dtmiNull()]], true)), hex('ff 0001 61 03 0000ee'));
});

test('packedSize follows the formula and matches the encoded length', () => {
  const v = dtmiObject([
    ['int', dtmiInt(5)],
    ['dbl', dtmiDouble(0.5)],
    ['str', dtmiString(Buffer.alloc(7))],
    ['nul', dtmiNull()],
    ['arr', dtmiArray([dtmiInt(1), dtmiString('x')])],
  ]);
  // 4 + (2+3+9) + (2+3+9) + (2+3+12) + (2+3+1) + (2+3+(4+9+6))
  assert.equal(packedSize(v), 4 + 14 + 14 + 17 + 6 + 24);
  assert.equal(encodeDtmi(v).length, packedSize(v));
});

test('keeps member order, including integer-like keys a JS object would reorder', () => {
  const bytes = encodeDtmi(dtmiObject([['b', dtmiInt(1)], ['1', dtmiInt(2)], ['0', dtmiInt(3)], ['a', dtmiInt(4)]]));
  const v = decodeDtmi(bytes) as DtmiObject;
  assert.deepEqual(v.entries.map((e) => e[0]), ['b', '1', '0', 'a']);
  assert.deepEqual(encodeDtmi(v), bytes);
});

test('keeps int versus double, legacy 0xFF objects, binary strings and binary keys', () => {
  const key = String.fromCharCode(0x00, 0xff, 0x80);
  const bin = Buffer.from([0, 1, 2, 0xff, 0xfe, 0]);
  const src = dtmiObject(
    [
      ['d', dtmiDouble(3)],
      ['i', dtmiInt(3)],
      [key, dtmiString(bin)],
      ['big', dtmiInt(-(2n ** 63n))],
      ['neg0', dtmiDouble(-0)],
    ],
    true,
  );
  const bytes = encodeDtmi(src);
  const v = decodeDtmi(bytes) as DtmiObject;
  assert.equal(v.legacy, true);
  assert.equal(dtmiGet(v, 'd')!.kind, 'double');
  assert.equal(dtmiGet(v, 'i')!.kind, 'int');
  assert.deepEqual(getBytes(v, key), bin);
  assert.equal((dtmiGet(v, 'big') as { value: unknown }).value, -(2n ** 63n));
  assert.ok(Object.is(getNumber(v, 'neg0'), -0));
  assert.deepEqual(encodeDtmi(v), bytes);
});

test('accessors', () => {
  const v = fromJs({ n: 5, s: 'text', o: { x: 1.5 }, b: true, list: [1, 'a'] }) as DtmiObject;
  assert.equal(getInt(v, 'n'), 5);
  assert.equal(getInt(v, 's'), undefined);
  assert.equal(getText(v, 's'), 'text');
  assert.equal(getInt(v, 'b'), 1);
  assert.equal(getNumber(getObject(v, 'o')!, 'x'), 1.5);
  assert.equal(getInt(getObject(v, 'o')!, 'x'), undefined, 'a double is not an int');
  assert.deepEqual(toJs(v), { n: 5, s: 'text', o: { x: 1.5 }, b: 1, list: [1, 'a'] });
});

test('sortedDtmi sorts by byte order at every level', () => {
  const v = sortedDtmi(fromJs({ version: 'x', cmd: 'hi', salt: 's', pack_method: 2, z: { b: 1, a: 2 } })) as DtmiObject;
  assert.deepEqual(v.entries.map((e) => e[0]), ['cmd', 'pack_method', 'salt', 'version', 'z']);
  assert.deepEqual(getObject(v, 'z')!.entries.map((e) => e[0]), ['a', 'b']);
});

test('zero-length keys are not written (MistServer skips them)', () => {
  const bytes = encodeDtmi(dtmiObject([['', dtmiInt(1)], ['a', dtmiNull()]]));
  assert.deepEqual(bytes, hex('e0 0001 61 03 0000ee'));
});

test('rejects bad input with HazeError codes', () => {
  const cases: Array<[string, string]> = [
    ['', 'HAZE_ERR_SHORT_READ'],
    ['01 0000', 'HAZE_ERR_SHORT_READ'],
    ['02 00000005 41', 'HAZE_ERR_SHORT_READ'],
    ['e0 0001 61', 'HAZE_ERR_SHORT_READ'],
    ['e0 0000', 'HAZE_ERR_SHORT_READ'],
    ['e0 0000 ef', 'HAZE_ERR_MALFORMED'],
    ['0a 03 0000 00', 'HAZE_ERR_MALFORMED'],
    ['07', 'HAZE_ERR_MALFORMED'],
    ['03 03', 'HAZE_ERR_MALFORMED'],
  ];
  for (const [h, code] of cases) {
    assert.throws(() => decodeDtmi(hex(h)), (e: unknown) => isHaze(e) && (e as HazeError).code === code, h);
    // skipDtmi agrees with decodeDtmi on what is valid (trailing bytes aside).
    if (h !== '03 03') assert.throws(() => skipDtmi(hex(h), 0, hex(h).length), isHaze, `skip ${h}`);
  }
});

test('nesting depth is bounded (no stack overflow on a depth bomb)', () => {
  const bomb = Buffer.alloc(200_000, 0x0a);
  assert.throws(() => decodeDtmi(bomb), (e: unknown) => isHaze(e) && (e as HazeError).code === 'HAZE_ERR_TOO_LARGE');
  assert.throws(() => skipDtmi(bomb, 0, bomb.length), (e: unknown) => isHaze(e) && (e as HazeError).code === 'HAZE_ERR_TOO_LARGE');
  // 32 levels is the default limit; 31 nested arrays decode.
  const ok = Buffer.concat([Buffer.alloc(31, 0x0a), Buffer.from(Array.from({ length: 31 }, () => [0, 0, 0xee]).flat())]);
  assert.equal(decodeDtmi(ok).kind, 'array');
  let deep: DtmiValue = dtmiNull();
  for (let i = 0; i < 40; i++) deep = dtmiArray([deep]);
  assert.throws(() => packedSize(deep), isHaze);
});

test('the number of values is bounded', () => {
  const many = Buffer.concat([Buffer.from([0x0a]), Buffer.alloc(300_000, 0x03), Buffer.from([0, 0, 0xee])]);
  assert.throws(() => decodeDtmi(many), (e: unknown) => isHaze(e) && (e as HazeError).code === 'HAZE_ERR_TOO_LARGE');
  assert.equal((decodeDtmi(many, { maxValues: 400_000 }) as { items: unknown[] }).items.length, 300_000);
});

test('decodeDtmiAt reports the end; strings are subarrays', () => {
  const buf = Buffer.concat([hex('aa'), encodeDtmi(dtmiString('hello')), hex('bb')]);
  const r = decodeDtmiAt(buf, 1, buf.length - 1);
  assert.equal(r.end, buf.length - 1);
  const s = (r.value as { value: Buffer }).value;
  assert.equal(s.buffer, buf.buffer, 'no copy');
});

test('keys past 0xFF and unsafe ints are refused on encode', () => {
  assert.throws(() => encodeDtmi(dtmiObject([['\u0100', dtmiNull()]])), isHaze);
  assert.throws(() => encodeDtmi(dtmiInt(2 ** 60)), isHaze);
  assert.throws(() => encodeDtmi(dtmiInt(2n ** 64n)), isHaze);
});

// ---------------------------------------------------------------------------------------------
// Fuzz

const latin1Key = fc.oneof(
  fc.constantFrom('1', '0', '10', 'a', 'data', 'keyframe', ''),
  fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
);

const dtmiArb = fc.letrec<{ value: DtmiValue; object: DtmiObject }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.integer().map((n) => dtmiInt(n)),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }).map((n) => dtmiInt(n)),
    fc.maxSafeInteger().map((n) => dtmiInt(n)),
    fc.double().map((d) => dtmiDouble(d)),
    fc.integer({ min: -5, max: 5 }).map((n) => dtmiDouble(n)),
    fc.uint8Array({ maxLength: 40 }).map((b) => dtmiString(Buffer.from(b))),
    fc.constant(dtmiNull()),
    tie('object'),
    fc.array(tie('value'), { maxLength: 5 }).map((items) => dtmiArray(items)),
  ),
  object: fc
    .tuple(fc.array(fc.tuple(latin1Key, tie('value')), { maxLength: 6 }), fc.boolean())
    .map(([entries, legacy]) => dtmiObject(entries as DtmiEntry[], legacy)),
}));

test('fuzz: random DTMI values encode -> decode -> encode byte-identical', () => {
  fc.assert(
    fc.property(dtmiArb.value, (v) => {
      const a = encodeDtmi(v);
      assert.equal(a.length, packedSize(v));
      const back = decodeDtmi(a);
      const b = encodeDtmi(back);
      assert.deepEqual(b, a);
      assert.equal(packedSize(back), a.length);
    }),
    { numRuns: 500 },
  );
});

test('fuzz: random bytes give a value or a HazeError', () => {
  const typed = fc.tuple(fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x0a, 0xe0, 0xff), fc.uint8Array({ maxLength: 200 })).map(([t, rest]) => Buffer.concat([Buffer.from([t]), rest]));
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)), typed), (buf) => {
      try {
        const v = decodeDtmi(buf);
        // Whatever decodes re-encodes to the same bytes.
        assert.deepEqual(encodeDtmi(v), buf);
      } catch (e) {
        if (!isHaze(e)) throw e;
      }
      try {
        skipDtmi(buf, 0, buf.length);
      } catch (e) {
        if (!isHaze(e)) throw e;
      }
    }),
    { numRuns: 2000 },
  );
});

test('toJs keeps a "__proto__" key as a plain member', () => {
  const v = dtmiObject([['__proto__', dtmiInt(1)]]);
  const js = toJs(v) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(js), Object.prototype);
  assert.deepEqual(Object.keys(js), ['__proto__']);
});

test('fromJs passes DtmiValues through but not look-alike plain objects', () => {
  const s = dtmiString('x');
  assert.equal(fromJs(s), s);
  const cmd = fromJs({ cmd: 'x', kind: 'null' }) as DtmiObject;
  assert.equal(cmd.kind, 'object');
  assert.deepEqual(cmd.entries.map((e) => e[0]), ['cmd', 'kind']);
});
