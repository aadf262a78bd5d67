// The MPEG-TS network pulls in-process, against a StreamHub and real sockets/processes on
// 127.0.0.1 (the end-to-end cases with ffmpeg are in test/integration/ts-network.test.ts):
// - TsPullFeed: tracks and packets into the sink, a program change removes tracks, damaged
//   input is a warning; fuzz: any bytes give packets or HAZE_ERR_MALFORMED (not TS at all).
// - tsudp: datagrams from one sender feed the hub with the TS's packets and an INPUT:TS session
//   counting them; non-TS datagrams are survived; a sender that goes quiet ends the connection
//   (tracks reset) and a new sender continues the hub's timeline; a second sender is ignored
//   while the first sends; stop frees the port.
// - HTTP: 503 and a redirect on the way, then a TS body; its end reconnects; a stalled body is
//   given up.
// - ts-exec: a command's stdout feeds the hub and the command runs again after it exits; a
//   failing command aborts the input with its stderr; stop kills the whole process group.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import fc from 'fast-check';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { TsDemuxer } from '../../src/containers/ts/demux.js';
import { TsMuxer } from '../../src/containers/ts/mux.js';
import { StreamHub } from '../../src/hub/stream-hub.js';
import type { PullContext, PullSink } from '../../src/inputs/pull/pull-input.js';
import { TsPullFeed } from '../../src/inputs/pull/ts-feed.js';
import { tsExecPull } from '../../src/inputs/pull/ts-exec-pull.js';
import { tsHttpPull } from '../../src/inputs/pull/ts-http-pull.js';
import { tsUdpPull } from '../../src/inputs/pull/ts-udp-pull.js';
import type { Packet, Track } from '../../src/media/types.js';
import type { TrackSpec } from '../../src/stats/tracker.js';
import { HazeError } from '../../src/util/errors.js';
import { Logger } from '../../src/util/log.js';
import { mistFixtures, sleep, tmpDir } from '../helpers.js';

/** A logger that keeps its lines (every level) instead of printing them. */
class MemoryLogger extends Logger {
  readonly lines: string[] = [];
  override child(): Logger {
    return this;
  }
  override error(msg: string): void {
    this.keep(msg);
  }
  override warn(msg: string): void {
    this.keep(msg);
  }
  override info(msg: string): void {
    this.keep(msg);
  }
  override debug(msg: string): void {
    this.keep(msg);
  }
  has(text: string): boolean {
    return this.lines.some((l) => l.includes(text));
  }
  private keep(msg: string): void {
    this.lines.push(msg);
    if (this.lines.length > 1000) this.lines.splice(0, 500);
  }
}

const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
/** small.flv (4 s of H.264 + AAC) as a transport stream. */
const TS = ((): Buffer => {
  const mux = new TsMuxer(flv.tracks);
  return Buffer.concat(flv.packets.map((p) => mux.mux(p)));
})();
/** What a demuxer makes of TS before its end (the last frame of each PID waits for a successor). */
const DEMUXED = new TsDemuxer().push(TS).packets;
const VIDEO = DEMUXED.filter((p) => p.trackId === 0x100);

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

interface Fixture {
  log: MemoryLogger;
  hub: StreamHub;
  ctx: PullContext;
  packets: Packet[];
  sessions: (TrackSpec & { ended: boolean })[];
  aborts: string[];
}

function fixture(source: string): Fixture {
  const hub = new StreamHub('t');
  hub.attachSource();
  const packets: Packet[] = [];
  hub.subscribe({ onPacket: (p) => packets.push(p), onTracks: () => {}, onEnd: () => {} });
  const sessions: Fixture['sessions'] = [];
  const aborts: string[] = [];
  const log = new MemoryLogger();
  const ctx: PullContext = {
    name: 't',
    source,
    hub,
    tracker: {
      open: (spec) => {
        const s = { ...spec, ended: false };
        sessions.push(s);
        return { sessionId: String(sessions.length), end: () => (s.ended = true) };
      },
    },
    log,
    aborted: (m, h) => aborts.push(`${m}: ${h}`),
  };
  return { log, hub, ctx, packets, sessions, aborts };
}

/** Sends TS over UDP in 1316-byte datagrams, a few at a time, so the loopback drops none. */
async function sendTs(sock: dgram.Socket, port: number, ts: Buffer): Promise<void> {
  for (let o = 0; o < ts.length; o += 1316) {
    await new Promise<void>((r) => sock.send(ts.subarray(o, Math.min(ts.length, o + 1316)), port, '127.0.0.1', () => r()));
    if ((o / 1316) % 20 === 19) await sleep(1);
  }
}

async function udpSocket(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}

