// Starting a viewer on a stream: resolve the hub (waiting for it to come online), pick the
// shared feed of the format and track selection, attach a Viewer writing to the sink.
// Used by every live output (HTTP progressive, RTMP play).

import { sessionIdOf } from '../stats/session-id.js';
import type { StreamHub } from '../hub/stream-hub.js';
import type { MediaRequest, MediaResponder } from '../protocols/http/media-server.js';
import { isHazeError } from '../util/errors.js';
import { tokenInPlaylists, viewerToken } from '../access/viewer-access.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { getFeed, type FormatWriter } from './feed.js';
import { playAttached } from './http-connections.js';
import { selectTracks, selectionKey, type FormatCapability, type SelectorQuery } from './track-select.js';
import { Viewer, type ByteSink } from './viewer.js';

export interface OutputFormat {
  /** Connector name (FLV, HTTPTS, RTMP, MP4, EBML). */
  name: string;
  /** Feed key when one connector has several formats (EBML: .mkv and .webm); default the name. */
  key?: string;
  capability: FormatCapability;
  makeWriter(): FormatWriter;
}

export function selectorQuery(params: URLSearchParams): SelectorQuery {
  return { audio: params.get('audio'), video: params.get('video'), subtitle: params.get('subtitle'), meta: params.get('meta') };
}

/** Attaches a new viewer of `format` to `hub`. */
export function startViewer(hub: StreamHub, format: OutputFormat, query: SelectorQuery, sink: ByteSink): Viewer {
  const feed = getFeed(hub, format.key ?? format.name, selectionKey(query), () => ({
    writer: format.makeWriter(),
    select: (tracks) => selectTracks(tracks, query, format.capability),
  }));
  const viewer = new Viewer(sink);
  feed.add(viewer);
  return viewer;
}

/**
 * The session id of a viewer (reference §7.1: under the default `sessionViewerMode` 14, the
 * sha256 hex of stream, client address and token; stats/session-id.ts).
 */
export function sessionId(stream: string, peer: string, token: string, connector = ''): string {
  return sessionIdOf('viewer', stream, peer, token, connector);
}

/** A request's session token: the one the access step decided (a JWT play name), else its `tkn`/`jwt` variable, cookie or Bearer token. */
export function requestToken(req: MediaRequest): string {
  return req.token ?? viewerToken(req.query, req.headers);
}

/** The query that carries a request's token into the URLs its playlists list (`tkn=` or `jwt=`). */
export function tokenQuery(req: MediaRequest): string | undefined {
  if (!tokenInPlaylists()) return undefined;
  for (const key of ['tkn', 'sid', 'sessId', 'jwt']) {
    const v = req.query.get(key);
    if (v) return `${key}=${encodeURIComponent(v)}`;
  }
  return undefined;
}

export interface ResolvedStream {
  name: string;
  hub: StreamHub;
  /** The session id every response about the stream carries (`X-Haze-Session`, DESIGN §5). */
  session: string;
}

/**
 * The stream an HTTP output request is about, online. Answers the request itself when it is
 * not (404 for names that are not configured, 503 with Retry-After for offline streams, both
 * with the session id; 403 when CONN_PLAY refuses the attached viewer) and returns undefined then.
 */
export async function resolveStream(
  rawName: string,
  req: MediaRequest,
  res: MediaResponder,
  forViewer: (name: string) => Promise<StreamHub>,
  /** Segmented outputs: the hub of a stream that just ended, answered from rather than waited for. */
  endedHub?: (name: string) => StreamHub | undefined,
): Promise<ResolvedStream | undefined> {
  const name = sanitizeStreamName(rawName);
  const session = sessionId(name, req.peer, requestToken(req));
  const refuse = (status: number, message: string): undefined => {
    res.send(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Haze-Session': session, ...(status === 503 ? { 'Retry-After': '5' } : {}) }, `${message}\n`);
    return undefined;
  };
  if (!name) return refuse(404, `Stream not found: invalid name ${JSON.stringify(rawName)}`);
  let hub = endedHub?.(name);
  if (!hub) {
    try {
      hub = await forViewer(name);
    } catch (err) {
      if (!isHazeError(err)) throw err;
      return refuse(err.code === 'HAZE_ERR_NOT_FOUND' ? 404 : 503, err.message);
    }
  }
  // attached: CONN_PLAY of the request's connection (true at once when nothing is configured)
  const attached = playAttached(req, name);
  if (attached !== true && !(await attached)) {
    res.send(403, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Haze-Session': session, Connection: 'close' }, `Not allowed to play ${name}\n`);
    return undefined;
  }
  return { name, hub, session };
}
