// Step 1 of accepting a push (reference §5.4): a pushed name that is a configured stream key, or
// a JWT with the input permission, is mapped to its stream and every other push check
// (PUSH_REWRITE, RTMP_PUSH_REWRITE, the push:// password and address list, STREAM_PUSH) is
// skipped. Used by every push protocol (RTMP publish, dtsc:// pushes). Keys are secrets: what
// this module logs or puts in errors shows at most their first two characters.

import { HazeError } from '../util/errors.js';
import { sanitizeStreamName } from '../util/stream-name.js';
import { decodeJws } from './jwt.js';
import type { JwtKeyring } from './keyring.js';

export interface PushGrant {
  stream: string;
  via: 'stream key' | 'JWT';
}

export interface PushAccessDeps {
  /** The config's `streamkeys` map {key: stream}. */
  streamKeys(): unknown;
  keyring: JwtKeyring;
  /** Whether a stream (or its wildcard base) is configured. */
  isConfigured(stream: string): boolean;
}

/** A secret shortened for logs: its first two characters and its length. */
export function maskSecret(secret: string): string {
  return `${secret.slice(0, 2)}… (${secret.length} characters)`;
}

/** The part of a pushed name before its `?` parameters, as the client sent it. */
export function rawPushName(name: string): string {
  const q = name.indexOf('?');
  return q >= 0 ? name.slice(0, q) : name;
}

export class PushAccess {
  constructor(private readonly deps: PushAccessDeps) {}

  private streamKey(raw: string): string | undefined {
    const keys = this.deps.streamKeys();
    if (typeof keys !== 'object' || keys === null || !Object.hasOwn(keys, raw)) return undefined;
    const target = (keys as Record<string, unknown>)[raw];
    return typeof target === 'string' ? target : undefined;
  }

  /**
   * The stream a pushed name grants: undefined when the name is neither a stream key nor a JWT
   * (the other push rules decide). A HazeError when it is one but cannot be used (a refused
   * JWT, a key whose stream is not configured).
   */
  grant(raw: string, peer: string): PushGrant | undefined {
    const keyTarget = this.streamKey(raw);
    if (keyTarget !== undefined) {
      const stream = sanitizeStreamName(keyTarget);
      if (!stream || !this.deps.isConfigured(stream)) throw new HazeError('HAZE_ERR_REFUSED', `stream key ${maskSecret(raw)} names stream ${JSON.stringify(keyTarget.slice(0, 100))}, which is not configured`);
      return { stream, via: 'stream key' };
    }
    if (!decodeJws(raw)) return undefined;
    const r = this.deps.keyring.verify(raw, { perm: 'input', peer });
    if (!r.ok) throw new HazeError('HAZE_ERR_AUTH', `push with a JWT refused: ${r.reason}`);
    const stream = sanitizeStreamName(r.sub ?? '');
    if (!stream || !this.deps.isConfigured(stream)) throw new HazeError('HAZE_ERR_REFUSED', `push with a JWT for ${JSON.stringify((r.sub ?? '').slice(0, 100))} refused: not a configured stream`);
    return { stream, via: 'JWT' };
  }

  /** How a pushed name may appear in a log line: a key or a JWT is never written out. */
  forLog(raw: string): string {
    if (this.streamKey(raw) !== undefined) return `stream key ${maskSecret(raw)}`;
    if (decodeJws(raw)) return 'a JWT';
    return JSON.stringify(raw.slice(0, 120));
  }
}
