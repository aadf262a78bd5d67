// SRT against real peers (libsrt 1.5 in Debian's ffmpeg 5.1 and srt-live-transmit): publish to
// Haze's listener (plain stream id and `#!::r=NAME,m=publish`), play back with m=request, the
// video packets' md5 (framemd5 of -c copy) a contiguous run of the source's; Haze pulling from
// an ffmpeg SRT listener and pushing to another; encryption with a passphrase (and a wrong one
// refused); and 5% of the datagrams dropped both ways by a relay in the test, with the
// retransmissions Haze reports and the transit latency the relay sees.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { freePort, parseFramemd5, pollUntil, runOk, tmpDir, udpBound } from '../helpers.js';
import { exited, startHaze, type HazeInstance } from './harness.js';
import { defaultConfig } from '../../src/controller/default-config.js';
import { seededRandom } from '../../src/util/prng.js';

const dir = tmpDir('haze-srt-');
const SOURCE = path.join(dir, 'src.ts');
let sourceHashes: string[] = [];
let haze: HazeInstance;
/** Every peer process started, ended in after() if a failed assertion left it running. */
const peers: ChildProcess[] = [];

function peer(cmd: string, args: string[], stdio: Parameters<typeof spawn>[2]['stdio']): ChildProcess {
  const p = spawn(cmd, args, { stdio });
  peers.push(p);
  return p;
}

/**
 * The video packets as they are (no decoding), each NAL unit written back by ffmpeg's H.264
 * unit parser: Haze's TS muxer writes 4-byte start codes where the source had 3-byte ones, so
 * the packets are compared unit by unit, not start code by start code.
 */
/** Players read this much media (of the source's 3 s) and must get at least PLAY_MIN packets. */
const PLAY_S = '2.5';
const PLAY_MIN = 70;

const VIDEO_PACKETS = ['-map', '0:v', '-c', 'copy', '-bsf:v', 'filter_units=pass_types=0-31'];

/** An srt:// URL to `port` with the stream id as users write it (ffmpeg 5.1 and srt-live-transmit pass it on as it is). */
function srtUrl(port: number, streamId: string, extra = ''): string {
  return `srt://127.0.0.1:${port}?streamid=${streamId}${extra}`;
}

function ffmpegPublish(url: string, extra: string[] = []): ChildProcess {
  return peer('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', SOURCE, '-c', 'copy', ...extra, '-f', 'mpegts', url], ['ignore', 'ignore', 'pipe']);
}

/** Video packet hashes (framemd5 of the packets as they are, no decoding) that ffmpeg reads from `url`. */
function videoHashes(url: string, extra: string[] = [], timeoutMs = 15_000): { proc: ChildProcess; hashes: Promise<string[]> } {
  const proc = peer('ffmpeg', ['-hide_banner', '-loglevel', 'error', ...extra, '-i', url, ...VIDEO_PACKETS, '-f', 'framemd5', '-'], ['ignore', 'pipe', 'pipe']);
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGINT'), timeoutMs);
  const hashes = exited(proc).then(() => {
    clearTimeout(timer);
    const h = parseFramemd5(out).map((f) => f.hash);
    if (h.length === 0) throw new Error(`no video from ${url}: ${err.slice(-400)}`);
    return h;
  });
  return { proc, hashes };
}

/** `got` is a run of consecutive source packets, and a long one. */
function assertContiguous(got: string[], minPackets: number, what: string): void {
  const start = sourceHashes.indexOf(got[0]!);
  assert.ok(start >= 0, `${what}: the first packet is one of the source's (got ${got.length}: ${got.slice(0, 3).join(' ')}; source ${sourceHashes.slice(0, 3).join(' ')})`);
  for (let i = 0; i < got.length; i++) assert.equal(got[i], sourceHashes[start + i], `${what}: packet ${i} (source packet ${start + i}) differs`);
  assert.ok(got.length >= minPackets, `${what}: ${got.length} packets of ${sourceHashes.length}, want at least ${minPackets}`);
}

