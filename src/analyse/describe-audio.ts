// Describers for audio-only inputs:
// - Ogg (RFC 3533 pages; RFC 7845 Opus, Vorbis I spec §4.2 headers; FLAC-in-Ogg mapping): one
//   line per page, a packet per audio packet (header packets are units), time from the granule
//   of the page before (Opus: 48 kHz minus pre-skip; Vorbis/FLAC: the stream's rate).
// - WAV (RIFF WAVE, fmt + data chunks): the header, then fixed packets of 1024 sample frames.
// - MP3 (ISO/IEC 11172-3 §2.4.2.3 frames, an ID3v2 tag skipped) and raw ADTS AAC (ISO/IEC
//   14496-3 §1.A.2.2): one packet per frame, time counted in samples.

import { OggPacketReader, OggPageReader } from '../containers/ogg/page.js';
import { WavReader, WAV_UNKNOWN_SIZE, type WavHeader } from '../containers/wav/wav.js';
import { NEED_MORE, probeAdts, probeMpegAudio, type ProbeResult } from '../containers/ts/audio-frames.js';
import { buildAsc } from '../media/aac.js';
import type { AudioCodec, AudioTrack, Track } from '../media/types.js';
import { HazeError } from '../util/errors.js';
import { problemOf, trackLine, type AnalyseEvent, type Describer } from './model.js';

function audioTrack(id: number, codec: AudioCodec, rate: number, channels: number, init: Buffer = Buffer.alloc(0), size = 16): AudioTrack {
  return { id, type: 'audio', codec, rate, channels, size, init, bps: 0, lang: 'und' };
}

function announce(ev: AnalyseEvent[], tracks: Track[]): void {
  for (const t of tracks) ev.push({ kind: 'header', text: trackLine(t) });
  ev.push({ kind: 'tracks', tracks });
}

// ---- Ogg -------------------------------------------------------------------------------------

interface OggStream {
  codec: AudioCodec | 'other';
  rate: number;
  preSkip: number;
  headersLeft: number;
  /** Granule at the end of the last page that ended a packet. */
  granule: number;
}

export class OggDescriber implements Describer {
  readonly kind = 'ogg' as const;
  private readonly pages = new OggPageReader();
  private readonly packets = new OggPacketReader();
  private readonly streams = new Map<number, OggStream>();
  private readonly tracks: Track[] = [];
  private pos = 0;
  private dead = false;

