// RTMP against real peers, in-process (no Haze server): a tiny test-only server built from
// RtmpServerSession + handleRtmpSocket stores what publishers send and replays it to players
// as encodeMessageType0 bytes. ffmpeg (native RTMP, digest handshake), GStreamer rtmpsink /
// rtmpsrc (librtmp) and rtmp2sink / rtmp2src publish and play against it; ffmpeg must see
// a clear error for refused publishes; our RtmpClient publishes to it for ffprobe and plays
// what ffmpeg published.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, parseFramemd5, run, runOk, sleep, tmpDir } from '../helpers.js';
import { decodeAmf0, amf0Get } from '../../src/containers/amf/amf0.js';
import { readFlvTags } from '../../src/containers/flv/tags.js';
import { handleRtmpSocket } from '../../src/protocols/rtmp/connection.js';
import { encodeMessageType0, RTMP_CSID_AUDIO, RTMP_CSID_DATA, RTMP_CSID_VIDEO, RTMP_PLAY_STREAM_ID, RTMP_SERVER_CHUNK_SIZE } from '../../src/protocols/rtmp/chunk-writer.js';
import { RtmpClient, RtmpStatusError } from '../../src/protocols/rtmp/client.js';
import type { RtmpPlayOutput, RtmpServerSession, RtmpSessionHandler, RtmpStreamRequest } from '../../src/protocols/rtmp/server-session.js';
import { HazeError } from '../../src/util/errors.js';
import { Logger } from '../../src/util/log.js';

interface Stored {
  typeId: 8 | 9 | 18;
  timestampMs: number;
  body: Buffer;
}

interface StoredStream {
  req: RtmpStreamRequest;
  msgs: Stored[];
  live: boolean;
  closeReason: string | null;
}

/** The test-only "hub": keeps published messages per stream name, replays them to players. */
class TestServer implements RtmpSessionHandler {
  readonly streams = new Map<string, StoredStream>();
  readonly sessions: RtmpServerSession[] = [];
  private server: net.Server | null = null;
  port = 0;

