// The statistics as Prometheus scrapes them and as the load balancer reads them
// (reference/mistserver.md §7.3): `/<prometheus>` answers prometheusText(), `/<prometheus>.json`
// prometheusJson(). Pure: a snapshot in, text or an object out.
//
// Metric names, labels and units are MistServer's, so its dashboards and alerts work unchanged.
// Two differences on purpose: there is always one space between `}` and the value (MistServer
// leaves it out on labelled lines, which strict parsers reject), and every family carries its own
// `# HELP`/`# TYPE` and keeps its samples together (MistServer interleaves the per-stream families
// and prints stat_bw_total under mist_bw_total's header). Exposition format 0.0.4 allows a counter
// whose name does not end in `_total`, so the counters keep MistServer's names.

import type { StatsSnapshot } from './snapshot.js';

/** The Content-Type of prometheusText(). */
export const PROMETHEUS_TEXT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Readonly<Record<string, string>>;
type Sample = readonly [labels: Labels, value: number];

interface Family {
  name: string;
  type: 'counter' | 'gauge';
  help: string;
  samples: Sample[];
}

/** A label value as the exposition format quotes it: backslash, double quote and newline escaped. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample value: Go's ParseFloat reads everything JavaScript's String(n) prints for finite numbers. */
function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function sampleLine(name: string, labels: Labels, value: number): string {
  const keys = Object.keys(labels);
  const lab = keys.length ? `{${keys.map((k) => `${k}="${escapeLabelValue(labels[k]!)}"`).join(',')}}` : '';
  return `${name}${lab} ${formatValue(value)}`;
}

const sortedKeys = (o: Record<string, unknown>): string[] => Object.keys(o).sort();

/** The snapshot as exposition-format families, in a fixed order; a family without samples is left out. */
function families(s: StatsSnapshot): Family[] {
  const streams = sortedKeys(s.streams);
  const triggers = sortedKeys(s.triggers);
  const perStream = <T>(fn: (name: string) => T[]): T[] => streams.flatMap(fn);
  const fam = (name: string, type: Family['type'], help: string, samples: Sample[]): Family => ({ name, type, help, samples });
  const dirs = (b: { up: number; down: number }, extra: Labels = {}): Sample[] => [
    [{ ...extra, direction: 'up' }, b.up],
    [{ ...extra, direction: 'down' }, b.down],
  ];
  const pkts = (p: { sent: number; lost: number; retrans: number }, extra: Labels = {}): Sample[] => [
    [{ ...extra, pkttype: 'sent' }, p.sent],
    [{ ...extra, pkttype: 'lost' }, p.lost],
    [{ ...extra, pkttype: 'retrans' }, p.retrans],
  ];
  const v = s.vitals;
  return [
    fam('mist_logs', 'counter', 'Count of log messages since server start.', [[{}, s.logs]]),
    fam('mist_cpu', 'gauge', 'Total CPU usage of the machine in tenths of percent.', [[{}, v.cpuTenths]]),
    fam('mist_mem_total', 'gauge', 'Total memory of the machine in KiB.', [[{}, v.memTotalKiB]]),
    fam('mist_mem_used', 'gauge', 'Memory in use in KiB (total minus available).', [[{}, v.memUsedKiB]]),
    fam('mist_shm_total', 'gauge', 'Size of the shared memory file system in KiB.', [[{}, v.shmTotalKiB]]),
    fam('mist_shm_used', 'gauge', 'Shared memory in use in KiB.', [[{}, v.shmUsedKiB]]),
    fam('mist_viewseconds_total', 'counter', 'Seconds of media received by viewers, summed, since server start.', [[{}, s.viewSeconds]]),
    fam('mist_sessions_count', 'counter', 'Sessions seen since server start, by type.', [
      [{ sessType: 'viewers' }, s.total.viewers],
      [{ sessType: 'incoming' }, s.total.inputs],
      [{ sessType: 'outgoing' }, s.total.outputs],
      [{ sessType: 'unspecified' }, s.total.unspecified],
    ]),
    // up = received by the machine, down = sent (Haze's ByteCounts; see machine.ts)
    fam('stat_bw_total', 'counter', 'Bytes through the network interfaces (loopback excluded) since boot, by direction.', dirs(v.nic)),
    fam('mist_bw_total', 'counter', 'Bytes clients sent (up) and received (down) since server start.', dirs(s.bandwidth)),
    fam('mist_bw_other', 'counter', 'The part of mist_bw_total exchanged with bandwidth.exceptions hosts.', dirs(s.other)),
    fam('mist_bw_limit', 'gauge', 'Configured bandwidth limit in bytes per second.', [[{}, s.bandwidthLimit]]),
    fam('mist_packets_total', 'counter', 'Packets sent, lost and retransmitted over lossy protocols since server start.', pkts(s.packets)),
    fam('mist_outputs', 'gauge', 'Viewers now, by output type.', sortedKeys(s.outputs).map((o): Sample => [{ output: o }, s.outputs[o]!])),
    fam('mist_sessions_total', 'gauge', 'Sessions active now, server-wide, by type (cached: all sessions kept).', [
      [{ sessType: 'viewers' }, s.current.viewers],
      [{ sessType: 'incoming' }, s.current.inputs],
      [{ sessType: 'outgoing' }, s.current.outputs],
      [{ sessType: 'unspecified' }, s.current.unspecified],
      [{ sessType: 'cached' }, s.current.cached],
    ]),
    fam('mist_sessions', 'gauge', 'Sessions active now, per stream, by type.', perStream((n): Sample[] => {
      const c = s.streams[n]!.current;
      return [
        [{ stream: n, sessType: 'viewers' }, c.viewers],
        [{ stream: n, sessType: 'incoming' }, c.inputs],
        [{ stream: n, sessType: 'outgoing' }, c.outputs],
        [{ stream: n, sessType: 'unspecified' }, c.unspecified],
      ];
    })),
    fam('mist_viewcount', 'counter', 'Viewer sessions since stream start, per stream.', perStream((n): Sample[] => [[{ stream: n }, s.streams[n]!.total.viewers]])),
    fam('mist_viewseconds', 'counter', 'Seconds of media received by viewers, summed, per stream.', perStream((n): Sample[] => [[{ stream: n }, s.streams[n]!.viewSeconds]])),
    fam('mist_bw', 'counter', 'Bytes since stream start, per stream, by direction.', perStream((n) => dirs(s.streams[n]!.bytes, { stream: n }))),
    fam('mist_packets', 'counter', 'Packets sent, lost and retransmitted over lossy protocols, per stream.', perStream((n) => pkts(s.streams[n]!.packets, { stream: n }))),
    fam('mist_trigger_count', 'counter', 'Executions of the trigger.', triggers.map((t): Sample => [{ trigger: t }, s.triggers[t]!.count])),
    fam('mist_trigger_time', 'counter', 'Milliseconds spent executing the trigger, summed.', triggers.map((t): Sample => [{ trigger: t }, s.triggers[t]!.ms])),
    fam('mist_trigger_fails', 'counter', 'Failed executions of the trigger.', triggers.map((t): Sample => [{ trigger: t }, s.triggers[t]!.fails])),
  ].filter((f) => f.samples.length > 0);
}

