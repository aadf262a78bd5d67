// TsDemuxer on MPEG-TS files made by ffmpeg: per stream, the packet count, decode and
// presentation times (within 1 ms of ffprobe's 90 kHz values), keyframe flags, codec parameters,
// and payload hashes against ffmpeg's own demuxing (framemd5 of `-c copy`: video via an MP4 remux,
// which stores the same 4-byte length-prefixed NAL units; AAC through aac_adtstoasc; MP3, AC-3
// and Opus frames as ffmpeg's parsers split them).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseFramemd5, runOk, tmpDir } from '../helpers.js';
import { filePackets, probePackets } from '../media-files.js';
import { joinNalUnits, splitNalUnits } from '../../src/media/nal-units.js';
import { TsDemuxer, type TsDemuxPacket } from '../../src/containers/ts/demux.js';
import type { Track } from '../../src/media/types.js';

const dir = tmpDir('haze-ts-demux-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const VIDEO_IN = ['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25'];
const AUDIO_IN = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];

async function make(name: string, args: string[]): Promise<string> {
  const file = path.join(dir, name);
  await runOk('ffmpeg', ['-v', 'error', '-y', ...VIDEO_IN, ...AUDIO_IN, '-t', '2', ...args, '-f', 'mpegts', file]);
  return file;
}

function demuxFile(file: string, chunkSize?: number): { tracks: Track[]; packets: TsDemuxPacket[]; warnings: string[] } {
  const buf = fs.readFileSync(file);
  const d = new TsDemuxer();
  let tracks: Track[] = [];
  const packets: TsDemuxPacket[] = [];
  const warnings: string[] = [];
  const take = (r: ReturnType<TsDemuxer['push']>): void => {
    if (r.tracks) tracks = r.tracks;
    packets.push(...r.packets);
    warnings.push(...r.warnings);
  };
  const step = chunkSize ?? buf.length;
  for (let at = 0; at < buf.length; at += step) take(d.push(buf.subarray(at, at + step)));
  take(d.end());
  return { tracks, packets, warnings };
}

interface StreamInfo {
  index: number;
  id: string;
  codec_name: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
}

async function streams(file: string): Promise<StreamInfo[]> {
  const out = await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=index,id,codec_name,width,height,sample_rate,channels', '-of', 'json', file]);
  return (JSON.parse(out.toString()) as { streams: StreamInfo[] }).streams;
}

const md5 = (b: Buffer): string => crypto.createHash('md5').update(b).digest('hex');

function trimZeros(nal: Buffer): Buffer {
  let end = nal.length;
  while (end > 0 && nal[end - 1] === 0) end--;
  return nal.subarray(0, end);
}

async function md5s(file: string, args: string[]): Promise<string[]> {
  const out = await runOk('ffmpeg', ['-v', 'error', '-i', file, ...args, '-f', 'framemd5', '-']);
  return parseFramemd5(out.toString()).map((f) => f.hash);
}

/**
 * ffmpeg's payload hashes of one stream, in a form comparable with our packet data. For video,
 * ffmpeg keeps the trailing_zero_8bits at the end of a PES in the last NAL unit (x265 output has
 * them); a NAL unit never ends in 0x00 (H.265 §7.4.2.4.4, H.264 §7.4.1), so the demuxer drops
 * them and the reference is trimmed the same way before hashing.
 */
async function referenceHashes(file: string, s: StreamInfo): Promise<string[]> {
  if (s.codec_name === 'h264' || s.codec_name === 'hevc') {
    const mp4 = path.join(dir, `${path.basename(file)}.${s.index}.mp4`);
    await runOk('ffmpeg', ['-v', 'error', '-y', '-i', file, '-map', `0:${s.index}`, '-c', 'copy', mp4]);
    const ref = await filePackets(mp4, 'v:0', 0);
    return ref.map((p) => md5(joinNalUnits(splitNalUnits(p.data, 4).map((n) => trimZeros(n)))));
  }
  const bsf = s.codec_name === 'aac' ? ['-bsf:a', 'aac_adtstoasc'] : [];
  return md5s(file, ['-map', `0:${s.index}`, '-c', 'copy', ...bsf]);
}


