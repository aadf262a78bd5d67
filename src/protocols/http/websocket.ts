// The WebSocket protocol, RFC 6455, without sockets: the server's side of the opening handshake
// (§4.2) and the frame codec (§5). Client frames are read incrementally and must be masked
// (§5.1); the server writes unmasked frames. Limits: a frame or a reassembled message over
// `maxPayloadBytes` (64 KiB by default) ends the connection with 1009 (§7.4.1).
//
//   0                   1                   2                   3
//   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//  +-+-+-+-+-------+-+-------------+-------------------------------+
//  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
//  |I|S|S|S|  (4)  |A|     (7)     |   (16 if len = 126, 64 if 127)|
//  |N|V|V|V|       |S|             |                               |
//  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
//  |  ... extended length, masking key (4 bytes, when MASK = 1) ... |
//  +---------------------------------------------------------------+
//  |                     Payload data (XOR the key, byte i ^ key[i % 4])
//
// Errors are WebSocketError (a HazeError) carrying the close code to send.

import { createHash } from 'node:crypto';
import { HazeError, type ErrorCode } from '../../util/errors.js';

/** RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing. */
const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const WS_VERSION = '13';
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;
/** §5.5: control frames carry at most 125 bytes and are never fragmented. */
const MAX_CONTROL_PAYLOAD = 125;

export const OPCODE = {
  continuation: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** Close codes used here (§7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
} as const;

/** A protocol failure; `closeCode` is what the close frame that ends the connection carries. */
export class WebSocketError extends HazeError {
  readonly closeCode: number;
  constructor(code: ErrorCode, closeCode: number, message: string) {
    super(code, message, { fatal: true });
    this.closeCode = closeCode;
  }
}

const protocolError = (msg: string): WebSocketError => new WebSocketError('HAZE_ERR_PROTOCOL', CLOSE.protocolError, msg);

// ---- opening handshake (§4.2) --------------------------------------------------------------

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)). */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(key + HANDSHAKE_GUID, 'latin1').digest('base64');
}

export type HandshakeHeaders = Record<string, string | string[] | undefined>;

function headerValue(headers: HandshakeHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  return value.split(',').some((t) => t.trim().toLowerCase() === token);
}

/**
 * Checks a client's opening handshake (§4.2.1) and returns its Sec-WebSocket-Key. Throws a
 * HazeError with the HTTP status to answer: 400 for a malformed request, 426 (with
 * `Sec-WebSocket-Version: 13` in the answer, §4.4) for another protocol version, 405 for a
 * method other than GET.
 */
export function checkUpgradeRequest(req: { method?: string | undefined; httpVersion?: string | undefined; headers: HandshakeHeaders }): string {
  if (req.method !== 'GET') throw new HazeError('HAZE_ERR_PROTOCOL', 'a WebSocket handshake must be a GET request', { status: 405 });
  if (req.httpVersion !== undefined && !/^(1\.[1-9]|[2-9]\.\d)$/.test(req.httpVersion)) {
    throw new HazeError('HAZE_ERR_PROTOCOL', 'a WebSocket handshake needs HTTP/1.1', { status: 400 });
  }
  if (!hasToken(headerValue(req.headers, 'upgrade'), 'websocket')) throw new HazeError('HAZE_ERR_PROTOCOL', 'missing "Upgrade: websocket"', { status: 400 });
  if (!hasToken(headerValue(req.headers, 'connection'), 'upgrade')) throw new HazeError('HAZE_ERR_PROTOCOL', 'missing "Connection: Upgrade"', { status: 400 });
  const version = headerValue(req.headers, 'sec-websocket-version');
  if (version?.trim() !== WS_VERSION) throw new HazeError('HAZE_ERR_UNSUPPORTED', `unsupported WebSocket version ${JSON.stringify((version ?? '').slice(0, 20))}`, { status: 426 });
  const key = headerValue(req.headers, 'sec-websocket-key')?.trim();
  // §4.1: the key is 16 random bytes, base64: 22 characters and "=="
  if (key === undefined || !/^[A-Za-z0-9+/]{22}==$/.test(key)) throw new HazeError('HAZE_ERR_PROTOCOL', 'missing or malformed Sec-WebSocket-Key', { status: 400 });
  return key;
}

