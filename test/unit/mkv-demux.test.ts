// MatroskaDemuxer on hand-built Matroska (every lacing kind, BlockGroups with and without
// ReferenceBlock, negative relative timestamps, a TimestampScale of 0.1 ms, old A_AAC/... ids,
// unsupported tracks, Void/CRC-32 skipping) with hand-computed expectations; Haze's own live
// writer output (unknown-size Segment and Clusters) read back packet for packet; fuzzing:
// random bytes and chunk splits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { hex, isHaze, mistFixtures, resultOrHazeError } from '../helpers.js';
import { ebml, ID, serializeElements, type EbmlNode } from '../../src/containers/mkv/ebml.js';
import { MatroskaWriter } from '../../src/containers/mkv/writer.js';
import { demuxMatroska, mergeResults, MatroskaDemuxer, MKV_ID, type MkvDemuxResult } from '../../src/containers/mkv/demux.js';
import { splitLaces, LACING_EBML, LACING_FIXED, LACING_XIPH } from '../../src/containers/mkv/lacing.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { parseAsc } from '../../src/media/aac.js';

/** SimpleBlock / Block payload: track VINT, int16 relative time, flags, frames (laced or not). */
function blockData(track: number, rel: number, flags: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = 0x80 | track;
  h.writeInt16BE(rel, 1);
  h[3] = flags;
  return Buffer.concat([h, body]);
}

const frame = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

function handBuilt(): { file: Buffer; clusterAt: number } {
  const xiph = Buffer.concat([hex('02'), hex('ff 2d'), hex('02'), frame(300, 1), frame(2, 2), frame(5, 3)]);
  // EBML lacing: 3 frames of 10, 7, 12: first size 10 (0x8a), delta -3 as 1-byte signed VINT (63-3=60 -> 0xbc).
  const ebmlLaced = Buffer.concat([hex('02 8a bc'), frame(10, 4), frame(7, 5), frame(12, 6)]);
  const fixed = Buffer.concat([hex('01'), frame(4, 7), frame(4, 8)]);
  const entries: EbmlNode[] = [
    ebml.master(ID.TrackEntry, [
      ebml.uint(ID.TrackNumber, 1), ebml.uint(ID.TrackType, 2), ebml.string(ID.CodecID, 'A_AAC'),
      ebml.binary(ID.CodecPrivate, hex('1190')), ebml.uint(ID.DefaultDuration, 21_333_333),
      ebml.master(ID.Audio, [ebml.float(ID.SamplingFrequency, 48000), ebml.uint(ID.Channels, 2)]),
    ]),
    ebml.master(ID.TrackEntry, [
      ebml.uint(ID.TrackNumber, 2), ebml.uint(ID.TrackType, 1), ebml.string(ID.CodecID, 'V_VP8'), ebml.string(0x22b59d, 'de-CH'),
      ebml.master(ID.Video, [ebml.uint(ID.PixelWidth, 320), ebml.uint(ID.PixelHeight, 180)]),
    ]),
    ebml.master(ID.TrackEntry, [
      ebml.uint(ID.TrackNumber, 3), ebml.uint(ID.TrackType, 2), ebml.string(ID.CodecID, 'A_AAC/MPEG4/LC/SBR'),
      ebml.master(ID.Audio, [ebml.float(ID.SamplingFrequency, 22050), ebml.float(0x78b5, 44100), ebml.uint(ID.Channels, 2)]),
    ]),
    ebml.master(ID.TrackEntry, [ebml.uint(ID.TrackNumber, 4), ebml.uint(ID.TrackType, 2), ebml.string(ID.CodecID, 'A_DTS')]),
  ];
  const cluster = ebml.master(ID.Cluster, [
    ebml.uint(ID.Timestamp, 10_000),
    ebml.binary(ID.Void, Buffer.alloc(5)),
    ebml.binary(ID.SimpleBlock, blockData(1, 0, 0x80 | 0x02, xiph)),
    ebml.binary(ID.CRC32, Buffer.alloc(4)),
    ebml.binary(ID.SimpleBlock, blockData(1, 1000, 0x80 | 0x06, ebmlLaced)),
    ebml.binary(ID.SimpleBlock, blockData(1, 2000, 0x80 | 0x04, fixed)),
    ebml.master(ID.BlockGroup, [ebml.binary(ID.Block, blockData(2, -50, 0, frame(20, 9)))]),
    ebml.master(ID.BlockGroup, [
      ebml.binary(ID.Block, blockData(2, 400, 0, frame(21, 10))),
      ebml.int(MKV_ID.ReferenceBlock, -450),
      ebml.uint(MKV_ID.BlockDuration, 400),
    ]),
    ebml.binary(ID.SimpleBlock, blockData(3, 0, 0x80, frame(6, 11))),
    ebml.binary(ID.SimpleBlock, blockData(4, 0, 0x80, frame(6, 12))),
    ebml.binary(ID.SimpleBlock, blockData(4, 10, 0x80, frame(6, 12))),
  ]);
  const head = serializeElements([
    ebml.master(ID.EBML, [ebml.string(ID.DocType, 'matroska'), ebml.uint(ID.DocTypeVersion, 4)]),
  ]);
  const segChildren: EbmlNode[] = [
    ebml.master(ID.Info, [ebml.uint(ID.TimestampScale, 100_000), ebml.float(ID.Duration, 20_000)]),
    ebml.master(ID.Tracks, entries),
    ebml.master(ID.Tags, [ebml.binary(0x7373, Buffer.alloc(40))]),
  ];
  const segHead = serializeElements([ebml.master(ID.Segment, segChildren, true)]);
  const clusterBytes = serializeElements([cluster]);
  const clusterPos = head.length + segHead.length;
  // Cues: one point at 1000 ms (10000 ticks) for track 2, relative to the Segment data start (12 bytes in).
  const cues = serializeElements([
    ebml.master(ID.Cues, [
      ebml.master(MKV_ID.CuePoint, [
        ebml.uint(MKV_ID.CueTime, 10_000),
        ebml.master(MKV_ID.CueTrackPositions, [ebml.uint(MKV_ID.CueTrack, 2), ebml.uint(MKV_ID.CueClusterPosition, clusterPos - head.length - 12)]),
      ]),
    ]),
  ]);
  return { file: Buffer.concat([head, segHead, clusterBytes, cues]), clusterAt: clusterPos };
}

