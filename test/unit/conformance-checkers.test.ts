// The HLS / LL-HLS / DASH conformance checkers of test/checkers: every rule has a playlist (or
// MPD) that breaks it and the checker names the rule; hand-written playlists in the shape of the
// RFC 8216 §8 / rfc8216bis §9 examples pass; and what Haze's writers (containers/hls/playlist.ts,
// containers/dash/mpd.ts) produce passes, for the fixtures of hls-playlist / dash-mpd tests and
// for random indices, including a simulated live lifecycle checked reload by reload.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkMediaPlaylist, checkMultivariantPlaylist, comparePlaylists, parseMediaPlaylist, type MediaPlaylistCheckOptions } from '../checkers/hls-rules.js';
import { parseAttributeList } from '../checkers/m3u8.js';
import { checkMpd, compareMpds, durationMs, templateProblems } from '../checkers/mpd-rules.js';
import { parseXml, XmlSyntaxError } from '../checkers/xml.js';
import { mediaPlaylist, multivariantPlaylist } from '../../src/containers/hls/playlist.js';
import type { HlsPart, HlsSegment, SegmentIndex } from '../../src/containers/hls/segment-index.js';
import { mpd, type DashRepresentation } from '../../src/containers/dash/mpd.js';
import type { AudioTrack, VideoTrack } from '../../src/media/types.js';

const text = (...lines: string[]): string => lines.join('\n') + '\n';

/** Asserts `violations` is empty, printing them when not. */
function valid(violations: string[], what: string): void {
  assert.deepEqual(violations, [], `${what}:\n${violations.join('\n')}`);
}

/** Asserts some violation matches `pattern`. */
function flags(violations: string[], pattern: RegExp, what: string): void {
  assert.ok(violations.some((v) => pattern.test(v)), `${what}: expected a violation matching ${pattern}, got:\n${violations.join('\n') || '(none)'}`);
}

/** Replaces exactly one occurrence (so a mutation cannot silently miss). */
function swap(src: string, from: string, to: string): string {
  const at = src.indexOf(from);
  assert.ok(at >= 0 && src.indexOf(from, at + 1) < 0, `"${from}" occurs once in the base text`);
  return src.slice(0, at) + to + src.slice(at + from.length);
}

// ---- known-good playlists, in the shape of the RFC examples ------------------------------------

const SIMPLE_VOD = text('#EXTM3U', '#EXT-X-TARGETDURATION:10', '#EXT-X-VERSION:3', '#EXTINF:9.009,', 'http://media.example.com/first.ts', '#EXTINF:9.009,', 'http://media.example.com/second.ts', '#EXTINF:3.003,', 'http://media.example.com/third.ts', '#EXT-X-ENDLIST');

const LIVE_TS = text('#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:8', '#EXT-X-MEDIA-SEQUENCE:2680', '', '#EXTINF:7.975,', 'https://priv.example.com/fileSequence2680.ts', '#EXTINF:7.941,', 'https://priv.example.com/fileSequence2681.ts', '#EXTINF:7.975,', 'https://priv.example.com/fileSequence2682.ts');

const ENCRYPTED = text(
  '#EXTM3U',
  '#EXT-X-VERSION:3',
  '#EXT-X-MEDIA-SEQUENCE:7794',
  '#EXT-X-TARGETDURATION:15',
  '#EXT-X-KEY:METHOD=AES-128,URI="https://priv.example.com/key.php?r=52"',
  '#EXTINF:2.833,',
  'http://media.example.com/fileSequence52-A.ts',
  '#EXTINF:15.0,',
  'http://media.example.com/fileSequence52-B.ts',
  '#EXT-X-KEY:METHOD=AES-128,URI="https://priv.example.com/key.php?r=53",IV=0x9c7db8778570d05c3177c349fd9236aa',
  '#EXTINF:15.0,',
  'http://media.example.com/fileSequence53-A.ts',
);

const FMP4_VOD = text('#EXTM3U', '#EXT-X-VERSION:7', '#EXT-X-TARGETDURATION:6', '#EXT-X-PLAYLIST-TYPE:VOD', '#EXT-X-INDEPENDENT-SEGMENTS', '#EXT-X-MAP:URI="init.mp4"', '#EXTINF:6.006,', 'seg0.m4s', '#EXT-X-DISCONTINUITY', '#EXT-X-MAP:URI="init2.mp4"', '#EXTINF:5.5,', 'seg1.m4s', '#EXT-X-ENDLIST');

/** A low-latency playlist: complete segments, one with parts, a segment in progress, a hint. */
const LL = text(
  '#EXTM3U',
  '#EXT-X-VERSION:6',
  '#EXT-X-TARGETDURATION:4',
  '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.0,PART-HOLD-BACK=3.0',
  '#EXT-X-PART-INF:PART-TARGET=1.0',
  '#EXT-X-MEDIA-SEQUENCE:300',
  '#EXT-X-DISCONTINUITY-SEQUENCE:3',
  '#EXT-X-MAP:URI="init.mp4"',
  '#EXT-X-PROGRAM-DATE-TIME:2026-02-14T02:13:36.106Z',
  '#EXTINF:4.00008,',
  'seg300.mp4',
  '#EXTINF:4.00008,',
  'seg301.mp4',
  '#EXT-X-DISCONTINUITY',
  '#EXT-X-PROGRAM-DATE-TIME:2026-02-14T02:13:48.000+01:00',
  '#EXT-X-PART:DURATION=1.0,URI="part302.0.mp4",INDEPENDENT=YES',
  '#EXT-X-PART:DURATION=1.0,URI="part302.1.mp4"',
  '#EXT-X-PART:DURATION=1.0,URI="part302.2.mp4"',
  '#EXT-X-PART:DURATION=0.6,URI="part302.3.mp4"',
  '#EXTINF:3.6,',
  'seg302.mp4',
  '#EXT-X-PART:DURATION=1.0,URI="part303.0.mp4",INDEPENDENT=YES',
  '#EXT-X-PART:DURATION=1.0,URI="part303.1.mp4"',
  '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part303.2.mp4"',
  '#EXT-X-RENDITION-REPORT:URI="../1M/index.m3u8",LAST-MSN=303,LAST-PART=1',
);

