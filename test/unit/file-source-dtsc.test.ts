// DTSC FileSource: a file Haze wrote (header, DTP2 frames, trailer), MistServer's small-mp4.dtsc,
// a file still being written, a file with a track appended after its trailer (haze merge
// --append), readFrom() on fresh sources, truncation and fuzz.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, tmpDir } from '../helpers.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { DtscFileWriter } from '../../src/containers/dtsc/file.js';
import { encodeDtp2 } from '../../src/containers/dtsc/packets.js';
import { writeDtscHeader } from '../../src/containers/dtsc/header.js';
import { readFilePackets } from '../../src/inputs/file-packets.js';
import { openDtscSource } from '../../src/inputs/files/dtsc.js';
import type { MetaTrack, Packet, Track } from '../../src/media/types.js';
import { HazeError } from '../../src/util/errors.js';
import { checkReadFrom, fuzzSource, keyPositions, plain, scanAll } from './file-source-check.js';

const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));

function writeDtsc(tracks: Track[], packets: Packet[]): { file: Buffer; growing: Buffer; offsets: number[] } {
  const w = new DtscFileWriter({ tracks });
  const parts = [w.header()];
  const offsets: number[] = [];
  let at = parts[0]!.length;
  for (const p of packets) {
    const f = w.packet(p);
    offsets.push(at);
    at += f.length;
    parts.push(f);
  }
  const growing = Buffer.concat(parts);
  const { trailer, patch } = w.finish();
  const file = Buffer.concat([growing, trailer]);
  patch.bytes.copy(file, patch.position);
  return { file, growing, offsets };
}

/** What scan() should give: the packets, audio/meta marked keyframe. */
function expected(tracks: Track[], packets: Packet[]): ReturnType<typeof plain>[] {
  const video = new Set(tracks.filter((t) => t.type === 'video').map((t) => t.id));
  return packets.map((p) => plain({ ...p, keyframe: video.has(p.trackId) ? p.keyframe : true }));
}

