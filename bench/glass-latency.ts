// Glass-to-glass latency per protocol (issue 7): a publisher sends a pre-encoded 640x360 25 fps
// H.264 clip (keyframe every second, no B-frames) in real time, each access unit carrying its
// send wall time in µs in an SEI NAL unit (lib/g2g-stamp.ts); a reader plays one output like a
// player and takes arrival - sent for every frame (lib/g2g-readers.ts, lib/g2g-webrtc.ts). One
// reader at a time, a warm-up then a window of samples; p50/p95/max per protocol, and the ratio
// to a peer measured in the same run where one serves the same protocol: nginx-rtmp for RTMP and
// HLS, a plain ffmpeg relay (`-c copy`) for SRT and RTSP. Goals (issue 7, loopback): WebRTC under
// 200 ms; SRT under its configured latency + 50 ms.
//
// Adding a protocol is one entry in ENTRIES (and, for a new way in, one in SITES). An entry whose
// server side is not built yet prints "not available" with the reason instead of failing.
//
// Run through `npm run bench -- glass`. Settings: BENCH_G2G_SECONDS (15 s of samples per row),
// BENCH_G2G_WARMUP (4 s), BENCH_G2G_ONLY (comma list of entry ids, e.g. rtmp,webrtc),
// BENCH_G2G_SRT_LATENCY_MS (120: SRT's default), BENCH_REPORT (bench/results/glass-latency.md).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchRoot, repoRoot } from './lib/paths.js';
import { machineInfo } from './lib/proc.js';
import { freePort, startServer, type RunningServer } from './lib/servers.js';
import { fmt, percentile } from './lib/stats.js';
import { ensureClip, loadClip, LATENCY_CLIP, Pacer, type Clip } from './lib/g2g-source.js';
import { FfmpegPipePublisher, RtmpPublisher, TsUdpPublisher, type G2gPublisher } from './lib/g2g-publish.js';
import { FfmpegTsReader, HlsReader, HttpFlvReader, HttpTsReader, LlHlsReader, RtmpReader, UdpTsReader, type G2gReader } from './lib/g2g-readers.js';
import { WhepChromiumReader } from './lib/g2g-webrtc.js';
import { WhipPublisher } from './lib/g2g-whip.js';

const SECONDS = Number(process.env['BENCH_G2G_SECONDS'] ?? 15);
const WARMUP = Number(process.env['BENCH_G2G_WARMUP'] ?? 4);
const ONLY = process.env['BENCH_G2G_ONLY']?.split(',').filter(Boolean);
const SRT_LATENCY_MS = Number(process.env['BENCH_G2G_SRT_LATENCY_MS'] ?? 120);
const STREAM = 'live';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const logDir = join(benchRoot, '.cache', 'logs');

// ---- where the stream goes in: a server (or relay) and the publisher that feeds it ----------

interface Site {
  /** Publisher for this site's way in. */
  publisher: G2gPublisher;
  haze?: RunningServer;
  nginx?: RunningServer;
  /** ffmpeg relay: the URL a reader plays. */
  relayPlay?: string;
  /** The ffmpeg relay's ingest port (RTSP: the reader itself listens there). */
  relayIn?: number;
  stop(): Promise<void>;
}

type SiteId = 'haze-rtmp' | 'haze-whip' | 'nginx-rtmp' | 'ffmpeg-rtmp-srt' | 'haze-srt' | 'slt-srt' | 'ffmpeg-srt' | 'haze-rtsp' | 'ffmpeg-rtsp';

/** Whether a module of Haze's build exists (the protocols being written while this runs). */
function built(rel: string): boolean {
  return existsSync(join(repoRoot, 'dist', 'src', rel));
}

const srtOpts = (extra: string): string => `latency=${SRT_LATENCY_MS * 1000}&pkt_size=1316${extra}`;
/** srt-live-transmit takes SRT options in ms. */
const sltOpts = `latency=${SRT_LATENCY_MS}`;
const clipSize = { width: Number(LATENCY_CLIP.size.split('x')[0]), height: Number(LATENCY_CLIP.size.split('x')[1]) };
/** TS muxed here, over UDP into srt-live-transmit, out as SRT (caller) to `url` (see g2g-publish.ts). */
const sltPublisher = (url: string): G2gPublisher => new TsUdpPublisher('TsMuxer -> srt-live-transmit', 'srt-live-transmit', ['-q', '-a', 'no', 'udp://127.0.0.1:{PORT}', url], clipSize);
/** srt-live-transmit as SRT caller, each packet on over UDP to the reader (see g2g-readers.ts). */
const sltReader = (url: string): G2gReader => new UdpTsReader('srt-live-transmit caller -> UDP -> TsDemuxer', 'srt-live-transmit', ['-q', url, 'udp://127.0.0.1:{PORT}']);

