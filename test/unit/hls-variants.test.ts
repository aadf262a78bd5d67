// The multivariant layout: one audio track muxed into each video variant (MistServer's
// `V_A`), several as an audio group of their own playlists, audio-only streams as one variant
// per audio track, tracks whose codec does not fit left out.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { playlistUris, variantPlan } from '../../src/outputs/hls-variants.js';
import type { AudioTrack, Track, VideoTrack } from '../../src/media/types.js';

const v = (id: number): VideoTrack => ({ id, type: 'video', codec: 'H264', init: Buffer.alloc(0), bps: 0, lang: 'und', width: 640, height: 360, fpks: 25000 });
const a = (id: number, lang = 'und', codec: AudioTrack['codec'] = 'AAC'): AudioTrack => ({ id, type: 'audio', codec, init: Buffer.alloc(0), bps: 0, lang, rate: 48000, channels: 2, size: 16 });
const fits = (t: Track): boolean => t.codec !== 'opus';

test('one audio track is muxed into every video variant', () => {
  const plan = variantPlan([v(1), a(2), v(3)], fits, 1000);
  assert.deepEqual(plan.variants.map((x) => [x.uri, x.tracks.map((t) => t.id), x.bandwidthBps]), [['0_1/index.m3u8', [1, 2], 1000], ['2_1/index.m3u8', [3, 2], 1000]]);
  assert.deepEqual(plan.audioGroups, []);
});

test('several audio tracks become a group; tracks that do not fit are left out', () => {
  const plan = variantPlan([v(1), a(2, 'eng'), a(3, 'und', 'opus'), a(4)], fits, 0);
  assert.deepEqual(plan.variants.map((x) => [x.uri, x.tracks.map((t) => t.id), x.audioGroup, x.bandwidthBps]), [['0_/index.m3u8', [1], 'aud', undefined]]);
  assert.deepEqual(plan.audioGroups[0]!.renditions.map((r) => [r.name, r.uri, r.default]), [['eng (1)', '_1/index.m3u8', true], ['Audio 2', '_3/index.m3u8', false]]);
  assert.deepEqual(playlistUris(plan), ['0_/index.m3u8', '_1/index.m3u8', '_3/index.m3u8']);
});

test('audio only: a variant per audio track; nothing that fits: no variants', () => {
  assert.deepEqual(variantPlan([a(5), a(6)], fits, 0).variants.map((x) => x.uri), ['_0/index.m3u8', '_1/index.m3u8']);
  assert.deepEqual(variantPlan([a(5, 'und', 'opus')], fits, 0).variants, []);
});
