// HLS pulls (reference/mistserver.md §5.2: `http(s)://....m3u8`, `http(s)-hls://...`): Haze
// follows a playlist over HTTP(S) as a player would (RFC 8216 §6.3) and feeds its segments to
// the stream's hub.
//
// - A multivariant playlist: the variant with the highest BANDWIDTH is followed (one rendition;
//   the others are not pulled).
// - A live media playlist: playback starts two segments from its end; the playlist is reloaded
//   after one target duration when it changed, after half of one when it did not (§6.3.4); new
//   segments are fetched in media-sequence order. TS segments go through one TsDemuxer for the
//   run, fMP4/CMAF segments through the MP4 reader with their EXT-X-MAP (protocols/hls/
//   segment-reader.ts). Packets are released at the pace of their timestamps (pacer.ts).
// - The source restarting (the media sequence goes back, or timestamps jump) ends the
//   connection; the pull connects again at once and the hub continues its timeline
//   (pull-input.ts). A live playlist that gains EXT-X-ENDLIST plays out and ends the connection;
//   the pull then waits, polling, for a playlist that is not that ended one (a restarted writer).
// - A playlist that has EXT-X-ENDLIST when first fetched is VoD: it plays once, paced, and the
//   stream's input ends.
// Not read: encrypted segments (EXT-X-KEY other than NONE) and byte ranges (EXT-X-BYTERANGE),
// both refused with a clear error; packed audio and WebVTT segments.

