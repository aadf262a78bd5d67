// DTSC stream header <-> Haze stream meta (reference/mistserver.md §2.4, §2.5, §1.10, Appendix A.3).
//
// Written in MistServer's member order (Meta::send), so a .dtsh MistServer wrote re-encodes to
// the same bytes:
//
//   E0 [vod 1] [live 1] version 4 [unixzero] [inputLocalVars] tracks E0
//        "<identifier>" E0 [fragments keys keysizes parts] trackid [missed_frags]
//             firstms lastms bps maxbps init codec [lang] type
//             audio: rate size channels | video: width height fpks efpks
//        00 00 EE ...
//      00 00 EE [moreheader] 00 00 EE
//
// Index tables are binary strings of fixed-size big-endian records:
//   fragments 13 B: u32 duration, u8 keys, u32 firstkey+1 (1-based on disk), u32 size
//   keys      25 B: u64 bpos, u24 duration, u32 number, u16 parts, u64 time
//   keysizes   4 B: u32 size
//   parts      9 B: u24 size, u24 duration, u24 offset
// MistServer writes these fields truncated to their width (C++ casts), and so does this writer.
//
// Note: missed_frags follows trackid (as MistServer's writer emits it), not the tables as §2.4's
// list suggests.

import { HazeError } from '../../util/errors.js';
import type { AudioCodec, AudioTrack, MetaTrack, Track, VideoCodec, VideoTrack } from '../../media/types.js';
import {
  dtmiInt,
  dtmiObject,
  dtmiString,
  getBytes,
  getNumber,
  getObject,
  getText,
  type DtmiDecodeLimits,
  type DtmiEntry,
  type DtmiObject,
} from './dtmi.js';
import { decodeDtscHeaderObject, encodeDtscHeader } from './packets.js';

/** `version` MistServer writes and requires of a .dtsh (DTSH_VERSION). */
export const DTSH_VERSION = 4;

export const DTSH_FRAGMENT_BYTES = 13;
export const DTSH_KEY_BYTES = 25;
export const DTSH_KEYSIZE_BYTES = 4;
export const DTSH_PART_BYTES = 9;

export interface DtscFragment {
  durationMs: number;
  keyCount: number;
  /** Index of the fragment's first key, 0-based (stored 1-based on disk, Appendix C.2). */
  firstKey: number;
  sizeBytes: number;
}

export interface DtscKey {
  /** Byte position of the key's first packet in the source file. */
  bpos: number;
  durationMs: number;
  /** Key number, as stored (the fixtures count from 0). */
  number: number;
  partCount: number;
  timeMs: number;
}

export interface DtscPart {
  sizeBytes: number;
  durationMs: number;
  /** Composition offset, ms (unsigned 24-bit on disk). */
  offsetMs: number;
}

/** The "dynamic" index of a track, present in .dtsh files and omitted on live dtsc://. */
export interface DtscTrackTables {
  fragments: DtscFragment[];
  keys: DtscKey[];
  /** Bytes of DTP2 packets in each key (parallel to `keys`). */
  keySizes: number[];
  parts: DtscPart[];
}

export interface DtscTrackExtras {
  /** MistServer's track index: the `_N` suffix of the identifier key (defaults to the position). */
  idx?: number;
  firstMs: number;
  lastMs: number;
  /** Peak bytes per second (DTSC `maxbps`). */
  maxBps: number;
  /** Measured frames per 1000 s (video only, DTSC `efpks`). */
  efpks?: number;
  /** Fragments dropped from the front of a live buffer (`missed_frags`). */
  missedFrags?: number;
  /** `nowms` when the header carries it (read only; MistServer's header writer omits it). */
  nowMs?: number;
  tables?: DtscTrackTables;
}

/** A Track (src/media/types.ts; `id` is the DTSC `trackid`) with its DTSC header fields. */
export type DtscTrack = Track & DtscTrackExtras;

/** The Track of a header track, without its DTSC-only fields. */
export function plainTrack(t: DtscTrack): Track {
  const { firstMs: _f, lastMs: _l, maxBps: _m, efpks: _e, missedFrags: _mf, nowMs: _n, tables: _t, idx: _i, ...track } = t;
  return track as Track;
}

export interface DtscStreamMeta {
  live: boolean;
  vod: boolean;
  /** `version` as read (the writer always writes DTSH_VERSION). */
  version?: number;
  /** Unix ms at media time 0 (`unixzero`). */
  unixzeroMs?: number;
  /** `inputLocalVars` JSON text. */
  inputLocalVars?: string;
  /** Byte offset of a later, complete header in a .dtsc file (`moreheader`). */
  moreheader?: number;
  tracks: DtscTrack[];
}

