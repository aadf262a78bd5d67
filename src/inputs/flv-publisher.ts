// A publisher whose media arrives as FLV tag bodies (RTMP publish; later FLV over HTTP):
// demuxes them into tracks and packets for the stream's hub.

import { FlvDemuxer } from '../containers/flv/demux.js';
import type { StreamHub } from '../hub/stream-hub.js';

export class FlvPublisher {
  private readonly demux = new FlvDemuxer();
  bytesIn = 0;

  /** `hub`: the stream's hub, or anything taking tracks and packets like it (a pull's sink). */
  constructor(private readonly hub: Pick<StreamHub, 'setTrack' | 'push'>) {}

  /** One RTMP message / FLV tag: 8 audio, 9 video, 18 script data. Throws HazeError on bad bytes. */
  message(typeId: number, timestampMs: number, body: Buffer): void {
    this.bytesIn += body.length;
    if (typeId === 9) {
      const r = this.demux.videoBody(timestampMs, body);
      if (r.track) this.hub.setTrack(r.track);
      if (r.packet) this.hub.push(r.packet);
    } else if (typeId === 8) {
      const r = this.demux.audioBody(timestampMs, body);
      if (r.track) this.hub.setTrack(r.track);
      if (r.packet) this.hub.push(r.packet);
    } else if (typeId === 18) {
      for (const t of this.demux.scriptBody(body).tracks) this.hub.setTrack(t);
    }
  }
}
