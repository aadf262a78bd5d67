// Ogg pages, RFC 3533 §6 (bitstream format), all multi-byte fields little-endian:
//
//   0 "OggS" | 4 version(8)=0 | 5 header_type(8): 0x01 continued, 0x02 BOS, 0x04 EOS
//   6 granule_position(i64) | 14 serial(u32) | 18 page_sequence(u32) | 22 CRC-32(u32)
//   26 page_segments(8) | 27 segment_table(8 * page_segments) | body
//
// A packet is laced into 255-byte segments and ends with the first lacing value below 255
// (a 0 when its length is a multiple of 255); a page holds at most 255 lacing values, so a
// packet longer than that continues on the next page, which sets the "continued" flag. The
// granule position is the one of the last packet that ends on the page, -1 when none does.
// The CRC is the non-reflected CRC-32 with polynomial 0x04C11DB7, initial value 0 and no final
// XOR, computed over the whole page with the CRC field zeroed (RFC 3533 §6, "CRC checksum").
// Fields are little-endian, so pages are filled with Buffer's LE writers into one allocation
// (ByteWriter is big-endian); reads go through ByteReader for the bounds, then LE getters.

import { ByteReader } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';
import { crc32Msb } from '../../util/crc32.js';

export const OGG_FLAG_CONTINUED = 0x01;
export const OGG_FLAG_BOS = 0x02;
export const OGG_FLAG_EOS = 0x04;

export const OGG_HEADER_SIZE = 27;
export const OGG_MAX_SEGMENTS = 255;
/** Largest page: the fixed header, 255 lacing values and 255 segments of 255 bytes. */
export const OGG_MAX_PAGE_SIZE = OGG_HEADER_SIZE + OGG_MAX_SEGMENTS + OGG_MAX_SEGMENTS * 255;
/** Default bound on one reassembled packet (Vorbis setup headers are a few kB, audio frames less). */
export const OGG_DEFAULT_MAX_PACKET = 16 * 1024 * 1024;

const CAPTURE = 0x5367_674f; // "OggS" read as u32 little-endian

/** Ogg's CRC-32 (non-reflected, polynomial 0x04C11DB7, init 0, no final XOR) of bytes [start, end). */
export function oggCrc32(buf: Uint8Array, start = 0, end = buf.length, crc = 0): number {
  return crc32Msb(buf, start, end, crc);
}

// ---- writing ---------------------------------------------------------------------------------

export interface OggPacketIn {
  data: Uint8Array;
  /** Granule position at the end of this packet (codec-specific units). */
  granule: number;
}

export interface OggPageOptions {
  serial: number;
  /** Sequence number of the first page written. */
  sequence: number;
  /** Mark the first page as the beginning of the logical stream. */
  bos?: boolean;
  /** Mark the last page as its end. */
  eos?: boolean;
  /** Granule of the empty page written when there are no packets (default -1). */
  emptyGranule?: number;
}

export interface OggPagesOut {
  bytes: Buffer;
  /** Pages written (the next sequence number is `sequence + pages`). */
  pages: number;
}

function writeGranule(out: Buffer, at: number, granule: number): void {
  if (granule < 0) {
    out.writeInt32LE(-1, at);
    out.writeInt32LE(-1, at + 4);
  } else {
    out.writeUInt32LE(granule % 0x1_0000_0000, at);
    out.writeUInt32LE(Math.floor(granule / 0x1_0000_0000) >>> 0, at + 4);
  }
}

function pushPage(layout: number[], lacing: number, body: number, granule: number, continued: boolean): number {
  layout.push(lacing, body, granule, continued ? 1 : 0);
  return OGG_HEADER_SIZE + lacing + body;
}

/**
 * Lays `packets` out on as few pages as the 255-lacing-value limit allows, the first packet
 * starting a fresh page and the last one ending its page (callers flush per packet for live
 * latency). With no packets, writes one empty page (how a stream is ended with EOS after the
 * fact). Allocates the result once.
 */
