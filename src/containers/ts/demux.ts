// MPEG-2 transport stream demuxer, push-based: ISO/IEC 13818-1 §2.4.3.2 (transport packet),
// §2.4.3.4 (adaptation field: discontinuity and random_access indicators), §2.4.3.6-7 (PES
// packet, PTS/DTS), §2.4.4 (PSI, parsed in psi-read.ts), §2.4.2.2 (continuity_counter).
// Stream types (Table 2-34 and registrations): 0x1B H.264, 0x24 HEVC, 0x0F AAC ADTS, 0x03/0x04
// MPEG audio, 0x81 AC-3 (ATSC A/52 Annex A), 0x06 private PES with an AC-3 descriptor (ETSI EN
// 300 468 Annex D) or the 'Opus' registration (ETSI TS Opus-in-TS draft, see audio.ts).
//
//   TS packet: 0x47 | TEI PUSI prio PID(13) | scrambling(2) afc(2) cc(4) | [AF] | payload
//   PES:       00 00 01 stream_id | length(16, 0 = unbounded) | 10 .. | PTS_DTS_flags(2) ..
//              | header_data_length | PTS(5) [DTS(5)] | ... | payload
//
// Output (the file inputs and, later, SRT/UDP inputs feed this; nothing here assumes a file):
// - Track ids are the elementary streams' PIDs. Only one program is demuxed: the one asked for
//   in the options, else the first program of the PAT.
// - timeMs = floor(dts_ticks / 90), offsetMs = floor(pts_ticks / 90) - timeMs, where the ticks
//   are the 33-bit PES clock unwrapped into one continuous count (each value is taken nearest to
//   the last one seen on any PID, so wraps and small backward steps both work). Times are not
//   rebased: a file starting at PTS 1.4 s starts at timeMs 1400. The PCR is not used.
// - H.264/HEVC: one PES = one access unit, every NAL unit kept (AUD, SEI, parameter sets) and
//   re-framed with 4-byte lengths; the track's avcC/hvcC is built from the SPS/PPS(/VPS) seen in
//   the stream (lengthSizeMinusOne 3) and replaced when they change. keyframe = the access unit
//   holds an IDR (H.264) or IRAP (HEVC) picture. Access units before the first parameter sets
//   are dropped (nothing could decode them).
// - Audio: every frame in a PES (AAC without its ADTS header, MP3 and AC-3 frames whole, Opus
//   without its control header) is one packet; the first frame starting in a PES takes its PTS,
//   later ones count samples from it; frames may span PES packets.
// - pos: offset in the input of the sync byte of the TS packet that started the PES (for
//   192-byte M2TS input the 4-byte TP_extra_header sits before it).
// - Bad input is reported in `warnings` and skipped (TS is a lossy transport: resync on 0x47,
//   CRC errors, continuity errors drop the unit being collected); only an input that never shows
//   a TS sync pattern within its first 64 KiB throws (HAZE_ERR_MALFORMED).
// Packets are held back until every stream of the program has a configuration (at most
// maxHoldMs / maxHoldBytes), so the first result with `tracks` lists them all.

import type { AudioCodec, AudioTrack, Packet, Track, VideoCodec, VideoTrack } from '../../media/types.js';
import { HazeError, isHazeError } from '../../util/errors.js';
import { buildAvcC, parseAvcC, parseH264Sps, H264_NAL_IDR, H264_NAL_PPS, H264_NAL_SPS } from '../../media/h264.js';
import { buildHvcC, parseHvcC, parseHevcSps, isHevcIrap, HEVC_NAL_PPS, HEVC_NAL_SPS, HEVC_NAL_VPS } from '../../media/hevc.js';
import { joinNalUnits, splitAnnexB } from '../../media/nal-units.js';
import { buildAsc } from '../../media/aac.js';
import { NEED_MORE, probeAc3, probeAdts, probeMpegAudio, probeOpus, type AudioFrame, type ProbeResult } from './audio-frames.js';
import { PsiAssembler, TABLE_PAT, TABLE_PMT, language, parsePat, parsePmt, parseSection, registration, type PmtEntry } from './psi-read.js';
import {
  STREAM_TYPE_AAC_ADTS,
  STREAM_TYPE_AC3_ATSC,
  STREAM_TYPE_H264,
  STREAM_TYPE_HEVC,
  STREAM_TYPE_MPEG1_AUDIO,
  STREAM_TYPE_MPEG2_AUDIO,
  STREAM_TYPE_PRIVATE_PES,
} from './mux.js';
import { PAT_PID, TS_PACKET_SIZE, TS_SYNC_BYTE } from './psi.js';
import { OPUS_DEFAULT_COUPLED, OPUS_DEFAULT_MAPPING } from './audio.js';

export interface TsDemuxPacket extends Packet {
  /** Input offset of the first TS packet of the PES this packet came from. */
  pos: number;
  /**
   * With the `resumePositions` option: the lowest input offset a fresh demuxer can start at and
   * still give this packet and every later one (PES packets of other PIDs interleave, so one
   * that started earlier may end after this one). Never decreases from packet to packet.
   */
  resumePos?: number;
}

