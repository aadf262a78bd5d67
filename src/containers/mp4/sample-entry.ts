// Sample descriptions (stsd) to Haze tracks, for the MP4/MOV reader.
// ISO/IEC 14496-12 §8.5.2 (stsd; VisualSampleEntry §12.1.3, AudioSampleEntry §12.2.3), QuickTime
// File Format "Sound sample description" versions 1 and 2 (extra fields after the v0 entry) and
// the 'wave' atom around esds; avcC / hvcC ISO/IEC 14496-15 §5.3.3 / §8.3.3; esds ISO/IEC
// 14496-14 §5.6 with descriptors of 14496-1 §7.2.6.5-6; dOps "Encapsulation of Opus in ISOBMFF"
// §4.3.2 (-> RFC 7845 §5.1 OpusHead); dac3 ETSI TS 102 366 Annex F.4; av1C AV1-ISOBMFF §2.3;
// vpcC "VP Codec ISO Media File Format Binding" §2.2.
//
//   VisualSampleEntry: reserved(6) dref(2) pre_defined/reserved(16) width(2) height(2) ...(50) boxes
//   AudioSampleEntry:  reserved(6) dref(2) version(2) revision(2) vendor(4) channels(2)
//                      samplesize(2) compression_id(2) packet_size(2) rate(16.16) [v1 +16 | v2 +36] boxes

import type { AudioCodec, AudioTrack, VideoCodec, VideoTrack } from '../../media/types.js';
import { aacChannelCount, ascOutputRate, parseAsc } from '../../media/aac.js';
import { ByteReader } from '../../util/bytes.js';
import { HazeError, isHazeError } from '../../util/errors.js';

/** How readSample turns a stored sample into packet data. */
export const SAMPLE_AS_STORED = 0;
/** 1, 2, 3: NAL units with 1/2/3-byte lengths, rewritten to 4-byte lengths. */
export const SAMPLE_NAL_LENGTH_1 = 1;
export const SAMPLE_NAL_LENGTH_2 = 2;
export const SAMPLE_NAL_LENGTH_3 = 3;
/** Little-endian 16-bit PCM ('sowt'), byte-swapped to Haze's big-endian PCM. */
export const SAMPLE_SWAP_16 = 16;
/** Little-endian 24-bit PCM, byte-swapped. */
export const SAMPLE_SWAP_24 = 24;

export interface EntryResult {
  /** The track without id/lang/bps (the caller fills those in). */
  track: Omit<VideoTrack, 'id' | 'lang' | 'bps'> | Omit<AudioTrack, 'id' | 'lang' | 'bps'>;
  /** SAMPLE_* conversion readSample applies. */
  sampleFormat: number;
  /** Raw PCM: bytes per frame (all channels), so samples can be merged per chunk; 0 otherwise. */
  pcmFrameBytes: number;
}

interface Child {
  type: string;
  payload: Buffer;
}

/** Child boxes of a sample entry; tolerant of trailing padding shorter than a box header (QuickTime). */
function children(buf: Buffer, start: number): Child[] {
  const out: Child[] = [];
  let pos = start;
  while (buf.length - pos >= 8) {
    let size = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    let header = 8;
    if (size === 0) size = buf.length - pos;
    else if (size === 1) {
      if (buf.length - pos < 16) break;
      size = buf.readUInt32BE(pos + 8) * 0x1_0000_0000 + buf.readUInt32BE(pos + 12);
      header = 16;
    }
    if (size < header || size > buf.length - pos) break; // padding or a terminator atom
    out.push({ type, payload: buf.subarray(pos + header, pos + size) });
    pos += size;
  }
  return out;
}

function child(list: readonly Child[], type: string): Buffer | undefined {
  return list.find((c) => c.type === type)?.payload;
}

/** A copy of an avcC/hvcC with lengthSizeMinusOne set to 3 (the byte at `at`). */
function withLength4(config: Buffer, at: number): Buffer {
  const copy = Buffer.from(config);
  copy[at] = copy[at]! | 3;
  return copy;
}

