// TsMuxer and PSI: every output is whole 188-byte packets with sync 0x47, continuity counters
// count per PID, PAT/PMT CRCs check, PES payloads and timestamps read back as written, PCR /
// random access / PSI placement, codec framing (Annex B, ADTS, Opus control header), and fuzzing.
// The reader below is written from ISO/IEC 13818-1's layouts, independently of the muxer.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures } from '../helpers.js';
import { crc32Mpeg2 } from '../../src/containers/ts/crc32.js';
import { TsMuxer } from '../../src/containers/ts/mux.js';
import { opusChannelConfigCode, opusPacketSamples } from '../../src/containers/ts/audio.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { avccToAnnexB, parseAvcC } from '../../src/media/h264.js';
import { parseAsc, adtsHeader } from '../../src/media/aac.js';
import { HazeError } from '../../src/util/errors.js';
import type { AudioTrack, Packet, Track, VideoTrack } from '../../src/media/types.js';

// ---- an independent TS reader ------------------------------------------------------------------

interface TsPacket {
  pid: number;
  pusi: boolean;
  cc: number;
  hasPayload: boolean;
  rai: boolean;
  pcr: number | undefined;
  afLength: number;
  payload: Buffer;
}

function readTs(buf: Buffer): TsPacket[] {
  assert.equal(buf.length % 188, 0, `output of ${buf.length} bytes is not whole TS packets`);
  const out: TsPacket[] = [];
  for (let p = 0; p < buf.length; p += 188) {
    const b = buf.subarray(p, p + 188);
    assert.equal(b[0], 0x47, `sync byte at ${p}`);
    assert.equal(b[1]! & 0x80, 0, 'transport_error_indicator clear');
    const pid = ((b[1]! & 0x1f) << 8) | b[2]!;
    const afc = (b[3]! >> 4) & 3;
    assert.notEqual(afc, 0, 'adaptation_field_control 00 is reserved');
    assert.equal(b[3]! & 0xc0, 0, 'not scrambled');
    let o = 4;
    let rai = false;
    let pcr: number | undefined;
    let afLength = -1;
    if (afc & 2) {
      afLength = b[4]!;
      assert.ok(afLength <= 183, 'adaptation field fits');
      if (afLength > 0) {
        const flags = b[5]!;
        rai = (flags & 0x40) !== 0;
        let f = 6;
        if (flags & 0x10) {
          pcr = b[f]! * 2 ** 25 + b[f + 1]! * 2 ** 17 + b[f + 2]! * 2 ** 9 + b[f + 3]! * 2 + (b[f + 4]! >> 7);
          f += 6;
        }
        for (let i = f; i < 5 + afLength; i++) assert.equal(b[i], 0xff, 'stuffing bytes are 0xFF');
      }
      o = 5 + afLength;
    }
    out.push({ pid, pusi: (b[1]! & 0x40) !== 0, cc: b[3]! & 0x0f, hasPayload: (afc & 1) !== 0, rai, pcr, afLength, payload: b.subarray(o) });
  }
  return out;
}

/** Checks CCs count up by one per payload-carrying packet of each PID, across calls. */
class CcChecker {
  private readonly last = new Map<number, number>();
  check(packets: TsPacket[]): void {
    for (const p of packets) {
      const prev = this.last.get(p.pid);
      if (prev !== undefined) assert.equal(p.cc, (prev + 1) & 0x0f, `CC on PID ${p.pid}`);
      this.last.set(p.pid, p.cc);
    }
  }
}

interface Section {
  tableId: number;
  id: number;
  body: Buffer;
}

function readSection(p: TsPacket): Section {
  assert.ok(p.pusi);
  const pointer = p.payload[0]!;
  const s = p.payload.subarray(1 + pointer);
  const len = ((s[1]! & 0x0f) << 8) | s[2]!;
  const sec = s.subarray(0, 3 + len);
  assert.equal(s[1]! & 0x80, 0x80, 'section_syntax_indicator');
  assert.equal(crc32Mpeg2(sec), 0, 'section CRC_32 checks');
  for (let i = 3 + len; i < s.length; i++) assert.equal(s[i], 0xff, 'PSI stuffing');
  return { tableId: sec[0]!, id: sec.readUInt16BE(3), body: sec.subarray(8, sec.length - 4) };
}

