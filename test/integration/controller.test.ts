// The controller in a running `haze serve`: API changes reach the workers, the config is
// persisted atomically and survives a restart, an edit on disk is picked up.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { sleep } from '../helpers.js';
import { exited, publishTestPattern, startHaze, type HazeInstance } from './harness.js';
import { openStream } from './stream-probe.js';

async function waitUntil(what: string, fn: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('controller', { timeout: 120_000 }, () => {
  const instances: HazeInstance[] = [];
  after(async () => {
    for (const h of instances) await h.stop();
  });

  it('prints the publish and play URLs on the embedded default config', async () => {
    const haze = await startHaze({ workers: 1 });
    instances.push(haze);
    await waitUntil('the welcome text', () => /Publish: .*rtmp:\/\/127\.0\.0\.1:\d+\/live\/live/.test(haze.log()));
    assert.match(haze.log(), new RegExp(`http://127\\.0\\.0\\.1:${haze.ports.http}/live\\.flv`));
    const saved = JSON.parse(fs.readFileSync(path.join(haze.data, 'config.json'), 'utf8')) as { streams: Record<string, { source: string }> };
    assert.equal(saved.streams['live']?.source.startsWith('push://'), true);
    const version = await haze.api({ version: true, minimal: 1 });
    assert.equal(typeof (version['version'] as Record<string, unknown>)['version'], 'string');
  });

  it('a stream added through the API accepts pushes; config survives a restart; disk edits are picked up', async () => {
    const haze = await startHaze({ workers: 2 });
    instances.push(haze);
    const r = await haze.api({ addstream: { studio: { source: 'push://127.0.0.1', DVR: 20000 } } });
    assert.ok((r['streams'] as Record<string, unknown>)['studio'], JSON.stringify(r));
    const pub = publishTestPattern(haze.rtmpUrl('studio'), 15);
    try {
      const viewer = await openStream(haze.httpUrl('/studio.flv'));
      assert.equal(viewer.status, 200);
      await viewer.more(20_000, 10_000);
      viewer.close();
      await waitUntil('active_streams to list studio', async () => ((await haze.api({ active_streams: true }))['active_streams'] as string[] | undefined)?.includes('studio') ?? false);
      const detail = await haze.api({ active_streams: { fields: ['viewers', 'inputs', 'tracks'], streams: ['studio'] } });
      assert.ok(detail['active_streams'], JSON.stringify(detail));
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
    const file = path.join(haze.data, 'config.json');
    const saved = JSON.parse(fs.readFileSync(file, 'utf8')) as { streams: Record<string, { DVR?: number }> };
    assert.equal(saved.streams['studio']?.DVR, 20000, 'persisted');

    // another program edits the file: a stream it adds becomes playable without a restart
    saved.streams['fromdisk'] = { source: 'push://', DVR: 10000 } as { DVR?: number };
    fs.writeFileSync(file + '.edit', JSON.stringify(saved, null, 2));
    fs.renameSync(file + '.edit', file);
    await waitUntil('the disk edit to reach the API', async () => 'fromdisk' in ((await haze.api({}))['streams'] as Record<string, unknown>));
    const pub2 = publishTestPattern(haze.rtmpUrl('fromdisk'), 10);
    try {
      const viewer = await openStream(haze.httpUrl('/fromdisk.ts'));
      assert.equal(viewer.status, 200);
      await viewer.more(20_000, 10_000);
      viewer.close();
    } finally {
      pub2.kill('SIGINT');
      await exited(pub2);
    }

    const r2 = await haze.api({ deletestream: 'fromdisk' });
    assert.ok(!('fromdisk' in (r2['streams'] as Record<string, unknown>)));
    await waitUntil('the deletion to reach the workers', async () => (await fetch(haze.httpUrl('/fromdisk.flv'))).status === 404);

    // a restart on the same data folder keeps what the API saved, and frees the ports first
    await haze.stop(true);
    const again = await startHaze({ workers: 1, data: haze.data });
    instances.push(again);
    const streams = (await again.api({}))['streams'] as Record<string, { DVR?: number }>;
    assert.equal(streams['studio']?.DVR, 20000);
    assert.ok(!('fromdisk' in streams));
  });
});
