// The SRT handshake (draft-sharabayko-srt §3.2.1 Figure 5, §3.2.1.1 Figure 6, §3.2.1.3, §4.3):
// the CIF of a control packet of type 0.
//
//   version (32) | encryption field (16) extension field (16) | initial sequence number (32)
//   | MTU (32) | maximum flow window (32) | handshake type (32) | SRT socket id (32)
//   | SYN cookie (32) | peer IP address (128)
//   then, in a version 5 conclusion: extension blocks, type (16) | length in words (16) | contents
//
// Extension contents: HSREQ/HSRSP = SRT version | SRT flags | receiver TSBPD delay ms (16) sender
// TSBPD delay ms (16); KMREQ/KMRSP = a key material message (key-material.ts); SID = the
// stream id as UTF-8, stored as 32-bit little-endian words (each group of 4 bytes reversed) and
// zero-padded to a whole word.

import { HazeError } from '../../util/errors.js';

export const HS_CIF_BYTES = 48;

export const HS_INDUCTION = 0x00000001;
export const HS_WAVEAHAND = 0x00000000;
export const HS_CONCLUSION = 0xffffffff;
export const HS_AGREEMENT = 0xfffffffe;
export const HS_DONE = 0xfffffffd;

/** The listener's induction answer carries this in the extension field (SRT, not UDT). */
export const SRT_MAGIC = 0x4a17;
/** A caller's induction request carries the UDT socket type DGRAM (2) in the extension field. */
export const UDT_DGRAM = 2;

/** Extension field flags of a conclusion (Table 3). */
export const HS_EXT_HSREQ = 0x1;
export const HS_EXT_KMREQ = 0x2;
export const HS_EXT_CONFIG = 0x4;

/** Extension block types (Table 5). */
export const EXT_HSREQ = 1;
export const EXT_HSRSP = 2;
export const EXT_KMREQ = 3;
export const EXT_KMRSP = 4;
export const EXT_SID = 5;
export const EXT_CONGESTION = 6;
export const EXT_FILTER = 7;
export const EXT_GROUP = 8;

/** SRT flags of HSREQ/HSRSP (Table 6). */
export const SRT_FLAG_TSBPDSND = 0x01;
export const SRT_FLAG_TSBPDRCV = 0x02;
export const SRT_FLAG_CRYPT = 0x04;
export const SRT_FLAG_TLPKTDROP = 0x08;
export const SRT_FLAG_PERIODICNAK = 0x10;
export const SRT_FLAG_REXMITFLG = 0x20;
export const SRT_FLAG_STREAM = 0x40;
export const SRT_FLAG_PACKET_FILTER = 0x80;

/** The SRT version Haze announces in HSREQ/HSRSP (1.5.0: the live-mode behaviour it implements). */
export const OUR_SRT_VERSION = 0x010500;
/** Live mode: TSBPD both ways, too-late packet drop, periodic NAK, KK and R flags understood. */
export const OUR_SRT_FLAGS = SRT_FLAG_TSBPDSND | SRT_FLAG_TSBPDRCV | SRT_FLAG_CRYPT | SRT_FLAG_TLPKTDROP | SRT_FLAG_PERIODICNAK | SRT_FLAG_REXMITFLG;
export const DEFAULT_MTU = 1500;
/** Packets a receiver may hold (the flow window announced in handshakes). */
export const DEFAULT_FLOW_WINDOW = 8192;

/** Rejection reasons a handshake type may carry instead of a type (Table 7). */
export const REJ_UNKNOWN = 1000;
export const REJ_SYSTEM = 1001;
export const REJ_PEER = 1002;
export const REJ_RESOURCE = 1003;
export const REJ_ROGUE = 1004;
export const REJ_BACKLOG = 1005;
export const REJ_CLOSE = 1007;
export const REJ_VERSION = 1008;
export const REJ_BADSECRET = 1010;
export const REJ_UNSECURE = 1011;
export const REJ_MESSAGEAPI = 1012;
export const REJ_CONGESTION = 1013;
export const REJ_FILTER = 1014;

