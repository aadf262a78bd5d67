// DTSC over a socket between Haze processes (DESIGN §3): a worker's control socket serves
// `play` (a DTSC header, then DTP2 packets from the newest keyframe on, a new header whenever
// the tracks change) and `status`; another worker plays from it into a local relay hub, so
// its N viewers cost one copy. Framing and commands follow reference §2.6 (DTCM commands, `hi`
// on accept); over TCP the same code is the origin-edge `dtsc://` relay. Between workers two
// commands of Haze's own keep the segmented outputs identical everywhere: `clock` (the source's
// wall clock of media time 0) before the first packet, and `fragment` (the segment start mark of the
// packet that follows).
//
// `push` (a stream with `"multi_input": true` whose publisher connected to another worker than
// the stream's host): the publisher's worker sends `{"cmd":"push","stream":S}`, a DTSC header
// whenever its tracks change and DTP2 packets with the publisher's own track ids and times; the
// host merges them into the stream (inputs/multi-input.ts). `{"cmd":"end","msg":M,"clean":1}`
// before the close is a publisher that unpublished; a close without it one that was lost. The
// host answers `ok`, or `error` and closes when it refuses or lets go (`"shutdown":1`: the
// stream was shut down, disconnect the publisher; else place it anew).

import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { getNumber, getText } from '../../containers/dtsc/dtmi.js';
import { DtscFrameReader, encodeDtcm, encodeDtp2 } from '../../containers/dtsc/packets.js';
import { plainTrack, readDtscHeader, writeDtscHeader, type DtscTrack } from '../../containers/dtsc/header.js';
import type { HubListener, StreamHub } from '../../hub/stream-hub.js';
import type { FragmentMark, Packet, Track } from '../../media/types.js';
import { errorText } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { HAZE_VERSION } from '../../util/version.js';

/** A relay consumer further behind than this is cut off (it is local, so it is stuck). */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;
/** Largest frame a control connection takes: a pushed keyframe of a high-rate publisher must fit. */
const MAX_FRAME_BYTES = 32 * 1024 * 1024;

/** A forwarded publisher the host admitted (HubManager.acceptForwarded): its input hub and how it ends. */
export interface ForwardedInput {
  hub: StreamHub;
  end(reason: string, clean: boolean): void;
  /**
   * Read when the input hub ends on the host's side: true when the host shut the stream down
   * (its publishers are to be disconnected), false when it only let go (stopping: place it anew).
   */
  readonly shutDown: boolean;
}

export interface DtscServeOptions {
  /** The local source hub of a stream, or undefined. */
  resolve(stream: string): StreamHub | undefined;
  /** Answer to `{"cmd":"status"}`: any JSON. */
  status(): unknown;
  /** Answer to `{"cmd":"control","data":JSON}` (the controller's commands; worker-control.ts). */
  control?(request: unknown): Promise<unknown>;
  /** A `push` of a publisher connected to another worker; throws a HazeError to refuse it. */
  push?(stream: string): ForwardedInput;
  log: Logger;
}

function headerFrame(tracks: readonly Track[]): Buffer {
  const dtscTracks = tracks.map((t): DtscTrack => ({ ...t, firstMs: 0, lastMs: 0, maxBps: t.bps }));
  return writeDtscHeader({ live: true, vod: false, tracks: dtscTracks }, { withIndex: false });
}

/**
 * Applies a DTSC header to a hub fed over a socket: tracks it no longer lists go, the others
 * are set (the hub ignores unchanged ones). Returns the new track map.
 */
function applyHeader(raw: Buffer, hub: StreamHub, known: ReadonlyMap<number, Track>): Map<number, Track> {
  const next = new Map<number, Track>(readDtscHeader(raw).tracks.map((t) => [t.id, plainTrack(t)]));
  for (const id of known.keys()) if (!next.has(id)) hub.removeTrack(id);
  for (const t of next.values()) hub.setTrack(t);
  return next;
}

