// Track fields (picture size, frame rate, sample rate, channels) the FLV demuxer takes from codec
// headers when onMetaData does not give them. The parsing is media/'s (avcC/SPS, hvcC/SPS, ASC,
// MPEG audio / AC-3 headers, OpusHead); the one reader here is FLV's own:
// - FLAC "fLaC" + STREAMINFO, RFC 9639 §8.2 (the enhanced-FLV FLAC SequenceStart).
// - Linear PCM, FLV v10.1 E.4.2.1: SoundFormat 0 (platform endian) / 3 (little-endian), the
//   rate in SoundRate (5.5/11/22/44 kHz), 8 or 16 bits in SoundSize, mono/stereo in SoundType.
// Each function returns undefined on a header it cannot interpret instead of throwing: these
// only refine track fields, they never decide whether a stream is usable.

import type { AudioCodec, VideoCodec } from '../../media/types.js';
import { isHazeError } from '../../util/errors.js';
import { parseAvcC, parseH264Sps } from '../../media/h264.js';
import { parseHevcSps, parseHvcC } from '../../media/hevc.js';
import { aacChannelCount, ascOutputRate, parseAsc } from '../../media/aac.js';
import { OPUS_SAMPLE_RATE, parseAc3Header, parseMpegAudioHeader, parseOpusHead, type AudioParams } from '../../media/audio-headers.js';
import { convertPcmByteOrder } from '../wav/pcm.js';

export type { AudioParams };

export interface VideoParams {
  /** Cropped picture size from the first SPS. */
  width: number;
  height: number;
  /** Frames per 1000 s from the SPS VUI timing (H.264), 0 where the header has none. */
  fpks: number;
}

/** Runs a media/ parser, mapping its HazeError (bad input) to undefined; other errors are bugs. */
function attempt<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch (err) {
    if (isHazeError(err)) return undefined;
    throw err;
  }
}

/** Picture size (and frame rate where the SPS has one) from an avcC or hvcC. */
export function videoParams(codec: VideoCodec, init: Buffer): VideoParams | undefined {
  if (codec === 'H264') {
    return attempt(() => {
      const sps = parseAvcC(init).sps[0];
      if (!sps) return undefined;
      const s = parseH264Sps(sps);
      return { width: s.width, height: s.height, fpks: s.fpks };
    });
  }
  if (codec === 'HEVC') {
    return attempt(() => {
      const sps = parseHvcC(init).sps[0];
      if (!sps) return undefined;
      const s = parseHevcSps(sps);
      return { width: s.width, height: s.height, fpks: 0 };
    });
  }
  return undefined;
}

/** Rate and channels from a sequence-start record (ASC, OpusHead, FLAC STREAMINFO). */
export function audioConfigParams(codec: AudioCodec, init: Buffer): AudioParams | undefined {
  switch (codec) {
    case 'AAC':
      return attempt(() => {
        const asc = parseAsc(init);
        return { rate: ascOutputRate(asc), channels: aacChannelCount(asc.channelConfig) };
      });
    case 'opus': {
      const head = parseOpusHead(init);
      return head && { rate: OPUS_SAMPLE_RATE, channels: head.channels };
    }
    case 'FLAC':
      return parseFlacHeader(init);
    default:
      return undefined;
  }
}

/** Rate and channels from the header of a coded frame (MP3, AC-3). */
export function audioFrameParams(codec: AudioCodec, data: Buffer): AudioParams | undefined {
  const h = codec === 'MP3' ? parseMpegAudioHeader(data) : codec === 'AC3' ? parseAc3Header(data) : undefined;
  return h && { rate: h.rate, channels: h.channels };
}

/** Rate and channels from "fLaC" + STREAMINFO (the enhanced-FLV FLAC sequence start). */
export function parseFlacHeader(data: Uint8Array): AudioParams | undefined {
  // "fLaC" (4) + block header (4) + min/max block (4) + min/max frame (6) + rate/channels...
  if (data.length < 4 + 4 + 18 || data[0] !== 0x66 || data[1] !== 0x4c || data[2] !== 0x61 || data[3] !== 0x43) return undefined;
  if ((data[4]! & 0x7f) !== 0) return undefined; // first block must be STREAMINFO
  const o = 8 + 10;
  const rate = (data[o]! << 12) | (data[o + 1]! << 4) | (data[o + 2]! >> 4);
  const channels = ((data[o + 2]! >> 1) & 7) + 1;
  return rate > 0 ? { rate, channels } : undefined;
}

export interface PcmParams extends AudioParams {
  /** Bits per sample. */
  size: 8 | 16;
}

const FLV_RATES = [5512, 11025, 22050, 44100];

/** Rate, channels and sample size of FLV linear PCM from the first byte of the audio tag body. */
export function flvPcmParams(soundFlags: number): PcmParams {
  return { rate: FLV_RATES[(soundFlags >> 2) & 3]!, channels: (soundFlags & 1) + 1, size: soundFlags & 2 ? 16 : 8 };
}

/**
 * FLV PCM samples in Haze's layout (signed big-endian, as DTSC and MistServer hold PCM). FLV
 * stores them little-endian, 8-bit unsigned. SoundFormat 0 says "platform endian"; it is read
 * as little-endian too, as Flash Player (x86) and ffmpeg's demuxer on x86 do.
 */
export function flvPcmData(data: Buffer, size: number): Buffer {
  return convertPcmByteOrder(data, size);
}
