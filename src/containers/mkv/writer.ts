// Progressive (live) Matroska / WebM writer: RFC 9559 (Matroska) with the WebM container
// guidelines. The header is the EBML header, then a Segment of unknown size holding Info and
// Tracks; every packet becomes one SimpleBlock (RFC 9559 §10.2), preceded by a new Cluster of
// unknown size (§6.2) when one is due. Timestamps are milliseconds (TimestampScale 1000000).
//
//   SimpleBlock data: track number (VINT) | relative timestamp (int16, BE) | flags | frame
//   flags: 0x80 keyframe, 0x08 invisible, 0x06 lacing (none here), 0x01 discardable

import { HazeError } from '../../util/errors.js';
import type { AudioTrack, Packet, Track, VideoTrack } from '../../media/types.js';
import { ebml, elementSize, ID, idWidth, serializeElements, UNKNOWN_SIZE_BYTES, uintWidth, vintWidth, writeId, writeVint, type EbmlNode } from './ebml.js';

export interface MatroskaWriterOptions {
  /** DocType "webm" (only WebM codecs accepted) instead of "matroska". */
  webm: boolean;
  /**
   * A file, not a stream: the header holds a Duration to be filled in at the end
   * (durationPatch()), so players show the recording's length.
   */
  recordDuration?: boolean;
}

/** Audio-only streams get a new Cluster this often, so a viewer can join at a boundary. */
export const AUDIO_CLUSTER_MS = 5000;
const INT16_MIN = -32768;
const INT16_MAX = 32767;
/** Opus decoders need 80 ms of pre-roll after a seek (RFC 7845 §4.6, Matroska Opus mapping). */
const OPUS_SEEK_PRE_ROLL_NS = 80_000_000;

const TRACK_TYPE_VIDEO = 1;
const TRACK_TYPE_AUDIO = 2;

/** The Matroska CodecID for a track, or undefined if Matroska has none we can write. */
export function matroskaCodecId(track: Track): string | undefined {
  if (track.type === 'video') {
    switch (track.codec) {
      case 'H264':
        return 'V_MPEG4/ISO/AVC';
      case 'HEVC':
        return 'V_MPEGH/ISO/HEVC';
      case 'VP8':
        return 'V_VP8';
      case 'VP9':
        return 'V_VP9';
      case 'AV1':
        return 'V_AV1';
    }
    return undefined;
  }
  if (track.type === 'audio') {
    switch (track.codec) {
      case 'AAC':
        return 'A_AAC';
      case 'opus':
        return 'A_OPUS';
      case 'vorbis':
        return 'A_VORBIS';
      case 'AC3':
        return 'A_AC3';
      case 'MP3':
        return 'A_MPEG/L3';
      case 'FLAC':
        return 'A_FLAC';
      // DTSC PCM is big-endian signed integer samples.
      case 'PCM':
        return 'A_PCM/INT/BIG';
    }
    return undefined;
  }
  return undefined;
}

/** Whether the Matroska writer can carry this track. */
export function isMatroskaCodec(track: Track): boolean {
  return matroskaCodecId(track) !== undefined;
}

/** Whether WebM allows this track: VP8/VP9/AV1 video, Opus/Vorbis audio. */
export function isWebmCodec(track: Track): boolean {
  if (track.type === 'video') return track.codec === 'VP8' || track.codec === 'VP9' || track.codec === 'AV1';
  if (track.type === 'audio') return track.codec === 'opus' || track.codec === 'vorbis';
  return false;
}

/** Opus pre-skip in samples at 48 kHz, from OpusHead (RFC 7845 §5.1: LE u16 at byte 10). */
function opusPreSkip(init: Buffer): number {
  if (init.length < 19 || init.toString('latin1', 0, 8) !== 'OpusHead') return 0;
  return init.readUInt16LE(10);
}