interface PmtEntry {
  streamType: number;
  pid: number;
  descriptors: Buffer;
}

function readPmt(sec: Section): { pcrPid: number; streams: PmtEntry[] } {
  assert.equal(sec.tableId, 2);
  const b = sec.body;
  const pcrPid = b.readUInt16BE(0) & 0x1fff;
  const infoLen = b.readUInt16BE(2) & 0xfff;
  const streams: PmtEntry[] = [];
  for (let o = 4 + infoLen; o < b.length; ) {
    const esLen = b.readUInt16BE(o + 3) & 0xfff;
    streams.push({ streamType: b[o]!, pid: b.readUInt16BE(o + 1) & 0x1fff, descriptors: b.subarray(o + 5, o + 5 + esLen) });
    o += 5 + esLen;
  }
  return { pcrPid, streams };
}

interface Pes {
  pid: number;
  streamId: number;
  pts: number;
  dts: number | undefined;
  lengthField: number;
  payload: Buffer;
  rai: boolean;
  pcr: number | undefined;
}

function readTimestamp(b: Buffer, o: number, prefix: number): number {
  assert.equal(b[o]! >> 4, prefix, 'PTS/DTS prefix');
  assert.equal(b[o]! & 1, 1);
  assert.equal(b[o + 2]! & 1, 1);
  assert.equal(b[o + 4]! & 1, 1);
  return ((b[o]! >> 1) & 7) * 2 ** 30 + (b.readUInt16BE(o + 1) >> 1) * 2 ** 15 + (b.readUInt16BE(o + 3) >> 1);
}

/** Reassembles the PES packets of the given PIDs. */
function readPes(packets: TsPacket[], pids: Set<number>): Pes[] {
  const out: Pes[] = [];
  let cur: { pid: number; parts: Buffer[]; rai: boolean; pcr: number | undefined } | undefined;
  const flush = (): void => {
    if (!cur) return;
    const b = Buffer.concat(cur.parts);
    assert.equal(b.readUIntBE(0, 3), 1, 'packet_start_code_prefix');
    const lengthField = b.readUInt16BE(4);
    if (lengthField !== 0) assert.equal(lengthField, b.length - 6, 'PES_packet_length');
    assert.equal(b[6]! & 0xc0, 0x80);
    const flags = b[7]! >> 6;
    assert.ok(flags === 2 || flags === 3, 'PTS present');
    const hdr = b[8]!;
    const pts = readTimestamp(b, 9, flags === 3 ? 3 : 2);
    const dts = flags === 3 ? readTimestamp(b, 14, 1) : undefined;
    out.push({ pid: cur.pid, streamId: b[3]!, pts, dts, lengthField, payload: b.subarray(9 + hdr), rai: cur.rai, pcr: cur.pcr });
    cur = undefined;
  };
  for (const p of packets) {
    if (!pids.has(p.pid)) continue;
    if (p.pusi) {
      flush();
      cur = { pid: p.pid, parts: [], rai: p.rai, pcr: p.pcr };
    } else {
      assert.ok(cur && cur.pid === p.pid, 'continuation of the PES on the same PID');
      assert.equal(p.rai, false);
      assert.equal(p.pcr, undefined);
    }
    cur!.parts.push(p.payload);
  }
  flush();
  return out;
}

// ---- fixtures ------------------------------------------------------------------------------------

const AVCC = Buffer.from('0164000dffe1001a6764000dacd941419f9f0110000003001000000303c0f142996001000468efbcb0fdf8f800', 'hex');
const video: VideoTrack = { type: 'video', id: 1, codec: 'H264', init: AVCC, bps: 0, lang: 'und', width: 320, height: 180, fpks: 30000 };
const aac: AudioTrack = { type: 'audio', id: 2, codec: 'AAC', init: Buffer.from('1190', 'hex'), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };

function nalu(type: number, size: number, fill = 0x55): Buffer {
  const b = Buffer.alloc(size, fill);
  b[0] = type;
  return b;
}

function lengthPrefixed(...nals: Buffer[]): Buffer {
  return Buffer.concat(nals.flatMap((n) => {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(n.length);
    return [l, n];
  }));
}

function pkt(trackId: number, timeMs: number, data: Buffer, keyframe = false, offsetMs = 0): Packet {
  return { trackId, timeMs, offsetMs, keyframe, data };
}

