// `haze merge`: MistDTSCMerge's three jobs on DTSC files (seed text "DTSC Merging"; reference
// §2.4 for the header chain):
//
//   --append TARGET ADD... [--tracks 1,2]   adds ADD's tracks at the end of TARGET, in place,
//                                            changing no byte before TARGET's old end except
//                                            the first header's 8-byte moreheader value;
//   --mix OUT IN...                          a new file with every track, interleaved by time;
//   --defrag [OUT] IN                        an appended file rewritten in time order.
//
// Append writes in an order that keeps TARGET valid for a reader at every moment: the added
// packets and the new header go after the old end (readers follow the old chain and never look
// there), then fsync, then the 8-byte patch of the first header's moreheader (one sector, so a
// reader sees the old or the new value), then fsync. A failure before the patch truncates TARGET
// back to its old size. TARGET is refused when it is not finished: moreheader 0 (a writer is
// still streaming into it) or bytes after its newest header (an append running now, or one
// that died before its patch: defrag such a file). A lock file TARGET.merge-lock keeps two
// appends apart.
//
// Mix and defrag stream through DtscTimeline (bounded reads, one cursor per region) into
// DtscFileWriter, write OUT.part and rename it to OUT; inputs are only read.

import fs from 'node:fs/promises';
import path from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import type { Packet, Track } from '../media/types.js';
import { HazeError, errorText } from '../util/errors.js';
import { DtscFileWriter, readDtscFileHeader } from '../containers/dtsc/file.js';
import { plainTrack, readDtscHeader } from '../containers/dtsc/header.js';
import { DtscTimeline } from '../containers/dtsc/timeline.js';
import { openDtscFile, openError, type OpenDtscFile } from '../inputs/files/dtsc-file.js';
import { assignTrackIds, DtscAppender, moreheaderBytes, moreheaderPosition, type AppendTrack } from '../containers/dtsc/append.js';

export const MERGE_USAGE = `usage:
  haze merge --append TARGET.dtsc ADD.dtsc [ADD2.dtsc ...] [--tracks 1,2]
      adds the tracks of each ADD (or only the listed track ids) to the end of TARGET in place,
      while TARGET may be playing; added tracks keep their ids when TARGET has no such id
  haze merge --mix OUT.dtsc IN1.dtsc IN2.dtsc [...]
      writes a new file with every track of every input, interleaved by time (ids made unique)
  haze merge --defrag OUT.dtsc IN.dtsc
  haze merge --defrag IN.dtsc
      rewrites an appended file in time order (to OUT, or over IN through IN.part)
exit codes: 0 done, 1 a file could not be read or merged (TARGET is left as it was), 2 bad arguments
`;

/** Bytes gathered per write. */
const WRITE_BATCH_BYTES = 1024 * 1024;

export type MergeArgs =
  | { mode: 'help' }
  | { mode: 'append'; target: string; adds: string[]; trackIds?: number[] }
  | { mode: 'mix'; out: string; inputs: string[] }
  | { mode: 'defrag'; out: string; input: string };

function argError(message: string): HazeError {
  return new HazeError('HAZE_ERR_INVALID_ARG', message);
}

/** Same file (by resolved path; the real path when the file exists). */
async function samePath(a: string, b: string): Promise<boolean> {
  const real = async (p: string): Promise<string> => fs.realpath(p).catch(() => path.resolve(p));
  return (await real(a)) === (await real(b));
}

async function checkDistinct(files: readonly string[], what: string): Promise<void> {
  for (let i = 0; i < files.length; i++) {
    for (let j = i + 1; j < files.length; j++) {
      if (await samePath(files[i]!, files[j]!)) throw argError(`${what}: ${files[i]} and ${files[j]} are the same file`);
    }
  }
}

