// Progressive fragmented MP4 and Matroska/WebM live outputs against ffmpeg: packet-exact MP4
// (payloads, composition offsets), decoded-frame-exact MKV, WebM for VP9 + Opus published
// over Enhanced RTMP, and a clear 415 when no track fits the container.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { RtmpClient } from '../../src/protocols/rtmp/client.js';
import { audioTagBody, sequenceHeaderBody, videoTagBody } from '../../src/containers/flv/mux.js';
import type { AudioTrack, Packet, Track, VideoTrack } from '../../src/media/types.js';
import { mistFixtures, parseFramemd5, run, runOk, sleep, tmpDir, type FrameLine } from '../helpers.js';
import { extradata, filePackets } from '../media-files.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';

const SOURCE = path.join(mistFixtures, 'small.flv');

async function framemd5(url: string, args: string[]): Promise<FrameLine[]> {
  const r = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', url, ...args, '-f', 'framemd5', '-'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `${url}: ${r.stderr}`);
  return parseFramemd5(r.stdout.toString());
}

const hashes = (frames: FrameLine[], stream: number): string[] => frames.filter((f) => f.stream === stream).map((f) => f.hash);

describe('progressive MP4, MKV and WebM', { timeout: 120_000 }, () => {
  let haze: HazeInstance;
  const dir = tmpDir('haze-prog-');
  before(async () => {
    haze = await startHaze({ workers: 2 });
  });
  after(async () => {
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('/NAME.mp4 carries the published packets unchanged and /NAME.mkv decodes to the same frames', async () => {
    const pending = [framemd5(haze.httpUrl('/live+prog.mp4'), ['-c', 'copy']), framemd5(haze.httpUrl('/live+prog.mkv'), [])];
    await sleep(300);
    const pub = publishFile(SOURCE, haze.rtmpUrl('live+prog'));
    const [mp4, mkv] = await Promise.all(pending);
    assert.equal(await exited(pub), 0);
    const source = await framemd5(SOURCE, ['-c', 'copy']);
    const decoded = await framemd5(SOURCE, []);
    for (const stream of [0, 1]) {
      const want = source.filter((f) => f.stream === stream);
      const got = mp4!.filter((f) => f.stream === stream);
      assert.deepEqual(got.map((f) => f.hash), want.map((f) => f.hash), `MP4 stream ${stream}: every packet, in order`);
      if (stream === 0) {
        // composition offsets survive (ms in FLV; Haze's MP4 video time base is 90 kHz)
        got.forEach((g, k) => assert.ok(Math.abs((g.pts - g.dts) / 90 - (want[k]!.pts - want[k]!.dts)) <= 1, `MP4 composition offset of frame ${k}`));
      }
    }
    assert.deepEqual(hashes(mkv!, 0), hashes(decoded, 0), 'MKV decodes to the source video frames');
    assert.ok(hashes(mkv!, 1).length >= hashes(decoded, 1).length - 1, 'MKV carries the audio');
  });

  it('/NAME.webm: 415 for H.264/AAC; VP9 + Opus published over Enhanced RTMP play as WebM', async () => {
    const pub = publishFile(SOURCE, haze.rtmpUrl('live+h264'), ['-stream_loop', '-1']);
    try {
      await runOk('ffprobe', ['-v', 'error', haze.httpUrl('/live+h264.flv')], { timeoutMs: 30_000 });
      const r = await fetch(haze.httpUrl('/live+h264.webm'));
      assert.equal(r.status, 415);
      assert.match(await r.text(), /No track of live\+h264 \(H264, AAC\) fits \.webm/);
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }

    const vp9 = path.join(dir, 'vp9.webm');
    const opus = path.join(dir, 'opus.mka');
    await runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-t', '2', '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-g', '25', '-b:v', '300k', vp9]);
    await runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=sample_rate=48000', '-t', '2', '-c:a', 'libopus', '-ac', '2', opus]);
    const video: VideoTrack = { id: 1, type: 'video', codec: 'VP9', init: Buffer.alloc(0), bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 };
    const audio: AudioTrack = { id: 2, type: 'audio', codec: 'opus', init: await extradata(opus, 'a:0'), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };
    const clip: Packet[] = [...(await filePackets(vp9, 'v:0', 1)), ...(await filePackets(opus, 'a:0', 2))].sort((a, b) => a.timeMs - b.timeMs);
    const tracks: Record<number, Track> = { 1: video, 2: audio };
    const client = new RtmpClient({ fourCcList: ['vp09', 'Opus'] });
    await client.connect(haze.rtmpUrl('live+vp9'));
    await client.publish();
    for (const t of [video, audio]) {
      const seq = sequenceHeaderBody(t);
      if (seq) client.sendMedia(t.type === 'video' ? 9 : 8, 0, seq);
    }
    let stop = false;
    const publishing = (async () => {
      const start = Date.now();
      for (let loop = 0; !stop && loop < 15; loop++) {
        for (const p of clip) {
          if (stop) break;
          const t = loop * 2000 + p.timeMs;
          const wait = start + t - Date.now();
          if (wait > 0) await sleep(wait);
          const shifted: Packet = { ...p, timeMs: t };
          const track = tracks[p.trackId]!;
          client.sendMedia(track.type === 'video' ? 9 : 8, t, track.type === 'video' ? videoTagBody(track, shifted) : audioTagBody(track as AudioTrack, shifted));
        }
      }
    })();
    try {
      const out = await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height,sample_rate', '-of', 'json', haze.httpUrl('/live+vp9.webm')], { timeoutMs: 30_000 });
      const streams = (JSON.parse(out.toString()) as { streams: Array<Record<string, unknown>> }).streams;
      assert.deepEqual(streams.map((s) => s['codec_name']).sort(), ['opus', 'vp9']);
      const src = new Set(hashes(await framemd5(vp9, []), 0));
      const got = await framemd5(haze.httpUrl('/live+vp9.webm'), ['-map', '0:v', '-t', '2']);
      assert.ok(got.length >= 30, `decoded ${got.length} frames`);
      assert.ok(got.every((f) => src.has(f.hash)), 'every decoded frame is a frame of the source');
    } finally {
      stop = true;
      await publishing;
      await client.close();
    }
  });
});
