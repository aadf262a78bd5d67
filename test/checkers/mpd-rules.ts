// Conformance checker for DASH MPDs, ISO/IEC 23009-1 (the MPD schema's required attributes and
// the semantics around them): §5.3.1.2 MPD (profiles, type, minBufferTime; dynamic:
// availabilityStartTime, publishTime, minimumUpdatePeriod), §5.3.2.2 Period, §5.3.3.2
// AdaptationSet, §5.3.5.2 Representation, §5.3.7.2 common attributes (mimeType, codecs, width,
// height, frameRate, audioSamplingRate), §5.3.9.4 SegmentTemplate with the §5.3.9.4.4 URL template
// identifiers, §5.3.9.6 SegmentTimeline, §5.8.2 descriptors; segment availability of a dynamic
// MPD (§5.3.9.5). Test-only and pure: MPD text in, violations out (empty = valid).
// Rules stricter than the standard (Haze's own promises) say "house rule".

import { parseXml, XmlSyntaxError, type XmlElement } from './xml.js';

export const MPD_NAMESPACE = 'urn:mpeg:dash:schema:mpd:2011';

export interface MpdCheckOptions {
  /** Slack for segment availability against MPD@publishTime, ms (default 1000). */
  availabilityToleranceMs?: number;
}

const DURATION = /^-?P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;
const DATE_TIME = /^-?\d{4,}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]\d{2}:\d{2})?$/;
const UNSIGNED_INT = /^[0-9]+$/;
const CODEC = /^[A-Za-z0-9-]{4}(\.[A-Za-z0-9]+)*$/;
const MIME = /^[a-z]+\/[A-Za-z0-9.+-]+$/;
const IDENTIFIER = /\$RepresentationID\$|\$(Number|Time|Bandwidth|SubNumber)(%0\d+d)?\$|\$\$/g;
const CONTENT_TYPES = ['text', 'image', 'audio', 'video', 'application', 'font'];
const DESCRIPTORS = ['Role', 'Accessibility', 'AudioChannelConfiguration', 'EssentialProperty', 'SupplementalProperty', 'ContentProtection', 'Rating', 'Viewpoint', 'InbandEventStream', 'UTCTiming'];

/** xs:duration in ms (years and months taken as 365 and 30 days), undefined when malformed. */
export function durationMs(s: string): number | undefined {
  const m = DURATION.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number, number, number];
  const ms = ((((y * 365 + mo * 30 + d) * 24 + h) * 60 + mi) * 60 + sec) * 1000;
  return s.startsWith('-') ? -ms : ms;
}

export function isDateTime(s: string): boolean {
  return DATE_TIME.test(s) && !Number.isNaN(Date.parse(s));
}

function at(el: XmlElement): string {
  return `<${el.qname}> line ${el.line}`;
}

function v(section: string, el: XmlElement | undefined, msg: string): string {
  return `ISO/IEC 23009-1 ${section}${el ? ` ${at(el)}` : ''}: ${msg}`;
}

function kids(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name && c.ns === MPD_NAMESPACE);
}

/** Checks the URL template identifiers of SegmentTemplate@media / @initialization (§5.3.9.4.4). */
export function templateProblems(template: string, kind: 'media' | 'initialization'): string[] {
  const problems: string[] = [];
  const rest = template.replace(IDENTIFIER, '');
  if (rest.includes('$')) problems.push(`"${template}" has an unknown or unbalanced $identifier$ (allowed: $RepresentationID$, $Number$, $Time$, $Bandwidth$, $SubNumber$, $$, with %0<width>d on all but RepresentationID)`);
  const used = new Set([...template.matchAll(IDENTIFIER)].map((m) => m[1]).filter((x): x is string => x !== undefined));
  if (kind === 'media' && used.has('Number') && used.has('Time')) problems.push(`"${template}" uses both $Number$ and $Time$ (MUST NOT)`);
  if (kind === 'initialization') for (const id of ['Number', 'Time', 'SubNumber']) if (used.has(id)) problems.push(`@initialization "${template}" uses $${id}$ (only $RepresentationID$ and $Bandwidth$ are allowed)`);
  return problems;
}

