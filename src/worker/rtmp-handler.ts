// What an RTMP connection may do in a worker: publish into a hub (push rules of reference
// §5.4: the app is the push password) and play from one (instant start, shared bytes).

import type { RtmpSessionHandler } from '../protocols/rtmp/server-session.js';
import { checkPush } from '../inputs/push-policy.js';
import { FlvPublisher } from '../inputs/flv-publisher.js';
import { FLV_CAPABILITY, makeRtmpWriter } from '../outputs/flv-writer.js';
import { selectorQuery, sessionId, startViewer, type OutputFormat } from '../outputs/play.js';
import type { RtmpStreamRequest } from '../protocols/rtmp/server-session.js';
import type { TriggerDispatcher } from '../triggers/dispatch.js';
import type { ViewerGate } from './worker-triggers.js';
import { HazeError, errorText } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { splitNameQuery } from '../util/stream-name.js';
import type { ConfigView } from './config-view.js';
import type { HubManager } from './hub-manager.js';
import type { WorkerStats } from './worker-stats.js';
import type { VodStreams } from '../vod/vod-streams.js';
import { playVodRtmp } from '../outputs/vod/vod-rtmp.js';

/** The session's close reason after deleteStream/FCUnpublish: the publisher ended on purpose. */
const RTMP_UNPUBLISHED = 'client unpublished';

export const RTMP_FORMAT: OutputFormat = { name: 'RTMP', capability: FLV_CAPABILITY, makeWriter: makeRtmpWriter };

export interface RtmpAccess {
  triggers: TriggerDispatcher;
  gate: ViewerGate;
}

/** The full RTMP URL a client asked for (tcUrl + stream name), as RTMP_PUSH_REWRITE and USER_NEW carry it. */
function fullUrl(req: RtmpStreamRequest): string {
  return `${req.tcUrl.replace(/\/+$/, '')}/${req.name}`;
}

/**
 * The push rules' triggers before a publish is accepted (reference §5.4): RTMP_PUSH_REWRITE may
 * give a new URL (its app and stream name replace the client's; empty refuses), PUSH_REWRITE a
 * new stream name (empty refuses), STREAM_PUSH may refuse.
 */
async function pushTriggers(triggers: TriggerDispatcher, req: RtmpStreamRequest): Promise<RtmpStreamRequest> {
  let out = req;
  if (triggers.hasHandlers('RTMP_PUSH_REWRITE', '')) {
    const r = await triggers.fire('RTMP_PUSH_REWRITE', '', { rtmpUrl: fullUrl(req), host: req.peer });
    let url: URL | undefined;
    try {
      url = r.response ? new URL(r.response) : undefined;
    } catch {
      url = undefined;
    }
    const path = url?.pathname.replace(/^\/+/, '') ?? '';
    const slash = path.indexOf('/');
    if (!url || slash <= 0) throw new HazeError('HAZE_ERR_REFUSED', `push refused by RTMP_PUSH_REWRITE (answer ${JSON.stringify(r.response.slice(0, 200))})`);
    out = { ...out, app: decodeURIComponent(path.slice(0, slash)), name: `${decodeURIComponent(path.slice(slash + 1))}${url.search}`, tcUrl: `${url.protocol}//${url.host}/${path.slice(0, slash)}` };
  }
  const { name, query } = splitNameQuery(out.name);
  if (triggers.hasHandlers('PUSH_REWRITE', '')) {
    const r = await triggers.fire('PUSH_REWRITE', '', { pushUrl: fullUrl(out), host: out.peer, stream: name });
    if (!r.response) throw new HazeError('HAZE_ERR_REFUSED', 'push refused by PUSH_REWRITE');
    const q = query.toString();
    out = { ...out, name: `${r.response}${q ? `?${q}` : ''}` };
  }
  const stream = splitNameQuery(out.name).name;
  if (stream && !(await triggers.fire('STREAM_PUSH', stream, { stream, host: out.peer, connector: 'RTMP', requestUrl: fullUrl(out) })).allowed) {
    throw new HazeError('HAZE_ERR_REFUSED', `push of ${stream} refused by STREAM_PUSH`);
  }
  return out;
}

export function rtmpHandler(hubs: HubManager, config: ConfigView, stats: WorkerStats, log: Logger, vod?: VodStreams, access?: RtmpAccess): RtmpSessionHandler {
  return {
    async publish(asked) {
      let req = asked;
      try {
        if (access) req = await pushTriggers(access.triggers, asked);
      } catch (err) {
        log.warn(`RTMP publish of ${asked.name} from ${asked.peer} refused: ${errorText(err)}`);
        throw err;
      }
      const { name, query } = splitNameQuery(req.name);
      if (!name) throw new HazeError('HAZE_ERR_INVALID_ARG', `invalid stream name ${JSON.stringify(req.name)}`);
      const password = query.get('pass') ?? query.get('password') ?? req.app;
      try {
        await checkPush(name, config.stream(name)?.source, req.peer, password);
        const { hub, end } = hubs.startPublish(name);
        const publisher = new FlvPublisher(hub);
        const input = stats.inputStarted(name, 'RTMP', req.peer);
        log.info(`RTMP publish of ${name} from ${req.peer} accepted`);
        return {
          media: (typeId, timestampMs, body) => {
            publisher.message(typeId, timestampMs, body);
            input.bytesIn += body.length;
          },
          close: (reason) => {
            log.info(`RTMP publish of ${name} from ${req.peer} ended: ${reason}`);
            input.end();
            end(reason, reason === RTMP_UNPUBLISHED);
          },
        };
      } catch (err) {
        log.warn(`RTMP publish of ${name} from ${req.peer} refused: ${errorText(err)}`);
        throw err;
      }
    },
    async play(req, out) {
      const { name, query } = splitNameQuery(req.name);
      if (!name) throw new HazeError('HAZE_ERR_NOT_FOUND', `invalid stream name ${JSON.stringify(req.name)}`);
      if (access) {
        const token = query.get('tkn') ?? '';
        const admitted = await access.gate.admit({ stream: name, host: req.peer, token, connector: 'RTMP', requestUrl: fullUrl(req), sessionId: sessionId(name, req.peer, token) });
        if (!admitted) throw new HazeError('HAZE_ERR_REFUSED', `Access to ${name} denied`);
      }
      if (vod?.isVod(name)) {
        // a Start argument of the play command (rtmpdump -A) stands for ?start=
        if (req.startMs !== undefined && !query.has('start')) query.set('start', String(Math.round(req.startMs)));
        const source = playVodRtmp(await vod.open(name), query, out, log);
        log.info(`RTMP VoD play of ${name} from ${req.peer}`);
        return source;
      }
      const hub = await hubs.forViewer(name);
      const viewer = startViewer(hub, RTMP_FORMAT, selectorQuery(query), {
        write: (b) => out.write(b),
        writev: (chunks) => out.writev(chunks),
        get writableLength() {
          return out.writableLength();
        },
        close: (reason) => {
          if (!out.open) return;
          if (reason.startsWith('too slow')) out.close(reason);
          else out.end(reason);
        },
      });
      stats.viewerStarted(name, 'RTMP', req.peer, viewer);
      return { close: (reason) => viewer.close(reason) };
    },
  };
}
