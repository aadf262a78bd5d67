// Haze tracks and packets -> FLV tag bodies (the reverse of demux.ts), following the FLV
// specification v10.1 Annex E.4.2/E.4.3/E.5 and Enhanced RTMP v1/v2 (ExVideoTagHeader /
// ExAudioTagHeader with FourCC). The bodies are also RTMP audio/video/data message payloads, so
// framing (tags.ts) is kept apart. Each body is allocated once at its final size.
//
//   H.264:            [FrameType<<4 | 7] [AVCPacketType] [CompositionTime si24] [avcC | AVCC NALUs]
//   HEVC/AV1/VP9/VP8: [0x80 | FrameType<<4 | VideoPacketType] [FourCC] ([cts si24]) [data]
//   AAC:              [0xAF] [AACPacketType] [ASC | raw frame]
//   MP3, G.711:       [SoundFormat<<4 | rate<<2 | size<<1 | stereo] [frame]
//   Opus/AC-3/FLAC:   [0x90 | AudioPacketType] [FourCC] [OpusHead/STREAMINFO | frame]

import type { AudioTrack, Packet, Track, VideoTrack } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { Amf0EcmaArray, encodeAmf0 } from '../amf/amf0.js';
import {
  AUDIO_CODEC_FOURCC,
  AudioPacketType,
  FLV_CODEC_AVC,
  FLV_SOUND_AAC,
  FLV_SOUND_ALAW,
  FLV_SOUND_EX_HEADER,
  FLV_SOUND_MP3,
  FLV_SOUND_ULAW,
  VIDEO_CODEC_FOURCC,
  VideoPacketType,
  fourCcValue,
} from './demux.js';
import { FLV_TAG_AUDIO, FLV_TAG_SCRIPT, FLV_TAG_VIDEO, writeFlvHeader, writeFlvTag } from './tags.js';

const SI24_MIN = -0x800000;
const SI24_MAX = 0x7fffff;

function checkCts(offsetMs: number): number {
  const cts = Math.round(offsetMs);
  if (cts < SI24_MIN || cts > SI24_MAX) throw new HazeError('HAZE_ERR_TOO_LARGE', `composition offset ${offsetMs} ms outside SI24`);
  return cts;
}

function writeSi24(b: Buffer, at: number, v: number): void {
  b.writeUIntBE(v < 0 ? v + 0x1000000 : v, at, 3);
}

/** The video tag body (RTMP video message) carrying one packet. */
export function videoTagBody(track: VideoTrack, packet: Packet): Buffer {
  const frameType = packet.keyframe ? 1 : 2;
  const data = packet.data;
  if (track.codec === 'H264') {
    const out = Buffer.allocUnsafe(5 + data.length);
    out[0] = (frameType << 4) | FLV_CODEC_AVC;
    out[1] = 1;
    writeSi24(out, 2, checkCts(packet.offsetMs));
    out.set(data, 5);
    return out;
  }
  const fourCc = VIDEO_CODEC_FOURCC[track.codec];
  if (!fourCc) throw new HazeError('HAZE_ERR_UNSUPPORTED', `FLV video codec ${String(track.codec)}`);
  // Only avc1/hvc1 CodedFrames carry a composition time; the X form saves the 3 bytes of a zero.
  const withCts = track.codec === 'HEVC' && Math.round(packet.offsetMs) !== 0;
  const packetType = track.codec === 'HEVC' && !withCts ? VideoPacketType.CodedFramesX : VideoPacketType.CodedFrames;
  const head = 5 + (withCts ? 3 : 0);
  const out = Buffer.allocUnsafe(head + data.length);
  out[0] = 0x80 | (frameType << 4) | packetType;
  out.write(fourCc, 1, 'latin1');
  if (withCts) writeSi24(out, 5, checkCts(packet.offsetMs));
  out.set(data, head);
  return out;
}

function legacyRateBits(rate: number): number {
  if (rate >= 44100) return 3;
  if (rate >= 22050) return 2;
  if (rate >= 11025) return 1;
  return 0;
}

