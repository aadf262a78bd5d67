// Enhanced RTMP/FLV (FourCC): real HEVC (with B-frames), AV1, VP9, Opus and AC-3 packets made
// by ffmpeg (read back with ffprobe -show_data) go through mux -> FLV tags -> demux and must come
// back identical. Debian's ffmpeg 5.1 cannot read enhanced FLV, so the round trip is checked in
// code; the packets and config records themselves are ffmpeg's. Plus hand-built bodies for
// ModEx, Multitrack, Metadata, command frames and MPEG2TSSequenceStart.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fs from 'node:fs';
import { runOk, tmpDir } from '../helpers.js';
import { FlvDemuxer, fourCcValue, parseFlvFile } from '../../src/containers/flv/demux.js';
import { audioTagBody, onMetaDataBody, sequenceHeaderBody, videoTagBody, writeFlvFile } from '../../src/containers/flv/mux.js';
import { readFlvTags } from '../../src/containers/flv/tags.js';
import { decodeAmf0, Amf0EcmaArray } from '../../src/containers/amf/amf0.js';
import type { AudioTrack, Packet, Track, VideoTrack } from '../../src/media/types.js';
import { HazeError } from '../../src/util/errors.js';

interface ProbeStream {
  index: number;
  codec_name: string;
  codec_type: string;
  time_base: string;
  width?: number;
  height?: number;
  extradata?: string;
}
interface ProbePacket {
  stream_index: number;
  pts: number;
  dts: number;
  flags: string;
  data: string;
}

/** ffprobe's `-show_data` hexdump ("00000000: 0000 0c41 ...  ascii") back to bytes. */
function unhexdump(dump: string | undefined): Buffer {
  if (!dump) return Buffer.alloc(0);
  const hexText = dump
    .split('\n')
    .filter((l) => /^[0-9a-f]{8}: /.test(l))
    .map((l) => l.slice(10, 49).replace(/ /g, ''))
    .join('');
  return Buffer.from(hexText, 'hex');
}

const videoCodecs: Record<string, VideoTrack['codec']> = { hevc: 'HEVC', av1: 'AV1', vp9: 'VP9', h264: 'H264' };
const audioCodecs: Record<string, AudioTrack['codec']> = { opus: 'opus', ac3: 'AC3', aac: 'AAC' };

/** Tracks and packets (ms, shifted so the first dts is 0) of a file, as ffmpeg demuxes it. */
async function ffmpegPackets(file: string): Promise<{ tracks: Track[]; packets: Packet[]; streams: ProbeStream[] }> {
  const out = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_streams', '-show_packets', '-show_data', '-of', 'json', file], { timeoutMs: 60_000 })).toString()) as {
    streams: ProbeStream[];
    packets: ProbePacket[];
  };
  const tracks: Track[] = out.streams.map((s): Track => {
    const init = unhexdump(s.extradata);
    if (s.codec_type === 'video') return { type: 'video', id: 1, codec: videoCodecs[s.codec_name]!, init, bps: 0, lang: 'und', width: 0, height: 0, fpks: 0 };
    return { type: 'audio', id: 2, codec: audioCodecs[s.codec_name]!, init, bps: 0, lang: 'und', rate: 0, channels: 0, size: 16 };
  });
  const toMs = (s: ProbeStream, t: number): number => {
    const [num, den] = s.time_base.split('/').map(Number) as [number, number];
    return Math.round((t * 1000 * num) / den);
  };
  const raw = out.packets.map((p) => {
    const s = out.streams[p.stream_index]!;
    const dts = toMs(s, p.dts);
    return { p, dts, offset: toMs(s, p.pts) - dts };
  });
  const minDts = Math.min(...raw.map((r) => r.dts));
  const packets = raw
    .map(({ p, dts, offset }): Packet => ({
      trackId: tracks[p.stream_index]!.id,
      timeMs: dts - minDts,
      offsetMs: offset,
      keyframe: p.flags.startsWith('K'),
      data: unhexdump(p.data),
    }))
    // FLV interleaves by decode time.
    .sort((a, b) => a.timeMs - b.timeMs || a.trackId - b.trackId);
  return { tracks, packets, streams: out.streams };
}

function comparable(packets: Packet[]): unknown[] {
  return packets.map((p) => [p.trackId, p.timeMs, p.offsetMs, p.keyframe, p.data.toString('base64')]);
}

