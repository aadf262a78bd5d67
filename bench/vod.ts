// VoD and conversion benchmark (issue 4), printed and written to bench/results/vod.md:
//  1. `haze convert` throughput on a generated ~1 GB file: FLV->DTSC, MP4->DTSC, DTSC->MP4,
//     side by side with `ffmpeg -c copy` on the same input (to MKV, the nearest streaming
//     container ffmpeg writes, and to -f null: demuxing alone). Goal: at least ffmpeg's speed;
//     the 2013 paper's converter did about 240 MB/s.
//  2. Time to first byte of a VoD viewer at a random position (warm cache), FLV and MP4
//     ranges. Goal: under 20 ms.
//  3. Memory of 200 concurrent VoD viewers of 200 different files (slow readers that hold
//     their connection open): the worker's RSS before and with them.
// Settings: BENCH_VOD_GB (default 1), BENCH_VOD_VIEWERS (200).

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { join } from 'node:path';
import { benchRoot, repoRoot } from './lib/paths.js';
import { sampleTree, machineInfo } from './lib/proc.js';
import { startServer } from './lib/servers.js';
import { fmt, percentile } from './lib/stats.js';

const GB = Number(process.env['BENCH_VOD_GB'] ?? 1);
const VIEWERS = Number(process.env['BENCH_VOD_VIEWERS'] ?? 200);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'haze-vod-bench-'));
const lines: string[] = [];
const say = (s: string): void => {
  console.log(s);
  lines.push(s);
};

function timed(cmd: string, args: string[]): number {
  const t = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.toString().slice(-500)}`);
  return (performance.now() - t) / 1000;
}

const haze = (...args: string[]): number => timed(process.execPath, [join(repoRoot, 'bin', 'haze'), ...args]);
const ffmpeg = (...args: string[]): number => timed('ffmpeg', ['-v', 'error', '-y', ...args]);
const mb = (file: string): number => fs.statSync(file).size / 1e6;

/** A source of about GB gigabytes: 2 minutes of 720p at a high bitrate, looped by copying. */
function makeSources(): { flv: string; mp4: string } {
  const clip = path.join(work, 'clip.mp4');
  ffmpeg('-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30', '-f', 'lavfi', '-i', 'sine=sample_rate=48000', '-t', '120', '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '30M', '-g', '60', '-c:a', 'aac', '-b:a', '128k', clip);
  const loops = Math.max(1, Math.round((GB * 1e9) / fs.statSync(clip).size));
  const mp4 = path.join(work, 'big.mp4');
  const flv = path.join(work, 'big.flv');
  ffmpeg('-stream_loop', String(loops - 1), '-i', clip, '-c', 'copy', mp4);
  ffmpeg('-i', mp4, '-c', 'copy', flv);
  return { flv, mp4 };
}

function row(label: string, input: string, seconds: number): string {
  return `| ${label} | ${fmt(seconds, 2)} s | ${fmt(mb(input) / seconds)} MB/s |`;
}

function convertBench(src: { flv: string; mp4: string }): void {
  say(`\n## Conversion (${fmt(mb(src.flv))} MB FLV, ${fmt(mb(src.mp4))} MB MP4; page cache warm)\n`);
  say('| conversion | time | input MB/s |');
  say('| --- | --- | --- |');
  // warm the page cache for both inputs
  for (const f of [src.flv, src.mp4]) execFileSync('cat', [f], { stdio: ['ignore', 'ignore', 'ignore'] });
  const dtsc = path.join(work, 'big.dtsc');
  say(row('haze convert FLV -> DTSC', src.flv, haze('convert', src.flv, dtsc)));
  say(row('ffmpeg -c copy FLV -> MKV', src.flv, ffmpeg('-i', src.flv, '-c', 'copy', path.join(work, 'f.mkv'))));
  say(row('ffmpeg -c copy FLV -> null (demux only)', src.flv, ffmpeg('-i', src.flv, '-c', 'copy', '-f', 'null', '-')));
  say(row('haze convert MP4 -> DTSC', src.mp4, haze('convert', src.mp4, path.join(work, 'big2.dtsc'))));
  say(row('ffmpeg -c copy MP4 -> MKV', src.mp4, ffmpeg('-i', src.mp4, '-c', 'copy', path.join(work, 'm.mkv'))));
  say(row('ffmpeg -c copy MP4 -> null (demux only)', src.mp4, ffmpeg('-i', src.mp4, '-c', 'copy', '-f', 'null', '-')));
  say(row('haze convert DTSC -> MP4 (fragmented)', dtsc, haze('convert', dtsc, path.join(work, 'out.mp4'))));
  say(row('ffmpeg -c copy MP4 -> MP4', src.mp4, ffmpeg('-i', src.mp4, '-c', 'copy', path.join(work, 'out2.mp4'))));
  for (const f of ['f.mkv', 'm.mkv', 'out.mp4', 'out2.mp4', 'big2.dtsc']) fs.rmSync(path.join(work, f), { force: true });
}

