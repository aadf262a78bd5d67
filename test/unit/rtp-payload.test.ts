// RTP payload formats: Haze packet -> packetizer -> RTP packets -> depacketizer gives the same
// access unit back, for H.264 (single NAL, STAP-A, FU-A across the packet size), HEVC (AP, FU),
// AAC (AAC-hbr, several AUs per packet, fragments), Opus and PCM; plus hand-made packets of
// the RFCs' layouts and loss in the middle of a fragmented unit.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildAvcC, parseAvcC } from '../../src/media/h264.js';
import { buildHvcC } from '../../src/media/hevc.js';
import { joinNalUnits, splitAnnexB, splitNalUnits } from '../../src/media/nal-units.js';
import type { Packet } from '../../src/media/types.js';
import { h264Depacketizer, h264Packetizer, H264_FU_A, H264_STAP_A } from '../../src/protocols/rtp/h264.js';
import { hevcDepacketizer, hevcPacketizer, HEVC_AP, HEVC_FU } from '../../src/protocols/rtp/hevc.js';
import { AacDepacketizer, AacPacketizer, AAC_HBR, auHeaderParams } from '../../src/protocols/rtp/aac.js';
import { OpusDepacketizer, OpusPacketizer } from '../../src/protocols/rtp/opus.js';
import { PcmDepacketizer, PcmPacketizer } from '../../src/protocols/rtp/pcm.js';
import { parseRtp, serializeRtp, type RtpPacket } from '../../src/protocols/rtp/packet.js';
import { payloadSize, type Depacketizer, type Packetizer, type RtpFrame } from '../../src/protocols/rtp/payload.js';

// x264 / x265 parameter sets of a 160x90 picture (ffmpeg -f lavfi -i testsrc ... -f h264 / -f hevc)
const H264_PS = splitAnnexB(Buffer.from('000000016764000aacd9428df93011000003000100000300140f1225960000000168ebe3cb22c0', 'hex'));
const HEVC_PS = splitAnnexB(
  Buffer.from(
    '0000000140010c01ffff01600000030090000003000003001e959809000000014201010160000003009000000300000300' +
      '1ea0142061f265959a4932bc05a02000000300200000030141000000014401c172b46240',
    'hex',
  ),
);
const AVCC = buildAvcC(H264_PS[0]!, H264_PS[1]!);
const HVCC = buildHvcC([HEVC_PS[0]!], [HEVC_PS[1]!], [HEVC_PS[2]!]);

function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** An H.264 NAL unit of `type` and `size` bytes (header included). */
const h264Nal = (type: number, size: number, seed: number): Buffer => Buffer.concat([Buffer.from([0x60 | type]), bytes(size - 1, seed)]);
/** An HEVC NAL unit of `type` and `size` bytes (two-byte header, layer 0, TID 1). */
const hevcNal = (type: number, size: number, seed: number): Buffer => Buffer.concat([Buffer.from([type << 1, 1]), bytes(size - 2, seed)]);

/** Runs a packetizer's payloads through real RTP bytes into a depacketizer. */
function roundTrip(pk: Packetizer, dp: Depacketizer, packets: Packet[], ticks: (p: Packet) => number, maxPayload = 1400): { frames: RtpFrame[]; rtp: RtpPacket[] } {
  const frames: RtpFrame[] = [];
  const rtp: RtpPacket[] = [];
  let seq = 65530; // wraps inside the test
  for (const p of packets) {
    for (const pl of pk.packetize(p)) {
      assert.ok(payloadSize(pl) <= maxPayload, `payload of ${payloadSize(pl)} bytes`);
      const wire = serializeRtp({ payloadType: 96, marker: pl.marker, sequence: seq, timestamp: (ticks(p) + pl.tsOffset) >>> 0, ssrc: 1234 }, ...pl.parts);
      seq = (seq + 1) & 0xffff;
      const parsed = parseRtp(wire);
      rtp.push(parsed);
      frames.push(...dp.push(parsed, false));
    }
  }
  frames.push(...dp.flush());
  return { frames, rtp };
}

