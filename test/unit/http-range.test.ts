// Byte ranges of the media server's complete bodies (RFC 9110 §14.1.2, §14.4, §15.3.7):
// single ranges only, suffix ranges, clamping to the body, 416 past the end.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { byteRange } from '../../src/protocols/http/media-server.js';

test('single byte ranges', () => {
  assert.equal(byteRange(undefined, 100), undefined);
  assert.deepEqual(byteRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(byteRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(byteRange('bytes=90-500', 100), { start: 90, end: 99 });
  assert.deepEqual(byteRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(byteRange('bytes=-500', 100), { start: 0, end: 99 });
  assert.equal(byteRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(byteRange('bytes=-0', 100), 'unsatisfiable');
  // not understood or several ranges: the whole body (a server may ignore Range)
  assert.equal(byteRange('bytes=5-1', 100), undefined);
  assert.equal(byteRange('bytes=0-1,5-9', 100), undefined);
  assert.equal(byteRange('items=0-1', 100), undefined);
  assert.equal(byteRange('bytes=-', 100), undefined);
});

test('any header gives a range inside the body, the whole body or unsatisfiable', () => {
  fc.assert(
    fc.property(fc.string(), fc.nat(1e6), (header, size) => {
      const r = byteRange(header, size);
      if (r === undefined || r === 'unsatisfiable') return;
      assert.ok(r.start >= 0 && r.start <= r.end && r.end < size);
    }),
  );
  fc.assert(
    fc.property(fc.nat(1000), fc.nat(1000), fc.integer({ min: 1, max: 1000 }), (a, b, size) => {
      const r = byteRange(`bytes=${a}-${b}`, size);
      if (a >= size) assert.equal(r, 'unsatisfiable');
      else if (b < a) assert.equal(r, undefined);
      else assert.deepEqual(r, { start: a, end: Math.min(b, size - 1) });
    }),
  );
});
