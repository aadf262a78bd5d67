// TsDemuxer against Haze's own TsMuxer (round trip of small.flv's H.264 + AAC), packet sync
// (resync, 192/204-byte packets, not-TS input), PSI (CRC, program changes), 33-bit timestamp
// wrap, and fast-check fuzzing: random, mutated and truncated input gives packets or a
// HazeError within a time bound, and any chunk split gives the packets of the whole.
// ffmpeg-made files are checked in test/integration/ts-demux-ffmpeg.test.ts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures } from '../helpers.js';
import { TsDemuxer, opusHeadFor, type TsDemuxPacket, type TsDemuxerOptions } from '../../src/containers/ts/demux.js';
import { TsMuxer } from '../../src/containers/ts/mux.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { parseAvcC } from '../../src/media/h264.js';
import { parseAsc } from '../../src/media/aac.js';
import { splitNalUnits } from '../../src/media/nal-units.js';
import { HazeError } from '../../src/util/errors.js';
import type { Packet, Track } from '../../src/media/types.js';

interface Demuxed {
  tracks: Track[] | undefined;
  trackUpdates: number;
  packets: TsDemuxPacket[];
  warnings: string[];
}

function demux(chunks: Buffer[], opts?: TsDemuxerOptions): Demuxed {
  const d = new TsDemuxer(opts);
  const out: Demuxed = { tracks: undefined, trackUpdates: 0, packets: [], warnings: [] };
  const take = (r: ReturnType<TsDemuxer['push']>): void => {
    if (r.tracks) {
      out.tracks = r.tracks;
      out.trackUpdates++;
    }
    out.packets.push(...r.packets);
    out.warnings.push(...r.warnings);
  };
  for (const c of chunks) take(d.push(c));
  take(d.end());
  return out;
}

const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
const videoId = flv.tracks.find((t) => t.type === 'video')!.id;

function muxAll(tracks: Track[], packets: Packet[]): Buffer {
  const mux = new TsMuxer(tracks);
  return Buffer.concat(packets.map((p) => mux.mux(p)));
}

const smallTs = muxAll(flv.tracks, flv.packets);

/** NAL units without AUD / parameter sets, which the muxer adds and the demuxer keeps. */
function sliceNals(data: Buffer): string[] {
  return splitNalUnits(data, 4)
    .filter((n) => ![7, 8, 9].includes(n[0]! & 0x1f))
    .map((n) => n.toString('hex'));
}

function packetKey(p: TsDemuxPacket): string {
  return `${p.trackId}/${p.timeMs}/${p.offsetMs}/${p.keyframe}/${p.pos}/${p.data.toString('base64')}`;
}

test('round trip: small.flv -> TsMuxer -> TsDemuxer gives back tracks and packets', () => {
  const r = demux([smallTs]);
  assert.deepEqual(r.warnings, []);
  assert.equal(r.trackUpdates, 1, 'tracks announced once');
  const [v, a] = r.tracks!;
  assert.ok(v && v.type === 'video' && a && a.type === 'audio');
  assert.equal(v.id, 0x100, 'track ids are PIDs');
  assert.equal(a.id, 0x101);
  const srcV = flv.tracks.find((t) => t.type === 'video')!;
  const srcA = flv.tracks.find((t) => t.type === 'audio')!;
  assert.equal(v.codec, 'H264');
  assert.equal(v.width, 320);
  assert.equal(v.height, 180);
  const cfg = parseAvcC(v.init);
  const srcCfg = parseAvcC(srcV.init);
  assert.equal(cfg.nalLengthSize, 4);
  assert.deepEqual(cfg.sps, srcCfg.sps);
  assert.deepEqual(cfg.pps, srcCfg.pps);
  assert.equal(a.codec, 'AAC');
  assert.equal(a.rate, 48000);
  assert.deepEqual(parseAsc(a.init), parseAsc(srcA.init));

  const got = r.packets;
  const byTrack = <T extends { trackId: number }>(id: number, list: T[]): T[] => list.filter((p) => p.trackId === id);
  const gv = byTrack(0x100, got);
  const sv = byTrack(videoId, flv.packets);
  assert.equal(gv.length, sv.length);
  for (let i = 0; i < sv.length; i++) {
    const g = gv[i]!;
    const s = sv[i]!;
    assert.equal(g.timeMs, s.timeMs, `video ${i} dts`);
    assert.equal(g.offsetMs, s.offsetMs, `video ${i} composition offset`);
    assert.equal(g.keyframe, s.keyframe, `video ${i} keyframe`);
    assert.deepEqual(sliceNals(g.data), sliceNals(s.data), `video ${i} NAL units`);
  }
  const ga = byTrack(0x101, got);
  const sa = byTrack(srcA.id, flv.packets);
  assert.equal(ga.length, sa.length);
  for (let i = 0; i < sa.length; i++) {
    assert.ok(Math.abs(ga[i]!.timeMs - sa[i]!.timeMs) <= 1, `audio ${i}: ${ga[i]!.timeMs} vs ${sa[i]!.timeMs}`);
    assert.ok(ga[i]!.data.equals(sa[i]!.data), `audio ${i} payload`);
  }
  // pos points at a TS packet that starts a PES on the packet's PID.
  for (const p of got) {
    assert.equal(smallTs[p.pos], 0x47);
    assert.equal(smallTs[p.pos + 1]! & 0x40, 0x40, 'payload_unit_start_indicator');
    assert.equal(((smallTs[p.pos + 1]! & 0x1f) << 8) | smallTs[p.pos + 2]!, p.trackId);
  }
});

