// Push acceptance rules (reference §5.4) and track selection (Appendix B).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkPush, parsePushSource } from '../../src/inputs/push-policy.js';
import { selectTracks } from '../../src/outputs/track-select.js';
import { FLV_CAPABILITY } from '../../src/outputs/flv-writer.js';
import { TS_CAPABILITY } from '../../src/outputs/ts-writer.js';
import { isHazeError } from '../../src/util/errors.js';
import type { Track } from '../../src/media/types.js';

async function refusal(p: Promise<void>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    assert.ok(isHazeError(err), 'refusals are HazeErrors');
    return err.code;
  }
}

describe('push policy', () => {
  it('parses push sources', () => {
    assert.deepEqual(parsePushSource('push://'), { hosts: [], password: '' });
    assert.deepEqual(parsePushSource('push://10.0.0.0/8,host.example@s3cret'), { hosts: ['10.0.0.0/8', 'host.example'], password: 's3cret' });
    assert.equal(parsePushSource('/media/file.mp4'), undefined);
    assert.equal(parsePushSource('push://INTERNAL_ONLY:x'), undefined);
  });

  it('applies hosts, CIDR blocks, host names and passwords', async () => {
    assert.equal(await refusal(checkPush('live', 'push://', '203.0.113.9', '')), 'accepted');
    assert.equal(await refusal(checkPush('live', undefined, '127.0.0.1', '')), 'HAZE_ERR_REFUSED');
    assert.equal(await refusal(checkPush('vod', '/media/a.mp4', '127.0.0.1', '')), 'HAZE_ERR_REFUSED');
    assert.equal(await refusal(checkPush('live', 'push://127.0.0.1', '127.0.0.1', 'live')), 'accepted');
    assert.equal(await refusal(checkPush('live', 'push://127.0.0.1', '203.0.113.9', 'live')), 'HAZE_ERR_REFUSED');
    assert.equal(await refusal(checkPush('live', 'push://localhost', '::1', '')), 'accepted');
    assert.equal(await refusal(checkPush('live', 'push://198.51.100.0/24', '198.51.100.77', '')), 'accepted');
    assert.equal(await refusal(checkPush('live', 'push://198.51.100.0/24', '198.51.101.77', '')), 'HAZE_ERR_REFUSED');
    // a password admits from anywhere; a wrong one with no host list is refused
    assert.equal(await refusal(checkPush('live', 'push://127.0.0.1@pw', '203.0.113.9', 'pw')), 'accepted');
    assert.equal(await refusal(checkPush('live', 'push://@pw', '203.0.113.9', 'nope')), 'HAZE_ERR_AUTH');
    assert.equal(await refusal(checkPush('live', 'push://@pw', '203.0.113.9', 'pw')), 'accepted');
  });
});

describe('track selection', () => {
  const common = { init: Buffer.alloc(0), bps: 0, lang: 'und' };
  const tracks: Track[] = [
    { ...common, id: 1, type: 'video', codec: 'H264', width: 1280, height: 720, fpks: 30000 },
    { ...common, id: 2, type: 'audio', codec: 'AAC', rate: 48000, channels: 2, size: 16 },
    { ...common, id: 3, type: 'video', codec: 'HEVC', width: 640, height: 360, fpks: 30000 },
    { ...common, id: 7, type: 'audio', codec: 'opus', rate: 48000, channels: 2, size: 16, lang: 'nld' },
  ];
  const ids = (q: Record<string, string>, cap = TS_CAPABILITY): number[] => [...selectTracks(tracks, q, cap).ids].sort();

  it('defaults to the first carried track of each type', () => {
    assert.deepEqual(ids({}), [1, 2]);
    assert.equal(selectTracks(tracks, {}, TS_CAPABILITY).syncTrackId, 1);
  });
  it('none, all, index, original id, codec, language, negation and narrowing', () => {
    assert.deepEqual(ids({ audio: 'none' }), [1]);
    assert.deepEqual(ids({ video: '-1', audio: 'all' }), [2, 7]);
    assert.deepEqual(ids({ video: '2' }), [2, 3]);
    assert.deepEqual(ids({ video: 'i3', audio: 'i7' }), [3, 7]);
    assert.deepEqual(ids({ video: 'hevc', audio: 'opus' }), [3, 7]);
    assert.deepEqual(ids({ audio: 'nld' }), [1, 7]);
    assert.deepEqual(ids({ audio: '*,!aac' }), [1, 7]);
    assert.deepEqual(ids({ video: 'all,|h264' }), [1, 2]);
  });
  it('keeps one track per type for FLV', () => {
    assert.deepEqual(ids({ video: 'all', audio: 'all' }, FLV_CAPABILITY), [1, 2]);
  });
});
