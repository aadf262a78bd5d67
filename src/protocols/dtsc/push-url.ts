// A dtsc:// push target (reference §2.6): `dtsc[s]://[user[:password]@]host[:port]/stream` with the
// password in `pass`/`pw`/`password` or the URL. Pure, so push_start can check a target before
// anything connects (push-target.ts) and the push client can use the same reading.

import { HazeError } from '../../util/errors.js';

/** The DTSC listener's default port (dtscs:// uses it too). */
export const DTSC_DEFAULT_PORT = 4200;

export interface DtscPushUrl {
  host: string;
  port: number;
  /** The stream name on the target (the URL path without its leading `/`). */
  stream: string;
  /** '' when none was given. */
  password: string;
  /** dtscs://: DTSC over TLS. */
  secure: boolean;
}

/** Query members that carry the push password, in the order they are looked at. */
const PASSWORD_PARAMS = ['pass', 'pw', 'password'] as const;

/**
 * Parses `dtsc[s]://[user[:password]@]host[:port]/stream[?pass=..|pw=..|password=..]`. `params`
 * are the push parameters the trailing-? rule took off the target (push-target.ts): a
 * `?pass=` at the very end of a target lands there, and is honoured the same.
 */
export function parseDtscPushUrl(url: string, params: Readonly<Record<string, string>> = {}): DtscPushUrl {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `not a URL: ${url}`);
  }
  const scheme = u.protocol.toLowerCase();
  if (scheme !== 'dtsc:' && scheme !== 'dtscs:') throw new HazeError('HAZE_ERR_INVALID_ARG', `not a dtsc:// URL: ${url}`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!host) throw new HazeError('HAZE_ERR_INVALID_ARG', `no host in ${url}`);
  const port = u.port ? Number(u.port) : DTSC_DEFAULT_PORT;
  let stream: string;
  try {
    stream = decodeURIComponent(u.pathname.replace(/^\/+/, ''));
  } catch {
    throw new HazeError('HAZE_ERR_INVALID_ARG', `bad escape in the stream name of ${url}`);
  }
  if (!stream) throw new HazeError('HAZE_ERR_INVALID_ARG', `no stream name in ${url} (dtsc://host[:port]/stream)`);
  let password = '';
  for (const key of PASSWORD_PARAMS) {
    const v = u.searchParams.get(key) ?? params[key];
    if (v) {
      password = v;
      break;
    }
  }
  if (!password && u.password) {
    try {
      password = decodeURIComponent(u.password);
    } catch {
      password = u.password;
    }
  }
  return { host, port, stream, password, secure: scheme === 'dtscs:' };
}
