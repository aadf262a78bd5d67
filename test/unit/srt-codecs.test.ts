// SRT wire codecs: round trips of every packet kind, the handshake, key material and stream id
// conventions, and handshakes recorded from libsrt (ffmpeg 5.1) read, answered and decrypted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAck, parseDropRequest, parseLossList, serializeAck, serializeDropRequest, serializeLossList, CTRL_HANDSHAKE } from '../../src/protocols/srt/control.js';
import { SrtCipher } from '../../src/protocols/srt/crypto.js';
import {
  EXT_HSREQ,
  EXT_KMREQ,
  EXT_KMRSP,
  EXT_SID,
  findExtension,
  HS_CONCLUSION,
  HS_INDUCTION,
  parseHandshake,
  parseHsMessage,
  parseStreamIdExtension,
  peerIpField,
  REJ_BADSECRET,
  REJ_UNSECURE,
  serializeHandshake,
  serializeHsMessage,
  serializeStreamIdExtension,
  SRT_MAGIC,
  type Handshake,
} from '../../src/protocols/srt/handshake.js';
import { keyStateOf, parseKeyMaterial, serializeKeyMaterial, serializeKeyState } from '../../src/protocols/srt/key-material.js';
import { answerConclusion, cookieValid, inductionResponse, synCookie } from '../../src/protocols/srt/listener.js';
import { markRetransmitted, parsePacket, seqAdd, seqDiff, serializeControl, serializeData, type ControlPacket, type DataPacket } from '../../src/protocols/srt/packet.js';
import { makeStreamId, parseStreamId } from '../../src/protocols/srt/stream-id.js';
import { TsPayloader } from '../../src/protocols/srt/ts-payloads.js';
import { parseSrtUrl } from '../../src/protocols/srt/caller.js';
import { RECORDED_CONCLUSION, RECORDED_DATA, RECORDED_INDUCTION, RECORDED_PASSPHRASE } from './srt-vectors.js';

test('data packets round-trip, with every flag', () => {
  const cases: Omit<DataPacket, 'control'>[] = [
    { seq: 0, position: 3, inOrder: false, keyIndex: 0, retransmitted: false, messageNumber: 1, timestampUs: 0, destSocketId: 1, payload: Buffer.from('abc') },
    { seq: 0x7fffffff, position: 2, inOrder: true, keyIndex: 1, retransmitted: true, messageNumber: 0x03ffffff, timestampUs: 0xffffffff, destSocketId: 0xfffffffe, payload: Buffer.alloc(1316, 0x47) },
    { seq: 12345, position: 0, inOrder: false, keyIndex: 2, retransmitted: false, messageNumber: 77, timestampUs: 123456, destSocketId: 42, payload: Buffer.alloc(0) },
  ];
  for (const c of cases) {
    const bytes = serializeData(c);
    const p = parsePacket(bytes);
    assert.deepEqual(p, { control: false, ...c });
    assert.deepEqual(serializeData(p as DataPacket), bytes);
  }
  const again = serializeData(cases[0]!);
  markRetransmitted(again);
  assert.equal((parsePacket(again) as DataPacket).retransmitted, true);
});

test('control packets and their CIFs round-trip', () => {
  const bytes = serializeControl({ type: 2, subtype: 0, typeInfo: 9, timestampUs: 1000, destSocketId: 77, cif: Buffer.from('00000001', 'hex') });
  assert.deepEqual(parsePacket(bytes), { control: true, type: 2, subtype: 0, typeInfo: 9, timestampUs: 1000, destSocketId: 77, cif: Buffer.from('00000001', 'hex') });
  const full = { lastAckSeq: 5, rttUs: 100000, rttVarUs: 50000, availableBuffer: 8190, packetsPerSecond: 1000, linkCapacity: 5000, receiveRateBps: 1_000_000 };
  assert.deepEqual(parseAck(serializeAck(full)), full);
  assert.equal(serializeAck({ lastAckSeq: 5 }).length, 4);
  assert.deepEqual(parseAck(serializeAck({ lastAckSeq: 0x7fffffff })), { lastAckSeq: 0x7fffffff });
  const ranges: [number, number][] = [
    [10, 10],
    [12, 20],
    [0x7ffffffe, 1],
  ];
  const loss = serializeLossList(ranges);
  assert.equal(loss.length, 4 + 8 + 8);
  assert.deepEqual(parseLossList(loss), ranges);
  assert.throws(() => parseLossList(Buffer.from('80000005', 'hex')), /without its end/);
  assert.throws(() => parseLossList(Buffer.from('8000000500000001', 'hex')), /range/);
  const drop = { messageNumber: 3, firstSeq: 7, lastSeq: 9 };
  assert.deepEqual(parseDropRequest(3, serializeDropRequest(drop)), drop);
});

test('sequence numbers wrap at 2^31', () => {
  assert.equal(seqAdd(0x7fffffff, 1), 0);
  assert.equal(seqAdd(0, -1), 0x7fffffff);
  assert.equal(seqDiff(0, 0x7fffffff), 1);
  assert.equal(seqDiff(0x7fffffff, 0), -1);
  assert.equal(seqDiff(100, 40), 60);
});