/** Every violation of the ISO/IEC 23009-1 MPD rules in `xml`. */
export function checkMpd(xml: string, opts: MpdCheckOptions = {}): string[] {
  const out: string[] = [];
  let root: XmlElement;
  try {
    root = parseXml(xml);
  } catch (e) {
    if (e instanceof XmlSyntaxError) return [`XML 1.0: not well-formed, ${e.message}`];
    throw e;
  }
  if (root.name !== 'MPD' || root.ns !== MPD_NAMESPACE) {
    return [v('§5.3.1.2', root, `the root must be MPD in namespace ${MPD_NAMESPACE}, got ${root.qname} in "${root.ns}"`)];
  }
  const a = root.attrs;
  const need = (el: XmlElement, attr: string, section: string, why = 'is required'): string | undefined => {
    const val = el.attrs.get(attr);
    if (val === undefined) out.push(v(section, el, `@${attr} ${why}`));
    return val;
  };
  const dur = (el: XmlElement, attr: string, section: string): number | undefined => {
    const val = el.attrs.get(attr);
    if (val === undefined) return undefined;
    const ms = durationMs(val);
    if (ms === undefined) out.push(v(section, el, `@${attr}="${val}" is not an xs:duration`));
    return ms;
  };
  const date = (el: XmlElement, attr: string, section: string): number | undefined => {
    const val = el.attrs.get(attr);
    if (val === undefined) return undefined;
    if (!isDateTime(val)) {
      out.push(v(section, el, `@${attr}="${val}" is not an xs:dateTime`));
      return undefined;
    }
    if (!/(Z|[+-]\d{2}:\d{2})$/.test(val)) out.push(v(section, el, `@${attr}="${val}" has no time zone (DASH-IF IOP: MUST, or clients guess local time)`));
    return Date.parse(val);
  };

  // ---- MPD (§5.3.1.2) ----
  const profiles = need(root, 'profiles', '§5.3.1.2');
  if (profiles !== undefined && (profiles.trim() === '' || profiles.split(',').some((p) => !/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(p.trim())))) {
    out.push(v('§5.3.1.2', root, `@profiles="${profiles}" must be a comma-separated list of URIs`));
  }
  const type = need(root, 'type', '§5.3.1.2', 'is required (house rule; the schema defaults to static)');
  if (type !== undefined && type !== 'static' && type !== 'dynamic') out.push(v('§5.3.1.2', root, `@type="${type}" must be static or dynamic`));
  const dynamic = type === 'dynamic';
  if (need(root, 'minBufferTime', '§5.3.1.2') !== undefined) dur(root, 'minBufferTime', '§5.3.1.2');
  for (const d of ['mediaPresentationDuration', 'minimumUpdatePeriod', 'timeShiftBufferDepth', 'suggestedPresentationDelay', 'maxSegmentDuration', 'maxSubsegmentDuration']) dur(root, d, '§5.3.1.2');
  let astMs: number | undefined;
  let publishMs: number | undefined;
  if (dynamic) {
    if (need(root, 'availabilityStartTime', '§5.3.1.2', 'is required in a dynamic MPD') !== undefined) astMs = date(root, 'availabilityStartTime', '§5.3.1.2');
    if (need(root, 'publishTime', '§5.3.1.2', 'is required in a dynamic MPD') !== undefined) publishMs = date(root, 'publishTime', '§5.3.1.2');
    need(root, 'minimumUpdatePeriod', '§5.3.1.2', 'is required in a dynamic MPD with a SegmentTimeline (without it the MPD never updates)');
  } else {
    astMs = date(root, 'availabilityStartTime', '§5.3.1.2');
    publishMs = date(root, 'publishTime', '§5.3.1.2');
    if (a.has('minimumUpdatePeriod')) out.push(v('§5.3.1.2', root, '@minimumUpdatePeriod in a static MPD (shall not be present)'));
  }
  date(root, 'availabilityEndTime', '§5.3.1.2');
  const tsbdMs = dynamic ? durationMs(a.get('timeShiftBufferDepth') ?? '') : undefined;

  // ---- Periods (§5.3.2.2) ----
  const periods = kids(root, 'Period');
  if (periods.length === 0) out.push(v('§5.3.1.2', root, 'no Period (at least one is required)'));
  const periodIds = new Set<string>();
  if (!dynamic && !a.has('mediaPresentationDuration') && periods.length > 0 && !periods[periods.length - 1]!.attrs.has('duration')) {
    out.push(v('§5.3.1.2', root, '@mediaPresentationDuration is required when the last Period has no @duration'));
  }
  let repCount = 0;
  periods.forEach((period, pi) => {
    const id = period.attrs.get('id');
    if (dynamic && id === undefined) out.push(v('§5.3.2.2', period, '@id is required in a dynamic MPD'));
    if (id !== undefined) {
      if (periodIds.has(id)) out.push(v('§5.3.2.2', period, `duplicate Period@id "${id}"`));
      periodIds.add(id);
    }
    const startMs = dur(period, 'start', '§5.3.2.2');
    dur(period, 'duration', '§5.3.2.2');
    if (dynamic && pi === 0 && startMs === undefined) out.push(v('§5.3.2.2', period, 'the first Period of a dynamic MPD has no @start: it is an Early Available Period with no playable media'));

    const repIds = new Set<string>();
    const setIds = new Set<string>();
    for (const set of kids(period, 'AdaptationSet')) {
      const sid = set.attrs.get('id');
      if (sid !== undefined) {
        if (!UNSIGNED_INT.test(sid)) out.push(v('§5.3.3.2', set, `@id="${sid}" must be an xs:unsignedInt`));
        if (setIds.has(sid)) out.push(v('§5.3.3.2', set, `duplicate AdaptationSet@id "${sid}" in the Period`));
        setIds.add(sid);
      }
      const ct = set.attrs.get('contentType');
      if (ct !== undefined && !CONTENT_TYPES.includes(ct)) out.push(v('§5.3.3.2', set, `@contentType="${ct}" must be one of ${CONTENT_TYPES.join(', ')}`));
      checkCommon(set, out);
      checkDescriptors(set, out);
      const reps = kids(set, 'Representation');
      if (reps.length === 0) out.push(v('§5.3.3.2', set, 'AdaptationSet without a Representation'));
      for (const rep of reps) {
        repCount++;
        checkRepresentation(rep, set, repIds, out);
        checkCommon(rep, out);
        checkDescriptors(rep, out);
        checkSegments(rep, set, period, root, { dynamic, astMs, publishMs, tsbdMs, periodStartMs: startMs ?? 0, toleranceMs: opts.availabilityToleranceMs ?? 1000 }, out);
      }
    }
  });
  if (periods.length > 0 && repCount === 0) out.push(v('§5.3.1.2', root, 'no Representation anywhere: nothing to play'));
  return out;
}

