// `haze analyse INPUT [--validate] [--packets|--headers-only] [--limit N] [--max-gap-ms N]
// [--format text|json]` (reference/mistserver.md §9, MistAnalyser* and their `-m validate`).
// Exit codes: 0 = read (and, with --validate, sound); 1 = problems found or the input could
// not be read; 2 = usage error.

import { analyseInput, problemLine, type AnalyseOptions, type AnalyseOutput } from '../analyse/run.js';
import type { PacketRecord, Problem } from '../analyse/model.js';

const USAGE = `usage: haze analyse FILE|-|http(s)://URL|dtsc://HOST[:PORT]/STREAM [--validate]
         [--packets|--headers-only] [--limit N] [--max-gap-ms N] [--live-ms N]
         [--segments N] [--format text|json]`;

export interface AnalyseArgs {
  input: string;
  validate: boolean;
  json: boolean;
  opts: AnalyseOptions;
}

/** Parses the arguments; a string is the usage error to print. */
export function parseAnalyseArgs(args: readonly string[]): AnalyseArgs | string {
  let input: string | undefined;
  let validate = false;
  let json = false;
  const opts: AnalyseOptions = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string | undefined => (eq > 0 ? arg.slice(eq + 1) : args[++i]);
    const int = (min: number): number | string => {
      const v = value();
      const n = Number(v);
      return v !== undefined && Number.isInteger(n) && n >= min ? n : `${flag} needs an integer >= ${min}, not ${JSON.stringify(v)}`;
    };
    let n: number | string;
    switch (flag) {
      case '--validate':
        validate = true;
        break;
      case '--packets':
        opts.packets = true;
        break;
      case '--headers-only':
        opts.packets = false;
        break;
      case '--limit':
        if (typeof (n = int(1)) === 'string') return n;
        opts.limit = n;
        break;
      case '--max-gap-ms':
        if (typeof (n = int(0)) === 'string') return n;
        opts.maxGapMs = n;
        break;
      case '--live-ms':
        if (typeof (n = int(0)) === 'string') return n;
        opts.liveMs = n;
        break;
      case '--segments':
        if (typeof (n = int(0)) === 'string') return n;
        opts.hlsSegments = n;
        break;
      case '--format': {
        const v = value();
        if (v !== 'json' && v !== 'text') return `--format is text or json, not ${JSON.stringify(v)}`;
        json = v === 'json';
        break;
      }
      default:
        if (arg.startsWith('--') || (arg.startsWith('-') && arg !== '-')) return `unknown flag ${arg}`;
        if (input !== undefined) return `one input only (got ${JSON.stringify(input)} and ${JSON.stringify(arg)})`;
        input = arg;
    }
  }
  if (input === undefined) return 'no input given';
  return { input, validate, json, opts };
}

/** Where runAnalyse writes (the process's streams unless a test passes its own). */
export interface AnalyseStreams {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

export async function runAnalyse(args: string[], io: AnalyseStreams = process): Promise<number> {
  const parsed = parseAnalyseArgs(args);
  if (typeof parsed === 'string') {
    io.stderr.write(`haze analyse: ${parsed}\n${USAGE}\n`);
    return 2;
  }
  const { input, validate, json, opts } = parsed;
  const lines: string[] = [];
  const packets: PacketRecord[] = [];
  const out: AnalyseOutput = {
    line: (text: string): void => {
      if (json) lines.push(text);
      else io.stdout.write(`${text}\n`);
    },
    problem: (p: Problem): void => {
      io.stderr.write(`${problemLine(p)}\n`);
    },
    ...(json ? { packet: (p: PacketRecord): void => void packets.push(p) } : {}),
  };
  const res = await analyseInput(input, opts, out);
  if (res.ioError !== undefined) {
    io.stderr.write(`haze analyse: ${res.ioError}\n`);
    return 1;
  }
  if (json) {
    const doc = {
      input,
      container: res.container ?? null,
      lines,
      tracks: res.tracks.map((t) => ({ ...t, init: t.init.toString('hex') })),
      packetCount: res.packets,
      packets,
      summary: [...res.summary.tracks.values()],
      problems: res.problems,
      ok: res.problems.length === 0,
    };
    io.stdout.write(`${JSON.stringify(doc, null, 1)}\n`);
  } else {
    for (const l of res.summary.lines()) io.stdout.write(`${l}\n`);
    if (validate) io.stdout.write(res.problems.length === 0 ? 'validate: OK\n' : `validate: ${res.problems.length} problems\n`);
  }
  return validate && res.problems.length > 0 ? 1 : 0;
}
