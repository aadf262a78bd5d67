// The dtsc:// listener (reference/mistserver.md §2.6) over 127.0.0.1 sockets with a real
// StreamHub fed from the small.mp4 fixture: pull (header + every packet, byte-compatible with
// MistServer's capture small-mp4.dtsc-wire), push (accepted, refused, unannounced track, data
// before clearance), timeouts, and fuzzing of the server side; Haze's analyser as a second reader.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import fc from 'fast-check';
import { getNumber, getObject, getText, toJs, type DtmiObject } from '../../src/containers/dtsc/dtmi.js';
import { DtscFrameReader, encodeDtcm, encodeDtp2, type DtscFrame } from '../../src/containers/dtsc/packets.js';
import { writeDtscHeader, type DtscTrack } from '../../src/containers/dtsc/header.js';
import { StreamHub } from '../../src/hub/stream-hub.js';
import { readFilePackets } from '../../src/inputs/file-packets.js';
import type { Packet, Track } from '../../src/media/types.js';
import { runAnalyse } from '../../src/cli/analyse.js';
import { HazeError } from '../../src/util/errors.js';
import { Logger, addLogSink, setLogLevel } from '../../src/util/log.js';
import { serveDtscConnection, type DtscListenerDeps, type DtscListenerOptions, type DtscPublishHandle } from '../../src/protocols/dtsc/listener.js';
import { DtscFrameSplitter } from '../../src/protocols/dtsc/frame-splitter.js';
import { DTSC_TEXT, longestKeyMs } from '../../src/protocols/dtsc/listener-wire.js';
import { mistFixtures, sleep } from '../helpers.js';

setLogLevel('warn');
const logLines: string[] = [];
addLogSink((_level, msg, ctx) => {
  if (ctx['protocol'] === 'DTSC') logLines.push(msg);
});
const log = new Logger();

// ---------------------------------------------------------------------------------------------
// Fixtures

interface Media {
  tracks: Track[];
  packets: Packet[];
}

let mediaCache: Media | undefined;
async function media(): Promise<Media> {
  if (mediaCache) return mediaCache;
  const tracks: Track[] = [];
  const packets: Packet[] = [];
  for await (const c of readFilePackets(path.join(mistFixtures, 'small.mp4'))) {
    if (c.tracks) tracks.splice(0, tracks.length, ...c.tracks);
    packets.push(...c.packets);
  }
  mediaCache = { tracks, packets };
  return mediaCache;
}

/** The fixture with its tracks renumbered (hub ids 7 = video, 9 = audio) so the wire renumbering shows. */
async function renumbered(): Promise<Media> {
  const m = await media();
  const map = new Map(m.tracks.map((t) => [t.id, t.type === 'video' ? 7 : 9]));
  return {
    tracks: m.tracks.map((t) => ({ ...t, id: map.get(t.id)! })),
    packets: m.packets.map((p) => ({ ...p, trackId: map.get(p.trackId)! })),
  };
}

function copyPacket(p: Packet): Packet {
  return { trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data };
}

function captureFrames(file = 'small-mp4.dtsc-wire'): DtscFrame[] {
  return new DtscFrameReader().push(fs.readFileSync(path.join(mistFixtures, file)));
}

// ---------------------------------------------------------------------------------------------
// Server and client

interface Server {
  port: number;
  close(): Promise<void>;
}

