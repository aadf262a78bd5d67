// Matroska TrackEntry -> Haze Track (RFC 9559 §5.1.4 Tracks, codec mappings from the Matroska
// codec specification, "Matroska Codec Mappings"): CodecID -> MistServer codec name,
// CodecPrivate -> init, DefaultDuration -> fpks, Language / LanguageBCP47 -> ISO-639-2.
//
//   TrackEntry: TrackNumber(D7) TrackType(83) CodecID(86) CodecPrivate(63A2) DefaultDuration(23E383)
//               Language(22B59C) LanguageBCP47(22B59D) CodecDelay(56AA) ContentEncodings(6D80)
//               Video(E0){PixelWidth(B0) PixelHeight(BA)}
//               Audio(E1){SamplingFrequency(B5) OutputSamplingFrequency(78B5) Channels(9F) BitDepth(6264)}

import { HazeError, isHazeError } from '../../util/errors.js';
import type { AudioCodec, Track, VideoCodec } from '../../media/types.js';
import { aacChannelCount, aacSamplingIndex, buildAsc, parseAsc, ascOutputRate } from '../../media/aac.js';
import { parseAvcC } from '../../media/h264.js';
import { parseHvcC } from '../../media/hevc.js';
import { parseOpusHead } from '../../media/audio-headers.js';
import { child, ID, readFloat, readString, readUint, type EbmlElement } from './ebml.js';
import { reorderDelay } from './reorder.js';

/** Element IDs the writer's table lacks (RFC 9559 §5.1.4.1). */
export const TRACK_ID = {
  LanguageBCP47: 0x22b59d,
  OutputSamplingFrequency: 0x78b5,
  ContentEncodings: 0x6d80,
  Name: 0x536e,
} as const;

const TRACK_TYPE_VIDEO = 1;
const TRACK_TYPE_AUDIO = 2;
const TRACK_TYPE_SUBTITLE = 17;

/** Everything the block parser needs about one track besides the Haze Track itself. */
export interface MkvTrackInfo {
  track: Track;
  /** Matroska TrackNumber (= track.id). */
  number: number;
  /** DefaultDuration in ns, 0 when absent (used for laced frame timestamps). */
  defaultDurationNs: number;
  /** CodecDelay in ns; subtracted from block timestamps (RFC 9559 §5.1.4.1.15). */
  codecDelayNs: number;
  /** NAL length size of H.264/HEVC blocks when it is not 4 (packets get rewritten), else 0. */
  nalLengthSize: number;
  /** Frames of decoding delay to derive DTS from PTS (H.264/HEVC with reordering), else 0. */
  reorderDelay: number;
  /** A_PCM/INT/LIT: bytes per sample to swap to Haze's big-endian PCM, else 0. */
  swapBytes: number;
}

/** ISO-639-1 -> ISO-639-2/B for the languages one commonly meets in LanguageBCP47. */
const ISO639_1: Record<string, string> = {
  en: 'eng', de: 'ger', fr: 'fre', es: 'spa', it: 'ita', nl: 'dut', pt: 'por', ru: 'rus', ja: 'jpn', zh: 'chi',
  ko: 'kor', ar: 'ara', sv: 'swe', no: 'nor', nb: 'nob', da: 'dan', fi: 'fin', pl: 'pol', cs: 'cze', tr: 'tur',
  el: 'gre', he: 'heb', hi: 'hin', hu: 'hun', uk: 'ukr', ro: 'rum', th: 'tha', vi: 'vie', id: 'ind',
};

function language(entry: EbmlElement): string {
  const bcp = child(entry, TRACK_ID.LanguageBCP47);
  if (bcp) {
    // LanguageBCP47 wins over Language when present (RFC 9559 §5.1.4.1.20).
    const primary = readString(bcp).split('-')[0]!.toLowerCase();
    if (/^[a-z]{3}$/.test(primary)) return primary;
    return ISO639_1[primary] ?? 'und';
  }
  const lang = child(entry, ID.Language);
  // The element's default is "eng" (RFC 9559 §5.1.4.1.19); only an explicit value says otherwise.
  if (!lang) return 'eng';
  const v = readString(lang).split('-')[0]!.toLowerCase();
  return /^[a-z]{3}$/.test(v) ? v : 'und';
}

