// Recording lengths from a file's ends (pushes/recording-duration.ts): FLV, MPEG-TS and Matroska
// written by Haze's own writers from MistServer's small.flv give the span of the packets'
// times, read whole or from a short head and tail; HLS playlists sum EXTINF; random and mutated
// bytes give a number or undefined, never an exception. The path templates of the `recordings`
// call match what the variables produce and name the stream.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures } from '../helpers.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { writeFlvFile } from '../../src/containers/flv/mux.js';
import { TsMuxer } from '../../src/containers/ts/mux.js';
import { MatroskaWriter } from '../../src/containers/mkv/writer.js';
import { firstFlvTimestampMs, flvDurationMs, hlsPlaylistSegments, mkvDurationMs, tsDurationMs } from '../../src/pushes/recording-duration.js';
import { applyVariables } from '../../src/pushes/variables.js';
import { componentPattern, recordingDurationMs, templateOf } from '../../src/controller/api-recordings.js';
import { DtscFileWriter } from '../../src/containers/dtsc/file.js';
import { Fmp4Writer } from '../../src/outputs/container-writers.js';
import { tmpDir } from '../helpers.js';

const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
const times = flv.packets.map((p) => p.timeMs);
const spanMs = Math.max(...times) - Math.min(...times);
const pts = flv.packets.map((p) => p.timeMs + p.offsetMs);
const ptsSpanMs = Math.max(...pts) - Math.min(...pts);

const flvFile = writeFlvFile(flv.tracks, flv.packets);
const tsMux = new TsMuxer(flv.tracks);
const tsFile = Buffer.concat(flv.packets.map((p) => tsMux.mux(p)));
const mkvWriter = new MatroskaWriter(flv.tracks, { webm: false });
const mkvFile = Buffer.concat([mkvWriter.header(), ...flv.packets.map((p) => mkvWriter.packet(p))]);

/** The file's first `head` bytes and its last `tail` bytes (a TS tail from a packet boundary). */
function ends(file: Buffer, head: number, tail: number, align = 1): [Buffer, Buffer] {
  let from = Math.max(0, file.length - tail);
  from -= from % align;
  return [file.subarray(0, head), file.subarray(from)];
}

test('FLV, TS and Matroska lengths from the whole file and from 8 KiB ends', () => {
  assert.ok(spanMs > 1000, `fixture spans ${spanMs} ms`);
  const lastFlv = flv.packets[flv.packets.length - 1]!.timeMs;
  assert.equal(firstFlvTimestampMs(flvFile), flv.packets[0]!.timeMs);
  assert.equal(flvDurationMs(flvFile, flvFile), lastFlv - flv.packets[0]!.timeMs);
  assert.equal(flvDurationMs(...ends(flvFile, 8192, 8192)), lastFlv - flv.packets[0]!.timeMs);
  // TS: PTS span; the muxer may round to its 90 kHz clock
  for (const d of [tsDurationMs(tsFile, tsFile), tsDurationMs(...ends(tsFile, 8192, 8192, 188))]) {
    assert.ok(d !== undefined && Math.abs(d - ptsSpanMs) <= 1, `ts ${d} vs ${ptsSpanMs}`);
  }
  // Matroska: the tail must reach back to the last Cluster's start (the caller reads more when it does not)
  const lastCluster = mkvFile.lastIndexOf(Buffer.from([0x1f, 0x43, 0xb6, 0x75]));
  for (const d of [mkvDurationMs(mkvFile, mkvFile), mkvDurationMs(...ends(mkvFile, 8192, mkvFile.length - lastCluster + 10))]) {
    assert.ok(d !== undefined && Math.abs(d - ptsSpanMs) <= 1, `mkv ${d} vs ${ptsSpanMs}`);
  }
  assert.equal(mkvDurationMs(...ends(mkvFile, 8192, mkvFile.length - lastCluster - 10)), undefined);
  assert.ok(tsFile.length > 3 * 8192 && mkvFile.length > 3 * 8192, 'the ends are a part of the files');
});

test('a file cut anywhere gives a length no longer than the whole, or none', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 1 }), fc.double({ min: 0, max: 1, noNaN: true }), (which, frac) => {
      const file = [flvFile, mkvFile][which]!;
      const cut = file.subarray(0, Math.floor(file.length * frac));
      const d = which === 0 ? flvDurationMs(cut, cut) : mkvDurationMs(cut, cut);
      assert.ok(d === undefined || (d >= 0 && d <= spanMs + 100), String(d));
    }),
    { numRuns: 200 },
  );
});

test('fuzz: random and mutated bytes give a number or undefined', () => {
  const fns = [flvDurationMs, tsDurationMs, mkvDurationMs];
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4000 }), fc.uint8Array({ maxLength: 4000 }), (a, b) => {
      for (const f of fns) {
        const d = f(Buffer.from(a), Buffer.from(b));
        assert.ok(d === undefined || Number.isFinite(d));
      }
    }),
    { numRuns: 300 },
  );
  const samples = [flvFile.subarray(0, 20000), tsFile.subarray(0, 20000), mkvFile.subarray(0, 20000)];
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 }), fc.array(fc.tuple(fc.nat(19999), fc.nat(255)), { maxLength: 40 }), (i, edits) => {
      const buf = Buffer.from(samples[i]!);
      for (const [at, v] of edits) buf[at] = v;
      const d = fns[i]!(buf, buf);
      assert.ok(d === undefined || Number.isFinite(d));
    }),
    { numRuns: 300 },
  );
});

