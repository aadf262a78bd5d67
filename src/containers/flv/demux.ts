// FLV tag bodies -> Haze tracks and packets. Follows the FLV specification v10.1 Annex E.4.2
// (AUDIODATA / AACAUDIODATA), E.4.3 (VIDEODATA / AVCVIDEOPACKET), E.4.4 (SCRIPTDATA onMetaData),
// and Enhanced RTMP v1/v2 (veovera enhanced-rtmp, "Enhanced Audio" / "Enhanced Video"):
//
//   legacy video: FrameType(4) CodecID(4) | AVC: AVCPacketType u8, CompositionTime si24, data
//   enhanced:     IsExHeader(1)=1 FrameType(3) VideoPacketType(4) [ModEx ...] [Multitrack ...]
//                 FourCC(4) | SequenceStart: config record | CodedFrames: (avc1/hvc1: si24 cts)
//                 data | CodedFramesX: data (cts 0) | SequenceEnd | Metadata: AMF | MPEG2TS...
//   legacy audio: SoundFormat(4) SoundRate(2) SoundSize(1) SoundType(1) | AAC: AACPacketType u8
//   enhanced:     SoundFormat(4)=9 AudioPacketType(4) [ModEx ...] [Multitrack ...] FourCC(4) ...
//
// The same bodies are RTMP audio/video message payloads, so this class serves both FLV files and
// RTMP publishers. Packet data are subarrays of the body (no copies).

import type { AudioCodec, AudioTrack, Packet, Track, VideoCodec, VideoTrack } from '../../media/types.js';
import { ByteReader } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';
import { amf0Get, amf0String, decodeAmf0, type Amf0Value } from '../amf/amf0.js';
import { audioConfigParams, audioFrameParams, flvPcmData, flvPcmParams, videoParams, type AudioParams } from './codec-info.js';
import { FLV_TAG_AUDIO, FLV_TAG_SCRIPT, FLV_TAG_VIDEO, readFlvTags } from './tags.js';

// ---- enums and FourCCs (shared with mux.ts) ----------------------------------------------------

export const VideoPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  CodedFramesX: 3,
  Metadata: 4,
  MPEG2TSSequenceStart: 5,
  Multitrack: 6,
  ModEx: 7,
} as const;

export const AudioPacketType = {
  SequenceStart: 0,
  CodedFrames: 1,
  SequenceEnd: 2,
  MultichannelConfig: 4,
  Multitrack: 5,
  ModEx: 7,
} as const;

export const AvMultitrackType = { OneTrack: 0, ManyTracks: 1, ManyTracksManyCodecs: 2 } as const;

/** FourCC as the big-endian u32 that enhanced onMetaData uses for videocodecid/audiocodecid. */
export function fourCcValue(fourCc: string): number {
  return Buffer.from(fourCc, 'latin1').readUInt32BE(0);
}

export const VIDEO_FOURCC: Readonly<Record<string, VideoCodec>> = { avc1: 'H264', hvc1: 'HEVC', av01: 'AV1', vp09: 'VP9', vp08: 'VP8' };
export const VIDEO_CODEC_FOURCC: Readonly<Record<VideoCodec, string>> = { H264: 'avc1', HEVC: 'hvc1', AV1: 'av01', VP9: 'vp09', VP8: 'vp08' };
export const AUDIO_FOURCC: Readonly<Record<string, AudioCodec>> = { Opus: 'opus', 'ac-3': 'AC3', mp4a: 'AAC', '.mp3': 'MP3', fLaC: 'FLAC' };
export const AUDIO_CODEC_FOURCC: Readonly<Partial<Record<AudioCodec, string>>> = { opus: 'Opus', AC3: 'ac-3', AAC: 'mp4a', MP3: '.mp3', FLAC: 'fLaC' };

/** Legacy CodecID 7 (AVC) and SoundFormat values. */
export const FLV_CODEC_AVC = 7;
export const FLV_CODEC_HEVC_LEGACY = 12;
export const FLV_SOUND_PCM = 0;
export const FLV_SOUND_MP3 = 2;
export const FLV_SOUND_PCM_LE = 3;
export const FLV_SOUND_ALAW = 7;
export const FLV_SOUND_ULAW = 8;
export const FLV_SOUND_EX_HEADER = 9;
export const FLV_SOUND_AAC = 10;
export const FLV_SOUND_MP3_8K = 14;

