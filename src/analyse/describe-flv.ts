// FLV describer (Adobe FLV spec v10.1 Annex E.2-E.4): the file header, one line per tag, packets
// from the FLV demuxer. Tag offsets are counted here (header data offset + PreviousTagSize0,
// then 11 + body + 4 per tag), since the tag reader does not report them.

import { FlvDemuxer } from '../containers/flv/demux.js';
import { FlvTagReader, FLV_TAG_AUDIO, FLV_TAG_SCRIPT, FLV_TAG_VIDEO } from '../containers/flv/tags.js';
import { problemOf, trackLine, type AnalyseEvent, type Describer } from './model.js';

export class FlvDescriber implements Describer {
  readonly kind = 'flv' as const;
  private readonly tags = new FlvTagReader();
  private readonly demux = new FlvDemuxer();
  private total = 0;
  /** Offset of the next tag; known once the header's data offset is read. */
  private next = -1;
  private dead = false;
  private headerDone = false;
  private trackKey = '';

  push(chunk: Buffer): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead) return ev;
    if (this.next < 0 && this.total < 9 && chunk.length > 0) {
      // the data offset lives in header bytes 5..8; gather them across chunks
      this.headBytes = this.headBytes ? Buffer.concat([this.headBytes, chunk.subarray(0, 9 - this.total)]) : Buffer.from(chunk.subarray(0, 9));
      if (this.headBytes.length >= 9) this.next = this.headBytes.readUInt32BE(5) + 4;
    }
    this.total += chunk.length;
    try {
      for (const tag of this.tags.push(chunk)) {
        if (!this.headerDone && this.tags.header) {
          const h = this.tags.header;
          ev.push({ kind: 'header', text: `FLV version ${h.version}, flags:${h.hasVideo ? ' video' : ''}${h.hasAudio ? ' audio' : ''}` });
          this.headerDone = true;
        }
        const pos = this.next;
        this.next += 11 + tag.body.length + 4;
        const name = tag.type === FLV_TAG_VIDEO ? 'video' : tag.type === FLV_TAG_AUDIO ? 'audio' : 'script';
        if (tag.filtered) {
          ev.push({ kind: 'problem', problem: { rule: 'HAZE_ERR_UNSUPPORTED', text: `encrypted (filtered) ${name} tag`, pos, timeMs: tag.timeMs } });
          continue;
        }
        try {
          if (tag.type === FLV_TAG_SCRIPT) {
            const r = this.demux.scriptBody(tag.body);
            ev.push({ kind: 'unit', pos, text: `script tag ${r.name ?? '?'} time ${tag.timeMs} ms size ${tag.body.length}` });
          } else {
            const res = tag.type === FLV_TAG_VIDEO ? this.demux.videoBody(tag.timeMs, tag.body) : this.demux.audioBody(tag.timeMs, tag.body);
            if (res.packet) {
              const p = res.packet;
              ev.push({ kind: 'packet', packet: { trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, size: p.data.length, pos } });
            } else {
              ev.push({ kind: 'unit', pos, text: `${name} tag time ${tag.timeMs} ms size ${tag.body.length} (${res.track ? 'sequence header' : 'no media'})` });
            }
          }
        } catch (err) {
          // a bad tag body: report it and go on with the next tag (the framing is intact)
          ev.push({ kind: 'problem', problem: { ...problemOf(err, pos, `${name} tag`), timeMs: tag.timeMs } });
        }
        this.announce(ev);
      }
    } catch (err) {
      this.dead = true;
      ev.push({ kind: 'problem', problem: problemOf(err, Math.max(this.next, 0), 'FLV framing') });
    }
    return ev;
  }

  private headBytes: Buffer | undefined;
  private readonly printed = new Map<number, string>();

  private announce(ev: AnalyseEvent[]): void {
    const tracks = this.demux.tracks;
    const key = tracks.map((t) => `${t.id}:${t.codec}:${t.init.toString('hex')}`).join(',');
    if (key === this.trackKey) return;
    this.trackKey = key;
    // print only the tracks that are new or changed
    for (const t of tracks) {
      const line = trackLine(t);
      if (this.printed.get(t.id) !== line) ev.push({ kind: 'header', text: line });
      this.printed.set(t.id, line);
    }
    ev.push({ kind: 'tracks', tracks });
  }

  end(complete: boolean): AnalyseEvent[] {
    if (this.dead || !complete) return [];
    if (this.total < 9) return [{ kind: 'problem', problem: { rule: 'TRUNCATED', text: `FLV input of ${this.total} bytes ends inside its header`, pos: 0 } }];
    if (this.total > this.next) {
      return [{ kind: 'problem', problem: { rule: 'TRUNCATED', text: `FLV tag at byte ${this.next} cut short: ${this.total - this.next} of its bytes present`, pos: this.next } }];
    }
    if (this.total < this.next && this.next - this.total <= 4) {
      return [{ kind: 'problem', problem: { rule: 'TRUNCATED', text: `FLV input ends without the last PreviousTagSize`, pos: this.total } }];
    }
    return [];
  }
}