export interface TsDemuxResult {
  /** The complete current track list, present when it is first known and whenever it changes. */
  tracks?: Track[];
  packets: TsDemuxPacket[];
  warnings: string[];
}

export interface TsDemuxerOptions {
  /** program_number to demux (default: the first program in the PAT). */
  program?: number;
  /** Largest PES packet collected (default 32 MiB); a longer one is dropped with a warning. */
  maxPesBytes?: number;
  /** Longest time span of packets held back while waiting for all tracks' configs (default 5000 ms). */
  maxHoldMs?: number;
  /** Most bytes held back while waiting for all tracks' configs (default 16 MiB). */
  maxHoldBytes?: number;
  /**
   * The unwrapped 90 kHz clock the input starts near (default: the first timestamp as it is).
   * For reading on from the middle of a stream whose clock wrapped before (or was unwrapped past
   * 2^33) earlier: timestamps are then taken nearest to this value.
   */
  clockRef?: number;
  /** Set `resumePos` on every packet (see TsDemuxPacket). */
  resumePositions?: boolean;
}

type Kind = 'h264' | 'hevc' | 'aac' | 'mp3' | 'ac3' | 'opus';

interface EsState {
  pid: number;
  kind: Kind;
  streamType: number;
  lang: string;
  /** The current configuration; undefined until the stream says enough. */
  track: Track | undefined;
  cc: number;
  // PES being collected.
  collecting: boolean;
  pes: Buffer;
  pesLen: number;
  /** Total PES bytes from PES_packet_length, 0 when unbounded, -1 before the 6-byte header is in. */
  pesWant: number;
  pesPos: number;
  lastPesSize: number;
  // Video parameter sets last seen.
  vps: Buffer[];
  sps: Buffer[];
  pps: Buffer[];
  lastDtsTicks: number | undefined;
  warnedNoConfig: boolean;
  // Audio: bytes of a frame that continues in the next PES, and the sample clock.
  carry: Buffer | undefined;
  carryPos: number;
  anchorTicks: number | undefined;
  anchorSamples: number;
  anchorRate: number;
  opusChannels: number;
}

const STRIDES = [188, 192, 204] as const;
const MAX_STRIDE = 204;
const TICKS_WRAP = 2 ** 33;
const HALF_WRAP = 2 ** 32;
/** Bytes scanned without finding a sync pattern before the input is declared not TS. */
const MAX_UNSYNCED_START = 64 * 1024;
/** An audio frame longer than this never ends in a later PES (ADTS tops out at 8191 bytes). */
const MAX_AUDIO_CARRY = 64 * 1024;
const MAX_WARNINGS = 64;
const EMPTY = Buffer.alloc(0);

const VIDEO_CODEC: Partial<Record<Kind, VideoCodec>> = { h264: 'H264', hevc: 'HEVC' };
const AUDIO_CODEC: Partial<Record<Kind, AudioCodec>> = { aac: 'AAC', mp3: 'MP3', ac3: 'AC3', opus: 'opus' };

/** The 33-bit PTS/DTS field: prefix(4) ts[32..30] 1 | ts[29..15] 1 | ts[14..0] 1. */
function readTimestamp(b: Buffer, o: number): number {
  return ((b[o]! >> 1) & 7) * 2 ** 30 + ((b[o + 1]! << 7) | (b[o + 2]! >> 1)) * 2 ** 15 + ((b[o + 3]! << 7) | (b[o + 4]! >> 1));
}

/** An OpusHead (RFC 7845 §5.1) for a channel_config_code, as a decoder needs it; undefined if unsupported. */
export function opusHeadFor(channelConfigCode: number): { head: Buffer; channels: number } | undefined {
  let channels: number;
  let family = 0;
  let streams = 1;
  let coupled = 0;
  let map: readonly number[] = [];
  if (channelConfigCode >= 1 && channelConfigCode <= 8) {
    channels = channelConfigCode;
    if (channels > 2) {
      family = 1;
      coupled = OPUS_DEFAULT_COUPLED[channels]!;
      streams = channels - coupled;
      map = OPUS_DEFAULT_MAPPING[channels]!;
    } else {
      coupled = channels - 1;
    }
  } else if (channelConfigCode >= 0x82 && channelConfigCode <= 0x88) {
    channels = channelConfigCode & 0x0f;
    family = 255;
    streams = channels;
    map = Array.from({ length: channels }, (_, i) => i);
  } else {
    return undefined;
  }
  const head = Buffer.alloc(family === 0 ? 19 : 21 + channels);
  head.write('OpusHead', 0, 'latin1');
  head[8] = 1;
  head[9] = channels;
  head.writeUInt16LE(0, 10); // pre-skip: TS does not carry it
  head.writeUInt32LE(48000, 12);
  head.writeInt16LE(0, 16);
  head[18] = family;
  if (family !== 0) {
    head[19] = streams;
    head[20] = coupled;
    for (let i = 0; i < channels; i++) head[21 + i] = map[i]!;
  }
  return { head, channels };
}

