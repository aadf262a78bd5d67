// What the RTMP, HLS and DTSC pulls share beside the reconnect loop (pull-input.ts): the
// statistics session of one connection, and a pull whose source can end for good (a VoD
// playlist played to its end, a VoD stream of a dtsc:// origin) instead of being retried.

import type { TrackedConnection } from '../../stats/tracker.js';
import { reconnectingPull, type PullConnection, type PullContext, type PullSink, type ReconnectOptions } from './pull-input.js';

/** Opens the `INPUT:<PROTO>` statistics session of one connection to the source. */
export function trackPullConnection(ctx: PullContext, connector: string, host: string, bytes: () => { down: number; up: number }, tags?: readonly string[]): TrackedConnection {
  return ctx.tracker.open({ kind: 'input', stream: ctx.name, host, token: '', connector, requestUrl: ctx.source, bytes, ...(tags ? { tags } : {}) });
}

/** Lets a connection end the whole pull: the source is over, not away (the stream's input ends). */
export type EndPull = (reason: string) => void;

/**
 * reconnectingPull, plus an `end` a connection calls when its source ended for good: the loop
 * stops and the stream's input ends (reported as INPUT_ABORT `SOURCE_ENDED`, the one way a pull
 * tells the worker its input is over).
 */
export function endablePull(ctx: PullContext, connect: (sink: PullSink, attempt: number, end: EndPull) => Promise<PullConnection>, opts: ReconnectOptions = {}): { stop(): void } {
  let loop: { stop(): void } | undefined;
  let ended = false;
  const end: EndPull = (reason) => {
    if (ended) return;
    ended = true;
    loop?.stop();
    ctx.aborted('SOURCE_ENDED', reason);
  };
  loop = reconnectingPull(ctx, (sink, attempt) => connect(sink, attempt, end), opts);
  if (ended) loop.stop();
  return {
    stop: () => {
      ended = true;
      loop?.stop();
    },
  };
}