test('H.264: small units go in one STAP-A, large ones in FU-A fragments that fit the packet size, and come back whole', () => {
  const key: Packet = { trackId: 1, timeMs: 0, offsetMs: 0, keyframe: true, data: joinNalUnits([h264Nal(6, 30, 1), h264Nal(5, 5000, 2)]) };
  const delta: Packet = { trackId: 1, timeMs: 40, offsetMs: 0, keyframe: false, data: joinNalUnits([h264Nal(1, 200, 3), h264Nal(1, 300, 4)]) };
  const big: Packet = { trackId: 1, timeMs: 80, offsetMs: 0, keyframe: false, data: joinNalUnits([h264Nal(1, 1401, 5)]) };
  const { frames, rtp } = roundTrip(h264Packetizer(AVCC), h264Depacketizer(AVCC), [key, delta, big], (p) => p.timeMs * 90);
  assert.equal(frames.length, 3);
  // the keyframe lacked SPS/PPS: they were put in front (one STAP-A with the SEI), the IDR
  // fragmented; the receiver takes them out again (they are the track's init)
  assert.equal(rtp[0]!.payload[0]! & 0x1f, H264_STAP_A);
  assert.deepEqual(
    splitNalUnits(rtp[0]!.payload.subarray(1), 2).map((n) => n[0]! & 0x1f),
    [7, 8, 6],
  );
  assert.deepEqual(frames[0]!.data, key.data);
  const fus = rtp.filter((r) => r.timestamp === 0 && (r.payload[0]! & 0x1f) === H264_FU_A);
  assert.equal(fus.length, Math.ceil((5000 - 1) / (1400 - 2)));
  assert.equal(fus[0]!.payload[1]! & 0x80, 0x80, 'S bit on the first fragment');
  assert.equal(fus[fus.length - 1]!.payload[1]! & 0x40, 0x40, 'E bit on the last');
  assert.ok(frames[0]!.keyframe && !frames[1]!.keyframe);
  assert.deepEqual(frames[1]!.data, delta.data);
  assert.deepEqual(frames[2]!.data, big.data);
  assert.deepEqual([frames[0]!.timestamp, frames[1]!.timestamp, frames[2]!.timestamp], [0, 3600, 7200]);
  // the marker bit ends each access unit
  assert.deepEqual(
    rtp.map((r) => r.marker).filter(Boolean).length,
    3,
  );
});

test('H.264: a unit of exactly the packet size goes alone; one byte more is fragmented', () => {
  const pk = h264Packetizer(AVCC, 1000);
  const alone = pk.packetize({ trackId: 1, timeMs: 0, offsetMs: 0, keyframe: false, data: joinNalUnits([h264Nal(1, 1000, 1)]) });
  assert.equal(alone.length, 1);
  const split = pk.packetize({ trackId: 1, timeMs: 0, offsetMs: 0, keyframe: false, data: joinNalUnits([h264Nal(1, 1001, 1)]) });
  assert.equal(split.length, 2);
  assert.ok(split.every((s) => payloadSize(s) <= 1000));
});

