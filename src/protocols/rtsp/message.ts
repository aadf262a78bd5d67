// RTSP messages, RFC 2326 §4-§7 (RTSP/1.0; RFC 7826 keeps the framing): a start line, header
// lines, an empty line and a body of Content-Length bytes. Interleaved binary data (§10.12)
// shares the TCP stream:
//
//   '$' (0x24) | channel (8) | length (16) | length bytes of RTP or RTCP
//
// RtspReader takes the stream in chunks of any size and returns requests, responses and
// interleaved frames in order. The header block and body are bounded; frames are subarrays of
// the received bytes, never copied out one by one.

import { HazeError } from '../../util/errors.js';

/** Largest header block of one message (start line and headers). */
export const MAX_HEADER_BYTES = 16 * 1024;
/** Largest message body (an SDP, a GET_PARAMETER list). */
export const MAX_BODY_BYTES = 64 * 1024;
const MAX_HEADERS = 100;
const DOLLAR = 0x24;

/** Header fields, names compared case-insensitively, in arrival order. */
export class RtspHeaders {
  private readonly fields: Array<[string, string]> = [];

  constructor(init?: Iterable<[string, string]> | Record<string, string | number | undefined>) {
    if (!init) return;
    const entries = Symbol.iterator in init ? (init as Iterable<[string, string]>) : Object.entries(init as Record<string, string | number | undefined>);
    for (const [k, v] of entries) if (v !== undefined) this.add(k, String(v));
  }

  add(name: string, value: string): this {
    this.fields.push([name, value]);
    return this;
  }

  /** Replaces every field of `name` with one. */
  set(name: string, value: string): this {
    this.delete(name);
    return this.add(name, value);
  }

  delete(name: string): void {
    const lower = name.toLowerCase();
    for (let i = this.fields.length - 1; i >= 0; i--) if (this.fields[i]![0].toLowerCase() === lower) this.fields.splice(i, 1);
  }

  get(name: string): string | undefined {
    const lower = name.toLowerCase();
    return this.fields.find(([k]) => k.toLowerCase() === lower)?.[1];
  }

