import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { createRequire } from 'node:module';
import { escapeLabelValue, prometheusJson, prometheusText } from '../../src/stats/prometheus.js';
import type { StatsSnapshot } from '../../src/stats/snapshot.js';
import { repoRoot } from '../helpers.js';
import { checkDashboard, promqlMetricNames } from '../grafana-dashboard.js';

const require = createRequire(import.meta.url);
interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}
// an independent parser (written by others, after prom2json/client_python)
const parsePrometheus = require('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

/** Every figure distinct, so a swapped field shows. */
function variedSnapshot(): StatsSnapshot {
  return {
    timeMs: 1_700_000_000_000,
    vitals: { cpuTenths: 437, memTotalKiB: 16_318_412, memUsedKiB: 4_211_720, shmTotalKiB: 8_159_204, shmUsedKiB: 1024, nic: { up: 123_456_789_012, down: 987_654_321 } },
    logs: 812,
    current: { viewers: 12, inputs: 2, outputs: 1, unspecified: 3, cached: 40 },
    total: { viewers: 930, inputs: 4, outputs: 5, unspecified: 6 },
    viewSeconds: 77_777,
    bandwidth: { up: 5_000_001, down: 900_000_002 },
    other: { up: 11, down: 1_000_003 },
    bandwidthLimit: 134_217_728,
    packets: { sent: 1001, lost: 7, retrans: 9 },
    outputs: { RTMP: 2, HLS: 10, 'HTTP-TS': 0 },
    streams: {
      'live+alice': {
        current: { viewers: 10, inputs: 1, outputs: 1, unspecified: 2 },
        total: { viewers: 900, inputs: 3, outputs: 4 },
        bytes: { up: 4_000_000, down: 800_000_000 },
        viewSeconds: 70_000,
        packets: { sent: 1000, lost: 6, retrans: 8 },
        replicated: false,
      },
      demo: {
        current: { viewers: 2, inputs: 1, outputs: 0, unspecified: 1 },
        total: { viewers: 30, inputs: 1, outputs: 1 },
        bytes: { up: 1_000_001, down: 100_000_002 },
        viewSeconds: 7777,
        packets: { sent: 1, lost: 1, retrans: 1 },
        replicated: true,
      },
    },
    triggers: {
      USER_NEW: { count: 930, ms: 1200, fails: 3 },
      'odd "name" \\ with\nnewline': { count: 2, ms: 15, fails: 1 },
    },
    location: { lat: 52.37, lon: 4.9, name: 'Amsterdam "A\'dam"' },
    configuredStreams: ['live', 'demo'],
    tags: ['eu', 'edge'],
    outputUrls: { RTMP: 'rtmp://HOST:1935/live/$', HLS: 'http://HOST:8080/hls/$/index.m3u8' },
  };
}

type Expected = Record<string, { type: 'COUNTER' | 'GAUGE'; samples: [Record<string, string>, number][] }>;

/** What the text must hold, written out from the snapshot by hand (not by the renderer's tables). */
function expected(s: StatsSnapshot): Expected {
  const dir = (b: { up: number; down: number }, l: Record<string, string> = {}): [Record<string, string>, number][] => [
    [{ ...l, direction: 'up' }, b.up],
    [{ ...l, direction: 'down' }, b.down],
  ];
  const pk = (p: { sent: number; lost: number; retrans: number }, l: Record<string, string> = {}): [Record<string, string>, number][] => [
    [{ ...l, pkttype: 'sent' }, p.sent],
    [{ ...l, pkttype: 'lost' }, p.lost],
    [{ ...l, pkttype: 'retrans' }, p.retrans],
  ];
  const streams = Object.entries(s.streams);
  const trig = Object.entries(s.triggers);
  return {
    mist_logs: { type: 'COUNTER', samples: [[{}, s.logs]] },
    mist_cpu: { type: 'GAUGE', samples: [[{}, s.vitals.cpuTenths]] },
    mist_mem_total: { type: 'GAUGE', samples: [[{}, s.vitals.memTotalKiB]] },
    mist_mem_used: { type: 'GAUGE', samples: [[{}, s.vitals.memUsedKiB]] },
    mist_shm_total: { type: 'GAUGE', samples: [[{}, s.vitals.shmTotalKiB]] },
    mist_shm_used: { type: 'GAUGE', samples: [[{}, s.vitals.shmUsedKiB]] },
    mist_viewseconds_total: { type: 'COUNTER', samples: [[{}, s.viewSeconds]] },
    mist_sessions_count: {
      type: 'COUNTER',
      samples: [
        [{ sessType: 'viewers' }, s.total.viewers],
        [{ sessType: 'incoming' }, s.total.inputs],
        [{ sessType: 'outgoing' }, s.total.outputs],
        [{ sessType: 'unspecified' }, s.total.unspecified],
      ],
    },
    stat_bw_total: { type: 'COUNTER', samples: dir(s.vitals.nic) },
    mist_bw_total: { type: 'COUNTER', samples: dir(s.bandwidth) },
    mist_bw_other: { type: 'COUNTER', samples: dir(s.other) },
    mist_bw_limit: { type: 'GAUGE', samples: [[{}, s.bandwidthLimit]] },
    mist_packets_total: { type: 'COUNTER', samples: pk(s.packets) },
    mist_outputs: { type: 'GAUGE', samples: Object.entries(s.outputs).map(([o, n]) => [{ output: o }, n]) },
    mist_sessions_total: {
      type: 'GAUGE',
      samples: [
        [{ sessType: 'viewers' }, s.current.viewers],
        [{ sessType: 'incoming' }, s.current.inputs],
        [{ sessType: 'outgoing' }, s.current.outputs],
        [{ sessType: 'unspecified' }, s.current.unspecified],
        [{ sessType: 'cached' }, s.current.cached],
      ],
    },
    mist_sessions: {
      type: 'GAUGE',
      samples: streams.flatMap(([n, f]): [Record<string, string>, number][] => [
        [{ stream: n, sessType: 'viewers' }, f.current.viewers],
        [{ stream: n, sessType: 'incoming' }, f.current.inputs],
        [{ stream: n, sessType: 'outgoing' }, f.current.outputs],
        [{ stream: n, sessType: 'unspecified' }, f.current.unspecified],
      ]),
    },
    mist_viewcount: { type: 'COUNTER', samples: streams.map(([n, f]) => [{ stream: n }, f.total.viewers]) },
    mist_viewseconds: { type: 'COUNTER', samples: streams.map(([n, f]) => [{ stream: n }, f.viewSeconds]) },
    mist_bw: { type: 'COUNTER', samples: streams.flatMap(([n, f]) => dir(f.bytes, { stream: n })) },
    mist_packets: { type: 'COUNTER', samples: streams.flatMap(([n, f]) => pk(f.packets, { stream: n })) },
    mist_trigger_count: { type: 'COUNTER', samples: trig.map(([t, f]) => [{ trigger: t }, f.count]) },
    mist_trigger_time: { type: 'COUNTER', samples: trig.map(([t, f]) => [{ trigger: t }, f.ms]) },
    mist_trigger_fails: { type: 'COUNTER', samples: trig.map(([t, f]) => [{ trigger: t }, f.fails]) },
  };
}

const key = (l: Record<string, string>): string => JSON.stringify(Object.entries(l).sort());

test('prometheusText: every §7.3 family, type, label set and value, read back by an independent parser', () => {
  const s = variedSnapshot();
  const text = prometheusText(s);
  const parsed = parsePrometheus(text);
  const want = expected(s);
  assert.deepEqual(parsed.map((f) => f.name).sort(), Object.keys(want).sort(), 'exactly the §7.3 families');
  for (const f of parsed) {
    const w = want[f.name]!;
    assert.equal(f.type, w.type, `${f.name} type`);
    assert.ok(f.help.length > 10, `${f.name} has help`);
    const got = new Map(f.metrics.map((m) => [key(m.labels ?? {}), Number(m.value)]));
    assert.equal(got.size, f.metrics.length, `${f.name}: no duplicate label sets`);
    const exp = new Map(w.samples.map(([l, v]) => [key(l), v]));
    assert.deepEqual(got, exp, `${f.name} samples`);
  }
  // the escaped trigger name comes back exactly
  const tc = parsed.find((f) => f.name === 'mist_trigger_count')!;
  assert.ok(tc.metrics.some((m) => m.labels?.['trigger'] === 'odd "name" \\ with\nnewline'));
});

test('prometheusText: each line is a comment or `name{labels} value` with exactly one space', () => {
  const text = prometheusText(variedSnapshot());
  assert.ok(text.endsWith('\n'));
  const lines = text.slice(0, -1).split('\n');
  const labelValue = String.raw`"(?:[^"\\\n]|\\[\\"n])*"`;
  const label = String.raw`[a-zA-Z_][a-zA-Z0-9_]*=${labelValue}`;
  const sample = new RegExp(String.raw`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{${label}(?:,${label})*\})? (-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$`);
  const seenFamilies: string[] = [];
  let current = '';
  let samples = 0;
  for (const line of lines) {
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line);
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (help) {
      assert.ok(!seenFamilies.includes(help[1]!), `${help[1]} described once`);
      seenFamilies.push(help[1]!);
      current = help[1]!;
      continue;
    }
    if (type) {
      assert.equal(type[1], current, 'TYPE follows its HELP');
      continue;
    }
    const m = sample.exec(line);
    assert.ok(m, `sample line matches the grammar: ${JSON.stringify(line)}`);
    assert.equal(m[1], current, `${m[1]} is inside its own family block`);
    samples++;
  }
  // 8 unlabelled, sessions_count 4, three direction pairs, packets 3, outputs 3, sessions_total 5,
  // per stream 4 + 1 + 1 + 2 + 3, per trigger 3
  assert.equal(samples, 8 + 4 + 3 * 2 + 3 + 3 + 5 + 2 * 11 + 2 * 3);
});