test('a DTSC file Haze wrote: tracks from the trailer, every packet with its frame offset, readFrom from keys', async () => {
  const dir = tmpDir();
  try {
    const { file: bytes, offsets } = writeDtsc(flv.tracks, flv.packets);
    const file = path.join(dir, 'small.dtsc');
    fs.writeFileSync(file, bytes);
    const scan = await scanAll(openDtscSource, file);
    assert.ok(scan.tracksFirst);
    assert.deepEqual(scan.tracks!.map((t) => [t.id, t.codec]), flv.tracks.map((t) => [t.id, t.codec]));
    assert.deepEqual(scan.packets.map(plain), expected(flv.tracks, flv.packets));
    assert.deepEqual(scan.packets.map((p) => p.bpos), offsets);
    assert.deepEqual(scan.warnings, []);
    // the tools' reader (time order) gives the same: this file is written in time order
    const old: Packet[] = [];
    for await (const c of readFilePackets(file)) old.push(...c.packets);
    assert.deepEqual(scan.packets.map(plain), old.map(plain));
    await checkReadFrom(openDtscSource, file, scan, [...keyPositions(scan, 6, 1), scan.packets[7]!.bpos, scan.packets.at(-1)!.bpos]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('MistServer\'s small-mp4.dtsc (header + DTP2 as served on dtsc://) has the packets the time-order reader gives', async () => {
  const file = path.join(mistFixtures, 'small-mp4.dtsc');
  const scan = await scanAll(openDtscSource, file);
  const old: Packet[] = [];
  for await (const c of readFilePackets(file)) old.push(...c.packets);
  assert.equal(scan.packets.length, 119 + 188);
  // scan() is file order, the tools' reader time order: the same packets, each track in the same order
  assert.equal(scan.tracks!.length, 2);
  for (const { id } of scan.tracks!) {
    assert.ok(scan.packets.some((p) => p.trackId === id), `track ${id} has packets`);
    assert.deepEqual(scan.packets.filter((p) => p.trackId === id).map(plain), old.filter((p) => p.trackId === id).map(plain), `track ${id}`);
  }
  await checkReadFrom(openDtscSource, file, scan, keyPositions(scan, 4));
});

test('a file still being written reads to its current end; a cut frame there is a warning', async () => {
  const dir = tmpDir();
  try {
    const { growing, offsets } = writeDtsc(flv.tracks, flv.packets);
    const file = path.join(dir, 'rec.dtsc');
    const cut = offsets[100]! + 10;
    fs.writeFileSync(file, growing.subarray(0, cut));
    const scan = await scanAll(openDtscSource, file);
    assert.equal(scan.packets.length, 100);
    assert.deepEqual(scan.warnings, [`${file}: ends inside a frame at byte ${offsets[100]}`]);
    fs.appendFileSync(file, growing.subarray(cut));
    const later = await scanAll(openDtscSource, file);
    assert.deepEqual(later.packets.map(plain), expected(flv.tracks, flv.packets));
    assert.deepEqual(later.warnings, []);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a track appended after the trailer: its packets are read, tracks from the newest header', async () => {
  const dir = tmpDir();
  try {
    const { file: first } = writeDtsc(flv.tracks, flv.packets);
    const meta: MetaTrack = { type: 'meta', id: 3, codec: 'JSON', init: Buffer.alloc(0), bps: 0, lang: 'und' };
    const extra: Packet[] = [0, 1000, 2000, 3000].map((t) => ({ trackId: 3, timeMs: t, offsetMs: 0, keyframe: false, data: Buffer.from(`{"t":${t}}`) }));
    const extraFrames = extra.map((p) => encodeDtp2(p, 3, 1));
    const allTracks: Track[] = [...flv.tracks, meta];
    const newest = writeDtscHeader({ live: false, vod: true, tracks: allTracks.map((t, i) => ({ ...t, idx: i, firstMs: 0, lastMs: 0, maxBps: 0 })) });
    const headerAt = first.length + extraFrames.reduce((n, f) => n + f.length, 0);
    const whole = Buffer.concat([first, ...extraFrames, newest]);
    // the chain now ends at the newest header
    const moreAt = writeDtsc(flv.tracks, []).growing.length; // where the first header ends
    whole.writeBigInt64BE(BigInt(headerAt), moreAt - 11);
    const file = path.join(dir, 'merged.dtsc');
    fs.writeFileSync(file, whole);
    const scan = await scanAll(openDtscSource, file);
    assert.deepEqual(scan.tracks!.map((t) => t.id), [1, 2, 3]);
    assert.deepEqual(scan.packets.map(plain), expected(allTracks, [...flv.packets, ...extra]));
    await checkReadFrom(openDtscSource, file, scan, [scan.packets.at(-3)!.bpos, ...keyPositions(scan, 3, 1)]);
    // while the appended track has no header yet, its packets are skipped with a warning
    fs.writeFileSync(file, Buffer.concat([first, ...extraFrames]));
    const before = await scanAll(openDtscSource, file);
    assert.equal(before.packets.length, flv.packets.length);
    assert.equal(before.warnings.length, 1);
    assert.match(before.warnings[0]!, /track 3/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('garbage in the packet area: HAZE_ERR_MALFORMED naming the file and byte', async () => {
  const dir = tmpDir();
  try {
    const { file: bytes, offsets } = writeDtsc(flv.tracks, flv.packets);
    bytes.write('XXXX', offsets[50]!, 'latin1');
    const file = path.join(dir, 'bad.dtsc');
    fs.writeFileSync(file, bytes);
    await assert.rejects(scanAll(openDtscSource, file), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED' && e.message.includes(file) && e.message.includes(`at byte ${offsets[50]}`));
    fs.writeFileSync(file, Buffer.from('FLV\x01\x05\x00\x00\x00\x09', 'latin1'));
    await assert.rejects(openDtscSource(file), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fuzz: random, mutated and truncated DTSC files give packets or a HazeError naming the file', async () => {
  const dir = tmpDir();
  try {
    const { file } = writeDtsc(flv.tracks, flv.packets.slice(0, 40));
    await fuzzSource(openDtscSource, dir, 'dtsc', file, { timeMs: 4000 });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
