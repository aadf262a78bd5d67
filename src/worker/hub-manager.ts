// The hubs of one worker: a source hub for each stream whose publisher is connected here,
// and a relay hub for each stream hosted by another worker that has viewers here (fed over
// that worker's control socket, so N local viewers cost one copy; DESIGN §3). A hub outlives
// a change of source: when a publisher reconnects (here or on another worker) its viewers
// resume. Hubs with no source and no viewers end.

import type { StreamHub as Hub } from '../hub/stream-hub.js';
import { StreamHub } from '../hub/stream-hub.js';
import { MultiInput, inputHub } from '../inputs/multi-input.js';
import { withoutCredentials } from '../inputs/pull/pull-input.js';
import { HazeError, errorText } from '../util/errors.js';
import { TypedEmitter } from '../util/events.js';
import type { Logger } from '../util/log.js';
import { idleTimeMs, type ConfigView } from './config-view.js';
import type { StreamClaim, StreamRegistry } from './stream-registry.js';

/**
 * Feeds a hub from another worker; returns a handle to stop it. `onEnd` says whether the
 * stream itself ended (its publisher unpublished) or only the relay broke.
 */
export type RelayConnector = (claim: StreamClaim, hub: Hub, onEnd: (reason: string, streamEnded: boolean) => void) => { close(): void };

/**
 * Forwards a publisher's input hub of a `multi_input` stream to the worker hosting the stream;
 * `onEnd` fires when the forward stops on its own (refused, host gone; `shutDown`: the host
 * shut the stream down).
 */
export type InputForwarder = (claim: StreamClaim, input: Hub, onEnd: (reason: string, shutDown: boolean) => void) => { close(reason: string, clean: boolean): void };

/** What a running input tells the worker: it failed and ends (INPUT_ABORT's machine and human reasons). */
export interface InputControl {
  aborted(machineReason: string, humanReason: string): void;
}

/** The inputs a worker runs itself for a stream's first viewer (a `.pls` playlist; pulls later). */
export interface InputStarter {
  /** Whether `source` is one of them. */
  accepts(source: string): boolean;
  /** Feeds `hub` from `source` until stopped (or until it reports a failure through `ctl`). */
  start(name: string, source: string, hub: Hub, ctl: InputControl): { stop(): void };
}

/** Decisions of the stream lifecycle triggers (worker/stream-triggers.ts). */
export interface StreamHooks {
  /** STREAM_LOAD: a stream's buffer is about to be loaded (a publish, an input); false refuses. */
  load(name: string): Promise<boolean>;
  /** STREAM_UNLOAD: an input without viewers is about to unload; false keeps it running. */
  unload(name: string, reason: string): Promise<boolean>;
}

/** How long a viewer waits for a configured stream to come online (DESIGN §4). */
export const ONLINE_WAIT_MS = 5_000;
/** A relay hub without viewers is released after this long; an input too, unless its `inputtimeout` says otherwise. */
const RELAY_IDLE_MS = 10_000;
/** How long viewers wait for a successor of a publisher that vanished (the hub's grace period). */
const SOURCE_GRACE_MS = 20_000;
/** First pause before an `always_on` input that failed is started again; doubles up to ALWAYS_ON_RETRY_MAX_MS. */
const ALWAYS_ON_RETRY_MS = 5_000;
const ALWAYS_ON_RETRY_MAX_MS = 60_000;
/** Pause before looking for a stream's source again after its relay broke. */
const RELAY_RETRY_MS = 500;
/** How long a stream that ended stays visible to segmented outputs (their playlists end with ENDLIST). */
const ENDED_VISIBLE_MS = 60_000;
/** How long a successor on another worker continues a stream's timeline (segment numbers, clock). */
const TIMELINE_KEPT_MS = 120_000;
/** First pause before a publisher of a multi_input stream whose host went is placed again; doubles up to PLACE_RETRY_MAX_MS. */
const PLACE_RETRY_MS = 250;
const PLACE_RETRY_MAX_MS = 5000;

interface HubEntry {
  hub: Hub;
  local: boolean;
  relay: { close(): void } | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  /** Ended for lack of viewers (not because the stream ended). */
  idle?: boolean;
  /** The input this worker runs for the stream (started by its first viewer). */
  input?: { stop(reason: string): void };
  /** The publishers merged into the source hub (`multi_input`), while this worker hosts it. */
  multi?: MultiInput;
}

