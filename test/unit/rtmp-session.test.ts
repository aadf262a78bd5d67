// RtmpServerSession driven by scripted client byte sequences (handshake + chunked commands
// built by hand), checking the exact replies a publisher/player gets, the handler calls, the
// rejection status codes, acks/pings, and idempotent close.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeAmf0, amf0Get, type Amf0Value } from '../../src/containers/amf/amf0.js';
import { ChunkReader, type RtmpMessage } from '../../src/protocols/rtmp/chunk-reader.js';
import { encodeMessageType0 } from '../../src/protocols/rtmp/chunk-writer.js';
import {
  decodeCommand,
  decodeData,
  decodeUserControl,
  encodeCommand,
  encodeSetDataFrame,
  encodeUserControl,
  encodeWindowAckSize,
  type RtmpCommand,
} from '../../src/protocols/rtmp/messages.js';
import {
  RtmpServerSession,
  type RtmpPlayOutput,
  type RtmpPlaySource,
  type RtmpPublishSink,
  type RtmpSessionHandler,
  type RtmpStreamRequest,
} from '../../src/protocols/rtmp/server-session.js';
import { HazeError } from '../../src/util/errors.js';

const C0C1 = (() => {
  const b = Buffer.alloc(1537);
  b[0] = 3;
  for (let i = 9; i < b.length; i++) b[i] = i & 0xff;
  return b;
})();
const C2 = Buffer.alloc(1536, 7);

