// Latency behind the live edge as the browser sees it: headless Chromium (Debian's, through
// playwright-core) plays one real-time publish with hls.js (Haze HLS-TS, Haze LL-HLS in
// low-latency mode, nginx-rtmp's HLS), dash.js (Haze DASH) and Haze's fMP4-over-MSE player,
// one player at a time, and samples every 500 ms after a warm-up:
//   - behind ingest: wall clock now minus the wall-clock time the frame on screen reached the
//     server, from the server's own clock in the manifest (HLS EXT-X-PROGRAM-DATE-TIME through
//     hls.js `playingDate`, DASH availabilityStartTime through dash.js' live latency). Haze
//     only: nginx-rtmp's playlists carry no date.
//   - behind the playlist edge: hls.js' `latency` (the end of the newest listed segment or part
//     minus the playhead); the same definition for Haze and nginx-rtmp.
// Run through `npm run bench -- latency`. Settings: BENCH_LATENCY_SECONDS (20 sampled per
// player), BENCH_LATENCY_WARMUP (15), BENCH_GOP_FRAMES (30: a keyframe each second, as the
// LL-HLS goal assumes), BENCH_REPORT (bench/results/latency.md).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { benchRoot } from './lib/paths.js';
import { machineInfo } from './lib/proc.js';
import { startServer, type RunningServer, type ServerName } from './lib/servers.js';
import { ensureSource } from './lib/source.js';
import { PublisherHandle, sleep } from './lib/step.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'];

interface Target {
  label: string;
  server: ServerName;
  /** The page to open, given the server's HTTP base (`http://127.0.0.1:PORT`) and Haze's for the player files. */
  page(base: string): string;
}

const HLS = 'html5/application/vnd.apple.mpegurl';
const hazePage = (query: Record<string, string>) => (base: string) => `${base}/live.html?${new URLSearchParams({ muted: '1', ...query })}`;

const ONLY = process.env['BENCH_LATENCY_SERVERS']?.split(',');

const TARGETS: Target[] = [
  { label: 'Haze HLS (TS), hls.js', server: 'haze', page: hazePage({ forcePlayer: 'hlsjs', forceType: HLS }) },
  { label: 'Haze LL-HLS (CMAF), hls.js low-latency', server: 'haze', page: hazePage({ forcePlayer: 'hlsjs', forceType: `${HLS};version=7` }) },
  { label: 'Haze DASH (CMAF), dash.js', server: 'haze', page: hazePage({ forcePlayer: 'dashjs' }) },
  { label: 'Haze fMP4 progressive, MSE', server: 'haze', page: hazePage({ forcePlayer: 'mse' }) },
  { label: 'nginx-rtmp HLS, hls.js', server: 'nginx', page: () => 'about:blank' },
];

interface Sample {
  ingestS: number | undefined;
  edgeS: number | undefined;
  stalled: boolean;
}

/** One sample from the page: the player handle of Haze's player, or the bare hls.js of the nginx page. */
function sample(page: Page): Promise<Sample> {
  return page.evaluate(() => {
    const w = globalThis as any;
    const video = (w.hazePlayers?.live?.video ?? w.document.querySelector('video')) as { currentTime: number; paused: boolean; readyState: number };
    const h = w.hazePlayers?.live;
    // the nginx page's own hls.js; Haze's player exposes its estimates on its handle
    const hls = w.benchHls;
    let ingestS: number | undefined;
    let edgeS: number | undefined;
    if (hls) {
      edgeS = Number.isFinite(hls.latency) && hls.latency > 0 ? hls.latency : undefined;
      const d = hls.playingDate as Date | null;
      if (d) ingestS = (Date.now() - d.getTime()) / 1000;
    } else if (h) {
      const l = h.latencyS();
      edgeS = typeof l === 'number' ? l : undefined;
      const b = h.behindIngestS();
      ingestS = typeof b === 'number' ? b : undefined;
    }
    return { ingestS, edgeS, stalled: video.paused || video.readyState < 3 };
  });
}

function quantile(sorted: number[], q: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const fmt = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(2));

