// Streams: the list (status, viewers, bit rates, tracks; wildcard instances under their base),
// one stream's page (preview, embed code, every play and publish URL), and the form that
// creates or edits a stream, whose options come from the input the source names
// (`capabilities: SOURCE` answers the input and the options that apply).

import type { Answer } from '../api.js';
import { badge, copyable, every, field, fill, fmtRate, h, messageBox, table } from '../dom.js';
import type { Page, PageContext } from '../page.js';
import { streamUrls, type ProtocolEntry } from '../urls.js';

const TICK_MS = 3000;
const ACTIVE_FIELDS = ['status', 'viewers', 'inputs', 'tracks'] as const;

interface StreamConfig {
  name: string;
  source: string;
  online?: number;
  error?: string;
  [k: string]: unknown;
}

interface Snapshot {
  streams: Record<string, StreamConfig>;
  protocols: ProtocolEntry[];
  /** active stream -> [status, viewers, inputs, tracks] */
  active: Record<string, unknown[]>;
  /** stream -> bytes/s in (publishers) and out (viewers) */
  rates: Map<string, { in: number; out: number }>;
}

/** The configured streams, their live state and bit rates (one request). */
async function snapshot(ctx: PageContext): Promise<Snapshot> {
  const a = await ctx.api.call({
    active_streams: { fields: [...ACTIVE_FIELDS] },
    clients: { fields: ['stream', 'protocol', 'downbps', 'upbps'] },
  });
  const rates = new Map<string, { in: number; out: number }>();
  for (const row of ((a['clients'] as Answer | undefined)?.['data'] ?? []) as [string, string, number, number][]) {
    const r = rates.get(row[0]) ?? { in: 0, out: 0 };
    if (row[1].startsWith('INPUT')) r.in += row[3];
    else r.out += row[2];
    rates.set(row[0], r);
  }
  return {
    streams: (a['streams'] ?? {}) as Record<string, StreamConfig>,
    protocols: ((a['config'] as Answer | undefined)?.['protocols'] ?? []) as ProtocolEntry[],
    active: ((a['active_streams'] as Answer | undefined)?.['data'] ?? {}) as Record<string, unknown[]>,
    rates,
  };
}

const baseOf = (name: string): string => name.split('+')[0]!;

function statusBadge(active: unknown[] | undefined, cfg: StreamConfig | undefined): HTMLElement {
  if (active) {
    const s = String(active[0]);
    return badge(s, s === 'Online' ? 'ok' : 'warn');
  }
  if (!cfg) return badge('Offline', 'idle');
  if (cfg.online === 1) return badge('Online', 'ok');
  if (cfg.online === 2) return badge(cfg.error ?? 'Available', 'idle');
  return badge(cfg.error ? cfg.error.replace(/^Stream offline: /, 'Offline: ') : 'Offline', cfg.error && !/offline/i.test(cfg.error) ? 'bad' : 'idle');
}

export const streamsPage: Page = (root, ctx) => {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  root.append(h('div', { class: 'title-row' }, h('h1', {}, 'Streams'), h('a', { class: 'button primary', href: '#/streams/new' }, 'New stream')), body);
  return every(TICK_MS, async () => {
    const s = await snapshot(ctx);
    const rows: (Node | string)[][] = [];
    const row = (name: string, child: boolean): (Node | string)[] => {
      const act = s.active[name];
      const cfg = s.streams[baseOf(name)];
      const r = s.rates.get(name);
      return [
        h('a', { href: `#/streams/${encodeURIComponent(name)}`, class: child ? 'instance' : '' }, child ? `↳ ${name}` : name),
        statusBadge(act, child ? undefined : cfg),
        String(act?.[1] ?? 0),
        String(act?.[2] ?? 0),
        r ? fmtRate(r.in) : '–',
        r ? fmtRate(r.out) : '–',
        String(act?.[3] ?? '–'),
        child ? '' : h('code', {}, cfg?.source ?? ''),
      ];
    };
    const names = Object.keys(s.streams).sort();
    for (const name of names) {
      rows.push(row(name, false));
      for (const inst of Object.keys(s.active).filter((a) => a !== name && baseOf(a) === name).sort()) rows.push(row(inst, true));
    }
    // active streams without a configured base (should not happen; shown rather than hidden)
    for (const a of Object.keys(s.active).filter((a) => !s.streams[baseOf(a)])) rows.push(row(a, false));
    fill(body, table(['Stream', 'Status', 'Viewers', 'Inputs', 'In', 'Out', 'Tracks', 'Source'], rows, 'No streams yet: create one.', 'Streams'));
  });
};

