// FLV tag bodies for two outputs: progressive HTTP-FLV (`/NAME.flv`: file header, then FLV
// tags) and RTMP play (each body in one complete chunked RTMP message: type-0 header, fixed
// chunk size, csid and message stream id, so the bytes are the same for every viewer). A
// viewer gets onMetaData and the sequence headers, then one tag or message per packet.
// Enhanced FLV (FourCC) carries HEVC/AV1/VP9 and Opus/AC-3. Timestamps are the stream's own
// (no per-viewer rebasing), so one serialisation serves all viewers (DESIGN §4).

import { FLV_TAG_AUDIO, FLV_TAG_SCRIPT, FLV_TAG_VIDEO, writeFlvTag, type FlvTagType } from '../containers/flv/tags.js';
import { audioTagBody, flvFileHeader, onMetaDataBody, sequenceHeaderBody, videoTagBody } from '../containers/flv/mux.js';
import { RTMP_CSID_AUDIO, RTMP_CSID_DATA, RTMP_CSID_VIDEO, RTMP_PLAY_STREAM_ID, RTMP_SERVER_CHUNK_SIZE, encodeMessageType0 } from '../protocols/rtmp/chunk-writer.js';
import type { Packet, Track } from '../media/types.js';
import type { FormatWriter } from './feed.js';
import type { FormatCapability } from './track-select.js';

export const FLV_CAPABILITY: FormatCapability = {
  codecs: { video: ['H264', 'HEVC', 'AV1', 'VP9'], audio: ['AAC', 'MP3', 'opus', 'AC3'] },
  singlePerType: true,
};

/** Wraps one tag body (type 8 audio, 9 video, 18 script) for the wire. */
type Framing = (type: FlvTagType, timeMs: number, body: Buffer) => Buffer;

const CSID: Record<FlvTagType, number> = { [FLV_TAG_AUDIO]: RTMP_CSID_AUDIO, [FLV_TAG_VIDEO]: RTMP_CSID_VIDEO, [FLV_TAG_SCRIPT]: RTMP_CSID_DATA };

const rtmpMessage: Framing = (type, timeMs, body) => encodeMessageType0(CSID[type], type, timeMs, RTMP_PLAY_STREAM_ID, body, RTMP_SERVER_CHUNK_SIZE);

class FlvBodyWriter implements FormatWriter {
  private tracks: readonly Track[] = [];
  private byId = new Map<number, Track>();

  constructor(
    private readonly frame: Framing,
    private readonly fileHeader: boolean,
  ) {}

  setTracks(tracks: readonly Track[]): void {
    this.tracks = tracks;
    this.byId = new Map(tracks.map((t) => [t.id, t]));
  }

  header(timeMs: number): Buffer {
    const config = this.config(timeMs);
    if (!this.fileHeader) return config;
    const hasVideo = this.tracks.some((t) => t.type === 'video');
    const hasAudio = this.tracks.some((t) => t.type === 'audio');
    return Buffer.concat([flvFileHeader(hasVideo, hasAudio), config]);
  }

  tracksChanged(timeMs: number): Buffer | null {
    return this.tracks.length > 0 ? this.config(timeMs) : null;
  }

  /**
   * onMetaData and a sequence header per track. onMetaData is stamped 0 whatever the stream
   * time: ffmpeg takes a script tag with another time for a data stream.
   */
  private config(timeMs: number): Buffer {
    const parts = [this.frame(FLV_TAG_SCRIPT, 0, onMetaDataBody([...this.tracks]))];
    for (const t of this.tracks) {
      const seq = sequenceHeaderBody(t);
      if (seq) parts.push(this.frame(t.type === 'video' ? FLV_TAG_VIDEO : FLV_TAG_AUDIO, timeMs, seq));
    }
    return Buffer.concat(parts);
  }

  packet(p: Packet): Buffer | null {
    const t = this.byId.get(p.trackId);
    if (!t) return null;
    if (t.type === 'video') return this.frame(FLV_TAG_VIDEO, p.timeMs, videoTagBody(t, p));
    if (t.type === 'audio') return this.frame(FLV_TAG_AUDIO, p.timeMs, audioTagBody(t, p));
    return null;
  }
}

export const makeFlvWriter = (): FormatWriter => new FlvBodyWriter(writeFlvTag, true);
export const makeRtmpWriter = (): FormatWriter => new FlvBodyWriter(rtmpMessage, false);
