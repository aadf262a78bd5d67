// Packets and codec config of media files made by ffmpeg, read through ffprobe: the test
// suite's independent source of truth for what a container holds.

import assert from 'node:assert/strict';
import type { Packet } from '../src/media/types.js';
import { runOk } from './helpers.js';

export interface ProbedPacket {
  stream_index: number;
  pts?: number;
  dts?: number;
  pts_time?: string;
  dts_time?: string;
  size: string;
  flags: string;
}

export async function probePackets(file: string, select?: string): Promise<ProbedPacket[]> {
  const args = ['-v', 'error', '-show_packets', '-show_entries', 'packet=stream_index,pts,dts,pts_time,dts_time,size,flags', '-of', 'json'];
  if (select) args.push('-select_streams', select);
  const out = await runOk('ffprobe', [...args, file]);
  return (JSON.parse(out.toString()) as { packets: ProbedPacket[] }).packets;
}

/** A stream's codec extradata, read from ffprobe's hex dump. */
export async function extradata(file: string, select: string): Promise<Buffer> {
  const out = (await runOk('ffprobe', ['-v', 'error', '-select_streams', select, '-show_streams', '-show_data', file])).toString();
  const at = out.indexOf('extradata=\n');
  if (at < 0) return Buffer.alloc(0);
  let hex = '';
  for (const line of out.slice(at + 11).split('\n')) {
    if (!/^[0-9a-f]{8}: /.test(line)) break;
    hex += line.slice(10, 50).replace(/ /g, '');
  }
  return Buffer.from(hex, 'hex');
}

/**
 * The packets of one stream of a file, payloads exactly as its container stores them: ffmpeg
 * writes them back to back (`-f data`), ffprobe gives their sizes and times.
 */
export async function filePackets(file: string, select: string, trackId: number): Promise<Packet[]> {
  const probed = await probePackets(file, select);
  const raw = await runOk('ffmpeg', ['-v', 'error', '-i', file, '-map', `0:${select}`, '-c', 'copy', '-f', 'data', '-']);
  const packets: Packet[] = [];
  let pos = 0;
  let minDts = Infinity;
  for (const p of probed) minDts = Math.min(minDts, Number(p.dts_time ?? p.pts_time));
  for (const p of probed) {
    const size = Number(p.size);
    const dtsMs = Math.round((Number(p.dts_time ?? p.pts_time) - minDts) * 1000);
    const ptsMs = Math.round((Number(p.pts_time ?? p.dts_time) - minDts) * 1000);
    packets.push({ trackId, timeMs: dtsMs, offsetMs: ptsMs - dtsMs, keyframe: p.flags.startsWith('K'), data: raw.subarray(pos, pos + size) });
    pos += size;
  }
  assert.equal(pos, raw.length, 'packet sizes add up to the raw stream');
  return packets;
}


export interface ProbedStream {
  codec_name: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
  profile?: string;
}

/** ffprobe's view of a file's streams. */
export async function probeStreams(file: string): Promise<ProbedStream[]> {
  const out = await runOk('ffprobe', ['-v', 'error', '-show_streams', '-of', 'json', file]);
  return (JSON.parse(out.toString()) as { streams: ProbedStream[] }).streams;
}
