// The stream lifecycle triggers (reference §4.2, §1.12), fired by the worker that carries the
// stream's buffer, so they keep working while the controller is down: STREAM_LOAD before a
// publish or an input loads a stream, STREAM_READY and STREAM_BUFFER FULL when it first
// becomes playable, DRY and RECOVER from a health check every second (hub/buffer-health.ts),
// LIVE_TRACK_LIST when its tracks change, LIVE_BANDWIDTH, STREAM_UNLOAD and STREAM_BUFFER
// EMPTY when the buffer goes, INPUT_ABORT for a failed input, and STREAM_END when the stream's
// statistics are gone on every worker.
//
// A buffer outlives its publisher for a grace period (or `idleTime` with `resume`), and the
// publisher may come back on another worker: which worker carries each buffer, its state and
// until when it waits is kept in a small file per stream in the run folder, so a successor
// carries the buffer on (no second FULL) and exactly one worker announces its end.

import fs from 'node:fs';
import path from 'node:path';
import { dtscTrackIdentifier } from '../containers/dtsc/header.js';
import { BufferHealthTracker, type HealthReport } from '../hub/buffer-health.js';
import type { BufferState, StreamHub } from '../hub/stream-hub.js';
import { streamInfo } from '../outputs/stream-info.js';
import type { FireOptions, TriggerDispatcher } from '../triggers/dispatch.js';
import { errorText } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { isAlive } from '../util/run-dir.js';
import { idleTimeMs, type ConfigView } from './config-view.js';
import type { HubManager } from './hub-manager.js';
import type { StreamTotals, WorkerStats } from './worker-stats.js';

/** How often the buffers this worker carries are checked (health, idle tracks, bandwidth): MistServer's every second. */
const CHECK_MS = 1000;
/** A track counts as still fed when its last packet came within this. */
const ACTIVE_TRACK_MS = 5000;

/** Which worker carries a stream's buffer, shared through the run folder. */
interface BufferRecord {
  worker: number;
  pid: number;
  state: BufferState;
  dry?: boolean;
  /** The publisher left: the buffer waits for a successor until then (ms since the epoch). */
  lingerUntil?: number;
  /** Media time of the last packet (EMPTY's third field). */
  lastMs?: number;
  /** The track set last announced by LIVE_TRACK_LIST. */
  tracks?: string;
}

/** One file per stream under run/buffers; writes go through a rename so readers never see half. */
class BufferRecords {
  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  private file(stream: string): string {
    return path.join(this.dir, `${encodeURIComponent(stream)}.json`);
  }

  read(stream: string): BufferRecord | undefined {
    try {
      return JSON.parse(fs.readFileSync(this.file(stream), 'utf8')) as BufferRecord;
    } catch {
      return undefined;
    }
  }

  write(stream: string, rec: BufferRecord): void {
    const file = this.file(stream);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(rec));
      fs.renameSync(tmp, file);
    } catch {
      fs.rmSync(tmp, { force: true });
    }
  }

  remove(stream: string): void {
    fs.rmSync(this.file(stream), { force: true });
  }
}

/**
 * STREAM_END's totals over the workers: each worker leaves a marker while it counts a stream and
 * its totals when it stops; the last one to stop (no live marker left; a lock folder decides a
 * tie) sums them and fires.
 */
class StreamEndTally {
  private seq = 0;

  constructor(private readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
  }

  private folder(stream: string): string {
    return path.join(this.dir, encodeURIComponent(stream));
  }