export const streamPage: Page = (root, ctx) => {
  const name = ctx.params[0]!;
  const base = baseOf(name);
  const head = h('div', { class: 'title-row' }, h('h1', {}, name));
  const facts = h('dl', { class: 'facts' });
  const msg = messageBox();
  const preview = h('section', { class: 'card preview', 'aria-labelledby': 'preview-h' });
  const urls = h('section', { class: 'card', 'aria-labelledby': 'urls-h' });
  root.append(head, msg.el, h('div', { class: 'columns' }, h('section', { class: 'card' }, h('h2', {}, 'Status'), facts), preview), urls);
  let drawnUrls = '';
  let live: boolean | undefined;
  const stop = every(TICK_MS, async () => {
    const [s, caps] = await Promise.all([snapshot(ctx), ctx.capabilities()]);
    const cfg = s.streams[base];
    const act = s.active[name];
    if (!cfg && !act) {
      fill(facts, h('p', {}, 'This stream is not configured and not active.'));
      return;
    }
    const r = s.rates.get(name);
    fill(
      head,
      h('h1', {}, name),
      statusBadge(act, name === base ? cfg : undefined),
      h('span', { class: 'spacer' }),
      cfg ? h('a', { class: 'button', href: `#/streams/${encodeURIComponent(base)}/edit` }, name === base ? 'Edit' : `Edit ${base}`) : null,
      cfg && name === base
        ? h('button', {
            type: 'button',
            class: 'danger',
            onclick: () => {
              if (!confirm(`Delete the stream ${name}? Its viewers are disconnected.`)) return;
              void ctx.api.call({ deletestream: name, minimal: 1 }).then((a) => (a.error ? msg.show(a.error) : ctx.go('#/streams')));
            },
          }, 'Delete')
        : null,
    );
    const instances = Object.keys(s.active).filter((a) => a !== name && baseOf(a) === name);
    fill(
      facts,
      h('dt', {}, 'Source'),
      h('dd', {}, h('code', {}, cfg?.source ?? '')),
      h('dt', {}, 'Viewers'),
      h('dd', {}, String(act?.[1] ?? 0)),
      h('dt', {}, 'Inputs'),
      h('dd', {}, String(act?.[2] ?? 0)),
      h('dt', {}, 'Tracks'),
      h('dd', {}, String(act?.[3] ?? '–')),
      h('dt', {}, 'Bit rate in / out'),
      h('dd', {}, r ? `${fmtRate(r.in)} / ${fmtRate(r.out)}` : '–'),
      instances.length ? [h('dt', {}, 'Live instances'), h('dd', {}, instances.map((i) => h('a', { href: `#/streams/${encodeURIComponent(i)}`, class: 'pill' }, i)))] : null,
    );
    const isLive = (cfg?.source ?? '').startsWith('push://');
    const u = streamUrls(name, isLive, s.protocols, ((caps['listening'] ?? {}) as Record<string, number>), location.hostname);
    const key = JSON.stringify(u);
    if (key !== drawnUrls) {
      drawnUrls = key;
      fill(
        urls,
        h('h2', { id: 'urls-h' }, 'Play and publish'),
        u.embed ? copyable('Embed code', u.embed, true) : null,
        h('h3', {}, 'Play'),
        u.play.map((x) => copyable(x.label, x.url)),
        u.publish.length ? [h('h3', {}, 'Publish'), u.publish.map((x) => copyable(x.label, x.url)), name === base ? h('p', { class: 'muted' }, `A publisher may also use ${name}+ANYTHING: each such name is a stream of its own, listed under ${name}.`) : null] : null,
      );
    }
    // the preview: the embeddable player's own page, from the HTTP port (reloaded when the stream comes online)
    const nowLive = Boolean(act) || cfg?.online === 1 || cfg?.online === 2;
    if (nowLive !== live) {
      live = nowLive;
      fill(
        preview,
        h('h2', { id: 'preview-h' }, 'Preview'),
        u.page && nowLive ? h('iframe', { src: `${u.page}?muted=1`, title: `Preview of ${name}`, allow: 'autoplay; fullscreen', loading: 'lazy' }) : h('p', { class: 'muted' }, u.page ? 'The stream is offline; the preview starts when it is online.' : 'No HTTP port: no preview.'),
      );
    }
  });
  return stop;
};

