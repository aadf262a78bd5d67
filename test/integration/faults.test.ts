// Crash resistance (DESIGN §3): kill -9 of the controller or of a worker under load, and
// garbage on the media ports, end only what they must; viewers measured to keep receiving.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { runOk, sleep } from '../helpers.js';
import { exited, publishTestPattern, startHaze, type HazeInstance } from './harness.js';
import { openStream, type StreamProbe } from './stream-probe.js';

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

function sourceWorkerPid(haze: HazeInstance, stream: string): number | undefined {
  try {
    return (JSON.parse(fs.readFileSync(path.join(haze.data, 'run/streams', `${encodeURIComponent(stream)}.json`), 'utf8')) as { pid: number }).pid;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('faults', { timeout: 180_000 }, () => {
  let haze: HazeInstance;
  before(async () => {
    haze = await startHaze({ workers: 2 });
  });
  after(async () => {
    await haze?.stop();
  });

  it('kill -9 of the controller: viewers and the publisher go on, new viewers are served, the restarted controller sees the stream', async () => {
    const pub = publishTestPattern(haze.rtmpUrl('live+ctl'), 40);
    const viewer = await openStream(haze.httpUrl('/live+ctl.flv'));
    try {
      assert.equal(viewer.status, 200);
      await viewer.more(20_000, 10_000);
      const controller = haze.pidOf('controller')!;
      process.kill(controller, 'SIGKILL');
      await viewer.more(50_000, 5_000);
      const late = await openStream(haze.httpUrl('/live+ctl.ts'));
      assert.equal(late.status, 200, 'a new viewer is served while the controller is down or restarting');
      await late.more(20_000, 5_000);
      late.close();
      const streams = await waitFor('the restarted controller to list the stream', async () => {
        const pid = haze.pidOf('controller');
        if (!pid || pid === controller) return undefined;
        try {
          const r = await haze.api({ active_streams: true });
          const list = r['active_streams'] as string[] | undefined;
          return list?.includes('live+ctl') ? list : undefined;
        } catch {
          return undefined;
        }
      });
      assert.ok(streams.includes('live+ctl'));
      await viewer.more(20_000, 5_000);
      assert.equal(pub.exitCode, null, 'the publisher is still connected');
    } finally {
      viewer.close();
      pub.kill('SIGINT');
      await exited(pub);
    }
  });

  it('kill -9 of a worker: it is restarted, viewers on the other worker resume when the publisher reconnects', async () => {
    const name = 'live+wrk';
    const pub = publishTestPattern(haze.rtmpUrl(name), 60);
    const probes: StreamProbe[] = [];
    try {
      const sourcePid = await waitFor('the stream claim', () => sourceWorkerPid(haze, name));
      // open viewers until one is served by the other worker
      let viewer: StreamProbe | undefined;
      for (let i = 0; i < 30 && !viewer; i++) {
        const p = await openStream(haze.httpUrl(`/${name}.flv`));
        probes.push(p);
        if (p.status === 200 && p.worker !== String(sourcePid)) viewer = p;
      }
      assert.ok(viewer, 'a viewer landed on the worker without the publisher');
      await viewer.more(20_000, 10_000);
      const workerFiles = fs.readdirSync(path.join(haze.data, 'run')).filter((f) => /^worker-\d+\.pid$/.test(f));
      const killedFile = workerFiles.find((f) => Number(fs.readFileSync(path.join(haze.data, 'run', f), 'utf8')) === sourcePid)!;
      process.kill(sourcePid, 'SIGKILL');
      await exited(pub);
      assert.equal(viewer.closed(), false, 'the viewer on the surviving worker stays connected');
      // the angel restarts the worker
      await waitFor('the worker to be restarted', () => {
        const pid = Number(fs.readFileSync(path.join(haze.data, 'run', killedFile), 'utf8'));
        return pid !== sourcePid && isAlive(pid) ? pid : undefined;
      });
      const before = viewer.bytes();
      const again = publishTestPattern(haze.rtmpUrl(name), 30);
      try {
        await viewer.more(50_000, 15_000);
        assert.ok(viewer.bytes() > before, 'media resumed');
        assert.equal(viewer.closed(), false);
      } finally {
        again.kill('SIGINT');
        await exited(again);
      }
    } finally {
      for (const p of probes) p.close();
      pub.kill('SIGKILL');
    }
  });

  it('kill -9 of the angel: its children serve on; a new haze serve on the same data stops them and takes over the ports', async () => {
    const own = await startHaze({ workers: 2 });
    const pub = publishTestPattern(own.rtmpUrl('live+orphan'), 40);
    try {
      const viewer = await openStream(own.httpUrl('/live+orphan.flv'));
      await viewer.more(20_000, 10_000);
      own.proc.kill('SIGKILL');
      await exited(own.proc);
      await viewer.more(50_000, 5_000);
      assert.equal(viewer.closed(), false, 'the orphaned worker keeps serving its viewer');
      const next = await startHaze({ workers: 1, data: own.data, ports: own.ports });
      try {
        await waitFor('the new instance to stop the orphans', () => (/stopping \d+ process\(es\) left by an earlier haze serve/.test(next.log()) ? true : undefined));
        const status = await waitFor('the new instance to serve on the same ports', async () => {
          if (!/Haze is running/.test(next.log())) return undefined;
          try {
            return (await fetch(next.httpUrl('/nosuchstream.flv'))).status;
          } catch {
            return undefined;
          }
        });
        assert.equal(status, 404);
        assert.deepEqual((await next.api({ version: true, minimal: 1 }))['LTS'], 1);
      } finally {
        viewer.close();
        await next.stop();
      }
    } finally {
      pub.kill('SIGKILL');
      await exited(pub);
    }
  });

  it('garbage on the RTMP and HTTP ports closes that connection only', async () => {
    const name = 'live+garbage';
    const pub = publishTestPattern(haze.rtmpUrl(name), 40);
    const viewer = await openStream(haze.httpUrl(`/${name}.ts`));
    try {
      await viewer.more(20_000, 10_000);
      for (const [port, payload] of [
        [haze.ports.rtmp, randomBytes(4000)],
        [haze.ports.rtmp, Buffer.concat([Buffer.from([3]), randomBytes(1536), randomBytes(1536), randomBytes(3000)])],
        [haze.ports.http, Buffer.concat([randomBytes(200), Buffer.from('\r\n\r\n')])],
        [haze.ports.http, Buffer.from(`GET /${'x'.repeat(40_000)} HTTP/1.1\r\nHost: a\r\n\r\n`)],
      ] as const) {
        const closed = await new Promise<boolean>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => s.write(payload));
          s.on('data', () => {});
          s.on('error', () => {});
          // (the limit's timer goes with the socket: a pending one would hold the test file open)
          const limit = setTimeout(() => {
            s.destroy();
            resolve(false);
          }, 12_000);
          s.on('close', () => {
            clearTimeout(limit);
            resolve(true);
          });
        });
        assert.ok(closed, `the server closed the garbage connection on port ${port}`);
      }
      await viewer.more(20_000, 5_000);
      assert.equal(viewer.closed(), false, 'the other viewer is unaffected');
      await runOk('ffprobe', ['-v', 'error', haze.rtmpUrl(name)], { timeoutMs: 20_000 });
      assert.doesNotMatch(haze.log(), /uncaught exception/);
    } finally {
      viewer.close();
      pub.kill('SIGINT');
      await exited(pub);
    }
  });
});
