// RTMP message bodies: protocol control and user control byte layouts (§5.4, §6.2), command and
// data message tables (encode -> exact bytes -> decode), AMF3 command/data wrappers,
// @setDataFrame stripping, aggregate splitting.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Amf0EcmaArray, encodeAmf0, type Amf0Value } from '../../src/containers/amf/amf0.js';
import {
  RTMP_MSG,
  USER_CONTROL,
  decodeCommand,
  decodeData,
  decodeSetPeerBandwidth,
  decodeU32Body,
  decodeUserControl,
  encodeAck,
  encodeCommand,
  encodeError,
  encodeOnBWDone,
  encodeOnStatus,
  encodeResult,
  encodeSampleAccess,
  encodeSetChunkSize,
  encodeSetDataFrame,
  encodeSetPeerBandwidth,
  encodeUserControl,
  encodeWindowAckSize,
  readStatus,
  splitAggregate,
  stripSetDataFrame,
} from '../../src/protocols/rtmp/messages.js';
import { HazeError } from '../../src/util/errors.js';
import { hex } from '../helpers.js';

const str = (s: string): string => '02' + s.length.toString(16).padStart(4, '0') + Buffer.from(s).toString('hex');
const num = (n: number): string => {
  const b = Buffer.alloc(8);
  b.writeDoubleBE(n);
  return '00' + b.toString('hex');
};

test('protocol control message bodies', () => {
  assert.deepEqual([...encodeSetChunkSize(4096)], [0, 0, 0x10, 0]);
  assert.deepEqual([...encodeSetChunkSize(0xffffffff)], [0x7f, 0xff, 0xff, 0xff], 'top bit cleared');
  assert.deepEqual([...encodeWindowAckSize(2_500_000)], [0x00, 0x26, 0x25, 0xa0]);
  assert.deepEqual([...encodeSetPeerBandwidth(2_500_000, 2)], [0x00, 0x26, 0x25, 0xa0, 2]);
  assert.deepEqual([...encodeAck(0x1_0000_0005)], [0, 0, 0, 5], 'sequence number wraps at 2^32');
  assert.equal(decodeU32Body(hex('0000ffff'), 'x'), 0xffff);
  assert.throws(() => decodeU32Body(hex('0000'), 'x'), HazeError);
  assert.deepEqual(decodeSetPeerBandwidth(hex('0026 25a0 01')), { size: 2_500_000, limitType: 1 });
});

test('user control events', () => {
  const cases: [Buffer, string, { event: number; value: number; bufferMs?: number }][] = [
    [encodeUserControl(USER_CONTROL.STREAM_BEGIN, 1), '0000 00000001', { event: 0, value: 1 }],
    [encodeUserControl(USER_CONTROL.STREAM_EOF, 1), '0001 00000001', { event: 1, value: 1 }],
    [encodeUserControl(USER_CONTROL.STREAM_DRY, 2), '0002 00000002', { event: 2, value: 2 }],
    [encodeUserControl(USER_CONTROL.SET_BUFFER_LENGTH, 1, 3000), '0003 00000001 00000bb8', { event: 3, value: 1, bufferMs: 3000 }],
    [encodeUserControl(USER_CONTROL.STREAM_IS_RECORDED, 1), '0004 00000001', { event: 4, value: 1 }],
    [encodeUserControl(USER_CONTROL.PING_REQUEST, 123456), '0006 0001e240', { event: 6, value: 123456 }],
    [encodeUserControl(USER_CONTROL.PING_RESPONSE, 123456), '0007 0001e240', { event: 7, value: 123456 }],
  ];
  for (const [bytes, want, decoded] of cases) {
    assert.equal(bytes.toString('hex'), want.replace(/\s/g, ''));
    assert.deepEqual(decodeUserControl(bytes), decoded);
  }
  assert.throws(() => decodeUserControl(hex('00')), HazeError);
  assert.throws(() => decodeUserControl(hex('0003 00000001')), HazeError, 'SetBufferLength needs its length');
});