  active(stream: string): void {
    try {
      const d = this.folder(stream);
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `active-${process.pid}`), '');
    } catch {
      // the run folder is gone (stopping)
    }
  }

  /** This worker's counters of `stream` went; the sum over the workers when this was the last one. */
  gone(stream: string, totals: StreamTotals): StreamTotals | undefined {
    const d = this.folder(stream);
    let names: string[];
    try {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, `done-${process.pid}-${++this.seq}.json`), JSON.stringify(totals));
      fs.rmSync(path.join(d, `active-${process.pid}`), { force: true });
      names = fs.readdirSync(d);
    } catch {
      return undefined;
    }
    for (const n of names) {
      if (!n.startsWith('active-')) continue;
      if (isAlive(Number(n.slice(7)))) return undefined; // another worker still counts it
      fs.rmSync(path.join(d, n), { force: true }); // a worker that died
    }
    const lock = path.join(d, 'ending');
    try {
      fs.mkdirSync(lock);
    } catch {
      return undefined;
    }
    const sum: StreamTotals = { downbytes: 0, upbytes: 0, viewers: 0, inputs: 0, outputs: 0, viewerSeconds: 0 };
    let found = 0;
    for (const n of names) {
      if (!n.startsWith('done-')) continue;
      const file = path.join(d, n);
      try {
        const t = JSON.parse(fs.readFileSync(file, 'utf8')) as StreamTotals;
        for (const k of Object.keys(sum) as (keyof StreamTotals)[]) sum[k] += Number(t[k]) || 0;
        found++;
      } catch {
        // taken by another worker's tally
      }
      fs.rmSync(file, { force: true });
    }
    fs.rmSync(lock, { recursive: true, force: true });
    try {
      fs.rmdirSync(d);
    } catch {
      // a worker counts the stream again
    }
    return found > 0 ? sum : undefined;
  }
}

/** A source hub this worker follows. */
interface SourceWatch {
  name: string;
  hub: StreamHub;
  health: BufferHealthTracker;
  /** The last health report (the payload of DRY and RECOVER). */
  last: HealthReport | undefined;
  trackList: string | undefined;
  lastBps: number;
  bandwidthBusy: boolean;
  /** A cancelable STREAM_UNLOAD was answered yes: the end does not announce another. */
  unloadAnnounced: boolean;
}

export interface StreamTriggersOptions {
  worker: number;
  hubs: HubManager;
  config: ConfigView;
  triggers: TriggerDispatcher;
  stats: WorkerStats;
  /** The run folder (buffer records and STREAM_END tallies live under it). */
  runDir: string;
  log: Logger;
}

export class StreamTriggers {
  private readonly sources = new Map<StreamHub, SourceWatch>();
  private readonly records: BufferRecords;
  private readonly tally: StreamEndTally;
  private timer: NodeJS.Timeout | undefined;
  private readonly hubs: HubManager;
  private readonly config: ConfigView;
  private readonly triggers: TriggerDispatcher;
  private readonly log: Logger;
  private readonly worker: number;

