// Haze's one WebRTC UDP port (DESIGN §3; default 18203) shared by every peer: each datagram is
// classified by its first byte (RFC 7983 §7: 0..3 STUN, 20..63 DTLS, 128..191 RTP/RTCP) and
// handed to its peer. STUN Binding requests find their peer by the USERNAME's first half (our
// ICE ufrag), are checked with that peer's password and answered here (ICE-lite: Haze never
// sends checks of its own); a remote address that passed a check is bound to the peer, and DTLS
// and SRTP datagrams are routed by that address. Anything else is dropped and counted.
//
// Test switch: HAZE_TEST_UDP_DROP=0.05 drops that share of the SRTP/SRTCP datagrams Haze sends
// (never STUN or DTLS), to show NACK retransmission at work on loopback, where the address in
// the ICE candidates leaves no room for a lossy relay between browser and server.

import { errorText } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { ATTR, STUN_BINDING_REQUEST, bindingError, bindingSuccess, looksLikeStun, parseStun, stunAttribute, stunUsername, verifyFingerprint, verifyIntegrity } from './stun.js';

/** What the mux needs of a peer. */
export interface MuxedPeer {
  readonly localUfrag: string;
  readonly localPwd: string;
  /** A valid connectivity check came from this address; `nominated` when it carried USE-CANDIDATE. */
  onCheck(address: string, port: number, nominated: boolean): void;
  onDtls(datagram: Buffer): void;
  onSrtp(datagram: Buffer): void;
}

/** The socket side: dgram.Socket satisfies it; tests pass a fake. */
export interface DatagramSender {
  send(msg: Buffer, port: number, address: string): void;
}

/** Remote addresses one peer may be reached at (one per candidate pair the browser checked). */
const MAX_ADDRESSES_PER_PEER = 8;

export interface UdpMuxCounters {
  datagramsIn: number;
  datagramsOut: number;
  /** Datagrams from addresses no peer owns, or of no known kind. */
  unknown: number;
  /** STUN requests refused (bad integrity, unknown ufrag, malformed). */
  stunRefused: number;
  /** Media datagrams dropped on purpose by HAZE_TEST_UDP_DROP. */
  testDropped: number;
}

function dropRateFromEnv(): number {
  const v = Number(process.env['HAZE_TEST_UDP_DROP'] ?? '');
  return Number.isFinite(v) && v > 0 && v < 1 ? v : 0;
}

/** An address as STUN reports it: IPv4-mapped IPv6 written as IPv4 (DESIGN §5). */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class UdpMux {
  private readonly byUfrag = new Map<string, MuxedPeer>();
  private readonly byAddress = new Map<string, MuxedPeer>();
  private readonly addressesOf = new Map<MuxedPeer, string[]>();
  readonly counters: UdpMuxCounters = { datagramsIn: 0, datagramsOut: 0, unknown: 0, stunRefused: 0, testDropped: 0 };
  readonly dropRate: number;

  constructor(
    private readonly socket: DatagramSender,
    private readonly log: Logger,
    opts: { dropRate?: number } = {},
  ) {
    this.dropRate = opts.dropRate ?? dropRateFromEnv();
    if (this.dropRate > 0) log.warn(`HAZE_TEST_UDP_DROP: dropping ${(this.dropRate * 100).toFixed(1)}% of outgoing SRTP datagrams (a test switch)`);
  }

  get peerCount(): number {
    return this.byUfrag.size;
  }

  add(peer: MuxedPeer): void {
    this.byUfrag.set(peer.localUfrag, peer);
  }

  remove(peer: MuxedPeer): void {
    if (this.byUfrag.get(peer.localUfrag) === peer) this.byUfrag.delete(peer.localUfrag);
    for (const key of this.addressesOf.get(peer) ?? []) if (this.byAddress.get(key) === peer) this.byAddress.delete(key);
    this.addressesOf.delete(peer);
  }

  /** Sends to a peer; `media` datagrams (SRTP/SRTCP) are subject to the test drop switch. */
  send(datagram: Buffer, address: string, port: number, media: boolean): void {
    if (media && this.dropRate > 0 && Math.random() < this.dropRate) {
      this.counters.testDropped++;
      return;
    }
    this.counters.datagramsOut++;
    try {
      this.socket.send(datagram, port, address);
    } catch (err) {
      // a closed socket at shutdown, or an address the OS refuses: the peer times out by itself
      this.log.debug(`WebRTC: send to ${address}:${port} failed: ${errorText(err)}`);
    }
  }

  /** One datagram from the socket. Never throws. */
  receive(datagram: Buffer, address: string, port: number): void {
    this.counters.datagramsIn++;
    const first = datagram[0];
    if (first === undefined) return;
    if (first < 4) {
      this.onStun(datagram, address, port);
      return;
    }
    const peer = this.byAddress.get(`${address}|${port}`);
    if (!peer) {
      this.counters.unknown++;
      return;
    }
    try {
      if (first >= 20 && first <= 63) peer.onDtls(datagram);
      else if (first >= 128 && first <= 191) peer.onSrtp(datagram);
      else this.counters.unknown++;
    } catch (err) {
      // a peer's handler never throws by contract; if one does, that datagram is lost, not the port
      this.log.warn(`WebRTC: a datagram from ${address}:${port} failed: ${errorText(err)}`);
    }
  }

  private onStun(datagram: Buffer, address: string, port: number): void {
    if (!looksLikeStun(datagram)) {
      this.counters.unknown++;
      return;
    }
    let msg;
    try {
      msg = parseStun(datagram);
    } catch {
      this.counters.stunRefused++;
      return;
    }
    // responses and indications (keep-alives) need no answer from an ICE-lite agent
    if (msg.type !== STUN_BINDING_REQUEST) return;
    const username = stunUsername(msg);
    const colon = username?.indexOf(':') ?? -1;
    const peer = username !== undefined && colon > 0 ? this.byUfrag.get(username.slice(0, colon)) : undefined;
    if (!peer || !verifyFingerprint(datagram, msg) || !verifyIntegrity(datagram, msg, peer.localPwd)) {
      this.counters.stunRefused++;
      // RFC 8445 §7.3: a request that fails the credential checks gets 401 (without integrity)
      if (msg.integrityOffset >= 0 || username !== undefined) this.send(bindingError(msg.transactionId, 401, 'Unauthorized'), address, port, false);
      return;
    }
    this.send(bindingSuccess(msg.transactionId, plainAddress(address), port, peer.localPwd), address, port, false);
    this.bind(peer, address, port);
    try {
      peer.onCheck(address, port, stunAttribute(msg, ATTR.USE_CANDIDATE) !== undefined);
    } catch (err) {
      this.log.warn(`WebRTC: a check from ${address}:${port} failed: ${errorText(err)}`);
    }
  }

  private bind(peer: MuxedPeer, address: string, port: number): void {
    const key = `${address}|${port}`;
    const owner = this.byAddress.get(key);
    if (owner === peer) return;
    // an address moves to the peer whose credentials it just proved (a browser reusing a port)
    if (owner) {
      const list = this.addressesOf.get(owner);
      if (list) list.splice(list.indexOf(key), 1);
    }
    let list = this.addressesOf.get(peer);
    if (!list) this.addressesOf.set(peer, (list = []));
    if (list.length >= MAX_ADDRESSES_PER_PEER) {
      const old = list.shift()!;
      if (this.byAddress.get(old) === peer) this.byAddress.delete(old);
    }
    list.push(key);
    this.byAddress.set(key, peer);
  }
}