// ---- tests -----------------------------------------------------------------------------------------

test('CRC-32/MPEG-2 known vector', () => {
  assert.equal(crc32Mpeg2(Buffer.from('123456789')), 0x0376e6e7);
  assert.equal(crc32Mpeg2(Buffer.alloc(0)), 0xffffffff);
});

test('psi(): PAT and PMT with valid CRCs, PIDs and stream types', () => {
  const mux = new TsMuxer([video, aac]);
  const psi = readTs(mux.psi());
  assert.deepEqual(psi.map((p) => p.pid), [0, 0x1000]);
  const pat = readSection(psi[0]!);
  assert.equal(pat.tableId, 0);
  assert.equal(pat.id, 1, 'transport_stream_id');
  assert.equal(pat.body.readUInt16BE(0), 1, 'program_number');
  assert.equal(pat.body.readUInt16BE(2) & 0x1fff, 0x1000, 'PMT PID');
  const pmt = readPmt(readSection(psi[1]!));
  assert.equal(pmt.pcrPid, 0x100);
  assert.deepEqual(pmt.streams.map((s) => [s.streamType, s.pid]), [[0x1b, 0x100], [0x0f, 0x101]]);
  assert.deepEqual(mux.streams, [
    { trackId: 1, pid: 0x100, streamType: 0x1b, streamId: 0xe0 },
    { trackId: 2, pid: 0x101, streamType: 0x0f, streamId: 0xc0 },
  ]);
  // A second call continues the counters.
  const again = readTs(mux.psi());
  assert.deepEqual(again.map((p) => p.cc), [1, 1]);
  // Options move the PIDs.
  const other = new TsMuxer([aac, video], { pmtPid: 0x20, firstPid: 0x300, programNumber: 9 });
  const [p0, p1] = readTs(other.psi());
  assert.equal(readSection(p0!).body.readUInt16BE(2) & 0x1fff, 0x20);
  assert.equal(readSection(p1!).id, 9);
  assert.equal(readPmt(readSection(p1!)).pcrPid, 0x301, 'PCR on the video PID, whatever the track order');
});

test('small.flv: whole packets, CCs, PSI before keyframes, PES payloads and timestamps', () => {
  const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
  const mux = new TsMuxer(flv.tracks);
  const cc = new CcChecker();
  const all: TsPacket[] = [];
  const avc = parseAvcC(flv.tracks.find((t) => t.type === 'video')!.init);
  const asc = parseAsc(flv.tracks.find((t) => t.type === 'audio')!.init);
  for (const p of flv.packets) {
    const out = mux.mux(p);
    const ts = readTs(out);
    cc.check(ts);
    const hasPsi = ts[0]!.pid === 0;
    const isVideo = p.trackId === 1;
    assert.equal(hasPsi, (isVideo && p.keyframe) || p === flv.packets[0], `PSI iff video keyframe (or first packet), at ${p.timeMs}`);
    if (hasPsi) assert.deepEqual(ts.slice(0, 2).map((t) => t.pid), [0, 0x1000]);
    all.push(...ts);
  }
  const pes = readPes(all, new Set([0x100, 0x101]));
  const src = flv.packets;
  assert.equal(pes.length, src.length);
  let prevPcr = -1;
  let audioPts = -1;
  for (let i = 0; i < src.length; i++) {
    const p = src[i]!;
    const e = pes[i]!;
    if (p.trackId === 1) {
      assert.equal(e.pid, 0x100);
      assert.equal(e.streamId, 0xe0);
      assert.deepEqual(e.payload, avccToAnnexB(p.data, avc, p.keyframe));
      assert.equal(e.pts, (p.timeMs + p.offsetMs) * 90);
      assert.equal(e.dts, p.offsetMs === 0 ? undefined : p.timeMs * 90);
      assert.equal(e.rai, p.keyframe);
      assert.ok(e.pcr !== undefined, 'PCR with every video PES');
      assert.equal(e.pcr, Math.max(0, p.timeMs * 90 - 9000), 'PCR runs 100 ms behind DTS');
      assert.ok(e.pcr >= prevPcr);
      prevPcr = e.pcr;
      // Access unit delimiter first, SPS+PPS on keyframes.
      assert.deepEqual(e.payload.subarray(0, 6), Buffer.from('0000000109f0', 'hex'));
      assert.equal(e.payload.includes(Buffer.concat([Buffer.from('00000001', 'hex'), avc.sps[0]!])), p.keyframe);
    } else {
      assert.equal(e.pid, 0x101);
      assert.equal(e.streamId, 0xc0);
      assert.equal(e.pcr, undefined, 'no PCR on the audio PID');
      assert.equal(e.dts, undefined);
      assert.deepEqual(e.payload, Buffer.concat([adtsHeader(asc, p.data.length), p.data]));
      assert.equal(e.lengthField, e.payload.length + 8);
      if (audioPts >= 0) assert.equal(e.pts - audioPts, 1920, '1024 samples at 48 kHz');
      else assert.equal(e.pts, p.timeMs * 90);
      audioPts = e.pts;
    }
  }
});

