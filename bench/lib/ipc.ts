// Messages between the bench's parent process and its children (publisher, load generators),
// over Node's IPC channel. All times are wall ms (performance.timeOrigin + performance.now()),
// which every process on the machine agrees on.

import type { Endpoint, HlsProto, Proto } from './servers.js';

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

// ---- HLS load generator (hls-loadgen.ts) ----------------------------------------------------

export interface HlsOpenRequest {
  type: 'open';
  proto: HlsProto;
  /** Entry playlist: multivariant, or the media playlist when the server has none. */
  endpoint: Endpoint;
  count: number;
  staggerMs: number;
  /** The keep-alive Agent's maxSockets (and maxFreeSockets). */
  maxSockets: number;
}

export type HlsLoadRequest = HlsOpenRequest | { type: 'mark'; phase: 'start' | 'end' } | { type: 'report' } | { type: 'stop' };

export interface HlsViewerResult {
  /** Body bytes received inside the window. */
  windowBytes: number;
  /** Viewer start to its first complete segment/part, ms; -1 when none. */
  startupMs: number;
  /** Failed requests (non-200 or no response) over the whole step. */
  errors: number;
}

export interface HlsGenReport {
  type: 'report';
  viewers: HlsViewerResult[];
  cpuSec: number;
  windowSec: number;
  /** Inside the window: completed responses, body bytes, failed requests. */
  requests: number;
  bytes: number;
  errorsInWindow: number;
  /** Failed requests over the whole step, by kind ("HTTP 404 part", "ECONNRESET playlist"). */
  errors: Record<string, number>;
  /** Segment/part keys, with per key the last publisher stamp (-1: none, null: never read) and the first time it was known complete (null: never). */
  keys: string[];
  stamps: (number | null)[];
  announce: (number | null)[];
  /** Flat triples over the window: viewer index (into viewers), key index, completion wall ms. */
  fetches: number[];
  connectionsOpened: number;
  peakSockets: number;
}

export type HlsLoadEvent =
  | { type: 'opened'; wallMs: number }
  | { type: 'marked'; phase: 'start' | 'end'; wallMs: number }
  | HlsGenReport
  | { type: 'error'; message: string };
