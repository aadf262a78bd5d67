// The controller (DESIGN §3): config, the JSON API on the socket the angel hands it, and
// the view of the running streams gathered from the workers' control sockets. It carries no
// media; when it dies the workers serve on, and a restarted controller finds the running
// streams again through the same sockets.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { queryStatus } from '../protocols/dtsc/relay.js';
import type { WorkerStatus } from '../worker/worker-main.js';
import { addLogSink, log, setProcessName, type LogLevel } from '../util/log.js';
import { pidFile, runPaths, variablesFile } from '../util/run-dir.js';
import type { AngelMessage } from './angel.js';
import type { ActiveStreamStats, ApiHost } from './api.js';
import { createApiRequestHandler } from './api-http.js';
import { handleApiWebSocket } from './api-ws.js';
import { ConfigStore } from './config-store.js';
import { workerLink } from './worker-link.js';
import { CustomVariables } from './custom-variables.js';
import { dropCompletedRules } from './api-pushes.js';
import { controllerTriggers, SystemTriggers } from './system-triggers.js';
import { CONNECTORS, effectivePorts, type HazeConfig, type PortOverrides } from './default-config.js';
import { StatsCollector, type StatsCollectorOptions } from './stats-collector.js';
import { CapacitySampler, connectionFigures } from './api-capacity.js';
import { withSessions } from './api-stats.js';
import { MachineSampler } from '../stats/machine.js';
import type { LogEntry } from '../stats/snapshot.js';

const LOG_RING = 100;
const KIND: Record<LogLevel, string> = { error: 'ERROR', warn: 'WARN', info: 'INFO', debug: 'DEBUG' };

/** Gathers every worker's status and merges it per stream (viewers and bytes add up). */
export async function gatherStreamStats(socketDir: string): Promise<Record<string, Partial<ActiveStreamStats>>> {
  let files: string[] = [];
  try {
    files = fs.readdirSync(socketDir).filter((f) => /^worker-\d+\.sock$/.test(f));
  } catch {
    return {};
  }
  const statuses = (await Promise.all(files.map((f) => queryStatus(path.join(socketDir, f))))) as (WorkerStatus | undefined)[];
  const out: Record<string, Partial<ActiveStreamStats>> = {};
  for (const w of statuses) {
    if (!w) continue;
    for (const s of w.streams) {
      const cur = (out[s.name] ??= { status: 'Offline', viewers: 0, inputs: 0, outputs: 0, clients: 0, views: 0, upbytes: 0, downbytes: 0, tracks: 0, sourcepids: [] });
      cur.viewers! += s.viewers;
      cur.inputs! += s.inputs;
      cur.clients! += s.viewers + s.inputs;
      cur.views! += s.views;
      cur.upbytes! += s.upbytes;
      cur.downbytes! += s.downbytes;
      if (s.source) {
        cur.status = s.online ? 'Online' : 'Waiting for data';
        cur.tracks = s.tracks;
        cur.firstms = s.firstms;
        cur.lastms = s.lastms;
        cur.sourcepids!.push(w.pid);
        cur.pid = w.pid;
      } else if (cur.status === 'Offline' && s.online) {
        cur.status = 'Online';
        cur.tracks = s.tracks;
      }
    }
  }
  return out;
}

/** The streams' session figures (viewers, bytes ...) from the statistics over the workers' own counts. */
function withSessionFigures(streams: Record<string, Partial<ActiveStreamStats>>, stats: StatsCollector): Record<string, Partial<ActiveStreamStats>> {
  const figures = stats.table.streamFigures(Date.now());
  for (const [name, f] of Object.entries(figures)) {
    const now = f.current.viewers + f.current.inputs + f.current.outputs + f.current.unspecified;
    // a file stream is active while it has sessions; one known only from finished sessions is
    // listed by stats_streams, not here
    if (!streams[name] && now === 0) continue;
    streams[name] = withSessions(streams[name] ?? { status: 'Online', tracks: 0, sourcepids: [] }, f, undefined);
  }
  for (const [name, cur] of Object.entries(streams)) cur.tags = [...(stats.table.streamTags.get(name) ?? [])];
  return streams;
}

/** URL templates of the outputs (`HOST` and `$` for the stream), for the Prometheus JSON. */
function outputUrls(config: HazeConfig, overrides: PortOverrides): Record<string, string> {
  const ports = effectivePorts(config, overrides);
  const out: Record<string, string> = {};
  for (const info of Object.values(CONNECTORS)) {
    if (!info.built) continue;
    const http = ports['HTTP'];
    if (info.deps === 'HTTP' && http !== undefined) out[info.name] = `http://HOST:${http}${info.url_match?.[0] ?? `${info.url_prefix ?? '/'}index.m3u8`}`;
    else if (info.name === 'HTTP' && http !== undefined) out[info.name] = `http://HOST:${http}/$.html`;
    else if (info.name === 'RTMP' && ports['RTMP'] !== undefined) out[info.name] = `rtmp://HOST:${ports['RTMP']}/play/$`;
    else if (info.name === 'DTSC' && ports['DTSC'] !== undefined) out[info.name] = `dtsc://HOST:${ports['DTSC']}/$`;
  }
  return out;
}

