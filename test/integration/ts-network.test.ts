// MPEG-TS over the network (issue 7 item 4), on one Haze:
//
// - tsudp:// input: ffmpeg sends a TS clip over UDP (`-c copy -f mpegts udp://...?pkt_size=1316`)
//   into `uni` (source tsudp://127.0.0.1:P) and, where loopback multicast works, into `mc`
//   (source tsudp://239.255.x.y:P/127.0.0.1). HTTP viewers of /uni.ts and /mc.ts that were
//   waiting before the first datagram get every video packet of the clip, in order, with the
//   source's payloads (md5 of each packet's NAL units: ffmpeg writes some start codes with 3
//   bytes, Haze's TS writer with 4, so the raw packet md5s of ffprobe -show_data_hash differ
//   by those bytes alone).
// - tsudp:// push: push_start of `uni` to tsudp://127.0.0.1:Q while `ffmpeg -i udp://127.0.0.1:Q
//   -c copy` records: the recording holds the clip's video packets too.
// - HTTP TS pull: `pulled` has the source http://127.0.0.1:HTTP/uni.ts (the same Haze); its
//   viewer gets the clip's packets; then the UDP sender restarts with another clip (a new
//   source port and clock) and the same viewer goes on with the second clip's packets.
// - ts-exec: `exec` runs MistServer's videogen ffmpeg recipe (shared/seeds/001, quoting as
//   written) with `-t 1.5 -f mpegts -`; a viewer gets H.264 800x600 + AAC, and when the command
//   exits it is started again and the viewer keeps receiving.
// The UDP/HTTP/push flow and the ts-exec case run concurrently.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { splitAnnexB } from '../../src/media/nal-units.js';
import { freePort, runOk, sleep, tmpDir } from '../helpers.js';
import { filePackets, probeStreams } from '../media-files.js';
import { exited, startHaze, type HazeInstance } from './harness.js';

const dir = tmpDir('haze-tsnet-');
const CLIP1 = path.join(dir, 'clip1.ts');
const CLIP2 = path.join(dir, 'clip2.ts');
const GROUP = '239.255.77.19';

/** MistServer's videogen (shared/seeds/001), as the blog writes it, with a duration and TS to stdout. */
const VIDEOGEN =
  `ffmpeg -re -f lavfi -i "aevalsrc=if(eq(floor(t)\\,ld(2))\\,st(0\\,random(4)*3000+1000))\\;st(2\\,floor(t)+1)\\;st(1\\,mod(t\\,1))\\;(0.6*sin(1*ld(0)*ld(1))+0.4*sin(2*ld(0)*ld(1)))*exp(-4*ld(1)) [out1]; testsrc=s=800x600,drawtext=borderw=5:fontcolor=white:fontsize=30:text='%{localtime}/%{pts\\:hms}':x=\\(w-text_w\\)/2:y=\\(h-text_h-line_h\\)/2 [out0]"` +
  ' -acodec aac -vcodec h264 -strict -2 -pix_fmt yuv420p -profile:v baseline -level 3.0 -t 1.5 -f mpegts -';

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Whether a datagram sent to a multicast group on 127.0.0.1 comes back to a member (loopback multicast). */
async function multicastLoopbackWorks(): Promise<boolean> {
  const port = await freeUdpPort();
  const rx = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  const tx = dgram.createSocket('udp4');
  try {
    await new Promise<void>((r) => rx.bind(port, GROUP, r));
    rx.addMembership(GROUP, '127.0.0.1');
    const got = new Promise<boolean>((r) => {
      rx.once('message', () => r(true));
      setTimeout(() => r(false), 500);
    });
    await new Promise<void>((r) => tx.bind(0, r));
    tx.setMulticastInterface('127.0.0.1');
    tx.setMulticastLoopback(true);
    tx.send('probe', port, GROUP);
    return await got;
  } catch {
    return false;
  } finally {
    rx.close();
    tx.close();
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 10_000, everyMs = 100): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** An HTTP viewer keeping everything it gets. */
interface Capture {
  /** Resolves with the time of the 200 answer (a 503 is asked again: the stream is not online yet). */
  ready: Promise<number>;
  bytes(): number;
  /** When the byte count first reached `n` (undefined before). */
  reachedAt(n: number): number | undefined;
  /** Resolves once `n` more bytes than now arrived. */
  more(n: number, timeoutMs: number): Promise<void>;
  /** Stops and writes what came to `file`. */
  save(file: string): string;
}

function capture(url: string, timeoutMs = 15_000): Capture {
  const chunks: Buffer[] = [];
  const arrivals: [number, number][] = [];
  let total = 0;
  let req: http.ClientRequest | undefined;
  let stopped = false;
  const end = Date.now() + timeoutMs;
  const ask = (): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      req = http.get(url, { agent: false }, (res) => {
        if (res.statusCode === 503 && !stopped && Date.now() < end) {
          res.resume();
          setTimeout(() => ask().then(resolve, reject), 200);
          return;
        }
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`${url}: HTTP ${res.statusCode}`));
          return;
        }
        res.on('data', (d: Buffer) => {
          chunks.push(d);
          total += d.length;
          arrivals.push([total, Date.now()]);
        });
        res.on('error', () => {});
        resolve(Date.now());
      });
      req.on('error', reject);
    });
  const ready = ask();
  ready.catch(() => {});
  return {
    ready,
    bytes: () => total,
    reachedAt: (n) => arrivals.find(([t]) => t >= n)?.[1],
    async more(n, ms) {
      const target = total + n;
      await until(`${n} more bytes from ${url}`, () => (total >= target ? true : undefined), ms, 50);
    },
    save(file) {
      stopped = true;
      req?.destroy();
      fs.writeFileSync(file, Buffer.concat(chunks));
      return file;
    },
  };
}

