// Matroska / WebM file source (RFC 9559, through src/containers/mkv/demux.ts): scan() streams
// the file through the push demuxer; bpos is the offset of the Cluster holding the block (the
// block's time needs the Cluster Timestamp). readFrom(clusterPos) primes a fresh demuxer with
// the file's start up to its first Cluster (EBML header, Segment header, SeekHead, Info,
// Tracks), jumps to the Cluster (MatroskaDemuxer.resumeAt) and streams on; every packet of that
// Cluster comes out, as scan() gave them all that bpos.
//
// H.264/HEVC decode times are derived from the presentation times of the frames before
// (reorder.ts), so for those tracks reading starts one cued Cluster earlier (Cues, RFC 9559
// §5.1.5, give the Cluster offsets) to warm the derivation up, and its packets are dropped.
// Without Cues the Clusters before it are found by walking the Segment's element headers from
// the first Cluster (skipping known sizes, descending into unknown-size Clusters), once per
// source.

import type { Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { MatroskaDemuxer, type MkvDemuxResult, type MkvPacket } from '../../containers/mkv/demux.js';
import { readMkvIndex, type MkvIndex } from '../../containers/mkv/mkv-index.js';
import type { FileSource, FileSourceOpener, ScanChunk } from './file-source.js';
import { chunksFrom, inFile, openHandle, readAt, readPushDemuxer, scanPushDemuxer, HandleSource } from './file-reads.js';

/** Cluster offsets kept in scan() to map block offsets to their Cluster (the recent ones suffice). */
const MAX_CLUSTERS = 4096;

function plain(p: MkvPacket): Packet {
  return { trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data };
}

class MkvSource extends HandleSource implements FileSource {
  private index: MkvIndex | undefined;
  /** Progress of the Cluster walk for files without Cues. */
  private walk: { clusters: number[]; next: number; window: Buffer; windowPos: number } | undefined;


  async *scan(): AsyncGenerator<ScanChunk> {
    this.check();
    const clusters: number[] = [];
    const demux = new MatroskaDemuxer({
      onCluster: (pos) => {
        clusters.push(pos);
        if (clusters.length > MAX_CLUSTERS) clusters.splice(0, MAX_CLUSTERS / 2);
      },
    });
    const clusterOf = (pos: number): number => {
      // The last Cluster starting at or before the block (blocks come out in file order, nearly).
      let lo = 0;
      let hi = clusters.length - 1;
      if (hi < 0) return pos;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (clusters[mid]! <= pos) lo = mid;
        else hi = mid - 1;
      }
      return clusters[lo]!;
    };
    yield* scanPushDemuxer(this.file, this.fh, demux, (p) => ({ ...plain(p), bpos: clusterOf(p.pos) }));
  }

  async *readFrom(bpos: number, tracks: readonly Track[]): AsyncGenerator<Packet[]> {
    this.check();
    try {
      const index = await this.readIndex();
      if (index.firstClusterPos < 0) return;
      if (bpos < index.firstClusterPos) bpos = index.firstClusterPos;
      const start = await this.warmUpStart(index, bpos, tracks);
      const demux = new MatroskaDemuxer();
      for await (const b of chunksFrom(this.fh, 0, undefined, index.firstClusterPos)) demux.push(b);
      demux.resumeAt(start);
      const keep = (r: MkvDemuxResult): Packet[] => {
        const out: Packet[] = [];
        for (const p of r.packets) if (p.pos >= bpos) out.push(plain(p));
        return out;
      };
      yield* readPushDemuxer(this.file, this.fh, start, demux, keep);
    } catch (err) {
      throw inFile(this.file, err);
    }
  }



  /** The first Cluster's offset and the Cues, read once per source. */
  private async readIndex(): Promise<MkvIndex> {
    if (this.index) return this.index;
    const size = (await this.fh.stat()).size;
    this.index = await readMkvIndex({ size, read: (pos, len) => readAt(this.fh, pos, len) });
    return this.index;
  }

  /** Where reading starts for `bpos`: one Cluster earlier when decode times need history. */
  private async warmUpStart(index: MkvIndex, bpos: number, tracks: readonly Track[]): Promise<number> {
    if (bpos <= index.firstClusterPos) return bpos;
    const reordered = tracks.length === 0 || tracks.some((t) => t.type === 'video' && (t.codec === 'H264' || t.codec === 'HEVC'));
    if (!reordered) return bpos;
    let best = index.firstClusterPos;
    if (index.cues.length > 0) {
      for (const c of index.cues) if (c.clusterPos < bpos && c.clusterPos > best) best = c.clusterPos;
      return best;
    }
    const walked = await this.walkClusters(index.firstClusterPos, bpos);
    for (const c of walked) if (c < bpos && c > best) best = c;
    return best;
  }

  /** Cluster offsets from the first one up to `until`, found by walking element headers. */
  private async walkClusters(first: number, until: number): Promise<number[]> {
    const w = (this.walk ??= { clusters: [], next: first, window: Buffer.alloc(0), windowPos: 0 });
    const size = (await this.fh.stat()).size;
    for (let steps = 0; w.next < until && w.next < size; steps++) {
      if (steps > 10_000_000) throw new HazeError('HAZE_ERR_TOO_LARGE', `more than 10 million elements before byte ${until}`);
      const at = w.next;
      if (at < w.windowPos || at + 12 > w.windowPos + w.window.length) {
        w.window = await readAt(this.fh, at, WALK_WINDOW);
        w.windowPos = at;
      }
      const h = elementHeader(w.window, at - w.windowPos, at);
      if (!h) break; // the file ends inside an element header
      if (h.id === CLUSTER_ID) {
        w.clusters.push(at);
        w.next = h.size < 0 ? at + h.headerSize : at + h.headerSize + h.size;
        continue;
      }
      if (h.size < 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `unknown size on element 0x${h.id.toString(16)} at byte ${at}`);
      w.next = at + h.headerSize + h.size;
    }
    return w.clusters;
  }
}

