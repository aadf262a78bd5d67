// Real MistServer 3.10 output (shared/fixtures/mistserver) read with Haze's DTSC code and checked
// against ffmpeg's view of the source file: payloads (framemd5), composition offsets, timing,
// init data; every frame re-encodes to the same bytes.

import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures, parseFramemd5, runOk, type FrameLine } from '../helpers.js';
import { HazeError } from '../../src/util/errors.js';
import { getText } from '../../src/containers/dtsc/dtmi.js';
import { DtscFrameReader, encodeDtcm, encodeDtp2, type DtscFrame } from '../../src/containers/dtsc/packets.js';
import { parseDtscHeader, readDtscHeader, writeDtscHeader, type DtscStreamMeta } from '../../src/containers/dtsc/header.js';

const dtscFile = fs.readFileSync(path.join(mistFixtures, 'small-mp4.dtsc'));
const wireFile = fs.readFileSync(path.join(mistFixtures, 'small-mp4.dtsc-wire'));
const mp4Path = path.join(mistFixtures, 'small.mp4');

interface FfmpegView {
  frames: FrameLine[];
  /** Time base per stream, seconds per tick. */
  tb: Map<number, number>;
  /** md5 of the extradata per stream. */
  extradataMd5: Map<number, string>;
}

let ff: FfmpegView;

before(async () => {
  const text = (await runOk('ffmpeg', ['-v', 'error', '-i', mp4Path, '-c', 'copy', '-f', 'framemd5', '-'])).toString();
  const tb = new Map<number, number>();
  const extradataMd5 = new Map<number, string>();
  for (const line of text.split('\n')) {
    const t = /^#tb (\d+): (\d+)\/(\d+)/.exec(line);
    if (t) tb.set(Number(t[1]), Number(t[2]) / Number(t[3]));
    const x = /^#extradata (\d+),\s*\d+,\s*([0-9a-f]{32})/.exec(line);
    if (x) extradataMd5.set(Number(x[1]), x[2]!);
  }
  ff = { frames: parseFramemd5(text), tb, extradataMd5 };
});

function md5(b: Buffer): string {
  return crypto.createHash('md5').update(b).digest('hex');
}

function readAll(buf: Buffer): DtscFrame[] {
  const r = new DtscFrameReader();
  const frames = r.push(buf);
  r.finish();
  return frames;
}

function streamOf(type: string): number {
  // small.mp4: stream 0 is the video, stream 1 the audio.
  return type === 'video' ? 0 : 1;
}

test('small-mp4.dtsc: header then 307 packets whose payloads are small.mp4 packets in order', () => {
  const frames = readAll(dtscFile);
  assert.equal(frames[0]!.kind, 'header');
  const meta: DtscStreamMeta = parseDtscHeader((frames[0] as Extract<DtscFrame, { kind: 'header' }>).header);
  const packets = frames.slice(1);
  assert.equal(packets.length, 307);
  assert.ok(packets.every((f) => f.kind === 'packet' && f.version === 2));

  for (const track of meta.tracks) {
    const stream = streamOf(track.type);
    const ffFrames = ff.frames.filter((f) => f.stream === stream);
    const ours = packets.filter((f): f is Extract<DtscFrame, { kind: 'packet' }> => f.kind === 'packet' && f.packet.trackId === track.id);
    // MistServer holds back the last packet of each track on dtsc:// (fixture README).
    assert.equal(ours.length, ffFrames.length - 1, `${track.type} packet count`);
    assert.deepEqual(
      ours.map((f) => md5(f.packet.data)),
      ffFrames.slice(0, -1).map((f) => f.hash),
      `${track.type} payloads`,
    );
    assert.deepEqual(ours.map((f) => f.packet.data.length), ffFrames.slice(0, -1).map((f) => f.size));

    // Init data is the codec extradata ffmpeg sees (avcC, AudioSpecificConfig).
    assert.equal(md5(track.init), ff.extradataMd5.get(stream), `${track.type} init`);

    const tbMs = ff.tb.get(stream)! * 1000;
    const dts0 = ffFrames[0]!.dts;
    const t0 = ours[0]!.packet.timeMs;
    assert.equal(t0, 0, 'timestamps start at 0 ms');
    ours.forEach((f, i) => {
      const ref = ffFrames[i]!;
      const offsetMs = (ref.pts - ref.dts) * tbMs;
      assert.ok(Math.abs(f.packet.offsetMs - offsetMs) <= 1, `${track.type} #${i} offset ${f.packet.offsetMs} vs ${offsetMs}`);
      const timeMs = (ref.dts - dts0) * tbMs;
      assert.ok(Math.abs(f.packet.timeMs - t0 - timeMs) <= 1, `${track.type} #${i} time ${f.packet.timeMs} vs ${timeMs}`);
      assert.equal(f.bpos, 0);
    });
    if (track.type === 'video') {
      assert.ok(ours.some((f) => f.packet.offsetMs > 0), 'B-frames give composition offsets');
      assert.deepEqual(ours.filter((f) => f.packet.keyframe).map((f) => f.packet.timeMs), [0, 1000, 2000, 3000]);
    }
  }
});