async function startHaze(): Promise<RunningServer> {
  return startServer('haze', { logDir, hazeWorkers: 1, hazeProtocolPorts: true });
}

function spawnRelay(args: string[], cmd = 'ffmpeg'): ChildProcess {
  const child = spawn(cmd, cmd === 'ffmpeg' ? ['-hide_banner', '-loglevel', 'warning', ...args] : ['-q', '-a', 'no', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.on('data', (d: Buffer) => process.stderr.write(`[${cmd} relay] ${d.toString()}`));
  return child;
}

async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 2000);
  await gone;
  clearTimeout(t);
}

const SITES: Record<SiteId, { label: string; readerFirst?: boolean; start(): Promise<Site> }> = {
  'haze-rtmp': {
    label: 'RTMP publish (RtmpClient) into Haze',
    async start() {
      const haze = await startHaze();
      return { haze, publisher: new RtmpPublisher(`rtmp://127.0.0.1:${haze.publish.port}/live/${STREAM}`), stop: () => haze.stop() };
    },
  },
  'haze-whip': {
    label: 'WHIP publish (werift, the repo\'s H.264 RTP packetizer) into Haze',
    async start() {
      const haze = await startHaze();
      return { haze, publisher: new WhipPublisher(`http://127.0.0.1:${haze.hls['hls-ts']!.port}/whip/${STREAM}`), stop: () => haze.stop() };
    },
  },
  'nginx-rtmp': {
    label: 'RTMP publish (RtmpClient) into nginx-rtmp (hls on, hls_fragment 2s)',
    async start() {
      const nginx = await startServer('nginx', { logDir, nginxHls: true });
      return { nginx, publisher: new RtmpPublisher(`rtmp://127.0.0.1:${nginx.publish.port}/live/${STREAM}`), stop: () => nginx.stop() };
    },
  },
  'ffmpeg-rtmp-srt': {
    label: 'RTMP publish (RtmpClient) into an ffmpeg relay (-listen 1 RTMP in, -c copy, MPEG-TS over SRT listener out)',
    async start() {
      const a = await freePort();
      const b = await freePort();
      const relay = spawnRelay(['-fflags', 'nobuffer', '-listen', '1', '-f', 'flv', '-i', `rtmp://127.0.0.1:${a}/live/${STREAM}`, '-c', 'copy', '-f', 'mpegts', '-flush_packets', '1', `srt://127.0.0.1:${b}?mode=listener&${srtOpts('')}`]);
      await sleep(300);
      return { relayPlay: `srt://127.0.0.1:${b}?mode=caller&${sltOpts}`, publisher: new RtmpPublisher(`rtmp://127.0.0.1:${a}/live/${STREAM}`), stop: () => stopChild(relay) };
    },
  },
  'haze-srt': {
    label: 'SRT publish (TsMuxer -> srt-live-transmit caller) into Haze',
    async start() {
      const haze = await startHaze();
      const url = `srt://127.0.0.1:${haze.ports!.srt}?mode=caller&streamid=#!::r=${STREAM},m=publish&${sltOpts}`;
      return { haze, publisher: sltPublisher(url), stop: () => haze.stop() };
    },
  },
  'slt-srt': {
    label: 'SRT publish (TsMuxer -> srt-live-transmit caller) into a srt-live-transmit relay (listener in, listener out: no demuxing)',
    async start() {
      const a = await freePort();
      const b = await freePort();
      const relay = spawnRelay([`srt://127.0.0.1:${a}?mode=listener&${sltOpts}`, `srt://127.0.0.1:${b}?mode=listener&${sltOpts}`], 'srt-live-transmit');
      await sleep(300);
      return { relayPlay: `srt://127.0.0.1:${b}?mode=caller&${sltOpts}`, publisher: sltPublisher(`srt://127.0.0.1:${a}?mode=caller&${sltOpts}`), stop: () => stopChild(relay) };
    },
  },
  'ffmpeg-srt': {
    label: 'SRT publish (TsMuxer -> srt-live-transmit caller) into an ffmpeg relay (SRT listener in, TS demuxed, -c copy, SRT listener out)',
    async start() {
      const a = await freePort();
      const b = await freePort();
      // probing only delays the start: the relay reads on as fast as SRT delivers
      const relay = spawnRelay(['-fflags', 'nobuffer', '-i', `srt://127.0.0.1:${a}?mode=listener&${srtOpts('')}`, '-c', 'copy', '-f', 'mpegts', '-flush_packets', '1', `srt://127.0.0.1:${b}?mode=listener&${srtOpts('')}`]);
      await sleep(300);
      return {
        relayPlay: `srt://127.0.0.1:${b}?mode=caller&${sltOpts}`,
        publisher: sltPublisher(`srt://127.0.0.1:${a}?mode=caller&${sltOpts}`),
        stop: () => stopChild(relay),
      };
    },
  },
  'haze-rtsp': {
    label: 'RTSP publish (ffmpeg from a pipe, ANNOUNCE/RECORD over TCP) into Haze',
    async start() {
      const haze = await startHaze();
      return { haze, publisher: new FfmpegPipePublisher('ffmpeg -f rtsp', ['-f', 'rtsp', '-rtsp_transport', 'tcp', `rtsp://127.0.0.1:${haze.ports!.rtsp}/${STREAM}`]), stop: () => haze.stop() };
    },
  },
  'ffmpeg-rtsp': {
    // ffmpeg serves RTSP only as a listener for one publisher (it cannot serve players), so the
    // peer figure is ingest only: RTSP RECORD into ffmpeg, written on as TS to the reader's pipe.
    label: 'RTSP publish (ffmpeg from a pipe, TCP) into ffmpeg -rtsp_flags listen, TS to a pipe (no RTSP play leg)',
    readerFirst: true,
    async start() {
      const a = await freePort();
      return { relayIn: a, publisher: new FfmpegPipePublisher('ffmpeg -f rtsp', ['-f', 'rtsp', '-rtsp_transport', 'tcp', `rtsp://127.0.0.1:${a}/${STREAM}`]), stop: async () => undefined };
    },
  },
};

