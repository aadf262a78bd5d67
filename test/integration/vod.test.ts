// Files as streams (issue 4): a 10-minute file played through every output from minute 7
// (the first frame is the source's keyframe at or before 7:00, found by its payload hash),
// VoD HLS/DASH listing the whole file, the moov-first MP4 with byte ranges, the `.dtsh`
// sidecar, folder streams and their containment, RTMP seeking.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseFramemd5, pollUntil, run, runOk, tmpDir, type FrameLine } from '../helpers.js';
import { startHaze, type HazeInstance } from './harness.js';
import { readDtscHeader } from '../../src/containers/dtsc/header.js';
import { chromium } from 'playwright-core';
import { RtmpClient } from '../../src/protocols/rtmp/client.js';

const CHROMIUM = process.env['HAZE_CHROMIUM'] ?? '/usr/bin/chromium';
// What works on this kind of machine (closed network, root, no GPU): see the env notes.
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'];

const MINUTE_7_MS = 420_000;
const GOP_FRAMES = 50;
const FPS = 10;

/** Packets (-c copy) or, with `decode`, decoded frames: MPEG-TS carries H.264 as Annex B, so its packets differ from MP4's while its frames do not. */
async function framemd5(input: string, args: string[] = [], decode = false): Promise<FrameLine[]> {
  const r = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', input, ...args, ...(decode ? ['-an'] : ['-c', 'copy']), '-f', 'framemd5', '-'], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `${input}: ${r.stderr}`);
  return parseFramemd5(r.stdout.toString());
}

