// The RTP ingest of a session (protocols/rtsp/rtp-ingest.ts): tracks lined up by RTCP sender
// reports or RTP-Info whatever their random RTP clock starts, by arrival without them;
// 32-bit timestamp wrap; decode times derived for B-frames (monotonic, never after the
// presentation time); video before its parameter sets and first keyframe held back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildAvcC } from '../../src/media/h264.js';
import { joinNalUnits, splitAnnexB } from '../../src/media/nal-units.js';
import type { Packet, Track } from '../../src/media/types.js';
import { serializeRtp } from '../../src/protocols/rtp/packet.js';
import { ntpFromUnixMs, serializeSr } from '../../src/protocols/rtp/rtcp.js';
import { h264Packetizer } from '../../src/protocols/rtp/h264.js';
import { RtpIngest } from '../../src/protocols/rtsp/rtp-ingest.js';
import { incomingTracks } from '../../src/protocols/rtsp/sdp-tracks.js';
import { parseSdp } from '../../src/protocols/rtsp/sdp.js';

const PS = splitAnnexB(Buffer.from('000000016764000aacd9428df93011000003000100000300140f1225960000000168ebe3cb22c0', 'hex'));
const AVCC = buildAvcC(PS[0]!, PS[1]!);
const SPROP = `${PS[0]!.toString('base64')},${PS[1]!.toString('base64')}`;

const sdp = (sprop: boolean): ReturnType<typeof parseSdp> =>
  parseSdp(
    `v=0\r\ns=t\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1${sprop ? `;sprop-parameter-sets=${SPROP}` : ''}\r\n` +
      'm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=fmtp:97 mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190\r\n',
  );

interface Rig {
  ingest: RtpIngest;
  packets: Packet[];
  tracks: Track[];
  now: { t: number };
}

function rig(sprop = true): Rig {
  const packets: Packet[] = [];
  const tracks: Track[] = [];
  const now = { t: 1000 };
  const ingest = new RtpIngest(incomingTracks(sdp(sprop)).tracks, { setTrack: (t) => tracks.push(t), push: (p) => packets.push(p) }, { reorder: true, now: () => now.t });
  return { ingest, packets, tracks, now };
}

const nal = (type: number, n: number): Buffer => Buffer.concat([Buffer.from([0x60 | type]), Buffer.alloc(n - 1, type)]);
let seqV = 100;
let seqA = 900;

function sendVideo(r: Rig, rtpTs: number, type: number, withPs = false): void {
  const data = joinNalUnits(withPs ? [PS[0]!, PS[1]!, nal(type, 50)] : [nal(type, 50)]);
  for (const pl of h264Packetizer(AVCC).packetize({ trackId: 1, timeMs: 0, offsetMs: 0, keyframe: false, data })) {
    r.ingest.rtp(0, serializeRtp({ payloadType: 96, marker: pl.marker, sequence: seqV++ & 0xffff, timestamp: rtpTs >>> 0, ssrc: 1 }, ...pl.parts));
  }
}

function sendAudio(r: Rig, rtpTs: number): void {
  const au = Buffer.alloc(20, 7);
  const head = Buffer.from([0, 16, (au.length << 3) >> 8, (au.length << 3) & 0xff]);
  r.ingest.rtp(1, serializeRtp({ payloadType: 97, marker: true, sequence: seqA++ & 0xffff, timestamp: rtpTs >>> 0, ssrc: 2 }, head, au));
}

function sr(r: Rig, index: number, unixMs: number, rtpTs: number): void {
  const n = ntpFromUnixMs(unixMs);
  r.ingest.rtcp(index, serializeSr({ ssrc: index + 1, ntpSeconds: n.seconds, ntpFraction: n.fraction, rtpTimestamp: rtpTs >>> 0, packetCount: 0, octetCount: 0 }));
}

