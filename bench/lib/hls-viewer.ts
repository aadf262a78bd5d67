// Simulated HLS players for the HLS fan-out benchmark (bench/hls.ts), over node:http with one
// keep-alive Agent per load-generator process.
//
// HlsViewer (classic HLS, RFC 8216bis §6.3.4): the multivariant playlist once, then the media
// playlist every target duration (half of it when nothing changed, as hls.js does), starting
// three segments from the live edge (hls.js' liveSyncDurationCount) and fetching each new
// segment once, one at a time.
//
// LlHlsViewer (LL-HLS, §6.2.5.2, §6.3.4), as hls.js' low-latency mode: the multivariant playlist
// and the init segment once, then blocking playlist reloads `_HLS_msn=M&_HLS_part=P` for the
// part after the last one listed (with `_HLS_skip=YES` once the server offers delta updates),
// each issued as soon as the previous one answered; parts are fetched one at a time from the
// newest independent part on, the next one through its preload hint before it exists (the
// server holds that request until the part is cut).
//
// Both record, per fetched segment or part, its completion wall time; the segment's last
// publisher stamp (segment-stamp.ts) is read from the body of the first fetch of each URI in
// the process, as every viewer gets the same bytes.

import { request } from 'node:http';
import type { Agent, ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import { comparePosition, parsePlaylist, resolvePath, uriKey } from './hls-playlist.js';
import type { Playlist, PlaylistPart } from './hls-playlist.js';
import { lastStampInSegment } from './segment-stamp.js';

export type MediaKind = 'segment' | 'part';

const now = (): number => performance.timeOrigin + performance.now();

/** Largest body kept for parsing (a playlist, or a segment read for its stamp). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** A blocking reload is held at most three target durations (Haze: 6 s); past this it failed. */
const REQUEST_TIMEOUT_MS = 15_000;
const RETRY_MS = 1000;

/** What the viewers of one process share: the counters, the stamp cache and the fetch log. */
export class HlsRecorder {
  recording = false;
  /** Completed responses (any status), body bytes, failed requests (non-200 or no response). */
  requests = 0;
  bytes = 0;
  errorCount = 0;
  readonly errors = new Map<string, number>();
  /** Segment/part keys (URI without query) and, per key, the last stamp (NaN: not read yet, -1: none). */
  readonly keys: string[] = [];
  readonly stamps: number[] = [];
  /** Per key: the first wall time any viewer here knew the part was complete (listed, or fetched). */
  readonly announce: number[] = [];
  /** Flat triples over the window: viewer id, key index, fetch completion wall ms. */
  readonly fetches: number[] = [];
  /** Keys whose body one fetch is keeping for the stamp (at most one copy in memory per key). */
  readonly collecting = new Set<number>();
  connectionsOpened = 0;
  openSockets = 0;
  peakSockets = 0;
  private readonly keyIndex = new Map<string, number>();
  private readonly seenSockets = new WeakSet<Socket>();

  key(k: string): number {
    let i = this.keyIndex.get(k);
    if (i === undefined) {
      i = this.keys.length;
      this.keyIndex.set(k, i);
      this.keys.push(k);
      this.stamps.push(NaN);
      this.announce.push(Infinity);
    }
    return i;
  }

  announced(k: number, wallMs: number): void {
    if (wallMs < this.announce[k]!) this.announce[k] = wallMs;
  }

  error(kind: string): void {
    this.errorCount++;
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  socket(s: Socket): void {
    if (this.seenSockets.has(s)) return;
    this.seenSockets.add(s);
    this.connectionsOpened++;
    this.openSockets++;
    if (this.openSockets > this.peakSockets) this.peakSockets = this.openSockets;
    s.once('close', () => this.openSockets--);
  }
}

export interface HttpTarget {
  host: string;
  port: number;
  agent: Agent;
  rec: HlsRecorder;
}

interface GetResult {
  status: number;
  body: Buffer | undefined;
  error: string | undefined;
  endMs: number;
}

/** Bytes received by one viewer (the recorder counts the process total). */
interface ByteSink {
  bytes: number;
}

function httpGet(t: HttpTarget, sink: ByteSink, path: string, collect: boolean, done: (r: GetResult) => void): ClientRequest {
  let finished = false;
  const finish = (status: number, body: Buffer | undefined, error: string | undefined): void => {
    if (finished) return;
    finished = true;
    if (status > 0) t.rec.requests++;
    done({ status, body, error, endMs: now() });
  };
  const req = request({ host: t.host, port: t.port, path, agent: t.agent, method: 'GET', headers: { 'User-Agent': 'haze-bench-hls' } }, (res) => {
    const status = res.statusCode ?? 0;
    const pieces: Buffer[] | undefined = collect && status === 200 ? [] : undefined;
    let size = 0;
    res.on('data', (chunk: Buffer) => {
      sink.bytes += chunk.length;
      t.rec.bytes += chunk.length;
      if (pieces) {
        size += chunk.length;
        if (size > MAX_BODY_BYTES) {
          req.destroy(new Error('body too large'));
          return;
        }
        pieces.push(chunk);
      }
    });
    res.on('end', () => finish(status, pieces ? Buffer.concat(pieces, size) : undefined, undefined));
    res.on('error', (e: NodeJS.ErrnoException) => finish(0, undefined, e.code ?? e.message));
  });
  req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('timeout')));
  req.on('socket', (s: Socket) => t.rec.socket(s));
  req.on('error', (e: NodeJS.ErrnoException) => finish(0, undefined, e.code ?? e.message));
  req.end();
  return req;
}

