// Checks shared by the FileSource tests of FLV, DTSC and the audio files: the whole scan, the
// readFrom() contract on a fresh source, and the fuzz rule (only HazeErrors naming the file).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { Packet, Track } from '../../src/media/types.js';
import type { FileSourceOpener, ScannedPacket } from '../../src/inputs/files/file-source.js';
import { HazeError } from '../../src/util/errors.js';

export interface ScanResult {
  tracks: Track[] | undefined;
  /** Every track set reported, in order. */
  trackSets: Track[][];
  packets: ScannedPacket[];
  warnings: string[];
  /** Whether tracks came before or with the first packets. */
  tracksFirst: boolean;
}

export async function scanAll(open: FileSourceOpener, file: string): Promise<ScanResult> {
  const src = await open(file);
  const res: ScanResult = { tracks: undefined, trackSets: [], packets: [], warnings: [], tracksFirst: true };
  try {
    for await (const chunk of src.scan()) {
      if (chunk.tracks) {
        res.tracks = chunk.tracks;
        res.trackSets.push(chunk.tracks);
      }
      if (chunk.packets.length > 0 && res.tracks === undefined) res.tracksFirst = false;
      for (const p of chunk.packets) res.packets.push(p);
      if (chunk.warnings) res.warnings.push(...chunk.warnings);
    }
  } finally {
    await src.close();
  }
  return res;
}

export function plain(p: Packet): [number, number, number, boolean, string] {
  return [p.trackId, p.timeMs, p.offsetMs, p.keyframe, p.data.toString('base64')];
}

export async function readFromAll(open: FileSourceOpener, file: string, bpos: number, tracks: readonly Track[]): Promise<Packet[]> {
  const src = await open(file);
  const out: Packet[] = [];
  try {
    for await (const batch of src.readFrom(bpos, tracks)) out.push(...batch);
  } finally {
    await src.close();
  }
  return out;
}

/** readFrom(bpos) on a fresh source gives scan()'s packets from the first one with that bpos on. */
export async function checkReadFrom(open: FileSourceOpener, file: string, scan: ScanResult, bposList: readonly number[]): Promise<void> {
  assert.ok(scan.tracks);
  // tracks as a .dtsh would give them back: plain objects, copies
  const tracks = scan.tracks.map((t) => ({ ...t, init: Buffer.from(t.init) }));
  for (const bpos of bposList) {
    const first = scan.packets.findIndex((p) => p.bpos === bpos);
    assert.ok(first >= 0, `bpos ${bpos} was reported by scan`);
    const got = await readFromAll(open, file, bpos, tracks);
    assert.deepEqual(got.map(plain), scan.packets.slice(first).map(plain), `readFrom(${bpos})`);
  }
}

/** Distinct bpos of keyframes, spread over the file (at most `n`). */
export function keyPositions(scan: ScanResult, n: number, video?: number): number[] {
  const all = [...new Set(scan.packets.filter((p) => p.keyframe && (video === undefined || p.trackId === video)).map((p) => p.bpos))];
  if (all.length <= n) return all;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(all[Math.floor((i * (all.length - 1)) / (n - 1))]!);
  return [...new Set(out)];
}

/**
 * Fuzz: random bytes, the sample mutated at random bytes, and truncated, written to a tmp file;
 * scan() fully and readFrom() at a reported bpos may only throw HazeErrors naming the file.
 */
export async function fuzzSource(open: FileSourceOpener, dir: string, ext: string, sample: Buffer, opts: { runs?: number; timeMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeMs ?? 4000);
  let n = 0;
  const mutated = fc.record({
    cut: fc.integer({ min: 0, max: sample.length }),
    flips: fc.array(fc.record({ at: fc.integer({ min: 0, max: Math.max(0, sample.length - 1) }), v: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }),
    pick: fc.nat(),
  });
  const random = fc.record({ bytes: fc.uint8Array({ maxLength: 2048 }), prefix: fc.boolean(), pick: fc.nat() });
  const tryOne = async (bytes: Buffer, pick: number): Promise<void> => {
    const file = path.join(dir, `fuzz-${n++}.${ext}`);
    fs.writeFileSync(file, bytes);
    try {
      const scan = await scanAll(open, file);
      if (scan.packets.length > 0 && scan.tracks) {
        const bpos = scan.packets[pick % scan.packets.length]!.bpos;
        await readFromAll(open, file, bpos, scan.tracks);
      }
    } catch (err) {
      if (!(err instanceof HazeError)) throw err;
      assert.ok(err.message.includes(file), `error names the file: ${err.message}`);
    } finally {
      fs.rmSync(file, { force: true });
    }
  };
  await fc.assert(
    fc.asyncProperty(mutated, async ({ cut, flips, pick }) => {
      if (Date.now() > deadline) return;
      const b = Buffer.from(sample.subarray(0, cut));
      for (const f of flips) if (f.at < b.length) b[f.at] = f.v;
      await tryOne(b, pick);
    }),
    { numRuns: opts.runs ?? 150 },
  );
  await fc.assert(
    fc.asyncProperty(random, async ({ bytes, prefix, pick }) => {
      if (Date.now() > deadline + 1000) return;
      // random bytes behind the file's real first bytes, to get past the signature check
      const b = prefix ? Buffer.concat([sample.subarray(0, 16), Buffer.from(bytes)]) : Buffer.from(bytes);
      await tryOne(b, pick);
    }),
    { numRuns: opts.runs ?? 150 },
  );
}
