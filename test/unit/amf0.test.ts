// AMF0: byte-exact round trips against hand-assembled bytes (from the AMF0 spec's type layouts),
// typical RTMP commands, ffmpeg's own onMetaData bytes, bad input, and fuzzing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures, hex } from '../helpers.js';
import {
  Amf0Avmplus,
  Amf0EcmaArray,
  Amf0LongString,
  Amf0TypedObject,
  amf0Get,
  decodeAmf0,
  decodeAmf0Value,
  encodeAmf0,
  type Amf0Value,
} from '../../src/containers/amf/amf0.js';
import { Amf3Object } from '../../src/containers/amf/amf3.js';
import { ByteReader } from '../../src/util/bytes.js';
import { HazeError } from '../../src/util/errors.js';

// A tiny independent AMF0 byte assembler, written from the spec's layouts (not from the encoder).
const f64 = (n: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return b;
};
const u16 = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const utf = (s: string): Buffer => Buffer.concat([u16(Buffer.byteLength(s)), Buffer.from(s)]);
const NUM = (n: number): Buffer => hex('00', f64(n));
const STR = (s: string): Buffer => hex('02', utf(s));
const BOOL = (b: boolean): Buffer => hex(b ? '0101' : '0100');
const NULL = hex('05');
const UNDEF = hex('06');
const END = hex('000009');
const OBJ = (...kv: [string, Buffer][]): Buffer => hex('03', ...kv.flatMap(([k, v]) => [utf(k), v]), END);
const ECMA = (count: number, ...kv: [string, Buffer][]): Buffer => hex('08', u32(count), ...kv.flatMap(([k, v]) => [utf(k), v]), END);

function ecma(entries: [string, Amf0Value][]): Amf0EcmaArray {
  return new Amf0EcmaArray(entries);
}

const cases: { name: string; values: Amf0Value[]; bytes: Buffer }[] = [
  { name: 'number', values: [1], bytes: hex('00 3ff0000000000000') },
  { name: 'negative, fraction, NaN-free extremes', values: [-0.5, 1e300, 0], bytes: hex(NUM(-0.5), NUM(1e300), NUM(0)) },
  { name: 'booleans', values: [true, false], bytes: hex('0101 0100') },
  { name: 'string', values: ['a'], bytes: hex('02 0001 61') },
  { name: 'empty and UTF-8 string', values: ['', 'héllo ✓'], bytes: hex(STR(''), STR('héllo ✓')) },
  { name: 'null, undefined', values: [null, undefined], bytes: hex('05 06') },
  { name: 'empty object', values: [{}], bytes: hex('03 000009') },
  { name: 'object with empty-key member', values: [{ '': 1 }], bytes: hex('03', utf(''), NUM(1), END) },
  { name: 'nested object', values: [{ a: { b: 'c' } }], bytes: OBJ(['a', OBJ(['b', STR('c')])]) },
  { name: 'ECMA array, integer-like keys keep wire order', values: [ecma([['b', 1], ['1', 2], ['0', 3]])], bytes: ECMA(3, ['b', NUM(1)], ['1', NUM(2)], ['0', NUM(3)]) },
  { name: 'strict array', values: [[1, 'x', null]], bytes: hex('0a', u32(3), NUM(1), STR('x'), NULL) },
  { name: 'date (time zone 0)', values: [new Date(1700000000123)], bytes: hex('0b', f64(1700000000123), '0000') },
  { name: 'long string', values: [new Amf0LongString('long')], bytes: hex('0c', u32(4), Buffer.from('long')) },
  { name: 'typed object', values: [new Amf0TypedObject('flex.Foo', { x: 1 })], bytes: hex('10', utf('flex.Foo'), utf('x'), NUM(1), END) },
  {
    name: 'AVM+ switch to AMF3 object',
    values: [new Amf0Avmplus(new Amf3Object('', [], new Map([['a', 1]]), true))],
    bytes: hex('11 0a 0b 01 03 61 04 01 01'),
  },
  {
    name: 'RTMP connect',
    values: [
      'connect',
      1,
      {
        app: 'live',
        type: 'nonprivate',
        flashVer: 'FMLE/3.0 (compatible; FMSc/1.0)',
        swfUrl: 'rtmp://127.0.0.1/live',
        tcUrl: 'rtmp://127.0.0.1/live',
        fpad: false,
        capabilities: 15,
        audioCodecs: 4071,
        videoCodecs: 252,
        videoFunction: 1,
        objectEncoding: 0,
        fourCcList: ['hvc1', 'av01', 'vp09'],
      },
    ],
    bytes: hex(
      STR('connect'),
      NUM(1),
      OBJ(
        ['app', STR('live')],
        ['type', STR('nonprivate')],
        ['flashVer', STR('FMLE/3.0 (compatible; FMSc/1.0)')],
        ['swfUrl', STR('rtmp://127.0.0.1/live')],
        ['tcUrl', STR('rtmp://127.0.0.1/live')],
        ['fpad', BOOL(false)],
        ['capabilities', NUM(15)],
        ['audioCodecs', NUM(4071)],
        ['videoCodecs', NUM(252)],
        ['videoFunction', NUM(1)],
        ['objectEncoding', NUM(0)],
        ['fourCcList', hex('0a', u32(3), STR('hvc1'), STR('av01'), STR('vp09'))],
      ),
    ),
  },
  {
    name: 'RTMP _result for connect',
    values: [
      '_result',
      1,
      { fmsVer: 'FMS/3,0,1,123', capabilities: 31 },
      { level: 'status', code: 'NetConnection.Connect.Success', description: 'Connection succeeded.', objectEncoding: 0 },
    ],
    bytes: hex(
      STR('_result'),
      NUM(1),
      OBJ(['fmsVer', STR('FMS/3,0,1,123')], ['capabilities', NUM(31)]),
      OBJ(['level', STR('status')], ['code', STR('NetConnection.Connect.Success')], ['description', STR('Connection succeeded.')], ['objectEncoding', NUM(0)]),
    ),
  },
  { name: 'RTMP createStream _result', values: ['_result', 4, null, 1], bytes: hex(STR('_result'), NUM(4), NULL, NUM(1)) },
  {
    name: 'RTMP onStatus',
    values: ['onStatus', 0, null, { level: 'status', code: 'NetStream.Publish.Start', description: 'live/test is now published.' }],
    bytes: hex(
      STR('onStatus'),
      NUM(0),
      NULL,
      OBJ(['level', STR('status')], ['code', STR('NetStream.Publish.Start')], ['description', STR('live/test is now published.')]),
    ),
  },
  {
    name: '@setDataFrame onMetaData',
    values: ['@setDataFrame', 'onMetaData', ecma([['duration', 0], ['width', 1280], ['height', 720], ['videocodecid', 7], ['stereo', true], ['encoder', 'obs-output module']])],
    bytes: hex(
      STR('@setDataFrame'),
      STR('onMetaData'),
      ECMA(6, ['duration', NUM(0)], ['width', NUM(1280)], ['height', NUM(720)], ['videocodecid', NUM(7)], ['stereo', BOOL(true)], ['encoder', STR('obs-output module')]),
    ),
  },
  { name: 'undefined in a command (releaseStream)', values: ['releaseStream', 2, null, 'key'], bytes: hex(STR('releaseStream'), NUM(2), NULL, STR('key')) },
  { name: 'UNDEF constant', values: [undefined, 0], bytes: hex(UNDEF, NUM(0)) },
];