/** A delta update of a longer LL playlist (answer to `_HLS_skip=YES`). */
function llDelta(skipped: number, listed: number): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:9', '#EXT-X-TARGETDURATION:4', '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.0,PART-HOLD-BACK=3.0', '#EXT-X-PART-INF:PART-TARGET=1.0', '#EXT-X-MEDIA-SEQUENCE:100', '#EXT-X-MAP:URI="init.mp4"'];
  if (skipped > 0) lines.push(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skipped}`);
  for (let i = 0; i < listed; i++) lines.push('#EXTINF:4.0,', `seg${100 + skipped + i}.mp4`);
  return text(...lines);
}

const MULTIVARIANT = text(
  '#EXTM3U',
  '#EXT-X-VERSION:6',
  '#EXT-X-INDEPENDENT-SEGMENTS',
  '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/en.m3u8"',
  '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Deutsch",LANGUAGE="de",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="audio/de.m3u8"',
  '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",FORCED=NO,URI="subs/en.m3u8"',
  '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",INSTREAM-ID="CC1"',
  '#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,RESOLUTION=640x360,FRAME-RATE=29.970,CODECS="avc1.4d401e,mp4a.40.2",AUDIO="aac",SUBTITLES="subs",CLOSED-CAPTIONS="cc"',
  'low/index.m3u8',
  '#EXT-X-STREAM-INF:BANDWIDTH=2560000,RESOLUTION=1280x720,FRAME-RATE=29.970,CODECS="avc1.64001f,mp4a.40.2",AUDIO="aac",CLOSED-CAPTIONS=NONE',
  'mid/index.m3u8',
  '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,CODECS="avc1.4d401e",URI="low/iframe.m3u8"',
);

const MPD_DYNAMIC = [
  '<?xml version="1.0" encoding="UTF-8"?>',
  '<!-- a live presentation -->',
  '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011" type="dynamic" availabilityStartTime="2026-01-01T00:00:00Z" publishTime="2026-01-01T00:01:00Z" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT30S" minBufferTime="PT2S">',
  '  <Period id="p0" start="PT0S">',
  '    <AdaptationSet id="1" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">',
  '      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>',
  '      <Representation id="v720" codecs="avc1.64001f" bandwidth="3000000" width="1280" height="720" frameRate="30000/1001">',
  '        <SegmentTemplate timescale="90000" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Time$.m4s">',
  '          <SegmentTimeline>',
  '            <S t="4320000" d="180000" r="3"/>',
  '            <S d="90000"/>',
  '            <S t="5220000" d="90000"/>',
  '          </SegmentTimeline>',
  '        </SegmentTemplate>',
  '      </Representation>',
  '    </AdaptationSet>',
  '    <AdaptationSet id="2" contentType="audio" mimeType="audio/mp4" lang="en">',
  '      <SegmentTemplate timescale="48000" initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Number%05d$.m4s" startNumber="24" duration="96000"/>',
  '      <Representation id="a128" codecs="mp4a.40.2" bandwidth="128000" audioSamplingRate="48000">',
  '        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>',
  '      </Representation>',
  '    </AdaptationSet>',
  '  </Period>',
  '</MPD>',
  '',
].join('\n');

const MPD_STATIC = [
  '<?xml version="1.0"?>',
  `<MPD xmlns='urn:mpeg:dash:schema:mpd:2011' profiles='urn:mpeg:dash:profile:isoff-on-demand:2011' type='static' mediaPresentationDuration='PT1M30.5S' minBufferTime='PT1.500S'>`,
  '  <Period>',
  '    <AdaptationSet mimeType="video/mp4" codecs="hvc1.1.6.L93.B0" width="1920" height="1080">',
  '      <Representation id="1" bandwidth="5000000"><BaseURL>video.mp4</BaseURL><SegmentBase indexRange="800-1999"/></Representation>',
  '    </AdaptationSet>',
  '  </Period>',
  '</MPD>',
].join('\n');

describe('known-good playlists pass', () => {
  test('media playlists', () => {
    valid(checkMediaPlaylist(SIMPLE_VOD), 'simple VOD');
    valid(checkMediaPlaylist(LIVE_TS), 'live TS');
    valid(checkMediaPlaylist(ENCRYPTED), 'encrypted');
    valid(checkMediaPlaylist(FMP4_VOD), 'fMP4 VOD');
    valid(checkMediaPlaylist(LL), 'LL-HLS');
    valid(checkMediaPlaylist(LL.replace(/\n/g, '\r\n')), 'LL-HLS with CRLF line ends');
    valid(checkMediaPlaylist(llDelta(3, 6), { deltaRequested: true }), 'delta update');
  });
  test('multivariant playlists', () => {
    valid(checkMultivariantPlaylist(MULTIVARIANT), 'multivariant');
    valid(checkMultivariantPlaylist(text('#EXTM3U', '#EXT-X-STREAM-INF:BANDWIDTH=150000,CODECS="mp4a.40.5"', 'audio.m3u8')), 'audio only');
  });
  test('MPDs', () => {
    valid(checkMpd(MPD_DYNAMIC), 'dynamic MPD');
    valid(checkMpd(MPD_STATIC), 'static MPD');
  });
  test('what the parser reads', () => {
    const { playlist, violations } = parseMediaPlaylist(LL);
    valid(violations, 'LL');
    assert.deepEqual(playlist.segments.map((s) => [s.msn, s.uri, s.discontinuity, s.parts.length, s.partsComplete]), [
      [300, 'seg300.mp4', false, 0, false],
      [301, 'seg301.mp4', false, 0, false],
      [302, 'seg302.mp4', true, 4, true],
    ]);
    assert.deepEqual(playlist.pendingParts.map((p) => p.uri), ['part303.0.mp4', 'part303.1.mp4']);
    assert.equal(playlist.partTargetS, 1);
    assert.equal(playlist.serverControl?.get('CAN-SKIP-UNTIL'), '24.0');
    assert.deepEqual(parseAttributeList('A=1,B="x,y",C=0x1F').attrs, new Map([['A', '1'], ['B', '"x,y"'], ['C', '0x1F']]));
    assert.equal(durationMs('PT1M30.5S'), 90_500);
    assert.equal(durationMs('P1DT2H'), 93_600_000);
    assert.equal(durationMs('PT'), undefined);
    assert.deepEqual(templateProblems('$RepresentationID$/$Number%05d$-$$.m4s', 'media'), []);
    const root = parseXml('<a x="1&amp;2"><!-- c --><b>t&#x41;<![CDATA[<raw>]]></b></a>');
    assert.equal(root.attrs.get('x'), '1&2');
    assert.equal(root.children[0]!.text, 'tA<raw>');
  });
});

// ---- each rule broken once -----------------------------------------------------------------------

type Case = [what: string, playlist: string, expected: RegExp, opts?: MediaPlaylistCheckOptions];

describe('media playlist rules', () => {
  const TS2 = text('#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:10', '#EXT-X-MEDIA-SEQUENCE:0', '#EXTINF:10.000,', 'a.ts', '#EXTINF:9.5,', 'b.ts');
  valid(checkMediaPlaylist(TS2), 'TS base');
  const cases: Case[] = [
    ['EXTM3U not first', LL.replace('#EXTM3U\n', ''), /§4\.3\.1\.1.*first line must be #EXTM3U/],
    ['EXTM3U after a blank line', '\n' + LL, /first line must be #EXTM3U/],
    ['unknown tag', swap(LL, '#EXT-X-MAP', '#EXT-X-FOO:1\n#EXT-X-MAP'), /unknown tag EXT-X-FOO/],
    ['unquoted quoted-string', swap(LL, '#EXT-X-MAP:URI="init.mp4"', '#EXT-X-MAP:URI=init.mp4'), /URI must be a quoted-string/],
    ['unterminated quoted-string', swap(LL, '#EXT-X-MAP:URI="init.mp4"', '#EXT-X-MAP:URI="init.mp4'), /unterminated quoted string/],
    ['attribute twice', swap(LL, 'PART-TARGET=1.0', 'PART-TARGET=1.0,PART-TARGET=1.0'), /appears twice/],
    ['trailing comma', swap(LL, 'PART-TARGET=1.0', 'PART-TARGET=1.0,'), /trailing comma/],
    ['lower-case attribute name', swap(LL, 'PART-TARGET=1.0', 'part-target=1.0'), /attribute name expected/],
    ['bad enumerated value', swap(LL, 'CAN-BLOCK-RELOAD=YES', 'CAN-BLOCK-RELOAD=NO'), /CAN-BLOCK-RELOAD must be one of YES/],
    ['quoted enumerated value', swap(LL, 'URI="part302.0.mp4",INDEPENDENT=YES', 'URI="part302.0.mp4",INDEPENDENT="YES"'), /INDEPENDENT must be an unquoted enumerated-string/],
    ['unknown attribute', swap(LL, 'PART-TARGET=1.0', 'PART-TARGET=1.0,COLOR=RED'), /unknown attribute COLOR/],
    ['missing required attribute', swap(LL, '#EXT-X-MAP:URI="init.mp4"', '#EXT-X-MAP:BYTERANGE="100@0"'), /EXT-X-MAP lacks the required URI/],
    ['float where an integer belongs', swap(LL, '#EXT-X-TARGETDURATION:4', '#EXT-X-TARGETDURATION:4.0'), /EXT-X-TARGETDURATION value must be a decimal-integer/],
    ['tag with a value it does not take', swap(LL, '#EXT-X-DISCONTINUITY\n', '#EXT-X-DISCONTINUITY:1\n'), /EXT-X-DISCONTINUITY takes no value/],
    ['version too low for EXT-X-MAP', swap(LL, '#EXT-X-VERSION:6', '#EXT-X-VERSION:5'), /§7.*EXT-X-VERSION 5 is below 6.*EXT-X-MAP/],
    ['version too low for float EXTINF', swap(TS2, '#EXT-X-VERSION:3', '#EXT-X-VERSION:2'), /EXT-X-VERSION 2 is below 3, required by floating-point EXTINF/],
    ['no version but float EXTINF', swap(TS2, '#EXT-X-VERSION:3\n', ''), /no EXT-X-VERSION, but floating-point EXTINF/],
    ['version too low for IV', swap(ENCRYPTED, '#EXT-X-VERSION:3\n', '').replace(/#EXTINF:([\d]+)\.\d+,/g, '#EXTINF:$1,'), /requires version 2/],
    ['version too low for EXT-X-SKIP', swap(llDelta(3, 6), '#EXT-X-VERSION:9', '#EXT-X-VERSION:8'), /EXT-X-VERSION 8 is below 9.*EXT-X-SKIP/, { deltaRequested: true }],
    ['version twice', swap(LL, '#EXT-X-VERSION:6', '#EXT-X-VERSION:6\n#EXT-X-VERSION:6'), /EXT-X-VERSION appears more than once/],
    ['target duration missing', swap(LL, '#EXT-X-TARGETDURATION:4\n', ''), /EXT-X-TARGETDURATION is missing/],
    ['target duration twice', swap(LL, '#EXT-X-TARGETDURATION:4', '#EXT-X-TARGETDURATION:4\n#EXT-X-TARGETDURATION:4'), /EXT-X-TARGETDURATION appears more than once/],
    ['EXTINF rounds above the target (v6+)', swap(LL, '#EXTINF:4.00008,\nseg300', '#EXTINF:4.5,\nseg300'), /§4\.3\.3\.1.*EXTINF 4\.5 rounds to 5, more than EXT-X-TARGETDURATION 4/],
    ['EXTINF above the target (v3)', swap(TS2, '#EXTINF:10.000,', '#EXTINF:10.2,'), /EXTINF 10\.2 exceeds EXT-X-TARGETDURATION 10/],
    ['media sequence after the first segment', swap(TS2, '#EXT-X-MEDIA-SEQUENCE:0\n', '') + '#EXT-X-MEDIA-SEQUENCE:0\n', /EXT-X-MEDIA-SEQUENCE after the first Media Segment/],
    ['discontinuity sequence after the first segment', swap(LL, '#EXT-X-DISCONTINUITY-SEQUENCE:3\n', '').replace('seg300.mp4\n', 'seg300.mp4\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n'), /EXT-X-DISCONTINUITY-SEQUENCE after the first Media Segment/],
    ['discontinuity sequence after a discontinuity', swap(TS2, '#EXT-X-MEDIA-SEQUENCE:0', '#EXT-X-DISCONTINUITY\n#EXT-X-DISCONTINUITY-SEQUENCE:2'), /after an EXT-X-DISCONTINUITY/],
    ['segment without EXTINF', swap(TS2, '#EXTINF:9.5,\n', ''), /segment URI without an EXTINF/],
    ['EXTINF without URI', TS2 + '#EXTINF:3.0,\n', /EXTINF without a segment URI/],
    ['two EXTINF for one URI', swap(TS2, '#EXTINF:9.5,', '#EXTINF:9.5,\n#EXTINF:9.5,'), /second EXTINF/],
    ['EXTINF without comma', swap(TS2, '#EXTINF:9.5,', '#EXTINF:9.5'), /EXTINF must be <duration>,\[<title>\]/],
    ['fMP4 without EXT-X-MAP', swap(LL, '#EXT-X-MAP:URI="init.mp4"\n', ''), /§3\.3.*fMP4 segment without a preceding EXT-X-MAP/],
    ['fMP4 by option', swap(TS2, 'a.ts', 'a.seg'), /EXT-X-MAP/, { fmp4: true }],
    ['bad program date time', swap(LL, '2026-02-14T02:13:36.106Z', '2026-02-14 02:13:36'), /§4\.3\.2\.6.*ISO 8601/],
    ['program date time without zone', swap(LL, '2026-02-14T02:13:36.106Z', '2026-02-14T02:13:36.106'), /ISO 8601 date-time with time zone/],
    ['impossible date', swap(LL, '2026-02-14T02:13:36.106Z', '2026-13-14T02:13:36.106Z'), /ISO 8601/],
    ['ENDLIST twice', SIMPLE_VOD + '#EXT-X-ENDLIST\n', /EXT-X-ENDLIST appears more than once/],
    ['ENDLIST not last', swap(SIMPLE_VOD, '#EXTINF:3.003,', '#EXT-X-ENDLIST\n#EXTINF:3.003,'), /content after EXT-X-ENDLIST/],
    ['multivariant tag in a media playlist', swap(TS2, 'a.ts', 'a.ts\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="mp4a.40.2"'), /multivariant tag EXT-X-STREAM-INF in a media playlist/],
    ['trailing whitespace', swap(TS2, 'a.ts', 'a.ts '), /whitespace/],
    ['control character', swap(TS2, 'a.ts', 'a\u0001.ts'), /control character/],
    ['byte order mark', '\ufeff' + TS2, /byte order mark/],
    // LL-HLS
    ['PART-HOLD-BACK below 3 x PART-TARGET', swap(LL, 'PART-HOLD-BACK=3.0', 'PART-HOLD-BACK=2.5'), /§4\.4\.3\.8.*PART-HOLD-BACK 2\.5 is less than three times PART-TARGET 1/],
    ['PART-HOLD-BACK missing', swap(LL, ',PART-HOLD-BACK=3.0', ''), /PART-HOLD-BACK is REQUIRED/],
    ['SERVER-CONTROL missing with parts', swap(LL, '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.0,PART-HOLD-BACK=3.0\n', ''), /PART-HOLD-BACK \(REQUIRED\)/],
    ['CAN-SKIP-UNTIL below 6 x target', swap(LL, 'CAN-SKIP-UNTIL=24.0', 'CAN-SKIP-UNTIL=23.9'), /CAN-SKIP-UNTIL 23\.9 is less than six times the target duration 4/],
    ['HOLD-BACK below 3 x target', swap(LL, 'CAN-BLOCK-RELOAD=YES', 'CAN-BLOCK-RELOAD=YES,HOLD-BACK=11.0'), /HOLD-BACK 11 is less than three times/],
    ['CAN-SKIP-DATERANGES alone', swap(LL, 'CAN-SKIP-UNTIL=24.0', 'CAN-SKIP-DATERANGES=YES'), /CAN-SKIP-DATERANGES without CAN-SKIP-UNTIL/],
    ['PART-INF after the first part', swap(LL, '#EXT-X-PART-INF:PART-TARGET=1.0\n', '').replace('#EXTINF:3.6,', '#EXT-X-PART-INF:PART-TARGET=1.0\n#EXTINF:3.6,'), /EXT-X-PART before \(or without\) EXT-X-PART-INF/],
    ['parts without PART-INF', swap(LL, '#EXT-X-PART-INF:PART-TARGET=1.0\n', ''), /EXT-X-PART without EXT-X-PART-INF/],
    ['PART-TARGET above the target duration', swap(LL, 'PART-TARGET=1.0', 'PART-TARGET=5.0'), /PART-TARGET 5 exceeds the target duration 4/],
    ['part longer than PART-TARGET', swap(LL, 'DURATION=1.0,URI="part303.1.mp4"', 'DURATION=1.001,URI="part303.1.mp4"'), /§4\.4\.4\.9.*part DURATION 1\.001 exceeds PART-TARGET 1/],
    ['independent part longer than PART-TARGET', swap(LL, 'DURATION=1.0,URI="part302.0.mp4"', 'DURATION=1.2,URI="part302.0.mp4"'), /part DURATION 1\.2 exceeds PART-TARGET/],
    ['part below 85 % of PART-TARGET', swap(LL, 'DURATION=1.0,URI="part302.1.mp4"', 'DURATION=0.8,URI="part302.1.mp4"'), /part DURATION 0\.8 is below 85% of PART-TARGET 1/],
    ['parts do not add up to the segment', swap(LL, '#EXTINF:3.6,', '#EXTINF:3.9,'), /§3\.2.*parts add up to 3\.600 s, the segment's EXTINF is 3\.9/],
    ['first part not independent', swap(LL, 'URI="part302.0.mp4",INDEPENDENT=YES', 'URI="part302.0.mp4"'), /first part of a segment lacks INDEPENDENT=YES/],
    ['first pending part not independent', swap(LL, 'URI="part303.0.mp4",INDEPENDENT=YES', 'URI="part303.0.mp4"'), /segment in progress lacks INDEPENDENT=YES/],
    ['discontinuity after the first part', swap(LL, '#EXT-X-DISCONTINUITY\n', '').replace('#EXT-X-PART:DURATION=1.0,URI="part302.1.mp4"', '#EXT-X-DISCONTINUITY\n#EXT-X-PART:DURATION=1.0,URI="part302.1.mp4"'), /EXT-X-DISCONTINUITY after the first EXT-X-PART/],
    ['preload hint type', swap(LL, 'TYPE=PART', 'TYPE=SEGMENT'), /TYPE must be one of PART, MAP/],
    ['preload hint without URI', swap(LL, 'TYPE=PART,URI="part303.2.mp4"', 'TYPE=PART'), /EXT-X-PRELOAD-HINT lacks the required URI/],
    ['two part hints', swap(LL, '#EXT-X-RENDITION-REPORT', '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part303.3.mp4"\n#EXT-X-RENDITION-REPORT'), /more than one EXT-X-PRELOAD-HINT of TYPE PART/],
    ['hint of a listed part', swap(LL, 'URI="part303.2.mp4"', 'URI="part303.1.mp4"'), /hinted part part303\.1\.mp4 is already listed/],
    ['preload hint in an ended playlist', LL.replace('#EXT-X-PART:DURATION=1.0,URI="part303.0.mp4",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.0,URI="part303.1.mp4"\n', '') + '#EXT-X-ENDLIST\n', /EXT-X-PRELOAD-HINT in a playlist with EXT-X-ENDLIST/],
    ['rendition report with an absolute URI', swap(LL, 'URI="../1M/index.m3u8"', 'URI="https://cdn.example/1M/index.m3u8"'), /§4\.4\.5\.4.*URI MUST be relative/],
    ['rendition report without URI', swap(LL, 'REPORT:URI="../1M/index.m3u8",', 'REPORT:'), /EXT-X-RENDITION-REPORT lacks the required URI/],
    ['rendition report LAST-MSN not an integer', swap(LL, 'LAST-MSN=303', 'LAST-MSN=-1'), /LAST-MSN must be a decimal-integer/],
    ['rendition report LAST-PART without LAST-MSN', swap(LL, 'LAST-MSN=303,', ''), /LAST-PART without LAST-MSN/],
    ['EXT-X-SKIP outside a delta update', llDelta(3, 6), /EXT-X-SKIP in a playlist that does not answer an _HLS_skip request/],
    ['EXT-X-SKIP without CAN-SKIP-UNTIL', swap(llDelta(3, 6), 'CAN-SKIP-UNTIL=24.0,', ''), /EXT-X-SKIP in a playlist without CAN-SKIP-UNTIL/, { deltaRequested: true }],
    ['EXT-X-SKIP after a segment', swap(llDelta(0, 6), 'seg100.mp4\n', 'seg100.mp4\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n'), /EXT-X-SKIP after the first listed segment/, { deltaRequested: true }],
    ['EXT-X-SKIP twice', swap(llDelta(3, 6), '#EXT-X-SKIP:SKIPPED-SEGMENTS=3', '#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3'), /EXT-X-SKIP appears more than once/, { deltaRequested: true }],
    ['delta update request answered in full', llDelta(0, 10), /segment 100 lies wholly before the skip boundary/, { deltaRequested: true }],
    ['delta update skipping too much', llDelta(6, 4), /delta update lists only 16\.000 s, less than CAN-SKIP-UNTIL 24/, { deltaRequested: true }],
    ['blocking request for a later part', LL, /blocking request _HLS_msn=303&_HLS_part=2 answered with a playlist that does not hold it/, { blockingRequest: { msn: 303, part: 2 } }],
    ['blocking request for a later segment', LL, /_HLS_msn=303 answered/, { blockingRequest: { msn: 303 } }],
  ];
  for (const [what, playlist, expected, opts] of cases) {
    test(what, () => flags(checkMediaPlaylist(playlist, opts), expected, what));
  }
  test('the blocking requests the playlist does hold', () => {
    for (const r of [{ msn: 302 }, { msn: 300 }, { msn: 303, part: 1 }, { msn: 303, part: 0 }, { msn: 302, part: 3 }, { msn: 302, part: 7 }]) {
      valid(checkMediaPlaylist(LL, { blockingRequest: r }), JSON.stringify(r));
    }
    valid(checkMediaPlaylist(SIMPLE_VOD, { blockingRequest: { msn: 99 } }), 'ended playlists ignore the directives');
  });
  test('a segment listing only its newest parts (parts removed oldest first)', () => {
    const trimmed = swap(LL, '#EXT-X-PART:DURATION=1.0,URI="part302.0.mp4",INDEPENDENT=YES\n', '');
    flags(checkMediaPlaylist(trimmed), /parts add up to 2\.600 s, the segment's EXTINF is 3\.6/, 'strict by default');
    valid(checkMediaPlaylist(trimmed, { allowPartialPartLists: true }), 'allowed by option');
    flags(checkMediaPlaylist(swap(LL, '#EXTINF:3.6,', '#EXTINF:3.5,'), { allowPartialPartLists: true }), /parts add up to 3\.600 s/, 'more parts than the segment');
  });
  test('the exemptions of the 85 % rule', () => {
    // A short final part, a short independent part, a short part before a GAP part.
    valid(checkMediaPlaylist(swap(LL, 'DURATION=1.0,URI="part302.0.mp4"', 'DURATION=0.4,URI="part302.0.mp4"').replace('#EXTINF:3.6,', '#EXTINF:3.0,')), 'independent');
    const gap = swap(LL, 'DURATION=1.0,URI="part302.1.mp4"', 'DURATION=0.5,URI="part302.1.mp4"').replace('URI="part302.2.mp4"', 'URI="part302.2.mp4",GAP=YES').replace('#EXTINF:3.6,', '#EXTINF:3.1,');
    valid(checkMediaPlaylist(gap), 'before a gap');
  });
});

describe('multivariant playlist rules', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['EXTM3U not first', MULTIVARIANT.replace('#EXTM3U\n', ''), /first line must be #EXTM3U/],
    ['BANDWIDTH missing', swap(MULTIVARIANT, 'BANDWIDTH=2560000,', ''), /EXT-X-STREAM-INF lacks the required BANDWIDTH/],
    ['CODECS missing', swap(MULTIVARIANT, 'CODECS="avc1.64001f,mp4a.40.2",', ''), /EXT-X-STREAM-INF lacks the required CODECS/],
    ['CODECS entry malformed', swap(MULTIVARIANT, 'CODECS="avc1.64001f,mp4a.40.2"', 'CODECS="avc1.64001f,aac"'), /CODECS entry "aac" is not an RFC 6381 codec identifier/],
    ['no URI after STREAM-INF', swap(MULTIVARIANT, 'mid/index.m3u8\n', ''), /EXT-X-STREAM-INF is not followed by its URI line/],
    ['URI line without STREAM-INF', MULTIVARIANT + 'stray.m3u8\n', /URI line not preceded by EXT-X-STREAM-INF/],
    ['unknown AUDIO group', swap(MULTIVARIANT, 'AUDIO="aac",CLOSED-CAPTIONS=NONE', 'AUDIO="ac3",CLOSED-CAPTIONS=NONE'), /AUDIO="ac3" names no EXT-X-MEDIA group of TYPE=AUDIO/],
    ['unknown SUBTITLES group', swap(MULTIVARIANT, 'SUBTITLES="subs"', 'SUBTITLES="sub"'), /SUBTITLES="sub" names no EXT-X-MEDIA group/],
    ['RESOLUTION malformed', swap(MULTIVARIANT, 'RESOLUTION=640x360', 'RESOLUTION=640*360'), /RESOLUTION must be a decimal-resolution/],
    ['RESOLUTION zero', swap(MULTIVARIANT, 'RESOLUTION=640x360', 'RESOLUTION=0x360'), /RESOLUTION has a zero dimension/],
    ['FRAME-RATE malformed', swap(MULTIVARIANT, 'FRAME-RATE=29.970,CODECS="avc1.4d401e', 'FRAME-RATE=30/1,CODECS="avc1.4d401e'), /FRAME-RATE must be a decimal-floating-point/],
    ['FRAME-RATE not rounded', swap(MULTIVARIANT, 'FRAME-RATE=29.970,CODECS="avc1.4d401e', 'FRAME-RATE=29.97003,CODECS="avc1.4d401e'), /FRAME-RATE must be rounded to three decimal places/],
    ['segment tag in a multivariant playlist', MULTIVARIANT + '#EXTINF:4.0,\n', /media playlist tag EXTINF in a multivariant playlist/],
    ['two DEFAULT=YES in a group', swap(MULTIVARIANT, 'NAME="Deutsch",LANGUAGE="de",DEFAULT=NO', 'NAME="Deutsch",LANGUAGE="de",DEFAULT=YES'), /more than one DEFAULT=YES/],
    ['DEFAULT=YES with AUTOSELECT=NO', swap(MULTIVARIANT, 'DEFAULT=YES,AUTOSELECT=YES', 'DEFAULT=YES,AUTOSELECT=NO'), /AUTOSELECT must be YES when DEFAULT is YES/],
    ['duplicate rendition name', swap(MULTIVARIANT, 'NAME="Deutsch"', 'NAME="English"'), /two renditions named "English"/],
    ['rendition without NAME', swap(MULTIVARIANT, 'NAME="Deutsch",', ''), /EXT-X-MEDIA lacks the required NAME/],
    ['rendition TYPE unknown', swap(MULTIVARIANT, 'TYPE=SUBTITLES', 'TYPE=TEXT'), /TYPE must be one of AUDIO, VIDEO, SUBTITLES, CLOSED-CAPTIONS/],
    ['closed captions with a URI', swap(MULTIVARIANT, 'INSTREAM-ID="CC1"', 'INSTREAM-ID="CC1",URI="cc.m3u8"'), /CLOSED-CAPTIONS renditions MUST NOT have a URI/],
    ['subtitles without a URI', swap(MULTIVARIANT, ',URI="subs/en.m3u8"', ''), /URI is REQUIRED for SUBTITLES/],
    ['PROGRAM-ID in version 6', swap(MULTIVARIANT, 'BANDWIDTH=2560000,', 'BANDWIDTH=2560000,PROGRAM-ID=1,'), /PROGRAM-ID was removed in protocol version 6/],
    ['no variants', text('#EXTM3U', '#EXT-X-VERSION:3'), /no EXT-X-STREAM-INF/],
    ['attribute list syntax', swap(MULTIVARIANT, 'GROUP-ID="aac",NAME="English"', 'GROUP-ID="aac" NAME="English"'), /attribute-list syntax/],
  ];
  for (const [what, playlist, expected] of cases) test(what, () => flags(checkMultivariantPlaylist(playlist), expected, what));
});

describe('live reload rules (comparePlaylists)', () => {
  const live = (seq: number, disc: number, segs: Array<[number, boolean]>, extra: string[] = []): string => {
    const lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:2', `#EXT-X-MEDIA-SEQUENCE:${seq}`, `#EXT-X-DISCONTINUITY-SEQUENCE:${disc}`];
    for (const [msn, d] of segs) {
      if (d) lines.push('#EXT-X-DISCONTINUITY');
      lines.push('#EXTINF:2.000,', `s${msn}.ts`);
    }
    return text(...lines, ...extra);
  };
  const A = live(10, 1, [[10, false], [11, true], [12, false], [13, false]]);
  const B = live(11, 1, [[11, true], [12, false], [13, false], [14, false]]);
  const C = live(12, 2, [[12, false], [13, false], [14, false], [15, false]]);
  test('a sliding window that follows the rules', () => {
    for (const p of [A, B, C]) valid(checkMediaPlaylist(p), p);
    valid(comparePlaylists(A, B), 'A -> B');
    valid(comparePlaylists(B, C), 'B -> C');
    valid(comparePlaylists(A, C), 'A -> C');
    valid(comparePlaylists(A, A), 'A -> A');
    valid(comparePlaylists(C, live(12, 2, [[12, false], [13, false], [14, false], [15, false]], ['#EXT-X-ENDLIST'])), 'ending');
    valid(comparePlaylists(A, A, { elapsedMs: 2000 }), 'no new segment yet, within 1.5 target durations');
  });
  const cases: Array<[string, string, string, RegExp, number?]> = [
    ['media sequence decreases', B, A, /EXT-X-MEDIA-SEQUENCE went from 11 to 10 \(MUST NOT decrease\)/],
    ['discontinuity sequence decreases', C, live(12, 1, [[12, false], [13, false], [14, false], [15, false]]), /EXT-X-DISCONTINUITY-SEQUENCE went from 2 to 1/],
    ['removed discontinuity not counted', B, live(12, 1, [[12, false], [13, false], [14, false], [15, false]]), /removing 1 segment\(s\) with 1 discontinuity tag\(s\) from 1 makes 2/],
    ['a listed segment loses its discontinuity', A, live(11, 1, [[11, false], [12, false], [13, false], [14, false]]), /segment msn 11 changed: discontinuity sequence number 2 -> 1/],
    ['a segment changes URI', A, B.replace('s12.ts', 's12b.ts'), /segment msn 12 changed: URI s12\.ts -> s12b\.ts/],
    ['a segment changes duration', A, B.replace('#EXTINF:2.000,\ns13.ts', '#EXTINF:1.900,\ns13.ts'), /segment msn 13 changed: EXTINF 2 -> 1\.9/],
    ['segments vanish from the end', A, live(10, 1, [[10, false], [11, true], [12, false]]), /segments vanished from the end: msn 13 \(s13\.ts\)/],
    ['removal below three target durations', A, live(12, 2, [[12, false], [13, false]]), /leaving 4\.000 s, less than three target durations \(6 s\)/],
    ['target duration changes', A, B.replace('#EXT-X-TARGETDURATION:2', '#EXT-X-TARGETDURATION:3'), /EXT-X-TARGETDURATION changed from 2 to 3/],
    ['ENDLIST removed', A + '#EXT-X-ENDLIST\n', A, /EXT-X-ENDLIST disappeared/],
    ['segments after ENDLIST', A + '#EXT-X-ENDLIST\n', B + '#EXT-X-ENDLIST\n', /segments changed after EXT-X-ENDLIST/],
    ['no new segment for too long', A, A, /no new segment in 3600 ms \(MUST within 1\.5 x target duration = 3000 ms\)/, 3600],
  ];
  for (const [what, prev, next, expected, elapsedMs] of cases) {
    test(what, () => flags(comparePlaylists(prev, next, elapsedMs === undefined ? {} : { elapsedMs }), expected, what));
  }
  test('parts: stable per msn and index, new ones within a part target', () => {
    const next = LL.replace('#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part303.2.mp4"', '#EXT-X-PART:DURATION=1.0,URI="part303.2.mp4"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part303.3.mp4"');
    valid(comparePlaylists(LL, next, { elapsedMs: 1200 }), 'a part was added');
    flags(comparePlaylists(LL, next.replace('URI="part303.1.mp4"', 'URI="part303.1b.mp4"')), /part 303\.1 changed: part303\.1\.mp4 1 -> part303\.1b\.mp4 1/, 'part URI');
    flags(comparePlaylists(LL, next.replace('URI="part302.0.mp4",INDEPENDENT=YES', 'URI="part302.0.mp4"')), /part 302\.0 changed/, 'INDEPENDENT');
    flags(comparePlaylists(LL, LL, { elapsedMs: 1600 }), /no new part in 1600 ms/, 'part cadence');
  });
  test('delta updates are merged with the previous playlist', () => {
    const full = llDelta(0, 9);
    valid(comparePlaylists(full, llDelta(3, 6)), 'full -> delta');
    valid(comparePlaylists(llDelta(3, 6), full), 'delta -> full');
    valid(comparePlaylists(full, llDelta(3, 7)), 'full -> delta with a new segment');
    flags(comparePlaylists(full, llDelta(3, 6).replace('seg105.mp4', 'segX.mp4')), /segment msn 105 changed: URI seg105\.mp4 -> segX\.mp4/, 'changed behind a skip');
    flags(comparePlaylists(full, llDelta(3, 5)), /segments vanished from the end: msn 108/, 'delta shorter at the end');
  });
});

