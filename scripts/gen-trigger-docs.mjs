#!/usr/bin/env node
// Writes docs/triggers.md from the trigger map (src/triggers/trigger-map.ts), via the built
// dist/. Run after `npx tsc -p tsconfig.json`: node scripts/gen-trigger-docs.mjs
// With --check it writes nothing and exits 1 when the committed file is out of date.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mod = await import(pathToFileURL(path.join(root, 'dist/src/triggers/trigger-docs.js')).href);
const text = mod.renderTriggerDocs();
const target = path.join(root, 'docs/triggers.md');

if (process.argv.includes('--check')) {
  const current = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
  if (current !== text) {
    console.error('docs/triggers.md is out of date: run node scripts/gen-trigger-docs.mjs');
    process.exit(1);
  }
} else {
  fs.writeFileSync(target, text);
  console.log(`wrote ${path.relative(root, target)}`);
}
