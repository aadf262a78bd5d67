// MPEG-TS pulled over HTTP (reference/mistserver.md §5.2, the TS input: `http(s)://*.ts` and
// the explicit `http-ts://` / `https-ts://` forms): one GET whose body is a continuous
// transport stream, such as another server's `/NAME.ts`. A connection is one response: it
// starts with a 2xx answer, ends when the body ends (the source's stream ended) or stalls, and
// the pull framework connects again with backoff. Redirects are followed (a balancer or CDN
// answering with the edge to use).

import http from 'node:http';
import https from 'node:https';
import { errorText, HazeError, isHazeError } from '../../util/errors.js';
import { reconnectingPull, type PullConnection, type PullContext, type PullKind, type PullSink, type ReconnectOptions } from './pull-input.js';
import { trackPullConnection } from './pull-common.js';
import { TsPullFeed } from './ts-feed.js';
import { tsHttpUrl } from './ts-source.js';

export interface TsHttpPullOptions {
  /** The response headers must come within this long (default 10 s). */
  connectTimeoutMs?: number;
  /** A body that sends nothing for this long is given up (default 10 s). */
  stallMs?: number;
  /** Backoff of the reconnects (pull-input.ts defaults). */
  reconnect?: ReconnectOptions;
}

const MAX_REDIRECTS = 5;
const USER_AGENT = 'Haze (MPEG-TS pull)';

/** The pull kind of TS-over-HTTP sources. */
export function tsHttpPull(opts: TsHttpPullOptions = {}): PullKind {
  return {
    name: 'TSHTTP',
    accepts: (source) => tsHttpUrl(source) !== undefined,
    start: (ctx) => reconnectingPull(ctx, (sink) => connectTsHttp(ctx, sink, tsHttpUrl(ctx.source)!, opts), opts.reconnect),
  };
}

/** GET with redirects: the response of the final URL (2xx), or a throw saying why not. */
function get(url: string, timeoutMs: number, redirects = 0): Promise<{ req: http.ClientRequest; res: http.IncomingMessage; url: URL }> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.reject(new HazeError('HAZE_ERR_INVALID_ARG', `invalid URL ${url}`));
  }
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(u, { agent: false, headers: { 'User-Agent': USER_AGENT, Accept: 'video/mp2t, */*' } });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(new HazeError('HAZE_ERR_PROTOCOL', `GET ${u.href}: ${errorText(err)}`, { fatal: false }));
    });
    req.once('response', (res) => {
      clearTimeout(timer);
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        req.destroy();
        if (redirects >= MAX_REDIRECTS) {
          reject(new HazeError('HAZE_ERR_PROTOCOL', `GET ${u.href}: more than ${MAX_REDIRECTS} redirects`, { fatal: false }));
          return;
        }
        get(new URL(res.headers.location, u).href, timeoutMs, redirects + 1).then(resolve, reject);
        return;
      }
      if (status < 200 || status >= 300) {
        res.resume();
        req.destroy();
        // 503 (not online yet), 404 (not there yet): the loop retries and gives up after a few
        reject(new HazeError('HAZE_ERR_PROTOCOL', `GET ${u.href}: HTTP ${status}${res.statusMessage ? ` ${res.statusMessage}` : ''}`, { fatal: false }));
        return;
      }
      resolve({ req, res, url: u });
    });
  });
}

async function connectTsHttp(ctx: PullContext, sink: PullSink, url: string, opts: TsHttpPullOptions): Promise<PullConnection> {
  const { req, res, url: final } = await get(url, opts.connectTimeoutMs ?? 10_000);
  const stallMs = opts.stallMs ?? 10_000;
  const feed = new TsPullFeed(sink, ctx.log, `stream ${ctx.name}: ${final.href}`);
  const tracked = trackPullConnection(ctx, 'INPUT:TS', final.hostname.replace(/^\[|\]$/g, ''), () => ({ down: 0, up: feed.bytes }));
  let lastDataMs = Date.now();
  let settled = false;
  let resolveDone!: (why: string) => void;
  let rejectDone!: (err: Error) => void;
  const done = new Promise<string>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const stallTimer = setInterval(
    () => {
      if (Date.now() - lastDataMs >= stallMs) finish(new Error(`no data for ${stallMs / 1000} s`));
    },
    Math.min(1000, stallMs),
  );
  stallTimer.unref();
  const finish = (outcome: string | Error): void => {
    if (settled) return;
    settled = true;
    clearInterval(stallTimer);
    feed.end();
    tracked.end();
    req.destroy();
    if (typeof outcome === 'string') resolveDone(outcome);
    else rejectDone(outcome);
  };
  res.on('data', (chunk: Buffer) => {
    if (settled) return;
    lastDataMs = Date.now();
    try {
      feed.push(chunk);
    } catch (err) {
      // not TS at all (an HTML page, a playlist): this answer is no use
      finish(isHazeError(err) ? err : new Error(`demuxer: ${errorText(err)}`));
    }
  });
  res.once('end', () => finish('the response ended'));
  res.once('error', (err) => finish(err));
  res.once('close', () => finish(new Error('the connection closed')));
  ctx.log.info(`stream ${ctx.name}: receiving MPEG-TS from ${final.href}`);
  return { done, close: () => finish('closed') };
}
