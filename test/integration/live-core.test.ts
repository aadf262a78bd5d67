// The live core against real peers: ffmpeg publishes H.264 (B-frames) + AAC over RTMP;
// ffmpeg/ffprobe play it back over HTTP-FLV, HTTP-TS and RTMP from a two-worker Haze.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mistFixtures, parseFramemd5, run, runOk, type FrameLine } from '../helpers.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';

const SOURCE = path.join(mistFixtures, 'small.flv');

async function framemd5(url: string, copy: boolean): Promise<FrameLine[]> {
  const args = ['-hide_banner', '-loglevel', 'error', '-i', url, ...(copy ? ['-c', 'copy'] : []), '-f', 'framemd5', '-'];
  const r = await run('ffmpeg', args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `ffmpeg ${url}: ${r.stderr}`);
  return parseFramemd5(r.stdout.toString());
}

/** The index in `src` where `got` starts as a contiguous run of equal hashes, or -1. */
function alignment(src: FrameLine[], got: FrameLine[]): number {
  if (got.length === 0) return -1;
  for (let i = 0; i < src.length; i++) {
    if (src[i]!.hash === got[0]!.hash && got.every((g, k) => src[i + k]?.hash === g.hash)) return i;
  }
  return -1;
}

function byStream(frames: FrameLine[], stream: number): FrameLine[] {
  return frames.filter((f) => f.stream === stream);
}

/** Starts `viewers` (which wait for the stream), then publishes the source once. */
async function playWhilePublishing<T>(haze: HazeInstance, name: string, viewers: Array<() => Promise<T>>): Promise<T[]> {
  const pending = viewers.map((v) => v());
  await new Promise((r) => setTimeout(r, 300));
  const pub = publishFile(SOURCE, haze.rtmpUrl(name));
  const results = await Promise.all(pending);
  assert.equal(await exited(pub), 0, 'publisher exits cleanly');
  return results;
}

