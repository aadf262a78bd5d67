// The trigger map (reference/mistserver.md §4.2): THE single source of truth for every trigger
// Haze fires. Names, payload fields (in MistServer's order), kind, and whether the trigger is
// global all come from here; the payload types, payloadText() and docs/triggers.md are derived
// from it, so a MistServer handler script that splits the body on "\n" works unchanged.
// LIVEPEER_SEGMENT_REJECTED is left out: Haze has no Livepeer transcoding.

/**
 * notify: the reply is ignored; bool: a false reply (from a blocking handler) changes what
 * happens; rewrite: the reply text of the last blocking handler replaces a value.
 */
export type TriggerKind = 'notify' | 'bool' | 'rewrite';

export interface TriggerSpec {
  readonly kind: TriggerKind;
  /** When it fires, one line. */
  readonly when: string;
  /** Payload field names in the order MistServer sends them, one per line. */
  readonly fields: readonly string[];
  /** Trailing fields that may be absent; an absent one is left out with its line break. */
  readonly optional?: readonly string[];
  /** A field immediately followed by the next one, with no line break between (STREAM_UNLOAD). */
  readonly glued?: readonly string[];
  /** The body ends with a line break (LIVE_TRACK_LIST). */
  readonly trailingNewline?: boolean;
  /** Fires with an empty stream name, so every handler matches whatever its stream list. */
  readonly global: boolean;
  /** What the reply decides: the effect of false (bool) or of an empty reply (rewrite). */
  readonly defaultBehaviour?: string;
  /** A field-level remark for the docs. */
  readonly note?: string;
}

const CONN_FIELDS = ['stream', 'host', 'connector', 'requestUrl'] as const;
const END_FIELDS = [
  'stream',
  'target',
  'connector',
  'bytes',
  'secondsActive',
  'startUnix',
  'stopUnix',
  'mediaMs',
  'firstPacketMs',
  'lastPacketMs',
  'machineReason',
  'humanReason',
] as const;

