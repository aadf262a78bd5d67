// Timestamps between a stream and one run of a stream process. Pure.
//
// Into the process: stream time minus an offset chosen so the first packet is written at
// INPUT_MARGIN_MS. The margin keeps every timestamp the process sees positive (a packet slightly
// older than the first one, an encoder's priming delay) so no tool shifts them to avoid negative
// times, and it marks the process's own clock: an output timestamp near the margin means the
// process kept the input's times (ffmpeg -copyts, a filter that passes times through); one near 0
// means it restarted them at 0 (ffmpeg's default: output 0 is the input's start time), which is
// the first packet written.
//
//   stream:   ........ T0 ......... T0+d
//   written:          M  ......... M+d        (M = INPUT_MARGIN_MS, offset = T0 - M)
//   output:   kept:   M+d  -> T0+d            reset: d -> T0+d
//
// Out of the process, per output track: times never go back (a restarted process resumes after
// the last time the track reached, see resumeAfterMs), and a video track starts at a keyframe.

/** Where the first packet written to a process lands in the process's clock. */
export const INPUT_MARGIN_MS = 1_000_000;

export type OutputClock = 'kept' | 'reset';

export class TimeMap {
  /** Stream time minus written time; undefined before the first packet. */
  private offsetMs: number | undefined;
  private clock: OutputClock | undefined;

  constructor(private readonly marginMs = INPUT_MARGIN_MS) {}

  /** The time to write for a packet at stream time `streamMs` (the first call fixes the offset). */
  toProcess(streamMs: number): number {
    if (this.offsetMs === undefined) this.offsetMs = streamMs - this.marginMs;
    return streamMs - this.offsetMs;
  }

  get started(): boolean {
    return this.offsetMs !== undefined;
  }

  /** How the process treats timestamps, known after its first output packet. */
  get outputClock(): OutputClock | undefined {
    return this.clock;
  }

  /** The stream time of an output timestamp; undefined while nothing was written yet. */
  fromProcess(outMs: number): number | undefined {
    if (this.offsetMs === undefined) return undefined;
    // decided once, on the first output: half the margin is far from either clock's start
    this.clock ??= outMs >= this.marginMs / 2 ? 'kept' : 'reset';
    return this.clock === 'kept' ? outMs + this.offsetMs : outMs + this.marginMs + this.offsetMs;
  }
}

/**
 * What one output track lets through: nothing older than the last time it reached (across
 * restarts of its process), and for video nothing before a keyframe once it (re)starts.
 */
export class OutputGate {
  private lastMs: number;
  private waitingKey: boolean;

  /** `lastMs`: the newest time the track reached before (-Infinity for a new track). */
  constructor(
    private readonly video: boolean,
    lastMs = -Infinity,
  ) {
    this.lastMs = lastMs;
    this.waitingKey = video;
  }

  /** Whether a packet at stream time `timeMs` goes on; updates the state when it does. */
  pass(timeMs: number, keyframe: boolean): boolean {
    if (timeMs <= this.lastMs || timeMs < 0) {
      // a video track skipped a frame: the next ones may refer to it
      if (this.video) this.waitingKey = true;
      return false;
    }
    if (this.waitingKey) {
      if (!keyframe) return false;
      this.waitingKey = false;
    }
    this.lastMs = timeMs;
    return true;
  }

  get newestMs(): number {
    return this.lastMs;
  }
}

/**
 * Where a process's input starts: at the first keyframe of its sync track (its video, else its
 * only track), and for a restarted process the first one after `resumeAfterMs`, the newest time
 * its output tracks reached (an encoder fed from earlier only makes frames the output gate
 * drops). -Infinity for a first run.
 */
export class InputGate {
  private open = false;

  constructor(
    private readonly resumeAfterMs: number,
    private readonly syncTrackId: number,
  ) {}

  pass(trackId: number, timeMs: number, keyframe: boolean): boolean {
    if (this.open) return true;
    if (trackId !== this.syncTrackId || !keyframe || timeMs <= this.resumeAfterMs) return false;
    this.open = true;
    return true;
  }
}

/** How long a first run's output must keep pace with the clock before it joins the stream. */
export const CATCH_UP_WINDOW_MS = 500;
/** Output packets remembered for that at most (a child's whole backlog fits many times over). */
const MAX_CATCH_UP_SAMPLES = 4096;

/**
 * Holds back the output of a process's first run while it catches up. The input queues in the
 * pipe while the child starts (ffmpeg: a few hundred ms, seconds on a loaded machine), so its
 * first output comes late and then fast; handed to the stream, that burst would read as arrival
 * jitter and make the buffer DRY. The output joins once, over the last CATCH_UP_WINDOW_MS, its
 * media time advanced no faster than the clock (allowing for the 100 ms clusters it comes in).
 */
export class CatchUpGate {
  private readonly seen: { wallMs: number; mediaMs: number }[] = [];
  private firstWallMs = -1;
  private live = false;

  constructor(private readonly windowMs = CATCH_UP_WINDOW_MS) {}

  pass(wallMs: number, mediaMs: number): boolean {
    if (this.live) return true;
    if (this.firstWallMs < 0) this.firstWallMs = wallMs;
    this.seen.push({ wallMs, mediaMs });
    while (this.seen.length > MAX_CATCH_UP_SAMPLES || this.seen[0]!.wallMs < wallMs - this.windowMs) this.seen.shift();
    if (wallMs - this.firstWallMs < this.windowMs) return false;
    const oldest = this.seen[0]!;
    if (mediaMs - oldest.mediaMs > 1.5 * (wallMs - oldest.wallMs) + 100) return false;
    this.live = true;
    return true;
  }

  get caughtUp(): boolean {
    return this.live;
  }
}
