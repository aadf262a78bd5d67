// DTMI, MistServer's "packed JSON" value encoding (reference/mistserver.md §2.1, Appendix C.1).
//
//   0x01 int     8 bytes, 64-bit big-endian (read here as signed; the bytes survive either way)
//   0x02 string  u32 BE length + raw bytes (binary-safe: init data and index tables live here)
//   0x03 null    no payload
//   0x04 double  8-byte IEEE-754 BE
//   0xE0 object  { u16 BE key length, key bytes, value }* then 00 00 EE
//   0xFF object  legacy "container" alias of 0xE0, same layout
//   0x0A array   value* then 00 00 EE
//
// The in-memory form keeps everything a byte-exact re-encode needs: member order (an entries
// array, because a JS object would move integer-like keys such as "1" to the front), int versus
// double (1.0 stored as a double re-encodes as a double), strings as Buffers, and 0xFF versus
// 0xE0. Keys are "binary" strings: one char per byte (latin1), so any key bytes round-trip;
// for the ASCII keys MistServer writes this is the plain string.
//
// Decoding is bounded: nesting depth and the total number of values are capped (a 64 MiB frame
// of one-byte nulls must not become 64 M objects), and strings are subarrays of the input.

import { HazeError } from '../../util/errors.js';

export const DTMI_INT = 0x01;
export const DTMI_STRING = 0x02;
export const DTMI_NULL = 0x03;
export const DTMI_DOUBLE = 0x04;
export const DTMI_ARRAY = 0x0a;
export const DTMI_OBJECT = 0xe0;
export const DTMI_LEGACY_OBJECT = 0xff;

export interface DtmiInt {
  readonly kind: 'int';
  /** A number when within ±2^53, else a bigint (so every 64-bit pattern re-encodes exactly). */
  value: number | bigint;
}
export interface DtmiDouble {
  readonly kind: 'double';
  value: number;
}
export interface DtmiString {
  readonly kind: 'string';
  value: Buffer;
}
export interface DtmiNull {
  readonly kind: 'null';
}
export type DtmiEntry = [key: string, value: DtmiValue];
export interface DtmiObject {
  readonly kind: 'object';
  /** Members in wire order. Keys are binary (latin1) strings; duplicates are kept as read. */
  entries: DtmiEntry[];
  /** Written with the legacy 0xFF type byte instead of 0xE0. */
  legacy: boolean;
}
export interface DtmiArray {
  readonly kind: 'array';
  items: DtmiValue[];
}
export type DtmiValue = DtmiInt | DtmiDouble | DtmiString | DtmiNull | DtmiObject | DtmiArray;

export interface DtmiDecodeLimits {
  /** Deepest object/array nesting accepted (the top value is depth 1). Default 32. */
  maxDepth?: number;
  /** Most values (of any kind, containers included) in one decode. Default 262144. */
  maxValues?: number;
}

export const DTMI_DEFAULT_MAX_DEPTH = 32;
export const DTMI_DEFAULT_MAX_VALUES = 262_144;

// ---------------------------------------------------------------------------------------------
// Constructors

export function dtmiInt(value: number | bigint): DtmiInt {
  return { kind: 'int', value };
}
export function dtmiDouble(value: number): DtmiDouble {
  return { kind: 'double', value };
}
/** A string value; JS strings are stored as their UTF-8 bytes. */
export function dtmiString(value: Buffer | Uint8Array | string): DtmiString {
  if (typeof value === 'string') return { kind: 'string', value: Buffer.from(value, 'utf8') };
  return { kind: 'string', value: Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength) };
}
export const DTMI_NULL_VALUE: DtmiNull = Object.freeze({ kind: 'null' }) as DtmiNull;
export function dtmiNull(): DtmiNull {
  return DTMI_NULL_VALUE;
}
export function dtmiObject(entries: DtmiEntry[] = [], legacy = false): DtmiObject {
  return { kind: 'object', entries, legacy };
}
export function dtmiArray(items: DtmiValue[] = []): DtmiArray {
  return { kind: 'array', items };
}

