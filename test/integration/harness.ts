// Starts a real `haze serve` (angel, controller, workers) on free ports in a temp data
// folder, for integration tests, and the real peers that talk to it.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, giveUpAfter, repoRoot, sleep, tmpDir } from '../helpers.js';

export interface HazeInstance {
  data: string;
  /** rtsp, srt (UDP) and webrtc (UDP media) always get free ports of their own, so no test binds a default port. */
  ports: { api: number; http: number; rtmp: number; dtsc?: number; rtsp?: number; srt?: number; webrtc?: number };
  proc: ChildProcess;
  log(): string;
  rtmpUrl(name: string, app?: string): string;
  httpUrl(p: string): string;
  api(command: Record<string, unknown>): Promise<Record<string, unknown>>;
  /** Stops the server; the data folder is removed unless `keepData`. */
  stop(keepData?: boolean): Promise<void>;
  /** SIGKILLs the angel and every process it started (a machine that died: nothing closes cleanly). */
  kill(): Promise<void>;
  pidOf(role: string): number | undefined;
}

export async function waitPort(port: number, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`port ${port} did not open`);
    await sleep(100);
  }
}

export async function startHaze(opts: { workers?: number; config?: Record<string, unknown>; data?: string; ports?: HazeInstance['ports'] } = {}): Promise<HazeInstance> {
  const data = opts.data ?? tmpDir('haze-it-');
  const ports = { ...(opts.ports ?? { api: await freePort(), http: await freePort(), rtmp: await freePort(), dtsc: await freePort() }) };
  ports.rtsp ??= await freePort();
  ports.srt ??= await freePort();
  ports.webrtc ??= await freePort();
  if (opts.config) fs.writeFileSync(path.join(data, 'config.json'), JSON.stringify(opts.config));
  let output = '';
  const proc = spawn(
    process.execPath,
    [path.join(repoRoot, 'bin/haze'), 'serve', '--data', data, '--api', String(ports.api), '--http', String(ports.http), '--rtmp', String(ports.rtmp), ...(ports.dtsc ? ['--dtsc', String(ports.dtsc)] : []), '--rtsp', String(ports.rtsp), '--srt', String(ports.srt), '--webrtc', String(ports.webrtc), '--workers', String(opts.workers ?? 2)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HAZE_LOG: process.env['HAZE_LOG'] ?? 'info' } },
  );
  proc.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  // a loaded machine can take well over 15 s to start the angel, the controller and the workers
  await Promise.all([waitPort(ports.api, 40_000), waitPort(ports.http, 40_000), waitPort(ports.rtmp, 40_000)]).catch((err: unknown) => {
    // a server that did not come up must not outlive the test (nobody else holds its process);
    // SIGTERM, so the angel stops its children too
    proc.kill('SIGTERM');
    throw err instanceof Error ? new Error(`${err.message}\n${output.slice(-2000)}`) : err;
  });
  const inst: HazeInstance = {
    data,
    ports,
    proc,
    log: () => output,
    rtmpUrl: (name, app = 'live') => `rtmp://127.0.0.1:${ports.rtmp}/${app}/${name}`,
    httpUrl: (p) => `http://127.0.0.1:${ports.http}${p}`,
    async api(command) {
      const res = await fetch(`http://127.0.0.1:${ports.api}/api`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(command) });
      return (await res.json()) as Record<string, unknown>;
    },
    async stop(keepData = false) {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        // (an unref'd timer: a pending one would hold the test file's process open for 6 s)
        await Promise.race([exited, giveUpAfter(6000, undefined)]);
        if (proc.exitCode === null) proc.kill('SIGKILL');
      }
      if (!keepData) fs.rmSync(data, { recursive: true, force: true });
    },
    async kill() {
      const run = path.join(data, 'run');
      const pids = fs.existsSync(run) ? fs.readdirSync(run).filter((f) => f.endsWith('.pid')).map((f) => Number(fs.readFileSync(path.join(run, f), 'utf8'))) : [];
      const exited = proc.exitCode === null && proc.signalCode === null ? new Promise((r) => proc.once('exit', r)) : Promise.resolve();
      for (const pid of [proc.pid, ...pids]) {
        try {
          if (pid) process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      await exited;
    },
    pidOf(role) {
      try {
        return Number(fs.readFileSync(path.join(data, 'run', `${role}.pid`), 'utf8'));
      } catch {
        return undefined;
      }
    },
  };
  return inst;
}

/** ffmpeg publishing a file in real time (-re) with stream copy to an RTMP URL. */
export function publishFile(file: string, url: string, extra: string[] = []): ChildProcess {
  return spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', ...extra, '-i', file, '-c', 'copy', '-f', 'flv', url], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** ffmpeg publishing a synthetic H.264 (B-frames) + AAC stream for `seconds`. */
export function publishTestPattern(url: string, seconds: number): ChildProcess {
  return spawn(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-f', 'lavfi', '-i', 'sine=f=440:sample_rate=48000', '-t', String(seconds), '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '30', '-c:a', 'aac', '-f', 'flv', url],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
}

export function exited(p: ChildProcess): Promise<number | null> {
  // a process killed by a signal has no exit code but is gone all the same
  return p.exitCode !== null || p.signalCode !== null ? Promise.resolve(p.exitCode) : new Promise((r) => p.once('exit', (code) => r(code)));
}