function failure(r: GetResult, what: string): string {
  return r.status > 0 ? `HTTP ${r.status} ${what}` : `${r.error ?? 'failed'} ${what}`;
}

interface QueuedMedia {
  key: string;
  path: string;
}

/** What both players share: start/stop, timers, the entry playlist and fetching media one at a time. */
abstract class PlayerBase implements ByteSink {
  bytes = 0;
  startMs = 0;
  /** Wall ms of the first complete segment/part (0: none yet). */
  firstMediaMs = 0;
  errors = 0;
  stopped = false;
  protected mediaPath = '';
  protected readonly queue: QueuedMedia[] = [];
  private fetching = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<ClientRequest>();

  constructor(
    readonly id: number,
    protected readonly t: HttpTarget,
    private readonly entryPath: string,
    private readonly kind: MediaKind,
  ) {}

  start(): void {
    this.startMs = now();
    this.loadEntry();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const r of this.inFlight) r.destroy();
    this.inFlight.clear();
  }

  protected get(path: string, collect: boolean, done: (r: GetResult) => void): void {
    if (this.stopped) return;
    const req = httpGet(this.t, this, path, collect, (r) => {
      this.inFlight.delete(req);
      if (!this.stopped) done(r);
    });
    this.inFlight.add(req);
  }

  protected later(ms: number, fn: () => void): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fn();
    }, Math.max(0, ms));
  }

  protected fail(r: GetResult, what: string): void {
    this.errors++;
    this.t.rec.error(failure(r, what));
  }

  /** The multivariant playlist (once): its first variant is the media playlist; a media playlist is used as it is. */
  private loadEntry(): void {
    this.get(this.entryPath, true, (r) => {
      let pl: Playlist | undefined;
      try {
        if (r.status === 200 && r.body) pl = parsePlaylist(r.body.toString('utf8'));
      } catch {
        pl = undefined;
      }
      if (!pl) {
        this.fail(r.status === 200 ? { ...r, status: 0, error: 'unparsable' } : r, 'multivariant');
        this.later(RETRY_MS, () => this.loadEntry());
        return;
      }
      if (pl.variants.length > 0) {
        this.mediaPath = resolvePath(this.entryPath, pl.variants[0]!);
        this.firstMediaPlaylist();
      } else {
        this.mediaPath = this.entryPath;
        this.onPlaylist(pl, r.endMs, r.endMs);
      }
    });
  }

  protected abstract firstMediaPlaylist(): void;
  protected abstract onPlaylist(pl: Playlist, requestStartMs: number, receivedMs: number): void;

  /** Queues a segment/part for fetching (URI as the playlist gives it). */
  protected enqueue(uri: string): void {
    this.queue.push({ key: uriKey(uri), path: resolvePath(this.mediaPath, uri) });
    this.pump();
  }

  private pump(): void {
    if (this.fetching || this.stopped) return;
    const item = this.queue.shift();
    if (!item) return;
    this.fetching = true;
    const rec = this.t.rec;
    const k = rec.key(item.key);
    // The first fetch of a URI in this process keeps the body to read its stamp; others only count bytes.
    const collect = Number.isNaN(rec.stamps[k]!) && !rec.collecting.has(k);
    if (collect) rec.collecting.add(k);
    this.get(item.path, collect, (r) => {
      if (collect) rec.collecting.delete(k);
      if (r.status === 200) {
        if (r.body) rec.stamps[k] = lastStampInSegment(r.body);
        if (rec.recording) rec.fetches.push(this.id, k, r.endMs);
        if (this.kind === 'part') rec.announced(k, r.endMs);
        if (this.firstMediaMs === 0) this.firstMediaMs = r.endMs;
      } else this.fail(r, this.kind);
      this.fetching = false;
      this.pump();
    });
  }
}

/** Live edge distance at start, in segments (hls.js liveSyncDurationCount). */
const START_SEGMENTS_FROM_EDGE = 3;

export class HlsViewer extends PlayerBase {
  private lastQueuedMsn = -1;
  private started = false;

  constructor(id: number, t: HttpTarget, entryPath: string) {
    super(id, t, entryPath, 'segment');
  }

  protected firstMediaPlaylist(): void {
    this.reload();
  }

