// reconnectingPull (src/inputs/pull/pull-input.ts) against a real StreamHub and fake
// connections: backoff doubling, giving up after failed first connects, a fatal error aborting
// at once, timelines rebased across connections, the outage grace that ends a stream whose
// source never comes back, and a dead connection's late output kept away from its successor.

import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamHub } from '../../src/hub/stream-hub.js';
import { reconnectingPull, withoutCredentials, type PullConnection, type PullContext, type PullSink } from '../../src/inputs/pull/pull-input.js';
import type { Packet, Track } from '../../src/media/types.js';
import { NO_TRACKING } from '../../src/stats/tracker.js';
import { HazeError } from '../../src/util/errors.js';
import { Logger, setLogLevel } from '../../src/util/log.js';
import { sleep } from '../helpers.js';

setLogLevel('error');

const video: Track = { id: 1, type: 'video', codec: 'H264', init: Buffer.from([1]), bps: 0, lang: 'und', width: 320, height: 180, fpks: 25000 };
const vp = (t: number, key = false): Packet => ({ trackId: 1, timeMs: t, offsetMs: 0, keyframe: key, data: Buffer.alloc(10) });

interface Harness {
  hub: StreamHub;
  ctx: PullContext;
  aborts: [string, string][];
  /** The first abort's reasons; fails after 3 s instead of hanging. */
  aborted(): Promise<[string, string]>;
}

function harness(graceMs?: number): Harness {
  const hub = new StreamHub('pulled', graceMs !== undefined ? { sourceGraceMs: graceMs } : {});
  hub.attachSource(); // the caller (HubManager.startPublish) attaches the first source
  const aborts: [string, string][] = [];
  let onAbort!: (a: [string, string]) => void;
  const first = new Promise<[string, string]>((r) => (onAbort = r));
  const aborted = (): Promise<[string, string]> => {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the pull did not abort within 3 s')), 3000)));
    return Promise.race([first, limit]).finally(() => clearTimeout(timer));
  };
  const ctx: PullContext = {
    name: 'pulled',
    source: 'fake://source',
    hub,
    tracker: NO_TRACKING,
    log: new Logger(),
    aborted: (m, h) => {
      aborts.push([m, h]);
      onAbort([m, h]);
    },
  };
  return { hub, ctx, aborts, aborted };
}

/** A connection the test ends by hand. */
function fakeConnection(): PullConnection & { end(why?: string): void; fail(err: Error): void; closed: boolean } {
  let resolve!: (why: string) => void;
  let reject!: (err: Error) => void;
  const done = new Promise<string>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const c = {
    done,
    closed: false,
    close() {
      c.closed = true;
      resolve('closed');
    },
    end: (why = 'source ended') => resolve(why),
    fail: (err: Error) => reject(err),
  };
  return c;
}

