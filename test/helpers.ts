// Shared test helpers: paths, running real peers (ffmpeg/ffprobe/gst), free ports.

import { spawn, type SpawnOptions } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { HazeError } from '../src/util/errors.js';
import fs from 'node:fs';
import os from 'node:os';

/** The repository root (tests run from dist/test/...). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const mistFixtures = path.resolve(repoRoot, '../shared/fixtures/mistserver');
export const fixturesDir = path.join(repoRoot, 'test/fixtures');

export function tmpDir(prefix = 'haze-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a program to completion, collecting its output; rejects only if it cannot start or times out. */
export function run(cmd: string, args: string[], opts: SpawnOptions & { timeoutMs?: number; input?: Buffer } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    const out: Buffer[] = [];
    let err = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} timed out\n${err.slice(-2000)}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
    if (opts.input) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/** Runs a program and returns stdout; throws with stderr when it exits non-zero. */
export async function runOk(cmd: string, args: string[], opts: SpawnOptions & { timeoutMs?: number; input?: Buffer } = {}): Promise<Buffer> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface FrameLine {
  stream: number;
  dts: number;
  pts: number;
  duration: number;
  size: number;
  hash: string;
}

/** Parses `ffmpeg -f framemd5` output into one entry per packet. */
export function parseFramemd5(text: string): FrameLine[] {
  const frames: FrameLine[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(',').map((s) => s.trim());
    if (f.length < 6) continue;
    frames.push({ stream: Number(f[0]), dts: Number(f[1]), pts: Number(f[2]), duration: Number(f[3]), size: Number(f[4]), hash: f[5]! });
  }
  return frames;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `fn` every `intervalMs` until it returns something other than undefined (or false), and
 * returns that; throws naming `what` after `timeoutMs`. For waiting on an effect instead of a
 * fixed sleep. `fn` may throw while it is not there yet (retried like undefined).
 */
export async function pollUntil<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, intervalMs = 100): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await sleep(intervalMs);
  }
}

/**
 * Resolves with `value` after `ms`, for the losing side of a Promise.race (`exited(p)` vs a time
 * limit): its timer does not keep the process alive, so a test file whose last race was won
 * by the event exits at once instead of waiting the limit out. The other side of the race must
 * hold a handle of its own (a child process, a socket, a polling sleep) while it is pending.
 */
export function giveUpAfter<T>(ms: number, value: T): Promise<T> {
  return new Promise((r) => setTimeout(r, ms, value).unref());
}

/** Bytes from hex text (spaces and line breaks ignored); Buffers are taken as they are. */
export function hex(...parts: (string | Buffer)[]): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p.replace(/\s+/g, ''), 'hex') : p)));
}

/** For assert.throws: the error is a HazeError (the only kind a parser may throw). */
export const isHaze = (e: unknown): boolean => e instanceof HazeError;

/** Runs a parser on fuzz input: returning or throwing a HazeError are both fine, anything else fails. */
export function resultOrHazeError(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof HazeError)) throw e;
  }
}

/**
 * TCP connections established to `port` on this machine (from /proc/net/tcp and tcp6): lets a
 * test wait until its clients have connected before it starts what they wait for.
 */
export function connectionsTo(port: number): number {
  return socketsOn(port, ['/proc/net/tcp', '/proc/net/tcp6'], '01');
}

/** Whether a UDP socket is bound to `port` on this machine: a peer's listener (SRT) is up. */
export function udpBound(port: number): boolean {
  return socketsOn(port, ['/proc/net/udp', '/proc/net/udp6'], '07') > 0;
}

/** Sockets in `files` (the /proc/net tables) whose local port is `port`, in state `st`. */
function socketsOn(port: number, files: string[], st: string): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const file of files) {
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st ...: the server side of a connection has the port locally
      const f = line.trim().split(/\s+/);
      if (f.length > 3 && f[1]!.endsWith(`:${hexPort}`) && f[3] === st) n++;
    }
  }
  return n;
}