test('command table: encode -> exact AMF0 bytes -> decode', () => {
  const rows: { name: string; bytes: Buffer; want: string; decoded: { name: string; transactionId: number; commandObject: Amf0Value; args: Amf0Value[] } }[] = [
    {
      name: 'createStream',
      bytes: encodeCommand('createStream', 4, null),
      want: str('createStream') + num(4) + '05',
      decoded: { name: 'createStream', transactionId: 4, commandObject: null, args: [] },
    },
    {
      name: 'publish',
      bytes: encodeCommand('publish', 5, null, 'test', 'live'),
      want: str('publish') + num(5) + '05' + str('test') + str('live'),
      decoded: { name: 'publish', transactionId: 5, commandObject: null, args: ['test', 'live'] },
    },
    {
      name: '_result createStream',
      bytes: encodeResult(4, null, 1),
      want: str('_result') + num(4) + '05' + num(1),
      decoded: { name: '_result', transactionId: 4, commandObject: null, args: [1] },
    },
    {
      name: 'onStatus',
      bytes: encodeOnStatus('status', 'NetStream.Play.Start', 'go'),
      want: str('onStatus') + num(0) + '05' + '03' + '0005' + Buffer.from('level').toString('hex') + str('status') + '0004' + Buffer.from('code').toString('hex') + str('NetStream.Play.Start') + '000b' + Buffer.from('description').toString('hex') + str('go') + '000009',
      decoded: { name: 'onStatus', transactionId: 0, commandObject: null, args: [{ level: 'status', code: 'NetStream.Play.Start', description: 'go' }] },
    },
    {
      name: '_error',
      bytes: encodeError(7, null, { level: 'error', code: 'NetConnection.Call.Failed', description: 'nope' }),
      want: str('_error') + num(7) + '05' + encodeAmf0([{ level: 'error', code: 'NetConnection.Call.Failed', description: 'nope' }]).toString('hex'),
      decoded: { name: '_error', transactionId: 7, commandObject: null, args: [{ level: 'error', code: 'NetConnection.Call.Failed', description: 'nope' }] },
    },
    {
      name: 'onBWDone',
      bytes: encodeOnBWDone(),
      want: str('onBWDone') + num(0) + '05' + num(8192),
      decoded: { name: 'onBWDone', transactionId: 0, commandObject: null, args: [8192] },
    },
  ];
  for (const row of rows) {
    assert.equal(row.bytes.toString('hex'), row.want, row.name);
    assert.deepEqual(decodeCommand(RTMP_MSG.COMMAND_AMF0, row.bytes), row.decoded, row.name);
    // Command AMF3 (17): a 0x00 format byte, then the same AMF0.
    assert.deepEqual(decodeCommand(RTMP_MSG.COMMAND_AMF3, Buffer.concat([Buffer.from([0]), row.bytes])), row.decoded, `${row.name} as AMF3 command`);
  }
  assert.deepEqual(readStatus({ level: 'error', code: 'X', description: 'why' }), { level: 'error', code: 'X', description: 'why' });
  assert.deepEqual(readStatus(null), { level: '', code: '', description: '' });
  assert.throws(() => decodeCommand(20, encodeAmf0([1, 2])), (e: unknown) => e instanceof HazeError && e.code === 'HAZE_ERR_MALFORMED');
  assert.throws(() => decodeCommand(20, hex('02 0005 6162')), HazeError);
});

test('connect command object round trip', () => {
  const props = { app: 'live', type: 'nonprivate', flashVer: 'FMLE/3.0', tcUrl: 'rtmp://h/live', objectEncoding: 0 };
  const cmd = decodeCommand(20, encodeCommand('connect', 1, props));
  assert.equal(cmd.name, 'connect');
  assert.equal(cmd.transactionId, 1);
  assert.deepEqual(cmd.commandObject, props);
});

test('data messages: |RtmpSampleAccess, @setDataFrame stripped to onMetaData (no re-encoding)', () => {
  assert.deepEqual(decodeData(18, encodeSampleAccess()), ['|RtmpSampleAccess', true, true]);
  const meta = Amf0EcmaArray.fromObject({ duration: 0, width: 320, height: 180, videocodecid: 7, encoder: 'Lavf' });
  meta.declaredCount = 0; // as some encoders write it: must survive untouched
  const published = encodeSetDataFrame(meta);
  const stripped = stripSetDataFrame(18, published);
  assert.ok(stripped.equals(encodeAmf0(['onMetaData', meta])));
  assert.equal(stripped.buffer, published.buffer, 'a view, not a copy');
  // AMF3 data (15): format byte dropped as well.
  assert.ok(stripSetDataFrame(15, Buffer.concat([Buffer.from([0]), published])).equals(stripped));
  // Plain onMetaData and other data messages pass unchanged.
  const plain = encodeAmf0(['onMetaData', { a: 1 }]);
  assert.ok(stripSetDataFrame(18, plain).equals(plain));
  const text = encodeAmf0(['onTextData', { text: 'hi' }]);
  assert.ok(stripSetDataFrame(18, text).equals(text));
});

test('aggregate message splits into sub-messages re-based on the aggregate timestamp', () => {
  const sub = (type: number, ts: number, body: Buffer): Buffer => {
    const h = Buffer.alloc(11);
    h[0] = type;
    h.writeUIntBE(body.length, 1, 3);
    h.writeUIntBE(ts & 0xffffff, 4, 3);
    h[7] = ts >>> 24;
    h.writeUIntBE(1, 8, 3);
    const back = Buffer.alloc(4);
    back.writeUInt32BE(11 + body.length);
    return Buffer.concat([h, body, back]);
  };
  const agg = Buffer.concat([sub(9, 5000, hex('1701')), sub(8, 5010, hex('af01')), sub(9, 5033, hex('2701'))]);
  const out = splitAggregate({ csid: 6, typeId: 22, timestamp: 100, streamId: 1, body: agg });
  assert.deepEqual(
    out.map((m) => [m.typeId, m.timestamp, m.streamId, m.body.toString('hex')]),
    [
      [9, 100, 1, '1701'],
      [8, 110, 1, 'af01'],
      [9, 133, 1, '2701'],
    ],
  );
  assert.throws(() => splitAggregate({ csid: 6, typeId: 22, timestamp: 0, streamId: 1, body: sub(9, 0, hex('17')).subarray(0, 11) }), HazeError);
});