export const TRIGGERS = {
  SYSTEM_START: {
    kind: 'bool',
    when: 'the configuration is first written at boot',
    fields: ['version'],
    global: true,
    defaultBehaviour: 'false: the server shuts down',
  },
  SYSTEM_STOP: {
    kind: 'bool',
    when: 'the controller is about to exit',
    fields: ['reason'],
    global: true,
    defaultBehaviour: 'false: the shutdown is cancelled',
  },
  OUTPUT_START: {
    kind: 'notify',
    when: 'a listener (protocol) process started',
    fields: ['protocolConfig'],
    global: true,
    note: 'protocolConfig is the protocol entry as compact JSON',
  },
  OUTPUT_STOP: {
    kind: 'notify',
    when: 'a listener (protocol) process stopped',
    fields: ['protocolConfig'],
    global: true,
    note: 'protocolConfig is the protocol entry as compact JSON',
  },
  STREAM_ADD: {
    kind: 'bool',
    when: 'a new stream is added through the API',
    fields: ['stream', 'config'],
    global: false,
    defaultBehaviour: 'false: the stream is not added',
  },
  STREAM_CONFIG: {
    kind: 'bool',
    when: "a stream's configuration is changed through the API",
    fields: ['stream', 'config'],
    global: false,
    defaultBehaviour: 'false: the change is rejected',
  },
  STREAM_REMOVE: {
    kind: 'bool',
    when: 'a stream is deleted through the API',
    fields: ['stream'],
    global: false,
    defaultBehaviour: 'false: the stream is kept',
  },
  STREAM_LOAD: {
    kind: 'bool',
    when: 'before an input is started for a stream',
    fields: ['stream'],
    global: false,
    defaultBehaviour: 'false: the input is not started',
  },
  STREAM_SOURCE: {
    kind: 'rewrite',
    when: "a stream's source is being resolved",
    fields: ['stream'],
    global: false,
    defaultBehaviour: 'the reply is the source to use; empty: the configured source',
  },
  STREAM_READY: {
    kind: 'bool',
    when: 'an input finished loading and serves the stream',
    fields: ['stream', 'input'],
    global: false,
    defaultBehaviour: 'false: the input exits',
  },
  STREAM_UNLOAD: {
    kind: 'bool',
    when: 'an input is about to unload (inactive)',
    fields: ['stream', 'input', 'cancelable', 'reason'],
    glued: ['cancelable'],
    global: false,
    defaultBehaviour: 'false (when cancelable): the input stays loaded',
    note: 'cancelable is "cancelable" or "uncancelable", immediately followed by the exit reason on the same line',
  },
  STREAM_PUSH: {
    kind: 'bool',
    when: 'an incoming push, after its stream name was resolved',
    fields: CONN_FIELDS,
    global: false,
    defaultBehaviour: 'false: the push is refused',
  },
  STREAM_BUFFER: {
    kind: 'notify',
    when: 'the live buffer changes state',
    fields: ['stream', 'state', 'health'],
    optional: ['health'],
    global: false,
    note: 'state is FULL, EMPTY, DRY or RECOVER; health is the health JSON (EMPTY: the final ms, or absent)',
  },
  STREAM_END: {
    kind: 'notify',
    when: "a stream's statistics entry is removed (no sessions left)",
    fields: ['stream', 'downloadedBytes', 'uploadedBytes', 'totalViewers', 'totalInputs', 'totalOutputs', 'viewerSeconds'],
    global: false,
  },
  LIVE_TRACK_LIST: {
    kind: 'notify',
    when: 'the set of valid tracks of a live stream changed',
    fields: ['stream', 'tracks'],
    trailingNewline: true,
    global: false,
    note: 'tracks is the track list JSON; the body ends with a line break',
  },
  LIVE_BANDWIDTH: {
    kind: 'bool',
    when: 'the bytes per second changed and are at least the handler params',
    fields: ['stream', 'bytesPerSecond'],
    global: false,
    defaultBehaviour: 'false: the buffer shuts down',
  },
  INPUT_ABORT: {
    kind: 'notify',
    when: 'an input exits uncleanly',
    fields: ['stream', 'source', 'binary', 'pid', 'machineReason', 'humanReason'],
    global: false,
  },
  RTMP_PUSH_REWRITE: {
    kind: 'rewrite',
    when: 'an RTMP publish starts, before its URL is parsed',
    fields: ['rtmpUrl', 'host'],
    global: true,
    defaultBehaviour: 'the reply is the full RTMP URL to use; empty: the push is refused',
  },
  PUSH_REWRITE: {
    kind: 'rewrite',
    when: 'any incoming push (RTMP, SRT, DTSC, WebRTC, ...) starts',
    fields: ['pushUrl', 'host', 'stream'],
    global: true,
    defaultBehaviour: 'the reply is the stream name to use; empty: the push is refused',
  },
  PUSH_OUT_START: {
    kind: 'rewrite',
    when: 'before an outgoing push or recording starts',
    fields: ['stream', 'target'],
    global: false,
    defaultBehaviour: 'the reply is the target to use; empty: the push is aborted',
  },
  PUSH_END: {
    kind: 'notify',
    when: 'a push process ended',
    fields: ['pushId', 'stream', 'originalTarget', 'actualTarget', 'logLines', 'status'],
    global: false,
    note: 'logLines is the last 10 log lines as JSON, status the last status as JSON',
  },
  RECORDING_END: {
    kind: 'notify',
    when: 'an output writing to a file finishes',
    fields: END_FIELDS,
    global: false,
  },
  OUTPUT_END: {
    kind: 'notify',
    when: 'any output with a target finishes',
    fields: END_FIELDS,
    global: false,
  },
  CONN_OPEN: {
    kind: 'bool',
    when: 'a connection starts serving a stream',
    fields: CONN_FIELDS,
    global: false,
    defaultBehaviour: 'false: the connection is closed',
  },
  CONN_CLOSE: {
    kind: 'notify',
    when: 'a connection ends',
    fields: CONN_FIELDS,
    global: false,
  },
  CONN_PLAY: {
    kind: 'bool',
    when: 'just after a viewer attached to a stream',
    fields: CONN_FIELDS,
    global: false,
    defaultBehaviour: 'false: the viewer is disconnected',
  },
  CONN_STOP: {
    kind: 'notify',
    when: 'playback reached the end of the data',
    fields: CONN_FIELDS,
    global: false,
    note: 'requestUrl is always empty (MistServer sends "")',
  },
  PLAY_REWRITE: {
    kind: 'rewrite',
    when: 'before a viewer is attached to a stream',
    fields: CONN_FIELDS,
    global: false,
    defaultBehaviour: 'the reply is the stream name to use; empty: the viewer is refused',
  },
  DEFAULT_STREAM: {
    kind: 'rewrite',
    when: 'a requested stream cannot be opened',
    fields: ['defaultStream', 'stream', 'host', 'connector', 'requestUrl'],
    global: false,
    defaultBehaviour: 'the reply is the fallback stream (variables allowed); empty: the request fails',
    note: 'defaultStream is the current defaultStream setting',
  },
  USER_NEW: {
    kind: 'bool',
    when: 'a new viewer session is created without a valid JWT',
    fields: ['stream', 'host', 'token', 'connector', 'requestUrl', 'sessionId', 'tokenValid'],
    optional: ['tokenValid'],
    global: false,
    defaultBehaviour: 'false: the session is denied (cached for its lifetime, at most 600 s)',
    note: 'tokenValid is "true" or "false"; the re-check after invalidate_sessions sends the first 6 fields only',
  },
  USER_END: {
    kind: 'notify',
    when: 'a viewer session ends (with its access log line)',
    fields: [
      'token',
      'streams',
      'connectors',
      'hosts',
      'durationS',
      'bytesUp',
      'bytesDown',
      'tags',
      'hostSeconds',
      'connectorSeconds',
      'streamSeconds',
      'sessionId',
    ],
    global: false,
    note: 'streams, connectors, hosts and tags are comma lists',
  },
} as const satisfies Record<string, TriggerSpec>;

