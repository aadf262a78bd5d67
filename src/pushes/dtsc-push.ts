// Pushing a live stream to a DTSC listener (MistServer or Haze, reference/mistserver.md §2.6;
// `dtsc://host[:4200]/stream[?pass=..]`): DtscPushClient connects and gets the push cleared,
// then the hub's tracks go out as a live DTSC header (tracks numbered 1..n, as MistServer
// numbers them on the wire) and, once the target parsed it, the packets from the newest
// keyframe on as DTP2 frames with their own timestamps (the header's unixzero anchors them).
// A track change sends a new header. When the target drops, it reconnects with the same
// backoff as the RTMP push and starts again at the newest keyframe; an `error` from the
// target (push refused, data rejected) ends the push with that text. A target that does not
// read drops packets to the next keyframe once maxQueueBytes wait in the socket, and is cut
// off (then reconnected) when it has not read them within the timeout.

import type tls from 'node:tls';
import type { StreamHub } from '../hub/stream-hub.js';
import type { Packet, Track, TrackType } from '../media/types.js';
import type { TrackSelection } from '../outputs/feed.js';
import type { FormatCapability } from '../outputs/track-select.js';
import { DtscLiveWriter } from '../protocols/dtsc/listener-wire.js';
import { DtscPushClient } from '../protocols/dtsc/push-client.js';
import { parseDtscPushUrl, type DtscPushUrl } from '../protocols/dtsc/push-url.js';
import { errorText, HazeError } from '../util/errors.js';
import { ReconnectingPush, type PushConnectionEnd, type ReconnectingPushOptions } from './reconnecting-push.js';
import type { PushTarget } from './push-target.js';

export interface DtscPushOptions extends ReconnectingPushOptions {
  target: PushTarget;
  /** Connect, clearance, header `ok` and a stalled socket each may take this long (default 10 s). */
  timeoutMs?: number;
  /** TLS options for dtscs://. */
  tls?: tls.ConnectionOptions;
  /** Bytes waiting in the socket above which packets are dropped to the next keyframe (default 8 MiB). */
  maxQueueBytes?: number;
  /** Keepalive ping after this long without sending (default 5 s). */
  keepaliveMs?: number;
}

/**
 * DTSC carries every codec: the capability lists, per type, the codecs the stream has when
 * the tap selects (HubTap selects from the hub's current tracks).
 */
function everyCodec(hub: StreamHub): FormatCapability {
  return {
    singlePerType: false,
    get codecs() {
      const codecs: Partial<Record<TrackType, string[]>> = {};
      for (const t of hub.tracks) (codecs[t.type] ??= []).push(t.codec);
      return codecs;
    },
  };
}

export class DtscPush extends ReconnectingPush<DtscPushClient> {
  private readonly maxQueueBytes: number;
  private readonly url: DtscPushUrl | undefined;
  private readonly urlError: string | undefined;

  // per connection
  private writer: DtscLiveWriter | undefined;
  private selection: TrackSelection | undefined;
  /** Until the target parsed the first header: packets wait here (from the newest sync keyframe). */
  private held: Packet[] | undefined;
  private heldBytes = 0;
  private congested = false;
  private waitKey = true;

  constructor(private readonly opts: DtscPushOptions) {
    super(opts);
    this.maxQueueBytes = opts.maxQueueBytes ?? 8 * 1024 * 1024;
    try {
      this.url = parseDtscPushUrl(opts.url, opts.target.params.raw);
    } catch (err) {
      this.urlError = errorText(err);
    }
  }

  protected async connect(): Promise<DtscPushClient> {
    if (!this.url) throw new HazeError('HAZE_ERR_INVALID_ARG', this.urlError ?? 'invalid URL');
    const client = new DtscPushClient({
      timeoutMs: this.opts.timeoutMs ?? 10_000,
      ...(this.opts.tls ? { tls: this.opts.tls } : {}),
      ...(this.opts.keepaliveMs !== undefined ? { keepaliveMs: this.opts.keepaliveMs } : {}),
      log: (line) => this.log(line),
    });
    this.client = client;
    try {
      await client.connect(this.url);
    } catch (err) {
      client.destroy(errorText(err));
      throw err;
    }
    this.log(`pushing to ${this.opts.url}${client.serverVersion ? ` (${client.serverVersion})` : ''}`);
    return client;
  }

  protected closeClient(client: DtscPushClient, reason: string): Promise<void> {
    return client.close(reason);
  }