async function freeUdpPort(): Promise<number> {
  const s = await udpSocket();
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

// the pulls' timers are unref'd (they must not keep a worker alive): hold the loop open
let keepAlive: NodeJS.Timeout;
before(() => (keepAlive = setInterval(() => {}, 1000)));
after(() => clearInterval(keepAlive));

describe('TsPullFeed', () => {
  it('gives the sink the tracks and packets, and removes tracks a new program drops', () => {
    const set: Track[] = [];
    const removed: number[] = [];
    const pushed: Packet[] = [];
    const sink: PullSink = { setTrack: (t) => set.push(t), removeTrack: (id) => removed.push(id), push: (p) => pushed.push(p) };
    const feed = new TsPullFeed(sink, new MemoryLogger(), 'test');
    for (let o = 0; o < TS.length; o += 1000) feed.push(TS.subarray(o, o + 1000));
    assert.deepEqual(
      set.map((t) => `${t.id}:${t.codec}`),
      ['256:H264', '257:AAC'],
    );
    assert.equal(pushed.length, DEMUXED.length);
    assert.equal(feed.bytes, TS.length);
    // the same source without its audio (a new PMT): the audio track goes
    const videoOnly = new TsMuxer(flv.tracks.filter((t) => t.type === 'video'));
    feed.push(Buffer.concat(flv.packets.filter((p) => p.trackId === flv.tracks[0]!.id).map((p) => videoOnly.mux(p))));
    assert.deepEqual(removed, [257]);
  });

  it('fuzz: random and damaged input gives packets and warnings, or HAZE_ERR_MALFORMED', () => {
    const sink: PullSink = { setTrack: () => {}, removeTrack: () => {}, push: () => {} };
    const damaged = fc.tuple(fc.integer({ min: 0, max: TS.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 40 }), fc.integer({ min: 1, max: 4000 })).map(([start, flips, chunk]) => {
      const b = Buffer.from(TS.subarray(start, start + 60_000));
      for (const [at, v] of flips) if (b.length) b[at % b.length] = v;
      return { b, chunk };
    });
    const random = fc.tuple(fc.uint8Array({ maxLength: 100_000 }), fc.integer({ min: 1, max: 5000 })).map(([u, chunk]) => ({ b: Buffer.from(u), chunk }));
    fc.assert(
      fc.property(fc.oneof(damaged, random), ({ b, chunk }) => {
        const feed = new TsPullFeed(sink, new MemoryLogger(), 'fuzz');
        try {
          for (let o = 0; o < b.length; o += chunk) feed.push(b.subarray(o, o + chunk));
          feed.end();
        } catch (err) {
          assert.ok(err instanceof HazeError && err.code === 'HAZE_ERR_MALFORMED', String(err));
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe('tsudp pull', () => {
  it('feeds the hub from one sender, goes dry, and continues with the next sender', async () => {
    const port = await freeUdpPort();
    const f = fixture(`tsudp://127.0.0.1:${port}`);
    const pull = tsUdpPull({ dryMs: 300 }).start(f.ctx);
    try {
      const a = await udpSocket();
      const b = await udpSocket();
      await until('the socket bound', () => f.log.has(`listening for MPEG-TS on udp 127.0.0.1:${port}`));
      // datagrams that are not TS first: a warning, then the TS is taken
      await new Promise<void>((r) => a.send(Buffer.alloc(1316, 0x11), port, '127.0.0.1', () => r()));
      await sendTs(a, port, TS);
      // a second sender while the first sends is ignored
      await sendTs(b, port, TS.subarray(0, 1316 * 5));
      await until('every packet', () => f.packets.length >= DEMUXED.length);
      assert.equal(f.packets.length, DEMUXED.length);
      const video = f.packets.filter((p) => p.trackId === 0x100);
      assert.equal(video.length, VIDEO.length);
      for (let i = 0; i < VIDEO.length; i++) assert.ok(video[i]!.data.equals(VIDEO[i]!.data), `video ${i}`);
      assert.equal(video[0]!.timeMs, 0, 'the first connection starts at 0');
      assert.equal(f.hub.tracks.length, 2);
      assert.equal(f.sessions.length, 1);
      assert.equal(f.sessions[0]!.connector, 'INPUT:TS');
      assert.equal(f.sessions[0]!.host, '127.0.0.1');
      assert.equal(f.sessions[0]!.bytes().up, TS.length + 1316, 'bytes of the connection (the non-TS datagram too)');
      const lastMs = f.hub.lastMs;

      // quiet for dryMs: the connection ends, the tracks go
      await until('dry', () => f.hub.tracks.length === 0, 2000);
      assert.equal(f.sessions[0]!.ended, true);
      // the other sender now takes over, on the hub's continued timeline
      const before = f.packets.length;
      await sendTs(b, port, TS);
      await until('packets of the second sender', () => f.packets.length - before >= DEMUXED.length);
      assert.equal(f.hub.tracks.length, 2);
      assert.ok(f.packets[before]!.timeMs > lastMs, `continues after ${lastMs}: ${f.packets[before]!.timeMs}`);
      assert.equal(f.sessions.length, 2);
      assert.equal(f.aborts.length, 0);
      a.close();
      b.close();
    } finally {
      pull.stop();
    }
    // stop closed the socket: the port binds again
    const again = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.bind(port, '127.0.0.1', resolve);
    });
    again.close();
  });

  it('aborts at once on an invalid source', async () => {
    const f = fixture('tsudp://127.0.0.1');
    const pull = tsUdpPull().start(f.ctx);
    await until('abort', () => f.aborts.length > 0);
    pull.stop();
    assert.match(f.aborts[0]!, /^CONNECT_REFUSED: .*port is required/);
  });
});

describe('HTTP TS pull', () => {
  let server: http.Server;
  let base = '';
  let mode: 'normal' | 'stall' = 'normal';
  const requests: string[] = [];
  before(async () => {
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      if (mode === 'stall') {
        res.writeHead(200, { 'Content-Type': 'video/mp2t' });
        res.flushHeaders();
        return; // never sends a byte
      }
      const n = requests.length;
      if (n === 1) {
        res.writeHead(503).end();
        return;
      }
      if (req.url === '/live.ts') {
        res.writeHead(302, { Location: '/real.ts' }).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': 'video/mp2t' });
      let o = 0;
      const next = (): void => {
        if (o >= TS.length) {
          res.end();
          return;
        }
        res.write(TS.subarray(o, o + 16_384));
        o += 16_384;
        setImmediate(next);
      };
      next();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  it('retries a 503, follows a redirect, feeds the body and connects again at its end', async () => {
    const f = fixture(`${base}/live.ts`);
    const pull = tsHttpPull({ reconnect: { minDelayMs: 20, maxDelayMs: 40 } }).start(f.ctx);
    try {
      await until('two bodies', () => f.packets.length >= 2 * DEMUXED.length - 4, 5000);
      assert.deepEqual(requests.slice(0, 5), ['/live.ts', '/live.ts', '/real.ts', '/live.ts', '/real.ts']);
      assert.equal(f.sessions[0]!.connector, 'INPUT:TS');
      assert.ok(f.sessions[0]!.ended);
      assert.equal(f.aborts.length, 0);
      // every body's video reaches the hub (its last frame flushed at the end of the body)
      assert.ok(f.packets.filter((p) => p.trackId === 0x100).length >= 2 * VIDEO.length);
    } finally {
      pull.stop();
    }
  });

  it('gives up a body that stalls and aborts after failed first connects', async () => {
    mode = 'stall';
    const f = fixture(`http-ts://127.0.0.1:1/nothing-listens`);
    const refused = tsHttpPull({ reconnect: { minDelayMs: 10, maxDelayMs: 10 } }).start(f.ctx);
    await until('abort', () => f.aborts.length > 0);
    refused.stop();
    assert.match(f.aborts[0]!, /^CONNECT_FAILED: .*127\.0\.0\.1:1.*\(3 attempts\)/);

    const s = fixture(`${base}/stall.ts`);
    const stalled = tsHttpPull({ stallMs: 150, reconnect: { minDelayMs: 10, maxDelayMs: 10 } }).start(s.ctx);
    await until('a stalled body given up', () => s.log.has('no data for 0.15 s'));
    stalled.stop();
  });
});

describe('ts-exec pull', () => {
  const dir = tmpDir('haze-tsexec-');
  const file = path.join(dir, 'small.ts');
  fs.writeFileSync(file, TS);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('feeds the hub from the command and runs it again when it exits', async () => {
    const f = fixture(`ts-exec:cat '${file}'`);
    const pull = tsExecPull({ minRestartMs: 20 }).start(f.ctx);
    try {
      await until('two runs', () => f.packets.length >= 2 * DEMUXED.length, 5000);
      assert.ok(f.sessions.length >= 2);
      assert.equal(f.sessions[0]!.bytes().up, TS.length);
      assert.equal(f.aborts.length, 0);
    } finally {
      pull.stop();
    }
  });

  it('aborts with the stderr of a command that fails at once', async () => {
    const f = fixture(`ts-exec:echo "no such encoder" >&2; exit 3`);
    const pull = tsExecPull({ minRestartMs: 10 }).start(f.ctx);
    await until('abort', () => f.aborts.length > 0);
    pull.stop();
    assert.match(f.aborts[0]!, /^CONNECT_FAILED: .*exited with code 3: no such encoder \(3 attempts\)/);
  });

  it('stop ends every process of the command', async () => {
    const pidFile = path.join(dir, 'pids');
    const f = fixture(`ts-exec:cat '${file}'; sleep 30 & echo $! > '${pidFile}'; wait`);
    const pull = tsExecPull({ killAfterMs: 200 }).start(f.ctx);
    await until('output and the background sleep', () => f.packets.length > 0 && fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '');
    const sleeper = Number(fs.readFileSync(pidFile, 'utf8'));
    pull.stop();
    // gone, or a zombie waiting for whichever process reaps orphans here
    await until('the background process gone', () => {
      try {
        return fs.readFileSync(`/proc/${sleeper}/stat`, 'utf8').replace(/^.*\) /s, '').startsWith('Z');
      } catch {
        return true;
      }
    });
  });
});
