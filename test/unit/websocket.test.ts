// RFC 6455 codec (src/protocols/http/websocket.ts): the handshake answer against the RFC's worked
// example (§1.3), the frame examples of §5.7 byte for byte, round trips of every length form,
// the limits and protocol errors with their close codes, and fast-check fuzzing (random and
// mutated bytes give messages or a HazeError with bounded buffering; any chunk split of a frame
// stream gives the same messages).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CLOSE,
  OPCODE,
  WebSocketError,
  WebSocketFrameReader,
  checkUpgradeRequest,
  closeFrame,
  pingFrame,
  pongFrame,
  refusalResponse,
  serializeFrame,
  textFrame,
  upgradeResponse,
  websocketAccept,
  type WsMessage,
} from '../../src/protocols/http/websocket.js';
import { HazeError } from '../../src/util/errors.js';
import { hex } from '../helpers.js';

const MASK = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
const LIMIT = 64 * 1024;

function readAll(bytes: Buffer, opts?: ConstructorParameters<typeof WebSocketFrameReader>[0]): WsMessage[] {
  return new WebSocketFrameReader(opts).push(bytes);
}

function closeCodeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WebSocketError, `expected a WebSocketError, got ${String(err)}`);
    return err.closeCode;
  }
  assert.fail('expected a WebSocketError');
}