// ---- what is measured: one row each ------------------------------------------------------------

interface Entry {
  id: string;
  proto: string;
  server: 'Haze' | 'nginx-rtmp' | 'ffmpeg relay' | 'srt-live-transmit relay';
  site: SiteId;
  /** Why it cannot run here, or undefined when it can. */
  unavailable?(): string | undefined;
  reader(s: Site): G2gReader;
  /** p95 goal in ms, with its wording. */
  goal?: { ms: number; text: string };
  note?: string;
}

const httpBase = (s: Site): string => `http://127.0.0.1:${(s.haze ?? s.nginx)!.hls['hls-ts']!.port}`;
const srtGoal = { ms: SRT_LATENCY_MS + 50, text: `< SRT latency ${SRT_LATENCY_MS} ms + 50 ms` };
const srt2Goal = { ms: 2 * SRT_LATENCY_MS + 50, text: `< 2 x SRT latency ${SRT_LATENCY_MS} ms + 50 ms` };
const webrtcGoal = { ms: 200, text: '< 200 ms' };

const ENTRIES: Entry[] = [
  { id: 'rtmp', proto: 'RTMP', server: 'Haze', site: 'haze-rtmp', reader: (s) => new RtmpReader(`rtmp://127.0.0.1:${s.haze!.publish.port}/live/${STREAM}`) },
  { id: 'rtmp', proto: 'RTMP', server: 'nginx-rtmp', site: 'nginx-rtmp', reader: (s) => new RtmpReader(`rtmp://127.0.0.1:${s.nginx!.publish.port}/live/${STREAM}`) },
  { id: 'http-flv', proto: 'HTTP-FLV', server: 'Haze', site: 'haze-rtmp', reader: (s) => new HttpFlvReader(`${httpBase(s)}/${STREAM}.flv`), note: 'nginx-rtmp has no HTTP-FLV' },
  { id: 'ts', proto: 'MPEG-TS over HTTP', server: 'Haze', site: 'haze-rtmp', reader: (s) => new HttpTsReader(`${httpBase(s)}/${STREAM}.ts`) },
  { id: 'hls', proto: 'HLS (TS segments)', server: 'Haze', site: 'haze-rtmp', reader: (s) => new HlsReader(`${httpBase(s)}/hls/${STREAM}/index.m3u8`) },
  { id: 'hls', proto: 'HLS (TS segments)', server: 'nginx-rtmp', site: 'nginx-rtmp', reader: (s) => new HlsReader(`${httpBase(s)}/hls/${STREAM}.m3u8`) },
  { id: 'll-hls', proto: 'LL-HLS (CMAF parts)', server: 'Haze', site: 'haze-rtmp', reader: (s) => new LlHlsReader(`${httpBase(s)}/cmaf/${STREAM}/index.m3u8`), note: 'nginx-rtmp has no LL-HLS' },
  {
    id: 'webrtc', proto: 'WebRTC (WHEP), RTMP in', server: 'Haze', site: 'haze-rtmp', goal: webrtcGoal,
    unavailable: () => (built('protocols/webrtc') ? undefined : 'src/protocols/webrtc not built yet'),
    reader: (s) => new WhepChromiumReader(`${httpBase(s)}/whep/${STREAM}`),
  },
  {
    id: 'whip-whep', proto: 'WebRTC (WHEP), WHIP in', server: 'Haze', site: 'haze-whip', goal: webrtcGoal,
    unavailable: () => (built('protocols/webrtc/whip-session.js') ? undefined : 'WHIP not built yet'),
    reader: (s) => new WhepChromiumReader(`${httpBase(s)}/whep/${STREAM}`),
  },
  {
    id: 'srt', proto: 'SRT out, RTMP in (one SRT leg)', server: 'Haze', site: 'haze-rtmp', goal: srtGoal,
    unavailable: () => (built('protocols/srt') ? undefined : 'src/protocols/srt not built yet'),
    reader: (s) => sltReader(`srt://127.0.0.1:${s.haze!.ports!.srt}?mode=caller&streamid=${STREAM}&${sltOpts}`),
  },
  { id: 'srt', proto: 'SRT out, RTMP in (one SRT leg)', server: 'ffmpeg relay', site: 'ffmpeg-rtmp-srt', goal: srtGoal, reader: (s) => sltReader(s.relayPlay!) },
  {
    id: 'srt-srt', proto: 'SRT in, SRT out (two SRT legs)', server: 'Haze', site: 'haze-srt', goal: srt2Goal,
    unavailable: () => (built('protocols/srt') ? undefined : 'src/protocols/srt not built yet'),
    reader: (s) => sltReader(`srt://127.0.0.1:${s.haze!.ports!.srt}?mode=caller&streamid=${STREAM}&${sltOpts}`),
  },
  { id: 'srt-srt', proto: 'SRT in, SRT out (two SRT legs)', server: 'ffmpeg relay', site: 'ffmpeg-srt', goal: srt2Goal, reader: (s) => sltReader(s.relayPlay!) },
  {
    id: 'srt-srt', proto: 'SRT in, SRT out (two SRT legs)', server: 'srt-live-transmit relay', site: 'slt-srt', goal: srt2Goal, reader: (s) => sltReader(s.relayPlay!),
    note: 'a relay of SRT packets that never demuxes: the floor for two SRT legs',
  },
  {
    id: 'rtsp-out', proto: 'RTSP out (TCP), RTMP in', server: 'Haze', site: 'haze-rtmp',
    unavailable: () => (built('protocols/rtsp/server-session.js') ? undefined : 'Haze RTSP server not built yet'),
    reader: (s) => new FfmpegTsReader('ffmpeg RTSP client (TCP) -> TS pipe', ['-rtsp_transport', 'tcp', '-i', `rtsp://127.0.0.1:${s.haze!.ports!.rtsp}/${STREAM}`]),
  },
  {
    id: 'rtsp', proto: 'RTSP in, RTSP out (TCP)', server: 'Haze', site: 'haze-rtsp',
    unavailable: () => (built('protocols/rtsp/server-session.js') ? undefined : 'Haze RTSP server not built yet'),
    reader: (s) => new FfmpegTsReader('ffmpeg RTSP client (TCP) -> TS pipe', ['-rtsp_transport', 'tcp', '-i', `rtsp://127.0.0.1:${s.haze!.ports!.rtsp}/${STREAM}`]),
  },
  {
    id: 'rtsp', proto: 'RTSP in, RTSP out (TCP)', server: 'ffmpeg relay', site: 'ffmpeg-rtsp',
    reader: (s) => new FfmpegTsReader('ffmpeg -rtsp_flags listen -> TS pipe', ['-rtsp_flags', 'listen', '-timeout', '20', '-i', `rtsp://127.0.0.1:${s.relayIn!}/${STREAM}`]),
    note: 'peer is ingest only (ffmpeg cannot serve RTSP players): a lower bound',
  },
];