test('enhanced FLV round trip: ffmpeg HEVC (B-frames) + Opus', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'hevc.mp4');
  await runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-f', 'lavfi', '-i', 'sine=f=440:r=48000', '-t', '1', '-c:v', 'libx265', '-x265-params', 'bframes=2:log-level=error', '-c:a', 'libopus', '-b:a', '64k', file], { timeoutMs: 120_000 });
  const src = await ffmpegPackets(file);
  fs.rmSync(dir, { recursive: true, force: true });
  const [hevc, opus] = src.tracks as [VideoTrack, AudioTrack];
  assert.equal(hevc.codec, 'HEVC');
  assert.equal(opus.codec, 'opus');
  assert.equal(opus.init.subarray(0, 8).toString('latin1'), 'OpusHead');
  assert.ok(src.packets.some((p) => p.trackId === 1 && p.offsetMs !== 0), 'B-frames give composition offsets');
  assert.ok(src.packets.some((p) => p.trackId === 1 && p.offsetMs === 0), 'some frames have none');

  const flv = writeFlvFile(src.tracks, src.packets);
  const back = parseFlvFile(flv);
  const v = back.tracks.find((t): t is VideoTrack => t.type === 'video')!;
  const a = back.tracks.find((t): t is AudioTrack => t.type === 'audio')!;
  assert.equal(v.codec, 'HEVC');
  assert.deepEqual(v.init, hevc.init);
  // No width/height in our onMetaData (the source track had 0): they come from the hvcC's SPS.
  const stream = src.streams.find((s) => s.codec_type === 'video')!;
  assert.deepEqual([v.width, v.height], [stream.width, stream.height]);
  assert.deepEqual([a.codec, a.rate, a.channels], ['opus', 48000, 1]);
  assert.deepEqual(a.init, opus.init);
  assert.deepEqual(comparable(back.packets), comparable(src.packets));

  // On the wire: ExVideoTagHeader with 'hvc1'; CodedFramesX (3) when the offset is 0, CodedFrames
  // (1) with an SI24 otherwise; audio is SoundFormat 9 with 'Opus'.
  const { tags } = readFlvTags(flv);
  const meta = decodeAmf0(tags[0]!.body);
  assert.ok(meta[1] instanceof Amf0EcmaArray);
  assert.equal(meta[1].get('videocodecid'), fourCcValue('hvc1'));
  assert.equal(meta[1].get('audiocodecid'), fourCcValue('Opus'));
  const videoTags = tags.filter((t) => t.type === 9);
  assert.equal(videoTags[0]!.body[0], 0x90); // ExHeader, keyframe, SequenceStart
  assert.equal(videoTags[0]!.body.subarray(1, 5).toString('latin1'), 'hvc1');
  const frames = videoTags.slice(1);
  const vpk = src.packets.filter((p) => p.trackId === 1);
  frames.forEach((t, i) => {
    const p = vpk[i]!;
    assert.equal(t.body[0]! & 0x0f, p.offsetMs === 0 ? 3 : 1, `video tag ${i} packet type`);
    assert.equal((t.body[0]! >> 4) & 7, p.keyframe ? 1 : 2);
    assert.equal(t.body.length, 5 + (p.offsetMs === 0 ? 0 : 3) + p.data.length);
  });
  const audioTags = tags.filter((t) => t.type === 8);
  assert.equal(audioTags[0]!.body[0], 0x90); // ExHeader + SequenceStart
  assert.equal(audioTags[1]!.body[0], 0x91); // ExHeader + CodedFrames
  assert.equal(audioTags[1]!.body.subarray(1, 5).toString('latin1'), 'Opus');
});

test('enhanced FLV round trip: ffmpeg AV1 + AC-3, and VP9 without a config record', async () => {
  const dir = tmpDir();
  const av1File = path.join(dir, 'av1.mp4');
  const vp9File = path.join(dir, 'vp9.mp4');
  await Promise.all([
    runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-f', 'lavfi', '-i', 'sine=r=48000', '-t', '0.4', '-c:v', 'libaom-av1', '-cpu-used', '8', '-usage', 'realtime', '-c:a', 'ac3', av1File], { timeoutMs: 120_000 }),
    runOk('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=320x180:r=30', '-t', '0.4', '-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', vp9File], { timeoutMs: 120_000 }),
  ]);
  const [av1, vp9] = await Promise.all([ffmpegPackets(av1File), ffmpegPackets(vp9File)]);
  fs.rmSync(dir, { recursive: true, force: true });

  // AV1: init = av1C (marker/version byte 0x81), size passes through onMetaData.
  const av1Track = { ...(av1.tracks[0] as VideoTrack), width: 320, height: 180, fpks: 30000 };
  assert.equal(av1Track.init[0], 0x81);
  const back = parseFlvFile(writeFlvFile([av1Track, av1.tracks[1]!], av1.packets));
  const v = back.tracks[0] as VideoTrack;
  const a = back.tracks[1] as AudioTrack;
  assert.deepEqual([v.codec, v.width, v.height, v.fpks], ['AV1', 320, 180, 30000]);
  assert.deepEqual(v.init, av1Track.init);
  // AC-3 has no sequence header: the track comes from the first frame's syncinfo/bsi.
  assert.deepEqual([a.codec, a.rate, a.channels, a.init.length], ['AC3', 48000, 1, 0]);
  assert.deepEqual(comparable(back.packets), comparable(av1.packets));

  // VP9 from MP4 has no extradata: no SequenceStart is sent, the track starts with its first frame.
  const vp9Track = vp9.tracks[0] as VideoTrack;
  assert.equal(vp9Track.init.length, 0);
  assert.equal(sequenceHeaderBody(vp9Track), undefined);
  const back9 = parseFlvFile(writeFlvFile([vp9Track], vp9.packets));
  assert.equal((back9.tracks[0] as VideoTrack).codec, 'VP9');
  assert.deepEqual(comparable(back9.packets), comparable(vp9.packets));
});

