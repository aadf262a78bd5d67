// Readers of the glass-to-glass benchmark: each plays one output the way a player would, finds
// the send-time stamp (g2g-stamp.ts) in every access unit it gets, and reports (sent µs, arrival
// µs). Arrival is the moment the frame's bytes are in the reader's hands: the earliest a player
// could decode it. Decoding and display are left out except for WebRTC (g2g-webrtc.ts), where
// Chromium's own display time is read as well.
//
// - RTMP: Haze's RtmpClient play. HTTP-FLV: fetch + FlvTagReader.
// - MPEG-TS streams (/NAME.ts, or ffmpeg's stdout for SRT and RTSP): fetch / pipe + TsDemuxer.
//   A video PES of unbounded length ends only when the next one starts, so the demuxer gives an
//   access unit one frame late; the arrival is taken as the time the first TS packet of its PES
//   came in (its `pos`), which is when the server wrote the frame (servers write a PES whole).
// - HLS: the media playlist reloaded as hls.js does (every target duration, half of it when
//   nothing changed), each new segment fetched once; every frame of a segment arrives when the
//   segment's fetch completes. LL-HLS: as hls.js' low-latency mode, the part named by the
//   preload hint fetched before it exists (the server holds the request until the part is cut),
//   then a blocking reload `_HLS_msn/_HLS_part` for the next hint.

import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { ChildProcess } from 'node:child_process';
import { FlvTagReader, FLV_TAG_VIDEO } from '../../src/containers/flv/tags.js';
import { TsDemuxer } from '../../src/containers/ts/demux.js';
import { RtmpClient } from '../../src/protocols/rtmp/client.js';
import { findStampsUs, wallUs } from './g2g-stamp.js';
import { parsePlaylist, resolvePath } from './hls-playlist.js';
import type { PlaylistPart } from './hls-playlist.js';

/** One stamped frame: its send time and arrival time (µs); `series` splits a reader's figures (WebRTC: received, displayed). */
export type StampSink = (sentUs: number, arrivalUs: number, series?: string) => void;

export interface G2gReader {
  readonly label: string;
  start(sink: StampSink): Promise<void>;
  /** What ended the reader early, if something did. */
  readonly error: string | undefined;
  stop(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class RtmpReader implements G2gReader {
  readonly label = 'RtmpClient play';
  error: string | undefined;
  private client: RtmpClient | undefined;
  private stopping = false;

  constructor(private readonly url: string) {}

  async start(sink: StampSink): Promise<void> {
    const client = new RtmpClient({ timeoutMs: 10000 });
    this.client = client;
    client.on('media', (m) => {
      if (m.typeId !== 9) return;
      const t = wallUs();
      for (const s of findStampsUs(m.body)) sink(s, t);
    });
    client.on('close', (reason) => {
      if (!this.stopping) this.error = `RTMP play closed: ${reason}`;
    });
    const u = new URL(this.url);
    const [app, ...name] = u.pathname.slice(1).split('/');
    await client.connect(`rtmp://${u.host}/${app}`);
    await client.play(name.join('/'));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.client?.destroy('stopped');
  }
}

/** A long HTTP response read chunk by chunk as it arrives. */
abstract class HttpStreamReader implements G2gReader {
  abstract readonly label: string;
  error: string | undefined;
  private readonly abort = new AbortController();
  private stopping = false;

  constructor(private readonly url: string) {}

  protected abstract onChunk(chunk: Buffer, arrivalUs: number, sink: StampSink): void;

  async start(sink: StampSink): Promise<void> {
    const res = await fetch(this.url, { signal: this.abort.signal });
    if (res.status !== 200 || !res.body) throw new Error(`GET ${this.url}: HTTP ${res.status}`);
    const reader = res.body.getReader();
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          this.onChunk(Buffer.from(value.buffer, value.byteOffset, value.byteLength), wallUs(), sink);
        }
        if (!this.stopping) this.error = 'response ended';
      } catch (e) {
        if (!this.stopping) this.error = (e as Error).message;
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
  }
}

export class HttpFlvReader extends HttpStreamReader {
  readonly label = 'fetch + FlvTagReader';
  private readonly flv = new FlvTagReader();

  protected onChunk(chunk: Buffer, arrivalUs: number, sink: StampSink): void {
    for (const tag of this.flv.push(chunk)) {
      if (tag.type !== FLV_TAG_VIDEO) continue;
      for (const s of findStampsUs(tag.body)) sink(s, arrivalUs);
    }
  }
}

/**
 * TsDemuxer fed chunk by chunk; each access unit's arrival is that of the chunk holding the
 * first byte of its PES (see the head of this file).
 */
export class TsStampDemux {
  private readonly demux = new TsDemuxer();
  private offset = 0;
  /** Input offset at the end of each chunk still needed, and its arrival time. */
  private readonly ends: number[] = [];
  private readonly times: number[] = [];

