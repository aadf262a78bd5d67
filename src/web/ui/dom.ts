// Small DOM helpers for the management UI: element creation, formatting of figures, and the few
// widgets every page uses (copyable fields, tables, messages). No framework: pages rebuild the
// parts that changed, which at a refresh every few seconds costs nothing.

type Child = Node | string | number | null | undefined | false | readonly Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** `h('button', {class: 'x', onclick: fn}, 'Save')`: an element with attributes, handlers and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else if (k === 'checked' && el instanceof HTMLInputElement) el.checked = Boolean(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (Array.isArray(c)) {
      append(el, c);
      continue;
    }
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'object' ? (c as Node) : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let fieldIds = 0;
/** A labelled form field: `<label for>` + the control (an id is made when it has none). */
export function field(label: string, control: HTMLElement, help?: string): HTMLElement {
  if (!control.id) control.id = `f${++fieldIds}`;
  const helpEl = help ? h('small', { class: 'help', id: `${control.id}-help` }, help) : null;
  if (helpEl) control.setAttribute('aria-describedby', helpEl.id);
  if (control instanceof HTMLInputElement && control.type === 'checkbox') return h('div', { class: 'field check' }, control, h('label', { for: control.id }, label), helpEl);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, helpEl);
}

/** A table with a header row; `rows` empty shows `empty` in one cell. */
export function table(headers: string[], rows: readonly (readonly Child[])[], empty = 'Nothing here yet.', label?: string): HTMLTableElement {
  return h(
    'table',
    { 'aria-label': label },
    h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))) : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, empty))),
  );
}

/** A read-only text with a Copy button (URLs, embed code). */
export function copyable(label: string, value: string, multiline = false): HTMLElement {
  const box = multiline ? h('textarea', { readonly: true, rows: 4, 'aria-label': label }) : h('input', { readonly: true, value, 'aria-label': label });
  if (box instanceof HTMLTextAreaElement) box.value = value;
  const btn = h('button', { type: 'button', class: 'small', 'aria-label': `Copy ${label}` }, 'Copy');
  btn.addEventListener('click', () => {
    box.select();
    const done = (): void => {
      btn.textContent = 'Copied';
      setTimeout(() => (btn.textContent = 'Copy'), 1500);
    };
    // the Clipboard API needs a secure context; plain http from another host falls back
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(value).then(done, () => document.execCommand('copy') && done());
    else if (document.execCommand('copy')) done();
  });
  return h('div', { class: 'copyable' }, h('span', { class: 'copy-label' }, label), box, btn);
}

/** A status message region (errors in red); screen readers hear it. */
export function messageBox(): { el: HTMLElement; show(text: string, kind?: 'error' | 'ok' | 'info'): void; clear(): void } {
  const el = h('div', { class: 'message', role: 'status', 'aria-live': 'polite', hidden: true });
  return {
    el,
    show(text, kind = 'error') {
      el.textContent = text;
      el.className = `message ${kind}`;
      el.hidden = false;
    },
    clear() {
      el.hidden = true;
      el.textContent = '';
    },
  };
}

export function badge(text: string, kind: 'ok' | 'warn' | 'bad' | 'idle'): HTMLElement {
  return h('span', { class: `badge ${kind}` }, text);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  let i = 0;
  let v = n;
  while (v >= 1024 && i < UNITS.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${UNITS[i]}`;
}

/** Bytes per second as bits per second. */
export function fmtRate(bytesPerSec: number | null | undefined): string {
  if (bytesPerSec === null || bytesPerSec === undefined || !Number.isFinite(bytesPerSec)) return '–';
  const bits = bytesPerSec * 8;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gbit/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(2)} Mbit/s`;
  if (bits >= 1e3) return `${(bits / 1e3).toFixed(0)} kbit/s`;
  return `${Math.round(bits)} bit/s`;
}

export function fmtDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  return hh ? `${hh}h ${String(mm).padStart(2, '0')}m` : mm ? `${mm}m ${String(ss).padStart(2, '0')}s` : `${ss}s`;
}

export function fmtTime(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Runs `fn` now and every `ms` until the returned stop is called (a page's refresh). */
export function every(ms: number, fn: () => unknown): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async (): Promise<void> => {
    try {
      await fn();
    } catch {
      // a failed refresh shows in the banner (api.ts); the next tick tries again
    }
    if (!stopped) timer = setTimeout(() => void tick(), ms);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Offers `text` as a file download. */
export function download(name: string, text: string, type = 'application/json'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
