// RTMP server session (Adobe RTMP 1.0 §7.2 NetConnection/NetStream commands), sans-I/O:
// `receive(bytes)` in, `send(bytes)` out, media to the handler's sinks and from its sources.
//
// Flow as ffmpeg, OBS (librtmp) and GStreamer (rtmpsrc/rtmp2src) drive it:
//   handshake -> connect -> [releaseStream, FCPublish] -> createStream -> publish | play
//   -> media ... -> [FCUnpublish] -> deleteStream / closeStream / socket close
// After connect the server announces Window Ack Size 2500000, Set Peer Bandwidth 2500000
// (dynamic) and Set Chunk Size 4096, then answers `_result` + onBWDone.
//
// Played media is written by the handler's source as pre-serialised chunks
// (encodeMessageType0, csid 4 audio / 6 video / 5 data, message stream id 1), so the session
// uses only csid 2 (control) and 3 (commands, onStatus) for its own messages.
//
// Rejections (the choice of status codes, as ffmpeg prints "Server error: <description>" for
// any level=error onStatus and OBS's librtmp closes on the Rejected/StreamNotFound/Failed codes):
//   publish: HAZE_ERR_BUSY, HAZE_ERR_NOT_FOUND, HAZE_ERR_INVALID_ARG -> NetStream.Publish.BadName
//            anything else (HAZE_ERR_REFUSED, HAZE_ERR_AUTH, ...)  -> NetStream.Publish.Rejected
//   play:    HAZE_ERR_NOT_FOUND, HAZE_ERR_OFFLINE -> NetStream.Play.StreamNotFound
//            anything else                       -> NetStream.Play.Failed
// The description is the HazeError's message; the connection is closed right after, so
// clients that ignore the status still stop.

