// Appending tracks to a finished DTSC file (reference/mistserver.md §2.4 `moreheader`; the
// MistDTSCMerge "append" of the seed text): the file's bytes stay as they are except the 8-byte
// `moreheader` value of its first header, which ends up pointing at a new complete header
// written after the appended packets:
//
//   before: [H0 moreheader=A][packets][A: header with index]
//   after:  [H0 moreheader=B][packets][A: header with index][added packets][B: header, all tracks]
//
// The first header's frame ends with the member `moreheader` (00 0A "moreheader" 01 <i64>) and
// the object end 00 00 EE, as DtscFileWriter writes it; that layout is checked before patching.
// Pure: the caller does the I/O (see src/cli/merge.ts for the durable order of the writes).

import type { Packet } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { writeDtscHeader, type DtscStreamMeta, type DtscTrack } from './header.js';
import { DtscIndexBuilder } from './index-builder.js';
import { encodeDtp2 } from './packets.js';

const MOREHEADER_MEMBER = Buffer.from('\x00\x0amoreheader\x01', 'latin1');
const OBJECT_END = Buffer.from([0x00, 0x00, 0xee]);

/**
 * Ids for added tracks: each keeps its id when no existing or earlier added track has it, else
 * takes the smallest free id from 1 up.
 */
export function assignTrackIds(taken: Iterable<number>, wanted: readonly number[]): number[] {
  const used = new Set(taken);
  const out: number[] = [];
  let probe = 1;
  for (const id of wanted) {
    let got = id;
    if (used.has(got) || got < 1) {
      while (used.has(probe)) probe++;
      got = probe;
    }
    used.add(got);
    out.push(got);
  }
  return out;
}

/**
 * Where the 8-byte `moreheader` value sits in a first header frame, checking the frame ends
 * with that member as DtscFileWriter writes it and that its value is `expected`.
 */
export function moreheaderPosition(firstHeader: Buffer, expected: number): number {
  const n = firstHeader.length;
  const valueAt = n - OBJECT_END.length - 8;
  const memberAt = valueAt - MOREHEADER_MEMBER.length;
  if (
    memberAt < 8 ||
    firstHeader.toString('latin1', 0, 4) !== 'DTSC' ||
    firstHeader.readUInt32BE(4) + 8 !== n ||
    !firstHeader.subarray(memberAt, valueAt).equals(MOREHEADER_MEMBER) ||
    !firstHeader.subarray(n - OBJECT_END.length).equals(OBJECT_END)
  ) {
    throw new HazeError('HAZE_ERR_UNSUPPORTED', 'DTSC: the first header does not end with a moreheader member, so nothing can be appended in place (mix the files instead)');
  }
  const value = Number(firstHeader.readBigInt64BE(valueAt));
  if (value !== expected) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: first header's moreheader is ${value}, expected ${expected}`);
  return valueAt;
}

/** The 8 bytes that make a first header point at `headerAt`. */
export function moreheaderBytes(headerAt: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(headerAt));
  return b;
}

/** A track to append: the source track (any id) and the id it gets in the target. */
export interface AppendTrack {
  track: DtscTrack;
  newId: number;
}

/**
 * Builds what an append writes after the target's old end: the DTP2 frames of the added
 * tracks (each with its own file offset as bpos), then the new complete header.
 */
export class DtscAppender {
  private readonly index = new DtscIndexBuilder();
  private offset: number;
  private readonly video = new Set<number>();
  private readonly byId = new Map<number, AppendTrack>();

  /**
   * `target` is the target's newest header (its tracks with their indexes), `oldEnd` the
   * target's size, where the first added packet goes.
   */
  constructor(
    private readonly target: DtscStreamMeta,
    private readonly added: readonly AppendTrack[],
    oldEnd: number,
  ) {
    this.offset = oldEnd;
    const ids = new Set(target.tracks.map((t) => t.id));
    for (const a of added) {
      if (ids.has(a.newId)) throw new HazeError('HAZE_ERR_INVALID_ARG', `DTSC append: track id ${a.newId} is taken`);
      ids.add(a.newId);
      this.byId.set(a.newId, a);
      this.index.addTrack(a.newId, a.track.type === 'video');
      if (a.track.type === 'video') this.video.add(a.newId);
    }
  }

  /** The frame for a packet of an added track (`p.trackId` is its new id), written at the current end. */
  packet(p: Packet): Buffer {
    if (!this.byId.has(p.trackId)) throw new HazeError('HAZE_ERR_INVALID_ARG', `DTSC append: packet of unknown track ${p.trackId}`);
    // only video keeps keyframe flags in DTSC, as DtscFileWriter writes it
    const keyframe = p.keyframe && this.video.has(p.trackId);
    const frame = encodeDtp2(keyframe === p.keyframe ? p : { ...p, keyframe }, p.trackId, this.offset);
    this.index.add({ trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe, size: p.data.length, bpos: this.offset });
    this.offset += frame.length;
    return frame;
  }

  /** Where the next frame (or the header, after the last packet) goes. */
  get position(): number {
    return this.offset;
  }

  /**
   * The new header (all target tracks as they were, then the added ones with their index) and
   * its offset. Refuses when an added track got no packets.
   */
  header(): { header: Buffer; headerAt: number; tracks: DtscTrack[] } {
    let nextIdx = this.target.tracks.reduce((m, t, i) => Math.max(m, (t.idx ?? i) + 1), 0);
    const tracks: DtscTrack[] = this.target.tracks.map((t, i) => ({ ...t, idx: t.idx ?? i }));
    for (const a of this.added) {
      const idx = this.index.track(a.newId);
      if (!idx) throw new HazeError('HAZE_ERR_UNSUPPORTED', `DTSC append: track ${a.track.id} (${a.track.codec}) has no packets`);
      const { nowMs: _n, missedFrags: _m, ...src } = a.track;
      tracks.push({ ...src, id: a.newId, idx: nextIdx++, tables: idx.tables, firstMs: idx.firstMs, lastMs: idx.lastMs, bps: idx.bps, maxBps: idx.maxBps } as DtscTrack);
    }
    const meta: DtscStreamMeta = { live: false, vod: true, tracks };
    if (this.target.unixzeroMs !== undefined) meta.unixzeroMs = this.target.unixzeroMs;
    if (this.target.inputLocalVars !== undefined) meta.inputLocalVars = this.target.inputLocalVars;
    return { header: writeDtscHeader(meta), headerAt: this.offset, tracks };
  }
}
