// The angel (DESIGN §3): the `haze serve` process. It binds every listening socket, spawns
// the controller and the workers and hands each the sockets it serves (Node's IPC handle
// passing), restarts whichever child dies with back-off, and stops them all on SIGTERM or
// SIGINT. It does nothing else, so it has nothing to crash on.
//
// The sockets are bound here but put into listening state by the children: the angel never
// accepts a connection itself, and a socket stays open (connections wait in its backlog)
// while a worker restarts, because the angel keeps its own copy.
//
// A UDP port (SRT, WebRTC media) cannot be shared by several readers: each datagram goes to
// whichever reads first. It is bound here (so a bad port fails at start like a TCP one) and
// handed to one worker, UDP_OWNER, which owns it; the angel drops its own copy once sent, and
// binds the port again for the worker's successor when that worker dies.

import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { HazeError } from '../util/errors.js';
import { log, setProcessName } from '../util/log.js';
import { ensureRunDirs, isAlive, pidFile, readPid, runPaths, type RunPaths } from '../util/run-dir.js';
import type { ServeOptions } from '../cli/args.js';
import { ConfigStore } from './config-store.js';
import { CONNECTORS, type HazeConfig } from './default-config.js';

/** Messages from the angel to a child. */
export type AngelMessage = { type: 'listen'; connector: string; port: number } | { type: 'start' } | { type: 'stopping'; reason: string };

const MAIN_JS = fileURLToPath(new URL('../cli/main.js', import.meta.url));
const RESTART_DELAYS_MS = [0, 1000, 2000, 4000, 8000, 10_000];
const STABLE_AFTER_MS = 30_000;
const STOP_TIMEOUT_MS = 4000;
/** The worker that owns the UDP ports. */
export const UDP_OWNER = 1;
/** A UDP port freed by a dead owner may take a moment to be free again: attempts, ms apart. */
const UDP_REBIND_ATTEMPTS = 20;
const UDP_REBIND_PAUSE_MS = 100;

type RawHandle = object;
interface NetInternals {
  _createServerHandle(address: string | null, port: number, addressType: number, fd?: number, flags?: number): RawHandle | number;
}

/**
 * Fails when another program listens on host:port. A bound socket that is not listening
 * yet does not conflict with a listening one at bind time (SO_REUSEADDR), only later in the
 * worker's listen(), so the angel checks with a short exclusive listen first.
 */
function probeFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => reject(new HazeError('HAZE_ERR_INVALID_ARG', `cannot listen on ${host}:${port}: ${err.code ?? err.message}`)));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve()));
  });
}

/** Binds (without listening) a TCP socket; throws a HazeError naming the port. */
async function bindTcp(host: string, port: number): Promise<RawHandle> {
  await probeFree(host, port);
  const family = net.isIP(host) === 6 ? 6 : 4;
  const handle = (net as unknown as NetInternals)._createServerHandle(host, port, family);
  if (typeof handle === 'number') throw new HazeError('HAZE_ERR_INVALID_ARG', `cannot bind ${host}:${port}: ${getSystemErrorName(handle)}`);
  return handle;
}

/** Binds a UDP socket (dual-stack on `::`, or IPv4 only where the host has no IPv6). */
function bindUdp(host: string, port: number): Promise<dgram.Socket> {
  const attempt = (type: 'udp4' | 'udp6', address: string): Promise<dgram.Socket> =>
    new Promise((resolve, reject) => {
      const s = dgram.createSocket(type === 'udp6' ? { type, ipv6Only: false } : { type });
      s.once('error', (err: NodeJS.ErrnoException) => {
        s.close();
        reject(new HazeError('HAZE_ERR_INVALID_ARG', `cannot bind UDP ${address}:${port}: ${err.code ?? err.message}`));
      });
      s.bind(port, address, () => resolve(s));
    });
  if (host !== '::') return attempt(net.isIP(host) === 6 ? 'udp6' : 'udp4', host);
  return attempt('udp6', '::').catch(() => attempt('udp4', '0.0.0.0'));
}