// ---- hand-built bodies ------------------------------------------------------------------------

const hvcc = Buffer.from('0101600000009000000000003cf000fcfdf8f800000f', 'hex'); // hvcC without arrays
const hevcTrack: VideoTrack = { type: 'video', id: 1, codec: 'HEVC', init: hvcc, bps: 0, lang: 'und', width: 0, height: 0, fpks: 0 };

test('demuxer takes bodies one by one (the RTMP path)', () => {
  const d = new FlvDemuxer();
  const seq = sequenceHeaderBody(hevcTrack)!;
  const r = d.videoBody(0, seq);
  assert.deepEqual(r.track?.init, hvcc);
  assert.equal(r.packet, undefined);
  const p: Packet = { trackId: 1, timeMs: 40, offsetMs: 66, keyframe: false, data: Buffer.from('0000000301020304', 'hex').subarray(0, 7) };
  const got = d.videoBody(40, videoTagBody(hevcTrack, p)).packet!;
  assert.deepEqual(got, p);
  const gotX = d.videoBody(40, videoTagBody(hevcTrack, { ...p, offsetMs: 0, keyframe: true })).packet!;
  assert.deepEqual([gotX.offsetMs, gotX.keyframe], [0, true]);
  // Negative composition offsets (allowed by SI24) survive too.
  assert.equal(d.videoBody(0, videoTagBody(hevcTrack, { ...p, offsetMs: -20 })).packet!.offsetMs, -20);
});

