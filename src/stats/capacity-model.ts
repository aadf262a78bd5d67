// What one more viewer (or one more Mbit/s sent, or one more Mbit/s of input) costs this server,
// from samples of Haze's own CPU time and memory taken beside its session figures (the API's
// `capacity`, issue 8 point 8: the seeds' hardware calculator with measured figures). Pure math:
// the controller's sampler (controller/api-capacity.ts) reads /proc and hands the samples in.
//
// CPU: least squares cpu = base + a*viewers + b*out_mbit when viewers and Mbit/s out both vary
// and are not (nearly) proportional to each other; otherwise the CPU above the idle baseline
// (the samples without viewers, or the intercept of cpu = base + a*viewers) is attributed to
// the viewers, and the cost per Mbit/s follows from the average Mbit/s per viewer. Memory per
// viewer and per input Mbit/s the same way from the summed RSS. A figure the samples cannot give
// (no viewers yet, no input, a fit that comes out negative) is the documented default, and says so.

/** One sample over one interval: averages of the interval (cpu, Mbit/s) and counts at its end. */
export interface CapacitySample {
  /** Unix ms at the end of the interval. */
  atMs: number;
  /** Interval length, seconds. */
  seconds: number;
  /** CPU time of Haze's processes over the interval / interval length (1 = one core busy). */
  cpu: number;
  /** Summed resident memory of Haze's processes, bytes. */
  rssBytes: number;
  viewers: number;
  inputs: number;
  /** Media sent to viewers and pushes / received from inputs, Mbit/s (10^6 bit/s). */
  outMbit: number;
  inMbit: number;
}

export type FigureSource = 'measured' | 'default';

export interface CapacityFigures {
  /**
   * A viewer receiving `mbit` Mbit/s costs `cpu` of a core; one receiving R Mbit/s costs about
   * cpu + (R - mbit) * per_mbit_out.cpu.
   */
  per_viewer: { cpu: number; mem: number; mbit: number; source: FigureSource };
  per_mbit_out: { cpu: number; source: FigureSource };
  per_stream_mbit: { mem: number; source: FigureSource };
  sample: { seconds: number; viewers_avg: number; inputs_avg: number; out_mbit_avg: number; cpu_avg: number };
}

const MIB = 1024 * 1024;
const round = (v: number, digits: number): number => Number(v.toPrecision(digits));

/**
 * The defaults when nothing was measured. Memory: the seeds' worst case (MistServer's hardware
 * requirements post: 12.5 MB per Mbit/s of incoming stream, 2 MB per connection; it counts MB
 * in steps of 1024). CPU: bench/results/latest.md, Haze HTTP-FLV and RTMP at 100-1000 viewers
 * of a 2 Mbit/s stream on this kind of machine: about 1 CPU ms per second per viewer, so
 * 0.001 core a viewer and 0.0005 core per Mbit/s sent.
 */
export const CAPACITY_DEFAULTS = {
  viewerCpu: 0.001,
  /** The bench's viewers received 2 Mbit/s. */
  viewerMbit: 2,
  viewerMem: 2 * MIB,
  mbitOutCpu: 0.0005,
  streamMbitMem: 12.5 * MIB,
} as const;

/** The spread (standard deviation / mean) of the Mbit/s per viewer above which they are told apart. */
const RATE_SPREAD = 0.25;
/** Fewer samples than this give the defaults. */
const MIN_SAMPLES = 3;

function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length;
}

function variance(xs: readonly number[]): number {
  const m = mean(xs);
  return mean(xs.map((x) => (x - m) ** 2));
}

/**
 * Least squares y = c0 + c1*x1 + ... (normal equations, Gaussian elimination with pivoting).
 * undefined when the columns are (nearly) dependent: a predictor that does not vary, or two
 * that move together, cannot be told apart.
 */
