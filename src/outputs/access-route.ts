// The access step in front of every media output over HTTP (reference §4): the stream and
// connector a request is for go through PLAY_REWRITE (another name, or refused), CONN_OPEN (per
// connection, see http-connections.ts), the fallbacks of a stream that cannot be opened
// (fallback_stream, DEFAULT_STREAM / defaultStream) and USER_NEW for its session (stream,
// client, token). A rewritten or fallen-back request continues with the new name in its path,
// so every output behind serves it as if asked for it. A refused viewer gets 403 and nothing
// else. Stream info, the player and pages pass (they carry no media). CONN_PLAY fires where the
// output attaches: live outputs once their stream is online (play.ts), file streams here.
// JWTs (reference §5.1, §6.5): a stream name that is a JWT plays its `sub` stream when the token
// has the output permission (the JWT is the session's token; a refused one gets 403), and a
// viewer token (`tkn`/`jwt` var or cookie, Bearer) that is a valid JWT for the stream skips USER_NEW.

import type { MediaRequest, MediaResponder, MediaRoute } from '../protocols/http/media-server.js';
import type { Logger } from '../util/log.js';
import type { JwtKeyring } from '../access/keyring.js';
import { playNameGrant, tokenCookie, viewerToken, viewerTokenValid } from '../access/viewer-access.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { FORMAT_BY_EXTENSION } from './formats.js';
import { httpConnectionOf, playAttached, requestUrlOf, setRequestConnection, setRequestTracking } from './http-connections.js';
import type { ConnInfo, PlayAccess } from './play-access.js';
import { sessionId } from './play.js';
import { streamInfoKind } from '../stats/session-id.js';

/** A viewer asking to watch: what USER_NEW carries. */
export interface ViewerAdmission {
  stream: string;
  host: string;
  token: string;
  /** MistServer's connector name (HLS, CMAF, FLV, MP4, RTMP ...). */
  connector: string;
  requestUrl: string;
  sessionId: string;
  /** The token is a JWT valid for the stream: USER_NEW is skipped. */
  tokenValid?: boolean;
}

/** The stream and connector (MistServer's names) of a media URL; undefined for other paths. */
export function mediaRequestOf(path: string): { rawName: string; connector: string } | undefined {
  const seg = /^\/(hls|cmaf)\/([^/]+)\//.exec(path);
  if (seg) return { rawName: seg[2]!, connector: seg[1] === 'hls' ? 'HLS' : 'CMAF' };
  const prog = /^\/([^/]+)\.([a-z0-9]+)$/.exec(path);
  const kind = prog ? FORMAT_BY_EXTENSION[prog[2]!] : undefined;
  return kind ? { rawName: prog![1]!, connector: kind.format.name } : undefined;
}

/** `path` (a media URL, see mediaRequestOf) asking for `stream` instead. */
export function pathWithStream(path: string, stream: string): string {
  const seg = /^\/(hls|cmaf)\/[^/]+\/(.*)$/s.exec(path);
  if (seg) return `/${seg[1]}/${stream}/${seg[2]}`;
  const dot = path.lastIndexOf('.');
  return `/${stream}${path.slice(dot)}`;
}

