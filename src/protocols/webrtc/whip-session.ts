// A WebRTC publisher (WHIP, or the /webrtc/ WebSocket signalling with a sending offer): its RTP
// back into Haze packets for the stream's hub. Per track: a reorder buffer (reorder.ts) that
// NACKs what is missing (RFC 4585 §6.2.1) and gives up on a gap after a while, a frame assembler
// (depacketize.ts), and the clock that turns RTP timestamps into milliseconds. After a loss it
// cannot repair, the publisher is asked for a keyframe (PLI, RFC 4585 §6.3.1) until one comes;
// a viewer's PLI is passed on the same way (requestKeyframe). Every second a receiver report and
// a REMB (the bit rate it may use) go back, so the browser's congestion control has feedback.
//
// Times: each track's first packet is placed at its arrival time relative to the session's
// first packet, later ones at that plus their RTP time difference; so audio and video line up
// to within the network jitter of their first packets (browsers capture both on one clock).

import { randomBytes } from 'node:crypto';
import type { StreamHub } from '../../hub/stream-hub.js';
import { buildAvcC, parseH264Sps } from '../../media/h264.js';
import type { Track } from '../../media/types.js';
import { errorText } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import { H264Assembler, OpusAssembler, Vp8Assembler, vp8FrameSize, type FrameAssembler, type ReceivedFrame } from './depacketize.js';
import type { WebRtcPeer } from './peer.js';
import { ReorderBuffer } from './reorder.js';
import { serializeRr, type ReportBlock, type RtcpPacket } from '../rtp/rtcp.js';
import { serializeNack, serializePli, serializeRemb } from '../rtp/rtcp-feedback.js';
import { seqDelta, type RtpPacket } from '../rtp/packet.js';

export interface ReceivePlan {
  type: 'video' | 'audio';
  codec: 'H264' | 'VP8' | 'opus';
  payloadType: number;
  clockRate: number;
  channels: number;
}

/** Hub track ids of a WebRTC publisher. */
export const WHIP_VIDEO_TRACK = 1;
export const WHIP_AUDIO_TRACK = 2;

/** The bit rate offered to a publisher (REMB), as MistServer's default video_bitrate. */
export const WHIP_MAX_BITRATE_BPS = 6_000_000;
const NACK_INTERVAL_MS = 20;
/** A missing packet is NACKed this often at most, this far apart. */
const NACK_TRIES = 4;
const NACK_RETRY_MS = 40;
const PLI_INTERVAL_MS = 500;

interface TrackReceiver {
  plan: ReceivePlan;
  trackId: number;
  ssrc: number;
  reorder: ReorderBuffer;
  assembler: FrameAssembler;
  /** Extended RTP time of the first frame, and where it sits on the hub's timeline (ms). */
  firstTs: number;
  anchorMs: number;
  lastExtTs: number;
  lastMs: number;
  track: Track | undefined;
  nackTries: Map<number, { tries: number; lastMs: number }>;
  received: number;
  highestExt: number;
  baseSeq: number;
  cycles: number;
  lastHighest: number;
  expectedPrior: number;
  receivedPrior: number;
  lastPliMs: number;
}

export interface WhipCounters {
  packetsReceived: number;
  bytesReceived: number;
  framesIn: number;
  framesDropped: number;
  nacksSent: number;
  plisSent: number;
  lost: number;
}

/** An OpusHead (RFC 7845 §5.1) for a WebRTC Opus track: 48 kHz, no pre-skip, mapping family 0. */
export function opusHead(channels: number): Buffer {
  const b = Buffer.alloc(19);
  b.write('OpusHead', 0, 'latin1');
  b[8] = 1;
  b[9] = channels;
  b.writeUInt16LE(0, 10);
  b.writeUInt32LE(48_000, 12);
  return b;
}

export class WhipSession {
  private readonly receivers = new Map<number, TrackReceiver>();
  private readonly ssrc = randomBytes(4).readUInt32BE(0);
  private readonly timers: NodeJS.Timeout[] = [];
  private startMs = -1;
  private ended = false;
  readonly counters: WhipCounters = { packetsReceived: 0, bytesReceived: 0, framesIn: 0, framesDropped: 0, nacksSent: 0, plisSent: 0, lost: 0 };

