// RTMP message bodies (Adobe RTMP 1.0 §5.4 protocol control, §6.2 user control, §7.1 command
// and data messages, §7.2 commands).
//
//   1 Set Chunk Size   u32 (top bit 0)       2 Abort            u32 chunk stream id
//   3 Acknowledgement  u32 bytes received    5 Window Ack Size  u32
//   6 Set Peer Bandwidth  u32 window | u8 limit type (0 hard, 1 soft, 2 dynamic)
//   4 User Control     u16 event | event data (u32 stream id or timestamp; SetBufferLength
//                      adds a u32 buffer length in ms)
//   20 command AMF0 = name, transaction id, command object, args...; 17 = the same after a
//   0x00 format byte. 18 data AMF0 = values; 15 = the same after a 0x00 format byte.
//   22 aggregate = FLV-tag-like sub-messages: type(1) size(3) ts(3) tsExt(1) streamId(3)
//   body(size) backPointer(4).

import { ByteReader, ByteWriter } from '../../util/bytes.js';
import { HazeError } from '../../util/errors.js';
import { decodeAmf0, encodeAmf0, amf0Get, amf0String, type Amf0Object, type Amf0Value } from '../../containers/amf/amf0.js';
import type { RtmpMessage } from './chunk-reader.js';

export const RTMP_MSG = {
  SET_CHUNK_SIZE: 1,
  ABORT: 2,
  ACK: 3,
  USER_CONTROL: 4,
  WINDOW_ACK_SIZE: 5,
  SET_PEER_BANDWIDTH: 6,
  AUDIO: 8,
  VIDEO: 9,
  DATA_AMF3: 15,
  SHARED_OBJECT_AMF3: 16,
  COMMAND_AMF3: 17,
  DATA_AMF0: 18,
  SHARED_OBJECT_AMF0: 19,
  COMMAND_AMF0: 20,
  AGGREGATE: 22,
} as const;

export const USER_CONTROL = {
  STREAM_BEGIN: 0,
  STREAM_EOF: 1,
  STREAM_DRY: 2,
  SET_BUFFER_LENGTH: 3,
  STREAM_IS_RECORDED: 4,
  PING_REQUEST: 6,
  PING_RESPONSE: 7,
} as const;

export const PEER_BANDWIDTH_LIMIT = { HARD: 0, SOFT: 1, DYNAMIC: 2 } as const;

// ---- protocol control ---------------------------------------------------------------------

function u32Body(v: number): Buffer {
  return new ByteWriter(4).u32(v).done();
}

export function encodeSetChunkSize(size: number): Buffer {
  return u32Body(size & 0x7fffffff);
}
export function encodeAbort(csid: number): Buffer {
  return u32Body(csid);
}
export function encodeAck(sequence: number): Buffer {
  return u32Body(sequence % 0x1_0000_0000);
}
export function encodeWindowAckSize(size: number): Buffer {
  return u32Body(size);
}
export function encodeSetPeerBandwidth(size: number, limitType: number): Buffer {
  return new ByteWriter(5).u32(size).u8(limitType).done();
}

/** The u32 of Set Chunk Size, Abort, Acknowledgement, Window Ack Size. */
export function decodeU32Body(body: Buffer, what: string): number {
  if (body.length < 4) throw new HazeError('HAZE_ERR_MALFORMED', `RTMP ${what} body of ${body.length} bytes (need 4)`);
  return body.readUInt32BE(0);
}

export function decodeSetPeerBandwidth(body: Buffer): { size: number; limitType: number } {
  const r = new ByteReader(body);
  const size = r.u32();
  const limitType = r.remaining > 0 ? r.u8() : PEER_BANDWIDTH_LIMIT.DYNAMIC;
  return { size, limitType };
}

// ---- user control -------------------------------------------------------------------------

export interface UserControlEvent {
  event: number;
  /** Stream id (stream events) or timestamp (ping events). */
  value: number;
  /** SetBufferLength only: buffer length in ms. */
  bufferMs?: number;
}

export function encodeUserControl(event: number, value: number, bufferMs?: number): Buffer {
  const w = new ByteWriter(bufferMs === undefined ? 6 : 10).u16(event).u32(value);
  if (bufferMs !== undefined) w.u32(bufferMs);
  return w.done();
}

export function decodeUserControl(body: Buffer): UserControlEvent {
  const r = new ByteReader(body);
  const event = r.u16();
  // Some events (BufferEmpty/BufferReady from old servers) have shorter data; tolerate.
  const value = r.remaining >= 4 ? r.u32() : 0;
  const out: UserControlEvent = { event, value };
  if (event === USER_CONTROL.SET_BUFFER_LENGTH) out.bufferMs = r.u32();
  return out;
}

// ---- commands -----------------------------------------------------------------------------

export interface RtmpCommand {
  name: string;
  transactionId: number;
  /** Command object (null for most commands after connect). */
  commandObject: Amf0Value;
  /** Further arguments. */
  args: Amf0Value[];
}

