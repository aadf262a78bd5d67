// The WebRTC signalling endpoints of the HTTP port (reference §6.3; protocols/webrtc/signalling.ts):
//   POST /whip/NAME, POST /whep/NAME, POST /webrtc/NAME   SDP offer -> 201 + SDP answer + Location
//   DELETE <Location>                                     ends the session
//   PATCH  <any of them>                                  405 (no trickle ICE: Haze is ICE-lite)
//   GET /webrtc/NAME with Upgrade: websocket              MistServer's WebSocket signalling
// The sessions themselves live in the worker that owns the WebRTC UDP port; `signalling` is that
// worker's service or a forwarder to it (worker-main.ts), so every worker serves these URLs.

import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { MediaRequest, MediaResponder, MediaRoute, MediaUpgrade } from '../protocols/http/media-server.js';
import { normalizeAddress } from '../protocols/http/media-server.js';
import { CLOSE, WS_VERSION, WebSocketError, WebSocketFrameReader, checkUpgradeRequest, closeFrame, pongFrame, refusalResponse, textFrame, upgradeResponse } from '../protocols/http/websocket.js';
import { MAX_SDP_BYTES } from '../protocols/webrtc/sdp.js';
import { MAX_SIGNALLING_BYTES, iceServerLinks, parseSignalling, type WebRtcOfferRequest, type WebRtcSignalling } from '../protocols/webrtc/signalling.js';
import { viewerToken } from '../access/viewer-access.js';
import { HazeError, errorText, isHazeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { sessionId } from './play.js';

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8' };
/** `/whip/NAME`, `/whep/NAME`, `/webrtc/NAME`, each optionally followed by `/SESSION` (the Location). */
const PATH = /^\/(whip|whep|webrtc)\/([^/]+)(?:\/([0-9a-f]{16}))?\/?$/;
/** WebSocket signalling clients write little; the socket is closed on one that writes more than this unread. */
const WS_MAX_BUFFERED = 1024 * 1024;
const WS_CLOSE_GRACE_MS = 2000;

function hostName(req: { headers: http.IncomingHttpHeaders }): string {
  const host = String(req.headers['x-mst-path'] ?? '') || String(req.headers.host ?? '');
  try {
    return new URL(host.includes('://') ? host : `http://${host}`).hostname;
  } catch {
    return '';
  }
}

function offerRequest(kind: WebRtcOfferRequest['kind'], name: string, sdp: string, req: { headers: http.IncomingHttpHeaders; socket: { localAddress?: string | undefined } }, peer: string, path: string, query: URLSearchParams): WebRtcOfferRequest {
  const q = query.toString();
  return {
    kind,
    name,
    sdp,
    peer,
    localAddress: normalizeAddress(req.socket.localAddress),
    host: hostName(req),
    requestUrl: `http://${String(req.headers.host ?? 'localhost')}${path}${q ? `?${q}` : ''}`,
    query: q,
    token: viewerToken(query, req.headers),
  };
}

function statusOf(err: unknown): number {
  if (!isHazeError(err)) return 500;
  if (err.status !== undefined) return err.status;
  return err.code === 'HAZE_ERR_NOT_FOUND' ? 404 : err.code === 'HAZE_ERR_OFFLINE' ? 503 : err.code === 'HAZE_ERR_REFUSED' || err.code === 'HAZE_ERR_AUTH' ? 403 : 400;
}

/** The WHIP/WHEP routes. */
export function webrtcRoute(signalling: WebRtcSignalling): MediaRoute {
  return async (req: MediaRequest, res: MediaResponder, log: Logger) => {
    const m = PATH.exec(req.path);
    if (!m) return false;
    const [, endpoint, name, id] = m as unknown as [string, 'whip' | 'whep' | 'webrtc', string, string | undefined];
    if (req.method === 'PATCH') {
      res.send(405, { ...TEXT, Allow: 'POST, DELETE, OPTIONS' }, 'PATCH not supported: this endpoint only supports WHIP/WHEP POST requests or WebSocket connections\n');
      return true;
    }
    if (req.method === 'DELETE') {
      if (!id) {
        res.send(405, { ...TEXT, Allow: 'POST, OPTIONS' }, 'DELETE a session at the Location its POST answered\n');
        return true;
      }
      const ended = await signalling.end(id, 'the client ended it (DELETE)');
      res.send(ended ? 200 : 404, TEXT, ended ? 'Session ended\n' : `No session ${id}\n`);
      return true;
    }
    if (req.method !== 'POST' || id) {
      res.send(405, { ...TEXT, Allow: 'POST, OPTIONS' }, 'Must POST an SDP offer or use a WebSocket: this endpoint only supports WHIP/WHEP POST requests or WebSocket connections\n');
      return true;
    }
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/sdp') {
      res.send(415, TEXT, 'An SDP offer is POSTed with Content-Type: application/sdp\n');
      return true;
    }
    if (!req.readBody) return false;
    const sdp = (await req.readBody(MAX_SDP_BYTES)).toString('utf8');
    const kind = endpoint === 'webrtc' ? 'auto' : endpoint;
    const offer = offerRequest(kind, name, sdp, req, req.peer, req.path, req.query);
    const links = iceServerLinks(signalling.iceServers());
    const linkHeader: Record<string, string> = links.length > 0 ? { Link: links.join(', ') } : {};
    try {
      const r = await signalling.offer(offer);
      res.send(
        201,
        {
          'Content-Type': 'application/sdp',
          Location: `/${endpoint}/${encodeURIComponent(name).replace(/%2B/g, '+')}/${r.id}`,
          'X-Haze-Session': sessionId(r.stream, req.peer, offer.token),
          'Cache-Control': 'no-cache',
          ...linkHeader,
        },
        r.sdp,
      );
    } catch (err) {
      const status = statusOf(err);
      if (!isHazeError(err)) log.error(`WebRTC offer for ${name} failed: ${err instanceof Error ? err.stack : String(err)}`);
      res.send(status, { ...TEXT, ...linkHeader, ...(status === 503 ? { 'Retry-After': '5' } : {}) }, `${isHazeError(err) ? err.message : 'Internal error'}\n`);
    }
    return true;
  };
}

