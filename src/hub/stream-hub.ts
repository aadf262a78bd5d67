// The stream hub (DESIGN §4): one per stream per worker. It keeps the tracks and a ring of
// recent packets (the DVR window) with an index of keyframes, hands every packet to its
// feeds the moment it arrives, and survives a change of source (a publisher reconnecting,
// a relay moving to another worker) so the viewers attached to it keep playing.

import type { FragmentMark, Packet, Track } from '../media/types.js';
import { TypedEmitter } from '../util/events.js';
import { LatencyHistogram } from '../util/histogram.js';

/** MistServer's STREAM_BUFFER states (reference §1.12). */
export type BufferState = 'EMPTY' | 'FULL' | 'DRY' | 'RECOVER';

/** Something that receives the hub's packets in order: a format feed or a relay. */
export interface HubListener {
  onPacket(packet: Packet): void;
  /** The track set changed (added, removed or re-initialised); called before their packets. */
  onTracks(tracks: readonly Track[]): void;
  /** The hub is gone; nothing more will come. */
  onEnd(reason: string): void;
}

export interface HubEvents {
  online: void;
  /** The last listener left. */
  idle: void;
  offline: string;
  state: BufferState;
  end: string;
}

export interface HubOptions {
  /** DVR window in ms (`DVR` stream setting, MistServer's default 50000). */
  dvrMs?: number;
  /** How long a hub whose source left waits for a new one before ending (ms). */
  sourceGraceMs?: number;
  /**
   * A hub of the same stream that ended lately: this one continues its timeline, segment
   * numbers (with a new discontinuity epoch) and clock, so segment URLs are never reused.
   */
  continueFrom?: StreamHub;
}

const DEFAULT_DVR_MS = 50_000;
const DEFAULT_GRACE_MS = 20_000;
/** Gap put between the last packet of a departed source and the first of its successor. */
const SOURCE_SWITCH_GAP_MS = 40;
/**
 * Segments of the segmented outputs start at the first sync keyframe this long after the
 * previous start (MistServer's fragment target: 2 s GOPs give 2 s segments despite jitter).
 */
export const SEGMENT_TARGET_MS = 1900;

/** Where a hub's timeline stands: what a successor needs to continue it (times, segment numbers, clock). */
export interface HubTimeline {
  lastMs: number;
  fragment: FragmentMark;
  fragmentStartMs: number;
  unixZeroMs: number;
}

/** Who feeds the hub: a publisher (the hub marks segment starts) or a relay (the marks come with the packets). */
export type SourceKind = 'publisher' | 'relay';

export class StreamHub extends TypedEmitter<HubEvents> {
  readonly name: string;
  private readonly trackMap = new Map<number, Track>();
  private trackList: Track[] = [];
  /** Packets of the DVR window in arrival order; `ring[i]` has sequence number `baseSeq + i`. */
  private ring: Packet[] = [];
  private ringStart = 0;
  /** Payload bytes of the packets in the window (bitrateBps), kept as packets come and go. */
  private ringBytes = 0;
  private baseSeq = 0;
  /** Sequence numbers of keyframes of the sync track (the first video track, else the first track). */
  private keySeqs: number[] = [];
  private keyStart = 0;
  private readonly listeners = new Set<HubListener>();
  /** Observers that are not viewers (buffer health): they neither keep the stream alive nor count as listeners. */
  private readonly taps = new Set<HubListener>();
  private readonly keyedTracks = new Set<number>();
  /** The DVR window in ms (at least 1 s). */
  readonly dvrMs: number;
  private readonly graceMs: number;
  private syncTrackId = -1;
  private hasSource = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private ended = false;
  private isOnline = false;
  private bufferState: BufferState = 'EMPTY';
  /** The last health check found issues (DRY until they clear); none are known at FULL. */
  private dry: boolean | undefined;
  /** Added to every incoming timestamp so the timeline stays monotonic across sources. */
  private timeOffsetMs = 0;
  private pendingOffset = false;
  private lastTimeMs = -1;
  private sourceKind: SourceKind = 'publisher';
  /** The newest segment start (FragmentMark); index -1 before the first. */
  private fragment: FragmentMark = { index: -1, epoch: 0 };
  private fragmentStartMs = -1;
  /** The tracks or the source changed since the last segment start: the next one opens a new epoch. */
  private fragmentEpochPending = false;
  private catchingUp = false;
  private attachedOnce = false;
  private previous: StreamHub | undefined;
  /** Wall clock (ms since the epoch) of media time 0; -1 until the first packet. */
  private unixZero = -1;
  /**
   * Added latency of this stream's outputs, one sample per viewer and event-loop turn: from a
   * packet reaching the hub to its bytes being handed to the kernel for that viewer (recorded
   * by the feeds).
   */
  readonly deliveryLatency = new LatencyHistogram();
  /** Statistics. */
  bytesIn = 0;
  packetsIn = 0;
  readonly startedAt = Date.now();

