// Fragmented-MP4 / CMAF initialisation segment: ftyp + moov with empty sample tables and mvex.
// ISO/IEC 14496-12 §4.3 (ftyp), §8.2.2 (mvhd), §8.3.2 (tkhd), §8.4.2 (mdhd), §8.4.3 (hdlr),
// §12.1.2 (vmhd), §12.2.2 (smhd), §8.7.2 (dref), §8.5.2 (stsd; VisualSampleEntry §12.1.3,
// AudioSampleEntry §12.2.3), §8.6.1.2 / §8.7.4 / §8.7.3 / §8.7.5 (stts stsc stsz stco),
// §8.8.1 / §8.8.3 (mvex, trex); ISO/IEC 23000-19 (CMAF) brands.
// Codec configuration boxes: avcC / hvcC ISO/IEC 14496-15 §5.3.3 / §8.3.3 (track.init as is);
// esds ISO/IEC 14496-14 §5.6 with the descriptors of 14496-1 §7.2.6.5-6; dOps "Encapsulation of
// Opus in ISOBMFF" §4.3.2; dac3 ETSI TS 102 366 Annex F.4; av1C AV1-ISOBMFF §2.3; vpcC "VP Codec
// ISO Media File Format Binding" §2.2.
//
// Timescales: video 90000, audio the sample rate (Opus 48000), so sample-exact audio needs no
// rounding at all.

import type { AudioTrack, Track, VideoTrack } from '../../media/types.js';
import { parseAc3Header, parseOpusHead, OPUS_SAMPLE_RATE } from '../../media/audio-headers.js';
import { parseAsc } from '../../media/aac.js';
import { HazeError, isHazeError } from '../../util/errors.js';
import { box, fields, fullBox, serialize, type BoxChild, type BoxPart } from './box.js';

export const VIDEO_TIMESCALE = 90000;

export interface InitSegmentOptions {
  /** ftyp major brand (default `iso6`). */
  majorBrand?: string;
  /** ftyp compatible brands (default iso6 cmfc isom iso5 dash mp41). */
  compatibleBrands?: readonly string[];
  /**
   * A first frame per track id, for codecs whose configuration box is derived from the stream
   * rather than carried in track.init: AC-3 (dac3 from the syncinfo/bsi) and MP3 (MPEG-1 vs
   * MPEG-2 object type).
   */
  firstFrames?: ReadonlyMap<number, Buffer>;
}

/** Whether the fMP4 writer can carry this track. */
export function mp4Supports(track: Track): boolean {
  if (track.type === 'video') return true;
  if (track.type !== 'audio') return false;
  return track.codec === 'AAC' || track.codec === 'MP3' || track.codec === 'opus' || track.codec === 'AC3';
}

/** The media timescale (ticks per second) the writer uses for a track. */
export function trackTimescale(track: Track): number {
  if (track.type === 'video') return VIDEO_TIMESCALE;
  if (track.type === 'audio') {
    if (track.codec === 'opus') return OPUS_SAMPLE_RATE;
    if (track.codec === 'AAC' && track.init.length > 0) {
      // The core rate: frames hold 1024 samples of it, also under implicit/explicit SBR.
      try {
        return parseAsc(track.init).sampleRate;
      } catch (err) {
        if (!isHazeError(err)) throw err;
      }
    }
    if (track.rate > 0 && track.rate <= 0xffff_ffff) return track.rate;
  }
  throw new HazeError('HAZE_ERR_UNSUPPORTED', `no MP4 timescale for track ${track.id} (${track.type} ${track.codec})`);
}

/** The identity transformation matrix of mvhd/tkhd (16.16 and 2.30 fixed point). */
export const UNITY_MATRIX = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

function u32s(values: readonly number[]): Buffer {
  return fields(values.length * 4, (w) => {
    for (const v of values) w.u32(v);
  });
}

function ascii(s: string, size: number): Buffer {
  const b = Buffer.alloc(size);
  b.write(s, 0, size, 'latin1');
  return b;
}

function ftyp(major: string, compatible: readonly string[]): BoxPart {
  return box('ftyp', ascii(major, 4), u32s([0]), ...compatible.map((b) => ascii(b, 4)));
}

/** `styp` for a CMAF/DASH media segment (ISO/IEC 14496-12 §8.16.2, ISO/IEC 23000-19 §7.3.2). */
export function segmentType(brands: readonly string[] = ['msdh', 'msix', 'cmfs', 'cmff']): Buffer {
  return serialize(box('styp', ascii(brands[0] ?? 'msdh', 4), u32s([0]), ...brands.map((b) => ascii(b, 4))));
}