function checkRepresentation(rep: XmlElement, set: XmlElement, repIds: Set<string>, out: string[]): void {
  const id = rep.attrs.get('id');
  if (id === undefined) out.push(v('§5.3.5.2', rep, '@id is required'));
  else {
    if (/\s/.test(id) || id === '') out.push(v('§5.3.5.2', rep, `@id="${id}" must not contain whitespace`));
    if (repIds.has(id)) out.push(v('§5.3.5.2', rep, `duplicate Representation@id "${id}" in the Period`));
    repIds.add(id);
  }
  const bw = rep.attrs.get('bandwidth');
  if (bw === undefined) out.push(v('§5.3.5.2', rep, '@bandwidth is required'));
  else if (!UNSIGNED_INT.test(bw) || Number(bw) > 0xffffffff) out.push(v('§5.3.5.2', rep, `@bandwidth="${bw}" must be an xs:unsignedInt`));
  else if (Number(bw) === 0) out.push(v('§5.3.5.2', rep, '@bandwidth is 0 (house rule: a client cannot choose by it)'));

  const get = (attr: string): string | undefined => rep.attrs.get(attr) ?? set.attrs.get(attr);
  const codecs = get('codecs');
  if (codecs === undefined) out.push(v('§5.3.7.2', rep, '@codecs is missing on the Representation and its AdaptationSet'));
  else for (const c of codecs.split(',')) if (!CODEC.test(c.trim())) out.push(v('§5.3.7.2', rep, `@codecs entry "${c}" is not an RFC 6381 codec identifier`));
  const mime = get('mimeType');
  if (mime === undefined) out.push(v('§5.3.7.2', rep, '@mimeType is missing on the Representation and its AdaptationSet'));
  else if (!MIME.test(mime)) out.push(v('§5.3.7.2', rep, `@mimeType="${mime}" is not a MIME type`));
  const kind = set.attrs.get('contentType') ?? mime?.split('/')[0];
  if (kind === 'video') {
    for (const d of ['width', 'height']) {
      const val = get(d);
      if (val === undefined) out.push(v('§5.3.7.2', rep, `@${d} is missing for a video Representation (house rule)`));
      else if (!UNSIGNED_INT.test(val) || Number(val) === 0) out.push(v('§5.3.7.2', rep, `@${d}="${val}" must be a positive xs:unsignedInt`));
    }
  }
  if (kind === 'audio') {
    const rate = get('audioSamplingRate');
    if (rate === undefined) out.push(v('§5.3.7.2', rep, '@audioSamplingRate is missing for an audio Representation (house rule)'));
    else if (!/^[0-9]+( [0-9]+)?$/.test(rate)) out.push(v('§5.3.7.2', rep, `@audioSamplingRate="${rate}" must be one or two decimal integers`));
  }
}