// ---------------------------------------------------------------------------------------------
// Accessors (first member with the key wins, as MistServer's getMember does)

export function dtmiGet(obj: DtmiObject, key: string): DtmiValue | undefined {
  const entries = obj.entries;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e[0] === key) return e[1];
  }
  return undefined;
}

export function dtmiHas(obj: DtmiObject, key: string): boolean {
  return dtmiGet(obj, key) !== undefined;
}

/** An int member as a number (a bigint member loses precision past 2^53); undefined if absent or not an int. */
export function getInt(obj: DtmiObject, key: string): number | undefined {
  const v = dtmiGet(obj, key);
  return v !== undefined && v.kind === 'int' ? Number(v.value) : undefined;
}

/** An int or double member as a number. */
export function getNumber(obj: DtmiObject, key: string): number | undefined {
  const v = dtmiGet(obj, key);
  if (v === undefined) return undefined;
  if (v.kind === 'int') return Number(v.value);
  if (v.kind === 'double') return v.value;
  return undefined;
}

/** A string member's raw bytes (a subarray of the decoded buffer, not a copy). */
export function getBytes(obj: DtmiObject, key: string): Buffer | undefined {
  const v = dtmiGet(obj, key);
  return v !== undefined && v.kind === 'string' ? v.value : undefined;
}

/** A string member decoded as UTF-8 text. */
export function getText(obj: DtmiObject, key: string): string | undefined {
  const b = getBytes(obj, key);
  return b === undefined ? undefined : b.toString('utf8');
}

export function getObject(obj: DtmiObject, key: string): DtmiObject | undefined {
  const v = dtmiGet(obj, key);
  return v !== undefined && v.kind === 'object' ? v : undefined;
}

export function getArray(obj: DtmiObject, key: string): DtmiArray | undefined {
  const v = dtmiGet(obj, key);
  return v !== undefined && v.kind === 'array' ? v : undefined;
}

/** Narrows a value to an object, or throws HAZE_ERR_MALFORMED naming what was expected. */
export function asObject(v: DtmiValue | undefined, what = 'value'): DtmiObject {
  if (v === undefined || v.kind !== 'object') throw new HazeError('HAZE_ERR_MALFORMED', `DTMI: ${what} is not an object`);
  return v;
}

/** Sets (replacing the first existing member) or appends a member. */
export function dtmiSet(obj: DtmiObject, key: string, value: DtmiValue): void {
  const entries = obj.entries;
  for (let i = 0; i < entries.length; i++) {
    if (entries[i]![0] === key) {
      entries[i]![1] = value;
      return;
    }
  }
  entries.push([key, value]);
}

// ---------------------------------------------------------------------------------------------
// Plain JS <-> DTMI, for commands and tests where shapes are small and order does not matter

/**
 * Converts a plain JS value: integral safe numbers and booleans become ints (MistServer packs
 * booleans as 0/1), other numbers doubles, bigints ints, strings UTF-8 strings, Buffers strings,
 * null/undefined null, arrays arrays, objects objects (JS property order, which puts
 * integer-like keys first: build DtmiObject entries directly when order matters). Object keys
 * are written one byte per char (latin1). A DtmiValue (an object shaped exactly like one) is
 * passed through unchanged.
 */
