// Ogg pages (RFC 3533) and the Opus (RFC 7845) / Vorbis mappings: CRC against the CRC
// catalogue's check value and against ffmpeg's pages, lacing edge cases (255-multiples, packets
// spanning pages), the live muxer's granules and page numbering, stream chaining, and captures
// made by ffmpeg re-muxed by Haze and read back by ffmpeg (same packets, same decoded audio).
// Fuzzed: random bytes and mutated captures give pages or a HazeError; any chunk split of a
// capture gives the same pages as the whole.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import {
  OGG_FLAG_BOS,
  OGG_FLAG_CONTINUED,
  OGG_FLAG_EOS,
  OggPacketReader,
  OggPageReader,
  oggCrc32,
  readOggPackets,
  readOggPages,
  writeOggPages,
} from '../../src/containers/ogg/page.js';
import { opusPacketSamples, opusTags, synthesizeOpusHead } from '../../src/containers/ogg/opus.js';
import { splitVorbisHeaders, xiphLace } from '../../src/containers/ogg/vorbis.js';
import { OggAudioMuxer } from '../../src/containers/ogg/mux.js';
import { OggFeedWriter } from '../../src/outputs/audio-writers.js';
import { parseOpusHead } from '../../src/media/audio-headers.js';
import type { AudioTrack, Packet } from '../../src/media/types.js';
import { HazeError } from '../../src/util/errors.js';
import { isHaze, parseFramemd5, resultOrHazeError, runOk, tmpDir } from '../helpers.js';
import { filePackets } from '../media-files.js';

const isCode = (code: string) => (e: unknown) => e instanceof HazeError && e.code === code;

function audio(codec: AudioTrack['codec'], init: Buffer, rate = 48000, channels = 2): AudioTrack {
  return { id: 2, type: 'audio', codec, init, bps: 0, lang: 'und', rate, channels, size: 16 };
}

/** An Opus packet of one 20 ms CELT fullband frame (TOC config 31, code 0). */
function opus20(n: number, size = 40): Buffer {
  const b = Buffer.alloc(size, n & 0xff);
  b[0] = 31 << 3;
  return b;
}

test('oggCrc32: the catalogue check value (CRC-32, poly 04C11DB7, init 0, no reflection, no XOR)', () => {
  // CRC-32/CKSUM has the same register and a final XOR of FFFFFFFF; its check value is 765E7680
  assert.equal(oggCrc32(Buffer.from('123456789')), (0x765e7680 ^ 0xffffffff) >>> 0);
  assert.equal(oggCrc32(Buffer.alloc(0)), 0);
});

test('writeOggPages: header fields, lacing of 0/254/255/256-byte packets, CRC', () => {
  const w = writeOggPages([{ data: Buffer.alloc(0), granule: 7 }], { serial: 0x01020304, sequence: 5, bos: true });
  assert.equal(w.pages, 1);
  assert.deepEqual(
    w.bytes.subarray(0, 22).toString('hex'),
    '4f676753' + '00' + '02' + '0700000000000000' + '04030201' + '05000000',
  );
  assert.deepEqual([...w.bytes.subarray(26)], [1, 0], 'one lacing value 0: an empty packet');
  const crc = w.bytes.readUInt32LE(22);
  const zeroed = Buffer.from(w.bytes);
  zeroed.writeUInt32LE(0, 22);
  assert.equal(oggCrc32(zeroed), crc);

  for (const [len, lacing] of [
    [254, [254]],
    [255, [255, 0]],
    [256, [255, 1]],
    [510, [255, 255, 0]],
  ] as const) {
    const page = readOggPages(writeOggPages([{ data: Buffer.alloc(len, 1), granule: 1 }], { serial: 1, sequence: 0 }).bytes);
    assert.equal(page.length, 1);
    assert.deepEqual([...page[0]!.segments], lacing, `${len} bytes`);
    assert.equal(page[0]!.body.length, len);
  }
});

