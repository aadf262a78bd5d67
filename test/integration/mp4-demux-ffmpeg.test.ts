// MP4/MOV reader against ffmpeg-made files: every sample's dts/pts (within 1 ms), keyframe flag
// and size must match ffprobe -show_packets, payloads must hash like ffmpeg's `-c copy -f framemd5`
// (PCM: the concatenated samples equal ffmpeg's decoded big-endian PCM), and mutated or truncated
// real files give a result or a HazeError.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { parseFramemd5, runOk, tmpDir } from '../helpers.js';
import { probePackets } from '../media-files.js';
import { bufferByteSource, fileByteSource, openMp4, readSample, type Mp4Index } from '../../src/containers/mp4/demux.js';
import { HazeError } from '../../src/util/errors.js';

const dir = tmpDir('haze-mp4-demux-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const VIDEO_IN = ['-f', 'lavfi', '-i', 'testsrc=size=320x180:rate=25:duration=2'];
const AUDIO_IN = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=2'];
const X264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '2', '-g', '25', '-pix_fmt', 'yuv420p'];

async function make(name: string, args: string[]): Promise<string> {
  const file = path.join(dir, name);
  await runOk('ffmpeg', ['-v', 'error', '-y', ...args, file], { timeoutMs: 120_000 });
  return file;
}

async function md5s(file: string, stream: number): Promise<string[]> {
  const out = await runOk('ffmpeg', ['-v', 'error', '-i', file, '-map', `0:${stream}`, '-c', 'copy', '-f', 'framemd5', '-']);
  return parseFramemd5(out.toString()).map((f) => f.hash);
}

interface Expect {
  codecs: string[];
  /** Streams compared packet by packet (default all; ffmpeg packs PCM its own way). */
  streams?: number[];
}

async function check(file: string, expect: Expect): Promise<Mp4Index> {
  const src = await fileByteSource(file);
  try {
    const idx = await openMp4(src);
    assert.deepEqual(idx.warnings, [], `${path.basename(file)}: no warnings`);
    assert.deepEqual(
      idx.tracks.map((t) => t.codec),
      expect.codecs,
    );
    const probed = await probePackets(file);
    for (const s of expect.streams ?? idx.tracks.map((_, i) => i)) {
      const track = idx.tracks[s]!;
      const ours = idx.samples.filter((x) => x.trackId === track.id);
      const theirs = probed.filter((p) => p.stream_index === s);
      assert.equal(ours.length, theirs.length, `${path.basename(file)} stream ${s}: packet count`);
      for (let i = 0; i < ours.length; i++) {
        const o = ours[i]!;
        const t = theirs[i]!;
        const what = `${path.basename(file)} stream ${s} packet ${i}`;
        const dtsMs = Number(t.dts_time) * 1000;
        const ptsMs = Number(t.pts_time) * 1000;
        assert.ok(Math.abs(o.timeMs - dtsMs) <= 1, `${what}: dts ${o.timeMs} vs ${dtsMs}`);
        assert.ok(Math.abs(o.timeMs + o.offsetMs - ptsMs) <= 1, `${what}: pts ${o.timeMs + o.offsetMs} vs ${ptsMs}`);
        assert.equal(o.keyframe, t.flags.startsWith('K'), `${what}: keyframe`);
        assert.equal(o.size, Number(t.size), `${what}: size`);
      }
      const hashes = await md5s(file, s);
      const got: string[] = [];
      for (const ref of ours) got.push(crypto.createHash('md5').update((await readSample(src, ref)).data).digest('hex'));
      assert.deepEqual(got, hashes, `${path.basename(file)} stream ${s}: payload hashes`);
    }
    // Decode order across tracks.
    for (let i = 1; i < idx.samples.length; i++) assert.ok(idx.samples[i]!.timeMs >= idx.samples[i - 1]!.timeMs);
    return idx;
  } finally {
    await src.close();
  }
}

let h264Made: Promise<string> | undefined;
let fragMade: Promise<string> | undefined;
/** The two base files, made once (the fuzz test also runs alone under --test-name-pattern). */
const h264Mp4 = (): Promise<string> => (h264Made ??= make('end.mp4', [...VIDEO_IN, ...AUDIO_IN, ...X264, '-c:a', 'aac', '-b:a', '64k']));
const fragMp4 = (): Promise<string> => (fragMade ??= make('frag.mp4', [...VIDEO_IN, ...AUDIO_IN, ...X264, '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov+default_base_moof']));

test('progressive H.264 (B-frames) + AAC, moov at the end and at the start', async () => {
  const h264File = await h264Mp4();
  const idx = await check(h264File, { codecs: ['H264', 'AAC'] });
  const v = idx.tracks[0]!;
  assert.ok(v.type === 'video' && v.width === 320 && v.height === 180 && v.fpks === 25000);
  const a = idx.tracks[1]!;
  assert.ok(a.type === 'audio' && a.rate === 48000 && a.channels === 1);
  // ffmpeg's edit list for B-frames: pts starts at 0, dts before it.
  const first = idx.samples.find((s) => s.trackId === v.id)!;
  assert.equal(first.timeMs + first.offsetMs, 0);
  assert.ok(first.timeMs < 0);
  assert.ok(Math.abs(idx.durationMs - 2000) <= 50, `duration ${idx.durationMs}`);
  const start = await make('start.mp4', ['-i', h264File, '-c', 'copy', '-movflags', '+faststart']);
  const idx2 = await check(start, { codecs: ['H264', 'AAC'] });
  assert.deepEqual(
    idx2.samples.map((s) => [s.trackId, s.timeMs, s.offsetMs, s.size, s.keyframe]),
    idx.samples.map((s) => [s.trackId, s.timeMs, s.offsetMs, s.size, s.keyframe]),
  );
});

