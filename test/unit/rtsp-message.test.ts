// RTSP message framing (RFC 2326 §4-§7, §10.12): requests, responses and interleaved frames
// from one stream in any chunking; bounds on header and body size; Transport header; SDP
// parse/write and its helpers; Digest and Basic answers (RFC 2617 §3.5's example).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isHaze } from '../helpers.js';
import { interleavedHeader, MAX_HEADER_BYTES, RtspHeaders, RtspReader, serializeRequest, serializeResponse, type RtspItem } from '../../src/protocols/rtsp/message.js';
import { parseTransport, writeTransport } from '../../src/protocols/rtsp/transport.js';
import { aggregateUrl, attribute, controlUrl, fmtp, parseSdp, rtpMap, writeSdp } from '../../src/protocols/rtsp/sdp.js';
import { Credentials, parseChallenge, pickChallenge } from '../../src/protocols/rtsp/auth.js';
import { parseRtpInfo, parseRtspUrl } from '../../src/protocols/rtsp/client.js';
import { streamPath } from '../../src/protocols/rtsp/server-session.js';

const STREAM = Buffer.concat([
  Buffer.from('OPTIONS rtsp://h/live RTSP/1.0\r\nCSeq: 1\r\n\r\n'),
  Buffer.from('ANNOUNCE rtsp://h/live RTSP/1.0\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=x\r\n'),
  interleavedHeader(0, 3),
  Buffer.from([1, 2, 3]),
  Buffer.from('\r\n'),
  interleavedHeader(1, 0),
  Buffer.from('RTSP/1.0 200 OK\r\nCSeq: 3\r\nSession: 1234;timeout=60\r\n\r\n'),
]);

function summary(items: RtspItem[]): string[] {
  return items.map((i) => (i.kind === 'data' ? `$${i.channel}:${i.data.toString('hex')}` : i.kind === 'request' ? `${i.method} ${i.url} ${i.headers.get('cseq')} ${i.body.toString()}` : `${i.status} ${i.reason} ${i.headers.get('session')}`));
}

test('RtspReader: requests, interleaved frames and responses, the same in any chunking', () => {
  const whole = summary(new RtspReader().push(STREAM));
  assert.deepEqual(whole, ['OPTIONS rtsp://h/live 1 ', 'ANNOUNCE rtsp://h/live 2 v=0\r\ns=x\r\n', '$0:010203', '$1:', '200 OK 1234;timeout=60']);
  for (const step of [1, 2, 3, 7, 50]) {
    const r = new RtspReader();
    const got: RtspItem[] = [];
    for (let i = 0; i < STREAM.length; i += step) got.push(...r.push(STREAM.subarray(i, i + step)));
    assert.deepEqual(summary(got), whole, `chunks of ${step}`);
    assert.equal(r.pendingBytes, 0);
  }
});

test('RtspReader: a header block past the bound, a huge Content-Length and a bad start line are errors', () => {
  assert.throws(() => new RtspReader().push(Buffer.alloc(MAX_HEADER_BYTES + 1, 0x41)), isHaze);
  assert.throws(() => new RtspReader().push(Buffer.from('DESCRIBE x RTSP/1.0\r\nContent-Length: 9999999\r\n\r\n')), isHaze);
  assert.throws(() => new RtspReader().push(Buffer.from('hello there\r\n\r\n')), isHaze);
  assert.throws(() => new RtspReader().push(Buffer.from('OPTIONS * RTSP/1.0\r\nno colon\r\n\r\n')), isHaze);
});

test('serialized messages: CSeq and headers, Content-Length from the body, no line breaks from values', () => {
  const req = serializeRequest('SETUP', 'rtsp://h/x/trackID=0', new RtspHeaders({ CSeq: 3, Transport: 'RTP/AVP;unicast;client_port=5000-5001' }));
  assert.equal(req.toString(), 'SETUP rtsp://h/x/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n');
  const res = serializeResponse(200, new RtspHeaders({ CSeq: '4\r\nEvil: 1' }), 'v=0\r\n');
  assert.equal(res.toString(), 'RTSP/1.0 200 OK\r\nCSeq: 4  Evil: 1\r\nContent-Length: 5\r\n\r\nv=0\r\n');
  const back = new RtspReader().push(res)[0]!;
  assert.ok(back.kind === 'response' && back.body.toString() === 'v=0\r\n');
});

test('Transport: the offers of UDP and TCP clients, and the answer', () => {
  const [a, b] = parseTransport('RTP/AVP;unicast;client_port=5000-5001;mode=record, RTP/AVP/TCP;unicast;interleaved=2-3');
  assert.deepEqual(a, { protocol: 'RTP/AVP', lower: 'UDP', unicast: true, clientPort: [5000, 5001], mode: 'record' });
  assert.deepEqual(b, { protocol: 'RTP/AVP/TCP', lower: 'TCP', unicast: true, interleaved: [2, 3] });
  assert.equal(writeTransport({ ...a!, serverPort: [6000, 6001], ssrc: 0xab }), 'RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001;ssrc=000000AB;mode=record');
  assert.throws(() => parseTransport('RTP/AVP;client_port=70000-70001'), isHaze);
  assert.deepEqual(parseTransport('RTP/AVP/TCP;interleaved=4')[0]!.interleaved, [4, 5]);
});

