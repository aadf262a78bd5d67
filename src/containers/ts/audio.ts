// Per-frame audio facts the TS muxer needs for sample-exact timestamps and Opus framing.
// Opus TOC: RFC 6716 §3.1 (config -> frame duration, code -> frame count).
// Opus in TS: "Opus Interactive Audio Codec Transport Multiplexing Standard" (ETSI TS draft
// v0.1.3, opus-codec.org/docs/ETSI_TS_opus-v0.1.3-draft.pdf): every access unit is preceded by
// an opus_control_header; the PMT carries a registration descriptor 'Opus' and a DVB extension
// descriptor (tag 0x7F, extension tag 0x80) holding channel_config_code.
//   opus_control_header: prefix 0x3FF(11) start_trim(1) end_trim(1) ext(1) reserved(2)
//                        au_size as 0xFF* + last byte (< 255) [start_trim 16][end_trim 16]
// OpusHead (RFC 7845 §5.1), MPEG audio and AC-3 frame headers: read by media/audio-headers.ts.

import { parseOpusHead } from '../../media/audio-headers.js';

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
export const OPUS_DEFAULT_COUPLED: readonly number[] = [0, 0, 1, 1, 2, 2, 2, 3, 3];
export const OPUS_DEFAULT_MAPPING: ReadonlyArray<readonly number[]> = [
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
  const head = parseOpusHead(opusHead);
  if (head) {
    const ch = head.channels;
    if (head.mappingFamily === 0) return ch <= 2 ? ch : 0xff;
    if (head.mappingFamily === 1 && ch <= 8 && head.mapping) {
      const { streams, coupled, channelMap: map } = head.mapping;
      const def = OPUS_DEFAULT_MAPPING[ch]!;
      if (streams === ch - OPUS_DEFAULT_COUPLED[ch]! && coupled === OPUS_DEFAULT_COUPLED[ch] && def.every((v, i) => map[i] === v)) return ch;
      if (ch >= 2 && streams === ch && coupled === 0 && map.every((v, i) => v === i)) return 0x80 | ch;
    }
    return 0xff;
  }
  return channels >= 1 && channels <= 2 ? channels : 0xff;
}
