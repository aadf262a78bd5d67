// One SRT connection in live mode (draft-sharabayko-srt §4): a state machine with no socket and
// no timers of its own. Its owner feeds it datagrams with `receive(datagram, now)`, calls
// `tick(now)` every few milliseconds, hands it payloads with `send(payload, now)`, and gets
// back datagrams to transmit (the `transmit` callback), payloads in order (`onData`) and the
// end (`onClose`). `now` is a monotonic time in milliseconds (performance.now()).
//
// Caller handshake (§4.3.1): INDUCTION (version 4, to socket id 0) -> the listener's INDUCTION
// (version 5, SRT magic, SYN cookie) -> CONCLUSION with HSREQ (+ KMREQ when encrypting, + SID)
// -> the listener's CONCLUSION with HSRSP (+ KMRSP) or a rejection code. Requests repeat every
// 250 ms until answered or the connect timeout. The listener side is in listener.ts; an accepted
// connection starts here already connected and repeats its stored answer to a repeated request.
//
// Receiving (§4.5, §4.6, §4.8): packets are stored by sequence number (at most the flow window
// ahead) and handed on in order as soon as they are contiguous; a gap is reported at once
// (NAK) and again periodically (every max(20 ms, (RTT + 4 RTTVar) / 2)), and when the first
// packet after a gap has waited the connection's latency the gap is given up (too-late drop)
// and delivery goes on. A full ACK every 10 ms (a light ACK every 64 packets) confirms the
// contiguous position; its ACKACK gives the RTT (RTT = 7/8 RTT + 1/8 rtt, RTTVar = 3/4 RTTVar +
// 1/4 |RTT - rtt|).
//
// Sending: each payload becomes one packet (position 11, the live convention) stamped with
// the time it was handed over (its origin time, kept on retransmissions), encrypted with
// AES-CTR when a passphrase is set, kept until acknowledged, resent (R flag) when the peer's
// NAK names it, and dropped once older than max(1 s, 1.25 x latency) (the sender's too-late
// drop). First transmissions are paced by a byte budget so that a burst (a new viewer's GOP)
// does not overflow the peer's socket buffer; retransmissions go first.

import { errorText, HazeError } from '../../util/errors.js';
import { CTRL_ACK, CTRL_ACKACK, CTRL_DROPREQ, CTRL_HANDSHAKE, CTRL_KEEPALIVE, CTRL_NAK, CTRL_SHUTDOWN, CTRL_USER, parseAck, parseDropRequest, parseLossList, serializeAck, serializeLossList, type SeqRange } from './control.js';
import { SrtCipher } from './crypto.js';
import {
  DEFAULT_FLOW_WINDOW,
  DEFAULT_MTU,
  EXT_HSREQ,
  EXT_HSRSP,
  EXT_KMREQ,
  EXT_KMRSP,
  EXT_SID,
  fieldOfKeyLength,
  findExtension,
  HS_CONCLUSION,
  HS_EXT_CONFIG,
  HS_EXT_HSREQ,
  HS_EXT_KMREQ,
  HS_INDUCTION,
  isRejection,
  keyLengthOfField,
  OUR_SRT_FLAGS,
  OUR_SRT_VERSION,
  parseHandshake,
  parseHsMessage,
  peerIpField,
  rejectionText,
  serializeHandshake,
  serializeHsMessage,
  serializeStreamIdExtension,
  SRT_MAGIC,
  UDT_DGRAM,
  type Handshake,
} from './handshake.js';
import { KM_STATE_BADSECRET, KM_STATE_NOSECRET, keyStateOf, serializeKeyMaterial, type KeyMaterial } from './key-material.js';
import { KK_NONE, markRetransmitted, parsePacket, PP_SOLO, SEQ_MASK, seqAdd, seqDiff, serializeControl, SRT_HEADER_BYTES, writeDataHeader, type ControlPacket, type DataPacket } from './packet.js';

export const DEFAULT_LATENCY_MS = 120;
const HANDSHAKE_RESEND_MS = 250;
const ACK_INTERVAL_MS = 10;
const LIGHT_ACK_PACKETS = 64;
const MIN_NAK_INTERVAL_MS = 20;
const KEEPALIVE_MS = 1000;
const INITIAL_RTT_US = 100_000;
const INITIAL_RTTVAR_US = 50_000;
/** ACK numbers remembered for RTT measurement (older ones are forgotten). */
const ACK_HISTORY = 256;
/** The largest payload a packet carries (1500 - 28 IP/UDP - 16 SRT header). */
export const MAX_PAYLOAD_BYTES = 1456;
/** MPEG-TS over SRT: seven 188-byte TS packets per SRT packet. */
export const TS_PAYLOAD_BYTES = 1316;

