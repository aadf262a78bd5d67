// Progressive fragmented MP4 (`/NAME.mp4`) and Matroska/WebM (`/NAME.mkv`, `/NAME.webm`) for
// live viewers, as feed writers: one writer per feed, so fragment sequence numbers and
// Matroska clusters are shared by every viewer. Both start a new fragment / cluster at each
// video keyframe, which is where a viewer starts: its first bytes after the header are a
// whole fragment or cluster.

import { initSegment, mp4Supports } from '../containers/mp4/init.js';
import { FragmentWriter } from '../containers/mp4/fragment.js';
import { MatroskaWriter, isMatroskaCodec, isWebmCodec } from '../containers/mkv/writer.js';
import type { Packet, Track } from '../media/types.js';
import type { FormatWriter } from './feed.js';
import type { FormatCapability } from './track-select.js';

const EMPTY = Buffer.alloc(0);

export const MP4_CAPABILITY: FormatCapability = {
  codecs: { video: ['H264', 'HEVC', 'AV1', 'VP9'], audio: ['AAC', 'MP3', 'opus', 'AC3'] },
  singlePerType: false,
};

export const MKV_CAPABILITY: FormatCapability = {
  codecs: { video: ['H264', 'HEVC', 'AV1', 'VP8', 'VP9'], audio: ['AAC', 'MP3', 'opus', 'AC3', 'vorbis', 'FLAC'] },
  singlePerType: false,
};

export const WEBM_CAPABILITY: FormatCapability = {
  codecs: { video: ['VP8', 'VP9', 'AV1'], audio: ['opus', 'vorbis'] },
  singlePerType: false,
};

/** fMP4: the init segment, then one moof+mdat per packet (no waiting for a whole GOP). */
export class Fmp4Writer implements FormatWriter {
  private tracks: Track[] = [];
  private fragments: FragmentWriter | undefined;
  private sequence = 1;

  setTracks(tracks: readonly Track[]): void {
    this.tracks = tracks.filter(mp4Supports);
    this.fragments = this.tracks.length > 0 ? new FragmentWriter(this.tracks) : undefined;
  }

  header(): Buffer {
    return this.tracks.length > 0 ? initSegment(this.tracks) : EMPTY;
  }

  /** A progressive MP4 cannot change its tracks mid-file: viewers keep the old init (same codecs after a reconnect). */
  tracksChanged(): Buffer | null {
    return null;
  }

  packet(p: Packet): Buffer | null {
    return this.fragments ? this.fragments.fragment(p.trackId, [p], this.sequence++) : null;
  }
}

export class MatroskaFeedWriter implements FormatWriter {
  private writer: MatroskaWriter | undefined;

  /** `recordDuration`: a file whose header gets its length at the end (durationPatch). */
  constructor(
    private readonly webm: boolean,
    private readonly recordDuration = false,
  ) {}

  setTracks(tracks: readonly Track[]): void {
    const carried = tracks.filter(this.webm ? isWebmCodec : isMatroskaCodec);
    this.writer = carried.length > 0 ? new MatroskaWriter(carried, { webm: this.webm, recordDuration: this.recordDuration }) : undefined;
  }

  durationPatch(): { position: number; bytes: Buffer } | undefined {
    return this.writer?.durationPatch();
  }

  header(): Buffer {
    return this.writer ? this.writer.header() : EMPTY;
  }

  /** Matroska declares its tracks once, in the header; a live file keeps them. */
  tracksChanged(): Buffer | null {
    return null;
  }

  packet(p: Packet): Buffer | null {
    return this.writer && this.writer.trackNumber(p.trackId) !== undefined ? this.writer.packet(p) : null;
  }
}
