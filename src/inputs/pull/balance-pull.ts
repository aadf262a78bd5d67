// `balance:` sources (MistServer's form `balance:http://LB:8042[?fallback=SOURCE]`): an edge
// asks the load balancer (`haze balance`, docs/balancer.md) which origin has the stream, with
// `GET /?source=<stream>&exclude=<this server>`, and plays the `dtsc://HOST:PORT` it answers
// with the dtsc:// pull's connection (dtsc-pull.ts connectDtsc). Every connect asks again, so a
// dropped or refused origin is replaced by another one (failover) with the reconnecting pull's
// backoff; so is an origin that sends no media for 3 s (its publisher left: it would hold the
// connection open waiting for it). A balancer that is unreachable or answers no dtsc:// URL (`FULL`) is a failed
// connect; the `?fallback=` source (a dtsc:// URL) is then played for that attempt.
//
// This server's name for `exclude`: the effective config the controller writes for the workers
// (run/effective.json) holds `effective_ports.controller` (the API port of this run, flags
// included) and `config.controller.interface`; the balancer names servers HOST:APIPORT the way
// it polls them, so a wildcard interface is named 127.0.0.1 (see selfServerName).
//
// The parsing is pure (parseBalanceSource, balancerSourceUrl, parseBalancerAnswer,
// selfServerName) and fuzzed (test/unit/balance-pull-fuzz.test.ts).

import { HazeError, errorText } from '../../util/errors.js';
import { connectDtsc, parseDtscPullUrl, type DtscPullUrl } from './dtsc-pull.js';
import { endablePull, trackPullConnection } from './pull-common.js';
import type { PullContext, PullKind, PullSink, ReconnectOptions } from './pull-input.js';

export interface BalanceSource {
  /** The balancer's base URL (`http://LB:8042/`), without the query. */
  balancer: string;
  /** The query variables of the source other than `fallback` (passed on to the balancer: `tag_adjust`, `lat` ...). */
  query: [string, string][];
  /** The dtsc:// source played when the balancer has none. */
  fallback?: string;
}

