// A fixed-bucket latency histogram: constant memory, O(buckets) percentiles, and snapshots
// that can be subtracted to get the distribution of a time window.

/** Bucket upper bounds in microseconds: 10 µs steps to 100 µs, then coarser up to 1 s. */
const BOUNDS_US: readonly number[] = (() => {
  const b: number[] = [];
  for (let v = 10; v <= 100; v += 10) b.push(v);
  for (let v = 150; v <= 1000; v += 50) b.push(v);
  for (let v = 1500; v <= 10_000; v += 500) b.push(v);
  for (let v = 15_000; v <= 100_000; v += 5000) b.push(v);
  for (let v = 200_000; v <= 1_000_000; v += 100_000) b.push(v);
  return b;
})();

export class LatencyHistogram {
  /** counts[i]: samples <= BOUNDS_US[i] (and above the previous bound); the last slot is > 1 s. */
  readonly counts = new Array<number>(BOUNDS_US.length + 1).fill(0);

  recordMs(ms: number): void {
    const us = ms * 1000;
    let lo = 0;
    let hi = BOUNDS_US.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (us <= BOUNDS_US[mid]!) hi = mid;
      else lo = mid + 1;
    }
    this.counts[lo]!++;
  }

  snapshot(): number[] {
    return this.counts.slice();
  }
}

/** The `p`-quantile (0..1) in ms of a snapshot (or a difference of two), as its bucket's upper bound; NaN if empty. */
export function quantileMs(counts: readonly number[], p: number): number {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  const rank = Math.ceil(p * total);
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    seen += counts[i]!;
    if (seen >= rank) return i < BOUNDS_US.length ? BOUNDS_US[i]! / 1000 : Infinity;
  }
  return Infinity;
}
