// The embeddable player in headless Chromium (Debian's chromium driven by playwright-core):
// `/NAME.html` plays a live RTMP publish through each of its paths, forced with the player's
// options (hls.js on HLS-TS, hls.js in low-latency mode on CMAF, dash.js, fMP4 over MSE,
// mpegts.js on FLV) and unforced; an offline stream shows a message and starts by itself when
// the stream comes online; `/embed_NAME.js` embeds the player in another page.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../browser.js';
import { sleep } from '../helpers.js';
import { publishTestPattern, startHaze, type HazeInstance } from './harness.js';

const STREAM = 'live+player';
const HLS = 'html5/application/vnd.apple.mpegurl';

interface PlayerSample {
  state: string;
  player: string | undefined;
  source: string | undefined;
  timeS: number;
  frames: number;
  errors: string[];
  message: string;
}

function sample(page: Page, name: string): Promise<PlayerSample | undefined> {
  // runs in the page (the test is compiled without the DOM library, hence the untyped globals)
  return page.evaluate((n) => {
    const page = globalThis as any;
    const h = page.hazePlayers?.[n];
    if (!h) return undefined;
    return {
      state: h.state as string,
      player: h.player as string | undefined,
      source: h.source?.type as string | undefined,
      timeS: h.video.currentTime as number,
      frames: h.video.getVideoPlaybackQuality().totalVideoFrames as number,
      errors: [...(h.errors as string[])],
      message: (page.document.querySelector('[role=status]')?.textContent ?? '') as string,
    };
  }, name);
}

