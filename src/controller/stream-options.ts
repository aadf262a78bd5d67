// The options a stream config takes besides `source`, per kind of input, in MistServer's
// capability shape (`optional: {key: {name, help, type, default}}`, reference §3.4 and §5.2).
// `capabilities` answers them for each input, so the management UI draws its stream form from
// what the server says applies instead of a list of its own.

export interface StreamOption {
  name: string;
  help: string;
  /** uint: a whole number; str: text; bool: a switch; list: strings; json: any JSON value */
  type: 'uint' | 'str' | 'bool' | 'list' | 'json';
  default?: unknown;
  unit?: 'ms' | 's';
}

const DVR: StreamOption = { name: 'Buffer window (DVR)', help: 'How much of a live stream is kept for viewers to seek back in, in milliseconds (at least 1000).', type: 'uint', default: 50_000, unit: 'ms' };

const COMMON: Record<string, StreamOption> = {
  fallback_stream: { name: 'Fallback stream', help: 'Stream shown to viewers while this one is offline.', type: 'str' },
  tags: { name: 'Tags', help: 'Tags of the stream (for trigger filters #tag, pushes and statistics).', type: 'list' },
  processes: { name: 'Processes', help: 'Stream processes (ffmpeg transcodes) in MistServer\'s processes[] form; see docs/processes.md.', type: 'json', default: [] },
};

const LIVE: Record<string, StreamOption> = {
  DVR,
  resume: { name: 'Resume', help: 'Keep the buffer for the idle time after the publisher leaves, so a reconnecting publisher continues the same stream.', type: 'bool', default: false },
  idleTime: { name: 'Idle time', help: 'How long a resuming buffer waits for its publisher, in milliseconds.', type: 'uint', default: 50_000, unit: 'ms' },
  multi_input: { name: 'Merge publishers', help: 'Publishers of this stream add their tracks to one multi-bitrate stream instead of replacing each other.', type: 'bool', default: false },
};

const PULL: Record<string, StreamOption> = {
  DVR,
  always_on: { name: 'Always on', help: 'Pull the source all the time, not only while someone watches.', type: 'bool', default: false },
  inputtimeout: { name: 'Input timeout', help: 'Seconds without viewers after which a pulled source is released.', type: 'uint', default: 10, unit: 's' },
};

/** The options that apply to a stream read by the named input (an input of api.ts INPUTS). */
export function streamOptions(input: string): Record<string, StreamOption> {
  if (input === 'Buffer') return { ...LIVE, ...COMMON };
  if (['HLS', 'RTMP', 'TSSRT', 'RTSP', 'Balancer'].includes(input)) return { ...PULL, ...COMMON };
  // TS and DTSC take both files and network sources: the pull options apply to the latter
  if (input === 'TS' || input === 'DTSC') return { ...PULL, ...COMMON };
  return { ...COMMON };
}