test('AMF0 encode/decode table is byte exact both ways', () => {
  for (const c of cases) {
    assert.deepEqual(encodeAmf0(c.values), c.bytes, `encode ${c.name}`);
    assert.deepStrictEqual(decodeAmf0(c.bytes), c.values, `decode ${c.name}`);
    assert.deepEqual(encodeAmf0(decodeAmf0(c.bytes)), c.bytes, `re-encode ${c.name}`);
  }
});

test('ECMA array count field that disagrees with its entries is kept', () => {
  // Some encoders write 0 as the ECMA array count.
  const bytes = hex(STR('onMetaData'), ECMA(0, ['width', NUM(320)], ['height', NUM(180)]));
  const v = decodeAmf0(bytes);
  assert.ok(v[1] instanceof Amf0EcmaArray);
  assert.equal(v[1].declaredCount, 0);
  assert.equal(amf0Get(v[1], 'width'), 320);
  assert.deepEqual(encodeAmf0(v), bytes);
});

test("ffmpeg's onMetaData script tag of small.flv re-encodes byte for byte", () => {
  const flv = fs.readFileSync(path.join(mistFixtures, 'small.flv'));
  // First tag after the 13-byte header: type 18, u24 size, then the body at 13 + 11.
  assert.equal(flv[13], 18);
  const size = flv.readUIntBE(14, 3);
  const body = flv.subarray(24, 24 + size);
  const values = decodeAmf0(body);
  assert.equal(values[0], 'onMetaData');
  assert.ok(values[1] instanceof Amf0EcmaArray);
  assert.equal(amf0Get(values[1], 'width'), 320);
  assert.equal(amf0Get(values[1], 'height'), 180);
  assert.equal(amf0Get(values[1], 'audiosamplerate'), 48000);
  assert.deepEqual(encodeAmf0(values), body);
});

