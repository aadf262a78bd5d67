// media/audio-headers: MPEG audio, AC-3 and OpusHead readers on hand-built headers (every
// version/layer/mode branch and each rejection), on the first frame of streams ffmpeg encodes
// (rate and channels must be those ffmpeg was told to encode), and fuzzed with random bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { runOk, tmpDir, hex } from '../helpers.js';
import { AC3_SAMPLES_PER_FRAME, parseAc3Header, parseMpegAudioHeader, parseOpusHead } from '../../src/media/audio-headers.js';


test('MPEG audio header: versions, layers, modes and samples per frame', () => {
  const table: Array<[string, string, ReturnType<typeof parseMpegAudioHeader>]> = [
    ['fffb9064', 'MPEG-1 Layer III 44.1k joint stereo', { version: 1, layer: 3, rate: 44100, channels: 2, samples: 1152 }],
    ['fffb94c4', 'MPEG-1 Layer III 48k mono', { version: 1, layer: 3, rate: 48000, channels: 1, samples: 1152 }],
    ['fff38064', 'MPEG-2 Layer III 22.05k', { version: 2, layer: 3, rate: 22050, channels: 2, samples: 576 }],
    ['ffe388c4', 'MPEG-2.5 Layer III 8k mono', { version: 2.5, layer: 3, rate: 8000, channels: 1, samples: 576 }],
    ['fffd9800', 'MPEG-1 Layer II 32k stereo', { version: 1, layer: 2, rate: 32000, channels: 2, samples: 1152 }],
    ['fff59400', 'MPEG-2 Layer II 24k', { version: 2, layer: 2, rate: 24000, channels: 2, samples: 1152 }],
    ['ffff9080', 'MPEG-1 Layer I 44.1k dual channel', { version: 1, layer: 1, rate: 44100, channels: 2, samples: 384 }],
  ];
  for (const [raw, name, want] of table) assert.deepEqual(parseMpegAudioHeader(hex(raw)), want, name);
  for (const [raw, why] of [
    ['ffeb9064', 'reserved version'],
    ['fff99064', 'reserved layer'],
    ['fffb9c64', 'reserved sampling frequency'],
    ['fefb9064', 'no sync'],
    ['ff1b9064', 'sync cut at 8 bits'],
    ['fffb90', 'short'],
  ] as const) {
    assert.equal(parseMpegAudioHeader(hex(raw)), undefined, why);
  }
});

test('AC-3 header: acmod/lfeon with each optional mix-level field, rates, rejections', () => {
  // syncword, crc1, fscod|frmsizecod, bsid=8|bsmod=0, then acmod and the bits after it.
  const frame = (fscod: number, acmod: number, extraBits: number, lfe: number): Buffer => {
    const bits = (acmod << 13) | (lfe << (12 - extraBits)); // acmod(3) [mix levels] lfeon in 16 bits
    return Buffer.from([0x0b, 0x77, 0, 0, (fscod << 6) | 0x0e, 8 << 3, bits >> 8, bits & 0xff]);
  };
  const table: Array<[Buffer, string, number, number]> = [
    [frame(0, 1, 0, 0), '1/0 mono 48k', 48000, 1],
    [frame(1, 2, 2, 0), '2/0 with dsurmod, 44.1k', 44100, 2],
    [frame(2, 2, 2, 1), '2/0 + LFE, 32k', 32000, 3],
    [frame(0, 3, 2, 1), '3/0 with cmixlev + LFE', 48000, 4],
    [frame(0, 6, 2, 0), '2/2 with surmixlev', 48000, 4],
    [frame(0, 7, 4, 1), '3/2 with cmixlev + surmixlev + LFE (5.1)', 48000, 6],
    [frame(0, 0, 0, 1), '1+1 dual mono + LFE', 48000, 3],
  ];
  for (const [data, name, rate, channels] of table) {
    const h = parseAc3Header(data);
    assert.deepEqual([h?.rate, h?.channels, h?.samples], [rate, channels, AC3_SAMPLES_PER_FRAME], name);
  }
  // The LFE bit must come from the right place: a set bit just before or after it is not LFE.
  assert.equal(parseAc3Header(frame(0, 7, 3, 1))?.lfe, false);
  assert.equal(parseAc3Header(frame(0, 7, 5, 1))?.lfe, false);
  const ok = frame(0, 2, 2, 0);
  assert.equal(parseAc3Header(Buffer.from([...ok.subarray(0, 4), 0xce, ...ok.subarray(5)])), undefined, 'fscod 3');
  assert.equal(parseAc3Header(Buffer.from([...ok.subarray(0, 5), 16 << 3, ...ok.subarray(6)])), undefined, 'E-AC-3 bsid 16');
  assert.equal(parseAc3Header(ok.subarray(0, 7)), undefined, 'short');
  assert.equal(parseAc3Header(Buffer.from([0x0b, 0x78, ...ok.subarray(2)])), undefined, 'no syncword');
});

const opusHead = (channels: number, family: number, tail: number[]): Buffer =>
  Buffer.concat([Buffer.from('OpusHead'), Buffer.from([1, channels, 0x38, 0x01, 0x44, 0xac, 0, 0, 0x00, 0xff, family, ...tail])]);

