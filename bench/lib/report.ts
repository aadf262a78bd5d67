// The fan-out report: a console table as steps finish, and a markdown file at the end.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StepResult } from './step.js';
import { fmt } from './stats.js';
import type { Proto, ServerName } from './servers.js';

export const COLUMNS = ['server', 'proto', 'N', 'real time', 'CPU %', 'CPU ms/s /viewer', 'RSS KB/viewer', 'lat p50 ms', 'lat p99 ms', 'in-server p50/p99 ms', 'TTFF p95 ms', 'status'];

export function rowCells(r: StepResult): string[] {
  if (r.status === 'n/a') return [r.server, r.proto, String(r.viewers), 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', 'no HTTP-FLV output'];
  return [
    r.server,
    r.proto,
    String(r.viewers),
    `${r.realTime}/${r.viewers}`,
    fmt(r.cpuPct, 1),
    fmt(r.cpuMsPerViewerSec, 3),
    fmt(r.rssKbPerViewer, 1),
    fmt(r.latP50Ms, 0),
    fmt(r.latP99Ms, 0),
    Number.isNaN(r.inServerP50Ms) ? '-' : `${fmt(r.inServerP50Ms, 2)}/${fmt(r.inServerP99Ms, 2)}`,
    fmt(r.ttffP95Ms, 0),
    r.status,
  ];
}

export function consoleRow(cells: readonly string[]): string {
  const widths = [6, 9, 5, 10, 7, 17, 14, 11, 11, 21, 12, 0];
  return cells.map((c, i) => (widths[i] ? c.padStart(widths[i]!) : c)).join(' ');
}

function mdTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export interface RatioRow {
  proto: Proto;
  viewers: number;
  peer: ServerName;
  cpu: number;
  rss: number;
}

export function ratios(results: readonly StepResult[]): RatioRow[] {
  const out: RatioRow[] = [];
  const find = (s: ServerName, p: Proto, n: number): StepResult | undefined => results.find((r) => r.server === s && r.proto === p && r.viewers === n && r.status === 'ok');
  for (const h of results) {
    if (h.server !== 'haze' || h.status !== 'ok') continue;
    for (const peer of ['nginx', 'nms'] as const) {
      const p = find(peer, h.proto, h.viewers);
      if (!p) continue;
      out.push({ proto: h.proto, viewers: h.viewers, peer, cpu: h.cpuMsPerViewerSec / p.cpuMsPerViewerSec, rss: h.rssKbPerViewer / p.rssKbPerViewer });
    }
  }
  return out;
}

export interface ReportMeta {
  date: string;
  nproc: number;
  model: string;
  kernel: string;
  node: string;
  nginx: string;
  nms: string;
  windowSec: number;
  sampled: number;
  hazeWorkers: string;
  sourceKbps: number;
  /** /proc/loadavg at the start: other work on the machine skews every figure. */
  loadAvg: string;
}

export function writeMarkdown(file: string, meta: ReportMeta, results: readonly StepResult[]): void {
  const rows = results.map(rowCells);
  const rat = ratios(results);
  const details = results
    .filter((r) => r.status !== 'n/a')
    .map((r) => [
      r.server,
      r.proto,
      String(r.viewers),
      `${r.connected}`,
      `${r.withVideo}`,
      fmt(r.expectedKbps, 0),
      fmt(r.medianKbps, 0),
      fmt(r.rss0Kb / 1024, 1),
      fmt(r.rssNKb / 1024, 1),
      fmt(r.ttffP50Ms, 0),
      `${r.latFrames}`,
      Number.isFinite(r.stampedShare) ? `${Math.round(r.stampedShare * 100)}%` : 'n/a',
      fmt(r.genCpuPct, 0),
      Object.entries(r.errors).map(([k, v]) => `${v}x ${k}`).join('; ') || '-',
    ]);
  const text = [
    '# Haze fan-out benchmark',
    '',
    `Date: ${meta.date}  `,
    `Machine: ${meta.nproc} CPUs, ${meta.model}, Linux ${meta.kernel}, Node ${meta.node}; load average at start ${meta.loadAvg}  `,
    `Peers: nginx ${meta.nginx} with libnginx-mod-rtmp (1 worker), node-media-server ${meta.nms}; Haze workers: ${meta.hazeWorkers}  `,
    `Source: testsrc2 1280x720 30 fps H.264 + AAC, ${fmt(meta.sourceKbps, 0)} kbit/s, pushed in real time over RTMP; window ${meta.windowSec} s per step; ${meta.sampled} sampled viewers per step.`,
    '',
    'Everything runs on this one machine over 127.0.0.1: the server, the publisher and the load',
    'generator processes share the CPUs, so high-N rows measure a saturated machine.',
    '',
    mdTable(COLUMNS, rows),
    '',
    '- real time: viewers still connected that received >= 95% of the bytes the publisher sent during the window (sampled viewers: and whose media timestamps advanced with wall time).',
    '- CPU %: utime+stime of the server process and its descendants over the window, in % of one core; CPU ms/s /viewer = CPU ms per second per viewer.',
    '- RSS KB/viewer: (tree RSS with N viewers - tree RSS with the publisher alone) / N.',
    '- lat: receive wall time - publisher send wall time per video frame (sampled viewers, matched by an in-band SEI stamp). TTFF: connect to first video frame over all viewers (inf: more than 5% got none).',
    '- in-server (Haze only): added latency inside the server, from a packet reaching the stream hub to its bytes being handed to the kernel, one sample per viewer and event-loop turn over the window (fixed buckets: 10 µs steps to 0.1 ms, 50 µs to 1 ms, 0.5 ms to 10 ms).',
    '',
    '## Ratios (Haze / peer, per viewer; below 1 means Haze uses less)',
    '',
    rat.length > 0
      ? mdTable(['proto', 'N', 'peer', 'CPU ratio', 'RSS ratio'], rat.map((r) => [r.proto, String(r.viewers), r.peer, fmt(r.cpu, 2), fmt(r.rss, 2)]))
      : 'No ratios: Haze had no successful step.',
    '',
    '## Details',
    '',
    mdTable(['server', 'proto', 'N', 'connected', 'with video', 'sent kbit/s', 'median recv kbit/s', 'RSS0 MiB', 'RSS N MiB', 'TTFF p50', 'lat frames', 'stamped', 'gen CPU %', 'errors'], details),
    '',
  ].join('\n');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}