test('192-byte (M2TS), 204-byte packets and garbage before and inside the stream', () => {
  const whole = demux([smallTs]);
  const n = smallTs.length / 188;
  const m2ts = Buffer.alloc(n * 192);
  const rs = Buffer.alloc(n * 204, 0x5a);
  for (let k = 0; k < n; k++) {
    smallTs.copy(m2ts, k * 192 + 4, k * 188, k * 188 + 188);
    m2ts.writeUInt32BE(k * 1000, k * 192);
    smallTs.copy(rs, k * 204, k * 188, k * 188 + 188);
  }
  const strip = (p: TsDemuxPacket) => ({ ...p, pos: 0 });
  for (const [name, buf] of [['m2ts', m2ts], ['204', rs]] as const) {
    const r = demux([buf]);
    assert.deepEqual(r.warnings, [], name);
    assert.deepEqual(r.packets.map(strip), whole.packets.map(strip), name);
  }
  // 1000 bytes of noise before, and 100 bytes of noise after the 50th packet: resync twice.
  const noise = Buffer.alloc(1000, 0x33);
  const cut = 50 * 188;
  const dirty = Buffer.concat([noise, smallTs.subarray(0, cut), noise.subarray(0, 100), smallTs.subarray(cut)]);
  const r = demux([dirty]);
  assert.ok(r.warnings.some((w) => w.includes('skipped 1000 bytes')), r.warnings.join('\n'));
  assert.ok(r.warnings.some((w) => w.includes('lost TS sync')), r.warnings.join('\n'));
  // Only the PES cut by the noise can be lost.
  assert.ok(r.packets.length >= whole.packets.length - 2);
});

