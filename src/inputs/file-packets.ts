// A media file's tracks and packets for tools that read it whole (`haze convert`): the file's
// reader (files/open.ts) from start to end, in file order; a DTSC file in time order (a track
// appended to it sits after the original packets). Memory does not grow with the file.
// Timestamps are as the container has them (MP4 edit lists not applied, as MistServer reads MP4).

import type { Packet, Track } from '../media/types.js';
import { extensionOf, openFileSource } from './files/open.js';
import { readDtscFileInTimeOrder } from './files/dtsc-file.js';

/** One step of a file: the track set when it is (re)defined, and the packets that follow it. */
export interface FileChunk {
  tracks?: Track[];
  packets: Packet[];
  warnings?: string[];
}

/** The file's tracks and packets; HAZE_ERR_UNSUPPORTED for extensions Haze cannot read. */
export async function* readFilePackets(file: string): AsyncGenerator<FileChunk> {
  if (extensionOf(file) === 'dtsc') {
    yield* readDtscFileInTimeOrder(file);
    return;
  }
  const source = await openFileSource(file);
  try {
    yield* source.scan();
  } finally {
    await source.close();
  }
}