function uintChild(el: EbmlElement | undefined, id: number, dflt: number): number {
  const c = el ? child(el, id) : undefined;
  return c ? readUint(c) : dflt;
}

function floatChild(el: EbmlElement | undefined, id: number, dflt: number): number {
  const c = el ? child(el, id) : undefined;
  const v = c ? readFloat(c) : dflt;
  return Number.isFinite(v) && v > 0 ? v : dflt;
}

/** Object types of the deprecated A_AAC/MPEGx/PROFILE CodecIDs (before CodecPrivate held the ASC). */
const OLD_AAC_OBJECT: Record<string, number> = { MAIN: 1, LC: 2, SSR: 3, LTP: 4, 'LC/SBR': 5 };

const VIDEO_CODECS: Record<string, VideoCodec> = {
  'V_MPEG4/ISO/AVC': 'H264',
  'V_MPEGH/ISO/HEVC': 'HEVC',
  V_AV1: 'AV1',
  V_VP8: 'VP8',
  V_VP9: 'VP9',
};

const AUDIO_CODECS: Record<string, AudioCodec> = {
  A_AAC: 'AAC',
  A_OPUS: 'opus',
  A_VORBIS: 'vorbis',
  'A_MPEG/L3': 'MP3',
  A_AC3: 'AC3',
  A_FLAC: 'FLAC',
  'A_PCM/INT/BIG': 'PCM',
  'A_PCM/INT/LIT': 'PCM',
};

/**
 * Maps one TrackEntry. Returns a string (the reason) for a track Haze cannot carry, so the
 * caller can skip it with a warning; throws HazeError only for a structurally broken entry.
 */
