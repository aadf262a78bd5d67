// Per-trigger counters of this process (mist_trigger_count / _time / _fails, reference §7.3):
// the dispatcher reports every handler execution; workers hand their figures to the controller,
// which adds its own.

import type { TriggerStat } from '../triggers/dispatch.js';
import type { TriggerFigures } from './snapshot.js';

const figures = new Map<string, TriggerFigures>();

/** The dispatcher's `stat` hook. */
export function countTrigger(s: TriggerStat): void {
  let f = figures.get(s.name);
  if (!f) figures.set(s.name, (f = { count: 0, ms: 0, fails: 0 }));
  f.count++;
  f.ms += s.ms;
  if (!s.ok) f.fails++;
}

export function triggerFigures(): Record<string, TriggerFigures> {
  return Object.fromEntries([...figures].map(([k, v]) => [k, { ...v }]));
}

/** Adds `more` into `into` (the controller summing its workers'). */
export function addTriggerFigures(into: Record<string, TriggerFigures>, more: unknown): void {
  if (typeof more !== 'object' || more === null) return;
  for (const [name, v] of Object.entries(more as Record<string, Partial<TriggerFigures>>)) {
    if (typeof v?.count !== 'number') continue;
    const f = (into[name] ??= { count: 0, ms: 0, fails: 0 });
    f.count += v.count;
    f.ms += typeof v.ms === 'number' ? v.ms : 0;
    f.fails += typeof v.fails === 'number' ? v.fails : 0;
  }
}
