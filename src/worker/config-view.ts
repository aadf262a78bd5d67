// A worker's read-only view of the effective config that the controller (or the angel at
// start) writes atomically to run/effective.json. Changes are picked up through a watch on
// the run folder; when the controller is down the last written config stays in force.

import fs from 'node:fs';
import path from 'node:path';
import { TypedEmitter } from '../util/events.js';
import { log } from '../util/log.js';
import { baseName } from '../util/stream-name.js';

export interface StreamSettings {
  name: string;
  source: string;
  DVR?: number;
  [key: string]: unknown;
}

export interface EffectiveConfig {
  config?: Record<string, unknown>;
  streams?: Record<string, StreamSettings>;
  [key: string]: unknown;
}

/** MistServer's default `idleTime` (ms). */
const DEFAULT_IDLE_TIME_MS = 50_000;

/**
 * A stream's `idleTime` in ms: how long a `resume` buffer waits for its publisher, and how long a
 * track may go without data while the others go on.
 */
export function idleTimeMs(settings: StreamSettings | undefined): number {
  const v = Number(settings?.['idleTime']);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_IDLE_TIME_MS;
}

export class ConfigView extends TypedEmitter<{ change: EffectiveConfig }> {
  private current: EffectiveConfig = {};
  private watcher: fs.FSWatcher | undefined;
  private lastText = '';

  constructor(private readonly file: string) {
    super();
    this.reload();
  }

  get(): EffectiveConfig {
    return this.current;
  }

  /** The HTTP connector's `pubaddr` option (a URL or a list of them), as given; validated by its user. */
  publicAddresses(): string[] {
    const protocols = this.current.config?.['protocols'];
    if (!Array.isArray(protocols)) return [];
    const http = protocols.find((p): p is Record<string, unknown> => typeof p === 'object' && p !== null && (p as Record<string, unknown>)['connector'] === 'HTTP');
    const v = http?.['pubaddr'];
    return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x.length > 0);
  }

  /** The settings that apply to stream `name`: its own entry or its wildcard base's. */
  stream(name: string): StreamSettings | undefined {
    const streams = this.current.streams ?? {};
    return streams[name] ?? streams[baseName(name)];
  }

  reload(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (err) {
      log.warn(`cannot read ${this.file}: ${(err as Error).message}`);
      return;
    }
    if (text === this.lastText) return;
    try {
      this.current = JSON.parse(text) as EffectiveConfig;
      this.lastText = text;
      this.emit('change', this.current);
    } catch (err) {
      log.warn(`ignoring unparsable ${this.file}: ${(err as Error).message}`);
    }
  }

  watch(): void {
    const base = path.basename(this.file);
    this.watcher = fs.watch(path.dirname(this.file), (_e, name) => {
      if (name === base) this.reload();
    });
    this.watcher.on('error', () => {});
    this.watcher.unref();
  }

  close(): void {
    this.watcher?.close();
  }
}
