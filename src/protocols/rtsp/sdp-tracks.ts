// Haze tracks <-> SDP media descriptions of RTP streams, and the payload format for each:
//
//   H264/90000        RFC 6184 §8.1: packetization-mode, profile-level-id, sprop-parameter-sets
//   H265/90000        RFC 7798 §7.1: sprop-vps / sprop-sps / sprop-pps, sprop-max-don-diff
//   mpeg4-generic     RFC 3640 §4.1: config (AudioSpecificConfig in hex), mode, sizeLength ...
//   opus/48000/2      RFC 7587 §7: sprop-stereo
//   PCMA, PCMU        RFC 3551 §6: static payload types 8 and 0 at 8000 Hz mono, else dynamic
//   L16, L24          RFC 3551 §4.5.11 (static 10 and 11 at 44100 Hz), RFC 3190 §4
//
// Track init data comes from the SDP where it can (parameter sets -> avcC/hvcC, config= ->
// ASC); H.264/HEVC without them learn them in-band.

import { ascOutputRate, aacChannelCount, buildAsc, parseAsc } from '../../media/aac.js';
import { buildAvcC, parseAvcC } from '../../media/h264.js';
import { buildHvcC, parseHvcC } from '../../media/hevc.js';
import type { AudioCodec, AudioTrack, Track, VideoTrack } from '../../media/types.js';
import { videoParams } from '../../containers/flv/codec-info.js';
import { synthesizeOpusHead } from '../../containers/ogg/opus.js';
import { parseOpusHead } from '../../media/audio-headers.js';
import { HazeError } from '../../util/errors.js';
import { AacDepacketizer, AacPacketizer, AAC_HBR_FMTP, auHeaderParams } from '../rtp/aac.js';
import { h264Depacketizer, h264Packetizer } from '../rtp/h264.js';
import { hevcDepacketizer, hevcPacketizer } from '../rtp/hevc.js';
import { OpusDepacketizer, OpusPacketizer } from '../rtp/opus.js';
import { PcmDepacketizer, PcmPacketizer } from '../rtp/pcm.js';
import type { Depacketizer, Packetizer } from '../rtp/payload.js';
import { attribute, fmtp, rtpMap, type Sdp, type SdpMedia } from './sdp.js';

export const VIDEO_CLOCK = 90_000;

/** A medium of a received SDP that Haze can take in. */
export interface IncomingTrack {
  /** Index of the medium in the SDP. */
  index: number;
  /** The track it feeds (its init may be empty until parameter sets arrive in-band). */
  track: Track;
  payloadType: number;
  clockRate: number;
  /** The medium's a=control value ('' when it has none). */
  control: string;
  makeDepacketizer(): Depacketizer;
}

/** Static payload types of RFC 3551 Table 4 that Haze takes. */
const STATIC_TYPES: Record<number, { encoding: string; clockRate: number; channels: number }> = {
  0: { encoding: 'PCMU', clockRate: 8000, channels: 1 },
  8: { encoding: 'PCMA', clockRate: 8000, channels: 1 },
  10: { encoding: 'L16', clockRate: 44100, channels: 2 },
  11: { encoding: 'L16', clockRate: 44100, channels: 1 },
};

function base64List(v: string | undefined): Buffer[] {
  if (!v) return [];
  return v
    .split(',')
    .map((s) => Buffer.from(s.trim(), 'base64'))
    .filter((b) => b.length > 0);
}

/** Runs a media/ parser; a HazeError (bad SDP data) gives undefined. */
function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof HazeError) return undefined;
    throw err;
  }
}

function videoTrack(id: number, codec: 'H264' | 'HEVC', init: Buffer): VideoTrack {
  const p = init.length > 0 ? videoParams(codec, init) : undefined;
  return { id, type: 'video', codec, init, bps: 0, lang: 'und', width: p?.width ?? 0, height: p?.height ?? 0, fpks: p?.fpks ?? 0 };
}

function audioTrack(id: number, codec: AudioCodec, init: Buffer, rate: number, channels: number, size: number): AudioTrack {
  return { id, type: 'audio', codec, init, bps: 0, lang: 'und', rate, channels, size };
}