async function measure(target: Target, server: RunningServer, hazeBase: string, warmupS: number, seconds: number): Promise<string[]> {
  const browser = await chromium.launch({ executablePath: process.env['HAZE_CHROMIUM'] ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage();
    const base = `http://127.0.0.1:${server.hls['hls-ts']!.port}`;
    if (target.server === 'nginx') {
      // hls.js (the file Haze serves) on nginx-rtmp's media playlist, hls.js defaults for live
      // a page of nginx's own origin (its 404 page), so hls.js needs no CORS from it
      await page.goto(`${base}/`);
      await page.setContent('<video muted autoplay playsinline></video>');
      await page.addScriptTag({ url: `${hazeBase}/player/hls.js` });
      await page.evaluate((url) => {
        const w = globalThis as any;
        const hls = new w.Hls();
        hls.loadSource(url);
        hls.attachMedia(w.document.querySelector('video'));
        w.benchHls = hls;
      }, `${base}${server.hls['hls-ts']!.path}`);
    } else {
      await page.goto(target.page(base));
    }
    await sleep(warmupS * 1000);
    const samples: Sample[] = [];
    for (let i = 0; i < seconds * 2; i++) {
      samples.push(await sample(page));
      await sleep(500);
    }
    const ingest = samples.map((s) => s.ingestS).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
    const edge = samples.map((s) => s.edgeS).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
    const stalls = samples.filter((s) => s.stalled).length;
    return [target.label, fmt(quantile(ingest, 0.5)), fmt(quantile(ingest, 0.95)), fmt(quantile(edge, 0.5)), fmt(quantile(edge, 0.95)), `${stalls}/${samples.length}`];
  } finally {
    await browser.close();
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.env['BENCH_LATENCY_SECONDS'] ?? 20);
  const warmupS = Number(process.env['BENCH_LATENCY_WARMUP'] ?? 15);
  const gop = Number(process.env['BENCH_GOP_FRAMES'] ?? 30);
  const report = process.env['BENCH_REPORT'] ?? join(benchRoot, 'results', 'latency.md');
  const logDir = join(benchRoot, '.cache', 'logs');
  mkdirSync(logDir, { recursive: true });
  const source = ensureSource(gop);
  const rows: string[][] = [];
  for (const name of (['haze', 'nginx'] as const).filter((n) => !ONLY || ONLY.includes(n))) {
    const server = await startServer(name, { logDir, hazeWorkers: 1, nginxHls: true });
    // Haze serves the player files (hls.js) to the nginx page too
    const helper = name === 'nginx' ? await startServer('haze', { logDir, hazeWorkers: 1 }) : server;
    const publisher = new PublisherHandle();
    try {
      await publisher.start({ type: 'start', endpoint: server.publish, sourceFile: source });
      // players open once the server lists segments (nginx writes its playlist after the first one)
      const entry = server.hls['hls-ts']!;
      for (let i = 0; i < 100 && (await fetch(`http://127.0.0.1:${entry.port}${entry.path}`).catch(() => undefined))?.status !== 200; i++) await sleep(200);
      const hazeBase = `http://127.0.0.1:${helper.hls['hls-ts']!.port}`;
      for (const target of TARGETS.filter((t) => t.server === name)) {
        process.stderr.write(`bench: ${target.label}\n`);
        const row = await measure(target, server, hazeBase, warmupS, seconds);
        process.stderr.write(`  ${row.join(' | ')}\n`);
        rows.push(row);
      }
    } finally {
      await publisher.stop();
      await server.stop();
      if (helper !== server) await helper.stop();
    }
  }
  const m = machineInfo();
  const text = [
    '# Latency behind the live edge in the browser',
    '',
    `Date: ${new Date().toISOString()}  `,
    `Machine: ${m.nproc} CPUs, ${m.model}, ${m.kernel}; headless Chromium (Debian) driven by playwright-core, one player at a time.  `,
    `Source: testsrc2 1280x720 30 fps H.264, keyframe every ${gop} frames (${(gop / 30).toFixed(1)} s), + AAC, pushed in real time over RTMP (the bench publisher). Warm-up ${warmupS} s, then ${seconds * 2} samples 500 ms apart. Haze with one worker; nginx-rtmp with \`hls_fragment 2s; hls_playlist_length 10s\`.`,
    '',
    '| player | behind ingest p50 s | p95 s | behind playlist edge p50 s | p95 s | samples paused or starved |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    '- behind ingest: now minus the wall-clock time the displayed frame reached the server, from the server clock in the manifest (EXT-X-PROGRAM-DATE-TIME via hls.js `playingDate`; DASH availabilityStartTime and UTCTiming via dash.js). nginx-rtmp writes no dates; the MSE player has none to read.',
    '- behind playlist edge: hls.js `latency` (end of the newest listed segment or part minus the playhead), dash.js live latency, MSE buffered end minus playhead; the same definition for Haze and nginx-rtmp HLS.',
    '- Same machine for server, publisher and browser: the figures include the browser\'s own buffering and decoding on a loaded 2-core machine.',
    '',
  ].join('\n');
  mkdirSync(join(benchRoot, 'results'), { recursive: true });
  writeFileSync(report, text);
  process.stderr.write(`report: ${report}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
