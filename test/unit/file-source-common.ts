// Checks shared by the file-source tests (TS, Matroska, MP4): scan() against the whole-file parsers,
// readFrom(bpos) on fresh sources against scan()'s packets from that bpos on, and fuzzing with
// random, mutated and truncated files (only HazeErrors naming the file, no hangs).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import type { Packet, Track } from '../../src/media/types.js';
import type { FileSource, FileSourceOpener, ScannedPacket } from '../../src/inputs/files/file-source.js';
import { TsDemuxer } from '../../src/containers/ts/demux.js';
import { MatroskaDemuxer } from '../../src/containers/mkv/demux.js';
import { fileByteSource, openMp4, readSample } from '../../src/containers/mp4/demux.js';
import { isHazeError } from '../../src/util/errors.js';

export interface Scanned {
  tracks: Track[];
  packets: ScannedPacket[];
  warnings: string[];
  /** Chunks yielded before the one with the first tracks (must be 0 when there are packets). */
  packetsBeforeTracks: number;
}

export async function scanAll(src: FileSource): Promise<Scanned> {
  const out: Scanned = { tracks: [], packets: [], warnings: [], packetsBeforeTracks: 0 };
  let seenTracks = false;
  for await (const c of src.scan()) {
    if (c.tracks) {
      out.tracks = c.tracks;
      seenTracks = true;
    }
    if (!seenTracks) out.packetsBeforeTracks += c.packets.length;
    for (const p of c.packets) out.packets.push(p);
    if (c.warnings) out.warnings.push(...c.warnings);
  }
  return out;
}

export async function scanFile(opener: FileSourceOpener, file: string): Promise<Scanned> {
  const src = await opener(file);
  try {
    return await scanAll(src);
  } finally {
    await src.close();
  }
}

export async function readAll(src: FileSource, bpos: number, tracks: readonly Track[]): Promise<Packet[]> {
  const out: Packet[] = [];
  for await (const batch of src.readFrom(bpos, tracks)) for (const p of batch) out.push(p);
  return out;
}

function same(a: Packet, b: Packet): boolean {
  return a.trackId === b.trackId && a.timeMs === b.timeMs && a.offsetMs === b.offsetMs && a.keyframe === b.keyframe && a.data.equals(b.data);
}

function show(p: Packet | undefined): string {
  return p ? `track ${p.trackId} t=${p.timeMs}+${p.offsetMs} key=${p.keyframe} ${p.data.length} bytes` : 'none';
}

export function assertSamePackets(ours: readonly Packet[], theirs: readonly Packet[], what: string): void {
  const n = Math.max(ours.length, theirs.length);
  for (let i = 0; i < n; i++) {
    if (!ours[i] || !theirs[i] || !same(ours[i]!, theirs[i]!)) {
      assert.fail(`${what}: packet ${i} differs: ${show(ours[i])} vs ${show(theirs[i])} (${ours.length} vs ${theirs.length} packets)`);
    }
  }
}

/**
 * The file through the containers' own parsers, the whole file at once (the push demuxers fed
 * one buffer, MP4 sample by sample): an independent path to the tracks and packets scan() must give.
 */
export async function legacy(file: string): Promise<{ tracks: Track[]; packets: Packet[] }> {
  const ext = path.extname(file).slice(1).toLowerCase();
  if (ext === 'ts' || ext === 'm2ts' || ext === 'mkv' || ext === 'webm') {
    const demux = ext === 'ts' || ext === 'm2ts' ? new TsDemuxer() : new MatroskaDemuxer();
    const out: { tracks: Track[]; packets: Packet[] } = { tracks: [], packets: [] };
    for (const c of [demux.push(fs.readFileSync(file)), demux.end()]) {
      if (c.tracks) out.tracks = c.tracks;
      out.packets.push(...c.packets);
    }
    return out;
  }
  const src = await fileByteSource(file);
  try {
    const index = await openMp4(src, { editList: 'ignore' });
    const packets: Packet[] = [];
    for (const ref of index.samples) packets.push(await readSample(src, ref));
    return { tracks: index.tracks, packets };
  } finally {
    await src.close();
  }
}

/** scan() equals the containers' whole-file parsers: same tracks, same packets, tracks before packets. */
export async function checkScanMatchesLegacy(opener: FileSourceOpener, file: string): Promise<Scanned> {
  const scanned = await scanFile(opener, file);
  const old = await legacy(file);
  assert.equal(scanned.packetsBeforeTracks, 0, `${path.basename(file)}: tracks come first`);
  assert.deepEqual(scanned.tracks, old.tracks, `${path.basename(file)}: tracks`);
  assert.ok(scanned.packets.length > 0, `${path.basename(file)}: has packets`);
  assertSamePackets(scanned.packets, old.packets, `${path.basename(file)} scan vs the whole-file parser`);
  return scanned;
}

