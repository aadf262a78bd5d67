// Pulled sources (reference §5.2, §5.6): a stream whose `source` is a URL or a command that
// Haze fetches itself (rtmp://, rtsp://, srt://, dtsc://, HLS playlists, MPEG-TS over UDP or
// HTTP, ts-exec:). The worker's HubManager starts a pull for a stream's first viewer (or at
// once when `always_on`) and stops it after the input timeout; this module is what every
// kind shares: the registry the worker asks which kind takes a source, and the reconnect loop
// that keeps a pull going when its source drops, with backoff, on one continuous timeline.

import type { StreamHub } from '../../hub/stream-hub.js';
import type { Packet, Track } from '../../media/types.js';
import type { ConnectionTracker } from '../../stats/tracker.js';
import { errorText, isHazeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';

/** What a pull gets from the worker. */
export interface PullContext {
  /** The stream being fed. */
  name: string;
  /** The source as configured (or as STREAM_SOURCE rewrote it). */
  source: string;
  /** The stream's source hub: claimed for this worker and attached by the caller. */
  hub: StreamHub;
  /** Statistics of the input's connections (`INPUT:<PROTO>` sessions). */
  tracker: ConnectionTracker;
  log: Logger;
  /** The pull failed for good (INPUT_ABORT's machine and human reasons): the stream's input ends. */
  aborted(machineReason: string, humanReason: string): void;
}

/** One kind of pulled source. */
export interface PullKind {
  /** Short name for logs and INPUT_ABORT reasons: `RTSP`, `SRT`, `TSUDP` ... */
  name: string;
  /** Whether `source` is this kind's (by scheme, extension or prefix). */
  accepts(source: string): boolean;
  /** Starts feeding `ctx.hub`; returns the handle that stops it (and closes every socket/process). */
  start(ctx: PullContext): { stop(): void };
}

/** A source URL for the log: a camera's `user:pass@` stays out of it. */
export function withoutCredentials(source: string): string {
  return source.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@');
}

/** The kind that takes `source`, if any (the first that accepts it). */
export function pullKindFor(kinds: readonly PullKind[], source: string): PullKind | undefined {
  return kinds.find((k) => k.accepts(source));
}

/** What a connection of a pull feeds: the hub, through the timeline kept across reconnects. */
export interface PullSink {
  setTrack(track: Track): void;
  removeTrack(id: number): void;
  push(packet: Packet): void;
}

/** One connection to the source, from the connect that made it to its end. */
export interface PullConnection {
  /** Settles when the connection ends: resolves with why (source ended cleanly), rejects on a fault. */
  readonly done: Promise<string>;
  /** Closes the connection (stopping the pull); `done` settles after. */
  close(): void;
}

export interface ReconnectOptions {
  /** First pause after a drop; doubles per failure in a row up to maxDelayMs (defaults 1 s, 30 s). */
  minDelayMs?: number;
  maxDelayMs?: number;
  /** A connection that lasted this long resets the backoff (default 30 s). */
  stableMs?: number;
  /**
   * Failed connects in a row, before any connection worked, after which the pull gives up
   * (INPUT_ABORT; a viewer-started pull should not retry a wrong URL forever). Default 3; 0 never.
   */
  maxInitialFailures?: number;
  /** How long viewers wait for the source to come back after a drop before the stream ends (default 10 min). */
  outageGraceMs?: number;
}

/**
 * Keeps a pull connected: `connect` opens one connection feeding the sink; when it ends or
 * fails, the hub's viewers wait (tracks reset, hub kept) while the pull connects again after a
 * backoff. Each connection's timestamps are rebased: the first connection starts at 0 and
 * later ones continue the hub's timeline (StreamHub.attachSource), so players see one stream.
 * An error that is a HazeError with `fatal` set (a refused URL, bad credentials) aborts at once.
 */
export function reconnectingPull(ctx: PullContext, connect: (sink: PullSink, attempt: number) => Promise<PullConnection>, opts: ReconnectOptions = {}): { stop(): void } {
  const minDelay = opts.minDelayMs ?? 1000;
  const maxDelay = opts.maxDelayMs ?? 30_000;
  const stableMs = opts.stableMs ?? 30_000;
  const maxInitialFailures = opts.maxInitialFailures ?? 3;
  const graceMs = opts.outageGraceMs ?? 600_000;
  let stopped = false;
  let current: PullConnection | undefined;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  let everConnected = false;
  let attempt = 0;
  /** The attempt whose connection may feed the hub (0: none, between connections). */
  let feeding = 0;
  /** A connection delivered a packet: later ones continue the hub's timeline. */
  let delivered = false;
  const { hub, log } = ctx;

  const onHubEnd = (reason: string): void => {
    if (stopped) return;
    ctx.aborted('HUB_ENDED', `stream ended while its source was away: ${reason}`);
  };
  hub.on('end', onHubEnd);

  const sinkFor = (n: number): PullSink => {
    let offset: number | undefined;
    // the caller attached the hub for the first connection; a later one attaches with its first
    // track or packet (not at connect: a connect that fails would cancel the hub's outage grace)
    let attached = n === 1;
    // only the current connection feeds: a dead one's last bytes (a process's final output, a
    // socket's buffered data) must not land on its successor's timeline
    const live = (): boolean => {
      if (stopped || feeding !== n || hub.isEnded) return false;
      if (!attached) {
        attached = true;
        hub.attachSource();
      }
      return true;
    };
    return {
      setTrack: (t) => {
        if (live()) hub.setTrack(t);
      },
      removeTrack: (id) => {
        if (live()) hub.removeTrack(id);
      },
      push: (p) => {
        if (!live()) return;
        // the first connection that delivers starts at 0 (a failed first connect does not count);
        // the hub shifts later ones to continue its timeline
        offset ??= delivered ? 0 : -p.timeMs;
        delivered = true;
        p.timeMs = Math.max(0, p.timeMs + offset);
        hub.push(p);
      },
    };
  };

  const retry = (why: string): void => {
    if (stopped) return;
    if (!everConnected && maxInitialFailures > 0 && failures >= maxInitialFailures) {
      ctx.aborted('CONNECT_FAILED', `${why} (${failures} attempts)`);
      return;
    }
    const delay = Math.min(maxDelay, minDelay * 2 ** Math.max(0, failures - 1));
    log.warn(`stream ${ctx.name}: source ${withoutCredentials(ctx.source)}: ${why}; connecting again in ${delay} ms`);
    timer = setTimeout(run, delay);
    timer.unref();
  };

  const run = (): void => {
    timer = undefined;
    if (stopped) return;
    attempt++;
    // a later connection is a new source on the same hub: its timeline continues the last one
    const n = (feeding = attempt);
    const startedAt = Date.now();
    connect(sinkFor(attempt), attempt).then(
      (conn) => {
        if (stopped) {
          conn.close();
          return;
        }
        current = conn;
        everConnected = true;
        log.info(`stream ${ctx.name}: connected to ${withoutCredentials(ctx.source)}`);
        const ended = (why: string): void => {
          if (current === conn) current = undefined;
          if (feeding === n) feeding = 0;
          if (stopped) return;
          if (Date.now() - startedAt >= stableMs) failures = 0;
          failures++;
          hub.detachSource(`source ${withoutCredentials(ctx.source)}: ${why}`, graceMs);
          retry(why);
        };
        conn.done.then(
          (why) => ended(why || 'source ended'),
          (err: unknown) => ended(errorText(err)),
        );
      },
      (err: unknown) => {
        if (feeding === n) feeding = 0;
        if (stopped) return;
        failures++;
        if (isHazeError(err) && err.fatal) {
          ctx.aborted('CONNECT_REFUSED', errorText(err));
          return;
        }
        retry(`cannot connect: ${errorText(err)}`);
      },
    );
  };
  run();

  return {
    stop: () => {
      if (stopped) return;
      stopped = true;
      hub.off('end', onHubEnd);
      if (timer) clearTimeout(timer);
      current?.close();
      current = undefined;
    },
  };
}