const REJECT_TEXT: Readonly<Record<number, string>> = {
  1000: 'unknown reason',
  1001: 'system function error',
  1002: 'rejected by peer',
  1003: 'resource allocation problem',
  1004: 'incorrect data in handshake',
  1005: "listener's backlog exceeded",
  1006: 'internal program error',
  1007: 'socket is closing',
  1008: 'peer is older version than agent minimum',
  1009: 'rendezvous cookie collision',
  1010: 'wrong passphrase',
  1011: 'passphrase required or unexpected',
  1012: 'stream flag collision',
  1013: 'incompatible congestion-controller type',
  1014: 'incompatible packet filter',
  1015: 'incompatible group',
};

/** A handshake type that is a rejection code (anything but the five message types). */
export function isRejection(type: number): boolean {
  return type !== HS_INDUCTION && type !== HS_WAVEAHAND && type !== HS_CONCLUSION && type !== HS_AGREEMENT && type !== HS_DONE;
}

export function rejectionText(code: number): string {
  if (code >= 2000) return `rejected by the application (code ${code})`;
  return `${REJECT_TEXT[code] ?? 'unknown reason'} (code ${code})`;
}

/** Encryption field values (Table 2) to key lengths in bytes. */
export function keyLengthOfField(field: number): 0 | 16 | 24 | 32 {
  return field === 2 ? 16 : field === 3 ? 24 : field === 4 ? 32 : 0;
}

export function fieldOfKeyLength(bytes: number): number {
  return bytes === 16 ? 2 : bytes === 24 ? 3 : bytes === 32 ? 4 : 0;
}

export interface HsExtension {
  type: number;
  /** Contents, a whole number of 4-byte words. */
  data: Buffer;
}

export interface Handshake {
  version: number;
  encryptionField: number;
  extensionField: number;
  initialSeq: number;
  mtu: number;
  flowWindow: number;
  type: number;
  socketId: number;
  cookie: number;
  /** 16 bytes as on the wire. */
  peerIp: Buffer;
  extensions: HsExtension[];
}

/** The most extension blocks read from one handshake (a real one has three or four). */
const MAX_EXTENSIONS = 16;

export function parseHandshake(cif: Buffer): Handshake {
  if (cif.length < HS_CIF_BYTES) throw new HazeError('HAZE_ERR_SHORT_READ', `SRT handshake of ${cif.length} bytes (at least 48)`);
  const hs: Handshake = {
    version: cif.readUInt32BE(0),
    encryptionField: cif.readUInt16BE(4),
    extensionField: cif.readUInt16BE(6),
    initialSeq: cif.readUInt32BE(8) & 0x7fffffff,
    mtu: cif.readUInt32BE(12),
    flowWindow: cif.readUInt32BE(16),
    type: cif.readUInt32BE(20),
    socketId: cif.readUInt32BE(24),
    cookie: cif.readUInt32BE(28),
    peerIp: Buffer.from(cif.subarray(32, 48)),
    extensions: [],
  };
  // only a version 5 conclusion (or agreement) carries extension blocks; an induction may have trailing bytes
  if (hs.version < 5 || (hs.type !== HS_CONCLUSION && hs.type !== HS_AGREEMENT)) return hs;
  let o = HS_CIF_BYTES;
  while (o + 4 <= cif.length) {
    if (hs.extensions.length >= MAX_EXTENSIONS) throw new HazeError('HAZE_ERR_TOO_LARGE', `SRT handshake with more than ${MAX_EXTENSIONS} extension blocks`);
    const type = cif.readUInt16BE(o);
    const bytes = cif.readUInt16BE(o + 2) * 4;
    o += 4;
    if (o + bytes > cif.length) throw new HazeError('HAZE_ERR_MALFORMED', `SRT handshake extension ${type} of ${bytes} bytes runs past the packet`);
    hs.extensions.push({ type, data: Buffer.from(cif.subarray(o, o + bytes)) });
    o += bytes;
  }
  return hs;
}

export function serializeHandshake(hs: Handshake): Buffer {
  let size = HS_CIF_BYTES;
  for (const e of hs.extensions) {
    if (e.data.length % 4 !== 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `handshake extension ${e.type} is not whole words`);
    size += 4 + e.data.length;
  }
  const out = Buffer.alloc(size);
  out.writeUInt32BE(hs.version >>> 0, 0);
  out.writeUInt16BE(hs.encryptionField & 0xffff, 4);
  out.writeUInt16BE(hs.extensionField & 0xffff, 6);
  out.writeUInt32BE(hs.initialSeq & 0x7fffffff, 8);
  out.writeUInt32BE(hs.mtu >>> 0, 12);
  out.writeUInt32BE(hs.flowWindow >>> 0, 16);
  out.writeUInt32BE(hs.type >>> 0, 20);
  out.writeUInt32BE(hs.socketId >>> 0, 24);
  out.writeUInt32BE(hs.cookie >>> 0, 28);
  hs.peerIp.copy(out, 32, 0, 16);
  let o = HS_CIF_BYTES;
  for (const e of hs.extensions) {
    out.writeUInt16BE(e.type, o);
    out.writeUInt16BE(e.data.length / 4, o + 2);
    e.data.copy(out, o + 4);
    o += 4 + e.data.length;
  }
  return out;
}

