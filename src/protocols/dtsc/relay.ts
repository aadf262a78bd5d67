// DTSC over a socket between Haze processes (DESIGN §3): a worker's control socket serves
// `play` (a DTSC header, then DTP2 packets from the newest keyframe on, a new header whenever
// the tracks change) and `status`; another worker plays from it into a local relay hub, so
// its N viewers cost one copy. Framing and commands follow reference §2.6 (DTCM commands, `hi`
// on accept); over TCP the same code is the origin-edge `dtsc://` relay. Between workers two
// commands of Haze's own keep the segmented outputs identical everywhere: `clock` (the source's
// wall clock of media time 0) before the first packet, and `fragment` (the segment start mark of the
// packet that follows).

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

export interface DtscServeOptions {
  /** The local source hub of a stream, or undefined. */
  resolve(stream: string): StreamHub | undefined;
  /** Answer to `{"cmd":"status"}`: any JSON. */
  status(): unknown;
  /** Answer to `{"cmd":"control","data":JSON}` (the controller's commands; worker-control.ts). */
  control?(request: unknown): Promise<unknown>;
  log: Logger;
}

function headerFrame(tracks: readonly Track[]): Buffer {
  const dtscTracks = tracks.map((t): DtscTrack => ({ ...t, firstMs: 0, lastMs: 0, maxBps: t.bps }));
  return writeDtscHeader({ live: true, vod: false, tracks: dtscTracks }, { withIndex: false });
}

/** Serves one accepted control/relay connection. */
export function serveDtscSocket(socket: net.Socket, opts: DtscServeOptions): void {
  const reader = new DtscFrameReader({ maxFrameBytes: 1024 * 1024 });
  let unsubscribe: (() => void) | undefined;
  const close = (why?: string): void => {
    unsubscribe?.();
    unsubscribe = undefined;
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
      if (f.kind !== 'command') continue;
      const cmd = getText(f.command, 'cmd');
      if (cmd === 'play') {
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
          const tracks = readDtscHeader(f.raw).tracks;
          const next = new Map<number, Track>(tracks.map((t) => [t.id, plainTrack(t)]));
          for (const id of known.keys()) if (!next.has(id)) hub.removeTrack(id);
          for (const t of next.values()) hub.setTrack(t);
          known = next;
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
