// STUN messages as ICE uses them (RFC 5389 §6, §15; RFC 8445 §7.1 and §16.1), without sockets:
// Haze is an ICE-lite agent (RFC 8445 §2.5), so it only answers Binding requests, checks their
// short-term credentials (USERNAME "ourUfrag:theirUfrag", MESSAGE-INTEGRITY keyed with our
// password) and their FINGERPRINT.
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |0 0|     STUN Message Type     |         Message Length        |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                   Magic Cookie (0x2112A442)                   |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  |                Transaction ID (96 bits)                       |
//  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//  | attributes: type (16) | length (16) | value, padded to 4 bytes |

import { createHmac, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { HazeError } from '../../util/errors.js';

export const STUN_HEADER_BYTES = 20;
export const STUN_MAGIC_COOKIE = 0x2112a442;
/** Larger STUN messages are not ICE checks (a check is ~100 bytes). */
export const MAX_STUN_BYTES = 1500;

export const STUN_BINDING_REQUEST = 0x0001;
export const STUN_BINDING_SUCCESS = 0x0101;
export const STUN_BINDING_ERROR = 0x0111;
export const STUN_BINDING_INDICATION = 0x0011;

export const ATTR = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  XOR_MAPPED_ADDRESS: 0x0020,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  FINGERPRINT: 0x8028,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
} as const;

const FINGERPRINT_XOR = 0x5354554e;
const INTEGRITY_BYTES = 20;

export interface StunAttribute {
  type: number;
  value: Buffer;
}

export interface StunMessage {
  type: number;
  transactionId: Buffer;
  attributes: StunAttribute[];
  /** Offset of the MESSAGE-INTEGRITY attribute in the raw message, -1 without one. */
  integrityOffset: number;
  /** Offset of the FINGERPRINT attribute, -1 without one. */
  fingerprintOffset: number;
}

/** RFC 7983 §7: a datagram whose first byte is 0..3 is STUN (then DTLS 20..63, RTP/RTCP 128..191). */
export function looksLikeStun(buf: Buffer): boolean {
  return buf.length >= STUN_HEADER_BYTES && buf[0]! < 4 && buf.readUInt32BE(4) === STUN_MAGIC_COOKIE;
}

/** Parses one STUN message (a whole datagram); throws HAZE_ERR_MALFORMED / SHORT_READ / TOO_LARGE. */
export function parseStun(buf: Buffer): StunMessage {
  if (buf.length < STUN_HEADER_BYTES) throw new HazeError('HAZE_ERR_SHORT_READ', `a STUN message of ${buf.length} bytes`);
  if (buf.length > MAX_STUN_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `a STUN message of ${buf.length} bytes`);
  const type = buf.readUInt16BE(0);
  if (type & 0xc000) throw new HazeError('HAZE_ERR_MALFORMED', 'STUN: the two top bits of the type are not zero');
  const length = buf.readUInt16BE(2);
  if (buf.readUInt32BE(4) !== STUN_MAGIC_COOKIE) throw new HazeError('HAZE_ERR_MALFORMED', 'STUN: no magic cookie');
  if (length % 4 !== 0) throw new HazeError('HAZE_ERR_MALFORMED', 'STUN: length not a multiple of 4');
  if (STUN_HEADER_BYTES + length !== buf.length) throw new HazeError('HAZE_ERR_MALFORMED', `STUN: length ${length} does not match the datagram (${buf.length} bytes)`);
  const attributes: StunAttribute[] = [];
  let integrityOffset = -1;
  let fingerprintOffset = -1;
  let pos = STUN_HEADER_BYTES;
  while (pos < buf.length) {
    if (pos + 4 > buf.length) throw new HazeError('HAZE_ERR_SHORT_READ', 'STUN: a truncated attribute header');
    const atype = buf.readUInt16BE(pos);
    const alen = buf.readUInt16BE(pos + 2);
    const end = pos + 4 + alen;
    if (end > buf.length) throw new HazeError('HAZE_ERR_SHORT_READ', `STUN: attribute 0x${atype.toString(16)} of ${alen} bytes past the end`);
    // §15.4/§15.5: only FINGERPRINT may follow MESSAGE-INTEGRITY, nothing follows FINGERPRINT
    if (fingerprintOffset >= 0) throw new HazeError('HAZE_ERR_MALFORMED', 'STUN: an attribute after FINGERPRINT');
    if (integrityOffset >= 0 && atype !== ATTR.FINGERPRINT) throw new HazeError('HAZE_ERR_MALFORMED', 'STUN: an attribute after MESSAGE-INTEGRITY');
    if (atype === ATTR.MESSAGE_INTEGRITY) {
      if (alen !== INTEGRITY_BYTES) throw new HazeError('HAZE_ERR_MALFORMED', 'STUN: MESSAGE-INTEGRITY is not 20 bytes');
      integrityOffset = pos;
    } else if (atype === ATTR.FINGERPRINT) {
      if (alen !== 4) throw new HazeError('HAZE_ERR_MALFORMED', 'STUN: FINGERPRINT is not 4 bytes');
      fingerprintOffset = pos;
    }
    attributes.push({ type: atype, value: buf.subarray(pos + 4, end) });
    pos = end + ((4 - (alen % 4)) % 4);
  }
  if (pos !== buf.length) throw new HazeError('HAZE_ERR_MALFORMED', 'STUN: attribute padding past the end');
  return { type, transactionId: buf.subarray(8, 20), attributes, integrityOffset, fingerprintOffset };
}

