// Line and attribute-list reader for HLS playlists, RFC 8216 §4.1 (lines: URI, blank, comment or
// tag), §4.2 (attribute lists and value types), with the tag table of RFC 8216 §4.3 and
// draft-pantos-hls-rfc8216bis §4.4 (LL-HLS tags, EXT-X-GAP, EXT-X-BITRATE, EXT-X-DEFINE,
// EXT-X-CONTENT-STEERING). Test-only: it reports what it finds wrong as strings instead of throwing.

export type AttrType = 'int' | 'float' | 'sfloat' | 'quoted' | 'hex' | 'resolution' | 'enum' | 'quotedOrNone';

export interface AttrSpec {
  type: AttrType;
  values?: readonly string[];
}

/** Where a tag may appear: both playlist kinds, only media playlists, only multivariant ones. */
export type TagKind = 'basic' | 'both' | 'media' | 'segment' | 'metadata' | 'multivariant';

export interface TagSpec {
  kind: TagKind;
  /** What follows the colon. */
  form: 'none' | 'attrs' | 'int' | 'enum' | 'extinf' | 'date' | 'byterange';
  section: string;
  attrs?: Record<string, AttrSpec>;
  required?: readonly string[];
  values?: readonly string[];
  /** At most once per playlist. */
  once?: boolean;
  /** `X-` client attributes allowed (EXT-X-DATERANGE). */
  clientAttrs?: boolean;
}

const YES: AttrSpec = { type: 'enum', values: ['YES'] };
const YES_NO: AttrSpec = { type: 'enum', values: ['YES', 'NO'] };
const Q: AttrSpec = { type: 'quoted' };
const INT: AttrSpec = { type: 'int' };
const FLOAT: AttrSpec = { type: 'float' };

const KEY_ATTRS: Record<string, AttrSpec> = {
  METHOD: { type: 'enum', values: ['NONE', 'AES-128', 'SAMPLE-AES'] },
  URI: Q,
  IV: { type: 'hex' },
  KEYFORMAT: Q,
  KEYFORMATVERSIONS: Q,
};

const VARIANT_ATTRS: Record<string, AttrSpec> = {
  BANDWIDTH: INT,
  'AVERAGE-BANDWIDTH': INT,
  SCORE: FLOAT,
  CODECS: Q,
  'SUPPLEMENTAL-CODECS': Q,
  RESOLUTION: { type: 'resolution' },
  'HDCP-LEVEL': { type: 'enum', values: ['TYPE-0', 'TYPE-1', 'NONE'] },
  'ALLOWED-CPC': Q,
  'VIDEO-RANGE': { type: 'enum', values: ['SDR', 'HLG', 'PQ'] },
  'REQ-VIDEO-LAYOUT': Q,
  'STABLE-VARIANT-ID': Q,
  VIDEO: Q,
  'PATHWAY-ID': Q,
  'PROGRAM-ID': INT,
};