test('OpusHead: fields, mapping table, rejections', () => {
  assert.deepEqual(parseOpusHead(opusHead(2, 0, [])), {
    version: 1,
    channels: 2,
    preSkip: 312,
    inputSampleRate: 44100,
    outputGain: -256,
    mappingFamily: 0,
    mapping: undefined,
  });
  const surround = parseOpusHead(opusHead(6, 1, [4, 2, 0, 4, 1, 2, 3, 5]))!;
  assert.deepEqual([surround.channels, surround.mappingFamily, surround.mapping?.streams, surround.mapping?.coupled], [6, 1, 4, 2]);
  assert.deepEqual([...surround.mapping!.channelMap], [0, 4, 1, 2, 3, 5]);
  // A mapping table cut short still gives the channel count, without a mapping.
  const cut = parseOpusHead(opusHead(6, 1, [4, 2, 0, 4]));
  assert.deepEqual([cut?.channels, cut?.mapping], [6, undefined]);
  assert.equal(parseOpusHead(opusHead(0, 0, [])), undefined, '0 channels');
  assert.equal(parseOpusHead(opusHead(2, 0, []).subarray(0, 18)), undefined, 'short');
  const bad = opusHead(2, 0, []);
  bad[4] = 0x78; // "OpusXead"
  assert.equal(parseOpusHead(bad), undefined, 'magic');
  // Reads at the view's offset, not the start of its ArrayBuffer.
  const inner = Buffer.concat([Buffer.from('xxxx'), opusHead(1, 0, [])]).subarray(4);
  assert.equal(parseOpusHead(inner)?.channels, 1);
});

test('first frames of ffmpeg-encoded MP3 / MP2 / AC-3 / Ogg Opus give the rate and channels encoded', async () => {
  const dir = tmpDir('haze-audio-headers-');
  // MP3 without the ID3 tag and Xing frame, so the file starts with an audio frame.
  const mp3 = ['-c:a', 'libmp3lame', '-write_xing', '0', '-id3v2_version', '0', '-f', 'mp3'];
  const cases: Array<{ name: string; args: string[]; rate: number; channels: number; layer?: number; samples?: number }> = [
    { name: 'a.mp3', args: mp3, rate: 44100, channels: 2, layer: 3, samples: 1152 },
    { name: 'b.mp3', args: mp3, rate: 22050, channels: 1, layer: 3, samples: 576 },
    { name: 'c.mp3', args: mp3, rate: 8000, channels: 1, layer: 3, samples: 576 },
    { name: 'd.mp2', args: ['-c:a', 'mp2', '-f', 'mp2'], rate: 32000, channels: 2, layer: 2, samples: 1152 },
    { name: 'a.ac3', args: ['-c:a', 'ac3', '-f', 'ac3'], rate: 48000, channels: 1 },
    { name: 'b.ac3', args: ['-c:a', 'ac3', '-f', 'ac3'], rate: 44100, channels: 2 },
    { name: 'c.ac3', args: ['-c:a', 'ac3', '-f', 'ac3'], rate: 32000, channels: 6 },
    // 3.1 (L R C LFE): acmod 3/0 with cmixlev before lfeon.
    { name: 'd.ac3', args: ['-c:a', 'ac3', '-channel_layout', '3.1', '-f', 'ac3'], rate: 48000, channels: 4 },
    { name: '1.opus', args: ['-c:a', 'libopus', '-f', 'ogg'], rate: 48000, channels: 1 },
    { name: '2.opus', args: ['-c:a', 'libopus', '-f', 'ogg'], rate: 48000, channels: 2 },
    { name: '6.opus', args: ['-c:a', 'libopus', '-f', 'ogg'], rate: 48000, channels: 6 },
  ];
  try {
    // One ffmpeg run writes every file (one process start instead of eleven).
    const outputs = cases.flatMap((c) => ['-ar', String(c.rate), '-ac', String(c.channels), ...c.args, path.join(dir, c.name)]);
    await runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=r=48000:d=0.1', ...outputs]);
    for (const c of cases) {
      const data = fs.readFileSync(path.join(dir, c.name));
      if (c.name.endsWith('.opus')) {
        // The first Ogg page (RFC 3533 §6) holds only the OpusHead packet: its lacing values add up to its size.
        const segments = data[26]!;
        let size = 0;
        for (let i = 0; i < segments; i++) size += data[27 + i]!;
        const h = parseOpusHead(data.subarray(27 + segments, 27 + segments + size));
        assert.equal(h?.channels, c.channels, c.name);
        assert.equal(h?.mappingFamily, c.channels > 2 ? 1 : 0, c.name);
        if (c.channels > 2) assert.equal(h?.mapping?.channelMap.length, c.channels, c.name);
      } else if (c.name.endsWith('.ac3')) {
        const h = parseAc3Header(data);
        assert.deepEqual([h?.rate, h?.channels], [c.rate, c.channels], c.name);
      } else {
        const h = parseMpegAudioHeader(data);
        assert.deepEqual([h?.rate, h?.channels, h?.layer, h?.samples], [c.rate, c.channels, c.layer, c.samples], c.name);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('fuzz: random bytes give a header or undefined, never an exception', () => {
  const mpegRates = new Set([44100, 48000, 32000, 22050, 24000, 16000, 11025, 12000, 8000]);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 32 }), fc.boolean(), (bytes, sync) => {
      const data = Buffer.from(bytes);
      // Half the cases start with a plausible sync so the header branches are reached.
      if (sync && data.length >= 2) {
        data[0] = bytes.length % 2 ? 0xff : 0x0b;
        data[1] = bytes.length % 2 ? data[1]! | 0xe0 : 0x77;
      }
      const m = parseMpegAudioHeader(data);
      if (m) assert.ok(mpegRates.has(m.rate) && (m.channels === 1 || m.channels === 2));
      const a = parseAc3Header(data);
      if (a) assert.ok([48000, 44100, 32000].includes(a.rate) && a.channels >= 1 && a.channels <= 6);
      const o = parseOpusHead(Buffer.concat([Buffer.from('OpusHead'), data]));
      if (o) assert.ok(o.channels >= 1 && (o.mapping === undefined || o.mapping.channelMap.length === o.channels));
    }),
    { numRuns: 3000 },
  );
});
