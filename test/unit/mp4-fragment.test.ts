// fMP4 init segment and fragments: structure read back with the box walker, trun offsets
// pointing into the mdat, tfdt continuity and sample-exact AAC timing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findBox, findBoxes, readBoxes } from '../../src/containers/mp4/box.js';
import { initSegment, segmentType, dac3FromFrame, trackTimescale } from '../../src/containers/mp4/init.js';
import { FragmentWriter, SAMPLE_FLAGS_NON_SYNC, SAMPLE_FLAGS_SYNC, segmentIndex } from '../../src/containers/mp4/fragment.js';
import type { AudioTrack, Packet, Track, VideoTrack } from '../../src/media/types.js';
import { buildAvcC } from '../../src/media/h264.js';
import { buildAsc } from '../../src/media/aac.js';
import { hex, isHaze } from '../helpers.js';

const sps = hex('67 64 00 0d ac d9 41 41 fa 10 00 00 03 00 10 00 00 03 03 20 f1 42 99 60');
const pps = hex('68 eb e3 cb 22 c0');
const video: VideoTrack = { type: 'video', id: 1, codec: 'H264', init: buildAvcC(sps, pps), bps: 0, lang: 'und', width: 320, height: 180, fpks: 30000 };
const aac: AudioTrack = { type: 'audio', id: 2, codec: 'AAC', init: buildAsc({ objectType: 2, sampleRate: 48000, channelConfig: 2 }), bps: 16000, lang: 'eng', rate: 48000, channels: 2, size: 16 };
const opusHead = Buffer.concat([Buffer.from('OpusHead'), hex('01 02 3801 80bb0000 0000 00')]);
const opus: AudioTrack = { type: 'audio', id: 3, codec: 'opus', init: opusHead, bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };
const ac3: AudioTrack = { type: 'audio', id: 4, codec: 'AC3', init: Buffer.alloc(0), bps: 24000, lang: 'und', rate: 48000, channels: 6, size: 16 };
const mp3: AudioTrack = { type: 'audio', id: 5, codec: 'MP3', init: Buffer.alloc(0), bps: 0, lang: 'und', rate: 44100, channels: 2, size: 16 };

function pkt(trackId: number, timeMs: number, size: number, keyframe = true, offsetMs = 0): Packet {
  return { trackId, timeMs, offsetMs, keyframe, data: Buffer.alloc(size, trackId * 16 + (timeMs & 15)) };
}

interface Trun {
  version: number;
  dataOffset: number;
  samples: { duration: number; size: number; flags: number; cto: number }[];
}

function parseTrun(payload: Buffer): Trun {
  const version = payload[0]!;
  const flags = payload.readUIntBE(1, 3);
  assert.equal(flags, 0xf01);
  const n = payload.readUInt32BE(4);
  const dataOffset = payload.readInt32BE(8);
  const samples = [];
  for (let i = 0; i < n; i++) {
    const o = 12 + i * 16;
    samples.push({ duration: payload.readUInt32BE(o), size: payload.readUInt32BE(o + 4), flags: payload.readUInt32BE(o + 8), cto: payload.readInt32BE(o + 12) });
  }
  assert.equal(payload.length, 12 + n * 16);
  return { version, dataOffset, samples };
}

function tfdtOf(traf: Buffer): number {
  const tfdt = readBoxes(traf).find((b) => b.type === 'tfdt')!;
  assert.equal(tfdt.payload[0], 1, 'tfdt version 1');
  return Number(tfdt.payload.readBigUInt64BE(4));
}

