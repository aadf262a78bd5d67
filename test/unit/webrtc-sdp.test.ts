// SDP for WebRTC (src/protocols/webrtc/sdp.ts) on offers Debian's Chromium made (recvonly for
// WHEP, sendonly for WHIP; test/fixtures/webrtc/): what is read from them, which codecs are
// chosen, and an answer werift's own SDP parser reads back as meant.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { SessionDescription } from 'werift';
import { fmtpParams, offerPublishes, parseSdp, pickReceiveCodec, pickSendCodec, RECEIVE_AUDIO_CODECS, RECEIVE_VIDEO_CODECS, supportedFeedback, writeAnswer, type AnswerMedia } from '../../src/protocols/webrtc/sdp.js';
import { fixturesDir } from '../helpers.js';

const WHEP_OFFER = fs.readFileSync(path.join(fixturesDir, 'webrtc/chrome-whep-offer.sdp'), 'utf8');
const WHIP_OFFER = fs.readFileSync(path.join(fixturesDir, 'webrtc/chrome-whip-offer.sdp'), 'utf8');

test("Chromium's WHEP offer: media, ICE, DTLS and codecs", () => {
  const o = parseSdp(WHEP_OFFER);
  assert.deepEqual(o.bundle, ['0', '1']);
  assert.equal(o.media.length, 2);
  const [v, a] = o.media as [NonNullable<(typeof o.media)[0]>, NonNullable<(typeof o.media)[0]>];
  assert.equal(v.kind, 'video');
  assert.equal(a.kind, 'audio');
  assert.equal(v.direction, 'recvonly');
  assert.equal(v.mid, '0');
  assert.ok(v.iceUfrag && v.icePwd && v.icePwd.length >= 22);
  assert.equal(v.fingerprint?.algorithm, 'sha-256');
  assert.match(v.fingerprint!.value, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(v.setup, 'actpass');
  assert.ok(v.rtcpMux);
  const h264 = v.codecs.find((c) => c.pt === 108)!;
  assert.equal(h264.name, 'H264');
  assert.equal(h264.clockRate, 90000);
  assert.equal(fmtpParams(h264.fmtp).get('profile-level-id'), '42e01f');
  assert.ok(h264.feedback.includes('nack pli'));
  const opus = a.codecs.find((c) => c.name === 'opus')!;
  assert.deepEqual([opus.clockRate, opus.channels], [48000, 2]);
  assert.equal(offerPublishes(o), false);
});

test('codec choice: H.264 by profile with packetization-mode 1, VP8/VP9/AV1, Opus', () => {
  const o = parseSdp(WHEP_OFFER);
  const v = o.media[0]!;
  const mode = (pt: number | undefined): string | undefined => fmtpParams(v.codecs.find((c) => c.pt === pt)?.fmtp ?? '').get('packetization-mode');
  // a Main-profile stream gets the offered Main profile, a High one (not offered) constrained baseline
  const main = pickSendCodec(v, 'H264', 0x4d)!;
  assert.equal(fmtpParams(main.fmtp).get('profile-level-id'), '4d001f');
  assert.equal(mode(main.pt), '1');
  const high = pickSendCodec(v, 'H264', 0x64)!;
  assert.equal(fmtpParams(high.fmtp).get('profile-level-id'), '42e01f');
  assert.equal(mode(high.pt), '1');
  assert.equal(pickSendCodec(v, 'VP8')?.name, 'VP8');
  assert.equal(fmtpParams(pickSendCodec(v, 'VP9')!.fmtp).get('profile-id') ?? '0', '0');
  assert.equal(pickSendCodec(v, 'AV1')?.name, 'AV1');
  assert.equal(pickSendCodec(v, 'HEVC'), undefined);
  assert.equal(pickSendCodec(o.media[1]!, 'opus')?.pt, 111);
  assert.equal(pickSendCodec(o.media[1]!, 'AAC'), undefined);
});

test("Chromium's WHIP offer publishes; Haze receives H.264 mode 1 and Opus", () => {
  const o = parseSdp(WHIP_OFFER);
  assert.equal(offerPublishes(o), true);
  const v = o.media[0]!;
  assert.equal(v.direction, 'sendonly');
  assert.equal(v.ssrcs.length, 1, 'the RTX SSRC of the FID group is not the media SSRC');
  assert.equal(v.rtxSsrcs.length, 1);
  const h264 = pickReceiveCodec(v, RECEIVE_VIDEO_CODECS)!;
  assert.equal(h264.name, 'H264');
  assert.equal(fmtpParams(h264.fmtp).get('packetization-mode'), '1');
  assert.equal(pickReceiveCodec(o.media[1]!, RECEIVE_AUDIO_CODECS)?.name, 'opus');
  assert.deepEqual(supportedFeedback(h264, true).sort(), ['ccm fir', 'goog-remb', 'nack', 'nack pli']);
  assert.deepEqual(supportedFeedback(h264, false).sort(), ['ccm fir', 'nack', 'nack pli']);
});

test('the answer: ICE-lite, passive DTLS, one codec per section, candidates; werift reads it', () => {
  const o = parseSdp(WHEP_OFFER);
  const video = pickSendCodec(o.media[0]!, 'H264', 0x42)!;
  const audio = pickSendCodec(o.media[1]!, 'opus')!;
  const answers: AnswerMedia[] = [
    { codec: video, direction: 'sendonly', feedback: supportedFeedback(video, false), ssrc: 1111, msid: { stream: 'haze', track: 'video1' } },
    { codec: audio, direction: 'sendonly', feedback: [], ssrc: 2222, msid: { stream: 'haze', track: 'audio2' }, fmtp: 'minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1' },
  ];
  const fingerprint = Array.from({ length: 32 }, (_, i) => i.toString(16).padStart(2, '0').toUpperCase()).join(':');
  const text = writeAnswer(o, answers, { ufrag: 'abcdABCD01234567', pwd: 'p'.repeat(32), fingerprint, candidates: [{ address: '127.0.0.1', port: 18203 }, { address: 'fd00::2', port: 18203 }], cname: 'cn' }, '123');
  assert.match(text, /^v=0\r\n/);
  assert.match(text, /\r\na=ice-lite\r\n/);
  assert.match(text, /\r\na=group:BUNDLE 0 1\r\n/);
  assert.match(text, /a=candidate:1 1 udp \d+ 127\.0\.0\.1 18203 typ host/);
  assert.match(text, /a=candidate:2 1 udp \d+ fd00::2 18203 typ host/);
  const back = parseSdp(text);
  assert.equal(back.iceLite, true);
  assert.deepEqual(back.media.map((m) => [m.direction, m.setup, m.codecs.map((c) => c.pt)]), [
    ['sendonly', 'passive', [video.pt]],
    ['sendonly', 'passive', [111]],
  ]);
  assert.deepEqual(back.media[0]!.ssrcs, [1111]);
  const w = SessionDescription.parse(text);
  assert.equal(w.media.length, 2);
  assert.equal(w.media[0]!.rtp.codecs[0]!.mimeType, 'video/H264');
  assert.equal(w.media[0]!.iceParams?.usernameFragment, 'abcdABCD01234567');
  assert.equal(w.media[0]!.dtlsParams?.role, 'server');
  assert.equal(w.media[1]!.ssrc[0]?.ssrc, 2222);
});

test('rejected sections keep their place with port 0 and leave the BUNDLE group', () => {
  const o = parseSdp(WHEP_OFFER);
  const video = pickSendCodec(o.media[0]!, 'VP8')!;
  const text = writeAnswer(o, [{ codec: video, direction: 'sendonly', feedback: [], ssrc: 5 }, { codec: undefined, direction: 'inactive', feedback: [] }], { ufrag: 'u'.repeat(16), pwd: 'p'.repeat(32), fingerprint: 'AA', candidates: [], cname: 'c' }, '1');
  const back = parseSdp(text);
  assert.deepEqual(back.bundle, ['0']);
  assert.equal(back.media[1]!.port, 0);
  assert.equal(back.media[1]!.direction, 'inactive');
  assert.equal(back.media[1]!.mid, '1');
});

test('what is not an SDP offer is refused', () => {
  assert.throws(() => parseSdp('hello'), { name: 'HazeError' });
  assert.throws(() => parseSdp(`v=0\r\n${'m=video 9 UDP/TLS/RTP/SAVPF 96\r\n'.repeat(40)}`), { name: 'HazeError' });
  assert.throws(() => parseSdp(`v=0\r\nm=video\r\n`), { name: 'HazeError' });
  assert.throws(() => parseSdp('v=0\r\n'.padEnd(70_000, 'x')), { name: 'HazeError' });
});
