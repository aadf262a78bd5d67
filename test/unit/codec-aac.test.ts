// AAC helpers: AudioSpecificConfig parse/build round trips on a table of configs, small.flv's
// ASC, ADTS headers against the bytes ffmpeg's ADTS muxer writes, and fuzzing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { adtsHeader, buildAsc, defaultAsc, parseAsc, writeAdtsHeader } from '../../src/media/aac.js';
import { HazeError } from '../../src/util/errors.js';
import { hex, isHaze } from '../helpers.js';


test('small.flv ASC (with a trailing SBR sync extension): AAC-LC 48 kHz stereo', () => {
  const a = parseAsc(hex('119056e500'));
  assert.deepEqual(
    [a.objectType, a.coreObjectType, a.samplingIndex, a.sampleRate, a.channelConfig, a.samplesPerFrame, a.sbr],
    [2, 2, 3, 48000, 2, 1024, false],
  );
});

test('ASC round trips: build(parse(raw)) === raw', () => {
  const table: Array<[string, string, Partial<ReturnType<typeof parseAsc>>]> = [
    ['1190', 'LC 48k stereo', { objectType: 2, sampleRate: 48000, channelConfig: 2 }],
    ['1210', 'LC 44.1k stereo', { objectType: 2, sampleRate: 44100, channelConfig: 2 }],
    ['1188', 'LC 48k mono', { objectType: 2, sampleRate: 48000, channelConfig: 1 }],
    ['11b0', 'LC 48k 5.1', { objectType: 2, channelConfig: 6 }],
    ['1194', 'LC 48k stereo, 960-sample frames', { samplesPerFrame: 960 }],
    ['2b118800', 'HE-AAC explicit: 24k core, 48k SBR', { objectType: 5, coreObjectType: 2, sampleRate: 24000, extensionSampleRate: 48000, sbr: true }],
    ['eb098800', 'HE-AACv2 explicit', { objectType: 29, coreObjectType: 2, ps: true, sbr: true, sampleRate: 24000, extensionSampleRate: 48000, channelConfig: 1 }],
    ['17804e2010', 'LC at an explicit 40000 Hz', { samplingIndex: 15, sampleRate: 40000, channelConfig: 2 }],
    ['f94640', 'USAC (object type 42, escaped)', { objectType: 42, sampleRate: 48000 }],
  ];
  for (const [raw, name, want] of table) {
    const a = parseAsc(hex(raw));
    for (const [k, v] of Object.entries(want)) assert.equal(a[k as keyof typeof a], v, `${name}: ${k}`);
    assert.equal(buildAsc(a).toString('hex'), raw, name);
  }
  assert.equal(buildAsc({ objectType: 2, sampleRate: 22050, channelConfig: 2 }).toString('hex'), '1390');
});

test('ASC errors are typed', () => {
  assert.throws(() => parseAsc(hex('11')), isHaze);
  assert.throws(() => parseAsc(hex('0000')), isHaze, 'object type 0');
  assert.throws(() => parseAsc(hex('16')), isHaze);
  assert.throws(() => parseAsc(hex('16900000')), isHaze, 'reserved sampling index 13');
  assert.throws(() => buildAsc({ objectType: 0, sampleRate: 48000, channelConfig: 2 }), isHaze);
});

test('ADTS header: the bytes ffmpeg writes for small.flv\'s first frame', () => {
  // `ffmpeg -i small.flv -map 0:a -c copy -f adts -` starts with these 7 bytes; frame 1 is 132 bytes raw.
  const asc = parseAsc(hex('119056e500'));
  assert.deepEqual(adtsHeader(asc, 132), hex('fff14c80117ffc'));
  // Field by field for another config: LC 44.1k mono, 1000-byte frame.
  const h = adtsHeader(parseAsc(hex('1208')), 1000);
  assert.equal(h.readUInt16BE(0) >> 4, 0xfff);
  assert.equal((h[2]! >> 6) + 1, 2, 'profile = object type - 1');
  assert.equal((h[2]! >> 2) & 0xf, 4, 'sampling index 44.1k');
  assert.equal(((h[2]! & 1) << 2) | (h[3]! >> 6), 1, 'channel configuration');
  assert.equal(((h[3]! & 3) << 11) | (h[4]! << 3) | (h[5]! >> 5), 1007, 'frame length includes the header');
  // Explicit HE-AAC travels as LC at the core rate (decoders find SBR implicitly).
  const he = adtsHeader(parseAsc(hex('2b118800')), 10);
  assert.equal(he[2]! >> 6, 1);
  assert.equal((he[2]! >> 2) & 0xf, 6);
  const out = Buffer.alloc(9);
  assert.equal(writeAdtsHeader(defaultAsc(48000, 2), 132, out, 2), 9);
  assert.deepEqual(out.subarray(2), hex('fff14c80117ffc'));
  assert.throws(() => adtsHeader(parseAsc(hex('1190')), 8200), isHaze);
  assert.throws(() => adtsHeader(parseAsc(hex('f94640')), 10), isHaze, 'USAC has no ADTS profile');
});

test('fuzz: random bytes into parseAsc give a result or a HazeError; results rebuild', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 16 }), (bytes) => {
      try {
        const a = parseAsc(bytes);
        assert.ok(a.sampleRate > 0);
        // What parsed can be built again and parses to the same fields.
        const again = parseAsc(buildAsc(a));
        assert.deepEqual([again.objectType, again.sampleRate, again.channelConfig], [a.objectType, a.sampleRate, a.channelConfig]);
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }),
    { numRuns: 3000 },
  );
});
