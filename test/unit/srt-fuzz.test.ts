// Fuzzing the SRT parsers with fast-check: random and mutated bytes give a value or a HazeError,
// never another exception; a connection fed any datagrams never throws (a bad one ends it).

import { test } from 'node:test';
import fc from 'fast-check';
import { parseAck, parseDropRequest, parseLossList } from '../../src/protocols/srt/control.js';
import { parseHandshake, parseHsMessage, parseStreamIdExtension } from '../../src/protocols/srt/handshake.js';
import { parseKeyMaterial } from '../../src/protocols/srt/key-material.js';
import { answerConclusion } from '../../src/protocols/srt/listener.js';
import { parsePacket } from '../../src/protocols/srt/packet.js';
import { parseStreamId } from '../../src/protocols/srt/stream-id.js';
import { SrtCipher } from '../../src/protocols/srt/crypto.js';
import { parseSrtUrl } from '../../src/protocols/srt/caller.js';
import { SrtConnection } from '../../src/protocols/srt/connection.js';
import { HazeError } from '../../src/util/errors.js';
import { RECORDED_CONCLUSION, RECORDED_DATA, RECORDED_INDUCTION } from './srt-vectors.js';

function onlyHazeErrors(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof HazeError)) throw err;
  }
}

const bytes = fc.uint8Array({ maxLength: 1600 }).map((a) => Buffer.from(a));
/** A recorded datagram with some bytes changed, cut or extended. */
const mutated = (seed: Buffer): fc.Arbitrary<Buffer> =>
  fc.tuple(fc.array(fc.tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat(seed.length + 40)).map(([edits, len]) => {
    const b = Buffer.alloc(len);
    seed.copy(b, 0, 0, Math.min(len, seed.length));
    for (const [at, v] of edits) if (at < len) b[at] = v;
    return b;
  });
const anyDatagram = fc.oneof(bytes, mutated(RECORDED_CONCLUSION), mutated(RECORDED_INDUCTION), mutated(RECORDED_DATA));

test('every parser gives a value or a HazeError on random and mutated bytes', () => {
  fc.assert(
    fc.property(anyDatagram, (b) => {
      onlyHazeErrors(() => parsePacket(b));
      onlyHazeErrors(() => parseHandshake(b.subarray(Math.min(16, b.length))));
      onlyHazeErrors(() => parseAck(b));
      onlyHazeErrors(() => parseLossList(b));
      onlyHazeErrors(() => parseDropRequest(0, b));
      onlyHazeErrors(() => parseKeyMaterial(b));
      onlyHazeErrors(() => parseHsMessage(b));
      onlyHazeErrors(() => parseStreamIdExtension(b));
    }),
    { numRuns: 3000 },
  );
});

test('a mutated conclusion is answered or refused, never thrown', () => {
  fc.assert(
    fc.property(mutated(RECORDED_CONCLUSION), (b) => {
      onlyHazeErrors(() => {
        const p = parsePacket(b);
        if (!p.control) return;
        answerConclusion(parseHandshake(p.cif), { latencyMs: 120, passphraseFor: () => 'capture-passphrase-1' }, 1, '127.0.0.1');
      });
    }),
    { numRuns: 500 },
  );
});

test('key material from random bytes never unwraps to a key silently', () => {
  fc.assert(
    fc.property(bytes, (b) => {
      onlyHazeErrors(() => SrtCipher.fromKeyMaterial('some-passphrase', parseKeyMaterial(b)));
    }),
    { numRuns: 500 },
  );
});

test('stream ids and srt:// URLs of any text', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 600 }), (s) => {
      parseStreamId(s);
      parseStreamId(`#!::${s}`);
      onlyHazeErrors(() => parseSrtUrl(`srt://${s}`));
    }),
  );
});

test('a connection fed any datagrams never throws; garbage ends it with a reason', () => {
  fc.assert(
    fc.property(fc.array(anyDatagram, { maxLength: 30 }), (list) => {
      const c = SrtConnection.accepted(() => {}, { localSocketId: 5 }, 0, {
        peerSocketId: 6,
        initialSeq: 0x4c65c428,
        latencyMs: 120,
        peerFlowWindow: 8192,
        cipher: undefined,
        streamId: 'x',
        response: parseHandshake(RECORDED_CONCLUSION.subarray(16)),
        requestTimestampUs: 0,
      });
      let now = 0;
      for (const d of list) {
        c.receive(d, (now += 3));
        c.tick(now);
      }
    }),
    { numRuns: 300 },
  );
});
