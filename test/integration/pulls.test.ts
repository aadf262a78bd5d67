// Pulled sources (issue 7 item 5): HLS, dtsc:// and rtmp:// pulls of a second Haze ("B") reach
// its viewers with the source's packets, and recover when their source restarts.
//
// - HLS: ffmpeg writes a live HLS folder (-f hls -hls_time 1 -hls_list_size 5, copying a TS
//   file) served by a tiny HTTP server here; B's stream `hls` pulls it. A viewer of B gets
//   video and audio packets with the source's md5s (in the source's order); the writer is
//   stopped (its playlist ends) and started again (the playlist starts over) and B's viewers
//   get the new run.
// - dtsc://: Haze "A" gets the source over RTMP from ffmpeg; B's stream `edge` pulls it from A's
//   DTSC port; when A's publisher restarts, B's viewers go on. The same stream with
//   `inputtimeout` 1 stops its pull a second after its last viewer.
// - rtmp://: B's stream `rtmpedge` plays A's stream over RTMP.
// - MistServer's dtsc:// bytes (shared/fixtures/mistserver/small-mp4.dtsc-wire) replayed by a
//   tiny TCP server to the dtsc:// pull give the header's tracks and every packet.
// The cases run concurrently, on one A and one B.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { getText } from '../../src/containers/dtsc/dtmi.js';
import { DtscFrameReader } from '../../src/containers/dtsc/packets.js';
import { plainTrack, readDtscHeader } from '../../src/containers/dtsc/header.js';
import type { Packet, Track } from '../../src/media/types.js';
import { connectDtsc } from '../../src/inputs/pull/dtsc-pull.js';
import { Logger } from '../../src/util/log.js';
import { freePort, mistFixtures, parseFramemd5, repoRoot, run, runOk, sleep, tmpDir, type FrameLine } from '../helpers.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';

const dir = tmpDir('haze-pulls-');
const hlsDir = path.join(dir, 'hls');
/** The source: 4 s of H.264 (B-frames, a keyframe a second) + AAC (shared/fixtures/mistserver). */
const SRC_FLV = path.join(mistFixtures, 'small.flv');
const SRC_TS = path.join(dir, 'src.ts');
/** What a restarted source sends instead: 12 s of other H.264 + AAC (shipped with Haze), so what arrives after a restart is told from what was left over before it. */
const NEXT_MP4 = path.join(repoRoot, 'media/demo.mp4');
const NEXT_TS = path.join(dir, 'next.ts');

/** Polls `fn` until it returns a value, or fails after `ms`. */
async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 10_000, everyMs = 100): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** framemd5 of the first video and audio stream at `input` (stream 0 video, 1 audio), `seconds` of it. */
async function framemd5(input: string, seconds: number): Promise<FrameLine[]> {
  const args = ['-v', 'error', '-rw_timeout', '10000000', '-i', input, '-map', '0:v:0', '-map', '0:a:0', '-c', 'copy', ...(seconds > 0 ? ['-t', String(seconds)] : []), '-f', 'framemd5', '-'];
  return parseFramemd5((await runOk('ffmpeg', args, { timeoutMs: 20_000 })).toString());
}

/**
 * Checks that `got` (one stream's packets) is a run of consecutive packets of `source`, which a
 * looping writer repeats (so the run may wrap around its end). At a wrap the source's first
 * packet may be missing: with B-frames its DTS lies before the loop's offset, and ffmpeg's
 * muxers drop a packet whose DTS does not increase (-stream_loop with -c copy). Returns the
 * run's length.
 */
function assertRunOf(source: FrameLine[], got: FrameLine[], what: string, min: number): number {
  assert.ok(got.length >= min, `${what}: only ${got.length} packets`);
  let at = source.findIndex((f) => f.hash === got[0]!.hash);
  assert.ok(at >= 0, `${what}: the first packet (${got[0]!.hash}) is not one of the source's`);
  for (let i = 0; i < got.length; i++, at = (at + 1) % source.length) {
    if (at === 0 && i > 0 && got[i]!.hash !== source[0]!.hash && got[i]!.hash === source[1]?.hash) at = 1;
    const want = source[at]!;
    assert.equal(got[i]!.hash, want.hash, `${what}: packet ${i} (${got[i]!.size} B) differs from source packet ${at} (${want.size} B)`);
  }
  return got.length;
}

