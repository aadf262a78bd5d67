// The WebSocket API (src/controller/api-ws.ts) over a real http.Server on 127.0.0.1 with the
// `ws` package as the client: local clients are authorised at once and get the history they
// asked for then live entries; a proxied ("non-local") client logs in with the challenge flow
// (or an Authorization header); wrong passwords get no feed; a silent client is dropped; other
// paths and a full house are refused before the upgrade; a paused reader leaves at most ~10 KB
// queued on the server while live messages are dropped, and gets live messages again once it
// reads.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import type { ApiHost, LiveFeed } from '../../src/controller/api.js';
import { createApiRequestHandler } from '../../src/controller/api-http.js';
import { handleApiWebSocket, parseHistorySpec, selectHistory, type ApiWebSocketOptions } from '../../src/controller/api-ws.js';
import { challengeAnswer, challengeFor, md5Hex } from '../../src/controller/auth.js';
import { ConfigStore } from '../../src/controller/config-store.js';
import type { AccessEntry, LiveFeedEvents, LogEntry, StreamStateEntry } from '../../src/stats/snapshot.js';
import { TypedEmitter } from '../../src/util/events.js';

/** Counts live listeners, to see that a closed connection unsubscribes. */
class CountingEmitter extends TypedEmitter<LiveFeedEvents> {
  listeners = 0;
  override on<K extends keyof LiveFeedEvents>(name: K, fn: (p: LiveFeedEvents[K]) => void): () => void {
    this.listeners++;
    return super.on(name, fn);
  }
  override off<K extends keyof LiveFeedEvents>(name: K, fn: (p: LiveFeedEvents[K]) => void): void {
    this.listeners--;
    super.off(name, fn);
  }
}

const LOGS: LogEntry[] = [
  [100, 'INFO', 'first'],
  [200, 'INFO', 'second', 'live', 42],
  [300, 'WARN', 'third'],
];
const ACCS: AccessEntry[] = [
  [100, 'sess1', 'live', 'HLS', '10.0.0.1', 10, 1, 2, ''],
  [200, 'sess2', 'live', 'RTMP', '10.0.0.2', 20, 3, 4, 'tag'],
  [300, 'sess3', 'vod', 'FLV', '10.0.0.3', 30, 5, 6, ''],
];
const STREAMS: StreamStateEntry[] = [
  ['live', 'Online', 3, 1, 0, []],
  ['vod', 'Online', 1, 1, 0, ['x']],
];

function makeFeed(): LiveFeed & { events: CountingEmitter } {
  return { logs: () => LOGS, accesses: () => ACCS, streamStates: () => STREAMS.map((s) => [...s] as StreamStateEntry), events: new CountingEmitter() };
}

interface Server {
  host: ApiHost;
  feed: ReturnType<typeof makeFeed>;
  port: number;
  sockets: Duplex[];
}

