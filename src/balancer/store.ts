// Persistence of the balancer (DESIGN §5): the monitored server list, the weights and the policy
// live in DATA/balancer.json, written atomically (tmp file + rename) on every change made through
// the API, and merged with the --server flags at start. Predictions and poll results are not
// saved: they rebuild from the next polls within one poll interval.

import fs from 'node:fs';
import path from 'node:path';
import { HazeError } from '../util/errors.js';
import { writeFileAtomic } from '../util/run-dir.js';
import { POLICIES, type Policy, type Weights } from './score.js';

/** MistServer's limit on monitored hosts. */
export const MAX_SERVERS = 1000;
/** Default upload capacity of a server: 128 MiB/s (reference §8.1). */
export const DEFAULT_CAPACITY_MIBPS = 128;
const DEFAULT_API_PORT = 4242;
const MAX_SPEC_CHARS = 300;


export interface ServerSpec {
  /** HOST:APIPORT, the name used everywhere (answers, self-exclusion, ?host=). */
  name: string;
  capacityMiBps: number;
}

export interface StoredState {
  servers: ServerSpec[];
  weights?: Partial<Weights>;
  policy?: Policy;
}

/**
 * Parses `HOST[:APIPORT][/MiBps]` (the --server flag, ?addserver=). IPv6 hosts in brackets
 * (`[::1]:4242`). Throws HAZE_ERR_INVALID_ARG with a text fit for a 400 answer.
 */
export function parseServerSpec(raw: string): ServerSpec {
  const bad = (why: string): never => {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `bad server "${String(raw).slice(0, 80)}": ${why} (want HOST:APIPORT[/MiBps])`, { status: 400 });
  };
  if (typeof raw !== 'string' || raw.length === 0) return bad('empty');
  if (raw.length > MAX_SPEC_CHARS) return bad('too long');
  let s = raw.trim();
  let capacityMiBps = DEFAULT_CAPACITY_MIBPS;
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const cap = s.slice(slash + 1);
    if (!/^\d+(\.\d+)?$/.test(cap)) return bad('capacity is not a number');
    capacityMiBps = Number(cap);
    if (!(capacityMiBps > 0 && capacityMiBps <= 1024 * 1024)) return bad('capacity out of range');
    s = s.slice(0, slash);
  }
  let host: string;
  let port = DEFAULT_API_PORT;
  const m6 = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(s);
  if (m6) {
    host = `[${m6[1]!.toLowerCase()}]`;
    if (m6[2] !== undefined) port = Number(m6[2]);
  } else {
    const m = /^([A-Za-z0-9.-]+)(?::(\d+))?$/.exec(s);
    if (!m) return bad('not a host name');
    host = m[1]!.toLowerCase();
    if (m[2] !== undefined) port = Number(m[2]);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65535) return bad('port out of range');
  if (host.startsWith('.') || host.startsWith('-') || host.endsWith('.') || host.length > 253) return bad('not a host name');
  return { name: `${host}:${port}`, capacityMiBps };
}

export function storeFile(dataDir: string): string {
  return path.join(dataDir, 'balancer.json');
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads DATA/balancer.json; a missing file is an empty state, an unreadable one an error. */
export function loadStore(dataDir: string): StoredState {
  let text: string;
  try {
    text = fs.readFileSync(storeFile(dataDir), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { servers: [] };
    throw err;
  }
  return parseStore(text);
}

/** The stored JSON, checked field by field (a hand-edited file may hold anything). */
export function parseStore(text: string): StoredState {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HazeError('HAZE_ERR_MALFORMED', `balancer.json is not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(json)) throw new HazeError('HAZE_ERR_MALFORMED', 'balancer.json is not an object');
  const out: StoredState = { servers: [] };
  if (Array.isArray(json['servers'])) {
    for (const s of json['servers'].slice(0, MAX_SERVERS)) {
      if (!isRecord(s) || typeof s['name'] !== 'string') continue;
      const cap = typeof s['capacityMiBps'] === 'number' ? s['capacityMiBps'] : DEFAULT_CAPACITY_MIBPS;
      try {
        out.servers.push(parseServerSpec(`${s['name']}/${cap}`));
      } catch {
        // one bad entry does not lose the others
      }
    }
  }
  if (isRecord(json['weights'])) {
    const w: Partial<Weights> = {};
    for (const k of ['cpu', 'ram', 'bw', 'geo', 'bonus'] as const) {
      const v = json['weights'][k];
      if (typeof v === 'number' && Number.isFinite(v)) w[k] = v;
    }
    out.weights = w;
  }
  if (typeof json['policy'] === 'string' && (POLICIES as readonly string[]).includes(json['policy'])) out.policy = json['policy'] as Policy;
  return out;
}

export function saveStore(dataDir: string, state: StoredState): void {
  writeFileAtomic(storeFile(dataDir), JSON.stringify(state, null, 2) + '\n', 0o600);
}

/** Saved servers first, then the flags; a flag overrides the saved capacity of the same server. */
export function mergeServers(saved: ServerSpec[], flags: ServerSpec[]): ServerSpec[] {
  const map = new Map<string, ServerSpec>();
  for (const s of saved) map.set(s.name, s);
  for (const s of flags) map.set(s.name, s);
  return [...map.values()].slice(0, MAX_SERVERS);
}
