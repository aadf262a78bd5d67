// Audio frame boundaries inside PES payloads, for the TS demuxer:
// - ADTS: ISO/IEC 14496-3 §1.A.2.2 (adts_fixed_header, adts_variable_header, adts_error_check):
//     FFF id layer=00 protection_absent | profile(2) sf_index(4) priv ch_cfg(3) orig home
//     | cid cis frame_length(13, header included) fullness(11) raw_blocks(2) | [crc(16)]
// - MPEG audio: ISO/IEC 11172-3 §2.4.2.3 (frame length from bitrate_index, sampling_frequency,
//   padding_bit; Layer I slots are 4 bytes), ISO/IEC 13818-3 for the half-rate versions.
// - AC-3: ATSC A/52 §5.4.1.4 and Table 5.18 (frame size from fscod and frmsizecod).
// - Opus: opus_control_header of the ETSI TS Opus-in-TS draft (see audio.ts).
// Each probe looks at `buf` from `p` and returns a frame, NEED_MORE when the header or frame
// does not end inside `buf`, or undefined when no frame header starts at `p`.

import { parseAc3Header, parseMpegAudioHeader } from '../../media/audio-headers.js';
import { AAC_SAMPLE_RATES } from '../../media/aac.js';
import { opusPacketSamples } from './audio.js';

export interface AudioFrame {
  /** Bytes from `p` to the payload (headers the Packet does not keep). */
  headerLen: number;
  /** Bytes of the payload kept as Packet.data. */
  payloadLen: number;
  /** Samples the frame decodes to, at `rate`. */
  samples: number;
  rate: number;
  channels: number;
  /** ADTS only: profile (object type - 1), sampling index and channel configuration. */
  adts?: { profile: number; samplingIndex: number; channelConfig: number };
}

export const NEED_MORE = 'more' as const;
export type ProbeResult = AudioFrame | typeof NEED_MORE | undefined;
export type FrameProbe = (buf: Buffer, p: number) => ProbeResult;

export function probeAdts(buf: Buffer, p: number): ProbeResult {
  if (buf.length - p < 7) return buf[p] === 0xff && (buf.length - p < 2 || (buf[p + 1]! & 0xf6) === 0xf0) ? NEED_MORE : undefined;
  if (buf[p] !== 0xff || (buf[p + 1]! & 0xf6) !== 0xf0) return undefined;
  const protectionAbsent = buf[p + 1]! & 1;
  const profile = buf[p + 2]! >> 6;
  const samplingIndex = (buf[p + 2]! >> 2) & 0x0f;
  const channelConfig = ((buf[p + 2]! & 1) << 2) | (buf[p + 3]! >> 6);
  const frameLength = ((buf[p + 3]! & 3) << 11) | (buf[p + 4]! << 3) | (buf[p + 5]! >> 5);
  const rawBlocks = buf[p + 6]! & 3;
  const headerLen = protectionAbsent ? 7 : 9;
  const rate = AAC_SAMPLE_RATES[samplingIndex];
  // Several raw_data_blocks in one frame would need splitting by their positions: not supported.
  if (rate === undefined || frameLength < headerLen || rawBlocks !== 0) return undefined;
  if (buf.length - p < frameLength) return NEED_MORE;
  const channels = [0, 1, 2, 3, 4, 5, 6, 8][channelConfig]!;
  return { headerLen, payloadLen: frameLength - headerLen, samples: 1024, rate, channels, adts: { profile, samplingIndex, channelConfig } };
}

// kbit/s by bitrate_index (1..14) for MPEG-1 layers I-III and the MPEG-2/2.5 layer I and II/III.
const MPEG_BITRATES: ReadonlyArray<readonly number[]> = [
  [32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
  [32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
  [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  [32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
  [8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

export function probeMpegAudio(buf: Buffer, p: number): ProbeResult {
  if (buf.length - p < 4) return buf[p] === 0xff ? NEED_MORE : undefined;
  const h = parseMpegAudioHeader(buf.subarray(p, p + 4));
  if (!h) return undefined;
  const bitrateIndex = buf[p + 2]! >> 4;
  // 0 is free format (frame length unknown without scanning), 15 is reserved.
  if (bitrateIndex === 0 || bitrateIndex === 15) return undefined;
  const table = h.version === 1 ? h.layer - 1 : h.layer === 1 ? 3 : 4;
  const bitrate = MPEG_BITRATES[table]![bitrateIndex - 1]! * 1000;
  const padding = (buf[p + 2]! >> 1) & 1;
  let len: number;
  if (h.layer === 1) len = (Math.floor((12 * bitrate) / h.rate) + padding) * 4;
  else if (h.layer === 3 && h.version !== 1) len = Math.floor((72 * bitrate) / h.rate) + padding;
  else len = Math.floor((144 * bitrate) / h.rate) + padding;
  if (buf.length - p < len) return NEED_MORE;
  return { headerLen: 0, payloadLen: len, samples: h.samples, rate: h.rate, channels: h.channels };
}

const AC3_BITRATES = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640];

export function probeAc3(buf: Buffer, p: number): ProbeResult {
  if (buf.length - p < 8) return buf[p] === 0x0b && (buf.length - p < 2 || buf[p + 1] === 0x77) ? NEED_MORE : undefined;
  const h = parseAc3Header(buf.subarray(p, p + 8));
  if (!h) return undefined;
  const frmsizecod = buf[p + 4]! & 0x3f;
  const kbps = AC3_BITRATES[frmsizecod >> 1];
  if (kbps === undefined) return undefined;
  // 16-bit words per syncframe: bitrate * 1536 samples / rate / 16 bits; 44.1 kHz pads odd codes.
  const words = Math.floor((kbps * 1000 * 96) / h.rate) + (h.rate === 44100 ? frmsizecod & 1 : 0);
  const len = words * 2;
  if (buf.length - p < len) return NEED_MORE;
  return { headerLen: 0, payloadLen: len, samples: h.samples, rate: h.rate, channels: h.channels };
}

/** Opus access units behind their opus_control_header; `channels` comes from the PMT. */
export function probeOpus(buf: Buffer, p: number, channels: number): ProbeResult {
  const end = buf.length;
  if (end - p < 2) return buf[p] === 0x7f ? NEED_MORE : undefined;
  if (buf[p] !== 0x7f || (buf[p + 1]! & 0xe0) !== 0xe0) return undefined;
  const flags = buf[p + 1]!;
  let o = p + 2;
  let auSize = 0;
  for (;;) {
    if (o >= end) return NEED_MORE;
    const b = buf[o++]!;
    auSize += b;
    if (b !== 0xff) break;
  }
  if (flags & 0x10) o += 2; // start_trim
  if (flags & 0x08) o += 2; // end_trim
  if (flags & 0x04) {
    if (o >= end) return NEED_MORE;
    o += 1 + buf[o]!; // control_extension_length + its bytes
  }
  if (o + auSize > end) return NEED_MORE;
  const samples = opusPacketSamples(buf.subarray(o, o + auSize));
  return { headerLen: o - p, payloadLen: auSize, samples, rate: 48000, channels };
}
