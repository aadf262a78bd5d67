// Fuzzing the WebRTC wire code with fast-check: random and mutated bytes into every parser of
// src/protocols/webrtc/ (STUN, SDP, SRTP, signalling, payload readers, packetizers; RTP and RTCP
// with what WebRTC sends are fuzzed in rtp-fuzz.test.ts)
// give a result or a HazeError, never another exception; the UDP mux takes any datagram from
// anywhere without throwing; the reorder buffer, fed any order of any sequence numbers, stays
// within its bound and lets every packet out at most once.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { HazeError } from '../../src/util/errors.js';
import { Logger } from '../../src/util/log.js';
import { bindingSuccess, parseStun, serializeStun, ATTR, STUN_BINDING_REQUEST } from '../../src/protocols/webrtc/stun.js';
import { parseSdp } from '../../src/protocols/webrtc/sdp.js';
import { SrtpSession } from '../../src/protocols/webrtc/srtp.js';
import { parseSignalling } from '../../src/protocols/webrtc/signalling.js';
import { H264Assembler, Vp8Assembler, h264PayloadNals, vp8Descriptor } from '../../src/protocols/webrtc/depacketize.js';
import { Av1Packetizer, H264Packetizer, Vp9Packetizer, av1Elements, vp9FrameSize } from '../../src/protocols/webrtc/packetize.js';
import { ReorderBuffer } from '../../src/protocols/webrtc/reorder.js';
import { UdpMux, type MuxedPeer } from '../../src/protocols/webrtc/udp-mux.js';

function onlyHazeErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof HazeError)) throw err;
  }
}

const bytes = (max = 2000): fc.Arbitrary<Buffer> => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

/** A valid message of each kind, mutated at random positions. */
function mutated(sample: Buffer): fc.Arbitrary<Buffer> {
  return fc.array(fc.tuple(fc.nat(sample.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }).chain((edits) =>
    fc.nat(sample.length).map((cut) => {
      const b = Buffer.from(sample);
      for (const [i, v] of edits) b[i] = v;
      return b.subarray(0, Math.max(1, cut));
    }),
  );
}

const STUN_SAMPLE = serializeStun(STUN_BINDING_REQUEST, Buffer.alloc(12, 7), [{ type: ATTR.USERNAME, value: Buffer.from('abcd:efgh') }, { type: ATTR.PRIORITY, value: Buffer.alloc(4, 1) }, { type: ATTR.USE_CANDIDATE, value: Buffer.alloc(0) }], { integrityKey: 'pw', fingerprint: true });

test('fuzz: the STUN parser on random and mutated bytes', () => {
  fc.assert(
    fc.property(fc.oneof(bytes(), mutated(STUN_SAMPLE), mutated(bindingSuccess(Buffer.alloc(12), '::1', 5, 'x'))), (b) => {
      onlyHazeErrors(() => parseStun(b));
    }),
    { numRuns: 1500 },
  );
});

test('fuzz: SRTP and SRTCP unprotect only authenticate or throw HazeErrors', () => {
  const s = new SrtpSession(Buffer.alloc(16, 1), Buffer.alloc(14, 2));
  const g = new SrtpSession(Buffer.alloc(16, 1), Buffer.alloc(12, 2), 7);
  fc.assert(
    fc.property(bytes(1500), (b) => {
      onlyHazeErrors(() => s.unprotectRtp(b));
      onlyHazeErrors(() => s.unprotectRtcp(b));
      onlyHazeErrors(() => g.unprotectRtp(b));
      onlyHazeErrors(() => g.unprotectRtcp(b));
    }),
    { numRuns: 800 },
  );
});

test('fuzz: SDP and signalling messages', () => {
  const line = fc.constantFrom('v=0', 'm=video 9 UDP/TLS/RTP/SAVPF 96 97', 'm=audio 0 X 0', 'a=rtpmap:96 H264/90000', 'a=rtpmap:97 opus/48000/2', 'a=fmtp:96 packetization-mode=1', 'a=rtcp-fb:* nack', 'a=rtcp-fb:96 nack pli', 'a=ssrc:1 cname:x', 'a=ssrc-group:FID 1 2', 'a=mid:0', 'a=group:BUNDLE 0', 'a=fingerprint:sha-256 AA:BB', 'a=setup:actpass', 'a=ice-ufrag:x', 'a=sendonly', 'a=rtpmap:x', 'a=fmtp:', 'm=');
  fc.assert(
    fc.property(fc.array(fc.oneof(line, fc.string({ maxLength: 40 })), { maxLength: 60 }), fc.string({ maxLength: 300 }), (lines, json) => {
      onlyHazeErrors(() => parseSdp(lines.join('\r\n')));
      onlyHazeErrors(() => parseSdp(`v=0\r\n${lines.join('\n')}`));
      onlyHazeErrors(() => parseSignalling(json));
      onlyHazeErrors(() => parseSignalling(JSON.stringify({ type: json, offer_sdp: json })));
    }),
    { numRuns: 800 },
  );
});

test('fuzz: payload readers, assemblers and packetizers', () => {
  const rtp = fc.record({ marker: fc.boolean(), payloadType: fc.constant(96), sequence: fc.integer({ min: 0, max: 65535 }), timestamp: fc.integer({ min: 0, max: 5 }), ssrc: fc.constant(1), payload: bytes(300) });
  fc.assert(
    fc.property(fc.array(fc.tuple(rtp, fc.boolean()), { maxLength: 40 }), bytes(3000), (packets, frame) => {
      const h = new H264Assembler();
      const v = new Vp8Assembler();
      for (const [p, gap] of packets) {
        onlyHazeErrors(() => h264PayloadNals(p.payload, undefined));
        onlyHazeErrors(() => vp8Descriptor(p.payload));
        // the assemblers take anything without throwing
        h.push({ packet: p, gap });
        v.push({ packet: p, gap });
      }
      onlyHazeErrors(() => new H264Packetizer(Buffer.alloc(0), 300).packetize(frame, true));
      onlyHazeErrors(() => new Vp9Packetizer(300).packetize(frame, frame.length % 2 === 0));
      onlyHazeErrors(() => new Av1Packetizer(300).packetize(frame, true));
      onlyHazeErrors(() => av1Elements(frame));
      vp9FrameSize(frame);
    }),
    { numRuns: 500 },
  );
});

test('fuzz: the reorder buffer stays bounded and lets each packet out once', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 50 })), { maxLength: 600 }), (seqs) => {
      const r = new ReorderBuffer({ capacity: 64, maxWaitMs: 20 });
      const seen = new Set<number>();
      let now = 0;
      let out = 0;
      for (const [seq, dt] of seqs) {
        now += dt;
        for (const o of r.push({ marker: false, payloadType: 96, sequence: seq, timestamp: 0, ssrc: 1, payload: Buffer.alloc(0) }, now)) {
          out++;
          void o;
        }
        for (const _ of r.poll(now)) out++;
        assert.ok(r.missing(1000).length <= 64);
        seen.add(seq);
      }
      assert.ok(out <= seqs.length);
    }),
    { numRuns: 300 },
  );
});

