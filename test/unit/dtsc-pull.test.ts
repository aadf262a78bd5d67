// The client side of dtsc:// pulls without sockets (protocols/dtsc/pull-session.ts): MistServer's
// own bytes (shared/fixtures/mistserver/small-mp4.dtsc-wire) give the header's tracks and every
// packet however they are split; pings are answered, errors and ends reported, headers replace
// the track set; the play command and URLs are as MistServer has them; any bytes give a result
// or a HazeError.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures } from '../helpers.js';
import { HazeError } from '../../src/util/errors.js';
import { getText, type DtmiObject } from '../../src/containers/dtsc/dtmi.js';
import { decodeDtcm, DtscFrameReader, encodeDtcm, encodeDtp2 } from '../../src/containers/dtsc/packets.js';
import { plainTrack, readDtscHeader, writeDtscHeader } from '../../src/containers/dtsc/header.js';
import type { Packet, Track } from '../../src/media/types.js';
import { DtscPullSession, dtscPlayCommand, type DtscPullStep } from '../../src/protocols/dtsc/pull-session.js';
import { parseDtscPullUrl } from '../../src/inputs/pull/dtsc-pull.js';

const wire = fs.readFileSync(path.join(mistFixtures, 'small-mp4.dtsc-wire'));

/** What the fixture holds, by the repo's DTSC decoder. */
function decodeFixture(): { tracks: Track[]; packets: Packet[] } {
  let tracks: Track[] = [];
  const packets: Packet[] = [];
  for (const f of new DtscFrameReader().push(wire)) {
    if (f.kind === 'header') tracks = readDtscHeader(f.raw).tracks.map(plainTrack);
    else if (f.kind === 'packet') packets.push(f.packet);
  }
  return { tracks, packets };
}

class Recorder {
  tracks = new Map<number, Track>();
  removed: number[] = [];
  packets: Packet[] = [];
  setTrack = (t: Track): void => void this.tracks.set(t.id, t);
  removeTrack = (id: number): void => {
    this.removed.push(id);
    this.tracks.delete(id);
  };
  push = (p: Packet): void => void this.packets.push(p);
}

function feed(session: DtscPullSession, bytes: Buffer, cuts: number[]): DtscPullStep[] {
  const steps: DtscPullStep[] = [];
  let prev = 0;
  for (const c of [...cuts.sort((x, y) => x - y), bytes.length]) {
    steps.push(session.push(bytes.subarray(prev, c)));
    prev = c;
  }
  return steps;
}

const video: Track = { id: 1, type: 'video', codec: 'H264', init: Buffer.from([1, 2, 3]), bps: 0, lang: 'und', width: 320, height: 180, fpks: 30000 };
const audio: Track = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.from([0x11, 0x90]), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };

function header(tracks: Track[], live = true): Buffer {
  return writeDtscHeader({ live, vod: !live, tracks: tracks.map((t) => ({ ...t, firstMs: 0, lastMs: 0, maxBps: 0 })) }, { withIndex: false });
}

test("MistServer's dtsc:// bytes: the header's tracks and every packet, in order", () => {
  const want = decodeFixture();
  const rec = new Recorder();
  const s = new DtscPullSession(rec);
  const step = s.push(wire);
  assert.equal(step.hello, 'MistServer/3.10');
  assert.equal(step.started, true);
  assert.equal(step.ended, undefined);
  assert.deepEqual(step.replies, []);
  assert.equal(s.vod, true, 'the fixture is a VoD stream');
  assert.deepEqual([...rec.tracks.values()], want.tracks);
  assert.equal(rec.packets.length, 307);
  assert.deepEqual(
    rec.packets.map((p) => [p.trackId, p.timeMs, p.offsetMs, p.keyframe, p.data.length]),
    want.packets.map((p) => [p.trackId, p.timeMs, p.offsetMs, p.keyframe, p.data.length]),
  );
  rec.packets.forEach((p, i) => assert.ok(p.data.equals(want.packets[i]!.data)));
});

test('fuzz: any split of the fixture gives the same tracks and packets, started once', () => {
  const want = decodeFixture();
  fc.assert(
    fc.property(fc.uniqueArray(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 30 }), (cuts) => {
      const rec = new Recorder();
      const steps = feed(new DtscPullSession(rec), wire, cuts);
      assert.equal(steps.filter((st) => st.started).length, 1);
      assert.deepEqual([...rec.tracks.values()], want.tracks);
      assert.equal(rec.packets.length, want.packets.length);
      rec.packets.forEach((p, i) => {
        const w = want.packets[i]!;
        assert.deepEqual([p.trackId, p.timeMs, p.offsetMs, p.keyframe], [w.trackId, w.timeMs, w.offsetMs, w.keyframe]);
        assert.ok(p.data.equals(w.data));
      });
    }),
    { numRuns: 50 },
  );
});

