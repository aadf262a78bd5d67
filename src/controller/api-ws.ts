// The WebSocket API on the API port (reference/mistserver.md §3.5):
// `ws://host:4242/ws?logs=N|since:T&accs=N|since:T&streams=1`. On open the server sends
// `["auth", true|false]`; an unauthorised client has 10 s to send
// `["auth", {"username":..,"password":..}]` (the HTTP API's challenge answer), else it gets
// `["auth","Too slow, sorry"]` and is closed. Once authorised it gets the history it asked for
// (last N entries, or those with time >= T unix seconds), then every new `["log", ...]`,
// `["access", ...]` and `["stream", ...]` as host.feed emits them. As in MistServer nothing is
// sent while more than 10 KB waits on the socket: live messages are dropped (and counted), the
// history waits for `drain`. Frames from the client after the login are ignored, except ping
// (answered) and close.

import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { errorText, isHazeError } from '../util/errors.js';
import { log } from '../util/log.js';
import { CLOSE, WebSocketError, WebSocketFrameReader, checkUpgradeRequest, closeFrame, pongFrame, refusalResponse, textFrame, upgradeResponse, WS_VERSION, type WsMessage } from '../protocols/http/websocket.js';
import type { ApiHost, LiveFeed } from './api.js';
import { authorizeHeader, authorizeRequest, createAuthState, isLocalRequest, normalizeAddress, type AuthState } from './auth.js';
import type { AccessEntry, LiveFeedEvents, LogEntry, StreamStateEntry } from '../stats/snapshot.js';

export interface ApiWebSocketOptions {
  /** how long an unauthorised client has to log in (ms) */
  authTimeoutMs?: number;
  /** WebSocket clients at once per host; more are answered 503 before the upgrade */
  maxClients?: number;
  /** nothing is sent while more than this many bytes wait on the socket (MistServer: 10 KB) */
  maxQueuedBytes?: number;
}

export const API_WS_PATH = '/ws';
const DEFAULTS: Required<ApiWebSocketOptions> = { authTimeoutMs: 10_000, maxClients: 64, maxQueuedBytes: 10 * 1024 };
/** Largest frame or message a client may send: a login is a few hundred bytes. */
const MAX_CLIENT_MESSAGE_BYTES = 64 * 1024;
/** Login attempts per connection before it is closed. */
const MAX_AUTH_ATTEMPTS = 5;
/** A closing connection whose peer does not finish the close handshake is destroyed after this. */
const CLOSE_GRACE_MS = 5000;
const TOO_SLOW = 'Too slow, sorry';

const wlog = log.child({ proc: 'api-ws' });

/** The open connections of each host (no module-wide state: tests run several hosts). */
const connections = new WeakMap<ApiHost, Set<ApiWsConnection>>();

type FeedKind = keyof LiveFeedEvents;
type FeedMessage = { [K in FeedKind]: [K, LiveFeedEvents[K]] }[FeedKind];

/** `N` = the last N entries, `since:T` = entries with time >= T; absent = no subscription. */
export type HistorySpec = { last: number } | { since: number };

/** MistServer's reading of `logs=`/`accs=`: any non-empty value subscribes; unparsable numbers count as 0. */
export function parseHistorySpec(value: string | null): HistorySpec | undefined {
  if (value === null || value === '') return undefined;
  if (value.startsWith('since:')) {
    const t = Number(value.slice(6));
    return { since: Number.isFinite(t) ? t : 0 };
  }
  const n = Math.floor(Number(value));
  return { last: Number.isFinite(n) && n > 0 ? n : 0 };
}

/** The entries of `list` (oldest first, time in element 0) that `spec` asks for. */
export function selectHistory<T extends readonly [number, ...unknown[]]>(list: readonly T[], spec: HistorySpec): T[] {
  if ('last' in spec) return spec.last === 0 ? [] : list.slice(-spec.last);
  return list.filter((e) => e[0] >= spec.since);
}

interface Subscriptions {
  logs: HistorySpec | undefined;
  accs: HistorySpec | undefined;
  streams: boolean;
}

function writeRefusal(socket: Duplex, status: number, message: string, headers?: Record<string, string>): void {
  socket.once('finish', () => socket.destroy());
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  socket.end(refusalResponse(status, message, headers));
}

/**
 * The http.Server 'upgrade' handler of the API port: `/ws` becomes a WebSocket API connection;
 * any other path, a malformed handshake or a full house is refused with an HTTP error.
 */
