// The glass-to-glass stamp (bench/protocol-latency.ts): each access unit carries the wall-clock
// time it was sent, in microseconds, in an H.264 SEI NAL unit (ITU-T H.264 7.3.2.3 sei_rbsp,
// D.1.6 user_data_unregistered, payloadType 5), read back wherever the frame comes out: an FLV
// or RTMP video body, a TS PES, an fMP4 mdat, an RTP-depacketized WebRTC frame. Unlike stamp.ts
// (media timestamp, send time kept by the publisher process) the time travels in the frame, so
// a reader in another process (or in Chromium) needs nothing but the bytes.
//
//   NAL: 0x06 (nal_unit_type 6) | 0x05 (payloadType) | 0x20 (payloadSize 32)
//        | uuid 16 bytes | send time in µs as 16 ASCII digits | 0x80 (rbsp trailing bits)
//
// ASCII digits and the ASCII uuid hold no 00 00 pair, so no emulation prevention byte is ever
// inserted and the bytes read back are the bytes written, in AVCC and Annex B alike. The SEI
// goes in front of the first slice (7.4.1.2.3): after an access unit delimiter when there is one.

const UUID = Buffer.from('HazeGlassToGlass', 'latin1');
const DIGITS = 16;
const PAYLOAD = UUID.length + DIGITS;
/** NAL unit bytes: header, payloadType, payloadSize, payload, trailing bits. */
export const G2G_SEI_NAL_BYTES = 3 + PAYLOAD + 1;
const MARKER = Buffer.concat([Buffer.from([0x06, 0x05, PAYLOAD]), UUID]);

/** Wall clock in µs (sub-millisecond, comparable between the processes of one machine). */
export function wallUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** The SEI NAL unit (no length prefix, no start code) carrying `us`. */
export function g2gSeiNal(us: number): Buffer {
  const out = Buffer.allocUnsafe(G2G_SEI_NAL_BYTES);
  MARKER.copy(out, 0);
  out.write(String(Math.max(0, Math.floor(us)) % 10 ** DIGITS).padStart(DIGITS, '0'), MARKER.length, 'latin1');
  out[G2G_SEI_NAL_BYTES - 1] = 0x80;
  return out;
}

/** Whether an FLV video tag body is an AVC coded frame (AVCPacketType 1), not a sequence header. */
export function isAvcFrameBody(body: Buffer): boolean {
  return body.length > 5 && (body[0]! & 0x0f) === 7 && body[1] === 1;
}

/**
 * A copy of an FLV AVC NALU tag body (FLV E.4.3.1: FrameType|CodecID, AVCPacketType,
 * CompositionTime s24, then 4-byte length-prefixed NAL units) with the stamp as its first NAL
 * unit (after an access unit delimiter).
 */
export function stampFlvVideoBody(body: Buffer, us: number): Buffer {
  let at = 5;
  if (body.length >= 10 && (body[9]! & 0x1f) === 9) at = Math.min(body.length, 9 + body.readUInt32BE(5));
  const nal = g2gSeiNal(us);
  const out = Buffer.allocUnsafe(body.length + 4 + nal.length);
  body.copy(out, 0, 0, at);
  out.writeUInt32BE(nal.length, at);
  nal.copy(out, at + 4);
  body.copy(out, at + 4 + nal.length, at);
  return out;
}

/** Every stamp (µs) in contiguous bytes, in order; AVCC, Annex B and mdat bytes alike. */
export function findStampsUs(bytes: Uint8Array): number[] {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let p = buf.indexOf(MARKER); p >= 0 && p + MARKER.length + DIGITS <= buf.length; p = buf.indexOf(MARKER, p + MARKER.length)) {
    let v = 0;
    let ok = true;
    for (let k = 0, s = p + MARKER.length; k < DIGITS; k++) {
      const d = buf[s + k]! - 0x30;
      if (d < 0 || d > 9) {
        ok = false;
        break;
      }
      v = v * 10 + d;
    }
    if (ok) out.push(v);
  }
  return out;
}

/** The marker bytes, for code that searches for the stamp itself (the WebRTC page). */
export const G2G_MARKER_HEX = MARKER.toString('hex');
export const G2G_DIGITS = DIGITS;
