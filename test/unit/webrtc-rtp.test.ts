// The packetizers and the receive side (reorder buffer, frame assemblers) of
// src/protocols/webrtc/: round trips of every payload format Haze sends through the
// depacketizers (Haze's own for H.264/VP8/Opus, werift's for VP9 and AV1), and a shuffled,
// lossy packet order put back together. (RTP and RTCP, NACK packing included: rtp-packet.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AV1RtpPayload, Vp9RtpPayload } from 'werift';
import type { RtpPacket } from '../../src/protocols/rtp/packet.js';
import { h264SliceType } from '../../src/protocols/rtp/h264.js';
import { Av1Packetizer, H264Packetizer, OpusPacketizer, Vp8Packetizer, Vp9Packetizer, av1Elements, vp9FrameSize } from '../../src/protocols/webrtc/packetize.js';
import { H264Assembler, OpusAssembler, Vp8Assembler, vp8FrameSize, type FrameAssembler, type ReceivedFrame } from '../../src/protocols/webrtc/depacketize.js';
import { ReorderBuffer } from '../../src/protocols/webrtc/reorder.js';
import { buildAvcC } from '../../src/media/h264.js';

/** RTP packets of frames, as a sender would number them. */
function toRtp(frames: { payloads: Buffer[]; timestamp: number }[], pt = 96): RtpPacket[] {
  const out: RtpPacket[] = [];
  let seq = 65500;
  for (const f of frames) f.payloads.forEach((payload, i) => out.push({ marker: i === f.payloads.length - 1, payloadType: pt, sequence: seq++ & 0xffff, timestamp: f.timestamp, ssrc: 1, payload }));
  return out;
}

function assemble(a: FrameAssembler, packets: RtpPacket[], reorder = new ReorderBuffer()): ReceivedFrame[] {
  const out: ReceivedFrame[] = [];
  for (const p of packets) for (const o of reorder.push(p, 0)) out.push(...a.push(o));
  for (const o of reorder.poll(1e9)) out.push(...a.push(o));
  return out;
}

const SPS = Buffer.from('6764001facd9405005bb011000000300100000030320f1831960', 'hex');
const PPS = Buffer.from('68ebecb22c', 'hex');
const avcC = buildAvcC(SPS, PPS);

function avcc(...nals: Buffer[]): Buffer {
  return Buffer.concat(nals.flatMap((n) => [Buffer.from([0, 0, 0, 0].map((_, i) => (n.length >> (24 - 8 * i)) & 0xff)), n]));
}

test('H.264: single NAL, FU-A and the STAP-A of SPS/PPS round trip; B-frames are left out', () => {
  const pk = new H264Packetizer(avcC, 200);
  const idr = Buffer.concat([Buffer.from([0x65, 0x88]), Buffer.alloc(1000, 0x11)]);
  const sei = Buffer.from([0x06, 0x05, 0x01, 0x80]);
  const aud = Buffer.from([0x09, 0xf0]);
  // a P slice and a B slice: first_mb_in_slice 0 ('1'), slice_type 5 (P, '00110') or 6 (B, '00111')
  const pSlice = Buffer.concat([Buffer.from([0x41, 0b10011000]), Buffer.alloc(300, 0x22)]);
  const bSlice = Buffer.concat([Buffer.from([0x01, 0b10011100]), Buffer.alloc(50, 0x33)]);
  assert.equal(h264SliceType(pSlice), 0);
  assert.equal(h264SliceType(bSlice), 1);
  const key = pk.packetize(avcc(aud, sei, idr), true);
  assert.equal(key[0]![0]! & 0x1f, 24, 'STAP-A first');
  assert.ok(key.every((p) => p.length <= 200));
  const p = pk.packetize(avcc(pSlice), false);
  assert.deepEqual(pk.packetize(avcc(bSlice), false), []);
  assert.equal(pk.droppedBFrames, 1);
  const frames = assemble(new H264Assembler(), toRtp([{ payloads: key, timestamp: 0 }, { payloads: p, timestamp: 3000 }]));
  assert.equal(frames.length, 2);
  assert.ok(frames[0]!.keyframe);
  assert.ok(frames[0]!.sps?.equals(SPS) && frames[0]!.pps?.equals(PPS));
  assert.ok(frames[0]!.data.equals(avcc(sei, idr)), 'AUD dropped, SPS/PPS kept aside');
  assert.ok(frames[1]!.data.equals(avcc(pSlice)));
  assert.equal(frames[1]!.keyframe, false);
});