export function findExtension(hs: Handshake, type: number): Buffer | undefined {
  return hs.extensions.find((e) => e.type === type)?.data;
}

/** HSREQ / HSRSP contents. */
export interface SrtHsMessage {
  /** major * 0x10000 + minor * 0x100 + patch */
  srtVersion: number;
  flags: number;
  receiverDelayMs: number;
  senderDelayMs: number;
}

export function parseHsMessage(data: Buffer): SrtHsMessage {
  if (data.length < 12) throw new HazeError('HAZE_ERR_SHORT_READ', `SRT HSREQ/HSRSP of ${data.length} bytes (12)`);
  return { srtVersion: data.readUInt32BE(0), flags: data.readUInt32BE(4), receiverDelayMs: data.readUInt16BE(8), senderDelayMs: data.readUInt16BE(10) };
}

export function serializeHsMessage(m: SrtHsMessage): Buffer {
  const out = Buffer.alloc(12);
  out.writeUInt32BE(m.srtVersion >>> 0, 0);
  out.writeUInt32BE(m.flags >>> 0, 4);
  out.writeUInt16BE(Math.min(0xffff, m.receiverDelayMs), 8);
  out.writeUInt16BE(Math.min(0xffff, m.senderDelayMs), 10);
  return out;
}

/** The longest stream id (§3.2.1.3). */
export const MAX_STREAM_ID_BYTES = 512;

/** Reverses each 4-byte group (the SID's little-endian words). */
function swapWords(src: Buffer): Buffer {
  const out = Buffer.alloc(src.length);
  for (let i = 0; i + 4 <= src.length; i += 4) {
    out[i] = src[i + 3]!;
    out[i + 1] = src[i + 2]!;
    out[i + 2] = src[i + 1]!;
    out[i + 3] = src[i]!;
  }
  return out;
}

export function parseStreamIdExtension(data: Buffer): string {
  if (data.length > MAX_STREAM_ID_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `SRT stream id of ${data.length} bytes (at most ${MAX_STREAM_ID_BYTES})`);
  const bytes = swapWords(data);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.toString('utf8', 0, end);
}

export function serializeStreamIdExtension(sid: string): Buffer {
  const raw = Buffer.from(sid, 'utf8');
  if (raw.length > MAX_STREAM_ID_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `SRT stream id of ${raw.length} bytes (at most ${MAX_STREAM_ID_BYTES})`);
  const padded = Buffer.alloc(Math.ceil(raw.length / 4) * 4);
  raw.copy(padded);
  return swapWords(padded);
}

/** The handshake's peer address field for an address (IPv4: the first word, as 4 bytes in reverse, like the SID). */
export function peerIpField(address: string): Buffer {
  const out = Buffer.alloc(16);
  const v4 = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.(\d+)$/i.exec(address);
  if (v4) {
    for (let i = 0; i < 4; i++) out[3 - i] = Number(v4[i + 1]) & 0xff;
    return out;
  }
  // IPv6: the 16 bytes, each word in little-endian order as above
  const groups = expandIpv6(address);
  if (!groups) return out;
  const be = Buffer.alloc(16);
  groups.forEach((g, i) => be.writeUInt16BE(g, i * 2));
  return swapWords(be);
}

function expandIpv6(address: string): number[] | undefined {
  const a = address.replace(/%.*$/, '');
  const [head, tail] = a.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  if (fill < 0) return undefined;
  const all = [...h, ...new Array<string>(fill).fill('0'), ...t];
  if (all.length !== 8) return undefined;
  const out = all.map((g) => parseInt(g, 16));
  return out.every((n) => Number.isInteger(n) && n >= 0 && n <= 0xffff) ? out : undefined;
}
