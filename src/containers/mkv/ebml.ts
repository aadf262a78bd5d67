// EBML (RFC 8794) as Matroska uses it (RFC 9559): element = ID (VINT with its marker kept) +
// data size (VINT, marker stripped) + data. Writing builds a small element tree, computes every
// size first and fills one buffer allocated at the total size. Reading is bounds-checked and
// bounded in depth and element count; it serves tests and analysers, not the live hot path.
//
//   VINT: 1xxxxxxx | 01xxxxxx xxxxxxxx | 001xxxxx ... (width = leading zeros + 1, up to 8 bytes)
//   data size with all value bits set = unknown size (only for master elements)

import { HazeError } from '../../util/errors.js';

// ---- element IDs (RFC 8794 §11.2, RFC 9559 §5.1) --------------------------------------------

export const ID = {
  EBML: 0x1a45dfa3,
  EBMLVersion: 0x4286,
  EBMLReadVersion: 0x42f7,
  EBMLMaxIDLength: 0x42f2,
  EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282,
  DocTypeVersion: 0x4287,
  DocTypeReadVersion: 0x4285,
  Void: 0xec,
  CRC32: 0xbf,
  Segment: 0x18538067,
  SeekHead: 0x114d9b74,
  Info: 0x1549a966,
  TimestampScale: 0x2ad7b1,
  Duration: 0x4489,
  MuxingApp: 0x4d80,
  WritingApp: 0x5741,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackUID: 0x73c5,
  TrackType: 0x83,
  FlagLacing: 0x9c,
  Language: 0x22b59c,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  CodecDelay: 0x56aa,
  SeekPreRoll: 0x56bb,
  DefaultDuration: 0x23e383,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  Audio: 0xe1,
  SamplingFrequency: 0xb5,
  Channels: 0x9f,
  BitDepth: 0x6264,
  Cluster: 0x1f43b675,
  Timestamp: 0xe7,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  Cues: 0x1c53bb6b,
  Chapters: 0x1043a770,
  Tags: 0x1254c367,
  Attachments: 0x1941a469,
} as const;

/** Elements whose data is a list of child elements (the reader descends into these). */
const MASTER_IDS: ReadonlySet<number> = new Set([
  ID.EBML, ID.Segment, ID.SeekHead, ID.Info, ID.Tracks, ID.TrackEntry, ID.Video, ID.Audio,
  ID.Cluster, ID.BlockGroup, ID.Cues, ID.Chapters, ID.Tags, ID.Attachments,
]);

/** Top-level and Segment-level IDs: one of these ends an unknown-size Cluster (RFC 9559 §6.2). */
const UPPER_LEVEL_IDS: ReadonlySet<number> = new Set([
  ID.EBML, ID.Segment, ID.SeekHead, ID.Info, ID.Tracks, ID.Cluster, ID.Cues, ID.Chapters, ID.Tags, ID.Attachments,
]);

/** Data size of an unknown-size element, as written: 8-byte VINT with all value bits set. */
export const UNKNOWN_SIZE_BYTES: Buffer = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

// ---- VINT helpers --------------------------------------------------------------------------

/** Bytes the ID takes: IDs are stored with their VINT marker, so their value gives the width. */
export function idWidth(id: number): number {
  if (id <= 0xff) return 1;
  if (id <= 0xffff) return 2;
  if (id <= 0xffffff) return 3;
  return 4;
}

/** Width of the shortest VINT that holds `v` (the all-ones value of each width is reserved). */
export function vintWidth(v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `VINT value ${v} out of range`);
  let width = 1;
  while (width < 8 && v >= 2 ** (7 * width) - 1) width++;
  if (v >= 2 ** (7 * width) - 1) throw new HazeError('HAZE_ERR_TOO_LARGE', `VINT value ${v} too large`);
  return width;
}

export function writeId(buf: Buffer, pos: number, id: number): number {
  const w = idWidth(id);
  buf.writeUIntBE(id, pos, w);
  return pos + w;
}

