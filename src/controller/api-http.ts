// HTTP transport of the JSON API (reference/mistserver.md §3.1, DESIGN §5): the request JSON
// comes from the body only with `Content-Type: application/json`, otherwise from the `command`
// variable of the query string or of a urlencoded/multipart body. Answers are
// `text/javascript`, JSON + "\n\n" (JSONP with `callback`/`jsonp`), with CORS headers.
// `/api2` implies `minimal`. Any other GET is the web UI (ui-files.ts). Authorization is
// remembered per TCP connection (per socket).

import type http from 'node:http';
import { errorText } from '../util/errors.js';
import { log } from '../util/log.js';
import { handleApiCommand, type ApiHost, type ApiRequestContext } from './api.js';
import { authorizeHeader, createAuthState, hasForwardHeaders, isLocalRequest, normalizeAddress, type AuthState } from './auth.js';
import { isPlainObject } from './default-config.js';
import { PROMETHEUS_TEXT_TYPE, prometheusJson, prometheusText } from '../stats/prometheus.js';
import { serveUi } from './ui-files.js';

/** Largest request body accepted; an API command is a few kilobytes. */
export const MAX_API_BODY_BYTES = 1024 * 1024;
/** Past this much of an over-large body the connection is dropped instead of drained. */
const MAX_DISCARD_BYTES = 16 * 1024 * 1024;
const MAX_CALLBACK_CHARS = 128;
const CALLBACK_RE = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*$/;

const hlog = log.child({ proc: 'api-http' });

const CORS_HEADERS: Record<string, string> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, HEAD, OPTIONS',
  'Access-Control-Allow-Headers': 'Authorization, Content-Type, X-Requested-With',
  'Access-Control-Expose-Headers': 'WWW-Authenticate',
  'Access-Control-Max-Age': '600',
};

type Vars = { get(name: string): string | null | undefined };

interface ParsedBody {
  json?: string;
  vars?: Vars;
}

class HttpProblem {
  constructor(
    readonly status: number,
    readonly message: string,
    readonly close = false,
  ) {}
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads the body up to MAX_API_BODY_BYTES; an over-large one is a 413 (and drained or dropped). */
function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(header(req, 'content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > MAX_DISCARD_BYTES) {
      // not worth draining: answer at once; the connection closes after the answer (see send)
      reject(new HttpProblem(413, `request body too large (limit ${MAX_API_BODY_BYTES} bytes)`, true));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = Number.isFinite(declared) && declared > MAX_API_BODY_BYTES;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DISCARD_BYTES) {
        req.destroy();
        return;
      }
      if (size > MAX_API_BODY_BYTES) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () => {
      if (tooLarge) reject(new HttpProblem(413, `request body too large (limit ${MAX_API_BODY_BYTES} bytes)`, true));
      else resolve(Buffer.concat(chunks, size));
    });
    req.on('error', (err) => reject(err));
    req.on('close', () => {
      if (!req.complete) reject(new HttpProblem(400, 'request body incomplete', true));
    });
  });
}

function contentTypeParts(req: http.IncomingMessage): { type: string; params: Map<string, string> } {
  const raw = header(req, 'content-type') ?? '';
  const [type = '', ...rest] = raw.split(';');
  const params = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    let v = p.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    params.set(p.slice(0, eq).trim().toLowerCase(), v);
  }
  return { type: type.trim().toLowerCase(), params };
}

/** The named fields of a multipart/form-data body (RFC 7578); files are skipped. */
export function parseMultipartFields(body: Buffer, boundary: string): Map<string, string> {
  const fields = new Map<string, string>();
  if (!boundary || boundary.length > 200) return fields;
  const delim = Buffer.from(`--${boundary}`, 'latin1');
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    let start = pos + delim.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) break; // closing delimiter
    if (body[start] === 0x0d && body[start + 1] === 0x0a) start += 2;
    const next = body.indexOf(delim, start);
    if (next < 0) break;
    const part = body.subarray(start, next);
    const headEnd = part.indexOf('\r\n\r\n');
    if (headEnd >= 0) {
      const head = part.subarray(0, headEnd).toString('latin1');
      let content = part.subarray(headEnd + 4);
      if (content.length >= 2 && content[content.length - 2] === 0x0d && content[content.length - 1] === 0x0a) content = content.subarray(0, content.length - 2);
      const disp = /^content-disposition:\s*form-data\s*;(.*)$/im.exec(head);
      const name = disp ? /(?:^|;)\s*name="([^"]*)"/i.exec(disp[1]!) : null;
      const isFile = disp ? /(?:^|;)\s*filename=/i.test(disp[1]!) : false;
      if (name && !isFile && !fields.has(name[1]!)) fields.set(name[1]!, content.toString('utf8'));
    }
    pos = next;
  }
  return fields;
}