import { parseM3u8, type M3u8 } from '../../containers/hls/parse.js';
import type { Packet, Track } from '../../media/types.js';
import { HlsSegmentReader, type SegmentMedia } from '../../protocols/hls/segment-reader.js';
import type { TrackedConnection } from '../../stats/tracker.js';
import { HazeError, errorText, isHazeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { Pacer } from './pacer.js';
import { endablePull, trackPullConnection, type EndPull } from './pull-common.js';
import type { PullConnection, PullContext, PullKind, PullSink } from './pull-input.js';

const MAX_PLAYLIST_BYTES = 4 * 1024 * 1024;
const MAX_INIT_BYTES = 4 * 1024 * 1024;
const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Segments from the end of a live playlist where playback starts. */
const LIVE_START_SEGMENTS = 2;
/** A track's timestamps stepping back further than this is a new timeline (a restarted source). */
const BACKWARD_JUMP_MS = 1000;

/** The http(s) URL of an HLS source (`http-hls://` and `https-hls://` name the plain schemes). */
export function hlsPlaylistUrl(source: string): string {
  return source.replace(/^(https?)-hls:\/\//i, '$1://');
}

/** Whether `source` is an HLS pull: `http(s)-hls://`, or an http(s) URL whose path ends in .m3u8/.m3u. */
export function isHlsSource(source: string): boolean {
  if (/^https?-hls:\/\//i.test(source)) return true;
  if (!/^https?:\/\//i.test(source)) return false;
  try {
    return /\.m3u8?$/i.test(new URL(source).pathname);
  } catch {
    return false;
  }
}

/** What a media playlist says that its parser does not check: features this pull cannot read. */
export function unsupportedFeature(text: string): string | undefined {
  const key = /^#EXT-X-KEY:(.*)$/im.exec(text);
  if (key && !/METHOD=NONE\b/i.test(key[1]!)) return 'encrypted segments (EXT-X-KEY)';
  if (/^#EXT-X-BYTERANGE/im.test(text)) return 'byte-range segments (EXT-X-BYTERANGE)';
  return undefined;
}

/** The variant a pull follows: the highest BANDWIDTH (the first of equal ones). */
export function pickVariant(pl: M3u8): M3u8['variants'][number] | undefined {
  let best: M3u8['variants'][number] | undefined;
  for (const v of pl.variants) if (!best || v.bandwidth > best.bandwidth) best = v;
  return best;
}

/** Identity of a playlist's content, to tell an ended playlist from its successor. */
function signature(pl: M3u8): string {
  const last = pl.segments[pl.segments.length - 1];
  return `${pl.mediaSequence}/${pl.segments.length}/${last?.uri ?? ''}/${pl.endList ? 'end' : 'live'}`;
}

export interface HlsConnectOptions {
  log: Logger;
  /** No connection of this pull played yet: only then is an ended playlist played (as VoD). */
  firstConnection: boolean;
  track?(host: string, bytes: () => { down: number; up: number }): TrackedConnection;
  /** A VoD playlist played to its end: the pull is over. */
  onVodEnd?: EndPull;
  /** Timeout of one HTTP request (default: the larger of 10 s and three target durations). */
  fetchTimeoutMs?: number;
  /** How far ahead of real time packets are released (default one target duration; Infinity: no pacing). */
  paceLeadMs?: number;
}

class Fetcher {
  bytes = 0;
  private readonly ctl = new AbortController();

  constructor(private readonly timeoutMs: () => number) {}

  get aborted(): boolean {
    return this.ctl.signal.aborted;
  }

  abort(): void {
    this.ctl.abort();
  }

  /** GET `url` whole, at most `max` bytes; a HazeError (not fatal) on any failure. */
  async get(url: string, max: number): Promise<Buffer> {
    const timeout = AbortSignal.timeout(this.timeoutMs());
    const signal = AbortSignal.any ? AbortSignal.any([this.ctl.signal, timeout]) : this.ctl.signal;
    let res: Response;
    try {
      res = await fetch(url, { signal, redirect: 'follow' });
    } catch (err) {
      throw new HazeError('HAZE_ERR_CLOSED', `GET ${url}: ${timeout.aborted ? 'timed out' : errorText((err as { cause?: unknown }).cause ?? err)}`, { fatal: false });
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new HazeError('HAZE_ERR_NOT_FOUND', `GET ${url}: HTTP ${res.status}`, { fatal: false });
    }
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (length > max) {
      await res.body?.cancel().catch(() => undefined);
      throw new HazeError('HAZE_ERR_TOO_LARGE', `GET ${url}: ${length} bytes (limit ${max})`, { fatal: false });
    }
    const parts: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of (res.body ?? []) as AsyncIterable<Uint8Array>) {
        n += c.byteLength;
        this.bytes += c.byteLength;
        if (n > max) throw new HazeError('HAZE_ERR_TOO_LARGE', `GET ${url}: more than ${max} bytes`, { fatal: false });
        parts.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
      }
    } catch (err) {
      if (isHazeError(err)) throw err;
      throw new HazeError('HAZE_ERR_CLOSED', `GET ${url}: ${timeout.aborted ? 'timed out' : errorText(err)}`, { fatal: false });
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }
}

/** A media playlist with the URL it came from. */
interface Loaded {
  url: string;
  pl: M3u8;
}

async function loadPlaylist(f: Fetcher, url: string): Promise<Loaded> {
  const text = (await f.get(url, MAX_PLAYLIST_BYTES)).toString('utf8');
  const pl = parseM3u8(text);
  if (!/^\uFEFF?#EXTM3U/.test(text)) throw new HazeError('HAZE_ERR_MALFORMED', `${url} is not an HLS playlist`, { fatal: false });
  const bad = unsupportedFeature(text);
  if (bad) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${url}: ${bad} cannot be pulled`);
  return { url, pl };
}

/** The media playlist of `url`: itself, or the chosen variant of a multivariant playlist. */
async function loadMediaPlaylist(f: Fetcher, url: string, log: Logger): Promise<Loaded> {
  const first = await loadPlaylist(f, url);
  if (!first.pl.master) return first;
  const v = pickVariant(first.pl);
  if (!v) throw new HazeError('HAZE_ERR_MALFORMED', `${url}: multivariant playlist without variants`);
  const vurl = new URL(v.uri, url).toString();
  log.debug(`${url}: following the variant of ${v.bandwidth} bit/s of ${first.pl.variants.length}: ${vurl}`);
  const media = await loadPlaylist(f, vurl);
  if (media.pl.master) throw new HazeError('HAZE_ERR_MALFORMED', `${vurl}: a variant that is itself a multivariant playlist`);
  return media;
}

/**
 * Follows the playlist at `source` into `sink`. Resolves once the (media) playlist was read;
 * rejects with a HazeError when it cannot be (not fatal unless the playlist uses a feature that
 * cannot be pulled).
 */
export async function connectHls(source: string, sink: PullSink, opts: HlsConnectOptions): Promise<PullConnection> {
  const url = hlsPlaylistUrl(source);
  let targetMs = 2000;
  const f = new Fetcher(() => opts.fetchTimeoutMs ?? Math.max(10_000, 3 * targetMs));
  const first = await loadMediaPlaylist(f, url, opts.log);
  targetMs = Math.max(100, (first.pl.targetDurationS ?? 2) * 1000);
  const tracked = opts.track?.(new URL(first.url).hostname, () => ({ down: 0, up: f.bytes }));
  const log = opts.log;
  const where = first.url;
  if (where !== url) log.info(`${url}: following its highest-bandwidth variant ${where}`);

  const reader = new HlsSegmentReader();
  const pacer = new Pacer((p) => sink.push(p), { leadMs: opts.paceLeadMs ?? targetMs });
  const known = new Set<number>();
  const lastTime = new Map<number, number>();
  let wake: (() => void) | undefined;
  let closed = false;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const t = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(t);
        wake = undefined;
        resolve();
      };
    });

  const setTracks = (tracks: readonly Track[]): void => {
    const ids = new Set(tracks.map((t) => t.id));
    for (const id of known) if (!ids.has(id)) sink.removeTrack(id);
    known.clear();
    for (const t of tracks) {
      known.add(t.id);
      sink.setTrack(t);
    }
  };

  /** Hands a segment's media on; returns a reason when its timestamps start a new timeline. */
  const deliver = (m: SegmentMedia): string | undefined => {
    for (const w of m.warnings) log.debug(`${where}: ${w}`);
    if (m.tracks) setTracks(m.tracks);
    const jumpMs = Math.max(10_000, 3 * targetMs);
    let cut = m.packets.length;
    let why: string | undefined;
    for (let i = 0; i < m.packets.length; i++) {
      const p = m.packets[i]!;
      const last = lastTime.get(p.trackId);
      if (last !== undefined && (p.timeMs < last - BACKWARD_JUMP_MS || p.timeMs > last + jumpMs)) {
        cut = i;
        why = `track ${p.trackId} timestamps jump from ${last} to ${p.timeMs} ms (a new timeline)`;
        break;
      }
      lastTime.set(p.trackId, p.timeMs);
    }
    pacer.add(cut === m.packets.length ? m.packets : (m.packets.slice(0, cut) as Packet[]));
    return why;
  };

  let init: { uri: string; bytes: Buffer } | undefined;
  const fetchSegment = async (base: string, pl: M3u8, uri: string): Promise<SegmentMedia> => {
    let initBytes: Buffer | undefined;
    if (pl.mapUri) {
      const initUrl = new URL(pl.mapUri, base).toString();
      if (init?.uri !== initUrl) init = { uri: initUrl, bytes: await f.get(initUrl, MAX_INIT_BYTES) };
      initBytes = init.bytes;
    }
    const bytes = await f.get(new URL(uri, base).toString(), MAX_SEGMENT_BYTES);
    return reader.read(bytes, initBytes);
  };

  /** The follow loop: resolves with why the connection ended, rejects on a failure. */
  const follow = async (): Promise<string> => {
    let cur = first;
    const vod = opts.firstConnection && cur.pl.endList;
    if (!vod && cur.pl.endList) {
      // an ended playlist on a reconnect is the one already played: wait for its successor
      const ended = signature(cur.pl);
      log.info(`${where}: playlist has ended; waiting for the source to start again`);
      while (!closed) {
        await sleep(targetMs / 2);
        if (closed) return 'closed';
        try {
          cur = await loadMediaPlaylist(f, url, log);
        } catch (err) {
          if (closed) return 'closed';
          log.debug(`${where}: ${errorText(err)}`);
          continue;
        }
        if (signature(cur.pl) !== ended) break;
      }
      if (closed) return 'closed';
      targetMs = Math.max(100, (cur.pl.targetDurationS ?? 2) * 1000);
    }
    let nextSeq = vod ? cur.pl.mediaSequence : cur.pl.mediaSequence + Math.max(0, cur.pl.segments.length - LIVE_START_SEGMENTS);
    let lastGoodAt = Date.now();
    let loadedAt = Date.now();
    for (;;) {
      if (closed) return 'closed';
      const { pl } = cur;
      const newest = pl.mediaSequence + pl.segments.length - 1;
      if (pl.segments.length > 0 && newest < nextSeq - 1) {
        await pacer.drained();
        return `playlist restarted (media sequence ${newest} after ${nextSeq - 1})`;
      }
      if (pl.mediaSequence > nextSeq) {
        log.warn(`${where}: segments ${nextSeq}..${pl.mediaSequence - 1} left the playlist before they were fetched`);
        nextSeq = pl.mediaSequence;
      }
      let changed = false;
      for (let seq = nextSeq; seq <= newest && !closed; seq++) {
        const seg = pl.segments[seq - pl.mediaSequence]!;
        let media: SegmentMedia;
        try {
          media = await fetchSegment(cur.url, pl, seg.uri);
        } catch (err) {
          if (closed) return 'closed';
          // an unreadable segment is fatal to the connection; a missing one is skipped
          if (isHazeError(err) && (err.code === 'HAZE_ERR_NOT_FOUND' || err.code === 'HAZE_ERR_CLOSED')) {
            log.warn(`${where}: segment ${seq} skipped: ${errorText(err)}`);
            nextSeq = seq + 1;
            continue;
          }
          throw err;
        }
        nextSeq = seq + 1;
        changed = true;
        const jump = deliver(media);
        if (jump) {
          await pacer.drained();
          return jump;
        }
      }
      if (closed) return 'closed';
      if (pl.endList) {
        deliver(reader.end());
        await pacer.drained();
        if (closed) return 'closed';
        if (vod) opts.onVodEnd?.(`${where}: VoD playlist played to its end`);
        return 'playlist ended (EXT-X-ENDLIST)';
      }
      // §6.3.4: reload one target duration after the last load when the playlist changed, half
      // of one when not (the time spent fetching segments counts)
      await sleep(Math.max(0, (changed ? targetMs : targetMs / 2) - (Date.now() - loadedAt)));
      if (closed) return 'closed';
      try {
        loadedAt = Date.now();
        cur = await loadPlaylist(f, cur.url);
        if (cur.pl.master) throw new HazeError('HAZE_ERR_MALFORMED', `${cur.url} turned into a multivariant playlist`);
        lastGoodAt = Date.now();
      } catch (err) {
        if (closed) return 'closed';
        if (isHazeError(err) && err.code === 'HAZE_ERR_UNSUPPORTED') throw err;
        const downMs = Date.now() - lastGoodAt;
        if (downMs > Math.max(10_000, 3 * targetMs)) throw new HazeError('HAZE_ERR_CLOSED', `playlist unreadable for ${downMs} ms: ${errorText(err)}`, { fatal: false });
        log.debug(`${where}: ${errorText(err)}`);
      }
    }
  };

  const close = (): void => {
    if (closed) return;
    closed = true;
    f.abort();
    pacer.stop();
    wake?.();
  };
  const done = follow().finally(() => {
    close();
    tracked?.end();
  });
  done.catch(() => undefined);
  return { done, close };
}

export const hlsPull: PullKind = {
  name: 'HLS',
  accepts: isHlsSource,
  start(ctx: PullContext) {
    let played = false;
    return endablePull(
      ctx,
      async (sink, _attempt, end) => {
        const conn = await connectHls(ctx.source, sink, { log: ctx.log, firstConnection: !played, onVodEnd: end, track: (host, bytes) => trackPullConnection(ctx, 'INPUT:HLS', host, bytes) });
        played = true;
        return conn;
      },
      // a restarted source is picked up at once; failures back off from there
      { minDelayMs: 250, maxDelayMs: 15_000 },
    );
  },
};