describe('VoD: files as streams', { timeout: 300_000 }, () => {
  let haze: HazeInstance;
  const dir = tmpDir('haze-vod-');
  const films = path.join(dir, 'films');
  const mp4 = path.join(films, 'long.mp4');
  const flv = path.join(films, 'long.flv');
  /** The source's video packets (stream 0 of the MP4): hash -> pts in ms. */
  let sourceVideo: FrameLine[] = [];
  /** The source's decoded video frames. */
  let sourceFrames: FrameLine[] = [];
  /** The keyframe at or before minute 7, in ms. */
  let key7Ms = 0;

  before(async () => {
    fs.mkdirSync(films);
    await runOk(
      'ffmpeg',
      ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=160x90:rate=${FPS}`, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=22050', '-t', '600',
        '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', String(GOP_FRAMES), '-keyint_min', String(GOP_FRAMES), '-sc_threshold', '0', '-b:v', '40k',
        '-c:a', 'aac', '-b:a', '24k', '-ac', '1', mp4],
      { timeoutMs: 120_000 },
    );
    await runOk('ffmpeg', ['-v', 'error', '-i', mp4, '-c', 'copy', flv]);
    // a file older than 15 s gets a .dtsh that later opens use (MistServer's rule)
    const old = new Date(Date.now() - 3600_000);
    for (const f of [mp4, flv]) fs.utimesSync(f, old, old);
    const frames = await framemd5(mp4);
    sourceVideo = frames.filter((f) => f.stream === 0);
    sourceFrames = await framemd5(mp4, [], true);
    // keyframes every GOP_FRAMES frames from 0 (-sc_threshold 0): the one at or before 7:00
    key7Ms = Math.floor(MINUTE_7_MS / ((GOP_FRAMES / FPS) * 1000)) * (GOP_FRAMES / FPS) * 1000;
    haze = await startHaze({ workers: 2 });
    for (const [name, source] of [['vod', mp4], ['vodflv', flv], ['films', `${films}/`]] as const) {
      const r = await haze.api({ addstream: { [name]: { source } } });
      assert.ok(!('error' in r), JSON.stringify(r));
    }
    await new Promise((r) => setTimeout(r, 500));
  });
  after(async () => {
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** The first video frame is the source's keyframe at or before 7:00 (`decoded`: compare decoded frames). */
  const expectKey7 = (frames: FrameLine[], what: string, decoded = false): void => {
    const first = frames.find((f) => f.stream === 0);
    assert.ok(first, `${what}: has video`);
    const i = (decoded ? sourceFrames : sourceVideo).findIndex((f) => f.hash === first.hash);
    assert.ok(i >= 0, `${what}: the first frame is a frame of the source`);
    assert.equal(i, (key7Ms / 1000) * FPS, `${what}: the first frame is the keyframe at ${key7Ms} ms (source frame ${(key7Ms / 1000) * FPS}), got frame ${i}`);
  };

  it('json_NAME.js describes the file as VoD with its tracks and duration', async () => {
    const info = (await (await fetch(haze.httpUrl('/json_vod.js'))).json()) as { type: string; meta: { tracks: Record<string, { codec: string; lastms: number }> } };
    assert.equal(info.type, 'vod');
    const tracks = Object.values(info.meta.tracks);
    assert.deepEqual(tracks.map((t) => t.codec).sort(), ['AAC', 'H264']);
    for (const t of tracks) assert.ok(t.lastms > 599_000 && t.lastms <= 600_100, `lastms ${t.lastms}`);
  });

  it('minute 7 over FLV, MP4, HLS and RTMP starts at the keyframe at or before it', async () => {
    // rtmpdump asks with the play command's Start argument (-A seconds); the first 3 s of its dump
    const dumped = path.join(dir, 'dump.flv');
    const rd = spawn('rtmpdump', ['-q', '-r', haze.rtmpUrl('vod', 'vod'), '-A', String(MINUTE_7_MS / 1000), '-o', dumped], { stdio: 'ignore' });
    const dumping = new Promise((r) => setTimeout(r, 3000)).then(() => {
      rd.kill('SIGINT');
      return new Promise((r) => rd.once('exit', r));
    });
    // the players side by side (and beside rtmpdump's 3 s), checked in order
    const range = `start=${MINUTE_7_MS}&stop=${MINUTE_7_MS + 5000}`;
    const played = await Promise.all([
      framemd5(haze.httpUrl(`/vod.flv?${range}`)),
      framemd5(haze.httpUrl(`/vodflv.flv?${range}`)),
      framemd5(haze.httpUrl(`/vod.mp4?${range}`)),
      framemd5(haze.httpUrl(`/vod.ts?${range}`), [], true),
      framemd5(haze.httpUrl(`/vod.mkv?${range}`)),
      framemd5(haze.rtmpUrl(`vod?start=${MINUTE_7_MS}`, 'vod'), ['-t', '2']),
    ]);
    expectKey7(played[0]!, 'FLV of the MP4 file');
    expectKey7(played[1]!, 'FLV of the FLV file');
    expectKey7(played[2]!, 'MP4');
    expectKey7(played[3]!, 'TS', true);
    expectKey7(played[4]!, 'MKV');
    expectKey7(played[5]!, 'RTMP (?start=)');
    await dumping;
    assert.ok(fs.existsSync(dumped) && fs.statSync(dumped).size > 0, 'rtmpdump wrote the stream');
    expectKey7(await framemd5(dumped), 'RTMP play Start (rtmpdump -A)');
    // HLS: the playlist lists the whole file; the segment that holds minute 7 starts at its keyframe
    const media = await (await fetch(haze.httpUrl('/hls/vod/0_1/index.m3u8'))).text();
    assert.match(media, /#EXT-X-PLAYLIST-TYPE:VOD/);
    assert.match(media, /#EXT-X-ENDLIST/);
    const uris = media.split('\n').filter((l) => l.endsWith('.ts'));
    const total = media.split('\n').filter((l) => l.startsWith('#EXTINF:')).reduce((s, l) => s + Number(l.slice(8).split(',')[0]), 0);
    assert.ok(Math.abs(total - 600) < 1, `EXTINF sum ${total} s`);
    const seg = uris.find((u) => {
      const [a, b] = u.replace('.ts', '').split('_').map(Number);
      return a! <= MINUTE_7_MS && MINUTE_7_MS < b!;
    });
    assert.ok(seg, 'a segment holds minute 7');
    expectKey7(await framemd5(haze.httpUrl(`/hls/vod/0_1/${seg}`), [], true), 'HLS segment', true);
  });

  it('RTMP seek and pause (NetStream.seek / NetStream.pause)', async () => {
    const client = new RtmpClient();
    const video: Array<{ at: number; timeMs: number; key: boolean }> = [];
    const statuses: string[] = [];
    client.on('media', (m) => {
      if (m.typeId === 9 && m.body.length > 1 && (m.body[1] === 1 || (m.body[0]! & 0x80) !== 0)) video.push({ at: Date.now(), timeMs: m.timestamp, key: m.body[0]! >> 4 === 1 });
    });
    client.on('status', (s) => statuses.push(s.code));
    try {
      await client.connect(haze.rtmpUrl('vod', 'vod'));
      await client.play('vod');
      const until = async (ok: () => boolean, what: string): Promise<void> => {
        for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
        assert.ok(ok(), what);
      };
      await until(() => video.length > 0, 'video from the start');
      assert.ok(video[0]!.key && video[0]!.timeMs < 1000, 'starts at the first keyframe');
      client.seek(MINUTE_7_MS + 2000);
      await until(() => video.some((v) => v.timeMs >= MINUTE_7_MS), 'video after the seek');
      const afterSeek = video.find((v) => v.timeMs >= MINUTE_7_MS)!;
      assert.ok(afterSeek.key && afterSeek.timeMs === key7Ms, `the seek lands on the keyframe at ${key7Ms} ms (got ${afterSeek.timeMs})`);
      assert.ok(statuses.includes('NetStream.Seek.Notify'));
      client.pause(true, afterSeek.timeMs);
      await new Promise((r) => setTimeout(r, 4500)); // more than the 3 s sent ahead
      const pausedAt = video.length;
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(video.length, pausedAt, 'nothing is sent while paused');
      assert.ok(statuses.includes('NetStream.Pause.Notify'));
      const last = video[video.length - 1]!.timeMs;
      client.pause(false, last);
      await until(() => video.length > pausedAt, 'video after resuming');
      assert.ok(video[pausedAt]!.timeMs <= last + 1 && video[pausedAt]!.timeMs >= last - (GOP_FRAMES / FPS) * 1000, `resumes from the keyframe at or before ${last} ms (got ${video[pausedAt]!.timeMs})`);
    } finally {
      await client.close();
    }
  });

  it('HLS, DASH and progressive outputs carry the whole file, frame for frame', async () => {
    // the four players side by side, checked in order
    const [hls, mp4Out, dash, flvOut] = await Promise.all([
      framemd5(haze.httpUrl('/hls/vod/index.m3u8'), [], true),
      framemd5(haze.httpUrl('/vod.mp4')),
      framemd5(haze.httpUrl('/cmaf/vod/index.mpd')),
      framemd5(haze.httpUrl('/vodflv.flv')),
    ]);
    assert.deepEqual(hls.map((f) => f.hash), sourceFrames.map((f) => f.hash), 'HLS: every video frame');
    assert.deepEqual(mp4Out.filter((f) => f.stream === 0).map((f) => f.hash), sourceVideo.map((f) => f.hash), 'MP4: every video packet');
    assert.deepEqual(dash.filter((f) => f.stream === 0).map((f) => f.hash), sourceVideo.map((f) => f.hash), 'DASH: every video packet');
    assert.deepEqual(flvOut.filter((f) => f.stream === 0).map((f) => f.hash), sourceVideo.map((f) => f.hash), 'FLV: every video packet');
  });

  it('the MP4 is moov-first and honours byte ranges', async () => {
    const whole = Buffer.from(await (await fetch(haze.httpUrl('/vod.mp4'))).arrayBuffer());
    assert.equal(whole.toString('latin1', 4, 8), 'ftyp');
    const moovAt = whole.readUInt32BE(0);
    assert.equal(whole.toString('latin1', moovAt + 4, moovAt + 8), 'moov');
    for (const [a, b] of [[0, 99], [whole.length >> 1, (whole.length >> 1) + 100_000], [whole.length - 5000, whole.length - 1]] as const) {
      const r = await fetch(haze.httpUrl('/vod.mp4'), { headers: { Range: `bytes=${a}-${b}` } });
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-range'), `bytes ${a}-${b}/${whole.length}`);
      assert.ok(Buffer.from(await r.arrayBuffer()).equals(whole.subarray(a, b + 1)), `bytes ${a}-${b}`);
    }
    assert.equal((await fetch(haze.httpUrl('/vod.mp4'), { headers: { Range: `bytes=${whole.length}-` } })).status, 416);
  });

  it('a browser <video> scrubs the progressive MP4 with byte ranges', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      const ranges: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes('/vod.mp4')) ranges.push(r.headers()['range'] ?? 'none');
      });
      await page.goto(haze.httpUrl('/json_vod.js'));
      // runs in the page (the test is compiled without the DOM library, hence the untyped globals)
      const result = await page.evaluate(async (src: string) => {
        const doc = (globalThis as any).document;
        const video = doc.createElement('video');
        video.muted = true;
        video.src = src;
        doc.body.appendChild(video);
        const event = (name: string): Promise<void> =>
          new Promise((resolve, reject) => {
            video.addEventListener(name, () => resolve(), { once: true });
            video.addEventListener('error', () => reject(new Error(`video error ${video.error?.code}`)), { once: true });
          });
        await event('loadedmetadata');
        const duration = video.duration as number;
        const seeks: Array<{ asked: number; got: number; ready: number }> = [];
        for (const t of [420, 90, 555]) {
          const seeked = event('seeked');
          video.currentTime = t;
          await seeked;
          if (video.readyState < 2) await event('canplay');
          seeks.push({ asked: t, got: video.currentTime as number, ready: video.readyState as number });
        }
        await video.play();
        await new Promise((r) => setTimeout(r, 1500));
        return { duration, seeks, after: video.currentTime as number, frames: video.getVideoPlaybackQuality().totalVideoFrames as number };
      }, haze.httpUrl('/vod.mp4'));
      assert.ok(Math.abs(result.duration - 600) < 1, `duration ${result.duration}`);
      for (const s of result.seeks) {
        assert.ok(Math.abs(s.got - s.asked) < 1, `seek to ${s.asked} s landed at ${s.got} s`);
        assert.ok(s.ready >= 2, `frame data at ${s.asked} s`);
      }
      assert.ok(result.after > 555, `plays on after the last seek (at ${result.after} s)`);
      assert.ok(ranges.filter((r) => r !== 'none').length >= 2, `the browser asked for ranges: ${ranges.join(' ')}`);
    } finally {
      await browser.close();
    }
  });

  it('the first open writes a .dtsh sidecar that holds the index', async () => {
    const side = `${flv}.dtsh`;
    assert.ok(fs.existsSync(side), 'long.flv.dtsh written');
    const meta = readDtscHeader(fs.readFileSync(side));
    assert.equal(meta.version, 4);
    const video = meta.tracks.find((t) => t.type === 'video')!;
    assert.equal(video.tables!.keys.length, 600 / (GOP_FRAMES / FPS), 'a key per GOP');
    assert.equal(video.tables!.parts.length, sourceVideo.length, 'a part per frame');
  });

  it('a .pls playlist plays its entries in order as a live stream; entries outside its folder are refused', async () => {
    const tv = path.join(dir, 'tv');
    fs.mkdirSync(tv);
    for (const [name, color] of [['a', 'red'], ['b', 'blue']] as const) {
      await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `color=c=${color}:size=160x90:rate=25,drawtext=text=%{n}:fontsize=40:x=10:y=10`, '-t', '4', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-an', path.join(tv, `${name}.flv`)]).catch(async () =>
        // without drawtext (no fonts): frames of one colour still tell the entries apart
        runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `color=c=${color}:size=160x90:rate=25`, '-t', '4', '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-an', path.join(tv, `${name}.flv`)]),
      );
    }
    fs.writeFileSync(path.join(tv, 'list.pls'), '# two entries\na.flv\nb.flv\n');
    fs.writeFileSync(path.join(tv, 'bad.pls'), 'a.flv\n../films/long.flv\n');
    for (const [name, source] of [['tv', path.join(tv, 'list.pls')], ['badtv', path.join(tv, 'bad.pls')]] as const) {
      assert.ok(!('error' in (await haze.api({ addstream: { [name]: { source } } }))));
    }
    await new Promise((r) => setTimeout(r, 500));
    const a = new Set((await framemd5(path.join(tv, 'a.flv'), [], true)).map((f) => f.hash));
    const b = new Set((await framemd5(path.join(tv, 'b.flv'), [], true)).map((f) => f.hash));
    // 6 s of the live stream: the rest of a, then b; meanwhile the bad playlist waits out its offline answer
    const badAnswer = fetch(haze.httpUrl('/badtv.flv')).then(async (r) => (await r.arrayBuffer(), r.status));
    const live = await framemd5(haze.httpUrl('/tv.ts'), ['-t', '6'], true);
    const kinds = live.map((f) => (a.has(f.hash) ? 'a' : b.has(f.hash) ? 'b' : '?'));
    assert.ok(!kinds.includes('?'), 'every frame is a frame of an entry');
    const firstB = kinds.indexOf('b');
    assert.ok(firstB > 0 && kinds.slice(firstB).every((k) => k === 'b'), `entry a, then entry b: ${kinds.join('')}`);
    assert.equal(await badAnswer, 503, 'a playlist with an entry outside its folder never comes online');
    assert.match(haze.log(), /bad\.pls: entry "\.\.\/films\/long\.flv" is not a media file inside/);
    // the input stops 10 s after its last viewer left (the default inputtimeout)
    await pollUntil('tv to end', () => /stream tv ended: no viewers for 10 s/.test(haze.log()), 20_000, 200).catch(() => undefined);
    assert.match(haze.log(), /stream tv ended: no viewers for 10 s/);
  });

  it('folder streams play NAME+file and never leave the folder', async () => {
    expectKey7(await framemd5(haze.httpUrl(`/films+long.flv?start=${MINUTE_7_MS}&stop=${MINUTE_7_MS + 3000}`)), 'folder stream');
    fs.writeFileSync(path.join(dir, 'secret.flv'), fs.readFileSync(flv).subarray(0, 4096));
    fs.symlinkSync(path.join(dir, 'secret.flv'), path.join(films, 'link.flv'));
    for (const p of ['/films+..%2Fsecret.flv', '/films+link.flv', '/films+nothing.flv', '/films.flv', '/films+..%2F..%2Fetc%2Fpasswd.flv']) {
      const r = await fetch(haze.httpUrl(p));
      assert.equal(r.status, 404, `${p} answers 404`);
      await r.arrayBuffer();
    }
  });
});
