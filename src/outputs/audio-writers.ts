// Audio-only progressive outputs (reference §6.3): `/NAME.ogg` (Opus or Vorbis in Ogg, RFC
// 3533/7845), `/NAME.mp3` (the MP3 frames as they are), `/NAME.aac` (ADTS, ISO/IEC 14496-3
// §1.A.2.2, one header per raw frame) and `/NAME.wav` (RIFF/WAVE with unknown sizes; PCM,
// A-law, µ-law). Each carries exactly one audio track and no video; every audio packet is a
// start point, so a listener starts with the newest frame.

import { randomBytes } from 'node:crypto';
import { ADTS_HEADER_SIZE, ADTS_MAX_PAYLOAD, adtsHeader, defaultAsc, parseAsc, writeAdtsHeader, type AudioSpecificConfig } from '../media/aac.js';
import type { AudioTrack, Packet, Track } from '../media/types.js';
import { OggAudioMuxer, oggSupports } from '../containers/ogg/mux.js';
import { convertPcmByteOrder } from '../containers/wav/pcm.js';
import { WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, WAVE_FORMAT_PCM, writeWavHeader } from '../containers/wav/wav.js';
import { isHazeError } from '../util/errors.js';
import type { FormatWriter } from './feed.js';
import type { FormatCapability } from './track-select.js';

const EMPTY = Buffer.alloc(0);

export const OGG_CAPABILITY: FormatCapability = { codecs: { audio: ['opus', 'vorbis'] }, singlePerType: true };
export const MP3_CAPABILITY: FormatCapability = { codecs: { audio: ['MP3'] }, singlePerType: true };
export const AAC_CAPABILITY: FormatCapability = { codecs: { audio: ['AAC'] }, singlePerType: true };
export const WAV_CAPABILITY: FormatCapability = { codecs: { audio: ['PCM', 'ALAW', 'ULAW'] }, singlePerType: true };

/** The first audio track of `tracks` whose codec is in `codecs` (the feed selected at most one). */
function audioTrack(tracks: readonly Track[], codecs: readonly string[]): AudioTrack | undefined {
  return tracks.find((t): t is AudioTrack => t.type === 'audio' && codecs.includes(t.codec));
}

/** Runs a setup step whose HazeError means "this track cannot be carried"; other errors are bugs. */
function attempt<T>(make: () => T): T | undefined {
  try {
    return make();
  } catch (err) {
    if (isHazeError(err)) return undefined;
    throw err;
  }
}

/** What a track change must compare: a new codec config means a new Ogg logical stream. */
function trackKey(t: AudioTrack): string {
  return `${t.id}|${t.codec}|${t.rate}|${t.channels}|${t.init.toString('base64')}`;
}

/**
 * Ogg: header pages, then one page per packet. A track change mid-stream ends the logical
 * stream (EOS page) and chains a new one with a fresh serial (RFC 3533 §4, chaining).
 */
export class OggFeedWriter implements FormatWriter {
  private track: AudioTrack | undefined;
  private muxer: OggAudioMuxer | undefined;
  private key = '';
  private chained: Buffer | null = null;

  setTracks(tracks: readonly Track[]): void {
    const t = audioTrack(tracks, OGG_CAPABILITY.codecs.audio!);
    const key = t ? trackKey(t) : '';
    this.chained = null;
    if (key === this.key) return;
    const old = this.muxer;
    this.key = key;
    this.track = t;
    this.muxer = t && oggSupports(t) ? attempt(() => new OggAudioMuxer(t, randomBytes(4).readUInt32LE(0))) : undefined;
    // current listeners: end the old logical stream, start the new one's headers
    const parts = [old?.end(), this.muxer?.header(Number.NaN)].filter((b): b is Buffer => b !== undefined);
    this.chained = parts.length > 0 ? Buffer.concat(parts) : null;
  }

  header(timeMs: number): Buffer {
    return this.muxer ? this.muxer.header(timeMs) : EMPTY;
  }

