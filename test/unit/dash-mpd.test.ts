// DASH MPD writer: exact text of a small dynamic MPD, the static form for an ended stream,
// SegmentTimeline run-length coding, XML escaping, and a parse back through a tiny XML reader
// that checks well-formedness (balanced elements, quoted attributes, only the five entities).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isHaze } from '../helpers.js';
import { isoDuration, mpd, segmentTimeline, xmlEscape, type DashRepresentation, type DashSegment } from '../../src/containers/dash/mpd.js';
import type { AudioTrack, VideoTrack } from '../../src/media/types.js';

const video: VideoTrack = { id: 1, type: 'video', codec: 'H264', init: Buffer.from('0164001fffe1', 'hex'), bps: 100_000, lang: 'und', width: 320, height: 180, fpks: 25_000 };
const audio: AudioTrack = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.from('1190', 'hex'), bps: 16_000, lang: 'eng', rate: 48_000, channels: 2, size: 16 };
const T0 = Date.UTC(2026, 0, 1);

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
}

/** Just enough XML to read our own MPDs back: throws on anything not well-formed. */
function parseXml(src: string): XmlElement {
  let i = 0;
  const decode = (s: string): string => {
    assert.doesNotMatch(s.replace(/&(amp|lt|gt|quot|apos);/g, ''), /[&<]/, `bad entity or markup in ${s}`);
    return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  };
  const skipWs = (): void => {
    while (i < src.length && /\s/.test(src[i]!)) i++;
  };
  if (src.startsWith('<?xml')) i = src.indexOf('?>') + 2;
  const element = (): XmlElement => {
    skipWs();
    assert.equal(src[i], '<', `element expected at ${i}`);
    i++;
    const name = /^[A-Za-z_][\w.-]*/.exec(src.slice(i))![0];
    i += name.length;
    const el: XmlElement = { name, attrs: {}, children: [] };
    for (;;) {
      skipWs();
      if (src.startsWith('/>', i)) {
        i += 2;
        return el;
      }
      if (src[i] === '>') {
        i++;
        break;
      }
      const m = /^([A-Za-z_:][\w.:-]*)="([^"<]*)"/.exec(src.slice(i));
      assert.ok(m, `attribute expected at ${src.slice(i, i + 30)}`);
      assert.ok(!(m[1]! in el.attrs), `duplicate attribute ${m[1]}`);
      el.attrs[m[1]!] = decode(m[2]!);
      i += m[0].length;
    }
    for (;;) {
      skipWs();
      if (src.startsWith('</', i)) {
        const close = `</${name}>`;
        assert.ok(src.startsWith(close, i), `expected ${close} at ${src.slice(i, i + 30)}`);
        i += close.length;
        return el;
      }
      el.children.push(element());
    }
  };
  const root = element();
  skipWs();
  assert.equal(i, src.length, 'nothing after the root element');
  return root;
}

const find = (el: XmlElement, name: string): XmlElement[] => el.children.filter((c) => c.name === name);

function segs(starts: number[], durationMs: number): DashSegment[] {
  return starts.map((startMs) => ({ startMs, durationMs }));
}

const reps: DashRepresentation[] = [
  { id: '1', track: video, segments: [...segs([10000, 12000, 14000], 2000), { startMs: 16000, durationMs: 1500 }] },
  { id: '2', track: audio, segments: segs([10000, 12000, 14000, 16000], 2000) },
];

test('dynamic MPD: exact text', () => {
  const got = mpd(reps, { ended: false, availabilityStartTimeMs: T0, publishTimeMs: T0 + 17_500, cmaf: true, query: 'tkn=a&b' });
  assert.equal(
    got,
    [
      '<?xml version="1.0" encoding="UTF-8"?>',
      '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019" type="dynamic" availabilityStartTime="2026-01-01T00:00:00.000Z" publishTime="2026-01-01T00:00:17.500Z" minimumUpdatePeriod="PT2S" timeShiftBufferDepth="PT8S" suggestedPresentationDelay="PT6S" minBufferTime="PT2S">',
      '  <Period id="0" start="PT0S">',
      '    <AdaptationSet id="0" contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">',
      '      <Representation id="1" codecs="avc1.64001f" bandwidth="800000" width="320" height="180" frameRate="25">',
      '        <SegmentTemplate timescale="1000" initialization="$RepresentationID$/init.m4s?tkn=a&amp;b" media="$RepresentationID$/chunk_$Time$.m4s?tkn=a&amp;b">',
      '          <SegmentTimeline>',
      '            <S t="10000" d="2000" r="2"/>',
      '            <S d="1500"/>',
      '          </SegmentTimeline>',
      '        </SegmentTemplate>',
      '      </Representation>',
      '    </AdaptationSet>',
      '    <AdaptationSet id="1" contentType="audio" mimeType="audio/mp4" lang="eng" segmentAlignment="true" startWithSAP="1">',
      '      <Representation id="2" codecs="mp4a.40.2" bandwidth="128000" audioSamplingRate="48000">',
      '        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="2"/>',
      '        <SegmentTemplate timescale="1000" initialization="$RepresentationID$/init.m4s?tkn=a&amp;b" media="$RepresentationID$/chunk_$Time$.m4s?tkn=a&amp;b">',
      '          <SegmentTimeline>',
      '            <S t="10000" d="2000" r="3"/>',
      '          </SegmentTimeline>',
      '        </SegmentTemplate>',
      '      </Representation>',
      '    </AdaptationSet>',
      '  </Period>',
      '  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:direct:2014" value="2026-01-01T00:00:17.500Z"/>',
      '</MPD>',
      '',
    ].join('\n'),
  );
});

