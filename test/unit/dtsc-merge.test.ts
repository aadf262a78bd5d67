// The pure parts of `haze merge`: track ids for appended tracks, the first header's moreheader
// patch, an in-memory append (old bytes kept, new header complete, old readers unaffected), and
// the time-ordered reader over appended files, badly interleaved files (bounded queues), files
// without an index (MistServer's small-mp4.dtsc) and garbage (fuzzed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import fc from 'fast-check';
import { isHaze, mistFixtures } from '../helpers.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { DtscFileWriter, readDtscFileHeader, type ReadAt } from '../../src/containers/dtsc/file.js';
import { DtscFrameReader } from '../../src/containers/dtsc/packets.js';
import { assignTrackIds, DtscAppender, moreheaderBytes, moreheaderPosition } from '../../src/containers/dtsc/append.js';
import { DtscTimeline, type DtscInput } from '../../src/containers/dtsc/timeline.js';
import type { Packet, Track } from '../../src/media/types.js';
import { HazeError } from '../../src/util/errors.js';

const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));

function input(file: Buffer, name = 'mem.dtsc'): DtscInput {
  const read: ReadAt = async (position, length) => file.subarray(position, Math.min(file.length, position + length));
  return { read, size: file.length, name };
}

/** A finished DTSC file of `packets` in the order given. */
function dtscFile(tracks: readonly Track[], packets: readonly Packet[]): { file: Buffer; growing: Buffer } {
  const w = new DtscFileWriter({ tracks });
  const growing = Buffer.concat([w.header(), ...packets.map((p) => w.packet(p))]);
  const { trailer, patch } = w.finish();
  const file = Buffer.concat([growing, trailer]);
  patch.bytes.copy(file, patch.position);
  return { file, growing };
}

async function drain(t: DtscTimeline): Promise<{ input: number; packet: Packet }[]> {
  const out: { input: number; packet: Packet }[] = [];
  for (let n = await t.next(); n; n = await t.next()) out.push(n);
  return out;
}

const sig = (p: Packet): string => `${p.trackId}@${p.timeMs}+${p.offsetMs}:${crypto.createHash('md5').update(p.data).digest('hex')}`;

function assertTimeOrdered(list: readonly Packet[], what: string): void {
  for (let i = 1; i < list.length; i++) assert.ok(list[i]!.timeMs >= list[i - 1]!.timeMs, `${what}: packet ${i} goes back in time`);
}

/** The file's packets as DTSC stores them (audio without keyframe flags). */
const stored = (tracks: readonly Track[], p: Packet): Packet => (p.keyframe && tracks.find((t) => t.id === p.trackId)!.type !== 'video' ? { ...p, keyframe: false } : p);

test('appended tracks keep their ids when free, else take the smallest free one', () => {
  assert.deepEqual(assignTrackIds([1, 2], [3]), [3]);
  assert.deepEqual(assignTrackIds([1, 2], [1]), [3]);
  assert.deepEqual(assignTrackIds([1, 3], [1, 2, 2]), [2, 4, 5]);
  assert.deepEqual(assignTrackIds([1, 3], [2, 1]), [2, 4]);
  assert.deepEqual(assignTrackIds([], [0, 7, 7]), [1, 7, 2]);
});

test('the moreheader patch position is found and checked in a first header', () => {
  const { file } = dtscFile(flv.tracks, flv.packets);
  const frameLen = 8 + file.readUInt32BE(4);
  const first = file.subarray(0, frameLen);
  const more = Number(first.readBigInt64BE(frameLen - 11));
  assert.ok(more > frameLen);
  assert.equal(moreheaderPosition(first, more), frameLen - 11);
  assert.throws(() => moreheaderPosition(first, more + 1), isHaze, 'a value other than the chain read');
  const bad = Buffer.from(first);
  bad.write('X', frameLen - 20, 'latin1');
  assert.throws(() => moreheaderPosition(bad, more), isHaze, 'no moreheader member at the end');
  assert.deepEqual(moreheaderBytes(0x0102_0304_05), Buffer.from('0000000102030405', 'hex'));
});

