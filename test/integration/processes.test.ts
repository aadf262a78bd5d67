// Stream processes in a running Haze (issue 7 item 6): a stream configured with an AAC -> Opus
// process and an H.264 rendition process, published by ffmpeg over RTMP (H.264 + AAC with a beep
// every second). json_NAME.js lists the new tracks; ffmpeg records /NAME.mkv with the source
// video and both audio tracks, and the two video tracks, and ffprobe/ffmpeg read them: the Opus
// track decodes without errors, lasts as long as the video, and its beeps fall where the AAC
// track's do (the process's output is on the stream's timeline); the rendition has its own size.
// Killing the Opus ffmpeg (kill -9, pid from proc_list) is followed by a restart with the same
// track, which a viewer connected across the kill keeps receiving.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { run, runOk, sleep, tmpDir } from '../helpers.js';
import { probePackets, probeStreams } from '../media-files.js';
import { startHaze, type HazeInstance } from './harness.js';

const NAME = 'procs';
/** Longer than the test needs: the publisher is stopped when the test ends. */
const PUBLISH_S = 60;

interface JsonTrack {
  codec: string;
  type: string;
  idx: number;
  trackid: number;
  width?: number;
  height?: number;
  rate?: number;
  channels?: number;
}

async function tracksOf(haze: HazeInstance): Promise<JsonTrack[]> {
  const res = await fetch(haze.httpUrl(`/json_${NAME}.js`));
  const j = (await res.json()) as { meta?: { tracks?: Record<string, JsonTrack> } };
  return Object.values(j.meta?.tracks ?? {});
}

