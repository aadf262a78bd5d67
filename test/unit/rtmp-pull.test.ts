// rtmp:// pulls in-process (inputs/pull/rtmp-pull.ts): a tiny RTMP server built from Haze's
// server session plays the FLV fixture's tags; the pull gets the fixture's tracks and every
// packet, ends its connection when the server says the stream was unpublished, and reports a
// refused play as a failure the pull retries (not fatal).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, mistFixtures } from '../helpers.js';
import { HazeError } from '../../src/util/errors.js';
import { Logger } from '../../src/util/log.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { readFlvTags } from '../../src/containers/flv/tags.js';
import type { Packet, Track } from '../../src/media/types.js';
import { handleRtmpSocket } from '../../src/protocols/rtmp/connection.js';
import { encodeMessageType0, RTMP_CSID_AUDIO, RTMP_CSID_DATA, RTMP_CSID_VIDEO, RTMP_PLAY_STREAM_ID, RTMP_SERVER_CHUNK_SIZE } from '../../src/protocols/rtmp/chunk-writer.js';
import type { RtmpPlayOutput, RtmpSessionHandler, RtmpStreamRequest } from '../../src/protocols/rtmp/server-session.js';
import { connectRtmp } from '../../src/inputs/pull/rtmp-pull.js';

const flv = fs.readFileSync(path.join(mistFixtures, 'small.flv'));
const log = new Logger({ test: 'rtmp-pull' });
let server: net.Server;
let port = 0;
const plays: string[] = [];

/** Plays the fixture's tags to `live/small`, then ends the stream (UnpublishNotify, Play.Stop). */
const handler: RtmpSessionHandler = {
  publish: () => Promise.reject(new HazeError('HAZE_ERR_REFUSED', 'no publishing here')),
  play(req: RtmpStreamRequest, out: RtmpPlayOutput) {
    plays.push(req.name);
    if (req.name !== 'small') return Promise.reject(new HazeError('HAZE_ERR_NOT_FOUND', `Stream ${req.name} not found`));
    const chunks = readFlvTags(flv).tags.map((t) => encodeMessageType0(t.type === 8 ? RTMP_CSID_AUDIO : t.type === 9 ? RTMP_CSID_VIDEO : RTMP_CSID_DATA, t.type, t.timeMs, RTMP_PLAY_STREAM_ID, t.body, RTMP_SERVER_CHUNK_SIZE));
    setImmediate(() => {
      out.writev(chunks);
      setTimeout(() => out.end('end of the fixture'), 50);
    });
    return Promise.resolve({ close: () => {} });
  },
};

before(async () => {
  port = await freePort();
  server = net.createServer((socket) => {
    socket.on('error', () => {});
    handleRtmpSocket(socket, handler, log);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
});
after(() => server.close());

class Sink {
  tracks = new Map<number, Track>();
  packets: Packet[] = [];
  setTrack = (t: Track): void => void this.tracks.set(t.id, t);
  removeTrack = (id: number): void => void this.tracks.delete(id);
  push = (p: Packet): void => void this.packets.push(p);
}

test("a pull gets the fixture's tracks and every packet; the server's unpublish ends the connection", async () => {
  const sink = new Sink();
  let bytes: () => { down: number; up: number } = () => ({ down: 0, up: 0 });
  let tracked = 0;
  const conn = await connectRtmp(`rtmp://127.0.0.1:${port}/live/small`, sink, {
    log,
    track: (host, b) => {
      assert.equal(host, '127.0.0.1');
      bytes = b;
      tracked++;
      return { sessionId: 'x', end: () => tracked-- };
    },
  });
  assert.match(await conn.done, /NetStream\.Play\.(UnpublishNotify|Stop)/);
  assert.equal(tracked, 0, 'the statistics session ended with the connection');
  const want = parseFlvFile(flv);
  assert.deepEqual([...sink.tracks.values()].map((t) => t.codec).sort(), want.tracks.map((t) => t.codec).sort());
  assert.equal(sink.packets.length, want.packets.length);
  sink.packets.forEach((p, i) => {
    const w = want.packets[i]!;
    assert.deepEqual([p.trackId, p.timeMs, p.offsetMs, p.keyframe], [w.trackId, w.timeMs, w.offsetMs, w.keyframe], `packet ${i}`);
    assert.ok(p.data.equals(w.data), `packet ${i} payload`);
  });
  assert.ok(bytes().up > flv.length * 0.9, `${bytes().up} bytes counted in`);
});

test('a refused play is a failure the pull retries (not fatal); a closed port too', async () => {
  await assert.rejects(connectRtmp(`rtmp://127.0.0.1:${port}/live/nosuch`, new Sink(), { log }), (e) => e instanceof HazeError && !e.fatal && /not found/i.test(e.message));
  assert.ok(plays.includes('nosuch'));
  const closed = await freePort();
  await assert.rejects(connectRtmp(`rtmp://127.0.0.1:${closed}/live/small`, new Sink(), { log, stepTimeoutMs: 2000 }), (e) => e instanceof HazeError && !e.fatal);
});