// ---- measuring ----------------------------------------------------------------------------

interface Row {
  entry: Entry;
  series: string;
  status: string;
  samples: number[];
  expected: number;
  reader: string;
}

async function measure(entry: Entry, site: Site, readerFirst: boolean, startPublishing: () => Promise<void>): Promise<Row[]> {
  let publisherError: string | undefined;
  const reader = entry.reader(site);
  const bySeries = new Map<string, number[]>();
  let windowStartUs = Infinity;
  let windowEndUs = Infinity;
  const sink = (sentUs: number, arrivalUs: number, series = ''): void => {
    if (sentUs < windowStartUs || sentUs >= windowEndUs) return;
    let list = bySeries.get(series);
    if (!list) bySeries.set(series, (list = []));
    list.push((arrivalUs - sentUs) / 1000);
  };
  const nowUs = (): number => (performance.timeOrigin + performance.now()) * 1000;
  try {
    if (readerFirst) {
      await reader.start(sink);
      await sleep(500);
      await startPublishing();
    } else {
      await startPublishing();
      await reader.start(sink);
    }
    await sleep(WARMUP * 1000);
    windowStartUs = nowUs();
    windowEndUs = windowStartUs + SECONDS * 1e6;
    // frames sent in the window may arrive up to a few seconds later (HLS segments)
    await sleep(SECONDS * 1000 + (entry.id === 'hls' ? 4500 : entry.id === 'll-hls' ? 1500 : 1000));
  } catch (e) {
    await reader.stop().catch(() => undefined);
    return [{ entry, series: '', status: `failed: ${(e as Error).message}`, samples: [], expected: 0, reader: reader.label }];
  }
  // before the reader stops: a relay may end its input when its player goes
  publisherError = site.publisher.error;
  await reader.stop().catch(() => undefined);
  const expected = Math.round(SECONDS * LATENCY_CLIP.fps);
  if (bySeries.size === 0) return [{ entry, series: '', status: `no stamped frames${reader.error ? `: ${reader.error}` : ''}`, samples: [], expected, reader: reader.label }];
  const status = `ok${reader.error ? ` (reader: ${reader.error})` : ''}${publisherError ? ` (publisher: ${publisherError})` : ''}`;
  return [...bySeries].map(([series, samples]) => ({ entry, series, status, samples, expected, reader: reader.label }));
}

