// `haze convert` as a user runs it (the CLI, real files), checked with ffmpeg/ffprobe: FLV to
// DTSC and back to FLV, MKV and MP4 give the source's payloads (framemd5 of -c copy) at its
// timestamps (within 1 ms); DTSC and MP4 to TS, and TS on to MKV and FLV, decode to the source's
// frames; a DTSC file reads back with its index; bad input is a clear error.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, parseFramemd5, repoRoot, run, runOk, tmpDir } from '../helpers.js';
import { probePackets } from '../media-files.js';
import { readDtscFileHeader } from '../../src/containers/dtsc/file.js';

const FLV = path.join(mistFixtures, 'small.flv');
const MP4 = path.join(mistFixtures, 'small.mp4');

function haze(...args: string[]): ReturnType<typeof run> {
  return run(process.execPath, [path.join(repoRoot, 'bin/haze'), ...args], { timeoutMs: 30_000 });
}

/** A stream's packets: payload hashes (ffmpeg framemd5) and presentation times in ms (ffprobe). */
interface Copied {
  hash: string;
  ptsMs: number;
}

async function hashes(file: string, stream: 'v' | 'a', copy: boolean): Promise<string[]> {
  return parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', file, '-map', `0:${stream}`, ...(copy ? ['-c', 'copy'] : []), '-f', 'framemd5', '-'])).toString()).map((f) => f.hash);
}

async function frames(file: string, stream: 'v' | 'a'): Promise<Copied[]> {
  const [h, probed] = await Promise.all([hashes(file, stream, true), probePackets(file, stream)]);
  assert.equal(h.length, probed.length, file);
  return h.map((hash, i) => ({ hash, ptsMs: Number(probed[i]!.pts_time) * 1000 }));
}

describe('haze convert', { timeout: 120_000 }, () => {
  const dir = tmpDir('haze-convert-');
  const out = (name: string): string => path.join(dir, name);
  let source: { v: Copied[]; a: Copied[]; decoded: string[] };
  before(async () => {
    source = { v: await frames(FLV, 'v'), a: await frames(FLV, 'a'), decoded: await hashes(FLV, 'v', false) };
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Same payloads in order, and the same timestamps (ms) within 1 ms. */
  function samePackets(got: Copied[], want: Copied[], what: string): void {
    assert.equal(got.length, want.length, `${what}: packet count`);
    got.forEach((g, i) => {
      assert.equal(g.hash, want[i]!.hash, `${what}: payload ${i}`);
      assert.ok(Math.abs(g.ptsMs - want[i]!.ptsMs) <= 1, `${what}: packet ${i} at ${g.ptsMs} ms, source ${want[i]!.ptsMs} ms`);
    });
  }

  it('FLV -> DTSC: a DTSC file with the index at its end', async () => {
    const r = await haze('convert', FLV, out('a.dtsc'));
    assert.equal(r.code, 0, r.stderr.toString());
    assert.match(r.stderr.toString(), /309 packets of H264 \+ AAC/);
    const file = fs.readFileSync(out('a.dtsc'));
    const { meta, headerAt } = await readDtscFileHeader(async (p, n) => file.subarray(p, p + n), file.length);
    assert.ok(headerAt > 0);
    assert.deepEqual(meta.tracks.map((t) => [t.codec, t.tables?.keys.length]), [['H264', 4], ['AAC', 2]]);
  });

  for (const ext of ['flv', 'mkv', 'mp4']) {
    it(`DTSC -> ${ext.toUpperCase()}: the source's video and audio packets`, async () => {
      const r = await haze('convert', out('a.dtsc'), out(`b.${ext}`));
      assert.equal(r.code, 0, r.stderr.toString());
      samePackets(await frames(out(`b.${ext}`), 'v'), source.v, `${ext} video`);
      samePackets(await frames(out(`b.${ext}`), 'a'), source.a, `${ext} audio`);
    });
  }

  it('DTSC -> TS and MP4 -> TS decode to the source frames; TS -> MKV -> FLV keeps every payload', async () => {
    for (const [from, to] of [[out('a.dtsc'), out('b.ts')], [MP4, out('c.ts')], [out('b.ts'), out('d.mkv')], [out('d.mkv'), out('e.flv')]] as const) {
      const r = await haze('convert', from, to);
      assert.equal(r.code, 0, `${from} -> ${to}: ${r.stderr.toString()}`);
    }
    // TS carries the access unit delimiters and parameter sets its muxer adds: through TS the
    // video is compared decoded, the audio payload for payload
    for (const f of ['b.ts', 'c.ts', 'd.mkv', 'e.flv']) assert.deepEqual(await hashes(out(f), 'v', false), source.decoded, f);
    const video = await frames(out('e.flv'), 'v');
    assert.deepEqual(video.map((f) => Math.round(f.ptsMs)), source.v.map((f) => Math.round(f.ptsMs)), 'ts -> mkv -> flv video times');
    samePackets(await frames(out('e.flv'), 'a'), source.a, 'ts -> mkv -> flv audio');
  });

  it('refuses what it cannot read or write, and leaves no partial output', async () => {
    const junk = out('junk.ts');
    fs.writeFileSync(junk, Buffer.alloc(100_000, 7));
    const bad = await haze('convert', junk, out('x.mkv'));
    assert.equal(bad.code, 1);
    assert.match(bad.stderr.toString(), /haze convert: .*junk\.ts|sync/i);
    assert.ok(!fs.existsSync(out('x.mkv')) && !fs.existsSync(out('x.mkv.part')));
    assert.equal((await haze('convert', FLV, out('x.xyz'))).code, 1);
    assert.equal((await haze('convert', out('x.abc'), out('x.flv'))).code, 1);
    assert.equal((await haze('convert', FLV)).code, 2);
  });
});
