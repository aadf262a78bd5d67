// The media HTTP server on port 8080 (DESIGN §5): keep-alive, HEAD, CORS, bounded request
// heads and idle timeouts, clear error bodies. Routes are given by the worker; a progressive
// media response takes the socket over (no chunked framing, the body ends when the stream
// does), so every viewer gets the feed's shared bytes written straight to its socket.

import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HazeError, isHazeError } from '../../util/errors.js';
import { log, type Logger } from '../../util/log.js';
import type { ByteSink } from '../../outputs/viewer.js';

export interface MediaRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** Client address, IPv4-mapped IPv6 written as dotted IPv4 (DESIGN §5). */
  peer: string;
  /** True for HEAD: answer headers only. */
  head: boolean;
  /** The TCP connection (viewer connections over keep-alive: outputs/http-connections.ts). */
  socket: Socket;
  /** The viewer's session token, once the access step has decided it (outputs/play.ts requestToken). */
  token?: string;
  /** The request body (POST, PATCH ...), at most `maxBytes` (HAZE_ERR_TOO_LARGE past it); absent for GET and HEAD. */
  readBody?(maxBytes: number): Promise<Buffer>;
}

export interface MediaResponder {
  /** A complete small response. */
  send(status: number, headers: Record<string, string>, body: string | Buffer): void;
  /** Starts an open-ended media body and returns the sink its bytes go to. */
  stream(headers: Record<string, string>): ByteSink;
  /**
   * A body written as it is produced, with back-pressure (VoD): of `length` bytes when known
   * (Content-Length, the connection stays open), chunked otherwise.
   */
  body(status: number, headers: Record<string, string>, length?: number): MediaBody;
  /** The connection was closed by the client (or a stream ended). */
  onClose(fn: () => void): void;
  /** A header the response will carry whatever answers it (Set-Cookie of the session token). */
  header(name: string, value: string): void;
}

export interface MediaBody {
  /** Writes; the promise resolves once the socket can take more. */
  write(bytes: Buffer): Promise<void>;
  end(): void;
  /** Cuts the body short (the media failed mid-way): the client sees the connection drop, not a complete body. */
  abort(): void;
  /** True once the client left. */
  readonly closed: boolean;
}

/** A route answers the request or returns false to pass it on. */
export type MediaRoute = (req: MediaRequest, res: MediaResponder, log: Logger) => Promise<boolean> | boolean;

/** Takes a WebSocket upgrade (the socket is its own from then on) or returns false to pass it on. */
export type MediaUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer, log: Logger) => boolean;

/** Methods with a body that routes may answer (WHIP/WHEP: POST, DELETE, PATCH); others get 405. */
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export const CORS_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, HEAD, OPTIONS, DELETE, PATCH',
  'Access-Control-Allow-Headers': '*',
  'Access-Control-Expose-Headers': '*',
};

const MAX_HEADER_BYTES = 16 * 1024;
const KEEPALIVE_MS = 60_000; // MistServer closes idle HTTP connections after 60 s (reference §6.2)