test('H.264: a lost packet drops its frame and everything up to the next keyframe', () => {
  const pk = new H264Packetizer(avcC, 200);
  const idr = Buffer.concat([Buffer.from([0x65]), Buffer.alloc(900, 1)]);
  const pSlice = Buffer.concat([Buffer.from([0x41, 0b10011000]), Buffer.alloc(500, 2)]);
  const packets = toRtp([
    { payloads: pk.packetize(avcc(idr), true), timestamp: 0 },
    { payloads: pk.packetize(avcc(pSlice), false), timestamp: 3000 },
    { payloads: pk.packetize(avcc(pSlice), false), timestamp: 6000 },
    { payloads: pk.packetize(avcc(idr), true), timestamp: 9000 },
    { payloads: pk.packetize(avcc(pSlice), false), timestamp: 12000 },
  ]);
  // lose the second packet of the first P frame
  const firstP = packets.findIndex((p) => p.timestamp === 3000);
  const a = new H264Assembler();
  const frames = assemble(a, packets.filter((_, i) => i !== firstP + 1));
  assert.deepEqual(frames.map((f) => f.timestamp), [0, 9000, 12000]);
  assert.equal(a.dropped, 2);
  assert.equal(a.needKeyframe, false);
});

test('VP8 round trip with the keyframe size; Opus as is', () => {
  const key = Buffer.concat([Buffer.from([0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00]), Buffer.alloc(2500, 5)]);
  const inter = Buffer.concat([Buffer.from([0x31, 0x02, 0x00]), Buffer.alloc(700, 6)]);
  assert.deepEqual(vp8FrameSize(key), { width: 320, height: 240 });
  const pk = new Vp8Packetizer(1200);
  const frames = assemble(new Vp8Assembler(), toRtp([
    { payloads: pk.packetize(key), timestamp: 100 },
    { payloads: pk.packetize(inter), timestamp: 3100 },
  ]));
  assert.equal(frames.length, 2);
  assert.ok(frames[0]!.data.equals(key) && frames[0]!.keyframe);
  assert.ok(frames[1]!.data.equals(inter) && !frames[1]!.keyframe);
  const opus = Buffer.from('fc0102030405', 'hex');
  const got = assemble(new OpusAssembler(), toRtp([{ payloads: new OpusPacketizer().packetize(opus), timestamp: 960 }], 111));
  assert.ok(got[0]!.data.equals(opus));
});

test('VP9 payloads read back by werift: descriptor flags and the frame', () => {
  // a VP9 profile-0 keyframe header for 320x240 (frame marker, sync code, size - 1)
  const header = Buffer.from([0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf0]);
  const key = Buffer.concat([header, Buffer.alloc(3000, 9)]);
  assert.deepEqual(vp9FrameSize(key), { width: 320, height: 240 });
  const payloads = new Vp9Packetizer(1200).packetize(key, true);
  assert.ok(payloads.length >= 3);
  const parsed = payloads.map((p) => Vp9RtpPayload.deSerialize(p));
  assert.equal(parsed[0]!.bBit, 1);
  assert.equal(parsed[0]!.pBit, 0);
  assert.equal(parsed[payloads.length - 1]!.eBit, 1);
  assert.equal(parsed[0]!.vBit, 1);
  assert.deepEqual([parsed[0]!.width[0], parsed[0]!.height[0]], [320, 240]);
  const inter = Vp9RtpPayload.deSerialize(new Vp9Packetizer(1200).packetize(Buffer.alloc(100, 1), false)[0]!);
  assert.deepEqual([inter.pBit, inter.fBit, inter.pDiff], [1, 1, [1]]);
  assert.ok(Buffer.concat(parsed.map((p) => p.payload)).equals(key));
});

/**
 * Reads AV1 RTP payloads back into a temporal unit as the AV1 RTP spec §4.3 describes (werift's
 * reader joins fragments only partly): elements by W and leb128 lengths, fragments by Z and Y,
 * OBUs given their size fields again.
 */
