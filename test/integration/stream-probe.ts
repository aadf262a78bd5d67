// A minimal HTTP viewer for tests: counts the bytes of a progressive stream and remembers
// which worker served it, so tests can measure that media keeps flowing.

import http from 'node:http';
import { sleep } from '../helpers.js';

export interface StreamProbe {
  status: number;
  worker: string;
  bytes(): number;
  closed(): boolean;
  close(): void;
  /** Resolves once `n` more bytes arrived, rejects after `timeoutMs`. */
  more(n: number, timeoutMs: number): Promise<void>;
}

export function openStream(url: string): Promise<StreamProbe> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let bytes = 0;
      let isClosed = false;
      res.on('data', (d: Buffer) => (bytes += d.length));
      res.on('close', () => (isClosed = true));
      res.on('error', () => (isClosed = true));
      resolve({
        status: res.statusCode ?? 0,
        worker: String(res.headers['x-haze-worker'] ?? ''),
        bytes: () => bytes,
        closed: () => isClosed,
        close: () => req.destroy(),
        async more(n, timeoutMs) {
          const target = bytes + n;
          const until = Date.now() + timeoutMs;
          while (bytes < target) {
            if (Date.now() > until) throw new Error(`only ${bytes - (target - n)} of ${n} more bytes from ${url} in ${timeoutMs} ms (closed: ${isClosed})`);
            await sleep(50);
          }
        },
      });
    });
    req.on('error', reject);
  });
}
