// A worker's side of viewer access (outputs/play-access.ts): PLAY_REWRITE, CONN_OPEN/PLAY/CLOSE,
// fallbacks and the viewer sessions whose end fires USER_END (reference §4.2, §5.3, §7.1). Every
// trigger is fired only when a handler matches (hasHandlers), so with none configured a viewer
// costs a few map lookups here.
//
// Fallbacks, as MistServer's Output::reconnect: a stream that cannot be opened (not configured; a
// live stream with no publisher on any worker and none lately; a file that does not open) plays its
// `fallback_stream` (variables applied; the fallback may fall back again), else the answer of
// DEFAULT_STREAM (payload: the defaultStream setting, the stream, host, connector, URL; empty:
// fail), else `config.defaultStream`, both with variables (`$stream`, `$basename`, ...).

import type { StreamHub } from '../hub/stream-hub.js';
import type { TriggerDispatcher } from '../triggers/dispatch.js';
import type { TriggerPayload } from '../triggers/trigger-map.js';
import type { Logger } from '../util/log.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { applyVariables } from '../pushes/variables.js';
import type { ViewerAdmission } from '../outputs/access-route.js';
import type { ConnInfo, PlayAccess, PlayConnection } from '../outputs/play-access.js';
import type { ConfigView } from './config-view.js';
import type { SessionSummary } from './viewer-sessions.js';
import type { ConnectionTracker, TrackedConnection, TrackSpec } from '../stats/tracker.js';

/** Fallbacks followed at most (a fallback_stream of a fallback_stream ...; loops end here). */
const MAX_FALLBACK_HOPS = 4;
/** How long a DEFAULT_STREAM answer is reused for the same stream, client and connector (an HLS player asks often). */
const DEFAULT_ANSWER_MS = 10_000;
const MAX_DEFAULT_ANSWERS = 1024;
/** Streams one connection plays at most (CONN_PLAY decisions kept). */
const MAX_PLAYS_PER_CONNECTION = 8;

/** What a worker knows about its streams, for "can it be opened". */
export interface PlayableStreams {
  isConfigured(name: string): boolean;
  /** Some worker has a publisher (or input) for it. */
  hasSource(name: string): boolean;
  /** This worker's hub of the stream, if it has one. */
  liveHub(name: string): Pick<StreamHub, 'isEnded' | 'everAttached'> | undefined;
  /** A stream that ended lately, still answered by segmented outputs (ENDLIST playlists). */
  endedHub(name: string): unknown;
  isVod(name: string): boolean;
  /** Opens a file stream's file; rejects when it cannot. */
  openVod(name: string): Promise<unknown>;
}

export interface ViewerAccessDeps {
  triggers: TriggerDispatcher;
  config: ConfigView;
  streams: PlayableStreams;
  /** USER_NEW (ViewerGate.admit). */
  admit(v: ViewerAdmission): Promise<boolean>;
  /** The statistics (worker/session-stats.ts). */
  tracker: ConnectionTracker;
  /** The custom variables' values. */
  variables(): Readonly<Record<string, string>>;
  log: Logger;
}

/** The payload of CONN_OPEN, CONN_PLAY, CONN_CLOSE and PLAY_REWRITE (their fields are the same). */
function connPayload(info: ConnInfo): { stream: string; host: string; connector: string; requestUrl: string } {
  return { stream: info.stream, host: info.host, connector: info.connector, requestUrl: info.requestUrl };
}

/** USER_END's payload of a finished session (MistServer's session.cpp order and list forms). */
export function userEndPayload(s: SessionSummary): TriggerPayload<'USER_END'> {
  const keys = (m: ReadonlyMap<string, number>): string => [...m.keys()].join(',');
  const values = (m: ReadonlyMap<string, number>): string => [...m.values()].join(',');
  return {
    token: s.token,
    streams: keys(s.streamSeconds),
    connectors: keys(s.connectorSeconds),
    hosts: keys(s.hostSeconds),
    durationS: String(s.durationS),
    bytesUp: String(s.bytesUp),
    bytesDown: String(s.bytesDown),
    tags: s.tags.join(','),
    hostSeconds: values(s.hostSeconds),
    connectorSeconds: values(s.connectorSeconds),
    streamSeconds: values(s.streamSeconds),
    sessionId: s.sessionId,
  };
}

/** Fires USER_END for a session that ended (the sessions' onEnd). */
export function fireUserEnd(triggers: TriggerDispatcher, s: SessionSummary): void {
  if (triggers.hasHandlers('USER_END', s.stream)) void triggers.fire('USER_END', s.stream, () => userEndPayload(s));
}

class ViewerConnection implements PlayConnection {
  private readonly plays = new Map<string, Promise<boolean>>();
  private closed = false;

  constructor(
    private readonly access: ViewerAccess,
    private readonly info: ConnInfo,
  ) {}

  play(stream: string): Promise<boolean> {
    let p = this.plays.get(stream);
    if (!p) {
      if (this.plays.size >= MAX_PLAYS_PER_CONNECTION) this.plays.delete(this.plays.keys().next().value!);
      p = this.attach(stream);
      this.plays.set(stream, p);
    }
    return p;
  }

  private async attach(stream: string): Promise<boolean> {
    const { triggers } = this.access.deps;
    if (triggers.hasHandlers('CONN_PLAY', stream)) {
      const r = await triggers.fire('CONN_PLAY', stream, connPayload({ ...this.info, stream }));
      if (!r.allowed) return false;
    }
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const { triggers } = this.access.deps;
    if (triggers.hasHandlers('CONN_CLOSE', this.info.stream)) void triggers.fire('CONN_CLOSE', this.info.stream, connPayload(this.info));
  }
}

