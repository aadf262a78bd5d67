// Movie fragments: ISO/IEC 14496-12 §8.8.4-8.8.8 (moof, mfhd, traf, tfhd, trun), §8.8.12 (tfdt),
// §8.1.1 (mdat), §8.16.3 (sidx), with CMAF's rules (ISO/IEC 23000-19 §7.3.2.3): tfhd has
// default-base-is-moof and no base_data_offset, tfdt is version 1, trun carries per-sample
// duration, size, flags and (version 1, signed) composition offsets.
//
//   moof  = mfhd(seq) traf*          traf = tfhd(0x020000, track_ID) tfdt(v1, base) trun
//   trun  = sample_count data_offset { duration size flags cto }*   (flags 0x000F01)
//   mdat  = the packets' payloads back to back, in traf order
//
// Timing: every track keeps a running decode time in its timescale (the next fragment's
// baseMediaDecodeTime). Sample-counted audio (AAC, MP3, Opus, AC-3) advances it by the frame's
// samples and is re-anchored to the packet's ms timestamp only when that is further away than
// `driftMs`, as the TS muxer does; everything else starts each sample at its ms timestamp
// rounded once, and continues the previous fragment's end when that is within `driftMs`.
// A sample lasts until the next one starts; the last one of a fragment lasts its frame
// (audio) or as long as the one before it.

import type { Packet, Track } from '../../media/types.js';
import { AC3_SAMPLES_PER_FRAME, parseMpegAudioHeader } from '../../media/audio-headers.js';
import { parseAsc } from '../../media/aac.js';
import { opusPacketSamples } from '../ts/audio.js';
import { HazeError, isHazeError } from '../../util/errors.js';
import { trackTimescale } from './init.js';

export interface FragmentWriterOptions {
  /** Re-anchor a running decode time to the ms timestamp when further apart than this (default 5). */
  driftMs?: number;
}

export interface FragmentGroup {
  trackId: number;
  packets: readonly Packet[];
}

/** sample_depends_on = 2 (an I-picture / independent audio frame). */
export const SAMPLE_FLAGS_SYNC = 0x0200_0000;
/** sample_depends_on = 1 and sample_is_non_sync_sample. */
export const SAMPLE_FLAGS_NON_SYNC = 0x0101_0000;

// tfhd flags (§8.8.7) and trun flags (§8.8.8).
export const TFHD_BASE_DATA_OFFSET = 0x1;
export const TFHD_SAMPLE_DESCRIPTION = 0x2;
export const TFHD_DEFAULT_DURATION = 0x8;
export const TFHD_DEFAULT_SIZE = 0x10;
export const TFHD_DEFAULT_FLAGS = 0x20;
export const TFHD_DEFAULT_BASE_IS_MOOF = 0x20000;
export const TRUN_DATA_OFFSET = 0x1;
export const TRUN_FIRST_FLAGS = 0x4;
export const TRUN_DURATION = 0x100;
export const TRUN_SIZE = 0x200;
export const TRUN_FLAGS = 0x400;
export const TRUN_CTO = 0x800;
/** sample_is_non_sync_sample in the sample flags. */
export const SAMPLE_NON_SYNC = 0x10000;
/** What the writer's trun carries: data-offset, sample-duration, sample-size, sample-flags, composition-time-offset. */
const TRUN_WRITTEN = TRUN_DATA_OFFSET | TRUN_DURATION | TRUN_SIZE | TRUN_FLAGS | TRUN_CTO;
const MAX_MDAT = 0xffff_ffff - 8;
const MAX_SAMPLES = 1_000_000;

type Kind = 'video' | 'aac' | 'mp3' | 'opus' | 'ac3' | 'other';

interface TrackState {
  trackId: number;
  timescale: number;
  kind: Kind;
  /** Samples per AAC frame (1024 or 960). */
  aacFrame: number;
  /** The next sample's decode time in ticks; -1 before the first fragment. */
  nextTicks: number;
  /** The last sample duration written, for a lone last sample; 0 while unknown. */
  lastDurationTicks: number;
  /** A fallback duration for the first lone sample (from the frame rate). */
  defaultDurationTicks: number;
}