/**
 * Checks that `got` is a run of `before` (what a viewer had when its source restarted; may be
 * empty) followed by a run of at least `min` packets of `after` (the restarted source).
 */
function assertSwitch(before: FrameLine[], after: FrameLine[], got: FrameLine[], what: string, min: number): { before: number; after: number } {
  const next = new Set(after.map((f) => f.hash));
  const k = got.findIndex((f) => next.has(f.hash));
  assert.ok(k >= 0, `${what}: none of the ${got.length} packets is from the restarted source`);
  if (k > 0) assertRunOf(before, got.slice(0, k), `${what} (before the restart)`, 1);
  return { before: k, after: assertRunOf(after, got.slice(k), `${what} (after the restart)`, min) };
}

/** Records what an HTTP viewer gets into `file` until closed. */
function record(url: string, file: string): { close(): void } {
  const out = fs.createWriteStream(file);
  const req = http.get(url, { agent: false }, (res) => res.pipe(out));
  req.on('error', () => out.end());
  return { close: () => req.destroy() };
}

/** Waits until the recording at `file` ends with `min` video packets of `after`; returns its video packets. */
async function recordedSwitch(file: string, after: FrameLine[], min: number, ms: number): Promise<FrameLine[]> {
  const next = new Set(byStream(after, 0).map((f) => f.hash));
  return until(
    `${min} packets of the restarted source in ${path.basename(file)}`,
    async () => {
      // a recording still being written: ffmpeg reads what is there
      const r = await run('ffmpeg', ['-v', 'quiet', '-i', file, '-map', '0:v:0', '-c', 'copy', '-f', 'framemd5', '-'], { timeoutMs: 10_000 });
      const video = byStream(parseFramemd5(r.stdout.toString()), 0);
      return video.filter((f) => next.has(f.hash)).length >= min ? video : undefined;
    },
    ms,
    500,
  );
}

function byStream(frames: FrameLine[], stream: number): FrameLine[] {
  return frames.filter((f) => f.stream === stream);
}

