// MPEG-2 transport stream muxer: ISO/IEC 13818-1 §2.4.3.2 (transport packet), §2.4.3.4
// (adaptation field: PCR, random_access_indicator, stuffing), §2.4.3.6 (PES packet with PTS/DTS),
// §2.4.4 (PSI, see psi.ts). Pure: tracks in at construction, one Packet in -> the TS packets of
// that access unit out, in one allocation.
//
//   TS packet: 0x47 | TEI PUSI prio PID(13) | scrambling(2) afc(2) cc(4) | [adaptation field]
//              | payload  (188 bytes in all)
//   AF:        length(8) | disc RAI prio PCR OPCR splice priv ext | [PCR 33+6+9] | 0xFF*
//   PES:       00 00 01 stream_id | PES_packet_length(16) | 10 00 0 1 0 0 (data_alignment)
//              | PTS_DTS_flags(2) 000000 | header_data_length | PTS(5) [DTS(5)] | payload
//
// Timestamps (DESIGN §1): video PTS = (timeMs + offsetMs) * 90, DTS = timeMs * 90 (written only
// when it differs). Audio PTS are counted in samples from an anchor packet (AAC 1024 samples a
// frame, MP3 from its header, Opus from its TOC, AC-3 1536) and re-anchored when the packet's ms
// timestamp is more than `audioDriftMs` away, so rounding to ms never reaches the PES clock.

import type { Packet, Track } from '../../media/types.js';
import { HazeError, isHazeError } from '../../util/errors.js';
import { parseAvcC, annexBSize, writeAnnexB, type AvcConfig } from '../../media/h264.js';
import { parseHvcC, hevcAnnexBSize, writeHevcAnnexB, type HevcConfig } from '../../media/hevc.js';
import { aacSamplingIndex, parseAsc, defaultAsc, writeAdtsHeader, ADTS_HEADER_SIZE, type AudioSpecificConfig } from '../../media/aac.js';
import { AC3_SAMPLES_PER_FRAME, parseAc3Header, parseMpegAudioHeader } from '../../media/audio-headers.js';
import { opusChannelConfigCode, opusControlHeaderSize, opusPacketSamples, writeOpusControlHeader } from './audio.js';
import {
  PAT_PID,
  TS_PACKET_SIZE,
  TS_SYNC_BYTE,
  languageDescriptor,
  opusDescriptor,
  packetizeSection,
  patSection,
  pmtSection,
  registrationDescriptor,
  type PmtStream,
} from './psi.js';

export const STREAM_TYPE_MPEG1_AUDIO = 0x03;
export const STREAM_TYPE_MPEG2_AUDIO = 0x04;
export const STREAM_TYPE_PRIVATE_PES = 0x06;
export const STREAM_TYPE_AAC_ADTS = 0x0f;
export const STREAM_TYPE_H264 = 0x1b;
export const STREAM_TYPE_HEVC = 0x24;
export const STREAM_TYPE_AC3_ATSC = 0x81;

/** PTS/DTS/PCR base are 33-bit counters of a 90 kHz clock. */
const TICKS_WRAP = 2 ** 33;
const MAX_PAYLOAD = 256 * 1024 * 1024;
const EMPTY = Buffer.alloc(0);

export interface TsMuxerOptions {
  /** PID of the PMT (default 0x1000). */
  pmtPid?: number;
  /** PID of the first track; later tracks count up (default 0x100). */
  firstPid?: number;
  /** program_number in PAT/PMT (default 1). */
  programNumber?: number;
  /** transport_stream_id in the PAT (default 1). */
  transportStreamId?: number;
  /** PAT/PMT repetition for streams without video (default 100 ms). */
  psiIntervalMs?: number;
  /** How far the PCR runs behind the DTS it is sent with, so audio interleaved late is not late (default 100 ms). */
  pcrLeadMs?: number;
  /** Re-anchor an audio sample clock when the ms timestamp is further away than this (default 5 ms). */
  audioDriftMs?: number;
}

type Kind = 'h264' | 'hevc' | 'aac' | 'mp3' | 'opus' | 'ac3';