const CLUSTER_ID = 0x1f43b675;
const WALK_WINDOW = 64 * 1024;

/** An EBML element header (RFC 8794 §4-6) at buf[off]; undefined when cut short; size -1 = unknown. */
function elementHeader(buf: Buffer, off: number, abs: number): { id: number; headerSize: number; size: number } | undefined {
  if (off >= buf.length) return undefined;
  const first = buf[off]!;
  const idW = Math.clz32(first) - 23;
  if (first === 0 || idW > 4) throw new HazeError('HAZE_ERR_MALFORMED', `invalid element ID at byte ${abs}`);
  if (off + idW >= buf.length) return undefined;
  const s0 = buf[off + idW]!;
  const sW = Math.clz32(s0) - 23;
  if (s0 === 0) throw new HazeError('HAZE_ERR_MALFORMED', `element size at byte ${abs + idW} wider than 8 bytes`);
  if (off + idW + sW > buf.length) return undefined;
  let size = s0 & (0xff >> sW);
  let allOnes = size === 0xff >> sW;
  for (let i = 1; i < sW; i++) {
    const b = buf[off + idW + i]!;
    if (b !== 0xff) allOnes = false;
    size = size * 256 + b;
  }
  return { id: buf.readUIntBE(off, idW), headerSize: idW + sW, size: allOnes ? -1 : size };
}

/** Opens a Matroska/WebM file: HAZE_ERR_NOT_FOUND, or HAZE_ERR_MALFORMED without an EBML header, naming it. */
export const openMkvSource: FileSourceOpener = async (file) => {
  const fh = await openHandle(file);
  try {
    // An empty file is a recording that has not started yet, not an error.
    const magic = await readAt(fh, 0, 4);
    if (magic.length > 0 && !magic.equals(EBML_MAGIC.subarray(0, magic.length))) throw new HazeError('HAZE_ERR_MALFORMED', `${file}: no EBML header at byte 0`);
  } catch (err) {
    await fh.close();
    throw err;
  }
  return new MkvSource(file, fh);
};

const EBML_MAGIC = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
