// Statistics benchmark (issue 6): what the per-second session statistics cost with many
// concurrent viewer sessions. Goals (measured, not a gate): with 1,000 sessions the controller
// spends under 5% of one core on them and under 2 KB of memory per session.
//
// 1. End to end: a fresh Haze (2 workers) with one publisher; N HTTP clients in a load-generator
//    child (this file with --loadgen), each one session (its own `?tkn=`) asking for
//    /hls/live/index.m3u8 over its own keep-alive socket every ~5 s, so every session stays
//    current and its connection open. The controller's CPU (utime+stime, /proc/PID/stat) over a
//    window and its VmRSS, and each worker's, with 0 and with N sessions (once the API's
//    `clients` lists N + the publisher's input session); each process's heap after a full GC
//    (through its inspector: this file with --heap) at 0, N/2 and N; the latency of `clients`.
// 2. In process (this file with --in-process, run with --expose-gc): a SessionTable fed N
//    synthetic worker shares (as JSON text, as they cross the control socket) for 5 rounds of
//    ingest + tick, heap per session after a full GC and the time of a round; the same for the
//    worker side (ViewerSessions: N connections, heap per session, report() time).
//
// No peer server exposes comparable session statistics (nginx-rtmp's stat page lists
// connections, node-media-server's API lists sessions without history), so the report prints
// the ratios to the goals instead of a comparison.
//
// Run through `npm run bench -- stats` (bench/run.sh). Settings (environment):
//   BENCH_STATS_SESSIONS=1000   sessions            BENCH_STATS_SECONDS=30   CPU window (each)
//   BENCH_STATS_PERIOD_MS=5000  request period      BENCH_HAZE_WORKERS=2     Haze's --workers ('default': its own)
//   BENCH_STATS_PARTS=e2e,inproc                    BENCH_REPORT=path        (bench/results/stats.md)

import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchRoot, repoRoot } from './lib/paths.js';
import { machineInfo, TreeCpuMeter } from './lib/proc.js';
import { startServer } from './lib/servers.js';
import type { Endpoint, RunningServer } from './lib/servers.js';
import { fmt, percentile } from './lib/stats.js';
import { encodeOnce } from './lib/source.js';
import { PublisherHandle, sleep, waitFor } from './lib/step.js';
import { SessionTable } from '../src/stats/session-table.js';
import type { ReportedShare } from '../src/stats/session-table.js';
import { sessionIdOf } from '../src/stats/session-id.js';
import { ViewerSessions } from '../src/worker/viewer-sessions.js';
import type { SessionConnection } from '../src/worker/viewer-sessions.js';
import { Logger } from '../src/util/log.js';

const SELF = fileURLToPath(import.meta.url);
const GOAL_CPU_PCT = 5;
const GOAL_BYTES = 2048;
/** The user agent every synthetic viewer sends: with `UA:` in front, a 100-character tag. */
const UA = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'.slice(0, 97).padEnd(97, '.');

/** Session i's token: 40 hex characters, distinct per session. */
const tokenOf = (i: number): string => createHash('sha1').update(`bench-stats-${i}`).digest('hex');

// ---- load generator (child) ------------------------------------------------------------------

type GenRequest = { type: 'start'; endpoint: Endpoint; first: number; count: number; periodMs: number } | { type: 'report' } | { type: 'stop' };
type GenEvent =
  | { type: 'opened'; ok: number; failed: number; wallMs: number }
  | { type: 'report'; requests: number; ok: number; failed: number; sockets: number; statuses: Record<string, number>; cpuSec: number }
  | { type: 'error'; message: string };