export class TsDemuxer {
  private readonly program: number | undefined;
  private readonly maxPesBytes: number;
  private readonly maxHoldMs: number;
  private readonly maxHoldBytes: number;

  // Packet sync.
  private pending: Buffer = EMPTY;
  private pendingPos = 0;
  private skipAhead = 0;
  private synced = false;
  private everSynced = false;
  private stride = TS_PACKET_SIZE;
  private unsyncedBytes = 0;
  private readonly joinBuf = Buffer.allocUnsafe(MAX_STRIDE);

  // PSI.
  private readonly patAsm = new PsiAssembler();
  private readonly pmtAsm = new PsiAssembler();
  private readonly sections: Buffer[] = [];
  private pmtPid = -1;
  private programNumber = -1;
  private lastPat: Buffer | undefined;
  private lastPmt: Buffer | undefined;
  private pmtSeen = false;
  private readonly streams = new Map<number, EsState>();
  private order: number[] = [];

  // Timeline.
  private clockRef: number | undefined;
  private firstClock: number | undefined;
  private readonly resumePositions: boolean;

  // Output.
  private announced = false;
  private tracksChanged = false;
  private held: TsDemuxPacket[] = [];
  private heldBytes = 0;
  private out: TsDemuxPacket[] = [];
  private warnings: string[] = [];
  private droppedWarnings = 0;

  constructor(opts: TsDemuxerOptions = {}) {
    this.program = opts.program;
    this.maxPesBytes = opts.maxPesBytes ?? 32 * 1024 * 1024;
    this.maxHoldMs = opts.maxHoldMs ?? 5000;
    this.maxHoldBytes = opts.maxHoldBytes ?? 16 * 1024 * 1024;
    this.clockRef = opts.clockRef;
    this.resumePositions = opts.resumePositions ?? false;
  }

  /** The first PES timestamp read, unwrapped (undefined before one). */
  get firstClockTicks(): number | undefined {
    return this.firstClock;
  }

  /** The PID of the demuxed program's PMT (-1 before the PAT). */
  get programPmtPid(): number {
    return this.pmtPid;
  }

  /** Bytes per transport packet as detected: 188, 192 (M2TS) or 204. */
  get packetStride(): number {
    return this.stride;
  }

  /**
   * Configures H.264/HEVC streams of the current PMT from known tracks (avcC/hvcC), for reading
   * on from a keyframe whose access unit does not repeat the parameter sets. Call after the PMT.
   */
  primeVideo(tracks: readonly Track[]): void {
    for (const t of tracks) {
      const es = this.streams.get(t.id);
      if (!es || t.type !== 'video' || t.init.length === 0) continue;
      try {
        if (es.kind === 'h264' && t.codec === 'H264') {
          const c = parseAvcC(t.init);
          es.sps = c.sps.map((n) => Buffer.from(n));
          es.pps = c.pps.map((n) => Buffer.from(n));
        } else if (es.kind === 'hevc' && t.codec === 'HEVC') {
          const c = parseHvcC(t.init);
          es.vps = c.vps.map((n) => Buffer.from(n));
          es.sps = c.sps.map((n) => Buffer.from(n));
          es.pps = c.pps.map((n) => Buffer.from(n));
        } else continue;
      } catch (err) {
        if (!isHazeError(err)) throw err;
        this.warn(`PID ${t.id}: track init: ${err.message}`);
        continue;
      }
      this.configureVideo(es);
    }
  }

  /** The configured tracks, in PMT order. */
  get tracks(): Track[] {
    const list: Track[] = [];
    for (const pid of this.order) {
      const t = this.streams.get(pid)?.track;
      if (t) list.push(t);
    }
    return list;
  }

  /** Feeds bytes; the chunk is not kept after the call returns (callers may reuse it). */
  push(chunk: Buffer): TsDemuxResult {
    this.feed(chunk, false);
    return this.result();
  }

  /** The end of the input: flushes the PES packets still open and holds nothing back. */
  end(): TsDemuxResult {
    this.feed(EMPTY, true);
    for (const pid of this.order) {
      const es = this.streams.get(pid)!;
      if (es.collecting) this.finishPes(es);
      if (es.carry) {
        this.warn(`PID ${es.pid}: incomplete audio frame of ${es.carry.length} bytes at the end dropped`);
        es.carry = undefined;
      }
    }
    if (!this.announced && this.pmtSeen) this.announce();
    return this.result();
  }

  private result(): TsDemuxResult {
    if (!this.announced) this.checkHold();
    const r: TsDemuxResult = { packets: this.out, warnings: this.warnings };
    if (this.tracksChanged) r.tracks = this.tracks;
    if (this.droppedWarnings > 0) this.warnings.push(`... and ${this.droppedWarnings} more warnings`);
    this.tracksChanged = false;
    this.out = [];
    this.warnings = [];
    this.droppedWarnings = 0;
    return r;
  }

  private warn(msg: string): void {
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(msg);
    else this.droppedWarnings++;
  }

  // ---- transport packets ---------------------------------------------------------------------

