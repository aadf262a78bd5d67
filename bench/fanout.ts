// Fan-out benchmark: one publisher, N viewers (RTMP or HTTP-FLV), Haze side by side with nginx-rtmp
// and node-media-server. Run through `npm run bench` (bench/run.sh), which builds, installs the
// peers and raises the fd limit. Settings (environment):
//   BENCH_N=100,500,1000,2000   viewer counts        BENCH_SECONDS=20     window per step
//   BENCH_SERVERS=haze,nginx,nms                     BENCH_PROTOS=rtmp,http-flv
//   BENCH_SAMPLED=20   fully parsed viewers per step BENCH_HAZE_WORKERS   Haze's --workers
//   BENCH_QUICK=1      N=50,200 with 8 s steps (checks the harness)
//   BENCH_REPORT=path  markdown output (default bench/results/latest.md)

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { machineInfo } from './lib/proc.js';
import { benchRoot, repoRoot } from './lib/paths.js';
import { COLUMNS, consoleRow, ratios, rowCells, writeMarkdown } from './lib/report.js';
import { ensureSource } from './lib/source.js';
import type { Proto, ServerName } from './lib/servers.js';
import { runStep } from './lib/step.js';
import type { StepResult } from './lib/step.js';
import { fmt } from './lib/stats.js';

function list(name: string, fallback: string): string[] {
  return (process.env[name] ?? fallback).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function versionOf(cmd: string, args: string[], re: RegExp): string {
  // nginx -v prints to stderr.
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return re.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? '?';
}

async function main(): Promise<void> {
  const quick = process.env['BENCH_QUICK'] === '1';
  const counts = list('BENCH_N', quick ? '50,200' : '100,500,1000,2000').map(Number).filter((n) => Number.isInteger(n) && n > 0 && n <= 20000);
  const windowSec = Number(process.env['BENCH_SECONDS'] ?? (quick ? 8 : 20));
  const servers = list('BENCH_SERVERS', 'haze,nginx,nms').filter((s): s is ServerName => s === 'haze' || s === 'nginx' || s === 'nms');
  const protos = list('BENCH_PROTOS', 'rtmp,http-flv').filter((p): p is Proto => p === 'rtmp' || p === 'http-flv');
  const sampled = Number(process.env['BENCH_SAMPLED'] ?? 20);
  const hazeWorkersEnv = process.env['BENCH_HAZE_WORKERS'];
  // One worker by default, as nginx runs one worker and node-media-server one process;
  // BENCH_HAZE_WORKERS=default leaves Haze's own default (one per core).
  const hazeWorkers = hazeWorkersEnv === 'default' ? undefined : Number(hazeWorkersEnv || 1);
  const reportFile = process.env['BENCH_REPORT'] ?? join(benchRoot, 'results', 'latest.md');
  const logDir = join(benchRoot, '.cache', 'logs');
  mkdirSync(logDir, { recursive: true });

  const sourceFile = ensureSource();
  const info = machineInfo();
  const loadAvg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (Number(loadAvg.split(' ')[0]) > 0.5 * info.nproc) console.log(`note: load average ${loadAvg} before the run: other work is running, figures will be skewed`);
  const sourceKbps = ((statSync(sourceFile).size * 8) / 1000 / 60);
  let nmsVersion = '?';
  try {
    nmsVersion = (JSON.parse(readFileSync(join(benchRoot, '.peers', 'node_modules', 'node-media-server', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // not installed: its steps report the error
  }
  const nginxVersion = versionOf('nginx', ['-v'], /nginx\/(\S+)/);
  console.log(`fan-out: N=${counts.join(',')} window=${windowSec}s servers=${servers.join(',')} protos=${protos.join(',')} sampled=${sampled}` + (hazeWorkers !== undefined ? ` haze --workers ${hazeWorkers}` : ''));
  console.log(`machine: ${info.nproc} x ${info.model}, load ${loadAvg}; logs in ${logDir}`);
  console.log(consoleRow(COLUMNS));

  const results: StepResult[] = [];
  for (const proto of protos) {
    for (const n of counts) {
      for (const server of servers) {
        const r = await runStep({ server, proto, viewers: n, windowSec, sampled: Math.min(sampled, n), sourceFile, logDir, hazeWorkers, warmupSec: quick ? 1.5 : 3, settleSec: quick ? 1 : 3 });
        results.push(r);
        console.log(consoleRow(rowCells(r)));
        const errs = Object.entries(r.errors);
        if (errs.length > 0) console.log(`        errors: ${errs.map(([k, v]) => `${v}x ${k}`).join('; ')}`);
      }
    }
  }
  const rat = ratios(results);
  if (rat.length > 0) {
    console.log('\nHaze / peer, per viewer (below 1: Haze uses less)');
    for (const r of rat) console.log(`  ${r.proto.padEnd(8)} N=${String(r.viewers).padStart(5)} vs ${r.peer.padEnd(5)}  CPU ${fmt(r.cpu, 2).padStart(6)}  RSS ${fmt(r.rss, 2).padStart(6)}`);
  }
  writeMarkdown(reportFile, {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    nproc: info.nproc,
    model: info.model,
    kernel: info.kernel,
    node: process.version,
    nginx: nginxVersion,
    nms: nmsVersion,
    windowSec,
    sampled,
    hazeWorkers: hazeWorkers !== undefined ? String(hazeWorkers) : 'default',
    sourceKbps,
    loadAvg,
  }, results);
  console.log(`\nreport: ${reportFile.startsWith(repoRoot) ? reportFile.slice(repoRoot.length + 1) : reportFile}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
