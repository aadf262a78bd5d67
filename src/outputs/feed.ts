// A feed turns one hub's packets into one format's bytes once, for every viewer of that
// format and track selection (DESIGN §4 "serialize once"). It keeps the bytes since the
// newest keyframe so a new viewer starts instantly, and hands each chunk to its viewers as
// soon as the hub delivers the packet.

import type { Packet, Track } from '../media/types.js';
import type { HubListener, StreamHub } from '../hub/stream-hub.js';
import { HubScoped } from './hub-scoped.js';
import { Viewer } from './viewer.js';

/** Format-specific serialisation; one instance per feed, so it may keep muxer state. */
export interface FormatWriter {
  /** The tracks this writer carries from now on (called first, and on every change). */
  setTracks(tracks: readonly Track[]): void;
  /**
   * Bytes a viewer gets before anything else (container header, metadata, codec config);
   * `timeMs` is the media time of the first packet that follows.
   */
  header(timeMs: number): Buffer;
  /** In-band bytes telling current viewers the tracks changed; null if nothing to send. */
  tracksChanged(timeMs: number): Buffer | null;
  /** The bytes of one packet, or null when this writer does not carry that track. */
  packet(p: Packet): Buffer | null;
  /** Bytes viewers get when the stream ends, before their connections close (RTP: a BYE per track). */
  trailer?(timeMs: number): Buffer | null;
}

export interface TrackSelection {
  /** Track ids this feed carries; the feed key is derived from it. */
  ids: ReadonlySet<number>;
  /** The track whose keyframes are start and skip points. */
  syncTrackId: number;
}

export type SelectTracks = (tracks: readonly Track[]) => TrackSelection;

/** The most bytes of one GOP kept for instant starts (a 20 s GOP at 25 Mbit/s). */
const MAX_GOP_BYTES = 64 * 1024 * 1024;

const feeds = new HubScoped<Feed>();

/** The shared feed of `format` + selection on `hub`, created on first use. */
export function getFeed(hub: StreamHub, format: string, selectionKey: string, make: () => { writer: FormatWriter; select: SelectTracks }): Feed {
  return feeds.get(hub, `${format}|${selectionKey}`, (forget) => {
    const { writer, select } = make();
    return new Feed(hub, writer, select, forget);
  });
}

export class Feed implements HubListener {
  private readonly viewers = new Set<Viewer>();
  /** Serialized chunks since the newest sync keyframe; chunk i is a keyframe iff gopKeys[i]. */
  private gop: Buffer[] = [];
  private gopBytes = 0;
  private gopStartMs = 0;
  private headerBytes: Buffer | null = null;
  private selection: TrackSelection;
  private unsubscribe: () => void;
  closed = false;
  private flushQueued = false;
  /** When the first packet of the current event-loop turn arrived. */
  private turnStartMs = 0;
  private readonly flushAll = (): void => {
    this.flushQueued = false;
    const latency = this.hub.deliveryLatency;
    for (const v of this.viewers) {
      v.flush();
      // per viewer: the later a viewer comes in this loop, the more latency it was added
      latency.recordMs(performance.now() - this.turnStartMs);
    }
  };

  constructor(
    readonly hub: StreamHub,
    private readonly writer: FormatWriter,
    private readonly select: SelectTracks,
    private readonly onClose: () => void,
  ) {
    this.selection = select(hub.tracks);
    writer.setTracks(this.tracks);
    // Replay the newest GOP so the first viewer starts at a keyframe at once.
    for (const p of hub.packetsFromLatestKey()) this.onPacket(p);
    this.unsubscribe = hub.subscribe(this);
  }

  get viewerCount(): number {
    return this.viewers.size;
  }

  get tracks(): readonly Track[] {
    return this.hub.tracks.filter((t) => this.selection.ids.has(t.id));
  }

  header(): Buffer {
    return (this.headerBytes ??= this.writer.header(this.gop.length > 0 ? this.gopStartMs : Math.max(0, this.hub.lastMs)));
  }

  /** Adds a viewer: header, the newest GOP, then live packets. */
  add(viewer: Viewer): void {
    if (this.closed) {
      viewer.close('stream ended');
      return;
    }
    this.viewers.add(viewer);
    viewer.onClose(() => this.remove(viewer));
    const header = this.header();
    viewer.start(header, this.gop);
  }

  remove(viewer: Viewer): void {
    this.viewers.delete(viewer);
    if (this.viewers.size === 0) this.close();
  }

  onTracks(tracks: readonly Track[]): void {
    this.selection = this.select(tracks);
    this.headerBytes = null;
    this.gop = [];
    this.writer.setTracks(this.tracks);
    const inband = this.writer.tracksChanged(Math.max(0, this.hub.lastMs));
    if (inband) {
      for (const v of this.viewers) v.sendControl(inband);
      this.scheduleFlush();
    }
  }

  /** Viewers write what this turn of the event loop queued for them once it is done. */
  private scheduleFlush(): void {
    if (!this.flushQueued && this.viewers.size > 0) {
      this.flushQueued = true;
      this.turnStartMs = performance.now();
      queueMicrotask(this.flushAll);
    }
  }

  onPacket(p: Packet): void {
    if (!this.selection.ids.has(p.trackId)) return;
    const bytes = this.writer.packet(p);
    if (!bytes) return;
    const isSyncKey = p.keyframe && p.trackId === this.selection.syncTrackId;
    if (isSyncKey) {
      this.gop = [bytes];
      this.gopBytes = bytes.length;
      if (this.gopStartMs !== p.timeMs) this.headerBytes = null;
      this.gopStartMs = p.timeMs;
    } else if (this.gop.length > 0) {
      this.gop.push(bytes);
      this.gopBytes += bytes.length;
      // a publisher that stops sending keyframes must not grow this without bound: new
      // viewers then wait for the next keyframe instead
      if (this.gopBytes > MAX_GOP_BYTES) this.gop = [];
    }
    for (const v of this.viewers) v.send(bytes, isSyncKey, p.timeMs);
    this.scheduleFlush();
  }

  onEnd(reason: string): void {
    const trailer = this.viewers.size > 0 ? (this.writer.trailer?.(Math.max(0, this.hub.lastMs)) ?? null) : null;
    for (const v of [...this.viewers]) {
      if (trailer) v.sendControl(trailer);
      v.close(reason);
    }
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.gop = [];
    this.onClose();
  }
}
