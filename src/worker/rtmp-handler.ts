// What an RTMP connection may do in a worker: publish into a hub (push rules of reference
// §5.4: the app is the push password) and play from one (instant start, shared bytes).

import type { RtmpPlayOutput, RtmpPlaySource, RtmpSessionHandler } from '../protocols/rtmp/server-session.js';
import { startPlay, type PlayAccess, type PlayConnection } from '../outputs/play-access.js';
import { checkPush } from '../inputs/push-policy.js';
import { rawPushName, type PushAccess, type PushGrant } from '../access/push-access.js';
import type { JwtKeyring } from '../access/keyring.js';
import { playNameGrant, viewerTokenValid } from '../access/viewer-access.js';
import { FlvPublisher } from '../inputs/flv-publisher.js';
import { FLV_CAPABILITY, makeRtmpWriter } from '../outputs/flv-writer.js';
import { selectorQuery, sessionId, startViewer, type OutputFormat } from '../outputs/play.js';
import type { RtmpStreamRequest } from '../protocols/rtmp/server-session.js';
import type { TriggerDispatcher } from '../triggers/dispatch.js';
import type { ViewerGate } from './worker-triggers.js';
import { incomingPushTriggers } from './push-triggers.js';
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
  /** Stream keys and input JWTs (push rules step 1). */
  push?: PushAccess;
  /** Viewer access (PLAY_REWRITE, CONN_*, fallbacks, sessions); without it a play is admitted by `gate` alone. */
  play?: PlayAccess;
  /** JWTs as play names and viewer tokens. */
  keyring?: JwtKeyring;
}

/**
 * `out` counting the bytes written to it and reporting when the play ends (CONN_CLOSE). While
 * `held()` (a refused play being detached) the source cannot end the play: the refusal does.
 */
function countedPlayOutput(out: RtmpPlayOutput, count: (n: number) => void, ended: () => void, held: () => boolean): RtmpPlayOutput {
  return {
    write: (bytes) => {
      count(bytes.length);
      return out.write(bytes);
    },
    writev: (chunks) => {
      for (const c of chunks) count(c.length);
      out.writev(chunks);
    },
    writableLength: () => out.writableLength(),
    onDrain: (fn) => out.onDrain(fn),
    end: (reason) => {
      if (held()) return;
      out.end(reason);
      ended();
    },
    close: (reason) => {
      if (held()) return;
      out.close(reason);
      ended();
    },
    get open() {
      return out.open;
    },
  };
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
  if (!name) return out;
  const stream = await incomingPushTriggers(triggers, { url: fullUrl(out), host: out.peer, stream: name, connector: 'RTMP' });
  if (stream !== name) {
    const q = query.toString();
    out = { ...out, name: `${stream}${q ? `?${q}` : ''}` };
  }
  return out;
}