/** The video packets of a TS file, each as the md5 of its NAL units (start codes left out). */
async function videoHashes(file: string): Promise<string[]> {
  const packets = await filePackets(file, 'v:0', 1);
  return packets.map((p) => {
    const h = createHash('md5');
    for (const nal of splitAnnexB(p.data)) h.update(nal);
    return h.digest('hex');
  });
}

/**
 * Finds the longest run of `got` that is consecutive packets of `source` and checks that it
 * starts within the source's first `maxSkip` packets and goes on to its end (less `slack`
 * packets: the last frame waits in the demuxer for a successor that never comes). Returns
 * `len@from`. Viewers wait for the stream before it has data, so they normally start at packet 0;
 * on a loaded machine one that asked late starts at a later keyframe (a GOP is 25 packets).
 */
function assertRunOf(source: string[], got: string[], what: string, maxSkip = 50, slack = 2): string {
  const index = new Map(source.map((h, i) => [h, i]));
  let best = { at: -1, from: -1, len: 0 };
  for (let j = 0; j < got.length; j++) {
    const k = index.get(got[j]!);
    if (k === undefined) continue;
    let n = 0;
    while (j + n < got.length && k + n < source.length && got[j + n] === source[k + n]) n++;
    if (n > best.len) best = { at: j, from: k, len: n };
  }
  assert.ok(best.len > 0, `${what}: none of ${got.length} packets is one of the source's ${source.length}`);
  assert.ok(best.from <= maxSkip, `${what}: starts at source packet ${best.from}`);
  assert.ok(best.from + best.len >= source.length - slack, `${what}: the run of ${best.len} packets from source packet ${best.from} (got[${best.at}]) stops before the source's end (${source.length})`);
  return `${best.len}@${best.from}`;
}

/** Every process a case started, killed at the end if it still runs (a failed case). */
const children: ChildProcess[] = [];

function ffmpeg(args: string[]): ChildProcess {
  const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(p);
  return p;
}

function sendUdp(file: string, url: string): ChildProcess {
  return ffmpeg(['-re', '-i', file, '-c', 'copy', '-f', 'mpegts', url]);
}