export type SrtState = 'inducing' | 'concluding' | 'connected' | 'closed';

export interface SrtStats {
  /** Data packets sent for the first time / again after a NAK. */
  packetsSent: number;
  packetsRetransmitted: number;
  /** Data packets the sender dropped (too late, or the buffer full). */
  packetsSendDropped: number;
  bytesSent: number;
  /** Data packets received (retransmissions included, duplicates not). */
  packetsReceived: number;
  /** Retransmitted packets that filled a gap. */
  packetsRecovered: number;
  /** Sequence numbers seen missing (each once). */
  packetsLost: number;
  /** Missing packets given up (too-late drop). */
  packetsDropped: number;
  packetsDuplicate: number;
  bytesReceived: number;
  naksSent: number;
  naksReceived: number;
  rttUs: number;
}

export interface SrtCommonOptions {
  /** Our socket id (unique on the UDP socket). */
  localSocketId: number;
  /** Our TSBPD latency; the connection uses the larger of ours and the peer's. */
  latencyMs?: number;
  /** Silence from the peer after which the connection is broken (default 5 s). */
  peerIdleTimeoutMs?: number;
  /** Most packets kept for retransmission (default 8192). */
  maxSendBufferPackets?: number;
  /** First transmissions are paced at this rate (bytes per second, default 50 MB/s). */
  maxSendRateBps?: number;
}

export interface SrtCallerOptions extends SrtCommonOptions {
  /** The listener's address (for the handshake's peer address field). */
  peerAddress: string;
  streamId?: string;
  passphrase?: string;
  /** Key length when encrypting (16, 24, 32; default 16, or what the listener advertises). */
  keyLength?: 16 | 24 | 32;
  /** Give up connecting after this long (default 3 s). */
  connectTimeoutMs?: number;
}

interface SentPacket {
  datagram: Buffer;
  originMs: number;
  /** 0 until first sent. */
  lastSentMs: number;
  /** When last retransmitted (0: never). */
  resentMs: number;
}

interface HeldPacket {
  payload: Buffer;
  arrivalMs: number;
}

const noop = (): void => {};

export class SrtConnection {
  state: SrtState;
  readonly localSocketId: number;
  peerSocketId = 0;
  /** The stream id the caller sent (listener side) or sends (caller side). */
  streamId = '';
  latencyMs: number;
  readonly stats: SrtStats = {
    packetsSent: 0,
    packetsRetransmitted: 0,
    packetsSendDropped: 0,
    bytesSent: 0,
    packetsReceived: 0,
    packetsRecovered: 0,
    packetsLost: 0,
    packetsDropped: 0,
    packetsDuplicate: 0,
    bytesReceived: 0,
    naksSent: 0,
    naksReceived: 0,
    rttUs: INITIAL_RTT_US,
  };
  /** Called once when the handshake completes (caller side). */
  onConnected: () => void = noop;
  /** Payloads in order. */
  onData: (payload: Buffer) => void = noop;
  /** Called once, with why. */
  onClose: (reason: string) => void = noop;
  closeReason = '';

  private readonly startMs: number;
  private readonly peerIdleTimeoutMs: number;
  private readonly maxSendBuffer: number;
  private readonly sendRateBytesPerMs: number;
  private cipher: SrtCipher | undefined;
  private peerFlowWindow = DEFAULT_FLOW_WINDOW;
  private lastReceiveMs: number;
  private lastTransmitMs: number;

  // caller handshake
  private readonly caller: SrtCallerOptions | undefined;
  private handshakeStartMs = 0;
  private lastHandshakeMs = 0;
  private handshakeRequest: Buffer | undefined;
  private km: KeyMaterial | undefined;
  private callerIsn = 0;
  /** Listener side: the answer repeated when the caller repeats its conclusion. */
  private storedResponse: Buffer | undefined;

  // receiver
  private rcvBase = 0;
  private rcvNext = 0;
  private readonly rcvBuf = new Map<number, HeldPacket>();
  /** Missing sequence numbers and when each was last reported. */
  private readonly losses = new Map<number, number>();
  private rttUs = INITIAL_RTT_US;
  private rttVarUs = INITIAL_RTTVAR_US;
  private rttMeasured = false;
  private ackNumber = 0;
  private readonly ackSentAt = new Map<number, number>();
  private lastAckMs = 0;
  private lastAckSeq = -1;
  private ackedByAckAck = -1;
  private lastNakMs = 0;
  private packetsSinceLightAck = 0;
  private rateWindowStartMs = 0;
  private rateWindowPackets = 0;
  private rateWindowBytes = 0;
  private packetsPerSecond = 0;
  private bytesPerSecond = 0;