/** The WebSocket signalling on /webrtc/NAME (one connection, any number of offers in turn). */
export function webrtcWebSocket(signalling: WebRtcSignalling): MediaUpgrade {
  return (req, socket, head, log) => {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname);
    } catch {
      return false;
    }
    const m = /^\/webrtc\/([^/]+)\/?$/.exec(path);
    if (!m) return false;
    const name = m[1]!;
    const query = new URL(req.url ?? '/', 'http://localhost').searchParams;
    let key: string;
    try {
      key = checkUpgradeRequest(req);
    } catch (err) {
      const status = isHazeError(err) ? (err.status ?? 400) : 400;
      socket.once('finish', () => socket.destroy());
      socket.end(refusalResponse(status, isHazeError(err) ? err.message : 'bad WebSocket handshake', status === 426 ? { 'Sec-WebSocket-Version': WS_VERSION } : undefined));
      return true;
    }
    const peer = normalizeAddress((req.socket as { remoteAddress?: string }).remoteAddress);
    new SignallingConnection(signalling, req, socket, name, query, peer, log.child({ proto: 'WebRTC', peer })).start(key, head);
    return true;
  };
}

/** One WebSocket signalling client; the sessions it started end when it goes. */
class SignallingConnection {
  private readonly reader = new WebSocketFrameReader({ maxPayloadBytes: MAX_SIGNALLING_BYTES });
  private readonly sessions = new Set<string>();
  private closed = false;
  /** Offers are answered one at a time, in order. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly signalling: WebRtcSignalling,
    private readonly req: http.IncomingMessage,
    private readonly socket: Duplex,
    private readonly name: string,
    private readonly query: URLSearchParams,
    private readonly peer: string,
    private readonly log: Logger,
  ) {}

  start(key: string, head: Buffer): void {
    const s = this.socket;
    const sock = this.req.socket;
    sock.setTimeout(0);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 30_000);
    s.write(upgradeResponse(key));
    s.on('data', (chunk: Buffer) => this.onData(chunk));
    s.on('close', () => this.onClose());
    s.on('error', () => {});
    if (head.length > 0) this.onData(head);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    let messages;
    try {
      messages = this.reader.push(chunk);
    } catch (err) {
      this.log.info(`WebRTC signalling: ${errorText(err)}`);
      this.close(err instanceof WebSocketError ? err.closeCode : CLOSE.protocolError, 'protocol error');
      return;
    }
    for (const msg of messages) {
      if (msg.type === 'ping') {
        if (this.socket.writableLength < WS_MAX_BUFFERED) this.socket.write(pongFrame(msg.data));
      } else if (msg.type === 'close') {
        this.close(CLOSE.normal, '');
        return;
      } else if (msg.type === 'text') {
        const text = msg.text;
        this.chain = this.chain.then(() => this.onCommand(text)).catch((err: unknown) => this.log.warn(`WebRTC signalling: ${errorText(err)}`));
      }
    }
  }

  private async onCommand(text: string): Promise<void> {
    if (this.closed) return;
    let cmd;
    try {
      cmd = parseSignalling(text);
    } catch (err) {
      this.send({ type: 'on_error', command: 'error', message: isHazeError(err) ? err.message : errorText(err) });
      return;
    }
    if (cmd.type === 'stop') {
      await this.endSessions('the client sent stop');
      this.send({ type: 'on_stop' });
      return;
    }
    if (cmd.type === 'other') {
      this.send({ type: 'on_error', command: cmd.name, message: `Unhandled command type: ${cmd.name}` });
      return;
    }
    // a new offer replaces the connection's previous session (a renegotiating player)
    await this.endSessions('a new offer replaced it');
    try {
      const r = await this.signalling.offer(offerRequest('auto', this.name, cmd.sdp, this.req, this.peer, `/webrtc/${this.name}`, this.query));
      if (this.closed) {
        await this.signalling.end(r.id, 'the signalling connection closed');
        return;
      }
      this.sessions.add(r.id);
      this.send({ type: 'on_answer_sdp', result: true, answer_sdp: r.sdp });
    } catch (err) {
      this.log.info(`WebRTC signalling offer for ${this.name} refused: ${errorText(err)}`);
      this.send({ type: 'on_answer_sdp', result: false });
      this.send({ type: 'on_error', command: 'offer_sdp', message: isHazeError(err) ? err.message : 'Internal error' });
    }
  }

  private async endSessions(reason: string): Promise<void> {
    const ids = [...this.sessions];
    this.sessions.clear();
    for (const id of ids) {
      try {
        await this.signalling.end(id, reason);
      } catch (err) {
        this.log.debug(`WebRTC signalling: ending ${id}: ${errorText(err)}`);
      }
    }
  }

  private send(obj: unknown): void {
    if (this.closed || this.socket.writableLength > WS_MAX_BUFFERED) return;
    this.socket.write(textFrame(JSON.stringify(obj)));
  }

  private onClose(): void {
    if (!this.closed) this.closed = true;
    void this.endSessions('the signalling connection closed').catch(() => {});
  }

  private close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.socket.writableEnded && !this.socket.destroyed) {
      this.socket.write(closeFrame(code, reason));
      this.socket.end();
    }
    setTimeout(() => this.socket.destroy(), WS_CLOSE_GRACE_MS).unref();
    void this.endSessions('the signalling connection closed').catch(() => {});
  }
}

/** A HazeError from a forwarded answer `{error, status}`. */
export function forwardedError(answer: { error?: unknown; status?: unknown }): HazeError {
  const status = typeof answer.status === 'number' ? answer.status : 502;
  return new HazeError(status === 404 ? 'HAZE_ERR_NOT_FOUND' : status === 503 ? 'HAZE_ERR_OFFLINE' : status === 403 ? 'HAZE_ERR_REFUSED' : 'HAZE_ERR_PROTOCOL', String(answer.error ?? 'the WebRTC worker did not answer'), { status });
}
