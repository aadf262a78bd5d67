// The controller's triggers through a running Haze (issue 5): SYSTEM_START and OUTPUT_START at
// boot, STREAM_ADD / STREAM_CONFIG / STREAM_REMOVE from the API (a blocking false answer refuses
// that stream's change; a handler that hangs yields its default after the 10 s timeout),
// OUTPUT_START / OUTPUT_STOP when the protocols change, STREAM_SOURCE replacing a VoD stream's
// file (ffprobe plays the replacement), SYSTEM_STOP and OUTPUT_STOP when the server stops.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { giveUpAfter, mistFixtures, repoRoot, run, sleep, tmpDir } from '../helpers.js';
import { exited, startHaze, type HazeInstance } from './harness.js';
import { startTriggerCapture, type TriggerCapture } from './trigger-capture.js';

const HAZE_VERSION = (await import('../../src/util/version.js')).HAZE_VERSION;

async function durationS(url: string): Promise<number> {
  const r = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', url], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr.toString());
  return Number(r.stdout.toString().trim());
}

describe('controller triggers', { timeout: 120_000 }, () => {
  let haze: HazeInstance;
  let cap: TriggerCapture;
  // a copy: opening a file as a stream writes its .dtsh next to it, and the fixture's must stay MistServer's
  const dir = tmpDir('haze-ctrig-');
  const small = path.join(dir, 'small.flv');

  before(async () => {
    fs.copyFileSync(path.join(mistFixtures, 'small.flv'), small);
    cap = await startTriggerCapture();
    cap.reply('STREAM_ADD', (t) => (t.lines[0] === 'refused' ? 'false' : t.lines[0] === 'slow' ? new Promise<string>(() => {}) : 'true'));
    cap.reply('STREAM_REMOVE', (t) => (t.lines[0] === 'keepme' ? 'no' : 'yes'));
    cap.reply('STREAM_SOURCE', (t) => (t.lines[0] === 'swapped' ? small : ''));
    const handlers = (names: string[], sync: boolean): Record<string, unknown> => Object.fromEntries(names.map((n) => [n, [cap.handler({ sync, default: n === 'STREAM_ADD' ? 'false' : 'true' })]]));
    haze = await startHaze({
      workers: 1,
      config: {
        config: {
          protocols: [{ connector: 'HTTP' }, { connector: 'RTMP' }],
          triggers: { ...handlers(['SYSTEM_START', 'STREAM_ADD', 'STREAM_CONFIG', 'STREAM_REMOVE', 'STREAM_SOURCE', 'SYSTEM_STOP'], true), ...handlers(['OUTPUT_START', 'OUTPUT_STOP'], false) },
        },
        streams: { keepme: { name: 'keepme', source: 'push://' } },
      },
    });
  });
  after(async () => {
    await haze?.stop();
    await cap?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('SYSTEM_START and OUTPUT_START at boot', async () => {
    const start = await cap.wait('SYSTEM_START');
    assert.deepEqual(start.lines, [HAZE_VERSION]);
    assert.equal(start.headers['x-trigger'], 'SYSTEM_START');
    await cap.wait('OUTPUT_START', (t) => t.lines[0] === JSON.stringify({ connector: 'RTMP' }));
    assert.deepEqual(cap.of('OUTPUT_START').map((t) => t.lines).sort(), [[JSON.stringify({ connector: 'HTTP' })], [JSON.stringify({ connector: 'RTMP' })]]);
  });

  it('STREAM_ADD, STREAM_CONFIG and STREAM_REMOVE vet API changes stream by stream', async () => {
    let r = await haze.api({ addstream: { fresh: { source: 'push://' }, refused: { source: 'push://' } } });
    assert.match(String(r['error']), /STREAM_ADD refused the new stream refused/);
    assert.deepEqual(Object.keys(r['streams'] as object).sort(), ['fresh', 'incomplete list']);
    const add = cap.of('STREAM_ADD').find((t) => t.lines[0] === 'fresh')!;
    assert.equal(add.lines.length, 2);
    assert.deepEqual(JSON.parse(add.lines[1]!), { name: 'fresh', source: 'push://' });

    r = await haze.api({ addstream: { fresh: { source: 'push://127.0.0.1' } } });
    assert.ok(!('error' in r), String(r['error']));
    const change = await cap.wait('STREAM_CONFIG');
    assert.equal(change.lines[0], 'fresh');
    assert.equal(JSON.parse(change.lines[1]!).source, 'push://127.0.0.1');

    r = await haze.api({ deletestream: ['fresh', 'keepme'] });
    assert.match(String(r['error']), /STREAM_REMOVE kept stream keepme/);
    assert.deepEqual(cap.of('STREAM_REMOVE').map((t) => t.lines).sort(), [['fresh'], ['keepme']]);
    const streams = (await haze.api({}))['streams'] as Record<string, unknown>;
    assert.ok('keepme' in streams && !('fresh' in streams) && !('refused' in streams));
  });

  it('a blocking handler that hangs yields its default after the 10 s timeout', async () => {
    const t0 = Date.now();
    const r = await haze.api({ addstream: { slow: { source: 'push://' } } });
    const waited = Date.now() - t0;
    assert.match(String(r['error']), /STREAM_ADD refused the new stream slow/);
    assert.ok(waited >= 9_500 && waited < 20_000, `answered after ${waited} ms`);
  });

  it('OUTPUT_START / OUTPUT_STOP follow config.protocols', async () => {
    await haze.api({ config: { protocols: [{ connector: 'HTTP' }, { connector: 'RTMP', port: 1935 }] } });
    const stop = await cap.wait('OUTPUT_STOP');
    assert.deepEqual(stop.lines, [JSON.stringify({ connector: 'RTMP' })]);
    await cap.wait('OUTPUT_START', (t) => t.lines[0] === JSON.stringify({ connector: 'RTMP', port: 1935 }));
  });

  it('STREAM_SOURCE replaces the file a VoD stream plays', async () => {
    await haze.api({ addstream: { swapped: { source: path.join(repoRoot, 'media', 'demo.mp4') }, plain: { source: path.join(repoRoot, 'media', 'demo.mp4') } } });
    await sleep(500);
    const [swapped, plain, smallS] = await Promise.all([durationS(haze.httpUrl('/swapped.mp4')), durationS(haze.httpUrl('/plain.mp4')), durationS(small)]);
    assert.ok(Math.abs(swapped - smallS) < 0.5, `swapped plays small.flv: ${swapped} s vs ${smallS} s`);
    assert.ok(Math.abs(plain - smallS) > 1, `plain plays demo.mp4: ${plain} s`);
    assert.deepEqual((await cap.wait('STREAM_SOURCE', (t) => t.lines[0] === 'swapped')).lines, ['swapped']);
  });

  it('SYSTEM_STOP and OUTPUT_STOP when the server stops', async () => {
    const before = cap.of('OUTPUT_STOP').length;
    await haze.stop();
    const stop = await cap.wait('SYSTEM_STOP', () => true, 5000);
    assert.deepEqual(stop.lines, ['SIGTERM received']);
    assert.equal(cap.of('OUTPUT_STOP').length - before, 2);
  });
});

describe('SYSTEM_START answering false', { timeout: 60_000 }, () => {
  it('stops the whole server', async () => {
    const cap = await startTriggerCapture();
    // answered after a moment, so that the server is up (and startHaze returns) before it stops
    cap.reply('SYSTEM_START', () => sleep(2000).then(() => 'false'));
    const haze = await startHaze({ workers: 1, config: { config: { triggers: { SYSTEM_START: [cap.handler({ sync: true, default: 'true' })] } } } });
    try {
      const code = await Promise.race([exited(haze.proc), giveUpAfter(20_000, 'still running')]);
      assert.equal(code, 0, 'haze serve exits');
      assert.match(haze.log(), /SYSTEM_START answered false: stopping the server/);
      assert.equal(cap.of('SYSTEM_START').length, 1);
    } finally {
      await haze.stop();
      await cap.close();
    }
  });
});
