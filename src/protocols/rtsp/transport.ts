// The Transport header, RFC 2326 §12.39: a comma-separated list of the transports a client
// accepts, each `RTP/AVP[/UDP|/TCP];param[=value];...`, for example
//
//   RTP/AVP;unicast;client_port=4588-4589
//   RTP/AVP/TCP;unicast;interleaved=0-1;mode=record
//
// The server answers with the one it chose, filled in (server_port, ssrc).

import { HazeError } from '../../util/errors.js';

export interface TransportSpec {
  /** The transport protocol as written (RTP/AVP, RTP/AVP/TCP ...). */
  protocol: string;
  /** TCP for interleaved transport, UDP otherwise. */
  lower: 'UDP' | 'TCP';
  unicast: boolean;
  clientPort?: [number, number];
  serverPort?: [number, number];
  interleaved?: [number, number];
  /** `play` or `record` (lower case); undefined means play. */
  mode?: string;
  ssrc?: number;
  destination?: string;
  source?: string;
}

function range(v: string, max: number, what: string): [number, number] {
  const [a, b] = v.split('-');
  const lo = Number(a);
  const hi = b === undefined || b === '' ? lo + 1 : Number(b);
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 0 || hi < 0 || lo > max || hi > max) throw new HazeError('HAZE_ERR_MALFORMED', `Transport ${what}=${v.slice(0, 30)}`);
  return [lo, hi];
}

export function parseTransport(header: string): TransportSpec[] {
  if (header.length > 4096) throw new HazeError('HAZE_ERR_TOO_LARGE', 'Transport header past 4096 bytes');
  const out: TransportSpec[] = [];
  for (const item of header.split(',')) {
    const parts = item.split(';').map((s) => s.trim());
    const protocol = parts[0]!;
    if (!protocol) continue;
    const upper = protocol.toUpperCase();
    const spec: TransportSpec = { protocol, lower: upper.endsWith('/TCP') ? 'TCP' : 'UDP', unicast: true };
    for (const p of parts.slice(1)) {
      const eq = p.indexOf('=');
      const key = (eq < 0 ? p : p.slice(0, eq)).toLowerCase();
      const value = eq < 0 ? '' : p.slice(eq + 1).replace(/^"|"$/g, '');
      switch (key) {
        case 'unicast':
          spec.unicast = true;
          break;
        case 'multicast':
          spec.unicast = false;
          break;
        case 'client_port':
          spec.clientPort = range(value, 65535, key);
          break;
        case 'server_port':
          spec.serverPort = range(value, 65535, key);
          break;
        case 'interleaved':
          spec.interleaved = range(value, 255, key);
          break;
        case 'mode':
          spec.mode = value.toLowerCase();
          break;
        case 'ssrc': {
          const n = parseInt(value, 16);
          if (Number.isFinite(n)) spec.ssrc = n >>> 0;
          break;
        }
        case 'destination':
          spec.destination = value;
          break;
        case 'source':
          spec.source = value;
          break;
        default:
          break; // ttl, layers, port, append ...: not used
      }
    }
    out.push(spec);
  }
  return out;
}

export function writeTransport(t: TransportSpec): string {
  const parts = [t.protocol, t.unicast ? 'unicast' : 'multicast'];
  if (t.destination) parts.push(`destination=${t.destination}`);
  if (t.source) parts.push(`source=${t.source}`);
  if (t.clientPort) parts.push(`client_port=${t.clientPort[0]}-${t.clientPort[1]}`);
  if (t.serverPort) parts.push(`server_port=${t.serverPort[0]}-${t.serverPort[1]}`);
  if (t.interleaved) parts.push(`interleaved=${t.interleaved[0]}-${t.interleaved[1]}`);
  if (t.ssrc !== undefined) parts.push(`ssrc=${(t.ssrc >>> 0).toString(16).toUpperCase().padStart(8, '0')}`);
  if (t.mode) parts.push(`mode=${t.mode}`);
  return parts.join(';');
}
