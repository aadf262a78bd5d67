// Which streams are video on demand, and the file each name plays (reference §5.2): a stream
// whose source is a media file plays it (and so do its wildcard instances); a stream whose
// source is a folder plays `NAME+file.ext` from that folder (sub-folders too: `NAME+dir/f.mp4`);
// the extension may be left out (`/NAME+file.mp4` is then the MP4 output of file.flv, say).
// A name never reaches a file outside its folder: the path is resolved, symbolic links
// included, and must stay inside the folder's own real path.

import fs from 'node:fs/promises';
import path from 'node:path';
import { isMediaFile } from '../inputs/files/open.js';
import { HazeError } from '../util/errors.js';
import { baseName } from '../util/stream-name.js';
import type { VodFile, VodLibrary } from './vod-library.js';

export type VodSourceKind = 'file' | 'folder';

/** What a configured source is, for the VoD side: a file, a folder, or not VoD (undefined). */
export function vodSourceKind(source: string | undefined): VodSourceKind | undefined {
  if (!source || /^[a-z][a-z0-9+.-]*:/i.test(source)) return undefined; // push://, URLs, ts-exec: ...
  if (source.endsWith('/')) return 'folder';
  if (isMediaFile(source)) return 'file';
  return undefined;
}

function wildcardOf(name: string): string {
  const plus = name.indexOf('+');
  return plus < 0 ? '' : name.slice(plus + 1);
}

/**
 * The file stream `name` plays, given its configured source; HAZE_ERR_NOT_FOUND when the name
 * does not name a playable file (a folder stream without `+file`, a path leaving the folder,
 * an extension Haze cannot read, a missing file).
 */
export async function vodFileFor(name: string, source: string): Promise<string> {
  const kind = vodSourceKind(source);
  if (kind === 'file') return path.resolve(source);
  const sub = wildcardOf(name);
  if (kind !== 'folder' || !sub) throw new HazeError('HAZE_ERR_NOT_FOUND', `Stream not found: ${name} (its source ${source} is a folder: play ${baseName(name)}+FILE)`, { status: 404 });
  let root: string;
  try {
    root = await fs.realpath(source);
  } catch {
    throw new HazeError('HAZE_ERR_NOT_FOUND', `Stream not found: ${name} (folder ${source} does not exist)`, { status: 404 });
  }
  const wanted = path.resolve(root, sub);
  const real = (await fs.realpath(wanted).catch(() => undefined)) ?? (await withoutExtension(wanted));
  if (!real) throw new HazeError('HAZE_ERR_NOT_FOUND', `Stream not found: ${name} (no file ${sub} in ${source})`, { status: 404 });
  if (!real.startsWith(root + path.sep)) throw new HazeError('HAZE_ERR_NOT_FOUND', `Stream not found: ${name} (outside its folder)`, { status: 404 });
  if (!isMediaFile(real)) throw new HazeError('HAZE_ERR_NOT_FOUND', `Stream not found: ${name} (not a media file Haze reads)`, { status: 404 });
  return real;
}

/** The real path of the media file `base.EXT` in base's folder (the first in name order), if any. */
async function withoutExtension(base: string): Promise<string | undefined> {
  const dir = path.dirname(base);
  const prefix = `${path.basename(base)}.`;
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const match = names.sort().find((n) => n.startsWith(prefix) && isMediaFile(n) && !n.slice(prefix.length).includes('.'));
  return match ? fs.realpath(path.join(dir, match)).catch(() => undefined) : undefined;
}

export class VodStreams {
  constructor(
    /** The configured source of a stream (or its wildcard base), undefined if not configured. */
    private readonly sourceOf: (name: string) => string | undefined,
    readonly library: VodLibrary,
    /** The source to open instead of the configured one (STREAM_SOURCE), if any. */
    private readonly resolveSource?: (name: string, configured: string) => Promise<string>,
  ) {}

  /** True when `name` is configured with a file or folder source. */
  isVod(name: string): boolean {
    return vodSourceKind(this.sourceOf(name)) !== undefined;
  }

  /** The indexed file of a VoD stream; HAZE_ERR_NOT_FOUND (404) when it has none. */
  async open(name: string): Promise<VodFile> {
    const source = this.sourceOf(name);
    if (!source) throw new HazeError('HAZE_ERR_NOT_FOUND', `Stream not found: ${name}`, { status: 404 });
    const resolved = this.resolveSource ? await this.resolveSource(name, source) : source;
    // a replacement must itself be a file or folder source: a VoD stream stays a VoD stream
    return this.library.open(await vodFileFor(name, vodSourceKind(resolved) ? resolved : source));
  }
}
