// SRT in caller mode on a socket of its own (pulls of `srt://host:port` sources, pushes to
// `srt://` targets), and the options an srt:// URL carries, as srt-live-transmit and ffmpeg
// spell them: `mode` (caller, listener), `streamid`, `passphrase`, `pbkeylen` (16, 24, 32),
// `latency` (milliseconds here, as srt-live-transmit reads it; ffmpeg's own option counts
// microseconds), `connect_timeout` / `conntimeo` (ms).

import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import net from 'node:net';
import { HazeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { DEFAULT_LATENCY_MS } from './connection.js';
import { SrtMultiplexer, type SrtSocket } from './multiplexer.js';

export interface SrtUrl {
  /** '' for a listener URL without a host (`srt://:9000`). */
  host: string;
  port: number;
  mode: 'caller' | 'listener';
  streamId: string | undefined;
  passphrase: string | undefined;
  keyLength: 16 | 24 | 32 | undefined;
  latencyMs: number;
  connectTimeoutMs: number;
}

/**
 * Reads an srt:// URL; `extra` holds options given elsewhere (a push target's parameters),
 * which the URL's own query overrides.
 */
export function parseSrtUrl(url: string, extra: Record<string, string> = {}): SrtUrl {
  const m = /^srt:\/\/(\[[^\]]*\]|[^:/?#]*)(?::(\d+))?\/?(?:\?(.*))?$/i.exec(url.trim());
  if (!m) throw new HazeError('HAZE_ERR_INVALID_ARG', `not an srt:// URL: ${url}`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = Number(m[2]);
  if (!m[2] || !Number.isInteger(port) || port < 1 || port > 65535) throw new HazeError('HAZE_ERR_INVALID_ARG', `an srt:// URL needs a port: ${url}`);
  const q: Record<string, string> = { ...extra };
  for (const [k, v] of new URLSearchParams(m[3] ?? '')) q[k] = v;
  const modeText = (q['mode'] ?? (host ? 'caller' : 'listener')).toLowerCase();
  if (modeText !== 'caller' && modeText !== 'listener' && modeText !== 'client' && modeText !== 'server') throw new HazeError('HAZE_ERR_UNSUPPORTED', `SRT mode ${modeText} (caller or listener)`);
  const mode = modeText === 'caller' || modeText === 'client' ? 'caller' : 'listener';
  if (mode === 'caller' && !host) throw new HazeError('HAZE_ERR_INVALID_ARG', `an SRT caller needs a host: ${url}`);
  const pbkeylen = q['pbkeylen'] !== undefined ? Number(q['pbkeylen']) : undefined;
  if (pbkeylen !== undefined && pbkeylen !== 0 && pbkeylen !== 16 && pbkeylen !== 24 && pbkeylen !== 32) throw new HazeError('HAZE_ERR_INVALID_ARG', `pbkeylen ${q['pbkeylen']} (16, 24 or 32)`);
  const latency = q['latency'] !== undefined ? Number(q['latency']) : DEFAULT_LATENCY_MS;
  if (!Number.isFinite(latency) || latency < 0 || latency > 60_000) throw new HazeError('HAZE_ERR_INVALID_ARG', `latency ${q['latency']} (milliseconds)`);
  const timeout = Number(q['connect_timeout'] ?? q['conntimeo'] ?? 3000);
  return {
    host,
    port,
    mode,
    streamId: q['streamid'] || undefined,
    passphrase: q['passphrase'] || undefined,
    keyLength: pbkeylen ? (pbkeylen as 16 | 24 | 32) : undefined,
    latencyMs: Math.round(latency),
    connectTimeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 3000,
  };
}

/** A caller connection and the socket it owns: closing the connection closes the socket. */
export async function srtCall(url: SrtUrl, log: Logger): Promise<SrtSocket> {
  if (url.mode !== 'caller') throw new HazeError('HAZE_ERR_UNSUPPORTED', 'srtCall needs a caller URL');
  const address = net.isIP(url.host) ? url.host : (await dns.lookup(url.host)).address;
  const udp = dgram.createSocket(net.isIP(address) === 6 ? 'udp6' : 'udp4');
  udp.on('error', (err) => log.debug(`SRT caller socket: ${err.message}`));
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(0, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  const mux = new SrtMultiplexer(udp, log);
  const shut = (): void => {
    mux.close('closed');
    // the SHUTDOWN just queued must leave before the socket closes (a close cancels pending sends)
    setTimeout(() => {
      try {
        udp.close();
      } catch {
        // closed already
      }
    }, 200).unref();
  };
  try {
    const socket = await mux.call(address, url.port, {
      latencyMs: url.latencyMs,
      connectTimeoutMs: url.connectTimeoutMs,
      ...(url.streamId ? { streamId: url.streamId } : {}),
      ...(url.passphrase ? { passphrase: url.passphrase } : {}),
      ...(url.keyLength ? { keyLength: url.keyLength } : {}),
    });
    // the socket lives as long as its one connection
    const conn = socket.conn;
    const userClose = (): void => shut();
    const wrapped = conn.onClose;
    conn.onClose = (reason) => {
      wrapped(reason);
      userClose();
    };
    return socket;
  } catch (err) {
    shut();
    throw err;
  }
}

/** A listener waiting for one caller (listener-mode sources, `srt://:PORT`); `cancel` frees the port. */
export interface SrtWaitingListener {
  readonly connected: Promise<SrtSocket>;
  cancel(reason: string): void;
}

/**
 * Binds the URL's port and accepts one caller (with the URL's passphrase, if any); the socket
 * closes when that connection ends or the wait is cancelled.
 */
export function srtListenOnce(url: SrtUrl, log: Logger): SrtWaitingListener {
  let udp: dgram.Socket | undefined;
  let mux: SrtMultiplexer | undefined;
  let settled = false;
  let reject!: (err: Error) => void;
  let resolve!: (s: SrtSocket) => void;
  const connected = new Promise<SrtSocket>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const shut = (): void => {
    mux?.close('closed');
    const u = udp;
    udp = undefined;
    setTimeout(() => {
      try {
        u?.close();
      } catch {
        // closed already
      }
    }, 200).unref();
  };
  const host = url.host || '::';
  const socket = net.isIP(host) === 4 ? dgram.createSocket('udp4') : dgram.createSocket({ type: 'udp6', ipv6Only: false });
  udp = socket;
  socket.once('error', (err) => {
    if (settled) return;
    settled = true;
    shut();
    reject(new HazeError('HAZE_ERR_INVALID_ARG', `cannot listen on UDP ${host}:${url.port}: ${err.message}`));
  });
  socket.bind(url.port, host, () => {
    socket.on('error', (err) => log.debug(`SRT listener socket: ${err.message}`));
    mux = new SrtMultiplexer(socket, log, {
      latencyMs: url.latencyMs,
      passphraseFor: () => url.passphrase,
      onRefused: (address, port, _sid, why) => log.warn(`SRT caller ${address}:${port} refused: ${why}`),
      onConnection: (s) => {
        if (settled) {
          s.close('this source takes one caller');
          return;
        }
        settled = true;
        // one caller per source: later ones are refused at the handshake
        mux?.setListener(undefined);
        const wrapped = s.conn.onClose;
        s.conn.onClose = (reason) => {
          wrapped(reason);
          shut();
        };
        resolve(s);
      },
    });
  });
  return {
    connected,
    cancel: (reason) => {
      if (!settled) {
        settled = true;
        reject(new HazeError('HAZE_ERR_CLOSED', reason, { fatal: false }));
      }
      shut();
    },
  };
}
