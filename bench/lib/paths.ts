// Where the benchmark lives: bench/ in the repository, whether run from bench/*.ts or from the
// compiled dist/bench/**.js.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bench', 'run.sh'))) return dir;
    dir = resolve(dir, '..');
  }
  return process.cwd();
}

export const repoRoot = findRepoRoot();
export const benchRoot = join(repoRoot, 'bench');
/** Compiled bench modules (child process entry points are spawned from here). */
export const benchDist = join(repoRoot, 'dist', 'bench');
