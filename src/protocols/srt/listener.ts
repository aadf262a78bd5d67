// The listener side of the caller-listener handshake (draft-sharabayko-srt §4.3.1), pure: what
// to answer an INDUCTION (version 5, the SRT magic, a SYN cookie bound to the caller's address
// and the minute, so that nothing is kept for callers that never conclude) and whether to accept
// a CONCLUSION (its cookie, HSREQ, stream id, and the key material against the passphrase) and
// with which HSRSP/KMRSP. The multiplexer sends the answers and creates the connection.

import crypto from 'node:crypto';
import { errorText, isHazeError } from '../../util/errors.js';
import { SrtCipher } from './crypto.js';
import {
  DEFAULT_FLOW_WINDOW,
  DEFAULT_MTU,
  EXT_CONGESTION,
  EXT_HSREQ,
  EXT_HSRSP,
  EXT_KMREQ,
  EXT_KMRSP,
  EXT_SID,
  findExtension,
  HS_CONCLUSION,
  HS_EXT_HSREQ,
  HS_EXT_KMREQ,
  HS_INDUCTION,
  OUR_SRT_FLAGS,
  OUR_SRT_VERSION,
  parseHsMessage,
  parseStreamIdExtension,
  peerIpField,
  REJ_BADSECRET,
  REJ_CONGESTION,
  REJ_MESSAGEAPI,
  REJ_ROGUE,
  REJ_UNSECURE,
  REJ_VERSION,
  serializeHsMessage,
  SRT_FLAG_STREAM,
  SRT_MAGIC,
  type Handshake,
  type SrtHsMessage,
} from './handshake.js';
import { parseKeyMaterial } from './key-material.js';


/** A SYN cookie for a caller address in a given minute (32 bits of an HMAC with the listener's secret). */
export function synCookie(secret: Buffer, address: string, port: number, minute: number): number {
  return crypto.createHmac('sha1', secret).update(`${address}|${port}|${minute}`).digest().readUInt32BE(0);
}

/** Whether `cookie` was made for this address in this minute or the one before. */
export function cookieValid(secret: Buffer, address: string, port: number, nowMinute: number, cookie: number): boolean {
  return cookie === synCookie(secret, address, port, nowMinute) || cookie === synCookie(secret, address, port, nowMinute - 1);
}

export function inductionResponse(req: Handshake, listenerSocketId: number, cookie: number, peerAddress: string): Handshake {
  return {
    version: 5,
    // the caller decides the key length (0: nothing advertised)
    encryptionField: 0,
    extensionField: SRT_MAGIC,
    initialSeq: req.initialSeq,
    mtu: Math.min(req.mtu || DEFAULT_MTU, DEFAULT_MTU),
    flowWindow: DEFAULT_FLOW_WINDOW,
    type: HS_INDUCTION,
    socketId: listenerSocketId,
    cookie,
    peerIp: peerIpField(peerAddress),
    extensions: [],
  };
}

/** What an accepted conclusion sets up. */
export interface AcceptedHandshake {
  streamId: string;
  peerSocketId: number;
  /** Both directions start at the caller's initial sequence number (the response repeats it). */
  initialSeq: number;
  latencyMs: number;
  peerFlowWindow: number;
  mtu: number;
  cipher: SrtCipher | undefined;
  /** The caller's HSREQ. */
  peerHs: SrtHsMessage;
  response: Handshake;
}

export type ConclusionAnswer = { ok: true; accepted: AcceptedHandshake } | { ok: false; code: number; why: string; response: Handshake };

export interface ConclusionPolicy {
  latencyMs: number;
  /** The passphrase a caller asking for this stream id must use; undefined or '' when none. */
  passphraseFor(streamId: string): string | undefined;
}

/**
 * Decides on a CONCLUSION whose cookie was checked: accepted with the response to send, or
 * refused with a rejection code (the response then carries the code as its type).
 */
export function answerConclusion(req: Handshake, policy: ConclusionPolicy, localSocketId: number, peerAddress: string): ConclusionAnswer {
  const base: Handshake = {
    version: 5,
    encryptionField: 0,
    extensionField: 0,
    initialSeq: req.initialSeq,
    mtu: Math.min(req.mtu || DEFAULT_MTU, DEFAULT_MTU),
    flowWindow: DEFAULT_FLOW_WINDOW,
    type: HS_CONCLUSION,
    socketId: localSocketId,
    cookie: req.cookie,
    peerIp: peerIpField(peerAddress),
    extensions: [],
  };
  const reject = (code: number, why: string): ConclusionAnswer => ({ ok: false, code, why, response: { ...base, type: code } });
  if (req.version !== 5) return reject(REJ_VERSION, `handshake version ${req.version} (only version 5 callers)`);
  let peerHs: SrtHsMessage;
  let streamId = '';
  try {
    const hsreq = findExtension(req, EXT_HSREQ);
    if (!hsreq) return reject(REJ_ROGUE, 'conclusion without HSREQ');
    peerHs = parseHsMessage(hsreq);
    const sid = findExtension(req, EXT_SID);
    if (sid) streamId = parseStreamIdExtension(sid);
  } catch (err) {
    return reject(REJ_ROGUE, errorText(err));
  }
  if (peerHs.flags & SRT_FLAG_STREAM) return reject(REJ_MESSAGEAPI, 'buffer (stream) mode is not supported: live message mode only');
  const congestion = findExtension(req, EXT_CONGESTION);
  if (congestion) {
    const name = parseStreamIdExtension(congestion);
    if (name && name !== 'live') return reject(REJ_CONGESTION, `congestion control "${name}" (only live)`);
  }
  const passphrase = policy.passphraseFor(streamId) || undefined;
  const kmreq = findExtension(req, EXT_KMREQ);
  let cipher: SrtCipher | undefined;
  if (passphrase && !kmreq) return reject(REJ_UNSECURE, 'a passphrase is required');
  if (!passphrase && kmreq) return reject(REJ_UNSECURE, 'the caller encrypts but no passphrase is set');
  if (passphrase && kmreq) {
    try {
      cipher = SrtCipher.fromKeyMaterial(passphrase, parseKeyMaterial(kmreq));
    } catch (err) {
      if (isHazeError(err) && err.code === 'HAZE_ERR_AUTH') return reject(REJ_BADSECRET, 'wrong passphrase');
      return reject(REJ_ROGUE, `key material: ${errorText(err)}`);
    }
  }
  const latencyMs = Math.max(policy.latencyMs, peerHs.receiverDelayMs, peerHs.senderDelayMs);
  const response: Handshake = {
    ...base,
    encryptionField: req.encryptionField,
    extensionField: HS_EXT_HSREQ | (cipher ? HS_EXT_KMREQ : 0),
    extensions: [
      { type: EXT_HSRSP, data: serializeHsMessage({ srtVersion: OUR_SRT_VERSION, flags: OUR_SRT_FLAGS, receiverDelayMs: latencyMs, senderDelayMs: latencyMs }) },
      // the responder answers the key material it could use with the same message
      ...(cipher && kmreq ? [{ type: EXT_KMRSP, data: kmreq }] : []),
    ],
  };
  return {
    ok: true,
    accepted: { streamId, peerSocketId: req.socketId, initialSeq: req.initialSeq, latencyMs, peerFlowWindow: req.flowWindow || DEFAULT_FLOW_WINDOW, mtu: response.mtu, cipher, peerHs, response },
  };
}