  // sender
  private sndNext = 0;
  private sndUna = 0;
  /** One past the last packet sent at least once. */
  private sndSentNext = 0;
  private readonly sndBuf = new Map<number, SentPacket>();
  private readonly rexmit = new Set<number>();
  private messageNumber = 1;
  private sendTokens = 0;
  private lastPumpMs = 0;
  private unsentBytes = 0;

  private constructor(
    private readonly transmit: (datagram: Buffer) => void,
    opts: SrtCommonOptions,
    now: number,
    state: SrtState,
    caller?: SrtCallerOptions,
  ) {
    this.state = state;
    this.localSocketId = opts.localSocketId >>> 0;
    this.latencyMs = opts.latencyMs ?? DEFAULT_LATENCY_MS;
    this.peerIdleTimeoutMs = opts.peerIdleTimeoutMs ?? 5000;
    this.maxSendBuffer = opts.maxSendBufferPackets ?? 8192;
    this.sendRateBytesPerMs = (opts.maxSendRateBps ?? 50_000_000) / 1000;
    this.sendTokens = this.sendRateBytesPerMs * 5;
    this.startMs = now;
    this.lastReceiveMs = now;
    this.lastTransmitMs = now;
    this.lastPumpMs = now;
    this.rateWindowStartMs = now;
    this.caller = caller;
  }

  /** A caller; `start(now)` sends its first request. */
  static caller(transmit: (datagram: Buffer) => void, opts: SrtCallerOptions, now: number, initialSeq: number): SrtConnection {
    const c = new SrtConnection(transmit, opts, now, 'inducing', opts);
    c.callerIsn = initialSeq & SEQ_MASK;
    c.streamId = opts.streamId ?? '';
    return c;
  }

  /** A connection the listener accepted (already connected); `response` is the conclusion answer sent. */
  static accepted(
    transmit: (datagram: Buffer) => void,
    opts: SrtCommonOptions,
    now: number,
    a: { peerSocketId: number; initialSeq: number; latencyMs: number; peerFlowWindow: number; cipher: SrtCipher | undefined; streamId: string; response: Handshake; requestTimestampUs: number },
  ): SrtConnection {
    const c = new SrtConnection(transmit, opts, now, 'connected');
    c.peerSocketId = a.peerSocketId >>> 0;
    c.latencyMs = a.latencyMs;
    c.peerFlowWindow = a.peerFlowWindow;
    c.cipher = a.cipher;
    c.streamId = a.streamId;
    c.setSequences(a.initialSeq, a.initialSeq);
    c.storedResponse = c.control(CTRL_HANDSHAKE, 0, serializeHandshake(a.response), now, a.peerSocketId);
    c.transmitRaw(c.storedResponse, now);
    return c;
  }

  get encrypted(): boolean {
    return this.cipher !== undefined;
  }

  /** Bytes handed to send() and not yet sent once (what pacing holds back). */
  get queuedBytes(): number {
    return this.unsentBytes;
  }

  /** Age of the oldest packet not yet sent once (0 when none wait). */
  oldestUnsentAgeMs(now: number): number {
    if (this.sndSentNext === this.sndNext) return 0;
    const p = this.sndBuf.get(this.sndSentNext);
    return p ? now - p.originMs : 0;
  }

  /** Packets sent and not yet acknowledged, and the retransmission buffer's bound. */
  get unacknowledged(): number {
    return this.sndBuf.size;
  }

  start(now: number): void {
    if (this.state !== 'inducing' || !this.caller) return;
    this.handshakeStartMs = now;
    const hs: Handshake = {
      version: 4,
      encryptionField: 0,
      extensionField: UDT_DGRAM,
      initialSeq: this.callerIsn,
      mtu: DEFAULT_MTU,
      flowWindow: DEFAULT_FLOW_WINDOW,
      type: HS_INDUCTION,
      socketId: this.localSocketId,
      cookie: 0,
      peerIp: peerIpField(this.caller.peerAddress),
      extensions: [],
    };
    this.handshakeRequest = serializeHandshake(hs);
    this.sendHandshakeRequest(now);
  }

  private sendHandshakeRequest(now: number): void {
    if (!this.handshakeRequest) return;
    this.lastHandshakeMs = now;
    // requests go to socket id 0: the listener has no socket for this caller yet
    this.transmitRaw(this.control(CTRL_HANDSHAKE, 0, this.handshakeRequest, now, 0), now);
  }

