// What every RTP payload format of Haze implements: a depacketizer that turns RTP packets
// (in sequence order) into access units, and a packetizer that turns one Haze packet into the
// payloads of one or more RTP packets. Formats: h264.ts (RFC 6184), hevc.ts (RFC 7798),
// aac.ts (RFC 3640), opus.ts (RFC 7587), pcm.ts (RFC 3551 PCMA/PCMU/L16/L24).

import type { Packet } from '../../media/types.js';
import type { RtpPacket } from './packet.js';

/** Most payload bytes in one RTP packet: a 1500-byte Ethernet MTU less IP/UDP/RTP headers, with room to spare. */
export const DEFAULT_MAX_PAYLOAD = 1400;
/** The largest access unit a depacketizer assembles (a 4K intra frame stays well below). */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/** An access unit reassembled from RTP packets. */
export interface RtpFrame {
  /** The RTP timestamp (32 bits, the format's clock) of its presentation. */
  timestamp: number;
  /** H.264/HEVC: 4-byte length-prefixed NAL units; audio: one raw frame. */
  data: Buffer;
  keyframe: boolean;
}

export interface Depacketizer {
  /**
   * Takes the next packet in sequence order; `lost` says packets before it went missing (what
   * was being assembled across the gap is dropped). Returns the access units it completed.
   */
  push(pkt: RtpPacket, lost: boolean): RtpFrame[];
  /** The access unit still being assembled, when the stream ends. */
  flush(): RtpFrame[];
  /** New codec init data learned in-band (parameter sets), once per change; undefined otherwise. */
  takeInit(): Buffer | undefined;
}

/** One RTP packet's payload: its parts are written back to back after the header. */
export interface RtpPayload {
  parts: Buffer[];
  marker: boolean;
  /** Added to the packet's RTP timestamp (PCM split over packets); 0 for the others. */
  tsOffset: number;
}

export interface Packetizer {
  /** RTP payloads for one Haze packet, in order. */
  packetize(p: Packet): RtpPayload[];
}

export function payloadSize(p: RtpPayload): number {
  let n = 0;
  for (const part of p.parts) n += part.length;
  return n;
}