/** The audio tag body (RTMP audio message) carrying one packet. */
export function audioTagBody(track: AudioTrack, packet: Packet): Buffer {
  const data = packet.data;
  switch (track.codec) {
    case 'AAC': {
      const out = Buffer.allocUnsafe(2 + data.length);
      // E.4.2.1: for AAC the flags are always 44 kHz, 16-bit, stereo; the ASC is authoritative.
      out[0] = (FLV_SOUND_AAC << 4) | 0x0f;
      out[1] = 1;
      out.set(data, 2);
      return out;
    }
    case 'MP3':
    case 'ALAW':
    case 'ULAW': {
      const format = track.codec === 'MP3' ? FLV_SOUND_MP3 : track.codec === 'ALAW' ? FLV_SOUND_ALAW : FLV_SOUND_ULAW;
      const rateBits = track.codec === 'MP3' ? legacyRateBits(track.rate) : 0;
      const out = Buffer.allocUnsafe(1 + data.length);
      out[0] = (format << 4) | (rateBits << 2) | 0x02 | (track.channels > 1 ? 1 : 0);
      out.set(data, 1);
      return out;
    }
    default: {
      const fourCc = AUDIO_CODEC_FOURCC[track.codec];
      if (!fourCc) throw new HazeError('HAZE_ERR_UNSUPPORTED', `FLV audio codec ${track.codec}`);
      const out = Buffer.allocUnsafe(5 + data.length);
      out[0] = (FLV_SOUND_EX_HEADER << 4) | AudioPacketType.CodedFrames;
      out.write(fourCc, 1, 'latin1');
      out.set(data, 5);
      return out;
    }
  }
}

/**
 * The sequence header body for a track: AVC sequence header (avcC), AAC AudioSpecificConfig, or
 * an enhanced SequenceStart (hvcC, av1C, vpcC, OpusHead, FLAC STREAMINFO). Undefined for codecs
 * without one (MP3, G.711, AC-3) or a track whose required init is empty.
 */
export function sequenceHeaderBody(track: Track): Buffer | undefined {
  const init = track.init;
  if (track.type === 'video') {
    if (track.codec === 'H264') {
      if (init.length === 0) return undefined;
      const out = Buffer.allocUnsafe(5 + init.length);
      out[0] = 0x10 | FLV_CODEC_AVC;
      out[1] = 0;
      out.writeUIntBE(0, 2, 3);
      out.set(init, 5);
      return out;
    }
    const fourCc = VIDEO_CODEC_FOURCC[track.codec];
    if (!fourCc) throw new HazeError('HAZE_ERR_UNSUPPORTED', `FLV video codec ${String(track.codec)}`);
    // VP8/VP9 may go without a vpcC; HEVC and AV1 decoders need their record.
    if (init.length === 0) return undefined;
    const out = Buffer.allocUnsafe(5 + init.length);
    out[0] = 0x80 | 0x10 | VideoPacketType.SequenceStart;
    out.write(fourCc, 1, 'latin1');
    out.set(init, 5);
    return out;
  }
  if (track.type === 'audio') {
    if (track.codec === 'AAC') {
      if (init.length === 0) return undefined;
      const out = Buffer.allocUnsafe(2 + init.length);
      out[0] = (FLV_SOUND_AAC << 4) | 0x0f;
      out[1] = 0;
      out.set(init, 2);
      return out;
    }
    // Opus: an empty ID header is allowed (and means mono/stereo defaults); FLAC needs STREAMINFO.
    if (track.codec === 'opus' || (track.codec === 'FLAC' && init.length > 0)) {
      const out = Buffer.allocUnsafe(5 + init.length);
      out[0] = (FLV_SOUND_EX_HEADER << 4) | AudioPacketType.SequenceStart;
      out.write(AUDIO_CODEC_FOURCC[track.codec]!, 1, 'latin1');
      out.set(init, 5);
      return out;
    }
    return undefined;
  }
  return undefined;
}

