// The management UI's shell: login, navigation (hash routes, so the page itself never moves
// and works under any sub-path), the banner shown while the API is away, and the page in view.

import { Api, ApiUnavailable, LoginNeeded, type Answer, type ConnState } from './api.js';
import { fill, h, messageBox, field } from './dom.js';
import type { Page, PageContext } from './page.js';
import { overviewPage } from './pages/overview.js';
import { streamsPage, streamPage, streamEditPage } from './pages/streams.js';
import { pushesPage } from './pages/pushes.js';
import { triggersPage } from './pages/triggers.js';
import { sessionsPage } from './pages/sessions.js';
import { settingsPage } from './pages/settings.js';
import { capacityPage } from './pages/capacity.js';

interface Route {
  path: RegExp;
  title: string;
  page: Page;
  nav?: string;
}

const ROUTES: Route[] = [
  { path: /^$/, title: 'Overview', page: overviewPage, nav: '' },
  { path: /^streams$/, title: 'Streams', page: streamsPage, nav: 'streams' },
  { path: /^streams\/new$/, title: 'New stream', page: streamEditPage },
  { path: /^streams\/([^/]+)\/edit$/, title: 'Edit stream', page: streamEditPage },
  { path: /^streams\/([^/]+)$/, title: 'Stream', page: streamPage },
  { path: /^pushes$/, title: 'Pushes and recordings', page: pushesPage, nav: 'pushes' },
  { path: /^triggers$/, title: 'Triggers', page: triggersPage, nav: 'triggers' },
  { path: /^sessions$/, title: 'Sessions', page: sessionsPage, nav: 'sessions' },
  { path: /^settings$/, title: 'Settings', page: settingsPage, nav: 'settings' },
  { path: /^capacity$/, title: 'Capacity planner', page: capacityPage, nav: 'capacity' },
];

const api = new Api();
const banner = h('div', { class: 'banner', role: 'alert', hidden: true });
const main = h('main', { id: 'main', tabindex: -1 });
const userBox = h('div', { class: 'user' });
const nav = h(
  'nav',
  { 'aria-label': 'Sections' },
  h(
    'ul',
    {},
    ROUTES.filter((r) => r.nav !== undefined).map((r) => h('li', {}, h('a', { href: `#/${r.nav}`, 'data-nav': r.nav ?? '' }, r.title))),
  ),
);
let unmount: (() => void) | void;
let shown = false; // a page (not the login form) is on screen
let capabilities: Answer | undefined;

const ctx: Omit<PageContext, 'params'> = {
  api,
  async capabilities() {
    capabilities ??= ((await api.call({ capabilities: true, minimal: 1 }))['capabilities'] as Answer | undefined) ?? {};
    return capabilities;
  },
  go(hash) {
    location.hash = hash;
  },
};

function showBanner(state: ConnState): void {
  banner.hidden = state !== 'away';
  banner.textContent = state === 'away' ? 'The Haze API is not answering (restarting?). Retrying every 2 seconds; this page updates once it is back.' : '';
  document.body.dataset['api'] = state;
}

function render(): void {
  if (typeof unmount === 'function') unmount();
  unmount = undefined;
  shown = api.state !== 'login' && api.state !== 'noacc';
  if (!shown) {
    loginPage(api.state === 'noacc');
    return;
  }
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ''));
  const route = ROUTES.find((r) => r.path.test(hash)) ?? ROUTES[0]!;
  const params = (route.path.exec(hash) ?? []).slice(1);
  const navKey = route.nav ?? hash.split('/')[0] ?? '';
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset['nav'] === navKey) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${route.title} · Haze`;
  main.replaceChildren();
  fill(userBox, api.local ? h('span', { class: 'muted' }, 'local access') : api.username ? [h('span', {}, api.username), ' ', h('button', { type: 'button', class: 'small', onclick: () => void api.logout() }, 'Log out')] : null);
  unmount = route.page(main, { ...ctx, params });
}

function loginPage(firstRun: boolean): void {
  document.title = 'Log in · Haze';
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, value: 'admin' });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: firstRun ? 'new-password' : 'current-password', required: true });
  const pass2 = h('input', { name: 'password2', type: 'password', autocomplete: 'new-password', required: true });
  const msg = messageBox();
  const form = h(
    'form',
    { class: 'login card', 'aria-label': firstRun ? 'Create the first account' : 'Log in' },
    h('h1', {}, firstRun ? 'Welcome to Haze' : 'Log in to Haze'),
    firstRun ? h('p', {}, 'This server has no account yet. Choose the administrator name and password.') : null,
    field('Username', user),
    field('Password', pass),
    firstRun ? field('Repeat the password', pass2) : null,
    msg.el,
    h('button', { type: 'submit', class: 'primary' }, firstRun ? 'Create account' : 'Log in'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    msg.clear();
    if (firstRun && pass.value !== pass2.value) {
      msg.show('The two passwords differ.');
      return;
    }
    const attempt = firstRun ? api.createAccount(user.value, pass.value) : api.login(user.value, pass.value);
    attempt.then(
      (ok) => (ok ? render() : msg.show(firstRun ? 'The account could not be created.' : 'Wrong username or password.')),
      (err: unknown) => msg.show(err instanceof ApiUnavailable ? 'The API is not answering.' : String(err)),
    );
  });
  main.replaceChildren(form);
  user.focus();
}

api.onState((s) => {
  showBanner(s);
  if (s === 'login' || s === 'noacc' || (s === 'ok' && !shown)) render();
});

async function boot(): Promise<void> {
  document.body.replaceChildren(
    h('a', { class: 'skip', href: '#main', onclick: (e: Event) => (e.preventDefault(), main.focus()) }, 'Skip to content'),
    h('header', {}, h('a', { class: 'brand', href: '#/' }, 'Haze'), userBox),
    banner,
    h('div', { class: 'layout' }, nav, main),
  );
  window.addEventListener('hashchange', () => render());
  try {
    await api.call({ minimal: 1 });
  } catch (err) {
    if (!(err instanceof LoginNeeded) && !(err instanceof ApiUnavailable)) throw err;
  }
  if (api.state !== 'away') render();
  else main.replaceChildren(h('p', { class: 'muted' }, 'Waiting for the Haze API…'));
}

void boot();
