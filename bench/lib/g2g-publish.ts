// Publishers of the glass-to-glass benchmark: they take the paced, stamped frames (g2g-source.ts)
// and send each one at once.
//   - RTMP: Haze's RtmpClient (the same client the fan-out benchmark publishes with).
//   - ffmpeg from a pipe: the frames written as FLV to ffmpeg's stdin and sent on as it is told
//     (MPEG-TS over SRT, RTSP ANNOUNCE/RECORD), for protocols that have no Node publisher
//     here. ffmpeg copies the stream (no decode), flushes every packet, and reads FLV without
//     probing beyond the sequence header; what it still adds is in both Haze's figure and the
//     peer's, so the ratio compares the servers.
//   - MPEG-TS muxed here (the repo's TsMuxer) and sent as UDP datagrams of up to 7 TS packets
//     (the last one of each access unit shorter, so nothing waits for the next frame) to
//     srt-live-transmit (Debian's srt-tools) `udp://:PORT srt://...`, which sends each datagram
//     on as one SRT packet at once. ffmpeg as the SRT publisher adds ~45 ms on top of the SRT
//     latency (measured on loopback, one SRT hop); a pipe into srt-live-transmit adds as much
//     (it reads stdin in whole 1316-byte chunks); this adds none measurable.

import { spawn } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import type { ChildProcess } from 'node:child_process';
import { FLV_TAG_VIDEO, writeFlvHeader, writeFlvTag } from '../../src/containers/flv/tags.js';
import { TsMuxer } from '../../src/containers/ts/mux.js';
import type { VideoTrack } from '../../src/media/types.js';
import { RtmpClient } from '../../src/protocols/rtmp/client.js';
import type { Clip, PacedFrame } from './g2g-source.js';

export interface G2gPublisher {
  readonly label: string;
  start(clip: Clip): Promise<void>;
  send(f: PacedFrame): void;
  /** An error that ended the publisher (undefined while it runs). */
  readonly error: string | undefined;
  stop(): Promise<void>;
}

export class RtmpPublisher implements G2gPublisher {
  readonly label = 'RtmpClient';
  error: string | undefined;
  private client: RtmpClient | undefined;
  private stopping = false;

  constructor(private readonly url: string) {}

  async start(clip: Clip): Promise<void> {
    const client = new RtmpClient({ timeoutMs: 10000 });
    this.client = client;
    client.on('close', (reason) => {
      if (!this.stopping) this.error = `RTMP publish closed: ${reason}`;
    });
    const u = new URL(this.url);
    const name = u.pathname.split('/').slice(2).join('/');
    await client.connect(`rtmp://${u.host}/${u.pathname.split('/')[1]}`);
    await client.publish(name);
    client.sendMedia(9, 0, clip.sequenceHeader);
  }

  send(f: PacedFrame): void {
    if (this.client && !this.client.closed) this.client.sendMedia(9, f.timeMs, f.body);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.client;
    if (!c || c.closed) return;
    await Promise.race([c.close(), new Promise((r) => setTimeout(r, 2000))]);
    c.destroy('stopped');
  }
}

/** ffmpeg reading FLV on stdin, copying the video to `outputArgs` (format and URL). */
export class FfmpegPipePublisher implements G2gPublisher {
  error: string | undefined;
  private child: ChildProcess | undefined;
  private stopping = false;
  private stderrTail = '';

  constructor(
    readonly label: string,
    private readonly outputArgs: string[],
  ) {}

  async start(clip: Clip): Promise<void> {
    const args = ['-hide_banner', '-loglevel', 'warning', '-fflags', 'nobuffer', '-probesize', '32', '-analyzeduration', '0', '-f', 'flv', '-i', 'pipe:0', '-c', 'copy', '-flush_packets', '1', ...this.outputArgs];
    const child = spawn('ffmpeg', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-2000);
    });
    child.stdin!.on('error', () => undefined);
    child.on('exit', (code, sig) => {
      if (!this.stopping) this.error = `ffmpeg publisher exited (${code ?? sig}): ${this.stderrTail.trim().split('\n').slice(-3).join(' / ')}`;
    });
    child.stdin!.write(writeFlvHeader(true, false));
    child.stdin!.write(writeFlvTag(FLV_TAG_VIDEO, 0, clip.sequenceHeader));
    await new Promise((r) => setTimeout(r, 50));
    if (this.error) throw new Error(this.error);
  }

  send(f: PacedFrame): void {
    const c = this.child;
    if (c && c.exitCode === null && c.stdin!.writable) c.stdin!.write(writeFlvTag(FLV_TAG_VIDEO, f.timeMs, f.body));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.stdin!.end();
    const t = setTimeout(() => c.kill('SIGKILL'), 3000);
    c.kill('SIGTERM');
    await gone;
    clearTimeout(t);
  }
}

/** The clip's video track for a muxer: the avcC from the FLV sequence header. */
export function clipTrack(clip: Clip, width: number, height: number): VideoTrack {
  return { id: 1, type: 'video', codec: 'H264', init: clip.sequenceHeader.subarray(5), bps: 0, lang: 'und', width, height, fpks: Math.round(1e6 / clip.frameMs) };
}

/** TsMuxer in this process, the TS bytes sent over UDP to `cmd args` (srt-live-transmit udp://127.0.0.1:{PORT} srt://...). */
export class TsUdpPublisher implements G2gPublisher {
  error: string | undefined;
  private child: ChildProcess | undefined;
  private sock: UdpSocket | undefined;
  private port = 0;
  private muxer: TsMuxer | undefined;
  private stopping = false;
  private stderrTail = '';

  constructor(
    readonly label: string,
    private readonly cmd: string,
    private readonly args: string[],
    private readonly size: { width: number; height: number },
  ) {}

  async start(clip: Clip): Promise<void> {
    this.muxer = new TsMuxer([clipTrack(clip, this.size.width, this.size.height)]);
    // a free UDP port for the sender to listen on: bind, read, close, hand it over
    const probe = createSocket('udp4');
    await new Promise<void>((r) => probe.bind(0, '127.0.0.1', () => r()));
    this.port = probe.address().port;
    probe.close();
    this.sock = createSocket('udp4');
    this.sock.on('error', () => undefined);
    const child = spawn(this.cmd, this.args.map((a) => a.replace('{PORT}', String(this.port))), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-2000);
    });
    child.on('exit', (code, sig) => {
      if (!this.stopping) this.error = `${this.cmd} exited (${code ?? sig}): ${this.stderrTail.trim().split('\n').slice(-3).join(' / ')}`;
    });
    await new Promise((r) => setTimeout(r, 300));
    if (this.error) throw new Error(this.error);
    this.datagrams(this.muxer.psi());
  }

  private datagrams(ts: Buffer): void {
    for (let p = 0; p < ts.length; p += 1316) this.sock!.send(ts.subarray(p, Math.min(ts.length, p + 1316)), this.port, '127.0.0.1');
  }

  send(f: PacedFrame): void {
    const c = this.child;
    if (!c || c.exitCode !== null || !this.muxer) return;
    // FLV AVC body: 5 bytes of header, then the AVCC NAL units the muxer turns into Annex B
    this.datagrams(this.muxer.mux({ trackId: 1, timeMs: f.timeMs, offsetMs: 0, keyframe: f.keyframe, data: f.body.subarray(5) }));
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
    this.sock?.close();
  }
}
