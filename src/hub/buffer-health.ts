// The health of a live buffer: the third field of STREAM_BUFFER (reference §1.12), laid out as
// MistServer's Meta::getHealthJSON. Per track: the keys in the buffer (duration, frames, frame
// spacing), the arrival jitter, the bit rate and the buffered span; the issues MistServer names
// (a frame more than 500 ms long, a key of fewer than 6 frames, key intervals more than 30 %
// apart, jitter over 500 ms, HLS without audio or video) make the stream DRY until they clear.
// Pure: packets and arrival times in, JSON out; the caller supplies the clock.

import { dtscTrackIdentifier } from '../containers/dtsc/header.js';
import type { Packet, Track } from '../media/types.js';

/** MistServer's key interval of non-video tracks (AUDIO_KEY_INTERVAL): a key starts every 2 s. */
export const AUDIO_KEY_INTERVAL_MS = 2000;
/** Jitter is measured over the last one to two spans of this length (arrival time). */
export const JITTER_SPAN_MS = 5000;
/** A frame longer than this is an issue. */
const MAX_FRAME_MS = 500;
/** A key with fewer frames than this is an issue. */
const MIN_KEY_FRAMES = 6;
/** Key intervals further apart than this factor are an issue. */
const MAX_KEY_VARIANCE = 1.3;
/** Jitter above this is an issue. */
const MAX_JITTER_MS = 500;
/** Complete keys every audio and video track needs before its health is judged (MistServer waits for 3 fragments). */
export const SETTLED_KEYS = 2;
/** Keys remembered per track at most, whatever the window (a stream of keyframes only). */
const MAX_KEYS = 2048;

/** One key of a track in the buffer: where it starts, its frames and their bytes. */
export interface KeyStat {
  timeMs: number;
  frames: number;
  bytes: number;
}

/** What the health of one track is computed from. */
export interface TrackHealthInput {
  track: Track;
  /** Index in the stream's track list (json_NAME.js `idx`). */
  idx: number;
  /** The track's keys in the buffer, oldest first; the last one is still growing. */
  keys: readonly KeyStat[];
  /** Media time of the track's newest packet, -1 without one. */
  lastMs: number;
  /** Arrival jitter in ms (see TrackHealth). */
  jitterMs: number;
  /** A packet with a composition offset was seen (B-frames). */
  bframes: boolean;
}

export interface KeySummary {
  ms_min: number;
  ms_max: number;
  frame_ms_min: number;
  frame_ms_max: number;
  frames_min: number;
  frames_max: number;
}

export interface HealthReport {
  /** The health JSON object (STREAM_BUFFER's third field). */
  json: Record<string, unknown>;
  /** MistServer's issue text, undefined when healthy. */
  issues: string | undefined;
  /** Summed bytes per second of the tracks (LIVE_BANDWIDTH). */
  bytesPerSecond: number;
  /** Every audio and video track has SETTLED_KEYS complete keys: the report can be judged. */
  settled: boolean;
}

/** Key statistics of the complete keys (every key but the growing last one); zeros without any. */
export function summariseKeys(keys: readonly KeyStat[]): { summary: KeySummary; count: number; durationMs: number; frames: number; bytes: number } {
  let msMin = Infinity;
  let msMax = 0;
  let frameMin = Infinity;
  let frameMax = 0;
  let cntMin = Infinity;
  let cntMax = 0;
  let count = 0;
  let durationMs = 0;
  let frames = 0;
  let bytes = 0;
  for (let i = 0; i + 1 < keys.length; i++) {
    const k = keys[i]!;
    const dur = keys[i + 1]!.timeMs - k.timeMs;
    if (dur <= 0 || k.frames <= 0) continue;
    count++;
    durationMs += dur;
    frames += k.frames;
    bytes += k.bytes;
    msMin = Math.min(msMin, dur);
    msMax = Math.max(msMax, dur);
    cntMin = Math.min(cntMin, k.frames);
    cntMax = Math.max(cntMax, k.frames);
    const frameMs = Math.floor(dur / k.frames);
    frameMin = Math.min(frameMin, frameMs);
    frameMax = Math.max(frameMax, frameMs);
  }
  const z = (v: number): number => (Number.isFinite(v) ? v : 0);
  return {
    summary: { ms_min: z(msMin), ms_max: msMax, frame_ms_min: z(frameMin), frame_ms_max: frameMax, frames_min: z(cntMin), frames_max: cntMax },
    count,
    durationMs,
    frames,
    bytes,
  };
}

