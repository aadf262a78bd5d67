// The `capacity` API call (issue 8 point 8, the UI's capacity planner): what this machine has
// (cores, memory, the fastest network interface) and what a viewer, a Mbit/s sent and a Mbit/s
// of input cost Haze here, measured. The sampler rides on the statistics round (stats-collector
// calls `tick` once a second; a sample is taken every HAZE_CAPACITY_SAMPLE_MS, default 5 s):
// CPU time and RSS of Haze's own processes (angel, controller, workers: the pid files of the
// run directory) beside the viewers, inputs and bytes of the session table. The math is in
// stats/capacity-model.ts.

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { capacityFigures, parseProcPidRss, parseProcPidStat, SampleWindow, type CapacityFigures } from '../stats/capacity-model.js';
import { parseMeminfo, readBounded } from '../stats/machine.js';
import type { ByteCounts, SessionCounts } from '../stats/snapshot.js';
import type { SessionTable } from '../stats/session-table.js';
import type { ApiCall } from './api-calls.js';
import { isPlainObject } from './default-config.js';

/** Linux's USER_HZ: /proc/PID/stat counts CPU time in 1/100 s on every architecture Node runs on. */
const CLOCK_TICKS = 100;
const DEFAULT_SAMPLE_MS = 5000;
/** The window: 10 minutes of samples, at most 600 samples whatever the interval. */
const WINDOW_MS = 10 * 60 * 1000;
const MAX_SAMPLES = 600;
/** Worker pid files looked at (run/worker-N.pid). */
const MAX_PID_FILES = 256;

/** The session figures a sample needs (the session table's serverFigures). */
export interface ServerFigures {
  current: SessionCounts;
  /** Bytes of every session so far: up = received from clients (inputs), down = sent. */
  bytes: ByteCounts;
}

/**
 * The figures of the session table with viewers and inputs counted as connections: a session
 * bundles a host's connections to one stream over one protocol (sessionViewerMode), but each
 * connection costs the server; a current session with none open (HLS between requests) is one.
 */
export function connectionFigures(table: SessionTable, nowMs: number): ServerFigures {
  const current: SessionCounts = { viewers: 0, inputs: 0, outputs: 0, unspecified: 0 };
  for (const s of table.live.values()) {
    if (!table.isCurrent(s, nowMs)) continue;
    const n = Math.max(1, s.open);
    if (s.kind === 'viewer') current.viewers += n;
    else if (s.kind === 'input') current.inputs += n;
    else if (s.kind === 'output') current.outputs += n;
    else current.unspecified += n;
  }
  return { current, bytes: table.serverFigures(nowMs).bytes };
}

export interface CapacityAnswer extends CapacityFigures {
  cores: number;
  mem_total: number;
  mem_available: number;
  nic_mbit: number | null;
}

/** The sample interval: HAZE_CAPACITY_SAMPLE_MS (tests use a short one), 200 ms at the least. */
export function sampleIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env['HAZE_CAPACITY_SAMPLE_MS']);
  return Number.isFinite(v) && v > 0 ? Math.max(200, v) : DEFAULT_SAMPLE_MS;
}

export class CapacitySampler {
  readonly window: SampleWindow;
  private last: { atMs: number; ticks: Map<number, number>; bytes: ByteCounts } | undefined;
  private busy = false;

  constructor(
    private readonly runDir: string,
    readonly intervalMs = sampleIntervalMs(),
  ) {
    this.window = new SampleWindow(Math.min(MAX_SAMPLES, Math.max(10, Math.round(WINDOW_MS / intervalMs))));
  }

  /** Called on every statistics round; samples when the interval has passed. Never throws. */
  tick(figures: () => ServerFigures): void {
    const now = Date.now();
    if (this.busy || (this.last && now - this.last.atMs < this.intervalMs)) return;
    this.busy = true;
    void this.sample(now, figures())
      .catch(() => undefined)
      .finally(() => (this.busy = false));
  }

