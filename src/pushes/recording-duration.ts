// A recording's length from its first and last bytes only (the API's `recordings` lists many
// files, some still being written, so no file is read whole). Pure: the caller reads a head and
// a tail; each function returns milliseconds or undefined when the bytes do not tell.
//   FLV (spec v10.1 Annex E): first audio/video tag timestamp in the head, the last tag's
//     (append-tail.ts) in the tail.
//   MPEG-TS (ISO 13818-1 §2.4.3.7): lowest PES PTS of the head, highest of the tail.
//   Matroska/WebM (RFC 9559 §5.1.3): a Cluster's Timestamp plus its SimpleBlocks' (and Blocks')
//     relative timestamps; the first Cluster of the head, the last one of the tail. A finished
//     Haze recording also states Info/Duration (read by the caller through mkv-index.ts).
//   HLS playlists: the sum of EXTINF.

import { lastFlvTimestampMs, lastTsPtsMs } from './append-tail.js';
import { readVint } from '../containers/mkv/ebml.js';
import { HazeError } from '../util/errors.js';

const TS_PACKET = 188;

/** Timestamp of the first audio or video tag of an FLV file's head. */
export function firstFlvTimestampMs(head: Buffer): number | undefined {
  if (head.length < 13 || head.toString('latin1', 0, 3) !== 'FLV') return undefined;
  let at = head.readUInt32BE(5) + 4; // header size, then PreviousTagSize0
  for (let n = 0; n < 64 && at + 11 <= head.length; n++) {
    const type = head[at]! & 0x1f;
    const size = head.readUIntBE(at + 1, 3);
    if (type === 8 || type === 9) return head.readUIntBE(at + 4, 3) | (head[at + 7]! << 24);
    if (type !== 18) return undefined; // not a tag boundary: give up rather than guess
    at += 11 + size + 4;
  }
  return undefined;
}

export function flvDurationMs(head: Buffer, tail: Buffer): number | undefined {
  const first = firstFlvTimestampMs(head);
  const last = lastFlvTimestampMs(tail);
  return first !== undefined && last !== undefined && last >= first ? last - first : undefined;
}

/** The lowest PTS (ms) in the complete TS packets of `buf`, which starts at a packet boundary. */
export function firstTsPtsMs(buf: Buffer): number | undefined {
  let best: number | undefined;
  for (let at = 0; at + TS_PACKET <= buf.length; at += TS_PACKET) {
    const pts = lastTsPtsMs(buf.subarray(at, at + TS_PACKET));
    if (pts !== undefined && (best === undefined || pts < best)) best = pts;
  }
  return best;
}

/** `tail` must start at a packet boundary of the file (its offset a multiple of 188). */
export function tsDurationMs(head: Buffer, tail: Buffer): number | undefined {
  const first = firstTsPtsMs(head);
  const last = lastTsPtsMs(tail);
  return first !== undefined && last !== undefined && last >= first ? last - first : undefined;
}

const CLUSTER_ID = [0x1f, 0x43, 0xb6, 0x75];
const ID_TIMESTAMP = 0xe7;
const ID_SIMPLEBLOCK = 0xa3;
const ID_BLOCKGROUP = 0xa0;
const ID_BLOCK = 0xa1;

function isClusterAt(buf: Buffer, at: number): boolean {
  return buf[at] === CLUSTER_ID[0] && buf[at + 1] === CLUSTER_ID[1] && buf[at + 2] === CLUSTER_ID[2] && buf[at + 3] === CLUSTER_ID[3];
}

/** An element header at `at`: id (1-4 bytes, as read) and size (-1 unknown); undefined if cut or invalid. */
function elementAt(buf: Buffer, at: number): { id: number; dataAt: number; size: number } | undefined {
  if (at >= buf.length) return undefined;
  const first = buf[at]!;
  const idW = Math.clz32(first) - 23;
  if (first === 0 || idW > 4 || at + idW > buf.length) return undefined;
  const id = buf.readUIntBE(at, idW);
  try {
    const v = readVint(buf, at + idW);
    return { id, dataAt: at + idW + v.width, size: v.allOnes ? -1 : v.value };
  } catch (err) {
    if (err instanceof HazeError) return undefined;
    throw err;
  }
}

