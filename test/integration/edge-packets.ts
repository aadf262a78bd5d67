// Whether an edge serves its origin's packets: the video packets (framemd5, copied) of a viewer
// of each, watched at once. The test pattern is new every frame, so a packet of another
// publisher or another origin matches none.

import assert from 'node:assert/strict';
import { parseFramemd5, runOk, sleep, type FrameLine } from '../helpers.js';
import type { HazeInstance } from './harness.js';

/** The video packets (framemd5 of stream 0, copied) a viewer of `url` gets in `seconds`. */
export async function videoOf(url: string, seconds: number): Promise<FrameLine[]> {
  const args = ['-v', 'error', '-rw_timeout', '10000000', '-i', url, '-map', '0:v:0', '-c', 'copy', '-t', String(seconds), '-f', 'framemd5', '-'];
  return parseFramemd5((await runOk('ffmpeg', args, { timeoutMs: 15_000 })).toString()).filter((f) => f.stream === 0);
}

/**
 * Watches the origin's `stream` (4 s) and, from 1.2 s on, the edge's `edgeStream` (2 s): every
 * video packet the edge shows must be one of the origin's. (Each viewer starts at its server's
 * newest keyframe, the edge's up to a GOP older than the origin's; the test pattern has one a
 * second.) Returns the packet counts.
 */
export async function edgeShowsOrigin(origin: HazeInstance, edge: HazeInstance, what: string, stream: string, edgeStream = stream): Promise<{ edge: number; origin: number }> {
  const [o, e] = await Promise.all([videoOf(origin.httpUrl(`/${stream}.flv`), 4), sleep(1200).then(() => videoOf(edge.httpUrl(`/${edgeStream}.flv`), 2))]);
  const hashes = new Set(o.map((f) => f.hash));
  assert.ok(e.length >= 40, `${what}: the edge viewer got only ${e.length} video packets in 2 s`);
  const foreign = e.filter((f) => !hashes.has(f.hash)).length;
  // a frame or two at the edge reader's end may come after the origin reader stopped
  assert.ok(foreign <= 3, `${what}: ${foreign} of the edge's ${e.length} video packets are not the origin's (${o.length})`);
  return { edge: e.length, origin: o.length };
}
