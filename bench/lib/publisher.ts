// Publisher child process: reads the source FLV once (FlvTagReader), pushes it over RTMP with
// Haze's RtmpClient in real time, looping with continuous timestamps, and reports to the parent
// the wall time at which each video frame (by its timestamp, also stamped in-band, see
// stamp.ts) was handed to the socket, with the media bytes sent so far.
// Run as a child: node dist/bench/lib/publisher.js

import { readFileSync } from 'node:fs';
import { decodeAmf0 } from '../../src/containers/amf/amf0.js';
import { FLV_TAG_AUDIO, FLV_TAG_SCRIPT, FLV_TAG_VIDEO, readFlvTags } from '../../src/containers/flv/tags.js';
import type { FlvTag } from '../../src/containers/flv/tags.js';
import { RtmpClient } from '../../src/protocols/rtmp/client.js';
import type { PublisherEvent, PublisherRequest } from './ipc.js';
import type { Endpoint } from './servers.js';
import { isAvcFrame, stampVideoBody } from './stamp.js';

const now = (): number => performance.timeOrigin + performance.now();

function send(ev: PublisherEvent): void {
  process.send?.(ev);
}

/** Sequence headers: AVC (AVCPacketType 0) and AAC (AACPacketType 0), sent once at the start. */
function isSequenceHeader(tag: FlvTag): boolean {
  if (tag.type === FLV_TAG_VIDEO) return tag.body.length > 1 && tag.body[1] === 0 && (tag.body[0]! & 0x0f) === 7;
  if (tag.type === FLV_TAG_AUDIO) return tag.body.length > 1 && tag.body[0]! >> 4 === 10 && tag.body[1] === 0;
  return false;
}

let client: RtmpClient | undefined;
let stopping = false;

async function publish(ep: Endpoint, sourceFile: string): Promise<void> {
  const { tags } = readFlvTags(readFileSync(sourceFile));
  const media = tags.filter((t) => t.type === FLV_TAG_AUDIO || t.type === FLV_TAG_VIDEO);
  if (media.length === 0) throw new Error('source has no media tags');
  const script = tags.find((t) => t.type === FLV_TAG_SCRIPT);
  const firstTs = media[0]!.timeMs;
  // One loop lasts the file's span plus one video frame, so timestamps stay increasing.
  const loopMs = media[media.length - 1]!.timeMs - firstTs + 34;

  client = new RtmpClient({ timeoutMs: 10000 });
  client.on('close', (reason) => {
    if (!stopping) {
      send({ type: 'error', message: `connection closed: ${reason}` });
      setTimeout(() => process.exit(1), 100);
    }
  });
  await client.connect(`rtmp://${ep.host}:${ep.port}/${ep.app}`);
  await client.publish(ep.stream);
  if (script) {
    const values = decodeAmf0(script.body);
    if (values[0] === 'onMetaData' && values[1] !== undefined) client.sendMetaData(values[1]);
  }
  send({ type: 'publishing', wallMs: now() });

  const c = client;
  const startWall = now() + 20;
  let index = 0;
  let loop = 0;
  let bytes = 0;
  let recs: number[] = [];
  const flush = setInterval(() => {
    if (recs.length > 0) send({ type: 'frames', recs });
    recs = [];
  }, 250);
  flush.unref();

  const tick = (): void => {
    if (stopping || c.closed) return;
    const t = now();
    for (;;) {
      const tag = media[index]!;
      const ts = tag.timeMs - firstTs + loop * loopMs;
      const due = startWall + ts;
      if (due > t) {
        setTimeout(tick, Math.max(1, Math.min(50, due - t)));
        return;
      }
      if (loop === 0 || !isSequenceHeader(tag)) {
        if (tag.type === FLV_TAG_VIDEO && isAvcFrame(tag.body)) {
          const body = stampVideoBody(tag.body, ts);
          c.sendMedia(9, ts, body);
          bytes += body.length;
          recs.push(ts, now(), bytes);
        } else {
          c.sendMedia(tag.type === FLV_TAG_VIDEO ? 9 : 8, ts, tag.body);
          bytes += tag.body.length;
        }
      }
      index++;
      if (index === media.length) {
        index = 0;
        loop++;
      }
    }
  };
  tick();
}

process.on('message', (msg: PublisherRequest) => {
  if (msg.type === 'start') {
    publish(msg.endpoint, msg.sourceFile).catch((e: unknown) => {
      send({ type: 'error', message: (e as Error).message });
      setTimeout(() => process.exit(1), 100);
    });
  } else if (msg.type === 'stop') {
    stopping = true;
    const done = (): void => process.exit(0);
    if (client && !client.closed) {
      client.close().then(done, done);
      setTimeout(done, 2500).unref();
    } else done();
  }
});
process.on('disconnect', () => process.exit(0));
