// `haze convert IN OUT`: any readable container (inputs/file-packets.ts) to DTSC or any
// progressive format Haze writes (outputs/formats.ts), chosen by OUT's extension. Streams:
// the track set is settled from the first second of media (packets held until then), then
// every packet is written as it is read. DTSC output gets its index header at the end.

import fs from 'node:fs/promises';
import path from 'node:path';
import { readFilePackets } from '../inputs/file-packets.js';
import { FORMAT_BY_EXTENSION } from '../outputs/formats.js';
import { selectTracks } from '../outputs/track-select.js';
import type { FormatWriter } from '../outputs/feed.js';
import { DtscFileWriter } from '../containers/dtsc/file.js';
import type { Packet, Track } from '../media/types.js';
import { HazeError, errorText } from '../util/errors.js';

/** Media held before the track set is taken as final. */
const SETTLE_MS = 1000;
const MAX_HELD_PACKETS = 20_000;
/** Output bytes gathered per write. */
const WRITE_BATCH_BYTES = 1024 * 1024;

interface Sink {
  start(tracks: readonly Track[], firstMs: number): Buffer[];
  packet(p: Packet): Buffer | null;
  /** Bytes to append, and an in-place patch (DTSC's first header). */
  finish(): { tail: Buffer[]; patch?: { position: number; bytes: Buffer } };
  carried(): readonly Track[];
}

function dtscSink(): Sink {
  let writer: DtscFileWriter | undefined;
  let tracks: readonly Track[] = [];
  return {
    start(all) {
      tracks = all;
      writer = new DtscFileWriter({ tracks: all });
      return [writer.header()];
    },
    packet: (p) => writer!.packet(p),
    finish() {
      const { trailer, patch } = writer!.finish();
      return { tail: [trailer], patch };
    },
    carried: () => tracks,
  };
}

function formatSink(ext: string): Sink {
  const kind = FORMAT_BY_EXTENSION[ext]!;
  const writer: FormatWriter = kind.format.makeWriter();
  let carried: Track[] = [];
  let ids = new Set<number>();
  return {
    start(all, firstMs) {
      // every track the format carries (a converter keeps all languages and renditions)
      const selection = selectTracks(all, { video: 'all', audio: 'all', subtitle: 'all' }, kind.format.capability);
      carried = all.filter((t) => selection.ids.has(t.id));
      ids = new Set(carried.map((t) => t.id));
      if (carried.length === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `no track (${all.map((t) => t.codec).join(', ') || 'none'}) fits .${ext}`);
      writer.setTracks(carried);
      return [writer.header(firstMs)];
    },
    packet: (p) => (ids.has(p.trackId) ? writer.packet(p) : null),
    finish: () => ({ tail: [] }),
    carried: () => carried,
  };
}

export interface ConvertResult {
  packets: number;
  tracks: readonly Track[];
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  warnings: string[];
}

export async function convert(input: string, output: string): Promise<ConvertResult> {
  const ext = path.extname(output).slice(1).toLowerCase();
  if (ext !== 'dtsc' && !FORMAT_BY_EXTENSION[ext]) {
    throw new HazeError('HAZE_ERR_UNSUPPORTED', `${output}: cannot write .${ext} (writable: dtsc, ${Object.keys(FORMAT_BY_EXTENSION).join(', ')})`);
  }
  if (path.resolve(input) === path.resolve(output)) throw new HazeError('HAZE_ERR_INVALID_ARG', 'input and output are the same file');
  const started = performance.now();
  const bytesIn = (await fs.stat(input)).size;
  const sink = ext === 'dtsc' ? dtscSink() : formatSink(ext);
  const out = await fs.open(`${output}.part`, 'w');
  let bytesOut = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    await out.writev(batch);
    bytesOut += batchBytes;
    batch = [];
    batchBytes = 0;
  };
  const emit = async (b: Buffer | null): Promise<void> => {
    if (!b || b.length === 0) return;
    batch.push(b);
    batchBytes += b.length;
    if (batchBytes >= WRITE_BATCH_BYTES) await flush();
  };

  let tracks: Track[] = [];
  let held: Packet[] | undefined = [];
  let shiftMs = 0;
  let count = 0;
  const warnings: string[] = [];
  const write = async (p: Packet): Promise<void> => {
    if (shiftMs !== 0) p = { ...p, timeMs: p.timeMs + shiftMs };
    const bytes = sink.packet(p);
    if (bytes) count++;
    await emit(bytes);
  };
  const settle = async (): Promise<void> => {
    const list = held!;
    held = undefined;
    // writers want times from 0 up: a file that starts before 0 (B-frame or codec delay) is shifted
    const minMs = list.reduce((m, p) => Math.min(m, p.timeMs), 0);
    shiftMs = -minMs;
    for (const b of sink.start(tracks, (list[0]?.timeMs ?? 0) + shiftMs)) await emit(b);
    for (const p of list) await write(p);
  };
  try {
    for await (const chunk of readFilePackets(input)) {
      if (chunk.warnings) warnings.push(...chunk.warnings);
      if (chunk.tracks) {
        if (held) tracks = chunk.tracks;
        else if (chunk.tracks.length !== tracks.length) warnings.push('the track set changed after the start: later tracks are left out');
      }
      for (const p of chunk.packets) {
        if (!held) {
          await write(p);
          continue;
        }
        held.push(p);
        if (p.timeMs - held[0]!.timeMs >= SETTLE_MS || held.length >= MAX_HELD_PACKETS) await settle();
      }
    }
    if (held) await settle();
    const { tail, patch } = sink.finish();
    for (const b of tail) await emit(b);
    await flush();
    if (patch) await out.write(patch.bytes, 0, patch.bytes.length, patch.position);
    await out.close();
    await fs.rename(`${output}.part`, output);
  } catch (err) {
    await out.close().catch(() => undefined);
    await fs.rm(`${output}.part`, { force: true });
    throw err;
  }
  return { packets: count, tracks: sink.carried(), bytesIn, bytesOut, seconds: (performance.now() - started) / 1000, warnings };
}

/** The command: prints a summary line, returns the exit code. */
export async function runConvert(args: readonly string[]): Promise<number> {
  if (args.length !== 2) {
    console.error('usage: haze convert IN OUT   (OUT\'s extension picks the format: dtsc, flv, ts, mp4, mkv, webm, mp3, aac, ogg, wav)');
    return 2;
  }
  try {
    const r = await convert(args[0]!, args[1]!);
    for (const w of r.warnings.slice(0, 20)) console.error(`haze convert: warning: ${w}`);
    const mbps = r.seconds > 0 ? r.bytesIn / 1e6 / r.seconds : 0;
    console.error(`haze convert: ${r.packets} packets of ${r.tracks.map((t) => t.codec).join(' + ')} -> ${args[1]} (${r.bytesOut} bytes) in ${r.seconds.toFixed(2)} s, ${mbps.toFixed(0)} MB/s read`);
    return 0;
  } catch (err) {
    console.error(`haze convert: ${errorText(err)}`);
    return 1;
  }
}
