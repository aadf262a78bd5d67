// What a protocol tells the statistics about a connection (reference §7.1: stream, client,
// token, connector, request URL, bytes, media position, packets). The worker's SessionStats
// merges connections into sessions; protocols only open and end their connections.

import type { SessionKind } from './session-id.js';

/** Bytes a connection carried since it opened: to the client and from it. */
export interface ConnectionBytes {
  down: number;
  up: number;
}

/** Where a connection is in its media (ms) and its packet counters, where the protocol knows them. */
export interface ConnectionProgress {
  positionMs?: number;
  packets?: { sent: number; lost: number; retrans: number };
}

export interface ConnectionCounters {
  bytes(): ConnectionBytes;
  progress?(): ConnectionProgress;
}

export interface TrackSpec extends ConnectionCounters {
  kind: SessionKind;
  stream: string;
  host: string;
  token: string;
  /** MistServer's connector name (HLS, FLV, RTMP, INPUT:RTMP, OUTPUT:RTMP ...). */
  connector: string;
  requestUrl?: string;
  userAgent?: string;
  /** Session tags set from the start (`replicated`: an input pulled from another server over dtsc://). */
  tags?: readonly string[];
}

export interface TrackedConnection {
  readonly sessionId: string;
  /** The connection closed (idempotent). */
  end(): void;
}

export interface ConnectionTracker {
  open(spec: TrackSpec): TrackedConnection;
}

/** A tracker that tracks nothing (tools and tests that serve without statistics). */
export const NO_TRACKING: ConnectionTracker = { open: () => ({ sessionId: '', end: () => {} }) };
