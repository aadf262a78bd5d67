// AAC in ADTS (.aac; ISO/IEC 14496-3 §1.A.2.2) as a FileSource: each ADTS frame's raw AAC
// payload (header and CRC removed) is a keyframe packet of track 1, codec 'AAC', init the
// AudioSpecificConfig the first header describes (src/containers/adts/), 1024 samples per
// frame. Frames with several raw_data_blocks are not split (probeAdts refuses them). See
// audio-frame-file.ts for the framing, resync and timing rules.

import { probeAdts } from '../../containers/ts/audio-frames.js';
import { adtsAsc, sameAdtsStream } from '../../containers/adts/adts.js';
import type { FileSourceOpener } from './file-source.js';
import { AudioFrameFileSource, type FrameFormat } from './audio-frame-file.js';
import { openHandle } from './file-reads.js';

export const ADTS_FORMAT: FrameFormat = {
  name: 'ADTS',
  probe: probeAdts,
  same: (a, b) => a.adts !== undefined && b.adts !== undefined && sameAdtsStream(a.adts, b.adts),
  track: (f) => ({ type: 'audio', id: 1, codec: 'AAC', init: adtsAsc(f.adts!, f.rate), bps: 0, lang: 'und', rate: f.rate, channels: f.channels, size: 16 }),
};

export const openAdtsSource: FileSourceOpener = async (file) => new AudioFrameFileSource(file, await openHandle(file), ADTS_FORMAT);
