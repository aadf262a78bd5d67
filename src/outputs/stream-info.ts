// Stream info document for the meta-player: `/json_NAME.js` (JSON) and `/info_NAME.js`
// (`mistvideo['NAME'] = {...};`), after reference/mistserver.md §6.4 (OutHTTP::getStatusJSON),
// §6.3 (URL table: player types and priorities), §2.4 (JSON form of tracks) and §6.6 (the
// player walks `source[]` in server order, so the sort below decides what plays).
//
// Pure: the caller resolves the stream (online, tracks, live/VoD) and the public base URL
// (`baseUrl` below, from Host / X-Mst-Path) and serves the result.

import { codecString } from '../media/codec-string.js';
import type { Track } from '../media/types.js';
import { dtscTrackIdentifier, DTSH_VERSION } from '../containers/dtsc/header.js';
import { FLV_CAPABILITY } from './flv-writer.js';
import { TS_CAPABILITY } from './ts-writer.js';
import { MP4_CAPABILITY, WEBM_CAPABILITY } from './container-writers.js';
import { AAC_CAPABILITY, MP3_CAPABILITY, OGG_CAPABILITY, WAV_CAPABILITY } from './audio-writers.js';

export interface OutputInfo {
  /** MistServer connector name. */
  connector: string;
  /** Player type, e.g. 'html5/video/mp4', 'flash/10'. */
  type: string;
  priority: number;
  /**
   * URL relative to the HTTP base ('/NAME.flv'), or an absolute scheme URL for other ports
   * ('rtmp://HOST:PORT/play/NAME'). An empty string means "not served here" (e.g. RTMP
   * without a listening port) and the source is left out.
   */
  url: (name: string, host: { http: string; rtmpPort?: number }) => string;
  /** Codecs this output carries per type. */
  codecs: { video?: readonly string[]; audio?: readonly string[] };
  /** At most one track per type (FLV, RTMP). */
  singlePerType?: boolean;
}

/** A stream name as a URL path segment: escaped, but the wildcard `+` kept as MistServer writes it (a literal `+` in a path). */
function pathName(name: string): string {
  return encodeURIComponent(name).replace(/%2B/g, '+');
}

/** Host name (no port) of the HTTP base, for URLs on other ports. IPv6 keeps its brackets. */
function baseHostname(http: string): string {
  try {
    return new URL(http).hostname || 'localhost';
  } catch {
    return 'localhost';
  }
}

// What Haze serves now. HLS (`/hls/NAME/index.m3u8`, 9), CMAF (`/cmaf/NAME/...`, 8), MP4
// (`/NAME.mp4`, 9; MEWS `ws/video/mp4`, 10) and WebM (`/NAME.webm`, 9) entries come with
// their outputs.
export const OUTPUTS: readonly OutputInfo[] = [
  {
    connector: 'HLS',
    type: 'html5/application/vnd.apple.mpegurl',
    priority: 9,
    url: (name) => `/hls/${pathName(name)}/index.m3u8`,
    codecs: TS_CAPABILITY.codecs,
    // one video and one audio track per variant
    singlePerType: true,
  },
  {
    connector: 'CMAF',
    type: 'html5/application/vnd.apple.mpegurl;version=7',
    priority: 8,
    url: (name) => `/cmaf/${pathName(name)}/index.m3u8`,
    codecs: MP4_CAPABILITY.codecs,
    singlePerType: true,
  },
  {
    connector: 'CMAF',
    type: 'dash/video/mp4',
    priority: 8,
    url: (name) => `/cmaf/${pathName(name)}/index.mpd`,
    codecs: MP4_CAPABILITY.codecs,
    singlePerType: true,
  },
  {
    connector: 'MP4',
    type: 'html5/video/mp4',
    priority: 9,
    url: (name) => `/${pathName(name)}.mp4`,
    codecs: MP4_CAPABILITY.codecs,
    singlePerType: true,
  },
  {
    connector: 'EBML',
    type: 'html5/video/webm',
    priority: 9,
    url: (name) => `/${pathName(name)}.webm`,
    codecs: WEBM_CAPABILITY.codecs,
    singlePerType: true,
  },
  // audio-only outputs, one track each (MistServer's types; Ogg is live here, so audio/ogg)
  ...(
    [
      ['OGG', 'html5/audio/ogg', 8, 'ogg', OGG_CAPABILITY],
      ['MP3', 'html5/audio/mp3', 8, 'mp3', MP3_CAPABILITY],
      ['AAC', 'html5/audio/aac', 8, 'aac', AAC_CAPABILITY],
      ['WAV', 'html5/audio/wav', 1, 'wav', WAV_CAPABILITY],
    ] as const
  ).map(([connector, type, priority, ext, capability]): OutputInfo => ({
    connector,
    type,
    priority,
    url: (name) => `/${pathName(name)}.${ext}`,
    codecs: capability.codecs,
    singlePerType: true,
  })),
  {
    connector: 'FLV',
    type: 'flash/7',
    priority: 5,
    url: (name) => `/${pathName(name)}.flv`,
    codecs: FLV_CAPABILITY.codecs,
    singlePerType: FLV_CAPABILITY.singlePerType,
  },
  {
    connector: 'HTTPTS',
    type: 'html5/video/mpeg',
    priority: 1,
    url: (name) => `/${pathName(name)}.ts`,
    codecs: TS_CAPABILITY.codecs,
    singlePerType: TS_CAPABILITY.singlePerType,
  },
  {
    connector: 'RTMP',
    type: 'flash/10',
    priority: 7,
    // MistServer's RTMP url_rel is `/play/$`; the application part is ignored on play.
    url: (name, host) =>
      host.rtmpPort === undefined ? '' : `rtmp://${baseHostname(host.http)}:${host.rtmpPort}/play/${pathName(name)}`,
    codecs: FLV_CAPABILITY.codecs,
    singlePerType: FLV_CAPABILITY.singlePerType,
  },
];

