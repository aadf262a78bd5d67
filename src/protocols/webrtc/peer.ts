// One WebRTC peer on Haze's shared UDP port: ICE-lite state (the address the browser nominated),
// its DTLS handshake (dtls.ts) and, once keyed, SRTP/SRTCP both ways (srtp.ts). Media sessions
// (WHIP ingest, WHEP playback) sit on top and see RTP and RTCP in the clear. A peer that stays
// silent (no consent checks, no media) is closed: browsers send a check at least every few
// seconds (RFC 7675 consent freshness).

import { randomBytes } from 'node:crypto';
import { errorText } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { DtlsEndpoint, type DtlsIdentity } from './dtls.js';
import { looksLikeRtcp, parseRtp, writeRtpHeader, type RtpPacket } from '../rtp/packet.js';
import { parseRtcp, type RtcpPacket } from '../rtp/rtcp.js';
import type { SdpFingerprint } from './sdp.js';
import { SrtpSession } from './srtp.js';
import type { MuxedPeer, UdpMux } from './udp-mux.js';

/** No connectivity check, DTLS or media for this long ends the peer. */
export const PEER_SILENCE_MS = 15_000;
/** A peer that has not finished ICE and DTLS by then is given up. */
export const PEER_CONNECT_MS = 20_000;

export interface PeerHandlers {
  /** ICE and DTLS are done: media may flow. */
  ready(): void;
  rtp(p: RtpPacket): void;
  rtcp(messages: RtcpPacket[]): void;
  closed(reason: string): void;
}

const ICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** A random ICE ufrag or password (RFC 8839 §5.4: ice-char, 4..256; passwords need 22 or more). */
export function iceToken(length: number): string {
  const b = randomBytes(length);
  let s = '';
  for (let i = 0; i < length; i++) s += ICE_CHARS[b[i]! & 63];
  return s;
}

export interface PeerCounters {
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
  /** SRTP/SRTCP datagrams that did not authenticate or parse. */
  badPackets: number;
}

export class WebRtcPeer implements MuxedPeer {
  readonly localUfrag = iceToken(16);
  readonly localPwd = iceToken(32);
  private remote: { address: string; port: number } | undefined;
  private nominated = false;
  private readonly dtls: DtlsEndpoint;
  private srtpIn: SrtpSession | undefined;
  private srtpOut: SrtpSession | undefined;
  private lastHeardMs = Date.now();
  private readonly startedMs = Date.now();
  private readonly watchdog: NodeJS.Timeout;
  private closedReason: string | undefined;
  readonly counters: PeerCounters = { bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0, badPackets: 0 };
  private readonly rtpHeader = Buffer.alloc(12);

  constructor(
    private readonly mux: UdpMux,
    identity: DtlsIdentity,
    remoteFingerprint: SdpFingerprint,
    private readonly handlers: PeerHandlers,
    private readonly log: Logger,
  ) {
    this.dtls = new DtlsEndpoint(identity, (d) => this.sendRaw(d, false), remoteFingerprint, {
      connected: (keys) => {
        this.srtpOut = new SrtpSession(keys.localKey, keys.localSalt, keys.profile);
        this.srtpIn = new SrtpSession(keys.remoteKey, keys.remoteSalt, keys.profile);
        this.log.debug(`WebRTC: DTLS done with ${this.remote?.address}:${this.remote?.port} (SRTP profile ${keys.profile})`);
        this.safely(() => this.handlers.ready());
      },
      closed: (reason) => this.close(reason),
    });
    mux.add(this);
    this.watchdog = setInterval(() => {
      const now = Date.now();
      if (!this.srtpOut && now - this.startedMs > PEER_CONNECT_MS) this.close('ICE/DTLS did not complete in time');
      else if (now - this.lastHeardMs > PEER_SILENCE_MS) this.close(`nothing heard from the peer for ${PEER_SILENCE_MS / 1000} s`);
    }, 1000);
    this.watchdog.unref();
  }

  get connected(): boolean {
    return this.srtpOut !== undefined && this.closedReason === undefined;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** The browser's address Haze sends to (the nominated pair's), once known. */
  get remoteAddress(): string | undefined {
    return this.remote?.address;
  }

  onCheck(address: string, port: number, nominated: boolean): void {
    this.lastHeardMs = Date.now();
    // the controlling agent's nomination wins; before it, the first pair that worked
    if (!this.remote || (nominated && (!this.nominated || this.remote.address !== address || this.remote.port !== port))) {
      this.remote = { address, port };
      if (nominated) this.nominated = true;
    }
  }

  onDtls(datagram: Buffer): void {
    this.lastHeardMs = Date.now();
    this.counters.bytesIn += datagram.length;
    this.dtls.receive(datagram);
  }

  onSrtp(datagram: Buffer): void {
    this.lastHeardMs = Date.now();
    this.counters.bytesIn += datagram.length;
    this.counters.packetsIn++;
    const srtp = this.srtpIn;
    if (!srtp || this.closedReason !== undefined) return;
    try {
      if (looksLikeRtcp(datagram)) {
        const messages = parseRtcp(srtp.unprotectRtcp(datagram));
        this.safely(() => this.handlers.rtcp(messages));
      } else {
        const p = parseRtp(srtp.unprotectRtp(datagram));
        this.safely(() => this.handlers.rtp(p));
      }
    } catch {
      // a datagram that does not authenticate or parse is one lost packet, not a fault
      this.counters.badPackets++;
    }
  }

  /** Protects and sends one RTP packet; returns the bytes sent (0 before the keys or after close). */
  sendRtp(marker: boolean, payloadType: number, seq: number, timestamp: number, ssrc: number, roc: number, payload: Buffer): number {
    const srtp = this.srtpOut;
    if (!srtp || !this.remote || this.closedReason !== undefined) return 0;
    writeRtpHeader(this.rtpHeader, 0, payloadType, marker, seq, timestamp, ssrc);
    const datagram = srtp.protectRtp(this.rtpHeader, payload, roc);
    this.sendRaw(datagram, true);
    this.counters.packetsOut++;
    return datagram.length;
  }

  /** Protects and sends one (compound) RTCP packet. */
  sendRtcp(packet: Buffer): void {
    const srtp = this.srtpOut;
    if (!srtp || !this.remote || this.closedReason !== undefined) return;
    this.sendRaw(srtp.protectRtcp(packet), true);
  }

  private sendRaw(datagram: Buffer, media: boolean): void {
    const r = this.remote;
    if (!r) return;
    this.counters.bytesOut += datagram.length;
    this.mux.send(datagram, r.address, r.port, media);
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.warn(`WebRTC: session handler failed: ${err instanceof Error ? (err.stack ?? err.message) : errorText(err)}`);
      this.close(`internal error: ${errorText(err)}`);
    }
  }

  /** Ends the peer (idempotent): no more datagrams in or out. */
  close(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    clearInterval(this.watchdog);
    this.mux.remove(this);
    this.dtls.close();
    try {
      this.handlers.closed(reason);
    } catch (err) {
      this.log.warn(`WebRTC: close handler failed: ${errorText(err)}`);
    }
  }
}