/** Every tag RFC 8216 and rfc8216bis define. */
export const TAGS: Readonly<Record<string, TagSpec>> = {
  EXTM3U: { kind: 'basic', form: 'none', section: 'RFC 8216 §4.3.1.1', once: true },
  'EXT-X-VERSION': { kind: 'basic', form: 'int', section: 'RFC 8216 §4.3.1.2', once: true },
  EXTINF: { kind: 'segment', form: 'extinf', section: 'RFC 8216 §4.3.2.1' },
  'EXT-X-BYTERANGE': { kind: 'segment', form: 'byterange', section: 'RFC 8216 §4.3.2.2' },
  'EXT-X-DISCONTINUITY': { kind: 'segment', form: 'none', section: 'RFC 8216 §4.3.2.3' },
  'EXT-X-KEY': { kind: 'segment', form: 'attrs', section: 'RFC 8216 §4.3.2.4', attrs: KEY_ATTRS, required: ['METHOD'] },
  'EXT-X-MAP': { kind: 'segment', form: 'attrs', section: 'RFC 8216 §4.3.2.5', attrs: { URI: Q, BYTERANGE: Q }, required: ['URI'] },
  'EXT-X-PROGRAM-DATE-TIME': { kind: 'segment', form: 'date', section: 'RFC 8216 §4.3.2.6' },
  'EXT-X-GAP': { kind: 'segment', form: 'none', section: '8216bis §4.4.4.7' },
  'EXT-X-BITRATE': { kind: 'segment', form: 'int', section: '8216bis §4.4.4.8' },
  'EXT-X-PART': {
    kind: 'segment',
    form: 'attrs',
    section: '8216bis §4.4.4.9',
    attrs: { URI: Q, DURATION: FLOAT, INDEPENDENT: YES, BYTERANGE: Q, GAP: YES },
    required: ['URI', 'DURATION'],
  },
  'EXT-X-DATERANGE': {
    kind: 'metadata',
    form: 'attrs',
    section: 'RFC 8216 §4.3.2.7',
    attrs: {
      ID: Q,
      CLASS: Q,
      'START-DATE': Q,
      CUE: Q,
      'END-DATE': Q,
      DURATION: FLOAT,
      'PLANNED-DURATION': FLOAT,
      'SCTE35-CMD': { type: 'hex' },
      'SCTE35-OUT': { type: 'hex' },
      'SCTE35-IN': { type: 'hex' },
      'END-ON-NEXT': YES,
    },
    required: ['ID'],
    clientAttrs: true,
  },
  'EXT-X-TARGETDURATION': { kind: 'media', form: 'int', section: 'RFC 8216 §4.3.3.1', once: true },
  'EXT-X-MEDIA-SEQUENCE': { kind: 'media', form: 'int', section: 'RFC 8216 §4.3.3.2', once: true },
  'EXT-X-DISCONTINUITY-SEQUENCE': { kind: 'media', form: 'int', section: 'RFC 8216 §4.3.3.3', once: true },
  'EXT-X-ENDLIST': { kind: 'media', form: 'none', section: 'RFC 8216 §4.3.3.4', once: true },
  'EXT-X-PLAYLIST-TYPE': { kind: 'media', form: 'enum', section: 'RFC 8216 §4.3.3.5', values: ['EVENT', 'VOD'], once: true },
  'EXT-X-I-FRAMES-ONLY': { kind: 'media', form: 'none', section: 'RFC 8216 §4.3.3.6', once: true },
  'EXT-X-PART-INF': { kind: 'media', form: 'attrs', section: '8216bis §4.4.3.7', attrs: { 'PART-TARGET': FLOAT }, required: ['PART-TARGET'], once: true },
  'EXT-X-SERVER-CONTROL': {
    kind: 'media',
    form: 'attrs',
    section: '8216bis §4.4.3.8',
    attrs: { 'CAN-SKIP-UNTIL': FLOAT, 'CAN-SKIP-DATERANGES': YES, 'HOLD-BACK': FLOAT, 'PART-HOLD-BACK': FLOAT, 'CAN-BLOCK-RELOAD': YES },
    once: true,
  },
  'EXT-X-SKIP': {
    kind: 'metadata',
    form: 'attrs',
    section: '8216bis §4.4.5.2',
    attrs: { 'SKIPPED-SEGMENTS': INT, 'RECENTLY-REMOVED-DATERANGES': Q },
    required: ['SKIPPED-SEGMENTS'],
    once: true,
  },
  'EXT-X-PRELOAD-HINT': {
    kind: 'metadata',
    form: 'attrs',
    section: '8216bis §4.4.5.3',
    attrs: { TYPE: { type: 'enum', values: ['PART', 'MAP'] }, URI: Q, 'BYTERANGE-START': INT, 'BYTERANGE-LENGTH': INT },
    required: ['TYPE', 'URI'],
  },
  'EXT-X-RENDITION-REPORT': {
    kind: 'metadata',
    form: 'attrs',
    section: '8216bis §4.4.5.4',
    attrs: { URI: Q, 'LAST-MSN': INT, 'LAST-PART': INT },
    required: ['URI'],
  },
  'EXT-X-MEDIA': {
    kind: 'multivariant',
    form: 'attrs',
    section: 'RFC 8216 §4.3.4.1',
    attrs: {
      TYPE: { type: 'enum', values: ['AUDIO', 'VIDEO', 'SUBTITLES', 'CLOSED-CAPTIONS'] },
      URI: Q,
      'GROUP-ID': Q,
      LANGUAGE: Q,
      'ASSOC-LANGUAGE': Q,
      NAME: Q,
      'STABLE-RENDITION-ID': Q,
      DEFAULT: YES_NO,
      AUTOSELECT: YES_NO,
      FORCED: YES_NO,
      'INSTREAM-ID': Q,
      'BIT-DEPTH': INT,
      'SAMPLE-RATE': INT,
      CHARACTERISTICS: Q,
      CHANNELS: Q,
    },
    required: ['TYPE', 'GROUP-ID', 'NAME'],
  },
  'EXT-X-STREAM-INF': {
    kind: 'multivariant',
    form: 'attrs',
    section: 'RFC 8216 §4.3.4.2',
    attrs: { ...VARIANT_ATTRS, 'FRAME-RATE': FLOAT, AUDIO: Q, SUBTITLES: Q, 'CLOSED-CAPTIONS': { type: 'quotedOrNone' } },
    // CODECS is a SHOULD in §4.3.4.2; Haze always knows its codecs, so it is required here.
    required: ['BANDWIDTH', 'CODECS'],
  },
  'EXT-X-I-FRAME-STREAM-INF': {
    kind: 'multivariant',
    form: 'attrs',
    section: 'RFC 8216 §4.3.4.3',
    attrs: { ...VARIANT_ATTRS, URI: Q },
    required: ['BANDWIDTH', 'URI'],
  },
  'EXT-X-SESSION-DATA': {
    kind: 'multivariant',
    form: 'attrs',
    section: 'RFC 8216 §4.3.4.4',
    attrs: { 'DATA-ID': Q, VALUE: Q, URI: Q, FORMAT: { type: 'enum', values: ['JSON', 'RAW'] }, LANGUAGE: Q },
    required: ['DATA-ID'],
  },
  'EXT-X-SESSION-KEY': { kind: 'multivariant', form: 'attrs', section: 'RFC 8216 §4.3.4.5', attrs: KEY_ATTRS, required: ['METHOD'] },
  'EXT-X-CONTENT-STEERING': { kind: 'multivariant', form: 'attrs', section: '8216bis §4.4.6.6', attrs: { 'SERVER-URI': Q, 'PATHWAY-ID': Q }, required: ['SERVER-URI'], once: true },
  'EXT-X-INDEPENDENT-SEGMENTS': { kind: 'both', form: 'none', section: 'RFC 8216 §4.3.5.1', once: true },
  'EXT-X-START': { kind: 'both', form: 'attrs', section: 'RFC 8216 §4.3.5.2', attrs: { 'TIME-OFFSET': { type: 'sfloat' }, PRECISE: YES_NO }, required: ['TIME-OFFSET'], once: true },
  'EXT-X-DEFINE': { kind: 'both', form: 'attrs', section: '8216bis §4.4.2.3', attrs: { NAME: Q, VALUE: Q, IMPORT: Q, QUERYPARAM: Q } },
};