test('writeOggPages: a packet over 255 lacing values continues on the next page', () => {
  for (const len of [255 * 254 + 254, 255 * 255 - 1, 255 * 255, 255 * 255 + 1, 200_000]) {
    const data = Buffer.alloc(len);
    for (let i = 0; i < len; i++) data[i] = (i * 7) & 0xff;
    const w = writeOggPages([{ data, granule: 4242 }], { serial: 9, sequence: 100, eos: true });
    const pages = readOggPages(w.bytes);
    const lacing = Math.floor(len / 255) + 1;
    assert.equal(pages.length, Math.ceil(lacing / 255), `${len} bytes`);
    assert.equal(w.pages, pages.length);
    pages.forEach((p, i) => {
      assert.equal(p.sequence, 100 + i);
      assert.equal(p.continued, i > 0);
      assert.equal(p.eos, i === pages.length - 1);
      // only the page the packet ends on has a granule
      assert.equal(p.granule, i === pages.length - 1 ? 4242 : -1);
    });
    // the reader needs a BOS page first; a stream that starts with it:
    const bos = writeOggPages([{ data: Buffer.from('x'), granule: 0 }], { serial: 9, sequence: 99, bos: true }).bytes;
    const packets = readOggPackets(Buffer.concat([bos, w.bytes]));
    assert.equal(packets.length, 2);
    assert.ok(packets[1]!.data.equals(data));
    assert.equal(packets[1]!.granule, 4242);
    assert.equal(packets[1]!.eos, true);
  }
});

test('writeOggPages: several packets share pages; each page has the granule of its last finished packet', () => {
  const packets = [300, 70_000, 10, 20].map((n, i) => ({ data: Buffer.alloc(n, i + 1), granule: (i + 1) * 1000 }));
  const w = writeOggPages(packets, { serial: 3, sequence: 0, bos: true });
  const pages = readOggPages(w.bytes);
  const reader = new OggPacketReader();
  const got = pages.flatMap((p) => reader.page(p));
  assert.deepEqual(got.map((p) => p.data.length), [300, 70_000, 10, 20]);
  assert.ok(got.every((p, i) => p.data.equals(packets[i]!.data)));
  // page 0 ends inside packet 2 after packet 1 finished: granule 1000, next continued
  assert.equal(pages[0]!.granule, 1000);
  assert.equal(pages[1]!.continued, true);
  assert.equal(pages.at(-1)!.granule, 4000);
  assert.equal(pages[0]!.bos, true);
  assert.ok(pages.slice(1).every((p) => !p.bos));
  assert.equal(w.bytes[5]! & OGG_FLAG_BOS, OGG_FLAG_BOS);
});

test('reader: bad capture, CRC, version, and broken continuation are HazeErrors', () => {
  const good = writeOggPages([{ data: Buffer.alloc(600, 3), granule: 1 }], { serial: 1, sequence: 0, bos: true }).bytes;
  const badCapture = Buffer.from(good);
  badCapture[0] = 0x50;
  assert.throws(() => readOggPages(badCapture), isCode('HAZE_ERR_MALFORMED'));
  const badCrc = Buffer.from(good);
  badCrc[40] ^= 1;
  assert.throws(() => readOggPages(badCrc), isCode('HAZE_ERR_MALFORMED'));
  const badVersion = Buffer.from(good);
  badVersion[4] = 1;
  assert.throws(() => readOggPages(badVersion), isHaze);
  assert.throws(() => readOggPages(good.subarray(0, good.length - 1)), isCode('HAZE_ERR_SHORT_READ'));
  // a continued page with nothing open, and a page sequence gap
  const cont = writeOggPages([{ data: Buffer.alloc(70_000), granule: 1 }], { serial: 1, sequence: 0, bos: true });
  const pages = readOggPages(cont.bytes);
  assert.throws(() => new OggPacketReader().page(pages[1]!), isCode('HAZE_ERR_MALFORMED'));
  const r = new OggPacketReader();
  r.page(readOggPages(good)[0]!);
  const gap = writeOggPages([{ data: Buffer.alloc(1), granule: 2 }], { serial: 1, sequence: 2 }).bytes;
  assert.throws(() => r.page(readOggPages(gap)[0]!), isCode('HAZE_ERR_MALFORMED'));
  assert.throws(() => readOggPackets(cont.bytes, 1000), isCode('HAZE_ERR_TOO_LARGE'));
});