async function startServer(deps: Partial<DtscListenerDeps>, opts: DtscListenerOptions = {}): Promise<Server> {
  const full: DtscListenerDeps = {
    forViewer: deps.forViewer ?? (async (name) => Promise.reject(new HazeError('HAZE_ERR_NOT_FOUND', `Stream not found: ${name}`))),
    startPush: deps.startPush ?? (async () => Promise.reject(new HazeError('HAZE_ERR_REFUSED', 'no pushes here'))),
    log,
  };
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    serveDtscConnection(s, full, opts);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

class Client {
  readonly socket: net.Socket;
  readonly frames: DtscFrame[] = [];
  private readonly reader = new DtscFrameReader();
  closed = false;
  readonly done: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect({ host: '127.0.0.1', port });
    this.socket.on('data', (c: Buffer) => this.frames.push(...this.reader.push(c)));
    this.socket.on('error', () => undefined);
    this.done = new Promise((resolve) =>
      this.socket.on('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  send(b: Buffer): void {
    this.socket.write(b);
  }

  commands(): DtmiObject[] {
    return this.frames.flatMap((f) => (f.kind === 'command' ? [f.command] : []));
  }

  packets(): Extract<DtscFrame, { kind: 'packet' }>[] {
    return this.frames.filter((f): f is Extract<DtscFrame, { kind: 'packet' }> => f.kind === 'packet');
  }

  headers(): Extract<DtscFrame, { kind: 'header' }>[] {
    return this.frames.filter((f): f is Extract<DtscFrame, { kind: 'header' }> => f.kind === 'header');
  }

  command(cmd: string): DtmiObject | undefined {
    return this.commands().find((c) => getText(c, 'cmd') === cmd);
  }

  async waitFor<T>(what: string, pred: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v !== undefined && v !== false) return v;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; got ${this.frames.length} frames: ${JSON.stringify(this.commands().map((c) => toJs(c)))}`);
      await sleep(10);
    }
  }

  async closedWithin(ms = 3000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('connection was not closed')), ms)));
    try {
      await Promise.race([this.done, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function hubWith(tracks: readonly Track[], name = 'live'): StreamHub {
  const hub = new StreamHub(name, { sourceGraceMs: 0 });
  hub.attachSource();
  for (const t of tracks) hub.setTrack(t);
  return hub;
}

function errorMsg(c: Client): string | undefined {
  const e = c.command('error');
  return e ? getText(e, 'msg') : undefined;
}

// ---------------------------------------------------------------------------------------------
// Greeting and pull

test('accept: a hi command with the members of MistServer\'s, in sorted order', async () => {
  const srv = await startServer({});
  const c = new Client(srv.port);
  try {
    const hi = await c.waitFor('hi', () => c.command('hi'));
    const mist = captureFrames()[0]!;
    assert.equal(mist.kind, 'command');
    const keys = (o: DtmiObject): string[] => o.entries.map(([k]) => k);
    assert.deepEqual(keys(hi), keys((mist as { command: DtmiObject }).command));
    assert.equal(getNumber(hi, 'pack_method'), 2);
    assert.match(getText(hi, 'salt') ?? '', /^[0-9a-f]{32}$/);
    assert.match(getText(hi, 'version') ?? '', /^Haze\//);
  } finally {
    c.destroy();
    await srv.close();
  }
});

test('pull: live header, then every packet in order, DTP2 frames laid out as MistServer\'s capture', async () => {
  const m = await renumbered();
  const hub = hubWith(m.tracks);
  const srv = await startServer({ forViewer: async (name) => (name === 'live' ? hub : Promise.reject(new HazeError('HAZE_ERR_NOT_FOUND', 'no'))) });
  const c = new Client(srv.port);
  try {
    c.send(encodeDtcm({ cmd: 'play', stream: 'live', version: 'test' }));
    const header = await c.waitFor('header', () => c.headers()[0]);
    // header: live, version 4, unixzero; track objects named and laid out as MistServer's
    const top = header.header.entries.map(([k]) => k);
    assert.deepEqual(top, ['live', 'version', 'unixzero', 'tracks']);
    assert.equal(getNumber(header.header, 'live'), 1);
    assert.equal(getNumber(header.header, 'version'), 4);
    const mistHeader = captureFrames().find((f) => f.kind === 'header') as Extract<DtscFrame, { kind: 'header' }>;
    const ours = getObject(header.header, 'tracks')!;
    const theirs = getObject(mistHeader.header, 'tracks')!;
    assert.deepEqual(ours.entries.map(([k]) => k), theirs.entries.map(([k]) => k), 'track identifiers');
    for (let i = 0; i < ours.entries.length; i++) {
      const [id, o] = ours.entries[i]!;
      const t = theirs.entries[i]![1] as DtmiObject;
      assert.deepEqual((o as DtmiObject).entries.map(([k]) => k), t.entries.map(([k]) => k), `members of ${id}`);
      for (const k of ['trackid', 'init', 'codec', 'type', 'width', 'height', 'fpks', 'rate', 'size', 'channels']) {
        assert.deepEqual(toJs((o as DtmiObject).entries.find(([n]) => n === k)?.[1] ?? { kind: 'null' }), toJs(t.entries.find(([n]) => n === k)?.[1] ?? { kind: 'null' }), `${id}.${k}`);
      }
    }

    for (const p of m.packets) hub.push(copyPacket(p));
    await c.waitFor('all packets', () => c.packets().length >= m.packets.length);
    const got = c.packets();
    assert.equal(got.length, m.packets.length);
    const wire = new Map([[7, 1], [9, 2]]);
    got.forEach((f, i) => {
      const want = m.packets[i]!;
      assert.equal(f.packet.trackId, wire.get(want.trackId), `packet ${i} track`);
      assert.equal(f.packet.timeMs, want.timeMs, `packet ${i} time`);
      assert.equal(f.packet.offsetMs, want.offsetMs);
      assert.equal(f.packet.keyframe, want.keyframe);
      assert.ok(f.packet.data.equals(want.data), `packet ${i} payload`);
    });

    // byte compatibility with MistServer 3.10 (which holds each track's last packet back)
    const mist = captureFrames().filter((f): f is Extract<DtscFrame, { kind: 'packet' }> => f.kind === 'packet');
    for (const wireId of [1, 2]) {
      const a = got.filter((f) => f.packet.trackId === wireId);
      const b = mist.filter((f) => f.packet.trackId === wireId);
      assert.equal(b.length, a.length - 1);
      b.forEach((mf, i) => {
        const of = a[i]!;
        if (wireId === 1) assert.ok(of.raw.equals(mf.raw), `video frame ${i} differs from MistServer's`);
        else {
          // Haze flags every audio frame as a keyframe (its media model); MistServer's MP4 input
          // does not. Without that member the frames are identical.
          assert.equal(of.packet.keyframe, true);
          assert.equal(mf.packet.keyframe, false);
          assert.ok(encodeDtp2({ ...of.packet, keyframe: false }, wireId).equals(mf.raw), `audio frame ${i} differs from MistServer's`);
        }
      });
    }

    // the stream ends: the connection ends cleanly
    hub.end('publisher left');
    await c.closedWithin();
  } finally {
    c.destroy();
    await srv.close();
  }
});

