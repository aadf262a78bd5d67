// MP4/MOV describer (ISO/IEC 14496-12 §4.2 boxes, §8 box tree): the box tree (top-level boxes
// from their headers, never reading mdat; moov/moof children walked down the container boxes),
// then one line per sample from the MP4 reader's index (decode order, raw media times: edit
// lists are not applied, as MistServer reads MP4). Needs random access, so it reads through a
// ByteSource instead of pushed chunks.

import { readBoxes } from '../containers/mp4/box.js';
import { openMp4, type ByteSource } from '../containers/mp4/demux.js';
import { problemOf, trackLine, type AnalyseEvent } from './model.js';

/** Boxes whose payload is only child boxes (the ones the tree descends into). */
const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'dinf', 'edts', 'mvex', 'moof', 'traf', 'udta', 'mfra']);
const MAX_TREE_LINES = 400;
const MAX_TOP_BOXES = 100_000;
const MAX_TREE_BOX_BYTES = 64 * 1024 * 1024;

function tree(payload: Buffer, base: number, depth: number, out: AnalyseEvent[]): void {
  if (depth > 8) return;
  for (const b of readBoxes(payload)) {
    if (out.length >= MAX_TREE_LINES) return;
    out.push({ kind: 'header', text: `${'  '.repeat(depth)}${b.type} at ${base + b.start} size ${b.size}` });
    if (CONTAINERS.has(b.type)) tree(b.payload, base + b.start + (b.size - b.payload.length), depth + 1, out);
  }
}

/** The box tree of an MP4 source; problems for boxes that do not fit. */
export async function describeMp4Boxes(src: ByteSource): Promise<AnalyseEvent[]> {
  const ev: AnalyseEvent[] = [];
  let pos = 0;
  let n = 0;
  try {
    while (src.size - pos >= 8 && n++ < MAX_TOP_BOXES) {
      const h = await src.read(pos, 16);
      let size = h.readUInt32BE(0);
      const type = h.toString('latin1', 4, 8);
      let header = 8;
      if (size === 1 && h.length >= 16) {
        size = h.readUInt32BE(8) * 0x1_0000_0000 + h.readUInt32BE(12);
        header = 16;
      } else if (size === 0) size = src.size - pos;
      if (size < header) {
        ev.push({ kind: 'problem', problem: { rule: 'HAZE_ERR_MALFORMED', text: `box '${type}' at ${pos} has size ${size}`, pos } });
        return ev;
      }
      const cut = size > src.size - pos;
      ev.push({ kind: 'header', text: `${type} at ${pos} size ${size}${cut ? ` (file ends after ${src.size - pos})` : ''}` });
      if (cut) {
        ev.push({ kind: 'problem', problem: { rule: 'TRUNCATED', text: `box '${type}' at byte ${pos} of ${size} B is cut short: ${src.size - pos} B present`, pos } });
        return ev;
      }
      if (CONTAINERS.has(type) && size <= MAX_TREE_BOX_BYTES && ev.length < MAX_TREE_LINES) {
        const body = await src.read(pos + header, size - header);
        try {
          tree(body, pos + header, 1, ev);
        } catch (err) {
          ev.push({ kind: 'problem', problem: problemOf(err, pos, `box '${type}'`) });
        }
      }
      pos += size;
    }
    if (src.size - pos > 0 && src.size - pos < 8) {
      ev.push({ kind: 'problem', problem: { rule: 'TRUNCATED', text: `${src.size - pos} stray bytes after the last box at byte ${pos}`, pos } });
    }
  } catch (err) {
    ev.push({ kind: 'problem', problem: problemOf(err, pos, 'MP4 box walk') });
  }
  return ev;
}

/** The tracks and samples of an MP4 source (the sample records, not the data). */
export async function describeMp4Samples(src: ByteSource): Promise<AnalyseEvent[]> {
  const ev: AnalyseEvent[] = [];
  try {
    const index = await openMp4(src, { editList: 'ignore' });
    ev.push({ kind: 'header', text: `MP4 brand '${index.brand}', ${index.fragmented ? 'fragmented, ' : ''}duration ${index.durationMs} ms, ${index.samples.length} samples` });
    for (const t of index.tracks) ev.push({ kind: 'header', text: trackLine(t) });
    ev.push({ kind: 'tracks', tracks: index.tracks });
    for (const w of index.warnings) {
      // samples or boxes past the end of the file: a truncated file
      if (/past the end|outside the file|truncated/.test(w)) ev.push({ kind: 'problem', problem: { rule: 'TRUNCATED', text: w, pos: Number(/at (\d+)/.exec(w)?.[1] ?? -1) } });
      else ev.push({ kind: 'note', text: w });
    }
    for (const s of index.samples) {
      ev.push({ kind: 'packet', packet: { trackId: s.trackId, timeMs: s.timeMs, offsetMs: s.offsetMs, keyframe: s.keyframe, size: s.size, pos: s.pos } });
    }
  } catch (err) {
    ev.push({ kind: 'problem', problem: problemOf(err, -1, 'MP4') });
  }
  return ev;
}
