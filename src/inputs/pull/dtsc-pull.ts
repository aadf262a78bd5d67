// dtsc:// pulls (reference/mistserver.md §2.6, §5.2 `dtsc://host[:4200][/stream]`): an edge
// plays a stream from an origin (Haze or MistServer) over TCP, the same DTSC framing as the
// worker-to-worker relay (DESIGN §3; protocols/dtsc/relay.ts) but through the origin's public
// dtsc:// output, which only speaks MistServer's protocol (no relay `window`, `clock` or
// `fragment` commands). The protocol state lives in protocols/dtsc/pull-session.ts; this file
// owns the socket, the statistics session (`INPUT:DTSC`, tagged `replicated`) and the
// reconnects. A stream the origin serves as VoD (header `vod`, not `live`) plays once.

import net from 'node:net';
import { DtscPullSession, dtscPlayCommand } from '../../protocols/dtsc/pull-session.js';
import { HazeError, errorText } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { TrackedConnection } from '../../stats/tracker.js';
import { endablePull, trackPullConnection, type EndPull } from './pull-common.js';
import type { PullConnection, PullContext, PullKind, PullSink, ReconnectOptions } from './pull-input.js';

export const DTSC_DEFAULT_PORT = 4200;

export interface DtscPullUrl {
  host: string;
  port: number;
  /** The origin's stream name (the local stream's name when the URL names none). */
  stream: string;
  /** Query parameters, sent as members of `play` (track selectors `audio=`, `video=` ...). */
  query: [string, string][];
}

/** Reads `dtsc://host[:port][/stream][?query]`; `localName` is the stream asked for when the path is empty. */
export function parseDtscPullUrl(source: string, localName: string): DtscPullUrl {
  let u: URL;
  try {
    u = new URL(source);
  } catch {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `not a URL: ${source}`);
  }
  if (u.protocol !== 'dtsc:') throw new HazeError('HAZE_ERR_INVALID_ARG', `not a dtsc:// URL: ${source}`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new HazeError('HAZE_ERR_INVALID_ARG', `${source}: no host`);
  const path = decodeURIComponent(u.pathname.replace(/^\/+/, ''));
  return { host, port: u.port ? Number(u.port) : DTSC_DEFAULT_PORT, stream: path || localName, query: [...u.searchParams] };
}

export interface DtscConnectOptions {
  log: Logger;
  /** Opens the statistics session of the connection (called once the TCP connection is up). */
  track?(host: string, bytes: () => { down: number; up: number }): TrackedConnection;
  /** The origin ended a VoD stream: the pull is over (not retried). */
  onVodEnd?: EndPull;
  /** Time for the TCP connect plus the origin's first header (default 15 s: an origin waits up to 5 s for its stream). */
  startTimeoutMs?: number;
  /** An origin that sends nothing this long is taken as gone (default 20 s; origins ping after 1-2 s idle). */
  idleTimeoutMs?: number;
}

/**
 * Connects to a dtsc:// origin and plays `url.stream` into `sink`. Resolves once the origin's
 * first header arrived; rejects (a HazeError that is not fatal, so the pull retries) when the
 * connection fails or the origin refuses before that.
 */
export function connectDtsc(url: DtscPullUrl, sink: PullSink, opts: DtscConnectOptions): Promise<PullConnection> {
  const startTimeoutMs = opts.startTimeoutMs ?? 15_000;
  const idleTimeoutMs = opts.idleTimeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: url.host, port: url.port });
    const session = new DtscPullSession(sink);
    let tracked: TrackedConnection | undefined;
    let started = false;
    let finished = false;
    let lastDataAt = Date.now();
    let settleDone: { resolve(why: string): void; reject(err: Error): void } | undefined;
    const done = new Promise<string>((res, rej) => (settleDone = { resolve: res, reject: rej }));
    // nobody may be listening yet when it fails (before `started`): no unhandled rejection
    done.catch(() => undefined);

    const where = `dtsc://${url.host}:${url.port}/${url.stream}`;
    const finish = (reason: string, failed: boolean, byUs = false): void => {
      if (finished) return;
      finished = true;
      clearTimeout(startTimer);
      clearInterval(idleTimer);
      socket.destroy();
      tracked?.end();
      if (!started) {
        reject(new HazeError('HAZE_ERR_CLOSED', `${where}: ${reason}`, { fatal: false }));
        return;
      }
      if (failed) settleDone!.reject(new HazeError('HAZE_ERR_CLOSED', reason, { fatal: false }));
      else settleDone!.resolve(reason);
      // a VoD stream that the origin finished is over: the pull ends instead of playing it again
      if (session.vod && !failed && !byUs) opts.onVodEnd?.(`${where}: VoD stream played to its end`);
    };
    const startTimer = setTimeout(() => finish(`no stream header within ${startTimeoutMs} ms`, true), startTimeoutMs);
    startTimer.unref();
    const idleTimer = setInterval(() => {
      if (started && Date.now() - lastDataAt > idleTimeoutMs) finish(`origin sent nothing for ${idleTimeoutMs} ms`, true);
    }, Math.max(100, Math.min(1000, idleTimeoutMs / 4)));
    idleTimer.unref();

    socket.on('connect', () => {
      socket.setNoDelay(true);
      tracked = opts.track?.(url.host, () => ({ down: socket.bytesWritten, up: socket.bytesRead }));
      socket.write(dtscPlayCommand(url.stream, url.query));
    });
    socket.on('data', (chunk: Buffer) => {
      lastDataAt = Date.now();
      try {
        const step = session.push(chunk);
        for (const r of step.replies) socket.write(r);
        if (step.hello !== undefined) opts.log.debug(`${where}: origin ${step.hello}`);
        if (step.started) {
          started = true;
          clearTimeout(startTimer);
          resolve({
            done,
            close: () => finish('closed', false, true),
          });
        }
        if (step.ended) finish(step.ended.error ? `origin: ${step.ended.reason}` : step.ended.reason, step.ended.error);
      } catch (err) {
        opts.log.warn(`${where}: ${errorText(err)}`);
        finish(errorText(err), true);
      }
    });
    socket.on('error', (err) => finish(err.message, true));
    socket.on('close', () => finish('connection closed', false));
  });
}

/** Backoff of dtsc:// pulls: an origin that restarts is back within a second or two. */
const DTSC_RECONNECT: ReconnectOptions = { minDelayMs: 500, maxDelayMs: 15_000 };

export const dtscPull: PullKind = {
  name: 'DTSC',
  accepts: (source) => /^dtsc:\/\//i.test(source),
  start(ctx: PullContext) {
    let url: DtscPullUrl;
    try {
      url = parseDtscPullUrl(ctx.source, ctx.name);
    } catch (err) {
      ctx.aborted('BAD_SOURCE', errorText(err));
      return { stop: () => {} };
    }
    return endablePull(
      ctx,
      (sink, _attempt, end) =>
        connectDtsc(url, sink, {
          log: ctx.log,
          // an edge's stream is a replica: the balancer counts it apart (`rep`)
          track: (host, bytes) => trackPullConnection(ctx, 'INPUT:DTSC', host, bytes, ['replicated']),
          onVodEnd: end,
        }),
      DTSC_RECONNECT,
    );
  },
};
