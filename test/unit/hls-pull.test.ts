// HLS pulls in-process (inputs/pull/hls-pull.ts, protocols/hls/segment-reader.ts, pacer.ts):
// TS and fMP4 segments written by ffmpeg from one source read back to the source's packets;
// a playlist served by a scripted HTTP server here is followed from its live edge, in order,
// a restart of its media sequence ends the connection, a VoD playlist plays once, the
// highest-bandwidth variant is taken, an ended playlist is not replayed on a reconnect,
// encryption is refused; the segment reader takes any bytes to packets or a HazeError.

import { after, before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import fc from 'fast-check';
import { freePort, mistFixtures, runOk, sleep, tmpDir } from '../helpers.js';
import { HazeError } from '../../src/util/errors.js';
import { Logger } from '../../src/util/log.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { TsDemuxer } from '../../src/containers/ts/demux.js';
import type { Packet, Track } from '../../src/media/types.js';
import { parseM3u8 } from '../../src/containers/hls/parse.js';
import { HlsSegmentReader, segmentFormat } from '../../src/protocols/hls/segment-reader.js';
import { connectHls, hlsPlaylistUrl, isHlsSource, pickVariant, unsupportedFeature } from '../../src/inputs/pull/hls-pull.js';
import { Pacer } from '../../src/inputs/pull/pacer.js';

const dir = tmpDir('haze-hls-pull-');
const tsDir = path.join(dir, 'ts');
const mp4Dir = path.join(dir, 'fmp4');
const SRC = path.join(mistFixtures, 'small.flv');
const log = new Logger({ test: 'hls-pull' });

/** Segment file names of an ffmpeg-written playlist, in order. */
function segmentsOf(folder: string): { init?: string; segments: string[] } {
  const pl = parseM3u8(fs.readFileSync(path.join(folder, 'index.m3u8'), 'utf8'));
  return { ...(pl.mapUri ? { init: pl.mapUri } : {}), segments: pl.segments.map((s) => s.uri) };
}

function digest(packets: readonly Packet[]): string {
  const h = createHash('md5');
  for (const p of packets) h.update(`${p.timeMs}/${p.offsetMs}/${p.keyframe ? 1 : 0}/`).update(p.data);
  return h.digest('hex');
}

before(async () => {
  fs.mkdirSync(tsDir);
  fs.mkdirSync(mp4Dir);
  await Promise.all([
    runOk('ffmpeg', ['-v', 'error', '-i', SRC, '-c', 'copy', '-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', '-hls_segment_filename', path.join(tsDir, 's%d.ts'), path.join(tsDir, 'index.m3u8')]),
    runOk('ffmpeg', ['-v', 'error', '-i', SRC, '-c', 'copy', '-f', 'hls', '-hls_time', '1', '-hls_playlist_type', 'vod', '-hls_segment_type', 'fmp4', '-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', path.join(mp4Dir, 's%d.m4s'), path.join(mp4Dir, 'index.m3u8')]),
  ]);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('sources, schemes, variants and refused features', () => {
  for (const s of ['http://h/a/index.m3u8', 'https://h/x.m3u8?token=1', 'http://h/list.m3u', 'http-hls://h/live', 'https-hls://h/live?x']) assert.ok(isHlsSource(s), s);
  for (const s of ['http://h/a.ts', 'rtmp://h/a.m3u8', '/local/a.m3u8', 'http://h/m3u8']) assert.ok(!isHlsSource(s), s);
  assert.equal(hlsPlaylistUrl('https-hls://h/live'), 'https://h/live');
  assert.equal(hlsPlaylistUrl('http://h/a.m3u8'), 'http://h/a.m3u8');
  const master = parseM3u8('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000\nmid.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2500000,CODECS="avc1.64001f,mp4a.40.2"\nhigh.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=200000\nlow.m3u8\n');
  assert.equal(pickVariant(master)?.uri, 'high.m3u8');
  assert.match(unsupportedFeature('#EXTM3U\n#EXT-X-KEY:METHOD=AES-128,URI="k"\n') ?? '', /EXT-X-KEY/);
  assert.equal(unsupportedFeature('#EXTM3U\n#EXT-X-KEY:METHOD=NONE\n'), undefined);
  assert.match(unsupportedFeature('#EXTM3U\n#EXT-X-BYTERANGE:100@0\n') ?? '', /BYTERANGE/);
  assert.equal(segmentFormat(Buffer.from('WEBVTT\n\n')), undefined);
});

test("TS segments read in order give the source's packets (one demuxer across segments)", async () => {
  const { segments } = segmentsOf(tsDir);
  assert.ok(segments.length >= 4, `${segments.length} segments`);
  const reader = new HlsSegmentReader();
  let tracks: Track[] = [];
  const packets: Packet[] = [];
  for (const s of segments) {
    const bytes = fs.readFileSync(path.join(tsDir, s));
    assert.equal(segmentFormat(bytes), 'ts');
    const m = await reader.read(bytes);
    if (m.tracks) tracks = m.tracks;
    packets.push(...m.packets);
  }
  packets.push(...reader.end().packets);
  // the same bytes as one file through the TS demuxer
  const whole = new TsDemuxer();
  const all = Buffer.concat(segments.map((s) => fs.readFileSync(path.join(tsDir, s))));
  const want = [...whole.push(all).packets, ...whole.end().packets];
  assert.deepEqual(tracks.map((t) => t.codec), ['H264', 'AAC']);
  for (const t of tracks) assert.equal(digest(packets.filter((p) => p.trackId === t.id)), digest(want.filter((p) => p.trackId === t.id)), `track ${t.id}`);
  assert.equal(packets.filter((p) => p.trackId === tracks[0]!.id).length, 120);
});

test("fMP4 segments with their init section give the source's payloads", async () => {
  const { init, segments } = segmentsOf(mp4Dir);
  assert.ok(init, 'EXT-X-MAP');
  const initBytes = fs.readFileSync(path.join(mp4Dir, init));
  const reader = new HlsSegmentReader();
  let tracks: Track[] | undefined;
  let announced = 0;
  const packets: Packet[] = [];
  for (const s of segments) {
    const bytes = fs.readFileSync(path.join(mp4Dir, s));
    assert.equal(segmentFormat(bytes), 'fmp4');
    const m = await reader.read(bytes, initBytes);
    if (m.tracks) {
      tracks = m.tracks;
      announced++;
    }
    packets.push(...m.packets);
  }
  assert.equal(announced, 1, 'the tracks are announced once per init section');
  assert.deepEqual(tracks?.map((t) => t.codec).sort(), ['AAC', 'H264']);
  // the FLV source's payloads (AVCC video, raw AAC), in each track's order
  const flv = parseFlvFile(fs.readFileSync(SRC));
  for (const t of tracks!) {
    const src = flv.packets.filter((p) => p.trackId === (t.type === 'video' ? flv.tracks.find((x) => x.type === 'video')!.id : flv.tracks.find((x) => x.type === 'audio')!.id));
    const got = packets.filter((p) => p.trackId === t.id);
    assert.equal(got.length, src.length, `${t.codec}: packet count`);
    got.forEach((p, i) => assert.ok(p.data.equals(src[i]!.data), `${t.codec} packet ${i}`));
    assert.deepEqual(got.map((p) => p.keyframe), src.map((p) => p.keyframe), `${t.codec}: keyframes`);
  }
  await assert.rejects(new HlsSegmentReader().read(fs.readFileSync(path.join(mp4Dir, segments[0]!))), (e) => e instanceof HazeError, 'a segment without its init section');
});

test('fuzz: the segment reader takes any bytes (as TS or fMP4) to packets or a HazeError', async () => {
  const initBytes = fs.readFileSync(path.join(mp4Dir, 'init.mp4'));
  const seg = fs.readFileSync(path.join(mp4Dir, segmentsOf(mp4Dir).segments[0]!));
  const ts = fs.readFileSync(path.join(tsDir, segmentsOf(tsDir).segments[0]!));
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('ts', 'fmp4', 'init'), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 10 }), async (which, flips) => {
      const base = which === 'ts' ? ts : which === 'fmp4' ? seg : initBytes;
      const b = Buffer.from(base);
      for (const [at, v] of flips) b[at % b.length] = v;
      try {
        if (which === 'init') await new HlsSegmentReader().read(seg, b);
        else await new HlsSegmentReader().read(b, which === 'fmp4' ? initBytes : undefined);
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }),
    { numRuns: 150 },
  );
});

