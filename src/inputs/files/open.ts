// Opens a media file by its extension with the reader for its container (file-source.ts).

import path from 'node:path';
import { HazeError } from '../../util/errors.js';
import type { FileSource, FileSourceOpener } from './file-source.js';
import { openFlvSource } from './flv.js';
import { openDtscSource } from './dtsc.js';
import { openMp3Source } from './mp3.js';
import { openAdtsSource } from './adts.js';
import { openWavSource } from './wav.js';
import { openTsSource } from './ts.js';
import { openMkvSource } from './mkv.js';
import { openMp4Source } from './mp4.js';

const OPENERS: Readonly<Record<string, FileSourceOpener>> = {
  flv: openFlvSource,
  dtsc: openDtscSource,
  mp3: openMp3Source,
  aac: openAdtsSource,
  wav: openWavSource,
  ts: openTsSource,
  m2ts: openTsSource,
  mkv: openMkvSource,
  mka: openMkvSource,
  webm: openMkvSource,
  mp4: openMp4Source,
  mov: openMp4Source,
  m4a: openMp4Source,
  m4v: openMp4Source,
};

/** Extensions Haze reads as media files. */
export const MEDIA_FILE_EXTENSIONS: readonly string[] = Object.keys(OPENERS);

export function extensionOf(file: string): string {
  return path.extname(file).slice(1).toLowerCase();
}

export function isMediaFile(file: string): boolean {
  return OPENERS[extensionOf(file)] !== undefined;
}

/** The reader for `file`; HAZE_ERR_UNSUPPORTED for extensions Haze cannot read. */
export function openFileSource(file: string): Promise<FileSource> {
  const open = OPENERS[extensionOf(file)];
  if (!open) throw new HazeError('HAZE_ERR_UNSUPPORTED', `${file}: cannot read .${extensionOf(file)} files (readable: ${MEDIA_FILE_EXTENSIONS.join(', ')})`);
  return open(file);
}
