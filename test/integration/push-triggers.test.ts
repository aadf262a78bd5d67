// The triggers of incoming pushes through a running Haze (reference §4.2, §5.4), over RTMP
// (ffmpeg publishing) and dtsc:// (Haze pushing to its own listener): RTMP_PUSH_REWRITE,
// PUSH_REWRITE renaming the stream, STREAM_PUSH refusing one, each payload checked field by
// field, and ffprobe playing the renamed streams.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { giveUpAfter, mistFixtures, run, sleep } from '../helpers.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';
import { startTriggerCapture, type TriggerCapture } from './trigger-capture.js';

const SMALL_FLV = path.join(mistFixtures, 'small.flv');
const RENAMES: Record<string, string> = { alias: 'live+renamed', dalias: 'live+d' };

async function codecsAt(url: string): Promise<string[]> {
  const r = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url], { timeoutMs: 30_000 });
  return r.code === 0 ? r.stdout.toString().trim().split('\n').sort() : [];
}

async function playable(url: string, ms = 20_000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const c = await codecsAt(url);
    if (c.length === 2 || Date.now() > until) return c;
    await sleep(500);
  }
}

describe('incoming push triggers: RTMP_PUSH_REWRITE, PUSH_REWRITE, STREAM_PUSH', { timeout: 120_000 }, () => {
  let haze: HazeInstance;
  let cap: TriggerCapture;

  before(async () => {
    cap = await startTriggerCapture();
    cap.reply('RTMP_PUSH_REWRITE', (t) => t.lines[0]!);
    cap.reply('PUSH_REWRITE', (t) => RENAMES[t.lines[2]!] ?? t.lines[2]!);
    cap.reply('STREAM_PUSH', (t) => (t.lines[0] === 'live+blocked' ? 'false' : 'true'));
    haze = await startHaze({ workers: 2 });
    const r = await haze.api({ config: { triggers: Object.fromEntries(['RTMP_PUSH_REWRITE', 'PUSH_REWRITE', 'STREAM_PUSH'].map((n) => [n, [cap.handler({ sync: true, default: '' })]])) } });
    assert.ok(!('error' in r), String(r['error']));
    await sleep(500);
  });
  after(async () => {
    await haze?.stop();
    await cap?.close();
  });

  it('an RTMP publish: RTMP_PUSH_REWRITE, then PUSH_REWRITE renames it, STREAM_PUSH admits it', async () => {
    const url = haze.rtmpUrl('alias');
    const pub = publishFile(SMALL_FLV, url, ['-stream_loop', '-1']);
    try {
      assert.deepEqual(await playable(haze.httpUrl('/live+renamed.flv')), ['aac', 'h264']);
      assert.deepEqual((await cap.wait('RTMP_PUSH_REWRITE')).lines, [url, '127.0.0.1']);
      assert.deepEqual((await cap.wait('PUSH_REWRITE', (t) => t.lines[2] === 'alias')).lines, [url, '127.0.0.1', 'alias']);
      assert.deepEqual((await cap.wait('STREAM_PUSH', (t) => t.lines[0] === 'live+renamed')).lines, ['live+renamed', '127.0.0.1', 'RTMP', url]);

      // a dtsc:// push (Haze to its own listener) goes through PUSH_REWRITE and STREAM_PUSH too
      const target = `dtsc://127.0.0.1:${haze.ports.dtsc}/dalias`;
      const started = await haze.api({ push_start: ['live+renamed', target] });
      assert.ok(!('error' in started), String(started['error']));
      assert.deepEqual(await playable(haze.httpUrl('/live+d.flv')), ['aac', 'h264']);
      assert.deepEqual((await cap.wait('PUSH_REWRITE', (t) => t.lines[2] === 'dalias')).lines, [target, '127.0.0.1', 'dalias']);
      assert.deepEqual((await cap.wait('STREAM_PUSH', (t) => t.lines[0] === 'live+d')).lines, ['live+d', '127.0.0.1', 'DTSC', target]);
      await haze.api({ push_stop: 'live+renamed' });
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
  });

  it('STREAM_PUSH answering false refuses the publish', async () => {
    const pub = publishFile(SMALL_FLV, haze.rtmpUrl('live+blocked'));
    assert.notEqual(await Promise.race([exited(pub), giveUpAfter(15_000, 'hung')]), 0);
    assert.deepEqual((await cap.wait('STREAM_PUSH', (t) => t.lines[0] === 'live+blocked')).lines, ['live+blocked', '127.0.0.1', 'RTMP', haze.rtmpUrl('live+blocked')]);
    assert.match(haze.log(), /push of live\+blocked refused by STREAM_PUSH/);
  });
});
