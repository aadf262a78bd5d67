// SRTP and SRTCP with the AES_CM_128_HMAC_SHA1_80 profile (RFC 3711 §3-§4; DTLS-SRTP profile
// 0x0001, RFC 5764 §4.1.2), the one every browser offers, and AEAD_AES_128_GCM (RFC 7714;
// profile 0x0007), which browsers offer too and which costs about 40% less per packet here (one
// OpenSSL context per packet instead of an AES and an HMAC one). Pure: keys in, Buffers in and
// out; OpenSSL (node:crypto) does AES, GCM and HMAC.
//
//   SRTP:  | RTP header (clear) | payload (AES-CM encrypted) | auth tag (10) |
//          tag = HMAC-SHA1(k_a, header || encrypted payload || ROC)[0..10]
//   SRTCP: | first 8 bytes (clear) | rest (encrypted) | E(1) + SRTCP index (31) | auth tag (10) |
//
// AES-CM counter (§4.1.1): IV = (k_s << 16) XOR (SSRC << 64) XOR (index << 16), index = ROC << 16 | SEQ.
// Session keys come from the master key and salt by the AES-CM PRF (§4.3.1, key derivation rate 0).
//
//   GCM SRTP:  | RTP header (clear, authenticated) | payload (encrypted) | tag (16) |
//   GCM SRTCP: | first 8 bytes | rest (encrypted) | tag (16) | E + SRTCP index |
//   IV (RFC 7714 §8.1, §9.1) = 12-byte session salt XOR (00 00 | SSRC | ROC | SEQ), or
//   (00 00 | SSRC | 00 00 | SRTCP index) for RTCP; RTCP's additional data is its first 8 bytes
//   and the E + index word.

import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { HazeError } from '../../util/errors.js';

export const SRTP_MASTER_KEY_BYTES = 16;
export const SRTP_MASTER_SALT_BYTES = 14;
export const SRTP_AUTH_TAG_BYTES = 10;
/** DTLS-SRTP protection profile id of SRTP_AES128_CM_HMAC_SHA1_80. */
export const SRTP_AES128_CM_HMAC_SHA1_80 = 0x0001;
/** DTLS-SRTP protection profile id of SRTP_AEAD_AES_128_GCM (RFC 7714 §14.2). */
export const SRTP_AEAD_AES_128_GCM = 0x0007;
export const GCM_MASTER_SALT_BYTES = 12;
const GCM_TAG_BYTES = 16;

/** Master key and salt lengths of a profile. */
export function srtpKeyLengths(profile: number): { key: number; salt: number } {
  return { key: SRTP_MASTER_KEY_BYTES, salt: profile === SRTP_AEAD_AES_128_GCM ? GCM_MASTER_SALT_BYTES : SRTP_MASTER_SALT_BYTES };
}

const LABEL_RTP_ENCRYPTION = 0;
const LABEL_RTP_AUTH = 1;
const LABEL_RTP_SALT = 2;
const LABEL_RTCP_ENCRYPTION = 3;
const LABEL_RTCP_AUTH = 4;
const LABEL_RTCP_SALT = 5;

/** §4.3.1: the PRF output of `length` bytes for `label` (key derivation rate 0, so r = 0). */
export function deriveSessionKey(masterKey: Buffer, masterSalt: Buffer, label: number, length: number): Buffer {
  const iv = Buffer.alloc(16);
  masterSalt.copy(iv, 0, 0, SRTP_MASTER_SALT_BYTES);
  // key_id = label << 48 sits in the low 56 bits of the 112-bit salt: the label is byte 7
  iv[7] = iv[7]! ^ label;
  const c = createCipheriv('aes-128-ctr', masterKey, iv);
  return c.update(Buffer.alloc(length));
}

interface SessionKeys {
  encKey: Buffer;
  salt: Buffer;
  authKey: Buffer;
}

function sessionKeys(masterKey: Buffer, masterSalt: Buffer, rtcp: boolean, profile: number): SessionKeys {
  const want = srtpKeyLengths(profile);
  if (masterKey.length !== want.key || masterSalt.length !== want.salt) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `SRTP: a master key of ${masterKey.length} and salt of ${masterSalt.length} bytes`);
  }
  // RFC 7714 §11: GCM derives its 12-byte session salt with the same PRF, and needs no auth key
  return {
    encKey: deriveSessionKey(masterKey, masterSalt, rtcp ? LABEL_RTCP_ENCRYPTION : LABEL_RTP_ENCRYPTION, 16),
    authKey: profile === SRTP_AEAD_AES_128_GCM ? Buffer.alloc(0) : deriveSessionKey(masterKey, masterSalt, rtcp ? LABEL_RTCP_AUTH : LABEL_RTP_AUTH, 20),
    salt: deriveSessionKey(masterKey, masterSalt, rtcp ? LABEL_RTCP_SALT : LABEL_RTP_SALT, want.salt),
  };
}

