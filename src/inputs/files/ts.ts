// MPEG-TS / M2TS file source (ISO/IEC 13818-1, through src/containers/ts/demux.ts): scan()
// streams the file through the push demuxer; bpos is the offset of the sync byte of the TS
// packet that started the packet's PES, or of an earlier PES (of another PID) that was still
// open when the packet came out: PES packets interleave, and reading from bpos must give every
// packet scan() gave after it (the demuxer's resumePos). readFrom(bpos) may therefore also give
// a few packets that scan() gave just before the first one with that bpos.
//
// readFrom(bpos) on a fresh demuxer needs what the stream said before bpos:
// - the PAT and PMT: the PSI packets from the file's first PROBE_BYTES are fed first;
// - the clock: times are the 33-bit PES clock unwrapped from the file's first timestamp, so the
//   demuxer gets as clockRef the file's first timestamp (read once at open) moved forward by
//   the clock distance to the first PES timestamp at bpos;
// - H.264/HEVC parameter sets, for keyframes that do not repeat them: the video tracks are
//   configured from the tracks' avcC/hvcC, for positions at or after where scan() started
//   giving that track's packets (before that, scan() dropped them unconfigured).

import type fs from 'node:fs/promises';
import type { Packet, Track } from '../../media/types.js';
import { TsDemuxer, type TsDemuxResult } from '../../containers/ts/demux.js';
import type { FileSource, FileSourceOpener, ScanChunk } from './file-source.js';
import { chunksFrom, inFile, openHandle, readAt, readPushDemuxer, scanPushDemuxer, HandleSource } from './file-reads.js';

/** How much of the file's start is read at open for the PSI, the first timestamp and video starts. */
const PROBE_BYTES = 2 * 1024 * 1024;
const PROBE_CHUNK = 256 * 1024;
/** Most PSI packets kept for priming. */
const MAX_PSI_PACKETS = 32;
const TICKS_WRAP = 2 ** 33;
/** A timestamp this far before the file's first one is taken as earlier, not as 26.5 h later. */
const BACKWARD_TICKS = 90_000 * 3600;
const TS_SYNC = 0x47;

interface Probe {
  /** Bytes per TS packet (188, 192, 204) and the bytes before the sync byte (4 for M2TS). */
  stride: number;
  prefix: number;
  /** PAT/PMT packets (whole stride units) in file order. */
  psi: Buffer;
  firstClock: number | undefined;
  /** Per video PID, the bpos of its first packet in scan() (absent: not within the probe). */
  firstVideoPos: Map<number, number>;
  /** Bytes probed: a video track not started by then is taken to start there. */
  probed: number;
}

function plain(p: Packet): Packet {
  return { trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data };
}

/** The first PTS of a PES starting in the TS packet at `o` of `b` (PID not checked), if any. */
function pesPts(b: Buffer, o: number): number | undefined {
  const b1 = b[o + 1]!;
  if (!(b1 & 0x40)) return undefined;
  const afc = (b[o + 3]! >> 4) & 3;
  if (!(afc & 1)) return undefined;
  let p = o + 4;
  if (afc & 2) p += 1 + b[p]!;
  if (p + 14 > o + 188) return undefined;
  if (b[p] !== 0 || b[p + 1] !== 0 || b[p + 2] !== 1) return undefined;
  if ((b[p + 6]! & 0xc0) !== 0x80 || b[p + 7]! >> 6 < 2) return undefined;
  const t = p + 9;
  return ((b[t]! >> 1) & 7) * 2 ** 30 + ((b[t + 1]! << 7) | (b[t + 2]! >> 1)) * 2 ** 15 + ((b[t + 3]! << 7) | (b[t + 4]! >> 1));
}

class TsSource extends HandleSource implements FileSource {

  constructor(
    file: string,
    fh: fs.FileHandle,
    private readonly probe: Probe,
  ) {
    super(file, fh);
  }

  async *scan(): AsyncGenerator<ScanChunk> {
    this.check();
    const demux = new TsDemuxer({ resumePositions: true });
    yield* scanPushDemuxer(this.file, this.fh, demux, (p) => ({ ...plain(p), bpos: p.resumePos ?? p.pos }));
  }

