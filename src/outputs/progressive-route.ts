// HTTP progressive live outputs, MistServer's paths (reference §6.3): `/NAME.flv` (FLV),
// `/NAME.ts` (HTTPTS), `/NAME.mp4` (fragmented MP4), `/NAME.mkv` and `/NAME.webm` (EBML), and
// the audio-only `/NAME.ogg` (OGG), `/NAME.mp3` (MP3), `/NAME.aac` (AAC), `/NAME.wav` (WAV).
// Unknown names answer 404, configured streams that are not online 503 with Retry-After after
// the wait of DESIGN §4, streams without a track the format carries 415; the body streams
// until the client leaves or the stream ends.

import type { MediaRoute } from '../protocols/http/media-server.js';
import type { StreamHub } from '../hub/stream-hub.js';
import { FORMAT_BY_EXTENSION } from './formats.js';
import { selectTracks } from './track-select.js';
import { resolveStream, selectorQuery, startViewer } from './play.js';
import type { Viewer } from './viewer.js';

/** Which worker process served the response (operators and the fault tests read it). */
const WORKER_LABEL = String(process.pid);

export interface ProgressiveDeps {
  forViewer(name: string): Promise<StreamHub>;
  /** Called for each started viewer (statistics). */
  onViewer?(stream: string, connector: string, peer: string, viewer: Viewer): void;
}

export function progressiveRoute(deps: ProgressiveDeps): MediaRoute {
  return async (req, res, log) => {
    const m = /^\/([^/]+)\.(flv|ts|mp4|fmp4|mkv|webm|ogg|mp3|aac|wav)$/.exec(req.path);
    if (!m) return false;
    const kind = FORMAT_BY_EXTENSION[m[2]!]!;
    const stream = await resolveStream(m[1]!, req, res, deps.forViewer);
    if (!stream) return true;
    const { name, hub, session } = stream;
    const query = selectorQuery(req.query);
    if (selectTracks(hub.tracks, query, kind.format.capability).ids.size === 0) {
      const codecs = hub.tracks.map((t) => t.codec).join(', ');
      res.send(415, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Haze-Session': session }, `No track of ${name} (${codecs}) fits .${m[2]} with this selection\n`);
      return true;
    }
    const sink = res.stream({ 'Content-Type': kind.contentType, 'X-Haze-Session': session, 'X-Haze-Worker': WORKER_LABEL });
    if (req.head) return true;
    const viewer = startViewer(hub, kind.format, query, sink);
    res.onClose(() => viewer.close('client left'));
    viewer.onClose((reason) => log.debug(`${kind.format.name} viewer of ${name} done: ${reason}`));
    deps.onViewer?.(name, kind.format.name, req.peer, viewer);
    return true;
  };
}
