// The index of a VoD file: its tracks and, per track, the DTSC tables (reference §2.4/§2.5:
// every packet's size, duration and composition offset; keys with the byte position to read
// from; fragments of keys about 1.9 s long). It is what a `.dtsh` holds, built once by a scan of
// the file, and everything a VoD output needs before reading a media byte: seek points, HLS and
// DASH segment lists, and a progressive MP4's sample tables.

import type { Track } from '../media/types.js';
import { DtscIndexBuilder } from '../containers/dtsc/index-builder.js';
import { plainTrack, type DtscStreamMeta, type DtscTrack, type DtscTrackTables } from '../containers/dtsc/header.js';
import type { FileSource } from '../inputs/files/file-source.js';
import { HazeError } from '../util/errors.js';

export class VodTrackIndex {
  /** Decode time of every packet (part), ms. */
  readonly partTimeMs: Float64Array;
  /** Index of each key's first part. */
  readonly keyFirstPart: Uint32Array;

  constructor(
    readonly track: Track,
    readonly tables: DtscTrackTables,
    readonly firstMs: number,
    readonly lastMs: number,
    readonly maxBps: number,
  ) {
    const parts = tables.parts;
    this.partTimeMs = new Float64Array(parts.length);
    let t = firstMs;
    for (let i = 0; i < parts.length; i++) {
      this.partTimeMs[i] = t;
      t += parts[i]!.durationMs;
    }
    this.keyFirstPart = new Uint32Array(tables.keys.length);
    let first = 0;
    tables.keys.forEach((k, i) => {
      this.keyFirstPart[i] = first;
      first += k.partCount;
    });
  }

  get partCount(): number {
    return this.tables.parts.length;
  }

  /** Where the track ends: its last packet's time plus its duration. */
  get endMs(): number {
    const n = this.partCount;
    return n === 0 ? this.firstMs : this.partTimeMs[n - 1]! + this.tables.parts[n - 1]!.durationMs;
  }

  /** The key at or before `timeMs` (the first key for earlier times); -1 without keys. */
  keyAt(timeMs: number): number {
    const keys = this.tables.keys;
    let lo = 0;
    let hi = keys.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (keys[mid]!.timeMs <= timeMs) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** The first part whose time is at or after `timeMs` (partCount when none is). */
  partFrom(timeMs: number): number {
    let lo = 0;
    let hi = this.partCount;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.partTimeMs[mid]! < timeMs) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export interface VodIndex {
  tracks: VodTrackIndex[];
  /** Media time the file ends at (the longest track). */
  endMs: number;
  /** Media time the file starts at (the earliest track). */
  startMs: number;
}

export function indexFromTracks(tracks: readonly VodTrackIndex[]): VodIndex {
  const withParts = tracks.filter((t) => t.partCount > 0);
  return {
    tracks: withParts,
    endMs: Math.max(0, ...withParts.map((t) => t.endMs)),
    startMs: withParts.length === 0 ? 0 : Math.min(...withParts.map((t) => t.firstMs)),
  };
}

/** The index of a DTSC header that carries tables for its tracks (a `.dtsh`, a finished DTSC file); undefined when one lacks them. */
export function indexFromMeta(meta: DtscStreamMeta): VodIndex | undefined {
  if (meta.tracks.some((t) => !t.tables)) return undefined;
  return indexFromTracks(meta.tracks.map((t) => new VodTrackIndex(plainTrack(t), t.tables!, t.firstMs, t.lastMs, t.maxBps)));
}

/** The DTSC header (with tables) of an index, for a `.dtsh`. */
export function metaFromIndex(index: VodIndex): DtscStreamMeta {
  const tracks = index.tracks.map((t, i): DtscTrack => ({ ...t.track, idx: i, firstMs: t.firstMs, lastMs: t.lastMs, maxBps: t.maxBps, tables: t.tables }));
  return { live: false, vod: true, tracks };
}

/**
 * Indexes a file by reading it once (FileSource.scan): tracks as the reader defines them (the
 * last definition wins), packets through the DTSC index builder, as MistServer's inputs do.
 */
export async function scanIndex(source: FileSource): Promise<{ index: VodIndex; warnings: string[] }> {
  const builder = new DtscIndexBuilder();
  const tracks = new Map<number, Track>();
  const warnings: string[] = [];
  for await (const chunk of source.scan()) {
    for (const t of chunk.tracks ?? []) {
      tracks.set(t.id, t);
      builder.addTrack(t.id, t.type === 'video');
    }
    if (chunk.warnings) warnings.push(...chunk.warnings);
    for (const p of chunk.packets) builder.add({ trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, size: p.data.length, bpos: p.bpos });
  }
  const out: VodTrackIndex[] = [];
  for (const t of tracks.values()) {
    const idx = builder.track(t.id);
    if (idx) out.push(new VodTrackIndex({ ...t, bps: idx.bps || t.bps }, idx.tables, idx.firstMs, idx.lastMs, idx.maxBps));
  }
  if (out.length === 0) throw new HazeError('HAZE_ERR_MALFORMED', `${source.file}: no media packets found`);
  return { index: indexFromTracks(out), warnings };
}
