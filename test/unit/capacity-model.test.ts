// The capacity model (stats/capacity-model.ts) on synthetic samples whose true costs are known:
// least squares recovers CPU per viewer and per Mbit/s when both vary apart, the viewers' CPU is
// spread over their Mbit/s when they move together, memory per viewer and per input Mbit/s;
// no viewers, too few samples or a negative fit give the documented defaults; the /proc parsers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CAPACITY_DEFAULTS, capacityFigures, leastSquares, parseProcPidRss, parseProcPidStat, SampleWindow, type CapacitySample } from '../../src/stats/capacity-model.js';

const MIB = 1024 * 1024;

/** A deterministic noise in [-1, 1]. */
function noise(i: number): number {
  const x = Math.sin(i * 12.9898) * 43758.5453;
  return (x - Math.floor(x)) * 2 - 1;
}

function sample(i: number, viewers: number, outMbit: number, inMbit: number, cpu: number, rss: number): CapacitySample {
  return { atMs: i * 5000, seconds: 5, cpu, rssBytes: rss, viewers, inputs: inMbit > 0 ? 1 : 0, outMbit, inMbit };
}

const near = (got: number, want: number, rel: number, what: string): void => assert.ok(Math.abs(got - want) <= Math.abs(want) * rel, `${what}: ${got} vs ${want}`);

test('no samples or no viewers: the defaults, and saying so', () => {
  const empty = capacityFigures([]);
  assert.deepEqual(empty.per_viewer, { cpu: CAPACITY_DEFAULTS.viewerCpu, mbit: 2, mem: CAPACITY_DEFAULTS.viewerMem, source: 'default' });
  assert.equal(empty.per_mbit_out.source, 'default');
  assert.equal(empty.per_stream_mbit.source, 'default');
  assert.equal(empty.per_stream_mbit.mem, 12.5 * MIB);
  assert.equal(empty.sample.seconds, 0);
  const idle = Array.from({ length: 20 }, (_, i) => sample(i, 0, 0, i < 10 ? 0 : 2, 0.02 + 0.001 * noise(i), 80 * MIB));
  const f = capacityFigures(idle);
  assert.equal(f.per_viewer.source, 'default');
  assert.equal(f.per_mbit_out.source, 'default');
  assert.equal(f.sample.viewers_avg, 0);
  assert.equal(f.sample.inputs_avg, 0.5);
  near(f.sample.cpu_avg, 0.02, 0.1, 'cpu_avg');
  assert.equal(f.sample.seconds, 100);
});

test('viewers and Mbit/s varying apart: both CPU costs recovered by least squares', () => {
  const s: CapacitySample[] = [];
  for (let i = 0; i < 60; i++) {
    const viewers = (i * 7) % 23;
    const mbitEach = [0.5, 2, 5][i % 3]!;
    const out = viewers * mbitEach;
    s.push(sample(i, viewers, out, 3, 0.03 + 0.002 * viewers + 0.001 * out + 0.0005 * noise(i), 100 * MIB + viewers * 1.5 * MIB + MIB * noise(i + 99)));
  }
  const f = capacityFigures(s);
  assert.equal(f.per_viewer.source, 'measured');
  // a viewer at the average rate: its fixed cost and its Mbit/s
  const withViewers = s.filter((x) => x.viewers > 0);
  const rate = withViewers.reduce((n, x) => n + x.outMbit / x.viewers, 0) / withViewers.length;
  near(f.per_viewer.mbit, rate, 0.001, 'Mbit/s per viewer');
  near(f.per_viewer.cpu, 0.002 + 0.001 * rate, 0.1, 'cpu per viewer');
  assert.equal(f.per_mbit_out.source, 'measured');
  near(f.per_mbit_out.cpu, 0.001, 0.15, 'cpu per Mbit/s');
  near(f.per_viewer.mem, 1.5 * MIB, 0.15, 'mem per viewer');
});

test('one stream (Mbit/s proportional to viewers): viewer CPU spread over their Mbit/s', () => {
  const s: CapacitySample[] = [];
  for (let i = 0; i < 30; i++) {
    const viewers = i < 10 ? 0 : i < 20 ? 4 : 8;
    s.push(sample(i, viewers, viewers * 2, 2, 0.05 + 0.004 * viewers + 0.0003 * noise(i), 90 * MIB));
  }
  const f = capacityFigures(s);
  near(f.per_viewer.cpu, 0.004, 0.1, 'cpu per viewer');
  assert.equal(f.per_viewer.mbit, 2);
  near(f.per_mbit_out.cpu, 0.002, 0.1, 'cpu per Mbit/s');
  assert.equal(f.per_mbit_out.source, 'measured');
  near(f.sample.viewers_avg, 4, 0.001, 'viewers_avg');
  near(f.sample.out_mbit_avg, 8, 0.001, 'out_mbit_avg');
});