test('pull: a late puller starts at the newest keyframe; a track change sends a new header', async () => {
  const m = await media();
  const hub = hubWith(m.tracks);
  const half = m.packets.filter((p) => p.timeMs < 2500);
  for (const p of half) hub.push(copyPacket(p));
  const srv = await startServer({ forViewer: async () => hub });
  const c = new Client(srv.port);
  try {
    c.send(encodeDtcm({ cmd: 'play', stream: 'live' }));
    const gop = hub.packetsFromLatestKey();
    assert.ok(gop.length > 0 && gop[0]!.keyframe && gop[0]!.timeMs > 0);
    await c.waitFor('gop', () => c.packets().length >= gop.length);
    assert.deepEqual(
      c.packets().map((f) => f.packet.timeMs),
      gop.map((p) => p.timeMs),
    );
    assert.equal(c.packets()[0]!.packet.keyframe, true);
    // a third track appears: a new header with it, before its packets
    hub.setTrack({ id: 40, type: 'meta', codec: 'JSON', init: Buffer.alloc(0), bps: 0, lang: 'und' });
    hub.push({ trackId: 40, timeMs: 2600, offsetMs: 0, keyframe: true, data: Buffer.from('{"a":1}') });
    await c.waitFor('second header', () => c.headers().length >= 2 && c.packets().some((f) => f.packet.trackId === 3));
    const h2 = getObject(c.headers()[1]!.header, 'tracks')!;
    assert.deepEqual(h2.entries.map(([k]) => k), ['video_H264_320x180_30fps_0', 'audio_AAC_2ch_48000hz_1', 'meta_JSON__2']);
    const lastHeaderIdx = c.frames.lastIndexOf(c.headers()[1]!);
    const metaIdx = c.frames.findIndex((f) => f.kind === 'packet' && f.packet.trackId === 3);
    assert.ok(lastHeaderIdx < metaIdx);
  } finally {
    c.destroy();
    await srv.close();
    hub.end('test over');
  }
});

