// RTMP chunk streams: hand-assembled byte vectors (spec §5.3 layouts, the §5.3.2 example),
// writer/reader round trips for chunk sizes 1..65536, extended timestamps (also on fmt 3
// continuations, and peers that omit them there), interleaved chunk streams, Set Chunk Size
// and Abort inside the stream, bounds, zero-copy bodies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkReader, RTMP_MAX_CHUNK_SIZE, type RtmpMessage } from '../../src/protocols/rtmp/chunk-reader.js';
import { ChunkWriter, encodeMessageType0 } from '../../src/protocols/rtmp/chunk-writer.js';
import { HazeError } from '../../src/util/errors.js';
import { hex } from '../helpers.js';

const u24 = (n: number): string => n.toString(16).padStart(6, '0');
const u32 = (n: number): string => n.toString(16).padStart(8, '0');
const le32 = (n: number): string => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b.toString('hex');
};

function body(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7) & 0xff;
  return b;
}

function simplify(m: RtmpMessage): { csid: number; typeId: number; timestamp: number; streamId: number; body: string } {
  return { csid: m.csid, typeId: m.typeId, timestamp: m.timestamp, streamId: m.streamId, body: m.body.toString('hex') };
}

function readAll(bytes: Buffer, chunkSize: number, splitEvery = 0): RtmpMessage[] {
  const r = new ChunkReader();
  r.setChunkSize(chunkSize);
  if (!splitEvery) return r.push(bytes);
  const out: RtmpMessage[] = [];
  for (let i = 0; i < bytes.length; i += splitEvery) out.push(...r.push(bytes.subarray(i, i + splitEvery)));
  return out;
}

test('spec §5.3.2.1 example: fmt 0, fmt 2, fmt 3, fmt 3 -> timestamps 1000, 1020, 1040, 1060', () => {
  const p = (i: number): string => body(32, i).toString('hex');
  const bytes = hex(
    `03 ${u24(1000)} ${u24(32)} 08 ${le32(12345)} ${p(1)}` + // fmt 0, csid 3
      `83 ${u24(20)} ${p(2)}` + // fmt 2: delta 20
      `c3 ${p(3)}` + // fmt 3: same delta
      `c3 ${p(4)}`,
  );
  const msgs = readAll(bytes, 128);
  assert.deepEqual(
    msgs.map((m) => [m.csid, m.typeId, m.timestamp, m.streamId, m.body.length]),
    [
      [3, 8, 1000, 12345, 32],
      [3, 8, 1020, 12345, 32],
      [3, 8, 1040, 12345, 32],
      [3, 8, 1060, 12345, 32],
    ],
  );
  assert.ok(msgs[3]!.body.equals(body(32, 4)));
});

test('spec §5.3.2.2 example: one 307-byte message in 128-byte chunks (fmt 0 + fmt 3 + fmt 3)', () => {
  const b = body(307);
  const bytes = hex(`04 ${u24(1000)} ${u24(307)} 09 ${le32(12346)} ${b.subarray(0, 128).toString('hex')} c4 ${b.subarray(128, 256).toString('hex')} c4 ${b.subarray(256).toString('hex')}`);
  const [m] = readAll(bytes, 128);
  assert.ok(m);
  assert.equal(m.timestamp, 1000);
  assert.ok(m.body.equals(b));
  // The writer produces exactly these bytes.
  assert.ok(encodeMessageType0(4, 9, 1000, 12346, b, 128).equals(bytes));
});

test('fmt 3 after fmt 0 starting a new message adds the fmt 0 timestamp as delta', () => {
  const bytes = hex(`05 ${u24(40)} ${u24(2)} 08 ${le32(1)} aabb c5 ccdd`);
  assert.deepEqual(
    readAll(bytes, 128).map((m) => m.timestamp),
    [40, 80],
  );
});

test('fmt 1 changes length and type and adds a delta', () => {
  const bytes = hex(`06 ${u24(100)} ${u24(1)} 09 ${le32(1)} 01 46 ${u24(33)} ${u24(2)} 08 0203`);
  assert.deepEqual(
    readAll(bytes, 128).map((m) => [m.typeId, m.timestamp, m.body.toString('hex')]),
    [
      [9, 100, '01'],
      [8, 133, '0203'],
    ],
  );
});

