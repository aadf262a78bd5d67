// balance: sources end to end (src/inputs/pull/balance-pull.ts, docs/balancer.md "Edges"):
// two real Hazes and `haze balance` polling them every 500 ms. A takes pushes of the stream
// `origin`; the edge B plays `origin` from `balance:http://LB`. B's viewer gets A's packets,
// B's stream is a replica (`rep: true`) that the balancer never offers as a source, and a
// source whose balancer cannot be reached plays its `?fallback=`. Failover to another origin is
// in cluster.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { exited, publishTestPattern, startHaze, waitPort, type HazeInstance } from './harness.js';
import { freePort, pollUntil, repoRoot, sleep, tmpDir } from '../helpers.js';
import { edgeShowsOrigin } from './edge-packets.js';

const PASS = 'PASS';

async function stopProc(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGKILL');
  await exited(p);
}

test('balance: edge source: plays the balancer\'s origin, is a replica, plays its fallback without a balancer', { timeout: 40_000 }, async () => {
  const t0 = Date.now();
  const lbPort = await freePort();
  const pushConfig = { config: { prometheus: PASS }, streams: { origin: { name: 'origin', source: 'push://127.0.0.1' } } };
  const aPorts = { api: await freePort(), http: await freePort(), rtmp: await freePort(), dtsc: await freePort() };
  // `fb`: a balancer that cannot be reached (port 1), so the ?fallback= origin (A) is played
  const fallback = encodeURIComponent(`dtsc://127.0.0.1:${aPorts.dtsc}/origin`);
  const edgeConfig = {
    config: { prometheus: PASS },
    streams: { origin: { name: 'origin', source: `balance:http://127.0.0.1:${lbPort}` }, fb: { name: 'fb', source: `balance:http://127.0.0.1:1?fallback=${fallback}` } },
  };
  const [a, b] = (await Promise.all([startHaze({ workers: 1, config: pushConfig, ports: aPorts }), startHaze({ workers: 1, config: edgeConfig })])) as [HazeInstance, HazeInstance];
  const name = (h: HazeInstance): string => `127.0.0.1:${h.ports.api}`;
  const dtsc = (h: HazeInstance): string => `dtsc://127.0.0.1:${h.ports.dtsc}`;
  const lb = spawn(
    process.execPath,
    [path.join(repoRoot, 'bin/haze'), 'balance', '--port', String(lbPort), '--interface', '127.0.0.1', '--data', tmpDir('haze-lb-'), '--passphrase', PASS, '--poll-ms', '500', '--server', name(a), '--server', name(b)],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let lbLog = '';
  lb.stderr!.on('data', (d: Buffer) => (lbLog += d.toString()));
  const ask = async (q: string): Promise<string> => (await fetch(`http://127.0.0.1:${lbPort}${q}`)).text();
  /** Every `?source=origin` answer seen: none may be B. */
  const answers = new Set<string>();
  const source = async (): Promise<string> => {
    const t = await ask('/?source=origin');
    answers.add(t);
    return t;
  };
  const pubA = publishTestPattern(a.rtmpUrl('origin'), 40);
  try {
    await waitPort(lbPort, 10_000);
    await pollUntil('the balancer sees A with the stream', async () => (await source()) === dtsc(a) || undefined, 10_000, 100);
    const ready = Date.now() - t0;

    const [first, fb] = await Promise.all([edgeShowsOrigin(a, b, 'edge viewer of A', 'origin'), edgeShowsOrigin(a, b, 'fallback viewer of A', 'origin', 'fb')]);
    console.log(`# B's viewer got ${first.edge} video packets in 2 s, all A's (${first.origin}); servers + balancer ready after ${ready} ms`);
    console.log(`# B's fb (balancer unreachable) viewer got ${fb.edge} video packets of the fallback A`);
    assert.match(b.log(), /stream fb: balancer http:\/\/127\.0\.0\.1:1\/ unreachable: .*; playing the fallback dtsc:\/\/127\.0\.0\.1:\d+\/origin/);

    // B's stream is a replica: its JSON says so, and the balancer never offers B, not even
    // with A excluded
    const rep = await pollUntil('rep: true in B\'s JSON', async () => {
      const j = (await (await fetch(`http://127.0.0.1:${b.ports.api}/${PASS}.json`)).json()) as { streams?: Record<string, { rep?: boolean }> };
      return j.streams?.['origin']?.rep === true || undefined;
    }, 5000, 200);
    assert.equal(rep, true);
    await sleep(600); // a poll of B with its (replicated) input
    assert.equal(await source(), dtsc(a));
    assert.equal(await ask(`/?source=origin&exclude=${name(a)}`), 'FULL');

    assert.ok(!answers.has(dtsc(b)), `the balancer answered B as a source: ${[...answers].join(', ')}`);
    assert.match(b.log(), /balancer chose dtsc:\/\/127\.0\.0\.1:\d+/);
    console.log(`# total ${Date.now() - t0} ms; ?source= answers seen: ${[...answers].join(', ')}`);
  } catch (err) {
    console.log(`# B's log:\n${b.log().slice(-3000)}`);
    throw err;
  } finally {
    await stopProc(pubA);
    lb.kill('SIGTERM');
    await exited(lb);
    await Promise.all([a.stop(), b.stop()]);
    if (lbLog.includes('Error')) console.log(lbLog.slice(-1000));
  }
});
