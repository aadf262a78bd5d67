// Server figures from /proc (proc(5)): CPU time and resident memory of a process and all its
// descendants, so a master/worker server (nginx, Haze with --workers) is measured whole.
//
//   /proc/PID/stat:  pid (comm) state ppid ... utime(14) stime(15) ...  (clock ticks)
//   /proc/PID/statm: size resident ...                                    (pages)

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const clockTicks = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();
const pageBytes = ((): number => {
  try {
    return Number(execFileSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).trim()) || 4096;
  } catch {
    return 4096;
  }
})();

interface StatLine {
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): StatLine | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // comm may contain spaces and parentheses: fields resume after the last ')'.
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state): field k is f[k - 3].
  return { ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]) };
}

/** The pid and every live descendant of it. */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 0) continue;
    const st = readStat(pid);
    if (!st) continue;
    let list = children.get(st.ppid);
    if (!list) children.set(st.ppid, (list = []));
    list.push(pid);
  }
  const out: number[] = [];
  const todo = [rootPid];
  while (todo.length > 0 && out.length < 4096) {
    const pid = todo.pop()!;
    out.push(pid);
    for (const c of children.get(pid) ?? []) todo.push(c);
  }
  return out;
}

export interface TreeSample {
  /** Wall time of the sample, ms (performance.timeOrigin + performance.now()). */
  wallMs: number;
  /** utime + stime of the live processes of the tree, seconds. */
  cpuSec: number;
  /** Sum of resident set sizes, KiB (shared pages of forked workers count once per process). */
  rssKb: number;
  pids: number[];
}

export function sampleTree(rootPid: number): TreeSample {
  const pids = processTree(rootPid);
  let ticks = 0;
  let rssPages = 0;
  const alive: number[] = [];
  for (const pid of pids) {
    const st = readStat(pid);
    if (!st) continue;
    ticks += st.cpuTicks;
    try {
      rssPages += Number(readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')[1]);
    } catch {
      continue;
    }
    alive.push(pid);
  }
  return { wallMs: performance.timeOrigin + performance.now(), cpuSec: ticks / clockTicks, rssKb: (rssPages * pageBytes) / 1024, pids: alive };
}

/**
 * CPU seconds used by the tree between two samples. A process that was in both samples counts
 * its own difference; the sums would be wrong when a worker dies in between (its time leaves
 * the sum), so the per-pid difference is used.
 */
export class TreeCpuMeter {
  private readonly start = new Map<number, number>();
  private startWall = 0;

  constructor(private readonly rootPid: number) {}

  begin(): void {
    this.start.clear();
    for (const pid of processTree(this.rootPid)) {
      const st = readStat(pid);
      if (st) this.start.set(pid, st.cpuTicks);
    }
    this.startWall = performance.timeOrigin + performance.now();
  }

  /** CPU seconds and wall seconds since begin(). */
  end(): { cpuSec: number; wallSec: number } {
    let ticks = 0;
    for (const pid of processTree(this.rootPid)) {
      const st = readStat(pid);
      if (st) ticks += st.cpuTicks - (this.start.get(pid) ?? 0);
    }
    return { cpuSec: ticks / clockTicks, wallSec: (performance.timeOrigin + performance.now() - this.startWall) / 1000 };
  }
}

export function machineInfo(): { nproc: number; model: string; kernel: string } {
  let model = 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) model = m[1]!.trim();
  } catch {
    // keep 'unknown'
  }
  let kernel = '';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // no kernel line
  }
  let nproc = 0;
  try {
    nproc = Number(execFileSync('nproc', { encoding: 'utf8' }).trim());
  } catch {
    nproc = 0;
  }
  return { nproc, model, kernel };
}