test('prometheusText: streams, outputs and triggers sorted; empty families left out; label escaping', () => {
  const s = variedSnapshot();
  const text = prometheusText(s);
  const order = (metric: string, label: string): string[] =>
    [...text.matchAll(new RegExp(`^${metric}\\{${label}="((?:[^"\\\\]|\\\\.)*)"`, 'gm'))].map((m) => m[1]!);
  assert.deepEqual(order('mist_outputs', 'output'), ['HLS', 'HTTP-TS', 'RTMP']);
  assert.deepEqual([...new Set(order('mist_bw', 'stream'))], ['demo', 'live+alice']);
  assert.deepEqual(order('mist_trigger_fails', 'trigger'), ['USER_NEW', String.raw`odd \"name\" \\ with\nnewline`]);
  assert.equal(prometheusText(s), text, 'same snapshot, same text');

  const empty = { ...s, streams: {}, triggers: {}, outputs: {} };
  const names = parsePrometheus(prometheusText(empty)).map((f) => f.name);
  for (const gone of ['mist_sessions', 'mist_viewcount', 'mist_bw', 'mist_trigger_count', 'mist_outputs']) assert.ok(!names.includes(gone), gone);
  assert.ok(names.includes('mist_sessions_total') && names.includes('stat_bw_total'));

  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
});