test('basic header forms: csid 2..63 one byte, 64..319 two bytes, 320..65599 three bytes', () => {
  assert.equal(encodeMessageType0(63, 8, 0, 0, Buffer.from([1]), 128)[0], 63);
  assert.deepEqual([...encodeMessageType0(64, 8, 0, 0, Buffer.from([1]), 128).subarray(0, 2)], [0, 0]);
  assert.deepEqual([...encodeMessageType0(319, 8, 0, 0, Buffer.from([1]), 128).subarray(0, 2)], [0, 255]);
  assert.deepEqual([...encodeMessageType0(320, 8, 0, 0, Buffer.from([1]), 128).subarray(0, 3)], [1, 0, 1]);
  assert.deepEqual([...encodeMessageType0(65599, 8, 0, 0, Buffer.from([1]), 128).subarray(0, 3)], [1, 255, 255]);
  for (const csid of [2, 3, 63, 64, 65, 319, 320, 321, 1000, 65599]) {
    const b = body(300, csid);
    const [m] = readAll(encodeMessageType0(csid, 9, 5, 1, b, 128), 128);
    assert.equal(m!.csid, csid);
    assert.ok(m!.body.equals(b));
  }
  assert.throws(() => encodeMessageType0(1, 8, 0, 0, Buffer.alloc(1), 128), HazeError);
  assert.throws(() => encodeMessageType0(65600, 8, 0, 0, Buffer.alloc(1), 128), HazeError);
});

test('extended timestamp: header field 0xFFFFFF, 4 bytes after every header incl. fmt 3', () => {
  const ts = 0x01234567;
  const b = body(300);
  const bytes = encodeMessageType0(6, 9, ts, 1, b, 128);
  const expected = hex(
    `06 ffffff ${u24(300)} 09 ${le32(1)} ${u32(ts)} ${b.subarray(0, 128).toString('hex')} c6 ${u32(ts)} ${b.subarray(128, 256).toString('hex')} c6 ${u32(ts)} ${b.subarray(256).toString('hex')}`,
  );
  assert.ok(bytes.equals(expected));
  const [m] = readAll(bytes, 128);
  assert.equal(m!.timestamp, ts);
  assert.ok(m!.body.equals(b));
  // Exactly 0xFFFFFF also goes extended.
  assert.equal(readAll(encodeMessageType0(6, 9, 0xffffff, 1, b, 128), 128)[0]!.timestamp, 0xffffff);
});

test('extended timestamp omitted on fmt 3 continuations (some peers) is still read right', () => {
  const ts = 0x02000000;
  const b = body(200);
  const bytes = hex(`06 ffffff ${u24(200)} 09 ${le32(1)} ${u32(ts)} ${b.subarray(0, 128).toString('hex')} c6 ${b.subarray(128).toString('hex')}`);
  const [m] = readAll(bytes, 128);
  assert.equal(m!.timestamp, ts);
  assert.ok(m!.body.equals(b));
});

test('extended timestamp delta on fmt 1/2 and fmt 3 new messages', () => {
  const bytes = hex(
    `04 ${u24(10)} ${u24(1)} 08 ${le32(1)} 01` +
      `44 ffffff ${u24(1)} 08 ${u32(0x1000000)} 02` + // fmt 1, delta 2^24
      `c4 ${u32(0x1000000)} 03`, // fmt 3 new message: same delta, repeats the extended field
  );
  assert.deepEqual(
    readAll(bytes, 128).map((m) => m.timestamp),
    [10, 10 + 0x1000000, 10 + 0x2000000],
  );
});

