// HLS playlist parser (RFC 8216 §4), for the HLS pull input and `haze analyse`: a multivariant or
// media playlist, with what breaks the RFC collected in `problems` rather than thrown. It checks
// §4.3.1.1 EXTM3U first, §4.3.3.1 EXT-X-TARGETDURATION (every EXTINF rounded to whole seconds at
// most this), §4.3.2.1 EXTINF before each URI, §4.3.4.2 EXT-X-STREAM-INF with BANDWIDTH followed
// by a URI, §4.3.2.5 EXT-X-MAP (fMP4 init section).

export interface M3u8Segment {
  uri: string;
  durationS: number;
  /** 1-based playlist line of the URI. */
  line: number;
}

export interface M3u8Variant {
  uri: string;
  bandwidth: number;
  line: number;
}

export interface M3u8 {
  master: boolean;
  version: number | undefined;
  targetDurationS: number | undefined;
  mediaSequence: number;
  endList: boolean;
  mapUri: string | undefined;
  segments: M3u8Segment[];
  variants: M3u8Variant[];
  /** Rule breaks, each naming its line. */
  problems: string[];
}

/** Most lines read from a playlist (a bound against garbage). */
const MAX_LINES = 200_000;

function attr(list: string, name: string): string | undefined {
  const re = new RegExp(`(?:^|,)${name}=("[^"]*"|[^,]*)`);
  const m = re.exec(list);
  return m ? m[1]!.replace(/^"|"$/g, '') : undefined;
}

export function parseM3u8(text: string): M3u8 {
  const lines = text.split(/\r?\n/, MAX_LINES);
  const pl: M3u8 = { master: false, version: undefined, targetDurationS: undefined, mediaSequence: 0, endList: false, mapUri: undefined, segments: [], variants: [], problems: [] };
  if ((lines[0] ?? '').replace(/^\uFEFF/, '').trim() !== '#EXTM3U') pl.problems.push('line 1: playlist does not start with #EXTM3U');
  let extinf: number | undefined;
  let streamInf: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    const n = i + 1;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const colon = line.indexOf(':');
      const tag = colon > 0 ? line.slice(0, colon) : line;
      const value = colon > 0 ? line.slice(colon + 1) : '';
      switch (tag) {
        case '#EXT-X-VERSION':
          pl.version = Number(value);
          break;
        case '#EXT-X-TARGETDURATION':
          pl.targetDurationS = Number(value);
          if (!Number.isInteger(pl.targetDurationS) || pl.targetDurationS < 0) pl.problems.push(`line ${n}: EXT-X-TARGETDURATION ${JSON.stringify(value)} is not a whole number`);
          break;
        case '#EXT-X-MEDIA-SEQUENCE':
          pl.mediaSequence = Number(value);
          if (!Number.isInteger(pl.mediaSequence) || pl.mediaSequence < 0) pl.problems.push(`line ${n}: EXT-X-MEDIA-SEQUENCE ${JSON.stringify(value)}`);
          break;
        case '#EXT-X-ENDLIST':
          pl.endList = true;
          break;
        case '#EXT-X-MAP':
          pl.mapUri = attr(value, 'URI');
          if (!pl.mapUri) pl.problems.push(`line ${n}: EXT-X-MAP without URI`);
          break;
        case '#EXTINF': {
          const d = Number(value.split(',')[0]);
          if (!Number.isFinite(d) || d < 0) pl.problems.push(`line ${n}: EXTINF duration ${JSON.stringify(value)}`);
          extinf = Number.isFinite(d) ? d : 0;
          break;
        }
        case '#EXT-X-STREAM-INF':
          pl.master = true;
          streamInf = value;
          if (attr(value, 'BANDWIDTH') === undefined) pl.problems.push(`line ${n}: EXT-X-STREAM-INF without BANDWIDTH`);
          break;
        default:
          break;
      }
      continue;
    }
    if (streamInf !== undefined) {
      pl.variants.push({ uri: line, bandwidth: Number(attr(streamInf, 'BANDWIDTH') ?? 0), line: n });
      streamInf = undefined;
    } else if (extinf !== undefined) {
      pl.segments.push({ uri: line, durationS: extinf, line: n });
      extinf = undefined;
    } else {
      pl.problems.push(`line ${n}: URI ${JSON.stringify(line.slice(0, 80))} without EXTINF or EXT-X-STREAM-INF`);
    }
  }
  if (!pl.master) {
    if (pl.targetDurationS === undefined) pl.problems.push('media playlist without EXT-X-TARGETDURATION');
    else {
      for (const s of pl.segments) {
        if (Math.round(s.durationS) > pl.targetDurationS) pl.problems.push(`line ${s.line}: segment of ${s.durationS} s is longer than the target duration ${pl.targetDurationS} s`);
      }
    }
    if (pl.segments.length === 0 && pl.endList) pl.problems.push('ended media playlist without segments');
  } else if (pl.variants.length === 0) pl.problems.push('multivariant playlist without variants');
  if (pl.master && pl.segments.length > 0) pl.problems.push('playlist mixes variants and segments');
  return pl;
}