/** The track and payload format of one medium, or undefined when Haze cannot take any of its formats. */
export function incomingTrack(m: SdpMedia, index: number, id: number): IncomingTrack | undefined {
  if (m.media !== 'video' && m.media !== 'audio') return undefined;
  const control = attribute(m.lines, 'control') ?? '';
  for (const f of m.formats) {
    const pt = Number(f);
    if (!Number.isInteger(pt) || pt < 0 || pt > 127) continue;
    const map = rtpMap(m, f) ?? STATIC_TYPES[pt];
    if (!map) continue;
    const params = fmtp(m, f);
    const enc = map.encoding.toUpperCase();
    const base = { index, payloadType: pt, clockRate: map.clockRate, control };
    if (enc === 'H264') {
      const sets = base64List(params.get('sprop-parameter-sets'));
      const sps = sets.filter((s) => (s[0]! & 0x1f) === 7);
      const pps = sets.filter((s) => (s[0]! & 0x1f) === 8);
      const init = (sps.length > 0 && pps.length > 0 ? attempt(() => buildAvcC(sps, pps)) : undefined) ?? Buffer.alloc(0);
      return { ...base, track: videoTrack(id, 'H264', init), makeDepacketizer: () => h264Depacketizer(init) };
    }
    if (enc === 'H265') {
      const vps = base64List(params.get('sprop-vps'));
      const sps = base64List(params.get('sprop-sps'));
      const pps = base64List(params.get('sprop-pps'));
      const init = (vps.length > 0 && sps.length > 0 && pps.length > 0 ? attempt(() => buildHvcC(vps, sps, pps)) : undefined) ?? Buffer.alloc(0);
      const donl = Number(params.get('sprop-max-don-diff') ?? 0) > 0;
      return { ...base, track: videoTrack(id, 'HEVC', init), makeDepacketizer: () => hevcDepacketizer(init, donl) };
    }
    if (enc === 'MPEG4-GENERIC') {
      const mode = (params.get('mode') ?? '').toLowerCase();
      if (mode && !mode.startsWith('aac')) continue;
      const config = params.get('config');
      let init: Buffer = config && /^[0-9a-f]+$/i.test(config) && config.length % 2 === 0 ? Buffer.from(config, 'hex') : Buffer.alloc(0);
      let asc = init.length > 0 ? attempt(() => parseAsc(init)) : undefined;
      if (!asc) {
        init = buildAsc({ objectType: 2, sampleRate: map.clockRate, channelConfig: Math.min(7, map.channels) });
        asc = parseAsc(init);
      }
      const ticksPerFrame = Math.round((asc.samplesPerFrame * map.clockRate) / asc.sampleRate);
      const auParams = auHeaderParams(params);
      if (auParams.sizeLength === 0 && auParams.constantSize === 0) continue;
      const channels = aacChannelCount(asc.channelConfig) || map.channels;
      return { ...base, track: audioTrack(id, 'AAC', init, ascOutputRate(asc), channels, 16), makeDepacketizer: () => new AacDepacketizer(auParams, ticksPerFrame) };
    }
    if (enc === 'OPUS') {
      const stereo = params.get('sprop-stereo') ?? params.get('stereo');
      const channels = stereo === '0' ? 1 : 2;
      return { ...base, clockRate: 48000, track: audioTrack(id, 'opus', synthesizeOpusHead(channels, 48000), 48000, channels, 16), makeDepacketizer: () => new OpusDepacketizer() };
    }
    if (enc === 'PCMA' || enc === 'PCMU') {
      const ch = map.channels;
      return { ...base, track: audioTrack(id, enc === 'PCMA' ? 'ALAW' : 'ULAW', Buffer.alloc(0), map.clockRate, ch, 8), makeDepacketizer: () => new PcmDepacketizer(ch) };
    }
    if (enc === 'L16' || enc === 'L24') {
      const bytes = enc === 'L16' ? 2 : 3;
      const ch = map.channels;
      return { ...base, track: audioTrack(id, 'PCM', Buffer.alloc(0), map.clockRate, ch, bytes * 8), makeDepacketizer: () => new PcmDepacketizer(ch * bytes) };
    }
  }
  return undefined;
}