/** Where the payload of an RTP packet starts (after CSRCs and a header extension); throws when it does not fit. */
export function rtpHeaderLength(packet: Buffer): number {
  if (packet.length < 12) throw new HazeError('HAZE_ERR_SHORT_READ', `an RTP packet of ${packet.length} bytes`);
  let len = 12 + (packet[0]! & 0x0f) * 4;
  if (packet[0]! & 0x10) {
    if (packet.length < len + 4) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTP: a truncated header extension');
    len += 4 + packet.readUInt16BE(len + 2) * 4;
  }
  if (len > packet.length) throw new HazeError('HAZE_ERR_SHORT_READ', 'RTP: the header is longer than the packet');
  return len;
}

/** The roll-over counter state of one SSRC received (RFC 3711 §3.3.1, Appendix A). */
interface RocState {
  roc: number;
  /** highest sequence number received and authenticated */
  s_l: number;
}

/** Most SSRCs one session tracks; a peer inventing more is cut back to the newest. */
const MAX_TRACKED_SSRCS = 64;

/**
 * One direction of an SRTP session: protect what we send with our keys, or unprotect what the
 * peer sends with theirs. Keeps the ROC of every SSRC seen and the SRTCP index it sends.
 */
export class SrtpSession {
  private readonly rtp: SessionKeys;
  private readonly rtcp: SessionKeys;
  private readonly iv = Buffer.alloc(16);
  private readonly rocTail = Buffer.alloc(4);
  private readonly received = new Map<number, RocState>();
  private rtcpIndex = 0;
  private readonly gcm: boolean;
  private readonly gcmIv = Buffer.alloc(12);
  private readonly gcmAad = Buffer.alloc(12);

  constructor(masterKey: Buffer, masterSalt: Buffer, readonly profile = SRTP_AES128_CM_HMAC_SHA1_80) {
    if (profile !== SRTP_AES128_CM_HMAC_SHA1_80 && profile !== SRTP_AEAD_AES_128_GCM) throw new HazeError('HAZE_ERR_UNSUPPORTED', `SRTP profile ${profile}`);
    this.gcm = profile === SRTP_AEAD_AES_128_GCM;
    this.rtp = sessionKeys(masterKey, masterSalt, false, profile);
    this.rtcp = sessionKeys(masterKey, masterSalt, true, profile);
  }

  /** RFC 7714 §8.1/§9.1: salt XOR (00 00 | SSRC | a | b), a and b 32 and 16 bits (RTP: ROC, SEQ) or 16 and 32 (RTCP: 0, index). */
  private gcmNonce(salt: Buffer, ssrc: number, roc: number, seq: number, rtcpIndex: number): Buffer {
    const iv = this.gcmIv;
    iv.writeUInt16BE(0, 0);
    iv.writeUInt32BE(ssrc >>> 0, 2);
    if (rtcpIndex < 0) {
      iv.writeUInt32BE(roc >>> 0, 6);
      iv.writeUInt16BE(seq, 10);
    } else {
      iv.writeUInt16BE(0, 6);
      iv.writeUInt32BE(rtcpIndex >>> 0, 8);
    }
    for (let i = 0; i < 12; i++) iv[i] = iv[i]! ^ salt[i]!;
    return iv;
  }

  /** The ROC of a received packet (Appendix A: guessed from the highest sequence number seen). */
  private guessRoc(state: RocState | undefined, seq: number): number {
    if (!state) return 0;
    if (state.s_l < 32768) return seq - state.s_l > 32768 ? (state.roc - 1) >>> 0 : state.roc;
    return state.s_l - 32768 > seq ? (state.roc + 1) >>> 0 : state.roc;
  }