test('HLS playlists: segments and summed EXTINF', () => {
  const r = hlsPlaylistSegments('#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:5.000,\ns_0.ts\n#EXTINF:4.5,\nsub/s_1.ts\n#EXT-X-ENDLIST\n');
  assert.deepEqual(r, { uris: ['s_0.ts', 'sub/s_1.ts'], durationMs: 9500 });
  assert.deepEqual(hlsPlaylistSegments('garbage'), { uris: ['garbage'], durationMs: 0 });
});

test('path templates match the files the variables name, and give their stream', () => {
  const now = new Date(Date.UTC(2026, 10, 24, 23, 5, 9));
  const cases: [string, string, string | undefined][] = [
    ['/rec/$stream_$datetime.mkv', 'live+alice', 'live+alice'],
    ['/rec/$basename/$wildcard/$year-$month.ts', 'live+bob', undefined],
    ['/rec/${stream}.flv', 'a.b-c', 'a.b-c'],
    ['/rec/x$pluswildcard-$segmentCounter.ts', 'live+c', undefined],
  ];
  for (const [tpl, stream, named] of cases) {
    const t = templateOf(tpl)!;
    assert.equal(t.folder, '/rec', tpl);
    const file = applyVariables(tpl, { stream, now, segmentCounter: 3 });
    const comps = file.split('/').slice(2);
    assert.equal(comps.length, t.parts.length, tpl);
    const groups: Record<string, string> = {};
    comps.forEach((c, i) => {
      const m = t.parts[i]!.exec(c);
      assert.ok(m, `${c} ~ ${t.parts[i]}`);
      Object.assign(groups, m.groups ?? {});
    });
    if (named) assert.equal(groups['stream'], named, tpl);
    // another extension or a stray suffix does not match
    assert.equal(t.parts[t.parts.length - 1]!.test(`${comps[comps.length - 1]}.bak`), false);
  }
  assert.equal(templateOf('/fixed/file.mkv')!.folder, '/fixed');
  assert.ok(componentPattern('$streamx.mkv').test('live+ax.mkv'));
  assert.equal(componentPattern('$datetime.mkv').test('2026.11.24.mkv'), false);
});

test('fuzz: any target text gives a pattern that only matches single path components', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 60 }), fc.string({ maxLength: 30 }), (component, name) => {
      const re = componentPattern(component.replace(/\//g, ''));
      if (re.test(name)) assert.ok(!name.includes('/'), `${component} ~ ${name}`);
      // text without variables matches itself only
      if (!component.includes('$') && !component.includes('/')) assert.ok(componentPattern(component).test(component));
    }),
    { numRuns: 300 },
  );
});

test('files on disk: each format read through its ends, a DTSC and MP4 recording through their index', async () => {
  const dir = tmpDir('haze-recdur-');
  try {
    const dtsc = new DtscFileWriter({ tracks: flv.tracks });
    const parts = [dtsc.header(), ...flv.packets.map((p) => dtsc.packet(p))];
    const growingDtsc = Buffer.concat(parts);
    const end = dtsc.finish();
    const finished = Buffer.concat([growingDtsc, end.trailer]);
    end.patch.bytes.copy(finished, end.patch.position);
    const mp4 = new Fmp4Writer();
    mp4.setTracks(flv.tracks);
    const mp4File = Buffer.concat([mp4.header(), ...flv.packets.map((p) => mp4.packet(p) ?? Buffer.alloc(0))]);
    const files: [string, Buffer, number | undefined][] = [
      ['a.flv', flvFile, flv.packets[flv.packets.length - 1]!.timeMs - flv.packets[0]!.timeMs],
      ['a.ts', tsFile, ptsSpanMs],
      ['a.mkv', mkvFile, ptsSpanMs],
      ['a.dtsc', finished, spanMs],
      ['growing.dtsc', growingDtsc, undefined],
      ['a.wav', Buffer.alloc(100), undefined],
    ];
    for (const [name, bytes, want] of files) {
      fs.writeFileSync(path.join(dir, name), bytes);
      const d = await recordingDurationMs(path.join(dir, name));
      if (want === undefined) assert.equal(d, undefined, name);
      else assert.ok(d !== undefined && Math.abs(d - want) <= 1, `${name}: ${d} vs ${want}`);
    }
    // fragmented MP4: the fragments written so far (the last one still open gives what it has)
    fs.writeFileSync(path.join(dir, 'a.mp4'), mp4File);
    const d = await recordingDurationMs(path.join(dir, 'a.mp4'));
    assert.ok(d !== undefined && d > spanMs / 2 && d <= spanMs + 100, `mp4: ${d} vs ${spanMs}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