function mvhd(nextTrackId: number): BoxPart {
  return fullBox(
    'mvhd',
    0,
    0,
    fields(96, (w) => {
      w.u32(0).u32(0).u32(1000).u32(0); // creation, modification, timescale (ms), duration unknown
      w.u32(0x0001_0000).u16(0x0100).u16(0).u32(0).u32(0); // rate 1.0, volume 1.0, reserved
      for (const m of UNITY_MATRIX) w.u32(m);
      for (let i = 0; i < 6; i++) w.u32(0); // pre_defined
      w.u32(nextTrackId);
    }),
  );
}

function tkhd(t: Track): BoxPart {
  const width = t.type === 'video' ? t.width : 0;
  const height = t.type === 'video' ? t.height : 0;
  // flags: track_enabled | track_in_movie
  return fullBox(
    'tkhd',
    0,
    3,
    fields(80, (w) => {
      w.u32(0).u32(0).u32(t.id).u32(0).u32(0); // creation, modification, track_ID, reserved, duration
      w.u32(0).u32(0).u16(0).u16(0); // reserved, layer, alternate_group
      w.u16(t.type === 'audio' ? 0x0100 : 0).u16(0);
      for (const m of UNITY_MATRIX) w.u32(m);
      w.u32((width & 0xffff) * 0x1_0000).u32((height & 0xffff) * 0x1_0000); // 16.16 fixed point
    }),
  );
}

/** ISO-639-2/T packed as three 5-bit letters minus 0x60; `und` for anything else. */
export function packLanguage(lang: string): number {
  const l = /^[a-z]{3}$/.test(lang) ? lang : 'und';
  return ((l.charCodeAt(0) - 0x60) << 10) | ((l.charCodeAt(1) - 0x60) << 5) | (l.charCodeAt(2) - 0x60);
}

function mdhd(t: Track, timescale: number): BoxPart {
  return fullBox(
    'mdhd',
    0,
    0,
    fields(20, (w) => {
      w.u32(0).u32(0).u32(timescale).u32(0).u16(packLanguage(t.lang)).u16(0);
    }),
  );
}

/** hdlr with a handler type ('vide', 'soun') and a human-readable name. */
export function hdlr(handler: string, name: string): BoxPart {
  const nameBytes = Buffer.from(`${name}\0`, 'latin1');
  return fullBox('hdlr', 0, 0, u32s([0]), ascii(handler, 4), u32s([0, 0, 0]), nameBytes);
}

function visualEntry(format: string, t: VideoTrack, ...config: BoxChild[]): BoxPart {
  return box(
    format,
    fields(78, (w) => {
      w.u32(0).u16(0).u16(1); // reserved(6), data_reference_index
      w.u16(0).u16(0).u32(0).u32(0).u32(0); // pre_defined, reserved, pre_defined(3)
      w.u16(t.width & 0xffff).u16(t.height & 0xffff);
      w.u32(0x0048_0000).u32(0x0048_0000).u32(0).u16(1); // 72 dpi, reserved, frame_count
      for (let i = 0; i < 8; i++) w.u32(0); // compressorname
      w.u16(0x0018).u16(0xffff); // depth, pre_defined -1
    }),
    ...config,
  );
}

function audioEntry(format: string, channels: number, rate: number, ...config: BoxChild[]): BoxPart {
  return box(
    format,
    fields(28, (w) => {
      w.u32(0).u16(0).u16(1); // reserved(6), data_reference_index
      w.u32(0).u32(0); // reserved
      w.u16(channels & 0xffff).u16(16).u16(0).u16(0); // channelcount, samplesize, pre_defined, reserved
      w.u32(rate > 0xffff ? 0 : rate * 0x1_0000); // 16.16; rates past 65535 live in mdhd only
    }),
    ...config,
  );
}

/** MPEG-4 descriptor (14496-1 §8.3.3): tag, then the size in 7-bit groups. */
function descriptor(tag: number, ...body: Uint8Array[]): Buffer {
  let len = 0;
  for (const b of body) len += b.length;
  let sizeBytes = 1;
  while (len >= 2 ** (7 * sizeBytes) && sizeBytes < 4) sizeBytes++;
  if (len >= 2 ** 28) throw new HazeError('HAZE_ERR_TOO_LARGE', `descriptor of ${len} bytes`);
  const out = Buffer.allocUnsafe(1 + sizeBytes + len);
  out[0] = tag;
  for (let i = 0; i < sizeBytes; i++) {
    const shift = 7 * (sizeBytes - 1 - i);
    out[1 + i] = ((len >> shift) & 0x7f) | (i < sizeBytes - 1 ? 0x80 : 0);
  }
  let o = 1 + sizeBytes;
  for (const b of body) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}

