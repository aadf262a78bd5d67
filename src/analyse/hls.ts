// `haze analyse` of an HLS playlist: the dump lines (the parser is containers/hls/parse.ts).

import type { M3u8 } from '../containers/hls/parse.js';

/** The lines a dump prints for a playlist. */
export function m3u8Lines(pl: M3u8): string[] {
  if (pl.master) return [`HLS multivariant playlist: ${pl.variants.length} variants`, ...pl.variants.map((v) => `  variant ${v.uri} bandwidth ${v.bandwidth}`)];
  const head = `HLS media playlist: version ${pl.version ?? '-'}, target ${pl.targetDurationS ?? '-'} s, media sequence ${pl.mediaSequence}, ${pl.segments.length} segments, ${pl.endList ? 'ended (VoD)' : 'live'}${pl.mapUri ? `, map ${pl.mapUri}` : ''}`;
  return [head, ...pl.segments.map((s, i) => `  segment ${pl.mediaSequence + i}: ${s.durationS} s ${s.uri}`)];
}
