// Round trips through DTSC for every container Haze reads (issue 4): an ffmpeg-made file of
// each kind, `haze convert` to DTSC and back to its own container, gives the source's packets
// (framemd5 of the payloads, times within 1 ms, per ffprobe). Where a container frames a codec
// its own way on output (H.264 in MPEG-TS as Annex B with the muxer's parameter sets) the
// video is compared decoded; WAV, which has no packets of its own, by the md5 of its samples.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseFramemd5, repoRoot, run, runOk, tmpDir } from '../helpers.js';
import { probePackets } from '../media-files.js';

interface Packets {
  hashes: string[];
  ptsMs: number[];
}

async function packets(file: string, stream: 'v' | 'a', decode = false): Promise<Packets> {
  const out = await runOk('ffmpeg', ['-v', 'error', '-i', file, '-map', `0:${stream}`, ...(decode ? [] : ['-c', 'copy']), '-f', 'framemd5', '-']);
  const hashes = parseFramemd5(out.toString()).map((f) => f.hash);
  if (decode) return { hashes, ptsMs: [] };
  const probed = await probePackets(file, stream);
  return { hashes, ptsMs: probed.map((p) => Number(p.pts_time) * 1000) };
}

async function sampleMd5(file: string): Promise<string> {
  return (await runOk('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:a', '-f', 'md5', '-'])).toString().trim();
}

const LAVFI_VIDEO = ['-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=25'];
const LAVFI_AUDIO = ['-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000'];
const H264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '25'];

/**
 * The same presentation times within 1 ms, counted from the first packet: where a timeline
 * starts is the container's business (ffmpeg's MP4 edit list, which Haze does not apply, as
 * MistServer reads MP4; Matroska/WebM's codec delay and B-frame start; encoder priming).
 */
function sameTiming(got: readonly number[], want: readonly number[], what: string): void {
  got.forEach((t, i) => assert.ok(Math.abs(t - got[0]! - (want[i]! - want[0]!)) <= 1, `${what} packet ${i} at +${t - got[0]!} ms, source +${want[i]! - want[0]!} ms`));
}

/** Source files: ffmpeg arguments after the inputs, what to compare. */
const CASES: Array<{ ext: string; args: string[]; video?: 'copy' | 'decode'; audio: 'copy' | 'samples' }> = [
  { ext: 'mp4', args: [...H264, '-c:a', 'aac'], video: 'copy', audio: 'copy' },
  { ext: 'mkv', args: [...H264, '-c:a', 'aac'], video: 'copy', audio: 'copy' },
  { ext: 'webm', args: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '300k', '-g', '25', '-c:a', 'libopus'], video: 'copy', audio: 'copy' },
  { ext: 'ts', args: [...H264, '-c:a', 'aac'], video: 'decode', audio: 'copy' },
  { ext: 'mp3', args: ['-c:a', 'libmp3lame', '-b:a', '96k'], audio: 'copy' },
  { ext: 'aac', args: ['-c:a', 'aac', '-b:a', '96k'], audio: 'copy' },
  { ext: 'wav', args: ['-c:a', 'pcm_s16le'], audio: 'samples' },
];

describe('haze convert: every readable container through DTSC and back', { timeout: 180_000 }, () => {
  const dir = tmpDir('haze-roundtrip-');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  before(() => fs.mkdirSync(dir, { recursive: true }));

  for (const c of CASES) {
    it(`${c.ext} -> dtsc -> ${c.ext}`, async () => {
      const src = path.join(dir, `src.${c.ext}`);
      const dtsc = path.join(dir, `${c.ext}.dtsc`);
      const back = path.join(dir, `back.${c.ext}`);
      await runOk('ffmpeg', ['-v', 'error', ...(c.video ? LAVFI_VIDEO : []), ...LAVFI_AUDIO, '-t', '3', ...c.args, src]);
      for (const [from, to] of [[src, dtsc], [dtsc, back]] as const) {
        const r = await run(process.execPath, [path.join(repoRoot, 'bin/haze'), 'convert', from, to], { timeoutMs: 30_000 });
        assert.equal(r.code, 0, `${from} -> ${to}: ${r.stderr.toString()}`);
      }
      if (c.video) {
        const [want, got] = await Promise.all([packets(src, 'v', c.video === 'decode'), packets(back, 'v', c.video === 'decode')]);
        assert.deepEqual(got.hashes, want.hashes, `${c.ext}: video ${c.video === 'decode' ? 'frames' : 'payloads'}`);
        sameTiming(got.ptsMs, want.ptsMs, `${c.ext}: video`);
      }
      if (c.audio === 'samples') {
        assert.equal(await sampleMd5(back), await sampleMd5(src), `${c.ext}: the same samples`);
        return;
      }
      const [want, got] = await Promise.all([packets(src, 'a'), packets(back, 'a')]);
      assert.deepEqual(got.hashes, want.hashes, `${c.ext}: audio payloads`);
      sameTiming(got.ptsMs, want.ptsMs, `${c.ext}: audio`);
    });
  }
});
