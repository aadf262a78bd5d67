// AMF3 (Adobe "Action Message Format -- AMF 3", 2013), §1.3 U29 integers, §3 type markers:
// 0x00 undefined, 0x01 null, 0x02 false, 0x03 true, 0x04 integer (U29, 29-bit signed),
// 0x05 double, 0x06 string, 0x07 XMLDocument, 0x08 date, 0x09 array (dense + associative),
// 0x0A object (traits; sealed members then dynamic members), 0x0B XML, 0x0C ByteArray.
// Strings, complex values and traits are sent once and then referenced by index (§2.2), so the
// decoder keeps the three reference tables and the encoder writes references for repeated
// objects (which also makes cyclic structures encodable). Externalizable objects, vectors and
// dictionaries (0x0D..0x11) carry application-defined bytes and are refused as unsupported.
//
// U29: 1-3 bytes of 7 bits with a continuation bit (MSB), a fourth byte carries 8 bits.

import { ByteReader } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';

/** AMF3 `array`: a dense part and an ordered associative part (keys keep their wire order). */
export class Amf3Array {
  constructor(
    public dense: Amf3Value[] = [],
    public assoc: Map<string, Amf3Value> = new Map(),
  ) {}
}

/** AMF3 `object`: class name, sealed member names (traits) and values in wire order. */
export class Amf3Object {
  constructor(
    /** '' for an anonymous object. */
    public className = '',
    /** Sealed member names, in traits order; their values are in `values`. */
    public sealed: string[] = [],
    /** All members in wire order: sealed ones first, then dynamic ones. */
    public values: Map<string, Amf3Value> = new Map(),
    /** Whether the traits are dynamic (members outside `sealed` allowed). */
    public dynamic = true,
  ) {}
}

/** AMF3 XML (0x0B) or legacy XMLDocument (0x07), kept apart so they re-encode with the same marker. */
export class Amf3Xml {
  constructor(
    public text: string,
    public legacyDocument = false,
  ) {}
}

export type Amf3Value =
  | undefined
  | null
  | boolean
  | number
  | string
  | Date
  | Buffer
  | Amf3Array
  | Amf3Object
  | Amf3Xml;

const MAX_DEPTH = 64;
const U29_MAX = 0x1fffffff;
const INT29_MIN = -0x10000000;
const INT29_MAX = 0x0fffffff;

interface Traits {
  className: string;
  sealed: string[];
  dynamic: boolean;
}

/** Reference tables of one AMF3 value graph (AMF3 §2.2). */
export class Amf3DecodeContext {
  readonly strings: string[] = [];
  readonly objects: object[] = [];
  readonly traits: Traits[] = [];
}

function readU29(r: ByteReader): number {
  let v = 0;
  for (let i = 0; i < 3; i++) {
    const b = r.u8();
    v = (v << 7) | (b & 0x7f);
    if ((b & 0x80) === 0) return v;
  }
  return ((v << 8) | r.u8()) >>> 0;
}

function readStringRaw(r: ByteReader, ctx: Amf3DecodeContext): string {
  const u = readU29(r);
  if ((u & 1) === 0) return refAt(ctx.strings, u >>> 1, 'string');
  const len = u >>> 1;
  const s = r.bytes(len).toString('utf8');
  // The empty string is never sent by reference (§1.3.2), so it never enters the table.
  if (len > 0) ctx.strings.push(s);
  return s;
}

function refAt<T>(table: T[], index: number, what: string): T {
  if (index >= table.length) throw new HazeError('HAZE_ERR_MALFORMED', `AMF3 ${what} reference ${index} out of range (${table.length})`);
  return table[index]!;
}

