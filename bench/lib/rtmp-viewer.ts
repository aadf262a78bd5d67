// One RTMP viewer, played with Haze's RtmpClient. Sampled viewers let the client parse the whole
// stream. Counting viewers own the socket and read it into a shared buffer: the client gets a
// copy of every read (through a small Duplex) until the first video frame, which gives the time
// to first frame; from then on the bytes are only counted, nothing is parsed. Such a viewer no
// longer sends acknowledgements nor answers pings, which none of the servers here needs within
// a window of seconds (nginx-rtmp would drop it after ping + ping_timeout, 90 s by default).

import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { RtmpClient } from '../../src/protocols/rtmp/client.js';
import type { RtmpClientMedia } from '../../src/protocols/rtmp/client.js';
import type { Endpoint } from './servers.js';
import { isAvcFrame } from './stamp.js';
import type { Viewer, ViewerSink } from './viewer.js';

const sharedReadBuffer = Buffer.allocUnsafe(256 * 1024);

/** The client's transport for a counting viewer: writes go to the socket, reads are pushed in. */
class Tap extends Duplex {
  constructor(private readonly socket: Socket) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // The socket buffers: acknowledging at once keeps the client's writes from queueing here.
    if (!this.socket.destroyed) this.socket.write(chunk);
    cb();
  }
  override _read(): void {
    // Data is pushed as the socket delivers it.
  }
}

export class RtmpViewer implements Viewer {
  bytes = 0;
  connectStartMs = 0;
  firstVideoMs = 0;
  error: string | undefined;
  closed = false;
  private client: RtmpClient | undefined;
  private socket: Socket | undefined;
  private tap: Tap | undefined;
  /** Counting viewers: true once the first video frame is in and parsing stopped. */
  private counting = false;
  private playing = false;

  constructor(
    private readonly ep: Endpoint,
    readonly sampled: boolean,
    private readonly sink: ViewerSink,
  ) {}

  start(): void {
    this.connectStartMs = performance.timeOrigin + performance.now();
    const url = `rtmp://${this.ep.host}:${this.ep.port}/${this.ep.app}`;
    if (this.sampled) {
      const client = new RtmpClient({ timeoutMs: 15000 });
      this.client = client;
      client.on('media', (m) => this.onMedia(m));
      client.on('close', (reason) => this.onClose(reason));
      client
        .connect(url)
        .then(() => client.play(this.ep.stream))
        .then(() => {
          this.playing = true;
        })
        .catch((e: unknown) => this.fail((e as Error).message));
      return;
    }
    const socket = connect({
      host: this.ep.host,
      port: this.ep.port,
      onread: { buffer: sharedReadBuffer, callback: (n: number) => this.onRead(n) },
    });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('error', (e) => this.fail(e.message));
    socket.on('close', () => {
      this.tap?.destroy();
      this.onClose('connection closed');
    });
    socket.once('connect', () => {
      const tap = new Tap(socket);
      this.tap = tap;
      const client = new RtmpClient({ timeoutMs: 15000, transport: tap });
      this.client = client;
      client.on('media', (m) => this.onMedia(m));
      client
        .connect(url)
        .then(() => client.play(this.ep.stream))
        .then(() => {
          this.playing = true;
        })
        .catch((e: unknown) => this.fail((e as Error).message));
    });
  }

  stop(): void {
    this.closed = true;
    if (this.socket) this.socket.destroy();
    else this.client?.destroy('stopped');
  }

  private onRead(n: number): boolean {
    if (this.counting) {
      this.bytes += n;
      return true;
    }
    if (this.playing) this.bytes += n;
    // The client may keep subarrays of what it is given: hand it a copy of the shared buffer.
    this.tap?.push(Buffer.from(sharedReadBuffer.subarray(0, n)));
    return true;
  }

  private onMedia(m: RtmpClientMedia): void {
    if (this.sampled) this.bytes += m.body.length;
    if (m.typeId !== 9 || !isAvcFrame(m.body)) return;
    const t = performance.timeOrigin + performance.now();
    if (this.firstVideoMs === 0) {
      this.firstVideoMs = t;
      if (!this.sampled) {
        // From here on only count: detach the client from the socket.
        this.counting = true;
        this.tap?.push(null);
        return;
      }
    }
    if (this.sampled) this.sink.onVideoFrame(this, m.timestamp, m.body, t);
  }

  private onClose(reason: string): void {
    if (!this.closed && this.error === undefined) this.error = `closed: ${reason}`;
    this.closed = true;
  }

  private fail(msg: string): void {
    if (this.closed) return;
    if (this.error === undefined) this.error = msg;
    this.stop();
  }
}
