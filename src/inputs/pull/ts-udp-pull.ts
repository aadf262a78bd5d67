// `tsudp://[host]:port[/iface,…]` sources (reference/mistserver.md §5.2, the TS input; §5.4: a
// sender pushes with `udp://host:port` into it): MPEG-TS in UDP datagrams (usually 7 TS packets
// each, as ffmpeg and every IPTV encoder send them), unicast or multicast.
//
// UDP has no connection, so the pull framework's "connection" is a run of datagrams from one
// sender: the socket is bound once for the whole pull; a connection starts with the first
// datagram, and ends when none came for `dryMs` (the stream goes dry: viewers wait, tracks
// reset) or when another sender takes over after the first went quiet (a restarted encoder
// has a new source port and a new clock: a new connection gets a fresh demuxer and the hub
// continues its timeline). While one sender is active, datagrams from others are ignored: two
// interleaved transport streams cannot be demuxed.

import dgram from 'node:dgram';
import os from 'node:os';
import { isIP } from 'node:net';
import { errorText, HazeError, isHazeError } from '../../util/errors.js';
import type { TrackedConnection } from '../../stats/tracker.js';
import { reconnectingPull, type PullConnection, type PullContext, type PullKind, type PullSink } from './pull-input.js';
import { trackPullConnection } from './pull-common.js';
import { TsPullFeed } from './ts-feed.js';
import { parseTsUdpUrl, type TsUdpAddress } from './ts-source.js';

export interface TsUdpPullOptions {
  /** No datagram for this long: the source is away (default 5000 ms). */
  dryMs?: number;
}

const DEFAULT_DRY_MS = 5000;
/** A second sender takes over once the current one was quiet this long. */
const SENDER_SWITCH_MS = 500;
/** Datagrams kept between two connections (the pause before the next connect is short). */
const MAX_PENDING_BYTES = 1024 * 1024;
/** Kernel receive buffer asked for: a keyframe arrives as a burst of datagrams. */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;

/** The pull kind of `tsudp://` sources. */
export function tsUdpPull(opts: TsUdpPullOptions = {}): PullKind {
  return {
    name: 'TSUDP',
    accepts: (source) => /^tsudp:\/\//i.test(source),
    start: (ctx) => startTsUdpPull(ctx, opts.dryMs ?? DEFAULT_DRY_MS),
  };
}

/**
 * The local address of an interface given as an address or a name (`eth0`), in the family
 * wanted; IPv6 takes the `::%name` form the kernel wants for a scope. HAZE_ERR_INVALID_ARG when
 * there is no such interface.
 */
export function interfaceAddress(iface: string, family: 4 | 6): string {
  if (isIP(iface) !== 0) return iface;
  const addrs = os.networkInterfaces()[iface];
  if (!addrs) throw new HazeError('HAZE_ERR_INVALID_ARG', `no network interface ${iface} (have: ${Object.keys(os.networkInterfaces()).join(', ')})`);
  if (family === 6) return `::%${iface}`;
  const v4 = addrs.find((a) => a.family === 'IPv4');
  if (!v4) throw new HazeError('HAZE_ERR_INVALID_ARG', `network interface ${iface} has no IPv4 address`);
  return v4.address;
}

/** Binds the socket of a tsudp source: the port (on its host), joined to the group if multicast. */
async function bindSource(addr: TsUdpAddress): Promise<dgram.Socket> {
  // several listeners of one multicast group and port may coexist (other streams, other programs)
  const socket = dgram.createSocket({ type: addr.family === 6 ? 'udp6' : 'udp4', reuseAddr: addr.multicast });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      // a multicast socket binds to its group (Linux: only that group's datagrams reach it)
      socket.bind({ port: addr.port, ...(addr.host ? { address: addr.host } : {}) }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    if (addr.multicast) {
      const ifaces = addr.ifaces.length > 0 ? addr.ifaces.map((i) => interfaceAddress(i, addr.family)) : [undefined];
      for (const iface of ifaces) socket.addMembership(addr.host, iface);
    }
  } catch (err) {
    socket.close();
    if (isHazeError(err)) throw err;
    // EADDRINUSE and the like may pass (a previous run's socket closing): retried by the loop
    throw new HazeError('HAZE_ERR_REFUSED', `cannot listen on udp ${addr.host || '*'}:${addr.port}: ${errorText(err)}`, { fatal: false });
  }
  try {
    socket.setRecvBufferSize(RECV_BUFFER_BYTES);
  } catch {
    // the kernel caps it (net.core.rmem_max): the default works for moderate bitrates
  }
  return socket;
}

