// RIFF/WAVE headers for live streams (sizes 0xFFFFFFFF) and PCM byte-order conversion: exact
// header bytes, ffmpeg's WAV files read back, Haze's live header + ffmpeg's samples decoded by
// ffmpeg to the same audio, FLV linear PCM / G.711 demuxed to Haze's signed big-endian PCM and
// written back out as WAV. Fuzzed: random bytes give a header or a HazeError; any chunk split of
// a capture gives the same header and samples; the PCM conversion is its own inverse.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import {
  WAVE_FORMAT_ALAW,
  WAVE_FORMAT_MULAW,
  WAVE_FORMAT_PCM,
  WAV_UNKNOWN_SIZE,
  WavReader,
  readWav,
  readWavHeader,
  writeWavHeader,
} from '../../src/containers/wav/wav.js';
import { convertPcmByteOrder, swapSampleBytes } from '../../src/containers/wav/pcm.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { WavFeedWriter } from '../../src/outputs/audio-writers.js';
import type { AudioTrack, Packet } from '../../src/media/types.js';
import { HazeError } from '../../src/util/errors.js';
import { isHaze, resultOrHazeError, runOk, tmpDir } from '../helpers.js';

const isCode = (code: string) => (e: unknown) => e instanceof HazeError && e.code === code;

test('live PCM header: RIFF and data sizes 0xFFFFFFFF, 16-byte fmt chunk', () => {
  const h = writeWavHeader({ formatTag: WAVE_FORMAT_PCM, channels: 2, sampleRate: 44100, bitsPerSample: 16 });
  assert.equal(
    h.toString('hex'),
    Buffer.from('RIFF').toString('hex') + 'ffffffff' + Buffer.from('WAVEfmt ').toString('hex') + '10000000' +
      '0100' + '0200' + '44ac0000' + '10b10200' + '0400' + '1000' + Buffer.from('data').toString('hex') + 'ffffffff',
  );
  const back = readWavHeader(h)!;
  assert.deepEqual(back, { formatTag: 1, channels: 2, sampleRate: 44100, byteRate: 176400, blockAlign: 4, bitsPerSample: 16, dataBytes: WAV_UNKNOWN_SIZE, dataOffset: 44 });
});

test('live A-law / µ-law header: WAVEFORMATEX with cbSize 0 and a fact chunk', () => {
  for (const tag of [WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW]) {
    const h = writeWavHeader({ formatTag: tag, channels: 1, sampleRate: 8000, bitsPerSample: 8 });
    assert.equal(h.length, 12 + 8 + 18 + 12 + 8);
    assert.equal(h.readUInt32LE(16), 18);
    assert.equal(h.readUInt16LE(20), tag);
    assert.equal(h.readUInt16LE(36), 0, 'cbSize');
    assert.equal(h.toString('latin1', 38, 42), 'fact');
    assert.equal(h.readUInt32LE(46), WAV_UNKNOWN_SIZE);
    assert.deepEqual(readWavHeader(h), { formatTag: tag, channels: 1, sampleRate: 8000, byteRate: 8000, blockAlign: 1, bitsPerSample: 8, dataBytes: WAV_UNKNOWN_SIZE, dataOffset: 58 });
  }
  // a known length fills in the sizes
  const h = writeWavHeader({ formatTag: WAVE_FORMAT_PCM, channels: 1, sampleRate: 8000, bitsPerSample: 16 }, 1000);
  assert.deepEqual([h.readUInt32LE(4), h.readUInt32LE(40)], [36 + 1000, 1000]);
  assert.throws(() => writeWavHeader({ formatTag: 1, channels: 0, sampleRate: 8000, bitsPerSample: 16 }), isHaze);
  assert.throws(() => writeWavHeader({ formatTag: 1, channels: 1, sampleRate: 8000, bitsPerSample: 12 }), isHaze);
});

