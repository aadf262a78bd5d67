// Which FLV tags only carry codec context (FLV spec v10.1 E.4.2.2 AACPacketType 0, E.4.3.1
// AVCPacketType 0; Enhanced RTMP v2 VideoPacketType SequenceStart / MPEG2TSSequenceStart and
// AudioPacketType SequenceStart / MultichannelConfig, also behind ModEx and Multitrack
// prefixes). A file reader starts a packet's read at the first such tag before it, so that a
// read from that position meets the context again (as MistServer's FLV input records bpos).

import { FLV_TAG_AUDIO, FLV_TAG_VIDEO } from './tags.js';

/** Skips ModEx prefixes from body[p] (size u8+1, or u16+1 after 255; data; type/packet-type byte). */
function afterModEx(body: Buffer, p: number, packetType: number, modEx: number): { p: number; packetType: number } | undefined {
  for (let rounds = 0; packetType === modEx; rounds++) {
    if (rounds > 16 || p >= body.length) return undefined;
    let size = body[p]! + 1;
    p += 1;
    if (size === 256) {
      if (p + 2 > body.length) return undefined;
      size = body.readUInt16BE(p) + 1;
      p += 2;
    }
    p += size;
    if (p >= body.length) return undefined;
    packetType = body[p]! & 0x0f;
    p += 1;
  }
  return { p, packetType };
}

/** Whether a tag is a sequence header / codec configuration and makes no media packet. */
export function isFlvConfigTag(type: number, body: Buffer): boolean {
  if (body.length < 2) return false;
  const b0 = body[0]!;
  if (type === FLV_TAG_VIDEO) {
    if ((b0 & 0x80) === 0) {
      const codecId = b0 & 0x0f;
      return (codecId === 7 || codecId === 12) && body[1] === 0;
    }
    const m = afterModEx(body, 1, b0 & 0x0f, 7);
    if (!m) return false;
    let packetType = m.packetType;
    if (packetType === 6) {
      if (m.p >= body.length) return false;
      packetType = body[m.p]! & 0x0f;
    }
    return packetType === 0 || packetType === 5;
  }
  if (type === FLV_TAG_AUDIO) {
    const format = b0 >> 4;
    if (format === 10) return body[1] === 0;
    if (format !== 9) return false;
    const m = afterModEx(body, 1, b0 & 0x0f, 7);
    if (!m) return false;
    let packetType = m.packetType;
    if (packetType === 5) {
      if (m.p >= body.length) return false;
      packetType = body[m.p]! & 0x0f;
    }
    return packetType === 0 || packetType === 4;
  }
  return false;
}
