// Sessions: who watches or publishes now (protocol, host, bytes, duration, rate), with kick
// (stop_sessid: ends the session's connections and makes it ask USER_NEW again) and tag.

import type { ApiRequest } from '../api.js';
import { every, fill, fmtBytes, fmtDuration, fmtRate, h, messageBox, table } from '../dom.js';
import type { Page } from '../page.js';

const TICK_MS = 2000;
const FIELDS = ['sessid', 'stream', 'protocol', 'host', 'conntime', 'down', 'up', 'downbps', 'upbps'] as const;
type Row = [string, string, string, string, number, number, number, number, number];

export const sessionsPage: Page = (root, ctx) => {
  const msg = messageBox();
  const filterIn = h('input', { type: 'search', name: 'filter', placeholder: 'stream, protocol or address', 'aria-label': 'Filter sessions' });
  const body = h('div', {});
  root.append(h('div', { class: 'title-row' }, h('h1', {}, 'Sessions'), filterIn), msg.el, body);
  let rows: Row[] = [];

  const act = (request: ApiRequest, done: string): void => {
    void ctx.api.call({ ...request, minimal: 1 }).then((a) => (a.error ? msg.show(a.error) : msg.show(done, 'ok')));
  };

  const draw = (): void => {
    const f = filterIn.value.trim().toLowerCase();
    const shown = f ? rows.filter((r) => `${r[1]} ${r[2]} ${r[3]}`.toLowerCase().includes(f)) : rows;
    fill(
      body,
      table(
        ['Stream', 'Kind', 'Protocol', 'Host', 'Connected', 'Sent', 'Received', 'Rate', ''],
        shown.map(([sessid, stream, protocol, host, conntime, down, up, downbps, upbps]) => {
          const publisher = protocol.startsWith('INPUT');
          return [
            h('a', { href: `#/streams/${encodeURIComponent(stream)}` }, stream),
            publisher ? 'publisher' : protocol.startsWith('OUTPUT') ? 'push' : 'viewer',
            protocol.replace(/^(INPUT|OUTPUT):/, ''),
            host,
            fmtDuration(conntime),
            fmtBytes(down),
            fmtBytes(up),
            fmtRate(publisher ? upbps : downbps),
            h(
              'span',
              { class: 'row-actions' },
              h('button', { type: 'button', class: 'small danger', 'aria-label': `Kick session ${sessid} (${protocol} from ${host} on ${stream})`, onclick: () => act({ stop_sessid: sessid }, `Session ${sessid.slice(0, 12)}… kicked.`) }, 'Kick'),
              h(
                'button',
                {
                  type: 'button',
                  class: 'small',
                  'aria-label': `Tag session ${sessid}`,
                  onclick: () => {
                    const tag = prompt('Tag for this session (shown in its access log line and USER_END):');
                    if (tag) act({ tag_sessid: { [sessid]: tag } }, `Session tagged ${tag}.`);
                  },
                },
                'Tag',
              ),
            ),
          ];
        }),
        f ? 'No session matches.' : 'Nobody is connected.',
        'Sessions',
      ),
    );
  };
  filterIn.addEventListener('input', draw);
  return every(TICK_MS, async () => {
    const a = await ctx.api.call({ minimal: 1, clients: { fields: [...FIELDS] } });
    const data = ((a['clients'] as { data?: Row[] } | undefined)?.data ?? []) as Row[];
    rows = data.sort((x, y) => x[1].localeCompare(y[1]) || y[4] - x[4]);
    draw();
  });
};
