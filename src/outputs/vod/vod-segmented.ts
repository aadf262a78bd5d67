// Segmented outputs of a VoD stream, on the live outputs' URLs (reference §6.3): HLS with TS
// segments (`/hls/NAME/...`), CMAF HLS and DASH (`/cmaf/NAME/...`). The playlists list the whole
// file at once (EXT-X-PLAYLIST-TYPE:VOD + ENDLIST; a static MPD), from the index alone: segments
// are the DTSC fragments of the file's first video track (keyframes about 1.9 s apart, as
// MistServer cuts them), so every rendition is cut at the same times. A segment's URL carries its
// times, so any worker builds it from the file without state: read [start, end) and mux.
// A file still growing (a recording) gets an EVENT playlist without ENDLIST, and a new index when
// it changed, which is also how a track appended to a DTSC file appears in the next playlist.

import { TsMuxer } from '../../containers/ts/mux.js';
import { mediaPlaylist, multivariantPlaylist } from '../../containers/hls/playlist.js';
import type { HlsSegment } from '../../containers/hls/segment-index.js';
import { initSegment } from '../../containers/mp4/init.js';
import { FragmentWriter, type FragmentGroup } from '../../containers/mp4/fragment.js';
import { mpd, type DashRepresentation } from '../../containers/dash/mpd.js';
import type { AudioTrack, Packet, Track, VideoTrack } from '../../media/types.js';
import type { MediaRequest, MediaResponder } from '../../protocols/http/media-server.js';
import type { VodFile } from '../../vod/vod-library.js';
import type { VodTrackIndex } from '../../vod/vod-index.js';
import { readVod } from '../../vod/vod-reader.js';
import { variantPlan } from '../hls-variants.js';
import { selectTracks, type FormatCapability } from '../track-select.js';
import { TS_CAPABILITY } from '../ts-writer.js';
import { CMAF_CAPABILITY } from '../cmaf.js';
import { tokenQuery } from '../play.js';

export interface VodSegment {
  startMs: number;
  endMs: number;
}

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';
const TEXT = 'text/plain; charset=utf-8';
/** Segments of a finished file never change; a growing file's index is checked again soon. */
const IMMUTABLE = 'public, max-age=3600, immutable';

function fits(cap: FormatCapability, t: Track): boolean {
  return cap.codecs[t.type]?.includes(t.codec) === true;
}

/** The track whose fragments cut every rendition: the first video track a format carries, else the first track. */
function boundaryTrack(file: VodFile, cap: FormatCapability): VodTrackIndex | undefined {
  const carried = file.index.tracks.filter((t) => fits(cap, t.track));
  return carried.find((t) => t.track.type === 'video') ?? carried[0];
}

/** The file's segments: its boundary track's DTSC fragments, the first from the file's start, the last to its end. */
export function vodSegments(file: VodFile, cap: FormatCapability): VodSegment[] {
  const b = boundaryTrack(file, cap);
  if (!b) return [];
  const keys = b.tables.keys;
  const starts = b.tables.fragments.map((f) => keys[f.firstKey]?.timeMs ?? 0);
  if (starts.length === 0) starts.push(file.index.startMs);
  starts[0] = Math.min(starts[0]!, file.index.startMs);
  const end = Math.max(file.index.endMs, starts[starts.length - 1]! + 1);
  return starts.map((startMs, i) => ({ startMs, endMs: starts[i + 1] ?? end }));
}

async function collect(file: VodFile, seg: VodSegment, trackIds: number[], syncTrackId: number): Promise<Packet[]> {
  const out: Packet[] = [];
  for await (const p of readVod(file, { startMs: seg.startMs, stopMs: seg.endMs, trackIds, syncTrackId })) out.push(p);
  return out;
}

function segmentAt(segments: readonly VodSegment[], startMs: number): VodSegment | undefined {
  return segments.find((s) => s.startMs === startMs);
}

interface Rendition {
  tracks: Track[];
  ids: number[];
  syncTrackId: number;
}

/** The tracks of rendition `V_A` (track indexes; empty for none). */
function rendition(file: VodFile, cap: FormatCapability, video: string, audio: string): Rendition | undefined {
  const all = file.index.tracks.map((t) => t.track);
  const sel = selectTracks(all, { video: video === '' ? 'none' : video, audio: audio === '' ? 'none' : audio }, cap);
  const tracks = all.filter((t) => sel.ids.has(t.id));
  return tracks.length === 0 ? undefined : { tracks, ids: tracks.map((t) => t.id), syncTrackId: sel.syncTrackId };
}