export function fromJs(v: unknown, depth = 0): DtmiValue {
  if (depth > DTMI_DEFAULT_MAX_DEPTH) throw new HazeError('HAZE_ERR_TOO_LARGE', 'DTMI: value nested too deeply');
  if (v === null || v === undefined) return DTMI_NULL_VALUE;
  if (typeof v === 'number') return Number.isSafeInteger(v) && !Object.is(v, -0) ? dtmiInt(v) : dtmiDouble(v);
  if (typeof v === 'bigint') return dtmiInt(v);
  if (typeof v === 'boolean') return dtmiInt(v ? 1 : 0);
  if (typeof v === 'string') return dtmiString(v);
  if (v instanceof Uint8Array) return dtmiString(v);
  if (Array.isArray(v)) return dtmiArray(v.map((x) => fromJs(x, depth + 1)));
  if (typeof v === 'object') {
    if (isDtmiValue(v)) return v;
    return dtmiObject(Object.entries(v as Record<string, unknown>).map(([k, x]): DtmiEntry => [k, fromJs(x, depth + 1)]));
  }
  throw new HazeError('HAZE_ERR_INVALID_ARG', `DTMI: cannot encode a ${typeof v}`);
}

/** Converts to plain JS: ints to numbers (bigint past 2^53), strings to UTF-8 text, objects to records (first duplicate wins). */
export function toJs(v: DtmiValue): unknown {
  switch (v.kind) {
    case 'int':
    case 'double':
      return v.value;
    case 'string':
      return v.value.toString('utf8');
    case 'null':
      return null;
    case 'array':
      return v.items.map(toJs);
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, x] of v.entries) {
        // defineProperty, so a "__proto__" key stays a plain member.
        if (!Object.prototype.hasOwnProperty.call(out, k)) Object.defineProperty(out, k, { value: toJs(x), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
  }
}

/** True for an object shaped exactly like a DtmiValue (same keys and value types), so fromJs passes it through. */
function isDtmiValue(v: object): v is DtmiValue {
  const o = v as Record<string, unknown>;
  const n = Object.keys(o).length;
  switch (o['kind']) {
    case 'int':
      return n === 2 && (typeof o['value'] === 'number' || typeof o['value'] === 'bigint');
    case 'double':
      return n === 2 && typeof o['value'] === 'number';
    case 'string':
      return n === 2 && Buffer.isBuffer(o['value']);
    case 'null':
      return n === 1;
    case 'object':
      return n === 3 && Array.isArray(o['entries']) && typeof o['legacy'] === 'boolean';
    case 'array':
      return n === 2 && Array.isArray(o['items']);
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Size and encoding

const MAX_U32 = 0xffff_ffff;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

/** Byte length of a key as written (latin1: one byte per char); throws for chars past 0xFF. */
function keyBytes(key: string): number {
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) > 0xff) throw new HazeError('HAZE_ERR_INVALID_ARG', `DTMI: key ${JSON.stringify(key)} has a char past 0xFF (keys are binary strings)`);
  }
  if (key.length > 0xffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTMI: key of ${key.length} bytes exceeds 65535`);
  return key.length;
}

/**
 * Packed size in bytes (§2.1): ints/doubles 9, null 1, string 5+len,
 * object 4 + Σ(2+keylen+child) (zero-length keys are not written), array 4 + Σ child.
 */
export function packedSize(v: DtmiValue, depth = 0): number {
  switch (v.kind) {
    case 'int':
    case 'double':
      return 9;
    case 'null':
      return 1;
    case 'string':
      if (v.value.length > MAX_U32) throw new HazeError('HAZE_ERR_TOO_LARGE', 'DTMI: string longer than 2^32-1');
      return 5 + v.value.length;
    case 'array': {
      tooDeep(depth);
      let n = 4;
      for (const item of v.items) n += packedSize(item, depth + 1);
      return n;
    }
    case 'object': {
      tooDeep(depth);
      let n = 4;
      for (const [k, x] of v.entries) {
        const kl = keyBytes(k);
        if (kl === 0) continue;
        n += 2 + kl + packedSize(x, depth + 1);
      }
      return n;
    }
  }
}

/** Containers nest at most DTMI_DEFAULT_MAX_DEPTH deep, as the decoder accepts; this also stops cycles. */
function tooDeep(depth: number): void {
  if (depth >= DTMI_DEFAULT_MAX_DEPTH) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTMI: nesting deeper than ${DTMI_DEFAULT_MAX_DEPTH}`);
}