  private counter(salt: Buffer, ssrc: number, indexHigh: number, indexLow: number): Buffer {
    const iv = this.iv;
    salt.copy(iv, 0);
    iv[14] = 0;
    iv[15] = 0;
    iv.writeUInt32BE((iv.readUInt32BE(4) ^ ssrc) >>> 0, 4);
    // index = indexHigh (32 bits) << 16 | indexLow (16 bits), at bytes 8..13
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ indexHigh) >>> 0, 8);
    iv.writeUInt16BE(iv.readUInt16BE(12) ^ indexLow, 12);
    return iv;
  }

  private rtpTag(authenticated: Buffer, roc: number): Buffer {
    this.rocTail.writeUInt32BE(roc >>> 0, 0);
    return createHmac('sha1', this.rtp.authKey).update(authenticated).update(this.rocTail).digest();
  }

  /**
   * Encrypts one RTP packet given as its header bytes and payload; `roc` is the sender's
   * roll-over counter for this SSRC (incremented by the caller when its sequence wraps).
   */
  protectRtp(header: Buffer, payload: Buffer, roc: number): Buffer {
    const ssrc = header.readUInt32BE(8);
    const seq = header.readUInt16BE(2);
    if (this.gcm) {
      const out = Buffer.allocUnsafe(header.length + payload.length + GCM_TAG_BYTES);
      header.copy(out, 0);
      const c = createCipheriv('aes-128-gcm', this.rtp.encKey, this.gcmNonce(this.rtp.salt, ssrc, roc, seq, -1));
      c.setAAD(header);
      c.update(payload).copy(out, header.length);
      c.final();
      c.getAuthTag().copy(out, header.length + payload.length);
      return out;
    }
    const out = Buffer.allocUnsafe(header.length + payload.length + SRTP_AUTH_TAG_BYTES);
    header.copy(out, 0);
    const c = createCipheriv('aes-128-ctr', this.rtp.encKey, this.counter(this.rtp.salt, ssrc, roc, seq));
    const enc = c.update(payload);
    enc.copy(out, header.length);
    const end = header.length + payload.length;
    this.rtpTag(out.subarray(0, end), roc).copy(out, end, 0, SRTP_AUTH_TAG_BYTES);
    return out;
  }

  /** Decrypts and authenticates one SRTP packet; throws HAZE_ERR_MALFORMED when it does not authenticate. */
  unprotectRtp(packet: Buffer): Buffer {
    const tagBytes = this.gcm ? GCM_TAG_BYTES : SRTP_AUTH_TAG_BYTES;
    if (packet.length < 12 + tagBytes) throw new HazeError('HAZE_ERR_SHORT_READ', `an SRTP packet of ${packet.length} bytes`);
    const body = packet.subarray(0, packet.length - tagBytes);
    const headerLength = rtpHeaderLength(body);
    const ssrc = packet.readUInt32BE(8);
    const seq = packet.readUInt16BE(2);
    const state = this.received.get(ssrc);
    const roc = this.guessRoc(state, seq);
    if (this.gcm) {
      const d = createDecipheriv('aes-128-gcm', this.rtp.encKey, this.gcmNonce(this.rtp.salt, ssrc, roc, seq, -1));
      d.setAAD(body.subarray(0, headerLength));
      d.setAuthTag(packet.subarray(body.length));
      const out = Buffer.allocUnsafe(body.length);
      body.copy(out, 0, 0, headerLength);
      d.update(body.subarray(headerLength)).copy(out, headerLength);
      try {
        d.final();
      } catch {
        throw new HazeError('HAZE_ERR_MALFORMED', 'SRTP: authentication failed');
      }
      this.noteReceived(ssrc, roc, seq, state);
      return out;
    }
    const tag = this.rtpTag(body, roc);
    if (!timingSafeEqual(tag.subarray(0, SRTP_AUTH_TAG_BYTES), packet.subarray(body.length))) throw new HazeError('HAZE_ERR_MALFORMED', 'SRTP: authentication failed');
    const c = createCipheriv('aes-128-ctr', this.rtp.encKey, this.counter(this.rtp.salt, ssrc, roc, seq));
    const out = Buffer.allocUnsafe(body.length);
    body.copy(out, 0, 0, headerLength);
    c.update(body.subarray(headerLength)).copy(out, headerLength);
    this.noteReceived(ssrc, roc, seq, state);
    return out;
  }

  private noteReceived(ssrc: number, roc: number, seq: number, state: RocState | undefined): void {
    if (!state) {
      if (this.received.size >= MAX_TRACKED_SSRCS) this.received.delete(this.received.keys().next().value!);
      this.received.set(ssrc, { roc, s_l: seq });
      return;
    }
    // the index only moves forward
    if (roc > state.roc || (roc === state.roc && seq > state.s_l)) {
      state.roc = roc;
      state.s_l = seq;
    }
  }

  /** Encrypts one (compound) RTCP packet with the next SRTCP index. */
  protectRtcp(packet: Buffer): Buffer {
    if (packet.length < 8) throw new HazeError('HAZE_ERR_SHORT_READ', `an RTCP packet of ${packet.length} bytes`);
    const index = this.rtcpIndex;
    this.rtcpIndex = (this.rtcpIndex + 1) & 0x7fffffff;
    const ssrc = packet.readUInt32BE(4);
    if (this.gcm) {
      const out = Buffer.allocUnsafe(packet.length + GCM_TAG_BYTES + 4);
      packet.copy(out, 0, 0, 8);
      const aad = this.gcmAad;
      packet.copy(aad, 0, 0, 8);
      aad.writeUInt32BE((0x80000000 | index) >>> 0, 8);
      const c = createCipheriv('aes-128-gcm', this.rtcp.encKey, this.gcmNonce(this.rtcp.salt, ssrc, 0, 0, index));
      c.setAAD(aad);
      c.update(packet.subarray(8)).copy(out, 8);
      c.final();
      c.getAuthTag().copy(out, packet.length);
      aad.copy(out, packet.length + GCM_TAG_BYTES, 8, 12);
      return out;
    }
    const out = Buffer.allocUnsafe(packet.length + 4 + SRTP_AUTH_TAG_BYTES);
    packet.copy(out, 0, 0, 8);
    const c = createCipheriv('aes-128-ctr', this.rtcp.encKey, this.counter(this.rtcp.salt, ssrc, index >>> 16, index & 0xffff));
    c.update(packet.subarray(8)).copy(out, 8);
    out.writeUInt32BE((0x80000000 | index) >>> 0, packet.length);
    const end = packet.length + 4;
    createHmac('sha1', this.rtcp.authKey).update(out.subarray(0, end)).digest().copy(out, end, 0, SRTP_AUTH_TAG_BYTES);
    return out;
  }

  /** Decrypts and authenticates one SRTCP packet. */
  unprotectRtcp(packet: Buffer): Buffer {
    if (this.gcm) return this.unprotectRtcpGcm(packet);
    if (packet.length < 8 + 4 + SRTP_AUTH_TAG_BYTES) throw new HazeError('HAZE_ERR_SHORT_READ', `an SRTCP packet of ${packet.length} bytes`);
    const end = packet.length - SRTP_AUTH_TAG_BYTES;
    const tag = createHmac('sha1', this.rtcp.authKey).update(packet.subarray(0, end)).digest();
    if (!timingSafeEqual(tag.subarray(0, SRTP_AUTH_TAG_BYTES), packet.subarray(end))) throw new HazeError('HAZE_ERR_MALFORMED', 'SRTCP: authentication failed');
    const eIndex = packet.readUInt32BE(end - 4);
    const bodyEnd = end - 4;
    const out = Buffer.allocUnsafe(bodyEnd);
    packet.copy(out, 0, 0, bodyEnd);
    if (eIndex & 0x80000000) {
      const index = eIndex & 0x7fffffff;
      const c = createCipheriv('aes-128-ctr', this.rtcp.encKey, this.counter(this.rtcp.salt, packet.readUInt32BE(4), index >>> 16, index & 0xffff));
      c.update(packet.subarray(8, bodyEnd)).copy(out, 8);
    }
    return out;
  }

  private unprotectRtcpGcm(packet: Buffer): Buffer {
    if (packet.length < 8 + GCM_TAG_BYTES + 4) throw new HazeError('HAZE_ERR_SHORT_READ', `an SRTCP packet of ${packet.length} bytes`);
    const indexAt = packet.length - 4;
    const tagAt = indexAt - GCM_TAG_BYTES;
    const eIndex = packet.readUInt32BE(indexAt);
    const encrypted = (eIndex & 0x80000000) !== 0;
    const d = createDecipheriv('aes-128-gcm', this.rtcp.encKey, this.gcmNonce(this.rtcp.salt, packet.readUInt32BE(4), 0, 0, eIndex & 0x7fffffff));
    // RFC 7714 §9.3: without encryption the whole packet is additional data
    d.setAAD(Buffer.concat([packet.subarray(0, encrypted ? 8 : tagAt), packet.subarray(indexAt)]));
    d.setAuthTag(packet.subarray(tagAt, indexAt));
    const out = Buffer.allocUnsafe(tagAt);
    packet.copy(out, 0, 0, encrypted ? 8 : tagAt);
    if (encrypted) d.update(packet.subarray(8, tagAt)).copy(out, 8);
    try {
      d.final();
    } catch {
      throw new HazeError('HAZE_ERR_MALFORMED', 'SRTCP: authentication failed');
    }
    return out;
  }
}
