// A media worker (DESIGN §3): serves every protocol on the listening sockets the angel hands
// it, hosts the hubs of the streams published to it, relays the others from their workers,
// and answers the controller on its control socket. It keeps serving when the angel or the
// controller dies; a fault on one connection ends only that connection.

import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import type { AngelMessage } from '../controller/angel.js';
import { createMediaServer } from '../protocols/http/media-server.js';
import { playDtscInto, serveDtscSocket } from '../protocols/dtsc/relay.js';
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
import { VodLibrary } from '../vod/vod-library.js';
import { VodStreams } from '../vod/vod-streams.js';
import { cleanBaseUrl } from '../outputs/stream-info.js';
import { errorText } from '../util/errors.js';
import { log, setProcessName } from '../util/log.js';
import { ensureRunDirs, pidFile, runPaths, workerSocketPath } from '../util/run-dir.js';
import { ConfigView } from './config-view.js';
import { HubManager, type InputStarter } from './hub-manager.js';
import { playPlaylist } from '../inputs/playlist.js';
import { rtmpHandler } from './rtmp-handler.js';
import { StreamRegistry } from './stream-registry.js';
import { WorkerStats } from './worker-stats.js';
import { WorkerControl } from './worker-control.js';

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
  config.watch();
  const socketPath = workerSocketPath(paths, index);
  const registry = new StreamRegistry(paths.streams, { pid: process.pid, worker: index, socket: socketPath });
  registry.watch();
  const stats = new WorkerStats();
  const triggers = workerTriggers(config, wlog);
  const gate = new ViewerGate(triggers, path.join(paths.run, 'sessions'));
  const library = new VodLibrary(wlog);
  const startInput: InputStarter = {
    accepts: (source) => source.endsWith('.pls') && !/^[a-z][a-z0-9+.-]*:/i.test(source),
    start: (_name, source, hub) => playPlaylist(path.resolve(source), hub, library, wlog),
  };
  const hubs = new HubManager(config, registry, (claim, hub, onEnd) => playDtscInto(claim.socket, claim.stream, hub, onEnd, wlog), wlog, (name) => stats.streamEnded(name), startInput);

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
  const controlServer = net.createServer((sock) => serveDtscSocket(sock, { resolve: (name) => hubs.localSource(name), status, control: (r) => control.handle(r), log: wlog }));
  controlServer.on('error', (err) => wlog.error(`control socket: ${err.message}`));
  controlServer.listen(socketPath);

  const vod = new VodStreams((name) => config.stream(name)?.source, library);
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
  const forViewer = (name: string): ReturnType<HubManager['forViewer']> => hubs.forViewer(name);
  const segmented = { forViewer, endedHub: (name: string) => hubs.endedHub(name) };
  const http = createMediaServer([accessRoute((v) => gate.admit(v)), infoRoute, vodRoute(vod), playerRoute({ isConfigured: (name) => hubs.isConfigured(name) }), hlsTsRoute(segmented), cmafRoute(segmented), progressiveRoute({ forViewer: (name) => hubs.forViewer(name), onViewer: (s, c, p, v) => stats.viewerStarted(s, c, p, v) })], wlog);
  const rtmp = net.createServer((socket) => {
    socket.on('error', () => {});
    handleRtmpSocket(socket, rtmpHandler(hubs, config, stats, wlog, vod, { triggers, gate }), wlog);
  });
  // dtsc:// (port 4200): pulls of any stream, pushes with the push rules (reference §2.6)
  const dtsc = net.createServer((socket) => {
    socket.on('error', () => {});
    serveDtscConnection(socket, {
      forViewer: (name) => hubs.forViewer(name),
      startPush: async (name, password, peer) => {
        await checkPush(name, config.stream(name)?.source, peer, password);
        return hubs.startPublish(name);
      },
      log: wlog.child({ proto: 'DTSC' }),
    });
  });
  const servers: net.Server[] = [controlServer, http, rtmp, dtsc];
  dtsc.on('error', (err) => wlog.error(`DTSC: ${err.message}`));
  http.on('error', (err) => wlog.error(`HTTP: ${err.message}`));
  rtmp.on('error', (err) => wlog.error(`RTMP: ${err.message}`));

  process.on('message', (msg: AngelMessage, handle?: unknown) => {
    if (msg.type !== 'listen' || !handle) return;
    const target = msg.connector === 'HTTP' ? http : msg.connector === 'RTMP' ? rtmp : msg.connector === 'DTSC' ? dtsc : undefined;
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
    registry.close();
    hubs.closeAll('server stopping');
    vod.library.close();
    gate.close();
    for (const s of servers) s.close();
    try {
      fs.unlinkSync(socketPath);
      fs.unlinkSync(pidFile(paths, `worker-${index}`));
    } catch {
      // already gone
    }
    setTimeout(() => process.exit(0), 200).unref();
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
