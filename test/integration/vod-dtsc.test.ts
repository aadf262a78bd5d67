// DTSC files as streams (issue 4): a viewer keeps playing a DTSC file over HLS while
// `haze merge --append` adds a second audio language, and the next multivariant playlist lists
// it; a DTSC recording still being written plays while it grows (EVENT playlist, catch-up over
// FLV) and turns into a VoD playlist when it is finished.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseFramemd5, run, runOk, sleep, tmpDir } from '../helpers.js';
import { startHaze, type HazeInstance } from './harness.js';
import { convert } from '../../src/cli/convert.js';
import { runMerge } from '../../src/cli/merge.js';
import { DtscFileWriter } from '../../src/containers/dtsc/file.js';
import { readFilePackets } from '../../src/inputs/file-packets.js';
import type { Packet, Track } from '../../src/media/types.js';

async function frames(url: string, map: string): Promise<string[]> {
  const r = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', url, '-map', map, '-c', 'copy', '-f', 'framemd5', '-'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `${url}: ${r.stderr}`);
  return parseFramemd5(r.stdout.toString()).map((f) => f.hash);
}

describe('DTSC files as streams', { timeout: 180_000 }, () => {
  let haze: HazeInstance;
  const dir = tmpDir('haze-vod-dtsc-');
  const movie = path.join(dir, 'movie.dtsc');
  const hindi = path.join(dir, 'hindi.dtsc');
  const source = path.join(dir, 'source.mp4');

  before(async () => {
    await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-t', '12',
      '-c:v', 'libx264', '-preset', 'veryfast', '-g', '25', '-c:a', 'aac', '-b:a', '32k', '-metadata:s:a', 'language=tel', source]);
    const hin = path.join(dir, 'hindi.m4a');
    await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=880:sample_rate=44100', '-t', '12', '-c:a', 'aac', '-b:a', '32k', '-metadata:s:a', 'language=hin', hin]);
    await convert(source, movie);
    await convert(hin, hindi);
    haze = await startHaze({ workers: 2 });
    for (const [name, src] of [['movie', movie], ['rec', path.join(dir, 'rec.dtsc')]] as const) {
      const r = await haze.api({ addstream: { [name]: { source: src } } });
      assert.ok(!('error' in r), JSON.stringify(r));
    }
    await sleep(500);
  });
  after(async () => {
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a viewer keeps playing over HLS while a second audio language is appended; the next playlist lists it', async () => {
    const before = await (await fetch(haze.httpUrl('/hls/movie/index.m3u8'))).text();
    assert.doesNotMatch(before, /TYPE=AUDIO/, 'one audio track: muxed into the variant');
    // a real-time viewer of the variant playlist
    const viewer = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-i', haze.httpUrl('/hls/movie/0_1/index.m3u8'), '-map', '0:v', '-c', 'copy', '-f', 'framemd5', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    viewer.stdout.on('data', (d: Buffer) => (out += d.toString()));
    viewer.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const done = new Promise<number | null>((resolve) => viewer.on('exit', resolve));
    await sleep(3000);
    assert.equal(viewer.exitCode, null, 'still playing when the append starts');
    assert.equal(await runMerge(['--append', movie, hindi]), 0);
    await sleep(1200);
    const afterAppend = await (await fetch(haze.httpUrl('/hls/movie/index.m3u8'))).text();
    assert.match(afterAppend, /TYPE=AUDIO/, 'two audio tracks: an audio group');
    assert.match(afterAppend, /LANGUAGE="hin"/);
    assert.match(afterAppend, /LANGUAGE="tel"/);
    assert.equal(await done, 0, err);
    // TS carries H.264 as Annex B: count the packets (the payloads differ from the MP4's by framing)
    const want = await frames(source, '0:v');
    assert.equal(parseFramemd5(out).length, want.length, 'the viewer got every video packet');
    // the appended language plays from its own playlist
    const hinUri = /URI="([^"]+)"/.exec(afterAppend.split('\n').find((l) => l.includes('LANGUAGE="hin"')) ?? '');
    assert.ok(hinUri, 'the hin rendition has a URI');
    const hinFrames = await frames(haze.httpUrl(`/hls/movie/${hinUri[1]}`), '0:a');
    assert.ok(hinFrames.length > 500, `hin audio plays (${hinFrames.length} frames)`);
  });

  it('a DTSC recording plays while it grows, and becomes VoD when finished', async () => {
    const file = path.join(dir, 'rec.dtsc');
    let tracks: Track[] = [];
    const packets: Packet[] = [];
    for await (const c of readFilePackets(source)) {
      if (c.tracks) tracks = c.tracks;
      packets.push(...c.packets);
    }
    const writer = new DtscFileWriter({ tracks });
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, writer.header());
    const write = (upToMs: number): void => {
      while (packets.length > 0 && packets[0]!.timeMs < upToMs) fs.writeSync(fd, writer.packet(packets.shift()!));
      fs.fsyncSync(fd);
    };
    write(4000);
    const p1 = await (await fetch(haze.httpUrl('/hls/rec/0_1/index.m3u8'))).text();
    assert.match(p1, /#EXT-X-PLAYLIST-TYPE:EVENT/);
    assert.doesNotMatch(p1, /#EXT-X-ENDLIST/);
    const n1 = p1.split('\n').filter((l) => l.endsWith('.ts')).length;
    assert.ok(n1 >= 1, `segments of the first 4 s: ${n1}`);
    // a catch-up viewer from the start while the recording goes on
    const flv = fetch(haze.httpUrl('/rec.flv')).then(async (r) => Buffer.from(await r.arrayBuffer()));
    for (const t of [6000, 8000, 10000]) {
      await sleep(1200);
      write(t);
    }
    await sleep(1200);
    const p2 = await (await fetch(haze.httpUrl('/hls/rec/0_1/index.m3u8'))).text();
    assert.ok(p2.split('\n').filter((l) => l.endsWith('.ts')).length > n1, 'the playlist grew');
    write(Number.POSITIVE_INFINITY);
    const { trailer, patch } = writer.finish();
    fs.writeSync(fd, trailer);
    fs.writeSync(fd, patch.bytes, 0, patch.bytes.length, patch.position);
    fs.closeSync(fd);
    await sleep(1200);
    const p3 = await (await fetch(haze.httpUrl('/hls/rec/0_1/index.m3u8'))).text();
    assert.match(p3, /#EXT-X-PLAYLIST-TYPE:VOD/);
    assert.match(p3, /#EXT-X-ENDLIST/);
    const flvFile = path.join(dir, 'catchup.flv');
    fs.writeFileSync(flvFile, await flv);
    const want = await frames(source, '0:v');
    assert.deepEqual(await frames(flvFile, '0:v'), want, 'the catch-up viewer got the whole recording');
    assert.deepEqual(await frames(haze.httpUrl('/hls/rec/0_1/index.m3u8'), '0:v').then((f) => f.length), want.length);
  });
});
