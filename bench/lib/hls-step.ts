// One measured HLS step: a fresh server, the real-time publisher, N simulated HLS or LL-HLS
// players in two load-generator children (hls-loadgen.ts), a measurement window, everything
// stopped. Returns the figures of one row of bench/results/hls.md.

import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import type { HlsGenReport, HlsLoadEvent, HlsLoadRequest } from './ipc.js';
import { parsePlaylist, resolvePath } from './hls-playlist.js';
import type { Playlist } from './hls-playlist.js';
import { sampleTree, TreeCpuMeter } from './proc.js';
import { startServer } from './servers.js';
import type { Endpoint, HlsProto, RunningServer, ServerName } from './servers.js';
import { percentile } from './stats.js';
import { LoadGenHandle, PublisherHandle, sleep } from './step.js';

export interface HlsStepOptions {
  server: ServerName;
  proto: HlsProto;
  viewers: number;
  windowSec: number;
  sourceFile: string;
  logDir: string;
  hazeWorkers: number | undefined;
  /** Seconds between the last viewer opening and the window start. */
  settleSec: number;
  /** Load-generator children the viewers are spread over. */
  generators: number;
}

export interface HlsStepResult {
  server: ServerName;
  proto: HlsProto;
  viewers: number;
  /** 'ok', 'n/a' (no such output) or an error text. */
  status: string;
  /** Viewers with a segment/part in the window, and those whose every fetch was within `keepUpLimitMs` of publishing. */
  withMedia: number;
  keepingUp: number;
  keepUpLimitMs: number;
  requestsPerSec: number;
  bytesPerSec: number;
  cpuPct: number;
  cpuMsPerViewerSec: number;
  rss0Kb: number;
  rssNKb: number;
  rssKbPerViewer: number;
  errorsInWindow: number;
  /** Failed requests over the whole step, by kind. */
  errors: Record<string, number>;
  /** Fetch completion - publish time of the segment's/part's last frame, over the window's fetches. */
  ageP50Ms: number;
  ageP99Ms: number;
  ageMaxMs: number;
  mediaFetches: number;
  /** Window fetches whose last frame could not be matched to a publisher send time. */
  unmatched: number;
  /** LL-HLS: fetch completion - first time any viewer knew the part complete. */
  announceP50Ms: number;
  announceP99Ms: number;
  startupP50Ms: number;
  startupP95Ms: number;
  expectedKbps: number;
  medianKbps: number;
  genCpuPct: number;
  windowSec: number;
  connectionsOpened: number;
  peakSockets: number;
  targetDurationMs: number;
  partTargetMs: number;
  /** 1-minute load average at the window's end: the machine's load, other work included. */
  loadAvg1: number;
}

export function emptyHlsResult(server: ServerName, proto: HlsProto, viewers: number, status: string): HlsStepResult {
  return {
    server, proto, viewers, status, withMedia: 0, keepingUp: 0, keepUpLimitMs: NaN, requestsPerSec: NaN, bytesPerSec: NaN, cpuPct: NaN, cpuMsPerViewerSec: NaN,
    rss0Kb: NaN, rssNKb: NaN, rssKbPerViewer: NaN, errorsInWindow: 0, errors: {}, ageP50Ms: NaN, ageP99Ms: NaN, ageMaxMs: NaN, mediaFetches: 0, unmatched: 0,
    announceP50Ms: NaN, announceP99Ms: NaN, startupP50Ms: NaN, startupP95Ms: NaN, expectedKbps: NaN, medianKbps: NaN, genCpuPct: NaN, windowSec: 0,
    connectionsOpened: 0, peakSockets: 0, targetDurationMs: 0, partTargetMs: 0, loadAvg1: NaN,
  };
}

function fetchText(ep: Endpoint, path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = get({ host: ep.host, port: ep.port, path, agent: false }, (res) => {
      const pieces: Buffer[] = [];
      res.on('data', (c: Buffer) => pieces.push(c));
      res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(pieces).toString('utf8') : undefined));
      res.on('error', () => resolve(undefined));
    });
    req.setTimeout(10000, () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

/**
 * Waits until the media playlist lists at least `minSegments` segments, so every player can start
 * three segments from the live edge. Also makes Haze build its segmenter before the 0-viewer
 * memory sample, so the per-viewer memory does not include it.
 */
async function waitForPlaylist(ep: Endpoint, minSegments: number, timeoutMs: number): Promise<Playlist> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const entry = await fetchText(ep, ep.path);
    try {
      let pl = entry !== undefined ? parsePlaylist(entry) : undefined;
      if (pl && pl.variants.length > 0) {
        const media = await fetchText(ep, resolvePath(ep.path, pl.variants[0]!));
        pl = media !== undefined ? parsePlaylist(media) : undefined;
      }
      if (pl && pl.segments.length >= minSegments) return pl;
      last = pl ? `${pl.segments.length} segments` : 'no playlist';
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(500);
  }
  throw new Error(`playlist ${ep.path} not ready within ${timeoutMs} ms (${last})`);
}