test('pull: ping when idle, Pong! to a ping, reset re-sends the header, check_key_duration', async () => {
  const m = await media();
  const hub = hubWith(m.tracks);
  for (const p of m.packets) hub.push(copyPacket(p));
  const srv = await startServer({ forViewer: async () => hub }, { pingAfterMs: 150 });
  const c = new Client(srv.port);
  try {
    c.send(encodeDtcm({ cmd: 'play', stream: 'live' }));
    await c.waitFor('server ping', () => c.command('ping'));
    c.send(encodeDtcm({ cmd: 'ping' }));
    await c.waitFor('pong', () => c.commands().find((x) => getText(x, 'cmd') === 'ok' && getText(x, 'msg') === DTSC_TEXT.pong));
    c.send(encodeDtcm({ cmd: 'reset' }));
    await c.waitFor('reset', () => c.commands().find((x) => getText(x, 'msg') === DTSC_TEXT.reset) && c.headers().length === 2);
    // keys are 1 s: 1100 ms matches, 5000 ms does not
    const longest = longestKeyMs(hub.packetsFromTime(0), 1);
    assert.equal(longest, 1000);
    c.send(encodeDtcm({ cmd: 'check_key_duration', id: 1, duration: 1100 }));
    await c.waitFor('key ok', () => c.commands().find((x) => getText(x, 'msg') === DTSC_TEXT.keyMatches));
    c.send(encodeDtcm({ cmd: 'check_key_duration', id: 1, duration: 5000 }));
    await c.closedWithin();
    assert.match(errorMsg(c) ?? '', /^Key duration mismatch; disconnecting 127\.0\.0\.1 to recover \(1000 -> 5000\)$/);
  } finally {
    c.destroy();
    await srv.close();
    hub.end('test over');
  }
});

test('pull: unknown stream -> error and close; a slow reader is dropped, the hub unaffected', async () => {
  const srv = await startServer({});
  const c = new Client(srv.port);
  try {
    c.send(encodeDtcm({ cmd: 'play', stream: 'nope' }));
    await c.closedWithin();
    assert.equal(errorMsg(c), 'Stream not found: nope');
  } finally {
    c.destroy();
    await srv.close();
  }

  const m = await media();
  const hub = hubWith(m.tracks);
  const srv2 = await startServer({ forViewer: async () => hub }, { viewerPolicy: { highWaterBytes: 64 * 1024, lowWaterBytes: 16 * 1024, maxBehindMs: 2000 } });
  const slow = new Client(srv2.port);
  try {
    slow.send(encodeDtcm({ cmd: 'play', stream: 'live' }));
    await slow.waitFor('header', () => slow.headers()[0]);
    slow.socket.pause(); // stops reading: the kernel buffers fill, then the server's queue
    const big = Buffer.alloc(256 * 1024, 1);
    assert.equal(hub.listenerCount, 1);
    let t = 0;
    for (; t < 60_000 && hub.listenerCount > 0; t += 40) {
      hub.push({ trackId: 1, timeMs: t, offsetMs: 0, keyframe: t % 1000 === 0, data: big });
      await sleep(1);
    }
    // the client does not read, so the server side is what to look at: its feed left the hub
    assert.equal(hub.listenerCount, 0, 'the slow puller is gone');
    assert.ok(t < 30_000, `dropped only after ${t} ms of media`);
    assert.ok(logLines.some((l) => l.includes('too slow')));
  } finally {
    slow.destroy();
    await srv2.close();
    hub.end('test over');
  }
});

// ---------------------------------------------------------------------------------------------
// Push

function pushDeps(hub: StreamHub, ends: Array<[string, boolean]>, password = 'secret'): Partial<DtscListenerDeps> {
  return {
    startPush: async (name, pw, peer): Promise<DtscPublishHandle> => {
      assert.equal(peer, '127.0.0.1');
      if (name !== hub.name) throw new HazeError('HAZE_ERR_REFUSED', `push to unconfigured stream ${name} refused`);
      if (pw !== password) throw new HazeError('HAZE_ERR_AUTH', `push to ${name} refused: wrong password`);
      await sleep(20); // checks take time: frames sent meanwhile must wait, not be lost
      return { hub, end: (reason, clean) => void ends.push([reason, clean]) };
    },
  };
}

