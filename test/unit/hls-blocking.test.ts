// LL-HLS delivery directives (RFC 8216bis §6.2.5): parsing `_HLS_msn/_HLS_part/_HLS_skip` with
// validation, and when a blocking playlist reload can be answered.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isHaze } from '../helpers.js';
import { isReady, isTooFarAhead, parseBlockingRequest } from '../../src/containers/hls/playlist.js';
import { HazeError } from '../../src/util/errors.js';
import type { SegmentIndex } from '../../src/containers/hls/segment-index.js';

test('parseBlockingRequest reads the directives', () => {
  assert.deepEqual(parseBlockingRequest(''), {});
  assert.deepEqual(parseBlockingRequest('?tkn=abc'), {});
  assert.deepEqual(parseBlockingRequest('?_HLS_msn=12'), { msn: 12 });
  assert.deepEqual(parseBlockingRequest('_HLS_msn=12&_HLS_part=3&tkn=x'), { msn: 12, part: 3 });
  assert.deepEqual(parseBlockingRequest('_HLS_skip=YES'), { skip: 'YES' });
  assert.deepEqual(parseBlockingRequest(new URLSearchParams('_HLS_msn=0&_HLS_part=0&_HLS_skip=v2')), { msn: 0, part: 0, skip: 'v2' });
});

test('parseBlockingRequest refuses bad values with HAZE_ERR_INVALID_ARG (HTTP 400)', () => {
  for (const q of ['_HLS_msn=', '_HLS_msn=-1', '_HLS_msn=1.5', '_HLS_msn=abc', '_HLS_msn=0x10', '_HLS_msn=99999999999999999', '_HLS_msn=1&_HLS_msn=2', '_HLS_part=1', '_HLS_msn=1&_HLS_part=x', '_HLS_skip=yes', '_HLS_skip=NO', '_HLS_skip=']) {
    assert.throws(
      () => parseBlockingRequest(q),
      (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_INVALID_ARG' && e.status === 400,
      q,
    );
  }
});

test('fuzz: any query gives directives or a HazeError', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.constantFrom('_HLS_msn=', '_HLS_part=', '_HLS_skip=').chain((k) => fc.string().map((v) => k + v))), (q) => {
      try {
        const r = parseBlockingRequest(q);
        if (r.msn !== undefined) assert.ok(Number.isSafeInteger(r.msn) && r.msn >= 0);
        if (r.part !== undefined) assert.ok(r.msn !== undefined && Number.isSafeInteger(r.part));
      } catch (e) {
        assert.ok(isHaze(e), String(e));
      }
    }),
    { numRuns: 500 },
  );
});

const live: SegmentIndex = {
  segments: [
    { sequence: 5, startMs: 0, durationMs: 1000, uri: 'a', parts: [{ durationMs: 500, uri: 'a.0', independent: true }, { durationMs: 500, uri: 'a.1', independent: false }] },
    { sequence: 6, startMs: 1000, durationMs: 1000, uri: 'b' },
  ],
  pendingParts: [{ durationMs: 500, uri: 'c.0', independent: true }],
  ended: false,
};

test('isReady: complete segments and published parts answer at once, later ones wait', () => {
  assert.equal(isReady(live, 5), true);
  assert.equal(isReady(live, 6), true);
  assert.equal(isReady(live, 6, 9), true, 'any part of a complete segment');
  assert.equal(isReady(live, 7), false, 'segment 7 is still being cut');
  assert.equal(isReady(live, 7, 0), true, 'its first part is out');
  assert.equal(isReady(live, 7, 1), false);
  assert.equal(isReady(live, 8, 0), false);
  assert.equal(isReady({ ...live, ended: true }, 100), true, 'an ended playlist never blocks');
  assert.equal(isReady({ segments: [], ended: false, nextSequence: 3 }, 2), true);
  assert.equal(isReady({ segments: [], ended: false, nextSequence: 3 }, 3, 0), false);
  assert.equal(isTooFarAhead(live, 7), false);
  assert.equal(isTooFarAhead(live, 8), false, 'last segment 6 plus two');
  assert.equal(isTooFarAhead(live, 9), true);
  assert.equal(isTooFarAhead({ ...live, ended: true }, 9), false);
});