/** What the muxer made of one track. */
export interface TsStreamInfo {
  trackId: number;
  pid: number;
  streamType: number;
  streamId: number;
}

interface StreamState {
  trackId: number;
  pid: number;
  kind: Kind;
  streamType: number;
  streamId: number;
  video: boolean;
  cc: number;
  avc: AvcConfig | undefined;
  hevc: HevcConfig | undefined;
  asc: AudioSpecificConfig | undefined;
  // Audio sample clock; anchorTicks < 0 until the first packet.
  rate: number;
  anchorTicks: number;
  samples: number;
}

function ticksOf(ms: number): number {
  return Math.round(ms * 90);
}

function wrap(ticks: number): number {
  return ((ticks % TICKS_WRAP) + TICKS_WRAP) % TICKS_WRAP;
}

/** PTS/DTS field: prefix(4) ts[32..30] 1 | ts[29..15] 1 | ts[14..0] 1. */
function writeTimestamp(out: Buffer, o: number, prefix: number, ticks: number): void {
  const t = wrap(ticks);
  const hi = Math.floor(t / 2 ** 30); // 3 bits
  const mid = Math.floor(t / 2 ** 15) & 0x7fff;
  const lo = t & 0x7fff;
  out[o] = (prefix << 4) | (hi << 1) | 1;
  out[o + 1] = mid >> 7;
  out[o + 2] = ((mid & 0x7f) << 1) | 1;
  out[o + 3] = lo >> 7;
  out[o + 4] = ((lo & 0x7f) << 1) | 1;
}

