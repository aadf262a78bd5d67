// DTSC header <-> stream meta (reference/mistserver.md §2.4, §2.5, §1.10, Appendix A.3), checked
// byte for byte against the .dtsh files MistServer 3.10 wrote (shared/fixtures/mistserver).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures } from '../helpers.js';
import { HazeError } from '../../src/util/errors.js';
import { getObject } from '../../src/containers/dtsc/dtmi.js';
import { decodeDtscHeaderObject, DtscFrameReader } from '../../src/containers/dtsc/packets.js';
import {
  buildDtscHeader,
  dtscTrackIdentifier,
  formatCppDouble,
  readDtscHeader,
  writeDtscHeader,
  type DtscStreamMeta,
  type DtscTrack,
} from '../../src/containers/dtsc/header.js';

const mp4Dtsh = fs.readFileSync(path.join(mistFixtures, 'small.mp4.dtsh'));
const flvDtsh = fs.readFileSync(path.join(mistFixtures, 'small.flv.dtsh'));

function byType(meta: DtscStreamMeta, type: string): DtscTrack {
  const t = meta.tracks.find((x) => x.type === type);
  assert.ok(t, `a ${type} track`);
  return t;
}

test('small.mp4.dtsh: tracks, index tables, byte-identical re-encode', () => {
  const meta = readDtscHeader(mp4Dtsh);
  assert.equal(meta.vod, true);
  assert.equal(meta.live, false);
  assert.equal(meta.version, 4);
  assert.equal(meta.unixzeroMs, undefined);
  assert.equal(meta.tracks.length, 2);

  const v = byType(meta, 'video');
  assert.ok(v.type === 'video');
  assert.equal(v.codec, 'H264');
  assert.equal(v.width, 320);
  assert.equal(v.height, 180);
  assert.equal(v.fpks, 30000);
  assert.equal(v.id, 1);
  assert.equal(v.idx, 0);
  assert.equal(v.init[0], 1, 'avcC configurationVersion');
  assert.equal(v.firstMs, 0);
  assert.equal(v.lastMs, 3967);
  // 4 s at 30 fps, GOP 30: 4 keys of 30 frames at 0, 1000, 2000, 3000 ms.
  const vt = v.tables!;
  assert.equal(vt.keys.length, 4);
  assert.deepEqual(vt.keys.map((k) => k.timeMs), [0, 1000, 2000, 3000]);
  assert.deepEqual(vt.keys.map((k) => k.partCount), [30, 30, 30, 30]);
  assert.deepEqual(vt.keys.map((k) => k.number), [0, 1, 2, 3]);
  assert.equal(vt.keySizes.length, 4);
  assert.equal(vt.parts.length, 120);
  assert.equal(vt.fragments.length, 2);
  assert.deepEqual(vt.fragments.map((f) => f.firstKey), [0, 2], 'firstkey is 1-based on disk, 0-based here');
  assert.deepEqual(vt.fragments.map((f) => f.keyCount), [2, 2]);

  const a = byType(meta, 'audio');
  assert.ok(a.type === 'audio');
  assert.equal(a.codec, 'AAC');
  assert.equal(a.rate, 48000);
  assert.equal(a.channels, 2);
  assert.equal(a.size, 16);
  assert.equal(a.id, 2);
  assert.equal(a.tables!.parts.length, 189);

  assert.deepEqual(writeDtscHeader(meta), mp4Dtsh);
});

test('small.flv.dtsh: meta track first, identifiers with index suffix, byte-identical re-encode', () => {
  const meta = readDtscHeader(flvDtsh);
  assert.deepEqual(
    meta.tracks.map((t) => [t.type, t.codec, t.id, t.idx]),
    [
      ['meta', 'JSON', 3, 0],
      ['video', 'H264', 1, 1],
      ['audio', 'AAC', 2, 2],
    ],
  );
  const keys = getObject(decodeDtscHeaderObject(flvDtsh), 'tracks')!.entries.map((e) => e[0]);
  assert.deepEqual(keys, ['meta_JSON__0', 'video_H264_320x180_30fps_1', 'audio_AAC_2ch_48000hz_2']);
  assert.deepEqual(meta.tracks.map((t) => dtscTrackIdentifier(t, t.idx!)), keys);
  assert.equal(byType(meta, 'video').tables!.keys.length, 4);
  assert.deepEqual(writeDtscHeader(meta), flvDtsh);
});

test('header without index data equals the one MistServer sent over dtsc://', () => {
  const meta = readDtscHeader(mp4Dtsh);
  const wire = fs.readFileSync(path.join(mistFixtures, 'small-mp4.dtsc'));
  const first = new DtscFrameReader().push(wire)[0]!;
  assert.equal(first.kind, 'header');
  const noIndex = writeDtscHeader(meta, { withIndex: false });
  assert.deepEqual(noIndex, first.raw);
  // And it reads back without tables.
  assert.ok(readDtscHeader(first.raw).tracks.every((t) => t.tables === undefined));
  // A meta without tables writes the same with the default options.
  const stripped: DtscStreamMeta = { ...meta, tracks: meta.tracks.map((t) => ({ ...t, tables: undefined }) as DtscTrack) };
  assert.deepEqual(writeDtscHeader(stripped), first.raw);
});

