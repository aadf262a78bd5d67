// DTSC frames (reference/mistserver.md §2.2, §2.3, §2.6, Appendix A.1/A.2): DTP2, DTCM, the
// incremental reader, and fuzzing of the reader.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HazeError } from '../../src/util/errors.js';
import { makePacket } from '../../src/media/types.js';
import { dtmiInt, dtmiObject, dtmiString, encodeDtmi, getInt, getText } from '../../src/containers/dtsc/dtmi.js';
import {
  DtscFrameReader,
  decodeDtcm,
  decodeDtp2,
  decodeDtp2WithBpos,
  decodeDtpd,
  decodeFrame,
  dtp2Size,
  encodeDtcm,
  encodeDtp2,
  encodeObjectFrame,
  type DtscFrame,
} from '../../src/containers/dtsc/packets.js';
import { hex } from '../helpers.js';

function hazeCode(code: string) {
  return (e: unknown) => e instanceof HazeError && e.code === code;
}

// Appendix A.1: track 1, t=1000 ms, keyframe, payload "ABCD" — 58 bytes.
const A1 = hex(`
  44 54 50 32  00 00 00 32  00 00 00 01  00 00 00 00 00 00 03 e8
  e0
  00 08 6b 65 79 66 72 61 6d 65  01 00 00 00 00 00 00 00 01
  00 04 64 61 74 61  02 00 00 00 04 41 42 43 44
  00 00 ee`);

// Appendix A.2: DTCM ping — 26 bytes.
const A2 = hex('44 54 43 4d 00 00 00 12  e0 00 03 63 6d 64 02 00 00 00 04 70 69 6e 67 00 00 ee');

test('Appendix A.1: DTP2 keyframe packet, both directions', () => {
  assert.equal(A1.length, 58);
  const enc = encodeDtp2(makePacket(1, 1000, Buffer.from('ABCD'), true));
  assert.deepEqual(enc, A1);
  const p = decodeDtp2(A1);
  assert.equal(p.trackId, 1);
  assert.equal(p.timeMs, 1000);
  assert.equal(p.offsetMs, 0);
  assert.equal(p.keyframe, true);
  assert.deepEqual(p.data, Buffer.from('ABCD'));
  assert.equal(p.data.buffer, A1.buffer, 'payload is a subarray, not a copy');
  assert.equal(p.data.byteOffset, A1.byteOffset + 51);
});

test('Appendix A.2: DTCM ping, both directions', () => {
  assert.equal(A2.length, 26);
  assert.deepEqual(encodeDtcm({ cmd: 'ping' }), A2);
  const c = decodeDtcm(A2);
  assert.equal(getText(c, 'cmd'), 'ping');
  const f = decodeFrame(A2);
  assert.equal(f.kind, 'command');
});

test('DTP2 members offset, bpos, keyframe, data in that order, only when non-zero', () => {
  const data = Buffer.from('xyz');
  const pk = { trackId: 7, timeMs: 2 ** 40 + 5, offsetMs: -33, keyframe: true, data };
  const enc = encodeDtp2(pk, 3, 123456);
  assert.equal(enc.length, 24 + 17 + 15 + 19 + 11 + 3);
  assert.equal(enc.length, dtp2Size(pk, 123456));
  assert.equal(enc.readUInt32BE(4), enc.length - 8);
  assert.equal(enc.readUInt32BE(8), 3, 'wire track id');
  const body = enc.subarray(20);
  assert.deepEqual(
    body,
    Buffer.concat([
      hex('e0'),
      hex('0006'), Buffer.from('offset'), hex('01 ffffffffffffffdf'),
      hex('0004'), Buffer.from('bpos'), hex('01 000000000001e240'),
      hex('0008'), Buffer.from('keyframe'), hex('01 0000000000000001'),
      hex('0004'), Buffer.from('data'), hex('02 00000003'), data,
      hex('0000ee'),
    ]),
  );
  const d = decodeDtp2WithBpos(enc);
  assert.deepEqual(d.packet, { trackId: 3, timeMs: 2 ** 40 + 5, offsetMs: -33, keyframe: true, data });
  assert.equal(d.bpos, 123456);
  // Nothing optional: 24 + 11 + n.
  assert.equal(encodeDtp2(makePacket(1, 0, data, false)).length, 24 + 11 + 3);
});

