// TsMuxer against real peers: ffprobe must recognise each stream, ffmpeg must decode what we
// muxed to exactly the frames it decodes from the source (framemd5), with monotonic timestamps.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, parseFramemd5, run, runOk, tmpDir, type FrameLine } from '../helpers.js';
import { extradata, filePackets, probePackets, type ProbedPacket, probeStreams } from '../media-files.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { TsMuxer } from '../../src/containers/ts/mux.js';
import type { AudioCodec, Packet, Track } from '../../src/media/types.js';
import { buildHvcC, parseHvcC } from '../../src/media/hevc.js';

const dir = tmpDir('haze-ts-ffmpeg-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function muxToFile(tracks: Track[], packets: Packet[], name: string): string {
  const mux = new TsMuxer(tracks);
  const parts = packets.map((p) => mux.mux(p));
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat(parts));
  return file;
}

/** Decodes a file to framemd5; fails on any decoder error or warning. */
async function decodedFrames(file: string): Promise<FrameLine[]> {
  const r = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'framemd5', '-']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', `ffmpeg reported errors decoding ${path.basename(file)}`);
  return parseFramemd5(r.stdout.toString());
}

function hashes(frames: FrameLine[], stream: number): string[] {
  return frames.filter((f) => f.stream === stream).map((f) => f.hash);
}

/**
 * Decoded audio equal frame for frame, except where the source container trimmed a frame and TS
 * cannot say so: Matroska cuts the encoder's priming (Opus pre-skip) off the first frame and the
 * padding off the last (DiscardPadding); TS decodes those frames whole. Only the first and the
 * last frame may differ, and only when the source's is the shorter one.
 */
function assertSameExceptTrimmed(got: FrameLine[], want: FrameLine[]): void {
  assert.equal(got.length, want.length, 'decoded frame count');
  assert.ok(got.length > 2);
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if ((i === 0 || i === got.length - 1) && w.duration < g.duration) continue;
    assert.equal(g.hash, w.hash, `decoded frame ${i} of ${got.length}`);
  }
}

function assertMonotonic(packets: ProbedPacket[]): void {
  const last = new Map<number, number>();
  for (const p of packets) {
    const dts = p.dts ?? p.pts;
    assert.ok(dts !== undefined, 'every packet has a timestamp');
    const prev = last.get(p.stream_index);
    if (prev !== undefined) assert.ok(dts > prev, `stream ${p.stream_index} dts ${dts} after ${prev}`);
    last.set(p.stream_index, dts);
  }
}

test('small.flv (H.264 + AAC) muxed to TS decodes to the same frames', async () => {
  const src = path.join(mistFixtures, 'small.flv');
  const flv = parseFlvFile(fs.readFileSync(src));
  const out = muxToFile(flv.tracks, flv.packets, 'small.ts');

  const streams = await probeStreams(out);
  assert.equal(streams.length, 2);
  const v = streams.find((s) => s.codec_name === 'h264');
  const a = streams.find((s) => s.codec_name === 'aac');
  assert.ok(v && a, JSON.stringify(streams));
  assert.equal(v.width, 320);
  assert.equal(v.height, 180);
  assert.equal(v.profile, 'High');
  assert.equal(a.sample_rate, '48000');
  assert.equal(a.channels, 2);

  const want = await decodedFrames(src);
  const got = await decodedFrames(out);
  // Stream order is the same in both files (video 0, audio 1).
  assert.equal(hashes(got, 0).length, 120);
  assert.deepEqual(hashes(got, 0), hashes(want, 0), 'decoded video frames');
  // AAC: the same raw frames reach the decoder (ADTS only adds a header), so even the primed
  // first frame decodes identically; nothing needs tolerating.
  assert.equal(hashes(got, 1).length, 189);
  assert.deepEqual(hashes(got, 1), hashes(want, 1), 'decoded audio frames');

  const pk = await probePackets(out);
  assertMonotonic(pk);
  // Timestamps as the muxer promises: video PTS/DTS exactly the ms values times 90; audio PTS
  // counted in samples (1920 ticks a frame at 48 kHz) and within a ms of the packet times.
  const srcVideo = flv.packets.filter((p) => p.trackId === 1);
  const srcAudio = flv.packets.filter((p) => p.trackId === 2);
  const outVideo = pk.filter((p) => p.stream_index === 0);
  const outAudio = pk.filter((p) => p.stream_index === 1);
  assert.deepEqual(outVideo.map((p) => [p.dts, p.pts]), srcVideo.map((p) => [p.timeMs * 90, (p.timeMs + p.offsetMs) * 90]));
  assert.equal(outAudio.length, srcAudio.length);
  for (let i = 0; i < outAudio.length; i++) {
    assert.ok(Math.abs(outAudio[i]!.pts! - srcAudio[i]!.timeMs * 90) <= 90, `audio ${i} near its ms time`);
    if (i > 0) assert.equal(outAudio[i]!.pts! - outAudio[i - 1]!.pts!, 1920, `audio ${i} sample-exact step`);
  }
  assert.deepEqual(outVideo.map((p) => p.flags.startsWith('K')), srcVideo.map((p) => p.keyframe));
});

