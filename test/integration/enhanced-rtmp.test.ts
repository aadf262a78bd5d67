// Enhanced RTMP ingest: Debian's ffmpeg 5.1 cannot publish HEVC over RTMP, so Haze's own
// RTMP client publishes an HEVC (B-frames) + AAC clip made by libx265, and ffmpeg/ffprobe
// read it back out of /NAME.ts and /NAME.flv (Enhanced FLV is for FLV-capable players only:
// ffmpeg 5.1 reads the TS).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { RtmpClient } from '../../src/protocols/rtmp/client.js';
import { audioTagBody, sequenceHeaderBody, videoTagBody } from '../../src/containers/flv/mux.js';
import { parseHvcC } from '../../src/media/hevc.js';
import type { AudioTrack, Packet, VideoTrack } from '../../src/media/types.js';
import { parseFramemd5, run, runOk, sleep, tmpDir } from '../helpers.js';
import { extradata, filePackets } from '../media-files.js';
import { startHaze, type HazeInstance } from './harness.js';

describe('Enhanced RTMP (HEVC) publish', { timeout: 90_000 }, () => {
  let haze: HazeInstance;
  const dir = tmpDir('haze-ertmp-');
  before(async () => {
    haze = await startHaze({ workers: 2 });
  });
  after(async () => {
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('HEVC published by the Enhanced-RTMP client plays out of /NAME.ts', async () => {
    const mp4 = path.join(dir, 'hevc.mp4');
    await runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25', '-f', 'lavfi', '-i', 'sine=sample_rate=48000', '-t', '2',
      '-c:v', 'libx265', '-x265-params', 'bframes=2:keyint=25:log-level=error', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-ac', '2', mp4]);
    const hvcc = await extradata(mp4, 'v:0');
    parseHvcC(hvcc);
    const video: VideoTrack = { id: 1, type: 'video', codec: 'HEVC', init: hvcc, bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 };
    const audio: AudioTrack = { id: 2, type: 'audio', codec: 'AAC', init: await extradata(mp4, 'a:0'), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };
    const vPackets = await filePackets(mp4, 'v:0', 1);
    assert.ok(vPackets.some((p) => p.offsetMs !== 0), 'the clip has B-frames');
    const aPackets = await filePackets(mp4, 'a:0', 2);
    const clip = [...vPackets, ...aPackets].sort((a, b) => a.timeMs - b.timeMs);
    const clipMs = 2000;

    const client = new RtmpClient({ fourCcList: ['hvc1'] });
    await client.connect(haze.rtmpUrl('live+hevc'));
    await client.publish();
    client.sendMedia(9, 0, sequenceHeaderBody(video)!);
    client.sendMedia(8, 0, sequenceHeaderBody(audio)!);
    let stop = false;
    // publish the clip in a loop, paced in real time, while the viewers look at it
    const publishing = (async () => {
      const start = Date.now();
      for (let loop = 0; !stop && loop < 20; loop++) {
        for (const p of clip) {
          if (stop) break;
          const t = loop * clipMs + p.timeMs;
          const wait = start + t - Date.now();
          if (wait > 0) await sleep(wait);
          const shifted: Packet = { ...p, timeMs: t };
          client.sendMedia(p.trackId === 1 ? 9 : 8, t, p.trackId === 1 ? videoTagBody(video, shifted) : audioTagBody(audio, shifted));
        }
      }
    })();
    try {
      const out = await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,width,height,sample_rate', '-of', 'json', haze.httpUrl('/live+hevc.ts')], { timeoutMs: 30_000 });
      const streams = (JSON.parse(out.toString()) as { streams: Array<Record<string, unknown>> }).streams;
      const v = streams.find((s) => s['codec_type'] === 'video');
      const a = streams.find((s) => s['codec_type'] === 'audio');
      assert.deepEqual([v?.['codec_name'], v?.['width'], v?.['height']], ['hevc', 320, 180]);
      assert.deepEqual([a?.['codec_name'], a?.['sample_rate']], ['aac', '48000']);
      // and it decodes: two seconds of frames, each equal to one of the source's frames
      const src = parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', mp4, '-map', '0:v', '-f', 'framemd5', '-'])).toString()).map((f) => f.hash);
      const r = await run('ffmpeg', ['-v', 'error', '-i', haze.httpUrl('/live+hevc.ts'), '-map', '0:v', '-t', '2', '-f', 'framemd5', '-'], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      const got = parseFramemd5(r.stdout.toString()).map((f) => f.hash);
      assert.ok(got.length >= 40, `decoded ${got.length} frames`);
      const known = new Set(src);
      assert.ok(got.every((h) => known.has(h)), 'every decoded frame is a frame of the source');
    } finally {
      stop = true;
      await publishing;
      await client.close();
    }
  });
});
