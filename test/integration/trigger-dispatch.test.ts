// TriggerDispatcher against real handlers: a node:http server on 127.0.0.1 and executable shell
// scripts, including the seeds' two PHP handlers rewritten (USER_NEW access control as an HTTP
// endpoint, RTMP_PUSH_REWRITE stream-key mapping as a script), driven through fire() with the
// payloads Haze sends.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { TriggerDispatcher, triggerReplyIsTrue, type TriggerStat, type TriggerDispatcherOptions } from '../../src/triggers/dispatch.js';
import { compileTriggers, type TriggerConfig } from '../../src/triggers/trigger-config.js';
import { freePort, sleep, tmpDir } from '../helpers.js';

const unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => unhandled.push(e));

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const seen: Seen[] = [];
let concurrent = 0;
let maxConcurrent = 0;
const SECRET = 'something very very secret';
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

/** The seed's USER_NEW validation page, as a JS endpoint. */
function userNewDecision(body: string): string {
  const [, ip = '', , protocol = '', requestUrl] = body.split('\n');
  if (protocol === 'HTTP' || protocol === 'HTTPS') return '1';
  if (requestUrl === undefined) return '0';
  const q = new URL(requestUrl, 'http://x').searchParams;
  const user = q.get('user');
  const hash = q.get('hash');
  if (user === null || hash === null) return '0';
  const plainIp = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (hash !== md5(plainIp + user + SECRET)) return '0';
  return [1, 2, 3, 6].includes(Number(user)) ? '1' : '0';
}

const server = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (d: string) => (body += d));
  req.on('end', () => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    const route = req.url ?? '';
    if (route === '/hang') return; // never answers
    const reply = (text: string, status = 200): void => {
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(text);
    };
    if (route === '/true') return reply('true');
    if (route === '/yes-padded') return reply('  YES please\n');
    if (route === '/false') return reply('false');
    if (route === '/rewrite') return reply('other+stream\n');
    if (route === '/500') return reply('true', 500);
    if (route === '/big') return reply('1'.repeat(200_000));
    if (route === '/user-new') return reply(userNewDecision(body));
    if (route === '/slow') {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      setTimeout(() => {
        concurrent--;
        reply('true');
      }, 150);
      return;
    }
    reply('nope', 404);
  });
});

let base = '';
let closedPort = 0;
const dir = tmpDir('haze-trig-');
const strays: number[] = [];

const ready = (async () => {
  const port = await freePort();
  closedPort = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  base = `http://127.0.0.1:${port}`;
})();

after(async () => {
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  fs.rmSync(dir, { recursive: true, force: true });
});

