// Several publishers feeding one stream (`"multi_input": true`, DESIGN §4): a multi-bitrate
// stream made of, say, a 1080p H.264 + AAC publisher and a 360p H.264 one. Every publisher,
// whatever its protocol, feeds a StreamHub of its own (an *input hub*: private, short buffer);
// a MultiInput merges the input hubs into the stream's hub. Each publisher's tracks get ids of
// their own in the stream (its own ids where still free), and its timestamps are moved onto the
// stream's clock once, at its first packet, so the variants of HLS/DASH play in sync. A
// publisher that leaves takes only its tracks with it.

import { StreamHub, type HubListener } from '../hub/stream-hub.js';
import type { Packet, Track } from '../media/types.js';
import { HazeError } from '../util/errors.js';

/** Most publishers one stream merges; more are refused (each brings its tracks and buffer). */
export const MAX_INPUTS = 16;
/** An input hub only bridges a publisher to the stream (and lets a moved one restart at a keyframe). */
export const INPUT_BUFFER_MS = 1000;
/** Gap between the last packet of a stream nobody feeds and the first of a publisher joining it. */
export const JOIN_GAP_MS = 40;

/** What the stream's timeline looks like when a publisher's first packet arrives. */
export interface StreamClock {
  /** Media time of the stream's newest packet, -1 before any. */
  lastMs: number;
  /** Wall clock (ms since the epoch) of the stream's media time 0, undefined while unknown. */
  unixZeroMs: number | undefined;
  /** Wall clock now. */
  nowMs: number;
  /** Whether another publisher of the stream is sending packets. */
  othersFlowing: boolean;
}

/**
 * The offset added to every timestamp of a publisher, fixed at its first packet (`firstMs`).
 * The first publisher of a new stream keeps its times: its time 0 is the stream's media time 0
 * (the hub takes the wall clock of that from its first packet). A later one starts at the
 * stream's current time: where the wall clock says the stream is, or the newest packet when
 * the others run ahead of the clock; after the newest packet when nobody else feeds the stream,
 * so its timeline never goes back.
 */
export function joinOffset(firstMs: number, clock: StreamClock): number {
  if (clock.lastMs < 0 && clock.unixZeroMs === undefined) return 0;
  const wallMs = clock.unixZeroMs === undefined ? -1 : clock.nowMs - clock.unixZeroMs;
  const afterLast = clock.lastMs < 0 ? 0 : clock.lastMs + (clock.othersFlowing ? 0 : JOIN_GAP_MS);
  const target = Math.max(wallMs, afterLast, 0);
  return target - firstMs;
}

/**
 * Hands out the stream's track ids. A publisher keeps its own id when no other publisher has
 * had it; otherwise it gets the next id above every id given so far. Ids are not reused while
 * the merge lasts, so a viewer's `?video=iN` never moves to another publisher's track.
 */
export class TrackIds {
  private readonly given = new Set<number>();
  private highest = 0;

  take(preferred: number): number {
    const id = Number.isSafeInteger(preferred) && preferred > 0 && !this.given.has(preferred) ? preferred : this.highest + 1;
    this.given.add(id);
    if (id > this.highest) this.highest = id;
    return id;
  }
}

/** One publisher in the merge. */
export interface MergedInput {
  /** Takes the publisher out of the merge: its tracks leave the stream unless it was the last. */
  close(): void;
}

/** The publishers of one stream on its hosting worker, merged into `hub`. */
export class MultiInput {
  private readonly lanes = new Set<Lane>();
  readonly ids = new TrackIds();

  constructor(readonly hub: StreamHub) {
    // The stream ending (the worker stopping, the stream shut down) drops every publisher.
    hub.on('end', (reason) => {
      for (const lane of [...this.lanes]) lane.drop(reason);
    });
  }

  get size(): number {
    return this.lanes.size;
  }

