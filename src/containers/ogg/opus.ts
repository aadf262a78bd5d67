// Opus in Ogg, RFC 7845: the ID header (§5.1, OpusHead) alone on the first page, the comment
// header (§5.2, OpusTags) starting on the second page and ending its page, then audio packets.
// Granule positions count 48 kHz samples including the pre-skip (§4).
//
//   OpusHead: "OpusHead" version(8)=1 channels(8) pre_skip(u16le) input_rate(u32le)
//             output_gain(s16le) mapping_family(8) [stream_count(8) coupled(8) map(8*channels)]
//   OpusTags: "OpusTags" vendor_length(u32le) vendor user_comment_count(u32le) [len(u32le) text]*
//
// Samples per packet from the TOC byte, RFC 6716 §3.1: config = toc >> 3 sets the frame size
// (0-11 SILK 10/20/40/60 ms, 12-15 hybrid 10/20 ms, 16-31 CELT 2.5/5/10/20 ms), code = toc & 3
// the frame count (0: 1, 1-2: 2, 3: byte 1 & 0x3F).

import { parseOpusHead } from '../../media/audio-headers.js';
import { HazeError } from '../../util/errors.js';

export const OPUS_GRANULE_RATE = 48000;

/** Frame size in 48 kHz samples per TOC config. */
const FRAME_SAMPLES: readonly number[] = [
  480, 960, 1920, 2880, 480, 960, 1920, 2880, 480, 960, 1920, 2880, // SILK NB/MB/WB
  480, 960, 480, 960, // hybrid SWB/FB
  120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, 120, 240, 480, 960, // CELT
];

/** Opus packets decode to at most 120 ms (RFC 6716 §3.2.5). */
const MAX_PACKET_SAMPLES = 5760;

/** 48 kHz samples one Opus packet decodes to; undefined for an empty or malformed packet. */
export function opusPacketSamples(packet: Uint8Array): number | undefined {
  if (packet.length < 1) return undefined;
  const toc = packet[0]!;
  const code = toc & 3;
  let frames: number;
  if (code === 0) frames = 1;
  else if (code !== 3) frames = 2;
  else {
    if (packet.length < 2) return undefined;
    frames = packet[1]! & 0x3f;
    if (frames === 0) return undefined;
  }
  const samples = frames * FRAME_SAMPLES[toc >> 3]!;
  return samples <= MAX_PACKET_SAMPLES ? samples : undefined;
}

/**
 * Stream and coupled-stream counts and channel order of the Vorbis layouts for 3-8 channels
 * (RFC 7845 §5.1.1.2, mapping family 1), used only when a track came without an OpusHead.
 */
const FAMILY1_LAYOUTS: Record<number, { streams: number; coupled: number; map: number[] }> = {
  3: { streams: 2, coupled: 1, map: [0, 2, 1] },
  4: { streams: 2, coupled: 2, map: [0, 1, 2, 3] },
  5: { streams: 3, coupled: 2, map: [0, 4, 1, 2, 3] },
  6: { streams: 4, coupled: 2, map: [0, 4, 1, 2, 3, 5] },
  7: { streams: 4, coupled: 3, map: [0, 4, 1, 2, 3, 5, 6] },
  8: { streams: 5, coupled: 3, map: [0, 6, 1, 2, 3, 4, 5, 7] },
};

/**
 * An OpusHead for a track that came without one (RTMP "Opus" without an ID header): version 1,
 * the track's channel count and input rate, pre-skip 0 (unknown; a decoder that joins mid-stream
 * has no priming to skip anyway), gain 0, mapping family 0 for mono/stereo, else 1.
 */
export function synthesizeOpusHead(channels: number, inputRate: number): Buffer {
  const ch = channels > 0 ? channels : 2;
  const layout = ch > 2 ? FAMILY1_LAYOUTS[ch] : undefined;
  if (ch > 2 && !layout) throw new HazeError('HAZE_ERR_UNSUPPORTED', `Opus with ${ch} channels and no OpusHead`);
  const out = Buffer.alloc(19 + (layout ? 2 + ch : 0));
  out.write('OpusHead', 0, 'latin1');
  out[8] = 1;
  out[9] = ch;
  out.writeUInt16LE(0, 10);
  out.writeUInt32LE(inputRate > 0 ? inputRate >>> 0 : OPUS_GRANULE_RATE, 12);
  out.writeInt16LE(0, 16);
  out[18] = layout ? 1 : 0;
  if (layout) {
    out[19] = layout.streams;
    out[20] = layout.coupled;
    out.set(layout.map, 21);
  }
  return out;
}

/** The track's OpusHead when it holds a valid one, else one synthesized from rate and channels. */
export function opusHeadFor(init: Buffer, channels: number, rate: number): Buffer {
  return parseOpusHead(init) ? init : synthesizeOpusHead(channels, rate);
}

/** Pre-skip of an OpusHead (bytes 10-11 little-endian); the caller passes a valid head. */
export function opusPreSkip(head: Buffer): number {
  return head.readUInt16LE(10);
}

/** An OpusTags header with `vendor` and no user comments. */
export function opusTags(vendor: string): Buffer {
  const v = Buffer.from(vendor, 'utf8');
  const out = Buffer.alloc(8 + 4 + v.length + 4);
  out.write('OpusTags', 0, 'latin1');
  out.writeUInt32LE(v.length, 8);
  v.copy(out, 12);
  out.writeUInt32LE(0, 12 + v.length);
  return out;
}
