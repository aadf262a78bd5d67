// Progressive MP4 layout against ffmpeg: real ffmpeg-made files (H.264 with B-frames + AAC,
// HEVC + AAC, AAC-only m4a, Opus in MP4) are indexed with Haze's reader, laid out again as
// moov-first files and written sample by sample in `order`. ffprobe must see the same packets
// (raw media timeline: pts/dts within 1 ms, sizes, key flags), `-c copy -f framemd5` must hash
// the same payloads, ffmpeg must decode without a message, the boxes must be ftyp moov mdat,
// and ffprobe's presentation times must follow our edit lists (and keep the source's A/V sync).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseFramemd5, run, runOk, tmpDir } from '../helpers.js';
import { type ProbedPacket } from '../media-files.js';
import { fileByteSource, openMp4, readSample, type Mp4Index, type SampleRef } from '../../src/containers/mp4/demux.js';
import { findBox, findBoxes, readBoxes } from '../../src/containers/mp4/box.js';
import { layoutProgressiveMp4, type ProgressiveLayout, type ProgressiveTrackInput } from '../../src/containers/mp4/progressive.js';

const dir = tmpDir('haze-mp4-progressive-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const VIDEO_IN = ['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=4'];
const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '2', '-g', '50', '-pix_fmt', 'yuv420p'];
const X265 = ['-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'bframes=3:keyint=25:log-level=error', '-pix_fmt', 'yuv420p'];
const sine = (rate: number): string[] => ['-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${rate}:duration=4`];

const SOURCES: { name: string; args: string[]; codecs: string[] }[] = [
  { name: 'h264-aac.mp4', args: [...VIDEO_IN, ...sine(44100), ...X264, '-c:a', 'aac'], codecs: ['H264', 'AAC'] },
  { name: 'hevc-aac.mp4', args: [...VIDEO_IN, ...sine(48000), ...X265, '-c:a', 'aac'], codecs: ['HEVC', 'AAC'] },
  { name: 'aac.m4a', args: [...sine(44100), '-c:a', 'aac'], codecs: ['AAC'] },
  { name: 'opus.mp4', args: [...sine(48000), '-c:a', 'libopus', '-b:a', '64k'], codecs: ['opus'] },
];

async function make(name: string, args: string[]): Promise<string> {
  const file = path.join(dir, name);
  await runOk('ffmpeg', ['-v', 'error', '-y', ...args, file], { timeoutMs: 120_000 });
  return file;
}

interface Written {
  file: string;
  layout: ProgressiveLayout;
  inputs: ProgressiveTrackInput[];
  index: Mp4Index;
}

/** Indexes `src` (edit lists as asked), lays it out again and writes header + samples in order. */
async function rewrite(srcFile: string, outName: string, editList: 'apply' | 'ignore'): Promise<Written> {
  const src = await fileByteSource(srcFile);
  try {
    const index = await openMp4(src, { editList });
    assert.deepEqual(index.warnings, []);
    const perTrack: SampleRef[][] = index.tracks.map((t) => index.samples.filter((s) => s.trackId === t.id));
    const inputs: ProgressiveTrackInput[] = index.tracks.map((track, n) => {
      const s = perTrack[n]!;
      return { track, count: s.length, timeMs: (i) => s[i]!.timeMs, offsetMs: (i) => s[i]!.offsetMs, size: (i) => s[i]!.size, keyframe: (i) => s[i]!.keyframe };
    });
    const layout = layoutProgressiveMp4(inputs);
    const file = path.join(dir, outName);
    const fd = fs.openSync(file, 'w');
    try {
      fs.writeSync(fd, layout.header);
      for (let k = 0; k < layout.order.track.length; k++) {
        const pkt = await readSample(src, perTrack[layout.order.track[k]!]![layout.order.sample[k]!]!);
        assert.equal(pkt.data.length, pkt.size, 'payload as stored');
        fs.writeSync(fd, pkt.data);
      }
    } finally {
      fs.closeSync(fd);
    }
    assert.equal(fs.statSync(file).size, layout.totalBytes);
    return { file, layout, inputs, index };
  } finally {
    await src.close();
  }
}

async function probe(file: string, ignoreEditList: boolean): Promise<ProbedPacket[]> {
  const args = ['-v', 'error', ...(ignoreEditList ? ['-ignore_editlist', '1'] : []), '-show_packets', '-show_entries', 'packet=stream_index,pts_time,dts_time,size,flags', '-of', 'json', file];
  return (JSON.parse((await runOk('ffprobe', args)).toString()) as { packets: ProbedPacket[] }).packets;
}

async function framemd5(file: string): Promise<string[][]> {
  const r = await run('ffmpeg', ['-v', 'error', '-i', file, '-map', '0', '-c', 'copy', '-f', 'framemd5', '-']);
  assert.equal(r.code, 0, r.stderr);
  const perStream: string[][] = [];
  for (const f of parseFramemd5(r.stdout.toString())) (perStream[f.stream] ??= []).push(`${f.size} ${f.hash}`);
  return perStream;
}

function topLevel(file: string): string[] {
  const fd = fs.openSync(file, 'r');
  try {
    const types: string[] = [];
    const size = fs.fstatSync(fd).size;
    const h = Buffer.alloc(16);
    for (let pos = 0; pos < size; ) {
      fs.readSync(fd, h, 0, 16, pos);
      let boxSize = h.readUInt32BE(0);
      if (boxSize === 1) boxSize = Number(h.readBigUInt64BE(8));
      types.push(h.toString('latin1', 4, 8));
      pos += boxSize;
    }
    return types;
  } finally {
    fs.closeSync(fd);
  }
}

/** Each trak's edit list in seconds: [segment duration, media_time] (media_time -1: empty edit). */
function editLists(file: string): [number, number][][] {
  const buf = fs.readFileSync(file);
  const moov = readBoxes(buf).find((b) => b.type === 'moov')!;
  const movieTimescale = findBox(moov.payload, 'mvhd')!.payload.readUInt32BE(12);
  return findBoxes(moov.payload, [], 'trak').map((trak) => {
    const mediaTimescale = findBox(trak.payload, 'mdia', 'mdhd')!.payload.readUInt32BE(12);
    const elst = findBox(trak.payload, 'edts', 'elst')!.payload;
    assert.equal(elst[0], 0, 'elst version 0');
    const edits: [number, number][] = [];
    for (let i = 0; i < elst.readUInt32BE(4); i++) {
      const mediaTime = elst.readInt32BE(12 + 12 * i);
      edits.push([elst.readUInt32BE(8 + 12 * i) / movieTimescale, mediaTime < 0 ? mediaTime : mediaTime / mediaTimescale]);
    }
    return edits;
  });
}

for (const s of SOURCES) {
  test(`${s.name}: moov-first rewrite has the same packets, payloads and decodes cleanly`, async () => {
    const srcFile = await make(s.name, s.args);
    const w = await rewrite(srcFile, `out-${s.name}`, 'ignore');
    assert.deepEqual(w.index.tracks.map((t) => t.codec), s.codecs);
    assert.deepEqual(topLevel(w.file), ['ftyp', 'moov', 'mdat']);
    assert.deepEqual(readBoxes(w.layout.header.subarray(0, w.layout.header.length - 8)).map((b) => b.type), ['ftyp', 'moov']);

    // The raw media timeline (edit lists ignored by both readers) is the source's.
    const theirs = await probe(srcFile, true);
    const ours = await probe(w.file, true);
    for (let st = 0; st < s.codecs.length; st++) {
      const a = theirs.filter((p) => p.stream_index === st);
      const b = ours.filter((p) => p.stream_index === st);
      assert.equal(b.length, a.length, `stream ${st}: packet count`);
      assert.ok(a.length > 50);
      for (let i = 0; i < a.length; i++) {
        const what = `${s.name} stream ${st} packet ${i}`;
        assert.ok(Math.abs(Number(a[i]!.dts_time) - Number(b[i]!.dts_time)) <= 0.001, `${what}: dts ${b[i]!.dts_time} vs ${a[i]!.dts_time}`);
        assert.ok(Math.abs(Number(a[i]!.pts_time) - Number(b[i]!.pts_time)) <= 0.001, `${what}: pts ${b[i]!.pts_time} vs ${a[i]!.pts_time}`);
        assert.equal(b[i]!.size, a[i]!.size, `${what}: size`);
        assert.equal(b[i]!.flags[0], a[i]!.flags[0], `${what}: key flag`);
      }
    }

    // Presentation (edit lists applied): each packet at its input pts minus startMs.
    const shown = await probe(w.file, false);
    w.inputs.forEach((inp, st) => {
      const b = shown.filter((p) => p.stream_index === st);
      assert.equal(b.length, inp.count);
      for (let i = 0; i < inp.count; i++) {
        const want = inp.timeMs(i) + inp.offsetMs(i) - w.layout.startMs;
        assert.ok(Math.abs(Number(b[i]!.pts_time) * 1000 - want) <= 1, `${s.name} stream ${st} packet ${i}: presented at ${b[i]!.pts_time}, want ${want} ms`);
      }
    });

    assert.deepEqual(await framemd5(w.file), await framemd5(srcFile), 'payload hashes per stream');
    const dec = await run('ffmpeg', ['-v', 'error', '-i', w.file, '-f', 'null', '-']);
    assert.equal(dec.code, 0);
    assert.equal(dec.stderr.trim(), '', 'decodes without errors');

    // Every sample's first and last byte maps back to it.
    for (let k = 0; k < w.layout.order.track.length; k++) {
      const size = w.inputs[w.layout.order.track[k]!]!.size(w.layout.order.sample[k]!);
      assert.equal(w.layout.sampleAt(w.layout.order.offset[k]!), k);
      assert.equal(w.layout.sampleAt(w.layout.order.offset[k]! + size - 1), k);
    }
  });
}

test('h264-aac.mp4 indexed with its edit lists: the rewrite keeps the source A/V offset', async () => {
  const srcFile = path.join(dir, 'h264-aac.mp4');
  if (!fs.existsSync(srcFile)) await make('h264-aac.mp4', SOURCES[0]!.args);
  const w = await rewrite(srcFile, 'out-sync.mp4', 'apply');
  const firstPts = (pk: ProbedPacket[], st: number): number => Number(pk.find((p) => p.stream_index === st)!.pts_time);
  const theirs = await probe(srcFile, false);
  const ours = await probe(w.file, false);
  const theirOffset = firstPts(theirs, 0) - firstPts(theirs, 1);
  const ourOffset = firstPts(ours, 0) - firstPts(ours, 1);
  // The source's video starts at 0 and its AAC priming frame at -23.2 ms; Haze's ms floor that.
  assert.ok(theirOffset > 0.02, `source offset ${theirOffset}`);
  assert.ok(Math.abs(ourOffset - theirOffset) <= 0.001, `video - audio start: ours ${ourOffset}, source ${theirOffset}`);
  assert.equal(firstPts(ours, 1), 0, 'the earliest track starts the movie');
});

test('a libx264 -bf 2 stream alone gets the edit list ffmpeg writes: no empty edit, media_time = first cts', async () => {
  // ffmpeg's own demuxer shifts every track to start at pts 0 whatever media_time says, so the
  // edit list is compared with the one ffmpeg's muxer wrote rather than through ffprobe's times.
  const srcFile = await make('h264.mp4', [...VIDEO_IN, ...X264, '-an']);
  const w = await rewrite(srcFile, 'out-h264.mp4', 'ignore');
  const theirs = editLists(srcFile)[0]!;
  const ours = editLists(w.file)[0]!;
  assert.equal(theirs.length, 1);
  assert.ok(theirs[0]![1] > 0, 'ffmpeg skips the B-frame delay');
  assert.deepEqual(ours, theirs);
});
