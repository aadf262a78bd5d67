// The HLS fan-out report: a console table as steps finish, and bench/results/hls.md at the end.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { HlsStepResult } from './hls-step.js';
import type { ReportMeta } from './report.js';
import { fmt } from './stats.js';

export function outputLabel(r: Pick<HlsStepResult, 'server' | 'proto'>): string {
  const server = r.server === 'haze' ? 'Haze' : r.server === 'nginx' ? 'nginx-rtmp' : r.server;
  return `${server} ${r.proto === 'll-hls' ? 'LL-HLS' : 'HLS'}`;
}

export const HLS_COLUMNS = ['output', 'N', 'keeping up', 'req/s', 'MB/s', 'CPU %', 'CPU ms/s /viewer', 'RSS MiB', 'RSS KB/viewer', 'errors', 'age p50/p99 ms', 'part ann.→fetch p50/p99 ms', 'status'];

const pair = (a: number, b: number, digits = 0): string => (Number.isNaN(a) && Number.isNaN(b) ? '-' : `${fmt(a, digits)}/${fmt(b, digits)}`);

export function hlsRowCells(r: HlsStepResult): string[] {
  if (r.status !== 'ok' && r.windowSec === 0) return [outputLabel(r), String(r.viewers), '-', '-', '-', '-', '-', '-', '-', '-', '-', '-', r.status];
  return [
    outputLabel(r),
    String(r.viewers),
    `${r.keepingUp}/${r.viewers}`,
    fmt(r.requestsPerSec, 0),
    fmt(r.bytesPerSec / 1e6, 1),
    fmt(r.cpuPct, 1),
    fmt(r.cpuMsPerViewerSec, 3),
    fmt(r.rssNKb / 1024, 1),
    fmt(r.rssKbPerViewer, 1),
    String(r.errorsInWindow),
    pair(r.ageP50Ms, r.ageP99Ms),
    r.proto === 'll-hls' ? pair(r.announceP50Ms, r.announceP99Ms) : '-',
    r.status,
  ];
}

export function hlsConsoleRow(cells: readonly string[]): string {
  const widths = [16, 5, 11, 7, 6, 6, 17, 8, 14, 7, 15, 27, 0];
  return cells.map((c, i) => (widths[i] ? c.padStart(widths[i]!) : c)).join(' ');
}

function mdTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

export type HlsReportMeta = Omit<ReportMeta, 'nms' | 'sampled'> & { generators: number };

export function writeHlsMarkdown(file: string, meta: HlsReportMeta, results: readonly HlsStepResult[]): void {
  const ran = results.filter((r) => r.windowSec > 0);
  const details = ran.map((r) => [
    outputLabel(r),
    String(r.viewers),
    `${r.withMedia}`,
    fmt(r.keepUpLimitMs, 0),
    `${r.mediaFetches}`,
    `${r.unmatched}`,
    fmt(r.ageMaxMs, 0),
    fmt(r.expectedKbps, 0),
    fmt(r.medianKbps, 0),
    fmt(r.rss0Kb / 1024, 1),
    fmt(r.rssNKb / 1024, 1),
    pair(r.startupP50Ms, r.startupP95Ms),
    `${r.connectionsOpened}`,
    `${r.peakSockets}`,
    fmt(r.genCpuPct, 0),
    fmt(r.loadAvg1, 2),
    Object.entries(r.errors).map(([k, v]) => `${v}x ${k}`).join('; ') || '-',
  ]);
  const text = [
    '# Haze HLS / LL-HLS fan-out benchmark',
    '',
    `Date: ${meta.date}  `,
    `Machine: ${meta.nproc} CPUs, ${meta.model}, Linux ${meta.kernel}, Node ${meta.node}; load average at start ${meta.loadAvg}  `,
    `Peers: nginx ${meta.nginx} with libnginx-mod-rtmp (1 worker, \`hls on; hls_fragment 2s; hls_playlist_length 10s;\`, files served by its http block with sendfile); Haze workers: ${meta.hazeWorkers}. node-media-server is left out: v4 makes HLS only by running ffmpeg per stream.  `,
    `Source: testsrc2 1280x720 30 fps H.264 (keyframe every 2 s) + AAC, ${fmt(meta.sourceKbps, 0)} kbit/s, pushed in real time over RTMP; window ${meta.windowSec} s per step; viewers spread over ${meta.generators} load-generator processes, each with one keep-alive http.Agent.`,
    '',
    'Everything runs on this one machine over 127.0.0.1: the server, the publisher and the load',
    'generator processes share the CPUs, so high-N rows measure a saturated machine.',
    '',
    mdTable(HLS_COLUMNS, results.map(hlsRowCells)),
    '',
    '- Players: HLS fetches the multivariant playlist once (nginx-rtmp has none: its media playlist is the entry), reloads the media playlist every target duration (half when unchanged), starts three segments from the live edge and fetches every new segment once. LL-HLS (Haze /cmaf/) fetches the multivariant playlist and init segment once, then issues blocking reloads `_HLS_msn`/`_HLS_part` (+ `_HLS_skip=YES`) back to back and fetches every part once, the next one through its preload hint, as hls.js in low-latency mode.',
    '- keeping up: viewers that fetched media in the window with every segment/part age at most 3 target durations (HLS, 6 s) or PART-HOLD-BACK (LL-HLS, 1.5 s).',
    '- req/s, MB/s: completed HTTP responses and body bytes per second over the window, all viewers. errors: requests in the window that failed (non-200 or no response); the kinds over the whole step are in the details.',
    '- CPU %: utime+stime of the server process and its descendants over the window, in % of one core; CPU ms/s /viewer = CPU ms per second per viewer. RSS MiB: tree RSS at the end of the window; RSS KB/viewer: (that - tree RSS with the publisher alone, the playlist already requested once) / N.',
    '- age: segment (or part) age at fetch = wall time the fetch completed - wall time the publisher sent the segment\'s last video frame. The publisher stamps every video frame with its timestamp in an SEI NAL unit (lib/stamp.ts) and reports each stamp\'s send time; the first fetch of each URI in a load generator reads the largest stamp in the body (fMP4: in the mdat as is; TS: in the joined payload of each PID), which every other fetch of that URI shares. Exact for every server, whatever it does to timestamps.',
    '- part ann.→fetch (LL-HLS): fetch completion - the first moment any viewer knew the part was complete (a playlist listing it arrived, or a fetch of it completed, whichever came first over all viewers). Parts are fetched through the preload hint before they are announced, so this is the spread of one part\'s delivery over the N viewers.',
    '',
    '## Details',
    '',
    mdTable(['output', 'N', 'with media', 'keep-up limit ms', 'media fetches', 'unmatched', 'age max ms', 'sent kbit/s', 'median recv kbit/s', 'RSS0 MiB', 'RSS N MiB', 'startup p50/p95 ms', 'connections', 'peak sockets', 'gen CPU %', 'load 1m', 'errors (whole step)'], details),
    '',
    '- unmatched: window fetches whose last frame stamp was not found or not matched to a send time (should be 0).',
    `- load 1m: the machine's 1-minute load average at the end of the window (${meta.nproc} CPUs; above that the machine was saturated, other work included).`,
    '- startup: viewer start to its first complete segment/part. connections / peak sockets: TCP connections the load generators opened over the step / most open at once (keep-alive reuse).',
    '- sent kbit/s: media bytes the publisher sent in the window; median recv: body bytes per viewer (TS adds ~10% of packet overhead, fMP4 ~2%).',
    '',
  ].join('\n');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}
