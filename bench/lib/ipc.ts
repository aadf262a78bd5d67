// Messages between the bench's parent process and its children (publisher, load generators),
// over Node's IPC channel. All times are wall ms (performance.timeOrigin + performance.now()),
// which every process on the machine agrees on.

import type { Endpoint, Proto } from './servers.js';

export type PublisherRequest = { type: 'start'; endpoint: Endpoint; sourceFile: string } | { type: 'stop' };

export type PublisherEvent =
  | { type: 'publishing'; wallMs: number }
  /** Flat triples: stamp timestamp ms, send wall ms, cumulative media bytes sent after it. */
  | { type: 'frames'; recs: number[] }
  | { type: 'error'; message: string };

export interface OpenRequest {
  type: 'open';
  proto: Proto;
  endpoint: Endpoint;
  count: number;
  sampled: number;
  staggerMs: number;
}

export interface ChurnRequest {
  type: 'churn';
  endpoints: Partial<Record<Proto, Endpoint>>;
  target: number;
  minLifeMs: number;
  maxLifeMs: number;
  durationMs: number;
}

export type LoadRequest = OpenRequest | ChurnRequest | { type: 'mark'; phase: 'start' | 'end' } | { type: 'report' } | { type: 'stop' };

export interface ViewerResult {
  sampled: boolean;
  /** Connect to first video frame, ms; -1 when none arrived. */
  ttffMs: number;
  /** Bytes received inside the measurement window. */
  windowBytes: number;
  /** Whether it was still connected at the end of the window. */
  alive: boolean;
  error: string | undefined;
  /** Sampled only: tag timestamps of the first and last frames in the window and their receive times. */
  firstTs: number;
  lastTs: number;
  firstRecvMs: number;
  lastRecvMs: number;
  /** Sampled only: flat pairs (stamp or tag timestamp, receive wall ms) of the window's frames. */
  frames: number[];
  /** Sampled only: how many frames carried the publisher's in-band stamp. */
  stamped: number;
}

export type LoadEvent =
  | { type: 'opened'; wallMs: number }
  | { type: 'marked'; phase: 'start' | 'end'; wallMs: number }
  | { type: 'report'; viewers: ViewerResult[]; cpuSec: number; windowSec: number }
  | { type: 'churn-stats'; wallMs: number; alive: number; opened: number; failed: number; withVideo: number }
  | { type: 'churn-done' }
  | { type: 'error'; message: string };