function headerFor(tracks: readonly Track[], unixzeroMs?: number): Buffer {
  const dt = tracks.map((t): DtscTrack => ({ ...t, firstMs: 0, lastMs: 0, maxBps: t.bps }));
  return writeDtscHeader({ live: true, vod: false, tracks: dt, ...(unixzeroMs === undefined ? {} : { unixzeroMs }) }, { withIndex: false });
}

test('push: cleared, header, packets (sent without waiting for the ok) reach the hub unchanged', async () => {
  const m = await renumbered();
  const hub = new StreamHub('live', { sourceGraceMs: 0 });
  hub.attachSource();
  const received: Packet[] = [];
  hub.subscribe({ onPacket: (p) => received.push(copyPacket(p)), onTracks: () => undefined, onEnd: () => undefined });
  const ends: Array<[string, boolean]> = [];
  const srv = await startServer(pushDeps(hub, ends));
  const c = new Client(srv.port);
  try {
    const unixzero = Date.now() - 60_000;
    const frames = [encodeDtcm({ cmd: 'push', password: 'secret', stream: 'live', version: 'test' }), headerFor(m.tracks, unixzero), ...m.packets.map((p) => encodeDtp2(p))];
    const all = Buffer.concat(frames);
    // in odd-sized pieces, so frames straddle writes
    for (let i = 0; i < all.length; i += 7777) c.send(all.subarray(i, i + 7777));
    await c.waitFor('packets in hub', () => received.length === m.packets.length && c.commands().length >= 3);
    const oks = c.commands().filter((x) => getText(x, 'cmd') === 'ok').map((x) => getText(x, 'msg'));
    assert.deepEqual(oks, [DTSC_TEXT.cleared, 'DTSC_HEAD parsed, we went from 0 to 2 tracks. Bring on those data packets!']);
    assert.ok(hub.online);
    assert.equal(hub.unixZeroMs, unixzero, 'unixzero honoured');
    assert.deepEqual(hub.tracks.map((t) => t.id).sort(), [7, 9]);
    const vt = hub.tracks.find((t) => t.type === 'video')!;
    assert.ok(vt.init.equals(m.tracks.find((t) => t.type === 'video')!.init));
    received.forEach((p, i) => assert.deepEqual(p, copyPacket(m.packets[i]!), `packet ${i}`));
    c.socket.end();
    await c.closedWithin();
    await c.waitFor('end', () => ends.length > 0);
    assert.deepEqual(ends, [['client closed the connection', true]]);
  } finally {
    c.destroy();
    await srv.close();
    hub.end('test over');
  }
});

test('push: MistServer\'s own frames (the capture) bring the stream online', async () => {
  const hub = new StreamHub('live', { sourceGraceMs: 0 });
  hub.attachSource();
  let count = 0;
  hub.subscribe({ onPacket: () => void count++, onTracks: () => undefined, onEnd: () => undefined });
  const srv = await startServer(pushDeps(hub, []));
  const c = new Client(srv.port);
  try {
    c.send(encodeDtcm({ cmd: 'push', stream: 'live', password: 'secret' }));
    c.send(fs.readFileSync(path.join(mistFixtures, 'small-mp4.dtsc')));
    await c.waitFor('packets', () => count === 307);
    assert.ok(hub.online, 'audio without keyframe flags still brings the stream online');
    assert.deepEqual(hub.tracks.map((t) => t.codec), ['H264', 'AAC']);
  } finally {
    c.destroy();
    await srv.close();
    hub.end('test over');
  }
});

