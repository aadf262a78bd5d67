// What a worker counts per stream for `active_streams` and the controller: viewers and
// inputs by connector, bytes in and out. The controller gathers it over the control socket.

import type { Viewer } from '../outputs/viewer.js';

export interface InputHandle {
  bytesIn: number;
  end(): void;
}

interface StreamCounters {
  viewers: Set<Viewer>;
  inputs: Set<InputHandle>;
  bytesOutClosed: number;
  bytesInClosed: number;
  views: number;
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

  private counters(stream: string): StreamCounters {
    this.ended.delete(stream);
    let c = this.streams.get(stream);
    if (!c) this.streams.set(stream, (c = { viewers: new Set(), inputs: new Set(), bytesOutClosed: 0, bytesInClosed: 0, views: 0 }));
    return c;
  }

  viewerStarted(stream: string, _connector: string, _peer: string, viewer: Viewer): void {
    const c = this.counters(stream);
    c.viewers.add(viewer);
    c.views++;
    viewer.onClose(() => {
      c.viewers.delete(viewer);
      c.bytesOutClosed += viewer.bytesOut;
      this.dropIfIdle(stream, c);
    });
  }

  inputStarted(stream: string, _connector: string, _peer: string): InputHandle {
    const c = this.counters(stream);
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
    if (c.viewers.size === 0 && c.inputs.size === 0 && this.ended.has(stream)) {
      this.streams.delete(stream);
      this.ended.delete(stream);
    }
  }

  snapshot(stream: string): StreamStatsSnapshot {
    const c = this.streams.get(stream);
    if (!c) return { viewers: 0, inputs: 0, views: 0, downbytes: 0, upbytes: 0 };
    let down = c.bytesOutClosed;
    for (const v of c.viewers) down += v.bytesOut;
    let up = c.bytesInClosed;
    for (const i of c.inputs) up += i.bytesIn;
    return { viewers: c.viewers.size, inputs: c.inputs.size, views: c.views, downbytes: down, upbytes: up };
  }

  streamNames(): string[] {
    return [...this.streams.keys()];
  }
}
