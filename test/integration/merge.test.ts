// `haze merge` on real files (runMerge, as the CLI calls it): sources made by ffmpeg (H.264 +
// AAC in Telugu, and a Hindi AAC overdub), converted to DTSC with convert(). Checked with
// ffprobe/ffmpeg: an appended or mixed file, written to Matroska with every track, holds the
// sources' payloads (framemd5 of -c copy) and languages; append changes no old byte but the
// moreheader value; defrag keeps the packets and orders them; bad command lines and bad files
// are exit codes 2 and 1 with TARGET untouched.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { parseFramemd5, runOk, tmpDir } from '../helpers.js';
import { probeStreams } from '../media-files.js';
import { convert } from '../../src/cli/convert.js';
import { runMerge } from '../../src/cli/merge.js';
import { openDtscFile, readDtscFileInTimeOrder } from '../../src/inputs/files/dtsc-file.js';
import { DtscFileWriter, readDtscFileHeader } from '../../src/containers/dtsc/file.js';
import { DtscFrameReader } from '../../src/containers/dtsc/packets.js';
import { DtscTimeline } from '../../src/containers/dtsc/timeline.js';
import { FORMAT_BY_EXTENSION } from '../../src/outputs/formats.js';
import type { Packet, Track } from '../../src/media/types.js';

/** Payload hashes per stream (ffmpeg framemd5 of -c copy), in stream order. */
async function hashes(file: string): Promise<string[][]> {
  const lines = parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', file, '-map', '0', '-c', 'copy', '-f', 'framemd5', '-'])).toString());
  const out: string[][] = [];
  for (const l of lines) (out[l.stream] ??= []).push(l.hash);
  return out;
}

/** A DTSC file to Matroska with every track (convert() takes one track per type). */
async function toMkv(dtsc: string, mkv: string): Promise<Track[]> {
  const w = FORMAT_BY_EXTENSION['mkv']!.format.makeWriter();
  const parts: Buffer[] = [];
  let tracks: Track[] = [];
  for await (const c of readDtscFileInTimeOrder(dtsc)) {
    if (c.tracks) {
      tracks = c.tracks;
      w.setTracks(tracks);
      parts.push(w.header(c.packets[0]?.timeMs ?? 0));
    }
    for (const p of c.packets) {
      const b = w.packet(p);
      if (b) parts.push(b);
    }
  }
  fs.writeFileSync(mkv, Buffer.concat(parts));
  return tracks;
}

/** Every frame of a DTSC file in file order. */
function fileFrames(file: string): ReturnType<DtscFrameReader['push']> {
  return new DtscFrameReader().push(fs.readFileSync(file));
}

const sig = (p: Packet): string => `${p.trackId}@${p.timeMs}+${p.offsetMs}/${p.keyframe}:${crypto.createHash('md5').update(p.data).digest('hex')}`;