test('ModEx prefixes, Multitrack, Metadata, command frames and SequenceEnd', () => {
  const d = new FlvDemuxer();
  d.videoBody(0, sequenceHeaderBody(hevcTrack)!);
  // ModEx (7) with 3 bytes of TimestampOffsetNano, then CodedFramesX (3): byte 0x03 = type 0 | packet 3.
  const modEx = Buffer.from('a7' + '02' + '0f4240' + '03' + '68766331' + 'cafe', 'hex');
  assert.deepEqual(d.videoBody(10, modEx).packet?.data, Buffer.from('cafe', 'hex'));
  // ModEx with the 16-bit size form (u8 255 -> u16 + 1).
  const big = Buffer.concat([Buffer.from('a7ff0003', 'hex'), Buffer.alloc(4), Buffer.from('03' + '68766331' + 'beef', 'hex')]);
  assert.deepEqual(d.videoBody(10, big).packet?.data, Buffer.from('beef', 'hex'));
  // Multitrack (6), ManyTracks (1) of CodedFramesX (3), FourCC hvc1: track 1 then track 0; track 0 wins.
  const mt = Buffer.from('96' + '13' + '68766331' + '01' + '000002' + 'aaaa' + '00' + '000003' + 'bbbbbb', 'hex');
  assert.deepEqual(d.videoBody(20, mt).packet?.data, Buffer.from('bbbbbb', 'hex'));
  // ManyTracksManyCodecs (2): a FourCC per track.
  const mtc = Buffer.from('96' + '23' + '61763031' + '01' + '000001' + 'aa' + '68766331' + '00' + '000002' + 'cccc', 'hex');
  assert.deepEqual(d.videoBody(20, mtc).packet?.data, Buffer.from('cccc', 'hex'));
  // OneTrack (0): the rest of the body is the track.
  const one = Buffer.from('96' + '03' + '68766331' + '00' + 'dddd', 'hex');
  assert.deepEqual(d.videoBody(20, one).packet?.data, Buffer.from('dddd', 'hex'));
  // Metadata (4) carries AMF colorInfo; the frame type bits are ignored.
  assert.deepEqual(d.videoBody(0, Buffer.from('d4' + '68766331' + '02000963', 'hex')), {});
  // Command frame (frame type 5) carries one command byte and no picture.
  assert.deepEqual(d.videoBody(0, Buffer.from('d1' + '00', 'hex')), {});
  assert.deepEqual(d.videoBody(0, Buffer.from('92' + '68766331', 'hex')), {});
  // Unknown FourCC and nested Multitrack are controlled failures.
  assert.throws(() => d.videoBody(0, Buffer.from('9378787878', 'hex')), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_UNSUPPORTED');
  assert.throws(() => d.videoBody(0, Buffer.from('9606', 'hex')), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED');
});

test('AV1 MPEG2TSSequenceStart gives an init when no av1C came', () => {
  const d = new FlvDemuxer();
  const r = d.videoBody(0, Buffer.from('95' + '61763031' + '8004' + '81000c00', 'hex'));
  assert.deepEqual([r.track?.codec, r.track?.init.toString('hex')], ['AV1', '81000c00']);
});

test('enhanced audio: mp4a, .mp3, fLaC, Opus defaults, MultichannelConfig, unknown FourCC', () => {
  const d = new FlvDemuxer();
  const aac = d.audioBody(0, Buffer.from('90' + '6d703461' + '1190', 'hex'));
  assert.deepEqual([aac.track?.codec, aac.track?.rate, aac.track?.channels], ['AAC', 48000, 2]);
  assert.deepEqual(d.audioBody(0, Buffer.from('91' + '6d703461' + '2100', 'hex')).packet?.data, Buffer.from('2100', 'hex'));
  // MP3 frame header ff fb 90 c4: MPEG-1 layer III, 44.1 kHz, mono (mode 3).
  const mp3 = d.audioBody(0, Buffer.from('91' + '2e6d7033' + 'fffb90c4', 'hex'));
  assert.deepEqual([mp3.track?.codec, mp3.track?.rate, mp3.track?.channels], ['MP3', 44100, 1]);
  // FLAC: "fLaC" + STREAMINFO block header + 34 bytes; 44.1 kHz, 2 channels.
  const streaminfo = Buffer.from('1000' + '1000' + '000000' + '000000' + '0ac442f0' + '00000000' + '00'.repeat(16), 'hex');
  const flac = d.audioBody(0, Buffer.concat([Buffer.from('90' + '664c6143' + '664c6143' + '80000022', 'hex'), streaminfo]));
  assert.deepEqual([flac.track?.codec, flac.track?.rate, flac.track?.channels], ['FLAC', 44100, 2]);
  // Opus with an empty ID header: 48 kHz stereo defaults; MultichannelConfig then sets 6 channels.
  const o = new FlvDemuxer();
  const opus = o.audioBody(0, Buffer.from('90' + '4f707573', 'hex'));
  assert.deepEqual([opus.track?.rate, opus.track?.channels], [48000, 2]);
  const mc = o.audioBody(0, Buffer.from('94' + '4f707573' + '01' + '06' + '0000003f', 'hex'));
  assert.equal(mc.track?.channels, 6);
  assert.deepEqual(o.audioBody(0, Buffer.from('92' + '4f707573', 'hex')), {});
  assert.throws(() => o.audioBody(0, Buffer.from('91' + '65632d33' + '00', 'hex')), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_UNSUPPORTED');
  // Muxing Opus: SequenceStart even with an empty OpusHead, CodedFrames with the FourCC.
  const opusTrack = opus.track!;
  assert.deepEqual(sequenceHeaderBody(opusTrack), Buffer.from('904f707573', 'hex'));
  assert.deepEqual(audioTagBody(opusTrack, { trackId: 2, timeMs: 0, offsetMs: 0, keyframe: true, data: Buffer.from([0xfc]) }), Buffer.from('914f707573fc', 'hex'));
});

test('onMetaData for enhanced codecs uses FourCC values as codec ids', () => {
  const body = onMetaDataBody([
    { ...hevcTrack, width: 1920, height: 1080, fpks: 29970, bps: 500_000 },
    { type: 'audio', id: 2, codec: 'opus', init: Buffer.alloc(0), bps: 16000, lang: 'und', rate: 48000, channels: 2, size: 16 },
  ]);
  const [name, m] = decodeAmf0(body);
  assert.equal(name, 'onMetaData');
  assert.ok(m instanceof Amf0EcmaArray);
  assert.deepEqual(Object.fromEntries(m), {
    duration: 0,
    width: 1920,
    height: 1080,
    framerate: 29.97,
    videodatarate: 4000,
    videocodecid: 0x68766331,
    audiodatarate: 128,
    audiocodecid: 0x4f707573,
    audiosamplerate: 48000,
    audiosamplesize: 16,
    audiochannels: 2,
    stereo: true,
    encoder: 'Haze',
  });
});