test('init segment: ftyp, one trak per track with its sample entry, mvex/trex', () => {
  const init = initSegment([video, aac, opus, ac3, mp3]);
  const top = readBoxes(init);
  assert.deepEqual(
    top.map((b) => b.type),
    ['ftyp', 'moov'],
  );
  assert.equal(top[0]!.payload.toString('latin1', 0, 4), 'iso6');
  assert.ok(top[0]!.payload.toString('latin1').includes('cmfc'));
  const traks = findBoxes(init, ['moov'], 'trak');
  assert.equal(traks.length, 5);
  const entries = traks.map((t) => {
    const tkhd = readBoxes(t.payload).find((b) => b.type === 'tkhd')!;
    const id = tkhd.payload.readUInt32BE(12);
    const stsd = findBox(t.payload, 'mdia', 'minf', 'stbl', 'stsd')!;
    assert.equal(stsd.payload.readUInt32BE(4), 1);
    const entry = readBoxes(stsd.payload, 8)[0]!;
    const mdhd = findBox(t.payload, 'mdia', 'mdhd')!;
    const hdlr = findBox(t.payload, 'mdia', 'hdlr')!;
    return { id, entry, timescale: mdhd.payload.readUInt32BE(12), handler: hdlr.payload.toString('latin1', 8, 12), tkhd };
  });
  assert.deepEqual(
    entries.map((e) => [e.id, e.entry.type, e.timescale, e.handler]),
    [
      [1, 'avc1', 90000, 'vide'],
      [2, 'mp4a', 48000, 'soun'],
      [3, 'Opus', 48000, 'soun'],
      [4, 'ac-3', 48000, 'soun'],
      [5, 'mp4a', 44100, 'soun'],
    ],
  );
  // Video: width/height in the sample entry and tkhd (16.16), avcC is track.init.
  const avc1 = entries[0]!.entry;
  assert.equal(avc1.payload.readUInt16BE(24), 320);
  assert.equal(avc1.payload.readUInt16BE(26), 180);
  assert.equal(entries[0]!.tkhd.payload.readUInt32BE(76), 320 * 65536);
  const avcC = readBoxes(avc1.payload, 78)[0]!;
  assert.equal(avcC.type, 'avcC');
  assert.deepEqual(avcC.payload, video.init);
  // AAC: esds holds the AudioSpecificConfig in a DecoderSpecificInfo (tag 5).
  const mp4a = entries[1]!.entry;
  assert.equal(mp4a.payload.readUInt16BE(16), 2);
  assert.equal(mp4a.payload.readUInt32BE(24), 48000 * 65536);
  const esds = readBoxes(mp4a.payload, 28)[0]!;
  assert.equal(esds.type, 'esds');
  assert.ok(esds.payload.includes(Buffer.concat([Buffer.from([0x05, aac.init.length]), aac.init])));
  // Opus: dOps big-endian from the little-endian OpusHead (pre-skip 0x0138 = 312).
  const dOps = readBoxes(entries[2]!.entry.payload, 28)[0]!;
  assert.equal(dOps.type, 'dOps');
  assert.deepEqual(dOps.payload, hex('00 02 0138 0000bb80 0000 00'));
  // AC-3 without a frame: 48 kHz, 3/2 + LFE.
  const dac3 = readBoxes(entries[3]!.entry.payload, 28)[0]!;
  assert.equal(dac3.type, 'dac3');
  const v = dac3.payload.readUIntBE(0, 3);
  assert.equal(v >> 22, 0); // fscod 48 kHz
  assert.equal((v >> 11) & 7, 7); // acmod 3/2
  assert.equal((v >> 10) & 1, 1); // lfeon
  const trex = findBoxes(init, ['moov', 'mvex'], 'trex');
  assert.deepEqual(
    trex.map((t) => t.payload.readUInt32BE(4)),
    [1, 2, 3, 4, 5],
  );
  assert.equal(findBox(init, 'moov', 'mvhd')!.payload.readUInt32BE(96), 6);
});

test('init segment refuses what it cannot carry', () => {
  assert.throws(() => initSegment([]), isHaze);
  assert.throws(() => initSegment([video, { ...aac, id: 1 }]), isHaze);
  assert.throws(() => initSegment([{ ...video, init: Buffer.alloc(0) }]), isHaze);
  assert.throws(() => initSegment([{ type: 'meta', id: 9, codec: 'JSON', init: Buffer.alloc(0), bps: 0, lang: 'und' } as Track]), isHaze);
  assert.throws(() => initSegment([{ ...aac, codec: 'FLAC' }]), isHaze);
});