/** Appends the FLV's audio track (as `addedId` when free) to a file of the FLV's tracks, in memory. */
async function appendInMemory(): Promise<{ before: Buffer; after: Buffer; patchAt: number; addedId: number }> {
  const { file: before } = dtscFile(flv.tracks, flv.packets);
  const target = await readDtscFileHeader(input(before).read, before.length);
  const audio = flv.tracks.find((t) => t.type === 'audio')!;
  const [addedId] = assignTrackIds(target.meta.tracks.map((t) => t.id), [audio.id]);
  const src = dtscFile([{ ...audio, lang: 'hin' }], flv.packets.filter((p) => p.trackId === audio.id));
  const add = await DtscTimeline.open([input(src.file)]);
  const app = new DtscAppender(target.meta, add.tracks.map((t) => ({ track: t.track, newId: addedId! })), before.length);
  const parts: Buffer[] = [before];
  for (let n = await add.next(); n; n = await add.next()) parts.push(app.packet({ ...n.packet, trackId: addedId! }));
  const { header, headerAt } = app.header();
  parts.push(header);
  const after = Buffer.concat(parts);
  assert.equal(headerAt, after.length - header.length);
  const patchAt = moreheaderPosition(before.subarray(0, target.dataStart), target.headerAt);
  moreheaderBytes(headerAt).copy(after, patchAt);
  return { before, after, patchAt, addedId: addedId! };
}

test('an append keeps every old byte but the moreheader value; the new header lists all tracks', async () => {
  const { before, after, patchAt, addedId } = await appendInMemory();
  assert.ok(after.length > before.length);
  const oldPart = Buffer.from(after.subarray(0, before.length));
  assert.notDeepEqual(oldPart.subarray(patchAt, patchAt + 8), before.subarray(patchAt, patchAt + 8));
  before.copy(oldPart, patchAt, patchAt, patchAt + 8);
  assert.ok(oldPart.equals(before), 'only the 8 moreheader bytes changed');

  const { meta } = await readDtscFileHeader(input(after).read, after.length);
  assert.deepEqual(meta.tracks.map((t) => [t.id, t.codec, t.lang]), [[1, 'H264', 'und'], [2, 'AAC', 'und'], [addedId, 'AAC', 'hin']]);
  const added = meta.tracks[2]!;
  assert.equal(added.tables!.parts.length, flv.packets.filter((p) => p.trackId === 2).length);
  // the added track's keys point at its packets in the appended region
  for (const k of added.tables!.keys) {
    assert.ok(k.bpos >= before.length);
    const f = new DtscFrameReader().push(after.subarray(k.bpos, k.bpos + 100_000))[0]!;
    assert.ok(f.kind === 'packet' && f.packet.trackId === addedId && f.packet.timeMs === k.timeMs && f.bpos === k.bpos);
  }
  // old tracks keep their index tables
  const old = await readDtscFileHeader(input(before).read, before.length);
  assert.deepEqual(meta.tracks.slice(0, 2).map((t) => t.tables), old.meta.tracks.map((t) => t.tables));

  // time order across both regions, and every packet once
  const got = await drain(await DtscTimeline.open([input(after)]));
  assertTimeOrdered(got.map((n) => n.packet), 'appended file');
  const want = [...flv.packets.map((p) => stored(flv.tracks, p)), ...flv.packets.filter((p) => p.trackId === 2).map((p) => ({ ...p, trackId: addedId, keyframe: false }))];
  assert.deepEqual(got.map((n) => sig(n.packet)).sort(), want.map(sig).sort());
});

