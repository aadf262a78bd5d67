// HLS playlist writers: exact text for small fixtures of each kind (multivariant, TS, fMP4,
// LL-HLS with delta updates), tag order as RFC 8216bis lays it out, and properties over random
// indices (EXTINF never above the target duration, every URI carries the query).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isHaze } from '../helpers.js';
import { mediaPlaylist, multivariantPlaylist, renditionReportFor, skippableSegments, targetDurationS, withQuery } from '../../src/containers/hls/playlist.js';
import type { HlsSegment, SegmentIndex } from '../../src/containers/hls/segment-index.js';
import type { AudioTrack, VideoTrack } from '../../src/media/types.js';

const video: VideoTrack = { id: 1, type: 'video', codec: 'H264', init: Buffer.from('0164001fffe1', 'hex'), bps: 100_000, lang: 'und', width: 320, height: 180, fpks: 25_000 };
const audio: AudioTrack = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.from('1190', 'hex'), bps: 16_000, lang: 'eng', rate: 48_000, channels: 2, size: 16 };
const T0 = Date.UTC(2026, 0, 1);

const text = (...lines: string[]): string => lines.join('\n') + '\n';

test('multivariant playlist with muxed audio (MistServer HLS TS shape)', () => {
  const got = multivariantPlaylist([{ uri: '1_2/index.m3u8', tracks: [video, audio], averageBandwidthBps: 800_000 }], [], { query: 'tkn=abc' });
  assert.equal(
    got,
    text(
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-INDEPENDENT-SEGMENTS',
      '#EXT-X-STREAM-INF:BANDWIDTH=928000,AVERAGE-BANDWIDTH=800000,RESOLUTION=320x180,FRAME-RATE=25.000,CODECS="avc1.64001f,mp4a.40.2"',
      '1_2/index.m3u8?tkn=abc',
    ),
  );
});

test('multivariant playlist with an audio group', () => {
  const got = multivariantPlaylist(
    [
      { uri: '1/index.m3u8', tracks: [video], audioGroup: 'aud' },
      { uri: '3/index.m3u8', tracks: [{ ...video, id: 3, width: 640, height: 360, fpks: 29_970, bps: 200_000 }], audioGroup: 'aud', bandwidthBps: 2_000_000 },
    ],
    [{ groupId: 'aud', renditions: [{ name: 'English', track: audio, uri: '2/index.m3u8', default: true }, { name: 'Other', track: { ...audio, id: 4, lang: 'und', channels: 6, codec: 'AC3', init: Buffer.alloc(0) }, uri: '4/index.m3u8' }] }],
    { version: 7 },
  );
  assert.equal(
    got,
    text(
      '#EXTM3U',
      '#EXT-X-VERSION:7',
      '#EXT-X-INDEPENDENT-SEGMENTS',
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="eng",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="2/index.m3u8"',
      '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Other",DEFAULT=NO,AUTOSELECT=NO,CHANNELS="6",URI="4/index.m3u8"',
      '#EXT-X-STREAM-INF:BANDWIDTH=928000,RESOLUTION=320x180,FRAME-RATE=25.000,CODECS="avc1.64001f,mp4a.40.2,ac-3",AUDIO="aud"',
      '1/index.m3u8',
      '#EXT-X-STREAM-INF:BANDWIDTH=2000000,RESOLUTION=640x360,FRAME-RATE=29.970,CODECS="avc1.64001f,mp4a.40.2,ac-3",AUDIO="aud"',
      '3/index.m3u8',
    ),
  );
  assert.throws(() => multivariantPlaylist([{ uri: 'a.m3u8', tracks: [video], audioGroup: 'nope' }], []), isHaze);
  assert.throws(() => multivariantPlaylist([], [{ groupId: 'x"y', renditions: [{ name: 'n', track: audio }] }]), isHaze);
});

