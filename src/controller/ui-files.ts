// The management UI's files on the API port: `index.html` for any page path, and the built
// modules and style sheet under `ui/` at any depth, so the UI works behind a reverse proxy that
// mounts this port under a sub-path. The files (dist/web/ui, built at `npm ci`) are read once,
// gzipped once, and answered from memory with an ETag.

import crypto from 'node:crypto';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { log } from '../util/log.js';

/** dist/web/ui, seen from dist/src/controller. */
const UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/ui');
const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
};
/** `…/ui/main.js`, `…/ui/pages/streams.js`: the last two parts name the file, whatever comes before. */
const ASSET_RE = /(?:^|\/)ui\/((?:pages\/)?[A-Za-z0-9_-]+\.(?:js|css))$/;
const SECURITY_HEADERS: Record<string, string> = {
  // the preview frames the player page of the HTTP port (another origin); the API and its
  // WebSocket are this origin
  'Content-Security-Policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; frame-src http: https:; base-uri 'self'; form-action 'self'; frame-ancestors 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
};

interface UiFile {
  body: Buffer;
  gzip: Buffer;
  etag: string;
  type: string;
}

const ulog = log.child({ proc: 'ui' });
let files: Map<string, UiFile> | undefined;

function load(): Map<string, UiFile> {
  const out = new Map<string, UiFile>();
  const walk = (dir: string, prefix: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (e.isDirectory()) walk(path.join(dir, e.name), `${prefix}${e.name}/`);
      const type = TYPES[path.extname(e.name)];
      if (!e.isFile() || !type) continue;
      const body = fs.readFileSync(path.join(dir, e.name));
      out.set(`${prefix}${e.name}`, { body, gzip: zlib.gzipSync(body, { level: 9 }), etag: `"${crypto.createHash('sha1').update(body).digest('base64url').slice(0, 20)}"`, type });
    }
  };
  walk(UI_DIR, '');
  if (!out.has('index.html')) ulog.warn(`the web UI is not built (${UI_DIR} has no index.html): run npm run build`);
  return out;
}

/** `<base href>` for a page seen at `pathname`: back to where this port's root is mounted. */
export function baseFor(pathname: string): string {
  const depth = pathname.split('/').length - 2;
  return depth > 0 ? '../'.repeat(depth) : './';
}

function reply(req: http.IncomingMessage, res: http.ServerResponse, f: UiFile, body?: Buffer): void {
  const gz = body === undefined && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  const data = body ?? (gz ? f.gzip : f.body);
  if (body === undefined && req.headers['if-none-match'] === f.etag) {
    res.writeHead(304, { ETag: f.etag, 'Cache-Control': 'no-cache' });
    res.end();
    return;
  }
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'Content-Type': f.type,
    'Content-Length': String(data.length),
    'Cache-Control': 'no-cache',
    Vary: 'Accept-Encoding',
    ...(body === undefined ? { ETag: f.etag } : {}),
    ...(gz ? { 'Content-Encoding': 'gzip' } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : data);
}

/** Answers a GET/HEAD for the UI: an asset, or the page itself for any other path. */
export function serveUi(req: http.IncomingMessage, res: http.ServerResponse, pathname: string): void {
  files ??= load();
  const asset = ASSET_RE.exec(pathname)?.[1];
  const f = asset !== undefined ? files.get(asset) : undefined;
  if (f) {
    reply(req, res, f);
    return;
  }
  const index = files.get('index.html');
  if (asset !== undefined || !index) {
    const text = index ? `not found: ${pathname.slice(0, 200)}\n` : 'The web UI is not built: run npm run build. The JSON API is at /api.\n';
    res.writeHead(index ? 404 : 503, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(req.method === 'HEAD' ? undefined : text);
    return;
  }
  // the page's relative URLs (ui/…, api, ws) must resolve to where this port is mounted
  const html = index.body.toString('utf8').replace('<base href="./">', `<base href="${baseFor(pathname)}">`);
  reply(req, res, index, Buffer.from(html, 'utf8'));
}
