// A media file's packets in decode order, to feed a StreamHub as a live source would in tests
// of the pushes (no publisher process involved).

import { readFilePackets } from '../src/inputs/file-packets.js';
import type { Packet, Track } from '../src/media/types.js';

export interface LiveSource {
  tracks: Track[];
  packets: Packet[];
  durationMs: number;
}

export async function loadLiveSource(file: string): Promise<LiveSource> {
  let tracks: Track[] = [];
  const packets: Packet[] = [];
  for await (const chunk of readFilePackets(file)) {
    if (chunk.tracks) tracks = chunk.tracks;
    packets.push(...chunk.packets);
  }
  // a live source delivers in decode order
  packets.sort((a, b) => a.timeMs - b.timeMs);
  return { tracks, packets, durationMs: packets[packets.length - 1]!.timeMs - packets[0]!.timeMs };
}
