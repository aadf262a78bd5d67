// The `capacity` API call against a real Haze (issue 8 point 8): the machine figures match
// /proc and os; without viewers the per-viewer costs are the defaults; after ffmpeg publishes a
// lossless 640x360 (~5 Mbit/s) test pattern and eight ffmpeg HTTP-FLV viewers play it, the CPU per viewer
// and per Mbit/s are measured from Haze's own processes, and plausible. Haze samples every
// second here (HAZE_CAPACITY_SAMPLE_MS; 5 s by default).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { pollUntil } from '../helpers.js';
import { exited, startHaze, type HazeInstance } from './harness.js';

interface Capacity {
  cores: number;
  mem_total: number;
  mem_available: number;
  nic_mbit: number | null;
  per_viewer: { cpu: number; mem: number; mbit: number; source: string };
  per_mbit_out: { cpu: number; source: string };
  per_stream_mbit: { mem: number; source: string };
  sample: { seconds: number; viewers_avg: number; inputs_avg: number; out_mbit_avg: number; cpu_avg: number };
}

const VIEWERS = 8;
const VIEWER_S = 6;

describe('capacity through the API', { timeout: 60_000 }, () => {
  let haze: HazeInstance;
  const procs: ChildProcess[] = [];

  before(async () => {
    process.env['HAZE_CAPACITY_SAMPLE_MS'] = '1000';
    haze = await startHaze({ workers: 1 });
    delete process.env['HAZE_CAPACITY_SAMPLE_MS'];
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await haze?.stop();
  });

  const capacity = async (): Promise<Capacity> => {
    const r = await haze.api({ capacity: true });
    assert.ok(!('error' in r), JSON.stringify(r['error']));
    return r['capacity'] as Capacity;
  };

  it('answers the machine and, once viewers came, measured costs', async (t) => {
    const first = await capacity();
    assert.equal(first.cores, os.availableParallelism());
    const memTotalKiB = Number(/^MemTotal:\s+(\d+)/m.exec(fs.readFileSync('/proc/meminfo', 'utf8'))![1]);
    assert.equal(first.mem_total, memTotalKiB * 1024);
    assert.ok(first.mem_available > 0 && first.mem_available <= first.mem_total);
    assert.ok(first.nic_mbit === null || first.nic_mbit > 0);
    assert.equal(first.per_viewer.source, 'default');
    assert.equal(first.per_viewer.mem, 2 * 1024 * 1024);
    assert.equal(first.per_stream_mbit.mem, 12.5 * 1024 * 1024);

    const pub = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=s=640x360:r=30', '-t', String(VIEWER_S + 8), '-c:v', 'libx264', '-preset', 'ultrafast', '-qp', '0', '-g', '30', '-f', 'flv', haze.rtmpUrl('live+cap')], { stdio: 'ignore' });
    procs.push(pub);
    await pollUntil('the stream online', async () => ((await haze.api({ active_streams: true }))['active_streams'] as string[] | undefined)?.includes('live+cap'), 15_000, 200);
    // a few samples of the input alone: the baseline the viewers' cost is measured against
    const online = (await capacity()).sample.seconds;
    await pollUntil('samples without viewers', async () => (await capacity()).sample.seconds >= online + 3, 10_000, 250);

    const viewers = Array.from({ length: VIEWERS }, () =>
      spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', haze.httpUrl('/live+cap.flv'), '-t', String(VIEWER_S), '-c', 'copy', '-f', 'null', '-'], { stdio: 'ignore' }),
    );
    procs.push(...viewers);
    const codes = await Promise.all(viewers.map((v) => exited(v)));
    assert.deepEqual(codes, viewers.map(() => 0));
    const c = await pollUntil('measured costs', async () => {
      const x = await capacity();
      return x.per_viewer.source === 'measured' ? x : undefined;
    }, 5000, 250);
    t.diagnostic(JSON.stringify(c));
    assert.ok(c.per_viewer.cpu > 0 && c.per_viewer.cpu < 0.5, `cpu per viewer ${c.per_viewer.cpu}`);
    // each viewer got the stream: a lossless 640x360 picture is several Mbit/s
    assert.ok(c.per_viewer.mbit > 1 && c.per_viewer.mbit < 50, `Mbit/s per viewer ${c.per_viewer.mbit}`);
    assert.equal(c.per_mbit_out.source, 'measured');
    assert.ok(c.per_mbit_out.cpu > 0 && c.per_mbit_out.cpu < 0.5, `cpu per Mbit/s ${c.per_mbit_out.cpu}`);
    assert.ok(c.sample.viewers_avg > 0 && c.sample.viewers_avg <= VIEWERS, String(c.sample.viewers_avg));
    assert.ok(c.sample.out_mbit_avg > 0, String(c.sample.out_mbit_avg));
    assert.ok(c.sample.cpu_avg > 0 && c.sample.cpu_avg < os.availableParallelism(), String(c.sample.cpu_avg));
    pub.kill('SIGTERM');
  });
});
