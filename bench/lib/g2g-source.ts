// Sources of the glass-to-glass benchmarks: short H.264 clips encoded once (encodeOnce, cached
// under bench/.cache/) and replayed in real time with a send-time stamp in each access unit
// (g2g-stamp.ts). Video only: the figures are about the video path, and WebRTC would need an
// Opus process for AAC. No B-frames, a keyframe each second, constrained baseline: what every
// protocol here (WebRTC included, which sends no B-frames) carries as it is.

import { readFileSync } from 'node:fs';
import { FLV_TAG_VIDEO, readFlvTags } from '../../src/containers/flv/tags.js';
import { encodeOnce } from './source.js';
import { isAvcFrameBody, stampFlvVideoBody, wallUs } from './g2g-stamp.js';

export interface ClipSpec {
  label: string;
  size: string;
  fps: number;
  kbps: number;
  seconds: number;
}

/** The latency clip: 640x360 25 fps ~1 Mbit/s. */
export const LATENCY_CLIP: ClipSpec = { label: 'g2g-360p25-1mbps', size: '640x360', fps: 25, kbps: 1000, seconds: 20 };
/** The WebRTC viewers clip: 1280x720 25 fps ~2 Mbit/s. */
export const VIEWERS_CLIP: ClipSpec = { label: 'g2g-720p25-2mbps', size: '1280x720', fps: 25, kbps: 2000, seconds: 20 };

/** The cached FLV of `spec` (H.264 only, keyframe every second), encoded on first use. */
export function ensureClip(spec: ClipSpec): string {
  const args = [
    '-f', 'lavfi', '-i', `testsrc2=size=${spec.size}:rate=${spec.fps}`,
    '-t', String(spec.seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'baseline', '-pix_fmt', 'yuv420p',
    '-b:v', `${spec.kbps}k`, '-maxrate', `${spec.kbps}k`, '-bufsize', `${spec.kbps}k`,
    '-g', String(spec.fps), '-keyint_min', String(spec.fps), '-sc_threshold', '0', '-bf', '0',
    '-an', '-f', 'flv',
  ];
  return encodeOnce(spec.label, args, (spec.kbps * 1000 * spec.seconds) / 8 / 4);
}

export interface ClipFrame {
  /** FLV video tag body without a stamp. */
  body: Buffer;
  keyframe: boolean;
  /** Milliseconds from the first frame. */
  offsetMs: number;
}

export interface Clip {
  /** The AVC sequence header tag body (AVCDecoderConfigurationRecord behind 5 bytes). */
  sequenceHeader: Buffer;
  frames: ClipFrame[];
  frameMs: number;
  /** One pass of the clip; a loop adds this to every timestamp. */
  loopMs: number;
}

export function loadClip(file: string, fps: number): Clip {
  const { tags } = readFlvTags(readFileSync(file));
  const video = tags.filter((t) => t.type === FLV_TAG_VIDEO);
  const seq = video.find((t) => t.body.length > 5 && (t.body[0]! & 0x0f) === 7 && t.body[1] === 0);
  if (!seq) throw new Error(`${file}: no AVC sequence header`);
  const coded = video.filter((t) => isAvcFrameBody(t.body));
  if (coded.length === 0) throw new Error(`${file}: no video frames`);
  const t0 = coded[0]!.timeMs;
  const frameMs = 1000 / fps;
  return {
    sequenceHeader: seq.body,
    frames: coded.map((t) => ({ body: t.body, keyframe: t.body[0]! >> 4 === 1, offsetMs: t.timeMs - t0 })),
    frameMs,
    loopMs: coded[coded.length - 1]!.timeMs - t0 + frameMs,
  };
}

export interface PacedFrame {
  /** Stamped FLV video tag body. */
  body: Buffer;
  keyframe: boolean;
  /** Media timestamp, ms, continuous over loops. */
  timeMs: number;
  /** The send time stamped in the frame. */
  sentUs: number;
}

/**
 * Hands out the clip's frames at their real-time due times, looping with continuous
 * timestamps, each stamped with the wall time at which it is handed out (the sink writes it to
 * its socket or pipe at once).
 */
export class Pacer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  frames = 0;
  /** Video bytes handed out (NAL units with their 4-byte lengths, stamp included). */
  bytes = 0;

  constructor(
    private readonly clip: Clip,
    private readonly sink: (f: PacedFrame) => void,
  ) {}

  start(): void {
    const startMs = performance.now() + 20;
    let index = 0;
    let loop = 0;
    const tick = (): void => {
      if (this.stopped) return;
      for (;;) {
        const f = this.clip.frames[index]!;
        const ts = f.offsetMs + loop * this.clip.loopMs;
        const wait = startMs + ts - performance.now();
        if (wait > 0) {
          this.timer = setTimeout(tick, Math.max(1, Math.min(50, wait)));
          return;
        }
        const us = wallUs();
        const body = stampFlvVideoBody(f.body, us);
        this.sink({ body, keyframe: f.keyframe, timeMs: Math.round(ts), sentUs: us });
        this.frames++;
        this.bytes += body.length - 5;
        if (++index === this.clip.frames.length) {
          index = 0;
          loop++;
        }
      }
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