  private setSequences(rcvIsn: number, sndIsn: number): void {
    this.rcvBase = this.rcvNext = rcvIsn & SEQ_MASK;
    this.lastAckSeq = -1;
    this.ackedByAckAck = -1;
    this.sndNext = this.sndUna = this.sndSentNext = sndIsn & SEQ_MASK;
  }

  private timestampUs(now: number): number {
    return Math.floor((now - this.startMs) * 1000) >>> 0;
  }

  private control(type: number, typeInfo: number, cif: Buffer, now: number, dest = this.peerSocketId, subtype = 0): Buffer {
    return serializeControl({ type, subtype, typeInfo, timestampUs: this.timestampUs(now), destSocketId: dest, cif });
  }

  private transmitRaw(datagram: Buffer, now: number): void {
    this.lastTransmitMs = now;
    this.transmit(datagram);
  }

  private sendControl(type: number, typeInfo: number, cif: Buffer, now: number): void {
    this.transmitRaw(this.control(type, typeInfo, cif, now), now);
  }

  /** Handles one datagram addressed to this connection. A malformed one ends the connection (never throws). */
  receive(datagram: Buffer, now: number): void {
    if (this.state === 'closed') return;
    try {
      const p = parsePacket(datagram);
      this.lastReceiveMs = now;
      if (p.control) this.onControl(p, now);
      else if (this.state === 'connected') this.onDataPacket(p, now);
    } catch (err) {
      this.close(`malformed packet from the peer: ${errorText(err)}`, now, false);
    }
  }

  private onControl(p: ControlPacket, now: number): void {
    switch (p.type) {
      case CTRL_HANDSHAKE:
        this.onHandshake(parseHandshake(p.cif), now);
        return;
      case CTRL_KEEPALIVE:
        return;
      case CTRL_ACK:
        if (this.state === 'connected') this.onAck(p, now);
        return;
      case CTRL_NAK:
        if (this.state === 'connected') this.onNak(parseLossList(p.cif), now);
        return;
      case CTRL_ACKACK:
        this.onAckAck(p.typeInfo, now);
        return;
      case CTRL_SHUTDOWN:
        this.close('the peer closed the connection', now, false);
        return;
      case CTRL_DROPREQ:
        if (this.state === 'connected') this.onDropRequest(parseDropRequest(p.typeInfo, p.cif).lastSeq, now);
        return;
      case CTRL_USER:
        // key refresh (KMREQ subtype 3): this implementation keeps one key per connection; the
        // peer's new key is not taken and packets under it are not decrypted
        return;
      default:
        return;
    }
  }

  private onHandshake(hs: Handshake, now: number): void {
    if (this.storedResponse) {
      // the caller did not get our answer: repeat it
      if (hs.type === HS_CONCLUSION) this.transmitRaw(this.storedResponse, now);
      return;
    }
    const c = this.caller;
    if (!c) return;
    if (isRejection(hs.type)) {
      this.close(`connection rejected: ${rejectionText(hs.type)}`, now, false);
      return;
    }
    if (this.state === 'inducing' && hs.type === HS_INDUCTION) {
      if (hs.version !== 5 || hs.extensionField !== SRT_MAGIC) {
        this.close(`the peer is not an SRT version 5 listener (version ${hs.version}, magic ${hs.extensionField.toString(16)})`, now, false);
        return;
      }
      const advertised = keyLengthOfField(hs.encryptionField);
      const extensions = [{ type: EXT_HSREQ, data: serializeHsMessage({ srtVersion: OUR_SRT_VERSION, flags: OUR_SRT_FLAGS, receiverDelayMs: this.latencyMs, senderDelayMs: this.latencyMs }) }];
      let encryptionField = 0;
      if (c.passphrase) {
        const keyLength = advertised || c.keyLength || 16;
        const { cipher, km } = SrtCipher.generate(c.passphrase, keyLength);
        this.cipher = cipher;
        this.km = km;
        encryptionField = fieldOfKeyLength(keyLength);
        extensions.push({ type: EXT_KMREQ, data: serializeKeyMaterial(km) });
      }
      if (this.streamId) extensions.push({ type: EXT_SID, data: serializeStreamIdExtension(this.streamId) });
      const conclusion: Handshake = {
        version: 5,
        encryptionField,
        extensionField: HS_EXT_HSREQ | (this.km ? HS_EXT_KMREQ : 0) | (this.streamId ? HS_EXT_CONFIG : 0),
        initialSeq: this.callerIsn,
        mtu: DEFAULT_MTU,
        flowWindow: DEFAULT_FLOW_WINDOW,
        type: HS_CONCLUSION,
        socketId: this.localSocketId,
        cookie: hs.cookie,
        peerIp: peerIpField(c.peerAddress),
        extensions,
      };
      this.state = 'concluding';
      this.handshakeRequest = serializeHandshake(conclusion);
      this.sendHandshakeRequest(now);
      return;
    }
    if (this.state === 'concluding' && hs.type === HS_CONCLUSION) {
      const rsp = findExtension(hs, EXT_HSRSP);
      if (!rsp) {
        this.close('the listener answered without HSRSP (not an SRT version 5 listener)', now, false);
        return;
      }
      const m = parseHsMessage(rsp);
      if (this.km) {
        const kmrsp = findExtension(hs, EXT_KMRSP);
        const state = kmrsp ? keyStateOf(kmrsp) : undefined;
        if (!kmrsp || state !== undefined) {
          const why = state === KM_STATE_BADSECRET ? 'wrong passphrase' : state === KM_STATE_NOSECRET ? 'the listener has no passphrase' : 'the listener did not take the key material';
          this.close(`connection rejected: ${why}`, now, false);
          return;
        }
      }
      this.peerSocketId = hs.socketId >>> 0;
      this.peerFlowWindow = hs.flowWindow || DEFAULT_FLOW_WINDOW;
      this.latencyMs = Math.max(this.latencyMs, m.receiverDelayMs, m.senderDelayMs);
      // the listener sends from the sequence number its answer carries, we from ours
      this.setSequences(hs.initialSeq, this.callerIsn);
      this.handshakeRequest = undefined;
      this.state = 'connected';
      this.onConnected();
    }
  }

