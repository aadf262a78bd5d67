// Track selection by query (`?audio=`, `?video=`), after MistServer's pickTracks
// (reference Appendix B): `none`/`-1`, `all`/`*`, a 0-based index into the stream's track
// list, `iN` for the source's original track id, a codec name or a language; items separated
// by commas are a union, `!item` removes, `|item` narrows. Without a selector, an output takes
// the first track of each type whose codec it can carry.

import type { Track, TrackType } from '../media/types.js';
import type { TrackSelection } from './feed.js';

export interface SelectorQuery {
  audio?: string | null;
  video?: string | null;
  subtitle?: string | null;
  meta?: string | null;
}

export interface FormatCapability {
  /** Codecs this format carries, per track type. */
  codecs: Partial<Record<TrackType, readonly string[]>>;
  /** At most one track of each type (FLV, RTMP). */
  singlePerType: boolean;
}

const TYPES: TrackType[] = ['video', 'audio', 'subtitle', 'meta'];

function matchItem(item: string, track: Track, index: number): boolean {
  const v = item.toLowerCase();
  if (v === 'all' || v === '*') return true;
  if (/^\d+$/.test(v)) return Number(v) === index;
  if (/^i\d+$/.test(v)) return Number(v.slice(1)) === track.id;
  return track.codec.toLowerCase() === v || (track.lang !== 'und' && track.lang.toLowerCase() === v);
}

/** Tracks of `type` picked by one selector value, in stream order. */
function pickType(value: string, type: TrackType, tracks: readonly Track[]): Set<Track> {
  const picked = new Set<Track>();
  const candidates = tracks.map((t, i) => [t, i] as const).filter(([t]) => t.type === type);
  for (const raw of value.split(',')) {
    const item = raw.trim();
    if (!item || item === 'none' || item === '-1') continue;
    if (item.startsWith('!')) {
      for (const [t, i] of candidates) if (matchItem(item.slice(1), t, i)) picked.delete(t);
    } else if (item.startsWith('|')) {
      for (const [t, i] of candidates) if (picked.has(t) && !matchItem(item.slice(1), t, i)) picked.delete(t);
    } else {
      for (const [t, i] of candidates) if (matchItem(item, t, i)) picked.add(t);
    }
  }
  return picked;
}

/** A stable key for the selector values (feeds are shared per key). */
export function selectionKey(q: SelectorQuery): string {
  return TYPES.map((t) => `${t}=${q[t] ?? ''}`).join('&');
}

export function selectTracks(tracks: readonly Track[], q: SelectorQuery, cap: FormatCapability): TrackSelection {
  const chosen: Track[] = [];
  for (const type of TYPES) {
    const supported = cap.codecs[type];
    if (!supported) continue;
    const value = q[type];
    let picked: Track[];
    if (value === undefined || value === null || value === '') {
      const first = tracks.find((t) => t.type === type && supported.includes(t.codec));
      picked = first ? [first] : [];
    } else {
      picked = [...pickType(value, type, tracks)].filter((t) => supported.includes(t.codec));
    }
    chosen.push(...(cap.singlePerType ? picked.slice(0, 1) : picked));
  }
  const sync = chosen.find((t) => t.type === 'video') ?? chosen[0];
  return { ids: new Set(chosen.map((t) => t.id)), syncTrackId: sync ? sync.id : -1 };
}