  push(chunk: Buffer): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead || chunk.length === 0) return ev;
    try {
      for (const page of this.pages.push(chunk)) {
        const at = this.pos;
        this.pos += page.raw.length;
        ev.push({ kind: 'unit', pos: at, text: `page serial ${page.serial} seq ${page.sequence} granule ${page.granule}${page.bos ? ' BOS' : ''}${page.eos ? ' EOS' : ''}${page.continued ? ' cont' : ''} size ${page.raw.length}` });
        for (const p of this.packets.page(page)) {
          let st = this.streams.get(p.serial);
          if (p.bos || !st) {
            st = this.identify(p.serial, p.data, ev);
          }
          if (st.headersLeft > 0 && this.isHeader(st, p.data)) {
            st.headersLeft--;
          } else if (st.codec !== 'other') {
            const samples = Math.max(0, st.granule - st.preSkip);
            const timeMs = st.rate > 0 ? Math.floor((samples * 1000) / st.rate) : 0;
            ev.push({ kind: 'packet', packet: { trackId: p.serial, timeMs, offsetMs: 0, keyframe: true, size: p.data.length, pos: at } });
          }
          if (p.granule >= 0) st.granule = p.granule;
        }
      }
    } catch (err) {
      this.dead = true;
      ev.push({ kind: 'problem', problem: problemOf(err, this.pos, 'Ogg') });
    }
    return ev;
  }

  private identify(serial: number, d: Buffer, ev: AnalyseEvent[]): OggStream {
    let st: OggStream;
    if (d.length >= 19 && d.toString('latin1', 0, 8) === 'OpusHead') {
      st = { codec: 'opus', rate: 48000, preSkip: d.readUInt16LE(10), headersLeft: 2, granule: 0 };
      this.tracks.push(audioTrack(serial, 'opus', 48000, d[9]!, d));
    } else if (d.length >= 30 && d[0] === 1 && d.toString('latin1', 1, 7) === 'vorbis') {
      const rate = d.readUInt32LE(12);
      st = { codec: 'vorbis', rate, preSkip: 0, headersLeft: 3, granule: 0 };
      this.tracks.push(audioTrack(serial, 'vorbis', rate, d[11]!, d));
    } else if (d.length >= 51 && d[0] === 0x7f && d.toString('latin1', 1, 5) === 'FLAC') {
      // 0x7F "FLAC" major minor u16 headers "fLaC" STREAMINFO block (sample rate at 18..20 bits)
      const si = 13 + 4;
      const rate = (d[si + 10]! << 12) | (d[si + 11]! << 4) | (d[si + 12]! >> 4);
      const channels = ((d[si + 12]! >> 1) & 7) + 1;
      st = { codec: 'FLAC', rate, preSkip: 0, headersLeft: 1 + d.readUInt16BE(7), granule: 0 };
      this.tracks.push(audioTrack(serial, 'FLAC', rate, channels, d));
    } else {
      st = { codec: 'other', rate: 0, preSkip: 0, headersLeft: 0, granule: 0 };
      ev.push({ kind: 'note', text: `Ogg serial ${serial}: codec not recognised (${d.subarray(0, 8).toString('hex')}); its packets are not listed` });
    }
    this.streams.set(serial, st);
    if (st.codec !== 'other') announce(ev, [...this.tracks]);
    return st;
  }

  private isHeader(st: OggStream, d: Buffer): boolean {
    if (st.codec === 'opus') return d.length >= 8 && (d.toString('latin1', 0, 8) === 'OpusHead' || d.toString('latin1', 0, 8) === 'OpusTags');
    if (st.codec === 'vorbis') return d.length >= 7 && (d[0]! & 1) === 1 && d.toString('latin1', 1, 7) === 'vorbis';
    return true;
  }

  end(complete: boolean): AnalyseEvent[] {
    if (this.dead || !complete || this.pages.buffered === 0) return [];
    return [{ kind: 'problem', problem: { rule: 'TRUNCATED', text: `Ogg page at byte ${this.pos} cut short (${this.pages.buffered} bytes)`, pos: this.pos } }];
  }
}

// ---- WAV -------------------------------------------------------------------------------------

const WAV_FRAMES_PER_PACKET = 1024;
const WAV_CODEC: Record<number, AudioCodec> = { 1: 'PCM', 6: 'ALAW', 7: 'ULAW' };

export class WavDescriber implements Describer {
  readonly kind = 'wav' as const;
  private readonly reader = new WavReader();
  private header: WavHeader | undefined;
  private dataBytes = 0;
  /** Bytes of data already listed as packets. */
  private listed = 0;
  private dead = false;

