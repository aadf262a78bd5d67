// FLV demux/mux against ffmpeg: small.flv's packets (payload md5, dts, pts) must equal what
// `ffmpeg -c copy -f framemd5` sees, and an FLV written back from Haze's tracks/packets must look
// the same to ffmpeg, packet for packet. Also MP3 and G.711 FLVs made by ffmpeg, legacy body
// details, and fuzzing of the demuxer with random and mutated bodies.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { mistFixtures, parseFramemd5, runOk, tmpDir, type FrameLine } from '../helpers.js';
import { FlvDemuxer, parseFlvFile } from '../../src/containers/flv/demux.js';
import { audioTagBody, onMetaDataBody, sequenceHeaderBody, videoTagBody, writeFlvFile } from '../../src/containers/flv/mux.js';
import { FlvTagReader, readFlvTags } from '../../src/containers/flv/tags.js';
import { decodeAmf0, Amf0EcmaArray } from '../../src/containers/amf/amf0.js';
import type { AudioTrack, Packet, VideoTrack } from '../../src/media/types.js';
import { HazeError } from '../../src/util/errors.js';

const smallPath = path.join(mistFixtures, 'small.flv');
const smallFlv = fs.readFileSync(smallPath);
const md5 = (b: Buffer): string => crypto.createHash('md5').update(b).digest('hex');

/** ffmpeg's view of a file's packets, with the file's own timestamps (-copyts). */
async function framemd5(file: string): Promise<{ frames: FrameLine[]; extradata: string[] }> {
  const text = (await runOk('ffmpeg', ['-v', 'error', '-i', file, '-c', 'copy', '-copyts', '-f', 'framemd5', '-'])).toString();
  return { frames: parseFramemd5(text), extradata: text.split('\n').filter((l) => l.startsWith('#extradata')) };
}

test('small.flv: tracks and packets equal ffmpeg framemd5 (payload, dts, pts)', async () => {
  const { tracks, packets } = parseFlvFile(smallFlv);
  const video = tracks.find((t): t is VideoTrack => t.type === 'video')!;
  const audio = tracks.find((t): t is AudioTrack => t.type === 'audio')!;
  assert.equal(video.codec, 'H264');
  assert.equal(video.id, 1);
  assert.equal(audio.codec, 'AAC');
  assert.equal(audio.id, 2);
  assert.equal(video.width, 320);
  assert.equal(video.height, 180);
  assert.equal(video.fpks, 30000);
  assert.equal(audio.rate, 48000);
  assert.equal(audio.channels, 2);

  const ff = await framemd5(smallPath);
  // The extradata lines carry md5s of the avcC and the AudioSpecificConfig.
  assert.match(ff.extradata[0]!, new RegExp(`^#extradata 0,\\s+${video.init.length}, ${md5(video.init)}$`));
  assert.match(ff.extradata[1]!, new RegExp(`^#extradata 1,\\s+${audio.init.length}, ${md5(audio.init)}$`));

  assert.equal(packets.length, ff.frames.length);
  assert.equal(packets.length, 309);
  packets.forEach((p, i) => {
    const f = ff.frames[i]!;
    assert.equal(p.trackId, f.stream === 0 ? 1 : 2, `packet ${i} track`);
    assert.equal(md5(p.data), f.hash, `packet ${i} payload`);
    assert.equal(p.timeMs, f.dts, `packet ${i} dts`);
    assert.equal(p.offsetMs, f.pts - f.dts, `packet ${i} composition offset`);
  });
  // B-frames: some composition offsets are non-zero, and the first video packet is a keyframe.
  assert.ok(packets.some((p) => p.trackId === 1 && p.offsetMs > 0));
  assert.ok(packets.find((p) => p.trackId === 1)!.keyframe);
});

