// RIFF/WAVE headers (Microsoft/IBM "Multimedia Programming Interface and Data Specifications
// 1.0", RIFF chunks and the WAVE form; RFC 2361 for the format tags), little-endian:
//
//   "RIFF" size(u32) "WAVE"
//   "fmt " size(u32)=16|18 wFormatTag(u16) nChannels(u16) nSamplesPerSec(u32)
//          nAvgBytesPerSec(u32) nBlockAlign(u16) wBitsPerSample(u16) [cbSize(u16)=0]
//   ["fact" size(u32)=4 dwSampleLength(u32)]      (formats other than PCM)
//   "data" size(u32) samples...
//
// Chunks are padded to an even size. A live WAV cannot know its length: the RIFF and data
// sizes are 0xFFFFFFFF (and so is the fact sample count), which readers take as "until the
// stream ends". Little-endian fields: written with Buffer's LE writers into one allocation.

import { ByteReader } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';

export const WAVE_FORMAT_PCM = 1;
export const WAVE_FORMAT_ALAW = 6;
export const WAVE_FORMAT_MULAW = 7;

/** Size field meaning "unknown, read until the end" (live). */
export const WAV_UNKNOWN_SIZE = 0xffff_ffff;
/** Bytes of chunks before the data chunk a reader accepts (LIST/INFO chunks are small). */
export const WAV_MAX_HEADER = 1024 * 1024;

export interface WavFormat {
  formatTag: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
}

export interface WavHeader extends WavFormat {
  byteRate: number;
  blockAlign: number;
  /** The data chunk's size field (WAV_UNKNOWN_SIZE for live streams). */
  dataBytes: number;
  /** Offset of the first sample byte. */
  dataOffset: number;
}

/**
 * A WAV header up to and including the data chunk's header. Without `dataBytes` it is the
 * live form with unknown sizes.
 */
export function writeWavHeader(fmt: WavFormat, dataBytes = WAV_UNKNOWN_SIZE): Buffer {
  const { formatTag, channels, sampleRate, bitsPerSample } = fmt;
  if (channels < 1 || channels > 0xffff || sampleRate < 1 || sampleRate > 0xffff_ffff || bitsPerSample < 1 || bitsPerSample > 64 || bitsPerSample % 8 !== 0) {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `WAV format ${channels} channels, ${sampleRate} Hz, ${bitsPerSample} bits`);
  }
  const pcm = formatTag === WAVE_FORMAT_PCM;
  // WAVEFORMATEX (with cbSize) and a fact chunk for every format but plain PCM
  const fmtSize = pcm ? 16 : 18;
  const size = 12 + 8 + fmtSize + (pcm ? 0 : 12) + 8;
  const blockAlign = channels * (bitsPerSample / 8);
  const live = dataBytes === WAV_UNKNOWN_SIZE;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  o += out.write('RIFF', o, 'latin1');
  o = out.writeUInt32LE(live ? WAV_UNKNOWN_SIZE : size - 8 + dataBytes + (dataBytes & 1), o);
  o += out.write('WAVE', o, 'latin1');
  o += out.write('fmt ', o, 'latin1');
  o = out.writeUInt32LE(fmtSize, o);
  o = out.writeUInt16LE(formatTag, o);
  o = out.writeUInt16LE(channels, o);
  o = out.writeUInt32LE(sampleRate, o);
  o = out.writeUInt32LE(Math.min(sampleRate * blockAlign, 0xffff_ffff), o);
  o = out.writeUInt16LE(blockAlign & 0xffff, o);
  o = out.writeUInt16LE(bitsPerSample, o);
  if (!pcm) {
    o = out.writeUInt16LE(0, o);
    o += out.write('fact', o, 'latin1');
    o = out.writeUInt32LE(4, o);
    o = out.writeUInt32LE(live ? WAV_UNKNOWN_SIZE : Math.floor(dataBytes / blockAlign), o);
  }
  o += out.write('data', o, 'latin1');
  o = out.writeUInt32LE(dataBytes, o);
  if (o !== size) throw new Error(`writeWavHeader: wrote ${o} of ${size} bytes`);
  return out;
}