import { HazeError, errorText, isHazeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { amf0Get, amf0String, type Amf0Object } from '../../containers/amf/amf0.js';
import { ServerHandshake, type HandshakeOptions } from './handshake.js';
import { ChunkReader, type ChunkReaderOptions, type RtmpMessage } from './chunk-reader.js';
import {
  ChunkWriter,
  encodeMessageType0,
  RTMP_CSID_AUDIO,
  RTMP_CSID_COMMAND,
  RTMP_CSID_CONTROL,
  RTMP_CSID_DATA,
  RTMP_CSID_VIDEO,
  RTMP_SERVER_CHUNK_SIZE,
} from './chunk-writer.js';
import {
  RTMP_MSG,
  USER_CONTROL,
  PEER_BANDWIDTH_LIMIT,
  decodeCommand,
  decodeU32Body,
  decodeUserControl,
  encodeCommand,
  encodeError,
  encodeOnBWDone,
  encodeOnStatus,
  encodeResult,
  encodeSampleAccess,
  encodeSetChunkSize,
  encodeSetPeerBandwidth,
  encodeUserControl,
  encodeWindowAckSize,
  encodeAck,
  splitAggregate,
  statusObject,
  stripSetDataFrame,
  type RtmpCommand,
} from './messages.js';

export interface RtmpStreamRequest {
  /** The application from connect's `app` (MistServer uses it as the push password). */
  app: string;
  /** Stream name as the client sent it: raw, may include `?query`. */
  name: string;
  tcUrl: string;
  peer: string;
  /** publish only: 'live', 'record' or 'append' as the client sent it. */
  publishType?: string;
  /** play only: the Start argument when it asks for a position (ms; rtmpdump -A), not live (-1000/-2000). */
  startMs?: number;
}

/** Lets the hub end a connection (for example when a stream's configuration goes away). */
export interface RtmpConnectionControl {
  readonly peer: string;
  close(reason: string): void;
}

export interface RtmpSessionHandler {
  /**
   * Accept a publisher: resolve with a sink for its media, or reject with a HazeError whose
   * message goes to the client as the onStatus description. HAZE_ERR_BUSY / NOT_FOUND /
   * INVALID_ARG -> NetStream.Publish.BadName; any other error -> NetStream.Publish.Rejected.
   * The connection is closed after a rejection.
   */
  publish(req: RtmpStreamRequest, conn: RtmpConnectionControl): Promise<RtmpPublishSink>;
  /**
   * Accept a player: resolve with a source that writes media to `out`; reject -> onStatus
   * NetStream.Play.StreamNotFound (HAZE_ERR_NOT_FOUND / OFFLINE) or NetStream.Play.Failed,
   * description = the error's message. Bytes written to `out` before the promise resolves are
   * held and sent after Stream Begin, Play.Reset, Play.Start and |RtmpSampleAccess.
   */
  play(req: RtmpStreamRequest, out: RtmpPlayOutput): Promise<RtmpPlaySource>;
}

export interface RtmpPublishSink {
  /** One audio (8), video (9) or data (18: onMetaData without @setDataFrame) message body. */
  media(typeId: 8 | 9 | 18, timestampMs: number, body: Buffer): void;
  close(reason: string): void;
}

export interface RtmpPlayOutput {
  /**
   * Writes pre-serialised chunk bytes (encodeMessageType0 with csid 4/5/6 and message stream
   * id 1, chunk size RTMP_SERVER_CHUNK_SIZE). Returns false when the socket buffer is full
   * (wait for onDrain) or the session is closed.
   */
  write(bytes: Buffer): boolean;
  /** Writes several chunks together (one writev on the socket); same rules as write(). */
  writev(chunks: readonly Buffer[]): void;
  /** Bytes queued in the socket, for the hub's slow-reader policy. */
  writableLength(): number;
  /** Calls `fn` whenever the socket drains; returns an unsubscribe function. */
  onDrain(fn: () => void): () => void;
  /** The stream ended: sends Play.UnpublishNotify, Stream EOF and Play.Stop; the connection stays. */
  end(reason: string): void;
  /** Drops the whole connection (slow reader, stream removed). */
  close(reason: string): void;
  /** False once the play ended or the connection closed. */
  readonly open: boolean;
}

export interface RtmpPlaySource {
  close(reason: string): void;
  /** Optional: the player paused (true) or resumed (false); live sources may ignore it. */
  pause?(paused: boolean, timeMs: number): void;
  /** Optional: the player asked to seek; live sources may ignore it. */
  seek?(timeMs: number): void;
}

export interface RtmpServerSessionOptions {
  /** Writes bytes to the peer; the return value (socket.write's) feeds backpressure. */
  send(bytes: Buffer): boolean | void;
  handler: RtmpSessionHandler;
  /** Peer address for requests and logs. */
  peer: string;
  /** Bytes queued in the transport; 0 when not given. */
  writableLength?(): number;
  /** Runs `fn`, whose sends the transport may gather into one write (socket cork/uncork). */
  batch?(fn: () => void): void;
  /** Registers a drain callback with the transport; returns an unsubscribe function. */
  onDrain?(fn: () => void): () => void;
  /**
   * Called once when the session ends for any reason other than the transport closing
   * (a rejected publish/play, an `RtmpPlayOutput.close`, `close()`): the adapter then ends
   * the socket after flushing.
   */
  onClose?(reason: string): void;
  log?: Logger;
  handshake?: HandshakeOptions;
  chunkReader?: ChunkReaderOptions;
  /** Most bytes of media held while a publish is being accepted (default 16 MiB). */
  maxPendingPublishBytes?: number;
}

/** Window Ack Size and peer bandwidth the server announces. */
export const RTMP_SERVER_WINDOW_ACK_SIZE = 2_500_000;
export const RTMP_SERVER_FMS_VERSION = 'FMS/3,5,7,7009';
const MAX_HELD_PLAY_BYTES = 16 * 1024 * 1024;

interface PublishState {
  streamId: number;
  name: string;
  sink: RtmpPublishSink | null;
  /** Media received while the handler decides. */
  pending: { typeId: 8 | 9 | 18; timestamp: number; body: Buffer }[];
  pendingBytes: number;
  done: boolean;
}

interface PlayState {
  streamId: number;
  name: string;
  source: RtmpPlaySource | null;
  /** Bytes the source wrote before the start messages went out. */
  held: Buffer[];
  heldBytes: number;
  ready: boolean;
  done: boolean;
  receiveAudio: boolean;
  receiveVideo: boolean;
}

export type RtmpSessionPhase = 'handshake' | 'connecting' | 'connected' | 'publishing' | 'playing' | 'closed';

export class RtmpServerSession implements RtmpConnectionControl {
  readonly peer: string;
  private readonly opts: RtmpServerSessionOptions;
  private readonly handshake: ServerHandshake;
  private readonly reader: ChunkReader;
  private readonly writer = new ChunkWriter();
  private readonly maxPendingPublishBytes: number;

  private closed = false;
  private connected = false;
  private app = '';
  private tcUrl = '';
  /** Bytes received, for acknowledgements (mod 2^32 on the wire). */
  bytesReceived = 0;
  private lastAck = 0;
  /** The window the peer asked for (its Window Ack Size); 0 = it did not ask, no acks. */
  private peerWindow = 0;
  private readonly streamIds = new Set<number>();
  private publishing: PublishState | null = null;
  private playing: PlayState | null = null;
  /** Why the session closed, once it has. */
  closeReason: string | null = null;

  constructor(opts: RtmpServerSessionOptions) {
    this.opts = opts;
    this.peer = opts.peer;
    this.handshake = new ServerHandshake(opts.handshake);
    this.reader = new ChunkReader(opts.chunkReader);
    this.maxPendingPublishBytes = opts.maxPendingPublishBytes ?? 16 * 1024 * 1024;
  }

  get phase(): RtmpSessionPhase {
    if (this.closed) return 'closed';
    if (!this.handshake.done) return 'handshake';
    if (this.publishing) return 'publishing';
    if (this.playing) return 'playing';
    return this.connected ? 'connected' : 'connecting';
  }

  get handshakeDone(): boolean {
    return this.handshake.done;
  }

  /** Handshake mode the client used ('simple' | 'digest'), once known. */
  get handshakeMode(): 'simple' | 'digest' | null {
    return this.handshake.mode;
  }

  /**
   * Feeds bytes from the peer. Throws HazeError on a protocol violation (anything else thrown
   * is a bug), after closing the session (sinks and sources are closed); the adapter then
   * drops the connection.
   */
  receive(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.bytesReceived += chunk.length;
      let data = chunk;
      if (!this.handshake.done) {
        const step = this.handshake.push(chunk);
        if (step.reply) this.send(step.reply);
        if (!step.done) return;
        data = step.rest;
        if (data.length === 0) return;
      }
      const msgs = this.reader.push(data);
      for (let i = 0; i < msgs.length && !this.closed; i++) this.onMessage(msgs[i]!);
      this.maybeAck();
    } catch (err) {
      // Close first so sinks/sources are released, then let the adapter drop the socket.
      // Non-HazeErrors are bugs: rethrown as they are, so tests and logs show them.
      this.shutdown(`protocol error: ${errorText(err)}`, false);
      throw err;
    }
  }

  /** The transport closed (or must close): closes sinks/sources. Idempotent. */
  close(reason: string): void {
    this.shutdown(reason, true);
  }

  /** Closes without notifying onClose (the transport is already gone). */
  transportClosed(reason: string): void {
    this.shutdown(reason, false);
  }

  private shutdown(reason: string, notify: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.closeReason = reason;
    this.endPublish(reason);
    this.endPlay(reason);
    if (notify) this.opts.onClose?.(reason);
  }

  // ---- output helpers ---------------------------------------------------------------------

  private send(bytes: Buffer): boolean {
    if (this.closed) return false;
    return this.opts.send(bytes) !== false;
  }

  private sendControl(typeId: number, body: Buffer): void {
    this.send(this.writer.write(RTMP_CSID_CONTROL, typeId, 0, 0, body));
  }

  private sendCommand(streamId: number, body: Buffer): void {
    this.send(this.writer.write(RTMP_CSID_COMMAND, RTMP_MSG.COMMAND_AMF0, 0, streamId, body));
  }

  private sendStatus(streamId: number, level: string, code: string, description: string, extra: Amf0Object = {}): void {
    this.sendCommand(streamId, encodeOnStatus(level, code, description, extra));
  }

  private maybeAck(): void {
    if (this.peerWindow > 0 && this.bytesReceived - this.lastAck >= this.peerWindow) {
      this.lastAck = this.bytesReceived;
      this.sendControl(RTMP_MSG.ACK, encodeAck(this.bytesReceived));
    }
  }

  // ---- messages -----------------------------------------------------------------------------

  private onMessage(msg: RtmpMessage): void {
    switch (msg.typeId) {
      case RTMP_MSG.SET_CHUNK_SIZE:
      case RTMP_MSG.ABORT:
        return; // applied by the chunk reader
      case RTMP_MSG.ACK:
        return;
      case RTMP_MSG.USER_CONTROL:
        return this.onUserControl(msg);
      case RTMP_MSG.WINDOW_ACK_SIZE:
        this.peerWindow = decodeU32Body(msg.body, 'Window Acknowledgement Size');
        return;
      case RTMP_MSG.SET_PEER_BANDWIDTH:
        return;
      case RTMP_MSG.AUDIO:
      case RTMP_MSG.VIDEO:
        return this.onPublishedMessage(msg.typeId, msg.timestamp, msg.body);
      case RTMP_MSG.DATA_AMF0:
      case RTMP_MSG.DATA_AMF3:
        return this.onPublishedMessage(18, msg.timestamp, stripSetDataFrame(msg.typeId, msg.body));
      case RTMP_MSG.COMMAND_AMF0:
      case RTMP_MSG.COMMAND_AMF3:
        return this.onCommand(msg, decodeCommand(msg.typeId, msg.body));
      case RTMP_MSG.AGGREGATE:
        for (const sub of splitAggregate(msg)) {
          if (sub.typeId === RTMP_MSG.AUDIO || sub.typeId === RTMP_MSG.VIDEO) this.onPublishedMessage(sub.typeId, sub.timestamp, sub.body);
          else if (sub.typeId === RTMP_MSG.DATA_AMF0) this.onPublishedMessage(18, sub.timestamp, stripSetDataFrame(sub.typeId, sub.body));
        }
        return;
      default:
        return; // shared objects and unknown types: ignored, as FMS-compatible servers do
    }
  }

  private onUserControl(msg: RtmpMessage): void {
    const ev = decodeUserControl(msg.body);
    if (ev.event === USER_CONTROL.PING_REQUEST) {
      this.sendControl(RTMP_MSG.USER_CONTROL, encodeUserControl(USER_CONTROL.PING_RESPONSE, ev.value));
    }
  }

  private onPublishedMessage(typeId: 8 | 9 | 18, timestamp: number, body: Buffer): void {
    const pub = this.publishing;
    if (!pub || pub.done) return; // media outside a publish: ignored (some clients send early metadata)
    if (pub.sink) {
      pub.sink.media(typeId, timestamp, body);
      return;
    }
    pub.pendingBytes += body.length;
    if (pub.pendingBytes > this.maxPendingPublishBytes) {
      throw new HazeError('HAZE_ERR_TOO_LARGE', `more than ${this.maxPendingPublishBytes} bytes of media before the publish was accepted`);
    }
    pub.pending.push({ typeId, timestamp, body });
  }

  // ---- commands -----------------------------------------------------------------------------

  private onCommand(msg: RtmpMessage, cmd: RtmpCommand): void {
    this.opts.log?.debug(`rtmp command ${cmd.name} txn=${cmd.transactionId} msid=${msg.streamId}`);
    switch (cmd.name) {
      case 'connect':
        return this.onConnect(cmd);
      case 'createStream':
        return this.onCreateStream(cmd);
      case 'releaseStream':
      case '_checkbw':
        this.sendCommand(0, encodeResult(cmd.transactionId, null, undefined));
        return;
      case 'FCPublish': {
        const name = amf0String(cmd.args[0]) ?? '';
        this.sendCommand(0, encodeResult(cmd.transactionId, null, undefined));
        this.sendCommand(0, encodeCommand('onFCPublish', 0, null, statusObject('status', 'NetStream.Publish.Start', name)));
        return;
      }
      case 'FCUnpublish': {
        const name = amf0String(cmd.args[0]) ?? '';
        this.sendCommand(0, encodeResult(cmd.transactionId, null, undefined));
        this.sendCommand(0, encodeCommand('onFCUnpublish', 0, null, statusObject('status', 'NetStream.Unpublish.Success', name)));
        if (this.publishing) this.stopPublish(this.publishing.streamId, 'client unpublished');
        return;
      }
      case 'publish':
        return this.onPublish(msg, cmd);
      case 'play': {
        const start = cmd.args[1];
        return this.onPlay(msg, amf0String(cmd.args[0]) ?? '', typeof start === 'number' && start > 0 ? start : undefined);
      }
      case 'play2': {
        // play2 carries a NetStreamPlayOptions object; only its streamName matters for live.
        const name = amf0String(amf0Get(cmd.args[0], 'streamName')) ?? '';
        return this.onPlay(msg, name);
      }
      case 'deleteStream': {
        const id = typeof cmd.args[0] === 'number' ? cmd.args[0] : msg.streamId;
        this.stopStream(id, 'client deleted the stream');
        this.streamIds.delete(id);
        return;
      }
      case 'closeStream':
        this.stopStream(msg.streamId, 'client closed the stream');
        return;
      case 'getStreamLength':
        // Live: length 0 (ffmpeg asks before playing and treats 0 as live).
        this.sendCommand(0, encodeResult(cmd.transactionId, null, 0));
        return;
      case 'pause':
        return this.onPause(msg, cmd);
      case 'seek':
        return this.onSeek(msg, cmd);
      case 'receiveAudio':
      case 'receiveVideo': {
        const p = this.playing;
        const flag = cmd.args[0] !== false;
        if (p) {
          if (cmd.name === 'receiveAudio') p.receiveAudio = flag;
          else p.receiveVideo = flag;
        }
        return;
      }
      case '_result':
      case '_error':
      case 'onStatus':
      case '_checkbwDone':
      case 'onBWDone':
        return;
      default:
        if (cmd.transactionId > 0) {
          this.sendCommand(0, encodeError(cmd.transactionId, null, statusObject('error', 'NetConnection.Call.Failed', `Method not found (${cmd.name}).`)));
        }
        return;
    }
  }

  private onConnect(cmd: RtmpCommand): void {
    if (this.connected) throw new HazeError('HAZE_ERR_PROTOCOL', 'second connect on one RTMP connection');
    const obj = cmd.commandObject;
    this.app = (amf0String(amf0Get(obj, 'app')) ?? '').replace(/\/+$/, '');
    this.tcUrl = amf0String(amf0Get(obj, 'tcUrl')) ?? '';
    const oe = amf0Get(obj, 'objectEncoding');
    const objectEncoding = typeof oe === 'number' ? oe : 0;
    this.connected = true;
    this.sendControl(RTMP_MSG.WINDOW_ACK_SIZE, encodeWindowAckSize(RTMP_SERVER_WINDOW_ACK_SIZE));
    this.sendControl(RTMP_MSG.SET_PEER_BANDWIDTH, encodeSetPeerBandwidth(RTMP_SERVER_WINDOW_ACK_SIZE, PEER_BANDWIDTH_LIMIT.DYNAMIC));
    this.sendControl(RTMP_MSG.SET_CHUNK_SIZE, encodeSetChunkSize(RTMP_SERVER_CHUNK_SIZE));
    this.writer.setChunkSize(RTMP_SERVER_CHUNK_SIZE);
    this.sendCommand(
      0,
      encodeResult(
        cmd.transactionId,
        { fmsVer: RTMP_SERVER_FMS_VERSION, capabilities: 31, mode: 1 },
        statusObject('status', 'NetConnection.Connect.Success', 'Connection succeeded.', { objectEncoding }),
      ),
    );
    this.sendCommand(0, encodeOnBWDone());
  }

  private onCreateStream(cmd: RtmpCommand): void {
    let id = 1;
    while (this.streamIds.has(id)) id++;
    if (id > 64) throw new HazeError('HAZE_ERR_TOO_LARGE', 'more than 64 RTMP streams on one connection');
    this.streamIds.add(id);
    this.sendCommand(0, encodeResult(cmd.transactionId, null, id));
  }

  private requestFor(name: string): RtmpStreamRequest {
    return { app: this.app, name, tcUrl: this.tcUrl, peer: this.peer };
  }

  private onPublish(msg: RtmpMessage, cmd: RtmpCommand): void {
    if (!this.connected) throw new HazeError('HAZE_ERR_PROTOCOL', 'publish before connect');
    const streamId = msg.streamId || 1;
    const name = amf0String(cmd.args[0]) ?? '';
    const type = amf0String(cmd.args[1]) ?? 'live';
    if (this.publishing || this.playing) {
      this.sendStatus(streamId, 'error', 'NetStream.Publish.BadConnection', 'This connection already publishes or plays a stream.');
      return;
    }
    if (name === '') {
      this.rejectPublish(streamId, new HazeError('HAZE_ERR_INVALID_ARG', 'No stream name given.'));
      return;
    }
    const pub: PublishState = { streamId, name, sink: null, pending: [], pendingBytes: 0, done: false };
    this.publishing = pub;
    const req: RtmpStreamRequest = { ...this.requestFor(name), publishType: type };
    let p: Promise<RtmpPublishSink>;
    try {
      p = this.opts.handler.publish(req, this);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (sink) => {
        if (pub.done || this.closed) {
          sink.close(this.closeReason ?? 'publisher went away');
          return;
        }
        pub.sink = sink;
        this.sendStatus(streamId, 'status', 'NetStream.Publish.Start', `${name} is now published.`, { details: name, clientid: 'haze' });
        const pending = pub.pending;
        pub.pending = [];
        pub.pendingBytes = 0;
        try {
          for (const m of pending) {
            if (pub.done) break;
            sink.media(m.typeId, m.timestamp, m.body);
          }
        } catch (err) {
          this.close(`publish sink failed: ${errorText(err)}`);
        }
      },
      (err: unknown) => {
        if (pub.done || this.closed) return;
        pub.done = true;
        this.publishing = null;
        this.rejectPublish(streamId, err);
      },
    );
  }

  private rejectPublish(streamId: number, err: unknown): void {
    const code = isHazeError(err) && (err.code === 'HAZE_ERR_BUSY' || err.code === 'HAZE_ERR_NOT_FOUND' || err.code === 'HAZE_ERR_INVALID_ARG') ? 'NetStream.Publish.BadName' : 'NetStream.Publish.Rejected';
    const description = err instanceof Error && err.message ? err.message : isHazeError(err) && err.code === 'HAZE_ERR_BUSY' ? 'Stream already publishing' : 'Publish rejected';
    this.opts.log?.info(`rtmp publish refused: ${errorText(err)}`);
    this.sendStatus(streamId, 'error', code, description);
    this.close(`publish refused: ${description}`);
  }

  private onPlay(msg: RtmpMessage, name: string, startMs?: number): void {
    if (!this.connected) throw new HazeError('HAZE_ERR_PROTOCOL', 'play before connect');
    const streamId = msg.streamId || 1;
    if (this.publishing || this.playing) {
      this.sendStatus(streamId, 'error', 'NetStream.Play.Failed', 'This connection already publishes or plays a stream.');
      return;
    }
    const st: PlayState = { streamId, name, source: null, held: [], heldBytes: 0, ready: false, done: false, receiveAudio: true, receiveVideo: true };
    this.playing = st;
    const out = this.makeOutput(st);
    let p: Promise<RtmpPlaySource>;
    try {
      p = this.opts.handler.play({ ...this.requestFor(name), ...(startMs === undefined ? {} : { startMs }) }, out);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (source) => {
        if (st.done || this.closed) {
          source.close(this.closeReason ?? 'player went away');
          return;
        }
        st.source = source;
        this.sendControl(RTMP_MSG.USER_CONTROL, encodeUserControl(USER_CONTROL.STREAM_BEGIN, streamId));
        this.sendStatus(streamId, 'status', 'NetStream.Play.Reset', `Playing and resetting ${name}.`, { details: name, clientid: 'haze' });
        this.sendStatus(streamId, 'status', 'NetStream.Play.Start', `Started playing ${name}.`, { details: name, clientid: 'haze' });
        this.send(encodeMessageType0(RTMP_CSID_DATA, RTMP_MSG.DATA_AMF0, 0, streamId, encodeSampleAccess(), this.writer.chunkSize));
        st.ready = true;
        const held = st.held;
        st.held = [];
        st.heldBytes = 0;
        for (const b of held) out.write(b);
      },
      (err: unknown) => {
        if (st.done || this.closed) return;
        st.done = true;
        this.playing = null;
        const code = isHazeError(err) && (err.code === 'HAZE_ERR_NOT_FOUND' || err.code === 'HAZE_ERR_OFFLINE') ? 'NetStream.Play.StreamNotFound' : 'NetStream.Play.Failed';
        const description = err instanceof Error && err.message ? err.message : 'Play failed';
        this.opts.log?.info(`rtmp play refused: ${errorText(err)}`);
        this.sendStatus(streamId, 'error', code, description, { details: name });
        this.close(`play refused: ${description}`);
      },
    );
  }

  private makeOutput(st: PlayState): RtmpPlayOutput {
    const session = this;
    return {
      write(bytes: Buffer): boolean {
        if (st.done || session.closed) return false;
        if (!st.ready) {
          // Held until the start messages are out. Report success: no drain event would
          // follow for this queue, and a source waiting for one would stall.
          st.held.push(bytes);
          st.heldBytes += bytes.length;
          if (st.heldBytes > MAX_HELD_PLAY_BYTES) session.close(`player: more than ${MAX_HELD_PLAY_BYTES} bytes written before play started`);
          return true;
        }
        // receiveAudio/receiveVideo false: drop by the chunk stream id of the first basic header.
        if (!st.receiveAudio || !st.receiveVideo) {
          const csid = bytes.length > 0 ? bytes[0]! & 0x3f : 0;
          if ((csid === RTMP_CSID_AUDIO && !st.receiveAudio) || (csid === RTMP_CSID_VIDEO && !st.receiveVideo)) return true;
        }
        return session.send(bytes);
      },
      writev(chunks: readonly Buffer[]): void {
        const writeAll = (): void => {
          for (const b of chunks) this.write(b);
        };
        if (session.opts.batch) session.opts.batch(writeAll);
        else writeAll();
      },
      writableLength(): number {
        return (session.opts.writableLength?.() ?? 0) + st.heldBytes;
      },
      onDrain(fn: () => void): () => void {
        return session.opts.onDrain?.(fn) ?? (() => {});
      },
      end(reason: string): void {
        if (st.done || session.closed) return;
        session.sendStatus(st.streamId, 'status', 'NetStream.Play.UnpublishNotify', `${st.name} is now unpublished.`, { details: st.name });
        session.sendControl(RTMP_MSG.USER_CONTROL, encodeUserControl(USER_CONTROL.STREAM_EOF, st.streamId));
        session.sendStatus(st.streamId, 'status', 'NetStream.Play.Stop', `Stopped playing ${st.name}: ${reason}`, { details: st.name });
        st.done = true;
        st.source = null; // the source ended the play itself; do not call its close again
        if (session.playing === st) session.playing = null;
      },
      close(reason: string): void {
        session.close(reason);
      },
      get open(): boolean {
        return !st.done && !session.closed;
      },
    };
  }

  private onPause(msg: RtmpMessage, cmd: RtmpCommand): void {
    const p = this.playing;
    const paused = cmd.args[0] !== false;
    const timeMs = typeof cmd.args[1] === 'number' ? cmd.args[1] : 0;
    const streamId = msg.streamId || (p?.streamId ?? 1);
    if (!p || !p.ready) {
      this.sendStatus(streamId, 'error', 'NetStream.Failed', 'Not playing.');
      return;
    }
    p.source?.pause?.(paused, timeMs);
    if (paused) this.sendStatus(streamId, 'status', 'NetStream.Pause.Notify', `Paused ${p.name}.`, { details: p.name });
    else this.sendStatus(streamId, 'status', 'NetStream.Unpause.Notify', `Unpaused ${p.name}.`, { details: p.name });
  }

  private onSeek(msg: RtmpMessage, cmd: RtmpCommand): void {
    const p = this.playing;
    const timeMs = typeof cmd.args[0] === 'number' ? cmd.args[0] : 0;
    const streamId = msg.streamId || (p?.streamId ?? 1);
    if (!p || !p.ready) {
      this.sendStatus(streamId, 'error', 'NetStream.Seek.Failed', 'Not playing.');
      return;
    }
    if (p.source?.seek) {
      p.source.seek(timeMs);
      this.sendStatus(streamId, 'status', 'NetStream.Seek.Notify', `Seeking ${timeMs} (stream ID: ${streamId}).`, { details: p.name });
    } else {
      // Live: there is nothing to seek to; say so and keep playing from the live point.
      this.sendStatus(streamId, 'status', 'NetStream.Seek.Notify', `Live stream ${p.name}: seek ignored.`, { details: p.name });
    }
  }

  // ---- ending -----------------------------------------------------------------------------------

  private stopStream(streamId: number, reason: string): void {
    if (this.publishing && this.publishing.streamId === streamId) this.stopPublish(streamId, reason);
    if (this.playing && this.playing.streamId === streamId) this.endPlay(reason);
  }

  private stopPublish(streamId: number, reason: string): void {
    const pub = this.publishing;
    if (!pub) return;
    this.endPublish(reason);
    this.sendStatus(streamId, 'status', 'NetStream.Unpublish.Success', `${pub.name} is now unpublished.`, { details: pub.name });
  }

  private endPublish(reason: string): void {
    const pub = this.publishing;
    if (!pub) return;
    this.publishing = null;
    pub.done = true;
    pub.pending = [];
    const sink = pub.sink;
    pub.sink = null;
    if (sink) safeClose(sink, reason, this.opts.log);
  }

  private endPlay(reason: string): void {
    const st = this.playing;
    if (!st) return;
    this.playing = null;
    st.done = true;
    st.held = [];
    st.heldBytes = 0;
    const source = st.source;
    st.source = null;
    if (source) safeClose(source, reason, this.opts.log);
  }
}

function safeClose(x: { close(reason: string): void }, reason: string, log: Logger | undefined): void {
  try {
    x.close(reason);
  } catch (err) {
    log?.error(`close handler threw: ${errorText(err)}`);
  }
}
