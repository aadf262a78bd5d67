// The VoD index cache (reference §2.5): the first open scans a file and writes its `.dtsh`;
// a later open (another worker, a restart) reads the sidecar instead of scanning; a changed
// file or a broken sidecar is scanned again; MistServer's own `.dtsh` files are read and played
// from (their key positions are where Haze's readers seek).

import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, tmpDir } from '../helpers.js';
import { VodLibrary, dtshPath, DTSH_MIN_AGE_MS } from '../../src/vod/vod-library.js';
import { readVod } from '../../src/vod/vod-reader.js';
import { readDtscHeader } from '../../src/containers/dtsc/header.js';
import { openFileSource } from '../../src/inputs/files/open.js';
import { Logger, addLogSink } from '../../src/util/log.js';
import type { Packet } from '../../src/media/types.js';

const scans: string[] = [];
addLogSink((level, msg) => {
  if (level === 'info' && msg.startsWith('indexed ')) scans.push(msg);
});

function aged(file: string, ageMs: number): void {
  const t = new Date(Date.now() - ageMs);
  fs.utimesSync(file, t, t);
}

async function all(lib: VodLibrary, file: string): Promise<Packet[]> {
  const f = await lib.open(file);
  const out: Packet[] = [];
  for await (const p of readVod(f, { startMs: 0, trackIds: f.index.tracks.map((t) => t.track.id) })) out.push(p);
  return out;
}

const sig = (p: Packet): string => `${p.trackId}/${p.timeMs}/${p.offsetMs}/${p.data.toString('base64')}`;

test('the first open writes the .dtsh, later opens use it, a changed file is scanned again', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'small.flv');
  fs.copyFileSync(path.join(mistFixtures, 'small.flv'), file);
  aged(file, 3600_000);
  scans.length = 0;
  const lib1 = new VodLibrary(new Logger());
  const first = await all(lib1, file);
  assert.equal(scans.length, 1, 'scanned once');
  assert.ok(fs.existsSync(dtshPath(file)), '.dtsh written');
  assert.equal(readDtscHeader(fs.readFileSync(dtshPath(file))).version, 4);
  // a second worker: reads the sidecar, plays the same packets
  const lib2 = new VodLibrary(new Logger());
  assert.deepEqual((await all(lib2, file)).map(sig), first.map(sig));
  assert.equal(scans.length, 1, 'the sidecar spared the scan');
  // the file changes (its first tag appended again, mtime now): the old sidecar is not used, a new one is written
  const before = fs.statSync(dtshPath(file)).mtimeMs;
  fs.appendFileSync(file, fs.readFileSync(file).subarray(13, 13 + 11 + fs.readFileSync(file).readUIntBE(14, 3) + 4));
  const lib3 = new VodLibrary(new Logger());
  const grown = await all(lib3, file);
  assert.equal(scans.length, 2, 'a sidecar older than its changed file is not used');
  assert.ok(fs.statSync(dtshPath(file)).mtimeMs > before, 'the sidecar was rewritten');
  // a broken sidecar: ignored, the file scanned
  fs.writeFileSync(dtshPath(file), Buffer.from('DTSC\0\0\0\x05junk!'));
  const lib4 = new VodLibrary(new Logger());
  assert.deepEqual((await all(lib4, file)).map(sig), grown.map(sig));
  assert.equal(scans.length, 3);
  for (const l of [lib1, lib2, lib3, lib4]) l.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a .dtsh younger than 15 s after its file changed is not trusted (the file may still grow)', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'small.flv');
  fs.copyFileSync(path.join(mistFixtures, 'small.flv'), file);
  scans.length = 0;
  const lib = new VodLibrary(new Logger());
  await all(lib, file);
  const again = new VodLibrary(new Logger());
  await all(again, file);
  assert.equal(scans.length, 2, `a fresh file is scanned each time (${DTSH_MIN_AGE_MS} ms rule)`);
  lib.close();
  again.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

for (const name of ['small.mp4', 'small.flv']) {
  test(`MistServer's ${name}.dtsh plays: seeking by its key positions gives the file's packets`, async () => {
    const dir = tmpDir();
    const file = path.join(dir, name);
    fs.copyFileSync(path.join(mistFixtures, name), file);
    fs.copyFileSync(path.join(mistFixtures, `${name}.dtsh`), dtshPath(file));
    aged(file, 3600_000);
    scans.length = 0;
    const lib = new VodLibrary(new Logger());
    const f = await lib.open(file);
    assert.equal(scans.length, 0, 'MistServer\'s sidecar used');
    // every packet of the file, as the reader scans it (media tracks; MistServer's FLV input adds a JSON meta track)
    const src = await openFileSource(file);
    const want: Packet[] = [];
    for await (const c of src.scan()) want.push(...c.packets);
    await src.close();
    const media = f.index.tracks.filter((t) => t.track.type === 'video' || t.track.type === 'audio').map((t) => t.track.id);
    const got: Packet[] = [];
    for await (const p of readVod(f, { startMs: 0, trackIds: media })) got.push(p);
    assert.deepEqual(got.map(sig).sort(), want.map(sig).sort());
    // from each video key: the first packet is that keyframe
    const video = f.index.tracks.find((t) => t.track.type === 'video')!;
    for (const k of video.tables.keys) {
      const it = readVod(f, { startMs: k.timeMs, trackIds: media });
      const first = (await it.next()).value as Packet;
      await it.return();
      assert.equal(first.timeMs, k.timeMs, `seek to ${k.timeMs} ms`);
    }
    lib.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
}
