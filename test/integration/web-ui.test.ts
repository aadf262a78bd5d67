// The management UI in headless Chromium (Debian's chromium driven by playwright-core), reached
// through a reverse proxy that mounts Haze's API port under /haze/ and marks the browser as
// remote, so every step goes through the login as a real deployment would. One Haze, one
// browser, the steps in order: first-run account and login (by keyboard), a stream created in
// the form and published to with ffmpeg until its preview plays, a USER_NEW handler refusing a
// viewer, an automatic recording listed, a session kicked, a config backup restored, and the
// controller killed under the page. Each page's screenshot is kept in test-artifacts/web-ui/.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../browser.js';
import { pollUntil, repoRoot } from '../helpers.js';
import { exited, publishTestPattern, startHaze, type HazeInstance } from './harness.js';
import { startReverseProxy, type ReverseProxy } from './reverse-proxy.js';
import { startTriggerCapture, type TriggerCapture } from './trigger-capture.js';

const ARTIFACTS = path.join(repoRoot, 'test-artifacts', 'web-ui');
const USER = 'admin';
const PASSWORD = 'correct horse';
const STREAM = 'cam';
/** the budget for the first load: 300 KB of JavaScript, gzipped */
const FIRST_LOAD_JS_LIMIT = 300 * 1024;

