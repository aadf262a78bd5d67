// Segment start marks: the publisher's hub marks a sync keyframe at least SEGMENT_TARGET_MS
// after the previous mark (a new epoch after a track change or a new source), and a relay
// carries the marks and the hub's clock over a real socket, so a relay hub in another worker
// cuts the same segments with the same numbers.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { SEGMENT_TARGET_MS, StreamHub } from '../../src/hub/stream-hub.js';
import { playDtscInto, serveDtscSocket } from '../../src/protocols/dtsc/relay.js';
import type { FragmentMark, Packet, Track } from '../../src/media/types.js';
import { Logger } from '../../src/util/log.js';
import { sleep, tmpDir } from '../helpers.js';

const video: Track = { id: 1, type: 'video', codec: 'H264', init: Buffer.from([1, 0x64, 0, 0x1f]), bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 };
const audio: Track = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.from([0x11, 0x90]), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };

/** One second GOPs of 25 fps video with audio every 20 ms, from `fromMs` for `seconds`. */
function packets(fromMs: number, seconds: number): Packet[] {
  const out: Packet[] = [];
  for (let t = fromMs; t < fromMs + seconds * 1000; t += 20) {
    if ((t - fromMs) % 40 === 0) out.push({ trackId: 1, timeMs: t, offsetMs: 0, keyframe: (t - fromMs) % 1000 === 0, data: Buffer.alloc(50, 1) });
    out.push({ trackId: 2, timeMs: t, offsetMs: 0, keyframe: true, data: Buffer.alloc(8, 2) });
  }
  return out;
}

function marksOf(list: Packet[]): Array<{ t: number } & FragmentMark> {
  return list.filter((p) => p.fragment).map((p) => ({ t: p.timeMs, ...p.fragment! }));
}

describe('segment start marks', () => {
  it('mark sync keyframes at least the target apart, numbered consecutively', () => {
    const hub = new StreamHub('m');
    hub.attachSource();
    hub.setTrack(video);
    hub.setTrack(audio);
    const list = packets(0, 9);
    for (const p of list) hub.push(p);
    assert.equal(SEGMENT_TARGET_MS, 1900);
    assert.deepEqual(marksOf(list), [0, 2000, 4000, 6000, 8000].map((t, index) => ({ t, index, epoch: 0 })));
    assert.ok(list.every((p) => !p.fragment || (p.trackId === 1 && p.keyframe)), 'only video keyframes carry marks');
  });

  it('open a new epoch at the first keyframe after a new source, whatever the time since the last mark', () => {
    const hub = new StreamHub('m', { sourceGraceMs: 10_000 });
    hub.attachSource();
    hub.setTrack(video);
    hub.setTrack(audio);
    const first = packets(0, 3);
    for (const p of first) hub.push(p);
    hub.detachSource('gone');
    hub.attachSource();
    hub.setTrack(video);
    hub.setTrack(audio);
    const second = packets(0, 3); // the new publisher starts its clock at 0 again; the hub shifts it
    for (const p of second) hub.push(p);
    assert.deepEqual(marksOf(first), [{ t: 0, index: 0, epoch: 0 }, { t: 2000, index: 1, epoch: 0 }]);
    const next = marksOf(second);
    assert.equal(next[0]!.index, 2);
    assert.equal(next[0]!.epoch, 1);
    assert.ok(next[0]!.t > 2980, 'after the previous source, on the shifted timeline');
    hub.end('done');
  });

  it('travel with the packets and the clock through a relay', async () => {
    const dir = tmpDir('haze-marks-');
    const sock = path.join(dir, 'w.sock');
    const log = new Logger({ proto: 'test' });
    const source = new StreamHub('s');
    source.attachSource();
    source.setTrack(video);
    source.setTrack(audio);
    const before = packets(0, 3);
    for (const p of before) source.push(p);
    const server = net.createServer((s) => serveDtscSocket(s, { resolve: () => source, status: () => ({}), log }));
    await new Promise<void>((r) => server.listen(sock, r));
    const relayHub = new StreamHub('s');
    relayHub.attachSource('relay');
    const got: Packet[] = [];
    relayHub.subscribe({ onPacket: (p) => got.push(p), onTracks: () => {}, onEnd: () => {} });
    const relay = playDtscInto(sock, 's', relayHub, () => {}, log);
    try {
      await sleep(200);
      const live = packets(3000, 6);
      for (const p of live) source.push(p);
      for (let i = 0; i < 50 && got.length < live.length; i++) await sleep(50);
      // the relay starts at the newest keyframe (2000, itself a mark), then follows the source
      assert.deepEqual(marksOf(got), [...marksOf(before).slice(-1), ...marksOf(live)]);
      assert.equal(relayHub.unixZeroMs, source.unixZeroMs);
    } finally {
      relay.close();
      server.close();
      source.end('done');
      relayHub.end('done');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a relay hub nobody watches yet takes the whole window, and goes online once it has it', async () => {
    const dir = tmpDir('haze-marks-');
    const sock = path.join(dir, 'w.sock');
    const log = new Logger({ proto: 'test' });
    const source = new StreamHub('s', { dvrMs: 5000 });
    source.attachSource();
    source.setTrack(video);
    source.setTrack(audio);
    for (const p of packets(0, 9)) source.push(p);
    const server = net.createServer((s) => serveDtscSocket(s, { resolve: () => source, status: () => ({}), log }));
    await new Promise<void>((r) => server.listen(sock, r));
    const relayHub = new StreamHub('s', { dvrMs: 5000 });
    relayHub.attachSource('relay');
    const relay = playDtscInto(sock, 's', relayHub, () => {}, log);
    try {
      assert.equal(await relayHub.waitOnline(3000), true);
      // online only once the whole window is in: the same window and marks as the source
      assert.deepEqual(relayHub.windowInfo(), source.windowInfo());
      assert.deepEqual(marksOf(relayHub.packetsFromTime(relayHub.firstMs)), marksOf(source.packetsFromTime(source.firstMs)));
    } finally {
      relay.close();
      server.close();
      source.end('done');
      relayHub.end('done');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
