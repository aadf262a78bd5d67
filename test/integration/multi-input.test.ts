// Several publishers merged into one stream ("multi_input": true, issue 5 item 5) in a
// two-worker Haze: ffmpeg publishes a 640x360 H.264 + AAC test pattern and a 320x180 H.264 one
// to the same name; the HLS multivariant playlist lists both videos, an MPEG-TS viewer of all
// tracks gets both with times in step; stopping one publisher leaves the other's track playing
// for a viewer that watches it. Both layouts are forced: the second publisher on the worker that
// hosts the stream, and on the other worker (its packets forwarded to the host). Without
// multi_input a second publisher is refused. Then the forwarding itself, deterministic: two
// HubManagers in this process, each with its control socket (real unix sockets, the relay's
// `push`), as two workers: a publisher on the second is merged into the first's stream, keeps
// it going when the host's own publisher leaves, and is placed anew when the host stops.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { giveUpAfter, sleep, tmpDir } from '../helpers.js';
import { probePackets, probeStreams } from '../media-files.js';
import { exited, startHaze, type HazeInstance } from './harness.js';
import type { StreamHub } from '../../src/hub/stream-hub.js';
import type { Packet, Track } from '../../src/media/types.js';
import { playDtscInto, pushDtscFrom, serveDtscSocket } from '../../src/protocols/dtsc/relay.js';
import { Logger } from '../../src/util/log.js';
import { ConfigView } from '../../src/worker/config-view.js';
import { HubManager } from '../../src/worker/hub-manager.js';
import { StreamRegistry } from '../../src/worker/stream-registry.js';

interface Pattern {
  width: number;
  height: number;
  audio: boolean;
}
const BIG: Pattern = { width: 640, height: 360, audio: true };
const SMALL: Pattern = { width: 320, height: 180, audio: false };

