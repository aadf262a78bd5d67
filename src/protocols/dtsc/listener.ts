// The dtsc:// listener (TCP port 4200; reference/mistserver.md §2.6, MistServer's OutDTSC): one
// accepted connection is either a puller or a pusher.
//
//   server -> {"cmd":"hi","pack_method":2,"salt":..,"version":"Haze/.."}          on accept
//   PULL  client -> {"cmd":"play","stream":S[,"audio"/"video"/...: selector]}
//         server -> DTSC header (live, tracks renumbered 1..n, no index tables), then DTP2
//                   packets from the newest keyframe on; a new header whenever the tracks
//                   change; {"cmd":"ping"} after 2 s without output; the connection ends when
//                   the stream does. A reader that falls behind skips to the next keyframe and
//                   is dropped when it stays behind (outputs/viewer.ts).
//   PUSH  client -> {"cmd":"push","stream":S,"password":P}
//         server -> {"cmd":"ok","msg":"You're cleared for pushing! DTSC_HEAD please?"}
//         client -> DTSC header (tracks added by trackid, unixzero honoured)
//         server -> {"cmd":"ok","msg":"DTSC_HEAD parsed, we went from X to Y tracks. ..."}
//         client -> DTP2 packets (a track id not announced is fatal)
//   Both: ping -> {"cmd":"ok","msg":"Pong!"}; reset -> ok "Internal state reset" (a puller gets
//   the header again); ok/hi/error are logged; check_key_duration (pull) -> ok or error.
//   Any refusal or violation -> {"cmd":"error","msg":..} (MistServer's texts) and the close.
//
// Frames a pusher sends right behind its `push` (MistServer's own pusher does not wait for the
// `ok`) wait unparsed while the push is authorised: the socket is paused meanwhile.