export function leastSquares(ys: readonly number[], xs: readonly (readonly number[])[]): number[] | undefined {
  const n = ys.length;
  const k = xs.length + 1;
  if (n < k + 1) return undefined;
  // centre and scale each predictor, so the conditioning test does not depend on units
  const means = xs.map((col) => mean(col));
  const scales = xs.map((col) => Math.sqrt(variance(col)));
  if (scales.some((s) => !(s > 1e-9))) return undefined;
  const z = xs.map((col, j) => col.map((v) => (v - means[j]!) / scales[j]!));
  const ym = mean(ys);
  const m = k - 1;
  const a: number[][] = Array.from({ length: m }, () => new Array<number>(m + 1).fill(0));
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < m; r++) {
      for (let c = 0; c < m; c++) a[r]![c]! += z[r]![i]! * z[c]![i]!;
      a[r]![m]! += z[r]![i]! * (ys[i]! - ym);
    }
  }
  for (let r = 0; r < m; r++) for (let c = 0; c <= m; c++) a[r]![c]! /= n;
  // standardized columns: the diagonal is 1; a pivot near 0 means a column is a combination of others
  for (let col = 0; col < m; col++) {
    let best = col;
    for (let r = col + 1; r < m; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[best]![col]!)) best = r;
    if (Math.abs(a[best]![col]!) < 0.05) return undefined;
    [a[col], a[best]] = [a[best]!, a[col]!];
    for (let r = 0; r < m; r++) {
      if (r === col) continue;
      const f = a[r]![col]! / a[col]![col]!;
      for (let c = col; c <= m; c++) a[r]![c]! -= f * a[col]![c]!;
    }
  }
  const slopes = a.map((row, j) => row[m]! / row[j]! / scales[j]!);
  const intercept = ym - slopes.reduce((s, b, j) => s + b * means[j]!, 0);
  const out = [intercept, ...slopes];
  return out.every(Number.isFinite) ? out : undefined;
}

type Column = (s: CapacitySample) => number;

/**
 * The cost of one unit of `x` in `y`: the first fit that works with one of the sets of other
 * predictors held apart (tried in order), else what is above the baseline at x = 0.
 */
function marginal(samples: readonly CapacitySample[], y: Column, x: Column, tries: Column[][]): number | undefined {
  const ys = samples.map(y);
  const xs = samples.map(x);
  if (Math.max(...xs) <= 0) return undefined;
  for (const extra of [...tries, []]) {
    const fit = leastSquares(ys, [xs, ...extra.map((f) => samples.map(f))]);
    if (fit && fit[1]! > 0) return fit[1];
  }
  // x did not vary (or the fit is noise): what is above the samples without x, per unit of x
  const idle = samples.filter((s) => x(s) <= 0);
  const busy = samples.filter((s) => x(s) > 0);
  if (idle.length === 0) return undefined;
  const per = (mean(busy.map(y)) - mean(idle.map(y))) / mean(busy.map(x));
  return per > 0 ? per : undefined;
}

