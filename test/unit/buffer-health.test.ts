// Buffer health (hub/buffer-health.ts): MistServer's getHealthJSON layout and issue rules, on
// synthetic streams with known key spacing, frame counts and arrival times; the hub's
// STREAM_BUFFER state machine (FULL once, DRY/RECOVER from health reports, EMPTY at the end).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIO_KEY_INTERVAL_MS, BufferHealthTracker, bufferHealth, summariseKeys } from '../../src/hub/buffer-health.js';
import { StreamHub, type BufferState } from '../../src/hub/stream-hub.js';
import type { AudioTrack, Packet, VideoTrack } from '../../src/media/types.js';

const video: VideoTrack = { id: 1, type: 'video', codec: 'H264', init: Buffer.alloc(0), bps: 0, lang: 'und', width: 320, height: 180, fpks: 30000 };
const audio: AudioTrack = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.alloc(0), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };

function pkt(trackId: number, timeMs: number, keyframe: boolean, bytes = 100, offsetMs = 0): Packet {
  return { trackId, timeMs, offsetMs, keyframe, data: Buffer.alloc(bytes) };
}

/**
 * `seconds` of 30 fps video with a key every `gop` frames and 48 kHz AAC (1024-sample frames),
 * each packet arriving `delay(t)` ms after its media time.
 */
function feed(tracker: BufferHealthTracker, seconds: number, gop: number, delay: (timeMs: number) => number = () => 0, startMs = 0): void {
  const frames = Math.round(seconds * 30);
  const aacMs = 1024 / 48;
  let a = 0;
  for (let i = 0; i < frames; i++) {
    const t = startMs + Math.round((i * 1000) / 30);
    while (startMs + a * aacMs <= t) {
      const at = startMs + Math.round(a * aacMs);
      tracker.packet(pkt(2, at, true, 50), at + delay(at));
      a++;
    }
    tracker.packet(pkt(1, t, i % gop === 0, i % gop === 0 ? 5000 : 1000, i % 3 === 1 ? 33 : 0), t + delay(t));
  }
}

test('summariseKeys: complete keys only (the last one still grows); zeros without any', () => {
  assert.deepEqual(summariseKeys([]).summary, { ms_min: 0, ms_max: 0, frame_ms_min: 0, frame_ms_max: 0, frames_min: 0, frames_max: 0 });
  assert.equal(summariseKeys([{ timeMs: 0, frames: 30, bytes: 1 }]).count, 0);
  const s = summariseKeys([
    { timeMs: 0, frames: 30, bytes: 3000 },
    { timeMs: 1000, frames: 60, bytes: 6000 },
    { timeMs: 3000, frames: 7, bytes: 100 },
  ]);
  assert.equal(s.count, 2);
  assert.deepEqual(s.summary, { ms_min: 1000, ms_max: 2000, frame_ms_min: 33, frame_ms_max: 33, frames_min: 30, frames_max: 60 });
  assert.equal(s.durationMs, 3000);
  assert.equal(s.frames, 90);
  assert.equal(s.bytes, 9000);
});