test('the pacer releases packets at the pace of their timestamps, in order, a lead ahead', async () => {
  const out: [number, number][] = [];
  const t0 = Date.now();
  const pacer = new Pacer((p) => out.push([p.timeMs, Date.now() - t0]), { leadMs: 100 });
  const pk = (timeMs: number): Packet => ({ trackId: 1, timeMs, offsetMs: 0, keyframe: false, data: Buffer.alloc(1) });
  pacer.add([pk(1000), pk(1050), pk(1100), pk(1200), pk(1300), pk(1400)]);
  assert.deepEqual(out.map((o) => o[0]), [1000, 1050, 1100], 'the lead goes out at once');
  await pacer.drained();
  assert.deepEqual(out.map((o) => o[0]), [1000, 1050, 1100, 1200, 1300, 1400]);
  assert.ok(out[5]![1] >= 280, `the last one went out after ${out[5]![1]} ms`);
  // far more queued than the bound: released at once down to the bound
  const fast: number[] = [];
  const p2 = new Pacer((p) => fast.push(p.timeMs), { leadMs: 0, maxAheadMs: 100 });
  p2.add(Array.from({ length: 50 }, (_, i) => pk(i * 100)));
  assert.ok(fast.length >= 45, `${fast.length} released at once`);
  p2.stop();
  await p2.drained();
});

