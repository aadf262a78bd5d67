// `haze analyse` against files ffmpeg made (packet counts per track vs ffprobe -show_packets,
// --validate passes), an http:// URL and an HLS playlist served by a node:http server in the
// test, and a dtsc:// pull from a TCP server replaying MistServer's own bytes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { mistFixtures, runOk, tmpDir } from '../helpers.js';
import { probePackets } from '../media-files.js';
import { analyseInput, type AnalyseOutput, type AnalyseResult } from '../../src/analyse/run.js';
import type { Track } from '../../src/media/types.js';

let dir: string;
const quiet = (): AnalyseOutput & { lines: string[] } => {
  const lines: string[] = [];
  return { lines, line: (t) => void lines.push(t), problem: () => undefined };
};

before(() => {
  dir = tmpDir('haze-analyse-it-');
});
after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const AV = ['-f', 'lavfi', '-i', 'testsrc2=size=160x90:rate=25:duration=1', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=1'];
const H264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-bf', '2', '-g', '25', '-pix_fmt', 'yuv420p'];

const FILES: { name: string; args: string[] }[] = [
  { name: 'av.flv', args: [...AV, ...H264, '-c:a', 'aac', '-b:a', '64k'] },
  { name: 'av.ts', args: [...AV, ...H264, '-c:a', 'aac', '-b:a', '64k'] },
  { name: 'av.mkv', args: [...AV, ...H264, '-c:a', 'aac', '-b:a', '64k'] },
  { name: 'av.webm', args: [...AV, '-c:v', 'libvpx', '-deadline', 'realtime', '-b:v', '200k', '-c:a', 'libopus'] },
  { name: 'av.mp4', args: [...AV, ...H264, '-c:a', 'aac', '-b:a', '64k'] },
  { name: 'frag.mp4', args: [...AV, ...H264, '-c:a', 'aac', '-movflags', 'frag_keyframe+empty_moov'] },
  { name: 'a.ogg', args: [...AV.slice(4), '-c:a', 'libopus'] },
  { name: 'a.wav', args: [...AV.slice(4), '-c:a', 'pcm_s16le'] },
  { name: 'a.mp3', args: [...AV.slice(4), '-c:a', 'libmp3lame'] },
  { name: 'a.aac', args: [...AV.slice(4), '-c:a', 'aac', '-f', 'adts'] },
];

function byType(res: AnalyseResult): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of res.summary.tracks.values()) {
    const t = res.tracks.find((x: Track) => x.id === s.trackId);
    const k = t?.type ?? 'unknown';
    out[k] = (out[k] ?? 0) + s.packets;
  }
  return out;
}

for (const f of FILES) {
  test(`${f.name}: packets per track match ffprobe and --validate passes`, async () => {
    const file = path.join(dir, f.name);
    await runOk('ffmpeg', ['-v', 'error', '-y', ...f.args, file]);
    const out = quiet();
    const res = await analyseInput(file, {}, out);
    assert.deepEqual(res.problems, [], out.lines.slice(0, 30).join('\n'));
    const got = byType(res);
    if (f.name.endsWith('.wav')) {
      // WAV has no packets of its own: 1024-frame blocks; check the sample count instead
      assert.equal(got.audio, Math.ceil(48000 / 1024));
      return;
    }
    const probed = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_type', '-of', 'json', file])).toString()) as { streams: { codec_type: string }[] };
    const streams = probed.streams;
    const want: Record<string, number> = {};
    for (const p of await probePackets(file)) {
      const type = streams[p.stream_index]!.codec_type;
      want[type] = (want[type] ?? 0) + 1;
    }
    assert.deepEqual(got, want);
  });
}

test('an http URL of a file: sniffed from its bytes and validated', async () => {
  const flv = fs.readFileSync(path.join(mistFixtures, 'small.flv'));
  const server = http.createServer((req, res) => {
    if (req.url === '/small') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': flv.length });
      res.end(flv);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const res = await analyseInput(`http://127.0.0.1:${port}/small`, {}, quiet());
    assert.equal(res.container, 'flv');
    assert.deepEqual(res.problems, []);
    assert.equal(res.packets, 309);
    const missing = await analyseInput(`http://127.0.0.1:${port}/nope`, {}, quiet());
    assert.match(missing.ioError ?? '', /404/);
  } finally {
    server.close();
  }
});

test('an HLS playlist: printed, checked, its first segments analysed', async () => {
  const hlsDir = path.join(dir, 'hls');
  fs.mkdirSync(hlsDir);
  await runOk('ffmpeg', ['-v', 'error', '-y', ...AV.map((a) => a.replace('duration=1', 'duration=4')), ...H264, '-c:a', 'aac', '-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', path.join(hlsDir, 'index.m3u8')]);
  const server = http.createServer((req, res) => {
    const file = path.join(hlsDir, path.basename(req.url ?? ''));
    if (!fs.existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': file.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t' });
    res.end(fs.readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const out = quiet();
    const res = await analyseInput(`http://127.0.0.1:${port}/index.m3u8`, { hlsSegments: 2 }, out);
    assert.equal(res.container, 'hls');
    assert.deepEqual(res.problems, [], out.lines.join('\n'));
    assert.ok(out.lines.some((l) => l.startsWith('HLS media playlist')));
    assert.equal(out.lines.filter((l) => l.startsWith('segment ') && l.includes('http://')).length, 2);
    let want = 0;
    for (const seg of ['index0.ts', 'index1.ts']) want += (await probePackets(path.join(hlsDir, seg))).length;
    assert.equal(res.packets, want);
  } finally {
    server.close();
  }
});

test('dtsc:// pull: play command sent, MistServer bytes described, pings answered', async () => {
  const wireBytes = fs.readFileSync(path.join(mistFixtures, 'small-mp4.dtsc-wire'));
  let play = '';
  let pong = false;
  const server = net.createServer((sock) => {
    sock.once('data', (d) => {
      play = d.toString('latin1');
      // a ping first (A.2), then what MistServer sent
      sock.write(Buffer.from('4454434d00000012e000036d6d64020000000470696e670000ee'.replace('6d6d64', '636d64'), 'hex'));
      sock.write(wireBytes);
      sock.on('data', (x) => {
        if (x.toString('latin1').includes('Pong!')) pong = true;
      });
      setTimeout(() => sock.end(), 100);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  try {
    const res = await analyseInput(`dtsc://127.0.0.1:${port}/vod+small.mp4`, { liveMs: 3000 }, quiet());
    assert.match(play, /play/);
    assert.match(play, /vod\+small\.mp4/);
    assert.deepEqual(res.problems, []);
    assert.equal(res.packets, 119 + 188);
    assert.ok(pong, 'the ping was answered');
    const limited = await analyseInput(`dtsc://127.0.0.1:${port}/vod+small.mp4`, { liveMs: 3000, limit: 10 }, quiet());
    assert.equal(limited.packets, 10);
    assert.deepEqual(limited.problems, []);
  } finally {
    server.close();
  }
});
