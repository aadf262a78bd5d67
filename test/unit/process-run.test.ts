// Stream processes against a real hub and real child processes, without a server: `cat` as an
// MKVExec process returns exactly the Matroska it is fed, so its output tracks must repeat the
// source packets byte for byte at the same stream times (the whole path: MatroskaWriter ->
// child -> MatroskaDemuxer -> time map -> hub). The manager restarts a killed process with the
// same output track, which goes on without a gap or a repeated timestamp (the restart is fed
// from the DVR window after what was delivered); proc_list describes it; a process whose output
// never comes is reported; a timeline shift of the hub (a publisher that came back) is followed.

import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { StreamHub } from '../../src/hub/stream-hub.js';
import type { Packet, Track } from '../../src/media/types.js';
import { ProcessRun, type RunEnd } from '../../src/processes/process-run.js';
import { parseProcess } from '../../src/processes/process-config.js';
import { PROCESS_TRACK_BASE, StreamProcesses, waitForOpus, type ProcessHubs } from '../../src/processes/stream-processes.js';
import { TypedEmitter } from '../../src/util/events.js';
import { addLogSink, Logger } from '../../src/util/log.js';
import { demuxMatroska } from '../../src/containers/mkv/demux.js';
import { runOk, sleep, tmpDir } from '../helpers.js';
import fs from 'node:fs';
import path from 'node:path';

const vp8: Track = { id: 1, type: 'video', codec: 'VP8', init: Buffer.alloc(0), bps: 0, lang: 'und', width: 64, height: 32, fpks: 25000 };
const aac: Track = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.from([0x11, 0x90]), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };

/** A payload that names its track and time, so a repeat or a mix-up shows. */
function payload(track: number, t: number, size: number): Buffer {
  const b = Buffer.alloc(size, (t * 7 + track) & 0xff);
  b.writeUInt32BE(t, 0);
  b[4] = track;
  return b;
}
const video = (t: number): Packet => ({ trackId: 1, timeMs: t, offsetMs: 0, keyframe: t % 1000 === 0, data: payload(1, t, 300) });
const audio = (t: number): Packet => ({ trackId: 2, timeMs: t, offsetMs: 0, keyframe: true, data: payload(2, t, 40) });

/** A live hub with both tracks and `ms` of interleaved packets from `from`. */
function liveHub(ms: number, from = 0, hub = new StreamHub('t', { sourceGraceMs: 60_000 })): StreamHub {
  hub.attachSource();
  hub.setTrack(vp8);
  hub.setTrack(aac);
  pushRange(hub, from, from + ms);
  return hub;
}

function pushRange(hub: StreamHub, from: number, to: number): void {
  for (let t = from; t < to; t += 20) {
    if (t % 40 === 0) hub.push(video(t));
    hub.push(audio(t));
  }
}