/** Binds a UDP port again for a new owner, waiting for the old owner's copy to go. */
async function rebindUdp(host: string, port: number): Promise<dgram.Socket> {
  for (let i = 1; ; i++) {
    try {
      return await bindUdp(host, port);
    } catch (err) {
      if (i >= UDP_REBIND_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, UDP_REBIND_PAUSE_MS));
    }
  }
}

interface ChildSlot {
  role: 'controller' | 'worker';
  index: number;
  child: ChildProcess | undefined;
  restarts: number;
  startedAt: number;
  timer: NodeJS.Timeout | undefined;
}

export async function runAngel(opts: ServeOptions): Promise<number> {
  setProcessName('angel');
  const paths = runPaths(opts.data);
  ensureRunDirs(paths);
  const running = readPid(pidFile(paths, 'angel'));
  if (running && running !== process.pid && isAlive(running)) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `another haze serve (pid ${running}) runs on ${paths.data}; stop it or use another --data`);
  }
  await stopOrphans(paths);
  fs.writeFileSync(pidFile(paths, 'angel'), String(process.pid));

  const configPath = path.resolve(opts.config ?? path.join(paths.data, 'config.json'));
  const store = ConfigStore.open(configPath);
  const config = store.get();
  if (store.fromDefault) store.save();
  store.writeEffective(paths.run, opts.ports);
  store.close();

  const sockets = await bindAll(config, opts);
  if (!sockets.has('controller')) throw new HazeError('HAZE_ERR_INVALID_ARG', 'the API port could not be bound');
  const udp = await bindAllUdp(config, opts);
  /** Hands a UDP port to its owning worker; the angel's copy is closed once it is sent. */
  const handUdp = async (child: ChildProcess, connector: string, u: UdpPort): Promise<void> => {
    try {
      const socket = u.socket ?? (await rebindUdp(u.host, u.port));
      u.socket = undefined;
      if (!child.connected) {
        socket.close();
        return;
      }
      child.send({ type: 'listen', connector, port: u.port } satisfies AngelMessage, socket, () => socket.close());
    } catch (err) {
      log.error(`${connector}: ${(err as Error).message}; UDP port ${u.port} is not served until the worker restarts`);
    }
  };

  const slots: ChildSlot[] = [{ role: 'controller', index: 0, child: undefined, restarts: 0, startedAt: 0, timer: undefined }];
  for (let i = 1; i <= opts.workers; i++) slots.push({ role: 'worker', index: i, child: undefined, restarts: 0, startedAt: 0, timer: undefined });
  let stopping = false;

  const env = { ...process.env, HAZE_DATA: paths.data, HAZE_CONFIG: configPath, HAZE_PORT_OVERRIDES: JSON.stringify(opts.ports) };
  const spawnSlot = (slot: ChildSlot): void => {
    slot.timer = undefined;
    const args = slot.role === 'controller' ? ['__controller'] : ['__worker', String(slot.index)];
    // HAZE_WORKER_NODE_ARGS: extra node flags for the workers (profiling: --cpu-prof ...)
    const execArgv = slot.role === 'worker' && process.env['HAZE_WORKER_NODE_ARGS'] ? process.env['HAZE_WORKER_NODE_ARGS'].split(' ') : [];
    const child = fork(MAIN_JS, args, { env, execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    slot.child = child;
    slot.startedAt = Date.now();
    const wanted = slot.role === 'controller' ? ['controller'] : [...sockets.keys()].filter((k) => k !== 'controller');
    for (const connector of wanted) {
      const s = sockets.get(connector)!;
      child.send({ type: 'listen', connector, port: s.port } satisfies AngelMessage, s.handle as never);
    }
    if (slot.role === 'worker' && slot.index === UDP_OWNER) for (const [connector, u] of udp) void handUdp(child, connector, u);
    child.send({ type: 'start' } satisfies AngelMessage);
    child.on('error', (err) => log.error(`${slot.role} ${slot.index}: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (slot.child !== child) return;
      slot.child = undefined;
      if (stopping) return;
      if (Date.now() - slot.startedAt > STABLE_AFTER_MS) slot.restarts = 0;
      const delay = RESTART_DELAYS_MS[Math.min(slot.restarts, RESTART_DELAYS_MS.length - 1)]!;
      slot.restarts++;
      log.warn(`${slot.role}${slot.role === 'worker' ? ' ' + slot.index : ''} exited (${signal ?? 'code ' + code}); restarting in ${delay} ms`);
      slot.timer = setTimeout(() => spawnSlot(slot), delay);
    });
  };
  for (const slot of slots) spawnSlot(slot);
  printWelcome(config, sockets, udp, configPath, store.fromDefault);

  return new Promise<number>((resolve) => {
    const stop = (sig: string): void => {
      if (stopping) return;
      stopping = true;
      log.info(`${sig}: stopping`);
      for (const slot of slots) {
        if (slot.timer) clearTimeout(slot.timer);
        // the controller is told why (SYSTEM_STOP carries it) and stops itself; a SIGTERM alone
        // means only the controller is being restarted
        if (slot.role === 'controller' && slot.child?.connected) slot.child.send({ type: 'stopping', reason: `${sig} received` } satisfies AngelMessage);
        else slot.child?.kill('SIGTERM');
      }
      const deadline = setTimeout(() => {
        for (const slot of slots) slot.child?.kill('SIGKILL');
      }, STOP_TIMEOUT_MS);
      const check = (): void => {
        if (slots.some((s) => s.child && s.child.exitCode === null && s.child.signalCode === null)) return;
        clearTimeout(deadline);
        try {
          fs.unlinkSync(pidFile(paths, 'angel'));
        } catch {
          // already gone
        }
        resolve(0);
        // the bound handles are released with the process
        setImmediate(() => process.exit(0));
      };
      for (const slot of slots) slot.child?.once('exit', check);
      check();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => stop('SIGHUP'));
  });
}

interface BoundSocket {
  handle: RawHandle;
  port: number;
}

/** A UDP connector's port; `socket` is the bound socket not yet handed to its owner. */
interface UdpPort {
  host: string;
  port: number;
  socket: dgram.Socket | undefined;
}

/** Binds every built UDP connector (first bind here, so a flag port that fails is fatal). */
async function bindAllUdp(config: HazeConfig, opts: ServeOptions): Promise<Map<string, UdpPort>> {
  const out = new Map<string, UdpPort>();
  for (const p of config.config.protocols) {
    const info = CONNECTORS[p.connector];
    if (!info?.built || info.transport !== 'udp' || out.has(p.connector)) continue;
    const flagPort = info.flag ? opts.ports[info.flag] : undefined;
    const port = flagPort ?? p.port ?? info.defaultPort;
    if (port === undefined) continue;
    const host = typeof p.interface === 'string' && p.interface ? p.interface : '::';
    try {
      out.set(p.connector, { host, port, socket: await bindUdp(host, port) });
    } catch (err) {
      if (flagPort !== undefined) throw err;
      log.warn(`${p.connector}: ${(err as Error).message}; ${p.connector} stays off`);
    }
  }
  return out;
}

/** Binds the API and every built TCP connector; a flag port that fails is fatal, a default one a warning. */
async function bindAll(config: HazeConfig, opts: ServeOptions): Promise<Map<string, BoundSocket>> {
  const out = new Map<string, BoundSocket>();
  const apiPort = opts.ports.api ?? config.config.controller.port ?? 4242;
  const apiHost = config.config.controller.interface || '127.0.0.1';
  const tryBind = async (name: string, host: string, port: number, fromFlag: boolean): Promise<void> => {
    try {
      out.set(name, { handle: await bindTcp(host, port), port });
    } catch (err) {
      if (fromFlag) throw err;
      log.warn(`${name}: ${(err as Error).message}; ${name} stays off`);
    }
  };
  await tryBind('controller', apiHost === '0.0.0.0' ? '::' : apiHost, apiPort, opts.ports.api !== undefined);
  const seen = new Set<string>();
  for (const p of config.config.protocols) {
    const info = CONNECTORS[p.connector];
    if (seen.has(p.connector)) continue;
    seen.add(p.connector);
    if (!info) {
      log.warn(`unknown connector ${p.connector} in config: ignored`);
      continue;
    }
    if (!info.built) {
      if (info.transport !== 'http') log.info(`${p.connector}: not built yet in this release; ignored`);
      continue;
    }
    if (info.transport !== 'tcp') continue;
    const flagPort = info.flag ? opts.ports[info.flag] : undefined;
    const port = flagPort ?? p.port ?? info.defaultPort;
    if (port === undefined) continue;
    await tryBind(p.connector, typeof p.interface === 'string' && p.interface ? p.interface : '::', port, flagPort !== undefined);
  }
  for (const info of Object.values(CONNECTORS)) {
    if (info.flag && opts.ports[info.flag] !== undefined && !info.built) log.info(`--${info.flag}: ${info.name} is not built yet in this release; ignored`);
  }
  return out;
}

/** Children left running by a crashed angel on the same --data are stopped before starting anew. */
async function stopOrphans(paths: RunPaths): Promise<void> {
  const pids: number[] = [];
  for (const f of fs.readdirSync(paths.run)) {
    if (!/^(controller|worker-\d+)\.pid$/.test(f)) continue;
    const pid = readPid(path.join(paths.run, f));
    if (pid && isAlive(pid)) pids.push(pid);
    fs.rmSync(path.join(paths.run, f), { force: true });
  }
  if (pids.length > 0) {
    log.warn(`stopping ${pids.length} process(es) left by an earlier haze serve: ${pids.join(', ')}`);
    for (const pid of pids) process.kill(pid, 'SIGTERM');
    const until = Date.now() + STOP_TIMEOUT_MS;
    while (pids.some(isAlive) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
  fs.rmSync(paths.streams, { recursive: true, force: true });
  fs.mkdirSync(paths.streams, { recursive: true });
}

function printWelcome(config: HazeConfig, sockets: Map<string, BoundSocket>, udp: Map<string, UdpPort>, configPath: string, fromDefault: boolean): void {
  const api = sockets.get('controller');
  const http = sockets.get('HTTP');
  const rtmp = sockets.get('RTMP');
  const lines = [`Haze is running (${fromDefault ? 'embedded default config; saved to ' : 'config '}${configPath})`];
  if (api) lines.push(`  Manage:   http://127.0.0.1:${api.port}/ (web interface; JSON API at /api)`);
  const streams = Object.keys(config.streams);
  const example = streams.includes('live') ? 'live' : (streams[0] ?? 'NAME');
  if (rtmp) lines.push(`  Publish:  ffmpeg -re -i INPUT -c copy -f flv rtmp://127.0.0.1:${rtmp.port}/live/${example}`);
  if (rtmp) lines.push(`  Play:     rtmp://127.0.0.1:${rtmp.port}/live/${example}`);
  if (http) lines.push(`            http://127.0.0.1:${http.port}/${example}.flv   http://127.0.0.1:${http.port}/${example}.ts`);
  const srt = udp.get('TSSRT');
  const rtsp = sockets.get('RTSP');
  if (srt) lines.push(`  SRT:      srt://127.0.0.1:${srt.port}?streamid=${example} (publish: #!::r=${example},m=publish)`);
  if (rtsp) lines.push(`  RTSP:     rtsp://127.0.0.1:${rtsp.port}/${example}`);
  if (http && udp.has('WebRTC')) lines.push(`  WebRTC:   WHIP http://127.0.0.1:${http.port}/whip/${example}   WHEP http://127.0.0.1:${http.port}/whep/${example}`);
  if (http && streams.includes('demo')) lines.push(`  Demo VoD: http://127.0.0.1:${http.port}/demo.html`);
  if (streams.length > 1) lines.push(`  Streams:  ${streams.join(', ')}`);
  process.stdout.write(lines.join('\n') + '\n');
}
