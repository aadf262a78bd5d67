// Audio-only progressive outputs against ffmpeg: /NAME.mp3, /NAME.aac, /NAME.wav (A-law, µ-law,
// 16-bit PCM) of streams ffmpeg publishes over RTMP, /NAME.ogg of Opus published over Enhanced
// RTMP by Haze's client, the audio of a video+audio stream, and 415 where no track fits.
// Every listener starts before the publisher, so it gets most of the clip (it joins at the
// newest packet once the stream is online): the packets (or decoded samples) it reads must be a
// contiguous run of the source's, at least 3/4 of it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { RtmpClient } from '../../src/protocols/rtmp/client.js';
import { audioTagBody, sequenceHeaderBody } from '../../src/containers/flv/mux.js';
import { readOggPackets } from '../../src/containers/ogg/page.js';
import { parseOpusHead } from '../../src/media/audio-headers.js';
import type { AudioTrack } from '../../src/media/types.js';
import { mistFixtures, parseFramemd5, run, runOk, sleep, tmpDir } from '../helpers.js';
import { extradata, filePackets } from '../media-files.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';

async function ffmpegOut(url: string, args: string[]): Promise<Buffer> {
  const r = await run('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', url, ...args], { timeoutMs: 45_000 });
  assert.equal(r.code, 0, `${url}: ${r.stderr}`);
  return r.stdout;
}

const packetHashes = async (url: string): Promise<string[]> => parseFramemd5((await ffmpegOut(url, ['-map', '0:a', '-c', 'copy', '-f', 'framemd5', '-'])).toString()).map((f) => f.hash);

interface ProbedAudio {
  codec_name: string;
  sample_rate: string;
  channels: number;
  codec_type: string;
}

async function probe(url: string): Promise<ProbedAudio[]> {
  const out = await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type,codec_name,sample_rate,channels', '-of', 'json', url], { timeoutMs: 30_000 });
  return (JSON.parse(out.toString()) as { streams: ProbedAudio[] }).streams;
}

/** `got` is a run of `want` in order, without gaps, of at least `min` items. */
function assertRun(got: readonly string[], want: readonly string[], min: number, label: string): void {
  assert.ok(got.length >= min, `${label}: ${got.length} packets, want at least ${min} of ${want.length}`);
  const at = want.indexOf(got[0]!);
  assert.ok(at >= 0, `${label}: the first packet is one of the source's`);
  assert.deepEqual(got, want.slice(at, at + got.length), `${label}: consecutive source packets, unchanged`);
}

/** Decoded `got` samples are a run of the decoded source `want`, at least `minBytes` long. */
function assertSampleRun(got: Buffer, want: Buffer, frameBytes: number, minBytes: number, label: string): void {
  assert.ok(got.length >= minBytes, `${label}: ${got.length} decoded bytes, want at least ${minBytes} of ${want.length}`);
  let at = want.indexOf(got.subarray(0, 256));
  while (at >= 0 && at % frameBytes !== 0) at = want.indexOf(got.subarray(0, 256), at + 1);
  assert.ok(at >= 0, `${label}: the first samples are the source's`);
  assert.ok(got.equals(want.subarray(at, at + got.length)), `${label}: every sample from there on equals the source's`);
}

