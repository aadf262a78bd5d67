// Stream info JSON (`json_NAME.js` / `info_NAME.js`, reference §6.4): exact documents, the
// source sort, the base URL from Host / X-Mst-Path, and script escaping.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { baseUrl, cleanBaseUrl, infoScript, OUTPUTS, streamInfo, type StreamInfoTrack } from '../../src/outputs/stream-info.js';

/** The sort-rule tests run on a fixed output list (FLV, HTTPTS, RTMP) so they do not change as outputs are added. */
const CORE = OUTPUTS.filter((o) => ['FLV', 'HTTPTS', 'RTMP'].includes(o.connector));
import { hex } from '../helpers.js';

const AVCC = hex('0164001fffe1');
const ASC = hex('1190');

const h264: StreamInfoTrack = { type: 'video', id: 1, codec: 'H264', init: AVCC, bps: 250000, lang: 'und', width: 1280, height: 720, fpks: 25000, firstMs: 1000, lastMs: 9000 };
const aac: StreamInfoTrack = { type: 'audio', id: 2, codec: 'AAC', init: ASC, bps: 16000, lang: 'und', rate: 48000, channels: 2, size: 16, firstMs: 980, lastMs: 9010, maxBps: 20000 };
const base = { http: 'http://example.com:8080/', rtmpPort: 1935 };

/** Exact text, so member order counts too. */
function same(actual: unknown, expected: unknown): void {
  assert.equal(JSON.stringify(actual), JSON.stringify(expected));
}

test('live H264+AAC: exact document, RTMP > FLV > TS by priority when track counts tie', () => {
  const info = streamInfo({ name: 'live', tracks: [h264, aac], live: true, online: true, base, outputs: CORE });
  same(info, {
    width: 1280,
    height: 720,
    type: 'live',
    meta: {
      tracks: {
        video_H264_1280x720_25fps_0: {
          codec: 'H264', codecstring: 'avc1.64001f', type: 'video', idx: 0, trackid: 1, init: '\x01\x64\x00\x1f\xff\xe1',
          firstms: 1000, lastms: 9000, bps: 250000, maxbps: 250000, width: 1280, height: 720, fpks: 25000, fps: 25,
        },
        audio_AAC_2ch_48000hz_1: {
          codec: 'AAC', codecstring: 'mp4a.40.2', type: 'audio', idx: 1, trackid: 2, init: '\x11\x90',
          firstms: 980, lastms: 9010, bps: 16000, maxbps: 20000, rate: 48000, size: 16, channels: 2,
        },
      },
      live: 1,
      version: 4,
      buffer_window: 8030,
    },
    source: [
      { type: 'flash/10', relurl: '/play/live', priority: 7, simul_tracks: 2, total_matches: 2, url: 'rtmp://example.com:1935/play/live' },
      { type: 'flash/7', relurl: '/live.flv', priority: 5, simul_tracks: 2, total_matches: 2, url: 'http://example.com:8080/live.flv' },
      { type: 'html5/video/mpeg', relurl: '/live.ts', priority: 1, simul_tracks: 2, total_matches: 2, url: 'http://example.com:8080/live.ts' },
    ],
  });
  // The binary init survives a JSON round trip byte for byte (latin1 string, as MistServer).
  const parsed = JSON.parse(JSON.stringify(info)) as { meta: { tracks: Record<string, { init: string }> } };
  assert.deepEqual(Buffer.from(parsed.meta.tracks['video_H264_1280x720_25fps_0']!.init, 'latin1'), AVCC);
});

test('more simultaneous tracks beat priority: TS carries both audio tracks, FLV/RTMP one', () => {
  const aac2: StreamInfoTrack = { ...aac, id: 3, lang: 'nld' };
  const info = streamInfo({ name: 'multi', tracks: [h264, aac, aac2], live: false, online: true, base, outputs: CORE }) as {
    type: string; meta: Record<string, unknown> & { tracks: Record<string, Record<string, unknown>> }; source: Array<Record<string, unknown>>;
  };
  assert.equal(info.type, 'vod');
  assert.equal(info.meta['vod'], 1);
  assert.equal(info.meta['live'], undefined);
  assert.equal(info.meta['buffer_window'], undefined);
  assert.deepEqual(Object.keys(info.meta.tracks), ['video_H264_1280x720_25fps_0', 'audio_AAC_2ch_48000hz_1', 'audio_AAC_2ch_48000hz_nld_2']);
  assert.equal(info.meta.tracks['audio_AAC_2ch_48000hz_nld_2']!['lang'], 'nld');
  assert.equal(info.meta.tracks['audio_AAC_2ch_48000hz_1']!['lang'], undefined);
  same(
    info.source.map((s) => [s['type'], s['simul_tracks'], s['total_matches']]),
    [['html5/video/mpeg', 3, 3], ['flash/10', 2, 3], ['flash/7', 2, 3]],
  );
});

