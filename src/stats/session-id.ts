// Session ids (reference/mistserver.md §7.1): sha256 hex of the parts a 4-bit mode selects (8 the
// stream, 4 the client address, 2 the token, 1 the connector), prefixed `I` for inputs, `O` for
// outgoing pushes and `U` for unspecified connections; viewers have no prefix. The modes come
// from the config (sessionViewerMode 14, sessionInputMode and sessionOutputMode 15); a worker
// sets them when its config changes, so every output derives the same id without passing them.

import { createHash } from 'node:crypto';

/** What kind of connection a session groups (MistServer's sessType). */
export type SessionKind = 'viewer' | 'input' | 'output' | 'unspecified';

export interface SessionModes {
  viewer: number;
  input: number;
  output: number;
  unspecified: number;
  /** Stream info and player requests (sessionStreamInfoMode): 1 viewers, 2 outputs, 3 not counted, 4 unspecified. */
  streamInfo: number;
}

export const DEFAULT_SESSION_MODES: Readonly<SessionModes> = Object.freeze({ viewer: 14, input: 15, output: 15, unspecified: 15, streamInfo: 1 });

const PREFIX: Record<SessionKind, string> = { viewer: '', input: 'I', output: 'O', unspecified: 'U' };

let modes: SessionModes = { ...DEFAULT_SESSION_MODES };

/** The modes of the config (a value outside 0-15 keeps the default). */
export function setSessionModes(next: Partial<Record<keyof SessionModes, unknown>>): void {
  const pick = (v: unknown, d: number): number => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 15 ? v : d);
  modes = {
    viewer: pick(next.viewer, DEFAULT_SESSION_MODES.viewer),
    input: pick(next.input, DEFAULT_SESSION_MODES.input),
    output: pick(next.output, DEFAULT_SESSION_MODES.output),
    unspecified: pick(next.unspecified, DEFAULT_SESSION_MODES.unspecified),
    streamInfo: typeof next.streamInfo === 'number' && [1, 2, 3, 4].includes(next.streamInfo) ? next.streamInfo : DEFAULT_SESSION_MODES.streamInfo,
  };
}

/** How a stream info or player request counts (sessionStreamInfoMode); undefined: not at all. */
export function streamInfoKind(): SessionKind | undefined {
  return (['viewer', 'output', undefined, 'unspecified'] as const)[modes.streamInfo - 1];
}

export function sessionModes(): Readonly<SessionModes> {
  return modes;
}

/** The session id of a connection of `kind`: its prefix and the sha256 of the parts its mode selects, one per line. */
export function sessionIdOf(kind: SessionKind, stream: string, host: string, token: string, connector: string): string {
  const mode = modes[kind];
  // (streamInfo is not a kind: its requests count as the kind streamInfoKind() says)
  const parts: string[] = [];
  if (mode & 8) parts.push(stream);
  if (mode & 4) parts.push(host);
  if (mode & 2) parts.push(token);
  if (mode & 1) parts.push(connector);
  return PREFIX[kind] + createHash('sha256').update(parts.join('\n')).digest('hex');
}

/** Whether `id` has the shape of a session id. */
export function isSessionId(id: string): boolean {
  return /^[IOU]?[0-9a-f]{64}$/.test(id);
}
