// SRT encryption primitives against published vectors: RFC 3394 §4 (AES key wrap), RFC 6070
// (PBKDF2-HMAC-SHA1, what the KEK derivation uses), and the §6.1.2 counter block layout.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { aesKeyUnwrap, aesKeyWrap, counterBlock, deriveKek, SrtCipher } from '../../src/protocols/srt/crypto.js';
import { HazeError } from '../../src/util/errors.js';

const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 3394 section 4: [KEK, key data, wrapped]
const RFC3394: [string, string, string, string][] = [
  ['4.1 128-bit data, 128-bit KEK', '000102030405060708090A0B0C0D0E0F', '00112233445566778899AABBCCDDEEFF', '1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5'],
  ['4.2 128-bit data, 192-bit KEK', '000102030405060708090A0B0C0D0E0F1011121314151617', '00112233445566778899AABBCCDDEEFF', '96778B25AE6CA435 F92B5B97C050AED2 468AB8A17AD84E5D'],
  ['4.3 128-bit data, 256-bit KEK', '000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F', '00112233445566778899AABBCCDDEEFF', '64E8C3F9CE0F5BA2 63E9777905818A2A 93C8191E7D6E8AE7'],
  ['4.4 192-bit data, 192-bit KEK', '000102030405060708090A0B0C0D0E0F1011121314151617', '00112233445566778899AABBCCDDEEFF0001020304050607', '031D33264E15D332 68F24EC260743EDC E1C6C7DDEE725A93 6BA814915C6762D2'],
  ['4.5 192-bit data, 256-bit KEK', '000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F', '00112233445566778899AABBCCDDEEFF0001020304050607', 'A8F9BC1612C68B3F F6E6F4FBE30E71E4 769C8B80A32CB895 8CD5D17D6B254DA1'],
  ['4.6 256-bit data, 256-bit KEK', '000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F', '00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F', '28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B FB988B9B7A02DD21'],
];

for (const [name, kek, data, wrapped] of RFC3394) {
  test(`RFC 3394 ${name}`, () => {
    assert.deepEqual(aesKeyWrap(h(kek), h(data)), h(wrapped));
    assert.deepEqual(aesKeyUnwrap(h(kek), h(wrapped)), h(data));
  });
}

test('a wrap unwrapped with another KEK fails its integrity check', () => {
  const [, kek, , wrapped] = RFC3394[0]!;
  const other = h(kek);
  other[0] ^= 1;
  assert.throws(
    () => aesKeyUnwrap(other, h(wrapped)),
    (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_AUTH',
  );
});

test('PBKDF2-HMAC-SHA1 (RFC 6070) and the KEK from the last 8 bytes of the salt, 2048 iterations', () => {
  assert.equal(crypto.pbkdf2Sync('password', 'salt', 2, 20, 'sha1').toString('hex'), 'ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957');
  assert.equal(crypto.pbkdf2Sync('password', 'salt', 4096, 20, 'sha1').toString('hex'), '4b007901b765489abead49d926f721d065a429c1');
  const salt = h('00112233445566778899aabbccddeeff');
  const kek = deriveKek('passphrase-123', salt, 16);
  assert.deepEqual(kek, crypto.pbkdf2Sync('passphrase-123', h('8899aabbccddeeff'), 2048, 16, 'sha1'));
  assert.equal(deriveKek('passphrase-123', salt, 32).length, 32);
  // the first 8 salt bytes do not enter the KEK
  const other = Buffer.from(salt);
  other[0] ^= 0xff;
  assert.deepEqual(deriveKek('passphrase-123', other, 16), kek);
});

test('the AES-CTR counter block: salt bytes 0..13 XOR the packet index at bytes 10..13, block counter 0', () => {
  const salt = h('0102030405060708090a0b0c0d0e0f10');
  assert.deepEqual(counterBlock(salt, 0x11223344), h('0102030405060708090a' + (0x0b ^ 0x11).toString(16) + (0x0c ^ 0x22).toString(16) + (0x0d ^ 0x33).toString(16) + (0x0e ^ 0x44).toString(16) + '0000'));
  // the payload is AES-CTR from that block: a manual ECB of the counter gives the key stream
  const key = h('000102030405060708090a0b0c0d0e0f');
  const cipher = new SrtCipher(salt, key, undefined);
  const plain = Buffer.alloc(40, 0);
  const enc = cipher.crypt(7, 1, plain)!;
  const ecb = crypto.createCipheriv('aes-128-ecb', key, null);
  ecb.setAutoPadding(false);
  const ctr0 = counterBlock(salt, 7);
  const ctr1 = Buffer.from(ctr0);
  ctr1[15] = 1;
  assert.deepEqual(enc.subarray(0, 32), Buffer.concat([ecb.update(ctr0), ecb.update(ctr1)]));
  assert.deepEqual(cipher.crypt(7, 1, enc), plain, 'CTR decrypts with the same operation');
  assert.equal(cipher.crypt(7, 2, enc), undefined, 'the odd key is unknown');
});

test('generated key material unwraps with its passphrase only, for every key length', () => {
  for (const len of [16, 24, 32] as const) {
    const { cipher, km } = SrtCipher.generate('the-passphrase', len);
    assert.equal(km.keyLength, len);
    const back = SrtCipher.fromKeyMaterial('the-passphrase', km);
    const payload = crypto.randomBytes(1316);
    assert.deepEqual(back.crypt(99, 1, cipher.crypt(99, 1, payload)!), payload);
    assert.throws(() => SrtCipher.fromKeyMaterial('not-the-passphrase', km), /wrong passphrase/);
  }
});
