// Capacity planner: how many viewers of a given bit rate this server can take, from its own
// measured cost per viewer and per Mbit/s (`capacity`), following the seeds' hardware
// calculator (CPU per connection, memory per stream Mbit/s and per viewer, bandwidth) with this
// machine's figures in place of fixed ones.

import { field, fill, fmtBytes, h } from '../dom.js';
import type { Page } from '../page.js';

interface Measured {
  cpu?: number;
  mem?: number;
  /** per_viewer: the Mbit/s per viewer its cpu was measured at */
  mbit?: number;
  source: 'measured' | 'default';
}

interface Capacity {
  cores: number;
  mem_total: number;
  mem_available: number;
  nic_mbit: number | null;
  per_viewer: Measured;
  per_mbit_out: Measured;
  per_stream_mbit: Measured;
  sample: { seconds: number; viewers_avg: number; inputs_avg: number; out_mbit_avg: number; cpu_avg: number };
}

export interface Plan {
  byCpu: number;
  byMemory: number;
  byBandwidth: number | null;
  viewers: number;
  limit: 'CPU' | 'memory' | 'bandwidth';
}

/** The largest viewer count each resource allows, at `headroom` (0-1) of it. */
export function plan(c: Capacity, mbit: number, streams: number, headroom: number): Plan {
  // per_viewer.cpu was measured at per_viewer.mbit: a viewer of another rate costs the difference more or less
  const cpuPerViewer = Math.max((c.per_viewer.cpu ?? 0) / 10, (c.per_viewer.cpu ?? 0) + (mbit - (c.per_viewer.mbit ?? 0)) * (c.per_mbit_out.cpu ?? 0));
  const byCpu = cpuPerViewer > 0 ? Math.floor((c.cores * headroom) / cpuPerViewer) : Infinity;
  const buffers = streams * mbit * (c.per_stream_mbit.mem ?? 0);
  const byMemory = (c.per_viewer.mem ?? 0) > 0 ? Math.max(0, Math.floor((c.mem_available * headroom - buffers) / c.per_viewer.mem!)) : Infinity;
  const byBandwidth = c.nic_mbit ? Math.max(0, Math.floor((c.nic_mbit * headroom) / mbit) - streams) : null;
  const options: [Plan['limit'], number][] = [
    ['CPU', byCpu],
    ['memory', byMemory],
  ];
  if (byBandwidth !== null) options.push(['bandwidth', byBandwidth]);
  const [limit, viewers] = options.reduce((a, b) => (b[1] < a[1] ? b : a));
  return { byCpu, byMemory, byBandwidth, viewers, limit };
}

const num = (n: number): string => (Number.isFinite(n) ? n.toLocaleString() : 'no limit measured');

export const capacityPage: Page = (root, ctx) => {
  const bitrate = h('input', { type: 'number', min: 0.05, step: 0.05, value: 2, name: 'bitrate' });
  const streams = h('input', { type: 'number', min: 1, step: 1, value: 1, name: 'streams' });
  const headroom = h('input', { type: 'number', min: 10, max: 100, step: 5, value: 80, name: 'headroom' });
  const result = h('section', { class: 'card', 'aria-live': 'polite', 'aria-labelledby': 'plan-h' });
  const basis = h('section', { class: 'card', 'aria-labelledby': 'basis-h' });
  root.append(
    h('h1', {}, 'Capacity planner'),
    h('form', { class: 'card grid3', 'aria-label': 'What to plan for', onsubmit: (e: Event) => e.preventDefault() }, field('Stream bit rate (Mbit/s)', bitrate), field('Incoming streams', streams), field('Use at most (% of each resource)', headroom)),
    result,
    basis,
  );
  let cap: Capacity | undefined;
  const draw = (): void => {
    if (!cap) return;
    const p = plan(cap, Math.max(0.01, Number(bitrate.value) || 0), Math.max(1, Math.floor(Number(streams.value) || 1)), Math.min(1, Math.max(0.1, (Number(headroom.value) || 80) / 100)));
    fill(
      result,
      h('h2', { id: 'plan-h' }, 'Viewers this server can take'),
      h('p', { class: 'big', 'data-viewers': String(p.viewers) }, num(p.viewers), h('small', {}, ` viewers, limited by ${p.limit}`)),
      h('ul', {}, h('li', {}, `CPU: ${num(p.byCpu)}`), h('li', {}, `Memory: ${num(p.byMemory)}`), h('li', {}, `Bandwidth: ${p.byBandwidth === null ? 'link speed unknown' : num(p.byBandwidth)}`)),
    );
    const src = (m: Measured): string => (m.source === 'measured' ? 'measured here' : 'default (no viewers measured yet)');
    fill(
      basis,
      h('h2', { id: 'basis-h' }, 'Based on'),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'CPU per viewer'),
        h('dd', {}, `${((cap.per_viewer.cpu ?? 0) * 100).toFixed(3)} % of a core at ${(cap.per_viewer.mbit ?? 0).toFixed(2)} Mbit/s, ${src(cap.per_viewer)}`),
        h('dt', {}, 'CPU per Mbit/s sent'),
        h('dd', {}, `${((cap.per_mbit_out.cpu ?? 0) * 100).toFixed(3)} % of a core, ${src(cap.per_mbit_out)}`),
        h('dt', {}, 'Memory per viewer'),
        h('dd', {}, `${fmtBytes(cap.per_viewer.mem ?? 0)}, ${src(cap.per_viewer)}`),
        h('dt', {}, 'Buffer memory per stream Mbit/s'),
        h('dd', {}, `${fmtBytes(cap.per_stream_mbit.mem ?? 0)}, ${src(cap.per_stream_mbit)}`),
        h('dt', {}, 'Machine'),
        h('dd', {}, `${cap.cores} cores, ${fmtBytes(cap.mem_available)} of ${fmtBytes(cap.mem_total)} memory available, network ${cap.nic_mbit ? `${cap.nic_mbit} Mbit/s` : 'speed unknown'}`),
        h('dt', {}, 'Sample'),
        h('dd', {}, `${Math.round(cap.sample.seconds)} s: on average ${cap.sample.viewers_avg.toFixed(1)} viewers, ${cap.sample.inputs_avg.toFixed(1)} inputs, ${cap.sample.out_mbit_avg.toFixed(2)} Mbit/s out, ${(cap.sample.cpu_avg * 100).toFixed(1)} % of a core`),
      ),
    );
  };
  for (const el of [bitrate, streams, headroom]) el.addEventListener('input', draw);
  void ctx.api.call({ capacity: true, minimal: 1 }).then((a) => {
    if (a.error || !a['capacity']) {
      fill(result, h('p', { class: 'message error' }, a.error ?? 'The server gave no capacity figures.'));
      return;
    }
    cap = a['capacity'] as Capacity;
    draw();
  });
};