  tracksChanged(): Buffer | null {
    const bytes = this.chained;
    this.chained = null;
    return bytes;
  }

  packet(p: Packet): Buffer | null {
    if (!this.muxer || p.trackId !== this.track!.id) return null;
    return this.muxer.packet(p.timeMs, p.data);
  }
}

/** MP3: the frames exactly as published (self-describing, no container). */
export class Mp3FeedWriter implements FormatWriter {
  private trackId = -1;

  setTracks(tracks: readonly Track[]): void {
    this.trackId = audioTrack(tracks, MP3_CAPABILITY.codecs.audio!)?.id ?? -1;
  }

  header(): Buffer {
    return EMPTY;
  }

  /** Every MP3 frame header describes its frame: nothing to tell listeners. */
  tracksChanged(): Buffer | null {
    return null;
  }

  packet(p: Packet): Buffer | null {
    return p.trackId === this.trackId ? p.data : null;
  }
}

/** AAC: each raw frame behind a 7-byte ADTS header made from the AudioSpecificConfig. */
export class AdtsFeedWriter implements FormatWriter {
  private trackId = -1;
  private asc: AudioSpecificConfig | undefined;

  setTracks(tracks: readonly Track[]): void {
    const t = audioTrack(tracks, AAC_CAPABILITY.codecs.audio!);
    this.trackId = t?.id ?? -1;
    // Without a config the track's rate and channels make a plain AAC-LC one; a config ADTS
    // cannot express (object types past 4, rates outside its table) carries nothing.
    this.asc = t && attempt(() => {
      const asc = t.init.length > 0 ? parseAsc(t.init) : defaultAsc(t.rate, t.channels);
      adtsHeader(asc, 0);
      return asc;
    });
  }

  header(): Buffer {
    return EMPTY;
  }

  /** ADTS repeats the config in every frame header. */
  tracksChanged(): Buffer | null {
    return null;
  }

  packet(p: Packet): Buffer | null {
    if (p.trackId !== this.trackId || !this.asc) return null;
    // a frame too long for the 13-bit ADTS length cannot be framed; it is dropped
    if (p.data.length > ADTS_MAX_PAYLOAD) return null;
    const out = Buffer.allocUnsafe(ADTS_HEADER_SIZE + p.data.length);
    writeAdtsHeader(this.asc, p.data.length, out, 0);
    p.data.copy(out, ADTS_HEADER_SIZE);
    return out;
  }
}

const WAV_FORMAT_TAG: Readonly<Record<string, number>> = { PCM: WAVE_FORMAT_PCM, ALAW: WAVE_FORMAT_ALAW, ULAW: WAVE_FORMAT_MULAW };

/**
 * WAV: a live RIFF header (sizes 0xFFFFFFFF), then the samples. PCM goes from Haze's signed
 * big-endian layout to WAV's little-endian (8-bit: unsigned); G.711 bytes pass as they are.
 */
export class WavFeedWriter implements FormatWriter {
  private track: AudioTrack | undefined;
  private headerBytes: Buffer = EMPTY;

  setTracks(tracks: readonly Track[]): void {
    const t = audioTrack(tracks, WAV_CAPABILITY.codecs.audio!);
    const bits = t ? (t.codec === 'PCM' ? t.size : 8) : 0;
    const header =
      t &&
      attempt(() => writeWavHeader({ formatTag: WAV_FORMAT_TAG[t.codec]!, channels: t.channels, sampleRate: t.rate, bitsPerSample: bits }));
    this.track = header ? t : undefined;
    this.headerBytes = header ?? EMPTY;
  }

  header(): Buffer {
    return this.headerBytes;
  }

  /** A WAV header comes once: listeners keep the format they started with. */
  tracksChanged(): Buffer | null {
    return null;
  }

  packet(p: Packet): Buffer | null {
    const t = this.track;
    if (!t || p.trackId !== t.id) return null;
    return t.codec === 'PCM' ? convertPcmByteOrder(p.data, t.size) : p.data;
  }
}
