// The media model (DESIGN §1): a stream is a set of tracks and a timeline of packets.
// Semantics follow MistServer's DTSC (reference/mistserver.md §2): integer milliseconds,
// decode-order timestamps, composition offsets in ms, codec names as MistServer writes them.

export type VideoCodec = 'H264' | 'HEVC' | 'AV1' | 'VP8' | 'VP9';
/** MistServer's spellings: `opus` and `vorbis` are lower-case in DTSC headers. */
export type AudioCodec = 'AAC' | 'MP3' | 'opus' | 'AC3' | 'PCM' | 'ALAW' | 'ULAW' | 'FLAC' | 'vorbis';
export type MetaCodec = 'JSON' | 'subtitle' | string;

interface TrackCommon {
  /** Track id, unique within a stream (DTSC `trackid`). */
  id: number;
  /** Codec initialisation data: avcC, hvcC, av1C, AudioSpecificConfig, OpusHead ...; empty if none. */
  init: Buffer;
  /** Average bytes per second (DTSC `bps` is bytes, not bits); 0 while unknown. */
  bps: number;
  /** ISO-639-2 language, `und` if unknown. */
  lang: string;
}

export interface VideoTrack extends TrackCommon {
  type: 'video';
  codec: VideoCodec;
  width: number;
  height: number;
  /** Frames per 1000 seconds (DTSC `fpks`), 0 if unknown. */
  fpks: number;
}

export interface AudioTrack extends TrackCommon {
  type: 'audio';
  codec: AudioCodec;
  /** Sample rate in Hz. */
  rate: number;
  channels: number;
  /** Bits per sample (16 for compressed codecs, as MistServer reports). */
  size: number;
}

export interface MetaTrack extends TrackCommon {
  type: 'meta' | 'subtitle';
  codec: MetaCodec;
}

export type Track = VideoTrack | AudioTrack | MetaTrack;
export type TrackType = Track['type'];

/**
 * One access unit of one track. `data` is a slice of the input's buffer and is never copied
 * per viewer. H.264/HEVC payloads are AVCC-style (4-byte length-prefixed NAL units), AAC raw
 * frames (no ADTS), as in DTSC.
 */
export interface Packet {
  trackId: number;
  /** Decode timestamp in milliseconds. */
  timeMs: number;
  /** Composition (presentation - decode) offset in milliseconds; 0 without B-frames. */
  offsetMs: number;
  keyframe: boolean;
  data: Buffer;
  /**
   * Set by the stream hub on the sync-track keyframe that starts a segment of the segmented
   * outputs (HLS, CMAF, DASH), and carried by relays, so every worker cuts the same segments.
   */
  fragment?: FragmentMark;
}

/** A segment start: its number (the HLS media sequence number) and its discontinuity epoch. */
export interface FragmentMark {
  /** Consecutive from 0 over the life of the stream. */
  index: number;
  /** Incremented at the first segment after a track change or a new source (EXT-X-DISCONTINUITY). */
  epoch: number;
}

export function makePacket(trackId: number, timeMs: number, data: Buffer, keyframe: boolean, offsetMs = 0): Packet {
  return { trackId, timeMs, offsetMs, keyframe, data };
}