function script(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${text}\n`);
  fs.chmodSync(file, 0o755);
  return file;
}

const IDENT = { iid: 'iid-123', serverid: 'haze-test' };

function dispatcher(triggers: Record<string, unknown>, extra: Partial<TriggerDispatcherOptions> = {}, stats?: TriggerStat[]): TriggerDispatcher {
  const config = compileTriggers(triggers);
  return new TriggerDispatcher({
    config: (): TriggerConfig => config,
    identity: IDENT,
    stat: (s) => stats?.push(s),
    ...extra,
  });
}

const CONN_PAYLOAD = { stream: 'live', host: '127.0.0.1', connector: 'HLS', requestUrl: 'http://127.0.0.1:8080/hls/live/index.m3u8' };

test('reply parsing: 1 / yes / true / cont prefixes, case-insensitive, leading whitespace ignored', () => {
  for (const t of ['1', 'true', 'TRUE', 'True\n', ' yes', 'yesss', 'cont', 'Continue', '\n\t1\n', '10']) assert.equal(triggerReplyIsTrue(t), true, JSON.stringify(t));
  for (const f of ['', '0', 'false', 'no', 'tru', 'y', 'ok', ' co', 'null']) assert.equal(triggerReplyIsTrue(f), false, JSON.stringify(f));
});

test('nothing configured or nothing matching: not handled, allowed, and no work', async () => {
  await ready;
  let calls = 0;
  const d = new TriggerDispatcher({ config: () => (calls++, {}), identity: IDENT });
  const p1 = d.fire('CONN_OPEN', 'live', CONN_PAYLOAD);
  const p2 = d.fire('USER_NEW', 'live', () => assert.fail('payload built with no handler'));
  assert.equal(p1, p2, 'one shared settled promise');
  assert.deepEqual(await p1, { response: '', allowed: true, handled: false });
  assert.equal(calls, 2);
  const d2 = dispatcher({ CONN_OPEN: [{ handler: `${base}/false`, sync: true, streams: ['other'] }] });
  assert.deepEqual(await d2.fire('CONN_OPEN', 'live', CONN_PAYLOAD), { response: '', allowed: true, handled: false });
  assert.equal(d2.hasHandlers('CONN_OPEN', 'live'), false);
  assert.equal(d2.hasHandlers('CONN_OPEN', 'other+x'), true);
});

test('HTTP handler: POST with MistServer headers and the exact payload; the reply decides', async () => {
  await ready;
  const stats: TriggerStat[] = [];
  const d = dispatcher({ USER_NEW: [{ handler: `${base}/true`, sync: true }], CONN_PLAY: [{ handler: `${base}/false`, sync: true }] }, {}, stats);
  seen.length = 0;
  const before = Date.now();
  const payload = { stream: 'live', host: '203.0.113.5', token: 'tkn1', connector: 'HLS', requestUrl: 'http://host:8080/hls/live/index.m3u8', sessionId: 'sess9', tokenValid: 'false' };
  const out = await d.fire('USER_NEW', 'live', payload);
  assert.deepEqual(out, { response: 'true', allowed: true, handled: true });
  assert.equal(seen.length, 1);
  const r = seen[0]!;
  assert.equal(r.method, 'POST');
  assert.equal(r.url, '/true');
  assert.equal(r.body, 'live\n203.0.113.5\ntkn1\nHLS\nhttp://host:8080/hls/live/index.m3u8\nsess9\nfalse');
  assert.equal(r.headers['content-type'], 'text/plain');
  assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.body)));
  assert.equal(r.headers['x-trigger'], 'USER_NEW');
  assert.equal(r.headers['x-instance'], 'iid-123');
  assert.equal(r.headers['x-name'], 'haze-test');
  assert.equal(r.headers['x-pid'], String(process.pid));
  assert.match(String(r.headers['x-trigger-uuid']), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const ms = Number(r.headers['x-trigger-unixmillis']);
  assert.ok(ms >= before && ms <= Date.now(), `X-Trigger-UnixMillis ${ms}`);
  const date = Date.parse(String(r.headers['date']));
  assert.ok(Math.abs(date - ms) < 1000, `Date ${r.headers['date']}`);
  assert.deepEqual(await d.fire('CONN_PLAY', 'live', CONN_PAYLOAD), { response: 'false', allowed: false, handled: true });
  assert.equal(stats.length, 2);
  assert.equal(stats[0]!.name, 'USER_NEW');
  assert.equal(stats[0]!.ok, true);
  assert.ok(Number.isInteger(stats[0]!.ms) && stats[0]!.ms >= 0);
  // a second fire gets a new UUID
  await d.fire('USER_NEW', 'live', payload);
  assert.notEqual(seen[2]!.headers['x-trigger-uuid'], r.headers['x-trigger-uuid']);
});

test('rewrite triggers return the reply text (trimmed); bool replies read as MistServer does', async () => {
  await ready;
  const d = dispatcher({ PLAY_REWRITE: [{ handler: `${base}/rewrite`, sync: true }], CONN_OPEN: [{ handler: `${base}/yes-padded`, sync: true }] });
  assert.deepEqual(await d.fire('PLAY_REWRITE', 'live', CONN_PAYLOAD), { response: 'other+stream', allowed: false, handled: true });
  assert.deepEqual(await d.fire('CONN_OPEN', 'live', CONN_PAYLOAD), { response: '  YES please\n', allowed: true, handled: true });
});

test('executable handler: argv[1], environment, payload on stdin, stdout as the reply', async () => {
  await ready;
  const out = path.join(dir, 'exec-out');
  const exe = script(
    'decide.sh',
    `{ echo "argc=$#"; echo "arg1=$1"; echo "MIST_TRIGGER=$MIST_TRIGGER"; echo "MIST_TRIG_DEF=$MIST_TRIG_DEF"; echo "MIST_PID=$MIST_PID"; echo "MIST_INSTANCE=$MIST_INSTANCE"; echo "MIST_NAME=$MIST_NAME"; } > "${out}.env"
cat > "${out}.stdin"
if grep -q '^allowed-host$' "${out}.stdin"; then printf 'true'; else printf 'false'; fi`,
  );
  const d = dispatcher({ CONN_OPEN: [{ handler: exe, sync: true, default: 'maybe' }] });
  const r1 = await d.fire('CONN_OPEN', 'cam', { stream: 'cam', host: 'allowed-host', connector: 'RTMP', requestUrl: 'rtmp://h/live/cam' });
  assert.deepEqual(r1, { response: 'true', allowed: true, handled: true });
  assert.equal(fs.readFileSync(`${out}.stdin`, 'utf8'), 'cam\nallowed-host\nRTMP\nrtmp://h/live/cam');
  assert.equal(
    fs.readFileSync(`${out}.env`, 'utf8'),
    `argc=1\narg1=CONN_OPEN\nMIST_TRIGGER=CONN_OPEN\nMIST_TRIG_DEF=maybe\nMIST_PID=${process.pid}\nMIST_INSTANCE=iid-123\nMIST_NAME=haze-test\n`,
  );
  const r2 = await d.fire('CONN_OPEN', 'cam', { stream: 'cam', host: 'other-host', connector: 'RTMP', requestUrl: 'rtmp://h/live/cam' });
  assert.deepEqual(r2, { response: 'false', allowed: false, handled: true });
});

test('several handlers are AND-ed; the response is the last blocking one', async () => {
  await ready;
  const yes = script('yes.sh', "cat >/dev/null; printf 'yes'");
  const no = script('no.sh', "cat >/dev/null; printf '0'");
  const both = dispatcher({ STREAM_PUSH: [{ handler: `${base}/true`, sync: true }, { handler: yes, sync: true }] });
  assert.deepEqual(await both.fire('STREAM_PUSH', 'live', CONN_PAYLOAD), { response: 'yes', allowed: true, handled: true });
  const one = dispatcher({ STREAM_PUSH: [{ handler: `${base}/true`, sync: true }, { handler: no, sync: true }] });
  assert.deepEqual(await one.fire('STREAM_PUSH', 'live', CONN_PAYLOAD), { response: '0', allowed: false, handled: true });
  const other = dispatcher({ STREAM_PUSH: [{ handler: no, sync: true }, { handler: `${base}/true`, sync: true }] });
  assert.deepEqual(await other.fire('STREAM_PUSH', 'live', CONN_PAYLOAD), { response: 'true', allowed: false, handled: true });
  // only the handlers whose stream list matches take part
  const scoped = dispatcher({ STREAM_PUSH: [{ handler: no, sync: true, streams: ['vod'] }, { handler: yes, sync: true, streams: ['live'] }] });
  assert.deepEqual(await scoped.fire('STREAM_PUSH', 'live+alice', CONN_PAYLOAD), { response: 'yes', allowed: true, handled: true });
});

test('a hanging blocking HTTP handler yields the default after the timeout', async () => {
  await ready;
  const stats: TriggerStat[] = [];
  const d = dispatcher({ CONN_OPEN: [{ handler: `${base}/hang`, sync: true, default: 'false' }], CONN_PLAY: [{ handler: `${base}/hang`, sync: true }] }, { timeoutMs: 300 }, stats);
  const t0 = Date.now();
  assert.deepEqual(await d.fire('CONN_OPEN', 'live', CONN_PAYLOAD), { response: 'false', allowed: false, handled: true });
  const took = Date.now() - t0;
  assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
  assert.deepEqual(await d.fire('CONN_PLAY', 'live', CONN_PAYLOAD), { response: 'true', allowed: true, handled: true });
  assert.deepEqual(
    stats.map((s) => [s.name, s.ok]),
    [
      ['CONN_OPEN', false],
      ['CONN_PLAY', false],
    ],
  );
});

test('a sleeping blocking script yields the default after the timeout', async () => {
  await ready;
  const exe = script('sleep.sh', 'exec sleep 30');
  const d = dispatcher({ CONN_OPEN: [{ handler: exe, sync: true, default: 'no' }] }, { timeoutMs: 300 });
  const t0 = Date.now();
  assert.deepEqual(await d.fire('CONN_OPEN', 'live', CONN_PAYLOAD), { response: 'no', allowed: false, handled: true });
  const took = Date.now() - t0;
  assert.ok(took >= 290 && took < 2000, `took ${took} ms`);
});

test('exec kill sequence: SIGTERM at the timeout, SIGKILL later, then the default', async () => {
  await ready;
  const pidFile = path.join(dir, 'stubborn.pid');
  const sigFile = path.join(dir, 'stubborn.signals');
  const exe = script('stubborn.sh', `echo $$ > "${pidFile}"\ntrap 'echo TERM >> "${sigFile}"' TERM\nwhile :; do sleep 0.05; done`);
  const d = dispatcher({ CONN_OPEN: [{ handler: exe, sync: true, default: 'false' }] }, { timeoutMs: 400, killAfterMs: 800, giveUpAfterMs: 1500 });
  const t0 = Date.now();
  const out = await d.fire('CONN_OPEN', 'live', CONN_PAYLOAD);
  const took = Date.now() - t0;
  assert.deepEqual(out, { response: 'false', allowed: false, handled: true });
  assert.ok(took >= 790 && took < 1500, `SIGTERM was ignored, so the SIGKILL at 800 ms ended it; took ${took} ms`);
  assert.equal(fs.readFileSync(sigFile, 'utf8').trim(), 'TERM');
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  assert.throws(() => process.kill(pid, 0), /ESRCH/, 'the script is gone');
});

test('exec give-up: a grandchild holding stdout open does not hold the caller past the give-up time', async () => {
  await ready;
  const pidFile = path.join(dir, 'grandchild.pid');
  const exe = script('grandchild.sh', `sleep 20 &\necho $! > "${pidFile}"\nwait`);
  const d = dispatcher({ CONN_OPEN: [{ handler: exe, sync: true, default: 'cont' }] }, { timeoutMs: 200, killAfterMs: 300, giveUpAfterMs: 600 });
  const t0 = Date.now();
  const out = await d.fire('CONN_OPEN', 'live', CONN_PAYLOAD);
  const took = Date.now() - t0;
  strays.push(Number(fs.readFileSync(pidFile, 'utf8')));
  assert.deepEqual(out, { response: 'cont', allowed: true, handled: true });
  assert.ok(took >= 590 && took < 1500, `took ${took} ms`);
});

test('asynchronous handlers do not block and count as their default reply', async () => {
  await ready;
  const marker = path.join(dir, 'async-ran');
  const exe = script('async.sh', `cat > "${marker}.tmp"; sleep 0.3; mv "${marker}.tmp" "${marker}"; printf 'true'`);
  const d = dispatcher({
    RECORDING_END: [
      { handler: `${base}/hang`, sync: false },
      { handler: exe, sync: false },
    ],
    CONN_OPEN: [{ handler: exe, sync: false, default: 'false' }],
  }, { timeoutMs: 500 });
  seen.length = 0;
  const t0 = Date.now();
  const payload = { stream: 'live', target: '/rec/a.mkv', connector: 'MKV', bytes: '1000', secondsActive: '10', startUnix: '1', stopUnix: '11', mediaMs: '10000', firstPacketMs: '0', lastPacketMs: '10000', machineReason: 'CLEAN_EOF', humanReason: 'end of stream' };
  assert.deepEqual(await d.fire('RECORDING_END', 'live', payload), { response: '', allowed: true, handled: true });
  assert.ok(Date.now() - t0 < 200, 'fire returned before the handlers finished');
  assert.equal(fs.existsSync(marker), false);
  assert.ok(d.inFlight > 0);
  await d.idle();
  assert.equal(fs.readFileSync(marker, 'utf8'), 'live\n/rec/a.mkv\nMKV\n1000\n10\n1\n11\n10000\n0\n10000\nCLEAN_EOF\nend of stream');
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.headers['x-trigger'], 'RECORDING_END');
  // an async handler's default decides, whatever it answers
  assert.deepEqual(await d.fire('CONN_OPEN', 'live', CONN_PAYLOAD), { response: '', allowed: false, handled: true });
  await d.idle();
});

test('failing handlers yield the default', async () => {
  await ready;
  const exit1 = script('exit1.sh', "cat >/dev/null; printf 'true'; exit 1");
  const noExec = path.join(dir, 'not-executable.sh');
  fs.writeFileSync(noExec, '#!/bin/sh\nprintf true\n');
  const cases: [string, string][] = [
    [`${base}/500`, 'HTTP error status'],
    [`http://127.0.0.1:${closedPort}/x`, 'connection refused'],
    [`${base}/missing`, '404'],
    ['/nonexistent/handler', 'no such executable'],
    [noExec, 'not executable'],
    [exit1, 'non-zero exit'],
  ];
  for (const [handler, why] of cases) {
    const stats: TriggerStat[] = [];
    const d = dispatcher({ STREAM_LOAD: [{ handler, sync: true, default: 'false' }], STREAM_READY: [{ handler, sync: true }] }, {}, stats);
    assert.deepEqual(await d.fire('STREAM_LOAD', 'live', { stream: 'live' }), { response: 'false', allowed: false, handled: true }, why);
    assert.deepEqual(await d.fire('STREAM_READY', 'live', { stream: 'live', input: 'Buffer' }), { response: 'true', allowed: true, handled: true }, why);
    assert.deepEqual(stats.map((s) => s.ok), [false, false], why);
  }
});