test('dac3 from a real syncframe header', () => {
  // 0B77, crc, fscod 0 frmsizecod 0x1c (384 kbit/s -> code 14), bsid 8 bsmod 0, acmod 2, lfe 0
  const frame = hex('0b77 0000 1c 40 43 00');
  const cfg = dac3FromFrame(frame)!;
  const v = cfg.readUIntBE(0, 3);
  assert.equal((v >> 17) & 0x1f, 8);
  assert.equal((v >> 11) & 7, 2);
  assert.equal((v >> 5) & 0x1f, 14);
  assert.equal(dac3FromFrame(hex('00 00 00 00 00 00 00 00')), undefined);
});

test('fragment: trun sizes and data offsets point at each sample in the mdat', () => {
  const w = new FragmentWriter([video, aac]);
  const vp = [pkt(1, 0, 500, true, 66), pkt(1, 33, 100, false, 133), pkt(1, 67, 120, false, 0), pkt(1, 100, 90, false, 33)];
  const ap = [pkt(2, 0, 30), pkt(2, 21, 31), pkt(2, 43, 32), pkt(2, 64, 33), pkt(2, 85, 34)];
  const frag = w.fragmentMulti(
    [
      { trackId: 1, packets: vp },
      { trackId: 2, packets: ap },
    ],
    7,
  );
  const top = readBoxes(frag);
  assert.deepEqual(
    top.map((b) => b.type),
    ['moof', 'mdat'],
  );
  const moof = top[0]!;
  const mdat = top[1]!;
  assert.equal(readBoxes(moof.payload)[0]!.payload.readUInt32BE(4), 7, 'mfhd sequence number');
  const trafs = findBoxes(frag, ['moof'], 'traf');
  assert.equal(trafs.length, 2);
  const groups = [vp, ap];
  let expectOffset = moof.size + 8;
  trafs.forEach((traf, k) => {
    const tfhd = readBoxes(traf.payload)[0]!;
    assert.equal(tfhd.type, 'tfhd');
    assert.equal(tfhd.payload.readUInt32BE(0), 0x020000, 'default-base-is-moof only');
    assert.equal(tfhd.payload.readUInt32BE(4), k + 1);
    const trun = parseTrun(readBoxes(traf.payload).find((b) => b.type === 'trun')!.payload);
    assert.equal(trun.version, 1);
    assert.equal(trun.dataOffset, expectOffset);
    let at = moof.start + trun.dataOffset;
    trun.samples.forEach((s, i) => {
      const p = groups[k]![i]!;
      assert.equal(s.size, p.data.length);
      assert.ok(at >= mdat.start + 8 && at + s.size <= mdat.start + mdat.size, 'sample inside the mdat');
      assert.deepEqual(frag.subarray(at, at + s.size), p.data);
      at += s.size;
    });
    expectOffset += groups[k]!.reduce((n, p) => n + p.data.length, 0);
  });
  const vt = parseTrun(readBoxes(trafs[0]!.payload).find((b) => b.type === 'trun')!.payload);
  assert.deepEqual(
    vt.samples.map((s) => [s.duration, s.flags, s.cto]),
    [
      [2970, SAMPLE_FLAGS_SYNC, 5940],
      [3060, SAMPLE_FLAGS_NON_SYNC, 11970],
      [2970, SAMPLE_FLAGS_NON_SYNC, 0],
      [2970, SAMPLE_FLAGS_NON_SYNC, 2970],
    ],
  );
  const at = parseTrun(readBoxes(trafs[1]!.payload).find((b) => b.type === 'trun')!.payload);
  assert.deepEqual(
    at.samples.map((s) => s.duration),
    [1024, 1024, 1024, 1024, 1024],
  );
  assert.equal(mdat.size, 8 + vp.concat(ap).reduce((n, p) => n + p.data.length, 0));
});