/** Serves one accepted control/relay connection. */
export function serveDtscSocket(socket: net.Socket, opts: DtscServeOptions): void {
  const reader = new DtscFrameReader({ maxFrameBytes: MAX_FRAME_BYTES });
  let unsubscribe: (() => void) | undefined;
  /** The publisher this connection forwards, once it sent `push`. */
  let pushed: { input: ForwardedInput; known: Map<number, Track> } | undefined;
  const endPush = (reason: string, clean: boolean): void => {
    const p = pushed;
    pushed = undefined;
    p?.input.end(reason, clean);
  };
  const close = (why?: string): void => {
    unsubscribe?.();
    unsubscribe = undefined;
    endPush(why ?? 'connection closed', false);
    if (why) opts.log.debug(`relay connection closed: ${why}`);
    socket.destroy();
  };
  const send = (b: Buffer): void => {
    if (socket.destroyed) return;
    if (socket.writableLength > MAX_QUEUED_BYTES) close('relay consumer too far behind');
    else socket.write(b);
  };
  socket.on('error', () => close());
  socket.on('close', () => close());
  send(encodeDtcm({ cmd: 'hi', pack_method: 2, salt: randomBytes(16).toString('hex'), version: `Haze/${HAZE_VERSION}` }));
  socket.on('data', (chunk: Buffer) => {
    let frames;
    try {
      frames = reader.push(chunk);
    } catch (err) {
      close(errorText(err));
      return;
    }
    for (const f of frames) {
      if (f.kind !== 'command') {
        if (!pushed) continue;
        try {
          if (f.kind === 'header') pushed.known = applyHeader(f.raw, pushed.input.hub, pushed.known);
          else pushed.input.hub.push(f.packet as Packet);
        } catch (err) {
          close(`forwarded publisher: ${errorText(err)}`);
          return;
        }
        continue;
      }
      const cmd = getText(f.command, 'cmd');
      if (cmd === 'push' && opts.push && !pushed && !unsubscribe) {
        const stream = getText(f.command, 'stream') ?? '';
        try {
          const input = opts.push(stream);
          pushed = { input, known: new Map() };
          // the host lets go of it (the stream ended here): the publisher's worker places it anew
          input.hub.on('end', (reason) => {
            if (pushed?.input !== input) return;
            send(encodeDtcm({ cmd: 'error', msg: reason, ...(input.shutDown ? { shutdown: 1 } : {}) }));
            socket.end();
          });
          send(encodeDtcm({ cmd: 'ok', msg: 'push accepted' }));
        } catch (err) {
          send(encodeDtcm({ cmd: 'error', msg: errorText(err) }));
          socket.end();
          return;
        }
      } else if (cmd === 'end' && pushed) {
        endPush(getText(f.command, 'msg') ?? 'publisher ended', getNumber(f.command, 'clean') === 1);
        socket.end();
        return;
      } else if (cmd === 'play') {
        const stream = getText(f.command, 'stream') ?? '';
        const hub = opts.resolve(stream);
        if (!hub || unsubscribe) {
          send(encodeDtcm({ cmd: 'error', msg: hub ? 'already playing' : `Stream not found: ${stream}` }));
          socket.end();
          return;
        }
        send(headerFrame(hub.tracks));
        let clockSent = false;
        const sendPacket = (p: Packet): void => {
          // the clock is fixed by the source's first packet: it goes before the first one relayed
          if (!clockSent && hub.hasClock) {
            send(encodeDtcm({ cmd: 'clock', unixzero: hub.unixZeroMs }));
            clockSent = true;
          }
          if (p.fragment) send(encodeDtcm({ cmd: 'fragment', index: p.fragment.index, epoch: p.fragment.epoch }));
          send(encodeDtp2(p));
        };
        // `window`: the whole DVR window, then `live` (a new relay hub, so every worker has the
        // same window and lists the same segments); else from the newest keyframe on
        const window = getNumber(f.command, 'window') === 1;
        for (const p of window ? hub.packetsFromTime(hub.firstMs) : hub.packetsFromLatestKey()) sendPacket(p);
        if (window) send(encodeDtcm({ cmd: 'live' }));
        const listener: HubListener = {
          onTracks: (tracks) => send(headerFrame(tracks)),
          onPacket: sendPacket,
          onEnd: (reason) => {
            // `end` (not `error`): the stream itself is over, the relay did not fail
            send(encodeDtcm({ cmd: 'end', msg: reason }));
            socket.end();
          },
        };
        unsubscribe = hub.subscribe(listener);
      } else if (cmd === 'status') {
        send(encodeDtcm({ cmd: 'status', data: JSON.stringify(opts.status()) }));
      } else if (cmd === 'control' && opts.control) {
        let request: unknown;
        try {
          request = JSON.parse(getText(f.command, 'data') ?? 'null');
        } catch {
          request = null;
        }
        opts.control(request).then(
          (answer) => send(encodeDtcm({ cmd: 'control', data: JSON.stringify(answer ?? null) })),
          (err: unknown) => send(encodeDtcm({ cmd: 'control', data: JSON.stringify({ error: errorText(err) }) })),
        );
      } else if (cmd === 'ping') {
        send(encodeDtcm({ cmd: 'ok', msg: 'Pong!' }));
      }
    }
  });
}

