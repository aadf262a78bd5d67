// The live window of a segmented output (HLS TS, CMAF): which cut segments stay listed.

import type { HlsSegment } from '../containers/hls/segment-index.js';

/** Hard bounds on what one segmenter keeps, whatever the DVR setting (20 minutes of 2 s segments; 256 MiB). */
export const MAX_SEGMENTS = 600;
export const MAX_WINDOW_BYTES = 256 * 1024 * 1024;

export interface WindowSegment extends HlsSegment {
  epoch: number;
  /** Bytes the segment holds in memory. */
  bytes: number;
}

/**
 * Keeps what the stream's DVR window keeps (at least 3 segments), within MAX_SEGMENTS and
 * MAX_WINDOW_BYTES. The
 * first listed segment never carries a discontinuity: its epoch is the playlist's
 * EXT-X-DISCONTINUITY-SEQUENCE.
 */
export function trimSegments(segments: WindowSegment[], firstMs: number): void {
  let bytes = 0;
  for (const s of segments) bytes += s.bytes;
  while (segments.length > 3) {
    const first = segments[0]!;
    if (segments.length <= MAX_SEGMENTS && bytes <= MAX_WINDOW_BYTES && (firstMs < 0 || first.startMs + first.durationMs >= firstMs)) break;
    segments.shift();
    bytes -= first.bytes;
  }
  if (segments[0]) segments[0].discontinuity = undefined;
}