test('tfdt continues across fragments; AAC stays sample-exact and re-anchors on a gap', () => {
  const w = new FragmentWriter([video, aac]);
  // 30 fps video in ms (33/34 ms steps) over 3 fragments of 10 frames.
  const frames = Array.from({ length: 30 }, (_, i) => pkt(1, Math.round((i * 1000) / 30), 50, i % 10 === 0));
  let prevEnd = -1;
  for (let f = 0; f < 3; f++) {
    const ps = frames.slice(f * 10, f * 10 + 10);
    const frag = w.fragment(1, ps, f + 1);
    const traf = findBox(frag, 'moof', 'traf')!;
    const base = tfdtOf(traf.payload);
    if (prevEnd >= 0) assert.equal(base, prevEnd, `fragment ${f} starts where the previous ended`);
    else assert.equal(base, 0);
    const trun = parseTrun(readBoxes(traf.payload).find((b) => b.type === 'trun')!.payload);
    prevEnd = base + trun.samples.reduce((n, s) => n + s.duration, 0);
    // Every sample but a continued first one sits on its ms timestamp.
    let t = base;
    trun.samples.forEach((s, i) => {
      if (i > 0) assert.equal(t, Math.round(ps[i]!.timeMs * 90));
      t += s.duration;
    });
  }
  assert.equal(w.nextDecodeTime(1), prevEnd);

  // AAC at 48 kHz: ms timestamps rounded (21.333 ms frames) never reach the sample clock.
  const frameMs = (i: number): number => Math.round((i * 1024 * 1000) / 48000);
  let n = 0;
  const bases: number[] = [];
  for (let f = 0; f < 20; f++) {
    const ps = Array.from({ length: 47 }, () => pkt(2, frameMs(n++), 10));
    const frag = w.fragment(2, ps, 100 + f);
    const traf = findBox(frag, 'moof', 'traf')!;
    bases.push(tfdtOf(traf.payload));
    const trun = parseTrun(readBoxes(traf.payload).find((b) => b.type === 'trun')!.payload);
    assert.ok(trun.samples.every((s) => s.duration === 1024));
  }
  bases.forEach((b, f) => assert.equal(b, f * 47 * 1024));
  // A gap of 500 ms: the sample clock re-anchors to the packet's timestamp.
  const gapMs = frameMs(n) + 500;
  const frag = w.fragment(2, [pkt(2, gapMs, 10), pkt(2, gapMs + 21, 10)], 200);
  assert.equal(tfdtOf(findBox(frag, 'moof', 'traf')!.payload), gapMs * 48);
  // A gap inside one fragment stretches the sample before it.
  const w2 = new FragmentWriter([aac]);
  const f2 = w2.fragment(2, [pkt(2, 0, 10), pkt(2, 21, 10), pkt(2, 200, 10)], 1);
  const t2 = parseTrun(findBox(f2, 'moof', 'traf', 'trun')!.payload);
  assert.deepEqual(
    t2.samples.map((s) => s.duration),
    [1024, 200 * 48 - 1024, 1024],
  );
});

test('fragment writer refuses bad input with HazeErrors', () => {
  const w = new FragmentWriter([video]);
  assert.throws(() => w.fragment(9, [pkt(9, 0, 1)], 1), isHaze);
  assert.throws(() => w.fragment(1, [], 1), isHaze);
  assert.throws(() => w.fragment(1, [pkt(2, 0, 1)], 1), isHaze);
  assert.throws(() => w.fragment(1, [pkt(1, 0, 1)], -1), isHaze);
  assert.throws(() => w.fragment(1, [pkt(1, -5, 1)], 1), isHaze);
  assert.throws(() => w.fragmentMulti([{ trackId: 1, packets: [pkt(1, 0, 1)] }, { trackId: 1, packets: [pkt(1, 1, 1)] }], 1), isHaze);
  assert.equal(trackTimescale(opus), 48000);
});

test('styp and sidx', () => {
  const styp = readBoxes(segmentType())[0]!;
  assert.equal(styp.type, 'styp');
  assert.equal(styp.payload.toString('latin1', 0, 4), 'msdh');
  const sidx = readBoxes(segmentIndex(1, 90000, 1234, [{ size: 1000, durationTicks: 90000, startsWithSap: true }]))[0]!;
  assert.equal(sidx.type, 'sidx');
  assert.equal(sidx.payload.readUInt32BE(4), 1);
  assert.equal(sidx.payload.readUInt32BE(8), 90000);
  assert.equal(Number(sidx.payload.readBigUInt64BE(12)), 1234);
  assert.equal(sidx.payload.readUInt16BE(30), 1);
  assert.equal(sidx.payload.readUInt32BE(32), 1000);
  assert.equal(sidx.payload.readUInt32BE(40) >>> 28, 9);
});
