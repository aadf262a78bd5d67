// Viewer connections over HTTP (CONN_OPEN, CONN_PLAY, CONN_CLOSE; reference §4.2). MistServer
// runs one output process per TCP connection: CONN_OPEN when it starts serving a stream,
// CONN_PLAY once it has attached, CONN_CLOSE when the connection ends; the keep-alive requests
// of an HLS or CMAF player on one connection are one connection, not one per segment. Haze does
// the same: the first media request of a TCP connection for a stream and connector opens the
// connection, later ones on it only add bytes, a request for another stream or connector closes
// it and opens the next, and the socket's close ends it. A progressive response owns its socket,
// so there one request is one connection. The statistics count the socket the same way
// (track()), whatever is configured: its bytes are the socket's counters from the first request
// or from the switch to another stream or connector.

import type { Socket } from 'node:net';
import type { MediaRequest } from '../protocols/http/media-server.js';
import type { PlayConnection } from './play-access.js';
import type { ConnectionBytes, TrackedConnection } from '../stats/tracker.js';

/** PLAY_REWRITE answers one connection keeps (a player asks for one or two names). */
const MAX_REWRITES_PER_CONNECTION = 16;

/** The open viewer connection of one socket and what it decided so far. */
export class HttpConnection {
  /** `stream\nconnector` the open connection serves ('' when none). */
  private key = '';
  private conn: PlayConnection | undefined;
  /** Serialises the requests of one socket (HTTP pipelining) while a connection opens. */
  private queue: Promise<unknown> = Promise.resolve();
  /** PLAY_REWRITE answers (undefined stored as null: refused). */
  readonly rewrites = new Map<string, string | null>();
  private closed = false;
  /** The statistics' connection of the socket: `stream\nconnector` it counts for. */
  private trackKey = '';
  private tracked: TrackedConnection | undefined;

  constructor(private readonly socket: Socket) {
    socket.once('close', () => this.close());
  }

  /** Runs `fn` after the earlier requests of this socket finished their own step. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  rememberRewrite(asked: string, answer: string | undefined): void {
    if (this.rewrites.size >= MAX_REWRITES_PER_CONNECTION) this.rewrites.delete(this.rewrites.keys().next().value!);
    this.rewrites.set(asked, answer ?? null);
  }

  /** The open connection when it serves `stream` and `connector`. */
  current(stream: string, connector: string): PlayConnection | undefined {
    return this.key === `${stream}\n${connector}` ? this.conn : undefined;
  }

  /** Makes `conn` the socket's connection (the previous one, for another stream, is closed). */
  use(stream: string, connector: string, conn: PlayConnection): void {
    this.conn?.close();
    if (this.closed) {
      conn.close();
      return;
    }
    this.key = `${stream}\n${connector}`;
    this.conn = conn;
  }

  /**
   * Counts the socket to `stream` and `connector` in the statistics from now on (the first
   * request of the socket from its start); the session id it counts to.
   */
  track(stream: string, connector: string, open: (bytes: () => ConnectionBytes) => TrackedConnection): string {
    const key = `${stream}\n${connector}`;
    if (this.tracked && this.trackKey === key) return this.tracked.sessionId;
    this.tracked?.end();
    const fresh = this.tracked === undefined;
    const baseDown = fresh ? 0 : this.socket.bytesWritten;
    const baseUp = fresh ? 0 : this.socket.bytesRead;
    this.trackKey = key;
    this.tracked = open(() => ({ down: this.socket.bytesWritten - baseDown, up: this.socket.bytesRead - baseUp }));
    if (this.closed) this.tracked.end();
    return this.tracked.sessionId;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tracked?.end();
    this.conn?.close();
    this.conn = undefined;
    this.key = '';
  }
}

const connectionOfSocket = new WeakMap<Socket, HttpConnection>();

/** The connection state of the socket `req` came on; undefined when the socket is unknown. */
export function httpConnectionOf(req: MediaRequest): HttpConnection | undefined {
  const socket = req.socket;
  if (socket.destroyed) return undefined;
  let c = connectionOfSocket.get(socket);
  if (!c) {
    c = new HttpConnection(socket);
    connectionOfSocket.set(socket, c);
  }
  return c;
}

const playOfRequest = new WeakMap<MediaRequest, PlayConnection>();

/** Marks `req` as a request of `conn`: the output's attach reports to it (playAttached). */
export function setRequestConnection(req: MediaRequest, conn: PlayConnection): void {
  playOfRequest.set(req, conn);
}

const trackingOfRequest = new WeakMap<MediaRequest, () => void>();

/** What starts counting `req`'s socket in the statistics once an output attaches it. */
export function setRequestTracking(req: MediaRequest, start: () => void): void {
  trackingOfRequest.set(req, start);
}

/**
 * An output attached the request to `stream` (its hub is online, its file open): its socket
 * counts in the statistics from now on, and CONN_PLAY fires, once per connection and stream.
 * False: the viewer must get nothing. True at once when the request has no connection (nothing
 * configured).
 */
export function playAttached(req: MediaRequest, stream: string): boolean | Promise<boolean> {
  const track = trackingOfRequest.get(req);
  if (track) {
    trackingOfRequest.delete(req);
    track();
  }
  const p = playOfRequest.get(req);
  return p ? p.play(stream) : true;
}

/** MistServer's request URL: `http://HOST/PATH?QUERY` as the client asked (before any rewrite). */
export function requestUrlOf(req: MediaRequest): string {
  const query = req.query.toString();
  const host = typeof req.headers.host === 'string' && req.headers.host ? req.headers.host : 'localhost';
  return `http://${host}${encodeURI(req.path)}${query ? `?${query}` : ''}`;
}
