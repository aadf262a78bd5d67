// Pushes and recordings: running pushes (status, stop), starting one, the automatic push rules
// (every matching stream is pushed or recorded when it goes live), and the recordings on disk.

import type { Answer, ApiRequest } from '../api.js';
import { badge, every, field, fill, fmtBytes, fmtDuration, fmtTime, h, messageBox, table } from '../dom.js';
import type { Page } from '../page.js';

const TICK_MS = 3000;

interface PushStatus {
  state?: string;
  bytes?: number;
  activeSeconds?: number;
  lastError?: string;
  reconnects?: number;
  files?: string[];
}

interface Recording {
  path: string;
  name: string;
  stream: string | null;
  size: number;
  modified: number;
  duration_ms: number | null;
  growing: boolean;
}

/** MistServer's condition operators (`[variable, operator, value]`, src/pushes/auto-push.ts). */
const OPERATORS: [op: number, text: string][] = [
  [0, 'is true'],
  [1, 'is false'],
  [2, '='],
  [3, '≠'],
  [10, '> (number)'],
  [11, '≥ (number)'],
  [12, '< (number)'],
  [13, '≤ (number)'],
  [20, '> (text)'],
  [21, '≥ (text)'],
  [22, '< (text)'],
  [23, '≤ (text)'],
];

function conditionText(c: unknown): string {
  if (!Array.isArray(c)) return JSON.stringify(c);
  const [variable, op, value] = c as [string, number, string];
  const text = OPERATORS.find(([o]) => o === Number(op))?.[1] ?? String(op);
  return op === 0 || op === 1 ? `${variable} ${text}` : `${variable} ${text} ${value}`;
}

/** A `[variable, operator, value]` condition's three controls; `read()` is undefined without a variable. */
function conditionInputs(label: string): { el: HTMLElement; read(): [string, number, string] | undefined } {
  const variable = h('input', { placeholder: '$variable', 'aria-label': `${label}: variable` });
  const op = h('select', { 'aria-label': `${label}: operator` }, OPERATORS.map(([o, t]) => h('option', { value: o }, t)));
  const value = h('input', { 'aria-label': `${label}: value` });
  return {
    el: h('div', { class: 'field' }, h('span', { class: 'label' }, label), h('div', { class: 'actions' }, variable, op, value)),
    read: () => (variable.value.trim() ? [variable.value.trim(), Number(op.value), value.value] : undefined),
  };
}

const stateKind = (s: string | undefined): 'ok' | 'warn' | 'bad' | 'idle' => (s === 'active' || s === 'recording' ? 'ok' : s === 'reconnecting' ? 'bad' : s === 'ended' ? 'idle' : 'warn');