describe('MPD rules', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['not well-formed', MPD_DYNAMIC.replace('</Period>', ''), /XML 1\.0: not well-formed/],
    ['undefined entity', MPD_DYNAMIC.replace('value="main"', 'value="&main;"'), /unknown entity &main;/],
    ['bare ampersand', MPD_DYNAMIC.replace('value="main"', 'value="a&b"'), /not starting an entity reference/],
    ['duplicate attribute', MPD_DYNAMIC.replace('<Period id="p0"', '<Period id="p0" id="p1"'), /attribute id given twice/],
    ['wrong root namespace', MPD_DYNAMIC.replace('urn:mpeg:dash:schema:mpd:2011', 'urn:example'), /root must be MPD in namespace/],
    ['profiles missing', MPD_DYNAMIC.replace(' profiles="urn:mpeg:dash:profile:isoff-live:2011"', ''), /§5\.3\.1\.2.*@profiles is required/],
    ['profiles not URIs', MPD_DYNAMIC.replace('profiles="urn:mpeg:dash:profile:isoff-live:2011"', 'profiles="live"'), /@profiles="live" must be a comma-separated list of URIs/],
    ['type missing', MPD_DYNAMIC.replace(' type="dynamic"', ''), /@type is required/],
    ['type unknown', MPD_DYNAMIC.replace('type="dynamic"', 'type="live"'), /@type="live" must be static or dynamic/],
    ['minBufferTime missing', MPD_DYNAMIC.replace(' minBufferTime="PT2S"', ''), /@minBufferTime is required/],
    ['minBufferTime not a duration', MPD_DYNAMIC.replace('minBufferTime="PT2S"', 'minBufferTime="2s"'), /@minBufferTime="2s" is not an xs:duration/],
    ['dynamic without availabilityStartTime', MPD_DYNAMIC.replace(' availabilityStartTime="2026-01-01T00:00:00Z"', ''), /@availabilityStartTime is required in a dynamic MPD/],
    ['dynamic without publishTime', MPD_DYNAMIC.replace(' publishTime="2026-01-01T00:01:00Z"', ''), /@publishTime is required in a dynamic MPD/],
    ['dynamic without minimumUpdatePeriod', MPD_DYNAMIC.replace(' minimumUpdatePeriod="PT2S"', ''), /@minimumUpdatePeriod is required in a dynamic MPD/],
    ['date not an xs:dateTime', MPD_DYNAMIC.replace('availabilityStartTime="2026-01-01T00:00:00Z"', 'availabilityStartTime="2026-01-01 00:00:00"'), /is not an xs:dateTime/],
    ['date without a time zone', MPD_DYNAMIC.replace('availabilityStartTime="2026-01-01T00:00:00Z"', 'availabilityStartTime="2026-01-01T00:00:00"'), /has no time zone/],
    ['static with minimumUpdatePeriod', MPD_STATIC.replace("type='static'", "type='static' minimumUpdatePeriod='PT2S'"), /@minimumUpdatePeriod in a static MPD/],
    ['static without a duration', MPD_STATIC.replace(" mediaPresentationDuration='PT1M30.5S'", ''), /@mediaPresentationDuration is required/],
    ['no Period', MPD_STATIC.replace(/<Period>[\s\S]*<\/Period>/, ''), /no Period/],
    ['dynamic Period without id', MPD_DYNAMIC.replace('<Period id="p0" start="PT0S">', '<Period start="PT0S">'), /§5\.3\.2\.2.*@id is required in a dynamic MPD/],
    ['dynamic first Period without start', MPD_DYNAMIC.replace('<Period id="p0" start="PT0S">', '<Period id="p0">'), /Early Available Period/],
    ['Representation without id', MPD_DYNAMIC.replace('<Representation id="v720" ', '<Representation '), /§5\.3\.5\.2.*@id is required/],
    ['duplicate Representation id', MPD_DYNAMIC.replace('id="a128"', 'id="v720"'), /duplicate Representation@id "v720"/],
    ['bandwidth missing', MPD_DYNAMIC.replace(' bandwidth="128000"', ''), /@bandwidth is required/],
    ['bandwidth not a number', MPD_DYNAMIC.replace('bandwidth="128000"', 'bandwidth="fast"'), /@bandwidth="fast" must be an xs:unsignedInt/],
    ['codecs missing', MPD_DYNAMIC.replace(' codecs="mp4a.40.2"', ''), /@codecs is missing/],
    ['codecs malformed', MPD_DYNAMIC.replace('codecs="mp4a.40.2"', 'codecs="aac"'), /@codecs entry "aac"/],
    ['mimeType missing', MPD_DYNAMIC.replace(' mimeType="audio/mp4"', ''), /@mimeType is missing/],
    ['video without width', MPD_DYNAMIC.replace(' width="1280"', ''), /@width is missing for a video Representation/],
    ['audio without sampling rate', MPD_DYNAMIC.replace(' audioSamplingRate="48000"', ''), /@audioSamplingRate is missing/],
    ['frameRate malformed', MPD_DYNAMIC.replace('frameRate="30000/1001"', 'frameRate="29.97"'), /@frameRate="29\.97" must be N or N\/D/],
    ['descriptor without scheme', MPD_DYNAMIC.replace('<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>', '<Role value="main"/>'), /§5\.8\.2.*@schemeIdUri is required/],
    ['no segment information', MPD_STATIC.replace('<BaseURL>video.mp4</BaseURL><SegmentBase indexRange="800-1999"/>', ''), /no segment information/],
    ['timescale missing', MPD_DYNAMIC.replace('timescale="90000" ', ''), /@timescale is missing/],
    ['timescale zero', MPD_DYNAMIC.replace('timescale="90000"', 'timescale="0"'), /@timescale="0" must be a positive/],
    ['media missing', MPD_DYNAMIC.replace(' media="$RepresentationID$/$Time$.m4s"', ''), /@media is required/],
    ['unknown identifier', MPD_DYNAMIC.replace('$Time$.m4s', '$Tim$.m4s'), /§5\.3\.9\.4\.4.*unknown or unbalanced \$identifier\$/],
    ['unbalanced identifier', MPD_DYNAMIC.replace('$Time$.m4s', '$Time.m4s'), /unknown or unbalanced/],
    ['format tag on RepresentationID', MPD_DYNAMIC.replace('$RepresentationID$/$Time$.m4s', '$RepresentationID%05d$/$Time$.m4s'), /unknown or unbalanced/],
    ['Number and Time together', MPD_DYNAMIC.replace('$Time$.m4s', '$Time$-$Number$.m4s'), /uses both \$Number\$ and \$Time\$/],
    ['Time in initialization', MPD_DYNAMIC.replace('initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Time$.m4s"', 'initialization="$RepresentationID$/init-$Time$.mp4" media="$RepresentationID$/$Time$.m4s"'), /@initialization .* uses \$Time\$/],
    ['initialization missing for isoff-live', MPD_DYNAMIC.replace(' initialization="$RepresentationID$/init.mp4" media="$RepresentationID$/$Time$', ' media="$RepresentationID$/$Time$'), /@initialization is required/],
    ['timeline without Time or Number', MPD_DYNAMIC.replace('$RepresentationID$/$Time$.m4s', '$RepresentationID$/seg.m4s'), /must contain \$Time\$ or \$Number\$/],
    ['Time without timeline', MPD_DYNAMIC.replace('$Number%05d$', '$Time$'), /\$Time\$ in @media needs a SegmentTimeline/],
    ['no timeline and no duration', MPD_DYNAMIC.replace(' duration="96000"', ''), /neither SegmentTimeline nor @duration/],
    ['S without d', MPD_DYNAMIC.replace('<S d="90000"/>', '<S/>'), /§5\.3\.9\.6.*@d is required/],
    ['S overlapping', MPD_DYNAMIC.replace('<S t="5220000" d="90000"/>', '<S t="5100000" d="90000"/>'), /S starts at 5100000, before the previous one ends at 5130000 \(overlap\)/],
    ['S with r below -1', MPD_DYNAMIC.replace('r="3"', 'r="-2"'), /@r="-2" must be an integer >= -1/],
    ['r=-1 in the middle', MPD_DYNAMIC.replace('r="3"', 'r="-1"'), /@r=-1 not on the last S/],
    ['empty timeline', MPD_DYNAMIC.replace(/<S [^>]*\/>\s*/g, ''), /SegmentTimeline without an S element/],
    ['segment listed before it exists', MPD_DYNAMIC.replace('publishTime="2026-01-01T00:01:00Z"', 'publishTime="2026-01-01T00:00:57Z"'), /§5\.3\.9\.5.*listed before it exists/],
    ['segment out of the time shift buffer', MPD_DYNAMIC.replace('timeShiftBufferDepth="PT30S"', 'timeShiftBufferDepth="PT5S"'), /left the time shift buffer/],
  ];
  for (const [what, xml, expected] of cases) test(what, () => flags(checkMpd(xml), expected, what));
});