  private feed(chunk: Buffer, final: boolean): void {
    let data = chunk;
    let base = this.pendingPos + this.pending.length;
    if (this.skipAhead > 0) {
      const n = Math.min(this.skipAhead, data.length);
      this.skipAhead -= n;
      data = data.subarray(n);
      base += n;
    }
    let start = 0;
    if (this.pending.length > 0) {
      if (this.synced && this.pending.length < TS_PACKET_SIZE) {
        // Finish the split packet in a small buffer instead of joining the whole chunk.
        const need = TS_PACKET_SIZE - this.pending.length;
        if (data.length < need) {
          this.pending = Buffer.concat([this.pending, data]);
          return;
        }
        this.pending.copy(this.joinBuf, 0);
        data.copy(this.joinBuf, this.pending.length, 0, need);
        const pos = this.pendingPos;
        this.pending = EMPTY;
        if (this.joinBuf[0] === TS_SYNC_BYTE) {
          this.packet(this.joinBuf, 0, pos);
          start = need + (this.stride - TS_PACKET_SIZE);
          this.pendingPos = base;
          if (start > data.length) {
            this.skipAhead = start - data.length;
            this.pendingPos = base + data.length;
            return;
          }
        } else {
          // Resync from the joined bytes: rare, so joining is fine here.
          this.synced = false;
          this.warn(`lost TS sync at ${pos}`);
          data = Buffer.concat([this.joinBuf.subarray(0, TS_PACKET_SIZE), data.subarray(need)]);
          base = pos;
        }
      } else {
        data = Buffer.concat([this.pending, data]);
        base = this.pendingPos;
        this.pending = EMPTY;
      }
    }
    this.scan(data, start, base, final);
  }

  private scan(data: Buffer, start: number, base: number, final: boolean): void {
    let i = start;
    const len = data.length;
    for (;;) {
      if (!this.synced) {
        const from = i;
        const found = this.findSync(data, i, final);
        if (found < 0) {
          // No sync anywhere: keep nothing (a candidate near the end would have been "more").
          i = found === -1 ? len : -found - 2;
          this.noteUnsynced(i - from, base + from);
          break;
        }
        // M2TS: the 4-byte TP_extra_header before the first sync byte is not junk.
        if (!(this.stride === 192 && found - from === 4)) this.noteUnsynced(found - from, base + from);
        i = found;
        this.synced = true;
        this.everSynced = true;
      }
      if (len - i < TS_PACKET_SIZE) break;
      if (data[i] !== TS_SYNC_BYTE) {
        this.synced = false;
        this.warn(`lost TS sync at ${base + i}`);
        continue;
      }
      this.packet(data, i, base + i);
      i += this.stride;
    }
    if (i > len) {
      this.skipAhead = i - len;
      this.pending = EMPTY;
      this.pendingPos = base + len;
    } else {
      // Copy: the caller may reuse its chunk.
      this.pending = i < len ? Buffer.from(data.subarray(i)) : EMPTY;
      this.pendingPos = base + i;
    }
  }

  private noteUnsynced(n: number, pos: number): void {
    if (n <= 0) return;
    this.warn(`skipped ${n} bytes without TS sync at ${pos}`);
    if (!this.everSynced) {
      this.unsyncedBytes += n;
      if (this.unsyncedBytes > MAX_UNSYNCED_START) {
        throw new HazeError('HAZE_ERR_MALFORMED', `no MPEG-TS sync pattern in the first ${this.unsyncedBytes} bytes (at ${pos + n})`);
      }
    }
  }

  /**
   * The offset of the first sync byte followed by two more at 188, 192 (M2TS) or 204 (with
   * Reed-Solomon parity) byte intervals; sets the stride. Returns -1 when there is none,
   * -(k + 2) to wait at k for more bytes before deciding.
   */
  private findSync(data: Buffer, from: number, final: boolean): number {
    const len = data.length;
    for (let at = data.indexOf(TS_SYNC_BYTE, from); at >= 0; at = data.indexOf(TS_SYNC_BYTE, at + 1)) {
      let undecided = false;
      for (const s of STRIDES) {
        if (at + 2 * s < len) {
          if (data[at + s] === TS_SYNC_BYTE && data[at + 2 * s] === TS_SYNC_BYTE) {
            this.stride = s;
            return at;
          }
        } else {
          undecided = true;
        }
      }
      if (undecided) {
        if (!final) return -(at + 2);
        // The last packet or two of the input: plain 188-byte TS when it lines up.
        if (len - at >= TS_PACKET_SIZE && (at + TS_PACKET_SIZE >= len || data[at + TS_PACKET_SIZE] === TS_SYNC_BYTE)) {
          this.stride = TS_PACKET_SIZE;
          return at;
        }
      }
    }
    return -1;
  }

