// Merging several publishers into one stream (inputs/multi-input.ts) without sockets: the time
// offset a joining publisher gets, the track ids, and the merge of input hubs into a stream hub
// (tracks added and removed per publisher, the sync track moving to a remaining video).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StreamHub, type HubListener } from '../../src/hub/stream-hub.js';
import { JOIN_GAP_MS, MAX_INPUTS, MultiInput, TrackIds, inputHub, joinOffset } from '../../src/inputs/multi-input.js';
import type { Packet, Track } from '../../src/media/types.js';

const video = (id: number, width: number): Track => ({ id, type: 'video', codec: 'H264', init: Buffer.from([1, width & 0xff]), bps: 0, lang: 'und', width, height: (width * 9) / 16, fpks: 25000 });
const audio = (id: number): Track => ({ id, type: 'audio', codec: 'AAC', init: Buffer.from([0x11, 0x90]), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 });
const pkt = (trackId: number, timeMs: number, keyframe: boolean): Packet => ({ trackId, timeMs, offsetMs: 0, keyframe, data: Buffer.from([trackId, timeMs & 0xff]) });

/** Records what a stream hub hands its listeners. */
class Recorder implements HubListener {
  packets: Packet[] = [];
  trackLists: number[][] = [];
  onPacket(p: Packet): void {
    this.packets.push(p);
  }
  onTracks(tracks: readonly Track[]): void {
    this.trackLists.push(tracks.map((t) => t.id));
  }
  onEnd(): void {}
}

describe('joinOffset', () => {
  it('keeps the times of the first publisher of a new stream', () => {
    assert.equal(joinOffset(0, { lastMs: -1, unixZeroMs: undefined, nowMs: 1e12, othersFlowing: false }), 0);
    assert.equal(joinOffset(5000, { lastMs: -1, unixZeroMs: undefined, nowMs: 1e12, othersFlowing: false }), 0);
  });

  it('maps a later publisher\'s first packet to the stream\'s current time by the wall clock', () => {
    // the stream started 7 s ago, its newest packet is a little behind the clock
    assert.equal(joinOffset(0, { lastMs: 6900, unixZeroMs: 1e12 - 7000, nowMs: 1e12, othersFlowing: true }), 7000);
    assert.equal(joinOffset(300, { lastMs: 6900, unixZeroMs: 1e12 - 7000, nowMs: 1e12, othersFlowing: true }), 6700);
  });

  it('follows the newest packet when the others run ahead of the clock', () => {
    assert.equal(joinOffset(0, { lastMs: 9000, unixZeroMs: 1e12 - 7000, nowMs: 1e12, othersFlowing: true }), 9000);
  });

  it('starts after the newest packet when nobody else feeds the stream (its timeline never goes back)', () => {
    assert.equal(joinOffset(0, { lastMs: 9000, unixZeroMs: 1e12 - 7000, nowMs: 1e12, othersFlowing: false }), 9000 + JOIN_GAP_MS);
    assert.equal(joinOffset(100, { lastMs: 3000, unixZeroMs: 1e12 - 7000, nowMs: 1e12, othersFlowing: false }), 6900);
  });

  it('never maps to negative times', () => {
    assert.equal(joinOffset(0, { lastMs: -1, unixZeroMs: 1e12 + 5000, nowMs: 1e12, othersFlowing: false }), 0);
  });
});

describe('TrackIds', () => {
  it('keeps a publisher\'s own ids while free and never gives an id twice', () => {
    const ids = new TrackIds();
    assert.deepEqual([ids.take(1), ids.take(2)], [1, 2]);
    assert.deepEqual([ids.take(1), ids.take(2)], [3, 4]);
    assert.equal(ids.take(7), 7);
    assert.equal(ids.take(1), 8);
    assert.equal(ids.take(0), 9, 'an unusable id gets the next one');
  });
});

