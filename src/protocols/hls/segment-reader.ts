// Media segments of an HLS pull (RFC 8216 §3): MPEG-TS segments (§3.2) go through one TsDemuxer
// for the whole run of a playlist, since they continue each other's PES streams and clock;
// fragmented MP4 / CMAF segments (§3.3) are read with their EXT-X-MAP init section by the MP4
// reader (moof/trun/tfdt, containers/mp4/demux.ts), each segment on its own. Packed audio
// (§3.4) and WebVTT (§3.5) segments are not read. No I/O here: bytes in, tracks and packets out.

import { openMp4, sampleData } from '../../containers/mp4/demux.js';
import { bufferByteSource } from '../../containers/mp4/byte-source.js';
import { TsDemuxer } from '../../containers/ts/demux.js';
import type { Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';

export interface SegmentMedia {
  /** The complete track list, when it is first known and whenever it changes. */
  tracks?: Track[];
  /** Packets in decode order as the segment holds them. */
  packets: Packet[];
  warnings: string[];
}

export type SegmentFormat = 'ts' | 'fmp4';

const MP4_FIRST_BOXES = new Set(['ftyp', 'styp', 'moof', 'sidx', 'emsg', 'prft', 'moov']);

/** The format of a segment by its first bytes, or undefined (packed audio, WebVTT, garbage). */
export function segmentFormat(b: Buffer): SegmentFormat | undefined {
  if (b.length >= 1 && b[0] === 0x47 && (b.length < 189 || b[188] === 0x47)) return 'ts';
  if (b.length >= 8 && MP4_FIRST_BOXES.has(b.toString('latin1', 4, 8))) return 'fmp4';
  return undefined;
}

/**
 * Reads the segments of one media playlist, in order. `read` throws a HazeError for a segment
 * it cannot take (an unknown format, an fMP4 segment without its init section, a broken box).
 */
export class HlsSegmentReader {
  private ts: TsDemuxer | undefined;
  private initBytes: Buffer | undefined;
  private initTracks: Track[] | undefined;
  private announcedInit: Buffer | undefined;

  /** `init`: the EXT-X-MAP section that applies to the segment (fMP4), if any. */
  async read(segment: Buffer, init?: Buffer): Promise<SegmentMedia> {
    const format = segmentFormat(init && init.length > 0 ? init : segment);
    if (format === 'ts') {
      this.ts ??= new TsDemuxer({ maxHoldMs: 10_000 });
      const r = this.ts.push(segment);
      return { ...(r.tracks ? { tracks: r.tracks } : {}), packets: r.packets, warnings: r.warnings };
    }
    if (format === 'fmp4') return this.readFmp4(segment, init);
    throw new HazeError('HAZE_ERR_UNSUPPORTED', `HLS segment of unknown format (first bytes ${segment.subarray(0, 8).toString('hex')}): only MPEG-TS and fMP4 segments are read`);
  }

  /** The end of the playlist (ENDLIST): what the TS demuxer still holds (the last access units). */
  end(): SegmentMedia {
    if (!this.ts) return { packets: [], warnings: [] };
    const r = this.ts.end();
    return { ...(r.tracks ? { tracks: r.tracks } : {}), packets: r.packets, warnings: r.warnings };
  }

  private async readFmp4(segment: Buffer, init: Buffer | undefined): Promise<SegmentMedia> {
    if (!init || init.length === 0) {
      // a segment that carries its own moov (a self-initialising one) stands alone
      if (segment.includes('moov', 0, 'latin1')) init = Buffer.alloc(0);
      else throw new HazeError('HAZE_ERR_MALFORMED', 'fMP4 HLS segment without an EXT-X-MAP init section');
    }
    const out: SegmentMedia = { packets: [], warnings: [] };
    if (init !== this.initBytes) {
      this.initBytes = init;
      this.initTracks = init.length > 0 ? (await openMp4(bufferByteSource(init))).tracks : undefined;
    }
    // one buffer of init + segment: sample positions are offsets into it
    const whole = init.length > 0 ? Buffer.concat([init, segment]) : segment;
    const index = await openMp4(bufferByteSource(whole), { partialFragment: 'warn' });
    const tracks = this.initTracks ?? index.tracks;
    if (this.announcedInit !== init || init.length === 0) {
      // a self-initialising segment announces its tracks every time; the hub ignores unchanged ones
      this.announcedInit = init;
      out.tracks = tracks;
    }
    for (const w of index.warnings) out.warnings.push(w);
    for (const ref of index.samples) {
      const stored = whole.subarray(ref.pos, ref.pos + ref.size);
      if (stored.length !== ref.size) throw new HazeError('HAZE_ERR_SHORT_READ', `fMP4 segment: sample at ${ref.pos} runs past the segment`);
      out.packets.push({ trackId: ref.trackId, timeMs: ref.timeMs, offsetMs: ref.offsetMs, keyframe: ref.keyframe, data: sampleData(stored, ref) });
    }
    return out;
  }
}