export function stunAttribute(msg: StunMessage, type: number): Buffer | undefined {
  for (const a of msg.attributes) if (a.type === type) return a.value;
  return undefined;
}

/** USERNAME as text (ICE: "receiverUfrag:senderUfrag"), undefined without one. */
export function stunUsername(msg: StunMessage): string | undefined {
  const v = stunAttribute(msg, ATTR.USERNAME);
  return v === undefined ? undefined : v.toString('utf8');
}

// ---- integrity and fingerprint ------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of ISO 3309 / ITU-T V.42 (the zlib one), as FINGERPRINT uses. */
export function crc32(data: Uint8Array, start = 0, end = data.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/**
 * The HMAC-SHA1 of the message up to `offset` with the header's length field set as if the
 * message ended after a MESSAGE-INTEGRITY attribute at `offset` (§15.4).
 */
function integrityOver(buf: Buffer, offset: number, key: Buffer | string): Buffer {
  const head = Buffer.from(buf.subarray(0, 4));
  head.writeUInt16BE(offset + 4 + INTEGRITY_BYTES - STUN_HEADER_BYTES, 2);
  return createHmac('sha1', key).update(head).update(buf.subarray(4, offset)).digest();
}

/** Whether the message's MESSAGE-INTEGRITY is right for `key` (the ICE password); false without one. */
export function verifyIntegrity(buf: Buffer, msg: StunMessage, key: Buffer | string): boolean {
  if (msg.integrityOffset < 0) return false;
  const expected = integrityOver(buf, msg.integrityOffset, key);
  return timingSafeEqual(expected, buf.subarray(msg.integrityOffset + 4, msg.integrityOffset + 4 + INTEGRITY_BYTES));
}

/** Whether the FINGERPRINT is right; true for a message without one (ICE requires it, the caller decides). */
export function verifyFingerprint(buf: Buffer, msg: StunMessage): boolean {
  if (msg.fingerprintOffset < 0) return true;
  const expected = (crc32(buf, 0, msg.fingerprintOffset) ^ FINGERPRINT_XOR) >>> 0;
  return buf.readUInt32BE(msg.fingerprintOffset + 4) === expected;
}

// ---- writing --------------------------------------------------------------------------------

export interface StunWriteOptions {
  /** Adds MESSAGE-INTEGRITY keyed with this (the ICE password). */
  integrityKey?: Buffer | string;
  /** Adds FINGERPRINT (ICE always does). */
  fingerprint?: boolean;
}

/** A STUN message with the given attributes (plus integrity and fingerprint), allocated once. */
export function serializeStun(type: number, transactionId: Buffer, attributes: readonly StunAttribute[], opts: StunWriteOptions = {}): Buffer {
  if (transactionId.length !== 12) throw new HazeError('HAZE_ERR_INVALID_ARG', 'a STUN transaction id has 12 bytes');
  let size = STUN_HEADER_BYTES;
  for (const a of attributes) size += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4);
  const integrityAt = size;
  if (opts.integrityKey !== undefined) size += 4 + INTEGRITY_BYTES;
  const fingerprintAt = size;
  if (opts.fingerprint) size += 8;
  if (size > MAX_STUN_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `a STUN message of ${size} bytes`);
  const out = Buffer.alloc(size);
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(size - STUN_HEADER_BYTES, 2);
  out.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  transactionId.copy(out, 8);
  let pos = STUN_HEADER_BYTES;
  for (const a of attributes) {
    out.writeUInt16BE(a.type, pos);
    out.writeUInt16BE(a.value.length, pos + 2);
    a.value.copy(out, pos + 4);
    pos += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4);
  }
  if (opts.integrityKey !== undefined) {
    out.writeUInt16BE(ATTR.MESSAGE_INTEGRITY, integrityAt);
    out.writeUInt16BE(INTEGRITY_BYTES, integrityAt + 2);
    integrityOver(out, integrityAt, opts.integrityKey).copy(out, integrityAt + 4);
  }
  if (opts.fingerprint) {
    out.writeUInt16BE(ATTR.FINGERPRINT, fingerprintAt);
    out.writeUInt16BE(4, fingerprintAt + 2);
    out.writeUInt32BE((crc32(out, 0, fingerprintAt) ^ FINGERPRINT_XOR) >>> 0, fingerprintAt + 4);
  }
  return out;
}