function trackEntry(track: Track, trackNumber: number): EbmlNode {
  const codecId = matroskaCodecId(track)!;
  const children: EbmlNode[] = [
    ebml.uint(ID.TrackNumber, trackNumber),
    ebml.uint(ID.TrackUID, trackNumber),
    ebml.uint(ID.TrackType, track.type === 'video' ? TRACK_TYPE_VIDEO : TRACK_TYPE_AUDIO),
    // We never lace: one frame per SimpleBlock.
    ebml.uint(ID.FlagLacing, 0),
    // Language defaults to "eng" when absent, so "und" must be written out.
    ebml.string(ID.Language, /^[a-z]{3}$/.test(track.lang) ? track.lang : 'und'),
    ebml.string(ID.CodecID, codecId),
  ];
  if (track.init.length > 0) children.push(ebml.binary(ID.CodecPrivate, track.init));
  if (track.type === 'video') {
    const v = track as VideoTrack;
    // Frame duration in ns from frames per 1000 s; helps players report a frame rate.
    if (v.fpks > 0) children.push(ebml.uint(ID.DefaultDuration, Math.round(1e12 / v.fpks)));
    children.push(ebml.master(ID.Video, [ebml.uint(ID.PixelWidth, v.width), ebml.uint(ID.PixelHeight, v.height)]));
  } else {
    const a = track as AudioTrack;
    if (a.codec === 'opus') {
      children.push(ebml.uint(ID.CodecDelay, Math.round((opusPreSkip(a.init) * 1e9) / 48000)));
      children.push(ebml.uint(ID.SeekPreRoll, OPUS_SEEK_PRE_ROLL_NS));
    }
    const audio: EbmlNode[] = [ebml.float(ID.SamplingFrequency, a.rate), ebml.uint(ID.Channels, a.channels)];
    if (a.codec === 'PCM' && a.size > 0) audio.push(ebml.uint(ID.BitDepth, a.size));
    children.push(ebml.master(ID.Audio, audio));
  }
  return ebml.master(ID.TrackEntry, children);
}

interface TrackState {
  trackNumber: number;
  /** Bytes of the track number VINT in each SimpleBlock. */
  numberWidth: number;
  video: boolean;
}

/**
 * Writes one progressive Matroska/WebM stream: `header()` once, then `packet()` for each
 * packet in decode order; the concatenated output is a playable file/stream. Clusters start
 * at every video keyframe (so a live viewer can join at any Cluster), when a block's relative
 * timestamp would not fit int16, and every AUDIO_CLUSTER_MS for streams without video.
 */
const DURATION_ELEMENT = Buffer.from([0x44, 0x89, 0x88]);

export class MatroskaWriter {
  readonly tracks: readonly Track[];
  readonly webm: boolean;
  private readonly states = new Map<number, TrackState>();
  private readonly hasVideo: boolean;
  /** Timestamp of the open Cluster in ms, or -1 before the first one. */
  private clusterMs = -1;
  private readonly recordDuration: boolean;
  /** Byte position of the Duration value in the header (recordDuration). */
  private durationPos = -1;
  /** Presentation times seen, for the Duration. */
  private firstPtsMs = Infinity;
  private endPtsMs = -Infinity;

  constructor(tracks: Track[], opts: MatroskaWriterOptions) {
    this.webm = opts.webm;
    this.recordDuration = opts.recordDuration === true;
    this.tracks = tracks;
    let n = 0;
    for (const t of tracks) {
      if (t.type !== 'video' && t.type !== 'audio') throw new HazeError('HAZE_ERR_UNSUPPORTED', `Matroska writer: ${t.type} track ${t.id} not supported`);
      if (!isMatroskaCodec(t)) throw new HazeError('HAZE_ERR_UNSUPPORTED', `Matroska writer: codec ${t.codec} not supported`);
      if (this.webm && !isWebmCodec(t)) throw new HazeError('HAZE_ERR_UNSUPPORTED', `WebM cannot carry ${t.codec}`);
      if (this.states.has(t.id)) throw new HazeError('HAZE_ERR_INVALID_ARG', `duplicate track id ${t.id}`);
      n++;
      this.states.set(t.id, { trackNumber: n, numberWidth: vintWidth(n), video: t.type === 'video' });
    }
    if (n === 0) throw new HazeError('HAZE_ERR_INVALID_ARG', 'Matroska writer needs at least one track');
    this.hasVideo = tracks.some((t) => t.type === 'video');
  }

  /** The Matroska track number a track id is written as (1-based, in track order). */
  trackNumber(trackId: number): number | undefined {
    return this.states.get(trackId)?.trackNumber;
  }