/** Writes `v` at `pos` into a buffer sized with packedSize; returns the position after it. */
export function writeDtmi(v: DtmiValue, buf: Buffer, pos: number): number {
  switch (v.kind) {
    case 'int': {
      buf[pos] = DTMI_INT;
      writeInt64(buf, pos + 1, v.value);
      return pos + 9;
    }
    case 'double':
      buf[pos] = DTMI_DOUBLE;
      buf.writeDoubleBE(v.value, pos + 1);
      return pos + 9;
    case 'null':
      buf[pos] = DTMI_NULL;
      return pos + 1;
    case 'string':
      buf[pos] = DTMI_STRING;
      buf.writeUInt32BE(v.value.length, pos + 1);
      buf.set(v.value, pos + 5);
      return pos + 5 + v.value.length;
    case 'array': {
      buf[pos++] = DTMI_ARRAY;
      for (const item of v.items) pos = writeDtmi(item, buf, pos);
      return writeEnd(buf, pos);
    }
    case 'object': {
      buf[pos++] = v.legacy ? DTMI_LEGACY_OBJECT : DTMI_OBJECT;
      for (const [k, x] of v.entries) {
        if (k.length === 0) continue;
        buf.writeUInt16BE(k.length, pos);
        buf.write(k, pos + 2, 'latin1');
        pos = writeDtmi(x, buf, pos + 2 + k.length);
      }
      return writeEnd(buf, pos);
    }
  }
}

function writeEnd(buf: Buffer, pos: number): number {
  buf[pos] = 0;
  buf[pos + 1] = 0;
  buf[pos + 2] = 0xee;
  return pos + 3;
}

/** Writes a 64-bit int: a safe-integer number, or a bigint in [-2^63, 2^64) (unsigned values past 2^63 keep their bits). */
export function writeInt64(buf: Buffer, pos: number, value: number | bigint): void {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new HazeError('HAZE_ERR_INVALID_ARG', `DTMI: int ${value} is not a safe integer`);
    const hi = Math.floor(value / 0x1_0000_0000);
    buf.writeInt32BE(hi, pos);
    buf.writeUInt32BE(value - hi * 0x1_0000_0000, pos + 4);
    return;
  }
  if (value < INT64_MIN || value > UINT64_MAX) throw new HazeError('HAZE_ERR_INVALID_ARG', `DTMI: int ${value} does not fit 64 bits`);
  if (value < 0n) buf.writeBigInt64BE(value, pos);
  else buf.writeBigUInt64BE(value, pos);
}

