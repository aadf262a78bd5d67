// A line chart of recent values as inline SVG: one or two series over the same time span, with
// the latest value in the legend (and in the accessible label, for screen readers).

const NS = 'http://www.w3.org/2000/svg';
const W = 320;
const H = 90;

export interface Series {
  label: string;
  /** newest last; null = no sample */
  values: (number | null)[];
  cls: string;
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A chart card: title, legend with the latest values (formatted by `fmt`), and the lines. */
export function lineChart(title: string, series: Series[], fmt: (v: number) => string, fixedMax?: number): HTMLElement {
  const card = document.createElement('figure');
  card.className = 'chart card';
  const len = Math.max(2, ...series.map((s) => s.values.length));
  const max = fixedMax ?? Math.max(1e-9, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const plot = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
  plot.appendChild(svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'axis' }));
  for (const s of series) {
    let d = '';
    s.values.forEach((v, i) => {
      if (v === null) return;
      const x = ((i + len - s.values.length) / (len - 1)) * W;
      const y = H - 2 - (Math.min(v, max) / max) * (H - 6);
      d += `${d && s.values[i - 1] !== null ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
    });
    plot.appendChild(svg('path', { d, class: `line ${s.cls}` }));
  }
  const latest = series.map((s) => {
    const v = [...s.values].reverse().find((x) => x !== null);
    return `${s.label} ${v === undefined || v === null ? '–' : fmt(v)}`;
  });
  const caption = document.createElement('figcaption');
  const strong = document.createElement('strong');
  strong.textContent = title;
  caption.appendChild(strong);
  series.forEach((s, i) => {
    const span = document.createElement('span');
    span.className = `legend ${s.cls}`;
    span.textContent = latest[i]!;
    caption.appendChild(span);
  });
  card.setAttribute('role', 'img');
  card.setAttribute('aria-label', `${title}: ${latest.join(', ')}`);
  card.append(caption, plot);
  return card;
}
