// Pushes and recordings of a live StreamHub (src/pushes), checked with ffprobe: a hub fed
// faster than real time from an ffmpeg-made file is recorded to .mkv .ts .flv .mp4 .dtsc at
// once (each read back by ffprobe, .dtsc through `haze convert`, durations as the source);
// split=2 + m3u8= gives an HLS playlist ffprobe plays whose segments start at keyframes; a
// path under a file, a full disk (/dev/full) and an injected write error end the recording
// with a clear reason; an RTMP re-push to a real Haze is readable there, and survives that
// Haze being stopped and started again on the same ports.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { StreamHub } from '../../src/hub/stream-hub.js';
import { loadLiveSource, type LiveSource } from '../live-source.js';
import { startPush } from '../../src/pushes/push-runner.js';
import type { RecordFs } from '../../src/pushes/record-fs.js';
import { nodeRecordFs } from '../../src/pushes/record-fs.js';
import { outputEndPayload } from '../../src/pushes/recording.js';
import { repoRoot, run, runOk, sleep, tmpDir } from '../helpers.js';
import { probePackets } from '../media-files.js';
import { startHaze, type HazeInstance } from './harness.js';

const SECONDS = 6;
const FPS = 25;

/**
 * Feeds `hub` from the source at `speed` times real time; `loops` copies one after another
 * (times continued), or until `stop()` returns true.
 */
async function feed(hub: StreamHub, src: LiveSource, speed: number, loops: number, stop: () => boolean = () => false): Promise<void> {
  hub.attachSource();
  for (const t of src.tracks) hub.setTrack(t);
  const startWall = performance.now();
  const loopMs = src.durationMs + 40;
  for (let loop = 0; loop < loops && !stop(); loop++) {
    for (const p of src.packets) {
      const timeMs = p.timeMs + loop * loopMs;
      const due = timeMs / speed - (performance.now() - startWall);
      if (due > 5) await sleep(due);
      if (stop() || hub.isEnded) return;
      hub.push({ trackId: p.trackId, timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data });
    }
  }
}

/** Video duration by ffprobe's packets: last pts - first pts + one frame, in s. */
async function videoSeconds(file: string): Promise<number> {
  const v = await probePackets(file, 'v');
  assert.ok(v.length > 0, `${file}: ffprobe finds video packets`);
  const pts = v.map((p) => Number(p.pts_time));
  return Math.max(...pts) - Math.min(...pts) + 1 / FPS;
}

async function streams(fileOrUrl: string): Promise<string[]> {
  const out = await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'json', fileOrUrl], { timeoutMs: 30_000 });
  return (JSON.parse(out.toString()) as { streams: { codec_name: string }[] }).streams.map((s) => s.codec_name).sort();
}