test('H.264: a keyframe without an SPS gets the parameter sets; the WebRTC options aggregate only those and drop what they name', () => {
  const idr = h264Nal(5, 300, 2);
  const key = (data: Buffer): Packet => ({ trackId: 1, timeMs: 0, offsetMs: 0, keyframe: true, data });
  // a keyframe bringing only its PPS still lacks the SPS: both are put before it, so a receiver
  // that knows nothing of the stream (no init) learns the whole configuration in-band
  const back = h264Depacketizer(Buffer.alloc(0));
  const frames = h264Packetizer(AVCC)
    .packetize(key(joinNalUnits([H264_PS[1]!, idr])))
    .flatMap((pl, i) => back.push(parseRtp(serializeRtp({ payloadType: 96, marker: pl.marker, sequence: i, timestamp: 0, ssrc: 1 }, ...pl.parts)), false));
  const init = back.takeInit();
  assert.ok(init, 'the parameter sets came in-band');
  assert.ok(parseAvcC(init).sps[0]!.equals(H264_PS[0]!), 'with the SPS');
  assert.deepEqual(frames.map((f) => f.data), [joinNalUnits([idr])]);
  const sei = h264Nal(6, 20, 3);
  const aud = Buffer.from([0x09, 0xf0]);
  const all = h264Packetizer(AVCC).packetize(key(joinNalUnits([aud, sei, idr])));
  assert.equal(all.length, 1, 'by default every unit that fits goes in one STAP-A');
  assert.equal(all[0]!.parts[0]![0]! & 0x1f, H264_STAP_A);
  const dropped: boolean[] = [];
  const web = h264Packetizer(AVCC, 1400, { aggregate: 'parameter-sets', dropTypes: [9], skipFrame: (nals, k) => (dropped.push(k), !k && nals.length === 1) });
  const pls = web.packetize(key(joinNalUnits([aud, sei, idr])));
  assert.deepEqual(
    pls.map((p) => p.parts[0]![0]! & 0x1f),
    [H264_STAP_A, 6, 5],
    'SPS+PPS in a STAP-A, then the SEI and the IDR alone, the AUD left out',
  );
  assert.ok(pls[1]!.parts[0]!.equals(sei) && pls[2]!.parts[0]!.equals(idr), 'single units are the NAL units themselves');
  assert.deepEqual(pls.map((p) => p.marker), [false, false, true]);
  assert.deepEqual(web.packetize({ trackId: 1, timeMs: 40, offsetMs: 0, keyframe: false, data: joinNalUnits([h264Nal(1, 50, 4)]) }), [], 'a frame skipFrame refuses');
  assert.deepEqual(dropped, [true, false]);
});

test('H.264: hand-made STAP-A and FU-A packets (RFC 6184 §5.7.1, §5.8) and in-band parameter sets', () => {
  const dp = h264Depacketizer(Buffer.alloc(0));
  const sps = H264_PS[0]!;
  const pps = H264_PS[1]!;
  const stap = Buffer.concat([Buffer.from([0x78]), Buffer.from([0, sps.length]), sps, Buffer.from([0, pps.length]), pps]);
  const idr = h264Nal(5, 50, 9);
  const fuA = (start: boolean, end: boolean, part: Buffer): Buffer => Buffer.concat([Buffer.from([(idr[0]! & 0xe0) | 28, (start ? 0x80 : 0) | (end ? 0x40 : 0) | 5]), part]);
  const pkts = [stap, fuA(true, false, idr.subarray(1, 20)), fuA(false, false, idr.subarray(20, 35)), fuA(false, true, idr.subarray(35))];
  const frames: RtpFrame[] = [];
  pkts.forEach((p, i) => frames.push(...dp.push({ payloadType: 96, marker: i === pkts.length - 1, sequence: i, timestamp: 9000, ssrc: 1, payload: p }, false)));
  assert.equal(frames.length, 1);
  assert.deepEqual(splitNalUnits(frames[0]!.data), [idr]);
  assert.ok(frames[0]!.keyframe);
  // the parameter sets found in-band give the track its avcC
  assert.deepEqual(dp.takeInit(), AVCC);
  assert.equal(dp.takeInit(), undefined);
});

test('H.264: a fragment lost in the middle drops that unit, not the access unit', () => {
  const pk = h264Packetizer(AVCC);
  const dp = h264Depacketizer(AVCC);
  const small = h264Nal(1, 100, 1);
  const large = h264Nal(1, 4000, 2);
  const pls = pk.packetize({ trackId: 1, timeMs: 0, offsetMs: 0, keyframe: false, data: joinNalUnits([small, large]) });
  assert.equal(pls.length, 4); // small alone, then three fragments
  const frames: RtpFrame[] = [];
  pls.forEach((pl, i) => {
    if (i === 2) return; // lost
    frames.push(...dp.push({ payloadType: 96, marker: pl.marker, sequence: i, timestamp: 0, ssrc: 1, payload: Buffer.concat(pl.parts) }, i === 3));
  });
  assert.equal(frames.length, 1);
  assert.deepEqual(splitNalUnits(frames[0]!.data), [small]);
});

