// Fuzzing the RTP side with fast-check: random and mutated bytes into the RTP/RTCP parsers
// (RTCP feedback included: the compound packets WebRTC peers send),
// every depacketizer and the ingest of a whole session give results or a HazeError, never
// another exception, and never more memory than their bounds.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { resultOrHazeError } from '../helpers.js';
import { parseRtp, serializeRtp } from '../../src/protocols/rtp/packet.js';
import { parseRtcp, serializeSdesCname, serializeSr, serializeSrCname } from '../../src/protocols/rtp/rtcp.js';
import { serializeNack } from '../../src/protocols/rtp/rtcp-feedback.js';
import { h264Depacketizer } from '../../src/protocols/rtp/h264.js';
import { hevcDepacketizer } from '../../src/protocols/rtp/hevc.js';
import { AacDepacketizer, auHeaderParams } from '../../src/protocols/rtp/aac.js';
import { OpusDepacketizer } from '../../src/protocols/rtp/opus.js';
import { PcmDepacketizer } from '../../src/protocols/rtp/pcm.js';
import { MAX_FRAME_BYTES, type Depacketizer } from '../../src/protocols/rtp/payload.js';
import { RtpIngest } from '../../src/protocols/rtsp/rtp-ingest.js';
import { incomingTracks } from '../../src/protocols/rtsp/sdp-tracks.js';
import { parseSdp } from '../../src/protocols/rtsp/sdp.js';
import type { Packet, Track } from '../../src/media/types.js';

const makers: Array<[string, () => Depacketizer]> = [
  ['h264', () => h264Depacketizer(Buffer.alloc(0))],
  ['hevc', () => hevcDepacketizer(Buffer.alloc(0))],
  ['hevc-donl', () => hevcDepacketizer(Buffer.alloc(0), true)],
  ['aac-hbr', () => new AacDepacketizer(auHeaderParams(new Map([['sizelength', '13'], ['indexlength', '3'], ['indexdeltalength', '3']])), 1024)],
  ['aac-odd', () => new AacDepacketizer(auHeaderParams(new Map([['sizelength', '6'], ['indexlength', '2'], ['indexdeltalength', '2'], ['ctsdeltalength', '5'], ['dtsdeltalength', '3'], ['randomaccessindication', '1'], ['auxiliarydatasizelength', '4']])), 1024)],
  ['opus', () => new OpusDepacketizer()],
  ['pcm', () => new PcmDepacketizer(4)],
];

test('fuzz: random bytes into parseRtp and parseRtcp give a packet or a HazeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const b = Buffer.from(bytes);
      resultOrHazeError(() => parseRtp(b));
      resultOrHazeError(() => parseRtcp(b));
      // with a valid first byte, deeper paths are reached
      if (b.length > 0) {
        b[0] = 0x80 | (b[0]! & 0x3f);
        resultOrHazeError(() => parseRtp(b));
        resultOrHazeError(() => parseRtcp(b));
      }
    }),
    { numRuns: 2000 },
  );
});

/** A compound RTCP packet (SR, SDES, NACK) with random bytes changed and its end cut off. */
const RTCP_SAMPLE = Buffer.concat([serializeSrCname(1, 0, 2, 3, 4, 'c'), serializeNack(1, 2, [5, 6, 30])]);
const mutatedRtcp = fc
  .tuple(fc.array(fc.tuple(fc.nat(RTCP_SAMPLE.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(RTCP_SAMPLE.length))
  .map(([edits, cut]) => {
    const b = Buffer.from(RTCP_SAMPLE);
    for (const [i, v] of edits) b[i] = v;
    return b.subarray(0, Math.max(1, cut));
  });

test('fuzz: mutated compound RTCP with feedback into parseRtcp and parseRtp; a NACK expands to a bounded list', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)), mutatedRtcp), (b) => {
      resultOrHazeError(() => parseRtp(b));
      resultOrHazeError(() => {
        for (const m of parseRtcp(b)) if (m.type === 'nack') assert.ok(m.lost.length <= 1024);
      });
    }),
    { numRuns: 1500 },
  );
});

test('fuzz: random payloads and markers into every depacketizer; frames stay under the bound', () => {
  for (const [name, make] of makers) {
    fc.assert(
      fc.property(fc.array(fc.record({ payload: fc.uint8Array({ maxLength: 300 }), marker: fc.boolean(), ts: fc.integer({ min: 0, max: 3 }), lost: fc.boolean() }), { maxLength: 40 }), (pkts) => {
        const d = make();
        resultOrHazeError(() => {
          pkts.forEach((p, i) => {
            for (const f of d.push({ payloadType: 96, marker: p.marker, sequence: i, timestamp: p.ts * 3000, ssrc: 1, payload: Buffer.from(p.payload) }, p.lost)) {
              assert.ok(f.data.length <= MAX_FRAME_BYTES, name);
            }
          });
          d.flush();
          d.takeInit();
        });
      }),
      { numRuns: 300 },
    );
  }
});

const SDP = parseSdp(
  'v=0\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:v\r\nm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=fmtp:97 mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190\r\na=control:a\r\n',
);

test('fuzz: a session ingest fed random RTP/RTCP (valid headers, random payloads) pushes only well-formed packets', () => {
  const { tracks } = incomingTracks(SDP);
  fc.assert(
    fc.property(
      fc.array(fc.record({ track: fc.integer({ min: 0, max: 1 }), rtcp: fc.boolean(), seq: fc.integer({ min: 0, max: 65535 }), ts: fc.integer({ min: 0, max: 0xffffffff }), marker: fc.boolean(), payload: fc.uint8Array({ maxLength: 200 }) }), { maxLength: 60 }),
      (items) => {
        const got: Packet[] = [];
        const set: Track[] = [];
        let now = 0;
        const ingest = new RtpIngest(tracks, { setTrack: (t) => set.push(t), push: (p) => got.push(p) }, { reorder: true, now: () => (now += 50) });
        resultOrHazeError(() => {
          for (const it of items) {
            if (it.rtcp) {
              const sr = serializeSr({ ssrc: 1, ntpSeconds: 3_900_000_000 + it.seq, ntpFraction: it.ts, rtpTimestamp: it.ts, packetCount: 0, octetCount: 0 });
              ingest.rtcp(it.track, Buffer.concat([sr, serializeSdesCname(1, 'x')]));
            } else {
              ingest.rtp(it.track, serializeRtp({ payloadType: 96, marker: it.marker, sequence: it.seq, timestamp: it.ts, ssrc: 5 }, it.payload));
            }
          }
          ingest.close();
        });
        let last = new Map<number, number>();
        for (const p of got) {
          assert.ok(Number.isInteger(p.timeMs) && p.timeMs >= 0 && p.offsetMs >= 0);
          assert.ok((last.get(p.trackId) ?? -1) <= p.timeMs, 'decode times never go back');
          last.set(p.trackId, p.timeMs);
          assert.ok(set.some((t) => t.id === p.trackId), 'packets only of announced tracks');
        }
        last = new Map();
      },
    ),
    { numRuns: 300 },
  );
});