/** Every medium of an SDP Haze can take, with track ids firstId, firstId+1, ...; `skipped` describes the others. */
export function incomingTracks(sdp: Sdp, firstId = 1): { tracks: IncomingTrack[]; skipped: string[] } {
  const tracks: IncomingTrack[] = [];
  const skipped: string[] = [];
  sdp.media.forEach((m, i) => {
    const t = incomingTrack(m, i, firstId + tracks.length);
    if (t) tracks.push(t);
    else skipped.push(`${m.media} ${m.formats.map((f) => rtpMap(m, f)?.encoding ?? f).join('/')}`);
  });
  return { tracks, skipped };
}

/** How Haze sends one track over RTP. */
export interface OutgoingTrack {
  track: Track;
  payloadType: number;
  clockRate: number;
  /** The medium's SDP lines after m= (rtpmap, fmtp). */
  sdpLines: string[];
  media: 'video' | 'audio';
  makePacketizer(): Packetizer;
  /** Clock ticks of one frame when the codec fixes it (AAC 1024): timestamps count them exactly. */
  ticksPerFrame: number;
}

/** The codecs Haze sends over RTP, per track type (for track selection). */
export const RTP_CODECS = { video: ['H264', 'HEVC'], audio: ['AAC', 'opus', 'ALAW', 'ULAW', 'PCM'] } as const;

/** The RTP form of a track, or undefined for a codec Haze does not send over RTP. */
export function outgoingTrack(track: Track, dynamicType: number): OutgoingTrack | undefined {
  const rtpmap = (pt: number, enc: string): string => `rtpmap:${pt} ${enc}`;
  if (track.type === 'video') {
    if (track.codec === 'H264') {
      if (track.init.length === 0) return undefined;
      const c = attempt(() => parseAvcC(track.init));
      if (!c || c.sps.length === 0) return undefined;
      const sps = c.sps[0]!;
      const profile = sps.subarray(1, 4).toString('hex').toUpperCase();
      const sets = [...c.sps, ...c.pps].map((b) => b.toString('base64')).join(',');
      const pt = dynamicType;
      return {
        track,
        payloadType: pt,
        clockRate: VIDEO_CLOCK,
        media: 'video',
        sdpLines: [rtpmap(pt, 'H264/90000'), `fmtp:${pt} packetization-mode=1;profile-level-id=${profile};sprop-parameter-sets=${sets}`],
        makePacketizer: () => h264Packetizer(track.init),
        ticksPerFrame: 0,
      };
    }
    if (track.codec === 'HEVC') {
      if (track.init.length === 0) return undefined;
      const c = attempt(() => parseHvcC(track.init));
      if (!c || c.sps.length === 0) return undefined;
      const b64 = (l: Buffer[]): string => l.map((b) => b.toString('base64')).join(',');
      const pt = dynamicType;
      return {
        track,
        payloadType: pt,
        clockRate: VIDEO_CLOCK,
        media: 'video',
        sdpLines: [rtpmap(pt, 'H265/90000'), `fmtp:${pt} sprop-vps=${b64(c.vps)};sprop-sps=${b64(c.sps)};sprop-pps=${b64(c.pps)}`],
        makePacketizer: () => hevcPacketizer(track.init),
        ticksPerFrame: 0,
      };
    }
    return undefined;
  }
  if (track.type !== 'audio') return undefined;
  const rate = track.rate > 0 ? track.rate : 0;
  const ch = track.channels > 0 ? track.channels : 1;
  switch (track.codec) {
    case 'AAC': {
      const init = track.init.length > 0 ? track.init : rate > 0 ? buildAsc({ objectType: 2, sampleRate: rate, channelConfig: Math.min(7, ch) }) : undefined;
      const asc = init && attempt(() => parseAsc(init));
      if (!init || !asc) return undefined;
      const clock = ascOutputRate(asc);
      const pt = dynamicType;
      return {
        track,
        payloadType: pt,
        clockRate: clock,
        media: 'audio',
        sdpLines: [rtpmap(pt, `MPEG4-GENERIC/${clock}/${aacChannelCount(asc.channelConfig) || ch}`), `fmtp:${pt} ${AAC_HBR_FMTP};config=${init.toString('hex').toUpperCase()}`],
        makePacketizer: () => new AacPacketizer(),
        ticksPerFrame: Math.round((asc.samplesPerFrame * clock) / asc.sampleRate),
      };
    }
    case 'opus': {
      const head = parseOpusHead(track.init);
      const channels = head?.channels ?? ch;
      if (channels > 2) return undefined; // multichannel Opus needs RFC 7587's multiopus, which Haze does not send
      const pt = dynamicType;
      return {
        track,
        payloadType: pt,
        clockRate: 48000,
        media: 'audio',
        sdpLines: [rtpmap(pt, 'opus/48000/2'), `fmtp:${pt} sprop-stereo=${channels === 2 ? 1 : 0};stereo=${channels === 2 ? 1 : 0}`],
        makePacketizer: () => new OpusPacketizer(),
        ticksPerFrame: 0,
      };
    }
    case 'ALAW':
    case 'ULAW': {
      if (rate === 0) return undefined;
      const enc = track.codec === 'ALAW' ? 'PCMA' : 'PCMU';
      const pt = rate === 8000 && ch === 1 ? (track.codec === 'ALAW' ? 8 : 0) : dynamicType;
      return { track, payloadType: pt, clockRate: rate, media: 'audio', sdpLines: [rtpmap(pt, `${enc}/${rate}${ch > 1 ? `/${ch}` : ''}`)], makePacketizer: () => new PcmPacketizer(ch), ticksPerFrame: 0 };
    }
    case 'PCM': {
      if (rate === 0 || (track.size !== 16 && track.size !== 24)) return undefined;
      const bytes = track.size / 8;
      const pt = dynamicType;
      return { track, payloadType: pt, clockRate: rate, media: 'audio', sdpLines: [rtpmap(pt, `L${track.size}/${rate}/${ch}`)], makePacketizer: () => new PcmPacketizer(ch * bytes), ticksPerFrame: 0 };
    }
    default:
      return undefined;
  }
}

