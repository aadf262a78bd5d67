// docs/triggers.md must be what the trigger map renders (regenerate with
// `node scripts/gen-trigger-docs.mjs` after a build).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { renderTriggerDocs } from '../../src/triggers/trigger-docs.js';
import { TRIGGER_NAMES, TRIGGERS } from '../../src/triggers/trigger-map.js';
import { repoRoot, runOk } from '../helpers.js';

test('docs/triggers.md is up to date with the trigger map', () => {
  const committed = fs.readFileSync(path.join(repoRoot, 'docs/triggers.md'), 'utf8');
  assert.equal(committed, renderTriggerDocs(), 'docs/triggers.md is stale: run node scripts/gen-trigger-docs.mjs');
});

test('the docs name every trigger with its fields', () => {
  const doc = renderTriggerDocs();
  for (const name of TRIGGER_NAMES) {
    assert.ok(doc.includes(`### ${name}\n`), name);
    for (const f of TRIGGERS[name].fields) assert.ok(doc.includes(`\`${f}\``), `${name}.${f}`);
  }
});

test('the generator script --check agrees', async () => {
  await runOk(process.execPath, [path.join(repoRoot, 'scripts/gen-trigger-docs.mjs'), '--check']);
});
