// Pushing a live stream to an SRT listener (`srt://host:port[?streamid=..&passphrase=..&latency=..]`,
// reference §5.5: the TSSRT output): Haze calls the target from a socket of its own, muxes the
// selected tracks to MPEG-TS (PAT/PMT before every keyframe, so the target can start at the
// first one it gets) and sends seven TS packets per SRT packet. SRT options may also come as
// push parameters (after the target's last `?`). When the target drops, it reconnects with the
// RTMP push's backoff and starts again at the newest keyframe; packets that waited longer
// than the connection's latency to be sent are dropped to the next keyframe (a live target
// has no use for them). A refused passphrase is final.

import { TsMuxer } from '../containers/ts/mux.js';
import type { Packet, Track } from '../media/types.js';
import type { TrackSelection } from '../outputs/feed.js';
import { TS_CAPABILITY } from '../outputs/ts-writer.js';
import { parseSrtUrl, srtCall, type SrtUrl } from '../protocols/srt/caller.js';
import type { SrtSocket } from '../protocols/srt/multiplexer.js';
import { TsPayloader } from '../protocols/srt/ts-payloads.js';
import { errorText, HazeError, isHazeError } from '../util/errors.js';
import { log as rootLog } from '../util/log.js';
import type { PushTarget } from './push-target.js';
import { ReconnectingPush, type PushConnection, type PushConnectionEnd, type ReconnectingPushOptions } from './reconnecting-push.js';

export interface SrtPushOptions extends ReconnectingPushOptions {
  target: PushTarget;
}

/** An SRT caller connection as a push connection. */
class SrtPushClient implements PushConnection {
  private readonly closeHandlers = new Set<(reason: string) => void>();
  closed = false;

  constructor(readonly socket: SrtSocket) {
    socket.onClose = (reason) => {
      this.closed = true;
      for (const fn of [...this.closeHandlers]) fn(reason);
    };
  }

  on(_event: 'close', fn: (reason: string) => void): () => void {
    this.closeHandlers.add(fn);
    return () => this.closeHandlers.delete(fn);
  }

  destroy(reason: string): void {
    this.socket.close(reason);
  }
}

export class SrtPush extends ReconnectingPush<SrtPushClient> {
  private readonly url: SrtUrl | undefined;
  private readonly urlError: string | undefined;
  private muxer: TsMuxer | undefined;
  private selection: TrackSelection | undefined;
  private waitKey = true;
  private lastFailure: unknown;

  constructor(private readonly opts: SrtPushOptions) {
    super(opts);
    try {
      this.url = parseSrtUrl(opts.url, opts.target.params.raw);
      if (this.url.mode !== 'caller') throw new HazeError('HAZE_ERR_UNSUPPORTED', 'an SRT push target needs a host to call (listener-mode targets are not supported)');
    } catch (err) {
      this.url = undefined;
      this.urlError = errorText(err);
    }
  }

  protected async connect(): Promise<SrtPushClient> {
    if (!this.url) throw new HazeError('HAZE_ERR_INVALID_ARG', this.urlError ?? 'invalid URL');
    try {
      const socket = await srtCall(this.url, rootLog.child({ proto: 'SRT', push: this.opts.url }));
      const client = new SrtPushClient(socket);
      this.client = client;
      this.log(`pushing to ${this.opts.url}${socket.conn.encrypted ? ' (encrypted)' : ''}, latency ${socket.conn.latencyMs} ms`);
      return client;
    } catch (err) {
      this.lastFailure = err;
      throw err;
    }
  }

  protected closeClient(client: SrtPushClient, reason: string): Promise<void> {
    client.socket.close(reason);
    return Promise.resolve();
  }

  protected finalFailure(_client: SrtPushClient | undefined, err: unknown): PushConnectionEnd | undefined {
    if (!this.url) return { reason: 'UNSUPPORTED', message: `invalid SRT target: ${this.urlError}` };
    const e = err ?? this.lastFailure;
    // a wrong or missing passphrase would be refused again on every retry
    if (isHazeError(e) && e.code === 'HAZE_ERR_REFUSED' && /passphrase/.test(e.message)) return { reason: 'PUSH_FAILED', message: `${this.opts.url} refused the push: ${e.message}` };
    return undefined;
  }

  protected feed(client: SrtPushClient): Promise<string> {
    this.muxer = undefined;
    this.selection = undefined;
    this.waitKey = true;
    this.state = 'waiting';
    const socket = client.socket;
    const payloader = new TsPayloader((payload) => socket.send(payload));
    const p = this.opts.target.params;
    return this.tapUntilClosed(
      client,
      { selectors: { audio: p.audio ?? null, video: p.video ?? null, subtitle: null, meta: null }, capability: TS_CAPABILITY },
      {
        onStart: (tracks, selection) => this.setTracks(tracks, selection),
        onPacket: (pk) => this.sendPacket(socket, payloader, pk),
        onTracks: (tracks, selection) => {
          if (tracks.length > 0) this.setTracks(tracks, selection);
        },
        onNoTracks: (all) => this.end('NO_TRACKS', `no track of the stream (${all.map((x) => x.codec).join(', ')}) can be sent in MPEG-TS`),
        onEnd: (reason) => this.end('STREAM_END', `the stream ended: ${reason}`),
      },
    );
  }

  private setTracks(tracks: readonly Track[], selection: TrackSelection): void {
    // a new muxer starts with PAT/PMT at the next keyframe
    this.muxer = new TsMuxer(tracks);
    this.selection = selection;
    this.waitKey = true;
  }

  private sendPacket(socket: SrtSocket, payloader: TsPayloader, p: Packet): void {
    if (socket.closed || this.stopping || !this.muxer) return;
    const isSyncKey = p.keyframe && p.trackId === this.selection?.syncTrackId;
    const conn = socket.conn;
    // the first transmissions fall behind the latency: what waits would arrive too late
    if (!this.waitKey && conn.oldestUnsentAgeMs(performance.now()) > conn.latencyMs) {
      this.waitKey = true;
      this.dropped++;
    }
    if (this.waitKey) {
      if (!isSyncKey) {
        if (this.packets > 0) this.dropped++;
        return;
      }
      this.waitKey = false;
    }
    let bytes: Buffer;
    try {
      bytes = this.muxer.mux(p);
    } catch (err) {
      this.log(`packet of track ${p.trackId} not sent: ${errorText(err)}`);
      return;
    }
    payloader.push(bytes);
    payloader.flush();
    this.sent(bytes.length, p.timeMs);
  }
}
