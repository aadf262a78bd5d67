// What an RTSP connection may do in a worker (port 5554, rtsp://host:5554/NAME): publish into a
// hub with the push rules every protocol follows (reference §5.4: stream keys and input JWTs,
// PUSH_REWRITE / STREAM_PUSH, the stream's push allow-list and ?pass=, STREAM_LOAD), and play
// from one through the viewer access of every output (PLAY_REWRITE, CONN_*, USER_NEW,
// statistics as connector RTSP). RTP is serialized once per stream and track selection for
// all RTSP viewers (protocols/rtsp/rtp-writer.ts) and sent through the slow-reader policy of
// outputs/viewer.ts: a viewer that falls behind skips to the next keyframe.

import type { RtspPlayback, RtspPublishTarget, RtspSessionHandler, RtspStreamRequest } from '../protocols/rtsp/server-session.js';
import type { PlaySink } from '../protocols/rtsp/play-sink.js';
import { RtpChunkWriter } from '../protocols/rtsp/rtp-writer.js';
import { outgoingTracks, RTP_CODECS } from '../protocols/rtsp/sdp-tracks.js';
import type { StreamHub } from '../hub/stream-hub.js';
import type { Track } from '../media/types.js';
import { startPlay, type PlayAccess, type PlayConnection } from '../outputs/play-access.js';
import { selectorQuery, sessionId, startViewer, type OutputFormat } from '../outputs/play.js';
import { selectTracks, type FormatCapability } from '../outputs/track-select.js';
import type { Viewer } from '../outputs/viewer.js';
import { checkPush } from '../inputs/push-policy.js';
import { rawPushName, type PushAccess, type PushGrant } from '../access/push-access.js';
import type { JwtKeyring } from '../access/keyring.js';
import { playNameGrant, viewerTokenValid } from '../access/viewer-access.js';
import type { TriggerDispatcher } from '../triggers/dispatch.js';
import { HazeError, errorText } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { splitNameQuery } from '../util/stream-name.js';
import type { ConfigView } from './config-view.js';
import type { HubManager } from './hub-manager.js';
import { incomingPushTriggers } from './push-triggers.js';
import type { ViewerGate } from './worker-triggers.js';
import type { WorkerStats } from './worker-stats.js';
import type { VodStreams } from '../vod/vod-streams.js';

export const RTSP_CAPABILITY: FormatCapability = { codecs: { video: RTP_CODECS.video, audio: RTP_CODECS.audio }, singlePerType: false };

export interface RtspAccess {
  triggers: TriggerDispatcher;
  gate: ViewerGate;
  push?: PushAccess;
  play?: PlayAccess;
  keyring?: JwtKeyring;
}

/** The RTSP output format of one hub: its writer needs the hub's clock for sender reports. */
function rtspFormat(hub: StreamHub): OutputFormat {
  return { name: 'RTSP', capability: RTSP_CAPABILITY, makeWriter: () => new RtpChunkWriter(() => hub.unixZeroMs) };
}

/** A URL path's stream part, percent-decoded (`live%2Bcam?pass=x` -> `live+cam?pass=x`). */
function decodedPath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

