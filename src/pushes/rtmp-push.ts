// Re-pushing a live stream to an RTMP(S) server (reference/mistserver.md §5.5, RTMP output's
// push mode): RtmpClient connect + publish, then `@setDataFrame onMetaData`, the sequence
// headers and one FLV tag body per packet (containers/flv/mux.ts), timestamps from 0 at the
// first keyframe of each connection. When the target drops, it reconnects with backoff and
// starts again at the newest keyframe. A socket that cannot keep up drops to the next keyframe
// (counted) instead of buffering without bound.

import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { StreamHub } from '../hub/stream-hub.js';
import type { Packet, Track } from '../media/types.js';
import type { TrackSelection } from '../outputs/feed.js';
import { FLV_CAPABILITY } from '../outputs/flv-writer.js';
import { audioTagBody, onMetaDataBody, sequenceHeaderBody, videoTagBody } from '../containers/flv/mux.js';
import { encodeAmf0 } from '../containers/amf/amf0.js';
import { RtmpClient, parseRtmpUrl } from '../protocols/rtmp/client.js';
import { HazeError, errorText } from '../util/errors.js';
import { HubTap } from './hub-tap.js';
import type { PushTarget } from './push-target.js';
import type { EndReason } from './recording.js';

export interface ReconnectPolicy {
  /** First wait after a drop (default 500 ms), doubled per failed attempt... */
  initialDelayMs?: number;
  /** ...up to this (default 10 s). */
  maxDelayMs?: number;
  /** Consecutive failed attempts before giving up (default: never). */
  maxAttempts?: number;
}

export interface RtmpPushOptions {
  hub: StreamHub;
  target: PushTarget;
  /** The URL after variables. */
  url: string;
  reconnect?: ReconnectPolicy;
  /** Per-step timeout of the RTMP client (default 10 s). */
  timeoutMs?: number;
  /** TLS options for rtmps:// (e.g. `{ rejectUnauthorized: false }`). */
  tls?: tls.ConnectionOptions;
  log?: (line: string) => void;
}

export type RtmpPushState = 'connecting' | 'waiting' | 'active' | 'reconnecting' | 'ended';

export interface RtmpPushStatus {
  state: RtmpPushState;
  bytes: number;
  packets: number;
  droppedPackets: number;
  reconnects: number;
  lastError: string | undefined;
  firstMs: number;
  lastMs: number;
}

export interface RtmpPushEnd {
  reason: EndReason;
  message: string;
}

const SET_DATA_FRAME = encodeAmf0(['@setDataFrame']);

export class RtmpPush {
  readonly done: Promise<RtmpPushEnd>;
  private resolveDone!: (e: RtmpPushEnd) => void;
  private client: RtmpClient | undefined;
  private tap: HubTap | undefined;
  private state: RtmpPushState = 'connecting';
  private stopping: RtmpPushEnd | undefined;
  private attempts = 0;
  private reconnects = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;
  private lastError: string | undefined;
  private bytes = 0;
  private packets = 0;
  private dropped = 0;
  private firstMs = -1;
  private lastMs = -1;

  // per connection
  private tracks = new Map<number, Track>();
  private selection: TrackSelection | undefined;
  private baseMs = -1;
  private congested = false;
  private waitKey = true;