test('HEVC with B-frames (libx265) muxed to TS decodes to the same frames', async () => {
  const mp4 = path.join(dir, 'hevc.mp4');
  await runOk('ffmpeg', [
    '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-t', '1',
    '-c:v', 'libx265', '-x265-params', 'bframes=3:keyint=12:log-level=error', '-pix_fmt', 'yuv420p', mp4,
  ]);
  const hvcc = await extradata(mp4, 'v:0');
  const cfg = parseHvcC(hvcc);
  assert.equal(cfg.nalLengthSize, 4);
  // Rebuild the record from its parameter sets: the muxer must work from our own hvcC too.
  const init = buildHvcC(cfg.vps, cfg.sps, cfg.pps);
  const packets = await filePackets(mp4, 'v:0', 1);
  assert.ok(packets.some((p) => p.offsetMs !== 0), 'the clip has B-frames');
  const track: Track = { type: 'video', id: 1, codec: 'HEVC', init, bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 };
  const out = muxToFile([track], packets, 'hevc.ts');

  const [s] = await probeStreams(out);
  assert.equal(s?.codec_name, 'hevc');
  assert.equal(s?.width, 320);
  assert.equal(s?.height, 180);
  const want = hashes(await decodedFrames(mp4), 0);
  const got = hashes(await decodedFrames(out), 0);
  assert.equal(want.length, 25);
  assert.deepEqual(got, want);
  assertMonotonic(await probePackets(out));
});

interface AudioCase {
  codec: AudioCodec;
  encoder: string[];
  rate: number;
  probeName: string;
}

const audioCases: AudioCase[] = [
  { codec: 'opus', encoder: ['-c:a', 'libopus', '-b:a', '64k'], rate: 48000, probeName: 'opus' },
  { codec: 'MP3', encoder: ['-c:a', 'libmp3lame', '-b:a', '128k'], rate: 44100, probeName: 'mp3' },
  { codec: 'MP3', encoder: ['-c:a', 'libmp3lame', '-b:a', '64k'], rate: 22050, probeName: 'mp3' },
  { codec: 'AC3', encoder: ['-c:a', 'ac3', '-b:a', '192k'], rate: 48000, probeName: 'ac3' },
];

for (const c of audioCases) {
  test(`${c.codec} ${c.rate} Hz muxed to TS is recognised and decodes cleanly`, async () => {
    const src = path.join(dir, `${c.probeName}-${c.rate}.mka`);
    await runOk('ffmpeg', [
      '-v', 'error', '-y', '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=${c.rate}`, '-t', '1', '-ac', '2', ...c.encoder, src,
    ]);
    const init = c.codec === 'opus' ? await extradata(src, 'a:0') : Buffer.alloc(0);
    if (c.codec === 'opus') assert.equal(init.subarray(0, 8).toString(), 'OpusHead');
    const packets = await filePackets(src, 'a:0', 7);
    const track: Track = { type: 'audio', id: 7, codec: c.codec, init, bps: 0, lang: 'eng', rate: c.rate, channels: 2, size: 16 };
    const out = muxToFile([track], packets, `${c.probeName}-${c.rate}.ts`);

    const [s] = await probeStreams(out);
    assert.equal(s?.codec_name, c.probeName);
    assert.equal(s?.sample_rate, String(c.rate));
    assert.equal(s?.channels, 2);
    const got = (await decodedFrames(out)).filter((f) => f.stream === 0);
    const want = (await decodedFrames(src)).filter((f) => f.stream === 0);
    assertSameExceptTrimmed(got, want);
    const pk = await probePackets(out);
    assert.equal(pk.length, packets.length);
    assertMonotonic(pk);
  });
}
