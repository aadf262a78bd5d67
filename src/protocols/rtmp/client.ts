// RTMP client (Adobe RTMP 1.0 §7.2 NetConnection.connect / NetStream.publish / play) for tests,
// benchmarks and outgoing pushes. Media bodies are passed through untouched, so FLV and
// Enhanced-RTMP (FourCC) audio/video tag bodies publish alike.
//
//   publish: connect -> releaseStream, FCPublish, createStream -> publish -> wait
//            NetStream.Publish.Start -> sendMetaData / sendMedia ... -> close (FCUnpublish,
//            deleteStream)
//   play:    connect -> createStream -> play, SetBufferLength -> wait NetStream.Play.Start ->
//            'media' events

import { connect as netConnect, isIP } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions as TlsOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import { HazeError, errorText } from '../../util/errors.js';
import { TypedEmitter } from '../../util/events.js';
import type { Logger } from '../../util/log.js';
import { amf0Get, amf0String, type Amf0Object, type Amf0Value } from '../../containers/amf/amf0.js';
import { ClientHandshake } from './handshake.js';
import { ChunkReader, type RtmpMessage } from './chunk-reader.js';
import { ChunkWriter, RTMP_CSID_AUDIO, RTMP_CSID_COMMAND, RTMP_CSID_CONTROL, RTMP_CSID_DATA, RTMP_CSID_VIDEO } from './chunk-writer.js';
import {
  RTMP_MSG,
  USER_CONTROL,
  decodeCommand,
  decodeU32Body,
  decodeUserControl,
  encodeAck,
  encodeCommand,
  encodeSetChunkSize,
  encodeSetDataFrame,
  encodeUserControl,
  encodeWindowAckSize,
  readStatus,
  type RtmpCommand,
  type RtmpStatus,
} from './messages.js';

export interface RtmpUrl {
  host: string;
  port: number;
  app: string;
  /** Stream name (path after the app, with the query string), '' if none. */
  name: string;
  tcUrl: string;
  /** rtmps://: RTMP over TLS (set only then). */
  secure?: true;
}

/** Splits rtmp[s]://host[:port]/app[/name][?query]: the first path segment is the app; rtmps defaults to port 443. */
export function parseRtmpUrl(url: string): RtmpUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `not a URL: ${url}`);
  }
  if (u.protocol !== 'rtmp:' && u.protocol !== 'rtmps:') throw new HazeError('HAZE_ERR_INVALID_ARG', `not an rtmp:// URL: ${url}`);
  const secure = u.protocol === 'rtmps:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = u.port ? Number(u.port) : secure ? 443 : 1935;
  const path = u.pathname.replace(/^\/+/, '');
  const slash = path.indexOf('/');
  const app = slash < 0 ? path : path.slice(0, slash);
  const name = (slash < 0 ? '' : path.slice(slash + 1)) + u.search;
  const hostPart = u.host || host;
  return { host, port, app: decodeURIComponent(app), name: decodeURIComponent(name), tcUrl: `${u.protocol}//${hostPart}/${app}`, ...(secure ? { secure: true as const } : {}) };
}

export interface RtmpClientMedia {
  typeId: number;
  timestamp: number;
  body: Buffer;
}

export interface RtmpClientStatus extends RtmpStatus {
  info: Amf0Value;
}

export interface RtmpClientEvents {
  /** Audio (8), video (9) or data (18/15) messages of a played stream. */
  media: RtmpClientMedia;
  /** Every onStatus the server sends. */
  status: RtmpClientStatus;
  /** The connection ended; the payload says why. */
  close: string;
}

export interface RtmpClientOptions {
  /** Use this already connected stream instead of opening a TCP connection (tests). */
  transport?: Duplex;
  /** FP9 digest handshake (default true; servers answering simple are accepted). */
  digestHandshake?: boolean;
  /** Outgoing chunk size announced after the handshake (default 4096). */
  chunkSize?: number;
  /** How long each step (TCP connect, connect, createStream, publish/play) may take. */
  timeoutMs?: number;
  flashVer?: string;
  /** Enhanced RTMP: FourCCs announced in connect's `fourCcList` (e.g. ['hvc1', 'av01', 'vp09']). */
  fourCcList?: string[];
  /** rtmps:// URLs: TLS options (`ca`, `rejectUnauthorized`, ...); the URL's host name is the SNI. */
  tls?: TlsOptions;
  log?: Logger;
}

