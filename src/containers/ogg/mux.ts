// A live Ogg muxer for one audio track (RFC 3533 pages; RFC 7845 Opus / Vorbis I Appendix A
// mappings): the codec headers on their own pages, then one page per audio packet, flushed at
// once so a listener is never more than one frame behind.
//
// Granule positions:
// - Opus: 48 kHz samples including the pre-skip, counted from each packet's TOC (RFC 6716 §3.1)
//   so they are sample-exact; anchored at preSkip + timeMs * 48 on the first packet and moved
//   forward again when the timestamps run ahead of the count by more than REANCHOR_MS (a gap in
//   the source), never backwards.
// - Vorbis: round(timeMs * rate / 1000) of the packet, kept non-decreasing. This is the start
//   of the packet rather than the end of its decoded samples (exact values would need the mode
//   block flags from the setup header), so positions are early by at most one block.
//
// One muxer serves every listener of a feed. Its data pages are numbered from the header page
// count on; header pages are numbered just before the first page a listener receives, so each
// listener sees an unbroken page sequence.

import type { AudioTrack } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { writeOggPages } from './page.js';
import { OPUS_GRANULE_RATE, opusHeadFor, opusPacketSamples, opusPreSkip, opusTags } from './opus.js';
import { splitVorbisHeaders } from './vorbis.js';

/** A timestamp jump past the sample count larger than this re-anchors the Opus granule. */
const REANCHOR_MS = 100;
const VENDOR = 'Haze';

export function oggSupports(track: AudioTrack): boolean {
  return track.codec === 'opus' || track.codec === 'vorbis';
}

export class OggAudioMuxer {
  private readonly headerGroups: Buffer[][];
  /** Pages the header groups take (what data page numbering starts after). */
  readonly headerPageCount: number;
  private readonly opus: boolean;
  private readonly preSkip: number;
  private readonly rate: number;
  private nextSequence: number;
  /** Granule at the end of the newest packet, -1 before the first. */
  private granule = -1;
  private lastTimeMs = Number.NaN;
  private lastFirstSequence = 0;
  private headerCache: { first: number; bytes: Buffer } | undefined;

  /** Throws HAZE_ERR_UNSUPPORTED / HAZE_ERR_MALFORMED when the track cannot be carried. */
  constructor(
    track: AudioTrack,
    readonly serial: number,
  ) {
    if (track.codec === 'opus') {
      const head = opusHeadFor(track.init, track.channels, track.rate);
      this.opus = true;
      this.preSkip = opusPreSkip(head);
      this.rate = OPUS_GRANULE_RATE;
      // RFC 7845 §3: OpusHead alone on page 0; OpusTags from page 1, finishing its page
      this.headerGroups = [[head], [opusTags(VENDOR)]];
    } else if (track.codec === 'vorbis') {
      const h = splitVorbisHeaders(track.init);
      this.opus = false;
      this.preSkip = 0;
      this.rate = h.rate;
      // Vorbis I A.2: identification alone on the first page; comment and setup after it
      this.headerGroups = [[h.identification], [h.comment, h.setup]];
    } else {
      throw new HazeError('HAZE_ERR_UNSUPPORTED', `${track.codec} in Ogg`);
    }
    this.headerPageCount = this.writeHeaders(0).pages;
    this.nextSequence = this.headerPageCount;
  }

  private writeHeaders(first: number): { bytes: Buffer; pages: number } {
    const parts: Buffer[] = [];
    let seq = first;
    this.headerGroups.forEach((group, i) => {
      const w = writeOggPages(
        group.map((data) => ({ data, granule: 0 })),
        { serial: this.serial, sequence: seq, bos: i === 0 },
      );
      parts.push(w.bytes);
      seq += w.pages;
    });
    return { bytes: Buffer.concat(parts), pages: seq - first };
  }

  /**
   * The header pages for a listener whose first data page is that of the packet at `timeMs`
   * (when it is the newest packet written) or else the next packet's.
   */
  header(timeMs: number): Buffer {
    const firstData = timeMs === this.lastTimeMs ? this.lastFirstSequence : this.nextSequence;
    const first = (firstData - this.headerPageCount) >>> 0;
    if (this.headerCache?.first !== first) this.headerCache = { first, bytes: this.writeHeaders(first).bytes };
    return this.headerCache.bytes;
  }

  /** The page(s) of one audio packet. */
  packet(timeMs: number, data: Buffer): Buffer {
    const t = Math.max(0, timeMs);
    if (this.opus) {
      const anchored = this.preSkip + Math.round(t * (OPUS_GRANULE_RATE / 1000));
      let start = this.granule;
      if (start < 0 || anchored > start + REANCHOR_MS * (OPUS_GRANULE_RATE / 1000)) start = anchored;
      const fallback = Number.isNaN(this.lastTimeMs) ? 960 : Math.max(0, Math.round((t - this.lastTimeMs) * (OPUS_GRANULE_RATE / 1000)));
      this.granule = start + (opusPacketSamples(data) ?? fallback);
    } else {
      this.granule = Math.max(this.granule, Math.round((t * this.rate) / 1000));
    }
    const first = this.nextSequence;
    const w = writeOggPages([{ data, granule: this.granule }], { serial: this.serial, sequence: first });
    this.nextSequence = (first + w.pages) >>> 0;
    this.lastTimeMs = timeMs;
    this.lastFirstSequence = first;
    return w.bytes;
  }

  /** An empty page that ends this logical stream (before a chained stream starts). */
  end(): Buffer {
    const w = writeOggPages([], { serial: this.serial, sequence: this.nextSequence, eos: true, emptyGranule: Math.max(0, this.granule) });
    this.nextSequence = (this.nextSequence + 1) >>> 0;
    return w.bytes;
  }
}