export interface DtscHeaderWriteOptions {
  /** Write the index tables of tracks that have them (default true); false = MistServer's skipDynamic. */
  withIndex?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Track identifiers (§1.10, Meta::getTrackIdentifier)

/**
 * Formats a number like a C++ ostream with default flags (printf %g, 6 significant digits),
 * which is how MistServer prints the fps in identifiers: 29970 fpks -> "29.97", 30000 -> "30".
 */
export function formatCppDouble(x: number): string {
  if (x === 0) return '0';
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  const [mant, expStr] = x.toExponential(5).split('e') as [string, string];
  const exp = Number(expStr);
  if (exp < -4 || exp >= 6) {
    const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
    const sign = exp < 0 ? '-' : '+';
    return `${m}e${sign}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const fixed = x.toFixed(5 - exp);
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/**
 * MistServer's unique track identifier: `video_H264_320x180_30fps_0`, `audio_AAC_2ch_48000hz_1`,
 * `meta_JSON__0` (other types print `<type>_<codec>_` and nothing more, hence the double `_`),
 * with `_<lang>` before the index when the language is set and not `und`.
 */
export function dtscTrackIdentifier(t: Track, idx: number): string {
  let s = `${t.type}_${t.codec}_`;
  if (t.type === 'audio') s += `${t.channels}ch_${t.rate}hz`;
  else if (t.type === 'video') s += `${t.width}x${t.height}_${formatCppDouble(t.fpks / 1000)}fps`;
  if (t.lang && t.lang !== 'und') s += `_${t.lang}`;
  return `${s}_${idx}`;
}

// ---------------------------------------------------------------------------------------------
// Index tables

function tableBytes(obj: DtmiObject, key: string, recordBytes: number, identifier: string): Buffer | undefined {
  const b = getBytes(obj, key);
  if (b !== undefined && b.length % recordBytes !== 0) {
    throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: track ${identifier} ${key} is ${b.length} bytes, not a multiple of ${recordBytes}`);
  }
  return b;
}