test('DTP2 readers look members up by name and honour a cleared "Keyframe"', () => {
  // data first, then an unknown member, then keyframe (a writer with another order).
  const obj = dtmiObject([
    ['data', dtmiString('hi')],
    ['extra', dtmiObject([['x', dtmiInt(1)]])],
    ['offset', dtmiInt(40)],
    ['keyframe', dtmiInt(1)],
  ]);
  const body = encodeDtmi(obj);
  const frame = Buffer.concat([Buffer.from('DTP2'), Buffer.alloc(4), hex('00000002 0000000000000064'), body]);
  frame.writeUInt32BE(frame.length - 8, 4);
  const p = decodeDtp2(frame);
  assert.deepEqual(p, { trackId: 2, timeMs: 100, offsetMs: 40, keyframe: true, data: Buffer.from('hi') });

  // MistServer clears the flag in place: 'k' -> 'K' and value 1 -> 0.
  const kf = Buffer.from(encodeDtp2(makePacket(1, 5, Buffer.from('a'), true)));
  const at = kf.indexOf('keyframe');
  kf[at] = 0x4b; // 'K'
  kf[at + 8 + 8] = 0;
  const cleared = decodeDtp2(kf);
  assert.equal(cleared.keyframe, false);
  assert.deepEqual(cleared.data, Buffer.from('a'));
});

test('DTPD (v1) packets are read', () => {
  const f = encodeObjectFrame(
    'DTPD',
    dtmiObject([
      ['trackid', dtmiInt(4)],
      ['time', dtmiInt(900)],
      ['keyframe', dtmiInt(1)],
      ['data', dtmiString('pay')],
    ]),
  );
  const d = decodeDtpd(f);
  assert.deepEqual(d.packet, { trackId: 4, timeMs: 900, offsetMs: 0, keyframe: true, data: Buffer.from('pay') });
  const fr = decodeFrame(f);
  assert.ok(fr.kind === 'packet' && fr.version === 1);
});

test('DTCM members are sorted by key at every level', () => {
  const a = encodeDtcm({ version: 'v', stream: 'live', cmd: 'play', sync: true, opts: { z: 1, a: 2.5 } });
  const c = decodeDtcm(a);
  assert.deepEqual(c.entries.map((e) => e[0]), ['cmd', 'opts', 'stream', 'sync', 'version']);
  assert.equal(getInt(c, 'sync'), 1, 'booleans are ints');
  assert.deepEqual(encodeDtcm(c), a);
});

test('encodeDtp2 refuses values that do not fit', () => {
  assert.throws(() => encodeDtp2(makePacket(1, -1, Buffer.alloc(1), false)), hazeCode('HAZE_ERR_INVALID_ARG'));
  assert.throws(() => encodeDtp2(makePacket(1, 1.5, Buffer.alloc(1), false)), hazeCode('HAZE_ERR_INVALID_ARG'));
  assert.throws(() => encodeDtp2(makePacket(1, 0, Buffer.alloc(1), false), 2 ** 32), hazeCode('HAZE_ERR_INVALID_ARG'));
});

test('decoders reject malformed frames with HazeError', () => {
  assert.throws(() => decodeDtp2(A1.subarray(0, 30)), hazeCode('HAZE_ERR_SHORT_READ'));
  assert.throws(() => decodeDtp2(A2), hazeCode('HAZE_ERR_MALFORMED'));
  assert.throws(() => decodeFrame(Buffer.from('XXXX\0\0\0\0')), hazeCode('HAZE_ERR_MALFORMED'));
  const trailing = Buffer.concat([A1, Buffer.from([0])]);
  trailing.writeUInt32BE(trailing.length - 8, 4);
  assert.throws(() => decodeDtp2(trailing), hazeCode('HAZE_ERR_MALFORMED'));
});

// ---------------------------------------------------------------------------------------------
// DtscFrameReader

function stream(): Buffer {
  return Buffer.concat([
    encodeDtcm({ cmd: 'hi', version: 'test' }),
    encodeObjectFrame('DTSC', dtmiObject([['live', dtmiInt(1)], ['version', dtmiInt(4)]])),
    encodeDtp2(makePacket(1, 0, Buffer.alloc(100, 1), true, 40)),
    encodeDtp2(makePacket(2, 5, Buffer.alloc(3, 2), false)),
    A1,
    A2,
  ]);
}