export function rtspHandler(hubs: HubManager, config: ConfigView, stats: WorkerStats, log: Logger, vod?: VodStreams, access?: RtspAccess): RtspSessionHandler {
  return {
    async publish(req: RtspStreamRequest, tracks: readonly Track[]): Promise<RtspPublishTarget> {
      const raw = decodedPath(req.path);
      let grant: PushGrant | undefined;
      try {
        // push rules step 1: a stream key or an input JWT names the stream; no other check applies
        grant = access?.push?.grant(rawPushName(raw), req.peer);
      } catch (err) {
        log.warn(`RTSP publish of ${access!.push!.forLog(rawPushName(raw))} from ${req.peer} refused: ${errorText(err)}`);
        throw err;
      }
      const { name: asked, query } = splitNameQuery(raw);
      let name = grant?.stream ?? asked;
      try {
        if (!name) throw new HazeError('HAZE_ERR_INVALID_ARG', `invalid stream name ${JSON.stringify(raw)}`);
        if (access && !grant) name = await incomingPushTriggers(access.triggers, { url: req.url, host: req.peer, stream: name, connector: 'RTSP' });
        if (!grant) await checkPush(name, config.stream(name)?.source, req.peer, query.get('pass') ?? query.get('password') ?? '');
        if (!(await hubs.allowLoad(name))) throw new HazeError('HAZE_ERR_REFUSED', `push of ${name} refused by STREAM_LOAD`);
      } catch (err) {
        log.warn(`RTSP publish of ${name || raw} from ${req.peer} refused: ${errorText(err)}`);
        throw err;
      }
      const stream = name;
      const { hub, end } = hubs.startPublish(stream);
      // STREAM_READY or LIVE_BANDWIDTH may shut the stream down
      const offShutdown = hubs.onShutdown(stream, (reason) => req.end(reason));
      const input = stats.inputStarted(stream, 'RTSP', req.peer);
      const tracked = access?.play?.track({ kind: 'input', stream, host: req.peer, token: '', connector: 'INPUT:RTSP', requestUrl: req.url, bytes: () => ({ down: 0, up: input.bytesIn }) });
      log.info(`RTSP publish of ${stream} from ${req.peer} accepted (${tracks.map((t) => t.codec).join(', ')})${grant ? ` (${grant.via})` : ''}`);
      let closed = false;
      return {
        setTrack: (t) => hub.setTrack(t),
        push: (p) => hub.push(p),
        countBytes: (n) => (input.bytesIn += n),
        close: (reason, clean) => {
          if (closed) return;
          closed = true;
          log.info(`RTSP publish of ${stream} from ${req.peer} ended: ${reason}`);
          offShutdown();
          input.end();
          tracked?.end();
          end(reason, clean);
        },
      };
    },

    async play(req: RtspStreamRequest): Promise<RtspPlayback> {
      const raw = decodedPath(req.path);
      const { name: asked, query } = splitNameQuery(raw);
      // a JWT as the stream name plays its `sub` stream and is the session's token (reference §5.1)
      const keyring = access?.keyring;
      const rawName = rawPushName(raw);
      const grant = keyring ? playNameGrant(rawName, keyring, req.peer) : undefined;
      if (grant && !grant.ok) throw new HazeError('HAZE_ERR_REFUSED', `Access denied: invalid token (${grant.reason})`);
      const name = grant ? grant.stream : asked;
      if (!name) throw new HazeError('HAZE_ERR_NOT_FOUND', `invalid stream name ${JSON.stringify(raw)}`);
      const token = grant ? rawName : (query.get('tkn') ?? query.get('jwt') ?? '');
      const tokenValid = (stream: string): boolean => grant !== undefined || (keyring !== undefined && viewerTokenValid(token, stream, keyring, req.peer));
      const attach = async (stream: string): Promise<{ stream: string; hub: StreamHub }> => {
        if (vod?.isVod(stream)) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${stream} is a file; RTSP plays live streams`);
        return { stream, hub: await hubs.forViewer(stream) };
      };
      let bytesDown = 0;
      let conn: PlayConnection | undefined;
      let attached: { stream: string; hub: StreamHub };
      if (access?.play) {
        // PLAY_REWRITE, CONN_OPEN, fallbacks, USER_NEW, attach, CONN_PLAY; the DESCRIBE's connection is the play's
        const started = await startPlay(access.play, { stream: name, host: req.peer, connector: 'RTSP', requestUrl: req.url }, token, attach, () => {}, () => ({ down: bytesDown, up: 0 }), tokenValid);
        conn = started.conn;
        attached = started.attached;
      } else {
        if (access) {
          const admitted = await access.gate.admit({ stream: name, host: req.peer, token, connector: 'RTSP', requestUrl: req.url, sessionId: sessionId(name, req.peer, token), ...(tokenValid(name) ? { tokenValid: true } : {}) });
          if (!admitted) throw new HazeError('HAZE_ERR_REFUSED', `Access to ${name} denied`);
        }
        attached = await attach(name);
      }
      const { stream, hub } = attached;
      const format = rtspFormat(hub);
      const selector = selectorQuery(query);
      const selected = selectTracks(hub.tracks, selector, RTSP_CAPABILITY).ids;
      const tracks = outgoingTracks(hub.tracks.filter((t) => selected.has(t.id)));
      let viewer: Viewer | undefined;
      let closed = false;
      /** A viewer ended by PAUSE must not end the connection. */
      let pausing = false;
      log.info(`RTSP play of ${stream} by ${req.peer} (${tracks.map((t) => t.track.codec).join(', ')})`);
      return {
        tracks,
        get ended() {
          return hub.isEnded;
        },
        start: (sink: PlaySink) => {
          if (closed || viewer) return;
          pausing = false;
          viewer = startViewer(hub, format, selector, {
            write: (b) => {
              bytesDown += b.length;
              return sink.write(b);
            },
            writev: (chunks) => {
              for (const c of chunks) bytesDown += c.length;
              sink.writev(chunks);
            },
            get writableLength() {
              return sink.writableLength;
            },
            close: (reason) => {
              if (!pausing && !closed) sink.close(reason);
            },
          });
          stats.viewerStarted(stream, 'RTSP', req.peer, viewer);
        },
        stop: () => {
          pausing = true;
          viewer?.close('paused');
          viewer = undefined;
        },
        close: (reason) => {
          if (closed) return;
          closed = true;
          viewer?.close(reason);
          viewer = undefined;
          conn?.close();
        },
      };
    },
  };
}
