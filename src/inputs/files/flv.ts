// FLV files as a FileSource (file-source.ts): the FLV spec v10.1 Annex E framing through
// FlvTagReader, tag bodies through FlvDemuxer (legacy and Enhanced RTMP codecs), read in bounded
// positioned reads.
//
// bpos: where the read began that produced the packet, as MistServer's FLV input records it in
// its .dtsh: a packet's bpos is the first tag after the previous tag that was not codec context
// (a frame, a script tag, ...), so sequence headers before a frame belong to its read. A read
// from a bpos therefore meets the codec context again; readFrom() also primes the demuxer with
// the tracks it is given, for the common case of a frame without headers in front of it.

import type { Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { FlvDemuxer } from '../../containers/flv/demux.js';
import { FLV_TAG_AUDIO, FLV_TAG_SCRIPT, FLV_MAX_TAG_BYTES, FLV_TAG_VIDEO, FlvTagReader, readFlvHeader } from '../../containers/flv/tags.js';
import { isFlvConfigTag } from '../../containers/flv/tag-kind.js';
import type { FileSource, FileSourceOpener, ScanChunk, ScannedPacket } from './file-source.js';
import { PLAY_READ_BYTES, ReadWindow, WINDOW_BYTES, checkBpos, fileError, openHandle, HandleSource } from './file-reads.js';

/** Tag header (11) + PreviousTagSize (4) around each tag body. */
const TAG_OVERHEAD = 15;

interface Batch {
  packets: ScannedPacket[];
  warnings: string[];
}

function trackKey(tracks: readonly Track[]): string {
  return tracks
    .map((t) => `${t.id}:${t.codec}:${t.init.toString('hex')}:${t.type === 'video' ? `${t.width}x${t.height}@${t.fpks}` : t.type === 'audio' ? `${t.rate}/${t.channels}/${t.size}` : ''}`)
    .join(',');
}

class FlvFileSource extends HandleSource implements FileSource {


  /** The offset of the first tag (after the header and PreviousTagSize0); undefined while the file is shorter than its header. */
  private async firstTag(): Promise<number | undefined> {
    const head = Buffer.alloc(9);
    const { bytesRead } = await this.fh.read(head, 0, 9, 0);
    if (bytesRead < 9) {
      if (bytesRead >= 3 && head.toString('latin1', 0, 3) !== 'FLV') throw new HazeError('HAZE_ERR_MALFORMED', `${this.file}: not an FLV file (no "FLV" signature) at byte 0`);
      return undefined;
    }
    try {
      return readFlvHeader(head).bodyOffset + 4;
    } catch (err) {
      throw fileError(this.file, 0, err);
    }
  }

  /** Tags from `start` to the current end of the file, demuxed, one batch per read. */
  private async *tags(start: number, demux: FlvDemuxer, readBytes = WINDOW_BYTES): AsyncGenerator<Batch> {
    const reader = new FlvTagReader({ expectHeader: false });
    /** Offset of the next tag (after the last complete one and its PreviousTagSize). */
    let next = start;
    /** Where the read of the next packet began. */
    let readStart = start;
    let fileEnd = start;
    for (;;) {
      this.check();
      // a fresh buffer per read: packets are subarrays of it
      const chunk = Buffer.allocUnsafe(readBytes);
      const { bytesRead } = await this.fh.read(chunk, 0, readBytes, fileEnd);
      if (bytesRead === 0) break;
      fileEnd += bytesRead;
      const batch: Batch = { packets: [], warnings: [] };
      let tags;
      try {
        tags = reader.push(chunk.subarray(0, bytesRead));
      } catch (err) {
        // tags the failing push completed are lost with it: find the bad tag from `next` on
        throw fileError(this.file, await this.badTagAt(next, fileEnd), err);
      }
      for (const tag of tags) {
        const at = next;
        next += TAG_OVERHEAD + tag.body.length;
        if (tag.filtered) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${this.file}: encrypted FLV tag at byte ${at}`);
        let packet: Packet | undefined;
        try {
          if (tag.type === FLV_TAG_VIDEO) packet = demux.videoBody(tag.timeMs, tag.body).packet;
          else if (tag.type === FLV_TAG_AUDIO) packet = demux.audioBody(tag.timeMs, tag.body).packet;
          else if (tag.type === FLV_TAG_SCRIPT) demux.scriptBody(tag.body);
        } catch (err) {
          throw fileError(this.file, at, err);
        }
        if (packet) batch.packets.push({ ...packet, bpos: readStart });
        if (packet || !isFlvConfigTag(tag.type, tag.body)) readStart = next;
      }
      yield batch;
    }
    // The last tag's PreviousTagSize may be missing; anything longer is a tag cut short.
    if (fileEnd > next) yield { packets: [], warnings: [`${this.file}: ends inside a tag at byte ${next}`] };
  }

  /** The first tag from `pos` whose header FlvTagReader refuses (its checks, repeated), for the error message. */
  private async badTagAt(pos: number, fileEnd: number): Promise<number> {
    const window = new ReadWindow(this.fh);
    while (pos < fileEnd) {
      const h = await window.at(pos, 11);
      if (h.length < 11) break;
      const type = h[0]! & 0x1f;
      if ((h[0]! & 0xc0) !== 0 || (type !== FLV_TAG_AUDIO && type !== FLV_TAG_VIDEO && type !== FLV_TAG_SCRIPT)) break;
      const size = h.readUIntBE(1, 3);
      if (size > FLV_MAX_TAG_BYTES) break;
      pos += TAG_OVERHEAD + size;
    }
    return pos;
  }

  async *scan(): AsyncGenerator<ScanChunk> {
    const start = await this.firstTag();
    if (start === undefined) {
      yield { packets: [], warnings: [`${this.file}: ends inside the FLV header`] };
      return;
    }
    const demux = new FlvDemuxer();
    let known = '';
    for await (const batch of this.tags(start, demux)) {
      const out: ScanChunk = { packets: batch.packets };
      if (batch.warnings.length > 0) out.warnings = batch.warnings;
      // the demuxer's track set, whenever it changed (as the streaming path reports it)
      const tracks = demux.tracks;
      const key = trackKey(tracks);
      if (key !== known && (tracks.length > 0 || known !== '')) {
        out.tracks = tracks;
        known = key;
      }
      if (out.packets.length > 0 || out.tracks || out.warnings) yield out;
    }
  }

  async *readFrom(bpos: number, tracks: readonly Track[]): AsyncGenerator<Packet[]> {
    checkBpos(this.file, bpos);
    const start = await this.firstTag();
    if (start === undefined || bpos < start) throw new HazeError('HAZE_ERR_INVALID_ARG', `${this.file}: ${bpos} is not a tag position`);
    const demux = new FlvDemuxer();
    // Codec context for frames read without their sequence headers: the tracks as scanned.
    // Packets do not depend on the config's bytes, only on its presence.
    for (const t of tracks) {
      if (t.type === 'video' && !demux.video) demux.video = { ...t, id: demux.videoTrackId };
      else if (t.type === 'audio' && !demux.audio) demux.audio = { ...t, id: demux.audioTrackId };
    }
    for await (const batch of this.tags(bpos, demux, PLAY_READ_BYTES)) {
      if (batch.packets.length === 0) continue;
      yield batch.packets.map((p): Packet => ({ trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data }));
    }
  }

}

export const openFlvSource: FileSourceOpener = async (file) => {
  const fh = await openHandle(file);
  const src = new FlvFileSource(file, fh);
  try {
    // refuse what is not FLV now, not at the first read
    const head = Buffer.alloc(3);
    const { bytesRead } = await fh.read(head, 0, 3, 0);
    if (bytesRead === 3 && head.toString('latin1') !== 'FLV') throw new HazeError('HAZE_ERR_MALFORMED', `${file}: not an FLV file (no "FLV" signature) at byte 0`);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return src;
};
