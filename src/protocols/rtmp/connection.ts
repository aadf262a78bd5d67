// The thin socket adapter around RtmpServerSession: wires socket events to the sans-I/O
// session, enforces the timeouts, closes with one log line. All protocol logic lives in
// server-session.ts.
//
// Timeouts: the handshake must complete within 10 s; a publisher (or a connection that has
// not started to publish or play) silent for 30 s is dropped. Players are not timed out
// here: they may legitimately send nothing for a long time, and a stuck player is the hub's
// slow-reader policy to judge (RtmpPlayOutput.writableLength / onDrain).

import type { Socket } from 'node:net';
import { errorText } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { RtmpServerSession, type RtmpServerSessionOptions, type RtmpSessionHandler } from './server-session.js';

export interface RtmpConnectionOptions {
  handshakeTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** How long a graceful end may take before the socket is destroyed. */
  endGraceMs?: number;
  /** Extra session options (chunk reader bounds, pending publish bytes). */
  session?: Pick<RtmpServerSessionOptions, 'chunkReader' | 'maxPendingPublishBytes' | 'handshake'>;
}

/** The client's address without the IPv4-mapped IPv6 prefix. */
export function peerAddress(socket: Socket): string {
  const a = socket.remoteAddress ?? 'unknown';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** Serves one accepted RTMP connection. Returns the session (for tests and stats). */
export function handleRtmpSocket(socket: Socket, handler: RtmpSessionHandler, log: Logger, opts: RtmpConnectionOptions = {}): RtmpServerSession {
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
  const endGraceMs = opts.endGraceMs ?? 2_000;
  const peer = peerAddress(socket);
  const clog = log.child({ protocol: 'RTMP', peer: `${peer}:${socket.remotePort ?? 0}` });
  socket.setNoDelay(true);

  let lastDataMs = Date.now();
  let done = false;
  let timer: NodeJS.Timeout | null = null;

  const finish = (): void => {
    done = true;
    if (timer) clearTimeout(timer);
    timer = null;
  };

  const session = new RtmpServerSession({
    ...opts.session,
    peer,
    handler,
    log: clog,
    send: (bytes) => (socket.destroyed ? false : socket.write(bytes)),
    writableLength: () => socket.writableLength,
    batch: (fn) => {
      socket.cork();
      try {
        fn();
      } finally {
        socket.uncork();
      }
    },
    onDrain: (fn) => {
      socket.on('drain', fn);
      return () => socket.off('drain', fn);
    },
    onClose: (reason) => {
      clog.info(`closing: ${reason}`);
      finish();
      // Let the last onStatus reach the client, then make sure the socket goes away.
      socket.end();
      setTimeout(() => socket.destroy(), endGraceMs).unref();
    },
  });

  const drop = (reason: string): void => {
    if (done) return;
    clog.warn(`dropping connection: ${reason}`);
    finish();
    session.transportClosed(reason);
    socket.destroy();
  };

  const check = (): void => {
    timer = null;
    if (done) return;
    const now = Date.now();
    if (!session.handshakeDone) {
      drop(`handshake not completed within ${handshakeTimeoutMs} ms`);
      return;
    }
    const phase = session.phase;
    if (phase !== 'playing' && now - lastDataMs >= idleTimeoutMs) {
      drop(`${phase === 'publishing' ? 'publisher' : 'client'} silent for ${idleTimeoutMs} ms`);
      return;
    }
    timer = setTimeout(check, phase === 'playing' ? idleTimeoutMs : Math.max(50, lastDataMs + idleTimeoutMs - now));
  };
  timer = setTimeout(check, handshakeTimeoutMs);

  socket.on('data', (chunk: Buffer) => {
    if (done) return;
    lastDataMs = Date.now();
    const wasHandshaking = !session.handshakeDone;
    try {
      session.receive(chunk);
    } catch (err) {
      drop(errorText(err));
      return;
    }
    if (wasHandshaking && session.handshakeDone && timer) {
      // Handshake finished: switch from the handshake deadline to the idle check.
      clearTimeout(timer);
      timer = setTimeout(check, idleTimeoutMs);
    }
  });
  socket.on('error', (err) => {
    clog.debug(`socket error: ${err.message}`);
  });
  socket.on('close', () => {
    const wasDone = done;
    finish();
    session.transportClosed('connection closed');
    if (!wasDone) clog.debug('connection closed by peer');
  });
  return session;
}
