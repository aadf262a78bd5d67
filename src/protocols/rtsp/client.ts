// An RTSP client that plays a stream into Haze (pulls from IP cameras and other servers,
// RFC 2326 §10): OPTIONS, DESCRIBE, SETUP of every medium Haze can take, PLAY; media over TCP
// interleaved (the default: it passes NAT and firewalls and never loses packets) or over a UDP
// port pair per track. Basic and Digest credentials come from the URL (rtsp://user:pass@host/..).
// The session is kept alive with GET_PARAMETER (OPTIONS when the server does not list it) at
// half its timeout, and receiver reports go out every RR_INTERVAL_MS.

import net from 'node:net';
import { HazeError, errorText } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { serializeRr } from '../rtp/rtcp.js';
import { Credentials } from './auth.js';
import { interleavedHeader, RtspHeaders, RtspReader, serializeRequest, serializeResponse, type RtspResponse } from './message.js';
import { RtpIngest, type IngestSink } from './rtp-ingest.js';
import { incomingTracks, type IncomingTrack } from './sdp-tracks.js';
import { aggregateUrl, controlUrl, parseSdp } from './sdp.js';
import { parseTransport } from './transport.js';
import { bindUdpPair, udpFamily, type UdpPair } from './udp-pair.js';

export interface RtspClientOptions {
  log: Logger;
  /** Media transport: 'tcp' (interleaved, default) or 'udp' (falls back to TCP when refused). */
  transport?: 'tcp' | 'udp';
  /** Time for each request (default 10 s). */
  requestTimeoutMs?: number;
  /** A server that sends no media this long is taken as gone (default 10 s). */
  idleTimeoutMs?: number;
}

/** The parts of an rtsp:// URL: where to connect, what to request, who to be. */
export interface RtspUrl {
  host: string;
  port: number;
  /** The URL without credentials (what requests carry). */
  url: string;
  user: string;
  password: string;
}

export function parseRtspUrl(source: string): RtspUrl {
  let u: URL;
  try {
    u = new URL(source);
  } catch {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `not a URL: ${source}`);
  }
  if (u.protocol !== 'rtsp:') throw new HazeError('HAZE_ERR_INVALID_ARG', `not an rtsp:// URL: ${source}`);
  if (!u.hostname) throw new HazeError('HAZE_ERR_INVALID_ARG', `rtsp:// URL without a host: ${source}`);
  const port = u.port ? Number(u.port) : 554;
  let user: string;
  let password: string;
  try {
    user = decodeURIComponent(u.username);
    password = decodeURIComponent(u.password);
  } catch {
    throw new HazeError('HAZE_ERR_INVALID_ARG', 'rtsp:// URL with badly escaped credentials');
  }
  u.username = '';
  u.password = '';
  u.hash = '';
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port, url: u.toString(), user, password };
}

const RR_INTERVAL_MS = 5000;
const USER_AGENT = 'Haze';

/** RTP-Info (RFC 2326 §12.33): url and rtptime of each stream. */
export function parseRtpInfo(header: string): Array<{ url: string; rtptime?: number; seq?: number }> {
  const out: Array<{ url: string; rtptime?: number; seq?: number }> = [];
  // entries are separated by commas, but a URL may hold one: split before each `url=`
  for (const entry of header.split(/,(?=\s*url=)/i)) {
    const item: { url: string; rtptime?: number; seq?: number } = { url: '' };
    for (const part of entry.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0) continue;
      const k = part.slice(0, eq).trim().toLowerCase();
      const v = part.slice(eq + 1).trim();
      if (k === 'url') item.url = v.replace(/^"|"$/g, '');
      else if (k === 'rtptime' && /^\d+$/.test(v)) item.rtptime = Number(v) >>> 0;
      else if (k === 'seq' && /^\d+$/.test(v)) item.seq = Number(v) & 0xffff;
    }
    if (item.url) out.push(item);
  }
  return out;
}