describe('MultiInput', () => {
  /** A stream with publisher A (video 640 + audio) running 2 s ahead and publisher B (video 320) joining. */
  function twoPublishers(): { hub: StreamHub; multi: MultiInput; a: StreamHub; b: StreamHub; rec: Recorder } {
    const hub = new StreamHub('m', { sourceGraceMs: 10_000 });
    hub.attachSource();
    const rec = new Recorder();
    hub.subscribe(rec);
    const multi = new MultiInput(hub);
    const a = inputHub('m');
    multi.add(a);
    a.setTrack(video(1, 640));
    a.setTrack(audio(2));
    for (let t = 0; t <= 2000; t += 40) {
      a.push(pkt(1, t, t % 1000 === 0));
      a.push(pkt(2, t, true));
    }
    const b = inputHub('m');
    multi.add(b);
    b.setTrack(video(1, 320));
    return { hub, multi, a, b, rec };
  }

  it('gives each publisher its own track ids and moves a joining one onto the stream\'s time', () => {
    const { hub, b, rec } = twoPublishers();
    assert.deepEqual(
      hub.tracks.map((t) => [t.id, t.type, t.type === 'video' ? t.width : 0]),
      [
        [1, 'video', 640],
        [2, 'audio', 0],
        [3, 'video', 320],
      ],
    );
    b.push(pkt(1, 0, true));
    b.push(pkt(1, 40, false));
    const fromB = rec.packets.filter((p) => p.trackId === 3);
    // A ran ahead of the wall clock (2 s of media at once): B starts at A's newest time
    assert.deepEqual(
      fromB.map((p) => p.timeMs),
      [2000, 2040],
    );
    assert.equal(fromB[0]!.fragment, undefined, 'the input hub\'s segment marks stay there');
    assert.ok(hub.online, 'online once B\'s track had a keyframe');
  });

  it('a leaving publisher takes only its tracks; the sync track moves to a remaining video', () => {
    const { hub, multi, a, b, rec } = twoPublishers();
    b.push(pkt(1, 0, true));
    b.push(pkt(1, 40, false));
    a.end('publisher left');
    assert.equal(multi.size, 1);
    assert.deepEqual(hub.tracks.map((t) => t.id), [3]);
    assert.deepEqual(rec.trackLists.at(-1), [3], 'listeners told of the smaller track list');
    // a new viewer starts at B's keyframe, not at one of the departed track
    assert.deepEqual(
      hub.packetsFromLatestKey().map((p) => [p.trackId, p.timeMs]),
      [
        [3, 2000],
        [3, 2040],
      ],
    );
    b.push(pkt(1, 80, false));
    assert.equal(rec.packets.at(-1)!.timeMs, 2080, 'B goes on');
    assert.ok(!hub.isEnded);
  });

  it('the last publisher leaving leaves the tracks to the stream\'s end or grace period', () => {
    const { hub, a, b } = twoPublishers();
    b.end('gone');
    a.end('gone');
    assert.deepEqual(hub.tracks.map((t) => t.id), [1, 2]);
  });

  it('the first publisher of a new stream gives it its clock (a DTSC pusher\'s unixzero)', () => {
    const hub = new StreamHub('m', { sourceGraceMs: 0 });
    hub.attachSource();
    const multi = new MultiInput(hub);
    const a = inputHub('m');
    multi.add(a);
    a.setTrack(video(1, 640));
    a.setUnixZero(1_600_000_000_000);
    a.push(pkt(1, 5000, true));
    assert.equal(hub.unixZeroMs, 1_600_000_000_000);
    assert.equal(hub.lastMs, 5000, 'its times pass unchanged');
  });

  it('passes refined track fields (metadata bitrate) on', () => {
    const { hub, a } = twoPublishers();
    a.setTrack({ ...video(1, 640), bps: 125_000 });
    a.push(pkt(1, 2040, false));
    assert.equal(hub.tracks.find((t) => t.id === 1)!.bps, 125_000);
  });

  it('lets go of every publisher when the stream hub ends, and refuses more than MAX_INPUTS', () => {
    const hub = new StreamHub('m', { sourceGraceMs: 0 });
    hub.attachSource();
    const multi = new MultiInput(hub);
    const dropped: string[] = [];
    for (let i = 0; i < MAX_INPUTS; i++) multi.add(inputHub('m'), (r) => dropped.push(r));
    assert.throws(() => multi.add(inputHub('m')), /HAZE_ERR_BUSY|merges/);
    hub.end('server stopping');
    assert.equal(dropped.length, MAX_INPUTS);
    assert.equal(multi.size, 0);
    assert.throws(() => multi.add(inputHub('m')), /ended/);
  });
});
