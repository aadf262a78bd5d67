// Audio frame and codec headers read by more than one container (the FLV demuxer fills track
// fields from them, the TS muxer counts samples for sample-exact timestamps).
// - MPEG audio frame header: ISO/IEC 11172-3 §2.4.1.3 / §2.4.2.3, ISO/IEC 13818-3 (MPEG-2 LSF)
//   and the unofficial "MPEG 2.5" extension (version 00):
//     sync(11)=7FF version(2) layer(2) protection_bit(1) | bitrate_index(4) sampling_frequency(2)
//     padding(1) private(1) | mode(2) mode_extension(2) copyright(1) original(1) emphasis(2)
// - AC-3 syncinfo + bsi: ATSC A/52 §5.3.1-5.3.2:
//     syncword(16)=0B77 crc1(16) fscod(2) frmsizecod(6) | bsid(5) bsmod(3) acmod(3) [cmixlev(2)]
//     [surmixlev(2)] [dsurmod(2)] lfeon(1)
// - OpusHead (ID header): RFC 7845 §5.1:
//     "OpusHead" version(8) channels(8) pre_skip(16le) input_rate(32le) output_gain(s16le)
//     mapping_family(8) [stream_count(8) coupled_count(8) channel_mapping(8 * channels)]
// These are probes over packet payloads that may be anything: each returns undefined for bytes
// that are not such a header instead of throwing, so a caller can fall back to other sources.

export interface AudioParams {
  /** Sample rate in Hz. */
  rate: number;
  channels: number;
}

// ---- MPEG audio ------------------------------------------------------------------------------

export interface MpegAudioHeader extends AudioParams {
  /** 1, 2 or 2.5 (MPEG-2.5: the low-rate extension). */
  version: 1 | 2 | 2.5;
  /** 1, 2 or 3 (Layer I, II, III). */
  layer: 1 | 2 | 3;
  /** PCM samples one frame decodes to. */
  samples: number;
}

const MPEG1_RATES = [44100, 48000, 32000];

/** The MPEG audio frame header at the start of `data`; undefined when there is none. */
export function parseMpegAudioHeader(data: Uint8Array): MpegAudioHeader | undefined {
  if (data.length < 4 || data[0] !== 0xff || (data[1]! & 0xe0) !== 0xe0) return undefined;
  const versionBits = (data[1]! >> 3) & 3; // 0: MPEG-2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
  const layerBits = (data[1]! >> 1) & 3; // 0: reserved, 1: III, 2: II, 3: I
  const rateIndex = (data[2]! >> 2) & 3;
  if (versionBits === 1 || layerBits === 0 || rateIndex === 3) return undefined;
  const version = versionBits === 3 ? 1 : versionBits === 2 ? 2 : 2.5;
  const layer = (4 - layerBits) as 1 | 2 | 3;
  // MPEG-2 halves and MPEG-2.5 quarters the MPEG-1 rates.
  const rate = MPEG1_RATES[rateIndex]! / (version === 1 ? 1 : version === 2 ? 2 : 4);
  // Layer III frames of the low-sampling-frequency versions hold one granule less (576).
  const samples = layer === 1 ? 384 : layer === 2 || version === 1 ? 1152 : 576;
  const mode = data[3]! >> 6; // 3: single channel
  return { version, layer, rate, channels: mode === 3 ? 1 : 2, samples };
}

// ---- AC-3 ------------------------------------------------------------------------------------

/** Every AC-3 syncframe holds 6 audio blocks of 256 samples. */
export const AC3_SAMPLES_PER_FRAME = 1536;

const AC3_RATES = [48000, 44100, 32000];
/** Full-bandwidth channels per acmod (A/52 Table 5.8); lfeon adds one. */
const AC3_CHANNELS = [2, 1, 2, 3, 3, 4, 4, 5];

export interface Ac3Header extends AudioParams {
  bsid: number;
  acmod: number;
  lfe: boolean;
  samples: number;
}

/**
 * The AC-3 syncinfo + bsi at the start of `data`; undefined when there is none. bsid above 10
 * is E-AC-3 (A/52 Annex E), whose header differs.
 */
export function parseAc3Header(data: Uint8Array): Ac3Header | undefined {
  if (data.length < 8 || data[0] !== 0x0b || data[1] !== 0x77) return undefined;
  const fscod = data[4]! >> 6;
  const bsid = data[5]! >> 3;
  if (fscod === 3 || bsid > 10) return undefined;
  const acmod = data[6]! >> 5;
  // The optional 2-bit mix levels sit between acmod and lfeon; 3 + 6 bits at most fit byte 6-7.
  let bit = 3;
  if ((acmod & 1) !== 0 && acmod !== 1) bit += 2; // cmixlev: three front channels
  if ((acmod & 4) !== 0) bit += 2; // surmixlev: a surround channel
  if (acmod === 2) bit += 2; // dsurmod: 2/0 mode
  const word = (data[6]! << 8) | data[7]!;
  const lfe = ((word >> (15 - bit)) & 1) === 1;
  return { rate: AC3_RATES[fscod]!, channels: AC3_CHANNELS[acmod]! + (lfe ? 1 : 0), bsid, acmod, lfe, samples: AC3_SAMPLES_PER_FRAME };
}

// ---- OpusHead --------------------------------------------------------------------------------

/** Opus always decodes at 48 kHz; OpusHead's input rate is informational (RFC 7845 §5.1). */
export const OPUS_SAMPLE_RATE = 48000;

export interface OpusHead {
  version: number;
  channels: number;
  preSkip: number;
  /** The encoder's input rate, informational only; 0 when unspecified. */
  inputSampleRate: number;
  /** Q7.8 dB. */
  outputGain: number;
  mappingFamily: number;
  /** The channel mapping table (family != 0); undefined for family 0 or a table cut short. */
  mapping: { streams: number; coupled: number; channelMap: Uint8Array } | undefined;
}

const OPUS_HEAD_MIN = 19;

/** The OpusHead at the start of `data`; undefined when it is not one or has 0 channels. */
export function parseOpusHead(data: Uint8Array): OpusHead | undefined {
  if (data.length < OPUS_HEAD_MIN) return undefined;
  const b = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (b.toString('latin1', 0, 8) !== 'OpusHead') return undefined;
  const channels = b[9]!;
  if (channels === 0) return undefined;
  const mappingFamily = b[18]!;
  let mapping: OpusHead['mapping'];
  if (mappingFamily !== 0 && b.length >= 21 + channels) {
    mapping = { streams: b[19]!, coupled: b[20]!, channelMap: b.subarray(21, 21 + channels) };
  }
  return {
    version: b[8]!,
    channels,
    preSkip: b.readUInt16LE(10),
    inputSampleRate: b.readUInt32LE(12),
    outputGain: b.readInt16LE(16),
    mappingFamily,
    mapping,
  };
}
