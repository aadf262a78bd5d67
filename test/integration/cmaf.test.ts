// CMAF output against real peers: a live StreamHub fed from small.flv (looped, timestamps shifted,
// 24 s of history at once then real time) behind cmafRoute on a real HTTP server. ffprobe and
// ffmpeg read the fMP4 HLS (ffmpeg 5.1 ignores the LL-HLS tags but must read EXT-X-MAP + fMP4
// segments) and the DASH MPD; the LL-HLS parts, preload hint and blocking reload are checked
// over HTTP with timings.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { freePort, mistFixtures, parseFramemd5, run, runOk } from '../helpers.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { StreamHub } from '../../src/hub/stream-hub.js';
import { createMediaServer } from '../../src/protocols/http/media-server.js';
import { cmafRoute } from '../../src/outputs/cmaf.js';
import { HazeError } from '../../src/util/errors.js';
import type { Packet } from '../../src/media/types.js';

const SOURCE = path.join(mistFixtures, 'small.flv');
const HISTORY_MS = 24_000;

/** Where the next part will be: the pending msn and part index, and the preload hint's URI. */
function nextPosition(playlist: string): { msn: number; part: number; hint: string } {
  const seq = Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)?.[1]);
  const skipped = Number(/#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)/.exec(playlist)?.[1] ?? 0);
  const complete = (playlist.match(/^#EXTINF:/gm) ?? []).length;
  const hint = /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"/.exec(playlist)?.[1];
  assert.ok(hint, playlist);
  const part = Number(/\.(\d+)\.m4s$/.exec(hint)?.[1]);
  return { msn: seq + skipped + complete, part, hint };
}

describe('CMAF output (fMP4 HLS, LL-HLS, DASH)', { timeout: 60_000 }, () => {
  const flv = parseFlvFile(fs.readFileSync(SOURCE));
  const hub = new StreamHub('cmaf');
  /** small.flv once, then the end of the stream. */
  const endedHub = new StreamHub('ended');
  /** small.flv once with its audio twice (a second language), still live. */
  const multiHub = new StreamHub('multi');
  let server: http.Server;
  let base = '';
  let feeder: NodeJS.Timeout | undefined;

  before(async () => {
    hub.attachSource();
    for (const t of flv.tracks) hub.setTrack(t);
    let maxMs = 0;
    for (const p of flv.packets) maxMs = Math.max(maxMs, p.timeMs);
    const loopMs = maxMs + 34;
    let loop = 0;
    let i = 0;
    const next = (): Packet => {
      const p = flv.packets[i]!;
      const out = { ...p, timeMs: p.timeMs + loop * loopMs };
      if (++i === flv.packets.length) {
        i = 0;
        loop++;
      }
      return out;
    };
    // history first (the DVR window a new segmenter starts from), then real time
    let pending = next();
    while (pending.timeMs < HISTORY_MS) {
      hub.push(pending);
      pending = next();
    }
    const startWall = Date.now();
    feeder = setInterval(() => {
      const nowMs = HISTORY_MS + Date.now() - startWall;
      while (pending.timeMs <= nowMs) {
        hub.push(pending);
        pending = next();
      }
    }, 10);

    multiHub.attachSource();
    for (const t of flv.tracks) multiHub.setTrack(t);
    const audio = flv.tracks.find((t) => t.type === 'audio')!;
    multiHub.setTrack({ ...audio, id: 99, lang: 'fra' });
    for (const p of flv.packets) {
      multiHub.push({ ...p });
      if (p.trackId === audio.id) multiHub.push({ ...p, trackId: 99 });
    }

    endedHub.attachSource();
    for (const t of flv.tracks) endedHub.setTrack(t);
    for (const p of flv.packets) endedHub.push({ ...p });

    const port = await freePort();
    server = createMediaServer([
      cmafRoute({
        forViewer: async (name) => {
          if (name === 'cmaf') return hub;
          if (name === 'ended') return endedHub;
          if (name === 'multi') return multiHub;
          if (name === 'sleeping') throw new HazeError('HAZE_ERR_OFFLINE', 'Stream is offline');
          throw new HazeError('HAZE_ERR_NOT_FOUND', `Stream not found: ${name}`);
        },
      }),
    ]);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${port}/cmaf/cmaf`;
  });

  after(async () => {
    if (feeder) clearInterval(feeder);
    hub.end('test over');
    multiHub.end('test over');
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('ffprobe reads the multivariant playlist: h264 320x180 + aac', async () => {
    const master = await fetch(`${base}/index.m3u8`);
    assert.equal(master.status, 200);
    assert.match(master.headers.get('content-type') ?? '', /mpegurl/);
    assert.equal(master.headers.get('cache-control'), 'no-cache');
    const text = await master.text();
    assert.match(text, /#EXT-X-VERSION:7/);
    assert.match(text, /#EXT-X-STREAM-INF:BANDWIDTH=\d+,RESOLUTION=320x180,FRAME-RATE=30\.000,CODECS="avc1\.64000d,mp4a\.40\.2"\n0_1\/index\.m3u8/);
    const probe = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', `${base}/index.m3u8`], { timeoutMs: 20_000 })).toString()) as {
      streams: Array<{ codec_name: string; width?: number; height?: number }>;
    };
    const v = probe.streams.find((s) => s.codec_name === 'h264');
    assert.ok(v, JSON.stringify(probe));
    assert.equal(v.width, 320);
    assert.equal(v.height, 180);
    assert.ok(probe.streams.some((s) => s.codec_name === 'aac'), JSON.stringify(probe));
  });

  for (const [label, manifest] of [['fMP4 HLS', 'index.m3u8'], ['DASH', 'index.mpd']] as const) {
    it(`ffmpeg decodes the ${label} to frames of the source`, async () => {
      const src = new Set(parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', SOURCE, '-map', '0:v', '-f', 'framemd5', '-'])).toString()).map((f) => f.hash));
      const r = await run('ffmpeg', ['-v', 'error', '-i', `${base}/${manifest}`, '-map', '0:v', '-t', '3', '-f', 'framemd5', '-'], { timeoutMs: 30_000 });
      assert.equal(r.code, 0, r.stderr);
      const got = parseFramemd5(r.stdout.toString());
      assert.ok(got.length >= 80, `decoded ${got.length} frames`);
      const foreign = got.filter((f) => !src.has(f.hash));
      assert.equal(foreign.length, 0, `${foreign.length} of ${got.length} decoded frames are not source frames`);
    });
  }

  it('media playlist: LL-HLS tags, init, parts that make up their segments', async () => {
    const res = await fetch(`${base}/0_1/index.m3u8`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const text = await res.text();
    assert.match(text, /^#EXTM3U\n#EXT-X-VERSION:(\d+)/);
    assert.ok(Number(/#EXT-X-VERSION:(\d+)/.exec(text)![1]) >= 7);
    assert.match(text, /#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=[\d.]+,PART-HOLD-BACK=1\.500\n/);
    assert.match(text, /#EXT-X-PART-INF:PART-TARGET=0\.500\n/);
    assert.match(text, /#EXT-X-MAP:URI="init\.m4s"/);
    assert.match(text, /#EXT-X-PART:DURATION=0\.\d+,URI="chunk_\d+\.\d+\.m4s",INDEPENDENT=YES/);
    assert.match(text, /#EXT-X-PRELOAD-HINT:TYPE=PART,URI="chunk_\d+\.\d+\.m4s"/);
    assert.doesNotMatch(text, /#EXT-X-ENDLIST/);
    const target = Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(text)![1]);
    for (const m of text.matchAll(/#EXT-X-PART:DURATION=([\d.]+)/g)) assert.ok(Number(m[1]) <= 0.5, `part of ${m[1]} s exceeds PART-TARGET`);
    const segs = [...text.matchAll(/#EXTINF:([\d.]+),\n(chunk_(\d+)\.m4s)/g)];
    assert.ok(segs.length >= 6, text);
    // version 7: each EXTINF rounded to the nearest second is at most the target (RFC 8216 §4.3.3.1)
    for (const s of segs) assert.ok(Number(s[1]) >= 1.9 && Math.round(Number(s[1])) <= target, `segment ${s[2]} of ${s[1]} s`);

    const init = await fetch(`${base}/0_1/init.m4s`);
    assert.equal(init.status, 200);
    assert.equal(init.headers.get('content-type'), 'video/mp4');
    assert.equal(Buffer.from(await init.arrayBuffer()).toString('latin1', 4, 8), 'ftyp');

    // the newest complete segment is its listed parts back to back
    const last = segs[segs.length - 1]!;
    const segRes = await fetch(`${base}/0_1/${last[2]}`);
    assert.equal(segRes.status, 200);
    assert.equal(segRes.headers.get('content-type'), 'video/mp4');
    assert.match(segRes.headers.get('cache-control') ?? '', /max-age=\d+/);
    const segBytes = Buffer.from(await segRes.arrayBuffer());
    assert.equal(segBytes.toString('latin1', 4, 8), 'moof');
    const partUris = [...text.matchAll(new RegExp(`URI="(chunk_${last[3]}\\.\\d+\\.m4s)"`, 'g'))].map((m) => m[1]!);
    assert.ok(partUris.length >= 3, `parts of ${last[2]}: ${partUris.join(' ')}`);
    const partBytes = await Promise.all(partUris.map(async (u) => Buffer.from(await (await fetch(`${base}/0_1/${u}`)).arrayBuffer())));
    assert.ok(Buffer.concat(partBytes).equals(segBytes), 'segment = concatenation of its parts');

    // delta update: older segments replaced by EXT-X-SKIP
    const delta = await (await fetch(`${base}/0_1/index.m3u8?_HLS_skip=YES`)).text();
    assert.match(delta, /#EXT-X-SKIP:SKIPPED-SEGMENTS=\d+/);
    assert.match(delta, /#EXT-X-VERSION:9/);
  });

  it('blocking reload and the preload hint are held until the part exists', async () => {
    const first = await (await fetch(`${base}/0_1/index.m3u8`)).text();
    const pos1 = nextPosition(first);
    // returns the moment that part is cut, so the next one has only just begun
    const p2 = await (await fetch(`${base}/0_1/index.m3u8?_HLS_msn=${pos1.msn}&_HLS_part=${pos1.part}`)).text();
    assert.ok(p2.includes(`URI="${pos1.hint}"`), `part ${pos1.hint} in\n${p2}`);
    const pos2 = nextPosition(p2);
    const partLine = new RegExp(`#EXT-X-PART:[^\\n]*URI="${pos2.hint.replace(/\./g, '\\.')}"`);
    assert.doesNotMatch(p2, partLine, 'the hinted part does not exist yet');

    const t0 = Date.now();
    const [blocked, hinted] = await Promise.all([
      fetch(`${base}/0_1/index.m3u8?_HLS_msn=${pos2.msn}&_HLS_part=${pos2.part}`).then(async (r) => ({ status: r.status, text: await r.text(), ms: Date.now() - t0 })),
      fetch(`${base}/0_1/${pos2.hint}`).then(async (r) => ({ status: r.status, type: r.headers.get('content-type'), body: Buffer.from(await r.arrayBuffer()), ms: Date.now() - t0 })),
    ]);
    assert.equal(blocked.status, 200);
    assert.ok(blocked.ms > 100, `blocking reload answered after ${blocked.ms} ms`);
    assert.match(blocked.text, partLine);
    assert.equal(hinted.status, 200);
    assert.equal(hinted.type, 'video/mp4');
    assert.ok(hinted.ms > 100, `preload hint answered after ${hinted.ms} ms`);
    assert.equal(hinted.body.toString('latin1', 4, 8), 'moof');
  });

  it('refuses bad or far-ahead requests; 404 / 503 for unknown and offline streams', async () => {
    assert.equal((await fetch(`${base}/0_1/index.m3u8?_HLS_msn=999999`)).status, 400);
    assert.equal((await fetch(`${base}/0_1/index.m3u8?_HLS_part=1`)).status, 400);
    assert.equal((await fetch(`${base}/0_1/index.m3u8?_HLS_msn=abc`)).status, 400);
    assert.equal((await fetch(`${base}/0_1/chunk_1.m4s`)).status, 404);
    assert.equal((await fetch(`${base}/0_1/chunk_1.0.m4s`)).status, 404);
    assert.equal((await fetch(`${base}/7_8/index.m3u8`)).status, 404);
    const root = base.slice(0, -'/cmaf'.length);
    assert.equal((await fetch(`${root}/nosuch/index.m3u8`)).status, 404);
    const offline = await fetch(`${root}/sleeping/index.mpd`);
    assert.equal(offline.status, 503);
    assert.equal(offline.headers.get('retry-after'), '5');
  });

  it('an ended stream: ENDLIST without parts, a static MPD', async () => {
    const root = base.slice(0, -'/cmaf'.length);
    // the segmenter starts from the buffered window; the end cuts the last (short) segment
    assert.match(await (await fetch(`${root}/ended/0_1/index.m3u8`)).text(), /#EXTINF/);
    assert.equal((await (await fetch(`${root}/ended/index.mpd`)).text()).includes('type="dynamic"'), true);
    endedHub.end('done');
    const text = await (await fetch(`${root}/ended/0_1/index.m3u8`)).text();
    assert.match(text, /#EXT-X-ENDLIST\n$/);
    assert.doesNotMatch(text, /#EXT-X-PART:|#EXT-X-PRELOAD-HINT/);
    const durations = [...text.matchAll(/#EXTINF:([\d.]+),/g)].map((m) => Number(m[1]));
    assert.ok(Math.abs(durations.reduce((a, b) => a + b, 0) - 4.09) < 0.1, `total ${durations.join('+')}`);
    // a blocking request on an ended playlist answers at once
    assert.equal((await fetch(`${root}/ended/0_1/index.m3u8?_HLS_msn=99`)).status, 200);
    const xml = await (await fetch(`${root}/ended/index.mpd`)).text();
    assert.match(xml, /type="static"/);
  });

  it('several audio tracks: an audio group of their own playlists, rendition reports', async () => {
    const multi = base.replace(/cmaf$/, 'multi');
    const mv = await (await fetch(`${multi}/index.m3u8`)).text();
    assert.match(mv, /#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Audio 1",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="\d",URI="_1\/index\.m3u8"/);
    assert.match(mv, /#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="fra \(2\)",LANGUAGE="fra",DEFAULT=NO,AUTOSELECT=NO,CHANNELS="\d",URI="_2\/index\.m3u8"/);
    assert.match(mv, /#EXT-X-STREAM-INF:[^\n]*CODECS="avc1\.[0-9a-f]+,mp4a\.40\.2",AUDIO="aud"\n0_\/index\.m3u8\n/);
    const audio = await (await fetch(`${multi}/_2/index.m3u8`)).text();
    const video = await (await fetch(`${multi}/0_/index.m3u8`)).text();
    // the video playlist reports the audio renditions at its own numbering (the same marks)
    const lastMsn = (text: string): number => Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(text)?.[1]) + (text.match(/^#EXTINF:/gm) ?? []).length - 1;
    const report = /#EXT-X-RENDITION-REPORT:URI="\.\.\/_2\/index\.m3u8",LAST-MSN=(\d+)/.exec(video);
    assert.ok(report, video);
    assert.ok(/#EXT-X-RENDITION-REPORT:URI="\.\.\/_1\/index\.m3u8",LAST-MSN=\d+/.test(video), video);
    assert.ok(Math.abs(Number(report[1]) - lastMsn(audio)) <= 1, `report ${report[1]} vs audio playlist ${lastMsn(audio)}`);
    const probe = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'json', `${multi}/_2/index.m3u8`], { timeoutMs: 20_000 })).toString()) as { streams: Array<{ codec_name: string }> };
    assert.deepEqual(probe.streams.map((x) => x.codec_name), ['aac']);
  });

  it('DASH: a valid dynamic MPD that ffprobe reads as h264 + aac', async () => {
    const res = await fetch(`${base}/index.mpd`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/dash+xml');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const xml = await res.text();
    assert.match(xml, /type="dynamic"/);
    assert.match(xml, /media="\$RepresentationID\$\/chunk_\$Time\$\.m4s"/);
    assert.match(xml, /<Representation id="1" codecs="avc1\.64000d"/);
    assert.match(xml, /<Representation id="2" codecs="mp4a\.40\.2"/);
    const lint = await run('xmllint', ['--noout', '-'], { input: Buffer.from(xml) }).catch(() => undefined);
    if (lint) assert.equal(lint.code, 0, lint.stderr);

    // a segment of each representation, named by the timeline
    const t = Number(/<S t="(\d+)"/.exec(xml)?.[1]);
    for (const [rep, type] of [['1', 'video/mp4'], ['2', 'audio/mp4']] as const) {
      const init = await fetch(`${base}/${rep}/init.m4s`);
      assert.equal(init.status, 200);
      assert.equal(Buffer.from(await init.arrayBuffer()).toString('latin1', 4, 8), 'ftyp');
      const seg = await fetch(`${base}/${rep}/chunk_${t}.m4s`);
      assert.equal(seg.status, 200, `${rep}/chunk_${t}.m4s`);
      assert.equal(seg.headers.get('content-type'), type);
    }

    const probe = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', `${base}/index.mpd`], { timeoutMs: 20_000 })).toString()) as {
      streams: Array<{ codec_name: string; width?: number }>;
    };
    assert.ok(probe.streams.some((s) => s.codec_name === 'h264' && s.width === 320), JSON.stringify(probe));
    assert.ok(probe.streams.some((s) => s.codec_name === 'aac'), JSON.stringify(probe));

    // ffmpeg's dash demuxer decodes the video representation to frames of the source
    const src = new Set(parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', SOURCE, '-map', '0:v', '-f', 'framemd5', '-'])).toString()).map((f) => f.hash));
    const r = await run('ffmpeg', ['-v', 'error', '-i', `${base}/index.mpd`, '-map', '0:v', '-t', '2', '-f', 'framemd5', '-'], { timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    const got = parseFramemd5(r.stdout.toString());
    assert.ok(got.length >= 50, `decoded ${got.length} frames`);
    assert.ok(got.every((f) => src.has(f.hash)), 'every decoded DASH frame is a source frame');
  });
});
