// H.264 helpers: avcC and SPS against small.flv's sequence header and SPS variants made by
// ffmpeg/libx264 (expected sizes and rates are what ffprobe reports for those files), Annex B
// conversion both ways, NAL splitting bounds, and fuzzing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures, hex, isHaze, resultOrHazeError } from '../helpers.js';
import { annexBSize, avccToAnnexB, buildAvcC, parseAvcC, parseH264Sps, writeAnnexB, type AvcConfig } from '../../src/media/h264.js';
import { annexBToAvcc, joinNalUnits, splitAnnexB, splitNalUnits, unescapeRbsp } from '../../src/media/nal-units.js';

/** small.flv's AVC sequence header body (the avcC written by ffmpeg). */
const AVCC = hex('0164000dffe1001a6764000dacd941419f9f0110000003001000000303c0f142996001000468efbcb0fdf8f800');
const SC = hex('00000001');
const AUD = hex('0000000109f0');


test('avcC from small.flv: profile, level, NAL length size, parameter sets', () => {
  assert.ok(fs.readFileSync(path.join(mistFixtures, 'small.flv')).includes(AVCC), 'the fixture holds this avcC');
  const c = parseAvcC(AVCC);
  assert.equal(c.profile, 100);
  assert.equal(c.compatibility, 0);
  assert.equal(c.level, 13);
  assert.equal(c.nalLengthSize, 4);
  assert.equal(c.sps.length, 1);
  assert.equal(c.pps.length, 1);
  assert.deepEqual(c.sps[0], AVCC.subarray(8, 34));
  assert.deepEqual(c.pps[0], hex('68efbcb0'));
  // buildAvcC reproduces ffmpeg's record byte for byte (including the High-profile extension).
  assert.deepEqual(buildAvcC(c.sps, c.pps), AVCC);
  assert.deepEqual(buildAvcC(c.sps[0]!, c.pps[0]!), AVCC);
});

test('SPS from small.flv: 320x180 (cropped from 320x192), High, 30 fps from VUI', () => {
  const sps = parseH264Sps(parseAvcC(AVCC).sps[0]!);
  assert.equal(sps.profileIdc, 100);
  assert.equal(sps.levelIdc, 13);
  assert.equal(sps.width, 320);
  assert.equal(sps.height, 180);
  assert.equal(sps.chromaFormatIdc, 1);
  assert.equal(sps.bitDepthLuma, 8);
  assert.equal(sps.frameMbsOnly, true);
  assert.equal(sps.fpks, 30000);
  assert.deepEqual([sps.sarWidth, sps.sarHeight], [1, 1]);
});

test('SPS variants from libx264 match what ffprobe reports', () => {
  const cases: Array<[string, string, number, number, number, boolean, number, number]> = [
    // name, sps, profile, width, height, frameMbsOnly, chroma, fpks
    ['constrained baseline', '6742c01fd9005005bb011000000300100000030320f1832480', 66, 1280, 720, true, 1, 25000],
    ['main 1080p50 (crop 8)', '674d402aeca03c0113f2e022000003000200000300c81e30632c', 77, 1920, 1080, true, 1, 50000],
    ['high interlaced 576i', '6764001eacd940b424d8088000000300800000190f8a14cb', 100, 720, 576, false, 1, 25000],
    ['high 4:4:4 predictive', '67f4000d919b282c12d808800000030080000019078a14cb', 244, 352, 288, true, 3, 25000],
    ['high with JVT scaling matrices', '6764001eacd940a02ff97011000003000100000300320f162d96', 100, 640, 360, true, 1, 25000],
    ['high 322x182 (odd crop)', '6764000dacd941519e226c0440000003004000000c83c50a6580', 100, 322, 182, true, 1, 25000],
  ];
  for (const [name, sps, profile, w, h, fmo, chroma, fpks] of cases) {
    const s = parseH264Sps(hex(sps));
    assert.deepEqual([s.profileIdc, s.width, s.height, s.frameMbsOnly, s.chromaFormatIdc, s.fpks], [profile, w, h, fmo, chroma, fpks], name);
  }
  assert.throws(() => parseH264Sps(hex('68efbcb0')), isHaze, 'a PPS is not an SPS');
  assert.throws(() => parseH264Sps(hex('6764000dac')), isHaze, 'truncated');
});

test('unescapeRbsp removes emulation prevention bytes only', () => {
  assert.deepEqual(unescapeRbsp(hex('0000030100000302')), hex('000001000002'));
  assert.deepEqual(unescapeRbsp(hex('00000300000301')), hex('0000000001'));
  const plain = hex('01020304');
  assert.equal(unescapeRbsp(plain), plain, 'no copy when nothing to remove');
});

const cfg = parseAvcC(AVCC);
const idr = hex('65888400ff');
const sei = hex('06050102');
const slice = hex('419a2233');