/** Decodes one AMF3 value at the reader's position. */
export function decodeAmf3Value(r: ByteReader, ctx: Amf3DecodeContext = new Amf3DecodeContext(), depth = 0): Amf3Value {
  if (depth > MAX_DEPTH) throw new HazeError('HAZE_ERR_TOO_LARGE', `AMF3 nesting deeper than ${MAX_DEPTH}`);
  const marker = r.u8();
  switch (marker) {
    case 0x00:
      return undefined;
    case 0x01:
      return null;
    case 0x02:
      return false;
    case 0x03:
      return true;
    case 0x04: {
      const u = readU29(r);
      // Sign-extend the 29-bit value.
      return u & 0x10000000 ? u - 0x20000000 : u;
    }
    case 0x05:
      return r.f64();
    case 0x06:
      return readStringRaw(r, ctx);
    case 0x07:
    case 0x0b: {
      const u = readU29(r);
      if ((u & 1) === 0) return checkRef(refAt(ctx.objects, u >>> 1, 'object'), Amf3Xml);
      const x = new Amf3Xml(r.bytes(u >>> 1).toString('utf8'), marker === 0x07);
      ctx.objects.push(x);
      return x;
    }
    case 0x08: {
      const u = readU29(r);
      if ((u & 1) === 0) return checkRef(refAt(ctx.objects, u >>> 1, 'object'), Date);
      const d = new Date(r.f64());
      ctx.objects.push(d);
      return d;
    }
    case 0x09: {
      const u = readU29(r);
      if ((u & 1) === 0) return checkRef(refAt(ctx.objects, u >>> 1, 'object'), Amf3Array);
      const denseCount = u >>> 1;
      // Every element takes at least one byte: a count beyond the bytes left is a lie.
      if (denseCount > r.remaining) throw new HazeError('HAZE_ERR_MALFORMED', `AMF3 array of ${denseCount} in ${r.remaining} bytes`);
      const arr = new Amf3Array();
      ctx.objects.push(arr);
      for (;;) {
        const key = readStringRaw(r, ctx);
        if (key === '') break;
        arr.assoc.set(key, decodeAmf3Value(r, ctx, depth + 1));
      }
      for (let i = 0; i < denseCount; i++) arr.dense.push(decodeAmf3Value(r, ctx, depth + 1));
      return arr;
    }
    case 0x0a: {
      const u = readU29(r);
      if ((u & 1) === 0) return checkRef(refAt(ctx.objects, u >>> 1, 'object'), Amf3Object);
      let traits: Traits;
      if ((u & 2) === 0) {
        traits = refAt(ctx.traits, u >>> 2, 'traits');
      } else {
        if (u & 4) throw new HazeError('HAZE_ERR_UNSUPPORTED', 'AMF3 externalizable object');
        const dynamic = (u & 8) !== 0;
        const count = u >>> 4;
        if (count > r.remaining) throw new HazeError('HAZE_ERR_MALFORMED', `AMF3 traits of ${count} members in ${r.remaining} bytes`);
        const className = readStringRaw(r, ctx);
        const sealed: string[] = [];
        for (let i = 0; i < count; i++) sealed.push(readStringRaw(r, ctx));
        traits = { className, sealed, dynamic };
        ctx.traits.push(traits);
      }
      const obj = new Amf3Object(traits.className, traits.sealed.slice(), new Map(), traits.dynamic);
      ctx.objects.push(obj);
      for (const name of traits.sealed) obj.values.set(name, decodeAmf3Value(r, ctx, depth + 1));
      if (traits.dynamic) {
        for (;;) {
          const key = readStringRaw(r, ctx);
          if (key === '') break;
          obj.values.set(key, decodeAmf3Value(r, ctx, depth + 1));
        }
      }
      return obj;
    }
    case 0x0c: {
      const u = readU29(r);
      if ((u & 1) === 0) return checkRef(refAt(ctx.objects, u >>> 1, 'object'), Buffer);
      const b = r.bytes(u >>> 1);
      ctx.objects.push(b);
      return b;
    }
    case 0x0d:
    case 0x0e:
    case 0x0f:
    case 0x10:
    case 0x11:
      throw new HazeError('HAZE_ERR_UNSUPPORTED', `AMF3 type 0x${marker.toString(16)} (vector/dictionary)`);
    default:
      throw new HazeError('HAZE_ERR_MALFORMED', `unknown AMF3 type marker 0x${marker.toString(16)}`);
  }
}

function checkRef<T>(v: object, cls: abstract new (...args: never[]) => T): T {
  if (!(v instanceof cls)) throw new HazeError('HAZE_ERR_MALFORMED', 'AMF3 reference to an object of another type');
  return v;
}

/** Decodes every AMF3 value in `buf` (one shared reference context). */
export function decodeAmf3(buf: Buffer): Amf3Value[] {
  const r = new ByteReader(buf);
  const ctx = new Amf3DecodeContext();
  const out: Amf3Value[] = [];
  while (r.remaining > 0) out.push(decodeAmf3Value(r, ctx));
  return out;
}

// ---- encoding -------------------------------------------------------------------------------

/**
 * Growable output for AMF3: the reference tables make the encoded size depend on what was
 * written before, so a size pass would repeat the whole encoding. AMF3 is rare (Flash-era
 * command messages), not a per-packet path.
 */
