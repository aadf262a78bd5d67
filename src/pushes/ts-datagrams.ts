// MPEG-TS in UDP datagrams: 7 transport packets (1316 bytes) per datagram, the size every IPTV
// receiver, ffmpeg (`pkt_size=1316`) and MistServer use, since 7 x 188 bytes plus the IP and UDP
// headers fit a 1500-byte Ethernet MTU. Pure: TS bytes in, datagram payloads out.

import { HazeError } from '../util/errors.js';

const TS_PACKET_BYTES = 188;
export const TS_PACKETS_PER_DATAGRAM = 7;
export const TS_DATAGRAM_BYTES = TS_PACKETS_PER_DATAGRAM * TS_PACKET_BYTES;

/**
 * Cuts a run of TS bytes into datagrams of `size` bytes. Full datagrams inside one chunk are
 * subarrays of it (no copy: the muxer allocates each access unit's packets afresh); bytes that
 * do not fill a datagram wait for the next chunk, or for flush().
 */
export class TsDatagramPacker {
  private buf: Buffer;
  private fill = 0;

  constructor(private readonly size = TS_DATAGRAM_BYTES) {
    if (!Number.isInteger(size) || size < TS_PACKET_BYTES || size % TS_PACKET_BYTES !== 0 || size > 65_424) {
      throw new HazeError('HAZE_ERR_INVALID_ARG', `datagram size ${size} is not a multiple of ${TS_PACKET_BYTES} bytes up to 65424`);
    }
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Bytes waiting for a datagram to fill. */
  get pendingBytes(): number {
    return this.fill;
  }

  /** The full datagrams that `ts` completes, in order. */
  push(ts: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let o = 0;
    if (this.fill > 0) {
      const n = Math.min(this.size - this.fill, ts.length);
      ts.copy(this.buf, this.fill, 0, n);
      this.fill += n;
      o = n;
      if (this.fill === this.size) out.push(this.take());
    }
    for (; ts.length - o >= this.size; o += this.size) out.push(ts.subarray(o, o + this.size));
    if (o < ts.length) {
      ts.copy(this.buf, 0, o);
      this.fill = ts.length - o;
    }
    return out;
  }

  /** The bytes waiting, as a short datagram (undefined when none wait). */
  flush(): Buffer | undefined {
    return this.fill > 0 ? this.take() : undefined;
  }

  /** Forgets the bytes waiting (a new transport stream starts). */
  reset(): void {
    this.fill = 0;
  }

  private take(): Buffer {
    const b = this.fill === this.size ? this.buf : this.buf.subarray(0, this.fill);
    // the datagram is handed to the socket, which keeps it until sent: a new buffer for the next
    this.buf = Buffer.allocUnsafe(this.size);
    this.fill = 0;
    return b;
  }
}