async function runSite(siteId: SiteId, entries: Entry[], clip: Clip): Promise<Row[]> {
  const def = SITES[siteId];
  process.stderr.write(`bench: ${def.label}\n`);
  const rows: Row[] = [];
  for (const entry of entries) {
    // A fresh site per entry: readers never share a server, and the publisher starts anew.
    const site = await def.start();
    let pacer: Pacer | undefined;
    const startPublishing = async (): Promise<void> => {
      let attempt = 0;
      for (;;) {
        try {
          await site.publisher.start(clip);
          break;
        } catch (e) {
          // a relay (ffmpeg -listen) may take a moment to listen on a loaded machine
          if (++attempt >= 10) throw e;
          await sleep(500);
        }
      }
      pacer = new Pacer(clip, (f) => site.publisher.send(f));
      pacer.start();
      // let the server set the stream up before the reader asks for it
      await sleep(1500);
      if (site.publisher.error) throw new Error(site.publisher.error);
    };
    try {
      process.stderr.write(`  ${entry.proto} / ${entry.server} ...\n`);
      const got = await measure(entry, site, def.readerFirst === true, startPublishing);
      for (const r of got) process.stderr.write(`    ${r.series || '-'}: ${r.status}, ${r.samples.length} frames, p50 ${fmt(percentile(r.samples, 50), 1)} ms, p95 ${fmt(percentile(r.samples, 95), 1)} ms\n`);
      rows.push(...got);
    } finally {
      pacer?.stop();
      await site.publisher.stop().catch(() => undefined);
      await site.stop().catch(() => undefined);
    }
  }
  return rows;
}

function ratioText(row: Row, rows: Row[]): string {
  if (row.entry.server !== 'Haze' || row.samples.length === 0) return '';
  const peer = rows.find((r) => r.entry.id === row.entry.id && r.series === row.series && r.entry.server !== 'Haze' && r.samples.length > 0);
  if (!peer) return '';
  const a = percentile(row.samples, 50) / percentile(peer.samples, 50);
  const b = percentile(row.samples, 95) / percentile(peer.samples, 95);
  return `x${fmt(a, 2)} / x${fmt(b, 2)} vs ${peer.entry.server}`;
}

