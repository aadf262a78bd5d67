// The UI's link to the controller: the JSON API (`api`, relative to the page, so the UI works
// under any reverse-proxy sub-path) and the WebSocket feed (`ws`). Login is MistServer's
// challenge flow; the password itself is never kept, only md5(password), and every request
// carries the answer to the challenge, because a proxied request has no connection of its own to
// remember a login by. When the API stops answering (controller restart, proxy down) the
// connection state turns `away`, the shell shows a banner, and a probe every 2 s brings it back.

import { md5 } from './md5.js';
import type { UiCall } from './calls.js';

export type ApiRequest = Partial<Record<UiCall, unknown>>;
export type Answer = Record<string, unknown> & { error?: string; authorize?: AuthBlock };
export interface AuthBlock {
  status: 'OK' | 'CHALL' | 'NOACC' | 'ACC_MADE';
  challenge?: string;
  local?: boolean;
}
export type ConnState = 'ok' | 'away' | 'login' | 'noacc';

const STORE_KEY = 'haze-login';
const PROBE_MS = 2000;
/** A request unanswered this long counts as the API being away (a stopped controller holds it). */
const REQUEST_TIMEOUT_MS = 8000;

/** Thrown by `call` when the API cannot be reached or the login is gone; the shell handles both. */
export class ApiUnavailable extends Error {}
export class LoginNeeded extends Error {}

interface Credentials {
  username: string;
  /** md5(password): what the challenge answer is built from */
  hash: string;
}

export class Api {
  readonly base: URL;
  state: ConnState = 'ok';
  /** the peer is trusted without a login (the API's local rule) */
  local = false;
  private creds: Credentials | undefined;
  private challenge = '';
  private probe: ReturnType<typeof setTimeout> | undefined;
  private listeners = new Set<(s: ConnState) => void>();

  constructor(base = document.baseURI) {
    this.base = new URL('.', base);
    try {
      const saved = JSON.parse(sessionStorage.getItem(STORE_KEY) ?? 'null') as Credentials | null;
      if (saved && typeof saved.username === 'string' && typeof saved.hash === 'string') this.creds = saved;
    } catch {
      // nothing saved
    }
  }

  get username(): string | undefined {
    return this.creds?.username;
  }

  onState(fn: (s: ConnState) => void): void {
    this.listeners.add(fn);
  }

  private setState(s: ConnState): void {
    if (s !== 'away') clearTimeout(this.probe);
    if (s === this.state) return;
    this.state = s;
    for (const fn of this.listeners) fn(s);
  }

  /** Away: the banner shows, and a probe tries again every PROBE_MS until an answer comes. */
  private away(): void {
    this.setState('away');
    clearTimeout(this.probe);
    this.probe = setTimeout(() => void this.probeNow(), PROBE_MS);
  }

  /** One light request: tells whether the API is there (the state follows). */
  probeNow(): Promise<void> {
    return this.call({ minimal: 1 }).then(
      () => undefined,
      () => undefined,
    );
  }

  private authBlock(): Record<string, string> | undefined {
    if (!this.creds) return undefined;
    return { username: this.creds.username, password: this.challenge ? md5(this.creds.hash + this.challenge) : '' };
  }

  /** One POST to the API; the answer (its `error` member included) or a thrown ApiUnavailable/LoginNeeded. */
  async call(request: ApiRequest, retried = false): Promise<Answer> {
    const body: Record<string, unknown> = { ...request };
    const auth = this.authBlock();
    if (auth && !('authorize' in body)) body['authorize'] = auth;
    let answer: Answer;
    try {
      const res = await fetch(new URL('api', this.base), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), cache: 'no-store', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      // a reverse proxy answers 502/503/504 while Haze is down
      if (res.status >= 500) throw new Error(`HTTP ${res.status}`);
      answer = (await res.json()) as Answer;
    } catch (err) {
      this.away();
      throw new ApiUnavailable(err instanceof Error ? err.message : String(err));
    }
    const a = answer.authorize;
    if (a?.status === 'OK' || a?.status === 'ACC_MADE') {
      this.local = a.local === true;
      this.setState('ok');
      return answer;
    }
    if (a?.status === 'NOACC') {
      this.setState('noacc');
      throw new LoginNeeded('no account yet');
    }
    // a challenge: a new one (another day, another address) is answered once more
    if (a?.status === 'CHALL' && a.challenge && this.creds && !retried && a.challenge !== this.challenge) {
      this.challenge = a.challenge;
      return this.call(request, true);
    }
    if (a?.challenge) this.challenge = a.challenge;
    this.setState('login');
    throw new LoginNeeded('login needed');
  }

