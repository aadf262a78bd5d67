// The controller's config store (DESIGN §3, §5; reference §1.2): one HazeConfig in memory,
// loaded from config.json (or the embedded default when the file does not exist), changed only
// through update(), saved atomically at once (write tmp, fsync, rename, mode 0600 because it
// holds password hashes). Edits made on disk by another program are picked up by watch().
// The effective config (with this run's port flags) goes to run/effective.json for the workers.

import fs from 'node:fs';
import path from 'node:path';
import { TypedEmitter } from '../util/events.js';
import { HazeError, errorText } from '../util/errors.js';
import { log } from '../util/log.js';
import { applyPortOverrides, defaultConfig, effectivePorts, normalizeConfig, type HazeConfig, type PortOverrides } from './default-config.js';
import { writeFileAtomic } from '../util/run-dir.js';

export interface ConfigChange {
  config: HazeConfig;
  /** 'update': through update(); 'disk': an edit of the file by another program */
  origin: 'update' | 'disk';
}

export interface ConfigStoreEvents {
  change: ConfigChange;
}

/** Largest config file read; MistServer configs are kilobytes, a runaway file must not be slurped. */
const MAX_CONFIG_BYTES = 16 * 1024 * 1024;
/** Editors write in steps (truncate, write, rename); wait for the burst of events to settle. */
const WATCH_SETTLE_MS = 50;

const clog = log.child({ proc: 'config' });

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const child of Object.values(v as Record<string, unknown>)) deepFreeze(child);
  }
  return v;
}

function serialize(config: HazeConfig): string {
  return JSON.stringify(config, null, 2) + '\n';
}