/** A track with the per-track timing/measurement fields the JSON reports when known. */
export type StreamInfoTrack = Track & {
  firstMs?: number;
  lastMs?: number;
  /** Peak bytes per second (`maxbps`); defaults to `bps`. */
  maxBps?: number;
  /** Whether the video track has B-frames (`bframes`); omitted when unknown. */
  bframes?: boolean;
};

export interface StreamInfoInput {
  name: string;
  tracks: readonly StreamInfoTrack[];
  live: boolean;
  online: boolean;
  /** 'Stream is offline', 'Stream is initializing' ... when not online. */
  error?: string;
  /**
   * 'http://host:8080/' (see baseUrl), or several public addresses (each gives a full set of
   * sources, reference §6.4), and the RTMP port when RTMP listens.
   */
  base: { http: string | readonly string[]; rtmpPort?: number };
  /** Live DVR window in ms (`buffer_window`); defaults to the span of the tracks' firstMs..lastMs. */
  bufferWindowMs?: number;
  /** Defaults to OUTPUTS. */
  outputs?: readonly OutputInfo[];
}

/** §2.4 JSON form of one track. */
function trackJson(t: StreamInfoTrack, idx: number): Record<string, unknown> {
  const j: Record<string, unknown> = {
    codec: t.codec,
    codecstring: codecString(t),
    type: t.type,
    idx,
    trackid: t.id,
    // MistServer stores init as a byte string and JSON-encodes it byte by byte.
    init: t.init.toString('latin1'),
    firstms: t.firstMs ?? 0,
    lastms: t.lastMs ?? 0,
    bps: t.bps,
    maxbps: t.maxBps ?? t.bps,
  };
  if (t.lang && t.lang !== 'und') j['lang'] = t.lang;
  if (t.type === 'audio') {
    j['rate'] = t.rate;
    j['size'] = t.size;
    j['channels'] = t.channels;
  } else if (t.type === 'video') {
    j['width'] = t.width;
    j['height'] = t.height;
    j['fpks'] = t.fpks;
    j['fps'] = t.fpks / 1000;
    if (t.bframes !== undefined) j['bframes'] = t.bframes;
  }
  return j;
}

interface Source {
  type: string;
  relurl: string;
  priority: number;
  simul_tracks: number;
  total_matches: number;
  url: string;
}

/**
 * simul_tracks: how many of the stream's tracks the output can play at once (one per type when
 * singlePerType); total_matches: every track whose codec it carries.
 */
function countMatches(out: OutputInfo, tracks: readonly Track[]): { simul: number; total: number } {
  let simul = 0;
  let total = 0;
  for (const type of ['video', 'audio'] as const) {
    const list = out.codecs[type];
    if (!list || list.length === 0) continue;
    let matches = 0;
    for (const t of tracks) if (t.type === type && list.includes(t.codec)) matches++;
    total += matches;
    simul += out.singlePerType ? Math.min(matches, 1) : matches;
  }
  return { simul, total };
}

/** Path (+query) of an absolute URL, MistServer's `relurl` for sources on other ports. */
function relOf(url: string): string {
  try {
    const u = new URL(url);
    return (u.pathname || '/') + u.search;
  } catch {
    return url;
  }
}

/** §6.4 order: more simultaneous tracks, then higher priority, then more matches, then URL. */
function compareSources(a: Source, b: Source): number {
  if (a.simul_tracks !== b.simul_tracks) return b.simul_tracks - a.simul_tracks;
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.total_matches !== b.total_matches) return b.total_matches - a.total_matches;
  if (a.url !== b.url) return a.url < b.url ? -1 : 1;
  return a.type < b.type ? -1 : a.type > b.type ? 1 : 0;
}