class GrowBuf {
  buf = Buffer.allocUnsafe(256);
  pos = 0;
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  f64(v: number): void {
    this.ensure(8);
    this.pos = this.buf.writeDoubleBE(v, this.pos);
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

class Amf3EncodeContext {
  readonly strings = new Map<string, number>();
  readonly objects = new Map<object, number>();
  readonly traits = new Map<string, number>();
  objectCount = 0;
}

function writeU29(w: GrowBuf, v: number): void {
  if (v < 0 || v > U29_MAX) throw new HazeError('HAZE_ERR_TOO_LARGE', `U29 value ${v} out of range`);
  if (v < 0x80) {
    w.u8(v);
  } else if (v < 0x4000) {
    w.u8(0x80 | (v >>> 7));
    w.u8(v & 0x7f);
  } else if (v < 0x200000) {
    w.u8(0x80 | (v >>> 14));
    w.u8(0x80 | ((v >>> 7) & 0x7f));
    w.u8(v & 0x7f);
  } else {
    w.u8(0x80 | (v >>> 22));
    w.u8(0x80 | ((v >>> 15) & 0x7f));
    w.u8(0x80 | ((v >>> 8) & 0x7f));
    w.u8(v & 0xff);
  }
}

function writeStringRaw(w: GrowBuf, ctx: Amf3EncodeContext, s: string): void {
  if (s === '') {
    w.u8(0x01);
    return;
  }
  const ref = ctx.strings.get(s);
  if (ref !== undefined) {
    writeU29(w, ref << 1);
    return;
  }
  ctx.strings.set(s, ctx.strings.size);
  const b = Buffer.from(s, 'utf8');
  writeU29(w, (b.length << 1) | 1);
  w.bytes(b);
}

/** Writes a reference if `o` was written before (returns true), else registers it. */
function objectRef(w: GrowBuf, ctx: Amf3EncodeContext, o: object): boolean {
  const ref = ctx.objects.get(o);
  if (ref !== undefined) {
    writeU29(w, ref << 1);
    return true;
  }
  ctx.objects.set(o, ctx.objectCount++);
  return false;
}

function encodeValue(w: GrowBuf, ctx: Amf3EncodeContext, v: Amf3Value, depth: number): void {
  if (depth > MAX_DEPTH) throw new HazeError('HAZE_ERR_TOO_LARGE', `AMF3 nesting deeper than ${MAX_DEPTH}`);
  if (v === undefined) return w.u8(0x00);
  if (v === null) return w.u8(0x01);
  if (v === false) return w.u8(0x02);
  if (v === true) return w.u8(0x03);
  if (typeof v === 'number') {
    // Integers in the 29-bit range use the compact form, as Flash Player does (§3.6).
    if (Number.isInteger(v) && v >= INT29_MIN && v <= INT29_MAX && !Object.is(v, -0)) {
      w.u8(0x04);
      writeU29(w, v & U29_MAX);
    } else {
      w.u8(0x05);
      w.f64(v);
    }
    return;
  }
  if (typeof v === 'string') {
    w.u8(0x06);
    writeStringRaw(w, ctx, v);
    return;
  }
  if (v instanceof Date) {
    w.u8(0x08);
    if (objectRef(w, ctx, v)) return;
    w.u8(0x01);
    w.f64(v.getTime());
    return;
  }
  if (Buffer.isBuffer(v)) {
    w.u8(0x0c);
    if (objectRef(w, ctx, v)) return;
    writeU29(w, (v.length << 1) | 1);
    w.bytes(v);
    return;
  }
  if (v instanceof Amf3Xml) {
    w.u8(v.legacyDocument ? 0x07 : 0x0b);
    if (objectRef(w, ctx, v)) return;
    const b = Buffer.from(v.text, 'utf8');
    writeU29(w, (b.length << 1) | 1);
    w.bytes(b);
    return;
  }
  if (v instanceof Amf3Array) {
    w.u8(0x09);
    if (objectRef(w, ctx, v)) return;
    writeU29(w, (v.dense.length << 1) | 1);
    for (const [k, val] of v.assoc) {
      if (k === '') throw new HazeError('HAZE_ERR_INVALID_ARG', 'AMF3 array key must not be empty');
      writeStringRaw(w, ctx, k);
      encodeValue(w, ctx, val, depth + 1);
    }
    w.u8(0x01);
    for (const val of v.dense) encodeValue(w, ctx, val, depth + 1);
    return;
  }
  if (v instanceof Amf3Object) {
    w.u8(0x0a);
    if (objectRef(w, ctx, v)) return;
    const traitsKey = `${v.dynamic ? 1 : 0}\u0000${v.className}\u0000${v.sealed.join('\u0000')}`;
    const tref = ctx.traits.get(traitsKey);
    if (tref !== undefined) {
      writeU29(w, (tref << 2) | 1);
    } else {
      ctx.traits.set(traitsKey, ctx.traits.size);
      writeU29(w, (v.sealed.length << 4) | (v.dynamic ? 8 : 0) | 3);
      writeStringRaw(w, ctx, v.className);
      for (const name of v.sealed) writeStringRaw(w, ctx, name);
    }
    for (const name of v.sealed) encodeValue(w, ctx, v.values.get(name), depth + 1);
    if (v.dynamic) {
      const sealed = new Set(v.sealed);
      for (const [k, val] of v.values) {
        if (sealed.has(k)) continue;
        if (k === '') throw new HazeError('HAZE_ERR_INVALID_ARG', 'AMF3 dynamic member name must not be empty');
        writeStringRaw(w, ctx, k);
        encodeValue(w, ctx, val, depth + 1);
      }
      w.u8(0x01);
    }
    return;
  }
  throw new HazeError('HAZE_ERR_INVALID_ARG', `value of type ${typeof v} is not AMF3-encodable`);
}

/** Encodes values with one shared reference context, as `decodeAmf3` reads them. */
export function encodeAmf3(values: Amf3Value[]): Buffer {
  const w = new GrowBuf();
  const ctx = new Amf3EncodeContext();
  for (const v of values) encodeValue(w, ctx, v, 0);
  return Buffer.from(w.buf.subarray(0, w.pos));
}

/** Encodes one value with a fresh reference context (what one AMF0 0x11 switch carries). */
export function encodeAmf3Value(v: Amf3Value): Buffer {
  return encodeAmf3([v]);
}