describe('MPD update rules (compareMpds)', () => {
  const later = MPD_DYNAMIC.replace('publishTime="2026-01-01T00:01:00Z"', 'publishTime="2026-01-01T00:01:01Z"').replace(
    '<S t="4320000" d="180000" r="3"/>',
    '<S t="4500000" d="180000" r="2"/>',
  ).replace('<S t="5220000" d="90000"/>', '<S t="5220000" d="90000" r="1"/>');
  test('an update that only grows at the end and trims the start', () => {
    valid(checkMpd(later), 'later MPD');
    valid(compareMpds(MPD_DYNAMIC, later), 'update');
    valid(compareMpds(MPD_DYNAMIC, MPD_DYNAMIC), 'same');
    valid(compareMpds(MPD_DYNAMIC, later.replace('type="dynamic"', 'type="static" mediaPresentationDuration="PT60S"')), 'ending');
    valid(compareMpds(MPD_DYNAMIC, 'not xml'), 'unreadable documents are checkMpd\'s business');
  });
  const cases: Array<[string, string, string, RegExp]> = [
    ['availabilityStartTime changes', MPD_DYNAMIC, later.replace('availabilityStartTime="2026-01-01T00:00:00Z"', 'availabilityStartTime="2026-01-01T00:00:01Z"'), /availabilityStartTime changed from 2026-01-01T00:00:00Z to 2026-01-01T00:00:01Z/],
    ['publishTime goes back', later, MPD_DYNAMIC, /publishTime went back/],
    ['static becomes dynamic', MPD_DYNAMIC.replace('type="dynamic"', 'type="static"'), later, /a static MPD became dynamic/],
    ['Period start changes', MPD_DYNAMIC, later.replace('start="PT0S"', 'start="PT1S"'), /Period p0 start changed from PT0S to PT1S/],
    ['segment duration changes', MPD_DYNAMIC, later.replace('<S d="90000"/>', '<S d="80000"/>'), /segment at t=5040000 changed duration 90000 -> 80000/],
    ['segment vanishes from the end', MPD_DYNAMIC, later.replace('<S t="5220000" d="90000" r="1"/>', ''), /segment at t=5220000 vanished from the end/],
    ['segment appears in the middle', MPD_DYNAMIC, later.replace('<S t="5220000" d="90000" r="1"/>', '<S d="90000" r="2"/>'), /segment at t=5130000 appeared inside the earlier timeline/],
    ['timescale changes', MPD_DYNAMIC, later.replace('timescale="90000"', 'timescale="1000"'), /changed timescale 90000 -> 1000/],
  ];
  for (const [what, prev, next, expected] of cases) test(what, () => flags(compareMpds(prev, next), expected, what));
});

