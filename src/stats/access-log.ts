// The access log (reference §7.1, `config.accesslog`): one line per finished session, written
// by the worker that ends it (the same figures as its USER_END). `LOG` writes it as a log line;
// a file path appends MistServer's comma-separated line. Each line is appended with its own
// open, so a rotated-away file (logrotate's move) is followed by a fresh one at the path.

import fsp from 'node:fs/promises';
import type { Logger } from '../util/log.js';

/** A finished session as the access log, the WebSocket API and the controller see it. */
export interface FinishedSession {
  sessionId: string;
  stream: string;
  /** Connector names, comma-separated. */
  connectors: string;
  host: string;
  durationS: number;
  bytesUp: number;
  bytesDown: number;
  tags: readonly string[];
  endMs: number;
}

/** Lines waiting for the file at most; beyond, lines are dropped and counted. */
const MAX_PENDING = 10_000;

function kbps(bytes: number, seconds: number): number {
  return Math.floor(bytes / Math.max(1, seconds) / 1024);
}

/** `YYYY-MM-DD HH:MM:SS` in local time, as MistServer's file lines. */
function stamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The `LOG` form: `ACCS: Session <id> <stream> (<connectors>) from <host> ended after <n>s, avg <up>KB/s up <down>KB/s down. Tags: [..]`. */
export function accessLogMessage(s: FinishedSession): string {
  return `ACCS: Session ${s.sessionId} ${s.stream} (${s.connectors}) from ${s.host} ended after ${s.durationS}s, avg ${kbps(s.bytesUp, s.durationS)}KB/s up ${kbps(s.bytesDown, s.durationS)}KB/s down. Tags: [${s.tags.join(', ')}]`;
}

/** The file form: `YYYY-MM-DD HH:MM:SS, sessId, stream, connector, host, duration, upKBps, downKBps, tags`. */
export function accessLogLine(s: FinishedSession): string {
  return `${stamp(s.endMs)}, ${s.sessionId}, ${s.stream}, ${s.connectors}, ${s.host}, ${s.durationS}, ${kbps(s.bytesUp, s.durationS)}, ${kbps(s.bytesDown, s.durationS)}, ${s.tags.join(' ')}\n`;
}

export class AccessLog {
  private pending: string[] = [];
  private writing: Promise<void> | undefined;
  private dropped = 0;

  /** `target()`: the accesslog setting now ('' or absent: none; `LOG`: the log). */
  constructor(
    private readonly target: () => string,
    private readonly log: Logger,
  ) {}

  write(s: FinishedSession): void {
    const target = this.target();
    if (!target) return;
    if (target === 'LOG') {
      this.log.info(accessLogMessage(s));
      return;
    }
    if (this.pending.length >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.pending.push(accessLogLine(s));
    this.writing ??= this.drain(target);
  }

  /** Resolves when every line so far is written (tests, shutdown). */
  async flushed(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(file: string): Promise<void> {
    while (this.pending.length > 0) {
      const lines = this.pending.join('');
      const count = this.pending.length;
      this.pending = [];
      try {
        await fsp.appendFile(file, lines, { mode: 0o640 });
      } catch (err) {
        this.dropped += count;
        this.log.warn(`access log ${file}: ${(err as Error).message}; ${count} line(s) lost`);
      }
    }
    if (this.dropped > 0) {
      this.log.warn(`access log ${file}: ${this.dropped} line(s) dropped while it was behind`);
      this.dropped = 0;
    }
    this.writing = undefined;
  }
}
