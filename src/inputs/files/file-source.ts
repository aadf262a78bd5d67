// The contract every file container's reader keeps, so one VoD engine (src/vod/) serves any of
// them with seeking (reference §2.5: MistServer's inputs index a file once, keep the index in
// a `.dtsh`, then seek by the byte position of a key and read on from there).
//
//   scan()          reads the whole file once, in file order: the tracks, then every packet
//                   with `bpos`, the byte position reading must start at to get that packet
//                   back (a tag, frame, cluster or TS packet boundary at or before it);
//   readFrom(bpos)  reads on from such a position, in file order, with the same packets (same
//                   data, times and flags) that scan() gave from that position on. Packets of
//                   the preceding key's container unit that come before it may come too: the
//                   caller drops what it does not need by time.
//
// Readers stream in bounded reads (no whole files in memory) and report malformed or truncated
// data as a HazeError whose message names the file and the byte position.

import type { Packet, Track } from '../../media/types.js';

export interface ScannedPacket extends Packet {
  /** Byte position readFrom() accepts to get this packet back. */
  bpos: number;
}

export interface ScanChunk {
  /** The track set, whenever it is (re)defined (first with the first chunk). */
  tracks?: Track[];
  packets: ScannedPacket[];
  /** Things the reader skipped or repaired, for the log. */
  warnings?: string[];
}

export interface FileSource {
  readonly file: string;
  /** Reads the whole file once in file order. */
  scan(): AsyncGenerator<ScanChunk>;
  /**
   * Packets in file order from `bpos` (a position scan() reported) to the end of the file, in
   * batches. `tracks` is the track set scan() (or a `.dtsh`) gave, for readers that need codec
   * context to start mid-file.
   */
  readFrom(bpos: number, tracks: readonly Track[]): AsyncGenerator<Packet[]>;
  /** Releases the file handle; the source can not be used afterwards. */
  close(): Promise<void>;
}

/** Opens a file of one container; HAZE_ERR_NOT_FOUND / HAZE_ERR_MALFORMED with the file's name. */
export type FileSourceOpener = (file: string) => Promise<FileSource>;