const handshake = (over: Record<string, string | undefined> = {}): { method: string; httpVersion: string; headers: Record<string, string | undefined> } => ({
  method: 'GET',
  httpVersion: '1.1',
  headers: { host: 'server.example.com', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13', ...over },
});

test('handshake: the accept value of RFC 6455 §1.3 and the 101 answer', () => {
  assert.equal(websocketAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  assert.equal(checkUpgradeRequest(handshake()), 'dGhlIHNhbXBsZSBub25jZQ==');
  assert.equal(checkUpgradeRequest(handshake({ upgrade: 'WebSocket', connection: 'keep-alive, Upgrade' })), 'dGhlIHNhbXBsZSBub25jZQ==');
  assert.equal(
    upgradeResponse('dGhlIHNhbXBsZSBub25jZQ=='),
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
  );
  const r = refusalResponse(426, 'no', { 'Sec-WebSocket-Version': '13' });
  assert.match(r, /^HTTP\/1\.1 426 Upgrade Required\r\n/);
  assert.match(r, /\r\nSec-WebSocket-Version: 13\r\n/);
  assert.match(r, /\r\nContent-Length: 3\r\n[\s\S]*\r\n\r\nno\n$/);
});

test('handshake: malformed requests are refused with their HTTP status', () => {
  const status = (req: Parameters<typeof checkUpgradeRequest>[0]): number | undefined => {
    try {
      checkUpgradeRequest(req);
    } catch (err) {
      assert.ok(err instanceof HazeError);
      return err.status;
    }
    return undefined;
  };
  assert.equal(status({ ...handshake(), method: 'POST' }), 405);
  assert.equal(status({ ...handshake(), httpVersion: '1.0' }), 400);
  assert.equal(status(handshake({ upgrade: undefined })), 400);
  assert.equal(status(handshake({ upgrade: 'h2c' })), 400);
  assert.equal(status(handshake({ connection: 'keep-alive' })), 400);
  assert.equal(status(handshake({ 'sec-websocket-version': '8' })), 426);
  assert.equal(status(handshake({ 'sec-websocket-version': undefined })), 426);
  assert.equal(status(handshake({ 'sec-websocket-key': undefined })), 400);
  assert.equal(status(handshake({ 'sec-websocket-key': 'c2hvcnQ=' })), 400, '5 bytes, not 16');
  assert.equal(status(handshake({ 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ!=' })), 400);
});

test('frames: the examples of RFC 6455 §5.7, byte for byte', () => {
  // a single-frame masked text message "Hello" (client to server)
  const maskedHello = hex('81 85 37 fa 21 3d 7f 9f 4d 51 58');
  assert.deepEqual(serializeFrame(OPCODE.text, Buffer.from('Hello'), { mask: MASK }), maskedHello);
  assert.deepEqual(readAll(maskedHello), [{ type: 'text', text: 'Hello' }]);
  // the server's unmasked forms
  assert.deepEqual(textFrame('Hello'), hex('81 05 48 65 6c 6c 6f'));
  assert.deepEqual(pingFrame(Buffer.from('Hello')), hex('89 05 48 65 6c 6c 6f'));
  assert.deepEqual(pongFrame(Buffer.from('Hello')), hex('8a 05 48 65 6c 6c 6f'));
  // a fragmented unmasked text message (read with the mask requirement off)
  const fragmented = hex('01 03 48 65 6c', '80 02 6c 6f');
  assert.deepEqual(readAll(fragmented, { requireMask: false }), [{ type: 'text', text: 'Hello' }]);
  // 256 bytes and 64 KiB binary messages: the 16-bit and 64-bit length forms
  assert.deepEqual(serializeFrame(OPCODE.binary, Buffer.alloc(256)).subarray(0, 4), hex('82 7e 01 00'));
  assert.deepEqual(serializeFrame(OPCODE.binary, Buffer.alloc(65536)).subarray(0, 10), hex('82 7f 00 00 00 00 00 01 00 00'));
  // close frames: code + reason; a reason too long for a control frame is cut
  assert.deepEqual(closeFrame(1009, 'big'), hex('88 05 03 f1 62 69 67'));
  const long = closeFrame(1000, 'é'.repeat(200));
  assert.ok(long.length <= 127 && long[1]! <= 125);
  assert.deepEqual(readAll(serializeFrame(OPCODE.close, long.subarray(2), { mask: MASK })), [{ type: 'close', code: 1000, reason: 'é'.repeat(61) }]);
});

test('frames: round trips of every length form, fragments with interleaved control frames', () => {
  for (const n of [0, 1, 125, 126, 127, 1000, 65535, 65536]) {
    const data = Buffer.alloc(n, n & 0xff);
    for (let i = 0; i < n; i++) data[i] = (i * 7 + n) & 0xff;
    assert.deepEqual(readAll(serializeFrame(OPCODE.binary, data, { mask: MASK })), [{ type: 'binary', data }], `length ${n}`);
  }
  const big = Buffer.alloc(100_000, 1);
  assert.deepEqual(readAll(serializeFrame(OPCODE.binary, big, { mask: MASK }), { maxPayloadBytes: 200_000 }), [{ type: 'binary', data: big }]);
  const stream = Buffer.concat([
    serializeFrame(OPCODE.text, Buffer.from('["auth",'), { mask: MASK, fin: false }),
    serializeFrame(OPCODE.ping, Buffer.from('p'), { mask: MASK }),
    serializeFrame(OPCODE.continuation, Buffer.from('{"x":'), { mask: MASK, fin: false }),
    serializeFrame(OPCODE.pong, Buffer.alloc(0), { mask: MASK }),
    serializeFrame(OPCODE.continuation, Buffer.from('"ü"}]'), { mask: MASK }),
    serializeFrame(OPCODE.close, hex('03 e8 62 79 65'), { mask: MASK }),
    serializeFrame(OPCODE.text, Buffer.from('after close'), { mask: MASK }),
  ]);
  const expected: WsMessage[] = [
    { type: 'ping', data: Buffer.from('p') },
    { type: 'pong', data: Buffer.alloc(0) },
    { type: 'text', text: '["auth",{"x":"ü"}]' },
    { type: 'close', code: 1000, reason: 'bye' },
  ];
  assert.deepEqual(readAll(stream), expected);
  // byte by byte: the same messages, and nothing after the close
  const r = new WebSocketFrameReader();
  const got: WsMessage[] = [];
  for (const b of stream) got.push(...r.push(Buffer.from([b])));
  assert.deepEqual(got, expected);
  assert.deepEqual(r.push(Buffer.from([0x81])), []);
  // an empty close frame has no code
  assert.deepEqual(readAll(serializeFrame(OPCODE.close, Buffer.alloc(0), { mask: MASK })), [{ type: 'close', code: undefined, reason: '' }]);
});

test('limits: over-long frames and messages end with 1009, as soon as the length is known', () => {
  // only the header of a 64 KiB + 1 frame: refused before the payload is waited for
  const header = serializeFrame(OPCODE.binary, Buffer.alloc(LIMIT + 1), { mask: MASK }).subarray(0, 10);
  assert.equal(closeCodeOf(() => readAll(header)), CLOSE.tooBig);
  assert.equal(closeCodeOf(() => readAll(hex('82 ff ff ff ff ff ff ff ff ff'))), CLOSE.tooBig, '64-bit length with the top bit set');
  assert.equal(closeCodeOf(() => readAll(hex('82 fe ff ff'), { maxPayloadBytes: 1000 })), CLOSE.tooBig, '16-bit length');
  // fragments summing past the limit
  const frag = (op: number, n: number, fin: boolean): Buffer => serializeFrame(op, Buffer.alloc(n, 0x61), { mask: MASK, fin });
  const r = new WebSocketFrameReader();
  assert.deepEqual(r.push(frag(OPCODE.text, 40_000, false)), []);
  assert.equal(closeCodeOf(() => r.push(frag(OPCODE.continuation, 40_000, true))), CLOSE.tooBig);
  assert.equal(r.bufferedBytes, 0, 'a failed reader lets go of what it held');
  assert.equal(closeCodeOf(() => r.push(hex('81 80 00 00 00 00'))), CLOSE.tooBig, 'a failed reader stays failed');
  // exactly the limit is fine
  assert.equal(readAll(frag(OPCODE.binary, LIMIT, true)).length, 1);
});

test('protocol errors: unmasked client frames 1002, invalid UTF-8 1007, and the rest of §5', () => {
  assert.equal(closeCodeOf(() => readAll(hex('81 05 48 65 6c 6c 6f'))), CLOSE.protocolError, 'unmasked');
  /** a masked frame with a raw first byte (FIN, reserved bits, opcode) and a short payload */
  const m = (b0: number, payload: Buffer | string = ''): Buffer => {
    const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
    return Buffer.concat([Buffer.from([b0, 0x80 | p.length]), MASK, Buffer.from(p.map((x, i) => x ^ MASK[i & 3]!))]);
  };
  assert.equal(closeCodeOf(() => readAll(m(0xc1, 'x'))), CLOSE.protocolError, 'RSV1 without an extension');
  assert.equal(closeCodeOf(() => readAll(m(0x83))), CLOSE.protocolError, 'reserved data opcode');
  assert.equal(closeCodeOf(() => readAll(m(0x8b))), CLOSE.protocolError, 'reserved control opcode');
  assert.equal(closeCodeOf(() => readAll(m(0x09, 'x'))), CLOSE.protocolError, 'fragmented ping');
  assert.equal(closeCodeOf(() => readAll(hex('89 fe 00 7e', MASK))), CLOSE.protocolError, 'ping over 125 bytes');
  assert.equal(closeCodeOf(() => readAll(m(0x80, 'x'))), CLOSE.protocolError, 'continuation of nothing');
  assert.equal(closeCodeOf(() => readAll(Buffer.concat([m(0x01, 'a'), m(0x81, 'b')]))), CLOSE.protocolError, 'new message inside a fragmented one');
  assert.equal(closeCodeOf(() => readAll(m(0x88, hex('03')))), CLOSE.protocolError, '1-byte close payload');
  assert.equal(closeCodeOf(() => readAll(m(0x88, hex('03 ed')))), CLOSE.protocolError, 'close code 1005 may not be sent');
  assert.equal(closeCodeOf(() => readAll(m(0x88, hex('03 e8 ff')))), CLOSE.invalidPayload, 'close reason not UTF-8');
  assert.equal(closeCodeOf(() => readAll(m(0x81, hex('c3 28')))), CLOSE.invalidPayload, 'text not UTF-8');
  assert.deepEqual(readAll(m(0x88, hex('0f a0'))), [{ type: 'close', code: 4000, reason: '' }], 'application codes 3000-4999 are fine');
  assert.throws(() => serializeFrame(OPCODE.ping, Buffer.alloc(126)), HazeError);
  assert.throws(() => serializeFrame(OPCODE.text, Buffer.alloc(1), { mask: Buffer.alloc(3) }), HazeError);
});

const onlyHazeErrors = (fn: () => void): void => {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof HazeError)) throw err;
  }
};

/** Client frames: data, fragments and control frames, masked with random keys. */
const frameArb = fc.oneof(
  fc.record({ op: fc.constantFrom(OPCODE.text), body: fc.string({ maxLength: 300 }), fin: fc.constant(true) }).map((f) => ({ op: f.op, payload: Buffer.from(f.body), fin: f.fin })),
  fc.record({ op: fc.constantFrom(OPCODE.binary), payload: fc.uint8Array({ maxLength: 70_000 / 64 }), fin: fc.constant(true) }).map((f) => ({ ...f, payload: Buffer.from(f.payload) })),
  fc.record({ op: fc.constantFrom(OPCODE.ping, OPCODE.pong), payload: fc.uint8Array({ maxLength: 125 }), fin: fc.constant(true) }).map((f) => ({ ...f, payload: Buffer.from(f.payload) })),
);
const streamArb = fc.array(fc.tuple(frameArb, fc.uint8Array({ minLength: 4, maxLength: 4 })), { minLength: 1, maxLength: 12 }).map((frames) => Buffer.concat(frames.map(([f, key]) => serializeFrame(f.op, f.payload, { fin: f.fin, mask: Buffer.from(key) }))));

test('fuzz: random bytes give messages or a HazeError, with bounded buffering', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }), fc.boolean(), (chunks, requireMask) => {
      // without the mask requirement random bytes get past the first header check more often
      const r = new WebSocketFrameReader({ maxPayloadBytes: 1024, requireMask });
      onlyHazeErrors(() => {
        for (const c of chunks) {
          r.push(Buffer.from(c));
          // one frame (header + payload) and one message's fragments at most
          assert.ok(r.bufferedBytes <= 14 + 1024 + 1024 + 300, `held ${r.bufferedBytes}`);
        }
      });
    }),
    { numRuns: 2000 },
  );
});

test('fuzz: mutated valid frame streams give messages or a HazeError', () => {
  fc.assert(
    fc.property(streamArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (stream, edits) => {
      const bytes = Buffer.from(stream);
      for (const [pos, value] of edits) bytes[pos % bytes.length] = value;
      onlyHazeErrors(() => readAll(bytes));
      onlyHazeErrors(() => readAll(bytes.subarray(0, edits[0]![0] % bytes.length)));
    }),
    { numRuns: 500 },
  );
});

test('fuzz: any chunk split of a frame stream gives the messages of the whole', () => {
  fc.assert(
    fc.property(streamArb, fc.array(fc.nat(), { maxLength: 10 }), (stream, cuts) => {
      const whole = readAll(stream);
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      const r = new WebSocketFrameReader();
      const got: WsMessage[] = [];
      let at = 0;
      for (const p of [...points, stream.length]) {
        got.push(...r.push(stream.subarray(at, p)));
        at = p;
      }
      assert.deepEqual(got, whole);
    }),
    { numRuns: 300 },
  );
});