  // ---------------------------------------------------------------- receiving

  private onDataPacket(p: DataPacket, now: number): void {
    const seq = p.seq;
    const ahead = seqDiff(seq, this.rcvBase);
    if (ahead < 0 || this.rcvBuf.has(seq)) {
      this.stats.packetsDuplicate++;
      return;
    }
    if (ahead >= DEFAULT_FLOW_WINDOW) {
      // further ahead than the window we announced: nothing could hold it
      this.stats.packetsDropped++;
      return;
    }
    let payload = p.payload;
    if (p.keyIndex !== KK_NONE) {
      const plain = this.cipher?.crypt(seq, p.keyIndex, payload);
      // a packet we cannot decrypt is lost for the application, but it was received
      payload = plain ?? Buffer.alloc(0);
    }
    this.stats.packetsReceived++;
    this.stats.bytesReceived += p.payload.length;
    this.rateWindowPackets++;
    this.rateWindowBytes += p.payload.length + SRT_HEADER_BYTES;
    const fromNext = seqDiff(seq, this.rcvNext);
    if (fromNext > 0) {
      // a gap: every packet between rcvNext and seq is missing; report it at once
      const first = this.rcvNext;
      const last = seqAdd(seq, -1);
      for (let s = first; s !== seq; s = seqAdd(s, 1)) this.losses.set(s, now);
      this.stats.packetsLost += fromNext;
      this.sendNak([[first, last]], now);
      this.rcvNext = seqAdd(seq, 1);
    } else if (fromNext === 0) {
      this.rcvNext = seqAdd(seq, 1);
    } else if (this.losses.delete(seq)) {
      this.stats.packetsRecovered++;
    }
    this.rcvBuf.set(seq, { payload, arrivalMs: now });
    this.deliver();
    if (this.state === 'closed') return;
    if (++this.packetsSinceLightAck >= LIGHT_ACK_PACKETS) {
      this.packetsSinceLightAck = 0;
      this.sendControl(CTRL_ACK, 0, serializeAck({ lastAckSeq: this.rcvBase }), now);
    }
  }

  /** Hands on every contiguous packet from rcvBase. */
  private deliver(): void {
    for (;;) {
      const held = this.rcvBuf.get(this.rcvBase);
      if (!held) return;
      this.rcvBuf.delete(this.rcvBase);
      this.rcvBase = seqAdd(this.rcvBase, 1);
      if (held.payload.length > 0) this.onData(held.payload);
      if (this.state === 'closed') return;
    }
  }

