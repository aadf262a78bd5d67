// Flag parsing for `haze serve` (DESIGN §5). Unknown flags and bad values are errors with
// a message that names them; every documented flag is accepted from the first release.

import { HazeError } from '../util/errors.js';

export interface ServeOptions {
  data: string;
  config: string | undefined;
  workers: number;
  /** Ports given on the command line (fatal if they cannot be bound). */
  ports: { api?: number; http?: number; rtmp?: number; rtsp?: number; srt?: number; dtsc?: number; webrtc?: number };
}

const PORT_FLAGS = ['api', 'http', 'rtmp', 'rtsp', 'srt', 'dtsc', 'webrtc'] as const;

export function parseServeArgs(argv: string[], defaultWorkers: number): ServeOptions {
  const opts: ServeOptions = { data: './haze-data', config: undefined, workers: defaultWorkers, ports: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new HazeError('HAZE_ERR_INVALID_ARG', `${flag} needs a value`);
      return v;
    };
    const name = flag.replace(/^--/, '');
    if (flag === '--data') opts.data = value();
    else if (flag === '--config') opts.config = value();
    else if (flag === '--workers') opts.workers = toInt(flag, value(), 1, 64);
    else if ((PORT_FLAGS as readonly string[]).includes(name) && flag.startsWith('--')) {
      opts.ports[name as (typeof PORT_FLAGS)[number]] = toInt(flag, value(), 1, 65535);
    } else throw new HazeError('HAZE_ERR_INVALID_ARG', `unknown flag ${arg} (see haze help)`);
  }
  return opts;
}

function toInt(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new HazeError('HAZE_ERR_INVALID_ARG', `${flag} must be an integer from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return n;
}
