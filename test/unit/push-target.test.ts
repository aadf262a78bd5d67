import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { matchPushPattern, parsePushTarget, splitPushParams } from '../../src/pushes/push-target.js';
import { HazeError } from '../../src/util/errors.js';

test('trailing-? rule: parameters are the text after the LAST ?', () => {
  const cases: [string, string, string | null][] = [
    ['/rec/a.mkv', '/rec/a.mkv', null],
    ['/rec/a.mkv?split=60', '/rec/a.mkv', 'split=60'],
    // §5.5: a target with its own query ends in an extra ?
    ['rtmp://x/app/key?token=abc?', 'rtmp://x/app/key?token=abc', ''],
    ['rtmp://x/app/key?token=abc?split=60', 'rtmp://x/app/key?token=abc', 'split=60'],
    // the trap: a single ? makes the target's own query into push parameters
    ['rtmp://x/app/key?token=abc', 'rtmp://x/app/key', 'token=abc'],
  ];
  for (const [target, url, query] of cases) assert.deepEqual(splitPushParams(target), { url, query }, target);
  const t = parsePushTarget('rtmp://x/app/key?token=abc?video=0&audio=none');
  assert.equal(t.url, 'rtmp://x/app/key?token=abc');
  assert.equal(t.kind, 'rtmp');
  assert.equal(t.params.video, '0');
  assert.equal(t.params.audio, 'none');
  assert.equal(parsePushTarget('rtmp://x/app/key?token=abc').params.raw['token'], 'abc');
});

test('push URL patterns: after the last ?, or the first when the pattern ends in ?', () => {
  assert.equal(matchPushPattern('/*.flv', '/a/b.flv?split=1'), true);
  assert.equal(matchPushPattern('/*.flv', '/a/b.flv?x=1?split=1'), false); // the target is /a/b.flv?x=1
  assert.equal(matchPushPattern('rtmp://*', 'rtmp://h/a/k?t=1?'), true);
  assert.equal(matchPushPattern('https://*/http_upload_hls?', 'https://a.youtube.com/http_upload_hls?cid=x&copy=0&file=a.m3u8'), true);
  assert.equal(matchPushPattern('https://*/http_upload_hls?', 'https://a.youtube.com/other?cid=x'), false);
});

test('target kinds and typed parameters', () => {
  const kinds: [string, string, string | undefined, string][] = [
    ['rtmp://h:1935/live/key', 'rtmp', undefined, 'RTMP'],
    ['rtmps://h/live/key', 'rtmps', undefined, 'RTMP'],
    ['dtsc://h:4200/stream', 'dtsc', undefined, 'DTSC'],
    ['/r/a.flv', 'file', 'flv', 'FLV'],
    ['/r/a.TS', 'file', 'ts', 'HTTPTS'],
    ['/r/a.mp4', 'file', 'mp4', 'MP4'],
    ['/r/a.mkv', 'file', 'mkv', 'EBML'],
    ['/r/a.webm', 'file', 'webm', 'EBML'],
    ['/r/a.dtsc', 'file', 'dtsc', 'DTSC'],
    ['/r/a.wav', 'file', 'wav', 'WAV'],
    ['/r/a.aac', 'file', 'aac', 'AAC'],
    ['/r/a.mp3', 'file', 'mp3', 'MP3'],
    ['/r/a.ogg', 'file', 'ogg', 'OGG'],
    ['FLV:/r/a.bin', 'file', 'flv', 'FLV'],
    ['file:///r/$stream.ts', 'file', 'ts', 'HTTPTS'],
  ];
  for (const [target, kind, ext, connector] of kinds) {
    const t = parsePushTarget(target);
    assert.equal(t.kind, kind, target);
    assert.equal(t.extension, ext, target);
    assert.equal(t.connector, connector, target);
  }
  assert.equal(parsePushTarget('FLV:/r/a.bin').url, '/r/a.bin');
  const p = parsePushTarget('/r/$stream_$segmentCounter.ts?split=2&m3u8=index.m3u8&recstart=1000&recstop=9000&duration=30&append=0&waittrackcount=2&start=500&stop=10000&noendlist&maxEntries=5').params;
  assert.equal(p.split, 2);
  assert.equal(p.m3u8, 'index.m3u8');
  assert.equal(p.recstart, 1000);
  assert.equal(p.recstop, 9000);
  assert.equal(p.duration, 30);
  assert.equal(p.append, false);
  assert.equal(p.waittrackcount, 2);
  assert.equal(p.start, 500);
  assert.equal(p.stop, 10000);
  assert.equal(p.noendlist, true);
  assert.equal(p.maxEntries, 5);
  // m3u8 without split: 60 s segments
  assert.equal(parsePushTarget('/r/s$segmentCounter.ts?m3u8=i.m3u8').params.split, 60);
  assert.equal(parsePushTarget('/r/a.flv?append=1').params.append, true);
  assert.equal(parsePushTarget('/r/a.flv?append').params.append, true);
});

test('clear refusals', () => {
  const refused: [string, RegExp][] = [
    ['rist://h:9000', /RIST/],
    ['whip://h/x', /WHIP/],
    ['/r/a.jpg', /cannot record \.jpg/],
    ['/r/a.m3u8', /m3u8=/],
    ['/r/noext', /no extension/],
    ['rec/a.ts', /absolute path/],
    ['', /empty/],
    ['/r/a.ts?split=10', /\$segmentCounter or \$currentMediaTime/],
    ['/r/a.ts?m3u8=x.m3u8', /\$segmentCounter/],
    ['/r/a.ts?split=abc', /not a number/],
    ['/r/a.ts?recstart=-5', /negative/],
    ['gopher://h/x', /gopher/],
  ];
  for (const [target, re] of refused) {
    assert.throws(() => parsePushTarget(target), (e: unknown) => e instanceof HazeError && re.test(e.message), target);
  }
});

test('fuzz: any target parses or throws a HazeError', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 80 }), (s) => {
      try {
        parsePushTarget(s);
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }),
    { numRuns: 2000 },
  );
});