test('the input held apart: a stream starting with the viewers does not count as theirs', () => {
  const s: CapacitySample[] = [];
  for (let i = 0; i < 40; i++) {
    // no input at first, then an input of 4 Mbit/s (costing 0.05 core), then viewers on it
    const inMbit = i < 10 ? 0 : 4 + 0.2 * noise(i + 7);
    const viewers = i < 20 ? 0 : (i % 5) + 1;
    s.push(sample(i, viewers, viewers * 4, inMbit, 0.01 + 0.0125 * inMbit + 0.003 * viewers + 0.0002 * noise(i), 60 * MIB + 10 * MIB * inMbit + 2 * MIB * viewers));
  }
  const f = capacityFigures(s);
  near(f.per_viewer.cpu, 0.003, 0.1, 'cpu per viewer');
  near(f.per_stream_mbit.mem, 10 * MIB, 0.1, 'mem per input Mbit/s');
  assert.equal(f.per_stream_mbit.source, 'measured');
  near(f.per_viewer.mem, 2 * MIB, 0.1, 'mem per viewer');
});

test('a negative fit and too few samples fall back to the defaults', () => {
  const falling = Array.from({ length: 20 }, (_, i) => sample(i, i % 5, (i % 5) * 2, 2, 0.05 - 0.002 * (i % 5), 80 * MIB - (i % 5) * MIB));
  const f = capacityFigures(falling);
  assert.equal(f.per_viewer.source, 'default');
  assert.equal(f.per_viewer.cpu, CAPACITY_DEFAULTS.viewerCpu);
  assert.equal(f.per_viewer.mem, CAPACITY_DEFAULTS.viewerMem);
  const two = [sample(0, 0, 0, 2, 0.01, 1), sample(1, 5, 10, 2, 0.03, 1)];
  assert.equal(capacityFigures(two).per_viewer.source, 'default');
});

test('leastSquares: exact fits, and no answer for a constant or duplicated predictor', () => {
  const x1 = [1, 2, 3, 4, 5, 6];
  const x2 = [3, 1, 4, 1, 5, 9];
  const y = x1.map((v, i) => 2 + 3 * v - 0.5 * x2[i]!);
  const fit = leastSquares(y, [x1, x2])!;
  assert.deepEqual(fit.map((v) => Math.round(v * 1e6) / 1e6), [2, 3, -0.5]);
  assert.equal(leastSquares(y, [x1, x1.map((v) => v * 2)]), undefined);
  assert.equal(leastSquares(y, [[1, 1, 1, 1, 1, 1]]), undefined);
  assert.equal(leastSquares([1, 2], [[1, 2]]), undefined);
});

test('/proc parsers and the bounded window', () => {
  const stat = '1234 (node (worker) x) S 1 1234 1234 0 -1 4194304 5000 0 0 0 250 75 0 0 20 0 11 0 100 1000000 5000 18446744073709551615';
  assert.equal(parseProcPidStat(stat), 325);
  assert.equal(parseProcPidStat('garbage'), undefined);
  assert.equal(parseProcPidRss('Name:\tnode\nVmPeak:\t 1000 kB\nVmRSS:\t   51200 kB\n'), 51200 * 1024);
  assert.equal(parseProcPidRss(''), undefined);
  const w = new SampleWindow(3);
  for (let i = 0; i < 10; i++) w.add(sample(i, 0, 0, 0, 0, 0));
  assert.deepEqual(w.all().map((s) => s.atMs), [35000, 40000, 45000]);
});

test('memory per input Mbit/s needs inputs coming or going, not a rate that jitters', () => {
  const s = Array.from({ length: 20 }, (_, i) => sample(i, 0, 0, 4 + noise(i), 0.02, 80 * MIB + 5 * MIB * noise(i)));
  assert.equal(capacityFigures(s).per_stream_mbit.source, 'default');
});

test('fuzz: /proc parsers take any text, the model any samples', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 400 }), (text) => {
      const t = parseProcPidStat(text);
      const r = parseProcPidRss(text);
      assert.ok(t === undefined || Number.isFinite(t));
      assert.ok(r === undefined || Number.isFinite(r));
    }),
    { numRuns: 300 },
  );
  const num = fc.double({ min: 0, max: 1e6, noNaN: true });
  const arb = fc.record({ atMs: fc.nat(), seconds: fc.double({ min: 0.1, max: 10, noNaN: true }), cpu: num, rssBytes: num, viewers: fc.nat(50), inputs: fc.nat(3), outMbit: num, inMbit: num });
  fc.assert(
    fc.property(fc.array(arb, { maxLength: 40 }), (samples) => {
      const f = capacityFigures(samples);
      for (const v of [f.per_viewer.cpu, f.per_viewer.mem, f.per_viewer.mbit, f.per_mbit_out.cpu, f.per_stream_mbit.mem, f.sample.cpu_avg]) assert.ok(Number.isFinite(v) && v >= 0, JSON.stringify(f));
    }),
    { numRuns: 200 },
  );
});