/** Block (or SimpleBlock) data: track number vint, then a signed 16-bit relative timestamp. */
function blockRelMs(buf: Buffer, dataAt: number, end: number): number | undefined {
  try {
    const track = readVint(buf, dataAt, end);
    const at = dataAt + track.width;
    return at + 2 <= end ? buf.readInt16BE(at) : undefined;
  } catch (err) {
    if (err instanceof HazeError) return undefined;
    throw err;
  }
}

/**
 * The lowest and highest block time (ms, TimestampScale 1 ms as Haze writes) of the Cluster
 * starting at `at`, as far as `buf` holds it; undefined if `at` is not a Cluster with a Timestamp.
 */
export function mkvClusterTimes(buf: Buffer, at: number): { firstMs: number; lastMs: number } | undefined {
  const cl = elementAt(buf, at);
  if (!cl || !isClusterAt(buf, at)) return undefined;
  const end = cl.size < 0 ? buf.length : Math.min(buf.length, cl.dataAt + cl.size);
  let base: number | undefined;
  let first: number | undefined;
  let last: number | undefined;
  const note = (rel: number | undefined): void => {
    if (rel === undefined || base === undefined) return;
    const t = base + rel;
    if (first === undefined || t < first) first = t;
    if (last === undefined || t > last) last = t;
  };
  let pos = cl.dataAt;
  for (let n = 0; n < 100_000 && pos < end; n++) {
    // an unknown-size Cluster ends where the next top-level element begins
    if (pos !== cl.dataAt && isClusterAt(buf, pos)) break;
    const el = elementAt(buf, pos);
    if (!el || el.size < 0) break;
    const elEnd = el.dataAt + el.size;
    if (el.id === ID_TIMESTAMP) {
      if (el.size < 1 || el.size > 6 || elEnd > end) break;
      base = buf.readUIntBE(el.dataAt, el.size);
    } else if (el.id === ID_SIMPLEBLOCK) {
      note(blockRelMs(buf, el.dataAt, Math.min(end, elEnd)));
    } else if (el.id === ID_BLOCKGROUP) {
      const inner = elementAt(buf, el.dataAt);
      if (inner && inner.id === ID_BLOCK) note(blockRelMs(buf, inner.dataAt, Math.min(end, elEnd)));
    } else if (el.id !== 0xec /* Void */ && el.id !== 0xa7 /* Position */ && el.id !== 0xab /* PrevSize */) {
      break; // another top-level element (Cues, Tags ...): the Cluster is over
    }
    if (elEnd > end) break; // the rest of this element is past what was read
    pos = elEnd;
  }
  return base === undefined ? undefined : { firstMs: first ?? base, lastMs: last ?? base };
}

/** Times of the first Cluster in `head` (searched from the start) and of the last in `tail`. */
export function mkvDurationMs(head: Buffer, tail: Buffer): number | undefined {
  let first: number | undefined;
  for (let at = head.indexOf(Buffer.from(CLUSTER_ID)); at >= 0; at = head.indexOf(Buffer.from(CLUSTER_ID), at + 1)) {
    const t = mkvClusterTimes(head, at);
    if (t) {
      first = t.firstMs;
      break;
    }
  }
  let last: number | undefined;
  // the last Cluster that parses (an ID inside media data fails its own checks or gives a time)
  for (let at = tail.lastIndexOf(Buffer.from(CLUSTER_ID)); at >= 0 && last === undefined; at = at > 0 ? tail.lastIndexOf(Buffer.from(CLUSTER_ID), at - 1) : -1) {
    last = mkvClusterTimes(tail, at)?.lastMs;
  }
  return first !== undefined && last !== undefined && last >= first ? last - first : undefined;
}

/** The segments of an HLS media playlist (URIs as written) and their summed EXTINF, ms. */
export function hlsPlaylistSegments(text: string, maxSegments = 100_000): { uris: string[]; durationMs: number } {
  const uris: string[] = [];
  let durationMs = 0;
  let pending: number | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#EXTINF:')) {
      const d = Number.parseFloat(line.slice(8));
      pending = Number.isFinite(d) && d >= 0 ? d : 0;
    } else if (line && !line.startsWith('#')) {
      if (uris.length >= maxSegments) break;
      uris.push(line);
      durationMs += (pending ?? 0) * 1000;
      pending = undefined;
    }
  }
  return { uris, durationMs: Math.round(durationMs) };
}
