// Recording a live stream to files (reference/mistserver.md §5.5 push parameters, §4.2
// RECORDING_END): the container by extension (outputs/formats.ts writers, DTSC through
// DtscFileWriter), `split=N` (a new file at the first keyframe after N s, named from the
// template's $segmentCounter / $currentMediaTime), `m3u8=` (an HLS EVENT playlist of the
// segments, RFC 8216 §4.3, EXT-X-ENDLIST at the end), recstart/recstop/duration/start/stop
// and their unix forms, `append` for .ts/.flv. Muxing is synchronous with the hub; file I/O
// runs behind a byte-bounded queue: a disk slower than the stream drops to the next keyframe
// (counted) instead of growing memory. Any I/O failure ends the recording with a reason
// (machine code + human text), never an exception.

import path from 'node:path';
import type { StreamHub } from '../hub/stream-hub.js';
import type { Packet, Track } from '../media/types.js';
import type { FormatWriter, TrackSelection } from '../outputs/feed.js';
import { FORMAT_BY_EXTENSION } from '../outputs/formats.js';
import { MatroskaFeedWriter } from '../outputs/container-writers.js';
import type { FormatCapability, SelectorQuery } from '../outputs/track-select.js';
import { DtscFileWriter } from '../containers/dtsc/file.js';
import { errorText } from '../util/errors.js';
import { HubTap } from './hub-tap.js';
import type { PushTarget, RecordingExtension } from './push-target.js';
import { nodeRecordFs, type RecordFile, type RecordFs } from './record-fs.js';
import { applyVariablesWith, streamVariables } from './variables.js';
import { lastFlvTimestampMs, lastTsPtsMs } from './append-tail.js';
import { payloadText, type TriggerPayload } from '../triggers/trigger-map.js';

/** Why an output with a target ended (RECORDING_END / OUTPUT_END machine reason). */
export type EndReason =
  /** stop / recstop / duration / stopunix reached */
  | 'CLEAN_END'
  /** stopped on request */
  | 'STOPPED'
  /** the stream ended */
  | 'STREAM_END'
  /** ENOSPC / EDQUOT */
  | 'DISK_FULL'
  /** a folder or file that cannot be created or written (EACCES, ENOTDIR, EROFS, ...) */
  | 'NOT_WRITABLE'
  | 'WRITE_ERROR'
  /** a target or parameter Haze cannot do */
  | 'UNSUPPORTED'
  /** no track of the stream fits the format */
  | 'NO_TRACKS'
  /** a push target that could not be reached (after the allowed attempts) */
  | 'PUSH_FAILED';

/** What RECORDING_END and OUTPUT_END report (reference §4.2). */
export interface OutputEnd {
  stream: string;
  /** The target as requested. */
  target: string;
  /** The target after variables: the (last) file written or the URL pushed to. */
  actualTarget: string;
  connector: string;
  bytes: number;
  secondsActive: number;
  unixStart: number;
  unixStop: number;
  /** Media ms written (last - first). */
  mediaMs: number;
  /** Stream media time of the first / last packet written, -1 if none. */
  firstMs: number;
  lastMs: number;
  reason: EndReason;
  message: string;
  /** Recordings: every file written, in order. */
  files: string[];
  droppedPackets: number;
}

/** RECORDING_END / OUTPUT_END fields of an ended output, in the trigger map's names (reference §4.2). */
export function outputEndFields(e: OutputEnd): TriggerPayload<'OUTPUT_END'> {
  return {
    stream: e.stream,
    target: e.actualTarget,
    connector: e.connector,
    bytes: String(e.bytes),
    secondsActive: String(e.secondsActive),
    startUnix: String(e.unixStart),
    stopUnix: String(e.unixStop),
    mediaMs: String(e.mediaMs),
    firstPacketMs: String(e.firstMs),
    lastPacketMs: String(e.lastMs),
    machineReason: e.reason,
    humanReason: e.message,
  };
}

/** The payload of RECORDING_END / OUTPUT_END: the fields joined with newlines, in MistServer's order. */
export function outputEndPayload(e: OutputEnd): string {
  return payloadText('OUTPUT_END', outputEndFields(e));
}