async function check(file: string, expect: string[]): Promise<void> {
  const { tracks, packets, warnings } = demuxFile(file);
  assert.deepEqual(warnings, []);
  const info = await streams(file);
  assert.deepEqual(info.map((s) => s.codec_name), expect);
  assert.deepEqual(tracks.map((t) => t.id), info.map((s) => Number(s.id)), 'track ids are the PIDs, in PMT order');
  const probed = await probePackets(file);
  for (const s of info) {
    const t = tracks.find((x) => x.id === Number(s.id))!;
    if (t.type === 'video') {
      assert.equal(t.width, s.width);
      assert.equal(t.height, s.height);
    } else if (t.type === 'audio') {
      assert.equal(t.rate, Number(s.sample_rate), `${s.codec_name} rate`);
      assert.equal(t.channels, s.channels, `${s.codec_name} channels`);
    }
    const mine = packets.filter((p) => p.trackId === t.id);
    const ref = probed.filter((p) => p.stream_index === s.index);
    assert.equal(mine.length, ref.length, `${s.codec_name}: packet count`);
    for (let i = 0; i < ref.length; i++) {
      const r = ref[i]!;
      const m = mine[i]!;
      const dts = (r.dts ?? r.pts)! / 90;
      const pts = (r.pts ?? r.dts)! / 90;
      assert.ok(Math.abs(m.timeMs - dts) <= 1, `${s.codec_name} ${i}: dts ${m.timeMs} vs ${dts}`);
      assert.ok(Math.abs(m.timeMs + m.offsetMs - pts) <= 1, `${s.codec_name} ${i}: pts ${m.timeMs + m.offsetMs} vs ${pts}`);
      assert.equal(m.keyframe, r.flags.startsWith('K'), `${s.codec_name} ${i}: keyframe`);
    }
    assert.deepEqual(mine.map((p) => md5(p.data)), await referenceHashes(file, s), `${s.codec_name}: payloads`);
  }
  // Pushed in odd-sized chunks, the same packets come out.
  const chunked = demuxFile(file, 1000);
  assert.deepEqual(chunked.tracks, tracks);
  assert.equal(chunked.packets.length, packets.length);
  for (let i = 0; i < packets.length; i++) {
    const a = packets[i]!;
    const b = chunked.packets[i]!;
    assert.ok(a.trackId === b.trackId && a.timeMs === b.timeMs && a.offsetMs === b.offsetMs && a.pos === b.pos && a.data.equals(b.data), `chunked packet ${i}`);
  }
}

test('H.264 with B-frames + AAC', async () => {
  const file = await make('h264-aac.ts', ['-c:v', 'libx264', '-bf', '2', '-g', '25', '-c:a', 'aac', '-ac', '2']);
  await check(file, ['h264', 'aac']);
});

test('HEVC + MP3', async () => {
  const file = await make('hevc-mp3.ts', ['-c:v', 'libx265', '-x265-params', 'log-level=error:bframes=2', '-g', '25', '-c:a', 'libmp3lame', '-ac', '2']);
  await check(file, ['hevc', 'mp3']);
});

test('H.264 + AC-3 (5.1)', async () => {
  const file = await make('h264-ac3.ts', ['-c:v', 'libx264', '-c:a', 'ac3', '-ac', '6']);
  await check(file, ['h264', 'ac3']);
});

test('H.264 + Opus', async () => {
  const file = await make('h264-opus.ts', ['-c:v', 'libx264', '-c:a', 'libopus', '-ac', '2']);
  await check(file, ['h264', 'opus']);
});

test('MPEG-2 audio (MP3 at 24 kHz) and HE-AAC-free mono AAC at 22.05 kHz', async () => {
  const file = path.join(dir, 'audio-only.ts');
  await runOk('ffmpeg', ['-v', 'error', '-y', ...AUDIO_IN, ...AUDIO_IN, '-t', '2', '-map', '0', '-map', '1', '-c:a:0', 'libmp3lame', '-ar:a:0', '24000', '-c:a:1', 'aac', '-ar:a:1', '22050', '-ac:a:1', '1', '-f', 'mpegts', file]);
  await check(file, ['mp3', 'aac']);
});