  constructor(
    private readonly peer: WebRtcPeer,
    private readonly hub: Pick<StreamHub, 'setTrack' | 'push'>,
    plans: readonly ReceivePlan[],
    private readonly log: Logger,
  ) {
    for (const plan of plans) {
      const trackId = plan.type === 'video' ? WHIP_VIDEO_TRACK : WHIP_AUDIO_TRACK;
      this.receivers.set(plan.payloadType, {
        plan,
        trackId,
        ssrc: -1,
        reorder: new ReorderBuffer({ capacity: plan.type === 'video' ? 1024 : 128, maxWaitMs: plan.type === 'video' ? 400 : 100 }),
        assembler: plan.codec === 'H264' ? new H264Assembler() : plan.codec === 'VP8' ? new Vp8Assembler() : new OpusAssembler(),
        firstTs: -1,
        anchorMs: 0,
        lastExtTs: -1,
        lastMs: -1,
        track: undefined,
        nackTries: new Map(),
        received: 0,
        highestExt: -1,
        baseSeq: 0,
        cycles: 0,
        lastHighest: 0,
        expectedPrior: 0,
        receivedPrior: 0,
        lastPliMs: 0,
      });
      if (plan.codec === 'opus') this.setTrack(this.receivers.get(plan.payloadType)!, { id: trackId, type: 'audio', codec: 'opus', init: opusHead(plan.channels), bps: 0, lang: 'und', rate: 48_000, channels: plan.channels, size: 16 });
    }
    const tick = setInterval(() => this.tick(), NACK_INTERVAL_MS);
    const report = setInterval(() => this.report(), 1000);
    tick.unref();
    report.unref();
    this.timers.push(tick, report);
  }

  private setTrack(r: TrackReceiver, t: Track): void {
    r.track = t;
    this.hub.setTrack(t);
  }

  onRtp(p: RtpPacket): void {
    if (this.ended) return;
    const r = this.receivers.get(p.payloadType);
    if (!r) return;
    if (r.ssrc < 0) r.ssrc = p.ssrc;
    else if (r.ssrc !== p.ssrc) return;
    this.counters.packetsReceived++;
    this.counters.bytesReceived += p.payload.length;
    r.received++;
    this.noteSeq(r, p.sequence);
    const now = performance.now();
    r.nackTries.delete(p.sequence);
    for (const o of r.reorder.push(p, now)) this.onOrdered(r, r.assembler.push(o), now);
  }

  /** Extended highest sequence number for receiver reports (RFC 3550 Appendix A.1). */
  private noteSeq(r: TrackReceiver, seq: number): void {
    if (r.highestExt < 0) {
      r.highestExt = seq;
      r.baseSeq = seq;
      r.lastHighest = seq;
      return;
    }
    const d = seqDelta(r.lastHighest, seq);
    if (d > 0) {
      if (seq < r.lastHighest) r.cycles += 0x10000;
      r.lastHighest = seq;
      r.highestExt = r.cycles + seq;
    }
  }

  private onOrdered(r: TrackReceiver, frames: ReceivedFrame[], nowMs: number): void {
    for (const f of frames) {
      try {
        this.pushFrame(r, f, nowMs);
      } catch (err) {
        // one bad frame (an SPS that does not parse ...) is dropped, the session goes on
        this.counters.framesDropped++;
        this.log.debug(`WHIP: frame dropped: ${errorText(err)}`);
      }
    }
  }

  private pushFrame(r: TrackReceiver, f: ReceivedFrame, nowMs: number): void {
    if (r.plan.codec === 'H264' && f.sps && f.pps) {
      const init = buildAvcC(f.sps, f.pps);
      if (!r.track || !r.track.init.equals(init)) {
        const sps = parseH264Sps(f.sps);
        this.setTrack(r, { id: r.trackId, type: 'video', codec: 'H264', init, bps: 0, lang: 'und', width: sps.width, height: sps.height, fpks: sps.fpks });
      }
    } else if (r.plan.codec === 'VP8' && f.keyframe) {
      const size = vp8FrameSize(f.data);
      const t = r.track;
      if (size && (!t || t.type !== 'video' || t.width !== size.width || t.height !== size.height)) {
        this.setTrack(r, { id: r.trackId, type: 'video', codec: 'VP8', init: Buffer.alloc(0), bps: 0, lang: 'und', width: size.width, height: size.height, fpks: 0 });
      }
    }
    if (!r.track) return;
    // unwrap the 32-bit RTP time around the previous frame's
    let ext: number;
    if (r.lastExtTs < 0) ext = f.timestamp;
    else {
      const diff = (((f.timestamp - (r.lastExtTs % 0x100000000)) % 0x100000000) + 0x100000000) % 0x100000000;
      ext = r.lastExtTs + (diff >= 0x80000000 ? diff - 0x100000000 : diff);
    }
    r.lastExtTs = ext;
    if (r.firstTs < 0) {
      if (this.startMs < 0) this.startMs = nowMs;
      r.firstTs = ext;
      r.anchorMs = nowMs - this.startMs;
    }
    let timeMs = Math.round(r.anchorMs + ((ext - r.firstTs) * 1000) / r.plan.clockRate);
    // decode times never go back (a publisher's clock jump is flattened, not replayed)
    if (timeMs < r.lastMs) timeMs = r.lastMs;
    r.lastMs = timeMs;
    this.counters.framesIn++;
    this.hub.push({ trackId: r.trackId, timeMs, offsetMs: 0, keyframe: f.keyframe, data: f.data });
  }