/** Up to `max` distinct bpos values of keyframes, spread over the file (first and last included). */
export function keyPositions(scanned: Scanned, max = 8, trackId?: number): number[] {
  const all: number[] = [];
  for (const p of scanned.packets) if (p.keyframe && (trackId === undefined || p.trackId === trackId) && !all.includes(p.bpos)) all.push(p.bpos);
  if (all.length <= max) return all;
  const out: number[] = [];
  for (let i = 0; i < max; i++) out.push(all[Math.round((i * (all.length - 1)) / (max - 1))]!);
  return [...new Set(out)];
}

/**
 * readFrom(bpos) on a fresh source gives scan()'s packets from the first one with that bpos
 * on; `extraBefore` allows packets of the same container unit before it (they must then be
 * scan()'s packets from before it, in order).
 */
export async function checkReadFrom(opener: FileSourceOpener, file: string, scanned: Scanned, positions: readonly number[], extraBefore = false): Promise<void> {
  assert.ok(positions.length > 0, 'positions to check');
  for (const bpos of positions) {
    const first = scanned.packets.findIndex((p) => p.bpos === bpos);
    assert.ok(first >= 0, `bpos ${bpos} was reported`);
    // A fresh source, given the tracks as a .dtsh would give them back (plain copies).
    const src = await opener(file);
    try {
      const tracks = scanned.tracks.map((t) => ({ ...t, init: Buffer.from(t.init) }));
      const got = await readAll(src, bpos, tracks);
      const want = scanned.packets.slice(first);
      const extra = got.length - want.length;
      if (extraBefore && extra > 0) {
        // The extra packets are scan()'s, from just before the first one with that bpos, in order.
        const before = scanned.packets.slice(0, first);
        let k = before.length - 1;
        for (let i = extra - 1; i >= 0; i--) {
          while (k >= 0 && !same(before[k]!, got[i]!)) k--;
          assert.ok(k >= 0, `${path.basename(file)} readFrom(${bpos}): extra packet ${i} (${show(got[i])}) is one of scan()'s before it`);
          k--;
        }
        assertSamePackets(got.slice(extra), want, `${path.basename(file)} readFrom(${bpos})`);
      } else assertSamePackets(got, want, `${path.basename(file)} readFrom(${bpos})`);
      // Twice on one source gives the same again.
      const again = await readAll(src, bpos, tracks);
      assert.equal(again.length, got.length, `${path.basename(file)} readFrom(${bpos}) repeated`);
    } finally {
      await src.close();
    }
  }
}

export function assertFileError(err: unknown, file: string): void {
  if (!isHazeError(err)) throw err;
  assert.ok(err.message.includes(file), `HazeError names the file: ${err.message}`);
}

/** Opens, scans and reads from a random reported bpos; only HazeErrors naming the file may come out. */
export async function exercise(opener: FileSourceOpener, file: string, pick: number): Promise<void> {
  let src: FileSource | undefined;
  try {
    src = await opener(file);
    const s = await scanAll(src);
    if (s.packets.length > 0) {
      const p = s.packets[pick % s.packets.length]!;
      await readAll(src, p.bpos, s.tracks);
    }
  } catch (err) {
    assertFileError(err, file);
  } finally {
    await src?.close();
  }
}

/**
 * Fuzzes a source: random bytes, `real` mutated at random bytes and truncated at random points,
 * each written to a tmp file with extension `ext`; each run must finish within `runMs`.
 */
export async function fuzzSource(opener: FileSourceOpener, real: Buffer, dir: string, ext: string, runs: number, runMs = 3000): Promise<void> {
  let n = 0;
  const file = (): string => path.join(dir, `fuzz-${n++}.${ext}`);
  const timed = async (f: string, pick: number): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${f}: run took longer than ${runMs} ms`)), runMs);
    });
    try {
      await Promise.race([exercise(opener, f, pick), limit]);
    } finally {
      clearTimeout(timer);
      fs.rmSync(f, { force: true });
    }
  };
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), fc.nat(), async (bytes, pick) => {
      const f = file();
      fs.writeFileSync(f, bytes);
      await timed(f, pick);
    }),
    { numRuns: runs },
  );
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 16 }), fc.nat(), async (edits, pick) => {
      const b = Buffer.from(real);
      for (const [at, v] of edits) b[at % b.length] = v;
      const f = file();
      fs.writeFileSync(f, b);
      await timed(f, pick);
    }),
    { numRuns: runs },
  );
  await fc.assert(
    fc.asyncProperty(fc.nat(), fc.nat(), async (cut, pick) => {
      const f = file();
      fs.writeFileSync(f, real.subarray(0, cut % (real.length + 1)));
      await timed(f, pick);
    }),
    { numRuns: runs },
  );
}
