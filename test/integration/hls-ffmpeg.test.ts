// HLS playlists against real peers: small.flv cut into TS segments at its video keyframes with
// the TsMuxer, listed by mediaPlaylist + multivariantPlaylist; ffprobe must read the stream
// through the multivariant playlist and ffmpeg must decode exactly the source's video frames.
// The MPD writer's output goes through xmllint when it is installed.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { mistFixtures, parseFramemd5, run, runOk, tmpDir, type FrameLine } from '../helpers.js';
import { parseFlvFile } from '../../src/containers/flv/demux.js';
import { TsMuxer } from '../../src/containers/ts/mux.js';
import { mediaPlaylist, multivariantPlaylist } from '../../src/containers/hls/playlist.js';
import type { HlsSegment, SegmentIndex } from '../../src/containers/hls/segment-index.js';
import { mpd } from '../../src/containers/dash/mpd.js';
import type { AudioTrack, Packet, VideoTrack } from '../../src/media/types.js';

const dir = tmpDir('haze-hls-ffmpeg-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Decodes to framemd5; returns the frames with each stream's media type from the header. */
async function decode(input: string): Promise<{ frames: FrameLine[]; types: Map<number, string> }> {
  const r = await run('ffmpeg', ['-v', 'error', '-i', input, '-f', 'framemd5', '-'], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr.trim(), '', `ffmpeg reported errors decoding ${path.basename(input)}`);
  const text = r.stdout.toString();
  const types = new Map<number, string>();
  for (const m of text.matchAll(/^#media_type (\d+): (\w+)$/gm)) types.set(Number(m[1]), m[2]!);
  return { frames: parseFramemd5(text), types };
}

function videoHashes(d: { frames: FrameLine[]; types: Map<number, string> }): string[] {
  const idx = [...d.types].filter(([, t]) => t === 'video').map(([i]) => i);
  assert.equal(idx.length, 1, 'one video stream');
  return d.frames.filter((f) => f.stream === idx[0]).map((f) => f.hash);
}

test('small.flv as TS segments + playlists: ffprobe and ffmpeg read it through master.m3u8', async () => {
  const src = path.join(mistFixtures, 'small.flv');
  const flv = parseFlvFile(fs.readFileSync(src));
  const video = flv.tracks.find((t): t is VideoTrack => t.type === 'video')!;
  const audio = flv.tracks.find((t): t is AudioTrack => t.type === 'audio')!;
  assert.ok(video && audio);

  // Cut at video keyframes: a segment runs from one keyframe to the next (audio in file order
  // before the next keyframe stays with the segment it arrived in).
  const groups: { startMs: number; packets: Packet[] }[] = [];
  for (const p of flv.packets) {
    if (p.trackId === video.id && p.keyframe && (groups.length === 0 || groups.at(-1)!.packets.some((q) => q.trackId === video.id))) {
      groups.push({ startMs: groups.length === 0 ? 0 : p.timeMs, packets: [] });
    }
    if (groups.length === 0) groups.push({ startMs: 0, packets: [] });
    groups.at(-1)!.packets.push(p);
  }
  assert.ok(groups.length >= 4, `small.flv has 1 s GOPs (${groups.length} segments)`);
  const vids = flv.packets.filter((p) => p.trackId === video.id);
  const frameMs = vids[1]!.timeMs - vids[0]!.timeMs;
  const endMs = Math.max(...flv.packets.map((p) => p.timeMs)) + frameMs;

  const mux = new TsMuxer(flv.tracks);
  const segments: HlsSegment[] = groups.map((g, i) => {
    const uri = `seg_${i}.ts`;
    const ts = g.packets.map((p) => mux.mux(p));
    fs.writeFileSync(path.join(dir, uri), Buffer.concat(ts));
    const next = groups[i + 1]?.startMs ?? endMs;
    return { sequence: i, startMs: g.startMs, durationMs: next - g.startMs, uri };
  });
  const index: SegmentIndex = { segments, ended: true };
  const media = mediaPlaylist(index, { playlistType: 'VOD' });
  fs.writeFileSync(path.join(dir, 'index.m3u8'), media);
  const master = multivariantPlaylist([{ uri: 'index.m3u8', tracks: [video, audio] }], []);
  fs.writeFileSync(path.join(dir, 'master.m3u8'), master);
  assert.match(master, /RESOLUTION=320x180/);
  assert.match(master, /CODECS="avc1\.64[0-9a-f]{4},mp4a\.40\.2"/);
  assert.equal(media.split('\n').filter((l) => l.startsWith('#EXTINF')).length, segments.length);

  const probe = await runOk('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', path.join(dir, 'master.m3u8')]);
  const info = JSON.parse(probe.toString()) as { streams: { codec_name: string; width?: number; height?: number; sample_rate?: string }[]; format: { format_name: string; duration?: string } };
  assert.equal(info.format.format_name, 'hls');
  const v = info.streams.find((s) => s.codec_name === 'h264');
  const a = info.streams.find((s) => s.codec_name === 'aac');
  assert.ok(v && a, JSON.stringify(info.streams));
  assert.equal(v.width, 320);
  assert.equal(v.height, 180);
  assert.equal(a.sample_rate, String(audio.rate));
  // The playlist's EXTINF durations add up to the stream's length.
  assert.ok(Math.abs(Number(info.format.duration) - endMs / 1000) < 0.1, `duration ${info.format.duration} vs ${endMs / 1000}`);

  const want = videoHashes(await decode(src));
  const got = videoHashes(await decode(path.join(dir, 'master.m3u8')));
  assert.equal(want.length, vids.length);
  assert.deepEqual(got, want, 'decoded video frames through HLS equal the source');
});

test('MPD passes xmllint', async (t) => {
  const probe = await run('xmllint', ['--version']).catch(() => undefined);
  if (!probe || probe.code !== 0) {
    t.skip('xmllint not installed (apt-get install libxml2-utils); MPD well-formedness check skipped');
    return;
  }
  const flv = parseFlvFile(fs.readFileSync(path.join(mistFixtures, 'small.flv')));
  const reps = flv.tracks
    .filter((tr): tr is VideoTrack | AudioTrack => tr.type === 'video' || tr.type === 'audio')
    .map((track) => ({ id: String(track.id), track: { ...track, lang: 'e&<"' }, segments: [0, 1000, 2000, 4000].map((startMs) => ({ startMs, durationMs: startMs === 4000 ? 800 : 1000 })) }));
  for (const ended of [false, true]) {
    const file = path.join(dir, `index-${ended}.mpd`);
    fs.writeFileSync(file, mpd(reps, { ended, cmaf: true, availabilityStartTimeMs: Date.now(), publishTimeMs: Date.now(), query: 'a=1&b="2"' }));
    const r = await run('xmllint', ['--noout', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  }
});
