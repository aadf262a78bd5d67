// Command-line flags as every haze subcommand takes them: `--flag value` or `--flag=value`.

import { HazeError } from '../util/errors.js';

export interface Flag {
  /** The flag without any `=value`. */
  flag: string;
  /** The argument as given (for messages). */
  arg: string;
  /** The flag's value: after its `=`, else the next argument (taken, so it is not read as a flag). */
  value(): string;
}

export function* readFlags(argv: readonly string[]): Generator<Flag> {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    yield {
      flag,
      arg,
      value: () => {
        const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
        if (v === undefined) throw new HazeError('HAZE_ERR_INVALID_ARG', `${flag} needs a value`);
        return v;
      },
    };
  }
}

export function toInt(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new HazeError('HAZE_ERR_INVALID_ARG', `${flag} must be an integer from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return n;
}
