// The MPEG-TS network sources and targets (reference/mistserver.md §5.2: the TS input's
// source_match `tsudp://[host]:port[/iface,…]`, `http(s)://*.ts`, `http(s)-ts://`,
// `ts-exec:CMD`; §5.5: the `tsudp://*` push target). Pure: strings in, addresses out.
//
//   tsudp://[host]:port[/iface[,iface...]]
//     host   an IPv4 address, [IPv6], or a name; empty = every local address (input only).
//            In 224.0.0.0/4 (or ff00::/8) it is a multicast group: an input joins it.
//     iface  where to join the group (input) or send it from (push): a local address or an
//            interface name (eth0), resolved by the caller; several for an input.

import { isIP } from 'node:net';
import { HazeError } from '../../util/errors.js';

export interface TsUdpAddress {
  /** The host as written ('' when empty), without IPv6 brackets. */
  host: string;
  port: number;
  /** A multicast group (224.0.0.0/4, ff00::/8). */
  multicast: boolean;
  /** IP family of the socket: 6 for an IPv6 literal, else 4. */
  family: 4 | 6;
  /** Interfaces (addresses or names) after the `/`, in order. */
  ifaces: string[];
}

const MAX_URL = 2048;
const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$/;
const IFACE = /^[A-Za-z0-9_.:%-]{1,64}$/;

function invalid(url: string, why: string): HazeError {
  return new HazeError('HAZE_ERR_INVALID_ARG', `invalid tsudp URL ${JSON.stringify(url.slice(0, 200))}: ${why}`);
}

/** Whether `host` (an IP literal) is a multicast group address. */
export function isMulticastHost(host: string): boolean {
  const v = isIP(host);
  if (v === 4) {
    const first = Number(host.slice(0, host.indexOf('.')));
    return first >= 224 && first <= 239;
  }
  return v === 6 && /^ff/i.test(host);
}

/** Parses `tsudp://[host]:port[/iface,...]`; HAZE_ERR_INVALID_ARG says what is wrong. */
export function parseTsUdpUrl(url: string): TsUdpAddress {
  if (url.length > MAX_URL) throw invalid(url, `longer than ${MAX_URL} characters`);
  const m = /^tsudp:\/\/(.*)$/i.exec(url);
  if (!m) throw invalid(url, 'does not start with tsudp://');
  let rest = m[1]!;
  // a `?` starts parameters MistServer does not define for this scheme: ignored
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q);
  let host: string;
  let after: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) throw invalid(url, 'unclosed [ of an IPv6 address');
    host = rest.slice(1, close);
    if (isIP(host) !== 6) throw invalid(url, `${host} is not an IPv6 address`);
    after = rest.slice(close + 1);
    if (!after.startsWith(':')) throw invalid(url, 'a port is required after the address');
    after = after.slice(1);
  } else {
    const colon = rest.indexOf(':');
    if (colon < 0) throw invalid(url, 'a port is required (tsudp://host:port)');
    host = rest.slice(0, colon);
    after = rest.slice(colon + 1);
    if (host !== '' && isIP(host) === 0 && !HOST_NAME.test(host)) throw invalid(url, `${JSON.stringify(host)} is not an address or host name`);
  }
  const slash = after.indexOf('/');
  const portText = slash < 0 ? after : after.slice(0, slash);
  if (!/^\d{1,5}$/.test(portText)) throw invalid(url, `port ${JSON.stringify(portText)} is not a number`);
  const port = Number(portText);
  if (port < 1 || port > 65535) throw invalid(url, `port ${port} is out of range`);
  const ifaces: string[] = [];
  if (slash >= 0) {
    for (const raw of after.slice(slash + 1).split(',')) {
      const iface = raw.trim();
      if (iface === '') continue;
      if (!IFACE.test(iface)) throw invalid(url, `interface ${JSON.stringify(iface.slice(0, 80))} is not an address or interface name`);
      ifaces.push(iface);
    }
  }
  return { host, port, multicast: isMulticastHost(host), family: isIP(host) === 6 ? 6 : 4, ifaces };
}

/**
 * The http(s) URL of a TS-over-HTTP source: `http-ts://` and `https-ts://` name the scheme
 * outright, a plain `http(s)://` URL is TS when its path ends in `.ts` (the TS input's
 * `http://*.ts`); undefined for anything else.
 */
export function tsHttpUrl(source: string): string | undefined {
  const forced = /^(https?)-ts:\/\/(.+)$/i.exec(source);
  if (forced) return `${forced[1]!.toLowerCase()}://${forced[2]!}`;
  if (!/^https?:\/\/[^/?#]+\//i.test(source)) return undefined;
  // the glob matches the whole URL; a query after the path is tolerated (a token, a cache buster)
  const path = source.replace(/[?#].*$/s, '');
  return /\.ts$/i.test(path) ? source : undefined;
}

/** The command of a `ts-exec:COMMAND` source, undefined for another source or an empty command. */
export function tsExecCommand(source: string): string | undefined {
  if (!/^ts-exec:/i.test(source)) return undefined;
  const cmd = source.slice('ts-exec:'.length).trim();
  return cmd === '' ? undefined : cmd;
}