/**
 * The health JSON of a stream's tracks, in MistServer's shape: `tracks` (the identifiers), one
 * object per track, the stream's `jitter` and `buffer`, `maxkeepaway` when configured, and
 * `issues` when there are any.
 */
export function bufferHealth(inputs: readonly TrackHealthInput[], opts: { maxKeepAwayMs?: number } = {}): HealthReport {
  const json: Record<string, unknown> = {};
  const ids: string[] = [];
  json['tracks'] = ids;
  let issues = '';
  let jitter = 0;
  let buffer = 0;
  let bytesPerSecond = 0;
  let hasH264 = false;
  let hasAAC = false;
  let settled = inputs.length > 0;
  for (const input of inputs) {
    const t = input.track;
    const id = dtscTrackIdentifier(t, input.idx);
    ids.push(id);
    const { summary, count, durationMs, frames, bytes } = summariseKeys(input.keys);
    const bps = durationMs > 0 ? Math.round((bytes * 1000) / durationMs) : 0;
    bytesPerSecond += bps;
    const firstMs = input.keys[0]?.timeMs ?? -1;
    const trackBuffer = firstMs >= 0 && input.lastMs >= firstMs ? input.lastMs - firstMs : 0;
    buffer = Math.max(buffer, trackBuffer);
    const o: Record<string, unknown> = { idx: input.idx, id: t.id, jitter: input.jitterMs, kbits: Math.floor((bps * 8) / 1024), codec: t.codec, keys: summary, buffer: trackBuffer };
    if (t.type === 'video') {
      const efpks = durationMs > 0 ? Math.round((frames * 1_000_000) / durationMs) : 0;
      Object.assign(o, { width: t.width, height: t.height, fpks: t.fpks, efpks, fps: t.fpks / 1000, efps: efpks / 1000, bframes: input.bframes });
    } else if (t.type === 'audio') {
      Object.assign(o, { rate: t.rate, channels: t.channels });
    }
    json[id] = o;
    if (t.codec === 'H264') hasH264 = true;
    if (t.codec === 'AAC') hasAAC = true;
    // metadata and subtitles come when they come: their spacing says nothing of the connection
    if (t.type !== 'video' && t.type !== 'audio') continue;
    jitter = Math.max(jitter, input.jitterMs);
    if (count < SETTLED_KEYS) settled = false;
    if (count === 0) continue;
    if (summary.frame_ms_max > MAX_FRAME_MS) issues += `unstable connection (${summary.frame_ms_max}ms ${t.codec} frame)! `;
    if (summary.frames_min < MIN_KEY_FRAMES) issues += `unstable connection (${summary.frames_min} ${t.codec} frame(s) in key)! `;
    if (summary.ms_max > summary.ms_min * MAX_KEY_VARIANCE) {
      issues += `unstable key interval (${Math.floor((summary.ms_max / summary.ms_min - 1) * 100)}% ${t.codec} variance)! `;
    }
  }
  if (jitter > MAX_JITTER_MS) issues += `High jitter (${jitter}ms)! `;
  json['jitter'] = jitter;
  json['buffer'] = buffer;
  if (opts.maxKeepAwayMs !== undefined && opts.maxKeepAwayMs > 0) json['maxkeepaway'] = opts.maxKeepAwayMs;
  if ((hasAAC || hasH264) && inputs.length > 1) {
    if (!hasAAC) issues += 'HLS no audio!';
    if (!hasH264) issues += 'HLS no video!';
  }
  if (issues) json['issues'] = issues;
  return { json, issues: issues || undefined, bytesPerSecond, settled };
}

interface JitterSpan {
  startMs: number;
  min: number;
  max: number;
}

/** What one track's packets tell about its health, kept as they arrive. */
class TrackHealth {
  keys: KeyStat[] = [];
  private keyStart = 0;
  lastMs = -1;
  lastArrivalMs = -1;
  bframes = false;
  private current: JitterSpan | undefined;
  private previous: JitterSpan | undefined;

  constructor(readonly video: boolean) {}

