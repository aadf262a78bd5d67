// Pushes and recordings through the API of a running Haze (issue 5): automatic recording of every
// live+NAME to $recdir/$wildcard/$datetime.mkv (a custom variable in the target) and to 5 s .ts
// segments with an m3u8 playlist, push_start / push_list / push_stop of a manual recording whose
// target PUSH_OUT_START rewrites, and the PUSH_END / RECORDING_END / OUTPUT_END payloads field by
// field. ffprobe reads every file; lengths match the published time.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pollUntil, run, sleep, tmpDir } from '../helpers.js';
import { exited, publishTestPattern, startHaze, type HazeInstance } from './harness.js';
import { startTriggerCapture, type CapturedTrigger, type TriggerCapture } from './trigger-capture.js';

// alice: long enough for three 5 s segments (the third a short one) and to outlive the manual pushes
const ALICE_S = 13;
const BOB_S = 10;

async function durationS(file: string): Promise<number> {
  const r = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${file}: ${r.stderr.toString()}`);
  return Number(r.stdout.toString().trim());
}

async function codecs(file: string): Promise<string[]> {
  const r = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', file], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, `${file}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim().split('\n').sort();
}

describe('pushes through the API: automatic recordings, push_start/list/stop, end triggers', { timeout: 180_000 }, () => {
  let haze: HazeInstance;
  let cap: TriggerCapture;
  const dir = tmpDir('haze-pushapi-');

  before(async () => {
    cap = await startTriggerCapture();
    // the manual recording's target is rewritten; the automatic ones pass unchanged
    cap.reply('PUSH_OUT_START', (t) => (t.lines[1]!.includes('/manual/') ? path.join(dir, 'manual', 'rewritten.flv') : t.lines[1]!));
    haze = await startHaze({ workers: 2 });
    const r = await haze.api({
      addstream: { live: { source: 'push://' } },
      config: {
        triggers: {
          PUSH_OUT_START: [cap.handler({ sync: true, default: '' })],
          PUSH_END: [cap.handler()],
          RECORDING_END: [cap.handler()],
          OUTPUT_END: [cap.handler()],
        },
      },
      variable_add: { name: 'recdir', value: path.join(dir, 'rec') },
      push_auto_add: [
        { stream: 'live+', target: '$recdir/$wildcard/$datetime.mkv' },
        { stream: 'live+', target: `${dir}/seg/$wildcard/s_$segmentCounter.ts?split=5&m3u8=index.m3u8` },
      ],
    });
    assert.ok(!('error' in r), JSON.stringify(r.error));
    assert.equal(Object.keys(r['auto_push'] as object).length, 2);
    assert.deepEqual(r['variable_list'], { recdir: { value: path.join(dir, 'rec') } });
    await sleep(500);
  });
  after(async () => {
    await haze?.stop();
    await cap?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('records every live+NAME automatically; a manual push starts, is listed and stops', async () => {
    const alice = publishTestPattern(haze.rtmpUrl('live+alice'), ALICE_S);
    const bob = publishTestPattern(haze.rtmpUrl('live+bob'), BOB_S);
    type Row = [number, string, string, string, string[], Record<string, unknown>];
    const pushList = async (): Promise<Row[]> => (await haze.api({ push_list: true }))['push_list'] as Row[];
    // both publishers in and their automatic pushes recording (a duplicate push would show in the PUSH_END counts below)
    await pollUntil('four automatic recordings', async () => {
      const rows = await pushList();
      return rows.length >= 4 && rows.every((row) => row[5]['state'] === 'recording');
    }, 15_000, 200).catch(() => undefined);

    let list = await pushList();
    const auto = list.map(([, stream, target]) => `${stream} ${target}`).sort();
    assert.deepEqual(auto, [
      `live+alice $recdir/$wildcard/$datetime.mkv`,
      `live+alice ${dir}/seg/$wildcard/s_$segmentCounter.ts?split=5&m3u8=index.m3u8`,
      `live+bob $recdir/$wildcard/$datetime.mkv`,
      `live+bob ${dir}/seg/$wildcard/s_$segmentCounter.ts?split=5&m3u8=index.m3u8`,
    ]);
    for (const row of list) {
      assert.equal(row[5]['state'], 'recording', JSON.stringify(row));
      if (row[2].endsWith('.mkv')) assert.match(row[3], new RegExp(`^${dir}/rec/${row[1].slice(5)}/\\d{4}\\.\\d\\d\\.\\d\\d\\.\\d\\d\\.\\d\\d\\.\\d\\d\\.mkv$`));
    }

    // a manual recording, renamed by PUSH_OUT_START
    const manualTarget = path.join(dir, 'manual', '$stream.flv');
    const startAnswer = await haze.api({ push_start: { stream: 'live+alice', target: manualTarget } });
    assert.ok(!('error' in startAnswer), JSON.stringify(startAnswer.error));
    const [id] = startAnswer['push_start'] as number[];
    assert.equal(typeof id, 'number');
    const outStart = await cap.wait('PUSH_OUT_START', (t) => t.lines[1] === manualTarget);
    assert.deepEqual(outStart.lines, ['live+alice', manualTarget]);
    await sleep(3000);
    list = (await haze.api({ push_list: true }))['push_list'] as typeof list;
    const manual = list.find((row) => row[0] === id);
    assert.ok(manual, `push ${id} listed: ${JSON.stringify(list)}`);
    assert.equal(manual[2], manualTarget);
    assert.equal(manual[3], path.join(dir, 'manual', 'rewritten.flv'));
    assert.deepEqual((await haze.api({ push_stop: [id] }))['push_stop'], [id]);
    const manualEnd = await cap.wait('RECORDING_END', (t) => t.lines[1]!.endsWith('rewritten.flv'));
    assert.equal(manualEnd.lines[10], 'STOPPED');
    assert.deepEqual(await codecs(path.join(dir, 'manual', 'rewritten.flv')), ['aac', 'h264']);
    const manualPushEnd = await cap.wait('PUSH_END', (t) => t.lines[0] === String(id));
    assert.deepEqual(manualPushEnd.lines.slice(0, 4), [String(id), 'live+alice', manualTarget, path.join(dir, 'manual', 'rewritten.flv')]);
    assert.ok(Array.isArray(JSON.parse(manualPushEnd.lines[4]!)), 'log lines JSON');
    assert.equal(JSON.parse(manualPushEnd.lines[5]!).state, 'ended');

    // `base+` starts one push per active wildcard stream
    const all = (await haze.api({ push_start: ['live+', `${dir}/all/$wildcard.flv`] }))['push_start'] as number[];
    assert.equal(all.length, 2);
    await sleep(1500);
    assert.deepEqual(((await haze.api({ push_stop: all }))['push_stop'] as number[]).sort(), [...all].sort());
    for (const name of ['alice', 'bob']) {
      const end = await cap.wait('RECORDING_END', (t) => t.lines[1] === `${dir}/all/${name}.flv`);
      assert.equal(end.lines[0], `live+${name}`);
      assert.deepEqual(await codecs(`${dir}/all/${name}.flv`), ['aac', 'h264']);
    }

    assert.equal(await exited(bob), 0);
    assert.equal(await exited(alice), 0);

    const endOf = (name: string, ext: string): Promise<CapturedTrigger> => cap.wait('RECORDING_END', (t) => t.lines[0] === `live+${name}` && t.lines[1]!.endsWith(ext), 30_000);
    for (const [name, seconds] of [['alice', ALICE_S], ['bob', BOB_S]] as const) {
      const end = await endOf(name, '.mkv');
      const [stream, target, connector, bytes, active, startUnix, stopUnix, mediaMs, firstMs, lastMs, machine, human] = end.lines;
      assert.equal(stream, `live+${name}`);
      assert.equal(path.dirname(target!), path.join(dir, 'rec', name));
      assert.equal(connector, 'EBML'); // MistServer's name of its Matroska output
      assert.equal(Number(bytes), fs.statSync(target!).size);
      assert.ok(Math.abs(Number(active) - seconds) <= 3, `seconds active ${active} for ${seconds} s published`);
      assert.ok(Number(stopUnix) - Number(startUnix) >= seconds - 3 && Number(stopUnix) <= Date.now() / 1000 + 1, `${startUnix}..${stopUnix}`);
      assert.ok(Math.abs(Number(mediaMs) - seconds * 1000) <= 1500, `media ms ${mediaMs}`);
      assert.equal(Number(lastMs) - Number(firstMs), Number(mediaMs));
      assert.equal(machine, 'STREAM_END');
      assert.ok(human!.length > 0);
      assert.equal(end.headers['x-trigger'], 'RECORDING_END');
      // the file: one recording per stream, as long as the publish
      assert.deepEqual(fs.readdirSync(path.join(dir, 'rec', name)), [path.basename(target!)]);
      const fileS = await durationS(target!);
      assert.ok(Math.abs(fileS - seconds) <= 1.5, `${target}: ${fileS} s for ${seconds} s published`);
      assert.deepEqual(await codecs(target!), ['aac', 'h264']);
      const outputEnd = await cap.wait('OUTPUT_END', (t) => t.lines[1] === target);
      assert.deepEqual(outputEnd.lines, end.lines);
    }

    // 5 s segments with a VoD playlist
    // (a segmented recording reports its last segment as the target)
    const segEnd = await endOf('alice', '.ts');
    assert.equal(segEnd.lines[1], path.join(dir, 'seg', 'alice', 's_2.ts'));
    assert.equal(segEnd.lines[10], 'STREAM_END');
    const segDir = path.join(dir, 'seg', 'alice');
    const m3u8 = fs.readFileSync(path.join(segDir, 'index.m3u8'), 'utf8');
    assert.match(m3u8, /#EXT-X-TARGETDURATION:[56]\n/);
    assert.match(m3u8, /#EXT-X-ENDLIST\n?$/);
    const segments = m3u8.split('\n').filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(segments, ['s_0.ts', 's_1.ts', 's_2.ts']);
    for (const s of segments) assert.ok(fs.existsSync(path.join(segDir, s)), s);
    assert.ok(Math.abs((await durationS(path.join(segDir, 'index.m3u8'))) - ALICE_S) <= 1.5);
    // every automatic push reported its end
    for (const name of ['alice', 'bob']) assert.equal(cap.of('PUSH_END').filter((t) => t.lines[1] === `live+${name}`).length, name === 'alice' ? 4 : 3);
  });

  it('an auto-push rule with a start_rule follows its variable', async () => {
    const pub = publishTestPattern(haze.rtmpUrl('live+carol'), 15);
    try {
      const rule = { stream: 'live+carol', target: `${dir}/cond/$wildcard.flv`, start_rule: ['gate', 0, ''] };
      let r = await haze.api({ push_auto_add: rule, variable_add: { name: 'gate', value: '0' } });
      assert.ok(!('error' in r), String(r['error']));
      // (the rules of the first test record live+carol too: only this rule's push counts)
      const pushesOfCarol = async (): Promise<unknown[][]> => ((await haze.api({ push_list: true }))['push_list'] as unknown[][]).filter((row) => row[1] === 'live+carol' && row[2] === rule.target);
      await sleep(3000);
      assert.deepEqual(await pushesOfCarol(), [], 'gate=0: no push');
      await haze.api({ variable_add: { name: 'gate', value: '1' } });
      const until = Date.now() + 5000;
      while ((await pushesOfCarol()).length === 0 && Date.now() < until) await sleep(200);
      assert.equal((await pushesOfCarol()).length, 1, 'gate=1: the push started');
      await sleep(2000);
      await haze.api({ variable_add: { name: 'gate', value: '0' } });
      const end = await cap.wait('RECORDING_END', (t) => t.lines[1] === `${dir}/cond/carol.flv`, 10_000);
      assert.equal(end.lines[10], 'STOPPED');
      assert.match(end.lines[11]!, /rule/);
      assert.deepEqual(await codecs(`${dir}/cond/carol.flv`), ['aac', 'h264']);
      r = await haze.api({ push_auto_remove: 'live+carol' });
      assert.ok(!Object.values(r['auto_push'] as object).some((x) => (x as { stream: string }).stream === 'live+carol'));
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
  });

  it('push_auto_remove removes rules; bad arguments answer errors', async () => {
    const listed = (await haze.api({ push_auto_list: true }))['push_auto_list'] as unknown[][];
    assert.equal(listed.length, 2);
    let r = await haze.api({ push_auto_remove: listed[0]![0] });
    assert.equal(Object.keys(r['auto_push'] as object).length, 1);
    r = await haze.api({ push_auto_remove: 'live+' });
    assert.deepEqual(r['auto_push'], {});
    r = await haze.api({ push_start: ['live+x', 'gopher://nowhere'] });
    assert.match(String(r['error']), /push_start/);
    r = await haze.api({ push_start: ['live+x', 'dtsc://127.0.0.1/'] });
    assert.match(String(r['error']), /push_start: invalid DTSC target: no stream name/);
    r = await haze.api({ push_auto_add: { stream: 'live+', target: '/tmp/x.m3u8' } });
    assert.match(String(r['error']), /push_auto_add.*m3u8/);
    r = await haze.api({ push_settings: { wait: -1 } });
    assert.match(String(r['error']), /push_settings/);
    r = await haze.api({ push_settings: { wait: 2, maxspeed: 5 } });
    assert.deepEqual(r['push_settings'], { wait: 2, maxspeed: 5 });
    r = await haze.api({ variable_remove: ['recdir', 'gate'] });
    assert.deepEqual(r['variable_list'], {});
  });
});
