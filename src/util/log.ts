// Structured log lines: one line per event, `time level [proc] {context} message`. A child
// logger carries the context of one session (stream, session, protocol). Lines go to stderr so
// the angel can collect the children's lines; the controller keeps the last 100 for the API.

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
const LEVELS: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export type LogContext = Record<string, string | number | undefined>;
export type LogSink = (level: LogLevel, message: string, context: LogContext) => void;

let threshold = LEVELS[(process.env['HAZE_LOG'] as LogLevel | undefined) ?? 'info'] ?? LEVELS.info;
let procName = 'haze';
const sinks: LogSink[] = [];

export function setLogLevel(level: LogLevel): void {
  threshold = LEVELS[level];
}

export function setProcessName(name: string): void {
  procName = name;
}

/** Extra receivers of every log line (the controller's log ring). */
export function addLogSink(sink: LogSink): void {
  sinks.push(sink);
}

export class Logger {
  constructor(private readonly context: LogContext = {}) {}

  child(extra: LogContext): Logger {
    return new Logger({ ...this.context, ...extra });
  }

  error(msg: string): void {
    this.write('error', msg);
  }
  warn(msg: string): void {
    this.write('warn', msg);
  }
  info(msg: string): void {
    this.write('info', msg);
  }
  debug(msg: string): void {
    if (threshold >= LEVELS.debug) this.write('debug', msg);
  }

  private write(level: LogLevel, msg: string): void {
    if (LEVELS[level] > threshold) return;
    const ctx = Object.entries(this.context)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} [${procName}:${process.pid}]${ctx ? ' ' + ctx : ''} ${msg}\n`);
    for (const sink of sinks) {
      try {
        sink(level, msg, this.context);
      } catch {
        // a sink must never break logging
      }
    }
  }
}

export const log = new Logger();