describe('push runner: recordings and re-push', { timeout: 240_000 }, () => {
  const dir = tmpDir('haze-push-');
  let src: LiveSource;
  before(async () => {
    const file = path.join(dir, 'source.mp4');
    await runOk('ffmpeg', [
      '-v', 'error', '-f', 'lavfi', '-i', `testsrc2=s=320x180:r=${FPS}`, '-f', 'lavfi', '-i', 'sine=f=440:sample_rate=48000',
      '-t', String(SECONDS), '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', String(FPS), '-c:a', 'aac', '-shortest', file,
    ]);
    src = await loadLiveSource(file);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('records .mkv .ts .flv .mp4 .dtsc and split .ts segments with an m3u8 at once; ffprobe reads them all', async () => {
    const hub = new StreamHub('live+rec', { sourceGraceMs: 0 });
    const out = path.join(dir, 'rec');
    const targets = ['mkv', 'ts', 'flv', 'mp4', 'dtsc'].map((ext) => `${out}/$basename/$wildcard.${ext}`);
    const runners = targets.map((target) => startPush({ hub, target }));
    const split = startPush({ hub, target: `${out}/seg/s_$segmentCounter.ts?split=2&m3u8=index.m3u8` });
    assert.equal(split.status().kind, 'file');
    await feed(hub, src, 4, 1);
    const midway = runners[1]!.status();
    assert.ok(midway.bytes > 0 && midway.lastMs > 0, 'status shows bytes written');
    hub.end('source finished');
    const ends = await Promise.all([...runners, split].map((r) => r.done));
    for (const e of ends) {
      assert.equal(e.reason, 'STREAM_END', `${e.target}: ${e.message}`);
      assert.ok(e.bytes > 10_000, `${e.target}: ${e.bytes} bytes`);
      assert.ok(Math.abs(e.mediaMs - src.durationMs) < 200, `${e.target}: ${e.mediaMs} media ms written`);
      assert.equal(e.firstMs, 0);
      const lines = outputEndPayload(e).split('\n');
      assert.equal(lines.length, 12);
      assert.equal(lines[0], 'live+rec');
      assert.equal(lines[10], 'STREAM_END');
    }
    assert.deepEqual(ends.map((e) => e.connector), ['EBML', 'HTTPTS', 'FLV', 'MP4', 'DTSC', 'HTTPTS']);
    const want = src.durationMs / 1000;
    for (const ext of ['mkv', 'ts', 'flv', 'mp4']) {
      const file = path.join(out, 'live', `rec.${ext}`);
      assert.deepEqual(await streams(file), ['aac', 'h264'], ext);
      const got = await videoSeconds(file);
      assert.ok(Math.abs(got - want) < 0.15, `.${ext}: ${got} s of video, source ${want} s`);
    }
    // DTSC: ffprobe cannot read it; haze convert turns it into TS for ffprobe
    const dtsc = path.join(out, 'live', 'rec.dtsc');
    const conv = await run(process.execPath, [path.join(repoRoot, 'bin/haze'), 'convert', dtsc, path.join(dir, 'from-dtsc.ts')], { timeoutMs: 30_000 });
    assert.equal(conv.code, 0, conv.stderr);
    const dtscSeconds = await videoSeconds(path.join(dir, 'from-dtsc.ts'));
    assert.ok(Math.abs(dtscSeconds - want) < 0.15, `.dtsc: ${dtscSeconds} s`);

    // split=2 + m3u8: 3 segments, playlist playable, each segment starts at a keyframe
    const e = ends[5]!;
    assert.deepEqual(e.files.map((f) => path.basename(f)), ['s_0.ts', 's_1.ts', 's_2.ts']);
    const m3u8 = fs.readFileSync(path.join(out, 'seg', 'index.m3u8'), 'utf8');
    assert.match(m3u8, /^#EXTM3U\n/);
    assert.match(m3u8, /#EXT-X-TARGETDURATION:2\n/);
    assert.match(m3u8, /\ns_0\.ts\n.*\ns_1\.ts\n.*\ns_2\.ts\n#EXT-X-ENDLIST\n$/s);
    const extinf = [...m3u8.matchAll(/#EXTINF:([\d.]+),/g)].map((m) => Number(m[1]));
    assert.ok(Math.abs(extinf.reduce((a, b) => a + b, 0) - want) < 0.15, `EXTINF sum ${extinf.join('+')}`);
    const playlistSeconds = await videoSeconds(path.join(out, 'seg', 'index.m3u8'));
    assert.ok(Math.abs(playlistSeconds - want) < 0.15, `playlist: ${playlistSeconds} s`);
    for (const f of e.files) {
      const v = await probePackets(f, 'v');
      assert.ok(v[0]!.flags.startsWith('K'), `${path.basename(f)} starts at a keyframe`);
    }
  });

  it('unwritable path, full disk and a failing write end with a clear reason, no crash', async () => {
    const hub = new StreamHub('live+bad', { sourceGraceMs: 0 });
    fs.writeFileSync(path.join(dir, 'blocker'), 'a file where a folder should be');
    fs.symlinkSync('/dev/full', path.join(dir, 'full.ts'));
    const failing: RecordFs = {
      ...nodeRecordFs,
      async open(file, mode) {
        const f = await nodeRecordFs.open(file, mode);
        let writes = 0;
        return {
          ...f,
          async writev(chunks) {
            if (++writes > 3) throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
            return f.writev(chunks);
          },
        };
      },
    };
    const notDir = startPush({ hub, target: path.join(dir, 'blocker/sub/a.ts') });
    const full = startPush({ hub, target: path.join(dir, 'full.ts') });
    const injected = startPush({ hub, target: path.join(dir, 'inj.flv'), fs: failing });
    const unsupported = startPush({ hub, target: path.join(dir, 'x.mkv?append=1') });
    const dtscPush = startPush({ hub, target: 'dtsc://127.0.0.1:4200/' }); // no stream name
    let stop = false;
    const feeding = feed(hub, src, 4, 1, () => stop);
    const [a, b, c, d, e] = await Promise.all([notDir.done, full.done, injected.done, unsupported.done, dtscPush.done]);
    stop = true;
    await feeding;
    hub.end('done');
    assert.equal(a.reason, 'NOT_WRITABLE');
    assert.match(a.message, /cannot (create folder|open).*blocker/);
    assert.equal(b.reason, 'DISK_FULL');
    assert.match(b.message, /disk is full/);
    assert.equal(c.reason, 'WRITE_ERROR');
    assert.match(c.message, /EIO/);
    assert.ok(c.bytes > 0, 'what was written before the error is counted');
    assert.equal(d.reason, 'UNSUPPORTED');
    assert.match(d.message, /append is possible for \.ts and \.flv/);
    assert.equal(e.reason, 'UNSUPPORTED');
    assert.match(e.message, /invalid DTSC target: .*no stream name/);
    for (const r of [notDir, full, injected]) assert.match(r.status().logs.join('\n'), /ended: /);
  });

  it('a disk slower than the stream: the queue stays bounded, packets drop to the next keyframe', async () => {
    const hub = new StreamHub('live+slow', { sourceGraceMs: 0 });
    const slow: RecordFs = {
      ...nodeRecordFs,
      async open(file, mode) {
        const f = await nodeRecordFs.open(file, mode);
        return { ...f, writev: async (chunks) => (await sleep(150), f.writev(chunks)) };
      },
    };
    const file = path.join(dir, 'slow.ts');
    const r = startPush({ hub, target: file, fs: slow, maxQueueBytes: 64 * 1024 });
    let maxQueued = 0;
    const timer = setInterval(() => (maxQueued = Math.max(maxQueued, r.status().queuedBytes)), 5);
    await feed(hub, src, 8, 1);
    clearInterval(timer);
    hub.end('done');
    const e = await r.done;
    assert.equal(e.reason, 'STREAM_END', e.message);
    assert.ok(e.droppedPackets > 0, 'packets were dropped');
    assert.ok(maxQueued < 64 * 1024 + 256 * 1024, `queue peaked at ${maxQueued} bytes`);
    const v = await probePackets(file, 'v');
    assert.ok(v.length > 0 && v.length < src.packets.length, `${v.length} video packets kept`);
  });

  it('append to .flv continues the file after its last timestamp', async () => {
    const file = path.join(dir, 'app.flv');
    for (let round = 0; round < 2; round++) {
      const hub = new StreamHub('live+app', { sourceGraceMs: 0 });
      const r = startPush({ hub, target: `${file}?append=1` });
      await feed(hub, src, 8, 1);
      hub.end('round over');
      const e = await r.done;
      assert.equal(e.reason, 'STREAM_END', e.message);
    }
    const seconds = await videoSeconds(file);
    assert.ok(Math.abs(seconds - (2 * src.durationMs) / 1000) < 0.3, `appended file: ${seconds} s`);
  });

  describe('RTMP re-push to a Haze', () => {
    let target: HazeInstance | undefined;
    after(async () => {
      await target?.stop();
    });

    it('is readable there, and reconnects after the target restarts', async () => {
      target = await startHaze({ workers: 1 });
      const hub = new StreamHub('live+src', { sourceGraceMs: 0 });
      const push = startPush({ hub, target: `${target.rtmpUrl('live+x')}?audio=aac&video=h264`, reconnect: { initialDelayMs: 200, maxDelayMs: 1000 }, rtmpTimeoutMs: 5000 });
      assert.equal(push.status().kind, 'rtmp');
      let stop = false;
      const feeding = feed(hub, src, 1, 1000, () => stop);
      try {
        const until = Date.now() + 15_000;
        while (push.status().state !== 'active' && Date.now() < until) await sleep(100);
        assert.equal(push.status().state, 'active', JSON.stringify(push.status()));
        assert.deepEqual(await streams(target.httpUrl('/live+x.flv')), ['aac', 'h264']);

        // the target goes away and comes back on the same ports
        const { data, ports } = target;
        await target.stop(true);
        const downUntil = Date.now() + 10_000;
        while (push.status().state === 'active' && Date.now() < downUntil) await sleep(50);
        assert.notEqual(push.status().state, 'active', 'the runner notices the drop');
        target = await startHaze({ workers: 1, data, ports });
        const upUntil = Date.now() + 20_000;
        while (!(push.status().state === 'active' && push.status().reconnects > 0) && Date.now() < upUntil) await sleep(100);
        const s = push.status();
        assert.equal(s.state, 'active', JSON.stringify(s));
        assert.ok(s.reconnects >= 1);
        assert.ok(s.lastError, 'the drop is reported');
        assert.ok(s.logs.length > 0 && s.logs.length <= 10);
        assert.deepEqual(await streams(target.httpUrl('/live+x.flv')), ['aac', 'h264']);
      } finally {
        stop = true;
        await feeding;
      }
      const end = await push.stop();
      assert.equal(end.reason, 'STOPPED');
      assert.equal(end.connector, 'RTMP');
      assert.ok(end.bytes > 0);
      hub.end('done');
    });
  });
});
