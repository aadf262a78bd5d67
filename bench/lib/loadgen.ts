// Load generator child process: opens viewers on request from the parent (IPC), snapshots their
// byte counts at the window marks, and reports per-viewer results. Most viewers only count
// bytes; the sampled ones parse every frame and record receive times.
// Run as a child: node dist/bench/lib/loadgen.js

import type { Endpoint, Proto } from './servers.js';
import type { ChurnRequest, LoadEvent, LoadRequest, OpenRequest, ViewerResult } from './ipc.js';
import { HttpFlvViewer } from './http-flv-viewer.js';
import { RtmpViewer } from './rtmp-viewer.js';
import { readStamp } from './stamp.js';
import type { Viewer, ViewerSink } from './viewer.js';

const now = (): number => performance.timeOrigin + performance.now();

function send(ev: LoadEvent): void {
  process.send?.(ev);
}

interface Tracked {
  v: Viewer;
  bytesAtStart: number;
  bytesAtEnd: number;
  aliveAtEnd: boolean;
  firstTs: number;
  lastTs: number;
  firstRecvMs: number;
  lastRecvMs: number;
  frames: number[];
  stamped: number;
}

const tracked = new Map<Viewer, Tracked>();
let recording = false;
let windowStartMs = 0;
let windowEndMs = 0;
let cpuAtStart = process.cpuUsage();
let cpuSec = 0;
const timers = new Set<NodeJS.Timeout>();

const sink: ViewerSink = {
  onVideoFrame(v, timeMs, body, recvWallMs) {
    if (!recording) return;
    const t = tracked.get(v);
    if (!t) return;
    const stamp = readStamp(body);
    if (stamp >= 0) t.stamped++;
    t.frames.push(stamp >= 0 ? stamp : timeMs, recvWallMs);
    if (t.firstRecvMs === 0) {
      t.firstTs = timeMs;
      t.firstRecvMs = recvWallMs;
    }
    t.lastTs = timeMs;
    t.lastRecvMs = recvWallMs;
  },
};

function makeViewer(proto: Proto, ep: Endpoint, sampled: boolean): Viewer {
  return proto === 'rtmp' ? new RtmpViewer(ep, sampled, sink) : new HttpFlvViewer(ep, sampled, sink);
}

function track(v: Viewer): void {
  tracked.set(v, { v, bytesAtStart: 0, bytesAtEnd: 0, aliveAtEnd: false, firstTs: 0, lastTs: 0, firstRecvMs: 0, lastRecvMs: 0, frames: [], stamped: 0 });
}

function later(ms: number, fn: () => void): void {
  const t = setTimeout(() => {
    timers.delete(t);
    fn();
  }, ms);
  timers.add(t);
}

function open(req: OpenRequest): void {
  // Sampled viewers spread evenly through the connection order (exactly req.sampled of them).
  for (let i = 0; i < req.count; i++) {
    const sampled = req.sampled > 0 && (i * req.sampled) % req.count < req.sampled;
    const v = makeViewer(req.proto, req.endpoint, sampled);
    track(v);
    const at = req.count > 1 ? (req.staggerMs * i) / (req.count - 1) : 0;
    later(at, () => v.start());
  }
  later(req.staggerMs + 1, () => send({ type: 'opened', wallMs: now() }));
}

function mark(phase: 'start' | 'end'): void {
  const t = now();
  if (phase === 'start') {
    for (const tr of tracked.values()) tr.bytesAtStart = tr.v.bytes;
    cpuAtStart = process.cpuUsage();
    windowStartMs = t;
    recording = true;
  } else {
    recording = false;
    for (const tr of tracked.values()) {
      tr.bytesAtEnd = tr.v.bytes;
      tr.aliveAtEnd = !tr.v.closed && tr.v.error === undefined;
    }
    const d = process.cpuUsage(cpuAtStart);
    cpuSec = (d.user + d.system) / 1e6;
    windowEndMs = t;
  }
  send({ type: 'marked', phase, wallMs: t });
}

function report(): void {
  const viewers: ViewerResult[] = [];
  for (const tr of tracked.values()) {
    const v = tr.v;
    viewers.push({
      sampled: v.sampled,
      ttffMs: v.firstVideoMs > 0 ? v.firstVideoMs - v.connectStartMs : -1,
      windowBytes: tr.bytesAtEnd - tr.bytesAtStart,
      alive: tr.aliveAtEnd,
      error: v.error,
      firstTs: tr.firstTs,
      lastTs: tr.lastTs,
      firstRecvMs: tr.firstRecvMs,
      lastRecvMs: tr.lastRecvMs,
      frames: v.sampled ? tr.frames : [],
      stamped: tr.stamped,
    });
  }
  send({ type: 'report', viewers, cpuSec, windowSec: (windowEndMs - windowStartMs) / 1000 });
}

/** Churn: keep about `target` viewers, each staying a random time, until the duration ends. */
function churn(req: ChurnRequest): void {
  const protos = (Object.keys(req.endpoints) as Proto[]).filter((p) => req.endpoints[p] !== undefined);
  const endAt = now() + req.durationMs;
  let opened = 0;
  let failed = 0;
  const alive = new Set<Viewer>();
  const spawnOne = (delayMs: number): void => {
    later(delayMs, () => {
      if (now() >= endAt) return;
      const proto = protos[Math.floor(Math.random() * protos.length)]!;
      const v = makeViewer(proto, req.endpoints[proto]!, false);
      alive.add(v);
      opened++;
      v.start();
      const life = req.minLifeMs + Math.random() * (req.maxLifeMs - req.minLifeMs);
      later(life, () => {
        if (v.error !== undefined) failed++;
        v.stop();
        alive.delete(v);
        spawnOne(Math.random() * 200);
      });
    });
  };
  for (let i = 0; i < req.target; i++) spawnOne(Math.random() * Math.min(5000, req.maxLifeMs));
  const statsTimer = setInterval(() => {
    let withVideo = 0;
    for (const v of alive) if (v.firstVideoMs > 0) withVideo++;
    send({ type: 'churn-stats', wallMs: now(), alive: alive.size, opened, failed, withVideo });
    if (now() >= endAt) {
      clearInterval(statsTimer);
      for (const v of alive) v.stop();
      alive.clear();
      send({ type: 'churn-done' });
    }
  }, 1000);
}

function stopAll(): void {
  for (const t of timers) clearTimeout(t);
  timers.clear();
  for (const tr of tracked.values()) tr.v.stop();
  tracked.clear();
  // Let the IPC channel flush, then leave.
  setTimeout(() => process.exit(0), 50);
}

process.on('message', (msg: LoadRequest) => {
  try {
    switch (msg.type) {
      case 'open':
        open(msg);
        break;
      case 'churn':
        churn(msg);
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