function readU64(b: Buffer, p: number, what: string): number {
  const v = b.readUInt32BE(p) * 0x1_0000_0000 + b.readUInt32BE(p + 4);
  if (!Number.isSafeInteger(v)) throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: ${what} out of range`);
  return v;
}

function writeU64(b: Buffer, p: number, v: number): void {
  const hi = Math.floor(v / 0x1_0000_0000);
  b.writeUInt32BE(hi >>> 0, p);
  b.writeUInt32BE((v - hi * 0x1_0000_0000) >>> 0, p + 4);
}

/** Decodes the four index strings of a track object; undefined when it has none of them. */
export function decodeTrackTables(track: DtmiObject, identifier = 'track'): DtscTrackTables | undefined {
  const frag = tableBytes(track, 'fragments', DTSH_FRAGMENT_BYTES, identifier);
  const keys = tableBytes(track, 'keys', DTSH_KEY_BYTES, identifier);
  const sizes = tableBytes(track, 'keysizes', DTSH_KEYSIZE_BYTES, identifier);
  const parts = tableBytes(track, 'parts', DTSH_PART_BYTES, identifier);
  if (!frag && !keys && !sizes && !parts) return undefined;
  const t: DtscTrackTables = { fragments: [], keys: [], keySizes: [], parts: [] };
  if (frag) {
    for (let p = 0; p < frag.length; p += DTSH_FRAGMENT_BYTES) {
      t.fragments.push({ durationMs: frag.readUInt32BE(p), keyCount: frag[p + 4]!, firstKey: frag.readUInt32BE(p + 5) - 1, sizeBytes: frag.readUInt32BE(p + 9) });
    }
  }
  if (keys) {
    for (let p = 0; p < keys.length; p += DTSH_KEY_BYTES) {
      t.keys.push({
        bpos: readU64(keys, p, 'key bpos'),
        durationMs: keys.readUIntBE(p + 8, 3),
        number: keys.readUInt32BE(p + 11),
        partCount: keys.readUInt16BE(p + 15),
        timeMs: readU64(keys, p + 17, 'key time'),
      });
    }
  }
  if (sizes) for (let p = 0; p < sizes.length; p += DTSH_KEYSIZE_BYTES) t.keySizes.push(sizes.readUInt32BE(p));
  if (parts) {
    for (let p = 0; p < parts.length; p += DTSH_PART_BYTES) {
      t.parts.push({ sizeBytes: parts.readUIntBE(p, 3), durationMs: parts.readUIntBE(p + 3, 3), offsetMs: parts.readUIntBE(p + 6, 3) });
    }
  }
  return t;
}

const U24 = 0xff_ffff;

/** Encodes the four index strings, each allocated once; fields are truncated to their on-disk width as MistServer's casts do. */
export function encodeTrackTables(t: DtscTrackTables): { fragments: Buffer; keys: Buffer; keysizes: Buffer; parts: Buffer } {
  const fragments = Buffer.allocUnsafe(t.fragments.length * DTSH_FRAGMENT_BYTES);
  t.fragments.forEach((f, i) => {
    const p = i * DTSH_FRAGMENT_BYTES;
    fragments.writeUInt32BE(f.durationMs >>> 0, p);
    fragments[p + 4] = f.keyCount & 0xff;
    fragments.writeUInt32BE((f.firstKey + 1) >>> 0, p + 5);
    fragments.writeUInt32BE(f.sizeBytes >>> 0, p + 9);
  });
  const keys = Buffer.allocUnsafe(t.keys.length * DTSH_KEY_BYTES);
  t.keys.forEach((k, i) => {
    const p = i * DTSH_KEY_BYTES;
    writeU64(keys, p, k.bpos);
    keys.writeUIntBE(k.durationMs & U24, p + 8, 3);
    keys.writeUInt32BE(k.number >>> 0, p + 11);
    keys.writeUInt16BE(k.partCount & 0xffff, p + 15);
    writeU64(keys, p + 17, k.timeMs);
  });
  const keysizes = Buffer.allocUnsafe(t.keySizes.length * DTSH_KEYSIZE_BYTES);
  t.keySizes.forEach((s, i) => keysizes.writeUInt32BE(s >>> 0, i * DTSH_KEYSIZE_BYTES));
  const parts = Buffer.allocUnsafe(t.parts.length * DTSH_PART_BYTES);
  t.parts.forEach((pt, i) => {
    const p = i * DTSH_PART_BYTES;
    parts.writeUIntBE(pt.sizeBytes & U24, p, 3);
    parts.writeUIntBE(pt.durationMs & U24, p + 3, 3);
    parts.writeUIntBE(pt.offsetMs & U24, p + 6, 3);
  });
  return { fragments, keys, keysizes, parts };
}

// ---------------------------------------------------------------------------------------------
// Reading

/** An int member (a double is truncated, as MistServer's asInt does); `def` when absent. */
function num(obj: DtmiObject, key: string, def: number): number {
  const v = getNumber(obj, key);
  return v === undefined || !Number.isFinite(v) ? def : Math.trunc(v);
}

function parseTrack(identifier: string, obj: DtmiObject, position: number): DtscTrack {
  const trackid = getNumber(obj, 'trackid');
  if (trackid === undefined || !Number.isInteger(trackid) || trackid < 0 || trackid > 0xffff_ffff) {
    throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: track ${identifier} has no valid trackid`);
  }
  const suffix = /_(\d+)$/.exec(identifier);
  const idx = suffix ? Number(suffix[1]) : position;
  const type = getText(obj, 'type') ?? '';
  const codec = getText(obj, 'codec') ?? '';
  const common = {
    id: trackid,
    init: getBytes(obj, 'init') ?? Buffer.alloc(0),
    bps: num(obj, 'bps', 0),
    lang: getText(obj, 'lang') || 'und',
  };
  const extras: DtscTrackExtras = {
    idx,
    firstMs: num(obj, 'firstms', 0),
    lastMs: num(obj, 'lastms', 0),
    maxBps: num(obj, 'maxbps', 0),
  };
  const missed = num(obj, 'missed_frags', 0);
  if (missed !== 0) extras.missedFrags = missed;
  const nowMs = getNumber(obj, 'nowms');
  if (nowMs !== undefined) extras.nowMs = Math.trunc(nowMs);
  const tables = decodeTrackTables(obj, identifier);
  if (tables) extras.tables = tables;
  if (type === 'video') {
    const v: VideoTrack & DtscTrackExtras = {
      ...common,
      type: 'video',
      // Codec names pass through as MistServer spells them; one outside VideoCodec is the consumer's to refuse.
      codec: codec as VideoCodec,
      width: num(obj, 'width', 0),
      height: num(obj, 'height', 0),
      fpks: num(obj, 'fpks', 0),
      ...extras,
      efpks: num(obj, 'efpks', 0),
    };
    return v;
  }
  if (type === 'audio') {
    const a: AudioTrack & DtscTrackExtras = {
      ...common,
      type: 'audio',
      codec: codec as AudioCodec,
      rate: num(obj, 'rate', 0),
      channels: num(obj, 'channels', 0),
      size: num(obj, 'size', 0),
      ...extras,
    };
    return a;
  }
  // meta, subtitle; any other type is carried as meta.
  const m: MetaTrack & DtscTrackExtras = { ...common, type: type === 'subtitle' ? 'subtitle' : 'meta', codec, ...extras };
  return m;
}

