// The controller's line to the workers: their control sockets (run dir), the stream claims that
// say which worker hosts a stream's source, and a command sent to one worker or to all
// (worker-control.ts on the other side). A worker that does not answer is left out.

import fs from 'node:fs';
import path from 'node:path';
import { controlWorker } from '../protocols/dtsc/relay.js';
import type { RunPaths } from '../util/run-dir.js';
import type { StreamClaim } from '../worker/stream-registry.js';

export interface WorkerLink {
  /** The indexes of the workers that have a control socket now. */
  workers(): number[];
  /** The worker hosting `stream`'s source, if one does. */
  hostOf(stream: string): number | undefined;
  /** One worker's answer to `request` (undefined when it does not answer). */
  ask(worker: number, request: Record<string, unknown>): Promise<unknown>;
  /** Every worker's answer, in worker order; silent workers are left out. */
  broadcast(request: Record<string, unknown>): Promise<unknown[]>;
}

export function workerLink(paths: Pick<RunPaths, 'sockets' | 'streams'>): WorkerLink {
  const socket = (i: number): string => path.join(paths.sockets, `worker-${i}.sock`);
  const link: WorkerLink = {
    workers() {
      try {
        return fs
          .readdirSync(paths.sockets)
          .map((f) => /^worker-(\d+)\.sock$/.exec(f)?.[1])
          .filter((x): x is string => x !== undefined)
          .map(Number)
          .sort((a, b) => a - b);
      } catch {
        return [];
      }
    },
    hostOf(stream) {
      try {
        const claim = JSON.parse(fs.readFileSync(path.join(paths.streams, `${encodeURIComponent(stream)}.json`), 'utf8')) as StreamClaim;
        return typeof claim.worker === 'number' ? claim.worker : undefined;
      } catch {
        return undefined;
      }
    },
    ask: (worker, request) => controlWorker(socket(worker), request),
    async broadcast(request) {
      const answers = await Promise.all(link.workers().map((i) => controlWorker(socket(i), request)));
      return answers.filter((a) => a !== undefined);
    },
  };
  return link;
}
