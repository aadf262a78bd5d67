// Which container an input is, from its first bytes (signatures: FLV "FLV"; MPEG-TS 0x47 every
// 188 (M2TS: 192) bytes; EBML magic 1A 45 DF A3; ISO BMFF box types at 4..8; DTSC frame magics;
// "OggS"; "RIFF....WAVE"; "#EXTM3U"; ID3 / MPEG audio and ADTS sync words), then the name's
// extension or an HTTP Content-Type.

import type { ContainerKind } from './model.js';

const MP4_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'styp', 'moof', 'sidx', 'pnot', 'uuid']);

const BY_EXTENSION: Record<string, ContainerKind> = {
  flv: 'flv', ts: 'ts', m2ts: 'ts', mts: 'ts', mkv: 'mkv', webm: 'mkv', mka: 'mkv',
  mp4: 'mp4', mov: 'mp4', m4a: 'mp4', m4v: 'mp4', m4s: 'mp4', '3gp': 'mp4',
  dtsc: 'dtsc', dtsh: 'dtsc', 'dtsc-wire': 'dtsc', ogg: 'ogg', oga: 'ogg', opus: 'ogg',
  wav: 'wav', mp3: 'mp3', aac: 'adts', m3u8: 'hls', m3u: 'hls',
};

const BY_MIME: Record<string, ContainerKind> = {
  'video/x-flv': 'flv', 'video/mp2t': 'ts', 'video/webm': 'mkv', 'audio/webm': 'mkv', 'video/x-matroska': 'mkv',
  'video/mp4': 'mp4', 'audio/mp4': 'mp4', 'video/quicktime': 'mp4', 'audio/ogg': 'ogg', 'audio/wav': 'wav',
  'audio/x-wav': 'wav', 'audio/mpeg': 'mp3', 'audio/aac': 'adts', 'application/vnd.apple.mpegurl': 'hls',
  'application/x-mpegurl': 'hls', 'audio/mpegurl': 'hls',
};

/** The container the bytes show; undefined when they show none. */
export function sniffBytes(b: Buffer): ContainerKind | undefined {
  const text4 = b.toString('latin1', 0, Math.min(4, b.length));
  if (text4.startsWith('FLV') && b.length >= 4) return 'flv';
  if (text4 === 'DTSC' || text4 === 'DTP2' || text4 === 'DTCM' || text4 === 'DTPD') return 'dtsc';
  if (text4 === 'OggS') return 'ogg';
  if (b.length >= 12 && text4 === 'RIFF' && b.toString('latin1', 8, 12) === 'WAVE') return 'wav';
  if (b.length >= 4 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return 'mkv';
  if (b.length >= 8 && MP4_BOXES.has(b.toString('latin1', 4, 8))) return 'mp4';
  if (b.toString('utf8', 0, Math.min(b.length, 16)).replace(/^\uFEFF/, '').startsWith('#EXTM3U')) return 'hls';
  if (b[0] === 0x47 && (b.length < 189 || b[188] === 0x47)) return 'ts';
  if (b.length >= 5 && b[4] === 0x47 && (b.length < 197 || b[196] === 0x47)) return 'ts';
  if (text4.startsWith('ID3')) return 'mp3';
  if (b.length >= 2 && b[0] === 0xff && (b[1]! & 0xf6) === 0xf0) return 'adts';
  if (b.length >= 2 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0) return 'mp3';
  return undefined;
}

export function kindFromName(name: string): ContainerKind | undefined {
  const base = name.split(/[?#]/)[0]!;
  const m = /\.([A-Za-z0-9-]+)$/.exec(base);
  return m ? BY_EXTENSION[m[1]!.toLowerCase()] : undefined;
}

export function kindFromMime(contentType: string | undefined): ContainerKind | undefined {
  if (!contentType) return undefined;
  return BY_MIME[contentType.split(';')[0]!.trim().toLowerCase()];
}

/** Bytes first, then the Content-Type, then the name. */
export function sniffContainer(head: Buffer, name = '', contentType?: string): ContainerKind | undefined {
  return sniffBytes(head) ?? kindFromMime(contentType) ?? kindFromName(name);
}