test('readWavHeader: incomplete, not RIFF, data before fmt, oversized chunks', () => {
  const h = writeWavHeader({ formatTag: WAVE_FORMAT_PCM, channels: 1, sampleRate: 8000, bitsPerSample: 16 });
  for (let n = 0; n < h.length; n++) assert.equal(readWavHeader(h.subarray(0, n)), undefined, `${n} bytes`);
  assert.throws(() => readWavHeader(Buffer.from('RIFX\0\0\0\0WAVE')), isCode('HAZE_ERR_MALFORMED'));
  assert.throws(() => readWavHeader(Buffer.from('RIFF\0\0\0\0WAVEdata\0\0\0\0', 'latin1')), isCode('HAZE_ERR_MALFORMED'));
  assert.throws(() => readWavHeader(Buffer.from('RIFF\0\0\0\0WAVELIST\xff\xff\xff\x7f', 'latin1')), isCode('HAZE_ERR_TOO_LARGE'));
  const shortFmt = Buffer.from('RIFF\0\0\0\0WAVEfmt \x04\0\0\0abcd', 'latin1');
  assert.throws(() => readWavHeader(shortFmt), isCode('HAZE_ERR_MALFORMED'));
});

test('PCM conversion: 16/24-bit byte swap, 8-bit sign flip, each its own inverse', () => {
  assert.deepEqual([...convertPcmByteOrder(Buffer.from([0x12, 0x34, 0xab, 0xcd]), 16)], [0x34, 0x12, 0xcd, 0xab]);
  assert.deepEqual([...convertPcmByteOrder(Buffer.from([1, 2, 3, 4, 5, 6, 7]), 24)], [3, 2, 1, 6, 5, 4, 7]);
  assert.deepEqual([...convertPcmByteOrder(Buffer.from([0x00, 0x80, 0xff, 0x7f]), 8)], [0x80, 0x00, 0x7f, 0xff]);
  assert.deepEqual([...swapSampleBytes(Buffer.from([1, 2, 3]), 2)], [2, 1, 3], 'a cut-off sample stays');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(8, 16, 24, 32), (u, bits) => {
      assert.deepEqual([...convertPcmByteOrder(convertPcmByteOrder(u, bits), bits)], [...u]);
    }),
    { numRuns: 500 },
  );
});

test('fuzz: random bytes give a WAV header, undefined or a HazeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (u, prefix) => {
      const b = Buffer.from(u);
      if (prefix && b.length >= 12) {
        b.write('RIFF', 0, 'latin1');
        b.write('WAVE', 8, 'latin1');
      }
      resultOrHazeError(() => readWavHeader(b));
      resultOrHazeError(() => new WavReader().push(b));
    }),
    { numRuns: 3000 },
  );
});

