// The hub and feeds without sockets: DVR trimming at keyframes, instant start, one
// serialisation per packet for every viewer, the slow-viewer policy, source changes.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StreamHub } from '../../src/hub/stream-hub.js';
import { getFeed, type FormatWriter } from '../../src/outputs/feed.js';
import { Viewer, type ByteSink } from '../../src/outputs/viewer.js';
import type { Packet, Track } from '../../src/media/types.js';

const video: Track = { id: 1, type: 'video', codec: 'H264', init: Buffer.from([1]), bps: 0, lang: 'und', width: 320, height: 180, fpks: 30000 };
const audio: Track = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.from([0x11, 0x90]), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };

function vp(t: number, key: boolean): Packet {
  return { trackId: 1, timeMs: t, offsetMs: 0, keyframe: key, data: Buffer.alloc(100, t & 0xff) };
}
function ap(t: number): Packet {
  return { trackId: 2, timeMs: t, offsetMs: 0, keyframe: true, data: Buffer.alloc(10, t & 0xff) };
}

/** Writes "time" as 4 bytes per packet and counts serialisations. */
class CountingWriter implements FormatWriter {
  calls = 0;
  setTracks(): void {}
  header(): Buffer {
    return Buffer.from('HDR!');
  }
  tracksChanged(): Buffer | null {
    return Buffer.from('CHG!');
  }
  packet(p: Packet): Buffer {
    this.calls++;
    const b = Buffer.alloc(4);
    b.writeUInt32BE(p.timeMs);
    return b;
  }
}

class MemorySink implements ByteSink {
  chunks: Buffer[] = [];
  writableLength = 0;
  closedWith: string | undefined;
  write(b: Buffer): boolean {
    this.chunks.push(b);
    return true;
  }
  close(reason: string): void {
    this.closedWith = reason;
  }
  times(): number[] {
    return this.chunks.filter((c) => c.length === 4 && c.toString() !== 'HDR!' && c.toString() !== 'CHG!').map((c) => c.readUInt32BE(0));
  }
}

/** Lets the feeds' queued flushes run (they write from a microtask). */
const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

function feedHub(hub: StreamHub, untilMs: number, gopMs = 1000, frameMs = 40): void {
  for (let t = 0; t <= untilMs; t += frameMs) {
    hub.push(vp(t, t % gopMs === 0));
    hub.push(ap(t));
  }
}