export interface Line {
  /** 1-based line number. */
  no: number;
  text: string;
}

export interface TagLine extends Line {
  kind: 'tag';
  name: string;
  /** Text after the colon; undefined when there is none. */
  value: string | undefined;
  spec: TagSpec | undefined;
  /** Attribute values (quotes removed) when the tag takes an attribute list and it parsed. */
  attrs: Map<string, string> | undefined;
}

export interface UriLine extends Line {
  kind: 'uri';
}

export type PlaylistLine = TagLine | UriLine;

/** A violation naming the rule, the line and its text. */
export function violation(section: string, line: Line | undefined, message: string): string {
  if (!line) return `${section}: ${message}`;
  const text = line.text.length > 160 ? `${line.text.slice(0, 160)}…` : line.text;
  return `${section} line ${line.no}: ${message} [${text}]`;
}

const DECIMAL_INT = /^[0-9]{1,20}$/;
const DECIMAL_FLOAT = /^[0-9]+(\.[0-9]+)?$/;
const SIGNED_FLOAT = /^-?[0-9]+(\.[0-9]+)?$/;
const HEX = /^0[xX][0-9A-Fa-f]+$/;
const RESOLUTION = /^[0-9]+x[0-9]+$/;
const ENUM_STRING = /^[^",\s]+$/;
const MAX_UINT64 = 2n ** 64n - 1n;

export function isDecimalInteger(s: string): boolean {
  return DECIMAL_INT.test(s) && BigInt(s) <= MAX_UINT64;
}

export function isDecimalFloat(s: string): boolean {
  return DECIMAL_FLOAT.test(s);
}

/**
 * An attribute list (§4.2): `NAME=value` pairs separated by commas, names of [A-Z0-9-], values
 * quoted (no `"`, CR or LF inside) or unquoted (no comma, quote or whitespace), each name once.
 * Returns the raw values (quotes kept, so the type check can tell quoted from unquoted).
 */
export function parseAttributeList(text: string): { attrs: Map<string, string>; error: string | undefined } {
  const attrs = new Map<string, string>();
  let i = 0;
  while (i < text.length) {
    const name = /^[A-Z0-9-]+/.exec(text.slice(i))?.[0];
    if (!name) return { attrs, error: `attribute name expected at "${text.slice(i, i + 20)}"` };
    i += name.length;
    if (text[i] !== '=') return { attrs, error: `"=" expected after ${name}` };
    i++;
    let value: string;
    if (text[i] === '"') {
      const end = text.indexOf('"', i + 1);
      if (end < 0) return { attrs, error: `unterminated quoted string in ${name}` };
      value = text.slice(i, end + 1);
      i = end + 1;
    } else {
      const end = text.indexOf(',', i);
      value = end < 0 ? text.slice(i) : text.slice(i, end);
      i += value.length;
      if (value === '') return { attrs, error: `empty value for ${name}` };
    }
    if (attrs.has(name)) return { attrs, error: `attribute ${name} appears twice (§4.2: MUST NOT)` };
    attrs.set(name, value);
    if (i < text.length) {
      if (text[i] !== ',') return { attrs, error: `"," expected after ${name}=${value}` };
      i++;
      if (i === text.length) return { attrs, error: 'trailing comma' };
    }
  }
  return { attrs, error: undefined };
}

/** Checks one raw value against its type (§4.2); returns a problem or undefined. */
export function checkAttrValue(spec: AttrSpec, raw: string): string | undefined {
  const quoted = raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2;
  switch (spec.type) {
    case 'quoted':
      return quoted ? undefined : 'must be a quoted-string';
    case 'quotedOrNone':
      return quoted || raw === 'NONE' ? undefined : 'must be a quoted-string or NONE';
    case 'int':
      return isDecimalInteger(raw) ? undefined : 'must be a decimal-integer';
    case 'float':
      return DECIMAL_FLOAT.test(raw) ? undefined : 'must be a decimal-floating-point';
    case 'sfloat':
      return SIGNED_FLOAT.test(raw) ? undefined : 'must be a signed-decimal-floating-point';
    case 'hex':
      return HEX.test(raw) ? undefined : 'must be a hexadecimal-sequence';
    case 'resolution':
      return RESOLUTION.test(raw) ? undefined : 'must be a decimal-resolution (WxH)';
    case 'enum':
      if (quoted || !ENUM_STRING.test(raw)) return 'must be an unquoted enumerated-string';
      return spec.values && !spec.values.includes(raw) ? `must be one of ${spec.values.join(', ')}` : undefined;
  }
}

/** ISO 8601 date-time with a time zone, as EXT-X-PROGRAM-DATE-TIME carries it (§4.3.2.6). */
export function isDateTime(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/.exec(s);
  if (!m) return false;
  const [month, day, hour, minute, second] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return false;
  return !Number.isNaN(Date.parse(s));
}

/** Parses the lines; violations of §4.1, §4.2 and the tag value forms go to `out`. */
export function readPlaylist(text: string, out: string[]): PlaylistLine[] {
  const lines: PlaylistLine[] = [];
  if (text.charCodeAt(0) === 0xfeff) out.push(violation('RFC 8216 §4.1', undefined, 'playlist starts with a byte order mark (MUST NOT)'));
  const raw = text.split(/\r?\n/);
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  const counts = new Map<string, number>();
  raw.forEach((t, i) => {
    const line: Line = { no: i + 1, text: t };
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(t)) out.push(violation('RFC 8216 §4.1', line, 'control character (MUST NOT)'));
    if (t.trim() === '') return;
    if (t !== t.trim()) out.push(violation('RFC 8216 §4.1', line, 'leading or trailing whitespace (MUST NOT)'));
    if (!t.startsWith('#')) {
      lines.push({ ...line, kind: 'uri' });
      return;
    }
    if (!t.startsWith('#EXT')) return; // a comment
    const colon = t.indexOf(':');
    const name = (colon < 0 ? t : t.slice(0, colon)).slice(1);
    const value = colon < 0 ? undefined : t.slice(colon + 1);
    const spec = TAGS[name];
    const tag: TagLine = { ...line, kind: 'tag', name, value, spec, attrs: undefined };
    lines.push(tag);
    if (!spec) {
      out.push(violation('RFC 8216 §4.1', line, `unknown tag ${name}`));
      return;
    }
    const n = (counts.get(name) ?? 0) + 1;
    counts.set(name, n);
    if (spec.once && n === 2) out.push(violation(spec.section, line, `${name} appears more than once (MUST NOT)`));
    checkTagValue(tag, spec, out);
  });
  return lines;
}

