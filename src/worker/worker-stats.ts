// What a worker counts per stream for `active_streams`, STREAM_END and the controller: viewers
// and inputs, bytes in and out. Viewer bytes and views come from every connection the
// statistics track (viewerConnection: HTTP requests of any output, RTMP and DTSC plays), so
// STREAM_END agrees with the sessions' figures; the playing viewers are also kept for session
// control. The controller gathers it over the control socket.

import type { Viewer } from '../outputs/viewer.js';

export interface InputHandle {
  bytesIn: number;
  end(): void;
}

interface StreamCounters {
  viewers: Set<Viewer>;
  /** Viewer connections the statistics track (their bytes until they close). */
  viewerConns: Set<() => number>;
  inputs: Set<InputHandle>;
  bytesOutClosed: number;
  bytesInClosed: number;
  views: number;
  /** Inputs and outputs (pushes) ever started, and the summed play time of the viewers that left. */
  inputsTotal: number;
  outputsTotal: number;
  viewerMsClosed: number;
}

/** A stream's counters on this worker when they go (STREAM_END sums them over the workers). */
export interface StreamTotals {
  downbytes: number;
  upbytes: number;
  viewers: number;
  inputs: number;
  outputs: number;
  viewerSeconds: number;
}

/** Told when a stream's counters appear on this worker and when they go. */
export interface StreamStatsLifecycle {
  active(stream: string): void;
  gone(stream: string, totals: StreamTotals): void;
}

/** A viewer connection playing now (session control ends them: stop_sessions, stop_sessid). */
export interface LiveViewer {
  stream: string;
  /** MistServer's connector name (FLV, HTTPTS, RTMP ...). */
  connector: string;
  peer: string;
  /** The viewer's session id, when known. */
  session: string | undefined;
  close(reason: string): void;
}

export interface StreamStatsSnapshot {
  viewers: number;
  inputs: number;
  views: number;
  downbytes: number;
  upbytes: number;
}

export class WorkerStats {
  private readonly streams = new Map<string, StreamCounters>();
  /** Playing viewers by their connection (a feed's Viewer, or a WebRTC session's key). */
  private readonly live = new Map<object, LiveViewer>();
  /** Told when counters appear and go (STREAM_END, worker/stream-triggers.ts). */
  lifecycle: StreamStatsLifecycle | undefined;

  /** `sessionOf`: the session a viewer belongs to when its output does not say (the last one admitted for stream, connector and address). */
  constructor(private readonly sessionOf?: (stream: string, connector: string, peer: string) => string | undefined) {}

  private counters(stream: string): StreamCounters {
    this.ended.delete(stream);
    let c = this.streams.get(stream);
    if (!c) {
      this.streams.set(stream, (c = { viewers: new Set(), viewerConns: new Set(), inputs: new Set(), bytesOutClosed: 0, bytesInClosed: 0, views: 0, inputsTotal: 0, outputsTotal: 0, viewerMsClosed: 0 }));
      this.lifecycle?.active(stream);
    }
    return c;
  }

  /** A playing viewer (progressive HTTP, RTMP): counted now, and ended by session control. */
  viewerStarted(stream: string, connector: string, peer: string, viewer: Viewer, session?: string): void {
    const c = this.counters(stream);
    c.viewers.add(viewer);
    this.liveAs(viewer, stream, connector, peer, (reason) => viewer.close(reason), session);
    viewer.onClose(() => {
      this.live.delete(viewer);
      c.viewers.delete(viewer);
      this.dropIfIdle(stream, c);
    });
  }

  /**
   * A viewer that is no feed's Viewer (WebRTC, counted through its play connection): session
   * control ends it with `close`. The result forgets it (call it when the viewer ends).
   */
  playing(stream: string, connector: string, peer: string, close: (reason: string) => void): () => void {
    const key = {};
    this.liveAs(key, stream, connector, peer, close);
    return () => void this.live.delete(key);
  }

  private liveAs(key: object, stream: string, connector: string, peer: string, close: (reason: string) => void, session?: string): void {
    this.live.set(key, { stream, connector, peer, session: session ?? this.sessionOf?.(stream, connector, peer), close });
  }

  /** A viewer connection the statistics track opened: its bytes to the viewer and time count; the result ends it. */
  viewerConnection(stream: string, bytesDown: () => number): () => void {
    const c = this.counters(stream);
    c.viewerConns.add(bytesDown);
    c.views++;
    const startedAt = Date.now();
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      c.viewerConns.delete(bytesDown);
      c.bytesOutClosed += bytesDown();
      c.viewerMsClosed += Date.now() - startedAt;
      this.dropIfIdle(stream, c);
    };
  }

  inputStarted(stream: string, _connector: string, _peer: string): InputHandle {
    const c = this.counters(stream);
    c.inputsTotal++;
    const h: InputHandle = {
      bytesIn: 0,
      end: () => {
        if (c.inputs.delete(h)) c.bytesInClosed += h.bytesIn;
        this.dropIfIdle(stream, c);
      },
    };
    c.inputs.add(h);
    return h;
  }

  /** An outgoing push or recording of the stream started (STREAM_END's total outputs). */
  outputStarted(stream: string): void {
    // (a push does not keep the counters of an ended stream alive)
    (this.streams.get(stream) ?? this.counters(stream)).outputsTotal++;
  }

  /** Streams whose hub is gone; their counters go once their last connection has. */
  private readonly ended = new Set<string>();

  /** The stream's hub ended: forget its counters when no connection is left (wildcard names must not pile up). */
  streamEnded(stream: string): void {
    const c = this.streams.get(stream);
    if (!c) return;
    this.ended.add(stream);
    this.dropIfIdle(stream, c);
  }

  private dropIfIdle(stream: string, c: StreamCounters): void {
    if (c.viewers.size === 0 && c.viewerConns.size === 0 && c.inputs.size === 0 && this.ended.has(stream)) {
      this.streams.delete(stream);
      this.ended.delete(stream);
      this.lifecycle?.gone(stream, { downbytes: c.bytesOutClosed, upbytes: c.bytesInClosed, viewers: c.views, inputs: c.inputsTotal, outputs: c.outputsTotal, viewerSeconds: Math.round(c.viewerMsClosed / 1000) });
    }
  }

  snapshot(stream: string): StreamStatsSnapshot {
    const c = this.streams.get(stream);
    if (!c) return { viewers: 0, inputs: 0, views: 0, downbytes: 0, upbytes: 0 };
    let down = c.bytesOutClosed;
    for (const bytes of c.viewerConns) down += bytes();
    let up = c.bytesInClosed;
    for (const i of c.inputs) up += i.bytesIn;
    return { viewers: c.viewers.size, inputs: c.inputs.size, views: c.views, downbytes: down, upbytes: up };
  }

  /** Every viewer connection playing now. */
  liveViewers(): IterableIterator<LiveViewer> {
    return this.live.values();
  }

  streamNames(): string[] {
    return [...this.streams.keys()];
  }
}
