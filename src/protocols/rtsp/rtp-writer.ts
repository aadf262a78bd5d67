// Haze packets -> RTP for every viewer of one stream at once (DESIGN §4 "serialize once"):
// each hub packet becomes one chunk of interleaved frames (RFC 2326 §10.12), track i on
// channel 2i (RTP) and 2i+1 (RTCP), which a TCP viewer gets as it is and a UDP viewer as
// datagrams (rtsp/play-sink.ts). Sequence numbers, SSRCs and timestamps are the feed's, so
// a viewer that is skipped ahead to a keyframe sees a gap, as after a loss.
//
// Timestamps: rtp = base + pts(ms) x clock / 1000, except where a codec fixes the duration of
// a frame (AAC: 1024 samples; PCM: the samples in the packet): consecutive frames then step by
// exactly that many ticks, so no rounding of milliseconds reaches the receiver. Sender reports
// (RFC 3550 §6.4.1) tie every track's clock to one NTP wall clock (the hub's clock of media
// time 0 plus the media time), so players line audio up with video; they go before each
// keyframe of the sync track and at least every SR_INTERVAL_MS.

import type { Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { writeRtpHeader, RTP_HEADER_SIZE } from '../rtp/packet.js';
import { serializeBye, serializeSrCname } from '../rtp/rtcp.js';
import { payloadSize, type Packetizer, type RtpPayload } from '../rtp/payload.js';
import { outgoingTracks, type OutgoingTrack } from './sdp-tracks.js';

const SR_INTERVAL_MS = 2000;
/** How far (ms) a frame's time may stray from its predecessor's plus a fixed duration and still continue it exactly. */
const CONTINUITY_MS = 3;

interface TrackOut {
  out: OutgoingTrack;
  packetizer: Packetizer;
  ssrc: number;
  sequence: number;
  base: number;
  /** Exact media time (ms, fractional) and RTP timestamp of the previous frame; -1 before it. */
  lastMs: number;
  lastRtp: number;
  /** Clock ticks of the previous frame (fixed-duration codecs). */
  lastTicks: number;
  packets: number;
  octets: number;
  /** Bytes of one PCM sample frame (PCM, A-law, mu-law), 0 for the others. */
  pcmFrameBytes: number;
}

function random32(): number {
  return (Math.random() * 0x1_0000_0000) >>> 0;
}

/** Channel numbers of track i: RTP on 2i, RTCP on 2i+1. */
export function rtpChannel(index: number): number {
  return 2 * index;
}

export class RtpChunkWriter {
  private tracks: TrackOut[] = [];
  private byId = new Map<number, number>();
  private lastSrMs = -Infinity;
  /** The track whose keyframes viewers start at (the first video track, else the first). */
  private syncIndex = 0;
  private readonly cname = `haze-${random32().toString(16)}`;
  /** Packets left out because they could not be packetized. */
  dropped = 0;

  constructor(
    /** Wall clock (Unix ms) of media time 0: the hub's unixZeroMs. */
    private readonly unixZeroMs: () => number,
  ) {}

  /** The tracks sent, in channel order (the DESCRIBE answer lists the same). */
  get outgoing(): OutgoingTrack[] {
    return this.tracks.map((t) => t.out);
  }

  setTracks(tracks: readonly Track[]): void {
    const old = new Map(this.tracks.map((t) => [t.out.track.id, t]));
    this.tracks = outgoingTracks(tracks).map((out) => {
      const prev = old.get(out.track.id);
      // a track that goes on keeps its SSRC, numbering and clock
      const keep = prev && prev.out.payloadType === out.payloadType && prev.out.clockRate === out.clockRate;
      const t = out.track;
      const pcmFrameBytes = t.type === 'audio' && (t.codec === 'ALAW' || t.codec === 'ULAW' || t.codec === 'PCM') ? Math.max(1, t.channels) * (t.codec === 'PCM' ? t.size / 8 : 1) : 0;
      return {
        out,
        packetizer: out.makePacketizer(),
        ssrc: keep ? prev.ssrc : random32(),
        sequence: keep ? prev.sequence : random32() & 0xffff,
        base: keep ? prev.base : random32(),
        lastMs: keep ? prev.lastMs : -1,
        lastRtp: keep ? prev.lastRtp : 0,
        lastTicks: keep ? prev.lastTicks : 0,
        packets: keep ? prev.packets : 0,
        octets: keep ? prev.octets : 0,
        pcmFrameBytes,
      };
    });
    this.byId = new Map(this.tracks.map((t, i) => [t.out.track.id, i]));
    this.syncIndex = Math.max(0, this.tracks.findIndex((t) => t.out.media === 'video'));
    this.lastSrMs = -Infinity;
  }

  header(): Buffer {
    return Buffer.alloc(0);
  }

  tracksChanged(): Buffer | null {
    return null;
  }

  /** The RTP timestamp of a media time on a track's plain clock (no continuity). */
  private plainRtp(t: TrackOut, ms: number): number {
    return (t.base + Math.round((ms * t.out.clockRate) / 1000)) >>> 0;
  }

  private timestamp(t: TrackOut, p: Packet): number {
    const ms = p.timeMs + p.offsetMs;
    const ticks = t.out.ticksPerFrame > 0 ? t.out.ticksPerFrame : t.pcmFrameBytes > 0 ? Math.floor(p.data.length / t.pcmFrameBytes) : 0;
    let rtp: number;
    if (t.lastMs >= 0 && t.lastTicks > 0) {
      const expectMs = t.lastMs + (t.lastTicks * 1000) / t.out.clockRate;
      if (Math.abs(ms - expectMs) <= CONTINUITY_MS) {
        rtp = (t.lastRtp + t.lastTicks) >>> 0;
        t.lastMs = expectMs;
      } else {
        rtp = this.plainRtp(t, ms);
        t.lastMs = ms;
      }
    } else {
      rtp = this.plainRtp(t, ms);
      t.lastMs = ms;
    }
    t.lastRtp = rtp;
    t.lastTicks = ticks;
    return rtp;
  }

  /** The stream ended: a last sender report with a BYE for each track (RFC 3550 §6.6), the end of that track for players. */
  trailer(timeMs: number): Buffer | null {
    if (this.tracks.length === 0) return null;
    return Buffer.concat(this.reports(timeMs, true).frames);
  }

  /** A sender report for each track (with an SDES CNAME, RFC 3550 §6.1, and a BYE if `bye`), as interleaved frames. */
  private reports(nowMs: number, bye = false): { frames: Buffer[]; size: number } {
    const unixMs = this.unixZeroMs() + nowMs;
    const frames: Buffer[] = [];
    let size = 0;
    this.tracks.forEach((t, i) => {
      const sr = serializeSrCname(t.ssrc, unixMs, this.plainRtp(t, nowMs), t.packets, t.octets, this.cname);
      const report = bye ? Buffer.concat([sr, serializeBye(t.ssrc)]) : sr;
      const f = Buffer.allocUnsafe(4 + report.length);
      f[0] = 0x24;
      f[1] = rtpChannel(i) + 1;
      f.writeUInt16BE(report.length, 2);
      report.copy(f, 4);
      frames.push(f);
      size += f.length;
    });
    return { frames, size };
  }

  packet(p: Packet): Buffer | null {
    const i = this.byId.get(p.trackId);
    if (i === undefined) return null;
    const t = this.tracks[i]!;
    let payloads: RtpPayload[];
    try {
      payloads = t.packetizer.packetize(p);
    } catch (err) {
      // a packet RTP cannot carry (NAL lengths that run past its end, an AAC frame past 8 KiB)
      // is left out for RTSP viewers; it must not reach the publisher that pushed it
      if (!(err instanceof HazeError)) throw err;
      this.dropped++;
      return null;
    }
    if (payloads.length === 0) return null;
    const rtp = this.timestamp(t, p);
    // reports before each keyframe of the sync track (where viewers start) and every SR_INTERVAL_MS
    const sr = (i === this.syncIndex && p.keyframe) || p.timeMs - this.lastSrMs >= SR_INTERVAL_MS || p.timeMs < this.lastSrMs ? this.reports(p.timeMs) : undefined;
    if (sr) this.lastSrMs = p.timeMs;
    let size = sr ? sr.size : 0;
    for (const pl of payloads) size += 4 + RTP_HEADER_SIZE + payloadSize(pl);
    const out = Buffer.allocUnsafe(size);
    let pos = 0;
    if (sr) for (const f of sr.frames) pos += f.copy(out, pos);
    const channel = rtpChannel(i);
    for (const pl of payloads) {
      const len = RTP_HEADER_SIZE + payloadSize(pl);
      out[pos] = 0x24;
      out[pos + 1] = channel;
      out.writeUInt16BE(len, pos + 2);
      pos = writeRtpHeader(out, pos + 4, t.out.payloadType, pl.marker, t.sequence, (rtp + pl.tsOffset) >>> 0, t.ssrc);
      t.sequence = (t.sequence + 1) & 0xffff;
      for (const part of pl.parts) pos += part.copy(out, pos);
      t.packets++;
      t.octets += len - RTP_HEADER_SIZE;
    }
    return out;
  }
}
