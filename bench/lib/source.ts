// The benchmark's source: a 2 Mbit/s FLV (H.264 720p30 + AAC), made once with ffmpeg and cached
// under bench/.cache/ (not committed). The encode settings are part of the cache key, so a
// change of settings makes a new file instead of silently reusing an old one.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { benchRoot } from './paths.js';

export const SOURCE_ARGS: readonly string[] = [
  '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30',
  '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
  '-t', '60',
  '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'high', '-pix_fmt', 'yuv420p',
  '-b:v', '1900k', '-maxrate', '2000k', '-bufsize', '2000k',
  '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-bf', '2',
  '-c:a', 'aac', '-b:a', '96k', '-ac', '2',
  '-f', 'flv',
];

/**
 * Path of the cached source FLV; encodes it first when missing (about 10 s on 2 cores).
 * `gopFrames` changes the keyframe interval (default 60: 2 s).
 */
export function ensureSource(gopFrames = 60): string {
  const args = SOURCE_ARGS.map((a, i) => (SOURCE_ARGS[i - 1] === '-g' || SOURCE_ARGS[i - 1] === '-keyint_min' ? String(gopFrames) : a));
  return encodeOnce('source-720p30-2mbps', args, 1_000_000);
}

/** `bench/.cache/LABEL-KEY.flv` made by ffmpeg with `args` (the key hashes them) unless it is there. */
export function encodeOnce(label: string, args: readonly string[], minBytes: number): string {
  const key = createHash('sha1').update(args.join(' ')).digest('hex').slice(0, 10);
  const dir = join(benchRoot, '.cache');
  const file = join(dir, `${label}-${key}.flv`);
  if (existsSync(file) && statSync(file).size > minBytes) return file;
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.part`;
  process.stderr.write(`bench: encoding source ${file} (once)\n`);
  const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, tmp], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`ffmpeg failed to make the source (exit ${r.status ?? r.signal})`);
  renameSync(tmp, file);
  return file;
}
