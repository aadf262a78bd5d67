// MatroskaWriter and the EBML reader: the header reads back (IDs, DocType, tracks, codec
// private data), SimpleBlocks carry the right track, relative timestamp and flags, Clusters
// split where promised, VINT/element encodings match hand-computed bytes, and the reader
// survives fuzzing (random bytes and mutated real output give elements or a HazeError).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { hex, isHaze, mistFixtures, resultOrHazeError } from '../helpers.js';
import {
  child, childrenOf, ebml, ID, readElements, readFloat, readSimpleBlock, readString, readUint, readVint, serializeElements, vintWidth,
  type EbmlElement,
} from '../../src/containers/mkv/ebml.js';
import { AUDIO_CLUSTER_MS, isWebmCodec, MatroskaWriter } from '../../src/containers/mkv/writer.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import type { AudioTrack, Packet, Track, VideoTrack } from '../../src/media/types.js';

const avc: VideoTrack = { type: 'video', id: 1, codec: 'H264', init: hex('01640015ffe1'), bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 };
const aac: AudioTrack = { type: 'audio', id: 2, codec: 'AAC', init: hex('1190'), bps: 0, lang: 'eng', rate: 48000, channels: 2, size: 16 };
const vp9: VideoTrack = { type: 'video', id: 5, codec: 'VP9', init: Buffer.alloc(0), bps: 0, lang: 'und', width: 640, height: 360, fpks: 0 };
// OpusHead: version 1, 2 channels, pre-skip 312, 48000 Hz, gain 0, mapping 0.
const opusHead = hex('4f707573486561640102', '3801', '80bb0000', '0000', '00');
const opus: AudioTrack = { type: 'audio', id: 9, codec: 'opus', init: opusHead, bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };

const pkt = (trackId: number, timeMs: number, keyframe: boolean, data = Buffer.from([1, 2, 3]), offsetMs = 0): Packet => ({ trackId, timeMs, offsetMs, keyframe, data });

interface Block {
  clusterMs: number;
  trackNumber: number;
  rel: number;
  timeMs: number;
  keyframe: boolean;
  frame: Buffer;
}

/** All SimpleBlocks of a written stream with their Cluster's timestamp. */
function blocks(stream: Buffer): { top: EbmlElement[]; clusters: EbmlElement[]; blocks: Block[] } {
  const top = readElements(stream);
  const segment = top.find((e) => e.id === ID.Segment)!;
  const clusters = childrenOf(segment, ID.Cluster);
  const out: Block[] = [];
  for (const c of clusters) {
    const ts = child(c, ID.Timestamp);
    assert.ok(ts, 'every Cluster has a Timestamp');
    assert.equal(c.children![0]!.id, ID.Timestamp, 'Timestamp comes first in the Cluster');
    const clusterMs = readUint(ts);
    for (const b of childrenOf(c, ID.SimpleBlock)) {
      const v = readSimpleBlock(b.data);
      assert.equal(v.lacing, 0);
      out.push({ clusterMs, trackNumber: v.trackNumber, rel: v.relTimestamp, timeMs: clusterMs + v.relTimestamp, keyframe: v.keyframe, frame: v.frame });
    }
  }
  return { top, clusters, blocks: out };
}

function writeAll(w: MatroskaWriter, packets: Packet[]): Buffer {
  return Buffer.concat([w.header(), ...packets.map((p) => w.packet(p))]);
}

test('VINT and element encodings match hand-computed bytes', () => {
  assert.deepEqual(serializeElements([ebml.uint(ID.TrackNumber, 1)]), hex('d7 81 01'));
  assert.deepEqual(serializeElements([ebml.uint(ID.TimestampScale, 1_000_000)]), hex('2ad7b1 83 0f4240'));
  assert.deepEqual(serializeElements([ebml.string(ID.DocType, 'webm')]), hex('4282 84 7765626d'));
  assert.deepEqual(serializeElements([ebml.float(ID.SamplingFrequency, 48000)]), hex('b5 88 40e7700000000000'));
  assert.deepEqual(serializeElements([ebml.int(0xfb, -1)]), hex('fb 81 ff'));
  assert.deepEqual(serializeElements([ebml.master(ID.Cluster, [], true)]), hex('1f43b675 01ffffffffffffff'));
  // 127 is all-ones in one byte (reserved), so it takes two.
  assert.equal(vintWidth(126), 1);
  assert.equal(vintWidth(127), 2);
  assert.equal(vintWidth(2 ** 14 - 2), 2);
  assert.equal(vintWidth(2 ** 14 - 1), 3);
  const big = serializeElements([ebml.binary(ID.CodecPrivate, Buffer.alloc(200))]);
  assert.deepEqual(big.subarray(0, 4), hex('63a2 40c8'));
  assert.deepEqual(readVint(hex('01 00 00 00 01 00 00 00'), 0), { value: 2 ** 24, width: 8, allOnes: false });
  assert.deepEqual(readVint(hex('ff'), 0), { value: 127, width: 1, allOnes: true });
  assert.throws(() => readVint(hex('00 80'), 0), isHaze);
  assert.throws(() => readVint(hex('40'), 0), isHaze);
});

