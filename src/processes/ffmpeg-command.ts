// The ffmpeg command lines of the FFMPEG (and AV) stream processes (reference §5.6; MistServer's
// MistProcFFMPEG builds the same shape): Matroska in on stdin, one encoded track out as
// Matroska on stdout. Pure: option values in, argv out.
//
// Differences from MistServer's commands, and why:
//   - `-copyts` keeps the input's timestamps, so the output maps back onto the stream timeline
//     exactly (time-map.ts) instead of by the first packet's guess;
//   - no `-fflags nobuffer`: with it ffmpeg throws away the packets it probed, which is the whole
//     first GOP of the replay a process starts with; `-probesize 32 -analyzeduration 0` keep the
//     start fast instead (the Matroska header describes every track);
//   - Opus is libopus (the native encoder is experimental), H.264 libx264 with
//     `-tune zerolatency` and preset veryfast unless configured: a live server's encoder must keep
//     up with real time and add no reordering delay.

import { HazeError } from '../util/errors.js';

export type ProcessAudioCodec = 'AAC' | 'opus' | 'MP3';
export type ProcessVideoCodec = 'H264' | 'HEVC' | 'VP9';

export interface FfmpegOptions {
  /** The ffmpeg binary (HAZE_FFMPEG or `ffmpeg`). */
  binary: string;
  kind: 'audio' | 'video';
  codec: ProcessAudioCodec | ProcessVideoCodec;
  /** Target bitrate as ffmpeg takes it (`96000`, `96k`, `1.5M`). */
  bitrate?: string;
  minRate?: string;
  maxRate?: string;
  /** Audio sample rate in Hz. */
  sampleRate?: number;
  /** Output size; -1 (or absent) keeps the aspect ratio from the other side. */
  width?: number;
  height?: number;
  /** Constant rate factor (replaces the bitrate). */
  crf?: number;
  profile?: string;
  /** Encoder speed preset (x264/x265). */
  preset?: string;
  /** Keyframes: where the source has them (default), every N frames, or every N seconds. */
  keys?: { frames: number } | { secs: number };
  /** Extra arguments before the output options (MistServer's `flags`). */
  flags?: readonly string[];
}

export const X264_PRESETS = ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'] as const;
export const H264_PROFILES = ['baseline', 'main', 'high', 'high10', 'high422', 'high444'] as const;

const ENCODERS: Record<FfmpegOptions['codec'], string> = {
  AAC: 'aac',
  opus: 'libopus',
  MP3: 'libmp3lame',
  H264: 'libx264',
  HEVC: 'libx265',
  VP9: 'libvpx-vp9',
};

/** Default bitrates where ffmpeg's own would not suit (Opus for WebRTC: 96 kbit/s stereo). */
const DEFAULT_AUDIO_BITRATE: Partial<Record<FfmpegOptions['codec'], string>> = { opus: '96k', AAC: '128k', MP3: '128k' };

/** Common input side: Matroska on stdin, timestamps kept. */
function inputArgs(binary: string): string[] {
  return [binary, '-hide_banner', '-nostats', '-loglevel', 'warning', '-copyts', '-probesize', '32', '-analyzeduration', '0', '-f', 'matroska', '-i', '-'];
}

/**
 * Common output side: live Matroska on stdout in small clusters (100 ms), so packets leave the
 * encoder with little delay.
 */
const OUTPUT_ARGS = ['-f', 'matroska', '-live', '1', '-cluster_time_limit', '100', '-flush_packets', '1', '-'];

function rateArgs(o: FfmpegOptions, stream: 'a' | 'v'): string[] {
  const out: string[] = [];
  const bitrate = o.bitrate ?? (stream === 'a' ? DEFAULT_AUDIO_BITRATE[o.codec] : undefined);
  if (bitrate !== undefined) out.push(`-b:${stream}`, bitrate);
  if (o.minRate !== undefined) out.push('-minrate', o.minRate);
  // x264 ignores a maxrate without a VBV buffer: one second's worth at the maximum rate
  if (o.maxRate !== undefined) out.push('-maxrate', o.maxRate, '-bufsize', o.maxRate);
  return out;
}

/** The scale filter for a resolution: -2 keeps the aspect ratio with an even size (H.264 needs even). */
function scaleFilter(width: number | undefined, height: number | undefined): string | undefined {
  const w = width !== undefined && width > 0 ? width : -2;
  const h = height !== undefined && height > 0 ? height : -2;
  if (w === -2 && h === -2) return undefined;
  return `scale=${w}:${h},setsar=1`;
}

export function ffmpegArgs(o: FfmpegOptions): string[] {
  const args = inputArgs(o.binary);
  const encoder = ENCODERS[o.codec];
  if (o.kind === 'audio') {
    if (o.codec !== 'AAC' && o.codec !== 'opus' && o.codec !== 'MP3') throw new HazeError('HAZE_ERR_INVALID_ARG', `${o.codec} is not an audio codec`);
    // two channels as MistServer's command has them (WebRTC's Opus is always described as stereo)
    args.push('-map', '0:a:0', '-c:a', encoder, '-ac', '2');
    if (o.sampleRate !== undefined) args.push('-ar', String(o.sampleRate));
    args.push(...rateArgs(o, 'a'));
    args.push('-vn', '-sn', '-dn');
  } else {
    if (o.codec !== 'H264' && o.codec !== 'HEVC' && o.codec !== 'VP9') throw new HazeError('HAZE_ERR_INVALID_ARG', `${o.codec} is not a video codec`);
    args.push('-map', '0:v:0');
    const scale = scaleFilter(o.width, o.height);
    if (scale) args.push('-vf', scale);
    args.push('-c:v', encoder);
    if (o.codec === 'VP9') args.push('-deadline', 'realtime', '-cpu-used', '8', '-row-mt', '1');
    else {
      args.push('-preset', o.preset ?? 'veryfast', '-tune', 'zerolatency');
      if (o.profile !== undefined) args.push('-profile:v', o.profile);
    }
    if (o.crf !== undefined) args.push('-crf', String(o.crf), ...(o.codec === 'VP9' ? ['-b:v', '0'] : []));
    else args.push(...rateArgs(o, 'v'));
    if (o.keys && 'frames' in o.keys) args.push('-g', String(o.keys.frames));
    else if (o.keys && 'secs' in o.keys) args.push('-force_key_frames', `expr:gte(t,n_forced*${o.keys.secs})`);
    // keyframes where the source has them: renditions switch cleanly at the same points
    else args.push('-force_key_frames', 'source');
    args.push('-an', '-sn', '-dn');
  }
  if (o.flags) args.push(...o.flags);
  args.push(...OUTPUT_ARGS);
  return args;
}