/** One control per option type; `read()` gives the value to store (undefined = leave unset). */
function optionControl(key: string, spec: OptionSpec, value: unknown): { el: HTMLElement; read(): unknown } {
  const help = `${spec.help}${spec.default !== undefined && spec.type !== 'json' ? ` Default: ${JSON.stringify(spec.default)}${spec.unit ? ` ${spec.unit}` : ''}.` : ''}`;
  if (spec.type === 'bool') {
    const box = h('input', { type: 'checkbox', name: key, checked: value === true || value === 1 || value === '1' });
    return { el: field(spec.name, box, help), read: () => (box.checked ? true : spec.default === true ? false : undefined) };
  }
  if (spec.type === 'uint') {
    const inp = h('input', { type: 'number', min: 0, step: 1, name: key, value: typeof value === 'number' ? value : '', placeholder: spec.default !== undefined ? String(spec.default) : '' });
    return { el: field(`${spec.name}${spec.unit ? ` (${spec.unit})` : ''}`, inp, help), read: () => (inp.value === '' ? undefined : Number(inp.value)) };
  }
  if (spec.type === 'list') {
    const inp = h('input', { name: key, value: Array.isArray(value) ? value.join(', ') : '', placeholder: 'comma separated' });
    return {
      el: field(spec.name, inp, help),
      read: () => {
        const list = inp.value.split(',').map((x) => x.trim()).filter(Boolean);
        return list.length ? list : undefined;
      },
    };
  }
  if (spec.type === 'json') {
    const ta = h('textarea', { name: key, rows: 4, spellcheck: false });
    ta.value = value === undefined || (Array.isArray(value) && value.length === 0) ? '' : JSON.stringify(value, null, 2);
    return {
      el: field(`${spec.name} (JSON)`, ta, help),
      read: () => {
        if (ta.value.trim() === '') return undefined;
        try {
          return JSON.parse(ta.value) as unknown;
        } catch (err) {
          throw new Error(`${spec.name}: not valid JSON (${err instanceof Error ? err.message : String(err)})`);
        }
      },
    };
  }
  const inp = h('input', { name: key, value: typeof value === 'string' ? value : '' });
  return { el: field(spec.name, inp, help), read: () => (inp.value.trim() === '' ? undefined : inp.value.trim()) };
}

interface OptionSpec {
  name: string;
  help: string;
  type: 'uint' | 'str' | 'bool' | 'list' | 'json';
  default?: unknown;
  unit?: string;
}

