// What happens before and around a viewer's playback, in MistServer's order (reference §4.2,
// Output::run / reconnect / initialize): PLAY_REWRITE may rename the stream or refuse it,
// CONN_OPEN may refuse the connection, a stream that cannot be opened is replaced by its
// fallback (fallback_stream, DEFAULT_STREAM / defaultStream), USER_NEW admits the session, the
// output attaches, CONN_PLAY may still end it; CONN_CLOSE when the connection ends. The worker
// implements PlayAccess (worker/viewer-access.ts); outputs only call it.

import { HazeError } from '../util/errors.js';
import type { ViewerAdmission } from './access-route.js';
import { sessionId } from './play.js';
import type { ConnectionBytes, TrackedConnection, TrackSpec } from '../stats/tracker.js';

/** A viewer connection as the CONN_* and PLAY_REWRITE payloads describe it. */
export interface ConnInfo {
  stream: string;
  host: string;
  /** MistServer's connector name (HLS, CMAF, FLV, MP4, RTMP, DTSC ...). */
  connector: string;
  requestUrl: string;
}

export interface PlayConnection {
  /** The connection attached to `stream` (CONN_PLAY, once per stream). False: the viewer must be ended. */
  play(stream: string): Promise<boolean>;
  /** The connection ended (CONN_CLOSE, the session's connection ends); idempotent. */
  close(): void;
}

export interface PlayAccess {
  /**
   * Whether anything is configured that concerns viewers of `stream` beyond USER_NEW (PLAY_REWRITE,
   * CONN_*, USER_END handlers, a fallback): false lets an output skip the rest.
   */
  concerns(stream: string): boolean;
  /** PLAY_REWRITE: the stream to play for info.stream; undefined refuses the viewer. */
  rewrite(info: ConnInfo): Promise<string | undefined>;
  /** CONN_OPEN: the connection, or undefined when a handler refused it. */
  open(info: ConnInfo): Promise<PlayConnection | undefined>;
  /** info.stream when it can be played; otherwise its fallback (or info.stream when there is none). */
  fallback(info: ConnInfo): Promise<string>;
  /** USER_NEW (one decision per session). */
  admit(v: ViewerAdmission): Promise<boolean>;
  /** True for a stream served from a file here: attached as soon as it opens (HTTP's CONN_PLAY point). */
  isFile(stream: string): Promise<boolean>;
  /** Counts a connection in the statistics (every viewer's, whatever is configured). */
  track(spec: TrackSpec): TrackedConnection;
}

export interface StartedPlay<T> {
  /** The stream played (after rewrites and fallbacks). */
  stream: string;
  attached: T;
  conn: PlayConnection;
}

/**
 * The whole sequence for a protocol that resolves its stream in one step (RTMP play, dtsc://
 * pulls): rewrite, open, fallback, admit, `attach(stream)`, CONN_PLAY. Throws a HazeError
 * (REFUSED, or attach's own) when the viewer does not get to play; the connection is closed
 * then, and `detach` undoes an attach that CONN_PLAY refused.
 */
export async function startPlay<T>(
  access: PlayAccess,
  info: ConnInfo,
  token: string,
  attach: (stream: string) => Promise<T>,
  detach: (attached: T, reason: string) => void,
  bytes: () => ConnectionBytes,
  /** Whether `token` is a JWT that allows playing the stream (USER_NEW is skipped then). */
  tokenValid: (stream: string) => boolean = () => false,
): Promise<StartedPlay<T>> {
  const asked = await access.rewrite(info);
  if (asked === undefined) throw new HazeError('HAZE_ERR_REFUSED', `Playback of ${info.stream} refused by PLAY_REWRITE`);
  const opened: ConnInfo = { ...info, stream: asked };
  const conn = await access.open(opened);
  if (!conn) throw new HazeError('HAZE_ERR_REFUSED', `Connection refused by CONN_OPEN`);
  try {
    const stream = await access.fallback(opened);
    const admission: ViewerAdmission = { stream, host: info.host, token, connector: info.connector, requestUrl: info.requestUrl, sessionId: sessionId(stream, info.host, token), ...(tokenValid(stream) ? { tokenValid: true } : {}) };
    if (!(await access.admit(admission))) throw new HazeError('HAZE_ERR_REFUSED', `Access to ${stream} denied`);
    const attached = await attach(stream);
    if (!(await conn.play(stream))) {
      detach(attached, 'not allowed to play (CONN_PLAY)');
      throw new HazeError('HAZE_ERR_REFUSED', `Not allowed to play ${stream} (CONN_PLAY)`);
    }
    const tracked = access.track({ kind: 'viewer', stream, host: info.host, token, connector: info.connector, requestUrl: info.requestUrl, bytes });
    const counted: PlayConnection = {
      play: (s) => conn.play(s),
      close: () => {
        tracked.end();
        conn.close();
      },
    };
    return { stream, attached, conn: counted };
  } catch (err) {
    conn.close();
    throw err;
  }
}