  add(p: Packet, arrivalMs: number, windowMs: number): void {
    const last = this.keys.length > this.keyStart ? this.keys[this.keys.length - 1] : undefined;
    // video keys are its keyframes; other tracks get one every AUDIO_KEY_INTERVAL_MS (MistServer's)
    const newKey = !last || (this.video ? p.keyframe : p.timeMs - last.timeMs >= AUDIO_KEY_INTERVAL_MS);
    if (newKey) {
      this.keys.push({ timeMs: p.timeMs, frames: 1, bytes: p.data.length });
      this.trim(p.timeMs - windowMs);
    } else {
      last.frames++;
      last.bytes += p.data.length;
    }
    if (p.timeMs > this.lastMs) this.lastMs = p.timeMs;
    if (p.offsetMs !== 0) this.bframes = true;
    this.lastArrivalMs = arrivalMs;
    // Jitter: how far apart the arrival delays (arrival - media time) of the recent packets lie,
    // the buffering a viewer needs to play them smoothly.
    const delay = arrivalMs - p.timeMs;
    if (!this.current || arrivalMs - this.current.startMs >= JITTER_SPAN_MS) {
      this.previous = this.current;
      this.current = { startMs: arrivalMs, min: delay, max: delay };
    } else {
      if (delay < this.current.min) this.current.min = delay;
      if (delay > this.current.max) this.current.max = delay;
    }
  }

  /** Drops the keys that start before `fromMs`, keeping the newest one always. */
  private trim(fromMs: number): void {
    while (this.keys.length - this.keyStart > 1 && (this.keys[this.keyStart]!.timeMs < fromMs || this.keys.length - this.keyStart > MAX_KEYS)) this.keyStart++;
    if (this.keyStart > 64 && this.keyStart > this.keys.length / 2) {
      this.keys = this.keys.slice(this.keyStart);
      this.keyStart = 0;
    }
  }

  window(): KeyStat[] {
    return this.keys.slice(this.keyStart);
  }

  jitterMs(): number {
    if (!this.current) return 0;
    const min = this.previous ? Math.min(this.previous.min, this.current.min) : this.current.min;
    const max = this.previous ? Math.max(this.previous.max, this.current.max) : this.current.max;
    return Math.max(0, Math.round(max - min));
  }
}

/**
 * Follows a live stream's packets for its health checks: fed every packet with its arrival
 * time, asked for a report when wanted. Memory is bounded by the window (the DVR) and MAX_KEYS.
 */
export class BufferHealthTracker {
  private readonly stats = new Map<number, TrackHealth>();
  private tracks: readonly Track[] = [];

  /** `windowMs`: how far back keys count (the stream's DVR window). */
  constructor(private readonly windowMs: number) {}

  /** The stream's track set changed: tracks that went are forgotten, a re-initialised one starts over. */
  setTracks(tracks: readonly Track[]): void {
    const keep = new Set<number>();
    for (const t of tracks) {
      keep.add(t.id);
      const s = this.stats.get(t.id);
      if (s && s.video !== (t.type === 'video')) this.stats.delete(t.id);
    }
    for (const id of [...this.stats.keys()]) if (!keep.has(id)) this.stats.delete(id);
    this.tracks = tracks;
  }

  packet(p: Packet, arrivalMs: number): void {
    let s = this.stats.get(p.trackId);
    if (!s) {
      const t = this.tracks.find((x) => x.id === p.trackId);
      if (!t) return;
      s = new TrackHealth(t.type === 'video');
      this.stats.set(p.trackId, s);
    }
    s.add(p, arrivalMs, this.windowMs);
  }

  /** Forgets everything (a new source). */
  reset(): void {
    this.stats.clear();
    this.tracks = [];
  }

  /** Milliseconds since the track's last packet arrived; -1 if none came. */
  idleMs(trackId: number, nowMs: number): number {
    const s = this.stats.get(trackId);
    return s && s.lastArrivalMs >= 0 ? nowMs - s.lastArrivalMs : -1;
  }

  report(opts: { maxKeepAwayMs?: number } = {}): HealthReport {
    const inputs: TrackHealthInput[] = this.tracks.map((track, idx) => {
      const s = this.stats.get(track.id);
      return { track, idx, keys: s ? s.window() : [], lastMs: s ? s.lastMs : -1, jitterMs: s ? s.jitterMs() : 0, bframes: s ? s.bframes : false };
    });
    return bufferHealth(inputs, opts);
  }
}
