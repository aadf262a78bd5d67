// Which worker hosts the source of which stream. A claim is a file in run/streams created
// with O_EXCL, so two workers can never both accept a publisher for one name; a claim whose
// process is gone (kill -9) is stale and may be taken over. Other workers find a stream's
// host here and relay from its control socket; a watch on the folder tells them when a
// stream appears or moves, with no polling.

import fs from 'node:fs';
import path from 'node:path';
import { HazeError } from '../util/errors.js';
import { TypedEmitter } from '../util/events.js';
import { isAlive, writeFileAtomic } from '../util/run-dir.js';
import type { HubTimeline } from '../hub/stream-hub.js';

export interface StreamClaim {
  stream: string;
  pid: number;
  worker: number;
  /** Control socket of the hosting worker. */
  socket: string;
  since: number;
}

export class StreamRegistry extends TypedEmitter<{ change: string }> {
  private watcher: fs.FSWatcher | undefined;
  private readonly mine = new Set<string>();

  constructor(
    private readonly dir: string,
    private readonly self: { pid: number; worker: number; socket: string },
  ) {
    super();
  }

  private file(stream: string): string {
    return path.join(this.dir, `${encodeURIComponent(stream)}.json`);
  }

  /** Claims `stream` for this worker; HAZE_ERR_BUSY when a live process holds it. */
  claim(stream: string): void {
    const file = this.file(stream);
    const claim: StreamClaim = { stream, pid: this.self.pid, worker: this.self.worker, socket: this.self.socket, since: Date.now() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        fs.writeFileSync(file, JSON.stringify(claim), { flag: 'wx' });
        this.mine.add(stream);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = this.lookup(stream);
      if (holder && holder.pid === this.self.pid) throw new HazeError('HAZE_ERR_BUSY', `stream ${stream} already has a publisher`);
      if (holder && isAlive(holder.pid)) throw new HazeError('HAZE_ERR_BUSY', `stream ${stream} already has a publisher (worker ${holder.worker})`);
      // stale: its process died without releasing it
      try {
        fs.unlinkSync(file);
      } catch {
        // someone else removed it first; try again
      }
    }
    throw new HazeError('HAZE_ERR_BUSY', `stream ${stream} is being claimed by another worker`);
  }

  release(stream: string): void {
    if (!this.mine.delete(stream)) return;
    const holder = this.lookup(stream);
    if (holder && holder.pid === this.self.pid) {
      try {
        fs.unlinkSync(this.file(stream));
      } catch {
        // already gone
      }
    }
  }

  releaseAll(): void {
    for (const s of [...this.mine]) this.release(s);
  }

  /** The live claim on `stream`, if any (stale claims are reported as absent). */
  lookup(stream: string): StreamClaim | undefined {
    try {
      const claim = JSON.parse(fs.readFileSync(this.file(stream), 'utf8')) as StreamClaim;
      return isAlive(claim.pid) ? claim : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Where a stream's timeline stood when its publisher left (StreamHub.timeline), for a
   * successor on any worker to continue it. Written next to the claims (not a `.json`, so
   * the watch does not report it).
   */
  saveTimeline(stream: string, timeline: HubTimeline): void {
    try {
      writeFileAtomic(this.file(stream).replace(/\.json$/, '.timeline'), JSON.stringify({ ...timeline, savedAt: Date.now() }));
    } catch {
      // the run folder is gone (shutting down): nothing to continue
    }
  }

  /** The timeline saved within the last `maxAgeMs`, if any. */
  loadTimeline(stream: string, maxAgeMs: number): HubTimeline | undefined {
    try {
      const t = JSON.parse(fs.readFileSync(this.file(stream).replace(/\.json$/, '.timeline'), 'utf8')) as HubTimeline & { savedAt: number };
      return Date.now() - t.savedAt <= maxAgeMs ? t : undefined;
    } catch {
      return undefined;
    }
  }

  /** Emits 'change' with the stream name whenever a claim appears, moves or goes. */
  watch(): void {
    if (this.watcher) return;
    this.watcher = fs.watch(this.dir, (_event, filename) => {
      if (!filename || !filename.endsWith('.json')) return;
      this.emit('change', decodeURIComponent(filename.slice(0, -5)));
    });
    this.watcher.on('error', () => {
      // the folder vanished (instance shutting down)
    });
    this.watcher.unref();
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.releaseAll();
  }
}
