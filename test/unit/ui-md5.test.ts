// The UI's MD5 (src/web/ui/md5.ts, for MistServer's login challenge in the browser): RFC 1321's
// test suite, and agreement with Node's for any text (UTF-8, block boundaries).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { repoRoot } from '../helpers.js';

const { md5 } = (await import(pathToFileURL(path.join(repoRoot, 'dist/web/ui/md5.js')).href)) as { md5(text: string): string };

test('RFC 1321 A.5 test suite', () => {
  assert.equal(md5(''), 'd41d8cd98f00b204e9800998ecf8427e');
  assert.equal(md5('a'), '0cc175b9c0f1b6a831c399e269772661');
  assert.equal(md5('abc'), '900150983cd24fb0d6963f7d28e17f72');
  assert.equal(md5('message digest'), 'f96b697d7cb7938d525a2f31aaf161d0');
  assert.equal(md5('abcdefghijklmnopqrstuvwxyz'), 'c3fcd3d76192e4007dfb496cca67e13b');
  assert.equal(md5('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'), 'd174ab98d277d9f5a5611c2c9f419d9f');
  assert.equal(md5('1234567890'.repeat(8)), '57edf4a22be3c955ac49da2e2107b67a');
});

test('equals node:crypto for any string, around the 56- and 64-byte block edges too', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.integer({ min: 50, max: 130 }).map((n) => 'x'.repeat(n))), (s) => {
      assert.equal(md5(s), crypto.createHash('md5').update(s, 'utf8').digest('hex'));
    }),
    { numRuns: 500 },
  );
});
