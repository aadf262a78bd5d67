// A VoD MP4 as ffmpeg writes H.264 + AAC: the AAC priming frame is stored before the first
// video frame and both have decode time 0 (edit lists are not applied). A read resuming at the
// audio key's byte position once lost the video frame at 0 ms, so `/NAME.mp4` failed ("sample 0
// of track 1 not found") and the other outputs started on a frame that is no keyframe. Every
// VoD output of such a file must carry every packet of the source, from its first one.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseFramemd5, run, runOk, tmpDir, type FrameLine } from '../helpers.js';
import { startHaze, type HazeInstance } from './harness.js';

const NAME = 'aac25';
const FPS = 25;
const GOP = 50;

/** Packets per stream type, as ffprobe counts them reading the whole input. */
async function packetCounts(input: string): Promise<Record<string, number>> {
  const out = await runOk('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=codec_type,nb_read_packets', '-of', 'json', input], { timeoutMs: 30_000 });
  const counts: Record<string, number> = {};
  for (const s of (JSON.parse(out.toString()) as { streams: { codec_type: string; nb_read_packets: string }[] }).streams) counts[s.codec_type] = Number(s.nb_read_packets);
  return counts;
}

/** The packets' payload hashes of each stream type (-c copy), in order. */
async function packetHashes(input: string): Promise<{ video: string[]; audio: string[] }> {
  const r = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', input, '-map', '0:v', '-map', '0:a', '-c', 'copy', '-f', 'framemd5', '-'], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${input}: ${r.stderr}`);
  const frames: FrameLine[] = parseFramemd5(r.stdout.toString());
  return { video: frames.filter((f) => f.stream === 0).map((f) => f.hash), audio: frames.filter((f) => f.stream === 1).map((f) => f.hash) };
}

describe('VoD of an ffmpeg H.264 + AAC MP4 (AAC priming at 0 ms)', { timeout: 60_000 }, () => {
  let haze: HazeInstance;
  const dir = tmpDir('haze-vod-aac-');
  const file = path.join(dir, `${NAME}.mp4`);
  let source: Record<string, number> = {};
  let sourceHashes: { video: string[]; audio: string[] } = { video: [], audio: [] };

  before(async () => {
    await runOk(
      'ffmpeg',
      ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=160x120:rate=${FPS}`, '-f', 'lavfi', '-i', 'sine', '-t', '10',
        '-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(GOP), '-pix_fmt', 'yuv420p', '-c:a', 'aac', file],
      { timeoutMs: 60_000 },
    );
    source = await packetCounts(file);
    sourceHashes = await packetHashes(file);
    assert.equal(source['video'], 10 * FPS);
    assert.ok((source['audio'] ?? 0) > 400, `source audio packets: ${source['audio']}`);
    haze = await startHaze({ workers: 1 });
    const r = await haze.api({ addstream: { [NAME]: { source: file } } });
    assert.ok(!('error' in r), JSON.stringify(r));
    await new Promise((res) => setTimeout(res, 500));
  });
  after(async () => {
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('/NAME.mp4 carries every packet of the source, byte for byte', async () => {
    const url = haze.httpUrl(`/${NAME}.mp4`);
    assert.deepEqual(await packetCounts(url), source);
    const got = await packetHashes(url);
    assert.deepEqual(got.video, sourceHashes.video, 'video packets');
    assert.deepEqual(got.audio, sourceHashes.audio, 'audio packets');
    assert.doesNotMatch(haze.log(), /not found|ended before sample/);
  });

  it('/NAME.mp4 honours byte ranges, from the header into the first samples too', async () => {
    const url = haze.httpUrl(`/${NAME}.mp4`);
    const whole = Buffer.from(await (await fetch(url)).arrayBuffer());
    const moovAt = whole.readUInt32BE(0);
    const mdatAt = moovAt + whole.readUInt32BE(moovAt);
    assert.equal(whole.toString('latin1', mdatAt + 4, mdatAt + 8), 'mdat');
    // across the header into mdat, the first sample (the priming frame), the middle, the end
    const ranges: [number, number][] = [[0, mdatAt + 20_000], [mdatAt + 8, mdatAt + 300], [whole.length >> 1, (whole.length >> 1) + 30_000], [whole.length - 3000, whole.length - 1]];
    for (const [a, b] of ranges) {
      const r = await fetch(url, { headers: { Range: `bytes=${a}-${b}` } });
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-range'), `bytes ${a}-${b}/${whole.length}`);
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(whole.subarray(a, b + 1)), `bytes ${a}-${b}`);
    }
  });

  it('/NAME.mp4?start= begins at the keyframe at or before the start, with the audio from there', async () => {
    const startMs = 4500; // keyframes every 2 s: the file starts at the one at 4 s
    const got = await packetHashes(haze.httpUrl(`/${NAME}.mp4?start=${startMs}`));
    const keyFrame = Math.floor(startMs / ((GOP / FPS) * 1000)) * GOP;
    assert.deepEqual(got.video, sourceHashes.video.slice(keyFrame), 'video from the keyframe at 4 s');
    // the audio is the source's from some frame on: the frames from 4 s (1024 samples at 44.1 kHz, and the priming frame)
    const audioFrom = sourceHashes.audio.length - got.audio.length;
    assert.deepEqual(got.audio, sourceHashes.audio.slice(audioFrom), 'audio is a tail of the source');
    const fromMs = (audioFrom * 1024 * 1000) / 44100;
    assert.ok(Math.abs(fromMs - 4000) <= 24, `audio starts at ${fromMs} ms`);
  });

  it('the other VoD outputs (HLS, FLV, TS) carry every packet too', async () => {
    for (const p of [`/hls/${NAME}/index.m3u8`, `/${NAME}.flv`, `/${NAME}.ts`]) {
      assert.deepEqual(await packetCounts(haze.httpUrl(p)), source, p);
    }
    // FLV carries the MP4's payloads unchanged: the same packets from the first keyframe on
    const flv = await packetHashes(haze.httpUrl(`/${NAME}.flv`));
    assert.deepEqual(flv.video, sourceHashes.video, 'FLV video packets');
    assert.deepEqual(flv.audio, sourceHashes.audio, 'FLV audio packets');
  });
});
