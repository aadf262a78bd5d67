// balance: sources end to end (src/inputs/pull/balance-pull.ts, docs/balancer.md "Edges"):
// three real Hazes and `haze balance` polling them every 500 ms. A and C take pushes of the
// stream `origin`; the edge B plays `origin` from `balance:http://LB`. B's viewer gets A's
// packets, B's stream is a replica (`rep: true`) that the balancer never offers as a source;
// when A's publisher goes and C gets one, B's pull asks the balancer again and a new viewer of
// B gets C's packets (failover).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { exited, publishTestPattern, startHaze, waitPort, type HazeInstance } from './harness.js';
import { freePort, parseFramemd5, pollUntil, repoRoot, runOk, sleep, tmpDir, type FrameLine } from '../helpers.js';

const PASS = 'PASS';

async function stopProc(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGKILL');
  await exited(p);
}

/** The video packets (framemd5 of stream 0, copied) a viewer of `url` gets in `seconds`. */
async function videoOf(url: string, seconds: number): Promise<FrameLine[]> {
  const args = ['-v', 'error', '-rw_timeout', '10000000', '-i', url, '-map', '0:v:0', '-c', 'copy', '-t', String(seconds), '-f', 'framemd5', '-'];
  return parseFramemd5((await runOk('ffmpeg', args, { timeoutMs: 15_000 })).toString()).filter((f) => f.stream === 0);
}

/**
 * Watches the origin (3 s) and the edge (2 s) at once: every video packet the edge shows must be
 * one of the origin's (the test pattern is new every frame, so a packet of another publisher or
 * of another origin matches none). Returns the edge's packet count.
 */
async function edgeShowsOrigin(origin: HazeInstance, edge: HazeInstance, what: string, edgeStream = 'origin'): Promise<{ edge: number; origin: number }> {
  const [o, e] = await Promise.all([videoOf(origin.httpUrl('/origin.flv'), 3), videoOf(edge.httpUrl(`/${edgeStream}.flv`), 2)]);
  const hashes = new Set(o.map((f) => f.hash));
  assert.ok(e.length >= 40, `${what}: the edge viewer got only ${e.length} video packets in 2 s`);
  const foreign = e.filter((f) => !hashes.has(f.hash)).length;
  // a frame or two at the edge reader's end may come after the origin reader stopped
  assert.ok(foreign <= 3, `${what}: ${foreign} of the edge's ${e.length} video packets are not the origin's (${o.length})`);
  return { edge: e.length, origin: o.length };
}

test('balance: edge source: plays the balancer\'s origin, is a replica, fails over', { timeout: 40_000 }, async () => {
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
  const [a, b, c] = (await Promise.all([startHaze({ workers: 1, config: pushConfig, ports: aPorts }), startHaze({ workers: 1, config: edgeConfig }), startHaze({ workers: 1, config: pushConfig })])) as [HazeInstance, HazeInstance, HazeInstance];
  const name = (h: HazeInstance): string => `127.0.0.1:${h.ports.api}`;
  const dtsc = (h: HazeInstance): string => `dtsc://127.0.0.1:${h.ports.dtsc}`;
  const lb = spawn(
    process.execPath,
    [path.join(repoRoot, 'bin/haze'), 'balance', '--port', String(lbPort), '--interface', '127.0.0.1', '--data', tmpDir('haze-lb-'), '--passphrase', PASS, '--poll-ms', '500', '--server', name(a), '--server', name(b), '--server', name(c)],
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
  let pubA: ChildProcess | undefined = publishTestPattern(a.rtmpUrl('origin'), 40);
  let pubC: ChildProcess | undefined;
  try {
    await waitPort(lbPort, 10_000);
    await pollUntil('the balancer sees A with the stream', async () => (await source()) === dtsc(a) || undefined, 10_000, 100);
    const ready = Date.now() - t0;

    const [first, fb] = await Promise.all([edgeShowsOrigin(a, b, 'edge viewer of A'), edgeShowsOrigin(a, b, 'fallback viewer of A', 'fb')]);
    console.log(`# B's viewer got ${first.edge} video packets in 2 s, all A's (${first.origin}); servers + balancer ready after ${ready} ms`);
    console.log(`# B's fb (balancer unreachable) viewer got ${fb.edge} video packets of the fallback A`);
    assert.match(b.log(), /stream fb: balancer http:\/\/127\.0\.0\.1:1\/ unreachable: .*; playing the fallback dtsc:\/\/127\.0\.0\.1:\d+\/origin/);

    // B's stream is a replica: its JSON says so, and the balancer offers neither B nor (with A
    // excluded, C having no input) anything
    const rep = await pollUntil('rep: true in B\'s JSON', async () => {
      const j = (await (await fetch(`http://127.0.0.1:${b.ports.api}/${PASS}.json`)).json()) as { streams?: Record<string, { rep?: boolean }> };
      return j.streams?.['origin']?.rep === true || undefined;
    }, 5000, 200);
    assert.equal(rep, true);
    await sleep(600); // a poll of B with its (replicated) input
    assert.equal(await source(), dtsc(a));
    assert.equal(await ask(`/?source=origin&exclude=${name(a)}`), 'FULL');

    // failover: A loses its publisher, C gets one
    const t1 = Date.now();
    await stopProc(pubA);
    pubA = undefined;
    pubC = publishTestPattern(c.rtmpUrl('origin'), 40);
    await pollUntil('the balancer sees C with the stream', async () => (await source()) === dtsc(c) || undefined, 10_000, 100);
    // B's pull drops A, asks again and plays C: a new viewer of B gets C's packets
    const second = await pollUntil('a viewer of B with C\'s packets', async () => {
      try {
        return await edgeShowsOrigin(c, b, 'edge viewer of C');
      } catch (err) {
        console.log(`# not yet: ${(err as Error).message.split('\n')[0]}`);
        return undefined;
      }
    }, 15_000, 200);
    console.log(`# failover: B's new viewer got ${second.edge} video packets, all C's (${second.origin}), ${Date.now() - t1} ms after A's publisher was killed`);
    assert.ok(!answers.has(dtsc(b)), `the balancer answered B as a source: ${[...answers].join(', ')}`);
    assert.match(b.log(), /balancer chose dtsc:\/\/127\.0\.0\.1:\d+/);
    console.log(`# total ${Date.now() - t0} ms; ?source= answers seen: ${[...answers].join(', ')}`);
  } catch (err) {
    console.log(`# B's log:\n${b.log().slice(-3000)}`);
    throw err;
  } finally {
    await Promise.all([stopProc(pubA), stopProc(pubC)]);
    lb.kill('SIGTERM');
    await exited(lb);
    await Promise.all([a.stop(), b.stop(), c.stop()]);
    if (lbLog.includes('Error')) console.log(lbLog.slice(-1000));
  }
});
