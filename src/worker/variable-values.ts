// The custom variables' current values as a worker sees them (reference §5.3): static values
// from the effective config's `variables`, and the values of targeted variables that the
// controller writes to run/variables.json (custom-variables.ts). The file is re-read only when
// it changed.

import fs from 'node:fs';
import type { ConfigView } from './config-view.js';

export function variableValues(config: ConfigView, file: string): () => Readonly<Record<string, string>> {
  let cached: { mtimeMs: number; values: Record<string, string> } = { mtimeMs: -1, values: {} };
  const dynamic = (): Record<string, string> => {
    let mtimeMs: number;
    try {
      mtimeMs = fs.statSync(file).mtimeMs;
    } catch {
      return {};
    }
    if (mtimeMs !== cached.mtimeMs) {
      try {
        const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
        const values: Record<string, string> = {};
        if (parsed !== null && typeof parsed === 'object') for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') values[k] = v;
        cached = { mtimeMs, values };
      } catch {
        // being replaced: keep the previous values
      }
    }
    return cached.values;
  };
  return () => {
    const out: Record<string, string> = {};
    const raw = config.get()['variables'];
    if (raw !== null && typeof raw === 'object') {
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        const value = (v as { value?: unknown } | null)?.value;
        if (typeof value === 'string') out[k] = value;
      }
    }
    return Object.assign(out, dynamic());
  };
}