  async start(): Promise<void> {
    this.port = await freePort();
    const log = new Logger({ test: 'rtmp-interop' });
    this.server = net.createServer((socket) => this.sessions.push(handleRtmpSocket(socket, this, log)));
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async stop(): Promise<void> {
    for (const s of this.sessions) s.close('test over');
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  url(name: string, app = 'live'): string {
    return `rtmp://127.0.0.1:${this.port}/${app}/${name}`;
  }

  async publish(req: RtmpStreamRequest) {
    const name = req.name.split('?')[0]!;
    if (name === 'secret') throw new HazeError('HAZE_ERR_AUTH', 'Wrong stream key');
    const existing = this.streams.get(name);
    if (name === 'busy' || (existing && existing.live)) throw new HazeError('HAZE_ERR_BUSY', 'Stream already publishing');
    const st: StoredStream = { req, msgs: [], live: true, closeReason: null };
    this.streams.set(name, st);
    return {
      media: (typeId: 8 | 9 | 18, timestampMs: number, body: Buffer) => st.msgs.push({ typeId, timestampMs, body: Buffer.from(body) }),
      close: (reason: string) => {
        st.live = false;
        st.closeReason = reason;
      },
    };
  }

  async play(req: RtmpStreamRequest, out: RtmpPlayOutput) {
    const st = this.streams.get(req.name.split('?')[0]!);
    if (!st || st.msgs.length === 0) throw new HazeError('HAZE_ERR_NOT_FOUND', `Stream ${req.name} not found`);
    // Serialise each message once, as the real hub does, and replay with backpressure.
    const bytes = st.msgs.map((m) =>
      encodeMessageType0(m.typeId === 8 ? RTMP_CSID_AUDIO : m.typeId === 9 ? RTMP_CSID_VIDEO : RTMP_CSID_DATA, m.typeId, m.timestampMs, RTMP_PLAY_STREAM_ID, m.body, RTMP_SERVER_CHUNK_SIZE),
    );
    let i = 0;
    let stopped = false;
    const pump = (): void => {
      while (!stopped && i < bytes.length) {
        if (!out.write(bytes[i++]!)) return; // resume on drain
      }
      if (stopped || i < bytes.length) return;
      stopped = true;
      // As a live stream would, end a moment after the last frame: rtmp2src turns Stream EOF
      // into EOS at once and can drop a frame still queued inside it.
      setTimeout(() => out.end('end of recording'), 200);
      // librtmp (rtmpsrc) does not stop on Play.Stop for live streams: end the connection.
      setTimeout(() => out.close('replay finished'), 500);
    };
    const off = out.onDrain(pump);
    setImmediate(pump);
    return {
      close: () => {
        stopped = true;
        off();
      },
    };
  }
}

const srv = new TestServer();
const dir = tmpDir('haze-rtmp-interop-');
let flvFile = '';

before(async () => {
  await srv.start();
  flvFile = path.join(dir, 'src.flv');
  await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-f', 'lavfi', '-i', 'sine', '-t', '2', '-c:v', 'libx264', '-bf', '2', '-g', '30', '-c:a', 'aac', '-f', 'flv', flvFile]);
});
after(async () => {
  await srv.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const hasGst = async (element: string): Promise<boolean> => {
  try {
    return (await run('gst-inspect-1.0', [element], { timeoutMs: 20_000 })).code === 0;
  } catch {
    return false;
  }
};

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
/** H.264 NAL unit messages (AVCPacketType 1), the frames a demuxer outputs. */
const videoFrames = (st: StoredStream): Stored[] => st.msgs.filter((m) => m.typeId === 9 && m.body[1] === 1);
const audioFrames = (st: StoredStream): Stored[] => st.msgs.filter((m) => m.typeId === 8 && m.body[1] === 1);

test('ffmpeg publishes H.264 + AAC (digest handshake): metadata, sequence headers, frames reach the handler', { timeout: 60_000 }, async () => {
  const r = await run(
    'ffmpeg',
    ['-v', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-f', 'lavfi', '-i', 'sine', '-t', '3', '-c:v', 'libx264', '-bf', '2', '-g', '30', '-c:a', 'aac', '-f', 'flv', srv.url('test')],
    { timeoutMs: 50_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  const st = srv.streams.get('test');
  assert.ok(st);
  assert.equal(st.req.app, 'live');
  assert.equal(st.req.tcUrl, srv.url('test').replace(/\/test$/, ''));
  assert.equal(st.req.publishType, 'live');
  await sleep(100);
  assert.equal(st.closeReason, 'client unpublished');
  const meta = st.msgs.find((m) => m.typeId === 18);
  assert.ok(meta, 'onMetaData received');
  const values = decodeAmf0(meta.body);
  assert.equal(values[0], 'onMetaData', '@setDataFrame stripped');
  assert.equal(amf0Get(values[1]!, 'width'), 320);
  assert.equal(amf0Get(values[1]!, 'height'), 180);
  const firstVideo = st.msgs.find((m) => m.typeId === 9)!;
  assert.deepEqual([...firstVideo.body.subarray(0, 2)], [0x17, 0x00], 'AVC sequence header first');
  const firstAudio = st.msgs.find((m) => m.typeId === 8)!;
  assert.deepEqual([...firstAudio.body.subarray(0, 2)], [0xaf, 0x00], 'AAC sequence header first');
  assert.equal(videoFrames(st).length, 90);
  assert.ok(audioFrames(st).length >= 125, `audio frames: ${audioFrames(st).length}`);
  const ffmpegSession = srv.sessions.find((s) => s.handshakeMode === 'digest');
  assert.ok(ffmpegSession, 'ffmpeg used the digest handshake and it validated');
});

test('ffprobe plays the stored stream: H.264 320x180 and AAC', { timeout: 60_000 }, async () => {
  const out = await runOk('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', srv.url('test')], { timeoutMs: 50_000 });
  const streams = (JSON.parse(out.toString()) as { streams: { codec_name: string; width?: number; height?: number }[] }).streams;
  const v = streams.find((s) => s.codec_name === 'h264');
  assert.ok(v, JSON.stringify(streams));
  assert.equal(v.width, 320);
  assert.equal(v.height, 180);
  assert.ok(streams.some((s) => s.codec_name === 'aac'));
});

test('ffmpeg plays every frame byte for byte (framemd5 of copied packets)', { timeout: 60_000 }, async () => {
  const st = srv.streams.get('test')!;
  const out = await runOk('ffmpeg', ['-v', 'error', '-i', srv.url('test'), '-map', '0:v', '-map', '0:a', '-c', 'copy', '-f', 'framemd5', '-'], { timeoutMs: 50_000 });
  const frames = parseFramemd5(out.toString());
  const video = frames.filter((f) => f.stream === 0);
  const audio = frames.filter((f) => f.stream === 1);
  // The FLV demuxer strips the 5-byte AVC header (type, packet type, CTS) and 2-byte AAC header.
  assert.deepEqual(
    video.map((f) => f.hash),
    videoFrames(st).map((m) => md5(m.body.subarray(5))),
  );
  assert.deepEqual(
    audio.map((f) => f.hash),
    audioFrames(st).map((m) => md5(m.body.subarray(2))),
  );
});

/**
 * Plays `url` with a GStreamer RTMP source into flvdemux and dumps the demuxed video and audio
 * elementary streams to files; stops when they hold `want` bytes (librtmp's rtmpsrc never
 * ends a live stream by itself: it reconnects and resumes) or when the pipeline exits.
 */
async function gstPlayDump(element: string, url: string, want: { video: number; audio: number }): Promise<{ video: Buffer; audio: Buffer; log: string }> {
  const v = path.join(dir, `${element}-v.bin`);
  const a = path.join(dir, `${element}-a.bin`);
  const child = spawn(
    'gst-launch-1.0',
    [element, `location=${url}`, '!', 'flvdemux', 'name=d', 'd.video', '!', 'queue', '!', 'filesink', `location=${v}`, 'buffer-mode=2', 'd.audio', '!', 'queue', '!', 'filesink', `location=${a}`, 'buffer-mode=2'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const size = (f: string): number => (fs.existsSync(f) ? fs.statSync(f).size : 0);
  const deadline = Date.now() + 30_000;
  let done = false;
  void exited.then(() => (done = true));
  while (!done && Date.now() < deadline && (size(v) < want.video || size(a) < want.audio)) await sleep(100);
  if (!done) child.kill('SIGKILL');
  await exited;
  return { video: fs.existsSync(v) ? fs.readFileSync(v) : Buffer.alloc(0), audio: fs.existsSync(a) ? fs.readFileSync(a) : Buffer.alloc(0), log };
}

for (const element of ['rtmpsrc', 'rtmp2src']) {
  test(`GStreamer ${element} plays the stored stream: flvdemux output equals the published frames`, { timeout: 60_000 }, async (t) => {
    if (!(await hasGst(element))) {
      t.skip(`${element} not installed`);
      return;
    }
    const st = srv.streams.get('test')!;
    // flvdemux outputs H.264 frames without the 5-byte AVC tag header, AAC without 2 bytes.
    const video = Buffer.concat(videoFrames(st).map((m) => m.body.subarray(5)));
    const audio = Buffer.concat(audioFrames(st).map((m) => m.body.subarray(2)));
    const got = await gstPlayDump(element, srv.url('test'), { video: video.length, audio: audio.length });
    assert.ok(got.video.length >= video.length, `video ${got.video.length} of ${video.length} bytes\n${got.log.slice(-2000)}`);
    assert.ok(got.video.subarray(0, video.length).equals(video), 'video frames byte for byte');
    assert.ok(got.audio.length >= audio.length, `audio ${got.audio.length} of ${audio.length} bytes`);
    assert.ok(got.audio.subarray(0, audio.length).equals(audio), 'audio frames byte for byte');
  });
}

test('ffmpeg sees a clear error when a publish is refused', { timeout: 60_000 }, async () => {
  for (const [name, message] of [
    ['busy', 'Stream already publishing'],
    ['secret', 'Wrong stream key'],
  ]) {
    const r = await run('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=160x90:r=10', '-t', '1', '-c:v', 'libx264', '-f', 'flv', srv.url(name!)], { timeoutMs: 50_000 });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`Server error: ${message}`));
  }
  const r = await run('ffprobe', ['-v', 'error', srv.url('nothing-here')], { timeoutMs: 50_000 });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Server error: Stream nothing-here not found/);
});

for (const element of ['rtmpsink', 'rtmp2sink']) {
  test(`GStreamer ${element} publishes an FLV file`, { timeout: 60_000 }, async (t) => {
    if (!(await hasGst(element))) {
      t.skip(`${element} not installed`);
      return;
    }
    const name = `gst-${element}`;
    const r = await run(
      'gst-launch-1.0',
      ['-e', 'filesrc', `location=${flvFile}`, '!', 'flvdemux', 'name=d', 'd.video', '!', 'queue', '!', 'h264parse', '!', 'flvmux', 'name=m', 'streamable=true', '!', element, `location=${srv.url(name)}`, 'd.audio', '!', 'queue', '!', 'aacparse', '!', 'm.'],
      { timeoutMs: 50_000 },
    );
    assert.equal(r.code, 0, r.stderr + r.stdout.toString().slice(-2000));
    await sleep(200);
    const st = srv.streams.get(name);
    assert.ok(st);
    assert.equal(videoFrames(st).length, 60);
    assert.ok(audioFrames(st).length > 80);
  });
}

test('RtmpClient publishes an ffmpeg-made FLV; ffprobe plays it back', { timeout: 60_000 }, async () => {
  const { tags } = readFlvTags(fs.readFileSync(flvFile));
  const client = new RtmpClient();
  await client.connect(srv.url('fromclient'));
  await client.publish();
  for (const tag of tags) {
    if (tag.type === 18) client.sendData(tag.body, tag.timeMs);
    else if (!client.sendMedia(tag.type as 8 | 9, tag.timeMs, tag.body)) await client.drain();
  }
  await client.close();
  const st = srv.streams.get('fromclient')!;
  assert.equal(st.msgs.length, tags.length);
  assert.ok(st.msgs.every((m, i) => m.body.equals(tags[i]!.type === 18 ? tags[i]!.body : tags[i]!.body) && m.timestampMs === tags[i]!.timeMs));
  const out = await runOk('ffprobe', ['-v', 'error', '-count_packets', '-show_streams', '-of', 'json', srv.url('fromclient')], { timeoutMs: 50_000 });
  const streams = (JSON.parse(out.toString()) as { streams: { codec_name: string; nb_read_packets?: string }[] }).streams;
  assert.equal(streams.find((s) => s.codec_name === 'h264')?.nb_read_packets, '60');
});

test('RtmpClient plays what ffmpeg published; a refused play rejects with the status', { timeout: 60_000 }, async () => {
  const st = srv.streams.get('test')!;
  const client = new RtmpClient();
  const media: { typeId: number; timestamp: number; body: Buffer }[] = [];
  const codes: string[] = [];
  client.on('media', (m) => media.push(m));
  client.on('status', (s) => codes.push(s.code));
  await client.connect(srv.url('test'));
  await client.play();
  await new Promise<void>((resolve) => client.on('close', () => resolve()));
  assert.deepEqual(codes, ['NetStream.Play.Reset', 'NetStream.Play.Start', 'NetStream.Play.UnpublishNotify', 'NetStream.Play.Stop']);
  const av = media.filter((m) => m.typeId !== 18);
  assert.equal(av.length, st.msgs.filter((m) => m.typeId !== 18).length);
  assert.ok(av.every((m, i) => m.body.equals(st.msgs.filter((x) => x.typeId !== 18)[i]!.body)));

  const refused = new RtmpClient();
  await refused.connect(srv.url('missing'));
  await assert.rejects(refused.play(), (e: unknown) => e instanceof RtmpStatusError && e.rtmpStatus.code === 'NetStream.Play.StreamNotFound');
});
