// SDP, RFC 4566 §5: a session section and media sections of `type=value` lines, in order.
// The parser keeps every line (unknown ones included) so writeSdp(parseSdp(x)) gives x back
// with CRLF line ends; helpers read the attributes RTSP needs (rtpmap, fmtp, control).
//
//   v=0 / o=... / s=... / [c=...] / t=... / a=...*  then per medium:
//   m=<media> <port>[/<count>] <proto> <fmt> ... / [c=] [b=] a=...*

import { HazeError } from '../../util/errors.js';

/** Largest SDP Haze reads (a camera's is a few hundred bytes). */
export const MAX_SDP_BYTES = 64 * 1024;
const MAX_MEDIA = 32;

export interface SdpLine {
  /** The one-letter type (v, o, s, c, t, a, m, b ...). */
  type: string;
  value: string;
}

export interface SdpMedia {
  /** video, audio, application ... */
  media: string;
  port: number;
  /** The `/count` after the port, 1 when absent. */
  portCount: number;
  proto: string;
  /** Payload types (RTP/AVP) or other format names. */
  formats: string[];
  /** The lines after `m=`, in order. */
  lines: SdpLine[];
}

export interface Sdp {
  /** The session-level lines, in order. */
  session: SdpLine[];
  media: SdpMedia[];
}

export interface RtpMap {
  encoding: string;
  clockRate: number;
  channels: number;
}

function parseMediaLine(value: string): Omit<SdpMedia, 'lines'> {
  const parts = value.split(' ').filter((s) => s.length > 0);
  if (parts.length < 3) throw new HazeError('HAZE_ERR_MALFORMED', `SDP m= line ${JSON.stringify(value.slice(0, 80))}`);
  const [portText, countText] = parts[1]!.split('/');
  const port = Number(portText);
  const portCount = countText === undefined ? 1 : Number(countText);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || !Number.isInteger(portCount) || portCount < 1) {
    throw new HazeError('HAZE_ERR_MALFORMED', `SDP m= port ${JSON.stringify(parts[1]!.slice(0, 20))}`);
  }
  return { media: parts[0]!, port, portCount, proto: parts[2]!, formats: parts.slice(3) };
}

export function parseSdp(text: string | Buffer): Sdp {
  if (text.length > MAX_SDP_BYTES) throw new HazeError('HAZE_ERR_TOO_LARGE', `SDP of ${text.length} bytes`);
  const s = typeof text === 'string' ? text : text.toString('utf8');
  const sdp: Sdp = { session: [], media: [] };
  let current: SdpMedia | undefined;
  for (const raw of s.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.length === 0) continue;
    if (line.length < 2 || line[1] !== '=' || !/^[a-z]$/.test(line[0]!)) throw new HazeError('HAZE_ERR_MALFORMED', `SDP line ${JSON.stringify(line.slice(0, 80))}`);
    const type = line[0]!;
    const value = line.slice(2);
    if (type === 'm') {
      if (sdp.media.length >= MAX_MEDIA) throw new HazeError('HAZE_ERR_TOO_LARGE', `SDP with more than ${MAX_MEDIA} media`);
      current = { ...parseMediaLine(value), lines: [] };
      sdp.media.push(current);
    } else if (current) {
      current.lines.push({ type, value });
    } else {
      sdp.session.push({ type, value });
    }
  }
  if (sdp.session[0]?.type !== 'v') throw new HazeError('HAZE_ERR_MALFORMED', 'SDP does not start with v=');
  return sdp;
}

export function writeSdp(sdp: Sdp): string {
  const out: string[] = [];
  for (const l of sdp.session) out.push(`${l.type}=${l.value}`);
  for (const m of sdp.media) {
    out.push(`m=${m.media} ${m.port}${m.portCount > 1 ? `/${m.portCount}` : ''} ${m.proto}${m.formats.map((f) => ` ${f}`).join('')}`);
    for (const l of m.lines) out.push(`${l.type}=${l.value}`);
  }
  return `${out.join('\r\n')}\r\n`;
}

/** Values of the `a=name:value` (or `a=name`, value '') attributes of a section. */
export function attributes(lines: readonly SdpLine[], name: string): string[] {
  const out: string[] = [];
  for (const l of lines) {
    if (l.type !== 'a') continue;
    const colon = l.value.indexOf(':');
    const key = colon < 0 ? l.value : l.value.slice(0, colon);
    if (key.toLowerCase() === name.toLowerCase()) out.push(colon < 0 ? '' : l.value.slice(colon + 1));
  }
  return out;
}

export function attribute(lines: readonly SdpLine[], name: string): string | undefined {
  return attributes(lines, name)[0];
}

/** The attribute value for one payload type (`a=rtpmap:96 ...`, `a=fmtp:96 ...`). */
function formatAttribute(m: SdpMedia, name: string, format: string): string | undefined {
  for (const v of attributes(m.lines, name)) {
    const space = v.indexOf(' ');
    if ((space < 0 ? v : v.slice(0, space)).trim() === format) return space < 0 ? '' : v.slice(space + 1).trim();
  }
  return undefined;
}

export function rtpMap(m: SdpMedia, format: string): RtpMap | undefined {
  const v = formatAttribute(m, 'rtpmap', format);
  if (v === undefined) return undefined;
  const [encoding, rate, channels] = v.split('/');
  const clockRate = Number(rate);
  const ch = channels === undefined || channels === '' ? 1 : Number(channels);
  if (!encoding || !Number.isInteger(clockRate) || clockRate <= 0 || !Number.isInteger(ch) || ch <= 0 || ch > 255) return undefined;
  return { encoding, clockRate, channels: ch };
}

/** The fmtp parameters of a payload type, keys lower-cased (`a=fmtp:96 a=1; b=2`). */
export function fmtp(m: SdpMedia, format: string): Map<string, string> {
  const out = new Map<string, string>();
  const v = formatAttribute(m, 'fmtp', format);
  if (v === undefined) return out;
  for (const item of v.split(';')) {
    const t = item.trim();
    if (!t) continue;
    const eq = t.indexOf('=');
    if (eq < 0) out.set(t.toLowerCase(), '');
    else out.set(t.slice(0, eq).trim().toLowerCase(), t.slice(eq + 1).trim());
  }
  return out;
}

function resolveControl(base: string, c: string | undefined): string {
  if (c === undefined || c === '' || c === '*') return base;
  if (/^[a-z][a-z0-9+.-]*:/i.test(c)) return c;
  return base.endsWith('/') ? `${base}${c}` : `${base}/${c}`;
}

/** The URL of aggregate requests (PLAY, TEARDOWN): the session's control resolved against the base URL. */
export function aggregateUrl(base: string, sdp: Sdp): string {
  return resolveControl(base, attribute(sdp.session, 'control'));
}

/** The URL to SETUP a medium: its control attribute resolved against the session's base URL (RFC 2326 C.1.1). */
export function controlUrl(base: string, sdp: Sdp, m: SdpMedia): string {
  return resolveControl(aggregateUrl(base, sdp), attribute(m.lines, 'control'));
}