/** Plays `stream` from a control socket into `hub`; `onEnd` fires once when the relay stops. */
export function playDtscInto(socketPath: string, stream: string, hub: StreamHub, onEnd: (reason: string, streamEnded: boolean) => void, log: Logger): { close(): void } {
  const socket = net.connect(socketPath);
  const reader = new DtscFrameReader();
  let ended = false;
  let known = new Map<number, Track>();
  let mark: FragmentMark | undefined;
  const finish = (reason: string, streamEnded = false): void => {
    if (ended) return;
    ended = true;
    if (window) hub.setCatchingUp(false);
    socket.destroy();
    onEnd(reason, streamEnded);
  };
  // A new hub nobody watches yet takes the source's whole buffer (held offline until it is
  // in); one with viewers or packets continues from the newest keyframe.
  const window = hub.listenerCount === 0 && hub.lastMs < 0;
  if (window) hub.setCatchingUp(true);
  socket.on('connect', () => socket.write(encodeDtcm({ cmd: 'play', stream, ...(window ? { window: 1 } : {}) })));
  socket.on('error', (err) => finish(err.message));
  socket.on('close', () => finish('connection closed'));
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const f of reader.push(chunk)) {
        if (f.kind === 'header') {
          known = applyHeader(f.raw, hub, known);
        } else if (f.kind === 'packet') {
          const packet = f.packet as Packet;
          if (mark) packet.fragment = mark;
          mark = undefined;
          hub.push(packet);
        } else {
          const cmd = getText(f.command, 'cmd');
          if (cmd === 'error' || cmd === 'end') finish(getText(f.command, 'msg') ?? cmd, cmd === 'end');
          else if (cmd === 'live') hub.setCatchingUp(false);
          else if (cmd === 'clock') hub.setUnixZero(getNumber(f.command, 'unixzero') ?? -1);
          else if (cmd === 'fragment') mark = { index: getNumber(f.command, 'index') ?? 0, epoch: getNumber(f.command, 'epoch') ?? 0 };
        }
      }
    } catch (err) {
      log.warn(`relay of ${stream}: ${errorText(err)}`);
      finish(errorText(err));
    }
  });
  return { close: () => finish('closed') };
}

/**
 * Forwards a publisher's input hub to the worker hosting its stream (the `push` command): the
 * tracks and the newest keyframe on, then every packet as it comes. `onEnd` fires once when the
 * forward stops without `close` being called: the host refused or let go (`shutDown`: it shut
 * the stream down), or the connection broke. `close` ends it; `clean` says the publisher
 * unpublished (the host may end the stream).
 */
export function pushDtscFrom(socketPath: string, stream: string, input: StreamHub, onEnd: (reason: string, shutDown: boolean) => void): { close(reason: string, clean: boolean): void } {
  const socket = net.connect(socketPath);
  const reader = new DtscFrameReader({ maxFrameBytes: 1024 * 1024 });
  let done = false;
  let unsubscribe: (() => void) | undefined;
  const stop = (): void => {
    done = true;
    unsubscribe?.();
    unsubscribe = undefined;
  };
  const fail = (reason: string, shutDown = false): void => {
    if (done) return;
    stop();
    socket.destroy();
    onEnd(reason, shutDown);
  };
  const send = (b: Buffer): void => {
    if (done) return;
    // the host reads a local socket: this far behind, it is stuck
    if (socket.writableLength > MAX_QUEUED_BYTES) fail('the host worker is too far behind');
    else socket.write(b);
  };
  const sendPacket = (p: Packet): void => {
    try {
      send(encodeDtp2(p));
    } catch (err) {
      fail(`cannot forward a packet: ${errorText(err)}`);
    }
  };
  socket.on('error', (err) => fail(err.message));
  socket.on('close', () => fail('connection to the host worker closed'));
  socket.on('data', (chunk: Buffer) => {
    try {
      for (const f of reader.push(chunk)) {
        if (f.kind === 'command' && getText(f.command, 'cmd') === 'error') fail(getText(f.command, 'msg') ?? 'refused', getNumber(f.command, 'shutdown') === 1);
      }
    } catch (err) {
      fail(errorText(err));
    }
  });
  // Written before the connection is up; the socket queues them in order.
  socket.write(encodeDtcm({ cmd: 'push', stream }));
  send(headerFrame(input.tracks));
  for (const p of input.packetsFromLatestKey()) sendPacket(p);
  unsubscribe = input.subscribe({
    onTracks: (tracks) => send(headerFrame(tracks)),
    onPacket: sendPacket,
    onEnd: () => {},
  });
  return {
    close: (reason, clean) => {
      if (done) return;
      stop();
      socket.end(encodeDtcm({ cmd: 'end', msg: reason, ...(clean ? { clean: 1 } : {}) }));
      setTimeout(() => socket.destroy(), 2000).unref();
    },
  };
}

/** Sends one command to a worker's control socket and resolves its answer; undefined on any failure. */
function askWorker(socketPath: string, command: Record<string, unknown>, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    const reader = new DtscFrameReader({ maxFrameBytes: 16 * 1024 * 1024 });
    const done = (v: unknown): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('connect', () => socket.write(encodeDtcm(command)));
    socket.on('error', () => done(undefined));
    socket.on('data', (chunk: Buffer) => {
      try {
        for (const f of reader.push(chunk)) {
          if (f.kind === 'command' && getText(f.command, 'cmd') === command['cmd']) done(JSON.parse(getText(f.command, 'data') ?? 'null'));
        }
      } catch {
        done(undefined);
      }
    });
  });
}

/** Asks a worker's control socket for its status; resolves undefined on any failure. */
export function queryStatus(socketPath: string, timeoutMs = 2000): Promise<unknown> {
  return askWorker(socketPath, { cmd: 'status' }, timeoutMs);
}

/** Sends a controller command (worker-control.ts) to a worker; resolves its answer, undefined on any failure. */
export function controlWorker(socketPath: string, request: unknown, timeoutMs = 5000): Promise<unknown> {
  return askWorker(socketPath, { cmd: 'control', data: JSON.stringify(request) }, timeoutMs);
}
