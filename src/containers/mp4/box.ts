// ISO/IEC 14496-12 §4.2 box structure: a tiny writer and a bounds-checked walker.
//
//   Box:      size(32) type(32) [largesize(64) when size == 1] payload   (size 0: to the end)
//   FullBox:  Box + version(8) flags(24) before the payload
//
// The writer builds a tree of parts whose sizes are known up front, so serialising allocates
// one buffer at the computed total and every box header is written once (STYLE "Binary code").

import { ByteWriter } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';

/** Something of known size that writes itself at an offset and returns the end offset. */
export interface BoxPart {
  readonly size: number;
  write(out: Buffer, offset: number): number;
}

export type BoxChild = BoxPart | Uint8Array;

/** Largest box the writer produces: one 32-bit size field (fragments never need largesize). */
const MAX_BOX_SIZE = 0xffff_ffff;

function partSize(c: BoxChild): number {
  return c instanceof Uint8Array ? c.length : c.size;
}

function writePart(c: BoxChild, out: Buffer, offset: number): number {
  if (c instanceof Uint8Array) {
    out.set(c, offset);
    return offset + c.length;
  }
  return c.write(out, offset);
}

function checkType(type: string): void {
  if (type.length !== 4 || Buffer.byteLength(type, 'latin1') !== 4) throw new HazeError('HAZE_ERR_INVALID_ARG', `box type ${JSON.stringify(type)} is not four characters`);
}

function makeBox(type: string, header: number, writeHeader: (out: Buffer, o: number) => void, children: readonly BoxChild[]): BoxPart {
  checkType(type);
  let size = 8 + header;
  for (const c of children) size += partSize(c);
  if (size > MAX_BOX_SIZE) throw new HazeError('HAZE_ERR_TOO_LARGE', `box ${type} of ${size} bytes`);
  return {
    size,
    write(out: Buffer, offset: number): number {
      out.writeUInt32BE(size, offset);
      out.write(type, offset + 4, 4, 'latin1');
      writeHeader(out, offset + 8);
      let o = offset + 8 + header;
      for (const c of children) o = writePart(c, out, o);
      return o;
    },
  };
}

/** A plain box around its children (parts or raw payload bytes). */
export function box(type: string, ...children: BoxChild[]): BoxPart {
  return makeBox(type, 0, () => undefined, children);
}

/** A FullBox: version(8) flags(24) before the children. */
export function fullBox(type: string, version: number, flags: number, ...children: BoxChild[]): BoxPart {
  return makeBox(
    type,
    4,
    (out, o) => {
      out[o] = version & 0xff;
      out.writeUIntBE(flags & 0xffffff, o + 1, 3);
    },
    children,
  );
}

/** Payload bytes written by a callback into a writer of exactly `size` bytes. */
export function fields(size: number, fill: (w: ByteWriter) => void): Buffer {
  const w = new ByteWriter(size);
  fill(w);
  return w.done();
}

/** Serialises parts back to back into one buffer allocated at the total size. */
export function serialize(...parts: BoxChild[]): Buffer {
  let size = 0;
  for (const p of parts) size += partSize(p);
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  for (const p of parts) o = writePart(p, out, o);
  if (o !== size) throw new Error(`box writer: wrote ${o} of ${size} bytes`);
  return out;
}

// ---- reading ---------------------------------------------------------------------------------

export interface Mp4Box {
  type: string;
  /** Offset of the box header in the buffer walked. */
  start: number;
  /** Whole box size including its header. */
  size: number;
  /** The payload after the (large)size/type header, a subarray of the input. */
  payload: Buffer;
}

/**
 * The boxes between `start` and `end` of `buf`, in order. Each box must fit inside the range
 * (so boxes nested by walking a payload stay inside their parent); a size below the header,
 * past the end or a largesize past 2^53 is a HazeError.
 */
export function readBoxes(buf: Buffer, start = 0, end = buf.length): Mp4Box[] {
  if (start < 0 || end > buf.length || start > end) throw new HazeError('HAZE_ERR_INVALID_ARG', `box range ${start}..${end} outside ${buf.length} bytes`);
  const boxes: Mp4Box[] = [];
  let pos = start;
  while (pos < end) {
    if (end - pos < 8) throw new HazeError('HAZE_ERR_SHORT_READ', `box header at ${pos} needs 8 bytes, have ${end - pos}`);
    let size = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    let header = 8;
    if (size === 1) {
      if (end - pos < 16) throw new HazeError('HAZE_ERR_SHORT_READ', `largesize of box ${JSON.stringify(type)} at ${pos} cut short`);
      const hi = buf.readUInt32BE(pos + 8);
      if (hi >= 0x20_0000) throw new HazeError('HAZE_ERR_TOO_LARGE', `box ${JSON.stringify(type)} largesize beyond 2^53`);
      size = hi * 0x1_0000_0000 + buf.readUInt32BE(pos + 12);
      header = 16;
    } else if (size === 0) {
      size = end - pos;
    }
    if (size < header) throw new HazeError('HAZE_ERR_MALFORMED', `box ${JSON.stringify(type)} at ${pos} has size ${size} below its header`);
    if (size > end - pos) throw new HazeError('HAZE_ERR_SHORT_READ', `box ${JSON.stringify(type)} at ${pos} of ${size} bytes, ${end - pos} left`);
    boxes.push({ type, start: pos, size, payload: buf.subarray(pos + header, pos + size) });
    pos += size;
  }
  return boxes;
}

/**
 * The first box reached by following `path` (box types) down from the top level of `buf`;
 * container boxes are walked as plain boxes, so only pass containers without own fields
 * (moov, trak, mdia, minf, stbl, moof, traf, mvex, dinf ...). Undefined when missing.
 */
export function findBox(buf: Buffer, ...path: string[]): Mp4Box | undefined {
  let level = buf;
  let found: Mp4Box | undefined;
  for (const type of path) {
    found = readBoxes(level).find((b) => b.type === type);
    if (!found) return undefined;
    level = found.payload;
  }
  return found;
}

/** All boxes of `type` at the level reached by `path` (e.g. every `trak` in `moov`). */
export function findBoxes(buf: Buffer, path: readonly string[], type: string): Mp4Box[] {
  let level = buf;
  for (const t of path) {
    const b = readBoxes(level).find((x) => x.type === t);
    if (!b) return [];
    level = b.payload;
  }
  return readBoxes(level).filter((b) => b.type === type);
}