  /** Logs in (false: wrong name or password). */
  async login(username: string, password: string): Promise<boolean> {
    this.creds = { username, hash: md5(password) };
    this.challenge = '';
    try {
      await this.call({});
    } catch (err) {
      if (err instanceof LoginNeeded) {
        this.creds = undefined;
        return false;
      }
      throw err;
    }
    sessionStorage.setItem(STORE_KEY, JSON.stringify(this.creds));
    return true;
  }

  /** Creates the first account (MistServer's NOACC flow), then logs in with it. */
  async createAccount(username: string, password: string): Promise<boolean> {
    const res = await fetch(new URL('api', this.base), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ authorize: { new_username: username, new_password: password } }),
    });
    const answer = (await res.json()) as Answer;
    if (answer.authorize?.status !== 'ACC_MADE' && answer.authorize?.status !== 'OK') return false;
    return this.login(username, password);
  }

  /** After a password change: the logged-in user's next challenge answers use the new one. */
  passwordChanged(username: string, password: string): void {
    if (this.creds?.username !== username) return;
    this.creds = { username, hash: md5(password) };
    sessionStorage.setItem(STORE_KEY, JSON.stringify(this.creds));
  }

  async logout(): Promise<void> {
    await this.call({ logout: true }).catch(() => undefined);
    this.creds = undefined;
    this.challenge = '';
    sessionStorage.removeItem(STORE_KEY);
    this.setState('login');
  }

  /** The challenge answer for the WebSocket login, after the HTTP API gave a challenge. */
  wsAuth(challenge?: string): Record<string, string> | undefined {
    if (challenge) this.challenge = challenge;
    return this.authBlock();
  }
}

export type FeedMessage = ['log', [number, string, string, string?, ...unknown[]]] | ['stream', [string, string, number, number, number, string[]]] | ['access', unknown[]];

/**
 * The WebSocket feed with reconnects (1 s, doubling to 5 s). `query()` is asked at each connect,
 * so a reconnect asks only for what came after the last message (`logs=since:T`).
 */
export class Feed {
  private ws: WebSocket | undefined;
  private delay = 1000;
  private closed = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  connected = false;

  constructor(
    private readonly api: Api,
    private readonly query: () => string,
    private readonly onMessage: (m: FeedMessage) => void,
    private readonly onConnected?: (up: boolean) => void,
  ) {
    this.open();
  }

  private open(): void {
    const url = new URL(`ws?${this.query()}`, this.api.base);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (e) => {
      let m: unknown;
      try {
        m = JSON.parse(String(e.data));
      } catch {
        return;
      }
      if (!Array.isArray(m)) return;
      if (m[0] === 'auth') {
        const v = m[1] as boolean | AuthBlock | string;
        if (v === true || (typeof v === 'object' && v.status === 'OK')) {
          this.delay = 1000;
          this.connected = true;
          this.onConnected?.(true);
          return;
        }
        const auth = this.api.wsAuth(typeof v === 'object' ? v.challenge : undefined);
        // with no challenge known yet, an empty password asks for one
        if (auth && (v === false || (typeof v === 'object' && v.status === 'CHALL'))) ws.send(JSON.stringify(['auth', auth]));
        return;
      }
      this.onMessage(m as FeedMessage);
    };
    ws.onclose = () => {
      if (this.connected) this.onConnected?.(false);
      this.connected = false;
      if (this.closed) return;
      // a dropped feed is often the first sign of a controller restart: ask the API at once
      void this.api.probeNow();
      this.timer = setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close();
  }
}