test('prometheusJson: MistServer\'s §7.3 shape, positional arrays from the snapshot', () => {
  const s = variedSnapshot();
  const j = JSON.parse(JSON.stringify(prometheusJson(s)));
  assert.deepEqual(j, {
    cpu: 437,
    mem_total: 16_318_412,
    mem_used: 4_211_720,
    shm_total: 8_159_204,
    shm_used: 1024,
    logs: 812,
    curr: [12, 2, 1, 3, 40],
    tot: [930, 4, 5, 6],
    st: [123_456_789_012, 987_654_321],
    bw: [5_000_001, 900_000_002],
    pkts: [1001, 7, 9],
    bwlimit: 134_217_728,
    triggers: { USER_NEW: { count: 930, ms: 1200, fails: 3 }, 'odd "name" \\ with\nnewline': { count: 2, ms: 15, fails: 1 } },
    loc: { lat: 52.37, lon: 4.9, name: 'Amsterdam "A\'dam"' },
    obw: [11, 1_000_003],
    streams: {
      demo: { tot: [30, 1, 1], bw: [1_000_001, 100_000_002], curr: [2, 1, 0, 1], pkts: [1, 1, 1], rep: true },
      'live+alice': { tot: [900, 3, 4], bw: [4_000_000, 800_000_000], curr: [10, 1, 1, 2], pkts: [1000, 6, 8] },
    },
    output_counts: { HLS: 10, 'HTTP-TS': 0, RTMP: 2 },
    conf_streams: ['live', 'demo'],
    tags: ['eu', 'edge'],
    outputs: { HLS: 'http://HOST:8080/hls/$/index.m3u8', RTMP: 'rtmp://HOST:1935/live/$' },
  });
  assert.ok(!('rep' in j.streams['live+alice']), 'rep only on replicated streams');
});

test('the Grafana dashboard: importable shape, and every expr reads only metrics prometheusText emits', () => {
  const emitted = new Set(parsePrometheus(prometheusText(variedSnapshot())).map((f) => f.name));
  checkDashboard(path.join(repoRoot, 'dashboards/grafana-haze.json'), emitted, ['mist_cpu', 'mist_mem_used', 'mist_mem_total', 'stat_bw_total', 'mist_sessions_total', 'mist_sessions', 'mist_bw', 'mist_outputs', 'mist_trigger_count', 'mist_trigger_fails', 'mist_trigger_time']);
  // the parser itself: functions, by-clauses, label matchers and ranges are not metric names
  assert.deepEqual(promqlMetricNames('sum by (stream) (rate(mist_bw{instance=~"$instance",x="rate(y)"}[1m])) * 8 / 1e3'), ['mist_bw']);
});
