// Viewer connections over HTTP (CONN_OPEN, CONN_PLAY, CONN_CLOSE; reference §4.2). MistServer
// runs one output process per TCP connection: CONN_OPEN when it starts serving a stream,
// CONN_PLAY once it has attached, CONN_CLOSE when the connection ends; the keep-alive requests
// of an HLS or CMAF player on one connection are one connection, not one per segment. Haze does
// the same: the first media request of a TCP connection for a stream and connector opens the
// connection, later ones on it only add bytes, a request for another stream or connector closes
// it and opens the next, and the socket's close ends it. A progressive response owns its socket,
// so there one request is one connection. The connection's bytes are its socket's counters.

import type { Socket } from 'node:net';
import type { MediaRequest } from '../protocols/http/media-server.js';
import type { ConnBytes, PlayConnection } from './play-access.js';

/** PLAY_REWRITE answers one connection keeps (a player asks for one or two names). */
const MAX_REWRITES_PER_CONNECTION = 16;

/** The open viewer connection of one socket and what it decided so far. */
export class HttpConnection {
  /** `stream\nconnector` the open connection serves ('' when none). */
  private key = '';
  private conn: PlayConnection | undefined;
  private baseDown = 0;
  private baseUp = 0;
  /** Serialises the requests of one socket (HTTP pipelining) while a connection opens. */
  private queue: Promise<unknown> = Promise.resolve();
  /** PLAY_REWRITE answers (undefined stored as null: refused). */
  readonly rewrites = new Map<string, string | null>();
  private closed = false;

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
    // the socket's first connection counts from its start (its request included); a later one
    // from the switch (the request that switched is counted to the one before)
    if (this.key !== '') {
      this.baseDown = this.socket.bytesWritten;
      this.baseUp = this.socket.bytesRead;
    }
    this.key = `${stream}\n${connector}`;
    this.conn = conn;
  }

  /** The bytes of the open connection so far. */
  readonly bytes = (): ConnBytes => ({ down: this.socket.bytesWritten - this.baseDown, up: this.socket.bytesRead - this.baseUp });

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
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

interface PendingPlay {
  conn: PlayConnection;
  token: string;
  bytes: () => ConnBytes;
}

const playOfRequest = new WeakMap<MediaRequest, PendingPlay>();

/** Marks `req` as a request of `conn`: the output's attach reports to it (playAttached). */
export function setRequestConnection(req: MediaRequest, conn: PlayConnection, token: string, bytes: () => ConnBytes): void {
  playOfRequest.set(req, { conn, token, bytes });
}

/** Whether `req` belongs to a viewer connection (something concerns its stream). */
export function hasRequestConnection(req: MediaRequest): boolean {
  return playOfRequest.has(req);
}

/**
 * An output attached the request to `stream` (its hub is online, its file open): CONN_PLAY, once
 * per connection and stream. False: the viewer must get nothing. True at once when the request
 * has no connection (nothing configured).
 */
export function playAttached(req: MediaRequest, stream: string): boolean | Promise<boolean> {
  const p = playOfRequest.get(req);
  return p ? p.conn.play(stream, p.token, p.bytes) : true;
}

/** MistServer's request URL: `http://HOST/PATH?QUERY` as the client asked (before any rewrite). */
export function requestUrlOf(req: MediaRequest): string {
  const query = req.query.toString();
  const host = typeof req.headers.host === 'string' && req.headers.host ? req.headers.host : 'localhost';
  return `http://${host}${encodeURI(req.path)}${query ? `?${query}` : ''}`;
}