/** Per-sample start, duration and composition offset (ticks) of the traf being written; reused across calls. */
interface Timing {
  starts: number[];
  durations: number[];
  ctos: number[];
}

export class FragmentWriter {
  private readonly states = new Map<number, TrackState>();
  private readonly driftMs: number;
  private readonly timing: Timing = { starts: [], durations: [], ctos: [] };

  constructor(tracks: readonly Track[], opts: FragmentWriterOptions = {}) {
    this.driftMs = opts.driftMs ?? 5;
    for (const t of tracks) {
      if (this.states.has(t.id)) throw new HazeError('HAZE_ERR_INVALID_ARG', `duplicate track id ${t.id}`);
      const timescale = trackTimescale(t);
      let kind: Kind = 'other';
      let aacFrame = 1024;
      if (t.type === 'video') kind = 'video';
      else if (t.type === 'audio') {
        if (t.codec === 'AAC') {
          kind = 'aac';
          if (t.init.length > 0) {
            try {
              aacFrame = parseAsc(t.init).samplesPerFrame;
            } catch (err) {
              if (!isHazeError(err)) throw err;
            }
          }
        } else if (t.codec === 'MP3') kind = 'mp3';
        else if (t.codec === 'opus') kind = 'opus';
        else if (t.codec === 'AC3') kind = 'ac3';
      }
      const fps = t.type === 'video' && t.fpks > 0 ? t.fpks / 1000 : 25;
      this.states.set(t.id, {
        trackId: t.id,
        timescale,
        kind,
        aacFrame,
        nextTicks: -1,
        lastDurationTicks: 0,
        defaultDurationTicks: t.type === 'video' ? Math.round(timescale / fps) : 0,
      });
    }
  }

  /** The baseMediaDecodeTime the track's next fragment gets (ticks), -1 before its first. */
  nextDecodeTime(trackId: number): number {
    return this.state(trackId).nextTicks;
  }

  /** The track's timescale in the init segment. */
  timescale(trackId: number): number {
    return this.state(trackId).timescale;
  }

  private state(trackId: number): TrackState {
    const st = this.states.get(trackId);
    if (!st) throw new HazeError('HAZE_ERR_INVALID_ARG', `track ${trackId} is not in this fragment writer`);
    return st;
  }

  /** moof + mdat of one track's packets (decode order). */
  fragment(trackId: number, packets: readonly Packet[], sequenceNumber: number): Buffer {
    return this.fragmentMulti([{ trackId, packets }], sequenceNumber);
  }

