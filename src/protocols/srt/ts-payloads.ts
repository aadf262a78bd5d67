// MPEG-TS over SRT: a byte stream of 188-byte TS packets cut into SRT payloads of seven TS
// packets (1316 bytes, what SRT live senders use so that a payload fits an Ethernet MTU).
// `push` emits every full payload (slices of the input where it can, no copy); `flush` emits
// what is left as a shorter payload, so that a frame never waits for the next one.

import { TS_PAYLOAD_BYTES } from './connection.js';

export class TsPayloader {
  private readonly carry: Buffer;
  private carried = 0;

  constructor(
    private readonly emit: (payload: Buffer) => void,
    private readonly size = TS_PAYLOAD_BYTES,
  ) {
    this.carry = Buffer.allocUnsafe(size);
  }

  push(bytes: Buffer): void {
    let o = 0;
    if (this.carried > 0) {
      const n = Math.min(this.size - this.carried, bytes.length);
      bytes.copy(this.carry, this.carried, 0, n);
      this.carried += n;
      o = n;
      if (this.carried < this.size) return;
      this.emit(Buffer.from(this.carry));
      this.carried = 0;
    }
    while (bytes.length - o >= this.size) {
      this.emit(bytes.subarray(o, o + this.size));
      o += this.size;
    }
    if (o < bytes.length) {
      bytes.copy(this.carry, 0, o);
      this.carried = bytes.length - o;
    }
  }

  flush(): void {
    if (this.carried === 0) return;
    this.emit(Buffer.from(this.carry.subarray(0, this.carried)));
    this.carried = 0;
  }

  /** Drops what waits (a viewer skipping to the next keyframe). */
  reset(): void {
    this.carried = 0;
  }
}
