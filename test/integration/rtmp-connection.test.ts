// handleRtmpSocket over real sockets: handshake deadline, silent publishers dropped, silent
// players kept, a refused publish ends the socket after the status, backpressure exposed to the
// play source (write() false, writableLength, onDrain), sinks closed on disconnect.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { freePort, sleep } from '../helpers.js';
import { handleRtmpSocket, type RtmpConnectionOptions } from '../../src/protocols/rtmp/connection.js';
import { encodeMessageType0 } from '../../src/protocols/rtmp/chunk-writer.js';
import { RtmpClient, RtmpStatusError } from '../../src/protocols/rtmp/client.js';
import type { RtmpPlayOutput, RtmpSessionHandler } from '../../src/protocols/rtmp/server-session.js';
import { HazeError } from '../../src/util/errors.js';
import { Logger } from '../../src/util/log.js';

const events: string[] = [];
let playOut: RtmpPlayOutput | null = null;
const handler: RtmpSessionHandler = {
  async publish(req) {
    if (req.name === 'nope') throw new HazeError('HAZE_ERR_REFUSED', 'Pushing not allowed here');
    events.push(`publish ${req.name}`);
    return { media: () => {}, close: (r) => events.push(`sink closed: ${r}`) };
  },
  async play(req, out) {
    events.push(`play ${req.name}`);
    playOut = out;
    return { close: (r) => events.push(`source closed: ${r}`) };
  },
};

let server: net.Server;
let port = 0;
const opts: RtmpConnectionOptions = { handshakeTimeoutMs: 300, idleTimeoutMs: 500 };

before(async () => {
  port = await freePort();
  server = net.createServer((s) => handleRtmpSocket(s, handler, new Logger({ test: 'rtmp-connection' }), opts));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
});
after(() => new Promise<void>((r) => server.close(() => r())));

function closedWithin(sock: net.Socket, ms: number): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket not closed in time')), ms);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - t0);
    });
    sock.on('error', () => {});
  });
}

test('a client that does not complete the handshake is dropped at the deadline', async () => {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('connect', () => sock.write(Buffer.from([3, 0, 0]))); // C0 and a few C1 bytes
  const ms = await closedWithin(sock, 3000);
  assert.ok(ms >= 250, `closed after ${ms} ms`);
});

test('a bad version byte closes the connection at once', async () => {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('connect', () => sock.write('GET / HTTP/1.1\r\n\r\n'));
  const ms = await closedWithin(sock, 3000);
  assert.ok(ms < 250, `closed after ${ms} ms`);
});

test('a silent publisher is dropped and its sink closed; a silent player is kept', async () => {
  events.length = 0;
  const pub = new RtmpClient();
  await pub.connect(`rtmp://127.0.0.1:${port}/live/silent`);
  await pub.publish();
  const player = new RtmpClient();
  await player.connect(`rtmp://127.0.0.1:${port}/live/watch`);
  await player.play();
  const closed = new Promise<string>((r) => pub.on('close', r));
  await closed;
  await sleep(50);
  assert.ok(events.some((e) => /^sink closed: .*silent for 500 ms/.test(e)), events.join('\n'));
  await sleep(700);
  assert.equal(player.closed, false, 'player still connected');
  await player.close();
  await sleep(50);
  assert.ok(events.includes('source closed: connection closed') || events.some((e) => e.startsWith('source closed')), events.join('\n'));
});

test('a refused publish: the client gets the status, then the socket ends', async () => {
  const c = new RtmpClient();
  await c.connect(`rtmp://127.0.0.1:${port}/live/nope`);
  const closed = new Promise<string>((r) => c.on('close', r));
  await assert.rejects(c.publish(), (e: unknown) => e instanceof RtmpStatusError && e.rtmpStatus.code === 'NetStream.Publish.Rejected' && e.rtmpStatus.description === 'Pushing not allowed here');
  await closed;
});

test('backpressure: write() false with a reader that does not read, writableLength, onDrain', async () => {
  playOut = null;
  const c = new RtmpClient();
  await c.connect(`rtmp://127.0.0.1:${port}/live/slow`);
  await c.play();
  assert.ok(playOut);
  const out = playOut as RtmpPlayOutput;
  // Stop reading on the client side: reach into the transport the client opened.
  const sock = (c as unknown as { transport: net.Socket }).transport;
  sock.pause();
  const frame = encodeMessageType0(6, 9, 0, 1, Buffer.alloc(60_000, 0x27), 4096);
  let writes = 0;
  while (out.write(frame) && writes < 10_000) writes++;
  assert.ok(writes < 10_000, 'write() eventually returns false');
  assert.ok(out.writableLength() > 0);
  const drained = new Promise<void>((resolve) => {
    const off = out.onDrain(() => {
      off();
      resolve();
    });
  });
  sock.resume();
  await drained;
  assert.ok(out.writableLength() < frame.length * 2);
  await c.close();
});
