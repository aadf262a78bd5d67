// Sample-based audio over RTP, RFC 3551 §4.5: G.711 A-law (PCMA, static payload type 8) and
// mu-law (PCMU, 0) at one byte per sample, linear L16 (big-endian signed 16 bits; static 10
// stereo / 11 mono at 44.1 kHz) and L24 (RFC 3190). Samples of all channels are interleaved;
// the RTP timestamp counts sample frames. Haze holds PCM big-endian signed, as RTP does, so
// payloads pass through unchanged; a packet is cut at sample frame boundaries.

import type { Packet } from '../../media/types.js';
import type { RtpPacket } from './packet.js';
import { DEFAULT_MAX_PAYLOAD, type Depacketizer, type Packetizer, type RtpFrame, type RtpPayload } from './payload.js';

export class PcmDepacketizer implements Depacketizer {
  constructor(private readonly frameBytes: number) {}

  push(pkt: RtpPacket, _lost = false): RtpFrame[] {
    // a payload cut mid-sample keeps its whole sample frames only
    const whole = pkt.payload.length - (pkt.payload.length % this.frameBytes);
    return whole > 0 ? [{ timestamp: pkt.timestamp, data: pkt.payload.subarray(0, whole), keyframe: true }] : [];
  }
  flush(): RtpFrame[] {
    return [];
  }
  takeInit(): Buffer | undefined {
    return undefined;
  }
}

export class PcmPacketizer implements Packetizer {
  private readonly room: number;

  constructor(
    /** Bytes of one sample frame (channels x bytes per sample). */
    private readonly frameBytes: number,
    maxPayload = DEFAULT_MAX_PAYLOAD,
  ) {
    this.room = Math.max(frameBytes, maxPayload - (maxPayload % frameBytes));
  }

  packetize(p: Packet): RtpPayload[] {
    const out: RtpPayload[] = [];
    const whole = p.data.length - (p.data.length % this.frameBytes);
    for (let pos = 0; pos < whole; pos += this.room) {
      out.push({ parts: [p.data.subarray(pos, Math.min(whole, pos + this.room))], marker: false, tsOffset: pos / this.frameBytes });
    }
    return out;
  }
}
