// docs/api.md's "## Calls" table must name every call the API answers (API_CALLS), so a call
// added without documentation fails the build (issue 8: no call the web UI uses is undocumented).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { API_CALLS } from '../../src/controller/api.js';
import { repoRoot } from '../helpers.js';

/** The call names in the first column of the table under `## Calls` (each written as `name`). */
function documentedCalls(markdown: string): string[] {
  const start = markdown.indexOf('\n## Calls\n');
  assert.ok(start >= 0, 'docs/api.md has a "## Calls" section');
  const next = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, next < 0 ? undefined : next);
  const names: string[] = [];
  for (const line of section.split('\n')) {
    if (!line.startsWith('|') || /^\|\s*-/.test(line) || line.startsWith('| Call ')) continue;
    // the first cell ends at the first "|" that is not escaped as "\|"
    const cell = /^\|((?:[^|\\]|\\.)*)\|/.exec(line)?.[1] ?? '';
    for (const m of cell.matchAll(/`([^`]+)`/g)) names.push(m[1]!);
  }
  return names;
}

test('docs/api.md documents every API call in its Calls table', () => {
  const doc = fs.readFileSync(path.join(repoRoot, 'docs/api.md'), 'utf8');
  const documented = documentedCalls(doc);
  assert.ok(documented.length >= 40, `the table lists the calls (${documented.length} found)`);
  const missing = API_CALLS.filter((name) => !documented.includes(name));
  assert.deepEqual(missing, [], `calls missing from docs/api.md's Calls table: ${missing.join(', ')}`);
  const twice = documented.filter((n, i) => documented.indexOf(n) !== i);
  assert.deepEqual(twice, [], 'each call has one row');
});

test('the table parser reads only the first column', () => {
  const md = '# x\n\n## Calls\n\n| Call | Argument |\n|---|---|\n| `a` | `b` |\n| `c` / `d` | `x \\| y` |\n| `e \\| f` | g |\n\n## Other\n\n| `z` | y |\n';
  assert.deepEqual(documentedCalls(md), ['a', 'c', 'd', 'e \\| f']);
});

test('every call and WebSocket feed the web UI uses is answered by the API and documented', async () => {
  // the UI's list (src/web/ui/calls.ts), built for the browser into dist/web/ui
  const ui = (await import(pathToFileURL(path.join(repoRoot, 'dist/web/ui/calls.js')).href)) as { UI_CALLS: string[]; UI_WS_KINDS: string[] };
  const doc = fs.readFileSync(path.join(repoRoot, 'docs/api.md'), 'utf8');
  const documented = documentedCalls(doc);
  assert.ok(ui.UI_CALLS.length >= 20);
  assert.deepEqual(ui.UI_CALLS.filter((c) => !API_CALLS.includes(c)), [], 'calls the API does not answer');
  assert.deepEqual(ui.UI_CALLS.filter((c) => !documented.includes(c)), [], 'calls missing from docs/api.md');
  for (const kind of ui.UI_WS_KINDS) assert.ok(doc.includes(`| \`${kind}=`), `the WebSocket feed ${kind} is documented`);
});