/** Encodes one value into a buffer allocated once at its packed size. */
export function encodeDtmi(v: DtmiValue): Buffer {
  const buf = Buffer.allocUnsafe(packedSize(v));
  const end = writeDtmi(v, buf, 0);
  if (end !== buf.length) throw new Error(`DTMI: wrote ${end} of ${buf.length} bytes`);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Reads a signed 64-bit BE int as a number when within ±2^53, else as a bigint. */
export function readInt64(buf: Buffer, pos: number): number | bigint {
  const hi = buf.readInt32BE(pos);
  const lo = buf.readUInt32BE(pos + 4);
  // |hi| < 2^21 keeps hi*2^32+lo within the safe range.
  if (hi >= -0x20_0000 && hi < 0x20_0000) {
    const n = hi * 0x1_0000_0000 + lo;
    if (Number.isSafeInteger(n)) return n;
  }
  return buf.readBigInt64BE(pos);
}

class DtmiDecoder {
  values = 0;
  constructor(
    readonly buf: Buffer,
    readonly end: number,
    readonly maxDepth: number,
    readonly maxValues: number,
  ) {}

  /** Position after the value last decoded. */
  pos = 0;

  short(pos: number, n: number): never {
    throw new HazeError('HAZE_ERR_SHORT_READ', `DTMI: need ${n} bytes at ${pos}, have ${Math.max(0, this.end - pos)}`);
  }

  /** Decodes the value at `pos`; returns it and sets `this.pos`. */
  value(pos: number, depth: number): DtmiValue {
    const buf = this.buf;
    if (pos >= this.end) this.short(pos, 1);
    if (++this.values > this.maxValues) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTMI: more than ${this.maxValues} values`);
    const type = buf[pos]!;
    switch (type) {
      case DTMI_INT:
        if (pos + 9 > this.end) this.short(pos + 1, 8);
        this.pos = pos + 9;
        return { kind: 'int', value: readInt64(buf, pos + 1) };
      case DTMI_DOUBLE:
        if (pos + 9 > this.end) this.short(pos + 1, 8);
        this.pos = pos + 9;
        return { kind: 'double', value: buf.readDoubleBE(pos + 1) };
      case DTMI_NULL:
        this.pos = pos + 1;
        return DTMI_NULL_VALUE;
      case DTMI_STRING: {
        if (pos + 5 > this.end) this.short(pos + 1, 4);
        const len = buf.readUInt32BE(pos + 1);
        if (pos + 5 + len > this.end) this.short(pos + 5, len);
        this.pos = pos + 5 + len;
        return { kind: 'string', value: buf.subarray(pos + 5, pos + 5 + len) };
      }
      case DTMI_OBJECT:
      case DTMI_LEGACY_OBJECT: {
        if (depth >= this.maxDepth) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTMI: nesting deeper than ${this.maxDepth}`);
        const entries: DtmiEntry[] = [];
        let p = pos + 1;
        for (;;) {
          if (p + 2 > this.end) this.short(p, 2);
          const keyLen = buf.readUInt16BE(p);
          if (keyLen === 0) {
            p = this.terminator(p);
            break;
          }
          if (p + 2 + keyLen > this.end) this.short(p + 2, keyLen);
          const key = buf.toString('latin1', p + 2, p + 2 + keyLen);
          const child = this.value(p + 2 + keyLen, depth + 1);
          entries.push([key, child]);
          p = this.pos;
        }
        this.pos = p;
        return { kind: 'object', entries, legacy: type === DTMI_LEGACY_OBJECT };
      }
      case DTMI_ARRAY: {
        if (depth >= this.maxDepth) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTMI: nesting deeper than ${this.maxDepth}`);
        const items: DtmiValue[] = [];
        let p = pos + 1;
        for (;;) {
          if (p + 2 > this.end) this.short(p, 2);
          if (buf[p] === 0 && buf[p + 1] === 0) {
            p = this.terminator(p);
            break;
          }
          items.push(this.value(p, depth + 1));
          p = this.pos;
        }
        this.pos = p;
        return { kind: 'array', items };
      }
      default:
        throw new HazeError('HAZE_ERR_MALFORMED', `DTMI: unknown type byte 0x${type.toString(16).padStart(2, '0')} at ${pos}`);
    }
  }

  /** Checks the 00 00 EE end marker at `p` (MistServer only writes this exact marker). */
  terminator(p: number): number {
    if (p + 3 > this.end) this.short(p, 3);
    if (this.buf[p + 2] !== 0xee) throw new HazeError('HAZE_ERR_MALFORMED', `DTMI: end marker 00 00 ${this.buf[p + 2]!.toString(16)} at ${p}, expected 00 00 ee`);
    return p + 3;
  }
}

/** Decodes one value starting at `start`; returns it and the position after it. */
export function decodeDtmiAt(buf: Buffer, start = 0, end = buf.length, limits: DtmiDecodeLimits = {}): { value: DtmiValue; end: number } {
  const d = new DtmiDecoder(buf, end, limits.maxDepth ?? DTMI_DEFAULT_MAX_DEPTH, limits.maxValues ?? DTMI_DEFAULT_MAX_VALUES);
  const value = d.value(start, 0);
  return { value, end: d.pos };
}

/** Decodes a buffer holding exactly one value (trailing bytes are HAZE_ERR_MALFORMED). */
export function decodeDtmi(buf: Buffer, limits: DtmiDecodeLimits = {}): DtmiValue {
  const r = decodeDtmiAt(buf, 0, buf.length, limits);
  if (r.end !== buf.length) throw new HazeError('HAZE_ERR_MALFORMED', `DTMI: ${buf.length - r.end} trailing bytes after the value`);
  return r.value;
}

/**
 * Returns the position after the value at `pos` without building it (for scanning packets).
 * Same checks and depth bound as decoding.
 */
export function skipDtmi(buf: Buffer, pos: number, end: number, depth = 0, maxDepth = DTMI_DEFAULT_MAX_DEPTH): number {
  if (pos >= end) throw new HazeError('HAZE_ERR_SHORT_READ', `DTMI: value expected at ${pos}`);
  const type = buf[pos]!;
  switch (type) {
    case DTMI_INT:
    case DTMI_DOUBLE:
      if (pos + 9 > end) throw new HazeError('HAZE_ERR_SHORT_READ', `DTMI: 8 bytes needed at ${pos + 1}`);
      return pos + 9;
    case DTMI_NULL:
      return pos + 1;
    case DTMI_STRING: {
      if (pos + 5 > end) throw new HazeError('HAZE_ERR_SHORT_READ', `DTMI: string length needed at ${pos + 1}`);
      const next = pos + 5 + buf.readUInt32BE(pos + 1);
      if (next > end) throw new HazeError('HAZE_ERR_SHORT_READ', `DTMI: string at ${pos} runs past the end`);
      return next;
    }
    case DTMI_OBJECT:
    case DTMI_LEGACY_OBJECT:
    case DTMI_ARRAY: {
      if (depth >= maxDepth) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTMI: nesting deeper than ${maxDepth}`);
      let p = pos + 1;
      for (;;) {
        if (p + 2 > end) throw new HazeError('HAZE_ERR_SHORT_READ', `DTMI: member expected at ${p}`);
        if (buf[p] === 0 && buf[p + 1] === 0) {
          if (p + 3 > end) throw new HazeError('HAZE_ERR_SHORT_READ', `DTMI: end marker cut at ${p}`);
          if (buf[p + 2] !== 0xee) throw new HazeError('HAZE_ERR_MALFORMED', `DTMI: bad end marker at ${p}`);
          return p + 3;
        }
        if (type !== DTMI_ARRAY) {
          p += 2 + buf.readUInt16BE(p);
          if (p > end) throw new HazeError('HAZE_ERR_SHORT_READ', `DTMI: key runs past the end`);
        }
        p = skipDtmi(buf, p, end, depth + 1, maxDepth);
      }
    }
    default:
      throw new HazeError('HAZE_ERR_MALFORMED', `DTMI: unknown type byte 0x${type.toString(16).padStart(2, '0')} at ${pos}`);
  }
}

/** Returns a copy of the value with object members sorted by key at every level (std::map order, as MistServer's JSON::Value packs). */
export function sortedDtmi(v: DtmiValue, depth = 0): DtmiValue {
  if (depth > DTMI_DEFAULT_MAX_DEPTH) throw new HazeError('HAZE_ERR_TOO_LARGE', 'DTMI: value nested too deeply');
  if (v.kind === 'array') return dtmiArray(v.items.map((x) => sortedDtmi(x, depth + 1)));
  if (v.kind !== 'object') return v;
  // Keys are latin1 strings, so UTF-16 code unit order equals byte order (memcmp, as std::string sorts).
  const entries = v.entries.map(([k, x]): DtmiEntry => [k, sortedDtmi(x, depth + 1)]);
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return dtmiObject(entries, v.legacy);
}