export const pushesPage: Page = (root, ctx) => {
  const msg = messageBox();
  const running = h('div', {});
  const autos = h('div', {});
  const recs = h('div', {});

  const streamIn = h('input', { name: 'push-stream', required: true, placeholder: 'live+cam, live+ (all), #tag' });
  const targetIn = h('input', { name: 'push-target', required: true, placeholder: 'rtmp://host/app/key  or  /recordings/$stream_$datetime.mkv' });
  const autoBox = h('input', { type: 'checkbox', name: 'push-auto' });
  const startAt = h('input', { type: 'datetime-local', name: 'push-start-at' });
  const endAt = h('input', { type: 'datetime-local', name: 'push-end-at' });
  const startRule = conditionInputs('Start when');
  const endRule = conditionInputs('Stop when');
  const rules = h(
    'fieldset',
    { hidden: true },
    h('legend', {}, 'Rules (all optional)'),
    h('div', { class: 'grid2' }, field('Not before', startAt), field('Remove the rule after', endAt)),
    startRule.el,
    endRule.el,
  );
  autoBox.addEventListener('change', () => (rules.hidden = !autoBox.checked));
  const startForm = h(
    'form',
    { class: 'card inline-form', 'aria-label': 'Start a push' },
    h('h2', {}, 'Start a push or recording'),
    field('Stream', streamIn, 'A stream name; NAME+ for every live instance of NAME; #tag for every stream with that tag.'),
    field('Target', targetIn, 'A URL (rtmp://, rtmps://, srt://, tsudp://, dtsc://) or a file path to record to. Variables: $stream, $basename, $wildcard, $datetime, $year, $month, $day, $hour, $minute, $second, $segmentCounter.'),
    field('Automatic: push every matching stream whenever it is live', autoBox),
    rules,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Start')),
  );
  startForm.addEventListener('submit', (e) => {
    e.preventDefault();
    msg.clear();
    const push: Record<string, unknown> = { stream: streamIn.value.trim(), target: targetIn.value.trim() };
    if (autoBox.checked) {
      const unix = (el: HTMLInputElement): number | undefined => (el.value ? Math.floor(new Date(el.value).getTime() / 1000) : undefined);
      push['scheduletime'] = unix(startAt);
      push['completetime'] = unix(endAt);
      push['start_rule'] = startRule.read();
      push['end_rule'] = endRule.read();
    }
    const req = autoBox.checked ? { push_auto_add: push } : { push_start: push };
    void ctx.api.call({ ...req, minimal: 1 }).then((a) => {
      if (a.error) msg.show(a.error);
      else {
        msg.show(autoBox.checked ? 'Automatic push added.' : 'Push started.', 'ok');
        void refresh();
      }
    });
  });

  root.append(
    h('h1', {}, 'Pushes and recordings'),
    msg.el,
    h('section', { class: 'card', 'aria-labelledby': 'running-h' }, h('h2', { id: 'running-h' }, 'Running pushes'), running),
    startForm,
    h('section', { class: 'card', 'aria-labelledby': 'auto-h' }, h('h2', { id: 'auto-h' }, 'Automatic pushes'), autos),
    h('section', { class: 'card', 'aria-labelledby': 'rec-h' }, h('h2', { id: 'rec-h' }, 'Recordings'), recs),
  );

  const act = (request: ApiRequest): void => {
    void ctx.api.call({ ...request, minimal: 1 }).then((a) => {
      if (a.error) msg.show(a.error);
      void refresh();
    });
  };

  const refresh = async (): Promise<void> => {
    const a = await ctx.api.call({ minimal: 1, push_list: true, push_auto_list: true, recordings: true });
    const list = (a['push_list'] ?? []) as [number, string, string, string, string[], PushStatus][];
    fill(
      running,
      table(
        ['Id', 'Stream', 'Target', 'State', 'Sent', 'For', ''],
        list.map(([id, stream, target, actual, , st]) => [
          String(id),
          stream,
          h('code', { title: actual }, target),
          h('span', {}, badge(st.state ?? '?', stateKind(st.state)), st.lastError ? h('small', { class: 'error' }, ` ${st.lastError}`) : null, st.reconnects ? h('small', {}, ` (${st.reconnects} reconnects)`) : null),
          fmtBytes(st.bytes),
          fmtDuration(st.activeSeconds),
          h('button', { type: 'button', class: 'small danger', 'aria-label': `Stop push ${id}`, onclick: () => act({ push_stop: id }) }, 'Stop'),
        ]),
        'No push is running.',
        'Running pushes',
      ),
    );
    const rules = (a['auto_push'] ?? {}) as Record<string, Answer>;
    fill(
      autos,
      table(
        ['Stream', 'Target', 'Rules', ''],
        Object.entries(rules).map(([id, r]) => [
          String(r['stream'] ?? ''),
          h('code', {}, String(r['target'] ?? '')),
          [r['scheduletime'] ? `from ${fmtTime(Number(r['scheduletime']))}` : '', r['completetime'] ? ` until ${fmtTime(Number(r['completetime']))}` : '', r['start_rule'] ? ` start when ${conditionText(r['start_rule'])}` : '', r['end_rule'] ? ` stop when ${conditionText(r['end_rule'])}` : ''].join('') || 'whenever live',
          h('button', { type: 'button', class: 'small danger', 'aria-label': `Remove automatic push of ${String(r['stream'])} to ${String(r['target'])}`, onclick: () => act({ push_auto_remove: id }) }, 'Remove'),
        ]),
        'No automatic push.',
        'Automatic pushes',
      ),
    );
    const files = (a['recordings'] ?? []) as Recording[];
    fill(
      recs,
      table(
        ['File', 'Stream', 'Size', 'Length', 'Written', ''],
        files.map((f) => [
          h('code', { title: f.path }, f.name),
          f.stream ?? '–',
          fmtBytes(f.size),
          f.duration_ms === null ? '–' : fmtDuration(f.duration_ms / 1000),
          fmtTime(f.modified),
          f.growing ? badge('recording', 'ok') : '',
        ]),
        'No recordings yet.',
        'Recordings',
      ),
    );
  };
  return every(TICK_MS, refresh);
};
