// The `haze analyse` driver: opens the input (file, stdin, http(s) URL, HLS playlist, dtsc://
// pull), sniffs the container, feeds a describer, and passes every event through the summary
// and the validator. The I/O lives here; the describers and rules stay pure.

import fs from 'node:fs';
import net from 'node:net';
import { bufferByteSource, fileByteSource, type ByteSource } from '../containers/mp4/demux.js';
import { encodeDtcm } from '../containers/dtsc/packets.js';
import type { Track } from '../media/types.js';
import { HazeError, errorText } from '../util/errors.js';
import { AudioFramesDescriber, OggDescriber, WavDescriber } from './describe-audio.js';
import { MkvDescriber, TsDescriber } from './describe-demuxed.js';
import { DtscDescriber } from './describe-dtsc.js';
import { FlvDescriber } from './describe-flv.js';
import { describeMp4Boxes, describeMp4Samples } from './describe-mp4.js';
import { parseM3u8 } from '../containers/hls/parse.js';
import { m3u8Lines } from './hls.js';
import { problemOf, shortHex, type AnalyseEvent, type ContainerKind, type Describer, type PacketRecord, type Problem } from './model.js';
import { kindFromName, sniffContainer } from './sniff.js';
import { Summary, Validator } from './validate.js';

export interface AnalyseOptions {
  /** Print one line per packet and unit (default true; false = --headers-only). */
  packets?: boolean;
  /** Stop after this many packets. */
  limit?: number;
  maxGapMs?: number;
  /** How long a live input (dtsc://, an http stream without length, a live playlist) is read, ms (default 10000). */
  liveMs?: number;
  /** HLS media segments analysed after the playlist (default 3). */
  hlsSegments?: number;
  /** Largest input held in memory where random access needs it (MP4 from stdin/http), bytes. */
  maxBufferBytes?: number;
}

/** Where the dump goes; `problem` is called for each finding (the CLI sends them to stderr). */
export interface AnalyseOutput {
  line(text: string): void;
  problem(p: Problem): void;
  /** When set, packets go here as records instead of as text lines (JSON output). */
  packet?(p: PacketRecord): void;
}

export interface AnalyseResult {
  container: ContainerKind | undefined;
  tracks: Track[];
  packets: number;
  problems: Problem[];
  summary: Summary;
  /** Set when the input could not be opened or read at all (not a finding about its content). */
  ioError?: string;
}

const READ_BYTES = 1024 * 1024;
const SNIFF_BYTES = 512;
const DEFAULT_MAX_BUFFER = 512 * 1024 * 1024;
const MAX_PLAYLIST_BYTES = 4 * 1024 * 1024;

export function problemLine(p: Problem): string {
  const where = [p.pos >= 0 ? `byte ${p.pos}` : '', p.timeMs !== undefined ? `${p.timeMs} ms` : ''].filter(Boolean).join(', ');
  return `problem [${p.rule}]${where ? ` at ${where}` : ''}: ${p.text}`;
}

export function packetLine(p: PacketRecord): string {
  return `packet t=${p.timeMs} ms trk=${p.trackId} ${p.keyframe ? 'K' : '-'} size=${p.size} pos=${p.pos}${p.offsetMs !== 0 ? ` off=${p.offsetMs} ms` : ''}`;
}

/** The state of one analysis: counts, rules, the stop condition. */
export class Session {
  readonly summary = new Summary();
  readonly problems: Problem[] = [];
  readonly validator: Validator;
  tracks: Track[] = [];
  packets = 0;
  container: ContainerKind | undefined;
  /** Prefix for positions of a part of the input (an HLS segment). */
  where = '';
  private deadline: number;
  private readonly limit: number;

  constructor(
    readonly opts: AnalyseOptions,
    readonly out: AnalyseOutput,
    live: boolean,
  ) {
    this.validator = new Validator({ maxGapMs: opts.maxGapMs ?? 1000 });
    this.limit = opts.limit ?? Infinity;
    this.deadline = live ? Date.now() + (opts.liveMs ?? 10_000) : Infinity;
  }

  /** The input turned out to be live (an http stream without a length): read it for liveMs from now. */
  goLive(): void {
    if (this.deadline === Infinity) this.deadline = Date.now() + (this.opts.liveMs ?? 10_000);
  }

  get stopped(): boolean {
    return this.packets >= this.limit || Date.now() >= this.deadline;
  }

  problem(p: Problem): void {
    const q = this.where ? { ...p, text: `${this.where}: ${p.text}` } : p;
    if (this.problems.length < 10_000) this.problems.push(q);
    this.out.problem(q);
  }

