// AMF0 (Adobe "Action Message Format -- AMF 0", 2006), §2 type markers:
//   0x00 number (f64)   0x01 boolean (u8)   0x02 string (u16 len + UTF-8)   0x03 object
//   0x05 null   0x06 undefined   0x07 reference (u16)   0x08 ECMA array (u32 count + object body)
//   0x0A strict array (u32 count + values)   0x0B date (f64 ms + s16 time zone, must be 0)
//   0x0C long string (u32 len)   0x10 typed object (class name + object body)   0x11 AVM+ (AMF3)
// An object body is (u16 key length, key, value)* closed by the end marker 00 00 09.
//
// Value model: plain objects are AMF0 objects; `Amf0EcmaArray` (a Map, so keys keep wire order
// even when they look like integers) is an ECMA array; JS arrays are strict arrays; an AMF3 value
// behind the 0x11 switch stays wrapped in `Amf0Avmplus` so it re-encodes with the switch.
// Plain objects order integer-like keys first (a JS rule), so an *object* (not an ECMA array)
// with keys like "1" after "b" does not round-trip byte for byte; RTMP never sends such keys.

import { ByteReader, ByteWriter } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';
import { decodeAmf3Value, encodeAmf3Value, Amf3DecodeContext, type Amf3Value } from './amf3.js';

export interface Amf0Object {
  [key: string]: Amf0Value;
}

/** AMF0 ECMA array: an associative array with a (hint) count; a Map keeps the wire key order. */
export class Amf0EcmaArray extends Map<string, Amf0Value> {
  /**
   * The count field as it was on the wire when it differs from the entry count (encoders
   * disagree: some write 0), so a decoded array re-encodes byte for byte. When undefined, the
   * entry count is written.
   */
  declaredCount: number | undefined = undefined;

  /** A plain-object view (for reading metadata fields); later duplicate keys win. */
  toObject(): Amf0Object {
    const o: Amf0Object = {};
    for (const [k, v] of this) setKey(o, k, v);
    return o;
  }

  static fromObject(o: Amf0Object): Amf0EcmaArray {
    const a = new Amf0EcmaArray();
    for (const k of Object.keys(o)) a.set(k, o[k]);
    return a;
  }
}

/** AMF0 typed object (0x10): an object with an ActionScript class name. */
export class Amf0TypedObject {
  constructor(
    public className: string,
    public value: Amf0Object,
  ) {}
}

/** An AMF3 value carried behind the AMF0 0x11 "AVM+" switch. */
export class Amf0Avmplus {
  constructor(public value: Amf3Value) {}
}

/** A string that is to be written as a long string (0x0C) even when short (decoded 0x0C strings keep this). */
export class Amf0LongString {
  constructor(public value: string) {}
  toString(): string {
    return this.value;
  }
}

export type Amf0Value =
  | number
  | boolean
  | string
  | null
  | undefined
  | Date
  | Amf0Object
  | Amf0Value[]
  | Amf0EcmaArray
  | Amf0TypedObject
  | Amf0LongString
  | Amf0Avmplus;

const MAX_DEPTH = 64;

/** Reference table of one AMF0 message (complex values in order of appearance, §2.9). */
export class Amf0DecodeContext {
  readonly complex: Amf0Value[] = [];
}

/** Sets a key without invoking the `__proto__` setter of a plain object (no prototype pollution). */
function setKey(o: Amf0Object, key: string, value: Amf0Value): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

function readShortString(r: ByteReader): string {
  const len = r.u16();
  return r.bytes(len).toString('utf8');
}

/** Reads `key value` pairs up to the 00 00 09 end marker, handing each to `put`. */
function readObjectBody(r: ByteReader, ctx: Amf0DecodeContext, depth: number, put: (k: string, v: Amf0Value) => void): void {
  for (;;) {
    const key = readShortString(r);
    if (key === '') {
      // An empty key followed by 0x09 closes the object; an empty key with a value is legal.
      r.need(1);
      if (r.buf[r.pos] === 0x09) {
        r.pos++;
        return;
      }
    }
    put(key, decodeAmf0Value(r, ctx, depth + 1));
  }
}