  async *readFrom(bpos: number, tracks: readonly Track[]): AsyncGenerator<Packet[]> {
    this.check();
    const { prefix, psi, firstVideoPos } = this.probe;
    const start = Math.max(0, bpos - prefix);
    try {
      const clockRef = await this.clockAt(start, tracks);
      const demux = new TsDemuxer(clockRef === undefined ? {} : { clockRef });
      const out = (r: TsDemuxResult): Packet[] => r.packets.map(plain);
      const first = out(demux.push(psi));
      const video = tracks.filter((t) => t.type === 'video' && bpos >= (firstVideoPos.get(t.id) ?? this.probe.probed));
      if (video.length > 0) demux.primeVideo(video);
      if (first.length > 0) yield first;
      yield* readPushDemuxer(this.file, this.fh, start, demux, out);
    } catch (err) {
      throw inFile(this.file, err);
    }
  }



  /** The unwrapped clock at the first PES timestamp from `start` on, as scan() unwrapped it. */
  private async clockAt(start: number, tracks: readonly Track[]): Promise<number | undefined> {
    const c0 = this.probe.firstClock;
    if (c0 === undefined) return undefined;
    const { stride, prefix } = this.probe;
    const pids = new Set(tracks.map((t) => t.id));
    const b = await readAt(this.fh, start, 64 * 1024);
    for (let o = prefix; o + 188 <= b.length; o += stride) {
      if (b[o] !== TS_SYNC) break;
      const pid = ((b[o + 1]! & 0x1f) << 8) | b[o + 2]!;
      if (pids.size > 0 && !pids.has(pid)) continue;
      const raw = pesPts(b, o);
      if (raw === undefined) continue;
      let d = (((raw - (c0 % TICKS_WRAP)) % TICKS_WRAP) + TICKS_WRAP) % TICKS_WRAP;
      if (d > TICKS_WRAP - BACKWARD_TICKS) d -= TICKS_WRAP;
      return c0 + d;
    }
    return undefined;
  }
}

/** Reads the file's start: stride, PSI packets, the first timestamp, where video tracks start. */
async function probeFile(file: string, fh: fs.FileHandle): Promise<Probe> {
  const demux = new TsDemuxer();
  const parts: Buffer[] = [];
  const firstVideoPos = new Map<number, number>();
  let read = 0;
  let videoPids: number[] = [];
  try {
    for await (const b of chunksFrom(fh, 0, PROBE_CHUNK, PROBE_BYTES)) {
      parts.push(b);
      read += b.length;
      const r = demux.push(b);
      if (r.tracks) videoPids = r.tracks.filter((t) => t.type === 'video').map((t) => t.id);
      for (const p of r.packets) if (videoPids.includes(p.trackId) && !firstVideoPos.has(p.trackId)) firstVideoPos.set(p.trackId, p.pos);
      if (demux.firstClockTicks !== undefined && videoPids.length > 0 && videoPids.every((pid) => firstVideoPos.has(pid))) break;
    }
    if (read < PROBE_BYTES) {
      const r = demux.end();
      if (r.tracks) videoPids = r.tracks.filter((t) => t.type === 'video').map((t) => t.id);
      for (const p of r.packets) if (videoPids.includes(p.trackId) && !firstVideoPos.has(p.trackId)) firstVideoPos.set(p.trackId, p.pos);
    }
  } catch (err) {
    throw inFile(file, err);
  }
  const stride = demux.packetStride;
  const prefix = stride === 192 ? 4 : 0;
  const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  // PSI packets: PID 0 and the program's PMT PID, whole stride units, from the first sync on.
  const pmtPid = demux.programPmtPid;
  const psi: Buffer[] = [];
  let o = head.indexOf(TS_SYNC);
  while (o >= 0 && o + 2 * stride < head.length && !(head[o + stride] === TS_SYNC && head[o + 2 * stride] === TS_SYNC)) o = head.indexOf(TS_SYNC, o + 1);
  for (; o >= prefix && o - prefix + stride <= head.length && psi.length < MAX_PSI_PACKETS; o += stride) {
    if (head[o] !== TS_SYNC) break;
    const pid = ((head[o + 1]! & 0x1f) << 8) | head[o + 2]!;
    if (pid === 0 || pid === pmtPid) psi.push(Buffer.from(head.subarray(o - prefix, o - prefix + stride)));
  }
  return { stride, prefix, psi: Buffer.concat(psi), firstClock: demux.firstClockTicks, firstVideoPos, probed: read };
}

/** Opens an MPEG-TS / M2TS file (HAZE_ERR_NOT_FOUND / HAZE_ERR_MALFORMED naming it). */
export const openTsSource: FileSourceOpener = async (file) => {
  const fh = await openHandle(file);
  try {
    return new TsSource(file, fh, await probeFile(file, fh));
  } catch (err) {
    await fh.close();
    throw err;
  }
};
