// One HTTP-FLV viewer over a raw socket (RFC 9112: status line, header fields, then the body,
// plain or chunked as in 7.1). Counting viewers parse only until the first video frame (for the
// time to first frame) and then just count bytes into a shared read buffer; sampled viewers
// parse every FLV tag (FlvTagReader) and record per-frame timing.

import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { FlvTagReader, FLV_TAG_VIDEO } from '../../src/containers/flv/tags.js';
import type { Endpoint } from './servers.js';
import { isAvcFrame } from './stamp.js';
import type { Viewer, ViewerSink } from './viewer.js';

const MAX_HEADER_BYTES = 16 * 1024;

/** One read buffer for every socket of this process: onread callbacks run one at a time. */
const sharedReadBuffer = Buffer.allocUnsafe(256 * 1024);

type ChunkState = 'size' | 'ext' | 'lf' | 'data' | 'data-cr' | 'data-lf' | 'done';

/** Just enough of chunked transfer coding to get the body bytes back (no trailers needed). */
class Dechunker {
  private state: ChunkState = 'size';
  private size = 0;
  private left = 0;

  /** Calls `out` with each body piece of `chunk` (subarrays). */
  push(chunk: Buffer, out: (piece: Buffer) => void): void {
    let p = 0;
    while (p < chunk.length) {
      switch (this.state) {
        case 'size': {
          const c = chunk[p++]!;
          const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1;
          if (d >= 0) {
            this.size = this.size * 16 + d;
            if (this.size > 0x7fffffff) throw new Error('chunk size too large');
          } else if (c === 0x0d) this.state = 'lf';
          else if (c === 0x3b || c === 0x20 || c === 0x09) this.state = 'ext';
          else throw new Error(`bad chunk size byte ${c}`);
          break;
        }
        case 'ext':
          if (chunk[p++] === 0x0d) this.state = 'lf';
          break;
        case 'lf':
          if (chunk[p++] !== 0x0a) throw new Error('bad chunk line end');
          if (this.size === 0) this.state = 'done';
          else {
            this.left = this.size;
            this.state = 'data';
          }
          this.size = 0;
          break;
        case 'data': {
          const n = Math.min(this.left, chunk.length - p);
          out(chunk.subarray(p, p + n));
          p += n;
          this.left -= n;
          if (this.left === 0) this.state = 'data-cr';
          break;
        }
        case 'data-cr':
          if (chunk[p++] !== 0x0d) throw new Error('bad chunk end');
          this.state = 'data-lf';
          break;
        case 'data-lf':
          if (chunk[p++] !== 0x0a) throw new Error('bad chunk end');
          this.state = 'size';
          break;
        case 'done':
          return;
      }
    }
  }
}

export class HttpFlvViewer implements Viewer {
  bytes = 0;
  connectStartMs = 0;
  firstVideoMs = 0;
  error: string | undefined;
  closed = false;
  private socket: Socket | undefined;
  private header: Buffer | undefined = Buffer.allocUnsafe(0);
  private dechunker: Dechunker | undefined;
  private reader: FlvTagReader | undefined = new FlvTagReader();

  constructor(
    private readonly ep: Endpoint,
    readonly sampled: boolean,
    private readonly sink: ViewerSink,
  ) {}

  start(): void {
    this.connectStartMs = performance.timeOrigin + performance.now();
    const s = connect({
      host: this.ep.host,
      port: this.ep.port,
      onread: { buffer: sharedReadBuffer, callback: (n: number, buf: Uint8Array) => this.onRead(buf as Buffer, n) },
    });
    this.socket = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      s.write(`GET ${this.ep.path} HTTP/1.1\r\nHost: ${this.ep.host}:${this.ep.port}\r\nUser-Agent: haze-bench\r\nAccept: */*\r\n\r\n`);
    });
    s.on('error', (e) => this.fail(e.message));
    s.on('close', () => {
      if (!this.closed && this.error === undefined) this.error = 'closed by server';
      this.closed = true;
    });
  }

  stop(): void {
    this.closed = true;
    this.socket?.destroy();
  }

  private fail(msg: string): void {
    if (this.error === undefined) this.error = msg;
    this.socket?.destroy();
  }

  /** Returns false: onread must not stop reading. */
  private onRead(buf: Buffer, n: number): boolean {
    if (this.header === undefined && this.reader === undefined) {
      this.bytes += n;
      return true;
    }
    let chunk = buf.subarray(0, n);
    if (this.header !== undefined) {
      const joined = this.header.length === 0 ? chunk : Buffer.concat([this.header, chunk]);
      const end = joined.indexOf('\r\n\r\n');
      if (end < 0) {
        if (joined.length > MAX_HEADER_BYTES) this.fail('HTTP header too long');
        else this.header = Buffer.from(joined);
        return true;
      }
      const head = joined.subarray(0, end).toString('latin1');
      this.header = undefined;
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (!status || status[1] !== '200') {
        this.fail(`HTTP status ${status ? status[1] : '?'}`);
        return true;
      }
      if (/^transfer-encoding:.*chunked/im.test(head)) this.dechunker = new Dechunker();
      chunk = joined.subarray(end + 4);
    }
    this.bytes += chunk.length;
    if (this.reader === undefined) return true;
    try {
      if (this.dechunker) this.dechunker.push(chunk, (piece) => this.onBody(piece));
      else this.onBody(chunk);
    } catch (e) {
      this.fail(`parse: ${(e as Error).message}`);
    }
    return true;
  }

  private onBody(piece: Buffer): void {
    const reader = this.reader;
    if (reader === undefined) return;
    for (const tag of reader.push(piece)) {
      if (tag.type !== FLV_TAG_VIDEO || !isAvcFrame(tag.body)) continue;
      const now = performance.timeOrigin + performance.now();
      if (this.firstVideoMs === 0) {
        this.firstVideoMs = now;
        if (!this.sampled) {
          // Counting from here on: no more parsing (nor de-chunking: the few chunk-size bytes
          // count as received bytes, as the HTTP header bytes do not).
          this.reader = undefined;
          this.dechunker = undefined;
          return;
        }
      }
      this.sink.onVideoFrame(this, tag.timeMs, tag.body, now);
    }
  }
}