  push(chunk: Buffer, arrivalUs: number, sink: StampSink): void {
    this.offset += chunk.length;
    this.ends.push(this.offset);
    this.times.push(arrivalUs);
    const r = this.demux.push(chunk);
    for (const p of r.packets) {
      const stamps = findStampsUs(p.data);
      if (stamps.length === 0) continue;
      while (this.ends.length > 1 && this.ends[0]! <= p.pos) {
        this.ends.shift();
        this.times.shift();
      }
      for (const s of stamps) sink(s, this.times[0]!);
    }
    // bounded: a demuxer holding packets back never needs more than its hold limits
    while (this.ends.length > 100_000) {
      this.ends.shift();
      this.times.shift();
    }
  }
}

export class HttpTsReader extends HttpStreamReader {
  readonly label = 'fetch + TsDemuxer';
  private readonly ts = new TsStampDemux();

  protected onChunk(chunk: Buffer, arrivalUs: number, sink: StampSink): void {
    this.ts.push(chunk, arrivalUs, sink);
  }
}

/**
 * ffmpeg playing a URL (SRT caller, RTSP client) and writing the stream as MPEG-TS to its
 * stdout, read with TsDemuxer. ffmpeg's demuxer of the input adds what it buffers (for TS over
 * SRT: one frame, as the next PES start ends an unbounded one).
 */
export class FfmpegTsReader implements G2gReader {
  error: string | undefined;
  private child: ChildProcess | undefined;
  private stopping = false;
  private stderrTail = '';
  private readonly ts = new TsStampDemux();

  constructor(
    readonly label: string,
    private readonly inputArgs: string[],
  ) {}

  async start(sink: StampSink): Promise<void> {
    const args = ['-hide_banner', '-loglevel', 'warning', '-fflags', 'nobuffer', '-flags', 'low_delay', '-probesize', '32768', '-analyzeduration', '0', ...this.inputArgs, '-map', '0:v', '-c', 'copy', '-f', 'mpegts', '-flush_packets', '1', 'pipe:1'];
    const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => this.ts.push(d, wallUs(), sink));
    child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-2000);
    });
    child.on('exit', (code, sig) => {
      if (!this.stopping) this.error = `ffmpeg reader exited (${code ?? sig}): ${this.stderrTail.trim().split('\n').slice(-3).join(' / ')}`;
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  }
}

/**
 * A command writing a TS stream to its stdout as it receives it, read with TsDemuxer:
 * srt-live-transmit `srt://... file://con` (SRT caller, no demuxing, so nothing held back).
 */
export class PipeTsReader implements G2gReader {
  error: string | undefined;
  private child: ChildProcess | undefined;
  private stopping = false;
  private stderrTail = '';
  private readonly ts = new TsStampDemux();

  constructor(
    readonly label: string,
    private readonly cmd: string,
    private readonly args: string[],
  ) {}

  async start(sink: StampSink): Promise<void> {
    const child = spawn(this.cmd, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => this.ts.push(d, wallUs(), sink));
    child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-2000);
    });
    child.on('exit', (code, sig) => {
      if (!this.stopping) this.error = `${this.cmd} exited (${code ?? sig}): ${this.stderrTail.trim().split('\n').slice(-3).join(' / ')}`;
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  }
}

/**
 * A command that receives a stream and sends it on as TS over UDP to 127.0.0.1 (each datagram
 * as it comes: srt-live-transmit `srt://... udp://127.0.0.1:PORT`), read with TsDemuxer. UDP
 * rather than a pipe: srt-live-transmit's stdout is buffered, a datagram is not. `args` may
 * hold {PORT}, replaced by the local UDP port.
 */
export class UdpTsReader implements G2gReader {
  error: string | undefined;
  private readonly pipe: PipeTsReader;
  private sock: UdpSocket | undefined;

  private readonly args: string[];

  constructor(
    readonly label: string,
    cmd: string,
    args: string[],
  ) {
    this.args = args;
    this.pipe = new PipeTsReader(label, cmd, args);
  }

  async start(sink: StampSink): Promise<void> {
    const sock = createSocket('udp4');
    this.sock = sock;
    const ts = new TsStampDemux();
    sock.on('message', (m) => ts.push(m, wallUs(), sink));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    sock.setRecvBufferSize(4 * 1024 * 1024);
    const port = String(sock.address().port);
    const args = this.args.map((a) => a.replace('{PORT}', port));
    Object.assign(this.pipe, { args });
    await this.pipe.start(() => undefined);
  }

  async stop(): Promise<void> {
    this.error = this.pipe.error;
    await this.pipe.stop();
    this.sock?.close();
  }
}