describe('audio-only progressive outputs', { timeout: 120_000 }, () => {
  let haze: HazeInstance;
  const dir = tmpDir('haze-audio-');
  const clip = (name: string): string => path.join(dir, name);
  before(async () => {
    haze = await startHaze({ workers: 2 });
    // non-periodic noise, so a run of samples can only match at one place in the source
    const src = ['-f', 'lavfi', '-i', 'anoisesrc=color=pink:seed=7:amplitude=0.4:r=44100:d=3'];
    await runOk('ffmpeg', ['-v', 'error', '-y', ...src,
      '-ac', '2', '-c:a', 'libmp3lame', '-b:a', '128k', clip('mp3.flv'),
      '-ac', '2', '-c:a', 'aac', '-b:a', '96k', clip('aac.flv'),
      '-ac', '1', '-ar', '8000', '-c:a', 'pcm_alaw', clip('alaw.flv'),
      '-ac', '1', '-ar', '8000', '-c:a', 'pcm_mulaw', clip('ulaw.flv'),
      '-ac', '2', '-ar', '22050', '-c:a', 'pcm_s16le', clip('s16.flv'),
      '-ac', '2', '-ar', '48000', '-c:a', 'libopus', '-b:a', '64k', clip('opus.mka')]);
  });
  after(async () => {
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('/NAME.mp3, /NAME.aac and /NAME.wav carry the published audio (ffmpeg over RTMP)', async () => {
    // listeners first: they wait for the streams to come online
    const mp3 = packetHashes(haze.httpUrl('/live+amp3.mp3'));
    const aac = packetHashes(haze.httpUrl('/live+aaac.aac'));
    const wav = Object.fromEntries(['alaw', 'ulaw', 's16'].map((k) => [k, ffmpegOut(haze.httpUrl(`/live+a${k}.wav`), ['-f', 's16le', '-'])]));
    await sleep(300);
    const pubs = ['mp3', 'aac', 'alaw', 'ulaw', 's16'].map((k) => publishFile(clip(`${k}.flv`), haze.rtmpUrl(`live+a${k}`)));

    // while they play: what ffprobe sees
    await sleep(1000);
    const probes = await Promise.all([probe(haze.httpUrl('/live+amp3.mp3')), probe(haze.httpUrl('/live+aaac.aac')), probe(haze.httpUrl('/live+aalaw.wav')), probe(haze.httpUrl('/live+aulaw.wav')), probe(haze.httpUrl('/live+as16.wav'))]);
    assert.deepEqual(
      probes.map((s) => s.map((x) => [x.codec_name, x.sample_rate, x.channels])),
      [[['mp3', '44100', 2]], [['aac', '44100', 2]], [['pcm_alaw', '8000', 1]], [['pcm_mulaw', '8000', 1]], [['pcm_s16le', '22050', 2]]],
    );

    for (const p of pubs) assert.equal(await exited(p), 0);
    // MP3: the frames exactly as published
    const wantMp3 = await packetHashes(clip('mp3.flv'));
    assertRun(await mp3, wantMp3, Math.floor(wantMp3.length * 0.75), 'mp3');
    // AAC: what ffmpeg's own ADTS muxer makes of the published frames
    await runOk('ffmpeg', ['-v', 'error', '-y', '-i', clip('aac.flv'), '-c', 'copy', '-f', 'adts', clip('ref.aac')]);
    const wantAac = await packetHashes(clip('ref.aac'));
    assertRun(await aac, wantAac, Math.floor(wantAac.length * 0.75), 'aac');
    // WAV: decoded samples (packetisation may differ); 16-bit PCM went through Haze's
    // big-endian layout and back
    for (const [k, frameBytes] of [['alaw', 2], ['ulaw', 2], ['s16', 4]] as const) {
      const want = await ffmpegOut(clip(`${k}.flv`), ['-f', 's16le', '-']);
      assertSampleRun(await wav[k]!, want, frameBytes, want.length * 0.75, k);
    }
  });

  it('/NAME.ogg carries Opus published over Enhanced RTMP, packet for packet', async () => {
    const opusHead = await extradata(clip('opus.mka'), 'a:0');
    const audio: AudioTrack = { id: 2, type: 'audio', codec: 'opus', init: opusHead, bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };
    const packets = await filePackets(clip('opus.mka'), 'a:0', 2);
    const want = await packetHashes(clip('opus.mka'));
    assert.equal(want.length, packets.length);
    const ogg = packetHashes(haze.httpUrl('/live+opus.ogg'));
    // and the raw bytes, for the strict page reader (unbroken page sequence, granules)
    const raw = fetch(haze.httpUrl('/live+opus.ogg')).then(async (r) => Buffer.from(await r.arrayBuffer()));
    await sleep(300);
    const client = new RtmpClient({ fourCcList: ['Opus'] });
    await client.connect(haze.rtmpUrl('live+opus'));
    await client.publish();
    client.sendMedia(8, 0, sequenceHeaderBody(audio)!);
    const start = Date.now();
    let probed: Promise<ProbedAudio[]> | undefined;
    for (const p of packets) {
      const wait = start + p.timeMs - Date.now();
      if (wait > 0) await sleep(wait);
      client.sendMedia(8, p.timeMs, audioTagBody(audio, p));
      if (!probed && p.timeMs >= 1000) probed = probe(haze.httpUrl('/live+opus.ogg'));
    }
    const streams = await probed!;
    await client.close();
    assert.deepEqual(streams.map((s) => [s.codec_name, s.sample_rate, s.channels]), [['opus', '48000', 2]]);
    assertRun(await ogg, want, Math.floor(want.length * 0.75), 'opus');
    const got = readOggPackets(await raw);
    assert.ok(parseOpusHead(got[0]!.data)?.channels === 2 && got[1]!.data.toString('latin1', 0, 8) === 'OpusTags');
    const audioPackets = got.slice(2);
    const first = packets.findIndex((p) => p.data.equals(audioPackets[0]!.data));
    assert.ok(first >= 0 && audioPackets.every((p, i) => p.data.equals(packets[first + i]!.data)), 'raw Ogg: consecutive source packets');
    // one page per packet: granule = pre-skip + 48 kHz samples, 960 per 20 ms packet
    const granules = audioPackets.map((p) => p.granule);
    assert.ok(granules.every((g, i) => i === 0 || g - granules[i - 1]! === 960), 'sample-exact granules');
  });

  it('a video+audio stream serves its audio as /NAME.aac; no fitting track is 415', async () => {
    const source = path.join(mistFixtures, 'small.flv');
    const aac = packetHashes(haze.httpUrl('/live+av.aac'));
    await sleep(300);
    const pub = publishFile(source, haze.rtmpUrl('live+av'));
    try {
      await sleep(1000);
      const streams = await probe(haze.httpUrl('/live+av.aac'));
      assert.deepEqual(streams.map((s) => [s.codec_type, s.codec_name]), [['audio', 'aac']]);
      for (const ext of ['mp3', 'wav', 'ogg']) {
        const r = await fetch(haze.httpUrl(`/live+av.${ext}`));
        assert.equal(r.status, 415, ext);
        assert.match(await r.text(), new RegExp(`No track of live\\+av \\(H264, AAC\\) fits \\.${ext}`));
      }
    } finally {
      assert.equal(await exited(pub), 0);
    }
    await runOk('ffmpeg', ['-v', 'error', '-y', '-i', source, '-map', '0:a', '-c', 'copy', '-f', 'adts', clip('av.aac')]);
    const want = await packetHashes(clip('av.aac'));
    assertRun(await aac, want, Math.floor(want.length * 0.75), 'aac of a video+audio stream');
  });
});