test('opusPacketSamples: frame sizes and counts from the TOC byte (RFC 6716 §3.1)', () => {
  assert.equal(opusPacketSamples(Buffer.from([31 << 3])), 960); // CELT FB 20 ms, one frame
  assert.equal(opusPacketSamples(Buffer.from([(16 << 3) | 1])), 240); // CELT NB 2.5 ms, two frames
  assert.equal(opusPacketSamples(Buffer.from([(3 << 3) | 2])), 5760); // SILK 60 ms, two frames
  assert.equal(opusPacketSamples(Buffer.from([(12 << 3) | 3, 3])), 1440); // hybrid 10 ms, code 3 with 3 frames
  assert.equal(opusPacketSamples(Buffer.from([(3 << 3) | 3, 3])), undefined, '180 ms is over the 120 ms limit');
  assert.equal(opusPacketSamples(Buffer.from([(3 << 3) | 3])), undefined);
  assert.equal(opusPacketSamples(Buffer.alloc(0)), undefined);
});

test('OpusHead synthesized from rate/channels parses back; OpusTags layout', () => {
  const stereo = parseOpusHead(synthesizeOpusHead(2, 44100))!;
  assert.deepEqual([stereo.version, stereo.channels, stereo.preSkip, stereo.inputSampleRate, stereo.mappingFamily], [1, 2, 0, 44100, 0]);
  const six = parseOpusHead(synthesizeOpusHead(6, 48000))!;
  assert.equal(six.mappingFamily, 1);
  assert.deepEqual([six.mapping!.streams, six.mapping!.coupled, [...six.mapping!.channelMap]], [4, 2, [0, 4, 1, 2, 3, 5]]);
  assert.throws(() => synthesizeOpusHead(9, 48000), isCode('HAZE_ERR_UNSUPPORTED'));
  assert.equal(opusTags('Haze').toString('hex'), Buffer.from('OpusTags').toString('hex') + '04000000' + Buffer.from('Haze').toString('hex') + '00000000');
});

test('Vorbis headers: Xiph-laced and length-prefixed init; malformed ones are HazeErrors', () => {
  const id = Buffer.alloc(30);
  id[0] = 1;
  id.write('vorbis', 1, 'latin1');
  id[11] = 2;
  id.writeUInt32LE(44100, 12);
  id[28] = 0xb8;
  id[29] = 1;
  const comment = Buffer.concat([Buffer.from('\x03vorbis', 'latin1'), Buffer.alloc(300, 0x41)]);
  const setup = Buffer.concat([Buffer.from('\x05vorbis', 'latin1'), Buffer.alloc(1000, 0x42)]);
  const laced = xiphLace([id, comment, setup]);
  assert.deepEqual([...laced.subarray(0, 4)], [2, 30, 255, 307 - 255]);
  const h = splitVorbisHeaders(laced);
  assert.deepEqual([h.channels, h.rate], [2, 44100]);
  assert.ok(h.identification.equals(id) && h.comment.equals(comment) && h.setup.equals(setup));
  const prefixed = Buffer.concat([id, comment, setup].flatMap((b) => [Buffer.from([b.length >> 8, b.length & 0xff]), b]));
  assert.ok(splitVorbisHeaders(prefixed).setup.equals(setup));
  assert.throws(() => splitVorbisHeaders(xiphLace([id, setup, comment])), isCode('HAZE_ERR_MALFORMED'));
  assert.throws(() => splitVorbisHeaders(laced.subarray(0, 40)), isHaze);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (u) => resultOrHazeError(() => splitVorbisHeaders(Buffer.from(u)))),
    { numRuns: 2000 },
  );
});

