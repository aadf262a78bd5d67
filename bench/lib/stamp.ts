// A per-frame stamp carried inside the video, so latency is measured per frame even when a
// server rewrites timestamps (rebasing each viewer to 0, for instance). The publisher puts an
// H.264 SEI NAL unit (ITU-T H.264 7.3.2.3 sei_rbsp, D.1.6 user_data_unregistered, payloadType 5)
// in front of each coded frame of an FLV AVC NALU tag (FLV spec E.4.3.1: FrameType|CodecID u8,
// AVCPacketType u8, CompositionTime s24, then 4-byte length-prefixed NAL units):
//
//   len u32 = 30 | 0x06 (nal_unit_type 6) | 0x05 (payloadType) | 0x1a (payloadSize 26)
//   | uuid 16 bytes | publisher timestamp as 10 ASCII digits | 0x80 (rbsp trailing bits)
//
// No byte pair 00 00 occurs inside, so no emulation prevention is needed. SEI must precede
// the first slice of the picture (7.4.1.2.3), hence the front (after an access unit delimiter).

const UUID = Buffer.from('48617a6542656e6368537461ed70a5c3', 'hex'); // "HazeBenchSta" + 4 bytes
const DIGITS = 10;
const SEI_PAYLOAD = UUID.length + DIGITS;
const SEI_NAL_LEN = 1 + 1 + 1 + SEI_PAYLOAD + 1;
export const STAMP_BYTES = 4 + SEI_NAL_LEN;

/** Whether an FLV video tag body is an AVC coded frame (not a sequence header / end of sequence). */
export function isAvcFrame(body: Buffer): boolean {
  return body.length > 5 && (body[0]! & 0x0f) === 7 && body[1] === 1;
}

/** A new video tag body with the stamp (the frame's publisher timestamp) in front of its NAL units. */
export function stampVideoBody(body: Buffer, timeMs: number): Buffer {
  let insertAt = 5;
  // Keep an access unit delimiter (type 9) first, as the standard requires.
  if (body.length >= 10 && (body[9]! & 0x1f) === 9) insertAt = 9 + body.readUInt32BE(5);
  if (insertAt > body.length) insertAt = 5;
  const out = Buffer.allocUnsafe(body.length + STAMP_BYTES);
  body.copy(out, 0, 0, insertAt);
  let p = insertAt;
  out.writeUInt32BE(SEI_NAL_LEN, p);
  out[p + 4] = 0x06;
  out[p + 5] = 0x05;
  out[p + 6] = SEI_PAYLOAD;
  UUID.copy(out, p + 7);
  out.write(String(Math.max(0, Math.floor(timeMs)) % 10 ** DIGITS).padStart(DIGITS, '0'), p + 7 + UUID.length, 'latin1');
  out[p + 7 + SEI_PAYLOAD] = 0x80;
  p += STAMP_BYTES;
  body.copy(out, p, insertAt);
  return out;
}

/** The publisher timestamp stamped in a video tag body, or -1 when it carries no stamp. */
export function readStamp(body: Buffer): number {
  if (!isAvcFrame(body)) return -1;
  let p = 5;
  // Look at the first two NAL units (a delimiter may come first).
  for (let i = 0; i < 2 && p + 4 + SEI_NAL_LEN <= body.length; i++) {
    const len = body.readUInt32BE(p);
    if (len === SEI_NAL_LEN && (body[p + 4]! & 0x1f) === 6 && body[p + 5] === 5 && body[p + 6] === SEI_PAYLOAD && body.compare(UUID, 0, UUID.length, p + 7, p + 7 + UUID.length) === 0) {
      const s = p + 7 + UUID.length;
      let v = 0;
      for (let k = 0; k < DIGITS; k++) {
        const d = body[s + k]! - 0x30;
        if (d < 0 || d > 9) return -1;
        v = v * 10 + d;
      }
      return v;
    }
    p += 4 + len;
  }
  return -1;
}

/** The bytes in front of the stamp digits wherever the SEI NAL unit lands: NAL header, payloadType, payloadSize, uuid. */
const MARKER = Buffer.concat([Buffer.from([0x06, 0x05, SEI_PAYLOAD]), UUID]);

/**
 * The largest publisher stamp among the SEI stamps in contiguous bytes (an fMP4 fragment's
 * mdat holds each sample's length-prefixed NAL units as they came; an Annex B stream keeps the
 * unit whole after its start code), or -1 when there is none. The publisher sends frames in
 * decode order with increasing stamps, so the largest is the last frame published.
 */
export function lastStampIn(bytes: Buffer): number {
  let best = -1;
  for (let p = bytes.indexOf(MARKER); p >= 0 && p + MARKER.length + DIGITS <= bytes.length; p = bytes.indexOf(MARKER, p + MARKER.length)) {
    const s = p + MARKER.length;
    let v = 0;
    let ok = true;
    for (let k = 0; k < DIGITS; k++) {
      const d = bytes[s + k]! - 0x30;
      if (d < 0 || d > 9) {
        ok = false;
        break;
      }
      v = v * 10 + d;
    }
    if (ok && v > best) best = v;
  }
  return best;
}