test('input that is not TS is a HazeError, short junk just yields nothing', () => {
  assert.throws(() => demux([Buffer.alloc(100_000, 0x47 ^ 0xff)]), (e) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED');
  const r = demux([Buffer.from('hello')]);
  assert.equal(r.packets.length, 0);
  assert.equal(r.tracks, undefined);
});

test('a PMT with a bad CRC is ignored with a warning', () => {
  const bad = Buffer.from(smallTs);
  // The PMT is the second TS packet; flip a byte inside its section.
  bad[188 + 4 + 1 + 12] ^= 0x01;
  const d = new TsDemuxer();
  const r = d.push(bad.subarray(0, 376 + 188 * 20));
  assert.ok(r.warnings.some((w) => w.includes('CRC_32')), r.warnings.join('\n'));
  assert.equal(r.packets.length, 0);
  // The next PMT (before the next keyframe) is good: everything after it comes out.
  const rest = d.push(bad.subarray(376 + 188 * 20));
  const end = d.end();
  assert.ok((rest.tracks ?? end.tracks)?.length === 2);
});

test('program change: a new PMT with fewer streams changes the track list', () => {
  const audio = flv.tracks.filter((t) => t.type === 'audio');
  const first = smallTs;
  const second = muxAll(audio, flv.packets.filter((p) => p.trackId === audio[0]!.id).map((p) => ({ ...p, timeMs: p.timeMs + 10_000 })));
  const r = demux([first, second]);
  assert.equal(r.trackUpdates, 2);
  assert.deepEqual(r.tracks!.map((t) => t.id), [0x100]);
  assert.equal(r.tracks![0]!.type, 'audio');
  const late = r.packets.filter((p) => p.timeMs >= 10_000);
  assert.ok(late.length > 10 && late.every((p) => p.trackId === 0x100));
});

test('33-bit PTS/DTS wrap gives a continuous timeline', () => {
  const wrapMs = Math.floor(2 ** 33 / 90);
  const shift = wrapMs - 1000; // the file's 2-3 s straddle the wrap
  const packets = flv.packets.map((p) => ({ ...p, timeMs: p.timeMs + shift }));
  const r = demux([muxAll(flv.tracks, packets)]);
  const v = r.packets.filter((p) => p.trackId === 0x100);
  const src = packets.filter((p) => p.trackId === videoId);
  assert.deepEqual(v.map((p) => p.timeMs), src.map((p) => p.timeMs));
  assert.ok(v[v.length - 1]!.timeMs > wrapMs, 'past the wrap');
});

test('opusHeadFor: OpusHead for channel_config_code', () => {
  const mono = opusHeadFor(1)!;
  assert.equal(mono.head.toString('hex'), '4f707573486561640101000080bb0000000000');
  const six = opusHeadFor(6)!;
  assert.equal(six.channels, 6);
  assert.equal(six.head[18], 1);
  assert.deepEqual([...six.head.subarray(19)], [4, 2, 0, 4, 1, 2, 3, 5]);
  assert.equal(opusHeadFor(0xff), undefined);
});

// ---- fuzzing ------------------------------------------------------------------------------

function resultOrHaze(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof HazeError)) throw e;
  }
}

test('fuzz: any chunk split gives the packets and tracks of the whole', () => {
  const whole = demux([smallTs]);
  const wholeKeys = whole.packets.map(packetKey);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: smallTs.length - 1 }), { maxLength: 40 }), (cuts) => {
      const sorted = [...new Set(cuts)].sort((a, b) => a - b);
      const chunks: Buffer[] = [];
      let at = 0;
      for (const c of sorted) {
        chunks.push(Buffer.from(smallTs.subarray(at, c)));
        at = c;
      }
      chunks.push(smallTs.subarray(at));
      const r = demux(chunks);
      assert.deepEqual(r.tracks, whole.tracks);
      assert.deepEqual(r.packets.map(packetKey), wholeKeys);
    }),
    { numRuns: 25 },
  );
  // Tiny chunks, and a chunk buffer the caller reuses.
  const d = new TsDemuxer();
  const scratch = Buffer.alloc(7);
  const keys: string[] = [];
  for (let at = 0; at < smallTs.length; at += 7) {
    const n = smallTs.copy(scratch, 0, at, at + 7);
    const r = d.push(scratch.subarray(0, n));
    keys.push(...r.packets.map(packetKey));
  }
  keys.push(...d.end().packets.map(packetKey));
  assert.deepEqual(keys, wholeKeys);
});

test('fuzz: random bytes and random TS packets give a result or a HazeError', () => {
  const start = Date.now();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4000 }), (bytes) => {
      resultOrHaze(() => demux([Buffer.from(bytes)]));
    }),
    { numRuns: 200 },
  );
  // Random bodies behind valid TS headers on the PSI and stream PIDs exercise more than noise.
  const tsPacket = fc.record({
    pid: fc.constantFrom(0, 0x1000, 0x100, 0x101, 0x1fff, 0x20),
    flags: fc.integer({ min: 0, max: 0xff }),
    body: fc.uint8Array({ minLength: 184, maxLength: 184 }),
  });
  fc.assert(
    fc.property(fc.array(tsPacket, { maxLength: 60 }), (pkts) => {
      const buf = Buffer.alloc(pkts.length * 188);
      pkts.forEach((p, k) => {
        buf[k * 188] = 0x47;
        buf[k * 188 + 1] = (p.flags & 0x40) | (p.pid >> 8);
        buf[k * 188 + 2] = p.pid & 0xff;
        buf[k * 188 + 3] = (p.flags & 0x3f) | 0x10;
        buf.set(p.body, k * 188 + 4);
      });
      // Prefix the real PSI so the stream PIDs are known.
      resultOrHaze(() => demux([smallTs.subarray(0, 376), buf]));
    }),
    { numRuns: 150 },
  );
  assert.ok(Date.now() - start < 10_000, 'fuzzing stays fast');
});

