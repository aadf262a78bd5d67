// RTMP play output: each packet becomes one complete chunked RTMP message (type-0 header,
// fixed chunk size, csid and message stream id), so the same bytes go to every RTMP viewer
// (DESIGN §4 "serialize once"). The message bodies are FLV tag bodies.

import { onMetaDataBody, audioTagBody, sequenceHeaderBody, videoTagBody } from '../containers/flv/mux.js';
import { RTMP_CSID_AUDIO, RTMP_CSID_DATA, RTMP_CSID_VIDEO, RTMP_PLAY_STREAM_ID, RTMP_SERVER_CHUNK_SIZE, encodeMessageType0 } from '../protocols/rtmp/chunk-writer.js';
import type { Packet, Track } from '../media/types.js';
import type { FormatWriter } from './feed.js';

const MSG_AUDIO = 8;
const MSG_VIDEO = 9;
const MSG_DATA_AMF0 = 18;

function message(csid: number, typeId: number, timeMs: number, body: Buffer): Buffer {
  return encodeMessageType0(csid, typeId, timeMs, RTMP_PLAY_STREAM_ID, body, RTMP_SERVER_CHUNK_SIZE);
}

export class RtmpWriter implements FormatWriter {
  private tracks: readonly Track[] = [];
  private byId = new Map<number, Track>();

  setTracks(tracks: readonly Track[]): void {
    this.tracks = tracks;
    this.byId = new Map(tracks.map((t) => [t.id, t]));
  }

  header(timeMs: number): Buffer {
    return this.config(timeMs);
  }

  tracksChanged(timeMs: number): Buffer | null {
    return this.tracks.length > 0 ? this.config(timeMs) : null;
  }

  private config(timeMs: number): Buffer {
    const tracks = this.tracks;
    // onMetaData at time 0, as for FLV (flv-writer.ts)
    const parts = [message(RTMP_CSID_DATA, MSG_DATA_AMF0, 0, onMetaDataBody([...tracks]))];
    for (const t of tracks) {
      const seq = sequenceHeaderBody(t);
      if (!seq) continue;
      parts.push(t.type === 'video' ? message(RTMP_CSID_VIDEO, MSG_VIDEO, timeMs, seq) : message(RTMP_CSID_AUDIO, MSG_AUDIO, timeMs, seq));
    }
    return Buffer.concat(parts);
  }

  packet(p: Packet): Buffer | null {
    const t = this.byId.get(p.trackId);
    if (!t) return null;
    if (t.type === 'video') return message(RTMP_CSID_VIDEO, MSG_VIDEO, p.timeMs, videoTagBody(t, p));
    if (t.type === 'audio') return message(RTMP_CSID_AUDIO, MSG_AUDIO, p.timeMs, audioTagBody(t, p));
    return null;
  }
}