  private async sample(now: number, f: ServerFigures): Promise<void> {
    const ticks = new Map<number, number>();
    let rss = 0;
    await Promise.all(
      (await this.pids()).map(async (pid) => {
        const [stat, status] = await Promise.all([readBounded(`/proc/${pid}/stat`, 4096), readBounded(`/proc/${pid}/status`, 16 * 1024)]);
        const t = parseProcPidStat(stat);
        if (t === undefined) return; // gone
        ticks.set(pid, t);
        rss += parseProcPidRss(status) ?? 0;
      }),
    );
    const prev = this.last;
    this.last = { atMs: now, ticks, bytes: { ...f.bytes } };
    if (!prev) return;
    const seconds = (now - prev.atMs) / 1000;
    if (seconds <= 0) return;
    let used = 0;
    // a process not seen last time (a restarted worker) counts from the next sample on
    for (const [pid, t] of ticks) {
      const before = prev.ticks.get(pid);
      if (before !== undefined && t >= before) used += t - before;
    }
    // figures of a stream that went away leave the sums: no negative rate
    const rate = (now: number, before: number): number => Math.max(0, ((now - before) * 8) / seconds / 1e6);
    this.window.add({
      atMs: now,
      seconds,
      cpu: used / CLOCK_TICKS / seconds,
      rssBytes: rss,
      viewers: f.current.viewers,
      inputs: f.current.inputs,
      outMbit: rate(f.bytes.down, prev.bytes.down),
      inMbit: rate(f.bytes.up, prev.bytes.up),
    });
  }

  /** The angel, this controller and the workers with a pid file. */
  private async pids(): Promise<number[]> {
    const out = new Set<number>([process.pid]);
    let names: string[] = [];
    try {
      names = (await fs.readdir(this.runDir)).filter((n) => /^(angel|worker-\d+)\.pid$/.test(n)).slice(0, MAX_PID_FILES);
    } catch {
      // no run directory (yet): the controller alone
    }
    await Promise.all(
      names.map(async (n) => {
        const pid = Number((await readBounded(path.join(this.runDir, n), 64)).trim());
        if (Number.isSafeInteger(pid) && pid > 0) out.add(pid);
      }),
    );
    return [...out];
  }

  answer(): Promise<CapacityAnswer> {
    return capacityAnswer(this.window.all());
  }
}

/** The fastest interface that is up (loopback excepted), Mbit/s; null when none tells its speed. */
export async function nicMbit(classNet = '/sys/class/net'): Promise<number | null> {
  let names: string[];
  try {
    names = (await fs.readdir(classNet)).filter((n) => n !== 'lo').slice(0, 256);
  } catch {
    return null;
  }
  let best: number | null = null;
  await Promise.all(
    names.map(async (n) => {
      const [state, speed] = await Promise.all([readBounded(path.join(classNet, n, 'operstate'), 64), readBounded(path.join(classNet, n, 'speed'), 64)]);
      const mbit = Number(speed.trim());
      // virtual interfaces answer -1 or refuse the read (EINVAL): their speed is unknown
      if (state.trim() !== 'up' || !Number.isFinite(mbit) || mbit <= 0 || speed.trim() === '') return;
      if (best === null || mbit > best) best = mbit;
    }),
  );
  return best;
}

export async function capacityAnswer(samples: Parameters<typeof capacityFigures>[0]): Promise<CapacityAnswer> {
  const [mem, nic] = await Promise.all([readBounded('/proc/meminfo', 64 * 1024).then(parseMeminfo), nicMbit()]);
  return {
    cores: os.availableParallelism?.() ?? os.cpus().length,
    mem_total: (mem.get('MemTotal') ?? Math.round(os.totalmem() / 1024)) * 1024,
    mem_available: (mem.get('MemAvailable') ?? Math.round(os.freemem() / 1024)) * 1024,
    nic_mbit: nic,
    ...capacityFigures(samples),
  };
}

const capacity: ApiCall = {
  name: 'capacity',
  async run(arg, c) {
    if (arg !== true && !isPlainObject(arg)) {
      c.errors.push('capacity: expected true');
      return;
    }
    return { capacity: await (c.host.capacity ? c.host.capacity.answer() : capacityAnswer([])) };
  },
};

export const CAPACITY_CALLS: readonly ApiCall[] = [capacity];
