// RTSP against real peers (issue 7 item 2), on one two-worker Haze:
// - ffmpeg publishes H.264 (B-frames) + AAC over RTSP with `-rtsp_transport tcp` and `udp` at
//   the same time; ffmpeg plays each back over the other transport and GStreamer's rtspsrc
//   plays one; the video's NAL units and the audio frames each player got are a run of the
//   source's, compared by md5 of the data (-c copy: timestamps are the RTP path's own).
// - A pull: Haze's stream `cam` has `rtsp://user:pass@...` as its source, served by GStreamer's
//   RTSP server (gst-rtsp-server through python3-gi, with Digest authentication: ffmpeg cannot
//   serve RTSP playback, `-rtsp_flags listen` only receives). An FLV viewer gets the source's
//   packets; the server is killed and started again and the same viewer gets data again.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { splitAnnexB } from '../../src/media/nal-units.js';
import { connectionsTo, freePort, parseFramemd5, pollUntil, run, runOk, tmpDir, type FrameLine } from '../helpers.js';
import { exited, startHaze, type HazeInstance } from './harness.js';
import { openStream } from './stream-probe.js';

const dir = tmpDir('haze-rtsp-');
const SRC = path.join(dir, 'src.mp4');
/** Seconds each publisher sends. */
const PUBLISH_S = 2;

/** GStreamer's RTSP server playing a file at /test, with Digest credentials user:pass. */
const SERVER_PY = `
import sys, gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtsp', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtsp, GstRtspServer, GLib
Gst.init(None)
port, src = sys.argv[1], sys.argv[2]
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch('( filesrc location=%s ! qtdemux name=d d.video_0 ! queue ! h264parse ! rtph264pay name=pay0 pt=96 d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )' % src)
auth = GstRtspServer.RTSPAuth()
token = GstRtspServer.RTSPToken()
token.set_string('media.factory.role', 'user')
auth.add_digest('user', 'pass', token)
auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
server.set_auth(auth)
factory.add_role_from_structure(Gst.Structure.from_string('user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true')[0])
server.get_mount_points().add_factory('/test', factory)
server.attach(None)
print('ready', flush=True)
GLib.MainLoop().run()
`;

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

/** The NAL units of an Annex B stream (md5 and type), parameter sets and delimiters left out (RTP carries them its own way). */
function nalUnits(annexB: Buffer): Array<{ hash: string; type: number }> {
  return splitAnnexB(annexB)
    .filter((n) => ![7, 8, 9].includes(n[0]! & 0x1f))
    .map((n) => ({ hash: md5(n), type: n[0]! & 0x1f }));
}
const nalHashes = (annexB: Buffer): string[] => nalUnits(annexB).map((n) => n.hash);

/** framemd5 packets with their times in seconds (from the `#tb` lines). */
function timedFrames(text: string): Array<FrameLine & { ptsS: number }> {
  const tb = new Map<number, number>();
  for (const m of text.matchAll(/^#tb (\d+): (\d+)\/(\d+)$/gm)) tb.set(Number(m[1]), Number(m[2]) / Number(m[3]));
  return parseFramemd5(text).map((f) => ({ ...f, ptsS: f.pts * (tb.get(f.stream) ?? NaN) }));
}

/** Asserts `got` is a run of consecutive entries of `source` of at least `min`; returns where it starts. */
function assertRun(source: string[], got: string[], what: string, min: number): number {
  assert.ok(got.length >= min, `${what}: only ${got.length} (want ${min})`);
  const at = source.indexOf(got[0]!);
  assert.ok(at >= 0, `${what}: the first one is not the source's`);
  for (let i = 0; i < got.length; i++) assert.equal(got[i], source[at + i], `${what}: ${i} differs from the source's ${at + i}`);
  return at;
}

function startServer(port: number): Promise<ChildProcess> {
  const p = spawn('/usr/bin/python3', [path.join(dir, 'rtsp-server.py'), String(port), SRC], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(p);
    });
    p.once('exit', (code) => reject(new Error(`RTSP server exited ${code}: ${err}`)));
  });
}

async function stop(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  p.kill('SIGKILL');
  await exited(p);
}

