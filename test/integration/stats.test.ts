// Statistics with real clients (issue 6): ffmpeg reading HLS through a byte-counting TCP relay
// is one session carrying exactly the bytes the relay passed; RTMP and HTTP-FLV viewers with
// different tokens are two sessions; an HLS viewer that goes on with MP4 under the same token is
// one; Prometheus' text form, read by a real parser, agrees with them; a controller killed with
// -9 (and one stopped while a session ends) loses no session and logs each once.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { spawn, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { giveUpAfter, runOk, sleep, tmpDir } from '../helpers.js';
import { exited, publishTestPattern, startHaze, type HazeInstance } from './harness.js';

const require = createRequire(import.meta.url);
const parsePrometheus = require('parse-prometheus-text-format') as (text: string) => { name: string; type: string; metrics: { value?: string; labels?: Record<string, string> }[] }[];

/** A TCP relay to `port` that counts the bytes each way (what the client really received and sent). */
async function countingRelay(port: number): Promise<{ port: number; down: () => number; up: () => number; close: () => void }> {
  let down = 0;
  let up = 0;
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    client.on('data', (d) => (up += d.length));
    upstream.on('data', (d) => (down += d.length));
    client.pipe(upstream);
    upstream.pipe(client);
    // a client that goes away: what Haze already sent is still read (and counted) until Haze
    // closes, so the count is every byte Haze handed to the network, whenever the client dies
    const drain = (): void => {
      upstream.unpipe(client);
      upstream.resume();
      upstream.end();
    };
    client.on('error', drain);
    client.on('close', drain);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, down: () => down, up: () => up, close: () => server.close() };
}

type Rows = { fields: string[]; data: unknown[][] };

/** The messages a WebSocket client (the `ws` package) receives in `ms`. */
function wsMessages(url: string, ms: number): Promise<unknown[][]> {
  return new Promise((resolve, reject) => {
    const got: unknown[][] = [];
    const ws = new WebSocket(url);
    ws.on('message', (data) => got.push(JSON.parse(String(data)) as unknown[]));
    ws.on('error', reject);
    setTimeout(() => {
      ws.close();
      resolve(got);
    }, ms);
  });
}
const rowsOf = (r: Rows): Record<string, unknown>[] => r.data.map((row) => Object.fromEntries(r.fields.map((f, i) => [f, row[i]])));

