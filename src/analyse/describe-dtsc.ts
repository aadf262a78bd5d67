// DTSC describer (reference/mistserver.md §2.2-2.6): a .dtsc file, a .dtsh header cache or a
// dtsc:// capture is a sequence of frames "DTSC" (header), "DTP2"/"DTPD" (packets), "DTCM"
// (commands), each `magic u32 len body`, back to back, so a frame's offset is the sum of the
// frames before it. Validation adds the DTSC rules: a packet must belong to a track of the
// latest header, and a header's index tables (§2.4: fragments, keys, keysizes, parts) must agree
// with the packets that follow (or, for a bare .dtsh, with themselves).

import { DtscFrameReader, type DtscFrame } from '../containers/dtsc/packets.js';
import { parseDtscHeader, plainTrack, type DtscStreamMeta, type DtscTrackTables } from '../containers/dtsc/header.js';
import { toJs } from '../containers/dtsc/dtmi.js';
import { problemOf, trackLine, type AnalyseEvent, type Describer, type Problem } from './model.js';

/** Per-track packets kept for the index comparison; beyond this the comparison is skipped. */
const MAX_COMPARED_PACKETS = 4_000_000;
const U24 = 0x100_0000;

interface Seen {
  timeMs: number[];
  size: number[];
  frameBytes: number[];
  pos: number[];
}

export class DtscDescriber implements Describer {
  readonly kind = 'dtsc' as const;
  private readonly reader = new DtscFrameReader();
  private pos = 0;
  private dead = false;
  private declared = new Set<number>();
  private headers = 0;
  /** The last header that carried index tables, and the packets that came after it. */
  private indexed: { meta: DtscStreamMeta; pos: number } | undefined;
  private seen = new Map<number, Seen>();
  private overflow = false;

  push(chunk: Buffer): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead || chunk.length === 0) return ev;
    let frames: DtscFrame[];
    try {
      frames = this.reader.push(chunk);
    } catch (err) {
      // frames completed earlier in this chunk are lost with the framing; the error names it
      this.dead = true;
      ev.push({ kind: 'problem', problem: problemOf(err, this.pos, 'DTSC framing') });
      return ev;
    }
    for (const f of frames) {
      const at = this.pos;
      this.pos += f.raw.length;
      try {
        this.frame(f, at, ev);
      } catch (err) {
        ev.push({ kind: 'problem', problem: problemOf(err, at, `DTSC ${f.kind}`) });
      }
    }
    return ev;
  }

  private frame(f: DtscFrame, at: number, ev: AnalyseEvent[]): void {
    if (f.kind === 'header') {
      const meta = parseDtscHeader(f.header);
      this.headers++;
      const flags = [meta.vod ? 'vod' : '', meta.live ? 'live' : ''].filter(Boolean).join('+') || 'no vod/live flag';
      ev.push({
        kind: 'header',
        text: `DTSC header #${this.headers} at byte ${at} (${f.raw.length} B): ${flags}, version ${meta.version ?? '-'}${meta.unixzeroMs !== undefined ? `, unixzero ${meta.unixzeroMs}` : ''}${meta.moreheader !== undefined ? `, moreheader ${meta.moreheader}` : ''}, ${meta.tracks.length} tracks`,
      });
      for (const t of meta.tracks) {
        const tb = t.tables;
        const idx = tb ? `; index: ${tb.fragments.length} fragments, ${tb.keys.length} keys, ${tb.parts.length} parts` : '';
        ev.push({ kind: 'header', text: `${trackLine(plainTrack(t))}; firstms ${t.firstMs} lastms ${t.lastMs} bps ${t.bps} maxbps ${t.maxBps}${idx}` });
      }
      const tracks = meta.tracks.map(plainTrack);
      this.declared = new Set(tracks.map((t) => t.id));
      ev.push({ kind: 'tracks', tracks });
      if (meta.tracks.some((t) => t.tables)) {
        // a header with tables before packets indexes the packets that follow; one after them (a
        // trailer) indexes the packets already seen
        this.indexed = { meta, pos: at };
      }
      return;
    }
    if (f.kind === 'command') {
      const cmd = toJs(f.command) as Record<string, unknown>;
      ev.push({ kind: 'unit', pos: at, text: `DTCM ${JSON.stringify(cmd, (_k, v: unknown) => (Buffer.isBuffer(v) ? `<${v.length} B>` : v))}` });
      ev.push({ kind: 'command', command: cmd });
      return;
    }
    const p = f.packet;
    if (!this.declared.has(p.trackId)) {
      const why = this.headers === 0 ? 'before any DTSC header' : `for track ${p.trackId}, which the header does not declare`;
      ev.push({ kind: 'problem', problem: { rule: 'DTSC_UNDECLARED_TRACK', text: `DTP${f.version === 2 ? '2' : 'D'} packet ${why}`, pos: at, timeMs: p.timeMs } });
    }
    ev.push({ kind: 'packet', packet: { trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, size: p.data.length, pos: at } });
    if (this.overflow) return;
    let s = this.seen.get(p.trackId);
    if (!s) {
      s = { timeMs: [], size: [], frameBytes: [], pos: [] };
      this.seen.set(p.trackId, s);
    }
    if (s.timeMs.length >= MAX_COMPARED_PACKETS) {
      this.overflow = true;
      ev.push({ kind: 'note', text: `more than ${MAX_COMPARED_PACKETS} packets on track ${p.trackId}: index tables not compared` });
      return;
    }
    s.timeMs.push(p.timeMs);
    s.size.push(p.data.length);
    s.frameBytes.push(f.raw.length);
    s.pos.push(at);
  }

  end(complete: boolean): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead) return ev;
    if (complete) {
      try {
        this.reader.finish();
      } catch (err) {
        ev.push({ kind: 'problem', problem: { ...problemOf(err, this.pos, 'DTSC'), rule: 'TRUNCATED' } });
      }
      if (this.indexed && !this.overflow) {
        for (const pr of compareIndex(this.indexed.meta, this.indexed.pos, this.seen)) ev.push({ kind: 'problem', problem: pr });
      }
    }
    return ev;
  }
}