export const streamEditPage: Page = (root, ctx) => {
  const editing = ctx.params[0];
  const msg = messageBox();
  const nameIn = h('input', { name: 'name', required: true, pattern: '[A-Za-z0-9_.\\-]{1,100}', autocomplete: 'off', readonly: editing !== undefined, value: editing ?? '' });
  const sourceIn = h('input', { name: 'source', required: true, autocomplete: 'off', placeholder: 'push://  or  /path/file.mp4  or  rtsp://camera/stream' });
  const sourceInfo = h('p', { class: 'source-info', id: 'source-info', 'aria-live': 'polite' });
  sourceIn.setAttribute('aria-describedby', 'source-info');
  const optionsBox = h('fieldset', { class: 'options' }, h('legend', {}, 'Options'), h('p', { class: 'muted' }, 'The options that apply show once the source is known.'));
  let controls = new Map<string, { read(): unknown }>();
  let optionsOf = ''; // the input whose options are drawn (kept, with what was typed, while it stays)
  let current: StreamConfig = { name: editing ?? '', source: '' };
  let sourceOk = false;
  const form = h(
    'form',
    { class: 'card stream-form', 'aria-label': editing ? `Edit stream ${editing}` : 'New stream' },
    field('Stream name', nameIn, 'Letters, digits, _ . - (publishers may add +ANYTHING for a stream of their own).'),
    field('Source', sourceIn, 'push:// (optionally push://ADDRESS to accept only from there) for live publishing; a file or folder path for VoD; a URL to pull.'),
    sourceInfo,
    optionsBox,
    msg.el,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, editing ? 'Save' : 'Create stream'), h('a', { class: 'button', href: editing ? `#/streams/${encodeURIComponent(editing)}` : '#/streams' }, 'Cancel')),
  );
  root.append(h('h1', {}, editing ? `Edit ${editing}` : 'New stream'), form);

  const drawOptions = (optional: Record<string, OptionSpec>): void => {
    controls = new Map();
    const els: HTMLElement[] = [];
    for (const [key, spec] of Object.entries(optional)) {
      const c = optionControl(key, spec, current[key]);
      controls.set(key, c);
      els.push(c.el);
    }
    fill(optionsBox, h('legend', {}, 'Options'), els.length ? els : h('p', { class: 'muted' }, 'This input has no options.'));
  };

  let seq = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = async (): Promise<boolean> => {
    const source = sourceIn.value.trim();
    const mine = ++seq;
    if (!source) {
      sourceOk = false;
      sourceInfo.textContent = '';
      return false;
    }
    const a = await ctx.api.call({ capabilities: source, minimal: 1 });
    if (mine !== seq) return sourceOk;
    const capa = (a['capabilities'] ?? {}) as { name?: string; desc?: string; error?: string; optional?: Record<string, OptionSpec> };
    sourceOk = !capa.error && typeof capa.name === 'string';
    sourceInfo.className = `source-info ${sourceOk ? 'ok' : 'error'}`;
    sourceInfo.textContent = sourceOk ? `Input: ${capa.name} (${capa.desc ?? ''})` : (capa.error ?? a.error ?? 'This source is not accepted.');
    sourceIn.setAttribute('aria-invalid', String(!sourceOk));
    if (sourceOk && capa.name !== optionsOf) {
      optionsOf = capa.name!;
      drawOptions(capa.optional ?? {});
    }
    return sourceOk;
  };
  sourceIn.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => void check().catch(() => undefined), 350);
  });

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    msg.clear();
    void (async () => {
      if (!(await check())) {
        msg.show('Fix the source first: no input accepts it.');
        sourceIn.focus();
        return;
      }
      const name = nameIn.value.trim();
      // options this form does not show (set by scripts, x-LSP-*) are kept
      const cfg: Record<string, unknown> = { ...current, name, source: sourceIn.value.trim() };
      delete cfg['online'];
      delete cfg['error'];
      try {
        for (const [key, c] of controls) {
          const v = c.read();
          if (v === undefined) delete cfg[key];
          else cfg[key] = v;
        }
      } catch (err) {
        msg.show(err instanceof Error ? err.message : String(err));
        return;
      }
      const a = await ctx.api.call({ addstream: { [name]: cfg }, minimal: 1 });
      if (a.error) msg.show(a.error);
      else ctx.go(`#/streams/${encodeURIComponent(name)}`);
    })().catch((err: unknown) => msg.show(String(err)));
  });

  if (editing) {
    void ctx.api.call({}).then((a) => {
      const cfg = ((a['streams'] ?? {}) as Record<string, StreamConfig>)[editing];
      if (!cfg) {
        msg.show(`No stream ${editing} is configured.`);
        return;
      }
      current = cfg;
      sourceIn.value = cfg.source;
      void check();
    });
  } else nameIn.focus();
};
