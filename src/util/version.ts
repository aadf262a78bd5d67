// Haze's version, read once from package.json.

import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

function readVersion(): string {
  try {
    // dist/src/util/version.js -> package.json three folders up
    const pkg = JSON.parse(fs.readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const HAZE_VERSION = readVersion();
