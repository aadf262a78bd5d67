// SRT in a worker (reference §5.4 and the TSSRT connector): the listener on the UDP port the
// angel hands to its UDP owner, and `srt://` pulls (Haze calls `srt://host:port`, or listens
// for one caller on `srt://:port`).
//
// A caller's stream id names the stream: `NAME`, or `#!::r=NAME,m=publish` (m=request plays).
// With no mode, the connection publishes if it sends data within 3 s and plays otherwise, as
// MistServer's TSSRT does; the protocol entry's `acceptable` (0 both, 1 play only, 2 publish
// only) narrows that. A publish follows the push rules of every protocol (stream keys and
// JWTs, PUSH_REWRITE, STREAM_PUSH, the stream's push source, STREAM_LOAD) and feeds MPEG-TS
// through the TS demuxer into the stream's hub; a play is admitted like any viewer (startPlay)
// and reads the stream's shared MPEG-TS feed (the one /NAME.ts viewers read) in SRT payloads of
// seven TS packets. A viewer whose payloads wait to be sent longer than the connection's
// latency skips to the next keyframe instead of queueing more. The protocol entry's
// `passphrase` encrypts the listener (callers without it, or with another, are refused with a
// log line) and `latency` (ms, default 120) sets the latency it offers.

import type dgram from 'node:dgram';
import type { JwtKeyring } from '../access/keyring.js';
import { rawPushName, type PushAccess } from '../access/push-access.js';
import { viewerTokenValid } from '../access/viewer-access.js';
import { TsDemuxer } from '../containers/ts/demux.js';
import type { Track } from '../media/types.js';
import { checkPush } from '../inputs/push-policy.js';
import { reconnectingPull, type PullKind, type PullSink } from '../inputs/pull/pull-input.js';
import { getFeed } from '../outputs/feed.js';
import { TS_FORMAT } from '../outputs/formats.js';
import { startPlay, type PlayAccess } from '../outputs/play-access.js';
import { selectorQuery } from '../outputs/play.js';
import { selectionKey, selectTracks } from '../outputs/track-select.js';
import { Viewer, type ByteSink, type ViewerPolicy } from '../outputs/viewer.js';
import { parseSrtUrl, srtCall, srtListenOnce, type SrtWaitingListener } from '../protocols/srt/caller.js';
import { DEFAULT_LATENCY_MS, type SrtStats } from '../protocols/srt/connection.js';
import { SrtMultiplexer, type SrtSocket } from '../protocols/srt/multiplexer.js';
import { parseStreamId, type StreamMode } from '../protocols/srt/stream-id.js';
import { TsPayloader } from '../protocols/srt/ts-payloads.js';
import type { ConnectionTracker } from '../stats/tracker.js';
import type { TriggerDispatcher } from '../triggers/dispatch.js';
import { errorText, HazeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { sanitizeStreamName, splitNameQuery } from '../util/stream-name.js';
import type { ConfigView } from './config-view.js';
import type { HubManager } from './hub-manager.js';
import { incomingPushTriggers } from './push-triggers.js';
import type { WorkerStats } from './worker-stats.js';

/** How long a connection that names no mode has to send data before it is taken for a player. */
const MODE_WAIT_MS = 3000;
/** Payloads kept while a publish is being admitted. */
const MAX_EARLY_BYTES = 8 * 1024 * 1024;
/**
 * SRT viewers: the byte bounds only cap memory; falling behind is measured in time (the sink
 * reports itself full once its oldest unsent payload is older than the latency).
 */
const SRT_VIEWER_POLICY: ViewerPolicy = { highWaterBytes: 8 * 1024 * 1024, lowWaterBytes: 256 * 1024, maxBehindMs: 15_000 };

export interface SrtDeps {
  hubs: HubManager;
  config: ConfigView;
  stats: WorkerStats;
  /** Statistics of the connections (INPUT:TSSRT and TSSRT sessions). */
  tracker: ConnectionTracker;
  triggers: TriggerDispatcher;
  push: PushAccess;
  play: PlayAccess;
  keyring?: JwtKeyring;
  log: Logger;
}

/** The TSSRT protocol entry's settings, read at every handshake (config changes apply to new callers). */
interface SrtSettings {
  passphrase: string;
  latencyMs: number;
  /** 0 publish and play, 1 play only, 2 publish only. */
  acceptable: number;
}

function settingsOf(config: ConfigView): SrtSettings {
  const protocols = config.get().config?.['protocols'];
  const entry = Array.isArray(protocols) ? (protocols.find((p) => typeof p === 'object' && p !== null && (p as Record<string, unknown>)['connector'] === 'TSSRT') as Record<string, unknown> | undefined) : undefined;
  const latency = Number(entry?.['latency']);
  const acceptable = Number(entry?.['acceptable']);
  return {
    passphrase: typeof entry?.['passphrase'] === 'string' ? entry['passphrase'] : '',
    latencyMs: Number.isFinite(latency) && latency >= 20 && latency <= 60_000 ? Math.round(latency) : DEFAULT_LATENCY_MS,
    acceptable: acceptable === 1 || acceptable === 2 ? acceptable : 0,
  };
}

/** The figures a closed connection's log line reports. */
export function statsText(s: SrtStats): string {
  return `sent ${s.packetsSent} packets (${s.packetsRetransmitted} retransmitted, ${s.packetsSendDropped} dropped), received ${s.packetsReceived} (${s.packetsLost} lost, ${s.packetsRecovered} recovered, ${s.packetsDropped} dropped too late), ${s.naksSent} NAKs sent, ${s.naksReceived} received, RTT ${(s.rttUs / 1000).toFixed(1)} ms`;
}

/** Feeds MPEG-TS payloads through a TS demuxer into a hub (or a pull's sink). */
export class TsIngest {
  private readonly demux = new TsDemuxer();
  private trackIds = new Set<number>();
  private baseMs: number | undefined;

  constructor(
    private readonly sink: PullSink,
    /** Publishers start their timeline at 0 (a pull's sink rebases by itself). */
    private readonly rebase: boolean,
  ) {}

  /** Throws HAZE_ERR_MALFORMED when the input is no MPEG-TS at all. */
  push(payload: Buffer): void {
    const r = this.demux.push(payload);
    if (r.tracks) this.setTracks(r.tracks);
    for (const p of r.packets) {
      if (this.rebase) {
        this.baseMs ??= p.timeMs;
        p.timeMs = Math.max(0, p.timeMs - this.baseMs);
      }
      this.sink.push(p);
    }
  }

  private setTracks(tracks: readonly Track[]): void {
    const ids = new Set(tracks.map((t) => t.id));
    for (const id of this.trackIds) if (!ids.has(id)) this.sink.removeTrack(id);
    for (const t of tracks) this.sink.setTrack(t);
    this.trackIds = ids;
  }
}

/** The listener: `udpServers['TSSRT']` in worker-main. */
export function srtListener(deps: SrtDeps): (socket: dgram.Socket, port: number) => void {
  const log = deps.log.child({ proto: 'TSSRT' });
  let lastPassphrase: string | undefined;
  return (udp, port) => {
    const mux = new SrtMultiplexer(udp, log, {
      get latencyMs() {
        return settingsOf(deps.config).latencyMs;
      },
      passphraseFor: () => settingsOf(deps.config).passphrase,
      onRefused: (address, peerPort, streamId, why) => log.warn(`SRT caller ${address}:${peerPort}${streamId ? ` (stream id ${JSON.stringify(streamId.slice(0, 120))})` : ''} refused: ${why}`),
      onConnection: (socket) => handleConnection(deps, socket, port, log),
    });
    // operators (and tests) see when the listener's encryption changes
    const announce = (): void => {
      const pass = settingsOf(deps.config).passphrase;
      if (pass === lastPassphrase) return;
      if (lastPassphrase !== undefined || pass) log.info(pass ? `SRT on UDP port ${port}: callers must use the configured passphrase` : `SRT on UDP port ${port}: no passphrase`);
      lastPassphrase = pass;
    };
    announce();
    deps.config.on('change', announce);
    log.info(`SRT listening on UDP port ${port}`);
    udp.on('close', () => mux.close('server stopping'));
  };
}

function handleConnection(deps: SrtDeps, socket: SrtSocket, port: number, log: Logger): void {
  const sid = socket.streamId;
  const req = parseStreamId(sid);
  const settings = settingsOf(deps.config);
  const requestUrl = `srt://127.0.0.1:${port}?streamid=${encodeURIComponent(sid)}`;
  // a stream key or JWT as the stream id is never written out
  const label = `SRT ${socket.peer}:${socket.port} (${deps.push.forLog(rawPushName(req.name || sid))})`;
  const refuse = (why: string): void => {
    log.warn(`${label} refused: ${why}`);
    socket.onClose = () => {};
    socket.close(why);
  };
  if (!req.name) {
    refuse('no stream name in the stream id');
    return;
  }
  let mode: StreamMode | undefined = req.mode === 'bidirectional' ? undefined : req.mode;
  if (settings.acceptable === 1) {
    if (mode === 'publish') return refuse('this listener only plays streams (acceptable=1)');
    mode = 'request';
  } else if (settings.acceptable === 2) {
    if (mode === 'request') return refuse('this listener only takes publishers (acceptable=2)');
    mode = 'publish';
  }
  const early: Buffer[] = [];
  let earlyBytes = 0;
  const collect = (p: Buffer): void => {
    if (earlyBytes + p.length > MAX_EARLY_BYTES) return;
    early.push(p);
    earlyBytes += p.length;
  };
  socket.onClose = (reason) => log.info(`${label} ended before it started: ${reason}`);
  if (mode === 'publish') {
    socket.onData = collect;
    void publish(deps, socket, req.name, early, requestUrl, label, log).catch((err: unknown) => refuse(errorText(err)));
    return;
  }
  if (mode === 'request') {
    void play(deps, socket, req.name, requestUrl, label, log).catch((err: unknown) => refuse(errorText(err)));
    return;
  }
  // no mode: data within MODE_WAIT_MS makes it a publisher, silence a player
  const timer = setTimeout(() => {
    socket.onData = () => {};
    void play(deps, socket, req.name, requestUrl, label, log).catch((err: unknown) => refuse(errorText(err)));
  }, MODE_WAIT_MS);
  socket.onData = (p) => {
    clearTimeout(timer);
    collect(p);
    socket.onData = collect;
    void publish(deps, socket, req.name, early, requestUrl, label, log).catch((err: unknown) => refuse(errorText(err)));
  };
  socket.onClose = (reason) => {
    clearTimeout(timer);
    log.info(`${label} ended before it started: ${reason}`);
  };
}

async function publish(deps: SrtDeps, socket: SrtSocket, asked: string, early: Buffer[], requestUrl: string, label: string, log: Logger): Promise<void> {
  const peer = socket.peer;
  const raw = rawPushName(asked);
  // push rules step 1: a stream key or an input JWT names the stream; no other check applies
  const grant = deps.push.grant(raw, peer);
  const { name: plain, query } = splitNameQuery(asked);
  let stream = grant?.stream ?? sanitizeStreamName(plain);
  if (!stream) throw new HazeError('HAZE_ERR_INVALID_ARG', `invalid stream name ${JSON.stringify(plain.slice(0, 120))}`);
  if (!grant) {
    stream = await incomingPushTriggers(deps.triggers, { url: requestUrl, host: peer, stream, connector: 'TSSRT' });
    await checkPush(stream, deps.config.stream(stream)?.source, peer, query.get('pass') ?? query.get('password') ?? '');
  }
  if (!(await deps.hubs.allowLoad(stream))) throw new HazeError('HAZE_ERR_REFUSED', `push of ${stream} refused by STREAM_LOAD`);
  if (socket.closed) return;
  const { hub, end } = deps.hubs.startPublish(stream);
  const offShutdown = deps.hubs.onShutdown(stream, (reason) => socket.close(reason));
  const input = deps.stats.inputStarted(stream, 'TSSRT', peer);
  const tracked = deps.tracker.open({ kind: 'input', stream, host: peer, token: '', connector: 'INPUT:TSSRT', requestUrl, bytes: () => ({ down: 0, up: socket.conn.stats.bytesReceived }) });
  const ingest = new TsIngest({ setTrack: (t) => hub.setTrack(t), removeTrack: (id) => hub.removeTrack(id), push: (p) => hub.push(p) }, true);
  log.info(`${label}: publishing ${stream}${grant ? ` (${grant.via})` : ''}${socket.conn.encrypted ? ', encrypted' : ''}, latency ${socket.conn.latencyMs} ms`);
  const feed = (payload: Buffer): void => {
    input.bytesIn += payload.length;
    try {
      ingest.push(payload);
    } catch (err) {
      socket.close(`not MPEG-TS: ${errorText(err)}`);
    }
  };
  socket.onClose = (reason) => {
    log.info(`${label}: publish of ${stream} ended: ${reason}; ${statsText(socket.conn.stats)}`);
    offShutdown();
    input.end();
    tracked.end();
    // the caller's SHUTDOWN is a clean end of the stream; a lost caller leaves viewers the grace period
    end(reason, reason === 'the peer closed the connection');
  };
  socket.onData = feed;
  for (const p of early.splice(0)) {
    if (socket.closed) break;
    feed(p);
  }
}

async function play(deps: SrtDeps, socket: SrtSocket, asked: string, requestUrl: string, label: string, log: Logger): Promise<void> {
  const peer = socket.peer;
  const { name: plain, query } = splitNameQuery(asked);
  const name = sanitizeStreamName(plain);
  if (!name) throw new HazeError('HAZE_ERR_NOT_FOUND', `invalid stream name ${JSON.stringify(plain.slice(0, 120))}`);
  const token = query.get('tkn') ?? query.get('jwt') ?? '';
  const tokenValid = (stream: string): boolean => deps.keyring !== undefined && token !== '' && viewerTokenValid(token, stream, deps.keyring, peer);
  const sel = selectorQuery(query);
  const format = TS_FORMAT;
  let viewer: Viewer | undefined;
  let ended = false;
  socket.onClose = (reason) => {
    ended = true;
    viewer?.close(reason);
  };
  const attach = async (stream: string): Promise<Viewer> => {
    const hub = await deps.hubs.forViewer(stream);
    if (socket.closed) throw new HazeError('HAZE_ERR_CLOSED', 'the caller left');
    const conn = socket.conn;
    const payloader = new TsPayloader((p) => socket.send(p));
    const sink: ByteSink = {
      write: (b) => {
        payloader.push(b);
        payloader.flush();
        return true;
      },
      writev: (chunks) => {
        for (const c of chunks) payloader.push(c);
        payloader.flush();
      },
      get writableLength() {
        // what waits longer than the latency would arrive too late: report full, skip to a keyframe
        return conn.oldestUnsentAgeMs(performance.now()) > conn.latencyMs ? Number.MAX_SAFE_INTEGER : conn.queuedBytes;
      },
      close: (reason) => socket.close(reason),
    };
    // the same feed as /NAME.ts viewers: one muxer for every TS viewer of the selection
    const feed = getFeed(hub, format.key ?? format.name, selectionKey(sel), () => ({ writer: format.makeWriter(), select: (tracks) => selectTracks(tracks, sel, format.capability) }));
    const v = new Viewer(sink, SRT_VIEWER_POLICY);
    feed.add(v);
    deps.stats.viewerStarted(stream, 'TSSRT', peer, v);
    return v;
  };
  const started = await startPlay(deps.play, { stream: name, host: peer, connector: 'TSSRT', requestUrl }, token, attach, (v, reason) => v.close(reason), () => ({ down: socket.conn.stats.bytesSent, up: 0 }), tokenValid);
  viewer = started.attached;
  log.info(`${label}: playing ${started.stream}${socket.conn.encrypted ? ', encrypted' : ''}, latency ${socket.conn.latencyMs} ms`);
  const finish = (reason: string): void => {
    log.info(`${label}: play of ${started.stream} ended: ${reason}; ${statsText(socket.conn.stats)}`);
    started.conn.close();
  };
  if (ended) {
    finish(socket.conn.closeReason);
    return;
  }
  socket.onClose = (reason) => {
    viewer?.close(reason);
    finish(reason);
  };
}

/**
 * `srt://host:port[?streamid=..&passphrase=..&latency=..]` sources: Haze calls the host (caller
 * mode); `srt://:port` (or `?mode=listener`): Haze listens on that port for one caller.
 */
export function srtPullKind(): PullKind {
  return {
    name: 'SRT',
    accepts: (source) => /^srt:\/\//i.test(source),
    start: (ctx) => {
      let url: ReturnType<typeof parseSrtUrl> | undefined;
      let urlError = '';
      try {
        url = parseSrtUrl(ctx.source);
      } catch (err) {
        url = undefined;
        urlError = errorText(err);
      }
      // a listener-mode source (`srt://:PORT`) waits for its caller as long as the pull runs
      let waiting: SrtWaitingListener | undefined;
      const pull = reconnectingPull(ctx, async (sink) => {
        if (!url) throw new HazeError('HAZE_ERR_INVALID_ARG', urlError, { fatal: true });
        let socket: SrtSocket;
        if (url.mode === 'caller') {
          socket = await srtCall(url, ctx.log);
        } else {
          waiting = srtListenOnce(url, ctx.log);
          try {
            socket = await waiting.connected;
          } finally {
            waiting = undefined;
          }
        }
        const peerHost = socket.peer;
        const tracked = ctx.tracker.open({ kind: 'input', stream: ctx.name, host: peerHost, token: '', connector: 'INPUT:TSSRT', requestUrl: ctx.source, bytes: () => ({ down: 0, up: socket.conn.stats.bytesReceived }) });
        const ingest = new TsIngest(sink, false);
        const done = new Promise<string>((resolve) => {
          socket.onClose = (reason) => {
            tracked.end();
            ctx.log.info(`stream ${ctx.name}: SRT source ${ctx.source} ended: ${reason}; ${statsText(socket.conn.stats)}`);
            resolve(reason);
          };
        });
        socket.onData = (payload) => {
          try {
            ingest.push(payload);
          } catch (err) {
            socket.close(`not MPEG-TS: ${errorText(err)}`);
          }
        };
        return { done, close: () => socket.close('pull stopped') };
      }, url?.mode === 'listener' ? { maxInitialFailures: 0 } : {});
      return {
        stop: () => {
          pull.stop();
          waiting?.cancel('pull stopped');
        },
      };
    },
  };
}
