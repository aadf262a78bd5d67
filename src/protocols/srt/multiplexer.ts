// Many SRT connections on one UDP socket (draft-sharabayko-srt §4.1): the listener's port that
// the angel hands to a worker, or a caller's own socket. A datagram goes to the connection
// whose socket id it names, and only when it comes from that connection's peer address; a
// handshake addressed to socket id 0 is a connection request (listener.ts decides, a repeated
// conclusion is answered by the connection it created). One timer ticks every connection.
// Nothing a peer sends can throw out of the socket's message handler: a bad datagram is
// dropped (or ends the one connection it belongs to, with a log line).

import crypto from 'node:crypto';
import type dgram from 'node:dgram';
import { errorText, HazeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { CTRL_HANDSHAKE } from './control.js';
import { SrtConnection, type SrtCallerOptions, type SrtCommonOptions } from './connection.js';
import { HS_CONCLUSION, HS_INDUCTION, parseHandshake, rejectionText, serializeHandshake } from './handshake.js';
import { answerConclusion, cookieValid, inductionResponse, synCookie, type ConclusionPolicy } from './listener.js';
import { serializeControl, SRT_HEADER_BYTES } from './packet.js';

const TICK_MS = 5;
/** Connections one socket serves at most (further callers are refused with REJ_BACKLOG). */
const MAX_CONNECTIONS = 2000;
const REJ_BACKLOG = 1005;

/** A connection with the peer it talks to; the owner sets onData and onClose. */
export class SrtSocket {
  /** Payloads in order. */
  onData: (payload: Buffer) => void = () => {};
  /** Called once when the connection ends, with why. */
  onClose: (reason: string) => void = () => {};

  constructor(
    readonly conn: SrtConnection,
    readonly address: string,
    readonly port: number,
  ) {}

  get streamId(): string {
    return this.conn.streamId;
  }

  get closed(): boolean {
    return this.conn.state === 'closed';
  }

  /** The peer as `address:port` (IPv4-mapped addresses written as IPv4). */
  get peer(): string {
    return normalizeAddress(this.address);
  }

  send(payload: Buffer): void {
    this.conn.send(payload, performance.now());
  }

  close(reason: string): void {
    this.conn.close(reason, performance.now());
  }
}

export function normalizeAddress(address: string): string {
  return address.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
}

export interface SrtListenerOptions extends ConclusionPolicy {
  /** Options of every accepted connection (its socket id is chosen here). */
  connection?: Omit<SrtCommonOptions, 'localSocketId' | 'latencyMs'>;
  /** A new connection, connected: attach handlers synchronously. */
  onConnection(socket: SrtSocket): void;
  /** A refused caller (wrong passphrase, bad handshake). */
  onRefused?(address: string, port: number, streamId: string, why: string): void;
}

interface Entry {
  socket: SrtSocket;
  key: string;
}

export class SrtMultiplexer {
  private readonly byId = new Map<number, Entry>();
  /** `address|port|peer socket id` -> our socket id: a repeated conclusion finds its connection. */
  private readonly byPeer = new Map<string, number>();
  private readonly secret = crypto.randomBytes(16);
  private readonly listenerId = randomSocketId();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Datagrams dropped for naming no connection of ours (or another peer's). */
  strayDatagrams = 0;

  constructor(
    private readonly socket: dgram.Socket,
    private readonly log: Logger,
    private listener?: SrtListenerOptions,
  ) {
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address, rinfo.port));
  }

  /** Starts or stops accepting callers. */
  setListener(listener: SrtListenerOptions | undefined): void {
    this.listener = listener;
  }

  get connectionCount(): number {
    return this.byId.size;
  }

  private onMessage(msg: Buffer, address: string, port: number): void {
    if (this.closed || msg.length < SRT_HEADER_BYTES) return;
    try {
      const dest = msg.readUInt32BE(12);
      const entry = dest !== 0 ? this.byId.get(dest) : undefined;
      if (entry) {
        if (entry.socket.address !== address || entry.socket.port !== port) {
          // another host using a connection's id: ignored (§8)
          this.strayDatagrams++;
          return;
        }
        entry.socket.conn.receive(msg, performance.now());
        return;
      }
      const isHandshake = (msg[0]! & 0x80) !== 0 && ((msg.readUInt16BE(0) & 0x7fff) === CTRL_HANDSHAKE);
      if (isHandshake) this.onConnectionRequest(msg, address, port);
      else this.strayDatagrams++;
    } catch (err) {
      this.log.warn(`SRT: datagram from ${normalizeAddress(address)}:${port} dropped: ${errorText(err)}`);
    }
  }

  private sendTo(address: string, port: number, datagram: Buffer): void {
    if (this.closed) return;
    this.socket.send(datagram, port, address, (err) => {
      if (err && !this.closed) this.log.debug(`SRT: send to ${address}:${port} failed: ${err.message}`);
    });
  }

  private onConnectionRequest(msg: Buffer, address: string, port: number): void {
    const l = this.listener;
    if (!l) {
      this.strayDatagrams++;
      return;
    }
    const timestampUs = msg.readUInt32BE(8);
    const hs = parseHandshake(msg.subarray(SRT_HEADER_BYTES));
    const minute = Math.floor(Date.now() / 60_000);
    const reply = (answer: Buffer): void => this.sendTo(address, port, serializeControl({ type: CTRL_HANDSHAKE, subtype: 0, typeInfo: 0, timestampUs, destSocketId: hs.socketId, cif: answer }));
    if (hs.type === HS_INDUCTION) {
      reply(serializeHandshake(inductionResponse(hs, this.listenerId, synCookie(this.secret, address, port, minute), address)));
      return;
    }
    if (hs.type !== HS_CONCLUSION) return;
    const existing = this.byPeer.get(`${address}|${port}|${hs.socketId}`);
    if (existing !== undefined) {
      this.byId.get(existing)?.socket.conn.receive(msg, performance.now());
      return;
    }
    if (!cookieValid(this.secret, address, port, minute, hs.cookie)) {
      this.log.debug(`SRT: conclusion from ${normalizeAddress(address)}:${port} with a stale cookie ignored`);
      return;
    }
    const localId = this.newSocketId();
    const answer = answerConclusion(hs, l, localId, address);
    if (!answer.ok) {
      l.onRefused?.(normalizeAddress(address), port, '', `${answer.why} (${rejectionText(answer.code)})`);
      reply(serializeHandshake(answer.response));
      return;
    }
    if (this.byId.size >= MAX_CONNECTIONS) {
      l.onRefused?.(normalizeAddress(address), port, answer.accepted.streamId, `too many connections (${MAX_CONNECTIONS})`);
      reply(serializeHandshake({ ...answer.accepted.response, type: REJ_BACKLOG, extensions: [] }));
      return;
    }
    const a = answer.accepted;
    const conn = SrtConnection.accepted((d) => this.sendTo(address, port, d), { ...l.connection, localSocketId: localId, latencyMs: a.latencyMs }, performance.now(), {
      peerSocketId: a.peerSocketId,
      initialSeq: a.initialSeq,
      latencyMs: a.latencyMs,
      peerFlowWindow: a.peerFlowWindow,
      cipher: a.cipher,
      streamId: a.streamId,
      response: a.response,
      requestTimestampUs: timestampUs,
    });
    const socket = this.add(conn, address, port, `${address}|${port}|${hs.socketId}`);
    try {
      l.onConnection(socket);
    } catch (err) {
      socket.close(`refused: ${errorText(err)}`);
    }
  }

  private add(conn: SrtConnection, address: string, port: number, key: string): SrtSocket {
    const socket = new SrtSocket(conn, address, port);
    const entry: Entry = { socket, key };
    this.byId.set(conn.localSocketId, entry);
    if (key) this.byPeer.set(key, conn.localSocketId);
    conn.onData = (payload) => socket.onData(payload);
    conn.onClose = (reason) => {
      this.remove(entry);
      socket.onClose(reason);
    };
    this.startTimer();
    return socket;
  }

  private remove(entry: Entry): void {
    const id = entry.socket.conn.localSocketId;
    if (this.byId.get(id) === entry) this.byId.delete(id);
    if (entry.key && this.byPeer.get(entry.key) === id) this.byPeer.delete(entry.key);
    if (this.byId.size === 0) this.stopTimer();
  }

  /**
   * Connects to a listener (caller mode). Resolves once connected; rejects with why the
   * listener refused or did not answer.
   */
  call(address: string, port: number, opts: Omit<SrtCallerOptions, 'localSocketId' | 'peerAddress'>): Promise<SrtSocket> {
    const localId = this.newSocketId();
    const conn = SrtConnection.caller((d) => this.sendTo(address, port, d), { ...opts, localSocketId: localId, peerAddress: address }, performance.now(), crypto.randomInt(0, 0x7fffffff));
    const socket = this.add(conn, address, port, '');
    return new Promise((resolve, reject) => {
      conn.onConnected = () => {
        socket.onClose = () => {};
        resolve(socket);
      };
      // until connected, an end is the connect's failure
      socket.onClose = (reason) => reject(new HazeError(/rejected/.test(reason) ? 'HAZE_ERR_REFUSED' : 'HAZE_ERR_TIMEOUT', reason, { fatal: /passphrase/.test(reason) }));
      conn.start(performance.now());
    });
  }

  private newSocketId(): number {
    for (;;) {
      const id = randomSocketId();
      if (!this.byId.has(id) && id !== this.listenerId) return id;
    }
  }

  private startTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const e of [...this.byId.values()]) {
        try {
          e.socket.conn.tick(now);
        } catch (err) {
          e.socket.conn.close(`internal error: ${errorText(err)}`, now);
        }
      }
    }, TICK_MS);
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Closes every connection (SHUTDOWN to each peer) and stops the timer; the UDP socket stays with its owner. */
  close(reason: string): void {
    for (const e of [...this.byId.values()]) e.socket.close(reason);
    this.closed = true;
    this.stopTimer();
  }
}

/** A random non-zero socket id (ids are 32 bits; 0 addresses a listener). */
function randomSocketId(): number {
  return crypto.randomInt(1, 0x7fffffff);
}