async function parseBody(req: http.IncomingMessage): Promise<ParsedBody> {
  if (req.method === 'GET' || req.method === 'HEAD') return {};
  const body = await readBody(req);
  const { type, params } = contentTypeParts(req);
  if (type === 'application/json') return { json: body.toString('utf8') };
  if (type === 'application/x-www-form-urlencoded') return { vars: new URLSearchParams(body.toString('utf8')) };
  if (type === 'multipart/form-data') return { vars: parseMultipartFields(body, params.get('boundary') ?? '') };
  return {};
}

function parseCommand(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new HttpProblem(400, `malformed JSON in the API command: ${errorText(err)}`);
  }
  if (!isPlainObject(value)) throw new HttpProblem(400, 'the API command must be a JSON object');
  return value;
}

interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  callback?: string | undefined;
  close?: boolean;
}

function send(req: http.IncomingMessage, res: http.ServerResponse, a: Answer): void {
  if (res.destroyed || req.socket.destroyed) return;
  let json: string;
  try {
    json = JSON.stringify(a.body);
  } catch (err) {
    hlog.error(`cannot serialise an API answer: ${errorText(err)}`);
    a = { status: 500, body: { error: 'internal error', LTS: 1 } };
    json = JSON.stringify(a.body);
  }
  const text = a.callback ? `${a.callback}(${json});\n\n` : `${json}\n\n`;
  const body = Buffer.from(text, 'utf8');
  res.writeHead(a.status, {
    ...CORS_HEADERS,
    'Content-Type': 'text/javascript; charset=utf-8',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...(a.close ? { Connection: 'close' } : {}),
    ...a.headers,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  // a body left unread (too large to drain) must not be parsed as the next request
  if (a.close && !req.complete) res.once('finish', () => req.socket.destroy());
}

/**
 * `/<prometheus>` (exposition text) and `/<prometheus>.json` (JSON, JSONP with `callback`/`jsonp`)
 * when `config.prometheus` is set (reference §7.3). No authorization: knowing the path is the
 * secret, as in MistServer. False when the request is not for them (the API answers it).
 */
function serveMetrics(req: http.IncomingMessage, res: http.ServerResponse, url: URL, host: ApiHost): boolean {
  const secret = host.config.get().config.prometheus;
  if (typeof secret !== 'string' || secret === '' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
  let p: string;
  try {
    p = decodeURIComponent(url.pathname);
  } catch {
    return false;
  }
  const asJson = p === `/${secret}.json`;
  if (!asJson && p !== `/${secret}`) return false;
  const reply = (status: number, type: string, text: string): void => {
    const body = Buffer.from(text, 'utf8');
    res.writeHead(status, { ...CORS_HEADERS, 'Content-Type': type, 'Content-Length': String(body.length), 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  if (!host.metrics) {
    reply(503, 'text/plain; charset=utf-8', 'statistics are not available yet\n');
    return true;
  }
  if (!asJson) {
    reply(200, PROMETHEUS_TEXT_TYPE, prometheusText(host.metrics()));
    return true;
  }
  const cb = url.searchParams.get('callback') ?? url.searchParams.get('jsonp') ?? '';
  if (cb !== '' && (cb.length > MAX_CALLBACK_CHARS || !CALLBACK_RE.test(cb))) {
    reply(400, 'text/plain; charset=utf-8', 'invalid JSONP callback name\n');
    return true;
  }
  const json = JSON.stringify(prometheusJson(host.metrics()));
  if (cb) reply(200, 'text/javascript; charset=utf-8', `${cb}(${json});\n`);
  else reply(200, 'application/json; charset=utf-8', `${json}\n`);
  return true;
}

/**
 * The request handler for the API port: `/api`, `/api2` (minimal), and `/` with a command; the
 * Prometheus paths (serveMetrics); any other GET is the web UI (ui-files.ts). Other methods on
 * other paths are a 404 JSON error. The controller routes `/ws` before calling this.
 */
export function createApiRequestHandler(host: ApiHost): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const states = new WeakMap<object, AuthState>();

  /** The connection's state; a fresh one for proxied requests (see auth.ts AuthRequest.auth). */
  const stateFor = (req: http.IncomingMessage): AuthState => {
    if (hasForwardHeaders(req.headers)) return createAuthState();
    let s = states.get(req.socket);
    if (!s) {
      s = createAuthState();
      states.set(req.socket, s);
    }
    return s;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res.writeHead(204, { ...CORS_HEADERS, 'Content-Length': '0' });
      res.end();
      return;
    }
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') {
      send(req, res, { status: 405, body: { error: `method ${method.slice(0, 20)} not allowed`, LTS: 1 }, headers: { Allow: 'GET, POST, HEAD, OPTIONS' } });
      return;
    }
    let url: URL;
    try {
      const raw = req.url ?? '/';
      url = raw.startsWith('/') ? new URL(`http://localhost${raw}`) : new URL(raw);
    } catch {
      send(req, res, { status: 400, body: { error: 'malformed request URL', LTS: 1 } });
      return;
    }
    const p = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, '') : url.pathname;
    const isApi = p === '/api' || p === '/api2' || (p === '/' && url.searchParams.has('command'));
    if (!isApi && serveMetrics(req, res, url, host)) return;
    if (!isApi && (method === 'GET' || method === 'HEAD')) {
      serveUi(req, res, url.pathname);
      return;
    }
    if (!isApi && p !== '/') {
      send(req, res, { status: 404, body: { error: `not found: ${p.slice(0, 200)} (the API is at /api and /api2)`, LTS: 1 } });
      return;
    }

    let callback: string | undefined;
    try {
      const body = await parseBody(req);
      const q = url.searchParams;
      const cb = body.vars?.get('callback') ?? body.vars?.get('jsonp') ?? q.get('callback') ?? q.get('jsonp') ?? undefined;
      if (cb !== undefined && cb !== '') {
        if (cb.length > MAX_CALLBACK_CHARS || !CALLBACK_RE.test(cb)) throw new HttpProblem(400, 'invalid JSONP callback name');
        callback = cb;
      }
      const commandText = body.json ?? body.vars?.get('command') ?? q.get('command') ?? undefined;
      const hasCommand = commandText !== undefined && commandText.trim() !== '';
      const request = hasCommand ? parseCommand(commandText) : {};
      if (p === '/api2' && !Object.hasOwn(request, 'minimal')) request['minimal'] = true;

      const peer = normalizeAddress(req.socket.remoteAddress);
      const ctx: ApiRequestContext = { peer, headers: req.headers, auth: stateFor(req) };
      const authz = header(req, 'authorization');
      if (authz !== undefined && !ctx.auth.authorized && !isLocalRequest(peer, req.headers)) {
        const r = authorizeHeader(authz, ctx, host.config);
        if (r && !r.ok) {
          send(req, res, {
            status: 403,
            body: { authorize: r.block, error: 'not authorized: wrong or missing credentials', LTS: 1 },
            headers: { 'WWW-Authenticate': `json ${JSON.stringify(r.block)}` },
            callback,
          });
          return;
        }
      }
      const answer = await handleApiCommand(request, ctx, host);
      send(req, res, { status: 200, body: answer, callback });
    } catch (err) {
      if (err instanceof HttpProblem) {
        send(req, res, { status: err.status, body: { error: err.message, LTS: 1 }, callback, close: err.close });
        return;
      }
      throw err;
    }
  };

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      hlog.error(`API request failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      if (!res.headersSent) send(req, res, { status: 500, body: { error: 'internal error', LTS: 1 }, close: true });
      else res.destroy();
    });
  };
}
