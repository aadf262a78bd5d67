// What the container describers of `haze analyse` report (reference/mistserver.md §9:
// MistAnalyser* print a file's structure; `-m validate` checks it). A describer is pure: bytes
// in, events out; the runner (run.ts) owns files, sockets and printing.

import type { Track } from '../media/types.js';
import { HazeError } from '../util/errors.js';

export type ContainerKind = 'flv' | 'ts' | 'mkv' | 'mp4' | 'dtsc' | 'ogg' | 'wav' | 'mp3' | 'adts' | 'hls';

/** One media unit as the container stores it (no payload: the dump only needs its place). */
export interface PacketRecord {
  trackId: number;
  /** Decode time, ms. */
  timeMs: number;
  /** Composition offset (pts - dts), ms. */
  offsetMs: number;
  keyframe: boolean;
  /** Payload bytes. */
  size: number;
  /** Byte offset in the input of the unit (tag, PES, block, sample, frame) that carried it; -1 if unknown. */
  pos: number;
}

/** A finding of --validate: rule name (or the parser's HazeError code) and where. */
export interface Problem {
  rule: string;
  text: string;
  /** Byte position in the input, -1 if unknown. */
  pos: number;
  /** Media time, ms, when it applies. */
  timeMs?: number;
}

export type AnalyseEvent =
  /** A container-level line (file header, box tree, track table), always printed. */
  | { kind: 'header'; text: string }
  /** A unit that is not a media packet (script tag, sequence header, page, command), printed with the packets. */
  | { kind: 'unit'; text: string; pos: number }
  | { kind: 'tracks'; tracks: Track[] }
  | { kind: 'packet'; packet: PacketRecord }
  | { kind: 'problem'; problem: Problem }
  /** Something the parser skipped or repaired that is not an error of the input. */
  | { kind: 'note'; text: string }
  /** A dtsc:// command (DTCM) the runner may have to answer (ping). */
  | { kind: 'command'; command: Record<string, unknown> };

/** An incremental describer: any chunk split gives the same events as one whole push. */
export interface Describer {
  readonly kind: ContainerKind;
  push(chunk: Buffer): AnalyseEvent[];
  /** End of input; `complete` false when the reading stopped early (limit, live cut), so a cut unit is no error. */
  end(complete: boolean): AnalyseEvent[];
}

/** Rule name for anything that is not a HazeError (a bug in a parser; the fuzz test checks it never happens). */
export const RULE_INTERNAL = 'INTERNAL_ERROR';

/** The problem for an exception thrown by a parser at `pos`. */
export function problemOf(err: unknown, pos: number, what: string): Problem {
  if (err instanceof HazeError) return { rule: err.code, text: `${what}: ${err.message}`, pos };
  return { rule: RULE_INTERNAL, text: `${what}: internal error: ${err instanceof Error ? err.message : String(err)}`, pos };
}

/** Short hex of codec init data: the first `max` bytes and the total length. */
export function shortHex(b: Uint8Array, max = 16): string {
  if (b.length === 0) return '-';
  const hex = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, max)).toString('hex');
  return b.length > max ? `${hex}.. (${b.length} B)` : `${hex} (${b.length} B)`;
}

/** One line describing a track. */
export function trackLine(t: Track): string {
  const base = `track ${t.id}: ${t.type} ${t.codec}`;
  let detail = '';
  if (t.type === 'video') detail = ` ${t.width}x${t.height}${t.fpks > 0 ? ` ${(t.fpks / 1000).toFixed(3)} fps` : ''}`;
  else if (t.type === 'audio') detail = ` ${t.rate} Hz ${t.channels} ch ${t.size} bit`;
  const lang = t.lang && t.lang !== 'und' ? ` lang ${t.lang}` : '';
  return `${base}${detail}${lang} init ${shortHex(t.init)}`;
}
