// Stream process configuration (processes/process-config.ts, ffmpeg-command.ts, shell-split.ts,
// line-splitter.ts): MistServer's `processes[]` entries become commands, track selectors,
// inhibitors and restart policies; bad entries are named; the small parsers are fuzzed.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Track } from '../../src/media/types.js';
import { ffmpegArgs } from '../../src/processes/ffmpeg-command.js';
import { LineSplitter } from '../../src/processes/line-splitter.js';
import {
  BACKOFF_FIRST_MS,
  BACKOFF_MAX_MS,
  canonicalJson,
  h264RenditionPreset,
  isInhibited,
  MIN_RESTART_MS,
  OPUS_PRESET,
  parseProcess,
  parseProcesses,
  parseSelectorQuery,
  processInputTracks,
  restartDelayMs,
} from '../../src/processes/process-config.js';
import { MAX_ARGUMENTS, shellSplit } from '../../src/processes/shell-split.js';
import { HazeError } from '../../src/util/errors.js';

const h264: Track = { id: 1, type: 'video', codec: 'H264', init: Buffer.alloc(0), bps: 0, lang: 'und', width: 320, height: 180, fpks: 30000 };
const aac: Track = { id: 2, type: 'audio', codec: 'AAC', init: Buffer.from([0x11, 0x90]), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };
const opus: Track = { id: 3, type: 'audio', codec: 'opus', init: Buffer.alloc(19), bps: 0, lang: 'eng', rate: 48000, channels: 2, size: 16 };
const aac2: Track = { ...aac, id: 4, lang: 'nld' };

/** The value after `flag` in an argv. */
function after(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i < 0 ? undefined : argv[i + 1];
}

