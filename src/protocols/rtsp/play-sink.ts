// Delivers the feed's chunks of interleaved frames (rtp-writer.ts: track i on channels 2i and
// 2i+1) to one RTSP viewer as it set its tracks up (RFC 2326 §10.12, §12.39): over its TCP
// connection as they are when its channels are the feed's, renumbered when it chose others,
// and as UDP datagrams to its client ports for tracks set up over UDP. Tracks it did not set
// up are left out. Its writableLength (socket plus UDP send queues) drives the slow-reader
// policy of outputs/viewer.ts.

import type dgram from 'node:dgram';

export type TrackSetup = { kind: 'tcp'; rtpChannel: number; rtcpChannel: number } | { kind: 'udp'; socket: { rtp: dgram.Socket; rtcp: dgram.Socket }; host: string; rtpPort: number; rtcpPort: number };

/** The RTSP connection's side the sink writes to. */
export interface ConnectionOut {
  write(b: Buffer): boolean;
  writev(chunks: readonly Buffer[]): void;
  readonly writableLength: number;
  /** The viewer ended (stream over, too slow): the RTSP connection ends. */
  close(reason: string): void;
}

export class PlaySink {
  /** Every track over TCP on the feed's own channels: chunks pass untouched. */
  private readonly passThrough: boolean;
  private readonly udp: Array<{ rtp: dgram.Socket; rtcp: dgram.Socket }>;

  constructor(
    private readonly setups: ReadonlyArray<TrackSetup | undefined>,
    private readonly out: ConnectionOut,
  ) {
    this.passThrough = setups.every((s, i) => s?.kind === 'tcp' && s.rtpChannel === 2 * i && s.rtcpChannel === 2 * i + 1);
    this.udp = setups.flatMap((s) => (s?.kind === 'udp' ? [s.socket] : []));
  }

  get writableLength(): number {
    let n = this.out.writableLength;
    for (const u of this.udp) n += u.rtp.getSendQueueSize() + u.rtcp.getSendQueueSize();
    return n;
  }

  write(chunk: Buffer): boolean {
    if (this.passThrough) return this.out.write(chunk);
    const tcp: Buffer[] = [];
    this.route(chunk, tcp);
    if (tcp.length === 1) this.out.write(tcp[0]!);
    else if (tcp.length > 1) this.out.writev(tcp);
    return true;
  }

  writev(chunks: readonly Buffer[]): void {
    if (this.passThrough) {
      this.out.writev(chunks);
      return;
    }
    const tcp: Buffer[] = [];
    for (const c of chunks) this.route(c, tcp);
    if (tcp.length === 1) this.out.write(tcp[0]!);
    else if (tcp.length > 1) this.out.writev(tcp);
  }

  close(reason: string): void {
    this.out.close(reason);
  }

  /** Splits a chunk into its frames: UDP ones are sent, TCP ones collected (renumbered where needed). */
  private route(chunk: Buffer, tcp: Buffer[]): void {
    let pos = 0;
    while (pos + 4 <= chunk.length) {
      const channel = chunk[pos + 1]!;
      const len = chunk.readUInt16BE(pos + 2);
      const end = pos + 4 + len;
      const s = this.setups[channel >> 1];
      const rtcp = (channel & 1) === 1;
      if (s?.kind === 'tcp') {
        const want = rtcp ? s.rtcpChannel : s.rtpChannel;
        if (want === channel) tcp.push(chunk.subarray(pos, end));
        else {
          const head = Buffer.from(chunk.subarray(pos, pos + 4));
          head[1] = want;
          tcp.push(head, chunk.subarray(pos + 4, end));
        }
      } else if (s?.kind === 'udp') {
        const sock = rtcp ? s.socket.rtcp : s.socket.rtp;
        try {
          sock.send(chunk.subarray(pos + 4, end), rtcp ? s.rtcpPort : s.rtpPort, s.host);
        } catch {
          // the session's sockets closed under a last write: nothing more to deliver
        }
      }
      pos = end;
    }
  }
}