/** XOR-MAPPED-ADDRESS (§15.2) of an IPv4 or IPv6 address and port. */
export function xorMappedAddress(address: string, port: number, transactionId: Buffer): Buffer {
  const v4 = net.isIPv4(address);
  const ip = v4 ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address);
  const out = Buffer.alloc(4 + ip.length);
  out[1] = v4 ? 0x01 : 0x02;
  out.writeUInt16BE(port ^ (STUN_MAGIC_COOKIE >>> 16), 2);
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(STUN_MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4);
  for (let i = 0; i < ip.length; i++) out[4 + i] = ip[i]! ^ mask[i]!;
  return out;
}

/** Reads XOR-MAPPED-ADDRESS back (tests, and a client's view of a response). */
export function readXorMappedAddress(value: Buffer, transactionId: Buffer): { address: string; port: number } {
  if (value.length < 8) throw new HazeError('HAZE_ERR_SHORT_READ', 'STUN: a short XOR-MAPPED-ADDRESS');
  const family = value[1];
  const port = value.readUInt16BE(2) ^ (STUN_MAGIC_COOKIE >>> 16);
  const mask = Buffer.alloc(16);
  mask.writeUInt32BE(STUN_MAGIC_COOKIE, 0);
  transactionId.copy(mask, 4);
  if (family === 0x01) {
    const b = [0, 1, 2, 3].map((i) => value[4 + i]! ^ mask[i]!);
    return { address: b.join('.'), port };
  }
  if (family === 0x02 && value.length >= 20) {
    const parts: string[] = [];
    for (let i = 0; i < 16; i += 2) parts.push((((value[4 + i]! ^ mask[i]!) << 8) | (value[5 + i]! ^ mask[i + 1]!)).toString(16));
    return { address: parts.join(':'), port };
  }
  throw new HazeError('HAZE_ERR_MALFORMED', `STUN: address family ${family}`);
}

function ipv6Bytes(address: string): Buffer {
  const out = Buffer.alloc(16);
  const [headPart, tailPart] = address.includes('::') ? address.split('::') : [address, undefined];
  const head = headPart ? headPart.split(':') : [];
  const tail = tailPart ? tailPart.split(':') : [];
  // an embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups
  const expand = (groups: string[]): number[] =>
    groups.flatMap((g) => {
      if (g.includes('.')) {
        const b = g.split('.').map(Number);
        return [(b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!];
      }
      return [parseInt(g, 16) || 0];
    });
  const h = expand(head);
  const t = expand(tail);
  const groups = tailPart === undefined ? h : [...h, ...new Array<number>(Math.max(0, 8 - h.length - t.length)).fill(0), ...t];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i] ?? 0, i * 2);
  return out;
}

/** The success response to a Binding request from `address`:`port`, signed with our password. */
export function bindingSuccess(transactionId: Buffer, address: string, port: number, password: string): Buffer {
  return serializeStun(STUN_BINDING_SUCCESS, transactionId, [{ type: ATTR.XOR_MAPPED_ADDRESS, value: xorMappedAddress(address, port, transactionId) }], { integrityKey: password, fingerprint: true });
}

/** An error response (§15.6): 400 Bad Request, 401 Unauthorized, 487 Role Conflict. */
export function bindingError(transactionId: Buffer, code: number, reason: string): Buffer {
  const text = Buffer.from(reason.slice(0, 120), 'utf8');
  const value = Buffer.alloc(4 + text.length);
  value[2] = Math.floor(code / 100);
  value[3] = code % 100;
  text.copy(value, 4);
  return serializeStun(STUN_BINDING_ERROR, transactionId, [{ type: ATTR.ERROR_CODE, value }], { fingerprint: true });
}
