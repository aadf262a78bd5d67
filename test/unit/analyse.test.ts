// `haze analyse` on the MistServer fixtures and on corrupted copies: the dump's counts, the
// --validate rules (each naming the byte position), chunk-split invariance of the describers,
// and a fuzz run (random and mutated bytes end in findings, never in an exception).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures, tmpDir } from '../helpers.js';
import { analyseBuffer, analyseInput, type AnalyseOutput, type AnalyseResult } from '../../src/analyse/run.js';
import { RULE_INTERNAL, type AnalyseEvent, type Describer, type PacketRecord, type Problem } from '../../src/analyse/model.js';
import { Validator } from '../../src/analyse/validate.js';
import { FlvDescriber } from '../../src/analyse/describe-flv.js';
import { DtscDescriber } from '../../src/analyse/describe-dtsc.js';
import { AudioFramesDescriber } from '../../src/analyse/describe-audio.js';
import { sniffBytes } from '../../src/analyse/sniff.js';
import { parseM3u8 } from '../../src/containers/hls/parse.js';
import { parseAnalyseArgs, runAnalyse } from '../../src/cli/analyse.js';
import { DtscFileWriter } from '../../src/containers/dtsc/file.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { adtsHeader, defaultAsc } from '../../src/media/aac.js';

const fixture = (name: string): Buffer => fs.readFileSync(path.join(mistFixtures, name));
const flv = fixture('small.flv');
const mp4 = fixture('small.mp4');
const dtsc = fixture('small-mp4.dtsc');
const wire = fixture('small-mp4.dtsc-wire');

interface Captured extends AnalyseResult {
  lines: string[];
}

function sink(): { out: AnalyseOutput; lines: string[] } {
  const lines: string[] = [];
  return { lines, out: { line: (t) => void lines.push(t), problem: () => undefined } };
}

async function analyse(buf: Buffer, name: string, maxGapMs?: number): Promise<Captured> {
  const { out, lines } = sink();
  const res = await analyseBuffer(buf, name, maxGapMs === undefined ? {} : { maxGapMs }, out);
  return { ...res, lines };
}

function counts(r: AnalyseResult): Record<number, number> {
  const o: Record<number, number> = {};
  for (const s of r.summary.tracks.values()) o[s.trackId] = s.packets;
  return o;
}

function packetLines(r: Captured): string[] {
  return r.lines.filter((l) => l.startsWith('packet '));
}

/** Byte offsets of the FLV tags of `buf` (header data offset + 4, then 11 + size + 4 each). */
function flvTags(buf: Buffer): { pos: number; type: number; size: number }[] {
  const out = [];
  let p = buf.readUInt32BE(5) + 4;
  while (p + 11 <= buf.length) {
    const size = buf.readUIntBE(p + 1, 3);
    out.push({ pos: p, type: buf[p]! & 0x1f, size });
    p += 11 + size + 4;
  }
  return out;
}

/** Byte offsets of the DTSC frames of `buf`. */
function dtscFrames(buf: Buffer): { pos: number; magic: string; size: number }[] {
  const out = [];
  for (let p = 0; p + 8 <= buf.length; ) {
    const size = 8 + buf.readUInt32BE(p + 4);
    out.push({ pos: p, magic: buf.toString('latin1', p, p + 4), size });
    p += size;
  }
  return out;
}

test('sniffing by first bytes', () => {
  assert.equal(sniffBytes(flv), 'flv');
  assert.equal(sniffBytes(mp4), 'mp4');
  assert.equal(sniffBytes(dtsc), 'dtsc');
  assert.equal(sniffBytes(wire), 'dtsc');
  assert.equal(sniffBytes(Buffer.from('#EXTM3U\n')), 'hls');
  assert.equal(sniffBytes(Buffer.from('OggS\0')), 'ogg');
  assert.equal(sniffBytes(Buffer.from([0x1a, 0x45, 0xdf, 0xa3])), 'mkv');
  assert.equal(sniffBytes(Buffer.from('hello world')), undefined);
});