import type net from 'node:net';
import { getNumber, getText, type DtmiDecodeLimits, type DtmiObject } from '../../containers/dtsc/dtmi.js';
import { decodeFrame, encodeDtcm } from '../../containers/dtsc/packets.js';
import { parseDtscHeader, plainTrack } from '../../containers/dtsc/header.js';
import type { StreamHub } from '../../hub/stream-hub.js';
import type { Packet, Track } from '../../media/types.js';
import { getFeed, type Feed } from '../../outputs/feed.js';
import { selectionKey } from '../../outputs/track-select.js';
import { DEFAULT_VIEWER_POLICY, Viewer, type ByteSink, type ViewerPolicy } from '../../outputs/viewer.js';
import { HazeError, errorText, isHazeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { sanitizeStreamName } from '../../util/stream-name.js';
import { DtscFrameSplitter, DTSC_INVALID_HEADER_TEXT, type DtscFrameMagic } from './frame-splitter.js';
import {
  DTSC_TEXT,
  DtscLiveWriter,
  dtscSelect,
  headParsedText,
  hiCommand,
  keyDurationMismatch,
  keyMismatchText,
  longestKeyMs,
  playSelector,
} from './listener-wire.js';

/** A push the checks admitted: the hub to feed and how to end it (HubManager.startPublish). */
export interface DtscPublishHandle {
  hub: StreamHub;
  end(reason: string, clean: boolean): void;
  /** The stream pushed to, when the checks mapped the name (a stream key, a JWT). */
  stream?: string;
}

export interface DtscListenerDeps {
  /** A pull: the stream's hub, online (waits for it); throws a HazeError when it cannot be played. */
  forViewer(name: string): Promise<StreamHub>;
  /**
   * A pull with the viewer rules (rewrites, fallbacks, connection triggers), used instead of
   * forViewer when given: the hub to play and what to call when the pull ends. `bytes` reads
   * the connection's byte counters; throws a HazeError when the pull is refused.
   */
  openPull?(name: string, peer: string, requestUrl: string, bytes: () => { down: number; up: number }): Promise<{ hub: StreamHub; end(): void }>;
  /**
   * A push: runs the push checks; throws a HazeError to refuse. `name` is the sanitised stream
   * name ('' when the pushed name is none), `raw` the name as sent (a stream key or a JWT maps
   * to a stream, reference §5.4 step 1).
   */
  startPush(name: string, password: string, peer: string, raw: string): Promise<DtscPublishHandle>;
  /** How a pushed name may appear in the log (stream keys and JWTs are secrets); the sanitised name when absent. */
  pushLabel?(raw: string): string;
  log: Logger;
}

export interface DtscListenerOptions {
  /** A client that sends no play/push this long after connecting is dropped (default 10 s). */
  handshakeTimeoutMs?: number;
  /** A puller that got nothing this long is sent a ping (default 2000 ms: MistServer's "idle > 1 s" in whole seconds). */
  pingAfterMs?: number;
  /** A pusher that sends nothing this long is dropped (default 30 s). */
  pushIdleTimeoutMs?: number;
  /** Largest DTP2 frame a pusher may send (default 32 MiB). */
  maxPacketBytes?: number;
  /** Largest DTSC header a pusher may send (default 4 MiB). */
  maxHeaderBytes?: number;
  /** Largest command (default 64 KiB). */
  maxCommandBytes?: number;
  /** Most tracks a push may announce (default 64). */
  maxTracks?: number;
  /** Slow-puller policy (default outputs/viewer.ts DEFAULT_VIEWER_POLICY). */
  viewerPolicy?: ViewerPolicy;
}

export type DtscConnectionState = 'hello' | 'starting' | 'playing' | 'pushing' | 'closed';

export interface DtscConnection {
  readonly state: DtscConnectionState;
  /** Ends the connection (idempotent); a push ends uncleanly (its viewers wait for a successor). */
  close(reason: string): void;
}

/** Bounds for decoding header and command objects from the network. */
const DTMI_LIMITS: DtmiDecodeLimits = { maxDepth: 8, maxValues: 65_536 };
/**
 * Bytes queued to a peer above which a command reply is not queued but the connection dropped;
 * above what a puller's start can queue (feed.ts keeps a GOP of up to 64 MiB).
 */
const MAX_UNREAD_REPLY_BYTES = 96 * 1024 * 1024;
/** A closing socket that does not finish sending its last bytes within this is destroyed. */
const END_GRACE_MS = 2000;

/** Writers of the DTSC feeds, for check_key_duration (wire id -> hub id). */
const feedWriters = new WeakMap<Feed, DtscLiveWriter>();

function peerOf(socket: net.Socket): string {
  const a = socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

function memberText(obj: DtmiObject, key: string): string | number | undefined {
  const n = getNumber(obj, key);
  return n !== undefined ? n : getText(obj, key);
}

/** Serves one accepted dtsc:// connection (TCP or TLS socket). */
export function serveDtscConnection(socket: net.Socket, deps: DtscListenerDeps, opts: DtscListenerOptions = {}): DtscConnection {
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const pingAfterMs = opts.pingAfterMs ?? 2000;
  const pushIdleTimeoutMs = opts.pushIdleTimeoutMs ?? 30_000;
  const maxPacketBytes = opts.maxPacketBytes ?? 32 * 1024 * 1024;
  const maxHeaderBytes = opts.maxHeaderBytes ?? 4 * 1024 * 1024;
  const maxCommandBytes = opts.maxCommandBytes ?? 64 * 1024;
  const maxTracks = opts.maxTracks ?? 64;
  const peer = peerOf(socket);
  let log = deps.log.child({ protocol: 'DTSC', peer });

  let state: DtscConnectionState = 'hello';
  /** An async step (play/push start) is under way: frames wait in the splitter. */
  let busy = false;
  let lastSentAt = Date.now();
  let lastRecvAt = Date.now();
  let viewer: Viewer | undefined;
  let writer: DtscLiveWriter | undefined;
  let playHub: StreamHub | undefined;
  /** Ends a pull's connection for the viewer rules (openPull). */
  let pullEnd: (() => void) | undefined;
  let pub: DtscPublishHandle | undefined;
  /** Tracks a pusher announced, by trackid. */
  const pushed = new Map<number, Track>();
  let ticker: NodeJS.Timeout | undefined;

  const check = (magic: DtscFrameMagic, size: number): void => {
    let max = maxCommandBytes;
    if (magic === 'DTSC') {
      if (state !== 'pushing') throw new HazeError('HAZE_ERR_PROTOCOL', DTSC_TEXT.headNotCleared);
      max = maxHeaderBytes;
    } else if (magic === 'DTP2' || magic === 'DTPD') {
      if (state !== 'pushing') throw new HazeError('HAZE_ERR_PROTOCOL', DTSC_TEXT.dataNotCleared);
      max = maxPacketBytes;
    }
    if (size > max) throw new HazeError('HAZE_ERR_TOO_LARGE', `DTSC: ${magic} frame of ${size} bytes exceeds ${max}`);
  };
  const splitter = new DtscFrameSplitter(check);

  const write = (b: Buffer): void => {
    if (socket.destroyed || socket.writableEnded) return;
    lastSentAt = Date.now();
    socket.write(b);
  };

  /** Commands go behind the packets already queued for a puller, straight out otherwise. */
  const sendCmd = (cmd: Record<string, unknown>): void => {
    // replies are not skippable like packets: a peer that asks (pings) without reading is cut off
    if (socket.writableLength > MAX_UNREAD_REPLY_BYTES) {
      finish(`peer does not read (${socket.writableLength} bytes queued)`, { abort: true });
      return;
    }
    const b = encodeDtcm(cmd);
    if (viewer && !viewer.isClosed) {
      viewer.sendControl(b);
      viewer.flush();
    } else write(b);
  };

  const finish = (reason: string, how: { clean?: boolean; errorMsg?: string; abort?: boolean } = {}): void => {
    if (state === 'closed') return;
    const was = state;
    state = 'closed';
    clearTimeout(handshakeTimer);
    if (ticker) clearInterval(ticker);
    socket.removeListener('data', onData);
    // the puller's queued packets first, then the error
    viewer?.close(reason);
    pullEnd?.();
    if (how.errorMsg !== undefined) write(encodeDtcm({ cmd: 'error', msg: how.errorMsg }));
    pub?.end(reason, how.clean ?? false);
    if (how.abort) socket.destroy();
    else if (!socket.destroyed) {
      socket.end();
      setTimeout(() => socket.destroy(), END_GRACE_MS).unref();
    }
    const line = `${was === 'pushing' ? 'push' : was === 'playing' ? 'pull' : 'connection'} ended: ${reason}`;
    if (how.errorMsg !== undefined || how.abort) log.warn(line);
    else log.info(line);
  };

  /** Ends the connection for a protocol violation or refusal: error command, log line, close. */
  const fail = (reason: string, clientMsg: string): void => finish(reason, { errorMsg: clientMsg });

  const handshakeTimer = setTimeout(() => {
    if (state === 'hello') fail(`no play or push within ${handshakeTimeoutMs} ms`, 'Handshake timeout');
  }, handshakeTimeoutMs);
  handshakeTimer.unref();

  const startTicker = (): void => {
    const everyMs = Math.max(50, Math.min(1000, pingAfterMs / 2, pushIdleTimeoutMs / 4));
    ticker = setInterval(() => {
      const now = Date.now();
      if (state === 'playing' && now - lastSentAt >= pingAfterMs) sendCmd({ cmd: 'ping' });
      else if (state === 'pushing' && now - lastRecvAt >= pushIdleTimeoutMs) finish(`no data for ${pushIdleTimeoutMs} ms`, { abort: true });
    }, everyMs);
    ticker.unref();
  };

  // ---------------------------------------------------------------------------------------------
  // Pull

  const startPlay = (cmd: DtmiObject): void => {
    const raw = getText(cmd, 'stream') ?? '';
    const name = sanitizeStreamName(raw);
    if (!name) {
      fail(`play of invalid stream name ${JSON.stringify(raw)}`, `Stream not found: ${raw}`);
      return;
    }
    const query = playSelector((k) => memberText(cmd, k));
    state = 'starting';
    busy = true;
    log = log.child({ stream: name });
    const local = `${socket.localAddress ?? ''}`.replace(/^::ffff:(?=\d+\.)/, '');
    const requestUrl = `dtsc://${local.includes(':') ? `[${local}]` : local}:${socket.localPort ?? ''}/${raw}`;
    const opened = deps.openPull
      ? deps.openPull(name, peer, requestUrl, () => ({ down: socket.bytesWritten, up: socket.bytesRead }))
      : deps.forViewer(name).then((hub) => ({ hub, end: () => {} }));
    opened.then(
      ({ hub, end }) => {
        if (state === 'closed') {
          end();
          return;
        }
        pullEnd = end;
        attachViewer(hub, query);
        busy = false;
        pump();
      },
      (err: unknown) => fail(`play of ${name} refused: ${errorText(err)}`, isHazeError(err) ? err.message : `Stream ${name} is not available`),
    );
  };

  const attachViewer = (hub: StreamHub, query: ReturnType<typeof playSelector>): void => {
    state = 'playing';
    clearTimeout(handshakeTimer);
    playHub = hub;
    let made: DtscLiveWriter | undefined;
    const feed = getFeed(hub, 'DTSC', selectionKey(query), () => {
      made = new DtscLiveWriter(hub);
      return { writer: made, select: dtscSelect(query) };
    });
    if (made) feedWriters.set(feed, made);
    writer = feedWriters.get(feed);
    const sink: ByteSink = {
      write: (b) => {
        write(b);
        return !socket.writableNeedDrain;
      },
      writev: (chunks) => {
        socket.cork();
        for (const c of chunks) write(c);
        socket.uncork();
      },
      get writableLength() {
        return socket.writableLength;
      },
      close: (reason) => finish(reason, { abort: reason.startsWith('too slow'), clean: true }),
    };
    viewer = new Viewer(sink, opts.viewerPolicy ?? DEFAULT_VIEWER_POLICY);
    log.info(`pull of ${hub.name} started`);
    feed.add(viewer);
    startTicker();
  };

  const checkKeyDuration = (cmd: DtmiObject): void => {
    const wireId = getNumber(cmd, 'id') ?? -1;
    const askedMs = getNumber(cmd, 'duration') ?? 0;
    const hubId = writer?.hubTrackIdOf(wireId);
    if (!playHub || hubId === undefined) {
      log.warn(`cannot check key duration ${askedMs} for track ${wireId}: not valid`);
      return;
    }
    const longest = longestKeyMs(playHub.packetsFromTime(playHub.firstMs), hubId);
    // Fewer than two keys buffered: nothing to compare with (MistServer would compare with 0
    // and disconnect every puller of a young stream).
    if (longest !== undefined && keyDurationMismatch(longest, askedMs)) fail(`key duration mismatch on track ${wireId}`, keyMismatchText(peer, longest, askedMs));
    else sendCmd({ cmd: 'ok', msg: DTSC_TEXT.keyMatches });
  };

  // ---------------------------------------------------------------------------------------------
  // Push

  const startPush = (cmd: DtmiObject): void => {
    const raw = getText(cmd, 'stream') ?? '';
    const name = sanitizeStreamName(raw);
    const password = getText(cmd, 'password') ?? '';
    // a stream key or a JWT is not a stream name: the checks map it when they know how
    if (!name && !(deps.pushLabel && raw)) {
      fail(`push to invalid stream name ${JSON.stringify(raw.slice(0, 120))}`, DTSC_TEXT.pushRefused);
      return;
    }
    const label = deps.pushLabel?.(raw) ?? name;
    state = 'starting';
    busy = true;
    deps.startPush(name, password, peer, raw).then(
      (handle) => {
        if (state === 'closed') {
          handle.end('connection closed', false);
          return;
        }
        pub = handle;
        state = 'pushing';
        clearTimeout(handshakeTimer);
        log = log.child({ stream: handle.stream ?? name });
        log.info(`push to ${handle.stream ?? name} accepted${handle.stream && handle.stream !== name ? ` (${label})` : ''}`);
        sendCmd({ cmd: 'ok', msg: DTSC_TEXT.cleared });
        startTicker();
        busy = false;
        pump();
      },
      (err: unknown) => fail(`push to ${label} refused: ${errorText(err)}`, DTSC_TEXT.pushRefused),
    );
  };

  const onPushHeader = (header: DtmiObject): void => {
    const meta = parseDtscHeader(header);
    const prev = pushed.size;
    for (const t of meta.tracks) {
      if (pushed.has(t.id)) continue; // MistServer keeps a track it already has
      if (pushed.size >= maxTracks) {
        fail(`push announced more than ${maxTracks} tracks`, `Too many tracks (more than ${maxTracks})`);
        return;
      }
      const track = plainTrack(t);
      pushed.set(t.id, track);
      pub!.hub.setTrack(track);
    }
    if (meta.unixzeroMs !== undefined) pub!.hub.setUnixZero(meta.unixzeroMs);
    sendCmd({ cmd: 'ok', msg: headParsedText(prev, pushed.size) });
  };

  const onPushPacket = (packet: Packet): void => {
    const track = pushed.get(packet.trackId);
    if (!track) {
      fail(`packet for unannounced track ${packet.trackId}`, DTSC_TEXT.unannounced);
      return;
    }
    // Haze's media model has every audio (and meta) frame as a keyframe, which the hub needs
    // to bring a track online; MistServer's VoD-sourced packets carry no flag on audio.
    if (!packet.keyframe && track.type !== 'video') packet.keyframe = true;
    pub!.hub.push(packet);
  };

  // ---------------------------------------------------------------------------------------------
  // Frames

  const onCommand = (cmd: DtmiObject): void => {
    const name = getText(cmd, 'cmd') ?? '';
    switch (name) {
      case 'play':
      case 'push':
        if (state !== 'hello') {
          fail(`${name} while ${state === 'pushing' ? 'pushing' : 'playing'}`, `Unexpected ${name} command: already ${state === 'pushing' ? 'pushing' : 'playing'}`);
          return;
        }
        if (name === 'play') startPlay(cmd);
        else startPush(cmd);
        return;
      case 'ping':
        sendCmd({ cmd: 'ok', msg: DTSC_TEXT.pong });
        return;
      case 'ok':
      case 'hi':
        log.debug(`peer ${name}: ${getText(cmd, 'msg') ?? getText(cmd, 'version') ?? ''}`);
        return;
      case 'error':
        log.warn(`peer error: ${getText(cmd, 'msg') ?? ''}`);
        return;
      case 'reset':
        sendCmd({ cmd: 'ok', msg: DTSC_TEXT.reset });
        // the puller dropped its metadata: it gets the header again before more packets
        if (viewer && writer && !viewer.isClosed) {
          viewer.sendControl(writer.header());
          viewer.flush();
        }
        return;
      case 'check_key_duration':
        if (state === 'playing') checkKeyDuration(cmd);
        return;
      default:
        log.debug(`unhandled DTCM command ${JSON.stringify(name)}`);
    }
  };

  const handleFrame = (raw: Buffer): void => {
    const frame = decodeFrame(raw, DTMI_LIMITS);
    if (frame.kind === 'command') onCommand(frame.command);
    else if (frame.kind === 'header') onPushHeader(frame.header);
    else onPushPacket(frame.packet);
  };

  /** Handles the frames received, one at a time, until one starts an async step. */
  const pump = (): void => {
    while (state !== 'closed' && !busy) {
      let raw: Buffer | undefined;
      try {
        raw = splitter.next();
        if (raw === undefined) break;
        handleFrame(raw);
      } catch (err) {
        const protocol = isHazeError(err) && err.code === 'HAZE_ERR_PROTOCOL';
        const unknown = isHazeError(err) && err.message.startsWith('DTSC: unknown frame magic');
        fail(errorText(err), protocol ? err.message : unknown ? DTSC_INVALID_HEADER_TEXT : `Invalid data: ${errorText(err)}`);
        return;
      }
    }
    if (state === 'closed') return;
    if (busy) socket.pause();
    else socket.resume();
  };

  const onData = (chunk: Buffer): void => {
    lastRecvAt = Date.now();
    try {
      splitter.append(chunk);
    } catch (err) {
      fail(errorText(err), `Invalid data: ${errorText(err)}`);
      return;
    }
    pump();
  };

  socket.on('data', onData);
  // A pusher that closes its side is done (DTSC has no unpublish message): a clean end.
  socket.on('end', () => finish('client closed the connection', { clean: true }));
  socket.on('error', (err) => finish(err.message, { abort: true }));
  socket.on('close', () => finish('connection closed', { abort: true }));
  write(hiCommand());

  return {
    get state() {
      return state;
    },
    close: (reason) => finish(reason),
  };
}