test('fuzz: the UDP mux takes any datagram from anywhere without throwing', () => {
  const sent: Buffer[] = [];
  const mux = new UdpMux({ send: (b) => void sent.push(b) }, new Logger({}), { dropRate: 0 });
  const calls: string[] = [];
  const peer: MuxedPeer = { localUfrag: 'abcd', localPwd: 'pw', onCheck: () => calls.push('check'), onDtls: () => calls.push('dtls'), onSrtp: () => calls.push('srtp') };
  mux.add(peer);
  // a valid check binds 127.0.0.1:5000 to the peer
  mux.receive(STUN_SAMPLE, '127.0.0.1', 5000);
  assert.deepEqual(calls, ['check']);
  assert.equal(sent.length, 1);
  fc.assert(
    fc.property(fc.oneof(bytes(1500), mutated(STUN_SAMPLE)), fc.constantFrom('127.0.0.1', '::1', '10.0.0.1'), fc.constantFrom(5000, 5001), (b, address, port) => {
      mux.receive(b, address, port);
    }),
    { numRuns: 1500 },
  );
  assert.ok(calls.includes('dtls') && calls.includes('srtp'), 'datagrams from the bound address reach the peer');
  assert.ok(mux.counters.stunRefused > 0 && mux.counters.unknown > 0);
});

test('fuzz: the DTLS endpoint takes random records without throwing or rejecting', async () => {
  const { DtlsEndpoint, dtlsIdentity } = await import('../../src/protocols/webrtc/dtls.js');
  const id = await dtlsIdentity();
  const rejections: unknown[] = [];
  const onRejection = (r: unknown): void => void rejections.push(r);
  process.on('unhandledRejection', onRejection);
  try {
    const closed: string[] = [];
    const record = fc.tuple(fc.constantFrom(20, 21, 22, 23), bytes(300)).map(([type, body]) => {
      // a DTLS record header: type, version 1.2, epoch 0, sequence, length
      const h = Buffer.from([type, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 1, body.length >> 8, body.length & 0xff]);
      return Buffer.concat([h, body]);
    });
    fc.assert(
      fc.property(fc.array(fc.oneof(record, bytes(300)), { maxLength: 10 }), (datagrams) => {
        const d = new DtlsEndpoint(id, () => {}, { algorithm: 'sha-256', value: 'AA' }, { connected: () => assert.fail('no handshake can complete'), closed: (r) => void closed.push(r) });
        for (const g of datagrams) d.receive(g);
        d.close();
      }),
      { numRuns: 200 },
    );
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(rejections, []);
  } finally {
    process.off('unhandledRejection', onRejection);
  }
});