/** ffmpeg writing a live HLS folder from a TS file, looping it. */
function hlsWriter(src: string): ChildProcess {
  return spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', src, '-c', 'copy', '-f', 'hls', '-hls_time', '1', '-hls_list_size', '5', path.join(hlsDir, 'index.m3u8')],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

/** A static file server for the HLS folder. */
async function serveFolder(root: string): Promise<{ port: number; server: http.Server }> {
  const server = http.createServer((req, res) => {
    const file = path.join(root, path.normalize(decodeURIComponent((req.url ?? '/').split('?')[0]!)));
    fs.readFile(file, (err, body) => {
      if (err) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'Content-Type': file.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t', 'Cache-Control': 'no-cache' }).end(body);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { port, server };
}

/** Waits for A's stream `src` to be online (its publisher started after A). */
async function originOnline(a: HazeInstance): Promise<void> {
  await until('the origin stream online', async () => ((await a.api({ active_streams: true }))['active_streams'] as string[] | undefined)?.includes('src') || undefined);
}

/** The per-stream figures of the JSON statistics a load balancer polls (`/PASSPHRASE.json`). */
async function streamFigures(haze: HazeInstance): Promise<Record<string, Record<string, unknown>>> {
  const res = await fetch(`http://127.0.0.1:${haze.ports.api}/pulls.json`);
  return ((await res.json()) as { streams?: Record<string, Record<string, unknown>> }).streams ?? {};
}

async function stop(p: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill(signal);
  await exited(p);
}

describe('pulled sources: HLS, dtsc://, rtmp://', { timeout: 90_000, concurrency: true }, () => {
  let a: HazeInstance;
  let b: HazeInstance;
  let files: { port: number; server: http.Server };
  let writer: ChildProcess | undefined;
  let publisher: ChildProcess | undefined;
  let srcFlv: FrameLine[];
  /** The HLS source, as FLV carries it. */
  let srcTs: FrameLine[];
  /** The restarted sources: the publisher's (FLV), the HLS writer's (as FLV carries it). */
  let nextFlv: FrameLine[];
  let nextTs: FrameLine[];
  const started = Date.now();
  // the origin's publisher is replaced by the dtsc:// case only once the other cases on it
  // captured what they compare with the first source
  let rtmpCaptured!: () => void;
  let idleCaptured!: () => void;
  const othersCaptured = Promise.all([new Promise<void>((r) => (rtmpCaptured = r)), new Promise<void>((r) => (idleCaptured = r))]);

  before(async () => {
    fs.mkdirSync(hlsDir);
    await runOk('ffmpeg', ['-v', 'error', '-i', SRC_FLV, '-c', 'copy', '-f', 'mpegts', SRC_TS]);
    files = await serveFolder(hlsDir);
    writer = hlsWriter(SRC_TS);
    const aPorts = { api: await freePort(), http: await freePort(), rtmp: await freePort(), dtsc: await freePort() };
    const hlsUrl = `http://127.0.0.1:${files.port}/index.m3u8`;
    const dtscUrl = `dtsc://127.0.0.1:${aPorts.dtsc}/src`;
    // each instance is kept as soon as it is up, so `after` stops it whatever else failed
    /** A TS file's packets as FLV carries them (H.264 with 4-byte NAL lengths, AAC without ADTS headers), as a viewer of B's FLV output gets them. */
    const asFlv = async (ts: string): Promise<FrameLine[]> => {
      await runOk('ffmpeg', ['-v', 'error', '-i', ts, '-c', 'copy', '-f', 'flv', `${ts}.flv`]);
      return framemd5(`${ts}.flv`, 0);
    };
    [, , srcFlv, srcTs, nextFlv, nextTs] = await Promise.all([
      startHaze({ workers: 1, ports: aPorts, config: { streams: { src: { source: 'push://' } } } }).then((h) => (a = h)),
      startHaze({
        workers: 1,
        config: {
          config: { prometheus: 'pulls' },
          streams: {
            hls: { source: hlsUrl },
            edge: { source: dtscUrl },
            idle: { source: dtscUrl, inputtimeout: 1 },
            rtmpedge: { source: `rtmp://127.0.0.1:${aPorts.rtmp}/live/src` },
          },
        },
      }).then((h) => (b = h)),
      framemd5(SRC_FLV, 0),
      asFlv(SRC_TS),
      framemd5(NEXT_MP4, 0),
      runOk('ffmpeg', ['-v', 'error', '-i', NEXT_MP4, '-c', 'copy', '-f', 'mpegts', NEXT_TS]).then(() => asFlv(NEXT_TS)),
    ]);
    publisher = publishFile(SRC_FLV, a.rtmpUrl('src'), ['-stream_loop', '-1']);
    console.log(`# setup: ${Date.now() - started} ms`);
  });
  after(async () => {
    if (process.env['PULLS_LOG']) console.log(b?.log());
    await Promise.all([stop(writer), stop(publisher, 'SIGKILL')]);
    await Promise.all([a?.stop(), b?.stop()]);
    files?.server.close();
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`# total: ${Date.now() - started} ms`);
  });

  it('HLS: a viewer gets the packets of a live playlist; a restarted writer is picked up', async () => {
    const t0 = Date.now();
    await until('two HLS segments', () => ((fs.existsSync(path.join(hlsDir, 'index.m3u8')) ? fs.readFileSync(path.join(hlsDir, 'index.m3u8'), 'utf8') : '').match(/#EXTINF/g)?.length ?? 0) >= 2 || undefined);
    // a viewer that stays through the restart
    const probe = record(b.httpUrl('/hls.flv'), path.join(dir, 'hls-viewer.flv'));
    const got = await framemd5(b.httpUrl('/hls.flv'), 2);
    const v = assertRunOf(byStream(srcTs, 0), byStream(got, 0), 'HLS video', 40);
    const au = assertRunOf(byStream(srcTs, 1), byStream(got, 1), 'HLS audio', 60);
    console.log(`# HLS: ${v} video + ${au} audio packets matched, ${Date.now() - t0} ms`);

    // the writer stops (its playlist gets EXT-X-ENDLIST) and starts again, with other media:
    // the playlist restarts
    const t1 = Date.now();
    await stop(writer);
    const ended = fs.readFileSync(path.join(hlsDir, 'index.m3u8'), 'utf8');
    assert.match(ended, /#EXT-X-ENDLIST/, 'the stopped writer ended its playlist');
    for (const f of fs.readdirSync(hlsDir)) fs.rmSync(path.join(hlsDir, f));
    writer = hlsWriter(NEXT_TS);
    // the viewer that stayed gets the old run's packets, then the new run's
    const seen = await recordedSwitch(path.join(dir, 'hls-viewer.flv'), nextTs, 24, 15_000);
    probe.close();
    const sw = assertSwitch(byStream(srcTs, 0), byStream(nextTs, 0), seen, 'HLS viewer through the restart', 24);
    const t2 = Date.now() - t1;
    const again = await framemd5(b.httpUrl('/hls.flv'), 1.5);
    const v2 = assertRunOf(byStream(nextTs, 0), byStream(again, 0), 'HLS video of a new viewer after the restart', 24);
    console.log(`# HLS restart: the staying viewer got ${sw.before} + ${sw.after} video packets (old run, new run), the new run ${t2} ms after the writer stopped; a new viewer ${v2}`);
  });

  it('dtsc://: an edge plays the origin stream; an origin publisher restart is bridged', async () => {
    const t0 = Date.now();
    await originOnline(a);
    const probe = record(b.httpUrl('/edge.flv'), path.join(dir, 'edge-viewer.flv'));
    const got = await framemd5(b.httpUrl('/edge.flv'), 2);
    const v = assertRunOf(byStream(srcFlv, 0), byStream(got, 0), 'dtsc video', 40);
    const au = assertRunOf(byStream(srcFlv, 1), byStream(got, 1), 'dtsc audio', 60);
    console.log(`# dtsc: ${v} video + ${au} audio packets matched, ${Date.now() - t0} ms`);

    // the edge's input session is an INPUT:DTSC one, counted as a replica
    await until('an INPUT:DTSC session with bytes in', async () => {
      const clients = (await b.api({ clients: { streams: ['edge'], fields: ['stream', 'protocol', 'down', 'up'] } }))['clients'] as { data?: unknown[][] } | undefined;
      return clients?.data?.some((r) => r[1] === 'INPUT:DTSC' && Number(r[3]) > 0) || undefined;
    }, 5000, 250);
    await until('edge marked replicated for the balancer', async () => ((await streamFigures(b))['edge']?.['rep'] === true) || undefined, 8000, 250);

    // the origin's publisher is lost and another one comes, with other media
    await othersCaptured;
    const t1 = Date.now();
    await stop(publisher, 'SIGKILL');
    await sleep(500);
    publisher = publishFile(NEXT_MP4, a.rtmpUrl('src'), ['-stream_loop', '-1']);
    const seen = await recordedSwitch(path.join(dir, 'edge-viewer.flv'), nextFlv, 24, 15_000);
    probe.close();
    const sw = assertSwitch(byStream(srcFlv, 0), byStream(nextFlv, 0), seen, 'dtsc viewer through the restart', 24);
    const t2 = Date.now() - t1;
    const again = await framemd5(b.httpUrl('/edge.flv'), 1.5);
    const v2 = assertRunOf(byStream(nextFlv, 0), byStream(again, 0), 'dtsc video of a new viewer after the restart', 24);
    console.log(`# dtsc restart: the staying viewer got ${sw.before} + ${sw.after} video packets (before, after), the new publisher's ${t2} ms after the old one was killed; a new viewer ${v2}`);
  });

  it('dtsc:// with inputtimeout 1: the pull stops a second after its last viewer', async () => {
    /** Whether B's statistics show the pull's INPUT:DTSC session of `idle` as current. */
    const pulling = async (): Promise<boolean> => {
      const clients = (await b.api({ clients: { streams: ['idle'], protocols: ['INPUT:DTSC'], fields: ['stream'] } }))['clients'] as { data?: unknown[][] } | undefined;
      return (clients?.data?.length ?? 0) > 0;
    };
    const got = await originOnline(a)
      .then(() => framemd5(b.httpUrl('/idle.flv'), 0.5))
      .finally(idleCaptured);
    assert.ok(byStream(got, 0).length > 0, 'the viewer got video');
    const left = Date.now();
    await until('the pull of idle in the statistics', async () => (await pulling()) || undefined, 5000, 200);
    await until('the pull of idle to stop', async () => ((await pulling()) ? undefined : true), 8000, 200);
    const ms = Date.now() - left;
    console.log(`# inputtimeout 1: the pull's session was gone ${ms} ms after the viewer left`);
    assert.match(b.log(), /stream idle ended: no viewers for 1 s/);
  });

  it('rtmp://: an edge plays the origin stream over RTMP', async () => {
    const t0 = Date.now();
    const got = await originOnline(a)
      .then(() => framemd5(b.httpUrl('/rtmpedge.flv'), 2))
      .finally(rtmpCaptured);
    const v = assertRunOf(byStream(srcFlv, 0), byStream(got, 0), 'rtmp video', 40);
    const au = assertRunOf(byStream(srcFlv, 1), byStream(got, 1), 'rtmp audio', 60);
    console.log(`# rtmp: ${v} video + ${au} audio packets matched, ${Date.now() - t0} ms`);
    // the API names the input of each pulled source (MistServer's capability names)
    for (const [source, input] of [['rtmp://h/live/x', 'RTMP'], ['rtmps://h/live/x', 'RTMP'], ['dtsc://h:4200/x', 'DTSC'], ['http://h/a/index.m3u8', 'HLS'], ['https-hls://h/a', 'HLS']]) {
      assert.equal(((await b.api({ capabilities: source, minimal: 1 }))['capabilities'] as { name?: string }).name, input, source);
    }
    // an RTMP pull is not a replica of a Haze/MistServer origin
    const fig = await until('rtmpedge in the statistics', async () => (await streamFigures(b))['rtmpedge'], 8000, 250);
    assert.equal(fig['rep'], undefined);
  });

  it("MistServer's dtsc:// bytes replayed to the dtsc:// pull give the header's tracks and every packet", async () => {
    const wire = fs.readFileSync(path.join(mistFixtures, 'small-mp4.dtsc-wire'));
    // what the fixture holds, by the repo's DTSC decoder
    let want: Track[] = [];
    const wantPackets: Packet[] = [];
    let hiBytes = 0;
    for (const f of new DtscFrameReader().push(wire)) {
      if (f.kind === 'command' && hiBytes === 0) hiBytes = f.raw.length;
      else if (f.kind === 'header') want = readDtscHeader(f.raw).tracks.map(plainTrack);
      else if (f.kind === 'packet') wantPackets.push(f.packet);
    }
    // a one-connection origin: `hi` on accept, the rest once the play command came
    const plays: string[] = [];
    const server = net.createServer((sock) => {
      sock.write(wire.subarray(0, hiBytes));
      const reader = new DtscFrameReader();
      sock.on('data', (chunk: Buffer) => {
        for (const f of reader.push(chunk)) {
          if (f.kind !== 'command' || getText(f.command, 'cmd') !== 'play') continue;
          plays.push(getText(f.command, 'stream') ?? '');
          sock.end(wire.subarray(hiBytes));
        }
      });
      sock.on('error', () => {});
    });
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const tracks = new Map<number, Track>();
      const packets: Packet[] = [];
      let vodEnded = '';
      const conn = await connectDtsc(
        { host: '127.0.0.1', port, stream: 'vod+small.mp4', query: [] },
        { setTrack: (t) => tracks.set(t.id, t), removeTrack: (id) => tracks.delete(id), push: (p) => packets.push(p) },
        { log: new Logger({ test: 'pulls' }), onVodEnd: (why) => (vodEnded = why) },
      );
      assert.equal(await conn.done, 'connection closed');
      assert.deepEqual(plays, ['vod+small.mp4']);
      assert.match(vodEnded, /VoD stream played to its end/);
      assert.deepEqual([...tracks.values()], want, 'the tracks of the fixture header');
      assert.equal(want.length, 2);
      for (const t of want) {
        const digest = (list: Packet[]): string => {
          const h = createHash('md5');
          for (const p of list) h.update(`${p.timeMs}/${p.offsetMs}/${p.keyframe ? 1 : 0}/`).update(p.data);
          return h.digest('hex');
        };
        const mine = packets.filter((p) => p.trackId === t.id);
        const theirs = wantPackets.filter((p) => p.trackId === t.id);
        assert.equal(mine.length, theirs.length, `track ${t.id}: packet count`);
        assert.equal(digest(mine), digest(theirs), `track ${t.id}: md5 of times and payloads`);
      }
      assert.equal(packets.length, 307);
    } finally {
      server.close();
    }
  });
});
