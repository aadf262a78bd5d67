// RTMP handshake (Adobe RTMP 1.0 §5.2), sans-I/O: bytes in, bytes out.
//
//   C0/S0: 1 byte version (3 = plain RTMP; 6/8 = RTMPE, not supported)
//   C1/S1: 1536 bytes = time(4) | version-or-zero(4) | 1528 random bytes
//   C2/S2: 1536 bytes = echo of the peer's C1/S1 (simple handshake)
//
// Flash Player 9+ clients (ffmpeg, some librtmp builds) send the "digest" (FP9) handshake: a
// non-zero version in C1 and a 32-byte HMAC-SHA256 digest at an offset computed from four
// bytes of C1 (scheme 0: bytes 8..11, digest region 12..739; scheme 1: bytes 772..775, region
// 776..1503), keyed with the first 30 bytes of the "Genuine Adobe Flash Player 001" key. The
// server then answers with S1 carrying its own digest at the same scheme (FMS key, 36 bytes)
// and an S2 whose last 32 bytes are HMAC(HMAC(fullFmsKey, clientDigest), S2[0..1504]). ffmpeg
// and librtmp verify both, so a server that only echoes C1 fails with them in FP9 mode.

import { createHmac, randomFillSync, timingSafeEqual } from 'node:crypto';
import { HazeError } from '../../util/errors.js';

export const RTMP_VERSION = 3;
export const HANDSHAKE_SIZE = 1536;
const DIGEST_LEN = 32;

/** "Genuine Adobe Flash Player 001" followed by 32 constant bytes (62 bytes). */
const FP_KEY = Buffer.concat([
  Buffer.from('Genuine Adobe Flash Player 001', 'latin1'),
  Buffer.from('f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae', 'hex'),
]);
/** "Genuine Adobe Flash Media Server 001" followed by the same 32 bytes (68 bytes). */
const FMS_KEY = Buffer.concat([
  Buffer.from('Genuine Adobe Flash Media Server 001', 'latin1'),
  Buffer.from('f0eec24a8068bee82e00d0d1029e7e576eec5d2d29806fab93b8e636cfeb31ae', 'hex'),
]);
const FP_KEY_PUBLIC = FP_KEY.subarray(0, 30);
const FMS_KEY_PUBLIC = FMS_KEY.subarray(0, 36);

/** The version our server writes into S1 in digest mode (FMS 3.5.1.1 style). */
const SERVER_VERSION = 0x03050101;
/** The version our client writes into C1 in digest mode (Flash Player 9.0.124.2). */
const CLIENT_VERSION = 0x09007c02;

export type DigestScheme = 0 | 1;