function tryParse<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isHazeError(err)) throw new HazeError('HAZE_ERR_MALFORMED', `${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

export class TsMuxer {
  readonly pmtPid: number;
  readonly pcrPid: number;
  /** The tracks that are muxed, in PMT order; tracks of other codecs are left out. */
  readonly streams: readonly TsStreamInfo[];
  private readonly byTrack = new Map<number, StreamState>();
  private readonly states: StreamState[] = [];
  private readonly psiPackets: Buffer;
  private readonly patPackets: number;
  private patCc = 0;
  private pmtCc = 0;
  private readonly pcrLeadTicks: number;
  private readonly driftTicks: number;
  private readonly psiIntervalMs: number;
  private readonly hasVideo: boolean;
  private lastPsiMs = Number.NEGATIVE_INFINITY;
  private psiSent = false;

  constructor(tracks: readonly Track[], opts: TsMuxerOptions = {}) {
    this.pmtPid = opts.pmtPid ?? 0x1000;
    const firstPid = opts.firstPid ?? 0x100;
    const programNumber = opts.programNumber ?? 1;
    this.pcrLeadTicks = ticksOf(opts.pcrLeadMs ?? 100);
    this.driftTicks = ticksOf(opts.audioDriftMs ?? 5);
    this.psiIntervalMs = opts.psiIntervalMs ?? 100;
    for (const pid of [this.pmtPid, firstPid]) {
      if (!(pid >= 0x10 && pid <= 0x1ffe)) throw new HazeError('HAZE_ERR_INVALID_ARG', `PID ${pid} out of range`);
    }

    const pmtStreams: PmtStream[] = [];
    let videoCount = 0;
    let mpegAudioCount = 0;
    for (const t of tracks) {
      const pid = firstPid + this.states.length;
      if (pid === this.pmtPid || pid > 0x1ffe) throw new HazeError('HAZE_ERR_INVALID_ARG', `track PID ${pid} collides or is out of range`);
      const st = this.makeState(t, pid);
      if (!st) continue;
      if (st.video) st.streamId = 0xe0 + (videoCount++ & 0x0f);
      else if (st.streamId === 0xc0) st.streamId = 0xc0 + (mpegAudioCount++ & 0x1f);
      if (this.byTrack.has(t.id)) throw new HazeError('HAZE_ERR_INVALID_ARG', `duplicate track id ${t.id}`);
      this.byTrack.set(t.id, st);
      this.states.push(st);
      pmtStreams.push({ streamType: st.streamType, pid, descriptors: this.descriptorsFor(t, st) });
    }
    if (this.states.length === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', 'no track with a codec MPEG-TS can carry');
    const pcrState = this.states.find((s) => s.video) ?? this.states[0]!;
    this.pcrPid = pcrState.pid;
    this.hasVideo = this.states.some((s) => s.video);
    this.streams = this.states.map((s) => ({ trackId: s.trackId, pid: s.pid, streamType: s.streamType, streamId: s.streamId }));

    const pat = packetizeSection(PAT_PID, patSection(opts.transportStreamId ?? 1, programNumber, this.pmtPid));
    const pmt = packetizeSection(this.pmtPid, pmtSection(programNumber, this.pcrPid, pmtStreams));
    this.patPackets = pat.length / TS_PACKET_SIZE;
    this.psiPackets = Buffer.concat([pat, pmt]);
  }

  private makeState(t: Track, pid: number): StreamState | undefined {
    const base = {
      trackId: t.id,
      pid,
      cc: 0,
      avc: undefined,
      hevc: undefined,
      asc: undefined,
      rate: 0,
      anchorTicks: -1,
      samples: 0,
    };
    if (t.type === 'video') {
      if (t.codec === 'H264') {
        const avc = tryParse('avcC', () => parseAvcC(t.init));
        return { ...base, kind: 'h264', streamType: STREAM_TYPE_H264, streamId: 0xe0, video: true, avc };
      }
      if (t.codec === 'HEVC') {
        const hevc = tryParse('hvcC', () => parseHvcC(t.init));
        return { ...base, kind: 'hevc', streamType: STREAM_TYPE_HEVC, streamId: 0xe0, video: true, hevc };
      }
      return undefined;
    }
    if (t.type !== 'audio') return undefined;
    switch (t.codec) {
      case 'AAC': {
        const asc = t.init.length > 0 ? tryParse('AudioSpecificConfig', () => parseAsc(t.init)) : defaultAsc(t.rate, t.channels);
        // ADTS has a 2-bit profile and a table rate index: other configs cannot be carried.
        if (asc.coreObjectType < 1 || asc.coreObjectType > 4 || (asc.samplingIndex === 15 && aacSamplingIndex(asc.sampleRate) === 15)) return undefined;
        return { ...base, kind: 'aac', streamType: STREAM_TYPE_AAC_ADTS, streamId: 0xc0, video: false, asc, rate: asc.sampleRate };
      }
      case 'MP3': {
        const mpeg1 = t.rate === 32000 || t.rate === 44100 || t.rate === 48000;
        const streamType = mpeg1 ? STREAM_TYPE_MPEG1_AUDIO : STREAM_TYPE_MPEG2_AUDIO;
        return { ...base, kind: 'mp3', streamType, streamId: 0xc0, video: false, rate: t.rate };
      }
      case 'opus':
        return { ...base, kind: 'opus', streamType: STREAM_TYPE_PRIVATE_PES, streamId: 0xbd, video: false, rate: 48000 };
      case 'AC3':
        return { ...base, kind: 'ac3', streamType: STREAM_TYPE_AC3_ATSC, streamId: 0xbd, video: false, rate: t.rate };
      default:
        return undefined;
    }
  }

  private descriptorsFor(t: Track, st: StreamState): Buffer {
    const parts: Buffer[] = [];
    if (st.kind === 'opus') parts.push(registrationDescriptor('Opus'), opusDescriptor(opusChannelConfigCode(t.init, t.type === 'audio' ? t.channels : 2)));
    if (st.kind === 'ac3') parts.push(registrationDescriptor('AC-3'));
    if (!st.video && /^[a-z]{3}$/.test(t.lang) && t.lang !== 'und') parts.push(languageDescriptor(t.lang));
    return Buffer.concat(parts);
  }

  /** PID of a track, undefined when it is not muxed. */
  pidOf(trackId: number): number | undefined {
    return this.byTrack.get(trackId)?.pid;
  }

  /** PAT + PMT as TS packets (continuity counters advance, as for any packets sent). */
  psi(): Buffer {
    const out = Buffer.allocUnsafe(this.psiPackets.length);
    this.writePsi(out, 0);
    return out;
  }

  private writePsi(out: Buffer, offset: number): number {
    this.psiPackets.copy(out, offset);
    const n = this.psiPackets.length / TS_PACKET_SIZE;
    for (let k = 0; k < n; k++) {
      const at = offset + k * TS_PACKET_SIZE + 3;
      if (k < this.patPackets) {
        out[at] = 0x10 | this.patCc;
        this.patCc = (this.patCc + 1) & 0x0f;
      } else {
        out[at] = 0x10 | this.pmtCc;
        this.pmtCc = (this.pmtCc + 1) & 0x0f;
      }
    }
    this.psiSent = true;
    return offset + this.psiPackets.length;
  }

  /** The audio PTS in (unwrapped) ticks: counted in samples from the anchor while within drift. */
  private audioTicks(st: StreamState, p: Packet): number {
    const msTicks = ticksOf(p.timeMs + p.offsetMs);
    let samples = 0;
    let rate = st.rate;
    switch (st.kind) {
      case 'aac':
        samples = st.asc!.samplesPerFrame;
        break;
      case 'mp3': {
        const info = parseMpegAudioHeader(p.data);
        if (info) {
          samples = info.samples;
          rate = info.rate;
        }
        break;
      }
      case 'opus':
        samples = opusPacketSamples(p.data);
        break;
      case 'ac3': {
        const info = parseAc3Header(p.data);
        if (info) rate = info.rate;
        samples = AC3_SAMPLES_PER_FRAME;
        break;
      }
      default:
        break;
    }
    if (samples === 0 || !(rate > 0)) {
      st.anchorTicks = -1;
      return msTicks;
    }
    if (rate !== st.rate) {
      st.rate = rate;
      st.anchorTicks = -1;
    }
    let ticks = st.anchorTicks + Math.round((st.samples * 90000) / rate);
    if (st.anchorTicks < 0 || Math.abs(ticks - msTicks) > this.driftTicks) {
      st.anchorTicks = msTicks;
      st.samples = 0;
      ticks = msTicks;
    }
    st.samples += samples;
    return ticks;
  }

  /**
   * The TS packets of one access unit (PAT+PMT first when this packet starts a keyframe of a
   * video track, the stream, or — without video — a new PSI interval). Empty for tracks that
   * are not muxed.
   */
  mux(p: Packet): Buffer {
    const st = this.byTrack.get(p.trackId);
    if (!st) return EMPTY;
    const data = p.data;
    if (data.length > MAX_PAYLOAD) throw new HazeError('HAZE_ERR_TOO_LARGE', `packet of ${data.length} bytes`);

    // Payload size after the codec's TS framing.
    let payloadLen: number;
    switch (st.kind) {
      case 'h264':
        payloadLen = annexBSize(data, st.avc!, p.keyframe);
        break;
      case 'hevc':
        payloadLen = hevcAnnexBSize(data, st.hevc!, p.keyframe);
        break;
      case 'aac':
        payloadLen = ADTS_HEADER_SIZE + data.length;
        break;
      case 'opus':
        payloadLen = opusControlHeaderSize(data.length) + data.length;
        break;
      default:
        payloadLen = data.length;
    }

    // Timestamps.
    let ptsTicks: number;
    let dtsTicks: number;
    if (st.video) {
      dtsTicks = ticksOf(p.timeMs);
      ptsTicks = ticksOf(p.timeMs + p.offsetMs);
    } else {
      ptsTicks = this.audioTicks(st, p);
      dtsTicks = ptsTicks;
    }
    const withDts = ptsTicks !== dtsTicks;

    // PSI before video keyframes, at the very start, and on an interval without video.
    let psi = !this.psiSent;
    if (this.hasVideo) {
      if (st.video && p.keyframe) psi = true;
    } else if (p.timeMs - this.lastPsiMs >= this.psiIntervalMs || p.timeMs < this.lastPsiMs) {
      psi = true;
    }
    if (psi) this.lastPsiMs = p.timeMs;
    const psiLen = psi ? this.psiPackets.length : 0;

    // Layout: PES header + payload, split over TS packets; the first may carry an adaptation
    // field with PCR and/or random_access_indicator.
    const pesHeaderLen = 9 + (withDts ? 10 : 5);
    const pesLen = pesHeaderLen + payloadLen;
    const pcr = st.pid === this.pcrPid;
    const firstAf = pcr || p.keyframe ? 2 + (pcr ? 6 : 0) : 0;
    const firstCap = 184 - firstAf;
    const count = pesLen <= firstCap ? 1 : 1 + Math.ceil((pesLen - firstCap) / 184);
    const total = psiLen + count * TS_PACKET_SIZE;
    const out = Buffer.allocUnsafe(total);
    if (psi) this.writePsi(out, 0);

    // Write the PES contiguously at the tail, then move each packet's chunk forward into place
    // behind its header. Each chunk's destination is at or before its source, and a header only
    // overwrites bytes already moved, so one buffer suffices.
    let o = total - pesLen;
    const pesStart = o;
    out[o++] = 0;
    out[o++] = 0;
    out[o++] = 1;
    out[o++] = st.streamId;
    const pesPacketLength = pesLen - 6;
    // 0 (unbounded) is allowed for video only, which is the only place a frame gets this big.
    out.writeUInt16BE(pesPacketLength > 0xffff ? 0 : pesPacketLength, o);
    o += 2;
    out[o++] = 0x84; // '10', data_alignment_indicator
    out[o++] = withDts ? 0xc0 : 0x80;
    out[o++] = withDts ? 10 : 5;
    writeTimestamp(out, o, withDts ? 3 : 2, ptsTicks);
    o += 5;
    if (withDts) {
      writeTimestamp(out, o, 1, dtsTicks);
      o += 5;
    }
    switch (st.kind) {
      case 'h264':
        o = writeAnnexB(data, st.avc!, p.keyframe, out, o);
        break;
      case 'hevc':
        o = writeHevcAnnexB(data, st.hevc!, p.keyframe, out, o);
        break;
      case 'aac':
        o = writeAdtsHeader(st.asc!, data.length, out, o);
        o += data.copy(out, o);
        break;
      case 'opus':
        o = writeOpusControlHeader(out, o, data.length);
        o += data.copy(out, o);
        break;
      default:
        o += data.copy(out, o);
    }
    if (o !== total) throw new Error(`TsMuxer: PES size mismatch (${o - pesStart} of ${pesLen})`);

    let src = pesStart;
    let left = pesLen;
    for (let k = 0; k < count; k++) {
      const at = psiLen + k * TS_PACKET_SIZE;
      const cap = k === 0 ? firstCap : 184;
      const chunk = left < cap ? left : cap;
      const af = 184 - chunk; // adaptation field bytes in this packet
      const dest = at + 4 + af;
      if (dest !== src) out.copyWithin(dest, src, src + chunk);
      src += chunk;
      left -= chunk;

      out[at] = TS_SYNC_BYTE;
      out[at + 1] = (k === 0 ? 0x40 : 0) | (st.pid >> 8);
      out[at + 2] = st.pid & 0xff;
      out[at + 3] = (af > 0 ? 0x30 : 0x10) | st.cc;
      st.cc = (st.cc + 1) & 0x0f;
      if (af > 0) {
        out[at + 4] = af - 1;
        if (af > 1) {
          let flags = 0;
          let f = at + 6;
          if (k === 0 && p.keyframe) flags |= 0x40;
          if (k === 0 && pcr) {
            flags |= 0x10;
            let base = dtsTicks - this.pcrLeadTicks;
            if (base < 0) base = 0;
            base = wrap(base);
            // program_clock_reference_base(33) reserved(6) extension(9) = 0
            out[f] = Math.floor(base / 2 ** 25) & 0xff;
            out[f + 1] = Math.floor(base / 2 ** 17) & 0xff;
            out[f + 2] = Math.floor(base / 2 ** 9) & 0xff;
            out[f + 3] = Math.floor(base / 2) & 0xff;
            out[f + 4] = ((base & 1) << 7) | 0x7e;
            out[f + 5] = 0;
            f += 6;
          }
          out[at + 5] = flags;
          out.fill(0xff, f, dest);
        }
      }
    }
    return out;
  }
}