test('push refused: wrong password -> MistServer\'s error text, close, nothing reaches the hub', async () => {
  const m = await media();
  const hub = new StreamHub('live', { sourceGraceMs: 0 });
  const ends: Array<[string, boolean]> = [];
  const srv = await startServer(pushDeps(hub, ends));
  const c = new Client(srv.port);
  try {
    c.send(Buffer.concat([encodeDtcm({ cmd: 'push', stream: 'live', password: 'wrong' }), headerFor(m.tracks), encodeDtp2(m.packets[0]!)]));
    await c.closedWithin();
    assert.equal(errorMsg(c), DTSC_TEXT.pushRefused);
    assert.equal(getText(c.command('error')!, 'cmd'), 'error');
    assert.equal(hub.tracks.length, 0);
    assert.equal(ends.length, 0);
    assert.ok(logLines.some((l) => l.includes('refused') && l.includes('wrong password')));
  } finally {
    c.destroy();
    await srv.close();
  }
});

test('push: a packet for an unannounced track is fatal; the push ends uncleanly', async () => {
  const m = await media();
  const hub = new StreamHub('live', { sourceGraceMs: 0 });
  hub.attachSource();
  const ends: Array<[string, boolean]> = [];
  const srv = await startServer(pushDeps(hub, ends));
  const c = new Client(srv.port);
  try {
    c.send(encodeDtcm({ cmd: 'push', stream: 'live', password: 'secret' }));
    c.send(headerFor(m.tracks));
    c.send(encodeDtp2({ ...m.packets[0]!, trackId: 5 }));
    await c.closedWithin();
    assert.equal(errorMsg(c), DTSC_TEXT.unannounced);
    assert.equal(ends.length, 1);
    assert.equal(ends[0]![1], false);
  } finally {
    c.destroy();
    await srv.close();
    hub.end('test over');
  }
});

test('data before clearance is rejected (header and packet), with MistServer\'s texts', async () => {
  const m = await media();
  const srv = await startServer({});
  for (const [frame, text] of [
    [headerFor(m.tracks), DTSC_TEXT.headNotCleared],
    [encodeDtp2(m.packets[0]!), DTSC_TEXT.dataNotCleared],
    [Buffer.from('GET / HTTP/1.1\r\n\r\n'), DTSC_TEXT.invalidHeader],
  ] as const) {
    const c = new Client(srv.port);
    try {
      c.send(frame);
      await c.closedWithin();
      assert.equal(errorMsg(c), text);
    } finally {
      c.destroy();
    }
  }
  await srv.close();
});

test('a client silent before the handshake is dropped; an oversized command ends the connection', async () => {
  const srv = await startServer({}, { handshakeTimeoutMs: 200 });
  const c = new Client(srv.port);
  const c2 = new Client(srv.port);
  // a command length field of 1 GiB: refused from its prefix, nothing allocated
  c2.send(Buffer.from('DTCM\x40\x00\x00\x00', 'latin1'));
  try {
    const t0 = Date.now();
    await c.closedWithin(2000);
    assert.ok(Date.now() - t0 >= 150);
    assert.ok(logLines.some((l) => l.includes('no play or push within 200 ms')));
    await c2.closedWithin(2000);
    assert.match(errorMsg(c2) ?? '', /exceeds/);
  } finally {
    c.destroy();
    c2.destroy();
    await srv.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Second reader: Haze's analyser

test('haze analyse dtsc://127.0.0.1:PORT/live reads the pull', async () => {
  const m = await media();
  const hub = hubWith(m.tracks);
  for (const p of m.packets) hub.push(copyPacket(p));
  const srv = await startServer({ forViewer: async () => hub });
  try {
    let out = '';
    let err = '';
    const code = await runAnalyse([`dtsc://127.0.0.1:${srv.port}/live`, '--format', 'json', '--live-ms', '1000', '--packets'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
    });
    assert.equal(code, 0, err);
    const doc = JSON.parse(out) as { container: string; tracks: Array<{ codec: string }>; packetCount: number; problems: unknown[] };
    assert.equal(doc.container, 'dtsc');
    assert.deepEqual(doc.tracks.map((t) => t.codec).sort(), ['AAC', 'H264']);
    assert.equal(doc.packetCount, hub.packetsFromLatestKey().length);
    assert.deepEqual(doc.problems, []);
  } finally {
    await srv.close();
    hub.end('test over');
  }
});

// ---------------------------------------------------------------------------------------------
// Fuzzing

test('fuzz: the splitter returns the capture\'s frames for any chunking, and only frames or HazeErrors for random bytes', () => {
  const wire = fs.readFileSync(path.join(mistFixtures, 'small-mp4.dtsc-wire'));
  const whole = captureFrames().map((f) => f.raw);
  const drain = (s: DtscFrameSplitter, out: Buffer[]): void => {
    for (let f = s.next(); f; f = s.next()) out.push(Buffer.from(f));
  };
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 40_000 }), { minLength: 1, maxLength: 30 }), (cuts) => {
      const s = new DtscFrameSplitter(() => undefined, 1 << 30);
      const out: Buffer[] = [];
      let pos = 0;
      for (const n of cuts) {
        if (pos >= wire.length) break;
        s.append(wire.subarray(pos, pos + n));
        pos += n;
        drain(s, out);
      }
      if (pos < wire.length) s.append(wire.subarray(pos));
      drain(s, out);
      assert.equal(out.length, whole.length);
      out.forEach((f, i) => assert.ok(f.equals(whole[i]!)));
    }),
    { numRuns: 60 },
  );
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 8 }), (chunks) => {
      const s = new DtscFrameSplitter((_m, size) => {
        if (size > 4096) throw new HazeError('HAZE_ERR_TOO_LARGE', 'big');
      }, 1 << 20);
      try {
        for (const c of chunks) {
          s.append(Buffer.from(c));
          while (s.next()) {
            /* drain */
          }
        }
      } catch (e) {
        assert.ok(e instanceof HazeError, String(e));
      }
    }),
    { numRuns: 500 },
  );
});