  push(chunk: Buffer): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead || chunk.length === 0) return ev;
    try {
      for (const b of this.reader.push(chunk)) this.dataBytes += b.length;
      const h = this.reader.header;
      if (h && !this.header) {
        this.header = h;
        ev.push({ kind: 'header', text: `RIFF WAVE: format ${h.formatTag}, ${h.channels} ch, ${h.sampleRate} Hz, ${h.bitsPerSample} bit, block ${h.blockAlign} B, data at ${h.dataOffset} (${h.dataBytes === WAV_UNKNOWN_SIZE ? 'size unknown' : `${h.dataBytes} B`})` });
        const codec = WAV_CODEC[h.formatTag];
        if (!codec) ev.push({ kind: 'note', text: `WAV format tag ${h.formatTag} is not one Haze plays` });
        announce(ev, [audioTrack(1, codec ?? 'PCM', h.sampleRate, h.channels, Buffer.alloc(0), h.bitsPerSample)]);
      }
      this.list(ev, false);
    } catch (err) {
      this.dead = true;
      ev.push({ kind: 'problem', problem: problemOf(err, 0, 'WAV') });
    }
    return ev;
  }

  private list(ev: AnalyseEvent[], last: boolean): void {
    const h = this.header;
    if (!h || h.blockAlign === 0) return;
    const unit = WAV_FRAMES_PER_PACKET * h.blockAlign;
    while (this.dataBytes - this.listed >= unit || (last && this.dataBytes > this.listed)) {
      const size = Math.min(unit, this.dataBytes - this.listed);
      const frames = this.listed / h.blockAlign;
      ev.push({ kind: 'packet', packet: { trackId: 1, timeMs: Math.floor((frames * 1000) / h.sampleRate), offsetMs: 0, keyframe: true, size, pos: h.dataOffset + this.listed } });
      this.listed += size;
    }
  }

  end(complete: boolean): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead) return ev;
    const h = this.header;
    if (!h) {
      if (complete) ev.push({ kind: 'problem', problem: { rule: 'TRUNCATED', text: 'WAV input ends before its data chunk', pos: 0 } });
      return ev;
    }
    this.list(ev, true);
    if (!complete) return ev;
    if (h.dataBytes !== WAV_UNKNOWN_SIZE && this.dataBytes < h.dataBytes) {
      ev.push({ kind: 'problem', problem: { rule: 'TRUNCATED', text: `WAV data chunk declares ${h.dataBytes} B, ${this.dataBytes} B present`, pos: h.dataOffset + this.dataBytes } });
    } else if (h.blockAlign > 0 && this.dataBytes % h.blockAlign !== 0) {
      ev.push({ kind: 'problem', problem: { rule: 'TRUNCATED', text: `WAV data ends inside a sample frame`, pos: h.dataOffset + this.dataBytes } });
    }
    return ev;
  }
}

// ---- MP3 / ADTS ------------------------------------------------------------------------------

/** Largest frame either format has (ADTS: 13-bit length; MP3 layer I at 448 kbit/s 32 kHz is far less). */
const MAX_AUDIO_FRAME = 8192;
/** Garbage skipped before the describer gives up on finding frames. */
const MAX_RESYNC = 64 * 1024;

/** Whether the MP3 frame at `p` is a Xing/Info (after the side info) or VBRI (at 32) header frame. */
function isInfoFrame(buf: Buffer, p: number, len: number): boolean {
  const end = Math.min(buf.length, p + Math.min(len, 64));
  const text = buf.toString('latin1', p + 4, end);
  return text.includes('Xing') || text.includes('Info') || text.includes('VBRI');
}

export class AudioFramesDescriber implements Describer {
  readonly kind: 'mp3' | 'adts';
  private readonly probe: (buf: Buffer, p: number) => ProbeResult;
  private pending: Buffer = Buffer.alloc(0);
  /** Absolute offset of pending[0]. */
  private base = 0;
  private id3Left = -1;
  private samples = 0;
  private rate = 0;
  private announced = false;
  private skipped = 0;
  private dead = false;
  /** Frames listed so far; -1 right after an info frame (so only the first frame is checked). */
  private packets = 0;

  constructor(kind: 'mp3' | 'adts') {
    this.kind = kind;
    this.probe = kind === 'adts' ? probeAdts : probeMpegAudio;
  }

