// fMP4 writer against real peers: ffprobe must see the tracks with their durations, ffmpeg must
// read back the same payloads in the same order with the same composition offsets as the source,
// and decode to the same frames.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, parseFramemd5, run, runOk, tmpDir } from '../helpers.js';
import { extradata, filePackets } from '../media-files.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { initSegment } from '../../src/containers/mp4/init.js';
import { FragmentWriter } from '../../src/containers/mp4/fragment.js';
import type { Packet, Track } from '../../src/media/types.js';

const dir = tmpDir('haze-mp4-ffmpeg-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

interface ProbedStream {
  codec_type: string;
  codec_name: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
  duration?: string;
}

async function probe(file: string): Promise<{ streams: ProbedStream[]; format: { duration: string } }> {
  const out = await runOk('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file]);
  return JSON.parse(out.toString()) as { streams: ProbedStream[]; format: { duration: string } };
}

interface CopiedFrame {
  hash: string;
  /** pts - dts in ms. */
  ctoMs: number;
}

/** `-c copy` framemd5 of one stream type, with pts-dts converted from the stream's timebase. */
async function copiedFrames(file: string, type: 'v' | 'a'): Promise<CopiedFrame[]> {
  const r = await run('ffmpeg', ['-v', 'error', '-i', file, '-map', `0:${type}:0`, '-c', 'copy', '-f', 'framemd5', '-']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', `ffmpeg reported errors reading ${path.basename(file)}`);
  const text = r.stdout.toString();
  const tb = /^#tb 0: (\d+)\/(\d+)$/m.exec(text);
  assert.ok(tb, 'framemd5 names the timebase');
  const msPerTick = (1000 * Number(tb[1])) / Number(tb[2]);
  return parseFramemd5(text).map((f) => ({ hash: f.hash, ctoMs: Math.round((f.pts - f.dts) * msPerTick) }));
}

async function decodedHashes(file: string, type: 'v' | 'a'): Promise<string[]> {
  const r = await run('ffmpeg', ['-v', 'error', '-i', file, '-map', `0:${type}:0`, '-f', 'framemd5', '-']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', `ffmpeg reported errors decoding ${path.basename(file)}`);
  return parseFramemd5(r.stdout.toString()).map((f) => f.hash);
}

/** Cuts packets (decode order) into ~1 s groups starting at video keyframes (or every 1 s without video). */
function cut(packets: readonly Packet[], videoId: number | undefined): Packet[][] {
  const groups: Packet[][] = [];
  let cur: Packet[] = [];
  let startMs = -Infinity;
  for (const p of packets) {
    const boundary = videoId === undefined ? p.timeMs - startMs >= 1000 : p.trackId === videoId && p.keyframe && p.timeMs - startMs >= 1000;
    if (boundary) {
      if (cur.length > 0) groups.push(cur);
      cur = [];
      startMs = p.timeMs;
    }
    cur.push(p);
  }
  if (cur.length > 0) groups.push(cur);
  return groups;
}

/** init + fragments: one moof with a traf per track (multi) or one moof per track per group. */
function writeMp4(tracks: Track[], packets: readonly Packet[], name: string, multi: boolean): string {
  const video = tracks.find((t) => t.type === 'video');
  const writer = new FragmentWriter(tracks);
  const parts = [initSegment(tracks)];
  let seq = 1;
  for (const group of cut(packets, video?.id)) {
    const byTrack = tracks.map((t) => ({ trackId: t.id, packets: group.filter((p) => p.trackId === t.id) })).filter((g) => g.packets.length > 0);
    if (multi) parts.push(writer.fragmentMulti(byTrack, seq++));
    else for (const g of byTrack) parts.push(writer.fragment(g.trackId, g.packets, seq++));
  }
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat(parts));
  return file;
}

const smallFlv = path.join(mistFixtures, 'small.flv');

for (const multi of [true, false]) {
  test(`small.flv (H.264 + AAC) as fMP4 (${multi ? 'multi-track' : 'per-track'} fragments): same tracks, payloads, offsets and frames`, async () => {
    const flv = parseFlvFile(fs.readFileSync(smallFlv));
    const tracks = flv.tracks.filter((t) => t.type === 'video' || t.type === 'audio');
    assert.equal(tracks.length, 2);
    const file = writeMp4(tracks, flv.packets, multi ? 'small-multi.mp4' : 'small-per-track.mp4', multi);

    const info = await probe(file);
    const v = info.streams.find((s) => s.codec_type === 'video');
    const a = info.streams.find((s) => s.codec_type === 'audio');
    assert.equal(v?.codec_name, 'h264');
    assert.equal(v?.width, 320);
    assert.equal(v?.height, 180);
    assert.equal(a?.codec_name, 'aac');
    assert.equal(a?.sample_rate, '48000');
    assert.equal(a?.channels, 2);
    const src = await probe(smallFlv);
    const duration = Number(info.format.duration);
    assert.ok(Math.abs(duration - Number(src.format.duration)) < 0.1, `duration ${duration} vs source ${src.format.duration}`);
    for (const s of [v!, a!]) assert.ok(Math.abs(Number(s.duration) - 4) < 0.2, `${s.codec_type} duration ${s.duration}`);

    for (const type of ['v', 'a'] as const) {
      const got = await copiedFrames(file, type);
      const want = await copiedFrames(smallFlv, type);
      assert.ok(want.length > 50);
      assert.deepEqual(
        got.map((f) => f.hash),
        want.map((f) => f.hash),
        `${type} payloads`,
      );
      assert.deepEqual(
        got.map((f) => f.ctoMs),
        want.map((f) => f.ctoMs),
        `${type} composition offsets`,
      );
    }
    if (multi) {
      const wantVideo = await decodedHashes(smallFlv, 'v');
      assert.deepEqual(await decodedHashes(file, 'v'), wantVideo);
    }
  });
}

test('HEVC with B-frames (libx265) as fMP4 decodes to the same frames', async () => {
  const src = path.join(dir, 'hevc.mp4');
  // prettier-ignore
  await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25:duration=2',
    '-c:v', 'libx265', '-x265-params', 'bframes=3:keyint=25:log-level=error', '-pix_fmt', 'yuv420p', src]);
  const init = await extradata(src, 'v:0');
  assert.ok(init.length > 20, 'hvcC from ffprobe');
  const packets = await filePackets(src, 'v:0', 1);
  assert.ok(packets.some((p) => p.offsetMs !== 0), 'the clip has composition offsets');
  const track: Track = { type: 'video', id: 1, codec: 'HEVC', init, bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 };
  const file = writeMp4([track], packets, 'hevc-out.mp4', false);
  const info = await probe(file);
  assert.equal(info.streams[0]?.codec_name, 'hevc');
  assert.equal(info.streams[0]?.width, 320);
  assert.ok(Math.abs(Number(info.streams[0]?.duration) - 2) < 0.1, `duration ${info.streams[0]?.duration}`);
  const got = await copiedFrames(file, 'v');
  const want = await copiedFrames(src, 'v');
  assert.deepEqual(
    got.map((f) => f.hash),
    want.map((f) => f.hash),
  );
  assert.deepEqual(
    got.map((f) => f.ctoMs),
    want.map((f) => f.ctoMs),
  );
  assert.deepEqual(await decodedHashes(file, 'v'), await decodedHashes(src, 'v'));
});

for (const c of [
  { codec: 'opus' as const, enc: ['-c:a', 'libopus', '-b:a', '64k'], ext: 'mkv', rate: 48000 },
  { codec: 'AC3' as const, enc: ['-c:a', 'ac3', '-b:a', '192k'], ext: 'mkv', rate: 48000 },
]) {
  test(`${c.codec} as fMP4: same payloads and decoded audio`, async () => {
    const src = path.join(dir, `${c.codec}.${c.ext}`);
    await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${c.rate}:duration=2`, '-ac', '2', ...c.enc, src]);
    const init = c.codec === 'opus' ? await extradata(src, 'a:0') : Buffer.alloc(0);
    const packets = await filePackets(src, 'a:0', 2);
    const track: Track = { type: 'audio', id: 2, codec: c.codec, init, bps: 0, lang: 'und', rate: c.rate, channels: 2, size: 16 };
    const file = writeMp4([track], packets, `${c.codec}-out.mp4`, false);
    const info = await probe(file);
    assert.equal(info.streams[0]?.codec_name, c.codec === 'opus' ? 'opus' : 'ac3');
    assert.equal(info.streams[0]?.channels, 2);
    assert.ok(Math.abs(Number(info.streams[0]?.duration) - 2) < 0.1, `duration ${info.streams[0]?.duration}`);
    assert.deepEqual(
      (await copiedFrames(file, 'a')).map((f) => f.hash),
      (await copiedFrames(src, 'a')).map((f) => f.hash),
    );
    const got = await decodedHashes(file, 'a');
    const want = await decodedHashes(src, 'a');
    assert.equal(got.length, want.length);
    // Matroska trims the Opus pre-skip off the first frame; MP4 without an edit list does not.
    assert.deepEqual(got.slice(1, -1), want.slice(1, -1));
  });
}
