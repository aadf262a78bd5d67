// Re-pushing a live stream to an RTMP(S) server (reference/mistserver.md §5.5, RTMP output's
// push mode): RtmpClient connect + publish, then `@setDataFrame onMetaData`, the sequence
// headers and one FLV tag body per packet (containers/flv/mux.ts), timestamps from 0 at the
// first keyframe of each connection. When the target drops, it reconnects with backoff and
// starts again at the newest keyframe. A socket that cannot keep up drops to the next keyframe
// (counted) instead of buffering without bound.

import type tls from 'node:tls';
import type { Packet, Track } from '../media/types.js';
import type { TrackSelection } from '../outputs/feed.js';
import { FLV_CAPABILITY } from '../outputs/flv-writer.js';
import { audioTagBody, onMetaDataBody, sequenceHeaderBody, videoTagBody } from '../containers/flv/mux.js';
import { encodeAmf0 } from '../containers/amf/amf0.js';
import { RtmpClient } from '../protocols/rtmp/client.js';
import { HazeError, errorText } from '../util/errors.js';
import { ReconnectingPush, type PushConnectionEnd, type ReconnectingPushOptions } from './reconnecting-push.js';
import type { PushTarget } from './push-target.js';

export interface RtmpPushOptions extends ReconnectingPushOptions {
  target: PushTarget;
  /** Per-step timeout of the RTMP client (default 10 s). */
  timeoutMs?: number;
  /** TLS options for rtmps:// (e.g. `{ rejectUnauthorized: false }`). */
  tls?: tls.ConnectionOptions;
}

const SET_DATA_FRAME = encodeAmf0(['@setDataFrame']);

export class RtmpPush extends ReconnectingPush<RtmpClient> {
  // per connection
  private tracks = new Map<number, Track>();
  private selection: TrackSelection | undefined;
  private baseMs = -1;
  private congested = false;
  private waitKey = true;

  constructor(private readonly opts: RtmpPushOptions) {
    super(opts);
  }

  protected async connect(): Promise<RtmpClient> {
    // rtmps:// is the same protocol over TLS: RtmpClient makes the TLS connection (timeout, SNI)
    const client = new RtmpClient({ timeoutMs: this.opts.timeoutMs ?? 10_000, ...(this.opts.tls ? { tls: this.opts.tls } : {}), fourCcList: ['hvc1', 'av01', 'vp09', 'Opus', 'ac-3'] });
    this.client = client;
    try {
      await client.connect(this.opts.url);
      await client.publish();
    } catch (err) {
      client.destroy('connect failed');
      throw err;
    }
    this.log(`publishing to ${this.opts.url}`);
    return client;
  }

  protected closeClient(client: RtmpClient): Promise<void> {
    return client.close();
  }

  /** A malformed URL does not heal by retrying; a refusal by the server (bad app/key) may, later. */
  protected finalFailure(_client: RtmpClient | undefined, err: unknown): PushConnectionEnd | undefined {
    return err instanceof HazeError && err.code === 'HAZE_ERR_INVALID_ARG' ? { reason: 'UNSUPPORTED', message: `invalid RTMP target: ${errorText(err)}` } : undefined;
  }

  protected feed(client: RtmpClient): Promise<string> {
    this.tracks = new Map();
    this.baseMs = -1;
    this.waitKey = true;
    this.congested = false;
    this.state = 'waiting';
    const t = this.opts.target.params;
    return this.tapUntilClosed(
      client,
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
    this.sent(body.length, p.timeMs);
    if (!ok) {
      // the socket's buffer is full: stop writing until it drains, then restart at a keyframe
      this.congested = true;
      void client.drain().then(() => {
        this.congested = false;
        this.waitKey = true;
      });
    }
  }
}