function summary(frames: DtscFrame[]): unknown[] {
  return frames.map((f) => [f.kind, f.raw.toString('hex'), f.kind === 'packet' ? [f.packet.trackId, f.packet.timeMs, f.packet.offsetMs, f.packet.keyframe, f.packet.data.toString('hex'), f.bpos] : null]);
}

test('reader: whole stream, one byte at a time, and frames are subarrays when whole', () => {
  const s = stream();
  const r = new DtscFrameReader();
  const whole = r.push(s);
  r.finish();
  assert.deepEqual(whole.map((f) => f.kind), ['command', 'header', 'packet', 'packet', 'packet', 'command']);
  assert.ok(whole.every((f) => f.raw.buffer === s.buffer));
  const r2 = new DtscFrameReader();
  const bytewise: DtscFrame[] = [];
  for (let i = 0; i < s.length; i++) bytewise.push(...r2.push(s.subarray(i, i + 1)));
  r2.finish();
  assert.deepEqual(summary(bytewise), summary(whole));
});

test('reader: garbage magic is HAZE_ERR_MALFORMED and sticky', () => {
  const r = new DtscFrameReader();
  assert.throws(() => r.push(Buffer.from('GARBAGE!more')), hazeCode('HAZE_ERR_MALFORMED'));
  assert.throws(() => r.push(A1), hazeCode('HAZE_ERR_MALFORMED'));
  // Also when the bad magic arrives split across chunks.
  const r2 = new DtscFrameReader();
  assert.deepEqual(r2.push(Buffer.from('DX')), []);
  assert.throws(() => r2.push(Buffer.from('YZ\0\0\0\0')), hazeCode('HAZE_ERR_MALFORMED'));
});

test('reader: frame size is bounded before allocating', () => {
  const r = new DtscFrameReader();
  assert.throws(() => r.push(hex('44545032 ffffffff')), hazeCode('HAZE_ERR_TOO_LARGE'));
  const small = new DtscFrameReader({ maxFrameBytes: 50 });
  assert.throws(() => small.push(A1), hazeCode('HAZE_ERR_TOO_LARGE'));
  const exact = new DtscFrameReader({ maxFrameBytes: 58 });
  assert.equal(exact.push(A1).length, 1);
});

test('reader: finish() reports a cut frame', () => {
  const r = new DtscFrameReader();
  assert.deepEqual(r.push(A1.subarray(0, 40)), []);
  assert.equal(r.bufferedBytes, 40);
  assert.throws(() => r.finish(), hazeCode('HAZE_ERR_SHORT_READ'));
});

test('fuzz: random bytes into the reader give frames or a HazeError', () => {
  const framed = fc
    .tuple(fc.constantFrom('DTP2', 'DTSC', 'DTCM', 'DTPD'), fc.uint8Array({ maxLength: 120 }))
    .map(([m, body]) => {
      const b = Buffer.alloc(8 + body.length);
      b.write(m, 0, 'latin1');
      b.writeUInt32BE(body.length, 4);
      b.set(body, 8);
      return b;
    });
  const chunks = fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), framed), { maxLength: 6 });
  fc.assert(
    fc.property(chunks, (parts) => {
      const r = new DtscFrameReader({ maxFrameBytes: 1 << 20 });
      try {
        for (const p of parts) r.push(p);
        r.finish();
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }),
    { numRuns: 2000 },
  );
});

test('fuzz: any chunk split gives the same frames as the whole stream', () => {
  const s = stream();
  const whole = summary(new DtscFrameReader().push(s));
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: s.length - 1 }), { maxLength: 20 }), (cuts) => {
      cuts.sort((a, b) => a - b);
      const r = new DtscFrameReader();
      const got: DtscFrame[] = [];
      let prev = 0;
      for (const c of [...cuts, s.length]) {
        got.push(...r.push(s.subarray(prev, c)));
        prev = c;
      }
      r.finish();
      assert.deepEqual(summary(got), whole);
    }),
    { numRuns: 300 },
  );
});
