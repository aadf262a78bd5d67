// Connection triggers, play rewrites, fallbacks and viewer sessions through a running Haze with
// two workers (issue 5): CONN_OPEN, CONN_PLAY and CONN_CLOSE fired by real clients (ffprobe over
// HTTP-FLV, HLS and RTMP, `haze analyse` over dtsc://) with their payloads checked field by
// field; a refusing CONN_OPEN or CONN_PLAY serves nothing; PLAY_REWRITE maps an alias to a live
// stream; DEFAULT_STREAM, fallback_stream and defaultStream send viewers of streams that cannot be
// opened to a VoD file; USER_END fires once, about 15 s after an HLS session spread over both
// workers ended, with its byte counts and duration.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { pollUntil, repoRoot, run, sleep } from '../helpers.js';
import { exited, publishTestPattern, startHaze, type HazeInstance } from './harness.js';
import { startTriggerCapture, type CapturedTrigger, type TriggerCapture } from './trigger-capture.js';

const DEMO = path.join(repoRoot, 'media/demo.mp4');

/**
 * ffprobe's streams of a URL; `code` 0 when it could read it. The live test pattern has mono
 * audio, the fallback file (media/demo.mp4) stereo: `channels` tells which one played.
 */
async function probe(url: string): Promise<{ code: number | null; streams: string[]; width: string; channels: number; duration: number; stderr: string }> {
  const r = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,channels:format=duration', '-of', 'json', url], { timeoutMs: 30_000 });
  if (r.code !== 0) return { code: r.code, streams: [], width: '', channels: 0, duration: NaN, stderr: r.stderr };
  const j = JSON.parse(r.stdout.toString()) as { streams?: { codec_name?: string; width?: number; channels?: number }[]; format?: { duration?: string } };
  const streams = (j.streams ?? []).map((s) => s.codec_name ?? '?').sort();
  const channels = j.streams?.find((s) => s.channels)?.channels ?? 0;
  return { code: 0, streams, width: String(j.streams?.find((s) => s.width)?.width ?? ''), channels, duration: Number(j.format?.duration ?? NaN), stderr: r.stderr };
}

/** A GET on its own TCP connection: status, body bytes, headers. */
function fetchOnce(url: string): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

const sessionIdOf = (stream: string, host: string, token: string): string => createHash('sha256').update(`${stream}\n${host}\n${token}`).digest('hex');

