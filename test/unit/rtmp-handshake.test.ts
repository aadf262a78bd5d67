// RTMP handshake: simple (echo) and FP9 digest handshakes, checked against an independent
// computation of the digest offsets/HMACs written from the published description, byte-at-a-time
// feeding, bad version bytes, and our client against our server.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import {
  ClientHandshake,
  HANDSHAKE_SIZE,
  ServerHandshake,
  makeDigestC1,
  verifyServerResponse,
} from '../../src/protocols/rtmp/handshake.js';
import { HazeError } from '../../src/util/errors.js';

const CONST32 = Buffer.from('f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae', 'hex');
const FP_FULL = Buffer.concat([Buffer.from('Genuine Adobe Flash Player 001'), CONST32]);
const FMS_FULL = Buffer.concat([Buffer.from('Genuine Adobe Flash Media Server 001'), CONST32]);

/** Deterministic "random" filler so the tests are reproducible. */
function seeded(seed: number): (b: Buffer) => void {
  let x = seed >>> 0 || 1;
  return (b) => {
    for (let i = 0; i < b.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
  };
}

/** Independent digest check: offset = sum(4 bytes at 8 or 772) % 728 + 12 or 776. */
function digestAt(sig: Buffer, scheme: 0 | 1, keyLen: number, full: Buffer): { ok: boolean; offset: number } {
  const base = scheme === 0 ? 8 : 772;
  const offset = ((sig[base]! + sig[base + 1]! + sig[base + 2]! + sig[base + 3]!) % 728) + base + 4;
  const h = createHmac('sha256', full.subarray(0, keyLen));
  h.update(sig.subarray(0, offset));
  h.update(sig.subarray(offset + 32));
  return { ok: h.digest().equals(sig.subarray(offset, offset + 32)), offset };
}

test('simple handshake: S0 S1 S2 layout, S2 echoes C1, rest bytes after C2', () => {
  const srv = new ServerHandshake({ random: seeded(1), nowMs: () => 1234 });
  const c0c1 = Buffer.alloc(1 + HANDSHAKE_SIZE);
  c0c1[0] = 3;
  seeded(7)(c0c1.subarray(9)); // time 0, version 0, random
  const step1 = srv.push(c0c1);
  assert.equal(step1.done, false);
  assert.ok(step1.reply);
  const reply = step1.reply!;
  assert.equal(reply.length, 1 + 2 * HANDSHAKE_SIZE);
  assert.equal(reply[0], 3);
  const s1 = reply.subarray(1, 1 + HANDSHAKE_SIZE);
  const s2 = reply.subarray(1 + HANDSHAKE_SIZE);
  assert.equal(s1.readUInt32BE(0), 1234);
  assert.equal(s1.readUInt32BE(4), 0, 'simple S1 has a zero version field');
  assert.ok(s2.subarray(0, 4).equals(c0c1.subarray(1, 5)), 'S2 time = C1 time');
  assert.ok(s2.subarray(8).equals(c0c1.subarray(9)), 'S2 random = C1 random');
  assert.equal(srv.mode, 'simple');
  const c2 = Buffer.from(s1);
  const extra = Buffer.from([0x03, 0x00, 0x00]);
  const step2 = srv.push(Buffer.concat([c2, extra]));
  assert.equal(step2.done, true);
  assert.equal(step2.reply, null);
  assert.deepEqual([...step2.rest], [3, 0, 0]);
  assert.equal(srv.done, true);
});

for (const scheme of [0, 1] as const) {
  test(`digest handshake, client digest scheme ${scheme}: S1 digest (FMS key) and S2 signature`, () => {
    const { c0c1, digest } = makeDigestC1(scheme, seeded(100 + scheme));
    assert.equal(digestAt(c0c1.subarray(1), scheme, 30, FP_FULL).ok, true, 'test C1 carries a valid FP digest');
    const srv = new ServerHandshake({ random: seeded(9) });
    const { reply } = srv.push(c0c1);
    assert.equal(srv.mode, 'digest');
    const s1 = reply!.subarray(1, 1 + HANDSHAKE_SIZE);
    const s2 = reply!.subarray(1 + HANDSHAKE_SIZE);
    assert.notEqual(s1.readUInt32BE(4), 0, 'digest S1 has a version');
    assert.equal(digestAt(s1, scheme, 36, FMS_FULL).ok, true, 'S1 digest at the client scheme, FMS key (36 bytes)');
    // S2: last 32 bytes = HMAC(HMAC(fullFmsKey, clientDigest), S2[0..1504]).
    const key = createHmac('sha256', FMS_FULL).update(digest).digest();
    const sig = createHmac('sha256', key).update(s2.subarray(0, HANDSHAKE_SIZE - 32)).digest();
    assert.ok(sig.equals(s2.subarray(HANDSHAKE_SIZE - 32)));
    assert.equal(verifyServerResponse(Buffer.from(s2), digest), true);
    // A C2 signed with the server digest (as librtmp/ffmpeg do) is recognised.
    const sd = s1.subarray(digestAt(s1, scheme, 36, FMS_FULL).offset, digestAt(s1, scheme, 36, FMS_FULL).offset + 32);
    const c2 = Buffer.alloc(HANDSHAKE_SIZE, 0x55);
    const k2 = createHmac('sha256', FP_FULL).update(sd).digest();
    createHmac('sha256', k2).update(c2.subarray(0, HANDSHAKE_SIZE - 32)).digest().copy(c2, HANDSHAKE_SIZE - 32);
    assert.equal(srv.push(c2).done, true);
    assert.equal(srv.c2Valid, true);
  });
}

test('C1 with a version but a wrong digest falls back to the simple handshake', () => {
  const { c0c1 } = makeDigestC1(0, seeded(5));
  c0c1[200] = (c0c1[200]! + 1) & 0xff; // corrupt the signed region
  c0c1[1000] = (c0c1[1000]! + 1) & 0xff;
  const srv = new ServerHandshake({ random: seeded(2) });
  const { reply } = srv.push(c0c1);
  assert.equal(srv.mode, 'simple');
  assert.ok(reply!.subarray(1 + HANDSHAKE_SIZE + 8).equals(c0c1.subarray(9)));
});

test('byte-at-a-time feeding gives the same reply as one push', () => {
  const { c0c1 } = makeDigestC1(1, seeded(11));
  const c2 = Buffer.alloc(HANDSHAKE_SIZE, 1);
  const whole = new ServerHandshake({ random: seeded(3), nowMs: () => 0 });
  const r1 = whole.push(Buffer.concat([c0c1, c2, Buffer.from([9, 8])]));
  const bytewise = new ServerHandshake({ random: seeded(3), nowMs: () => 0 });
  const input = Buffer.concat([c0c1, c2, Buffer.from([9, 8])]);
  let reply: Buffer | null = null;
  let rest: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const s = bytewise.push(input.subarray(i, i + 1));
    if (s.reply) reply = s.reply;
    if (s.done) rest = rest.concat([...s.rest]);
  }
  assert.ok(reply && reply.equals(r1.reply!));
  assert.deepEqual(rest, [9, 8]);
  assert.deepEqual([...r1.rest], [9, 8]);
});

