// The server side of one RTSP connection (RFC 2326 §10; the methods of RTSP 1.0 that players
// and publishers use): OPTIONS, DESCRIBE / SETUP / PLAY / PAUSE for viewers, ANNOUNCE / SETUP
// / RECORD for publishers, TEARDOWN, GET_PARAMETER and SET_PARAMETER (keep-alives). Media
// goes over UDP (a port pair per track, bound in this process) or interleaved on the TCP
// connection. What a stream is and who may play or publish it is the handler's business
// (worker/rtsp-handler.ts); this file is the state machine over the socket.
//
// Faults end this connection only: a malformed message or an RTP packet that cannot be read
// on the TCP stream closes it with a log line; a bad UDP datagram is dropped and counted.

import type net from 'node:net';
import type { Track } from '../../media/types.js';
import { HazeError, errorText, isHazeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { RtspHeaders, RtspReader, serializeResponse, type InterleavedFrame, type RtspRequest } from './message.js';
import { PlaySink, type TrackSetup } from './play-sink.js';
import { RtpIngest, type IngestSink } from './rtp-ingest.js';
import { describeSdp, incomingTracks, type IncomingTrack, type OutgoingTrack } from './sdp-tracks.js';
import { parseSdp } from './sdp.js';
import { parseTransport, writeTransport, type TransportSpec } from './transport.js';
import { bindUdpPair, udpFamily, type UdpPair } from './udp-pair.js';

/** What a client asked for: the stream path of its URL (name and query, no leading slash). */
export interface RtspStreamRequest {
  url: string;
  /** `NAME` or `NAME?query` from the URL path. */
  path: string;
  peer: string;
  /** Ends this RTSP connection (a stream shut down under its publisher). */
  end(reason: string): void;
}

/** A stream being played to this connection. */
export interface RtspPlayback {
  /** The tracks the DESCRIBE answer lists, in order: track i is sent on channels 2i, 2i+1. */
  readonly tracks: readonly OutgoingTrack[];
  /** The stream ended since DESCRIBE: PLAY is refused rather than answered with a connection that closes at once. */
  readonly ended: boolean;
  /** Starts sending chunks of interleaved frames to `sink`. */
  start(sink: PlaySink): void;
  /** Stops sending (PAUSE); start may follow again. */
  stop(): void;
  /** The viewer is gone (TEARDOWN, disconnect); idempotent. */
  close(reason: string): void;
}

/** Where a publisher's media goes. */
export interface RtspPublishTarget extends IngestSink {
  /** Bytes received from the publisher, for its statistics. */
  countBytes(n: number): void;
  /** The publish ended: `clean` after a TEARDOWN, not after a lost connection; idempotent. */
  close(reason: string, clean: boolean): void;
}

export interface RtspSessionHandler {
  /** A viewer's DESCRIBE (or SETUP without one): throws a HazeError to refuse (404/403/503). */
  play(req: RtspStreamRequest): Promise<RtspPlayback>;
  /** A publisher's ANNOUNCE with the tracks of its SDP: throws a HazeError to refuse. */
  publish(req: RtspStreamRequest, tracks: readonly Track[]): Promise<RtspPublishTarget>;
}

export interface RtspServerOptions {
  /** Seconds without a request or media before a session ends (announced in the Session header). */
  sessionTimeoutS?: number;
  /** Binds a UDP pair for a peer (tests may substitute). */
  bindPair?: (family: 'udp4' | 'udp6') => Promise<UdpPair>;
}

const PUBLIC_METHODS = 'OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, PAUSE, RECORD, TEARDOWN, GET_PARAMETER, SET_PARAMETER';
const DEFAULT_TIMEOUT_S = 60;
/** Malformed UDP datagrams tolerated per track before the publish is ended. */
const MAX_BAD_DATAGRAMS = 1000;

interface SetupEntry {
  index: number;
  setup: TrackSetup;
  pair?: UdpPair;
}

/** Status for a refusal: HazeError codes to RTSP status codes. */
function statusOf(err: unknown): number {
  if (!isHazeError(err)) return 500;
  switch (err.code) {
    case 'HAZE_ERR_NOT_FOUND':
      return 404;
    case 'HAZE_ERR_OFFLINE':
      return 404;
    case 'HAZE_ERR_REFUSED':
    case 'HAZE_ERR_AUTH':
      return 403;
    case 'HAZE_ERR_BUSY':
      return 503;
    case 'HAZE_ERR_UNSUPPORTED':
      return 415;
    case 'HAZE_ERR_MALFORMED':
    case 'HAZE_ERR_INVALID_ARG':
      return 400;
    default:
      return 500;
  }
}

/** The stream path of an RTSP URL: everything after the host, without the leading slash. */
export function streamPath(url: string): string {
  let rest = url;
  const m = /^rtsps?:\/\/[^/?]*/i.exec(url);
  if (m) rest = url.slice(m[0].length);
  rest = rest.replace(/^\/+/, '');
  return rest;
}

export class RtspServerSession {
  private readonly reader = new RtspReader();
  private readonly peer: string;
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private sessionId: string | undefined;
  private playback: RtspPlayback | undefined;
  /** The stream path DESCRIBE (or ANNOUNCE) was about. */
  private basePath: string | undefined;
  private publishTracks: IncomingTrack[] | undefined;
  private target: RtspPublishTarget | undefined;
  private ingest: RtpIngest | undefined;
  private readonly setups = new Map<number, SetupEntry>();
  /** Interleaved channel -> track index and whether it is RTCP (publish). */
  private readonly channels = new Map<number, { index: number; rtcp: boolean }>();
  private state: 'init' | 'ready' | 'playing' | 'recording' = 'init';
  private lastActivity = Date.now();
  private readonly timer: NodeJS.Timeout;
  private readonly timeoutS: number;
  private badDatagrams = 0;

  constructor(
    private readonly socket: net.Socket,
    private readonly handler: RtspSessionHandler,
    private readonly log: Logger,
    private readonly opts: RtspServerOptions = {},
  ) {
    this.peer = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.timeoutS = opts.sessionTimeoutS ?? DEFAULT_TIMEOUT_S;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => this.close('client disconnected'));
    socket.on('error', () => {});
    this.timer = setInterval(() => this.checkTimeout(), Math.min(10_000, (this.timeoutS * 1000) / 3));
    this.timer.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private checkTimeout(): void {
    // a viewer over TCP is alive while its socket is; everyone else must show signs of life
    const tcpPlay = this.state === 'playing' && [...this.setups.values()].every((s) => s.setup.kind === 'tcp');
    if (!tcpPlay && Date.now() - this.lastActivity > this.timeoutS * 1000) this.close(`no request or media for ${this.timeoutS} s`);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastActivity = Date.now();
    let items;
    try {
      items = this.reader.push(chunk);
    } catch (err) {
      this.fail(`unreadable RTSP from ${this.peer}: ${errorText(err)}`);
      return;
    }
    for (const item of items) {
      if (item.kind === 'data') this.onFrame(item);
      else if (item.kind === 'request') {
        const req = item;
        this.queue = this.queue.then(() => this.onRequest(req)).catch((err: unknown) => this.fail(`RTSP ${req.method} from ${this.peer}: ${errorText(err)}`));
      }
      // responses from a client are not expected: ignored
    }
  }

  private onFrame(f: InterleavedFrame): void {
    const ch = this.channels.get(f.channel);
    if (!ch || !this.ingest) return; // RTCP receiver reports of viewers, or data before RECORD
    try {
      this.target?.countBytes(f.data.length + 4);
      if (ch.rtcp) this.ingest.rtcp(ch.index, f.data);
      else this.ingest.rtp(ch.index, f.data);
    } catch (err) {
      this.fail(`RTP from ${this.peer}: ${errorText(err)}`);
    }
  }

  private onDatagram(index: number, rtcp: boolean, msg: Buffer, from: string): void {
    if (this.closed) return;
    // media only from the client that set the session up
    if (from.replace(/^::ffff:/, '') !== this.peer) return;
    this.lastActivity = Date.now();
    if (!this.ingest) return;
    try {
      this.target?.countBytes(msg.length);
      if (rtcp) this.ingest.rtcp(index, msg);
      else this.ingest.rtp(index, msg);
    } catch (err) {
      if (++this.badDatagrams === 1) this.log.warn(`RTSP publish from ${this.peer}: dropping unreadable datagram: ${errorText(err)}`);
      if (this.badDatagrams > MAX_BAD_DATAGRAMS) this.fail(`more than ${MAX_BAD_DATAGRAMS} unreadable datagrams`);
    }
  }

  private respond(req: RtspRequest, status: number, headers: Record<string, string | undefined> = {}, body?: string): void {
    if (this.closed || this.socket.destroyed) return;
    const h = new RtspHeaders({ CSeq: req.headers.get('cseq') ?? '0', Server: 'Haze', ...headers });
    if (this.sessionId && !h.has('Session')) h.set('Session', `${this.sessionId};timeout=${this.timeoutS}`);
    this.socket.write(serializeResponse(status, h, body));
  }

  private async onRequest(req: RtspRequest): Promise<void> {
    if (this.closed) return;
    const session = req.headers.get('session')?.split(';')[0]?.trim();
    if (session && this.sessionId && session !== this.sessionId && req.method !== 'OPTIONS' && req.method !== 'GET_PARAMETER') {
      this.respond(req, 454);
      return;
    }
    switch (req.method) {
      case 'OPTIONS':
        this.respond(req, 200, { Public: PUBLIC_METHODS });
        return;
      case 'DESCRIBE':
        return this.describe(req);
      case 'ANNOUNCE':
        return this.announce(req);
      case 'SETUP':
        return this.setup(req);
      case 'PLAY':
        return this.play(req);
      case 'PAUSE':
        if (this.state === 'playing') {
          this.playback?.stop();
          this.state = 'ready';
        }
        this.respond(req, 200);
        return;
      case 'RECORD':
        return this.record(req);
      case 'TEARDOWN':
        this.respond(req, 200);
        this.endMedia('client tore down', true);
        return;
      case 'GET_PARAMETER':
      case 'SET_PARAMETER':
        this.respond(req, 200);
        return;
      default:
        this.respond(req, 501, { Public: PUBLIC_METHODS });
    }
  }

  private refuse(req: RtspRequest, err: unknown): void {
    const status = statusOf(err);
    this.log.info(`RTSP ${req.method} ${req.url} from ${this.peer}: ${status} (${errorText(err)})`);
    this.respond(req, status);
  }

  private async describe(req: RtspRequest): Promise<void> {
    if (this.target) {
      this.respond(req, 455);
      return;
    }
    try {
      await this.openPlayback(req.url);
    } catch (err) {
      this.refuse(req, err);
      return;
    }
    const base = req.url.endsWith('/') ? req.url : `${req.url}/`;
    const address = (this.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    const sdp = describeSdp(this.playback!.tracks, { name: this.basePath ?? '', address, sessionId: Math.floor(Date.now() / 1000), control: (i) => `trackID=${i}` });
    this.respond(req, 200, { 'Content-Base': base, 'Content-Type': 'application/sdp' }, sdp);
  }

  /** Resolves the stream of `url` for playing (once per connection). */
  private async openPlayback(url: string): Promise<void> {
    const path = streamPath(url).replace(/\/+$/, '');
    if (this.playback && this.basePath === path) return;
    this.playback?.close('another stream described');
    this.playback = undefined;
    const playback = await this.handler.play({ url, path, peer: this.peer, end: (r) => this.close(r) });
    if (this.closed) {
      playback.close('client disconnected');
      return;
    }
    if (playback.tracks.length === 0) {
      playback.close('no tracks');
      throw new HazeError('HAZE_ERR_UNSUPPORTED', 'the stream has no track that RTP can carry');
    }
    this.playback = playback;
    this.basePath = path;
  }

  private async announce(req: RtspRequest): Promise<void> {
    if (this.target || this.playback) {
      this.respond(req, 455);
      return;
    }
    let tracks: IncomingTrack[];
    try {
      const { tracks: t, skipped } = incomingTracks(parseSdp(req.body));
      if (skipped.length > 0) this.log.info(`RTSP ANNOUNCE from ${this.peer}: media Haze cannot take are left out: ${skipped.join(', ')}`);
      if (t.length === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', 'no medium of the SDP can be taken in');
      tracks = t;
    } catch (err) {
      this.refuse(req, err);
      return;
    }
    const path = streamPath(req.url).replace(/\/+$/, '');
    try {
      const target = await this.handler.publish({ url: req.url, path, peer: this.peer, end: (r) => this.close(r) }, tracks.map((t) => t.track));
      if (this.closed) {
        target.close('client disconnected', false);
        return;
      }
      this.target = target;
    } catch (err) {
      this.refuse(req, err);
      return;
    }
    this.publishTracks = tracks;
    this.basePath = path;
    this.sessionId ??= newSessionId();
    this.state = 'ready';
    this.respond(req, 200);
  }

  /** The track a SETUP URL is about. */
  private trackIndex(url: string, count: number): number | undefined {
    if (this.publishTracks) {
      const path = streamPath(url);
      const found = this.publishTracks.findIndex((t) => t.control !== '' && (url === t.control || path.endsWith(`/${t.control.replace(/^.*\//, '')}`) || path.endsWith(t.control)));
      if (found >= 0) return found;
    } else {
      const m = /\/trackID=(\d+)\/?$/i.exec(url);
      if (m) {
        const i = Number(m[1]);
        return i < count ? i : undefined;
      }
    }
    return count === 1 ? 0 : undefined;
  }

  private async setup(req: RtspRequest): Promise<void> {
    if (this.state === 'playing' || this.state === 'recording') {
      // a new transport while media flows: not supported (RFC 2326 §10.4 allows refusing it)
      this.respond(req, 455);
      return;
    }
    if (!this.target && !this.playback) {
      // a SETUP without DESCRIBE: the stream is the URL without its track part
      try {
        await this.openPlayback(req.url.replace(/\/trackID=\d+\/?$/i, ''));
      } catch (err) {
        this.refuse(req, err);
        return;
      }
    }
    const count = this.publishTracks?.length ?? this.playback!.tracks.length;
    const index = this.trackIndex(req.url, count);
    if (index === undefined) {
      this.respond(req, 404);
      return;
    }
    let offers: TransportSpec[];
    try {
      offers = parseTransport(req.headers.get('transport') ?? '');
    } catch (err) {
      this.refuse(req, err);
      return;
    }
    const recording = this.target !== undefined;
    const offer = offers.find((o) => o.unicast && (o.lower === 'TCP' || o.clientPort !== undefined) && /^RTP\/AVP/i.test(o.protocol));
    if (!offer || (offer.mode === 'record') !== recording) {
      this.respond(req, offer ? 455 : 461);
      return;
    }
    this.setups.get(index)?.pair?.close();
    let answer: TransportSpec;
    if (offer.lower === 'TCP') {
      const [rtpCh, rtcpCh] = offer.interleaved ?? [2 * index, 2 * index + 1];
      this.setups.set(index, { index, setup: { kind: 'tcp', rtpChannel: rtpCh, rtcpChannel: rtcpCh } });
      answer = { protocol: 'RTP/AVP/TCP', lower: 'TCP', unicast: true, interleaved: [rtpCh, rtcpCh] };
      if (recording) {
        this.channels.set(rtpCh, { index, rtcp: false });
        this.channels.set(rtcpCh, { index, rtcp: true });
      }
    } else {
      let pair: UdpPair;
      try {
        pair = await (this.opts.bindPair ?? bindUdpPair)(udpFamily(this.socket.remoteAddress ?? ''));
      } catch (err) {
        this.refuse(req, err);
        return;
      }
      if (this.closed) {
        pair.close();
        return;
      }
      const [cRtp, cRtcp] = offer.clientPort!;
      this.setups.set(index, { index, pair, setup: { kind: 'udp', socket: pair, host: this.peer, rtpPort: cRtp, rtcpPort: cRtcp } });
      if (recording) {
        pair.rtp.on('message', (msg, rinfo) => this.onDatagram(index, false, msg, rinfo.address));
        pair.rtcp.on('message', (msg, rinfo) => this.onDatagram(index, true, msg, rinfo.address));
      } else {
        // viewers' receiver reports keep their session alive
        pair.rtcp.on('message', (_msg, rinfo) => {
          if (rinfo.address.replace(/^::ffff:/, '') === this.peer) this.lastActivity = Date.now();
        });
      }
      answer = { protocol: 'RTP/AVP', lower: 'UDP', unicast: true, clientPort: [cRtp, cRtcp], serverPort: [pair.port, pair.port + 1] };
    }
    if (recording) answer.mode = 'record';
    this.sessionId ??= newSessionId();
    this.state = 'ready';
    this.respond(req, 200, { Transport: writeTransport(answer) });
  }

  private play(req: RtspRequest): void {
    const playback = this.playback;
    if (!playback || this.setups.size === 0 || this.target) {
      this.respond(req, 455);
      return;
    }
    if (playback.ended) {
      // (a 200 and a connection that closes at once can leave a player waiting: GStreamer's
      // rtspsrc waits out its 20 s TCP timeout)
      this.refuse(req, new HazeError('HAZE_ERR_NOT_FOUND', `stream ${this.basePath} ended`));
      this.close('stream ended');
      return;
    }
    const npt = req.headers.get('range');
    this.respond(req, 200, { Range: npt && npt.startsWith('npt=') ? npt : 'npt=now-' });
    if (this.state === 'playing') return;
    this.state = 'playing';
    const setups = playback.tracks.map((_, i) => this.setups.get(i)?.setup);
    const sock = this.socket;
    playback.start(
      new PlaySink(setups, {
        write: (b) => (sock.destroyed ? false : sock.write(b)),
        writev: (chunks) => {
          if (sock.destroyed) return;
          sock.cork();
          for (const c of chunks) sock.write(c);
          sock.uncork();
        },
        get writableLength() {
          return sock.writableLength;
        },
        close: (reason) => {
          this.log.info(`RTSP play of ${this.basePath} to ${this.peer} ended: ${reason}`);
          this.close(reason);
        },
      }),
    );
  }

  private record(req: RtspRequest): void {
    const target = this.target;
    if (!target || !this.publishTracks || this.setups.size === 0) {
      this.respond(req, 455);
      return;
    }
    if (this.state !== 'recording') {
      // only the tracks set up: the stream waits for a keyframe of each track it has
      const order = [...this.setups.keys()].sort((a, b) => a - b);
      const remap = new Map(order.map((idx, i) => [idx, i]));
      for (const [ch, v] of this.channels) this.channels.set(ch, { index: remap.get(v.index)!, rtcp: v.rtcp });
      for (const e of this.setups.values()) {
        if (!e.pair) continue;
        const i = remap.get(e.index)!;
        e.pair.rtp.removeAllListeners('message');
        e.pair.rtcp.removeAllListeners('message');
        e.pair.rtp.on('message', (msg, rinfo) => this.onDatagram(i, false, msg, rinfo.address));
        e.pair.rtcp.on('message', (msg, rinfo) => this.onDatagram(i, true, msg, rinfo.address));
      }
      const udp = [...this.setups.values()].some((e) => e.setup.kind === 'udp');
      this.ingest = new RtpIngest(
        order.map((idx) => this.publishTracks![idx]!),
        target,
        { reorder: udp },
      );
      this.state = 'recording';
    }
    this.respond(req, 200);
  }

  /** Ends playing or publishing (TEARDOWN, disconnect); the connection may stay for keep-alives. */
  private endMedia(reason: string, clean: boolean): void {
    this.playback?.close(reason);
    this.playback = undefined;
    this.ingest?.close();
    this.ingest = undefined;
    this.target?.close(reason, clean);
    this.target = undefined;
    this.publishTracks = undefined;
    for (const s of this.setups.values()) s.pair?.close();
    this.setups.clear();
    this.channels.clear();
    this.state = 'init';
    this.sessionId = undefined;
  }

  private fail(reason: string): void {
    if (this.closed) return;
    this.log.warn(reason);
    this.close(reason);
  }

  close(reason: string): void {
    if (this.closed) return;
    this.endMedia(reason, false);
    this.closed = true;
    clearInterval(this.timer);
    if (!this.socket.destroyed) this.socket.end();
    // a peer that does not read its last bytes must not hold the socket
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}

function newSessionId(): string {
  return Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0') + Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0');
}