type HlsGen = LoadGenHandle<HlsLoadRequest, HlsLoadEvent>;

export async function runHlsStep(o: HlsStepOptions): Promise<HlsStepResult> {
  let server: RunningServer | undefined;
  let pub: PublisherHandle | undefined;
  const gens: HlsGen[] = [];
  try {
    server = await startServer(o.server, { logDir: o.logDir, hazeWorkers: o.hazeWorkers, nginxHls: true });
    const endpoint = server.hls[o.proto];
    if (!endpoint) return emptyHlsResult(o.server, o.proto, o.viewers, 'n/a');
    pub = new PublisherHandle();
    await pub.start({ type: 'start', endpoint: server.publish, sourceFile: o.sourceFile });
    const first = await waitForPlaylist(endpoint, 3, 20000);
    const targetDurationMs = first.targetDurationMs;
    const partTargetMs = first.partTargetMs;
    // Behind: a segment fetched more than three target durations after its last frame was
    // published (hls.js' live sync distance); for LL-HLS more than PART-HOLD-BACK (3 parts).
    const keepUpLimitMs = o.proto === 'll-hls' ? 3 * (partTargetMs || 500) : 3 * (targetDurationMs || 2000);
    await sleep(500);
    const rss0 = sampleTree(server.pid).rssKb;

    const staggerMs = Math.min(5000, Math.max(2000, o.viewers * 2.5));
    for (let g = 0; g < o.generators; g++) gens.push(new LoadGenHandle<HlsLoadRequest, HlsLoadEvent>('hls-loadgen.js'));
    gens.forEach((gen, g) => {
      const count = Math.floor(o.viewers / o.generators) + (g < o.viewers % o.generators ? 1 : 0);
      // Two requests in flight per player (a playlist and a segment/part, three while the init
      // segment loads): a pool of twice that never makes a request wait for a socket, which
      // would measure the pool instead of the server. Sockets open only when needed.
      gen.send({ type: 'open', proto: o.proto, endpoint, count, staggerMs, maxSockets: 4 * count + 16 });
    });
    await Promise.all(gens.map((g) => g.waitFor((e) => (e.type === 'opened' ? e.wallMs : undefined), staggerMs + 30000, 'load generator open')));
    await sleep(o.settleSec * 1000);

    const meter = new TreeCpuMeter(server.pid);
    meter.begin();
    for (const g of gens) g.send({ type: 'mark', phase: 'start' });
    const starts = await Promise.all(gens.map((g) => g.waitFor((e) => (e.type === 'marked' && e.phase === 'start' ? e.wallMs : undefined), 10000, 'mark start')));
    await sleep(o.windowSec * 1000);
    const cpu = meter.end();
    const loadAvg1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    for (const g of gens) g.send({ type: 'mark', phase: 'end' });
    const ends = await Promise.all(gens.map((g) => g.waitFor((e) => (e.type === 'marked' && e.phase === 'end' ? e.wallMs : undefined), 10000, 'mark end')));
    const rssN = sampleTree(server.pid).rssKb;
    const crashed = server.exited();
    for (const g of gens) g.send({ type: 'report' });
    const reports = await Promise.all(gens.map((g) => g.waitFor((e) => (e.type === 'report' ? e : undefined), 30000, 'report')));
    // The publisher reports send times every 250 ms: let the last ones arrive.
    await sleep(300);

    const t0 = starts.reduce((a, b) => a + b, 0) / starts.length;
    const t1 = ends.reduce((a, b) => a + b, 0) / ends.length;
    const windowSec = (t1 - t0) / 1000;
    const expected = pub.bytesBetween(t0, t1);
    const figures = analyse(reports, pub, o.proto, keepUpLimitMs);
    const startups = reports.flatMap((r) => r.viewers.map((v) => (v.startupMs >= 0 ? v.startupMs : Infinity)));
    const rates = reports.flatMap((r) => r.viewers.map((v) => (v.windowBytes * 8) / 1000 / windowSec));
    const errors: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    const genCpu = reports.reduce((a, r) => a + r.cpuSec, 0);
    return {
      server: o.server,
      proto: o.proto,
      viewers: o.viewers,
      status: crashed ? 'server exited' : pub.lastError !== undefined ? `publisher: ${pub.lastError}` : 'ok',
      ...figures,
      keepUpLimitMs,
      requestsPerSec: reports.reduce((a, r) => a + r.requests, 0) / windowSec,
      bytesPerSec: reports.reduce((a, r) => a + r.bytes, 0) / windowSec,
      cpuPct: (cpu.cpuSec / cpu.wallSec) * 100,
      cpuMsPerViewerSec: (cpu.cpuSec / cpu.wallSec / o.viewers) * 1000,
      rss0Kb: rss0,
      rssNKb: rssN,
      rssKbPerViewer: (rssN - rss0) / o.viewers,
      errorsInWindow: reports.reduce((a, r) => a + r.errorsInWindow, 0),
      errors,
      startupP50Ms: percentile(startups, 50),
      startupP95Ms: percentile(startups, 95),
      expectedKbps: (expected * 8) / 1000 / windowSec,
      medianKbps: percentile(rates, 50),
      genCpuPct: (genCpu / windowSec) * 100,
      windowSec,
      connectionsOpened: reports.reduce((a, r) => a + r.connectionsOpened, 0),
      peakSockets: reports.reduce((a, r) => a + r.peakSockets, 0),
      targetDurationMs,
      partTargetMs,
      loadAvg1,
    };
  } catch (e) {
    return emptyHlsResult(o.server, o.proto, o.viewers, (e as Error).message.split('\n')[0]!.slice(0, 120));
  } finally {
    await Promise.all(gens.map((g) => g.stop()));
    await pub?.stop();
    await server?.stop();
  }
}

