// A WebRTC viewer (WHEP, or the /webrtc/ WebSocket signalling): sends one stream's tracks to a
// browser over its peer. Per viewer and track it keeps only RTP header state (random SSRC,
// sequence and timestamp bases) and a bounded history of the last packets sent, as references
// to the feed's shared payloads, to answer NACKs (RFC 4585 §6.2.1) by sending the same packet
// again (same SSRC and sequence number; no RTX was negotiated). A PLI or FIR is passed to
// `requestKeyframe` (a WHIP publisher of the stream is asked for one; other sources cannot be).
// A sender report per track every second lets the browser line audio up with video (RFC 3550
// §6.4.1: NTP time and RTP time of the same instant, from the hub's wall clock of media time 0).

import { randomBytes } from 'node:crypto';
import type { StreamHub } from '../../hub/stream-hub.js';
import type { Track } from '../../media/types.js';
import type { Logger } from '../../util/log.js';
import type { WebRtcPeer } from './peer.js';
import { serializeSrCname, type RtcpPacket } from '../rtp/rtcp.js';
import { RtpFeed, type RtpChunk, type RtpFeedViewer } from './rtp-feed.js';

/** What the answer promised for one track. */
export interface SendPlan {
  /** The hub track sent (re-chosen by type and codec when the stream's tracks change). */
  trackId: number;
  type: 'video' | 'audio';
  codec: string;
  payloadType: number;
  clockRate: number;
  ssrc: number;
  /** Whether the browser may NACK this track (keeps a history). */
  nack: boolean;
}

/** Packets remembered per track for NACKs (about 2.5 s of a 2 Mbit/s stream). */
const HISTORY = 512;
/**
 * A packet is sent again at most this often: a receiver that keeps NACKing what it already got
 * (a slow client, a repeated NACK) must not multiply the stream's rate.
 */
const RESEND_INTERVAL_MS = 40;
/** Packets sent at once; more wait for the pacer (the first GOP of a new viewer). */
const BURST = 48;
/** The pacer's rate: packets per millisecond tick (about 150 Mbit/s of 1200-byte payloads). */
const PACED_PER_TICK = 16;
/** A viewer further behind than this many queued packets has stalled and is cut back to live. */
const MAX_QUEUED = 4096;

interface TrackSender {
  plan: SendPlan;
  seq: number;
  roc: number;
  tsBase: number;
  packets: number;
  octets: number;
  started: boolean;
  history: (RtpChunk | undefined)[] | undefined;
  historySeq: Int32Array | undefined;
  historyRoc: Uint32Array | undefined;
  /** When each remembered packet was last sent again (performance.now(), 0 never). */
  historyResent: Float64Array | undefined;
}

export interface WhepCounters {
  packetsSent: number;
  bytesSent: number;
  retransmitted: number;
  nacksReceived: number;
  keyframeRequests: number;
  /** Packets the browser reported lost (RTCP receiver reports), summed over tracks. */
  reportedLost: number;
}

export class WhepSession implements RtpFeedViewer {
  private readonly senders: TrackSender[];
  private readonly byTrack = new Map<number, TrackSender>();
  private readonly bySsrc = new Map<number, TrackSender>();
  private readonly queue: RtpChunk[] = [];
  private pacer: NodeJS.Timeout | undefined;
  private detach: (() => void) | undefined;
  private srTimer: NodeJS.Timeout | undefined;
  private ended = false;
  private readonly lostBySsrc = new Map<number, number>();
  readonly counters: WhepCounters = { packetsSent: 0, bytesSent: 0, retransmitted: 0, nacksReceived: 0, keyframeRequests: 0, reportedLost: 0 };

  constructor(
    private readonly peer: WebRtcPeer,
    private readonly hub: StreamHub,
    plans: readonly SendPlan[],
    private readonly opts: { cname: string; log: Logger; requestKeyframe?: () => void; onEnd: (reason: string) => void },
  ) {
    this.senders = plans.map((plan) => {
      const r = randomBytes(6);
      const s: TrackSender = {
        plan,
        seq: r.readUInt16BE(0),
        roc: 0,
        tsBase: r.readUInt32BE(2),
        packets: 0,
        octets: 0,
        started: false,
        history: plan.nack ? new Array<RtpChunk | undefined>(HISTORY) : undefined,
        historySeq: plan.nack ? new Int32Array(HISTORY).fill(-1) : undefined,
        historyRoc: plan.nack ? new Uint32Array(HISTORY) : undefined,
        historyResent: plan.nack ? new Float64Array(HISTORY) : undefined,
      };
      this.bySsrc.set(plan.ssrc, s);
      return s;
    });
    this.mapTracks(hub.tracks);
  }

  /** Starts sending (the peer is connected). */
  start(): void {
    if (this.ended || this.detach) return;
    this.detach = RtpFeed.of(this.hub, this.opts.log).add(this);
    this.srTimer = setInterval(() => this.sendReports(), 1000);
    this.srTimer.unref();
  }