/** Writes `v` as a VINT of exactly `width` bytes (a wider VINT than needed is valid). */
export function writeVint(buf: Buffer, pos: number, v: number, width: number): number {
  // Marker bit on top, value below; done in two halves so 8-byte VINTs stay exact.
  const hi = Math.floor(v / 0x1_0000_0000);
  const lo = v >>> 0;
  if (width <= 4) {
    buf.writeUIntBE(lo + 2 ** (8 * width - width), pos, width);
  } else {
    const hiWidth = width - 4;
    buf.writeUIntBE(hi + 2 ** (8 * hiWidth - width), pos, hiWidth);
    buf.writeUInt32BE(lo, pos + hiWidth);
  }
  return pos + width;
}

/** Bytes an unsigned integer element's data takes (at least one; up to 8). */
export function uintWidth(v: number): number {
  let w = 1;
  while (w < 8 && v >= 2 ** (8 * w)) w++;
  return w;
}

function intWidth(v: number): number {
  let w = 1;
  while (w < 8 && (v < -(2 ** (8 * w - 1)) || v >= 2 ** (8 * w - 1))) w++;
  return w;
}

function writeUintData(buf: Buffer, pos: number, v: number, width: number): number {
  if (width <= 6) return buf.writeUIntBE(v, pos, width);
  const hiWidth = width - 4;
  buf.writeUIntBE(Math.floor(v / 0x1_0000_0000), pos, hiWidth);
  buf.writeUInt32BE(v >>> 0, pos + hiWidth);
  return pos + width;
}

// ---- element tree writer ---------------------------------------------------------------------

export type EbmlNode =
  | { id: number; kind: 'master'; children: EbmlNode[]; unknownSize?: boolean }
  | { id: number; kind: 'uint'; value: number }
  | { id: number; kind: 'int'; value: number }
  | { id: number; kind: 'float'; value: number }
  | { id: number; kind: 'string'; value: string }
  | { id: number; kind: 'binary'; value: Uint8Array };

export const ebml = {
  master: (id: number, children: EbmlNode[], unknownSize = false): EbmlNode => ({ id, kind: 'master', children, unknownSize }),
  uint: (id: number, value: number): EbmlNode => {
    if (!Number.isSafeInteger(value) || value < 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `uint element 0x${id.toString(16)} value ${value}`);
    return { id, kind: 'uint', value };
  },
  int: (id: number, value: number): EbmlNode => {
    if (!Number.isSafeInteger(value)) throw new HazeError('HAZE_ERR_INVALID_ARG', `int element 0x${id.toString(16)} value ${value}`);
    return { id, kind: 'int', value };
  },
  float: (id: number, value: number): EbmlNode => ({ id, kind: 'float', value }),
  string: (id: number, value: string): EbmlNode => ({ id, kind: 'string', value }),
  binary: (id: number, value: Uint8Array): EbmlNode => ({ id, kind: 'binary', value }),
};

/** Size of an element's data (without its ID and size field). */
function dataSize(n: EbmlNode): number {
  switch (n.kind) {
    case 'master': {
      let s = 0;
      for (const c of n.children) s += elementSize(c);
      return s;
    }
    case 'uint':
      return uintWidth(n.value);
    case 'int':
      return intWidth(n.value);
    case 'float':
      return 8;
    case 'string':
      return Buffer.byteLength(n.value, 'utf8');
    case 'binary':
      return n.value.length;
  }
}

/** Total bytes the element takes, header included. */
export function elementSize(n: EbmlNode): number {
  const ds = dataSize(n);
  const sizeWidth = n.kind === 'master' && n.unknownSize ? 8 : vintWidth(ds);
  return idWidth(n.id) + sizeWidth + ds;
}

function writeNode(buf: Buffer, pos: number, n: EbmlNode): number {
  pos = writeId(buf, pos, n.id);
  const ds = dataSize(n);
  if (n.kind === 'master' && n.unknownSize) {
    UNKNOWN_SIZE_BYTES.copy(buf, pos);
    pos += 8;
  } else {
    pos = writeVint(buf, pos, ds, vintWidth(ds));
  }
  switch (n.kind) {
    case 'master':
      for (const c of n.children) pos = writeNode(buf, pos, c);
      return pos;
    case 'uint':
      return writeUintData(buf, pos, n.value, ds);
    case 'int':
      if (ds <= 6) return buf.writeIntBE(n.value, pos, ds);
      buf.writeBigInt64BE(BigInt(n.value), pos);
      return pos + 8;
    case 'float':
      return buf.writeDoubleBE(n.value, pos);
    case 'string':
      return pos + buf.write(n.value, pos, 'utf8');
    case 'binary':
      buf.set(n.value, pos);
      return pos + n.value.length;
  }
}