  /** One 188-byte transport packet at `o`. */
  private packet(b: Buffer, o: number, pos: number): void {
    const b1 = b[o + 1]!;
    if (b1 & 0x80) {
      this.warn(`transport_error_indicator set at ${pos}`);
      return;
    }
    const pid = ((b1 & 0x1f) << 8) | b[o + 2]!;
    if (pid === 0x1fff) return;
    const pusi = (b1 & 0x40) !== 0;
    const b3 = b[o + 3]!;
    const afc = (b3 >> 4) & 3;
    const cc = b3 & 0x0f;
    let p = o + 4;
    const end = o + TS_PACKET_SIZE;
    let discontinuity = false;
    if (afc & 2) {
      const afLength = b[p]!;
      if (afLength > 183 || (afc === 3 && afLength > 182)) {
        this.warn(`adaptation_field_length ${afLength} at ${pos}`);
        return;
      }
      if (afLength > 0) discontinuity = (b[p + 1]! & 0x80) !== 0;
      p += 1 + afLength;
    }
    if ((afc & 1) === 0) return;
    if (b3 & 0xc0) {
      this.warn(`scrambled packet on PID ${pid} at ${pos}`);
      return;
    }
    const payload = b.subarray(p, end);
    if (pid === PAT_PID) {
      this.patAsm.push(payload, pusi, this.sections);
      this.onSections(pos);
      return;
    }
    if (pid === this.pmtPid) {
      this.pmtAsm.push(payload, pusi, this.sections);
      this.onSections(pos);
      return;
    }
    const es = this.streams.get(pid);
    if (!es) return;
    if (es.cc >= 0 && !discontinuity) {
      if (cc === es.cc) return; // a duplicate packet (§2.4.3.3 allows one)
      if (cc !== ((es.cc + 1) & 0x0f)) {
        this.warn(`PID ${pid}: continuity counter ${cc} after ${es.cc} at ${pos}`);
        if (es.collecting && !pusi) {
          this.warn(`PID ${pid}: PES from ${es.pesPos} dropped`);
          es.collecting = false;
        }
      }
    }
    es.cc = cc;
    this.pesPayload(es, payload, pusi, pos);
  }

  // ---- PSI -----------------------------------------------------------------------------------

  private onSections(pos: number): void {
    for (const sec of this.sections) {
      try {
        this.section(sec);
      } catch (err) {
        if (!isHazeError(err)) throw err;
        this.warn(`PSI section near ${pos}: ${err.message}`);
      }
    }
    this.sections.length = 0;
  }

  private section(raw: Buffer): void {
    const tableId = raw[0];
    if (tableId !== TABLE_PAT && tableId !== TABLE_PMT) return;
    const sec = parseSection(raw);
    if (!sec.current) return;
    if (tableId === TABLE_PAT) {
      if (this.lastPat && this.lastPat.equals(raw)) return;
      const entries = parsePat(sec.body).filter((e) => e.programNumber !== 0);
      const entry = this.program === undefined ? entries[0] : entries.find((e) => e.programNumber === this.program);
      this.lastPat = raw;
      if (!entry) {
        this.warn(this.program === undefined ? 'PAT lists no program' : `PAT lacks program ${this.program}`);
        return;
      }
      if (entry.pid !== this.pmtPid || entry.programNumber !== this.programNumber) {
        this.pmtPid = entry.pid;
        this.programNumber = entry.programNumber;
        this.pmtAsm.reset();
        this.lastPmt = undefined;
      }
      return;
    }
    if (this.lastPmt && this.lastPmt.equals(raw)) return;
    const pmt = parsePmt(sec);
    // Several programs may share one PMT PID.
    if (pmt.programNumber !== this.programNumber) return;
    this.lastPmt = raw;
    this.applyPmt(pmt.streams);
  }

  private kindOf(s: PmtEntry): Kind | undefined {
    switch (s.streamType) {
      case STREAM_TYPE_H264:
        return 'h264';
      case STREAM_TYPE_HEVC:
        return 'hevc';
      case STREAM_TYPE_AAC_ADTS:
        return 'aac';
      case STREAM_TYPE_MPEG1_AUDIO:
      case STREAM_TYPE_MPEG2_AUDIO:
        return 'mp3';
      case STREAM_TYPE_AC3_ATSC:
        return 'ac3';
      case STREAM_TYPE_PRIVATE_PES: {
        const reg = registration(s.descriptors);
        if (reg === 'Opus') return 'opus';
        if (reg === 'AC-3' || s.descriptors.some((d) => d.tag === 0x6a)) return 'ac3';
        return undefined;
      }
      default:
        return undefined;
    }
  }

  private applyPmt(entries: PmtEntry[]): void {
    const seen = new Set<number>();
    const order: number[] = [];
    for (const s of entries) {
      if (seen.has(s.pid) || s.pid < 0x10 || s.pid === 0x1fff || s.pid === this.pmtPid) {
        this.warn(`PMT: PID ${s.pid} repeated or reserved`);
        continue;
      }
      seen.add(s.pid);
      const kind = this.kindOf(s);
      if (!kind) {
        this.warn(`PMT: stream_type 0x${s.streamType.toString(16)} on PID ${s.pid} is not supported; skipped`);
        continue;
      }
      const old = this.streams.get(s.pid);
      if (old && old.kind === kind && old.streamType === s.streamType) {
        order.push(s.pid);
        continue;
      }
      const es = this.newStream(s, kind);
      if (!es) continue;
      this.streams.set(s.pid, es);
      order.push(s.pid);
      if (es.track && this.announced) this.tracksChanged = true;
    }
    for (const pid of this.order) {
      if (!order.includes(pid)) {
        if (this.streams.get(pid)?.track && this.announced) this.tracksChanged = true;
        this.streams.delete(pid);
      }
    }
    this.order = order;
    this.pmtSeen = true;
  }

