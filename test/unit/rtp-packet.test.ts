// RTP and RTCP codecs (RFC 3550 §5.1, §6.4-6.6; RTCP feedback, RFC 4585, RFC 5104 and REMB,
// read back by werift too), NTP time, and the sequence reordering of packets that came over UDP.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RtcpPacketConverter } from 'werift';
import { hex, isHaze } from '../helpers.js';
import { looksLikeRtcp, parseRtp, seqDelta, serializeRtp, type RtpPacket } from '../../src/protocols/rtp/packet.js';
import { ntpFromUnixMs, parseRtcp, serializeBye, serializeRr, serializeSdesCname, serializeSr, serializeSrCname, unixMsFromNtp } from '../../src/protocols/rtp/rtcp.js';
import { serializeFir, serializeNack, serializePli, serializeRemb } from '../../src/protocols/rtp/rtcp-feedback.js';
import { SequenceOrder } from '../../src/protocols/rtp/sequence.js';

test('RTP header: fields, CSRCs, extension and padding are read; the payload is a view of the input', () => {
  const p = serializeRtp({ payloadType: 96, marker: true, sequence: 0xfffe, timestamp: 0xdeadbeef, ssrc: 0x01020304 }, Buffer.from('abc'));
  assert.deepEqual(p.subarray(0, 12), hex('80 e0 fffe deadbeef 01020304'));
  const r = parseRtp(p);
  assert.deepEqual({ ...r, payload: r.payload.toString() }, { payloadType: 96, marker: true, sequence: 0xfffe, timestamp: 0xdeadbeef, ssrc: 0x01020304, payload: 'abc' });
  // V=2 P=1 X=1 CC=1, one CSRC, a 1-word extension, 3 bytes of padding
  const full = hex('b1 08 0001 00000010 0000000a', '0000000b', 'bede0001 11223344', '6869', '000003');
  const f = parseRtp(full);
  assert.equal(f.payload.toString(), 'hi');
  assert.equal(f.payload.buffer, full.buffer);
  assert.throws(() => parseRtp(hex('40 00 0000 00000000 00000000')), isHaze, 'version 1');
  assert.throws(() => parseRtp(hex('a0 00 0000 00000000 00000000 00')), isHaze, 'padding count 0');
  assert.throws(() => parseRtp(hex('80 00 00')), isHaze);
  assert.equal(seqDelta(65535, 1), 2);
  assert.equal(seqDelta(1, 65535), -2);
});

test('RTCP: a compound SR + SDES + BYE round-trips; RR report blocks keep their signed loss', () => {
  const ntp = ntpFromUnixMs(1_700_000_000_250);
  const sr = serializeSr({ ssrc: 7, ntpSeconds: ntp.seconds, ntpFraction: ntp.fraction, rtpTimestamp: 123456, packetCount: 10, octetCount: 1000 });
  const parts = parseRtcp(Buffer.concat([sr, serializeSdesCname(7, 'haze@host'), serializeBye(7)]));
  assert.equal(parts.length, 3);
  const s = parts[0]!;
  assert.ok(s.type === 'sr');
  assert.equal(s.rtpTimestamp, 123456);
  assert.equal(s.packetCount, 10);
  assert.ok(Math.abs(unixMsFromNtp(s.ntpSeconds, s.ntpFraction) - 1_700_000_000_250) < 0.001);
  assert.equal(parts[1]!.type, 'other');
  assert.deepEqual(parts[2], { type: 'bye', ssrcs: [7] });
  const rr = parseRtcp(serializeRr(9, [{ ssrc: 7, fractionLost: 3, cumulativeLost: -5, highestSequence: 70000, jitter: 12, lastSr: 1, delaySinceLastSr: 2 }]));
  assert.deepEqual(rr, [{ type: 'rr', ssrc: 9, reports: [{ ssrc: 7, fractionLost: 3, cumulativeLost: -5, highestSequence: 70000, jitter: 12, lastSr: 1, delaySinceLastSr: 2 }] }]);
  assert.throws(() => parseRtcp(hex('80c8 0006 00000007')), isHaze, 'length past the end');
  // NTP of the Unix epoch is 2208988800 s
  assert.deepEqual(ntpFromUnixMs(0), { seconds: 2208988800, fraction: 0 });
});

