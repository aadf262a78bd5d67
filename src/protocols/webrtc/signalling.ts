// WebRTC signalling as Haze speaks it (reference §6.3): WHIP (RFC 9725) and WHEP POST an SDP
// offer and get `201 Created` with the answer and a Location to DELETE when done (PATCH, trickle
// ICE, is answered 405 as MistServer does: Haze is ICE-lite and needs no remote candidates), and
// MistServer's WebSocket signalling on /webrtc/NAME: `{"type":"offer_sdp","offer_sdp":SDP}` is
// answered `{"type":"on_answer_sdp","result":true,"answer_sdp":SDP}` (result false on failure),
// errors are `{"type":"on_error","command":TYPE,"message":TEXT}`. Pure: the route and the
// worker share these shapes; an offer is plain data so a worker can forward it to the one that
// owns the UDP port.

import { HazeError } from '../../util/errors.js';

/** An SDP offer as the signalling received it. */
export interface WebRtcOfferRequest {
  /** `auto`: decided by the offer's directions (a sending offer publishes), as MistServer's /webrtc/ does. */
  kind: 'whip' | 'whep' | 'auto';
  /** The stream name as asked (URL-decoded path segment; for WHIP it may be a stream key or a JWT). */
  name: string;
  sdp: string;
  /** The client's address (DESIGN §5 normalised). */
  peer: string;
  /** The local address the client reached the HTTP port on: the host candidate to offer. */
  localAddress: string;
  /** The Host header's host name: an IP literal there is offered too. */
  host: string;
  requestUrl: string;
  /** The request's query string (without `?`): `pass`, `tkn`. */
  query: string;
  /** A Bearer token or `tkn` the request carried ('' if none). */
  token: string;
}

export interface WebRtcOfferResult {
  /** The session id (the last segment of the Location). */
  id: string;
  kind: 'whip' | 'whep';
  /** The stream it publishes or plays (after rewrites). */
  stream: string;
  sdp: string;
}

/** What the HTTP side needs: the local service in the worker owning the UDP port, a forwarder elsewhere. */
export interface WebRtcSignalling {
  /** Answers an offer; a HazeError (with `status`) when refused. */
  offer(req: WebRtcOfferRequest): Promise<WebRtcOfferResult>;
  /** Ends a session; false when there is none. */
  end(id: string, reason?: string): Promise<boolean>;
  /** The WebRTC connector's `iceservers` (RTCIceServer objects). */
  iceServers(): unknown[];
}

/** Messages of the WebSocket signalling Haze acts on. */
export type SignallingCommand = { type: 'offer_sdp'; sdp: string } | { type: 'stop' } | { type: 'other'; name: string };

/** Largest signalling message (an SDP offer is a few KB). */
export const MAX_SIGNALLING_BYTES = 128 * 1024;

/** Parses one text message of the WebSocket signalling; throws HAZE_ERR_MALFORMED for what is not a command. */
export function parseSignalling(text: string): SignallingCommand {
  if (text.length > MAX_SIGNALLING_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `a signalling message of ${text.length} characters`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new HazeError('HAZE_ERR_MALFORMED', 'a signalling message that is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new HazeError('HAZE_ERR_MALFORMED', 'a signalling message that is not a JSON object');
  const o = v as Record<string, unknown>;
  if (typeof o['type'] !== 'string') throw new HazeError('HAZE_ERR_MALFORMED', 'Received a command but no type property was given.');
  if (o['type'] === 'offer_sdp') {
    const sdp = o['offer_sdp'];
    if (typeof sdp !== 'string' || sdp === '') throw new HazeError('HAZE_ERR_MALFORMED', 'An `offer_sdp` command needs the offer SDP in the `offer_sdp` field.');
    return { type: 'offer_sdp', sdp };
  }
  if (o['type'] === 'stop') return { type: 'stop' };
  return { type: 'other', name: o['type'].slice(0, 100) };
}

/** The `Link` header values that tell a WHIP/WHEP client the ICE servers (RFC 9725 §4.4). */
export function iceServerLinks(servers: readonly unknown[]): string[] {
  const out: string[] = [];
  const quote = (s: unknown): string => JSON.stringify(String(s));
  for (const s of servers) {
    if (typeof s !== 'object' || s === null) continue;
    const o = s as Record<string, unknown>;
    const urls = Array.isArray(o['urls']) ? o['urls'] : o['urls'] !== undefined ? [o['urls']] : o['url'] !== undefined ? [o['url']] : [];
    for (const u of urls) {
      if (typeof u !== 'string' || /[<>\r\n]/.test(u)) continue;
      let link = `<${u}>; rel="ice-server"`;
      if (o['username'] !== undefined) link += `; username=${quote(o['username'])}`;
      if (o['credential'] !== undefined) link += `; credential=${quote(o['credential'])}`;
      if (o['credentialType'] !== undefined) link += `; credential-type=${quote(o['credentialType'])}`;
      if (!/[\r\n]/.test(link)) out.push(link);
    }
  }
  return out;
}
