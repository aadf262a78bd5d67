// MPEG-TS for progressive viewers (`/NAME.ts`): one muxer per feed, so PAT/PMT and
// continuity counters are shared by every viewer of the feed; the muxer repeats PAT/PMT
// before each video keyframe, which is where a viewer starts.

import { TsMuxer } from '../containers/ts/mux.js';
import type { Packet, Track } from '../media/types.js';
import type { FormatWriter } from './feed.js';
import type { FormatCapability } from './track-select.js';

export const TS_CAPABILITY: FormatCapability = {
  codecs: { video: ['H264', 'HEVC'], audio: ['AAC', 'MP3', 'opus', 'AC3'] },
  singlePerType: false,
};

export class TsWriter implements FormatWriter {
  private muxer: TsMuxer | undefined;

  setTracks(tracks: readonly Track[]): void {
    this.muxer = tracks.length > 0 ? new TsMuxer(tracks) : undefined;
  }

  header(): Buffer {
    return this.muxer ? this.muxer.psi() : Buffer.alloc(0);
  }

  tracksChanged(): Buffer | null {
    return this.muxer ? this.muxer.psi() : null;
  }

  packet(p: Packet): Buffer | null {
    return this.muxer ? this.muxer.mux(p) : null;
  }
}