  private newStream(s: PmtEntry, kind: Kind): EsState | undefined {
    const es: EsState = {
      pid: s.pid,
      kind,
      streamType: s.streamType,
      lang: language(s.descriptors),
      track: undefined,
      cc: -1,
      collecting: false,
      pes: EMPTY,
      pesLen: 0,
      pesWant: -1,
      pesPos: 0,
      lastPesSize: 0,
      vps: [],
      sps: [],
      pps: [],
      lastDtsTicks: undefined,
      warnedNoConfig: false,
      carry: undefined,
      carryPos: 0,
      anchorTicks: undefined,
      anchorSamples: 0,
      anchorRate: 0,
      opusChannels: 0,
    };
    if (kind === 'opus') {
      // DVB extension descriptor, extension tag 0x80: channel_config_code.
      const d = s.descriptors.find((x) => x.tag === 0x7f && x.body.length >= 2 && x.body[0] === 0x80);
      const opus = opusHeadFor(d ? d.body[1]! : 2);
      if (!opus) {
        this.warn(`PID ${s.pid}: Opus channel_config_code 0x${d!.body[1]!.toString(16)} is not supported; skipped`);
        return undefined;
      }
      es.opusChannels = opus.channels;
      es.track = { id: s.pid, type: 'audio', codec: 'opus', init: opus.head, bps: 0, lang: es.lang, rate: 48000, channels: opus.channels, size: 16 };
    }
    return es;
  }

  // ---- PES -----------------------------------------------------------------------------------

  private pesPayload(es: EsState, payload: Buffer, pusi: boolean, pos: number): void {
    if (pusi) {
      if (es.collecting) this.finishPes(es);
      es.collecting = true;
      es.pesLen = 0;
      es.pesWant = -1;
      es.pesPos = pos;
    } else if (!es.collecting) {
      return;
    }
    if (es.pesWant === -1 && es.pesLen + payload.length >= 6) {
      // The declared size (also needed for the allocation), once the 6-byte start is in.
      const b4 = es.pesLen > 4 ? es.pes[4]! : payload[4 - es.pesLen]!;
      const b5 = payload[5 - es.pesLen]!;
      const declared = (b4 << 8) | b5;
      es.pesWant = declared === 0 ? 0 : 6 + declared;
      this.reserve(es, es.pesWant > 0 ? es.pesWant : Math.max(4096, es.lastPesSize + (es.lastPesSize >> 1)));
    }
    if (!this.append(es, payload)) return;
    if (es.pesWant > 0 && es.pesLen >= es.pesWant) this.finishPes(es);
  }

  /** Makes room for `size` bytes in the PES buffer, keeping what is there. */
  private reserve(es: EsState, size: number): void {
    if (es.pes.length >= size) return;
    // Audio frames are handed out as subarrays of the PES buffer, so only video reuses one.
    const video = es.kind === 'h264' || es.kind === 'hevc';
    const cap = Math.min(this.maxPesBytes, Math.max(size, video ? es.pes.length * 2 : size));
    const next = Buffer.allocUnsafe(cap);
    es.pes.copy(next, 0, 0, es.pesLen);
    es.pes = next;
  }

  private append(es: EsState, bytes: Buffer): boolean {
    const total = es.pesLen + bytes.length;
    if (total > this.maxPesBytes) {
      this.warn(`PID ${es.pid}: PES from ${es.pesPos} exceeds ${this.maxPesBytes} bytes; dropped`);
      es.collecting = false;
      return false;
    }
    if (total > es.pes.length) this.reserve(es, Math.max(total, Math.min(this.maxPesBytes, es.pes.length * 2)));
    bytes.copy(es.pes, es.pesLen);
    es.pesLen = total;
    return true;
  }

  private finishPes(es: EsState): void {
    es.collecting = false;
    const len = es.pesWant > 0 ? Math.min(es.pesLen, es.pesWant) : es.pesLen;
    const buf = es.pes.subarray(0, len);
    es.lastPesSize = len;
    const video = es.kind === 'h264' || es.kind === 'hevc';
    // Audio packets keep subarrays of this buffer: the next PES gets a new one.
    if (!video) es.pes = EMPTY;
    if (es.pesWant > 0 && es.pesLen < es.pesWant) this.warn(`PID ${es.pid}: PES at ${es.pesPos} ends after ${es.pesLen} of ${es.pesWant} bytes`);
    try {
      this.pes(es, buf);
    } catch (err) {
      if (!isHazeError(err)) throw err;
      this.warn(`PID ${es.pid}: PES at ${es.pesPos}: ${err.message}`);
    }
    if (!this.announced) this.checkHold();
  }

