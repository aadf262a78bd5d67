// Random-access Matroska index reader (RFC 9559 §5.1.1 SeekHead, §5.1.2 Info, §5.1.4 Tracks,
// §5.1.5 Cues): reads the EBML header, walks the Segment's top-level elements up to the first
// Cluster, and follows SeekHead entries to Cues (and Info/Tracks placed after the Clusters)
// without reading any Cluster. Positions in SeekHead/Cues are relative to the Segment's data.

import { HazeError } from '../../util/errors.js';
import type { Track } from '../../media/types.js';
import { child, ID, readElements, readFloat, readString, readUint, type EbmlElement } from './ebml.js';
import { MKV_ID, parseCues, subElements, type MkvCue, type MkvInfo } from './demux.js';
import { parseTrackEntry } from './tracks.js';

export interface MkvIndexSource {
  size: number;
  /** Bytes [pos, pos+len) (fewer only at the end of the source). */
  read(pos: number, len: number): Buffer | Promise<Buffer>;
}

export interface MkvIndex {
  tracks: Track[];
  info: MkvInfo;
  cues: MkvCue[];
  /** Absolute offset of the first Cluster, -1 if none was found. */
  firstClusterPos: number;
  segmentDataStart: number;
  warnings: string[];
}

const MAX_ELEMENT = 32 * 1024 * 1024;
const MAX_TOP_ELEMENTS = 4096;

interface Header {
  id: number;
  headerSize: number;
  size: number;
}

async function header(src: MkvIndexSource, pos: number): Promise<Header> {
  if (pos < 0 || pos >= src.size) throw new HazeError('HAZE_ERR_SHORT_READ', `element header at byte ${pos} past the end (${src.size})`);
  const b = await src.read(pos, Math.min(12, src.size - pos));
  if (b.length < 2) throw new HazeError('HAZE_ERR_SHORT_READ', `element header at byte ${pos} past the end`);
  const first = b[0]!;
  const idW = Math.clz32(first) - 23;
  if (first === 0 || idW > 4 || idW >= b.length) throw new HazeError('HAZE_ERR_MALFORMED', `invalid element ID at byte ${pos}`);
  const s0 = b[idW]!;
  const sW = Math.clz32(s0) - 23;
  if (s0 === 0 || idW + sW > b.length) throw new HazeError('HAZE_ERR_MALFORMED', `invalid element size at byte ${pos + idW}`);
  let size = s0 & (0xff >> sW);
  let allOnes = size === 0xff >> sW;
  for (let i = 1; i < sW; i++) {
    if (b[idW + i] !== 0xff) allOnes = false;
    size = size * 256 + b[idW + i]!;
  }
  return { id: b.readUIntBE(0, idW), headerSize: idW + sW, size: allOnes ? -1 : size };
}

async function body(src: MkvIndexSource, pos: number, h: Header): Promise<EbmlElement> {
  if (h.size < 0 || h.size > MAX_ELEMENT) throw new HazeError('HAZE_ERR_TOO_LARGE', `element 0x${h.id.toString(16)} at byte ${pos} has size ${h.size}`);
  const data = await src.read(pos + h.headerSize, h.size);
  if (data.length < h.size) throw new HazeError('HAZE_ERR_SHORT_READ', `element 0x${h.id.toString(16)} at byte ${pos} runs past the end`);
  const children = readElements(data, { maxDepth: 8, maxElements: Math.max(16, data.length) });
  return { id: h.id, offset: pos, headerSize: h.headerSize, unknownSize: false, data, children };
}