/** Converts a decoded DTSC header object into stream meta (tracks in header order). */
export function parseDtscHeader(header: DtmiObject): DtscStreamMeta {
  const meta: DtscStreamMeta = {
    live: num(header, 'live', 0) !== 0,
    vod: num(header, 'vod', 0) !== 0,
    tracks: [],
  };
  const version = getNumber(header, 'version');
  if (version !== undefined) meta.version = Math.trunc(version);
  const unixzero = getNumber(header, 'unixzero');
  if (unixzero !== undefined) meta.unixzeroMs = Math.trunc(unixzero);
  const lvars = getText(header, 'inputLocalVars');
  if (lvars !== undefined) meta.inputLocalVars = lvars;
  const more = getNumber(header, 'moreheader');
  if (more !== undefined) meta.moreheader = Math.trunc(more);
  const tracks = getObject(header, 'tracks');
  if (tracks) {
    let position = 0;
    for (const [identifier, value] of tracks.entries) {
      if (value.kind !== 'object') throw new HazeError('HAZE_ERR_MALFORMED', `DTSC: track ${identifier} is not an object`);
      meta.tracks.push(parseTrack(identifier, value, position++));
    }
  }
  return meta;
}

/** Decodes a "DTSC" frame (a .dtsh file, or a header on dtsc://) into stream meta. */
export function readDtscHeader(frame: Buffer, limits?: DtmiDecodeLimits): DtscStreamMeta {
  return parseDtscHeader(decodeDtscHeaderObject(frame, limits));
}

// ---------------------------------------------------------------------------------------------
// Writing

function trackObject(t: DtscTrack, withIndex: boolean): DtmiObject {
  const e: DtmiEntry[] = [];
  const hasTables = withIndex && t.tables !== undefined;
  if (hasTables) {
    const tb = encodeTrackTables(t.tables!);
    e.push(['fragments', dtmiString(tb.fragments)], ['keys', dtmiString(tb.keys)], ['keysizes', dtmiString(tb.keysizes)], ['parts', dtmiString(tb.parts)]);
  }
  e.push(['trackid', dtmiInt(t.id)]);
  if (hasTables && t.missedFrags) e.push(['missed_frags', dtmiInt(t.missedFrags)]);
  e.push(
    ['firstms', dtmiInt(t.firstMs)],
    ['lastms', dtmiInt(t.lastMs)],
    ['bps', dtmiInt(t.bps)],
    ['maxbps', dtmiInt(t.maxBps)],
    ['init', dtmiString(t.init)],
    ['codec', dtmiString(t.codec)],
  );
  if (t.lang && t.lang !== 'und') e.push(['lang', dtmiString(t.lang)]);
  e.push(['type', dtmiString(t.type)]);
  if (t.type === 'audio') {
    e.push(['rate', dtmiInt(t.rate)], ['size', dtmiInt(t.size)], ['channels', dtmiInt(t.channels)]);
  } else if (t.type === 'video') {
    e.push(['width', dtmiInt(t.width)], ['height', dtmiInt(t.height)], ['fpks', dtmiInt(t.fpks)], ['efpks', dtmiInt(t.efpks ?? 0)]);
  }
  return dtmiObject(e);
}

/** Builds the header object in MistServer's member order. Track keys come from dtscTrackIdentifier(track, track.idx ?? position). */
export function buildDtscHeader(meta: DtscStreamMeta, opts: DtscHeaderWriteOptions = {}): DtmiObject {
  const withIndex = opts.withIndex ?? true;
  const top: DtmiEntry[] = [];
  if (meta.vod) top.push(['vod', dtmiInt(1)]);
  if (meta.live) top.push(['live', dtmiInt(1)]);
  top.push(['version', dtmiInt(DTSH_VERSION)]);
  if (meta.unixzeroMs !== undefined) top.push(['unixzero', dtmiInt(meta.unixzeroMs)]);
  if (meta.inputLocalVars !== undefined && meta.inputLocalVars !== '') top.push(['inputLocalVars', dtmiString(meta.inputLocalVars)]);
  const seen = new Set<string>();
  const tracks: DtmiEntry[] = meta.tracks.map((t, i): DtmiEntry => {
    const id = dtscTrackIdentifier(t, t.idx ?? i);
    if (seen.has(id)) throw new HazeError('HAZE_ERR_INVALID_ARG', `DTSC: two tracks with identifier ${id}`);
    seen.add(id);
    return [id, trackObject(t, withIndex)];
  });
  top.push(['tracks', dtmiObject(tracks)]);
  if (meta.moreheader !== undefined) top.push(['moreheader', dtmiInt(meta.moreheader)]);
  return dtmiObject(top);
}

/** Encodes stream meta as a "DTSC" header frame (a .dtsh file's whole content, or a dtsc:// header). */
export function writeDtscHeader(meta: DtscStreamMeta, opts: DtscHeaderWriteOptions = {}): Buffer {
  return encodeDtscHeader(buildDtscHeader(meta, opts));
}