test('avccToAnnexB: AUD first, SPS/PPS on keyframes that lack them, one exact-size buffer', () => {
  const key = avccToAnnexB(joinNalUnits([sei, idr]), cfg, true);
  assert.deepEqual(key, Buffer.concat([AUD, SC, cfg.sps[0]!, SC, cfg.pps[0]!, SC, sei, SC, idr]));
  const delta = avccToAnnexB(joinNalUnits([slice]), cfg, false);
  assert.deepEqual(delta, Buffer.concat([AUD, SC, slice]));
  // Parameter sets already in band: not repeated.
  const inBand = avccToAnnexB(joinNalUnits([cfg.sps[0]!, cfg.pps[0]!, idr]), cfg, true);
  assert.deepEqual(inBand, Buffer.concat([AUD, SC, cfg.sps[0]!, SC, cfg.pps[0]!, SC, idr]));
  // The unit's own AUD stays first and is not doubled; parameter sets go after it.
  const withAud = avccToAnnexB(joinNalUnits([hex('0910'), idr]), cfg, true);
  assert.deepEqual(withAud, Buffer.concat([SC, hex('0910'), SC, cfg.sps[0]!, SC, cfg.pps[0]!, SC, idr]));
  // Empty NAL units are dropped.
  assert.deepEqual(avccToAnnexB(joinNalUnits([Buffer.alloc(0), slice]), cfg, false), delta);
  assert.equal(annexBSize(joinNalUnits([sei, idr]), cfg, true), key.length);
  // writeAnnexB into a caller's buffer at an offset.
  const out = Buffer.alloc(key.length + 3, 0xee);
  assert.equal(writeAnnexB(joinNalUnits([sei, idr]), cfg, true, out, 3), out.length);
  assert.deepEqual(out.subarray(3), key);
  assert.throws(() => writeAnnexB(joinNalUnits([idr]), cfg, true, Buffer.alloc(4), 0), isHaze);
});

test('avccToAnnexB with 2-byte and 1-byte NAL lengths', () => {
  const two: AvcConfig = { ...cfg, nalLengthSize: 2 };
  assert.deepEqual(avccToAnnexB(Buffer.concat([hex('0004'), slice]), two, false), Buffer.concat([AUD, SC, slice]));
  const one: AvcConfig = { ...cfg, nalLengthSize: 1 };
  assert.deepEqual(avccToAnnexB(Buffer.concat([hex('04'), slice, hex('05'), idr]), one, false), Buffer.concat([AUD, SC, slice, SC, idr]));
});

test('splitNalUnits: subarrays, and a typed error for lengths past the end', () => {
  const data = joinNalUnits([sei, idr]);
  const nals = splitNalUnits(data);
  assert.deepEqual(nals, [sei, idr]);
  assert.equal(nals[0]!.buffer, data.buffer, 'no copies');
  assert.deepEqual(splitNalUnits(Buffer.alloc(0)), []);
  assert.throws(() => splitNalUnits(hex('00000005010203')), isHaze);
  assert.throws(() => splitNalUnits(hex('000000')), isHaze);
  assert.throws(() => splitNalUnits(hex('ffffffff00')), isHaze);
  assert.throws(() => splitNalUnits(hex('00'), 3 + 2), isHaze);
  assert.throws(() => avccToAnnexB(hex('00000009aa'), cfg, false), isHaze);
});

test('splitAnnexB / annexBToAvcc: 3- and 4-byte start codes, trailing zeros, inverse of avccToAnnexB', () => {
  const stream = Buffer.concat([hex('00'), SC, sei, hex('000001'), idr, hex('0000'), hex('000001'), slice]);
  assert.deepEqual(splitAnnexB(stream), [sei, idr, slice]);
  assert.deepEqual(splitAnnexB(hex('0102')), []);
  const avcc = joinNalUnits([sei, idr]);
  const noAud = annexBToAvcc(avccToAnnexB(avcc, cfg, false), (n) => (n[0]! & 0x1f) !== 9);
  assert.deepEqual(noAud, avcc);
  assert.deepEqual(annexBToAvcc(Buffer.concat([SC, sei])), joinNalUnits([sei]));
});

test('fuzz: random bytes into avcC/SPS parsers and NAL splitters give a result or a HazeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const b = Buffer.from(bytes);
      resultOrHazeError(() => parseAvcC(b));
      resultOrHazeError(() => parseH264Sps(b));
      resultOrHazeError(() => splitNalUnits(b));
      resultOrHazeError(() => avccToAnnexB(b, cfg, true));
      splitAnnexB(b); // never throws
      annexBToAvcc(b);
    }),
    { numRuns: 2000 },
  );
  // Deeper: a valid avcC / SPS start with random continuation.
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 1, max: 40 }), (tail, cut) => {
      resultOrHazeError(() => parseAvcC(Buffer.concat([AVCC.subarray(0, cut), tail])));
      const s = parseAvcC(AVCC).sps[0]!;
      resultOrHazeError(() => parseH264Sps(Buffer.concat([s.subarray(0, Math.min(cut, s.length)), tail])));
      resultOrHazeError(() => parseH264Sps(Buffer.concat([hex('67f4000d'), tail])));
    }),
    { numRuns: 2000 },
  );
});
