// Test helper: an RtmpClient wired to an RtmpServerSession in memory (no sockets), recording
// every byte the client sends, so a real client->server byte stream can be replayed.

import { Duplex } from 'node:stream';
import { RtmpClient, type RtmpClientOptions } from '../../src/protocols/rtmp/client.js';
import { RtmpServerSession, type RtmpSessionHandler } from '../../src/protocols/rtmp/server-session.js';

export interface MemoryPair {
  client: RtmpClient;
  session: RtmpServerSession;
  /** Every buffer the client wrote, in order. */
  recorded: Buffer[];
  /** Errors the session threw while receiving. */
  sessionErrors: unknown[];
}

export function memoryPair(handler: RtmpSessionHandler, opts: RtmpClientOptions = {}): MemoryPair {
  const recorded: Buffer[] = [];
  const sessionErrors: unknown[] = [];
  // eslint-disable-next-line prefer-const
  let session: RtmpServerSession;
  const transport = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      const copy = Buffer.from(chunk);
      recorded.push(copy);
      // Deliver asynchronously, in order, as a socket would.
      setImmediate(() => {
        try {
          session.receive(copy);
        } catch (err) {
          sessionErrors.push(err);
          transport.destroy();
        }
      });
      cb();
    },
    final(cb) {
      setImmediate(() => {
        session.transportClosed('client ended');
        transport.push(null);
      });
      cb();
    },
  });
  session = new RtmpServerSession({
    send: (b) => {
      const copy = Buffer.from(b);
      setImmediate(() => transport.push(copy));
      return true;
    },
    handler,
    peer: 'memory',
    onClose: () => setImmediate(() => transport.push(null)),
  });
  const client = new RtmpClient({ ...opts, transport });
  return { client, session, recorded, sessionErrors };
}