/** The machine reason for a failed file operation. */
export function ioEndReason(err: unknown): EndReason {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') return 'DISK_FULL';
  if (code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR' || code === 'EROFS' || code === 'EISDIR' || code === 'ENOENT' || code === 'EEXIST') return 'NOT_WRITABLE';
  return 'WRITE_ERROR';
}

export interface RecordingOptions {
  hub: StreamHub;
  target: PushTarget;
  /** Stream name for variables and reports (default the hub's name). */
  stream?: string;
  /** Custom variables. */
  variables?: Readonly<Record<string, string>>;
  /** Clock for $datetime etc. (default: now). */
  now?: () => Date;
  utc?: boolean;
  fs?: RecordFs;
  /** Most bytes waiting for the disk before packets are dropped to the next keyframe (default 32 MiB). */
  maxQueueBytes?: number;
  /** Log lines (also kept by the runner's status). */
  log?: (line: string) => void;
}

export interface RecordingStatus {
  state: 'waiting' | 'recording' | 'finishing' | 'ended';
  bytes: number;
  queuedBytes: number;
  files: string[];
  currentFile: string | undefined;
  firstMs: number;
  lastMs: number;
  droppedPackets: number;
}

interface SegmentWriter {
  header(firstMs: number): Buffer;
  packet(p: Packet): Buffer | null;
  /** Bytes to append at the end, and a patch of earlier bytes. */
  finish(): { tail?: Buffer; patch?: { position: number; bytes: Buffer } };
}

type Op =
  | { kind: 'open'; file: string; mode: 'w' | 'a' }
  | { kind: 'data'; buf: Buffer }
  | { kind: 'patch'; buf: Buffer; position: number }
  | { kind: 'close' }
  | { kind: 'text'; file: string; text: string };

const ALL_CODECS: FormatCapability = {
  codecs: {
    video: ['H264', 'HEVC', 'AV1', 'VP8', 'VP9'],
    audio: ['AAC', 'MP3', 'opus', 'AC3', 'PCM', 'ALAW', 'ULAW', 'FLAC', 'vorbis'],
    subtitle: ['subtitle', 'JSON'],
    meta: ['JSON', 'subtitle'],
  },
  singlePerType: false,
};

const DEFAULT_MAX_QUEUE = 32 * 1024 * 1024;
const WRITE_BATCH_BYTES = 1024 * 1024;
/** Gap left after the last packet of a file being appended to. */
const APPEND_GAP_MS = 40;
/** Unix values at or below this are seconds relative to now (MistServer's rule). */
const RELATIVE_UNIX_MAX = 36_000_000;
const EXTENSION_TAIL_BYTES = 1024 * 1024;

function sameTrack(a: Track, b: Track): boolean {
  return a.type === b.type && a.codec === b.codec && a.init.equals(b.init);
}

/** A recording of one hub to one file target (with its segments). */
export class Recording {
  readonly done: Promise<OutputEnd>;
  private resolveDone!: (e: OutputEnd) => void;
  private readonly hub: StreamHub;
  private readonly target: PushTarget;
  private readonly ext: RecordingExtension;
  private readonly fs: RecordFs;
  private readonly stream: string;
  private readonly maxQueue: number;
  private readonly now: () => Date;
  private tap: HubTap | undefined;
  private state: RecordingStatus['state'] = 'waiting';

  // track state
  private tracks: Track[] = [];
  private selection: TrackSelection | undefined;
  private compatible = new Set<number>();
  private rollover = false;

  // timeline
  private baseMs = -1;
  private shiftMs = 0;
  private appendAfterMs: number | undefined;
  private stopMs = Infinity;
  private recStartMs = -Infinity;
  private durationMs: number | undefined;
  private firstMs = -1;
  private lastMs = -1;

  // files
  private writer: SegmentWriter | undefined;
  private segmentIndex = -1;
  private segmentStartMs = -1;
  private readonly files: string[] = [];
  private currentFile: string | undefined;
  private readonly playlist: { uri: string; durationMs: number }[] = [];
  private playlistFile: string | undefined;
  private firstOpenIsAppend = false;

  // I/O
  private ops: Op[] = [];
  private queuedBytes = 0;
  private pumping = false;
  private file: RecordFile | undefined;
  private bytes = 0;
  private dropping = false;
  private dropped = 0;
  private unixStart = 0;
  private ending: { reason: EndReason; message: string } | undefined;
  private failed: { reason: EndReason; message: string } | undefined;
  private finished = false;

  constructor(private readonly opts: RecordingOptions) {
    this.done = new Promise((r) => (this.resolveDone = r));
    this.hub = opts.hub;
    this.target = opts.target;
    this.ext = opts.target.extension!;
    this.fs = opts.fs ?? nodeRecordFs;
    this.stream = opts.stream ?? opts.hub.name;
    this.maxQueue = opts.maxQueueBytes ?? DEFAULT_MAX_QUEUE;
    this.now = opts.now ?? (() => new Date());
  }

  private log(line: string): void {
    this.opts.log?.(line);
  }

  /** Prepares (append probing, folders) and starts reading the hub; ends itself on any failure. */
  async start(): Promise<void> {
    this.unixStart = Date.now();
    const t = this.target;
    const p = t.params;
    if (t.kind !== 'file' || !t.extension) return this.finish('UNSUPPORTED', `not a file target: ${t.original}`);
    if (this.ext !== 'dtsc' && !FORMAT_BY_EXTENSION[this.ext]) return this.finish('UNSUPPORTED', `cannot record .${this.ext}`);
    const firstFile = this.vars(0, 0, t.url);
    if (!path.isAbsolute(firstFile)) return this.finish('UNSUPPORTED', `the target ${t.original} names ${firstFile}, not an absolute path (is a variable unset?)`);
    if (p.m3u8 !== undefined) {
      const dir = path.dirname(firstFile);
      this.playlistFile = path.resolve(dir, this.vars(0, 0, p.m3u8));
    }
    try {
      if (p.append) {
        if (this.ext !== 'ts' && this.ext !== 'flv') {
          return this.finish('UNSUPPORTED', `append is possible for .ts and .flv recordings only (a .${this.ext} file has one header / index; record with split= instead)`);
        }
        const file = this.vars(0, 0, t.url);
        const size = await this.fs.size(file);
        if (size !== undefined && size > 0) {
          this.firstOpenIsAppend = true;
          const from = this.ext === 'ts' ? Math.max(0, size - Math.floor(Math.min(size, EXTENSION_TAIL_BYTES) / 188) * 188) : Math.max(0, size - EXTENSION_TAIL_BYTES);
          const tail = await this.fs.read(file, from, size - from);
          const last = this.ext === 'flv' ? lastFlvTimestampMs(tail) : lastTsPtsMs(tail);
          this.appendAfterMs = (last ?? 0) + APPEND_GAP_MS;
          this.log(`appending to ${file} (${size} bytes, its media ends at ${last ?? 'unknown'} ms)`);
        }
      }
    } catch (err) {
      return this.finish(ioEndReason(err), `cannot read ${t.url} to append to it: ${errorText(err)}`);
    }
    this.computeTimes();
    if (this.finished) return;
    const explicit: SelectorQuery = { audio: p.audio ?? null, video: p.video ?? null, subtitle: p.subtitle ?? null, meta: p.meta ?? null };
    const dtscDefault = this.ext === 'dtsc' ? 'all' : null;
    const selectors: SelectorQuery = {
      audio: explicit.audio ?? dtscDefault,
      video: explicit.video ?? dtscDefault,
      subtitle: explicit.subtitle ?? dtscDefault,
      meta: explicit.meta ?? dtscDefault,
    };
    const capability = this.ext === 'dtsc' ? ALL_CODECS : FORMAT_BY_EXTENSION[this.ext]!.format.capability;
    this.tap = new HubTap(
      this.hub,
      { selectors, capability, ...(this.startMs !== undefined ? { startMs: this.startMs } : {}), ...(p.waittrackcount !== undefined ? { waitTrackCount: p.waittrackcount } : {}) },
      {
        onStart: (tracks, selection) => this.onStart(tracks, selection),
        onPacket: (pk) => this.onPacket(pk),
        onTracks: (tracks, selection) => this.onTracks(tracks, selection),
        onNoTracks: (all) => this.finish('NO_TRACKS', `no track of the stream (${all.map((x) => x.codec).join(', ')}) can be recorded to .${this.ext}`),
        onEnd: (reason) => this.finish('STREAM_END', `the stream ended: ${reason}`),
      },
    );
    this.tap.open();
  }

  private startMs: number | undefined;

  /** Media ms of a unix-seconds parameter (values ≤ 36000000 are relative to now). */
  private unixToMediaMs(v: number): number {
    const unixMs = v <= RELATIVE_UNIX_MAX ? Date.now() + v * 1000 : v * 1000;
    return unixMs - this.hub.unixZeroMs;
  }

  private computeTimes(): void {
    const p = this.target.params;
    const stops = [p.stop, p.recstop].filter((v): v is number => v !== undefined);
    if (p.stopunix !== undefined) stops.push(this.unixToMediaMs(p.stopunix));
    if (p.recstopunix !== undefined) stops.push(this.unixToMediaMs(p.recstopunix));
    this.stopMs = stops.length > 0 ? Math.min(...stops) : Infinity;
    const starts = [p.recstart].filter((v): v is number => v !== undefined);
    if (p.recstartunix !== undefined) starts.push(this.unixToMediaMs(p.recstartunix));
    this.recStartMs = starts.length > 0 ? Math.max(...starts) : -Infinity;
    if (p.start !== undefined) this.startMs = p.start;
    else if (p.startunix !== undefined) this.startMs = this.unixToMediaMs(p.startunix);
    if (p.duration !== undefined) this.durationMs = p.duration * 1000;
  }

  private vars(segment: number, mediaMs: number, text: string): string {
    const v = streamVariables({
      stream: this.stream,
      now: this.now(),
      ...(this.opts.utc !== undefined ? { utc: this.opts.utc } : {}),
      ...(this.opts.variables ? { custom: this.opts.variables } : {}),
      segmentCounter: segment,
      currentMediaTime: mediaMs,
    });
    return applyVariablesWith(text, v);
  }

  status(): RecordingStatus {
    return {
      state: this.state,
      bytes: this.bytes,
      queuedBytes: this.queuedBytes,
      files: [...this.files],
      currentFile: this.currentFile,
      firstMs: this.firstMs,
      lastMs: this.lastMs,
      droppedPackets: this.dropped,
    };
  }

  // ---- hub side (synchronous) ----------------------------------------------------------------

  private onStart(tracks: readonly Track[], selection: TrackSelection): void {
    this.tracks = [...tracks];
    this.selection = selection;
    this.compatible = new Set(tracks.map((t) => t.id));
  }

  private onTracks(tracks: readonly Track[], selection: TrackSelection): void {
    if (tracks.length === 0) return; // the source left: wait for its successor
    const old = new Map(this.tracks.map((t) => [t.id, t]));
    const same = tracks.length === old.size && tracks.every((t) => old.has(t.id) && sameTrack(old.get(t.id)!, t));
    if (same) {
      this.compatible = new Set(tracks.map((t) => t.id));
      return;
    }
    if (this.target.params.split !== undefined) {
      // the next segment starts with the new track set
      this.rollover = true;
      this.pendingTracks = { tracks: [...tracks], selection };
      this.log(`track set changed: the next segment starts with ${tracks.map((t) => t.codec).join(', ')}`);
      return;
    }
    // one file keeps its tracks: carry on with those that did not change
    this.compatible = new Set(tracks.filter((t) => old.has(t.id) && sameTrack(old.get(t.id)!, t)).map((t) => t.id));
    this.log(`track set changed: continuing with ${this.compatible.size} unchanged track(s)`);
  }

  private pendingTracks: { tracks: Track[]; selection: TrackSelection } | undefined;

  private onPacket(p: Packet): void {
    if (this.finished || this.ending) return;
    const isSyncKey = p.keyframe && p.trackId === this.selection!.syncTrackId;
    if (this.writer === undefined || this.rollover) {
      if (!isSyncKey) return;
      if (p.timeMs < this.recStartMs) return;
    } else if (!this.compatible.has(p.trackId)) {
      return;
    }
    if (this.baseMs >= 0 && p.timeMs >= this.stopMs) {
      this.finish('CLEAN_END', 'the recording reached its stop time');
      return;
    }
    if (this.failed) return;
    // disk slower than the stream: drop to the next keyframe once the queue has room again
    if (this.dropping || this.queuedBytes > this.maxQueue) {
      if (!this.dropping) this.log(`disk too slow: ${this.queuedBytes} bytes waiting, dropping to the next keyframe`);
      this.dropping = true;
      if (!(isSyncKey && this.queuedBytes <= this.maxQueue / 2)) {
        this.dropped++;
        return;
      }
      this.dropping = false;
    }
    if (this.baseMs < 0) {
      if (p.timeMs >= this.stopMs) {
        this.finish('CLEAN_END', 'the recording reached its stop time before it started');
        return;
      }
      this.baseMs = p.timeMs;
      this.shiftMs = (this.appendAfterMs ?? 0) - this.baseMs;
      if (this.durationMs !== undefined) this.stopMs = Math.min(this.stopMs, p.timeMs + this.durationMs);
      this.state = 'recording';
    }
    if (p.timeMs < this.baseMs) return; // an audio packet from just before the first keyframe
    if (this.writer === undefined || this.rollover || (isSyncKey && this.splitDue(p.timeMs))) this.openSegment(p.timeMs);
    if (this.ending || !this.writer) return;
    const out: Packet = { trackId: p.trackId, timeMs: p.timeMs + this.shiftMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data };
    let bytes: Buffer | null;
    try {
      bytes = this.writer!.packet(out);
    } catch (err) {
      this.log(`packet of track ${p.trackId} at ${p.timeMs} ms not written: ${errorText(err)}`);
      return;
    }
    if (!bytes || bytes.length === 0) return;
    if (this.firstMs < 0) this.firstMs = p.timeMs;
    if (p.timeMs > this.lastMs) this.lastMs = p.timeMs;
    this.enqueue({ kind: 'data', buf: bytes });
  }

  private splitDue(timeMs: number): boolean {
    const split = this.target.params.split;
    return split !== undefined && timeMs - this.segmentStartMs >= split * 1000;
  }

  /** Closes the current segment (if any) and opens the next one at media time `timeMs`. */
  private openSegment(timeMs: number): void {
    this.closeSegment(timeMs);
    if (this.rollover && this.pendingTracks) {
      this.tracks = this.pendingTracks.tracks;
      this.selection = this.pendingTracks.selection;
      this.compatible = new Set(this.tracks.map((t) => t.id));
      this.pendingTracks = undefined;
    }
    this.rollover = false;
    this.segmentIndex++;
    this.segmentStartMs = timeMs;
    const file = path.resolve(this.vars(this.segmentIndex, timeMs, this.target.url));
    if (this.files.includes(file)) {
      this.finish('WRITE_ERROR', `segment ${this.segmentIndex} would overwrite ${file}: the file name must change per segment`);
      return;
    }
    let writer: SegmentWriter;
    let header: Buffer;
    try {
      writer = this.makeWriter();
      header = writer.header(timeMs + this.shiftMs);
    } catch (err) {
      this.finish('UNSUPPORTED', `cannot write .${this.ext}: ${errorText(err)}`);
      return;
    }
    const append = this.segmentIndex === 0 && this.firstOpenIsAppend;
    // a file being appended to has its FLV file header already: only metadata and codec config follow
    if (append && this.ext === 'flv') header = header.subarray(13);
    this.writer = writer;
    this.files.push(file);
    this.currentFile = file;
    this.enqueue({ kind: 'open', file, mode: append ? 'a' : 'w' });
    if (header.length > 0) this.enqueue({ kind: 'data', buf: header });
    this.log(`${append ? 'appending to' : 'writing'} ${file}`);
  }

  private makeWriter(): SegmentWriter {
    if (this.ext === 'dtsc') {
      const w = new DtscFileWriter({ tracks: this.tracks, unixzeroMs: this.hub.unixZeroMs - this.shiftMs });
      return { header: () => w.header(), packet: (p) => w.packet(p), finish: () => { const f = w.finish(); return { tail: f.trailer, patch: f.patch }; } };
    }
    if (this.ext === 'mkv' || this.ext === 'webm') {
      // a recorded Matroska file states its duration (patched into the header at the end)
      const w = new MatroskaFeedWriter(this.ext === 'webm', true);
      w.setTracks(this.tracks);
      return { header: () => w.header(), packet: (p) => w.packet(p), finish: () => ({ patch: w.durationPatch() }) };
    }
    const w: FormatWriter = FORMAT_BY_EXTENSION[this.ext]!.format.makeWriter();
    w.setTracks(this.tracks);
    return { header: (ms) => w.header(ms), packet: (p) => w.packet(p), finish: () => ({}) };
  }

  /** Ends the current segment at media time `endMs` (its trailer, close, playlist entry). */
  private closeSegment(endMs: number): void {
    const w = this.writer;
    if (!w) return;
    this.writer = undefined;
    try {
      const { tail, patch } = w.finish();
      if (tail && tail.length > 0) this.enqueue({ kind: 'data', buf: tail });
      if (patch) this.enqueue({ kind: 'patch', buf: patch.bytes, position: patch.position });
    } catch (err) {
      this.log(`closing ${this.currentFile}: ${errorText(err)}`);
    }
    this.enqueue({ kind: 'close' });
    if (this.playlistFile && this.currentFile) {
      const uri = path.relative(path.dirname(this.playlistFile), this.currentFile).split(path.sep).join('/');
      this.playlist.push({ uri: uri.split('/').map(encodeURIComponent).join('/'), durationMs: Math.max(0, endMs - this.segmentStartMs) });
      this.enqueue({ kind: 'text', file: this.playlistFile, text: this.playlistText(false) });
    }
  }

  /** The HLS playlist of the segments so far (an EVENT playlist, or a window with maxEntries/targetAge). */
  private playlistText(ended: boolean): string {
    const p = this.target.params;
    let first = 0;
    if (p.maxEntries !== undefined && p.maxEntries > 0) first = Math.max(0, this.playlist.length - p.maxEntries);
    if (p.targetAge !== undefined && p.targetAge > 0) {
      let ageMs = 0;
      for (let i = this.playlist.length - 1; i >= first; i--) {
        ageMs += this.playlist[i]!.durationMs;
        if (ageMs > p.targetAge * 1000) {
          first = Math.max(first, i + 1);
          break;
        }
      }
    }
    const entries = this.playlist.slice(first);
    // RFC 8216 §4.3.3.1: each EXTINF rounded to the nearest integer is at most the target duration
    const target = Math.max(1, ...entries.map((e) => Math.round(e.durationMs / 1000)));
    const lines = ['#EXTM3U', '#EXT-X-VERSION:3', `#EXT-X-TARGETDURATION:${target}`, `#EXT-X-MEDIA-SEQUENCE:${first}`];
    if (first === 0 && p.maxEntries === undefined && p.targetAge === undefined) lines.push('#EXT-X-PLAYLIST-TYPE:EVENT');
    for (const e of entries) lines.push(`#EXTINF:${(e.durationMs / 1000).toFixed(3)},`, e.uri);
    if (ended && !p.noendlist) lines.push('#EXT-X-ENDLIST');
    return `${lines.join('\n')}\n`;
  }

  // ---- I/O side (asynchronous, one operation at a time) ---------------------------------------

  private enqueue(op: Op): void {
    if (this.failed) return;
    if (op.kind === 'data') this.queuedBytes += op.buf.length;
    this.ops.push(op);
    if (!this.pumping) void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.ops.length > 0 && !this.failed) {
        const op = this.ops.shift()!;
        try {
          if (op.kind === 'data') {
            // gather consecutive data into one writev
            const batch = [op.buf];
            let n = op.buf.length;
            while (this.ops[0]?.kind === 'data' && n < WRITE_BATCH_BYTES) {
              const next = this.ops.shift() as { kind: 'data'; buf: Buffer };
              batch.push(next.buf);
              n += next.buf.length;
            }
            try {
              if (!this.file) throw new Error('no file open');
              await this.file.writev(batch);
              this.bytes += n;
            } finally {
              this.queuedBytes -= n;
            }
          } else if (op.kind === 'open') {
            await this.fs.mkdirp(path.dirname(op.file)).catch((err: unknown) => {
              throw Object.assign(new Error(`cannot create folder ${path.dirname(op.file)}: ${errorText(err)}`), { code: (err as NodeJS.ErrnoException).code });
            });
            this.file = await this.fs.open(op.file, op.mode);
          } else if (op.kind === 'patch') {
            await this.file?.writeAt(op.buf, op.position);
          } else if (op.kind === 'close') {
            const f = this.file;
            this.file = undefined;
            await f?.close();
          } else {
            await this.fs.mkdirp(path.dirname(op.file));
            await this.fs.replaceText(op.file, op.text);
          }
        } catch (err) {
          this.onIoError(err, op);
        }
      }
    } finally {
      this.pumping = false;
      this.drainWaiter?.();
    }
  }

  private drainWaiter: (() => void) | undefined;

  private onIoError(err: unknown, op: Op): void {
    const reason = ioEndReason(err);
    const what = op.kind === 'open' ? `cannot open ${op.file}` : op.kind === 'text' ? `cannot write playlist ${op.file}` : `cannot write ${this.currentFile ?? 'the file'}`;
    const human = reason === 'DISK_FULL' ? `${what}: the disk is full (${errorText(err)})` : `${what}: ${errorText(err)}`;
    this.failed = { reason, message: human };
    this.log(human);
    this.ops = [];
    this.queuedBytes = 0;
    const f = this.file;
    this.file = undefined;
    void f?.close().catch(() => undefined);
    this.finish(reason, human);
  }

  private waitIdle(): Promise<void> {
    if (!this.pumping && this.ops.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drainWaiter = () => {
        if (!this.pumping && this.ops.length === 0) {
          this.drainWaiter = undefined;
          resolve();
        } else if (!this.pumping) {
          void this.pump();
        }
      };
    });
  }

  /** Stops the recording (STOPPED) and resolves with its end report once the files are closed. */
  stop(message = 'stopped on request'): Promise<OutputEnd> {
    this.finish('STOPPED', message);
    return this.done;
  }

  /** Ends once: the last segment is closed, the playlist gets EXT-X-ENDLIST, the report is made. */
  finish(reason: EndReason, message: string): void {
    if (this.ending) return;
    this.ending = { reason, message };
    this.state = 'finishing';
    this.tap?.close();
    void this.complete();
  }

  private async complete(): Promise<void> {
    if (!this.failed) {
      this.closeSegment(this.lastMs >= 0 ? this.lastMs + this.lastDurationGuessMs() : this.segmentStartMs);
      if (this.playlistFile && this.playlist.length > 0) this.enqueue({ kind: 'text', file: this.playlistFile, text: this.playlistText(true) });
    }
    await this.waitIdle();
    const f = this.file;
    this.file = undefined;
    await f?.close().catch(() => undefined);
    this.finished = true;
    this.state = 'ended';
    const end = this.failed ?? this.ending!;
    const unixStop = Math.floor(Date.now() / 1000);
    this.resolveDone({
      stream: this.stream,
      target: this.target.original,
      actualTarget: this.currentFile ?? this.target.url,
      connector: this.target.connector,
      bytes: this.bytes,
      secondsActive: Math.max(0, Math.round((Date.now() - this.unixStart) / 1000)),
      unixStart: Math.floor(this.unixStart / 1000),
      unixStop,
      mediaMs: this.firstMs >= 0 ? this.lastMs - this.firstMs : 0,
      firstMs: this.firstMs,
      lastMs: this.lastMs,
      reason: end.reason,
      message: end.message,
      files: [...this.files],
      droppedPackets: this.dropped,
    });
  }

  /** The last segment's duration ends one frame after its last packet. */
  private lastDurationGuessMs(): number {
    const v = this.tracks.find((t) => t.type === 'video');
    return v && v.type === 'video' && v.fpks > 0 ? Math.round(1_000_000 / v.fpks) : 0;
  }
}