test('HEVC: AP and FU round trip with parameter sets put before a keyframe', () => {
  const key: Packet = { trackId: 1, timeMs: 0, offsetMs: 0, keyframe: true, data: joinNalUnits([hevcNal(19, 3000, 1)]) };
  const delta: Packet = { trackId: 1, timeMs: 33, offsetMs: 0, keyframe: false, data: joinNalUnits([hevcNal(1, 100, 2), hevcNal(1, 120, 3)]) };
  const { frames, rtp } = roundTrip(hevcPacketizer(HVCC), hevcDepacketizer(HVCC), [key, delta], (p) => p.timeMs * 90);
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[0]!.data, key.data);
  assert.deepEqual(
    splitNalUnits(rtp[0]!.payload.subarray(2), 2).map((n) => (n[0]! >> 1) & 0x3f),
    [32, 33, 34],
    'the parameter sets went in front, in one aggregation packet',
  );
  assert.ok(frames[0]!.keyframe && !frames[1]!.keyframe);
  assert.deepEqual(frames[1]!.data, delta.data);
  const types = rtp.map((r) => (r.payload[0]! >> 1) & 0x3f);
  assert.equal(types[0], HEVC_AP);
  assert.ok(types.includes(HEVC_FU));
  // FU header: S on the first, E on the last, type 19
  const fus = rtp.filter((r) => ((r.payload[0]! >> 1) & 0x3f) === HEVC_FU);
  assert.equal(fus[0]!.payload[2], 0x80 | 19);
  assert.equal(fus[fus.length - 1]!.payload[2], 0x40 | 19);
});

test('AAC: AAC-hbr one AU per packet, a large AU fragmented, several AUs in one packet read with their timestamps', () => {
  const frames: Packet[] = [10, 300, 2000, 5].map((n, i) => ({ trackId: 2, timeMs: Math.round((i * 1024 * 1000) / 48000), offsetMs: 0, keyframe: true, data: bytes(n, i + 1) }));
  const { frames: out, rtp } = roundTrip(new AacPacketizer(), new AacDepacketizer(AAC_HBR, 1024), frames, (p) => Math.round((p.timeMs * 48000) / 1000));
  assert.deepEqual(
    out.map((f) => f.data),
    frames.map((f) => f.data),
  );
  assert.equal(rtp.length, 5, 'the 2000-byte AU took two packets');
  assert.deepEqual(
    rtp.map((r) => r.marker),
    [true, true, false, true, true],
  );
  // three AUs in one packet (AU-headers-length 48 bits), the second and third 1024 ticks apart
  const aus = [bytes(7, 1), bytes(9, 2), bytes(4, 3)];
  const head = Buffer.alloc(2 + 6);
  head.writeUInt16BE(48, 0);
  aus.forEach((a, i) => head.writeUInt16BE(a.length << 3, 2 + 2 * i));
  const dp = new AacDepacketizer(auHeaderParams(new Map([['sizelength', '13'], ['indexlength', '3'], ['indexdeltalength', '3']])), 1024);
  const got = dp.push({ payloadType: 97, marker: true, sequence: 1, timestamp: 5000, ssrc: 1, payload: Buffer.concat([head, ...aus]) }, false);
  assert.deepEqual(
    got.map((f) => [f.timestamp, f.data]),
    aus.map((a, i) => [5000 + 1024 * i, a]),
  );
});

test('Opus and PCM: one Opus packet per RTP packet; PCM cut at sample frames with the timestamp counting samples', () => {
  const opus = roundTrip(new OpusPacketizer(), new OpusDepacketizer(), [{ trackId: 3, timeMs: 0, offsetMs: 0, keyframe: true, data: bytes(80, 1) }], () => 0);
  assert.equal(opus.frames.length, 1);
  // stereo 16-bit: 4-byte sample frames; 3000 bytes -> 1400 + 1400 + 200
  const pcm = new PcmPacketizer(4);
  const data = bytes(3000, 2);
  const pls = pcm.packetize({ trackId: 4, timeMs: 0, offsetMs: 0, keyframe: true, data });
  assert.deepEqual(
    pls.map((p) => [payloadSize(p), p.tsOffset]),
    [
      [1400, 0],
      [1400, 350],
      [200, 700],
    ],
  );
  const dp = new PcmDepacketizer(4);
  const back = pls.flatMap((p, i) => dp.push({ payloadType: 10, marker: false, sequence: i, timestamp: p.tsOffset, ssrc: 1, payload: Buffer.concat(p.parts) }, false));
  assert.deepEqual(Buffer.concat(back.map((f) => f.data)), data);
});