test('the header reads back: EBML DocType, Info, and every track', () => {
  const w = new MatroskaWriter([avc, aac], { webm: false });
  const top = readElements(w.header());
  assert.deepEqual(top.map((e) => e.id), [ID.EBML, ID.Segment]);
  const head = top[0]!;
  assert.equal(readString(child(head, ID.DocType)!), 'matroska');
  assert.equal(readUint(child(head, ID.DocTypeVersion)!), 4);
  assert.equal(readUint(child(head, ID.DocTypeReadVersion)!), 2);
  assert.equal(readUint(child(head, ID.EBMLMaxIDLength)!), 4);
  const seg = top[1]!;
  assert.ok(seg.unknownSize, 'live Segment has unknown size');
  const info = child(seg, ID.Info)!;
  assert.equal(readUint(child(info, ID.TimestampScale)!), 1_000_000);
  assert.equal(readString(child(info, ID.MuxingApp)!), 'Haze');
  assert.equal(readString(child(info, ID.WritingApp)!), 'Haze');
  const entries = childrenOf(child(seg, ID.Tracks)!, ID.TrackEntry);
  assert.equal(entries.length, 2);
  const [v, a] = entries as [EbmlElement, EbmlElement];
  assert.equal(readUint(child(v, ID.TrackNumber)!), 1);
  assert.equal(readUint(child(v, ID.TrackType)!), 1);
  assert.equal(readString(child(v, ID.CodecID)!), 'V_MPEG4/ISO/AVC');
  assert.deepEqual(child(v, ID.CodecPrivate)!.data, avc.init);
  assert.equal(readString(child(v, ID.Language)!), 'und');
  assert.equal(readUint(child(v, ID.DefaultDuration)!), 40_000_000);
  const video = child(v, ID.Video)!;
  assert.equal(readUint(child(video, ID.PixelWidth)!), 320);
  assert.equal(readUint(child(video, ID.PixelHeight)!), 180);
  assert.equal(readUint(child(a, ID.TrackNumber)!), 2);
  assert.equal(readUint(child(a, ID.TrackType)!), 2);
  assert.equal(readString(child(a, ID.CodecID)!), 'A_AAC');
  assert.equal(readString(child(a, ID.Language)!), 'eng');
  assert.deepEqual(child(a, ID.CodecPrivate)!.data, aac.init);
  const audio = child(a, ID.Audio)!;
  assert.equal(readFloat(child(audio, ID.SamplingFrequency)!), 48000);
  assert.equal(readUint(child(audio, ID.Channels)!), 2);
  assert.notEqual(readUint(child(v, ID.TrackUID)!), readUint(child(a, ID.TrackUID)!));
});

test('WebM header: DocType webm, VP9 + Opus with CodecDelay and SeekPreRoll', () => {
  const w = new MatroskaWriter([vp9, opus], { webm: true });
  const [head, seg] = readElements(w.header()) as [EbmlElement, EbmlElement];
  assert.equal(readString(child(head, ID.DocType)!), 'webm');
  // CodecDelay/SeekPreRoll are version-4 elements.
  assert.equal(readUint(child(head, ID.DocTypeVersion)!), 4);
  const [v, a] = childrenOf(child(seg, ID.Tracks)!, ID.TrackEntry) as [EbmlElement, EbmlElement];
  assert.equal(readString(child(v, ID.CodecID)!), 'V_VP9');
  assert.equal(child(v, ID.CodecPrivate), undefined, 'no empty CodecPrivate');
  assert.equal(readString(child(a, ID.CodecID)!), 'A_OPUS');
  assert.deepEqual(child(a, ID.CodecPrivate)!.data, opusHead);
  assert.equal(readUint(child(a, ID.CodecDelay)!), 6_500_000); // 312 samples at 48 kHz
  assert.equal(readUint(child(a, ID.SeekPreRoll)!), 80_000_000);
  const [vOnly] = readElements(new MatroskaWriter([vp9], { webm: true }).header()) as [EbmlElement];
  assert.equal(readUint(child(vOnly, ID.DocTypeVersion)!), 2);
});

