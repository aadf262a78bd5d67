// The access check in front of every media output over HTTP (reference §4, USER_NEW): the
// stream and connector a request is for, and its session (stream, client, token), are put to
// the caller's gate; a refused viewer gets 403 and nothing else. Stream info, the player and
// pages pass (they carry no media).

import type { MediaRoute } from '../protocols/http/media-server.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { FORMAT_BY_EXTENSION } from './formats.js';
import { sessionId } from './play.js';

/** A viewer asking to watch: what USER_NEW carries. */
export interface ViewerAdmission {
  stream: string;
  host: string;
  token: string;
  /** MistServer's connector name (HLS, CMAF, FLV, MP4, RTMP ...). */
  connector: string;
  requestUrl: string;
  sessionId: string;
}

/** The stream and connector (MistServer's names) of a media URL; undefined for other paths. */
export function mediaRequestOf(path: string): { rawName: string; connector: string } | undefined {
  const seg = /^\/(hls|cmaf)\/([^/]+)\//.exec(path);
  if (seg) return { rawName: seg[2]!, connector: seg[1] === 'hls' ? 'HLS' : 'CMAF' };
  const prog = /^\/([^/]+)\.([a-z0-9]+)$/.exec(path);
  const kind = prog ? FORMAT_BY_EXTENSION[prog[2]!] : undefined;
  return kind ? { rawName: prog![1]!, connector: kind.format.name } : undefined;
}

export function accessRoute(admit: (v: ViewerAdmission) => Promise<boolean>): MediaRoute {
  return async (req, res, log) => {
    const media = mediaRequestOf(req.path);
    if (!media) return false;
    const stream = sanitizeStreamName(media.rawName);
    if (!stream) return false;
    const token = req.query.get('tkn') ?? '';
    const session = sessionId(stream, req.peer, token);
    const query = req.query.toString();
    const allowed = await admit({ stream, host: req.peer, token, connector: media.connector, requestUrl: `${req.path}${query ? `?${query}` : ''}`, sessionId: session });
    if (allowed) return false;
    log.info(`viewer of ${stream} from ${req.peer} refused by USER_NEW`);
    res.send(403, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Haze-Session': session }, `Access to ${stream} denied\n`);
    return true;
  };
}