test('PES sizes across packet boundaries: every stuffing length reads back', () => {
  const mux = new TsMuxer([aac]);
  const cc = new CcChecker();
  const afLengths = new Set<number>();
  for (let size = 0; size < 600; size++) {
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i * 7 + size) & 0xff;
    const out = mux.mux(pkt(2, size * 21, data, size % 2 === 0));
    const ts = readTs(out);
    cc.check(ts);
    for (const t of ts) if (t.pid === 0x100) afLengths.add(t.afLength);
    const [e] = readPes(ts, new Set([0x100]));
    assert.ok(e);
    assert.deepEqual(e.payload.subarray(7), data);
    assert.equal(e.rai, size % 2 === 0);
    // The only PID is audio, so it carries the PCR.
    assert.ok(e.pcr !== undefined);
  }
  // Stuffing of every length was exercised, including the 1-byte adaptation field.
  for (let n = 0; n <= 20; n++) assert.ok(afLengths.has(n), `adaptation_field_length ${n}`);
});

test('video PES over 64 KiB uses PES_packet_length 0; DTS only with a composition offset', () => {
  const mux = new TsMuxer([video]);
  const big = lengthPrefixed(nalu(0x65, 200_000));
  const ts = readTs(mux.mux(pkt(1, 1000, big, true, 66)));
  const [e] = readPes(ts, new Set([0x100]));
  assert.equal(e!.lengthField, 0);
  assert.equal(e!.pts, 1066 * 90);
  assert.equal(e!.dts, 1000 * 90);
  // AUD (6) + SPS (4 + 26) + PPS (4 + 4) + the slice (4 + 200000)
  assert.equal(e!.payload.length, 6 + 30 + 8 + 200_004);
  const [small] = readPes(readTs(mux.mux(pkt(1, 1033, lengthPrefixed(nalu(0x41, 50))))), new Set([0x100]));
  assert.equal(small!.dts, undefined);
  assert.equal(small!.pts, 1033 * 90);
  assert.notEqual(small!.lengthField, 0);
});

test('timestamps wrap at 2^33 ticks', () => {
  const mux = new TsMuxer([video]);
  const ms = Math.ceil(2 ** 33 / 90) + 10; // just past one wrap
  const [e] = readPes(readTs(mux.mux(pkt(1, ms, lengthPrefixed(nalu(0x65, 10)), true, 40))), new Set([0x100]));
  assert.equal(e!.dts, (ms * 90) % 2 ** 33);
  assert.equal(e!.pts, ((ms + 40) * 90) % 2 ** 33);
});

test('AAC sample clock: sample-exact steps, re-anchored on drift beyond 5 ms', () => {
  const mux = new TsMuxer([aac]);
  const frame = Buffer.alloc(100, 1);
  const times = [1000, 1021, 1043, 1064, 1085, 1107, 1130, 2000, 2021];
  const pts = times.map((t) => readPes(readTs(mux.mux(pkt(2, t, frame, true))), new Set([0x100]))[0]!.pts);
  // 1000 ms anchor, then 1920 ticks a frame; 1130 ms is 2 ms off the count (fine); 2000 re-anchors.
  assert.deepEqual(pts, [90000, 91920, 93840, 95760, 97680, 99600, 101520, 180000, 181920]);
});