test('bad version byte: clear HazeError; RTMPE refused as unsupported', () => {
  const bad = Buffer.alloc(1 + HANDSHAKE_SIZE);
  bad[0] = 0x47; // 'G' of an HTTP request
  assert.throws(() => new ServerHandshake().push(bad), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_PROTOCOL' && /version byte 71/.test(e.message));
  bad[0] = 6;
  assert.throws(() => new ServerHandshake().push(bad), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_UNSUPPORTED');
  // The version byte arriving alone is checked too.
  assert.throws(() => new ServerHandshake().push(Buffer.from([4])), HazeError);
});

for (const digest of [true, false]) {
  test(`our client against our server (${digest ? 'digest' : 'simple'})`, () => {
    const cli = new ClientHandshake({ digest, random: seeded(21) });
    const srv = new ServerHandshake({ random: seeded(22) });
    const s = srv.push(cli.start());
    const c = cli.push(Buffer.concat([s.reply!, Buffer.from([0xaa])]));
    assert.equal(c.done, true);
    assert.deepEqual([...c.rest], [0xaa]);
    assert.equal(cli.serverMode, digest ? 'digest' : 'simple');
    const s2 = srv.push(c.reply!);
    assert.equal(s2.done, true);
    assert.equal(srv.mode, digest ? 'digest' : 'simple');
    if (digest) assert.equal(srv.c2Valid, true);
  });
}

test('client rejects a tampered S2 signature in digest mode', () => {
  const cli = new ClientHandshake({ random: seeded(31) });
  const srv = new ServerHandshake({ random: seeded(32) });
  const reply = Buffer.from(srv.push(cli.start()).reply!);
  reply[reply.length - 1] ^= 0xff;
  assert.throws(() => cli.push(reply), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_PROTOCOL');
});
