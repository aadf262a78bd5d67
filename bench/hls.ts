// HLS fan-out benchmark: one real-time publisher, N simulated HLS players, for Haze's HLS with
// TS segments (/hls/), Haze's LL-HLS (/cmaf/, blocking reload and parts) and nginx-rtmp's HLS.
// node-media-server v4 is left out: it makes HLS only by running ffmpeg per stream.
// Run through `npm run bench -- hls` (bench/run.sh). Settings (environment):
//   BENCH_N=100,500,1000   viewer counts                 BENCH_SECONDS=20   window per step
//   BENCH_HLS_TARGETS=haze-hls,haze-llhls,nginx-hls      BENCH_HAZE_WORKERS Haze's --workers (1)
//   BENCH_HLS_GENERATORS=2  load-generator processes     BENCH_QUICK=1      N=50,200, 8 s steps
//   BENCH_REPORT=path       markdown output (default bench/results/hls.md)

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { outputLabel, HLS_COLUMNS, hlsConsoleRow, hlsRowCells, writeHlsMarkdown } from './lib/hls-report.js';
import { runHlsStep } from './lib/hls-step.js';
import type { HlsStepResult } from './lib/hls-step.js';
import { benchRoot, repoRoot } from './lib/paths.js';
import { machineInfo } from './lib/proc.js';
import type { HlsProto, ServerName } from './lib/servers.js';
import { ensureSource } from './lib/source.js';

const TARGETS: Record<string, { server: ServerName; proto: HlsProto }> = {
  'haze-hls': { server: 'haze', proto: 'hls-ts' },
  'haze-llhls': { server: 'haze', proto: 'll-hls' },
  'nginx-hls': { server: 'nginx', proto: 'hls-ts' },
};

function list(name: string, fallback: string): string[] {
  return (process.env[name] ?? fallback).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

async function main(): Promise<void> {
  const quick = process.env['BENCH_QUICK'] === '1';
  const counts = list('BENCH_N', quick ? '50,200' : '100,500,1000').map(Number).filter((n) => Number.isInteger(n) && n > 0 && n <= 20000);
  const windowSec = Number(process.env['BENCH_SECONDS'] ?? (quick ? 8 : 20));
  const targetNames = list('BENCH_HLS_TARGETS', 'haze-hls,haze-llhls,nginx-hls');
  const unknown = targetNames.filter((t) => !(t in TARGETS));
  if (unknown.length > 0) throw new Error(`BENCH_HLS_TARGETS: unknown ${unknown.join(',')} (known: ${Object.keys(TARGETS).join(',')})`);
  const targets = targetNames.map((t) => TARGETS[t]!);
  const generators = Math.max(1, Math.min(8, Number(process.env['BENCH_HLS_GENERATORS'] ?? 2) || 2));
  const hazeWorkersEnv = process.env['BENCH_HAZE_WORKERS'];
  // One worker by default, as nginx runs one worker; BENCH_HAZE_WORKERS=default leaves Haze's own.
  const hazeWorkers = hazeWorkersEnv === 'default' ? undefined : Number(hazeWorkersEnv || 1);
  const reportFile = process.env['BENCH_REPORT'] ?? join(benchRoot, 'results', 'hls.md');
  const logDir = join(benchRoot, '.cache', 'logs');
  mkdirSync(logDir, { recursive: true });

  const sourceFile = ensureSource();
  const info = machineInfo();
  const loadAvg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (Number(loadAvg.split(' ')[0]) > 0.5 * info.nproc) console.log(`note: load average ${loadAvg} before the run: other work is running, figures will be skewed`);
  const sourceKbps = (statSync(sourceFile).size * 8) / 1000 / 60;
  // nginx -v prints to stderr.
  const v = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  const nginxVersion = /nginx\/(\S+)/.exec(`${v.stdout ?? ''}${v.stderr ?? ''}`)?.[1] ?? '?';
  console.log(`hls fan-out: N=${counts.join(',')} window=${windowSec}s targets=${targetNames.join(',')} generators=${generators}` + (hazeWorkers !== undefined ? ` haze --workers ${hazeWorkers}` : ''));
  console.log(`machine: ${info.nproc} x ${info.model}, load ${loadAvg}; logs in ${logDir}`);
  console.log(hlsConsoleRow(HLS_COLUMNS));

  const results: HlsStepResult[] = [];
  for (const n of counts) {
    for (const t of targets) {
      const r = await runHlsStep({ ...t, viewers: n, windowSec, sourceFile, logDir, hazeWorkers, settleSec: quick ? 3 : 4, generators });
      results.push(r);
      console.log(hlsConsoleRow(hlsRowCells(r)));
      const errs = Object.entries(r.errors);
      if (errs.length > 0) console.log(`        ${outputLabel(r)} errors over the step: ${errs.map(([k, c]) => `${c}x ${k}`).join('; ')}`);
    }
  }
  writeHlsMarkdown(reportFile, {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: info.nproc,
    model: info.model,
    kernel: info.kernel,
    node: process.version,
    nginx: nginxVersion,
    windowSec,
    hazeWorkers: hazeWorkers !== undefined ? String(hazeWorkers) : 'default',
    sourceKbps,
    loadAvg,
    generators,
  }, results);
  console.log(`\nreport: ${reportFile.startsWith(repoRoot) ? reportFile.slice(repoRoot.length + 1) : reportFile}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