interface Pending {
  resolve(r: RtspResponse): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class RtspPlayClient {
  private readonly socket: net.Socket;
  private readonly reader = new RtspReader();
  private cseq = 0;
  private pending: Pending | undefined;
  private session: string | undefined;
  private timeoutS = 60;
  private readonly creds: Credentials | undefined;
  private ingest: RtpIngest | undefined;
  private tracks: IncomingTrack[] = [];
  /** Channel -> track index (RTP on even, RTCP on odd) for interleaved media. */
  private readonly channels = new Map<number, { index: number; rtcp: boolean }>();
  private readonly pairs: Array<{ pair: UdpPair; server?: [number, number] } | undefined> = [];
  private publicMethods = '';
  private keepAlive: NodeJS.Timeout | undefined;
  private lastMediaAt = Date.now();
  private closed = false;
  private settle!: { resolve(why: string): void; reject(e: Error): void };
  /** Settles when the session ends: resolves on a clean end, rejects on a fault. */
  readonly done: Promise<string>;
  /** Bytes received (statistics). */
  bytesIn = 0;
  private readonly ssrc = (Math.random() * 0x1_0000_0000) >>> 0;
  private controls: string[] = [];
  private readonly target: RtspUrl;
  private nextKeepAliveAt = 0;
  private keepAliveEvery = 30_000;
  /** The URL of PLAY and TEARDOWN. */
  private aggregate: string;

  private constructor(
    source: string,
    private readonly sink: IngestSink,
    private readonly opts: RtspClientOptions,
  ) {
    this.target = parseRtspUrl(source);
    this.aggregate = this.target.url;
    if (this.target.user) this.creds = new Credentials(this.target.user, this.target.password);
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined);
    this.socket = net.connect({ host: this.target.host, port: this.target.port });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err) => this.end(`${this.target.host}:${this.target.port}: ${err.message}`, true));
    this.socket.on('close', () => this.end('server closed the connection', false));
  }

  /** Connects, sets every usable medium up and plays; the returned client feeds `sink` until it ends. */
  static async play(source: string, sink: IngestSink, opts: RtspClientOptions): Promise<RtspPlayClient> {
    const c = new RtspPlayClient(source, sink, opts);
    try {
      await c.start();
      return c;
    } catch (err) {
      c.end(errorText(err), true);
      throw err;
    }
  }

  get url(): string {
    return this.target.url;
  }

  private async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new HazeError('HAZE_ERR_TIMEOUT', `connect to ${this.target.host}:${this.target.port} timed out`, { fatal: false })), this.opts.requestTimeoutMs ?? 10_000);
      this.socket.once('connect', () => {
        clearTimeout(t);
        resolve();
      });
      this.socket.once('error', (err) => {
        clearTimeout(t);
        reject(new HazeError('HAZE_ERR_CLOSED', `connect to ${this.target.host}:${this.target.port}: ${err.message}`, { fatal: false }));
      });
    });
    const options = await this.request('OPTIONS', this.target.url);
    this.publicMethods = options.status === 200 ? (options.headers.get('public') ?? '') : '';
    const desc = await this.request('DESCRIBE', this.target.url, { Accept: 'application/sdp' });
    this.expectOk(desc, 'DESCRIBE');
    const sdp = parseSdp(desc.body);
    const base = desc.headers.get('content-base') ?? desc.headers.get('content-location') ?? this.target.url;
    const { tracks, skipped } = incomingTracks(sdp);
    if (skipped.length > 0) this.opts.log.info(`${this.target.url}: media Haze cannot take are left out: ${skipped.join(', ')}`);
    if (tracks.length === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${this.target.url}: no medium Haze can take (${skipped.join(', ')})`);
    this.tracks = tracks;
    let useUdp = this.opts.transport === 'udp';
    for (let i = 0; i < tracks.length; i++) {
      const url = controlUrl(base, sdp, sdp.media[tracks[i]!.index]!);
      this.controls.push(url);
      if (useUdp) {
        const pair = await bindUdpPair(udpFamily(this.socket.remoteAddress ?? ''));
        this.pairs[i] = { pair };
        const res = await this.request('SETUP', url, { Transport: `RTP/AVP;unicast;client_port=${pair.port}-${pair.port + 1}` });
        if (res.status === 200) {
          const t = parseTransport(res.headers.get('transport') ?? '')[0];
          if (t?.serverPort) this.pairs[i]!.server = t.serverPort;
          this.takeSession(res);
          this.listenUdp(i, pair);
          continue;
        }
        // refused: interleaved TCP for this and the following tracks
        pair.close();
        this.pairs[i] = undefined;
        if (res.status !== 461) this.expectOk(res, 'SETUP');
        this.opts.log.info(`${this.target.url}: UDP refused (${res.status}); using TCP`);
        useUdp = false;
      }
      const res = await this.request('SETUP', url, { Transport: `RTP/AVP/TCP;unicast;interleaved=${2 * i}-${2 * i + 1}` });
      this.expectOk(res, 'SETUP');
      const t = parseTransport(res.headers.get('transport') ?? '')[0];
      const [rtpCh, rtcpCh] = t?.interleaved ?? [2 * i, 2 * i + 1];
      this.channels.set(rtpCh, { index: i, rtcp: false });
      this.channels.set(rtcpCh, { index: i, rtcp: true });
      this.takeSession(res);
    }
    // media may come in the same read as the PLAY answer: the ingest is ready before
    this.ingest = new RtpIngest(tracks, this.sink, { reorder: this.pairs.some((p) => p !== undefined) });
    this.aggregate = aggregateUrl(base, sdp);
    const play = await this.request('PLAY', this.aggregate, { Range: 'npt=0.000-' });
    this.expectOk(play, 'PLAY');
    this.lastMediaAt = Date.now();
    const every = Math.max(1000, Math.min(30_000, (this.timeoutS * 1000) / 2));
    this.keepAlive = setInterval(() => this.tick(), Math.min(every, RR_INTERVAL_MS));
    this.keepAlive.unref();
    this.nextKeepAliveAt = Date.now() + every;
    this.keepAliveEvery = every;
  }

  private tick(): void {
    if (this.closed) return;
    const idle = this.opts.idleTimeoutMs ?? 10_000;
    if (Date.now() - this.lastMediaAt > idle) {
      this.end(`no media for ${idle} ms`, true);
      return;
    }
    this.sendReports();
    if (Date.now() >= this.nextKeepAliveAt && !this.pending) {
      this.nextKeepAliveAt = Date.now() + this.keepAliveEvery;
      const method = /\bGET_PARAMETER\b/.test(this.publicMethods) ? 'GET_PARAMETER' : 'OPTIONS';
      this.request(method, this.target.url).catch((err: unknown) => this.end(`keep-alive: ${errorText(err)}`, true));
    }
  }

  private sendReports(): void {
    if (!this.ingest) return;
    const rr = serializeRr(this.ssrc, this.ingest.reportBlocks().slice(0, 31));
    this.tracks.forEach((_, i) => {
      const p = this.pairs[i];
      if (p?.server) p.pair.rtcp.send(rr, p.server[1], (this.socket.remoteAddress ?? this.target.host).replace(/^::ffff:/, ''));
    });
    for (const [ch, v] of this.channels) {
      if (v.rtcp && v.index === 0 && !this.socket.destroyed) this.socket.write(Buffer.concat([interleavedHeader(ch, rr.length), rr]));
    }
  }

  private takeSession(res: RtspResponse): void {
    const s = res.headers.get('session');
    if (!s) return;
    const [id, ...params] = s.split(';');
    this.session = id!.trim();
    for (const p of params) {
      const m = /^\s*timeout\s*=\s*(\d+)/i.exec(p);
      if (m) this.timeoutS = Math.max(2, Number(m[1]));
    }
  }

  private expectOk(res: RtspResponse, what: string): void {
    if (res.status === 200) return;
    const fatal = res.status === 401 || res.status === 403 || res.status === 404;
    throw new HazeError(res.status === 401 || res.status === 403 ? 'HAZE_ERR_AUTH' : res.status === 404 ? 'HAZE_ERR_NOT_FOUND' : 'HAZE_ERR_PROTOCOL', `${this.target.url}: ${what} answered ${res.status} ${res.reason}`, { fatal });
  }

  private listenUdp(index: number, pair: UdpPair): void {
    const from = (address: string): boolean => address.replace(/^::ffff:/, '') === (this.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    const onMsg = (rtcp: boolean) => (msg: Buffer, rinfo: { address: string }) => {
      if (this.closed || !this.ingest || !from(rinfo.address)) return;
      this.lastMediaAt = Date.now();
      this.bytesIn += msg.length;
      try {
        if (rtcp) this.ingest.rtcp(index, msg);
        else this.ingest.rtp(index, msg);
      } catch {
        // a datagram that cannot be read is dropped (loss)
      }
    };
    pair.rtp.on('message', onMsg(false));
    pair.rtcp.on('message', onMsg(true));
  }

  /** Sends a request and waits for its answer, answering one authentication challenge. */
  private async request(method: string, url: string, extra: Record<string, string> = {}): Promise<RtspResponse> {
    let res = await this.send(method, url, extra);
    if (res.status === 401 && this.creds && this.creds.accept(res.headers.getAll('www-authenticate'))) res = await this.send(method, url, extra);
    if (res.status === 401) throw new HazeError('HAZE_ERR_AUTH', `${this.target.url}: ${method} refused: ${this.creds ? 'wrong credentials' : 'credentials needed (rtsp://user:pass@host/...)'}`, { fatal: true });
    return res;
  }

  private send(method: string, url: string, extra: Record<string, string>): Promise<RtspResponse> {
    if (this.closed) return Promise.reject(new HazeError('HAZE_ERR_CLOSED', 'RTSP connection closed', { fatal: false }));
    if (this.pending) return Promise.reject(new HazeError('HAZE_ERR_PROTOCOL', 'RTSP request while another is pending'));
    const headers = new RtspHeaders({ CSeq: String(++this.cseq), 'User-Agent': USER_AGENT, ...extra });
    if (this.session) headers.set('Session', this.session);
    const auth = this.creds?.authorization(method, url);
    if (auth) headers.set('Authorization', auth);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        reject(new HazeError('HAZE_ERR_TIMEOUT', `${this.target.url}: no answer to ${method}`, { fatal: false }));
      }, this.opts.requestTimeoutMs ?? 10_000);
      this.pending = { resolve, reject, timer };
      this.socket.write(serializeRequest(method, url, headers));
    });
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.bytesIn += chunk.length;
    let items;
    try {
      items = this.reader.push(chunk);
    } catch (err) {
      this.end(`unreadable RTSP from the server: ${errorText(err)}`, true);
      return;
    }
    for (const item of items) {
      if (this.closed) return;
      if (item.kind === 'response') {
        this.onResponse(item);
      } else if (item.kind === 'data') {
        const ch = this.channels.get(item.channel);
        if (!ch || !this.ingest) continue;
        this.lastMediaAt = Date.now();
        try {
          if (ch.rtcp) this.ingest.rtcp(ch.index, item.data);
          else this.ingest.rtp(ch.index, item.data);
        } catch (err) {
          this.end(`RTP from the server: ${errorText(err)}`, true);
          return;
        }
      } else {
        // a server's request (ANNOUNCE, GET_PARAMETER, REDIRECT ...): answered, not acted on
        this.socket.write(serializeResponse(200, new RtspHeaders({ CSeq: item.headers.get('cseq') ?? '0' })));
      }
    }
  }

  private onResponse(res: RtspResponse): void {
    // RTP-Info anchors the tracks before the media that follows in the same read (rtp-ingest.ts)
    const info = res.headers.get('rtp-info');
    if (info && this.ingest) {
      for (const e of parseRtpInfo(info)) {
        const i = this.controls.findIndex((c) => c === e.url || c.endsWith(e.url) || e.url.endsWith(c.replace(/^.*\//, '/')));
        if (i >= 0 && e.rtptime !== undefined) this.ingest.anchorInfo(i, e.rtptime);
      }
    }
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    clearTimeout(p.timer);
    p.resolve(res);
  }

  private end(reason: string, failed: boolean): void {
    if (this.closed) return;
    this.closed = true;
    if (this.keepAlive) clearInterval(this.keepAlive);
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(new HazeError('HAZE_ERR_CLOSED', reason, { fatal: false }));
    }
    try {
      this.ingest?.close();
    } catch {
      // the last frames could not be read: the session ends anyway
    }
    for (const p of this.pairs) p?.pair.close();
    this.socket.destroy();
    if (failed) this.settle.reject(new HazeError('HAZE_ERR_CLOSED', reason, { fatal: false }));
    else this.settle.resolve(reason);
  }

  /** Ends the session (TEARDOWN, best effort) and closes every socket. */
  close(reason = 'closed'): void {
    if (this.closed) return;
    if (this.session && !this.socket.destroyed) {
      const h = new RtspHeaders({ CSeq: String(++this.cseq), 'User-Agent': USER_AGENT, Session: this.session });
      const auth = this.creds?.authorization('TEARDOWN', this.aggregate);
      if (auth) h.set('Authorization', auth);
      this.socket.write(serializeRequest('TEARDOWN', this.aggregate, h));
    }
    this.end(reason, false);
  }
}
