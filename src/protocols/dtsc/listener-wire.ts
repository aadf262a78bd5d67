// Pure parts of the dtsc:// listener (reference/mistserver.md §2.4, §2.6): MistServer's reply
// texts, the live DTSC header a puller gets, the DTP2 writer with MistServer's wire track ids
// (renumbered 1..n in order of appearance, as MistServer sends track index + 1), the track
// selection of a `play` command and the checks behind `check_key_duration`.
//
// Live header as written here (Meta::send in skipDynamic mode, §2.4 / Appendix A.3):
//   E0 live 1 | version 4 | unixzero <ms> | tracks E0
//        "<type>_<codec>_..._<wireId-1>" E0 trackid firstms lastms bps maxbps init codec [lang] type
//                                            audio: rate size channels | video: width height fpks efpks

import { randomBytes } from 'node:crypto';
import { encodeDtcm, encodeDtp2 } from '../../containers/dtsc/packets.js';
import { writeDtscHeader, type DtscTrack } from '../../containers/dtsc/header.js';
import type { Packet, Track } from '../../media/types.js';
import type { FormatWriter, SelectTracks, TrackSelection } from '../../outputs/feed.js';
import { selectTracks, type FormatCapability, type SelectorQuery } from '../../outputs/track-select.js';
import { HAZE_VERSION } from '../../util/version.js';
import { DTSC_INVALID_HEADER_TEXT } from './frame-splitter.js';

/** The texts MistServer's dtsc:// output (OutDTSC) answers with, so MistServer peers log the same lines. */
export const DTSC_TEXT = {
  pong: 'Pong!',
  reset: 'Internal state reset',
  cleared: "You're cleared for pushing! DTSC_HEAD please?",
  pushRefused: 'Push not allowed - stream and/or password incorrect',
  headNotCleared: 'DTSC_HEAD ignored: you are not cleared for pushing data!',
  dataNotCleared: 'DTSC_V2 ignored: you are not cleared for pushing data!',
  unannounced: 'DTSC_V2 received for a track that was not announced in a header!',
  invalidHeader: DTSC_INVALID_HEADER_TEXT,
  keyMatches: 'Key duration matches upstream',
} as const;

/** The `ok` after a pushed DTSC header. */
export function headParsedText(prevTracks: number, nowTracks: number): string {
  return `DTSC_HEAD parsed, we went from ${prevTracks} to ${nowTracks} tracks. Bring on those data packets!`;
}

/** The `error` a puller gets when its key duration does not match (it then reconnects). */
export function keyMismatchText(host: string, longestKeyMs: number, askedMs: number): string {
  return `Key duration mismatch; disconnecting ${host} to recover (${longestKeyMs} -> ${askedMs})`;
}

/** The greeting sent on accept: `{"cmd":"hi","pack_method":2,"salt":<32 hex>,"version":...}` (members sorted). */
export function hiCommand(): Buffer {
  return encodeDtcm({ cmd: 'hi', pack_method: 2, salt: randomBytes(16).toString('hex'), version: `Haze/${HAZE_VERSION}` });
}

/** What the live header needs to know of the stream (a StreamHub satisfies it). */
export interface LiveTimeline {
  readonly firstMs: number;
  readonly lastMs: number;
  readonly unixZeroMs: number;
}

/**
 * Encodes the live header of `tracks` with wire ids from `wireIds` (hub id -> wire id). Per-track
 * firstms/lastms are the stream's (the hub keeps one window for all tracks); maxbps is bps
 * (Haze does not measure peaks); efpks 0 (not measured), as MistServer writes for an unmeasured track.
 */
export function liveHeaderFrame(tracks: readonly Track[], wireIds: ReadonlyMap<number, number>, timeline: LiveTimeline): Buffer {
  const firstMs = Math.max(0, timeline.firstMs);
  const lastMs = Math.max(firstMs, timeline.lastMs);
  const dtscTracks: DtscTrack[] = [];
  for (const t of tracks) {
    const wireId = wireIds.get(t.id);
    if (wireId === undefined) continue;
    dtscTracks.push({ ...t, id: wireId, idx: wireId - 1, firstMs, lastMs, maxBps: t.bps });
  }
  return writeDtscHeader({ live: true, vod: false, unixzeroMs: Math.round(timeline.unixZeroMs), tracks: dtscTracks }, { withIndex: false });
}

