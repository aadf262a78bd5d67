// Overview: the server's vitals as live charts (CPU, memory, bandwidth, viewers), the recent log
// from the WebSocket feed, and warnings: unhealthy streams, failing pushes, error log lines
// (a failing trigger handler logs one).

import { Feed, type FeedMessage } from '../api.js';
import { lineChart } from '../chart.js';
import { every, fill, fmtRate, fmtTime, h } from '../dom.js';
import type { Page } from '../page.js';

const TICK_MS = 2000;
const HISTORY = 150; // 5 minutes of ticks
const LOG_LINES = 60;
const WARN_KINDS = new Set(['WARN', 'ERROR', 'FAIL', 'CRIT']);
const WARN_WINDOW_S = 15 * 60;

type LogLine = [number, string, string, string?];

interface PushRow {
  id: number;
  stream: string;
  target: string;
  status: { state?: string; lastError?: string; reconnects?: number };
}

export const overviewPage: Page = (root, ctx) => {
  const cpu: (number | null)[] = [];
  const mem: (number | null)[] = [];
  const tiles = h('div', { class: 'tiles', 'aria-label': 'Server vitals' });
  const charts = h('div', { class: 'charts' });
  const warnings = h('section', { class: 'card', 'aria-labelledby': 'warn-h' });
  const logList = h('ol', { class: 'log', 'aria-label': 'Recent log lines' });
  const logs: LogLine[] = [];
  let streamsState: Record<string, unknown[]> = {};
  let pushes: PushRow[] = [];

  root.append(h('h1', {}, 'Overview'), tiles, charts, warnings, h('section', { class: 'card' }, h('h2', {}, 'Recent log'), logList));

  const drawWarnings = (): void => {
    const now = Date.now() / 1000;
    const items: Node[] = [];
    for (const [name, row] of Object.entries(streamsState)) {
      const status = String(row[0] ?? '');
      if (status !== 'Online') items.push(h('li', {}, h('a', { href: `#/streams/${encodeURIComponent(name)}` }, name), `: ${status || 'not online'}`));
    }
    for (const p of pushes) {
      if (p.status.state === 'reconnecting' || p.status.lastError) items.push(h('li', {}, `Push ${p.id} of ${p.stream} to ${p.target}: ${p.status.state ?? ''}${p.status.lastError ? ` (${p.status.lastError})` : ''}`));
    }
    for (const l of logs.filter((l) => WARN_KINDS.has(l[1]) && now - l[0] < WARN_WINDOW_S).slice(-10).reverse()) {
      items.push(h('li', { class: `kind-${l[1]}` }, h('time', {}, fmtTime(l[0])), ` ${l[1]}: ${l[2]}`));
    }
    fill(warnings, h('h2', { id: 'warn-h' }, `Warnings (${items.length})`), items.length ? h('ul', { class: 'warnings' }, items) : h('p', { class: 'muted' }, 'Nothing needs attention.'));
  };

  const drawLog = (): void => {
    fill(
      logList,
      logs
        .slice(-LOG_LINES)
        .reverse()
        .map((l) => h('li', { class: `kind-${l[1]}` }, h('time', {}, fmtTime(l[0])), h('span', { class: 'kind' }, l[1]), l[3] ? h('span', { class: 'stream' }, l[3]) : null, l[2])),
    );
  };

  const onFeed = (m: FeedMessage): void => {
    if (m[0] === 'log') {
      logs.push(m[1] as LogLine);
      if (logs.length > 500) logs.splice(0, logs.length - 500);
      drawLog();
      drawWarnings();
    }
  };
  const feed = new Feed(ctx.api, () => (logs.length ? `logs=since:${logs[logs.length - 1]![0] + 1}` : `logs=${LOG_LINES}`), onFeed);

  const stop = every(TICK_MS, async () => {
    const a = await ctx.api.call({
      minimal: 1,
      capabilities: true,
      totals: { start: -HISTORY * (TICK_MS / 1000), fields: ['clients', 'inputs', 'outputs', 'downbps', 'upbps'] },
      active_streams: { fields: ['status', 'viewers', 'inputs'] },
      push_list: true,
    });
    const caps = (a['capabilities'] ?? {}) as { cpu_use?: number; load?: { mem?: number } };
    cpu.push(typeof caps.cpu_use === 'number' ? caps.cpu_use / 10 : null);
    mem.push(typeof caps.load?.mem === 'number' ? caps.load.mem : null);
    if (cpu.length > HISTORY) cpu.shift();
    if (mem.length > HISTORY) mem.shift();
    const totals = (a['totals'] ?? { data: [] }) as { data?: number[][] };
    const rows = totals.data ?? [];
    const col = (i: number): number[] => rows.map((r) => r[i] ?? 0);
    const viewers = col(0);
    const out = col(3);
    const inn = col(4);
    const active = (a['active_streams'] ?? {}) as { data?: Record<string, unknown[]> };
    streamsState = active.data ?? {};
    pushes = ((a['push_list'] ?? []) as unknown[][]).map((p) => ({ id: Number(p[0]), stream: String(p[1]), target: String(p[2]), status: (p[5] ?? {}) as PushRow['status'] }));
    const last = (xs: (number | null)[]): number | null => (xs.length ? (xs[xs.length - 1] ?? null) : null);
    const tile = (label: string, value: string): HTMLElement => h('div', { class: 'tile card' }, h('div', { class: 'tile-value' }, value), h('div', { class: 'tile-label' }, label));
    fill(
      tiles,
      tile('CPU', last(cpu) === null ? '–' : `${last(cpu)!.toFixed(0)} %`),
      tile('Memory', last(mem) === null ? '–' : `${last(mem)} %`),
      tile('Out (to viewers)', fmtRate(last(out))),
      tile('In (from publishers)', fmtRate(last(inn))),
      tile('Viewers', String(last(viewers) ?? 0)),
      tile('Active streams', String(Object.keys(streamsState).length)),
    );
    fill(
      charts,
      lineChart('CPU', [{ label: 'used', values: cpu, cls: 's1' }], (v) => `${v.toFixed(0)} %`, 100),
      lineChart('Memory', [{ label: 'used', values: mem, cls: 's1' }], (v) => `${v.toFixed(0)} %`, 100),
      lineChart(
        'Bandwidth',
        [
          { label: 'out', values: out, cls: 's1' },
          { label: 'in', values: inn, cls: 's2' },
        ],
        fmtRate,
      ),
      lineChart('Viewers', [{ label: 'now', values: viewers, cls: 's1' }], (v) => String(Math.round(v))),
    );
    drawWarnings();
  });

  return () => {
    stop();
    feed.close();
  };
};