function checkCommon(el: XmlElement, out: string[]): void {
  const fr = el.attrs.get('frameRate');
  if (fr !== undefined && !/^[0-9]+(\/[0-9]+)?$/.test(fr)) out.push(v('§5.3.7.2', el, `@frameRate="${fr}" must be N or N/D`));
  const sap = el.attrs.get('startWithSAP');
  if (sap !== undefined && !/^[0-6]$/.test(sap)) out.push(v('§5.3.7.2', el, `@startWithSAP="${sap}" must be 0..6`));
  for (const d of ['width', 'height']) {
    const val = el.attrs.get(d);
    if (val !== undefined && !UNSIGNED_INT.test(val)) out.push(v('§5.3.7.2', el, `@${d}="${val}" must be an xs:unsignedInt`));
  }
}

function checkDescriptors(el: XmlElement, out: string[]): void {
  for (const name of DESCRIPTORS) for (const d of kids(el, name)) if (!d.attrs.has('schemeIdUri')) out.push(v('§5.8.2', d, '@schemeIdUri is required on a descriptor'));
}

interface TimingContext {
  dynamic: boolean;
  astMs: number | undefined;
  publishMs: number | undefined;
  tsbdMs: number | undefined;
  periodStartMs: number;
  toleranceMs: number;
}

