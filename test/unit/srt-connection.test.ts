// The SRT connection state machine without sockets: a caller and a listener-accepted connection
// joined by an in-memory link with a virtual clock that loses, delays and reorders datagrams.
// What the sender hands over arrives complete and in order (retransmission), a packet that
// never arrives is given up after the latency (too-late drop) and delivery goes on, encryption
// works end to end, and handshakes fail the way they should.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SrtConnection, type SrtCallerOptions } from '../../src/protocols/srt/connection.js';
import { CTRL_HANDSHAKE } from '../../src/protocols/srt/control.js';
import { HS_CONCLUSION, HS_INDUCTION, parseHandshake, serializeHandshake } from '../../src/protocols/srt/handshake.js';
import { answerConclusion, inductionResponse } from '../../src/protocols/srt/listener.js';
import { parsePacket, serializeControl } from '../../src/protocols/srt/packet.js';
import { seededRandom } from '../../src/util/prng.js';

interface LinkOptions {
  loss: number;
  /** Base one-way delay and random jitter (ms): jitter reorders. */
  delayMs: number;
  jitterMs: number;
  seed: number;
  /** Drops every datagram this returns true for (besides random loss). */
  drop?: (datagram: Buffer, toListener: boolean) => boolean;
}

/**
 * A caller and a listener over a lossy link, driven by a virtual clock in 1 ms steps. The
 * listener side plays the multiplexer's part: it answers INDUCTION and CONCLUSION with
 * listener.ts and then hands datagrams to the connection it accepted.
 */
class Sim {
  now = 0;
  private queue: { at: number; toListener: boolean; d: Buffer }[] = [];
  private readonly random: () => number;
  caller: SrtConnection;
  listener: SrtConnection | undefined;
  refused: string | undefined;
  readonly received: Buffer[] = [];
  callerClosed: string | undefined;
  sentDatagrams = 0;

  constructor(
    private readonly link: LinkOptions,
    callerOpts: Partial<SrtCallerOptions>,
    private readonly listenerPassphrase = '',
  ) {
    this.random = seededRandom(link.seed);
    this.caller = SrtConnection.caller((d) => this.put(d, true), { localSocketId: 1001, peerAddress: '127.0.0.1', latencyMs: 120, ...callerOpts }, this.now, 5000);
    this.caller.onClose = (r) => (this.callerClosed = r);
    this.caller.start(this.now);
  }

  private put(d: Buffer, toListener: boolean): void {
    this.sentDatagrams++;
    if (this.link.drop?.(d, toListener)) return;
    if (this.random() < this.link.loss) return;
    this.queue.push({ at: this.now + this.link.delayMs + this.random() * this.link.jitterMs, toListener, d });
  }

  private toListener(d: Buffer): void {
    if (this.listener) {
      this.listener.receive(d, this.now);
      return;
    }
    const p = parsePacket(d);
    if (!p.control || p.type !== CTRL_HANDSHAKE) return;
    const hs = parseHandshake(p.cif);
    const reply = (cif: Buffer): void => this.put(serializeControl({ type: CTRL_HANDSHAKE, subtype: 0, typeInfo: 0, timestampUs: 0, destSocketId: hs.socketId, cif }), false);
    if (hs.type === HS_INDUCTION) reply(serializeHandshake(inductionResponse(hs, 77, 0x1234, '127.0.0.1')));
    if (hs.type !== HS_CONCLUSION) return;
    const a = answerConclusion(hs, { latencyMs: 120, passphraseFor: () => this.listenerPassphrase }, 2002, '127.0.0.1');
    if (!a.ok) {
      this.refused = a.why;
      reply(serializeHandshake(a.response));
      return;
    }
    const acc = a.accepted;
    this.listener = SrtConnection.accepted((x) => this.put(x, false), { localSocketId: 2002, latencyMs: acc.latencyMs }, this.now, { ...acc, requestTimestampUs: 0 });
    this.listener.onData = (payload) => this.received.push(payload);
  }

  /** Advances the clock by `ms`, delivering datagrams and ticking both sides every millisecond. */
  run(ms: number, each?: (now: number) => void): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now += 1;
      each?.(this.now);
      const due = this.queue.filter((q) => q.at <= this.now).sort((a, b) => a.at - b.at);
      this.queue = this.queue.filter((q) => q.at > this.now);
      for (const q of due) {
        if (q.toListener) this.toListener(q.d);
        else this.caller.receive(q.d, this.now);
      }
      this.caller.tick(this.now);
      this.listener?.tick(this.now);
    }
  }

  connect(): void {
    this.run(3000, () => undefined);
  }
}