  constructor(name: string, opts: HubOptions = {}) {
    super();
    this.name = name;
    this.dvrMs = Math.max(1000, opts.dvrMs ?? DEFAULT_DVR_MS);
    this.graceMs = opts.sourceGraceMs ?? DEFAULT_GRACE_MS;
    const prev = opts.continueFrom;
    if (prev) {
      this.previous = prev;
      prev.previous = undefined; // one step back is all anyone needs
      this.continueTimeline(prev.timeline());
    }
  }

  /** Some source fed this hub at some point. */
  get everAttached(): boolean {
    return this.attachedOnce;
  }

  /** The ended hub this one continues (HubOptions.continueFrom): outputs carry on its segments. */
  get continuedFrom(): StreamHub | undefined {
    return this.previous;
  }

  timeline(): HubTimeline {
    return { lastMs: this.lastTimeMs, fragment: this.fragment, fragmentStartMs: this.fragmentStartMs, unixZeroMs: this.unixZero };
  }

  /**
   * Continues the timeline of an earlier source of this stream (on this or another worker)
   * when this hub knows less of it: the next packets follow it, segment numbers go on in a new
   * discontinuity epoch, the clock stays.
   */
  continueTimeline(t: HubTimeline): void {
    if (t.lastMs <= this.lastTimeMs) return;
    this.lastTimeMs = t.lastMs;
    this.fragment = t.fragment;
    this.fragmentStartMs = t.fragmentStartMs;
    this.unixZero = t.unixZeroMs;
    this.pendingOffset = true;
    this.fragmentEpochPending ||= t.fragment.index >= 0;
  }

  get tracks(): readonly Track[] {
    return this.trackList;
  }

  get online(): boolean {
    return this.isOnline;
  }

  get isEnded(): boolean {
    return this.ended;
  }

  get sourceAttached(): boolean {
    return this.hasSource;
  }