/** Resolves with the first line of Haze's log that matches `re` (from now on, or already there). */
async function logLine(re: RegExp, timeoutMs = 10_000): Promise<string> {
  const started = Date.now();
  for (;;) {
    const line = haze.log().split('\n').find((l) => re.test(l));
    if (line) return line;
    if (Date.now() - started > timeoutMs) throw new Error(`no log line matching ${re}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A UDP relay in front of Haze's SRT port that drops `lossRate` of the datagrams each way and
 * notes when each video PES (by its PTS, relative to the first) passes upstream (publisher to
 * Haze) and downstream (Haze to a player): the transit time through Haze.
 */
class LossyRelay {
  readonly socket = dgram.createSocket('udp4');
  private readonly upstream = new Map<string, dgram.Socket>();
  private readonly random: () => number;
  dropped = { up: 0, down: 0 };
  passed = { up: 0, down: 0 };
  private readonly seen = { up: new Map<number, number>(), down: new Map<number, number>() };
  private readonly firstPts: { up?: number; down?: number } = {};

  constructor(
    private readonly target: number,
    private readonly lossRate: number,
    seed: number,
  ) {
    this.random = seededRandom(seed);
    this.socket.on('message', (msg, from) => {
      const key = `${from.address}:${from.port}`;
      let up = this.upstream.get(key);
      if (!up) {
        up = dgram.createSocket('udp4');
        up.on('message', (back) => this.forward('down', back, () => this.socket.send(back, from.port, from.address)));
        up.bind(0, '127.0.0.1');
        this.upstream.set(key, up);
      }
      const u = up;
      this.forward('up', msg, () => u.send(msg, this.target, '127.0.0.1'));
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
    return this.socket.address().port;
  }

  private forward(dir: 'up' | 'down', msg: Buffer, send: () => void): void {
    if (this.lossRate > 0 && this.random() < this.lossRate) {
      this.dropped[dir]++;
      return;
    }
    this.passed[dir]++;
    this.notePes(dir, msg);
    send();
  }

  /** Records the arrival of video PES starts in an unencrypted SRT data packet of MPEG-TS. */
  private notePes(dir: 'up' | 'down', msg: Buffer): void {
    if (msg.length < 16 + 188 || msg[0]! & 0x80 || (msg[4]! & 0x18) !== 0) return;
    for (let o = 16; o + 188 <= msg.length; o += 188) {
      if (msg[o] !== 0x47 || !(msg[o + 1]! & 0x40)) continue;
      let p = o + 4;
      if (msg[o + 3]! & 0x20) p += 1 + msg[o + 4]!;
      if (p + 14 > o + 188 || msg[p] !== 0 || msg[p + 1] !== 0 || msg[p + 2] !== 1 || msg[p + 3] !== 0xe0 || !(msg[p + 7]! & 0x80)) continue;
      const b = msg.subarray(p + 9, p + 14);
      const pts = (b[0]! & 0x0e) * 536870912 + b[1]! * 4194304 + (b[2]! >> 1) * 32768 + b[3]! * 128 + (b[4]! >> 1);
      this.firstPts[dir] ??= pts;
      // in whole milliseconds: Haze keeps times in ms, so its PTS are the source's rounded down
      const rel = Math.floor((pts - this.firstPts[dir]!) / 90);
      if (!this.seen[dir].has(rel)) this.seen[dir].set(rel, performance.now());
    }
  }

  /** Transit times (ms) of the frames seen both ways, sorted. */
  transitMs(): number[] {
    const out: number[] = [];
    for (const [rel, t] of this.seen.down) {
      const up = this.seen.up.get(rel) ?? this.seen.up.get(rel + 1) ?? this.seen.up.get(rel - 1);
      if (up !== undefined) out.push(t - up);
    }
    return out.sort((a, b) => a - b);
  }

  close(): void {
    this.socket.close();
    for (const s of this.upstream.values()) s.close();
  }
}

function packetFigures(line: string): Record<string, number> {
  const n = (re: RegExp): number => Number(re.exec(line)?.[1] ?? NaN);
  return { sent: n(/sent (\d+) packets/), retransmitted: n(/\((\d+) retransmitted/), received: n(/received (\d+)/), lost: n(/\((\d+) lost/), recovered: n(/(\d+) recovered/), naksSent: n(/(\d+) NAKs sent/) };
}

describe('SRT (TSSRT) against ffmpeg and srt-live-transmit', () => {
  before(async () => {
    // 3 s of H.264 + AAC, a keyframe every second
    await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-f', 'lavfi', '-i', 'sine=f=440:sample_rate=48000', '-t', '3', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '30', '-c:a', 'aac', '-f', 'mpegts', SOURCE]);
    sourceHashes = parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', SOURCE, ...VIDEO_PACKETS, '-f', 'framemd5', '-'])).toString()).map((f) => f.hash);
    haze = await startHaze({ workers: 2 });
    await logLine(/SRT listening on UDP port/);
  });
  after(async () => {
    for (const p of peers) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // the unencrypted cases share the listener at once (separate streams); the passphrase case changes it after them
  describe('unencrypted', { concurrency: true }, () => {
    it('ffmpeg and srt-live-transmit publish; ffmpeg plays back the same video packets; Haze pulls from and pushes to ffmpeg SRT listeners', async () => {
      const port = haze.ports.srt!;
      const relay = new LossyRelay(port, 0, 1);
      const relayPort = await relay.listen();
      const pullPort = await freePort();
      const pushPort = await freePort();
      try {
        // players first: each waits for its stream and then gets it from its first keyframe
        // (each stops after PLAY_S of media: a publisher that leaves without a SHUTDOWN keeps its
        // stream waiting for it, and srt-live-transmit does not leave at the end of its input)
        const a = videoHashes(srtUrl(relayPort, '#!::r=live+a,m=request'), ['-t', PLAY_S]);
        const b = videoHashes(srtUrl(port, '#!::r=live+b,m=request'), ['-t', PLAY_S]);
        // Haze pushes live+f to an ffmpeg SRT listener
        const pushed = videoHashes(`srt://127.0.0.1:${pushPort}?mode=listener`, ['-t', '2']);
        // an ffmpeg SRT listener as a stream source, read over HTTP
        // (looping: the viewer's probe reads ahead, and the pulled stream does not end when a source leaves)
        const source = peer('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', SOURCE, '-c', 'copy', '-f', 'mpegts', `srt://127.0.0.1:${pullPort}?mode=listener`], ['ignore', 'ignore', 'pipe']);
        // (the listener first: under load ffmpeg takes a while, and a viewer waits 5 s for the stream)
        await pollUntil('the ffmpeg SRT listener is up', () => udpBound(pullPort) || undefined, 10_000, 20);
        await haze.api({ addstream: { pulled: { source: `srt://127.0.0.1:${pullPort}` } } });

        // a plain stream id, percent-encoded (Haze decodes what a caller passes on undecoded)
        const pubA = ffmpegPublish(srtUrl(relayPort, 'live%2Ba', '&mode=caller'));
        // srt-live-transmit reading TS from stdin, with the access-control stream id
        const slt = peer('srt-live-transmit', ['-q', 'file://con', srtUrl(port, '#!::r=live+b,m=publish')], ['pipe', 'ignore', 'pipe']);
        const feeder = peer('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', SOURCE, '-c', 'copy', '-f', 'mpegts', '-'], ['ignore', slt.stdin!, 'pipe']);
        // the feeder holds the pipe now: srt-live-transmit sees its end when the feeder exits
        slt.stdin!.destroy();
        // srt-live-transmit stays after its input ended; SIGINT makes it close its connection (SHUTDOWN)
        void exited(feeder).then(() => slt.kill('SIGINT'));
        const pubF = ffmpegPublish(srtUrl(port, '#!::r=live+f,m=publish'));
        const viewer = videoHashes(haze.httpUrl('/pulled.ts'), ['-t', '2']);
        await logLine(/publishing live\+f/);
        const push = await haze.api({ push_start: { stream: 'live+f', target: `srt://127.0.0.1:${pushPort}` } });
        assert.ok(Array.isArray(push['push_start']) && typeof push['push_start'][0] === 'number', JSON.stringify(push['push_start']));

        assertContiguous(await a.hashes, PLAY_MIN, 'ffmpeg publish (plain stream id) -> SRT play');
        // (srt-live-transmit drops what it had not sent when it is interrupted: the end may be shorter)
        assertContiguous(await b.hashes, 55, 'srt-live-transmit publish -> SRT play');
        assertContiguous(await viewer.hashes, 30, 'SRT pull from an ffmpeg listener -> HTTP .ts viewer');
        assertContiguous(await pushed.hashes, 30, 'srt:// push -> ffmpeg listener');
        source.kill('SIGINT');
        await Promise.all([exited(pubA), exited(pubF), exited(feeder), exited(source), exited(slt)]);
        assert.match(await logLine(/publishing live\+a/), /latency 120 ms/);
        const transit = relay.transitMs();
        assert.ok(transit.length > 60, `frames seen both ways: ${transit.length}`);
        const median = transit[Math.floor(transit.length / 2)]!;
        const p95 = transit[Math.floor(transit.length * 0.95)]!;
        console.log(`SRT publish -> Haze -> SRT play transit (loopback relay): median ${median.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms over ${transit.length} frames; the player adds its SRT latency (120 ms) on top`);
        assert.ok(median < 50, `median transit ${median} ms`);
      } finally {
        relay.close();
      }
    });

    it('5% of the datagrams dropped both ways: retransmission gives the player the same packets', async () => {
      const relay = new LossyRelay(haze.ports.srt!, 0.05, 7);
      const port = await relay.listen();
      try {
        const player = videoHashes(srtUrl(port, '#!::r=live+d,m=request'), ['-t', PLAY_S]);
        const pub = ffmpegPublish(srtUrl(port, '#!::r=live+d,m=publish'));
        const got = await player.hashes;
        await exited(pub);
        assertContiguous(got, PLAY_MIN, 'play under 5% loss');
        const pubLine = await logLine(/publish of live\+d ended/);
        const playLine = await logLine(/play of live\+d ended/);
        const ingest = packetFigures(pubLine);
        const out = packetFigures(playLine);
        console.log(`5% loss relay: dropped ${relay.dropped.up} of ${relay.dropped.up + relay.passed.up} datagrams upstream, ${relay.dropped.down} of ${relay.dropped.down + relay.passed.down} downstream; Haze ingest: ${ingest['lost']} lost, ${ingest['recovered']} recovered, ${ingest['naksSent']} NAKs; Haze play: ${out['sent']} sent, ${out['retransmitted']} retransmitted`);
        assert.ok(relay.dropped.up > 0 && relay.dropped.down > 0, 'the relay dropped datagrams both ways');
        assert.ok(ingest['recovered']! > 0, `ingest recovered packets: ${pubLine}`);
        assert.ok(out['retransmitted']! > 0, `play retransmitted packets: ${playLine}`);
      } finally {
        relay.close();
      }
    });

  });

  it('a listener-mode source (srt://:PORT): ffmpeg calls Haze, an HTTP viewer reads the stream', async () => {
    const port = await freePort();
    await haze.api({ addstream: { called: { source: `srt://:${port}` } } });
    // the viewer starts the pull, which listens; then ffmpeg calls (looping, as the pull above)
    const viewer = videoHashes(haze.httpUrl('/called.ts'), ['-t', '2']);
    await logLine(new RegExp(`stream called: input started from srt://:${port}`));
    const pub = peer('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', SOURCE, '-c', 'copy', '-f', 'mpegts', `srt://127.0.0.1:${port}?streamid=cam`], ['ignore', 'ignore', 'pipe']);
    assertContiguous(await viewer.hashes, 30, 'listener-mode SRT source -> HTTP .ts viewer');
    pub.kill('SIGINT');
    await exited(pub);
  });

  it('a passphrase encrypts publish and play (AES-192 and AES-128); a wrong or missing one is refused', async () => {
    const protocols = defaultConfig().config.protocols.map((p) => (p.connector === 'TSSRT' ? { ...p, passphrase: 'haze-srt-secret' } : p));
    await haze.api({ config: { protocols } });
    await logLine(/callers must use the configured passphrase/);
    const port = haze.ports.srt!;
    const player = videoHashes(srtUrl(port, '#!::r=live+c,m=request', '&passphrase=haze-srt-secret'), ['-t', PLAY_S]);
    const pub = ffmpegPublish(srtUrl(port, 'live+c', '&passphrase=haze-srt-secret&pbkeylen=24'));
    const wrong = ffmpegPublish(srtUrl(port, 'live+w', '&passphrase=not-the-secret'));
    const none = videoHashes(srtUrl(port, '#!::r=live+c,m=request'), [], 8000).hashes.then(
      () => 'played',
      (err: Error) => err.message,
    );
    assertContiguous(await player.hashes, PLAY_MIN, 'encrypted publish -> encrypted play');
    assert.notEqual(await exited(wrong), 0, 'ffmpeg with a wrong passphrase fails');
    assert.match(await none, /no video/);
    await exited(pub);
    await logLine(/refused: wrong passphrase/);
    await logLine(/refused: a passphrase is required/);
    assert.match(await logLine(/publishing live\+c/), /encrypted/);
  });
});