describe('live Ogg muxer', () => {
  const head = synthesizeOpusHead(2, 48000);
  head.writeUInt16LE(312, 10); // pre-skip

  test('Opus: OpusHead alone on the BOS page, OpusTags next, one page per packet with sample-exact granules', () => {
    const m = new OggAudioMuxer(audio('opus', head), 77);
    assert.equal(m.headerPageCount, 2);
    const parts = [m.header(1000)];
    for (let i = 0; i < 5; i++) parts.push(m.packet(1000 + i * 20, opus20(i)));
    const pages = readOggPages(Buffer.concat(parts));
    assert.deepEqual(pages.map((p) => p.sequence), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(pages.map((p) => p.segments.length), [1, 1, 1, 1, 1, 1, 1]);
    assert.deepEqual(pages.map((p) => p.bos), [true, false, false, false, false, false, false]);
    assert.ok(pages[0]!.body.equals(head));
    assert.equal(pages[1]!.body.toString('latin1', 0, 8), 'OpusTags');
    // pre-skip + 48 samples per ms of the first timestamp, then + 960 per 20 ms frame
    assert.deepEqual(pages.slice(2).map((p) => p.granule), [1, 2, 3, 4, 5].map((k) => 312 + 48_000 + k * 960));
  });

  test('Opus granules stay sample-exact through ms rounding, move forward on a gap, never back', () => {
    const m = new OggAudioMuxer(audio('opus', head), 1);
    const times = [0, 21, 40, 61, 80, 1000, 1020, 500, 520];
    const granules = times.map((t, i) => readOggPages(m.packet(t, opus20(i)))[0]!.granule);
    assert.deepEqual(granules.slice(0, 5), [1, 2, 3, 4, 5].map((k) => 312 + k * 960));
    assert.equal(granules[5], 312 + 48_000 + 960, 'a 900 ms gap re-anchors at the timestamp');
    assert.equal(granules[6], granules[5]! + 960);
    assert.deepEqual(granules.slice(7), [granules[6]! + 960, granules[6]! + 1920], 'timestamps going back do not move the granule back');
  });

  test('header pages are numbered so every listener sees an unbroken page sequence', () => {
    const m = new OggAudioMuxer(audio('opus', Buffer.alloc(0)), 5);
    // the feed keeps only the newest packet for a joining listener: header(newest time) + it
    const pkts: Buffer[] = [];
    const headers: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      pkts.push(m.packet(i * 20, opus20(i, i === 6 ? 70_000 : 30)));
      headers.push(m.header(i * 20));
    }
    for (let k = 0; k < 10; k++) {
      const packets = readOggPackets(Buffer.concat([headers[k]!, ...pkts.slice(k)]));
      assert.equal(packets.length, 2 + 10 - k, `joining at ${k}`);
      assert.equal(parseOpusHead(packets[0]!.data)?.channels, 2, 'a synthesized OpusHead for an empty init');
    }
    // before the next packet arrives: the header leads into the next page
    const early = m.header(9999);
    const next = m.packet(200, opus20(10));
    assert.equal(readOggPackets(Buffer.concat([early, next])).length, 3);
  });

  test('Vorbis: identification alone on page 0, comment + setup next, granule from timeMs * rate', () => {
    const id = Buffer.alloc(30);
    id[0] = 1;
    id.write('vorbis', 1, 'latin1');
    id[11] = 1;
    id.writeUInt32LE(22050, 12);
    const init = xiphLace([id, Buffer.from('\x03vorbis', 'latin1'), Buffer.from('\x05vorbis\x01', 'latin1')]);
    const m = new OggAudioMuxer(audio('vorbis', init, 22050, 1), 3);
    const out = Buffer.concat([m.header(0), m.packet(0, Buffer.from([0, 1])), m.packet(1000, Buffer.from([0, 2]))]);
    const pages = readOggPages(out);
    assert.deepEqual(pages.map((p) => p.segments.length), [1, 2, 1, 1]);
    assert.deepEqual(pages.map((p) => p.granule), [0, 0, 0, 22050]);
    assert.throws(() => new OggAudioMuxer(audio('vorbis', Buffer.from([2, 1, 1, 0])), 1), isHaze);
  });

  test('OggFeedWriter: a new codec config chains a new logical stream after an EOS page', () => {
    const w = new OggFeedWriter();
    const t1 = audio('opus', head);
    w.setTracks([t1]);
    const parts = [w.header(0)];
    const pkt = (timeMs: number): Packet => ({ trackId: 2, timeMs, offsetMs: 0, keyframe: true, data: opus20(timeMs) });
    parts.push(w.packet(pkt(0))!, w.packet(pkt(20))!);
    assert.equal(w.packet({ ...pkt(40), trackId: 1 }), null, 'other tracks are not carried');
    w.setTracks([t1]);
    assert.equal(w.tracksChanged(), null, 'the same track changes nothing');
    w.setTracks([{ ...t1, channels: 1, init: synthesizeOpusHead(1, 48000) }]);
    parts.push(w.tracksChanged()!, w.packet(pkt(40))!);
    const pages = readOggPages(Buffer.concat(parts));
    const eos = pages.findIndex((p) => p.eos);
    assert.equal(eos, 4);
    assert.equal(pages[eos]!.segments.length, 0);
    assert.equal(pages[eos]!.granule, 312 + 2 * 960);
    assert.equal(pages[eos + 1]!.bos, true);
    assert.notEqual(pages[eos + 1]!.serial, pages[0]!.serial);
    assert.equal(pages[eos + 1]!.sequence, 0);
    const packets = readOggPackets(Buffer.concat(parts));
    assert.deepEqual(packets.map((p) => p.data.length), [19, 20, 40, 40, 19, 20, 40]);
    assert.equal(w.header(9999)[5]! & OGG_FLAG_BOS, OGG_FLAG_BOS);
    assert.equal(OGG_FLAG_CONTINUED | OGG_FLAG_EOS, 5);
  });
});

