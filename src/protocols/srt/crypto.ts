// SRT payload encryption (draft-sharabayko-srt §6): a stream encrypting key (SEK) encrypts data
// payloads with AES-CTR; it travels in the key material message wrapped (RFC 3394 AES key
// wrap) with a key encrypting key (KEK) that both sides derive from the passphrase:
//
//   KEK = PBKDF2(HMAC-SHA1, passphrase, salt = the last 8 of the KM's 16 salt bytes, 2048 iterations, KLen)
//   counter block (§6.1.2) = [ salt bytes 0..13 XOR (zeros(10) | packet index (32, the sequence number)) | block counter (16) ]
//
// Everything here is Node's crypto module; no key or payload is logged.

import crypto from 'node:crypto';
import { HazeError } from '../../util/errors.js';
import { KM_CIPHER_AES_CTR, KM_SE_MPEGTS_SRT, type KeyMaterial } from './key-material.js';
import { KK_EVEN, KK_ODD, type KeyIndex } from './packet.js';

export const PBKDF2_ITERATIONS = 2048;
const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');

export function deriveKek(passphrase: string, salt: Buffer, keyLength: number): Buffer {
  if (salt.length !== 16) throw new HazeError('HAZE_ERR_INVALID_ARG', 'SRT salt must be 16 bytes');
  return crypto.pbkdf2Sync(Buffer.from(passphrase, 'utf8'), salt.subarray(8, 16), PBKDF2_ITERATIONS, keyLength, 'sha1');
}

function ecb(key: Buffer, decrypt: boolean): crypto.Cipher | crypto.Decipher {
  const name = `aes-${key.length * 8}-ecb`;
  const c = decrypt ? crypto.createDecipheriv(name, key, null) : crypto.createCipheriv(name, key, null);
  c.setAutoPadding(false);
  return c;
}

function checkKek(kek: Buffer): void {
  if (kek.length !== 16 && kek.length !== 24 && kek.length !== 32) throw new HazeError('HAZE_ERR_INVALID_ARG', `AES key of ${kek.length} bytes`);
}

/** RFC 3394 §2.2.1 key wrap of `plain` (a multiple of 8 bytes, at least 16) with `kek`. */
export function aesKeyWrap(kek: Buffer, plain: Buffer): Buffer {
  checkKek(kek);
  if (plain.length % 8 !== 0 || plain.length < 16) throw new HazeError('HAZE_ERR_INVALID_ARG', `key wrap of ${plain.length} bytes (a multiple of 8, at least 16)`);
  const n = plain.length / 8;
  const out = Buffer.alloc(8 + plain.length);
  KW_IV.copy(out, 0);
  plain.copy(out, 8);
  const aes = ecb(kek, false);
  const block = Buffer.alloc(16);
  for (let j = 0; j < 6; j++) {
    for (let i = 1; i <= n; i++) {
      out.copy(block, 0, 0, 8);
      out.copy(block, 8, i * 8, i * 8 + 8);
      const b = aes.update(block);
      b.copy(out, 0, 0, 8);
      xorCounter(out, n * j + i);
      b.copy(out, i * 8, 8, 16);
    }
  }
  return out;
}

/** RFC 3394 §2.2.2 key unwrap; HAZE_ERR_AUTH when the integrity check fails (a wrong KEK). */
export function aesKeyUnwrap(kek: Buffer, wrapped: Buffer): Buffer {
  checkKek(kek);
  if (wrapped.length % 8 !== 0 || wrapped.length < 24) throw new HazeError('HAZE_ERR_MALFORMED', `key unwrap of ${wrapped.length} bytes`);
  const n = wrapped.length / 8 - 1;
  const a = Buffer.from(wrapped.subarray(0, 8));
  const r = Buffer.from(wrapped.subarray(8));
  const aes = ecb(kek, true);
  const block = Buffer.alloc(16);
  for (let j = 5; j >= 0; j--) {
    for (let i = n; i >= 1; i--) {
      xorCounter(a, n * j + i);
      a.copy(block, 0);
      r.copy(block, 8, (i - 1) * 8, i * 8);
      const b = aes.update(block);
      b.copy(a, 0, 0, 8);
      b.copy(r, (i - 1) * 8, 8, 16);
    }
  }
  if (!crypto.timingSafeEqual(a, KW_IV)) throw new HazeError('HAZE_ERR_AUTH', 'key unwrap integrity check failed (wrong passphrase)');
  return r;
}