describe('live core: RTMP in, FLV / TS / RTMP out', { timeout: 120_000 }, () => {
  let haze: HazeInstance;
  let source: FrameLine[];
  let sourceDecoded: FrameLine[];

  before(async () => {
    haze = await startHaze({ workers: 2 });
    source = await framemd5(SOURCE, true);
    sourceDecoded = await framemd5(SOURCE, false);
  });
  after(async () => {
    await haze?.stop();
  });

  it('HTTP-FLV and RTMP play back the published packets unchanged (payloads, timestamps, composition offsets)', async () => {
    const [flv, rtmp] = await playWhilePublishing(haze, 'live+copy', [
      () => framemd5(haze.httpUrl('/live+copy.flv'), true),
      () => framemd5(haze.rtmpUrl('live+copy'), true),
    ]);
    for (const [label, got] of [['FLV', flv!], ['RTMP', rtmp!]] as const) {
      for (const stream of [0, 1]) {
        const want = byStream(source, stream);
        const have = byStream(got, stream);
        const at = alignment(want, have);
        assert.ok(at >= 0, `${label} stream ${stream}: packets match the source in order`);
        // a viewer that was waiting starts at the first keyframe and gets everything after it
        assert.ok(at <= 2, `${label} stream ${stream}: starts at the beginning (offset ${at})`);
        assert.equal(have.length, want.length - at, `${label} stream ${stream}: no packet lost`);
        const base = want[at]!;
        const gotBase = have[0]!;
        for (let k = 0; k < have.length; k++) {
          assert.equal(have[k]!.dts - gotBase.dts, want[at + k]!.dts - base.dts, `${label} stream ${stream} packet ${k} dts`);
          assert.equal(have[k]!.pts - have[k]!.dts, want[at + k]!.pts - want[at + k]!.dts, `${label} stream ${stream} packet ${k} composition offset`);
        }
      }
    }
  });

  it('HTTP-TS decodes to the same frames as the source', async () => {
    const [ts] = await playWhilePublishing(haze, 'live+ts', [() => framemd5(haze.httpUrl('/live+ts.ts'), false)]);
    const video = byStream(ts!, 0);
    const wantVideo = byStream(sourceDecoded, 0);
    assert.ok(video.length >= wantVideo.length - 1, `decoded ${video.length} of ${wantVideo.length} video frames`);
    assert.ok(alignment(wantVideo, video) >= 0, 'decoded video frames equal the source in order');
    const audio = byStream(ts!, 1);
    const wantAudio = byStream(sourceDecoded, 1);
    // AAC frames carry no state across frames that differs between raw and ADTS input, but
    // the decoder's first output frame (priming) may differ: compare from the second frame.
    assert.ok(audio.length >= wantAudio.length - 2, `decoded ${audio.length} of ${wantAudio.length} audio frames`);
    assert.ok(alignment(wantAudio, audio.slice(1)) >= 0, 'decoded audio frames equal the source in order');
  });

  it('ffprobe sees the codecs and resolution on FLV, TS and RTMP', async () => {
    const pub = publishFile(SOURCE, haze.rtmpUrl('live+probe'), ['-stream_loop', '-1']);
    try {
      // the players run side by side: each waits on real-time media, not on the CPU
      const urls = [haze.httpUrl('/live+probe.flv'), haze.httpUrl('/live+probe.ts'), haze.rtmpUrl('live+probe')];
      const outs = await Promise.all(urls.map((url) => runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,width,height,sample_rate,channels', '-of', 'json', url], { timeoutMs: 30_000 })));
      for (const [i, url] of urls.entries()) {
        const streams = (JSON.parse(outs[i]!.toString()) as { streams: Array<Record<string, unknown>> }).streams;
        const v = streams.find((s) => s['codec_type'] === 'video');
        const a = streams.find((s) => s['codec_type'] === 'audio');
        assert.deepEqual([v?.['codec_name'], v?.['width'], v?.['height']], ['h264', 320, 180], url);
        assert.deepEqual([a?.['codec_name'], a?.['sample_rate'], a?.['channels']], ['aac', '48000', 2], url);
        assert.equal(streams.length, 2, `${url}: exactly one video and one audio stream`);
      }
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
  });

  it('GStreamer plays RTMP (rtmp2src and librtmp rtmpsrc) and decodes both tracks', async () => {
    const pub = publishFile(SOURCE, haze.rtmpUrl('live+gst'), ['-stream_loop', '-1']);
    try {
      await runOk('ffprobe', ['-v', 'error', haze.rtmpUrl('live+gst')], { timeoutMs: 30_000 });
      const sources = ['rtmp2src', 'rtmpsrc'];
      // num-buffers ends the pipeline after that many RTMP buffers (EOS), decoding on the way; both players at once
      const results = await Promise.all(sources.map((src) => run('gst-launch-1.0', ['-q', src, `location=${haze.rtmpUrl('live+gst')}`, 'num-buffers=120', '!', 'flvdemux', 'name=d',
        'd.video', '!', 'queue', '!', 'h264parse', '!', 'avdec_h264', '!', 'fakesink', 'd.audio', '!', 'queue', '!', 'aacparse', '!', 'avdec_aac', '!', 'fakesink'], { timeoutMs: 30_000 })));
      for (const [i, r] of results.entries()) assert.equal(r.code, 0, `${sources[i]}: ${r.stderr}${r.stdout}`);
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
  });

  it('track selection: ?audio=none and ?video=none', async () => {
    const pub = publishFile(SOURCE, haze.rtmpUrl('live+sel'), ['-stream_loop', '-1']);
    try {
      const cases = [
        ['?audio=none', ['video']],
        ['?video=none', ['audio']],
        ['?video=h264&audio=0', ['video']],
        ['?audio=aac&video=-1', ['audio']],
      ].flatMap(([q, want]) => ['flv', 'ts'].map((ext) => ({ q: q as string, want: want as string[], ext })));
      // each ffprobe waits out its analysis time on real-time media: all eight at once
      const outs = await Promise.all(cases.map(({ q, ext }) => runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'json', haze.httpUrl(`/live+sel.${ext}${q}`)], { timeoutMs: 30_000 })));
      for (const [i, { q, want, ext }] of cases.entries()) {
        const types = (JSON.parse(outs[i]!.toString()) as { streams: Array<{ codec_type: string }> }).streams.map((s) => s.codec_type);
        assert.deepEqual(types, want, `${ext}${q}`);
      }
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
  });

  it('answers 404 for unknown streams and 503 for configured streams that are offline', async () => {
    const unknown = await fetch(haze.httpUrl('/nosuchstream.flv'));
    assert.equal(unknown.status, 404);
    assert.match(await unknown.text(), /not found/i);
    assert.match(unknown.headers.get('x-haze-session') ?? '', /^[0-9a-f]{64}$/, 'session id header on errors too');
    const t0 = Date.now();
    const offline = await fetch(haze.httpUrl('/live+nobody.ts'));
    assert.equal(offline.status, 503);
    assert.ok(offline.headers.get('retry-after'), 'Retry-After on 503');
    assert.match(await offline.text(), /offline/i);
    assert.ok(Date.now() - t0 >= 4500, 'waited for the stream to come online first');
    const rtmp = await run('ffprobe', ['-v', 'error', haze.rtmpUrl('nosuchstream')], { timeoutMs: 30_000 });
    assert.notEqual(rtmp.code, 0);
    assert.match(rtmp.stderr, /Stream not found: nosuchstream/, 'RTMP players see the onStatus description');
  });

  it('refuses a push to an unconfigured stream and a second publisher on a busy stream', async () => {
    const refused = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', SOURCE, '-c', 'copy', '-f', 'flv', haze.rtmpUrl('unconfigured')], { timeoutMs: 30_000 });
    assert.notEqual(refused.code, 0, 'push to an unconfigured stream fails');
    assert.match(haze.log(), /push to unconfigured stream unconfigured refused/);
    const first = publishFile(SOURCE, haze.rtmpUrl('live+busy'), ['-stream_loop', '-1']);
    try {
      await runOk('ffprobe', ['-v', 'error', haze.httpUrl('/live+busy.flv')], { timeoutMs: 30_000 });
      const second = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', SOURCE, '-c', 'copy', '-f', 'flv', haze.rtmpUrl('live+busy')], { timeoutMs: 30_000 });
      assert.notEqual(second.code, 0, 'a second publisher is refused');
      assert.match(haze.log(), /live\+busy.*(already has a publisher)/);
    } finally {
      first.kill('SIGINT');
      await exited(first);
    }
  });
});
