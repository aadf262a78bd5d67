// RtmpClient against RtmpServerSession in memory: publishing (plain FLV and Enhanced-RTMP
// bodies reach the sink byte for byte, extended timestamps, large frames), playing (status and
// media events), rejections surfacing as RtmpStatusError, URL parsing, handshake modes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeAmf0 } from '../../src/containers/amf/amf0.js';
import { parseRtmpUrl, RtmpStatusError, type RtmpClientMedia, type RtmpClientStatus } from '../../src/protocols/rtmp/client.js';
import { encodeMessageType0 } from '../../src/protocols/rtmp/chunk-writer.js';
import type { RtmpPlayOutput, RtmpSessionHandler, RtmpStreamRequest } from '../../src/protocols/rtmp/server-session.js';
import { HazeError } from '../../src/util/errors.js';
import { memoryPair } from './rtmp-memory-pair.js';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await tick();
  assert.ok(cond(), `timed out waiting for ${what}`);
}

/** Enhanced RTMP (E-RTMP v1) video tag body: IsExHeader | FrameType | PacketType, FourCC, payload. */
function exVideo(frameType: number, packetType: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x80 | (frameType << 4) | packetType]), Buffer.from('hvc1'), payload]);
}

test('parseRtmpUrl', () => {
  assert.deepEqual(parseRtmpUrl('rtmp://127.0.0.1:1936/live/test'), { host: '127.0.0.1', port: 1936, app: 'live', name: 'test', tcUrl: 'rtmp://127.0.0.1:1936/live' });
  assert.deepEqual(parseRtmpUrl('rtmp://example.com/app/key?token=abc'), { host: 'example.com', port: 1935, app: 'app', name: 'key?token=abc', tcUrl: 'rtmp://example.com/app' });
  assert.deepEqual(parseRtmpUrl('rtmp://[::1]:1935/live/a/b'), { host: '::1', port: 1935, app: 'live', name: 'a/b', tcUrl: 'rtmp://[::1]:1935/live' });
  assert.equal(parseRtmpUrl('rtmp://h/live').name, '');
  assert.throws(() => parseRtmpUrl('http://h/live/x'), HazeError);
  assert.throws(() => parseRtmpUrl('not a url'), HazeError);
});

test('publish Enhanced-RTMP HEVC bodies, metadata, extended timestamps, big frames: sink gets the same bytes', async () => {
  const got: [number, number, Buffer][] = [];
  const reqs: RtmpStreamRequest[] = [];
  let closed = '';
  const handler: RtmpSessionHandler = {
    publish: async (req) => {
      reqs.push(req);
      return { media: (t, ts, b) => got.push([t, ts, Buffer.from(b)]), close: (r) => (closed = r) };
    },
    play: () => Promise.reject(new Error('no')),
  };
  const { client, session } = memoryPair(handler, { fourCcList: ['hvc1'] });
  await client.connect('rtmp://example/live/cam?key=1');
  assert.equal(session.handshakeMode, 'digest');
  await client.publish();
  assert.deepEqual(reqs, [{ app: 'live', name: 'cam?key=1', tcUrl: 'rtmp://example/live', peer: 'memory', publishType: 'live' }]);

  const sent: [number, number, Buffer][] = [];
  const send = (t: 8 | 9, ts: number, b: Buffer): void => {
    sent.push([t, ts, b]);
    client.sendMedia(t, ts, b);
  };
  client.sendMetaData({ width: 1280, height: 720, videocodecid: 'hvc1' });
  send(9, 0, exVideo(1, 0, Buffer.from('0101600000000090000000000099f000fcfdf8f800000f03', 'hex'))); // SequenceStart + hvcC
  const big = Buffer.alloc(100_000, 0x42);
  send(9, 0, exVideo(1, 1, Buffer.concat([Buffer.from([0, 0, 0x21]), big]))); // CodedFrames, CTS 33
  send(8, 0, Buffer.from('af0011900000', 'hex'));
  for (let i = 1; i < 30; i++) send(9, i * 33, exVideo(2, 3, Buffer.from([i, i, i]))); // CodedFramesX
  send(9, 0x1000000 + 5, exVideo(2, 3, Buffer.from([1]))); // past 2^24 ms: extended timestamp
  send(9, 0x1000000 + 38, exVideo(2, 3, Buffer.alloc(9000, 7)));
  await until(() => got.length === sent.length + 1, 'media');
  assert.deepEqual(got[0], [18, 0, encodeAmf0(['onMetaData', { width: 1280, height: 720, videocodecid: 'hvc1' }])]);
  assert.deepEqual(got.slice(1), sent);
  await client.close();
  assert.equal(closed, 'client unpublished');
});

test('play: status events, then the media the source writes', async () => {
  let out!: RtmpPlayOutput;
  const handler: RtmpSessionHandler = {
    publish: () => Promise.reject(new Error('no')),
    play: async (_req, o) => {
      out = o;
      return { close: () => {} };
    },
  };
  const { client } = memoryPair(handler, { digestHandshake: false });
  const statuses: string[] = [];
  const media: RtmpClientMedia[] = [];
  client.on('status', (s: RtmpClientStatus) => statuses.push(s.code));
  client.on('media', (m) => media.push(m));
  await client.connect('rtmp://example/live/cam');
  await client.play();
  assert.deepEqual(statuses, ['NetStream.Play.Reset', 'NetStream.Play.Start']);
  const frames = [Buffer.from('1700000000', 'hex'), Buffer.alloc(20_000, 3), Buffer.from('af01', 'hex')];
  out.write(encodeMessageType0(6, 9, 0, 1, frames[0]!, 4096));
  out.write(encodeMessageType0(6, 9, 40, 1, frames[1]!, 4096));
  out.write(encodeMessageType0(4, 8, 41, 1, frames[2]!, 4096));
  out.end('done');
  await until(() => statuses.includes('NetStream.Play.Stop'), 'Play.Stop');
  assert.deepEqual(
    media.filter((m) => m.typeId !== 18).map((m) => [m.typeId, m.timestamp, m.body.toString('hex')]),
    [
      [9, 0, frames[0]!.toString('hex')],
      [9, 40, frames[1]!.toString('hex')],
      [8, 41, frames[2]!.toString('hex')],
    ],
  );
  assert.equal(media[0]!.typeId, 18, '|RtmpSampleAccess first');
  await client.close();
});

test('a refused publish rejects with RtmpStatusError carrying the server status', async () => {
  const handler: RtmpSessionHandler = {
    publish: () => Promise.reject(new HazeError('HAZE_ERR_BUSY', 'Stream already publishing')),
    play: () => Promise.reject(new Error('no')),
  };
  const { client } = memoryPair(handler);
  let closeReason = '';
  client.on('close', (r) => (closeReason = r));
  await client.connect('rtmp://example/live/cam');
  await assert.rejects(client.publish(), (e: unknown) => e instanceof RtmpStatusError && e.rtmpStatus.code === 'NetStream.Publish.BadName' && e.rtmpStatus.description === 'Stream already publishing');
  await until(() => closeReason !== '', 'close');
  assert.throws(() => client.sendMedia(9, 0, Buffer.alloc(1)), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_CLOSED');
});