describe('Ogg against ffmpeg', () => {
  const dir = tmpDir('haze-ogg-');
  const opusFile = path.join(dir, 'opus.ogg');
  const vorbisFile = path.join(dir, 'vorbis.ogg');
  before(async () => {
    await runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'sine=f=440:r=48000:d=1', '-ac', '2', '-c:a', 'libopus', opusFile, '-ac', '2', '-ar', '44100', '-c:a', 'libvorbis', vorbisFile]);
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function framemd5(file: string, args: string[]): Promise<string[]> {
    return parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', file, ...args, '-f', 'framemd5', '-'])).toString()).map((f) => f.hash);
  }

  test("ffmpeg's pages pass the CRC check; headers and packets come out of them", () => {
    const opus = readOggPackets(fs.readFileSync(opusFile));
    assert.equal(parseOpusHead(opus[0]!.data)?.channels, 2);
    assert.equal(opus[1]!.data.toString('latin1', 0, 8), 'OpusTags');
    assert.ok(opus.slice(2).every((p) => opusPacketSamples(p.data) === 960));
    const vorbis = readOggPackets(fs.readFileSync(vorbisFile));
    const h = splitVorbisHeaders(xiphLace(vorbis.slice(0, 3).map((p) => p.data)));
    assert.deepEqual([h.channels, h.rate], [2, 44100]);
  });

  for (const codec of ['opus', 'vorbis'] as const) {
    test(`${codec}: Haze's muxer carries ffmpeg's packets unchanged and they decode to the same audio`, async () => {
      const file = codec === 'opus' ? opusFile : vorbisFile;
      const headers = readOggPackets(fs.readFileSync(file)).slice(0, codec === 'opus' ? 1 : 3).map((p) => p.data);
      const init = codec === 'opus' ? headers[0]! : xiphLace(headers);
      const packets = await filePackets(file, 'a:0', 2);
      const m = new OggAudioMuxer(audio(codec, init, codec === 'opus' ? 48000 : 44100), 0x1234);
      const out = path.join(dir, `haze-${codec}.ogg`);
      fs.writeFileSync(out, Buffer.concat([m.header(0), ...packets.map((p) => m.packet(p.timeMs, p.data))]));
      assert.deepEqual(await framemd5(out, ['-c', 'copy']), await framemd5(file, ['-c', 'copy']), 'same packets');
      // decoded audio: the same samples (the source's last granule trims its end, Haze's live
      // stream has no end, so compare the source's length)
      const want = await runOk('ffmpeg', ['-v', 'error', '-i', file, '-f', 's16le', '-']);
      const got = await runOk('ffmpeg', ['-v', 'error', '-i', out, '-f', 's16le', '-']);
      assert.ok(got.length >= want.length && got.subarray(0, want.length).equals(want), `decoded ${got.length} vs ${want.length} bytes`);
    });
  }

  test('fuzz: any chunk split of a capture gives the same pages as the whole', () => {
    const whole = fs.readFileSync(vorbisFile);
    const ref = readOggPages(whole).map((p) => p.raw.toString('hex'));
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: whole.length - 1 }), { maxLength: 30 }), (cuts) => {
        const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), whole.length];
        const r = new OggPageReader();
        const got: string[] = [];
        for (let i = 0; i + 1 < points.length; i++) got.push(...r.push(Buffer.from(whole.subarray(points[i], points[i + 1]))).map((p) => p.raw.toString('hex')));
        assert.deepEqual(got, ref);
        assert.equal(r.buffered, 0);
      }),
      { numRuns: 200 },
    );
  });

  test('fuzz: random bytes and mutated captures give pages/packets or a HazeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), fc.boolean(), (u, prefix) => {
        const b = Buffer.from(u);
        if (prefix && b.length >= 4) b.write('OggS', 0, 'latin1');
        resultOrHazeError(() => readOggPackets(b, 4096));
      }),
      { numRuns: 3000 },
    );
    // structurally valid pages (right CRC) with arbitrary flags, serials, sequences and lacing
    // reach the packet reader's continuation and sequence checks
    const rawPage = (flags: number, serial: number, seq: number, lacing: number[]): Buffer => {
      const body = lacing.reduce((a, b) => a + b, 0);
      const b = Buffer.alloc(27 + lacing.length + body, 0x5a);
      b.write('OggS', 0, 'latin1');
      b[4] = 0;
      b[5] = flags;
      b.writeInt32LE(-1, 6);
      b.writeInt32LE(-1, 10);
      b.writeUInt32LE(serial, 14);
      b.writeUInt32LE(seq, 18);
      b.writeUInt32LE(0, 22);
      b[26] = lacing.length;
      b.set(lacing, 27);
      b.writeUInt32LE(oggCrc32(b), 22);
      return b;
    };
    const pageArb = fc.tuple(fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 3 }), fc.array(fc.oneof(fc.constant(255), fc.integer({ min: 0, max: 254 })), { maxLength: 12 }));
    fc.assert(
      fc.property(fc.array(pageArb, { maxLength: 8 }), (pages) => {
        const b = Buffer.concat(pages.map(([f, s, q, l]) => rawPage(f, s, q, l)));
        resultOrHazeError(() => readOggPackets(b, 2000));
      }),
      { numRuns: 2000 },
    );
    const whole = fs.readFileSync(opusFile);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(whole.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }), fc.nat(whole.length), (muts, cut) => {
        const b = Buffer.from(whole.subarray(0, cut));
        for (const [at, v] of muts) if (at < b.length) b[at] = v;
        resultOrHazeError(() => readOggPackets(b, 4096));
      }),
      { numRuns: 300 },
    );
  });
});