function goalText(row: Row): string {
  const g = row.entry.goal;
  if (!g || row.samples.length === 0) return g ? g.text : '';
  const p95 = percentile(row.samples, 95);
  return `${g.text}: p95/goal ${fmt(p95 / g.ms, 2)} ${p95 < g.ms ? 'met' : 'NOT met'}`;
}

async function main(): Promise<void> {
  mkdirSync(logDir, { recursive: true });
  const report = process.env['BENCH_REPORT'] ?? join(benchRoot, 'results', 'glass-latency.md');
  const clip = loadClip(ensureClip(LATENCY_CLIP), LATENCY_CLIP.fps);
  const load = (await import('node:os')).loadavg();
  const chosen = ENTRIES.filter((e) => !ONLY || ONLY.includes(e.id));
  const rows: Row[] = [];
  const siteOrder: SiteId[] = [];
  for (const e of chosen) if (!siteOrder.includes(e.site)) siteOrder.push(e.site);
  for (const siteId of siteOrder) {
    const runnable: Entry[] = [];
    for (const e of chosen.filter((x) => x.site === siteId)) {
      const why = e.unavailable?.();
      if (why) {
        process.stderr.write(`bench: ${e.proto} / ${e.server}: not available (${why})\n`);
        rows.push({ entry: e, series: '', status: `not available (${why})`, samples: [], expected: 0, reader: '' });
      } else runnable.push(e);
    }
    if (runnable.length > 0) rows.push(...(await runSite(siteId, runnable, clip)));
  }
  const m = machineInfo();
  const lines = [
    '# Glass-to-glass latency per protocol',
    '',
    `Date: ${new Date().toISOString()}  `,
    `Machine: ${m.nproc} CPUs, ${m.model}, ${m.kernel}; load average at start ${load.map((v) => v.toFixed(2)).join(' ')} (publisher, server and reader share it).  `,
    `Source: testsrc2 ${LATENCY_CLIP.size} ${LATENCY_CLIP.fps} fps H.264 constrained baseline, ~${LATENCY_CLIP.kbps} kbit/s, keyframe every second, no B-frames, no audio; sent in real time, each access unit stamped with its send time (SEI user_data_unregistered, µs). Haze with one worker. Warm-up ${WARMUP} s, then the frames sent during ${SECONDS} s.  `,
    '`npm run bench -- glass` (bench/glass-latency.ts).',
    '',
    '| protocol | server | way in | reader | series | frames | p50 ms | p95 ms | max ms | Haze/peer p50 / p95 | goal | status |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => {
      const s = r.samples;
      return `| ${r.entry.proto} | ${r.entry.server} | ${SITES[r.entry.site].label} | ${r.reader} | ${r.series || '-'} | ${s.length}${r.expected ? `/${r.expected}` : ''} | ${fmt(percentile(s, 50), 1)} | ${fmt(percentile(s, 95), 1)} | ${fmt(s.length ? Math.max(...s) : NaN, 1)} | ${ratioText(r, rows)} | ${goalText(r)} | ${r.status}${r.entry.note ? `; ${r.entry.note}` : ''} |`;
    }),
    '',
    '- latency: the reader\'s arrival time of a frame minus the send time stamped in it, for every frame sent in the window. Arrival is when the frame\'s bytes are in the reader (the earliest a player could decode it); no decoder or display except WebRTC\'s "displayed" series (Chromium\'s requestVideoFrameCallback expectedDisplayTime).',
    '- HLS: every frame of a segment arrives when the segment\'s fetch completes, so p50 is about half a segment plus the playlist reload wait; a player that plays without stalling runs at least the max behind (plus its own hold-back, see latency.md for hls.js in Chromium). LL-HLS: per part, fetched through the preload hint.',
    '- MPEG-TS readers (/NAME.ts, and ffmpeg\'s output for SRT and RTSP): a frame arrives when the first TS packet of its PES does (servers write a PES whole). ffmpeg as SRT/RTSP reader adds its own demuxing: an unbounded video PES ends only when the next one starts (one frame, 40 ms), in Haze\'s row and in the relay\'s alike.',
    '- Ratios compare Haze with a peer on the same protocol in the same run: nginx-rtmp (RTMP, HLS), a plain ffmpeg `-c copy` relay (SRT; RTSP ingest only).',
    '',
  ];
  mkdirSync(join(benchRoot, 'results'), { recursive: true });
  writeFileSync(report, lines.join('\n'));
  process.stderr.write(`report: ${report}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
