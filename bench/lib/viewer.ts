// What the load generator needs from a viewer, whatever its protocol.

export interface Viewer {
  readonly sampled: boolean;
  /** Media bytes received so far (after the HTTP header / RTMP connection setup). */
  bytes: number;
  /** Wall ms when the connection was opened, and when the first video frame arrived (0: none). */
  connectStartMs: number;
  firstVideoMs: number;
  error: string | undefined;
  closed: boolean;
  start(): void;
  stop(): void;
}

export interface ViewerSink {
  /** A sampled viewer got a coded video frame (tag timestamp, FLV video tag body, receive wall ms). */
  onVideoFrame(v: Viewer, timeMs: number, body: Buffer, recvWallMs: number): void;
}