const LEGACY_RATES = [5512, 11025, 22050, 44100];

// ---- the demuxer ---------------------------------------------------------------------------------

export interface FlvDemuxerOptions {
  /** Track id given to the video track (default 1). */
  videoTrackId?: number;
  /** Track id given to the audio track (default 2). */
  audioTrackId?: number;
}

export interface FlvVideoResult {
  /** Set when this body defined the video track or changed it (new sequence header). */
  track?: VideoTrack;
  packet?: Packet;
}

export interface FlvAudioResult {
  track?: AudioTrack;
  packet?: Packet;
}

export interface FlvScriptResult {
  /** The first AMF0 value when it is a string ("onMetaData", "@setDataFrame", ...). */
  name: string | undefined;
  values: Amf0Value[];
  /** Tracks whose fields this metadata changed (already existing tracks only). */
  tracks: Track[];
}

/** Fields of onMetaData that refine tracks (FLV spec E.5). */
export interface FlvMetadata {
  width?: number;
  height?: number;
  framerate?: number;
  audiosamplerate?: number;
  audiochannels?: number;
  stereo?: boolean;
  videodatarate?: number;
  audiodatarate?: number;
}

function num(v: Amf0Value): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export class FlvDemuxer {
  readonly videoTrackId: number;
  readonly audioTrackId: number;
  video: VideoTrack | undefined;
  audio: AudioTrack | undefined;
  /** The onMetaData fields seen so far. */
  readonly metadata: FlvMetadata = {};

  constructor(opts: FlvDemuxerOptions = {}) {
    this.videoTrackId = opts.videoTrackId ?? 1;
    this.audioTrackId = opts.audioTrackId ?? 2;
  }

  /** The tracks defined so far, video first. */
  get tracks(): Track[] {
    const t: Track[] = [];
    if (this.video) t.push(this.video);
    if (this.audio) t.push(this.audio);
    return t;
  }

  // ---- script data -------------------------------------------------------------------------

  /** Parses a script body; onMetaData (also behind "@setDataFrame") fills track fields. */
  scriptBody(body: Buffer): FlvScriptResult {
    const values = decodeAmf0(body);
    let name = amf0String(values[0]);
    let idx = 1;
    if (name === '@setDataFrame') {
      name = amf0String(values[1]);
      idx = 2;
    }
    const tracks: Track[] = [];
    if (name === 'onMetaData') {
      const data = values[idx];
      const m = this.metadata;
      const read = (k: string): number | undefined => num(amf0Get(data ?? null, k));
      const set = <K extends keyof FlvMetadata>(k: K, v: FlvMetadata[K] | undefined): void => {
        if (v !== undefined) m[k] = v;
      };
      set('width', read('width'));
      set('height', read('height'));
      set('framerate', read('framerate'));
      set('audiosamplerate', read('audiosamplerate'));
      set('audiochannels', read('audiochannels'));
      set('videodatarate', read('videodatarate'));
      set('audiodatarate', read('audiodatarate'));
      const stereo = amf0Get(data ?? null, 'stereo');
      if (typeof stereo === 'boolean') m.stereo = stereo;
      // Tracks already handed out are never mutated: a change is a new track object.
      if (this.video) {
        const v = { ...this.video };
        if (this.applyVideoMeta(v, true)) tracks.push((this.video = v));
      }
      if (this.audio) {
        const a = { ...this.audio };
        if (this.applyAudioMeta(a, true)) tracks.push((this.audio = a));
      }
    }
    return { name, values, tracks };
  }

  /** Fills width/height/fpks/bps from metadata where the track lacks them; returns whether it changed. */
  private applyVideoMeta(t: VideoTrack, onlyMissing: boolean): boolean {
    const m = this.metadata;
    let changed = false;
    const w = m.width !== undefined ? Math.round(m.width) : 0;
    const h = m.height !== undefined ? Math.round(m.height) : 0;
    if (w > 0 && h > 0 && (!onlyMissing || t.width === 0 || t.height === 0)) {
      if (t.width !== w || t.height !== h) changed = true;
      t.width = w;
      t.height = h;
    }
    if (m.framerate !== undefined && m.framerate > 0 && t.fpks === 0) {
      t.fpks = Math.round(m.framerate * 1000);
      changed = true;
    }
    if (m.videodatarate !== undefined && m.videodatarate > 0 && t.bps === 0) {
      // onMetaData data rates are kbit/s; DTSC bps is bytes per second.
      t.bps = Math.round((m.videodatarate * 1000) / 8);
      changed = true;
    }
    return changed;
  }

  private applyAudioMeta(t: AudioTrack, onlyMissing: boolean): boolean {
    const m = this.metadata;
    let changed = false;
    // Codec headers (ASC, MP3 header, OpusHead) are authoritative; metadata only fills gaps.
    if (m.audiosamplerate !== undefined && m.audiosamplerate > 0 && (!onlyMissing || t.rate === 0)) {
      if (t.rate !== m.audiosamplerate) changed = true;
      t.rate = Math.round(m.audiosamplerate);
    }
    const ch = m.audiochannels !== undefined && m.audiochannels > 0 ? Math.round(m.audiochannels) : m.stereo !== undefined ? (m.stereo ? 2 : 1) : 0;
    if (ch > 0 && (!onlyMissing || t.channels === 0)) {
      if (t.channels !== ch) changed = true;
      t.channels = ch;
    }
    if (m.audiodatarate !== undefined && m.audiodatarate > 0 && t.bps === 0) {
      t.bps = Math.round((m.audiodatarate * 1000) / 8);
      changed = true;
    }
    return changed;
  }

  // ---- video ---------------------------------------------------------------------------------

  videoBody(timestampMs: number, body: Buffer): FlvVideoResult {
    const r = new ByteReader(body);
    const b0 = r.u8();
    if (b0 & 0x80) return this.exVideo(timestampMs, r, b0);
    const frameType = b0 >> 4;
    const codecId = b0 & 0x0f;
    // Video info / command frame: one command byte, no picture.
    if (frameType === 5) return {};
    // CodecID 12 is the pre-Enhanced-RTMP HEVC convention (same layout as AVC, hvcC as config)
    // that some Chinese CDNs and older encoders still send.
    const codec: VideoCodec | undefined = codecId === FLV_CODEC_AVC ? 'H264' : codecId === FLV_CODEC_HEVC_LEGACY ? 'HEVC' : undefined;
    if (!codec) throw new HazeError('HAZE_ERR_UNSUPPORTED', `FLV video codec id ${codecId}`);
    const packetType = r.u8();
    const cts = this.si24(r);
    if (packetType === 0) return this.videoConfig(codec, r.bytes(r.remaining));
    if (packetType === 2) return {};
    if (packetType !== 1) throw new HazeError('HAZE_ERR_MALFORMED', `AVCPacketType ${packetType}`);
    return this.videoFrame(codec, timestampMs, cts, frameType === 1 || frameType === 4, r.bytes(r.remaining));
  }

  private si24(r: ByteReader): number {
    const v = r.u24();
    return v & 0x800000 ? v - 0x1000000 : v;
  }

  private exVideo(timestampMs: number, r: ByteReader, b0: number): FlvVideoResult {
    const frameType = (b0 >> 4) & 7;
    let packetType = b0 & 0x0f;
    packetType = this.skipModEx(r, packetType, VideoPacketType.ModEx);
    if (packetType !== VideoPacketType.Metadata && frameType === 5) return {}; // command frame
    let fourCc: string;
    let payload: ByteReader = r;
    if (packetType === VideoPacketType.Multitrack) {
      const sel = this.selectTrack(r, VideoPacketType.Multitrack);
      if (!sel) return {};
      ({ packetType, fourCc, payload } = sel);
    } else {
      fourCc = r.bytes(4).toString('latin1');
    }
    const codec = Object.hasOwn(VIDEO_FOURCC, fourCc) ? VIDEO_FOURCC[fourCc] : undefined;
    if (packetType === VideoPacketType.Metadata || packetType === VideoPacketType.SequenceEnd) {
      // Metadata carries AMF colorInfo (HDR); nothing in the Haze track model holds it yet.
      return {};
    }
    if (!codec) throw new HazeError('HAZE_ERR_UNSUPPORTED', `enhanced FLV video FourCC ${JSON.stringify(fourCc)}`);
    const keyframe = frameType === 1 || frameType === 4;
    switch (packetType) {
      case VideoPacketType.SequenceStart:
        return this.videoConfig(codec, payload.bytes(payload.remaining));
      case VideoPacketType.MPEG2TSSequenceStart: {
        // AV1 video descriptor (AV1 in MPEG-2 TS §2.2): tag, length, then the same 4 bytes an
        // av1C record starts with. Used as init only when no av1C was sent.
        if (codec !== 'AV1') throw new HazeError('HAZE_ERR_UNSUPPORTED', `MPEG2TSSequenceStart for ${codec}`);
        payload.skip(2);
        const desc = payload.bytes(4);
        if (this.video?.codec === 'AV1' && this.video.init.length > 0) return {};
        return this.videoConfig('AV1', Buffer.from(desc));
      }
      case VideoPacketType.CodedFrames: {
        const cts = codec === 'H264' || codec === 'HEVC' ? this.si24(payload) : 0;
        return this.videoFrame(codec, timestampMs, cts, keyframe, payload.bytes(payload.remaining));
      }
      case VideoPacketType.CodedFramesX:
        return this.videoFrame(codec, timestampMs, 0, keyframe, payload.bytes(payload.remaining));
      default:
        throw new HazeError('HAZE_ERR_UNSUPPORTED', `enhanced FLV VideoPacketType ${packetType}`);
    }
  }

  /**
   * Skips ModEx prefixes (size u8+1, or u16+1 when the u8 is 255; data; ModExType(4) and the next
   * PacketType(4)). TimestampOffsetNano is below the 1 ms resolution of Haze timestamps.
   */
  private skipModEx(r: ByteReader, packetType: number, modEx: number): number {
    let rounds = 0;
    while (packetType === modEx) {
      if (++rounds > 16) throw new HazeError('HAZE_ERR_MALFORMED', 'too many ModEx prefixes');
      let size = r.u8() + 1;
      if (size === 256) size = r.u16() + 1;
      r.skip(size);
      packetType = r.u8() & 0x0f;
    }
    return packetType;
  }

  /**
   * Multitrack (Enhanced RTMP v2): Haze carries one video and one audio track per FLV stream,
   * so the default track (trackId 0, "highest priority") is taken and the others skipped.
   */
  private selectTrack(r: ByteReader, multitrack: number): { packetType: number; fourCc: string; payload: ByteReader } | undefined {
    const b = r.u8();
    const mtType = b >> 4;
    const packetType = b & 0x0f;
    if (packetType === multitrack) throw new HazeError('HAZE_ERR_MALFORMED', 'nested Multitrack');
    if (mtType > AvMultitrackType.ManyTracksManyCodecs) throw new HazeError('HAZE_ERR_UNSUPPORTED', `AvMultitrackType ${mtType}`);
    let fourCc = mtType !== AvMultitrackType.ManyTracksManyCodecs ? r.bytes(4).toString('latin1') : '';
    while (r.remaining > 0) {
      if (mtType === AvMultitrackType.ManyTracksManyCodecs) fourCc = r.bytes(4).toString('latin1');
      const trackId = r.u8();
      const size = mtType === AvMultitrackType.OneTrack ? r.remaining : r.u24();
      const data = r.bytes(size);
      if (trackId === 0) return { packetType, fourCc, payload: new ByteReader(data) };
      if (mtType === AvMultitrackType.OneTrack) break;
    }
    return undefined;
  }

  private videoConfig(codec: VideoCodec, init: Buffer): FlvVideoResult {
    const old = this.video;
    if (old && old.codec === codec && old.init.equals(init)) return {};
    const params = videoParams(codec, init);
    const t: VideoTrack = {
      type: 'video',
      id: this.videoTrackId,
      codec,
      // Copied: the body buffer may be a reused chunk, the track outlives it.
      init: Buffer.from(init),
      bps: 0,
      lang: 'und',
      width: params?.width ?? 0,
      height: params?.height ?? 0,
      // The SPS's VUI timing when it has one; otherwise what the previous header or onMetaData gave.
      fpks: params?.fpks || (old?.fpks ?? 0),
    };
    this.applyVideoMeta(t, true);
    this.video = t;
    return { track: t };
  }

  private videoFrame(codec: VideoCodec, timeMs: number, offsetMs: number, keyframe: boolean, data: Buffer): FlvVideoResult {
    let track: VideoTrack | undefined;
    if (!this.video || this.video.codec !== codec) {
      // H.264/HEVC frames are undecodable without their parameter-set record: drop until it comes.
      if (codec === 'H264' || codec === 'HEVC') return {};
      track = this.videoConfig(codec, Buffer.alloc(0)).track;
    }
    const packet: Packet = { trackId: this.videoTrackId, timeMs, offsetMs, keyframe, data };
    return track ? { track, packet } : { packet };
  }

  // ---- audio ---------------------------------------------------------------------------------

  audioBody(timestampMs: number, body: Buffer): FlvAudioResult {
    // An empty audio message is RTMP's "silence" signal, not a frame.
    if (body.length === 0) return {};
    const r = new ByteReader(body);
    const b0 = r.u8();
    const format = b0 >> 4;
    if (format === FLV_SOUND_EX_HEADER) return this.exAudio(timestampMs, r, b0);
    const flagRate = LEGACY_RATES[(b0 >> 2) & 3]!;
    const flagChannels = (b0 & 1) + 1;
    switch (format) {
      case FLV_SOUND_AAC: {
        const packetType = r.u8();
        if (packetType === 0) return this.audioConfig('AAC', r.bytes(r.remaining), { rate: flagRate, channels: flagChannels });
        if (packetType !== 1) throw new HazeError('HAZE_ERR_MALFORMED', `AACPacketType ${packetType}`);
        return this.audioFrame('AAC', timestampMs, r.bytes(r.remaining));
      }
      case FLV_SOUND_MP3:
      case FLV_SOUND_MP3_8K: {
        const data = r.bytes(r.remaining);
        const p = audioFrameParams('MP3', data) ?? { rate: format === FLV_SOUND_MP3_8K ? 8000 : flagRate, channels: flagChannels };
        return this.audioFrame('MP3', timestampMs, data, p);
      }
      case FLV_SOUND_PCM:
      case FLV_SOUND_PCM_LE: {
        const p = flvPcmParams(b0);
        return this.audioFrame('PCM', timestampMs, flvPcmData(r.bytes(r.remaining), p.size), p);
      }
      case FLV_SOUND_ALAW:
      case FLV_SOUND_ULAW:
        // G.711 in FLV is 8 kHz by definition; the rate flags are not meaningful for it.
        return this.audioFrame(format === FLV_SOUND_ALAW ? 'ALAW' : 'ULAW', timestampMs, r.bytes(r.remaining), { rate: 8000, channels: flagChannels });
      default:
        throw new HazeError('HAZE_ERR_UNSUPPORTED', `FLV sound format ${format}`);
    }
  }

  private exAudio(timestampMs: number, r: ByteReader, b0: number): FlvAudioResult {
    let packetType = this.skipModEx(r, b0 & 0x0f, AudioPacketType.ModEx);
    let fourCc: string;
    let payload: ByteReader = r;
    if (packetType === AudioPacketType.Multitrack) {
      const sel = this.selectTrack(r, AudioPacketType.Multitrack);
      if (!sel) return {};
      ({ packetType, fourCc, payload } = sel);
    } else {
      fourCc = r.bytes(4).toString('latin1');
    }
    const codec = Object.hasOwn(AUDIO_FOURCC, fourCc) ? AUDIO_FOURCC[fourCc] : undefined;
    if (!codec) throw new HazeError('HAZE_ERR_UNSUPPORTED', `enhanced FLV audio FourCC ${JSON.stringify(fourCc)}`);
    switch (packetType) {
      case AudioPacketType.SequenceStart:
        return this.audioConfig(codec, payload.bytes(payload.remaining));
      case AudioPacketType.CodedFrames:
        return this.audioFrame(codec, timestampMs, payload.bytes(payload.remaining));
      case AudioPacketType.SequenceEnd:
        return {};
      case AudioPacketType.MultichannelConfig: {
        payload.u8(); // channel order
        const channels = payload.u8();
        if (this.audio && channels > 0 && this.audio.channels !== channels) {
          this.audio = { ...this.audio, channels };
          return { track: this.audio };
        }
        return {};
      }
      default:
        throw new HazeError('HAZE_ERR_UNSUPPORTED', `enhanced FLV AudioPacketType ${packetType}`);
    }
  }

  private audioConfig(codec: AudioCodec, init: Buffer, fallback?: AudioParams): FlvAudioResult {
    const old = this.audio;
    if (old && old.codec === codec && old.init.equals(init)) return {};
    const p = audioConfigParams(codec, init);
    const t = this.makeAudio(codec, Buffer.from(init), p ?? fallback);
    // Opus with an empty ID header defaults to stereo at 48 kHz (enhanced RTMP "Opus Sequence header").
    if (codec === 'opus' && !p) {
      t.rate = 48000;
      if (t.channels === 0) t.channels = 2;
    }
    this.audio = t;
    return { track: t };
  }

  private makeAudio(codec: AudioCodec, init: Buffer, p: (AudioParams & { size?: number }) | undefined): AudioTrack {
    const t: AudioTrack = {
      type: 'audio',
      id: this.audioTrackId,
      codec,
      init,
      bps: 0,
      lang: 'und',
      rate: p?.rate ?? 0,
      channels: p?.channels ?? 0,
      size: p?.size ?? (codec === 'ALAW' || codec === 'ULAW' ? 8 : 16),
    };
    this.applyAudioMeta(t, true);
    return t;
  }

  private audioFrame(codec: AudioCodec, timeMs: number, data: Buffer, params?: AudioParams & { size?: number }): FlvAudioResult {
    let track: AudioTrack | undefined;
    const cur = this.audio;
    if (!cur || cur.codec !== codec) {
      // AAC frames need their AudioSpecificConfig; FLAC its STREAMINFO.
      if (codec === 'AAC' || codec === 'FLAC') return {};
      const p = params ?? audioFrameParams(codec, data);
      track = this.makeAudio(codec, Buffer.alloc(0), p ?? (codec === 'opus' ? { rate: 48000, channels: 2 } : undefined));
      this.audio = track;
    } else if (params && (params.rate !== cur.rate || params.channels !== cur.channels || (params.size ?? cur.size) !== cur.size) && cur.init.length === 0) {
      // Header-described codecs (MP3, G.711, PCM): a change of rate or mode is a new track definition.
      track = { ...cur, rate: params.rate, channels: params.channels, size: params.size ?? cur.size };
      this.audio = track;
    }
    const packet: Packet = { trackId: this.audioTrackId, timeMs, offsetMs: 0, keyframe: true, data };
    return track ? { track, packet } : { packet };
  }
}