/** Reads `balance:http(s)://HOST[:PORT][/path][?fallback=dtsc://...&...]`. Throws a HazeError. */
export function parseBalanceSource(source: string): BalanceSource {
  const m = /^balance:(.*)$/is.exec(source);
  if (!m) throw new HazeError('HAZE_ERR_INVALID_ARG', 'not a balance: source');
  let u: URL;
  try {
    u = new URL(m[1]!);
  } catch {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `balance: not followed by a URL: ${source.slice(0, 200)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new HazeError('HAZE_ERR_INVALID_ARG', `balance: needs an http:// balancer URL: ${source.slice(0, 200)}`);
  if (!u.hostname) throw new HazeError('HAZE_ERR_INVALID_ARG', 'balance: URL without host');
  const query: [string, string][] = [];
  let fallback: string | undefined;
  for (const [k, v] of u.searchParams) {
    if (k === 'fallback') fallback = v;
    // source, exclude and port are this pull's to set
    else if (k !== 'source' && k !== 'exclude' && k !== 'port') query.push([k, v]);
  }
  if (fallback !== undefined) {
    if (fallback === '') fallback = undefined;
    else if (!/^dtsc:\/\//i.test(fallback)) throw new HazeError('HAZE_ERR_INVALID_ARG', `balance: ?fallback= must be a dtsc:// URL: ${fallback.slice(0, 200)}`);
    // checked now, so a bad fallback is a bad source at start, not a surprise at the first outage
    else parseDtscPullUrl(fallback, 'x');
  }
  u.search = '';
  u.hash = '';
  return { balancer: u.toString(), query, ...(fallback !== undefined ? { fallback } : {}) };
}

/** The `?source=` request for `stream`, excluding `self` (HOST:APIPORT) when known. */
export function balancerSourceUrl(src: BalanceSource, stream: string, self: string | undefined): string {
  const u = new URL(src.balancer);
  u.searchParams.set('source', stream);
  if (self) u.searchParams.set('exclude', self);
  for (const [k, v] of src.query) u.searchParams.append(k, v);
  return u.toString();
}

/** The balancer's answer: a dtsc:// origin, or why there is none (`FULL`, an error text). */
export type BalancerAnswer = { url: DtscPullUrl; text: string } | { none: string };

/** Reads a `?source=` answer; `stream` is the local stream's name (the origin's, as the answer names none). */
export function parseBalancerAnswer(text: string, stream: string): BalancerAnswer {
  const t = text.trim();
  // the answer goes to the log: one short printable line
  const printable = (s: string): string => s.slice(0, 200).replace(/[^\x20-\x7e]/g, '?');
  if (!/^dtsc:\/\//i.test(t)) return { none: printable(t) || '(empty answer)' };
  try {
    return { url: parseDtscPullUrl(t, stream), text: printable(t) };
  } catch (err) {
    return { none: printable(`${t.slice(0, 100)}: ${errorText(err)}`) };
  }
}

/** This server as the balancer names it, HOST:APIPORT, from the effective config (undefined: unknown). */
export function selfServerName(effective: unknown): string | undefined {
  if (typeof effective !== 'object' || effective === null) return undefined;
  const e = effective as { effective_ports?: unknown; config?: unknown };
  const ports = e.effective_ports as Record<string, unknown> | undefined;
  const controller = (e.config as { controller?: { port?: unknown; interface?: unknown } } | undefined)?.controller;
  const port = Number(ports?.['controller'] ?? controller?.port ?? 4242);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const iface = typeof controller?.interface === 'string' ? controller.interface.trim() : '';
  // a wildcard address is not a name: the balancer reaches such a server as 127.0.0.1 (same host)
  // or by its own address; 127.0.0.1 is right for one machine, `?exclude=` by address otherwise
  // needs the interface set
  const host = iface === '' || iface === '0.0.0.0' || iface === '::' || iface === '[::]' ? '127.0.0.1' : iface;
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** How long a `?source=` request may take, and the most of its answer read. */
const ASK_TIMEOUT_MS = 4000;
const ANSWER_MAX = 4096;

/** Asks the balancer; resolves with its answer (a fetch failure is a `none`). */
async function askBalancer(url: string): Promise<string> {
  const res = await fetch(url, { signal: AbortSignal.timeout(ASK_TIMEOUT_MS) });
  if (!res.ok) {
    await res.body?.cancel();
    throw new HazeError('HAZE_ERR_CLOSED', `balancer answered HTTP ${res.status}`, { fatal: false });
  }
  // bounded: an answer is one short line
  let text = '';
  const reader = res.body?.getReader();
  if (!reader) return '';
  const dec = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    if (text.length > ANSWER_MAX) {
      await reader.cancel();
      break;
    }
  }
  return text.slice(0, ANSWER_MAX);
}

/** An origin that sends no media this long is left for the balancer's next choice (its publisher is gone). */
const MEDIA_GAP_MS = 3000;

/** Backoff: the dtsc:// pull's (an origin is back or replaced within a second or two). */
const BALANCE_RECONNECT: ReconnectOptions = { minDelayMs: 500, maxDelayMs: 15_000, maxInitialFailures: 5 };

/** The `balance:` pull kind; `self` names this server (HOST:APIPORT) for the balancer's self-exclusion. */
export function balancePull(self: () => string | undefined): PullKind {
  return {
    name: 'BALANCE',
    accepts: (source) => /^balance:/i.test(source),
    start(ctx: PullContext) {
      let src: BalanceSource;
      try {
        src = parseBalanceSource(ctx.source);
      } catch (err) {
        ctx.aborted('BAD_SOURCE', errorText(err));
        return { stop: () => {} };
      }
      /** The origin for this attempt: the balancer's choice, else the fallback, else a failed connect. */
      const resolve = async (): Promise<DtscPullUrl> => {
        const ask = balancerSourceUrl(src, ctx.name, self());
        let why: string;
        try {
          const answer = parseBalancerAnswer(await askBalancer(ask), ctx.name);
          if ('url' in answer) {
            ctx.log.info(`stream ${ctx.name}: balancer chose ${answer.text}`);
            return answer.url;
          }
          why = `balancer has no origin: ${answer.none}`;
        } catch (err) {
          why = `balancer ${src.balancer} unreachable: ${errorText(err)}`;
        }
        if (src.fallback !== undefined) {
          ctx.log.info(`stream ${ctx.name}: ${why}; playing the fallback ${src.fallback}`);
          return parseDtscPullUrl(src.fallback, ctx.name);
        }
        throw new HazeError('HAZE_ERR_CLOSED', why, { fatal: false });
      };
      return endablePull(
        ctx,
        async (sink, _attempt, end) => {
          const origin = await resolve();
          let lastMediaAt = Date.now();
          const watched: PullSink = {
            setTrack: (t) => sink.setTrack(t),
            removeTrack: (id) => sink.removeTrack(id),
            push: (p) => {
              lastMediaAt = Date.now();
              sink.push(p);
            },
          };
          const conn = await connectDtsc(origin, watched, {
            log: ctx.log,
            // the same statistics session as a dtsc:// pull: the stream is a replica (`rep`)
            track: (host, bytes) => trackPullConnection(ctx, 'INPUT:DTSC', host, bytes, ['replicated']),
            onVodEnd: end,
          });
          // an origin whose publisher left keeps the connection open (pings, waiting for it to
          // come back): no media for a while means asking the balancer again, which knows
          // whether another origin has the stream now
          lastMediaAt = Date.now();
          const watchdog = setInterval(() => {
            if (Date.now() - lastMediaAt <= MEDIA_GAP_MS) return;
            ctx.log.warn(`stream ${ctx.name}: no media from dtsc://${origin.host}:${origin.port} for ${MEDIA_GAP_MS} ms; asking the balancer again`);
            clearInterval(watchdog);
            conn.close();
          }, 250);
          watchdog.unref();
          conn.done.then(
            () => clearInterval(watchdog),
            () => clearInterval(watchdog),
          );
          return conn;
        },
        BALANCE_RECONNECT,
      );
    },
  };
}