function av1Depacketize(payloads: Buffer[]): { obus: Buffer[]; n: number[]; z: number[]; y: number[] } {
  const leb = (b: Buffer, pos: number): [number, number] => {
    let v = 0;
    for (let i = 0; ; i++) {
      v += (b[pos + i]! & 0x7f) * 2 ** (7 * i);
      if (!(b[pos + i]! & 0x80)) return [v, i + 1];
    }
  };
  const obus: Buffer[] = [];
  let pending: Buffer[] = [];
  const info = { n: [] as number[], z: [] as number[], y: [] as number[] };
  for (const p of payloads) {
    const h = p[0]!;
    const z = h >> 7;
    const y = (h >> 6) & 1;
    const w = (h >> 4) & 3;
    info.n.push((h >> 3) & 1);
    info.z.push(z);
    info.y.push(y);
    const elements: Buffer[] = [];
    let pos = 1;
    while (pos < p.length) {
      const lastOfW = w !== 0 && elements.length === w - 1;
      const [len, bytes] = lastOfW ? [p.length - pos, 0] : leb(p, pos);
      elements.push(p.subarray(pos + bytes, pos + bytes + len));
      pos += bytes + len;
    }
    elements.forEach((e, i) => {
      const continues = i === 0 && z === 1;
      const continued = i === elements.length - 1 && y === 1;
      if (continues) pending.push(e);
      else pending = [e];
      if (!continued) {
        const whole = Buffer.concat(pending);
        pending = [];
        const size = whole.length - 1;
        obus.push(Buffer.concat([Buffer.from([whole[0]! | 0x02, ...(size > 127 ? [(size & 0x7f) | 0x80, size >> 7] : [size])]), whole.subarray(1)]));
      }
    });
  }
  return { obus, ...info };
}

test('AV1 payloads: OBUs without temporal delimiters or size fields, fragments marked, N on the keyframe', () => {
  const obu = (type: number, payload: Buffer): Buffer => Buffer.concat([Buffer.from([(type << 3) | 0x02, ...(payload.length > 127 ? [(payload.length & 0x7f) | 0x80, payload.length >> 7] : [payload.length])]), payload]);
  const seqHeader = Buffer.alloc(12, 0x0a);
  const frame = Buffer.alloc(3000, 0x0b);
  const tu = Buffer.concat([obu(2, Buffer.alloc(0)), obu(1, seqHeader), obu(6, frame)]);
  const { elements, sequenceHeader } = av1Elements(tu);
  assert.equal(sequenceHeader, true);
  assert.equal(elements.length, 2, 'the temporal delimiter is left out');
  assert.ok(elements.every((e) => (e[0]! & 0x02) === 0), 'no size fields');
  const payloads = new Av1Packetizer(1200).packetize(tu, true);
  assert.ok(payloads.length >= 3 && payloads.every((p) => p.length <= 1200));
  const back = av1Depacketize(payloads);
  assert.deepEqual(back.obus, [obu(1, seqHeader), obu(6, frame)]);
  assert.deepEqual(back.n, [1, ...payloads.slice(1).map(() => 0)]);
  assert.deepEqual(back.z.slice(0, 2), [0, 1]);
  assert.equal(back.y[payloads.length - 1], 0);
  // werift's reader takes the aggregation header the same way
  const w = AV1RtpPayload.deSerialize(payloads[0]!);
  assert.deepEqual([w.nBit_RtpStartsNewCodedVideoSequence, w.zBit_RtpStartsWithFragment, w.yBit_RtpEndsWithFragment, w.w_RtpNumObus], [1, 0, 1, 2]);
  // many small OBUs in one packet: W = 0, every element with its length
  const small = Buffer.concat([1, 2, 3, 4, 5].map((i) => obu(5, Buffer.alloc(10, i))));
  const one = new Av1Packetizer(1200).packetize(small, false);
  assert.equal(one.length, 1);
  assert.equal((one[0]![0]! >> 4) & 3, 0);
  assert.deepEqual(av1Depacketize(one).obus, [1, 2, 3, 4, 5].map((i) => obu(5, Buffer.alloc(10, i))));
});

test('the reorder buffer puts shuffled packets in order, skips lost ones after waiting, lists the missing', () => {
  const r = new ReorderBuffer({ capacity: 64, maxWaitMs: 100 });
  const mk = (seq: number): RtpPacket => ({ marker: false, payloadType: 96, sequence: seq & 0xffff, timestamp: 0, ssrc: 1, payload: Buffer.alloc(1) });
  const out: number[] = [];
  const take = (list: { packet: RtpPacket; gap: boolean }[]): void => {
    for (const o of list) out.push(o.gap ? -o.packet.sequence : o.packet.sequence);
  };
  take(r.push(mk(65534), 0));
  take(r.push(mk(0), 1));
  take(r.push(mk(65535), 2));
  take(r.push(mk(3), 3));
  take(r.push(mk(2), 4));
  assert.deepEqual(r.missing(), [1]);
  take(r.poll(50));
  assert.deepEqual(out, [65534, 65535, 0]);
  take(r.poll(200));
  assert.deepEqual(out, [65534, 65535, 0, -2, 3]);
  assert.equal(r.lost, 1);
  take(r.push(mk(1), 300));
  assert.equal(r.duplicates, 1, 'a packet that came too late is dropped');
});