describe('statistics: sessions, Prometheus, access log, controller restarts', { timeout: 300_000 }, () => {
  let haze: HazeInstance;
  let pub: ChildProcess;
  let dir: string;
  let accessLog: string;
  const clients = async (streams: string[]): Promise<Record<string, unknown>[]> => {
    const r = (await haze.api({ clients: { streams } })) as { clients: Rows };
    return rowsOf(r.clients);
  };
  const prometheus = async (): Promise<ReturnType<typeof parsePrometheus>> => {
    const res = await fetch(`http://127.0.0.1:${haze.ports.api}/secret`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    return parsePrometheus(await res.text());
  };
  const metric = (families: ReturnType<typeof parsePrometheus>, name: string, labels: Record<string, string>): number | undefined => {
    const f = families.find((x) => x.name === name);
    const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
    return m?.value === undefined ? undefined : Number(m.value);
  };
  /** Waits until `pred` holds for the clients of `stream` (the collector adds up once a second). */
  const waitClients = async (stream: string, pred: (rows: Record<string, unknown>[]) => boolean, timeoutMs = 10_000): Promise<Record<string, unknown>[]> => {
    const until = Date.now() + timeoutMs;
    let rows: Record<string, unknown>[] = [];
    while (Date.now() < until) {
      rows = await clients([stream]);
      if (pred(rows)) return rows;
      await sleep(300);
    }
    assert.fail(`clients of ${stream} never matched: ${JSON.stringify(rows)}`);
  };
  const hls = (port: number, stream: string, token: string): Promise<unknown> =>
    runOk('ffmpeg', ['-v', 'error', '-i', `http://127.0.0.1:${port}/hls/${stream}/index.m3u8?tkn=${token}`, '-map', '0', '-c', 'copy', '-f', 'null', '-'], { timeoutMs: 60_000 });

  before(async () => {
    dir = tmpDir('haze-stats-');
    accessLog = path.join(dir, 'access.log');
    const vod = path.join(dir, 'thirty.mp4');
    // 62 s with a keyframe every 2 s: 31 HLS segments
    await runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '62', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '20', '-keyint_min', '20', '-sc_threshold', '0', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-b:a', '32k', vod]);
    haze = await startHaze({ workers: 2 });
    const r = await haze.api({ config: { prometheus: 'secret', accesslog: accessLog }, addstream: { thirty: { source: vod }, st: { source: 'push://127.0.0.1' } } });
    assert.ok(!('error' in r), JSON.stringify(r));
    pub = publishTestPattern(haze.rtmpUrl('st'), 280);
    const until = Date.now() + 20_000;
    const online = async (): Promise<boolean> => {
      const a = (await haze.api({ active_streams: { streams: ['st'], fields: ['status'] } })) as { active_streams: { data?: Record<string, string[]> } };
      return a.active_streams.data?.['st']?.[0] === 'Online';
    };
    while (Date.now() < until && !(await online())) await sleep(300);
  });

  after(async () => {
    pub?.kill('SIGKILL');
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('one ffmpeg HLS viewer of 31 segments is one session with the bytes it received', async () => {
    const relay = await countingRelay(haze.ports.http);
    try {
      const playlist = await fetch(`http://127.0.0.1:${haze.ports.http}/hls/thirty/index.m3u8?tkn=one`);
      const variant = (await playlist.text()).split('\n').find((l) => l && !l.startsWith('#'))!;
      const media = await fetch(new URL(variant, `http://127.0.0.1:${haze.ports.http}/hls/thirty/index.m3u8`));
      const listed = (await media.text()).split('\n').filter((l) => l && !l.startsWith('#'));
      assert.ok(listed.length >= 30, `${listed.length} segments listed`);
      const header = playlist.headers.get('x-haze-session');
      assert.equal(media.headers.get('x-haze-session'), header);
      assert.match(header ?? '', /^[0-9a-f]{64}$/);
      await hls(relay.port, 'thirty', 'one');
      // the direct playlist request above counts too: same stream, address and token
      const all = await waitClients('thirty', (rs) => rs.length === 1 && (rs[0]!['down'] as number) > relay.down());
      assert.equal(all.length, 1, JSON.stringify(all));
      const s = all[0]!;
      assert.equal(s['sessid'], header, 'X-Haze-Session names the session');
      assert.equal(s['protocol'], 'HLS');
      assert.equal(s['host'], '127.0.0.1');
      const direct = Number(playlist.headers.get('content-length') ?? 0) + Number(media.headers.get('content-length') ?? 0);
      // what the relay carried plus the one direct request (its body and headers)
      const down = s['down'] as number;
      assert.ok(down >= relay.down() + direct && down <= relay.down() + direct + 2048, `session down ${down}, relay ${relay.down()} + direct ${direct}`);
      // Prometheus, read by a real exposition parser, counts the same viewer and bytes
      const families = await prometheus();
      assert.equal(metric(families, 'mist_sessions', { stream: 'thirty', sessType: 'viewers' }), 1);
      assert.equal(metric(families, 'mist_viewcount', { stream: 'thirty' }), 1);
      assert.equal(metric(families, 'mist_bw', { stream: 'thirty', direction: 'down' }), down);
      assert.equal(metric(families, 'mist_bw', { stream: 'thirty', direction: 'up' }), s['up']);
    } finally {
      relay.close();
    }
  });

  it('tknMode: tokens in playlist URLs (bit 4) and the tkn cookie (bit 8) follow the setting', async () => {
    const variantOf = async (): Promise<{ line: string; cookie: string | null }> => {
      const res = await fetch(`http://127.0.0.1:${haze.ports.http}/hls/thirty/index.m3u8?tkn=cookie1`);
      return { line: (await res.text()).split('\n').find((l) => l && !l.startsWith('#'))!, cookie: res.headers.get('set-cookie') };
    };
    let v = await variantOf();
    assert.match(v.line, /[?&]tkn=cookie1/);
    assert.match(v.cookie ?? '', /^tkn=cookie1; Max-Age=600/);
    assert.equal((await haze.api({ config: { tknMode: 3 } }))['error'], undefined);
    await sleep(700);
    v = await variantOf();
    assert.doesNotMatch(v.line, /tkn=/);
    assert.equal(v.cookie, null);
    // a cookie alone identifies the viewer when bit 2 is set
    const byCookie = await fetch(`http://127.0.0.1:${haze.ports.http}/hls/thirty/index.m3u8`, { headers: { cookie: 'tkn=cookie1' } });
    const byQuery = await fetch(`http://127.0.0.1:${haze.ports.http}/hls/thirty/index.m3u8?tkn=cookie1`);
    assert.equal(byCookie.headers.get('x-haze-session'), byQuery.headers.get('x-haze-session'));
    await Promise.all([byCookie.text(), byQuery.text()]);
    await haze.api({ config: { tknMode: 15 } });
    await sleep(700);
  });

  it('an RTMP and an HTTP-FLV viewer from one address with different tokens are two sessions; Prometheus agrees', async () => {
    const rtmp = spawn('ffmpeg', ['-v', 'error', '-i', `${haze.rtmpUrl('st')}?tkn=r1`, '-t', '30', '-c', 'copy', '-f', 'null', '-']);
    const flv = spawn('ffmpeg', ['-v', 'error', '-i', `http://127.0.0.1:${haze.ports.http}/st.flv?tkn=f1`, '-t', '30', '-c', 'copy', '-f', 'null', '-']);
    try {
      const isViewer = (r: Record<string, unknown>): boolean => r['protocol'] === 'RTMP' || r['protocol'] === 'FLV';
      const rows = await waitClients('st', (rs) => rs.filter(isViewer).length === 2 && rs.filter(isViewer).every((r) => (r['downbps'] as number) > 0));
      const viewers = rows.filter((r) => r['protocol'] === 'RTMP' || r['protocol'] === 'FLV');
      assert.notEqual(viewers[0]!['sessid'], viewers[1]!['sessid']);
      assert.deepEqual(viewers.map((r) => r['protocol']).sort(), ['FLV', 'RTMP']);
      // the publisher is a session too, an input
      assert.ok(rows.some((r) => r['protocol'] === 'INPUT:RTMP'), JSON.stringify(rows));
      const families = await prometheus();
      assert.equal(metric(families, 'mist_sessions', { stream: 'st', sessType: 'viewers' }), 2);
      assert.equal(metric(families, 'mist_sessions', { stream: 'st', sessType: 'incoming' }), 1);
      assert.equal(metric(families, 'mist_outputs', { output: 'RTMP' }), 1);
      assert.equal(metric(families, 'mist_outputs', { output: 'FLV' }), 1);
      const bw = metric(families, 'mist_bw', { stream: 'st', direction: 'down' })!;
      const sum = (await clients(['st'])).reduce((a, r) => a + (r['down'] as number), 0);
      assert.ok(bw > 0 && Math.abs(bw - sum) <= Math.max(200_000, sum * 0.2), `Prometheus ${bw} vs clients ${sum} (a second apart)`);
    } finally {
      rtmp.kill('SIGKILL');
      flv.kill('SIGKILL');
      await Promise.all([exited(rtmp), exited(flv)]);
    }
  });

  it('a viewer going from HLS to MP4 with the same token is one session', async () => {
    const relay = await countingRelay(haze.ports.http);
    try {
      await hls(relay.port, 'thirty', 'sw');
      await runOk('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${relay.port}/thirty.mp4?tkn=sw`]);
      const sessions = await waitClients('thirty', (rs) => rs.some((r) => r['protocol'] === 'HLS,MP4' || r['protocol'] === 'MP4,HLS'));
      const mine = sessions.filter((r) => String(r['protocol']).includes('MP4'));
      assert.equal(mine.length, 1, JSON.stringify(sessions));
      await sleep(2500);
      const [again] = (await clients(['thirty'])).filter((r) => r['sessid'] === mine[0]!['sessid']);
      assert.equal(again!['down'], relay.down(), 'every byte the client received, counted once');
      assert.equal(again!['up'], relay.up());
    } finally {
      relay.close();
    }
  });

  it('kill -9 of the controller: a running session keeps its totals, a session that ended meanwhile is counted and logged once', async () => {
    const relay = await countingRelay(haze.ports.http);
    const cont = path.join(haze.data, 'run', 'controller.pid');
    const headers = (name: string): string => path.join(dir, `${name}.headers`);
    const sessionOf = (name: string): string => {
      const text = fs.existsSync(headers(name)) ? fs.readFileSync(headers(name), 'utf8') : '';
      return /x-haze-session: *([0-9a-f]{64})/i.exec(text)?.[1] ?? '-';
    };
    let pid1 = 0;
    const long = spawn('curl', ['-s', '-D', headers('long'), '-o', '/dev/null', `http://127.0.0.1:${haze.ports.http}/st.flv?tkn=long`]);
    const short = spawn('curl', ['-s', '-D', headers('short'), '-o', '/dev/null', `http://127.0.0.1:${relay.port}/st.flv?tkn=short`]);
    try {
      const before = await waitClients('st', (rs) => rs.filter((r) => (r['down'] as number) > 100_000 && [sessionOf('long'), sessionOf('short')].includes(r['sessid'] as string)).length === 2, 20_000);
      const longBefore = before.find((r) => r['sessid'] === sessionOf('long'))!;
      const shortId = sessionOf('short');
      // a tag given to a session reaches its access log line (the worker that ends it has it)
      assert.equal((await haze.api({ tag_sessid: { [shortId]: 'vip' } }))['error'], undefined);
      pid1 = Number(fs.readFileSync(cont, 'utf8'));
      // the controller stops answering while the short session ends (15 s after its connection)
      process.kill(pid1, 'SIGSTOP');
      short.kill('SIGKILL');
      await exited(short);
      await sleep(17_000);
      process.kill(pid1, 'SIGKILL');
      const until = Date.now() + 20_000;
      let pid2 = pid1;
      while (Date.now() < until && pid2 === pid1) {
        await sleep(300);
        pid2 = Number(fs.readFileSync(cont, 'utf8'));
      }
      assert.notEqual(pid2, pid1, 'the angel restarted the controller');
      // the running session continues from its totals (the workers hand them over)
      const after = await waitClients('st', (rs) => rs.some((r) => r['sessid'] === longBefore['sessid'] && (r['down'] as number) > (longBefore['down'] as number)), 15_000);
      assert.ok(!after.some((r) => r['sessid'] === shortId), 'the short session has ended');
      // the short session: counted in the stream's totals, and one access log line
      const lines = fs.readFileSync(accessLog, 'utf8').split('\n').filter((l) => l.includes(shortId));
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d, ${shortId}, st, FLV, 127\\.0\\.0\\.1, \\d+, \\d+, \\d+, UA:curl/\\S+ vip$`));
      const totals = (await haze.api({ stats_streams: { streams: ['st'], fields: ['downbytes', 'views'] } })) as { stats_streams: { data: Record<string, number[]> } };
      const [downbytes] = totals.stats_streams.data['st']!;
      assert.ok(downbytes! >= relay.down() + (longBefore['down'] as number), `stream total ${downbytes} ≥ ended ${relay.down()} + running ${longBefore['down']}`);
      // the WebSocket API's access history has it, with the bytes the client received
      const messages = await wsMessages(`ws://127.0.0.1:${haze.ports.api}/ws?accs=20&logs=50`, 1500);
      assert.deepEqual(messages[0], ['auth', true]);
      const access = messages.find((m) => m[0] === 'access' && (m[1] as unknown[])[1] === shortId);
      assert.ok(access, JSON.stringify(messages.filter((m) => m[0] === 'access')));
      const [, , stream, connectors, host, , , down] = access[1] as [number, string, string, string, string, number, number, number];
      assert.deepEqual([stream, connectors, host, down], ['st', 'FLV', '127.0.0.1', relay.down()]);
      // the workers' log lines reach the controller's log (the access log is a file here, so: the publisher's)
      assert.ok(messages.some((m) => m[0] === 'log' && String((m[1] as unknown[])[5]).startsWith('worker-')), 'worker log lines in the feed');
      // a stream tag selects in active_streams; stop_tag ends the viewers of a tagged stream
      await haze.api({ tag_stream: { st: 'event' } });
      const tagged = (await haze.api({ active_streams: { streams: ['#event'], fields: ['viewers'] } })) as { active_streams: { data: Record<string, number[]> } };
      assert.deepEqual(Object.keys(tagged.active_streams.data), ['st']);
      const stopped = (await haze.api({ stop_tag: 'event' })) as { stop_tag: { sessions: number } };
      assert.ok(stopped.stop_tag.sessions >= 1, JSON.stringify(stopped));
      // (a loaded machine right after a controller restart: the workers may take a while to act on it)
      const code = await Promise.race([exited(long), giveUpAfter(15_000, 'still running')]);
      assert.notEqual(code, 'still running', 'stop_tag ended the running curl viewer');
    } finally {
      // a failed step must not leave the controller stopped (the server could not stop)
      if (pid1) {
        try {
          process.kill(pid1, 'SIGCONT');
        } catch {
          // gone already
        }
      }
      long.kill('SIGKILL');
      short.kill('SIGKILL');
      relay.close();
    }
  });
});
