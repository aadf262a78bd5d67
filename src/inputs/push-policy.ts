// Whether a publisher may push to a stream (reference §5.4): the stream (or the base of a
// `base+suffix` wildcard name) must be configured with a `push://[hosts][@password]` source.
// A matching password admits the push from anywhere; otherwise the peer must match one of
// the hosts (an address, a CIDR block or a host name, comma-separated); `push://` alone
// admits everyone. Every refusal is a HazeError whose message says why, for the log and
// for the publisher's error response.

import dns from 'node:dns/promises';
import net from 'node:net';
import { HazeError } from '../util/errors.js';

export interface PushSource {
  hosts: string[];
  password: string;
}

/** Parses `push://host1,host2@password`; undefined if the source is not a push source. */
export function parsePushSource(source: string): PushSource | undefined {
  if (!source.startsWith('push://') || source.includes('INTERNAL_')) return undefined;
  const rest = source.slice('push://'.length);
  const at = rest.lastIndexOf('@');
  const hostPart = at >= 0 ? rest.slice(0, at) : rest;
  const password = at >= 0 ? rest.slice(at + 1) : '';
  const hosts = hostPart
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h.length > 0);
  return { hosts, password };
}

async function hostMatches(peer: string, host: string): Promise<boolean> {
  const family = net.isIP(peer) === 6 ? 'ipv6' : 'ipv4';
  const slash = host.indexOf('/');
  if (slash > 0 && net.isIP(host.slice(0, slash))) {
    const list = new net.BlockList();
    const base = host.slice(0, slash);
    list.addSubnet(base, Number(host.slice(slash + 1)), net.isIP(base) === 6 ? 'ipv6' : 'ipv4');
    return list.check(peer, family);
  }
  if (net.isIP(host)) return host === peer;
  // a host name: compare with every address it resolves to (localhost -> 127.0.0.1 and ::1)
  try {
    const addrs = await dns.lookup(host, { all: true });
    return addrs.some((a) => a.address === peer) || (host === 'localhost' && isLoopback(peer));
  } catch {
    return false;
  }
}

export function isLoopback(peer: string): boolean {
  return peer === '::1' || peer.startsWith('127.');
}

/**
 * Checks a push of `stream` from `peer` that presented `password` (the RTMP app, a `pass`
 * parameter ...) against the stream's configured source.
 */
export async function checkPush(stream: string, source: string | undefined, peer: string, password: string): Promise<void> {
  if (source === undefined) throw new HazeError('HAZE_ERR_REFUSED', `push to unconfigured stream ${stream} refused`);
  const push = parsePushSource(source);
  if (!push) throw new HazeError('HAZE_ERR_REFUSED', `stream ${stream} does not accept pushes (its source is ${source})`);
  if (push.password && password === push.password) return;
  if (push.hosts.length === 0) {
    if (push.password) throw new HazeError('HAZE_ERR_AUTH', `push to ${stream} refused: wrong password`);
    return;
  }
  for (const host of push.hosts) if (await hostMatches(peer, host)) return;
  throw new HazeError('HAZE_ERR_REFUSED', `push to ${stream} from ${peer} refused: address not allowed`);
}