test('Appendix A.3: live header member order, unixzero, lang, missed_frags', () => {
  const meta: DtscStreamMeta = {
    live: true,
    vod: false,
    unixzeroMs: 1_700_000_000_000,
    tracks: [
      {
        type: 'video', codec: 'H264', id: 1, init: Buffer.from([1, 2, 3]), bps: 1000, lang: 'und',
        width: 1920, height: 1080, fpks: 25000, efpks: 24990, firstMs: 10, lastMs: 5000, maxBps: 2000,
      },
      {
        type: 'audio', codec: 'opus', id: 2, init: Buffer.alloc(0), bps: 10, lang: 'nld',
        rate: 48000, channels: 2, size: 16, firstMs: 0, lastMs: 5000, maxBps: 20, missedFrags: 3,
        tables: { fragments: [{ durationMs: 100, keyCount: 1, firstKey: 0, sizeBytes: 9 }], keys: [], keySizes: [], parts: [] },
      },
    ],
  };
  const obj = buildDtscHeader(meta);
  assert.deepEqual(obj.entries.map((e) => e[0]), ['live', 'version', 'unixzero', 'tracks']);
  const tracks = getObject(obj, 'tracks')!;
  assert.deepEqual(tracks.entries.map((e) => e[0]), ['video_H264_1920x1080_25fps_0', 'audio_opus_2ch_48000hz_nld_1']);
  const video = getObject(tracks, 'video_H264_1920x1080_25fps_0')!;
  assert.deepEqual(video.entries.map((e) => e[0]), ['trackid', 'firstms', 'lastms', 'bps', 'maxbps', 'init', 'codec', 'type', 'width', 'height', 'fpks', 'efpks']);
  const audio = getObject(tracks, 'audio_opus_2ch_48000hz_nld_1')!;
  assert.deepEqual(audio.entries.map((e) => e[0]), ['fragments', 'keys', 'keysizes', 'parts', 'trackid', 'missed_frags', 'firstms', 'lastms', 'bps', 'maxbps', 'init', 'codec', 'lang', 'type', 'rate', 'size', 'channels']);
  // Without the index, missed_frags goes too (MistServer's skipDynamic).
  const live = getObject(getObject(buildDtscHeader(meta, { withIndex: false }), 'tracks')!, 'audio_opus_2ch_48000hz_nld_1')!;
  assert.ok(!live.entries.some((e) => e[0] === 'missed_frags' || e[0] === 'parts'));

  const bytes = writeDtscHeader(meta);
  const back = readDtscHeader(bytes);
  assert.equal(back.unixzeroMs, 1_700_000_000_000);
  assert.equal(back.tracks[1]!.lang, 'nld');
  assert.equal(back.tracks[1]!.missedFrags, 3);
  assert.deepEqual(writeDtscHeader(back), bytes);
});

test('identifiers print fps like a C++ ostream', () => {
  const cases: Array<[number, string]> = [
    [30, '30'], [29.97, '29.97'], [23.976, '23.976'], [59.94, '59.94'], [0, '0'], [25, '25'],
    [1e6, '1e+06'], [1234567, '1.23457e+06'], [123456.7, '123457'], [0.0001, '0.0001'], [0.00001, '1e-05'], [65.535, '65.535'],
  ];
  for (const [x, s] of cases) assert.equal(formatCppDouble(x), s, String(x));
  const t: DtscTrack = { type: 'video', codec: 'H264', id: 1, init: Buffer.alloc(0), bps: 0, lang: 'und', width: 640, height: 480, fpks: 29970, firstMs: 0, lastMs: 0, maxBps: 0 };
  assert.equal(dtscTrackIdentifier(t, 4), 'video_H264_640x480_29.97fps_4');
  assert.equal(dtscTrackIdentifier({ ...t, type: 'subtitle', codec: 'subtitle', lang: 'eng' } as DtscTrack, 2), 'subtitle_subtitle__eng_2');
});

test('two tracks with the same identifier are refused', () => {
  const meta = readDtscHeader(mp4Dtsh);
  meta.tracks[1]!.idx = 0;
  meta.tracks[1] = { ...meta.tracks[0]!, id: 9 };
  assert.throws(() => writeDtscHeader(meta), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_INVALID_ARG');
});

test('fuzz: mutated .dtsh bytes give meta or a HazeError', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(mp4Dtsh, flvDtsh),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      (src, flips) => {
        const b = Buffer.from(src);
        for (const [at, v] of flips) b[at % b.length] = v;
        try {
          const meta = readDtscHeader(b);
          writeDtscHeader(meta);
        } catch (e) {
          if (!(e instanceof HazeError)) throw e;
        }
      },
    ),
    { numRuns: 1000 },
  );
});