async function until(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

describe('reconnectingPull', () => {
  // the pull's retry timers are unref'd (they must not keep a worker alive): hold the loop open
  let keepAlive: NodeJS.Timeout;
  before(() => (keepAlive = setInterval(() => {}, 1000)));
  after(() => clearInterval(keepAlive));

  it('backs off doubling between failed connects and gives up after maxInitialFailures', async () => {
    const h = harness();
    const times: number[] = [];
    const pull = reconnectingPull(
      h.ctx,
      async () => {
        times.push(Date.now());
        throw new Error('connection refused');
      },
      { minDelayMs: 100, maxDelayMs: 1000, maxInitialFailures: 4 },
    );
    const [machine, human] = await h.aborted();
    pull.stop();
    assert.equal(machine, 'CONNECT_FAILED');
    assert.match(human, /connection refused \(4 attempts\)/);
    assert.equal(times.length, 4);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // 100, 200, 400 ms: timers fire late (a loaded machine: generously), never early
    for (const [i, want] of [100, 200, 400].entries()) {
      assert.ok(gaps[i]! >= want - 2 && gaps[i]! < want + 250, `gap ${i} is ${gaps[i]} ms, want about ${want}`);
    }
    assert.equal(h.aborts.length, 1);
  });

  it('caps the backoff at maxDelayMs and, once connected, never gives up on failed reconnects', async () => {
    const h = harness();
    const times: number[] = [];
    let n = 0;
    const pull = reconnectingPull(
      h.ctx,
      async () => {
        times.push(Date.now());
        if (++n === 1) {
          const c = fakeConnection();
          setTimeout(() => c.end(), 5);
          return c;
        }
        throw new Error('gone');
      },
      { minDelayMs: 10, maxDelayMs: 30, maxInitialFailures: 1 },
    );
    await until(() => times.length >= 7, '7 attempts');
    pull.stop();
    assert.equal(h.aborts.length, 0, 'a pull that connected once keeps trying');
    const gaps = times.slice(2).map((t, i) => t - times[i + 1]!);
    // 10, 20, then 30 each time (a doubling without the cap would reach 80 and 160)
    assert.ok(gaps.slice(2).every((g) => g >= 28) && Math.min(...gaps.slice(3)) < 75, `capped gaps: ${gaps.join(', ')}`);
  });

  it('aborts at once on a fatal HazeError', async () => {
    const h = harness();
    let calls = 0;
    reconnectingPull(
      h.ctx,
      async () => {
        calls++;
        throw new HazeError('HAZE_ERR_AUTH', 'bad credentials');
      },
      { minDelayMs: 5 },
    );
    const [machine, human] = await h.aborted();
    assert.equal(machine, 'CONNECT_REFUSED');
    assert.match(human, /bad credentials/);
    await sleep(30);
    assert.equal(calls, 1);
  });

  it('starts the first connection at 0 and continues the timeline with the next', async () => {
    const h = harness();
    const seen: number[] = [];
    h.hub.subscribe({ onPacket: (p) => seen.push(p.timeMs), onTracks: () => {}, onEnd: () => {} });
    const conns: ReturnType<typeof fakeConnection>[] = [];
    const sinks: PullSink[] = [];
    const pull = reconnectingPull(
      h.ctx,
      async (sink) => {
        const c = fakeConnection();
        conns.push(c);
        sinks.push(sink);
        return c;
      },
      { minDelayMs: 5 },
    );
    await until(() => sinks.length === 1, 'first connection');
    sinks[0]!.setTrack(video);
    for (let t = 5000; t <= 6000; t += 40) sinks[0]!.push(vp(t, t % 1000 === 0));
    assert.equal(seen[0], 0, 'first connection rebased to 0');
    assert.equal(seen.at(-1), 1000);
    assert.ok(h.hub.online);
    conns[0]!.end('eof');
    await until(() => sinks.length === 2, 'second connection');
    assert.equal(h.hub.tracks.length, 0, 'tracks reset while the source is away');
    assert.equal(h.hub.online, false);
    // the new source's clock starts over (a restarted encoder): the hub continues after 1000
    sinks[1]!.setTrack(video);
    for (let t = 100; t <= 500; t += 40) sinks[1]!.push(vp(t, t === 100));
    const second = seen.slice(seen.indexOf(1000) + 1);
    assert.ok(second.length > 0 && second[0]! > 1000, `continues after 1000: ${second[0]}`);
    for (let i = 1; i < second.length; i++) assert.equal(second[i]! - second[i - 1]!, 40, 'spacing kept');
    assert.ok(h.hub.online);
    pull.stop();
    assert.equal(conns[1]!.closed, true, 'stop closes the current connection');
  });

  it('starts at 0 also when the first connect failed', async () => {
    const h = harness();
    const seen: number[] = [];
    h.hub.subscribe({ onPacket: (p) => seen.push(p.timeMs), onTracks: () => {}, onEnd: () => {} });
    let n = 0;
    const pull = reconnectingPull(
      h.ctx,
      async (sink) => {
        if (++n === 1) throw new Error('not yet');
        sink.setTrack(video);
        sink.push(vp(7000, true));
        sink.push(vp(7040));
        return fakeConnection();
      },
      { minDelayMs: 5 },
    );
    await until(() => seen.length === 2, 'packets of the second attempt');
    pull.stop();
    assert.deepEqual(seen, [0, 40]);
  });

  it('a dead connection cannot feed the hub after it ended', async () => {
    const h = harness();
    const sinks: PullSink[] = [];
    const conns: ReturnType<typeof fakeConnection>[] = [];
    const pull = reconnectingPull(
      h.ctx,
      async (sink) => {
        sinks.push(sink);
        const c = fakeConnection();
        conns.push(c);
        return c;
      },
      { minDelayMs: 20 },
    );
    await until(() => sinks.length === 1, 'first connection');
    sinks[0]!.setTrack(video);
    sinks[0]!.push(vp(0, true));
    conns[0]!.fail(new Error('reset'));
    await sleep(5);
    // late output of the first connection (a process's last bytes) while the pull waits to reconnect
    sinks[0]!.setTrack(video);
    sinks[0]!.push(vp(40, true));
    assert.equal(h.hub.tracks.length, 0, 'the ended connection set no track');
    assert.equal(h.hub.lastMs, 0, 'the ended connection pushed nothing');
    pull.stop();
  });

  it('ends the stream when the source stays away past the outage grace, even while reconnects fail', async () => {
    const h = harness();
    let n = 0;
    const pull = reconnectingPull(
      h.ctx,
      async (sink) => {
        if (++n > 1) throw new Error('still down');
        const c = fakeConnection();
        sink.setTrack(video);
        sink.push(vp(0, true));
        setTimeout(() => c.end(), 5);
        return c;
      },
      { minDelayMs: 10, maxDelayMs: 10, outageGraceMs: 150 },
    );
    const [machine] = await h.aborted();
    pull.stop();
    assert.equal(machine, 'HUB_ENDED');
    assert.ok(h.hub.isEnded);
    assert.ok(n >= 3, `reconnects were tried meanwhile (${n})`);
  });

  it('closes a connection that completes after stop()', async () => {
    const h = harness();
    const c = fakeConnection();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pull = reconnectingPull(h.ctx, async () => {
      await gate;
      return c;
    });
    pull.stop();
    release();
    await until(() => c.closed, 'late connection closed');
    assert.equal(h.aborts.length, 0);
  });
});

test('source URLs in log lines keep their credentials out', () => {
  assert.equal(withoutCredentials('rtsp://admin:secret@cam.local:554/stream1'), 'rtsp://***@cam.local:554/stream1');
  assert.equal(withoutCredentials('rtsp://cam.local/a@b'), 'rtsp://cam.local/a@b');
  assert.equal(withoutCredentials('ts-exec:ffmpeg -i x -f mpegts -'), 'ts-exec:ffmpeg -i x -f mpegts -');
});
