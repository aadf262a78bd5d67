// Bounds-checked big-endian reading and writing over Buffers (STYLE "Binary code"): a short
// buffer is a typed HazeError, never undefined arithmetic. Readers return subarrays, not copies.

import { HazeError } from './errors.js';

export class ByteReader {
  pos: number;
  readonly end: number;

  constructor(readonly buf: Buffer, start = 0, end = buf.length) {
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new HazeError('HAZE_ERR_SHORT_READ', `need ${n} bytes at ${this.pos}, have ${this.end - this.pos}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = this.buf.readUIntBE(this.pos, 3);
    this.pos += 3;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A 64-bit unsigned integer as a number; values past 2^53 lose precision (timestamps never get there). */
  u64(): number {
    this.need(8);
    const v = this.buf.readUInt32BE(this.pos) * 0x1_0000_0000 + this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    return v;
  }

  /** A 64-bit signed integer as a number. */
  i64(): number {
    this.need(8);
    const v = Number(this.buf.readBigInt64BE(this.pos));
    this.pos += 8;
    return v;
  }

  f64(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }
}

/** Writes into a buffer allocated once at a size the caller computed. */
export class ByteWriter {
  pos = 0;
  readonly buf: Buffer;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  u8(v: number): this {
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.pos = this.buf.writeUInt16BE(v, this.pos);
    return this;
  }

  u24(v: number): this {
    this.pos = this.buf.writeUIntBE(v, this.pos, 3);
    return this;
  }

  u32(v: number): this {
    this.pos = this.buf.writeUInt32BE(v >>> 0, this.pos);
    return this;
  }

  u64(v: number): this {
    this.buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000) >>> 0, this.pos);
    this.buf.writeUInt32BE(v >>> 0, this.pos + 4);
    this.pos += 8;
    return this;
  }

  i64(v: number): this {
    this.pos = this.buf.writeBigInt64BE(BigInt(Math.trunc(v)), this.pos);
    return this;
  }

  f64(v: number): this {
    this.pos = this.buf.writeDoubleBE(v, this.pos);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** The written part; checks the size computation was right. */
  done(): Buffer {
    if (this.pos !== this.buf.length) throw new Error(`ByteWriter: wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}

/** Reads bits MSB-first, for codec headers (SPS, ASC). */
export class BitReader {
  private bytePos: number;
  private bit = 0;

  constructor(private readonly buf: Uint8Array, start = 0) {
    this.bytePos = start;
  }

  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      if (this.bytePos >= this.buf.length) throw new HazeError('HAZE_ERR_SHORT_READ', 'bitstream ended early');
      v = v * 2 + ((this.buf[this.bytePos]! >> (7 - this.bit)) & 1);
      if (++this.bit === 8) {
        this.bit = 0;
        this.bytePos++;
      }
    }
    return v;
  }

  flag(): boolean {
    return this.bits(1) === 1;
  }

  /** Exp-Golomb unsigned (H.264 ue(v)). */
  ue(): number {
    let zeros = 0;
    while (this.bits(1) === 0) {
      if (++zeros > 31) throw new HazeError('HAZE_ERR_MALFORMED', 'exp-golomb code too long');
    }
    return zeros === 0 ? 0 : 2 ** zeros - 1 + this.bits(zeros);
  }

  /** Exp-Golomb signed (H.264 se(v)). */
  se(): number {
    const k = this.ue();
    return k % 2 === 1 ? (k + 1) / 2 : -(k / 2);
  }
}
