// One connection's MPEG-TS bytes into a pull's sink (shared by the tsudp, HTTP and ts-exec
// pulls): a TsDemuxer per connection (a new connection is a new transport stream: its PSI,
// continuity counters and clock start over), track changes passed on as set/remove, and the
// demuxer's warnings logged without flooding the log (TS is a lossy transport: a lost datagram
// gives a continuity warning and drops one frame, it is not an error of the connection).

import { TsDemuxer, type TsDemuxResult } from '../../containers/ts/demux.js';
import { errorText, isHazeError } from '../../util/errors.js';
import type { Logger } from '../../util/log.js';
import type { PullSink } from './pull-input.js';

/** Bounds of what one connection's demuxer holds (smaller than a file's: a live PES is one frame). */
const MAX_PES_BYTES = 8 * 1024 * 1024;
const MAX_HOLD_BYTES = 8 * 1024 * 1024;
/** Warnings logged one by one per connection; after that, a count every WARN_SUMMARY_MS. */
const WARN_LINES = 20;
const WARN_SUMMARY_MS = 10_000;

export class TsPullFeed {
  private readonly demuxer = new TsDemuxer({ maxPesBytes: MAX_PES_BYTES, maxHoldBytes: MAX_HOLD_BYTES });
  private trackIds = new Set<number>();
  private warned = 0;
  private unlogged = 0;
  private lastSummaryMs = 0;
  /** Bytes fed, media packets and tracks given to the sink. */
  bytes = 0;
  packets = 0;

  constructor(
    private readonly sink: PullSink,
    private readonly log: Logger,
    /** What the log lines name (`stream x: <label>: ...`). */
    private readonly label: string,
  ) {}

  /** Whether the demuxer found the program's tracks yet. */
  get hasTracks(): boolean {
    return this.trackIds.size > 0;
  }

  /**
   * Feeds bytes. Throws HAZE_ERR_MALFORMED when the input shows no TS sync pattern in its first
   * 64 KiB (not TS at all: the connection ends); every other fault is a logged warning.
   */
  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    this.apply(this.demuxer.push(chunk));
  }

  /** The connection ended: frames still being collected go out. */
  end(): void {
    try {
      this.apply(this.demuxer.end());
    } catch (err) {
      // an input that never synced has nothing to flush; anything else is worth a line (this
      // runs where a connection ends, inside an event handler: it must not throw)
      if (!isHazeError(err)) this.log.warn(`${this.label}: flushing the demuxer: ${errorText(err)}`);
    }
  }

  private apply(r: TsDemuxResult): void {
    if (r.tracks) {
      const ids = new Set(r.tracks.map((t) => t.id));
      for (const id of this.trackIds) if (!ids.has(id)) this.sink.removeTrack(id);
      for (const t of r.tracks) this.sink.setTrack(t);
      if (this.trackIds.size === 0 && ids.size > 0) this.log.info(`${this.label}: tracks ${r.tracks.map((t) => `${t.id}:${t.codec}`).join(', ')}`);
      this.trackIds = ids;
    }
    for (const p of r.packets) this.sink.push(p);
    this.packets += r.packets.length;
    if (r.warnings.length > 0) this.warn(r.warnings);
  }

  private warn(lines: readonly string[]): void {
    for (const line of lines) {
      if (this.warned < WARN_LINES) {
        this.warned++;
        this.log.warn(`${this.label}: ${line}${this.warned === WARN_LINES ? ' (further warnings are counted)' : ''}`);
      } else {
        this.unlogged++;
      }
    }
    const now = Date.now();
    if (this.unlogged > 0 && now - this.lastSummaryMs >= WARN_SUMMARY_MS) {
      this.lastSummaryMs = now;
      this.log.warn(`${this.label}: ${this.unlogged} more TS warnings (lost or damaged packets)`);
      this.unlogged = 0;
    }
  }
}