test('fuzz: flipped bytes give tracks and packets or a HazeError, never another exception', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat({ max: 4 }), (flips, splits) => {
      const b = Buffer.from(wire);
      for (const [at, v] of flips) b[at % b.length] = v;
      const s = new DtscPullSession(new Recorder(), { maxFrameBytes: 1 << 20 });
      const step = Math.ceil(b.length / (splits + 1));
      try {
        for (let p = 0; p < b.length; p += step) s.push(b.subarray(p, p + step));
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }),
    { numRuns: 150 },
  );
});

test('a ping is answered with ok "Pong!"; error and end commands end the pull', () => {
  const s = new DtscPullSession(new Recorder());
  const step = s.push(Buffer.concat([encodeDtcm({ cmd: 'hi', version: 'X' }), encodeDtcm({ cmd: 'ping' })]));
  assert.equal(step.hello, 'X');
  assert.equal(step.replies.length, 1);
  const reply: DtmiObject = decodeDtcm(step.replies[0]!);
  assert.equal(getText(reply, 'cmd'), 'ok');
  assert.equal(getText(reply, 'msg'), 'Pong!');
  assert.equal(s.playing, false);

  const err = new DtscPullSession(new Recorder()).push(encodeDtcm({ cmd: 'error', msg: 'Stream not found: x' }));
  assert.deepEqual(err.ended, { error: true, reason: 'Stream not found: x' });
  const end = new DtscPullSession(new Recorder()).push(encodeDtcm({ cmd: 'end', msg: 'stream over' }));
  assert.deepEqual(end.ended, { error: false, reason: 'stream over' });
});

test('a new header replaces the track set; packets of unannounced tracks are dropped and counted', () => {
  const rec = new Recorder();
  const s = new DtscPullSession(rec);
  const p = (trackId: number, timeMs: number): Buffer => encodeDtp2({ trackId, timeMs, offsetMs: 0, keyframe: true, data: Buffer.from([trackId, timeMs & 0xff]) });
  const first = s.push(Buffer.concat([p(1, 0), header([video, audio]), p(1, 10), p(2, 10), p(3, 10)]));
  assert.equal(first.started, true);
  assert.equal(s.vod, false);
  assert.deepEqual([...rec.tracks.keys()], [1, 2]);
  assert.deepEqual(rec.packets.map((x) => [x.trackId, x.timeMs]), [[1, 10], [2, 10]]);
  assert.equal(s.unknownTrackPackets, 2, 'one before any header, one of track 3');
  const second = s.push(Buffer.concat([header([video]), p(2, 20), p(1, 20)]));
  assert.equal(second.started, undefined, 'started only once');
  assert.deepEqual(rec.removed, [2]);
  assert.deepEqual([...rec.tracks.keys()], [1]);
  assert.deepEqual(rec.packets.map((x) => [x.trackId, x.timeMs]), [[1, 10], [2, 10], [1, 20]]);
});

test('a header with more tracks than the bound is a HazeError', () => {
  const many = Array.from({ length: 5 }, (_, i): Track => ({ ...audio, id: i + 1 }));
  assert.throws(() => new DtscPullSession(new Recorder(), { maxTracks: 4 }).push(header(many)), (e) => e instanceof HazeError && e.code === 'HAZE_ERR_TOO_LARGE');
});

test('the play command: cmd, stream, version and the query as members, sorted as MistServer packs them', () => {
  const cmd = decodeDtcm(dtscPlayCommand('live+a', [['video', '0'], ['audio', 'none'], ['cmd', 'push']]));
  assert.deepEqual(cmd.entries.map(([k]) => k), ['audio', 'cmd', 'stream', 'version', 'video']);
  assert.equal(getText(cmd, 'cmd'), 'play');
  assert.equal(getText(cmd, 'stream'), 'live+a');
  assert.match(getText(cmd, 'version') ?? '', /^Haze\//);
  assert.equal(getText(cmd, 'audio'), 'none');
});

test('dtsc:// URLs: port 4200 by default, the local name when the path has none, the query kept', () => {
  assert.deepEqual(parseDtscPullUrl('dtsc://origin.example/live+x?video=0', 'edge'), { host: 'origin.example', port: 4200, stream: 'live+x', query: [['video', '0']] });
  assert.deepEqual(parseDtscPullUrl('dtsc://127.0.0.1:4300', 'edge'), { host: '127.0.0.1', port: 4300, stream: 'edge', query: [] });
  assert.deepEqual(parseDtscPullUrl('dtsc://[::1]:4200/a%20b', 'edge'), { host: '::1', port: 4200, stream: 'a b', query: [] });
  for (const bad of ['dtsc:///x', 'rtmp://h/x', 'not a url']) assert.throws(() => parseDtscPullUrl(bad, 'edge'), (e) => e instanceof HazeError);
});