  /** One moof with a traf per group, then one mdat with the groups' payloads in that order. */
  fragmentMulti(groups: readonly FragmentGroup[], sequenceNumber: number): Buffer {
    if (groups.length === 0) throw new HazeError('HAZE_ERR_INVALID_ARG', 'a fragment needs at least one track');
    if (!Number.isInteger(sequenceNumber) || sequenceNumber < 0 || sequenceNumber > 0xffff_ffff) {
      throw new HazeError('HAZE_ERR_INVALID_ARG', `sequence number ${sequenceNumber} out of range`);
    }
    // Sizes first: the moof, then the mdat.
    let moofSize = 8 + 16;
    let mdatPayload = 0;
    let sampleCount = 0;
    const seen = new Set<number>();
    for (const g of groups) {
      this.state(g.trackId);
      if (seen.has(g.trackId)) throw new HazeError('HAZE_ERR_INVALID_ARG', `track ${g.trackId} twice in one fragment`);
      seen.add(g.trackId);
      if (g.packets.length === 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `no packets for track ${g.trackId}`);
      sampleCount += g.packets.length;
      if (sampleCount > MAX_SAMPLES) throw new HazeError('HAZE_ERR_TOO_LARGE', `more than ${MAX_SAMPLES} samples in one fragment`);
      moofSize += 8 + 16 + 20 + 20 + 16 * g.packets.length;
      for (const p of g.packets) {
        if (p.trackId !== g.trackId) throw new HazeError('HAZE_ERR_INVALID_ARG', `packet of track ${p.trackId} in the group of track ${g.trackId}`);
        mdatPayload += p.data.length;
      }
      if (mdatPayload > MAX_MDAT) throw new HazeError('HAZE_ERR_TOO_LARGE', `mdat of ${mdatPayload} bytes`);
    }

    const out = Buffer.allocUnsafe(moofSize + 8 + mdatPayload);
    let o = 0;
    o = header(out, o, moofSize, 'moof');
    o = header(out, o, 16, 'mfhd');
    o = u32(out, o, 0);
    o = u32(out, o, sequenceNumber);
    let dataOffset = moofSize + 8; // from the moof's first byte (default-base-is-moof)
    for (const g of groups) {
      const st = this.states.get(g.trackId)!;
      const n = g.packets.length;
      this.computeTiming(st, g.packets);
      const { starts, durations, ctos } = this.timing;
      o = header(out, o, 8 + 16 + 20 + 20 + 16 * n, 'traf');
      o = header(out, o, 16, 'tfhd');
      o = u32(out, o, TFHD_DEFAULT_BASE_IS_MOOF);
      o = u32(out, o, st.trackId);
      o = header(out, o, 20, 'tfdt');
      o = u32(out, o, 0x0100_0000); // version 1
      out.writeUInt32BE(Math.floor(starts[0]! / 0x1_0000_0000), o);
      out.writeUInt32BE(starts[0]! % 0x1_0000_0000, o + 4);
      o += 8;
      o = header(out, o, 20 + 16 * n, 'trun');
      o = u32(out, o, 0x0100_0000 | TRUN_WRITTEN); // version 1: signed composition offsets
      o = u32(out, o, n);
      out.writeInt32BE(dataOffset, o);
      o += 4;
      for (let i = 0; i < n; i++) {
        const p = g.packets[i]!;
        o = u32(out, o, durations[i]!);
        o = u32(out, o, p.data.length);
        o = u32(out, o, st.kind === 'video' && !p.keyframe ? SAMPLE_FLAGS_NON_SYNC : SAMPLE_FLAGS_SYNC);
        out.writeInt32BE(ctos[i]!, o);
        o += 4;
      }
      for (const p of g.packets) dataOffset += p.data.length;
    }
    o = header(out, o, 8 + mdatPayload, 'mdat');
    for (const g of groups) {
      for (const p of g.packets) {
        out.set(p.data, o);
        o += p.data.length;
      }
    }
    if (o !== out.length) throw new Error(`fragment writer: wrote ${o} of ${out.length} bytes`);
    return out;
  }

  /** Frame length in ticks of a sample-counted audio packet, 0 when unknown. */
  private frameTicks(st: TrackState, p: Packet): number {
    switch (st.kind) {
      case 'aac':
        return st.aacFrame;
      case 'ac3':
        return AC3_SAMPLES_PER_FRAME;
      case 'opus':
        return opusPacketSamples(p.data);
      case 'mp3': {
        const h = parseMpegAudioHeader(p.data);
        // Counted in the track's rate; a frame at another rate cannot be counted in it.
        return h && h.rate === st.timescale ? h.samples : 0;
      }
      default:
        return 0;
    }
  }