export function writeOggPages(packets: readonly OggPacketIn[], opts: OggPageOptions): OggPagesOut {
  // Pass 1: page layout, 4 numbers per page: lacing count, body bytes, granule, continued.
  const layout: number[] = [];
  let lacingOnPage = 0;
  let bodyOnPage = 0;
  let granuleOnPage = -1;
  let continued = false;
  let total = 0;
  for (let i = 0; i < packets.length; i++) {
    let left = packets[i]!.data.length;
    // lacing values of this packet: floor(len / 255) of 255, then one of len % 255
    for (;;) {
      if (lacingOnPage === OGG_MAX_SEGMENTS) {
        total += pushPage(layout, lacingOnPage, bodyOnPage, granuleOnPage, continued);
        lacingOnPage = bodyOnPage = 0;
        granuleOnPage = -1;
        continued = true;
      }
      const seg = Math.min(left, 255);
      lacingOnPage++;
      bodyOnPage += seg;
      left -= seg;
      if (seg < 255) break;
    }
    granuleOnPage = packets[i]!.granule;
    if (i === packets.length - 1 || lacingOnPage === OGG_MAX_SEGMENTS) {
      total += pushPage(layout, lacingOnPage, bodyOnPage, granuleOnPage, continued);
      lacingOnPage = bodyOnPage = 0;
      granuleOnPage = -1;
      continued = false;
    }
  }
  if (packets.length === 0) total += pushPage(layout, 0, 0, opts.emptyGranule ?? -1, false);

  // Pass 2: fill.
  const out = Buffer.allocUnsafe(total);
  const pageCount = layout.length / 4;
  let pos = 0;
  let pkt = 0;
  let pktOffset = 0;
  for (let p = 0; p < pageCount; p++) {
    const lacing = layout[p * 4]!;
    const body = layout[p * 4 + 1]!;
    const start = pos;
    let flags = layout[p * 4 + 3]! ? OGG_FLAG_CONTINUED : 0;
    if (p === 0 && opts.bos) flags |= OGG_FLAG_BOS;
    if (p === pageCount - 1 && opts.eos) flags |= OGG_FLAG_EOS;
    out.writeUInt32LE(CAPTURE, pos);
    out[pos + 4] = 0;
    out[pos + 5] = flags;
    writeGranule(out, pos + 6, layout[p * 4 + 2]!);
    out.writeUInt32LE(opts.serial >>> 0, pos + 14);
    out.writeUInt32LE((opts.sequence + p) >>> 0, pos + 18);
    out.writeUInt32LE(0, pos + 22);
    out[pos + 26] = lacing;
    let seg = pos + OGG_HEADER_SIZE;
    let bodyPos = seg + lacing;
    for (let n = 0; n < lacing; n++) {
      const data = packets[pkt]!.data;
      const take = Math.min(255, data.length - pktOffset);
      out[seg++] = take;
      out.set(data.subarray(pktOffset, pktOffset + take), bodyPos);
      bodyPos += take;
      pktOffset += take;
      if (take < 255) {
        pkt++;
        pktOffset = 0;
      }
    }
    pos = bodyPos;
    if (pos - start !== OGG_HEADER_SIZE + lacing + body) throw new Error('writeOggPages: layout mismatch');
    out.writeUInt32LE(oggCrc32(out, start, pos), start + 22);
  }
  return { bytes: out, pages: pageCount };
}

// ---- reading ---------------------------------------------------------------------------------

export interface OggPage {
  version: number;
  continued: boolean;
  bos: boolean;
  eos: boolean;
  /** -1 when no packet ends on this page. Values past 2^53 lose precision. */
  granule: number;
  serial: number;
  sequence: number;
  /** The lacing values. */
  segments: Uint8Array;
  body: Buffer;
  /** The whole page's bytes. */
  raw: Buffer;
}

/**
 * Reads the page at the start of `buf`; returns undefined when `buf` holds only part of it.
 * Throws HAZE_ERR_MALFORMED on a wrong capture pattern, version or CRC.
 */
export function readOggPage(buf: Buffer, offset = 0): OggPage | undefined {
  if (buf.length - offset < OGG_HEADER_SIZE) return undefined;
  const r = new ByteReader(buf, offset);
  const h = r.bytes(OGG_HEADER_SIZE);
  if (h.readUInt32LE(0) !== CAPTURE) throw new HazeError('HAZE_ERR_MALFORMED', `no Ogg capture pattern at ${offset}`);
  const version = h[4]!;
  if (version !== 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `Ogg stream structure version ${version}`);
  const flags = h[5]!;
  if (flags & 0xf8) throw new HazeError('HAZE_ERR_MALFORMED', `Ogg header_type 0x${flags.toString(16)}`);
  const count = h[26]!;
  if (r.remaining < count) return undefined;
  const segments = r.bytes(count);
  let bodyLen = 0;
  for (let i = 0; i < count; i++) bodyLen += segments[i]!;
  if (r.remaining < bodyLen) return undefined;
  const body = r.bytes(bodyLen);
  const raw = buf.subarray(offset, r.pos);
  const stored = h.readUInt32LE(22);
  // CRC over the page with the CRC field taken as zero
  let crc = oggCrc32(raw, 0, 22);
  crc = oggCrc32(ZERO4, 0, 4, crc);
  crc = oggCrc32(raw, 26, raw.length, crc);
  if (crc !== stored) throw new HazeError('HAZE_ERR_MALFORMED', `Ogg page CRC 0x${stored.toString(16)}, computed 0x${crc.toString(16)}`);
  const lo = h.readUInt32LE(6);
  const hi = h.readInt32LE(10);
  return {
    version,
    continued: (flags & OGG_FLAG_CONTINUED) !== 0,
    bos: (flags & OGG_FLAG_BOS) !== 0,
    eos: (flags & OGG_FLAG_EOS) !== 0,
    granule: hi === -1 && lo === 0xffff_ffff ? -1 : hi * 0x1_0000_0000 + lo,
    serial: h.readUInt32LE(14),
    sequence: h.readUInt32LE(18),
    segments,
    body,
    raw,
  };
}

