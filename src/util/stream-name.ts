// Stream names (reference/mistserver.md §5.1, DESIGN §5): `[a-z0-9_.-]+`, optionally followed by
// `+suffix`, a wildcard instance that uses the config of the base name. Sanitising follows
// MistServer's `Util::sanitizeName`, with these decisions made explicit:
// - the first space counts as the `+` (URL decoders turn `+` into a space: ffmpeg's SRT streamid);
// - control characters (C0, DEL) are removed from the suffix too, because names end up in log
//   lines, HTTP headers and trigger payloads where a CR/LF or NUL would inject or truncate;
// - a base made only of dots (`.`, `..`) is refused: names become file and folder names in
//   recording targets, and a bare `..` there would climb out of the folder. A base with a dot
//   and other characters stays (`../etc` sanitises to `..etc`, one harmless path component);
// - more than 100 bytes (UTF-8) after sanitising is refused (MistServer's limit).
// An invalid name sanitises to ''.

export const MAX_STREAM_NAME_BYTES = 100;

/** Longest name part (before `?`) looked at, so a hostile input costs bounded work. */
const MAX_RAW_CHARS = 4096;

function isBaseChar(code: number): boolean {
  return (
    (code >= 0x61 && code <= 0x7a) || // a-z
    (code >= 0x30 && code <= 0x39) || // 0-9
    code === 0x5f || // _
    code === 0x2e || // .
    code === 0x2d // -
  );
}

/**
 * The canonical form of a stream name, or '' when it cannot be one.
 * `Live+Alice?x=1` -> `live+Alice`; `my stream` -> `my+stream`; `../etc` -> `..etc`.
 */
export function sanitizeStreamName(raw: string): string {
  if (typeof raw !== 'string') return '';
  const q = raw.indexOf('?');
  const s = q >= 0 ? raw.slice(0, q) : raw;
  if (s.length === 0 || s.length > MAX_RAW_CHARS) return '';
  let split = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b || c === 0x20) {
      split = i;
      break;
    }
  }
  const rawBase = split >= 0 ? s.slice(0, split) : s;
  let base = '';
  const lower = rawBase.toLowerCase();
  for (let i = 0; i < lower.length; i++) {
    const c = lower.charCodeAt(i);
    if (isBaseChar(c)) base += lower[i];
  }
  if (base.length === 0 || /^\.+$/.test(base)) return '';
  let name = base;
  if (split >= 0) {
    const suffix = s.slice(split + 1).replace(/[\u0000-\u001f\u007f]/g, '');
    name = `${base}+${suffix}`;
  }
  if (Buffer.byteLength(name, 'utf8') > MAX_STREAM_NAME_BYTES) return '';
  return name;
}

/** True when `name` is already in canonical form (sanitising it changes nothing). */
export function isValidStreamName(name: string): boolean {
  return name.length > 0 && sanitizeStreamName(name) === name;
}

/** The configured stream a name uses: the part before the first `+` (`live+alice` -> `live`). */
export function baseName(name: string): string {
  const i = name.indexOf('+');
  return i >= 0 ? name.slice(0, i) : name;
}

/** The wildcard part after the first `+` (`live+alice` -> `alice`), '' when there is none. */
export function wildcardSuffix(name: string): string {
  const i = name.indexOf('+');
  return i >= 0 ? name.slice(i + 1) : '';
}

/**
 * Splits `NAME?query` as it arrives in an RTMP play/publish name, an SRT streamid or a URL path
 * segment: `name` is the sanitised name ('' when invalid), `query` the parameters after the
 * first `?` (a stream name never contains one).
 */
export function splitNameQuery(raw: string): { name: string; query: URLSearchParams } {
  const s = typeof raw === 'string' ? raw : '';
  const q = s.indexOf('?');
  return {
    name: sanitizeStreamName(s),
    query: new URLSearchParams(q >= 0 ? s.slice(q + 1) : ''),
  };
}