test('RTP header round trip, padding, RTCP detection on a muxed port', () => {
  const p: RtpPacket = { marker: true, payloadType: 102, sequence: 65535, timestamp: 0xfffffff0, ssrc: 0xdeadbeef, payload: Buffer.from('hello') };
  const raw = serializeRtp(p, p.payload);
  assert.deepEqual(parseRtp(raw), p);
  assert.equal(looksLikeRtcp(raw), false);
  const padded = Buffer.concat([raw, Buffer.from([0, 0, 3])]);
  padded[0] = padded[0]! | 0x20;
  assert.equal(parseRtp(padded).payload.toString(), 'hello');
  assert.equal(looksLikeRtcp(serializePli(1, 2)), true);
  assert.equal(seqDelta(65534, 2), 4);
  assert.equal(seqDelta(2, 65534), -4);
});

test('RTCP feedback and the SR + CNAME compound: what Haze writes parses back, and werift reads it the same', () => {
  const sr = parseRtcp(serializeSrCname(7, Date.UTC(2026, 0, 1), 123456, 10, 2000, 'me'));
  assert.equal(sr[0]?.type, 'sr');
  assert.equal(sr[0]?.type === 'sr' && sr[0].rtpTimestamp, 123456);
  const nack = serializeNack(1, 2, [100, 101, 116, 117, 200, 65535, 0]);
  const n = parseRtcp(nack)[0]!;
  assert.ok(n.type === 'nack');
  assert.deepEqual(n.lost.sort((a, b) => a - b), [0, 100, 101, 116, 117, 200, 65535]);
  const w = RtcpPacketConverter.deSerialize(nack)[0] as unknown as { feedback: { lost: number[] } };
  // (werift does not wrap a bitmask past 65535 to 0)
  assert.deepEqual([...w.feedback.lost].map((x) => x & 0xffff).sort((a, b) => a - b), [0, 100, 101, 116, 117, 200, 65535]);
  const rr = parseRtcp(serializeRr(9, [{ ssrc: 5, fractionLost: 12, cumulativeLost: -3, highestSequence: 70000, jitter: 4, lastSr: 5, delaySinceLastSr: 6 }]))[0]!;
  assert.ok(rr.type === 'rr');
  assert.deepEqual(rr.reports[0], { ssrc: 5, fractionLost: 12, cumulativeLost: -3, highestSequence: 70000, jitter: 4, lastSr: 5, delaySinceLastSr: 6 });
  const remb = parseRtcp(serializeRemb(1, 6_000_000, [3, 4]))[0]!;
  assert.ok(remb.type === 'remb');
  assert.ok(Math.abs(remb.bitrateBps - 6_000_000) < 64);
  assert.deepEqual(remb.ssrcs, [3, 4]);
  const compound = Buffer.concat([serializePli(1, 2), serializeFir(1, 3, 9)]);
  assert.deepEqual(parseRtcp(compound), [
    { type: 'pli', senderSsrc: 1, mediaSsrc: 2 },
    { type: 'fir', senderSsrc: 1, entries: [{ ssrc: 3, seq: 9 }] },
  ]);
});

const pkt = (sequence: number): RtpPacket => ({ payloadType: 96, marker: false, sequence, timestamp: 0, ssrc: 1, payload: Buffer.alloc(0) });

test('sequence order: reordered packets come out in order, a gap that does not fill is skipped as lost, duplicates dropped', () => {
  const o = new SequenceOrder(3);
  const seqs = (xs: ReturnType<SequenceOrder['push']>): Array<[number, boolean]> => xs.map((x) => [x.packet.sequence, x.lost]);
  assert.deepEqual(seqs(o.push(pkt(65534))), [[65534, false]]);
  assert.deepEqual(seqs(o.push(pkt(0))), []);
  assert.deepEqual(seqs(o.push(pkt(65535))), [
    [65535, false],
    [0, false],
  ]);
  assert.deepEqual(seqs(o.push(pkt(0))), [], 'duplicate');
  // 1 is lost: 2..5 wait, then the gap is given up on
  assert.deepEqual(seqs(o.push(pkt(2))), []);
  assert.deepEqual(seqs(o.push(pkt(3))), []);
  assert.deepEqual(seqs(o.push(pkt(4))), []);
  assert.deepEqual(seqs(o.push(pkt(5))), [
    [2, true],
    [3, false],
    [4, false],
    [5, false],
  ]);
  assert.equal(o.lostPackets, 1);
  // TCP: no holding, gaps only counted
  const t = new SequenceOrder(0);
  t.push(pkt(10));
  assert.deepEqual(seqs(t.push(pkt(13))), [[13, true]]);
  assert.equal(t.lostPackets, 2);
});