  /** Too-late drop: gives up a gap once the first packet after it has waited the latency. */
  private dropTooLate(now: number): void {
    if (this.rcvBuf.size === 0 || this.rcvBase === this.rcvNext) return;
    let s = this.rcvBase;
    let skipped = 0;
    while (s !== this.rcvNext && !this.rcvBuf.has(s)) {
      s = seqAdd(s, 1);
      skipped++;
    }
    const held = this.rcvBuf.get(s);
    if (!held || now - held.arrivalMs < this.latencyMs) return;
    for (let x = this.rcvBase; x !== s; x = seqAdd(x, 1)) this.losses.delete(x);
    this.stats.packetsDropped += skipped;
    this.rcvBase = s;
    this.deliver();
  }

  private onDropRequest(lastSeq: number, now: number): void {
    // the sender no longer has these packets: stop waiting for them
    if (seqDiff(lastSeq, this.rcvBase) < 0 || seqDiff(lastSeq, this.rcvNext) >= 0) return;
    const end = seqAdd(lastSeq, 1);
    for (let x = this.rcvBase; x !== end; x = seqAdd(x, 1)) {
      if (!this.rcvBuf.has(x) && this.losses.delete(x)) this.stats.packetsDropped++;
    }
    // deliver what follows the dropped packets
    while (this.rcvBase !== end && !this.rcvBuf.has(this.rcvBase)) this.rcvBase = seqAdd(this.rcvBase, 1);
    this.deliver();
    void now;
  }

  private sendNak(ranges: SeqRange[], now: number): void {
    if (ranges.length === 0) return;
    this.stats.naksSent++;
    this.sendControl(CTRL_NAK, 0, serializeLossList(ranges), now);
  }

  /** The losses last reported at least `intervalMs` ago, as ranges, at most what fits one packet; marks them reported. */
  private lossRanges(now: number, intervalMs: number): SeqRange[] {
    const seqs: number[] = [];
    for (const [seq, reportedMs] of this.losses) if (now - reportedMs >= intervalMs) seqs.push(seq);
    seqs.sort((a, b) => seqDiff(a, b));
    const out: SeqRange[] = [];
    let words = 0;
    const maxWords = (DEFAULT_MTU - 28 - SRT_HEADER_BYTES) / 4;
    for (let i = 0; i < seqs.length && words < maxWords - 1; ) {
      const first = seqs[i]!;
      let last = first;
      this.losses.set(first, now);
      i++;
      while (i < seqs.length && seqs[i] === seqAdd(last, 1)) {
        last = seqs[i++]!;
        this.losses.set(last, now);
      }
      out.push([first, last]);
      words += first === last ? 1 : 2;
    }
    return out;
  }

  private sendFullAck(now: number): void {
    this.ackNumber = (this.ackNumber + 1) >>> 0 || 1;
    this.ackSentAt.set(this.ackNumber, now);
    if (this.ackSentAt.size > ACK_HISTORY) this.ackSentAt.delete(this.ackSentAt.keys().next().value!);
    this.lastAckSeq = this.rcvBase;
    this.lastAckMs = now;
    const cif = serializeAck({
      lastAckSeq: this.rcvBase,
      rttUs: this.rttUs,
      rttVarUs: this.rttVarUs,
      availableBuffer: Math.max(2, DEFAULT_FLOW_WINDOW - this.rcvBuf.size),
      packetsPerSecond: this.packetsPerSecond,
      linkCapacity: Math.max(this.packetsPerSecond, 1000),
      receiveRateBps: this.bytesPerSecond,
    });
    this.sendControl(CTRL_ACK, this.ackNumber, cif, now);
  }

  private onAckAck(ackNumber: number, now: number): void {
    const sentAt = this.ackSentAt.get(ackNumber);
    if (sentAt === undefined) return;
    this.ackSentAt.delete(ackNumber);
    const rtt = Math.max(1, Math.round((now - sentAt) * 1000));
    if (!this.rttMeasured) {
      // the first sample replaces the initial guess (as RFC 6298 does for TCP): smoothing from
      // 100 ms would keep the NAK interval long for a second on a short path
      this.rttMeasured = true;
      this.rttUs = rtt;
      this.rttVarUs = Math.round(rtt / 2);
    } else {
      this.rttVarUs = Math.round((3 * this.rttVarUs + Math.abs(this.rttUs - rtt)) / 4);
      this.rttUs = Math.round((7 * this.rttUs + rtt) / 8);
    }
    this.stats.rttUs = this.rttUs;
    this.ackedByAckAck = this.lastAckSeq;
  }

  // ---------------------------------------------------------------- sending

