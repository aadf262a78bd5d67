// Checks a Grafana dashboard file against the metrics a Haze process emits: importable shape
// (schema 39, the DS_PROMETHEUS input, an `instance` variable, unique panel ids), every query
// reads only emitted metrics and is filtered by $instance, and the named metrics are shown.

import assert from 'node:assert/strict';
import fs from 'node:fs';

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset']);

/** The metric names a PromQL expression reads: identifiers outside strings, `{}`, `[]` and `by (...)`, not called as functions. */
export function promqlMetricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const after = s.slice(m.index! + m[0].length);
    if (/^\s*\(/.test(after) || PROMQL_WORDS.has(m[0])) continue;
    if (m.index! > 0 && /[0-9.]/.test(s[m.index! - 1]!)) continue; // 1e3 and the like
    names.push(m[0]);
  }
  return names;
}

/** Asserts the dashboard in `file` is importable and reads only `emitted` metrics, showing every one of `mustShow`. */
export function checkDashboard(file: string, emitted: ReadonlySet<string>, mustShow: readonly string[]): void {
  const d = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.equal(d.schemaVersion, 39);
  assert.ok(d.__inputs.some((i: any) => i.name === 'DS_PROMETHEUS' && i.type === 'datasource' && i.pluginId === 'prometheus'));
  const instance = d.templating.list.find((v: any) => v.name === 'instance');
  assert.ok(instance, 'an `instance` variable');
  const panels: any[] = d.panels.flatMap((p: any) => [p, ...(p.panels ?? [])]);
  const ids = panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids unique');
  const exprs: string[] = [];
  for (const p of panels) {
    if (p.type === 'row') continue;
    assert.equal(p.datasource.uid, '${DS_PROMETHEUS}', `${p.title}: the imported data source`);
    assert.ok(p.targets.length > 0, `${p.title} has queries`);
    for (const t of p.targets) exprs.push(t.expr);
  }
  exprs.push(instance.query.query.replace(/^label_values\((\w+),.*$/, '$1'));
  const used = new Set<string>();
  for (const e of exprs) {
    const names = promqlMetricNames(e);
    assert.ok(names.length > 0, `reads a metric: ${e}`);
    for (const n of names) {
      assert.ok(emitted.has(n), `${n} (in ${e}) is an emitted metric`);
      used.add(n);
    }
    if (e.includes('{')) assert.match(e, /instance=~"\$instance"/, `filtered by $instance: ${e}`);
  }
  for (const m of mustShow) assert.ok(used.has(m), `the dashboard shows ${m}`);
}