/** Serialises elements into one buffer allocated at the computed total size. */
export function serializeElements(nodes: EbmlNode[]): Buffer {
  let total = 0;
  for (const n of nodes) total += elementSize(n);
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const n of nodes) pos = writeNode(buf, pos, n);
  if (pos !== total) throw new Error(`EBML writer: wrote ${pos} of ${total} bytes`);
  return buf;
}

// ---- reader ----------------------------------------------------------------------------------

export interface EbmlElement {
  id: number;
  /** Offset of the element's ID in the buffer given to readElements. */
  offset: number;
  /** Bytes of ID + size field. */
  headerSize: number;
  /** Whether the size field said "unknown" (live Segment / Cluster). */
  unknownSize: boolean;
  /** The data (for an unknown-size master: up to where it was found to end). */
  data: Buffer;
  /** Child elements, for master elements. */
  children?: EbmlElement[];
}

export interface ReadElementsOptions {
  /** Deepest nesting accepted (Matroska needs about 6). */
  maxDepth?: number;
  /** Most elements accepted in total, so hostile input cannot make unbounded work. */
  maxElements?: number;
}

interface ReadState {
  buf: Buffer;
  maxDepth: number;
  maxElements: number;
  count: number;
}

/** Reads a VINT at `pos`; returns value, width and whether all value bits were set. */
export function readVint(buf: Buffer, pos: number, end = buf.length): { value: number; width: number; allOnes: boolean } {
  if (pos >= end) throw new HazeError('HAZE_ERR_SHORT_READ', `VINT at ${pos} past the end`);
  const first = buf[pos]!;
  if (first === 0) throw new HazeError('HAZE_ERR_MALFORMED', `VINT at ${pos} wider than 8 bytes`);
  const width = Math.clz32(first) - 23;
  if (pos + width > end) throw new HazeError('HAZE_ERR_SHORT_READ', `VINT at ${pos} needs ${width} bytes`);
  let value = first & (0xff >> width);
  let allOnes = value === 0xff >> width;
  for (let i = 1; i < width; i++) {
    const b = buf[pos + i]!;
    value = value * 256 + b;
    if (b !== 0xff) allOnes = false;
  }
  return { value, width, allOnes };
}

function readId(buf: Buffer, pos: number, end: number): { id: number; width: number } {
  if (pos >= end) throw new HazeError('HAZE_ERR_SHORT_READ', `element ID at ${pos} past the end`);
  const first = buf[pos]!;
  const width = Math.clz32(first) - 23;
  // EBMLMaxIDLength is 4 for Matroska; 0x00 and wider IDs are invalid.
  if (first === 0 || width > 4) throw new HazeError('HAZE_ERR_MALFORMED', `element ID at ${pos} wider than 4 bytes`);
  if (pos + width > end) throw new HazeError('HAZE_ERR_SHORT_READ', `element ID at ${pos} needs ${width} bytes`);
  return { id: buf.readUIntBE(pos, width), width };
}

function readLevel(st: ReadState, start: number, end: number, depth: number, parentUnknown: boolean): { elements: EbmlElement[]; end: number } {
  if (depth > st.maxDepth) throw new HazeError('HAZE_ERR_TOO_LARGE', `EBML nesting deeper than ${st.maxDepth}`);
  const out: EbmlElement[] = [];
  let pos = start;
  while (pos < end) {
    const { id, width: idW } = readId(st.buf, pos, end);
    // Inside an unknown-size Cluster, an upper-level ID is the start of the next sibling.
    if (parentUnknown && UPPER_LEVEL_IDS.has(id)) return { elements: out, end: pos };
    if (++st.count > st.maxElements) throw new HazeError('HAZE_ERR_TOO_LARGE', `more than ${st.maxElements} EBML elements`);
    const size = readVint(st.buf, pos + idW, end);
    const dataStart = pos + idW + size.width;
    const master = MASTER_IDS.has(id);
    if (size.allOnes) {
      if (!master) throw new HazeError('HAZE_ERR_MALFORMED', `unknown size on non-master element 0x${id.toString(16)}`);
      // Runs to the end of the parent, or to the next upper-level element for a Cluster.
      const inner = readLevel(st, dataStart, end, depth + 1, id !== ID.Segment);
      out.push({ id, offset: pos, headerSize: idW + size.width, unknownSize: true, data: st.buf.subarray(dataStart, inner.end), children: inner.elements });
      pos = inner.end;
      continue;
    }
    if (size.value > end - dataStart) {
      throw new HazeError('HAZE_ERR_SHORT_READ', `element 0x${id.toString(16)} at ${pos} has ${size.value} bytes, ${end - dataStart} left`);
    }
    const dataEnd = dataStart + size.value;
    const el: EbmlElement = { id, offset: pos, headerSize: idW + size.width, unknownSize: false, data: st.buf.subarray(dataStart, dataEnd) };
    if (master) el.children = readLevel(st, dataStart, dataEnd, depth + 1, false).elements;
    out.push(el);
    pos = dataEnd;
  }
  return { elements: out, end };
}

