// The segment index an HLS/DASH output builds its playlists from (RFC 8216bis §4.4.4 Media
// Segment tags, §4.4.4.9 EXT-X-PART, §4.4.5.2 EXT-X-PRELOAD-HINT). Pure data: the output that
// cuts fragments fills it in; playlist.ts and dash/mpd.ts only read it.

/** A partial segment (LL-HLS EXT-X-PART). */
export interface HlsPart {
  durationMs: number;
  uri: string;
  /** Starts with an independent frame (a keyframe); INDEPENDENT=YES. */
  independent: boolean;
}

/** A complete media segment. */
export interface HlsSegment {
  /** Media Sequence Number (msn). Consecutive within an index. */
  sequence: number;
  /** Media time of the segment's first sample, ms. */
  startMs: number;
  durationMs: number;
  uri: string;
  /** A discontinuity precedes this segment (EXT-X-DISCONTINUITY). */
  discontinuity?: boolean;
  /** Wall-clock time of the first sample, ms since the Unix epoch (EXT-X-PROGRAM-DATE-TIME). */
  programDateTimeMs?: number;
  /** The segment's partial segments, in order (LL-HLS). */
  parts?: HlsPart[];
}

/** The resource a client should request next (EXT-X-PRELOAD-HINT TYPE=PART). */
export interface HlsPreloadHint {
  uri: string;
}

/** Segments of one track set (one rendition). */
export interface SegmentIndex {
  /** Complete segments, oldest first, with consecutive `sequence` numbers. */
  segments: HlsSegment[];
  /**
   * Parts already published of the segment still being cut (msn = last segment's sequence + 1,
   * or `nextSequence` when there are no segments yet). Listed after the complete segments.
   */
  pendingParts?: HlsPart[];
  /** The msn of the first segment when `segments` is empty (default 0). */
  nextSequence?: number;
  /** Discontinuities before the first listed segment (EXT-X-DISCONTINUITY-SEQUENCE, default 0). */
  discontinuitySequence?: number;
  preloadHint?: HlsPreloadHint;
  /**
   * EXT-X-TARGETDURATION the playlist has announced so far (the largest over the stream's life:
   * it must not change while the playlist is live); the listed segments' own value if larger.
   */
  targetDurationS?: number;
  /** No more segments will follow (EXT-X-ENDLIST / static MPD). */
  ended: boolean;
}

/** The msn of the segment still being cut: one after the last complete segment. */
export function pendingSequence(index: SegmentIndex): number {
  const last = index.segments[index.segments.length - 1];
  return last ? last.sequence + 1 : (index.nextSequence ?? 0);
}

/** The last complete segment's msn and its last part index (for EXT-X-RENDITION-REPORT). */
export function lastPosition(index: SegmentIndex): { msn: number; part: number | undefined } {
  const pending = index.pendingParts?.length ?? 0;
  if (pending > 0) return { msn: pendingSequence(index), part: pending - 1 };
  const last = index.segments[index.segments.length - 1];
  if (!last) return { msn: pendingSequence(index), part: undefined };
  const parts = last.parts?.length ?? 0;
  return { msn: last.sequence, part: parts > 0 ? parts - 1 : undefined };
}
