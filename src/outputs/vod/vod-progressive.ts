// Progressive outputs of a VoD stream (`/NAME.flv`, `.ts`, `.mkv`, `.webm`, `.mp3` ...): the
// format's writer over the file read from `?start=` (ms; the keyframe at or before it) to
// `?stop=` (ms), written as fast as the client takes it (back-pressure, no buffering beyond
// the socket's). Each viewer reads its own position; the index and the reader are shared.

import type { MediaRequest, MediaResponder } from '../../protocols/http/media-server.js';
import type { Track } from '../../media/types.js';
import type { Logger } from '../../util/log.js';
import { HazeError } from '../../util/errors.js';
import type { VodFile } from '../../vod/vod-library.js';
import { readVod, seekTime } from '../../vod/vod-reader.js';
import type { OutputFormat } from '../play.js';
import { selectorQuery } from '../play.js';
import { selectTracks } from '../track-select.js';
import type { TrackSelection } from '../feed.js';

/** `?start=` / `?stop=` in ms (reference §6.3); HAZE_ERR_INVALID_ARG (400) for other text. */
export function timeRange(query: URLSearchParams): { startMs: number; stopMs?: number } {
  const num = (key: string): number | undefined => {
    const v = query.get(key);
    if (v === null || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `?${key}= must be a time in ms, not ${JSON.stringify(v)}`, { status: 400 });
    return n;
  };
  const startMs = num('start') ?? 0;
  const stopMs = num('stop');
  if (stopMs !== undefined && stopMs <= startMs) throw new HazeError('HAZE_ERR_INVALID_ARG', `?stop= (${stopMs}) must come after ?start= (${startMs})`, { status: 400 });
  return stopMs === undefined ? { startMs } : { startMs, stopMs };
}

/** The tracks of `file` a format carries under the request's selection; 415 when none fits. */
export function vodSelection(file: VodFile, format: OutputFormat, query: URLSearchParams, what: string): { selection: TrackSelection; tracks: Track[] } {
  const all = file.index.tracks.map((t) => t.track);
  const selection = selectTracks(all, selectorQuery(query), format.capability);
  const tracks = all.filter((t) => selection.ids.has(t.id));
  if (tracks.length === 0) throw new HazeError('HAZE_ERR_UNSUPPORTED', `No track of ${what} (${all.map((t) => t.codec).join(', ')}) fits this format with this selection`, { status: 415 });
  return { selection, tracks };
}

/** How often a viewer at the end of a file that is still being written looks for more. */
const GROWING_POLL_MS = 1000;

/**
 * Writes the file from `?start=` to `?stop=`. A file still being written (a recording) is
 * followed: at its current end the viewer waits for more (`reopen` gives the newer index) and
 * goes on where it was, until the file is finished.
 */
export async function serveVodProgressive(
  file: VodFile,
  format: OutputFormat,
  contentType: string,
  req: MediaRequest,
  res: MediaResponder,
  headers: Record<string, string>,
  log: Logger,
  reopen?: () => Promise<VodFile>,
): Promise<void> {
  const { selection, tracks } = vodSelection(file, format, req.query, req.path);
  const range = timeRange(req.query);
  const trackIds = tracks.map((t) => t.id);
  const body = res.body(200, { 'Content-Type': contentType, ...headers });
  if (req.head) return;
  const writer = format.makeWriter();
  writer.setTracks(tracks);
  const opts = { ...range, trackIds, syncTrackId: selection.syncTrackId };
  await body.write(writer.header(seekTime(file, opts)));
  /** The newest time written per track: what a re-read after the file grew skips. */
  const sent = new Map<number, number>();
  try {
    for (let current = file; ; ) {
      const from = sent.size > 0 ? Math.min(...sent.values()) : opts.startMs;
      for await (const p of readVod(current, { ...opts, startMs: from })) {
        if (body.closed) return;
        if (p.timeMs <= (sent.get(p.trackId) ?? Number.NEGATIVE_INFINITY)) continue;
        sent.set(p.trackId, p.timeMs);
        const bytes = writer.packet(p);
        if (bytes) await body.write(bytes);
      }
      if (!current.growing || !reopen || body.closed) break;
      await new Promise((resolve) => setTimeout(resolve, GROWING_POLL_MS));
      current = await reopen();
    }
  } catch (err) {
    // headers are out: all that is left is to cut the body short
    log.warn(`${req.path}: ${(err as Error).message}`);
    body.abort();
  } finally {
    body.end();
  }
}
