// WebRTC in headless Chromium (Debian's chromium driven by playwright-core) against one Haze:
// a page publishes its fake camera and microphone over WHIP (H.264 + Opus), another page plays
// the stream over WHEP and decodes frames; an RTMP-published H.264 (B-frames) + AAC stream plays
// over WHEP, its audio through the on-demand Opus process; the /webrtc/ WebSocket signalling
// plays too; DELETE ends a session, PATCH is 405. The Haze under test drops 5% of the SRTP
// datagrams it sends (HAZE_TEST_UDP_DROP, a test switch), so every WHEP viewer here decodes
// through NACK retransmissions, which the test counts on both sides.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../browser.js';
import { pollUntil, runOk, sleep } from '../helpers.js';
import { publishTestPattern, startHaze, type HazeInstance } from './harness.js';
import { controlWorker } from '../../src/protocols/dtsc/relay.js';
import { runPaths, workerSocketPath } from '../../src/util/run-dir.js';

// Chromium's fake camera and microphone, and host candidates on loopback too, so the media stays on 127.0.0.1
const WEBRTC_ARGS = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection'];
const DROP = 0.05;

/** The page's WebRTC helpers (run in the browser; the test is compiled without the DOM library). */
const PAGE = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>haze webrtc</title></head><body><script>
window.publish = async (url, videoCodec) => {
  if (window.pub) window.pub.pc.close();
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 320, height: 240, frameRate: 30 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const tr = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    if (track.kind === 'video' && videoCodec) {
      const codecs = RTCRtpSender.getCapabilities('video').codecs;
      // offer that codec alone (with its retransmission format), so the server has no choice
      tr.setCodecPreferences(codecs.filter((c) => c.mimeType === 'video/' + videoCodec || c.mimeType === 'video/rtx'));
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const answer = await res.text();
  if (res.status !== 201) throw new Error('WHIP answered ' + res.status + ': ' + answer);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  window.pub = { pc, location: res.headers.get('Location'), answer };
  return { location: res.headers.get('Location'), answer };
};
function viewer() {
  // one viewer at a time per page: the previous one goes
  if (window.view) { window.view.pc.close(); window.view.video.remove(); if (window.view.ws) window.view.ws.close(); }
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true; video.autoplay = true; video.playsInline = true;
  document.body.append(video);
  const ms = new MediaStream();
  pc.ontrack = (e) => { ms.addTrack(e.track); video.srcObject = ms; video.play().catch(() => {}); };
  return { pc, video };
}
window.play = async (url) => {
  const v = viewer();
  await v.pc.setLocalDescription(await v.pc.createOffer());
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: v.pc.localDescription.sdp });
  const answer = await res.text();
  if (res.status !== 201) throw new Error('WHEP answered ' + res.status + ': ' + answer);
  await v.pc.setRemoteDescription({ type: 'answer', sdp: answer });
  window.view = { ...v, location: res.headers.get('Location') };
  return { location: res.headers.get('Location'), answer };
};
window.playWs = async (url) => {
  const v = viewer();
  await v.pc.setLocalDescription(await v.pc.createOffer());
  const ws = new WebSocket(url);
  const answer = await new Promise((resolve, reject) => {
    ws.onerror = () => reject(new Error('WebSocket error'));
    ws.onopen = () => ws.send(JSON.stringify({ type: 'offer_sdp', offer_sdp: v.pc.localDescription.sdp }));
    ws.onmessage = (e) => { const m = JSON.parse(e.data); if (m.type === 'on_answer_sdp') m.result ? resolve(m.answer_sdp) : reject(new Error('refused')); };
  });
  await v.pc.setRemoteDescription({ type: 'answer', sdp: answer });
  window.view = { ...v, ws };
  return { answer };
};
window.sample = async () => {
  const v = window.view;
  const out = { frames: v.video.getVideoPlaybackQuality().totalVideoFrames, width: v.video.videoWidth, time: v.video.currentTime, video: null, audio: null, state: v.pc.connectionState };
  (await v.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') out[s.kind] = { framesDecoded: s.framesDecoded, packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, nackCount: s.nackCount, codec: s.codecId, keyFramesDecoded: s.keyFramesDecoded, audioLevel: s.audioLevel, totalSamplesReceived: s.totalSamplesReceived };
    if (s.type === 'codec') out.codecs = { ...(out.codecs || {}), [s.id]: s.mimeType };
  });
  for (const k of ['video', 'audio']) if (out[k] && out.codecs) out[k].codec = out.codecs[out[k].codec];
  return out;
};
window.pubStats = async () => {
  const out = {};
  (await window.pub.pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp') out[s.kind] = { packetsSent: s.packetsSent, framesEncoded: s.framesEncoded, nackCount: s.nackCount, pliCount: s.pliCount }; });
  return out;
};
</script></body></html>`;

interface TrackSample {
  framesDecoded?: number;
  packetsReceived: number;
  packetsLost: number;
  nackCount: number;
  codec?: string;
  keyFramesDecoded?: number;
  totalSamplesReceived?: number;
}
interface Sample {
  frames: number;
  width: number;
  time: number;
  state: string;
  video: TrackSample | null;
  audio: TrackSample | null;
}

describe('WebRTC (WHIP, WHEP, WebSocket signalling) in headless Chromium', { timeout: 120_000 }, () => {
  let haze: HazeInstance;
  let browser: Browser;
  let site: http.Server;
  /** The publishing page and the viewing page (each test's viewer replaces the previous one). */
  let pub: Page;
  let view: Page;
  const publishers: ChildProcess[] = [];
  const RTMP_STREAM = 'live+rtmpwhep';

  before(async () => {
    // the pages come from another origin than Haze's HTTP port, as a site embedding a player would
    site = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'text/html' }).end(PAGE));
    // the server under test drops 5% of its SRTP datagrams (read from its environment at start)
    process.env['HAZE_TEST_UDP_DROP'] = String(DROP);
    const started = startHaze({ workers: 2 }).finally(() => delete process.env['HAZE_TEST_UDP_DROP']);
    const pages = launchChromium(WEBRTC_ARGS).then(async (b) => {
      browser = b;
      await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(site.address() as AddressInfo).port}/`;
      [pub, view] = await Promise.all([b.newPage(), b.newPage()]);
      await Promise.all([pub.goto(url), view.goto(url)]);
    });
    haze = await started;
    // the RTMP source of the later tests starts now, so it is online by then
    publishers.push(publishTestPattern(haze.rtmpUrl(RTMP_STREAM), 120));
    await pages;
  });
  after(async () => {
    // set HAZE_TEST_LOG_FILE to keep the server's log of a run
    if (process.env['HAZE_TEST_LOG_FILE']) (await import('node:fs')).writeFileSync(process.env['HAZE_TEST_LOG_FILE'], haze.log());
    for (const p of publishers) p.kill('SIGKILL');
    await browser?.close();
    site?.close();
    await haze?.stop();
  });

  async function sample(p: Page): Promise<Sample> {
    return (await p.evaluate('window.sample()')) as Sample;
  }

  /** Polls `get` until `ok` holds; returns the last value or throws with it. */
  async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
    const end = Date.now() + timeoutMs;
    let v = await get();
    while (!ok(v)) {
      if (Date.now() > end) throw new Error(`${what} not reached in ${timeoutMs} ms: ${JSON.stringify(v)}`);
      await sleep(100);
      v = await get();
    }
    return v;
  }

  /** Waits until the viewer decoded `frames` video frames (RTCPeerConnection stats and the video element agree). */
  function decodes(p: Page, frames: number, timeoutMs = 15_000): Promise<Sample> {
    return until(`${frames} frames decoded`, () => sample(p), (s) => (s.video?.framesDecoded ?? 0) >= frames && s.frames >= frames, timeoutMs);
  }

  async function webrtcStats(): Promise<{ udp: Record<string, number>; sessions: Record<string, number | string | boolean>[] }> {
    return (await controlWorker(workerSocketPath(runPaths(haze.data), 1), { op: 'webrtc.stats' })) as { udp: Record<string, number>; sessions: Record<string, number | string | boolean>[] };
  }

  it('a fake camera published over WHIP plays over WHEP (H.264 + Opus, frames decode through 5% loss)', async () => {
    const stream = 'live+whip';
    const r = (await pub.evaluate(`window.publish(${JSON.stringify(haze.httpUrl(`/whip/${stream}`))}, 'H264')`)) as { location: string; answer: string };
    assert.match(r.location, /^\/whip\/live\+whip\/[0-9a-f]{16}$/);
    assert.match(r.answer, /a=ice-lite/);
    assert.match(r.answer, /a=rtpmap:\d+ H264\/90000/);
    // the stream comes online with the publisher's tracks
    type Info = { meta?: { tracks?: Record<string, { codec: string; width?: number }> }; error?: string };
    const info = await until('both tracks online', async () => (await (await fetch(haze.httpUrl(`/json_${stream}.js`))).json()) as Info, (i) => !i.error && Object.keys(i.meta?.tracks ?? {}).length === 2, 10_000);
    const tracks = Object.values(info.meta!.tracks!);
    assert.deepEqual(tracks.map((t) => t.codec).sort(), ['H264', 'opus']);
    assert.equal(tracks.find((t) => t.codec === 'H264')!.width, 320);
    // what came in over WHIP goes out over the other outputs: ffprobe reads it as Matroska
    const probed = await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', haze.httpUrl(`/${stream}.mkv`)], { timeoutMs: 10_000 });
    assert.deepEqual(probed.toString().trim().split('\n').map((l) => l.replace(/,+$/, '')).sort(), ['h264,320,240', 'opus']);

    const played = (await view.evaluate(`window.play(${JSON.stringify(haze.httpUrl(`/whep/${stream}`))})`)) as { location: string };
    assert.match(played.location, /^\/whep\/live\+whip\/[0-9a-f]{16}$/);
    const s = await decodes(view, 45);
    assert.equal(s.video?.codec, 'video/H264');
    assert.equal(s.width, 320);
    assert.ok((s.audio?.packetsReceived ?? 0) > 20, `audio packets arrive: ${JSON.stringify(s.audio)}`);

    // 5% of what Haze sent is dropped on purpose; the browser NACKs and Haze sends those again
    const whepOf = (x: Awaited<ReturnType<typeof webrtcStats>>): Record<string, number | string | boolean> | undefined => x.sessions.find((y) => y.kind === 'whep' && y.stream === stream);
    const stats = await until('retransmissions', webrtcStats, (x) => ((whepOf(x)?.['retransmitted'] as number | undefined) ?? 0) > 0, 10_000);
    assert.ok(stats.udp['testDropped']! > 0, JSON.stringify(stats.udp));
    await until('the browser NACKed', () => sample(view), (x) => (x.video?.nackCount ?? 0) > 0, 5000);
    // and decodes on: the frames keep coming after the losses
    await decodes(view, (s.video?.framesDecoded ?? 0) + 30);
    const whip = stats.sessions.find((x) => x.kind === 'whip' && x.stream === stream)!;
    assert.ok((whip['framesIn'] as number) > 45, JSON.stringify(whip));

    // PATCH (trickle ICE) is not supported; DELETE on the Location ends the publisher, and its viewer
    const patch = await fetch(haze.httpUrl(r.location), { method: 'PATCH', headers: { 'Content-Type': 'application/trickle-ice-sdpfrag' }, body: '' });
    assert.equal(patch.status, 405);
    assert.equal((await fetch(haze.httpUrl(r.location), { method: 'DELETE' })).status, 200);
    assert.equal((await fetch(haze.httpUrl(r.location), { method: 'DELETE' })).status, 404);
    await until('sessions ended', webrtcStats, (x) => !x.sessions.some((y) => y.stream === stream), 5000);
  });

  it('a VP8 publisher over WHIP plays over WHEP as VP8', async () => {
    const stream = 'live+whipvp8';
    const r = (await pub.evaluate(`window.publish(${JSON.stringify(haze.httpUrl(`/whip/${stream}`))}, 'VP8')`)) as { location: string; answer: string };
    assert.match(r.answer, /a=rtpmap:\d+ VP8\/90000/);
    await until('online', async () => (await (await fetch(haze.httpUrl(`/json_${stream}.js`))).json()) as { error?: string; meta?: { tracks?: object } }, (i) => !i.error && Object.keys(i.meta?.tracks ?? {}).length === 2, 10_000);
    const answer = (await view.evaluate(`window.play(${JSON.stringify(haze.httpUrl(`/whep/${stream}`))})`)) as { answer: string };
    assert.match(answer.answer, /a=rtpmap:\d+ VP8\/90000/);
    const s = await decodes(view, 30);
    assert.equal(s.video?.codec, 'video/VP8');
    assert.equal(s.width, 320);
    assert.equal((await fetch(haze.httpUrl(r.location), { method: 'DELETE' })).status, 200);
  });

  it('an RTMP H.264 (B-frames) + AAC stream plays over WHEP, its audio as Opus from the stream process', async () => {
    await until('RTMP stream online', async () => (await (await fetch(haze.httpUrl(`/json_${RTMP_STREAM}.js`))).json()) as { error?: string }, (i) => !i.error, 15_000);
    const r = (await view.evaluate(`window.play(${JSON.stringify(haze.httpUrl(`/whep/${RTMP_STREAM}`))})`)) as { answer: string };
    assert.match(r.answer, /a=rtpmap:\d+ H264\/90000/);
    assert.match(r.answer, /a=rtpmap:\d+ opus\/48000\/2/, 'the answer sends Opus');
    const s = await decodes(view, 20);
    assert.equal(s.width, 320);
    // x264's B-frames are left out (browsers cannot reorder): the keyframes and P-frames decode
    await until('Opus audio arrives', () => sample(view), (x) => (x.audio?.packetsReceived ?? 0) >= 50 && (x.audio?.totalSamplesReceived ?? 0) > 48_000, 10_000);
  });

  it('the /webrtc/NAME WebSocket signalling plays a stream (offer_sdp, on_answer_sdp)', async () => {
    await view.evaluate(`window.playWs(${JSON.stringify(haze.httpUrl(`/webrtc/${RTMP_STREAM}`).replace(/^http/, 'ws'))})`);
    await decodes(view, 10);
  });

  it('stop_sessions ends a WebRTC viewer like any other: its media stops', async () => {
    const playing = await decodes(view, 1);
    const r = await haze.api({ stop_sessions: { [RTMP_STREAM]: 'WebRTC' } });
    assert.ok(!('error' in r), JSON.stringify(r));
    await pollUntil('the server ends the WebRTC viewer', () => /WebRTC play of live\+rtmpwhep by [^ ]+ ended: stopped through the API \(stop_sessions\)/.test(haze.log()) || undefined, 10_000, 100);
    // what was on its way drains, then no more frames
    await sleep(1000);
    const after = (await sample(view)).video?.framesDecoded ?? 0;
    await sleep(1500);
    const later = (await sample(view)).video?.framesDecoded ?? 0;
    assert.ok(after >= (playing.video?.framesDecoded ?? 0), 'it was playing');
    assert.equal(later, after, 'no frames after stop_sessions');
  });
});