test('a steady H264+AAC stream: MistServer layout, no issues', () => {
  const tracker = new BufferHealthTracker(50_000);
  tracker.setTracks([video, audio]);
  feed(tracker, 10, 30, () => 40);
  const r = tracker.report({ maxKeepAwayMs: 45_000 });
  assert.equal(r.issues, undefined, JSON.stringify(r.json));
  assert.equal(r.settled, true);
  const j = r.json as Record<string, any>;
  assert.deepEqual(Object.keys(j), ['tracks', 'video_H264_320x180_30fps_0', 'audio_AAC_2ch_48000hz_1', 'jitter', 'buffer', 'maxkeepaway']);
  assert.deepEqual(j['tracks'], ['video_H264_320x180_30fps_0', 'audio_AAC_2ch_48000hz_1']);
  const v = j['video_H264_320x180_30fps_0'];
  assert.equal(v.idx, 0);
  assert.equal(v.id, 1);
  assert.equal(v.codec, 'H264');
  assert.equal(v.jitter, 0, 'a constant delay is no jitter');
  assert.deepEqual(v.keys, { ms_min: 1000, ms_max: 1000, frame_ms_min: 33, frame_ms_max: 33, frames_min: 30, frames_max: 30 });
  // 9 complete keys of 5000 + 29 * 1000 bytes over 9 s
  assert.equal(v.kbits, Math.floor((34_000 * 8) / 1024));
  assert.equal(v.buffer, 9967);
  assert.equal(v.width, 320);
  assert.equal(v.height, 180);
  assert.equal(v.fpks, 30000);
  assert.equal(v.efpks, 30000);
  assert.equal(v.fps, 30);
  assert.equal(v.bframes, true);
  const a = j['audio_AAC_2ch_48000hz_1'];
  assert.equal(a.codec, 'AAC');
  assert.equal(a.rate, 48000);
  assert.equal(a.channels, 2);
  assert.equal(a.keys.frame_ms_max, 21);
  assert.ok(a.keys.ms_min >= AUDIO_KEY_INTERVAL_MS && a.keys.ms_max < AUDIO_KEY_INTERVAL_MS + 25, JSON.stringify(a.keys));
  assert.ok(a.keys.frames_min >= 93, 'a key of audio every 2 s');
  assert.equal(j['jitter'], 0);
  assert.equal(j['buffer'], 9967);
  assert.equal(j['maxkeepaway'], 45_000);
  // summed rate: 34 000 bytes/s of video and about 94 * 50 bytes per 2 s of audio
  assert.ok(r.bytesPerSecond > 34_000 + 2000 && r.bytesPerSecond < 34_000 + 2500, String(r.bytesPerSecond));
});

test('issues: short keys, long frames, uneven keys, jitter, HLS without audio', () => {
  const short = new BufferHealthTracker(50_000);
  short.setTracks([video, audio]);
  feed(short, 4, 3);
  assert.match(short.report().issues ?? '', /unstable connection \(3 H264 frame\(s\) in key\)! /);

  const slow = new BufferHealthTracker(50_000);
  slow.setTracks([video]);
  for (let i = 0; i < 10; i++) slow.packet(pkt(1, i * 1000, i % 5 === 0), i * 1000);
  const s = slow.report();
  assert.match(s.issues ?? '', /unstable connection \(1000ms H264 frame\)! /);
  assert.match(s.issues ?? '', /unstable connection \(5 H264 frame\(s\) in key\)! /);

  const uneven = new BufferHealthTracker(50_000);
  uneven.setTracks([video]);
  const keys = [0, 30, 90, 120, 150];
  for (let i = 0; i <= 150; i++) uneven.packet(pkt(1, Math.round((i * 1000) / 30), keys.includes(i)), (i * 1000) / 30);
  assert.match(uneven.report().issues ?? '', /unstable key interval \(100% H264 variance\)! /);

  const jittery = new BufferHealthTracker(50_000);
  jittery.setTracks([video, audio]);
  // the publisher stalls for 0.8 s every 3 s, then catches up
  feed(jittery, 8, 30, (t) => (t % 3000 < 800 ? 800 - (t % 3000) : 0));
  const jr = jittery.report();
  assert.match(jr.issues ?? '', /High jitter \((\d+)ms\)! /);
  assert.ok((jr.json['jitter'] as number) > 500);

  const noAudio = bufferHealth([
    { track: video, idx: 0, keys: [], lastMs: -1, jitterMs: 0, bframes: false },
    { track: { ...video, id: 3, codec: 'HEVC' }, idx: 1, keys: [], lastMs: -1, jitterMs: 0, bframes: false },
  ]);
  assert.equal(noAudio.issues, 'HLS no audio!');
  // one track alone is no issue
  assert.equal(bufferHealth([{ track: video, idx: 0, keys: [], lastMs: -1, jitterMs: 0, bframes: false }]).issues, undefined);
});