/** Chunk stream for NetStream commands (publish/play), apart from NetConnection calls on 3. */
const CSID_STREAM_COMMAND = 8;

interface Pending {
  resolve(cmd: RtmpCommand): void;
  reject(err: Error): void;
}

export class RtmpClient extends TypedEmitter<RtmpClientEvents> {
  private transport: Duplex | null = null;
  private readonly opts: RtmpClientOptions;
  private readonly handshake: ClientHandshake;
  private readonly reader = new ChunkReader();
  private readonly writer: ChunkWriter;
  private readonly transactions = new Map<number, Pending>();
  private readonly statusWaiters = new Set<(s: RtmpClientStatus) => void>();
  private readonly closeWaiters = new Set<(reason: string) => void>();
  private nextTxn = 1;
  private url: RtmpUrl | null = null;
  private bytesReceived = 0;
  private lastAck = 0;
  private peerWindow = 0;
  private closedReason: string | null = null;
  private mode: 'idle' | 'publishing' | 'playing' = 'idle';
  private handshakeResolve: (() => void) | null = null;
  /** Message stream id from createStream. */
  streamId = 0;
  /** Server properties from connect's _result (fmsVer, capabilities, ...). */
  serverInfo: Amf0Value = null;

  constructor(opts: RtmpClientOptions = {}) {
    super();
    this.opts = opts;
    this.handshake = new ClientHandshake({ digest: opts.digestHandshake ?? true });
    this.writer = new ChunkWriter();
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  /** Bytes received from the server so far (handshake included): a pull's statistics. */
  get receivedBytes(): number {
    return this.bytesReceived;
  }

  private get timeoutMs(): number {
    return this.opts.timeoutMs ?? 10_000;
  }

  /** Opens the connection (TCP unless a transport was given), handshakes and sends connect. */
  async connect(url: string): Promise<void> {
    if (this.transport) throw new HazeError('HAZE_ERR_PROTOCOL', 'RtmpClient.connect called twice');
    const u = parseRtmpUrl(url);
    this.url = u;
    const t = this.opts.transport ?? (await this.openTcp(u));
    this.attach(t);
    const handshook = new Promise<void>((resolve) => (this.handshakeResolve = resolve));
    this.write(this.handshake.start());
    await this.withTimeout(handshook, 'RTMP handshake');
    const chunkSize = this.opts.chunkSize ?? 4096;
    this.write(this.writer.write(RTMP_CSID_CONTROL, RTMP_MSG.SET_CHUNK_SIZE, 0, 0, encodeSetChunkSize(chunkSize)));
    this.writer.setChunkSize(chunkSize);
    const props: Amf0Object = {
      app: u.app,
      type: 'nonprivate',
      flashVer: this.opts.flashVer ?? 'FMLE/3.0 (compatible; Haze)',
      tcUrl: u.tcUrl,
      fpad: false,
      capabilities: 15,
      audioCodecs: 4071,
      videoCodecs: 252,
      videoFunction: 1,
      objectEncoding: 0,
    };
    if (this.opts.fourCcList) props['fourCcList'] = this.opts.fourCcList;
    const res = await this.call('connect', props);
    if (res.name === '_error') throw statusError(res.args[0], 'HAZE_ERR_REFUSED');
    this.serverInfo = res.commandObject;
    this.write(this.writer.write(RTMP_CSID_CONTROL, RTMP_MSG.WINDOW_ACK_SIZE, 0, 0, encodeWindowAckSize(2_500_000)));
  }

  /** Publishes `name` (default: the URL's name); resolves on NetStream.Publish.Start. */
  async publish(name?: string, type = 'live'): Promise<void> {
    const streamName = name ?? this.url?.name ?? '';
    this.sendCommandNoReply('releaseStream', null, streamName);
    this.sendCommandNoReply('FCPublish', null, streamName);
    this.streamId = await this.createStream();
    const started = this.waitStatus((s) => s.code === 'NetStream.Publish.Start', 'publish');
    this.write(this.writer.write(CSID_STREAM_COMMAND, RTMP_MSG.COMMAND_AMF0, 0, this.streamId, encodeCommand('publish', 0, null, streamName, type)));
    await started;
    this.mode = 'publishing';
  }

  /** Plays `name` (default: the URL's name); resolves on NetStream.Play.Start, then emits 'media'. */
  async play(name?: string): Promise<void> {
    const streamName = name ?? this.url?.name ?? '';
    this.streamId = await this.createStream();
    const started = this.waitStatus((s) => s.code === 'NetStream.Play.Start', 'play');
    this.mode = 'playing';
    this.write(this.writer.write(CSID_STREAM_COMMAND, RTMP_MSG.COMMAND_AMF0, 0, this.streamId, encodeCommand('play', 0, null, streamName, -2)));
    this.write(this.writer.write(RTMP_CSID_CONTROL, RTMP_MSG.USER_CONTROL, 0, 0, encodeUserControl(USER_CONTROL.SET_BUFFER_LENGTH, this.streamId, 3000)));
    await started;
  }

  /** NetStream.seek while playing: the server answers NetStream.Seek.Notify and sends from the keyframe at or before `timeMs`. */
  seek(timeMs: number): void {
    this.write(this.writer.write(CSID_STREAM_COMMAND, RTMP_MSG.COMMAND_AMF0, 0, this.streamId, encodeCommand('seek', 0, null, timeMs)));
  }

  /** NetStream.pause (true) or resume (false) at `timeMs`, while playing. */
  pause(paused: boolean, timeMs: number): void {
    this.write(this.writer.write(CSID_STREAM_COMMAND, RTMP_MSG.COMMAND_AMF0, 0, this.streamId, encodeCommand('pause', 0, null, paused, timeMs)));
  }

  /** Sends one audio (8) or video (9) message body (FLV or Enhanced-RTMP tag body). */
  sendMedia(typeId: 8 | 9, timestampMs: number, body: Buffer): boolean {
    const csid = typeId === RTMP_MSG.AUDIO ? RTMP_CSID_AUDIO : RTMP_CSID_VIDEO;
    return this.write(this.writer.write(csid, typeId, timestampMs, this.streamId, body));
  }

  /** Sends `@setDataFrame onMetaData meta` (an object or Amf0EcmaArray). */
  sendMetaData(meta: Amf0Value, timestampMs = 0): boolean {
    return this.write(this.writer.write(RTMP_CSID_DATA, RTMP_MSG.DATA_AMF0, timestampMs, this.streamId, encodeSetDataFrame(meta)));
  }

  /** Sends a raw data message body (type 18). */
  sendData(body: Buffer, timestampMs = 0): boolean {
    return this.write(this.writer.write(RTMP_CSID_DATA, RTMP_MSG.DATA_AMF0, timestampMs, this.streamId, body));
  }

  /** Resolves when the transport's write buffer has drained (immediately if it has). */
  drain(): Promise<void> {
    const t = this.transport;
    if (!t || this.closed || t.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        t.off('drain', done);
        t.off('close', done);
        resolve();
      };
      t.on('drain', done);
      t.on('close', done);
    });
  }

  /** Ends gracefully: FCUnpublish + deleteStream when publishing, then closes the transport. */
  async close(): Promise<void> {
    const t = this.transport;
    if (!t || this.closed) return;
    const closed = new Promise<void>((resolve) => this.closeWaiters.add(() => resolve()));
    try {
      if (this.streamId) {
        if (this.mode === 'publishing') this.sendCommandNoReply('FCUnpublish', null, this.url?.name ?? '');
        this.sendCommandNoReply('deleteStream', null, this.streamId);
      }
    } catch {
      // the transport may already be gone
    }
    t.end();
    const timer = setTimeout(() => t.destroy(), 2000);
    await closed;
    clearTimeout(timer);
  }

  /** Drops the connection at once. */
  destroy(reason = 'destroyed'): void {
    this.transport?.destroy();
    this.onClosed(reason);
  }

  // ---- internals ----------------------------------------------------------------------------

  private openTcp(u: RtmpUrl): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      // SNI carries host names only (RFC 6066 §3)
      const s = u.secure ? tlsConnect({ host: u.host, port: u.port, ...(isIP(u.host) ? {} : { servername: u.host }), ...this.opts.tls }) : netConnect({ host: u.host, port: u.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new HazeError('HAZE_ERR_TIMEOUT', `${u.secure ? 'TLS' : 'TCP'} connect to ${u.host}:${u.port} timed out`));
      }, this.timeoutMs);
      s.once(u.secure ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.setNoDelay(true);
        s.off('error', onError);
        resolve(s);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(new HazeError('HAZE_ERR_CLOSED', `cannot connect to ${u.host}:${u.port}: ${err.message}`));
      };
      s.once('error', onError);
    });
  }

  private attach(t: Duplex): void {
    this.transport = t;
    t.on('data', (chunk: Buffer) => {
      try {
        this.onData(chunk);
      } catch (err) {
        this.opts.log?.warn(`rtmp client: ${errorText(err)}`);
        t.destroy();
        this.onClosed(`protocol error: ${errorText(err)}`);
      }
    });
    t.on('error', (err: Error) => this.onClosed(`transport error: ${err.message}`));
    t.on('close', () => this.onClosed('connection closed'));
    t.on('end', () => this.onClosed('connection closed by server'));
  }

  private onClosed(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    const err = new HazeError('HAZE_ERR_CLOSED', reason);
    for (const p of this.transactions.values()) p.reject(err);
    this.transactions.clear();
    const closeStatus: RtmpClientStatus = { level: 'error', code: 'Haze.Closed', description: reason, info: null };
    for (const w of [...this.statusWaiters]) w(closeStatus);
    for (const w of [...this.closeWaiters]) w(reason);
    this.closeWaiters.clear();
    this.emit('close', reason);
  }

  private write(bytes: Buffer): boolean {
    const t = this.transport;
    if (!t || this.closed) throw new HazeError('HAZE_ERR_CLOSED', `RTMP connection closed${this.closedReason ? `: ${this.closedReason}` : ''}`);
    return t.write(bytes);
  }

  private onData(chunk: Buffer): void {
    this.bytesReceived += chunk.length;
    let data = chunk;
    if (!this.handshake.done) {
      const step = this.handshake.push(chunk);
      if (step.reply) this.write(step.reply);
      if (!step.done) return;
      this.handshakeResolve?.();
      this.handshakeResolve = null;
      data = step.rest;
      if (data.length === 0) return;
    }
    for (const msg of this.reader.push(data)) this.onMessage(msg);
    if (this.peerWindow > 0 && this.bytesReceived - this.lastAck >= this.peerWindow) {
      this.lastAck = this.bytesReceived;
      this.write(this.writer.write(RTMP_CSID_CONTROL, RTMP_MSG.ACK, 0, 0, encodeAck(this.bytesReceived)));
    }
  }

  private onMessage(msg: RtmpMessage): void {
    switch (msg.typeId) {
      case RTMP_MSG.WINDOW_ACK_SIZE:
        this.peerWindow = decodeU32Body(msg.body, 'Window Acknowledgement Size');
        return;
      case RTMP_MSG.USER_CONTROL: {
        const ev = decodeUserControl(msg.body);
        if (ev.event === USER_CONTROL.PING_REQUEST) {
          this.write(this.writer.write(RTMP_CSID_CONTROL, RTMP_MSG.USER_CONTROL, 0, 0, encodeUserControl(USER_CONTROL.PING_RESPONSE, ev.value)));
        }
        return;
      }
      case RTMP_MSG.AUDIO:
      case RTMP_MSG.VIDEO:
      case RTMP_MSG.DATA_AMF0:
      case RTMP_MSG.DATA_AMF3:
        this.emit('media', { typeId: msg.typeId, timestamp: msg.timestamp, body: msg.body });
        return;
      case RTMP_MSG.COMMAND_AMF0:
      case RTMP_MSG.COMMAND_AMF3:
        return this.onCommand(decodeCommand(msg.typeId, msg.body));
      default:
        return;
    }
  }

  private onCommand(cmd: RtmpCommand): void {
    if (cmd.name === '_result' || cmd.name === '_error') {
      const p = this.transactions.get(cmd.transactionId);
      if (p) {
        this.transactions.delete(cmd.transactionId);
        p.resolve(cmd);
      }
      return;
    }
    if (cmd.name === 'onStatus') {
      const info = cmd.args[0] ?? null;
      const status: RtmpClientStatus = { ...readStatus(info), info };
      this.emit('status', status);
      for (const w of [...this.statusWaiters]) w(status);
      return;
    }
    // onBWDone, onFCPublish, ...: nothing to do for this client.
  }

  private call(name: string, commandObject: Amf0Value, ...args: Amf0Value[]): Promise<RtmpCommand> {
    const txn = this.nextTxn++;
    const p = new Promise<RtmpCommand>((resolve, reject) => this.transactions.set(txn, { resolve, reject }));
    this.write(this.writer.write(RTMP_CSID_COMMAND, RTMP_MSG.COMMAND_AMF0, 0, 0, encodeCommand(name, txn, commandObject, ...args)));
    return this.withTimeout(p, name, () => this.transactions.delete(txn));
  }

  private sendCommandNoReply(name: string, commandObject: Amf0Value, ...args: Amf0Value[]): void {
    const txn = this.nextTxn++;
    this.write(this.writer.write(RTMP_CSID_COMMAND, RTMP_MSG.COMMAND_AMF0, 0, 0, encodeCommand(name, txn, commandObject, ...args)));
  }

  private async createStream(): Promise<number> {
    const res = await this.call('createStream', null);
    const id = res.args[0];
    if (res.name !== '_result' || typeof id !== 'number') throw statusError(res.args[0], 'HAZE_ERR_REFUSED', 'createStream failed');
    return id;
  }

  /** Resolves on the first onStatus matching `ok`; rejects on a level=error status or close. */
  private waitStatus(ok: (s: RtmpClientStatus) => boolean, what: string): Promise<void> {
    let waiter: (s: RtmpClientStatus) => void = () => {};
    const p = new Promise<void>((resolve, reject) => {
      waiter = (s) => {
        if (ok(s)) {
          this.statusWaiters.delete(waiter);
          resolve();
        } else if (s.level === 'error') {
          this.statusWaiters.delete(waiter);
          reject(new RtmpStatusError(s, `${what} failed: ${s.code}: ${s.description}`));
        }
      };
      this.statusWaiters.add(waiter);
    });
    return this.withTimeout(p, what, () => this.statusWaiters.delete(waiter));
  }

  private withTimeout<T>(p: Promise<T>, what: string, cleanup?: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup?.();
        reject(new HazeError('HAZE_ERR_TIMEOUT', `RTMP ${what}: no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      p.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
}

/** A refusal from the server, with its onStatus code and description. */
export class RtmpStatusError extends HazeError {
  readonly rtmpStatus: RtmpClientStatus;
  constructor(status: RtmpClientStatus, message: string) {
    super('HAZE_ERR_REFUSED', message);
    this.rtmpStatus = status;
  }
}

function statusError(info: Amf0Value, code: 'HAZE_ERR_REFUSED', fallback = 'refused'): HazeError {
  const description = amf0String(amf0Get(info, 'description')) ?? fallback;
  const statusCode = amf0String(amf0Get(info, 'code')) ?? '';
  return new HazeError(code, statusCode ? `${statusCode}: ${description}` : description);
}