  /**
   * Adds a publisher's input hub. `onDropped` is called when the merge lets go of it without
   * being asked (the stream hub ended). HAZE_ERR_BUSY past MAX_INPUTS.
   */
  add(input: StreamHub, onDropped: (reason: string) => void = () => {}): MergedInput {
    if (this.hub.isEnded) throw new HazeError('HAZE_ERR_BUSY', `stream ${this.hub.name} has ended`);
    if (this.lanes.size >= MAX_INPUTS) throw new HazeError('HAZE_ERR_BUSY', `stream ${this.hub.name} already merges ${MAX_INPUTS} publishers`);
    const lane = new Lane(this, input, onDropped);
    this.lanes.add(lane);
    lane.start();
    return { close: () => lane.close() };
  }

  /** @internal Lane bookkeeping. */
  remove(lane: Lane): void {
    this.lanes.delete(lane);
  }

  /** @internal The offset of a lane's timestamps, at its first packet. */
  offsetFor(lane: Lane, firstMs: number): number {
    const hub = this.hub;
    let othersFlowing = false;
    for (const l of this.lanes) if (l !== lane && l.flowing) othersFlowing = true;
    return joinOffset(firstMs, { lastMs: hub.lastMs, unixZeroMs: hub.hasClock ? hub.unixZeroMs : undefined, nowMs: Date.now(), othersFlowing });
  }
}

/** One publisher's input hub as seen by the merge: its ids, its time offset. */
class Lane implements HubListener {
  /** Publisher's track id -> stream track id. */
  private readonly idMap = new Map<number, number>();
  /** The input hub's track list last copied (it is a new array after every setTrack). */
  private seen: readonly Track[] = [];
  private offsetMs: number | undefined;
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly owner: MultiInput,
    private readonly input: StreamHub,
    private readonly onDropped: (reason: string) => void,
  ) {}

  get flowing(): boolean {
    return this.offsetMs !== undefined;
  }

  start(): void {
    this.syncTracks(this.input.tracks);
    this.unsubscribe = this.input.subscribe(this);
  }

  onTracks(tracks: readonly Track[]): void {
    this.syncTracks(tracks);
  }

  onPacket(p: Packet): void {
    // The input hub tells its listeners only of codec changes; refined fields (bitrate, frame
    // rate from metadata) show as a new track list.
    if (this.input.tracks !== this.seen) this.syncTracks(this.input.tracks);
    const id = this.idMap.get(p.trackId);
    if (id === undefined) return;
    if (this.offsetMs === undefined) {
      this.offsetMs = this.owner.offsetFor(this, p.timeMs);
      // the first publisher of a new stream gives it its clock (a DTSC pusher's unixzero, say)
      if (!this.owner.hub.hasClock && this.owner.hub.lastMs < 0 && this.input.hasClock) this.owner.hub.setUnixZero(this.input.unixZeroMs);
    }
    // A copy: the input hub keeps its packet (with its own segment mark) in its buffer.
    this.owner.hub.push({ trackId: id, timeMs: Math.max(0, p.timeMs + this.offsetMs), offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data });
  }

  onEnd(): void {
    this.close();
  }

  private syncTracks(tracks: readonly Track[]): void {
    if (this.closed) return;
    this.seen = tracks;
    const present = new Set(tracks.map((t) => t.id));
    for (const [src, id] of [...this.idMap]) {
      if (present.has(src)) continue;
      this.idMap.delete(src);
      this.owner.hub.removeTrack(id);
    }
    for (const t of tracks) {
      let id = this.idMap.get(t.id);
      if (id === undefined) {
        id = this.owner.ids.take(t.id);
        this.idMap.set(t.id, id);
      }
      this.owner.hub.setTrack({ ...t, id });
    }
  }

  /** Leaves the merge; the tracks stay when it was the last publisher (the stream's end or grace period clears them). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    this.owner.remove(this);
    if (this.owner.size > 0 && !this.owner.hub.isEnded) for (const id of this.idMap.values()) this.owner.hub.removeTrack(id);
    this.idMap.clear();
  }

  /** The merge lets go (the stream hub ended). */
  drop(reason: string): void {
    if (this.closed) return;
    this.close();
    this.onDropped(reason);
  }
}

/** A publisher's input hub (see the top of this file). */
export function inputHub(name: string): StreamHub {
  const hub = new StreamHub(name, { dvrMs: INPUT_BUFFER_MS, sourceGraceMs: 0 });
  hub.attachSource();
  return hub;
}
