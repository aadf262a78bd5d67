// Push targets against real servers (issue 5 item 4): a stream published to Haze is re-pushed
// with push_start to nginx's RTMP module (Debian's libnginx-mod-rtmp, run from a temp prefix)
// and ffprobe reads H264 + AAC back from nginx; an rtmps:// push goes through a TLS proxy (a
// self-signed certificate made by the openssl CLI, verified against it) into Haze's RTMP port;
// a dtsc:// push feeds a second Haze's DTSC listener, survives that Haze being restarted on
// the same ports (push_list shows the reconnect) and ffprobe reads the stream from it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { StreamHub } from '../../src/hub/stream-hub.js';
import { loadLiveSource, type LiveSource } from '../live-source.js';
import type { Packet, Track } from '../../src/media/types.js';
import { startPush } from '../../src/pushes/push-runner.js';
import { RtmpClient, parseRtmpUrl } from '../../src/protocols/rtmp/client.js';
import { getText, type DtmiObject } from '../../src/containers/dtsc/dtmi.js';
import { DtscFrameReader, encodeDtcm } from '../../src/containers/dtsc/packets.js';
import { readDtscHeader, type DtscStreamMeta } from '../../src/containers/dtsc/header.js';
import { DTSC_TEXT, headParsedText } from '../../src/protocols/dtsc/listener-wire.js';
import { freePort, giveUpAfter, mistFixtures, run, runOk, sleep, tmpDir } from '../helpers.js';
import { exited, publishFile, startHaze, waitPort, type HazeInstance } from './harness.js';

const SMALL_FLV = path.join(mistFixtures, 'small.flv');
const NGINX_RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';

type PushRow = [number, string, string, string, string[], { state: string; reconnects: number; bytes: number; lastError?: string; kind: string }];

/** The codec names ffprobe finds at a URL, sorted; [] when it reads nothing. */
async function codecsAt(url: string): Promise<string[]> {
  const r = await run('ffprobe', ['-v', 'error', '-rw_timeout', '10000000', '-show_entries', 'stream=codec_name', '-of', 'json', url], { timeoutMs: 30_000 });
  if (r.code !== 0) return [];
  return (JSON.parse(r.stdout.toString()) as { streams?: { codec_name: string }[] }).streams?.map((s) => s.codec_name).sort() ?? [];
}

/** Polls `probe` until it returns true or `ms` pass; returns the last result. */
async function until(ms: number, probe: () => Promise<boolean> | boolean, everyMs = 250): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
}

async function pushRow(haze: HazeInstance, id: number): Promise<PushRow | undefined> {
  const list = (await haze.api({ push_list: true }))['push_list'] as PushRow[] | undefined;
  return list?.find((r) => r[0] === id);
}

/** nginx with the RTMP module in the foreground, every path inside `dir` (nothing under /var). */
async function startNginx(dir: string): Promise<{ port: number; proc: ChildProcess; log(): string }> {
  const port = await freePort();
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    [
      `load_module ${NGINX_RTMP_MODULE};`,
      // the tests run as root: workers as root too, so they can use the temp prefix
      'user root;',
      'worker_processes 1;',
      `pid ${path.join(dir, 'nginx.pid')};`,
      `error_log ${path.join(dir, 'error.log')} info;`,
      'events { worker_connections 64; }',
      `rtmp { server { listen 127.0.0.1:${port}; chunk_size 4096; application live { live on; record off; } } }`,
      '',
    ].join('\n'),
  );
  let output = '';
  const proc = spawn('nginx', ['-p', `${dir}/`, '-c', conf, '-e', path.join(dir, 'error.log'), '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  await waitPort(port, 10_000).catch((err: unknown) => {
    throw new Error(`nginx did not start: ${String(err)}\n${output}\n${fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8') : ''}`);
  });
  return { port, proc, log: () => output + (fs.existsSync(path.join(dir, 'error.log')) ? fs.readFileSync(path.join(dir, 'error.log'), 'utf8').slice(-3000) : '') };
}