describe('processes[] entries', () => {
  it('an FFMPEG audio entry becomes a libopus command fed the first audio track', () => {
    const spec = parseProcess({ process: 'FFMPEG', 'x-LSP-kind': 'audio', codec: 'opus', rate: 64000 });
    assert.equal(spec.process, 'FFMPEG');
    assert.deepEqual(spec.output, { type: 'audio', codec: 'opus' });
    assert.equal(after(spec.argv, '-c:a'), 'libopus');
    assert.equal(after(spec.argv, '-b:a'), '64000');
    assert.equal(after(spec.argv, '-map'), '0:a:0');
    // stdin in, stdout out, timestamps kept (time-map.ts relies on it)
    assert.equal(after(spec.argv, '-i'), '-');
    assert.equal(spec.argv[spec.argv.length - 1], '-');
    assert.ok(spec.argv.includes('-copyts'));
    assert.ok(!spec.argv.includes('nobuffer'), 'nobuffer throws away the probed packets (the first GOP)');
    assert.deepEqual(processInputTracks(spec, [h264, aac, aac2]).map((t) => t.id), [2]);
    assert.equal(spec.restart.type, 'backoff');
  });

  it('the Opus preset defaults to 96 kbit/s and is inhibited by an Opus track', () => {
    const spec = parseProcess(OPUS_PRESET);
    assert.equal(after(spec.argv, '-b:a'), '96000');
    assert.equal(after(spec.argv, '-ac'), '2');
    assert.equal(isInhibited(spec, [h264, aac]), false);
    assert.equal(isInhibited(spec, [h264, aac, opus]), true);
    // without a rate, Opus still gets 96k
    assert.equal(after(parseProcess({ process: 'FFMPEG', codec: 'opus' }).argv, '-b:a'), '96k');
  });

  it('source_track picks the track by MistServer selector (codec, language, index, iN)', () => {
    const pick = (source_track: string): number[] => processInputTracks(parseProcess({ process: 'FFMPEG', codec: 'opus', source_track }), [h264, aac, aac2]).map((t) => t.id);
    assert.deepEqual(pick('nld'), [4]);
    assert.deepEqual(pick('i4'), [4]);
    assert.deepEqual(pick('2'), [4]); // idx 2 of the stream's tracks
    assert.deepEqual(pick('automatic'), [2]);
    assert.deepEqual(pick('opus'), []);
  });

  it('an H.264 rendition scales, keeps the source keyframes and sets its bitrate', () => {
    const spec = parseProcess(h264RenditionPreset(160, 90, 200_000));
    assert.deepEqual(spec.output, { type: 'video', codec: 'H264' });
    assert.equal(after(spec.argv, '-vf'), 'scale=160:90,setsar=1');
    assert.equal(after(spec.argv, '-c:v'), 'libx264');
    assert.equal(after(spec.argv, '-b:v'), '200000');
    assert.equal(after(spec.argv, '-force_key_frames'), 'source');
    assert.equal(after(spec.argv, '-tune'), 'zerolatency');
    assert.deepEqual(processInputTracks(spec, [aac, h264]).map((t) => t.id), [1]);
    // one side of the resolution keeps the aspect ratio (even, for H.264)
    assert.equal(after(parseProcess({ process: 'AV', codec: 'H264', resolution: 'x360' }).argv, '-vf'), 'scale=-2:360,setsar=1');
    const crf = parseProcess({ process: 'FFMPEG', codec: 'h264', crf: 23, preset: 'ultrafast', profile: 'baseline', keys: 'frames', keyfrms: 60, max_rate: '1M' });
    assert.equal(after(crf.argv, '-crf'), '23');
    assert.equal(after(crf.argv, '-b:v'), undefined, 'crf replaces the bitrate');
    assert.equal(after(crf.argv, '-preset'), 'ultrafast');
    assert.equal(after(crf.argv, '-profile:v'), 'baseline');
    assert.equal(after(crf.argv, '-g'), '60');
    const secs = parseProcess({ process: 'FFMPEG', codec: 'VP9', keys: 'secs', keysecs: 2, max_rate: 500000 });
    assert.equal(after(secs.argv, '-c:v'), 'libvpx-vp9');
    assert.equal(after(secs.argv, '-force_key_frames'), 'expr:gte(t,n_forced*2)');
    assert.equal(after(secs.argv, '-bufsize'), '500000');
  });

  it('flags are split like a shell and go before the output', () => {
    const spec = parseProcess({ process: 'FFMPEG', codec: 'AAC', flags: `-metadata:s:a title="Main mix" -af 'volume=0.5'` });
    const i = spec.argv.indexOf('-metadata:s:a');
    assert.ok(i > 0 && i < spec.argv.indexOf('-f', i));
    assert.equal(spec.argv[i + 1], 'title=Main mix');
    assert.equal(after(spec.argv, '-af'), 'volume=0.5');
  });

  it('an MKVExec entry runs its command on the selected tracks', () => {
    const spec = parseProcess({ process: 'MKVExec', exec: `/usr/bin/filter --name "$stream x" -`, track_select: 'video=none&audio=all' });
    assert.deepEqual(spec.argv, ['/usr/bin/filter', '--name', '$stream x', '-']);
    assert.deepEqual(processInputTracks(spec, [h264, aac, aac2]).map((t) => t.id), [2, 4]);
    assert.deepEqual(processInputTracks(parseProcess({ process: 'MKV-exec', exec: 'cat' }), [h264, aac]).map((t) => t.id), [1, 2]);
  });

  it('restart policies: fixed, exponential backoff up to restart_delay, disabled', () => {
    const fixed = parseProcess({ process: 'MKVExec', exec: 'cat', restart_type: 'fixed', restart_delay: '1500' }).restart;
    assert.deepEqual(fixed, { type: 'fixed', delayMs: 1500 });
    assert.equal(restartDelayMs(fixed, 1), 1500);
    assert.equal(restartDelayMs(fixed, 9), 1500);
    assert.equal(restartDelayMs({ type: 'fixed', delayMs: 0 }, 1), MIN_RESTART_MS);
    const backoff = { type: 'backoff' as const, delayMs: 4000 };
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => restartDelayMs(backoff, n)), [BACKOFF_FIRST_MS, 1000, 2000, 4000, 4000]);
    assert.equal(restartDelayMs({ type: 'backoff', delayMs: 0 }, 100), BACKOFF_MAX_MS);
    assert.equal(restartDelayMs({ type: 'disabled', delayMs: 0 }, 1), undefined);
  });

  it('track_inhibit selects per type; an empty one never inhibits', () => {
    const spec = (track_inhibit: string) => parseProcess({ process: 'FFMPEG', codec: 'opus', track_inhibit });
    assert.equal(isInhibited(spec('video=H264'), [h264, aac]), true);
    assert.equal(isInhibited(spec('video=VP9'), [h264, aac]), false);
    assert.equal(isInhibited(spec('audio=none&video=none&subtitle=none'), [h264, aac]), false);
    assert.equal(spec('audio=none&video=none&subtitle=none').inhibit, undefined);
    assert.equal(isInhibited(spec('audio=nld'), [aac2]), true);
  });

  it('the identity of an entry does not depend on the order of its keys', () => {
    assert.equal(parseProcess({ process: 'FFMPEG', codec: 'opus', rate: 1 }).key, parseProcess({ rate: 1, codec: 'opus', process: 'FFMPEG' }).key);
    assert.equal(canonicalJson({ b: [1, { d: 1, c: 2 }], a: null }), '{"a":null,"b":[1,{"c":2,"d":1}]}');
  });

  it('bad entries are named with the field at fault; the good ones still run', () => {
    const bad: [unknown, RegExp][] = [
      ['x', /must be an object/],
      [{ codec: 'opus' }, /"process"/],
      [{ process: 'Livepeer' }, /not supported/],
      [{ process: 'FFMPEG' }, /"codec" is required/],
      [{ process: 'FFMPEG', codec: 'theora' }, /"codec"/],
      [{ process: 'FFMPEG', codec: 'opus', 'x-LSP-kind': 'video' }, /x-LSP-kind/],
      [{ process: 'FFMPEG', codec: 'H264', resolution: 'big' }, /resolution/],
      [{ process: 'FFMPEG', codec: 'H264', crf: 99 }, /crf/],
      [{ process: 'FFMPEG', codec: 'H264', preset: 'turbo' }, /preset/],
      [{ process: 'FFMPEG', codec: 'opus', rate: -5 }, /rate/],
      [{ process: 'FFMPEG', codec: 'opus', rate: 'fast' }, /rate/],
      [{ process: 'FFMPEG', codec: 'opus', flags: '-af "unterminated' }, /unterminated/],
      [{ process: 'FFMPEG', codec: 'H264', sources: [{ src: '/logo.png' }] }, /overlay/],
      [{ process: 'MKVExec' }, /"exec"/],
      [{ process: 'MKVExec', exec: '   ' }, /"exec"/],
      [{ process: 'MKVExec', exec: 'cat', restart_type: 'sometimes' }, /restart_type/],
      [{ process: 'MKVExec', exec: 'cat', restart_delay: -1 }, /restart_delay/],
    ];
    for (const [entry, re] of bad) assert.throws(() => parseProcess(entry), (err: unknown) => err instanceof HazeError && re.test(err.message), JSON.stringify(entry));
    const { specs, errors } = parseProcesses([{ process: 'FFMPEG', codec: 'opus' }, { process: 'nope' }, { process: 'FFMPEG', codec: 'opus' }]);
    assert.equal(specs.length, 1, 'the same entry twice is one process');
    assert.deepEqual(errors.map((e) => e.slice(0, 13)), ['processes[1]:']);
    assert.deepEqual(parseProcesses('x').errors, ['"processes" must be an array']);
    assert.deepEqual(parseProcesses(undefined), { specs: [], errors: [] });
  });

  it('fuzz: any entry gives a spec or a HazeError, never another exception', () => {
    const keys = ['process', 'codec', 'x-LSP-kind', 'source_track', 'track_select', 'track_inhibit', 'exec', 'rate', 'min_rate', 'max_rate', 'resolution', 'crf', 'preset', 'profile', 'keys', 'keyfrms', 'keysecs', 'flags', 'sample_rate', 'sources', 'restart_type', 'restart_delay', 'inconsequential'];
    const value = fc.oneof(
      fc.constantFrom('FFMPEG', 'AV', 'MKVExec', 'opus', 'H264', 'vp9', 'audio', 'video', 'backoff', 'fixed', 'frames', 'secs', '640x360', 'x360', 'cat', '"', '', 'automatic'),
      fc.string({ maxLength: 30 }),
      fc.integer({ min: -5, max: 200_000 }),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.anything(), { maxLength: 3 }),
    );
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), value, { maxKeys: 8 }), (entry) => {
        try {
          const spec = parseProcess(entry);
          assert.ok(spec.argv.length > 0 && spec.argv.every((a) => typeof a === 'string'));
          processInputTracks(spec, [h264, aac, opus]);
          isInhibited(spec, [h264, aac, opus]);
        } catch (err) {
          assert.ok(err instanceof HazeError, String(err));
        }
      }),
      { numRuns: 3000 },
    );
    // and values of any shape, also for the list
    fc.assert(
      fc.property(fc.anything(), (x) => {
        const r = parseProcesses(x);
        assert.ok(Array.isArray(r.specs) && Array.isArray(r.errors));
      }),
      { numRuns: 1000 },
    );
  });

  it('selector query strings', () => {
    assert.deepEqual(parseSelectorQuery('?audio=AAC,opus&video=none&foo=1'), { audio: 'AAC,opus', video: 'none' });
    assert.deepEqual(parseSelectorQuery('audio=%21opus'), { audio: '!opus' });
  });

  it('ffmpegArgs refuses a codec of the other kind', () => {
    assert.throws(() => ffmpegArgs({ binary: 'ffmpeg', kind: 'audio', codec: 'H264' }), HazeError);
    assert.throws(() => ffmpegArgs({ binary: 'ffmpeg', kind: 'video', codec: 'opus' }), HazeError);
  });
});

