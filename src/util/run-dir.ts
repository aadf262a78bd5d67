// The layout of an instance's data folder (DESIGN §3, §5): `--data DIR` holds config.json,
// the run directory (pids, control sockets, the effective config, the stream claims) and logs.
// Unix socket paths must stay under the 108-byte limit however deep DIR is, so sockets move
// to a short folder under the system temp dir when the run directory's path is too long.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MAX_SOCKET_PATH = 100;

export interface RunPaths {
  data: string;
  run: string;
  /** Folder of the control sockets (the run dir itself, or a short stand-in). */
  sockets: string;
  /** Claims of the streams whose source a worker hosts: one file per stream. */
  streams: string;
  effectiveConfig: string;
  logs: string;
}

export function runPaths(dataDir: string): RunPaths {
  const data = path.resolve(dataDir);
  const run = path.join(data, 'run');
  let sockets = run;
  if (path.join(run, 'worker-99.sock').length > MAX_SOCKET_PATH) {
    sockets = path.join(os.tmpdir(), `haze-${createHash('sha1').update(run).digest('hex').slice(0, 12)}`);
  }
  return { data, run, sockets, streams: path.join(run, 'streams'), effectiveConfig: path.join(run, 'effective.json'), logs: path.join(data, 'logs') };
}

export function ensureRunDirs(p: RunPaths): void {
  for (const dir of [p.data, p.run, p.sockets, p.streams, p.logs]) fs.mkdirSync(dir, { recursive: true });
}

export function workerSocketPath(p: RunPaths, index: number): string {
  return path.join(p.sockets, `worker-${index}.sock`);
}

export function pidFile(p: RunPaths, role: string): string {
  return path.join(p.run, `${role}.pid`);
}

/** Writes a file so readers see either the old or the new content, never a partial one. */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w', mode);
  try {
    if (typeof data === 'string') fs.writeSync(fd, data);
    else fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