const payload = (i: number): Buffer => {
  const b = Buffer.alloc(1316, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
};

/** Sends `n` payloads from the caller, one every `everyMs`, then runs `tailMs` more. */
function stream(sim: Sim, n: number, everyMs: number, tailMs: number): void {
  let sent = 0;
  sim.run(n * everyMs, (now) => {
    if (sim.caller.state === 'connected' && sent < n && now % everyMs === 0) sim.caller.send(payload(sent++), now);
  });
  sim.run(tailMs);
}

test('a clean link: handshake, then every payload in order', () => {
  const sim = new Sim({ loss: 0, delayMs: 5, jitterMs: 0, seed: 1 }, {});
  sim.run(100);
  assert.equal(sim.caller.state, 'connected');
  assert.equal(sim.listener?.state, 'connected');
  stream(sim, 200, 2, 200);
  assert.equal(sim.received.length, 200);
  sim.received.forEach((p, i) => assert.equal(p.readUInt32BE(0), i));
  assert.equal(sim.caller.stats.packetsRetransmitted, 0);
  assert.equal(sim.listener!.stats.packetsLost, 0);
  assert.ok(sim.listener!.stats.rttUs < 20_000, `RTT measured by ACK/ACKACK: ${sim.listener!.stats.rttUs} us`);
});

test('10% loss each way with reordering: retransmission delivers everything in order', () => {
  const sim = new Sim({ loss: 0.1, delayMs: 5, jitterMs: 4, seed: 42 }, {});
  sim.run(1000);
  assert.equal(sim.caller.state, 'connected', 'the handshake repeats its requests through the loss');
  stream(sim, 1000, 1, 500);
  assert.equal(sim.received.length, 1000, `received ${sim.received.length}; stats ${JSON.stringify(sim.listener!.stats)}`);
  sim.received.forEach((p, i) => assert.equal(p.readUInt32BE(0), i));
  assert.ok(sim.caller.stats.packetsRetransmitted > 50, `retransmitted ${sim.caller.stats.packetsRetransmitted}`);
  assert.equal(sim.listener!.stats.packetsDropped, 0);
  assert.ok(sim.listener!.stats.packetsRecovered > 50);
});

test('a packet whose every copy is lost is given up after the latency; delivery goes on', () => {
  let victim: number | undefined;
  const sim = new Sim(
    {
      loss: 0,
      delayMs: 2,
      jitterMs: 0,
      seed: 3,
      drop: (d, toListener) => {
        const p = parsePacket(d);
        if (!toListener || p.control) return false;
        // the 50th data packet never arrives, nor its retransmissions
        victim ??= p.seq + 49;
        return p.seq === victim;
      },
    },
    {},
  );
  sim.run(100);
  let sent = 0;
  let gapSeenAt = -1;
  sim.run(400, (now) => {
    if (sent < 100 && now % 2 === 0) sim.caller.send(payload(sent++), now);
    if (gapSeenAt < 0 && sim.received.length === 49 && sent > 52) gapSeenAt = now;
  });
  assert.equal(sim.received.length, 99);
  assert.deepEqual(
    sim.received.map((p) => p.readUInt32BE(0)).filter((i) => i >= 48 && i <= 50),
    [48, 50],
  );
  assert.equal(sim.listener!.stats.packetsDropped, 1);
  assert.ok(sim.caller.stats.packetsRetransmitted >= 3, 'the lost packet was asked for again and again');
});

test('encrypted both ways; payloads under the key arrive as sent', () => {
  const sim = new Sim({ loss: 0.05, delayMs: 3, jitterMs: 2, seed: 9 }, { passphrase: 'sim-passphrase', keyLength: 24 }, 'sim-passphrase');
  sim.run(500);
  assert.equal(sim.caller.state, 'connected');
  assert.ok(sim.caller.encrypted && sim.listener!.encrypted);
  stream(sim, 300, 1, 400);
  assert.equal(sim.received.length, 300);
  sim.received.forEach((p, i) => assert.deepEqual(p, payload(i)));
  // the listener sends too: the caller decrypts
  const back: Buffer[] = [];
  sim.caller.onData = (p) => back.push(p);
  for (let i = 0; i < 20; i++) sim.listener!.send(payload(1000 + i), sim.now);
  sim.run(200);
  assert.equal(back.length, 20);
  assert.deepEqual(back[19], payload(1019));
});

test('a wrong passphrase is refused in the handshake', () => {
  const sim = new Sim({ loss: 0, delayMs: 2, jitterMs: 0, seed: 5 }, { passphrase: 'wrong-passphrase' }, 'right-passphrase');
  sim.run(200);
  assert.equal(sim.caller.state, 'closed');
  assert.match(sim.callerClosed!, /rejected: wrong passphrase/);
  assert.equal(sim.refused, 'wrong passphrase');
});

test('no listener: the caller gives up after its connect timeout, with why', () => {
  const sim = new Sim({ loss: 1, delayMs: 2, jitterMs: 0, seed: 5 }, { connectTimeoutMs: 1000 });
  sim.run(1100);
  assert.equal(sim.caller.state, 'closed');
  assert.match(sim.callerClosed!, /timed out/);
  assert.ok(sim.sentDatagrams >= 4, 'the induction was repeated');
});

test('a silent peer ends the connection after the idle timeout; SHUTDOWN ends it at once', () => {
  const sim = new Sim({ loss: 0, delayMs: 2, jitterMs: 0, seed: 6 }, { peerIdleTimeoutMs: 2000 });
  sim.run(100);
  let listenerClosed = '';
  sim.listener!.onClose = (r) => (listenerClosed = r);
  sim.caller.close('bye', sim.now);
  sim.run(20);
  assert.equal(listenerClosed, 'the peer closed the connection');

  const quiet = new Sim({ loss: 0, delayMs: 2, jitterMs: 0, seed: 7, drop: (_d, toListener) => !toListener }, { peerIdleTimeoutMs: 1500 });
  quiet.run(3000);
  assert.match(quiet.callerClosed ?? '', /timed out|no packet/);
});

test('a send buffer is bounded: a peer that never acknowledges costs at most the bound', () => {
  const sim = new Sim({ loss: 0, delayMs: 2, jitterMs: 0, seed: 8 }, { maxSendBufferPackets: 100 });
  sim.run(100);
  // from now on nothing reaches the caller (no ACK), the caller keeps sending
  const muted = sim as unknown as { link: LinkOptions };
  muted.link.drop = (_d, toListener) => !toListener;
  for (let i = 0; i < 500; i++) sim.caller.send(payload(i), sim.now);
  assert.ok(sim.caller.unacknowledged <= 100, `held ${sim.caller.unacknowledged}`);
  assert.ok(sim.caller.stats.packetsSendDropped >= 400);
});
