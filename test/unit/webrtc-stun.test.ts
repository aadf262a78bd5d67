// STUN for ICE-lite (src/protocols/webrtc/stun.ts): round trips, RFC 5769's test vectors (a
// request and an IPv4 response with MESSAGE-INTEGRITY and FINGERPRINT), and werift's STUN
// implementation reading what Haze writes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Message, classes, methods, parseMessage } from 'werift';
import { ATTR, STUN_BINDING_REQUEST, STUN_BINDING_SUCCESS, bindingError, bindingSuccess, crc32, looksLikeStun, parseStun, readXorMappedAddress, serializeStun, stunAttribute, stunUsername, verifyFingerprint, verifyIntegrity, xorMappedAddress } from '../../src/protocols/webrtc/stun.js';
import { hex } from '../helpers.js';

// RFC 5769 §2.1: a Binding request with USERNAME "evtj:h6vY", password "VOkJxbRl1RmTxUk/WvJxBt"
const RFC5769_REQUEST = hex(
  '000100582112a442b7e7a701bc34d686fa87dfae',
  '802200105354554e207465737420636c69656e74',
  '002400046e0001ff',
  '80290008932ff9b151263b36',
  '000600096576746a3a68367659202020',
  '000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2',
  '80280004e57a3bcf',
);
// §2.2: its success response from 192.0.2.1:32853
const RFC5769_RESPONSE = hex(
  '0101003c2112a442b7e7a701bc34d686fa87dfae',
  '8022000b7465737420766563746f7220',
  '002000080001a147e112a643',
  '000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7',
  '80280004c07d4c96',
);
const PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt';

test('RFC 5769 request: parses, integrity and fingerprint check out', () => {
  assert.ok(looksLikeStun(RFC5769_REQUEST));
  const m = parseStun(RFC5769_REQUEST);
  assert.equal(m.type, STUN_BINDING_REQUEST);
  assert.equal(stunUsername(m), 'evtj:h6vY');
  assert.ok(verifyIntegrity(RFC5769_REQUEST, m, PASSWORD));
  assert.ok(!verifyIntegrity(RFC5769_REQUEST, m, 'wrong'));
  assert.ok(verifyFingerprint(RFC5769_REQUEST, m));
  const bad = Buffer.from(RFC5769_REQUEST);
  bad[bad.length - 1]! ^= 1;
  assert.ok(!verifyFingerprint(bad, parseStun(bad)));
});

test('RFC 5769 response: XOR-MAPPED-ADDRESS and integrity', () => {
  const m = parseStun(RFC5769_RESPONSE);
  assert.equal(m.type, STUN_BINDING_SUCCESS);
  assert.deepEqual(readXorMappedAddress(stunAttribute(m, ATTR.XOR_MAPPED_ADDRESS)!, m.transactionId), { address: '192.0.2.1', port: 32853 });
  assert.ok(verifyIntegrity(RFC5769_RESPONSE, m, PASSWORD));
  assert.ok(verifyFingerprint(RFC5769_RESPONSE, m));
  // written again from its parts, the same bytes (SOFTWARE, the address, then integrity and fingerprint)
  const again = serializeStun(STUN_BINDING_SUCCESS, m.transactionId, m.attributes.filter((a) => a.type !== ATTR.MESSAGE_INTEGRITY && a.type !== ATTR.FINGERPRINT), { integrityKey: PASSWORD, fingerprint: true });
  // the SOFTWARE attribute's padding bytes are free (RFC 5769 uses 0x20); ours are zeros
  const expected = Buffer.from(RFC5769_RESPONSE);
  expected[20 + 4 + 11] = 0;
  const e2 = parseStun(expected);
  assert.ok(verifyIntegrity(again, parseStun(again), PASSWORD));
  assert.deepEqual(parseStun(again).attributes.slice(0, 2), e2.attributes.slice(0, 2));
});

test('crc32 is the zlib CRC', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('binding success for IPv4 and IPv6 peers, read back by werift', () => {
  const tid = Buffer.from('0123456789ab', 'latin1');
  for (const [address, port] of [
    ['127.0.0.1', 40000],
    ['fd00::2', 51234],
    ['::1', 9],
  ] as const) {
    const out = bindingSuccess(tid, address, port, 'secretpassword0123456789');
    const m = parseStun(out);
    assert.ok(verifyIntegrity(out, m, 'secretpassword0123456789'));
    assert.ok(verifyFingerprint(out, m));
    const back = readXorMappedAddress(stunAttribute(m, ATTR.XOR_MAPPED_ADDRESS)!, tid);
    assert.equal(back.port, port);
    if (address === '127.0.0.1') assert.equal(back.address, address);
    const w = parseMessage(out, Buffer.from('secretpassword0123456789'))!;
    assert.ok(w, 'werift parses it and accepts its integrity');
    assert.equal(w.messageMethod, methods.BINDING);
    assert.equal(w.messageClass, classes.RESPONSE);
    const mapped = w.getAttributeValue('XOR-MAPPED-ADDRESS') as [string, number];
    assert.equal(mapped[1], port);
  }
});

test('werift-made ICE checks parse and verify; the error response is well formed', () => {
  const req = new Message(methods.BINDING, classes.REQUEST);
  req.setAttribute('USERNAME', 'ourUfrag:theirUfrag').setAttribute('PRIORITY', 1234).setAttribute('USE-CANDIDATE', null).setAttribute('ICE-CONTROLLING', 42n);
  const raw = req.addMessageIntegrity(Buffer.from('ourpassword')).addFingerprint().bytes;
  const m = parseStun(raw);
  assert.equal(stunUsername(m), 'ourUfrag:theirUfrag');
  assert.ok(stunAttribute(m, ATTR.USE_CANDIDATE) !== undefined);
  assert.ok(verifyIntegrity(raw, m, 'ourpassword'));
  assert.ok(verifyFingerprint(raw, m));
  const err = parseStun(bindingError(m.transactionId, 401, 'Unauthorized'));
  const code = stunAttribute(err, ATTR.ERROR_CODE)!;
  assert.equal(code[2]! * 100 + code[3]!, 401);
});

test('malformed messages throw HazeErrors', () => {
  assert.throws(() => parseStun(Buffer.alloc(10)), { name: 'HazeError' });
  const bad = Buffer.from(RFC5769_REQUEST);
  bad.writeUInt16BE(0x59, 2);
  assert.throws(() => parseStun(bad), { name: 'HazeError' });
  assert.throws(() => serializeStun(1, Buffer.alloc(3), []), { name: 'HazeError' });
  assert.equal(xorMappedAddress('127.0.0.1', 1, Buffer.alloc(12)).length, 8);
});