/** Decodes one AMF0 value at the reader's position. Throws HazeError on bad or short input. */
export function decodeAmf0Value(r: ByteReader, ctx: Amf0DecodeContext = new Amf0DecodeContext(), depth = 0): Amf0Value {
  if (depth > MAX_DEPTH) throw new HazeError('HAZE_ERR_TOO_LARGE', `AMF0 nesting deeper than ${MAX_DEPTH}`);
  const marker = r.u8();
  switch (marker) {
    case 0x00:
      return r.f64();
    case 0x01:
      return r.u8() !== 0;
    case 0x02:
      return readShortString(r);
    case 0x03: {
      const o: Amf0Object = {};
      ctx.complex.push(o);
      readObjectBody(r, ctx, depth, (k, v) => setKey(o, k, v));
      return o;
    }
    case 0x05:
      return null;
    case 0x06:
      return undefined;
    case 0x07: {
      const idx = r.u16();
      if (idx >= ctx.complex.length) throw new HazeError('HAZE_ERR_MALFORMED', `AMF0 reference ${idx} out of range`);
      return ctx.complex[idx];
    }
    case 0x08: {
      const a = new Amf0EcmaArray();
      a.declaredCount = r.u32();
      ctx.complex.push(a);
      readObjectBody(r, ctx, depth, (k, v) => a.set(k, v));
      // Keep the wire count only where it disagrees with the entries (needed for byte-exact output).
      if (a.declaredCount === a.size) a.declaredCount = undefined;
      return a;
    }
    case 0x0a: {
      const count = r.u32();
      // Each value takes at least one byte: refuse counts the buffer cannot hold before looping.
      if (count > r.remaining) throw new HazeError('HAZE_ERR_MALFORMED', `AMF0 strict array of ${count} in ${r.remaining} bytes`);
      const arr: Amf0Value[] = [];
      ctx.complex.push(arr);
      for (let i = 0; i < count; i++) arr.push(decodeAmf0Value(r, ctx, depth + 1));
      return arr;
    }
    case 0x0b: {
      const ms = r.f64();
      r.skip(2); // time zone: "should be set to 0x0000" and ignored by readers
      return new Date(ms);
    }
    case 0x0c: {
      const len = r.u32();
      return new Amf0LongString(r.bytes(len).toString('utf8'));
    }
    case 0x10: {
      const className = readShortString(r);
      const o: Amf0Object = {};
      const t = new Amf0TypedObject(className, o);
      ctx.complex.push(t);
      readObjectBody(r, ctx, depth, (k, v) => setKey(o, k, v));
      return t;
    }
    case 0x11:
      // Each switch starts a fresh AMF3 reference context.
      return new Amf0Avmplus(decodeAmf3Value(r, new Amf3DecodeContext(), depth + 1));
    case 0x04:
    case 0x0d:
    case 0x0e:
    case 0x0f:
      throw new HazeError('HAZE_ERR_UNSUPPORTED', `AMF0 type 0x${marker.toString(16)} (movieclip/unsupported/recordset/xml)`);
    default:
      throw new HazeError('HAZE_ERR_MALFORMED', `unknown AMF0 type marker 0x${marker.toString(16)}`);
  }
}

/** Decodes every AMF0 value in `buf` (an RTMP command or data message, an FLV script tag). */
export function decodeAmf0(buf: Buffer): Amf0Value[] {
  const r = new ByteReader(buf);
  const ctx = new Amf0DecodeContext();
  const out: Amf0Value[] = [];
  while (r.remaining > 0) out.push(decodeAmf0Value(r, ctx));
  return out;
}

// ---- encoding: a size pass, one allocation, a write pass ---------------------------------------

function keySize(k: string): number {
  const n = Buffer.byteLength(k, 'utf8');
  if (n > 0xffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `AMF0 key of ${n} bytes`);
  return 2 + n;
}

