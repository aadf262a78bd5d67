// WebRTC in a worker (DESIGN §3, §5): WHIP publishers and WHEP viewers, whichever signalling
// brought them (POST /whip/NAME, POST /whep/NAME, POST or WebSocket /webrtc/NAME). Their media
// runs over the one WebRTC UDP port, which only the worker that owns it (the angel's UDP_OWNER)
// has: every peer lives there. The other workers pass the signalling on over that worker's
// control socket (ops `webrtc.offer` and `webrtc.end`, answered by `registerControl`).
//
// A publisher follows the push rules every protocol does (reference §5.4: stream key or JWT,
// PUSH_REWRITE and STREAM_PUSH, the stream's push:// source, STREAM_LOAD), then feeds the
// stream's hub like an RTMP publisher; a viewer goes through startPlay (PLAY_REWRITE, CONN_*,
// fallbacks, USER_NEW, statistics) with connector `WebRTC` and plays from this worker's hub of
// the stream (a relay hub when another worker hosts it).

import type dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { StreamHub } from '../hub/stream-hub.js';
import type { Track } from '../media/types.js';
import { checkPush } from '../inputs/push-policy.js';
import { rawPushName, type PushAccess, type PushGrant } from '../access/push-access.js';
import type { JwtKeyring } from '../access/keyring.js';
import { playNameGrant, viewerTokenValid } from '../access/viewer-access.js';
import { startPlay, type PlayAccess, type PlayConnection } from '../outputs/play-access.js';
import type { TriggerDispatcher } from '../triggers/dispatch.js';
import type { ConnectionTracker, TrackedConnection } from '../stats/tracker.js';
import { HazeError, errorText, isHazeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { dtlsIdentity } from '../protocols/webrtc/dtls.js';
import { WebRtcPeer } from '../protocols/webrtc/peer.js';
import { rtpClockRate, WEBRTC_CODECS } from '../protocols/webrtc/rtp-feed.js';
import { offerPublishes, parseSdp, pickReceiveCodec, pickSendCodec, RECEIVE_AUDIO_CODECS, RECEIVE_VIDEO_CODECS, supportedFeedback, writeAnswer, type AnswerMedia, type SdpSession } from '../protocols/webrtc/sdp.js';
import { UdpMux, plainAddress } from '../protocols/webrtc/udp-mux.js';
import type { WebRtcOfferRequest, WebRtcOfferResult, WebRtcSignalling } from '../protocols/webrtc/signalling.js';
import { forwardedError } from '../outputs/webrtc-route.js';
import { WhepSession, type SendPlan } from '../protocols/webrtc/whep-session.js';
import { WhipSession, type ReceivePlan } from '../protocols/webrtc/whip-session.js';
import type { ConfigView } from './config-view.js';
import type { HubManager } from './hub-manager.js';
import { incomingPushTriggers } from './push-triggers.js';
import type { WorkerControl } from './worker-control.js';
import type { WorkerStats } from './worker-stats.js';
import { statusFor } from '../protocols/http/media-server.js';

/** What the worker gives the WebRTC service. */
export interface WebRtcDeps {
  hubs: Pick<HubManager, 'forViewer' | 'startPublish' | 'allowLoad' | 'onShutdown'>;
  config: Pick<ConfigView, 'stream' | 'get'>;
  triggers: TriggerDispatcher;
  push: PushAccess;
  play: PlayAccess;
  tracker: ConnectionTracker;
  stats: Pick<WorkerStats, 'inputStarted' | 'playing'>;
  keyring?: JwtKeyring;
  /**
   * Asks for an Opus track made from the stream's AAC (processes/stream-processes.ts
   * ensureOpus); resolves once there is one or it gave up.
   */
  ensureOpus?: (stream: string) => Promise<{ ok: boolean; track?: number; reason?: string }>;
  log: Logger;
}

/** How long a WHEP offer for an AAC stream waits for its Opus track. */
const OPUS_WAIT_MS = 8000;
/** Sessions one worker hosts at most (each holds little, but a flood of offers must not pile up peers). */
const MAX_SESSIONS = 4096;

interface Session {
  id: string;
  kind: 'whip' | 'whep';
  stream: string;
  peer: WebRtcPeer;
  /** Ends the session; `clean` for a publisher that ended on purpose (DELETE, BYE, WebSocket closed). */
  close(reason: string, clean: boolean): void;
  counters(): Record<string, number>;
}

/** The WebRTC connector's config entry (for `iceservers`). */
function connectorConfig(config: Pick<ConfigView, 'get'>): Record<string, unknown> | undefined {
  const protocols = config.get().config?.['protocols'];
  if (!Array.isArray(protocols)) return undefined;
  return protocols.find((p): p is Record<string, unknown> => typeof p === 'object' && p !== null && (p as Record<string, unknown>)['connector'] === 'WebRTC');
}

/** The `iceservers` option of the WebRTC connector as RTCIceServer objects (reference §6.3). */
export function iceServers(config: Pick<ConfigView, 'get'>): unknown[] {
  let v = connectorConfig(config)?.['iceservers'];
  if (typeof v === 'string' && v.trim()) {
    try {
      v = JSON.parse(v);
    } catch {
      return [];
    }
  }
  return Array.isArray(v) ? v.filter((s) => typeof s === 'object' && s !== null) : [];
}

export class WebRtcService {
  private mux: UdpMux | undefined;
  private port = 0;
  private readonly sessions = new Map<string, Session>();
  /** WHIP publishers by stream: where a viewer's keyframe request goes. */
  private readonly publishers = new Map<string, WhipSession>();

  constructor(private readonly deps: WebRtcDeps) {}

  /** This worker owns the WebRTC UDP port (worker-main's udpServers['WebRTC']). */
  attach(socket: dgram.Socket, port: number): void {
    this.port = port;
    const mux = new UdpMux(socket, this.deps.log);
    this.mux = mux;
    socket.on('message', (msg, rinfo) => mux.receive(msg, rinfo.address, rinfo.port));
    // the certificate is made once; doing it now keeps it off the first offer's path
    void dtlsIdentity();
    this.deps.log.info(`WebRTC: media on UDP port ${port}`);
  }

  /** True in the worker that owns the UDP port. */
  get serving(): boolean {
    return this.mux !== undefined;
  }

  get udpCounters(): Record<string, number> | undefined {
    return this.mux ? { ...this.mux.counters, peers: this.mux.peerCount } : undefined;
  }

  /** Counters of every session (tests and diagnostics: `webrtc.stats`). */
  sessionStats(): Record<string, unknown>[] {
    return [...this.sessions.values()].map((s) => ({ id: s.id, kind: s.kind, stream: s.stream, connected: s.peer.connected, ...s.counters() }));
  }

  registerControl(control: WorkerControl): void {
    control.on('webrtc.offer', async (args) => {
      try {
        return await this.offer(args['request'] as WebRtcOfferRequest);
      } catch (err) {
        return { error: isHazeError(err) ? err.message : errorText(err), status: isHazeError(err) ? (err.status ?? statusFor(err)) : 500 };
      }
    });
    control.on('webrtc.end', (args) => ({ ended: this.end(String(args['id'] ?? ''), args['reason'] === undefined ? 'ended by the client' : String(args['reason'])) }));
    control.on('webrtc.stats', () => ({ udp: this.udpCounters ?? null, sessions: this.sessionStats() }));
  }

  /** Answers an offer: a session on this worker's port, or a HazeError with the HTTP status to answer. */
  async offer(req: WebRtcOfferRequest): Promise<WebRtcOfferResult> {
    const mux = this.mux;
    if (!mux) throw new HazeError('HAZE_ERR_OFFLINE', 'WebRTC is not served (its UDP port is not open)', { status: 503 });
    if (this.sessions.size >= MAX_SESSIONS) throw new HazeError('HAZE_ERR_BUSY', 'too many WebRTC sessions', { status: 503 });
    let offer: SdpSession;
    try {
      offer = parseSdp(req.sdp);
    } catch (err) {
      throw new HazeError('HAZE_ERR_MALFORMED', `Failed to parse offer SDP: ${errorText(err)}`, { status: 400 });
    }
    const live = offer.media.filter((m) => m.port !== 0);
    const m0 = live[0];
    if (!m0 || !m0.iceUfrag || !m0.icePwd || !m0.fingerprint) throw new HazeError('HAZE_ERR_MALFORMED', 'the offer lacks ICE credentials or a DTLS fingerprint', { status: 400 });
    if (live.some((m) => m.setup === 'passive')) throw new HazeError('HAZE_ERR_UNSUPPORTED', 'the offer wants to be the DTLS server (a=setup:passive); Haze is passive', { status: 400 });
    const kind = req.kind === 'auto' ? (offerPublishes(offer) ? 'whip' : 'whep') : req.kind;
    const identity = await dtlsIdentity();
    const id = randomBytes(8).toString('hex');
    const log = this.deps.log.child({ proto: 'WebRTC', session: id });
    const candidates = this.candidates(req);
    const cname = randomBytes(8).toString('hex');
    const local = { fingerprint: identity.fingerprint, candidates, cname };
    if (kind === 'whip') return this.publish(req, offer, id, log, local);
    return this.play(req, offer, id, log, local);
  }

  /**
   * The addresses the browser is told to send to, best first: where it reached the HTTP port, a
   * literal Host, then every address of this host's interfaces (as MistServer does; its
   * `nolocal` option turns that off). The port is bound to every address, and the kernel answers
   * from the address its route to the browser prefers: a browser on this machine that does not
   * use loopback candidates reaches Haze through an interface address, so those are offered too.
   */
  private candidates(req: WebRtcOfferRequest): { address: string; port: number }[] {
    const out: string[] = [];
    const add = (a: string): void => {
      const p = plainAddress(a.replace(/^\[|\]$/g, ''));
      if (isIP(p) && !out.includes(p) && p !== '0.0.0.0' && p !== '::' && !p.toLowerCase().startsWith('fe80:')) out.push(p);
    };
    add(req.localAddress);
    add(req.host);
    const option = connectorConfig(this.deps.config)?.['nolocal'];
    if (!(option === true || option === 1 || option === '1')) {
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal) add(a.address);
    }
    if (out.length === 0) out.push('127.0.0.1');
    return out.map((address) => ({ address, port: this.port }));
  }

  private async publish(req: WebRtcOfferRequest, offer: SdpSession, id: string, log: Logger, local: { fingerprint: string; candidates: { address: string; port: number }[]; cname: string }): Promise<WebRtcOfferResult> {
    const { hubs, config, push } = this.deps;
    const query = new URLSearchParams(req.query);
    const raw = rawPushName(req.name);
    // push rules step 1: a stream key or an input JWT (in the path or as the Bearer token) names the stream
    let grant: PushGrant | undefined;
    try {
      grant = push.grant(raw, req.peer) ?? (req.token ? push.grant(req.token, req.peer) : undefined);
    } catch (err) {
      log.warn(`WebRTC publish of ${push.forLog(raw)} from ${req.peer} refused: ${errorText(err)}`);
      throw withStatus(err, 403);
    }
    const asked = sanitizeStreamName(req.name);
    if (!grant && !asked) throw new HazeError('HAZE_ERR_INVALID_ARG', `invalid stream name ${JSON.stringify(req.name.slice(0, 100))}`, { status: 400 });
    let stream: string;
    try {
      stream = grant?.stream ?? (await incomingPushTriggers(this.deps.triggers, { url: req.requestUrl, host: req.peer, stream: asked, connector: 'WebRTC' }));
      if (!grant) await checkPush(stream, config.stream(stream)?.source, req.peer, query.get('pass') ?? query.get('password') ?? req.token);
      if (!(await hubs.allowLoad(stream))) throw new HazeError('HAZE_ERR_REFUSED', `push of ${stream} refused by STREAM_LOAD`);
    } catch (err) {
      log.warn(`WebRTC publish of ${grant ? push.forLog(raw) : asked} from ${req.peer} refused: ${errorText(err)}`);
      throw withStatus(err, 403);
    }
    // what the publisher may send: H.264 (packetization-mode 1) or VP8, and Opus
    const plans: ReceivePlan[] = [];
    const answers: AnswerMedia[] = offer.media.map((m) => {
      const sending = m.port !== 0 && (m.direction === 'sendonly' || m.direction === 'sendrecv');
      const type = m.kind === 'video' ? 'video' : m.kind === 'audio' ? 'audio' : undefined;
      if (!sending || !type || plans.some((p) => p.type === type)) return { codec: undefined, direction: 'inactive', feedback: [] };
      const codec = pickReceiveCodec(m, type === 'video' ? this.preferredVideoCodecs() : RECEIVE_AUDIO_CODECS);
      if (!codec) return { codec: undefined, direction: 'inactive', feedback: [] };
      const name = codec.name.toUpperCase() === 'OPUS' ? 'opus' : (codec.name.toUpperCase() as 'H264' | 'VP8');
      plans.push({ type, codec: name, payloadType: codec.pt, clockRate: codec.clockRate, channels: Math.max(1, Math.min(2, codec.channels)) });
      return { codec, direction: 'recvonly', feedback: supportedFeedback(codec, true) };
    });
    if (plans.length === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', 'the offer sends no H.264 (packetization-mode 1), VP8 or Opus', { status: 400 });
    let pub: { hub: StreamHub; end(reason: string, clean: boolean): void };
    try {
      pub = hubs.startPublish(stream);
    } catch (err) {
      log.warn(`WebRTC publish of ${stream} from ${req.peer} refused: ${errorText(err)}`);
      throw withStatus(err, 409);
    }
    const identity = await dtlsIdentity();
    const fingerprint = offer.media.find((m) => m.fingerprint)!.fingerprint!;
    let whip: WhipSession | undefined;
    let tracked: TrackedConnection | undefined;
    let ended = false;
    const input = this.deps.stats.inputStarted(stream, 'WebRTC', req.peer);
    let offShutdown: () => void = () => {};
    const peer = new WebRtcPeer(this.mux!, identity, fingerprint, {
      ready: () => log.info(`WebRTC publish of ${stream} from ${req.peer}: connected`),
      rtp: (p) => {
        input.bytesIn += p.payload.length;
        whip?.onRtp(p);
      },
      rtcp: (m) => whip?.onRtcp(m),
      closed: (reason) => session.close(reason, false),
    }, log);
    whip = new WhipSession(peer, pub.hub, plans, log);
    this.publishers.set(stream, whip);
    tracked = this.deps.tracker.open({
      kind: 'input',
      stream,
      host: req.peer,
      token: '',
      connector: 'INPUT:WebRTC',
      requestUrl: req.requestUrl,
      bytes: () => ({ down: peer.counters.bytesOut, up: peer.counters.bytesIn }),
      // MistServer's pktcount / pktloss of an input: packets received and given up on
      progress: () => ({ packets: { sent: whip!.counters.packetsReceived, lost: whip!.counters.lost, retrans: 0 } }),
    });
    const session: Session = {
      id,
      kind: 'whip',
      stream,
      peer,
      close: (reason, clean) => {
        if (ended) return;
        ended = true;
        log.info(`WebRTC publish of ${stream} from ${req.peer} ended: ${reason}`);
        this.sessions.delete(id);
        if (this.publishers.get(stream) === whip) this.publishers.delete(stream);
        whip?.close();
        peer.close(reason);
        offShutdown();
        input.end();
        tracked?.end();
        pub.end(reason, clean);
      },
      counters: () => ({ ...whip!.counters, ...peer.counters }),
    };
    // STREAM_READY or LIVE_BANDWIDTH may shut the stream down
    offShutdown = hubs.onShutdown(stream, (reason) => session.close(reason, true));
    this.sessions.set(id, session);
    log.info(`WebRTC publish of ${stream} from ${req.peer} accepted${grant ? ` (${grant.via})` : ''}: ${plans.map((p) => p.codec).join(' + ')}`);
    const sdp = writeAnswer(offer, answers, { ufrag: peer.localUfrag, pwd: peer.localPwd, ...local }, id.slice(0, 12).replace(/^0+/, '1'));
    return { id, kind: 'whip', stream, sdp };
  }

  private async play(req: WebRtcOfferRequest, offer: SdpSession, id: string, log: Logger, local: { fingerprint: string; candidates: { address: string; port: number }[]; cname: string }): Promise<WebRtcOfferResult> {
    const keyring = this.deps.keyring;
    const raw = rawPushName(req.name);
    // a JWT as the stream name plays its `sub` stream and is the session's token (reference §5.1)
    const grant = keyring ? playNameGrant(raw, keyring, req.peer) : undefined;
    if (grant && !grant.ok) throw new HazeError('HAZE_ERR_REFUSED', `Access denied: invalid token (${grant.reason})`, { status: 403 });
    const name = grant ? grant.stream : sanitizeStreamName(req.name);
    if (!name) throw new HazeError('HAZE_ERR_NOT_FOUND', `invalid stream name ${JSON.stringify(req.name.slice(0, 100))}`, { status: 404 });
    const token = grant ? raw : req.token;
    const tokenValid = (stream: string): boolean => grant !== undefined || (keyring !== undefined && viewerTokenValid(token, stream, keyring, req.peer));
    let peer: WebRtcPeer | undefined;
    const started = await startPlay(
      this.deps.play,
      { stream: name, host: req.peer, connector: 'WebRTC', requestUrl: req.requestUrl },
      token,
      (stream) => this.deps.hubs.forViewer(stream),
      () => {},
      () => ({ down: peer?.counters.bytesOut ?? 0, up: peer?.counters.bytesIn ?? 0 }),
      tokenValid,
    );
    const { stream, conn } = started;
    const hub = started.attached;
    try {
      const tracks = await this.tracksFor(stream, hub, offer, log);
      const plans: SendPlan[] = [];
      const answers: AnswerMedia[] = offer.media.map((m) => {
        const receiving = m.port !== 0 && (m.direction === 'recvonly' || m.direction === 'sendrecv');
        const type = m.kind === 'video' ? 'video' : m.kind === 'audio' ? 'audio' : undefined;
        if (!receiving || !type || plans.some((p) => p.type === type)) return { codec: undefined, direction: 'inactive', feedback: [] };
        for (const t of tracks) {
          if (t.type !== type) continue;
          const codec = pickSendCodec(m, t.codec, t.codec === 'H264' && t.init.length > 1 ? t.init[1] : undefined);
          if (!codec) continue;
          const feedback = supportedFeedback(codec, false);
          const ssrc = randomBytes(4).readUInt32BE(0);
          plans.push({ trackId: t.id, type, codec: t.codec, payloadType: codec.pt, clockRate: rtpClockRate(t), ssrc, nack: feedback.includes('nack') });
          // Opus in stereo when the track is (RFC 7587 §7.1)
          const fmtp = t.type === 'audio' && t.codec === 'opus' ? `minptime=10;useinbandfec=1${t.channels > 1 ? ';stereo=1;sprop-stereo=1' : ''}` : undefined;
          return { codec, direction: 'sendonly', feedback, ssrc, msid: { stream: 'haze', track: `${type}${t.id}` }, ...(fmtp ? { fmtp } : {}) };
        }
        return { codec: undefined, direction: 'inactive', feedback: [] };
      });
      if (plans.length === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `no track of ${stream} (${hub.tracks.map((t) => t.codec).join(', ')}) can be sent with the offered codecs`, { status: 406 });
      const identity = await dtlsIdentity();
      const fingerprint = offer.media.find((m) => m.fingerprint)!.fingerprint!;
      let whep: WhepSession | undefined;
      let ended = false;
      const thisPeer = new WebRtcPeer(this.mux!, identity, fingerprint, {
        ready: () => {
          log.info(`WebRTC play of ${stream} by ${req.peer}: connected`);
          whep?.start();
        },
        rtp: () => {},
        rtcp: (m) => whep?.onRtcp(m),
        closed: (reason) => session.close(reason, false),
      }, log);
      peer = thisPeer;
      whep = new WhepSession(thisPeer, hub, plans, {
        cname: local.cname,
        log,
        requestKeyframe: () => this.publishers.get(stream)?.requestKeyframe(),
        onEnd: (reason) => session.close(reason, false),
      });
      // session control (stop_sessions, stop_sessid) ends it like any viewer
      const notPlaying = this.deps.stats.playing(stream, 'WebRTC', req.peer, (reason) => session.close(reason, false));
      const session: Session = {
        id,
        kind: 'whep',
        stream,
        peer: thisPeer,
        close: (reason) => {
          if (ended) return;
          ended = true;
          log.info(`WebRTC play of ${stream} by ${req.peer} ended: ${reason}`);
          notPlaying();
          this.sessions.delete(id);
          whep?.close(reason);
          thisPeer.close(reason);
          conn.close();
        },
        counters: () => ({ ...whep!.counters, ...thisPeer.counters }),
      };
      this.sessions.set(id, session);
      log.info(`WebRTC play of ${stream} by ${req.peer}: ${plans.map((p) => `${p.codec}/${p.payloadType}`).join(' + ')}`);
      const sdp = writeAnswer(offer, answers, { ufrag: thisPeer.localUfrag, pwd: thisPeer.localPwd, ...local }, id.slice(0, 12).replace(/^0+/, '1'));
      return { id, kind: 'whep', stream, sdp };
    } catch (err) {
      closeConn(conn);
      throw err;
    }
  }

  /**
   * The stream's tracks a viewer may get: for an AAC stream without Opus, the Opus track a
   * stream process makes (asked for here, waited for a few seconds) when the offer takes audio.
   */
  private async tracksFor(stream: string, hub: StreamHub, offer: SdpSession, log: Logger): Promise<readonly Track[]> {
    const wantsAudio = offer.media.some((m) => m.kind === 'audio' && m.port !== 0);
    const hasOpus = hub.tracks.some((t) => t.type === 'audio' && WEBRTC_CODECS.audio.includes(t.codec));
    const hasOtherAudio = hub.tracks.some((t) => t.type === 'audio' && !WEBRTC_CODECS.audio.includes(t.codec));
    if (!wantsAudio || hasOpus || !hasOtherAudio) return hub.tracks;
    if (!this.deps.ensureOpus) {
      log.info(`WebRTC play of ${stream}: its audio (${hub.tracks.filter((t) => t.type === 'audio').map((t) => t.codec).join(', ')}) cannot be sent and no Opus process is available: video only`);
      return hub.tracks;
    }
    const r = await this.deps.ensureOpus(stream);
    if (!r.ok) {
      log.info(`WebRTC play of ${stream}: no Opus track (${r.reason ?? 'unknown reason'}): video only`);
      return hub.tracks;
    }
    // the process's track reaches this hub (a relay when another worker hosts the stream) shortly after
    const until = Date.now() + OPUS_WAIT_MS;
    while (Date.now() < until && !hub.isEnded) {
      if (hub.tracks.some((t) => t.type === 'audio' && t.codec === 'opus')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return hub.tracks;
  }

  /**
   * The video codecs a publisher may send, best first: the WebRTC connector's
   * `preferredvideocodec` (MistServer's option, comma-separated) where Haze can take them in,
   * else H.264 then VP8 (H.264 also goes out over RTMP, HLS and TS).
   */
  private preferredVideoCodecs(): string[] {
    const v = connectorConfig(this.deps.config)?.['preferredvideocodec'];
    const asked = typeof v === 'string' ? v.split(',').map((c) => c.trim().toUpperCase()).filter((c) => (RECEIVE_VIDEO_CODECS as readonly string[]).includes(c)) : [];
    return asked.length > 0 ? asked : [...RECEIVE_VIDEO_CODECS];
  }

  /** Ends a session (DELETE on its Location, a WebSocket that closed); false when there is none. */
  end(id: string, reason = 'ended by the client'): boolean {
    const s = this.sessions.get(id);
    if (!s) return false;
    s.close(reason, true);
    return true;
  }

  close(): void {
    for (const s of [...this.sessions.values()]) s.close('server stopping', false);
  }
}

/** A HazeError carrying an HTTP status (its own, or `fallback`). */
function withStatus(err: unknown, fallback: number): HazeError {
  if (isHazeError(err)) return err.status !== undefined ? err : new HazeError(err.code, err.message, { status: err.code === 'HAZE_ERR_BUSY' ? 409 : fallback, fatal: err.fatal });
  return new HazeError('HAZE_ERR_REFUSED', errorText(err), { status: fallback });
}

function closeConn(conn: PlayConnection): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** How long a forwarded offer may take (a viewer may wait for its stream, then for an Opus track). */
const FORWARD_TIMEOUT_MS = 20_000;

/**
 * The signalling of one worker: its own service when it owns the UDP port, else the owner's
 * over its control socket (`ownerSocket`, workerSocketPath of UDP_OWNER).
 */
export function webrtcSignalling(service: WebRtcService, ownerSocket: string, config: Pick<ConfigView, 'get'>, ask: (socket: string, request: unknown, timeoutMs: number) => Promise<unknown>): WebRtcSignalling {
  const forward = async (request: Record<string, unknown>): Promise<Record<string, unknown>> => {
    let answer: unknown;
    try {
      answer = await ask(ownerSocket, request, FORWARD_TIMEOUT_MS);
    } catch (err) {
      throw new HazeError('HAZE_ERR_OFFLINE', `WebRTC is not served (the worker owning its UDP port did not answer: ${errorText(err)})`, { status: 503 });
    }
    if (typeof answer !== 'object' || answer === null) throw new HazeError('HAZE_ERR_PROTOCOL', 'the WebRTC worker answered nothing', { status: 502 });
    return answer as Record<string, unknown>;
  };
  return {
    offer: async (req) => {
      if (service.serving) return service.offer(req);
      const a = await forward({ op: 'webrtc.offer', request: req });
      if (typeof a['sdp'] !== 'string' || typeof a['id'] !== 'string') throw forwardedError(a);
      return a as unknown as WebRtcOfferResult;
    },
    end: async (id, reason) => {
      if (service.serving) return service.end(id, reason);
      return (await forward({ op: 'webrtc.end', id, ...(reason ? { reason } : {}) }))['ended'] === true;
    },
    iceServers: () => iceServers(config),
  };
}