function readConfigFile(file: string): { config: HazeConfig; text: string } | undefined {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new HazeError('HAZE_ERR_INVALID_ARG', `config file ${file} is not a regular file`);
    if (st.size > MAX_CONFIG_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `config file ${file} is larger than ${MAX_CONFIG_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (err instanceof HazeError) throw err;
    throw new HazeError('HAZE_ERR_INVALID_ARG', `cannot read config file ${file}: ${errorText(err)}`, { cause: err });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `config file ${file} is not valid JSON (${errorText(err)}); fix or remove it`, { cause: err });
  }
  const r = normalizeConfig(raw);
  if (!r.ok) throw new HazeError('HAZE_ERR_INVALID_ARG', `config file ${file} is invalid: ${r.error}`);
  return { config: r.value, text };
}

export class ConfigStore extends TypedEmitter<ConfigStoreEvents> {
  /** the file this store reads and saves; undefined = memory only (save() does nothing) */
  readonly path: string | undefined;
  /** true when the file did not exist at open and the embedded default is in use */
  readonly fromDefault: boolean;
  /** the error of the last failed automatic save after update(), cleared by a good save */
  saveError: string | undefined;

  private current: HazeConfig;
  /** text last read from or written to the file: a watch event showing it is our own write */
  private knownText: string | undefined;
  private knownStat: { mtimeMs: number; size: number; ino: number } | undefined;
  private watcher: fs.FSWatcher | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  private constructor(file: string | undefined, config: HazeConfig, fromDefault: boolean, text: string | undefined) {
    super();
    this.path = file === undefined ? undefined : path.resolve(file);
    this.current = deepFreeze(config);
    this.fromDefault = fromDefault;
    this.knownText = text;
    this.saveError = undefined;
    if (text !== undefined) this.rememberStat();
  }

  /**
   * Loads `file`. A missing file gives the embedded default (`fromDefault`; the first update
   * creates the file there). A file that cannot be read or is not a valid config throws a
   * HazeError saying so: it is never silently replaced. `undefined` = memory only.
   */
  static open(file: string | undefined): ConfigStore {
    if (file === undefined) return new ConfigStore(undefined, defaultConfig(), true, undefined);
    const loaded = readConfigFile(path.resolve(file));
    if (!loaded) return new ConfigStore(file, defaultConfig(), true, undefined);
    return new ConfigStore(file, loaded.config, false, loaded.text);
  }

  /** The current config: deep-frozen, so change it only through update(). */
  get(): HazeConfig {
    return this.current;
  }

  /**
   * Applies `mutator` to a copy, validates the result (HazeError HAZE_ERR_INVALID_ARG and no
   * change when invalid), then, if anything changed, makes it current, saves it (when a path is
   * known) and emits 'change'. A failed save is logged and kept in `saveError`; the change stays.
   */
  update(mutator: (c: HazeConfig) => void): void {
    const draft = structuredClone(this.current) as HazeConfig;
    mutator(draft);
    const r = normalizeConfig(draft);
    if (!r.ok) throw new HazeError('HAZE_ERR_INVALID_ARG', r.error);
    if (serialize(r.value) === serialize(this.current)) return;
    this.current = deepFreeze(r.value);
    if (this.path !== undefined) {
      try {
        this.save();
      } catch (err) {
        this.saveError = errorText(err);
        clog.error(`saving the config failed: ${this.saveError}`);
      }
    }
    this.emit('change', { config: this.current, origin: 'update' });
  }

  /** Writes the config to its file now (atomically, mode 0600). Throws HazeError on failure. */
  save(): void {
    if (this.path === undefined) return;
    const text = serialize(this.current);
    try {
      writeFileAtomic(this.path, text, 0o600);
    } catch (err) {
      throw new HazeError('HAZE_ERR_INVALID_ARG', `cannot write config file ${this.path}: ${errorText(err)}`, { cause: err });
    }
    this.knownText = text;
    this.saveError = undefined;
    this.rememberStat();
  }

  /**
   * Follows edits of the file by another program: watches its folder (the file itself is
   * replaced on every atomic write, so a watch on it would go stale), and on an event re-reads
   * the file when its mtime/size/inode or content differ from what the store last read or
   * wrote (its own writes are thus ignored). A valid new content becomes current and emits
   * 'change' with origin 'disk'; an invalid one is logged and ignored.
   */
  watch(): void {
    if (this.path === undefined || this.watcher || this.closed) return;
    const dir = path.dirname(this.path);
    const base = path.basename(this.path);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.watcher = fs.watch(dir, { persistent: false }, (_event, filename) => {
      if (filename !== null && filename !== undefined && filename.toString() !== base) return;
      if (this.settleTimer) clearTimeout(this.settleTimer);
      this.settleTimer = setTimeout(() => {
        this.settleTimer = undefined;
        this.checkDisk();
      }, WATCH_SETTLE_MS);
      this.settleTimer.unref();
    });
    this.watcher.on('error', (err) => clog.warn(`watching ${dir} failed: ${errorText(err)}`));
  }

  /** Re-reads the file if it changed on disk; returns true when a new config became current. */
  checkDisk(): boolean {
    if (this.path === undefined || this.closed) return false;
    let st: fs.Stats;
    try {
      st = fs.statSync(this.path);
    } catch {
      return false; // removed or being replaced: keep the config in memory
    }
    const k = this.knownStat;
    if (k && k.mtimeMs === st.mtimeMs && k.size === st.size && k.ino === st.ino) return false;
    let loaded: ReturnType<typeof readConfigFile>;
    try {
      loaded = readConfigFile(this.path);
    } catch (err) {
      clog.warn(`ignoring the edited config file: ${errorText(err)}`);
      return false;
    }
    if (!loaded) return false;
    const same = loaded.text === this.knownText;
    this.knownText = loaded.text;
    this.rememberStat();
    if (same || serialize(loaded.config) === serialize(this.current)) return false;
    this.current = deepFreeze(loaded.config);
    clog.info(`config file ${this.path} changed on disk; reloaded`);
    this.emit('change', { config: this.current, origin: 'disk' });
    return true;
  }

  /**
   * Writes the config as this run uses it (port flags applied, accounts left out: workers
   * need no password hashes) atomically to `runDir/effective.json`, with the resulting port
   * map under `effective_ports`. Returns the file path.
   */
  writeEffective(runDir: string, overrides: PortOverrides = {}): string {
    const effective = applyPortOverrides(this.current, overrides) as HazeConfig & { effective_ports?: Record<string, number> };
    effective.account = {};
    effective.effective_ports = effectivePorts(this.current, overrides);
    const file = path.join(runDir, 'effective.json');
    try {
      writeFileAtomic(file, JSON.stringify(effective, null, 2) + '\n', 0o600);
    } catch (err) {
      throw new HazeError('HAZE_ERR_INVALID_ARG', `cannot write ${file}: ${errorText(err)}`, { cause: err });
    }
    return file;
  }

  /** Stops watching. Idempotent. */
  close(): void {
    this.closed = true;
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  private rememberStat(): void {
    if (this.path === undefined) return;
    try {
      const st = fs.statSync(this.path);
      this.knownStat = { mtimeMs: st.mtimeMs, size: st.size, ino: st.ino };
    } catch {
      this.knownStat = undefined;
    }
  }
}
