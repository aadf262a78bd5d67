// The --validate rules of `haze analyse` over the packet records of any container (the
// MistAnalyser `-m validate` idea, reference §9): per track, decode times never go back, no gap
// larger than maxGapMs, video starts on a keyframe, pts >= dts; packets name declared tracks.
// Container rules (truncation, DTSC index tables, parser errors) come from the describers.

import type { Track } from '../media/types.js';
import type { PacketRecord, Problem } from './model.js';

export interface ValidatorOptions {
  /** Largest accepted jump between a track's consecutive decode times, ms (default 1000). */
  maxGapMs?: number;
}

interface TrackState {
  lastMs: number | undefined;
  video: boolean;
  count: number;
}

export class Validator {
  private readonly maxGapMs: number;
  private readonly tracks = new Map<number, TrackState>();
  private declared: Set<number> | undefined;
  private readonly undeclaredReported = new Set<number>();

  constructor(opts: ValidatorOptions = {}) {
    this.maxGapMs = opts.maxGapMs ?? 1000;
  }

  /** A (re)declared track set; tracks keep their timelines across re-declarations. */
  setTracks(tracks: readonly Track[]): void {
    this.declared = new Set(tracks.map((t) => t.id));
    for (const t of tracks) {
      const st = this.tracks.get(t.id);
      if (st) st.video = t.type === 'video';
      else this.tracks.set(t.id, { lastMs: undefined, video: t.type === 'video', count: 0 });
    }
  }

  /** The problems this packet shows (usually none). */
  packet(p: PacketRecord): Problem[] {
    const out: Problem[] = [];
    let st = this.tracks.get(p.trackId);
    if (!st) {
      st = { lastMs: undefined, video: false, count: 0 };
      this.tracks.set(p.trackId, st);
    }
    if (this.declared && !this.declared.has(p.trackId) && !this.undeclaredReported.has(p.trackId)) {
      this.undeclaredReported.add(p.trackId);
      out.push({ rule: 'UNDECLARED_TRACK', text: `packet of track ${p.trackId}, which no track header declares`, pos: p.pos, timeMs: p.timeMs });
    }
    if (st.count === 0 && st.video && !p.keyframe) {
      out.push({ rule: 'NO_START_KEYFRAME', text: `video track ${p.trackId} starts without a keyframe`, pos: p.pos, timeMs: p.timeMs });
    }
    if (st.lastMs !== undefined) {
      if (p.timeMs < st.lastMs) {
        out.push({ rule: 'TIME_BACKWARDS', text: `track ${p.trackId}: decode time goes back from ${st.lastMs} ms to ${p.timeMs} ms`, pos: p.pos, timeMs: p.timeMs });
      } else if (p.timeMs - st.lastMs > this.maxGapMs) {
        out.push({ rule: 'TIME_GAP', text: `track ${p.trackId}: decode time jumps ${p.timeMs - st.lastMs} ms (from ${st.lastMs} ms to ${p.timeMs} ms; limit ${this.maxGapMs} ms)`, pos: p.pos, timeMs: p.timeMs });
      }
    }
    if (p.offsetMs < 0) {
      out.push({ rule: 'PTS_BEFORE_DTS', text: `track ${p.trackId}: pts ${p.timeMs + p.offsetMs} ms before dts ${p.timeMs} ms`, pos: p.pos, timeMs: p.timeMs });
    }
    // a step back does not move the reference: the following packets are judged against the
    // furthest time reached, so one bad timestamp is one problem, not two
    st.lastMs = st.lastMs === undefined ? p.timeMs : Math.max(st.lastMs, p.timeMs);
    st.count++;
    return out;
  }
}

/** Per-track totals for the summary. */
export interface TrackSummary {
  trackId: number;
  packets: number;
  bytes: number;
  keyframes: number;
  firstMs: number;
  lastMs: number;
}

export class Summary {
  readonly tracks = new Map<number, TrackSummary>();

  add(p: PacketRecord): void {
    let s = this.tracks.get(p.trackId);
    if (!s) {
      s = { trackId: p.trackId, packets: 0, bytes: 0, keyframes: 0, firstMs: p.timeMs, lastMs: p.timeMs };
      this.tracks.set(p.trackId, s);
    }
    s.packets++;
    s.bytes += p.size;
    if (p.keyframe) s.keyframes++;
    s.firstMs = Math.min(s.firstMs, p.timeMs);
    s.lastMs = Math.max(s.lastMs, p.timeMs);
  }

  lines(): string[] {
    const out: string[] = [];
    let first = Infinity;
    let last = -Infinity;
    let bytes = 0;
    for (const s of [...this.tracks.values()].sort((a, b) => a.trackId - b.trackId)) {
      const span = s.lastMs - s.firstMs;
      const kbps = span > 0 ? ((s.bytes * 8) / span).toFixed(1) : '-';
      out.push(`summary track ${s.trackId}: ${s.packets} packets (${s.keyframes} key), ${s.firstMs}..${s.lastMs} ms, ${s.bytes} B, ${kbps} kbit/s`);
      first = Math.min(first, s.firstMs);
      last = Math.max(last, s.lastMs);
      bytes += s.bytes;
    }
    if (this.tracks.size > 0) {
      const span = last - first;
      out.push(`summary: ${this.tracks.size} tracks, duration ${span} ms, ${bytes} B, ${span > 0 ? ((bytes * 8) / span).toFixed(1) : '-'} kbit/s`);
    } else out.push('summary: no packets');
    return out;
  }
}