function tsIndex(ended: boolean): SegmentIndex {
  return {
    segments: [
      { sequence: 0, startMs: 0, durationMs: 1000, uri: '0_1000.ts', programDateTimeMs: T0 },
      { sequence: 1, startMs: 1000, durationMs: 1000, uri: '1000_2000.ts', programDateTimeMs: T0 + 1000 },
      { sequence: 2, startMs: 2000, durationMs: 1500.4, uri: '2000_3500.ts', discontinuity: true, programDateTimeMs: T0 + 5000.25 },
      { sequence: 3, startMs: 3500, durationMs: 999, uri: '3500_4499.ts?x=1' },
    ],
    ended,
  };
}

test('TS media playlist, ended, with discontinuity and program date time', () => {
  assert.equal(
    mediaPlaylist(tsIndex(true), { query: 'tkn=abc', playlistType: 'VOD' }),
    text(
      '#EXTM3U',
      '#EXT-X-VERSION:3',
      '#EXT-X-TARGETDURATION:2',
      '#EXT-X-MEDIA-SEQUENCE:0',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-PLAYLIST-TYPE:VOD',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000Z',
      '#EXTINF:1.000,',
      '0_1000.ts?tkn=abc',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:01.000Z',
      '#EXTINF:1.000,',
      '1000_2000.ts?tkn=abc',
      '#EXT-X-DISCONTINUITY',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:05.000Z',
      '#EXTINF:1.500,',
      '2000_3500.ts?tkn=abc',
      '#EXTINF:0.999,',
      '3500_4499.ts?x=1&tkn=abc',
      '#EXT-X-ENDLIST',
    ),
  );
});

