// AAC helpers.
// AudioSpecificConfig: ISO/IEC 14496-3 §1.6.2.1 (with GASpecificConfig §4.4.1 for AAC objects);
// explicit hierarchical SBR/PS signalling (object types 5 and 29) is read, the implicit
// backward-compatible extension after GASpecificConfig is ignored.
// ADTS: ISO/IEC 14496-3 §1.A.2.2 (adts_fixed_header + adts_variable_header, no CRC).
//
//   ASC:  objectType(5, 31 -> 6 more bits + 32) | samplingIndex(4, 15 -> 24-bit rate)
//         | channelConfig(4) | [SBR/PS: extIndex(4)[24] objectType(5)] | GASpecificConfig(3+)
//   ADTS: FFF | id 0 | layer 00 | protAbsent 1 | profile(2) | sfIndex(4) | priv | chCfg(3)
//         | orig home cpId cpStart | frameLength(13) | fullness(11)=7FF | rawBlocks(2)=0

import { BitReader } from '../util/bytes.js';
import { HazeError, isHazeError } from '../util/errors.js';

export const AAC_SAMPLE_RATES: readonly number[] = [
  96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

export interface AudioSpecificConfig {
  /** The first signalled audioObjectType (5 / 29 for explicit HE-AAC / HE-AACv2): RFC 6381's N. */
  objectType: number;
  /** The object type of the core coder (2 for AAC-LC under SBR); what ADTS carries. */
  coreObjectType: number;
  /** Sampling frequency index of the core, 15 when the rate is explicit. */
  samplingIndex: number;
  /** Core sample rate in Hz (the rate one frame's samples are counted in). */
  sampleRate: number;
  channelConfig: number;
  /** Samples per frame: 960 when GASpecificConfig's frameLengthFlag is set, else 1024. */
  samplesPerFrame: number;
  sbr: boolean;
  ps: boolean;
  /** Output rate with SBR (explicit signalling), 0 without. */
  extensionSampleRate: number;
  extensionSamplingIndex: number;
}

/** Object types whose ASC continues with a GASpecificConfig (Table 1.15). */
function isGeneralAudio(aot: number): boolean {
  return aot === 1 || aot === 2 || aot === 3 || aot === 4 || aot === 6 || aot === 7 || aot === 17 || aot === 19 || aot === 20 || aot === 21 || aot === 22 || aot === 23;
}

function readObjectType(br: BitReader): number {
  const aot = br.bits(5);
  return aot === 31 ? 32 + br.bits(6) : aot;
}

function readRate(br: BitReader): { index: number; rate: number } {
  const index = br.bits(4);
  if (index === 15) {
    const rate = br.bits(24);
    if (rate === 0) throw new HazeError('HAZE_ERR_MALFORMED', 'explicit sample rate 0');
    return { index, rate };
  }
  const rate = AAC_SAMPLE_RATES[index];
  if (rate === undefined) throw new HazeError('HAZE_ERR_MALFORMED', `reserved sampling frequency index ${index}`);
  return { index, rate };
}

export function parseAsc(buf: Uint8Array): AudioSpecificConfig {
  if (buf.length < 2) throw new HazeError('HAZE_ERR_SHORT_READ', 'AudioSpecificConfig needs 2 bytes');
  const br = new BitReader(buf);
  const objectType = readObjectType(br);
  if (objectType === 0) throw new HazeError('HAZE_ERR_MALFORMED', 'audioObjectType 0');
  const core = readRate(br);
  const channelConfig = br.bits(4);
  let coreObjectType = objectType;
  let sbr = false;
  let ps = false;
  let extensionSampleRate = 0;
  let extensionSamplingIndex = 0;
  if (objectType === 5 || objectType === 29) {
    sbr = true;
    ps = objectType === 29;
    const ext = readRate(br);
    extensionSampleRate = ext.rate;
    extensionSamplingIndex = ext.index;
    coreObjectType = readObjectType(br);
    if (coreObjectType === 0 || coreObjectType === 5 || coreObjectType === 29) {
      throw new HazeError('HAZE_ERR_MALFORMED', `core audioObjectType ${coreObjectType} under SBR`);
    }
  }
  let samplesPerFrame = 1024;
  if (isGeneralAudio(coreObjectType)) {
    // GASpecificConfig: frameLengthFlag first. A 2-byte LC config holds it in its last 3 bits.
    try {
      if (br.flag()) samplesPerFrame = 960;
    } catch (err) {
      // Some muxers truncate the ASC after the channel configuration; 1024 is the default.
      if (!isHazeError(err)) throw err;
    }
  }
  return {
    objectType,
    coreObjectType,
    samplingIndex: core.index,
    sampleRate: core.rate,
    channelConfig,
    samplesPerFrame,
    sbr,
    ps,
    extensionSampleRate,
    extensionSamplingIndex,
  };
}

/** MSB-first bit writer for the few bits of an ASC. */
class BitWriter {
  private readonly bytes: number[] = [];
  private acc = 0;
  private n = 0;

  bits(count: number, value: number): this {
    for (let i = count - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | (Math.floor(value / 2 ** i) & 1);
      if (++this.n === 8) {
        this.bytes.push(this.acc);
        this.acc = 0;
        this.n = 0;
      }
    }
    return this;
  }

  done(): Buffer {
    if (this.n > 0) this.bytes.push(this.acc << (8 - this.n));
    return Buffer.from(this.bytes);
  }
}

function writeObjectType(w: BitWriter, aot: number): void {
  if (aot >= 31) w.bits(5, 31).bits(6, aot - 32);
  else w.bits(5, aot);
}

function writeRate(w: BitWriter, index: number, rate: number): void {
  w.bits(4, index);
  if (index === 15) w.bits(24, rate);
}

/**
 * Output channels of a channelConfiguration (ISO/IEC 14496-3 Table 1.19, 23003-3 for 11-14);
 * 0 when the layout lives in a program_config_element (0) or the value is reserved.
 */
export function aacChannelCount(channelConfig: number): number {
  return [0, 1, 2, 3, 4, 5, 6, 8, 0, 0, 0, 7, 8, 24, 8, 0][channelConfig] ?? 0;
}

/** The rate an ASC decodes to: the SBR output rate with explicit SBR, else the core rate. */
export function ascOutputRate(asc: AudioSpecificConfig): number {
  return asc.sbr && asc.extensionSampleRate > 0 ? asc.extensionSampleRate : asc.sampleRate;
}

/** The sampling frequency index for a rate, 15 (explicit) when it is not in the table. */
export function aacSamplingIndex(rate: number): number {
  const i = AAC_SAMPLE_RATES.indexOf(rate);
  return i < 0 ? 15 : i;
}

export interface AscInput {
  objectType: number;
  sampleRate: number;
  channelConfig: number;
  /** Defaults to the table index of sampleRate (15, explicit, when absent from the table). */
  samplingIndex?: number;
  samplesPerFrame?: number;
  /** For objectType 5/29: the core coder's object type (default 2) and the SBR output rate. */
  coreObjectType?: number;
  extensionSampleRate?: number;
  extensionSamplingIndex?: number;
}

/** Builds an AudioSpecificConfig; the inverse of parseAsc for configs without implicit extensions. */
export function buildAsc(cfg: AscInput): Buffer {
  const { objectType, sampleRate, channelConfig } = cfg;
  if (objectType < 1 || objectType > 95) throw new HazeError('HAZE_ERR_INVALID_ARG', `audioObjectType ${objectType}`);
  if (channelConfig < 0 || channelConfig > 15) throw new HazeError('HAZE_ERR_INVALID_ARG', `channelConfiguration ${channelConfig}`);
  const w = new BitWriter();
  writeObjectType(w, objectType);
  writeRate(w, cfg.samplingIndex ?? aacSamplingIndex(sampleRate), sampleRate);
  w.bits(4, channelConfig);
  let core = objectType;
  if (objectType === 5 || objectType === 29) {
    const extRate = cfg.extensionSampleRate ?? sampleRate * 2;
    writeRate(w, cfg.extensionSamplingIndex ?? aacSamplingIndex(extRate), extRate);
    core = cfg.coreObjectType ?? 2;
    writeObjectType(w, core);
  }
  if (isGeneralAudio(core)) {
    // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder 0, extensionFlag 0.
    w.bits(1, cfg.samplesPerFrame === 960 ? 1 : 0).bits(1, 0).bits(1, 0);
  }
  return w.done();
}

export const ADTS_HEADER_SIZE = 7;
/** aac_frame_length is 13 bits and includes the header. */
export const ADTS_MAX_PAYLOAD = 0x1fff - ADTS_HEADER_SIZE;

/**
 * Writes the 7-byte ADTS header (no CRC) for one raw frame of `payloadLength` bytes into `out`
 * at `offset`. The profile is the core object type, so explicit HE-AAC is carried as LC + SBR,
 * which decoders detect implicitly.
 */
export function writeAdtsHeader(asc: AudioSpecificConfig, payloadLength: number, out: Buffer, offset: number): number {
  if (payloadLength < 0 || payloadLength > ADTS_MAX_PAYLOAD) {
    throw new HazeError('HAZE_ERR_TOO_LARGE', `AAC frame of ${payloadLength} bytes does not fit ADTS`);
  }
  const profile = asc.coreObjectType - 1;
  if (profile < 0 || profile > 3) throw new HazeError('HAZE_ERR_UNSUPPORTED', `audioObjectType ${asc.coreObjectType} has no ADTS profile`);
  let sfi = asc.samplingIndex;
  if (sfi === 15) sfi = AAC_SAMPLE_RATES.indexOf(asc.sampleRate);
  if (sfi < 0 || sfi > 12) throw new HazeError('HAZE_ERR_UNSUPPORTED', `sample rate ${asc.sampleRate} has no ADTS index`);
  const ch = asc.channelConfig & 7;
  const len = payloadLength + ADTS_HEADER_SIZE;
  out[offset] = 0xff;
  out[offset + 1] = 0xf1; // MPEG-4, layer 0, protection_absent
  out[offset + 2] = (profile << 6) | (sfi << 2) | (ch >> 2);
  out[offset + 3] = ((ch & 3) << 6) | (len >> 11);
  out[offset + 4] = (len >> 3) & 0xff;
  out[offset + 5] = ((len & 7) << 5) | 0x1f; // buffer fullness 0x7FF (VBR)
  out[offset + 6] = 0xfc; // fullness low bits, one raw data block
  return offset + ADTS_HEADER_SIZE;
}

/** The ADTS header for one raw frame of `payloadLength` bytes (the header's 7 bytes excluded). */
export function adtsHeader(asc: AudioSpecificConfig, payloadLength: number): Buffer {
  const out = Buffer.allocUnsafe(ADTS_HEADER_SIZE);
  writeAdtsHeader(asc, payloadLength, out, 0);
  return out;
}

/** A plain AAC-LC config for a track that came without one (rate/channels from the track). */
export function defaultAsc(sampleRate: number, channels: number): AudioSpecificConfig {
  return {
    objectType: 2,
    coreObjectType: 2,
    samplingIndex: aacSamplingIndex(sampleRate),
    sampleRate,
    channelConfig: channels === 8 ? 7 : channels,
    samplesPerFrame: 1024,
    sbr: false,
    ps: false,
    extensionSampleRate: 0,
    extensionSamplingIndex: 0,
  };
}
