// The SRT key material message (draft-sharabayko-srt §3.2.2 Figure 10), carried in the KMREQ /
// KMRSP handshake extensions and in key refresh control packets:
//
//   S(1)=0 V(3)=1 PT(4)=2 | sign (16) = 0x2029 | resv (6) KK (2)
//   KEKI (32)
//   cipher (8) = 2 AES-CTR | auth (8) = 0 | SE (8) = 2 MPEG-TS/SRT | resv (8)
//   resv (16) | SLen/4 (8) | KLen/4 (8)
//   salt (SLen bytes) | wrapped key(s) (8 + n * KLen bytes, n = 2 when KK = 3, else 1)
//
// A responder that could not use the KMREQ answers a KMRSP of one word: its key state
// (KM_STATE_*), not a KM message.

import { HazeError } from '../../util/errors.js';

export const KM_SIGN = 0x2029;
export const KM_CIPHER_AES_CTR = 2;
export const KM_SE_MPEGTS_SRT = 2;
export const KM_HEADER_BYTES = 16;

/** Key states a one-word KMRSP reports. */
export const KM_STATE_UNSECURED = 0;
export const KM_STATE_SECURING = 1;
export const KM_STATE_SECURED = 2;
export const KM_STATE_NOSECRET = 3;
export const KM_STATE_BADSECRET = 4;

export interface KeyMaterial {
  /** KK: 1 even key, 2 odd key, 3 both (even first). */
  keys: 1 | 2 | 3;
  keki: number;
  cipher: number;
  auth: number;
  se: number;
  salt: Buffer;
  /** Bytes of one key: 16, 24 or 32. */
  keyLength: 16 | 24 | 32;
  /** The RFC 3394 wrap of the key(s): 8 + n * keyLength bytes. */
  wrapped: Buffer;
}

export function parseKeyMaterial(buf: Buffer): KeyMaterial {
  if (buf.length < KM_HEADER_BYTES) throw new HazeError('HAZE_ERR_SHORT_READ', `SRT key material of ${buf.length} bytes`);
  const b0 = buf[0]!;
  const version = (b0 >> 4) & 7;
  const pt = b0 & 0xf;
  if (b0 & 0x80 || version !== 1 || pt !== 2) throw new HazeError('HAZE_ERR_MALFORMED', `SRT key material version ${version} type ${pt}`);
  if (buf.readUInt16BE(1) !== KM_SIGN) throw new HazeError('HAZE_ERR_MALFORMED', 'SRT key material without the HAI signature');
  const keys = buf[3]! & 3;
  if (keys === 0) throw new HazeError('HAZE_ERR_MALFORMED', 'SRT key material with no key');
  const saltLength = buf[14]! * 4;
  const keyLength = buf[15]! * 4;
  if (keyLength !== 16 && keyLength !== 24 && keyLength !== 32) throw new HazeError('HAZE_ERR_UNSUPPORTED', `SRT key length ${keyLength} bytes`);
  if (saltLength !== 16) throw new HazeError('HAZE_ERR_UNSUPPORTED', `SRT salt of ${saltLength} bytes (16)`);
  const n = keys === 3 ? 2 : 1;
  const wrapLength = 8 + n * keyLength;
  const end = KM_HEADER_BYTES + saltLength + wrapLength;
  if (buf.length < end) throw new HazeError('HAZE_ERR_SHORT_READ', `SRT key material of ${buf.length} bytes (${end} for its keys)`);
  return {
    keys: keys as 1 | 2 | 3,
    keki: buf.readUInt32BE(4),
    cipher: buf[8]!,
    auth: buf[9]!,
    se: buf[10]!,
    salt: Buffer.from(buf.subarray(KM_HEADER_BYTES, KM_HEADER_BYTES + saltLength)),
    keyLength,
    wrapped: Buffer.from(buf.subarray(KM_HEADER_BYTES + saltLength, end)),
  };
}

export function serializeKeyMaterial(km: KeyMaterial): Buffer {
  const n = km.keys === 3 ? 2 : 1;
  if (km.salt.length !== 16) throw new HazeError('HAZE_ERR_INVALID_ARG', 'SRT salt must be 16 bytes');
  if (km.wrapped.length !== 8 + n * km.keyLength) throw new HazeError('HAZE_ERR_INVALID_ARG', `wrapped keys of ${km.wrapped.length} bytes (${8 + n * km.keyLength})`);
  const out = Buffer.alloc(KM_HEADER_BYTES + 16 + km.wrapped.length);
  out[0] = 0x12; // S=0, version 1, packet type 2 (KMmsg)
  out.writeUInt16BE(KM_SIGN, 1);
  out[3] = km.keys;
  out.writeUInt32BE(km.keki >>> 0, 4);
  out[8] = km.cipher;
  out[9] = km.auth;
  out[10] = km.se;
  out[14] = 16 / 4;
  out[15] = km.keyLength / 4;
  km.salt.copy(out, KM_HEADER_BYTES);
  km.wrapped.copy(out, KM_HEADER_BYTES + 16);
  return out;
}

/** A one-word KMRSP (the responder's key state) or undefined when `buf` is a KM message. */
export function keyStateOf(buf: Buffer): number | undefined {
  return buf.length === 4 ? buf.readUInt32BE(0) : undefined;
}

export function serializeKeyState(state: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(state >>> 0, 0);
  return out;
}