  /**
   * Queues one payload (at most MAX_PAYLOAD_BYTES) as the next packet. When the retransmission
   * buffer is full the oldest packet is dropped to make room: a live sender never blocks.
   */
  send(payload: Buffer, now: number): void {
    if (this.state !== 'connected') return;
    if (payload.length > MAX_PAYLOAD_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `SRT payload of ${payload.length} bytes (at most ${MAX_PAYLOAD_BYTES})`);
    if (this.sndBuf.size >= this.maxSendBuffer) this.dropOldest();
    const seq = this.sndNext;
    this.sndNext = seqAdd(seq, 1);
    let body = payload;
    let kk: 0 | 1 | 2 = KK_NONE;
    if (this.cipher) {
      kk = this.cipher.sendKey;
      body = this.cipher.crypt(seq, kk, payload)!;
    }
    const datagram = Buffer.allocUnsafe(SRT_HEADER_BYTES + body.length);
    writeDataHeader(datagram, { seq, position: PP_SOLO, inOrder: false, keyIndex: kk, retransmitted: false, messageNumber: this.messageNumber, timestampUs: this.timestampUs(now), destSocketId: this.peerSocketId });
    this.messageNumber = (this.messageNumber % 0x03ffffff) + 1;
    body.copy(datagram, SRT_HEADER_BYTES);
    this.sndBuf.set(seq, { datagram, originMs: now, lastSentMs: 0, resentMs: 0 });
    this.unsentBytes += datagram.length;
    this.pump(now);
  }

  private dropOldest(): void {
    const p = this.sndBuf.get(this.sndUna);
    if (p) {
      this.sndBuf.delete(this.sndUna);
      if (p.lastSentMs === 0) this.unsentBytes -= p.datagram.length;
    }
    this.rexmit.delete(this.sndUna);
    this.stats.packetsSendDropped++;
    if (this.sndSentNext === this.sndUna) this.sndSentNext = seqAdd(this.sndSentNext, 1);
    this.sndUna = seqAdd(this.sndUna, 1);
  }

  /** Sends what the pacing budget allows: retransmissions first, then first transmissions. */
  private pump(now: number): void {
    this.sendTokens = Math.min(this.sendRateBytesPerMs * 10, this.sendTokens + (now - this.lastPumpMs) * this.sendRateBytesPerMs);
    this.lastPumpMs = now;
    // a loss report right after the first transmission is answered at once (a receiver on a
    // short path reports within a millisecond); a second report of a packet just resent is
    // not: the retransmission is on its way
    const minGapMs = Math.max(1, Math.min(this.rttUs / 2000, 10));
    for (const seq of this.rexmit) {
      if (this.sendTokens <= 0) return;
      this.rexmit.delete(seq);
      const p = this.sndBuf.get(seq);
      if (!p || p.lastSentMs === 0 || (p.resentMs !== 0 && now - p.resentMs < minGapMs)) continue;
      // a copy: the first transmission may still be queued in the socket
      const again = Buffer.from(p.datagram);
      markRetransmitted(again);
      p.lastSentMs = now;
      p.resentMs = now;
      this.sendTokens -= again.length;
      this.stats.packetsRetransmitted++;
      this.stats.bytesSent += again.length;
      this.transmitRaw(again, now);
    }
    while (this.sndSentNext !== this.sndNext && this.sendTokens > 0) {
      // in flight is bounded by the window the peer announced
      if (seqDiff(this.sndSentNext, this.sndUna) >= this.peerFlowWindow) return;
      const p = this.sndBuf.get(this.sndSentNext);
      this.sndSentNext = seqAdd(this.sndSentNext, 1);
      if (!p) continue;
      p.lastSentMs = now;
      this.unsentBytes -= p.datagram.length;
      this.sendTokens -= p.datagram.length;
      this.stats.packetsSent++;
      this.stats.bytesSent += p.datagram.length;
      this.transmitRaw(p.datagram, now);
    }
  }

  private onAck(p: ControlPacket, now: number): void {
    const ack = parseAck(p.cif);
    // a full ACK (it has a number) is answered at once: the peer measures the RTT with it
    if (p.typeInfo !== 0) this.sendControl(CTRL_ACKACK, p.typeInfo, Buffer.alloc(0), now);
    if (ack.rttUs !== undefined && ack.rttUs > 0) {
      // the receiver's estimate (it measures with ACKACK); a sender without its own takes it as it is
      this.rttUs = this.rttMeasured ? Math.round((7 * this.rttUs + ack.rttUs) / 8) : ack.rttUs;
      if (ack.rttVarUs !== undefined && !this.rttMeasured) this.rttVarUs = ack.rttVarUs;
      this.stats.rttUs = this.rttUs;
    }
    const to = ack.lastAckSeq;
    if (seqDiff(to, this.sndUna) <= 0 || seqDiff(to, this.sndSentNext) > 0) return;
    while (this.sndUna !== to) {
      this.sndBuf.delete(this.sndUna);
      this.rexmit.delete(this.sndUna);
      this.sndUna = seqAdd(this.sndUna, 1);
    }
    this.pump(now);
  }