function startTsUdpPull(ctx: PullContext, dryMs: number): { stop(): void } {
  let socket: dgram.Socket | undefined;
  let stopped = false;
  /** The connection being fed, or the connect waiting for its first datagram. */
  let current: TsUdpConnection | undefined;
  let waiting: { sink: PullSink; resolve(c: PullConnection): void; reject(err: Error): void } | undefined;

  /** Datagrams that came between connections (the loop's pause): the start of the next one. */
  let pending: [Buffer, dgram.RemoteInfo][] = [];
  let pendingBytes = 0;

  const onDatagram = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    if (current && !current.ended && current.datagram(msg, rinfo)) return;
    if (waiting) {
      const w = waiting;
      waiting = undefined;
      current = new TsUdpConnection(ctx, w.sink, rinfo, dryMs);
      w.resolve(current);
      current.datagram(msg, rinfo);
      return;
    }
    // kept (a bounded amount) so that a returning source's PSI and first keyframe are not lost
    pending.push([msg, rinfo]);
    pendingBytes += msg.length;
    while (pendingBytes > MAX_PENDING_BYTES) pendingBytes -= pending.shift()![0].length;
  };

  const closeSocket = (why: string): void => {
    const s = socket;
    socket = undefined;
    s?.close();
    current?.fail(why);
    waiting?.reject(new Error(why));
    waiting = undefined;
  };

  const loop = reconnectingPull(
    ctx,
    async (sink) => {
      const addr = parseTsUdpUrl(ctx.source); // an invalid URL is fatal: the pull aborts at once
      if (!socket) {
        const s = await bindSource(addr);
        if (stopped) {
          s.close();
          throw new Error('stopped');
        }
        socket = s;
        ctx.log.info(`stream ${ctx.name}: listening for MPEG-TS on udp ${addr.host || '*'}:${addr.port}${addr.multicast ? ` (joined ${addr.host}${addr.ifaces.length ? ` on ${addr.ifaces.join(', ')}` : ''})` : ''}`);
        s.on('message', onDatagram);
        // a socket error ends this socket; the next connect binds a new one
        s.on('error', (err) => closeSocket(`udp socket: ${err.message}`));
      }
      return new Promise<PullConnection>((resolve, reject) => {
        waiting = { sink, resolve, reject };
        const queued = pending;
        pending = [];
        pendingBytes = 0;
        for (const [msg, rinfo] of queued) onDatagram(msg, rinfo);
      });
    },
    // a connect only waits for the next datagram: retrying soon loses little of a returning source
    { minDelayMs: 50, maxDelayMs: 500, stableMs: 10_000 },
  );
  return {
    stop: () => {
      if (stopped) return;
      stopped = true;
      loop.stop();
      closeSocket('stopped');
    },
  };
}

/** The datagrams of one sender, from its first to the last before it went quiet. */
class TsUdpConnection implements PullConnection {
  readonly done: Promise<string>;
  ended = false;
  private resolveDone!: (why: string) => void;
  private rejectDone!: (err: Error) => void;
  private feed: TsPullFeed;
  private readonly sender: string;
  private lastAtMs = Date.now();
  private bytes = 0;
  private ignored = 0;
  private readonly tracked: TrackedConnection;
  private readonly dryTimer: NodeJS.Timeout;

  constructor(
    private readonly ctx: PullContext,
    private readonly sink: PullSink,
    rinfo: dgram.RemoteInfo,
    private readonly dryMs: number,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.sender = `${rinfo.address}:${rinfo.port}`;
    this.feed = this.newFeed();
    this.tracked = trackPullConnection(ctx, 'INPUT:TS', rinfo.address, () => ({ down: 0, up: this.bytes }));
    this.dryTimer = setInterval(() => {
      const quietMs = Date.now() - this.lastAtMs;
      if (quietMs >= this.dryMs) this.finish(`no datagram from ${this.sender} for ${Math.round(quietMs / 100) / 10} s`);
    }, Math.min(1000, Math.max(50, this.dryMs / 4)));
    this.dryTimer.unref();
    ctx.log.info(`stream ${ctx.name}: receiving MPEG-TS from ${this.sender}`);
  }

  private newFeed(): TsPullFeed {
    return new TsPullFeed(this.sink, this.ctx.log, `stream ${this.ctx.name}: udp from ${this.sender}`);
  }

  /** Takes a datagram; false when it is not this connection's (a new sender took over: this one ended). */
  datagram(msg: Buffer, rinfo: dgram.RemoteInfo): boolean {
    if (this.ended) return false;
    const now = Date.now();
    if (`${rinfo.address}:${rinfo.port}` !== this.sender) {
      // a restarted encoder (new port, new clock) takes over once the old one is quiet
      if (now - this.lastAtMs >= SENDER_SWITCH_MS) {
        this.finish(`sender changed from ${this.sender} to ${rinfo.address}:${rinfo.port}`);
        return false;
      }
      if (this.ignored++ === 0) this.ctx.log.warn(`stream ${this.ctx.name}: ignoring datagrams from ${rinfo.address}:${rinfo.port} while ${this.sender} sends`);
      return true;
    }
    this.lastAtMs = now;
    this.bytes += msg.length;
    try {
      this.feed.push(msg);
    } catch (err) {
      if (!isHazeError(err)) {
        this.fail(`demuxer: ${errorText(err)}`);
        return true;
      }
      // not MPEG-TS (another protocol sent to this port): start over on what comes next
      this.ctx.log.warn(`stream ${this.ctx.name}: datagrams from ${this.sender} are not MPEG-TS: ${err.message}`);
      this.feed = this.newFeed();
    }
    return true;
  }

  close(): void {
    this.finish('closed');
  }

  fail(why: string): void {
    if (this.end()) this.rejectDone(new Error(why));
  }

  private finish(why: string): void {
    if (this.end()) this.resolveDone(why);
  }

  private end(): boolean {
    if (this.ended) return false;
    this.ended = true;
    clearInterval(this.dryTimer);
    this.feed.end();
    this.tracked.end();
    return true;
  }
}
