// Per-frame audio facts the TS muxer needs for sample-exact timestamps and Opus framing.
// Opus TOC: RFC 6716 §3.1 (config -> frame duration, code -> frame count).
// Opus in TS: "Opus Interactive Audio Codec Transport Multiplexing Standard" (ETSI TS draft
// v0.1.3, opus-codec.org/docs/ETSI_TS_opus-v0.1.3-draft.pdf): every access unit is preceded by
// an opus_control_header; the PMT carries a registration descriptor 'Opus' and a DVB extension
// descriptor (tag 0x7F, extension tag 0x80) holding channel_config_code.
//   opus_control_header: prefix 0x3FF(11) start_trim(1) end_trim(1) ext(1) reserved(2)
//                        au_size as 0xFF* + last byte (< 255) [start_trim 16][end_trim 16]
// MPEG audio header: ISO/IEC 11172-3 §2.4.2.3, ISO/IEC 13818-3 (MPEG-2 LSF, "2.5" extension).
// AC-3 syncinfo: ATSC A/52 §5.3.1 (fscod in the top bits of byte 4).

/** Samples (at 48 kHz) in one Opus packet, 0 when the TOC is unreadable. */
export function opusPacketSamples(data: Uint8Array): number {
  if (data.length < 1) return 0;
  const toc = data[0]!;
  const config = toc >> 3;
  let frame: number; // in units of 2.5 ms = 120 samples
  if (config < 12) frame = [4, 8, 16, 24][config & 3]!; // SILK 10/20/40/60 ms
  else if (config < 16) frame = [4, 8][config & 1]!; // hybrid 10/20 ms
  else frame = [1, 2, 4, 8][config & 3]!; // CELT 2.5/5/10/20 ms
  const code = toc & 3;
  let count: number;
  if (code === 0) count = 1;
  else if (code === 3) {
    if (data.length < 2) return 0;
    count = data[1]! & 0x3f;
  } else count = 2;
  const samples = frame * 120 * count;
  // A packet holds at most 120 ms (R5); anything else is not a timing we can trust.
  return samples > 5760 ? 0 : samples;
}

export function opusControlHeaderSize(auSize: number): number {
  return 2 + Math.floor(auSize / 255) + 1;
}

/** Writes an opus_control_header without trims or extensions; returns the end offset. */
export function writeOpusControlHeader(out: Buffer, offset: number, auSize: number): number {
  out[offset++] = 0x7f;
  out[offset++] = 0xe0;
  let n = auSize;
  while (n >= 255) {
    out[offset++] = 0xff;
    n -= 255;
  }
  out[offset++] = n;
  return offset;
}

// Default stream/coupled counts and channel mappings of channel_config_code 1..8 (Vorbis order,
// the layouts libopus's surround encoder produces).
const COUPLED_DEFAULT = [0, 0, 1, 1, 2, 2, 2, 3, 3];
const MAP_DEFAULT: ReadonlyArray<readonly number[]> = [
  [],
  [0],
  [0, 1],
  [0, 2, 1],
  [0, 1, 2, 3],
  [0, 4, 1, 2, 3],
  [0, 4, 1, 2, 3, 5],
  [0, 4, 1, 2, 3, 5, 6],
  [0, 6, 1, 2, 3, 4, 5, 7],
];

/**
 * channel_config_code for the Opus audio descriptor from an OpusHead (RFC 7845 §5.1) or, without
 * one, the channel count: N for mapping family 0 / the default family-1 layouts, 0x80|N for N
 * uncoupled streams in order, 0xFF (needs the extended descriptor, not written) otherwise.
 */
export function opusChannelConfigCode(opusHead: Uint8Array, channels: number): number {
  if (opusHead.length >= 19 && Buffer.from(opusHead.buffer, opusHead.byteOffset, 8).toString('latin1') === 'OpusHead') {
    const ch = opusHead[9]!;
    const family = opusHead[18]!;
    if (family === 0) return ch >= 1 && ch <= 2 ? ch : 0xff;
    if (family === 1 && ch >= 1 && ch <= 8 && opusHead.length >= 21 + ch) {
      const streams = opusHead[19]!;
      const coupled = opusHead[20]!;
      const map = opusHead.subarray(21, 21 + ch);
      const def = MAP_DEFAULT[ch]!;
      if (streams === ch - COUPLED_DEFAULT[ch]! && coupled === COUPLED_DEFAULT[ch] && def.every((v, i) => map[i] === v)) return ch;
      if (ch >= 2 && streams === ch && coupled === 0 && map.every((v, i) => v === i)) return 0x80 | ch;
    }
    return 0xff;
  }
  return channels >= 1 && channels <= 2 ? channels : 0xff;
}

const MPEG1_RATES = [44100, 48000, 32000];

export interface MpegAudioFrame {
  samples: number;
  rate: number;
}

/** Samples and rate from an MPEG audio frame header; undefined when it is not one. */
export function mpegAudioFrameInfo(data: Uint8Array): MpegAudioFrame | undefined {
  if (data.length < 4 || data[0] !== 0xff || (data[1]! & 0xe0) !== 0xe0) return undefined;
  const version = (data[1]! >> 3) & 3; // 0: 2.5, 2: MPEG-2, 3: MPEG-1
  const layer = (data[1]! >> 1) & 3; // 1: III, 2: II, 3: I
  const rateIndex = (data[2]! >> 2) & 3;
  if (version === 1 || layer === 0 || rateIndex === 3) return undefined;
  const rate = MPEG1_RATES[rateIndex]! / (version === 3 ? 1 : version === 2 ? 2 : 4);
  const samples = layer === 3 ? 384 : layer === 2 || version === 3 ? 1152 : 576;
  return { samples, rate };
}

/** Sample rate from an AC-3 syncinfo, 0 when the frame does not start with one. */
export function ac3FrameRate(data: Uint8Array): number {
  if (data.length < 5 || data[0] !== 0x0b || data[1] !== 0x77) return 0;
  return [48000, 44100, 32000, 0][data[4]! >> 6]!;
}

export const AC3_SAMPLES_PER_FRAME = 1536;
