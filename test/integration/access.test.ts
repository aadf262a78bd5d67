// Access control through a running Haze (issue 5 item 2), with ffmpeg/ffprobe as the peers:
// push passwords and address lists, stream keys (RTMP and dtsc://), JWTs as stream names and
// viewer tokens (play and push permissions), and session control through the API
// (stop_sessions, stop_sessid, invalidate_sessions) counted with a USER_NEW capture.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { signJwt } from '../../src/access/jwt.js';
import { getText } from '../../src/containers/dtsc/dtmi.js';
import { DtscFrameReader, encodeDtcm } from '../../src/containers/dtsc/packets.js';
import { DTSC_TEXT } from '../../src/protocols/dtsc/listener-wire.js';
import { giveUpAfter, mistFixtures, run, sleep } from '../helpers.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';
import { startTriggerCapture, type TriggerCapture } from './trigger-capture.js';

const FLV = path.join(mistFixtures, 'small.flv');
const KEY = 'SeCrEt-Key_42';
const DTSC_KEY = 'Dtsc-Key_7';
const viewerSecret = crypto.randomBytes(32);
const ingestSecret = crypto.randomBytes(32);
const sessionOf = (stream: string, token: string): string => crypto.createHash('sha256').update(`${stream}\n127.0.0.1\n${token}`).digest('hex');

async function codecs(url: string): Promise<{ code: number | null; codecs: string[]; stderr: string }> {
  const r = await run('ffprobe', ['-v', 'error', '-rw_timeout', '15000000', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url], { timeoutMs: 30_000 });
  // (ffprobe lists an HLS stream's tracks once per program as well)
  return { code: r.code, codecs: [...new Set(r.stdout.toString().trim().split('\n').filter(Boolean))].sort(), stderr: r.stderr };
}

/** An ffmpeg player that reads until the stream or the server ends it. */
function player(url: string): ChildProcess {
  return spawn('ffmpeg', ['-hide_banner', '-v', 'error', '-i', url, '-c', 'copy', '-f', 'null', '-'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Log lines reach the test through the angel's pipe, a moment after the event. */
async function waitLog(haze: HazeInstance, re: RegExp, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!re.test(haze.log())) {
    if (Date.now() > until) assert.match(haze.log(), re);
    await sleep(100);
  }
}

async function exitsWithin(p: ChildProcess, ms: number): Promise<boolean> {
  return (await Promise.race([exited(p).then(() => true), giveUpAfter(ms, false)])) === true;
}

/** A dtsc:// push command for `stream`: the listener's first reply (ok/error) and its text. */
async function dtscPush(port: number, stream: string): Promise<{ cmd: string; msg: string }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  const reader = new DtscFrameReader();
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no DTSC reply')), 15_000);
      socket.on('data', (c: Buffer) => {
        for (const f of reader.push(c)) {
          if (f.kind !== 'command') continue;
          const cmd = getText(f.command, 'cmd') ?? '';
          if (cmd !== 'ok' && cmd !== 'error') continue;
          clearTimeout(timer);
          resolve({ cmd, msg: getText(f.command, 'msg') ?? '' });
        }
      });
      socket.once('connect', () => socket.write(encodeDtcm({ cmd: 'push', stream, version: 'haze-test' })));
    });
  } finally {
    socket.destroy();
  }
}