export function parseTrackEntry(entry: EbmlElement): MkvTrackInfo | string {
  const numberEl = child(entry, ID.TrackNumber);
  if (!numberEl) throw new HazeError('HAZE_ERR_MALFORMED', `TrackEntry at ${entry.offset} without TrackNumber`);
  const number = readUint(numberEl);
  if (number < 1 || number > 0xffff) throw new HazeError('HAZE_ERR_MALFORMED', `TrackNumber ${number} at ${entry.offset}`);
  const codecEl = child(entry, ID.CodecID);
  const codecId = codecEl ? readString(codecEl) : '';
  const type = uintChild(entry, ID.TrackType, 0);
  if (child(entry, TRACK_ID.ContentEncodings)) {
    // Header stripping / zlib / encryption would need per-frame rewriting; not done (yet).
    return `track ${number} (${codecId}): ContentEncodings not supported`;
  }
  const privEl = child(entry, ID.CodecPrivate);
  const priv = privEl ? privEl.data : Buffer.alloc(0);
  const defaultDurationNs = uintChild(entry, ID.DefaultDuration, 0);
  const codecDelayNs = uintChild(entry, ID.CodecDelay, 0);
  const lang = language(entry);
  const base = { number, defaultDurationNs, codecDelayNs, nalLengthSize: 0, reorderDelay: 0, swapBytes: 0 };

  if (type === TRACK_TYPE_VIDEO) {
    const codec = VIDEO_CODECS[codecId];
    if (!codec) return `track ${number}: video codec ${codecId || '(none)'} not supported`;
    const video = child(entry, ID.Video);
    const width = uintChild(video, ID.PixelWidth, 0);
    const height = uintChild(video, ID.PixelHeight, 0);
    // DefaultDuration is the frame duration in ns; fpks = frames per 1000 s.
    const fpks = defaultDurationNs > 0 ? Math.round(1e12 / defaultDurationNs) : 0;
    let init = priv;
    let nalLengthSize = 0;
    let delay = 0;
    if (codec === 'H264' || codec === 'HEVC') {
      try {
        const cfg = codec === 'H264' ? parseAvcC(priv) : parseHvcC(priv);
        if (cfg.nalLengthSize !== 4) {
          nalLengthSize = cfg.nalLengthSize;
          // Packets get 4-byte lengths, so the record must say lengthSizeMinusOne = 3.
          init = Buffer.from(priv);
          const at = codec === 'H264' ? 4 : 21;
          init[at] = init[at]! | 3;
        }
        delay = reorderDelay(codec, cfg.sps[0]);
      } catch (err) {
        if (!isHazeError(err)) throw err;
        return `track ${number}: ${codecId} CodecPrivate unreadable (${err.message})`;
      }
    }
    return {
      ...base,
      nalLengthSize,
      reorderDelay: delay,
      track: { type: 'video', id: number, codec, init, bps: 0, lang, width, height, fpks },
    };
  }

  if (type === TRACK_TYPE_AUDIO) {
    const audio = child(entry, ID.Audio);
    let rate = floatChild(audio, ID.SamplingFrequency, 8000);
    let channels = uintChild(audio, ID.Channels, 1);
    const bitDepth = uintChild(audio, ID.BitDepth, 0);
    let codec = AUDIO_CODECS[codecId];
    let init = priv;
    if (!codec && codecId.startsWith('A_AAC/')) {
      // A_AAC/MPEG2/LC, A_AAC/MPEG4/LC/SBR ...: no ASC stored, build one from the Audio fields.
      const profile = codecId.replace(/^A_AAC\/MPEG[24]\//, '');
      const objectType = OLD_AAC_OBJECT[profile];
      if (objectType === undefined) return `track ${number}: ${codecId} not supported`;
      const outRate = floatChild(audio, TRACK_ID.OutputSamplingFrequency, objectType === 5 ? rate * 2 : rate);
      const chCfg = channels >= 1 && channels <= 6 ? channels : channels === 8 ? 7 : 0;
      init = buildAsc({
        objectType,
        sampleRate: Math.round(rate),
        samplingIndex: aacSamplingIndex(Math.round(rate)),
        channelConfig: chCfg,
        ...(objectType === 5 ? { coreObjectType: 2, extensionSampleRate: Math.round(outRate) } : {}),
      });
      codec = 'AAC';
    }
    if (!codec) return `track ${number}: audio codec ${codecId || '(none)'} not supported`;
    let size = 16;
    let swapBytes = 0;
    if (codec === 'AAC') {
      try {
        const asc = parseAsc(init);
        rate = ascOutputRate(asc);
        channels = aacChannelCount(asc.channelConfig) || channels;
      } catch (err) {
        if (!isHazeError(err)) throw err;
        return `track ${number}: A_AAC CodecPrivate unreadable (${err.message})`;
      }
    } else if (codec === 'opus') {
      const head = parseOpusHead(priv);
      if (head) channels = head.channels;
      // Opus always decodes at 48 kHz (RFC 7845 §5.1).
      rate = 48000;
    } else if (codec === 'PCM') {
      if (bitDepth === 0 || bitDepth % 8 !== 0 || bitDepth > 32) return `track ${number}: ${codecId} with BitDepth ${bitDepth} not supported`;
      size = bitDepth;
      // Haze's PCM is big-endian; little-endian samples of 2+ bytes get swapped.
      if (codecId === 'A_PCM/INT/LIT' && bitDepth > 8) swapBytes = bitDepth / 8;
    }
    return {
      ...base,
      swapBytes,
      track: { type: 'audio', id: number, codec, init, bps: 0, lang, rate: Math.round(rate), channels, size },
    };
  }

  if (type === TRACK_TYPE_SUBTITLE && codecId === 'S_TEXT/UTF8') {
    return { ...base, track: { type: 'subtitle', id: number, codec: 'subtitle', init: priv, bps: 0, lang } };
  }
  return `track ${number}: track type ${type} codec ${codecId || '(none)'} not supported`;
}