test('fuzz: random bytes and random frames at the server end that connection with a log line, never the process', async () => {
  const m = await media();
  const hub = new StreamHub('live', { sourceGraceMs: 0 });
  hub.attachSource();
  const srv = await startServer({ ...pushDeps(hub, [], ''), forViewer: async () => hubWith(m.tracks, 'live') }, { handshakeTimeoutMs: 1000 });
  const frame = (magic: string, body: Uint8Array): Buffer => {
    const b = Buffer.alloc(8 + body.length);
    b.write(magic, 0, 'latin1');
    b.writeUInt32BE(body.length, 4);
    b.set(body, 8);
    return b;
  };
  const prefix = fc.constantFrom<Buffer[]>([], [encodeDtcm({ cmd: 'push', stream: 'live', password: '' })], [encodeDtcm({ cmd: 'play', stream: 'live' })]);
  const piece = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
    fc.tuple(fc.constantFrom('DTSC', 'DTP2', 'DTCM', 'DTPD'), fc.uint8Array({ maxLength: 300 })).map(([mg, b]) => frame(mg, b)),
    fc.constant(headerFor(m.tracks)),
    fc.constant(encodeDtp2(m.packets[0]!)),
  );
  try {
    await fc.assert(
      fc.asyncProperty(prefix, fc.array(piece, { minLength: 1, maxLength: 5 }), async (pre, pieces) => {
        const before = logLines.length;
        const c = new Client(srv.port);
        try {
          for (const b of [...pre, ...pieces]) c.send(b);
          await sleep(5);
          c.socket.end();
          await c.closedWithin(3000);
        } finally {
          c.destroy();
        }
        // a connection the server refused was refused with a log line
        if (c.command('error')) assert.ok(logLines.length > before, 'an error answer comes with a log line');
        // random bytes in front of everything are never taken for a session
        const sent = Buffer.concat(pieces);
        if (pre.length === 0 && sent.length >= 8 && !['DTSC', 'DTP2', 'DTCM', 'DTPD'].includes(sent.toString('latin1', 0, 4))) {
          assert.equal(errorMsg(c), DTSC_TEXT.invalidHeader);
        }
      }),
      { numRuns: 60 },
    );
    // and the server still serves
    const c = new Client(srv.port);
    c.send(encodeDtcm({ cmd: 'play', stream: 'live' }));
    await c.waitFor('header after the fuzz', () => c.headers()[0]);
    c.destroy();
  } finally {
    await srv.close();
    hub.end('test over');
  }
});
