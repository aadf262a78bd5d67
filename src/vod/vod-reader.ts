// Reading a VoD file from a time: the packets of the selected tracks in time order, from the
// keyframe at or before the start (so the first frame decodes) to the stop time.
//
// Seeking is MistServer's (reference §2.5): each track's key at or before the start gives the
// byte position to read from. Tracks whose positions lie close together are read by one pass
// over the file; a track stored far away (appended to a DTSC file, say) gets a pass of its own,
// so nothing is buffered for long. The passes are merged by time through a queue per track; a
// track counts as done once the index says its last packet in range has come, and the queues
// are bounded, so memory stays small however the file is laid out.

import type { Packet } from '../media/types.js';
import type { VodFile } from './vod-library.js';
import type { VodTrackIndex } from './vod-index.js';

/** Tracks whose read positions are further apart than this get passes of their own. */
const SEPARATE_PASS_BYTES = 16 * 1024 * 1024;
/** Packets queued (all tracks) after which the oldest one goes out even if a queue is empty. */
const MAX_QUEUED = 20_000;

export interface VodReadOptions {
  /** Media time to start at; reading begins at the sync track's keyframe at or before it. */
  startMs: number;
  /** Media time to end before (exclusive); default the end of the file. */
  stopMs?: number;
  /** Track ids to read, in tie-break order. */
  trackIds: readonly number[];
  /** The track whose keyframes are seek points (default: the first video track selected). */
  syncTrackId?: number;
}

/**
 * Where a read from `startMs` really begins: the sync track's keyframe at or before it (every
 * audio frame is a start point: a read without video begins where asked).
 */
export function seekTime(file: VodFile, opts: Pick<VodReadOptions, 'startMs' | 'trackIds' | 'syncTrackId'>): number {
  const sync = syncTrack(file, opts.trackIds, opts.syncTrackId);
  if (!sync || sync.track.type !== 'video') return opts.startMs;
  const k = sync.keyAt(opts.startMs);
  return k < 0 ? opts.startMs : sync.tables.keys[k]!.timeMs;
}

function syncTrack(file: VodFile, ids: readonly number[], syncId?: number): VodTrackIndex | undefined {
  const selected = file.index.tracks.filter((t) => ids.includes(t.track.id));
  return selected.find((t) => t.track.id === syncId) ?? selected.find((t) => t.track.type === 'video') ?? selected[0];
}

interface TrackState {
  index: VodTrackIndex;
  order: number;
  queue: Packet[];
  /** Packets of this track still expected in range (from the index). */
  expected: number;
  lastMs: number;
  pass: Pass;
}

interface Pass {
  ids: Set<number>;
  iterator: AsyncIterator<Packet[]>;
  done: boolean;
}

/** The packets of the selected tracks from the keyframe at or before `startMs` up to `stopMs`, in time order. */
export async function* readVod(file: VodFile, opts: VodReadOptions): AsyncGenerator<Packet, void, void> {
  const release = file.use();
  const passes: Pass[] = [];
  try {
    const fromMs = seekTime(file, opts);
    const stopMs = opts.stopMs ?? Number.POSITIVE_INFINITY;
    const selected = opts.trackIds.map((id) => file.index.tracks.find((t) => t.track.id === id)).filter((t): t is VodTrackIndex => t !== undefined);
    const tracks = new Map<number, TrackState>();
    // each track's read position; then passes over positions that lie close together
    const starts = selected
      .map((index, order) => {
        const k = index.keyAt(fromMs);
        const first = index.partFrom(fromMs);
        const end = stopMs === Number.POSITIVE_INFINITY ? index.partCount : index.partFrom(stopMs);
        return { index, order, bpos: k < 0 ? 0 : index.tables.keys[k]!.bpos, expected: Math.max(0, end - first) };
      })
      .filter((s) => s.expected > 0)
      .sort((a, b) => a.bpos - b.bpos);
    const allTracks = file.index.tracks.map((t) => t.track);
    let pass: Pass | undefined;
    let passStart = 0;
    for (const s of starts) {
      if (!pass || s.bpos - passStart > SEPARATE_PASS_BYTES) {
        pass = { ids: new Set(), iterator: file.source.readFrom(s.bpos, allTracks)[Symbol.asyncIterator](), done: false };
        passStart = s.bpos;
        passes.push(pass);
      }
      pass.ids.add(s.index.track.id);
      tracks.set(s.index.track.id, { index: s.index, order: s.order, queue: [], expected: s.expected, lastMs: Number.NEGATIVE_INFINITY, pass });
    }
    let queued = 0;

    const pull = async (p: Pass): Promise<void> => {
      const next = await p.iterator.next();
      if (next.done) {
        p.done = true;
        for (const t of tracks.values()) if (t.pass === p) t.expected = t.queue.length;
        return;
      }
      for (const packet of next.value) {
        const t = tracks.get(packet.trackId);
        if (!t || t.pass !== p || t.expected <= t.queue.length) continue;
        // before the start, after the stop, or back in time (the index skipped those too)
        if (packet.timeMs < fromMs || packet.timeMs >= stopMs || packet.timeMs < t.lastMs) continue;
        t.lastMs = packet.timeMs;
        t.queue.push(packet);
        queued++;
      }
    };

    for (;;) {
      // a track that may still get packets but has none queued: read on in its pass
      let starved: TrackState | undefined;
      for (const t of tracks.values()) if (t.queue.length === 0 && t.expected > 0 && !t.pass.done) starved = t;
      if (starved && queued < MAX_QUEUED) {
        await pull(starved.pass);
        continue;
      }
      let best: TrackState | undefined;
      for (const t of tracks.values()) {
        const head = t.queue[0];
        if (head && (!best || head.timeMs < best.queue[0]!.timeMs || (head.timeMs === best.queue[0]!.timeMs && t.order < best.order))) best = t;
      }
      if (!best) return;
      const packet = best.queue.shift()!;
      best.expected--;
      queued--;
      yield packet;
    }
  } finally {
    for (const p of passes) if (!p.done) await p.iterator.return?.();
    release();
  }
}