describe('WAV against ffmpeg', () => {
  const dir = tmpDir('haze-wav-');
  const files: Record<string, string> = {};
  const codecs = [
    ['pcm_s16le', '44100', 2],
    ['pcm_u8', '22050', 1],
    ['pcm_alaw', '8000', 1],
    // ffmpeg's FLV muxer flags G.711 as mono whatever it carries
    ['pcm_mulaw', '8000', 1],
  ] as const;
  before(async () => {
    const args = ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=f=440:r=44100:d=0.5'];
    for (const [c, rate, ch] of codecs) {
      files[c] = path.join(dir, `${c}.wav`);
      files[`${c}.flv`] = path.join(dir, `${c}.flv`);
      args.push('-ar', rate, '-ac', String(ch), '-c:a', c, files[c]!);
      args.push('-ar', rate, '-ac', String(ch), '-c:a', c, files[`${c}.flv`]!);
    }
    await runOk('ffmpeg', args);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test("ffmpeg's WAV files: format, rate, channels and the data chunk (skipping its LIST chunk)", () => {
    const tags: Record<string, [number, number]> = { pcm_s16le: [1, 16], pcm_u8: [1, 8], pcm_alaw: [6, 8], pcm_mulaw: [7, 8] };
    for (const [c, rate, ch] of codecs) {
      const { header, data } = readWav(fs.readFileSync(files[c]!));
      assert.deepEqual([header.formatTag, header.bitsPerSample, header.sampleRate, header.channels], [...tags[c]!, Number(rate), ch], c);
      assert.equal(data.length, header.dataBytes);
      assert.equal(data.length % header.blockAlign, 0);
    }
  });

  test("Haze's live header in front of ffmpeg's samples decodes to the same audio", async () => {
    for (const [c, rate, ch] of codecs) {
      const { header, data } = readWav(fs.readFileSync(files[c]!));
      const out = path.join(dir, `haze-${c}.wav`);
      fs.writeFileSync(out, Buffer.concat([writeWavHeader({ formatTag: header.formatTag, channels: ch, sampleRate: Number(rate), bitsPerSample: header.bitsPerSample }), data]));
      const probe = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,sample_rate,channels', '-of', 'json', out])).toString()) as { streams: Array<Record<string, unknown>> };
      assert.deepEqual(probe.streams[0], { codec_name: c, sample_rate: rate, channels: ch });
      const md5 = async (f: string) => (await runOk('ffmpeg', ['-v', 'error', '-i', f, '-f', 'md5', '-'])).toString();
      assert.equal(await md5(out), await md5(files[c]!), c);
    }
  });

  test('FLV PCM (SoundFormat 3, 8/16-bit) and G.711 demux to signed big-endian PCM / G.711 bytes; the WAV writer restores the WAV samples', () => {
    for (const [c, rate, ch] of codecs) {
      const flv = parseFlvFile(fs.readFileSync(files[`${c}.flv`]!));
      const track = flv.tracks.find((t): t is AudioTrack => t.type === 'audio')!;
      const want = { pcm_s16le: ['PCM', 16], pcm_u8: ['PCM', 8], pcm_alaw: ['ALAW', 8], pcm_mulaw: ['ULAW', 8] }[c];
      assert.deepEqual([track.codec, track.size, track.rate, track.channels], [...want, Number(rate), ch], c);
      const wav = readWav(fs.readFileSync(files[c]!)).data;
      const joined = Buffer.concat(flv.packets.map((p) => p.data));
      assert.equal(joined.length, wav.length, `${c}: every sample`);
      if (c === 'pcm_s16le') assert.ok(joined.equals(swapSampleBytes(wav, 2)), 'big-endian in Haze');
      else if (c === 'pcm_u8') assert.ok(joined.equals(convertPcmByteOrder(wav, 8)), 'signed in Haze');
      else assert.ok(joined.equals(wav), 'G.711 bytes as they are');
      // the live WAV writer gives back ffmpeg's WAV sample bytes
      const w = new WavFeedWriter();
      w.setTracks(flv.tracks);
      const hdr = readWavHeader(w.header())!;
      assert.equal(hdr.dataBytes, WAV_UNKNOWN_SIZE);
      const out = Buffer.concat(flv.packets.map((p: Packet) => w.packet(p)!));
      assert.ok(out.equals(wav), `${c}: WAV samples restored`);
    }
  });

  test('fuzz: any chunk split of a capture gives the same header and samples as the whole', () => {
    const whole = fs.readFileSync(files['pcm_alaw']!);
    const ref = readWav(whole);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: whole.length - 1 }), { maxLength: 20 }), (cuts) => {
        const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), whole.length];
        const r = new WavReader();
        const data: Buffer[] = [];
        for (let i = 0; i + 1 < points.length; i++) data.push(...r.push(Buffer.from(whole.subarray(points[i], points[i + 1]))));
        assert.deepEqual(r.header, ref.header);
        assert.ok(Buffer.concat(data).equals(ref.data));
      }),
      { numRuns: 200 },
    );
  });
});
