// Pushing a live stream as MPEG-TS over UDP (reference/mistserver.md §5.5, the TS output's
// `tsudp://*` push pattern): `tsudp://host:port[/iface]`, unicast or multicast (a group address;
// `iface` is the local address or interface name to send it from; `?ttl=N` push parameter for
// the multicast TTL). The hub's packets are muxed by a TsMuxer of this push (PAT/PMT before
// every video keyframe, so a receiver that joins at any time starts at the next one) and sent
// in datagrams of 7 TS packets. Packets are paced by their timestamps: the replay from the
// newest keyframe a push starts with goes out at the speed the stream plays, not as one burst
// a receiver's socket buffer would drop. UDP has no connection: the "connection" is the socket,
// re-made only when it fails; bytes the kernel cannot take fast enough are dropped to the next
// keyframe instead of queueing without bound in the process.

import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import { TsMuxer } from '../containers/ts/mux.js';
import type { Packet, Track } from '../media/types.js';
import type { TrackSelection } from '../outputs/feed.js';
import { TS_CAPABILITY } from '../outputs/ts-writer.js';
import { Pacer } from '../inputs/pull/pacer.js';
import { interfaceAddress } from '../inputs/pull/ts-udp-pull.js';
import { parseTsUdpUrl } from '../inputs/pull/ts-source.js';
import { errorText, HazeError } from '../util/errors.js';
import { ReconnectingPush, type PushConnection, type PushConnectionEnd, type ReconnectingPushOptions } from './reconnecting-push.js';
import type { PushTarget } from './push-target.js';
import { TsDatagramPacker } from './ts-datagrams.js';

export interface TsUdpPushOptions extends ReconnectingPushOptions {
  target: PushTarget;
  /** Bytes waiting in the socket's send queue above which packets are dropped to the next keyframe (default 4 MiB). */
  maxQueueBytes?: number;
}

/** How far ahead of the stream's clock packets may go (a small burst at a keyframe is fine). */
const PACE_LEAD_MS = 100;
/** A push never waits more than this for its own clock (the replay it starts with, a timestamp jump). */
const PACE_MAX_AHEAD_MS = 1000;
/** A partly filled datagram goes out when no more bytes came for this long (longer than a frame at 10 fps). */
const FLUSH_IDLE_MS = 120;

/** The socket a push sends from, as the connection ReconnectingPush feeds. */
export class UdpSender implements PushConnection {
  closed = false;
  sendErrors = 0;
  private readonly closeFns = new Set<(reason: string) => void>();

  constructor(
    private readonly socket: dgram.Socket,
    readonly address: string,
    readonly port: number,
    private readonly log: (line: string) => void,
  ) {
    socket.on('error', (err) => this.destroy(`udp socket: ${err.message}`));
  }

  /** Bytes the socket holds that the kernel did not take yet. */
  get queuedBytes(): number {
    return this.socket.getSendQueueSize();
  }

  send(datagram: Buffer): void {
    if (this.closed) return;
    this.socket.send(datagram, this.port, this.address, (err) => {
      // a datagram the kernel refused (no route, buffer full) is lost, as UDP loses datagrams
      if (err && this.sendErrors++ === 0) this.log(`sending to ${this.address}:${this.port}: ${err.message} (further errors are counted)`);
    });
  }

  on(_event: 'close', fn: (reason: string) => void): () => void {
    this.closeFns.add(fn);
    return () => this.closeFns.delete(fn);
  }

  destroy(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.socket.close();
    } catch {
      // closed already
    }
    for (const fn of [...this.closeFns]) fn(reason);
  }
}

export class TsUdpPush extends ReconnectingPush<UdpSender> {
  private readonly maxQueueBytes: number;
  // per connection
  private muxer: TsMuxer | undefined;
  private readonly packer = new TsDatagramPacker();
  private pacer: Pacer | undefined;
  private selection: TrackSelection | undefined;
  private waitKey = true;
  private congested = false;
  private flushTimer: NodeJS.Timeout | undefined;
  private lastBytesAtMs = 0;

  constructor(private readonly opts: TsUdpPushOptions) {
    super(opts);
    this.maxQueueBytes = opts.maxQueueBytes ?? 4 * 1024 * 1024;
  }

  protected async connect(): Promise<UdpSender> {
    const addr = parseTsUdpUrl(this.opts.url);
    if (!addr.host) throw new HazeError('HAZE_ERR_INVALID_ARG', `a tsudp push needs a host to send to: ${this.opts.url}`);
    const { address } = await dns.lookup(addr.host, { family: addr.family });
    const socket = dgram.createSocket(addr.family === 6 ? 'udp6' : 'udp4');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(0, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      if (addr.multicast) {
        if (addr.ifaces[0]) socket.setMulticastInterface(interfaceAddress(addr.ifaces[0], addr.family));
        const ttl = Number(this.opts.target.params.raw['ttl']);
        if (Number.isInteger(ttl) && ttl >= 1 && ttl <= 255) socket.setMulticastTTL(ttl);
        // other listeners on this machine receive the group too
        socket.setMulticastLoopback(true);
      }
    } catch (err) {
      socket.close();
      throw err;
    }
    const sender = new UdpSender(socket, address, addr.port, (line) => this.log(line));
    this.client = sender;
    this.log(`sending MPEG-TS to udp ${address}:${addr.port}`);
    return sender;
  }

