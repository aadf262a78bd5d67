// RFC 6381 codecs strings for tracks, against the strings ffmpeg/hls.js/browsers use for the
// same configurations.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { codecString } from '../../src/media/codec-string.js';
import { buildHvcC } from '../../src/media/hevc.js';
import type { AudioCodec, Track, VideoCodec } from '../../src/media/types.js';
import { hex } from '../helpers.js';

const v = (codec: VideoCodec, init: Buffer): Track => ({ type: 'video', id: 1, codec, init, bps: 0, lang: 'und', width: 0, height: 0, fpks: 0 });
const a = (codec: AudioCodec, init: Buffer = Buffer.alloc(0)): Track => ({ type: 'audio', id: 2, codec, init, bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 });

test('codec strings', () => {
  const avcc = hex('0164000dffe1001a6764000dacd941419f9f0110000003001000000303c0f142996001000468efbcb0fdf8f800');
  assert.equal(codecString(v('H264', avcc)), 'avc1.64000d');
  const hvcc = buildHvcC(
    [hex('40010c01ffff01600000030090000003000003003c959409')],
    [hex('42010101600000030090000003000003003ca00a080b9f796565924caf016808000003000800000300c840')],
    [hex('4401c172b46240')],
  );
  // Main profile (compat flags 0x60000000 reversed = 6), level 60, constraint byte 0x90.
  assert.equal(codecString(v('HEVC', hvcc)), 'hvc1.1.6.L60.90');
  assert.equal(codecString(v('HEVC', hvcc), { hevcEntry: 'hev1' }), 'hev1.1.6.L60.90');
  assert.equal(codecString(a('AAC', hex('1190'))), 'mp4a.40.2');
  assert.equal(codecString(a('AAC', hex('2b118800'))), 'mp4a.40.5');
  assert.equal(codecString(a('AAC', hex('eb098800'))), 'mp4a.40.29');
  assert.equal(codecString(a('AAC')), 'mp4a.40.2');
  assert.equal(codecString(a('MP3')), 'mp4a.6B');
  assert.equal(codecString(a('opus')), 'opus');
  assert.equal(codecString(a('AC3')), 'ac-3');
  assert.equal(codecString(a('FLAC')), 'flac');
  // av1C: marker/version 0x81, profile 0 level 8 (4.0), Main tier, 8-bit.
  assert.equal(codecString(v('AV1', hex('81080c00'))), 'av01.0.08M.08');
  // 10-bit high tier level 13.
  assert.equal(codecString(v('AV1', hex('010dc0'.replace(/^01/, '81') + '00'))), 'av01.0.13H.10');
  // vpcC (FullBox version 1): profile 0, level 31, 8-bit.
  assert.equal(codecString(v('VP9', hex('01000000001f8002020200'))), 'vp09.00.31.08');
  assert.equal(codecString(v('VP9', Buffer.alloc(0))), 'vp09.00.40.08');
  assert.equal(codecString(v('VP8', Buffer.alloc(0))), 'vp8');
  // Malformed init data falls back instead of throwing.
  assert.equal(codecString(v('HEVC', hex('02'))), 'hvc1.1.6.L93.B0');
  assert.equal(codecString(a('AAC', hex('00'))), 'mp4a.40.2');
});
