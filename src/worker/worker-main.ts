// A media worker (DESIGN §3): serves every protocol on the listening sockets the angel hands
// it, hosts the hubs of the streams published to it, relays the others from their workers,
// and answers the controller on its control socket. It keeps serving when the angel or the
// controller dies; a fault on one connection ends only that connection.

import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { UDP_OWNER, type AngelMessage } from '../controller/angel.js';
import { createMediaServer } from '../protocols/http/media-server.js';
import { controlWorker, playDtscInto, pushDtscFrom, serveDtscSocket } from '../protocols/dtsc/relay.js';
import { serveDtscConnection } from '../protocols/dtsc/listener.js';
import { checkPush } from '../inputs/push-policy.js';
import { handleRtmpSocket } from '../protocols/rtmp/connection.js';
import { progressiveRoute } from '../outputs/progressive-route.js';
import { hlsTsRoute } from '../outputs/hls-ts.js';
import { cmafRoute } from '../outputs/cmaf.js';
import { streamInfoRoute } from '../outputs/stream-info-route.js';
import { playerRoute } from '../outputs/player-route.js';
import { vodRoute } from '../outputs/vod/vod-route.js';
import { accessRoute } from '../outputs/access-route.js';
import { ViewerGate, workerTriggers } from './worker-triggers.js';
import { ViewerAccess } from './viewer-access.js';
import { SessionStats } from './session-stats.js';
import { setSessionModes } from '../stats/session-id.js';
import { setTokenMode } from '../access/viewer-access.js';
import { ViewerSessions } from './viewer-sessions.js';
import { startPlay } from '../outputs/play-access.js';
import { registerSessionControl, SessionDirectory } from './session-control.js';
import { JwtKeyring } from '../access/keyring.js';
import { PushAccess } from '../access/push-access.js';
import { VodLibrary } from '../vod/vod-library.js';
import { VodStreams } from '../vod/vod-streams.js';
import { cleanBaseUrl } from '../outputs/stream-info.js';
import { HazeError, errorText } from '../util/errors.js';
import { log, setProcessName } from '../util/log.js';
import { ensureRunDirs, pidFile, runPaths, variablesFile, workerSocketPath } from '../util/run-dir.js';
import { ConfigView } from './config-view.js';
import { HubManager, type InputStarter } from './hub-manager.js';
import { playPlaylist } from '../inputs/playlist.js';
import { pullKindFor, type PullKind } from '../inputs/pull/pull-input.js';
import { rtmpPull } from '../inputs/pull/rtmp-pull.js';
import { hlsPull } from '../inputs/pull/hls-pull.js';
import { dtscPull } from '../inputs/pull/dtsc-pull.js';
import { balancePull, selfServerName } from '../inputs/pull/balance-pull.js';
import { rtspPull } from '../inputs/pull/rtsp-pull.js';
import { tsUdpPull } from '../inputs/pull/ts-udp-pull.js';
import { tsHttpPull } from '../inputs/pull/ts-http-pull.js';
import { tsExecPull } from '../inputs/pull/ts-exec-pull.js';
import { RtspServerSession } from '../protocols/rtsp/server-session.js';
import { rtspHandler } from './rtsp-handler.js';
import { rtmpHandler } from './rtmp-handler.js';
import { WebRtcService, webrtcSignalling } from './webrtc-handler.js';
import { webrtcRoute, webrtcWebSocket } from '../outputs/webrtc-route.js';
import { srtListener, srtPullKind } from './srt-handler.js';
import { StreamTriggers } from './stream-triggers.js';
import { StreamRegistry } from './stream-registry.js';
import { WorkerStats } from './worker-stats.js';
import { WorkerControl } from './worker-control.js';
import { WorkerPushes } from './worker-pushes.js';
import { StreamProcesses } from '../processes/stream-processes.js';
import { streamSourceResolver } from './stream-source.js';
import { incomingPushTriggers } from './push-triggers.js';
import { variableValues } from './variable-values.js';
import { applyVariables } from '../pushes/variables.js';

