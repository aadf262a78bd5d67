// Custom variables (variable_add, reference §5.3): a static `value`, or a `target` (an HTTP(S)
// URL fetched with `X-Custom-Variable: name`, or a shell command) whose trimmed output becomes
// the value, re-run every `interval` seconds. The controller runs the targets and writes their
// values to run/variables.json, which the workers read when a push starts or an auto-push rule
// is evaluated; static values reach them through the config itself.

import { spawn } from 'node:child_process';
import type { CustomVariableSpec } from '../pushes/variables.js';
import { parseCustomVariable } from '../pushes/variables.js';
import { errorText } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { writeFileAtomic } from '../util/run-dir.js';
import type { ConfigStore } from './config-store.js';

/** A target's answer is cut to this many characters. */
const MAX_VALUE_CHARS = 4096;
/** Default wait for a target's answer, in seconds. */
const DEFAULT_WAIT_S = 5;
/** The shortest re-run interval honoured (a target cannot run more often than this). */
const MIN_INTERVAL_S = 1;

interface Runner {
  spec: CustomVariableSpec;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
}

/** The specs in a config's `variables` block (invalid ones are skipped). */
export function variableSpecs(raw: Readonly<Record<string, unknown>>): Map<string, CustomVariableSpec> {
  const out = new Map<string, CustomVariableSpec>();
  for (const [name, v] of Object.entries(raw)) {
    try {
      out.set(name, parseCustomVariable({ ...(v as object), name }));
    } catch {
      // written by hand and wrong: ignored (variable_add validates)
    }
  }
  return out;
}

/** Runs one target and resolves its trimmed output; rejects on failure or timeout. */
export async function runVariableTarget(name: string, target: string, waitS: number): Promise<string> {
  const timeoutMs = Math.max(100, waitS * 1000);
  if (/^https?:\/\//i.test(target)) {
    const res = await fetch(target, { headers: { 'X-Custom-Variable': name }, signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return (await res.text()).slice(0, MAX_VALUE_CHARS).trim();
  }
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', target], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, MIST_VARIABLE: name } });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no answer within ${waitS} s`));
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      if (out.length < MAX_VALUE_CHARS) out += d.toString('utf8');
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.slice(0, MAX_VALUE_CHARS).trim());
      else reject(new Error(`exited with code ${code}`));
    });
  });
}

export class CustomVariables {
  private readonly runners = new Map<string, Runner>();
  /** Values of the variables with a target, with the unix time of their last update. */
  private readonly values = new Map<string, { value: string; updated: number }>();

  constructor(
    private readonly store: ConfigStore,
    private readonly file: string,
    private readonly log: Logger,
  ) {
    this.sync();
  }

  /** Follows the config: starts runners for new targets, stops removed ones. */
  sync(): void {
    const specs = variableSpecs(this.store.get().variables);
    for (const [name, r] of this.runners) {
      const now = specs.get(name);
      if (!now || now.target !== r.spec.target || now.interval !== r.spec.interval) {
        if (r.timer) clearTimeout(r.timer);
        this.runners.delete(name);
        if (!now?.target) this.values.delete(name);
      }
    }
    for (const [name, spec] of specs) {
      if (!spec.target || this.runners.has(name)) continue;
      const r: Runner = { spec, timer: undefined, running: false };
      this.runners.set(name, r);
      void this.run(name, r);
    }
    this.write();
  }

  /** A variable's current value and last update (for variable_list). */
  current(name: string): { value: string; updated: number } | undefined {
    return this.values.get(name);
  }

  private async run(name: string, r: Runner): Promise<void> {
    if (r.running || this.runners.get(name) !== r) return;
    r.running = true;
    try {
      const value = await runVariableTarget(name, r.spec.target!, r.spec.waitTime ?? DEFAULT_WAIT_S);
      if (this.runners.get(name) === r && this.values.get(name)?.value !== value) {
        this.values.set(name, { value, updated: Math.floor(Date.now() / 1000) });
        this.write();
      }
    } catch (err) {
      this.log.warn(`variable $${name}: ${r.spec.target} failed: ${errorText(err)}; keeping the old value`);
    } finally {
      r.running = false;
    }
    const interval = r.spec.interval ?? 0;
    if (interval > 0 && this.runners.get(name) === r) {
      r.timer = setTimeout(() => void this.run(name, r), Math.max(MIN_INTERVAL_S, interval) * 1000);
      r.timer.unref();
    }
  }

  private write(): void {
    try {
      writeFileAtomic(this.file, JSON.stringify(Object.fromEntries([...this.values].map(([k, v]) => [k, v.value]))));
    } catch (err) {
      this.log.error(`writing ${this.file}: ${errorText(err)}`);
    }
  }

  close(): void {
    for (const r of this.runners.values()) if (r.timer) clearTimeout(r.timer);
    this.runners.clear();
  }
}
