// What an RTMP connection may do in a worker: publish into a hub (push rules of reference
// §5.4: the app is the push password) and play from one (instant start, shared bytes).

import type { RtmpSessionHandler } from '../protocols/rtmp/server-session.js';
import { checkPush } from '../inputs/push-policy.js';
import { FlvPublisher } from '../inputs/flv-publisher.js';
import { FLV_CAPABILITY, makeRtmpWriter } from '../outputs/flv-writer.js';
import { selectorQuery, startViewer, type OutputFormat } from '../outputs/play.js';
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

export function rtmpHandler(hubs: HubManager, config: ConfigView, stats: WorkerStats, log: Logger, vod?: VodStreams): RtmpSessionHandler {
  return {
    async publish(req) {
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