export type TriggerName = keyof typeof TRIGGERS;

export const TRIGGER_NAMES: readonly TriggerName[] = Object.keys(TRIGGERS) as TriggerName[];

type SpecOf<N extends TriggerName> = (typeof TRIGGERS)[N];
/** Every payload field name of a trigger. */
export type TriggerField<N extends TriggerName> = SpecOf<N>['fields'][number];
/** The fields of a trigger that may be left out. */
export type TriggerOptionalField<N extends TriggerName> = SpecOf<N> extends { readonly optional: readonly (infer O)[] } ? O & string : never;

/** The payload of one trigger: each field name -> its line of text. */
export type TriggerPayload<N extends TriggerName> = { readonly [K in Exclude<TriggerField<N>, TriggerOptionalField<N>>]: string } & {
  readonly [K in TriggerOptionalField<N>]?: string;
};

export function isTriggerName(name: unknown): name is TriggerName {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(TRIGGERS, name);
}

export function triggerSpec(name: TriggerName): TriggerSpec {
  return TRIGGERS[name];
}

const LINE_BREAK = /[\r\n]/;
const LINE_BREAKS = /[\r\n]/g;

/**
 * The request body / stdin text of a trigger: fields in order joined with "\n", with
 * MistServer's oddities (STREAM_UNLOAD's glued fields, LIVE_TRACK_LIST's trailing newline,
 * absent optional trailing fields). A CR or LF inside a value becomes a space: handlers split
 * on "\n", so a line break in (say) a request URL would shift every later field and could
 * forge USER_NEW's tokenValid.
 */
export function payloadText<N extends TriggerName>(name: N, payload: TriggerPayload<N>): string {
  const spec: TriggerSpec = TRIGGERS[name];
  const values = payload as Readonly<Record<string, string | undefined>>;
  const fields = spec.fields;
  let out = '';
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    let value = values[field];
    if (value === undefined) {
      if (spec.optional?.includes(field)) break;
      value = '';
    }
    if (typeof value !== 'string') value = String(value);
    if (LINE_BREAK.test(value)) value = value.replace(LINE_BREAKS, ' ');
    if (i > 0 && !spec.glued?.includes(fields[i - 1]!)) out += '\n';
    out += value;
  }
  if (spec.trailingNewline) out += '\n';
  return out;
}