test('audio-only PSI every 100 ms', () => {
  const mux = new TsMuxer([aac]);
  const withPsi: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t = Math.round((i * 1024000) / 48000);
    if (readTs(mux.mux(pkt(2, t, Buffer.alloc(50), true)))[0]!.pid === 0) withPsi.push(t);
  }
  assert.deepEqual(withPsi, [0, 107, 213, 320, 427, 533]);
  // With a custom interval.
  const m2 = new TsMuxer([aac], { psiIntervalMs: 1000 });
  let n = 0;
  for (let t = 0; t < 3000; t += 21) if (readTs(m2.mux(pkt(2, t, Buffer.alloc(5), true)))[0]!.pid === 0) n++;
  assert.equal(n, 3);
});

test('Opus: private PES with registration + extension descriptors and control headers', () => {
  const head = Buffer.from('4f707573486561640102380180bb0000000000', 'hex'); // OpusHead, 2 ch, family 0
  const opus: AudioTrack = { type: 'audio', id: 5, codec: 'opus', init: head, bps: 0, lang: 'eng', rate: 48000, channels: 2, size: 16 };
  const mux = new TsMuxer([opus]);
  const psi = readTs(mux.psi());
  const pmt = readPmt(readSection(psi[1]!));
  assert.equal(pmt.streams[0]!.streamType, 0x06);
  assert.deepEqual(pmt.streams[0]!.descriptors, Buffer.concat([Buffer.from([5, 4]), Buffer.from('Opus'), Buffer.from('7f028002', 'hex'), Buffer.from('0a04656e6700', 'hex')]));
  // 20 ms CELT frames (TOC config 31, code 0): 960 samples = 1800 ticks each.
  const data = Buffer.alloc(300, 0);
  data[0] = 0xf8;
  const a = readPes(readTs(mux.mux(pkt(5, 0, data, true))), new Set([0x100]))[0]!;
  const b = readPes(readTs(mux.mux(pkt(5, 20, data, true))), new Set([0x100]))[0]!;
  assert.equal(a.streamId, 0xbd);
  assert.deepEqual(a.payload.subarray(0, 4), Buffer.from([0x7f, 0xe0, 0xff, 300 - 255]));
  assert.deepEqual(a.payload.subarray(4), data);
  assert.equal(b.pts - a.pts, 1800);
});

test('Opus helpers: TOC sample counts and channel_config_code', () => {
  assert.equal(opusPacketSamples(Buffer.from([0xf8])), 960); // CELT FB 20 ms, 1 frame
  assert.equal(opusPacketSamples(Buffer.from([0xf9])), 1920); // 2 frames
  assert.equal(opusPacketSamples(Buffer.from([0xfb, 0x03])), 2880); // code 3, 3 frames
  assert.equal(opusPacketSamples(Buffer.from([0x18])), 2880); // SILK 60 ms
  assert.equal(opusPacketSamples(Buffer.from([0x60])), 480); // hybrid 10 ms
  assert.equal(opusPacketSamples(Buffer.from([0xfb, 0x3f])), 0, 'over 120 ms is not trusted');
  assert.equal(opusChannelConfigCode(Buffer.alloc(0), 1), 1);
  assert.equal(opusChannelConfigCode(Buffer.alloc(0), 6), 0xff);
  const surround = Buffer.concat([Buffer.from('OpusHead'), Buffer.from([1, 6, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 1, 4, 2, 0, 4, 1, 2, 3, 5])]);
  assert.equal(opusChannelConfigCode(surround, 6), 6);
  const discrete = Buffer.concat([Buffer.from('OpusHead'), Buffer.from([1, 3, 0, 0, 0x80, 0xbb, 0, 0, 0, 0, 1, 3, 0, 0, 1, 2])]);
  assert.equal(opusChannelConfigCode(discrete, 3), 0x83);
});

test('MP3 (MPEG-1 / MPEG-2 rates), AC-3 and HEVC stream types and descriptors', () => {
  const mp3 = (id: number, rate: number): AudioTrack => ({ type: 'audio', id, codec: 'MP3', init: Buffer.alloc(0), bps: 0, lang: 'und', rate, channels: 2, size: 16 });
  const ac3: AudioTrack = { type: 'audio', id: 9, codec: 'AC3', init: Buffer.alloc(0), bps: 0, lang: 'und', rate: 48000, channels: 6, size: 16 };
  const hvcc = Buffer.from('0101600000009000000000003cf000fcfdf8f800000f01', 'hex');
  const hevc: VideoTrack = { type: 'video', id: 3, codec: 'HEVC', init: Buffer.concat([hvcc, Buffer.from([0x20, 0, 0])]), bps: 0, lang: 'und', width: 0, height: 0, fpks: 0 };
  const mux = new TsMuxer([hevc, mp3(4, 44100), mp3(5, 22050), ac3]);
  const pmt = readPmt(readSection(readTs(mux.psi())[1]!));
  assert.deepEqual(pmt.streams.map((s) => s.streamType), [0x24, 0x03, 0x04, 0x81]);
  assert.deepEqual(pmt.streams[3]!.descriptors, Buffer.concat([Buffer.from([5, 4]), Buffer.from('AC-3')]));
  assert.deepEqual(mux.streams.map((s) => s.streamId), [0xe0, 0xc0, 0xc1, 0xbd]);
});