test('global triggers reach every handler whatever its stream list', async () => {
  await ready;
  const d = dispatcher({ PUSH_REWRITE: [{ handler: `${base}/rewrite`, sync: true, streams: ['nomatch'] }] });
  const out = await d.fire('PUSH_REWRITE', 'live', { pushUrl: 'srt://h:8889?streamid=live', host: '10.1.1.1', stream: 'live' });
  assert.deepEqual(out, { response: 'other+stream', allowed: false, handled: true });
});

test('bounded: replies are cut off, executions per trigger are limited and queued, params filter', async () => {
  await ready;
  const d = dispatcher({ STREAM_SOURCE: [{ handler: `${base}/big`, sync: true }], CONN_OPEN: [{ handler: `${base}/slow`, sync: true }] }, { maxResponseBytes: 1000, maxConcurrent: 2 });
  const big = await d.fire('STREAM_SOURCE', 'live', { stream: 'live' });
  assert.equal(big.response, '1'.repeat(1000));
  maxConcurrent = 0;
  const all = await Promise.all(Array.from({ length: 6 }, () => d.fire('CONN_OPEN', 'live', CONN_PAYLOAD)));
  assert.ok(all.every((o) => o.allowed && o.response === 'true'));
  assert.equal(maxConcurrent, 2);
  // a full queue gives the default at once
  const q = dispatcher({ CONN_OPEN: [{ handler: `${base}/slow`, sync: true, default: 'false' }] }, { maxConcurrent: 1, maxQueued: 1 });
  const three = await Promise.all([1, 2, 3].map(() => q.fire('CONN_OPEN', 'live', CONN_PAYLOAD)));
  assert.deepEqual(three.map((o) => o.allowed), [true, true, false]);
  // LIVE_BANDWIDTH-style params filter
  const bw = dispatcher({ LIVE_BANDWIDTH: [{ handler: `${base}/false`, sync: true, params: '1000000' }] });
  const over = (bps: number) => (p: string) => bps >= Number(p);
  assert.equal((await bw.fire('LIVE_BANDWIDTH', 'live', { stream: 'live', bytesPerSecond: '500' }, { params: over(500) })).handled, false);
  assert.deepEqual(await bw.fire('LIVE_BANDWIDTH', 'live', { stream: 'live', bytesPerSecond: '2000000' }, { params: over(2_000_000) }), { response: 'false', allowed: false, handled: true });
});