test('MistServer fixtures dump with the right packet counts and validate', async () => {
  const f = await analyse(flv, 'small.flv');
  assert.deepEqual(counts(f), { 1: 120, 2: 189 });
  assert.deepEqual(f.problems, []);
  assert.equal(packetLines(f).length, 309);
  // the first tag line names its offset: 13 = 9-byte header + PreviousTagSize0
  assert.ok(f.lines.some((l) => l.startsWith('unit pos=13 script tag onMetaData')), f.lines.slice(0, 5).join('\n'));
  assert.ok(f.lines.some((l) => /^track 1: video H264 320x180/.test(l)));

  const m = await analyse(mp4, 'small.mp4');
  assert.deepEqual(counts(m), { 1: 120, 2: 189 });
  assert.deepEqual(m.problems, []);
  assert.ok(m.lines.some((l) => /^moov at \d+ size \d+/.test(l)), 'box tree');
  assert.ok(m.lines.some((l) => /^ {4}mdia at /.test(l)), 'nested boxes');

  // MistServer holds the last packet of each track back over dtsc:// (fixtures README)
  for (const [buf, name] of [[dtsc, 'small-mp4.dtsc'], [wire, 'small-mp4.dtsc-wire']] as const) {
    const d = await analyse(buf, name);
    assert.deepEqual(counts(d), { 1: 119, 2: 188 }, name);
    assert.deepEqual(d.problems, [], name);
  }
  const w = await analyse(wire, 'x');
  assert.ok(w.lines.some((l) => l.startsWith('unit pos=0 DTCM {"cmd":"hi"')), 'the hi command is listed');

  for (const name of ['small.flv.dtsh', 'small.mp4.dtsh']) {
    const h = await analyse(fixture(name), name);
    assert.deepEqual(h.problems, [], name);
    assert.ok(h.lines.some((l) => /index: \d+ fragments, \d+ keys, 120 parts/.test(l)), name);
  }
});

test('FLV: a tag whose timestamp goes back fails validation at its byte position', async () => {
  const bad = Buffer.from(flv);
  const video = flvTags(bad).filter((t) => t.type === 9);
  const tag = video[60]!;
  bad.writeUIntBE(5, tag.pos + 4, 3); // timestamp 5 ms, far behind its neighbours
  bad[tag.pos + 7] = 0;
  const r = await analyse(bad, 'bad.flv');
  const back = r.problems.filter((p) => p.rule === 'TIME_BACKWARDS');
  assert.equal(back.length, 1, JSON.stringify(r.problems));
  assert.equal(back[0]!.pos, tag.pos);
  assert.equal(back[0]!.timeMs, 5);
});

test('FLV: a file cut inside a tag is truncated', async () => {
  const tags = flvTags(flv);
  const cut = tags[100]!.pos + 20;
  const r = await analyse(flv.subarray(0, cut), 'cut.flv');
  const t = r.problems.find((p) => p.rule === 'TRUNCATED');
  assert.ok(t, JSON.stringify(r.problems));
  assert.equal(t.pos, tags[100]!.pos);
});

test('MP4: a truncated file fails validation', async () => {
  // small.mp4 keeps its moov at the end: cutting it loses the index
  const r = await analyse(mp4.subarray(0, mp4.length - 1000), 'cut.mp4');
  assert.ok(r.problems.length > 0);
  assert.ok(r.problems.some((p) => p.rule === 'TRUNCATED' && p.pos >= 0), JSON.stringify(r.problems));
});

test('DTSC: a packet with an edited track id names its frame position', async () => {
  const bad = Buffer.from(dtsc);
  const frame = dtscFrames(bad).filter((f) => f.magic === 'DTP2')[50]!;
  bad.writeUInt32BE(7, frame.pos + 8);
  const r = await analyse(bad, 'bad.dtsc');
  const p = r.problems.find((x) => x.rule === 'DTSC_UNDECLARED_TRACK');
  assert.ok(p, JSON.stringify(r.problems));
  assert.equal(p.pos, frame.pos);
  const cut = await analyse(dtsc.subarray(0, dtsc.length - 10), 'cut.dtsc');
  assert.ok(cut.problems.some((x) => x.rule === 'TRUNCATED'), JSON.stringify(cut.problems));
});