test('audio-only: FLV and TS keep the audio, canvas 640x20', () => {
  const info = streamInfo({ name: 'radio', tracks: [aac], live: true, online: true, base: { http: 'http://h/' }, outputs: CORE });
  same(info, {
    width: 640,
    height: 20,
    type: 'live',
    meta: {
      tracks: {
        audio_AAC_2ch_48000hz_0: {
          codec: 'AAC', codecstring: 'mp4a.40.2', type: 'audio', idx: 0, trackid: 2, init: '\x11\x90',
          firstms: 980, lastms: 9010, bps: 16000, maxbps: 20000, rate: 48000, size: 16, channels: 2,
        },
      },
      live: 1,
      version: 4,
      buffer_window: 8030,
    },
    // No rtmpPort: RTMP is not listening, so it is not offered.
    source: [
      { type: 'flash/7', relurl: '/radio.flv', priority: 5, simul_tracks: 1, total_matches: 1, url: 'http://h/radio.flv' },
      { type: 'html5/video/mpeg', relurl: '/radio.ts', priority: 1, simul_tracks: 1, total_matches: 1, url: 'http://h/radio.ts' },
    ],
  });
});

test('sources with no playable track are omitted; ties on everything but URL sort by URL', () => {
  const vp8: StreamInfoTrack = { type: 'video', id: 1, codec: 'VP8', init: Buffer.alloc(0), bps: 0, lang: 'und', width: 0, height: 0, fpks: 0 };
  const info = streamInfo({ name: 'x', tracks: [vp8], live: false, online: true, base, outputs: CORE }) as Record<string, unknown>;
  same(info['source'], []);
  assert.equal(info['width'], 640);
  assert.equal(info['height'], 480);

  const twins = streamInfo({
    name: 'n',
    tracks: [h264],
    live: true,
    online: true,
    base,
    outputs: [
      { connector: 'B', type: 't', priority: 3, url: (n) => `/b/${n}`, codecs: { video: ['H264'] } },
      { connector: 'A', type: 't', priority: 3, url: (n) => `/a/${n}`, codecs: { video: ['H264'] } },
      { connector: 'C', type: 't', priority: 3, url: (n) => `/c/${n}`, codecs: { video: ['H264', 'HEVC'] } },
    ],
  }) as { source: Array<{ url: string }> };
  assert.deepEqual(twins.source.map((s) => s.url), ['http://example.com:8080/a/n', 'http://example.com:8080/b/n', 'http://example.com:8080/c/n']);
});

test('names are URL-encoded in source URLs, the wildcard + kept', () => {
  const info = streamInfo({ name: 'a+b c', tracks: [h264], live: true, online: true, base, outputs: CORE }) as { source: Array<{ url: string }> };
  assert.deepEqual(info.source.map((s) => s.url), ['rtmp://example.com:1935/play/a+b%20c', 'http://example.com:8080/a+b%20c.flv', 'http://example.com:8080/a+b%20c.ts']);
});

test('offline stream: only the error', () => {
  same(streamInfo({ name: 'gone', tracks: [h264], live: true, online: false, base }), { error: 'Stream is offline' });
  same(streamInfo({ name: 'gone', tracks: [], live: true, online: false, error: 'Stream is initializing', base }), { error: 'Stream is initializing' });
});

test('OUTPUTS lists what Haze serves now', () => {
  assert.deepEqual(OUTPUTS.map((o) => [o.connector, o.type, o.priority]), [
    ['HLS', 'html5/application/vnd.apple.mpegurl', 9],
    ['CMAF', 'html5/application/vnd.apple.mpegurl;version=7', 8],
    ['CMAF', 'dash/video/mp4', 8],
    ['MP4', 'html5/video/mp4', 9],
    ['EBML', 'html5/video/webm', 9],
    ['OGG', 'html5/audio/ogg', 8],
    ['MP3', 'html5/audio/mp3', 8],
    ['AAC', 'html5/audio/aac', 8],
    ['WAV', 'html5/audio/wav', 1],
    ['FLV', 'flash/7', 5],
    ['HTTPTS', 'html5/video/mpeg', 1],
    ['RTMP', 'flash/10', 7],
  ]);
  assert.equal(CORE[2]!.url('s', { http: 'http://[::1]:8080/', rtmpPort: 1936 }), 'rtmp://[::1]:1936/play/s');
});

