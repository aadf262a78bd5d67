// A cluster on one machine (issue 9): four Hazes (A the origin, B, C, D edges with
// `balance:` sources) and a real `haze balance` polling them every second, each server given
// CAPACITY_MIBPS of upload. One publisher on A; VIEWERS HTTP-FLV viewers arrive within
// SURGE_MS through the balancer's 307, once per policy (media-aware, round-robin,
// least-loaded; a stream each, so relays of one phase do not help the next), printing servers
// used, relays created and peak load per server measured from the viewers' side. Then: servers
// removed and added at runtime change decisions while their viewers keep playing; A's
// publisher of `live` dies and B gets one, and the edges follow; D dies and the balancer stops
// sending viewers to it within one poll.
//
// Viewers are bench/lib/http-flv-viewer.ts (a raw socket each, parsing FLV up to the first
// coded video frame, then counting bytes); a few ffmpeg players go through the balancer too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { HttpFlvViewer } from '../../bench/lib/http-flv-viewer.js';
import { FILL } from '../../src/balancer/score.js';
import type { ViewerSink } from '../../bench/lib/viewer.js';
import { exited, publishTestPattern, startHaze, waitPort, type HazeInstance } from './harness.js';
import { edgeShowsOrigin } from './edge-packets.js';
import { freePort, pollUntil, repoRoot, run, runOk, sleep, tmpDir } from '../helpers.js';

const PASS = 'PASS';
const POLL_MS = 1000;
const VIEWERS = 800;
const SURGE_MS = 10_000;
const CAPACITY_MIBPS = 32;
const MIB = 1024 * 1024;
const POLICIES = [
  ['media-aware', 'surge+ma'],
  ['round-robin', 'surge+rr'],
  ['least-loaded', 'surge+ll'],
] as const;

const noFrames: ViewerSink = { onVideoFrame: () => {} };

async function stopProc(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGKILL');
  await exited(p);
}

interface Placed {
  /** Index of the Haze the balancer sent the viewer to. */
  server: number;
  viewer: HttpFlvViewer;
}

interface PhaseResult {
  policy: string;
  placed: number[];
  relays: number;
  peakMiBps: number[];
  steadyMiBps: number[];
  firstFrameMs: number[];
}