function checkSegments(rep: XmlElement, set: XmlElement, period: XmlElement, root: XmlElement, t: TimingContext, out: string[]): void {
  // SegmentTemplate attributes are inherited Period -> AdaptationSet -> Representation (§5.3.9.1).
  const levels = [period, set, rep].map((el) => kids(el, 'SegmentTemplate')[0]).filter((x): x is XmlElement => x !== undefined);
  const hasOther = [period, set, rep].some((el) => kids(el, 'SegmentList').length > 0 || kids(el, 'SegmentBase').length > 0 || kids(el, 'BaseURL').length > 0);
  if (levels.length === 0) {
    if (!hasOther) out.push(v('§5.3.9.1', rep, 'no segment information (SegmentTemplate, SegmentList, SegmentBase or BaseURL)'));
    return;
  }
  const tmplEl = levels[levels.length - 1]!;
  const attr = (name: string): string | undefined => {
    for (let i = levels.length - 1; i >= 0; i--) {
      const val = levels[i]!.attrs.get(name);
      if (val !== undefined) return val;
    }
    return undefined;
  };
  const timescaleText = attr('timescale');
  let timescale = 1;
  if (timescaleText === undefined) out.push(v('§5.3.9.4', tmplEl, '@timescale is missing (house rule: the schema default of 1 is never what a live $Time$ template means)'));
  else if (!UNSIGNED_INT.test(timescaleText) || Number(timescaleText) === 0) out.push(v('§5.3.9.4', tmplEl, `@timescale="${timescaleText}" must be a positive xs:unsignedInt`));
  else timescale = Number(timescaleText);
  const media = attr('media');
  const init = attr('initialization');
  if (media === undefined) out.push(v('§5.3.9.4', tmplEl, '@media is required for segment addressing'));
  else for (const p of templateProblems(media, 'media')) out.push(v('§5.3.9.4.4', tmplEl, p));
  const profiles = root.attrs.get('profiles') ?? '';
  if (init === undefined && /isoff-live|cmaf/.test(profiles)) out.push(v('§5.3.9.4', tmplEl, '@initialization is required for the isoff-live / CMAF profiles (segments carry no moov)'));
  if (init !== undefined) for (const p of templateProblems(init, 'initialization')) out.push(v('§5.3.9.4.4', tmplEl, p));
  for (const n of ['startNumber', 'duration', 'presentationTimeOffset']) {
    const val = attr(n);
    if (val !== undefined && !UNSIGNED_INT.test(val)) out.push(v('§5.3.9.4', tmplEl, `@${n}="${val}" must be an unsigned integer`));
  }
  const pto = Number(attr('presentationTimeOffset') ?? 0);

  let timeline: XmlElement | undefined;
  for (let i = levels.length - 1; i >= 0 && !timeline; i--) timeline = kids(levels[i]!, 'SegmentTimeline')[0];
  if (!timeline) {
    if (media?.includes('$Time')) out.push(v('§5.3.9.4.4', tmplEl, '$Time$ in @media needs a SegmentTimeline'));
    if (attr('duration') === undefined) out.push(v('§5.3.9.4', tmplEl, 'neither SegmentTimeline nor @duration: segments cannot be addressed'));
    return;
  }
  if (media !== undefined && !media.includes('$Time') && !media.includes('$Number')) out.push(v('§5.3.9.4.4', tmplEl, 'with a SegmentTimeline, @media must contain $Time$ or $Number$'));
  const ss = kids(timeline, 'S');
  if (ss.length === 0) out.push(v('§5.3.9.6', timeline, 'SegmentTimeline without an S element (at least one is required)'));
  let end: number | undefined;
  let firstStart: number | undefined;
  ss.forEach((s, k) => {
    const d = s.attrs.get('d');
    const tt = s.attrs.get('t');
    const r = s.attrs.get('r');
    if (d === undefined) out.push(v('§5.3.9.6', s, '@d is required'));
    else if (!UNSIGNED_INT.test(d) || Number(d) === 0) out.push(v('§5.3.9.6', s, `@d="${d}" must be a positive integer`));
    if (tt !== undefined && !UNSIGNED_INT.test(tt)) out.push(v('§5.3.9.6', s, `@t="${tt}" must be an unsigned integer`));
    if (r !== undefined && !/^(-1|[0-9]+)$/.test(r)) out.push(v('§5.3.9.6', s, `@r="${r}" must be an integer >= -1`));
    if (r === '-1' && k !== ss.length - 1 && ss[k + 1]!.attrs.get('t') === undefined) out.push(v('§5.3.9.6', s, '@r=-1 not on the last S needs a following S with @t'));
    const start = tt !== undefined ? Number(tt) : (end ?? 0);
    if (end !== undefined && start < end) out.push(v('§5.3.9.6', s, `S starts at ${start}, before the previous one ends at ${end} (overlap)`));
    firstStart ??= start;
    const dd = Number(d ?? 0);
    end = start + dd * (1 + Math.max(0, Number(r ?? 0)));
  });

  // Segment availability (§5.3.9.5): in a dynamic MPD a segment is available from
  // availabilityStartTime + Period start + its end, for timeShiftBufferDepth after that.
  if (t.dynamic && t.astMs !== undefined && t.publishMs !== undefined && end !== undefined) {
    const wallEnd = (mediaTicks: number): number => t.astMs! + t.periodStartMs + ((mediaTicks - pto) / timescale) * 1000;
    const lastAvailable = wallEnd(end);
    if (lastAvailable > t.publishMs + t.toleranceMs) {
      out.push(v('§5.3.9.5', timeline, `the last segment becomes available at ${new Date(lastAvailable).toISOString()}, ${Math.round(lastAvailable - t.publishMs)} ms after publishTime: listed before it exists`));
    }
    const first = ss[0];
    if (t.tsbdMs !== undefined && first && firstStart !== undefined) {
      const d0 = Number(first.attrs.get('d') ?? 0);
      const firstAvailableUntil = wallEnd(firstStart + d0) + t.tsbdMs;
      if (firstAvailableUntil + t.toleranceMs < t.publishMs) {
        out.push(v('§5.3.9.5', first, `the first segment left the time shift buffer at ${new Date(firstAvailableUntil).toISOString()}, before publishTime`));
      }
    }
  }
}

// ---- MPD updates -----------------------------------------------------------------------------

interface Timeline {
  timescale: number;
  /** [start, duration] in timescale ticks. */
  segments: Array<[number, number]>;
}