/** The AMF0 part of a command (20/17) or data (18/15) message. */
function amf0Part(typeId: number, body: Buffer): Buffer {
  // AMF3 command/data messages start with a format byte 0 and then carry AMF0 values
  // (which may switch to AMF3 per value with the 0x11 marker).
  if ((typeId === RTMP_MSG.COMMAND_AMF3 || typeId === RTMP_MSG.DATA_AMF3) && body.length > 0 && body[0] === 0) return body.subarray(1);
  return body;
}

export function decodeCommand(typeId: number, body: Buffer): RtmpCommand {
  const values = decodeAmf0(amf0Part(typeId, body));
  const name = amf0String(values[0]);
  if (name === undefined) throw new HazeError('HAZE_ERR_MALFORMED', 'RTMP command without a name string');
  const txn = values[1];
  return {
    name,
    transactionId: typeof txn === 'number' && Number.isFinite(txn) ? txn : 0,
    commandObject: values.length > 2 ? values[2] : null,
    args: values.slice(3),
  };
}

export function encodeCommand(name: string, transactionId: number, commandObject: Amf0Value, ...args: Amf0Value[]): Buffer {
  return encodeAmf0([name, transactionId, commandObject, ...args]);
}

export function decodeData(typeId: number, body: Buffer): Amf0Value[] {
  return decodeAmf0(amf0Part(typeId, body));
}

export function encodeData(...values: Amf0Value[]): Buffer {
  return encodeAmf0(values);
}

export interface RtmpStatus {
  level: string;
  code: string;
  description: string;
}

export function statusObject(level: string, code: string, description: string, extra: Amf0Object = {}): Amf0Object {
  return { level, code, description, ...extra };
}

export function encodeResult(transactionId: number, commandObject: Amf0Value, ...args: Amf0Value[]): Buffer {
  return encodeCommand('_result', transactionId, commandObject, ...args);
}

export function encodeError(transactionId: number, commandObject: Amf0Value, info: Amf0Value): Buffer {
  return encodeCommand('_error', transactionId, commandObject, info);
}

/** onStatus (transaction 0, null command object, an info object). */
export function encodeOnStatus(level: string, code: string, description: string, extra: Amf0Object = {}): Buffer {
  return encodeCommand('onStatus', 0, null, statusObject(level, code, description, extra));
}

/** Reads level/code/description from an onStatus/_error info object. */
export function readStatus(info: Amf0Value): RtmpStatus {
  return {
    level: amf0String(amf0Get(info, 'level')) ?? '',
    code: amf0String(amf0Get(info, 'code')) ?? '',
    description: amf0String(amf0Get(info, 'description')) ?? '',
  };
}

export function encodeOnBWDone(): Buffer {
  return encodeCommand('onBWDone', 0, null, 8192);
}

/** `|RtmpSampleAccess` data message: lets Flash players read audio/video samples. */
export function encodeSampleAccess(audio = true, video = true): Buffer {
  return encodeAmf0(['|RtmpSampleAccess', audio, video]);
}

/** onMetaData data message body from an object (written as an ECMA array by callers that want one). */
export function encodeOnMetaData(meta: Amf0Value): Buffer {
  return encodeAmf0(['onMetaData', meta]);
}

/** `@setDataFrame` as an AMF0 string: 0x02, u16 length 13, the 13 bytes. */
const SET_DATA_FRAME = Buffer.from([0x02, 0x00, 0x0d, ...Buffer.from('@setDataFrame', 'latin1')]);

/**
 * A publisher's data message as viewers should get it: `@setDataFrame onMetaData {...}`
 * becomes `onMetaData {...}` (a subarray, the remaining bytes untouched). AMF3 data (15) loses
 * its format byte. Other data messages pass unchanged.
 */
export function stripSetDataFrame(typeId: number, body: Buffer): Buffer {
  const amf = amf0Part(typeId, body);
  if (amf.length >= SET_DATA_FRAME.length && amf.subarray(0, SET_DATA_FRAME.length).equals(SET_DATA_FRAME)) {
    return amf.subarray(SET_DATA_FRAME.length);
  }
  return amf;
}

/** `@setDataFrame onMetaData meta` as a publisher sends it. */
export function encodeSetDataFrame(meta: Amf0Value): Buffer {
  return encodeAmf0(['@setDataFrame', 'onMetaData', meta]);
}

// ---- aggregate ----------------------------------------------------------------------------

/**
 * Splits an aggregate message (22) into its sub-messages. Sub-message timestamps are
 * re-based so the first one gets the aggregate's timestamp (§7.1.7). Bodies are subarrays.
 */
export function splitAggregate(msg: RtmpMessage): RtmpMessage[] {
  const r = new ByteReader(msg.body);
  const out: RtmpMessage[] = [];
  let base: number | null = null;
  while (r.remaining >= 11) {
    const typeId = r.u8();
    const size = r.u24();
    const ts = (r.u24() | (r.u8() << 24)) >>> 0;
    const streamId = r.u24();
    const body = r.bytes(size);
    if (r.remaining >= 4) r.skip(4); // back pointer (previous tag size)
    if (base === null) base = ts;
    out.push({ csid: msg.csid, typeId, timestamp: (msg.timestamp + ts - base) >>> 0, streamId: streamId || msg.streamId, body });
  }
  return out;
}
