// Matroska file source on files made in-process: small.mp4's packets (H.264 with B-frames +
// AAC) through Haze's progressive writer (unknown sizes, no Cues), and a hand-built file with
// Xiph-, fixed- and EBML-laced blocks and BlockGroups. scan() equals readFilePackets, bpos are
// Cluster offsets, readFrom(bpos) on fresh sources equals scan() from there; random / mutated /
// truncated files give only HazeErrors naming the file.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, tmpDir } from '../helpers.js';
import { openMkvSource } from '../../src/inputs/files/mkv.js';
import { openMp4Source } from '../../src/inputs/files/mp4.js';
import { MatroskaWriter } from '../../src/containers/mkv/writer.js';
import { isHazeError } from '../../src/util/errors.js';
import type { Track } from '../../src/media/types.js';
import { checkReadFrom, checkScanMatchesLegacy, fuzzSource, keyPositions, readAll, scanFile } from './file-source-common.js';

const dir = tmpDir('haze-fs-mkv-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const written = path.join(dir, 'small.mkv');
const laced = path.join(dir, 'laced.mkv');
let aac: Track;

/** An element with an 8-byte size field (simple to build, valid EBML). */
function el(idHex: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const size = Buffer.alloc(8);
  size[0] = 0x01;
  size.writeUIntBE(body.length, 2, 6);
  return Buffer.concat([Buffer.from(idHex, 'hex'), size, body]);
}

function frames(seed: number, sizes: number[]): Buffer[] {
  return sizes.map((n, i) => Buffer.alloc(n, (seed * 7 + i) & 0xff));
}

/** Block payload: track 1, relative time, flags with lacing bits, lace data. */
function block(relMs: number, flags: number, lace: Buffer, fr: Buffer[]): Buffer {
  const h = Buffer.alloc(4);
  h[0] = 0x81;
  h.writeInt16BE(relMs, 1);
  h[3] = flags;
  return Buffer.concat([h, Buffer.from([fr.length - 1]), lace, ...fr]);
}

function xiphSizes(fr: Buffer[]): Buffer {
  const out: number[] = [];
  for (const f of fr.slice(0, -1)) {
    let n = f.length;
    while (n >= 255) {
      out.push(255);
      n -= 255;
    }
    out.push(n);
  }
  return Buffer.from(out);
}

/** EBML lacing: first size as a 2-byte VINT, then signed differences (2-byte, bias 8191). */
function ebmlSizes(fr: Buffer[]): Buffer {
  const out = Buffer.alloc(2 * (fr.length - 1));
  out.writeUInt16BE(0x4000 | fr[0]!.length, 0);
  for (let i = 1; i < fr.length - 1; i++) out.writeUInt16BE(0x4000 | (fr[i]!.length - fr[i - 1]!.length + 8191), 2 * i);
  return out;
}

before(async () => {
  const src = await openMp4Source(path.join(mistFixtures, 'small.mp4'));
  const s = await scanFile(openMp4Source, path.join(mistFixtures, 'small.mp4'));
  await src.close();
  const w = new MatroskaWriter(s.tracks, { webm: false });
  fs.writeFileSync(written, Buffer.concat([w.header(), ...s.packets.map((p) => w.packet(p))]));

  aac = s.tracks.find((t) => t.type === 'audio')!;
  const aw = new MatroskaWriter([aac], { webm: false });
  const clusters: Buffer[] = [];
  for (let c = 0; c < 6; c++) {
    const a = frames(c, [300, 10, 520]);
    const b = frames(c + 50, [64, 64]);
    const g = frames(c + 90, [100, 90, 130]);
    clusters.push(
      el('1f43b675',
        el('e7', Buffer.from([0, 0, c])), // Timestamp c*256 ms
        el('a3', block(0, 0x82, xiphSizes(a), a)),
        el('a3', block(40, 0x84, Buffer.alloc(0), b)),
        el('a0', el('a1', block(80, 0x06, ebmlSizes(g), g)), el('9b', Buffer.from([60]))),
      ),
    );
  }
  fs.writeFileSync(laced, Buffer.concat([aw.header(), ...clusters]));
});

test('writer-made file (unknown sizes, no Cues): scan() equals readFilePackets, readFrom from Cluster offsets', async () => {
  const s = await checkScanMatchesLegacy(openMkvSource, written);
  const bytes = fs.readFileSync(written);
  for (const p of s.packets) assert.equal(bytes.readUInt32BE(p.bpos), 0x1f43b675);
  const video = s.tracks.find((t) => t.type === 'video')!.id;
  const keys = keyPositions(s, 8, video);
  assert.ok(keys.length >= 3);
  await checkReadFrom(openMkvSource, written, s, [...keys, s.packets.at(-1)!.bpos]);
});

test('laced blocks and BlockGroups: every frame, same from any Cluster', async () => {
  const s = await checkScanMatchesLegacy(openMkvSource, laced);
  assert.equal(s.packets.length, 6 * 8);
  assert.deepEqual(s.packets.slice(0, 8).map((p) => p.data.length), [300, 10, 520, 64, 64, 100, 90, 130]);
  await checkReadFrom(openMkvSource, laced, s, [...new Set(s.packets.map((p) => p.bpos))]);
});

test('a missing file is HAZE_ERR_NOT_FOUND naming it; closed sources refuse', async () => {
  const missing = path.join(dir, 'none.mkv');
  await assert.rejects(openMkvSource(missing), (e: unknown) => isHazeError(e) && e.code === 'HAZE_ERR_NOT_FOUND' && e.message.includes(missing));
  const src = await openMkvSource(written);
  await src.close();
  await src.close();
  await assert.rejects(readAll(src, 0, []), (e: unknown) => isHazeError(e) && e.code === 'HAZE_ERR_CLOSED');
});

test('a file cut inside a block ends quietly with a warning', async () => {
  const cut = path.join(dir, 'cut.mkv');
  const bytes = fs.readFileSync(written);
  fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 1000));
  const s = await scanFile(openMkvSource, cut);
  assert.ok(s.packets.length > 0);
  assert.ok(s.warnings.some((w) => w.includes('ends inside an element')), s.warnings.join('; '));
});

test('fuzz: random, mutated and truncated files give packets or HazeErrors naming the file', async () => {
  await fuzzSource(openMkvSource, fs.readFileSync(written), dir, 'mkv', 100);
  await fuzzSource(openMkvSource, fs.readFileSync(laced), dir, 'mkv', 50);
});