  private unwrap(raw: number): number {
    const ref = this.clockRef;
    if (ref === undefined) {
      this.clockRef = raw;
      this.firstClock = raw;
      return raw;
    }
    let d = (raw - (ref % TICKS_WRAP) + TICKS_WRAP) % TICKS_WRAP;
    if (d >= HALF_WRAP) d -= TICKS_WRAP;
    const v = ref + d;
    this.clockRef = v;
    this.firstClock ??= v;
    return v;
  }

  private pes(es: EsState, buf: Buffer): void {
    const pos = es.pesPos;
    if (buf.length < 9 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 1) {
      this.warn(`PID ${es.pid}: no PES start code at ${pos}`);
      return;
    }
    const streamId = buf[3]!;
    // Streams without the optional PES header (Table 2-22): never media for us.
    if (streamId === 0xbc || streamId === 0xbe || streamId === 0xbf || streamId === 0xf0 || streamId === 0xf1 || streamId === 0xff || streamId === 0xf2 || streamId === 0xf8) return;
    if ((buf[6]! & 0xc0) !== 0x80) {
      this.warn(`PID ${es.pid}: PES at ${pos} lacks the '10' marker`);
      return;
    }
    const ptsDts = buf[7]! >> 6;
    const headerLen = buf[8]!;
    const payloadStart = 9 + headerLen;
    if (payloadStart > buf.length) {
      this.warn(`PID ${es.pid}: PES header of ${headerLen} bytes overruns the PES at ${pos}`);
      return;
    }
    let pts: number | undefined;
    let dts: number | undefined;
    if (ptsDts >= 2 && headerLen >= 5) pts = this.unwrap(readTimestamp(buf, 9));
    if (ptsDts === 3 && headerLen >= 10) dts = this.unwrap(readTimestamp(buf, 14));
    if (dts === undefined) dts = pts;
    const payload = buf.subarray(payloadStart);
    if (es.kind === 'h264' || es.kind === 'hevc') this.video(es, payload, pts, dts, pos);
    else this.audio(es, payload, pts, pos);
  }

  // ---- video ---------------------------------------------------------------------------------

  private video(es: EsState, payload: Buffer, pts: number | undefined, dts: number | undefined, pos: number): void {
    const nals = splitAnnexB(payload);
    if (nals.length === 0) return;
    const h264 = es.kind === 'h264';
    let keyframe = false;
    let vps: Buffer[] | undefined;
    let sps: Buffer[] | undefined;
    let pps: Buffer[] | undefined;
    for (const nal of nals) {
      if (h264) {
        const t = nal[0]! & 0x1f;
        if (t === H264_NAL_IDR) keyframe = true;
        else if (t === H264_NAL_SPS) (sps ??= []).push(nal);
        else if (t === H264_NAL_PPS) (pps ??= []).push(nal);
      } else {
        if (nal.length < 2) continue;
        const t = (nal[0]! >> 1) & 0x3f;
        if (isHevcIrap(t)) keyframe = true;
        else if (t === HEVC_NAL_VPS) (vps ??= []).push(nal);
        else if (t === HEVC_NAL_SPS) (sps ??= []).push(nal);
        else if (t === HEVC_NAL_PPS) (pps ??= []).push(nal);
      }
    }
    if (vps || sps || pps) {
      // Copies: the parameter sets live on in the track's init, the PES buffer is reused.
      if (vps) es.vps = vps.map((n) => Buffer.from(n));
      if (sps) es.sps = sps.map((n) => Buffer.from(n));
      if (pps) es.pps = pps.map((n) => Buffer.from(n));
      this.configureVideo(es);
    }
    if (!es.track) {
      if (!es.warnedNoConfig) this.warn(`PID ${es.pid}: video before its parameter sets dropped (from ${pos})`);
      es.warnedNoConfig = true;
      return;
    }
    if (dts === undefined || pts === undefined) {
      if (es.lastDtsTicks === undefined) {
        this.warn(`PID ${es.pid}: access unit without PTS at ${pos} dropped`);
        return;
      }
      dts = pts = es.lastDtsTicks;
    }
    es.lastDtsTicks = dts;
    const timeMs = Math.floor(dts / 90);
    this.emit({ trackId: es.pid, timeMs, offsetMs: Math.floor(pts / 90) - timeMs, keyframe, data: joinNalUnits(nals), pos });
  }

  private configureVideo(es: EsState): void {
    const h264 = es.kind === 'h264';
    if (es.sps.length === 0 || es.pps.length === 0 || (!h264 && es.vps.length === 0)) return;
    let init: Buffer;
    let width: number;
    let height: number;
    let fpks = 0;
    try {
      if (h264) {
        init = buildAvcC(es.sps, es.pps);
        const info = parseH264Sps(es.sps[0]!);
        width = info.width;
        height = info.height;
        fpks = info.fpks;
      } else {
        init = buildHvcC(es.vps, es.sps, es.pps);
        const info = parseHevcSps(es.sps[0]!);
        width = info.width;
        height = info.height;
      }
    } catch (err) {
      if (!isHazeError(err)) throw err;
      this.warn(`PID ${es.pid}: parameter sets: ${err.message}`);
      return;
    }
    const old = es.track;
    if (old && old.init.equals(init)) return;
    const t: VideoTrack = { id: es.pid, type: 'video', codec: VIDEO_CODEC[es.kind]!, init, bps: 0, lang: es.lang, width, height, fpks };
    es.track = t;
    if (this.announced) this.tracksChanged = true;
  }