/** Every stamp in a TS segment (payloads of each PID joined: a stamp may straddle two packets) or fMP4 bytes. */
export function stampsInSegment(data: Buffer): number[] {
  if (data.length < 188 || data[0] !== 0x47 || (data.length >= 376 && data[188] !== 0x47)) return findStampsUs(data);
  const byPid = new Map<number, Buffer[]>();
  for (let p = 0; p + 188 <= data.length; p += 188) {
    if (data[p] !== 0x47) break;
    const pid = ((data[p + 1]! & 0x1f) << 8) | data[p + 2]!;
    const afc = (data[p + 3]! >> 4) & 3;
    if ((afc & 1) === 0) continue;
    const start = p + 4 + ((afc & 2) !== 0 ? 1 + data[p + 4]! : 0);
    if (start >= p + 188) continue;
    let list = byPid.get(pid);
    if (!list) byPid.set(pid, (list = []));
    list.push(data.subarray(start, p + 188));
  }
  const out: number[] = [];
  for (const pieces of byPid.values()) out.push(...findStampsUs(Buffer.concat(pieces)));
  return out;
}

async function getBytes(url: string, signal: AbortSignal): Promise<Buffer> {
  const res = await fetch(url, { signal });
  if (res.status !== 200) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return Buffer.from(await res.arrayBuffer());
}

/** Shared by both HLS readers: the media playlist behind an entry (multivariant or not). */
async function mediaPlaylistUrl(entry: string, signal: AbortSignal): Promise<string> {
  const u = new URL(entry);
  for (let i = 0; i < 150; i++) {
    const res = await fetch(entry, { signal }).catch(() => undefined);
    if (res?.status === 200) {
      const pl = parsePlaylist(await res.text());
      if (pl.variants.length === 0) return entry;
      return `${u.origin}${resolvePath(u.pathname + u.search, pl.variants[0]!)}`;
    }
    await sleep(200);
  }
  throw new Error(`${entry}: no playlist`);
}

export class HlsReader implements G2gReader {
  readonly label = 'playlist reload as hls.js';
  error: string | undefined;
  private readonly abort = new AbortController();
  private stopping = false;

  constructor(private readonly entry: string) {}

  async start(sink: StampSink): Promise<void> {
    const signal = this.abort.signal;
    const media = await mediaPlaylistUrl(this.entry, signal);
    const mu = new URL(media);
    void (async () => {
      let next = -1;
      try {
        while (!this.stopping) {
          const pl = parsePlaylist(await (await fetch(media, { signal })).text());
          // Join at the live edge: segments listed at the start were cut before we came.
          if (next < 0) next = pl.nextMsn;
          let got = false;
          for (const seg of pl.segments) {
            if (seg.msn < next) continue;
            const body = await getBytes(`${mu.origin}${resolvePath(mu.pathname + mu.search, seg.uri)}`, signal);
            const t = wallUs();
            for (const s of stampsInSegment(body)) sink(s, t);
            next = seg.msn + 1;
            got = true;
          }
          await sleep(got ? pl.targetDurationMs : pl.targetDurationMs / 2);
        }
      } catch (e) {
        if (!this.stopping) this.error = (e as Error).message;
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
  }
}

export class LlHlsReader implements G2gReader {
  readonly label = 'blocking reload + preload hint as hls.js';
  error: string | undefined;
  private readonly abort = new AbortController();
  private stopping = false;

  constructor(private readonly entry: string) {}

  async start(sink: StampSink): Promise<void> {
    const signal = this.abort.signal;
    const media = await mediaPlaylistUrl(this.entry, signal);
    const mu = new URL(media);
    const abs = (uri: string): string => `${mu.origin}${resolvePath(mu.pathname + mu.search, uri)}`;
    const withQuery = (q: string): string => `${media}${media.includes('?') ? '&' : '?'}${q}`;
    let pl = parsePlaylist(await (await fetch(media, { signal })).text());
    if (pl.partTargetMs === 0) throw new Error(`${media}: no EXT-X-PART-INF (not low-latency)`);
    void (async () => {
      try {
        let hint: PlaylistPart | undefined = pl.hint;
        while (!this.stopping) {
          if (!hint) {
            pl = parsePlaylist(await (await fetch(media, { signal })).text());
            hint = pl.hint;
            if (!hint) await sleep(pl.partTargetMs);
            continue;
          }
          const body = await getBytes(abs(hint.uri), signal);
          const t = wallUs();
          for (const s of stampsInSegment(body)) sink(s, t);
          // the playlist that lists this part names the next one in its hint
          pl = parsePlaylist(await (await fetch(withQuery(`_HLS_msn=${hint.msn}&_HLS_part=${hint.index}`), { signal })).text());
          const prev = hint;
          hint = pl.hint && (pl.hint.msn > prev.msn || (pl.hint.msn === prev.msn && pl.hint.index > prev.index)) ? pl.hint : undefined;
        }
      } catch (e) {
        if (!this.stopping) this.error = (e as Error).message;
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
  }
}
