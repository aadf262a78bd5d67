// MP3 files (MPEG-1/2/2.5 audio, ISO/IEC 11172-3 §2.4 / 13818-3 frames; any layer) as a
// FileSource: ID3v2/APEv2/ID3v1 tags and the Xing/Info/VBRI frame skipped (src/containers/mp3/),
// each frame (header included, as MistServer and FLV carry MP3) a keyframe packet of track 1,
// codec 'MP3'. See audio-frame-file.ts for the framing, resync and timing rules.

import { probeMpegAudio } from '../../containers/ts/audio-frames.js';
import { isMp3InfoFrame } from '../../containers/mp3/mp3.js';
import type { FileSourceOpener } from './file-source.js';
import { AudioFrameFileSource, type FrameFormat } from './audio-frame-file.js';
import { openHandle } from './file-reads.js';

export const MP3_FORMAT: FrameFormat = {
  name: 'MP3',
  // Packet data keeps the 4-byte header: probeMpegAudio reports it as payload
  probe: probeMpegAudio,
  same: (a, b) => a.rate === b.rate && a.samples === b.samples && a.channels === b.channels,
  track: (f) => ({ type: 'audio', id: 1, codec: 'MP3', init: Buffer.alloc(0), bps: 0, lang: 'und', rate: f.rate, channels: f.channels, size: 16 }),
  isInfoFrame: isMp3InfoFrame,
};

export const openMp3Source: FileSourceOpener = async (file) => new AudioFrameFileSource(file, await openHandle(file), MP3_FORMAT);
