// The hubs of one worker: a source hub for each stream whose publisher is connected here,
// and a relay hub for each stream hosted by another worker that has viewers here (fed over
// that worker's control socket, so N local viewers cost one copy; DESIGN §3). A hub outlives
// a change of source: when a publisher reconnects (here or on another worker) its viewers
// resume. Hubs with no source and no viewers end.

import type { StreamHub as Hub } from '../hub/stream-hub.js';
import { StreamHub } from '../hub/stream-hub.js';
import { HazeError } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import type { ConfigView } from './config-view.js';
import type { StreamClaim, StreamRegistry } from './stream-registry.js';

/**
 * Feeds a hub from another worker; returns a handle to stop it. `onEnd` says whether the
 * stream itself ended (its publisher unpublished) or only the relay broke.
 */
export type RelayConnector = (claim: StreamClaim, hub: Hub, onEnd: (reason: string, streamEnded: boolean) => void) => { close(): void };

/** The inputs a worker runs itself for a stream's first viewer (a `.pls` playlist; pulls later). */
export interface InputStarter {
  /** Whether `source` is one of them. */
  accepts(source: string): boolean;
  /** Feeds `hub` from `source` until stopped. */
  start(name: string, source: string, hub: Hub): { stop(): void };
}

/** How long a viewer waits for a configured stream to come online (DESIGN §4). */
export const ONLINE_WAIT_MS = 5_000;
/** A relay hub without viewers is released after this long. */
const RELAY_IDLE_MS = 10_000;
/** Pause before looking for a stream's source again after its relay broke. */
const RELAY_RETRY_MS = 500;
/** How long a stream that ended stays visible to segmented outputs (their playlists end with ENDLIST). */
const ENDED_VISIBLE_MS = 60_000;
/** How long a successor on another worker continues a stream's timeline (segment numbers, clock). */
const TIMELINE_KEPT_MS = 120_000;

interface HubEntry {
  hub: Hub;
  local: boolean;
  relay: { close(): void } | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  /** Ended for lack of viewers (not because the stream ended). */
  idle?: boolean;
  /** The input this worker runs for the stream (started by its first viewer). */
  input?: { stop(reason: string): void };
}

export class HubManager {
  private readonly entries = new Map<string, HubEntry>();
  /** Streams that ended lately, for endedHub. */
  private readonly ended = new Map<string, Hub>();

  constructor(
    private readonly config: ConfigView,
    private readonly registry: StreamRegistry,
    private readonly connectRelay: RelayConnector,
    private readonly log: Logger,
    private readonly onStreamEnd: (name: string) => void = () => {},
    private readonly startInput?: InputStarter,
  ) {
    registry.on('change', (name) => this.onClaimChange(name));
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
    hub.on('online', () => this.log.info(`stream ${name} is online (${hub.tracks.map((t) => t.codec).join(', ')})`));
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
    this.registry.claim(name);
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
    let ended = false;
    return {
      hub: e.hub,
      end: (reason, clean) => {
        if (ended) return;
        ended = true;
        this.registry.saveTimeline(name, e.hub.timeline());
        e.local = false;
        this.registry.release(name);
        if (clean || e.hub.listenerCount === 0) e.hub.end(reason);
        else e.hub.detachSource(reason);
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

  /** Starts the stream's input here when it has one and nobody runs it yet (pulls, playlists). */
  private tryInput(name: string, e: HubEntry): void {
    const source = this.config.stream(name)?.source;
    if (!this.startInput || !source || !this.startInput.accepts(source) || this.registry.lookup(name)) return;
    let pub: ReturnType<HubManager['startPublish']>;
    try {
      pub = this.startPublish(name);
    } catch {
      return; // another worker just started it: the relay follows through the claim change
    }
    const input = this.startInput.start(name, source, pub.hub);
    this.log.info(`stream ${name}: input started from ${source}`);
    e.input = {
      stop: (reason) => {
        e.input = undefined;
        input.stop();
        pub.end(reason, true);
      },
    };
  }

  private onClaimChange(name: string): void {
    const e = this.entries.get(name);
    // an entry exists while viewers watch or wait for the stream (idle ones end on a timer)
    if (e && !e.hub.isEnded && !e.local && !e.relay) this.tryRelay(name, e);
  }

  private onIdle(name: string, e: HubEntry): void {
    if (e.local && !e.input) return;
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.idleTimer = setTimeout(() => {
      e.idleTimer = undefined;
      if (e.hub.listenerCount > 0) return;
      const reason = `no viewers for ${RELAY_IDLE_MS / 1000} s`;
      if (e.input) {
        e.idle = true;
        e.input.stop(reason);
      } else if (!e.local) {
        e.idle = true;
        e.hub.end(reason);
      }
    }, RELAY_IDLE_MS);
    e.idleTimer.unref();
  }

  closeAll(reason: string): void {
    for (const e of [...this.entries.values()]) {
      e.input?.stop(reason);
      e.hub.end(reason);
    }
  }
}