/** What the statistics snapshot takes from the config. */
function snapshotSettings(config: HazeConfig, overrides: PortOverrides): ReturnType<StatsCollectorOptions['config']> {
  const c = config.config;
  const exceptions = new net.BlockList();
  for (const e of config.bandwidth?.exceptions ?? []) {
    const [addr, bits] = e.split('/');
    const type = net.isIPv6(addr ?? '') ? 'ipv6' : 'ipv4';
    try {
      if (bits !== undefined) exceptions.addSubnet(addr!, Number(bits), type);
      else exceptions.addAddress(addr!, type);
    } catch {
      // not an address: matches nothing
    }
  }
  return {
    location: { lat: Number(c.location?.lat) || 0, lon: Number(c.location?.lon) || 0, name: String(c.location?.name ?? '') },
    bandwidthLimit: config.bandwidth?.limit || 128 * 1024 * 1024,
    configuredStreams: Object.keys(config.streams).sort(),
    tags: [...(config.tags ?? [])],
    outputUrls: outputUrls(config, overrides),
    exceptions: (host) => exceptions.check(host, net.isIPv6(host) ? 'ipv6' : 'ipv4'),
  };
}

export async function runController(): Promise<void> {
  setProcessName('controller');
  const dataDir = process.env['HAZE_DATA'];
  if (!dataDir) throw new Error('HAZE_DATA is not set (the controller is started by haze serve)');
  const paths = runPaths(dataDir);
  const overrides = JSON.parse(process.env['HAZE_PORT_OVERRIDES'] ?? '{}') as PortOverrides;
  // the last lines of the controller and its workers (the API's `log`, the WebSocket feed)
  const ring: LogEntry[] = [];
  let logCount = 0;
  let onLogLine: ((entry: LogEntry) => void) | undefined;
  const addLine = (entry: LogEntry): void => {
    ring.push(entry);
    logCount++;
    if (ring.length > LOG_RING) ring.shift();
    onLogLine?.(entry);
  };
  addLogSink((level, message, context) => addLine([Math.floor(Date.now() / 1000), KIND[level], message, typeof context['stream'] === 'string' ? context['stream'] : '', process.pid, 'controller']));

  const store = ConfigStore.open(process.env['HAZE_CONFIG']);
  store.writeEffective(paths.run, overrides);
  const instanceId = randomBytes(8).toString('hex');
  const triggers = controllerTriggers(store, instanceId, log.child({ proc: 'triggers' }));
  const system = new SystemTriggers(triggers, store, log);
  const variables = new CustomVariables(store, variablesFile(paths), log.child({ proc: 'variables' }));
  store.on('change', ({ origin }) => {
    store.writeEffective(paths.run, overrides);
    variables.sync();
    system.protocolsChanged();
    log.info(`config changed (${origin === 'disk' ? 'edited on disk' : 'through the API'}); workers notified`);
  });
  store.watch();

  const workers = workerLink(paths);
  const machine = new MachineSampler();
  const capacity = new CapacitySampler(paths.run);
  const stats = new StatsCollector({
    workers,
    checkpointFile: path.join(paths.run, 'stats.json'),
    vitals: () => machine.sample(),
    config: () => snapshotSettings(store.get(), overrides),
    streamStatus: () => gatherStreamStats(paths.sockets),
    logs: () => ring,
    logCount: () => logCount,
    workerLog: addLine,
    afterRound: () => capacity.tick(() => connectionFigures(stats.table, Date.now())),
    log: log.child({ proc: 'stats' }),
  });
  onLogLine = (entry) => stats.logLine(entry);
  stats.start();

  const host: ApiHost = {
    ports: () => effectivePorts(store.get(), overrides),
    config: store,
    instanceId,
    streamStats: async () => withSessionFigures(await gatherStreamStats(paths.sockets), stats),
    logs: () => ring,
    workers,
    variables,
    triggers,
    metrics: () => stats.snapshot(),
    feed: stats.feed,
    stats: stats.table,
    capacity,
  };
  // auto-push rules whose completetime passed are dropped (the workers already stopped their pushes)
  const ruleSweep = setInterval(() => {
    try {
      dropCompletedRules(store);
    } catch (err) {
      log.warn(`dropping completed auto-push rules: ${(err as Error).message}`);
    }
  }, 5000);
  ruleSweep.unref();
  const server = http.createServer({ maxHeaderSize: 16 * 1024, requestTimeout: 30_000 }, createApiRequestHandler(host));
  server.on('upgrade', (req, socket, head) => handleApiWebSocket(req, socket, head, host));
  process.on('message', (msg: AngelMessage, handle?: unknown) => {
    if (msg.type === 'listen' && msg.connector === 'controller' && handle) {
      server.listen(handle as http.Server, () => log.debug(`API on port ${msg.port}`));
    } else if (msg.type === 'stopping') stop(msg.reason);
  });
  process.on('disconnect', () => log.warn('lost the angel; serving on'));
  fs.writeFileSync(pidFile(paths, 'controller'), String(process.pid));
  void system.start(paths.run).then((go) => {
    if (!go) process.kill(process.ppid, 'SIGTERM');
  });

  let stopping = false;
  const stopTriggers: Promise<void>[] = [];
  /**
   * `systemReason`: the whole server stops (the angel's message), not only this controller. The
   * message may also come just after a signal sent to the whole process group (Ctrl-C, systemd):
   * the exit waits a moment for it and for the stop triggers it fires.
   */
  const stop = (systemReason?: string): void => {
    if (systemReason !== undefined && stopTriggers.length === 0) stopTriggers.push(system.stop(systemReason));
    if (stopping) return;
    stopping = true;
    server.close();
    variables.close();
    stats.stop();
    setTimeout(() => {
      void Promise.all(stopTriggers).finally(() => {
        store.close();
        try {
          fs.unlinkSync(pidFile(paths, 'controller'));
        } catch {
          // already gone
        }
        process.exit(0);
      });
    }, 100).unref();
  };
  process.on('SIGTERM', () => stop());
  process.on('SIGINT', () => stop());
}