/** ms from sending a GET to its first body byte. */
function firstByteMs(port: number, urlPath: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false }, (res) => {
      res.once('data', () => {
        resolve(performance.now() - t);
        req.destroy();
      });
      res.once('error', () => {});
    });
    req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(e)));
  });
}

async function api(port: number, body: unknown): Promise<void> {
  await fetch(`http://127.0.0.1:${port}/api`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
}

async function serveBench(src: { flv: string; mp4: string }): Promise<void> {
  const logDir = path.join(benchRoot, '.cache');
  fs.mkdirSync(logDir, { recursive: true });
  const server = await startServer('haze', { logDir, hazeWorkers: 1 });
  try {
    const apiPort = Number(/--api (\d+)/.exec(fs.readFileSync(`/proc/${server.pid}/cmdline`, 'latin1').replace(/\0/g, ' '))![1]);
    const httpPort = server.play['http-flv']!.port;
    // a 10-minute file (the first 10 minutes of the big one) and VIEWERS one-minute files
    const ten = path.join(work, 'ten.mp4');
    ffmpeg('-i', src.mp4, '-t', '600', '-c', 'copy', ten);
    const one = path.join(work, 'one.flv');
    ffmpeg('-i', src.flv, '-t', '60', '-c', 'copy', one);
    const films = path.join(work, 'films');
    fs.mkdirSync(films);
    for (let i = 0; i < VIEWERS; i++) fs.copyFileSync(one, path.join(films, `f${i}.flv`));
    await api(apiPort, { addstream: { ten: { source: ten }, films: { source: `${films}/` } } });
    await new Promise((r) => setTimeout(r, 600));

    say(`\n## Time to first byte at a random position (10-minute ${fmt(mb(ten))} MB MP4, warm)\n`);
    await firstByteMs(httpPort, '/ten.flv'); // index it
    const flvT: number[] = [];
    const mp4T: number[] = [];
    const size = Number((await fetch(`http://127.0.0.1:${httpPort}/ten.mp4`, { method: 'HEAD' })).headers.get('content-length'));
    for (let i = 0; i < 100; i++) {
      flvT.push(await firstByteMs(httpPort, `/ten.flv?start=${Math.floor(Math.random() * 590_000)}`));
      const at = Math.floor(Math.random() * (size - 1e6));
      mp4T.push(await firstByteMs(httpPort, '/ten.mp4', { Range: `bytes=${at}-${at + 999_999}` }));
    }
    say('| request | p50 | p95 | max |');
    say('| --- | --- | --- | --- |');
    say(`| /ten.flv?start=random | ${fmt(percentile(flvT, 50), 1)} ms | ${fmt(percentile(flvT, 95), 1)} ms | ${fmt(Math.max(...flvT), 1)} ms |`);
    say(`| /ten.mp4 Range at random | ${fmt(percentile(mp4T, 50), 1)} ms | ${fmt(percentile(mp4T, 95), 1)} ms | ${fmt(Math.max(...mp4T), 1)} ms |`);

    say(`\n## Memory of ${VIEWERS} concurrent viewers of ${VIEWERS} different files (one worker)\n`);
    // every file indexed first (HEAD opens it), so what follows is the viewers' own cost
    for (let i = 0; i < VIEWERS; i++) await fetch(`http://127.0.0.1:${httpPort}/films+f${i}.flv`, { method: 'HEAD' });
    await new Promise((r) => setTimeout(r, 1000));
    const before = sampleTree(server.pid).rssKb;
    const sockets: http.ClientRequest[] = [];
    await Promise.all(
      Array.from({ length: VIEWERS }, (_, i) =>
        new Promise<void>((resolve) => {
          const req = http.get({ host: '127.0.0.1', port: httpPort, path: `/films+f${i}.flv?start=${(i * 997) % 50_000}`, agent: false }, (res) => {
            res.once('data', () => {
              res.pause(); // a slow reader: holds its connection, reads nothing more
              resolve();
            });
          });
          req.on('error', () => resolve());
          sockets.push(req);
        }),
      ),
    );
    await new Promise((r) => setTimeout(r, 2000));
    const during = sampleTree(server.pid).rssKb;
    say(`| haze tree RSS | idle (the ${VIEWERS} files indexed) | ${VIEWERS} viewers | per viewer |`);
    say('| --- | --- | --- | --- |');
    say(`| | ${fmt(before / 1024)} MiB | ${fmt(during / 1024)} MiB | ${fmt((during - before) / VIEWERS)} KiB |`);
    for (const s of sockets) s.destroy();
  } finally {
    await server.stop();
  }
}

async function main(): Promise<void> {
  const m = machineInfo();
  say(`# VoD and conversion benchmark\n\n${new Date().toISOString()} - ${m.nproc} cores, ${m.model}, Node ${process.version}, ${execFileSync('ffmpeg', ['-version']).toString().split('\n')[0]}`);
  try {
    const src = makeSources();
    convertBench(src);
    await serveBench(src);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  fs.mkdirSync(path.join(benchRoot, 'results'), { recursive: true });
  fs.writeFileSync(path.join(benchRoot, 'results', 'vod.md'), lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
