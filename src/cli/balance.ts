// Flags of `haze balance` (DESIGN §5, reference §8.1). Unknown flags and bad values are errors
// naming them, as for `haze serve`.

import { HazeError } from '../util/errors.js';
import { parseServerSpec, type ServerSpec } from '../balancer/store.js';
import { POLICIES, type Policy } from '../balancer/score.js';

export interface BalanceOptions {
  port: number;
  /** Listening address; undefined = every interface (viewers ask from anywhere). */
  iface: string | undefined;
  data: string;
  servers: ServerSpec[];
  passphrase: string;
  policy: Policy | undefined;
  pollMs: number;
  fallback: string;
  /** Accept addserver/delserver/weights/policy from any address, not only localhost. */
  remoteConfig: boolean;
}

export const BALANCE_USAGE = `haze balance [--port 8042] [--interface ADDR] [--data DIR] [--server HOST:APIPORT[/MiBps] ...]
             [--passphrase P] [--policy media-aware|round-robin|least-loaded] [--poll-ms 5000]
             [--fallback FULL] [--remote-config]`;

export function parseBalanceArgs(argv: string[]): BalanceOptions {
  const opts: BalanceOptions = {
    port: 8042,
    iface: undefined,
    data: './haze-data',
    servers: [],
    passphrase: 'koekjes',
    policy: undefined,
    pollMs: 5000,
    fallback: 'FULL',
    remoteConfig: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined) throw new HazeError('HAZE_ERR_INVALID_ARG', `${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--port':
      case '-p':
        opts.port = toInt(flag, value(), 1, 65535);
        break;
      case '--interface':
      case '-i':
        opts.iface = value();
        break;
      case '--data':
        opts.data = value();
        break;
      case '--server':
      case '-s':
        opts.servers.push(parseServerSpec(value()));
        break;
      case '--passphrase':
      case '-P': {
        const p = value();
        if (!/^[A-Za-z0-9_.~-]{1,100}$/.test(p)) throw new HazeError('HAZE_ERR_INVALID_ARG', `${flag}: letters, digits and _.~- only`);
        opts.passphrase = p;
        break;
      }
      case '--policy': {
        const p = value();
        if (!(POLICIES as readonly string[]).includes(p)) throw new HazeError('HAZE_ERR_INVALID_ARG', `${flag} must be one of ${POLICIES.join(', ')}`);
        opts.policy = p as Policy;
        break;
      }
      case '--poll-ms':
        opts.pollMs = toInt(flag, value(), 100, 600_000);
        break;
      case '--fallback':
      case '-F':
        opts.fallback = value();
        break;
      case '--remote-config':
        if (eq > 0) throw new HazeError('HAZE_ERR_INVALID_ARG', `${flag} takes no value`);
        opts.remoteConfig = true;
        break;
      default:
        throw new HazeError('HAZE_ERR_INVALID_ARG', `unknown flag ${arg}\nUsage: ${BALANCE_USAGE}`);
    }
  }
  return opts;
}

function toInt(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new HazeError('HAZE_ERR_INVALID_ARG', `${flag} must be an integer from ${min} to ${max}, not ${JSON.stringify(v)}`);
  return n;
}
