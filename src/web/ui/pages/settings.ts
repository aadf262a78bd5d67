// Protocols and settings: listening ports and public addresses, server settings (id, location,
// Prometheus, access log, session modes), accounts, and config backup/restore.

import type { Answer, ApiRequest } from '../api.js';
import { download, field, fill, h, messageBox, table } from '../dom.js';
import type { Page } from '../page.js';

interface Protocol {
  connector: string;
  port?: number;
  interface?: string;
  pubaddr?: string | string[];
  [k: string]: unknown;
}

const SESSION_MODES: [key: string, label: string][] = [
  ['sessionViewerMode', 'Viewer sessions'],
  ['sessionInputMode', 'Input sessions'],
  ['sessionOutputMode', 'Output (push) sessions'],
  ['sessionUnspecifiedMode', 'Unspecified sessions'],
];

export const settingsPage: Page = (root, ctx) => {
  const msg = messageBox();
  const protoBox = h('section', { class: 'card', 'aria-labelledby': 'proto-h' });
  const serverBox = h('section', { class: 'card', 'aria-labelledby': 'server-h' });
  const accountBox = h('section', { class: 'card', 'aria-labelledby': 'acc-h' });
  const backupBox = h('section', { class: 'card', 'aria-labelledby': 'backup-h' });
  root.append(h('h1', {}, 'Protocols and settings'), msg.el, protoBox, serverBox, accountBox, backupBox);

  const send = async (request: ApiRequest, done: string): Promise<Answer | undefined> => {
    msg.clear();
    const a = await ctx.api.call({ ...request, minimal: 1 });
    if (a.error) {
      msg.show(a.error);
      return undefined;
    }
    msg.show(done, 'ok');
    return a;
  };

  const drawProtocols = (protocols: Protocol[], connectors: string[]): void => {
    const rows = protocols.map((p) => ({ p, port: h('input', { type: 'number', min: 1, max: 65535, value: p.port ?? '', 'aria-label': `${p.connector} port`, placeholder: 'default' }), iface: h('input', { value: p.interface ?? '', 'aria-label': `${p.connector} interface`, placeholder: 'all' }), pub: h('input', { value: Array.isArray(p.pubaddr) ? p.pubaddr.join(' ') : (p.pubaddr ?? ''), 'aria-label': `${p.connector} public address`, placeholder: p.connector === 'HTTP' ? 'https://example.com/haze/' : '' }), keep: h('input', { type: 'checkbox', checked: true, 'aria-label': `${p.connector} enabled` }) }));
    const addSel = h('select', { 'aria-label': 'Connector to add' }, connectors.map((c) => h('option', { value: c }, c)));
    fill(
      protoBox,
      h('h2', { id: 'proto-h' }, 'Protocols'),
      h('p', { class: 'muted' }, 'Listening ports and public addresses. The HTTP connector\'s public address (a reverse proxy\'s base URL) is used in play URLs, the embed code and json_NAME.js. Port changes take effect when Haze restarts.'),
      table(
        ['Enabled', 'Connector', 'Port', 'Interface', 'Public address'],
        rows.map((r) => [r.keep, r.p.connector, r.port, r.iface, r.pub]),
        'No protocols.',
        'Protocols',
      ),
      h(
        'div',
        { class: 'actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'primary',
            onclick: () => {
              const next = rows
                .filter((r) => r.keep.checked)
                .map((r) => {
                  const p: Protocol = { ...r.p };
                  if (r.port.value) p.port = Number(r.port.value);
                  else delete p.port;
                  if (r.iface.value.trim()) p.interface = r.iface.value.trim();
                  else delete p.interface;
                  const pubs = r.pub.value.split(/\s+/).filter(Boolean);
                  if (pubs.length) p.pubaddr = pubs.length === 1 ? pubs[0]! : pubs;
                  else delete p.pubaddr;
                  return p;
                });
              void send({ config: { protocols: next } }, 'Protocols saved.').then((a) => a && load());
            },
          },
          'Save protocols',
        ),
        addSel,
        h('button', { type: 'button', onclick: () => drawProtocols([...protocols, { connector: addSel.value }], connectors) }, 'Add connector'),
      ),
    );
  };

  const drawServer = (c: Answer): void => {
    const loc = (c['location'] ?? {}) as { lat?: number; lon?: number; name?: string };
    const serverid = h('input', { value: String(c['serverid'] ?? '') });
    const locName = h('input', { value: loc.name ?? '' });
    const lat = h('input', { type: 'number', step: 'any', min: -90, max: 90, value: loc.lat ?? 0 });
    const lon = h('input', { type: 'number', step: 'any', min: -180, max: 180, value: loc.lon ?? 0 });
    const prom = h('input', { value: String(c['prometheus'] ?? ''), autocomplete: 'off' });
    const accesslog = h('input', { value: String(c['accesslog'] ?? 'LOG') });
    const defaultStream = h('input', { value: String(c['defaultStream'] ?? '') });
    const trusted = h('input', { value: ((c['trustedproxy'] ?? []) as string[]).join(' ') });
    const debug = h('input', { type: 'number', min: 0, max: 10, value: Number(c['debug'] ?? 4) });
    const modes = SESSION_MODES.map(([key, label]) => ({ key, el: h('input', { type: 'number', min: 0, max: 15, value: Number(c[key] ?? 0) }), label }));
    const form = h(
      'form',
      { 'aria-label': 'Server settings' },
      h('h2', { id: 'server-h' }, 'Server'),
      h('div', { class: 'grid2' }, field('Server id', serverid, 'Names this server in statistics and to a load balancer.'), field('Location name', locName), field('Latitude', lat), field('Longitude', lon)),
      field('Prometheus passphrase', prom, 'Metrics at /PASSPHRASE (text) and /PASSPHRASE.json on this port; empty: off.'),
      field('Access log', accesslog, 'LOG (to the log), a file path, or empty for none.'),
      field('Default stream', defaultStream, 'Shown to viewers of a stream that is offline or unknown.'),
      field('Trusted proxies', trusted, 'Addresses (space separated) whose X-Forwarded-For is believed.'),
      field('Log level (debug)', debug),
      h('fieldset', {}, h('legend', {}, 'Session modes (MistServer bit masks: 1 host, 2 stream, 4 protocol, 8 token)'), h('div', { class: 'grid2' }, modes.map((m) => field(m.label, m.el)))),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save settings')),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const config: Record<string, unknown> = {
        serverid: serverid.value.trim(),
        location: { name: locName.value.trim(), lat: Number(lat.value) || 0, lon: Number(lon.value) || 0 },
        prometheus: prom.value.trim(),
        accesslog: accesslog.value.trim(),
        defaultStream: defaultStream.value.trim(),
        trustedproxy: trusted.value.split(/\s+/).filter(Boolean),
        debug: Number(debug.value),
      };
      for (const m of modes) config[m.key] = Number(m.el.value);
      void send({ config, save: true }, 'Settings saved.');
    });
    fill(serverBox, form);
  };

  const drawAccounts = (names: string[]): void => {
    const user = h('input', { name: 'account-user', autocomplete: 'username', required: true });
    const pass = h('input', { name: 'account-password', type: 'password', autocomplete: 'new-password', required: true });
    const form = h('form', { class: 'inline-form', 'aria-label': 'Add an account or change a password' }, field('Username', user), field('Password', pass), h('button', { type: 'submit', class: 'primary' }, 'Set password'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const username = user.value.trim();
      // the answer to this request is still built from the old password; later ones from the new
      void send({ account_set: { username, password: pass.value } }, `Password of ${username} set.`).then((a) => {
        if (!a) return;
        ctx.api.passwordChanged(username, pass.value);
        void loadAccounts();
      });
    });
    fill(
      accountBox,
      h('h2', { id: 'acc-h' }, 'Accounts'),
      table(
        ['Username', ''],
        names.map((n) => [n, h('button', { type: 'button', class: 'small danger', 'aria-label': `Delete account ${n}`, disabled: names.length < 2, onclick: () => confirm(`Delete the account ${n}?`) && void send({ account_delete: n }, `Account ${n} deleted.`).then(() => loadAccounts()) }, 'Delete')]),
        'No accounts: anyone reaching this port from elsewhere may create the first one.',
        'Accounts',
      ),
      form,
    );
  };

  const fileIn = h('input', { type: 'file', accept: 'application/json,.json', 'aria-label': 'Config file to restore' });
  fill(
    backupBox,
    h('h2', { id: 'backup-h' }, 'Backup and restore'),
    h('p', { class: 'muted' }, 'The backup holds the whole configuration (streams, protocols, triggers, pushes, accounts\' password hashes). Restoring replaces the running configuration; streams that differ are restarted.'),
    h(
      'div',
      { class: 'actions' },
      h(
        'button',
        {
          type: 'button',
          onclick: () =>
            void ctx.api.call({ config_backup: true, minimal: 1 }).then((a) => {
              if (a.error) msg.show(a.error);
              else download(`haze-config-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}.json`, JSON.stringify(a['config_backup'], null, 2) + '\n');
            }),
        },
        'Download backup',
      ),
      fileIn,
      h(
        'button',
        {
          type: 'button',
          onclick: () => {
            const file = fileIn.files?.[0];
            if (!file) {
              msg.show('Choose a backup file first.');
              return;
            }
            void file.text().then((text) => {
              let parsed: unknown;
              try {
                parsed = JSON.parse(text);
              } catch (err) {
                msg.show(`${file.name} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
                return;
              }
              if (!confirm(`Replace the running configuration with ${file.name}?`)) return;
              void send({ config_restore: parsed }, `Configuration restored from ${file.name}.`).then((a) => a && load());
            });
          },
        },
        'Restore',
      ),
    ),
  );

  const loadAccounts = async (): Promise<void> => {
    const a = await ctx.api.call({ account_list: true, minimal: 1 });
    drawAccounts((a['account_list'] ?? []) as string[]);
  };
  const load = async (): Promise<void> => {
    const [a, caps] = await Promise.all([ctx.api.call({ config: {}, minimal: 1 }), ctx.capabilities()]);
    const c = (a['config'] ?? {}) as Answer;
    drawProtocols((c['protocols'] ?? []) as Protocol[], Object.keys((caps['connectors'] ?? {}) as object).sort());
    drawServer(c);
  };
  void load();
  void loadAccounts();
};
