// The container formats Haze writes as a byte stream from packets, with what each carries: the
// progressive HTTP outputs (`/NAME.EXT`) and `haze convert` both pick them by extension.

import { FLV_CAPABILITY, makeFlvWriter } from './flv-writer.js';
import { TS_CAPABILITY, TsWriter } from './ts-writer.js';
import { Fmp4Writer, MKV_CAPABILITY, MP4_CAPABILITY, MatroskaFeedWriter, WEBM_CAPABILITY } from './container-writers.js';
import { AAC_CAPABILITY, AdtsFeedWriter, MP3_CAPABILITY, Mp3FeedWriter, OGG_CAPABILITY, OggFeedWriter, WAV_CAPABILITY, WavFeedWriter } from './audio-writers.js';
import type { OutputFormat } from './play.js';

export const FLV_FORMAT: OutputFormat = { name: 'FLV', capability: FLV_CAPABILITY, makeWriter: makeFlvWriter };
export const TS_FORMAT: OutputFormat = { name: 'HTTPTS', capability: TS_CAPABILITY, makeWriter: () => new TsWriter() };

export const MP4_FORMAT: OutputFormat = { name: 'MP4', capability: MP4_CAPABILITY, makeWriter: () => new Fmp4Writer() };
export const MKV_FORMAT: OutputFormat = { name: 'EBML', key: 'MKV', capability: MKV_CAPABILITY, makeWriter: () => new MatroskaFeedWriter(false) };
export const WEBM_FORMAT: OutputFormat = { name: 'EBML', key: 'WEBM', capability: WEBM_CAPABILITY, makeWriter: () => new MatroskaFeedWriter(true) };

export const OGG_FORMAT: OutputFormat = { name: 'OGG', capability: OGG_CAPABILITY, makeWriter: () => new OggFeedWriter() };
export const MP3_FORMAT: OutputFormat = { name: 'MP3', capability: MP3_CAPABILITY, makeWriter: () => new Mp3FeedWriter() };
export const AAC_FORMAT: OutputFormat = { name: 'AAC', capability: AAC_CAPABILITY, makeWriter: () => new AdtsFeedWriter() };
export const WAV_FORMAT: OutputFormat = { name: 'WAV', capability: WAV_CAPABILITY, makeWriter: () => new WavFeedWriter() };

/** Progressive formats by file extension (URL suffix, `haze convert` output name). */
export const FORMAT_BY_EXTENSION: Readonly<Record<string, { format: OutputFormat; contentType: string }>> = {
  flv: { format: FLV_FORMAT, contentType: 'video/x-flv' },
  ts: { format: TS_FORMAT, contentType: 'video/mp2t' },
  mp4: { format: MP4_FORMAT, contentType: 'video/mp4' },
  fmp4: { format: MP4_FORMAT, contentType: 'video/mp4' },
  mkv: { format: MKV_FORMAT, contentType: 'video/x-matroska' },
  webm: { format: WEBM_FORMAT, contentType: 'video/webm' },
  ogg: { format: OGG_FORMAT, contentType: 'audio/ogg' },
  mp3: { format: MP3_FORMAT, contentType: 'audio/mpeg' },
  aac: { format: AAC_FORMAT, contentType: 'audio/aac' },
  wav: { format: WAV_FORMAT, contentType: 'audio/wav' },
};