/** A scripted HLS origin: the playlist text is set by the test; segment bodies come from a folder. */
class Origin {
  server!: http.Server;
  port = 0;
  playlists = new Map<string, string>();
  requests: string[] = [];

  constructor(private readonly folder: string) {}

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      const name = (req.url ?? '/').slice(1).split('?')[0]!;
      this.requests.push(name);
      const text = this.playlists.get(name);
      if (text !== undefined) {
        res.writeHead(200, { 'Content-Type': 'application/vnd.apple.mpegurl' }).end(text);
        return;
      }
      fs.readFile(path.join(this.folder, path.basename(name)), (err, body) => (err ? res.writeHead(404).end() : res.writeHead(200).end(body)));
    });
    this.port = await freePort();
    await new Promise<void>((r) => this.server.listen(this.port, '127.0.0.1', r));
  }

  url(name: string): string {
    return `http://127.0.0.1:${this.port}/${name}`;
  }

  segmentRequests(): string[] {
    return this.requests.filter((r) => r.endsWith('.ts'));
  }
}

/** A media playlist of the TS segments `from`..`to` (indexes into the ffmpeg-written list). */
function mediaPlaylist(segments: string[], from: number, to: number, opts: { seq?: number; end?: boolean; extra?: string } = {}): string {
  const lines = ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:1', `#EXT-X-MEDIA-SEQUENCE:${opts.seq ?? from}`];
  if (opts.extra) lines.push(opts.extra);
  for (let i = from; i <= to; i++) lines.push('#EXTINF:1.000,', segments[i]!);
  if (opts.end) lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}

class Sink {
  tracks = new Map<number, Track>();
  packets: Packet[] = [];
  setTrack = (t: Track): void => void this.tracks.set(t.id, t);
  removeTrack = (id: number): void => void this.tracks.delete(id);
  push = (p: Packet): void => void this.packets.push(p);
}

