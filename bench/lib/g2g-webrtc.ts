// WebRTC reader of the glass-to-glass benchmark: headless Chromium (Debian's, driven by
// playwright-core) plays a stream over WHEP (draft-ietf-wish-whep: POST the SDP offer, 201 with
// the answer; non-trickle, so the offer waits for ICE gathering to complete) and reports two
// series per frame:
//   - received: the encoded frame as the RTP depacketizer assembled it, read through the
//     receiver's encoded transform (`encodedInsertableStreams: true`, createEncodedStreams);
//     the stamp is searched in the frame bytes (g2g-stamp.ts). Before the jitter buffer and the
//     decoder.
//   - displayed: requestVideoFrameCallback's expectedDisplayTime of the decoded frame, matched
//     to its stamp by RTP timestamp: glass to glass as far as the browser's compositor knows.
// Chromium's clock is Node's wall clock through each process' own timeOrigin; the offset
// between the two is measured around the run (a round trip of page.evaluate) and taken out.
// The offer/answer goes through Node (no CORS needed from the server).

import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { G2G_DIGITS, G2G_MARKER_HEX, wallUs } from './g2g-stamp.js';
import type { G2gReader, StampSink } from './g2g-readers.js';

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // host candidates as addresses, not mDNS names the server cannot resolve
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--allow-loopback-in-peer-connection',
];

export function chromiumPath(): string {
  return process.env['HAZE_CHROMIUM'] ?? '/usr/bin/chromium';
}

/** Runs in the page: sets up the receiving peer connection and returns the complete offer. */
const PAGE_SETUP = `async (markerHex, digits) => {
  const marker = new Uint8Array(markerHex.match(/../g).map((h) => parseInt(h, 16)));
  const w = globalThis;
  w.g2g = { received: [], displayed: [], byRtp: new Map(), frames: 0, errors: [] };
  const find = (data) => {
    const b = new Uint8Array(data);
    outer: for (let i = 0; i + marker.length + digits <= b.length; i++) {
      if (b[i] !== marker[0]) continue;
      for (let k = 1; k < marker.length; k++) if (b[i + k] !== marker[k]) continue outer;
      let v = 0;
      for (let k = 0; k < digits; k++) {
        const d = b[i + marker.length + k] - 48;
        if (d < 0 || d > 9) return -1;
        v = v * 10 + d;
      }
      return v;
    }
    return -1;
  };
  const pc = new RTCPeerConnection({ encodedInsertableStreams: true, bundlePolicy: 'max-bundle' });
  w.g2gPc = pc;
  pc.addTransceiver('video', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.appendChild(video);
  const onFrame = (_now, meta) => {
    const sent = w.g2g.byRtp.get(meta.rtpTimestamp);
    if (sent !== undefined) w.g2g.displayed.push(sent, (performance.timeOrigin + meta.expectedDisplayTime) * 1000);
    video.requestVideoFrameCallback(onFrame);
  };
  pc.ontrack = (e) => {
    if (e.track.kind !== 'video') return;
    const { readable, writable } = e.receiver.createEncodedStreams();
    readable
      .pipeThrough(new TransformStream({
        transform(frame, ctrl) {
          const t = (performance.timeOrigin + performance.now()) * 1000;
          w.g2g.frames++;
          const sent = find(frame.data);
          if (sent >= 0) {
            w.g2g.received.push(sent, t);
            w.g2g.byRtp.set(frame.timestamp, sent);
            if (w.g2g.byRtp.size > 2000) w.g2g.byRtp.delete(w.g2g.byRtp.keys().next().value);
          }
          ctrl.enqueue(frame);
        },
      }))
      .pipeTo(writable)
      .catch((err) => w.g2g.errors.push(String(err)));
    video.srcObject = new MediaStream([e.track]);
    video.play().catch((err) => w.g2g.errors.push(String(err)));
    video.requestVideoFrameCallback(onFrame);
  };
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      const done = () => pc.iceGatheringState === 'complete' && resolve();
      pc.addEventListener('icegatheringstatechange', done);
      setTimeout(resolve, 3000);
    });
  }
  return pc.localDescription.sdp;
}`;

/** Wall clock of the page minus Node's (µs), from the round trip with the smallest span. */
async function clockOffsetUs(page: Page): Promise<number> {
  let best = { span: Infinity, offset: 0 };
  for (let i = 0; i < 7; i++) {
    const a = wallUs();
    const p = await page.evaluate(() => (performance.timeOrigin + performance.now()) * 1000);
    const b = wallUs();
    if (b - a < best.span) best = { span: b - a, offset: p - (a + b) / 2 };
  }
  return best.offset;
}

/** The received and displayed series; `whepUrl` is the full http://host:port/whep/NAME. */
export class WhepChromiumReader implements G2gReader {
  readonly label = 'Chromium WHEP, encoded transform + requestVideoFrameCallback';
  error: string | undefined;
  private browser: Browser | undefined;
  private timer: NodeJS.Timeout | undefined;
  private resource: string | undefined;
  private offsetUs = 0;
  /** Frames the page saw and page-side errors, for the report. */
  framesSeen = 0;

  constructor(private readonly whepUrl: string) {}

  async start(sink: StampSink): Promise<void> {
    const browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
    this.browser = browser;
    const page = await browser.newPage();
    const origin = new URL(this.whepUrl).origin;
    // an http page (secure context on 127.0.0.1) of the server's origin
    await page.goto(`${origin}/`).catch(() => undefined);
    await page.setContent('<!doctype html><body></body>');
    const offer = (await page.evaluate(`(${PAGE_SETUP})(${JSON.stringify(G2G_MARKER_HEX)}, ${G2G_DIGITS})`)) as string;
    const res = await fetch(this.whepUrl, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: offer });
    const answer = await res.text();
    if (res.status !== 201 && res.status !== 200) throw new Error(`POST ${this.whepUrl}: HTTP ${res.status} ${answer.slice(0, 200)}`);
    const loc = res.headers.get('location');
    if (loc) this.resource = new URL(loc, this.whepUrl).toString();
    await page.evaluate(`globalThis.g2gPc.setRemoteDescription({ type: 'answer', sdp: ${JSON.stringify(answer)} })`);
    this.offsetUs = await clockOffsetUs(page);
    const drain = async (): Promise<void> => {
      const got = await page.evaluate(() => {
        const g = (globalThis as unknown as { g2g: { received: number[]; displayed: number[]; frames: number; errors: string[] } }).g2g;
        const out = { received: g.received, displayed: g.displayed, frames: g.frames, errors: g.errors, state: (globalThis as unknown as { g2gPc: { connectionState: string } }).g2gPc.connectionState };
        g.received = [];
        g.displayed = [];
        return out;
      });
      this.framesSeen = got.frames;
      for (let i = 0; i + 1 < got.received.length; i += 2) sink(got.received[i]!, got.received[i + 1]! - this.offsetUs, 'received');
      for (let i = 0; i + 1 < got.displayed.length; i += 2) sink(got.displayed[i]!, got.displayed[i + 1]! - this.offsetUs, 'displayed');
      if (got.errors.length > 0) this.error = got.errors.join('; ');
      if (got.state === 'failed' || got.state === 'closed') this.error = `peer connection ${got.state}`;
    };
    this.timer = setInterval(() => {
      drain().catch(() => undefined);
    }, 500);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.resource) await fetch(this.resource, { method: 'DELETE' }).catch(() => undefined);
    await this.browser?.close().catch(() => undefined);
  }
}