test('seed: access control with USER_NEW (hash of user id + IP checked by an HTTP endpoint)', async () => {
  await ready;
  const d = dispatcher({ USER_NEW: [{ handler: `${base}/user-new`, sync: true, streams: ['live'], default: '0' }] });
  const ip = '::ffff:198.51.100.20';
  const url = (user: number, hashUser = user, hashIp = '198.51.100.20') => `http://haze.example:8080/hls/live/index.m3u8?user=${user}&hash=${md5(hashIp + hashUser + SECRET)}`;
  const fire = (requestUrl: string, connector = 'HLS', stream = 'live') =>
    d.fire('USER_NEW', stream, { stream, host: ip, token: 'tk', connector, requestUrl, sessionId: 'sess', tokenValid: 'false' });
  assert.equal((await fire(url(2))).allowed, true, 'user 2 with a valid hash may watch');
  assert.equal((await fire(url(6))).allowed, true);
  assert.equal((await fire(url(4))).allowed, false, 'user 4 is valid but may not watch');
  assert.equal((await fire(url(3, 2))).allowed, false, 'tampered user id');
  assert.equal((await fire(url(2, 2, '203.0.113.9'))).allowed, false, 'hash made for another IP');
  assert.equal((await fire('http://haze.example:8080/hls/live/index.m3u8')).allowed, false, 'no hash at all');
  assert.equal((await fire('http://haze.example:8080/player.js', 'HTTP')).allowed, true, 'the player files are always allowed');
  assert.equal((await fire(url(4), 'HLS', 'live+alice')).allowed, false, 'wildcard instances of live are checked too');
  assert.deepEqual(await fire(url(4), 'HLS', 'free'), { response: '', allowed: true, handled: false }, 'other streams are not checked');
  // validation page down: the configured default 0 denies
  const down = dispatcher({ USER_NEW: [{ handler: `http://127.0.0.1:${closedPort}/v`, sync: true, default: '0' }] });
  assert.equal((await down.fire('USER_NEW', 'live', { stream: 'live', host: ip, token: '', connector: 'HLS', requestUrl: url(2), sessionId: 's', tokenValid: 'false' })).allowed, false);
});