test('fuzz: mutated and truncated real streams give a result or a HazeError, quickly', () => {
  const start = Date.now();
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(smallTs.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 60 }),
      fc.nat(smallTs.length),
      (edits, cut) => {
        const buf = Buffer.from(smallTs.subarray(0, Math.max(cut, 1000)));
        for (const [at, v] of edits) if (at < buf.length) buf[at] = v;
        const t0 = Date.now();
        resultOrHaze(() => {
          const r = demux([buf], { maxPesBytes: 1 << 20 });
          for (const p of r.packets) assert.ok(p.data.length <= 1 << 20);
        });
        assert.ok(Date.now() - t0 < 2000, 'one input demuxes in bounded time');
      },
    ),
    { numRuns: 40 },
  );
  assert.ok(Date.now() - start < 15_000, 'fuzzing stays fast');
});

/** A PES in TS packets (payload-only, stuffing by adaptation field in the last packet). */
function pesPackets(pid: number, streamId: number, ptsTicks: number, payload: Buffer, cc: { n: number }): Buffer {
  const pes = Buffer.alloc(14 + payload.length);
  pes.set([0, 0, 1, streamId]);
  pes.writeUInt16BE(8 + payload.length, 4);
  pes.set([0x84, 0x80, 5], 6);
  pes[9] = 0x21 | (Math.floor(ptsTicks / 2 ** 30) << 1);
  pes.writeUInt16BE(((Math.floor(ptsTicks / 2 ** 15) & 0x7fff) << 1) | 1, 10);
  pes.writeUInt16BE(((ptsTicks & 0x7fff) << 1) | 1, 12);
  payload.copy(pes, 14);
  const count = Math.ceil(pes.length / 184);
  const out = Buffer.alloc(count * 188, 0xff);
  for (let k = 0; k < count; k++) {
    const chunk = pes.subarray(k * 184, k * 184 + 184);
    const o = k * 188;
    const af = 184 - chunk.length;
    out.set([0x47, (k === 0 ? 0x40 : 0) | (pid >> 8), pid & 0xff, (af > 0 ? 0x30 : 0x10) | (cc.n++ & 15)], o);
    if (af > 0) {
      out[o + 4] = af - 1;
      if (af > 1) out[o + 5] = 0;
    }
    chunk.copy(out, o + 4 + af);
  }
  return out;
}

test('ADTS frames split over PES packets keep their bytes and sample-counted times', () => {
  const audio = flv.tracks.find((t) => t.type === 'audio')!;
  const src = flv.packets.filter((p) => p.trackId === audio.id).slice(0, 6);
  const mux = new TsMuxer([audio]);
  const psi = mux.psi();
  const asc = parseAsc(audio.init);
  const adts = Buffer.concat(src.map((p) => {
    const b = Buffer.alloc(7 + p.data.length);
    b.set([0xff, 0xf1, ((asc.coreObjectType - 1) << 6) | (asc.samplingIndex << 2) | (asc.channelConfig >> 2)]);
    const len = b.length;
    b[3] = ((asc.channelConfig & 3) << 6) | (len >> 11);
    b[4] = (len >> 3) & 0xff;
    b[5] = ((len & 7) << 5) | 0x1f;
    b[6] = 0xfc;
    p.data.copy(b, 7);
    return b;
  }));
  // Cut in the middle of the third frame; the second PES's PTS is that of the fourth frame.
  const third = 7 * 2 + src[0]!.data.length + src[1]!.data.length + 10;
  const cc = { n: 0 };
  const t0 = 90_000;
  const t3 = t0 + Math.round((3 * 1024 * 90000) / asc.sampleRate);
  const ts = Buffer.concat([
    psi,
    pesPackets(0x100, 0xc0, t0, adts.subarray(0, third), cc),
    pesPackets(0x100, 0xc0, t3, adts.subarray(third), cc),
  ]);
  const r = demux([ts]);
  assert.deepEqual(r.warnings, []);
  assert.equal(r.packets.length, 6);
  r.packets.forEach((p, i) => {
    assert.ok(p.data.equals(src[i]!.data), `frame ${i}`);
    assert.equal(p.timeMs, Math.floor((t0 + Math.round((i * 1024 * 90000) / asc.sampleRate)) / 90), `frame ${i} time`);
  });
  assert.equal(r.packets[2]!.pos, psi.length, 'the split frame belongs to the PES it started in');
});