test('fragmented MP4 from ffmpeg (default-base-is-moof and implicit base offsets)', async () => {
  const fragFile = await fragMp4();
  const idx = await check(fragFile, { codecs: ['H264', 'AAC'] });
  assert.ok(idx.fragmented);
  const plain = await make('frag-plain.mp4', [...VIDEO_IN, ...AUDIO_IN, ...X264, '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov', '-frag_duration', '500000']);
  assert.ok((await check(plain, { codecs: ['H264', 'AAC'] })).fragmented);
});

test('HEVC + MP3, VP9 + Opus, AV1 + AC-3 in MP4', async () => {
  const hevc = await make('hevc.mp4', [...VIDEO_IN, ...AUDIO_IN, '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'log-level=error:bframes=2', '-tag:v', 'hvc1', '-c:a', 'libmp3lame']);
  await check(hevc, { codecs: ['HEVC', 'MP3'] });
  const vp9 = await make('vp9.mp4', [...VIDEO_IN, ...AUDIO_IN, '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-c:a', 'libopus']);
  const i2 = await check(vp9, { codecs: ['VP9', 'opus'] });
  const opus = i2.tracks[1]!;
  assert.equal(opus.init.toString('latin1', 0, 8), 'OpusHead');
  const av1 = await make('av1.mp4', [...VIDEO_IN, ...AUDIO_IN, '-c:v', 'libsvtav1', '-preset', '12', '-c:a', 'ac3']);
  const i3 = await check(av1, { codecs: ['AV1', 'AC3'] });
  assert.ok(i3.tracks[1]!.type === 'audio' && i3.tracks[1]!.rate === 48000 && i3.tracks[1]!.channels === 1);
});

test("MOV ('qt  ' brand) with H.264 + little-endian PCM, and A-law", async () => {
  for (const [name, codec, want] of [
    ['sowt.mov', 'pcm_s16le', 'PCM'],
    ['alaw.mov', 'pcm_alaw', 'ALAW'],
  ] as const) {
    const file = await make(name, [...VIDEO_IN, ...AUDIO_IN, ...X264, '-c:a', codec]);
    const src = await fileByteSource(file);
    try {
      const idx = await openMp4(src);
      assert.equal(idx.brand, 'qt  ');
      assert.deepEqual(idx.warnings, []);
      assert.deepEqual(
        idx.tracks.map((t) => t.codec),
        ['H264', want],
      );
      const audio = idx.samples.filter((s) => s.trackId === idx.tracks[1]!.id);
      const parts: Buffer[] = [];
      for (const s of audio) parts.push((await readSample(src, s)).data);
      const pcm = await runOk('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:1', '-f', want === 'PCM' ? 's16be' : 'alaw', '-c:a', want === 'PCM' ? 'pcm_s16be' : 'copy', '-']);
      assert.ok(Buffer.concat(parts).equals(pcm), `${name}: samples equal ffmpeg's PCM`);
      // The last chunk ends at 2 s: 48 mono frames per ms, 2 or 1 bytes per frame.
      const lastMs = parts[parts.length - 1]!.length / (want === 'PCM' ? 2 : 1) / 48;
      assert.ok(Math.abs(audio[audio.length - 1]!.timeMs + lastMs - 2000) <= 2, `${name}: audio ends at 2 s`);
    } finally {
      await src.close();
    }
    await check(file, { codecs: ['H264', want], streams: [0] });
  }
});

test('fuzz: mutated and truncated ffmpeg files give a result or a HazeError', async () => {
  const files = [fs.readFileSync(await h264Mp4()), fs.readFileSync(await fragMp4())];
  const attempt = async (buf: Buffer): Promise<void> => {
    const src = bufferByteSource(buf);
    try {
      const idx = await openMp4(src);
      for (const s of idx.samples.slice(0, 20)) await readSample(src, s);
    } catch (e) {
      if (!(e instanceof HazeError)) throw e;
    }
  };
  const started = Date.now();
  await fc.assert(
    fc.asyncProperty(fc.nat(1), fc.array(fc.tuple(fc.boolean(), fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 16 }), async (which, muts) => {
      const f = Buffer.from(files[which]!);
      // Half of the mutations land in the moov and after it, where the tables are.
      const moovAt = Math.max(0, f.indexOf('moov') - 4);
      for (const [inMoov, at, v] of muts) f[inMoov ? moovAt + (at % (f.length - moovAt)) : at % f.length] = v;
      await attempt(f);
    }),
    { numRuns: 300 },
  );
  await fc.assert(
    fc.asyncProperty(fc.nat(1), fc.nat(), async (which, cut) => attempt(files[which]!.subarray(0, cut % files[which]!.length))),
    { numRuns: 200 },
  );
  assert.ok(Date.now() - started < 20_000);
});
