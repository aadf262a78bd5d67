// The balancer's poller (reference §8.1): one timer chain per monitored server, each GETting
// `http://HOST:APIPORT/<passphrase>.json` (the Prometheus JSON of §7.3) every pollMs. A chain
// schedules its next poll only when the current one has finished, so a slow server never gets
// overlapping requests. Success feeds HostState.update; a timeout, an HTTP error, an over-large
// or malformed answer marks the poll failed (HostState.failed) with a log line, never a throw.
// Servers are added and removed at runtime; removing one stops its chain at once.

import http from 'node:http';
import { errorText } from '../util/errors.js';
import { log } from '../util/log.js';
import type { HostState } from './host-state.js';

const plog = log.child({ proc: 'balancer-poll' });

/** A Prometheus JSON answer is a few kilobytes per stream; past this it is not one. */
export const MAX_POLL_BYTES = 4 * 1024 * 1024;

/** Fetches and JSON-parses one poll URL; rejects on timeout, non-200, over-size or bad JSON. */
export type FetchJson = (url: string, timeoutMs: number, maxBytes: number) => Promise<unknown>;

export const fetchJson: FetchJson = (url, timeoutMs, maxBytes) =>
  new Promise((resolve, reject) => {
    // node:http rather than fetch: the size bound is enforced while reading, and the timeout
    // covers connect + headers + body as one deadline.
    const req = http.get(url, { timeout: timeoutMs, headers: { accept: 'application/json' } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`HTTP ${res.statusCode ?? '?'}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size > maxBytes) {
          req.destroy(new Error(`answer larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(d);
      });
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(new Error(`not JSON: ${errorText(err)}`));
        }
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('close', () => clearTimeout(timer));
  });

export interface PollerOptions {
  passphrase: string;
  pollMs: number;
  /** Per request; default min(pollMs, 4000). */
  timeoutMs?: number;
  maxBytes?: number;
  fetch?: FetchJson;
  now?: () => number;
  /** Called after every poll (tests, metrics). */
  onPoll?: (host: HostState, ok: boolean) => void;
}

interface Chain {
  host: HostState;
  timer: NodeJS.Timeout | undefined;
  stopped: boolean;
}

export class Poller {
  private readonly chains = new Map<string, Chain>();
  private readonly fetch: FetchJson;
  private readonly now: () => number;

  constructor(private readonly opts: PollerOptions) {
    this.fetch = opts.fetch ?? fetchJson;
    this.now = opts.now ?? Date.now;
  }

  /** Starts polling a host at once (its first poll fills the state). Idempotent per name. */
  add(host: HostState): void {
    if (this.chains.has(host.name)) return;
    const chain: Chain = { host, timer: undefined, stopped: false };
    this.chains.set(host.name, chain);
    this.schedule(chain, 0);
  }

  remove(name: string): void {
    const chain = this.chains.get(name);
    if (!chain) return;
    chain.stopped = true;
    if (chain.timer) clearTimeout(chain.timer);
    this.chains.delete(name);
  }

  stop(): void {
    for (const name of [...this.chains.keys()]) this.remove(name);
  }

  url(name: string): string {
    return `http://${name}/${encodeURIComponent(this.opts.passphrase)}.json`;
  }

  private schedule(chain: Chain, delayMs: number): void {
    if (chain.stopped) return;
    chain.timer = setTimeout(() => {
      chain.timer = undefined;
      void this.pollOnce(chain).finally(() => this.schedule(chain, this.opts.pollMs));
    }, delayMs);
  }

  /** One poll of one host; never rejects. */
  async pollOnce(chain: Chain): Promise<void> {
    const { host } = chain;
    const timeoutMs = this.opts.timeoutMs ?? Math.min(this.opts.pollMs, 4000);
    let ok = false;
    try {
      const json = await this.fetch(this.url(host.name), timeoutMs, this.opts.maxBytes ?? MAX_POLL_BYTES);
      if (chain.stopped) return;
      const was = host.status;
      host.update(this.now(), json);
      ok = true;
      if (was === 'error' || was === 'offline') plog.info(`poll of ${host.name} answers again`);
    } catch (err) {
      if (chain.stopped) return;
      const why = errorText(err);
      // one line per state change, not one per failed poll of a server that stays down
      if (host.status !== 'error' && host.status !== 'offline') plog.warn(`poll of ${host.name} failed: ${why}`);
      else plog.debug(`poll of ${host.name} failed: ${why}`);
      try {
        host.failed(this.now(), why);
      } catch (e) {
        plog.error(`marking ${host.name} failed: ${errorText(e)}`);
      }
    }
    try {
      this.opts.onPoll?.(host, ok);
    } catch {
      // an observer never breaks the chain
    }
  }
}
