// The dtsc:// listener of a running Haze (issue 5): a stream published over RTMP is pulled over
// dtsc:// by `haze analyse` (a reader apart from the server's code path) with every track and
// sound timing; an unknown stream is refused with an error command.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mistFixtures, repoRoot, run, sleep } from '../helpers.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';

describe('dtsc:// listener', { timeout: 60_000 }, () => {
  let haze: HazeInstance;
  before(async () => {
    haze = await startHaze({ workers: 2 });
  });
  after(async () => {
    await haze?.stop();
  });

  it('haze analyse --validate pulls a live stream over dtsc://', async () => {
    const pub = publishFile(path.join(mistFixtures, 'small.flv'), haze.rtmpUrl('live+pull'), ['-stream_loop', '-1']);
    try {
      await sleep(1500);
      const r = await run(process.execPath, [path.join(repoRoot, 'bin/haze'), 'analyse', `dtsc://127.0.0.1:${haze.ports.dtsc}/live+pull`, '--validate', '--limit', '150'], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, `${r.stdout.toString().slice(-2000)}\n${r.stderr.toString()}`);
      const out = r.stdout.toString();
      assert.match(out, /H264/);
      assert.match(out, /AAC/);
      const missing = await run(process.execPath, [path.join(repoRoot, 'bin/haze'), 'analyse', `dtsc://127.0.0.1:${haze.ports.dtsc}/nosuchstream`, '--validate'], { timeoutMs: 30_000 });
      assert.equal(missing.code, 1, 'an unknown stream is refused');
      assert.match(missing.stdout.toString(), /"cmd":"error","msg":"Stream not found: nosuchstream"/);
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
  });
});