/** XORs the 64-bit big-endian counter t into the first 8 bytes of `a`. */
function xorCounter(a: Buffer, t: number): void {
  const hi = Math.floor(t / 0x100000000);
  a.writeUInt32BE((a.readUInt32BE(0) ^ hi) >>> 0, 0);
  a.writeUInt32BE((a.readUInt32BE(4) ^ t) >>> 0, 4);
}

/** The AES-CTR counter block of packet `seq`'s first cipher block (§6.1.2). */
export function counterBlock(salt: Buffer, seq: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seq >>> 0, 10);
  for (let i = 0; i < 14; i++) iv[i] = iv[i]! ^ salt[i]!;
  return iv;
}

/** The keys of an encrypted connection, one direction or both. */
export class SrtCipher {
  /** [even, odd] stream encrypting keys. */
  private readonly keys: [Buffer | undefined, Buffer | undefined];

  constructor(
    readonly salt: Buffer,
    even: Buffer | undefined,
    odd: Buffer | undefined,
  ) {
    this.keys = [even, odd];
  }

  get keyLength(): number {
    return (this.keys[0] ?? this.keys[1])!.length;
  }

  /** The key index new packets are encrypted with. */
  get sendKey(): KeyIndex {
    return this.keys[0] ? KK_EVEN : KK_ODD;
  }

  /** Encrypts or decrypts (CTR is symmetric) a payload of packet `seq` with key `kk`; undefined when that key is unknown. */
  crypt(seq: number, kk: KeyIndex, payload: Buffer): Buffer | undefined {
    const key = kk === KK_EVEN ? this.keys[0] : kk === KK_ODD ? this.keys[1] : undefined;
    if (!key) return undefined;
    const c = crypto.createCipheriv(`aes-${key.length * 8}-ctr`, key, counterBlock(this.salt, seq));
    return c.update(payload);
  }

  /** A new random key and salt, and the key material that carries them wrapped with `passphrase`. */
  static generate(passphrase: string, keyLength: 16 | 24 | 32): { cipher: SrtCipher; km: KeyMaterial } {
    const salt = crypto.randomBytes(16);
    const sek = crypto.randomBytes(keyLength);
    const wrapped = aesKeyWrap(deriveKek(passphrase, salt, keyLength), sek);
    return { cipher: new SrtCipher(salt, sek, undefined), km: { keys: KK_EVEN, keki: 0, cipher: KM_CIPHER_AES_CTR, auth: 0, se: KM_SE_MPEGTS_SRT, salt, keyLength, wrapped } };
  }

  /** The keys a peer's key material carries; HAZE_ERR_AUTH when `passphrase` is not the one that wrapped them. */
  static fromKeyMaterial(passphrase: string, km: KeyMaterial): SrtCipher {
    if (km.cipher !== KM_CIPHER_AES_CTR) throw new HazeError('HAZE_ERR_UNSUPPORTED', `SRT cipher ${km.cipher} (only AES-CTR)`);
    const plain = aesKeyUnwrap(deriveKek(passphrase, km.salt, km.keyLength), km.wrapped);
    const first = Buffer.from(plain.subarray(0, km.keyLength));
    if (km.keys === 3) return new SrtCipher(km.salt, first, Buffer.from(plain.subarray(km.keyLength, 2 * km.keyLength)));
    return km.keys === KK_EVEN ? new SrtCipher(km.salt, first, undefined) : new SrtCipher(km.salt, undefined, first);
  }
}