  handle(events: readonly AnalyseEvent[]): void {
    const lines = this.opts.packets !== false;
    for (const e of events) {
      switch (e.kind) {
        case 'header':
          this.out.line(e.text);
          break;
        case 'unit':
          if (lines) this.out.line(`unit pos=${e.pos} ${e.text}`);
          break;
        case 'note':
          this.out.line(`note: ${e.text}`);
          break;
        case 'command':
          break;
        case 'tracks':
          this.tracks = e.tracks;
          this.validator.setTracks(e.tracks);
          break;
        case 'problem':
          this.problem(e.problem);
          break;
        case 'packet':
          if (this.packets >= this.limit) break;
          this.packets++;
          this.summary.add(e.packet);
          if (lines) {
            if (this.out.packet) this.out.packet(e.packet);
            else this.out.line(packetLine(e.packet));
          }
          for (const p of this.validator.packet(e.packet)) this.problem(p);
          break;
      }
    }
  }

  result(ioError?: string): AnalyseResult {
    return { container: this.container, tracks: this.tracks, packets: this.packets, problems: this.problems, summary: this.summary, ...(ioError !== undefined ? { ioError } : {}) };
  }
}

export function makeDescriber(kind: ContainerKind): Describer | undefined {
  switch (kind) {
    case 'flv':
      return new FlvDescriber();
    case 'ts':
      return new TsDescriber();
    case 'mkv':
      return new MkvDescriber();
    case 'dtsc':
      return new DtscDescriber();
    case 'ogg':
      return new OggDescriber();
    case 'wav':
      return new WavDescriber();
    case 'mp3':
    case 'adts':
      return new AudioFramesDescriber(kind);
    default:
      return undefined;
  }
}

const NAMES: Record<ContainerKind, string> = {
  flv: 'FLV', ts: 'MPEG-TS', mkv: 'Matroska/WebM', mp4: 'MP4/MOV', dtsc: 'DTSC', ogg: 'Ogg', wav: 'WAV', mp3: 'MP3', adts: 'ADTS AAC', hls: 'HLS playlist',
};

async function describeSource(s: Session, src: ByteSource): Promise<void> {
  s.handle(await describeMp4Boxes(src));
  s.handle(await describeMp4Samples(src));
}

/**
 * Feeds a byte stream to the describer its first bytes call for. MP4 needs random access: its
 * bytes are gathered (up to maxBufferBytes) and read as a buffer.
 */
async function driveChunks(s: Session, chunks: AsyncIterable<Buffer>, name: string, contentType: string | undefined, onEvents?: (ev: AnalyseEvent[]) => void): Promise<void> {
  const head: Buffer[] = [];
  let headBytes = 0;
  let describer: Describer | undefined;
  let mp4: Buffer[] | undefined;
  let mp4Bytes = 0;
  const max = s.opts.maxBufferBytes ?? DEFAULT_MAX_BUFFER;
  let complete = true;

  const start = (first: Buffer): boolean => {
    const kind = sniffContainer(first, name, contentType);
    s.container = kind;
    if (!kind) {
      s.problem({ rule: 'HAZE_ERR_UNSUPPORTED', text: `container not recognised (first bytes ${shortHex(first, 8)})`, pos: 0 });
      return false;
    }
    s.out.line(`container: ${NAMES[kind]}`);
    if (kind === 'mp4') mp4 = [];
    else if (kind === 'hls') {
      s.problem({ rule: 'HAZE_ERR_UNSUPPORTED', text: 'an HLS playlist is analysed from its http(s) URL', pos: 0 });
      return false;
    } else describer = makeDescriber(kind);
    return true;
  };
  const feed = (chunk: Buffer): void => {
    if (mp4) {
      mp4Bytes += chunk.length;
      if (mp4Bytes > max) throw new HazeError('HAZE_ERR_TOO_LARGE', `MP4 input beyond ${max} bytes cannot be held for random access`);
      mp4.push(chunk);
    } else if (describer) {
      const ev = describer.push(chunk);
      onEvents?.(ev);
      s.handle(ev);
    }
  };

  for await (const chunk of chunks) {
    if (chunk.length === 0) continue;
    if (!mp4 && !describer) {
      head.push(chunk);
      headBytes += chunk.length;
      if (headBytes < SNIFF_BYTES) continue;
      const first = Buffer.concat(head, headBytes);
      if (!start(first)) return;
      feed(first);
    } else feed(chunk);
    if (s.stopped) {
      complete = false;
      break;
    }
  }
  if (!mp4 && !describer) {
    const first = Buffer.concat(head, headBytes);
    if (first.length === 0) {
      s.container = kindFromName(name);
      s.problem({ rule: 'TRUNCATED', text: 'the input is empty', pos: 0 });
      return;
    }
    if (!start(first)) return;
    feed(first);
  }
  if (mp4) {
    await describeSource(s, bufferByteSource(Buffer.concat(mp4, mp4Bytes)));
    return;
  }
  if (describer) {
    const ev = describer.end(complete);
    onEvents?.(ev);
    s.handle(ev);
  }
}

