// Fuzzing the RTMP wire code with fast-check: random and mutated bytes into ChunkReader and
// RtmpServerSession raise only HazeError; a real client->server byte stream (recorded from our
// RtmpClient talking to our session in memory) split at random points yields the same messages
// and the same published media as fed whole.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChunkReader, type RtmpMessage } from '../../src/protocols/rtmp/chunk-reader.js';
import { encodeMessageType0 } from '../../src/protocols/rtmp/chunk-writer.js';
import { encodeCommand } from '../../src/protocols/rtmp/messages.js';
import { RtmpServerSession, type RtmpSessionHandler } from '../../src/protocols/rtmp/server-session.js';
import { HazeError } from '../../src/util/errors.js';
import { memoryPair } from './rtmp-memory-pair.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function onlyHazeErrors(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof HazeError)) throw err;
  }
}

const acceptAll = (log?: [number, number, string][]): RtmpSessionHandler => ({
  publish: async () => ({ media: (t, ts, b) => log?.push([t, ts, b.toString('hex')]), close: () => {} }),
  play: async () => ({ close: () => {} }),
});

/** A valid stream of messages to mutate: control, commands, media with extended timestamps. */
const SAMPLE = Buffer.concat([
  encodeMessageType0(2, 1, 0, 0, Buffer.from('00000100', 'hex'), 128),
  encodeMessageType0(3, 20, 0, 0, encodeCommand('connect', 1, { app: 'live', tcUrl: 'rtmp://h/live' }), 256),
  encodeMessageType0(3, 20, 0, 0, encodeCommand('createStream', 2, null), 256),
  encodeMessageType0(8, 20, 0, 1, encodeCommand('publish', 3, null, 'x', 'live'), 256),
  encodeMessageType0(6, 9, 0x1000001, 1, Buffer.alloc(700, 0x17), 256),
  encodeMessageType0(400, 8, 5, 1, Buffer.alloc(300, 0xaf), 256),
  encodeMessageType0(2, 2, 0, 0, Buffer.from('00000006', 'hex'), 256),
  encodeMessageType0(2, 22, 0, 1, Buffer.from('0900000200000000000001170000000d', 'hex'), 256),
]);

const HANDSHAKE = (() => {
  const b = Buffer.alloc(1 + 1536 * 2);
  b[0] = 3;
  return b;
})();

test('fuzz: random bytes into ChunkReader give messages or a HazeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), fc.constantFrom(1, 2, 128, 4096), fc.integer({ min: 1, max: 64 }), (bytes, chunkSize, split) => {
      const r = new ChunkReader({ maxInFlightBytes: 4 * 1024 * 1024 });
      r.setChunkSize(chunkSize);
      const buf = Buffer.from(bytes);
      onlyHazeErrors(() => {
        for (let i = 0; i < buf.length; i += split) r.push(buf.subarray(i, i + split));
      });
    }),
    { numRuns: 400 },
  );
});

test('fuzz: mutated valid chunk streams into ChunkReader give messages or a HazeError', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(SAMPLE.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (mutations) => {
      const buf = Buffer.from(SAMPLE);
      for (const [at, v] of mutations) buf[at] = v;
      onlyHazeErrors(() => new ChunkReader({ maxInFlightBytes: 4 * 1024 * 1024 }).push(buf));
    }),
    { numRuns: 400 },
  );
});

test('fuzz: random and mutated bytes into RtmpServerSession give only HazeError', async () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4000 }), (bytes) => {
      const s = new RtmpServerSession({ send: () => true, handler: acceptAll(), peer: 'fuzz' });
      onlyHazeErrors(() => s.receive(Buffer.from(bytes)));
    }),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      const s = new RtmpServerSession({ send: () => true, handler: acceptAll(), peer: 'fuzz' });
      onlyHazeErrors(() => {
        s.receive(HANDSHAKE);
        s.receive(Buffer.from(bytes));
      });
    }),
    { numRuns: 300 },
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(SAMPLE.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), (mutations) => {
      const buf = Buffer.from(SAMPLE);
      for (const [at, v] of mutations) buf[at] = v;
      const s = new RtmpServerSession({ send: () => true, handler: acceptAll(), peer: 'fuzz' });
      onlyHazeErrors(() => {
        s.receive(HANDSHAKE);
        s.receive(buf);
      });
    }),
    { numRuns: 300 },
  );
  await tick(); // let accepted publishes settle without unhandled rejections
});

test('a recorded client->server stream split at random points gives the same messages and media', async () => {
  // Record: our client publishing to our session in memory.
  const live: [number, number, string][] = [];
  const pair = memoryPair(acceptAll(live));
  await pair.client.connect('rtmp://example/live/cam');
  await pair.client.publish();
  pair.client.sendMetaData({ width: 320, height: 180 });
  let ts = 0;
  for (let i = 0; i < 60; i++) {
    ts += 33;
    pair.client.sendMedia(9, ts, Buffer.alloc(i % 10 === 0 ? 9000 : 50 + i * 13, i));
    pair.client.sendMedia(8, ts + 1, Buffer.alloc(20, i));
  }
  pair.client.sendMedia(9, 0x1000000 + 7, Buffer.alloc(5000, 1)); // extended timestamps
  pair.client.sendMedia(9, 0x1000000 + 40, Buffer.alloc(10, 2));
  for (let i = 0; i < 200 && live.length < 123; i++) await tick();
  assert.equal(live.length, 123);
  const recorded = Buffer.concat(pair.recorded);
  await pair.client.close();
  assert.deepEqual(pair.sessionErrors, []);

  // The same bytes fed whole to a fresh session / reader.
  const replay = async (parts: Buffer[]): Promise<[number, number, string][]> => {
    const got: [number, number, string][] = [];
    const s = new RtmpServerSession({ send: () => true, handler: acceptAll(got), peer: 'replay' });
    for (const p of parts) s.receive(p);
    await tick();
    return got;
  };
  const afterHandshake = recorded.subarray(1 + 1536 * 2);
  const wholeMsgs = new ChunkReader().push(afterHandshake).map(simplify);
  assert.ok(wholeMsgs.length > 120);
  assert.deepEqual(await replay([recorded]), live);

  await fc.assert(
    fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: recorded.length - 1 }), { maxLength: 40 }), async (cuts) => {
      const points = [0, ...cuts.sort((a, b) => a - b), recorded.length];
      const parts = points.slice(1).map((end, i) => recorded.subarray(points[i], end));
      assert.deepEqual(await replay(parts), live);
      const r = new ChunkReader();
      const msgs: RtmpMessage[] = [];
      for (const p of parts) {
        const local = p.byteOffset - recorded.byteOffset - (1 + 1536 * 2);
        // Feed only the post-handshake part of each piece to the bare reader.
        const start = Math.max(0, -local);
        if (start < p.length) msgs.push(...r.push(p.subarray(start)));
      }
      assert.deepEqual(msgs.map(simplify), wholeMsgs);
    }),
    { numRuns: 60 },
  );
});

function simplify(m: RtmpMessage): [number, number, number, number, string] {
  return [m.csid, m.typeId, m.timestamp, m.streamId, m.body.toString('hex')];
}