describe('shellSplit', () => {
  it('splits words, quotes and escapes as a POSIX shell does', () => {
    assert.deepEqual(shellSplit(`a  b\t"c d" 'e "f"' g\\ h "i\\"j\\\\" '' "" k'l'"m"`), ['a', 'b', 'c d', 'e "f"', 'g h', 'i"j\\', '', '', 'klm']);
    assert.deepEqual(shellSplit(''), []);
    assert.deepEqual(shellSplit('   '), []);
    assert.deepEqual(shellSplit('x\\'), ['x\\']);
    assert.deepEqual(shellSplit('"a\\nb"'), ['a\\nb']);
    assert.throws(() => shellSplit(`'open`), /unterminated '/);
    assert.throws(() => shellSplit(`"open`), /unterminated "/);
    assert.throws(() => shellSplit('a '.repeat(MAX_ARGUMENTS + 1)), /arguments/);
  });

  it('fuzz: any text gives arguments or a HazeError, never more than the text holds', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: fc.constantFrom('a', ' ', '"', "'", '\\', '$', '\t', 'é') }), (text) => {
        try {
          const args = shellSplit(text);
          assert.ok(args.join('').length <= text.length);
        } catch (err) {
          assert.ok(err instanceof HazeError, String(err));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('fuzz: quoting every argument and splitting gives the arguments back', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ maxLength: 20 }), { maxLength: 10 }), (args) => {
        const quoted = args.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
        assert.deepEqual(shellSplit(quoted), args);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('LineSplitter (stderr lines)', () => {
  it('splits on \\n and \\r, keeps partial lines, cuts long ones', () => {
    const s = new LineSplitter(10);
    assert.deepEqual(s.push('one\ntw'), ['one']);
    assert.deepEqual(s.push('o\r\nthree\rfour'), ['two', 'three']);
    assert.deepEqual(s.push('\n0123456789abcdef'), ['four', '0123456789…']);
    assert.deepEqual(s.push('ghij\nok\n'), ['ok'], 'the rest of a cut line is dropped');
    assert.deepEqual(s.push('tail'), []);
    assert.deepEqual(s.flush(), ['tail']);
  });

  it('fuzz: any split of the text gives the same lines, each within the bound', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400, unit: fc.constantFrom('a', 'b', ' ', '\n', '\r', 'é') }), fc.array(fc.nat({ max: 400 }), { maxLength: 8 }), (text, cuts) => {
        const whole = new LineSplitter(16);
        const expected = [...whole.push(text), ...whole.flush()];
        const parts = new LineSplitter(16);
        const got: string[] = [];
        let at = 0;
        for (const c of [...cuts].sort((a, b) => a - b)) {
          const end = Math.min(text.length, c);
          if (end > at) got.push(...parts.push(text.slice(at, end)));
          at = Math.max(at, end);
        }
        got.push(...parts.push(text.slice(at)), ...parts.flush());
        assert.deepEqual(got, expected);
        for (const l of got) assert.ok(l.length <= 17);
      }),
      { numRuns: 1000 },
    );
  });
});