test('small.flv written back with mux + tags reads the same in ffmpeg', async () => {
  const { tracks, packets } = parseFlvFile(smallFlv);
  const dir = tmpDir();
  const out = path.join(dir, 'out.flv');
  fs.writeFileSync(out, writeFlvFile(tracks, packets));
  const [a, b] = await Promise.all([framemd5(smallPath), framemd5(out)]);
  assert.deepEqual(b.extradata, a.extradata);
  assert.equal(b.frames.length, a.frames.length);
  b.frames.forEach((f, i) => {
    const o = a.frames[i]!;
    assert.deepEqual([f.stream, f.dts, f.pts, f.size, f.hash], [o.stream, o.dts, o.pts, o.size, o.hash], `packet ${i}`);
  });
  // ffprobe reads our onMetaData.
  const probe = JSON.parse((await runOk('ffprobe', ['-v', 'error', '-show_format', '-show_streams', '-of', 'json', out])).toString()) as {
    format: { tags?: Record<string, string> };
    streams: { codec_name: string; width?: number; height?: number; sample_rate?: string; channels?: number }[];
  };
  assert.equal(probe.format.tags?.['encoder'], 'Haze');
  assert.deepEqual(
    probe.streams.map((s) => s.codec_name),
    ['h264', 'aac'],
  );
  assert.equal(probe.streams[0]!.width, 320);
  assert.equal(probe.streams[1]!.sample_rate, '48000');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('MP3 and G.711 FLVs made by ffmpeg: rate/channels from headers, payloads equal', async () => {
  const dir = tmpDir();
  const cases = [
    { file: 'mp3.flv', args: ['-f', 'lavfi', '-i', 'sine=r=22050', '-t', '0.5', '-c:a', 'libmp3lame', '-ac', '1'], codec: 'MP3', rate: 22050, channels: 1 },
    { file: 'mp3s.flv', args: ['-f', 'lavfi', '-i', 'sine=r=48000', '-t', '0.5', '-c:a', 'libmp3lame', '-ac', '2'], codec: 'MP3', rate: 48000, channels: 2 },
    { file: 'alaw.flv', args: ['-f', 'lavfi', '-i', 'sine=r=8000', '-t', '0.5', '-c:a', 'pcm_alaw'], codec: 'ALAW', rate: 8000, channels: 1 },
    { file: 'ulaw.flv', args: ['-f', 'lavfi', '-i', 'sine=r=8000', '-t', '0.5', '-c:a', 'pcm_mulaw'], codec: 'ULAW', rate: 8000, channels: 1 },
  ];
  await Promise.all(cases.map(async (c) => {
    const file = path.join(dir, c.file);
    await runOk('ffmpeg', ['-v', 'error', '-y', ...c.args, file]);
    const { tracks, packets } = parseFlvFile(fs.readFileSync(file));
    assert.equal(tracks.length, 1, c.file);
    const a = tracks[0] as AudioTrack;
    assert.deepEqual([a.codec, a.rate, a.channels], [c.codec, c.rate, c.channels], c.file);
    const ff = await framemd5(file);
    assert.deepEqual(
      packets.map((p) => [md5(p.data), p.timeMs]),
      ff.frames.map((f) => [f.hash, f.dts]),
      c.file,
    );
    // Written back (legacy audio tag flags), ffmpeg sees the same packets.
    const back = path.join(dir, `back-${c.file}`);
    fs.writeFileSync(back, writeFlvFile(tracks, packets));
    const ff2 = await framemd5(back);
    assert.deepEqual(ff2.frames, ff.frames, `${c.file} written back`);
  }));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('legacy AVC bodies: signed composition time, end of sequence, command frames, missing seq header', () => {
  const d = new FlvDemuxer({ videoTrackId: 7 });
  const avcC = Buffer.from('0164000dffe1001a6764000dacd941419f9f0110000003001000000303c0f142996001000468efbcb0fdf8f800', 'hex');
  // A frame before any sequence header is dropped (H.264 needs its avcC).
  assert.deepEqual(d.videoBody(0, Buffer.from('1701000000000000010165', 'hex')), {});
  const r1 = d.videoBody(0, Buffer.concat([Buffer.from('1700000000', 'hex'), avcC]));
  assert.equal(r1.track?.id, 7);
  assert.deepEqual([r1.track?.width, r1.track?.height, r1.track?.fpks], [320, 180, 30000]); // from the SPS (VUI timing), no onMetaData
  // The same sequence header again defines nothing new.
  assert.deepEqual(d.videoBody(0, Buffer.concat([Buffer.from('1700000000', 'hex'), avcC])), {});
  const neg = d.videoBody(100, Buffer.from('27 01 ffffdf 00000001 41'.replace(/ /g, ''), 'hex'));
  assert.deepEqual([neg.packet?.offsetMs, neg.packet?.keyframe, neg.packet?.timeMs, neg.packet?.trackId], [-33, false, 100, 7]);
  assert.deepEqual(d.videoBody(0, Buffer.from('1702000000', 'hex')), {});
  assert.deepEqual(d.videoBody(0, Buffer.from('5700', 'hex')), {});
  assert.throws(() => d.videoBody(0, Buffer.from('12000000', 'hex')), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_UNSUPPORTED');
  // Legacy CodecID 12 (HEVC before Enhanced RTMP) uses the AVC layout with an hvcC.
  const h = new FlvDemuxer();
  assert.equal(h.videoBody(0, Buffer.from('1c00000000' + '0101600000009000000000003cf000fcfdf8f800000f00', 'hex')).track?.codec, 'HEVC');
  assert.equal(h.videoBody(0, Buffer.from('2c01000021' + '00000001aa', 'hex')).packet?.offsetMs, 33);
  // Round trip through the muxer keeps the negative offset.
  const body = videoTagBody(r1.track!, { trackId: 7, timeMs: 5, offsetMs: -33, keyframe: true, data: Buffer.from([0, 0, 0, 1, 0x65]) });
  assert.deepEqual(body, Buffer.from('17 01 ffffdf 00000001 65'.replace(/ /g, ''), 'hex'));
  assert.equal(d.videoBody(5, body).packet?.offsetMs, -33);
});

test('AAC: AudioSpecificConfig defines rate/channels over the tag flags; onMetaData fills the rest', () => {
  const d = new FlvDemuxer();
  const s = d.scriptBody(onMetaDataBody([{ type: 'video', id: 1, codec: 'H264', init: Buffer.alloc(0), bps: 0, lang: 'und', width: 640, height: 360, fpks: 25000 }]));
  assert.equal(s.name, 'onMetaData');
  assert.deepEqual(s.tracks, []); // no track existed yet
  // ASC 0x1190: AAC-LC, 48 kHz, 2 channels; legacy flags 0xAF claim 44 kHz.
  const r = d.audioBody(0, Buffer.from('af001190', 'hex'));
  assert.deepEqual([r.track?.codec, r.track?.rate, r.track?.channels, r.track?.size], ['AAC', 48000, 2, 16]);
  // ASC 0x1208: AAC-LC 44.1 kHz mono.
  const r2 = d.audioBody(0, Buffer.from('af001208', 'hex'));
  assert.deepEqual([r2.track?.rate, r2.track?.channels], [44100, 1]);
  const p = d.audioBody(21, Buffer.from('af01deadbeef', 'hex')).packet!;
  assert.deepEqual([p.trackId, p.timeMs, p.keyframe, p.data.toString('hex')], [2, 21, true, 'deadbeef']);
  assert.deepEqual(d.audioBody(0, Buffer.alloc(0)), {}); // RTMP silence message
  // A video track defined after onMetaData takes its fields (this avcC has no SPS to read).
  const v = d.videoBody(0, Buffer.from('17000000000164000dffe10000', 'hex')).track!;
  assert.deepEqual([v.width, v.height, v.fpks], [640, 360, 25000]);
  // onMetaData after the track: a new track object, the one handed out stays untouched.
  const d3 = new FlvDemuxer();
  const before = d3.audioBody(0, Buffer.from('2f00', 'hex')).track!; // MP3 without a frame header
  const later = d3.scriptBody(onMetaDataBody([{ ...before, bps: 8000 }]));
  assert.equal(later.tracks.length, 1);
  assert.notEqual(later.tracks[0], before);
  assert.equal(later.tracks[0]!.bps, 8000);
  assert.equal(before.bps, 0);
  const body = Buffer.from(onMetaDataBody([]));
  const values = decodeAmf0(body);
  assert.ok(values[1] instanceof Amf0EcmaArray);
  assert.equal(values[1].get('encoder'), 'Haze');
  // @setDataFrame form (RTMP data message) is understood too.
  const d2 = new FlvDemuxer();
  d2.audioBody(0, Buffer.from('af001190', 'hex'));
  const audioTrack = d2.audio!;
  const res = d2.scriptBody(Buffer.concat([Buffer.from('02000d40736574446174614672616d65', 'hex'), body.subarray(0), Buffer.alloc(0)]));
  assert.equal(res.name, 'onMetaData');
  assert.equal(d2.audio, audioTrack); // nothing to change: same object
});

test('mux: sequence headers and frame bodies for the legacy codecs', () => {
  const h264: VideoTrack = { type: 'video', id: 1, codec: 'H264', init: Buffer.from([1, 2]), bps: 0, lang: 'und', width: 0, height: 0, fpks: 0 };
  const aac: AudioTrack = { type: 'audio', id: 2, codec: 'AAC', init: Buffer.from([0x11, 0x90]), bps: 0, lang: 'und', rate: 48000, channels: 2, size: 16 };
  const mp3: AudioTrack = { ...aac, codec: 'MP3', init: Buffer.alloc(0), rate: 22050, channels: 1 };
  assert.deepEqual(sequenceHeaderBody(h264), Buffer.from('17000000000102', 'hex'));
  assert.deepEqual(sequenceHeaderBody(aac), Buffer.from('af001190', 'hex'));
  assert.equal(sequenceHeaderBody(mp3), undefined);
  assert.equal(sequenceHeaderBody({ ...h264, init: Buffer.alloc(0) }), undefined);
  const pkt: Packet = { trackId: 2, timeMs: 0, offsetMs: 0, keyframe: true, data: Buffer.from([9]) };
  assert.deepEqual(audioTagBody(aac, pkt), Buffer.from('af0109', 'hex'));
  assert.deepEqual(audioTagBody(mp3, pkt), Buffer.from('2a09', 'hex')); // MP3, 22 kHz, 16-bit, mono
  assert.throws(() => audioTagBody({ ...aac, codec: 'PCM' }, pkt), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_UNSUPPORTED');
  assert.throws(() => videoTagBody(h264, { ...pkt, offsetMs: 1e8 }), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_TOO_LARGE');
});

// ---- fuzzing --------------------------------------------------------------------------------

function feed(d: FlvDemuxer, type: number, time: number, body: Buffer): void {
  try {
    if (type === 9) d.videoBody(time, body);
    else if (type === 8) d.audioBody(time, body);
    else d.scriptBody(body);
  } catch (e) {
    if (!(e instanceof HazeError)) throw e;
  }
}

test('fuzz: random bodies give results or HazeError', () => {
  fc.assert(
    fc.property(fc.constantFrom(8, 9, 18), fc.uint8Array({ maxLength: 64 }), (type, u) => {
      feed(new FlvDemuxer(), type, 0, Buffer.from(u));
    }),
    { numRuns: 3000 },
  );
  // Enhanced headers with random tails: exercise ModEx, Multitrack and FourCC paths.
  fc.assert(
    fc.property(fc.integer({ min: 0x80, max: 0xff }), fc.constantFrom('hvc1', 'av01', 'vp09', 'avc1', 'xxxx'), fc.uint8Array({ maxLength: 40 }), (b0, cc, tail) => {
      feed(new FlvDemuxer(), 9, 0, Buffer.concat([Buffer.from([b0]), Buffer.from(cc, 'latin1'), Buffer.from(tail)]));
      feed(new FlvDemuxer(), 8, 0, Buffer.concat([Buffer.from([0x90 | (b0 & 0x0f)]), Buffer.from(cc === 'hvc1' ? 'Opus' : 'mp4a', 'latin1'), Buffer.from(tail)]));
    }),
    { numRuns: 2000 },
  );
});

test('fuzz: mutated small.flv tags into the demuxer give results or HazeError', () => {
  const { tags } = readFlvTags(smallFlv);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 10 }), fc.nat(smallFlv.length), (muts, cut) => {
      const b = Buffer.from(smallFlv);
      for (const [pos, val] of muts) b[pos % b.length] = val;
      const d = new FlvDemuxer();
      const r = new FlvTagReader({ maxTagBytes: 1 << 20 });
      try {
        for (const chunk of [b.subarray(0, cut), b.subarray(cut)]) for (const t of r.push(chunk)) feed(d, t.type, t.timeMs, t.body);
      } catch (e) {
        if (!(e instanceof HazeError)) throw e;
      }
    }),
    { numRuns: 200 },
  );
  // Bodies with their tails cut anywhere.
  for (const t of tags.slice(0, 12)) for (let n = 0; n < t.body.length && n < 64; n++) feed(new FlvDemuxer(), t.type, t.timeMs, t.body.subarray(0, n));
});