// ffmpeg's ANNOUNCE (rtspenc) for H.264 + AAC
const FFMPEG_SDP = [
  'v=0',
  'o=- 0 0 IN IP4 127.0.0.1',
  's=No Name',
  'c=IN IP4 127.0.0.1',
  't=0 0',
  'a=tool:libavformat 59.27.100',
  'm=video 0 RTP/AVP 96',
  'b=AS:200',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QACqzZQo35MBEAAAMAAQAAAwAUDxIllg==,aOvjyyLA; profile-level-id=64000A',
  'a=control:streamid=0',
  'm=audio 0 RTP/AVP 97',
  'b=AS:128',
  'a=rtpmap:97 MPEG4-GENERIC/44100/2',
  'a=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=121056E500',
  'a=control:streamid=1',
  '',
].join('\r\n');

test('SDP: parse/write round trip; rtpmap, fmtp (spaces, base64 padding), controls resolved against the base', () => {
  const sdp = parseSdp(FFMPEG_SDP);
  assert.equal(writeSdp(sdp), FFMPEG_SDP);
  assert.equal(sdp.media.length, 2);
  assert.deepEqual(rtpMap(sdp.media[1]!, '97'), { encoding: 'MPEG4-GENERIC', clockRate: 44100, channels: 2 });
  const f = fmtp(sdp.media[0]!, '96');
  assert.equal(f.get('sprop-parameter-sets'), 'Z2QACqzZQo35MBEAAAMAAQAAAwAUDxIllg==,aOvjyyLA');
  assert.equal(f.get('packetization-mode'), '1');
  assert.equal(fmtp(sdp.media[1]!, '97').get('config'), '121056E500');
  assert.equal(attribute(sdp.session, 'tool'), 'libavformat 59.27.100');
  assert.equal(controlUrl('rtsp://h/x/', sdp, sdp.media[0]!), 'rtsp://h/x/streamid=0');
  assert.equal(controlUrl('rtsp://h/x', sdp, sdp.media[1]!), 'rtsp://h/x/streamid=1');
  const abs = parseSdp('v=0\r\na=control:rtsp://cam/agg\r\nm=video 0 RTP/AVP 96\r\na=control:rtsp://cam/v\r\n');
  assert.equal(aggregateUrl('rtsp://other/', abs), 'rtsp://cam/agg');
  assert.equal(controlUrl('rtsp://other/', abs, abs.media[0]!), 'rtsp://cam/v');
  assert.throws(() => parseSdp('s=no version first\r\n'), isHaze);
  assert.throws(() => parseSdp('v=0\r\nm=video x RTP/AVP 96\r\n'), isHaze);
});

test('Digest answers RFC 2617 §3.5 example; Basic; Digest chosen over Basic; a repeated challenge is not answered twice', () => {
  const c = new Credentials('Mufasa', 'Circle Of Life', () => '0a4f113b');
  assert.ok(c.accept(['Basic realm="x"', 'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"']));
  const auth = c.authorization('GET', '/dir/index.html')!;
  assert.match(auth, /^Digest /);
  assert.equal(parseChallenge(auth)!.params.get('response'), '6629fae49393a05397450978507c4ef1');
  assert.equal(parseChallenge(auth)!.params.get('nc'), '00000001');
  assert.equal(parseChallenge(auth)!.params.get('opaque'), '5ccc069c403ebaf9f0171e9517f40e41');
  assert.equal(c.accept(['Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"']), false, 'same nonce: wrong password');
  assert.equal(c.accept(['Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", stale=TRUE']), true);
  const b = new Credentials('user', 'pa:ss');
  b.accept(['Basic realm="cam"']);
  assert.equal(b.authorization('DESCRIBE', 'rtsp://cam/'), `Basic ${Buffer.from('user:pa:ss').toString('base64')}`);
  assert.equal(pickChallenge(['Basic realm="a"'])!.scheme, 'basic');
});

test('URLs: rtsp:// with credentials, stream paths, RTP-Info', () => {
  assert.deepEqual(parseRtspUrl('rtsp://ad%40min:p%3Ass@cam.local/Streaming/101?x=1'), { host: 'cam.local', port: 554, url: 'rtsp://cam.local/Streaming/101?x=1', user: 'ad@min', password: 'p:ss' });
  assert.equal(parseRtspUrl('rtsp://[::1]:8554/a').host, '::1');
  assert.throws(() => parseRtspUrl('http://x/'), isHaze);
  assert.throws(() => parseRtspUrl('rtsp://%@$'), isHaze, 'a fuzz find: bad escapes in the credentials');
  assert.equal(streamPath('rtsp://h:5554/live+cam?pass=x'), 'live+cam?pass=x');
  assert.equal(streamPath('rtsp://h:5554/live/trackID=0'), 'live/trackID=0');
  assert.deepEqual(parseRtpInfo('url=rtsp://h/x/trackID=0;seq=17;rtptime=900, url=rtsp://h/x/trackID=1;seq=3;rtptime=4410'), [
    { url: 'rtsp://h/x/trackID=0', seq: 17, rtptime: 900 },
    { url: 'rtsp://h/x/trackID=1', seq: 3, rtptime: 4410 },
  ]);
});
