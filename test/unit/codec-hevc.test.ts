// HEVC helpers: hvcC/SPS against parameter sets libx265 wrote for a 320x180 clip (ffprobe
// reports 320x180; the coded size is 320x184 with a conformance window), hvcC building,
// Annex B conversion with AUD and parameter sets on IRAP pictures, and fuzzing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildHvcC, hevcAnnexBSize, hevcToAnnexB, isHevcIrap, parseHevcSps, parseHvcC, writeHevcAnnexB } from '../../src/media/hevc.js';
import { joinNalUnits } from '../../src/media/nal-units.js';
import { hex, isHaze, resultOrHazeError } from '../helpers.js';

// From `ffmpeg -f lavfi -i testsrc2=size=320x180 -c:v libx265 x.mp4` (hvcC arrays).
const VPS = hex('40010c01ffff01600000030090000003000003003c959409');
const SPS = hex('42010101600000030090000003000003003ca00a080b9f796565924caf016808000003000800000300c840');
const PPS = hex('4401c172b46240');
/** The first 22 bytes of libx265's hvcC (the record header before numOfArrays). */
const X265_HEADER = hex('0101600000009000000000003cf000fcfdf8f800000f');
const SC = hex('00000001');
const AUD = hex('00000001460150');

test('HEVC SPS: 320x180 through the conformance window, Main profile, level 2', () => {
  const s = parseHevcSps(SPS);
  assert.equal(s.width, 320);
  assert.equal(s.height, 180);
  assert.equal(s.profileIdc, 1);
  assert.equal(s.levelIdc, 60);
  assert.equal(s.tierFlag, 0);
  assert.equal(s.chromaFormatIdc, 1);
  assert.equal(s.bitDepthLuma, 8);
  assert.equal(s.maxSubLayers, 1);
  assert.throws(() => parseHevcSps(PPS), isHaze);
});

test('buildHvcC matches libx265 header fields; parseHvcC reads it back', () => {
  const hvcc = buildHvcC([VPS], [SPS], [PPS]);
  assert.deepEqual(hvcc.subarray(0, 22), X265_HEADER);
  const c = parseHvcC(hvcc);
  assert.equal(c.profileIdc, 1);
  assert.equal(c.levelIdc, 60);
  assert.equal(c.compatibilityFlags, 0x60000000);
  assert.deepEqual(c.constraintFlags, hex('900000000000'));
  assert.equal(c.nalLengthSize, 4);
  assert.equal(c.chromaFormat, 1);
  assert.equal(c.numTemporalLayers, 1);
  assert.equal(c.temporalIdNested, true);
  assert.deepEqual(c.arrays.map((a) => [a.nalType, a.complete, a.nalus.length]), [[32, true, 1], [33, true, 1], [34, true, 1]]);
  assert.deepEqual([c.vps, c.sps, c.pps], [[VPS], [SPS], [PPS]]);
  // An array of another type (SEI, as x265 adds) is kept in `arrays` only.
  const withSei = Buffer.concat([X265_HEADER, hex('01'), hex('270001000450010203')]);
  const c2 = parseHvcC(withSei);
  assert.deepEqual(c2.arrays.map((a) => a.nalType), [39]);
  assert.deepEqual(c2.sps, []);
  assert.throws(() => parseHvcC(Buffer.concat([X265_HEADER, hex('01'), hex('a1ffff')])), isHaze, 'count past the end');
});

test('hevcToAnnexB: AUD (type 35) first, VPS/SPS/PPS on IRAP keyframes that lack them', () => {
  const cfg = parseHvcC(buildHvcC([VPS], [SPS], [PPS]));
  const idr = hex('2601af0011'); // IDR_W_RADL (19)
  const cra = hex('2a01af0022'); // CRA (21)
  const trail = hex('0201d00033'); // TRAIL_R (1)
  const prefixSei = hex('4e010501');
  assert.deepEqual(hevcToAnnexB(joinNalUnits([prefixSei, idr]), cfg, true), Buffer.concat([AUD, SC, VPS, SC, SPS, SC, PPS, SC, prefixSei, SC, idr]));
  assert.deepEqual(hevcToAnnexB(joinNalUnits([trail]), cfg, false), Buffer.concat([AUD, SC, trail]));
  // An IRAP picture gets parameter sets even when the keyframe flag was lost.
  assert.deepEqual(hevcToAnnexB(joinNalUnits([cra]), cfg, false), Buffer.concat([AUD, SC, VPS, SC, SPS, SC, PPS, SC, cra]));
  // In-band parameter sets and an AUD of its own: nothing added.
  const inBand = joinNalUnits([hex('460110'), VPS, SPS, PPS, idr]);
  assert.deepEqual(hevcToAnnexB(inBand, cfg, true), Buffer.concat([SC, hex('460110'), SC, VPS, SC, SPS, SC, PPS, SC, idr]));
  assert.equal(hevcAnnexBSize(joinNalUnits([trail]), cfg, false), 7 + 4 + trail.length);
  const out = Buffer.alloc(20);
  assert.equal(writeHevcAnnexB(joinNalUnits([trail]), cfg, false, out, 2), 2 + 7 + 4 + trail.length);
  assert.throws(() => hevcToAnnexB(hex('00000010aa'), cfg, true), isHaze);
  assert.ok(isHevcIrap(19) && isHevcIrap(21) && !isHevcIrap(1) && !isHevcIrap(32));
});

test('fuzz: random bytes into hvcC/SPS parsers give a result or a HazeError', () => {
  const cfg = parseHvcC(buildHvcC([VPS], [SPS], [PPS]));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const b = Buffer.from(bytes);
      resultOrHazeError(() => parseHvcC(b));
      resultOrHazeError(() => parseHevcSps(b));
      resultOrHazeError(() => hevcToAnnexB(b, cfg, true));
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 1, max: 40 }), (tail, cut) => {
      resultOrHazeError(() => parseHvcC(Buffer.concat([X265_HEADER.subarray(0, Math.min(cut, 22)), tail])));
      resultOrHazeError(() => parseHevcSps(Buffer.concat([SPS.subarray(0, cut), tail])));
      resultOrHazeError(() => buildHvcC([VPS], [Buffer.concat([SPS.subarray(0, cut), tail])], [PPS]));
    }),
    { numRuns: 2000 },
  );
});