  // ---- audio ---------------------------------------------------------------------------------

  private probe(es: EsState, buf: Buffer, p: number): ProbeResult {
    switch (es.kind) {
      case 'aac':
        return probeAdts(buf, p);
      case 'mp3':
        return probeMpegAudio(buf, p);
      case 'ac3':
        return probeAc3(buf, p);
      default:
        return probeOpus(buf, p, es.opusChannels);
    }
  }

  private audio(es: EsState, payload: Buffer, pts: number | undefined, pos: number): void {
    let data = payload;
    let carryLen = 0;
    const carryPos = es.carryPos;
    if (es.carry) {
      // A frame split over PES packets: rare, so joining is fine.
      carryLen = es.carry.length;
      data = Buffer.concat([es.carry, payload]);
      es.carry = undefined;
    }
    let anchored = false;
    let skipped = 0;
    let p = 0;
    while (p < data.length) {
      const f = this.probe(es, data, p);
      if (f === NEED_MORE) {
        if (data.length - p <= MAX_AUDIO_CARRY) {
          es.carry = data.subarray(p);
          es.carryPos = p < carryLen ? carryPos : pos;
        }
        break;
      }
      if (f === undefined) {
        p++;
        skipped++;
        continue;
      }
      if (!anchored && p >= carryLen && pts !== undefined) {
        es.anchorTicks = pts;
        es.anchorSamples = 0;
        es.anchorRate = f.rate;
        anchored = true;
      }
      const framePos = p < carryLen ? carryPos : pos;
      const start = p + f.headerLen;
      p = start + f.payloadLen;
      if (es.anchorTicks === undefined) continue; // no timestamp yet
      if (f.rate !== es.anchorRate) {
        es.anchorTicks += Math.round((es.anchorSamples * 90000) / es.anchorRate);
        es.anchorSamples = 0;
        es.anchorRate = f.rate;
      }
      const ticks = es.anchorTicks + Math.round((es.anchorSamples * 90000) / es.anchorRate);
      es.anchorSamples += f.samples;
      this.configureAudio(es, f);
      this.emit({ trackId: es.pid, timeMs: Math.floor(ticks / 90), offsetMs: 0, keyframe: true, data: data.subarray(start, p), pos: framePos });
    }
    if (skipped > 0) this.warn(`PID ${es.pid}: ${skipped} bytes without a frame header in the PES at ${pos}`);
  }

  private configureAudio(es: EsState, f: AudioFrame): void {
    const old = es.track as AudioTrack | undefined;
    if (es.kind === 'opus') return; // configured from the PMT
    let init: Buffer = EMPTY;
    if (f.adts) {
      init = buildAsc({ objectType: f.adts.profile + 1, sampleRate: f.rate, channelConfig: f.adts.channelConfig, samplingIndex: f.adts.samplingIndex });
    }
    if (old && old.rate === f.rate && old.channels === f.channels && old.init.equals(init)) return;
    es.track = { id: es.pid, type: 'audio', codec: AUDIO_CODEC[es.kind]!, init, bps: 0, lang: es.lang, rate: f.rate, channels: f.channels, size: 16 };
    if (this.announced) this.tracksChanged = true;
  }

  // ---- output --------------------------------------------------------------------------------

  private emit(p: TsDemuxPacket): void {
    if (this.resumePositions) {
      // Every PES still being collected, and every audio frame carried over, started before.
      let min = p.pos;
      for (const es of this.streams.values()) {
        if (es.collecting && es.pesPos < min) min = es.pesPos;
        if (es.carry && es.carryPos < min) min = es.carryPos;
      }
      p.resumePos = min;
    }
    if (this.announced) {
      this.out.push(p);
      return;
    }
    this.held.push(p);
    this.heldBytes += p.data.length;
  }

  /** Announces the tracks once every stream is configured or the hold bounds are reached. */
  private checkHold(): void {
    if (!this.pmtSeen) {
      // Without a PMT no packet exists to hold.
      return;
    }
    let ready = true;
    for (const pid of this.order) if (!this.streams.get(pid)!.track) ready = false;
    if (!ready && this.held.length > 0) {
      const span = this.held[this.held.length - 1]!.timeMs - this.held[0]!.timeMs;
      if (span >= this.maxHoldMs || this.heldBytes >= this.maxHoldBytes) ready = true;
    }
    if (ready) this.announce();
  }

  private announce(): void {
    this.announced = true;
    this.tracksChanged = true;
    for (const pid of this.order) {
      const es = this.streams.get(pid)!;
      if (!es.track) this.warn(`PID ${pid}: no configuration yet; announced later when it has one`);
    }
    for (const p of this.held) this.out.push(p);
    this.held = [];
    this.heldBytes = 0;
  }
}