export function handleApiWebSocket(req: http.IncomingMessage, socket: Duplex, head: Buffer, host: ApiHost, opts: ApiWebSocketOptions = {}): void {
  socket.on('error', (err) => wlog.debug(`WebSocket socket error: ${errorText(err)}`));
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://localhost');
  } catch {
    writeRefusal(socket, 400, 'malformed request URL');
    return;
  }
  const p = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
  if (p !== API_WS_PATH) {
    writeRefusal(socket, 404, `not found: ${p.slice(0, 200)} (the WebSocket API is at ${API_WS_PATH})`);
    return;
  }
  let key: string;
  try {
    key = checkUpgradeRequest(req);
  } catch (err) {
    const status = isHazeError(err) && err.status !== undefined ? err.status : 400;
    writeRefusal(socket, status, isHazeError(err) ? err.message : 'bad WebSocket handshake', status === 426 ? { 'Sec-WebSocket-Version': WS_VERSION } : undefined);
    return;
  }
  const o = { ...DEFAULTS, ...opts };
  let open = connections.get(host);
  if (!open) {
    open = new Set();
    connections.set(host, open);
  }
  if (open.size >= o.maxClients) {
    wlog.warn(`refused a WebSocket API client: ${o.maxClients} already connected`);
    writeRefusal(socket, 503, `too many WebSocket API clients (at most ${o.maxClients})`);
    return;
  }
  const q = url.searchParams;
  const streams = q.get('streams');
  const subs: Subscriptions = {
    logs: parseHistorySpec(q.get('logs')),
    accs: parseHistorySpec(q.get('accs')),
    // MistServer subscribes on any non-empty value; 0 and false read as "no" here
    streams: streams !== null && streams !== '' && streams !== '0' && streams !== 'false',
  };
  const conn = new ApiWsConnection(host, req, socket, subs, o, open);
  open.add(conn);
  conn.start(key, head);
}

/** One WebSocket API client; owns its socket and its feed subscriptions. */
class ApiWsConnection {
  private readonly peer: string;
  private readonly reader = new WebSocketFrameReader({ maxPayloadBytes: MAX_CLIENT_MESSAGE_BYTES });
  private readonly auth: AuthState = createAuthState();
  private authorized = false;
  private authAttempts = 0;
  private authTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private unsubscribe: (() => void)[] = [];
  /** history not yet sent (sent as the socket drains); undefined once all is out */
  private history: FeedMessage[] | undefined;
  private historyPos = 0;
  private dropped = 0;

  constructor(
    private readonly host: ApiHost,
    private readonly req: http.IncomingMessage,
    private readonly socket: Duplex,
    private readonly subs: Subscriptions,
    private readonly opts: Required<ApiWebSocketOptions>,
    private readonly registry: Set<ApiWsConnection>,
  ) {
    this.peer = normalizeAddress(req.socket.remoteAddress);
  }

  start(key: string, head: Buffer): void {
    const s = this.socket;
    s.on('close', () => this.cleanup());
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('drain', () => this.pump());
    // idle clients are fine: no timeout, but TCP keep-alive finds vanished peers
    this.req.socket.setTimeout(0);
    this.req.socket.setNoDelay(true);
    this.req.socket.setKeepAlive(true, 30_000);
    s.write(upgradeResponse(key));
    wlog.debug(`WebSocket API client from ${this.peer}`);

    this.authorized = this.initialAuthorization();
    this.sendJson(['auth', this.authorized]);
    if (!this.host.feed) {
      this.close(CLOSE.internalError, 'no live feed on this server');
      return;
    }
    if (this.authorized) this.subscribe(this.host.feed);
    else {
      this.authTimer = setTimeout(() => {
        this.authTimer = undefined;
        if (this.authorized || this.closing) return;
        this.sendJson(['auth', TOO_SLOW]);
        this.close(CLOSE.policyViolation, 'no login in time');
      }, this.opts.authTimeoutMs);
      this.authTimer.unref();
    }
    if (head.length > 0) this.onData(head);
  }

  /** The HTTP API's rule: local without proxy headers, or an `Authorization: json ...` header that logs in. */
  private initialAuthorization(): boolean {
    const headers = this.req.headers;
    if (isLocalRequest(this.peer, headers)) return true;
    const authz = headers['authorization'];
    if (typeof authz !== 'string') return false;
    return authorizeHeader(authz, { peer: this.peer, headers, auth: this.auth }, this.host.config)?.ok === true;
  }

