// Synthetic servers for the balancer's simulator and benchmark: the §7.3 poll answer a Haze with
// these figures would give at time `t` s, written by Haze's own prometheusJson (so the balancer
// reads exactly what it reads from a real server). Byte counters grow at `viewerBps` per viewer.

import { prometheusJson } from '../src/stats/prometheus.js';
import type { StatsSnapshot, StreamFigures } from '../src/stats/snapshot.js';

export interface SyntheticServer {
  capacity: number;
  /** CPU use in tenths of a percent */
  cpu: number;
  memTotalKiB: number;
  memUsedKiB: number;
  lat?: number;
  lon?: number;
  tags?: string[];
  /** stream -> its viewers, inputs and whether it is relayed here */
  streams: Record<string, { viewers: number; inputs: number; replicated?: boolean }>;
  outputUrls?: Record<string, string>;
}

export function syntheticPoll(s: SyntheticServer, t: number, viewerBps: number): unknown {
  const streams: Record<string, StreamFigures> = {};
  let sent = 0;
  for (const [name, { viewers, inputs, replicated = false }] of Object.entries(s.streams)) {
    const bytes = viewers * viewerBps * t;
    sent += bytes;
    streams[name] = { current: { viewers, inputs, outputs: 0, unspecified: 0 }, total: { viewers, inputs, outputs: 0 }, bytes: { up: inputs * viewerBps * t, down: bytes }, viewSeconds: 0, packets: { sent: 0, lost: 0, retrans: 0 }, replicated };
  }
  const snap: StatsSnapshot = {
    timeMs: t * 1000,
    vitals: { cpuTenths: s.cpu, memTotalKiB: s.memTotalKiB, memUsedKiB: s.memUsedKiB, shmTotalKiB: s.memTotalKiB / 2, shmUsedKiB: 1000, nic: { up: 0, down: 0 } },
    logs: 0,
    current: { viewers: 0, inputs: 0, outputs: 0, unspecified: 0, cached: 0 },
    total: { viewers: 0, inputs: 0, outputs: 0, unspecified: 0 },
    viewSeconds: 0,
    bandwidth: { up: 0, down: sent },
    other: { up: 0, down: 0 },
    bandwidthLimit: s.capacity,
    packets: { sent: 0, lost: 0, retrans: 0 },
    outputs: {},
    streams,
    triggers: {},
    location: { lat: s.lat ?? 0, lon: s.lon ?? 0, name: '' },
    configuredStreams: [],
    tags: s.tags ?? [],
    outputUrls: s.outputUrls ?? { DTSC: 'dtsc://HOST:4200/$' },
  };
  return JSON.parse(JSON.stringify(prometheusJson(snap)));
}
