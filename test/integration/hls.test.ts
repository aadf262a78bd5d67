// HLS with MPEG-TS segments from a live RTMP publish, read by ffprobe/ffmpeg: multivariant and
// media playlists, keyframe-aligned segments that decode to the source's frames.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { mistFixtures, parseFramemd5, run, runOk, tmpDir } from '../helpers.js';
import { exited, publishFile, startHaze, type HazeInstance } from './harness.js';

const SOURCE = path.join(mistFixtures, 'small.flv');

function httpGet(url: string, headers: Record<string, string>, agent?: http.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers, ...(agent ? { agent } : {}) }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describe('HLS (TS segments)', { timeout: 120_000 }, () => {
  let haze: HazeInstance;
  const dir = tmpDir('haze-hls-');
  before(async () => {
    haze = await startHaze({ workers: 2 });
  });
  after(async () => {
    await haze?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('serves playlists and keyframe-aligned segments that ffmpeg plays', async () => {
    const pub = publishFile(SOURCE, haze.rtmpUrl('live+hls'), ['-stream_loop', '-1']);
    try {
      const master = await fetch(haze.httpUrl('/hls/live+hls/index.m3u8'));
      assert.equal(master.status, 200);
      assert.match(master.headers.get('content-type') ?? '', /mpegurl/);
      const masterText = await master.text();
      assert.match(masterText, /#EXT-X-STREAM-INF:BANDWIDTH=\d+,RESOLUTION=320x180,FRAME-RATE=30\.000,CODECS="avc1\.64000d,mp4a\.40\.2"\n0_1\/index\.m3u8/);

      // let a few segments accumulate, then check the media playlist
      await new Promise((r) => setTimeout(r, 5000));
      const media = await (await fetch(haze.httpUrl('/hls/live+hls/0_1/index.m3u8'))).text();
      const target = Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(media)?.[1]);
      const durations = [...media.matchAll(/#EXTINF:([\d.]+),\n(\d+_\d+\.ts)/g)].map((m) => ({ s: Number(m[1]), uri: m[2]! }));
      assert.ok(durations.length >= 2, media);
      assert.ok(durations.every((d) => d.s <= target && d.s >= 1.9), `segments of about 2 s within TARGETDURATION ${target}: ${media}`);
      assert.doesNotMatch(media, /#EXT-X-ENDLIST/, 'live');

      // a segment starts with a keyframe and is served with a long cache lifetime
      const segRes = await fetch(haze.httpUrl(`/hls/live+hls/0_1/${durations[0]!.uri}`));
      assert.equal(segRes.status, 200);
      assert.match(segRes.headers.get('cache-control') ?? '', /max-age/);
      const segFile = path.join(dir, 'seg.ts');
      const segBytes = Buffer.from(await segRes.arrayBuffer());
      fs.writeFileSync(segFile, segBytes);
      // byte ranges of a segment (one TS packet here), HEAD without a body
      const part = await fetch(haze.httpUrl(`/hls/live+hls/0_1/${durations[0]!.uri}`), { headers: { Range: 'bytes=188-375' } });
      assert.equal(part.status, 206);
      assert.equal(part.headers.get('content-range'), `bytes 188-375/${segBytes.length}`);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), segBytes.subarray(188, 376));
      const headRes = await fetch(haze.httpUrl(`/hls/live+hls/0_1/${durations[0]!.uri}`), { method: 'HEAD' });
      assert.equal(headRes.headers.get('content-length'), String(segBytes.length));
      assert.equal((await headRes.arrayBuffer()).byteLength, 0);
      const packets = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-select_streams', 'v', '-show_packets', '-show_entries', 'packet=flags', '-of', 'json', segFile])).toString()) as { packets: Array<{ flags: string }> };
      assert.ok(packets.packets[0]?.flags.startsWith('K'), 'the segment starts with a keyframe');

      // ffmpeg plays the live HLS; every decoded frame is one of the source's
      const src = new Set(parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', SOURCE, '-map', '0:v', '-f', 'framemd5', '-'])).toString()).map((f) => f.hash));
      const r = await run('ffmpeg', ['-v', 'error', '-i', haze.httpUrl('/hls/live+hls/index.m3u8'), '-map', '0:v', '-t', '4', '-f', 'framemd5', '-'], { timeoutMs: 40_000 });
      assert.equal(r.code, 0, r.stderr);
      const got = parseFramemd5(r.stdout.toString());
      assert.ok(got.length >= 100, `decoded ${got.length} frames`);
      assert.ok(got.every((f) => src.has(f.hash)), 'every decoded frame is a source frame');

      // the stream info document lists every way to play it, best first (reference §6.4)
      // fetch() may not set Host; node:http may (a reverse proxy passes the public name this way)
      const info = JSON.parse(await httpGet(haze.httpUrl('/json_live+hls.js'), { Host: `media.example:${haze.ports.http}` })) as {
        width: number;
        source: Array<{ type: string; url: string }>;
        meta: { tracks: Record<string, { codec: string; codecstring: string }> };
      };
      assert.equal(info.width, 320);
      assert.deepEqual(Object.values(info.meta.tracks).map((t) => t.codecstring), ['avc1.64000d', 'mp4a.40.2']);
      assert.equal(info.source[0]?.type, 'html5/application/vnd.apple.mpegurl');
      assert.equal(info.source[0]?.url, `http://media.example:${haze.ports.http}/hls/live+hls/index.m3u8`);
      assert.ok(info.source.some((s) => s.url === `rtmp://media.example:${haze.ports.rtmp}/play/live+hls`));
      assert.deepEqual(await (await fetch(haze.httpUrl('/json_nosuchstream.js'))).json(), { error: 'Stream not found' });
      assert.match(await (await fetch(haze.httpUrl('/info_live+hls.js'))).text(), /^if \(!mistvideo\)\{var mistvideo = \{\};\}\nmistvideo\['live\+hls'\] = \{"width":320/);

      // CMAF (fMP4 HLS with LL-HLS, DASH) is served by the workers too (its own tests: cmaf.test.ts)
      const cmaf = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'json', haze.httpUrl('/cmaf/live+hls/index.m3u8')], { timeoutMs: 30_000 })).toString()) as { streams: Array<{ codec_name: string }> };
      assert.deepEqual(cmaf.streams.map((x) => x.codec_name).sort(), ['aac', 'h264']);
      const mpd = await fetch(haze.httpUrl('/cmaf/live+hls/index.mpd'));
      assert.equal(mpd.status, 200);
      assert.match(await mpd.text(), /<MPD[^>]+type="dynamic"[\s\S]*<SegmentTimeline>/);
      assert.ok(info.source.some((x) => x.type === 'dash/video/mp4'), 'the stream info lists DASH');

      // Every worker lists the same segments under the same numbers and times, so a player's
      // requests may land on any of them (a new connection each time reaches either worker).
      const seen = new Map<string, string>();
      const firsts = new Set<number>();
      for (const url of ['/hls/live+hls/0_1/index.m3u8', '/cmaf/live+hls/0_1/index.m3u8']) {
        for (let i = 0; i < 10; i++) {
          const text = await httpGet(haze.httpUrl(url), { Connection: 'close' });
          let msn = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)?.[1]);
          firsts.add(msn);
          let pdt = '';
          for (const line of text.split('\n')) {
            if (line.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) pdt = line;
            if (line && !line.startsWith('#')) {
              const key = `${url} ${line}`;
              const value = `${msn} ${pdt}`;
              assert.equal(seen.get(key) ?? value, value, `${line} is segment ${seen.get(key)} elsewhere, ${value} here`);
              seen.set(key, value);
              msn++;
            }
          }
        }
      }
      assert.ok(seen.size > 4, 'segments were compared');
      // ... and the same bytes: TS continuity counters restart in each segment
      const uri = [...seen.keys()].filter((k) => k.startsWith('/hls/')).pop()!.split(' ')[1]!;
      const copies = new Set<string>();
      for (let i = 0; i < 8; i++) {
        const bytes = await new Promise<Buffer>((resolve, reject) => {
          http.get(haze.httpUrl(`/hls/live+hls/0_1/${uri}`), { headers: { Connection: 'close' } }, (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (d: Buffer) => chunks.push(d));
            res.on('end', () => resolve(Buffer.concat(chunks)));
          }).on('error', reject);
        });
        assert.ok(bytes.length > 0);
        copies.add(bytes.toString('base64'));
      }
      assert.equal(copies.size, 1, `${uri} differs between workers`);

      const gone = await fetch(haze.httpUrl('/hls/live+hls/0_1/1_2.ts'));
      assert.equal(gone.status, 404);
      assert.equal((await fetch(haze.httpUrl('/hls/nosuchstream/index.m3u8'))).status, 404);
    } finally {
      pub.kill('SIGINT');
      await exited(pub);
    }
  });

  it('a stream that ended keeps answering with its last segments and ENDLIST for a while', async () => {
    // one keep-alive connection, as a player keeps: the worker that served the live playlists
    // (a worker that never had the stream cannot know it ended, and answers 503 like any offline stream)
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const get = (p: string): Promise<string> => httpGet(haze.httpUrl(p), {}, agent);
    const pub = publishFile(SOURCE, haze.rtmpUrl('live+ending'));
    try {
      let live = '';
      for (let i = 0; i < 30 && !/\.ts/.test(live); i++) {
        live = await get('/hls/live+ending/0_1/index.m3u8');
        if (!/\.ts/.test(live)) await new Promise((r) => setTimeout(r, 200));
      }
      assert.doesNotMatch(live, /#EXT-X-ENDLIST/);
      assert.match(await get('/cmaf/live+ending/0_1/index.m3u8'), /#EXT-X-PRELOAD-HINT/);
      assert.match(await get('/cmaf/live+ending/index.mpd'), /type="dynamic"/);
      assert.equal(await exited(pub), 0);
      // ffmpeg unpublished cleanly: the stream is over
      await new Promise((r) => setTimeout(r, 500));
      const ts = await get('/hls/live+ending/0_1/index.m3u8');
      assert.match(ts, /#EXTINF:[\d.]+,\n\d+_\d+\.ts\n#EXT-X-ENDLIST\n$/, ts);
      const cmaf = await get('/cmaf/live+ending/0_1/index.m3u8');
      assert.match(cmaf, /#EXT-X-ENDLIST\n$/, cmaf);
      assert.doesNotMatch(cmaf, /#EXT-X-PRELOAD-HINT/);
      assert.match(await get('/cmaf/live+ending/index.mpd'), /type="static"/);
      // the stream info does not pretend it is live
      assert.deepEqual(JSON.parse(await get('/json_live+ending.js')), { error: 'Stream is offline' });
    } finally {
      pub.kill('SIGKILL');
      agent.destroy();
    }
  });
});