  private reload(): void {
    const startMs = now();
    this.get(this.mediaPath, true, (r) => {
      let pl: Playlist | undefined;
      try {
        if (r.status === 200 && r.body) pl = parsePlaylist(r.body.toString('utf8'));
      } catch {
        pl = undefined;
      }
      if (pl) this.onPlaylist(pl, startMs, r.endMs);
      else {
        this.fail(r.status === 200 ? { ...r, status: 0, error: 'unparsable' } : r, 'playlist');
        this.later(RETRY_MS, () => this.reload());
      }
    });
  }

  protected onPlaylist(pl: Playlist, requestStartMs: number, _receivedMs: number): void {
    const targetMs = pl.targetDurationMs > 0 ? pl.targetDurationMs : 2000;
    if (!this.started) {
      this.started = true;
      const first = pl.segments[Math.max(0, pl.segments.length - START_SEGMENTS_FROM_EDGE)];
      this.lastQueuedMsn = (first?.msn ?? pl.nextMsn) - 1;
    }
    let updated = false;
    for (const s of pl.segments) {
      if (s.msn <= this.lastQueuedMsn) continue;
      this.lastQueuedMsn = s.msn;
      updated = true;
      this.enqueue(s.uri);
    }
    if (pl.ended) return;
    // hls.js: the next reload one target duration after this one started, half when nothing changed.
    const intervalMs = updated ? targetMs : targetMs / 2;
    this.later(intervalMs - (now() - requestStartMs), () => this.reload());
  }
}

export class LlHlsViewer extends PlayerBase {
  /** Position of the last part queued; msn -1 before the first playlist. */
  private last = { msn: -1, index: -1 };
  private lastAsked = { msn: -1, index: -1 };
  private announcedUpTo = { msn: -1, index: -1 };
  private initRequested = false;
  private canSkip = false;

  constructor(id: number, t: HttpTarget, entryPath: string) {
    super(id, t, entryPath, 'part');
  }

  protected firstMediaPlaylist(): void {
    this.reload(undefined);
  }

  private reload(at: { msn: number; index: number } | undefined): void {
    let path = this.mediaPath;
    if (at) {
      path += `${path.includes('?') ? '&' : '?'}_HLS_msn=${at.msn}&_HLS_part=${at.index}`;
      if (this.canSkip) path += '&_HLS_skip=YES';
      this.lastAsked = at;
    }
    const startMs = now();
    this.get(path, true, (r) => {
      let pl: Playlist | undefined;
      try {
        if (r.status === 200 && r.body) pl = parsePlaylist(r.body.toString('utf8'));
      } catch {
        pl = undefined;
      }
      if (pl) this.onPlaylist(pl, startMs, r.endMs);
      else {
        this.fail(r.status === 200 ? { ...r, status: 0, error: 'unparsable' } : r, 'playlist');
        this.later(RETRY_MS, () => this.reload(at));
      }
    });
  }

  protected onPlaylist(pl: Playlist, _requestStartMs: number, receivedMs: number): void {
    const rec = this.t.rec;
    this.canSkip = pl.canSkipUntilMs > 0;
    if (!this.initRequested && pl.mapUri !== undefined) {
      this.initRequested = true;
      // Once per viewer, as a player does; counted as a request, not as media.
      this.get(resolvePath(this.mediaPath, pl.mapUri), false, (r) => {
        if (r.status !== 200) this.fail(r, 'init');
      });
    }
    // Only parts newer than this viewer's earlier playlists listed: an older part was already
    // announced here at an earlier time, and the announce time is the earliest over viewers.
    for (const p of pl.parts) {
      if (comparePosition(p, this.announcedUpTo) <= 0) continue;
      this.announcedUpTo = { msn: p.msn, index: p.index };
      rec.announced(rec.key(uriKey(p.uri)), receivedMs);
    }
    if (this.last.msn < 0) {
      // Start at the newest independent part (a player needs a keyframe), or at the hint.
      let startAt: PlaylistPart | undefined = pl.hint;
      for (const p of pl.parts) if (p.independent) startAt = p;
      if (startAt) this.last = { msn: startAt.msn, index: startAt.index - 1 };
    }
    for (const p of pl.parts) {
      if (comparePosition(p, this.last) <= 0) continue;
      this.last = { msn: p.msn, index: p.index };
      this.enqueue(p.uri);
    }
    const hint = pl.hint;
    if (hint && comparePosition(hint, this.last) > 0) {
      this.last = { msn: hint.msn, index: hint.index };
      this.enqueue(hint.uri);
    }
    if (pl.ended) return;
    // The part after the last one listed: where the preload hint points.
    const next = hint ? { msn: hint.msn, index: hint.index } : { msn: pl.nextMsn, index: pl.parts.filter((p) => p.msn === pl.nextMsn).length };
    // A server answering without reaching the asked position would make this spin: pause then.
    if (comparePosition(next, this.lastAsked) <= 0) this.later(Math.max(100, pl.partTargetMs), () => this.reload(next));
    else this.reload(next);
  }
}