/**
 * The dtsc:// pull format for the shared feeds (outputs/feed.ts): one DTP2 serialisation per
 * packet for every puller of the same selection. Wire ids are handed out 1, 2, ... in order of
 * appearance and never reused within the feed, so a track change never renames a track.
 */
export class DtscLiveWriter implements FormatWriter {
  private readonly wireIds = new Map<number, number>();
  private nextWireId = 1;
  private tracks: readonly Track[] = [];

  constructor(private readonly timeline: LiveTimeline) {}

  setTracks(tracks: readonly Track[]): void {
    this.tracks = tracks;
    for (const t of tracks) if (!this.wireIds.has(t.id)) this.wireIds.set(t.id, this.nextWireId++);
  }

  header(): Buffer {
    return liveHeaderFrame(this.tracks, this.wireIds, this.timeline);
  }

  /** A new header replaces the puller's metadata (§2.6: re-sent when the track set changes). */
  tracksChanged(): Buffer {
    return this.header();
  }

  packet(p: Packet): Buffer | null {
    const wireId = this.wireIds.get(p.trackId);
    return wireId === undefined ? null : encodeDtp2(p, wireId);
  }

  wireIdOf(hubTrackId: number): number | undefined {
    return this.wireIds.get(hubTrackId);
  }

  /** The hub track id a puller means by `wireId` (check_key_duration), if it is current. */
  hubTrackIdOf(wireId: number): number | undefined {
    for (const t of this.tracks) if (this.wireIds.get(t.id) === wireId) return t.id;
    return undefined;
  }
}

const SELECTOR_TYPES = ['video', 'audio', 'subtitle', 'meta'] as const;

/** The selector members of a `play` command (`audio=`, `video=` ... of the dtsc:// URL's query). */
export function playSelector(get: (key: string) => string | number | undefined): SelectorQuery {
  const q: SelectorQuery = {};
  for (const type of SELECTOR_TYPES) {
    const v = get(type);
    if (v !== undefined) q[type] = String(v);
  }
  return q;
}

/**
 * Track selection of a puller: every track (MistServer's DTSC output carries `+*`, all codecs,
 * several per type), narrowed per type by a selector when the play command has one.
 */
export function dtscSelect(query: SelectorQuery): SelectTracks {
  return (tracks: readonly Track[]): TrackSelection => {
    const codecs: Partial<Record<Track['type'], string[]>> = {};
    for (const t of tracks) (codecs[t.type] ??= []).push(t.codec);
    const cap: FormatCapability = { codecs, singlePerType: false };
    const picked = selectTracks(tracks, query, cap).ids;
    const chosen = tracks.filter((t) => (query[t.type] ? picked.has(t.id) : true));
    const sync = chosen.find((t) => t.type === 'video') ?? chosen[0];
    return { ids: new Set(chosen.map((t) => t.id)), syncTrackId: sync ? sync.id : -1 };
  };
}

/**
 * Longest complete key (keyframe to next keyframe) of `trackId` among `packets`, ms; undefined
 * with fewer than two keyframes (the newest key is still growing, as MistServer skips it).
 */
export function longestKeyMs(packets: readonly Packet[], trackId: number): number | undefined {
  let prev = -1;
  let longest: number | undefined;
  for (const p of packets) {
    if (p.trackId !== trackId || !p.keyframe) continue;
    if (prev >= 0) longest = Math.max(longest ?? 0, p.timeMs - prev);
    prev = p.timeMs;
  }
  return longest;
}

/** Whether a puller's `check_key_duration` of `askedMs` is out of line (MistServer: more than 1.2 x the longest key). */
export function keyDurationMismatch(longestMs: number, askedMs: number): boolean {
  return askedMs > longestMs * 1.2;
}