describe('web management UI in headless Chromium, behind a reverse proxy', { timeout: 240_000 }, () => {
  let haze: HazeInstance;
  let proxy: ReverseProxy;
  let capture: TriggerCapture;
  let browser: Browser;
  let page: Page;
  const procs: ChildProcess[] = [];
  const pageErrors: string[] = [];
  let shot = 0;

  const screenshot = async (name: string): Promise<void> => {
    await page.screenshot({ path: path.join(ARTIFACTS, `${String(++shot).padStart(2, '0')}-${name}.png`), fullPage: true });
  };
  const go = async (hash: string, heading: string | RegExp): Promise<void> => {
    await page.goto(`${proxy.url}${hash}`);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  };
  const config = async (): Promise<Record<string, any>> => (await haze.api({})) as Record<string, any>;

  before(async () => {
    fs.rmSync(ARTIFACTS, { recursive: true, force: true });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    [haze, capture, browser] = await Promise.all([startHaze({ workers: 2 }), startTriggerCapture(), launchChromium()]);
    proxy = await startReverseProxy(haze.ports.api, '/haze');
    page = await browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('dialog', (d) => void d.accept());
  });
  after(async () => {
    for (const p of procs) p.kill('SIGKILL');
    await browser?.close();
    await proxy?.close();
    await capture?.close();
    await haze?.stop();
  });

  test('first run: the UI asks for an account, then logs in by keyboard; first load is small', async () => {
    const scripts: { url: string; bytes: number; encoding: string }[] = [];
    page.on('response', (r) => {
      if (r.request().resourceType() === 'script') scripts.push({ url: r.url(), bytes: Number(r.headers()['content-length'] ?? NaN), encoding: r.headers()['content-encoding'] ?? '' });
    });
    await page.goto(proxy.url);
    await page.getByRole('heading', { name: 'Welcome to Haze' }).waitFor();
    await screenshot('first-run');
    const total = scripts.reduce((s, x) => s + x.bytes, 0);
    assert.ok(scripts.length >= 5 && scripts.every((s) => s.url.startsWith(`${proxy.url}ui/`)), `the modules load from the mounted path: ${scripts.map((s) => s.url).join(' ')}`);
    assert.ok(scripts.every((s) => s.encoding === 'gzip' && Number.isFinite(s.bytes)), 'served gzipped');
    assert.ok(total < FIRST_LOAD_JS_LIMIT, `first load ${total} bytes of JavaScript (gzip)`);
    console.log(`first load: ${scripts.length} modules, ${total} bytes of JavaScript gzipped`);

    await page.getByLabel('Username').fill(USER);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Repeat the password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.deepEqual((await haze.api({ account_list: true }))['account_list'], [USER]);

    // log out, then in again with the keyboard alone: the username field has the focus
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to Haze' }).waitFor();
    await page.keyboard.press('Control+A');
    await page.keyboard.type(USER);
    await page.keyboard.press('Tab');
    await page.keyboard.type('wrong password');
    await page.keyboard.press('Enter');
    await page.getByText('Wrong username or password.').waitFor();
    await screenshot('login-refused');
    await page.getByLabel('Password').fill('');
    await page.getByLabel('Password').focus();
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  });

  test('overview: vitals, charts and the live log', async () => {
    await go('', 'Overview');
    await page.getByText('Recent log').waitFor();
    await page.locator('ol.log li').first().waitFor();
    const cpu = await page.locator('.tile', { hasText: 'CPU' }).locator('.tile-value').textContent();
    assert.match(cpu ?? '', /^\d+ %$/);
    assert.equal(await page.locator('figure.chart').count(), 4);
    await screenshot('overview');
  });

  test('create a stream in the form: the source is checked and its options shown', async () => {
    await go('#/streams', 'Streams');
    await page.getByRole('link', { name: 'New stream' }).click();
    await page.getByRole('heading', { level: 1, name: 'New stream' }).waitFor();
    await page.getByLabel('Stream name').fill(STREAM);
    await page.getByLabel('Source').fill('nosuch://camera');
    await page.getByText(/no input of this Haze build accepts/).waitFor();
    await page.getByLabel('Source').fill('push://');
    await page.getByText('Input: Buffer').waitFor();
    await page.getByLabel('Buffer window (DVR) (ms)').fill('20000');
    await screenshot('stream-new');
    await page.getByRole('button', { name: 'Create stream' }).click();
    await page.getByRole('heading', { level: 1, name: STREAM }).waitFor();
    const cfg = (await config())['streams'][STREAM];
    assert.equal(cfg.source, 'push://');
    assert.equal(cfg.DVR, 20000);
  });

  test('publish with ffmpeg: the stream turns live, its preview plays, its URLs are listed', async () => {
    procs.push(publishTestPattern(haze.rtmpUrl(STREAM), 200));
    await page.locator('.title-row .badge', { hasText: 'Online' }).waitFor({ timeout: 30_000 });
    const frame = await pollUntil('the preview frame', () => page.frames().find((f) => f.url().includes(`/${STREAM}.html`)), 20_000);
    // (runs in the page; the test is compiled without the DOM library, hence the untyped global)
    await frame.waitForFunction(() => {
      const v = (globalThis as any).document.querySelector('video');
      return !!v && v.currentTime > 1 && v.readyState >= 2;
    }, undefined, { timeout: 30_000 });
    const values = await page.locator('.copyable input').evaluateAll((els) => els.map((e) => (e as any).value as string));
    const http = `http://127.0.0.1:${haze.ports.http}`;
    for (const url of [`${http}/${STREAM}.html`, `${http}/hls/${STREAM}/index.m3u8`, `${http}/whep/${STREAM}`, `rtmp://127.0.0.1:${haze.ports.rtmp}/live/${STREAM}`, `srt://127.0.0.1:${haze.ports.srt}?streamid=${STREAM}`, `rtsp://127.0.0.1:${haze.ports.rtsp}/${STREAM}`]) {
      assert.ok(values.includes(url), `${url} listed among ${values.join(' ')}`);
    }
    // every listed HTTP play URL answers (but WebM, which cannot carry this H.264 stream)
    for (const url of values.filter((v) => v.startsWith(`${http}/`) && !/\/wh[ei]p\//.test(v) && !v.endsWith('.webm'))) {
      const res = await fetch(url, { headers: { 'User-Agent': 'url-check' } });
      await res.body?.cancel();
      assert.equal(res.status, 200, url);
    }
    await screenshot('stream-live');
    await go('#/streams', 'Streams');
    const row = page.locator('tr', { hasText: STREAM }).first();
    await row.locator('.badge', { hasText: 'Online' }).waitFor();
    await screenshot('streams');
  });

  test('a USER_NEW handler added in the UI refuses a viewer, and the log shows it', async () => {
    capture.reply('USER_NEW', 'false');
    await go('#/triggers', 'Triggers');
    await page.getByRole('button', { name: 'Add handler' }).click();
    await page.getByRole('combobox', { name: 'Trigger' }).selectOption('USER_NEW');
    // the description and payload come from the server's trigger map
    await page.locator('.trigger-info code', { hasText: 'connector' }).first().waitFor();
    await page.getByRole('textbox', { name: 'Handler', exact: true }).fill(capture.url);
    await page.getByRole('checkbox', { name: 'Blocking (wait for the reply)' }).check();
    await page.getByRole('textbox', { name: 'Default reply', exact: true }).fill('false');
    await page.getByRole('textbox', { name: 'Streams', exact: true }).fill(STREAM);
    await screenshot('trigger-form');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Triggers saved.').waitFor();
    const handlers = (await config())['config']['triggers']['USER_NEW'];
    assert.equal(handlers.length, 1);
    assert.equal(handlers[0].handler, capture.url);
    assert.equal(handlers[0].sync, true);
    assert.deepEqual(handlers[0].streams, [STREAM]);

    const res = await pollUntil('the viewer refused', async () => {
      // a token of its own: the refusal holds for this session only, not the viewer kicked later
      const r = await fetch(`http://127.0.0.1:${haze.ports.http}/${STREAM}.ts?tkn=refused-viewer`);
      await r.body?.cancel();
      return r.status === 403 ? r : undefined;
    }, 10_000);
    assert.equal(res.status, 403);
    const seen = await capture.wait('USER_NEW', (t) => t.lines[0] === STREAM);
    assert.equal(seen.lines[0], STREAM);
    await go('', 'Overview');
    await page.locator('ol.log li', { hasText: `viewer of ${STREAM} from 127.0.0.1 refused (USER_NEW` }).first().waitFor({ timeout: 15_000 });
    await screenshot('overview-refused');

    await go('#/triggers', 'Triggers');
    await page.getByRole('button', { name: `Delete USER_NEW handler ${capture.url}` }).click();
    await page.getByText('No trigger handler yet.').waitFor();
    assert.equal((await config())['config']['triggers']['USER_NEW'], undefined);
  });

  test('an automatic recording started in the UI is listed with its size and length', async () => {
    const target = path.join(haze.data, 'rec', '$stream_$datetime.mkv');
    await go('#/pushes', 'Pushes and recordings');
    await page.getByLabel('Stream', { exact: true }).fill(STREAM);
    await page.getByLabel('Target').fill(target);
    await page.getByRole('checkbox', { name: /^Automatic/ }).check();
    await page.getByRole('button', { name: 'Start' }).click();
    await page.getByText('Automatic push added.').waitFor();
    await page.locator('table[aria-label="Automatic pushes"] tr', { hasText: target }).waitFor();
    const row = page.locator('table[aria-label="Recordings"] tbody tr', { hasText: new RegExp(`${STREAM}_.*\\.mkv`) });
    await row.waitFor({ timeout: 20_000 });
    await pollUntil('a recording length', async () => /\ds/.test((await row.locator('td').nth(3).textContent()) ?? '') || undefined, 20_000);
    const file = (await row.locator('code').getAttribute('title'))!;
    assert.ok(fs.statSync(file).size > 0, `${file} exists on disk`);
    assert.equal(path.dirname(file), path.join(haze.data, 'rec'));
    await page.locator('table[aria-label="Running pushes"] tbody tr', { hasText: STREAM }).waitFor();

    // a rule with conditions: stored as MistServer's [variable, operator, value], shown, removed
    await page.getByLabel('Stream', { exact: true }).fill(STREAM);
    await page.getByLabel('Target').fill('rtmp://127.0.0.1:1/never/$stream');
    await page.getByRole('combobox', { name: 'Start when: operator' }).selectOption({ label: '≥ (number)' });
    await page.getByRole('textbox', { name: 'Start when: variable' }).fill('$viewers_wanted');
    await page.getByRole('textbox', { name: 'Start when: value' }).fill('5');
    await page.getByRole('button', { name: 'Start' }).click();
    const ruled = page.locator('table[aria-label="Automatic pushes"] tr', { hasText: '/never/' });
    await ruled.getByText('start when $viewers_wanted ≥ (number) 5').waitFor();
    const stored = Object.values((await haze.api({ push_auto_list: true }))['auto_push'] as Record<string, { target: string; start_rule?: unknown }>).find((r) => r.target.includes('never'));
    assert.deepEqual(stored?.start_rule, ['$viewers_wanted', 11, '5']);
    await screenshot('pushes');
    await page.getByRole('button', { name: `Remove automatic push of ${STREAM} to rtmp://127.0.0.1:1/never/$stream` }).click();
    await ruled.waitFor({ state: 'detached' });
  });

  test('a viewer is kicked from the sessions page', async () => {
    const viewer = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', haze.rtmpUrl(STREAM), '-c', 'copy', '-f', 'null', '-'], { stdio: 'ignore' });
    procs.push(viewer);
    await go('#/sessions', 'Sessions');
    const row = page.locator('tbody tr', { hasText: 'viewer' }).filter({ hasText: 'RTMP' });
    await row.waitFor({ timeout: 20_000 });
    await screenshot('sessions');
    await row.getByRole('button', { name: /^Kick/ }).click();
    await page.getByText(/kicked/).waitFor();
    const code = await Promise.race([exited(viewer), new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
    assert.notEqual(code, 'still running', 'the kicked viewer was disconnected');
  });

  test('a downloaded config backup restores a deleted stream', async () => {
    await go('#/settings', 'Protocols and settings');
    await screenshot('settings');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download backup' }).click()]);
    const file = path.join(ARTIFACTS, 'backup.json');
    await download.saveAs(file);
    const backup = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, any>;
    assert.equal(backup['streams'][STREAM].DVR, 20000);

    await go(`#/streams/${STREAM}`, STREAM);
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('heading', { level: 1, name: 'Streams' }).waitFor();
    assert.equal((await config())['streams'][STREAM], undefined);

    await go('#/settings', 'Protocols and settings');
    await page.getByLabel('Config file to restore').setInputFiles(file);
    await page.getByRole('button', { name: 'Restore', exact: true }).click();
    await page.getByText(/Configuration restored from backup\.json/).waitFor();
    const restored = await config();
    assert.equal(restored['streams'][STREAM].DVR, 20000);
    const rules = (await haze.api({ push_auto_list: true }))['auto_push'] as Record<string, unknown>;
    assert.deepEqual(Object.keys(rules), Object.keys(backup['auto_push']));
    assert.equal(Object.keys(rules).length, 1);
  });

  test('capacity planner answers from measured figures', async () => {
    await go('#/capacity', 'Capacity planner');
    const viewers = Number(await page.locator('[data-viewers]').getAttribute('data-viewers'));
    assert.ok(viewers > 0, `planner says ${viewers} viewers`);
    await screenshot('capacity');
  });

  test('the controller dies under the page: a banner shows, and the UI recovers by itself', async () => {
    await go('', 'Overview');
    await page.locator('ol.log li').first().waitFor();
    const lastLine = await page.locator('ol.log li').first().textContent();
    const pid = haze.pidOf('controller');
    assert.ok(pid, 'the controller pid');
    // the angel restarts a dead controller within a second, while the API socket it holds queues
    // the requests: paused, it leaves the controller down until the banner has been seen
    process.kill(haze.proc.pid!, 'SIGSTOP');
    try {
      process.kill(pid, 'SIGKILL');
      await page.getByRole('alert').filter({ hasText: 'not answering' }).waitFor({ timeout: 20_000 });
      await screenshot('api-away');
    } finally {
      process.kill(haze.proc.pid!, 'SIGCONT');
    }
    await page.getByRole('alert').waitFor({ state: 'hidden', timeout: 40_000 });
    assert.notEqual(haze.pidOf('controller'), pid, 'the angel started a new controller');
    // the WebSocket feed is back: the new controller's first lines reach the page's log
    const newest = page.locator('ol.log li').first();
    await pollUntil('new log lines after the restart', async () => ((await newest.textContent()) !== lastLine ? true : undefined), 30_000);
    // and the page still acts: the streams list loads with the login it had
    await page.getByRole('link', { name: 'Streams' }).click();
    await page.locator('tr', { hasText: STREAM }).first().waitFor();
    await screenshot('after-restart');
    assert.deepEqual(pageErrors, []);
  });
});