test('handshake and its extensions round-trip; the stream id is stored in little-endian words', () => {
  const hs: Handshake = {
    version: 5,
    encryptionField: 2,
    extensionField: 7,
    initialSeq: 123,
    mtu: 1500,
    flowWindow: 8192,
    type: HS_CONCLUSION,
    socketId: 99,
    cookie: 0xdeadbeef,
    peerIp: peerIpField('127.0.0.1'),
    extensions: [
      { type: EXT_HSREQ, data: serializeHsMessage({ srtVersion: 0x010500, flags: 0x3f, receiverDelayMs: 120, senderDelayMs: 200 }) },
      { type: EXT_SID, data: serializeStreamIdExtension('#!::r=live+x,m=publish') },
    ],
  };
  const bytes = serializeHandshake(hs);
  assert.deepEqual(parseHandshake(bytes), hs);
  assert.equal(parseStreamIdExtension(findExtension(hs, EXT_SID)!), '#!::r=live+x,m=publish');
  assert.deepEqual(serializeStreamIdExtension('abcde'), Buffer.from('dcba\0\0\0e', 'latin1'));
  assert.deepEqual(parseHsMessage(findExtension(hs, EXT_HSREQ)!), { srtVersion: 0x010500, flags: 0x3f, receiverDelayMs: 120, senderDelayMs: 200 });
  assert.deepEqual(peerIpField('127.0.0.1').subarray(0, 4), Buffer.from('0100007f', 'hex'));
  assert.throws(() => serializeStreamIdExtension('x'.repeat(513)), /512/);
});

test('the recorded libsrt induction and conclusion are read as libsrt wrote them', () => {
  const ind = parsePacket(RECORDED_INDUCTION);
  assert.ok(ind.control && ind.type === CTRL_HANDSHAKE && ind.destSocketId === 0);
  const i = parseHandshake(ind.cif);
  assert.equal(i.version, 4);
  assert.equal(i.type, HS_INDUCTION);
  assert.equal(i.extensionField, 2);
  assert.equal(i.cookie, 0);
  assert.deepEqual(i.peerIp.subarray(0, 4), peerIpField('127.0.0.1').subarray(0, 4));

  const con = parsePacket(RECORDED_CONCLUSION);
  assert.ok(con.control && con.destSocketId === 0);
  const c = parseHandshake(con.cif);
  assert.equal(c.version, 5);
  assert.equal(c.type, HS_CONCLUSION);
  assert.equal(c.socketId, i.socketId);
  assert.equal(c.encryptionField, 2, 'AES-128');
  assert.equal(c.extensionField, 7, 'HSREQ | KMREQ | CONFIG');
  assert.deepEqual(parseHsMessage(findExtension(c, EXT_HSREQ)!), { srtVersion: 0x010501, flags: 0xbf, receiverDelayMs: 200, senderDelayMs: 200 });
  // ffmpeg turned the URL's `+` into a space (Haze's stream name sanitising turns it back)
  assert.equal(parseStreamIdExtension(findExtension(c, EXT_SID)!), '#!::r=live cap,m=publish');
  const km = parseKeyMaterial(findExtension(c, EXT_KMREQ)!);
  assert.equal(km.keys, 1);
  assert.equal(km.keyLength, 16);
  assert.equal(km.cipher, 2);
  assert.equal(km.se, 2);
  assert.deepEqual(serializeKeyMaterial(km), findExtension(c, EXT_KMREQ));
  assert.deepEqual(parseHandshake(serializeHandshake(c)), c);
});

test('the recorded conclusion is answered: accepted with its passphrase, refused with another or none', () => {
  const c = parseHandshake((parsePacket(RECORDED_CONCLUSION) as ControlPacket).cif);
  const ok = answerConclusion(c, { latencyMs: 120, passphraseFor: () => RECORDED_PASSPHRASE }, 555, '127.0.0.1');
  assert.ok(ok.ok);
  assert.equal(ok.accepted.streamId, '#!::r=live cap,m=publish');
  assert.equal(ok.accepted.latencyMs, 200, 'the larger of both latencies');
  assert.equal(ok.accepted.initialSeq, c.initialSeq);
  assert.equal(ok.accepted.response.socketId, 555);
  assert.deepEqual(findExtension(ok.accepted.response, EXT_KMRSP), findExtension(c, EXT_KMREQ), 'KMRSP repeats the KM');
  assert.ok(ok.accepted.cipher);
  // the recorded data packet decrypts to MPEG-TS
  const data = parsePacket(RECORDED_DATA) as DataPacket;
  assert.equal(data.keyIndex, 1);
  const plain = ok.accepted.cipher.crypt(data.seq, data.keyIndex, data.payload)!;
  assert.equal(plain.length % 188, 0);
  for (let o = 0; o < plain.length; o += 188) assert.equal(plain[o], 0x47, `TS sync byte at ${o}`);

  const wrong = answerConclusion(c, { latencyMs: 120, passphraseFor: () => 'another-passphrase' }, 556, '127.0.0.1');
  assert.ok(!wrong.ok && wrong.code === REJ_BADSECRET && wrong.response.type === REJ_BADSECRET);
  const none = answerConclusion(c, { latencyMs: 120, passphraseFor: () => '' }, 557, '127.0.0.1');
  assert.ok(!none.ok && none.code === REJ_UNSECURE);
  const plainCaller: Handshake = { ...c, encryptionField: 0, extensions: c.extensions.filter((e) => e.type !== EXT_KMREQ) };
  const needed = answerConclusion(plainCaller, { latencyMs: 120, passphraseFor: () => 'x'.repeat(10) }, 558, '127.0.0.1');
  assert.ok(!needed.ok && needed.code === REJ_UNSECURE);
});