for (const chunkSize of [1, 128, 4096, 65536]) {
  test(`encodeMessageType0 -> ChunkReader round trip, chunk size ${chunkSize}`, () => {
    const sizes = [0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize + 7, 70000].filter((n) => n >= 0 && n <= 200_000);
    const msgs: RtmpMessage[] = [];
    let ts = 0;
    for (const [i, n] of sizes.entries()) {
      ts += i * 1000 + (i === 3 ? 0x1000000 : 0);
      msgs.push({ csid: [4, 5, 6, 70, 400][i % 5]!, typeId: [8, 9, 18][i % 3]!, timestamp: ts, streamId: i % 2, body: body(n, i) });
    }
    const bytes = Buffer.concat(msgs.map((m) => encodeMessageType0(m.csid, m.typeId, m.timestamp, m.streamId, m.body, chunkSize)));
    const want = msgs.map(simplify);
    assert.deepEqual(readAll(bytes, chunkSize).map(simplify), want);
    assert.deepEqual(readAll(bytes, chunkSize, 7).map(simplify), want, 'split every 7 bytes');
    assert.deepEqual(readAll(bytes, chunkSize, 1).map(simplify), want, 'byte by byte');
  });

  test(`ChunkWriter with header compression round trip, chunk size ${chunkSize}`, () => {
    const w = new ChunkWriter({ chunkSize });
    const msgs: RtmpMessage[] = [];
    // Regular audio (same length, same delta -> fmt 3), video with varying sizes (fmt 1),
    // data, a jump back in time (fmt 0), a big timestamp (fmt 0 extended), message stream change.
    let a = 0;
    let v = 0;
    for (let i = 0; i < 40; i++) {
      a += 23;
      msgs.push({ csid: 4, typeId: 8, timestamp: a, streamId: 1, body: body(20, i) });
      if (i % 2 === 0) {
        v += i % 4 === 0 ? 33 : 34;
        msgs.push({ csid: 6, typeId: 9, timestamp: v, streamId: 1, body: body(100 + i * 97, i) });
      }
    }
    msgs.push({ csid: 4, typeId: 8, timestamp: 5, streamId: 1, body: body(20, 99) });
    msgs.push({ csid: 4, typeId: 8, timestamp: 0x1000005, streamId: 1, body: body(300, 98) });
    msgs.push({ csid: 4, typeId: 8, timestamp: 0x1000006, streamId: 2, body: body(300, 97) });
    msgs.push({ csid: 5, typeId: 18, timestamp: 0, streamId: 1, body: Buffer.alloc(0) });
    const bytes = Buffer.concat(msgs.map((m) => w.write(m.csid, m.typeId, m.timestamp, m.streamId, m.body)));
    const plain = Buffer.concat(msgs.map((m) => encodeMessageType0(m.csid, m.typeId, m.timestamp, m.streamId, m.body, chunkSize)));
    assert.ok(bytes.length < plain.length, 'compression saves bytes');
    const want = msgs.map(simplify);
    assert.deepEqual(readAll(bytes, chunkSize).map(simplify), want);
    assert.deepEqual(readAll(bytes, chunkSize, 5).map(simplify), want);
  });
}

test('interleaved chunk streams: chunks of two messages alternate', () => {
  const a = body(300, 1);
  const b = body(200, 2);
  const bytes = hex(
    `04 ${u24(10)} ${u24(300)} 08 ${le32(1)} ${a.subarray(0, 128).toString('hex')}` +
      `06 ${u24(20)} ${u24(200)} 09 ${le32(1)} ${b.subarray(0, 128).toString('hex')}` +
      `c4 ${a.subarray(128, 256).toString('hex')}` +
      `c6 ${b.subarray(128).toString('hex')}` +
      `c4 ${a.subarray(256).toString('hex')}`,
  );
  for (const split of [0, 1, 3, 129]) {
    const msgs = readAll(bytes, 128, split);
    assert.deepEqual(
      msgs.map((m) => [m.csid, m.timestamp, m.body.length]),
      [
        [6, 20, 200],
        [4, 10, 300],
      ],
    );
    assert.ok(msgs[0]!.body.equals(b) && msgs[1]!.body.equals(a));
  }
});

test('Set Chunk Size inside the stream applies to the chunks that follow in the same push', () => {
  const big = body(1000);
  const bytes = Buffer.concat([encodeMessageType0(2, 1, 0, 0, hex('00001000'), 128), encodeMessageType0(6, 9, 0, 1, big, 4096)]);
  const r = new ChunkReader();
  const msgs = r.push(bytes);
  assert.equal(msgs.length, 2);
  assert.equal(msgs[0]!.typeId, 1);
  assert.ok(msgs[1]!.body.equals(big));
  assert.equal(r.peerChunkSize, 4096);
});

