// RTMP play of a VoD stream: FLV-bodied messages from `?start=` (ms, in the stream name's query),
// paced to real time with a lead (players buffer a few seconds; a whole file at network speed
// would only fill the client's memory), honouring the socket's back-pressure, `pause` and
// `seek` (NetStream.pause / NetStream.seek: reading restarts at the keyframe at or before the
// position, with the codec headers again).

import type { RtmpPlayOutput, RtmpPlaySource } from '../../protocols/rtmp/server-session.js';
import type { Logger } from '../../util/log.js';
import { errorText } from '../../util/errors.js';
import type { VodFile } from '../../vod/vod-library.js';
import { readVod, seekTime } from '../../vod/vod-reader.js';
import { FLV_CAPABILITY, makeRtmpWriter } from '../flv-writer.js';
import type { OutputFormat } from '../play.js';
import { timeRange, vodSelection } from './vod-progressive.js';

/** Media sent ahead of real time. */
const LEAD_MS = 3000;

const RTMP_VOD_FORMAT: OutputFormat = { name: 'RTMP', capability: FLV_CAPABILITY, makeWriter: makeRtmpWriter };

export function playVodRtmp(file: VodFile, query: URLSearchParams, out: RtmpPlayOutput, log: Logger): RtmpPlaySource & { positionMs(): number } {
  const { selection, tracks } = vodSelection(file, RTMP_VOD_FORMAT, query, file.file);
  const range = timeRange(query);
  const trackIds = tracks.map((t) => t.id);
  let run = 0;
  let paused = false;
  let positionMs = range.startMs;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });
  const drained = (): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
      const off = out.onDrain(() => {
        off();
        resolve();
      });
    });
  const interrupt = (): void => {
    if (timer) clearTimeout(timer);
    wake?.();
  };

  const play = async (fromMs: number): Promise<void> => {
    const mine = ++run;
    const opts = { startMs: fromMs, ...(range.stopMs === undefined ? {} : { stopMs: range.stopMs }), trackIds, syncTrackId: selection.syncTrackId };
    const writer = makeRtmpWriter();
    writer.setTracks(tracks);
    const startMs = seekTime(file, opts);
    out.write(writer.header(startMs));
    const wallStart = performance.now();
    try {
      for await (const p of readVod(file, opts)) {
        if (mine !== run || !out.open) return;
        const bytes = writer.packet(p);
        positionMs = p.timeMs;
        if (bytes && !out.write(bytes)) await drained();
        const ahead = p.timeMs - startMs - (performance.now() - wallStart);
        if (ahead > LEAD_MS) await sleep(ahead - LEAD_MS);
        if (mine !== run || !out.open) return;
      }
      if (mine === run) out.end('end of file');
    } catch (err) {
      log.warn(`RTMP VoD ${file.file}: ${errorText(err)}`);
      if (mine === run) out.close(errorText(err));
    }
  };
  void play(range.startMs);

  return {
    close: () => {
      run++;
      interrupt();
    },
    pause: (isPaused) => {
      if (isPaused === paused) return;
      paused = isPaused;
      run++;
      interrupt();
      if (!paused) void play(positionMs);
    },
    seek: (timeMs) => {
      positionMs = Math.max(0, timeMs);
      run++;
      interrupt();
      if (!paused) void play(positionMs);
    },
    positionMs: () => positionMs,
  };
}
