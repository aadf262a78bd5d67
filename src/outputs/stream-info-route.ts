// `/json_NAME.js` and `/info_NAME.js` (reference §6.4): the stream info document the player
// reads, answered at once (an offline stream is `{"error": ...}`, as MistServer does).

import type { StreamHub } from '../hub/stream-hub.js';
import type { MediaRoute } from '../protocols/http/media-server.js';
import type { StreamInfoTrack } from './stream-info.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { baseUrl, cleanBaseUrl, infoScript, streamInfo } from './stream-info.js';

export interface StreamInfoDeps {
  isConfigured(name: string): boolean;
  /** The hub if the stream is online (waiting only while a relay from its worker starts); throws otherwise. */
  onlineHub(name: string): Promise<StreamHub>;
  ports(): { http: number; rtmp?: number };
  /** The HTTP connector's public addresses (`pubaddr`): base URLs that replace the Host header's. */
  publicAddresses(): readonly string[];
  /** The tracks of a VoD stream (with firstMs/lastMs); undefined for live streams, throws when its file cannot be played. */
  vodTracks?(name: string): Promise<StreamInfoTrack[] | undefined>;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function streamInfoRoute(deps: StreamInfoDeps): MediaRoute {
  return async (req, res) => {
    const m = /^\/(json|info)_([^/]+)\.js$/.exec(req.path);
    if (!m) return false;
    const name = sanitizeStreamName(m[2]!);
    let info: Record<string, unknown>;
    if (!name || !deps.isConfigured(name)) info = { error: 'Stream not found' };
    else {
      try {
        const vod = await deps.vodTracks?.(name);
        const hub = vod ? undefined : await deps.onlineHub(name);
        const ports = deps.ports();
        // a reverse proxy's X-Mst-Path wins, then the configured public addresses, then Host
        const mstPath = cleanBaseUrl(headerValue(req.headers['x-mst-path']));
        const pubaddr = deps.publicAddresses();
        const http = mstPath ?? (pubaddr.length > 0 ? pubaddr : baseUrl(headerValue(req.headers['host']), undefined, ports.http));
        const base = { http, ...(ports.rtmp ? { rtmpPort: ports.rtmp } : {}) };
        info = hub
          ? streamInfo({ name, tracks: [...hub.tracks], live: true, online: true, base, bufferWindowMs: Math.max(0, hub.lastMs - hub.firstMs) })
          : streamInfo({ name, tracks: vod!, live: false, online: true, base });
      } catch {
        info = { error: 'Stream is offline' };
      }
    }
    if (m[1] === 'json') res.send(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache' }, JSON.stringify(info));
    else res.send(200, { 'Content-Type': 'text/javascript', 'Cache-Control': 'no-cache' }, infoScript(name, info));
    return true;
  };
}