describe('RTSP: ffmpeg and GStreamer publish, play and serve pulls', { timeout: 60_000 }, () => {
  let haze: HazeInstance;
  let server: ChildProcess | undefined;
  let serverPort = 0;
  /** The source file, its md5s and the pull's server: awaited in `after` too, so a failed start leaves no server running. */
  let source: Promise<void> | undefined;
  let srcNals: string[];
  /** The frame (decode order) each of the source's NAL units belongs to. */
  let srcNalFrame: number[];
  let srcAudio: string[];
  /** The source's packets with their times (stream 0 video, 1 audio). */
  let srcTimed: Array<FrameLine & { ptsS: number }>;
  /** The source's packets as FLV carries them (video AVCC), stream 0 video, 1 audio. */
  let srcFlvVideo: string[];
  const started = Date.now();

  before(async () => {
    fs.writeFileSync(path.join(dir, 'rtsp-server.py'), SERVER_PY);
    serverPort = await freePort();
    // 6 s of H.264 (3 B-frames, a keyframe a second) + AAC: publishers send 2 s, the pull's server plays it all
    source = (async () => {
      await runOk('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-f', 'lavfi', '-i', 'sine=f=440:sample_rate=48000', '-t', '6', '-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '3', '-g', '30', '-c:a', 'aac', SRC]);
      const [nals, frames, srv] = await Promise.all([
        runOk('ffmpeg', ['-v', 'error', '-i', SRC, '-map', '0:v', '-c', 'copy', '-f', 'h264', '-']),
        runOk('ffmpeg', ['-v', 'error', '-i', SRC, '-c', 'copy', '-f', 'framemd5', '-']),
        startServer(serverPort),
      ]);
      server = srv;
      const units = nalUnits(nals);
      srcNals = units.map((u) => u.hash);
      let frame = 0;
      srcNalFrame = units.map((u) => (u.type === 1 || u.type === 5 ? frame++ : frame));
      srcTimed = timedFrames(frames.toString());
      srcFlvVideo = srcTimed.filter((f) => f.stream === 0).map((f) => f.hash);
      srcAudio = srcTimed.filter((f) => f.stream === 1).map((f) => f.hash);
    })();
    [haze] = await Promise.all([startHaze({ workers: 1, config: { streams: { live: { source: 'push://127.0.0.1' }, cam: { source: `rtsp://user:pass@127.0.0.1:${serverPort}/test` } } } }), source]);
    console.log(`# setup: ${Date.now() - started} ms`);
  }, { timeout: 40_000 });
  after(async () => {
    await source?.catch(() => undefined);
    await stop(server);
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    console.log(`# total: ${Date.now() - started} ms`);
  });

  it('ffmpeg publishes over TCP and UDP; ffmpeg plays back over UDP and TCP and GStreamer over TCP, with the source packets', async () => {
    const t0 = Date.now();
    const url = (name: string): string => `rtsp://127.0.0.1:${haze.ports.rtsp}/${name}`;
    const publish = (name: string, transport: string): ChildProcess =>
      spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-re', '-t', String(PUBLISH_S), '-i', SRC, '-c', 'copy', '-f', 'rtsp', '-rtsp_transport', transport, url(name)], { stdio: ['ignore', 'ignore', 'inherit'] });
    /** ffmpeg playing `name`: the video as Annex B and its packet times, the audio frames' md5s and times. */
    const play = async (name: string, transport: string): Promise<{ nals: string[]; audio: string[]; videoTimes: number[]; audioTimes: number[] }> => {
      const v = path.join(dir, `${name}.h264`);
      const vt = path.join(dir, `${name}.v.md5`);
      const a = path.join(dir, `${name}.md5`);
      const r = await run('ffmpeg', ['-v', 'error', '-rtsp_transport', transport, '-i', url(name), '-map', '0:v', '-c', 'copy', '-f', 'h264', v, '-map', '0:v', '-c', 'copy', '-f', 'framemd5', vt, '-map', '0:a', '-c', 'copy', '-f', 'framemd5', a], { timeoutMs: 20_000 });
      assert.equal(r.code, 0, `ffmpeg playing ${name} over ${transport}: ${r.stderr}`);
      const audio = timedFrames(fs.readFileSync(a, 'utf8'));
      return { nals: nalHashes(fs.readFileSync(v)), audio: audio.map((f) => f.hash), videoTimes: timedFrames(fs.readFileSync(vt, 'utf8')).map((f) => f.ptsS), audioTimes: audio.map((f) => f.ptsS) };
    };
    const gst = async (name: string): Promise<string[]> => {
      const v = path.join(dir, `${name}.gst.h264`);
      // (rtspsrc ends with an error when the server closes the connection at the stream's end)
      await run('gst-launch-1.0', ['-q', 'rtspsrc', `location=${url(name)}`, 'protocols=tcp', 'name=s', 's.', '!', 'application/x-rtp,media=video', '!', 'rtph264depay', '!', 'h264parse', '!', 'video/x-h264,stream-format=byte-stream,alignment=au', '!', 'filesink', `location=${v}`, 's.', '!', 'application/x-rtp,media=audio', '!', 'rtpmp4gdepay', '!', 'fakesink'], { timeoutMs: 20_000 });
      return nalHashes(fs.readFileSync(v));
    };
    // the players first: DESCRIBE waits up to 5 s for a stream to come online, and the publishers
    // start once all three are connected. (A player that starts late, as the 2 s stream ends,
    // can miss it; GStreamer's pipeline then waits forever for an audio pad that never comes.)
    const players = Promise.all([play('live+tcp', 'udp'), play('live+udp', 'tcp'), gst('live+tcp')]);
    const waited = await pollUntil('the three players connected', () => connectionsTo(haze.ports.rtsp!) >= 3 || undefined, 15_000, 20).then(() => true, () => false);
    const pubs = [publish('live+tcp', 'tcp'), publish('live+udp', 'udp')];
    const [overUdp, overTcp, viaGst] = await players;
    assert.ok(waited, 'the players connected');
    for (const p of pubs) assert.equal(await exited(p), 0, 'publisher exits cleanly');
    // a player starts at a keyframe (the first when it was there before the stream, a later one when
    // it came late) and gets everything after it to the end of what was published
    const frames = PUBLISH_S * 30;
    /** Checks a player's NAL units: a run of the source's from a keyframe to about the end; returns its first frame. */
    const checkVideo = (got: string[], what: string): number => {
      const at = assertRun(srcNals, got, `${what} video`, 25);
      const first = srcNalFrame[at]!;
      assert.equal(first % 30, 0, `${what}: starts at a keyframe (frame ${first})`);
      assert.ok(srcNalFrame[at + got.length - 1]! >= frames - 5, `${what}: ends at frame ${srcNalFrame[at + got.length - 1]} of ${frames}`);
      return first;
    };
    for (const [what, got] of [
      ['TCP publish -> UDP play', overUdp],
      ['UDP publish -> TCP play', overTcp],
    ] as const) {
      const firstFrame = checkVideo(got.nals, what);
      const audioAt = assertRun(srcAudio, got.audio, `${what} audio`, 40);
      // lip sync: the RTCP sender reports put video and audio on one clock, as in the source (the
      // player's first video packet may lack a time)
      const k = got.videoTimes.findIndex((t) => Number.isFinite(t) && t > -1e6);
      const srcVideo = srcTimed.filter((f) => f.stream === 0);
      const srcAudioTimed = srcTimed.filter((f) => f.stream === 1);
      const gotOffset = got.videoTimes[k]! - got.audioTimes[0]!;
      const srcOffset = srcVideo[firstFrame + k]!.ptsS - srcAudioTimed[audioAt]!.ptsS;
      assert.ok(Math.abs(gotOffset - srcOffset) <= 0.005, `${what}: video is ${((gotOffset - srcOffset) * 1000).toFixed(1)} ms off the audio (video ${k}: ${got.videoTimes.slice(0, 4).join(' ')}; audio ${audioAt}: ${got.audioTimes.slice(0, 3).join(' ')})`);
    }
    checkVideo(viaGst, 'GStreamer');
    console.log(`# publish+play: ${overUdp.nals.length}/${overTcp.nals.length}/${viaGst.length} NAL units and ${overUdp.audio.length}/${overTcp.audio.length} audio frames matched in ${Date.now() - t0} ms`);
  });

  it('pulls rtsp:// with Digest credentials into an FLV viewer, and recovers when the source server restarts', async () => {
    const t0 = Date.now();
    const probe = await openStream(haze.httpUrl('/cam.flv'));
    assert.equal(probe.status, 200);
    const first = parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', haze.httpUrl('/cam.flv'), '-t', '1.5', '-c', 'copy', '-f', 'framemd5', '-'], { timeoutMs: 15_000 })).toString());
    const v1 = first.filter((f) => f.stream === 0).map((f) => f.hash);
    assertRun(srcFlvVideo, v1, 'pulled video', 30);
    assertRun(srcAudio, first.filter((f) => f.stream === 1).map((f) => f.hash), 'pulled audio', 50);
    const t1 = Date.now();
    // the source goes away and comes back: the viewer that stayed gets data again
    await stop(server);
    const before = probe.bytes();
    server = await startServer(serverPort);
    await probe.more(30_000, 10_000);
    const recovered = Date.now() - t1;
    assert.ok(probe.bytes() > before, 'the viewer got more data');
    const again = parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', haze.httpUrl('/cam.flv'), '-t', '1', '-c', 'copy', '-f', 'framemd5', '-'], { timeoutMs: 15_000 })).toString());
    assertRun(srcFlvVideo, again.filter((f) => f.stream === 0).map((f) => f.hash), 'pulled video after the restart', 20);
    assert.equal(probe.closed(), false, 'the viewer stayed connected');
    probe.close();
    console.log(`# pull: ${v1.length} video packets matched in ${t1 - t0} ms; data again ${recovered} ms after the source was killed`);
  });
});