/** The snapshot in Prometheus exposition format 0.0.4. */
export function prometheusText(s: StatsSnapshot): string {
  const out: string[] = [];
  for (const f of families(s)) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const [labels, value] of f.samples) out.push(sampleLine(f.name, labels, value));
  }
  return out.join('\n') + '\n';
}

/**
 * The snapshot in MistServer's JSON form (§7.3), the one its load balancer polls every 5 s.
 * Positional arrays as MistServer has them; empty collections are present (not left out) so a
 * reader needs no existence checks.
 */
export function prometheusJson(s: StatsSnapshot): Record<string, unknown> {
  const v = s.vitals;
  const streams: Record<string, unknown> = {};
  for (const n of sortedKeys(s.streams)) {
    const f = s.streams[n]!;
    streams[n] = {
      tot: [f.total.viewers, f.total.inputs, f.total.outputs],
      bw: [f.bytes.up, f.bytes.down],
      curr: [f.current.viewers, f.current.inputs, f.current.outputs, f.current.unspecified],
      pkts: [f.packets.sent, f.packets.lost, f.packets.retrans],
      ...(f.replicated ? { rep: true } : {}),
    };
  }
  const triggers: Record<string, unknown> = {};
  for (const t of sortedKeys(s.triggers)) {
    const f = s.triggers[t]!;
    triggers[t] = { count: f.count, ms: f.ms, fails: f.fails };
  }
  const outputCounts: Record<string, number> = {};
  for (const o of sortedKeys(s.outputs)) outputCounts[o] = s.outputs[o]!;
  const outputs: Record<string, string> = {};
  for (const o of sortedKeys(s.outputUrls)) outputs[o] = s.outputUrls[o]!;
  return {
    cpu: v.cpuTenths,
    mem_total: v.memTotalKiB,
    mem_used: v.memUsedKiB,
    shm_total: v.shmTotalKiB,
    shm_used: v.shmUsedKiB,
    logs: s.logs,
    curr: [s.current.viewers, s.current.inputs, s.current.outputs, s.current.unspecified, s.current.cached],
    tot: [s.total.viewers, s.total.inputs, s.total.outputs, s.total.unspecified],
    st: [v.nic.up, v.nic.down],
    bw: [s.bandwidth.up, s.bandwidth.down],
    pkts: [s.packets.sent, s.packets.lost, s.packets.retrans],
    bwlimit: s.bandwidthLimit,
    triggers,
    loc: { lat: s.location.lat, lon: s.location.lon, name: s.location.name },
    obw: [s.other.up, s.other.down],
    streams,
    output_counts: outputCounts,
    conf_streams: [...s.configuredStreams],
    tags: [...s.tags],
    outputs,
  };
}