test('cluster: four Hazes and haze balance; a surge per policy, runtime server changes, origin failover, a dead edge', { timeout: 240_000 }, async () => {
  const t0 = Date.now();
  const dir = tmpDir('haze-cluster-');
  const src = path.join(dir, 'src.flv');
  // 20 s of video at ~700 kbit/s (noise keeps x264 at its rate), a keyframe a second; looped
  const encode = runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=640x360:r=25,noise=alls=12:allf=t', '-t', '20', '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '700k', '-maxrate', '700k', '-bufsize', '350k', '-g', '25', '-f', 'flv', src]);
  const lbPort = await freePort();
  const lbUrl = `http://127.0.0.1:${lbPort}`;
  const origin = { config: { prometheus: PASS }, streams: { surge: { name: 'surge', source: 'push://127.0.0.1' }, live: { name: 'live', source: 'push://127.0.0.1' } } };
  const edge = (liveSource: string): Record<string, unknown> => ({ config: { prometheus: PASS }, streams: { surge: { name: 'surge', source: `balance:${lbUrl}` }, live: { name: 'live', source: liveSource } } });
  const hazes = (await Promise.all([
    startHaze({ workers: 1, config: origin }),
    // B is an edge for `surge` and the second origin of `live`
    startHaze({ workers: 1, config: edge('push://127.0.0.1') }),
    startHaze({ workers: 1, config: edge(`balance:${lbUrl}`) }),
    startHaze({ workers: 1, config: edge(`balance:${lbUrl}`) }),
  ])) as [HazeInstance, HazeInstance, HazeInstance, HazeInstance];
  const [a, b, c, d] = hazes;
  const names = hazes.map((h) => `127.0.0.1:${h.ports.api}`);
  const letter = (i: number): string => 'ABCD'[i]!;
  const byHttpPort = new Map(hazes.map((h, i) => [h.ports.http, i]));
  await encode;
  const lb = spawn(process.execPath, [path.join(repoRoot, 'bin/haze'), 'balance', '--port', String(lbPort), '--interface', '127.0.0.1', '--data', tmpDir('haze-lb-'), '--passphrase', PASS, '--poll-ms', String(POLL_MS), ...names.flatMap((n) => ['--server', `${n}/${CAPACITY_MIBPS}`])], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let lbLog = '';
  lb.stderr!.on('data', (x: Buffer) => (lbLog += x.toString()));
  const ask = async (q: string): Promise<string> => (await fetch(`${lbUrl}${q}`)).text();
  const state = async (): Promise<Record<string, { state: string; viewers: number; up_load: number; up_add: number }>> => JSON.parse(await ask('/'));

  // one publisher on A for the three surge streams, another for `live`
  const surgeArgs = POLICIES.flatMap(([, s]) => ['-map', '0', '-c', 'copy', '-f', 'flv', a.rtmpUrl(s)]);
  const surgePub = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-stream_loop', '-1', '-i', src, ...surgeArgs], { stdio: ['ignore', 'ignore', 'inherit'] });
  let livePubA: ChildProcess | undefined = publishTestPattern(a.rtmpUrl('live'), 120);
  let livePubB: ChildProcess | undefined;
  const open: HttpFlvViewer[] = [];
  let viewerNo = 0;
  const placedViewer = async (stream: string): Promise<Placed> => {
    // a token each: sessions from one address are otherwise one viewer (MistServer's session
    // merging), and the balancer's 307 passes it on
    const res = await fetch(`${lbUrl}/${stream}?proto=FLV&tkn=v${++viewerNo}`, { redirect: 'manual' });
    await res.body?.cancel();
    assert.equal(res.status, 307, `the balancer's answer for ${stream}`);
    const to = new URL(res.headers.get('location')!);
    const server = byHttpPort.get(Number(to.port));
    assert.ok(server !== undefined, `redirected to a server of the cluster: ${to}`);
    const viewer = new HttpFlvViewer({ host: to.hostname, port: Number(to.port), path: to.pathname + to.search, app: '', stream }, false, noFrames);
    viewer.start();
    open.push(viewer);
    return { server, viewer };
  };
  const closeAll = (vs: Iterable<Placed>): void => {
    for (const p of vs) p.viewer.stop();
  };
  const edgeStreams = async (h: HazeInstance): Promise<Record<string, { rep?: boolean; curr: number[] }>> =>
    ((await (await fetch(`http://127.0.0.1:${h.ports.api}/${PASS}.json`)).json()) as { streams?: Record<string, { rep?: boolean; curr: number[] }> }).streams ?? {};

  try {
    await waitPort(lbPort, 10_000);
    await pollUntil('the balancer sees A with the surge streams', async () => (await ask('/?source=surge+ll')) === `dtsc://127.0.0.1:${a.ports.dtsc}` || undefined, 20_000, 100);
    // the `live` viewers on C and D, kept through the failover below (their edges pull it from A)
    const liveViewers = [c, c, d, d].map((h, i) => {
      const v = new HttpFlvViewer({ host: '127.0.0.1', port: h.ports.http, path: `/live.flv?tkn=live${i}`, app: '', stream: 'live' }, false, noFrames);
      v.start();
      open.push(v);
      return v;
    });
    console.log(`# cluster ready in ${Date.now() - t0} ms`);

    const results: PhaseResult[] = [];
    for (const [policy, stream] of POLICIES) {
      assert.equal(await ask(`/?policy=${policy}`), policy);
      const start = Date.now();
      const placed: Placed[] = [];
      const refused: string[] = [];
      const asked: Promise<void>[] = [];
      // bytes per server at each 250 ms sample, for the peak of each 1 s window
      const samples: Array<{ at: number; bytes: number[] }> = [];
      const sample = (): void => {
        const bytes = [0, 0, 0, 0];
        for (const p of placed) bytes[p.server]! += p.viewer.bytes;
        samples.push({ at: Date.now(), bytes });
      };
      // (unref: a failed assertion must not leave it holding the process)
      const sampler = setInterval(sample, 250).unref();
      for (let i = 0; i < VIEWERS; i++) {
        const due = start + (i * SURGE_MS) / VIEWERS;
        if (due > Date.now()) await sleep(due - Date.now());
        asked.push(placedViewer(stream).then((p) => void placed.push(p), (err: unknown) => void refused.push(String(err))));
      }
      // and two ffmpeg players through the same redirect decode frames
      const players = [0, 1].map(() => run('ffmpeg', ['-v', 'error', '-i', `${lbUrl}/${stream}?proto=FLV`, '-frames:v', '10', '-f', 'null', '-'], { timeoutMs: 20_000 }));
      await Promise.all(asked);
      const surgeMs = Date.now() - start;
      assert.deepEqual(refused.slice(0, 3), [], `${policy}: ${refused.length} viewers got no server`);
      await pollUntil(`${stream}: every viewer's first frame`, () => placed.every((p) => p.viewer.firstVideoMs > 0 || p.viewer.error !== undefined) || undefined, 20_000, 100);
      // hold: the steady load, once every viewer has started
      const held = samples.length;
      await sleep(3000);
      clearInterval(sampler);
      sample();
      for (const r of await Promise.all(players)) assert.equal(r.code, 0, `an ffmpeg player of ${stream} through the balancer: ${r.stderr}`);
      const failed = placed.filter((p) => p.viewer.error !== undefined || p.viewer.firstVideoMs === 0);
      assert.equal(failed.length, 0, `${policy}: ${failed.length} viewers did not play (${failed.slice(0, 3).map((p) => `${letter(p.server)}: ${p.viewer.error}`).join('; ')})`);
      // peak: the most any server sent in a 2 s window (shorter windows measure the test's own
      // read scheduling more than the servers)
      const peak = [0, 0, 0, 0];
      for (let i = 0; i < samples.length; i++) {
        const j = samples.findIndex((s) => s.at >= samples[i]!.at + 2000);
        if (j < 0) break;
        for (let k = 0; k < 4; k++) peak[k] = Math.max(peak[k]!, (samples[j]!.bytes[k]! - samples[i]!.bytes[k]!) / ((samples[j]!.at - samples[i]!.at) / 1000) / MIB);
      }
      const steady = [0, 1, 2, 3].map((k) => (samples.at(-1)!.bytes[k]! - samples[held]!.bytes[k]!) / ((samples.at(-1)!.at - samples[held]!.at) / 1000) / MIB);
      const count = [0, 0, 0, 0];
      for (const p of placed) count[p.server]!++;
      let relays = 0;
      for (const h of [b, c, d]) if ((await edgeStreams(h))[stream]?.rep === true) relays++;
      const firstFrameMs = placed.map((p) => p.viewer.firstVideoMs - p.viewer.connectStartMs).sort((x, y) => x - y);
      results.push({ policy, placed: count, relays, peakMiBps: peak, steadyMiBps: steady, firstFrameMs });
      console.log(
        `# ${policy.padEnd(12)} ${VIEWERS} viewers asked in ${surgeMs} ms: servers used ${count.filter((n) => n > 0).length} (${count.map((n, i) => `${letter(i)} ${n}`).join(', ')}), relays created ${relays}, ` +
          `load per server ${peak.map((m, i) => `${letter(i)} ${m.toFixed(1)}`).join(', ')} MiB/s at peak (2 s windows), ${steady.map((m, i) => `${letter(i)} ${m.toFixed(1)}`).join(', ')} steady, of ${CAPACITY_MIBPS}; first frame median ${firstFrameMs[firstFrameMs.length >> 1]!.toFixed(0)} ms, p95 ${firstFrameMs[Math.floor(firstFrameMs.length * 0.95)]!.toFixed(0)} ms`,
      );
      closeAll(placed);
      // the next phase starts from a quiet cluster: the polls show the viewers gone
      // (the servers count a viewer for 15 s after it left, as MistServer: its load is what goes)
      await pollUntil('the viewers\' load gone from the balancer\'s figures', async () => Object.values(await state()).every((s) => s.up_load + s.up_add < 2 * MIB) || undefined, 15_000, 250);
    }
    const [ma, rr, ll] = results as [PhaseResult, PhaseResult, PhaseResult];
    // media-aware: no server past its capacity, the fewest servers the stream's bandwidth allows,
    // fewer relays than the others
    for (let i = 0; i < 4; i++) assert.ok(ma.peakMiBps[i]! <= CAPACITY_MIBPS, `media-aware: ${letter(i)} peaked at ${ma.peakMiBps[i]!.toFixed(1)} MiB/s`);
    const total = ma.steadyMiBps.reduce((x, y) => x + y, 0);
    const used = ma.placed.filter((n) => n > 0).length;
    assert.ok(used <= Math.ceil(total / (CAPACITY_MIBPS * FILL)), `media-aware used ${used} servers for ${total.toFixed(1)} MiB/s (filling each to ${FILL * 100} %)`);
    assert.ok(ma.relays < rr.relays && ma.relays < ll.relays, `relays: media-aware ${ma.relays}, round-robin ${rr.relays}, least-loaded ${ll.relays}`);

    // runtime changes: with round-robin, 40 viewers over the four; C removed: no decision names C
    // and C's viewers keep playing; C added back: decisions name it again after its first poll
    assert.equal(await ask('/?policy=round-robin'), 'round-robin');
    const steady: Placed[] = [];
    for (let i = 0; i < 40; i++) steady.push(await placedViewer('surge+rr'));
    await pollUntil('the steady viewers play', () => steady.every((p) => p.viewer.firstVideoMs > 0) || undefined, 15_000, 100);
    assert.ok(steady.some((p) => p.server === 2), 'round-robin sent viewers to C');
    JSON.parse(await ask(`/?delserver=${names[2]}`));
    const onC = steady.filter((p) => p.server === 2);
    const bytesBefore = onC.map((p) => p.viewer.bytes);
    const without: string[] = [];
    for (let i = 0; i < 40; i++) without.push(await ask('/surge+rr'));
    assert.ok(!without.includes(names[2]!), `no decision names a removed server: ${[...new Set(without)].join(', ')}`);
    await sleep(1500);
    onC.forEach((p, i) => assert.ok(p.viewer.bytes > bytesBefore[i]! && !p.viewer.closed, `C's viewer ${i} kept playing after C left the balancer`));
    JSON.parse(await ask(`/?addserver=${names[2]}/${CAPACITY_MIBPS}`));
    const back = await pollUntil('decisions name C again', async () => ((await ask('/surge+rr')) === names[2] ? true : undefined), 5000, 50);
    assert.equal(back, true);
    assert.equal(steady.filter((p) => p.viewer.closed || p.viewer.error !== undefined).length, 0, 'no steady viewer dropped');
    console.log(`# runtime: C removed (${onC.length} viewers on it kept playing, 40 decisions without it) and added back`);
    closeAll(steady);

    // origin failover: A's `live` publisher dies, B gets one; the edges C and D follow
    for (const v of liveViewers) assert.ok(v.firstVideoMs > 0 && !v.closed, `a live viewer of an edge plays (${v.error ?? ''})`);
    const tFail = Date.now();
    await stopProc(livePubA);
    livePubA = undefined;
    livePubB = publishTestPattern(b.rtmpUrl('live'), 60);
    await pollUntil('the balancer offers B for live', async () => (await ask('/?source=live')) === `dtsc://127.0.0.1:${b.ports.dtsc}` || undefined, 10_000, 100);
    const bDtsc = new RegExp(`stream live: balancer chose dtsc://127\\.0\\.0\\.1:${b.ports.dtsc}`);
    await pollUntil('C and D pull live from B', () => (bDtsc.test(c.log()) && bDtsc.test(d.log())) || undefined, 20_000, 100);
    const followed = Date.now() - tFail;
    // data again on each edge: the viewers kept, or new ones when an edge ended its stream in between
    const marks = liveViewers.map((v) => v.bytes);
    await sleep(1500);
    const kept = liveViewers.filter((v, i) => !v.closed && v.bytes > marks[i]!).length;
    // and what they serve is B's: a new viewer of each gets B's packets
    const [viaC, viaD] = await Promise.all([edgeShowsOrigin(b, c, 'C after the failover', 'live'), edgeShowsOrigin(b, d, 'D after the failover', 'live')]);
    console.log(`# failover: C and D pull live from B ${followed} ms after A's publisher died; ${kept} of ${liveViewers.length} edge viewers kept playing through it; new viewers got ${viaC.edge} and ${viaD.edge} video packets, all B's`);

    // a dead edge: D killed, the balancer stops naming it within one poll
    const tKill = Date.now();
    await d.kill();
    let lastD = 0;
    const until = Date.now() + 3 * POLL_MS;
    while (Date.now() < until) {
      if ((await ask('/surge+rr')) === names[3]) lastD = Date.now();
      await sleep(20);
    }
    const dState = (await state())[names[3]!]!.state;
    assert.equal(dState, 'error');
    const avoidedAfter = lastD === 0 ? 0 : lastD - tKill;
    // (the next poll starts POLL_MS after the last one ended; a loaded machine runs timers late)
    assert.ok(avoidedAfter <= POLL_MS + 500, `D was still chosen ${avoidedAfter} ms after it died (poll interval ${POLL_MS} ms)`);
    console.log(`# dead edge: D last chosen ${avoidedAfter} ms after it was killed (poll ${POLL_MS} ms), then state ${dState}`);
    console.log(`# total ${Date.now() - t0} ms`);
  } catch (err) {
    console.log(`# balancer log:\n${lbLog.slice(-2000)}`);
    for (const [i, h] of hazes.entries()) console.log(`# ${letter(i)}'s log:\n${h.log().split('\n').filter((l) => /WARN|ERROR|balance/.test(l)).slice(-15).join('\n')}`);
    throw err;
  } finally {
    for (const v of open) v.stop();
    await Promise.all([stopProc(surgePub), stopProc(livePubA), stopProc(livePubB)]);
    lb.kill('SIGTERM');
    await exited(lb);
    await Promise.all(hazes.map((h) => h.stop()));
  }
});
