// NAL units of H.264 and HEVC (the two share their framing): length-prefixed units (the
// payload format of Packet.data, ISO/IEC 14496-15), the Annex B byte stream (start codes,
// H.264/H.265 Annex B), emulation prevention, and the conversion of one access unit to Annex B
// with an access unit delimiter and, at random access points, the parameter sets of the
// decoder configuration record (what MPEG-TS needs).

import { ByteWriter } from '../util/bytes.js';
import { HazeError } from '../util/errors.js';

export function readNalLength(data: Uint8Array, pos: number, lengthSize: number): number {
  let n = 0;
  for (let i = 0; i < lengthSize; i++) n = n * 256 + data[pos + i]!;
  return n;
}

export function checkNalLengthSize(lengthSize: number): void {
  if (lengthSize < 1 || lengthSize > 4 || !Number.isInteger(lengthSize)) {
    throw new HazeError('HAZE_ERR_MALFORMED', `invalid NAL length size ${lengthSize}`);
  }
}

/**
 * Splits length-prefixed NAL units into subarrays (no copies). Throws HAZE_ERR_MALFORMED when a
 * length runs past the end, so a corrupt packet never yields a partial unit.
 */
export function splitNalUnits(data: Buffer, lengthSize = 4): Buffer[] {
  checkNalLengthSize(lengthSize);
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < data.length) {
    if (pos + lengthSize > data.length) {
      throw new HazeError('HAZE_ERR_MALFORMED', `truncated NAL length at ${pos} of ${data.length}`);
    }
    const len = readNalLength(data, pos, lengthSize);
    pos += lengthSize;
    if (len > data.length - pos) {
      throw new HazeError('HAZE_ERR_MALFORMED', `NAL length ${len} at ${pos - lengthSize} runs past ${data.length}`);
    }
    out.push(data.subarray(pos, pos + len));
    pos += len;
  }
  return out;
}

/** Joins NAL units into 4-byte length-prefixed form (one allocation). */
export function joinNalUnits(nals: readonly Uint8Array[]): Buffer {
  let size = 0;
  for (const n of nals) size += 4 + n.length;
  const w = new ByteWriter(size);
  for (const n of nals) w.u32(n.length).bytes(n);
  return w.done();
}

/**
 * Splits an Annex B byte stream at its 3- or 4-byte start codes into NAL unit subarrays.
 * Bytes before the first start code are ignored; trailing zero bytes of a unit (trailing_zero_8bits
 * or the first zero of a 4-byte start code) are not part of it.
 */
export function splitAnnexB(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = -1;
  let i = 0;
  const n = data.length;
  while (i + 2 < n) {
    if (data[i] === 0 && data[i + 1] === 0 && data[i + 2] === 1) {
      if (start >= 0) pushTrimmed(out, data, start, i);
      i += 3;
      start = i;
      continue;
    }
    // Skip fast: a start code needs two zeros, so a non-zero at i+2 moves us 3 ahead.
    if (data[i + 2] !== 0) i += 3;
    else i++;
  }
  if (start >= 0) pushTrimmed(out, data, start, n);
  return out;
}

function pushTrimmed(out: Buffer[], data: Buffer, start: number, end: number): void {
  while (end > start && data[end - 1] === 0) end--;
  if (end > start) out.push(data.subarray(start, end));
}

/**
 * Annex B access unit -> 4-byte length-prefixed NAL units. `keep` may drop units (an input
 * usually drops AUDs and moves SPS/PPS into avcC).
 */
export function annexBToAvcc(data: Buffer, keep?: (nal: Buffer) => boolean): Buffer {
  const nals = splitAnnexB(data);
  return joinNalUnits(keep ? nals.filter(keep) : nals);
}

/**
 * Removes emulation_prevention_three_byte (00 00 03 -> 00 00) so a NAL unit can be read as RBSP.
 * Returns the input itself when it has none.
 */
export function unescapeRbsp(nal: Uint8Array): Buffer {
  let count = 0;
  for (let i = 2; i < nal.length; i++) {
    if (nal[i] === 3 && nal[i - 1] === 0 && nal[i - 2] === 0) {
      count++;
      i += 2; // the next two bytes cannot start another 00 00 03
    }
  }
  if (count === 0) return Buffer.isBuffer(nal) ? nal : Buffer.from(nal.buffer, nal.byteOffset, nal.length);
  const out = Buffer.allocUnsafe(nal.length - count);
  let o = 0;
  let zeros = 0;
  for (let i = 0; i < nal.length; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === 3) {
      zeros = 0;
      continue;
    }
    out[o++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, o);
}

// ---------------------------------------------------------------------------------------------
// Length-prefixed access unit -> Annex B