describe('connection triggers, play rewrites, fallbacks and USER_END', { timeout: 240_000 }, () => {
  let haze: HazeInstance;
  let cap: TriggerCapture;
  let pub: ReturnType<typeof publishTestPattern>;
  let http8080: string;

  /** Sets config.triggers (every handler posts to the capture) and lets the workers see it. */
  async function triggers(map: Record<string, Record<string, unknown>[]>, extra: Record<string, unknown> = {}): Promise<void> {
    const r = await haze.api({ config: { triggers: map, ...extra } });
    assert.ok(!('error' in r), JSON.stringify(r));
    await sleep(600);
  }
  /** Triggers of `name` that arrived after `since` and match `pred`. */
  const seenSince = (name: string, since: number, pred: (t: CapturedTrigger) => boolean = () => true): CapturedTrigger[] => cap.of(name).filter((t) => t.atMs >= since && pred(t));
  const waitSince = (name: string, since: number, pred: (t: CapturedTrigger) => boolean = () => true, timeoutMs = 20_000): Promise<CapturedTrigger> => cap.wait(name, (t) => t.atMs >= since && pred(t), timeoutMs);

  before(async () => {
    cap = await startTriggerCapture();
    haze = await startHaze({ workers: 2 });
    http8080 = `127.0.0.1:${haze.ports.http}`;
    const r = await haze.api({
      addstream: {
        // a live stream whose viewers play a VoD file while it is offline ($basename: "show")
        show: { source: 'push://127.0.0.1', fallback_stream: '$basename_vod' },
        show_vod: { source: DEMO },
        offline: { source: 'push://127.0.0.1' },
      },
    });
    assert.ok(!('error' in r), JSON.stringify(r));
    pub = publishTestPattern(haze.rtmpUrl('live+a'), 230);
    // the stream is online once a keyframe of each track is in
    const until = Date.now() + 20_000;
    for (;;) {
      const res = await fetchOnce(haze.httpUrl('/json_live+a.js'));
      if (res.status === 200 && !/"error"/.test(res.body.toString())) break;
      if (Date.now() > until) throw new Error(`live+a did not come online: ${res.body.toString()}`);
      await sleep(300);
    }
    await sleep(2500); // a segment or two for HLS
  });

  after(async () => {
    pub?.kill('SIGINT');
    if (pub) await exited(pub);
    await haze?.stop();
    await cap?.close();
  });

  it('CONN_OPEN, CONN_PLAY and CONN_CLOSE for HTTP-FLV, HLS, RTMP and dtsc:// viewers', async () => {
    await triggers({ CONN_OPEN: [cap.handler({ sync: true })], CONN_PLAY: [cap.handler({ sync: true })], CONN_CLOSE: [cap.handler()] });

    // HTTP-FLV: one request, one connection
    let since = Date.now();
    const flv = await probe(haze.httpUrl('/live+a.flv?tkn=f1'));
    assert.equal(flv.code, 0, flv.stderr);
    assert.deepEqual(flv.streams, ['aac', 'h264']);
    const flvUrl = `http://${http8080}/live+a.flv?tkn=f1`;
    for (const name of ['CONN_OPEN', 'CONN_PLAY', 'CONN_CLOSE']) {
      const t = await waitSince(name, since, (x) => x.lines[2] === 'FLV');
      assert.deepEqual(t.lines, ['live+a', '127.0.0.1', 'FLV', flvUrl], name);
    }
    assert.equal(seenSince('CONN_OPEN', since).length, 1, 'one connection');

    // HLS: the playlist request opens the connection; its keep-alive segment requests belong to it
    since = Date.now();
    const hls = await probe(haze.httpUrl('/hls/live+a/index.m3u8'));
    assert.equal(hls.code, 0, hls.stderr);
    assert.deepEqual(hls.streams, ['aac', 'h264']);
    const open = await waitSince('CONN_OPEN', since, (x) => x.lines[2] === 'HLS');
    assert.deepEqual(open.lines, ['live+a', '127.0.0.1', 'HLS', `http://${http8080}/hls/live+a/index.m3u8`]);
    const play = await waitSince('CONN_PLAY', since, (x) => x.lines[2] === 'HLS');
    assert.deepEqual(play.lines.slice(0, 3), ['live+a', '127.0.0.1', 'HLS']);
    assert.match(play.lines[3]!, new RegExp(`^http://${http8080.replace(/\./g, '\\.')}/hls/live\\+a/`));
    assert.equal(play.lines.length, 4);
    await waitSince('CONN_CLOSE', since, (x) => x.lines[2] === 'HLS');
    const hlsOpens = seenSince('CONN_OPEN', since, (x) => x.lines[2] === 'HLS').length;
    const hlsCloses = seenSince('CONN_CLOSE', since, (x) => x.lines[2] === 'HLS').length;
    assert.ok(hlsOpens >= 1 && hlsOpens <= 4, `CONN_OPEN per TCP connection, not per segment (${hlsOpens})`);
    await sleep(500);
    assert.equal(seenSince('CONN_CLOSE', since, (x) => x.lines[2] === 'HLS').length, Math.max(hlsCloses, hlsOpens), 'every connection closes once');

    // RTMP
    since = Date.now();
    const rtmp = await probe(haze.rtmpUrl('live+a'));
    assert.equal(rtmp.code, 0, rtmp.stderr);
    assert.deepEqual(rtmp.streams, ['aac', 'h264']);
    for (const name of ['CONN_OPEN', 'CONN_PLAY', 'CONN_CLOSE']) {
      const t = await waitSince(name, since, (x) => x.lines[2] === 'RTMP');
      assert.deepEqual(t.lines, ['live+a', '127.0.0.1', 'RTMP', `rtmp://127.0.0.1:${haze.ports.rtmp}/live/live+a`], name);
    }

    // dtsc:// pulled by haze analyse
    since = Date.now();
    const pull = await run(process.execPath, [path.join(repoRoot, 'bin/haze'), 'analyse', `dtsc://127.0.0.1:${haze.ports.dtsc}/live+a`, '--validate', '--limit', '60'], { timeoutMs: 30_000 });
    assert.equal(pull.code, 0, pull.stderr);
    for (const name of ['CONN_OPEN', 'CONN_PLAY', 'CONN_CLOSE']) {
      const t = await waitSince(name, since, (x) => x.lines[2] === 'DTSC');
      assert.deepEqual(t.lines, ['live+a', '127.0.0.1', 'DTSC', `dtsc://127.0.0.1:${haze.ports.dtsc}/live+a`], name);
    }
  });

  it('a refusing CONN_OPEN or CONN_PLAY serves nothing', async () => {
    await triggers({ CONN_OPEN: [cap.handler({ sync: true })], CONN_PLAY: [cap.handler({ sync: true })], CONN_CLOSE: [cap.handler()] });
    cap.reply('CONN_OPEN', 'false');
    try {
      let since = Date.now();
      const refused = await fetchOnce(haze.httpUrl('/live+a.flv'));
      assert.equal(refused.status, 403);
      assert.equal(refused.body.toString(), 'Connection refused\n');
      assert.equal(refused.headers['connection'], 'close');
      const t = await waitSince('CONN_OPEN', since);
      assert.deepEqual(t.lines, ['live+a', '127.0.0.1', 'FLV', `http://${http8080}/live+a.flv`]);
      assert.equal(seenSince('CONN_PLAY', since).length, 0, 'never attached');
      since = Date.now();
      const hls = await fetchOnce(haze.httpUrl('/hls/live+a/index.m3u8'));
      assert.equal(hls.status, 403);
      assert.doesNotMatch(hls.body.toString(), /#EXTM3U/);
      since = Date.now();
      const rtmp = await probe(haze.rtmpUrl('live+a'));
      assert.notEqual(rtmp.code, 0, 'RTMP play refused');
      await waitSince('CONN_OPEN', since, (x) => x.lines[2] === 'RTMP');
      assert.equal(seenSince('CONN_PLAY', since).length, 0);
      assert.match(haze.log(), /rtmp play refused: .*Connection refused by CONN_OPEN/);
    } finally {
      cap.reply('CONN_OPEN', 'true');
    }
    cap.reply('CONN_PLAY', 'false');
    try {
      const since = Date.now();
      const refused = await fetchOnce(haze.httpUrl('/live+a.ts'));
      assert.equal(refused.status, 403);
      assert.equal(refused.body.toString(), 'Not allowed to play live+a\n');
      const t = await waitSince('CONN_PLAY', since);
      assert.deepEqual(t.lines, ['live+a', '127.0.0.1', 'HTTPTS', `http://${http8080}/live+a.ts`]);
      // the refused connection still closes
      await waitSince('CONN_CLOSE', since, (x) => x.lines[2] === 'HTTPTS');
      const vod = await fetchOnce(haze.httpUrl('/demo.mp4'));
      assert.equal(vod.status, 403, 'a file stream is refused too');
      const rtmp = await probe(haze.rtmpUrl('live+a'));
      assert.notEqual(rtmp.code, 0, 'RTMP play refused after attaching');
      assert.match(haze.log(), /rtmp play refused: .*Not allowed to play live\+a \(CONN_PLAY\)/);
      const pull = await run(process.execPath, [path.join(repoRoot, 'bin/haze'), 'analyse', `dtsc://127.0.0.1:${haze.ports.dtsc}/live+a`, '--validate', '--limit', '20'], { timeoutMs: 30_000 });
      assert.notEqual(pull.code, 0, 'dtsc:// pull refused');
    } finally {
      cap.reply('CONN_PLAY', 'true');
    }
  });

  it('PLAY_REWRITE maps an alias to a live stream; an empty answer refuses', async () => {
    await triggers({ PLAY_REWRITE: [cap.handler({ sync: true, default: '' })] });
    cap.reply('PLAY_REWRITE', (t) => (t.lines[0] === 'alias' ? 'live+a' : ''));
    const since = Date.now();
    const flv = await probe(haze.httpUrl('/alias.flv'));
    assert.equal(flv.code, 0, flv.stderr);
    assert.deepEqual(flv.streams, ['aac', 'h264']);
    assert.equal(flv.channels, 1, 'the live test pattern');
    const t = await waitSince('PLAY_REWRITE', since);
    assert.deepEqual(t.lines, ['alias', '127.0.0.1', 'FLV', `http://${http8080}/alias.flv`]);
    const hls = await probe(haze.httpUrl('/hls/alias/index.m3u8'));
    assert.equal(hls.code, 0, hls.stderr);
    const rtmp = await probe(haze.rtmpUrl('alias'));
    assert.equal(rtmp.code, 0, rtmp.stderr);
    const r = await waitSince('PLAY_REWRITE', since, (x) => x.lines[2] === 'RTMP');
    assert.deepEqual(r.lines, ['alias', '127.0.0.1', 'RTMP', `rtmp://127.0.0.1:${haze.ports.rtmp}/live/alias`]);
    const refused = await fetchOnce(haze.httpUrl('/live+a.flv'));
    assert.equal(refused.status, 403, 'an empty answer refuses');
    await triggers({});
  });

  it('fallback_stream, DEFAULT_STREAM and defaultStream play a VoD file for streams that cannot be opened', async () => {
    await triggers({});
    // fallback_stream with a variable: the offline live stream show+x plays show_vod (demo.mp4)
    let p = await probe(haze.httpUrl('/show+x.flv'));
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(p.streams, ['aac', 'h264']);
    assert.equal(p.channels, 2, 'the file plays');
    p = await probe(haze.httpUrl('/show+x.mp4'));
    assert.equal(p.code, 0, p.stderr);
    assert.ok(Math.abs(p.duration - 12) < 0.5, `the file's 12 s (${p.duration})`);
    p = await probe(haze.httpUrl('/hls/show+x/index.m3u8'));
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.channels, 2);
    assert.ok(Math.abs(p.duration - 12) < 1, `the file's 12 s over HLS (${p.duration})`);
    p = await probe(haze.rtmpUrl('show+x'));
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(p.streams, ['aac', 'h264']);
    assert.equal(p.channels, 2);
    // an online stream is not replaced
    const pubShow = publishTestPattern(haze.rtmpUrl('show+live'), 30);
    try {
      // (asked through the API: the stream's own info page would describe its fallback while it is offline)
      await pollUntil('show+live online', async () => {
        const a = (await haze.api({ active_streams: { streams: ['show+live'], fields: ['status'] } })) as { active_streams?: { data?: Record<string, string[]> } };
        return a.active_streams?.data?.['show+live']?.[0] === 'Online';
      }, 20_000, 200);
      const live = await probe(haze.httpUrl('/show+live.flv'));
      assert.equal(live.code, 0, live.stderr);
      assert.equal(live.channels, 1, 'the live stream, not the file');
    } finally {
      pubShow.kill('SIGINT');
      await exited(pubShow);
    }

    // DEFAULT_STREAM decides for a stream without fallback_stream (its payload: the setting first)
    await triggers({ DEFAULT_STREAM: [cap.handler({ sync: true, default: '' })] }, { defaultStream: 'nothing_$stream' });
    cap.reply('DEFAULT_STREAM', (t) => (t.lines[1] === 'offline' ? 'show_vod' : ''));
    const since = Date.now();
    p = await probe(haze.httpUrl('/offline.mp4'));
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(p.streams, ['aac', 'h264']);
    assert.ok(Math.abs(p.duration - 12) < 0.5, `the file (${p.duration})`);
    const t = await waitSince('DEFAULT_STREAM', since);
    assert.deepEqual(t.lines, ['nothing_$stream', 'offline', '127.0.0.1', 'MP4', `http://${http8080}/offline.mp4`]);
    const none = await fetchOnce(haze.httpUrl('/nosuch.flv'));
    assert.equal(none.status, 404, 'an empty answer: the request fails');

    // without a handler, config.defaultStream with variables: unknown+show -> show_vod
    await triggers({}, { defaultStream: '${wildcard}_vod' });
    p = await probe(haze.httpUrl('/unknown+show.mkv'));
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(p.streams, ['aac', 'h264']);
    assert.equal(p.channels, 2);
    p = await probe(haze.httpUrl('/unknown+show.ts'));
    assert.equal(p.code, 0, p.stderr);
    assert.equal(p.channels, 2);
    await triggers({}, { defaultStream: '' });
    assert.equal((await fetchOnce(haze.httpUrl('/unknown+show.flv'))).status, 404);
  });

  it('USER_END fires once, ~15 s after an HLS session over both workers ends', async () => {
    await triggers({ USER_END: [cap.handler()], CONN_OPEN: [cap.handler()] });
    const since = Date.now();
    const token = 'sess1';
    const base = `/hls/live+a`;
    const pids = new Set<string>();
    let bodyBytes = 0;
    // one player's requests, each on its own TCP connection, until both workers served some
    const master = await fetchOnce(haze.httpUrl(`${base}/index.m3u8?tkn=${token}`));
    assert.equal(master.status, 200);
    bodyBytes += master.body.length;
    const variant = master.body.toString().split('\n').find((l) => l && !l.startsWith('#'))!;
    const variantUrl = `${base}/${variant.split('?')[0]}?tkn=${token}`;
    // for a few seconds at least, so the session has a duration to measure
    for (let i = 0; i < 60 && (pids.size < 2 || Date.now() - since < 4000); i++) {
      const pl = await fetchOnce(haze.httpUrl(variantUrl));
      assert.equal(pl.status, 200);
      bodyBytes += pl.body.length;
      const seg = pl.body.toString().split('\n').filter((l) => l && !l.startsWith('#')).pop()!;
      const segment = await fetchOnce(haze.httpUrl(`${path.posix.dirname(variantUrl.split('?')[0]!)}/${seg.split('?')[0]}?tkn=${token}`));
      assert.equal(segment.status, 200);
      bodyBytes += segment.body.length;
      await sleep(200);
      for (const t of seenSince('CONN_OPEN', since)) pids.add(String(t.headers['x-pid']));
    }
    assert.equal(pids.size, 2, 'the requests reached both workers');
    const endedAt = Date.now();
    const sessionStart = since;
    // (viewers of earlier tests are sessions too: theirs end meanwhile)
    const end = await waitSince('USER_END', since, (t) => t.lines[0] === token, 40_000);
    const afterS = (end.atMs - endedAt) / 1000;
    assert.ok(afterS >= 13 && afterS <= 25, `USER_END ${afterS.toFixed(1)} s after the last request`);
    const [tkn, streams, connectors, hosts, durationS, bytesUp, bytesDown, tags, hostSeconds, connectorSeconds, streamSeconds, sessionId] = end.lines;
    assert.equal(end.lines.length, 12);
    assert.equal(tkn, token);
    assert.equal(streams, 'live+a');
    assert.equal(connectors, 'HLS');
    assert.equal(hosts, '127.0.0.1');
    const duration = Number(durationS);
    const wallS = (endedAt - sessionStart) / 1000;
    assert.ok(duration >= wallS - 2 && duration <= wallS + 1, `duration ${duration} s of ${wallS.toFixed(1)} s`);
    assert.ok(Number(bytesDown) >= bodyBytes && Number(bytesDown) < bodyBytes + 200_000, `bytes down ${bytesDown} (bodies ${bodyBytes})`);
    assert.ok(Number(bytesUp) > 100 && Number(bytesUp) < 100_000, `bytes up ${bytesUp} (the requests)`);
    assert.equal(tags, '');
    // connection-seconds: each request's connection was short
    for (const v of [hostSeconds, connectorSeconds, streamSeconds]) assert.match(v!, /^\d+$/);
    assert.ok(Number(connectorSeconds) <= wallS + 2);
    assert.equal(sessionId, sessionIdOf('live+a', '127.0.0.1', token));
    // once: no second report from the other worker (whose share ends within a second or two of the owner's)
    await sleep(4000);
    assert.equal(seenSince('USER_END', since, (t) => t.lines[11] === sessionId).length, 1);
    await triggers({});
  });
});