test('seed: Twitch-alike RTMP_PUSH_REWRITE (stream key -> rtmp://host/live/live+username, empty for an unknown key)', async () => {
  await ready;
  const exe = script(
    'keymap.sh',
    `IFS= read -r url
IFS= read -r ip
key=\${url##*/}
rest=\${url#rtmp://}
host=\${rest%%/*}
case "$key" in
  k3y-alice) user=alice ;;
  s3cret-bob) user=bob ;;
  *) user= ;;
esac
[ -n "$user" ] && printf 'rtmp://%s/live/live+%s' "$host" "$user"
exit 0`,
  );
  const d = dispatcher({ RTMP_PUSH_REWRITE: [{ handler: exe, sync: true }] });
  const push = (rtmpUrl: string) => d.fire('RTMP_PUSH_REWRITE', '', { rtmpUrl, host: '192.0.2.44' });
  assert.deepEqual(await push('rtmp://127.0.0.1:1935/app/k3y-alice'), { response: 'rtmp://127.0.0.1:1935/live/live+alice', allowed: false, handled: true });
  assert.equal((await push('rtmp://ingest.example.com/app/s3cret-bob')).response, 'rtmp://ingest.example.com/live/live+bob');
  assert.deepEqual(await push('rtmp://127.0.0.1:1935/app/wrong-key'), { response: '', allowed: false, handled: true }, 'empty reply: the push is refused');
});

test('no unhandled rejections', async () => {
  await sleep(50);
  assert.deepEqual(unhandled, []);
});
