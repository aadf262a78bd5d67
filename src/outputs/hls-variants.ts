// Which media playlists a stream's multivariant playlist lists, for HLS-TS and CMAF alike
// (reference §6.3: `V_A/index.m3u8`, V and A track indexes, empty for none). One variant per
// video track; one audio track is muxed into the variants (MistServer's layout), several
// become an audio group of their own playlists (`_A/index.m3u8`) so a player can choose the
// language. Without video, one variant per audio track.

import type { HlsAudioGroup, HlsVariant } from '../containers/hls/playlist.js';
import type { AudioTrack, Track } from '../media/types.js';

export const AUDIO_GROUP = 'aud';

export interface VariantPlan {
  variants: HlsVariant[];
  audioGroups: HlsAudioGroup[];
}

/** The playlists of `tracks` that `fits` (a codec check); `bandwidthBps` is every variant's BANDWIDTH. */
export function variantPlan(tracks: readonly Track[], fits: (t: Track) => boolean, bandwidthBps: number): VariantPlan {
  const idx = (t: Track): number => tracks.indexOf(t);
  const video = tracks.filter((t) => t.type === 'video' && fits(t));
  const audio = tracks.filter((t): t is AudioTrack => t.type === 'audio' && fits(t));
  const bw = bandwidthBps > 0 ? { bandwidthBps } : {};
  if (video.length === 0) return { variants: audio.map((a) => ({ uri: `_${idx(a)}/index.m3u8`, tracks: [a], ...bw })), audioGroups: [] };
  if (audio.length <= 1) {
    const a = audio[0];
    return { variants: video.map((v) => ({ uri: `${idx(v)}_${a ? idx(a) : ''}/index.m3u8`, tracks: a ? [v, a] : [v], ...bw })), audioGroups: [] };
  }
  const renditions = audio.map((a, i) => ({ name: a.lang !== 'und' ? `${a.lang} (${i + 1})` : `Audio ${i + 1}`, track: a, uri: `_${idx(a)}/index.m3u8`, default: i === 0 }));
  return {
    variants: video.map((v) => ({ uri: `${idx(v)}_/index.m3u8`, tracks: [v], audioGroup: AUDIO_GROUP, ...bw })),
    audioGroups: [{ groupId: AUDIO_GROUP, renditions }],
  };
}

/** Every media playlist URI of a plan (variants and audio renditions), for rendition reports. */
export function playlistUris(plan: VariantPlan): string[] {
  return [...plan.variants.map((v) => v.uri), ...plan.audioGroups.flatMap((g) => g.renditions.map((r) => r.uri!))];
}