/** Every packet of the process's output tracks, as the hub hands them out. */
function collect(hub: StreamHub): { packets: Packet[]; tracks: Track[] } {
  const got = { packets: [] as Packet[], tracks: [] as Track[] };
  hub.subscribe({
    onPacket: (p) => {
      if (p.trackId >= PROCESS_TRACK_BASE) got.packets.push({ ...p });
    },
    onTracks: (t) => {
      got.tracks = t.filter((x) => x.id >= PROCESS_TRACK_BASE);
    },
    onEnd: () => {},
  });
  return got;
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const lines: string[] = [];
addLogSink((_level, msg) => {
  if (lines.length < 1000) lines.push(msg);
});
const quiet = new Logger({ test: 'process-run' });

describe('a process run (cat as MKVExec)', () => {
  const runs: ProcessRun[] = [];
  after(() => {
    for (const r of runs) r.stop('test over');
  });

  function host(): ConstructorParameters<typeof ProcessRun>[0]['host'] {
    const ids = new Map<number, number>();
    const times = new Map<number, number>();
    return {
      isProcessTrack: (id) => id >= PROCESS_TRACK_BASE,
      outputTrackId: (index) => ids.get(index) ?? (ids.set(index, PROCESS_TRACK_BASE + index), PROCESS_TRACK_BASE + index),
      lastTimeOf: (id) => times.get(id) ?? -Infinity,
      noteTime: (id, t) => void times.set(id, t),
      hubShift: { ms: undefined },
    };
  }

  it('repeats the source packets from the next keyframe on, at the same times, as new tracks', async () => {
    const hub = liveHub(2500);
    const got = collect(hub);
    const spec = parseProcess({ process: 'MKVExec', exec: 'cat' });
    const run = new ProcessRun({ stream: 't', spec, argv: spec.argv, hub, host: host(), resumeAfterMs: -Infinity, log: quiet, catchUpMs: 0 });
    runs.push(run);
    assert.ok(run.pid && run.pid > 0);
    assert.deepEqual(run.inputTracks, [1, 2]);
    pushRange(hub, 2500, 3500);
    // expected: the live packets from the first keyframe after the start (3000)
    const expected: Packet[] = [];
    for (let t = 3000; t < 3500; t += 20) {
      if (t % 40 === 0) expected.push(video(t));
      expected.push(audio(t));
    }
    await until('the output', () => got.packets.length >= expected.length);
    await sleep(50);
    assert.equal(got.packets.length, expected.length, 'nothing more, nothing less');
    assert.deepEqual(
      got.tracks.map((t) => [t.id, t.codec, t.type]),
      [
        [PROCESS_TRACK_BASE, 'VP8', 'video'],
        [PROCESS_TRACK_BASE + 1, 'AAC', 'audio'],
      ],
    );
    assert.ok(got.tracks[1]!.type === 'audio' && got.tracks[1]!.init.equals(aac.init));
    const byTrack = (packets: Packet[], id: number): string[] => packets.filter((p) => p.trackId === id).map((p) => `${p.timeMs} ${p.keyframe} ${p.data.toString('hex')}`);
    assert.deepEqual(byTrack(got.packets, PROCESS_TRACK_BASE), byTrack(expected, 1));
    assert.deepEqual(byTrack(got.packets, PROCESS_TRACK_BASE + 1), byTrack(expected, 2));
    assert.equal(run.state, 'running');
    assert.equal(run.sinkMs, 3480);
    const ended = new Promise<RunEnd>((r) => run.on('exit', r));
    run.stop('test over');
    const end = await ended;
    assert.equal(end.stopped, true);
    assert.equal(end.reason, 'test over');
    assert.equal(end.packetsOut, expected.length);
  });

  it('follows the hub when it shifts a returning publisher onto its timeline', async () => {
    const hub = liveHub(1000);
    hub.detachSource('publisher lost', 60_000);
    const sources: Packet[] = [];
    hub.subscribe({ onPacket: (p) => p.trackId === 2 && sources.push({ ...p }), onTracks: () => {}, onEnd: () => {} });
    // the publisher comes back counting from 0: the hub moves its packets after the old ones
    liveHub(1000, 0, hub);
    const got = collect(hub);
    const spec = parseProcess({ process: 'MKVExec', exec: 'cat', track_select: 'video=none&audio=all' });
    const run = new ProcessRun({ stream: 't', spec, argv: spec.argv, hub, host: host(), resumeAfterMs: -Infinity, log: quiet, catchUpMs: 0 });
    runs.push(run);
    pushRange(hub, 1000, 1600);
    await until('the output', () => got.packets.length >= 30);
    await sleep(50);
    const shift = sources[0]!.timeMs;
    assert.ok(shift > 980, `the hub shifted its source (${shift})`);
    // the run starts at the next keyframe of its (audio) track: the first live packet, publisher time 1000
    const live = sources.filter((p) => p.data.readUInt32BE(0) >= 1000);
    assert.deepEqual(
      got.packets.map((p) => `${p.timeMs} ${p.data.readUInt32BE(0)}`),
      live.map((p) => `${p.timeMs} ${p.data.readUInt32BE(0)}`),
      'the output lands on the same (shifted) times as its source',
    );
    run.stop('test over');
  });

  it('a first run joins the stream once its output keeps pace: its start-up backlog is held back', async () => {
    const hub = liveHub(1000);
    const got = collect(hub);
    const spec = parseProcess({ process: 'MKVExec', exec: 'cat', track_select: 'video=none&audio=all' });
    const run = new ProcessRun({ stream: 't', spec, argv: spec.argv, hub, host: host(), resumeAfterMs: -Infinity, log: quiet, catchUpMs: 300 });
    runs.push(run);
    // a second of input at once (what queues while a child starts), then live, every 20 ms
    for (let t = 1000; t < 2000; t += 20) hub.push(audio(t));
    let t = 2000;
    const feeder = setInterval(() => hub.push(audio((t += 20) - 20)), 20);
    try {
      await until('live output', () => got.packets.length >= 10);
    } finally {
      clearInterval(feeder);
    }
    const times = got.packets.map((p) => p.timeMs);
    assert.ok(times[0]! >= 2200, `the backlog and the first 300 ms are held back (first ${times[0]})`);
    for (let i = 1; i < times.length; i++) assert.equal(times[i]! - times[i - 1]!, 20);
    assert.ok(run.heldBack >= 50, `${run.heldBack} held back`);
    run.stop('test over');
  });

  it('a command that cannot run ends the run with the reason', async () => {
    const hub = liveHub(500);
    const spec = parseProcess({ process: 'MKVExec', exec: '/nonexistent/haze-test-command' });
    const run = new ProcessRun({ stream: 't', spec, argv: spec.argv, hub, host: host(), resumeAfterMs: -Infinity, log: quiet, catchUpMs: 0 });
    const end = await new Promise<RunEnd>((r) => run.on('exit', r));
    assert.match(end.reason, /cannot run \/nonexistent\/haze-test-command: .*ENOENT/);
    assert.equal(end.stopped, false);
  });

  it('a process whose output never comes is reported in the log', async () => {
    const hub = liveHub(500);
    const spec = parseProcess({ process: 'MKVExec', exec: `sh -c 'cat > /dev/null'` });
    const run = new ProcessRun({ stream: 'quiet-one', spec, argv: spec.argv, hub, host: host(), resumeAfterMs: -Infinity, log: quiet, noOutputMs: 300 });
    runs.push(run);
    pushRange(hub, 500, 1100);
    await until('the no-output line', () => lines.some((l) => l.includes('for quiet-one') && l.includes('produced no output 0.3 s after its input started')));
    assert.equal(run.state, 'no output');
    run.stop('test over');
  });
});

describe('the stream processes of a worker', () => {
  class FakeHubs extends TypedEmitter<{ sourceOnline: { name: string; hub: StreamHub }; sourceStart: { name: string; hub: StreamHub }; sourceEnd: { name: string; hub: StreamHub } }> implements ProcessHubs {
    readonly hubs = new Map<string, { hub: StreamHub; local: boolean }>();
    localSource(name: string): StreamHub | undefined {
      const e = this.hubs.get(name);
      return e?.local && !e.hub.isEnded ? e.hub : undefined;
    }
  }
  let procs: StreamProcesses | undefined;
  after(() => procs?.close());

  it('restarts a killed process; its output track goes on with no gap and no repeat; proc_list shows it', async () => {
    const hubs = new FakeHubs();
    let settings: Record<string, unknown> = {
      source: 'push://',
      processes: [{ process: 'MKVExec', exec: 'cat', track_select: 'video=none&audio=all', restart_type: 'fixed', restart_delay: 700 }],
    };
    const changes: (() => void)[] = [];
    procs = new StreamProcesses({ worker: 3, hubs, settings: () => settings, onConfigChange: (fn) => changes.push(fn), log: quiet });
    const hub = liveHub(1000);
    const got = collect(hub);
    hubs.hubs.set('t', { hub, local: true });
    hubs.emit('sourceOnline', { name: 't', hub });
    // live audio every 20 ms while the test runs
    let t = 1000;
    // (video keyframes every 200 ms: by the time the process restarts, the newest one is newer
    // than the last packet its track delivered, and the restart must start before it)
    const feeder = setInterval(() => {
      for (let i = 0; i < 2; i++, t += 20) {
        if (t % 40 === 0) hub.push({ ...video(t), keyframe: t % 200 === 0 });
        hub.push(audio(t));
      }
    }, 40);
    try {
      await until('output', () => got.packets.length > 20);
      let list = procs.list();
      const [pid, row] = Object.entries(list)[0]!;
      assert.equal(Object.keys(list).length, 1);
      assert.equal(row['source'], 't');
      assert.equal(row['sink'], 't');
      assert.equal(row['process'], 'MKVExec');
      assert.equal(row['status'], 'running');
      assert.equal(row['restarts'], 0);
      assert.equal(row['worker'], 3);
      assert.deepEqual(row['source_tracks'], [2]);
      assert.deepEqual(row['sink_tracks'], [PROCESS_TRACK_BASE]);
      assert.deepEqual((row['ainfo'] as Record<string, unknown>)['cmd'], 'cat');
      assert.equal((row['ainfo'] as Record<string, unknown>)['child_pid'], Number(pid));
      assert.equal(row['terminated'], undefined);

      process.kill(Number(pid), 'SIGKILL');
      await until('the restart', () => Object.values(procs!.list()).some((r) => r['restarts'] === 1 && r['status'] === 'running'));
      list = procs.list();
      const [pid2] = Object.keys(list);
      assert.notEqual(pid2, pid);
      const before = got.packets.length;
      await until('more output after the restart', () => got.packets.length > before + 20);
      const times = got.packets.map((p) => p.timeMs);
      assert.ok(got.packets.every((p) => p.trackId === PROCESS_TRACK_BASE), 'the same track id after the restart');
      // every 20 ms from the first output on: the restart resumed right after the last delivered packet
      for (let i = 1; i < times.length; i++) assert.equal(times[i]! - times[i - 1]!, 20, `at ${i}: ${times.slice(Math.max(0, i - 3), i + 3).join(',')}`);
      for (const p of got.packets) assert.equal(p.data.readUInt32BE(0), p.timeMs, 'the payload of that time');

      // taken out of the config: the process stops and its track leaves the stream
      settings = { source: 'push://', processes: [] };
      for (const fn of changes) fn();
      await until('the track to go', () => !hub.tracks.some((x) => x.id === PROCESS_TRACK_BASE));
      await until('the process to go', () => Object.keys(procs!.list()).length === 0);
    } finally {
      clearInterval(feeder);
    }
  });

  it('a disabled restart policy leaves a dead process terminated in proc_list; the stream end stops the rest', async () => {
    const hubs = new FakeHubs();
    const settings = {
      source: 'push://',
      processes: [
        { process: 'MKVExec', exec: 'cat', track_select: 'video=none&audio=all', restart_type: 'disabled' },
        { process: 'MKVExec', exec: 'cat', track_select: 'video=all&audio=none' },
      ],
    };
    procs?.close();
    // (fed all at once below: the first runs must not wait for their output to keep pace)
    procs = new StreamProcesses({ worker: 0, hubs, settings: () => settings, onConfigChange: () => {}, log: quiet, catchUpMs: 0 });
    const hub = liveHub(1000);
    hubs.hubs.set('u', { hub, local: true });
    hubs.emit('sourceOnline', { name: 'u', hub });
    // first runs start live, at the next keyframe (video: 2000)
    pushRange(hub, 1000, 2100);
    await until('two processes', () => Object.values(procs!.list()).filter((r) => r['status'] === 'running').length === 2, 5000);
    const rows = Object.entries(procs.list());
    const audioRow = rows.find(([, r]) => (r['source_tracks'] as number[])[0] === 2)!;
    const videoRow = rows.find(([, r]) => (r['source_tracks'] as number[])[0] === 1)!;
    process.kill(Number(audioRow[0]), 'SIGKILL');
    await until('the dead one listed as terminated', () => procs!.list()[audioRow[0]]?.['terminated'] === true);
    assert.equal(procs.list()[audioRow[0]]!['status'], 'ended');
    assert.match(String(procs.list()[audioRow[0]]!['last_exit']), /killed by SIGKILL/);
    await sleep(300);
    assert.equal(procs.list()[audioRow[0]]!['restarts'], 0, 'never restarted');
    // the source goes: every process of the stream stops
    hubs.hubs.delete('u');
    hubs.emit('sourceEnd', { name: 'u', hub });
    hub.end('publisher left');
    assert.equal(Object.keys(procs.list()).length, 0);
    await until('the child to exit', () => {
      try {
        process.kill(Number(videoRow[0]), 0);
        return false;
      } catch {
        return true;
      }
    });
  });
});

describe('ensureOpus (the WebRTC helper\'s on-demand AAC -> Opus)', () => {
  class FakeHubs extends TypedEmitter<{ sourceOnline: { name: string; hub: StreamHub }; sourceStart: { name: string; hub: StreamHub }; sourceEnd: { name: string; hub: StreamHub } }> implements ProcessHubs {
    readonly hubs = new Map<string, { hub: StreamHub; local: boolean }>();
    localSource(name: string): StreamHub | undefined {
      const e = this.hubs.get(name);
      return e?.local && !e.hub.isEnded ? e.hub : undefined;
    }
  }
  const dir = tmpDir('haze-ensure-opus-');
  let procs: StreamProcesses | undefined;
  let feeder: NodeJS.Timeout | undefined;
  after(() => {
    clearInterval(feeder);
    procs?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('starts an Opus process for an AAC stream with no processes configured, once; refuses a stream without audio', async () => {
    // real AAC (ffmpeg must decode it), fed to the hub in real time
    const file = path.join(dir, 'a.mkv');
    await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'sine=f=440:sample_rate=48000', '-t', '4', '-c:a', 'aac', file]);
    const { tracks, packets } = demuxMatroska(fs.readFileSync(file));
    const hub = new StreamHub('radio', { sourceGraceMs: 60_000 });
    hub.attachSource();
    hub.setTrack({ ...tracks![0]!, id: 1 });
    const started = Date.now();
    let i = 0;
    const feed = (): void => {
      while (i < packets.length && packets[i]!.timeMs <= Date.now() - started) hub.push({ ...packets[i++]!, trackId: 1 });
    };
    feed();
    feeder = setInterval(feed, 10);
    const hubs = new FakeHubs();
    hubs.hubs.set('radio', { hub, local: true });
    const silent = new StreamHub('silent');
    silent.attachSource();
    silent.setTrack({ ...vp8 });
    silent.push(video(0));
    hubs.hubs.set('silent', { hub: silent, local: true });
    const asked: string[] = [];
    procs = new StreamProcesses({
      worker: 0,
      hubs,
      settings: () => ({ source: 'push://' }),
      onConfigChange: () => {},
      forward: async (stream, request) => {
        asked.push(`${stream} ${String(request['op'])}`);
        return { ok: true, track: 7 };
      },
      log: quiet,
    });
    await until('the stream online', () => hub.online);
    const [a, b] = await Promise.all([procs.ensureOpus('radio'), procs.ensureOpus('radio')]);
    assert.equal(a.ok, true, a.reason);
    assert.deepEqual(b, a, 'asked twice, one process');
    const opus = hub.tracks.find((t) => t.id === a.track)!;
    assert.ok(opus && opus.type === 'audio' && opus.codec === 'opus' && opus.rate === 48000, JSON.stringify(opus));
    assert.ok((await waitForOpus(hub, 10)) === opus);
    const rows = Object.values(procs.list('radio'));
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!['on_demand'], true);
    assert.match(String((rows[0]!['ainfo'] as Record<string, unknown>)['cmd']), /libopus/);
    // an Opus track already there: answered at once
    assert.deepEqual(await procs.ensureOpus('radio', 1), a);
    assert.match(String((await procs.ensureOpus('silent', 100)).reason), /no audio track/);
    // a stream this worker does not host is asked of the worker that does
    assert.deepEqual(await procs.ensureOpus('elsewhere'), { ok: true, track: 7 });
    assert.deepEqual(asked, ['elsewhere proc_ensure_opus']);
  });
});