  /** EBML header + the start of an unknown-size Segment with Info and Tracks. */
  header(): Buffer {
    const usesV4 = this.tracks.some((t) => t.type === 'audio' && t.codec === 'opus');
    // Matroska v4 for CodecDelay/SeekPreRoll; WebM says v2 unless those v4 elements are present.
    const docTypeVersion = this.webm && !usesV4 ? 2 : 4;
    const ebmlHeader = ebml.master(ID.EBML, [
      ebml.uint(ID.EBMLVersion, 1),
      ebml.uint(ID.EBMLReadVersion, 1),
      ebml.uint(ID.EBMLMaxIDLength, 4),
      ebml.uint(ID.EBMLMaxSizeLength, 8),
      ebml.string(ID.DocType, this.webm ? 'webm' : 'matroska'),
      ebml.uint(ID.DocTypeVersion, docTypeVersion),
      // SimpleBlock needs readers of version 2.
      ebml.uint(ID.DocTypeReadVersion, 2),
    ]);
    const segment = ebml.master(
      ID.Segment,
      [
        ebml.master(ID.Info, [
          ebml.uint(ID.TimestampScale, 1_000_000),
          ...(this.recordDuration ? [ebml.float(ID.Duration, 0)] : []),
          ebml.string(ID.MuxingApp, 'Haze'),
          ebml.string(ID.WritingApp, 'Haze'),
        ]),
        ebml.master(
          ID.Tracks,
          this.tracks.map((t) => trackEntry(t, this.states.get(t.id)!.trackNumber)),
        ),
      ],
      true,
    );
    const out = serializeElements([ebmlHeader, segment]);
    // the Duration element (ID 4489, size 8) is the first one after TimestampScale in Info
    if (this.recordDuration) this.durationPos = out.indexOf(DURATION_ELEMENT, elementSize(ebmlHeader)) + DURATION_ELEMENT.length;
    return out;
  }

  /** The header bytes to overwrite once the file is complete: the Duration in ms (recordDuration). */
  durationPatch(): { position: number; bytes: Buffer } | undefined {
    if (this.durationPos < 0 || this.endPtsMs < this.firstPtsMs) return undefined;
    const bytes = Buffer.alloc(8);
    bytes.writeDoubleBE(this.endPtsMs - this.firstPtsMs);
    return { position: this.durationPos, bytes };
  }

  /**
   * One packet as a SimpleBlock, preceded by a new Cluster when one is due; one allocation,
   * the payload copied once. The block timestamp is the presentation time (timeMs + offsetMs).
   */
  packet(p: Packet): Buffer {
    const st = this.states.get(p.trackId);
    if (!st) throw new HazeError('HAZE_ERR_INVALID_ARG', `packet for track ${p.trackId}, which is not in the header`);
    const ptsMs = Math.round(p.timeMs + p.offsetMs);
    if (this.recordDuration) {
      this.firstPtsMs = Math.min(this.firstPtsMs, ptsMs);
      this.endPtsMs = Math.max(this.endPtsMs, ptsMs);
    }
    let rel = ptsMs - this.clusterMs;
    const newCluster =
      this.clusterMs < 0 ||
      (st.video && p.keyframe) ||
      rel > INT16_MAX ||
      rel < INT16_MIN ||
      (!this.hasVideo && rel >= AUDIO_CLUSTER_MS);
    let clusterBytes = 0;
    let clusterMs = this.clusterMs;
    if (newCluster) {
      // Cluster timestamps are unsigned; never move them backwards.
      clusterMs = Math.max(0, this.clusterMs, ptsMs);
      rel = ptsMs - clusterMs;
      // ID(4) + unknown size(8) + Timestamp element (ID 1 + size 1 + value).
      clusterBytes = 4 + 8 + 2 + uintWidth(clusterMs);
    }
    // A timestamp far behind the cluster (bad input) is clamped rather than wrapped.
    if (rel < INT16_MIN) rel = INT16_MIN;
    const blockData = st.numberWidth + 3 + p.data.length;
    const sizeWidth = vintWidth(blockData);
    const total = clusterBytes + idWidth(ID.SimpleBlock) + sizeWidth + blockData;
    const buf = Buffer.allocUnsafe(total);
    let pos = 0;
    if (newCluster) {
      pos = writeId(buf, pos, ID.Cluster);
      pos += UNKNOWN_SIZE_BYTES.copy(buf, pos);
      pos = writeId(buf, pos, ID.Timestamp);
      const w = uintWidth(clusterMs);
      buf[pos++] = 0x80 | w;
      if (w <= 6) pos = buf.writeUIntBE(clusterMs, pos, w);
      else {
        buf.writeUIntBE(Math.floor(clusterMs / 0x1_0000_0000), pos, w - 4);
        buf.writeUInt32BE(clusterMs >>> 0, pos + w - 4);
        pos += w;
      }
      this.clusterMs = clusterMs;
    }
    pos = writeId(buf, pos, ID.SimpleBlock);
    pos = writeVint(buf, pos, blockData, sizeWidth);
    pos = writeVint(buf, pos, st.trackNumber, st.numberWidth);
    pos = buf.writeInt16BE(rel, pos);
    buf[pos++] = p.keyframe ? 0x80 : 0;
    buf.set(p.data, pos);
    return buf;
  }
}