describe('StreamHub', () => {
  it('goes online once every track had a keyframe', () => {
    const hub = new StreamHub('s');
    hub.attachSource();
    hub.setTrack(video);
    hub.setTrack(audio);
    hub.push(ap(0));
    assert.equal(hub.online, false);
    hub.push(vp(40, false));
    assert.equal(hub.online, false);
    hub.push(vp(80, true));
    assert.equal(hub.online, true);
    assert.equal(hub.state, 'FULL');
  });

  it('keeps the DVR window, trimmed at keyframes, and starts new viewers at the newest keyframe', () => {
    const hub = new StreamHub('s', { dvrMs: 3000 });
    hub.attachSource();
    hub.setTrack(video);
    hub.setTrack(audio);
    feedHub(hub, 10_000);
    const w = hub.windowInfo();
    assert.ok(w.lastMs - w.firstMs >= 3000 && w.lastMs - w.firstMs <= 4000, `window ${w.firstMs}..${w.lastMs}`);
    assert.equal(w.firstMs % 1000, 0, 'window starts at a keyframe');
    const fromKey = hub.packetsFromLatestKey();
    assert.equal(fromKey[0]!.timeMs, 10_000);
    assert.equal(fromKey[0]!.keyframe, true);
    const fromTime = hub.packetsFromTime(8_500);
    assert.equal(fromTime[0]!.timeMs, 8_000);
    // the bitrate is kept as packets come and go: the same as summing the window
    const bytes = hub.packetsFromTime(hub.firstMs).reduce((n, p) => n + p.data.length, 0);
    assert.equal(hub.bitrateBps(), Math.round((bytes * 8000) / (w.lastMs - w.firstMs)));
  });

  it('stays bounded when keyframes stop coming', () => {
    const hub = new StreamHub('s', { dvrMs: 2000 });
    hub.attachSource();
    hub.setTrack(video);
    hub.push(vp(0, true));
    for (let t = 40; t <= 20_000; t += 40) hub.push(vp(t, false));
    const w = hub.windowInfo();
    assert.ok(w.lastMs - w.firstMs <= 4000, `buffer spans ${w.firstMs}..${w.lastMs}`);
    assert.deepEqual(hub.packetsFromLatestKey(), [], 'nothing to start from until the next keyframe');
    hub.push(vp(20_040, true));
    assert.equal(hub.packetsFromLatestKey()[0]!.timeMs, 20_040);
  });

  it('serialises each packet once for all viewers of a feed, starting each at the newest GOP', async () => {
    const hub = new StreamHub('s');
    hub.attachSource();
    hub.setTrack(video);
    hub.setTrack(audio);
    feedHub(hub, 1500);
    const writer = new CountingWriter();
    const select = () => ({ ids: new Set([1, 2]), syncTrackId: 1 });
    const feed = getFeed(hub, 'TEST', 'all', () => ({ writer, select }));
    const sinks = Array.from({ length: 50 }, () => new MemorySink());
    for (const s of sinks) feed.add(new Viewer(s));
    const replayed = writer.calls;
    assert.equal(replayed, 26, 'the GOP from 1000 ms (13 video + 13 audio) is serialised once');
    for (let t = 1540; t <= 2200; t += 40) {
      hub.push(vp(t, t % 1000 === 0));
      hub.push(ap(t));
    }
    assert.equal(writer.calls - replayed, 34, 'one serialisation per live packet, not per viewer');
    await tick();
    for (const s of sinks) {
      assert.equal(s.chunks[0]!.toString(), 'HDR!');
      assert.equal(s.times()[0], 1000, 'starts at the newest keyframe');
      assert.equal(s.times().at(-1), 2180);
    }
    // the same Buffer object goes to every viewer: no per-viewer copies
    assert.equal(sinks[0]!.chunks.at(-1), sinks[49]!.chunks.at(-1));
    assert.equal(getFeed(hub, 'TEST', 'all', () => assert.fail('feed must be shared')), feed);
  });

  it('a slow viewer skips to the next keyframe, and is disconnected when it stays behind', async () => {
    const hub = new StreamHub('s');
    hub.attachSource();
    hub.setTrack(video);
    feedHub(hub, 0);
    const feed = getFeed(hub, 'TEST', 'v', () => ({ writer: new CountingWriter(), select: () => ({ ids: new Set([1]), syncTrackId: 1 }) }));
    const slow = new MemorySink();
    const viewer = new Viewer(slow, { highWaterBytes: 1000, lowWaterBytes: 100, maxBehindMs: 5000 });
    feed.add(viewer);
    slow.writableLength = 5000; // the socket stopped draining
    for (let t = 40; t < 2000; t += 40) hub.push(vp(t, t % 1000 === 0));
    assert.ok(viewer.droppedPackets > 0, 'packets were dropped, not queued');
    await tick();
    const before = slow.times().length;
    slow.writableLength = 0; // drains again
    for (let t = 2000; t < 2200; t += 40) hub.push(vp(t, t % 1000 === 0));
    await tick();
    const resumed = slow.times().slice(before);
    assert.equal(resumed[0], 2000, 'resumes at a keyframe');
    slow.writableLength = 5000;
    for (let t = 2200; t < 9000; t += 40) hub.push(vp(t, t % 1000 === 0));
    assert.match(slow.closedWith ?? '', /too slow/);
    assert.equal(feed.viewerCount, 0);
  });

  it('keeps viewers across a change of source and keeps the timeline monotonic', async () => {
    const hub = new StreamHub('s', { sourceGraceMs: 10_000 });
    hub.attachSource();
    hub.setTrack(video);
    feedHub(hub, 2000);
    const sink = new MemorySink();
    const feed = getFeed(hub, 'TEST', 'v', () => ({ writer: new CountingWriter(), select: () => ({ ids: new Set([1]), syncTrackId: 1 }) }));
    feed.add(new Viewer(sink));
    hub.detachSource('publisher lost');
    assert.equal(hub.online, false);
    assert.equal(hub.isEnded, false);
    assert.deepEqual(hub.packetsFromLatestKey(), [], 'nothing of the departed source is replayed');
    hub.attachSource();
    hub.setTrack(video);
    for (let t = 0; t <= 1000; t += 40) hub.push(vp(t, t % 1000 === 0));
    await tick();
    const times = sink.times();
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! > times[i - 1]!, 'timestamps keep increasing');
    assert.ok(sink.chunks.some((c) => c.toString() === 'CHG!'), 'viewers were told the tracks changed');
    assert.equal(sink.closedWith, undefined);
    hub.end('done');
    assert.equal(sink.closedWith, 'done');
  });
});
