// DTSC files for tools that read them whole (convert, merge): positional reads through a
// FileHandle, and the packets in time order whatever the layout (an appended track sits after
// the original packets: reading in file order would play it after the end).

import fs from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { plainTrack } from '../../containers/dtsc/header.js';
import { DtscTimeline, type DtscInput } from '../../containers/dtsc/timeline.js';
import { readAt } from './file-reads.js';

/** A DTSC file open for positional reads, as DtscTimeline wants it. */
export interface OpenDtscFile extends DtscInput {
  handle: FileHandle;
  close(): Promise<void>;
}

export function openError(file: string, err: unknown): HazeError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new HazeError('HAZE_ERR_NOT_FOUND', `${file}: no such file`, { cause: err });
  return new HazeError('HAZE_ERR_NOT_FOUND', `${file}: cannot open (${(err as Error).message})`, { cause: err });
}

/** Opens a file for reading (or read-write) with a ReadAt; the size is taken now. */
export async function openDtscFile(file: string, flags: 'r' | 'r+' = 'r'): Promise<OpenDtscFile> {
  let handle: FileHandle;
  try {
    handle = await fs.open(file, flags);
  } catch (err) {
    throw openError(file, err);
  }
  const st = await handle.stat();
  if (!st.isFile()) {
    await handle.close();
    throw new HazeError('HAZE_ERR_NOT_FOUND', `${file}: not a regular file`);
  }
  const size = st.size;
  return {
    handle,
    size,
    name: file,
    // the size as opened: a reader sees the file as it was, even while an append goes on
    read: (position, length) => readAt(handle, position, Math.max(0, Math.min(length, size - position))),
    close: () => handle.close(),
  };
}

/**
 * A DTSC file's tracks (from its newest header, so appended tracks are there) and its packets
 * in time order, in the shape of inputs/file-packets.ts's chunks. Audio packets come flagged as
 * keyframes, since every audio frame is a start point (DTSC flags video keyframes only).
 */
export async function* readDtscFileInTimeOrder(file: string, batch = 256): AsyncGenerator<{ tracks?: Track[]; packets: Packet[] }> {
  const f = await openDtscFile(file);
  try {
    const timeline = await DtscTimeline.open([f]);
    const video = new Set(timeline.tracks.filter((t) => t.track.type === 'video').map((t) => t.track.id));
    let out: { tracks?: Track[]; packets: Packet[] } = { tracks: timeline.tracks.map((t) => plainTrack(t.track)), packets: [] };
    for (let n = await timeline.next(); n; n = await timeline.next()) {
      out.packets.push(video.has(n.packet.trackId) ? n.packet : { ...n.packet, keyframe: true });
      if (out.packets.length >= batch) {
        yield out;
        out = { packets: [] };
      }
    }
    yield out;
  } finally {
    await f.close();
  }
}

