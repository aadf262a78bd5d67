// Just enough of an HLS playlist reader for the benchmark's viewers (RFC 8216bis): §4.4.6.2
// EXT-X-STREAM-INF (multivariant), §4.4.3.1 EXT-X-TARGETDURATION, §4.4.3.2
// EXT-X-MEDIA-SEQUENCE, §4.4.4.1 EXTINF, §4.4.4.5 EXT-X-MAP, §4.4.4.9 EXT-X-PART,
// §4.4.3.7 EXT-X-PART-INF, §4.4.5.1 EXT-X-SKIP, §4.4.5.3 EXT-X-PRELOAD-HINT, §4.4.3.4 EXT-X-ENDLIST.
// Parts are numbered as delivery directives count them (§6.2.5.2): the Media Sequence Number of
// the segment they belong to and their index in it; parts after the last EXTINF belong to the
// next segment, the one being cut.

export interface PlaylistPart {
  uri: string;
  msn: number;
  index: number;
  independent: boolean;
}

export interface PlaylistSegment {
  uri: string;
  msn: number;
  durationMs: number;
}

export interface Playlist {
  /** Variant playlist URIs when this is a multivariant playlist (empty otherwise). */
  variants: string[];
  targetDurationMs: number;
  /** EXT-X-PART-INF PART-TARGET, ms; 0 without it. */
  partTargetMs: number;
  segments: PlaylistSegment[];
  parts: PlaylistPart[];
  /** EXT-X-PRELOAD-HINT TYPE=PART, numbered as the part that follows the listed ones. */
  hint: PlaylistPart | undefined;
  mapUri: string | undefined;
  /** EXT-X-SERVER-CONTROL CAN-SKIP-UNTIL, ms; 0 when delta updates are not offered. */
  canSkipUntilMs: number;
  /** MSN of the segment after the last complete one (the one being cut). */
  nextMsn: number;
  ended: boolean;
}

const MAX_LINES = 100_000;

const attrPatterns = new Map<string, RegExp>();

function attr(line: string, name: string): string | undefined {
  let re = attrPatterns.get(name);
  if (!re) attrPatterns.set(name, (re = new RegExp(`(?:^|[:,])${name}=("([^"]*)"|[^,]*)`)));
  const m = re.exec(line);
  if (!m) return undefined;
  return m[2] ?? m[1];
}

/** Parses playlist text; throws on text that is not a playlist. */
export function parsePlaylist(text: string): Playlist {
  const lines = text.split('\n', MAX_LINES);
  if (lines[0]?.trim() !== '#EXTM3U') throw new Error('not a playlist (no #EXTM3U)');
  const out: Playlist = { variants: [], targetDurationMs: 0, partTargetMs: 0, segments: [], parts: [], hint: undefined, mapUri: undefined, canSkipUntilMs: 0, nextMsn: 0, ended: false };
  let msn = 0;
  let partIndex = 0;
  let pendingDurationMs = -1;
  let pendingVariant = false;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line.length === 0) continue;
    if (line.charCodeAt(0) !== 0x23 /* # */) {
      if (pendingVariant) out.variants.push(line);
      else if (pendingDurationMs >= 0) {
        out.segments.push({ uri: line, msn, durationMs: pendingDurationMs });
        msn++;
        partIndex = 0;
      }
      pendingVariant = false;
      pendingDurationMs = -1;
      continue;
    }
    if (line.startsWith('#EXTINF:')) pendingDurationMs = Math.round(parseFloat(line.slice(8)) * 1000);
    else if (line.startsWith('#EXT-X-PART:')) {
      const uri = attr(line, 'URI');
      if (uri !== undefined) out.parts.push({ uri, msn, index: partIndex++, independent: attr(line, 'INDEPENDENT') === 'YES' });
    } else if (line.startsWith('#EXT-X-PRELOAD-HINT:')) {
      const uri = attr(line, 'URI');
      if (uri !== undefined && attr(line, 'TYPE') === 'PART') out.hint = { uri, msn, index: partIndex, independent: false };
    } else if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) msn = parseInt(line.slice(22), 10) || 0;
    else if (line.startsWith('#EXT-X-SKIP:')) msn += parseInt(attr(line, 'SKIPPED-SEGMENTS') ?? '0', 10) || 0;
    else if (line.startsWith('#EXT-X-TARGETDURATION:')) out.targetDurationMs = (parseInt(line.slice(22), 10) || 0) * 1000;
    else if (line.startsWith('#EXT-X-PART-INF:')) out.partTargetMs = Math.round(parseFloat(attr(line, 'PART-TARGET') ?? '0') * 1000) || 0;
    else if (line.startsWith('#EXT-X-MAP:')) out.mapUri = attr(line, 'URI');
    else if (line.startsWith('#EXT-X-SERVER-CONTROL:')) out.canSkipUntilMs = Math.round(parseFloat(attr(line, 'CAN-SKIP-UNTIL') ?? '0') * 1000) || 0;
    else if (line.startsWith('#EXT-X-STREAM-INF:')) pendingVariant = true;
    else if (line === '#EXT-X-ENDLIST') out.ended = true;
  }
  out.nextMsn = msn;
  return out;
}

/** Orders parts by (msn, index): negative when a comes first. */
export function comparePosition(a: { msn: number; index: number }, b: { msn: number; index: number }): number {
  return a.msn !== b.msn ? a.msn - b.msn : a.index - b.index;
}

/** A playlist URI resolved against the path of the playlist it came from (same host). */
export function resolvePath(basePath: string, uri: string): string {
  if (uri.startsWith('/')) return uri;
  if (/^https?:\/\//.test(uri)) return new URL(uri).pathname + new URL(uri).search;
  const q = basePath.indexOf('?');
  const base = q >= 0 ? basePath.slice(0, q) : basePath;
  return base.slice(0, base.lastIndexOf('/') + 1) + uri;
}

/** The URI without its query: the key a segment or part is known by. */
export function uriKey(uri: string): string {
  const q = uri.indexOf('?');
  return q >= 0 ? uri.slice(0, q) : uri;
}
