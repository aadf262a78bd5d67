// HLS load generator child process: opens simulated HLS or LL-HLS players (hls-viewer.ts) on
// request from the parent (IPC), all through one keep-alive http.Agent, snapshots the counters
// at the window marks and reports the fetch log.
// Run as a child: node dist/bench/lib/hls-loadgen.js

import { Agent } from 'node:http';
import type { HlsGenReport, HlsLoadEvent, HlsLoadRequest, HlsOpenRequest } from './ipc.js';
import { HlsRecorder, HlsViewer, LlHlsViewer } from './hls-viewer.js';

const now = (): number => performance.timeOrigin + performance.now();

function send(ev: HlsLoadEvent): void {
  process.send?.(ev);
}

const rec = new HlsRecorder();
const viewers: (HlsViewer | LlHlsViewer)[] = [];
const bytesAtStart: number[] = [];
const bytesAtEnd: number[] = [];
const timers = new Set<NodeJS.Timeout>();
let agent: Agent | undefined;
let cpuAtStart = process.cpuUsage();
let cpuSec = 0;
let windowStartMs = 0;
let windowEndMs = 0;
let at0 = { requests: 0, bytes: 0, errors: 0 };
let at1 = { requests: 0, bytes: 0, errors: 0 };

function later(ms: number, fn: () => void): void {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

function open(req: HlsOpenRequest): void {
  // One pool for the process, as one machine's clients behind it would share nothing: sized so
  // requests never wait for a socket (a held LL-HLS part and playlist per viewer), and every
  // socket kept open between requests (maxFreeSockets defaults to 256).
  agent ??= new Agent({ keepAlive: true, maxSockets: req.maxSockets, maxFreeSockets: req.maxSockets });
  const target = { host: req.endpoint.host, port: req.endpoint.port, agent, rec };
  for (let i = 0; i < req.count; i++) {
    const id = viewers.length;
    const v = req.proto === 'll-hls' ? new LlHlsViewer(id, target, req.endpoint.path) : new HlsViewer(id, target, req.endpoint.path);
    viewers.push(v);
    const atMs = req.count > 1 ? (req.staggerMs * i) / (req.count - 1) : 0;
    later(atMs, () => v.start());
  }
  later(req.staggerMs + 1, () => send({ type: 'opened', wallMs: now() }));
}

function mark(phase: 'start' | 'end'): void {
  const t = now();
  const snap = { requests: rec.requests, bytes: rec.bytes, errors: rec.errorCount };
  if (phase === 'start') {
    at0 = snap;
    viewers.forEach((v, i) => (bytesAtStart[i] = v.bytes));
    cpuAtStart = process.cpuUsage();
    windowStartMs = t;
    rec.recording = true;
  } else {
    rec.recording = false;
    at1 = snap;
    viewers.forEach((v, i) => (bytesAtEnd[i] = v.bytes));
    const d = process.cpuUsage(cpuAtStart);
    cpuSec = (d.user + d.system) / 1e6;
    windowEndMs = t;
  }
  send({ type: 'marked', phase, wallMs: t });
}

function report(): void {
  const out: HlsGenReport = {
    type: 'report',
    viewers: viewers.map((v, i) => ({
      windowBytes: (bytesAtEnd[i] ?? 0) - (bytesAtStart[i] ?? 0),
      startupMs: v.firstMediaMs > 0 ? v.firstMediaMs - v.startMs : -1,
      errors: v.errors,
    })),
    cpuSec,
    windowSec: (windowEndMs - windowStartMs) / 1000,
    requests: at1.requests - at0.requests,
    bytes: at1.bytes - at0.bytes,
    errorsInWindow: at1.errors - at0.errors,
    errors: Object.fromEntries(rec.errors),
    keys: rec.keys,
    stamps: rec.stamps.map((s) => (Number.isNaN(s) ? null : s)),
    announce: rec.announce.map((a) => (Number.isFinite(a) ? a : null)),
    fetches: rec.fetches,
    connectionsOpened: rec.connectionsOpened,
    peakSockets: rec.peakSockets,
  };
  send(out);
}

function stopAll(): void {
  for (const t of timers) clearTimeout(t);
  timers.clear();
  for (const v of viewers) v.stop();
  agent?.destroy();
  // Let the IPC channel flush, then leave.
  setTimeout(() => process.exit(0), 50);
}

process.on('message', (msg: HlsLoadRequest) => {
  try {
    switch (msg.type) {
      case 'open':
        open(msg);
        break;
      case 'mark':
        mark(msg.phase);
        break;
      case 'report':
        report();
        break;
      case 'stop':
        stopAll();
        break;
    }
  } catch (e) {
    send({ type: 'error', message: (e as Error).stack ?? String(e) });
  }
});
// The parent going away ends this process too.
process.on('disconnect', () => process.exit(0));
