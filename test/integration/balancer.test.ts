// `haze balance` end to end: two real Hazes with Prometheus JSON on, the balancer as its own
// process polling them every 500 ms; stream bonus, ?proto= redirect, ?source=, runtime
// delserver/addserver, a server going down, and the server list surviving a restart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { exited, publishTestPattern, startHaze, waitPort, type HazeInstance } from './harness.js';
import { freePort, pollUntil, repoRoot, tmpDir } from '../helpers.js';

const PASS = 'PASS';
const POLL_MS = 500;

function startBalancer(port: number, data: string, servers: string[]): { proc: ChildProcess; log: () => string } {
  let out = '';
  const proc = spawn(
    process.execPath,
    [path.join(repoRoot, 'bin/haze'), 'balance', '--port', String(port), '--interface', '127.0.0.1', '--data', data, '--passphrase', PASS, '--poll-ms', String(POLL_MS), ...servers.flatMap((s) => ['--server', s])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { proc, log: () => out };
}

async function stopProc(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGTERM');
  await exited(p);
}

test('haze balance over two real servers', { timeout: 60_000 }, async () => {
  const started = Date.now();
  // a wildcard live stream on both servers, so both may carry live+x
  const config = { config: { prometheus: PASS }, streams: { live: { name: 'live', source: 'push://127.0.0.1' } } };
  const [a, b] = await Promise.all([startHaze({ workers: 1, config }), startHaze({ workers: 1, config })]) as [HazeInstance, HazeInstance];
  const data = tmpDir('haze-balance-');
  const port = await freePort();
  const A = `127.0.0.1:${a.ports.api}`;
  const B = `127.0.0.1:${b.ports.api}`;
  let bal = startBalancer(port, data, [A, B]);
  const get = async (q: string): Promise<{ status: number; text: string; location: string | null }> => {
    const res = await fetch(`http://127.0.0.1:${port}${q}`, { redirect: 'manual' });
    return { status: res.status, text: await res.text(), location: res.headers.get('location') };
  };
  const publisher = publishTestPattern(a.rtmpUrl('live+x'), 4);
  try {
    await waitPort(port, 10_000);
    await pollUntil('both servers online', async () => {
      const l = JSON.parse((await get('/?lstserver=1')).text) as Record<string, string>;
      return (l[A] === 'online' && l[B] === 'online') || undefined;
    }, 10_000, 100);

    // ?source= does not count a viewer, so it is safe to wait on: A has the input
    const dtscA = `dtsc://127.0.0.1:${a.ports.dtsc}`;
    await pollUntil('A polled with the stream', async () => (await get('/?source=live+x')).text === dtscA || undefined, 10_000, 100);
    console.log(`# stream seen by the balancer after ${Date.now() - started} ms`);

    // the stream bonus: the viewer goes where the stream already is
    const viewer = await get('/live+x');
    assert.equal(viewer.status, 200);
    assert.equal(viewer.text, A);

    const hls = await get('/live+x?proto=HLS&tkn=t1');
    assert.equal(hls.status, 307);
    const polled = (await (await fetch(`http://127.0.0.1:${a.ports.api}/${PASS}.json`)).json()) as { outputs: Record<string, string> };
    const want = polled.outputs['HLS']!.replace('HOST', '127.0.0.1').replace('$', 'live+x') + '?tkn=t1';
    assert.ok(want.startsWith(`http://127.0.0.1:${a.ports.http}/`), want);
    assert.equal(hls.location, want);
    assert.equal(hls.text, want);
    // the redirect is a working playlist of A's stream
    const playlist = await fetch(want);
    assert.equal(playlist.status, 200);
    assert.match(await playlist.text(), /#EXTM3U/);

    // the asking server excludes itself: A asking has no other source
    assert.equal((await get(`/?source=live+x&exclude=${A}`)).text, 'FULL');
    assert.equal((await get(`/?source=live+x&port=${a.ports.api}`)).text, 'FULL');

    // runtime removal and re-adding
    assert.deepEqual(JSON.parse((await get(`/?delserver=${A}`)).text), { [B]: 'online' });
    assert.equal((await get('/live+x')).text, B);
    assert.equal((await get('/?source=live+x')).text, 'FULL');
    const added = JSON.parse((await get(`/?addserver=${A}`)).text) as Record<string, string>;
    assert.deepEqual(Object.keys(added).sort(), [A, B].sort());
    await pollUntil('A online again', async () => (JSON.parse((await get('/?lstserver=1')).text) as Record<string, string>)[A] === 'online' || undefined, 5000, 100);

    // B goes down: within 2 polls it is no longer online and gets no viewers
    const downAt = Date.now();
    await b.stop();
    await pollUntil('B not online', async () => {
      const all = JSON.parse((await get('/')).text) as Record<string, { state: string }>;
      return all[B]!.state !== 'online' || undefined;
    }, 2 * POLL_MS + 1500, 50);
    const noticedMs = Date.now() - downAt;
    console.log(`# B seen down ${noticedMs} ms after its stop returned`);
    for (const s of ['live+x', 'live+y', 'live+z', 'live+w']) assert.equal((await get(`/${s}`)).text, A, s);
    // a stream neither server configures has no host (conf_streams): the fallback
    assert.equal((await get('/other')).text, 'FULL');

    const metrics = (await get('/metrics')).text;
    const decisions = Number(/^haze_balancer_decisions_total (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(decisions >= 7, `decisions ${decisions}`);
    assert.match(metrics, new RegExp(`haze_balancer_server_status\\{host="${B}",status="error"\\} 1`));

    // a restart with the same --data keeps the runtime-changed list (A was removed and re-added
    // at runtime; the new process names only B on its command line)
    await stopProc(bal.proc);
    const saved = JSON.parse(fs.readFileSync(path.join(data, 'balancer.json'), 'utf8')) as { servers: { name: string }[] };
    assert.deepEqual(saved.servers.map((s) => s.name).sort(), [A, B].sort());
    bal = startBalancer(port, data, [B]);
    await waitPort(port, 10_000);
    const after = JSON.parse((await get('/?lstserver=1')).text) as Record<string, string>;
    assert.deepEqual(Object.keys(after).sort(), [A, B].sort());
    await pollUntil('A online after the restart', async () => (JSON.parse((await get('/?lstserver=1')).text) as Record<string, string>)[A] === 'online' || undefined, 5000, 100);
    console.log(`# total ${Date.now() - started} ms`);
  } catch (err) {
    console.log(bal.log().slice(-3000));
    throw err;
  } finally {
    publisher.kill('SIGKILL');
    await stopProc(bal.proc);
    await Promise.all([a.stop(), b.stop()]);
    fs.rmSync(data, { recursive: true, force: true });
  }
});