function hlsSegments(segments: readonly VodSegment[], ext: string): HlsSegment[] {
  return segments.map((s, i) => ({ sequence: i, startMs: s.startMs, durationMs: s.endMs - s.startMs, uri: ext === 'ts' ? `${s.startMs}_${s.endMs}.ts` : `chunk_${s.startMs}.m4s` }));
}

function averageBps(file: VodFile): number {
  const durationS = Math.max(0.001, (file.index.endMs - file.index.startMs) / 1000);
  let bytes = 0;
  for (const t of file.index.tracks) for (const f of t.tables.fragments) bytes += f.sizeBytes;
  return Math.round((bytes * 8) / durationS);
}

export interface VodSegmentedContext {
  file: VodFile;
  name: string;
  req: MediaRequest;
  res: MediaResponder;
  session: string;
}

function text(ctx: VodSegmentedContext, status: number, body: string): true {
  ctx.res.send(status, { 'Content-Type': TEXT, 'X-Haze-Session': ctx.session }, body);
  return true;
}

function multivariant(ctx: VodSegmentedContext, cap: FormatCapability, version: number): true {
  const all = ctx.file.index.tracks.map((t) => t.track);
  const plan = variantPlan(all, (t) => fits(cap, t), averageBps(ctx.file));
  if (plan.variants.length === 0) return text(ctx, 415, `No track of ${ctx.name} fits HLS\n`);
  const query = tokenQuery(ctx.req);
  ctx.res.send(200, { 'Content-Type': PLAYLIST_TYPE, 'Cache-Control': 'no-cache', 'X-Haze-Session': ctx.session }, multivariantPlaylist(plan.variants, plan.audioGroups, { version, ...(query ? { query } : {}) }));
  return true;
}

function media(ctx: VodSegmentedContext, body: Buffer, contentType: string): true {
  ctx.res.send(200, { 'Content-Type': contentType, 'Cache-Control': ctx.file.growing ? 'no-cache' : IMMUTABLE, 'X-Haze-Session': ctx.session }, body);
  return true;
}

function mediaPlaylistText(ctx: VodSegmentedContext, segments: readonly VodSegment[], ext: 'ts' | 'm4s'): true {
  const query = tokenQuery(ctx.req);
  const body = mediaPlaylist(
    { segments: hlsSegments(segments, ext), ended: !ctx.file.growing },
    { playlistType: ctx.file.growing ? 'EVENT' : 'VOD', ...(ext === 'm4s' ? { initUri: 'init.m4s', version: 7, independentSegments: true } : { version: 3 }), ...(query ? { query } : {}) },
  );
  ctx.res.send(200, { 'Content-Type': PLAYLIST_TYPE, 'Cache-Control': 'no-cache', 'X-Haze-Session': ctx.session }, body);
  return true;
}

/** `/hls/NAME/index.m3u8`, `/hls/NAME/V_A/index.m3u8`, `/hls/NAME/V_A/START_END.ts`. */
export async function serveVodHls(ctx: VodSegmentedContext, rest: string): Promise<boolean> {
  if (rest === 'index.m3u8') return multivariant(ctx, TS_CAPABILITY, 3);
  const m = /^(\d*)_(\d*)\/(index\.m3u8|(\d{1,15})_(\d{1,15})\.ts)$/.exec(rest);
  if (!m) return false;
  const r = rendition(ctx.file, TS_CAPABILITY, m[1]!, m[2]!);
  if (!r) return text(ctx, 404, `No tracks ${m[1]}_${m[2]} in ${ctx.name}\n`);
  const segments = vodSegments(ctx.file, TS_CAPABILITY);
  if (m[3] === 'index.m3u8') return mediaPlaylistText(ctx, segments, 'ts');
  const seg = { startMs: Number(m[4]), endMs: Number(m[5]) };
  if (!segments.some((s) => s.startMs === seg.startMs && s.endMs === seg.endMs)) return text(ctx, 404, `No segment ${m[3]} in ${ctx.name}\n`);
  const muxer = new TsMuxer(r.tracks);
  const chunks = (await collect(ctx.file, seg, r.ids, r.syncTrackId)).map((p) => muxer.mux(p));
  return media(ctx, Buffer.concat(chunks), 'video/mp2t');
}