test('hand-built file: lacing, BlockGroups, negative relative time, TimestampScale 0.1 ms, cues, warnings', () => {
  const { file, clusterAt } = handBuilt();
  const r = demuxMatroska(file);
  assert.deepEqual(r.info, { timestampScaleNs: 100_000, durationMs: 2000 });
  assert.deepEqual(r.tracks!.map((t) => [t.id, t.codec, t.lang]), [[1, 'AAC', 'eng'], [2, 'VP8', 'ger'], [3, 'AAC', 'eng']]);
  const sbr = r.tracks![2]!;
  assert.ok(sbr.type === 'audio');
  const asc = parseAsc(sbr.init);
  assert.equal(asc.objectType, 5);
  assert.equal(asc.sampleRate, 22050);
  assert.equal(asc.extensionSampleRate, 44100);
  assert.equal(sbr.rate, 44100);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, /track 4.*A_DTS/);
  const rows = r.packets.map((p) => [p.trackId, p.timeMs, p.offsetMs, p.keyframe, p.size, p.data[0]]);
  assert.deepEqual(rows, [
    // Xiph: frames at 1000 + k * 21.333 ms, floored.
    [1, 1000, 0, true, 300, 1], [1, 1021, 0, true, 2, 2], [1, 1042, 0, true, 5, 3],
    // EBML lacing at +100 ms.
    [1, 1100, 0, true, 10, 4], [1, 1121, 0, true, 7, 5], [1, 1142, 0, true, 12, 6],
    // fixed lacing at +200 ms.
    [1, 1200, 0, true, 4, 7], [1, 1221, 0, true, 4, 8],
    // Block -5 ms before the Cluster, no ReferenceBlock: a keyframe.
    [2, 995, 0, true, 20, 9],
    // With a ReferenceBlock: not a keyframe.
    [2, 1040, 0, false, 21, 10],
    [3, 1000, 0, true, 6, 11],
  ]);
  for (const p of r.packets) assert.ok(p.pos > clusterAt && (file[p.pos] === ID.SimpleBlock || file[p.pos] === ID.BlockGroup));
  assert.deepEqual(r.cues, [{ timeMs: 1000, trackId: 2, clusterPos: clusterAt }]);
  assert.equal(file.readUInt32BE(clusterAt), ID.Cluster);
});