/** The figures the samples give, the defaults where they give none. */
export function capacityFigures(samples: readonly CapacitySample[]): CapacityFigures {
  const seconds = samples.reduce((a, s) => a + s.seconds, 0);
  const weighted = (f: (s: CapacitySample) => number): number => (seconds > 0 ? samples.reduce((a, s) => a + f(s) * s.seconds, 0) / seconds : 0);
  const sample = {
    seconds: Math.round(seconds * 10) / 10,
    viewers_avg: round(weighted((s) => s.viewers), 4),
    inputs_avg: round(weighted((s) => s.inputs), 4),
    out_mbit_avg: round(weighted((s) => s.outMbit), 4),
    cpu_avg: round(weighted((s) => s.cpu), 4),
  };
  const enough = samples.length >= MIN_SAMPLES;
  const viewers = (s: CapacitySample): number => s.viewers;
  const out = (s: CapacitySample): number => s.outMbit;
  const inMbit = (s: CapacitySample): number => s.inMbit;
  const cpu = (s: CapacitySample): number => s.cpu;
  const rss = (s: CapacitySample): number => s.rssBytes;
  // the Mbit/s each viewer received, on average over the samples with viewers
  const withViewers = samples.filter((s) => s.viewers > 0);
  const rates = withViewers.map((s) => s.outMbit / s.viewers);
  const mbitPerViewer = mean(rates);
  // viewers of clearly different rates (not one stream's rate jittering) can tell the two costs apart
  const ratesVary = mbitPerViewer > 0 && Math.sqrt(variance(rates)) / mbitPerViewer > RATE_SPREAD;
  let cpuViewer: number | undefined;
  let cpuMbit: number | undefined;
  if (enough && withViewers.length > 0) {
    // viewers and Mbit/s apart (the input's own cost held apart where it varies): a fixed cost
    // per connection and one per Mbit/s
    const ys = samples.map(cpu);
    const cols = [samples.map(viewers), samples.map(out)];
    const fit = ratesVary ? (leastSquares(ys, [...cols, samples.map(inMbit)]) ?? leastSquares(ys, cols)) : undefined;
    if (fit && fit[2]! > 0 && fit[1]! + fit[2]! * mbitPerViewer > 0) {
      cpuMbit = fit[2]!;
      cpuViewer = Math.max(0, fit[1]!) + cpuMbit * mbitPerViewer;
    } else {
      // they moved together (one stream): the viewers' CPU above the baseline, spread over
      // their Mbit/s as well (a viewer of twice the rate costs about twice)
      cpuViewer = marginal(samples, cpu, viewers, [[inMbit]]);
      if (cpuViewer !== undefined && mbitPerViewer > 0) cpuMbit = cpuViewer / mbitPerViewer;
    }
  }
  const memViewer = enough ? marginal(samples, rss, viewers, [[inMbit]]) : undefined;
  // an input's rate jitters by itself; only inputs coming and going show what a stream holds
  const inputCounts = samples.map((s) => s.inputs);
  const inputsVary = inputCounts.length > 0 && Math.max(...inputCounts) > Math.min(...inputCounts);
  const memStream = enough && inputsVary ? marginal(samples, rss, inMbit, [[viewers]]) : undefined;
  return {
    per_viewer: {
      cpu: round(cpuViewer ?? CAPACITY_DEFAULTS.viewerCpu, 4),
      mbit: round(cpuViewer !== undefined ? mbitPerViewer : CAPACITY_DEFAULTS.viewerMbit, 4),
      mem: Math.round(memViewer ?? CAPACITY_DEFAULTS.viewerMem),
      source: cpuViewer !== undefined ? 'measured' : 'default',
    },
    per_mbit_out: { cpu: round(cpuMbit ?? CAPACITY_DEFAULTS.mbitOutCpu, 4), source: cpuMbit !== undefined ? 'measured' : 'default' },
    per_stream_mbit: { mem: Math.round(memStream ?? CAPACITY_DEFAULTS.streamMbitMem), source: memStream !== undefined ? 'measured' : 'default' },
    sample,
  };
}

/** A bounded window of samples: the newest `max` (the controller keeps 10 minutes of 5 s samples). */
export class SampleWindow {
  private readonly items: CapacitySample[] = [];
  constructor(readonly max = 120) {}
  add(s: CapacitySample): void {
    this.items.push(s);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
  }
  all(): readonly CapacitySample[] {
    return this.items;
  }
}

/** utime + stime (clock ticks) of /proc/PID/stat; the command name may hold spaces and parentheses. */
export function parseProcPidStat(text: string): number | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  // after "pid (comm) ": state is field 3, utime field 14, stime field 15
  const f = text.slice(close + 2).trim().split(/\s+/);
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  return Number.isFinite(utime) && Number.isFinite(stime) ? utime + stime : undefined;
}

/** VmRSS of /proc/PID/status in bytes. */
export function parseProcPidRss(text: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}