test('live sliding window moves dropped discontinuities into the discontinuity sequence', () => {
  const idx = tsIndex(false);
  idx.discontinuitySequence = 5;
  assert.equal(
    mediaPlaylist(idx, { windowSegments: 1 }),
    text('#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:3', '#EXT-X-DISCONTINUITY-SEQUENCE:6', '#EXTINF:0.999,', '3500_4499.ts?x=1'),
  );
  // A window that still holds the discontinuity keeps the tag and the old sequence.
  const two = mediaPlaylist(idx, { windowSegments: 2 });
  assert.match(two, /#EXT-X-MEDIA-SEQUENCE:2\n#EXT-X-DISCONTINUITY-SEQUENCE:5\n#EXT-X-DISCONTINUITY\n/);
  assert.doesNotMatch(two, /ENDLIST/);
});

test('fMP4 media playlist has EXT-X-MAP before the first segment and version 7', () => {
  const idx: SegmentIndex = { segments: [{ sequence: 7, startMs: 14000, durationMs: 2000, uri: 'chunk_14000.m4s' }], ended: true };
  assert.equal(
    mediaPlaylist(idx, { initUri: 'init.m4s', query: '?tkn=1' }),
    text('#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:7', '#EXT-X-DISCONTINUITY-SEQUENCE:0', '#EXT-X-MAP:URI="init.m4s?tkn=1"', '#EXTINF:2.000,', 'chunk_14000.m4s?tkn=1', '#EXT-X-ENDLIST'),
  );
  // An empty live playlist still says where the sequence starts.
  assert.equal(mediaPlaylist({ segments: [], nextSequence: 4, ended: false }), text('#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:4', '#EXT-X-DISCONTINUITY-SEQUENCE:0'));
});

function llSegment(seq: number, durationMs = 1000, partMs = 500): HlsSegment {
  const start = seq * durationMs;
  const parts = [];
  for (let k = 0; k * partMs < durationMs; k++) parts.push({ durationMs: Math.min(partMs, durationMs - k * partMs), uri: `chunk_${start}.${k}.m4s`, independent: k === 0 });
  return { sequence: seq, startMs: start, durationMs, uri: `chunk_${start}.m4s?msn=${seq}`, programDateTimeMs: T0 + start, parts };
}

test('LL-HLS media playlist: exact text', () => {
  const idx: SegmentIndex = {
    segments: [llSegment(10), llSegment(11)],
    pendingParts: [{ durationMs: 500, uri: 'chunk_12000.0.m4s', independent: true }],
    preloadHint: { uri: 'chunk_12000.1.m4s' },
    ended: false,
  };
  const got = mediaPlaylist(idx, {
    initUri: 'init.m4s',
    query: 'tkn=1',
    lowLatency: { partTargetMs: 500, canSkipUntilMs: 6000, renditionReports: [{ uri: '../2/index.m3u8', lastMsn: 12, lastPart: 0 }] },
  });
  assert.equal(
    got,
    text(
      '#EXTM3U',
      '#EXT-X-VERSION:9',
      '#EXT-X-TARGETDURATION:1',
      '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=6.000,PART-HOLD-BACK=1.500',
      '#EXT-X-PART-INF:PART-TARGET=0.500',
      '#EXT-X-MEDIA-SEQUENCE:10',
      '#EXT-X-DISCONTINUITY-SEQUENCE:0',
      '#EXT-X-MAP:URI="init.m4s?tkn=1"',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:10.000Z',
      '#EXT-X-PART:DURATION=0.500,URI="chunk_10000.0.m4s?tkn=1",INDEPENDENT=YES',
      '#EXT-X-PART:DURATION=0.500,URI="chunk_10000.1.m4s?tkn=1"',
      '#EXTINF:1.000,',
      'chunk_10000.m4s?msn=10&tkn=1',
      '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:11.000Z',
      '#EXT-X-PART:DURATION=0.500,URI="chunk_11000.0.m4s?tkn=1",INDEPENDENT=YES',
      '#EXT-X-PART:DURATION=0.500,URI="chunk_11000.1.m4s?tkn=1"',
      '#EXTINF:1.000,',
      'chunk_11000.m4s?msn=11&tkn=1',
      '#EXT-X-PART:DURATION=0.500,URI="chunk_12000.0.m4s?tkn=1",INDEPENDENT=YES',
      '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="chunk_12000.1.m4s?tkn=1"',
      '#EXT-X-RENDITION-REPORT:URI="../2/index.m3u8?tkn=1",LAST-MSN=12,LAST-PART=0',
    ),
  );
  assert.deepEqual(renditionReportFor('../1/index.m3u8', idx), { uri: '../1/index.m3u8', lastMsn: 12, lastPart: 0 });
  assert.deepEqual(renditionReportFor('x', { segments: [llSegment(3)], ended: false }), { uri: 'x', lastMsn: 3, lastPart: 1 });
  assert.deepEqual(renditionReportFor('x', { segments: [], ended: false }), { uri: 'x', lastMsn: 0 });
});

function bigLlIndex(): SegmentIndex {
  const segments = [];
  for (let i = 0; i < 8; i++) segments.push(llSegment(100 + i, 2000));
  // Sequence 100 starts at 0 ms here: re-base the times so the arithmetic below is easy to read.
  segments.forEach((s, i) => {
    const start = i * 2000;
    s.startMs = start;
    s.uri = `chunk_${start}.m4s`;
    s.programDateTimeMs = T0 + start;
    s.parts = s.parts!.map((p, k) => ({ ...p, uri: `chunk_${start}.${k}.m4s` }));
  });
  return { segments, pendingParts: [{ durationMs: 500, uri: 'chunk_16000.0.m4s', independent: true }, { durationMs: 500, uri: 'chunk_16000.1.m4s', independent: false }], preloadHint: { uri: 'chunk_16000.2.m4s' }, ended: false };
}

test('LL-HLS tags appear in RFC 8216bis order', () => {
  const lines = mediaPlaylist(bigLlIndex(), { initUri: 'init.m4s', lowLatency: { partTargetMs: 500, canSkipUntilMs: 12000, renditionReports: [{ uri: 'a.m3u8', lastMsn: 108 }] } }).trimEnd().split('\n');
  const first = (prefix: string): number => lines.findIndex((l) => l.startsWith(prefix));
  const last = (prefix: string): number => lines.map((l) => l.startsWith(prefix)).lastIndexOf(true);
  const order = ['#EXTM3U', '#EXT-X-VERSION', '#EXT-X-TARGETDURATION:2', '#EXT-X-SERVER-CONTROL', '#EXT-X-PART-INF', '#EXT-X-MEDIA-SEQUENCE:100', '#EXT-X-MAP', '#EXTINF'];
  for (let i = 1; i < order.length; i++) assert.ok(first(order[i - 1]!) >= 0 && first(order[i - 1]!) < first(order[i]!), `${order[i - 1]} before ${order[i]}`);
  assert.ok(last('#EXTINF') < first('#EXT-X-PRELOAD-HINT'));
  assert.ok(last('#EXT-X-PART:') < first('#EXT-X-PRELOAD-HINT'));
  assert.ok(first('#EXT-X-PRELOAD-HINT') < first('#EXT-X-RENDITION-REPORT'));
  assert.equal(lines.at(-1), '#EXT-X-RENDITION-REPORT:URI="a.m3u8",LAST-MSN=108');
  assert.ok(lines.includes('#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=1.500'));
  // Parts only within 3 target durations (6 s) of the live edge (16 s): segments ending at
  // 12, 14 and 16 s (4 parts each) plus the 2 pending parts.
  assert.equal(lines.filter((l) => l.startsWith('#EXT-X-PART:')).length, 3 * 4 + 2);
  assert.equal(first('#EXT-X-PART:'), lines.indexOf('#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:10.000Z') + 1);
  assert.equal(lines.filter((l) => l.includes('INDEPENDENT=YES')).length, 4);
  assert.ok(!lines.some((l) => l.startsWith('#EXT-X-SKIP')), 'no skip unless asked');
});

test('delta update: EXT-X-SKIP replaces the segments before the skip boundary', () => {
  const idx = bigLlIndex();
  // End 16 s, CAN-SKIP-UNTIL 12 s: boundary at 4 s, so segments [0,2) and [2,4) are skipped.
  assert.equal(skippableSegments(idx.segments, 12000), 2);
  assert.equal(skippableSegments(idx.segments, 16000), 0);
  assert.equal(skippableSegments(idx.segments, 13000), 1);
  assert.equal(skippableSegments(idx.segments, 1000), 7);
  assert.equal(skippableSegments([], 1000), 0);
  const full = mediaPlaylist(idx, { lowLatency: { partTargetMs: 500, canSkipUntilMs: 12000 } });
  const delta = mediaPlaylist(idx, { lowLatency: { partTargetMs: 500, canSkipUntilMs: 12000 }, skip: true });
  const lines = delta.trimEnd().split('\n');
  assert.equal(lines.filter((l) => l.startsWith('#EXT-X-SKIP')).length, 1);
  assert.ok(lines.includes('#EXT-X-SKIP:SKIPPED-SEGMENTS=2'));
  assert.ok(lines.includes('#EXT-X-MEDIA-SEQUENCE:100'), 'media sequence still names the first (skipped) segment');
  assert.equal(lines.filter((l) => l.startsWith('#EXTINF')).length, 6);
  assert.equal(full.split('\n').filter((l) => l.startsWith('#EXTINF')).length, 8);
  assert.ok(!delta.includes('\nchunk_0.m4s\n') && !delta.includes('\nchunk_2000.m4s\n') && delta.includes('\nchunk_4000.m4s\n'));
  // The skip tag comes right before the first listed segment's tags.
  assert.equal(lines[lines.indexOf('#EXT-X-SKIP:SKIPPED-SEGMENTS=2') + 1], '#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:04.000Z');
  // Without CAN-SKIP-UNTIL, or with a short playlist, nothing is skipped.
  assert.doesNotMatch(mediaPlaylist(idx, { lowLatency: { partTargetMs: 500 }, skip: true }), /SKIP/);
  assert.doesNotMatch(mediaPlaylist({ ...idx, segments: idx.segments.slice(-3) }, { lowLatency: { partTargetMs: 500, canSkipUntilMs: 12000 }, skip: true }), /EXT-X-SKIP/);
});

test('ended LL playlist drops parts, hints and reports and ends with ENDLIST', () => {
  const idx = { ...bigLlIndex(), ended: true };
  const got = mediaPlaylist(idx, { lowLatency: { partTargetMs: 500, canSkipUntilMs: 12000, renditionReports: [{ uri: 'a', lastMsn: 1 }] }, skip: true });
  assert.doesNotMatch(got, /EXT-X-PART:|PRELOAD-HINT|RENDITION-REPORT|EXT-X-SKIP/);
  // the server control stays as the live playlist announced it (§6.2.1: only ENDLIST is added)
  assert.match(got, /CAN-SKIP-UNTIL=12/);
  assert.ok(got.endsWith('#EXT-X-ENDLIST\n'));
});

test('bad URIs and part targets are refused', () => {
  const bad: SegmentIndex = { segments: [{ sequence: 0, startMs: 0, durationMs: 1, uri: 'a\nb' }], ended: true };
  assert.throws(() => mediaPlaylist(bad), isHaze);
  assert.throws(() => mediaPlaylist({ segments: [], ended: false, preloadHint: { uri: 'x"y' } }, { lowLatency: { partTargetMs: 500 } }), isHaze);
  assert.throws(() => mediaPlaylist({ segments: [], ended: false }, { lowLatency: { partTargetMs: 0 } }), isHaze);
});

test('withQuery and targetDurationS', () => {
  assert.equal(withQuery('a.ts', undefined), 'a.ts');
  assert.equal(withQuery('a.ts', ''), 'a.ts');
  assert.equal(withQuery('a.ts', '?'), 'a.ts');
  assert.equal(withQuery('a.ts?x=1', 'y=2'), 'a.ts?x=1&y=2');
  assert.equal(targetDurationS([]), 1);
  assert.equal(targetDurationS([{ sequence: 0, startMs: 0, durationMs: 2000, uri: 'a' }]), 2);
  assert.equal(targetDurationS([{ sequence: 0, startMs: 0, durationMs: 2000.4, uri: 'a' }]), 2);
  // rounded to the nearest second from version 6 on (RFC 8216 §4.3.3.1), up before
  assert.equal(targetDurationS([{ sequence: 0, startMs: 0, durationMs: 2001, uri: 'a' }]), 2);
  assert.equal(targetDurationS([{ sequence: 0, startMs: 0, durationMs: 2500, uri: 'a' }]), 3);
  assert.equal(targetDurationS([{ sequence: 0, startMs: 0, durationMs: 2001, uri: 'a' }], 3), 3);
});

test('property: EXTINF rounds to at most the target, one URI line per EXTINF, every URI has the query', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ durationMs: fc.integer({ min: 1, max: 20_000 }), disc: fc.boolean(), parts: fc.integer({ min: 0, max: 5 }) }), { maxLength: 30 }),
      fc.boolean(),
      fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
      (specs, ended, windowSegments) => {
        let t = 0;
        const segments: HlsSegment[] = specs.map((s, i) => {
          const seg: HlsSegment = { sequence: 50 + i, startMs: t, durationMs: s.durationMs, uri: `s${i}.m4s`, discontinuity: s.disc };
          if (s.parts > 0) seg.parts = Array.from({ length: s.parts }, (_, k) => ({ durationMs: s.durationMs / s.parts, uri: `s${i}.${k}.m4s`, independent: k === 0 }));
          t += s.durationMs;
          return seg;
        });
        const out = mediaPlaylist({ segments, ended, preloadHint: { uri: 'next.m4s' } }, { query: 'q=1', windowSegments, lowLatency: { partTargetMs: 1000, canSkipUntilMs: 60_000 }, skip: true });
        const lines = out.trimEnd().split('\n');
        const target = Number(lines.find((l) => l.startsWith('#EXT-X-TARGETDURATION:'))!.split(':')[1]);
        for (let i = 0; i < lines.length; i++) {
          const l = lines[i]!;
          if (l.startsWith('#EXTINF:')) {
            assert.ok(Math.round(parseFloat(l.slice(8))) <= target);
            assert.match(lines[i + 1]!, /^s\d+\.m4s\?q=1$/);
          }
          for (const m of l.matchAll(/URI="([^"]*)"/g)) assert.ok(m[1]!.endsWith('?q=1'), l);
        }
        const listed = lines.filter((l) => l.startsWith('#EXTINF')).length;
        const skipped = Number(/SKIPPED-SEGMENTS=(\d+)/.exec(out)?.[1] ?? 0);
        assert.equal(listed + skipped, windowSegments === undefined ? segments.length : Math.min(windowSegments, segments.length));
        assert.equal(out.endsWith('#EXT-X-ENDLIST\n'), ended);
      },
    ),
    { numRuns: 200 },
  );
});