/** Reads tracks, info and cues of a Matroska/WebM file through random access. */
export async function readMkvIndex(src: MkvIndexSource): Promise<MkvIndex> {
  const warnings: string[] = [];
  const ebmlH = await header(src, 0);
  if (ebmlH.id !== ID.EBML) throw new HazeError('HAZE_ERR_MALFORMED', 'no EBML header at byte 0');
  const ebmlEl = await body(src, 0, ebmlH);
  const docType = child(ebmlEl, ID.DocType);
  const type = docType ? readString(docType) : 'matroska';
  if (type !== 'matroska' && type !== 'webm') throw new HazeError('HAZE_ERR_UNSUPPORTED', `EBML DocType "${type}"`);
  let pos = ebmlH.headerSize + ebmlH.size;
  let segH = await header(src, pos);
  // Skip top-level Void elements before the Segment.
  while (segH.id === ID.Void && segH.size >= 0) {
    pos += segH.headerSize + segH.size;
    segH = await header(src, pos);
  }
  if (segH.id !== ID.Segment) throw new HazeError('HAZE_ERR_MALFORMED', `no Segment at byte ${pos}`);
  const segmentDataStart = pos + segH.headerSize;
  const segmentEnd = segH.size < 0 ? src.size : Math.min(src.size, segmentDataStart + segH.size);

  const found = new Map<number, EbmlElement>();
  const seekTargets = new Map<number, number>();
  const visited = new Set<number>();
  let firstClusterPos = -1;
  const visit = async (at: number): Promise<Header> => {
    visited.add(at);
    const h = await header(src, at);
    if ((h.id === ID.Info || h.id === ID.Tracks || h.id === ID.Cues || h.id === ID.SeekHead) && !found.has(h.id)) {
      const el = await body(src, at, h);
      found.set(h.id, el);
      if (h.id === ID.SeekHead) {
        for (const seek of el.children ?? []) {
          if (seek.id !== MKV_ID.Seek) continue;
          const sk = subElements(seek);
          const idEl = sk.find((e) => e.id === MKV_ID.SeekID);
          const posEl = sk.find((e) => e.id === MKV_ID.SeekPosition);
          if (idEl && posEl && idEl.data.length >= 1 && idEl.data.length <= 4) seekTargets.set(idEl.data.readUIntBE(0, idEl.data.length), segmentDataStart + readUint(posEl));
        }
      }
    }
    return h;
  };
  // Linear walk up to the first Cluster.
  pos = segmentDataStart;
  for (let n = 0; pos < segmentEnd && n < MAX_TOP_ELEMENTS; n++) {
    const h = await visit(pos);
    if (h.id === ID.Cluster) {
      firstClusterPos = pos;
      break;
    }
    if (h.size < 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `unknown size on element 0x${h.id.toString(16)} at byte ${pos}`);
    pos += h.headerSize + h.size;
  }
  // Then the SeekHead's pointers (a second SeekHead included) to what is still missing.
  for (let round = 0; round < 4; round++) {
    let more = false;
    for (const [id, at] of [...seekTargets]) {
      if (found.has(id) || visited.has(at) || at >= src.size) continue;
      if (id !== ID.Info && id !== ID.Tracks && id !== ID.Cues && id !== ID.SeekHead) continue;
      const h = await visit(at);
      if (h.id !== id) warnings.push(`SeekHead points at byte ${at} for 0x${id.toString(16)}, found 0x${h.id.toString(16)}`);
      more = true;
    }
    if (!more) break;
  }
  const infoEl = found.get(ID.Info);
  const scaleEl = infoEl && child(infoEl, ID.TimestampScale);
  const info: MkvInfo = { timestampScaleNs: scaleEl ? readUint(scaleEl) : 1_000_000 };
  if (info.timestampScaleNs === 0) throw new HazeError('HAZE_ERR_MALFORMED', 'TimestampScale 0');
  const durEl = infoEl && child(infoEl, ID.Duration);
  if (durEl) {
    const d = readFloat(durEl);
    if (Number.isFinite(d) && d >= 0) info.durationMs = Math.round((d * info.timestampScaleNs) / 1e6);
  }
  const tracks: Track[] = [];
  const tracksEl = found.get(ID.Tracks);
  if (!tracksEl) warnings.push('no Tracks element found');
  for (const entry of tracksEl?.children ?? []) {
    if (entry.id !== ID.TrackEntry) continue;
    const t = parseTrackEntry(entry);
    if (typeof t === 'string') warnings.push(t);
    else tracks.push(t.track);
  }
  const cuesEl = found.get(ID.Cues);
  const cues = cuesEl ? parseCues(cuesEl.children ?? [], info.timestampScaleNs, segmentDataStart) : [];
  if (!cuesEl) warnings.push('no Cues element found');
  return { tracks, info, cues, firstClusterPos, segmentDataStart, warnings };
}