const LEGACY_AUDIO_ID: Partial<Record<AudioTrack['codec'], number>> = { AAC: FLV_SOUND_AAC, MP3: FLV_SOUND_MP3, ALAW: FLV_SOUND_ALAW, ULAW: FLV_SOUND_ULAW };

/**
 * The onMetaData script body: "onMetaData" + ECMA array (E.5). Enhanced codecs use their FourCC
 * value as videocodecid/audiocodecid (Enhanced RTMP "Enhancing onMetaData"). Duration 0 = live.
 */
export function onMetaDataBody(tracks: Track[], durationMs = 0): Buffer {
  const m = new Amf0EcmaArray();
  m.set('duration', durationMs / 1000);
  const video = tracks.find((t): t is VideoTrack => t.type === 'video');
  const audio = tracks.find((t): t is AudioTrack => t.type === 'audio');
  if (video) {
    if (video.width > 0) m.set('width', video.width);
    if (video.height > 0) m.set('height', video.height);
    if (video.fpks > 0) m.set('framerate', video.fpks / 1000);
    if (video.bps > 0) m.set('videodatarate', (video.bps * 8) / 1000);
    m.set('videocodecid', video.codec === 'H264' ? FLV_CODEC_AVC : fourCcValue(VIDEO_CODEC_FOURCC[video.codec]));
  }
  if (audio) {
    if (audio.bps > 0) m.set('audiodatarate', (audio.bps * 8) / 1000);
    const legacy = LEGACY_AUDIO_ID[audio.codec];
    const fourCc = AUDIO_CODEC_FOURCC[audio.codec];
    if (legacy !== undefined) m.set('audiocodecid', legacy);
    else if (fourCc) m.set('audiocodecid', fourCcValue(fourCc));
    if (audio.rate > 0) m.set('audiosamplerate', audio.rate);
    m.set('audiosamplesize', audio.size > 0 ? audio.size : 16);
    if (audio.channels > 0) m.set('audiochannels', audio.channels);
    m.set('stereo', audio.channels > 1);
  }
  m.set('encoder', 'Haze');
  return encodeAmf0(['onMetaData', m]);
}

/** FLV header + PreviousTagSize0 (13 bytes). */
export function flvFileHeader(hasVideo: boolean, hasAudio: boolean): Buffer {
  return writeFlvHeader(hasVideo, hasAudio);
}

/** The FLV tag for one packet of `track` (tag framing around videoTagBody/audioTagBody). */
export function packetTag(track: Track, packet: Packet): Buffer {
  if (track.type === 'video') return writeFlvTag(FLV_TAG_VIDEO, packet.timeMs, videoTagBody(track, packet));
  if (track.type === 'audio') return writeFlvTag(FLV_TAG_AUDIO, packet.timeMs, audioTagBody(track, packet));
  throw new HazeError('HAZE_ERR_UNSUPPORTED', `FLV cannot carry ${track.type} tracks`);
}

/**
 * A complete FLV file: header, onMetaData, sequence headers at time 0, then one tag per packet
 * (packets of tracks FLV cannot carry are skipped). For tests and tools; live output writes the
 * same pieces incrementally.
 */
export function writeFlvFile(tracks: Track[], packets: Packet[]): Buffer {
  const video = tracks.find((t): t is VideoTrack => t.type === 'video');
  const audio = tracks.find((t): t is AudioTrack => t.type === 'audio');
  const carried = [video, audio].filter((t): t is VideoTrack | AudioTrack => t !== undefined);
  const parts: Buffer[] = [flvFileHeader(video !== undefined, audio !== undefined), writeFlvTag(FLV_TAG_SCRIPT, 0, onMetaDataBody(carried))];
  for (const t of carried) {
    const seq = sequenceHeaderBody(t);
    if (seq) parts.push(writeFlvTag(t.type === 'video' ? FLV_TAG_VIDEO : FLV_TAG_AUDIO, 0, seq));
  }
  for (const p of packets) {
    const t = p.trackId === video?.id ? video : p.trackId === audio?.id ? audio : undefined;
    if (t) parts.push(packetTag(t, p));
  }
  return Buffer.concat(parts);
}
