// Describers over Haze's push demuxers: MPEG-TS (ISO/IEC 13818-1 §2.4.3, packets of 188 bytes,
// M2TS 192) and Matroska/WebM (RFC 9559). Their packets already carry the byte offset of the
// PES / block they came from; the demuxers' warnings are losses in the input (continuity
// errors, sync loss, cut elements) and count as problems, except the ones that only say a
// stream is not supported.

import { MatroskaDemuxer, type MkvDemuxResult } from '../containers/mkv/demux.js';
import { TsDemuxer, type TsDemuxResult } from '../containers/ts/demux.js';
import { problemOf, trackLine, type AnalyseEvent, type Describer } from './model.js';

const BENIGN = /not supported|no configuration yet|announced later|more warnings/;

function posIn(text: string): number {
  const m = / at (?:byte )?(\d+)/.exec(text) ?? / from (\d+)/.exec(text);
  return m ? Number(m[1]) : -1;
}

function convert(res: TsDemuxResult | MkvDemuxResult, ev: AnalyseEvent[], rulePrefix: string): void {
  if (res.tracks) {
    for (const t of res.tracks) ev.push({ kind: 'header', text: trackLine(t) });
    ev.push({ kind: 'tracks', tracks: res.tracks });
  }
  for (const p of res.packets) {
    const size = 'size' in p && typeof p.size === 'number' ? p.size : p.data.length;
    ev.push({ kind: 'packet', packet: { trackId: p.trackId, timeMs: p.timeMs, offsetMs: p.offsetMs, keyframe: p.keyframe, size, pos: p.pos } });
  }
  for (const w of res.warnings) {
    if (BENIGN.test(w)) ev.push({ kind: 'note', text: w });
    else ev.push({ kind: 'problem', problem: { rule: rulePrefix, text: w, pos: posIn(w) } });
  }
}

export class TsDescriber implements Describer {
  readonly kind = 'ts' as const;
  private readonly demux = new TsDemuxer();
  private total = 0;
  private first = -1;
  private dead = false;

  push(chunk: Buffer): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead || chunk.length === 0) return ev;
    if (this.total === 0) this.first = chunk[0]!;
    this.total += chunk.length;
    try {
      convert(this.demux.push(chunk), ev, 'TS_STRUCTURE');
    } catch (err) {
      this.dead = true;
      ev.push({ kind: 'problem', problem: problemOf(err, this.total - chunk.length, 'MPEG-TS') });
    }
    return ev;
  }

  end(complete: boolean): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead) return ev;
    try {
      convert(this.demux.end(), ev, 'TS_STRUCTURE');
    } catch (err) {
      ev.push({ kind: 'problem', problem: problemOf(err, this.total, 'MPEG-TS') });
    }
    // a file of 188-byte packets that starts in sync must be a whole number of them
    if (complete && this.first === 0x47 && this.total % 188 !== 0 && this.total % 192 !== 0) {
      const at = this.total - (this.total % 188);
      ev.push({ kind: 'problem', problem: { rule: 'TRUNCATED', text: `last TS packet at byte ${at} cut short (${this.total % 188} of 188 bytes)`, pos: at } });
    }
    if (!complete) return ev.filter((e) => e.kind !== 'problem' || !/ends after|incomplete/.test(e.problem.text));
    return ev;
  }
}

export class MkvDescriber implements Describer {
  readonly kind = 'mkv' as const;
  private readonly demux = new MatroskaDemuxer();
  private total = 0;
  private dead = false;
  private infoShown = false;

  push(chunk: Buffer): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead || chunk.length === 0) return ev;
    this.total += chunk.length;
    try {
      this.convert(this.demux.push(chunk), ev);
    } catch (err) {
      this.dead = true;
      ev.push({ kind: 'problem', problem: problemOf(err, this.total - chunk.length, 'Matroska') });
    }
    return ev;
  }

  private convert(res: MkvDemuxResult, ev: AnalyseEvent[]): void {
    if (res.info && !this.infoShown) {
      this.infoShown = true;
      ev.push({ kind: 'header', text: `Matroska segment: timestamp scale ${res.info.timestampScaleNs} ns${res.info.durationMs !== undefined ? `, duration ${res.info.durationMs} ms` : ''}` });
    }
    if (res.cues) ev.push({ kind: 'header', text: `cues: ${res.cues.length} cue points` });
    convert(res, ev, 'MKV_STRUCTURE');
  }

  end(complete: boolean): AnalyseEvent[] {
    const ev: AnalyseEvent[] = [];
    if (this.dead) return ev;
    try {
      this.convert(this.demux.end(), ev);
    } catch (err) {
      ev.push({ kind: 'problem', problem: problemOf(err, this.total, 'Matroska') });
    }
    // an early stop leaves elements open: that is the reading's doing, not the input's
    if (!complete) return ev.filter((e) => e.kind !== 'problem');
    return ev.map((e) => (e.kind === 'problem' && /ends inside|past the end/.test(e.problem.text) ? { kind: 'problem', problem: { ...e.problem, rule: 'TRUNCATED' } } : e));
  }
}
