// `haze balance`: wires the Balancer model (api.ts), the poller (poller.ts), persistence
// (store.ts) and an HTTP server. The process runs until SIGINT/SIGTERM.

import http from 'node:http';
import { errorText } from '../util/errors.js';
import { log, setProcessName } from '../util/log.js';
import type { BalanceOptions } from '../cli/balance.js';
import { Balancer, handleBalancerRequest } from './api.js';
import { Poller } from './poller.js';
import { loadStore, mergeServers, saveStore, storeFile } from './store.js';

const blog = log.child({ proc: 'balancer' });

export interface RunningBalancer {
  balancer: Balancer;
  poller: Poller;
  server: http.Server;
  port: number;
  close(): Promise<void>;
}

/** Starts the balancer; resolves once it listens. */
export async function startBalancer(opts: BalanceOptions): Promise<RunningBalancer> {
  const stored = loadStore(opts.data);
  const poller = new Poller({ passphrase: opts.passphrase, pollMs: opts.pollMs });
  // a --policy flag wins over the saved one
  const policy = opts.policy ?? stored.policy;
  const balancer = new Balancer({
    fallback: opts.fallback,
    remoteConfig: opts.remoteConfig,
    ...(policy ? { policy } : {}),
    ...(stored.weights ? { weights: stored.weights } : {}),
  });
  const save = (): void => {
    try {
      saveStore(opts.data, { servers: balancer.servers(), weights: balancer.weights, policy: balancer.policy });
    } catch (err) {
      // the change is in force; only its survival across a restart is lost
      blog.error(`could not save ${storeFile(opts.data)}: ${errorText(err)}`);
    }
  };
  balancer.hooks = {
    onAdd: (h) => {
      blog.info(`monitoring ${h.name}`);
      poller.add(h);
    },
    onRemove: (name) => {
      blog.info(`no longer monitoring ${name}`);
      poller.remove(name);
    },
    onChange: save,
  };
  for (const s of mergeServers(stored.servers, opts.servers)) balancer.addServer(s);
  // the flags' servers (and a flag policy) become part of the saved list
  save();

  const server = http.createServer((req, res) => {
    const a = handleBalancerRequest(balancer, { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, peer: req.socket.remoteAddress ?? '' });
    try {
      res.writeHead(a.status, { ...a.headers, 'Content-Length': Buffer.byteLength(a.body) });
      res.end(a.body);
    } catch (err) {
      // a header value Node refuses (handleBalancerRequest filters them; this is the backstop)
      blog.error(`answering ${String(req.url).slice(0, 200)}: ${errorText(err)}`);
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end('internal error');
    }
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;
  server.keepAliveTimeout = 5_000;
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.iface, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : opts.port;
  blog.info(`load balancer on ${opts.iface ?? '*'}:${port}, ${balancer.hosts.size} server(s), policy ${balancer.policy}, polling every ${opts.pollMs} ms`);
  return {
    balancer,
    poller,
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        poller.stop();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The `haze balance` command: returns the exit code (after a signal). */
export async function runBalancer(opts: BalanceOptions): Promise<number> {
  setProcessName('balancer');
  const running = await startBalancer(opts);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.close();
  return 0;
}
