// Timestamps between a stream and a stream process (processes/time-map.ts): the written times
// start at the margin, a process that keeps them and one that restarts them at 0 both map back
// onto the stream's timeline, output tracks never go back in time and video resumes at a
// keyframe; a restarted process's input starts at the first keyframe after what was delivered.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { CatchUpGate, INPUT_MARGIN_MS, InputGate, OutputGate, TimeMap } from '../../src/processes/time-map.js';

describe('TimeMap', () => {
  it('writes the first packet at the margin and keeps the spacing', () => {
    const m = new TimeMap();
    assert.equal(m.fromProcess(5), undefined, 'nothing written yet');
    assert.equal(m.toProcess(73_000), INPUT_MARGIN_MS);
    assert.equal(m.toProcess(73_040), INPUT_MARGIN_MS + 40);
    // a packet a little older than the first one stays positive
    assert.equal(m.toProcess(72_990), INPUT_MARGIN_MS - 10);
  });

  it('a process that keeps the timestamps (ffmpeg -copyts, cat) maps back exactly', () => {
    const m = new TimeMap();
    m.toProcess(73_000);
    // an encoder's output starts a little before its input (priming)
    assert.equal(m.fromProcess(INPUT_MARGIN_MS - 13), 72_987);
    assert.equal(m.outputClock, 'kept');
    assert.equal(m.fromProcess(INPUT_MARGIN_MS + 5000), 78_000);
  });

  it('a process that restarts its clock at 0 is mapped from the first packet written', () => {
    const m = new TimeMap();
    m.toProcess(120_500);
    assert.equal(m.fromProcess(0), 120_500);
    assert.equal(m.outputClock, 'reset');
    assert.equal(m.fromProcess(2040), 122_540);
    // decided once: a later output near the margin is still on the reset clock
    assert.equal(m.fromProcess(INPUT_MARGIN_MS), 120_500 + INPUT_MARGIN_MS);
  });

  it('property: for any stream start and offset, kept and reset outputs land on the input times', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.array(fc.integer({ min: 0, max: 400_000 }), { minLength: 1, maxLength: 50 }), (start, deltas) => {
        const kept = new TimeMap();
        const reset = new TimeMap();
        const written = deltas.map((d) => kept.toProcess(start + d));
        for (const d of deltas) reset.toProcess(start + d);
        deltas.forEach((d, i) => {
          assert.equal(kept.fromProcess(written[i]!), start + d);
          // the reset clock counts from the first packet written, which is at the margin
          assert.equal(reset.fromProcess(written[i]! - INPUT_MARGIN_MS), start + d);
        });
        assert.equal(kept.outputClock, 'kept');
        assert.equal(reset.outputClock, 'reset');
      }),
      { numRuns: 300 },
    );
  });
});

describe('OutputGate', () => {
  it('audio: passes increasing times, drops repeats and older ones', () => {
    const g = new OutputGate(false, 1000);
    assert.deepEqual([1000, 1020, 1010, 1020, 1040].map((t) => g.pass(t, true)), [false, true, false, false, true]);
    assert.equal(g.newestMs, 1040);
    assert.equal(new OutputGate(false).pass(-5, true), false, 'never before the stream start');
  });

  it('video: starts at a keyframe, and after a dropped frame waits for the next keyframe', () => {
    const g = new OutputGate(true, 500);
    const seq: [number, boolean][] = [
      [520, false], // not a keyframe: a decoder could not start here
      [540, true],
      [560, false],
      [560, false], // a repeat is dropped...
      [580, false], // ...and what follows may refer to it
      [600, true],
      [620, false],
    ];
    assert.deepEqual(seq.map(([t, k]) => g.pass(t, k)), [false, true, true, false, false, true, true]);
  });
});

describe('InputGate', () => {
  it('a first run starts at the first keyframe of its sync track', () => {
    const g = new InputGate(-Infinity, 1);
    assert.deepEqual(
      [
        [2, 0, true], // audio before the video keyframe
        [1, 10, false],
        [1, 40, true],
        [2, 30, true], // audio after it: everything goes now
        [1, 80, false],
      ].map(([id, t, k]) => g.pass(id as number, t as number, k as boolean)),
      [false, false, true, true, true],
    );
  });

  it('a restart starts at the first sync keyframe after what its outputs reached', () => {
    const g = new InputGate(5000, 7);
    assert.equal(g.pass(7, 4000, true), false);
    assert.equal(g.pass(7, 5000, true), false);
    assert.equal(g.pass(7, 5020, false), false);
    assert.equal(g.pass(7, 5040, true), true);
    assert.equal(g.pass(7, 5060, false), true);
  });
});

describe('CatchUpGate', () => {
  it('holds a burst back and lets output through once it has kept pace for the window', () => {
    const g = new CatchUpGate(500);
    const out: boolean[] = [];
    // a 1.5 s backlog comes out in 50 ms...
    for (let i = 0; i < 75; i++) out.push(g.pass(1000 + i * 0.7, 10_000 + i * 20));
    // ...then 5 packets every 100 ms (100 ms clusters), in pace with the clock
    let media = 11_500;
    for (let wall = 1150; wall <= 2000; wall += 100) for (let k = 0; k < 5; k++) out.push(g.pass(wall, (media += 20)));
    const firstPass = out.indexOf(true);
    assert.ok(firstPass > 75, 'nothing of the burst');
    // the first packet 500 ms after the first output (wall 1550), when the window shows the pace
    assert.equal(firstPass, 75 + 5 * 4);
    assert.ok(out.slice(firstPass).every(Boolean), 'then everything');
    assert.equal(g.caughtUp, true);
  });

  it('output that keeps pace from the start joins after one window', () => {
    const g = new CatchUpGate(300);
    const passes = [0, 100, 200, 300, 400].map((w) => g.pass(w, 5000 + w));
    assert.deepEqual(passes, [false, false, false, true, true]);
  });
});
