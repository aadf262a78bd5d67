// One measured step: a fresh server, a publisher, N viewers of one protocol, a measurement
// window, then everything stopped. Returns the figures of one report row.

import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { LoadEvent, LoadRequest, PublisherEvent, PublisherRequest, ViewerResult } from './ipc.js';
import { sampleTree, TreeCpuMeter } from './proc.js';
import { serves, startServer } from './servers.js';
import type { Proto, RunningServer, ServerName } from './servers.js';
import { benchDist } from './paths.js';
import { percentile } from './stats.js';
import { quantileMs } from '../../src/util/histogram.js';

export interface StepOptions {
  server: ServerName;
  proto: Proto;
  viewers: number;
  windowSec: number;
  sampled: number;
  sourceFile: string;
  logDir: string;
  hazeWorkers: number | undefined;
  /** Seconds of publishing before the 0-viewer memory sample. */
  warmupSec: number;
  /** Seconds between the last viewer opening and the window start. */
  settleSec: number;
}

export interface StepResult {
  server: ServerName;
  proto: Proto;
  viewers: number;
  /** 'ok', 'n/a' (server has no such output) or an error text. */
  status: string;
  connected: number;
  withVideo: number;
  realTime: number;
  cpuPct: number;
  /** CPU ms per second of viewing per viewer (= % of a core / N * 10). */
  cpuMsPerViewerSec: number;
  rss0Kb: number;
  rssNKb: number;
  rssKbPerViewer: number;
  /** Haze's own added latency over the window (packet at the hub to each viewer's write), ms. */
  inServerP50Ms: number;
  inServerP99Ms: number;
  latP50Ms: number;
  latP99Ms: number;
  latFrames: number;
  stampedShare: number;
  ttffP50Ms: number;
  ttffP95Ms: number;
  genCpuPct: number;
  windowSec: number;
  expectedKbps: number;
  medianKbps: number;
  errors: Record<string, number>;
}

export const now = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function emptyResult(server: ServerName, proto: Proto, viewers: number, status: string): StepResult {
  return {
    server, proto, viewers, status, connected: 0, withVideo: 0, realTime: 0, cpuPct: NaN, cpuMsPerViewerSec: NaN, rss0Kb: NaN, rssNKb: NaN,
    rssKbPerViewer: NaN, inServerP50Ms: NaN, inServerP99Ms: NaN, latP50Ms: NaN, latP99Ms: NaN, latFrames: 0, stampedShare: NaN, ttffP50Ms: NaN, ttffP95Ms: NaN, genCpuPct: NaN,
    windowSec: 0, expectedKbps: NaN, medianKbps: NaN, errors: {},
  };
}

/** Waits for the first message of a child matching `pick`, or fails after `timeoutMs`. */
export function waitFor<E extends { type: string }, R>(child: ChildProcess, pick: (e: E) => R | undefined, timeoutMs: number, what: string): Promise<R> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: E): void => {
      if (m.type === 'error') {
        cleanup();
        reject(new Error(`${what}: ${(m as unknown as { message: string }).message}`));
        return;
      }
      const r = pick(m);
      if (r !== undefined) {
        cleanup();
        resolve(r);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`${what}: child exited (${code})`));
    };
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
}

/** The publisher child: pushes the source over RTMP in real time and reports per-frame send times. */
export class PublisherHandle {
  readonly child: ChildProcess;
  /** Stamp timestamp -> send wall ms. */
  readonly sendWall = new Map<number, number>();
  /** Parallel arrays: send wall ms and cumulative media bytes after that frame. */
  readonly wall: number[] = [];
  readonly cumBytes: number[] = [];
  lastError: string | undefined;