function hmac(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Offset of the 32-byte digest inside a 1536-byte C1/S1 for the given scheme. */
export function digestOffset(sig: Buffer, scheme: DigestScheme): number {
  const base = scheme === 0 ? 8 : 772;
  const sum = sig[base]! + sig[base + 1]! + sig[base + 2]! + sig[base + 3]!;
  return (sum % 728) + base + 4;
}

/** HMAC over the 1536-byte block with the 32 digest bytes left out. */
function computeDigest(sig: Buffer, offset: number, key: Uint8Array): Buffer {
  return hmac(key, sig.subarray(0, offset), sig.subarray(offset + DIGEST_LEN, HANDSHAKE_SIZE));
}

/** Finds which scheme's digest validates with `key`; null if neither (a simple-handshake peer). */
export function findDigest(sig: Buffer, key: Uint8Array): { scheme: DigestScheme; offset: number } | null {
  for (const scheme of [0, 1] as const) {
    const offset = digestOffset(sig, scheme);
    const want = computeDigest(sig, offset, key);
    if (timingSafeEqual(want, sig.subarray(offset, offset + DIGEST_LEN))) return { scheme, offset };
  }
  return null;
}

/** Writes a digest into `sig` (1536 bytes) at the scheme's offset; returns the offset. */
function imprintDigest(sig: Buffer, scheme: DigestScheme, key: Uint8Array): number {
  const offset = digestOffset(sig, scheme);
  computeDigest(sig, offset, key).copy(sig, offset);
  return offset;
}

/** Fills the last 32 bytes of a C2/S2 with the signature derived from the peer's digest. */
function signResponse(resp: Buffer, peerDigest: Buffer, fullKey: Uint8Array): void {
  const key = hmac(fullKey, peerDigest);
  hmac(key, resp.subarray(0, HANDSHAKE_SIZE - DIGEST_LEN)).copy(resp, HANDSHAKE_SIZE - DIGEST_LEN);
}

function responseSignatureValid(resp: Buffer, ownDigest: Buffer, fullKey: Uint8Array): boolean {
  const key = hmac(fullKey, ownDigest);
  const want = hmac(key, resp.subarray(0, HANDSHAKE_SIZE - DIGEST_LEN));
  return timingSafeEqual(want, resp.subarray(HANDSHAKE_SIZE - DIGEST_LEN, HANDSHAKE_SIZE));
}

export interface HandshakeOptions {
  /** Fills a buffer with random bytes (tests pass a deterministic one). */
  random?: (buf: Buffer) => void;
  /** Milliseconds for the time field of C1/S1. */
  nowMs?: () => number;
}

export interface HandshakeStep {
  /** Bytes to send to the peer now, or null. */
  reply: Buffer | null;
  /** True once the handshake is complete; `rest` then holds the first chunk-stream bytes. */
  done: boolean;
  /** Bytes after the handshake (only when done). Empty if none. */
  rest: Buffer;
}

const EMPTY = Buffer.alloc(0);

function defaultRandom(buf: Buffer): void {
  randomFillSync(buf);
}

/**
 * Collects exactly `size` bytes across pushes into one buffer allocated once; takes what it
 * needs from each input chunk and hands back the remainder.
 */
class Collector {
  private buf: Buffer;
  private filled = 0;
  constructor(readonly size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  /** Takes bytes from `chunk`; returns the unconsumed remainder, or null while still short. */
  get isEmpty(): boolean {
    return this.filled === 0;
  }
  take(chunk: Buffer): Buffer | null {
    const n = Math.min(this.size - this.filled, chunk.length);
    chunk.copy(this.buf, this.filled, 0, n);
    this.filled += n;
    return this.filled === this.size ? chunk.subarray(n) : null;
  }
  get value(): Buffer {
    return this.buf;
  }
}

/**
 * Server side: expects C0+C1, answers S0+S1+S2 in one buffer, then expects C2.
 * The digest handshake is used when C1 carries a valid digest, the simple one otherwise.
 */
export class ServerHandshake {
  private state: 'c0c1' | 'c2' | 'done' = 'c0c1';
  private c0c1 = new Collector(1 + HANDSHAKE_SIZE);
  private c2 = new Collector(HANDSHAKE_SIZE);
  private serverDigest: Buffer | null = null;
  /** Which handshake the client used: 'simple' or 'digest' (known after C1). */
  mode: 'simple' | 'digest' | null = null;
  /** Whether the client's C2 carried the expected signature (digest mode only; informational). */
  c2Valid: boolean | null = null;
  private readonly random: (buf: Buffer) => void;
  private readonly nowMs: () => number;

  constructor(opts: HandshakeOptions = {}) {
    this.random = opts.random ?? defaultRandom;
    this.nowMs = opts.nowMs ?? (() => Math.floor(performance.now()));
  }

  get done(): boolean {
    return this.state === 'done';
  }

  push(chunk: Buffer): HandshakeStep {
    let reply: Buffer | null = null;
    let data: Buffer = chunk;
    if (this.state === 'c0c1') {
      if (this.c0c1.isEmpty && data.length > 0 && data[0] !== RTMP_VERSION) {
        const v = data[0]!;
        throw new HazeError(
          v === 6 || v === 8 ? 'HAZE_ERR_UNSUPPORTED' : 'HAZE_ERR_PROTOCOL',
          v === 6 || v === 8 ? `RTMPE (handshake version ${v}) is not supported` : `bad RTMP handshake version byte ${v} (expected 3)`,
        );
      }
      const rest = this.c0c1.take(data);
      if (rest === null) return { reply: null, done: false, rest: EMPTY };
      reply = this.answer(this.c0c1.value.subarray(1));
      this.state = 'c2';
      data = rest;
    }
    if (this.state === 'c2') {
      const rest = this.c2.take(data);
      if (rest === null) return { reply, done: false, rest: EMPTY };
      if (this.serverDigest) this.c2Valid = responseSignatureValid(this.c2.value, this.serverDigest, FP_KEY);
      this.state = 'done';
      // The collectors are no longer needed; drop them so a long-lived session keeps no 3 KiB.
      this.c0c1 = this.c2 = new Collector(0);
      return { reply, done: true, rest };
    }
    return { reply: null, done: true, rest: data };
  }

  private answer(c1: Buffer): Buffer {
    const out = Buffer.allocUnsafe(1 + 2 * HANDSHAKE_SIZE);
    out[0] = RTMP_VERSION;
    const s1 = out.subarray(1, 1 + HANDSHAKE_SIZE);
    const s2 = out.subarray(1 + HANDSHAKE_SIZE);
    this.random(s1);
    s1.writeUInt32BE(this.nowMs() >>> 0, 0);
    const clientVersion = c1.readUInt32BE(4);
    const found = clientVersion !== 0 ? findDigest(c1, FP_KEY_PUBLIC) : null;
    if (!found) {
      // Simple handshake: S1 zero version; S2 echoes C1 with our read time in bytes 4..7.
      this.mode = 'simple';
      s1.writeUInt32BE(0, 4);
      c1.copy(s2);
      s2.writeUInt32BE(this.nowMs() >>> 0, 4);
      return out;
    }
    this.mode = 'digest';
    s1.writeUInt32BE(SERVER_VERSION, 4);
    const offset = imprintDigest(s1, found.scheme, FMS_KEY_PUBLIC);
    this.serverDigest = Buffer.from(s1.subarray(offset, offset + DIGEST_LEN));
    this.random(s2);
    signResponse(s2, c1.subarray(found.offset, found.offset + DIGEST_LEN), FMS_KEY);
    return out;
  }
}

/**
 * Client side: `start()` gives C0+C1; feed S0+S1+S2 to `push`, which answers C2 and then
 * reports done. With `digest: true` (the default) C1 carries an FP9 digest; a server that
 * answers with a simple handshake is accepted too.
 */
export class ClientHandshake {
  private state: 'init' | 's0s1' | 's2' | 'done' = 'init';
  private s0s1 = new Collector(1 + HANDSHAKE_SIZE);
  private s2 = new Collector(HANDSHAKE_SIZE);
  private clientDigest: Buffer | null = null;
  /** Whether the server answered with a digest handshake. */
  serverMode: 'simple' | 'digest' | null = null;
  private readonly random: (buf: Buffer) => void;
  private readonly nowMs: () => number;
  private readonly digest: boolean;

  constructor(opts: HandshakeOptions & { digest?: boolean } = {}) {
    this.random = opts.random ?? defaultRandom;
    this.nowMs = opts.nowMs ?? (() => Math.floor(performance.now()));
    this.digest = opts.digest ?? true;
  }

  get done(): boolean {
    return this.state === 'done';
  }

  /** C0+C1, to send first. */
  start(): Buffer {
    if (this.state !== 'init') throw new HazeError('HAZE_ERR_PROTOCOL', 'handshake already started');
    const out = Buffer.allocUnsafe(1 + HANDSHAKE_SIZE);
    out[0] = RTMP_VERSION;
    const c1 = out.subarray(1);
    this.random(c1);
    c1.writeUInt32BE(this.nowMs() >>> 0, 0);
    if (this.digest) {
      c1.writeUInt32BE(CLIENT_VERSION, 4);
      const offset = imprintDigest(c1, 0, FP_KEY_PUBLIC);
      this.clientDigest = Buffer.from(c1.subarray(offset, offset + DIGEST_LEN));
    } else {
      c1.writeUInt32BE(0, 4);
    }
    this.state = 's0s1';
    return out;
  }

  push(chunk: Buffer): HandshakeStep {
    let reply: Buffer | null = null;
    let data: Buffer = chunk;
    if (this.state === 'init') throw new HazeError('HAZE_ERR_PROTOCOL', 'handshake not started');
    if (this.state === 's0s1') {
      if (this.s0s1.isEmpty && data.length > 0 && data[0] !== RTMP_VERSION) {
        throw new HazeError('HAZE_ERR_PROTOCOL', `bad RTMP handshake version byte ${data[0]} from server (expected 3)`);
      }
      const rest = this.s0s1.take(data);
      if (rest === null) return { reply: null, done: false, rest: EMPTY };
      reply = this.answer(this.s0s1.value.subarray(1));
      this.state = 's2';
      data = rest;
    }
    if (this.state === 's2') {
      const rest = this.s2.take(data);
      if (rest === null) return { reply, done: false, rest: EMPTY };
      if (this.serverMode === 'digest' && this.clientDigest && !responseSignatureValid(this.s2.value, this.clientDigest, FMS_KEY)) {
        throw new HazeError('HAZE_ERR_PROTOCOL', 'RTMP server handshake S2 signature does not match our C1 digest');
      }
      this.state = 'done';
      this.s0s1 = this.s2 = new Collector(0);
      return { reply, done: true, rest };
    }
    return { reply: null, done: true, rest: data };
  }

  private answer(s1: Buffer): Buffer {
    const c2 = Buffer.allocUnsafe(HANDSHAKE_SIZE);
    const found = this.clientDigest && s1.readUInt32BE(4) !== 0 ? findDigest(s1, FMS_KEY_PUBLIC) : null;
    if (!found) {
      this.serverMode = 'simple';
      s1.copy(c2);
      c2.writeUInt32BE(this.nowMs() >>> 0, 4);
      return c2;
    }
    this.serverMode = 'digest';
    this.random(c2);
    signResponse(c2, s1.subarray(found.offset, found.offset + DIGEST_LEN), FP_KEY);
    return c2;
  }
}

/** Exposed for tests: build a digest-carrying C1 the way an FP9 client does. */
export function makeDigestC1(scheme: DigestScheme, random: (buf: Buffer) => void = defaultRandom): { c0c1: Buffer; digest: Buffer } {
  const out = Buffer.allocUnsafe(1 + HANDSHAKE_SIZE);
  out[0] = RTMP_VERSION;
  const c1 = out.subarray(1);
  random(c1);
  c1.writeUInt32BE(CLIENT_VERSION, 4);
  const offset = imprintDigest(c1, scheme, FP_KEY_PUBLIC);
  return { c0c1: out, digest: Buffer.from(c1.subarray(offset, offset + DIGEST_LEN)) };
}

/** Exposed for tests: whether `s2` is the right signature for a client digest. */
export function verifyServerResponse(s2: Buffer, clientDigest: Buffer): boolean {
  return responseSignatureValid(s2, clientDigest, FMS_KEY);
}

export const HANDSHAKE_KEYS = { FP_KEY, FMS_KEY } as const;