export interface WorkerStreamStatus {
  name: string;
  /** True when this worker hosts the source (a publisher is connected here). */
  source: boolean;
  online: boolean;
  state: string;
  tracks: number;
  codecs: string[];
  firstms: number;
  lastms: number;
  viewers: number;
  inputs: number;
  views: number;
  downbytes: number;
  upbytes: number;
  /** Bucket counts of the hub's delivery latency histogram (util/histogram.ts). */
  delivery: number[];
}

export interface WorkerStatus {
  worker: number;
  pid: number;
  streams: WorkerStreamStatus[];
}

export async function runWorker(index: number): Promise<void> {
  setProcessName(`worker-${index}`);
  const dataDir = process.env['HAZE_DATA'];
  if (!dataDir) throw new Error('HAZE_DATA is not set (workers are started by haze serve)');
  const paths = runPaths(dataDir);
  ensureRunDirs(paths);
  const wlog = log.child({ worker: index });

  const config = new ConfigView(paths.effectiveConfig);
  // session ids follow the config's session modes (stats/session-id.ts)
  const applyModes = (): void => {
    const c = config.get().config ?? {};
    setSessionModes({ viewer: c['sessionViewerMode'], input: c['sessionInputMode'], output: c['sessionOutputMode'], unspecified: c['sessionUnspecifiedMode'], streamInfo: c['sessionStreamInfoMode'] });
    setTokenMode(c['tknMode']);
  };
  applyModes();
  config.on('change', applyModes);
  config.watch();
  const socketPath = workerSocketPath(paths, index);
  const registry = new StreamRegistry(paths.streams, { pid: process.pid, worker: index, socket: socketPath });
  registry.watch();
  const triggers = workerTriggers(config, wlog);
  const sessions = new SessionDirectory();
  const gate = new ViewerGate(triggers, path.join(paths.run, 'sessions'), sessions);
  const stats = new WorkerStats((stream, connector, peer) => sessions.lastSession(stream, connector, peer));
  // stream keys and JWTs (reference §5.1, §5.4): read from the effective config on every use
  const keyring = new JwtKeyring(() => config.get()['jwks'], wlog);
  const pushAccess = new PushAccess({ streamKeys: () => config.get()['streamkeys'], keyring, isConfigured: (name) => config.stream(name) !== undefined });
  const library = new VodLibrary(wlog);
  // the inputs a worker runs for a stream's first viewer: playlists and pulled sources; each
  // protocol adds its pull kind to `pulls` (inputs/pull/pull-input.ts)
  const pulls: PullKind[] = [rtmpPull, hlsPull, dtscPull, balancePull(() => selfServerName(config.get())), rtspPull, tsUdpPull(), tsHttpPull(), tsExecPull()];
  pulls.push(srtPullKind());
  const pullVariables = variableValues(config, variablesFile(paths));
  const isPlaylist = (source: string): boolean => source.endsWith('.pls') && !/^[a-z][a-z0-9+.-]*:/i.test(source);
  const startInput: InputStarter = {
    accepts: (source) => isPlaylist(source) || pullKindFor(pulls, source) !== undefined,
    start: (name, source, hub, ctl) => {
      if (isPlaylist(source)) return playPlaylist(path.resolve(source), hub, library, wlog, (machine, human) => ctl.aborted(machine, human));
      const kind = pullKindFor(pulls, source)!;
      // a source may name its stream's variables (reference §5.3): rtsp://cam/$wildcard for live+cam1
      const url = applyVariables(source, { stream: name, now: new Date(), custom: pullVariables() });
      return kind.start({ name, source: url, hub, tracker: sessionStats, log: wlog.child({ pull: kind.name }), aborted: (machine, human) => ctl.aborted(machine, human) });
    },
  };
  const hubs = new HubManager(
    config,
    registry,
    (claim, hub, onEnd) => playDtscInto(claim.socket, claim.stream, hub, onEnd, wlog),
    wlog,
    (name) => stats.streamEnded(name),
    startInput,
    // publishers of a multi_input stream hosted by another worker are forwarded to it
    (claim, input, onEnd) => pushDtscFrom(claim.socket, claim.stream, input, onEnd),
  );
  // STREAM_LOAD/READY/BUFFER/UNLOAD/END, LIVE_TRACK_LIST, LIVE_BANDWIDTH, INPUT_ABORT
  const streamTriggers = new StreamTriggers({ worker: index, hubs, config, triggers, stats, runDir: paths.run, log: wlog });

  const status = (): WorkerStatus => {
    const streams: WorkerStreamStatus[] = [];
    for (const [name, { hub, local }] of hubs.hubs) {
      streams.push({
        name,
        source: local,
        online: hub.online,
        state: hub.state,
        tracks: hub.tracks.length,
        codecs: hub.tracks.map((t) => t.codec),
        firstms: hub.firstMs,
        lastms: hub.lastMs,
        ...stats.snapshot(name),
        delivery: hub.deliveryLatency.snapshot(),
      });
    }
    return { worker: index, pid: process.pid, streams };
  };

  // Control socket: relays to other workers and status for the controller.
  try {
    fs.unlinkSync(socketPath);
  } catch {
    // none left over
  }
  const control = new WorkerControl();
  registerSessionControl(control, { gate, stats, directory: sessions, log: wlog });
  const controlServer = net.createServer((sock) => serveDtscSocket(sock, { resolve: (name) => hubs.localSource(name), status, control: (r) => control.handle(r), push: (name) => hubs.acceptForwarded(name), log: wlog }));
  controlServer.on('error', (err) => wlog.error(`control socket: ${err.message}`));
  controlServer.listen(socketPath);

  const pushes = new WorkerPushes({ worker: index, hubs, config, triggers, variables: variableValues(config, variablesFile(paths)), onOutput: (stream) => stats.outputStarted(stream), tracker: { open: (spec) => sessionStats.open(spec) }, log: wlog.child({ proc: 'push' }) });
  pushes.register(control);
  // stream processes (processes[] of a stream's config, ensureOpus): run where the source hub is
  const processes = new StreamProcesses({
    worker: index,
    hubs,
    settings: (name) => config.stream(name),
    onConfigChange: (fn) => void config.on('change', fn),
    forward: async (stream, request) => {
      const claim = registry.lookup(stream);
      return claim ? controlWorker(claim.socket, request, 30_000) : undefined;
    },
    log: wlog.child({ proc: 'process' }),
  });
  processes.register(control);

  const vod = new VodStreams((name) => config.stream(name)?.source, library, streamSourceResolver(triggers));
  // viewer access: PLAY_REWRITE, CONN_*, fallbacks, viewer sessions (USER_END)
  // statistics: every connection's session (USER_END and the access log when it ends)
  const viewerSessions = new ViewerSessions({ dir: path.join(paths.run, 'viewer-sessions'), worker: index, log: wlog, onEnd: (s) => sessionStats.ended(s) });
  const sessionStats = new SessionStats({ worker: index, sessions: viewerSessions, triggers, config, log: wlog, onOpen: (spec) => (spec.kind === 'viewer' ? stats.viewerConnection(spec.stream, () => spec.bytes().down) : undefined) });
  sessionStats.register(control);
  void viewerSessions.removeLeftovers();
  const viewers = new ViewerAccess({
    triggers,
    config,
    streams: { isConfigured: (n) => hubs.isConfigured(n), hasSource: (n) => hubs.hasSource(n), liveHub: (n) => hubs.hubs.get(n)?.hub, endedHub: (n) => hubs.endedHub(n), isVod: (n) => vod.isVod(n), openVod: (n) => vod.open(n) },
    admit: (v) => gate.admit(v),
    tracker: sessionStats,
    variables: variableValues(config, variablesFile(paths)),
    log: wlog,
  });
  const ports: { http: number; rtmp?: number } = { http: 8080 };
  const infoRoute = streamInfoRoute({
    isConfigured: (name) => hubs.isConfigured(name),
    onlineHub: (name) => hubs.forViewer(name, hubs.hasSource(name) ? 2000 : 0),
    ports: () => ports,
    publicAddresses: () => config.publicAddresses().map(cleanBaseUrl).filter((u): u is string => u !== undefined),
    vodTracks: async (name) => {
      if (!vod.isVod(name)) return undefined;
      const file = await vod.open(name);
      return file.index.tracks.map((t) => ({ ...t.track, firstMs: t.firstMs, lastMs: t.lastMs, maxBps: t.maxBps }));
    },
  });
  // WebRTC (WHIP/WHEP, /webrtc/ WebSocket): every peer lives in the worker owning the UDP port;
  // the others pass the signalling on to it (webrtc-handler.ts)
  const webrtc = new WebRtcService({ hubs, config, triggers, push: pushAccess, play: viewers, tracker: sessionStats, stats, keyring, ensureOpus: (stream) => processes.ensureOpus(stream), log: wlog });
  webrtc.registerControl(control);
  const rtcSignalling = webrtcSignalling(webrtc, workerSocketPath(paths, UDP_OWNER), config, controlWorker);
  const forViewer = (name: string): ReturnType<HubManager['forViewer']> => hubs.forViewer(name);
  const segmented = { forViewer, endedHub: (name: string) => hubs.endedHub(name) };
  const http = createMediaServer([accessRoute(viewers, keyring), infoRoute, vodRoute(vod), playerRoute({ isConfigured: (name) => hubs.isConfigured(name) }), hlsTsRoute(segmented), cmafRoute(segmented), progressiveRoute({ forViewer: (name) => hubs.forViewer(name), onViewer: (s, c, p, v) => stats.viewerStarted(s, c, p, v) }), webrtcRoute(rtcSignalling)], wlog, [webrtcWebSocket(rtcSignalling)]);
  const rtmp = net.createServer((socket) => {
    socket.on('error', () => {});
    handleRtmpSocket(socket, rtmpHandler(hubs, config, stats, wlog, vod, { triggers, gate, push: pushAccess, play: viewers, keyring }), wlog);
  });
  // dtsc:// (port 4200): pulls of any stream, pushes with the push rules (reference §2.6)
  const dtsc = net.createServer((socket) => {
    socket.on('error', () => {});
    serveDtscConnection(socket, {
      forViewer: (name) => hubs.forViewer(name),
      openPull: async (name, peer, requestUrl, bytes) => {
        const p = await startPlay(viewers, { stream: name, host: peer, connector: 'DTSC', requestUrl }, '', (stream) => hubs.forViewer(stream), () => {}, bytes);
        return { hub: p.attached, end: () => p.conn.close() };
      },
      startPush: async (name, password, peer, raw) => {
        // a stream key or an input JWT names the stream and skips the other checks
        const grant = pushAccess.grant(raw, peer);
        const stream = grant?.stream ?? (await incomingPushTriggers(triggers, { url: `dtsc://${(socket.localAddress ?? '').replace(/^::ffff:/, '')}:${socket.localPort ?? ''}/${name}`, host: peer, stream: name, connector: 'DTSC' }));
        if (!grant) await checkPush(stream, config.stream(stream)?.source, peer, password);
        if (!(await hubs.allowLoad(stream))) throw new HazeError('HAZE_ERR_REFUSED', `push of ${stream} refused by STREAM_LOAD`);
        const pub = hubs.startPublish(stream);
        const offShutdown = hubs.onShutdown(stream, () => socket.destroy());
        const base = { down: socket.bytesWritten, up: socket.bytesRead };
        const tracked = sessionStats.open({ kind: 'input', stream, host: peer, token: '', connector: 'INPUT:DTSC', bytes: () => ({ down: socket.bytesWritten - base.down, up: socket.bytesRead - base.up }) });
        const end = (reason: string, clean: boolean): void => {
          tracked.end();
          offShutdown();
          pub.end(reason, clean);
        };
        return { hub: pub.hub, end, stream };
      },
      pushLabel: (raw) => pushAccess.forLog(raw),
      log: wlog.child({ proto: 'DTSC' }),
    });
  });
  // RTSP (port 5554): publish (ANNOUNCE/RECORD) and play (DESCRIBE/SETUP/PLAY), RTP over UDP or interleaved
  const rtspLog = wlog.child({ proto: 'RTSP' });
  const rtsp = net.createServer((socket) => {
    socket.on('error', () => {});
    new RtspServerSession(socket, rtspHandler(hubs, config, stats, rtspLog, vod, { triggers, gate, push: pushAccess, play: viewers, keyring }), rtspLog);
  });
  rtsp.on('error', (err) => wlog.error(`RTSP: ${err.message}`));
  const servers: net.Server[] = [controlServer, http, rtmp, dtsc, rtsp];
  dtsc.on('error', (err) => wlog.error(`DTSC: ${err.message}`));
  http.on('error', (err) => wlog.error(`HTTP: ${err.message}`));
  rtmp.on('error', (err) => wlog.error(`RTMP: ${err.message}`));

  // UDP connectors (SRT, WebRTC media) come only to the worker that owns their port (the angel's
  // UDP_OWNER), as a bound socket; each protocol registers what serves it here
  const udpServers: Partial<Record<string, (socket: dgram.Socket, port: number) => void>> = {};
  udpServers['WebRTC'] = (socket, port) => webrtc.attach(socket, port);
  udpServers['TSSRT'] = srtListener({ hubs, config, stats, tracker: sessionStats, triggers, push: pushAccess, play: viewers, keyring, log: wlog });
  process.on('message', (msg: AngelMessage, handle?: unknown) => {
    if (msg.type !== 'listen' || !handle) return;
    if (handle instanceof dgram.Socket) {
      const serve = udpServers[msg.connector];
      if (!serve) {
        wlog.info(`${msg.connector}: not served by this release`);
        handle.close();
        return;
      }
      handle.on('error', (err) => wlog.error(`${msg.connector}: ${err.message}`));
      serve(handle, msg.port);
      wlog.debug(`serving ${msg.connector} on UDP port ${msg.port}`);
      return;
    }
    const target = msg.connector === 'HTTP' ? http : msg.connector === 'RTMP' ? rtmp : msg.connector === 'DTSC' ? dtsc : msg.connector === 'RTSP' ? rtsp : undefined;
    if (!target) {
      wlog.info(`${msg.connector}: not served by this release`);
      return;
    }
    if (msg.connector === 'HTTP') ports.http = msg.port;
    else if (msg.connector === 'RTMP') ports.rtmp = msg.port;
    target.listen(handle as net.Server, () => wlog.debug(`serving ${msg.connector} on port ${msg.port}`));
  });
  // Losing the angel (kill -9) must not stop the media: keep serving.
  process.on('disconnect', () => wlog.warn('lost the angel; serving on'));

  fs.writeFileSync(pidFile(paths, `worker-${index}`), String(process.pid));

  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    wlog.info(`${sig}: stopping`);
    // recordings finish their files (an MP4 writes its index last) before the process goes
    const pushesClosed = pushes.close();
    processes.close();
    webrtc.close();
    streamTriggers.close();
    registry.close();
    hubs.closeAll('server stopping');
    vod.library.close();
    gate.close();
    viewerSessions.close();
    sessions.close();
    for (const s of servers) s.close();
    try {
      fs.unlinkSync(socketPath);
      fs.unlinkSync(pidFile(paths, `worker-${index}`));
    } catch {
      // already gone
    }
    const exit = setTimeout(() => process.exit(0), 3000);
    exit.unref();
    void pushesClosed.finally(() => setTimeout(() => process.exit(0), 200).unref());
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('uncaughtException', (err) => {
    // A connection's fault is caught where it happens; reaching here means this worker's
    // state is unknown, so it exits and the angel starts a fresh one.
    wlog.error(`uncaught exception, exiting: ${err.stack ?? errorText(err)}`);
    registry.releaseAll();
    process.exit(70);
  });
}