const ZERO4 = new Uint8Array(4);

/**
 * Incremental page reader: push chunks as they arrive, get whole pages. It holds at most one
 * partial page (OGG_MAX_PAGE_SIZE bytes) between calls.
 */
export class OggPageReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): OggPage[] {
    const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    const pages: OggPage[] = [];
    let pos = 0;
    for (;;) {
      const page = readOggPage(buf, pos);
      if (!page) break;
      pages.push(page);
      pos += page.raw.length;
    }
    // copy the rest: the caller may reuse its chunk buffer
    this.pending = Buffer.from(buf.subarray(pos));
    return pages;
  }

  /** Bytes of an incomplete page held back. */
  get buffered(): number {
    return this.pending.length;
  }
}

/** Every page of a complete Ogg file; a truncated last page is HAZE_ERR_SHORT_READ. */
export function readOggPages(buf: Buffer): OggPage[] {
  const r = new OggPageReader();
  const pages = r.push(buf);
  if (r.buffered > 0) throw new HazeError('HAZE_ERR_SHORT_READ', `Ogg stream ends inside a page (${r.buffered} bytes left)`);
  return pages;
}

export interface OggPacketOut {
  serial: number;
  data: Buffer;
  /** Granule of the page this packet ends on when it is the last packet ending there, else -1. */
  granule: number;
  /** Sequence number of the page the packet ends on. */
  pageSequence: number;
  /** The packet is the first of its logical stream (ends on or starts the BOS page). */
  bos: boolean;
  /** The packet ends on an EOS page. */
  eos: boolean;
}

/**
 * Packets from pages, per logical stream (serial). Strict, since it checks writers: a page that
 * does not continue a packet left open, or continues one that is not, is HAZE_ERR_MALFORMED, and
 * so is a page-sequence gap. A packet past `maxPacketBytes` is HAZE_ERR_TOO_LARGE.
 */
export class OggPacketReader {
  private readonly open = new Map<number, { parts: Buffer[]; bytes: number; bos: boolean; nextSeq: number }>();

  constructor(private readonly maxPacketBytes = OGG_DEFAULT_MAX_PACKET) {}

  page(page: OggPage): OggPacketOut[] {
    let st = this.open.get(page.serial);
    if (page.bos) {
      if (st) throw new HazeError('HAZE_ERR_MALFORMED', `second BOS page for Ogg serial ${page.serial}`);
      st = { parts: [], bytes: 0, bos: true, nextSeq: page.sequence };
      this.open.set(page.serial, st);
    }
    if (!st) throw new HazeError('HAZE_ERR_MALFORMED', `Ogg serial ${page.serial} has no BOS page`);
    if (page.sequence !== st.nextSeq) throw new HazeError('HAZE_ERR_MALFORMED', `Ogg serial ${page.serial}: page ${page.sequence} where ${st.nextSeq} was due`);
    st.nextSeq = (page.sequence + 1) >>> 0;
    if (page.continued !== st.parts.length > 0) {
      throw new HazeError('HAZE_ERR_MALFORMED', page.continued ? 'Ogg page continues a packet that was not open' : 'Ogg packet left unfinished before a fresh page');
    }
    const out: OggPacketOut[] = [];
    let pos = 0;
    let start = 0;
    let lastEnd = -1;
    for (let i = 0; i < page.segments.length; i++) {
      const seg = page.segments[i]!;
      pos += seg;
      if (seg === 255) continue;
      const piece = page.body.subarray(start, pos);
      this.addPart(st, piece);
      const data = st.parts.length === 1 ? st.parts[0]! : Buffer.concat(st.parts, st.bytes);
      out.push({ serial: page.serial, data, granule: -1, pageSequence: page.sequence, bos: st.bos, eos: page.eos });
      st.parts = [];
      st.bytes = 0;
      st.bos = false;
      start = pos;
      lastEnd = out.length - 1;
    }
    // trailing 255-byte segments: the packet continues on the next page
    if (start < pos) this.addPart(st, page.body.subarray(start, pos));
    if (lastEnd >= 0) out[lastEnd]!.granule = page.granule;
    if (page.eos) this.open.delete(page.serial);
    return out;
  }

  private addPart(st: { parts: Buffer[]; bytes: number }, piece: Buffer): void {
    st.bytes += piece.length;
    if (st.bytes > this.maxPacketBytes) throw new HazeError('HAZE_ERR_TOO_LARGE', `Ogg packet over ${this.maxPacketBytes} bytes`);
    st.parts.push(piece);
  }
}

/** Every packet of a complete Ogg file, in page order. */
export function readOggPackets(buf: Buffer, maxPacketBytes = OGG_DEFAULT_MAX_PACKET): OggPacketOut[] {
  const reader = new OggPacketReader(maxPacketBytes);
  const out: OggPacketOut[] = [];
  for (const page of readOggPages(buf)) out.push(...reader.page(page));
  return out;
}