function runLoadGen(): void {
  const send = (e: GenEvent): void => void process.send?.(e);
  let requests = 0;
  let ok = 0;
  let failed = 0;
  let sockets = 0;
  const statuses: Record<string, number> = {};
  const agents: http.Agent[] = [];
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;
  const start = (endpoint: Endpoint, firstSession: number, count: number, periodMs: number): void => {
    let firstDone = 0;
    const seen = new WeakSet<Socket>();
    for (let i = 0; i < count; i++) {
      // one socket per session, kept alive between its requests (Haze keeps idle ones 60 s)
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1, timeout: 120_000 });
      agents.push(agent);
      const path = `${endpoint.path}?tkn=${tokenOf(firstSession + i)}`;
      let first = true;
      const ask = (): void => {
        if (stopped) return;
        requests++;
        const done = (good: boolean, status: string): void => {
          if (good) ok++;
          else failed++;
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (first) {
            first = false;
            if (++firstDone === count) send({ type: 'opened', ok, failed, wallMs: Date.now() });
          }
          // the next request about one period later (±10%, so the requests stay spread out)
          if (!stopped) timers[i] = setTimeout(ask, periodMs * (0.9 + 0.2 * Math.random()));
        };
        const req = http.get({ host: endpoint.host, port: endpoint.port, path, agent, headers: { 'User-Agent': UA }, timeout: 10_000 }, (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode === 200, String(res.statusCode)));
          res.on('error', () => done(false, 'body error'));
        });
        req.on('socket', (s: Socket) => {
          if (seen.has(s)) return;
          seen.add(s);
          sockets++;
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', (err) => done(false, (err as NodeJS.ErrnoException).code ?? err.message.slice(0, 40)));
      };
      // the first requests spread over one period
      timers[i] = setTimeout(ask, (i * periodMs) / count);
    }
  };
  process.on('message', (m: GenRequest) => {
    if (m.type === 'start') {
      try {
        start(m.endpoint, m.first, m.count, m.periodMs);
      } catch (err) {
        send({ type: 'error', message: (err as Error).message });
      }
    } else if (m.type === 'report') {
      const u = process.cpuUsage();
      send({ type: 'report', requests, ok, failed, sockets, statuses: { ...statuses }, cpuSec: (u.user + u.system) / 1e6 });
    } else if (m.type === 'stop') {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      for (const a of agents) a.destroy();
      setTimeout(() => process.exit(0), 100);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---- in-process measurements (child with --expose-gc) ----------------------------------------

interface InProcessResult {
  sessions: number;
  table: { bytesPerSession: number; firstRoundMs: number; roundMs: number; parseMs: number; ingestMs: number; tickMs: number; reportBytesPerSession: number };
  worker: { bytesPerSession: number; claimMs: number; reportAllMs: number; reportSinceMs: number; stringifyMs: number; reportBytesPerSession: number; diskKb: number } | { error: string };
}

const heapUsed = (): number => {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const median = (xs: readonly number[]): number => percentile(xs, 50);

/** The shares worker `w` reports in a round: what a real worker's `stats` answer carries per session. */
function workerReportText(w: number, n: number, nowMs: number, round: number): string {
  const shares: ReportedShare[] = [];
  for (let i = w; i < n; i += 2) {
    const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    shares.push({
      id: createHash('sha256').update(`session-${i}`).digest('hex'),
      kind: 'viewer',
      stream: 'live',
      host,
      owner: true,
      open: 1,
      connectors: ['HLS'],
      firstMs: nowMs - round * 1000 - 10_000,
      lastActiveMs: nowMs,
      activeMs: 10_000 + round * 1000,
      down: 50_000 + round * 25_000 + i,
      up: 4_000 + round * 300,
      positionMs: undefined,
      packets: [0, 0, 0],
      tags: [`UA:${UA}`],
    });
  }
  return JSON.stringify(shares);
}

/**
 * One collector round for the table: the two workers' report texts parsed and ingested, then the
 * tick. In a function of its own so nothing of the round stays reachable from the caller's frame.
 */
function tableRound(table: SessionTable, n: number, nowMs: number, round: number): { parseMs: number; ingestMs: number; tickMs: number; reportBytes: number } {
  const texts = [workerReportText(0, n, nowMs, round), workerReportText(1, n, nowMs, round)];
  let parseMs = 0;
  let ingestMs = 0;
  for (let w = 0; w < 2; w++) {
    const a = performance.now();
    const shares = JSON.parse(texts[w]!) as ReportedShare[];
    const b = performance.now();
    table.ingestShares(w, shares, nowMs);
    parseMs += b - a;
    ingestMs += performance.now() - b;
  }
  const c = performance.now();
  table.tick(nowMs, 1000);
  return { parseMs, ingestMs, tickMs: performance.now() - c, reportBytes: texts[0]!.length + texts[1]!.length };
}

async function inProcess(n: number): Promise<InProcessResult> {
  // controller: SessionTable. Memory after 5 rounds; the time per round from 20 more (the
  // median), since a single round of a few ms is easily hit by a GC or the machine's other work.
  const base = heapUsed();
  let table: SessionTable | undefined = new SessionTable();
  const t0 = Date.now();
  let round = 0;
  const first = tableRound(table, n, t0, round++);
  while (round < 5) tableRound(table, n, t0 + round * 1000, round++);
  if (table.live.size !== n) throw new Error(`the table holds ${table.live.size} sessions, not ${n}`);
  // V8 keeps the last JSON.parse input alive until the next parse: a tiny one lets the last
  // report text go, so the figure is the table's own (the text is the next row of the report)
  JSON.parse('0');
  const tableBytes = heapUsed() - base;
  const rounds: ReturnType<typeof tableRound>[] = [];
  while (round < 25) rounds.push(tableRound(table, n, t0 + round * 1000, round++));
  table = undefined;
  const pick = (f: (r: ReturnType<typeof tableRound>) => number): number => median(rounds.map(f));
  const tableResult = {
    bytesPerSession: tableBytes / n,
    firstRoundMs: first.parseMs + first.ingestMs + first.tickMs,
    roundMs: pick((r) => r.parseMs + r.ingestMs + r.tickMs),
    parseMs: pick((r) => r.parseMs),
    ingestMs: pick((r) => r.ingestMs),
    tickMs: pick((r) => r.tickMs),
    reportBytesPerSession: first.reportBytes / n,
  };

  // worker: ViewerSessions (one folder per session under its directory)
  let worker: InProcessResult['worker'];
  const dir = mkdtempSync(join(tmpdir(), 'haze-bench-vs-'));
  try {
    const log = new Logger({ proc: 'bench' });
    const ids: string[] = new Array<string>(n).fill('');
    const wbase = heapUsed();
    let vs: ViewerSessions | undefined = new ViewerSessions({ dir, worker: 0, log, onEnd: () => undefined, maxSessions: Math.max(10_000, n) });
    // what a worker's sockets hold: each connection's end handle and its byte counter
    let conns: SessionConnection[] | undefined = [];
    const c0 = performance.now();
    for (let i = 0; i < n; i++) {
      const host = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
      const token = tokenOf(i);
      // the id made per connection, as the worker's tracker does (SessionStats.open)
      ids[i] = sessionIdOf('viewer', 'live', host, token, 'HLS');
      const counters = { down: 1000 + i, up: 300 };
      conns.push(vs.connect({ sessionId: ids[i]!, stream: 'live', host, token, connector: 'HLS', kind: 'viewer', tags: [`UA:${UA}`] }, () => counters));
    }
    // the claims (a folder and an owner file each) run asynchronously
    const until = Date.now() + 60_000;
    while (Date.now() < until && !ids.every((id) => existsSync(join(dir, id, 'owner')))) await sleep(50);
    const claimMs = performance.now() - c0;
    await sleep(200);
    const wbytes = heapUsed() - wbase;
    const times = async (f: () => Promise<unknown>): Promise<number> => {
      const xs: number[] = [];
      for (let k = 0; k < 7; k++) {
        const a = performance.now();
        await f();
        xs.push(performance.now() - a);
      }
      return median(xs);
    };
    const reportAllMs = await times(() => vs!.report(0, false));
    const reportSinceMs = await times(() => vs!.report(Date.now() - 2000, false));
    const rep = await vs.report(Date.now() - 2000, false);
    if (rep.length !== n) throw new Error(`report() gave ${rep.length} shares, not ${n}`);
    const text = JSON.stringify(rep);
    const stringifyMs = await times(async () => JSON.stringify(rep));
    let diskKb = NaN;
    try {
      diskKb = Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]);
    } catch {
      // no du
    }
    for (const c of conns) c.end();
    vs.close();
    conns = undefined;
    vs = undefined;
    worker = { bytesPerSession: wbytes / n, claimMs, reportAllMs, reportSinceMs, stringifyMs, reportBytesPerSession: text.length / n, diskKb };
  } catch (err) {
    worker = { error: (err as Error).message };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { sessions: n, table: tableResult, worker };
}

// ---- heap of a running Haze process (inspector) ---------------------------------------------

// RSS tells little about what sessions keep: V8 sizes its young generation to the allocation
// rate, so a process that parses more per second grows by megabytes that hold nothing. The heap
// after a full GC does: each Haze process is started with --inspect-port=127.0.0.1:0 (in
// NODE_OPTIONS), SIGUSR1 opens its inspector (Node's own way; Haze does not use the signal), the
// URL comes from its log, and a probe child (Node 20 has WebSocket behind a flag) forces two
// full GCs and reads process.memoryUsage(), three times (the smallest reading is kept).

interface HeapFigures {
  heapUsed: number;
  heapTotal: number;
  external: number;
  rss: number;
}

type ProbeEvent = { type: 'heap'; usage: HeapFigures } | { type: 'error'; message: string };

interface MinimalWebSocket {
  onopen: (() => void) | null;
  onerror: ((e: unknown) => void) | null;
  onmessage: ((e: { data: unknown }) => void) | null;
  send(data: string): void;
  close(): void;
}

function runHeapProbe(url: string): void {
  const send = (e: ProbeEvent): void => void process.send?.(e, () => process.exit(0));
  const Ws = (globalThis as unknown as { WebSocket?: new (url: string) => MinimalWebSocket }).WebSocket;
  if (!Ws) return send({ type: 'error', message: 'no WebSocket (node --experimental-websocket)' });
  const timer = setTimeout(() => send({ type: 'error', message: `inspector ${url}: no answer in 20 s` }), 20_000);
  const ws = new Ws(url);
  const pending = new Map<number, (m: Record<string, unknown>) => void>();
  let nextId = 0;
  const call = (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    new Promise((resolve) => {
      const id = ++nextId;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  ws.onerror = () => send({ type: 'error', message: `inspector ${url}: connection failed` });
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data)) as Record<string, unknown>;
    const done = typeof m['id'] === 'number' ? pending.get(m['id']) : undefined;
    if (done) {
      pending.delete(m['id'] as number);
      done(m);
    }
  };
  ws.onopen = () => {
    void (async () => {
      // Three readings 400 ms apart, the smallest kept: a statistics round in flight (the
      // workers' answers, parsed) is alive for a moment each second and would count otherwise.
      let best: HeapFigures | undefined;
      for (let k = 0; k < 3; k++) {
        if (k > 0) await sleep(400);
        await call('HeapProfiler.collectGarbage');
        await call('HeapProfiler.collectGarbage');
        const r = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
        const value = ((r['result'] as { result?: { value?: unknown } } | undefined)?.result?.value ?? '') as string;
        try {
          const usage = JSON.parse(value) as HeapFigures;
          if (!best || usage.heapUsed < best.heapUsed) best = usage;
        } catch {
          clearTimeout(timer);
          return send({ type: 'error', message: `inspector ${url}: ${JSON.stringify(r).slice(0, 200)}` });
        }
      }
      clearTimeout(timer);
      ws.close();
      send({ type: 'heap', usage: best! });
    })();
  };
}

/** Opens the inspectors of Haze's processes one at a time and reads their heaps. */
class HeapReader {
  private readonly urls = new Map<number, string>();

  constructor(private readonly logFile: string) {}

  private inspectorUrls(): string[] {
    let text = '';
    try {
      text = readFileSync(this.logFile, 'utf8');
    } catch {
      return [];
    }
    return [...text.matchAll(/Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/g)].map((m) => m[1]!);
  }

  private async urlOf(pid: number): Promise<string> {
    const known = this.urls.get(pid);
    if (known) return known;
    const before = new Set(this.inspectorUrls());
    process.kill(pid, 'SIGUSR1');
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      const fresh = this.inspectorUrls().filter((u) => !before.has(u));
      if (fresh.length > 0) {
        this.urls.set(pid, fresh[0]!);
        return fresh[0]!;
      }
      await sleep(100);
    }
    throw new Error(`pid ${pid}: no inspector opened (SIGUSR1)`);
  }

  /** The heap after a full GC; undefined when it cannot be read (noted in the report). */
  async heap(pid: number): Promise<HeapFigures | undefined> {
    try {
      const url = await this.urlOf(pid);
      const child = fork(SELF, ['--heap', url], { execArgv: ['--experimental-websocket', '--no-warnings'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      return await waitFor<ProbeEvent, HeapFigures>(child, (e) => (e.type === 'heap' ? e.usage : undefined), 30_000, `heap of ${pid}`).finally(() => {
        if (child.exitCode === null) child.kill('SIGKILL');
      });
    } catch (err) {
      console.error(`stats: ${(err as Error).message}`);
      return undefined;
    }
  }
}

/**
 * A low-rate source (320x180 15 fps, ~150 kbit/s + AAC 32k, 2 s GOP): the statistics do not care
 * about bitrate, and a small stream keeps the live buffer's growth out of the workers' memory
 * and the machine's CPU for the sessions. Made once into bench/.cache/.
 */
function ensureLowSource(): string {
  const args = [
    '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=15',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '60',
    '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-b:v', '150k', '-maxrate', '150k', '-bufsize', '300k',
    '-g', '30', '-keyint_min', '30', '-sc_threshold', '0',
    '-c:a', 'aac', '-b:a', '32k', '-ac', '1',
    '-f', 'flv',
  ];
  return encodeOnce('source-stats-180p15', args, 100_000);
}

// ---- end to end ------------------------------------------------------------------------------

interface ProcFigures {
  cpuPct: number;
  rssKb: number;
}

interface EndToEndResult {
  sessions: number;
  workers: number;
  windowSec: number;
  listed: number;
  idle: { controller: ProcFigures; workers: ProcFigures[] };
  loaded: { controller: ProcFigures; workers: ProcFigures[] };
  /** Heap after a full GC (controller first, then the workers), with 0 and with N sessions. */
  heap0: (HeapFigures | undefined)[];
  heapHalf: (HeapFigures | undefined)[];
  heapN: (HeapFigures | undefined)[];
  half: number;
  listedAfter: number;
  clientsMs: number[];
  clientsBytes: number;
  statsStreamsMs: number[];
  gen: Extract<GenEvent, { type: 'report' }> | undefined;
  genCpuPct: number;
  openSec: number;
}

function vmRssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** The --data and --api arguments Haze was started with (servers.ts keeps them to itself). */
function hazeArgs(pid: number): { dataDir: string; apiPort: number } {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const at = (flag: string): string => {
    const i = argv.indexOf(flag);
    if (i < 0 || i + 1 >= argv.length) throw new Error(`haze was started without ${flag}`);
    return argv[i + 1]!;
  };
  return { dataDir: at('--data'), apiPort: Number(at('--api')) };
}

function readPid(file: string): number {
  const pid = Number(readFileSync(file, 'latin1').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${file}: no pid`);
  return pid;
}

async function api(port: number, command: Record<string, unknown>): Promise<{ body: Record<string, unknown>; bytes: number; ms: number }> {
  const a = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/api`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(command), signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  const ms = performance.now() - a;
  return { body: JSON.parse(text) as Record<string, unknown>, bytes: text.length, ms };
}

async function listedSessions(port: number): Promise<number> {
  const r = await api(port, { clients: { fields: ['sessid'] } });
  const c = r.body['clients'] as { data?: unknown[] } | undefined;
  return c?.data?.length ?? -1;
}

/** CPU % of one core of each pid over `seconds`, and each one's RSS at the end. */
async function measure(pids: number[], seconds: number): Promise<ProcFigures[]> {
  const meters = pids.map((p) => new TreeCpuMeter(p));
  for (const m of meters) m.begin();
  await sleep(seconds * 1000);
  return meters.map((m, i) => {
    const r = m.end();
    return { cpuPct: (100 * r.cpuSec) / r.wallSec, rssKb: vmRssKb(pids[i]!) };
  });
}

async function endToEnd(n: number, seconds: number, periodMs: number, hazeWorkers: number | undefined, logDir: string, say: (line: string) => void): Promise<EndToEndResult> {
  const sourceFile = ensureLowSource();
  let server: RunningServer | undefined;
  let pub: PublisherHandle | undefined;
  const gens: ChildProcess[] = [];
  try {
    // Haze's processes get an inspector port of their own when asked (HeapReader); the env is
    // read when startServer spawns it, and nothing else of the bench inherits the setting.
    const nodeOptions = process.env['NODE_OPTIONS'];
    process.env['NODE_OPTIONS'] = `${nodeOptions ?? ''} --inspect-port=127.0.0.1:0`.trim();
    try {
      server = await startServer('haze', { logDir, hazeWorkers });
    } finally {
      if (nodeOptions === undefined) delete process.env['NODE_OPTIONS'];
      else process.env['NODE_OPTIONS'] = nodeOptions;
    }
    const heaps = new HeapReader(server.logFile);
    const { dataDir, apiPort } = hazeArgs(server.pid);
    const run = join(dataDir, 'run');
    pub = new PublisherHandle();
    await pub.start({ type: 'start', endpoint: server.publish, sourceFile });
    const stream = server.publish.stream;
    // online, and its input session listed (without an HTTP request of our own, which would be a session)
    const until = Date.now() + 20_000;
    let listed = 0;
    while (Date.now() < until) {
      const a = await api(apiPort, { active_streams: { streams: [stream], fields: ['status'] } }).catch(() => undefined);
      const status = (a?.body['active_streams'] as { data?: Record<string, string[]> } | undefined)?.data?.[stream]?.[0];
      listed = await listedSessions(apiPort).catch(() => 0);
      if (status === 'Online' && listed >= 1) break;
      await sleep(500);
    }
    const controllerPid = readPid(join(run, 'controller.pid'));
    const workerPids = readdirSync(run)
      .filter((f) => /^worker-\d+\.pid$/.test(f))
      .sort()
      .map((f) => readPid(join(run, f)));
    say(`haze: angel ${server.pid}, controller ${controllerPid}, workers ${workerPids.join(',')}; stream ${stream} online, ${listed} session(s) listed`);
    const heapsNow = async (label: string): Promise<(HeapFigures | undefined)[]> => {
      const out: (HeapFigures | undefined)[] = [];
      for (const pid of [controllerPid, ...workerPids]) out.push(await heaps.heap(pid));
      say(`${label}, heap after full GC: ${out.map((h, i) => `${i === 0 ? 'controller' : `worker ${i}`} ${h ? fmt(h.heapUsed / 1048576, 2) : 'n/a'} MiB`).join(', ')}`);
      return out;
    };
    // let the first segments, the relays and the collector's first rounds settle
    await sleep(5000);
    const [ctl0, ...w0] = await measure([controllerPid, ...workerPids], seconds);
    say(`0 sessions: controller ${fmt(ctl0!.cpuPct, 2)}% CPU, RSS ${fmt(ctl0!.rssKb / 1024, 1)} MiB; workers ${w0.map((w) => `${fmt(w.cpuPct, 1)}% ${fmt(w.rssKb / 1024, 1)} MiB`).join(', ')}`);
    const heap0 = await heapsNow('0 sessions');

    const endpoint = server.hls['hls-ts'];
    if (!endpoint) throw new Error('haze offers no HLS endpoint');
    // Sessions `first`..`first + count - 1` from a load-generator child of their own; returns
    // once `clients` lists them all (and the sessions before them, and the input).
    let openSec = 0;
    const open = async (first: number, count: number): Promise<void> => {
      const gen = fork(SELF, ['--loadgen'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      gens.push(gen);
      const openAt = Date.now();
      gen.send({ type: 'start', endpoint: { ...endpoint, path: `/hls/${stream}/index.m3u8` }, first, count, periodMs } satisfies GenRequest);
      const opened = await waitFor<GenEvent, Extract<GenEvent, { type: 'opened' }>>(gen, (e) => (e.type === 'opened' ? e : undefined), periodMs + 60_000, 'load generator');
      say(`${count} more sessions made their first request in ${fmt((opened.wallMs - openAt) / 1000, 1)} s (${opened.ok} ok, ${opened.failed} failed)`);
      const want = first + count + 1;
      const listUntil = Date.now() + 30_000;
      while (Date.now() < listUntil && (listed = await listedSessions(apiPort).catch(() => -1)) !== want) await sleep(1000);
      openSec = Math.max(openSec, (Date.now() - openAt) / 1000);
      say(`clients lists ${listed} sessions (want ${want}: ${first + count} viewers + the publisher's input) ${fmt((Date.now() - openAt) / 1000, 1)} s after their first request`);
    };
    // Half first, for the heap at N/2: the heap from N/2 to N is what a session adds, without
    // what the first sessions bring once (code compiled and optimized for them, buffers sized).
    const half = Math.floor(n / 2);
    await open(0, half);
    // a few rounds, so the figures hold the sessions whole (rates need two)
    await sleep(5000);
    const heapHalf = await heapsNow(`${half} sessions`);
    await open(half, n - half);
    await sleep(5000);
    const genMeters = gens.map((g) => new TreeCpuMeter(g.pid!));
    for (const m of genMeters) m.begin();
    const [ctlN, ...wN] = await measure([controllerPid, ...workerPids], seconds);
    const genCpu = genMeters.map((m) => m.end());
    say(`${n} sessions: controller ${fmt(ctlN!.cpuPct, 2)}% CPU, RSS ${fmt(ctlN!.rssKb / 1024, 1)} MiB; workers ${wN.map((w) => `${fmt(w.cpuPct, 1)}% ${fmt(w.rssKb / 1024, 1)} MiB`).join(', ')}`);
    const heapN = await heapsNow(`${n} sessions`);
    const clientsMs: number[] = [];
    let clientsBytes = 0;
    for (let k = 0; k < 10; k++) {
      const r = await api(apiPort, { clients: {} });
      clientsMs.push(r.ms);
      clientsBytes = r.bytes;
    }
    const statsStreamsMs: number[] = [];
    for (let k = 0; k < 10; k++) statsStreamsMs.push((await api(apiPort, { stats_streams: true })).ms);
    const listedAfter = await listedSessions(apiPort).catch(() => -1);
    let genReport: Extract<GenEvent, { type: 'report' }> | undefined = { type: 'report', requests: 0, ok: 0, failed: 0, sockets: 0, statuses: {}, cpuSec: 0 };
    for (const gen of gens) {
      gen.send({ type: 'report' } satisfies GenRequest);
      const r = await waitFor<GenEvent, Extract<GenEvent, { type: 'report' }>>(gen, (e) => (e.type === 'report' ? e : undefined), 5000, 'load generator').catch(() => undefined);
      if (!r || !genReport) {
        genReport = undefined;
        continue;
      }
      genReport.requests += r.requests;
      genReport.ok += r.ok;
      genReport.failed += r.failed;
      genReport.sockets += r.sockets;
      for (const [k, v] of Object.entries(r.statuses)) genReport.statuses[k] = (genReport.statuses[k] ?? 0) + v;
    }
    return {
      sessions: n,
      workers: workerPids.length,
      windowSec: seconds,
      listed,
      idle: { controller: ctl0!, workers: w0 },
      loaded: { controller: ctlN!, workers: wN },
      heap0,
      heapHalf,
      heapN,
      half,
      listedAfter,
      clientsMs,
      clientsBytes,
      statsStreamsMs,
      gen: genReport,
      genCpuPct: genCpu.reduce((a, g) => a + (100 * g.cpuSec) / g.wallSec, 0),
      openSec,
    };
  } finally {
    await Promise.all(
      gens.map(async (gen) => {
        if (gen.exitCode !== null || gen.signalCode !== null) return;
        const exited = new Promise<void>((r) => gen.once('exit', () => r()));
        try {
          gen.send({ type: 'stop' } satisfies GenRequest);
        } catch {
          gen.kill('SIGKILL');
        }
        const t = setTimeout(() => gen.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }),
    );
    await pub?.stop();
    await server?.stop();
  }
}

// ---- main ------------------------------------------------------------------------------------

function runInProcessChild(n: number): Promise<InProcessResult> {
  const child = fork(SELF, ['--in-process', String(n)], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return waitFor<{ type: string; result?: InProcessResult; message?: string }, InProcessResult>(child, (e) => (e.type === 'result' ? e.result : undefined), 120_000, 'in-process measurement').finally(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
}

async function main(): Promise<void> {
  const n = Number(process.env['BENCH_STATS_SESSIONS'] ?? 1000);
  const seconds = Number(process.env['BENCH_STATS_SECONDS'] ?? 30);
  const periodMs = Number(process.env['BENCH_STATS_PERIOD_MS'] ?? 5000);
  const parts = (process.env['BENCH_STATS_PARTS'] ?? 'e2e,inproc').split(',').map((s) => s.trim());
  const hazeWorkersEnv = process.env['BENCH_HAZE_WORKERS'];
  // Two workers by default: sessions spread over workers is the case the statistics add up.
  const hazeWorkers = hazeWorkersEnv === 'default' ? undefined : Number(hazeWorkersEnv || 2);
  const reportFile = process.env['BENCH_REPORT'] ?? join(benchRoot, 'results', 'stats.md');
  if (!(Number.isInteger(n) && n > 0 && n <= 9000)) throw new Error(`BENCH_STATS_SESSIONS ${n} (1..9000: one worker tracks 10,000 sessions at most)`);
  if (!(seconds >= 5 && seconds <= 600)) throw new Error(`BENCH_STATS_SECONDS ${seconds}`);
  if (!(periodMs >= 500 && periodMs <= 30_000)) throw new Error(`BENCH_STATS_PERIOD_MS ${periodMs} (sessions must stay current: < 15 s)`);
  const logDir = join(benchRoot, '.cache', 'logs');
  mkdirSync(logDir, { recursive: true });
  const info = machineInfo();
  const loadAvg = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const loadStart = loadAvg();
  const lines: string[] = [];
  const say = (line: string): void => {
    console.log(line);
    lines.push(line);
  };
  if (Number(loadStart.split(' ')[0]) > 0.5 * info.nproc) say(`note: load average ${loadStart} before the run: other work is running, figures will be skewed`);
  say(`stats: ${n} sessions, ${seconds} s windows, a request per session every ${periodMs / 1000} s, haze --workers ${hazeWorkers ?? 'default'}, parts ${parts.join(',')}`);
  say(`machine: ${info.nproc} x ${info.model}, kernel ${info.kernel}, node ${process.version}, load ${loadStart}`);
  // A hard stop, whatever happens.
  const guard = setTimeout(() => {
    console.error('stats: overran its time, stopping');
    process.exit(2);
  }, (2 * seconds + 240) * 1000);
  guard.unref();

  let e2e: EndToEndResult | undefined;
  let inproc: InProcessResult | undefined;
  const started = Date.now();
  if (parts.includes('e2e')) e2e = await endToEnd(n, seconds, periodMs, hazeWorkers, logDir, say);
  if (parts.includes('inproc')) inproc = await runInProcessChild(n);
  clearTimeout(guard);

  const out: string[] = [];
  const kb = (bytes: number): string => `${fmt(bytes, 0)} B`;
  if (e2e) {
    const sum = (xs: readonly number[]): number => xs.reduce((x, y) => x + y, 0);
    const ctlCpu = e2e.loaded.controller.cpuPct - e2e.idle.controller.cpuPct;
    const ctlRssBytes = ((e2e.loaded.controller.rssKb - e2e.idle.controller.rssKb) * 1024) / n;
    const heapOf = (hs: (HeapFigures | undefined)[], from: number, to: number): number => (hs.slice(from, to).every((h) => h) ? sum(hs.slice(from, to).map((h) => h!.heapUsed)) : NaN);
    const ctlHeap0 = heapOf(e2e.heap0, 0, 1);
    const ctlHeapN = heapOf(e2e.heapN, 0, 1);
    const wHeap0 = heapOf(e2e.heap0, 1, e2e.heap0.length);
    const wHeapN = heapOf(e2e.heapN, 1, e2e.heapN.length);
    const wRss0 = sum(e2e.idle.workers.map((w) => w.rssKb));
    const wRssN = sum(e2e.loaded.workers.map((w) => w.rssKb));
    const wCpu0 = sum(e2e.idle.workers.map((w) => w.cpuPct));
    const wCpuN = sum(e2e.loaded.workers.map((w) => w.cpuPct));
    const mib = (b: number): string => `${fmt(b / 1048576, 1)} MiB`;
    const h = e2e.half;
    const ctlHeapH = heapOf(e2e.heapHalf, 0, 1);
    const wHeapH = heapOf(e2e.heapHalf, 1, e2e.heapHalf.length);
    const heapRow = (what: string, zero: number, mid: number, loaded: number): string =>
      `| ${what} | ${mib(zero)} | ${mib(mid)} | ${mib(loaded)} | ${kb((loaded - zero) / n)} | **${kb((loaded - mid) / (n - h))}** |`;
    const rssRow = (what: string, zero: number, loaded: number): string => `| ${what} | ${mib(zero)} | | ${mib(loaded)} | ${kb((loaded - zero) / n)} | |`;
    out.push('## End to end', '');
    out.push(`Haze with ${e2e.workers} workers and one publisher (a 320x180 ~180 kbit/s test pattern over RTMP, looped); ${n} sessions, each an HTTP client asking for \`/hls/live/index.m3u8?tkn=K\` every ~${periodMs / 1000} s over its own keep-alive socket, opened in two halves (two load-generator children). \`clients\` listed ${e2e.listed} sessions before the window (${n} + the input), ${e2e.listedAfter} after it. CPU over ${e2e.windowSec} s windows (utime+stime from /proc/PID/stat) with 0 and ${n} sessions; RSS = VmRSS at the end of each window; heap = process.memoryUsage().heapUsed after two full GCs (the smallest of three readings 0.4 s apart, so no statistics round is in flight), read through the process's inspector after the 0 window, once the first ${h} sessions were listed, and after the ${n} window. The heap per session from ${h} to ${n} leaves out what the first sessions bring once (code compiled for them, buffers sized), so it is the figure for the goal.`, '');
    out.push(`| | 0 sessions | ${h} sessions | ${n} sessions | per session 0 → ${n} | per session ${h} → ${n} |`, '| --- | ---: | ---: | ---: | ---: | ---: |');
    out.push(`| controller CPU (% of a core) | ${fmt(e2e.idle.controller.cpuPct, 2)} | | ${fmt(e2e.loaded.controller.cpuPct, 2)} | **+${fmt(ctlCpu, 2)}** in all | |`);
    out.push(heapRow('controller heap after full GC', ctlHeap0, ctlHeapH, ctlHeapN));
    out.push(rssRow('controller RSS', e2e.idle.controller.rssKb * 1024, e2e.loaded.controller.rssKb * 1024));
    out.push(`| workers CPU (sum, % of a core) | ${fmt(wCpu0, 1)} | | ${fmt(wCpuN, 1)} | +${fmt(wCpuN - wCpu0, 1)} in all | |`);
    out.push(heapRow('workers heap after full GC (sum)', wHeap0, wHeapH, wHeapN));
    out.push(rssRow('workers RSS (sum)', wRss0 * 1024, wRssN * 1024), '');
    out.push(`Per worker (0 → ${n}): ${e2e.idle.workers.map((w, i) => `worker ${i + 1}: CPU ${fmt(w.cpuPct, 1)} → ${fmt(e2e.loaded.workers[i]!.cpuPct, 1)}%, RSS ${fmt(w.rssKb / 1024, 1)} → ${fmt(e2e.loaded.workers[i]!.rssKb / 1024, 1)} MiB, heap ${e2e.heap0[i + 1] ? mib(e2e.heap0[i + 1]!.heapUsed) : 'n/a'} → ${e2e.heapN[i + 1] ? mib(e2e.heapN[i + 1]!.heapUsed) : 'n/a'}`).join('; ')}.`, '');
    out.push(`The workers' figures include everything a session brings there besides its statistics: the socket, the HTTP parser and each playlist request (~${fmt((n * 1000) / periodMs, 0)} requests/s); the in-process figures below isolate the statistics records. RSS grows by more than the heap holds: V8 sizes its young generation (and keeps freed pages) by the allocation rate, which the per-second reports raise.`, '');
    out.push(`API at ${n} sessions: \`clients\` (all fields, ${fmt(e2e.clientsBytes / 1024, 0)} KiB answer) median **${fmt(median(e2e.clientsMs), 1)} ms** (max ${fmt(Math.max(...e2e.clientsMs), 1)} ms, 10 calls); \`stats_streams\` median ${fmt(median(e2e.statsStreamsMs), 1)} ms.`);
    if (e2e.gen) out.push(`Load generator: ${e2e.gen.requests} requests (${e2e.gen.ok} ok, ${e2e.gen.failed} failed; statuses ${Object.entries(e2e.gen.statuses).map(([k, v]) => `${k}: ${v}`).join(', ')}), ${e2e.gen.sockets} sockets opened for ${n} sessions; the load generators' CPU ${fmt(e2e.genCpuPct, 1)}% over the window.`);
    const ctlHeapBytes = (ctlHeapN - ctlHeapH) / (n - h);
    const ctlHeapAvg = (ctlHeapN - ctlHeap0) / n;
    out.push('', `Goal ratios (measured / goal): controller CPU ${fmt(ctlCpu, 2)}% / ${GOAL_CPU_PCT}% = **${fmt(ctlCpu / GOAL_CPU_PCT, 2)}**; controller memory (heap, ${h} → ${n}) ${kb(ctlHeapBytes)} / ${GOAL_BYTES} B = **${fmt(ctlHeapBytes / GOAL_BYTES, 2)}** (heap 0 → ${n}: ${fmt(ctlHeapAvg / GOAL_BYTES, 2)}; RSS 0 → ${n}: ${fmt(ctlRssBytes / GOAL_BYTES, 2)}).`, '');
  }
  if (inproc) {
    const t = inproc.table;
    out.push('## In process', '');
    out.push(`\`node --expose-gc\`: a SessionTable fed ${inproc.sessions} synthetic shares (64-hex ids, IPv4 hosts, connectors ['HLS'], a 100-char UA tag) from two workers as JSON text, 5 rounds of parse + ingest + tick, then a full GC for the heap; the round time is the median of 20 more rounds. The worker side: ViewerSessions in a temp folder, one connection per session left open.`, '');
    out.push('| controller (SessionTable) | value |', '| --- | ---: |');
    out.push(`| heap per session | **${kb(t.bytesPerSession)}** (goal ${GOAL_BYTES} B: ratio ${fmt(t.bytesPerSession / GOAL_BYTES, 2)}) |`);
    out.push(`| one round for ${inproc.sessions} sessions (parse + ingest + tick, median of 20) | ${fmt(t.roundMs, 2)} ms = ${fmt(t.roundMs / 10, 2)}% of a core at one round a second |`);
    out.push(`| of which JSON.parse / ingestShares / tick | ${fmt(t.parseMs, 2)} / ${fmt(t.ingestMs, 2)} / ${fmt(t.tickMs, 2)} ms |`);
    out.push(`| first round (sessions created) | ${fmt(t.firstRoundMs, 2)} ms |`);
    out.push(`| report text per session (control socket; the controller holds the last one of each worker a while) | ${kb(t.reportBytesPerSession)} |`, '');
    const w = inproc.worker;
    if ('error' in w) out.push(`Worker side (ViewerSessions): failed: ${w.error}`, '');
    else {
      out.push(`| worker (ViewerSessions, one worker owning all ${inproc.sessions}) | value |`, '| --- | ---: |');
      out.push(`| heap per session (with an open connection each) | **${kb(w.bytesPerSession)}** |`);
      out.push(`| ${inproc.sessions} connects and their claims (a folder + owner file each) | ${fmt(w.claimMs, 0)} ms; ${fmt(w.diskKb / 1024, 1)} MiB on disk |`);
      out.push(`| report(0, false) for ${inproc.sessions} | ${fmt(w.reportAllMs, 2)} ms |`);
      out.push(`| report(now - 2 s, false) (the per-second request) | ${fmt(w.reportSinceMs, 2)} ms |`);
      out.push(`| JSON.stringify of that report | ${fmt(w.stringifyMs, 2)} ms, ${kb(w.reportBytesPerSession)} per session |`, '');
    }
  }
  out.push('## Peers', '', "No peer server exposes comparable session statistics: nginx-rtmp's stat page lists connections (no sessions merged over connections, no history), node-media-server's API lists sessions without history. So there is no comparison; the goal ratios above stand in for it.", '');

  const cmdEnv = ['BENCH_STATS_SESSIONS', 'BENCH_STATS_SECONDS', 'BENCH_STATS_PERIOD_MS', 'BENCH_STATS_PARTS', 'BENCH_HAZE_WORKERS'].filter((k) => process.env[k] !== undefined).map((k) => `${k}=${process.env[k]} `).join('');
  const md = [
    '# Haze statistics benchmark (`npm run bench -- stats`)',
    '',
    `Date: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; command \`${cmdEnv}npm run bench -- stats\`; ${info.nproc}-core ${info.model}, kernel ${info.kernel}, node ${process.version}; load average ${loadStart} at the start, ${loadAvg()} at the end; ${fmt((Date.now() - started) / 1000, 0)} s.`,
    '',
    `Goals (issue 6, measured, not a gate): with 1,000 concurrent viewer sessions the controller's per-second statistics under ${GOAL_CPU_PCT}% of one core, and under 2 KB of memory per session.`,
    '',
    ...out,
    '## Log',
    '',
    '```',
    ...lines,
    '```',
    '',
  ].join('\n');
  mkdirSync(join(reportFile, '..'), { recursive: true });
  writeFileSync(reportFile, md);
  console.log('\n' + out.join('\n'));
  console.log(`\nreport: ${reportFile.startsWith(repoRoot) ? reportFile.slice(repoRoot.length + 1) : reportFile}`);
}

const role = process.argv[2];
if (role === '--loadgen') runLoadGen();
else if (role === '--heap') runHeapProbe(process.argv[3] ?? '');
else if (role === '--in-process') {
  inProcess(Number(process.argv[3]))
    .then((result) => {
      process.send?.({ type: 'result', result }, () => process.exit(0));
    })
    .catch((err: Error) => {
      process.send?.({ type: 'error', message: err.message }, () => process.exit(1));
    });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
