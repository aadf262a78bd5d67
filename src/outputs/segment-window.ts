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
 * Keeps what the stream's DVR window keeps, within MAX_SEGMENTS and MAX_WINDOW_BYTES; a
 * segment leaves only if at least three target durations stay listed (RFC 8216 §6.2.2), so a
 * dropped buffer (a new source) does not empty the playlist.
 */
export function trimSegments(segments: WindowSegment[], firstMs: number, targetS: number): void {
  let bytes = 0;
  let durationMs = 0;
  for (const s of segments) {
    bytes += s.bytes;
    durationMs += s.durationMs;
  }
  while (segments.length > 1) {
    const first = segments[0]!;
    const overLimit = segments.length > MAX_SEGMENTS || bytes > MAX_WINDOW_BYTES;
    const outsideWindow = firstMs >= 0 && first.startMs + first.durationMs < firstMs && durationMs - first.durationMs >= 3000 * targetS;
    if (!overLimit && !outsideWindow) break;
    segments.shift();
    bytes -= first.bytes;
    durationMs -= first.durationMs;
  }
}

/**
 * EXT-X-DISCONTINUITY-SEQUENCE of a window: the discontinuities before its first segment. A
 * segment keeps its tag when it becomes the first, so the number only grows when a tagged
 * segment leaves (RFC 8216 §6.2.2).
 */
export function discontinuitySequence(segments: readonly WindowSegment[], fallbackEpoch: number): number {
  const first = segments[0];
  return first ? first.epoch - (first.discontinuity ? 1 : 0) : fallbackEpoch;
}

/**
 * Puts the segments a stream listed before it ended in front of those of its continuation
 * (same name, new publisher), so the playlist goes on with a discontinuity instead of starting
 * over. Flags follow the epochs.
 */
export function prependSegments<T extends WindowSegment>(segments: T[], earlier: readonly T[]): void {
  const first = segments[0];
  segments.unshift(...earlier.filter((s) => !first || s.sequence < first.sequence));
  segments.forEach((s, i) => {
    if (i > 0) s.discontinuity = s.epoch !== segments[i - 1]!.epoch || undefined;
  });
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