/** Parses the arguments after `merge`; HAZE_ERR_INVALID_ARG for a bad command line. */
export async function parseMergeArgs(args: readonly string[]): Promise<MergeArgs> {
  const modes: ('append' | 'mix' | 'defrag')[] = [];
  const files: string[] = [];
  let tracks: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') return { mode: 'help' };
    if (a === '--append' || a === '--mix' || a === '--defrag') modes.push(a.slice(2) as 'append' | 'mix' | 'defrag');
    else if (a === '--tracks' || a.startsWith('--tracks=')) {
      if (tracks !== undefined) throw argError('--tracks given twice');
      tracks = a === '--tracks' ? args[++i] : a.slice('--tracks='.length);
      if (tracks === undefined) throw argError('--tracks needs a list of track ids, e.g. --tracks 1,2');
    } else if (a.startsWith('-') && a !== '-') throw argError(`unknown option ${a}`);
    else files.push(a);
  }
  if (modes.length === 0) throw argError('say what to do: --append, --mix or --defrag');
  if (modes.length > 1) throw argError(`--${modes[0]} and --${modes[1]} cannot be combined`);
  const mode = modes[0]!;
  if (tracks !== undefined && mode !== 'append') throw argError('--tracks only goes with --append');
  for (const f of files) if (path.extname(f).toLowerCase() !== '.dtsc') throw argError(`${f}: merge works on .dtsc files (convert other files first: haze convert IN OUT.dtsc)`);
  if (mode === 'append') {
    if (files.length < 2) throw argError('--append needs TARGET.dtsc and at least one ADD.dtsc');
    await checkDistinct(files, '--append');
    let trackIds: number[] | undefined;
    if (tracks !== undefined) {
      const items = tracks.split(',').map((s) => s.trim());
      if (items.some((s) => !/^\d+$/.test(s))) throw argError(`--tracks ${tracks}: expected track ids like 1,2`);
      trackIds = items.map(Number);
    }
    return { mode, target: files[0]!, adds: files.slice(1), ...(trackIds ? { trackIds } : {}) };
  }
  if (mode === 'mix') {
    if (files.length < 2) throw argError('--mix needs OUT.dtsc and at least one IN.dtsc');
    await checkDistinct(files, '--mix');
    return { mode, out: files[0]!, inputs: files.slice(1) };
  }
  if (files.length < 1 || files.length > 2) throw argError('--defrag takes OUT.dtsc IN.dtsc, or IN.dtsc to rewrite it in place');
  return { mode, out: files[0]!, input: files[files.length - 1]! };
}

// ---------------------------------------------------------------------------------------------
// Files


async function closeAll(files: readonly OpenDtscFile[]): Promise<void> {
  for (const f of files) await f.close().catch(() => undefined);
}

/** Buffers writes into batches written at explicit positions. */
class BatchWriter {
  private batch: Buffer[] = [];
  private bytes = 0;
  private at: number;

  constructor(
    private readonly handle: FileHandle,
    start: number,
  ) {
    this.at = start;
  }

  async push(b: Buffer): Promise<void> {
    this.batch.push(b);
    this.bytes += b.length;
    if (this.bytes >= WRITE_BATCH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.batch.length === 0) return;
    const { bytesWritten: written } = await this.handle.writev(this.batch, this.at);
    if (written !== this.bytes) throw new HazeError('HAZE_ERR_SHORT_READ', `short write: ${written} of ${this.bytes} bytes`);
    this.at += this.bytes;
    this.batch = [];
    this.bytes = 0;
  }

  get position(): number {
    return this.at + this.bytes;
  }
}

// ---------------------------------------------------------------------------------------------
// Mix and defrag

export interface MergeResult {
  packets: number;
  tracks: Track[];
  bytesOut: number;
  warnings: string[];
}

/**
 * Writes OUT with every track of the inputs (ids made unique: kept when free), packets in
 * (timeMs, track order) order. Tracks without packets are left out (with a warning).
 */