// ---- Haze's own writers ----------------------------------------------------------------------------

const video: VideoTrack = { id: 1, type: 'video', codec: 'H264', init: Buffer.from('0164001fffe1', 'hex'), bps: 100_000, lang: 'und', width: 320, height: 180, fpks: 25_000 };
const audio: AudioTrack = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.from('1190', 'hex'), bps: 16_000, lang: 'eng', rate: 48_000, channels: 2, size: 16 };
const T0 = Date.UTC(2026, 0, 1);

describe("Haze's playlist and MPD writers pass", () => {
  test('the hls-playlist test fixtures', () => {
    valid(checkMultivariantPlaylist(multivariantPlaylist([{ uri: '1_2/index.m3u8', tracks: [video, audio], averageBandwidthBps: 800_000 }], [], { query: 'tkn=abc' })), 'muxed');
    valid(
      checkMultivariantPlaylist(
        multivariantPlaylist(
          [
            { uri: '1/index.m3u8', tracks: [video], audioGroup: 'aud' },
            { uri: '3/index.m3u8', tracks: [{ ...video, id: 3, width: 640, height: 360, fpks: 29_970, bps: 200_000 }], audioGroup: 'aud', bandwidthBps: 2_000_000 },
          ],
          [{ groupId: 'aud', renditions: [{ name: 'English', track: audio, uri: '2/index.m3u8', default: true }, { name: 'Other', track: { ...audio, id: 4, lang: 'und', channels: 6, codec: 'AC3', init: Buffer.alloc(0) }, uri: '4/index.m3u8' }] }],
          { version: 7 },
        ),
      ),
      'audio group',
    );
    const tsIndex = (ended: boolean): SegmentIndex => ({
      segments: [
        { sequence: 0, startMs: 0, durationMs: 1000, uri: '0_1000.ts', programDateTimeMs: T0 },
        { sequence: 1, startMs: 1000, durationMs: 1000, uri: '1000_2000.ts', programDateTimeMs: T0 + 1000 },
        { sequence: 2, startMs: 2000, durationMs: 1500.4, uri: '2000_3500.ts', discontinuity: true, programDateTimeMs: T0 + 5000.25 },
        { sequence: 3, startMs: 3500, durationMs: 999, uri: '3500_4499.ts?x=1' },
      ],
      ended,
    });
    valid(checkMediaPlaylist(mediaPlaylist(tsIndex(true), { query: 'tkn=abc', playlistType: 'VOD' })), 'TS VOD');
    const live = { ...tsIndex(false), discontinuitySequence: 5 };
    valid(checkMediaPlaylist(mediaPlaylist(live, { windowSegments: 1 })), 'window 1');
    valid(checkMediaPlaylist(mediaPlaylist(live, { windowSegments: 2 })), 'window 2');
    valid(checkMediaPlaylist(mediaPlaylist({ segments: [{ sequence: 7, startMs: 14000, durationMs: 2000, uri: 'chunk_14000.m4s' }], ended: true }, { initUri: 'init.m4s', query: '?tkn=1' })), 'fMP4');
    valid(checkMediaPlaylist(mediaPlaylist({ segments: [], nextSequence: 4, ended: false })), 'empty live');

    const ll = bigLlIndex();
    const opts = { initUri: 'init.m4s', lowLatency: { partTargetMs: 500, canSkipUntilMs: 12000, renditionReports: [{ uri: 'a.m3u8', lastMsn: 108 }] } };
    const full = mediaPlaylist(ll, opts);
    const delta = mediaPlaylist(ll, { ...opts, skip: true });
    valid(checkMediaPlaylist(full), 'LL full');
    valid(checkMediaPlaylist(delta, { deltaRequested: true }), 'LL delta');
    valid(checkMediaPlaylist(mediaPlaylist({ ...ll, ended: true }, { ...opts, skip: true })), 'LL ended');
    valid(comparePlaylists(full, delta), 'LL full -> delta');
    valid(checkMediaPlaylist(full, { blockingRequest: { msn: 108, part: 1 } }), 'holds msn 108 part 1');
    flags(checkMediaPlaylist(full, { blockingRequest: { msn: 108, part: 2 } }), /does not hold it/, 'not yet part 2');
  });

  test('the dash-mpd test fixtures (with publish times after their last segment)', () => {
    const segs = (starts: number[], durationMs: number): Array<{ startMs: number; durationMs: number }> => starts.map((startMs) => ({ startMs, durationMs }));
    const reps: DashRepresentation[] = [
      { id: '1', track: video, segments: [...segs([10000, 12000, 14000], 2000), { startMs: 16000, durationMs: 1500 }] },
      { id: '2', track: audio, segments: segs([10000, 12000, 14000, 16000], 2000) },
    ];
    valid(checkMpd(mpd(reps, { ended: false, availabilityStartTimeMs: T0, publishTimeMs: T0 + 18_000, cmaf: true, query: 'tkn=a&b' })), 'dynamic');
    valid(checkMpd(mpd(reps, { ended: false, availabilityStartTimeMs: T0, publishTimeMs: T0 + 18_000, query: 'tkn=a&b', minimumUpdatePeriodMs: 500, timeShiftBufferDepthMs: 30_000, suggestedPresentationDelayMs: 1250, minBufferTimeMs: 4000 })), 'options');
    valid(checkMpd(mpd(reps, { ended: true, availabilityStartTimeMs: T0, publishTimeMs: T0 })), 'static');
    valid(checkMpd(mpd([{ ...reps[1]!, track: { ...audio, lang: 'a"<&' } }], { ended: true, availabilityStartTimeMs: T0, publishTimeMs: T0 })), 'escaped lang');
    // The fixture's publishTime of T0 announces segments 18 s before they can exist.
    flags(checkMpd(mpd(reps, { ended: false, availabilityStartTimeMs: T0, publishTimeMs: T0 })), /listed before it exists/, 'publishTime at T0');
  });

  test('property: random LL / TS indices give conforming playlists (full, delta, ended)', () => {
    fc.assert(
      fc.property(
        fc.record({
          partTargetMs: fc.constantFrom(200, 333, 500, 1000),
          tdS: fc.integer({ min: 1, max: 4 }),
          segs: fc.array(fc.record({ cutMs: fc.integer({ min: 0, max: 900 }), disc: fc.boolean() }), { maxLength: 20 }),
          pending: fc.integer({ min: 0, max: 3 }),
          firstSeq: fc.nat(1_000_000),
          discSeq: fc.nat(100),
          ended: fc.boolean(),
          ll: fc.boolean(),
          skip: fc.boolean(),
          skipFactor: fc.constantFrom(0, 6, 9),
          window: fc.option(fc.integer({ min: 1, max: 25 }), { nil: undefined }),
          fmp4: fc.boolean(),
          query: fc.constantFrom(undefined, 'tkn=x'),
        }),
        (c) => {
          const index = randomIndex(c);
          const opts = {
            ...(c.fmp4 ? { initUri: 'init.m4s' } : {}),
            ...(c.query ? { query: c.query } : {}),
            ...(c.window !== undefined ? { windowSegments: c.window } : {}),
            ...(c.ll ? { lowLatency: { partTargetMs: c.partTargetMs, ...(c.skipFactor > 0 ? { canSkipUntilMs: c.skipFactor * c.tdS * 1000 } : {}), renditionReports: [{ uri: '../1_/index.m3u8', lastMsn: c.firstSeq }] }, skip: c.skip } : {}),
          };
          const out = mediaPlaylist(index, opts);
          valid(checkMediaPlaylist(out, { deltaRequested: c.ll && c.skip }), out);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('property: a simulated live lifecycle passes every reload check', () => {
    fc.assert(
      fc.property(
        fc.record({
          partTargetMs: fc.constantFrom(250, 500, 1000),
          tdS: fc.integer({ min: 1, max: 3 }),
          ll: fc.boolean(),
          steps: fc.array(fc.oneof(fc.constant('part' as const), fc.constant('drop' as const), fc.record({ cutMs: fc.integer({ min: 0, max: 900 }), disc: fc.boolean() })), { minLength: 1, maxLength: 30 }),
          end: fc.boolean(),
        }),
        (c) => {
          const sim = new LiveSim(c.tdS, c.partTargetMs);
          const render = (skip: boolean): string =>
            mediaPlaylist(sim.index(), { initUri: 'init.m4s', ...(c.ll ? { lowLatency: { partTargetMs: c.partTargetMs, canSkipUntilMs: 6 * c.tdS * 1000 }, skip } : {}) });
          let prev = render(false);
          valid(checkMediaPlaylist(prev), prev);
          const steps = c.end ? [...c.steps, 'end' as const] : c.steps;
          for (const step of steps) {
            if (step === 'part') sim.revealPart();
            else if (step === 'drop') sim.dropHead();
            else if (step === 'end') sim.end();
            else sim.completeSegment(step.cutMs, step.disc);
            const next = render(false);
            valid(checkMediaPlaylist(next), next);
            valid(comparePlaylists(prev, next), `${prev}\n->\n${next}`);
            if (c.ll) {
              const delta = render(true);
              valid(checkMediaPlaylist(delta, { deltaRequested: true }), delta);
              valid(comparePlaylists(prev, delta), `${prev}\n-> delta\n${delta}`);
            }
            prev = next;
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  test("mediaPlaylist's target duration follows the window: comparePlaylists sees it change", () => {
    // Known Haze behaviour (reported, not fixed here): targetDurationS() is taken over the listed
    // segments, so a long segment leaving a sliding window lowers EXT-X-TARGETDURATION, which
    // RFC 8216 §6.2.1 does not allow between reloads.
    const segments: HlsSegment[] = [3000, 2000, 2000, 2000, 2000].map((d, i) => ({ sequence: i, startMs: i * 3000, durationMs: d, uri: `s${i}.ts` }));
    const before = mediaPlaylist({ segments: segments.slice(0, 4), ended: false });
    const after = mediaPlaylist({ segments: segments.slice(1), ended: false });
    flags(comparePlaylists(before, after), /EXT-X-TARGETDURATION changed from 3 to 2/, 'window slide');
  });

  test('property: random timelines give conforming MPDs', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ gapMs: fc.constantFrom(0, 0, 0, 500, 4000), durationMs: fc.integer({ min: 1, max: 6000 }) }), { minLength: 1, maxLength: 30 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 900 }),
        fc.constantFrom(undefined, 'tkn=a&b'),
        (list, ended, lateMs, query) => {
          let t = 20_000;
          const segments = list.map(({ gapMs, durationMs }) => {
            t += gapMs;
            const s = { startMs: t, durationMs };
            t += durationMs;
            return s;
          });
          const reps: DashRepresentation[] = [
            { id: '1', track: video, segments },
            { id: '2', track: audio, segments },
          ];
          const xml = mpd(reps, { ended, availabilityStartTimeMs: T0, publishTimeMs: T0 + t + lateMs, cmaf: true, ...(query ? { query } : {}) });
          valid(checkMpd(xml), xml);
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ---- the checkers themselves: any input gives a list, never an exception ----------------------------

describe('checker robustness', () => {
  const VOCAB = ['#EXTM3U', '#EXT-X-VERSION:', '#EXTINF:', '#EXT-X-PART:', '#EXT-X-SKIP:SKIPPED-SEGMENTS=', '#EXT-X-MAP:URI=', '#EXT-X-STREAM-INF:', '#EXT-X-TARGETDURATION:', '#EXT-X-ENDLIST', '#EXT-X-PART-INF:PART-TARGET=', 'a.ts', '"', ',', '=', '\n', '1', '0.5', 'YES', '#'];
  test('random playlists: checkMediaPlaylist, checkMultivariantPlaylist, comparePlaylists return lists', () => {
    const playlist = fc.oneof(fc.string({ maxLength: 300 }), fc.array(fc.constantFrom(...VOCAB), { maxLength: 60 }).map((a) => a.join('')));
    fc.assert(
      fc.property(playlist, playlist, fc.boolean(), (a, b, delta) => {
        for (const r of [checkMediaPlaylist(a, { deltaRequested: delta, blockingRequest: { msn: 1, part: 0 } }), checkMultivariantPlaylist(a), comparePlaylists(a, b, { elapsedMs: 5000 })]) {
          assert.ok(Array.isArray(r) && r.every((x) => typeof x === 'string'));
        }
      }),
      { numRuns: 400 },
    );
  });
  test('random and damaged MPDs: checkMpd returns a list; parseXml throws only XmlSyntaxError', () => {
    const damaged = fc.tuple(fc.nat(MPD_DYNAMIC.length), fc.integer({ min: 0, max: 20 }), fc.string({ maxLength: 4 })).map(([at, cut, ins]) => MPD_DYNAMIC.slice(0, at) + ins + MPD_DYNAMIC.slice(at + cut));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), damaged), (xml) => {
        const r = checkMpd(xml);
        assert.ok(Array.isArray(r) && r.every((x) => typeof x === 'string'));
        try {
          parseXml(xml);
        } catch (e) {
          if (!(e instanceof XmlSyntaxError)) throw e;
        }
      }),
      { numRuns: 400 },
    );
    assert.throws(() => parseXml('<a>'.repeat(100) + '</a>'.repeat(100)), XmlSyntaxError);
  });
});

// ---- index builders ------------------------------------------------------------------------------

function bigLlIndex(): SegmentIndex {
  const segments: HlsSegment[] = [];
  for (let i = 0; i < 8; i++) {
    const start = i * 2000;
    const parts: HlsPart[] = [0, 1, 2, 3].map((k) => ({ durationMs: 500, uri: `chunk_${start}.${k}.m4s`, independent: k === 0 }));
    segments.push({ sequence: 100 + i, startMs: start, durationMs: 2000, uri: `chunk_${start}.m4s`, programDateTimeMs: T0 + start, parts });
  }
  return { segments, pendingParts: [{ durationMs: 500, uri: 'chunk_16000.0.m4s', independent: true }, { durationMs: 500, uri: 'chunk_16000.1.m4s', independent: false }], preloadHint: { uri: 'chunk_16000.2.m4s' }, ended: false };
}

/** Parts of `durationMs`: whole part targets, then the remainder; the first is independent. */
function partsOf(startMs: number, durationMs: number, partTargetMs: number, ext: string): HlsPart[] {
  const parts: HlsPart[] = [];
  for (let k = 0, at = 0; at < durationMs; k++, at += partTargetMs) {
    parts.push({ durationMs: Math.min(partTargetMs, durationMs - at), uri: `chunk_${startMs}.${k}.${ext}`, independent: k === 0 });
  }
  return parts;
}

interface IndexSpec {
  partTargetMs: number;
  tdS: number;
  segs: Array<{ cutMs: number; disc: boolean }>;
  pending: number;
  firstSeq: number;
  discSeq: number;
  ended: boolean;
  fmp4: boolean;
}

/** Segments of ((tdS - 1) s, tdS s] each, so EXT-X-TARGETDURATION is tdS whatever the window. */
function randomIndex(c: IndexSpec): SegmentIndex {
  const ext = c.fmp4 ? 'm4s' : 'ts';
  let t = 5000;
  const segments: HlsSegment[] = c.segs.map((s, i) => {
    const durationMs = c.tdS * 1000 - Math.min(s.cutMs, 1000 * c.tdS - 1);
    const seg: HlsSegment = { sequence: c.firstSeq + i, startMs: t, durationMs, uri: `chunk_${t}.${ext}`, programDateTimeMs: T0 + t, parts: partsOf(t, durationMs, Math.min(c.partTargetMs, c.tdS * 1000), ext) };
    if (s.disc) seg.discontinuity = true;
    t += durationMs;
    return seg;
  });
  const pt = Math.min(c.partTargetMs, c.tdS * 1000);
  const pendingParts = Array.from({ length: c.pending }, (_, k) => ({ durationMs: pt, uri: `chunk_${t}.${k}.${ext}`, independent: k === 0 }));
  return { segments, pendingParts, nextSequence: c.firstSeq, discontinuitySequence: c.discSeq, preloadHint: { uri: `chunk_${t}.${c.pending}.${ext}` }, ended: c.ended };
}

/** A live segmenter in miniature: segments complete part by part, the head is dropped as Haze does. */
class LiveSim {
  private readonly segments: HlsSegment[] = [];
  private nextSeq = 40;
  private discSeq = 0;
  private startMs = 0;
  /** The segment being cut: its planned parts and how many are published. */
  private current: { durationMs: number; parts: HlsPart[]; shown: number; disc: boolean };
  private ended = false;

  constructor(
    private readonly tdS: number,
    private readonly partTargetMs: number,
  ) {
    this.current = this.plan(0, false);
    // A live playlist is first served with one segment (an empty one would say target 1 s).
    this.completeSegment(0, false);
  }

  private plan(cutMs: number, disc: boolean): { durationMs: number; parts: HlsPart[]; shown: number; disc: boolean } {
    const durationMs = this.tdS * 1000 - Math.min(cutMs, this.tdS * 1000 - 1);
    return { durationMs, parts: partsOf(this.startMs, durationMs, Math.min(this.partTargetMs, this.tdS * 1000), 'm4s'), shown: 0, disc };
  }

  revealPart(): void {
    if (this.ended) return;
    if (this.current.shown < this.current.parts.length - 1) this.current.shown++;
  }

  completeSegment(cutMs: number, disc: boolean): void {
    if (this.ended) return;
    const c = this.current;
    this.segments.push({ sequence: this.nextSeq++, startMs: this.startMs, durationMs: c.durationMs, uri: `chunk_${this.startMs}.m4s`, programDateTimeMs: T0 + this.startMs, parts: c.parts, ...(c.disc ? { discontinuity: true } : {}) });
    this.startMs += c.durationMs;
    this.current = this.plan(cutMs, disc);
  }

  /** Drops the oldest segment when at least three target durations stay (RFC 8216 §6.2.2). */
  dropHead(): void {
    if (this.ended || this.segments.length < 2) return;
    const rest = this.segments.slice(1).reduce((t, s) => t + s.durationMs, 0);
    if (rest < 3 * this.tdS * 1000) return;
    if (this.segments.shift()!.discontinuity) this.discSeq++;
  }

  end(): void {
    this.completeSegment(0, false);
    this.ended = true;
  }

  index(): SegmentIndex {
    const pending = this.ended ? [] : this.current.parts.slice(0, this.current.shown);
    const hint = this.current.parts[this.current.shown];
    return {
      segments: this.segments,
      pendingParts: pending,
      nextSequence: this.nextSeq,
      discontinuitySequence: this.discSeq,
      ...(hint && !this.ended ? { preloadHint: { uri: hint.uri } } : {}),
      // as Haze's segmenters: the target duration is announced once and never shrinks
      targetDurationS: this.tdS,
      ended: this.ended,
    };
  }
}