test('lacing: sizes past the block, bad fixed split and reserved EBML sizes are HazeErrors', () => {
  assert.deepEqual(splitLaces(hex('01 02 aa bb cc'), LACING_XIPH, 0), [hex('aabb'), hex('cc')]);
  assert.deepEqual(splitLaces(hex('01 aa bb'), LACING_FIXED, 0), [hex('aa'), hex('bb')]);
  assert.deepEqual(splitLaces(hex('01 81 aa bb cc'), LACING_EBML, 0), [hex('aa'), hex('bbcc')]);
  assert.throws(() => splitLaces(hex('01 05 aa'), LACING_XIPH, 0), isHaze);
  assert.throws(() => splitLaces(hex('01 ff ff'), LACING_XIPH, 0), isHaze);
  assert.throws(() => splitLaces(hex('02 aa bb'), LACING_FIXED, 0), isHaze);
  assert.throws(() => splitLaces(hex('01 ff aa'), LACING_EBML, 0), isHaze);
  assert.throws(() => splitLaces(hex('02 82 80 aa'), LACING_EBML, 0), isHaze, 'second size 2-63 < 0');
  assert.throws(() => splitLaces(Buffer.alloc(0), LACING_XIPH, 0), isHaze);
});

test("Haze's live writer output (unknown-size Segment and Clusters) reads back packet for packet", () => {
  const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
  const w = new MatroskaWriter(flv.tracks, { webm: false });
  const bytes = Buffer.concat([w.header(), ...flv.packets.map((p) => w.packet(p))]);
  const r = demuxMatroska(bytes);
  assert.deepEqual(r.warnings, []);
  assert.equal(r.tracks!.length, flv.tracks.length);
  for (const t of flv.tracks) {
    const mt = r.tracks!.find((x) => x.id === w.trackNumber(t.id))!;
    assert.equal(mt.codec, t.codec);
    assert.deepEqual(mt.init, t.init);
    const want = flv.packets.filter((p) => p.trackId === t.id);
    const got = r.packets.filter((p) => p.trackId === mt.id);
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      assert.deepEqual(got[i]!.data, want[i]!.data);
      assert.equal(got[i]!.keyframe, want[i]!.keyframe);
      // The writer stores PTS; DTS comes back from the reorder model, PTS exactly.
      assert.equal(got[i]!.timeMs + got[i]!.offsetMs, Math.round(want[i]!.timeMs + want[i]!.offsetMs));
    }
  }
});

test('bounds: oversized blocks, unknown size on a non-master and a foreign DocType are HazeErrors', () => {
  const { file } = handBuilt();
  assert.throws(() => new MatroskaDemuxer({ maxBlockBytes: 100 }).push(file), (e) => isHaze(e) && (e as { code: string }).code === 'HAZE_ERR_TOO_LARGE');
  const foreign = serializeElements([ebml.master(ID.EBML, [ebml.string(ID.DocType, 'mka-not')])]);
  assert.throws(() => demuxMatroska(foreign), isHaze);
  // A SimpleBlock with the unknown-size marker.
  const bad = Buffer.concat([serializeElements([ebml.master(ID.EBML, [ebml.string(ID.DocType, 'webm')])]), hex('18538067 01ffffffffffffff a3 ff')]);
  assert.throws(() => demuxMatroska(bad), isHaze);
  // A truncated file: the packets before the cut, a warning, no throw.
  const r = demuxMatroska(file.subarray(0, file.length - 30));
  assert.ok(r.warnings.some((w) => /ends inside/.test(w)));
});

test('fuzz: random bytes, with and without a valid header in front, give a result or a HazeError', () => {
  const { file } = handBuilt();
  const prefix = file.subarray(0, 200);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), (bytes, withHeader) => {
      const input = withHeader ? Buffer.concat([prefix, bytes]) : Buffer.from(bytes);
      resultOrHazeError(() => demuxMatroska(input));
    }),
    { numRuns: 400 },
  );
});

test('fuzz: chunk splits of a real stream give the same packets as the whole', () => {
  const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
  const w = new MatroskaWriter(flv.tracks, { webm: false });
  const bytes = Buffer.concat([w.header(), ...flv.packets.map((p) => w.packet(p))]);
  const { file } = handBuilt();
  for (const input of [bytes, file]) {
    const whole = demuxMatroska(input);
    const sig = (r: MkvDemuxResult): string[] => r.packets.map((p) => `${p.trackId}/${p.timeMs}/${p.offsetMs}/${p.keyframe}/${p.pos}/${p.data.toString('base64')}`).sort();
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 30 }), (cuts) => {
        const d = new MatroskaDemuxer();
        const parts: MkvDemuxResult[] = [];
        let prev = 0;
        for (const c of [...new Set(cuts)].sort((a, b) => a - b).concat(input.length)) {
          parts.push(d.push(input.subarray(prev, c)));
          prev = c;
        }
        parts.push(d.end());
        const r = mergeResults(parts);
        assert.deepEqual(r.tracks, whole.tracks);
        assert.deepEqual(r.cues, whole.cues);
        assert.deepEqual(sig(r), sig(whole));
      }),
      { numRuns: 25 },
    );
  }
});