type Figures = Pick<HlsStepResult, 'withMedia' | 'keepingUp' | 'ageP50Ms' | 'ageP99Ms' | 'ageMaxMs' | 'mediaFetches' | 'unmatched' | 'announceP50Ms' | 'announceP99Ms'>;

/**
 * Ages and announce-to-fetch times from the generators' fetch logs. A segment's stamp and a
 * part's announce time are merged over the generators first (by URI): the stamp is the same
 * whichever process read it, and a part is announced when the first viewer anywhere knew it.
 */
function analyse(reports: readonly HlsGenReport[], pub: PublisherHandle, proto: HlsProto, keepUpLimitMs: number): Figures {
  const stampByKey = new Map<string, number>();
  const announceByKey = new Map<string, number>();
  for (const r of reports) {
    r.keys.forEach((key, i) => {
      const s = r.stamps[i];
      if (s !== null && s !== undefined && s >= 0) stampByKey.set(key, s);
      const a = r.announce[i];
      if (a !== null && a !== undefined) announceByKey.set(key, Math.min(a, announceByKey.get(key) ?? Infinity));
    });
  }
  const ages: number[] = [];
  const announce: number[] = [];
  let unmatched = 0;
  let mediaFetches = 0;
  let withMedia = 0;
  let keepingUp = 0;
  for (const r of reports) {
    const maxAge = new Float64Array(r.viewers.length).fill(-Infinity);
    const count = new Uint32Array(r.viewers.length);
    for (let i = 0; i + 2 < r.fetches.length; i += 3) {
      const vid = r.fetches[i]!;
      const key = r.keys[r.fetches[i + 1]!]!;
      const doneMs = r.fetches[i + 2]!;
      mediaFetches++;
      count[vid]!++;
      const stamp = stampByKey.get(key);
      const sentMs = stamp !== undefined ? pub.sendWall.get(stamp) : undefined;
      if (sentMs !== undefined) {
        const age = doneMs - sentMs;
        ages.push(age);
        if (age > maxAge[vid]!) maxAge[vid] = age;
      } else {
        unmatched++;
        maxAge[vid] = Infinity; // cannot show it kept up
      }
      if (proto === 'll-hls') {
        const a = announceByKey.get(key);
        if (a !== undefined) announce.push(doneMs - a);
      }
    }
    for (let v = 0; v < r.viewers.length; v++) {
      if (count[v]! === 0) continue;
      withMedia++;
      if (maxAge[v]! <= keepUpLimitMs) keepingUp++;
    }
  }
  return {
    withMedia,
    keepingUp,
    ageP50Ms: percentile(ages, 50),
    ageP99Ms: percentile(ages, 99),
    ageMaxMs: ages.length > 0 ? ages.reduce((a, b) => Math.max(a, b), -Infinity) : NaN,
    mediaFetches,
    unmatched,
    announceP50Ms: percentile(announce, 50),
    announceP99Ms: percentile(announce, 99),
  };
}