test('small-mp4.dtsc: every frame re-encodes to the same bytes', () => {
  const frames = readAll(dtscFile);
  let offset = 0;
  for (const f of frames) {
    const again = f.kind === 'packet' ? encodeDtp2(f.packet, f.packet.trackId, f.bpos) : f.kind === 'header' ? writeDtscHeader(parseDtscHeader(f.header)) : encodeDtcm(f.command);
    assert.ok(again.equals(f.raw), `frame at ${offset} (${f.kind})`);
    offset += f.raw.length;
  }
  assert.equal(offset, dtscFile.length);
});

test('small.mp4.dtsh index agrees with the packets MistServer sent', () => {
  const meta = readDtscHeader(fs.readFileSync(path.join(mistFixtures, 'small.mp4.dtsh')));
  const packets = readAll(dtscFile).filter((f): f is Extract<DtscFrame, { kind: 'packet' }> => f.kind === 'packet');
  for (const track of meta.tracks) {
    const ours = packets.filter((f) => f.packet.trackId === track.id);
    const { parts, keys, keySizes } = track.tables!;
    ours.forEach((f, i) => {
      assert.equal(parts[i]!.sizeBytes, f.packet.data.length);
      assert.equal(parts[i]!.offsetMs, f.packet.offsetMs);
      if (i + 1 < ours.length) assert.equal(parts[i]!.durationMs, ours[i + 1]!.packet.timeMs - f.packet.timeMs);
    });
    // keysizes count the DTP2 packets as stored in MistServer's pages, where each carries a
    // bpos member (15 bytes) that the dtsc:// copies leave out. The last key lacks the held-back packet.
    let first = 0;
    keys.slice(0, -1).forEach((k, ki) => {
      const inKey = ours.slice(first, first + k.partCount);
      assert.equal(keySizes[ki], inKey.reduce((n, f) => n + f.raw.length + 15, 0), `${track.type} key ${ki}`);
      first += k.partCount;
    });
  }
});

test('small-mp4.dtsc-wire: DTCM hi, then exactly small-mp4.dtsc', () => {
  const frames = readAll(wireFile);
  const hi = frames[0]!;
  assert.equal(hi.kind, 'command');
  if (hi.kind !== 'command') return;
  assert.deepEqual(hi.command.entries.map((e) => e[0]), ['cmd', 'pack_method', 'salt', 'version']);
  assert.equal(getText(hi.command, 'cmd'), 'hi');
  assert.equal(getText(hi.command, 'version'), 'MistServer/3.10');
  assert.deepEqual(encodeDtcm(hi.command), hi.raw);
  // Built from a plain object in another order, sorting gives MistServer's bytes.
  const salt = getText(hi.command, 'salt')!;
  assert.deepEqual(encodeDtcm({ version: 'MistServer/3.10', salt, pack_method: 2, cmd: 'hi' }), hi.raw);

  assert.ok(wireFile.subarray(hi.raw.length).equals(dtscFile));
  const rest = readAll(dtscFile);
  assert.equal(frames.length, rest.length + 1);
  frames.slice(1).forEach((f, i) => assert.ok(f.raw.equals(rest[i]!.raw)));
});

test('fuzz: random chunk splits of small-mp4.dtsc-wire give the same frames', () => {
  const whole = readAll(wireFile);
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: wireFile.length - 1 }), { maxLength: 40 }), (cuts) => {
      cuts.sort((a, b) => a - b);
      const r = new DtscFrameReader();
      const got: DtscFrame[] = [];
      let prev = 0;
      for (const c of [...cuts, wireFile.length]) {
        got.push(...r.push(wireFile.subarray(prev, c)));
        prev = c;
      }
      r.finish();
      assert.equal(got.length, whole.length);
      got.forEach((f, i) => {
        const w = whole[i]!;
        assert.equal(f.kind, w.kind);
        assert.ok(f.raw.equals(w.raw));
        if (f.kind === 'packet' && w.kind === 'packet') {
          assert.deepEqual([f.packet.trackId, f.packet.timeMs, f.packet.offsetMs, f.packet.keyframe], [w.packet.trackId, w.packet.timeMs, w.packet.offsetMs, w.packet.keyframe]);
          assert.ok(f.packet.data.equals(w.packet.data));
        }
      });
    }),
    { numRuns: 60 },
  );
});

test('fuzz: flipped bytes in small-mp4.dtsc-wire give frames or a HazeError, never another exception', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat({ max: 4 }), (flips, splits) => {
      const b = Buffer.from(wireFile);
      for (const [at, v] of flips) b[at % b.length] = v;
      const r = new DtscFrameReader({ maxFrameBytes: 1 << 20 });
      try {
        const step = Math.ceil(b.length / (splits + 1));
        for (let p = 0; p < b.length; p += step) {
          for (const f of r.push(b.subarray(p, p + step))) {
            if (f.kind === 'header') parseDtscHeader(f.header);
          }
        }
        r.finish();
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }),
    { numRuns: 150 },
  );
});