/** A .dtsc as Haze's writer makes it (header, packets, trailer with the index), from small.flv. */
function haveDtscFile(drop?: number): Buffer {
  const src = parseFlvFile(flv);
  const w = new DtscFileWriter({ tracks: src.tracks });
  const parts = [w.header()];
  src.packets.forEach((p, i) => {
    const frame = w.packet(p);
    if (i !== drop) parts.push(frame);
  });
  const { trailer, patch } = w.finish();
  const file = Buffer.concat([...parts, trailer]);
  patch.bytes.copy(file, patch.position);
  return file;
}

test('DTSC: index tables are checked against the packets', async () => {
  const good = await analyse(haveDtscFile(), 'good.dtsc');
  assert.deepEqual(good.problems, []);
  // a packet missing from the data: the trailer's tables list one part more than there is
  const bad = await analyse(haveDtscFile(150), 'dropped.dtsc');
  assert.ok(bad.problems.some((p) => p.rule === 'DTSC_INDEX_MISMATCH'), JSON.stringify(bad.problems));
});

test('validator rules', () => {
  const v = new Validator({ maxGapMs: 500 });
  v.setTracks([{ id: 1, type: 'video', codec: 'H264', width: 1, height: 1, fpks: 0, init: Buffer.alloc(0), bps: 0, lang: 'und' }]);
  const pk = (timeMs: number, keyframe = true, offsetMs = 0, trackId = 1): PacketRecord => ({ trackId, timeMs, offsetMs, keyframe, size: 1, pos: timeMs });
  const rules = (p: PacketRecord): string[] => v.packet(p).map((x) => x.rule);
  assert.deepEqual(rules(pk(0, false)), ['NO_START_KEYFRAME']);
  assert.deepEqual(rules(pk(40)), []);
  assert.deepEqual(rules(pk(1000)), ['TIME_GAP']);
  assert.deepEqual(rules(pk(900)), ['TIME_BACKWARDS']);
  assert.deepEqual(rules(pk(1040, false, -40)), ['PTS_BEFORE_DTS']);
  assert.deepEqual(rules(pk(0, true, 0, 9)), ['UNDECLARED_TRACK']);
});

test('HLS playlist checks', () => {
  const ok = parseM3u8('#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\na.ts\n#EXTINF:1.5,\nb.ts\n#EXT-X-ENDLIST\n');
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.segments.length, 2);
  const bad = parseM3u8('#EXTINF:5,\na.ts\nb.ts\n');
  assert.ok(bad.problems.some((p) => p.includes('#EXTM3U')));
  assert.ok(bad.problems.some((p) => p.includes('TARGETDURATION')));
  assert.ok(bad.problems.some((p) => p.startsWith('line 3')));
  const master = parseM3u8('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nv/index.m3u8\n');
  assert.equal(master.master, true);
  assert.equal(master.variants[0]!.uri, 'v/index.m3u8');
});

test('ADTS frames are counted and a cut last frame is truncated', async () => {
  const asc = defaultAsc(48000, 2);
  const frames = Array.from({ length: 10 }, (_, i) => Buffer.concat([adtsHeader(asc, 100 + i), Buffer.alloc(100 + i, i)]));
  const all = Buffer.concat(frames);
  const r = await analyse(all, 'x.aac');
  assert.deepEqual(counts(r), { 1: 10 });
  assert.deepEqual(r.problems, []);
  const cut = await analyse(all.subarray(0, all.length - 5), 'x.aac');
  assert.ok(cut.problems.some((p) => p.rule === 'TRUNCATED'));
});

function eventsWhole(make: () => Describer, buf: Buffer): AnalyseEvent[] {
  const d = make();
  return [...d.push(buf), ...d.end(true)];
}

function eventsSplit(make: () => Describer, buf: Buffer, cuts: number[]): AnalyseEvent[] {
  const d = make();
  const ev: AnalyseEvent[] = [];
  let p = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    ev.push(...d.push(buf.subarray(p, c)));
    p = c;
  }
  ev.push(...d.push(buf.subarray(p)), ...d.end(true));
  return ev;
}

const packetsOf = (ev: AnalyseEvent[]): PacketRecord[] => ev.flatMap((e) => (e.kind === 'packet' ? [e.packet] : []));

