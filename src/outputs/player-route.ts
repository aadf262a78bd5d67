// The embeddable player's files, MistServer's URLs (reference §6.3): `/player.js` (the
// meta-player, src/web/player/), `/player/{hls,dash,mpegts}.js` (the playback libraries it loads
// on demand, from their npm packages), `/embed_NAME.js` (the player that embeds NAME where
// the script tag is) and `/NAME.html` (a page that plays NAME and nothing else). Files are
// read once, gzipped once and answered from memory with an ETag.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { MediaRequest, MediaResponder, MediaRoute } from '../protocols/http/media-server.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { scriptSafe } from './stream-info.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** Where each served script comes from (resolved on first request, so a missing package is a 500 there, not a crash). */
const SCRIPT_FILES: Record<string, () => string> = {
  '/player.js': () => path.resolve(here, '../../web/player/player.js'),
  '/player/hls.js': () => require.resolve('hls.js/dist/hls.min.js'),
  // the package exports only its full bundle; the media player alone is the file next to it
  '/player/dash.js': () => path.join(path.dirname(require.resolve('dashjs')), 'dash.mediaplayer.min.js'),
  '/player/mpegts.js': () => require.resolve('mpegts.js'),
};

interface Asset {
  body: Buffer;
  gzip: Buffer;
  etag: string;
}

function makeAsset(body: Buffer): Asset {
  return { body, gzip: gzipSync(body), etag: `"${createHash('sha1').update(body).digest('base64url')}"` };
}

const assets = new Map<string, Asset>();

function scriptAsset(urlPath: string): Asset {
  let asset = assets.get(urlPath);
  if (!asset) assets.set(urlPath, (asset = makeAsset(fs.readFileSync(SCRIPT_FILES[urlPath]!()))));
  return asset;
}

const embedAssets = new Map<string, Asset>();
const MAX_EMBED_ASSETS = 1000;

/** player.js followed by the call that embeds `name` where the script tag stands (or in the element with that id). */
function embedAsset(name: string): Asset {
  let asset = embedAssets.get(name);
  if (!asset) {
    const call = `\nwindow.mistPlay(${jsString(name)}, { target: document.getElementById(${jsString(name)}) || undefined });\n`;
    asset = makeAsset(Buffer.concat([scriptAsset('/player.js').body, Buffer.from(call)]));
    if (embedAssets.size >= MAX_EMBED_ASSETS) embedAssets.delete(embedAssets.keys().next().value!);
    embedAssets.set(name, asset);
  }
  return asset;
}

/** A JS string literal that is also safe inside an HTML <script> element. */
function jsString(s: string): string {
  return scriptSafe(JSON.stringify(s));
}

function htmlText(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A page that plays `name` full-window; without JavaScript, the native HLS or MP4 URL. */
export function playerPage(name: string): string {
  const title = htmlText(name);
  const urlName = htmlText(encodeURIComponent(name).replace(/%2B/g, '+'));
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
<style>html,body{margin:0;height:100%;background:#000;color:#eee;font-family:sans-serif}#haze-player{width:100%;height:100%}</style>
</head>
<body>
<div id="haze-player"><noscript><video controls autoplay playsinline src="hls/${urlName}/index.m3u8" style="width:100%;height:100%"><a href="${urlName}.mp4">${title}.mp4</a></video></noscript></div>
<script src="player.js"></script>
<script>window.mistPlay(${jsString(name)}, Object.assign({ target: document.getElementById('haze-player') }, window.hazeOptionsFromQuery(location.search)));</script>
</body>
</html>
`;
}

function sendAsset(req: MediaRequest, res: MediaResponder, asset: Asset, contentType: string, cacheControl: string): void {
  const headers: Record<string, string> = { 'Content-Type': contentType, 'Cache-Control': cacheControl, ETag: asset.etag, Vary: 'Accept-Encoding' };
  if (req.headers['if-none-match'] === asset.etag) {
    res.send(304, headers, '');
    return;
  }
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''));
  res.send(200, gzip ? { ...headers, 'Content-Encoding': 'gzip' } : headers, gzip ? asset.gzip : asset.body);
}

export interface PlayerRouteDeps {
  isConfigured(name: string): boolean;
}

const JS = 'text/javascript; charset=utf-8';
/** Scripts change only with an upgrade; the ETag makes revalidation cheap. */
const SCRIPT_CACHE = 'public, max-age=300';

export function playerRoute(deps: PlayerRouteDeps): MediaRoute {
  return (req, res) => {
    if (req.path === '/favicon.ico') {
      // browsers ask for it with every player page; nothing to show, nothing to log
      res.send(204, { 'Cache-Control': 'public, max-age=86400' }, '');
      return true;
    }
    if (SCRIPT_FILES[req.path]) {
      sendAsset(req, res, scriptAsset(req.path), JS, SCRIPT_CACHE);
      return true;
    }
    const m = /^\/(?:embed_([^/]+)\.js|([^/]+)\.html)$/.exec(req.path);
    if (!m) return false;
    const raw = m[1] ?? m[2]!;
    const name = sanitizeStreamName(raw);
    if (!name || !deps.isConfigured(name)) {
      res.send(404, { 'Content-Type': 'text/plain; charset=utf-8' }, `Stream not found: ${JSON.stringify(raw)}\n`);
      return true;
    }
    if (m[1] !== undefined) sendAsset(req, res, embedAsset(name), JS, SCRIPT_CACHE);
    else res.send(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache' }, playerPage(name));
    return true;
  };
}
