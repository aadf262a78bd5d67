// The VoD index of a DTSC header (reference §2.4 `fragments`/`keys`/`keysizes`/`parts`), built
// from a file's packets in file order as MistServer's metadata update does it, so a `.dtsh`
// Haze writes matches the one MistServer writes for the same file:
//   - every packet is a part (its size, composition offset, and the gap to the track's next
//     packet as duration; the last part repeats the previous gap, the first of a track is 0);
//   - a key starts at each video keyframe, and on other tracks once AUDIO_KEY_INTERVAL_MS passed
//     since the key before (in DTSC audio packets carry no keyframe flag);
//   - a fragment starts at a key at least MIN_FRAGMENT_MS after the first key of the fragment
//     before (the last fragment's duration stays 0, as in MistServer's files);
//   - bps / maxbps (bytes per second) are updated when a fragment closes: total payload over
//     total duration of the closed fragments, and the largest closed fragment's rate.
// Packets that go back in time on their track are ignored (MistServer logs and drops them).

import type { DtscFragment, DtscKey, DtscPart, DtscTrackTables } from './header.js';
import { dtp2SizeFor } from './packets.js';

/** MistServer's virtual keyframe interval for audio and metadata tracks (3.x `AUDIO_KEY_INTERVAL`). */
export const AUDIO_KEY_INTERVAL_MS = 2047;
/** MistServer's default minimum fragment duration. */
export const MIN_FRAGMENT_MS = 1900;

/** What the index needs of one packet. */
export interface IndexedPacket {
  trackId: number;
  timeMs: number;
  offsetMs: number;
  keyframe: boolean;
  /** Payload bytes. */
  size: number;
  /** Byte position of the packet in the source file (0 when unknown). */
  bpos: number;
}

interface KeyState extends DtscKey {
  sizeBytes: number;
}

interface TrackState {
  video: boolean;
  parts: DtscPart[];
  keys: KeyState[];
  fragments: DtscFragment[];
  firstMs: number;
  lastMs: number;
  /** Bytes per second, as MistServer's `bps` and `maxbps`. */
  bps: number;
  maxBps: number;
}

export interface TrackIndex {
  tables: DtscTrackTables;
  firstMs: number;
  lastMs: number;
  bps: number;
  maxBps: number;
}

export class DtscIndexBuilder {
  private readonly tracks = new Map<number, TrackState>();

  /** Declares a track (before its packets); `video` decides how keys are made. */
  addTrack(trackId: number, video: boolean): void {
    if (!this.tracks.has(trackId)) this.tracks.set(trackId, { video, parts: [], keys: [], fragments: [], firstMs: 0, lastMs: 0, bps: 0, maxBps: 0 });
  }

  add(p: IndexedPacket): void {
    const t = this.tracks.get(p.trackId);
    if (!t) return;
    const hasParts = t.parts.length > 0;
    if (hasParts && p.timeMs < t.lastMs) return;
    const gapMs = hasParts ? p.timeMs - t.lastMs : 0;
    if (hasParts) t.parts[t.parts.length - 1]!.durationMs = gapMs;
    else t.firstMs = p.timeMs;
    t.parts.push({ sizeBytes: p.size, durationMs: gapMs, offsetMs: p.offsetMs });

    // In DTSC only video has keyframes: every audio frame is a start point, so MistServer's
    // inputs flag none and keys come from the interval.
    const keyframe = p.keyframe && t.video;
    const lastKey = t.keys[t.keys.length - 1];
    const startsKey = keyframe || !lastKey || (!t.video && p.timeMs >= AUDIO_KEY_INTERVAL_MS && p.timeMs - lastKey.timeMs >= AUDIO_KEY_INTERVAL_MS);
    if (startsKey) {
      if (lastKey) lastKey.durationMs = p.timeMs - lastKey.timeMs;
      const number = t.keys.length;
      t.keys.push({ bpos: p.bpos, durationMs: 0, number, partCount: 0, timeMs: p.timeMs, sizeBytes: 0 });
      this.maybeStartFragment(t, p.timeMs, number);
    } else {
      lastKey.durationMs += gapMs;
    }
    const key = t.keys[t.keys.length - 1]!;
    key.partCount++;
    key.sizeBytes += dtp2SizeFor(p.size, p.offsetMs, keyframe, p.bpos);
    t.fragments[t.fragments.length - 1]!.sizeBytes += p.size;
    t.lastMs = p.timeMs;
  }

  private maybeStartFragment(t: TrackState, timeMs: number, keyNumber: number): void {
    const last = t.fragments[t.fragments.length - 1];
    if (last && !(timeMs >= MIN_FRAGMENT_MS && timeMs - MIN_FRAGMENT_MS >= t.keys[last.firstKey]!.timeMs)) {
      last.keyCount++;
      return;
    }
    if (last) {
      last.durationMs = timeMs - t.keys[last.firstKey]!.timeMs;
      let bytes = 0;
      let durationMs = 0;
      for (const f of t.fragments) {
        bytes += f.sizeBytes;
        durationMs += f.durationMs;
      }
      t.bps = durationMs > 0 ? Math.floor((bytes * 1000) / durationMs) : 0;
      if (last.durationMs > 0) t.maxBps = Math.max(t.maxBps, Math.floor((last.sizeBytes * 1000) / last.durationMs));
    }
    t.fragments.push({ durationMs: 0, keyCount: 1, firstKey: keyNumber, sizeBytes: 0 });
  }

  /** The index of a track so far; undefined for an unknown track or one without packets. */
  track(trackId: number): TrackIndex | undefined {
    const t = this.tracks.get(trackId);
    if (!t || t.parts.length === 0) return undefined;
    const keys = t.keys.map(({ sizeBytes: _s, ...k }) => k);
    const tables: DtscTrackTables = { fragments: t.fragments.map((f) => ({ ...f })), keys, keySizes: t.keys.map((k) => k.sizeBytes), parts: t.parts.map((p) => ({ ...p })) };
    return { tables, firstMs: t.firstMs, lastMs: t.lastMs, bps: t.bps, maxBps: t.maxBps };
  }
}
