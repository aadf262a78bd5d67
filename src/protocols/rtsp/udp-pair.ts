// A pair of UDP sockets on consecutive ports, RTP on the even one and RTCP on the next
// (RFC 3550 §11), bound by the worker that holds the RTSP session: RTSP negotiates its media
// ports per session, so no other worker's socket is involved.

import dgram from 'node:dgram';
import { HazeError } from '../../util/errors.js';

export interface UdpPair {
  rtp: dgram.Socket;
  rtcp: dgram.Socket;
  /** The RTP port (even); RTCP is on port + 1. */
  port: number;
  close(): void;
}

/** Ports tried for pairs: above the common ephemeral range's start, below its end. */
const LOW = 20000;
const HIGH = 60000;
const ATTEMPTS = 40;

function bind(type: 'udp4' | 'udp6', port: number, address?: string): Promise<dgram.Socket | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket({ type, reuseAddr: false });
    const fail = (): void => {
      s.close();
      resolve(undefined);
    };
    s.once('error', fail);
    s.bind(port, address, () => {
      s.off('error', fail);
      resolve(s);
    });
  });
}

/** Binds an even/odd pair for a peer of `family`; HAZE_ERR_BUSY when none is free after many tries. */
export async function bindUdpPair(family: 'udp4' | 'udp6', address?: string): Promise<UdpPair> {
  for (let i = 0; i < ATTEMPTS; i++) {
    const port = LOW + 2 * Math.floor(Math.random() * ((HIGH - LOW) / 2));
    const rtp = await bind(family, port, address);
    if (!rtp) continue;
    const rtcp = await bind(family, port + 1, address);
    if (!rtcp) {
      rtp.close();
      continue;
    }
    // a socket's error after binding (ICMP unreachable on some systems) must not throw
    rtp.on('error', () => {});
    rtcp.on('error', () => {});
    let closed = false;
    return {
      rtp,
      rtcp,
      port,
      close: () => {
        if (closed) return;
        closed = true;
        rtp.close();
        rtcp.close();
      },
    };
  }
  throw new HazeError('HAZE_ERR_BUSY', 'no free UDP port pair for RTP');
}

/** The dgram family to reach a peer address (IPv4-mapped IPv6 counts as IPv4). */
export function udpFamily(address: string): 'udp4' | 'udp6' {
  return address.includes(':') && !address.startsWith('::ffff:') ? 'udp6' : 'udp4';
}