/** Feeds `hub` in real time from `src`, looped with continuing times, until `stop()`. */
async function feedLoop(hub: StreamHub, src: LiveSource, stop: () => boolean): Promise<void> {
  hub.attachSource();
  for (const t of src.tracks) hub.setTrack(t);
  const startWall = performance.now();
  const loopMs = src.durationMs + 40;
  for (let loop = 0; !stop(); loop++) {
    for (const p of src.packets) {
      const timeMs = p.timeMs + loop * loopMs;
      const due = timeMs - (performance.now() - startWall);
      if (due > 5) await sleep(due);
      if (stop() || hub.isEnded) return;
      hub.push({ trackId: p.trackId, timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data });
    }
  }
}

interface FakeConnection {
  socket: net.Socket;
  commands: DtmiObject[];
  /** The raw push command frame (member order as sent). */
  pushFrame?: Buffer;
  headers: DtscStreamMeta[];
  packets: Packet[];
  ended: boolean;
}

interface FakeBehaviour {
  /** Answer the header with `ok` (default true). */
  ackHeader?: boolean;
  /** Stop reading once the header is acknowledged. */
  stallAfterHeader?: boolean;
  /** Answer pings (default true). */
  pong?: boolean;
}

/**
 * A DTSC listener of the test's own (a reader apart from Haze's listener): hi on accept, the
 * push cleared, headers acknowledged with MistServer's texts, every frame kept.
 */
