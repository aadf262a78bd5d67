// The HTTP outputs of VoD streams (streams whose source is a file or a folder): progressive
// files, HLS and CMAF/DASH. Requests about other streams pass on to the live routes.

import type { MediaRoute } from '../../protocols/http/media-server.js';
import { isHazeError } from '../../util/errors.js';
import { sanitizeStreamName } from '../../util/stream-name.js';
import type { VodStreams } from '../../vod/vod-streams.js';
import type { VodFile } from '../../vod/vod-library.js';
import { FORMAT_BY_EXTENSION } from '../formats.js';
import { requestToken, sessionId } from '../play.js';
import { serveVodProgressive } from './vod-progressive.js';
import { serveVodMp4 } from './vod-mp4.js';
import { serveVodCmaf, serveVodHls } from './vod-segmented.js';

/** Which worker process served the response (operators and the fault tests read it). */
const WORKER_LABEL = String(process.pid);

export function vodRoute(vod: VodStreams): MediaRoute {
  return async (req, res, log) => {
    const seg = /^\/(hls|cmaf)\/([^/]+)\/(.+)$/.exec(req.path);
    const prog = seg ? undefined : /^\/([^/]+)\.(flv|ts|mp4|fmp4|mkv|webm|ogg|mp3|aac|wav)$/.exec(req.path);
    const rawName = seg?.[2] ?? prog?.[1];
    if (rawName === undefined) return false;
    const name = sanitizeStreamName(rawName);
    if (!name || !vod.isVod(name)) return false;
    const session = sessionId(name, req.peer, requestToken(req));
    const fail = (status: number, message: string): true => {
      res.send(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Haze-Session': session }, `${message}\n`);
      return true;
    };
    let file: VodFile;
    try {
      file = await vod.open(name);
    } catch (err) {
      if (!isHazeError(err)) throw err;
      log.warn(`VoD ${name}: ${err.message}`);
      return fail(err.status ?? (err.code === 'HAZE_ERR_NOT_FOUND' ? 404 : 500), err.code === 'HAZE_ERR_NOT_FOUND' ? err.message : `Stream ${name} cannot be played: ${err.message}`);
    }
    try {
      if (seg) {
        const ctx = { file, name, req, res, session };
        return seg[1] === 'hls' ? await serveVodHls(ctx, seg[3]!) : await serveVodCmaf(ctx, seg[3]!);
      }
      const headers = { 'X-Haze-Session': session, 'X-Haze-Worker': WORKER_LABEL };
      if (prog![2] === 'mp4') {
        await serveVodMp4(file, req, res, headers, log);
        return true;
      }
      const kind = FORMAT_BY_EXTENSION[prog![2]!]!;
      await serveVodProgressive(file, kind.format, kind.contentType, req, res, headers, log, () => vod.open(name));
      return true;
    } catch (err) {
      if (!isHazeError(err) || err.status === undefined) throw err;
      return fail(err.status, err.message);
    }
  };
}
