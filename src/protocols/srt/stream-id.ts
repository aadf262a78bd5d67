// What a caller's stream id asks for (draft-sharabayko-srt Appendix B, and MistServer's TSSRT
// listener, reference §5.4): a plain stream name, or the access-control syntax
// `#!::key=value,key=value` with the standard keys r (resource: the stream name), m (mode:
// `request` to play, `publish` to send, `bidirectional`), u (user), h (host), s (session), t
// (type). A mode that is not given is decided by the listener (data first: publish).

export type StreamMode = 'request' | 'publish' | 'bidirectional';

export interface StreamIdRequest {
  /** The stream name asked for ('' when none). */
  name: string;
  mode: StreamMode | undefined;
  /** Every key of the `#!::` form (empty for a plain name). */
  keys: Record<string, string>;
}

export function parseStreamId(raw: string): StreamIdRequest {
  // some callers pass the URL's percent-encoding through (ffmpeg 5.1 does not decode its
  // streamid option); a stream name never holds `%`, so decoding is safe
  let sid = raw;
  if (/%[0-9a-f]{2}/i.test(sid)) {
    try {
      sid = decodeURIComponent(sid);
    } catch {
      // not valid percent-encoding: taken as it is
    }
  }
  if (!sid.startsWith('#!::')) return { name: sid, mode: undefined, keys: {} };
  const keys: Record<string, string> = {};
  // `#!::{a=1,b=2}` nests; a flat reading of its keys is what a listener needs
  const body = sid.slice(4).replace(/^\{/, '').replace(/\}$/, '');
  for (const part of body.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const k = part.slice(0, eq).trim();
    if (!(k in keys)) keys[k] = part.slice(eq + 1).trim();
  }
  const m = keys['m']?.toLowerCase();
  const mode: StreamMode | undefined = m === 'request' || m === 'publish' || m === 'bidirectional' ? m : undefined;
  return { name: keys['r'] ?? '', mode, keys };
}

/** The stream id a caller sends for `name` in `mode` (plain name when no mode). */
export function makeStreamId(name: string, mode?: StreamMode): string {
  return mode ? `#!::r=${name},m=${mode}` : name;
}
