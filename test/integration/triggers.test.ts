// Triggers through a running Haze (issue 5), with the two handlers of MistServer's blog posts
// rewritten as small test handlers: USER_NEW access control by a hash of user id and address
// (seed 002) as an HTTP endpoint, and RTMP_PUSH_REWRITE mapping a stream key to live+username
// (seed 001) as an executable. Allowed viewers play, denied ones get nothing, an unknown key is
// disconnected.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { giveUpAfter, mistFixtures, run, sleep, tmpDir } from '../helpers.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';

const SECRET = 'haze-test-secret';
const hashFor = (user: string, ip: string): string => crypto.createHash('md5').update(`${user}${ip}${SECRET}`).digest('hex');

describe('triggers: access control and stream keys', { timeout: 120_000 }, () => {
  let haze: HazeInstance;
  let validator: http.Server;
  const dir = tmpDir('haze-trig-');
  const seen: string[][] = [];

  before(async () => {
    // seed 002: the validation page gets USER_NEW's payload and checks ?user=&hash= in the request URL
    validator = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const [stream, host, , connector, requestUrl] = body.split('\n');
        seen.push(body.split('\n'));
        const q = new URL(requestUrl ?? '/', 'http://x').searchParams;
        const ok = q.get('hash') === hashFor(q.get('user') ?? '', host ?? '') && stream !== undefined && connector !== undefined;
        res.end(ok ? '1' : '0');
      });
    });
    await new Promise<void>((r) => validator.listen(0, '127.0.0.1', r));
    // seed 001: a stream key becomes live+username; unknown keys get an empty answer
    const script = path.join(dir, 'rewrite.sh');
    // (pushes already named live+NAME pass unchanged, for the other tests' publishers)
    fs.writeFileSync(script, '#!/bin/sh\nread url\nread host\ncase "$url" in\n  */abc123) echo "rtmp://127.0.0.1/live/live+alice" ;;\n  */live/live+*) echo "$url" ;;\n  *) echo "" ;;\nesac\n');
    fs.chmodSync(script, 0o755);
    haze = await startHaze({ workers: 2 });
    const port = (validator.address() as AddressInfo).port;
    const r = await haze.api({
      config: {
        triggers: {
          USER_NEW: [{ handler: `http://127.0.0.1:${port}/validate`, sync: true, default: 'false' }],
          RTMP_PUSH_REWRITE: [{ handler: script, sync: true, default: '' }],
        },
      },
    });
    assert.ok(!('error' in r), JSON.stringify(r));
    await sleep(500);
  });
  after(async () => {
    await haze?.stop();
    validator?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('RTMP_PUSH_REWRITE maps a stream key to live+username; an unknown key is disconnected', async () => {
    const bad = publishFile(path.join(mistFixtures, 'small.flv'), haze.rtmpUrl('wrongkey'));
    assert.notEqual(await Promise.race([exited(bad), giveUpAfter(15_000, 'hung')]), 0, 'the unknown key is refused');
    const pub = publishFile(path.join(mistFixtures, 'small.flv'), haze.rtmpUrl('abc123'), ['-stream_loop', '-1']);
    try {
      await sleep(2000);
      const user = '7';
      const ok = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', haze.httpUrl(`/live+alice.flv?tkn=a&user=${user}&hash=${hashFor(user, '127.0.0.1')}`)], { timeoutMs: 20_000 });
      assert.equal(ok.code, 0, ok.stderr.toString());
      assert.match(ok.stdout.toString(), /h264/);
      assert.match(haze.log(), /live\+alice/);
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
  });

  it('USER_NEW: allowed viewers play, denied ones get nothing (HTTP and RTMP), one call per session', async () => {
    const pub = publishFile(path.join(mistFixtures, 'small.flv'), haze.rtmpUrl('live+gate'), ['-stream_loop', '-1']);
    try {
      await sleep(1500);
      const user = '42';
      const good = `?tkn=good&user=${user}&hash=${hashFor(user, '127.0.0.1')}`;
      const allowed = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', haze.httpUrl(`/live+gate.flv${good}`)], { timeoutMs: 20_000 });
      assert.equal(allowed.code, 0, allowed.stderr.toString());
      const denied = await fetch(haze.httpUrl(`/live+gate.flv?tkn=bad&user=${user}&hash=nothashed`));
      assert.equal(denied.status, 403);
      assert.equal((await denied.arrayBuffer()).byteLength, `Access to live+gate denied\n`.length);
      // HLS: the playlist and its segments are one session: USER_NEW once
      const before = seen.length;
      const hls = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', haze.httpUrl(`/hls/live+gate/index.m3u8?tkn=hls&user=${user}&hash=${hashFor(user, '127.0.0.1')}`)], { timeoutMs: 20_000 });
      assert.equal(hls.code, 0, hls.stderr.toString());
      const hlsCalls = seen.slice(before).filter((p) => p[2] === 'hls');
      // its requests reach both workers; the decision is shared through the run folder
      assert.equal(hlsCalls.length, 1, 'one USER_NEW for the whole HLS session');
      const payload = hlsCalls[0]!;
      assert.equal(payload[0], 'live+gate');
      assert.equal(payload[1], '127.0.0.1');
      assert.equal(payload[3], 'HLS');
      assert.match(payload[4]!, /^http:\/\/127\.0\.0\.1:\d+\/hls\/live\+gate\/index\.m3u8\?tkn=hls/);
      assert.match(payload[5]!, /^[0-9a-f]{64}$/);
      assert.equal(payload[6], 'false');
      // RTMP: a denied player gets no media
      const rtmpDenied = await run('ffmpeg', ['-v', 'error', '-i', haze.rtmpUrl('live+gate?tkn=r&user=1&hash=x'), '-t', '1', '-f', 'null', '-'], { timeoutMs: 20_000 });
      assert.notEqual(rtmpDenied.code, 0, 'RTMP play refused');
      const rtmpOk = await run('ffmpeg', ['-v', 'error', '-i', haze.rtmpUrl(`live+gate?tkn=r2&user=${user}&hash=${hashFor(user, '127.0.0.1')}`), '-t', '1', '-f', 'null', '-'], { timeoutMs: 20_000 });
      assert.equal(rtmpOk.code, 0, rtmpOk.stderr.toString());
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
  });
});