  constructor(opts: StreamTriggersOptions) {
    this.hubs = opts.hubs;
    this.config = opts.config;
    this.triggers = opts.triggers;
    this.log = opts.log;
    this.worker = opts.worker;
    this.records = new BufferRecords(path.join(opts.runDir, 'buffers'));
    this.tally = new StreamEndTally(path.join(opts.runDir, 'stream-ends'));
    this.hubs.hooks = { load: (name) => this.load(name), unload: (name, reason) => this.unload(name, reason) };
    this.hubs.on('sourceStart', ({ name, hub }) => this.onSourceStart(name, hub));
    this.hubs.on('sourceEnd', ({ name, hub, lingerMs }) => this.onSourceEnd(name, hub, lingerMs));
    this.hubs.on('inputAbort', (a) => {
      void this.triggers.fire('INPUT_ABORT', a.name, { stream: a.name, source: a.source, binary: this.inputName(a.name), pid: String(process.pid), machineReason: a.machineReason, humanReason: a.humanReason }, this.fireOpts(a.name));
    });
    opts.stats.lifecycle = {
      active: (stream) => this.tally.active(stream),
      gone: (stream, totals) => this.streamGone(stream, totals),
    };
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The stream's tags, for `#tag` entries of the handlers' stream lists. */
  private fireOpts(name: string): FireOptions | undefined {
    const tags = this.config.stream(name)?.['tags'];
    return Array.isArray(tags) ? { tags: tags.filter((t): t is string => typeof t === 'string') } : undefined;
  }

  /** MistServer's input name: Playlist for a `.pls` source, Buffer for a live push. */
  private inputName(name: string): string {
    return (this.config.stream(name)?.source ?? '').endsWith('.pls') ? 'Playlist' : 'Buffer';
  }

  /** A buffer waiting for its publisher that a successor may carry on. */
  private lingering(rec: BufferRecord | undefined): boolean {
    return rec !== undefined && rec.lingerUntil !== undefined && Date.now() <= rec.lingerUntil;
  }

  /** STREAM_LOAD: asked only when the stream's buffer is not loaded already (here or on another worker). */
  async load(name: string): Promise<boolean> {
    if (this.hubs.hasSource(name) || this.lingering(this.records.read(name))) return true;
    const opts = this.fireOpts(name);
    if (!this.triggers.hasHandlers('STREAM_LOAD', name, opts)) return true;
    return (await this.triggers.fire('STREAM_LOAD', name, { stream: name }, opts)).allowed;
  }

  /** STREAM_UNLOAD for an input without viewers: a false answer keeps it running. */
  private async unload(name: string, reason: string): Promise<boolean> {
    const hub = this.hubs.localSource(name);
    const w = hub ? this.sources.get(hub) : undefined;
    const opts = this.fireOpts(name);
    if (!this.triggers.hasHandlers('STREAM_UNLOAD', name, opts)) {
      if (w) w.unloadAnnounced = true;
      return true;
    }
    const out = await this.triggers.fire('STREAM_UNLOAD', name, { stream: name, input: this.inputName(name), cancelable: 'cancelable', reason }, opts);
    if (out.allowed && w) w.unloadAnnounced = true;
    return out.allowed;
  }

  private onSourceStart(name: string, hub: StreamHub): void {
    const w = this.sources.get(hub) ?? this.watch(name, hub);
    w.unloadAnnounced = false;
    const rec = this.records.read(name);
    if (rec && this.lingering(rec)) {
      // the publisher came back (here or on another worker) in time: the buffer goes on
      hub.continueBuffer(rec.state, rec.dry);
      w.trackList = rec.tracks;
      this.records.write(name, { worker: this.worker, pid: process.pid, state: hub.state === 'EMPTY' ? rec.state : hub.state, ...(rec.dry === undefined ? {} : { dry: rec.dry }), ...(rec.tracks === undefined ? {} : { tracks: rec.tracks }) });
      return;
    }
    if (rec) {
      // a buffer whose end nobody announced (its worker died, or it ran out just now)
      this.fireBuffer(name, 'EMPTY', rec.lastMs !== undefined && rec.lastMs >= 0 ? String(rec.lastMs) : undefined);
    }
    hub.resetBuffer();
    w.trackList = undefined;
    this.records.write(name, { worker: this.worker, pid: process.pid, state: 'EMPTY' });
  }

  private onSourceEnd(name: string, hub: StreamHub, lingerMs: number): void {
    if (lingerMs <= 0) return; // the hub ends now: onEnd announces it
    const rec = this.records.read(name);
    if (!rec || rec.worker !== this.worker || rec.pid !== process.pid) return;
    this.records.write(name, { ...rec, state: hub.state, lingerUntil: Date.now() + lingerMs, lastMs: hub.lastMs });
  }

  private watch(name: string, hub: StreamHub): SourceWatch {
    const w: SourceWatch = {
      name,
      hub,
      health: new BufferHealthTracker(hub.dvrMs),
      last: undefined,
      trackList: undefined,
      lastBps: -1,
      bandwidthBusy: false,
      unloadAnnounced: false,
    };
    this.sources.set(hub, w);
    hub.tap({
      onPacket: (p) => w.health.packet(p, Date.now()),
      onTracks: (tracks) => {
        w.health.setTracks(tracks);
        if (hub.online) this.checkTrackList(w);
      },
      onEnd: () => {},
    });
    hub.on('state', (s) => this.onState(w, s));
    hub.on('online', () => this.checkTrackList(w));
    hub.on('end', (reason) => this.onEnd(w, reason));
    if (!this.timer) {
      this.timer = setInterval(() => this.check(), CHECK_MS);
      this.timer.unref();
    }
    return w;
  }

  private isSource(w: SourceWatch): boolean {
    return this.hubs.localSource(w.name) === w.hub;
  }

  private onState(w: SourceWatch, state: BufferState): void {
    if (state === 'EMPTY' || !this.isSource(w)) return;
    const name = w.name;
    if (state === 'FULL') {
      w.last = w.health.report(this.healthOpts(name));
      const opts = this.fireOpts(name);
      if (this.triggers.hasHandlers('STREAM_READY', name, opts)) {
        void this.triggers.fire('STREAM_READY', name, { stream: name, input: this.inputName(name) }, opts).then((out) => {
          if (!out.allowed && !w.hub.isEnded) this.hubs.shutdown(name, 'STREAM_READY answered false');
        });
      }
      this.fireBuffer(name, 'FULL', JSON.stringify(w.last.json));
    } else {
      this.fireBuffer(name, state, JSON.stringify((w.last ?? w.health.report(this.healthOpts(name))).json));
    }
    const rec = this.records.read(name);
    if (rec && rec.worker === this.worker && rec.pid === process.pid) {
      const dry = w.hub.healthIssues;
      this.records.write(name, { ...rec, state: w.hub.state, ...(dry === undefined ? {} : { dry }) });
    }
  }

  private fireBuffer(name: string, state: BufferState, health: string | undefined): void {
    this.log.info(`stream ${name}: buffer ${state}`);
    void this.triggers.fire('STREAM_BUFFER', name, () => ({ stream: name, state, ...(health === undefined ? {} : { health }) }), this.fireOpts(name));
  }

  private healthOpts(name: string): { maxKeepAwayMs?: number } {
    const v = Number(this.config.stream(name)?.['maxkeepaway']);
    return Number.isFinite(v) && v > 0 ? { maxKeepAwayMs: v } : {};
  }

  /** Every second, for each buffer this worker carries: idle tracks, health (DRY/RECOVER), bandwidth. */
  private check(): void {
    const now = Date.now();
    for (const w of this.sources.values()) {
      if (!this.isSource(w) || !w.hub.online) continue;
      try {
        this.dropIdleTracks(w, now);
        const report = w.health.report(this.healthOpts(w.name));
        this.checkBandwidth(w, report.bytesPerSecond);
        // judged once every track has a few keys (a new publisher starts with none)
        if (!report.settled) continue;
        w.last = report;
        w.hub.reportHealth(report.issues !== undefined);
      } catch (err) {
        this.log.error(`stream ${w.name}: buffer check failed: ${errorText(err)}`);
      }
    }
  }

  /** `idleTime` (reference §1.11): a track that stopped getting data while the others go on is removed. */
  private dropIdleTracks(w: SourceWatch, now: number): void {
    const tracks = w.hub.tracks;
    if (tracks.length < 2) return;
    const idleMs = idleTimeMs(this.config.stream(w.name));
    const idle = tracks.map((t) => w.health.idleMs(t.id, now));
    if (!idle.some((ms) => ms >= 0 && ms < ACTIVE_TRACK_MS)) return;
    tracks.forEach((t, i) => {
      if (idle[i]! > idleMs) {
        this.log.warn(`stream ${w.name}: track ${t.id} (${t.codec}) removed: no data for ${Math.round(idle[i]! / 1000)} s`);
        w.hub.removeTrack(t.id);
      }
    });
  }

  /** LIVE_TRACK_LIST when the set of tracks of an online buffer differs from the last one announced. */
  private checkTrackList(w: SourceWatch): void {
    if (!w.hub.online || !this.isSource(w)) return;
    const tracks = w.hub.tracks;
    const key = tracks.map((t, i) => `${dtscTrackIdentifier(t, i)}#${t.id}`).join('|');
    if (key === w.trackList) return;
    w.trackList = key;
    const rec = this.records.read(w.name);
    if (rec && rec.worker === this.worker && rec.pid === process.pid) this.records.write(w.name, { ...rec, tracks: key });
    const opts = this.fireOpts(w.name);
    if (!this.triggers.hasHandlers('LIVE_TRACK_LIST', w.name, opts)) return;
    const info = streamInfo({ name: w.name, tracks: tracks.map((t) => ({ ...t, firstMs: Math.max(0, w.hub.firstMs), lastMs: Math.max(0, w.hub.lastMs) })), live: true, online: true, base: { http: [] }, outputs: [] });
    const json = JSON.stringify((info['meta'] as { tracks: unknown }).tracks);
    void this.triggers.fire('LIVE_TRACK_LIST', w.name, { stream: w.name, tracks: json }, opts);
  }

  /** LIVE_BANDWIDTH (reference §1.12): when the summed rate changed and is at least the handler's params; false shuts the stream down. */
  private checkBandwidth(w: SourceWatch, bytesPerSecond: number): void {
    if (bytesPerSecond === w.lastBps || w.bandwidthBusy) return;
    w.lastBps = bytesPerSecond;
    const opts: FireOptions = {
      ...this.fireOpts(w.name),
      params: (p) => {
        const limit = Number.parseInt(p.trim(), 10);
        return (Number.isFinite(limit) ? limit : 0) <= bytesPerSecond;
      },
    };
    if (!this.triggers.hasHandlers('LIVE_BANDWIDTH', w.name, opts)) return;
    w.bandwidthBusy = true;
    void this.triggers.fire('LIVE_BANDWIDTH', w.name, { stream: w.name, bytesPerSecond: String(bytesPerSecond) }, opts).then((out) => {
      w.bandwidthBusy = false;
      if (!out.allowed && !w.hub.isEnded && this.isSource(w)) this.hubs.shutdown(w.name, `LIVE_BANDWIDTH answered false at ${bytesPerSecond} bytes/s`);
    });
  }

  /** The hub ended: when this worker carried its buffer last, STREAM_UNLOAD (uncancelable) and STREAM_BUFFER EMPTY. */
  private onEnd(w: SourceWatch, reason: string): void {
    this.sources.delete(w.hub);
    if (this.sources.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    const name = w.name;
    const rec = this.records.read(name);
    // carried on by another worker now, or announced already
    if (!rec || rec.worker !== this.worker || rec.pid !== process.pid || this.hubs.hasSource(name)) return;
    this.records.remove(name);
    if (!w.unloadAnnounced) {
      const opts = this.fireOpts(name);
      if (this.triggers.hasHandlers('STREAM_UNLOAD', name, opts)) void this.triggers.fire('STREAM_UNLOAD', name, { stream: name, input: this.inputName(name), cancelable: 'uncancelable', reason }, opts);
    }
    this.fireBuffer(name, 'EMPTY', w.hub.lastMs >= 0 ? String(w.hub.lastMs) : undefined);
  }

  /** This worker's statistics of a stream went: STREAM_END with the totals of every worker once none counts it. */
  private streamGone(stream: string, totals: StreamTotals): void {
    const sum = this.tally.gone(stream, totals);
    if (!sum) return;
    void this.triggers.fire(
      'STREAM_END',
      stream,
      {
        stream,
        downloadedBytes: String(sum.downbytes),
        uploadedBytes: String(sum.upbytes),
        totalViewers: String(sum.viewers),
        totalInputs: String(sum.inputs),
        totalOutputs: String(sum.outputs),
        viewerSeconds: String(sum.viewerSeconds),
      },
      this.fireOpts(stream),
    );
  }
}