  protected closeClient(client: UdpSender, reason: string): Promise<void> {
    const rest = this.packer.flush();
    if (rest) client.send(rest);
    // let the last datagrams leave before the socket closes
    return new Promise((resolve) =>
      setImmediate(() => {
        client.destroy(reason);
        resolve();
      }),
    );
  }

  /** A malformed target does not heal by retrying. */
  protected finalFailure(_client: UdpSender | undefined, err: unknown): PushConnectionEnd | undefined {
    return err instanceof HazeError && err.code === 'HAZE_ERR_INVALID_ARG' ? { reason: 'UNSUPPORTED', message: `invalid tsudp target: ${errorText(err)}` } : undefined;
  }

  protected feed(client: UdpSender): Promise<string> {
    this.setTracks([]);
    this.selection = undefined;
    this.congested = false;
    this.state = 'waiting';
    const off = client.on('close', () => {
      off();
      this.pacer?.stop();
      this.pacer = undefined;
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    });
    const t = this.opts.target.params;
    return this.tapUntilClosed(
      client,
      { selectors: { audio: t.audio ?? null, video: t.video ?? null, subtitle: null, meta: null }, capability: TS_CAPABILITY },
      {
        onStart: (tracks, selection) => {
          this.selection = selection;
          this.setTracks(tracks, client);
        },
        onPacket: (p) => this.pacer?.add([p]),
        onTracks: (tracks, selection) => {
          this.selection = selection;
          this.setTracks(tracks, client);
        },
        onNoTracks: (all) => this.end('NO_TRACKS', `no track of the stream (${all.map((x) => x.codec).join(', ')}) can be sent in MPEG-TS`),
        onEnd: (reason) => this.end('STREAM_END', `the stream ended: ${reason}`),
      },
    );
  }

  /** A new track set: a new muxer (new PSI), from the next keyframe; what waited in the pacer is dropped. */
  private setTracks(tracks: readonly Track[], client?: UdpSender): void {
    this.pacer?.stop();
    this.pacer = undefined;
    this.packer.reset();
    this.waitKey = true;
    this.muxer = tracks.length > 0 ? new TsMuxer(tracks) : undefined;
    if (client && this.muxer) this.pacer = new Pacer((p) => this.sendPacket(client, p), { leadMs: PACE_LEAD_MS, maxAheadMs: PACE_MAX_AHEAD_MS });
  }

  private sendPacket(client: UdpSender, p: Packet): void {
    if (client.closed || this.stopping || !this.muxer) return;
    const isSyncKey = p.keyframe && p.trackId === this.selection?.syncTrackId;
    if (this.congested && isSyncKey && client.queuedBytes < this.maxQueueBytes / 2) this.congested = false;
    if (this.waitKey || this.congested) {
      if (!isSyncKey || this.congested) {
        // waiting for the first keyframe of a track set is not a drop; after congestion it is
        if (this.congested || this.packets > 0) this.dropped++;
        return;
      }
      this.waitKey = false;
    }
    let ts: Buffer;
    try {
      ts = this.muxer.mux(p);
    } catch (err) {
      this.log(`packet of track ${p.trackId} not sent: ${errorText(err)}`);
      return;
    }
    if (ts.length === 0) return;
    for (const d of this.packer.push(ts)) client.send(d);
    this.sent(ts.length, p.timeMs);
    this.lastBytesAtMs = Date.now();
    if (this.packer.pendingBytes > 0 && !this.flushTimer) this.armFlush(client);
    if (client.queuedBytes > this.maxQueueBytes) {
      // the kernel does not take datagrams as fast as the stream makes them: skip to a keyframe
      this.congested = true;
      this.log(`send queue over ${this.maxQueueBytes} bytes: dropping to the next keyframe`);
    }
  }

  /** Sends a partly filled datagram once no more bytes came for FLUSH_IDLE_MS (a pause, an audio-only trickle). */
  private armFlush(client: UdpSender): void {
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      if (client.closed || this.packer.pendingBytes === 0) return;
      const idle = Date.now() - this.lastBytesAtMs;
      if (idle < FLUSH_IDLE_MS) {
        this.armFlush(client);
        return;
      }
      const rest = this.packer.flush();
      if (rest) client.send(rest);
    }, FLUSH_IDLE_MS);
    this.flushTimer.unref();
  }
}