function isPlainObject(v: object): v is Amf0Object {
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

function sizeOf(v: Amf0Value, depth: number, avm: Map<Amf0Avmplus, Buffer>): number {
  if (depth > MAX_DEPTH) throw new HazeError('HAZE_ERR_TOO_LARGE', `AMF0 nesting deeper than ${MAX_DEPTH}`);
  if (v === null || v === undefined) return 1;
  switch (typeof v) {
    case 'number':
      return 9;
    case 'boolean':
      return 2;
    case 'string': {
      const n = Buffer.byteLength(v, 'utf8');
      return n > 0xffff ? 5 + n : 3 + n;
    }
    case 'object':
      break;
    default:
      throw new HazeError('HAZE_ERR_INVALID_ARG', `value of type ${typeof v} is not AMF0-encodable`);
  }
  if (Array.isArray(v)) {
    let n = 5;
    for (const e of v) n += sizeOf(e, depth + 1, avm);
    return n;
  }
  if (v instanceof Date) return 11;
  if (v instanceof Amf0LongString) return 5 + Buffer.byteLength(v.value, 'utf8');
  if (v instanceof Amf0Avmplus) {
    const b = encodeAmf3Value(v.value);
    avm.set(v, b);
    return 1 + b.length;
  }
  if (v instanceof Amf0EcmaArray) {
    let n = 5 + 3;
    for (const [k, e] of v) n += keySize(k) + sizeOf(e, depth + 1, avm);
    return n;
  }
  if (v instanceof Amf0TypedObject) return 1 + keySize(v.className) + objectBodySize(v.value, depth, avm);
  if (isPlainObject(v)) return 1 + objectBodySize(v, depth, avm);
  throw new HazeError('HAZE_ERR_INVALID_ARG', 'object of an unknown class is not AMF0-encodable');
}

function objectBodySize(o: Amf0Object, depth: number, avm: Map<Amf0Avmplus, Buffer>): number {
  let n = 3;
  for (const k of Object.keys(o)) n += keySize(k) + sizeOf(o[k], depth + 1, avm);
  return n;
}

function writeKey(w: ByteWriter, k: string): void {
  const at = w.pos;
  const n = w.buf.write(k, at + 2, 'utf8');
  w.buf.writeUInt16BE(n, at);
  w.pos = at + 2 + n;
}

function writeObjectBody(w: ByteWriter, o: Amf0Object, avm: Map<Amf0Avmplus, Buffer>): void {
  for (const k of Object.keys(o)) {
    writeKey(w, k);
    writeValue(w, o[k], avm);
  }
  w.u16(0).u8(0x09);
}

function writeValue(w: ByteWriter, v: Amf0Value, avm: Map<Amf0Avmplus, Buffer>): void {
  if (v === null) {
    w.u8(0x05);
    return;
  }
  if (v === undefined) {
    w.u8(0x06);
    return;
  }
  if (typeof v === 'number') {
    w.u8(0x00).f64(v);
    return;
  }
  if (typeof v === 'boolean') {
    w.u8(0x01).u8(v ? 1 : 0);
    return;
  }
  if (typeof v === 'string') {
    const n = Buffer.byteLength(v, 'utf8');
    if (n > 0xffff) w.u8(0x0c).u32(n);
    else w.u8(0x02).u16(n);
    w.pos += w.buf.write(v, w.pos, 'utf8');
    return;
  }
  if (Array.isArray(v)) {
    w.u8(0x0a).u32(v.length);
    for (const e of v) writeValue(w, e, avm);
    return;
  }
  if (v instanceof Date) {
    w.u8(0x0b).f64(v.getTime()).u16(0);
    return;
  }
  if (v instanceof Amf0LongString) {
    w.u8(0x0c).u32(Buffer.byteLength(v.value, 'utf8'));
    w.pos += w.buf.write(v.value, w.pos, 'utf8');
    return;
  }
  if (v instanceof Amf0Avmplus) {
    w.u8(0x11).bytes(avm.get(v)!);
    return;
  }
  if (v instanceof Amf0EcmaArray) {
    w.u8(0x08).u32(v.declaredCount ?? v.size);
    for (const [k, e] of v) {
      writeKey(w, k);
      writeValue(w, e, avm);
    }
    w.u16(0).u8(0x09);
    return;
  }
  if (v instanceof Amf0TypedObject) {
    w.u8(0x10);
    writeKey(w, v.className);
    writeObjectBody(w, v.value, avm);
    return;
  }
  w.u8(0x03);
  writeObjectBody(w, v, avm);
}

/** Encodes values back to back (no references are written; shared values are written again). */
export function encodeAmf0(values: Amf0Value[]): Buffer {
  const avm = new Map<Amf0Avmplus, Buffer>();
  let size = 0;
  for (const v of values) size += sizeOf(v, 0, avm);
  const w = new ByteWriter(size);
  for (const v of values) writeValue(w, v, avm);
  return w.done();
}

/** A string value whether it came as a short or long string; undefined otherwise. */
export function amf0String(v: Amf0Value): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof Amf0LongString) return v.value;
  return undefined;
}

/** Looks up a property of an object, typed object or ECMA array; undefined for other values. */
export function amf0Get(v: Amf0Value, key: string): Amf0Value {
  if (v instanceof Amf0EcmaArray) return v.get(key);
  if (v instanceof Amf0TypedObject) return Object.hasOwn(v.value, key) ? v.value[key] : undefined;
  if (v !== null && typeof v === 'object' && !Array.isArray(v) && isPlainObject(v)) return Object.hasOwn(v, key) ? v[key] : undefined;
  return undefined;
}