export interface HubManagerEvents {
  /** A stream this worker hosts the source of came online (pushes and recordings start on it). */
  sourceOnline: { name: string; hub: Hub };
  /** This worker's hub of a stream becomes its source hub (a publisher or an input starts feeding it). */
  sourceStart: { name: string; hub: Hub };
  /** The stream's source here left: its hub ends (lingerMs 0) or waits lingerMs for a successor. */
  sourceEnd: { name: string; hub: Hub; lingerMs: number; reason: string };
  /** An input this worker ran failed (INPUT_ABORT). */
  inputAbort: { name: string; source: string; machineReason: string; humanReason: string };
}

/** A stream setting read as a flag: true/1/"1" on, false/0/"0" off, anything else unset. */
function flag(v: unknown): boolean | undefined {
  if (v === true || v === 1 || v === '1') return true;
  if (v === false || v === 0 || v === '0') return false;
  return undefined;
}

/** A positive number setting (numbers or numeric strings, as MistServer's UI stores them). */
function positive(v: unknown): number | undefined {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

export class HubManager extends TypedEmitter<HubManagerEvents> {
  private readonly entries = new Map<string, HubEntry>();
  /** Streams that ended lately, for endedHub. */
  private readonly ended = new Map<string, Hub>();
  private closing = false;
  /** Stream lifecycle decisions (STREAM_LOAD, STREAM_UNLOAD); everything is allowed without. */
  hooks: StreamHooks | undefined;
  /** Streams whose input waits for its STREAM_LOAD answer. */
  private readonly loading = new Set<string>();
  /** How to stop each stream's publishers (shutdown: STREAM_READY or LIVE_BANDWIDTH said false). */
  private readonly stoppers = new Map<string, Set<(reason: string) => void>>();
  /** Failed starts of each always_on input in a row (backoff). */
  private readonly alwaysOnFailures = new Map<string, number>();

  constructor(
    private readonly config: ConfigView,
    private readonly registry: StreamRegistry,
    private readonly connectRelay: RelayConnector,
    private readonly log: Logger,
    private readonly onStreamEnd: (name: string) => void = () => {},
    private readonly startInput?: InputStarter,
    private readonly forwardInput?: InputForwarder,
  ) {
    super();
    registry.on('change', (name) => this.onClaimChange(name));
    // always_on inputs run without viewers: started now (once the hooks are in place) and on config changes
    config.on('change', () => this.ensureAlwaysOn());
    setImmediate(() => this.ensureAlwaysOn());
  }

  get hubs(): ReadonlyMap<string, { hub: Hub; local: boolean }> {
    return this.entries;
  }

  /** True when `name` or its wildcard base is configured. */
  isConfigured(name: string): boolean {
    return this.config.stream(name) !== undefined;
  }

  private entry(name: string): HubEntry {
    let e = this.entries.get(name);
    if (e && !e.hub.isEnded) return e;
    const settings = this.config.stream(name);
    const dvr = typeof settings?.DVR === 'number' ? settings.DVR : undefined;
    const ended = this.ended.get(name);
    const hub = new StreamHub(name, { ...(dvr === undefined ? {} : { dvrMs: dvr }), ...(ended ? { continueFrom: ended } : {}) });
    const entry: HubEntry = { hub, local: false, relay: undefined, idleTimer: undefined };
    hub.on('end', (reason) => {
      this.log.info(`stream ${name} ended: ${reason}`);
      if (!entry.idle) {
        this.ended.set(name, hub);
        setTimeout(() => {
          if (this.ended.get(name) === hub) this.ended.delete(name);
        }, ENDED_VISIBLE_MS).unref();
      }
      entry.relay?.close();
      if (entry.idleTimer) clearTimeout(entry.idleTimer);
      if (this.entries.get(name) === entry) this.entries.delete(name);
      this.onStreamEnd(name);
    });
    hub.on('idle', () => this.onIdle(name, entry));
    hub.on('online', () => {
      this.log.info(`stream ${name} is online (${hub.tracks.map((t) => t.codec).join(', ')})`);
      if (entry.local) this.emit('sourceOnline', { name, hub });
    });
    this.entries.set(name, entry);
    return entry;
  }

  /**
   * A publisher arrives: claims the stream across workers (HAZE_ERR_BUSY if another
   * publisher holds it) and returns the hub to feed plus the function that ends the push:
   * a clean end (the publisher unpublished) ends the stream for its viewers at once; a lost
   * publisher leaves them waiting for a successor for the hub's grace period.
   */
  startPublish(name: string): { hub: Hub; end(reason: string, clean: boolean): void } {
    if (flag(this.config.stream(name)?.['multi_input']) === true) return this.joinPublish(name);
    this.registry.claim(name);
    const e = this.becomeHost(name);
    let ended = false;
    return {
      hub: e.hub,
      end: (reason, clean) => {
        if (ended) return;
        ended = true;
        this.releaseHost(name, e, reason, clean);
      },
    };
  }

  /** After claiming `name`: this worker's hub of it becomes the source hub. */
  private becomeHost(name: string): HubEntry {
    const e = this.entry(name);
    if (e.relay) {
      e.relay.close();
      e.relay = undefined;
      e.hub.detachSource('source moved to this worker');
    }
    e.local = true;
    // a predecessor on another worker: go on where it stopped
    const saved = this.registry.loadTimeline(name, TIMELINE_KEPT_MS);
    if (saved) e.hub.continueTimeline(saved);
    e.hub.attachSource();
    this.emit('sourceStart', { name, hub: e.hub });
    return e;
  }

  /** The stream's last publisher here left: a clean end ends the stream, a lost one leaves its viewers the grace period. */
  private releaseHost(name: string, e: HubEntry, reason: string, clean: boolean): void {
    this.registry.saveTimeline(name, e.hub.timeline());
    e.local = false;
    e.multi = undefined;
    this.registry.release(name);
    // `resume` (reference §1.12): on, the buffer waits idleTime for its publisher whether or not
    // anyone watches; off, it closes with its publisher; unset, viewers wait the grace period
    const settings = this.config.stream(name);
    const resume = flag(settings?.['resume']);
    const lingerMs = clean || resume === false ? 0 : resume === true ? idleTimeMs(settings) : e.hub.listenerCount > 0 ? SOURCE_GRACE_MS : 0;
    this.emit('sourceEnd', { name, hub: e.hub, lingerMs, reason });
    if (lingerMs === 0) e.hub.end(reason);
    else e.hub.detachSource(reason, lingerMs);
  }

  /** STREAM_LOAD's decision on loading `name` (true without hooks). */
  allowLoad(name: string): Promise<boolean> {
    return this.hooks ? this.hooks.load(name) : Promise.resolve(true);
  }

  /** Registers how to disconnect one publisher of `name` when the stream is shut down; returns the unregister. */
  onShutdown(name: string, stop: (reason: string) => void): () => void {
    let set = this.stoppers.get(name);
    if (!set) this.stoppers.set(name, (set = new Set()));
    set.add(stop);
    return () => {
      set.delete(stop);
      if (set.size === 0 && this.stoppers.get(name) === set) this.stoppers.delete(name);
    };
  }

  /** Shuts a stream down here: its publishers are disconnected, its input stops, its hub ends. */
  shutdown(name: string, reason: string): void {
    this.log.warn(`stream ${name}: shutting down: ${reason}`);
    for (const stop of [...(this.stoppers.get(name) ?? [])]) stop(reason);
    const e = this.entries.get(name);
    e?.input?.stop(reason);
    if (e && !e.relay && !e.hub.isEnded) e.hub.end(reason);
  }

  /**
   * A publisher of a `multi_input` stream (inputs/multi-input.ts): it feeds an input hub of
   * its own, merged into the stream's hub on the worker hosting the stream: this one (which
   * claims the stream if nobody hosts it) or another, over that worker's control socket. When
   * the host goes or lets go, the publisher is placed again (on the stream's new host, or here).
   * HAZE_ERR_BUSY when the stream takes no more publishers.
   */
  private joinPublish(name: string): { hub: Hub; end(reason: string, clean: boolean): void } {
    const input = inputHub(name);
    let placed: { close(reason: string, clean: boolean): void } | undefined;
    let placedAt = Date.now();
    let ended = false;
    let retry: NodeJS.Timeout | undefined;
    let failures = 0;
    /** The merge let go of it: placed anew, unless the stream was shut down. */
    const lost = (reason: string, shutDown: boolean): void => {
      placed = undefined;
      if (ended || this.closing) return;
      if (shutDown) {
        // the host shut the stream down: this worker's publishers of it are disconnected too
        // (the host's own were, by its shutdown)
        if (!this.localSource(name)) this.shutdown(name, reason);
        return;
      }
      // a placement that held a while is a new trouble, not the same one again
      if (Date.now() - placedAt > 10_000) failures = 0;
      const delay = Math.min(PLACE_RETRY_MAX_MS, PLACE_RETRY_MS * 2 ** failures++);
      this.log.warn(`publisher of ${name}: ${reason}; placing it again in ${delay} ms`);
      retry = setTimeout(() => {
        retry = undefined;
        if (ended || this.closing) return;
        try {
          placedAt = Date.now();
          placed = this.placeInput(name, input, lost);
        } catch (err) {
          lost(errorText(err), false);
        }
      }, delay);
      retry.unref();
    };
    placed = this.placeInput(name, input, lost);
    return {
      hub: input,
      end: (reason, clean) => {
        if (ended) return;
        ended = true;
        if (retry) clearTimeout(retry);
        placed?.close(reason, clean);
        input.end(reason);
      },
    };
  }

  /** Merges `input` here (hosting the stream, claimed now if nobody does) or forwards it to the host. */
  private placeInput(name: string, input: Hub, lost: (reason: string, shutDown: boolean) => void): { close(reason: string, clean: boolean): void } {
    if (this.closing) throw new HazeError('HAZE_ERR_BUSY', 'server stopping');
    for (let attempt = 0; ; attempt++) {
      const e = this.entries.get(name);
      if (e?.local && !e.hub.isEnded) return this.mergeHere(name, e, input, lost);
      try {
        this.registry.claim(name);
      } catch (err) {
        const claim = this.registry.lookup(name);
        if (claim && this.forwardInput) {
          this.log.info(`publisher of ${name}: forwarded to worker ${claim.worker}, which hosts the stream`);
          return this.forwardInput(claim, input, (reason, shutDown) => lost(shutDown ? reason : `forward to worker ${claim.worker}: ${reason}`, shutDown));
        }
        // the claim went between the two looks: try again
        if (claim || attempt >= 2) throw err;
        continue;
      }
      const host = this.becomeHost(name);
      host.multi = new MultiInput(host.hub);
      return this.mergeHere(name, host, input, lost);
    }
  }

  /**
   * Merges `input` into the source hub of `e`; the last one to leave releases the stream.
   * `lost`: the stream hub ended under it (`shutDown` unless the worker is stopping).
   */
  private mergeHere(name: string, e: HubEntry, input: Hub, lost: (reason: string, shutDown: boolean) => void): { close(reason: string, clean: boolean): void } {
    const multi = e.multi;
    if (!multi) throw new HazeError('HAZE_ERR_BUSY', `stream ${name} already has a publisher that is not merged (multi_input was off when it started)`);
    const last = (): boolean => multi.size === 0 && e.multi === multi;
    const merged = multi.add(input, (reason) => {
      if (last()) this.releaseHost(name, e, reason, false);
      lost(reason, !this.closing);
    });
    let closed = false;
    return {
      close: (reason, clean) => {
        if (closed) return;
        closed = true;
        merged.close();
        if (last()) this.releaseHost(name, e, reason, clean);
      },
    };
  }

  /**
   * A publisher of a `multi_input` stream connected to another worker, forwarded here (the
   * control socket's `push`): merged like a local one. HAZE_ERR_BUSY when this worker does not
   * host the stream (any more): the other worker then places it anew.
   */
  acceptForwarded(name: string): { hub: Hub; end(reason: string, clean: boolean): void; readonly shutDown: boolean } {
    const e = this.entries.get(name);
    if (this.closing || !e?.local || !e.multi || e.hub.isEnded) throw new HazeError('HAZE_ERR_BUSY', `this worker does not host ${name} with its publishers merged`);
    const input = inputHub(name);
    let shutDown = false;
    // let go by the merge (the stream ended here): ending the input tells the other worker
    const merged = this.mergeHere(name, e, input, (reason, byShutdown) => {
      shutDown = byShutdown;
      input.end(reason);
    });
    this.log.info(`stream ${name}: a publisher forwarded from another worker joined`);
    return {
      hub: input,
      end: (reason, clean) => {
        merged.close(reason, clean);
        input.end(reason);
      },
      get shutDown() {
        return shutDown;
      },
    };
  }

  /**
   * The hub a viewer of `name` plays from, online; waits up to ONLINE_WAIT_MS for it.
   * HAZE_ERR_NOT_FOUND for names that are not configured, HAZE_ERR_OFFLINE otherwise.
   */
  async forViewer(name: string, waitMs = ONLINE_WAIT_MS): Promise<Hub> {
    if (!this.isConfigured(name)) throw new HazeError('HAZE_ERR_NOT_FOUND', `Stream not found: ${name}`, { status: 404, fatal: true });
    const e = this.entry(name);
    if (!e.local && !e.relay) this.tryRelay(name, e);
    if (!e.local && !e.relay) this.tryInput(name, e);
    if (e.hub.online || (await e.hub.waitOnline(waitMs))) return e.hub;
    if (e.hub.listenerCount === 0 && !e.local) {
      e.idle = true;
      e.hub.end('no viewers');
    }
    throw new HazeError('HAZE_ERR_OFFLINE', `Stream ${name} is offline`, { status: 503, fatal: true });
  }

  /**
   * The hub of a stream that ended within the last minute and has no source now: segmented
   * outputs answer from it (playlists with ENDLIST) instead of waiting for the stream.
   */
  endedHub(name: string): Hub | undefined {
    const hub = this.ended.get(name);
    const current = this.entries.get(name)?.hub;
    // a successor that has had a source of its own (now in its grace period, say) is the stream now
    if (!hub || this.hasSource(name) || (current && !current.isEnded && current.everAttached)) return undefined;
    return hub;
  }

  /** Whether some worker has a publisher (or other source) for `name` right now. */
  hasSource(name: string): boolean {
    return this.entries.get(name)?.local === true || this.registry.lookup(name) !== undefined;
  }

  /** A source hub (for relaying to other workers); never a relay hub, so relays cannot loop. */
  localSource(name: string): Hub | undefined {
    const e = this.entries.get(name);
    return e && e.local && !e.hub.isEnded ? e.hub : undefined;
  }

  private tryRelay(name: string, e: HubEntry): void {
    if (e.local || e.relay) return;
    const claim = this.registry.lookup(name);
    if (!claim) return;
    this.log.info(`relaying ${name} from worker ${claim.worker}`);
    e.hub.attachSource('relay');
    e.relay = this.connectRelay(claim, e.hub, (reason, streamEnded) => {
      e.relay = undefined;
      if (this.entries.get(name) !== e || e.hub.isEnded) return;
      if (streamEnded) {
        e.hub.end(reason);
        return;
      }
      e.hub.detachSource(`relay from worker ${claim.worker} ended: ${reason}`);
      // The stream may already be back elsewhere (a claim change also triggers this); wait a
      // moment so a claim that is about to be released cannot cause a tight reconnect loop.
      setTimeout(() => {
        if (this.entries.get(name) === e && !e.hub.isEnded) this.tryRelay(name, e);
      }, RELAY_RETRY_MS).unref();
    });
  }

  /**
   * Starts the stream's input here when it has one and nobody runs it yet (pulls, playlists),
   * once STREAM_LOAD allows it.
   */
  private tryInput(name: string, e: HubEntry): void {
    const source = this.config.stream(name)?.source;
    if (!this.startInput || !source || !this.startInput.accepts(source) || this.registry.lookup(name) || e.input || this.loading.has(name)) return;
    this.loading.add(name);
    void this.allowLoad(name).then((allowed) => {
      this.loading.delete(name);
      if (this.closing || this.entries.get(name) !== e || e.hub.isEnded || e.local || e.relay) return;
      if (!allowed) {
        this.log.warn(`stream ${name}: input refused by STREAM_LOAD`);
        // viewers waiting for it hear at once
        if (e.hub.listenerCount === 0) {
          e.idle = true;
          e.hub.end('input refused by STREAM_LOAD');
        }
        return;
      }
      this.runInput(name, e, source);
    });
  }

  private runInput(name: string, e: HubEntry, source: string): void {
    let pub: ReturnType<HubManager['startPublish']>;
    try {
      pub = this.startPublish(name);
    } catch {
      return; // another worker just started it: the relay follows through the claim change
    }
    let stopped = false;
    let input: { stop(): void } | undefined;
    const startedAt = Date.now();
    const handle = {
      stop: (reason: string): void => {
        if (stopped) return;
        stopped = true;
        if (e.input === handle) e.input = undefined;
        input?.stop();
        pub.end(reason, true);
        // the worker that ran an always_on input starts it again (the others wait: no ping-pong)
        this.retryAlwaysOn(name, Date.now() - startedAt);
      },
    };
    e.input = handle;
    input = this.startInput!.start(name, source, pub.hub, {
      aborted: (machineReason, humanReason) => {
        if (stopped) return;
        this.log.warn(`stream ${name}: input ${withoutCredentials(source)} failed: ${humanReason}`);
        this.emit('inputAbort', { name, source, machineReason, humanReason });
        handle.stop(`input failed: ${humanReason}`);
      },
    });
    if (stopped) input.stop(); // it failed at once
    else this.log.info(`stream ${name}: input started from ${withoutCredentials(source)}`);
  }

  /** Whether `name` is configured (itself, not as a wildcard instance) with an always_on input. */
  private alwaysOn(name: string): boolean {
    const s = this.config.get().streams?.[name];
    return !!s && flag(s['always_on']) === true && !!this.startInput?.accepts(s.source);
  }

  /**
   * Starts every always_on input nobody runs (reference §1.5: they run without viewers); an
   * input whose always_on went away follows the viewer rules again.
   */
  ensureAlwaysOn(): void {
    if (this.closing) return;
    for (const name of Object.keys(this.config.get().streams ?? {})) {
      if (this.alwaysOn(name)) {
        if (!this.registry.lookup(name)) this.tryInput(name, this.entry(name));
      }
    }
    for (const [name, e] of this.entries) {
      if (e.input && e.hub.listenerCount === 0 && !this.alwaysOn(name) && !e.idleTimer) this.onIdle(name, e);
    }
  }

  /** An always_on input that ended is started again, after a pause that grows while it keeps failing. */
  private retryAlwaysOn(name: string, ranMs: number): void {
    if (!this.alwaysOn(name) || this.closing) return;
    const failures = ranMs > ALWAYS_ON_RETRY_MAX_MS ? 0 : (this.alwaysOnFailures.get(name) ?? 0);
    this.alwaysOnFailures.set(name, failures + 1);
    const delay = Math.min(ALWAYS_ON_RETRY_MAX_MS, ALWAYS_ON_RETRY_MS * 2 ** failures);
    setTimeout(() => this.ensureAlwaysOn(), delay).unref();
  }

  private onClaimChange(name: string): void {
    const e = this.entries.get(name);
    // an entry exists while viewers watch or wait for the stream (idle ones end on a timer)
    if (e && !e.hub.isEnded && !e.local && !e.relay) {
      this.tryRelay(name, e);
      // a buffer that waited for its publisher (resume) with nobody watching: it came back elsewhere
      if (e.relay && e.hub.listenerCount === 0) this.onIdle(name, e);
    }
  }

  private onIdle(name: string, e: HubEntry): void {
    if (e.local && !e.input) return;
    if (e.input && this.alwaysOn(name)) return;
    if (e.idleTimer) clearTimeout(e.idleTimer);
    // an input waits its stream's inputtimeout (s); a relay the fixed RELAY_IDLE_MS
    const waitMs = e.input ? (positive(this.config.stream(name)?.['inputtimeout']) ?? RELAY_IDLE_MS / 1000) * 1000 : RELAY_IDLE_MS;
    e.idleTimer = setTimeout(() => {
      e.idleTimer = undefined;
      if (e.hub.listenerCount > 0) return;
      const reason = `no viewers for ${waitMs / 1000} s`;
      const input = e.input;
      if (input) {
        if (this.alwaysOn(name)) return;
        void (this.hooks ? this.hooks.unload(name, reason) : Promise.resolve(true)).then((allowed) => {
          if (e.input !== input || e.hub.listenerCount > 0) return;
          if (!allowed) {
            this.log.info(`stream ${name}: STREAM_UNLOAD keeps its input running`);
            this.onIdle(name, e);
            return;
          }
          e.idle = true;
          input.stop(reason);
        });
      } else if (!e.local) {
        e.idle = true;
        e.hub.end(reason);
      }
    }, waitMs);
    e.idleTimer.unref();
  }

  closeAll(reason: string): void {
    this.closing = true;
    for (const e of [...this.entries.values()]) {
      e.input?.stop(reason);
      e.hub.end(reason);
    }
  }
}
