// SRTP/SRTCP (src/protocols/webrtc/srtp.ts): RFC 3711's key derivation test vectors, and packets
// protected here unprotected by werift's independent implementation and the other way round,
// across a sequence number wrap (the roll-over counter).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SrtcpSession as WeriftSrtcp, SrtpSession as WeriftSrtp, RtpHeader } from 'werift';
import { SRTP_AEAD_AES_128_GCM, SRTP_AES128_CM_HMAC_SHA1_80, SrtpSession, deriveSessionKey } from '../../src/protocols/webrtc/srtp.js';
import { parseRtp, writeRtpHeader } from '../../src/protocols/rtp/packet.js';
import { serializeSrCname, parseRtcp } from '../../src/protocols/rtp/rtcp.js';

test('RFC 3711 B.3: session keys from the master key and salt', () => {
  const key = Buffer.from('E1F97A0D3E018BE0D64FA32C06DE4139', 'hex');
  const salt = Buffer.from('0EC675AD498AFEEBB6960B3AABE6', 'hex');
  assert.equal(deriveSessionKey(key, salt, 0, 16).toString('hex').toUpperCase(), 'C61E7A93744F39EE10734AFE3FF7A087');
  assert.equal(deriveSessionKey(key, salt, 2, 14).toString('hex').toUpperCase(), '30CBBC08863D8C85D49DB34A9AE1');
  assert.equal(deriveSessionKey(key, salt, 1, 20).toString('hex').toUpperCase(), 'CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4');
});

const keyA = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const saltA = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaabacad', 'hex');
const keyB = Buffer.from('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff', 'hex');
const saltB = Buffer.from('b0b1b2b3b4b5b6b7b8b9babbbcbd', 'hex');

function werift(profile = SRTP_AES128_CM_HMAC_SHA1_80): { srtp: WeriftSrtp; srtcp: WeriftSrtcp } {
  // werift's side sends with B and receives with A
  const salt = (b: Buffer): Buffer => (profile === SRTP_AEAD_AES_128_GCM ? b.subarray(0, 12) : b);
  const config = { keys: { localMasterKey: keyB, localMasterSalt: salt(saltB), remoteMasterKey: keyA, remoteMasterSalt: salt(saltA) }, profile };
  return { srtp: new WeriftSrtp(config), srtcp: new WeriftSrtcp(config) };
}

test('SRTP both ways with werift, across a sequence wrap', () => {
  const ours = new SrtpSession(keyA, saltA);
  const theirsIn = new SrtpSession(keyB, saltB);
  const w = werift();
  let roc = 0;
  for (let i = 0; i < 40; i++) {
    const seq = (65530 + i) & 0xffff;
    if (i > 0 && seq === 0) roc++;
    const payload = Buffer.alloc(100 + i * 7, i);
    const header = Buffer.alloc(12);
    writeRtpHeader(header, 0, 96, i % 3 === 0, seq, 1000 * i, 0x11223344);
    const wire = ours.protectRtp(header, payload, roc);
    const plain = w.srtp.decrypt(wire);
    assert.ok(plain.subarray(12).equals(payload), `packet ${i} decrypts in werift`);
    // werift protects, we unprotect (our ROC estimate follows its wrap)
    const back = w.srtp.encrypt(payload, new RtpHeader({ payloadType: 111, sequenceNumber: seq, timestamp: 960 * i, ssrc: 0x55667788, marker: false }));
    const p = parseRtp(theirsIn.unprotectRtp(back));
    assert.equal(p.sequence, seq);
    assert.ok(p.payload.equals(payload));
  }
});

test('a tampered SRTP packet does not authenticate', () => {
  const ours = new SrtpSession(keyA, saltA);
  const header = Buffer.alloc(12);
  writeRtpHeader(header, 0, 96, true, 1, 2, 3);
  const wire = ours.protectRtp(header, Buffer.alloc(50, 7), 0);
  wire[20]! ^= 1;
  assert.throws(() => new SrtpSession(keyA, saltA).unprotectRtp(wire), { name: 'HazeError' });
});

test('SRTCP both ways with werift', () => {
  const ours = new SrtpSession(keyA, saltA);
  const theirsIn = new SrtpSession(keyB, saltB);
  const w = werift();
  for (let i = 0; i < 5; i++) {
    const sr = serializeSrCname(0xabcdef01, 1_700_000_000_000 + i * 1000, 90_000 * i, 100 * i, 100_000 * i, 'cname');
    const plain = w.srtcp.decrypt(ours.protectRtcp(sr));
    assert.ok(plain.equals(sr), `SR ${i} decrypts in werift`);
    const back = theirsIn.unprotectRtcp(w.srtcp.encrypt(sr));
    const [m] = parseRtcp(back);
    assert.equal(m?.type, 'sr');
  }
});

test('AEAD_AES_128_GCM (RFC 7714): SRTP and SRTCP both ways with werift', () => {
  const ours = new SrtpSession(keyA, saltA.subarray(0, 12), SRTP_AEAD_AES_128_GCM);
  const theirsIn = new SrtpSession(keyB, saltB.subarray(0, 12), SRTP_AEAD_AES_128_GCM);
  const w = werift(SRTP_AEAD_AES_128_GCM);
  let roc = 0;
  for (let i = 0; i < 20; i++) {
    const seq = (65530 + i) & 0xffff;
    if (i > 0 && seq === 0) roc++;
    const payload = Buffer.alloc(200 + i, i);
    const header = Buffer.alloc(12);
    writeRtpHeader(header, 0, 96, true, seq, 3000 * i, 0x01020304);
    const wire = ours.protectRtp(header, payload, roc);
    assert.equal(wire.length, 12 + payload.length + 16);
    assert.ok(w.srtp.decrypt(wire).subarray(12).equals(payload), `packet ${i} decrypts in werift`);
    const back = w.srtp.encrypt(payload, new RtpHeader({ payloadType: 96, sequenceNumber: seq, timestamp: i, ssrc: 0x0a0b0c0d, marker: true }));
    assert.ok(parseRtp(theirsIn.unprotectRtp(back)).payload.equals(payload));
  }
  const sr = serializeSrCname(0x1234, 1_700_000_000_000, 1, 2, 3, 'x');
  assert.ok(w.srtcp.decrypt(ours.protectRtcp(sr)).equals(sr));
  assert.equal(parseRtcp(theirsIn.unprotectRtcp(w.srtcp.encrypt(sr)))[0]?.type, 'sr');
  const bad = ours.protectRtp(Buffer.from('800100010000000100000001', 'hex'), Buffer.alloc(30), 0);
  bad[15]! ^= 1;
  assert.throws(() => new SrtpSession(keyA, saltA.subarray(0, 12), SRTP_AEAD_AES_128_GCM).unprotectRtp(bad), { name: 'HazeError' });
});