  getAll(name: string): string[] {
    const lower = name.toLowerCase();
    return this.fields.filter(([k]) => k.toLowerCase() === lower).map(([, v]) => v);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  entries(): ReadonlyArray<readonly [string, string]> {
    return this.fields;
  }
}

export interface RtspRequest {
  kind: 'request';
  method: string;
  url: string;
  headers: RtspHeaders;
  body: Buffer;
}

export interface RtspResponse {
  kind: 'response';
  status: number;
  reason: string;
  headers: RtspHeaders;
  body: Buffer;
}

export interface InterleavedFrame {
  kind: 'data';
  channel: number;
  data: Buffer;
}

export type RtspItem = RtspRequest | RtspResponse | InterleavedFrame;

function headerEnd(buf: Buffer, from: number, limit: number): { end: number; bodyStart: number } | undefined {
  for (let i = from; i < limit - 1; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return { end: i, bodyStart: i + 2 };
    if (buf[i + 1] === 0x0d && i + 2 < limit && buf[i + 2] === 0x0a) return { end: i, bodyStart: i + 3 };
  }
  return undefined;
}

function parseHead(text: string): { start: string; headers: RtspHeaders } {
  const lines = text.split(/\r?\n/);
  const start = lines[0]!.trim();
  const headers = new RtspHeaders();
  let count = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    // obsolete line folding (RFC 2616 §4.2): a line starting with white space continues the previous
    if ((line[0] === ' ' || line[0] === '\t') && count > 0) {
      const all = headers.entries() as Array<[string, string]>;
      all[all.length - 1]![1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new HazeError('HAZE_ERR_MALFORMED', `RTSP header line ${JSON.stringify(line.slice(0, 80))}`);
    if (++count > MAX_HEADERS) throw new HazeError('HAZE_ERR_TOO_LARGE', `more than ${MAX_HEADERS} RTSP headers`);
    headers.add(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { start, headers };
}

export class RtspReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;

  /** Bytes received and not yet returned as items. */
  get pendingBytes(): number {
    return this.buf.length - this.pos;
  }

  push(chunk: Buffer): RtspItem[] {
    this.buf = this.pos < this.buf.length ? Buffer.concat([this.buf.subarray(this.pos), chunk]) : chunk;
    this.pos = 0;
    const out: RtspItem[] = [];
    for (;;) {
      const item = this.next();
      if (!item) break;
      out.push(item);
    }
    return out;
  }

  private next(): RtspItem | undefined {
    const b = this.buf;
    // line ends between messages are allowed (keep-alives of some clients)
    while (this.pos < b.length && (b[this.pos] === 0x0d || b[this.pos] === 0x0a)) this.pos++;
    if (this.pos >= b.length) return undefined;
    if (b[this.pos] === DOLLAR) {
      if (b.length - this.pos < 4) return undefined;
      const channel = b[this.pos + 1]!;
      const len = b.readUInt16BE(this.pos + 2);
      if (b.length - this.pos < 4 + len) return undefined;
      const data = b.subarray(this.pos + 4, this.pos + 4 + len);
      this.pos += 4 + len;
      return { kind: 'data', channel, data };
    }
    const limit = Math.min(b.length, this.pos + MAX_HEADER_BYTES);
    const h = headerEnd(b, this.pos, limit);
    if (!h) {
      if (b.length - this.pos >= MAX_HEADER_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `RTSP header block past ${MAX_HEADER_BYTES} bytes`);
      return undefined;
    }
    const { start, headers } = parseHead(b.toString('latin1', this.pos, h.end));
    const lenText = headers.get('content-length');
    const bodyLen = lenText === undefined ? 0 : Number(lenText);
    if (!Number.isInteger(bodyLen) || bodyLen < 0) throw new HazeError('HAZE_ERR_MALFORMED', `Content-Length ${JSON.stringify(lenText)}`);
    if (bodyLen > MAX_BODY_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `RTSP body of ${bodyLen} bytes`);
    if (b.length - h.bodyStart < bodyLen) return undefined;
    const body = b.subarray(h.bodyStart, h.bodyStart + bodyLen);
    this.pos = h.bodyStart + bodyLen;
    const parts = start.split(' ');
    if (parts[0]!.startsWith('RTSP/')) {
      const status = Number(parts[1]);
      if (!/^RTSP\/\d\.\d$/.test(parts[0]!) || !Number.isInteger(status) || status < 100 || status > 999) throw new HazeError('HAZE_ERR_MALFORMED', `RTSP status line ${JSON.stringify(start.slice(0, 80))}`);
      return { kind: 'response', status, reason: parts.slice(2).join(' '), headers, body };
    }
    if (parts.length !== 3 || !/^RTSP\/\d\.\d$/.test(parts[2]!) || !/^[A-Z_]+$/.test(parts[0]!)) {
      throw new HazeError('HAZE_ERR_MALFORMED', `RTSP request line ${JSON.stringify(start.slice(0, 80))}`);
    }
    return { kind: 'request', method: parts[0]!, url: parts[1]!, headers, body };
  }
}

const REASONS: Record<number, string> = {
  200: 'OK',
  301: 'Moved Permanently',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  453: 'Not Enough Bandwidth',
  454: 'Session Not Found',
  455: 'Method Not Valid in This State',
  459: 'Aggregate Operation Not Allowed',
  461: 'Unsupported Transport',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  505: 'RTSP Version Not Supported',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Unknown';
}

function serialize(start: string, headers: RtspHeaders, body: Buffer | string | undefined): Buffer {
  const b = body === undefined ? Buffer.alloc(0) : typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  let head = `${start}\r\n`;
  for (const [k, v] of headers.entries()) {
    if (k.toLowerCase() === 'content-length') continue;
    // header values come from peers too (CSeq, Session): no line breaks may pass
    head += `${k}: ${v.replace(/[\r\n]/g, ' ')}\r\n`;
  }
  if (b.length > 0) head += `Content-Length: ${b.length}\r\n`;
  head += '\r\n';
  return b.length > 0 ? Buffer.concat([Buffer.from(head, 'latin1'), b]) : Buffer.from(head, 'latin1');
}

export function serializeRequest(method: string, url: string, headers: RtspHeaders, body?: Buffer | string): Buffer {
  return serialize(`${method} ${url} RTSP/1.0`, headers, body);
}

export function serializeResponse(status: number, headers: RtspHeaders, body?: Buffer | string, reason = reasonPhrase(status)): Buffer {
  return serialize(`RTSP/1.0 ${status} ${reason}`, headers, body);
}

/** The 4-byte header of an interleaved frame. */
export function interleavedHeader(channel: number, length: number): Buffer {
  if (length > 0xffff) throw new HazeError('HAZE_ERR_TOO_LARGE', `interleaved frame of ${length} bytes`);
  const h = Buffer.allocUnsafe(4);
  h[0] = DOLLAR;
  h[1] = channel;
  h.writeUInt16BE(length, 2);
  return h;
}
