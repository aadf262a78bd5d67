// MPEG-TS for progressive viewers (`/NAME.ts`): one muxer per feed, so PAT/PMT and
// continuity counters are shared by every viewer of the feed. The muxer writes PAT/PMT before
// each video keyframe (and at its first packet), which is where every viewer starts, so
// there is no separate header: a viewer's first bytes are the GOP's own PAT/PMT.

import { TsMuxer } from '../containers/ts/mux.js';
import type { Packet, Track } from '../media/types.js';
import type { FormatWriter } from './feed.js';
import type { FormatCapability } from './track-select.js';

export const TS_CAPABILITY: FormatCapability = {
  codecs: { video: ['H264', 'HEVC'], audio: ['AAC', 'MP3', 'opus', 'AC3'] },
  singlePerType: false,
};

const EMPTY = Buffer.alloc(0);

export class TsWriter implements FormatWriter {
  private muxer: TsMuxer | undefined;

  setTracks(tracks: readonly Track[]): void {
    this.muxer = tracks.length > 0 ? new TsMuxer(tracks) : undefined;
  }

  header(): Buffer {
    return EMPTY;
  }

  tracksChanged(): Buffer | null {
    return null; // the new muxer starts with PAT/PMT
  }

  packet(p: Packet): Buffer | null {
    return this.muxer ? this.muxer.mux(p) : null;
  }
}
