// A trigger handler for tests: an HTTP endpoint on 127.0.0.1 that records every trigger it gets
// (X-Trigger header, payload lines) and answers with what the test says per trigger name.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { sleep } from '../helpers.js';

export interface CapturedTrigger {
  name: string;
  lines: string[];
  headers: http.IncomingHttpHeaders;
  atMs: number;
}

export interface TriggerCapture {
  url: string;
  seen: CapturedTrigger[];
  /** Sets the answer for a trigger name (default "true"); a function answers per call. */
  reply(name: string, answer: string | ((t: CapturedTrigger) => string | Promise<string>)): void;
  /** The triggers of that name recorded so far. */
  of(name: string): CapturedTrigger[];
  /** Waits until a trigger of that name matching `pred` arrives; rejects after `timeoutMs`. */
  wait(name: string, pred?: (t: CapturedTrigger) => boolean, timeoutMs?: number): Promise<CapturedTrigger>;
  /** A handler entry for config.triggers. */
  handler(opts?: { sync?: boolean; default?: string; streams?: string[]; params?: string }): Record<string, unknown>;
  close(): Promise<void>;
}

export async function startTriggerCapture(): Promise<TriggerCapture> {
  const seen: CapturedTrigger[] = [];
  const replies = new Map<string, string | ((t: CapturedTrigger) => string | Promise<string>)>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      const name = String(req.headers['x-trigger'] ?? '');
      const t: CapturedTrigger = { name, lines: Buffer.concat(chunks).toString('utf8').split('\n'), headers: req.headers, atMs: Date.now() };
      seen.push(t);
      const r = replies.get(name) ?? 'true';
      Promise.resolve(typeof r === 'function' ? r(t) : r).then(
        (text) => res.end(text),
        () => res.end('true'),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/trigger`;
  const cap: TriggerCapture = {
    url,
    seen,
    reply: (name, answer) => void replies.set(name, answer),
    of: (name) => seen.filter((t) => t.name === name),
    async wait(name, pred = () => true, timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const hit = seen.find((t) => t.name === name && pred(t));
        if (hit) return hit;
        if (Date.now() > until) throw new Error(`no ${name} trigger within ${timeoutMs} ms (seen: ${seen.map((t) => t.name).join(', ') || 'none'})`);
        await sleep(50);
      }
    },
    handler: (opts = {}) => ({ handler: url, sync: opts.sync ?? false, ...(opts.default !== undefined ? { default: opts.default } : {}), ...(opts.streams ? { streams: opts.streams } : {}), ...(opts.params !== undefined ? { params: opts.params } : {}) }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  return cap;
}