async function waitFor(page: Page, name: string, what: string, ok: (s: PlayerSample) => boolean, timeoutMs: number): Promise<PlayerSample> {
  const until = Date.now() + timeoutMs;
  let last: PlayerSample | undefined;
  while (Date.now() < until) {
    last = await sample(page, name);
    if (last && ok(last)) return last;
    await sleep(250);
  }
  throw new Error(`${what} not reached in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

/** Waits until the player plays, then checks over 4 s that time advances and frames decode, without errors. */
async function assertPlays(page: Page, name: string, expect: { player: string; source: string }): Promise<void> {
  const start = await waitFor(page, name, 'playing', (s) => s.state === 'playing', 30_000);
  assert.equal(start.player, expect.player);
  assert.equal(start.source, expect.source);
  await sleep(4000);
  const end = (await sample(page, name))!;
  assert.equal(end.state, 'playing', JSON.stringify(end));
  assert.ok(end.timeS - start.timeS >= 3, `currentTime advanced ${end.timeS - start.timeS} s in 4 s`);
  assert.ok(end.frames - start.frames >= 60, `decoded ${end.frames - start.frames} frames in 4 s of 30 fps`);
  assert.deepEqual(end.errors, []);
}

describe('embeddable player in headless Chromium', { timeout: 300_000 }, () => {
  let haze: HazeInstance;
  let browser: Browser;
  const publishers: ChildProcess[] = [];

  before(async () => {
    haze = await startHaze({ workers: 2 });
    browser = await launchChromium();
    // 1 s keyframe interval, H.264 (B-frames) + AAC, for longer than the whole suite
    publishers.push(publishTestPattern(haze.rtmpUrl(STREAM), 600));
    for (let i = 0; i < 100; i++) {
      const info = (await (await fetch(haze.httpUrl(`/json_${STREAM}.js`))).json()) as { error?: string };
      if (!info.error) break;
      await sleep(200);
    }
  });
  after(async () => {
    for (const p of publishers) p.kill('SIGKILL');
    await browser?.close();
    await haze?.stop();
  });

  async function open(path: string, fn: (page: Page, requests: string[]) => Promise<void>): Promise<void> {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    try {
      await page.goto(haze.httpUrl(path));
      await fn(page, requests);
    } finally {
      await page.close();
    }
  }

  const forced: Array<{ label: string; query: Record<string, string>; player: string; source: string }> = [
    { label: 'hls.js on HLS with TS segments', query: { forcePlayer: 'hlsjs', forceType: HLS }, player: 'hlsjs', source: HLS },
    { label: 'dash.js on the CMAF MPD', query: { forcePlayer: 'dashjs' }, player: 'dashjs', source: 'dash/video/mp4' },
    { label: 'fMP4 over MSE', query: { forcePlayer: 'mse' }, player: 'mse', source: 'html5/video/mp4' },
    { label: 'mpegts.js on FLV', query: { forcePlayer: 'mpegts', forceType: 'flash/7' }, player: 'mpegts', source: 'flash/7' },
  ];
  for (const c of forced) {
    it(`/NAME.html plays via ${c.label}`, async () => {
      await open(`/${STREAM}.html?${new URLSearchParams(c.query)}`, (page) => assertPlays(page, STREAM, c));
    });
  }

  it('/NAME.html plays LL-HLS in hls.js low-latency mode (parts, blocking reloads)', async () => {
    const query = new URLSearchParams({ forcePlayer: 'hlsjs', forceType: `${HLS};version=7` });
    await open(`/${STREAM}.html?${query}`, async (page, requests) => {
      await assertPlays(page, STREAM, { player: 'hlsjs', source: `${HLS};version=7` });
      const cmaf = requests.filter((u) => u.includes(`/cmaf/${STREAM}/`));
      assert.ok(cmaf.some((u) => /\/chunk_\d+\.\d+\.m4s/.test(u)), `partial segments requested: ${cmaf.slice(-10).join(' ')}`);
      assert.ok(cmaf.some((u) => /index\.m3u8\?.*_HLS_msn=\d+/.test(u)), `blocking playlist reloads: ${cmaf.slice(-10).join(' ')}`);
    });
  });

  it('/NAME.html without options picks a path this browser plays', async () => {
    await open(`/${STREAM}.html`, async (page) => {
      const s = await waitFor(page, STREAM, 'playing', (x) => x.state === 'playing', 30_000);
      await assertPlays(page, STREAM, { player: s.player!, source: s.source! });
    });
  });

  it('an offline stream shows a message and starts playing once it is online', async () => {
    const name = 'live+later';
    await open(`/${name}.html?forcePlayer=hlsjs`, async (page) => {
      const offline = await waitFor(page, name, 'offline', (s) => s.state === 'offline', 15_000);
      assert.match(offline.message, /offline/i);
      assert.ok(await page.isVisible('[role=status]'), 'the message is shown');
      publishers.push(publishTestPattern(haze.rtmpUrl(name), 600));
      await assertPlays(page, name, { player: 'hlsjs', source: HLS });
      assert.equal(await page.isVisible('[role=status]'), false, 'the message is gone');
    });
  });

  it('/embed_NAME.js embeds the player into another page', async () => {
    const page = await browser.newPage();
    try {
      await page.setContent(`<!DOCTYPE html><body><p>a page elsewhere</p><div id="${STREAM}" style="width:640px;height:360px"></div><script src="${haze.httpUrl(`/embed_${STREAM}.js`)}"></script></body>`);
      const s = await waitFor(page, STREAM, 'playing', (x) => x.state === 'playing', 30_000);
      await assertPlays(page, STREAM, { player: s.player!, source: s.source! });
      assert.equal(await page.locator(`[id="${STREAM}"] video`).count(), 1, 'the video is inside the element named after the stream');
    } finally {
      await page.close();
    }
  });

  it('serves the player files and answers 404 for pages of unknown streams', async () => {
    for (const p of ['/player.js', '/player/hls.js', '/player/dash.js', '/player/mpegts.js']) {
      const res = await fetch(haze.httpUrl(p), { headers: { 'Accept-Encoding': 'gzip' } });
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-type') ?? '', /javascript/);
      const etag = res.headers.get('etag')!;
      assert.ok(etag, `${p} has an ETag`);
      assert.ok((await res.arrayBuffer()).byteLength > 1000);
      const again = await fetch(haze.httpUrl(p), { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304, `${p} revalidates`);
    }
    const unknown = await fetch(haze.httpUrl('/nosuchstream.html'));
    assert.equal(unknown.status, 404);
    assert.match(await unknown.text(), /not found/i);
  });
});