describe('access: push rules, stream keys, JWT, session control', { timeout: 300_000 }, () => {
  let haze: HazeInstance;
  let cap: TriggerCapture;
  const procs: ChildProcess[] = [];
  const userNew = (token: string): string[][] => cap.of('USER_NEW').filter((t) => t.lines[2] === token).map((t) => t.lines);

  before(async () => {
    cap = await startTriggerCapture();
    haze = await startHaze({ workers: 2 });
    const nobody = 'push://10.255.255.1';
    const r = await haze.api({
      addstream: {
        keyed: { source: nobody },
        dkeyed: { source: nobody },
        jwtpush: { source: nobody },
        guarded: { source: 'push://10.255.255.0/24@s3cret' },
        loopnet: { source: 'push://127.0.0.0/8' },
        othernet: { source: 'push://10.0.0.0/8' },
      },
      streamkey_add: { [KEY]: 'keyed', [DTSC_KEY]: 'dkeyed' },
      addjwks: [
        [{ kty: 'oct', k: viewerSecret.toString('base64url'), kid: 'viewers' }, { input: false, output: true }],
        [{ kty: 'oct', k: ingestSecret.toString('base64url'), kid: 'ingest' }, { input: true, output: false }],
      ],
      config: { triggers: { USER_NEW: [cap.handler({ sync: true, default: 'false', streams: ['keyed'] })] } },
    });
    assert.ok(!('error' in r), JSON.stringify(r['error']));
    assert.deepEqual(r['streamkey_add'], { added: [KEY, DTSC_KEY] });
    await sleep(700); // the workers see the new config
  });
  after(async () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await haze?.stop();
    await cap?.close();
  });

  it('push passwords and address lists: wrong password and foreign networks refused, CIDR and password admitted', async () => {
    const t0 = Date.now();
    // refused: wrong password (app), no password from outside the list, a CIDR not containing 127.0.0.1
    for (const url of [haze.rtmpUrl('guarded', 'wrong'), haze.rtmpUrl('othernet'), haze.rtmpUrl('guarded?pass=nope')]) {
      const p = publishFile(FLV, url);
      assert.ok(await exitsWithin(p, 15_000), `${url} refused`);
      assert.notEqual(p.exitCode, 0, url);
    }
    await waitLog(haze, /RTMP publish of guarded from 127\.0\.0\.1 refused: .*address not allowed/);
    await waitLog(haze, /RTMP publish of othernet from 127\.0\.0\.1 refused: .*address not allowed/);
    // admitted: the password as the RTMP app, and a CIDR block
    for (const [stream, app] of [['guarded', 's3cret'], ['loopnet', 'live']] as const) {
      const p = publishFile(FLV, haze.rtmpUrl(stream, app), ['-stream_loop', '-1']);
      procs.push(p);
      await sleep(1500);
      const probe = await codecs(haze.httpUrl(`/${stream}.flv`));
      assert.equal(probe.code, 0, probe.stderr);
      assert.deepEqual(probe.codecs, ['aac', 'h264'], stream);
      p.kill('SIGINT');
      await exited(p);
    }
    console.log(`push rules: ${Date.now() - t0} ms`);
  });

  it('a stream key pushed over RTMP plays as its stream; an unknown key and the plain name are refused; keys stay out of the log', async () => {
    const t0 = Date.now();
    // the stream itself only takes pushes from 10.255.255.1
    const direct = publishFile(FLV, haze.rtmpUrl('keyed'));
    assert.ok(await exitsWithin(direct, 15_000));
    assert.notEqual(direct.exitCode, 0, 'the plain name is refused from 127.0.0.1');
    const unknown = publishFile(FLV, haze.rtmpUrl('Wrong-Key_1'));
    assert.ok(await exitsWithin(unknown, 15_000));
    assert.notEqual(unknown.exitCode, 0, 'an unknown key is refused');

    const pub = publishFile(FLV, haze.rtmpUrl(KEY), ['-stream_loop', '-1']);
    procs.push(pub);
    await sleep(2000);
    assert.equal(pub.exitCode, null, 'the keyed publisher is accepted');
    const probe = await codecs(haze.httpUrl('/keyed.flv?tkn=probe'));
    assert.equal(probe.code, 0, probe.stderr);
    assert.deepEqual(probe.codecs, ['aac', 'h264']);
    await waitLog(haze, /RTMP publish of keyed from 127\.0\.0\.1 accepted \(stream key\)/);

    // dtsc:// pushes take stream keys too
    const cleared = await dtscPush(haze.ports.dtsc!, DTSC_KEY);
    assert.deepEqual(cleared, { cmd: 'ok', msg: DTSC_TEXT.cleared });
    await waitLog(haze, /push to dkeyed accepted \(stream key Dt… \(10 characters\)\)/);
    const refused = await dtscPush(haze.ports.dtsc!, 'Wrong-Key_2');
    assert.equal(refused.cmd, 'error');
    await waitLog(haze, /push to "Wrong-Key_2" refused/);
    assert.deepEqual(haze.log().split('\n').filter((l) => l.includes(KEY) || l.includes(DTSC_KEY)), [], 'keys are never logged in full');
    console.log(`stream keys: ${Date.now() - t0} ms`);
  });

  it('JWT: a token as stream name plays with the output permission, pushes with the input one; viewer tokens skip USER_NEW', async () => {
    const t0 = Date.now();
    const calls = cap.of('USER_NEW').length;
    const play = signJwt({ sub: 'keyed', exp: Math.floor(Date.now() / 1000) + 600 }, 'HS256', viewerSecret, { kid: 'viewers' });
    let probe = await codecs(haze.httpUrl(`/${play}.flv`));
    assert.equal(probe.code, 0, probe.stderr);
    assert.deepEqual(probe.codecs, ['aac', 'h264']);
    // HLS: the playlist's relative segment URLs carry the token path along
    probe = await codecs(haze.httpUrl(`/hls/${play}/index.m3u8`));
    assert.equal(probe.code, 0, probe.stderr);
    assert.deepEqual(probe.codecs, ['aac', 'h264']);
    // a viewer token (no sub: any stream the key allows) as ?jwt=
    const viewer = signJwt({ exp: Math.floor(Date.now() / 1000) + 600 }, 'HS256', viewerSecret, { kid: 'viewers' });
    probe = await codecs(haze.httpUrl(`/keyed.flv?jwt=${viewer}`));
    assert.equal(probe.code, 0, probe.stderr);
    // HLS with ?jwt=: the playlists carry the token into every URL they list
    const playlist = await (await fetch(haze.httpUrl(`/hls/keyed/index.m3u8?jwt=${viewer}`))).text();
    assert.ok(playlist.split('\n').filter((l) => l && !l.startsWith('#')).every((l) => l.endsWith(`jwt=${viewer}`)), playlist);
    probe = await codecs(haze.httpUrl(`/hls/keyed/index.m3u8?jwt=${viewer}`));
    assert.equal(probe.code, 0, probe.stderr);
    // RTMP play: the token as the stream name, and as ?jwt=
    probe = await codecs(haze.rtmpUrl(play));
    assert.equal(probe.code, 0, probe.stderr);
    assert.deepEqual(probe.codecs, ['aac', 'h264']);
    probe = await codecs(haze.rtmpUrl(`keyed?jwt=${viewer}`));
    assert.equal(probe.code, 0, probe.stderr);
    assert.equal(cap.of('USER_NEW').length, calls, 'valid JWTs skip USER_NEW');

    // refused: a key without the output permission, an expired token, a forged one
    const noOutput = signJwt({ sub: 'keyed' }, 'HS256', ingestSecret, { kid: 'ingest' });
    const expired = signJwt({ sub: 'keyed', exp: Math.floor(Date.now() / 1000) - 5 }, 'HS256', viewerSecret, { kid: 'viewers' });
    const forged = `${play.split('.').slice(0, 2).join('.')}.${Buffer.alloc(32, 7).toString('base64url')}`;
    for (const t of [noOutput, expired, forged]) {
      const r = await fetch(haze.httpUrl(`/${t}.flv`));
      assert.equal(r.status, 403);
      assert.equal(await r.text(), 'Access denied: invalid token\n');
      assert.notEqual((await codecs(haze.rtmpUrl(t))).code, 0, 'refused over RTMP too');
    }
    await waitLog(haze, /JWT as stream name refused: no key with the output permission for keyed/);

    // push: the input permission is needed
    const pushNo = publishFile(FLV, haze.rtmpUrl(signJwt({ sub: 'jwtpush' }, 'HS256', viewerSecret, { kid: 'viewers' })));
    assert.ok(await exitsWithin(pushNo, 15_000));
    assert.notEqual(pushNo.exitCode, 0, 'a token without the input permission cannot push');
    const pub = publishFile(FLV, haze.rtmpUrl(signJwt({ sub: 'jwtpush' }, 'HS256', ingestSecret, { kid: 'ingest' })), ['-stream_loop', '-1']);
    procs.push(pub);
    await sleep(2000);
    probe = await codecs(haze.httpUrl('/jwtpush.flv'));
    assert.equal(probe.code, 0, probe.stderr);
    assert.deepEqual(probe.codecs, ['aac', 'h264']);
    await waitLog(haze, /RTMP publish of jwtpush from 127\.0\.0\.1 accepted \(JWT\)/);
    pub.kill('SIGINT');
    await exited(pub);
    console.log(`JWT: ${Date.now() - t0} ms`);
  });

  it('stop_sessions ends RTMP and FLV viewers (by stream, and by stream and protocol)', async () => {
    const t0 = Date.now();
    const flv = player(haze.httpUrl('/keyed.flv?tkn=v1'));
    const rtmp = player(haze.rtmpUrl('keyed?tkn=r1'));
    procs.push(flv, rtmp);
    await cap.wait('USER_NEW', (t) => t.lines[2] === 'v1');
    await cap.wait('USER_NEW', (t) => t.lines[2] === 'r1');
    await sleep(2000);
    assert.equal(flv.exitCode, null, 'the FLV viewer plays');
    assert.equal(rtmp.exitCode, null, 'the RTMP viewer plays');

    let r = await haze.api({ stop_sessions: { keyed: 'RTMP' } });
    assert.ok(!('error' in r), JSON.stringify(r['error']));
    const tr = Date.now();
    assert.ok(await exitsWithin(rtmp, 10_000), 'the RTMP viewer ends');
    console.log(`RTMP viewer gone ${Date.now() - tr} ms after stop_sessions`);
    await sleep(1500);
    assert.equal(flv.exitCode, null, 'the FLV viewer is not of the stopped protocol');

    r = await haze.api({ stop_sessions: 'keyed' });
    assert.ok(!('error' in r), JSON.stringify(r['error']));
    const tf = Date.now();
    assert.ok(await exitsWithin(flv, 10_000), 'the FLV viewer ends');
    console.log(`FLV viewer gone ${Date.now() - tf} ms after stop_sessions`);
    // the stopped session is refused from now on (as a segmented player's next request would be)
    assert.equal((await fetch(haze.httpUrl('/hls/keyed/index.m3u8?tkn=v1'))).status, 403);
    assert.equal((await fetch(haze.httpUrl('/hls/keyed/index.m3u8?tkn=other'))).status, 200, 'other sessions go on');
    console.log(`stop_sessions: ${Date.now() - t0} ms`);
  });

  it('stop_sessid refuses that session\'s next request; invalidate_sessions makes USER_NEW run again', async () => {
    const t0 = Date.now();
    const list = (tkn: string): Promise<Response> => fetch(haze.httpUrl(`/hls/keyed/index.m3u8?tkn=${tkn}`));
    assert.equal((await list('s1')).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await list('s2')).status, 200);
    assert.equal(userNew('s2').length, 1, 'one USER_NEW per session, whichever worker answers');
    const s1 = userNew('s1');
    assert.equal(s1.length, 1);
    assert.equal(s1[0]![5], sessionOf('keyed', 's1'));
    assert.equal(s1[0]![6], 'false');

    const r = await haze.api({ stop_sessid: s1[0]![5] });
    assert.ok(!('error' in r), JSON.stringify(r['error']));
    for (let i = 0; i < 4; i++) assert.equal((await list('s1')).status, 403, 'the stopped session is refused on every worker');
    assert.equal((await list('s2')).status, 200);
    assert.equal(userNew('s1').length, 1, 'a stopped session is not asked again');

    // a live viewer during the invalidation is asked again at once (6 fields) and ended when refused
    const v3 = player(haze.httpUrl('/keyed.flv?tkn=v3'));
    procs.push(v3);
    await cap.wait('USER_NEW', (t) => t.lines[2] === 'v3');
    await sleep(1500);
    assert.equal(v3.exitCode, null);
    cap.reply('USER_NEW', (t) => (t.lines[2] === 'v3' && t.lines.length === 6 ? 'false' : 'true'));
    const inv = await haze.api({ invalidate_sessions: 'keyed' });
    assert.ok(!('error' in inv), JSON.stringify(inv['error']));
    const recheck = await cap.wait('USER_NEW', (t) => t.lines[2] === 'v3' && t.lines.length === 6, 15_000);
    assert.deepEqual(recheck.lines.slice(0, 5), ['keyed', '127.0.0.1', 'v3', 'FLV', recheck.lines[4]!]);
    assert.match(recheck.lines[4]!, /\/keyed\.flv\?tkn=v3$/);
    assert.equal(recheck.lines[5], sessionOf('keyed', 'v3'));
    assert.ok(await exitsWithin(v3, 10_000), 'the refused live viewer ends');

    // the next requests of known sessions run USER_NEW again, with all seven fields
    assert.equal((await list('s2')).status, 200);
    assert.equal(userNew('s2').length, 2, 'USER_NEW ran again after invalidate_sessions');
    assert.equal(userNew('s2')[1]!.length, 7);
    assert.equal((await list('s1')).status, 200, 'the stop_sessid refusal is forgotten too');
    assert.equal(userNew('s1').length, 2);
    for (let i = 0; i < 3; i++) await list('s2');
    assert.equal(userNew('s2').length, 2, 'and is kept again');
    console.log(`stop_sessid / invalidate_sessions: ${Date.now() - t0} ms`);
  });
});