/** A command message as a client sends it (chunk size 128, csid 3). */
const cmd = (name: string, txn: number, obj: Amf0Value, ...args: Amf0Value[]): Buffer => encodeMessageType0(3, 20, 0, 0, encodeCommand(name, txn, obj, ...args), 128);
const streamCmd = (msid: number, name: string, txn: number, ...args: Amf0Value[]): Buffer => encodeMessageType0(8, 20, 0, msid, encodeCommand(name, txn, null, ...args), 128);
const media = (typeId: number, ts: number, body: Buffer, msid = 1): Buffer => encodeMessageType0(typeId === 8 ? 4 : typeId === 9 ? 6 : 5, typeId, ts, msid, body, 128);
const CONNECT = cmd('connect', 1, { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0', tcUrl: 'rtmp://127.0.0.1/live', objectEncoding: 3 });

interface Reply {
  typeId: number;
  csid: number;
  streamId: number;
  timestamp: number;
  body: Buffer;
  cmd?: RtmpCommand;
}

class Harness {
  readonly sent: Buffer[] = [];
  private consumed = 0;
  private handshakeSkipped = 0;
  private readonly reader = new ChunkReader();
  closedWith: string[] = [];
  readonly session: RtmpServerSession;

  constructor(handler: RtmpSessionHandler) {
    this.session = new RtmpServerSession({
      send: (b) => {
        this.sent.push(Buffer.from(b));
        return true;
      },
      handler,
      peer: '192.0.2.1',
      onClose: (r) => this.closedWith.push(r),
    });
  }

  feed(...bufs: Buffer[]): this {
    for (const b of bufs) this.session.receive(b);
    return this;
  }

  /** Replies sent since the last call, decoded (handshake bytes skipped). */
  replies(): Reply[] {
    const out: Reply[] = [];
    for (; this.consumed < this.sent.length; this.consumed++) {
      let b = this.sent[this.consumed]!;
      if (this.handshakeSkipped < 3073) {
        const n = Math.min(3073 - this.handshakeSkipped, b.length);
        this.handshakeSkipped += n;
        b = b.subarray(n);
      }
      for (const m of this.reader.push(b)) out.push(decorate(m));
    }
    return out;
  }
}

function decorate(m: RtmpMessage): Reply {
  const r: Reply = { typeId: m.typeId, csid: m.csid, streamId: m.streamId, timestamp: m.timestamp, body: m.body };
  if (m.typeId === 20) r.cmd = decodeCommand(20, m.body);
  return r;
}

/** A compact, comparable description of a reply. */
function describe(r: Reply): string {
  if (r.cmd) {
    const info = r.cmd.args[0];
    const code = amf0Get(info, 'code');
    return `${r.cmd.name}#${r.cmd.transactionId}@${r.streamId}${typeof code === 'string' ? ' ' + code : ''}`;
  }
  if (r.typeId === 4) {
    const ev = decodeUserControl(r.body);
    return `uc${ev.event}:${ev.value}`;
  }
  if (r.typeId === 18) return `data ${String(decodeData(18, r.body)[0])}`;
  if (r.typeId <= 6) return `ctl${r.typeId}:${r.body.toString('hex')}`;
  return `media${r.typeId}@${r.timestamp}:${r.body.toString('hex')}`;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

interface Recorded {
  reqs: RtmpStreamRequest[];
  media: [number, number, string][];
  closes: string[];
}

function recordingHandler(rec: Recorded, opts: { publishError?: unknown; playError?: unknown; onPlay?: (out: RtmpPlayOutput) => void; source?: Partial<RtmpPlaySource> } = {}): RtmpSessionHandler {
  return {
    async publish(req) {
      rec.reqs.push(req);
      if (opts.publishError) throw opts.publishError;
      const sink: RtmpPublishSink = {
        media: (t, ts, body) => rec.media.push([t, ts, body.toString('hex')]),
        close: (reason) => rec.closes.push(`sink:${reason}`),
      };
      return sink;
    },
    async play(req, out) {
      rec.reqs.push(req);
      if (opts.playError) throw opts.playError;
      opts.onPlay?.(out);
      return { close: (reason: string) => rec.closes.push(`source:${reason}`), ...opts.source };
    },
  };
}

test('publisher script: connect, releaseStream, FCPublish, createStream, publish, media, FCUnpublish', async () => {
  const rec: Recorded = { reqs: [], media: [], closes: [] };
  const h = new Harness(recordingHandler(rec));
  h.feed(C0C1);
  assert.equal(h.sent.length, 1);
  assert.equal(h.sent[0]!.length, 3073, 'S0+S1+S2 in one write');
  assert.equal(h.session.phase, 'handshake');
  h.feed(C2, CONNECT);
  const connectReplies = h.replies();
  assert.deepEqual(connectReplies.map(describe), [
    'ctl5:002625a0',
    'ctl6:002625a002',
    'ctl1:00001000',
    '_result#1@0 NetConnection.Connect.Success',
    'onBWDone#0@0',
  ]);
  const result = connectReplies[3]!.cmd!;
  assert.equal(amf0Get(result.commandObject, 'fmsVer'), 'FMS/3,5,7,7009');
  assert.equal(amf0Get(result.commandObject, 'capabilities'), 31);
  assert.equal(amf0Get(result.args[0], 'objectEncoding'), 3, 'objectEncoding echoed');
  assert.equal(h.session.phase, 'connected');

  h.feed(cmd('releaseStream', 2, null, 'key?x=1'), cmd('FCPublish', 3, null, 'key?x=1'), cmd('createStream', 4, null));
  assert.deepEqual(h.replies().map(describe), ['_result#2@0', '_result#3@0', 'onFCPublish#0@0 NetStream.Publish.Start', '_result#4@0']);
  h.feed(streamCmd(1, 'publish', 5, 'key?x=1', 'live'));
  await tick();
  assert.deepEqual(h.replies().map(describe), ['onStatus#0@1 NetStream.Publish.Start']);
  assert.deepEqual(rec.reqs, [{ app: 'live', name: 'key?x=1', tcUrl: 'rtmp://127.0.0.1/live', peer: '192.0.2.1', publishType: 'live' }]);
  assert.equal(h.session.phase, 'publishing');

  const meta = { width: 320, height: 180 };
  h.feed(media(18, 0, encodeSetDataFrame(meta)), media(9, 0, Buffer.from('1700000000', 'hex')), media(8, 0, Buffer.from('af00', 'hex')), media(9, 33, Buffer.from('2701', 'hex')));
  assert.deepEqual(rec.media, [
    [18, 0, encodeAmf0(['onMetaData', meta]).toString('hex')],
    [9, 0, '1700000000'],
    [8, 0, 'af00'],
    [9, 33, '2701'],
  ]);
  h.feed(cmd('FCUnpublish', 6, null, 'key?x=1'), cmd('deleteStream', 7, null, 1));
  assert.deepEqual(h.replies().map(describe), ['_result#6@0', 'onFCUnpublish#0@0 NetStream.Unpublish.Success', 'onStatus#0@1 NetStream.Unpublish.Success']);
  assert.deepEqual(rec.closes, ['sink:client unpublished']);
  h.session.close('bye');
  h.session.close('bye again');
  assert.deepEqual(rec.closes, ['sink:client unpublished']);
  assert.deepEqual(h.closedWith, ['bye'], 'onClose once');
  assert.equal(h.session.phase, 'closed');
});

test('media arriving before the publish is accepted is held and delivered in order', async () => {
  let resolve!: (s: RtmpPublishSink) => void;
  const got: number[] = [];
  const h = new Harness({
    publish: () => new Promise((r) => (resolve = r)),
    play: () => Promise.reject(new Error('no')),
  });
  h.feed(C0C1, C2, CONNECT, cmd('createStream', 2, null), streamCmd(1, 'publish', 3, 's'));
  h.feed(media(9, 0, Buffer.from('17', 'hex')), media(9, 40, Buffer.from('27', 'hex')));
  resolve({ media: (_t, ts) => got.push(ts), close: () => {} });
  await tick();
  h.feed(media(9, 80, Buffer.from('27', 'hex')));
  assert.deepEqual(got, [0, 40, 80]);
  const codes = h.replies().map(describe);
  assert.equal(codes.at(-1), 'onStatus#0@1 NetStream.Publish.Start');
});

test('player script: Stream Begin, Play.Reset, Play.Start, |RtmpSampleAccess, then media; end(); receiveVideo', async () => {
  const rec: Recorded = { reqs: [], media: [], closes: [] };
  let out!: RtmpPlayOutput;
  const h = new Harness(
    recordingHandler(rec, {
      onPlay: (o) => {
        out = o;
        // Written before the handler resolves: must come after the start messages.
        assert.equal(o.write(encodeMessageType0(6, 9, 0, 1, Buffer.from('1700', 'hex'), 4096)), true);
      },
    }),
  );
  h.feed(C0C1, C2, CONNECT, cmd('createStream', 2, null), cmd('getStreamLength', 3, null, 'cam'));
  h.feed(streamCmd(1, 'play', 4, 'cam', -2), encodeMessageType0(2, 4, 0, 0, encodeUserControl(3, 1, 3000), 128));
  await tick();
  assert.deepEqual(h.replies().map(describe).slice(5), [
    '_result#2@0',
    '_result#3@0',
    'uc0:1',
    'onStatus#0@1 NetStream.Play.Reset',
    'onStatus#0@1 NetStream.Play.Start',
    'data |RtmpSampleAccess',
    'media9@0:1700',
  ]);
  assert.equal(rec.reqs[0]!.name, 'cam');
  assert.equal(rec.reqs[0]!.publishType, undefined);
  assert.equal(h.session.phase, 'playing');

  out.write(encodeMessageType0(4, 8, 10, 1, Buffer.from('af01', 'hex'), 4096));
  h.feed(streamCmd(1, 'receiveVideo', 0, false));
  out.write(encodeMessageType0(6, 9, 20, 1, Buffer.from('2701', 'hex'), 4096));
  out.write(encodeMessageType0(4, 8, 30, 1, Buffer.from('af01', 'hex'), 4096));
  assert.deepEqual(h.replies().map(describe), ['media8@10:af01', 'media8@30:af01']);

  out.end('publisher left');
  assert.deepEqual(h.replies().map(describe), ['onStatus#0@1 NetStream.Play.UnpublishNotify', 'uc1:1', 'onStatus#0@1 NetStream.Play.Stop']);
  assert.equal(out.open, false);
  assert.equal(out.write(Buffer.from('00', 'hex')), false);
  h.session.close('done');
  assert.deepEqual(rec.closes, [], 'the source ended the play itself: no close call back');
});

test('player leaving closes the source once', async () => {
  const rec: Recorded = { reqs: [], media: [], closes: [] };
  const h = new Harness(recordingHandler(rec));
  h.feed(C0C1, C2, CONNECT, cmd('createStream', 2, null), streamCmd(1, 'play', 3, 'cam'));
  await tick();
  h.feed(streamCmd(1, 'closeStream', 4));
  h.session.transportClosed('gone');
  h.session.close('gone twice');
  assert.deepEqual(rec.closes, ['source:client closed the stream']);
  assert.deepEqual(h.closedWith, [], 'transportClosed does not call onClose');
});

const rejections: [string, 'publish' | 'play', unknown, string, string][] = [
  ['busy', 'publish', new HazeError('HAZE_ERR_BUSY', 'Stream already publishing'), 'NetStream.Publish.BadName', 'Stream already publishing'],
  ['unknown stream', 'publish', new HazeError('HAZE_ERR_NOT_FOUND', 'No such stream'), 'NetStream.Publish.BadName', 'No such stream'],
  ['auth', 'publish', new HazeError('HAZE_ERR_AUTH', 'Wrong password'), 'NetStream.Publish.Rejected', 'Wrong password'],
  ['refused', 'publish', new HazeError('HAZE_ERR_REFUSED', 'Push not allowed'), 'NetStream.Publish.Rejected', 'Push not allowed'],
  ['not found', 'play', new HazeError('HAZE_ERR_NOT_FOUND', 'Stream not found'), 'NetStream.Play.StreamNotFound', 'Stream not found'],
  ['offline', 'play', new HazeError('HAZE_ERR_OFFLINE', 'Stream is offline'), 'NetStream.Play.StreamNotFound', 'Stream is offline'],
  ['other', 'play', new Error('boom'), 'NetStream.Play.Failed', 'boom'],
];
for (const [label, kind, err, code, description] of rejections) {
  test(`${kind} rejected (${label}) -> onStatus error ${code}, connection closed`, async () => {
    const rec: Recorded = { reqs: [], media: [], closes: [] };
    const h = new Harness(recordingHandler(rec, kind === 'publish' ? { publishError: err } : { playError: err }));
    h.feed(C0C1, C2, CONNECT, cmd('createStream', 2, null), streamCmd(1, kind, 3, 'x'));
    await tick();
    const last = h.replies().at(-1)!;
    assert.equal(last.cmd?.name, 'onStatus');
    assert.equal(last.streamId, 1);
    const info = last.cmd!.args[0];
    assert.equal(amf0Get(info, 'level'), 'error');
    assert.equal(amf0Get(info, 'code'), code);
    assert.equal(amf0Get(info, 'description'), description);
    assert.equal(h.closedWith.length, 1);
    assert.equal(h.session.phase, 'closed');
  });
}

test('pings, acknowledgements, unknown commands, pause/seek, createStream ids', async () => {
  const rec: Recorded = { reqs: [], media: [], closes: [] };
  const paused: boolean[] = [];
  const h = new Harness(recordingHandler(rec, { source: { pause: (p: boolean) => paused.push(p) } }));
  h.feed(C0C1, C2, CONNECT);
  h.replies();
  h.feed(encodeMessageType0(2, 4, 0, 0, encodeUserControl(6, 4242), 128));
  assert.deepEqual(h.replies().map(describe), ['uc7:4242']);
  // The client asks for an ack every 1000 bytes: more than that has arrived already.
  h.feed(encodeMessageType0(2, 5, 0, 0, encodeWindowAckSize(1000), 128));
  const acks = h.replies();
  assert.deepEqual(acks.map((x) => x.typeId), [3]);
  assert.equal(acks[0]!.body.readUInt32BE(0), h.session.bytesReceived);
  h.feed(cmd('createStream', 1, null).subarray(0, 10));
  assert.deepEqual(h.replies(), [], 'no ack before the next 1000 bytes');
  const before = h.session.bytesReceived;
  h.feed(cmd('createStream', 1, null).subarray(10), encodeMessageType0(3, 20, 0, 0, encodeCommand('noSuchMethod', 9, null, 'x'.repeat(1200)), 128));
  const r = h.replies();
  assert.deepEqual(r.map((x) => x.typeId), [20, 20, 3]);
  assert.equal(describe(r[1]!), '_error#9@0 NetConnection.Call.Failed');
  assert.equal(amf0Get(r[1]!.cmd!.args[0], 'code'), 'NetConnection.Call.Failed');
  assert.ok(h.session.bytesReceived - before > 1000);
  assert.equal(r[2]!.body.readUInt32BE(0), h.session.bytesReceived);
  h.feed(cmd('deleteStream', 1, null, 1));
  h.feed(cmd('createStream', 2, null), cmd('createStream', 3, null), cmd('deleteStream', 4, null, 1), cmd('createStream', 5, null));
  assert.deepEqual(
    h.replies().map((x) => x.cmd!.args[0]),
    [1, 2, 1],
  );
  h.feed(streamCmd(1, 'play', 6, 'cam'));
  await tick();
  h.replies();
  h.feed(streamCmd(1, 'pause', 7, true, 1000), streamCmd(1, 'pause', 8, false, 1000), streamCmd(1, 'seek', 9, 5000));
  assert.deepEqual(h.replies().map(describe), ['onStatus#0@1 NetStream.Pause.Notify', 'onStatus#0@1 NetStream.Unpause.Notify', 'onStatus#0@1 NetStream.Seek.Notify']);
  assert.deepEqual(paused, [true, false]);
});

test('protocol violations throw HazeError and close the session', () => {
  const rec: Recorded = { reqs: [], media: [], closes: [] };
  const bad = Buffer.from(C0C1);
  bad[0] = 0x16; // a TLS ClientHello on the plain port
  const h1 = new Harness(recordingHandler(rec));
  assert.throws(() => h1.feed(bad), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_PROTOCOL');
  assert.equal(h1.session.phase, 'closed');
  h1.feed(C0C1); // ignored after close
  assert.equal(h1.sent.length, 0);

  const h2 = new Harness(recordingHandler(rec));
  assert.throws(() => h2.feed(C0C1, C2, streamCmd(1, 'publish', 1, 'x')), (e: unknown) => e instanceof HazeError && /before connect/.test(e.message));
  assert.equal(rec.reqs.length, 0);

  const h3 = new Harness(recordingHandler(rec));
  assert.throws(() => h3.feed(C0C1, C2, CONNECT, CONNECT), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_PROTOCOL');
});