function fragmentGroups(tracks: readonly Track[], packets: readonly Packet[]): FragmentGroup[] {
  return tracks.map((t) => ({ trackId: t.id, packets: packets.filter((p) => p.trackId === t.id) })).filter((g) => g.packets.length > 0);
}

/** AC-3 and MP3 sample entries are derived from a frame, which the index does not keep. */
function needsFirstFrames(tracks: readonly Track[]): boolean {
  return tracks.some((t) => t.codec === 'AC3' || t.codec === 'MP3');
}

/** `/cmaf/NAME/...` for a VoD stream: CMAF HLS (V_A renditions) and DASH (a representation per track). */
export async function serveVodCmaf(ctx: VodSegmentedContext, rest: string): Promise<boolean> {
  const { file } = ctx;
  if (rest === 'index.m3u8') return multivariant(ctx, CMAF_CAPABILITY, 7);
  const segments = vodSegments(file, CMAF_CAPABILITY);
  if (rest === 'index.mpd') {
    const reps: DashRepresentation[] = file.index.tracks
      .filter((t) => (t.track.type === 'video' || t.track.type === 'audio') && fits(CMAF_CAPABILITY, t.track))
      .map((t) => ({ id: String(t.track.id), track: t.track as VideoTrack | AudioTrack, bandwidthBps: Math.max(1, t.maxBps * 8), segments: segments.map((s) => ({ startMs: s.startMs, durationMs: s.endMs - s.startMs })) }));
    if (reps.length === 0) return text(ctx, 415, `No track of ${ctx.name} fits CMAF\n`);
    const query = tokenQuery(ctx.req);
    const now = Date.now();
    const body = mpd(reps, { ended: !file.growing, availabilityStartTimeMs: 0, publishTimeMs: now, cmaf: true, ...(query ? { query } : {}) });
    ctx.res.send(200, { 'Content-Type': 'application/dash+xml', 'Cache-Control': 'no-cache', 'X-Haze-Session': ctx.session }, body);
    return true;
  }
  const hls = /^(\d*)_(\d*)\/(index\.m3u8|init\.m4s|chunk_(\d{1,15})\.m4s)$/.exec(rest);
  const dash = /^(\d{1,10})\/(init\.m4s|chunk_(\d{1,15})\.m4s)$/.exec(rest);
  let r: Rendition | undefined;
  let what: string;
  let startText: string | undefined;
  if (hls) {
    r = rendition(file, CMAF_CAPABILITY, hls[1]!, hls[2]!);
    what = hls[3]!;
    startText = hls[4];
    if (r && what === 'index.m3u8') return mediaPlaylistText(ctx, segments, 'm4s');
  } else if (dash) {
    const t = file.index.tracks.find((x) => x.track.id === Number(dash[1]) && fits(CMAF_CAPABILITY, x.track));
    r = t ? { tracks: [t.track], ids: [t.track.id], syncTrackId: t.track.id } : undefined;
    what = dash[2]!;
    startText = dash[3];
  } else return false;
  if (!r) return text(ctx, 404, `No such tracks in ${ctx.name}\n`);
  const contentType = r.tracks.every((t) => t.type === 'audio') ? 'audio/mp4' : 'video/mp4';
  if (what === 'init.m4s') return media(ctx, initSegment(r.tracks, needsFirstFrames(r.tracks) ? { firstFrames: await firstFramesOf(file, r) } : {}), contentType);
  const seg = segmentAt(segments, Number(startText));
  if (!seg) return text(ctx, 404, `No segment ${what} in ${ctx.name}\n`);
  const packets = await collect(file, seg, r.ids, hls ? r.syncTrackId : (boundaryTrack(file, CMAF_CAPABILITY)?.track.id ?? r.syncTrackId));
  const writer = new FragmentWriter(r.tracks);
  const sequence = segments.indexOf(seg) + 1;
  const data = hls ? writer.fragmentMulti(fragmentGroups(r.tracks, packets), sequence) : writer.fragment(r.ids[0]!, packets, sequence);
  return media(ctx, data, contentType);
}

/** The first frame of each track of `r` (sample entries derived from a frame: AC-3, MP3). */
async function firstFramesOf(file: VodFile, r: Rendition): Promise<Map<number, Buffer>> {
  const out = new Map<number, Buffer>();
  for await (const p of readVod(file, { startMs: file.index.startMs, trackIds: r.ids, syncTrackId: r.syncTrackId })) {
    if (!out.has(p.trackId)) out.set(p.trackId, p.data);
    if (out.size === r.ids.length) break;
  }
  return out;
}