  /** A bad URL, and the target's `error` (refused, or our data rejected), would be the same on every retry. */
  protected finalFailure(client: DtscPushClient | undefined): PushConnectionEnd | undefined {
    if (!this.url) return { reason: 'UNSUPPORTED', message: `invalid DTSC target: ${this.urlError}` };
    if (client?.serverError !== undefined) return { reason: 'PUSH_FAILED', message: `${this.opts.url} refused the push: ${client.serverError}` };
    return undefined;
  }

  protected feed(client: DtscPushClient): Promise<string> {
    this.writer = new DtscLiveWriter(this.opts.hub);
    this.selection = undefined;
    this.held = undefined;
    this.heldBytes = 0;
    this.waitKey = true;
    this.congested = false;
    this.state = 'waiting';
    const p = this.opts.target.params;
    const all = (v: string | undefined): string => v ?? 'all';
    return this.tapUntilClosed(
      client,
      // MistServer's DTSC output carries every track unless the push parameters pick some
      { selectors: { audio: all(p.audio), video: all(p.video), subtitle: all(p.subtitle), meta: all(p.meta) }, capability: everyCodec(this.opts.hub) },
      {
        onStart: (tracks, selection) => this.sendFirstHeader(client, tracks, selection),
        onPacket: (pk) => this.onPacket(client, pk),
        onTracks: (tracks, selection) => {
          if (tracks.length > 0) this.sendHeaderAgain(client, tracks, selection);
        },
        onNoTracks: (all) => this.end('NO_TRACKS', `the push parameters select none of the stream's tracks (${all.map((x) => x.codec).join(', ')})`),
        onEnd: (reason) => this.end('STREAM_END', `the stream ended: ${reason}`),
      },
    );
  }

  private sendFirstHeader(client: DtscPushClient, tracks: readonly Track[], selection: TrackSelection): void {
    const writer = this.writer!;
    writer.setTracks(tracks);
    this.selection = selection;
    this.held = [];
    this.heldBytes = 0;
    client.sendHeader(writer.header()).then(
      (msg) => {
        if (client.closed) return;
        this.log(`target: ${msg}`);
        const held = this.held ?? [];
        this.held = undefined;
        this.heldBytes = 0;
        for (const pk of held) this.sendPacket(client, pk);
      },
      (err: unknown) => client.destroy(`header not accepted: ${errorText(err)}`),
    );
  }

  private sendHeaderAgain(client: DtscPushClient, tracks: readonly Track[], selection: TrackSelection): void {
    const writer = this.writer!;
    writer.setTracks(tracks);
    this.selection = selection;
    // the target reads frames in order: the packets behind this header are read after it
    client.send(writer.tracksChanged());
  }

  private onPacket(client: DtscPushClient, p: Packet): void {
    if (client.closed || this.stopping) return;
    if (!this.held) {
      this.sendPacket(client, p);
      return;
    }
    // waiting for the first header's `ok`: keep the packets since the newest sync keyframe
    const isSyncKey = p.keyframe && p.trackId === this.selection?.syncTrackId;
    if (isSyncKey) {
      // an older GOP is replaced, as a start at the newest keyframe would: not a drop
      this.held = [];
      this.heldBytes = 0;
    }
    if (this.heldBytes + p.data.length > this.maxQueueBytes) {
      this.dropped += this.held.length + 1;
      this.held = [];
      this.heldBytes = 0;
      return;
    }
    this.held.push(p);
    this.heldBytes += p.data.length;
  }

  private sendPacket(client: DtscPushClient, p: Packet): void {
    const isSyncKey = p.keyframe && p.trackId === this.selection?.syncTrackId;
    if (this.waitKey || this.congested) {
      if (!isSyncKey || this.congested) {
        // waiting for the first keyframe of a connection is not a drop; after congestion it is
        if (this.congested || this.packets > 0) this.dropped++;
        return;
      }
      this.waitKey = false;
    }
    let frame: Buffer | null;
    try {
      frame = this.writer!.packet(p);
    } catch (err) {
      this.log(`packet of track ${p.trackId} not sent: ${errorText(err)}`);
      return;
    }
    if (!frame || !client.send(frame)) return;
    this.sent(frame.length, p.timeMs);
    if (client.writableLength > this.maxQueueBytes) this.onCongested(client);
  }

  /** The target is not reading: drop to the next keyframe once it drained, or cut it off. */
  private onCongested(client: DtscPushClient): void {
    this.congested = true;
    const queued = client.writableLength;
    const timeoutMs = this.opts.timeoutMs ?? 10_000;
    const timer = setTimeout(() => client.destroy(`the target stopped reading (${queued} bytes waiting for ${timeoutMs} ms)`), timeoutMs);
    timer.unref();
    void client.drain().then(() => {
      clearTimeout(timer);
      this.congested = false;
      this.waitKey = true;
    });
  }
}