test('Set Chunk Size: 0 refused, top bit masked, huge values clamped', () => {
  const r = new ChunkReader();
  assert.throws(() => r.setChunkSize(0), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_PROTOCOL');
  r.setChunkSize(0x7fffffff);
  assert.equal(r.peerChunkSize, RTMP_MAX_CHUNK_SIZE);
  r.push(encodeMessageType0(2, 1, 0, 0, hex('80000100'), RTMP_MAX_CHUNK_SIZE));
  assert.equal(r.peerChunkSize, 256);
  assert.throws(() => new ChunkReader().push(encodeMessageType0(2, 1, 0, 0, hex('00000000'), 128)), HazeError);
});

test('Abort Message drops the partial message of its chunk stream', () => {
  const a = body(300, 1);
  const first = encodeMessageType0(4, 8, 0, 1, a, 128).subarray(0, 12 + 128); // first chunk only
  const abort = encodeMessageType0(2, 2, 0, 0, hex('00000004'), 128);
  const next = encodeMessageType0(4, 8, 50, 1, body(10, 3), 128);
  const msgs = readAll(Buffer.concat([first, abort, next]), 128);
  assert.deepEqual(
    msgs.map((m) => [m.csid, m.typeId, m.timestamp, m.body.length]),
    [
      [2, 2, 0, 4],
      [4, 8, 50, 10],
    ],
  );
});

test('zero copy: a message inside one pushed buffer is a view of it', () => {
  const input = encodeMessageType0(6, 9, 0, 1, body(100), 128);
  const [m] = new ChunkReader().push(input);
  assert.equal(m!.body.buffer, input.buffer);
  assert.equal(m!.body.byteOffset, input.byteOffset + 12);
});

test('bounds: message size, chunk stream count, partial bytes, headers without a fmt 0', () => {
  const isCode = (code: string) => (e: unknown) => e instanceof HazeError && e.code === code;
  assert.throws(() => new ChunkReader({ maxMessageBytes: 1000 }).push(hex(`04 000000 ${u24(1001)} 09 ${le32(1)}`)), isCode('HAZE_ERR_TOO_LARGE'));
  const many = Buffer.concat(Array.from({ length: 9 }, (_, i) => encodeMessageType0(10 + i, 8, 0, 1, Buffer.alloc(1), 128)));
  assert.throws(() => new ChunkReader({ maxChunkStreams: 8 }).push(many), isCode('HAZE_ERR_TOO_LARGE'));
  // Five messages of 300 kB, each with only its first 128-byte chunk sent.
  const partials = Buffer.concat(Array.from({ length: 5 }, (_, i) => Buffer.concat([hex(`${(10 + i).toString(16).padStart(2, '0')} 000000 ${u24(300_000)} 09 ${le32(1)}`), Buffer.alloc(128)])));
  assert.equal(new ChunkReader({ maxInFlightBytes: 1_500_000 }).push(partials).length, 0);
  assert.throws(() => new ChunkReader({ maxInFlightBytes: 1_000_000 }).push(partials), isCode('HAZE_ERR_TOO_LARGE'));
  assert.throws(() => new ChunkReader().push(hex('c4 00')), isCode('HAZE_ERR_PROTOCOL'));
  assert.throws(() => new ChunkReader().push(hex(`44 000000 000001 08 00`)), isCode('HAZE_ERR_PROTOCOL'));
  // A new fmt 0 header while a message is unfinished on the same chunk stream.
  assert.throws(() => new ChunkReader().push(Buffer.concat([encodeMessageType0(4, 8, 0, 1, body(300), 128).subarray(0, 140), encodeMessageType0(4, 8, 0, 1, body(3), 128)])), isCode('HAZE_ERR_PROTOCOL'));
  assert.throws(() => encodeMessageType0(4, 8, 0, 1, Buffer.alloc(0x1000000), 128), isCode('HAZE_ERR_TOO_LARGE'));
  assert.throws(() => encodeMessageType0(4, 8, 0, 1, Buffer.alloc(1), 0), isCode('HAZE_ERR_INVALID_ARG'));
});

test('encodeMessageType0 is pure: same input, same bytes, one buffer per call', () => {
  const b = body(10_000);
  const x = encodeMessageType0(6, 9, 123456, 1, b, 4096);
  const y = encodeMessageType0(6, 9, 123456, 1, b, 4096);
  assert.ok(x.equals(y));
  assert.notEqual(x.buffer === y.buffer && x.byteOffset === y.byteOffset, true);
  assert.equal(x.length, 12 + 2 + 10_000);
});