export async function mixDtscFiles(out: string, inputs: readonly string[]): Promise<MergeResult> {
  const files: OpenDtscFile[] = [];
  const part = `${out}.part`;
  let handle: FileHandle | undefined;
  try {
    for (const f of inputs) files.push(await openDtscFile(f));
    const warnings: string[] = [];
    const timeline = await DtscTimeline.open(files, {
      select: (input, t) => {
        const has = (t.tables?.parts.length ?? 0) > 0;
        if (!has) warnings.push(`${inputs[input]}: track ${t.id} (${t.codec}) has no packets and is left out`);
        return has;
      },
    });
    if (timeline.tracks.length === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `no track with packets in ${inputs.join(', ')}`);
    const newIds = assignTrackIds([], timeline.tracks.map((t) => t.track.id));
    const idOf = new Map<string, number>();
    const tracks = timeline.tracks.map((tt, i): Track => {
      idOf.set(`${tt.input}:${tt.track.id}`, newIds[i]!);
      return { ...plainTrack(tt.track), id: newIds[i]! };
    });
    const unixzeroMs = timeline.files.find((f) => f.meta.unixzeroMs !== undefined)?.meta.unixzeroMs;
    const writer = new DtscFileWriter({ tracks, ...(unixzeroMs !== undefined ? { unixzeroMs } : {}) });
    handle = await fs.open(part, 'w');
    const w = new BatchWriter(handle, 0);
    await w.push(writer.header());
    let packets = 0;
    for (let n = await timeline.next(); n; n = await timeline.next()) {
      const p: Packet = n.packet;
      await w.push(writer.packet({ trackId: idOf.get(`${n.input}:${p.trackId}`)!, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data }));
      packets++;
    }
    const { trailer, patch } = writer.finish();
    await w.push(trailer);
    await w.flush();
    await handle.write(patch.bytes, 0, patch.bytes.length, patch.position);
    await handle.sync();
    const bytesOut = w.position;
    await handle.close();
    handle = undefined;
    await closeAll(files);
    await fs.rename(part, out);
    return { packets, tracks, bytesOut, warnings };
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    await fs.rm(part, { force: true });
    throw err;
  } finally {
    await closeAll(files);
  }
}

/** Rewrites IN in time order to OUT (OUT may be IN: written to IN.part, then renamed over it). */
export function defragDtscFile(out: string, input: string): Promise<MergeResult> {
  return mixDtscFiles(out, [input]);
}

// ---------------------------------------------------------------------------------------------
// Append

export interface AppendResult {
  packets: number;
  /** The added tracks as TARGET now lists them (new ids). */
  added: Track[];
  oldSize: number;
  newSize: number;
  /** Where the new header starts (the first header's moreheader now). */
  headerAt: number;
}

