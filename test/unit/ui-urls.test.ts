// The management UI's play/publish URLs (src/web/ui/urls.ts, a browser module without DOM use,
// built into dist/web/ui): ports of this run, public addresses, IPv6 hosts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../helpers.js';

type Urls = { play: { label: string; url: string }[]; publish: { label: string; url: string }[]; page: string; embed: string };
const { streamUrls } = (await import(pathToFileURL(path.join(repoRoot, 'dist/web/ui/urls.js')).href)) as {
  streamUrls(name: string, live: boolean, protocols: { connector: string; pubaddr?: string | string[] }[], ports: Record<string, number>, host: string): Urls;
};

const PROTOCOLS = ['HTTP', 'RTMP', 'HLS', 'CMAF', 'FLV', 'WebRTC', 'TSSRT', 'RTSP'].map((connector) => ({ connector }));
const PORTS = { HTTP: 18080, RTMP: 11935, TSSRT: 18889, RTSP: 15554 };

test('URLs use the ports of this run and the address the page was opened with', () => {
  const u = streamUrls('live+cam', true, PROTOCOLS, PORTS, 'media.example');
  const urls = u.play.map((x) => x.url);
  assert.ok(urls.includes('http://media.example:18080/hls/live+cam/index.m3u8'));
  assert.ok(urls.includes('http://media.example:18080/live+cam.flv'));
  assert.ok(urls.includes('rtmp://media.example:11935/live/live+cam'));
  assert.ok(!urls.some((x) => x.endsWith('.mp4')), 'MP4 is not configured: not listed');
  assert.ok(!urls.some((x) => x.startsWith('dtsc:')), 'no DTSC port: not listed');
  assert.deepEqual(
    u.publish.map((x) => x.url),
    ['rtmp://media.example:11935/live/live+cam', 'srt://media.example:18889?streamid=#!::r=live+cam,m=publish', 'rtsp://media.example:15554/live+cam', 'http://media.example:18080/whip/live+cam'],
  );
  assert.equal(u.page, 'http://media.example:18080/live+cam.html');
  assert.match(u.embed, /<script src="http:\/\/media\.example:18080\/player\.js"><\/script>/);
  assert.deepEqual(streamUrls('demo', false, PROTOCOLS, PORTS, 'h').publish, [], 'a VoD stream takes no publisher');
});

test('the HTTP connector\'s public addresses replace http://HOST:PORT/, each with its own set', () => {
  const protocols = PROTOCOLS.map((p) => (p.connector === 'HTTP' ? { ...p, pubaddr: ['https://cdn.example/haze', 'https://b.example/'] } : p));
  const u = streamUrls('cam', true, protocols, PORTS, '10.0.0.5');
  assert.equal(u.page, 'https://cdn.example/haze/cam.html');
  const urls = u.play.map((x) => x.url);
  assert.ok(urls.includes('https://cdn.example/haze/hls/cam/index.m3u8'));
  assert.ok(urls.includes('https://b.example/hls/cam/index.m3u8'));
  assert.ok(!urls.some((x) => x.includes(':18080')), 'the HTTP port is behind the public address');
  assert.ok(urls.includes('rtmp://10.0.0.5:11935/live/cam'), 'other protocols keep the host');
  assert.ok(u.publish.some((x) => x.url === 'https://cdn.example/haze/whip/cam'));
});

test('an IPv6 host is bracketed; names are escaped in paths but + stays', () => {
  const u = streamUrls('a b+c', true, PROTOCOLS, PORTS, '::1');
  assert.ok(u.play.some((x) => x.url === 'http://[::1]:18080/a%20b+c.flv'));
  assert.ok(u.play.some((x) => x.url === 'rtmp://[::1]:11935/live/a%20b+c'));
});