test('baseUrl', () => {
  const cases: Array<[string | undefined, string | undefined, number, string]> = [
    ['example.com', undefined, 8080, 'http://example.com:8080/'],
    ['example.com:9000', undefined, 8080, 'http://example.com:9000/'],
    ['example.com', undefined, 80, 'http://example.com/'],
    ['[::1]:8080', undefined, 8080, 'http://[::1]:8080/'],
    ['[::1]', undefined, 8080, 'http://[::1]:8080/'],
    [' example.com ', undefined, 8080, 'http://example.com:8080/'],
    [undefined, undefined, 8080, 'http://localhost:8080/'],
    ['', undefined, 8080, 'http://localhost:8080/'],
    // X-Mst-Path wins, with a trailing slash.
    ['example.com', 'https://site.example/mist', 8080, 'https://site.example/mist/'],
    ['example.com', 'https://site.example/mist/', 8080, 'https://site.example/mist/'],
    [undefined, 'http://proxy:81/', 8080, 'http://proxy:81/'],
    // Hostile values are ignored.
    ['evil.com\r\nSet-Cookie: x=1', undefined, 8080, 'http://localhost:8080/'],
    ['evil.com/<script>', undefined, 8080, 'http://localhost:8080/'],
    ['a b', undefined, 8080, 'http://localhost:8080/'],
    ['host:99999', undefined, 8080, 'http://localhost:8080/'],
    ['user@host', undefined, 8080, 'http://localhost:8080/'],
    ['example.com', 'https://site/mist\r\nX: y', 8080, 'http://example.com:8080/'],
    ['example.com', 'https://site/a b/', 8080, 'http://example.com:8080/'],
    ['example.com', 'javascript:alert(1)', 8080, 'http://example.com:8080/'],
    ['example.com', '/relative/', 8080, 'http://example.com:8080/'],
    ['example.com', 'https://site/"onload="x', 8080, 'http://example.com:8080/'],
    ['example.com', 'https://site/?q=1', 8080, 'http://example.com:8080/'],
  ];
  for (const [host, path, port, want] of cases) assert.equal(baseUrl(host, path, port), want, `${JSON.stringify(host)} ${JSON.stringify(path)}`);
});

test('infoScript: runs, assigns, and a hostile name cannot break out of <script>', () => {
  const name = "x</script><script>alert(1)</script>'\u2028";
  const info = { error: 'Stream is offline', note: '</script>' };
  const js = infoScript(name, info);
  assert.ok(!js.includes('<'), js);
  assert.ok(!js.includes('>'), js);
  assert.ok(!js.includes('\u2028'));
  assert.ok(js.includes("mistvideo['x\\u003c/script\\u003e"), js);
  const ctx: { mistvideo?: Record<string, unknown> } = {};
  vm.runInNewContext(js, ctx);
  // Objects from another realm: compare their JSON.
  assert.deepEqual(JSON.parse(JSON.stringify(ctx.mistvideo)), { [name]: info });
  // An existing mistvideo object is kept.
  const ctx2 = { mistvideo: { other: 1 } as Record<string, unknown> };
  vm.runInNewContext(infoScript('s', { a: 1 }), ctx2);
  assert.deepEqual(JSON.parse(JSON.stringify(ctx2.mistvideo)), { other: 1, s: { a: 1 } });
});

test('an audio-only stream lists the audio outputs its codec fits', () => {
  const mp3: StreamInfoTrack = { type: 'audio', id: 1, codec: 'MP3', init: Buffer.alloc(0), bps: 16000, lang: 'und', rate: 44100, channels: 2, size: 16 };
  const info = streamInfo({ name: 'radio', tracks: [mp3], live: true, online: true, base }) as { height: number; source: Array<{ type: string; url: string }> };
  const types = info.source.map((x) => x.type);
  assert.equal(info.height, 20);
  assert.ok(types.includes('html5/audio/mp3'));
  assert.ok(info.source.some((x) => x.url === 'http://example.com:8080/radio.mp3'));
  assert.ok(!types.includes('html5/audio/aac') && !types.includes('html5/audio/wav') && !types.includes('html5/audio/ogg'), types.join(' '));
});

test('several public addresses give a full set of sources each', () => {
  const info = streamInfo({ name: 's', tracks: [h264, aac], live: true, online: true, base: { http: ['https://cdn.example/haze/', 'http://10.0.0.5:8080'], rtmpPort: 1935 } }) as { source: Array<{ type: string; url: string }> };
  const hls = info.source.filter((x) => x.type === 'html5/application/vnd.apple.mpegurl').map((x) => x.url).sort();
  assert.deepEqual(hls, ['http://10.0.0.5:8080/hls/s/index.m3u8', 'https://cdn.example/haze/hls/s/index.m3u8']);
  assert.ok(info.source.some((x) => x.url === 'rtmp://cdn.example:1935/play/s'));
  assert.equal(cleanBaseUrl('https://cdn.example/haze'), 'https://cdn.example/haze/');
  assert.equal(cleanBaseUrl('ftp://x/'), undefined);
});