/** The disagreements between a header's index tables and the packets seen (none seen: the tables' own consistency only). */
export function compareIndex(meta: DtscStreamMeta, headerPos: number, seen: ReadonlyMap<number, Seen>): Problem[] {
  const out: Problem[] = [];
  const bad = (trackId: number, text: string, pos = headerPos, timeMs?: number): void => {
    if (out.length < 100) out.push({ rule: 'DTSC_INDEX_MISMATCH', text: `track ${trackId}: ${text}`, pos, ...(timeMs !== undefined ? { timeMs } : {}) });
  };
  const anyPackets = seen.size > 0;
  for (const t of meta.tracks) {
    const tb: DtscTrackTables | undefined = t.tables;
    if (!tb) continue;
    // self-consistency (MistServer's Meta relies on these when it seeks)
    const partSum = tb.keys.reduce((n, k) => n + k.partCount, 0);
    if (partSum !== tb.parts.length) bad(t.id, `keys cover ${partSum} parts, the parts table has ${tb.parts.length}`);
    const keySum = tb.fragments.reduce((n, f) => n + f.keyCount, 0);
    if (tb.fragments.length > 0 && keySum !== tb.keys.length) bad(t.id, `fragments cover ${keySum} keys, the keys table has ${tb.keys.length}`);
    for (const f of tb.fragments) {
      if (f.firstKey < 0 || f.firstKey >= tb.keys.length) {
        bad(t.id, `fragment's first key ${f.firstKey} outside the ${tb.keys.length} keys`);
        break;
      }
    }
    if (tb.keySizes.length > 0 && tb.keySizes.length !== tb.keys.length) bad(t.id, `${tb.keySizes.length} keysizes for ${tb.keys.length} keys`);
    for (let i = 1; i < tb.keys.length; i++) {
      if (tb.keys[i]!.timeMs < tb.keys[i - 1]!.timeMs) {
        bad(t.id, `key ${i} at ${tb.keys[i]!.timeMs} ms is before key ${i - 1} at ${tb.keys[i - 1]!.timeMs} ms`);
        break;
      }
    }
    if (!anyPackets) continue;
    const s = seen.get(t.id);
    const n = s?.timeMs.length ?? 0;
    if (n !== tb.parts.length) bad(t.id, `the index lists ${tb.parts.length} parts, the input has ${n} packets`);
    if (!s) continue;
    const m = Math.min(n, tb.parts.length);
    for (let i = 0; i < m; i++) {
      if (tb.parts[i]!.sizeBytes !== s.size[i]! % U24) {
        bad(t.id, `part ${i} is ${tb.parts[i]!.sizeBytes} B in the index, the packet has ${s.size[i]} B`, s.pos[i], s.timeMs[i]);
        break;
      }
    }
    let first = 0;
    for (let k = 0; k < tb.keys.length; k++) {
      const key = tb.keys[k]!;
      if (first >= n) {
        bad(t.id, `key ${k} (${key.timeMs} ms) starts after the last packet`);
        break;
      }
      if (key.timeMs !== s.timeMs[first]) {
        bad(t.id, `key ${k} is at ${key.timeMs} ms in the index, its first packet at ${s.timeMs[first]} ms`, s.pos[first], s.timeMs[first]);
        break;
      }
      if (key.bpos !== 0 && key.bpos !== s.pos[first]) {
        bad(t.id, `key ${k} has bpos ${key.bpos} in the index, its first packet is at byte ${s.pos[first]}`, s.pos[first], s.timeMs[first]);
        break;
      }
      if (tb.keySizes.length === tb.keys.length) {
        let bytes = 0;
        for (let i = first; i < Math.min(n, first + key.partCount); i++) bytes += s.frameBytes[i]!;
        if (bytes !== tb.keySizes[k]) {
          bad(t.id, `key ${k} holds ${bytes} B of packets, keysizes says ${tb.keySizes[k]} B`, s.pos[first], s.timeMs[first]);
          break;
        }
      }
      first += key.partCount;
    }
  }
  return out;
}
