// WAV files (RIFF/WAVE; header by src/containers/wav/wav.ts, WAVE_FORMAT_EXTENSIBLE by
// extensible.ts) as a FileSource: integer PCM ('PCM', held as Haze holds PCM everywhere, signed
// big-endian: the same conversion the WAV output undoes, src/containers/wav/pcm.ts), A-law
// ('ALAW') and mu-law ('ULAW'). Packets of PACKET_MS of whole sample blocks, timeMs =
// floor(first sample * 1000 / rate), bpos = the packet's first byte. A data size of 0 or
// 0xFFFFFFFF (live or unfinished writers) reads to the file's current end.

import type { FileHandle } from 'node:fs/promises';
import type { AudioCodec, AudioTrack, Packet, Track } from '../../media/types.js';
import { HazeError } from '../../util/errors.js';
import { WAV_MAX_HEADER, WAV_UNKNOWN_SIZE, WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW, WAVE_FORMAT_PCM, readWavHeader } from '../../containers/wav/wav.js';
import { WAVE_FORMAT_EXTENSIBLE, wavSubFormat } from '../../containers/wav/extensible.js';
import { convertPcmByteOrder } from '../../containers/wav/pcm.js';
import type { FileSource, FileSourceOpener, ScanChunk, ScannedPacket } from './file-source.js';
import { PLAY_READ_BYTES, ReadWindow, WINDOW_BYTES, checkBpos, fileError, openHandle, HandleSource } from './file-reads.js';

/** Milliseconds of samples per packet. */
export const PACKET_MS = 20;
const BATCH_PACKETS = 256;
const FIRST_READ = 64 * 1024;

interface Layout {
  track: AudioTrack;
  dataOffset: number;
  /** End of the sample bytes; undefined: the file's end. */
  dataEnd: number | undefined;
  blockAlign: number;
  packetBytes: number;
}

class WavFileSource extends HandleSource implements FileSource {
  private readonly window: ReadWindow;

  constructor(file: string, fh: FileHandle) {
    super(file, fh);
    this.window = new ReadWindow(fh);
  }

  /** The header; undefined while the file ends before its data chunk. */
  private async layout(): Promise<Layout | undefined> {
    let buf = await this.window.at(0, FIRST_READ);
    let h;
    try {
      h = readWavHeader(buf);
      if (!h && buf.length === FIRST_READ) {
        buf = await this.window.at(0, WAV_MAX_HEADER + 16);
        h = readWavHeader(buf);
      }
    } catch (err) {
      throw fileError(this.file, 0, err);
    }
    if (!h) return undefined;
    const tag = h.formatTag === WAVE_FORMAT_EXTENSIBLE ? wavSubFormat(buf) : h.formatTag;
    const codec: AudioCodec | undefined = tag === WAVE_FORMAT_PCM ? 'PCM' : tag === WAVE_FORMAT_ALAW ? 'ALAW' : tag === WAVE_FORMAT_MULAW ? 'ULAW' : undefined;
    if (!codec) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${this.file}: WAV format tag 0x${(tag ?? h.formatTag).toString(16)} (Haze reads integer PCM, A-law and mu-law) at byte 20`);
    const bits = h.bitsPerSample;
    if (codec === 'PCM' ? bits !== 8 && bits !== 16 && bits !== 24 && bits !== 32 : bits !== 8) {
      throw new HazeError('HAZE_ERR_UNSUPPORTED', `${this.file}: ${bits}-bit ${codec} WAV at byte 34`);
    }
    const blockAlign = h.channels * (bits / 8);
    const samplesPerPacket = Math.max(1, Math.round((h.sampleRate * PACKET_MS) / 1000));
    const unknown = h.dataBytes === WAV_UNKNOWN_SIZE || h.dataBytes === 0;
    return {
      track: { type: 'audio', id: 1, codec, init: Buffer.alloc(0), bps: h.sampleRate * blockAlign, lang: 'und', rate: h.sampleRate, channels: h.channels, size: bits },
      dataOffset: h.dataOffset,
      dataEnd: unknown ? undefined : h.dataOffset + h.dataBytes,
      blockAlign,
      packetBytes: samplesPerPacket * blockAlign,
    };
  }

  private async *packets(l: Layout, start: number, warnings: string[] | undefined, windowBytes = WINDOW_BYTES): AsyncGenerator<ScannedPacket[]> {
    // a window per read: concurrent readers of one source must not take turns refilling one
    const window = new ReadWindow(this.fh, windowBytes);
    const { track, blockAlign, packetBytes, dataOffset } = l;
    let pos = start;
    let batch: ScannedPacket[] = [];
    for (;;) {
      this.check();
      const want = l.dataEnd === undefined ? packetBytes : Math.min(packetBytes, l.dataEnd - pos);
      if (want <= 0) break;
      const got = await window.at(pos, want);
      const whole = got.length - (got.length % blockAlign);
      if (whole > 0) {
        const data = track.codec === 'PCM' ? convertPcmByteOrder(got.subarray(0, whole), track.size) : got.subarray(0, whole);
        batch.push({ trackId: track.id, timeMs: Math.floor((((pos - dataOffset) / blockAlign) * 1000) / track.rate), offsetMs: 0, keyframe: true, data, bpos: pos });
        if (batch.length >= BATCH_PACKETS) {
          yield batch;
          batch = [];
        }
      }
      if (whole < got.length) warnings?.push(`${this.file}: ends inside a sample block at byte ${pos + whole}`);
      if (got.length < want) break;
      pos += got.length;
    }
    if (batch.length > 0) yield batch;
  }

  async *scan(): AsyncGenerator<ScanChunk> {
    const l = await this.layout();
    if (!l) {
      yield { packets: [], warnings: [`${this.file}: ends inside the WAV header`] };
      return;
    }
    const warnings: string[] = [];
    let first = true;
    for await (const packets of this.packets(l, l.dataOffset, warnings)) {
      const out: ScanChunk = { packets };
      if (first) out.tracks = [l.track];
      first = false;
      if (warnings.length > 0) out.warnings = warnings.splice(0);
      yield out;
    }
    if (first || warnings.length > 0) yield { ...(first ? { tracks: [l.track] } : {}), packets: [], ...(warnings.length > 0 ? { warnings } : {}) };
  }

  async *readFrom(bpos: number, _tracks: readonly Track[]): AsyncGenerator<Packet[]> {
    checkBpos(this.file, bpos);
    const l = await this.layout();
    if (!l || bpos < l.dataOffset || (bpos - l.dataOffset) % l.blockAlign !== 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `${this.file}: ${bpos} is not a sample block position`);
    for await (const packets of this.packets(l, bpos, undefined, PLAY_READ_BYTES)) {
      yield packets.map((p): Packet => ({ trackId: p.trackId, timeMs: p.timeMs, offsetMs: 0, keyframe: true, data: p.data }));
    }
  }

}

export const openWavSource: FileSourceOpener = async (file) => {
  const fh = await openHandle(file);
  try {
    const head = Buffer.alloc(12);
    const { bytesRead } = await fh.read(head, 0, 12, 0);
    if (bytesRead === 12 && (head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WAVE')) {
      throw new HazeError('HAZE_ERR_MALFORMED', `${file}: not a RIFF/WAVE file at byte 0`);
    }
  } catch (err) {
    await fh.close();
    throw err;
  }
  return new WavFileSource(file, fh);
};
