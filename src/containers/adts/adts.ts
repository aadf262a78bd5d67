// ADTS (ISO/IEC 14496-3 §1.A.2.2 adts_fixed_header) -> the AudioSpecificConfig (§1.6.2.1) a raw
// AAC track needs: audioObjectType = profile + 1, the header's sampling_frequency_index and
// channel_configuration, GASpecificConfig with 1024-sample frames. Frame boundaries come from
// probeAdts (src/containers/ts/audio-frames.ts).

import { buildAsc } from '../../media/aac.js';

export interface AdtsFixedHeader {
  /** profile_ObjectType (object type - 1). */
  profile: number;
  samplingIndex: number;
  channelConfig: number;
}

/** The AudioSpecificConfig for the frames an ADTS fixed header describes. */
export function adtsAsc(h: AdtsFixedHeader, sampleRate: number): Buffer {
  return buildAsc({ objectType: h.profile + 1, sampleRate, samplingIndex: h.samplingIndex, channelConfig: h.channelConfig });
}

/** Whether two frames belong to one stream (the fixed header does not change within one). */
export function sameAdtsStream(a: AdtsFixedHeader, b: AdtsFixedHeader): boolean {
  return a.profile === b.profile && a.samplingIndex === b.samplingIndex && a.channelConfig === b.channelConfig;
}
