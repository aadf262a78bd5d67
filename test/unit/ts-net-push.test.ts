// TsUdpPush (src/pushes/ts-udp-push.ts) in-process: a StreamHub fed with small.flv's packets in
// one burst is pushed to a UDP socket of the test; the datagrams are 7 TS packets each, spread
// over the media's time instead of sent at once, and demux to the hub's video packets in
// order; the bytes push_list reports are the bytes sent; stop ends it cleanly. A multicast
// target (where loopback multicast works) reaches a member of the group.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { TsDemuxer } from '../../src/containers/ts/demux.js';
import { StreamHub } from '../../src/hub/stream-hub.js';
import type { Packet } from '../../src/media/types.js';
import { splitNalUnits } from '../../src/media/nal-units.js';
import { parsePushTarget } from '../../src/pushes/push-target.js';
import { TsUdpPush } from '../../src/pushes/ts-udp-push.js';
import { mistFixtures, sleep } from '../helpers.js';

const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
const VIDEO_ID = flv.tracks.find((t) => t.type === 'video')!.id;
const GROUP = '239.255.77.23';

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A UDP receiver keeping every datagram and when it came. */
async function receiver(group?: string): Promise<{ port: number; got: { at: number; data: Buffer }[]; close(): void }> {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: !!group });
  const got: { at: number; data: Buffer }[] = [];
  sock.on('message', (data) => got.push({ at: Date.now(), data }));
  await new Promise<void>((r) => sock.bind(0, group ?? '127.0.0.1', r));
  if (group) sock.addMembership(group, '127.0.0.1');
  return { port: sock.address().port, got, close: () => sock.close() };
}

/** Slice NAL units of a length-prefixed access unit (the muxer adds an AUD, parameter sets may be added or kept). */
function slices(data: Buffer): string {
  return splitNalUnits(data, 4)
    .filter((n) => ![6, 7, 8, 9].includes(n[0]! & 0x1f))
    .map((n) => n.toString('hex'))
    .join('|');
}

function liveHub(): StreamHub {
  const hub = new StreamHub('src');
  hub.attachSource();
  for (const t of flv.tracks) hub.setTrack(t);
  return hub;
}

/** The first `ms` of small.flv, as copies (the hub shifts their times). */
function firstMs(ms: number): Packet[] {
  return flv.packets.filter((p) => p.timeMs < ms).map((p) => ({ ...p }));
}

describe('TsUdpPush', () => {
  it('sends 1316-byte datagrams, paced by the media clock, that demux to the hub packets', async () => {
    const rx = await receiver();
    const hub = liveHub();
    const push = new TsUdpPush({ hub, target: parsePushTarget(`tsudp://127.0.0.1:${rx.port}`), url: `tsudp://127.0.0.1:${rx.port}` });
    push.start();
    await until('waiting for the stream', () => push.status().state === 'waiting');
    const packets = firstMs(2000);
    const t0 = Date.now();
    for (const p of packets) hub.push(p); // a burst of 2 s of media
    const want = packets.filter((p) => p.trackId === VIDEO_ID);
    const demuxer = new TsDemuxer();
    const video: Packet[] = [];
    const sizes: number[] = [];
    const take = (): void => {
      for (const d of rx.got.splice(0)) {
        for (const p of demuxer.push(d.data).packets) if (p.trackId === 0x100) video.push(p);
        sizes.push(d.data.length);
      }
    };
    // paced: shortly after the burst, at most about a second of it (plus the time passed) went out
    await sleep(200);
    take();
    const elapsedMs = Date.now() - t0;
    const sentMs = video.length > 0 ? video.at(-1)!.timeMs - video[0]!.timeMs : 0;
    const spanMs = want.at(-1)!.timeMs - want[0]!.timeMs;
    if (elapsedMs < 600) assert.ok(sentMs <= elapsedMs + 1300 && sentMs < spanMs - 300, `${sentMs} ms of ${spanMs} ms of media sent within ${elapsedMs} ms`);
    await until('the video packets', () => {
      take();
      // the last frame waits in the demuxer for a successor
      return video.length >= want.length - 1;
    });
    // whole TS packets; full datagrams but where the stream paused (its end, or a stall of this
    // process on a loaded machine)
    const full = sizes.filter((n) => n === 1316).length;
    assert.ok(sizes.every((n) => n % 188 === 0 && n <= 1316) && full >= sizes.length * 0.9, `datagram sizes: ${sizes.join(', ')}`);
    for (let i = 0; i < video.length; i++) assert.equal(slices(video[i]!.data), slices(want[i]!.data), `video ${i}`);
    assert.equal(video[0]!.keyframe, true);

    await push.stop();
    const end = await push.done;
    assert.equal(end.reason, 'STOPPED');
    await sleep(50);
    const total = sizes.reduce((a, b) => a + b, 0) + rx.got.reduce((a, d) => a + d.data.length, 0);
    assert.equal(total, push.status().bytes, 'every muxed byte was sent (the last short datagram at the stop)');
    rx.close();
  });

  it('multicast: a member of the group gets the stream', async (t) => {
    let rx: Awaited<ReturnType<typeof receiver>>;
    try {
      rx = await receiver(GROUP);
    } catch (err) {
      t.skip(`cannot join a multicast group here: ${String(err)}`);
      return;
    }
    const hub = liveHub();
    const url = `tsudp://${GROUP}:${rx.port}/127.0.0.1`;
    const push = new TsUdpPush({ hub, target: parsePushTarget(`${url}?ttl=1`), url });
    push.start();
    for (const p of firstMs(500)) hub.push(p);
    try {
      await until('datagrams', () => rx.got.length > 5, 2000);
    } catch {
      t.skip('loopback multicast does not deliver here');
    } finally {
      await push.stop();
      rx.close();
    }
  });
});