test('unsupported tracks are left out; a muxer needs at least one track', () => {
  const vp9: VideoTrack = { ...video, id: 8, codec: 'VP9', init: Buffer.alloc(0) };
  const mux = new TsMuxer([vp9, aac]);
  assert.equal(mux.pidOf(8), undefined);
  assert.equal(mux.pidOf(2), 0x100);
  assert.equal(mux.mux(pkt(8, 0, Buffer.alloc(10), true)).length, 0);
  assert.equal(mux.mux(pkt(99, 0, Buffer.alloc(10), true)).length, 0);
  assert.throws(() => new TsMuxer([vp9]), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_UNSUPPORTED');
  const usac: AudioTrack = { ...aac, id: 3, init: Buffer.from('f94640', 'hex') };
  assert.equal(new TsMuxer([usac, video]).pidOf(3), undefined, 'AAC that ADTS cannot describe');
  assert.throws(() => new TsMuxer([{ ...video, init: Buffer.from([2, 1]) }]), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED');
  // A corrupt length prefix is a typed error, and the muxer keeps working afterwards.
  const m = new TsMuxer([video]);
  assert.throws(() => m.mux(pkt(1, 0, Buffer.from([0, 0, 0, 9, 1]), true)), HazeError);
  readTs(m.mux(pkt(1, 0, lengthPrefixed(nalu(0x65, 9)), true)));
});

test('fuzz: random packet sequences give whole packets, valid CCs and intact payloads', () => {
  const tracks: Track[] = [video, aac];
  const arbNals = fc.array(fc.record({ type: fc.constantFrom(1, 5, 6, 9), size: fc.integer({ min: 0, max: 700 }) }), { minLength: 0, maxLength: 4 });
  const arbPacket = fc.oneof(
    fc.record({ kind: fc.constant('v' as const), nals: arbNals, key: fc.boolean(), dt: fc.integer({ min: 0, max: 80 }), off: fc.integer({ min: 0, max: 200 }) }),
    fc.record({ kind: fc.constant('a' as const), size: fc.integer({ min: 0, max: 1500 }), key: fc.boolean(), dt: fc.integer({ min: 0, max: 80 }) }),
  );
  const avc = parseAvcC(AVCC);
  fc.assert(
    fc.property(fc.array(arbPacket, { minLength: 1, maxLength: 25 }), fc.integer({ min: 0, max: 2 ** 34 }), (seq, start) => {
      const mux = new TsMuxer(tracks);
      const cc = new CcChecker();
      let t = start;
      const sent: Packet[] = [];
      const all: TsPacket[] = [];
      for (const s of seq) {
        t += s.dt;
        const p = s.kind === 'v'
          ? pkt(1, t, lengthPrefixed(...s.nals.map((n, i) => nalu(n.type, n.size + 1, i))), s.key, s.off)
          : pkt(2, t, Buffer.alloc(s.size, 0xa5), s.key);
        const ts = readTs(mux.mux(p));
        cc.check(ts);
        all.push(...ts);
        sent.push(p);
      }
      const pes = readPes(all, new Set([0x100, 0x101]));
      assert.equal(pes.length, sent.length);
      for (let i = 0; i < sent.length; i++) {
        const p = sent[i]!;
        const want = p.trackId === 1 ? avccToAnnexB(p.data, avc, p.keyframe) : p.data;
        const got = p.trackId === 1 ? pes[i]!.payload : pes[i]!.payload.subarray(7);
        assert.ok(got.equals(want));
        assert.equal(pes[i]!.rai, p.keyframe);
      }
    }),
    { numRuns: 150 },
  );
});