interface InfoTrack {
  type: string;
  trackid: number;
  idx: number;
  width?: number;
  height?: number;
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('multi_input: several publishers merged into one stream', { timeout: 240_000 }, () => {
  let haze: HazeInstance;
  const dir = tmpDir('haze-multi-');
  const procs = new Set<ChildProcess>();

  /** ffmpeg publishing a test pattern in real time (1 s GOPs) until killed. */
  function publish(name: string, p: Pattern): ChildProcess {
    const args = ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', `testsrc2=s=${p.width}x${p.height}:r=25`];
    if (p.audio) args.push('-f', 'lavfi', '-i', 'sine=f=440:sample_rate=48000');
    args.push('-c:v', 'libx264', '-preset', 'ultrafast', '-g', '25', ...(p.audio ? ['-c:a', 'aac'] : []), '-f', 'flv', haze.rtmpUrl(name));
    const proc = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    proc.on('exit', () => procs.delete(proc));
    Object.defineProperty(proc, 'errText', { get: () => err });
    procs.add(proc);
    return proc;
  }

  async function stopPublisher(proc: ChildProcess): Promise<void> {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited(proc);
  }

  /** Workers that accepted a publish of `name`, in order (from the log). */
  function acceptedOn(name: string): number[] {
    const re = new RegExp(`worker=(\\d+) RTMP publish of ${escapeRe(name)} from \\S+ accepted`, 'g');
    return [...haze.log().matchAll(re)].map((m) => Number(m[1]));
  }

  async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn().catch(() => undefined);
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${haze.log().slice(-3000)}`);
      await sleep(250);
    }
  }

  async function videoTracks(name: string): Promise<InfoTrack[]> {
    const info = (await (await fetch(haze.httpUrl(`/json_${encodeURIComponent(name)}.js`))).json()) as { meta?: { tracks: Record<string, InfoTrack> } };
    return Object.values(info.meta?.tracks ?? {}).filter((t) => t.type === 'video');
  }

  /** Tracks of the stream once it lists `count` videos. */
  const waitVideos = (name: string, count: number): Promise<InfoTrack[]> =>
    until(`${count} video tracks in ${name}`, async () => {
      const v = await videoTracks(name);
      return v.length === count ? v : undefined;
    });

  /** Reads a live HTTP output for `ms` into a file. */
  async function record(url: string, ms: number, file: string): Promise<{ bytes: number; file: string }> {
    const ac = new AbortController();
    const res = await fetch(url, { signal: ac.signal });
    assert.equal(res.status, 200, `${url}: ${res.status}`);
    const out = fs.createWriteStream(file);
    let bytes = 0;
    const timer = setTimeout(() => ac.abort(), ms);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        out.write(chunk);
      }
    } catch {
      // aborted: enough
    } finally {
      clearTimeout(timer);
      await new Promise((r) => out.end(r));
    }
    return { bytes, file };
  }

  /**
   * Starts the second publisher on the wanted worker: the other one is stopped (SIGSTOP) until
   * the connection is accepted, since the kernel hands a connection to whichever worker accepts
   * first (in practice mostly the same one).
   */
  async function publishOn(name: string, p: Pattern, host: number, sameWorker: boolean): Promise<{ proc: ChildProcess; worker: number }> {
    const wanted = sameWorker ? host : 3 - host;
    const pid = haze.pidOf(`worker-${3 - wanted}`);
    assert.ok(pid, 'worker pid');
    const before = acceptedOn(name).length;
    process.kill(pid, 'SIGSTOP');
    try {
      const proc = publish(name, p);
      const worker = await until(`second publisher of ${name} accepted`, async () => acceptedOn(name)[before]);
      console.log(`# ${name}: the stream's host is worker ${host}, the second publisher landed on worker ${worker}`);
      assert.equal(worker, wanted);
      return { proc, worker };
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  }

  before(async () => {
    haze = await startHaze({ workers: 2 });
    const r = await haze.api({ addstream: { multi: { source: 'push://', multi_input: true }, single: { source: 'push://' } } });
    assert.ok(!('error' in r), JSON.stringify(r));
    await sleep(500);
  });
  after(async () => {
    for (const p of [...procs]) await stopPublisher(p);
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const sameWorker of [true, false]) {
    // `multi` itself for one case, a wildcard instance of it (its base's config) for the other
    const name = sameWorker ? 'multi' : 'multi+two';
    it(`merges a second publisher ${sameWorker ? 'on the host worker' : 'on the other worker (forwarded to the host)'}; one leaving keeps the other playing`, async () => {
      const big = publish(name, BIG);
      const [host] = await until(`first publisher of ${name}`, async () => (acceptedOn(name).length > 0 ? acceptedOn(name) : undefined));
      await waitVideos(name, 1);
      // a clock difference the alignment must remove: the second starts 5 s later at its own time 0
      await sleep(5000);
      const { proc: small, worker } = await publishOn(name, SMALL, host!, sameWorker);
      if (!sameWorker) assert.match(haze.log(), new RegExp(`worker=${worker} publisher of ${escapeRe(name)}: forwarded to worker ${host}`));

      const videos = await waitVideos(name, 2);
      const bigTrack = videos.find((v) => v.width === 640)!;
      const smallTrack = videos.find((v) => v.width === 320)!;
      assert.ok(bigTrack && smallTrack, JSON.stringify(videos));
      assert.notEqual(bigTrack.trackid, smallTrack.trackid, 'each publisher has its own track ids');

      // HLS: one variant per video track
      const master = await until('a master playlist with two variants', async () => {
        const res = await fetch(haze.httpUrl(`/hls/${encodeURIComponent(name)}/index.m3u8`));
        const text = await res.text();
        return res.status === 200 && (text.match(/#EXT-X-STREAM-INF/g) ?? []).length === 2 ? text : undefined;
      });
      assert.match(master, /RESOLUTION=640x360/);
      assert.match(master, /RESOLUTION=320x180/);

      // MPEG-TS of every track: both videos and the audio, their times in step (the second
      // publisher's time 0 was moved to the stream's clock, 5 s on)
      const all = await record(haze.httpUrl(`/${encodeURIComponent(name)}.ts?video=all&audio=all`), 4000, path.join(dir, `${name}-all.ts`));
      const streams = await probeStreams(all.file);
      const sizes = streams.filter((s) => s.codec_name === 'h264').map((s) => `${s.width}x${s.height}`).sort();
      assert.deepEqual(sizes, ['320x180', '640x360']);
      assert.equal(streams.filter((s) => s.codec_name === 'aac').length, 1);
      const packets = await probePackets(all.file);
      const vIdx = streams.map((s, i) => (s.codec_name === 'h264' ? i : -1)).filter((i) => i >= 0);
      const firstDts = vIdx.map((i) => Number(packets.find((p) => p.stream_index === i && p.dts_time !== undefined)?.dts_time));
      const lastDts = vIdx.map((i) => Number(packets.filter((p) => p.stream_index === i && p.dts_time !== undefined).at(-1)?.dts_time));
      assert.ok(firstDts.every(Number.isFinite) && lastDts.every(Number.isFinite), 'both videos have packets');
      assert.ok(Math.abs(lastDts[0]! - lastDts[1]!) < 2, `the videos' times are in step: last dts ${lastDts.join(' / ')}`);

      // a viewer of the small track only; the big publisher leaves while it watches
      const viewerFile = path.join(dir, `${name}-small.ts`);
      const viewing = record(haze.httpUrl(`/${encodeURIComponent(name)}.ts?video=i${smallTrack.trackid}&audio=none`), 8000, viewerFile);
      await sleep(2500);
      await stopPublisher(big);
      const leftAt = Date.now();
      const rest = await waitVideos(name, 1);
      assert.equal(rest[0]!.width, 320, 'the small publisher\'s track stays');
      assert.equal(rest[0]!.trackid, smallTrack.trackid, 'with its id');
      const watched = await viewing;
      const afterLeaving = 8000 - 2500 - (Date.now() - leftAt);
      const vp = await probePackets(watched.file, 'v');
      const span = Number(vp.at(-1)!.dts_time) - Number(vp[0]!.dts_time);
      assert.ok(span > 5, `the viewer kept getting video after the other publisher left (${span.toFixed(1)} s of media, ${afterLeaving} ms)`);
      const viewed = await probeStreams(watched.file);
      assert.deepEqual(viewed.map((s) => `${s.codec_name} ${s.width}x${s.height}`), ['h264 320x180']);

      // a new viewer after the change gets the remaining track
      const now = await record(haze.httpUrl(`/${encodeURIComponent(name)}.ts?video=all&audio=all`), 2500, path.join(dir, `${name}-after.ts`));
      assert.deepEqual((await probeStreams(now.file)).map((s) => `${s.codec_name} ${s.width}x${s.height}`), ['h264 320x180']);
      await stopPublisher(small);
    });
  }

  it('without multi_input a second publisher is refused', async () => {
    const first = publish('single', BIG);
    await waitVideos('single', 1);
    const second = publish('single', SMALL);
    const code = await Promise.race([exited(second), giveUpAfter(15_000, 'running')]);
    assert.notEqual(code, 'running', 'the second publisher was not disconnected');
    assert.notEqual(code, 0);
    assert.match(haze.log(), /RTMP publish of single from \S+ refused: HAZE_ERR_BUSY/);
    assert.equal((await videoTracks('single')).length, 1);
    assert.equal(first.exitCode, null, 'the first publisher goes on');
    await stopPublisher(first);
  });
});

describe('multi_input: a publisher on another worker is forwarded to the stream\'s host', { timeout: 60_000 }, () => {
  const dir = tmpDir('haze-fwd-');
  const log = new Logger({ test: 'multi-forward' });
  const configFile = path.join(dir, 'effective.json');
  fs.writeFileSync(configFile, JSON.stringify({ streams: { m: { name: 'm', source: 'push://', multi_input: true } } }));
  fs.mkdirSync(path.join(dir, 'streams'));

  interface Worker {
    hubs: HubManager;
    registry: StreamRegistry;
    server: net.Server;
    sockets: Set<net.Socket>;
    stop(): void;
  }

  /** A worker's hub side: HubManager, claims, control socket with play and push, as worker-main wires them. */
  async function worker(index: number): Promise<Worker> {
    const socket = path.join(dir, `w${index}.sock`);
    const registry = new StreamRegistry(path.join(dir, 'streams'), { pid: process.pid, worker: index, socket });
    registry.watch();
    const config = new ConfigView(configFile);
    const hubs = new HubManager(
      config,
      registry,
      (claim, hub, onEnd) => playDtscInto(claim.socket, claim.stream, hub, onEnd, log),
      log,
      () => {},
      undefined,
      (claim, input, onEnd) => pushDtscFrom(claim.socket, claim.stream, input, onEnd),
    );
    const sockets = new Set<net.Socket>();
    const server = net.createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      serveDtscSocket(sock, { resolve: (n) => hubs.localSource(n), status: () => ({}), push: (n) => hubs.acceptForwarded(n), log });
    });
    await new Promise<void>((r) => server.listen(socket, r));
    return {
      hubs,
      registry,
      server,
      sockets,
      stop() {
        registry.close();
        hubs.closeAll('server stopping');
        server.close();
        for (const s of sockets) s.destroy();
      },
    };
  }

  const video = (width: number): Track => ({ id: 1, type: 'video', codec: 'H264', init: Buffer.from([1, width & 0xff]), bps: 0, lang: 'und', width, height: (width * 9) / 16, fpks: 25000 });
  const aac: Track = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.from([0x11, 0x90]), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };
  const pkt = (trackId: number, timeMs: number, keyframe: boolean): Packet => ({ trackId, timeMs, offsetMs: trackId === 1 ? 40 : 0, keyframe, data: Buffer.from(`payload ${trackId} ${timeMs}`) });

  async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 5000): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = fn();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await sleep(20);
    }
  }

  const hostHub = (w: Worker): StreamHub | undefined => w.hubs.localSource('m');

  let w1: Worker;
  let w2: Worker;
  before(async () => {
    w1 = await worker(1);
    w2 = await worker(2);
  });
  after(() => {
    w1?.stop();
    w2?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('merges the forwarded tracks and packets; the host\'s own publisher leaving keeps the stream; a re-placement after the host stops', async () => {
    // publisher A on worker 1: it claims and hosts the stream
    const a = w1.hubs.startPublish('m');
    a.hub.setTrack(video(640));
    a.hub.setTrack(aac);
    for (let t = 0; t <= 1000; t += 40) {
      a.hub.push(pkt(1, t, t % 1000 === 0));
      a.hub.push(pkt(2, t, true));
    }
    const host = hostHub(w1)!;
    assert.ok(host, 'worker 1 hosts the stream');
    assert.notEqual(a.hub, host, 'a publisher of a multi_input stream feeds an input hub of its own');
    const got: Packet[] = [];
    host.subscribe({ onPacket: (p) => got.push(p), onTracks: () => {}, onEnd: () => {} });

    // publisher B on worker 2: forwarded
    const b = w2.hubs.startPublish('m');
    assert.equal(hostHub(w2), undefined, 'worker 2 does not host the stream');
    b.hub.setTrack(video(320));
    b.hub.push(pkt(1, 0, true));
    b.hub.push(pkt(1, 40, false));
    await until('B\'s packets on the host', () => (got.filter((p) => p.trackId === 3).length === 2 ? true : undefined));
    assert.deepEqual(
      host.tracks.map((t) => [t.id, t.type === 'video' ? t.width : t.type]),
      [
        [1, 640],
        [2, 'audio'],
        [3, 320],
      ],
    );
    const fromB = got.filter((p) => p.trackId === 3);
    assert.deepEqual(
      fromB.map((p) => [p.timeMs, p.offsetMs, p.keyframe, p.data.toString()]),
      [
        [1000, 40, true, 'payload 1 0'],
        [1040, 40, false, 'payload 1 40'],
      ],
      'payloads, composition offsets and keyframe flags pass; times moved to the stream\'s',
    );

    // A leaves (lost): the stream stays on worker 1, fed by B alone
    a.end('publisher lost', false);
    assert.equal(hostHub(w1), host, 'still hosted by worker 1');
    assert.deepEqual(host.tracks.map((t) => t.id), [3]);
    b.hub.push(pkt(1, 80, false));
    await until('B goes on', () => (got.at(-1)?.data.toString() === 'payload 1 80' ? true : undefined));
    assert.equal(w1.registry.lookup('m')?.worker, 1);

    // worker 1 stops: B is placed again and worker 2 hosts the stream
    w1.stop();
    const moved = await until('worker 2 hosting the stream', () => hostHub(w2));
    assert.equal(w2.registry.lookup('m')?.worker, 2);
    await until('B\'s track on its new host', () => (moved.tracks.length === 1 && moved.tracks[0]!.type === 'video' ? true : undefined));
    const later: Packet[] = [];
    moved.subscribe({ onPacket: (p) => later.push(p), onTracks: () => {}, onEnd: () => {} });
    b.hub.push(pkt(1, 120, true));
    assert.equal(later.at(-1)?.data.toString(), 'payload 1 120');

    // B unpublishes: the stream ends and its claim goes
    let ended = '';
    moved.on('end', (r) => (ended = r));
    b.end('client unpublished', true);
    assert.equal(ended, 'client unpublished');
    assert.equal(w2.registry.lookup('m'), undefined);
  });

  it('a forwarded publisher that unpublishes ends the stream on its host when it was the last one', async () => {
    const w3 = await worker(3);
    const w4 = await worker(4);
    try {
      const a = w3.hubs.startPublish('m');
      a.hub.setTrack(video(640));
      a.hub.push(pkt(1, 0, true));
      const host = hostHub(w3)!;
      const b = w4.hubs.startPublish('m');
      b.hub.setTrack(video(320));
      b.hub.push(pkt(1, 0, true));
      await until('B on the host', () => (host.tracks.length === 2 ? true : undefined));
      a.end('client unpublished', true);
      assert.ok(!host.isEnded, 'B still feeds it');
      const ended = new Promise<string>((r) => host.on('end', r));
      b.end('client unpublished', true);
      assert.equal(await Promise.race([ended, giveUpAfter(3000, 'not ended')]), 'client unpublished');
      await until('the claim released', () => (w3.registry.lookup('m') === undefined ? true : undefined));
    } finally {
      w3.stop();
      w4.stop();
    }
  });

  it('a stream shut down on its host (STREAM_READY or LIVE_BANDWIDTH said false) disconnects the forwarded publishers too', async () => {
    const w5 = await worker(5);
    const w6 = await worker(6);
    try {
      const a = w5.hubs.startPublish('m');
      a.hub.setTrack(video(640));
      a.hub.push(pkt(1, 0, true));
      const host = hostHub(w5)!;
      const b = w6.hubs.startPublish('m');
      const disconnected = new Promise<string>((r) => w6.hubs.onShutdown('m', r));
      b.hub.setTrack(video(320));
      b.hub.push(pkt(1, 0, true));
      await until('B on the host', () => (host.tracks.length === 2 ? true : undefined));
      w5.hubs.shutdown('m', 'refused by STREAM_READY');
      assert.equal(await Promise.race([disconnected, giveUpAfter(3000, 'still connected')]), 'refused by STREAM_READY');
      await sleep(500);
      assert.equal(hostHub(w6), undefined, 'the forwarded publisher did not take the stream over');
      assert.equal(w6.registry.lookup('m'), undefined);
      b.end('disconnected', false);
    } finally {
      w5.stop();
      w6.stop();
    }
  });
});
