// The pure parts of the DTSC push client (protocols/dtsc/push-client.ts): the dtsc:// target
// URL (port, stream, the password from pass/pw/password or the URL), the push command's bytes
// (members sorted, as MistServer packs them), and how the server's replies are read, with
// MistServer's texts as Haze's listener sends them. Fuzzed: any URL text gives a result or a
// HazeError; any command, whole or split anywhere, classifies without throwing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeFrame, DtscFrameReader, encodeDtcm } from '../../src/containers/dtsc/packets.js';
import type { DtmiObject } from '../../src/containers/dtsc/dtmi.js';
import { DTSC_TEXT, headParsedText } from '../../src/protocols/dtsc/listener-wire.js';
import { parsePushReply, pushCommandFrame, type DtscPushReply } from '../../src/protocols/dtsc/push-client.js';
import { DTSC_DEFAULT_PORT, parseDtscPushUrl } from '../../src/protocols/dtsc/push-url.js';
import { HazeError } from '../../src/util/errors.js';
import { HAZE_VERSION } from '../../src/util/version.js';

test('parseDtscPushUrl: host, port (4200 by default), stream, password, TLS', () => {
  const cases: [string, Record<string, string>, ReturnType<typeof parseDtscPushUrl>][] = [
    ['dtsc://127.0.0.1/live+y', {}, { host: '127.0.0.1', port: 4200, stream: 'live+y', password: '', secure: false }],
    ['dtsc://example.com:4300/live', {}, { host: 'example.com', port: 4300, stream: 'live', password: '', secure: false }],
    ['DTSC://h/a', {}, { host: 'h', port: 4200, stream: 'a', password: '', secure: false }],
    ['dtscs://h/a', {}, { host: 'h', port: 4200, stream: 'a', password: '', secure: true }],
    ['dtsc://[::1]:4201/a', {}, { host: '::1', port: 4201, stream: 'a', password: '', secure: false }],
    ['dtsc://h/a?pass=p1', {}, { host: 'h', port: 4200, stream: 'a', password: 'p1', secure: false }],
    ['dtsc://h/a?pw=p2', {}, { host: 'h', port: 4200, stream: 'a', password: 'p2', secure: false }],
    ['dtsc://h/a?password=p3', {}, { host: 'h', port: 4200, stream: 'a', password: 'p3', secure: false }],
    ['dtsc://h/a?pw=p2&pass=p1', {}, { host: 'h', port: 4200, stream: 'a', password: 'p1', secure: false }],
    ['dtsc://user:s%40cret@h/a', {}, { host: 'h', port: 4200, stream: 'a', password: 's@cret', secure: false }],
    ['dtsc://user:url@h/a?pass=query', {}, { host: 'h', port: 4200, stream: 'a', password: 'query', secure: false }],
    // the trailing-? rule moved `?pass=` into the push parameters
    ['dtsc://h/a', { pass: 'fromparams' }, { host: 'h', port: 4200, stream: 'a', password: 'fromparams', secure: false }],
    ['dtsc://h/a?pass=own', { pass: 'fromparams' }, { host: 'h', port: 4200, stream: 'a', password: 'own', secure: false }],
    ['dtsc://h/live%2Bx', {}, { host: 'h', port: 4200, stream: 'live+x', password: '', secure: false }],
  ];
  for (const [url, params, want] of cases) assert.deepEqual(parseDtscPushUrl(url, params), want, url);
  assert.equal(DTSC_DEFAULT_PORT, 4200);
  for (const bad of ['dtsc://h/', 'dtsc://h', 'rtmp://h/a', 'not a url', 'dtsc:///a', 'dtsc://h:99999/a', 'dtsc://h/%zz']) {
    assert.throws(() => parseDtscPushUrl(bad), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_INVALID_ARG', bad);
  }
});

/** A DTCM frame of string members, packed by hand (reference §2.1, A.2). */
function handPackedCommand(members: [string, string][]): Buffer {
  const parts: Buffer[] = [Buffer.from([0xe0])];
  for (const [k, v] of members) {
    const key = Buffer.from(k, 'latin1');
    const val = Buffer.from(v, 'utf8');
    const head = Buffer.alloc(2 + key.length + 5);
    head.writeUInt16BE(key.length, 0);
    key.copy(head, 2);
    head[2 + key.length] = 0x02;
    head.writeUInt32BE(val.length, 3 + key.length);
    parts.push(head, val);
  }
  parts.push(Buffer.from([0, 0, 0xee]));
  const body = Buffer.concat(parts);
  const prefix = Buffer.alloc(8);
  prefix.write('DTCM', 0, 'latin1');
  prefix.writeUInt32BE(body.length, 4);
  return Buffer.concat([prefix, body]);
}

test('pushCommandFrame: {"cmd":"push","password","stream","version"} with its members sorted', () => {
  const got = pushCommandFrame('live+y', 'pw');
  const want = handPackedCommand([
    ['cmd', 'push'],
    ['password', 'pw'],
    ['stream', 'live+y'],
    ['version', `Haze/${HAZE_VERSION}`],
  ]);
  assert.deepEqual(got, want);
  // the password member is there when empty too
  const noPw = decodeFrame(pushCommandFrame('s', ''));
  assert.equal(noPw.kind, 'command');
  assert.deepEqual((noPw as { command: DtmiObject }).command.entries.map(([k]) => k), ['cmd', 'password', 'stream', 'version']);
});

function reply(cmd: Record<string, unknown>): DtscPushReply {
  const f = decodeFrame(encodeDtcm(cmd));
  assert.equal(f.kind, 'command');
  return parsePushReply((f as { command: DtmiObject }).command);
}

test('parsePushReply: the texts a MistServer (and Haze) listener sends', () => {
  assert.deepEqual(reply({ cmd: 'ok', msg: DTSC_TEXT.cleared }), { kind: 'ok', message: "You're cleared for pushing! DTSC_HEAD please?" });
  assert.deepEqual(reply({ cmd: 'ok', msg: headParsedText(0, 2) }), { kind: 'ok', message: headParsedText(0, 2), tracks: { from: 0, to: 2 } });
  assert.deepEqual(reply({ cmd: 'ok', msg: headParsedText(2, 3) }), { kind: 'ok', message: headParsedText(2, 3), tracks: { from: 2, to: 3 } });
  assert.deepEqual(reply({ cmd: 'ok', msg: DTSC_TEXT.pong }), { kind: 'ok', message: 'Pong!' });
  assert.deepEqual(reply({ cmd: 'error', msg: DTSC_TEXT.pushRefused }), { kind: 'error', message: 'Push not allowed - stream and/or password incorrect' });
  assert.deepEqual(reply({ cmd: 'error' }), { kind: 'error', message: 'error without a message' });
  assert.deepEqual(reply({ cmd: 'ping' }), { kind: 'ping' });
  assert.deepEqual(reply({ cmd: 'hi', pack_method: 2, salt: 'ab', version: 'MistServer/3.10' }), { kind: 'hi', version: 'MistServer/3.10' });
  assert.deepEqual(reply({ cmd: 'reset' }), { kind: 'other', cmd: 'reset' });
  assert.deepEqual(reply({ nocmd: 1 }), { kind: 'other', cmd: '' });
  // members of the wrong type read as absent
  assert.deepEqual(reply({ cmd: 'ok', msg: 5 }), { kind: 'ok', message: '' });
  assert.deepEqual(reply({ cmd: 7 }), { kind: 'other', cmd: '' });
});

test('fuzz: parseDtscPushUrl gives a URL or a HazeError for any text', () => {
  const text = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.tuple(fc.constantFrom('dtsc://', 'dtscs://', 'DTSC://', 'dtsc:', 'dtsc:///'), fc.string({ maxLength: 60 })).map(([a, b]) => a + b),
    fc.tuple(fc.constantFrom('h', '127.0.0.1', '[::1]', 'u:p@h', ''), fc.oneof(fc.constant(''), fc.integer({ min: -5, max: 70000 }).map((n) => `:${n}`)), fc.string({ maxLength: 30 })).map(([h, p, rest]) => `dtsc://${h}${p}/${rest}`),
  );
  fc.assert(
    fc.property(text, fc.dictionary(fc.constantFrom('pass', 'pw', 'password', 'x'), fc.string({ maxLength: 8 })), (url, params) => {
      try {
        const u = parseDtscPushUrl(url, params);
        assert.ok(u.stream.length > 0);
        assert.ok(u.host.length > 0);
        assert.ok(Number.isInteger(u.port) && u.port >= 0 && u.port <= 65535);
        assert.equal(typeof u.password, 'string');
      } catch (err) {
        if (!(err instanceof HazeError)) throw err;
      }
    }),
    { numRuns: 2000 },
  );
});