  get state(): BufferState {
    return this.bufferState;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  /** Media time of the newest packet, -1 before the first. */
  get lastMs(): number {
    return this.lastTimeMs;
  }

  get firstMs(): number {
    const p = this.ring[this.ringStart];
    return p ? p.timeMs : -1;
  }

  /** A source (publisher or relay) starts feeding this hub. */
  attachSource(kind: SourceKind = 'publisher'): void {
    if (this.ended) throw new Error(`hub ${this.name} has ended`);
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = undefined;
    this.hasSource = true;
    this.attachedOnce = true;
    this.sourceKind = kind;
    this.pendingOffset = this.lastTimeMs >= 0;
    this.fragmentEpochPending ||= this.fragment.index >= 0;
  }

  /**
   * Wall clock of media time 0, ms since the Unix epoch (HLS PROGRAM-DATE-TIME, DASH
   * availabilityStartTime); fixed at the first packet, or given by a relay's source.
   */
  get unixZeroMs(): number {
    return this.unixZero >= 0 ? this.unixZero : Date.now() - Math.max(0, this.lastTimeMs);
  }

  /** Whether unixZeroMs is fixed (after the first packet or a relay's clock), not an estimate. */
  get hasClock(): boolean {
    return this.unixZero >= 0;
  }

  /** A relay passes on its source's clock, so every worker announces the same times. */
  setUnixZero(ms: number): void {
    if (this.lastTimeMs < 0 && Number.isFinite(ms) && ms > 0) this.unixZero = ms;
  }

  /**
   * The source left: tracks go, viewers stay and wait for a successor for the grace period
   * (`graceMs`, the hub's own by default; a `resume` stream's is its `idleTime`).
   */
  detachSource(reason: string, graceMs = this.graceMs): void {
    if (!this.hasSource || this.ended) return;
    this.hasSource = false;
    this.setOffline(reason);
    this.trackMap.clear();
    this.trackList = [];
    this.keyedTracks.clear();
    this.syncTrackId = -1;
    for (const t of this.taps) t.onTracks(this.trackList);
    // The buffered packets belong to the departed source's tracks and codec configuration: a
    // viewer or relay starting later must begin at the successor's first keyframe.
    this.dropBuffer();
    if (graceMs <= 0) {
      this.end(reason);
      return;
    }
    this.graceTimer = setTimeout(() => this.end(`${reason}; no new source within ${graceMs} ms`), graceMs);
    this.graceTimer.unref?.();
  }

  /** Adds or re-initialises a track (a new sequence header replaces the old definition). */
  setTrack(track: Track): void {
    if (this.ended) return;
    const old = this.trackMap.get(track.id);
    this.trackMap.set(track.id, track);
    this.trackList = [...this.trackMap.values()];
    // Same codec configuration, refined fields (metadata): no need to tell the outputs.
    if (old && sameTrack(old, track)) return;
    if (this.syncTrackId < 0 || (track.type === 'video' && this.trackMap.get(this.syncTrackId)?.type !== 'video')) {
      this.setSyncTrack(track.id);
    }
    if (this.isOnline && !this.keyedTracks.has(track.id)) this.setOffline('new track waiting for a keyframe');
    this.fragmentEpochPending ||= this.fragment.index >= 0;
    for (const l of this.listeners) l.onTracks(this.trackList);
    for (const t of this.taps) t.onTracks(this.trackList);
  }

  removeTrack(id: number): void {
    if (!this.trackMap.delete(id)) return;
    this.trackList = [...this.trackMap.values()];
    this.keyedTracks.delete(id);
    if (this.syncTrackId === id) this.setSyncTrack(this.trackList.find((t) => t.type === 'video')?.id ?? this.trackList[0]?.id ?? -1);
    this.fragmentEpochPending ||= this.fragment.index >= 0;
    for (const l of this.listeners) l.onTracks(this.trackList);
    for (const t of this.taps) t.onTracks(this.trackList);
  }

  /**
   * A new sync track (its predecessor left, or video came after audio; with several publishers,
   * DESIGN §4): the keyframe index is rebuilt from the buffer for it, since viewers and relays
   * start at its keyframes.
   */
  private setSyncTrack(id: number): void {
    if (id === this.syncTrackId) return;
    this.syncTrackId = id;
    this.keySeqs = [];
    this.keyStart = 0;
    for (let i = this.ringStart; i < this.ring.length; i++) {
      const p = this.ring[i]!;
      if (p.keyframe && p.trackId === id) this.keySeqs.push(this.baseSeq + i - this.ringStart);
    }
  }

  /** Takes a packet from the source: timeline fix-up, ring, keyframe index, fan-out. */
  push(packet: Packet): void {
    if (this.ended || !this.trackMap.has(packet.trackId)) return;
    // a relay's packets carry their source hub's timeline already
    if (this.pendingOffset && this.sourceKind === 'publisher') {
      this.pendingOffset = false;
      const shifted = packet.timeMs + this.timeOffsetMs;
      // A successor whose clock does not continue ours starts where the wall clock says the
      // stream is now (at least just after the last packet), so media time keeps tracking the
      // wall clock that HLS PROGRAM-DATE-TIME and DASH availability are computed from.
      if (shifted <= this.lastTimeMs) {
        const wallMs = this.unixZero >= 0 ? Date.now() - this.unixZero : -1;
        this.timeOffsetMs = Math.max(this.lastTimeMs + SOURCE_SWITCH_GAP_MS, wallMs) - packet.timeMs;
      }
    }
    if (this.timeOffsetMs !== 0) packet.timeMs += this.timeOffsetMs;
    if (this.unixZero < 0) this.unixZero = Date.now() - packet.timeMs;
    if (packet.timeMs > this.lastTimeMs) this.lastTimeMs = packet.timeMs;
    if (this.sourceKind === 'publisher') this.markFragment(packet);
    else if (packet.fragment) {
      this.fragment = packet.fragment;
      this.fragmentStartMs = packet.timeMs;
    }
    this.bytesIn += packet.data.length;
    this.packetsIn++;

    const seq = this.baseSeq + this.ring.length - this.ringStart;
    this.ring.push(packet);
    this.ringBytes += packet.data.length;
    if (packet.keyframe && packet.trackId === this.syncTrackId) {
      this.keySeqs.push(seq);
      this.trim(packet.timeMs);
    } else if (packet.timeMs - this.ring[this.ringStart]!.timeMs > 2 * this.dvrMs) {
      // Keyframes stopped coming (trim runs at keyframes): the buffer must stay bounded anyway.
      // What it holds is useless to a new viewer, who has to wait for a keyframe.
      this.dropBuffer();
    }
    if (!this.isOnline && packet.keyframe) {
      this.keyedTracks.add(packet.trackId);
      if (this.keyedTracks.size === this.trackMap.size && !this.catchingUp) this.setOnline();
    }
    for (const l of this.listeners) l.onPacket(packet);
    for (const t of this.taps) t.onPacket(packet);
  }

  /** Marks the packet that starts the next segment (see SEGMENT_TARGET_MS). */
  private markFragment(packet: Packet): void {
    if (!packet.keyframe || packet.trackId !== this.syncTrackId) return;
    if (this.fragment.index >= 0 && !this.fragmentEpochPending && packet.timeMs - this.fragmentStartMs < SEGMENT_TARGET_MS) return;
    this.fragment = { index: this.fragment.index + 1, epoch: this.fragment.epoch + (this.fragmentEpochPending ? 1 : 0) };
    this.fragmentEpochPending = false;
    this.fragmentStartMs = packet.timeMs;
    packet.fragment = this.fragment;
  }

  /** Drops packets older than the DVR window, always at a keyframe so playback can start there. */
  private trim(nowMs: number): void {
    let dropTo = -1;
    // keep at least the newest keyframe; drop up to the newest key that is older than the window
    while (this.keySeqs.length - this.keyStart > 1) {
      const nextKeySeq = this.keySeqs[this.keyStart + 1]!;
      const nextKey = this.ring[this.ringStart + nextKeySeq - this.baseSeq]!;
      if (nowMs - nextKey.timeMs <= this.dvrMs) break;
      this.keyStart++;
      dropTo = nextKeySeq;
    }
    if (dropTo < 0) return;
    for (let i = this.ringStart, end = this.ringStart + dropTo - this.baseSeq; i < end; i++) this.ringBytes -= this.ring[i]!.data.length;
    this.ringStart += dropTo - this.baseSeq;
    this.baseSeq = dropTo;
    // compact now and then instead of shifting on every drop
    if (this.ringStart > 4096 && this.ringStart > this.ring.length / 2) {
      this.ring = this.ring.slice(this.ringStart);
      this.ringStart = 0;
    }
    if (this.keyStart > 256) {
      this.keySeqs = this.keySeqs.slice(this.keyStart);
      this.keyStart = 0;
    }
  }

  /** Average bits per second of the packets in the DVR window (0 while unknown). */
  bitrateBps(): number {
    const spanMs = this.lastTimeMs - this.firstMs;
    if (spanMs <= 0) return 0;
    return Math.round((this.ringBytes * 8 * 1000) / spanMs);
  }

  private dropBuffer(): void {
    this.baseSeq += this.ring.length - this.ringStart;
    this.ring = [];
    this.ringBytes = 0;
    this.ringStart = 0;
    this.keySeqs = [];
    this.keyStart = 0;
  }

  /** Packets from the newest keyframe of the sync track (instant start); empty before one. */
  packetsFromLatestKey(): Packet[] {
    if (this.keySeqs.length === this.keyStart) return [];
    const seq = this.keySeqs[this.keySeqs.length - 1]!;
    return this.ring.slice(this.ringStart + seq - this.baseSeq);
  }

  /** Packets from the newest keyframe at or before `timeMs` (a position inside the DVR window). */
  packetsFromTime(timeMs: number): Packet[] {
    let pick = -1;
    for (let i = this.keySeqs.length - 1; i >= this.keyStart; i--) {
      const seq = this.keySeqs[i]!;
      if (this.ring[this.ringStart + seq - this.baseSeq]!.timeMs <= timeMs) {
        pick = seq;
        break;
      }
    }
    if (pick < 0) pick = this.keySeqs[this.keyStart] ?? -1;
    if (pick < 0) return [];
    return this.ring.slice(this.ringStart + pick - this.baseSeq);
  }

  /** Number of keyframes and the time span held in the ring. */
  windowInfo(): { keys: number; firstMs: number; lastMs: number } {
    return { keys: this.keySeqs.length - this.keyStart, firstMs: this.firstMs, lastMs: this.lastTimeMs };
  }

  /**
   * Observes every packet and track change like a listener, without being a viewer: a tap does
   * not keep the stream alive, count in listenerCount or cause 'idle' (buffer health).
   */
  tap(listener: HubListener): () => void {
    if (this.ended) return endLate(listener);
    this.taps.add(listener);
    return () => void this.taps.delete(listener);
  }

  subscribe(listener: HubListener): () => void {
    if (this.ended) return endLate(listener);
    this.listeners.add(listener);
    return () => {
      if (this.listeners.delete(listener) && this.listeners.size === 0) this.emit('idle', undefined);
    };
  }

  /** Resolves true once online, false after `timeoutMs` or when the hub ends first. */
  waitOnline(timeoutMs: number): Promise<boolean> {
    if (this.isOnline) return Promise.resolve(true);
    if (this.ended) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (v: boolean): void => {
        clearTimeout(timer);
        offOnline();
        offEnd();
        resolve(v);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      const offOnline = this.on('online', () => done(true));
      const offEnd = this.on('end', () => done(false));
    });
  }

  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.setOffline(reason);
    this.setState('EMPTY');
    this.ring = [];
    this.ringBytes = 0;
    this.keySeqs = [];
    for (const l of [...this.listeners]) l.onEnd(reason);
    this.listeners.clear();
    for (const t of [...this.taps]) t.onEnd(reason);
    this.taps.clear();
    this.emit('end', reason);
  }

  /**
   * A relay is replaying its source's buffer: the hub stays offline (no viewer starts in the
   * middle of the replay) until it has caught up with the live edge.
   */
  setCatchingUp(on: boolean): void {
    this.catchingUp = on;
    if (!on && !this.isOnline && this.trackMap.size > 0 && this.keyedTracks.size === this.trackMap.size) this.setOnline();
  }

  /**
   * The outcome of a health check of the buffer (hub/buffer-health.ts): issues make it DRY, their
   * clearing RECOVER (MistServer's STREAM_BUFFER states). FULL comes as soon as the stream is
   * playable, before there is enough of it to judge, so it counts as healthy.
   */
  reportHealth(issues: boolean): void {
    if (this.bufferState === 'EMPTY' || this.ended) return;
    const was = this.dry;
    this.dry = issues;
    // (a hub that carried on a buffer of unknown health only learns it)
    if (was === undefined || was === issues) return;
    this.setState(issues ? 'DRY' : 'RECOVER');
  }

  /**
   * This hub carries on a stream's buffer that another hub announced (its publisher came back
   * on this worker within the grace period): its state goes on, with no new FULL.
   */
  continueBuffer(state: BufferState, dry: boolean | undefined): void {
    if (this.bufferState !== 'EMPTY' || state === 'EMPTY' || this.ended) return;
    this.bufferState = state;
    this.dry = dry;
  }

  /** A new buffer starts on this hub (it relayed an earlier one): its next online is FULL again. */
  resetBuffer(): void {
    if (this.ended) return;
    this.bufferState = 'EMPTY';
    this.dry = undefined;
  }

  /** Whether the last health check found issues (undefined before the first). */
  get healthIssues(): boolean | undefined {
    return this.dry;
  }

  private setOnline(): void {
    this.isOnline = true;
    // FULL once per buffer: a source coming back (or a new track keyed) changes nothing
    if (this.bufferState === 'EMPTY') {
      this.dry = false;
      this.setState('FULL');
    }
    this.emit('online', undefined);
  }

  private setOffline(reason: string): void {
    if (!this.isOnline) return;
    this.isOnline = false;
    this.emit('offline', reason);
  }

  private setState(s: BufferState): void {
    if (s === this.bufferState) return;
    this.bufferState = s;
    this.emit('state', s);
  }
}

function sameTrack(a: Track, b: Track): boolean {
  return a.type === b.type && a.codec === b.codec && a.init.equals(b.init);
}

/**
 * A listener that comes after the end hears of it once subscribe() or tap() has returned: its
 * onEnd usually calls the unsubscribe function it is about to be given (a feed built for a
 * viewer that arrived as the stream ended threw there, and its RTSP player hung).
 */
function endLate(listener: HubListener): () => void {
  queueMicrotask(() => listener.onEnd('stream ended'));
  return () => {};
}