async function finished(p: ChildProcess, what: string): Promise<void> {
  let err = '';
  p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const code = await exited(p);
  assert.equal(code, 0, `${what} exited ${code}: ${err.slice(-500)}`);
}

describe('MPEG-TS over the network', { concurrency: true }, () => {
  let haze: HazeInstance;
  let mcOk = false;
  const udp = { uni: 0, mc: 0, push: 0 };
  let src1: string[] = [];
  let src2: string[] = [];

  before(async () => {
    const t0 = Date.now();
    const ports = { api: await freePort(), http: await freePort(), rtmp: await freePort(), dtsc: await freePort() };
    udp.uni = await freeUdpPort();
    udp.mc = await freeUdpPort();
    udp.push = await freeUdpPort();
    const clip = (file: string, pattern: string, seconds: number): Promise<Buffer> =>
      runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `${pattern}=s=320x180:r=25`, '-f', 'lavfi', '-i', 'sine=f=440:sample_rate=48000', '-t', String(seconds), '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-bf', '2', '-c:a', 'aac', '-f', 'mpegts', file]);
    const streams: Record<string, Record<string, unknown>> = {
      uni: { source: `tsudp://127.0.0.1:${udp.uni}`, always_on: true },
      pulled: { source: `http://127.0.0.1:${ports.http}/uni.ts` },
      exec: { source: `ts-exec:${VIDEOGEN}` },
    };
    [mcOk] = await Promise.all([multicastLoopbackWorks(), clip(CLIP1, 'testsrc2', 3), clip(CLIP2, 'testsrc', 2)]);
    const t1 = Date.now();
    if (mcOk) streams['mc'] = { source: `tsudp://${GROUP}:${udp.mc}/127.0.0.1`, always_on: true };
    for (const [name, s] of Object.entries(streams)) s['name'] = name;
    haze = await startHaze({ workers: 2, ports, config: { streams } });
    [src1, src2] = await Promise.all([videoHashes(CLIP1), videoHashes(CLIP2)]);
    console.log(`# setup ${Date.now() - t0} ms, Haze start ${Date.now() - t1} ms (multicast loopback: ${mcOk ? 'works' : 'not available'})`);
  });

  after(async () => {
    for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    if (process.env['TSNET_LOG']) console.log(haze?.log());
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('tsudp unicast and multicast in, HTTP viewers, a tsudp push and an HTTP TS pull that survives a sender restart', async () => {
    const t0 = Date.now();
    // every viewer waits before the first datagram, so each gets the clip from its first keyframe
    const uniView = capture(haze.httpUrl('/uni.ts'));
    const mcView = mcOk ? capture(haze.httpUrl('/mc.ts')) : undefined;
    const pulledView = capture(haze.httpUrl('/pulled.ts'));
    // the push waits for the stream too; the recorder waits for its datagrams
    const pushed = path.join(dir, 'pushed.ts');
    // a short probe, so that packets are written as they come; each written at once, since the
    // recorder is stopped by interrupting its read (ffmpeg's first SIGINT waits for a packet that
    // never comes, the second aborts the read and the trailer: flushed packets are on disk)
    const recorder = ffmpeg(['-analyzeduration', '1000000', '-y', '-i', `udp://127.0.0.1:${udp.push}`, '-map', '0', '-c', 'copy', '-flush_packets', '1', '-f', 'mpegts', pushed]);
    const started = await haze.api({ push_start: { stream: 'uni', target: `tsudp://127.0.0.1:${udp.push}` } });
    assert.ok(!('error' in started), JSON.stringify(started));
    await sleep(300); // the viewers' requests are in
    const senders = [sendUdp(CLIP1, `udp://127.0.0.1:${udp.uni}?pkt_size=1316`)];
    if (mcOk) senders.push(sendUdp(CLIP1, `udp://${GROUP}:${udp.mc}?pkt_size=1316&localaddr=127.0.0.1&ttl=1`));
    const firstBytesMs = (await uniView.ready) - t0;
    await Promise.all(senders.map((s, i) => finished(s, `udp sender ${i}`)));
    await pulledView.ready;
    await until('the pulled viewer has data', () => (pulledView.bytes() > 50_000 ? true : undefined), 5000);
    // the input sessions are INPUT:TS ones with bytes in
    const clients = (await haze.api({ clients: { streams: ['uni', 'pulled'], fields: ['stream', 'protocol', 'up'] } }))['clients'] as { data?: unknown[][] } | undefined;
    for (const s of ['uni', 'pulled']) assert.ok(clients?.data?.some((r) => r[0] === s && r[1] === 'INPUT:TS' && Number(r[2]) > 0), `${s}: ${JSON.stringify(clients)}`);
    await sleep(500); // the paced push sends its last packets
    recorder.kill('SIGINT');
    await sleep(100);
    recorder.kill('SIGINT');
    await exited(recorder);
    await haze.api({ push_stop: ((await haze.api({ push_list: true }))['push_list'] as { id: number }[]).map((p) => p.id) });
    const uniFile = uniView.save(path.join(dir, 'uni.ts'));
    const mcFile = mcView?.save(path.join(dir, 'mc.ts'));

    // the sender restarts with another clip (new port, new clock): uni takes it and the HTTP pull
    // goes on (checked below, while the first part is compared with the clip)
    const t1 = Date.now();
    const before2 = pulledView.bytes();
    const sender2 = sendUdp(CLIP2, `udp://127.0.0.1:${udp.uni}?pkt_size=1316`);

    const [uniGot, mcGot, pushGot] = await Promise.all([videoHashes(uniFile), mcFile ? videoHashes(mcFile) : undefined, videoHashes(pushed)]);
    const uni = assertRunOf(src1, uniGot, 'tsudp unicast viewer');
    const mc = mcGot ? assertRunOf(src1, mcGot, 'tsudp multicast viewer') : '-';
    const push = assertRunOf(src1, pushGot, 'tsudp push received by ffmpeg', 50, 4);
    console.log(`# tsudp: first bytes to a viewer ${firstBytesMs} ms after the request; ${uni} unicast, ${mc} multicast, ${push} pushed video packets of ${src1.length} matched (run length@first source packet)`);

    const recoverMs = (await until('the HTTP pull to deliver the second clip', () => pulledView.reachedAt(before2 + 20_000), 8000, 50)) - t1;
    await finished(sender2, 'second udp sender');
    await sleep(300);
    const got = await videoHashes(pulledView.save(path.join(dir, 'pulled.ts')));
    const first = assertRunOf(src1, got, 'HTTP pull, first sender');
    const second = assertRunOf(src2, got, 'HTTP pull, after the sender restarted');
    console.log(`# HTTP pull: ${first} + ${second} video packets matched (${before2} bytes before the restart); 20 KB more ${recoverMs} ms after the sender restarted`);
  });

  it('ts-exec runs the videogen recipe, a viewer gets it, and the command is restarted when it exits', async () => {
    const t0 = Date.now();
    const view = capture(haze.httpUrl('/exec.ts'));
    const firstMs = (await view.ready) - t0;
    await view.more(20_000, 5000);
    const runs = (): number => (haze.log().match(/stream exec: ts-exec run \d+/g) ?? []).length;
    await until('the command to be started again', () => (runs() >= 2 ? true : undefined), 10_000);
    const restartMs = Date.now() - t0;
    const before = view.bytes();
    await view.more(20_000, 8000);
    const file = view.save(path.join(dir, 'exec.ts'));
    const streams = await probeStreams(file);
    assert.deepEqual(streams.map((s) => `${s.codec_name}${s.width ? ` ${s.width}x${s.height}` : ''}`).sort(), ['aac', 'h264 800x600']);
    console.log(`# ts-exec: first bytes after ${firstMs} ms; restarted after ${restartMs} ms; ${view.bytes() - before} bytes from the second run`);
  });
});
