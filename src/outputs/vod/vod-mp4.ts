// `/NAME.mp4` of a VoD stream: a real MP4 with the moov first (containers/mp4/progressive.ts),
// laid out from the index before any media byte is read, so its size is known, byte ranges are
// honoured and a browser's <video> scrubs it by asking for the range a time falls in. A range
// is served by reading the file from the time of its first sample and handing out the samples
// in the layout's order. `?start=` / `?stop=` make the file of that part of the stream.

import type { MediaRequest, MediaResponder } from '../../protocols/http/media-server.js';
import { byteRange } from '../../protocols/http/media-server.js';
import { layoutProgressiveMp4, type ProgressiveLayout, type ProgressiveTrackInput } from '../../containers/mp4/progressive.js';
import type { Packet } from '../../media/types.js';
import type { Logger } from '../../util/log.js';
import { errorText } from '../../util/errors.js';
import type { VodFile } from '../../vod/vod-library.js';
import type { VodTrackIndex } from '../../vod/vod-index.js';
import { readVod, seekTime } from '../../vod/vod-reader.js';
import { MP4_FORMAT } from '../formats.js';
import { timeRange, vodSelection } from './vod-progressive.js';

interface Mp4Plan {
  layout: ProgressiveLayout;
  tracks: VodTrackIndex[];
  /** Each track's first part in the file (the layout's sample 0). */
  firstPart: number[];
  syncTrackId: number;
}

/** Layouts per file and request shape (selection, start, stop): built once, reused by every range request. */
const plans = new WeakMap<VodFile, Map<string, Mp4Plan>>();
const MAX_PLANS_PER_FILE = 16;

function planFor(file: VodFile, req: MediaRequest): Mp4Plan {
  const { selection, tracks } = vodSelection(file, MP4_FORMAT, req.query, req.path);
  const range = timeRange(req.query);
  const key = `${[...selection.ids].join(',')}|${range.startMs}|${range.stopMs ?? ''}`;
  let perFile = plans.get(file);
  if (!perFile) plans.set(file, (perFile = new Map()));
  const known = perFile.get(key);
  if (known) return known;
  const trackIds = tracks.map((t) => t.id);
  const fromMs = seekTime(file, { startMs: range.startMs, trackIds, syncTrackId: selection.syncTrackId });
  const indexes = trackIds.map((id) => file.index.tracks.find((t) => t.track.id === id)!);
  const firstPart = indexes.map((t) => t.partFrom(fromMs));
  const inputs: ProgressiveTrackInput[] = indexes.map((t, n) => {
    const first = firstPart[n]!;
    const end = range.stopMs === undefined ? t.partCount : t.partFrom(range.stopMs);
    const parts = t.tables.parts;
    const keyParts = new Set<number>();
    if (t.track.type === 'video') for (const k of t.keyFirstPart) keyParts.add(k);
    return {
      track: t.track,
      count: Math.max(0, end - first),
      timeMs: (i) => t.partTimeMs[first + i]!,
      offsetMs: (i) => parts[first + i]!.offsetMs,
      size: (i) => parts[first + i]!.sizeBytes,
      keyframe: (i) => t.track.type !== 'video' || keyParts.has(first + i),
    };
  });
  const plan: Mp4Plan = { layout: layoutProgressiveMp4(inputs), tracks: indexes, firstPart, syncTrackId: selection.syncTrackId };
  if (perFile.size >= MAX_PLANS_PER_FILE) perFile.delete(perFile.keys().next().value!);
  perFile.set(key, plan);
  return plan;
}

/** The samples from layout position `from` on, in layout order, read from the file. */
async function* samplesFrom(file: VodFile, plan: Mp4Plan, from: number): AsyncGenerator<{ at: number; data: Buffer }> {
  const { order } = plan.layout;
  const n = order.sample.length;
  // the earliest sample each track still needs: read from the earliest of their times
  const next = plan.tracks.map(() => -1);
  let missing = plan.tracks.length;
  for (let i = from; i < n && missing > 0; i++) {
    const t = order.track[i]!;
    if (next[t] === -1) {
      next[t] = order.sample[i]!;
      missing--;
    }
  }
  const startMs = Math.min(...plan.tracks.map((t, k) => (next[k]! >= 0 ? t.partTimeMs[plan.firstPart[k]! + next[k]!]! : Number.POSITIVE_INFINITY)));
  const queues: Packet[][] = plan.tracks.map(() => []);
  /** Layout sample index of each queue's head. */
  const headIndex = plan.tracks.map(() => -1);
  const reader = readVod(file, { startMs, trackIds: plan.tracks.map((t) => t.track.id), syncTrackId: plan.syncTrackId })[Symbol.asyncIterator]();
  const byId = new Map(plan.tracks.map((t, k) => [t.track.id, k]));
  try {
    for (let i = from; i < n; i++) {
      const t = order.track[i]!;
      const want = order.sample[i]!;
      for (;;) {
        while (queues[t]!.length === 0) {
          const r = await reader.next();
          if (r.done) throw new Error(`${file.file} ended before sample ${want} of track ${plan.tracks[t]!.track.id}`);
          const k = byId.get(r.value.trackId)!;
          if (headIndex[k] === -1) headIndex[k] = plan.tracks[k]!.partFrom(r.value.timeMs) - plan.firstPart[k]! - queues[k]!.length;
          queues[k]!.push(r.value);
        }
        if (headIndex[t]! >= want) break;
        queues[t]!.shift();
        headIndex[t]!++;
      }
      if (headIndex[t] !== want) throw new Error(`${file.file}: sample ${want} of track ${plan.tracks[t]!.track.id} not found`);
      const p = queues[t]!.shift()!;
      headIndex[t]!++;
      yield { at: order.offset[i]!, data: p.data };
    }
  } finally {
    await reader.return?.();
  }
}

export async function serveVodMp4(file: VodFile, req: MediaRequest, res: MediaResponder, headers: Record<string, string>, log: Logger): Promise<void> {
  const plan = planFor(file, req);
  const { layout } = plan;
  const total = layout.totalBytes;
  const range = byteRange(req.headers.range, total);
  if (range === 'unsatisfiable') {
    res.send(416, { 'Content-Range': `bytes */${total}`, ...headers }, '');
    return;
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? total - 1;
  const body = res.body(range ? 206 : 200, { 'Content-Type': 'video/mp4', 'Accept-Ranges': 'bytes', ...headers, ...(range ? { 'Content-Range': `bytes ${start}-${end}/${total}` } : {}) }, end - start + 1);
  if (req.head) return;
  try {
    const header = layout.header;
    if (start < header.length) await body.write(header.subarray(start, Math.min(header.length, end + 1)));
    if (end >= header.length) {
      const from = Math.max(0, layout.sampleAt(Math.max(start, header.length)));
      for await (const s of samplesFrom(file, plan, from)) {
        if (body.closed || s.at > end) break;
        const a = Math.max(start, s.at) - s.at;
        const b = Math.min(end + 1, s.at + s.data.length) - s.at;
        if (b > a) await body.write(a === 0 && b === s.data.length ? s.data : s.data.subarray(a, b));
        if (s.at + s.data.length > end) break;
      }
    }
  } catch (err) {
    // a body with a Content-Length cut short: the client sees the connection end early
    log.warn(`${req.path}: ${errorText(err)}`);
    body.abort();
  } finally {
    body.end();
  }
}