function esds(trackId: number, objectType: number, bitrateBps: number, dsi: Buffer | undefined): BoxPart {
  const dcd = descriptor(
    0x04,
    fields(13, (w) => {
      w.u8(objectType).u8((0x05 << 2) | 1); // streamType audio, upStream 0, reserved 1
      w.u24(0).u32(bitrateBps).u32(bitrateBps); // bufferSizeDB, maxBitrate, avgBitrate
    }),
    ...(dsi && dsi.length > 0 ? [descriptor(0x05, dsi)] : []),
  );
  const es = descriptor(0x03, fields(3, (w) => w.u16(trackId & 0xffff).u8(0)), dcd, descriptor(0x06, Buffer.from([0x02])));
  return fullBox('esds', 0, 0, es);
}

function dOps(t: AudioTrack): BoxPart {
  const head = parseOpusHead(t.init);
  const channels = head?.channels ?? (t.channels > 0 ? t.channels : 2);
  const family = head?.mapping ? head.mappingFamily : 0;
  const mapLen = family !== 0 && head?.mapping ? 2 + channels : 0;
  return box(
    'dOps',
    fields(11 + mapLen, (w) => {
      // Big-endian here, unlike the little-endian OpusHead it is taken from.
      w.u8(0).u8(channels).u16(head?.preSkip ?? 0).u32(head?.inputSampleRate ?? t.rate);
      w.u16((head?.outputGain ?? 0) & 0xffff).u8(family);
      if (mapLen > 0 && head?.mapping) {
        w.u8(head.mapping.streams).u8(head.mapping.coupled);
        for (let i = 0; i < channels; i++) w.u8(head.mapping.channelMap[i]!);
      }
    }),
  );
}

const AC3_BITRATES_KBPS = [32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640];

/**
 * The dac3 payload (fscod(2) bsid(5) bsmod(3) acmod(3) lfeon(1) bit_rate_code(5) reserved(5))
 * from an AC-3 syncframe, or undefined when `frame` does not start with one.
 */
export function dac3FromFrame(frame: Buffer): Buffer | undefined {
  const h = parseAc3Header(frame);
  if (!h) return undefined;
  const fscod = frame[4]! >> 6;
  const frmsizecod = frame[4]! & 0x3f;
  const bsmod = frame[5]! & 7;
  return packDac3(fscod, h.bsid, bsmod, h.acmod, h.lfe, frmsizecod >> 1);
}

function packDac3(fscod: number, bsid: number, bsmod: number, acmod: number, lfe: boolean, bitRateCode: number): Buffer {
  const v = (fscod << 22) | (bsid << 17) | (bsmod << 14) | (acmod << 11) | ((lfe ? 1 : 0) << 10) | (bitRateCode << 5);
  return fields(3, (w) => w.u24(v));
}

/** dac3 guessed from the track fields when no frame is at hand. */
function dac3FromTrack(t: AudioTrack): Buffer {
  const fscod = t.rate === 44100 ? 1 : t.rate === 32000 ? 2 : 0;
  const lfe = t.channels === 6;
  const full = lfe ? 5 : t.channels;
  const acmod = full === 1 ? 1 : full === 3 ? 3 : full === 4 ? 6 : full >= 5 ? 7 : 2;
  const kbps = (t.bps * 8) / 1000;
  let code = 10; // 192 kbit/s
  if (kbps > 0) {
    code = AC3_BITRATES_KBPS.findIndex((k) => k >= kbps);
    if (code < 0) code = AC3_BITRATES_KBPS.length - 1;
  }
  return packDac3(fscod, 8, 0, acmod, lfe, code);
}

/** A default VPCodecConfigurationRecord: profile 0, 8-bit 4:2:0, BT.709, no init data. */
function defaultVpcc(): Buffer {
  return Buffer.from([0, 31, (8 << 4) | (1 << 1), 1, 1, 1, 0, 0]);
}