/**
 * Reads the header of a WAV stream up to the start of its samples; undefined when `buf` ends
 * before the data chunk. HAZE_ERR_MALFORMED for a stream that is not RIFF/WAVE or has no
 * usable fmt chunk before its data, HAZE_ERR_TOO_LARGE when the data chunk does not start
 * within WAV_MAX_HEADER bytes.
 */
export function readWavHeader(buf: Buffer): WavHeader | undefined {
  if (buf.length < 12) return undefined;
  const r = new ByteReader(buf);
  const riff = r.bytes(12);
  if (riff.toString('latin1', 0, 4) !== 'RIFF' || riff.toString('latin1', 8, 12) !== 'WAVE') {
    throw new HazeError('HAZE_ERR_MALFORMED', 'not a RIFF/WAVE stream');
  }
  let fmt: Omit<WavHeader, 'dataBytes' | 'dataOffset'> | undefined;
  for (;;) {
    if (r.pos > WAV_MAX_HEADER) throw new HazeError('HAZE_ERR_TOO_LARGE', `no WAV data chunk in the first ${WAV_MAX_HEADER} bytes`);
    if (r.remaining < 8) return undefined;
    const ch = r.bytes(8);
    const id = ch.toString('latin1', 0, 4);
    const size = ch.readUInt32LE(4);
    if (id === 'data') {
      if (!fmt) throw new HazeError('HAZE_ERR_MALFORMED', 'WAV data chunk before its fmt chunk');
      return { ...fmt, dataBytes: size, dataOffset: r.pos };
    }
    const padded = size + (size & 1);
    if (padded > WAV_MAX_HEADER) throw new HazeError('HAZE_ERR_TOO_LARGE', `WAV ${JSON.stringify(id)} chunk of ${size} bytes before the data`);
    if (r.remaining < padded) return undefined;
    const body = r.bytes(padded);
    if (id === 'fmt ') {
      if (size < 16) throw new HazeError('HAZE_ERR_MALFORMED', `WAV fmt chunk of ${size} bytes`);
      fmt = {
        formatTag: body.readUInt16LE(0),
        channels: body.readUInt16LE(2),
        sampleRate: body.readUInt32LE(4),
        byteRate: body.readUInt32LE(8),
        blockAlign: body.readUInt16LE(12),
        bitsPerSample: body.readUInt16LE(14),
      };
      if (fmt.channels === 0 || fmt.sampleRate === 0) throw new HazeError('HAZE_ERR_MALFORMED', `WAV fmt: ${fmt.channels} channels at ${fmt.sampleRate} Hz`);
    }
  }
}

/**
 * Incremental WAV reader: the header once it is complete, then sample bytes as they come
 * (subarrays of the pushed chunks). Holds back at most WAV_MAX_HEADER bytes, while the header
 * is incomplete. Bytes past a known data size are ignored (trailing chunks).
 */
export class WavReader {
  header: WavHeader | undefined;
  private pending: Buffer = Buffer.alloc(0);
  private dataLeft = 0;

  push(chunk: Buffer): Buffer[] {
    if (!this.header) {
      const buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
      const h = readWavHeader(buf);
      if (!h) {
        if (buf.length > WAV_MAX_HEADER + 8) throw new HazeError('HAZE_ERR_TOO_LARGE', 'WAV header too large');
        this.pending = Buffer.from(buf);
        return [];
      }
      this.header = h;
      this.pending = Buffer.alloc(0);
      this.dataLeft = h.dataBytes === WAV_UNKNOWN_SIZE ? Number.POSITIVE_INFINITY : h.dataBytes;
      return this.samples(buf.subarray(h.dataOffset));
    }
    return this.samples(chunk);
  }

  private samples(b: Buffer): Buffer[] {
    if (b.length === 0 || this.dataLeft <= 0) return [];
    const take = Math.min(b.length, this.dataLeft);
    this.dataLeft -= take;
    return [b.subarray(0, take)];
  }
}

/** Header and samples of a complete WAV file. */
export function readWav(buf: Buffer): { header: WavHeader; data: Buffer } {
  const h = readWavHeader(buf);
  if (!h) throw new HazeError('HAZE_ERR_SHORT_READ', 'WAV ends before its data chunk');
  const end = h.dataBytes === WAV_UNKNOWN_SIZE ? buf.length : Math.min(buf.length, h.dataOffset + h.dataBytes);
  return { header: h, data: buf.subarray(h.dataOffset, end) };
}