async function* fileChunks(file: string): AsyncGenerator<Buffer> {
  for await (const chunk of fs.createReadStream(file, { highWaterMark: READ_BYTES })) yield chunk as Buffer;
}

async function analyseFile(s: Session, file: string): Promise<void> {
  const fh = await fs.promises.open(file, 'r');
  let head: Buffer;
  try {
    const b = Buffer.alloc(SNIFF_BYTES);
    const { bytesRead } = await fh.read(b, 0, SNIFF_BYTES, 0);
    head = b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  if (sniffContainer(head, file) === 'mp4') {
    s.container = 'mp4';
    s.out.line(`container: ${NAMES.mp4}`);
    const src = await fileByteSource(file);
    try {
      await describeSource(s, src);
    } finally {
      await src.close();
    }
    return;
  }
  await driveChunks(s, fileChunks(file), file, undefined);
}

async function* bodyChunks(res: Response): AsyncGenerator<Buffer> {
  if (!res.body) return;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

async function fetchOk(url: string, signal: AbortSignal): Promise<Response> {
  const res = await fetch(url, { signal, redirect: 'follow' });
  if (!res.ok) {
    await res.body?.cancel();
    throw new HazeError('HAZE_ERR_NOT_FOUND', `GET ${url}: HTTP ${res.status}`);
  }
  return res;
}

async function fetchBytes(url: string, signal: AbortSignal, max: number): Promise<Buffer> {
  const res = await fetchOk(url, signal);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of bodyChunks(res)) {
    n += c.length;
    if (n > max) throw new HazeError('HAZE_ERR_TOO_LARGE', `GET ${url}: more than ${max} bytes`);
    parts.push(c);
  }
  return Buffer.concat(parts, n);
}

async function analyseHls(s: Session, url: string, text: string, signal: AbortSignal, depth = 0): Promise<void> {
  const pl = parseM3u8(text);
  for (const l of m3u8Lines(pl)) s.out.line(l);
  for (const p of pl.problems) s.problem({ rule: 'HLS_PLAYLIST', text: `${url}: ${p}`, pos: -1 });
  if (pl.master) {
    const v = pl.variants[0];
    if (!v || depth > 0) return;
    const vurl = new URL(v.uri, url).toString();
    s.out.line(`variant playlist ${vurl}`);
    const body = await fetchBytes(vurl, signal, MAX_PLAYLIST_BYTES);
    await analyseHls(s, vurl, body.toString('utf8'), signal, depth + 1);
    return;
  }
  const init = pl.mapUri ? await fetchBytes(new URL(pl.mapUri, url).toString(), signal, MAX_PLAYLIST_BYTES) : undefined;
  const count = Math.min(pl.segments.length, s.opts.hlsSegments ?? 3);
  for (let i = 0; i < count && !s.stopped; i++) {
    const seg = pl.segments[i]!;
    const surl = new URL(seg.uri, url).toString();
    s.out.line(`segment ${pl.mediaSequence + i}: ${surl}`);
    s.where = `segment ${pl.mediaSequence + i}`;
    if (init) {
      const bytes = await fetchBytes(surl, signal, s.opts.maxBufferBytes ?? DEFAULT_MAX_BUFFER);
      await describeSource(s, bufferByteSource(Buffer.concat([init, bytes])));
    } else {
      const res = await fetchOk(surl, signal);
      await driveChunks(s, bodyChunks(res), surl, res.headers.get('content-type') ?? undefined);
    }
  }
  s.where = '';
  s.container = 'hls';
}

async function analyseHttp(s: Session, url: string): Promise<void> {
  const ctl = new AbortController();
  try {
    const res = await fetchOk(url, ctl.signal);
    const type = res.headers.get('content-type') ?? undefined;
    const length = res.headers.get('content-length');
    s.out.line(`http: ${res.status} ${type ?? '(no content-type)'} ${length !== null ? `${length} B` : 'no length (live?)'}`);
    if (length === null) s.goLive();
    const chunks = bodyChunks(res);
    // the playlist case: by type or name, else by the body's first bytes
    const looksHls = /mpegurl/i.test(type ?? '') || kindFromName(url) === 'hls';
    if (looksHls) {
      const parts: Buffer[] = [];
      let n = 0;
      for await (const c of chunks) {
        n += c.length;
        if (n > MAX_PLAYLIST_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `playlist ${url} beyond ${MAX_PLAYLIST_BYTES} bytes`);
        parts.push(c);
      }
      s.container = 'hls';
      await analyseHls(s, url, Buffer.concat(parts, n).toString('utf8'), ctl.signal);
      return;
    }
    await driveChunks(s, chunks, url, type);
  } finally {
    ctl.abort();
  }
}

/** Pulls a stream over dtsc:// (reference §2.6): send `play`, answer pings, describe what comes. */
async function analyseDtsc(s: Session, url: string): Promise<void> {
  const u = new URL(url);
  const stream = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!stream) throw new HazeError('HAZE_ERR_INVALID_ARG', `${url}: no stream name`);
  const port = u.port ? Number(u.port) : 4200;
  const socket = net.connect({ host: u.hostname || '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.on('error', () => undefined);
  const play: Record<string, unknown> = { cmd: 'play', stream, version: 'Haze analyse' };
  for (const [k, v] of u.searchParams) if (k !== 'cmd' && k !== 'stream') play[k] = v;
  socket.write(encodeDtcm(play));
  s.container = 'dtsc';
  s.out.line(`container: ${NAMES.dtsc} (dtsc:// pull of ${JSON.stringify(stream)})`);
  const describer = new DtscDescriber();
  // the deadline also holds when the server goes quiet
  const timer = setTimeout(() => socket.destroy(), Math.max(0, (s.opts.liveMs ?? 10_000) + 50));
  let complete = true;
  try {
    for await (const chunk of socket as AsyncIterable<Buffer>) {
      const ev = describer.push(chunk);
      for (const e of ev) {
        if (e.kind !== 'command') continue;
        if (e.command.cmd === 'ping') socket.write(encodeDtcm({ cmd: 'ok', msg: 'Pong!' }));
        else if (e.command.cmd === 'error') s.problem({ rule: 'HAZE_ERR_PROTOCOL', text: `server error: ${String(e.command.msg)}`, pos: -1 });
      }
      s.handle(ev);
      if (s.stopped) {
        complete = false;
        break;
      }
    }
  } catch {
    // destroyed by the deadline
    complete = false;
  } finally {
    clearTimeout(timer);
    socket.destroy();
  }
  s.handle(describer.end(complete));
}

async function* stdinChunks(): AsyncGenerator<Buffer> {
  for await (const chunk of process.stdin) yield chunk as Buffer;
}

/** Analyses a file path, `-` (stdin), an http(s):// URL or a dtsc:// URL. */
export async function analyseInput(input: string, opts: AnalyseOptions, out: AnalyseOutput): Promise<AnalyseResult> {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(input)?.[1]?.toLowerCase();
  const live = scheme === 'dtsc';
  const s = new Session(opts, out, live);
  try {
    if (scheme === 'http' || scheme === 'https') await analyseHttp(s, input);
    else if (scheme === 'dtsc') await analyseDtsc(s, input);
    else if (scheme !== undefined) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${scheme}:// inputs are not supported (file, -, http(s)://, dtsc://)`);
    else if (input === '-') await driveChunks(s, stdinChunks(), '', undefined);
    else await analyseFile(s, input);
  } catch (err) {
    // I/O failures (missing file, refused connection) are not findings about the content
    const io = err instanceof HazeError ? err.code === 'HAZE_ERR_NOT_FOUND' || err.code === 'HAZE_ERR_UNSUPPORTED' || err.code === 'HAZE_ERR_INVALID_ARG' : true;
    if (io) return s.result(errorText(err));
    s.problem(problemOf(err, -1, input));
  }
  return s.result();
}

/** Analyses bytes held in memory (tests, fuzzing): the same path as a file, without the file. */
export async function analyseBuffer(buf: Buffer, name: string, opts: AnalyseOptions, out: AnalyseOutput): Promise<AnalyseResult> {
  const s = new Session(opts, out, false);
  try {
    if (sniffContainer(buf.subarray(0, SNIFF_BYTES), name) === 'mp4') {
      s.container = 'mp4';
      await describeSource(s, bufferByteSource(buf));
    } else {
      await driveChunks(
        s,
        (async function* () {
          for (let p = 0; p < buf.length; p += READ_BYTES) yield buf.subarray(p, p + READ_BYTES);
        })(),
        name,
        undefined,
      );
    }
  } catch (err) {
    s.problem(problemOf(err, -1, name));
  }
  return s.result();
}