/** What differs between codecs when an access unit becomes Annex B. */
export interface AnnexBRules {
  /** Bytes of each NAL unit's length prefix in packet data (1 to 4). */
  lengthSize: number;
  /** NAL unit type from a unit's first byte. */
  nalType(firstByte: number): number;
  audType: number;
  /** The AUD unit written when an access unit does not start with one. */
  aud: Buffer;
  /** Parameter sets from the decoder configuration, in writing order (at most 8 kinds). */
  paramSets: ReadonlyArray<{ type: number; nals: readonly Buffer[] }>;
  /** Unit types that make an access unit a random access point even if not flagged a keyframe. */
  isRandomAccess(type: number): boolean;
}

const START_CODE_LEN = 4;

interface AnnexBPlan {
  size: number;
  hasAud: boolean;
  needParams: boolean;
}

/** Scans an access unit once: output size, whether it brings its own AUD and parameter sets. */
function planAnnexB(data: Buffer, rules: AnnexBRules, keyframe: boolean): AnnexBPlan {
  const ls = rules.lengthSize;
  checkNalLengthSize(ls);
  const sets = rules.paramSets;
  let size = 0;
  let first = true;
  let hasAud = false;
  let randomAccess = keyframe;
  let present = 0; // bit i: parameter set kind i is in the unit
  let pos = 0;
  while (pos < data.length) {
    if (pos + ls > data.length) throw new HazeError('HAZE_ERR_MALFORMED', `truncated NAL length at ${pos} of ${data.length}`);
    const len = readNalLength(data, pos, ls);
    pos += ls;
    if (len > data.length - pos) throw new HazeError('HAZE_ERR_MALFORMED', `NAL length ${len} at ${pos - ls} runs past ${data.length}`);
    if (len > 0) {
      const t = rules.nalType(data[pos]!);
      if (first && t === rules.audType) hasAud = true;
      for (let i = 0; i < sets.length; i++) if (sets[i]!.type === t) present |= 1 << i;
      if (rules.isRandomAccess(t)) randomAccess = true;
      size += START_CODE_LEN + len;
    }
    first = false;
    pos += len;
  }
  if (!hasAud) size += START_CODE_LEN + rules.aud.length;
  const needParams = randomAccess && present !== (1 << sets.length) - 1;
  if (needParams) for (const s of sets) for (const p of s.nals) size += START_CODE_LEN + p.length;
  return { size, hasAud, needParams };
}

function putNal(out: Buffer, at: number, src: Uint8Array, start: number, end: number): number {
  out[at] = 0;
  out[at + 1] = 0;
  out[at + 2] = 0;
  out[at + 3] = 1;
  out.set(src.subarray(start, end), at + START_CODE_LEN);
  return at + START_CODE_LEN + end - start;
}

function writePlanned(data: Buffer, rules: AnnexBRules, plan: AnnexBPlan, out: Buffer, offset: number): number {
  const ls = rules.lengthSize;
  let o = offset;
  let pos = 0;
  if (!plan.hasAud) {
    o = putNal(out, o, rules.aud, 0, rules.aud.length);
  } else {
    // the unit's own AUD first, so parameter sets follow it
    const len = readNalLength(data, pos, ls);
    pos += ls;
    o = putNal(out, o, data, pos, pos + len);
    pos += len;
  }
  if (plan.needParams) for (const s of rules.paramSets) for (const p of s.nals) o = putNal(out, o, p, 0, p.length);
  while (pos < data.length) {
    const len = readNalLength(data, pos, ls);
    pos += ls;
    if (len > 0) o = putNal(out, o, data, pos, pos + len);
    pos += len;
  }
  return o;
}

/** Bytes toAnnexB would produce, for callers that write into their own buffer. */
export function annexBUnitSize(data: Buffer, rules: AnnexBRules, keyframe: boolean): number {
  return planAnnexB(data, rules, keyframe).size;
}

/**
 * Writes the Annex B form of one access unit into `out` at `offset`; returns the end offset.
 * Order: AUD (unless the unit starts with one), the parameter sets on random access points
 * lacking any of them, then the unit's NAL units, each behind a 4-byte start code. Empty NAL
 * units are dropped.
 */
export function writeAnnexBUnit(data: Buffer, rules: AnnexBRules, keyframe: boolean, out: Buffer, offset: number): number {
  const plan = planAnnexB(data, rules, keyframe);
  if (offset + plan.size > out.length) throw new HazeError('HAZE_ERR_TOO_LARGE', 'Annex B output buffer too small');
  return writePlanned(data, rules, plan, out, offset);
}

/** One access unit to Annex B (see writeAnnexBUnit); allocates once at the computed size. */
export function toAnnexBUnit(data: Buffer, rules: AnnexBRules, keyframe: boolean): Buffer {
  const plan = planAnnexB(data, rules, keyframe);
  const out = Buffer.allocUnsafe(plan.size);
  writePlanned(data, rules, plan, out, 0);
  return out;
}