/** The `json_NAME.js` document (§6.4). */
export function streamInfo(input: StreamInfoInput): Record<string, unknown> {
  if (!input.online) return { error: input.error ?? 'Stream is offline' };
  const tracks = input.tracks;

  // Player canvas size: the largest video; 640x480 without one, 640x20 for audio only.
  let width = 0;
  let height = 0;
  let hasVideo = false;
  for (const t of tracks) {
    if (t.type !== 'video') continue;
    hasVideo = true;
    if (t.width > width) width = t.width;
    if (t.height > height) height = t.height;
  }
  if (width < 1 || height < 1) {
    width = 640;
    height = hasVideo ? 480 : 20;
  }

  const trackMap: Record<string, unknown> = {};
  tracks.forEach((t, idx) => {
    trackMap[dtscTrackIdentifier(t, idx)] = trackJson(t, idx);
  });
  const meta: Record<string, unknown> = { tracks: trackMap };
  if (input.live) meta['live'] = 1;
  else meta['vod'] = 1;
  meta['version'] = DTSH_VERSION;
  if (input.live) {
    let bufferWindowMs = input.bufferWindowMs;
    if (bufferWindowMs === undefined) {
      let first = Infinity;
      let last = -Infinity;
      for (const t of tracks) {
        first = Math.min(first, t.firstMs ?? 0);
        last = Math.max(last, t.lastMs ?? 0);
      }
      bufferWindowMs = tracks.length > 0 ? Math.max(0, last - first) : 0;
    }
    meta['buffer_window'] = bufferWindowMs;
  }

  const sources: Source[] = [];
  const seen = new Set<string>();
  for (const address of typeof input.base.http === 'string' ? [input.base.http] : input.base.http) {
    const http = address.endsWith('/') ? address : `${address}/`;
    for (const out of input.outputs ?? OUTPUTS) {
      const { simul, total } = countMatches(out, tracks);
      if (simul === 0) continue;
      const u = out.url(input.name, { http, ...(input.base.rtmpPort === undefined ? {} : { rtmpPort: input.base.rtmpPort }) });
      if (!u) continue;
      const relative = u.startsWith('/');
      const url = relative ? http + u.slice(1) : u;
      // MistServer keeps sources in a set: the same type at the same URL is listed once.
      const key = `${out.type}\n${url}`;
      if (seen.has(key)) continue;
      seen.add(key);
      sources.push({ type: out.type, relurl: relative ? u : relOf(u), priority: out.priority, simul_tracks: simul, total_matches: total, url });
    }
  }
  sources.sort(compareSources);

  return { width, height, type: input.live ? 'live' : 'vod', meta, source: sources };
}

/** JSON safe to embed in a <script> and in JS string literals: no `<`, `>`, `&`, `'`, U+2028/9. */
export function scriptSafe(json: string): string {
  return json.replace(/[<>&'\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The `info_NAME.js` script: `mistvideo['NAME'] = {...};`, declaring `mistvideo` if needed. */
export function infoScript(name: string, info: Record<string, unknown>): string {
  const quoted = scriptSafe(JSON.stringify(name)).slice(1, -1);
  return `if (!mistvideo){var mistvideo = {};}\nmistvideo['${quoted}'] = ${scriptSafe(JSON.stringify(info))};\n`;
}

// Header values end up inside URLs handed to players; anything with whitespace, control
// characters or quoting characters is dropped rather than repaired.
const UNSAFE = /[\s\x00-\x1f\x7f"'<>\\`^{}|]/;
const HOST_RE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:(\d{1,5}))?$/;

/** A public base URL (X-Mst-Path, the HTTP connector's `pubaddr`) with a trailing slash, or undefined when unusable. */
export function cleanBaseUrl(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  if (!s || UNSAFE.test(s) || s.includes('?') || s.includes('#')) return undefined;
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return undefined;
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || !u.hostname || u.username || u.password) return undefined;
  return s.endsWith('/') ? s : `${s}/`;
}

function cleanHost(v: string | undefined): { host: string; hasPort: boolean } | undefined {
  if (v === undefined) return undefined;
  const s = v.trim();
  if (!s || UNSAFE.test(s)) return undefined;
  const m = HOST_RE.exec(s);
  if (!m) return undefined;
  if (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535)) return undefined;
  return { host: s, hasPort: m[3] !== undefined };
}

/**
 * Public base URL for sources (§6.4): `X-Mst-Path` wins (a reverse proxy's public base, given a
 * trailing slash), else `http://Host/` (adding `:port` when Host has none and port is not 80),
 * else `http://localhost:PORT/`. Malformed or hostile header values are ignored.
 */
export function baseUrl(hostHeader: string | undefined, mstPath: string | undefined, httpPort: number): string {
  const path = cleanBaseUrl(mstPath);
  if (path) return path;
  const host = cleanHost(hostHeader);
  if (host) return host.hasPort || httpPort === 80 ? `http://${host.host}/` : `http://${host.host}:${httpPort}/`;
  return `http://localhost:${httpPort}/`;
}
