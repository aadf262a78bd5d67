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

/** The values of the custom variables with a target, written by the controller for the workers. */
export function variablesFile(p: RunPaths): string {
  return path.join(p.run, 'variables.json');
}

export function pidFile(p: RunPaths, role: string): string {
  return path.join(p.run, `${role}.pid`);
}

/** Writes `text` to `file` atomically: tmp file beside it, fsync, rename, fsync of the folder. */
export function writeFileAtomic(file: string, text: string, mode = 0o600): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  let fd: number | undefined = fs.openSync(tmp, 'w', mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  // The rename is durable only once the folder entry is; not every platform can fsync a folder.
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // best effort
  }
}

/** Whether a process runs; a zombie (killed, not yet reaped by its parent) does not count. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/PID/stat: "pid (comm) state ..."; comm may contain spaces and parentheses
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no procfs: trust kill(0)
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
