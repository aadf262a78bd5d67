// TsDatagramPacker (src/pushes/ts-datagrams.ts): 1316-byte datagrams of 7 TS packets, in
// order, nothing lost or duplicated whatever the chunk sizes; full datagrams inside a chunk are
// not copied; a datagram handed out is never written again.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TS_DATAGRAM_BYTES, TsDatagramPacker } from '../../src/pushes/ts-datagrams.js';
import { HazeError } from '../../src/util/errors.js';

/** `n` TS packets numbered in their payload, so order and duplication show. */
function tsPackets(n: number, from = 0): Buffer {
  const b = Buffer.alloc(n * 188);
  for (let i = 0; i < n; i++) {
    b[i * 188] = 0x47;
    b.writeUInt32BE(from + i, i * 188 + 4);
  }
  return b;
}

describe('TsDatagramPacker', () => {
  it('cuts 7-packet datagrams, keeps the rest for the next chunk, flushes a short one', () => {
    const p = new TsDatagramPacker();
    assert.equal(TS_DATAGRAM_BYTES, 1316);
    const a = tsPackets(10);
    const out1 = p.push(a);
    assert.equal(out1.length, 1);
    assert.equal(out1[0]!.length, 1316);
    assert.equal(out1[0]!.buffer, a.buffer, 'a full datagram inside a chunk is a view of it');
    assert.equal(p.pendingBytes, 3 * 188);
    const out2 = p.push(tsPackets(4, 10));
    assert.equal(out2.length, 1);
    assert.equal(out2[0]!.readUInt32BE(4), 7);
    assert.equal(out2[0]!.readUInt32BE(6 * 188 + 4), 13);
    assert.equal(p.pendingBytes, 0);
    p.push(tsPackets(2, 14));
    const rest = p.flush()!;
    assert.equal(rest.length, 2 * 188);
    assert.equal(p.flush(), undefined);
  });

  it('never reuses the buffer of a datagram it handed out', () => {
    const p = new TsDatagramPacker();
    p.push(tsPackets(3));
    const [d1] = p.push(tsPackets(4, 3));
    const copy = Buffer.from(d1!);
    p.push(tsPackets(3, 7));
    p.push(tsPackets(4, 10));
    assert.ok(d1!.equals(copy));
  });

  it('reset forgets the waiting bytes; a bad size is refused', () => {
    const p = new TsDatagramPacker();
    p.push(tsPackets(3));
    p.reset();
    assert.equal(p.flush(), undefined);
    assert.throws(() => new TsDatagramPacker(1000), HazeError);
    assert.equal(new TsDatagramPacker(188).push(tsPackets(3)).length, 3);
  });

  it('fuzz: any split of a run of packets gives it back whole, in full datagrams but the last', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200 }), fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 30 }), (n, cuts) => {
        const all = tsPackets(n);
        const bounds = [...new Set(cuts.map((c) => Math.min(c, all.length)))].sort((x, y) => x - y);
        const p = new TsDatagramPacker();
        const out: Buffer[] = [];
        let at = 0;
        for (const b of [...bounds, all.length]) {
          out.push(...p.push(all.subarray(at, b)));
          at = b;
        }
        assert.ok(out.every((d) => d.length === 1316));
        const rest = p.flush();
        if (rest) out.push(rest);
        assert.ok(Buffer.concat(out).equals(all));
      }),
      { numRuns: 300 },
    );
  });
});