  private onNak(ranges: SeqRange[], now: number): void {
    this.stats.naksReceived++;
    for (const [first, last] of ranges) {
      // only what is still held and was sent
      let from = first;
      if (seqDiff(from, this.sndUna) < 0) from = this.sndUna;
      const end = seqDiff(last, this.sndSentNext) >= 0 ? seqAdd(this.sndSentNext, -1) : last;
      if (seqDiff(end, from) < 0) continue;
      for (let s = from; ; s = seqAdd(s, 1)) {
        if (this.sndBuf.has(s)) this.rexmit.add(s);
        if (s === end) break;
      }
    }
    this.pump(now);
  }

  // ---------------------------------------------------------------- timers

  /** Runs the timers: handshake repeats, ACK, periodic NAK, too-late drops, keep-alive, pacing, idle timeout. */
  tick(now: number): void {
    if (this.state === 'closed') return;
    if (this.state === 'inducing' || this.state === 'concluding') {
      const c = this.caller!;
      if (now - this.handshakeStartMs >= (c.connectTimeoutMs ?? 3000)) {
        this.close(this.state === 'inducing' ? 'no answer from the listener (connection timed out)' : 'the listener did not conclude the handshake (connection timed out)', now, false);
        return;
      }
      if (now - this.lastHandshakeMs >= HANDSHAKE_RESEND_MS) this.sendHandshakeRequest(now);
      return;
    }
    if (now - this.lastReceiveMs >= this.peerIdleTimeoutMs) {
      this.close(`no packet from the peer for ${this.peerIdleTimeoutMs} ms`, now, false);
      return;
    }
    // receiver
    if (now - this.rateWindowStartMs >= 1000) {
      const secs = (now - this.rateWindowStartMs) / 1000;
      this.packetsPerSecond = Math.round(this.rateWindowPackets / secs);
      this.bytesPerSecond = Math.round(this.rateWindowBytes / secs);
      this.rateWindowStartMs = now;
      this.rateWindowPackets = 0;
      this.rateWindowBytes = 0;
    }
    this.dropTooLate(now);
    if (now - this.lastAckMs >= ACK_INTERVAL_MS && (this.rcvBase !== this.lastAckSeq || (this.ackedByAckAck !== this.rcvBase && now - this.lastAckMs >= 4 * ACK_INTERVAL_MS))) {
      if (this.stats.packetsReceived > 0) this.sendFullAck(now);
    }
    // until the first ACKACK measured the RTT, the initial guess (100 ms +- 50) would make the
    // interval 150 ms, longer than a 120 ms latency: the floor is used instead
    const nakInterval = this.rttMeasured ? Math.max(MIN_NAK_INTERVAL_MS, (this.rttUs + 4 * this.rttVarUs) / 2000) : MIN_NAK_INTERVAL_MS;
    if (this.losses.size > 0 && now - this.lastNakMs >= Math.min(nakInterval, MIN_NAK_INTERVAL_MS)) {
      // each loss is reported again once an interval passed since its last report
      this.lastNakMs = now;
      this.sendNak(this.lossRanges(now, nakInterval), now);
    }
    // sender
    const dropAfterMs = Math.max(1000, this.latencyMs * 1.25);
    while (this.sndUna !== this.sndNext) {
      const p = this.sndBuf.get(this.sndUna);
      if (p && now - p.originMs < dropAfterMs) break;
      this.dropOldest();
    }
    this.pump(now);
    if (now - this.lastTransmitMs >= KEEPALIVE_MS) this.sendControl(CTRL_KEEPALIVE, 0, Buffer.alloc(0), now);
  }

  /** Ends the connection (a SHUTDOWN tells the peer unless it ended it); idempotent. */
  close(reason: string, now: number, notifyPeer = true): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.state = 'closed';
    this.closeReason = reason;
    if (notifyPeer && wasConnected) {
      // a lost SHUTDOWN ends the peer by its idle timeout; three copies make that rare
      const bye = this.control(CTRL_SHUTDOWN, 0, Buffer.alloc(4), now);
      for (let i = 0; i < 3; i++) this.transmit(bye);
    }
    this.rcvBuf.clear();
    this.sndBuf.clear();
    this.rexmit.clear();
    this.losses.clear();
    this.onClose(reason);
  }
}
