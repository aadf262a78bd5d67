// Stream lifecycle triggers through a running Haze (issue 5; reference §4.2, §1.12), each fired by
// a real ffmpeg publish or a .pls input and checked field by field: STREAM_LOAD (false refuses
// the publish), STREAM_READY, STREAM_BUFFER FULL/DRY/RECOVER/EMPTY with MistServer's health
// JSON, LIVE_TRACK_LIST, LIVE_BANDWIDTH (false shuts the stream down), STREAM_UNLOAD (cancelable
// for an idle input), STREAM_END with the totals of every worker, INPUT_ABORT; and the stream
// options resume, inputtimeout and always_on. A publisher that disconnects and reconnects
// within the grace period gives one FULL, one EMPTY after the real end, and its viewer keeps
// its connection and gets the media of both publishers.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { giveUpAfter, mistFixtures, runOk, sleep, tmpDir } from '../helpers.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';
import { startTriggerCapture, type CapturedTrigger, type TriggerCapture } from './trigger-capture.js';

/** ffmpeg publishing a 30 fps test pattern with a key every `gop` frames (no scene-cut keys) and AAC. */
function pattern(url: string, seconds: number, gop = 30): ChildProcess {
  return spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-f', 'lavfi', '-i', 'sine=f=440:sample_rate=48000', '-t', String(seconds), '-c:v', 'libx264', '-preset', 'veryfast', '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-c:a', 'aac', '-f', 'flv', url],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

/** An HTTP viewer that records when its bytes came. */
interface Watcher {
  chunks: { atMs: number; bytes: number }[];
  ended: Promise<number>;
  bytesBetween(fromMs: number, toMs: number): number;
  close(): void;
}

function watch(url: string): Watcher {
  const chunks: { atMs: number; bytes: number }[] = [];
  let req: http.ClientRequest;
  const ended = new Promise<number>((resolve) => {
    req = http.get(url, (res) => {
      res.on('data', (d: Buffer) => chunks.push({ atMs: Date.now(), bytes: d.length }));
      res.on('end', () => resolve(Date.now()));
      res.on('error', () => resolve(Date.now()));
      res.on('close', () => resolve(Date.now()));
    });
    req.on('error', () => resolve(Date.now()));
  });
  return {
    chunks,
    ended,
    bytesBetween: (a, b) => chunks.filter((c) => c.atMs >= a && c.atMs < b).reduce((n, c) => n + c.bytes, 0),
    close: () => req.destroy(),
  };
}

const of = (cap: TriggerCapture, name: string, stream: string): CapturedTrigger[] => cap.of(name).filter((t) => t.lines[0] === stream);
const buffers = (cap: TriggerCapture, stream: string): string[] => of(cap, 'STREAM_BUFFER', stream).map((t) => t.lines[1]!);

/** Checks a health JSON of a stream of the test pattern (H264 320x180 + AAC). */
function checkHealth(text: string): Record<string, any> {
  const h = JSON.parse(text) as Record<string, any>;
  assert.ok(Array.isArray(h['tracks']) && h['tracks'].length === 2, text);
  const [vid, aud] = [h['tracks'].find((t: string) => t.startsWith('video_H264_')), h['tracks'].find((t: string) => t.startsWith('audio_AAC_'))];
  assert.ok(vid && aud, text);
  for (const id of [vid, aud]) {
    const t = h[id];
    for (const k of ['idx', 'id', 'jitter', 'kbits', 'buffer']) assert.equal(typeof t[k], 'number', `${id}.${k} in ${text}`);
    for (const k of ['ms_min', 'ms_max', 'frame_ms_min', 'frame_ms_max', 'frames_min', 'frames_max']) assert.equal(typeof t.keys[k], 'number', `${id}.keys.${k}`);
  }
  assert.equal(h[vid].codec, 'H264');
  assert.equal(h[vid].width, 320);
  assert.equal(h[vid].height, 180);
  assert.equal(h[aud].codec, 'AAC');
  assert.equal(h[aud].rate, 48000);
  assert.equal(typeof h['jitter'], 'number');
  assert.equal(typeof h['buffer'], 'number');
  return h;
}

describe('stream lifecycle triggers', { timeout: 300_000 }, () => {
  let haze: HazeInstance;
  let cap: TriggerCapture;
  const dir = tmpDir('haze-strig-');
  let unloadAnswers: string[] = [];

  before(async () => {
    cap = await startTriggerCapture();
    cap.reply('STREAM_LOAD', (t) => (t.lines[0] === 'live+refused' ? 'false' : 'true'));
    cap.reply('LIVE_BANDWIDTH', 'false');
    cap.reply('STREAM_UNLOAD', () => unloadAnswers.shift() ?? 'true');
    haze = await startHaze({ workers: 2 });
    const r = await haze.api({
      addstream: { live: { source: 'push://' }, resumed: { source: 'push://', resume: 1 }, noresume: { source: 'push://', resume: 0 } },
      config: {
        triggers: {
          STREAM_LOAD: [cap.handler({ sync: true, default: 'true' })],
          STREAM_READY: [cap.handler({ sync: true, default: 'true' })],
          STREAM_BUFFER: [cap.handler()],
          STREAM_UNLOAD: [cap.handler({ sync: true, default: 'true' })],
          STREAM_END: [cap.handler()],
          LIVE_TRACK_LIST: [cap.handler()],
          LIVE_BANDWIDTH: [cap.handler({ sync: true, default: 'true', params: '1000', streams: ['live+bw'] })],
          INPUT_ABORT: [cap.handler()],
        },
      },
    });
    assert.ok(!('error' in r), JSON.stringify(r));
    await sleep(700);
  });
  after(async () => {
    await haze?.stop();
    await cap?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a publish: STREAM_LOAD, STREAM_READY, FULL with the health, LIVE_TRACK_LIST; its end: STREAM_UNLOAD, EMPTY, STREAM_END', async () => {
    const name = 'live+one';
    const pub = pattern(haze.rtmpUrl(name), 8);
    const full = await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === name && t.lines[1] === 'FULL');
    assert.deepEqual(of(cap, 'STREAM_LOAD', name).map((t) => t.lines), [[name]], 'STREAM_LOAD: the stream, once');
    const ready = await cap.wait('STREAM_READY', (t) => t.lines[0] === name);
    assert.deepEqual(ready.lines, [name, 'Buffer']);
    assert.equal(full.lines.length, 3);
    checkHealth(full.lines[2]!);
    const list = await cap.wait('LIVE_TRACK_LIST', (t) => t.lines[0] === name);
    assert.equal(list.lines.length, 3, 'stream, tracks, and the trailing line break');
    assert.equal(list.lines[2], '');
    const tracks = JSON.parse(list.lines[1]!) as Record<string, { type: string; codec: string; trackid: number; idx: number; width?: number; rate?: number }>;
    const values = Object.values(tracks);
    assert.deepEqual(values.map((t) => t.codec).sort(), ['AAC', 'H264']);
    assert.equal(values.find((t) => t.type === 'video')!.width, 320);
    assert.equal(values.find((t) => t.type === 'audio')!.rate, 48000);
    assert.ok(Object.keys(tracks).every((k) => /^(video_H264|audio_AAC)_/.test(k)), Object.keys(tracks).join());
    // a viewer for a few seconds, for STREAM_END's counts
    const viewer = watch(haze.httpUrl(`/${name}.flv`));
    await sleep(3000);
    viewer.close();
    assert.equal(await exited(pub), 0);
    const empty = await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === name && t.lines[1] === 'EMPTY');
    assert.equal(empty.lines.length, 3);
    assert.ok(Number(empty.lines[2]) > 6000, `EMPTY carries the last ms: ${empty.lines[2]}`);
    const unload = await cap.wait('STREAM_UNLOAD', (t) => t.lines[0] === name);
    assert.equal(unload.lines.length, 3, 'cancelable and the reason share a line');
    assert.equal(unload.lines[1], 'Buffer');
    assert.match(unload.lines[2]!, /^uncancelable.+/);
    assert.deepEqual(buffers(cap, name), ['FULL', 'EMPTY']);
    const end = await cap.wait('STREAM_END', (t) => t.lines[0] === name);
    assert.equal(end.lines.length, 7);
    const [, down, up, viewers, inputs, outputs, seconds] = end.lines.map(Number);
    assert.ok(down! > 10_000, `downloaded bytes ${down}`);
    assert.ok(up! > 100_000, `uploaded bytes ${up}`);
    assert.equal(viewers, 1, 'total viewers');
    assert.equal(inputs, 1, 'total inputs');
    assert.equal(outputs, 0, 'total outputs');
    assert.ok(seconds! >= 2 && seconds! <= 4, `viewer seconds ${seconds}`);
    await sleep(500);
    assert.equal(of(cap, 'STREAM_END', name).length, 1, 'one STREAM_END whichever workers counted the stream');
  });

  it('a publisher that disconnects and comes back within the grace period: one FULL, one EMPTY, the viewer stays and gets both', async () => {
    const name = 'live+two';
    const url = haze.rtmpUrl(name);
    const first = pattern(url, 60);
    await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === name && t.lines[1] === 'FULL');
    const viewer = watch(haze.httpUrl(`/${name}.flv`));
    await sleep(2500);
    first.kill('SIGKILL');
    await exited(first);
    const lostAt = Date.now();
    await sleep(2000);
    const second = pattern(url, 6);
    const backAt = Date.now();
    assert.equal(await exited(second), 0);
    await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === name && t.lines[1] === 'EMPTY');
    const viewerEnd = await Promise.race([viewer.ended, giveUpAfter(10_000, -1)]);
    assert.ok(viewerEnd > backAt + 4000, 'the viewer stayed connected through the gap until the stream ended');
    assert.ok(viewer.bytesBetween(0, lostAt) > 20_000, `first publisher's media: ${viewer.bytesBetween(0, lostAt)} bytes`);
    assert.ok(viewer.bytesBetween(backAt + 1000, Infinity) > 20_000, `second publisher's media: ${viewer.bytesBetween(backAt + 1000, Infinity)} bytes`);
    assert.deepEqual(buffers(cap, name), ['FULL', 'EMPTY'], 'one FULL across the reconnect, EMPTY after the real end');
    assert.equal(of(cap, 'STREAM_READY', name).length, 1);
    assert.equal(of(cap, 'STREAM_LOAD', name).length, 1, 'the buffer was still loaded when the publisher came back');
    assert.equal(of(cap, 'LIVE_TRACK_LIST', name).length, 1, 'the same tracks came back');
  });

  it('resume: the buffer waits for its publisher with nobody watching; health issues give DRY, their end RECOVER', async () => {
    const name = 'resumed';
    const url = haze.rtmpUrl(name);
    // three frames per key: "unstable connection"
    const bad = pattern(url, 60, 3);
    await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === name && t.lines[1] === 'FULL');
    const dry = await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === name && t.lines[1] === 'DRY');
    const dh = checkHealth(dry.lines[2]!);
    assert.match(dh['issues'], /unstable connection \(3 H264 frame\(s\) in key\)!/);
    const vid = dh['tracks'].find((t: string) => t.startsWith('video_'));
    assert.equal(dh[vid].keys.frames_min, 3);
    assert.equal(dh[vid].keys.frames_max, 3);
    assert.equal(dh[vid].keys.ms_min, 100);
    bad.kill('SIGKILL');
    await exited(bad);
    await sleep(2000);
    // RECOVER comes a few seconds in (two good keys; ~6 s measured on a loaded machine)
    const good = pattern(url, 10);
    const rec = await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === name && t.lines[1] === 'RECOVER', 20_000);
    const rh = checkHealth(rec.lines[2]!);
    assert.equal(rh['issues'], undefined, rec.lines[2]);
    const rv = rh['tracks'].find((t: string) => t.startsWith('video_'));
    assert.equal(rh[rv].keys.frames_min, 30);
    assert.equal(rh[rv].keys.ms_min, 1000);
    assert.equal(await exited(good), 0);
    await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === name && t.lines[1] === 'EMPTY');
    assert.deepEqual(buffers(cap, name), ['FULL', 'DRY', 'RECOVER', 'EMPTY']);
  });

  it('resume 0: the stream ends with its publisher, viewers included', async () => {
    const pub = pattern(haze.rtmpUrl('noresume'), 60);
    await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === 'noresume' && t.lines[1] === 'FULL');
    const viewer = watch(haze.httpUrl('/noresume.flv'));
    await sleep(1500);
    pub.kill('SIGKILL');
    await exited(pub);
    const lostAt = Date.now();
    const empty = await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === 'noresume' && t.lines[1] === 'EMPTY', 5000);
    assert.ok(empty.atMs - lostAt < 3000, `EMPTY ${empty.atMs - lostAt} ms after the publisher went`);
    const viewerEnd = await Promise.race([viewer.ended, giveUpAfter(5000, -1)]);
    assert.ok(viewerEnd > 0 && viewerEnd - lostAt < 3000, 'the viewer was ended with the stream');
    assert.ok(viewer.bytesBetween(0, lostAt) > 10_000);
  });

  it('STREAM_LOAD answering false refuses the publish', async () => {
    const pub = publishFile(path.join(mistFixtures, 'small.flv'), haze.rtmpUrl('live+refused'));
    const code = await Promise.race([exited(pub), giveUpAfter(15_000, 'hung')]);
    assert.notEqual(code, 0, 'ffmpeg was refused');
    assert.notEqual(code, 'hung');
    assert.deepEqual(of(cap, 'STREAM_LOAD', 'live+refused').map((t) => t.lines), [['live+refused']]);
    assert.match(haze.log(), /live\+refused .*refused by STREAM_LOAD/);
    await sleep(500);
    assert.equal(of(cap, 'STREAM_READY', 'live+refused').length, 0);
    assert.equal(of(cap, 'STREAM_BUFFER', 'live+refused').length, 0);
  });

  it('LIVE_BANDWIDTH over the handler params; false shuts the stream down', async () => {
    const name = 'live+bw';
    const pub = pattern(haze.rtmpUrl(name), 60);
    const bw = await cap.wait('LIVE_BANDWIDTH', (t) => t.lines[0] === name);
    assert.equal(bw.lines.length, 2);
    assert.match(bw.lines[1]!, /^\d+$/);
    assert.ok(Number(bw.lines[1]) >= 1000, `bytes per second ${bw.lines[1]}`);
    const code = await Promise.race([exited(pub), giveUpAfter(15_000, 'hung')]);
    assert.notEqual(code, 'hung', 'the publisher was disconnected');
    await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === name && t.lines[1] === 'EMPTY');
    assert.match(haze.log(), /stream live\+bw: shutting down: LIVE_BANDWIDTH answered false/);
    assert.equal(of(cap, 'LIVE_BANDWIDTH', 'live+one').length, 0, 'the handler is for live+bw only');
  });

  it('a .pls input: STREAM_LOAD and STREAM_READY (Playlist); after inputtimeout STREAM_UNLOAD, whose false keeps it running', async () => {
    const tv = path.join(dir, 'tv');
    fs.mkdirSync(tv);
    await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=160x90:r=25', '-t', '4', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-an', path.join(tv, 'a.flv')]);
    fs.writeFileSync(path.join(tv, 'list.pls'), 'a.flv\n');
    assert.ok(!('error' in (await haze.api({ addstream: { tv: { source: path.join(tv, 'list.pls'), inputtimeout: 2 } } }))));
    await sleep(700);
    unloadAnswers = ['false', 'true'];
    const viewer = watch(haze.httpUrl('/tv.flv'));
    const ready = await cap.wait('STREAM_READY', (t) => t.lines[0] === 'tv');
    assert.deepEqual(ready.lines, ['tv', 'Playlist']);
    assert.deepEqual(of(cap, 'STREAM_LOAD', 'tv').map((t) => t.lines), [['tv']]);
    await sleep(1500);
    viewer.close();
    const leftAt = Date.now();
    const first = await cap.wait('STREAM_UNLOAD', (t) => t.lines[0] === 'tv');
    assert.ok(first.atMs - leftAt >= 1500 && first.atMs - leftAt < 6000, `inputtimeout 2 s: ${first.atMs - leftAt} ms`);
    assert.deepEqual(first.lines, ['tv', 'Playlist', 'cancelableno viewers for 2 s']);
    const second = await cap.wait('STREAM_UNLOAD', (t) => t.lines[0] === 'tv' && t !== first);
    assert.ok(second.atMs - first.atMs >= 1500, 'the false answer kept it running for another inputtimeout');
    await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === 'tv' && t.lines[1] === 'EMPTY');
    assert.match(haze.log(), /stream tv: STREAM_UNLOAD keeps its input running/);
    assert.match(haze.log(), /stream tv ended: no viewers for 2 s/);
    assert.equal(of(cap, 'STREAM_UNLOAD', 'tv').length, 2, 'no second, uncancelable STREAM_UNLOAD at the end');
    assert.deepEqual(buffers(cap, 'tv'), ['FULL', 'EMPTY']);
  });

  it('always_on: a playlist runs without viewers; one that fails gives INPUT_ABORT and is started again', async () => {
    const tv = path.join(dir, 'tv');
    fs.writeFileSync(path.join(dir, 'empty.pls'), '# nothing\n');
    assert.ok(!('error' in (await haze.api({ addstream: { always: { source: path.join(tv, 'list.pls'), always_on: true }, broken: { source: path.join(dir, 'empty.pls'), always_on: true } } }))));
    const ready = await cap.wait('STREAM_READY', (t) => t.lines[0] === 'always');
    assert.deepEqual(ready.lines, ['always', 'Playlist']);
    await cap.wait('STREAM_BUFFER', (t) => t.lines[0] === 'always' && t.lines[1] === 'FULL');
    const abort = await cap.wait('INPUT_ABORT', (t) => t.lines[0] === 'broken');
    assert.equal(abort.lines.length, 6);
    assert.deepEqual(abort.lines.slice(0, 3), ['broken', path.join(dir, 'empty.pls'), 'Playlist']);
    assert.match(abort.lines[3]!, /^\d+$/);
    assert.equal(abort.lines[4], 'HAZE_ERR_NOT_FOUND');
    assert.match(abort.lines[5]!, /empty\.pls: no entries/);
    const again = await cap.wait('INPUT_ABORT', (t) => t.lines[0] === 'broken' && t !== abort, 15_000);
    assert.ok(again.atMs - abort.atMs >= 4000, `started again after a pause: ${again.atMs - abort.atMs} ms`);
    // still running after the inputtimeout of a viewer-started input
    await sleep(1000);
    assert.deepEqual(buffers(cap, 'always'), ['FULL']);
    assert.ok(!('error' in (await haze.api({ deletestream: ['always', 'broken'] }))));
  });
});