function checkTagValue(tag: TagLine, spec: TagSpec, out: string[]): void {
  const v = tag.value;
  const bad = (msg: string): void => {
    out.push(violation(spec.section, tag, msg));
  };
  switch (spec.form) {
    case 'none':
      if (v !== undefined) bad(`${tag.name} takes no value`);
      return;
    case 'int':
      if (v === undefined || !isDecimalInteger(v)) bad(`${tag.name} value must be a decimal-integer`);
      return;
    case 'enum':
      if (v === undefined || !spec.values!.includes(v)) bad(`${tag.name} value must be one of ${spec.values!.join(', ')}`);
      return;
    case 'date':
      if (v === undefined || !isDateTime(v)) bad('not an ISO 8601 date-time with time zone (YYYY-MM-DDThh:mm:ss.SSSZ)');
      return;
    case 'byterange':
      if (v === undefined || !/^[0-9]+(@[0-9]+)?$/.test(v)) bad('EXT-X-BYTERANGE value must be <n>[@<o>]');
      return;
    case 'extinf': {
      const m = v === undefined ? null : /^([0-9]+(?:\.[0-9]+)?),(.*)$/.exec(v);
      if (!m) bad('EXTINF must be <duration>,[<title>] with a decimal duration');
      return;
    }
    case 'attrs': {
      if (v === undefined) {
        bad(`${tag.name} needs an attribute list`);
        return;
      }
      const { attrs, error } = parseAttributeList(v);
      if (error) {
        bad(`attribute-list syntax (RFC 8216 §4.2): ${error}`);
        return;
      }
      const values = new Map<string, string>();
      for (const [name, raw] of attrs) {
        const a = spec.attrs?.[name];
        if (!a) {
          if (!(spec.clientAttrs && name.startsWith('X-'))) bad(`unknown attribute ${name} for ${tag.name}`);
        } else {
          const problem = checkAttrValue(a, raw);
          if (problem) bad(`${name} ${problem}`);
        }
        values.set(name, raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2 ? raw.slice(1, -1) : raw);
      }
      for (const r of spec.required ?? []) if (!attrs.has(r)) bad(`${tag.name} lacks the required ${r} attribute`);
      tag.attrs = values;
    }
  }
}
