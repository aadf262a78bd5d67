// The `recordings` API call against a real Haze (issue 8 point 4): an automatic push records
// every live+NAME to <tmp>/rec/$stream_$datetime.mkv and to 1 s HLS segments with a playlist;
// ffmpeg publishes a 3 s test pattern to live+rec. The call lists the .mkv with its stream, a
// size equal to the file on disk and a length within 0.5 s of ffprobe's, growing while the
// publisher runs and not after; the HLS recording as its playlist with the summed size of its
// segments; nothing else of the folder (other names, a symbolic link to a file elsewhere).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pollUntil, run, tmpDir } from '../helpers.js';
import { exited, publishTestPattern, startHaze, type HazeInstance } from './harness.js';
import type { RecordingEntry } from '../../src/controller/api-recordings.js';

type Entry = RecordingEntry;

async function ffprobeDurationS(file: string): Promise<number> {
  const r = await run('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', file], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr.toString());
  return Number(r.stdout.toString().trim());
}

describe('recordings through the API', { timeout: 60_000 }, () => {
  let haze: HazeInstance;
  const dir = tmpDir('haze-recapi-');
  const rec = path.join(dir, 'rec');

  before(async () => {
    haze = await startHaze({ workers: 1 });
    const r = await haze.api({
      addstream: { live: { source: 'push://' } },
      push_auto_add: [
        { stream: 'live+', target: `${rec}/$stream_$datetime.mkv` },
        { stream: 'live+', target: `${dir}/hls/$stream/s_$segmentCounter.ts?split=1&m3u8=index.m3u8` },
      ],
    });
    assert.ok(!('error' in r), JSON.stringify(r['error']));
    // what must not be listed: names the template does not produce, and a link out of the folder
    fs.mkdirSync(rec, { recursive: true });
    fs.writeFileSync(path.join(rec, 'notes.mkv'), 'x');
    fs.writeFileSync(path.join(dir, 'outside.mkv'), 'secret');
    fs.symlinkSync(path.join(dir, 'outside.mkv'), path.join(rec, 'live+x_2026.01.01.00.00.00.mkv'));
  });
  after(async () => {
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const list = async (arg: unknown = true): Promise<Entry[]> => {
    const r = await haze.api({ recordings: arg });
    assert.ok(!('error' in r), JSON.stringify(r['error']));
    return r['recordings'] as Entry[];
  };

  it('lists the recording while it grows and after, with its size and length', async (t) => {
    assert.deepEqual(await list(), []);
    const bad = await haze.api({ recordings: 5 });
    assert.match(String(bad['error']), /recordings: expected/);

    const pub = publishTestPattern(haze.rtmpUrl('live+rec'), 3);
    const mkvOf = (l: Entry[]): Entry | undefined => l.find((e) => e.name.endsWith('.mkv'));
    const growing = await pollUntil('the recording listed as growing', async () => {
      const e = mkvOf(await list());
      // its length read from its blocks (the stated Duration comes at the end)
      return e && e.growing && e.size > 0 && e.duration_ms !== null && e.duration_ms > 0 ? e : undefined;
    }, 15_000, 200);
    assert.equal(growing.stream, 'live+rec');
    assert.equal(path.dirname(growing.path), rec);
    assert.match(growing.name, /^live\+rec_\d{4}\.\d\d\.\d\d\.\d\d\.\d\d\.\d\d\.mkv$/);
    assert.ok(growing.duration_ms! < 3500, String(growing.duration_ms));
    assert.equal(await exited(pub), 0);

    const done = await pollUntil('the recording no longer growing', async () => {
      const l = await list();
      const e = mkvOf(l);
      return e && !e.growing && l.every((x) => !x.growing) ? l : undefined;
    }, 15_000, 250);
    assert.equal(done.length, 2, JSON.stringify(done));
    const mkv = mkvOf(done)!;
    const st = fs.statSync(mkv.path);
    assert.equal(mkv.size, st.size);
    assert.equal(mkv.modified, Math.floor(st.mtimeMs / 1000));
    const probed = await ffprobeDurationS(mkv.path);
    assert.ok(probed > 2 && probed < 4, `ffprobe says ${probed} s`);
    assert.ok(mkv.duration_ms !== null && Math.abs(mkv.duration_ms / 1000 - probed) < 0.5, `listed ${mkv.duration_ms} ms, ffprobe ${probed} s`);

    // HLS: the playlist, sized as its segments together, as long as ffprobe reads it
    const hls = done.find((e) => e.name === 'index.m3u8')!;
    assert.ok(hls, JSON.stringify(done));
    assert.equal(hls.stream, 'live+rec');
    const segDir = path.join(dir, 'hls', 'live+rec');
    const segs = fs.readdirSync(segDir).filter((n) => n.endsWith('.ts'));
    assert.ok(segs.length >= 2, segs.join());
    assert.equal(hls.size, segs.reduce((n, s) => n + fs.statSync(path.join(segDir, s)).size, 0));
    const hlsProbed = await ffprobeDurationS(hls.path);
    assert.ok(hls.duration_ms !== null && Math.abs(hls.duration_ms / 1000 - hlsProbed) < 0.5, `listed ${hls.duration_ms} ms, ffprobe ${hlsProbed} s`);

    t.diagnostic(`mkv ${mkv.size} bytes, ${mkv.duration_ms} ms (ffprobe ${probed} s); hls ${hls.size} bytes in ${segs.length} segments, ${hls.duration_ms} ms (ffprobe ${hlsProbed} s)`);
    // newest first, and by stream
    assert.ok(done[0]!.modified >= done[1]!.modified);
    assert.equal((await list({ stream: 'live+rec' })).length, 2);
    assert.deepEqual(await list({ stream: 'live+other' }), []);
  });
});