test('a reader that opened the file before the append reads its old packets on', async () => {
  const { before, after } = await appendInMemory();
  // the reader took its header and size before; the file then grew under it
  let current = before;
  const live: DtscInput = { read: async (p, n) => current.subarray(p, Math.min(current.length, p + n)), size: before.length, name: 'growing' };
  const t = await DtscTimeline.open([live]);
  const got: Packet[] = [];
  for (let i = 0; i < 100; i++) got.push((await t.next())!.packet);
  current = after;
  for (let n = await t.next(); n; n = await t.next()) got.push(n.packet);
  const whole = await drain(await DtscTimeline.open([input(before)]));
  assert.deepEqual(got.map(sig), whole.map((n) => sig(n.packet)));
  assert.equal(got.length, flv.packets.length);
});

test('a badly interleaved region: queues stay bounded, the order is the same', async () => {
  // one audio packet first, then all video, then the rest of the audio: the key spans overlap,
  // so one cursor owns both tracks and would have to queue the whole video to find the audio
  const audio = flv.packets.filter((p) => p.trackId === 2);
  const video = flv.packets.filter((p) => p.trackId === 1);
  const { file } = dtscFile(flv.tracks, [audio[0]!, ...video, ...audio.slice(1)]);
  const looseT = await DtscTimeline.open([input(file)]);
  const tightT = await DtscTimeline.open([input(file)], { maxQueuedBytes: 4096 });
  const loose = await drain(looseT);
  const tight = await drain(tightT);
  assert.deepEqual([looseT.splits, tightT.splits], [0, 1], 'the audio track moved to a cursor of its own');
  assertTimeOrdered(loose.map((n) => n.packet), 'loose');
  assert.deepEqual(tight.map((n) => sig(n.packet)), loose.map((n) => sig(n.packet)));
  assert.deepEqual(loose.map((n) => sig(n.packet)).sort(), flv.packets.map((p) => sig(stored(flv.tracks, p))).sort());
  // ties in time go by track order
  for (let i = 1; i < loose.length; i++) {
    const a = loose[i - 1]!.packet;
    const b = loose[i]!.packet;
    if (a.timeMs === b.timeMs) assert.ok(a.trackId <= b.trackId);
  }
});

test('a DTSC file without an index (MistServer over dtsc://, saved) is indexed by a scan', async () => {
  const raw = fs.readFileSync(path.join(mistFixtures, 'small-mp4.dtsc'));
  const t = await DtscTimeline.open([input(raw)]);
  assert.equal(t.files[0]!.scanned, true);
  assert.deepEqual(t.tracks.map((x) => [x.track.codec, x.packetCount]), [['H264', 119], ['AAC', 188]]);
  const got = (await drain(t)).map((n) => n.packet);
  assertTimeOrdered(got, 'small-mp4.dtsc');
  const fileOrder = new DtscFrameReader().push(raw).flatMap((f) => (f.kind === 'packet' ? [f.packet] : []));
  assert.deepEqual(got.map(sig).sort(), fileOrder.map(sig).sort());
  for (const id of [1, 2]) assert.deepEqual(got.filter((p) => p.trackId === id).map(sig), fileOrder.filter((p) => p.trackId === id).map(sig), `track ${id} in file order`);
});

test('a file still being written (moreheader 0) is refused', async () => {
  const { growing } = dtscFile(flv.tracks, flv.packets);
  await assert.rejects(DtscTimeline.open([input(growing)]), (e: unknown) => e instanceof HazeError && /still being written/.test(e.message));
});

test('fuzz: random bytes and damaged files give packets or a HazeError', async () => {
  const { after } = await appendInMemory();
  const run = async (bytes: Buffer): Promise<void> => {
    try {
      const t = await DtscTimeline.open([input(bytes)]);
      let n = 0;
      while ((await t.next()) && n < 100_000) n++;
      assert.ok(n < 100_000);
    } catch (e) {
      if (!(e instanceof HazeError)) throw e;
    }
  };
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), async (b) => run(Buffer.from(b))), { numRuns: 200 });
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.nat(after.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(after.length), async (flips, cut) => {
      const b = Buffer.from(after.subarray(0, Math.max(cut, after.length - 50_000)));
      for (const [at, v] of flips) if (at < b.length) b[at] = v;
      await run(b);
    }),
    { numRuns: 60 },
  );
});