const member = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.double({ noNaN: true }), fc.constant(null), fc.boolean());
const command = fc.record({ cmd: fc.oneof(fc.constantFrom('ok', 'error', 'ping', 'hi', 'reset', ''), fc.string({ maxLength: 10 }), fc.integer()), msg: member, version: member, extra: member }, { requiredKeys: [] });

test('fuzz: any command classifies without throwing, whole or split anywhere', () => {
  fc.assert(
    fc.property(fc.array(command, { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 20 }), (cmds, cuts) => {
      const bytes = Buffer.concat(cmds.map((c) => encodeDtcm(c)));
      const whole = new DtscFrameReader().push(bytes).map((f) => (f.kind === 'command' ? parsePushReply(f.command) : null));
      const reader = new DtscFrameReader();
      const split: (DtscPushReply | null)[] = [];
      let pos = 0;
      for (const n of [...cuts, bytes.length]) {
        const end = Math.min(bytes.length, pos + n);
        for (const f of reader.push(bytes.subarray(pos, end))) split.push(f.kind === 'command' ? parsePushReply(f.command) : null);
        pos = end;
        if (pos >= bytes.length) break;
      }
      if (pos < bytes.length) for (const f of reader.push(bytes.subarray(pos))) split.push(f.kind === 'command' ? parsePushReply(f.command) : null);
      assert.equal(whole.length, cmds.length);
      assert.deepEqual(split, whole);
      for (const r of whole) assert.ok(r && ['ok', 'error', 'ping', 'hi', 'other'].includes(r.kind));
    }),
    { numRuns: 500 },
  );
});

test('fuzz: random bytes as a server reply: a classified command or a typed error', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => {
      // a DTCM prefix in front of random bytes reaches the object decoder
      const body = Buffer.from(raw);
      const prefix = Buffer.alloc(8);
      prefix.write('DTCM', 0, 'latin1');
      prefix.writeUInt32BE(body.length, 4);
      try {
        for (const f of new DtscFrameReader({ maxFrameBytes: 4096 }).push(Buffer.concat([prefix, body]))) {
          if (f.kind === 'command') parsePushReply(f.command);
        }
      } catch (err) {
        if (!(err instanceof HazeError)) throw err;
      }
    }),
    { numRuns: 2000 },
  );
});