const servers: http.Server[] = [];
const upgraded: Duplex[] = [];
const clients: WebSocket[] = [];
// a failed test must not leave upgraded sockets holding the process open
after(() => {
  for (const c of clients) c.terminate();
  for (const s of upgraded) s.destroy();
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

async function startServer(opts: ApiWebSocketOptions & { feed?: boolean } = {}): Promise<Server> {
  const store = ConfigStore.open(undefined);
  store.update((c) => {
    c.account['admin'] = { password: md5Hex('s3cret') };
  });
  const feed = makeFeed();
  const host: ApiHost = { config: store, instanceId: 'ws-test', streamStats: async () => ({}), logs: () => LOGS, ...(opts.feed === false ? {} : { feed }) };
  const server = http.createServer(createApiRequestHandler(host));
  const sockets: Duplex[] = [];
  server.on('upgrade', (req, socket, head) => {
    sockets.push(socket);
    upgraded.push(socket);
    handleApiWebSocket(req, socket, head, host, opts);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host, feed, port: (server.address() as AddressInfo).port, sockets };
}

/** A `ws` client with a message queue. */
class Client {
  readonly messages: unknown[] = [];
  private waiter: (() => void) | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.messages.push(JSON.parse(data.toString('utf8')));
      this.waiter?.();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static open(port: number, query = '', headers: Record<string, string> = {}): Promise<Client> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws${query}`, { headers });
    clients.push(ws);
    const c = new Client(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
  }

  async next(timeoutMs = 3000): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) assert.fail('no message in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.messages.shift();
  }

  async take(n: number): Promise<unknown[]> {
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) out.push(await this.next());
    return out;
  }

  send(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const REMOTE = { 'X-Forwarded-For': '198.51.100.7' };

function refusalStatus(port: number, path: string): Promise<string> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    clients.push(ws);
    ws.on('error', (err) => resolve(err.message));
    ws.on('open', () => resolve('opened'));
  });
}

test('query forms: logs=N and since:T', () => {
  assert.deepEqual(parseHistorySpec(null), undefined);
  assert.deepEqual(parseHistorySpec(''), undefined);
  assert.deepEqual(parseHistorySpec('2'), { last: 2 });
  assert.deepEqual(parseHistorySpec('junk'), { last: 0 });
  assert.deepEqual(parseHistorySpec('since:200'), { since: 200 });
  assert.deepEqual(selectHistory(LOGS, { last: 2 }), LOGS.slice(1));
  assert.deepEqual(selectHistory(LOGS, { last: 10 }), LOGS);
  assert.deepEqual(selectHistory(LOGS, { last: 0 }), []);
  assert.deepEqual(selectHistory(ACCS, { since: 200 }), ACCS.slice(1));
});

test('local client: auth true, the history asked for, then live entries; unsubscribes on close', async () => {
  const s = await startServer();
  const c = await Client.open(s.port, '?logs=2&accs=since:200&streams=1');
  assert.deepEqual(await c.next(), ['auth', true]);
  assert.deepEqual(await c.take(6), [
    ['log', LOGS[1]],
    ['log', LOGS[2]],
    ['access', ACCS[1]],
    ['access', ACCS[2]],
    ['stream', STREAMS[0]],
    ['stream', STREAMS[1]],
  ]);
  assert.equal(s.feed.events.listeners, 3);
  const log: LogEntry = [400, 'INFO', 'live line', 'live', 7, 'MistOutHLS'];
  const acc: AccessEntry = [401, 'sess4', 'live', 'DASH', '10.0.0.4', 5, 7, 8, ''];
  const st: StreamStateEntry = ['live', 'Offline', 0, 0, 0, []];
  s.feed.events.emit('log', log);
  s.feed.events.emit('access', acc);
  s.feed.events.emit('stream', st);
  assert.deepEqual(await c.take(3), [
    ['log', log],
    ['access', acc],
    ['stream', st],
  ]);
  // frames after the login are ignored; a ping is answered
  c.send(['auth', { username: 'x' }]);
  const pong = new Promise<Buffer>((resolve) => c.ws.once('pong', resolve));
  c.ws.ping(Buffer.from('hi'));
  assert.equal((await pong).toString(), 'hi');
  c.ws.close(1000, 'bye');
  assert.equal((await c.closed).code, 1000);
  for (let i = 0; i < 50 && s.feed.events.listeners > 0; i++) await sleep(20);
  assert.equal(s.feed.events.listeners, 0, 'a closed connection leaves no listener');
  assert.equal(c.messages.length, 0);
});

test('only the subscribed kinds arrive; logs=0 means live only', async () => {
  const s = await startServer();
  const c = await Client.open(s.port, '?logs=0');
  assert.deepEqual(await c.next(), ['auth', true]);
  s.feed.events.emit('access', ACCS[0]!);
  s.feed.events.emit('stream', STREAMS[0]!);
  s.feed.events.emit('log', [500, 'INFO', 'only this']);
  assert.deepEqual(await c.next(), ['log', [500, 'INFO', 'only this']]);
  await sleep(100);
  assert.deepEqual(c.messages, []);
  c.ws.close();
  await c.closed;
});

test('non-local client: auth false, challenge login, then the feed', async () => {
  const s = await startServer();
  const c = await Client.open(s.port, '?logs=1&streams=1', REMOTE);
  assert.deepEqual(await c.next(), ['auth', false]);
  s.feed.events.emit('log', [600, 'INFO', 'not for strangers']);
  c.send(['auth', { username: 'admin', password: '' }]);
  const challenge = challengeFor('127.0.0.1');
  assert.deepEqual(await c.next(), ['auth', { status: 'CHALL', challenge }]);
  c.send(['auth', { username: 'admin', password: challengeAnswer('s3cret', challenge) }]);
  assert.deepEqual(await c.next(), ['auth', { status: 'OK' }]);
  assert.deepEqual(await c.take(3), [
    ['log', LOGS[2]],
    ['stream', STREAMS[0]],
    ['stream', STREAMS[1]],
  ]);
  s.feed.events.emit('log', [601, 'INFO', 'now yes']);
  assert.deepEqual(await c.next(), ['log', [601, 'INFO', 'now yes']]);
  c.ws.close();
  await c.closed;

  // an Authorization header that logs in is as good as a local connection
  const answer = challengeAnswer('s3cret', challenge);
  const h = await Client.open(s.port, '?logs=1', { ...REMOTE, Authorization: `json ${JSON.stringify({ username: 'admin', password: answer })}` });
  assert.deepEqual(await h.take(2), [
    ['auth', true],
    ['log', LOGS[2]],
  ]);
  h.ws.close();
  await h.closed;
});

test('wrong password: a challenge again and no feed', async () => {
  const s = await startServer();
  const c = await Client.open(s.port, '?logs=3&accs=3&streams=1', REMOTE);
  assert.deepEqual(await c.next(), ['auth', false]);
  c.send(['auth', { username: 'admin', password: challengeAnswer('wrong', challengeFor('127.0.0.1')) }]);
  const a = (await c.next()) as [string, { status: string; challenge?: string }];
  assert.equal(a[0], 'auth');
  assert.equal(a[1].status, 'CHALL');
  assert.equal(a[1].challenge, challengeFor('127.0.0.1'));
  assert.equal(s.feed.events.listeners, 0);
  s.feed.events.emit('log', [700, 'INFO', 'secret']);
  await sleep(150);
  assert.deepEqual(c.messages, [], 'no history and no live entries');
  // a wrong Authorization header is not a refusal: the client may still log in by message
  const h = await Client.open(s.port, '', { ...REMOTE, Authorization: 'json {"username":"admin","password":"nope"}' });
  assert.deepEqual(await h.next(), ['auth', false]);
  c.ws.close();
  h.ws.close();
  await Promise.all([c.closed, h.closed]);
});

test('a silent unauthorised client gets "Too slow, sorry" and is closed', async () => {
  const s = await startServer({ authTimeoutMs: 300 });
  const t0 = Date.now();
  const c = await Client.open(s.port, '?logs=1', REMOTE);
  assert.deepEqual(await c.next(), ['auth', false]);
  assert.deepEqual(await c.next(), ['auth', 'Too slow, sorry']);
  assert.ok(Date.now() - t0 >= 250, 'not before the deadline');
  assert.equal((await c.closed).code, 1008);
  assert.equal(s.feed.events.listeners, 0);
});

test('no live feed: the auth answer, then close 1011', async () => {
  const s = await startServer({ feed: false });
  const c = await Client.open(s.port, '?logs=1');
  assert.deepEqual(await c.next(), ['auth', true]);
  assert.equal((await c.closed).code, 1011);
});

test('refusals before the upgrade: other paths 404, a full house 503; the HTTP API still answers', async () => {
  const s = await startServer({ maxClients: 2 });
  assert.match(await refusalStatus(s.port, '/api'), /404/);
  assert.match(await refusalStatus(s.port, '/wsx'), /404/);
  const a = await Client.open(s.port);
  const b = await Client.open(s.port, '/');
  assert.deepEqual([await a.next(), await b.next()], [
    ['auth', true],
    ['auth', true],
  ]);
  assert.match(await refusalStatus(s.port, '/ws'), /503/);
  a.ws.close();
  await a.closed;
  await sleep(50);
  const c = await Client.open(s.port);
  assert.deepEqual(await c.next(), ['auth', true]);
  const res = await fetch(`http://127.0.0.1:${s.port}/api2?command=${encodeURIComponent('{"version":true}')}`);
  assert.equal(res.status, 200);
  b.ws.close();
  c.ws.close();
  await Promise.all([b.closed, c.closed]);
});

test('a client that does not read: the queue stays under ~10 KB, messages drop, and flow resumes', async () => {
  const s = await startServer();
  const c = await Client.open(s.port, '?logs=0');
  assert.deepEqual(await c.next(), ['auth', true]);
  const server = s.sockets.at(-1)!;
  c.ws.pause();
  const line = 'x'.repeat(1000);
  const bound = 10 * 1024 + 1100; // the limit plus one message
  let emitted = 0;
  let maxQueued = 0;
  // emit until the kernel buffers are full and the server queues, then well past that
  let extra = -1;
  while (emitted < 200_000 && extra !== 0) {
    s.feed.events.emit('log', [800, 'INFO', line, emitted]);
    emitted++;
    maxQueued = Math.max(maxQueued, server.writableLength);
    if (maxQueued > bound) break;
    if (extra > 0) extra--;
    else if (extra < 0 && server.writableLength > 0) extra = 2000;
    if (emitted % 1000 === 0) await new Promise((r) => setImmediate(r));
  }
  assert.ok(maxQueued <= bound, `queued ${maxQueued} bytes`);
  assert.equal(extra, 0, 'the kernel buffers filled up');
  c.ws.resume();
  for (let i = 0; i < 300 && server.writableLength > 0; i++) await sleep(10);
  assert.equal(server.writableLength, 0);
  // what the kernel buffers still hold arrives first: wait until nothing more comes
  let got = -1;
  for (let i = 0; i < 100 && got !== c.messages.length; i++) {
    got = c.messages.length;
    await sleep(100);
  }
  assert.ok(got > 0 && got < emitted, `got ${got} of ${emitted}`);
  c.messages.length = 0;
  s.feed.events.emit('log', [900, 'INFO', 'after the drain']);
  assert.deepEqual(await c.next(), ['log', [900, 'INFO', 'after the drain']]);
  c.ws.close();
  await c.closed;
});