export class ViewerAccess implements PlayAccess {
  private readonly defaultAnswers = new Map<string, { answer: string; untilMs: number }>();

  constructor(readonly deps: ViewerAccessDeps) {}

  private defaultStream(): string {
    const v = this.deps.config.get().config?.['defaultStream'];
    return typeof v === 'string' ? v : '';
  }

  private fallbackOf(stream: string): string {
    const v = this.deps.config.stream(stream)?.['fallback_stream'];
    return typeof v === 'string' ? v : '';
  }

  concerns(stream: string): boolean {
    const t = this.deps.triggers;
    return (
      t.hasHandlers('PLAY_REWRITE', stream) ||
      t.hasHandlers('CONN_OPEN', stream) ||
      t.hasHandlers('CONN_PLAY', stream) ||
      t.hasHandlers('CONN_CLOSE', stream) ||
      t.hasHandlers('DEFAULT_STREAM', stream) ||
      this.fallbackOf(stream) !== '' ||
      this.defaultStream() !== ''
    );
  }

  async rewrite(info: ConnInfo): Promise<string | undefined> {
    const t = this.deps.triggers;
    if (!t.hasHandlers('PLAY_REWRITE', info.stream)) return info.stream;
    const r = await t.fire('PLAY_REWRITE', info.stream, connPayload(info));
    const name = sanitizeStreamName(r.response);
    if (!name) return undefined;
    if (name !== info.stream) this.deps.log.info(`PLAY_REWRITE: ${info.connector} viewer of ${info.stream} from ${info.host} plays ${name}`);
    return name;
  }

  async open(info: ConnInfo): Promise<PlayConnection | undefined> {
    const t = this.deps.triggers;
    if (t.hasHandlers('CONN_OPEN', info.stream) && !(await t.fire('CONN_OPEN', info.stream, connPayload(info))).allowed) return undefined;
    return new ViewerConnection(this, info);
  }

  admit(v: ViewerAdmission): Promise<boolean> {
    return this.deps.admit(v);
  }

  track(spec: TrackSpec): TrackedConnection {
    return this.deps.tracker.open(spec);
  }

  async isFile(stream: string): Promise<boolean> {
    const s = this.deps.streams;
    if (!s.isVod(stream)) return false;
    try {
      await s.openVod(stream);
      return true;
    } catch {
      return false;
    }
  }

  /** Whether a viewer could play `name` now over `connector`. */
  async canOpen(name: string, connector: string): Promise<boolean> {
    const s = this.deps.streams;
    if (!s.isConfigured(name)) return false;
    if (s.isVod(name)) return this.isFile(name);
    const source = this.deps.config.stream(name)?.source ?? '';
    // other inputs (a .pls playlist, pulls) start with their first viewer
    if (!source.startsWith('push://')) return true;
    if (s.hasSource(name)) return true;
    // between two publishers (the grace after one vanished) the stream is still there, as
    // MistServer's buffer that outlives its input: its viewers wait rather than fall back
    const hub = s.liveHub(name);
    if (hub && !hub.isEnded && hub.everAttached) return true;
    // a stream that just ended still has its final playlists
    return (connector === 'HLS' || connector === 'CMAF') && s.endedHub(name) !== undefined;
  }

  private withVariables(text: string, stream: string): string {
    return sanitizeStreamName(applyVariables(text, { stream, source: this.deps.config.stream(stream)?.source ?? '', now: new Date(), custom: this.deps.variables() }));
  }

  async fallback(info: ConnInfo): Promise<string> {
    let name = info.stream;
    if (this.fallbackOf(name) === '' && this.defaultStream() === '' && !this.deps.triggers.hasHandlers('DEFAULT_STREAM', name)) return name;
    for (let hop = 0; hop < MAX_FALLBACK_HOPS; hop++) {
      if (await this.canOpen(name, info.connector)) return name;
      const configured = this.fallbackOf(name);
      if (configured !== '') {
        const next = this.withVariables(configured, name);
        if (!next || next === name) return name;
        this.deps.log.info(`${name} cannot be opened: its fallback_stream ${next} plays for ${info.host}`);
        name = next;
        continue;
      }
      const def = await this.defaultFor({ ...info, stream: name });
      const next = def ? this.withVariables(def, name) : '';
      if (!next || next === name) return name;
      this.deps.log.info(`${name} cannot be opened: the default stream ${next} plays for ${info.host}`);
      return next;
    }
    return name;
  }

  /** DEFAULT_STREAM's answer (kept a few seconds per stream, client and connector), else the defaultStream setting. */
  private async defaultFor(info: ConnInfo): Promise<string> {
    const setting = this.defaultStream();
    const t = this.deps.triggers;
    if (!t.hasHandlers('DEFAULT_STREAM', info.stream)) return setting;
    const key = `${info.stream}\n${info.host}\n${info.connector}`;
    const now = Date.now();
    const known = this.defaultAnswers.get(key);
    if (known && known.untilMs > now) return known.answer;
    const r = await t.fire('DEFAULT_STREAM', info.stream, { defaultStream: setting, stream: info.stream, host: info.host, connector: info.connector, requestUrl: info.requestUrl });
    const answer = r.handled ? r.response : setting;
    this.defaultAnswers.delete(key);
    if (this.defaultAnswers.size >= MAX_DEFAULT_ANSWERS) this.defaultAnswers.delete(this.defaultAnswers.keys().next().value!);
    this.defaultAnswers.set(key, { answer, untilMs: now + DEFAULT_ANSWER_MS });
    return answer;
  }
}