function videoEntry(format: string, entry: Buffer, warn: (m: string) => void): EntryResult | undefined {
  const r = new ByteReader(entry);
  r.skip(8 + 16);
  const width = r.u16();
  const height = r.u16();
  r.skip(50);
  const boxes = children(entry, r.pos);
  const video = (codec: VideoCodec, init: Buffer, sampleFormat = SAMPLE_AS_STORED): EntryResult => ({
    track: { type: 'video', codec, init, width, height, fpks: 0 },
    sampleFormat,
    pcmFrameBytes: 0,
  });
  switch (format) {
    case 'avc1':
    case 'avc3': {
      const avcC = child(boxes, 'avcC');
      if (!avcC || avcC.length < 7) throw new HazeError('HAZE_ERR_MALFORMED', `${format} sample entry without a valid avcC`);
      const lengthSize = (avcC[4]! & 3) + 1;
      return lengthSize === 4 ? video('H264', avcC) : video('H264', withLength4(avcC, 4), lengthSize);
    }
    case 'hvc1':
    case 'hev1': {
      const hvcC = child(boxes, 'hvcC');
      if (!hvcC || hvcC.length < 23) throw new HazeError('HAZE_ERR_MALFORMED', `${format} sample entry without a valid hvcC`);
      const lengthSize = (hvcC[21]! & 3) + 1;
      return lengthSize === 4 ? video('HEVC', hvcC) : video('HEVC', withLength4(hvcC, 21), lengthSize);
    }
    case 'av01': {
      const av1C = child(boxes, 'av1C');
      if (!av1C || av1C.length < 4) throw new HazeError('HAZE_ERR_MALFORMED', 'av01 sample entry without a valid av1C');
      return video('AV1', av1C);
    }
    case 'vp09':
    case 'vp08': {
      // vpcC is a FullBox: the init is its payload after version/flags (as the fMP4 writer takes it).
      const vpcC = child(boxes, 'vpcC');
      return video(format === 'vp09' ? 'VP9' : 'VP8', vpcC && vpcC.length > 4 ? vpcC.subarray(4) : Buffer.alloc(0));
    }
    default:
      warn(`video sample entry '${format}' is not supported`);
      return undefined;
  }
}

/** The descriptor at r.pos: tag and payload (14496-1 §8.3.3 size in up to four 7-bit groups). */
function readDescriptor(r: ByteReader): { tag: number; body: ByteReader } {
  const tag = r.u8();
  let len = 0;
  for (let i = 0; i < 4; i++) {
    const b = r.u8();
    len = len * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) break;
  }
  const start = r.pos;
  r.skip(Math.min(len, r.remaining)); // a descriptor overrunning its box is clipped, as readers do
  return { tag, body: new ByteReader(r.buf, start, r.pos) };
}

interface EsdsInfo {
  objectType: number;
  dsi: Buffer;
}

function parseEsds(esds: Buffer): EsdsInfo {
  const r = new ByteReader(esds, 4); // version + flags
  const es = readDescriptor(r);
  if (es.tag !== 0x03) throw new HazeError('HAZE_ERR_MALFORMED', `esds starts with descriptor tag ${es.tag}, not ES_Descriptor`);
  const b = es.body;
  b.skip(2); // ES_ID
  const flags = b.u8();
  if (flags & 0x80) b.skip(2); // dependsOn_ES_ID
  if (flags & 0x40) b.skip(b.u8()); // URL
  if (flags & 0x20) b.skip(2); // OCR_ES_Id
  while (b.remaining > 0) {
    const d = readDescriptor(b);
    if (d.tag !== 0x04) continue;
    const objectType = d.body.u8();
    d.body.skip(12); // streamType, bufferSizeDB, maxBitrate, avgBitrate
    let dsi: Buffer = Buffer.alloc(0);
    while (d.body.remaining > 0) {
      const s = readDescriptor(d.body);
      if (s.tag === 0x05) {
        dsi = s.body.bytes(s.body.remaining);
        break;
      }
    }
    return { objectType, dsi };
  }
  throw new HazeError('HAZE_ERR_MALFORMED', 'esds without a DecoderConfigDescriptor');
}

/** dOps (big-endian) -> OpusHead (RFC 7845 §5.1, little-endian). */
function opusHeadFromDops(dOps: Buffer): Buffer {
  const r = new ByteReader(dOps);
  r.skip(1); // version
  const channels = r.u8();
  const preSkip = r.u16();
  const inputRate = r.u32();
  const gain = r.u16();
  const family = r.u8();
  const table = family !== 0 ? r.bytes(2 + channels) : Buffer.alloc(0);
  const head = Buffer.alloc(19 + table.length);
  head.write('OpusHead', 0, 'latin1');
  head[8] = 1;
  head[9] = channels;
  head.writeUInt16LE(preSkip, 10);
  head.writeUInt32LE(inputRate, 12);
  head.writeUInt16LE(gain, 16);
  head[18] = family;
  head.set(table, 19);
  return head;
}

const AC3_RATES = [48000, 44100, 32000];
const AC3_ACMOD_CHANNELS = [2, 1, 2, 3, 3, 4, 4, 5];