async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('following playlists', { concurrency: true }, () => {
  let segs: string[];
  const origins: Origin[] = [];
  /** Each case has an origin of its own (their request logs are checked). */
  const newOrigin = async (): Promise<Origin> => {
    const o = new Origin(tsDir);
    origins.push(o);
    await o.start();
    return o;
  };
  before(() => {
    segs = segmentsOf(tsDir).segments;
  });
  after(() => {
    for (const o of origins) o.server.close();
  });
  const unpaced = { log, paceLeadMs: Infinity };

  it('a live playlist is followed from two segments before its end, in order; a restart ends the connection', async () => {
    const origin = await newOrigin();
    origin.playlists.set('live.m3u8', mediaPlaylist(segs, 0, 2));
    const sink = new Sink();
    const conn = await connectHls(origin.url('live.m3u8'), sink, { ...unpaced, firstConnection: true });
    try {
      await until('segments 1 and 2', () => origin.requests.includes(segs[2]!));
      assert.ok(!origin.requests.includes(segs[0]!), 'playback starts two segments from the end');
      origin.playlists.set('live.m3u8', mediaPlaylist(segs, 1, 3));
      await until('segment 3', () => origin.requests.includes(segs[3]!), 3000);
      assert.deepEqual(origin.segmentRequests(), [segs[1], segs[2], segs[3]]);
      // the writer starts over: the media sequence goes back
      origin.playlists.set('live.m3u8', mediaPlaylist(segs, 0, 0, { seq: 0 }));
      assert.match(await conn.done, /playlist restarted/);
    } finally {
      conn.close();
    }
    assert.deepEqual([...sink.tracks.values()].map((t) => t.codec), ['H264', 'AAC']);
    const video = sink.packets.filter((p) => p.trackId === [...sink.tracks.values()][0]!.id);
    assert.ok(video[0]!.keyframe, 'the first video packet is a keyframe');
    assert.ok(video.length >= 59, `${video.length} video packets of segments 1-3`);
  });

  it('a VoD playlist plays once, then ends the pull; a multivariant playlist gives its highest variant', async () => {
    const origin = await newOrigin();
    origin.playlists.set('master.m3u8', '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000\nlow.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=900000\nvod.m3u8\n');
    origin.playlists.set('low.m3u8', mediaPlaylist(segs, 0, 0, { end: true }));
    origin.playlists.set('vod.m3u8', mediaPlaylist(segs, 0, segs.length - 1, { end: true }));
    const sink = new Sink();
    let ended = '';
    const conn = await connectHls(origin.url('master.m3u8'), sink, { ...unpaced, firstConnection: true, onVodEnd: (why) => (ended = why) });
    try {
      assert.match(await conn.done, /ENDLIST/);
    } finally {
      conn.close();
    }
    assert.match(ended, /VoD playlist played to its end/);
    assert.ok(!origin.requests.includes('low.m3u8'), 'the low variant is not fetched');
    assert.deepEqual(origin.segmentRequests(), segs, 'every segment once, in order');
    const whole = new TsDemuxer();
    const all = Buffer.concat(segs.map((s) => fs.readFileSync(path.join(tsDir, s))));
    const want = [...whole.push(all).packets, ...whole.end().packets];
    for (const id of sink.tracks.keys()) assert.equal(digest(sink.packets.filter((p) => p.trackId === id)), digest(want.filter((p) => p.trackId === id)), `track ${id}: every packet once`);
  });

  it('an ended playlist is not played again on a reconnect: the pull waits for its successor', async () => {
    const origin = await newOrigin();
    origin.playlists.set('ended.m3u8', mediaPlaylist(segs, 1, 3, { end: true }));
    const sink = new Sink();
    const conn = await connectHls(origin.url('ended.m3u8'), sink, { ...unpaced, firstConnection: false });
    try {
      await sleep(700);
      assert.deepEqual(origin.segmentRequests(), [], 'nothing fetched while the playlist stays ended');
      assert.ok(origin.requests.length >= 2, 'the playlist is polled');
      origin.playlists.set('ended.m3u8', mediaPlaylist(segs, 0, 1, { seq: 0 }));
      await until('the new playlist followed', () => sink.packets.length > 0, 3000);
    } finally {
      conn.close();
    }
    assert.equal(await conn.done, 'closed');
  });

  it('encrypted segments are refused (fatal: no retries); a missing playlist is not fatal', async () => {
    const origin = await newOrigin();
    origin.playlists.set('enc.m3u8', mediaPlaylist(segs, 0, 1, { extra: '#EXT-X-KEY:METHOD=AES-128,URI="key"' }));
    await assert.rejects(connectHls(origin.url('enc.m3u8'), new Sink(), { ...unpaced, firstConnection: true }), (e) => e instanceof HazeError && e.code === 'HAZE_ERR_UNSUPPORTED' && e.fatal);
    await assert.rejects(connectHls(origin.url('missing.m3u8'), new Sink(), { ...unpaced, firstConnection: true }), (e) => e instanceof HazeError && !e.fatal);
  });
});
