// Reading a live StreamHub for a push or recording: waits until the stream is online, then
// starts at the newest keyframe (or at the `start=` position inside the DVR window), keeps
// to the selected tracks, and reports the hub's track changes and end. Shared by the file
// recorder and the RTMP re-push.

import type { HubListener, StreamHub } from '../hub/stream-hub.js';
import type { Packet, Track } from '../media/types.js';
import type { TrackSelection } from '../outputs/feed.js';
import { selectTracks, type FormatCapability, type SelectorQuery } from '../outputs/track-select.js';

export interface TapHandler {
  /** The tap started: these are the selected tracks (never empty). */
  onStart(tracks: readonly Track[], selection: TrackSelection): void;
  /** A packet of a selected track, in hub order, from the start point on. */
  onPacket(p: Packet): void;
  /** The hub's track set changed after the start; `tracks` is the new selection (may be empty). */
  onTracks(tracks: readonly Track[], selection: TrackSelection): void;
  /** No track of the stream fits the format. */
  onNoTracks(all: readonly Track[]): void;
  onEnd(reason: string): void;
}

export interface TapOptions {
  selectors: SelectorQuery;
  capability: FormatCapability;
  /** Media ms to start from (inside the DVR window), else the newest keyframe. */
  startMs?: number;
  /** Wait for at least this many tracks in the selection before starting. */
  waitTrackCount?: number;
}

export class HubTap implements HubListener {
  private started = false;
  private selection: TrackSelection | undefined;
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly hub: StreamHub,
    private readonly opts: TapOptions,
    private readonly handler: TapHandler,
  ) {}

  /** Subscribes; starts at once when the hub is online already. */
  open(): void {
    if (this.closed || this.unsubscribe) return;
    if (this.hub.online) this.tryStart();
    if (this.closed) return;
    this.unsubscribe = this.hub.subscribe(this);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
  }

  private select(tracks: readonly Track[]): { selection: TrackSelection; tracks: Track[] } {
    const selection = selectTracks(tracks, this.opts.selectors, this.opts.capability);
    return { selection, tracks: tracks.filter((t) => selection.ids.has(t.id)) };
  }

  /** Starts from the DVR window when the stream is online and has the tracks wanted. */
  private tryStart(): boolean {
    const { selection, tracks } = this.select(this.hub.tracks);
    if (tracks.length === 0) {
      if (this.hub.tracks.length > 0) this.handler.onNoTracks(this.hub.tracks);
      return false;
    }
    if (this.opts.waitTrackCount !== undefined && tracks.length < this.opts.waitTrackCount) return false;
    this.started = true;
    this.selection = selection;
    this.handler.onStart(tracks, selection);
    const replay = this.opts.startMs !== undefined ? this.hub.packetsFromTime(this.opts.startMs) : this.hub.packetsFromLatestKey();
    for (const p of replay) {
      if (this.closed) return true;
      if (selection.ids.has(p.trackId)) this.handler.onPacket(p);
    }
    return true;
  }

  onPacket(p: Packet): void {
    if (this.closed) return;
    if (!this.started) {
      // the hub puts a packet in its ring before handing it out: the replay includes this one
      if (this.hub.online) this.tryStart();
      return;
    }
    if (this.selection!.ids.has(p.trackId)) this.handler.onPacket(p);
  }

  onTracks(tracks: readonly Track[]): void {
    if (this.closed || !this.started) return;
    const s = this.select(tracks);
    this.selection = s.selection;
    this.handler.onTracks(s.tracks, s.selection);
  }

  onEnd(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.handler.onEnd(reason);
  }
}