test('MPD parses back: attributes, templates and timelines as written', () => {
  const root = parseXml(mpd(reps, { ended: false, availabilityStartTimeMs: T0, publishTimeMs: T0, query: 'tkn=a&b', minimumUpdatePeriodMs: 500, timeShiftBufferDepthMs: 30_000, suggestedPresentationDelayMs: 1250, minBufferTimeMs: 4000 }));
  assert.equal(root.name, 'MPD');
  assert.equal(root.attrs.profiles, 'urn:mpeg:dash:profile:isoff-live:2011');
  assert.equal(root.attrs.minimumUpdatePeriod, 'PT0.5S');
  assert.equal(root.attrs.timeShiftBufferDepth, 'PT30S');
  assert.equal(root.attrs.suggestedPresentationDelay, 'PT1.25S');
  assert.equal(root.attrs.minBufferTime, 'PT4S');
  const periods = find(root, 'Period');
  assert.equal(periods.length, 1);
  const sets = find(periods[0]!, 'AdaptationSet');
  assert.deepEqual(sets.map((s) => s.attrs.contentType), ['video', 'audio']);
  const vRep = find(sets[0]!, 'Representation')[0]!;
  const tmpl = find(vRep, 'SegmentTemplate')[0]!;
  assert.equal(tmpl.attrs.media, '$RepresentationID$/chunk_$Time$.m4s?tkn=a&b');
  // Expand the timeline back into segment start times.
  const starts: number[] = [];
  let t = 0;
  for (const s of find(find(tmpl, 'SegmentTimeline')[0]!, 'S')) {
    if (s.attrs.t !== undefined) t = Number(s.attrs.t);
    for (let k = 0; k <= Number(s.attrs.r ?? 0); k++) {
      starts.push(t);
      t += Number(s.attrs.d);
    }
  }
  assert.deepEqual(starts, [10000, 12000, 14000, 16000]);
});

test('static MPD for an ended stream', () => {
  const root = parseXml(mpd(reps, { ended: true, availabilityStartTimeMs: T0, publishTimeMs: T0 }));
  assert.equal(root.attrs.type, 'static');
  assert.equal(root.attrs.mediaPresentationDuration, 'PT18S');
  for (const a of ['minimumUpdatePeriod', 'timeShiftBufferDepth', 'suggestedPresentationDelay']) assert.equal(root.attrs[a], undefined, a);
});

test('SegmentTimeline run-length: t only after gaps, r for repeats', () => {
  assert.deepEqual(segmentTimeline([]), []);
  assert.deepEqual(segmentTimeline(segs([0], 1000)), ['<S t="0" d="1000"/>']);
  assert.deepEqual(segmentTimeline([...segs([0, 1000, 2000], 1000), ...segs([5000, 6000], 1000), { startMs: 7000, durationMs: 500 }]), ['<S t="0" d="1000" r="2"/>', '<S t="5000" d="1000" r="1"/>', '<S d="500"/>']);
  assert.throws(() => segmentTimeline([{ startMs: 0, durationMs: 0 }]), isHaze);
  fc.assert(
    fc.property(fc.array(fc.record({ gap: fc.nat(3000), d: fc.integer({ min: 1, max: 4 }) }), { maxLength: 40 }), (list) => {
      let t = 0;
      const input = list.map(({ gap, d }) => {
        t += gap < 2000 ? 0 : gap;
        const s = { startMs: t, durationMs: d * 500 };
        t += d * 500;
        return s;
      });
      const back: DashSegment[] = [];
      let at = 0;
      for (const line of segmentTimeline(input)) {
        const el = parseXml(line);
        if (el.attrs.t !== undefined) at = Number(el.attrs.t);
        for (let k = 0; k <= Number(el.attrs.r ?? 0); k++) {
          back.push({ startMs: at, durationMs: Number(el.attrs.d) });
          at += Number(el.attrs.d);
        }
      }
      assert.deepEqual(back, input);
    }),
    { numRuns: 200 },
  );
});

test('escaping, durations and refused ids', () => {
  assert.equal(xmlEscape(`a&b<c>"d'`), 'a&amp;b&lt;c&gt;&quot;d&apos;');
  assert.throws(() => xmlEscape('a\u0001'), isHaze);
  assert.equal(isoDuration(0), 'PT0S');
  assert.equal(isoDuration(1500), 'PT1.5S');
  assert.equal(isoDuration(61_001), 'PT61.001S');
  const r = parseXml(mpd([{ ...reps[1]!, track: { ...audio, lang: 'a"<&' } }], { ended: true, availabilityStartTimeMs: T0, publishTimeMs: T0 }));
  assert.equal(find(find(r, 'Period')[0]!, 'AdaptationSet')[0]!.attrs.lang, 'a"<&');
  assert.throws(() => mpd([{ ...reps[0]!, id: 'a/b' }], { ended: true, availabilityStartTimeMs: T0, publishTimeMs: T0 }), isHaze);
  assert.throws(() => mpd([reps[0]!, reps[0]!], { ended: true, availabilityStartTimeMs: T0, publishTimeMs: T0 }), isHaze);
});
