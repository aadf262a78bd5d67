// The servers under test: Haze (./bin/haze serve), nginx with the RTMP module (Debian's
// libnginx-mod-rtmp) and node-media-server v4 (installed into bench/.peers/ by run.sh). Each is
// started fresh on free 127.0.0.1 ports with its output in a log file, and stopped by its pid.
// HLS (bench/hls.ts): Haze's /hls/ (TS) and /cmaf/ (fMP4, LL-HLS) outputs, and nginx-rtmp's
// `hls` writer when asked (StartOptions.nginxHls), its files served by nginx's own http block.
// node-media-server v4 makes HLS only by running ffmpeg per stream, so it has none here.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchRoot, repoRoot } from './paths.js';
import { queryStatus } from '../../src/protocols/dtsc/relay.js';
import { runPaths } from '../../src/util/run-dir.js';
import type { WorkerStatus } from '../../src/worker/worker-main.js';

export type ServerName = 'haze' | 'nginx' | 'nms';
export type Proto = 'rtmp' | 'http-flv';
/** HLS flavours: classic HLS with TS segments, and LL-HLS (fMP4 parts, blocking reload). */
export type HlsProto = 'hls-ts' | 'll-hls';

export interface Endpoint {
  host: string;
  port: number;
  /** RTMP: app and stream name; HTTP: the path. */
  app: string;
  stream: string;
  path: string;
}

export interface RunningServer {
  name: ServerName;
  pid: number;
  publish: Endpoint;
  play: Partial<Record<Proto, Endpoint>>;
  /** HLS entry playlists (path: the multivariant playlist, or the media playlist when there is none). */
  hls: Partial<Record<HlsProto, Endpoint>>;
  logFile: string;
  /** Haze with StartOptions.hazeProtocolPorts: its RTSP (TCP), SRT (UDP) and WebRTC media (UDP) ports. */
  ports?: { rtsp: number; srt: number; webrtc: number };
  /** Whether the process has exited (crashed) since start. */
  exited(): boolean;
  stop(): Promise<void>;
  /**
   * Haze only: bucket counts of the in-server delivery latency (packet at the hub to bytes
   * handed to the kernel, per viewer), summed over workers and streams.
   */
  deliveryHistogram?(): Promise<number[] | undefined>;
}

/** Which play protocols each server offers (nginx-rtmp has no HTTP-FLV output). */
export function serves(name: ServerName, proto: Proto): boolean {
  return proto === 'rtmp' || name !== 'nginx';
}

export const NGINX_RTMP_MODULE = '/usr/lib/nginx/modules/ngx_rtmp_module.so';
export const NMS_APP = join(benchRoot, '.peers', 'node_modules', 'node-media-server', 'bin', 'app.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`server did not listen on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

function startProcess(cmd: string, args: string[], cwd: string, logFile: string, env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const fd = openSync(logFile, 'a');
  // detached: its own process group, so a stop can signal the whole tree by group.
  const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  child.on('error', () => undefined);
  return child;
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  const pgid = child.pid!;
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, 4000);
  await done;
  clearTimeout(t);
  // Workers left in the group after the main process exited.
  try {
    process.kill(-pgid, 'SIGKILL');
  } catch {
    // group empty
  }
}

function wrap(name: ServerName, child: ChildProcess, publish: Endpoint, play: Partial<Record<Proto, Endpoint>>, logFile: string, cleanup: () => void, hls: Partial<Record<HlsProto, Endpoint>> = {}): RunningServer {
  return {
    name,
    pid: child.pid!,
    publish,
    play,
    hls,
    logFile,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    stop: async () => {
      await stopProcess(child);
      cleanup();
    },
  };
}

/** Sums the delivery histograms every Haze worker reports on its control socket. */
async function hazeDeliveryHistogram(dataDir: string): Promise<number[] | undefined> {
  const paths = runPaths(dataDir);
  const sockets = readdirSync(paths.sockets).filter((f) => /^worker-\d+\.sock$/.test(f));
  const statuses = (await Promise.all(sockets.map((f) => queryStatus(join(paths.sockets, f))))) as (WorkerStatus | undefined)[];
  let sum: number[] | undefined;
  for (const w of statuses) {
    for (const s of w?.streams ?? []) {
      sum ??= new Array<number>(s.delivery.length).fill(0);
      s.delivery.forEach((c, i) => (sum![i]! += c));
    }
  }
  return sum;
}

export interface StartOptions {
  logDir: string;
  /** Haze's --workers (undefined: Haze's default). */
  hazeWorkers?: number | undefined;
  /**
   * nginx: also write HLS (`hls on; hls_fragment 2s; hls_playlist_length 10s;`) and serve it
   * over an http block. Off for the RTMP fan-out, where writing segments would add to nginx's CPU.
   */
  nginxHls?: boolean;
  /** Haze: also listen for RTSP, SRT and WebRTC on free ports (RunningServer.ports). */
  hazeProtocolPorts?: boolean;
}

