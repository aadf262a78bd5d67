// A media file's tracks and packets in file order, by extension: FLV, MPEG-TS, Matroska/WebM
// and DTSC are streamed through their push parsers in 1 MiB reads; MP4/MOV is indexed from its
// moov/moofs and read sample by sample. Memory does not grow with the file. Timestamps are as
// the container has them, except that MP4 edit lists are not applied (as MistServer reads MP4).

import fs from 'node:fs';
import path from 'node:path';
import { FlvTagReader, FLV_TAG_AUDIO, FLV_TAG_SCRIPT, FLV_TAG_VIDEO } from '../containers/flv/tags.js';
import { FlvDemuxer } from '../containers/flv/demux.js';
import { TsDemuxer } from '../containers/ts/demux.js';
import { MatroskaDemuxer } from '../containers/mkv/demux.js';
import { fileByteSource, openMp4, readSample } from '../containers/mp4/demux.js';
import { DtscFrameReader } from '../containers/dtsc/packets.js';
import { plainTrack, readDtscHeader } from '../containers/dtsc/header.js';
import type { Packet, Track } from '../media/types.js';
import { HazeError } from '../util/errors.js';

/** One step of a file: the track set when it is (re)defined, and the packets that follow it. */
export interface FileChunk {
  tracks?: Track[];
  packets: Packet[];
  warnings?: string[];
}

const READ_BYTES = 1024 * 1024;

export const READABLE_EXTENSIONS = ['flv', 'ts', 'm2ts', 'mkv', 'webm', 'mp4', 'mov', 'm4a', 'm4v', 'dtsc'] as const;

function extensionOf(file: string): string {
  return path.extname(file).slice(1).toLowerCase();
}

async function* chunksOf(file: string): AsyncGenerator<Buffer> {
  for await (const chunk of fs.createReadStream(file, { highWaterMark: READ_BYTES })) yield chunk as Buffer;
}

async function* flvPackets(file: string): AsyncGenerator<FileChunk> {
  const tags = new FlvTagReader();
  const demux = new FlvDemuxer();
  let known = '';
  for await (const chunk of chunksOf(file)) {
    const packets: Packet[] = [];
    for (const tag of tags.push(chunk)) {
      if (tag.filtered) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${file}: encrypted FLV tag at ${tag.timeMs} ms`);
      const res = tag.type === FLV_TAG_VIDEO ? demux.videoBody(tag.timeMs, tag.body) : tag.type === FLV_TAG_AUDIO ? demux.audioBody(tag.timeMs, tag.body) : undefined;
      if (tag.type === FLV_TAG_SCRIPT) demux.scriptBody(tag.body);
      if (res?.packet) packets.push(res.packet);
    }
    // the demuxer's track set, whenever it changed
    const tracks = demux.tracks;
    const key = tracks.map((t) => `${t.id}:${t.codec}:${t.init.toString('hex')}`).join(',');
    yield key !== known ? { tracks, packets } : { packets };
    known = key;
  }
}

async function* tsPackets(file: string): AsyncGenerator<FileChunk> {
  const demux = new TsDemuxer();
  for await (const chunk of chunksOf(file)) yield demux.push(chunk);
  yield demux.end();
}

async function* mkvPackets(file: string): AsyncGenerator<FileChunk> {
  const demux = new MatroskaDemuxer();
  for await (const chunk of chunksOf(file)) yield demux.push(chunk);
  yield demux.end();
}

async function* mp4Packets(file: string): AsyncGenerator<FileChunk> {
  const src = await fileByteSource(file);
  try {
    const index = await openMp4(src, { editList: 'ignore' });
    yield { tracks: index.tracks, packets: [], warnings: index.warnings };
    const batch: Packet[] = [];
    for (const ref of index.samples) {
      batch.push(await readSample(src, ref));
      if (batch.length >= 256) yield { packets: batch.splice(0) };
    }
    yield { packets: batch };
  } finally {
    await src.close();
  }
}

async function* dtscPackets(file: string): AsyncGenerator<FileChunk> {
  const reader = new DtscFrameReader();
  const video = new Set<number>();
  let first = true;
  for await (const chunk of chunksOf(file)) {
    const out: FileChunk = { packets: [] };
    for (const f of reader.push(chunk)) {
      if (f.kind === 'header') {
        // the first header defines the tracks; a later one (the index at the end) repeats them
        if (!first) continue;
        first = false;
        out.tracks = readDtscHeader(f.raw).tracks.map(plainTrack);
        for (const t of out.tracks) if (t.type === 'video') video.add(t.id);
      } else if (f.kind === 'packet') {
        // DTSC flags keyframes on video only; in Haze every audio frame is a start point
        out.packets.push(video.has(f.packet.trackId) ? f.packet : { ...f.packet, keyframe: true });
      }
    }
    yield out;
  }
}

/** The file's tracks and packets; HAZE_ERR_UNSUPPORTED for extensions Haze cannot read. */
export function readFilePackets(file: string): AsyncGenerator<FileChunk> {
  switch (extensionOf(file)) {
    case 'flv':
      return flvPackets(file);
    case 'ts':
    case 'm2ts':
      return tsPackets(file);
    case 'mkv':
    case 'webm':
      return mkvPackets(file);
    case 'mp4':
    case 'mov':
    case 'm4a':
    case 'm4v':
      return mp4Packets(file);
    case 'dtsc':
      return dtscPackets(file);
    default:
      throw new HazeError('HAZE_ERR_UNSUPPORTED', `${file}: cannot read .${extensionOf(file)} files (readable: ${READABLE_EXTENSIONS.join(', ')})`);
  }
}