  constructor(private readonly opts: RtmpPushOptions) {
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  status(): RtmpPushStatus {
    return { state: this.state, bytes: this.bytes, packets: this.packets, droppedPackets: this.dropped, reconnects: this.reconnects, lastError: this.lastError, firstMs: this.firstMs, lastMs: this.lastMs };
  }

  start(): void {
    void this.run();
  }

  /** Connects, publishes and feeds until the connection drops; again with backoff until stopped. */
  private async run(): Promise<void> {
    const policy = this.opts.reconnect ?? {};
    const initial = policy.initialDelayMs ?? 500;
    const max = policy.maxDelayMs ?? 10_000;
    while (!this.stopping) {
      this.state = this.reconnects > 0 || this.attempts > 0 ? 'reconnecting' : 'connecting';
      let dropped: string;
      try {
        const client = await this.connect();
        if (this.stopping) {
          await client.close().catch(() => undefined);
          break;
        }
        this.attempts = 0;
        this.log(`publishing to ${this.opts.url}`);
        dropped = await this.feed(client);
      } catch (err) {
        dropped = errorText(err);
        // a refusal by the server (bad app/key) will not heal by retrying quickly, but may later
        if (err instanceof HazeError && err.code === 'HAZE_ERR_INVALID_ARG') {
          this.end('UNSUPPORTED', `invalid RTMP target: ${dropped}`);
          break;
        }
      }
      if (this.stopping) break;
      this.lastError = dropped;
      this.attempts++;
      if (policy.maxAttempts !== undefined && this.attempts >= policy.maxAttempts) {
        this.end('PUSH_FAILED', `gave up after ${this.attempts} attempt(s): ${dropped}`);
        break;
      }
      const delay = Math.min(max, initial * 2 ** Math.min(20, this.attempts - 1));
      this.state = 'reconnecting';
      this.log(`connection to ${this.opts.url} lost (${dropped}); retrying in ${delay} ms`);
      await new Promise<void>((resolve) => {
        this.wakeRetry = resolve;
        this.retryTimer = setTimeout(resolve, delay);
      });
      this.wakeRetry = undefined;
      if (!this.stopping) this.reconnects++;
    }
    this.state = 'ended';
    this.resolveDone(this.stopping ?? { reason: 'STOPPED', message: 'stopped' });
  }

  private async connect(): Promise<RtmpClient> {
    const secure = /^rtmps:/i.test(this.opts.url);
    // RtmpClient speaks rtmp:// URLs: an rtmps:// target is the same protocol over a TLS transport
    const url = secure ? this.opts.url.replace(/^rtmps:/i, 'rtmp:') : this.opts.url;
    const u = parseRtmpUrl(url);
    let transport: Duplex | undefined;
    if (secure) {
      const port = new URL(url).port ? u.port : 443;
      transport = await new Promise<Duplex>((resolve, reject) => {
        const s = tls.connect({ host: u.host, port, servername: u.host, ...this.opts.tls }, () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', (e) => reject(new HazeError('HAZE_ERR_CLOSED', `TLS connect to ${u.host}:${port}: ${e.message}`)));
      });
    }
    const client = new RtmpClient({ timeoutMs: this.opts.timeoutMs ?? 10_000, ...(transport ? { transport } : {}), fourCcList: ['hvc1', 'av01', 'vp09', 'Opus', 'ac-3'] });
    this.client = client;
    try {
      await client.connect(url);
      await client.publish();
    } catch (err) {
      client.destroy('connect failed');
      throw err;
    }
    return client;
  }

  /** Feeds the connection from the hub; resolves with why it ended. */
  private feed(client: RtmpClient): Promise<string> {
    return new Promise((resolve) => {
      this.tracks = new Map();
      this.baseMs = -1;
      this.waitKey = true;
      this.congested = false;
      this.state = 'waiting';
      const t = this.opts.target.params;
      const tap = new HubTap(
        this.opts.hub,
        { selectors: { audio: t.audio ?? null, video: t.video ?? null, subtitle: null, meta: null }, capability: FLV_CAPABILITY },
        {
          onStart: (tracks, selection) => this.sendConfig(client, tracks, selection),
          onPacket: (p) => this.sendPacket(client, p),
          onTracks: (tracks, selection) => {
            if (tracks.length > 0) this.sendConfig(client, tracks, selection);
          },
          onNoTracks: (all) => this.end('NO_TRACKS', `no track of the stream (${all.map((x) => x.codec).join(', ')}) can be sent over RTMP`),
          onEnd: (reason) => this.end('STREAM_END', `the stream ended: ${reason}`),
        },
      );
      this.tap = tap;
      const off = client.on('close', (reason) => {
        off();
        tap.close();
        resolve(reason);
      });
      if (client.closed) {
        off();
        resolve('connection closed');
        return;
      }
      tap.open();
    });
  }

  private sendConfig(client: RtmpClient, tracks: readonly Track[], selection: TrackSelection): void {
    if (client.closed) return;
    this.tracks = new Map(tracks.map((t) => [t.id, t]));
    this.selection = selection;
    const time = this.baseMs >= 0 ? Math.max(0, this.lastMs - this.baseMs) : 0;
    try {
      client.sendData(Buffer.concat([SET_DATA_FRAME, onMetaDataBody([...tracks])]), 0);
      for (const t of tracks) {
        const seq = sequenceHeaderBody(t);
        if (seq) client.sendMedia(t.type === 'video' ? 9 : 8, time, seq);
      }
    } catch (err) {
      this.lastError = errorText(err);
    }
    this.waitKey = true;
  }

  private sendPacket(client: RtmpClient, p: Packet): void {
    if (client.closed || this.stopping) return;
    const track = this.tracks.get(p.trackId);
    if (!track || (track.type !== 'video' && track.type !== 'audio')) return;
    const isSyncKey = p.keyframe && p.trackId === this.selection?.syncTrackId;
    if (this.waitKey || this.congested) {
      if (!isSyncKey || this.congested) {
        // waiting for the first keyframe of a connection is not a drop; after congestion it is
        if (this.congested || this.baseMs >= 0) this.dropped++;
        return;
      }
      this.waitKey = false;
    }
    if (this.baseMs < 0) this.baseMs = p.timeMs;
    if (p.timeMs < this.baseMs) return;
    let body: Buffer;
    try {
      body = track.type === 'video' ? videoTagBody(track, p) : audioTagBody(track, p);
    } catch (err) {
      this.log(`packet of track ${p.trackId} not sent: ${errorText(err)}`);
      return;
    }
    let ok: boolean;
    try {
      ok = client.sendMedia(track.type === 'video' ? 9 : 8, p.timeMs - this.baseMs, body);
    } catch {
      return; // closed: the close handler takes over
    }
    this.state = 'active';
    this.bytes += body.length;
    this.packets++;
    if (this.firstMs < 0) this.firstMs = p.timeMs;
    if (p.timeMs > this.lastMs) this.lastMs = p.timeMs;
    if (!ok) {
      // the socket's buffer is full: stop writing until it drains, then restart at a keyframe
      this.congested = true;
      void client.drain().then(() => {
        this.congested = false;
        this.waitKey = true;
      });
    }
  }

  private end(reason: EndReason, message: string): void {
    if (this.stopping) return;
    this.stopping = { reason, message };
    this.tap?.close();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    const c = this.client;
    if (c && !c.closed) void c.close().catch(() => undefined);
  }

  /** Stops: FCUnpublish/deleteStream and close; resolves when the loop has ended. */
  stop(message = 'stopped on request'): Promise<RtmpPushEnd> {
    this.end('STOPPED', message);
    return this.done;
  }
}