export function normalizeAddress(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

export function createMediaServer(routes: MediaRoute[], logger: Logger = log, upgrades: MediaUpgrade[] = []): http.Server {
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, keepAliveTimeout: KEEPALIVE_MS, requestTimeout: 30_000 }, (req, res) => {
    void handle(req, res, routes, logger);
  });
  if (upgrades.length > 0) {
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      try {
        for (const u of upgrades) if (u(req, socket, head, logger)) return;
      } catch (err) {
        logger.warn(`HTTP upgrade ${req.url ?? ''} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nNot found\n');
    });
  }
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    logger.debug(`HTTP client error from ${normalizeAddress(socket.remoteAddress)}: ${err.code ?? err.message}`);
    if (socket.writable && socket.bytesWritten === 0) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nBad request\n');
    } else socket.destroy();
  });
  return server;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, routes: MediaRoute[], logger: Logger): Promise<void> {
  const peer = normalizeAddress(req.socket.remoteAddress);
  const method = req.method ?? 'GET';
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://localhost');
  } catch {
    sendSimple(res, 400, 'Bad request: unparsable URL\n');
    return;
  }
  if (method === 'OPTIONS') {
    res.writeHead(204, { ...CORS_HEADERS, 'Content-Length': '0' });
    res.end();
    return;
  }
  const withBody = BODY_METHODS.has(method);
  if (method !== 'GET' && method !== 'HEAD' && !withBody) {
    sendSimple(res, 405, `Method ${method} not allowed here\n`, { Allow: 'GET, HEAD, OPTIONS' });
    return;
  }
  const request: MediaRequest = { method, path: decodePath(url.pathname), query: url.searchParams, headers: req.headers, peer, head: method === 'HEAD', socket: req.socket };
  if (withBody) request.readBody = (maxBytes) => readBody(req, maxBytes);
  const reqLog = logger.child({ proto: 'HTTP', peer });
  const responder = makeResponder(req, res, request.head);
  try {
    for (const route of routes) {
      if (await route(request, responder, reqLog)) return;
    }
    if (withBody) sendSimple(res, 405, `Method ${method} not allowed here\n`, { Allow: 'GET, HEAD, OPTIONS' });
    else sendSimple(res, 404, `Not found: ${request.path}\n`);
  } catch (err) {
    const status = isHazeError(err) ? (err.status ?? statusFor(err)) : 500;
    if (!isHazeError(err)) reqLog.error(`request ${request.path} failed: ${err instanceof Error ? err.stack : String(err)}`);
    if (!res.headersSent && !res.socket?.destroyed) {
      const extra: Record<string, string> = status === 503 ? { 'Retry-After': '5' } : {};
      sendSimple(res, status, `${isHazeError(err) ? err.message : 'Internal error'}\n`, extra, request.head);
    }
  }
}

/** A request body of at most `maxBytes`; a larger one is refused before it is all read. */
function readBody(req: http.IncomingMessage, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      reject(new HazeError('HAZE_ERR_TOO_LARGE', `a request body of ${declared} bytes (at most ${maxBytes})`, { status: 413 }));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new HazeError('HAZE_ERR_TOO_LARGE', `a request body over ${maxBytes} bytes`, { status: 413 }));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/** The HTTP status of a HazeError without a status of its own (media routes, WHIP/WHEP). */
export function statusFor(err: HazeError): number {
  switch (err.code) {
    case 'HAZE_ERR_NOT_FOUND':
      return 404;
    case 'HAZE_ERR_OFFLINE':
      return 503;
    case 'HAZE_ERR_REFUSED':
    case 'HAZE_ERR_AUTH':
      return 403;
    case 'HAZE_ERR_BUSY':
      return 409;
    case 'HAZE_ERR_INVALID_ARG':
    case 'HAZE_ERR_MALFORMED':
    case 'HAZE_ERR_UNSUPPORTED':
      return 400;
    default:
      return 500;
  }
}

function decodePath(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

export function sendSimple(res: http.ServerResponse, status: number, body: string, extra: Record<string, string> = {}, head = false): void {
  const buf = Buffer.from(body);
  res.writeHead(status, { ...CORS_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(buf.length), ...extra });
  res.end(head ? undefined : buf);
}

/**
 * A single `Range: bytes=...` (RFC 9110 §14.1.2) as inclusive offsets into a body of `size`
 * bytes; undefined to send the whole body (no header, several ranges or another unit),
 * 'unsatisfiable' for a range that starts past the end.
 */
export function byteRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    // the last N bytes
    const n = Number(m[2]);
    if (n === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  if (start >= size) return 'unsatisfiable';
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  return end < start ? undefined : { start, end };
}

function makeResponder(req: http.IncomingMessage, res: http.ServerResponse, head: boolean): MediaResponder {
  const closers: Array<() => void> = [];
  let closed = false;
  const fireClose = (): void => {
    if (closed) return;
    closed = true;
    for (const fn of closers.splice(0)) fn();
  };
  // Keep-alive sockets carry many requests: the listener goes once this response is done.
  req.socket.once('close', fireClose);
  res.once('finish', () => req.socket.off('close', fireClose));
  return {
    send(status, headers, body) {
      const buf = typeof body === 'string' ? Buffer.from(body) : body;
      // Byte ranges of complete media bodies (segments, parts, init segments, scripts).
      if (status === 200 && Buffer.isBuffer(body) && !headers['Content-Encoding']) {
        const range = byteRange(req.headers.range, buf.length);
        if (range === 'unsatisfiable') {
          res.writeHead(416, { ...CORS_HEADERS, 'Content-Range': `bytes */${buf.length}`, 'Content-Length': '0' });
          res.end();
          return;
        }
        const ranged = { ...CORS_HEADERS, 'Accept-Ranges': 'bytes', ...headers };
        if (range) {
          res.writeHead(206, { ...ranged, 'Content-Range': `bytes ${range.start}-${range.end}/${buf.length}`, 'Content-Length': String(range.end - range.start + 1) });
          res.end(head ? undefined : buf.subarray(range.start, range.end + 1));
          return;
        }
        res.writeHead(200, { ...ranged, 'Content-Length': String(buf.length) });
        res.end(head ? undefined : buf);
        return;
      }
      res.writeHead(status, { ...CORS_HEADERS, 'Content-Length': String(buf.length), ...headers });
      res.end(head ? undefined : buf);
    },
    stream(headers) {
      // No Content-Length and no chunked framing: the body is the raw media until the
      // connection closes. After the head, media goes straight to the socket (the HTTP
      // response layer would add a cork and a tick per write), the feed's shared bytes as
      // they are.
      res.removeHeader('Content-Length');
      res.removeHeader('Transfer-Encoding');
      res.writeHead(200, { ...CORS_HEADERS, Connection: 'close', 'Cache-Control': 'no-cache', ...headers });
      const socket = req.socket;
      socket.setNoDelay(true);
      socket.setTimeout(0);
      if (head) res.end();
      else res.flushHeaders();
      return {
        write: (bytes: Buffer) => !socket.destroyed && socket.write(bytes),
        writev: (chunks: readonly Buffer[]) => {
          if (socket.destroyed) return;
          socket.cork();
          for (const b of chunks) socket.write(b);
          socket.uncork();
        },
        get writableLength() {
          return socket.writableLength;
        },
        close: () => {
          if (!res.writableEnded) res.end();
          fireClose();
        },
      };
    },
    body(status, headers, length) {
      res.writeHead(status, { ...CORS_HEADERS, 'Cache-Control': 'no-cache', ...headers, ...(length === undefined ? {} : { 'Content-Length': String(length) }) });
      if (head) res.end();
      return {
        write: (bytes) => {
          if (closed || res.writableEnded || res.write(bytes)) return Promise.resolve();
          return new Promise<void>((resolve) => {
            const done = (): void => {
              res.off('drain', done);
              req.socket.off('close', done);
              resolve();
            };
            res.once('drain', done);
            req.socket.once('close', done);
          });
        },
        end: () => {
          if (!res.writableEnded) res.end();
        },
        abort: () => req.socket.destroy(),
        get closed() {
          return closed || res.writableEnded;
        },
      };
    },
    onClose(fn) {
      if (closed) fn();
      else closers.push(fn);
    },
    header(name, value) {
      // (merged by Node with the headers writeHead is given)
      if (!res.headersSent) res.setHeader(name, value);
    },
  };
}

