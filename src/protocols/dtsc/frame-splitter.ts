// Frame boundaries of a dtsc:// byte stream (reference/mistserver.md §2.2): every frame is
//
//   4-byte magic ("DTSC" | "DTP2" | "DTPD" | "DTCM") | u32 BE len | len bytes
//
// Unlike containers/dtsc's DtscFrameReader this splitter is pulled one frame at a time and asks
// its owner, per frame prefix, whether a frame of that kind and size is acceptable now. The
// dtsc:// listener needs both: it stops pulling while a push is being authorised (so frames a
// pusher sends before the `ok` wait, unparsed), and the bound on a frame depends on the
// connection's state (a command before the handshake is small; a video keyframe of a cleared
// push is not). Frames inside one chunk are subarrays of it; a frame spanning chunks is
// assembled in one buffer allocated at its size, after the size was accepted.

import { HazeError } from '../../util/errors.js';

export type DtscFrameMagic = 'DTSC' | 'DTP2' | 'DTPD' | 'DTCM';

/** Throws (a HazeError) when a frame of `magic` and `sizeBytes` (prefix included) is not acceptable. */
export type DtscFrameCheck = (magic: DtscFrameMagic, sizeBytes: number) => void;

export const DTSC_PREFIX_BYTES = 8;

/** Unknown magic: the text MistServer's dtsc:// output answers with (OutDTSC::onRequest). */
export const DTSC_INVALID_HEADER_TEXT = 'Invalid packet header received. Aborting.';

function magicAt(b: Buffer, p: number): DtscFrameMagic | undefined {
  if (b[p] !== 0x44 || b[p + 1] !== 0x54) return undefined; // "DT"
  const c2 = b[p + 2];
  const c3 = b[p + 3];
  if (c2 === 0x53 && c3 === 0x43) return 'DTSC';
  if (c2 === 0x50 && c3 === 0x32) return 'DTP2';
  if (c2 === 0x50 && c3 === 0x44) return 'DTPD';
  if (c2 === 0x43 && c3 === 0x4d) return 'DTCM';
  return undefined;
}

export class DtscFrameSplitter {
  /** Received chunks not consumed yet; `pos` is the read position in chunks[0]. */
  private chunks: Buffer[] = [];
  private pos = 0;
  private queued = 0;
  private readonly head = Buffer.alloc(DTSC_PREFIX_BYTES);
  /** The frame being assembled across chunks. */
  private partial: Buffer | null = null;
  private fill = 0;
  private failed: HazeError | null = null;

  /**
   * @param check   decides per frame prefix whether the frame may be read
   * @param maxQueuedBytes  bytes held while the owner does not pull (the socket should be paused then)
   */
  constructor(
    private readonly check: DtscFrameCheck,
    private readonly maxQueuedBytes = 4 * 1024 * 1024,
  ) {}

  /** Bytes received and not yet returned as frames. */
  get bufferedBytes(): number {
    return this.queued + this.fill;
  }

  append(chunk: Buffer): void {
    if (this.failed) throw this.failed;
    if (chunk.length === 0) return;
    if (this.queued + chunk.length > this.maxQueuedBytes) {
      this.failed = new HazeError('HAZE_ERR_TOO_LARGE', `DTSC: more than ${this.maxQueuedBytes} bytes received ahead of processing`);
      throw this.failed;
    }
    this.chunks.push(chunk);
    this.queued += chunk.length;
  }

  /** The next complete frame (prefix included), or undefined until more bytes arrive. Errors are sticky. */
  next(): Buffer | undefined {
    if (this.failed) throw this.failed;
    try {
      return this.nextFrame();
    } catch (err) {
      this.failed = err instanceof HazeError ? err : new HazeError('HAZE_ERR_MALFORMED', String(err), { cause: err });
      throw this.failed;
    }
  }

  /** Copies `n` queued bytes into `into` at `at`; consumes them unless `peek`. Returns bytes copied. */
  private copyOut(into: Buffer, at: number, n: number, peek: boolean): number {
    let copied = 0;
    let i = 0;
    let p = this.pos;
    while (copied < n && i < this.chunks.length) {
      const c = this.chunks[i]!;
      const k = Math.min(c.length - p, n - copied);
      c.copy(into, at + copied, p, p + k);
      copied += k;
      p += k;
      if (p === c.length) {
        i++;
        p = 0;
      }
    }
    if (!peek) this.consume(copied);
    return copied;
  }

  private consume(n: number): void {
    this.queued -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.pos, n);
      n -= k;
      this.pos += k;
      if (this.pos === c.length) {
        this.chunks.shift();
        this.pos = 0;
      }
    }
  }

  private nextFrame(): Buffer | undefined {
    if (this.partial === null) {
      if (this.queued < DTSC_PREFIX_BYTES) return undefined;
      let prefix = this.chunks[0]!;
      let p = this.pos;
      if (prefix.length - p < DTSC_PREFIX_BYTES) {
        this.copyOut(this.head, 0, DTSC_PREFIX_BYTES, true);
        prefix = this.head;
        p = 0;
      }
      const magic = magicAt(prefix, p);
      if (magic === undefined) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: unknown frame magic ${prefix.subarray(p, p + 4).toString('hex')}`);
      const size = DTSC_PREFIX_BYTES + prefix.readUInt32BE(p + 4);
      this.check(magic, size);
      const first = this.chunks[0]!;
      if (first.length - this.pos >= size) {
        const frame = first.subarray(this.pos, this.pos + size);
        this.consume(size);
        return frame;
      }
      this.partial = Buffer.allocUnsafe(size);
      this.fill = 0;
    }
    this.fill += this.copyOut(this.partial, this.fill, this.partial.length - this.fill, false);
    if (this.fill < this.partial.length) return undefined;
    const frame = this.partial;
    this.partial = null;
    this.fill = 0;
    return frame;
  }
}