/** The 101 answer completing the handshake, as raw HTTP text. */
export function upgradeResponse(key: string): string {
  return ['HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Accept: ${websocketAccept(key)}`, '', ''].join('\r\n');
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  426: 'Upgrade Required',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** A plain-text HTTP error answer for a refused upgrade, as raw HTTP text (the connection closes). */
export function refusalResponse(status: number, message: string, headers: Record<string, string> = {}): string {
  const body = `${message}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}`,
    'Content-Type: text/plain; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body, 'utf8')}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    '',
    body,
  ];
  return lines.join('\r\n');
}

// ---- frames --------------------------------------------------------------------------------

export type WsMessage =
  | { type: 'text'; text: string }
  | { type: 'binary'; data: Buffer }
  | { type: 'ping'; data: Buffer }
  | { type: 'pong'; data: Buffer }
  /** code undefined = a close frame without a status (1005 for the application) */
  | { type: 'close'; code: number | undefined; reason: string };

export interface FrameOptions {
  /** false for all but the last fragment of a message */
  fin?: boolean;
  /** a 4-byte masking key: set only to write client frames (tests); servers never mask */
  mask?: Buffer;
}

/** One frame: header + (masked) payload, allocated once at its size. */
export function serializeFrame(opcode: number, payload: Buffer = Buffer.alloc(0), opts: FrameOptions = {}): Buffer {
  const len = payload.length;
  const mask = opts.mask;
  if (mask !== undefined && mask.length !== 4) throw new HazeError('HAZE_ERR_INVALID_ARG', 'a masking key has 4 bytes');
  if (opcode >= 0x8 && (len > MAX_CONTROL_PAYLOAD || opts.fin === false)) throw new HazeError('HAZE_ERR_INVALID_ARG', 'a control frame carries at most 125 bytes, unfragmented');
  const extLen = len < 126 ? 0 : len <= 0xffff ? 2 : 8;
  const head = 2 + extLen + (mask ? 4 : 0);
  const out = Buffer.allocUnsafe(head + len);
  out[0] = (opts.fin === false ? 0 : 0x80) | (opcode & 0x0f);
  const maskBit = mask ? 0x80 : 0;
  if (extLen === 0) out[1] = maskBit | len;
  else if (extLen === 2) {
    out[1] = maskBit | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = maskBit | 127;
    out.writeUInt32BE(Math.floor(len / 0x100000000), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  if (mask) {
    mask.copy(out, 2 + extLen);
    for (let i = 0; i < len; i++) out[head + i] = payload[i]! ^ mask[i & 3]!;
  } else {
    payload.copy(out, head);
  }
  return out;
}

export function textFrame(text: string): Buffer {
  return serializeFrame(OPCODE.text, Buffer.from(text, 'utf8'));
}

export function pongFrame(data: Buffer = Buffer.alloc(0)): Buffer {
  return serializeFrame(OPCODE.pong, data);
}

export function pingFrame(data: Buffer = Buffer.alloc(0)): Buffer {
  return serializeFrame(OPCODE.ping, data);
}

/** A close frame with a status code and a reason (cut to fit the 125-byte control payload). */
export function closeFrame(code: number, reason = ''): Buffer {
  let text = reason.slice(0, MAX_CONTROL_PAYLOAD);
  while (Buffer.byteLength(text, 'utf8') > MAX_CONTROL_PAYLOAD - 2) text = text.slice(0, -1);
  const r = Buffer.from(text, 'utf8');
  const payload = Buffer.allocUnsafe(2 + r.length);
  payload.writeUInt16BE(code, 0);
  r.copy(payload, 2);
  return serializeFrame(OPCODE.close, payload);
}

/** §7.4: codes a close frame may carry (1005, 1006, 1015 and unassigned ones may not). */
function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(b: Buffer): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new WebSocketError('HAZE_ERR_MALFORMED', CLOSE.invalidPayload, 'text that is not UTF-8');
  }
}

interface PendingFrame {
  fin: boolean;
  opcode: number;
  mask: Buffer | undefined;
  length: number;
}

export interface FrameReaderOptions {
  /** largest payload of a frame and of a reassembled message */
  maxPayloadBytes?: number;
  /** true (the default): frames must be masked, as every client frame is (§5.1) */
  requireMask?: boolean;
}

/**
 * Incremental reader of a peer's frames: `push(chunk)` returns the complete messages (fragments
 * reassembled, control frames as they come) or throws a WebSocketError. Memory held: at most one
 * frame header, one frame's payload and one message's fragments, each within the limit. After a
 * close frame the reader returns nothing more.
 */
export class WebSocketFrameReader {
  private readonly maxPayload: number;
  private readonly requireMask: boolean;
  private chunks: Buffer[] = [];
  private queued = 0;
  private frame: PendingFrame | undefined;
  private fragments: Buffer[] = [];
  private fragmentBytes = 0;
  /** opcode of the message being reassembled, 0 when none */
  private fragmentOpcode = 0;
  private closed = false;
  private failed: WebSocketError | undefined;

  constructor(opts: FrameReaderOptions = {}) {
    this.maxPayload = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.requireMask = opts.requireMask ?? true;
  }

  /** Bytes held now (queued input + fragments of an unfinished message). */
  get bufferedBytes(): number {
    return this.queued + this.fragmentBytes;
  }

  push(chunk: Buffer): WsMessage[] {
    if (this.failed) throw this.failed;
    if (this.closed || chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.queued += chunk.length;
    const out: WsMessage[] = [];
    try {
      for (;;) {
        if (!this.frame && !this.readHeader()) break;
        const f = this.frame!;
        if (this.queued < f.length) break;
        this.frame = undefined;
        const payload = this.take(f.length);
        if (f.mask) for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ f.mask[i & 3]!;
        const msg = this.onFrame(f, payload);
        if (msg) {
          out.push(msg);
          if (msg.type === 'close') {
            this.closed = true;
            this.chunks = [];
            this.queued = 0;
            break;
          }
        }
      }
    } catch (err) {
      if (err instanceof WebSocketError) {
        this.failed = err;
        this.chunks = [];
        this.queued = 0;
        this.fragments = [];
        this.fragmentBytes = 0;
      }
      throw err;
    }
    return out;
  }

  /** Copies `n` queued bytes out (n ≤ queued) into a fresh buffer. */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const use = Math.min(c.length, n - filled);
      c.copy(out, filled, 0, use);
      filled += use;
      if (use === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(use);
    }
    this.queued -= n;
    return out;
  }

  /** The byte at `i` of the queued input (i < queued). */
  private peek(i: number): number {
    for (const c of this.chunks) {
      if (i < c.length) return c[i]!;
      i -= c.length;
    }
    throw new HazeError('HAZE_ERR_SHORT_READ', 'peek past the queued bytes');
  }

  /** Parses a frame header once all of it is queued; false while it is not. */
  private readHeader(): boolean {
    if (this.queued < 2) return false;
    const b0 = this.peek(0);
    const b1 = this.peek(1);
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    if ((b0 & 0x70) !== 0) throw protocolError('reserved bits set without a negotiated extension');
    const isControl = opcode >= 0x8;
    if (opcode !== OPCODE.continuation && opcode !== OPCODE.text && opcode !== OPCODE.binary && !(isControl && opcode <= OPCODE.pong)) {
      throw protocolError(`reserved opcode ${opcode}`);
    }
    if (this.requireMask && !masked) throw protocolError('an unmasked client frame');
    if (isControl && (!fin || len7 > MAX_CONTROL_PAYLOAD)) throw protocolError('a fragmented or over-long control frame');
    const extLen = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    // the limit is checked as soon as the length is known, before waiting for the payload
    const lengthBytes = 2 + extLen;
    if (this.queued < lengthBytes) return false;
    let length = len7;
    if (extLen === 2) length = (this.peek(2) << 8) | this.peek(3);
    else if (extLen === 8) {
      let high = 0;
      for (let i = 2; i < 6; i++) high = high * 256 + this.peek(i);
      if (high !== 0) throw new WebSocketError('HAZE_ERR_TOO_LARGE', CLOSE.tooBig, 'a frame longer than 4 GiB');
      length = 0;
      for (let i = 6; i < 10; i++) length = length * 256 + this.peek(i);
    }
    if (length > this.maxPayload) throw new WebSocketError('HAZE_ERR_TOO_LARGE', CLOSE.tooBig, `a frame of ${length} bytes (limit ${this.maxPayload})`);
    const headerBytes = lengthBytes + (masked ? 4 : 0);
    if (this.queued < headerBytes) return false;
    const header = this.take(headerBytes);
    this.frame = { fin, opcode, mask: masked ? header.subarray(lengthBytes) : undefined, length };
    return true;
  }

  private onFrame(f: PendingFrame, payload: Buffer): WsMessage | undefined {
    switch (f.opcode) {
      case OPCODE.ping:
        return { type: 'ping', data: payload };
      case OPCODE.pong:
        return { type: 'pong', data: payload };
      case OPCODE.close: {
        if (payload.length === 0) return { type: 'close', code: undefined, reason: '' };
        if (payload.length === 1) throw protocolError('a close frame with a 1-byte payload');
        const code = payload.readUInt16BE(0);
        if (!isValidCloseCode(code)) throw protocolError(`invalid close code ${code}`);
        return { type: 'close', code, reason: decodeUtf8(payload.subarray(2)) };
      }
      case OPCODE.continuation:
        if (this.fragmentOpcode === 0) throw protocolError('a continuation frame without a message to continue');
        break;
      default: // text or binary
        if (this.fragmentOpcode !== 0) throw protocolError('a new message inside a fragmented one');
        if (f.fin) return this.message(f.opcode, payload);
        this.fragmentOpcode = f.opcode;
    }
    if (this.fragmentBytes + payload.length > this.maxPayload) {
      throw new WebSocketError('HAZE_ERR_TOO_LARGE', CLOSE.tooBig, `a message over ${this.maxPayload} bytes`);
    }
    this.fragments.push(payload);
    this.fragmentBytes += payload.length;
    if (!f.fin) return undefined;
    const whole = this.fragments.length === 1 ? this.fragments[0]! : Buffer.concat(this.fragments, this.fragmentBytes);
    const opcode = this.fragmentOpcode;
    this.fragments = [];
    this.fragmentBytes = 0;
    this.fragmentOpcode = 0;
    return this.message(opcode, whole);
  }

  private message(opcode: number, payload: Buffer): WsMessage {
    return opcode === OPCODE.text ? { type: 'text', text: decodeUtf8(payload) } : { type: 'binary', data: payload };
  }
}