test('describers give the same packets for any chunk split', () => {
  const cases: [() => Describer, Buffer][] = [
    [() => new FlvDescriber(), flv],
    [() => new DtscDescriber(), wire],
    [() => new AudioFramesDescriber('adts'), Buffer.concat(Array.from({ length: 20 }, (_, i) => Buffer.concat([adtsHeader(defaultAsc(44100, 1), 50 + i), Buffer.alloc(50 + i)])))],
  ];
  for (const [make, buf] of cases) {
    const whole = eventsWhole(make, buf);
    assert.ok(packetsOf(whole).length > 0);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: buf.length }), { maxLength: 12 }), (cuts) => {
        assert.deepEqual(packetsOf(eventsSplit(make, buf, cuts)), packetsOf(whole));
      }),
      { numRuns: 25 },
    );
  }
});

const noInternal = (problems: readonly Problem[]): void => {
  const internal = problems.filter((p) => p.rule === RULE_INTERNAL);
  assert.deepEqual(internal, []);
};

test('fuzz: random and mutated bytes give findings, never exceptions', async () => {
  const names = ['x.flv', 'x.ts', 'x.mkv', 'x.mp4', 'x.dtsc', 'x.ogg', 'x.wav', 'x.mp3', 'x.aac', 'x.bin'];
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), fc.constantFrom(...names), async (bytes, name) => {
      const r = await analyse(Buffer.from(bytes), name);
      noInternal(r.problems);
    }),
    { numRuns: 150 },
  );
  const seeds: [Buffer, string][] = [[flv.subarray(0, 20_000), 'a.flv'], [dtsc.subarray(0, 20_000), 'a.dtsc'], [mp4, 'a.mp4']];
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 20 }), fc.nat(), async ([seed, name], edits, cutAt) => {
      const buf = Buffer.from(seed.subarray(0, seed.length - (cutAt % 64)));
      for (const [at, v] of edits) buf[at % buf.length] = v;
      const r = await analyse(buf, name);
      noInternal(r.problems);
    }),
    { numRuns: 60 },
  );
});

test('runAnalyse: exit codes', async () => {
  const dir = tmpDir('haze-analyse-');
  const bad = path.join(dir, 'bad.flv');
  const badBuf = Buffer.from(flv);
  const tag = flvTags(badBuf).filter((t) => t.type === 9)[30]!;
  badBuf.writeUIntBE(1, tag.pos + 4, 3);
  fs.writeFileSync(bad, badBuf);
  const junk = path.join(dir, 'junk.bin');
  fs.writeFileSync(junk, Buffer.from('not media at all, not at all'));
  const stderr: string[] = [];
  const io = { stdout: { write: (): boolean => true }, stderr: { write: (t: string): boolean => stderr.push(t) > 0 } };
  try {
    assert.equal(await runAnalyse([path.join(mistFixtures, 'small.flv'), '--validate', '--headers-only'], io), 0);
    assert.equal(await runAnalyse([bad, '--validate'], io), 1);
    assert.ok(stderr.some((l) => l.includes('TIME_BACKWARDS') && l.includes(`byte ${tag.pos}`)), stderr.join(''));
    assert.equal(await runAnalyse([bad], io), 0, 'without --validate problems are printed, not failed');
    assert.equal(await runAnalyse([junk, '--validate'], io), 1);
    assert.equal(await runAnalyse([path.join(dir, 'missing.flv')], io), 1);
    assert.equal(await runAnalyse([path.join(mistFixtures, 'small.mp4'), '--format', 'json', '--limit', '5'], io), 0);
    assert.equal(await runAnalyse([], io), 2);
    assert.equal(await runAnalyse(['a', 'b'], io), 2);
    assert.equal(await runAnalyse(['a', '--limit', 'x'], io), 2);
    assert.equal(await runAnalyse(['a', '--bogus'], io), 2);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(parseAnalyseArgs(['x', '--limit=3', '--max-gap-ms', '200']), { input: 'x', validate: false, json: false, opts: { limit: 3, maxGapMs: 200 } });
});

test('--limit stops after N packets without a truncation finding', async () => {
  const { out, lines } = sink();
  const r = await analyseInput(path.join(mistFixtures, 'small.flv'), { limit: 7 }, out);
  assert.equal(r.packets, 7);
  assert.equal(lines.filter((l) => l.startsWith('packet ')).length, 7);
  assert.deepEqual(r.problems, []);
});
