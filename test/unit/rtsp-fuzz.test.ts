// Fuzzing the RTSP side with fast-check: the message reader (random bytes, mutations of a
// real exchange, random chunk splits that must give the same items), SDP, Transport, RTP-Info
// and authentication challenges: results or a HazeError, nothing else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { resultOrHazeError } from '../helpers.js';
import { interleavedHeader, RtspReader, type RtspItem } from '../../src/protocols/rtsp/message.js';
import { parseSdp, writeSdp } from '../../src/protocols/rtsp/sdp.js';
import { incomingTracks } from '../../src/protocols/rtsp/sdp-tracks.js';
import { parseTransport } from '../../src/protocols/rtsp/transport.js';
import { parseChallenge } from '../../src/protocols/rtsp/auth.js';
import { parseRtpInfo, parseRtspUrl } from '../../src/protocols/rtsp/client.js';
import { streamPath } from '../../src/protocols/rtsp/server-session.js';

const SDP_TEXT =
  'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n' +
  'a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QACqzZQo35MBEAAAMAAQAAAwAUDxIllg==,aOvjyyLA\r\na=control:streamid=0\r\n' +
  'm=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/44100/2\r\na=fmtp:97 mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210\r\na=control:streamid=1\r\n' +
  'm=audio 0 RTP/AVP 8 0\r\nm=video 0 RTP/AVP 98\r\na=rtpmap:98 H265/90000\r\na=fmtp:98 sprop-vps=QAEMAf//;sprop-sps=QgEB;sprop-pps=RAHA\r\n';

const EXCHANGE = Buffer.concat([
  Buffer.from(`ANNOUNCE rtsp://h/live RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: ${SDP_TEXT.length}\r\n\r\n${SDP_TEXT}`),
  Buffer.from('SETUP rtsp://h/live/streamid=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n\r\n'),
  interleavedHeader(0, 5),
  Buffer.from([0x80, 0x60, 0, 1, 9]),
  interleavedHeader(1, 2),
  Buffer.from([0x80, 0xc8]),
  Buffer.from('RTSP/1.0 401 Unauthorized\r\nCSeq: 4\r\nWWW-Authenticate: Digest realm="x", nonce="y"\r\n\r\n'),
]);

const summary = (items: RtspItem[]): string => JSON.stringify(items.map((i) => (i.kind === 'data' ? [i.channel, i.data.toString('hex')] : i.kind === 'request' ? [i.method, i.url, [...i.headers.entries()], i.body.toString('hex')] : [i.status, [...i.headers.entries()]])));

test('fuzz: random bytes into RtspReader give items or a HazeError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.integer({ min: 1, max: 200 }), (bytes, step) => {
      const r = new RtspReader();
      const b = Buffer.from(bytes);
      resultOrHazeError(() => {
        for (let i = 0; i < b.length; i += step) r.push(b.subarray(i, i + step));
      });
    }),
    { numRuns: 1000 },
  );
});

test('fuzz: mutated exchanges give items or a HazeError; random splits of the real one give the same items', () => {
  const whole = summary(new RtspReader().push(EXCHANGE));
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: EXCHANGE.length - 1 }), { maxLength: 12 }), (cuts) => {
      const points = [...new Set(cuts)].sort((a, b) => a - b);
      const r = new RtspReader();
      const got: RtspItem[] = [];
      let prev = 0;
      for (const p of [...points, EXCHANGE.length]) {
        got.push(...r.push(EXCHANGE.subarray(prev, p)));
        prev = p;
      }
      assert.equal(summary(got), whole);
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.array(fc.record({ at: fc.nat(EXCHANGE.length - 1), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }), (muts) => {
      const b = Buffer.from(EXCHANGE);
      for (const m of muts) b[m.at] = m.value;
      resultOrHazeError(() => new RtspReader().push(b));
    }),
    { numRuns: 1000 },
  );
});

test('fuzz: SDP text (random and mutated) parses or throws a HazeError; what parses maps to tracks without other errors', () => {
  const check = (text: string): void =>
    resultOrHazeError(() => {
      const sdp = parseSdp(text);
      writeSdp(sdp);
      incomingTracks(sdp);
    });
  fc.assert(fc.property(fc.string({ maxLength: 400 }), (s) => check(`v=0\r\n${s}`)), { numRuns: 1000 });
  fc.assert(
    fc.property(fc.array(fc.record({ at: fc.nat(SDP_TEXT.length - 1), ch: fc.constantFrom('=', ':', ';', ',', '/', ' ', '\n', 'x', '9', '-', '') }), { minLength: 1, maxLength: 10 }), (muts) => {
      let s = SDP_TEXT;
      for (const m of muts) s = s.slice(0, m.at) + m.ch + s.slice(m.at + 1);
      check(s);
    }),
    { numRuns: 2000 },
  );
});

test('fuzz: Transport, RTP-Info, WWW-Authenticate headers and rtsp:// URLs', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (s) => {
      resultOrHazeError(() => parseTransport(s));
      resultOrHazeError(() => parseTransport(`RTP/AVP;${s}`));
      parseRtpInfo(s);
      parseChallenge(s);
      parseChallenge(`Digest ${s}`);
      resultOrHazeError(() => parseRtspUrl(`rtsp://${s}`));
      streamPath(`rtsp://${s}`);
    }),
    { numRuns: 2000 },
  );
});
