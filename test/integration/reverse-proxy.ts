// A reverse proxy for tests, as nginx would sit in front of Haze's API port: it mounts the
// target under a sub-path (`/haze/…` → `/…`), adds X-Forwarded-For (so Haze treats the
// browser as remote and asks for a login), passes WebSocket upgrades through, and answers
// 502 while the target is down.

import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

export interface ReverseProxy {
  /** the mounted base URL, ending in `/` */
  url: string;
  close(): Promise<void>;
}

/** The address the proxy claims its clients come from (TEST-NET-3, RFC 5737). */
export const PROXIED_CLIENT = '203.0.113.7';

export async function startReverseProxy(targetPort: number, prefix = '/haze'): Promise<ReverseProxy> {
  const strip = (url: string | undefined): string | undefined => {
    const u = url ?? '';
    if (u === prefix || u.startsWith(`${prefix}?`)) return undefined;
    return u.startsWith(`${prefix}/`) ? u.slice(prefix.length) : undefined;
  };
  const headersFor = (req: http.IncomingMessage): http.OutgoingHttpHeaders => ({
    ...req.headers,
    host: `127.0.0.1:${targetPort}`,
    'x-forwarded-for': PROXIED_CLIENT,
    'x-forwarded-proto': 'http',
    'x-forwarded-prefix': prefix,
  });
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const path = strip(req.url);
    if (path === undefined) {
      if ((req.url ?? '').startsWith(prefix)) res.writeHead(301, { Location: `${prefix}/` }).end();
      else res.writeHead(404).end('not under the mounted prefix\n');
      return;
    }
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path, headers: headersFor(req) }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' }).end('bad gateway\n');
      else res.destroy();
    });
    req.pipe(up);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const path = strip(req.url);
    if (path === undefined) {
      client.destroy();
      return;
    }
    const up = net.connect(targetPort, '127.0.0.1', () => {
      const lines = [`${req.method} ${path} HTTP/1.1`];
      for (const [k, v] of Object.entries(headersFor(req))) for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined) lines.push(`${k}: ${one}`);
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
    client.on('close', () => up.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${prefix}/`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