  private onData(chunk: Buffer): void {
    let messages: WsMessage[];
    try {
      messages = this.reader.push(chunk);
    } catch (err) {
      const code = err instanceof WebSocketError ? err.closeCode : CLOSE.protocolError;
      wlog.debug(`WebSocket API client ${this.peer}: ${errorText(err)}`);
      this.close(code, isHazeError(err) ? err.message : 'protocol error');
      return;
    }
    for (const m of messages) {
      // once our close is out only the peer's close frame matters (and needs no answer)
      if (this.closing) return;
      switch (m.type) {
        case 'ping':
          // a client pinging without reading gets no answers queued past the bound
          if (this.socket.writableLength <= this.opts.maxQueuedBytes) this.socket.write(pongFrame(m.data));
          break;
        case 'close':
          this.close(m.code ?? CLOSE.normal, '');
          return;
        case 'text':
          if (!this.authorized) this.onLogin(m.text);
          break;
        default: // binary, pong: ignored
      }
    }
  }

  /** A message before the login: only `["auth", {...}]` counts. */
  private onLogin(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (!Array.isArray(msg) || msg[0] !== 'auth') return;
    const feed = this.host.feed;
    if (!feed) return;
    this.authAttempts++;
    let result;
    try {
      result = authorizeRequest(msg[1], { peer: this.peer, headers: this.req.headers, auth: this.auth }, this.host.config);
    } catch (err) {
      wlog.error(`WebSocket API login failed: ${errorText(err)}`);
      this.close(CLOSE.internalError, 'internal error');
      return;
    }
    this.sendJson(['auth', result.block]);
    if (result.authorized) {
      this.authorized = true;
      if (this.authTimer) clearTimeout(this.authTimer);
      this.authTimer = undefined;
      this.subscribe(feed);
    } else if (this.authAttempts >= MAX_AUTH_ATTEMPTS) {
      this.close(CLOSE.policyViolation, 'too many login attempts');
    }
  }

  /** History first (in the order logs, accesses, streams), then live events. */
  private subscribe(feed: LiveFeed): void {
    const history: FeedMessage[] = [];
    const { logs, accs, streams } = this.subs;
    if (logs) {
      for (const e of selectHistory<LogEntry>(feed.logs(), logs)) history.push(['log', e]);
      this.unsubscribe.push(feed.events.on('log', (e) => this.onLive(['log', e])));
    }
    if (accs) {
      for (const e of selectHistory<AccessEntry>(feed.accesses(), accs)) history.push(['access', e]);
      this.unsubscribe.push(feed.events.on('access', (e) => this.onLive(['access', e])));
    }
    if (streams) {
      for (const e of feed.streamStates() as StreamStateEntry[]) history.push(['stream', e]);
      this.unsubscribe.push(feed.events.on('stream', (e) => this.onLive(['stream', e])));
    }
    this.history = history;
    this.historyPos = 0;
    this.pump();
  }

  /** Sends history while the socket takes it; the rest waits for 'drain'. */
  private pump(): void {
    const h = this.history;
    if (!h || this.closing) return;
    while (this.historyPos < h.length && this.socket.writableLength <= this.opts.maxQueuedBytes) this.sendJson(h[this.historyPos++]!);
    if (this.historyPos >= h.length) this.history = undefined;
  }

  private onLive(msg: FeedMessage): void {
    if (this.closing) return;
    if (this.history || this.socket.writableLength > this.opts.maxQueuedBytes) {
      if (this.dropped++ === 0) {
        // logged outside the emit: the log line itself is a feed event
        setImmediate(() => wlog.warn(`WebSocket API client ${this.peer} is not reading: dropping messages while ${this.opts.maxQueuedBytes} bytes wait`));
      }
      return;
    }
    this.sendJson(msg);
  }

  private sendJson(msg: unknown): void {
    if (this.closing) return;
    let text: string;
    try {
      text = JSON.stringify(msg);
    } catch (err) {
      wlog.error(`cannot serialise a WebSocket API message: ${errorText(err)}`);
      return;
    }
    this.socket.write(textFrame(text));
  }

  /** Sends a close frame and ends the socket (once); a peer that lingers is destroyed. */
  private close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.stopFeed();
    if (!this.socket.writableEnded && !this.socket.destroyed) {
      this.socket.write(closeFrame(code, reason));
      this.socket.end();
    }
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    this.closeTimer.unref();
  }

  private stopFeed(): void {
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
    this.history = undefined;
    if (this.authTimer) clearTimeout(this.authTimer);
    this.authTimer = undefined;
  }

  private cleanup(): void {
    this.closing = true;
    this.stopFeed();
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.registry.delete(this);
    if (this.dropped > 0) wlog.info(`WebSocket API client ${this.peer} closed; ${this.dropped} messages dropped while it did not read`);
    else wlog.debug(`WebSocket API client ${this.peer} closed`);
  }
}