/** The stsd sample entry (avc1 hvc1 av01 vp09 vp08 mp4a Opus ac-3) with its configuration box. */
export function sampleEntry(t: Track, opts: InitSegmentOptions): BoxPart {
  if (t.type === 'video') {
    const need = (what: string): Buffer => {
      if (t.init.length === 0) throw new HazeError('HAZE_ERR_MALFORMED', `track ${t.id}: ${t.codec} without ${what}`);
      return t.init;
    };
    switch (t.codec) {
      case 'H264':
        return visualEntry('avc1', t, box('avcC', need('avcC')));
      case 'HEVC':
        return visualEntry('hvc1', t, box('hvcC', need('hvcC')));
      case 'AV1':
        return visualEntry('av01', t, box('av1C', need('av1C')));
      case 'VP9':
      case 'VP8':
        return visualEntry(t.codec === 'VP9' ? 'vp09' : 'vp08', t, fullBox('vpcC', 1, 0, t.init.length > 0 ? t.init : defaultVpcc()));
    }
  }
  if (t.type === 'audio') {
    const bitrateBps = Math.max(0, Math.round(t.bps * 8)) >>> 0;
    switch (t.codec) {
      case 'AAC': {
        const rate = trackTimescale(t);
        return audioEntry('mp4a', t.channels || 2, rate, esds(t.id, 0x40, bitrateBps, t.init));
      }
      case 'MP3': {
        // 0x6B: ISO/IEC 11172-3; 0x69: ISO/IEC 13818-3 (the halved rates).
        const objectType = t.rate > 0 && t.rate < 32000 ? 0x69 : 0x6b;
        return audioEntry('mp4a', t.channels || 2, t.rate, esds(t.id, objectType, bitrateBps, undefined));
      }
      case 'opus': {
        const head = parseOpusHead(t.init);
        return audioEntry('Opus', head?.channels ?? (t.channels || 2), OPUS_SAMPLE_RATE, dOps(t));
      }
      case 'AC3': {
        const frame = opts.firstFrames?.get(t.id);
        const cfg = (t.init.length === 3 ? t.init : undefined) ?? (frame ? dac3FromFrame(frame) : undefined) ?? dac3FromTrack(t);
        return audioEntry('ac-3', t.channels || 2, t.rate, box('dac3', cfg));
      }
      default:
        break;
    }
  }
  throw new HazeError('HAZE_ERR_UNSUPPORTED', `fMP4 cannot carry track ${t.id} (${t.type} ${t.codec})`);
}

function emptyTables(): BoxPart[] {
  return [fullBox('stts', 0, 0, u32s([0])), fullBox('stsc', 0, 0, u32s([0])), fullBox('stsz', 0, 0, u32s([0, 0])), fullBox('stco', 0, 0, u32s([0]))];
}

function trak(t: Track, opts: InitSegmentOptions): BoxPart {
  const timescale = trackTimescale(t);
  const video = t.type === 'video';
  const mediaHeader = video ? fullBox('vmhd', 0, 1, fields(8, (w) => w.u32(0).u32(0))) : fullBox('smhd', 0, 0, u32s([0]));
  const dinf = box('dinf', fullBox('dref', 0, 0, u32s([1]), fullBox('url ', 0, 1)));
  const stbl = box('stbl', fullBox('stsd', 0, 0, u32s([1]), sampleEntry(t, opts)), ...emptyTables());
  return box('trak', tkhd(t), box('mdia', mdhd(t, timescale), hdlr(video ? 'vide' : 'soun', video ? 'VideoHandler' : 'SoundHandler'), box('minf', mediaHeader, dinf, stbl)));
}

function trex(trackId: number): BoxPart {
  // default_sample_description_index 1; durations, sizes and flags are always in the trun.
  return fullBox('trex', 0, 0, u32s([trackId, 1, 0, 0, 0]));
}

/**
 * ftyp + moov for the tracks (video and AAC / MP3 / Opus / AC-3 audio; anything else is a
 * HAZE_ERR_UNSUPPORTED: filter with mp4Supports). Track ids in the file are Track.id.
 */
export function initSegment(tracks: readonly Track[], opts: InitSegmentOptions = {}): Buffer {
  if (tracks.length === 0) throw new HazeError('HAZE_ERR_INVALID_ARG', 'an init segment needs at least one track');
  const ids = new Set<number>();
  for (const t of tracks) {
    if (!Number.isInteger(t.id) || t.id < 1 || t.id > 0xffff_fffe) throw new HazeError('HAZE_ERR_INVALID_ARG', `track id ${t.id} is not a valid MP4 track_ID`);
    if (ids.has(t.id)) throw new HazeError('HAZE_ERR_INVALID_ARG', `duplicate track id ${t.id}`);
    ids.add(t.id);
  }
  const brands = opts.compatibleBrands ?? ['iso6', 'cmfc', 'isom', 'iso5', 'dash', 'mp41'];
  const nextTrackId = Math.max(...ids) + 1;
  const moov = box('moov', mvhd(nextTrackId), ...tracks.map((t) => trak(t, opts)), box('mvex', ...tracks.map((t) => trex(t.id))));
  return serialize(ftyp(opts.majorBrand ?? 'iso6', brands), moov);
}
