// The machine's vitals for the Prometheus endpoint and the load balancer (reference/mistserver.md
// §7.3: mist_cpu, mist_mem_*, mist_shm_*, stat_bw_total), read from Linux's /proc:
// - CPU: /proc/stat's first line; use = busy jiffies / all jiffies between two samples.
// - Memory: /proc/meminfo; used = MemTotal - MemAvailable (what `free` calls used), shm used =
//   Shmem. MistServer subtracts MemFree, Buffers and Cached instead; MemAvailable is the kernel's
//   own estimate and also counts reclaimable slab.
// - Shared memory total: the size of the /dev/shm file system.
// - Network: /proc/net/dev summed over every interface but `lo`.
// Every read is bounded; a missing file (another OS, a sandbox) gives zeros, never a throw.

import fs from 'node:fs/promises';
import type { MachineVitals } from './snapshot.js';

/** /proc/net/dev has a ~130-byte line per interface (hosts with many containers have hundreds). */
const MAX_PROC_BYTES = 256 * 1024;
/** Only /proc/stat's first line is used; the rest grows with the CPU and interrupt count. */
const MAX_STAT_BYTES = 4096;
/** /proc/meminfo is about 1.5 KiB. */
const MAX_MEMINFO_BYTES = 64 * 1024;

/** Up to `limit` bytes (whole lines) of a file whose size stat() cannot tell (/proc reports 0); '' if unreadable. */
export async function readBounded(file: string, limit = MAX_PROC_BYTES): Promise<string> {
  let fh: fs.FileHandle | undefined;
  try {
    fh = await fs.open(file, 'r');
    const buf = Buffer.alloc(limit);
    let got = 0;
    while (got < limit) {
      const { bytesRead } = await fh.read(buf, got, limit - got, null);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    // a file cut at the limit ends in a partial line, whose numbers would be wrong: drop it
    const end = got === limit ? buf.lastIndexOf(0x0a, got - 1) + 1 : got;
    return buf.toString('latin1', 0, end);
  } catch {
    return '';
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

export interface CpuTimes {
  busy: number;
  total: number;
}

/**
 * The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal guest
 * guest_nice (jiffies). guest and guest_nice are already inside user and nice, so they are not
 * added again; idle and iowait are the time the CPUs had nothing to run.
 */
export function parseProcStat(text: string): CpuTimes | undefined {
  const line = text.split('\n', 1)[0] ?? '';
  const m = /^cpu\s+(.*)$/.exec(line);
  if (!m) return undefined;
  const f = m[1]!.trim().split(/\s+/).map(Number);
  if (f.length < 4 || f.some((x) => !Number.isFinite(x))) return undefined;
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = f[3]! + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** /proc/meminfo's fields in KiB, by name. */
export function parseMeminfo(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([\w()]+):\s+(\d+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/**
 * /proc/net/dev summed over every interface except loopback. Haze names bytes from the server's
 * view as clients see it (snapshot.ts ByteCounts: up = received from clients, down = sent to
 * them), so up = the receive bytes column and down = the transmit bytes column. (MistServer's
 * stat_bw_total has them the other way round.)
 */
export function parseNetDev(text: string): { up: number; down: number } {
  let up = 0;
  let down = 0;
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const iface = line.slice(0, colon).trim();
    if (iface === 'lo' || iface === '' || iface.includes('|')) continue;
    // receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes ...
    const f = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    if (f.length < 9 || !Number.isFinite(f[0]) || !Number.isFinite(f[8])) continue;
    up += f[0]!;
    down += f[8]!;
  }
  return { up, down };
}

async function shmTotalKiB(dir: string): Promise<number> {
  try {
    const st = await fs.statfs(dir);
    return Math.floor((st.blocks * st.bsize) / 1024);
  } catch {
    return 0;
  }
}

export interface MachineSamplerPaths {
  procStat: string;
  meminfo: string;
  netDev: string;
  shmDir: string;
}

const LINUX_PATHS: MachineSamplerPaths = {
  procStat: '/proc/stat',
  meminfo: '/proc/meminfo',
  netDev: '/proc/net/dev',
  shmDir: '/dev/shm',
};

/**
 * Samples the machine. CPU use is measured between this sample and the previous one, so the
 * first sample gives the average since boot; the controller samples once a second.
 */
export class MachineSampler {
  private prevCpu: CpuTimes = { busy: 0, total: 0 };
  private readonly paths: MachineSamplerPaths;

  /** `paths` replaces the /proc locations (tests and containers with a bind-mounted /proc). */
  constructor(paths: Partial<MachineSamplerPaths> = {}) {
    this.paths = { ...LINUX_PATHS, ...paths };
  }

  async sample(): Promise<MachineVitals> {
    const [statText, memText, netText, shmTotal] = await Promise.all([
      readBounded(this.paths.procStat, MAX_STAT_BYTES),
      readBounded(this.paths.meminfo, MAX_MEMINFO_BYTES),
      readBounded(this.paths.netDev),
      shmTotalKiB(this.paths.shmDir),
    ]);
    return {
      cpuTenths: this.cpuTenths(parseProcStat(statText)),
      ...memory(parseMeminfo(memText)),
      shmTotalKiB: shmTotal,
      nic: parseNetDev(netText),
    };
  }

  private cpuTenths(now: CpuTimes | undefined): number {
    if (!now) return 0;
    const dTotal = now.total - this.prevCpu.total;
    const dBusy = now.busy - this.prevCpu.busy;
    this.prevCpu = now;
    // no jiffy passed (two samples within 10 ms) or counters went back (a checkpointed VM)
    if (dTotal <= 0 || dBusy < 0) return 0;
    return Math.min(1000, Math.round((dBusy * 1000) / dTotal));
  }
}

function memory(mi: Map<string, number>): Pick<MachineVitals, 'memTotalKiB' | 'memUsedKiB' | 'shmUsedKiB'> {
  const total = mi.get('MemTotal') ?? 0;
  // kernels before 3.14 have no MemAvailable: free + buffers + page cache is its old approximation
  const available = mi.get('MemAvailable') ?? (mi.get('MemFree') ?? 0) + (mi.get('Buffers') ?? 0) + (mi.get('Cached') ?? 0);
  return {
    memTotalKiB: total,
    memUsedKiB: Math.max(0, total - available),
    shmUsedKiB: mi.get('Shmem') ?? 0,
  };
}