export async function startServer(name: ServerName, opts: StartOptions): Promise<RunningServer> {
  const rtmpPort = await freePort();
  const httpPort = await freePort();
  const logFile = join(opts.logDir, `${name}-${Date.now()}.log`);
  const rtmp = (app: string, stream: string): Endpoint => ({ host: '127.0.0.1', port: rtmpPort, app, stream, path: '' });
  const http = (path: string): Endpoint => ({ host: '127.0.0.1', port: httpPort, app: '', stream: '', path });
  if (name === 'haze') {
    const dir = mkdtempSync(join(tmpdir(), 'haze-bench-'));
    const apiPort = await freePort();
    const args = ['serve', '--data', dir, '--api', String(apiPort), '--http', String(httpPort), '--rtmp', String(rtmpPort)];
    if (opts.hazeWorkers !== undefined) args.push('--workers', String(opts.hazeWorkers));
    const ports = opts.hazeProtocolPorts ? { rtsp: await freePort(), srt: await freePort(), webrtc: await freePort() } : undefined;
    if (ports) args.push('--rtsp', String(ports.rtsp), '--srt', String(ports.srt), '--webrtc', String(ports.webrtc));
    const child = startProcess(process.execPath, [join(repoRoot, 'bin', 'haze'), ...args], repoRoot, logFile);
    await waitForPort(rtmpPort, child, 15000);
    await waitForPort(httpPort, child, 5000);
    const hls = { 'hls-ts': http('/hls/live/index.m3u8'), 'll-hls': http('/cmaf/live/index.m3u8') };
    const server = wrap(name, child, rtmp('live', 'live'), { rtmp: rtmp('live', 'live'), 'http-flv': http('/live.flv') }, logFile, () => rmSync(dir, { recursive: true, force: true }), hls);
    server.deliveryHistogram = () => hazeDeliveryHistogram(dir);
    if (ports) server.ports = ports;
    return server;
  }
  if (name === 'nginx') {
    if (!existsSync(NGINX_RTMP_MODULE)) throw new Error(`${NGINX_RTMP_MODULE} missing (apt-get install nginx-light libnginx-mod-rtmp)`);
    const dir = mkdtempSync(join(tmpdir(), 'nginx-bench-'));
    // One worker: nginx-rtmp's live module keeps a stream inside one worker process (several
    // workers need rtmp_auto_push), and the other servers are measured with one process too.
    // HLS: nginx-rtmp writes live.m3u8 and live-N.ts into hls_path (no multivariant playlist
    // without hls_variant); the http block serves that directory as /hls/ with sendfile, as a
    // usual nginx HLS setup does, and without an access log (Haze writes none either).
    const hlsOn = opts.nginxHls === true;
    const conf = [
      `load_module ${NGINX_RTMP_MODULE};`,
      'daemon off;',
      'master_process on;',
      'worker_processes 1;',
      'user root;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log warn;`,
      'events { worker_connections 16384; }',
      'rtmp {',
      '  server {',
      `    listen 127.0.0.1:${rtmpPort};`,
      hlsOn ? `    application live { live on; hls on; hls_path ${dir}/hls; hls_fragment 2s; hls_playlist_length 10s; }` : '    application live { live on; }',
      '  }',
      '}',
      ...(hlsOn
        ? [
            'http {',
            '  sendfile on;',
            '  tcp_nopush on;',
            '  access_log off;',
            `  client_body_temp_path ${dir}/client_body;`,
            `  proxy_temp_path ${dir}/proxy;`,
            `  fastcgi_temp_path ${dir}/fastcgi;`,
            `  uwsgi_temp_path ${dir}/uwsgi;`,
            `  scgi_temp_path ${dir}/scgi;`,
            '  server {',
            `    listen 127.0.0.1:${httpPort};`,
            '    location /hls/ {',
            '      types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }',
            `      root ${dir};`,
            '      add_header Cache-Control no-cache;',
            '    }',
            '  }',
            '}',
          ]
        : []),
      '',
    ].join('\n');
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const child = startProcess('nginx', ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], dir, logFile);
    await waitForPort(rtmpPort, child, 10000);
    if (hlsOn) await waitForPort(httpPort, child, 5000);
    const hls = hlsOn ? { 'hls-ts': http('/hls/live.m3u8') } : {};
    return wrap(name, child, rtmp('live', 'live'), { rtmp: rtmp('live', 'live') }, logFile, () => {
      try {
        writeFileSync(logFile, readFileSync(join(dir, 'error.log')), { flag: 'a' });
      } catch {
        // no error log
      }
      rmSync(dir, { recursive: true, force: true });
    }, hls);
  }
  // node-media-server v4: bin/app.js with a config of our own (no webadmin, no TLS ports, its
  // store in a temp dir) so the installed package's bin/config.json is never written.
  if (!existsSync(NMS_APP)) throw new Error(`${NMS_APP} missing (bench/run.sh installs node-media-server into bench/.peers)`);
  const dir = mkdtempSync(join(tmpdir(), 'nms-bench-'));
  const config = {
    bind: '127.0.0.1',
    notify: { url: '' },
    store: { path: join(dir, 'data'), maxHistory: 1000 },
    auth: { play: false, publish: false, secret: 'bench' },
    rtmp: { port: rtmpPort },
    http: { port: httpPort },
    webadmin: { enable: false },
    record: { auto: false, path: join(dir, 'record') },
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  const child = startProcess(process.execPath, [NMS_APP, '-c', join(dir, 'config.json')], dir, logFile);
  await waitForPort(rtmpPort, child, 15000);
  await waitForPort(httpPort, child, 5000);
  return wrap(name, child, rtmp('live', 'live'), { rtmp: rtmp('live', 'live'), 'http-flv': http('/live/live.flv') }, logFile, () => rmSync(dir, { recursive: true, force: true }));
}
