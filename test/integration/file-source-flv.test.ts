// FLV FileSource on a file ffmpeg made (H.264 with B-frames + AAC): every packet's payload,
// times and flags against ffmpeg's own demuxing (-c copy -f framemd5), the same packets as the
// streaming path (readFilePackets), readFrom() on fresh sources from every video key.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseFramemd5, runOk, tmpDir } from '../helpers.js';
import { openFlvSource } from '../../src/inputs/files/flv.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import type { Packet } from '../../src/media/types.js';
import { checkReadFrom, keyPositions, plain, scanAll } from '../unit/file-source-check.js';

const md5 = (b: Buffer): string => crypto.createHash('md5').update(b).digest('hex');

test('ffmpeg FLV (libx264 -bf 2, aac): packets equal ffmpeg\'s; readFrom from every key on a fresh source', async () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'a.flv');
    await runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=25', '-f', 'lavfi', '-i', 'sine=f=440:r=44100', '-t', '4',
      '-c:v', 'libx264', '-preset', 'veryfast', '-bf', '2', '-g', '25', '-c:a', 'aac', '-b:a', '64k', '-ac', '2', file], { timeoutMs: 60_000 });
    const scan = await scanAll(openFlvSource, file);
    assert.ok(scan.tracksFirst);
    assert.deepEqual(scan.tracks!.map((t) => t.codec), ['H264', 'AAC']);
    assert.deepEqual(scan.warnings, []);

    const frames = parseFramemd5((await runOk('ffmpeg', ['-v', 'error', '-i', file, '-c', 'copy', '-f', 'framemd5', '-'])).toString());
    assert.equal(scan.packets.length, frames.length);
    const streamOf = (p: Packet): number => (p.trackId === 1 ? 0 : 1);
    scan.packets.forEach((p, i) => {
      const f = frames[i]!;
      assert.equal(streamOf(p), f.stream, `packet ${i} stream`);
      assert.equal(md5(p.data), f.hash, `packet ${i} payload`);
      // framemd5 shifts all times by one constant (negative-timestamp avoidance): compare from the first packet
      assert.equal(p.timeMs - scan.packets[0]!.timeMs, f.dts - frames[0]!.dts, `packet ${i} dts`);
      assert.equal(p.timeMs + p.offsetMs - scan.packets[0]!.timeMs, f.pts - frames[0]!.dts, `packet ${i} pts`);
    });
    assert.ok(scan.packets.some((p) => p.offsetMs > 0), 'B-frames');

    // the whole-file parser, an independent path
    assert.deepEqual(scan.packets.map(plain), parseFlvFile(fs.readFileSync(file)).packets.map(plain));

    await checkReadFrom(openFlvSource, file, scan, keyPositions(scan, 10, 1));
    await checkReadFrom(openFlvSource, file, scan, keyPositions(scan, 5, 2));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