async function until<T>(what: string, get: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** ffmpeg, a real viewer: records `seconds` of a stream URL with stream copy. */
function record(url: string, file: string, seconds: number): Promise<void> {
  return runOk('ffmpeg', ['-v', 'error', '-y', '-i', url, '-map', '0', '-c', 'copy', '-t', String(seconds), file], { timeoutMs: 20_000 }).then(() => undefined);
}

/** Decoding errors ffmpeg reports for a file (empty: it decodes cleanly). */
async function decodeErrors(file: string): Promise<string> {
  const r = await run('ffmpeg', ['-v', 'error', '-i', file, '-map', '0', '-f', 'null', '-'], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  return r.stderr.trim();
}

/** First and last presentation time (s) of a stream of a file, and its packet count. */
async function span(file: string, select: string): Promise<{ first: number; last: number; count: number }> {
  const ps = (await probePackets(file, select)).map((p) => Number(p.pts_time)).filter((t) => Number.isFinite(t));
  return { first: Math.min(...ps), last: Math.max(...ps), count: ps.length };
}

/**
 * The times (s, on the file's timeline) at which a beep (1760 Hz over the 440 Hz tone) starts in
 * an audio stream: decoded to mono PCM at 48 kHz, zero crossings counted in 2 ms windows.
 */
async function beepOnsets(file: string, select: string): Promise<number[]> {
  const start = Number((await runOk('ffprobe', ['-v', 'error', '-select_streams', select, '-show_entries', 'stream=start_time', '-of', 'csv=p=0', file])).toString().trim());
  const pcm = await runOk('ffmpeg', ['-v', 'error', '-i', file, '-map', `0:${select}`, '-ac', '1', '-ar', '48000', '-f', 's16le', '-'], { timeoutMs: 20_000 });
  const n = pcm.length / 2;
  const W = 96;
  const onsets: number[] = [];
  let high = false;
  for (let w = 0; (w + 1) * W <= n; w++) {
    let z = 0;
    for (let i = w * W + 1; i < (w + 1) * W; i++) if (pcm.readInt16LE(i * 2) >= 0 !== pcm.readInt16LE(i * 2 - 2) >= 0) z++;
    const isHigh = z >= 4;
    if (isHigh && !high) onsets.push(start + (w * W) / 48000);
    high = isHigh;
  }
  return onsets;
}

type ProcRow = { process: string; source: string; status: string; restarts: number; pid: number; sink_tracks: number[]; source_tracks: number[]; ainfo: { child_pid: number; cmd: string } };

async function procList(haze: HazeInstance): Promise<Record<string, ProcRow>> {
  return (await haze.api({ proc_list: NAME }))['proc_list'] as Record<string, ProcRow>;
}

describe('stream processes: AAC -> Opus and an H.264 rendition, supervised', { timeout: 60_000 }, () => {
  let haze: HazeInstance;
  let publisher: ChildProcess | undefined;
  const dir = tmpDir('haze-procs-');
  let publishedAt = 0;
  let opus: JsonTrack;
  let srcVideo: JsonTrack;

  before(async () => {
    haze = await startHaze({ workers: 2 });
    const r = await haze.api({
      addstream: {
        [NAME]: {
          source: 'push://',
          processes: [
            { process: 'FFMPEG', 'x-LSP-kind': 'audio', codec: 'opus', track_inhibit: 'audio=opus' },
            { process: 'FFMPEG', 'x-LSP-kind': 'video', codec: 'H264', resolution: '160x90', rate: 150000 },
          ],
        },
      },
    });
    assert.ok(!('error' in r), JSON.stringify(r['error']));
    publishedAt = Date.now();
    publisher = spawn(
      'ffmpeg',
      ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-f', 'lavfi', '-i', 'sine=f=440:sample_rate=48000:beep_factor=4', '-t', String(PUBLISH_S), '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '30', '-c:a', 'aac', '-f', 'flv', haze.rtmpUrl(NAME)],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  });
  after(async () => {
    if (process.env['HAZE_TEST_LOG']) fs.writeFileSync(process.env['HAZE_TEST_LOG'], haze.log());
    publisher?.kill('SIGKILL');
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the stream gets an Opus track and a 160x90 H.264 rendition', async (t) => {
    const tracks = await until(
      'the process tracks in json_NAME.js',
      async () => {
        const ts = await tracksOf(haze);
        return ts.some((x) => x.codec === 'opus') && ts.filter((x) => x.codec === 'H264').length === 2 ? ts : undefined;
      },
      12_000,
    );
    t.diagnostic(`process tracks listed ${Date.now() - publishedAt} ms after ffmpeg started publishing`);
    opus = tracks.find((x) => x.codec === 'opus')!;
    assert.equal(opus.type, 'audio');
    assert.equal(opus.rate, 48000);
    assert.equal(opus.channels, 2);
    assert.ok(opus.trackid >= 1_000_000, `a process track id (${opus.trackid})`);
    const videos = tracks.filter((x) => x.codec === 'H264').sort((a, b) => b.width! - a.width!);
    srcVideo = videos[0]!;
    assert.deepEqual(videos.map((v) => `${v.width}x${v.height}`), ['320x180', '160x90']);
    assert.equal(tracks.filter((x) => x.codec === 'AAC').length, 1, 'the source AAC stays');
  });

  it('the Opus track decodes cleanly, lasts as long as the video and beeps with the AAC; the rendition plays', async (t) => {
    // (an audio-only Matroska/WebM viewer, /NAME.webm?audio=opus, is not used: outputs/feed.ts
    // starts such viewers at a packet that opens no Cluster, whatever the track; see the report)
    const mkv = path.join(dir, 'both.mkv');
    const ladder = path.join(dir, 'ladder.mkv');
    const t0 = Date.now();
    await Promise.all([record(haze.httpUrl(`/${NAME}.mkv?video=i${srcVideo.trackid}&audio=all`), mkv, 3), record(haze.httpUrl(`/${NAME}.mkv?video=all&audio=none`), ladder, 3)]);
    t.diagnostic(`3 s recordings took ${Date.now() - t0} ms`);

    // every reader at once: each is a process of its own
    const [m, mkvErrors, l, ladderErrors, big, small] = await Promise.all([probeStreams(mkv), decodeErrors(mkv), probeStreams(ladder), decodeErrors(ladder), span(ladder, 'v:0'), span(ladder, 'v:1')]);
    assert.deepEqual(m.map((s) => s.codec_name).sort(), ['aac', 'h264', 'opus']);
    const o48 = m.find((s) => s.codec_name === 'opus')!;
    assert.deepEqual([o48.sample_rate, o48.channels], ['48000', 2]);
    assert.equal(mkvErrors, '', 'the Opus track (and the rest) decodes without errors');
    const aacIdx = m.findIndex((s) => s.codec_name === 'aac');
    const opusIdx = m.findIndex((s) => s.codec_name === 'opus');
    const [v, o, aacBeeps, opusBeeps] = await Promise.all([span(mkv, 'v:0'), span(mkv, `${opusIdx}`), beepOnsets(mkv, `${aacIdx}`), beepOnsets(mkv, `${opusIdx}`)]);
    const durV = v.last - v.first;
    const durO = o.last - o.first;
    t.diagnostic(`recording: video ${durV.toFixed(3)} s, Opus ${durO.toFixed(3)} s (${o.count} packets), first pts video ${v.first.toFixed(3)} Opus ${o.first.toFixed(3)}`);
    assert.ok(Math.abs(durV - durO) < 0.4, `Opus lasts as long as the video: ${durO} vs ${durV}`);
    // every 20 ms packet from the first to the last: no hole in the Opus track
    assert.ok(o.count >= Math.floor(durO / 0.02) - 1, `${o.count} packets over ${durO} s`);

    // the beeps are on the source's timeline in both audio tracks
    assert.ok(aacBeeps.length >= 2 && opusBeeps.length >= 2, `beeps found: AAC ${aacBeeps.join(',')} Opus ${opusBeeps.join(',')}`);
    const offsets = opusBeeps.map((ob) => aacBeeps.reduce((best, ab) => (Math.abs(ob - ab) < Math.abs(best) ? ob - ab : best), Infinity)).filter((d) => Math.abs(d) < 0.5);
    t.diagnostic(`Opus beep minus AAC beep (ms): ${offsets.map((d) => Math.round(d * 1000)).join(', ')}`);
    assert.ok(offsets.length >= 2, `matching beeps: AAC ${aacBeeps.join(',')} Opus ${opusBeeps.join(',')}`);
    // within a few ms of each other: the AAC decoder outputs 1024 priming samples (21 ms) and the
    // Matroska writer's Opus timestamps leave out the codec delay (6.5 ms), nothing else
    for (const d of offsets) assert.ok(Math.abs(d) < 0.06, `Opus beep ${Math.round(d * 1000)} ms from the AAC beep`);
    assert.ok(Math.max(...offsets) - Math.min(...offsets) < 0.01, 'the same offset at every beep');

    assert.deepEqual(l.map((s) => `${s.codec_name} ${s.width}x${s.height}`).sort(), ['h264 160x90', 'h264 320x180']);
    assert.equal(ladderErrors, '', 'both renditions decode');
    assert.ok(Math.abs(big.count - small.count) <= 3, `frames: source ${big.count}, rendition ${small.count}`);
  });

  it('proc_list lists both processes; a killed ffmpeg is restarted and its Opus track goes on', async (t) => {
    const list = await procList(haze);
    const rows = Object.entries(list);
    assert.equal(rows.length, 2, JSON.stringify(list));
    const [opusPid, opusRow] = rows.find(([, r]) => r.sink_tracks.includes(opus.trackid))!;
    assert.equal(opusRow.process, 'FFMPEG');
    assert.equal(opusRow.source, NAME);
    assert.equal(opusRow.status, 'running');
    assert.equal(opusRow.restarts, 0);
    assert.equal(opusRow.ainfo.child_pid, Number(opusPid));
    assert.match(opusRow.ainfo.cmd, /^ffmpeg .*-c:a libopus/);
    const videoRow = rows.find(([pid]) => pid !== opusPid)![1];
    assert.match(videoRow.ainfo.cmd, /scale=160:90/);
    assert.deepEqual(videoRow.source_tracks, [srcVideo.trackid]);

    // a viewer across the kill
    const across = path.join(dir, 'across.mkv');
    const recording = record(haze.httpUrl(`/${NAME}.mkv?video=i${srcVideo.trackid}&audio=opus`), across, 3);
    await sleep(1000);
    const killedAt = Date.now();
    process.kill(Number(opusPid), 'SIGKILL');
    const restarted = await until(
      'the restarted Opus process',
      async () => {
        const r = Object.values(await procList(haze)).find((x) => x.sink_tracks.includes(opus.trackid) && x.status === 'running' && x.pid !== Number(opusPid));
        return r;
      },
      8000,
    );
    t.diagnostic(`restarted ${Date.now() - killedAt} ms after kill -9 (new pid ${restarted.pid})`);
    assert.equal(restarted.restarts, 1);
    await recording;
    const after = await tracksOf(haze);
    assert.equal(after.filter((x) => x.codec === 'opus').length, 1);
    assert.equal(after.find((x) => x.codec === 'opus')!.trackid, opus.trackid, 'the same Opus track');
    assert.equal(await decodeErrors(across), '', 'the Opus track decodes across the restart');
    const ps = (await probePackets(across, 'a:0')).map((p) => Number(p.pts_time)).sort((a, b) => a - b);
    let gap = 0;
    for (let i = 1; i < ps.length; i++) gap = Math.max(gap, ps[i]! - ps[i - 1]!);
    t.diagnostic(`across the kill: ${ps.length} Opus packets over ${(ps[ps.length - 1]! - ps[0]!).toFixed(3)} s, largest gap ${Math.round(gap * 1000)} ms`);
    assert.ok(ps[ps.length - 1]! - ps[0]! > 2.5, 'the viewer kept receiving Opus');
    assert.ok(gap < 0.2, `no hole where the process restarted (largest gap ${gap} s)`);
    assert.ok(haze.log().includes('restarting in'), 'the restart is logged');
  });
});