/** The expanded SegmentTimeline of every Representation, keyed `periodId/repId`. */
function timelines(root: XmlElement): Map<string, Timeline> {
  const out = new Map<string, Timeline>();
  for (const period of kids(root, 'Period')) {
    for (const set of kids(period, 'AdaptationSet')) {
      for (const rep of kids(set, 'Representation')) {
        const levels = [period, set, rep].map((el) => kids(el, 'SegmentTemplate')[0]).filter((x): x is XmlElement => x !== undefined);
        let timescale = 1;
        let tl: XmlElement | undefined;
        for (const l of levels) {
          if (l.attrs.has('timescale')) timescale = Number(l.attrs.get('timescale'));
          tl = kids(l, 'SegmentTimeline')[0] ?? tl;
        }
        if (!tl) continue;
        const segments: Array<[number, number]> = [];
        let t = 0;
        for (const s of kids(tl, 'S')) {
          if (s.attrs.has('t')) t = Number(s.attrs.get('t'));
          const d = Number(s.attrs.get('d') ?? 0);
          const r = Math.max(0, Number(s.attrs.get('r') ?? 0));
          for (let k = 0; k <= r && k < 100_000 && d > 0; k++, t += d) segments.push([t, d]);
        }
        out.set(`${period.attrs.get('id') ?? ''}/${rep.attrs.get('id') ?? ''}`, { timescale, segments });
      }
    }
  }
  return out;
}

/**
 * What ISO/IEC 23009-1 §5.4 (MPD updates) forbids between two successive versions of a dynamic
 * MPD: a different availabilityStartTime, publishTime going back, a dynamic MPD after a static
 * one, a Period changing its start, a segment changing its duration or vanishing from the end
 * of a Representation's timeline (segments may only leave from the start, out of the time shift
 * buffer).
 */
export function compareMpds(previous: string, next: string): string[] {
  let a: XmlElement;
  let b: XmlElement;
  try {
    a = parseXml(previous);
    b = parseXml(next);
  } catch {
    return [];
  }
  const out: string[] = [];
  const upd = (msg: string): number => out.push(`ISO/IEC 23009-1 §5.4 (MPD update): ${msg}`);
  const at = a.attrs;
  const bt = b.attrs;
  if (at.get('type') === 'static' && bt.get('type') === 'dynamic') upd('a static MPD became dynamic');
  if (at.get('type') === 'dynamic' && at.get('availabilityStartTime') !== bt.get('availabilityStartTime')) {
    upd(`availabilityStartTime changed from ${at.get('availabilityStartTime')} to ${bt.get('availabilityStartTime')} (shall be the same)`);
  }
  const pa = Date.parse(at.get('publishTime') ?? '');
  const pb = Date.parse(bt.get('publishTime') ?? '');
  if (pb < pa) upd(`publishTime went back from ${at.get('publishTime')} to ${bt.get('publishTime')}`);
  const periodsA = new Map(kids(a, 'Period').map((p) => [p.attrs.get('id'), p]));
  for (const p of kids(b, 'Period')) {
    const q = periodsA.get(p.attrs.get('id'));
    if (q && q.attrs.get('start') !== p.attrs.get('start')) upd(`Period ${p.attrs.get('id')} start changed from ${q.attrs.get('start')} to ${p.attrs.get('start')}`);
  }
  const ta = timelines(a);
  const tb = timelines(b);
  for (const [key, x] of ta) {
    const y = tb.get(key);
    if (!y || x.segments.length === 0 || y.segments.length === 0) continue;
    if (x.timescale !== y.timescale) {
      upd(`Representation ${key} changed timescale ${x.timescale} -> ${y.timescale}`);
      continue;
    }
    const firstB = y.segments[0]![0];
    const lastB = y.segments[y.segments.length - 1]!;
    const inB = new Map(y.segments);
    for (const [t, d] of x.segments) {
      if (t < firstB) continue; // left the time shift buffer
      const db = inB.get(t);
      if (db === undefined) {
        upd(t > lastB[0] ? `Representation ${key}: segment at t=${t} vanished from the end of the timeline` : `Representation ${key}: segment at t=${t} disappeared from the middle of the timeline`);
        break;
      }
      if (db !== d) upd(`Representation ${key}: segment at t=${t} changed duration ${d} -> ${db}`);
    }
    const inA = new Map(x.segments);
    const lastA = x.segments[x.segments.length - 1]!;
    for (const [t] of y.segments) {
      if (t >= x.segments[0]![0] && t <= lastA[0] && !inA.has(t)) {
        upd(`Representation ${key}: a segment at t=${t} appeared inside the earlier timeline`);
        break;
      }
    }
  }
  return out;
}
