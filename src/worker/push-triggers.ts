// The triggers every incoming push passes, whatever its protocol (reference §5.4): PUSH_REWRITE
// may give the stream another name (an empty answer refuses the push), then STREAM_PUSH may
// refuse it. RTMP asks RTMP_PUSH_REWRITE before these (rtmp-handler.ts).

import type { TriggerDispatcher } from '../triggers/dispatch.js';
import { HazeError } from '../util/errors.js';
import { sanitizeStreamName } from '../util/stream-name.js';

export interface IncomingPush {
  /** The URL the publisher asked for (rtmp://host/app/name, dtsc://host/name ...). */
  url: string;
  host: string;
  /** The stream name parsed from it. */
  stream: string;
  /** MistServer's connector name (RTMP, DTSC ...). */
  connector: string;
}

/** The stream the push goes to after PUSH_REWRITE; throws HAZE_ERR_REFUSED when a trigger refuses it. */
export async function incomingPushTriggers(triggers: TriggerDispatcher, p: IncomingPush): Promise<string> {
  let stream = p.stream;
  if (triggers.hasHandlers('PUSH_REWRITE', '')) {
    const r = await triggers.fire('PUSH_REWRITE', '', { pushUrl: p.url, host: p.host, stream });
    stream = sanitizeStreamName(r.response.trim());
    if (!stream) throw new HazeError('HAZE_ERR_REFUSED', 'push refused by PUSH_REWRITE');
  }
  if (stream && !(await triggers.fire('STREAM_PUSH', stream, { stream, host: p.host, connector: p.connector, requestUrl: p.url })).allowed) {
    throw new HazeError('HAZE_ERR_REFUSED', `push of ${stream} refused by STREAM_PUSH`);
  }
  return stream;
}