/** Appends the tracks of `adds` (all, or those with ids in `trackIds`) to TARGET in place. */
export async function appendDtscFiles(target: string, adds: readonly string[], trackIds?: readonly number[]): Promise<AppendResult> {
  const lock = `${target}.merge-lock`;
  let lockHandle: FileHandle;
  try {
    await fs.access(target);
  } catch (err) {
    throw openError(target, err);
  }
  try {
    lockHandle = await fs.open(lock, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new HazeError('HAZE_ERR_BUSY', `${target}: another merge holds ${lock} (remove that file if no merge is running)`);
    throw openError(lock, err);
  }
  const files: OpenDtscFile[] = [];
  let tgt: OpenDtscFile | undefined;
  let dirty = false;
  try {
    await lockHandle.close();
    tgt = await openDtscFile(target, 'r+');
    const oldSize = tgt.size;
    let head: Awaited<ReturnType<typeof readDtscFileHeader>>;
    try {
      head = await readDtscFileHeader(tgt.read, oldSize);
    } catch (err) {
      if (err instanceof HazeError) throw new HazeError(err.code, `${target}: not a readable DTSC file (${err.message})`, { cause: err });
      throw err;
    }
    const firstHeader = await tgt.read(0, head.dataStart);
    const firstMore = readDtscHeader(firstHeader).moreheader;
    if (firstMore === undefined) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${target}: its first header has no moreheader member, so nothing can be appended in place (use --mix)`);
    if (firstMore === 0) throw new HazeError('HAZE_ERR_BUSY', `${target}: still being written (moreheader 0, no index header yet)`);
    const newest = await tgt.read(head.headerAt, 8);
    const newestEnd = head.headerAt + 8 + newest.readUInt32BE(4);
    if (newestEnd !== oldSize) {
      throw new HazeError('HAZE_ERR_BUSY', `${target}: ${oldSize - newestEnd} bytes follow its newest header (an append is running, or one failed before finishing): defrag the file first`);
    }
    const patchAt = moreheaderPosition(firstHeader, head.headerAt);

    for (const f of adds) files.push(await openDtscFile(f));
    const wanted = trackIds ? new Set(trackIds) : undefined;
    const timeline = await DtscTimeline.open(files, { select: (_i, t) => !wanted || wanted.has(t.id) });
    if (wanted) {
      for (const id of wanted) if (!timeline.tracks.some((t) => t.track.id === id)) throw new HazeError('HAZE_ERR_NOT_FOUND', `--tracks ${id}: no such track in ${adds.join(', ')}`);
    }
    if (timeline.tracks.length === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `no tracks to append from ${adds.join(', ')}`);
    for (const tt of timeline.tracks) {
      if (tt.packetCount === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${adds[tt.input]}: track ${tt.track.id} (${tt.track.codec}) has no packets to append`);
    }
    const newIds = assignTrackIds(head.meta.tracks.map((t) => t.id), timeline.tracks.map((t) => t.track.id));
    const added: AppendTrack[] = timeline.tracks.map((tt, i) => ({ track: tt.track, newId: newIds[i]! }));
    const idOf = new Map<string, number>(timeline.tracks.map((tt, i) => [`${tt.input}:${tt.track.id}`, newIds[i]!]));
    const appender = new DtscAppender(head.meta, added, oldSize);

    dirty = true;
    const w = new BatchWriter(tgt.handle, oldSize);
    let packets = 0;
    for (let n = await timeline.next(); n; n = await timeline.next()) {
      const p = n.packet;
      await w.push(appender.packet({ trackId: idOf.get(`${n.input}:${p.trackId}`)!, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data }));
      packets++;
    }
    const { header, headerAt, tracks } = appender.header();
    await w.push(header);
    await w.flush();
    // the new bytes are durable before anything points at them
    await tgt.handle.sync();
    const patch = moreheaderBytes(headerAt);
    await tgt.handle.write(patch, 0, patch.length, patchAt);
    dirty = false;
    await tgt.handle.sync();
    const addedIds = new Set(newIds);
    return { packets, added: tracks.filter((t) => addedIds.has(t.id)).map(plainTrack), oldSize, newSize: w.position, headerAt };
  } catch (err) {
    // nothing points at what was written: cut it off so TARGET is as it was
    if (dirty && tgt) await tgt.handle.truncate(tgt.size).catch(() => undefined);
    throw err;
  } finally {
    await closeAll(files);
    if (tgt) await tgt.close().catch(() => undefined);
    await fs.rm(lock, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The command

function trackList(tracks: readonly Track[]): string {
  return tracks.map((t) => `${t.id}:${t.codec}${t.lang && t.lang !== 'und' ? `(${t.lang})` : ''}`).join(' ');
}

/** `haze merge ...`: prints a summary line, returns the exit code (0 done, 1 failed, 2 bad arguments). */
export async function runMerge(args: string[]): Promise<number> {
  let parsed: MergeArgs;
  try {
    parsed = await parseMergeArgs(args);
  } catch (err) {
    console.error(`haze merge: ${err instanceof HazeError ? err.message : errorText(err)}\n\n${MERGE_USAGE}`);
    return 2;
  }
  try {
    switch (parsed.mode) {
      case 'help':
        process.stdout.write(MERGE_USAGE);
        return 0;
      case 'append': {
        const r = await appendDtscFiles(parsed.target, parsed.adds, parsed.trackIds);
        console.error(`haze merge: appended ${r.packets} packets of tracks ${trackList(r.added)} to ${parsed.target} (${r.oldSize} -> ${r.newSize} bytes)`);
        return 0;
      }
      case 'mix':
      case 'defrag': {
        const r = parsed.mode === 'mix' ? await mixDtscFiles(parsed.out, parsed.inputs) : await defragDtscFile(parsed.out, parsed.input);
        for (const w of r.warnings) console.error(`haze merge: warning: ${w}`);
        console.error(`haze merge: ${r.packets} packets of tracks ${trackList(r.tracks)} -> ${parsed.out} (${r.bytesOut} bytes)`);
        return 0;
      }
    }
  } catch (err) {
    console.error(`haze merge: ${errorText(err)}`);
    return 1;
  }
}
