// A `.pls` playlist as a live stream (reference §5.2, MistServer's Playlist input): its entries
// play in order, in real time, over and over, into the stream's hub, so every live output
// serves it. Entries are media file paths, one per line (`#` comments), or the INI form
// `FileN=path` of the classic .pls format; relative paths resolve against the playlist's
// folder, and no entry may lie outside that folder. Media time runs on across entries; tracks
// keep their hub ids by kind (the first video track is 1, the first audio track 2, ...), so a
// player sees one stream whose codec settings may change at an entry boundary.

import fs from 'node:fs/promises';
import path from 'node:path';
import type { StreamHub } from '../hub/stream-hub.js';
import type { Track } from '../media/types.js';
import { HazeError, errorText } from '../util/errors.js';
import type { Logger } from '../util/log.js';
import { isMediaFile } from './files/open.js';
import type { VodLibrary } from '../vod/vod-library.js';
import { readVod } from '../vod/vod-reader.js';

/** Largest playlist file read. */
const MAX_PLAYLIST_BYTES = 1024 * 1024;
/** Pause before playing the list again when none of its entries could be played. */
const RETRY_MS = 5_000;

/** The entries of a playlist's text, in order (paths as written). */
export function parsePlaylist(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const ini = /^File\d+=(.*)$/i.exec(line);
    if (ini) out.push(ini[1]!.trim());
    else if (!/^(Title|Length|NumberOfEntries|Version)\d*=/i.test(line)) out.push(line);
  }
  return out;
}

/** The entries' real paths; HAZE_ERR_NOT_FOUND for an entry outside the playlist's folder or not a media file. */
export async function resolvePlaylist(file: string): Promise<string[]> {
  const st = await fs.stat(file);
  if (st.size > MAX_PLAYLIST_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `${file}: playlist of ${st.size} bytes`);
  const root = await fs.realpath(path.dirname(file));
  const out: string[] = [];
  for (const entry of parsePlaylist(await fs.readFile(file, 'utf8'))) {
    const real = await fs.realpath(path.resolve(root, entry)).catch(() => undefined);
    if (!real || !real.startsWith(root + path.sep) || !isMediaFile(real)) throw new HazeError('HAZE_ERR_NOT_FOUND', `${file}: entry ${JSON.stringify(entry)} is not a media file inside ${root}`);
    out.push(real);
  }
  if (out.length === 0) throw new HazeError('HAZE_ERR_NOT_FOUND', `${file}: no entries`);
  return out;
}

function hubIds(tracks: readonly Track[]): Map<number, number> {
  const ids = new Map<number, number>();
  const byKind = { video: 1, audio: 2, meta: 3, subtitle: 3 };
  const used = new Set<number>();
  for (const t of tracks) {
    let id = byKind[t.type];
    while (used.has(id)) id += 3;
    used.add(id);
    ids.set(t.id, id);
  }
  return ids;
}

/**
 * Plays `file`'s entries into `hub` until stop() is called; returns the handle. With `onAbort`,
 * a playlist that cannot be read or has no playable entry ends the input (INPUT_ABORT's machine
 * and human reasons) instead of being tried again every few seconds.
 */
export function playPlaylist(file: string, hub: StreamHub, library: VodLibrary, log: Logger, onAbort?: (machineReason: string, humanReason: string) => void): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    });
  void (async () => {
    let mediaMs = 0;
    const wallStart = performance.now();
    let current: number[] = [];
    while (!stopped) {
      let played = 0;
      let entries: string[];
      try {
        entries = await resolvePlaylist(file);
      } catch (err) {
        log.warn(`playlist ${file}: ${errorText(err)}`);
        if (onAbort && !stopped) {
          stopped = true;
          onAbort(err instanceof HazeError ? err.code : ((err as NodeJS.ErrnoException).code ?? 'ERROR'), errorText(err));
          return;
        }
        entries = [];
      }
      for (const entry of entries) {
        if (stopped) return;
        try {
          const vod = await library.open(entry);
          const tracks = vod.index.tracks.map((t) => t.track);
          const ids = hubIds(tracks);
          for (const id of current) if (![...ids.values()].includes(id)) hub.removeTrack(id);
          for (const t of tracks) hub.setTrack({ ...t, id: ids.get(t.id)! });
          current = [...ids.values()];
          const startMs = vod.index.startMs;
          let lastMs = mediaMs;
          for await (const p of readVod(vod, { startMs, trackIds: tracks.map((t) => t.id) })) {
            if (stopped) return;
            const timeMs = mediaMs + p.timeMs - startMs;
            const ahead = timeMs - (performance.now() - wallStart);
            if (ahead > 0) await sleep(ahead);
            if (stopped) return;
            hub.push({ trackId: ids.get(p.trackId)!, timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, data: p.data });
            lastMs = Math.max(lastMs, timeMs);
          }
          mediaMs = Math.max(lastMs + 1, mediaMs + vod.index.endMs - startMs);
          played++;
        } catch (err) {
          log.warn(`playlist ${file}: skipping ${entry}: ${errorText(err)}`);
        }
      }
      if (played === 0 && !stopped) {
        if (onAbort) {
          stopped = true;
          onAbort('HAZE_ERR_NOT_FOUND', `${file}: none of its ${entries.length} entries could be played`);
          return;
        }
        await sleep(RETRY_MS);
      }
    }
  })();
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