  onRtcp(messages: readonly RtcpPacket[]): void {
    for (const m of messages) if (m.type === 'bye' && m.ssrcs.length > 0) this.log.debug('WHIP: the publisher said BYE');
  }

  /** Asks the publisher for a keyframe (a viewer's PLI or a loss here), at most every PLI_INTERVAL_MS per track. */
  requestKeyframe(): void {
    const now = performance.now();
    for (const r of this.receivers.values()) {
      if (r.plan.type !== 'video' || r.ssrc < 0 || now - r.lastPliMs < PLI_INTERVAL_MS) continue;
      r.lastPliMs = now;
      this.counters.plisSent++;
      this.peer.sendRtcp(serializePli(this.ssrc, r.ssrc));
    }
  }

  private tick(): void {
    if (this.ended || !this.peer.connected) return;
    const now = performance.now();
    for (const r of this.receivers.values()) {
      for (const o of r.reorder.poll(now)) this.onOrdered(r, r.assembler.push(o), now);
      if (r.ssrc < 0) continue;
      if (r.plan.type === 'video') {
        const nack: number[] = [];
        for (const seq of r.reorder.missing(128)) {
          const t = r.nackTries.get(seq);
          if (t && (t.tries >= NACK_TRIES || now - t.lastMs < NACK_RETRY_MS)) continue;
          r.nackTries.set(seq, { tries: (t?.tries ?? 0) + 1, lastMs: now });
          nack.push(seq);
        }
        // forget what is no longer waited for
        if (r.nackTries.size > 512) r.nackTries.clear();
        if (nack.length > 0) {
          this.counters.nacksSent++;
          this.peer.sendRtcp(serializeNack(this.ssrc, r.ssrc, nack));
        }
        if (r.assembler.needKeyframe && r.received > 0 && now - r.lastPliMs >= PLI_INTERVAL_MS) this.requestKeyframe();
      }
      this.counters.lost = [...this.receivers.values()].reduce((a, x) => a + x.reorder.lost, 0);
      this.counters.framesDropped = [...this.receivers.values()].reduce((a, x) => a + x.assembler.dropped, 0);
    }
  }

  private report(): void {
    if (this.ended || !this.peer.connected) return;
    const blocks: ReportBlock[] = [];
    const video: number[] = [];
    for (const r of this.receivers.values()) {
      if (r.ssrc < 0 || r.highestExt < 0) continue;
      const expected = r.highestExt - r.baseSeq + 1;
      const expectedInterval = expected - r.expectedPrior;
      const receivedInterval = r.received - r.receivedPrior;
      r.expectedPrior = expected;
      r.receivedPrior = r.received;
      const lostInterval = expectedInterval - receivedInterval;
      blocks.push({
        ssrc: r.ssrc,
        fractionLost: expectedInterval > 0 && lostInterval > 0 ? Math.min(255, Math.floor((lostInterval * 256) / expectedInterval)) : 0,
        cumulativeLost: r.reorder.lost,
        highestSequence: r.highestExt >>> 0,
        jitter: 0,
        lastSr: 0,
        delaySinceLastSr: 0,
      });
      if (r.plan.type === 'video') video.push(r.ssrc);
    }
    if (blocks.length > 0) this.peer.sendRtcp(serializeRr(this.ssrc, blocks.slice(0, 31)));
    if (video.length > 0) this.peer.sendRtcp(serializeRemb(this.ssrc, WHIP_MAX_BITRATE_BPS, video));
  }

  close(): void {
    if (this.ended) return;
    this.ended = true;
    for (const t of this.timers) clearInterval(t);
  }
}