test('codec IDs for every supported codec; WebM refuses non-WebM codecs', () => {
  const cases: [Track, string][] = [
    [{ ...avc, codec: 'HEVC' }, 'V_MPEGH/ISO/HEVC'],
    [{ ...avc, codec: 'VP8' }, 'V_VP8'],
    [{ ...avc, codec: 'AV1' }, 'V_AV1'],
    [{ ...aac, codec: 'AC3' }, 'A_AC3'],
    [{ ...aac, codec: 'MP3' }, 'A_MPEG/L3'],
    [{ ...aac, codec: 'vorbis' }, 'A_VORBIS'],
  ];
  for (const [t, id] of cases) {
    const [, seg] = readElements(new MatroskaWriter([t], { webm: false }).header()) as [EbmlElement, EbmlElement];
    assert.equal(readString(child(childrenOf(child(seg, ID.Tracks)!, ID.TrackEntry)[0]!, ID.CodecID)!), id);
  }
  assert.equal(isWebmCodec(vp9), true);
  assert.equal(isWebmCodec(opus), true);
  assert.equal(isWebmCodec({ ...avc, codec: 'AV1' }), true);
  assert.equal(isWebmCodec(avc), false);
  assert.equal(isWebmCodec(aac), false);
  assert.throws(() => new MatroskaWriter([avc], { webm: true }), isHaze);
  assert.throws(() => new MatroskaWriter([{ ...aac, codec: 'ALAW' }], { webm: false }), isHaze);
  assert.throws(() => new MatroskaWriter([{ type: 'meta', id: 3, codec: 'JSON', init: Buffer.alloc(0), bps: 0, lang: 'und' }], { webm: false }), isHaze);
  assert.throws(() => new MatroskaWriter([], { webm: false }), isHaze);
  assert.throws(() => new MatroskaWriter([avc], { webm: false }).packet(pkt(42, 0, true)), isHaze);
});

test('SimpleBlocks: track number, relative presentation timestamp, keyframe flag, payload', () => {
  const w = new MatroskaWriter([avc, aac], { webm: false });
  const frames = [Buffer.from('key'), Buffer.from('aud'), Buffer.from('bframe'), Buffer.from('pframe')];
  const out = writeAll(w, [
    pkt(1, 1000, true, frames[0], 80),
    pkt(2, 1010, true, frames[1]),
    pkt(1, 1040, false, frames[2], -40 + 40), // offset 0
    pkt(1, 1080, false, frames[3], 120),
  ]);
  const { clusters, blocks: b } = blocks(out);
  assert.equal(clusters.length, 1);
  assert.ok(clusters[0]!.unknownSize, 'live Cluster has unknown size');
  assert.equal(b[0]!.clusterMs, 1080, 'cluster starts at the keyframe PTS');
  assert.deepEqual(b.map((x) => [x.trackNumber, x.rel, x.timeMs, x.keyframe]), [
    [1, 0, 1080, true],
    [2, -70, 1010, true],
    [1, -40, 1040, false],
    [1, 120, 1200, false],
  ]);
  assert.deepEqual(b.map((x) => x.frame), frames);
  // A single packet's output is exactly one cluster header + one SimpleBlock.
  const w2 = new MatroskaWriter([avc], { webm: false });
  w2.header();
  assert.deepEqual(w2.packet(pkt(1, 0, true, Buffer.from([0xaa]))), hex('1f43b675 01ffffffffffffff e7 81 00', 'a3 85 81 0000 80 aa'));
  assert.deepEqual(w2.packet(pkt(1, 40, false, Buffer.from([0xbb]))), hex('a3 85 81 0028 00 bb'));
});