describe('haze merge', { timeout: 120_000 }, () => {
  const dir = tmpDir('haze-merge-');
  const f = (name: string): string => path.join(dir, name);
  let src: { main: string[][]; hin: string[][] };

  before(async () => {
    await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x180:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '4',
      '-c:v', 'libx264', '-preset', 'veryfast', '-g', '30', '-bf', '2', '-c:a', 'aac', '-b:a', '64k', '-ac', '2', '-metadata:s:a', 'language=tel', f('main.mkv')]);
    await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=frequency=880:sample_rate=44100', '-t', '3.5', '-c:a', 'aac', '-b:a', '48k', '-ac', '1', '-metadata:s:a', 'language=hin', f('hin.mkv')]);
    await convert(f('main.mkv'), f('main.dtsc'));
    await convert(f('hin.mkv'), f('hin.dtsc'));
    src = { main: await hashes(f('main.mkv')), hin: await hashes(f('hin.mkv')) };
    assert.equal(src.main.length, 2);
    assert.ok(src.main[0]!.length > 100 && src.hin[0]!.length > 100);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('--help prints the usage', async () => {
    assert.equal(await runMerge(['--help']), 0);
  });

  it('--append adds the Hindi track at the end; old bytes stay but the moreheader value', async () => {
    fs.copyFileSync(f('main.dtsc'), f('app.dtsc'));
    const before = fs.readFileSync(f('app.dtsc'));
    // a reader that is playing the file while the append happens
    const playing = await openDtscFile(f('app.dtsc'));
    const timeline = await DtscTimeline.open([playing]);
    const early: Packet[] = [];
    for (let i = 0; i < 50; i++) early.push((await timeline.next())!.packet);

    assert.equal(await runMerge(['--append', f('app.dtsc'), f('hin.dtsc')]), 0);

    const late: Packet[] = [];
    for (let n = await timeline.next(); n; n = await timeline.next()) late.push(n.packet);
    await playing.close();
    const whole = await DtscTimeline.open([await openDtscFile(f('main.dtsc'))]);
    const want: Packet[] = [];
    for (let n = await whole.next(); n; n = await whole.next()) want.push(n.packet);
    assert.deepEqual([...early, ...late].map(sig), want.map(sig), 'the reader read the old packets on');

    const now = fs.readFileSync(f('app.dtsc'));
    assert.ok(now.length > before.length);
    const changed: number[] = [];
    for (let i = 0; i < before.length; i++) if (before[i] !== now[i]) changed.push(i);
    const firstLen = 8 + before.readUInt32BE(4);
    assert.ok(changed.length > 0 && changed.every((i) => i >= firstLen - 11 && i < firstLen - 3), `only moreheader bytes changed: ${changed.join(',')}`);
    assert.equal(fs.existsSync(f('app.dtsc.merge-lock')), false);

    const { meta, headerAt } = await readDtscFileHeader((p, n) => Promise.resolve(now.subarray(p, p + n)), now.length);
    assert.ok(headerAt > before.length);
    assert.deepEqual(meta.tracks.map((t) => [t.id, t.codec, t.lang]), [[1, 'H264', 'und'], [2, 'AAC', 'tel'], [3, 'AAC', 'hin']]);
  });

  it('the appended file, written to Matroska, has all three tracks with the sources\' payloads', async () => {
    await toMkv(f('app.dtsc'), f('app.mkv'));
    const streams = await probeStreams(f('app.mkv'));
    assert.deepEqual(streams.map((s) => s.codec_name), ['h264', 'aac', 'aac']);
    const langs = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream_tags=language', '-of', 'json', f('app.mkv')])).toString()) as { streams: { tags?: { language?: string } }[] };
    assert.deepEqual(langs.streams.slice(1).map((s) => s.tags?.language), ['tel', 'hin']);
    assert.deepEqual(await hashes(f('app.mkv')), [...src.main, ...src.hin]);
  });

  it('convert() of the defragged file gives every track', async () => {
    assert.equal(await runMerge(['--defrag', f('defrag.dtsc'), f('app.dtsc')]), 0);
    await convert(f('defrag.dtsc'), f('defrag.mp4'));
    const h = await hashes(f('defrag.mp4'));
    assert.deepEqual(h.slice(0, 2), src.main, 'video and the first audio');
    assert.deepEqual(h[2], src.hin[0], 'the appended audio');
  });

  it('convert() of an appended file carries the appended track', async () => {
    await convert(f('app.dtsc'), f('conv.mkv'));
    const h = await hashes(f('conv.mkv'));
    assert.ok(h.some((s) => s.length === src.hin[0]!.length && s.every((x, i) => x === src.hin[0]![i])));
  });

  it('--defrag: the same packets, in time order, one index header at the end', async () => {
    const frames = fileFrames(f('defrag.dtsc'));
    assert.deepEqual(frames.map((x, i) => (x.kind === 'header' ? i : -1)).filter((i) => i >= 0), [0, frames.length - 1]);
    const packets = frames.flatMap((x) => (x.kind === 'packet' ? [x.packet] : []));
    for (let i = 1; i < packets.length; i++) assert.ok(packets[i]!.timeMs >= packets[i - 1]!.timeMs, `packet ${i} goes back in time`);
    const appended = fileFrames(f('app.dtsc')).flatMap((x) => (x.kind === 'packet' ? [x.packet] : []));
    assert.deepEqual(packets.map(sig).sort(), appended.map(sig).sort());
    // the appended file's packets are not in time order in the file: defrag had work to do
    assert.ok(appended.some((p, i) => i > 0 && p.timeMs < appended[i - 1]!.timeMs));
    await toMkv(f('defrag.dtsc'), f('defrag.mkv'));
    assert.deepEqual(await hashes(f('defrag.mkv')), await hashes(f('app.mkv')));
    // in place
    fs.copyFileSync(f('app.dtsc'), f('inplace.dtsc'));
    assert.equal(await runMerge(['--defrag', f('inplace.dtsc')]), 0);
    assert.ok(fs.readFileSync(f('inplace.dtsc')).equals(fs.readFileSync(f('defrag.dtsc'))));
    assert.equal(fs.existsSync(f('inplace.dtsc.part')), false);
  });

  it('--mix: all tracks, ids made unique, packets interleaved by time, payloads kept', async () => {
    const inputs = [fs.readFileSync(f('main.dtsc')), fs.readFileSync(f('hin.dtsc'))];
    assert.equal(await runMerge(['--mix', f('mix.dtsc'), f('main.dtsc'), f('hin.dtsc'), f('hin2.dtsc')]), 1, 'a missing input');
    fs.copyFileSync(f('hin.dtsc'), f('hin2.dtsc'));
    assert.equal(await runMerge(['--mix', f('mix.dtsc'), f('main.dtsc'), f('hin.dtsc'), f('hin2.dtsc')]), 0);
    assert.ok(fs.readFileSync(f('main.dtsc')).equals(inputs[0]!) && fs.readFileSync(f('hin.dtsc')).equals(inputs[1]!), 'inputs untouched');
    const mix = fs.readFileSync(f('mix.dtsc'));
    const { meta } = await readDtscFileHeader((p, n) => Promise.resolve(mix.subarray(p, p + n)), mix.length);
    assert.deepEqual(meta.tracks.map((t) => [t.id, t.lang]), [[1, 'und'], [2, 'tel'], [3, 'hin'], [4, 'hin']]);
    const packets = fileFrames(f('mix.dtsc')).flatMap((x) => (x.kind === 'packet' ? [x.packet] : []));
    for (let i = 1; i < packets.length; i++) assert.ok(packets[i]!.timeMs >= packets[i - 1]!.timeMs, `packet ${i} goes back in time`);
    await toMkv(f('mix.dtsc'), f('mix.mkv'));
    assert.deepEqual((await probeStreams(f('mix.mkv'))).map((s) => s.codec_name), ['h264', 'aac', 'aac', 'aac']);
    assert.deepEqual(await hashes(f('mix.mkv')), [...src.main, ...src.hin, ...src.hin]);
  });

  it('--append --tracks picks tracks; ids already taken get new ones', async () => {
    fs.copyFileSync(f('main.dtsc'), f('pick.dtsc'));
    assert.equal(await runMerge(['--append', f('pick.dtsc'), f('mix.dtsc'), '--tracks', '2,3']), 0);
    const b = fs.readFileSync(f('pick.dtsc'));
    const { meta } = await readDtscFileHeader((p, n) => Promise.resolve(b.subarray(p, p + n)), b.length);
    assert.deepEqual(meta.tracks.map((t) => [t.id, t.lang]), [[1, 'und'], [2, 'tel'], [3, 'tel'], [4, 'hin']]);
    // and appending again to an appended file works (the chain moves on)
    assert.equal(await runMerge(['--append', f('pick.dtsc'), f('hin.dtsc')]), 0);
    const c = fs.readFileSync(f('pick.dtsc'));
    const again = await readDtscFileHeader((p, n) => Promise.resolve(c.subarray(p, p + n)), c.length);
    assert.deepEqual(again.meta.tracks.map((t) => t.id), [1, 2, 3, 4, 5]);
    await toMkv(f('pick.dtsc'), f('pick.mkv'));
    assert.deepEqual(await hashes(f('pick.mkv')), [...src.main, src.main[1]!, ...src.hin, ...src.hin]);
  });

  it('bad command lines exit 2, bad files exit 1, and TARGET stays as it was', async () => {
    fs.copyFileSync(f('main.dtsc'), f('t.dtsc'));
    const target = fs.readFileSync(f('t.dtsc'));
    const untouched = (): void => assert.ok(fs.readFileSync(f('t.dtsc')).equals(target), 'TARGET untouched');
    for (const args of [
      [],
      ['--append', f('t.dtsc')],
      ['--append', '--mix', f('t.dtsc'), f('hin.dtsc')],
      ['--append', f('t.dtsc'), f('t.dtsc')],
      ['--append', f('t.dtsc'), path.relative(process.cwd(), f('t.dtsc'))],
      ['--mix', f('t.dtsc'), f('t.dtsc'), f('hin.dtsc')],
      ['--mix', f('x.dtsc'), f('hin.dtsc'), '--tracks', '1'],
      ['--append', f('t.dtsc'), f('hin.dtsc'), '--tracks', 'a'],
      ['--append', f('t.dtsc'), f('hin.mkv')],
      ['--bogus', f('t.dtsc')],
    ]) {
      assert.equal(await runMerge(args), 2, args.join(' '));
      untouched();
    }
    // a file that is not DTSC, a missing file, a track that is not there
    fs.copyFileSync(f('hin.mkv'), f('notdtsc.dtsc'));
    for (const args of [
      ['--append', f('t.dtsc'), f('notdtsc.dtsc')],
      ['--append', f('t.dtsc'), f('missing.dtsc')],
      ['--append', f('missing.dtsc'), f('hin.dtsc')],
      ['--append', f('notdtsc.dtsc'), f('hin.dtsc')],
      ['--append', f('t.dtsc'), f('hin.dtsc'), '--tracks', '9'],
    ]) {
      assert.equal(await runMerge(args), 1, args.join(' '));
      untouched();
    }
    assert.equal(fs.existsSync(f('missing.dtsc')), false);
    // a TARGET still being written (first header only, moreheader 0) and one whose append died
    // before its patch (bytes after the newest header) are refused
    const w = new DtscFileWriter({ tracks: [{ id: 1, type: 'audio', codec: 'AAC', init: Buffer.from('1190', 'hex'), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 }] });
    const growing = Buffer.concat([w.header(), w.packet({ trackId: 1, timeMs: 0, offsetMs: 0, keyframe: true, data: Buffer.from('abcd') })]);
    fs.writeFileSync(f('growing.dtsc'), growing);
    assert.equal(await runMerge(['--append', f('growing.dtsc'), f('hin.dtsc')]), 1);
    assert.ok(fs.readFileSync(f('growing.dtsc')).equals(growing));
    fs.writeFileSync(f('tail.dtsc'), Buffer.concat([target, fs.readFileSync(f('hin.dtsc')).subarray(0, 300)]));
    assert.equal(await runMerge(['--append', f('tail.dtsc'), f('hin.dtsc')]), 1);
    // a second merge while one holds the lock
    fs.writeFileSync(f('t.dtsc.merge-lock'), '');
    assert.equal(await runMerge(['--append', f('t.dtsc'), f('hin.dtsc')]), 1);
    fs.rmSync(f('t.dtsc.merge-lock'));
    untouched();
  });
});