function audioEntry(format: string, entry: Buffer, warn: (m: string) => void): EntryResult | undefined {
  const r = new ByteReader(entry);
  r.skip(8);
  const version = r.u16();
  r.skip(6); // revision, vendor
  let channels = r.u16();
  let bits = r.u16();
  r.skip(4); // compression id, packet size
  let rate = Math.floor(r.u32() / 0x1_0000);
  let lpcmFlags = 0;
  if (version === 1) r.skip(16);
  else if (version === 2) {
    r.skip(4);
    rate = Math.round(r.f64());
    channels = r.u32();
    r.skip(4);
    bits = r.u32();
    lpcmFlags = r.u32();
    r.skip(8);
  }
  let boxes = children(entry, r.pos);
  const wave = child(boxes, 'wave');
  if (wave) boxes = [...boxes, ...children(wave, 0)];
  const audio = (codec: AudioCodec, init: Buffer, a: { rate: number; channels: number; size: number }, sampleFormat = SAMPLE_AS_STORED, pcmFrameBytes = 0): EntryResult => ({
    track: { type: 'audio', codec, init, rate: a.rate, channels: a.channels, size: a.size },
    sampleFormat,
    pcmFrameBytes,
  });
  switch (format) {
    case 'mp4a': {
      const esds = child(boxes, 'esds');
      if (!esds) throw new HazeError('HAZE_ERR_MALFORMED', 'mp4a sample entry without esds');
      const info = parseEsds(esds);
      if (info.objectType === 0x40 || info.objectType === 0x66 || info.objectType === 0x67 || info.objectType === 0x68) {
        if (info.dsi.length === 0) throw new HazeError('HAZE_ERR_MALFORMED', 'AAC esds without an AudioSpecificConfig');
        const asc = parseAsc(info.dsi);
        return audio('AAC', info.dsi, { rate: ascOutputRate(asc), channels: aacChannelCount(asc.channelConfig) || channels, size: 16 });
      }
      if (info.objectType === 0x6b || info.objectType === 0x69) return audio('MP3', Buffer.alloc(0), { rate, channels, size: 16 });
      if (info.objectType === 0xa5) return audio('AC3', Buffer.alloc(0), { rate, channels, size: 16 });
      warn(`mp4a object type 0x${info.objectType.toString(16)} is not supported`);
      return undefined;
    }
    case '.mp3':
      return audio('MP3', Buffer.alloc(0), { rate, channels, size: 16 });
    case 'Opus': {
      const dOps = child(boxes, 'dOps');
      if (!dOps) throw new HazeError('HAZE_ERR_MALFORMED', 'Opus sample entry without dOps');
      const head = opusHeadFromDops(dOps);
      return audio('opus', head, { rate: 48000, channels: head[9]!, size: 16 });
    }
    case 'ac-3': {
      const dac3 = child(boxes, 'dac3');
      if (!dac3 || dac3.length < 3) return audio('AC3', Buffer.alloc(0), { rate, channels, size: 16 });
      const v = dac3.readUIntBE(0, 3);
      const fscod = v >> 22;
      const acmod = (v >> 11) & 7;
      const lfe = (v >> 10) & 1;
      return audio('AC3', Buffer.alloc(0), { rate: AC3_RATES[fscod] ?? rate, channels: AC3_ACMOD_CHANNELS[acmod]! + lfe, size: 16 });
    }
    case 'twos':
    case 'sowt':
    case 'lpcm': {
      // lpcm (v2): formatSpecificFlags bit 1 = big-endian, bit 2 = signed, bit 0 = float.
      const littleEndian = format === 'sowt' || (format === 'lpcm' && (lpcmFlags & 2) === 0);
      const float = format === 'lpcm' && (lpcmFlags & 1) !== 0;
      if (float || (format === 'lpcm' && (lpcmFlags & 4) === 0) || (bits !== 16 && bits !== 24) || channels === 0) {
        warn(`PCM '${format}' with ${bits} bits, flags 0x${lpcmFlags.toString(16)} is not supported`);
        return undefined;
      }
      const fmt = littleEndian ? (bits === 16 ? SAMPLE_SWAP_16 : SAMPLE_SWAP_24) : SAMPLE_AS_STORED;
      return audio('PCM', Buffer.alloc(0), { rate, channels, size: bits }, fmt, (channels * bits) / 8);
    }
    case 'ulaw':
    case 'alaw':
      if (channels === 0) throw new HazeError('HAZE_ERR_MALFORMED', `${format} with 0 channels`);
      return audio(format === 'ulaw' ? 'ULAW' : 'ALAW', Buffer.alloc(0), { rate, channels, size: 8 }, SAMPLE_AS_STORED, channels);
    default:
      warn(`audio sample entry '${format}' is not supported`);
      return undefined;
  }
}

/**
 * The first sample description of an stsd payload (after version/flags) as a track, or
 * undefined (with a warning) for an unsupported codec. `handler` is the hdlr type.
 */
export function parseSampleDescription(stsd: Buffer, handler: string, warn: (m: string) => void): EntryResult | undefined {
  const r = new ByteReader(stsd, 4);
  const count = r.u32();
  if (count === 0) throw new HazeError('HAZE_ERR_MALFORMED', 'stsd without sample entries');
  if (count > 1) warn(`stsd has ${count} sample entries; only the first is used`);
  const size = r.u32();
  const format = r.buf.toString('latin1', r.pos, r.pos + 4);
  r.skip(4);
  if (size < 8 || size - 8 > r.remaining) throw new HazeError('HAZE_ERR_MALFORMED', `sample entry '${format}' of ${size} bytes in an stsd of ${stsd.length}`);
  const entry = r.bytes(size - 8);
  try {
    if (handler === 'vide') return videoEntry(format, entry, warn);
    if (handler === 'soun') return audioEntry(format, entry, warn);
  } catch (err) {
    // Codec headers are parsed with their own readers; their errors stay HazeErrors.
    if (isHazeError(err)) throw new HazeError(err.code, `sample entry '${format}': ${err.message}`);
    throw err;
  }
  warn(`track handler '${handler}' is not supported`);
  return undefined;
}