  push(chunk: Buffer): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead || chunk.length === 0) return ev;
    // pending holds at most one partial frame (or a partial ID3 header), so this stays small
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    let p = 0;
    try {
      if (this.id3Left < 0) {
        if (buf.length < 10) {
          this.pending = Buffer.from(buf);
          return ev;
        }
        if (buf.toString('latin1', 0, 3) === 'ID3') {
          const size = ((buf[6]! & 0x7f) << 21) | ((buf[7]! & 0x7f) << 14) | ((buf[8]! & 0x7f) << 7) | (buf[9]! & 0x7f);
          this.id3Left = 10 + size + ((buf[5]! & 0x10) !== 0 ? 10 : 0);
          ev.push({ kind: 'unit', pos: 0, text: `ID3v2.${buf[3]} tag, ${this.id3Left} B` });
        } else this.id3Left = 0;
      }
      if (this.id3Left > 0) {
        const n = Math.min(this.id3Left, buf.length);
        this.id3Left -= n;
        p = n;
      }
      while (p < buf.length) {
        const r = this.probe(buf, p);
        if (r === NEED_MORE) break;
        if (r === undefined) {
          // not a frame: an ID3v1 tag at the end, or damage
          if (buf.length - p >= 3 && buf.toString('latin1', p, p + 3) === 'TAG') {
            if (buf.length - p < 128) break;
            ev.push({ kind: 'unit', pos: this.base + p, text: 'ID3v1 tag' });
            p += 128;
            continue;
          }
          if (this.skipped === 0) ev.push({ kind: 'problem', problem: { rule: 'AUDIO_SYNC', text: `no ${this.kind.toUpperCase()} frame header at byte ${this.base + p}`, pos: this.base + p, timeMs: this.timeMs() } });
          this.skipped++;
          if (this.skipped > MAX_RESYNC) throw new HazeError('HAZE_ERR_MALFORMED', `no ${this.kind.toUpperCase()} frames in ${MAX_RESYNC} bytes`);
          p++;
          continue;
        }
        this.skipped = 0;
        if (!this.announced) {
          this.announced = true;
          const t =
            this.kind === 'adts' && r.adts
              ? audioTrack(1, 'AAC', r.rate, r.channels, buildAsc({ objectType: r.adts.profile + 1, sampleRate: r.rate, channelConfig: r.adts.channelConfig }))
              : audioTrack(1, 'MP3', r.rate, r.channels);
          announce(ev, [t]);
        }
        if (this.kind === 'mp3' && this.packets === 0 && isInfoFrame(buf, p, r.payloadLen)) {
          // LAME/Xing/VBRI header frame: a valid frame without audio, which decoders skip
          ev.push({ kind: 'unit', pos: this.base + p, text: `MP3 Xing/Info/VBRI header frame, ${r.payloadLen} B` });
          p += r.headerLen + r.payloadLen;
          this.packets = -1;
          continue;
        }
        if (this.packets < 0) this.packets = 0;
        this.packets++;
        if (r.rate !== this.rate && this.rate > 0) this.samples = Math.round((this.samples * r.rate) / this.rate);
        this.rate = r.rate;
        ev.push({ kind: 'packet', packet: { trackId: 1, timeMs: this.timeMs(), offsetMs: 0, keyframe: true, size: r.payloadLen, pos: this.base + p } });
        this.samples += r.samples;
        p += r.headerLen + r.payloadLen;
      }
    } catch (err) {
      this.dead = true;
      ev.push({ kind: 'problem', problem: problemOf(err, this.base + p, this.kind.toUpperCase()) });
      return ev;
    }
    const rest = buf.length - p;
    if (rest > MAX_AUDIO_FRAME + 128) {
      // cannot be one frame: drop it (counted as a sync problem on the next push)
      this.base += buf.length;
      this.pending = Buffer.alloc(0);
      buf = Buffer.alloc(0);
    } else {
      this.base += p;
      this.pending = rest > 0 ? Buffer.from(buf.subarray(p)) : Buffer.alloc(0);
    }
    return ev;
  }

  private timeMs(): number {
    return this.rate > 0 ? Math.floor((this.samples * 1000) / this.rate) : 0;
  }

  end(complete: boolean): AnalyseEvent[] {
    if (this.dead || !complete || this.pending.length === 0) return [];
    if (this.id3Left < 0) return [{ kind: 'problem', problem: { rule: 'TRUNCATED', text: `input of ${this.pending.length} bytes is too short for a frame`, pos: 0 } }];
    return [{ kind: 'problem', problem: { rule: 'TRUNCATED', text: `${this.kind.toUpperCase()} frame at byte ${this.base} cut short (${this.pending.length} bytes)`, pos: this.base, timeMs: this.timeMs() } }];
  }
}