test('AMF0 references (0x07) resolve to the earlier complex value', () => {
  const bytes = hex('0a', u32(2), OBJ(['a', NUM(1)]), '07 0001');
  const [arr] = decodeAmf0(bytes) as [Amf0Value[]];
  // index 0 is the strict array itself, index 1 the object
  assert.equal(arr[1], arr[0]);
});

test('decodeAmf0Value reads one value and leaves the reader after it', () => {
  const r = new ByteReader(hex(STR('a'), NUM(2)));
  assert.equal(decodeAmf0Value(r), 'a');
  assert.equal(r.pos, 4);
  assert.equal(decodeAmf0Value(r), 2);
  assert.equal(r.remaining, 0);
});

test('a "__proto__" key is an own property, not a prototype change', () => {
  const bytes = OBJ(['__proto__', OBJ(['polluted', BOOL(true)])]);
  const [o] = decodeAmf0(bytes) as [Record<string, unknown>];
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  assert.ok(Object.hasOwn(o, '__proto__'));
  assert.deepEqual(encodeAmf0([o as Amf0Value]), bytes);
});

test('bad AMF0 input throws HazeError with a stable code', () => {
  const bad: [string, Buffer, string][] = [
    ['truncated number', hex('00 3ff0'), 'HAZE_ERR_SHORT_READ'],
    ['truncated string', hex('02 0005 6162'), 'HAZE_ERR_SHORT_READ'],
    ['object without end', hex('03', utf('a'), NUM(1)), 'HAZE_ERR_SHORT_READ'],
    ['unknown marker', hex('42'), 'HAZE_ERR_MALFORMED'],
    ['movieclip', hex('04'), 'HAZE_ERR_UNSUPPORTED'],
    ['strict array count beyond buffer', hex('0a ffffffff 05'), 'HAZE_ERR_MALFORMED'],
    ['reference out of range', hex('07 0000'), 'HAZE_ERR_MALFORMED'],
    ['deep nesting', Buffer.concat([...Array.from({ length: 100 }, () => hex('0a 00000001')), NULL]), 'HAZE_ERR_TOO_LARGE'],
  ];
  for (const [name, bytes, code] of bad) {
    assert.throws(() => decodeAmf0(bytes), (e: unknown) => e instanceof HazeError && e.code === code, name);
  }
  assert.throws(() => encodeAmf0([{ k: (() => 1) as unknown as Amf0Value }]), HazeError);
  assert.throws(() => encodeAmf0([{ [`${'k'.repeat(70000)}`]: 1 }]), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_TOO_LARGE');
});

test('strings over 65535 bytes are written as long strings', () => {
  const s = 'x'.repeat(70000);
  const b = encodeAmf0([s]);
  assert.equal(b[0], 0x0c);
  assert.equal(b.readUInt32BE(1), 70000);
  const [v] = decodeAmf0(b);
  assert.ok(v instanceof Amf0LongString);
  assert.equal(v.value, s);
});

// ---- fuzzing --------------------------------------------------------------------------------

function onlyHazeErrors(run: () => unknown): void {
  try {
    run();
  } catch (e) {
    if (!(e instanceof HazeError)) throw e;
  }
}

const amf0Arb: fc.Arbitrary<Amf0Value> = fc.letrec<{ v: Amf0Value }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.double({ noNaN: true }),
    fc.boolean(),
    fc.string(),
    fc.constant(null),
    fc.constant(undefined),
    fc.array(tie('v'), { maxLength: 4 }),
    // Non-integer-like keys: plain objects order integer keys first (see amf0.ts).
    fc.dictionary(fc.string().filter((k) => !/^\d+$/.test(k) && k !== ''), tie('v'), { maxKeys: 4 }),
    fc.array(fc.tuple(fc.string(), tie('v')), { maxLength: 4 }).map((e) => new Amf0EcmaArray(e)),
  ),
})).v;

test('fuzz: encode(decode(encode(v))) is stable for generated values', () => {
  fc.assert(
    fc.property(fc.array(amf0Arb, { maxLength: 4 }), (values) => {
      const b = encodeAmf0(values);
      const back = decodeAmf0(b);
      assert.deepEqual(encodeAmf0(back), b);
    }),
    { numRuns: 300 },
  );
});

test('fuzz: random bytes decode or throw HazeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      onlyHazeErrors(() => decodeAmf0(Buffer.from(bytes)));
    }),
    { numRuns: 2000 },
  );
});

test('fuzz: mutated RTMP commands decode or throw HazeError', () => {
  const seeds = cases.map((c) => c.bytes);
  fc.assert(
    fc.property(fc.nat(seeds.length - 1), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (i, muts) => {
      const b = Buffer.from(seeds[i]!);
      for (const [pos, val] of muts) b[pos % b.length] = val;
      onlyHazeErrors(() => decodeAmf0(b));
    }),
    { numRuns: 2000 },
  );
});