test('sender reports line the tracks up: audio that starts 500 ms after the video is 500 ms later', () => {
  const r = rig();
  // random clock starts; the video's SR says rtp 0xFFFFFF00 is at wall 10 000 ms, the audio's rtp 5000 at 10 000 ms
  const v0 = 0xffffff00;
  sr(r, 0, 10_000, v0);
  sr(r, 1, 10_000, 5000);
  sendVideo(r, v0, 5);
  sendAudio(r, 5000 + 24000); // 500 ms after
  sendVideo(r, v0 + 9000, 1); // 100 ms, across the 32-bit wrap
  sendAudio(r, 5000 + 24000 + 1024);
  assert.equal(r.packets.length, 0, 'the first video frames wait until the reordering is known');
  r.ingest.close();
  const v = r.packets.filter((p) => p.trackId === 1);
  const a = r.packets.filter((p) => p.trackId === 2);
  assert.deepEqual(
    v.map((p) => [p.timeMs, p.keyframe]),
    [
      [0, true],
      [100, false],
    ],
  );
  assert.deepEqual(
    a.map((p) => p.timeMs),
    [500, 521],
  );
  assert.equal(r.tracks.length, 2, 'both tracks announced (video from sprop-parameter-sets)');
});

test('RTP-Info anchors take precedence; without any anchor the arrival times line the tracks up after the wait', () => {
  const r = rig();
  r.ingest.anchorInfo(0, 90_000);
  r.ingest.anchorInfo(1, 48_000);
  sendVideo(r, 90_000 + 900, 5); // 10 ms after the play point
  sendAudio(r, 48_000 + 480); // 10 ms
  r.ingest.close();
  assert.deepEqual(
    r.packets.map((p) => p.timeMs),
    [0, 0],
  );
  const s = rig();
  sendVideo(s, 777, 5);
  assert.equal(s.packets.length, 0, 'waiting for anchors');
  s.now.t += 200;
  sendAudio(s, 123);
  s.now.t += 1000;
  sendVideo(s, 777 + 90 * 1200, 1);
  assert.deepEqual(
    s.packets.map((p) => [p.trackId, p.timeMs]),
    [
      [1, 0],
      [2, 200],
      [1, 1200],
    ],
  );
});

test('B-frames: decode times stay monotonic and at or before presentation times, which are exact', () => {
  const r = rig();
  r.ingest.anchorInfo(0, 0);
  r.ingest.anchorInfo(1, 0);
  // decode order I0 P3 B1 B2 P6 B4 B5 at 30 fps (3000 ticks a frame)
  const order = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8];
  order.forEach((f, i) => sendVideo(r, f * 3000, i === 0 ? 5 : 1));
  r.ingest.close();
  const v = r.packets.filter((p) => p.trackId === 1);
  assert.equal(v.length, order.length);
  for (let i = 0; i < v.length; i++) {
    if (i > 0) assert.ok(v[i]!.timeMs > v[i - 1]!.timeMs, 'decode time increases');
    assert.ok(v[i]!.offsetMs >= 0);
  }
  // the reordering was measured before the first frame went out: every presentation time is
  // exact, the timeline starts late by the allowance (2 frames back behind the highest + 1 ms)
  const shift = v[0]!.timeMs + v[0]!.offsetMs;
  assert.equal(shift, 68);
  assert.deepEqual(
    v.map((p) => p.timeMs + p.offsetMs - shift),
    order.map((f) => Math.round((f * 1000) / 30)),
  );
});

test('H.264 without sprop-parameter-sets: nothing until SPS/PPS come in-band, then from the first keyframe', () => {
  const r = rig(false);
  r.ingest.anchorInfo(0, 0);
  r.ingest.anchorInfo(1, 0);
  sendVideo(r, 0, 1);
  assert.equal(r.tracks.filter((t) => t.type === 'video').length, 0);
  sendVideo(r, 3000, 5, true);
  sendVideo(r, 6000, 1);
  r.ingest.close();
  const video = r.tracks.find((t) => t.type === 'video')!;
  assert.ok(video && video.type === 'video' && video.init.equals(AVCC) && video.width === 160 && video.height === 90);
  assert.deepEqual(
    r.packets.map((p) => [p.timeMs, p.keyframe]),
    [
      [33, true],
      [67, false],
    ],
  );
});
