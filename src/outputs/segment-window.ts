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

/**
 * Rendered playlists of one segmenter state. Viewers woken by the same new part or segment ask
 * for the same text: it is rendered once per state and variant of the request (query, delta
 * update, low latency) and shared until the state changes.
 */
export class PlaylistCache {
  private readonly entries = new Map<string, string>();

  /** The segmenter's state changed: every rendered playlist is stale. */
  invalidate(): void {
    this.entries.clear();
  }

  get(key: string, render: () => string): string {
    let text = this.entries.get(key);
    if (text === undefined) {
      // a handful of request variants per state; a flood of distinct tokens must not grow it
      if (this.entries.size >= 64) this.entries.clear();
      this.entries.set(key, (text = render()));
    }
    return text;
  }
}