async function startFakeDtsc(behaviour: FakeBehaviour = {}): Promise<{ port: number; conns: FakeConnection[]; close(): Promise<void> }> {
  const conns: FakeConnection[] = [];
  const server = net.createServer((socket) => {
    const conn: FakeConnection = { socket, commands: [], headers: [], packets: [], ended: false };
    conns.push(conn);
    const reader = new DtscFrameReader();
    let tracks = 0;
    socket.on('error', () => {});
    socket.on('end', () => {
      conn.ended = true;
      socket.end();
    });
    socket.write(encodeDtcm({ cmd: 'hi', pack_method: 2, salt: '00', version: 'Fake/1' }));
    socket.on('data', (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        if (f.kind === 'command') {
          conn.commands.push(f.command);
          const cmd = getText(f.command, 'cmd');
          if (cmd === 'push') {
            conn.pushFrame = Buffer.from(f.raw);
            socket.write(encodeDtcm({ cmd: 'ok', msg: DTSC_TEXT.cleared }));
          } else if (cmd === 'ping' && behaviour.pong !== false) socket.write(encodeDtcm({ cmd: 'ok', msg: DTSC_TEXT.pong }));
        } else if (f.kind === 'header') {
          const meta = readDtscHeader(f.raw);
          conn.headers.push(meta);
          if (behaviour.ackHeader !== false) socket.write(encodeDtcm({ cmd: 'ok', msg: headParsedText(tracks, meta.tracks.length) }));
          tracks = meta.tracks.length;
          if (behaviour.stallAfterHeader) socket.pause();
        } else conn.packets.push(f.packet);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    close: () =>
      new Promise((resolve) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A synthetic H264 track of big frames, to fill socket buffers fast. */
const BIG_VIDEO: Track = { id: 7, type: 'video', codec: 'H264', init: Buffer.from([1, 0x64, 0, 0x1f, 0xff]), bps: 0, lang: 'und', width: 1920, height: 1080, fpks: 25_000 };

describe('DTSC push against a listener of the test', { timeout: 120_000 }, () => {
  let src: LiveSource;
  before(async () => {
    src = await loadLiveSource(SMALL_FLV);
  });

  it('sends push (password from ?pass=), a live header and every packet from the first keyframe, byte for byte', async () => {
    const fake = await startFakeDtsc();
    const hub = new StreamHub('live+src', { sourceGraceMs: 0 });
    const push = startPush({ hub, target: `dtsc://127.0.0.1:${fake.port}/live+fake?pass=secret` });
    try {
      assert.equal(push.status().kind, 'dtsc');
      assert.equal(push.status().connector, 'DTSC');
      // fed twice real time: the push starts at the first keyframe and sends every packet
      hub.attachSource();
      for (const t of src.tracks) hub.setTrack(t);
      const begin = performance.now();
      for (const p of src.packets) {
        const due = p.timeMs / 2 - (performance.now() - begin);
        if (due > 5) await sleep(due);
        hub.push({ ...p });
      }
      await until(10_000, () => fake.conns[0]!.packets.length >= src.packets.length - 2);
      hub.end('source finished');
      const end = await push.done;
      assert.equal(end.reason, 'STREAM_END', end.message);
      assert.equal(end.connector, 'DTSC');
      assert.ok(await until(5000, () => fake.conns[0]!.ended), 'the push closes its connection at the end');

      assert.equal(fake.conns.length, 1);
      const conn = fake.conns[0]!;
      // the push command, members sorted as MistServer packs them
      const push0 = conn.commands[0]!;
      assert.deepEqual(push0.entries.map(([k]) => k), ['cmd', 'password', 'stream', 'version']);
      assert.equal(getText(push0, 'cmd'), 'push');
      assert.equal(getText(push0, 'stream'), 'live+fake');
      assert.equal(getText(push0, 'password'), 'secret');
      assert.match(getText(push0, 'version') ?? '', /^Haze\//);
      // one live header, tracks 1..n in the stream's order with their codec data
      assert.equal(conn.headers.length, 1);
      const h = conn.headers[0]!;
      assert.equal(h.live, true);
      assert.equal(h.version, 4);
      assert.ok(h.unixzeroMs !== undefined && Math.abs(h.unixzeroMs - Date.now()) < 60_000, `unixzero ${h.unixzeroMs}`);
      assert.deepEqual(h.tracks.map((t) => t.id), src.tracks.map((_, i) => i + 1));
      assert.deepEqual(h.tracks.map((t) => t.codec), src.tracks.map((t) => t.codec));
      for (const [i, t] of h.tracks.entries()) assert.ok(t.init.equals(src.tracks[i]!.init), `init of track ${t.id}`);
      // every packet from the first video keyframe on, in order, payloads untouched
      const videoId = src.tracks.find((t) => t.type === 'video')!.id;
      const start = src.packets.findIndex((p) => p.trackId === videoId && p.keyframe);
      const want = src.packets.slice(start);
      const wireOf = new Map(src.tracks.map((t, i) => [t.id, i + 1]));
      assert.equal(conn.packets.length, want.length);
      for (const [i, p] of conn.packets.entries()) {
        const w = want[i]!;
        assert.equal(p.trackId, wireOf.get(w.trackId), `packet ${i} track`);
        assert.equal(p.timeMs, w.timeMs, `packet ${i} time`);
        assert.equal(p.offsetMs, w.offsetMs, `packet ${i} offset`);
        if (w.trackId === videoId) assert.equal(p.keyframe, w.keyframe, `packet ${i} keyframe`);
        assert.ok(p.data.equals(w.data), `packet ${i} payload`);
      }
      const s = push.status();
      assert.equal(s.droppedPackets, 0);
      assert.equal(s.reconnects, 0);
      assert.ok(s.bytes > 100_000, `${s.bytes} bytes`);
    } finally {
      await push.stop();
      hub.end('test over');
      await fake.close();
    }
  });

  it('a header the target never acknowledges times out and the push reconnects', async () => {
    const fake = await startFakeDtsc({ ackHeader: false });
    const hub = new StreamHub('live+noack', { sourceGraceMs: 0 });
    let stop = false;
    const feeding = feedLoop(hub, src, () => stop);
    const push = startPush({ hub, target: `dtsc://127.0.0.1:${fake.port}/x`, rtmpTimeoutMs: 500, reconnect: { initialDelayMs: 100, maxDelayMs: 200 } });
    try {
      assert.ok(await until(10_000, () => push.status().reconnects >= 1 && fake.conns.length >= 2), JSON.stringify(push.status()));
      assert.match(push.status().lastError ?? '', /DTSC_HEAD parsed.*within 500 ms/);
      assert.equal(fake.conns[0]!.packets.length, 0, 'no packet before the header is acknowledged');
    } finally {
      stop = true;
      const end = await push.stop();
      assert.equal(end.reason, 'STOPPED');
      await feeding;
      hub.end('test over');
      await fake.close();
    }
  });

  it('a target that stops reading: packets drop to the next keyframe, the socket queue stays bounded, then it is cut off', async () => {
    const fake = await startFakeDtsc({ stallAfterHeader: true });
    const hub = new StreamHub('live+stall', { sourceGraceMs: 0 });
    const maxQueueBytes = 1024 * 1024;
    const push = startPush({ hub, target: `dtsc://127.0.0.1:${fake.port}/x`, rtmpTimeoutMs: 1500, maxQueueBytes, reconnect: { initialDelayMs: 100, maxDelayMs: 200 } });
    try {
      hub.attachSource();
      hub.setTrack(BIG_VIDEO);
      const frame = Buffer.alloc(100_000, 0x42);
      // 40 MB in 100 kB frames, a keyframe every 10: more than the kernel buffers hold
      for (let i = 0; i < 400 && push.status().reconnects === 0; i++) {
        hub.push({ trackId: 7, timeMs: i * 40, offsetMs: 0, keyframe: i % 10 === 0, data: frame });
        if (i % 5 === 0) await sleep(2);
      }
      assert.ok(await until(10_000, () => push.status().reconnects >= 1), JSON.stringify(push.status()));
      const s = push.status();
      assert.ok(s.droppedPackets > 0, 'packets were dropped');
      assert.match(s.lastError ?? '', /stopped reading/);
      // what went into the socket: what the kernel took plus at most the bound and one frame
      assert.ok(s.droppedPackets >= 200, `${s.droppedPackets} of 400 packets dropped`);
      // what went into the socket: what the kernel took (a few MB on loopback) plus at most the bound
      assert.ok(s.bytes < 16_000_000, `${s.bytes} of 40 MB sent`);
    } finally {
      await push.stop();
      hub.end('test over');
      await fake.close();
    }
  });

  it('an idle push pings; a target that does not answer is dropped, one that answers is kept', async () => {
    const silent = await startFakeDtsc({ pong: false });
    const answering = await startFakeDtsc();
    const hub = new StreamHub('live+idle', { sourceGraceMs: 0 });
    hub.attachSource();
    for (const t of src.tracks) hub.setTrack(t);
    for (const p of src.packets.slice(0, 40)) hub.push({ ...p });
    const opts = { hub, rtmpTimeoutMs: 800, keepaliveMs: 200, reconnect: { initialDelayMs: 100, maxDelayMs: 200 } };
    const dropped = startPush({ ...opts, target: `dtsc://127.0.0.1:${silent.port}/x` });
    const kept = startPush({ ...opts, target: `dtsc://127.0.0.1:${answering.port}/x` });
    try {
      assert.ok(await until(10_000, () => dropped.status().reconnects >= 1), JSON.stringify(dropped.status()));
      assert.match(dropped.status().lastError ?? '', /did not answer a ping within 800 ms/);
      assert.ok(silent.conns[0]!.commands.some((c) => getText(c, 'cmd') === 'ping'));
      await sleep(1500);
      const pings = answering.conns[0]!.commands.filter((c) => getText(c, 'cmd') === 'ping').length;
      assert.ok(pings >= 3, `${pings} pings answered`);
      assert.equal(kept.status().reconnects, 0);
      assert.equal(answering.conns.length, 1);
    } finally {
      await Promise.all([dropped.stop(), kept.stop()]);
      hub.end('test over');
      await Promise.all([silent.close(), answering.close()]);
    }
  });
});

describe('push targets: nginx-rtmp, rtmps://, dtsc://', { timeout: 300_000 }, () => {
  const dir = tmpDir('haze-pushtargets-');
  let a: HazeInstance;
  let publisher: ChildProcess;

  before(async () => {
    a = await startHaze({ workers: 1 });
    publisher = publishFile(SMALL_FLV, a.rtmpUrl('live+x'), ['-stream_loop', '-1']);
    assert.ok(await until(20_000, async () => (await codecsAt(a.httpUrl('/live+x.flv'))).length === 2, 500), 'the published stream is online');
  });
  after(async () => {
    publisher?.kill('SIGINT');
    if (publisher) await exited(publisher);
    await a?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('push_start re-pushes to nginx with the RTMP module; ffprobe reads H264 + AAC from nginx', async () => {
    const ngxDir = path.join(dir, 'nginx');
    fs.mkdirSync(ngxDir);
    const nginx = await startNginx(ngxDir);
    try {
      const target = `rtmp://127.0.0.1:${nginx.port}/live/x`;
      const r = await a.api({ push_start: { stream: 'live+x', target } });
      const ids = r['push_start'] as number[] | undefined;
      assert.ok(ids && ids.length === 1, JSON.stringify(r));
      const id = ids[0]!;
      assert.ok(await until(15_000, async () => (await pushRow(a, id))?.[5].state === 'active'), JSON.stringify(await pushRow(a, id)));
      const row = (await pushRow(a, id))!;
      assert.equal(row[1], 'live+x');
      assert.equal(row[2], target);
      assert.equal(row[5].kind, 'rtmp');
      assert.deepEqual(await codecsAt(target), ['aac', 'h264'], nginx.log());
      const stopped = await a.api({ push_stop: [id] });
      assert.deepEqual(stopped['push_stop'], [id]);
      assert.ok(await until(10_000, async () => (await pushRow(a, id)) === undefined || (await pushRow(a, id))![5].state === 'ended'), 'the push ends on push_stop');
    } finally {
      nginx.proc.kill('SIGTERM');
      await exited(nginx.proc);
    }
  });

  it('rtmps:// connects over TLS (a TLS proxy into Haze RTMP, certificate verified) and Haze serves the stream', async () => {
    const certDir = path.join(dir, 'tls');
    fs.mkdirSync(certDir);
    const key = path.join(certDir, 'key.pem');
    const cert = path.join(certDir, 'cert.pem');
    await runOk('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { timeoutMs: 30_000 });
    const ca = fs.readFileSync(cert);
    let secureConnections = 0;
    const sockets = new Set<net.Socket>();
    const proxy = tls.createServer({ key: fs.readFileSync(key), cert: ca }, (client) => {
      secureConnections++;
      const upstream = net.connect(a.ports.rtmp, '127.0.0.1');
      sockets.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as net.AddressInfo).port;

    const hub = new StreamHub('live+src', { sourceGraceMs: 0 });
    let stop = false;
    const feeding = feedLoop(hub, await loadLiveSource(SMALL_FLV), () => stop);
    const push = startPush({ hub, target: `rtmps://127.0.0.1:${port}/live/live+tls`, tls: { ca }, rtmpTimeoutMs: 5000 });
    try {
      assert.equal(push.status().kind, 'rtmps');
      assert.ok(await until(15_000, () => push.status().state === 'active'), JSON.stringify(push.status()));
      assert.ok(secureConnections >= 1, 'the push came in over TLS');
      assert.deepEqual(await codecsAt(a.httpUrl('/live+tls.flv')), ['aac', 'h264']);
      assert.ok(push.status().bytes > 10_000);

      // the RTMP client itself speaks rtmps:// URLs too (port 443 by default, TLS with the CA)
      assert.deepEqual(parseRtmpUrl('rtmps://example.com/app/key'), { host: 'example.com', port: 443, app: 'app', name: 'key', tcUrl: 'rtmps://example.com/app', secure: true });
      const client = new RtmpClient({ tls: { ca }, timeoutMs: 5000 });
      await client.connect(`rtmps://127.0.0.1:${port}/live/live+tls2`);
      await client.publish();
      assert.equal(secureConnections, 2);
      await client.close();
      // an untrusted certificate is refused
      const strict = new RtmpClient({ timeoutMs: 5000 });
      await assert.rejects(strict.connect(`rtmps://127.0.0.1:${port}/live/x`), /self-signed|self signed|certificate/);
    } finally {
      stop = true;
      await push.stop();
      await feeding;
      hub.end('test over');
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });

  describe('dtsc:// push to a second Haze', () => {
    let b: HazeInstance | undefined;
    after(async () => {
      await b?.stop();
    });

    it('B serves the pushed stream, and the push reconnects after B restarts', async () => {
      b = await startHaze({ workers: 1 });
      const added = await b.api({ addstream: { live: { source: 'push://' } } });
      assert.ok(!('error' in added), JSON.stringify(added));
      const target = `dtsc://127.0.0.1:${b.ports.dtsc}/live+y`;
      const r = await a.api({ push_start: { stream: 'live+x', target } });
      const id = (r['push_start'] as number[] | undefined)?.[0];
      assert.ok(id !== undefined, JSON.stringify(r));
      assert.ok(await until(15_000, async () => (await pushRow(a, id))?.[5].state === 'active'), JSON.stringify(await pushRow(a, id)));
      assert.equal((await pushRow(a, id))![5].kind, 'dtsc');
      assert.deepEqual(await codecsAt(b.httpUrl('/live+y.flv')), ['aac', 'h264'], b.log().slice(-3000));

      // B goes away and comes back on the same ports with the same config
      const { data, ports } = b;
      await b.stop(true);
      assert.ok(await until(10_000, async () => (await pushRow(a, id))?.[5].state !== 'active'), 'the push notices the drop');
      b = await startHaze({ workers: 1, data, ports });
      assert.ok(
        await until(30_000, async () => {
          const s = (await pushRow(a, id))?.[5];
          return s?.state === 'active' && s.reconnects >= 1;
        }),
        JSON.stringify(await pushRow(a, id)),
      );
      const row = (await pushRow(a, id))!;
      assert.ok(row[5].reconnects >= 1);
      assert.ok(row[5].lastError, 'the drop is reported');
      assert.ok(row[4].some((l) => /retrying in \d+ ms/.test(l)), row[4].join('\n'));
      assert.deepEqual(await codecsAt(b.httpUrl('/live+y.flv')), ['aac', 'h264'], b.log().slice(-3000));

      const stopped = await a.api({ push_stop: [id] });
      assert.deepEqual(stopped['push_stop'], [id]);
    });

    it('a refused push ends at once with the target\'s error text', async () => {
      assert.ok(b);
      const hub = new StreamHub('live+refused', { sourceGraceMs: 0 });
      let stop = false;
      const feeding = feedLoop(hub, await loadLiveSource(SMALL_FLV), () => stop);
      // `nosuch` is not a configured stream on B: its listener answers with an error
      const push = startPush({ hub, target: `dtsc://127.0.0.1:${b.ports.dtsc}/nosuch+z`, reconnect: { initialDelayMs: 100 } });
      try {
        const end = await Promise.race([push.done, giveUpAfter(15_000, undefined)]);
        assert.ok(end, 'the push ended');
        assert.equal(end.reason, 'PUSH_FAILED');
        assert.match(end.message, /Push not allowed - stream and\/or password incorrect/);
        assert.equal(push.status().reconnects, 0);
      } finally {
        stop = true;
        await push.stop();
        await feeding;
        hub.end('test over');
      }
    });
  });
});