test('clusters start at each video keyframe, on int16 overflow, and every 5 s for audio only', () => {
  // Video + audio: a keyframe every 2 s, audio every 20 ms: one cluster per keyframe.
  const packets: Packet[] = [];
  for (let t = 0; t < 6000; t += 20) {
    if (t % 40 === 0) packets.push(pkt(1, t, t % 2000 === 0));
    packets.push(pkt(2, t, true));
  }
  let r = blocks(writeAll(new MatroskaWriter([avc, aac], { webm: false }), packets));
  assert.deepEqual(r.clusters.map((c) => readUint(child(c, ID.Timestamp)!)), [0, 2000, 4000]);
  for (const c of r.clusters) {
    const first = readSimpleBlock(childrenOf(c, ID.SimpleBlock)[0]!.data);
    assert.equal(first.trackNumber, 1);
    assert.ok(first.keyframe, 'each cluster opens with a video keyframe');
  }
  assert.deepEqual(r.blocks.map((x) => x.timeMs), packets.map((p) => p.timeMs));

  // Video with one keyframe only, 70 s long: relative timestamps would overflow int16.
  const sparse: Packet[] = [];
  for (let t = 0; t <= 70_000; t += 1000) sparse.push(pkt(1, t, t === 0));
  r = blocks(writeAll(new MatroskaWriter([avc], { webm: false }), sparse));
  assert.deepEqual(r.clusters.map((c) => readUint(child(c, ID.Timestamp)!)), [0, 33_000, 66_000]);
  assert.deepEqual(r.blocks.map((x) => x.timeMs), sparse.map((p) => p.timeMs));
  assert.ok(r.blocks.every((x) => x.rel >= -32768 && x.rel <= 32767));

  // Audio only: a new cluster once AUDIO_CLUSTER_MS have passed.
  const audio: Packet[] = [];
  for (let t = 0; t < 12_000; t += 21) audio.push(pkt(2, t, true));
  r = blocks(writeAll(new MatroskaWriter([aac], { webm: false }), audio));
  const starts = r.clusters.map((c) => readUint(child(c, ID.Timestamp)!));
  assert.equal(starts.length, 3);
  assert.equal(starts[0], 0);
  for (let i = 1; i < starts.length; i++) {
    assert.ok(starts[i]! - starts[i - 1]! >= AUDIO_CLUSTER_MS && starts[i]! - starts[i - 1]! < AUDIO_CLUSTER_MS + 21);
  }
  assert.deepEqual(r.blocks.map((x) => x.timeMs), audio.map((p) => p.timeMs));

  // Timestamps behind the cluster by more than int16: clamped, cluster times never decrease.
  const w = new MatroskaWriter([avc], { webm: false });
  const back = blocks(writeAll(w, [pkt(1, 40_000, true), pkt(1, 1000, false)]));
  assert.deepEqual(back.clusters.map((c) => readUint(child(c, ID.Timestamp)!)), [40_000, 40_000]);
  assert.equal(back.blocks[1]!.rel, -32768);
});

test('small.flv written as Matroska reads back packet for packet', () => {
  const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
  const w = new MatroskaWriter(flv.tracks, { webm: false });
  const r = blocks(writeAll(w, flv.packets));
  assert.equal(r.blocks.length, flv.packets.length);
  for (let i = 0; i < r.blocks.length; i++) {
    const p = flv.packets[i]!;
    const b = r.blocks[i]!;
    assert.equal(b.trackNumber, w.trackNumber(p.trackId));
    assert.equal(b.timeMs, p.timeMs + p.offsetMs);
    assert.equal(b.keyframe, p.keyframe);
    assert.ok(b.frame.equals(p.data));
  }
  const keyframes = flv.packets.filter((p) => p.keyframe && flv.tracks.find((t) => t.id === p.trackId)?.type === 'video').length;
  assert.equal(r.clusters.length, keyframes);
});

test('reader: unknown-size Clusters end at the next Cluster; bounds are enforced', () => {
  const w = new MatroskaWriter([avc], { webm: false });
  const out = writeAll(w, [pkt(1, 0, true), pkt(1, 40, false), pkt(1, 80, true)]);
  const seg = readElements(out)[1]!;
  const clusters = childrenOf(seg, ID.Cluster);
  assert.deepEqual(clusters.map((c) => childrenOf(c, ID.SimpleBlock).length), [2, 1]);
  // Truncated input is a short read, not a partial tree.
  assert.throws(() => readElements(out.subarray(0, 30)), (e: unknown) => isHaze(e) && (e as { code: string }).code === 'HAZE_ERR_SHORT_READ');
  // Unknown size on a non-master element is malformed.
  assert.throws(() => readElements(hex('4282 ff 00')), isHaze);
  // Nesting and element count are bounded.
  const deep = Buffer.concat(Array.from({ length: 40 }, () => hex('a0 ff')));
  assert.throws(() => readElements(deep), isHaze);
  assert.throws(() => readElements(out, { maxElements: 5 }), isHaze);
});

test('fuzz: random bytes give elements or a HazeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      resultOrHazeError(() => readElements(Buffer.from(bytes)));
    }),
    { numRuns: 3000 },
  );
});

test('fuzz: mutated real output gives elements or a HazeError, and readSimpleBlock never throws otherwise', () => {
  const w = new MatroskaWriter([vp9, opus], { webm: true });
  const real = writeAll(w, [pkt(5, 0, true, Buffer.alloc(20, 7)), pkt(9, 0, true), pkt(9, 20, true), pkt(5, 40, false, Buffer.alloc(9, 1))]);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(real.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat(real.length), (edits, cut) => {
      const buf = Buffer.from(real.subarray(0, Math.max(cut, 1)));
      for (const [at, v] of edits) if (at < buf.length) buf[at] = v;
      resultOrHazeError(() => {
        const walk = (els: EbmlElement[]): void => {
          for (const e of els) {
            if (e.id === ID.SimpleBlock) readSimpleBlock(e.data);
            if (e.children) walk(e.children);
          }
        };
        walk(readElements(buf));
      });
    }),
    { numRuns: 3000 },
  );
});