  /** Each plan follows a track of its type and codec: the same id if it is still there, else the first that matches. */
  private mapTracks(tracks: readonly Track[]): void {
    this.byTrack.clear();
    for (const s of this.senders) {
      const same = tracks.find((t) => t.id === s.plan.trackId && t.codec === s.plan.codec);
      const t = same ?? tracks.find((t) => t.type === s.plan.type && t.codec === s.plan.codec && !this.byTrack.has(t.id));
      if (!t) continue;
      s.plan.trackId = t.id;
      this.byTrack.set(t.id, s);
    }
  }

  onTracks(tracks: readonly Track[]): void {
    this.mapTracks(tracks);
  }

  onChunks(chunks: readonly RtpChunk[]): void {
    if (this.ended) return;
    if (this.queue.length === 0 && chunks.length <= BURST) {
      for (const c of chunks) this.sendChunk(c);
      return;
    }
    if (this.queue.length + chunks.length > MAX_QUEUED) {
      // stalled far behind: what is queued is stale; start again at the next keyframe
      this.queue.length = 0;
      for (const s of this.senders) s.started = false;
    }
    for (const c of chunks) this.queue.push(c);
    this.pacer ??= setInterval(() => this.drain(), 1);
  }

  private drain(): void {
    const n = Math.min(this.queue.length, PACED_PER_TICK);
    for (let i = 0; i < n; i++) this.sendChunk(this.queue[i]!);
    this.queue.splice(0, n);
    if (this.queue.length === 0 && this.pacer) {
      clearInterval(this.pacer);
      this.pacer = undefined;
    }
  }

  private sendChunk(c: RtpChunk): void {
    const s = this.byTrack.get(c.trackId);
    if (!s) return;
    // video starts at a keyframe; audio at once
    if (!s.started) {
      if (s.plan.type === 'video' && !c.keyStart) return;
      s.started = true;
    }
    const seq = s.seq;
    const n = this.peer.sendRtp(c.marker, s.plan.payloadType, seq, (s.tsBase + c.timestamp) >>> 0, s.plan.ssrc, s.roc, c.payload);
    if (n === 0) return;
    if (s.history) {
      const slot = seq & (HISTORY - 1);
      s.history[slot] = c;
      s.historySeq![slot] = seq;
      s.historyRoc![slot] = s.roc;
      s.historyResent![slot] = 0;
    }
    s.packets++;
    s.octets += c.payload.length;
    this.counters.packetsSent++;
    this.counters.bytesSent += n;
    s.seq = (seq + 1) & 0xffff;
    if (s.seq === 0) s.roc = (s.roc + 1) >>> 0;
  }

  onRtcp(messages: readonly RtcpPacket[]): void {
    for (const m of messages) {
      switch (m.type) {
        case 'nack': {
          const s = this.bySsrc.get(m.mediaSsrc);
          this.counters.nacksReceived++;
          if (!s?.history) break;
          const now = performance.now();
          for (const seq of m.lost) {
            const slot = seq & (HISTORY - 1);
            const c = s.history[slot];
            if (!c || s.historySeq![slot] !== seq || now - s.historyResent![slot]! < RESEND_INTERVAL_MS) continue;
            s.historyResent![slot] = now;
            const n = this.peer.sendRtp(c.marker, s.plan.payloadType, seq, (s.tsBase + c.timestamp) >>> 0, s.plan.ssrc, s.historyRoc![slot]!, c.payload);
            if (n > 0) {
              this.counters.retransmitted++;
              this.counters.bytesSent += n;
            }
          }
          break;
        }
        case 'pli':
        case 'fir':
          this.counters.keyframeRequests++;
          this.opts.requestKeyframe?.();
          break;
        case 'rr':
        case 'sr':
          for (const r of m.reports) {
            if (!this.bySsrc.has(r.ssrc)) continue;
            this.lostBySsrc.set(r.ssrc, Math.max(0, r.cumulativeLost));
          }
          this.counters.reportedLost = [...this.lostBySsrc.values()].reduce((a, b) => a + b, 0);
          break;
        case 'bye':
          if (m.ssrcs.length > 0) this.close('the viewer said BYE');
          break;
        default:
      }
    }
  }

  private sendReports(): void {
    const zero = this.hub.unixZeroMs;
    const now = Date.now();
    for (const s of this.senders) {
      if (s.packets === 0 || zero < 0) continue;
      const rtpTime = (s.tsBase + Math.round(((now - zero) * s.plan.clockRate) / 1000)) >>> 0;
      this.peer.sendRtcp(serializeSrCname(s.plan.ssrc, now, rtpTime, s.packets, s.octets, this.opts.cname));
    }
  }

  onEnd(reason: string): void {
    this.close(`stream ended: ${reason}`);
  }

  /** Stops sending (idempotent); the caller closes the peer. */
  close(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.detach?.();
    this.detach = undefined;
    if (this.pacer) clearInterval(this.pacer);
    if (this.srTimer) clearInterval(this.srTimer);
    this.queue.length = 0;
    this.opts.onEnd(reason);
  }
}