export function rtmpHandler(hubs: HubManager, config: ConfigView, stats: WorkerStats, log: Logger, vod?: VodStreams, access?: RtmpAccess): RtmpSessionHandler {
  return {
    async publish(asked, conn) {
      let req = asked;
      // push rules step 1: a stream key or an input JWT names the stream; no other check applies
      let grant: PushGrant | undefined;
      try {
        grant = access?.push?.grant(rawPushName(asked.name), asked.peer);
      } catch (err) {
        log.warn(`RTMP publish of ${access!.push!.forLog(rawPushName(asked.name))} from ${asked.peer} refused: ${errorText(err)}`);
        throw err;
      }
      try {
        if (access && !grant) req = await pushTriggers(access.triggers, asked);
      } catch (err) {
        log.warn(`RTMP publish of ${asked.name} from ${asked.peer} refused: ${errorText(err)}`);
        throw err;
      }
      const { name: asName, query } = splitNameQuery(req.name);
      const name = grant?.stream ?? asName;
      if (!name) throw new HazeError('HAZE_ERR_INVALID_ARG', `invalid stream name ${JSON.stringify(req.name)}`);
      const password = query.get('pass') ?? query.get('password') ?? req.app;
      try {
        if (!grant) await checkPush(name, config.stream(name)?.source, req.peer, password);
        if (!(await hubs.allowLoad(name))) throw new HazeError('HAZE_ERR_REFUSED', `push of ${name} refused by STREAM_LOAD`);
        const { hub, end } = hubs.startPublish(name);
        // STREAM_READY or LIVE_BANDWIDTH may shut the stream down
        const offShutdown = hubs.onShutdown(name, (reason) => conn.close(reason));
        const publisher = new FlvPublisher(hub);
        const input = stats.inputStarted(name, 'RTMP', req.peer);
        const tracked = access?.play?.track({ kind: 'input', stream: name, host: req.peer, token: '', connector: 'INPUT:RTMP', requestUrl: fullUrl(req), bytes: () => ({ down: 0, up: input.bytesIn }) });
        log.info(`RTMP publish of ${name} from ${req.peer} accepted${grant ? ` (${grant.via})` : ''}`);
        return {
          media: (typeId, timestampMs, body) => {
            publisher.message(typeId, timestampMs, body);
            input.bytesIn += body.length;
          },
          close: (reason) => {
            log.info(`RTMP publish of ${name} from ${req.peer} ended: ${reason}`);
            offShutdown();
            input.end();
            tracked?.end();
            end(reason, reason === RTMP_UNPUBLISHED);
          },
        };
      } catch (err) {
        log.warn(`RTMP publish of ${name} from ${req.peer} refused: ${errorText(err)}`);
        throw err;
      }
    },
    async play(req, out) {
      const { name: asked, query } = splitNameQuery(req.name);
      // a JWT as the stream name plays its `sub` stream and is the session's token (reference §5.1)
      const keyring = access?.keyring;
      const rawName = rawPushName(req.name);
      const grant = keyring ? playNameGrant(rawName, keyring, req.peer) : undefined;
      if (grant && !grant.ok) throw new HazeError('HAZE_ERR_REFUSED', `Access denied: invalid token (${grant.reason})`);
      const name = grant ? grant.stream : asked;
      if (!name) throw new HazeError('HAZE_ERR_NOT_FOUND', `invalid stream name ${JSON.stringify(req.name)}`);
      const token = grant ? rawName : (query.get('tkn') ?? query.get('jwt') ?? '');
      const tokenValid = (stream: string): boolean => grant !== undefined || (keyring !== undefined && viewerTokenValid(token, stream, keyring, req.peer));
      /** Attaches the player to `stream`: a file's reader or a live feed. */
      const attach = async (stream: string, to: RtmpPlayOutput): Promise<RtmpPlaySource> => {
        if (vod?.isVod(stream)) {
          // a Start argument of the play command (rtmpdump -A) stands for ?start=
          if (req.startMs !== undefined && !query.has('start')) query.set('start', String(Math.round(req.startMs)));
          const source = playVodRtmp(await vod.open(stream), query, to, log);
          log.info(`RTMP VoD play of ${stream} from ${req.peer}`);
          return source;
        }
        const hub = await hubs.forViewer(stream);
        const viewer = startViewer(hub, RTMP_FORMAT, selectorQuery(query), {
          write: (b) => to.write(b),
          writev: (chunks) => to.writev(chunks),
          get writableLength() {
            return to.writableLength();
          },
          close: (reason) => {
            if (!to.open) return;
            if (reason.startsWith('too slow')) to.close(reason);
            else to.end(reason);
          },
        });
        stats.viewerStarted(stream, 'RTMP', req.peer, viewer);
        return { close: (reason) => viewer.close(reason) };
      };
      if (!access?.play) {
        if (access) {
          const admitted = await access.gate.admit({ stream: name, host: req.peer, token, connector: 'RTMP', requestUrl: fullUrl(req), sessionId: sessionId(name, req.peer, token), ...(tokenValid(name) ? { tokenValid: true } : {}) });
          if (!admitted) throw new HazeError('HAZE_ERR_REFUSED', `Access to ${name} denied`);
        }
        return attach(name, out);
      }
      // PLAY_REWRITE, CONN_OPEN, fallbacks, USER_NEW, attach, CONN_PLAY; the play is the connection
      let bytesDown = 0;
      let conn: PlayConnection | undefined;
      let refused = false;
      const counted = countedPlayOutput(out, (n) => (bytesDown += n), () => conn?.close(), () => refused);
      const detach = (source: RtmpPlaySource, reason: string): void => {
        refused = true;
        source.close(reason);
      };
      const started = await startPlay(access.play, { stream: name, host: req.peer, connector: 'RTMP', requestUrl: fullUrl(req) }, token, (stream) => attach(stream, counted), detach, () => ({ down: bytesDown, up: 0 }), tokenValid);
      conn = started.conn;
      if (!out.open) conn.close();
      const source = started.attached;
      return {
        ...source,
        close: (reason) => {
          source.close(reason);
          started.conn.close();
        },
      };
    },
  };
}
