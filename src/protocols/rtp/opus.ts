// Opus over RTP, RFC 7587: one Opus packet per RTP packet, a 48 kHz clock whatever the coded
// rate, `opus/48000/2` in the SDP for mono and stereo alike (sprop-stereo says which).

import type { Packet } from '../../media/types.js';
import type { RtpPacket } from './packet.js';
import type { Depacketizer, Packetizer, RtpFrame, RtpPayload } from './payload.js';

export class OpusDepacketizer implements Depacketizer {
  push(pkt: RtpPacket, _lost = false): RtpFrame[] {
    return pkt.payload.length > 0 ? [{ timestamp: pkt.timestamp, data: pkt.payload, keyframe: true }] : [];
  }
  flush(): RtpFrame[] {
    return [];
  }
  takeInit(): Buffer | undefined {
    return undefined;
  }
}

export class OpusPacketizer implements Packetizer {
  packetize(p: Packet): RtpPayload[] {
    return [{ parts: [p.data], marker: false, tsOffset: 0 }];
  }
}