  private computeTiming(st: TrackState, packets: readonly Packet[]): void {
    const n = packets.length;
    const { starts, durations, ctos } = this.timing;
    starts.length = n;
    durations.length = n;
    ctos.length = n;
    const scale = st.timescale / 1000;
    const driftTicks = Math.round(this.driftMs * scale);
    let lastFrame = 0;
    for (let i = 0; i < n; i++) {
      const p = packets[i]!;
      if (!Number.isFinite(p.timeMs) || !Number.isFinite(p.offsetMs)) throw new HazeError('HAZE_ERR_INVALID_ARG', `packet timestamp ${p.timeMs}/${p.offsetMs} is not finite`);
      const msTicks = Math.round(p.timeMs * scale);
      const frame = this.frameTicks(st, p);
      // The running time continues when it is close to the packet's own timestamp.
      let start = msTicks;
      if ((i === 0 || frame > 0) && st.nextTicks >= 0 && Math.abs(st.nextTicks - msTicks) <= driftTicks) start = st.nextTicks;
      if (start < 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `negative decode time ${p.timeMs} ms on track ${st.trackId}`);
      starts[i] = start;
      ctos[i] = Math.round(p.offsetMs * scale);
      if (ctos[i]! > 0x7fff_ffff || ctos[i]! < -0x8000_0000) throw new HazeError('HAZE_ERR_INVALID_ARG', `composition offset ${p.offsetMs} ms out of range`);
      lastFrame = frame;
      // Sample-counted audio: the next sample is expected right after this one's frame.
      st.nextTicks = frame > 0 ? start + frame : -1;
    }
    for (let i = 0; i + 1 < n; i++) {
      // Decode order never goes back; a timestamp that does gets a zero duration.
      durations[i] = Math.max(0, starts[i + 1]! - starts[i]!);
    }
    let last = lastFrame;
    if (last === 0) last = n > 1 ? durations[n - 2]! : st.lastDurationTicks || st.defaultDurationTicks;
    durations[n - 1] = last;
    if (durations[n - 1]! > 0xffff_ffff) throw new HazeError('HAZE_ERR_INVALID_ARG', `sample duration ${durations[n - 1]} out of range`);
    for (let i = 0; i < n; i++) {
      if (durations[i]! > 0xffff_ffff) throw new HazeError('HAZE_ERR_INVALID_ARG', `timestamp jump of ${durations[i]} ticks on track ${st.trackId}`);
    }
    st.lastDurationTicks = last;
    st.nextTicks = starts[n - 1]! + last;
  }
}

function header(out: Buffer, o: number, size: number, type: string): number {
  out.writeUInt32BE(size, o);
  out.write(type, o + 4, 4, 'latin1');
  return o + 8;
}

function u32(out: Buffer, o: number, v: number): number {
  return out.writeUInt32BE(v >>> 0, o);
}

// ---- segment index -----------------------------------------------------------------------------

export interface SidxReference {
  /** Bytes of the referenced (sub)segment: its moof(s) + mdat(s). */
  size: number;
  durationTicks: number;
  startsWithSap: boolean;
}

/**
 * A `sidx` (§8.16.3, version 1) indexing media segments that follow it directly
 * (first_offset 0); `earliestPtsTicks` in `timescale`.
 */
export function segmentIndex(referenceId: number, timescale: number, earliestPtsTicks: number, refs: readonly SidxReference[]): Buffer {
  if (refs.length > 0xffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `${refs.length} sidx references`);
  const size = 12 + 4 + 4 + 8 + 8 + 2 + 2 + 12 * refs.length;
  const out = Buffer.allocUnsafe(size);
  let o = header(out, 0, size, 'sidx');
  o = u32(out, o, 0x0100_0000);
  o = u32(out, o, referenceId);
  o = u32(out, o, timescale);
  out.writeUInt32BE(Math.floor(earliestPtsTicks / 0x1_0000_0000), o);
  out.writeUInt32BE(earliestPtsTicks % 0x1_0000_0000, o + 4);
  o += 8;
  out.fill(0, o, o + 8); // first_offset 0
  o += 8;
  out.writeUInt16BE(0, o); // reserved
  out.writeUInt16BE(refs.length, o + 2);
  o += 4;
  for (const r of refs) {
    if (r.size >= 2 ** 31 || r.size < 0) throw new HazeError('HAZE_ERR_TOO_LARGE', `sidx reference of ${r.size} bytes`);
    o = u32(out, o, r.size); // reference_type 0 (media)
    o = u32(out, o, r.durationTicks);
    o = u32(out, o, r.startsWithSap ? 0x9000_0000 : 0); // starts_with_SAP, SAP_type 1
  }
  return out;
}