test('the induction answer carries the SRT magic and a cookie bound to the address and minute', () => {
  const secret = Buffer.alloc(16, 3);
  const i = parseHandshake((parsePacket(RECORDED_INDUCTION) as ControlPacket).cif);
  const cookie = synCookie(secret, '127.0.0.1', 5000, 100);
  const r = inductionResponse(i, 9, cookie, '127.0.0.1');
  assert.equal(r.version, 5);
  assert.equal(r.extensionField, SRT_MAGIC);
  assert.equal(r.cookie, cookie);
  assert.ok(cookieValid(secret, '127.0.0.1', 5000, 100, cookie));
  assert.ok(cookieValid(secret, '127.0.0.1', 5000, 101, cookie), 'the next minute still');
  assert.ok(!cookieValid(secret, '127.0.0.1', 5000, 102, cookie));
  assert.ok(!cookieValid(secret, '127.0.0.1', 5001, 100, cookie));
});

test('key material: both keys, and the one-word KMRSP state', () => {
  const { km } = SrtCipher.generate('a-passphrase', 32);
  const both = { ...km, keys: 3 as const, wrapped: Buffer.alloc(8 + 64, 1) };
  assert.deepEqual(parseKeyMaterial(serializeKeyMaterial(both)), both);
  assert.equal(keyStateOf(serializeKeyState(4)), 4);
  assert.equal(keyStateOf(serializeKeyMaterial(km)), undefined);
  assert.throws(() => parseKeyMaterial(Buffer.alloc(40)), /version|signature/);
});

test('stream ids: plain names, the #!:: syntax, percent-encoding passed through', () => {
  assert.deepEqual(parseStreamId('live+a'), { name: 'live+a', mode: undefined, keys: {} });
  assert.deepEqual(parseStreamId('#!::r=live+a,m=publish'), { name: 'live+a', mode: 'publish', keys: { r: 'live+a', m: 'publish' } });
  assert.equal(parseStreamId('#!::m=request,r=cam1,u=bob').mode, 'request');
  assert.equal(parseStreamId('#!::{r=x,m=bidirectional}').mode, 'bidirectional');
  assert.equal(parseStreamId('#!::r=x,m=other').mode, undefined);
  assert.deepEqual(parseStreamId('%23!%3A%3Ar%3Dlive%2Bb%2Cm%3Drequest'), parseStreamId('#!::r=live+b,m=request'));
  assert.equal(parseStreamId('%zz').name, '%zz');
  assert.equal(makeStreamId('x', 'publish'), '#!::r=x,m=publish');
});

test('TS payloads: seven TS packets per payload, the rest flushed, slices where possible', () => {
  const out: Buffer[] = [];
  const p = new TsPayloader((b) => out.push(b));
  const ts = Buffer.alloc(188 * 17);
  for (let i = 0; i < 17; i++) ts[i * 188] = 0x47;
  p.push(ts.subarray(0, 188 * 3));
  assert.equal(out.length, 0);
  p.push(ts.subarray(188 * 3));
  assert.deepEqual(
    out.map((b) => b.length),
    [1316, 1316],
  );
  p.flush();
  assert.deepEqual(
    out.map((b) => b.length),
    [1316, 1316, 188 * 3],
  );
  assert.deepEqual(Buffer.concat(out), ts);
});

test('srt:// URLs: modes, options, and what is refused', () => {
  const u = parseSrtUrl('srt://example.org:9000?streamid=#!::r=a,m=publish&passphrase=0123456789&pbkeylen=32&latency=300');
  assert.deepEqual(u, { host: 'example.org', port: 9000, mode: 'caller', streamId: '#!::r=a,m=publish', passphrase: '0123456789', keyLength: 32, latencyMs: 300, connectTimeoutMs: 3000 });
  assert.equal(parseSrtUrl('srt://:9000').mode, 'listener');
  assert.equal(parseSrtUrl('srt://[::1]:9000').host, '::1');
  assert.equal(parseSrtUrl('srt://h:1', { streamid: 'fromparams' }).streamId, 'fromparams');
  assert.throws(() => parseSrtUrl('srt://h'), /port/);
  assert.throws(() => parseSrtUrl('srt://h:1?pbkeylen=20'), /pbkeylen/);
  assert.throws(() => parseSrtUrl('srt://h:1?mode=rendezvous'), /mode/);
  assert.throws(() => parseSrtUrl('rtmp://h:1'), /srt/);
});