/** The RTP forms of the tracks Haze can send, in order, dynamic payload types from 96. */
export function outgoingTracks(tracks: readonly Track[]): OutgoingTrack[] {
  const out: OutgoingTrack[] = [];
  for (const t of tracks) {
    const o = outgoingTrack(t, 96 + out.length);
    if (o) out.push(o);
  }
  return out;
}

export interface DescribeOptions {
  /** Session name (s=). */
  name: string;
  /** The server's address for o= and c=. */
  address: string;
  /** Session id and version for o= (NTP-ish numbers). */
  sessionId: number;
  /** a=control of medium i (relative to Content-Base). */
  control(index: number): string;
  /** A live stream (a=range:npt=now-) or one of a known duration in seconds. */
  durationS?: number;
}

/** The SDP of a DESCRIBE answer (RFC 2326 Appendix C) for `tracks`. */
export function describeSdp(tracks: readonly OutgoingTrack[], opts: DescribeOptions): string {
  const ip = opts.address.includes(':') ? 'IP6' : 'IP4';
  const lines = [
    'v=0',
    `o=- ${opts.sessionId} ${opts.sessionId} IN ${ip} ${opts.address}`,
    `s=${opts.name.replace(/[\r\n]/g, ' ') || 'Haze'}`,
    `c=IN ${ip} ${ip === 'IP6' ? '::' : '0.0.0.0'}`,
    't=0 0',
    'a=tool:Haze',
    'a=control:*',
    opts.durationS === undefined ? 'a=range:npt=now-' : `a=range:npt=0-${opts.durationS.toFixed(3)}`,
  ];
  tracks.forEach((t, i) => {
    lines.push(`m=${t.media} 0 RTP/AVP ${t.payloadType}`);
    for (const l of t.sdpLines) lines.push(`a=${l}`);
    lines.push(`a=control:${opts.control(i)}`);
  });
  return `${lines.join('\r\n')}\r\n`;
}
