// rtsp:// pulls (reference §5.2: `rtsp://[user:pass@]host/...`, IP cameras and other RTSP
// servers): Haze plays the stream with its RTSP client (protocols/rtsp/client.ts), over TCP
// interleaved unless the source URL ends in `#udp` (a fragment never goes to the server), and
// feeds the hub through the reconnect loop of pull-input.ts. Wrong credentials or a path the
// server does not know abort the input; anything else is retried with backoff.

import { parseRtspUrl, RtspPlayClient } from '../../protocols/rtsp/client.js';
import { errorText } from '../../util/errors.js';
import { trackPullConnection } from './pull-common.js';
import { reconnectingPull, type PullConnection, type PullContext, type PullKind } from './pull-input.js';

export const rtspPull: PullKind = {
  name: 'RTSP',
  accepts: (source) => /^rtsp:\/\//i.test(source),
  start(ctx: PullContext) {
    const udp = /#udp$/i.test(ctx.source);
    const source = ctx.source.replace(/#.*$/, '');
    let host: string;
    try {
      host = parseRtspUrl(source).host;
    } catch (err) {
      ctx.aborted('BAD_SOURCE', errorText(err));
      return { stop: () => {} };
    }
    return reconnectingPull(
      ctx,
      async (sink): Promise<PullConnection> => {
        const client = await RtspPlayClient.play(source, sink, { log: ctx.log, transport: udp ? 'udp' : 'tcp' });
        const tracked = trackPullConnection(ctx, 'INPUT:RTSP', host, () => ({ down: 0, up: client.bytesIn }));
        void client.done.finally(() => tracked.end()).catch(() => undefined);
        return { done: client.done, close: () => client.close('pull stopped') };
      },
      { minDelayMs: 500, maxDelayMs: 15_000 },
    );
  },
};
