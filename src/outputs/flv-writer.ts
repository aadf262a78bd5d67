// FLV for progressive HTTP-FLV viewers (`/NAME.flv`): file header, onMetaData and the
// sequence headers, then one tag per packet. Enhanced FLV (FourCC) carries HEVC/AV1/VP9 and
// Opus/AC-3. Timestamps are the stream's own (no per-viewer rebasing), so one tag serves all.

import { FLV_TAG_SCRIPT, writeFlvTag } from '../containers/flv/tags.js';
import { flvFileHeader, onMetaDataBody, packetTag, sequenceHeaderBody } from '../containers/flv/mux.js';
import type { Packet, Track } from '../media/types.js';
import type { FormatWriter } from './feed.js';
import type { FormatCapability } from './track-select.js';

export const FLV_CAPABILITY: FormatCapability = {
  codecs: { video: ['H264', 'HEVC', 'AV1', 'VP9'], audio: ['AAC', 'MP3', 'opus', 'AC3'] },
  singlePerType: true,
};

/**
 * Tags declaring `tracks`: onMetaData and a sequence header per track. onMetaData is stamped
 * 0 whatever the stream time: ffmpeg takes a script tag with another time for a data stream.
 */
export function flvConfigTags(tracks: readonly Track[], timeMs: number): Buffer[] {
  const out = [writeFlvTag(FLV_TAG_SCRIPT, 0, onMetaDataBody([...tracks]))];
  for (const t of tracks) {
    const seq = sequenceHeaderBody(t);
    if (seq) out.push(writeFlvTag(t.type === 'video' ? 9 : 8, timeMs, seq));
  }
  return out;
}

export class FlvWriter implements FormatWriter {
  private tracks: readonly Track[] = [];
  private byId = new Map<number, Track>();

  setTracks(tracks: readonly Track[]): void {
    this.tracks = tracks;
    this.byId = new Map(tracks.map((t) => [t.id, t]));
  }

  header(timeMs: number): Buffer {
    const hasVideo = this.tracks.some((t) => t.type === 'video');
    const hasAudio = this.tracks.some((t) => t.type === 'audio');
    return Buffer.concat([flvFileHeader(hasVideo, hasAudio), ...flvConfigTags(this.tracks, timeMs)]);
  }

  tracksChanged(timeMs: number): Buffer | null {
    return this.tracks.length > 0 ? Buffer.concat(flvConfigTags(this.tracks, timeMs)) : null;
  }

  packet(p: Packet): Buffer | null {
    const track = this.byId.get(p.trackId);
    return track ? packetTag(track, p) : null;
  }
}
