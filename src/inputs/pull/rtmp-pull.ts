// rtmp:// and rtmps:// pulls (MistServer has no RTMP pull input: issue #55 there; reference
// §5.2): Haze plays the stream from another RTMP server with its RTMP client (protocols/rtmp/
// client.ts: connect, createStream, play) and demuxes the audio/video/data messages as an RTMP
// publisher's are (inputs/flv-publisher.ts). The source URL is `rtmp[s]://host[:port]/app/name`.
//
// The connection ends, and the pull connects again with backoff, when the server closes it or
// says the stream stopped (NetStream.Play.UnpublishNotify / Stop / Complete): a publisher that
// comes back to that server starts a new timeline there, which the reconnect continues here.

import { parseRtmpUrl, RtmpClient, type RtmpClientMedia, type RtmpClientStatus } from '../../protocols/rtmp/client.js';
import { HazeError, errorText, isHazeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { TrackedConnection } from '../../stats/tracker.js';
import { FlvPublisher } from '../flv-publisher.js';
import { trackPullConnection } from './pull-common.js';
import { reconnectingPull, type PullConnection, type PullContext, type PullKind, type PullSink } from './pull-input.js';

/** onStatus codes after which the server sends nothing more on this play. */
const STOP_CODES = new Set(['NetStream.Play.UnpublishNotify', 'NetStream.Play.Stop', 'NetStream.Play.Complete']);

export interface RtmpPullOptions {
  log: Logger;
  track?(host: string, bytes: () => { down: number; up: number }): TrackedConnection;
  /** Time for each step of connect and play (default 10 s). */
  stepTimeoutMs?: number;
  /** A server that sends nothing this long is taken as gone (default 20 s). */
  idleTimeoutMs?: number;
}

/** Plays `url` into `sink`; resolves on NetStream.Play.Start. Failures are HazeErrors that are not fatal (the pull retries). */
export async function connectRtmp(url: string, sink: PullSink, opts: RtmpPullOptions): Promise<PullConnection> {
  const u = parseRtmpUrl(url);
  const idleTimeoutMs = opts.idleTimeoutMs ?? 20_000;
  const client = new RtmpClient({ timeoutMs: opts.stepTimeoutMs ?? 10_000, log: opts.log });
  const publisher = new FlvPublisher(sink);
  let tracked: TrackedConnection | undefined;
  let lastDataAt = Date.now();
  let settle: { resolve(why: string): void; reject(err: Error): void } | undefined;
  let ended: { reason: string; failed: boolean } | undefined;
  const done = new Promise<string>((resolve, reject) => (settle = { resolve, reject }));
  done.catch(() => undefined);
  let idleTimer: NodeJS.Timeout | undefined;

  const end = (reason: string, failed: boolean): void => {
    if (ended) return;
    ended = { reason, failed };
    if (idleTimer) clearInterval(idleTimer);
    tracked?.end();
    client.destroy(reason);
    if (failed) settle!.reject(new HazeError('HAZE_ERR_CLOSED', reason, { fatal: false }));
    else settle!.resolve(reason);
  };
  client.on('media', (m: RtmpClientMedia) => {
    lastDataAt = Date.now();
    if (ended) return;
    try {
      publisher.message(m.typeId, m.timestamp, m.body);
    } catch (err) {
      // one bad message ends this connection (the pull connects again), never the process
      opts.log.warn(`${url}: ${errorText(err)}`);
      end(errorText(err), true);
    }
  });
  client.on('status', (s: RtmpClientStatus) => {
    if (STOP_CODES.has(s.code)) end(`${s.code}${s.description ? `: ${s.description}` : ''}`, false);
  });
  client.on('close', (reason: string) => end(reason, false));

  try {
    await client.connect(url);
    tracked = opts.track?.(u.host, () => ({ down: 0, up: client.receivedBytes }));
    await client.play();
  } catch (err) {
    end(errorText(err), true);
    // the pull retries (a wrong URL gives up after the framework's initial attempts)
    throw isHazeError(err) && !err.fatal ? err : new HazeError(isHazeError(err) ? err.code : 'HAZE_ERR_CLOSED', `${url}: ${err instanceof Error ? err.message : String(err)}`, { fatal: false });
  }
  if (ended) throw new HazeError('HAZE_ERR_CLOSED', `${url}: ${ended.reason}`, { fatal: false });
  idleTimer = setInterval(() => {
    if (Date.now() - lastDataAt > idleTimeoutMs) end(`server sent nothing for ${idleTimeoutMs} ms`, true);
  }, Math.max(100, Math.min(1000, idleTimeoutMs / 4)));
  idleTimer.unref();
  return { done, close: () => end('closed', false) };
}

export const rtmpPull: PullKind = {
  name: 'RTMP',
  accepts: (source) => /^rtmps?:\/\//i.test(source),
  start(ctx: PullContext) {
    try {
      parseRtmpUrl(ctx.source);
    } catch (err) {
      ctx.aborted('BAD_SOURCE', errorText(err));
      return { stop: () => {} };
    }
    return reconnectingPull(ctx, (sink) => connectRtmp(ctx.source, sink, { log: ctx.log, track: (host, bytes) => trackPullConnection(ctx, 'INPUT:RTMP', host, bytes) }), { minDelayMs: 500, maxDelayMs: 15_000 });
  },
};
