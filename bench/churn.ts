// Churn soak: while a publisher pushes, about BENCH_CHURN_VIEWERS (200) viewers connect and leave
// at random against one server (Haze unless BENCH_CHURN_SERVER says otherwise) for
// BENCH_CHURN_SECONDS (600). The server tree's RSS is sampled every 10 s; start, end, max and the
// least-squares slope are printed, so a leak per connection shows as a steady climb. Stops by itself.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadEvent } from './lib/ipc.js';
import { benchRoot } from './lib/paths.js';
import { sampleTree } from './lib/proc.js';
import { startServer } from './lib/servers.js';
import type { Endpoint, Proto, RunningServer, ServerName } from './lib/servers.js';
import { ensureSource } from './lib/source.js';
import { fmt, slope } from './lib/stats.js';
import { LoadGenHandle, PublisherHandle, sleep } from './lib/step.js';

async function main(): Promise<void> {
  const seconds = Number(process.env['BENCH_CHURN_SECONDS'] ?? 600);
  const target = Number(process.env['BENCH_CHURN_VIEWERS'] ?? 200);
  const serverName = (process.env['BENCH_CHURN_SERVER'] ?? 'haze') as ServerName;
  const sampleEveryMs = Number(process.env['BENCH_CHURN_SAMPLE_MS'] ?? 10000);
  const hazeWorkersEnv = process.env['BENCH_HAZE_WORKERS'];
  // One worker by default, as nginx runs one worker and node-media-server one process;
  // BENCH_HAZE_WORKERS=default leaves Haze's own default (one per core).
  const hazeWorkers = hazeWorkersEnv === 'default' ? undefined : Number(hazeWorkersEnv || 1);
  if (!['haze', 'nginx', 'nms'].includes(serverName)) throw new Error(`BENCH_CHURN_SERVER ${serverName}`);
  if (!(seconds > 0 && seconds <= 24 * 3600)) throw new Error(`BENCH_CHURN_SECONDS ${seconds}`);
  const logDir = join(benchRoot, '.cache', 'logs');
  mkdirSync(logDir, { recursive: true });
  const sourceFile = ensureSource();

  let server: RunningServer | undefined;
  let pub: PublisherHandle | undefined;
  let gen: LoadGenHandle | undefined;
  // Hard stop: whatever happens, nothing outlives the duration by more than a minute.
  const guard = setTimeout(() => {
    console.error('churn: overran its time, stopping');
    void Promise.all([gen?.stop(), pub?.stop(), server?.stop()]).finally(() => process.exit(2));
  }, (seconds + 60) * 1000);
  guard.unref();
  try {
    server = await startServer(serverName, { logDir, hazeWorkers });
    pub = new PublisherHandle();
    await pub.start({ type: 'start', endpoint: server.publish, sourceFile });
    await sleep(2000);
    const endpoints: Partial<Record<Proto, Endpoint>> = {};
    for (const p of ['rtmp', 'http-flv'] as const) if (server.play[p]) endpoints[p] = server.play[p];
    console.log(`churn: ${serverName} (pid ${server.pid}), ~${target} viewers over ${Object.keys(endpoints).join('+')}, ${seconds} s, lives 1-20 s; RSS every ${sampleEveryMs / 1000} s`);
    const t0 = performance.now();
    const xs: number[] = [];
    const ys: number[] = [];
    const take = (): void => {
      const s = sampleTree(server!.pid);
      xs.push((performance.now() - t0) / 1000);
      ys.push(s.rssKb);
    };
    take();
    gen = new LoadGenHandle();
    let last: Extract<LoadEvent, { type: 'churn-stats' }> | undefined;
    gen.child.on('message', (m: LoadEvent) => {
      if (m.type === 'churn-stats') last = m;
    });
    gen.send({ type: 'churn', endpoints, target, minLifeMs: 1000, maxLifeMs: 20000, durationMs: seconds * 1000 });
    const done = gen.waitFor((e) => (e.type === 'churn-done' ? true : undefined), (seconds + 30) * 1000, 'churn');
    const timer = setInterval(() => {
      take();
      const l = last;
      console.log(`  t=${fmt(xs[xs.length - 1]!, 0).padStart(4)} s  RSS ${fmt(ys[ys.length - 1]! / 1024, 1).padStart(7)} MiB` + (l ? `  viewers ${l.alive} (with video ${l.withVideo})  opened ${l.opened}  failed ${l.failed}` : '') + (server!.exited() ? '  SERVER EXITED' : ''));
    }, sampleEveryMs);
    await done;
    clearInterval(timer);
    const churnEnd = ys.length;
    // One last sample after the viewers left, when memory should have come back down.
    await sleep(2000);
    take();
    // Steady state needs one longest viewer life (20 s) and a full live buffer (Haze's DVR
    // window is 50 s: 12.5 MB of a 2 Mbit/s stream, plus the heap growing to hold it); the
    // slope is taken after that (from 120 s, or half of a shorter run), so filling them does
    // not count as growth.
    const steadyFrom = Math.min(120, seconds / 2);
    const firstSteady = Math.max(1, xs.findIndex((x) => x >= steadyFrom));
    const steadyX = xs.slice(firstSteady, churnEnd);
    const steadyY = ys.slice(firstSteady, churnEnd);
    const mib = (kb: number): string => `${fmt(kb / 1024, 1)} MiB`;
    const perMin = slope(steadyX, steadyY) * 60;
    console.log(
      `churn result (${serverName}): RSS idle ${mib(ys[0]!)}, start (t=${fmt(steadyX[0] ?? NaN, 0)} s) ${mib(steadyY[0] ?? NaN)}, ` +
        `end ${mib(steadyY[steadyY.length - 1] ?? NaN)}, max ${mib(Math.max(...ys))}, after the viewers left ${mib(ys[ys.length - 1]!)}`,
    );
    console.log(`slope ${fmt(perMin, 1)} KB/min over ${steadyX.length} samples (t=${fmt(steadyX[0] ?? NaN, 0)}..${fmt(steadyX[steadyX.length - 1] ?? NaN, 0)} s)`);
    if (last) console.log(`connections opened ${last.opened}, failed ${last.failed}; server ${server.exited() ? 'EXITED' : 'alive'}`);
  } finally {
    await gen?.stop();
    await pub?.stop();
    await server?.stop();
    clearTimeout(guard);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