// ---- whole files -----------------------------------------------------------------------------

export interface FlvFile {
  /** Final track definitions (the last sequence header of each type wins). */
  tracks: Track[];
  /** Packets in file order. */
  packets: Packet[];
  /** The decoded onMetaData values (or undefined if the file had none). */
  metadata: FlvMetadata;
}

/**
 * Demuxes a complete FLV file held in memory (tests and tools). Tags with the Filter bit
 * (encrypted) are refused. Script tags other than onMetaData are ignored.
 */
export function parseFlvFile(buf: Buffer, opts: FlvDemuxerOptions = {}): FlvFile {
  const { tags } = readFlvTags(buf);
  const demux = new FlvDemuxer(opts);
  const packets: Packet[] = [];
  for (const tag of tags) {
    if (tag.filtered) throw new HazeError('HAZE_ERR_UNSUPPORTED', 'encrypted (filtered) FLV tag');
    if (tag.type === FLV_TAG_VIDEO) {
      const res = demux.videoBody(tag.timeMs, tag.body);
      if (res.packet) packets.push(res.packet);
    } else if (tag.type === FLV_TAG_AUDIO) {
      const res = demux.audioBody(tag.timeMs, tag.body);
      if (res.packet) packets.push(res.packet);
    } else if (tag.type === FLV_TAG_SCRIPT) {
      demux.scriptBody(tag.body);
    }
  }
  return { tracks: demux.tracks, packets, metadata: demux.metadata };
}