function refuse(res: MediaResponder, session: string, message: string, closeConnection = false): true {
  res.send(403, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Haze-Session': session, ...(closeConnection ? { Connection: 'close' } : {}) }, `${message}\n`);
  return true;
}

/**
 * PLAY_REWRITE, CONN_OPEN and fallbacks for one request: the stream to go on with, or undefined
 * when the request was answered (refused).
 */
async function connect(req: MediaRequest, res: MediaResponder, access: PlayAccess, info: ConnInfo, token: string, log: Logger): Promise<string | undefined> {
  const http = httpConnectionOf(req);
  let asked: string | undefined;
  const known = http?.rewrites.get(info.stream);
  if (known !== undefined) asked = known ?? undefined;
  else {
    asked = await access.rewrite(info);
    http?.rememberRewrite(info.stream, asked);
  }
  if (asked === undefined) {
    log.info(`viewer of ${info.stream} from ${info.host} refused by PLAY_REWRITE`);
    refuse(res, sessionId(info.stream, info.host, token), `Playback of ${info.stream} refused`);
    return undefined;
  }
  const opened: ConnInfo = { ...info, stream: asked };
  if (http) {
    const refused = await http.serial(async () => {
      if (http.current(asked, info.connector) || http.isClosed) return false;
      const conn = await access.open(opened);
      if (!conn) return true;
      http.use(asked, info.connector, conn);
      return false;
    });
    if (refused) {
      log.info(`connection of ${info.host} to ${asked} refused by CONN_OPEN`);
      refuse(res, sessionId(asked, info.host, token), `Connection refused`, true);
      return undefined;
    }
    const conn = http.current(asked, info.connector);
    if (conn) setRequestConnection(req, conn);
  }
  return access.fallback(opened);
}

function userAgentOf(req: MediaRequest): string | undefined {
  const ua = req.headers['user-agent'];
  return typeof ua === 'string' && ua ? ua : undefined;
}

/** The stream of a stream info or player page request (`/json_NAME.js`, `/info_NAME.js`, `/NAME.html`). */
function infoStreamOf(path: string): string | undefined {
  const m = /^\/(?:json_|info_)([^/]+)\.js$/.exec(path) ?? /^\/([^/]+)\.html$/.exec(path);
  return m ? sanitizeStreamName(m[1]!) || undefined : undefined;
}

/** Stream info and player requests count as sessionStreamInfoMode says (connector HTTP). */
function countInfoRequest(req: MediaRequest, access: PlayAccess): void {
  const kind = streamInfoKind();
  const stream = kind ? infoStreamOf(req.path) : undefined;
  if (!kind || !stream) return;
  const token = viewerToken(req.query, req.headers);
  httpConnectionOf(req)?.track(stream, 'HTTP', (bytes) => access.track({ kind, stream, host: req.peer, token, connector: 'HTTP', requestUrl: requestUrlOf(req), userAgent: userAgentOf(req), bytes }));
}

export function accessRoute(access: PlayAccess, keyring?: JwtKeyring): MediaRoute {
  return async (req, res, log) => {
    const media = mediaRequestOf(req.path);
    if (!media) {
      countInfoRequest(req, access);
      return false;
    }
    const requestUrl = requestUrlOf(req);
    const jwtName = keyring ? playNameGrant(media.rawName, keyring, req.peer) : undefined;
    if (jwtName && !jwtName.ok) {
      log.info(`viewer from ${req.peer} with a JWT as stream name refused: ${jwtName.reason}`);
      return refuse(res, '', 'Access denied: invalid token');
    }
    if (jwtName) req.path = pathWithStream(req.path, jwtName.stream);
    const asked = jwtName ? jwtName.stream : sanitizeStreamName(media.rawName);
    if (!asked) return false;
    const token = jwtName ? media.rawName : keyring ? viewerToken(req.query, req.headers) : (req.query.get('tkn') ?? '');
    req.token = token;
    const cookie = jwtName ? undefined : tokenCookie(token);
    if (cookie) res.header('Set-Cookie', cookie);
    let stream = asked;
    if (access.concerns(asked)) {
      const next = await connect(req, res, access, { stream: asked, host: req.peer, connector: media.connector, requestUrl }, token, log);
      if (next === undefined) return true;
      if (next !== asked) {
        if (next.includes('/')) return refuse(res, sessionId(asked, req.peer, token), `Playback of ${asked} refused: no playable stream`);
        log.debug(`${media.connector} request for ${asked} from ${req.peer} plays ${next}`);
        req.path = pathWithStream(req.path, next);
        stream = next;
      }
    }
    const session = sessionId(stream, req.peer, token, media.connector);
    const tokenValid = jwtName !== undefined || (keyring !== undefined && viewerTokenValid(token, stream, keyring, req.peer));
    const allowed = await access.admit({ stream, host: req.peer, token, connector: media.connector, requestUrl, sessionId: session, ...(tokenValid ? { tokenValid } : {}) });
    if (!allowed) {
      log.info(`viewer of ${stream} from ${req.peer} refused (USER_NEW or a stopped session)`);
      return refuse(res, session, `Access to ${stream} denied`);
    }
    // once attached, every byte on the socket counts to the session (one per socket, stream and connector)
    setRequestTracking(req, () => httpConnectionOf(req)?.track(stream, media.connector, (bytes) => access.track({ kind: 'viewer', stream, host: req.peer, token, connector: media.connector, requestUrl, userAgent: userAgentOf(req), bytes })));
    // a file stream is attached once it opens (live outputs report when their stream is online)
    if ((await access.isFile(stream)) && !(await playAttached(req, stream))) {
      log.info(`viewer of ${stream} from ${req.peer} refused by CONN_PLAY`);
      return refuse(res, session, `Not allowed to play ${stream}`, true);
    }
    return false;
  };
}
