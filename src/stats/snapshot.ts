// What the controller knows about the server at one moment (reference/mistserver.md §7): the
// figures the Prometheus text and JSON forms print, the WebSocket API pushes and the load
// balancer reads. The controller's session table (session-table.ts) fills it; the renderers
// (prometheus.ts) and the WebSocket API only read it.

/** Sessions by kind (MistServer's sessType: viewers, incoming = inputs, outgoing = outputs). */
export interface SessionCounts {
  viewers: number;
  inputs: number;
  outputs: number;
  unspecified: number;
}

export interface PacketCounts {
  sent: number;
  lost: number;
  retrans: number;
}

/** Bytes, up (received from clients) and down (sent to clients). */
export interface ByteCounts {
  up: number;
  down: number;
}

/** The machine Haze runs on (from /proc; KiB as MistServer prints them). */
export interface MachineVitals {
  /** CPU use of the whole machine over the last sample, in tenths of a percent (0-1000). */
  cpuTenths: number;
  memTotalKiB: number;
  memUsedKiB: number;
  shmTotalKiB: number;
  shmUsedKiB: number;
  /** Bytes through the network interfaces since boot, loopback excluded (stat_bw_total). */
  nic: ByteCounts;
}

export interface StreamFigures {
  /** Sessions open now. */
  current: SessionCounts;
  /** Sessions seen since the stream's figures started (viewers: MistServer's viewcount). */
  total: Omit<SessionCounts, 'unspecified'>;
  bytes: ByteCounts;
  /** Summed seconds viewers watched. */
  viewSeconds: number;
  packets: PacketCounts;
  /** Pulled from another server over dtsc:// (the balancer's `rep`). */
  replicated: boolean;
}

export interface TriggerFigures {
  count: number;
  /** Milliseconds spent in handlers, summed. */
  ms: number;
  fails: number;
}

export interface StatsSnapshot {
  /** Unix milliseconds of the figures. */
  timeMs: number;
  vitals: MachineVitals;
  /** Log lines written since start (mist_logs). */
  logs: number;
  current: SessionCounts & { cached: number };
  /** Sessions since the controller started counting. */
  total: SessionCounts;
  viewSeconds: number;
  /** Bytes clients received and sent, and the part of it to `bandwidth.exceptions` hosts. */
  bandwidth: ByteCounts;
  other: ByteCounts;
  /** bandwidth.limit in bytes per second. */
  bandwidthLimit: number;
  packets: PacketCounts;
  /** Viewers now per connector (HLS, FLV, RTMP ...). */
  outputs: Record<string, number>;
  streams: Record<string, StreamFigures>;
  triggers: Record<string, TriggerFigures>;
  location: { lat: number; lon: number; name: string };
  configuredStreams: string[];
  tags: string[];
  /** connector → URL template with `HOST` and `$` for the stream (`rtmp://HOST:1935/live/$`). */
  outputUrls: Record<string, string>;
}

/** A log line as the API's `log` and the WebSocket API give it: [unix s, kind, message, stream?, pid?, exe?]. */
export type LogEntry = [number, string, string, ...(string | number)[]];

/** A finished session as the WebSocket API's `access` messages carry it (reference §3.5). */
export type AccessEntry = [time: number, session: string, stream: string, connectors: string, host: string, durationS: number, up: number, down: number, tags: string];

/** A stream's state as the WebSocket API's `stream` messages carry it. */
export type StreamStateEntry = [stream: string, status: string, viewers: number, inputs: number, outputs: number, tags: string[]];

/** What the WebSocket API sends: history on subscribe, then each entry as it comes. */
export interface LiveFeedEvents {
  log: LogEntry;
  access: AccessEntry;
  stream: StreamStateEntry;
}