test('the window: keys older than the DVR go, a re-initialised or vanished track starts over, reset forgets', () => {
  const t = new BufferHealthTracker(5000);
  t.setTracks([video, audio]);
  feed(t, 4, 3); // bad keys first
  feed(t, 12, 30, () => 0, 4000); // then good ones for longer than the window
  assert.equal(t.report().issues, undefined, 'bad keys left the window');
  const v = t.report().json['video_H264_320x180_30fps_0'] as Record<string, any>;
  assert.ok(v['buffer'] <= 6000, String(v['buffer']));
  t.setTracks([video]);
  assert.deepEqual(t.report().json['tracks'], ['video_H264_320x180_30fps_0']);
  assert.equal(t.idleMs(2, 0), -1, 'the audio track is forgotten');
  t.reset();
  assert.deepEqual(t.report().json['tracks'], []);
  t.packet(pkt(1, 0, true), 0);
  assert.deepEqual(t.report().json['tracks'], [], 'packets of unknown tracks are ignored');
});

test('settled: every audio and video track has two complete keys before its health counts', () => {
  const t = new BufferHealthTracker(50_000);
  assert.equal(t.report().settled, false, 'no tracks');
  t.setTracks([video, audio]);
  feed(t, 3, 30); // three video keys, but one complete audio key (2 s each)
  assert.equal(t.report().settled, false);
  feed(t, 3, 30, () => 0, 3000);
  assert.equal(t.report().settled, true);
});

test('idleMs: time since a track last got data', () => {
  const t = new BufferHealthTracker(50_000);
  t.setTracks([video, audio]);
  t.packet(pkt(1, 0, true), 1000);
  t.packet(pkt(2, 0, true), 3000);
  assert.equal(t.idleMs(1, 4000), 3000);
  assert.equal(t.idleMs(2, 4000), 1000);
});

test('the hub: FULL once per buffer, DRY and RECOVER from health reports, EMPTY at the end', () => {
  const hub = new StreamHub('h', { sourceGraceMs: 60_000 });
  const states: BufferState[] = [];
  hub.on('state', (s) => states.push(s));
  const run = (from: number): void => {
    hub.attachSource();
    hub.setTrack(video);
    hub.push(pkt(1, from, true));
  };
  run(0);
  assert.deepEqual(states, ['FULL']);
  hub.reportHealth(false); // FULL counts as healthy
  hub.reportHealth(true);
  hub.reportHealth(true);
  hub.reportHealth(false);
  assert.deepEqual(states, ['FULL', 'DRY', 'RECOVER']);
  hub.detachSource('gone');
  run(100); // a successor within the grace period: no new FULL
  assert.deepEqual(states, ['FULL', 'DRY', 'RECOVER']);
  hub.end('done');
  assert.deepEqual(states, ['FULL', 'DRY', 'RECOVER', 'EMPTY']);

  // a hub carrying on a buffer announced elsewhere starts in its state
  const next = new StreamHub('h2');
  const s2: BufferState[] = [];
  next.on('state', (s) => s2.push(s));
  next.continueBuffer('DRY', true);
  next.attachSource();
  next.setTrack(video);
  next.push(pkt(1, 0, true));
  next.reportHealth(false);
  assert.deepEqual(s2, ['RECOVER']);
  next.resetBuffer();
  next.detachSource('x');
  next.attachSource();
  next.setTrack(video);
  next.push(pkt(1, 10, true));
  assert.deepEqual(s2, ['RECOVER', 'FULL'], 'a reset buffer is FULL again');
  next.end('done');
});

test('taps see packets and track changes without counting as viewers', () => {
  const hub = new StreamHub('t');
  const seen: string[] = [];
  let idle = 0;
  hub.on('idle', () => idle++);
  const off = hub.tap({ onPacket: (p) => seen.push(`p${p.timeMs}`), onTracks: (t) => seen.push(`t${t.length}`), onEnd: (r) => seen.push(`end:${r}`) });
  hub.attachSource();
  hub.setTrack(video);
  hub.push(pkt(1, 5, true));
  assert.equal(hub.listenerCount, 0);
  hub.detachSource('left');
  off();
  hub.tap({ onPacket: () => {}, onTracks: () => {}, onEnd: (r) => seen.push(`end2:${r}`) });
  hub.end('bye');
  assert.deepEqual(seen, ['t1', 'p5', 't0', 'end2:bye']);
  assert.equal(idle, 0);
});
