// Triggers: the configured handlers per event, and a form to add or edit one. What each trigger
// means, its payload lines and what its reply decides come from `capabilities.triggers`, which the
// server derives from its trigger map (the same source as docs/triggers.md).

import type { Answer } from '../api.js';
import { badge, field, fill, h, messageBox, table } from '../dom.js';
import type { Page } from '../page.js';

interface TriggerInfo {
  when: string;
  stream_specific: boolean;
  kind: 'notify' | 'bool' | 'rewrite';
  fields: string[];
  response: string;
  response_action: string;
  note?: string;
}

interface Handler {
  handler: string;
  sync?: boolean;
  streams?: string[];
  params?: string;
  default?: string;
}

export const triggersPage: Page = (root, ctx) => {
  const msg = messageBox();
  const list = h('div', {});
  const formBox = h('div', {});
  root.append(h('h1', {}, 'Triggers'), h('p', { class: 'muted' }, 'A trigger calls an HTTP(S) URL (POST, the payload lines as the body) or runs a program (payload on its standard input) when the event happens. A blocking handler\'s reply can refuse or rewrite; when it cannot be reached, its default reply is used.'), msg.el, list, formBox);
  let triggers: Record<string, Handler[]> = {};
  let infos: Record<string, TriggerInfo> = {};

  const save = async (next: Record<string, Handler[]>): Promise<boolean> => {
    const a = await ctx.api.call({ config: { triggers: next }, minimal: 1 });
    if (a.error) {
      msg.show(a.error);
      return false;
    }
    triggers = ((a['config'] as Answer | undefined)?.['triggers'] ?? next) as Record<string, Handler[]>;
    msg.show('Triggers saved.', 'ok');
    draw();
    return true;
  };

  const edit = (name: string | undefined, index: number | undefined): void => {
    const current: Handler | undefined = name !== undefined && index !== undefined ? triggers[name]?.[index] : undefined;
    const sel = h('select', { name: 'trigger' }, Object.keys(infos).sort().map((t) => h('option', { value: t }, t)));
    sel.value = name ?? 'USER_NEW';
    const describe = h('div', { class: 'trigger-info', 'aria-live': 'polite' });
    const handlerIn = h('input', { name: 'handler', required: true, value: current?.handler ?? '', placeholder: 'https://auth.example.com/check  or  /usr/local/bin/check.sh' });
    const syncIn = h('input', { type: 'checkbox', name: 'sync', checked: current?.sync ?? false });
    const defIn = h('input', { name: 'default', value: current?.default ?? '', placeholder: 'true' });
    const streamsIn = h('input', { name: 'streams', value: (current?.streams ?? []).join(', '), placeholder: 'all streams' });
    const paramsIn = h('input', { name: 'params', value: current?.params ?? '' });
    const showInfo = (): void => {
      const i = infos[sel.value];
      if (!i) return;
      fill(
        describe,
        h('p', {}, h('strong', {}, sel.value), ` fires when ${i.when}. `, i.kind === 'notify' ? 'Its reply is ignored.' : i.kind === 'bool' ? `A blocking handler replying false: ${i.response_action.replace(/^false:\s*/, '') || 'refuses'}.` : `A blocking handler's reply replaces the value${i.response_action ? ` (${i.response_action})` : ''}.`, i.stream_specific ? '' : ' It concerns the whole server: stream filters do not apply.'),
        h('p', {}, 'Payload (one field per line): ', i.fields.map((f, n) => [n ? ', ' : '', h('code', {}, f)])),
        i.note ? h('p', { class: 'muted' }, i.note) : null,
      );
      syncIn.disabled = i.kind === 'notify';
    };
    sel.addEventListener('change', showInfo);
    showInfo();
    const form = h(
      'form',
      { class: 'card', 'aria-label': current ? `Edit ${name} handler` : 'Add a trigger handler' },
      h('h2', {}, current ? `Edit a ${name} handler` : 'Add a handler'),
      field('Trigger', sel),
      describe,
      field('Handler', handlerIn, 'An http:// or https:// URL, or the absolute path of a program.'),
      field('Blocking (wait for the reply)', syncIn),
      field('Default reply', defIn, 'Used when the handler fails or times out (blocking handlers).'),
      field('Streams', streamsIn, 'Comma separated: names, base names (live matches live+x), #tag, and !name to exclude. Empty: every stream.'),
      field('Parameters', paramsIn, 'Passed to the handler as the trigger\'s parameter (MistServer\'s params).'),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save'), h('button', { type: 'button', onclick: () => formBox.replaceChildren() }, 'Cancel')),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const handler: Handler = { handler: handlerIn.value.trim(), sync: syncIn.checked && !syncIn.disabled, streams: streamsIn.value.split(',').map((s) => s.trim()).filter(Boolean) };
      if (defIn.value !== '') handler.default = defIn.value;
      if (paramsIn.value !== '') handler.params = paramsIn.value;
      const next = structuredClone(triggers);
      if (name !== undefined && index !== undefined) {
        next[name]!.splice(index, 1);
        if (!next[name]!.length) delete next[name];
      }
      (next[sel.value] ??= []).push(handler);
      void save(next).then((ok) => ok && formBox.replaceChildren());
    });
    formBox.replaceChildren(form);
    handlerIn.focus();
  };

  const draw = (): void => {
    const rows: (Node | string)[][] = [];
    for (const [name, handlers] of Object.entries(triggers).sort()) {
      handlers.forEach((hd, i) => {
        rows.push([
          h('span', { title: infos[name]?.when ?? '' }, name),
          h('code', {}, hd.handler),
          hd.sync ? badge('blocking', 'warn') : badge('notify', 'idle'),
          hd.default ?? '',
          (hd.streams ?? []).join(', ') || 'all',
          h(
            'span',
            { class: 'row-actions' },
            h('button', { type: 'button', class: 'small', 'aria-label': `Edit ${name} handler ${hd.handler}`, onclick: () => edit(name, i) }, 'Edit'),
            h(
              'button',
              {
                type: 'button',
                class: 'small danger',
                'aria-label': `Delete ${name} handler ${hd.handler}`,
                onclick: () => {
                  const next = structuredClone(triggers);
                  next[name]!.splice(i, 1);
                  if (!next[name]!.length) delete next[name];
                  void save(next);
                },
              },
              'Delete',
            ),
          ),
        ]);
      });
    }
    fill(list, h('div', { class: 'title-row' }, h('h2', {}, 'Handlers'), h('button', { type: 'button', class: 'primary', onclick: () => edit(undefined, undefined) }, 'Add handler')), table(['Trigger', 'Handler', 'Mode', 'Default', 'Streams', ''], rows, 'No trigger handler yet.', 'Trigger handlers'));
  };

  void Promise.all([ctx.api.call({}), ctx.capabilities()]).then(([a, caps]) => {
    triggers = ((a['config'] as Answer | undefined)?.['triggers'] ?? {}) as Record<string, Handler[]>;
    infos = (caps['triggers'] ?? {}) as Record<string, TriggerInfo>;
    draw();
  });
};