/**
 * Parses a whole EBML document (or a run of top-level elements) into a tree. Truncated or
 * malformed input throws a HazeError; nesting and element count are bounded.
 */
export function readElements(buf: Buffer, opts: ReadElementsOptions = {}): EbmlElement[] {
  const st: ReadState = { buf, maxDepth: opts.maxDepth ?? 16, maxElements: opts.maxElements ?? 1_000_000, count: 0 };
  return readLevel(st, 0, buf.length, 0, false).elements;
}

// ---- value decoding for read elements ----------------------------------------------------------

export function readUint(el: EbmlElement): number {
  if (el.data.length > 8) throw new HazeError('HAZE_ERR_MALFORMED', `uint element of ${el.data.length} bytes`);
  let v = 0;
  for (const b of el.data) v = v * 256 + b;
  return v;
}

export function readInt(el: EbmlElement): number {
  if (el.data.length > 8) throw new HazeError('HAZE_ERR_MALFORMED', `int element of ${el.data.length} bytes`);
  if (el.data.length === 0) return 0;
  return el.data.length <= 6 ? el.data.readIntBE(0, el.data.length) : Number(BigInt.asIntN(el.data.length * 8, BigInt('0x' + el.data.toString('hex'))));
}

export function readFloat(el: EbmlElement): number {
  if (el.data.length === 0) return 0;
  if (el.data.length === 4) return el.data.readFloatBE(0);
  if (el.data.length === 8) return el.data.readDoubleBE(0);
  throw new HazeError('HAZE_ERR_MALFORMED', `float element of ${el.data.length} bytes`);
}

/** String elements may be zero-padded (RFC 8794 §7.4). */
export function readString(el: EbmlElement): string {
  const nul = el.data.indexOf(0);
  return el.data.subarray(0, nul < 0 ? el.data.length : nul).toString('utf8');
}

/** The first child with this ID, or undefined. */
export function child(el: EbmlElement, id: number): EbmlElement | undefined {
  return el.children?.find((c) => c.id === id);
}

export function childrenOf(el: EbmlElement, id: number): EbmlElement[] {
  return el.children?.filter((c) => c.id === id) ?? [];
}

export interface SimpleBlockView {
  trackNumber: number;
  /** Timestamp relative to the Cluster's, signed 16-bit, in TimestampScale units. */
  relTimestamp: number;
  keyframe: boolean;
  invisible: boolean;
  lacing: number;
  discardable: boolean;
  /** The frame (for unlaced blocks; the laced payload otherwise). */
  frame: Buffer;
}

/** Reads a SimpleBlock's header (RFC 9559 §10.2). */
export function readSimpleBlock(data: Buffer): SimpleBlockView {
  const tn = readVint(data, 0);
  if (tn.width + 3 > data.length) throw new HazeError('HAZE_ERR_SHORT_READ', 'SimpleBlock header cut short');
  const flags = data[tn.width + 2]!;
  return {
    trackNumber: tn.value,
    relTimestamp: data.readInt16BE(tn.width),
    keyframe: (flags & 0x80) !== 0,
    invisible: (flags & 0x08) !== 0,
    lacing: (flags >> 1) & 3,
    discardable: (flags & 0x01) !== 0,
    frame: data.subarray(tn.width + 3),
  };
}