  constructor() {
    this.child = fork(join(benchDist, 'lib', 'publisher.js'), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child.stderr?.on('data', (d: Buffer) => process.stderr.write(`[publisher] ${d.toString()}`));
    this.child.on('message', (m: PublisherEvent) => {
      if (m.type === 'frames') {
        for (let i = 0; i + 2 < m.recs.length; i += 3) {
          this.sendWall.set(m.recs[i]!, m.recs[i + 1]!);
          this.wall.push(m.recs[i + 1]!);
          this.cumBytes.push(m.recs[i + 2]!);
        }
      } else if (m.type === 'error') this.lastError = m.message;
    });
  }

  async start(req: PublisherRequest): Promise<void> {
    this.child.send(req);
    await waitFor<PublisherEvent, number>(this.child, (e) => (e.type === 'publishing' ? e.wallMs : undefined), 15000, 'publisher');
  }

  /** Media bytes the publisher sent between two wall times. */
  bytesBetween(t0: number, t1: number): number {
    const at = (t: number): number => {
      // Last record at or before t (binary search).
      let lo = 0;
      let hi = this.wall.length - 1;
      let best = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (this.wall[mid]! <= t) {
          best = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return best < 0 ? 0 : this.cumBytes[best]!;
    };
    return at(t1) - at(t0);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      this.child.send({ type: 'stop' } satisfies PublisherRequest);
    } catch {
      this.child.kill('SIGKILL');
    }
    const t = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

/** A load generator child process (lib/loadgen.js, or another script speaking the same stop message). */
export class LoadGenHandle<Req extends { type: string } = LoadRequest, Ev extends { type: string } = LoadEvent> {
  readonly child: ChildProcess;

  constructor(script = 'loadgen.js') {
    this.child = fork(join(benchDist, 'lib', script), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  }

  send(req: Req): void {
    this.child.send(req);
  }

  waitFor<R>(pick: (e: Ev) => R | undefined, timeoutMs: number, what: string): Promise<R> {
    return waitFor<Ev, R>(this.child, pick, timeoutMs, what);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    try {
      this.child.send({ type: 'stop' });
    } catch {
      this.child.kill('SIGKILL');
    }
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

function countErrors(viewers: readonly ViewerResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of viewers) {
    if (v.error === undefined) continue;
    const key = v.error.replace(/\d+\.\d+\.\d+\.\d+:\d+/g, 'ADDR').slice(0, 80);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

export async function runStep(o: StepOptions): Promise<StepResult> {
  let server: RunningServer | undefined;
  let pub: PublisherHandle | undefined;
  const gens: LoadGenHandle[] = [];
  if (!serves(o.server, o.proto)) return emptyResult(o.server, o.proto, o.viewers, 'n/a');
  try {
    server = await startServer(o.server, { logDir: o.logDir, hazeWorkers: o.hazeWorkers });
    const endpoint = server.play[o.proto];
    if (!endpoint) return emptyResult(o.server, o.proto, o.viewers, 'n/a');
    pub = new PublisherHandle();
    await pub.start({ type: 'start', endpoint: server.publish, sourceFile: o.sourceFile });
    await sleep(o.warmupSec * 1000);
    const rss0 = sampleTree(server.pid).rssKb;

    // One generator per 1000 viewers, at most two (the machine has two cores and the server
    // needs one).
    const genCount = o.viewers > 300 ? 2 : 1;
    // Openings spread over a couple of seconds (2.5 ms apart, 2 to 5 s in all).
    const staggerMs = Math.min(5000, Math.max(2000, o.viewers * 2.5));
    for (let g = 0; g < genCount; g++) gens.push(new LoadGenHandle());
    gens.forEach((gen, g) => {
      const count = Math.floor(o.viewers / genCount) + (g < o.viewers % genCount ? 1 : 0);
      const sampled = Math.floor(o.sampled / genCount) + (g < o.sampled % genCount ? 1 : 0);
      gen.send({ type: 'open', proto: o.proto, endpoint, count, sampled: Math.min(sampled, count), staggerMs });
    });
    await Promise.all(gens.map((g) => g.waitFor((e) => (e.type === 'opened' ? e.wallMs : undefined), staggerMs + 30000, 'load generator open')));
    await sleep(o.settleSec * 1000);

    const meter = new TreeCpuMeter(server.pid);
    const delivery0 = await server.deliveryHistogram?.();
    meter.begin();
    for (const g of gens) g.send({ type: 'mark', phase: 'start' });
    const starts = await Promise.all(gens.map((g) => g.waitFor((e) => (e.type === 'marked' && e.phase === 'start' ? e.wallMs : undefined), 10000, 'mark start')));
    await sleep(o.windowSec * 1000);
    const cpu = meter.end();
    for (const g of gens) g.send({ type: 'mark', phase: 'end' });
    const ends = await Promise.all(gens.map((g) => g.waitFor((e) => (e.type === 'marked' && e.phase === 'end' ? e.wallMs : undefined), 10000, 'mark end')));
    const rssN = sampleTree(server.pid).rssKb;
    const delivery1 = await server.deliveryHistogram?.();
    const delivery = delivery0 && delivery1 ? delivery1.map((c, i) => c - (delivery0[i] ?? 0)) : undefined;
    const crashed = server.exited();
    for (const g of gens) g.send({ type: 'report' });
    const reports = await Promise.all(gens.map((g) => g.waitFor((e) => (e.type === 'report' ? e : undefined), 30000, 'report')));

    const viewers = reports.flatMap((r) => r.viewers);
    const t0 = starts.reduce((a, b) => a + b, 0) / starts.length;
    const t1 = ends.reduce((a, b) => a + b, 0) / ends.length;
    const windowSec = (t1 - t0) / 1000;
    const expected = pub.bytesBetween(t0, t1);
    let realTime = 0;
    let withVideo = 0;
    let connected = 0;
    const ttff: number[] = [];
    const lat: number[] = [];
    const rates: number[] = [];
    let stampedFrames = 0;
    let sampledFrames = 0;
    for (const v of viewers) {
      if (v.alive) connected++;
      if (v.ttffMs >= 0) {
        withVideo++;
        ttff.push(v.ttffMs);
      } else ttff.push(Infinity); // never got a frame: counts as slower than any that did
      rates.push((v.windowBytes * 8) / 1000 / windowSec);
      let ok = v.alive && expected > 0 && v.windowBytes >= 0.95 * expected;
      if (v.sampled) {
        const mediaAdvance = v.lastTs - v.firstTs;
        const wallAdvance = v.lastRecvMs - v.firstRecvMs;
        // Media time must advance as fast as wall time over the window (frames arrive at
        // 30/s, so first..last spans the window less about one frame).
        ok = ok && v.firstRecvMs > 0 && mediaAdvance >= 0.95 * (windowSec * 1000 - 100) && wallAdvance > 0;
        stampedFrames += v.stamped;
        sampledFrames += v.frames.length / 2;
        for (let i = 0; i + 1 < v.frames.length; i += 2) {
          const sent = pub.sendWall.get(v.frames[i]!);
          if (sent !== undefined) lat.push(v.frames[i + 1]! - sent);
        }
      }
      if (ok) realTime++;
    }
    const cpuPct = (cpu.cpuSec / cpu.wallSec) * 100;
    const genCpu = reports.reduce((a, r) => a + r.cpuSec, 0);
    return {
      server: o.server,
      proto: o.proto,
      viewers: o.viewers,
      status: crashed ? 'server exited' : pub.lastError !== undefined ? `publisher: ${pub.lastError}` : 'ok',
      connected,
      withVideo,
      realTime,
      cpuPct,
      cpuMsPerViewerSec: (cpu.cpuSec / cpu.wallSec / o.viewers) * 1000,
      rss0Kb: rss0,
      rssNKb: rssN,
      rssKbPerViewer: (rssN - rss0) / o.viewers,
      inServerP50Ms: delivery ? quantileMs(delivery, 0.5) : NaN,
      inServerP99Ms: delivery ? quantileMs(delivery, 0.99) : NaN,
      latP50Ms: percentile(lat, 50),
      latP99Ms: percentile(lat, 99),
      latFrames: lat.length,
      stampedShare: sampledFrames > 0 ? stampedFrames / sampledFrames : NaN,
      ttffP50Ms: percentile(ttff, 50),
      ttffP95Ms: percentile(ttff, 95),
      genCpuPct: (genCpu / windowSec) * 100,
      windowSec,
      expectedKbps: (expected * 8) / 1000 / windowSec,
      medianKbps: percentile(rates, 50),
      errors: countErrors(viewers),
    };
  } catch (e) {
    return emptyResult(o.server, o.proto, o.viewers, (e as Error).message.split('\n')[0]!.slice(0, 120));
  } finally {
    await Promise.all(gens.map((g) => g.stop()));
    await pub?.stop();
    await server?.stop();
  }
}
