// MatroskaWriter against real peers: ffprobe must recognise each stream of what we wrote, and
// ffmpeg must decode it to exactly the frames it decodes from the source (framemd5); with
// `-c copy` the packets it reads back must be the source's payloads, in order.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, parseFramemd5, run, runOk, tmpDir, type FrameLine } from '../helpers.js';
import { extradata, filePackets, probePackets, probeStreams } from '../media-files.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { MatroskaWriter } from '../../src/containers/mkv/writer.js';
import type { Packet, Track } from '../../src/media/types.js';

const dir = tmpDir('haze-mkv-ffmpeg-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function probeFormat(file: string): Promise<string> {
  const out = await runOk('ffprobe', ['-v', 'error', '-show_format', '-of', 'json', file]);
  return (JSON.parse(out.toString()) as { format: { format_name: string } }).format.format_name;
}

function writeFile(tracks: Track[], packets: Packet[], webm: boolean, name: string): string {
  const w = new MatroskaWriter(tracks, { webm });
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat([w.header(), ...packets.map((p) => w.packet(p))]));
  return file;
}

/** framemd5 of one stream, decoded or copied; fails on any ffmpeg error. */
async function frames(file: string, stream: string, copy: boolean): Promise<FrameLine[]> {
  const args = ['-v', 'error', '-i', file, '-map', `0:${stream}`];
  if (copy) args.push('-c', 'copy');
  else args.push('-fps_mode', 'passthrough');
  const r = await run('ffmpeg', [...args, '-f', 'framemd5', '-']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', `ffmpeg reported errors reading ${path.basename(file)}`);
  return parseFramemd5(r.stdout.toString());
}

const hashes = (f: FrameLine[]): string[] => f.map((x) => x.hash);

test('small.flv (H.264 + AAC) written as .mkv: ffprobe, decoded frames and copied packets match', async () => {
  const src = path.join(mistFixtures, 'small.flv');
  const flv = parseFlvFile(fs.readFileSync(src));
  const out = writeFile(flv.tracks, flv.packets, false, 'small.mkv');

  assert.match(await probeFormat(out), /matroska/);
  const streams = await probeStreams(out);
  assert.equal(streams.length, 2);
  const v = streams.find((s) => s.codec_name === 'h264');
  const a = streams.find((s) => s.codec_name === 'aac');
  assert.ok(v && a, JSON.stringify(streams));
  assert.equal(v.width, 320);
  assert.equal(v.height, 180);
  assert.equal(a.sample_rate, '48000');
  assert.equal(a.channels, 2);

  const [wantV, gotV, wantA, gotA, copyWant, copyGot] = await Promise.all([
    frames(src, 'v:0', false),
    frames(out, 'v:0', false),
    frames(src, 'a:0', false),
    frames(out, 'a:0', false),
    frames(src, 'v:0', true),
    frames(out, 'v:0', true),
  ]);
  assert.equal(wantV.length, 120);
  assert.deepEqual(hashes(gotV), hashes(wantV), 'decoded video frames');
  assert.equal(wantA.length, 189);
  assert.deepEqual(hashes(gotA), hashes(wantA), 'decoded audio frames');
  assert.equal(copyWant.length, 120);
  assert.deepEqual(hashes(copyGot), hashes(copyWant), 'video packet payloads in order');

  // Timestamps as written: every packet's PTS is the source's presentation ms.
  const pk = await probePackets(out, 'v:0');
  const srcVideo = flv.packets.filter((p) => p.trackId === flv.tracks.find((t) => t.type === 'video')!.id);
  assert.deepEqual(pk.map((p) => p.pts), srcVideo.map((p) => p.timeMs + p.offsetMs));
  assert.deepEqual(pk.map((p) => p.flags.startsWith('K')), srcVideo.map((p) => p.keyframe));
});

test('VP9 + Opus from ffmpeg written as .webm: ffprobe and decoded frames match', async () => {
  const vsrc = path.join(dir, 'vp9.webm');
  const asrc = path.join(dir, 'opus.mka');
  await Promise.all([
    runOk('ffmpeg', [
      '-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-t', '1',
      '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-g', '10', '-pix_fmt', 'yuv420p', vsrc,
    ]),
    runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '1', '-ac', '2', '-c:a', 'libopus', '-b:a', '64k', asrc]),
  ]);
  const opusHead = await extradata(asrc, 'a:0');
  assert.equal(opusHead.subarray(0, 8).toString(), 'OpusHead');
  const video = await filePackets(vsrc, 'v:0', 1);
  const audio = await filePackets(asrc, 'a:0', 2);
  assert.ok(video.filter((p) => p.keyframe).length >= 2, 'several keyframes, so several clusters');
  const tracks: Track[] = [
    { type: 'video', id: 1, codec: 'VP9', init: Buffer.alloc(0), bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 },
    { type: 'audio', id: 2, codec: 'opus', init: opusHead, bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 },
  ];
  // Interleave in decode order, as a live stream would deliver them.
  const packets = [...video, ...audio].sort((x, y) => x.timeMs - y.timeMs || x.trackId - y.trackId);
  const out = writeFile(tracks, packets, true, 'out.webm');

  assert.match(await probeFormat(out), /webm/);
  const streams = await probeStreams(out);
  assert.deepEqual(streams.map((s) => s.codec_name), ['vp9', 'opus']);
  assert.equal(streams[0]!.width, 320);
  assert.equal(streams[0]!.height, 180);
  assert.equal(streams[1]!.sample_rate, '48000');
  assert.equal(streams[1]!.channels, 2);

  const [wantV, gotV, wantA, gotA] = await Promise.all([frames(vsrc, 'v:0', false), frames(out, 'v:0', false), frames(asrc, 'a:0', false), frames(out, 'a:0', false)]);
  assert.equal(wantV.length, 25);
  assert.deepEqual(hashes(gotV), hashes(wantV), 'decoded video frames');
  // Opus: CodecDelay trims the pre-skip the same way the source's does; only the last frame
  // may differ (the source trims its padding with DiscardPadding, which we do not write).
  assert.equal(gotA.length, wantA.length);
  assert.deepEqual(hashes(gotA).slice(0, -1), hashes(wantA).slice(0, -1), 'decoded audio frames');
});
